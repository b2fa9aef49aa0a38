/* fuzz_safetensors: libFuzzer harness for the safetensors reader
 * (lib/io/safetensors.c): header parsing, the metadata config, the
 * architecture inference and the restore into a model.
 *
 * Input: one selector byte, then the file.
 *   selector & 1: on a successful parse whose tensors describe a small
 *                 ResNet, build it and restore (selector & 2: with the
 *                 head, selector & 4: with the classifier)
 * Checks: a failure is one line naming the file and leaves the SafeTensors
 * empty; a parsed file's tensors lie inside the data area with byte counts
 * that match their shapes; float conversions, the metadata config and the
 * restore succeed or fail with one line. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "io/safetensors.h"
#include "base/util.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_safetensors: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static void
check_message(const char *err, int names_file)
{
	CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	if (names_file)
		CHECK(strncmp(err, "f.st: ", 6) == 0);
}

static int
small(const ModelConfig *c)
{
	return c->width <= 8 && c->in_channels <= 4 && c->proj_hidden <= 256 && c->proj_dim <= 256 &&
	       c->num_classes <= 1000;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	SafeTensors st;
	ModelConfig c;
	float mean[16], std[16], buf[256];
	char err[1024];
	unsigned sel;
	int rc;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	if (safetensors_parse(&st, data, size, "f.st", err, sizeof err) < 0) {
		check_message(err, 1);
		CHECK(st.ntensors == 0 && st.t == NULL && st.bytes == NULL && st.nmeta == 0);
		return 0;
	}
	for (int i = 0; i < st.ntensors; i++) {
		const StTensor *t = &st.t[i];
		CHECK(t->begin <= t->end && t->data >= st.bytes + 8 && t->data + (t->end - t->begin) <= st.bytes + st.size);
		CHECK((uint64_t)t->numel * safetensors_dtype_size(t->dtype) == t->end - t->begin);
		CHECK(safetensors_find(&st, t->name) != NULL);
		if (t->numel <= 256 && safetensors_read_f32(t, buf, err, sizeof err) < 0)
			check_message(err, 0);
	}
	rc = safetensors_model_config(&st, &c, mean, std, err, sizeof err);
	if (rc < 0)
		check_message(err, 1);
	if (rc == 1) {
		CHECK(model_config_check(&c, err, sizeof err) == 0);
		for (int i = 0; i < c.in_channels; i++)
			CHECK(isfinite(mean[i]) && std[i] > 0);
	}
	if (safetensors_infer_config(&st, &c, err, sizeof err) < 0) {
		check_message(err, 1);
	} else if ((sel & 1) && small(&c)) {
		Model *m;
		c.in_h = c.in_w = 8;
		m = model_new(&c, 1, MODEL_INFER, err, sizeof err);
		CHECK(m != NULL);
		if (safetensors_restore(&st, model_params(m), (sel & 2 ? ST_MODEL_HEAD : 0) | (sel & 4 ? ST_MODEL_FC : 0),
		                        NULL, err, sizeof err) < 0)
			check_message(err, 1);
		model_free(m);
	}
	safetensors_free(&st);
	return 0;
}
