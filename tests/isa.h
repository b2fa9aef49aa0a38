/* isa: run a kernel test at each instruction-set level (lib/base/cpu.h)
 * this CPU has, and say which ran.
 *
 *   tcase_add_loop_test(tc, test_x, 0, CPU_NISA);
 *   START_TEST(test_x) { if (!isa_use(_i)) return; ... }
 *
 * A level the CPU lacks is skipped (the test passes without comparing);
 * isa_report prints, once per suite, which levels run here and which
 * cannot, so that a green run never claims a path it did not test. */
#ifndef SSL_TEST_ISA_H
#define SSL_TEST_ISA_H

#include "base/cpu.h"

/* "isa paths (suite): generic avx2 avx512 run" or "...; avx512: not run (CPU lacks avx512f)" */
void isa_report(const char *suite);
/* Kernels use level `level` from now on (tests run in their own process):
 * 1, or 0 if this CPU lacks it. */
int isa_use(int level);

#endif
