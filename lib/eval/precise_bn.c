/* precise_bn: see precise_bn.h. */
#include "eval/precise_bn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "io/stream.h"
#include "nn/layers.h"

int
precise_bn_from_stream(Model *m, const char *path, const float *mean, const float *std, int batch,
                       int64_t *nimages, char *err, size_t errlen)
{
	const ModelConfig *c = model_config(m);
	size_t img = (size_t)c->in_h * c->in_w * c->in_channels;
	StreamReader *r = stream_reader_open_path(path);
	const StreamHeader *h = stream_reader_header(r);
	uint8_t *u8 = NULL;
	float *x = NULL;
	int n = 0, got, rc = -1;
	int64_t used = 0, seen = 0;
	Record rec;
	char why[256];
	*nimages = 0;
	if (!h) {
		snprintf(err, errlen, "--precise-bn: %s", stream_reader_error(r));
		goto done;
	}
	if (strcmp(h->kind, STREAM_KIND_IMAGES) != 0) {
		snprintf(err, errlen, "--precise-bn: %s: kind '%s', expected an images stream (un-augmented training "
		         "images: ssl-decode)", path, h->kind);
		goto done;
	}
	u8 = xmalloc((size_t)batch * img);
	x = xmalloc((size_t)batch * img * sizeof *x);
	model_precise_bn_begin(m);
	while ((got = stream_reader_next(r, &rec)) > 0) {
		const Tensor *im = record_tensor(&rec, "image", DTYPE_U8, 3, why, sizeof why);
		seen++;
		if (!im) {
			snprintf(err, errlen, "--precise-bn: %s: record %lld (id %lld): %s", path, (long long)seen,
			         (long long)rec.id, why);
			goto done;
		}
		if (im->shape[0] != c->in_h || im->shape[1] != c->in_w || im->shape[2] != c->in_channels) {
			snprintf(err, errlen, "--precise-bn: %s: record %lld (id %lld): image is %lldx%lldx%lld, the model "
			         "takes %dx%dx%d (ssl-decode --size)", path, (long long)seen, (long long)rec.id,
			         (long long)im->shape[0], (long long)im->shape[1], (long long)im->shape[2], c->in_h, c->in_w,
			         c->in_channels);
			goto done;
		}
		memcpy(u8 + (size_t)n * img, im->data, img);
		if (++n == batch) {
			input_normalize_u8(x, u8, n, c->in_h, c->in_w, c->in_channels, mean, std);
			model_precise_bn_batch(m, x, n);
			used += n;
			n = 0;
		}
	}
	if (got < 0) {
		snprintf(err, errlen, "--precise-bn: %s", stream_reader_error(r));
		goto done;
	}
	if (n > 0 && (used == 0 || 2 * n >= batch)) {
		if (n < 2) {
			snprintf(err, errlen, "--precise-bn: %s: one image; batch statistics need at least two", path);
			goto done;
		}
		input_normalize_u8(x, u8, n, c->in_h, c->in_w, c->in_channels, mean, std);
		model_precise_bn_batch(m, x, n);
		used += n;
	}
	if (used == 0) {
		snprintf(err, errlen, "--precise-bn: %s: no images", path);
		goto done;
	}
	*nimages = used;
	rc = 0;
done:
	if (u8)
		model_precise_bn_end(m);
	free(u8);
	free(x);
	stream_reader_close(r);
	return rc;
}
