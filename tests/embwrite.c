/* embwrite: see embwrite.h. */
#include "embwrite.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include "io/stream.h"

static void
write_stream(const char *path, const StreamHeader *h, const Record *recs, int64_t n)
{
	FILE *f = fopen(path, "wb");
	StreamWriter *w;
	ck_assert_ptr_nonnull(f);
	w = stream_writer_open(f, path, h);
	ck_assert_ptr_nonnull(w);
	for (int64_t i = 0; i < n; i++)
		ck_assert_int_eq(stream_writer_put(w, &recs[i]), 0);
	ck_assert_int_eq(stream_writer_close(w), 0);
	ck_assert_int_eq(fclose(f), 0);
}

void
ew_embeddings(const char *path, const float *x, const int64_t *y, int64_t n, int D, const EmbWriteOpts *o)
{
	StreamHeader h;
	Record *recs = calloc(n ? (size_t)n : 1, sizeof *recs);
	char (*src)[32] = calloc(n ? (size_t)n : 1, sizeof *src);
	int64_t shape[1] = { D };
	ck_assert_ptr_nonnull(recs);
	ck_assert_ptr_nonnull(src);
	stream_header_init(&h, STREAM_KIND_EMBEDDINGS);
	if (o->nclasses)
		stream_header_set_classes(&h, o->nclasses, o->classes);
	if (o->model_id)
		stream_header_set_meta(&h, "model_id", o->model_id);
	if (o->layer)
		stream_header_set_meta(&h, "layer", o->layer);
	h.records_per_epoch = n;
	h.epochs = 1;
	for (int64_t i = 0; i < n; i++) {
		recs[i] = (Record){ .id = o->id0 + i, .label = y ? y[i] : -1, .ntensors = 1 };
		snprintf(src[i], sizeof src[i], "item%lld.png", (long long)(o->id0 + i));
		recs[i].source = o->sources ? src[i] : NULL;
		recs[i].tensors[0] = tensor_view("embedding", DTYPE_F32, 1, shape, (void *)(x + i * D));
	}
	write_stream(path, &h, recs, n);
	stream_header_free(&h);
	free(recs);
	free(src);
}

void
ew_images(const char *path, int64_t n, int h, int w, int64_t id0)
{
	StreamHeader hd;
	Record *recs = calloc(n ? (size_t)n : 1, sizeof *recs);
	uint8_t *px = malloc((size_t)(n ? n : 1) * (size_t)h * (size_t)w * 3);
	int64_t shape[3] = { h, w, 3 };
	ck_assert_ptr_nonnull(recs);
	ck_assert_ptr_nonnull(px);
	stream_header_init(&hd, STREAM_KIND_IMAGES);
	hd.records_per_epoch = n;
	hd.epochs = 1;
	for (int64_t i = 0; i < n; i++) {
		uint8_t *p = px + (size_t)i * (size_t)h * (size_t)w * 3;
		for (int j = 0; j < h * w; j++) {
			p[3 * j] = (uint8_t)(37 * i);
			p[3 * j + 1] = (uint8_t)(91 * i + 50);
			p[3 * j + 2] = (uint8_t)(173 * i + 100);
		}
		recs[i] = (Record){ .id = id0 + i, .label = -1, .ntensors = 1 };
		recs[i].tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, p);
	}
	write_stream(path, &hd, recs, n);
	stream_header_free(&hd);
	free(recs);
	free(px);
}
