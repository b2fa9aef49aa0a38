/* fixture: reads the PyTorch reference files written by
 * tests/ref/make_core_fixtures.py: one msgpack map, name -> tensor map
 * {"dtype", "shape", "data"} (our tensor encoding). Failures abort the
 * running Check test with a message. */
#ifndef SSL_TEST_FIXTURE_H
#define SSL_TEST_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "io/tensor.h"

typedef struct Fixture Fixture;

/* path relative to the source tree ("tests/fixtures/core_model.msgpack"). */
Fixture *fixture_load(const char *relpath);
void     fixture_free(Fixture *f);
/* NULL if absent. Data is borrowed from the fixture (aligned copies). */
const Tensor *fixture_find(const Fixture *f, const char *name);
/* Present, with this dtype and element count (numel < 0: any); aborts otherwise. */
const Tensor *fixture_get(const Fixture *f, const char *name, DType dtype, int64_t numel);
const float  *fixture_f32(const Fixture *f, const char *name, int64_t numel);
double        fixture_scalar(const Fixture *f, const char *name); /* <f4 or <f8, 1 element */

/* max |a - b| / max(max |b|, floor): error relative to the reference's scale. */
double rel_err(const float *a, const float *b, size_t n, double floor);

#endif
