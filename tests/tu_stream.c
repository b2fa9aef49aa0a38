/* tu_stream: see tu_stream.h. */
#include "tu_stream.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void
tu_write_images(const char *path, int n, const TuImages *s)
{
	size_t isz = (size_t)s->H * s->W * s->C;
	uint8_t *px = malloc(isz ? isz : 1);
	FILE *f = fopen(path, "wb");
	StreamHeader h;
	StreamWriter *w;
	ck_assert_msg(px && f, "%s: cannot write", path);
	stream_header_init(&h, s->kind ? s->kind : STREAM_KIND_IMAGES);
	if (s->nclasses > 0)
		stream_header_set_classes(&h, s->nclasses, s->classes);
	if (s->records_per_epoch)
		h.records_per_epoch = s->records_per_epoch;
	if (s->epochs)
		h.epochs = s->epochs;
	if (s->start_epoch)
		h.start_epoch = s->start_epoch;
	if (s->prov_argc > 0)
		stream_header_add_provenance(&h, s->prov_argc, (char **)s->prov_argv);
	w = stream_writer_open(f, path, &h);
	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < n; i++) {
		int64_t shape[3] = { s->H, s->W, s->C };
		Record rec;
		memset(&rec, 0, sizeof rec);
		rec.label = -1;
		s->record(i, &rec, px, s->arg);
		rec.ntensors = 1;
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, px);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	if (s->no_trailer)
		stream_writer_abort(w);
	else
		ck_assert_int_eq(stream_writer_close(w), 0);
	ck_assert_int_eq(fclose(f), 0);
	stream_header_free(&h);
	free(px);
}

ModelConfig
tu_tiny_config(void)
{
	ModelConfig c;
	model_config_default(&c);
	c.width = 4;
	c.in_h = c.in_w = 8;
	c.proj_hidden = 16;
	c.proj_dim = 8;
	return c;
}

Model *
tu_new_model(const ModelConfig *c, int max_batch, uint64_t seed)
{
	char err[512];
	Model *m = model_new(c, max_batch, MODEL_INFER, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	model_init(m, seed);
	return m;
}

void
tu_save_model(const char *path, Model *m, const float *mean, const float *std)
{
	Checkpoint ck;
	char err[512];
	checkpoint_init(&ck);
	ck.mean = (float *)mean;
	ck.std = (float *)std;
	ck_assert_msg(checkpoint_save(path, &ck, m, NULL, err, sizeof err) == 0, "%s", err);
	model_free(m);
}

void
tu_pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

void
tu_pk_header(msgpack_packer *pk, int nextra, const char *format, int major, int minor)
{
	msgpack_pack_map(pk, 3 + (size_t)nextra);
	tu_pk_str(pk, "format");
	tu_pk_str(pk, format);
	tu_pk_str(pk, "version");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, major);
	msgpack_pack_int(pk, minor);
	tu_pk_str(pk, "kind");
	tu_pk_str(pk, "images");
}

void
tu_pk_record(msgpack_packer *pk, int nextra, int64_t id, int64_t label, int64_t epoch)
{
	msgpack_pack_map(pk, 3 + (size_t)nextra);
	tu_pk_str(pk, "id");
	msgpack_pack_int64(pk, id);
	tu_pk_str(pk, "label");
	msgpack_pack_int64(pk, label);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int64(pk, epoch);
}

void
tu_pk_tensor(msgpack_packer *pk, const char *dtype, int ndim, const int64_t *shape, uint32_t binlen, size_t present)
{
	uint8_t *d = calloc(1, present + 1);
	ck_assert_ptr_nonnull(d);
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, dtype);
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_int64(pk, shape[i]);
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, binlen);
	msgpack_pack_bin_body(pk, d, present);
	free(d);
}

void
tu_pk_trailer(msgpack_packer *pk, int64_t n)
{
	msgpack_pack_map(pk, 2);
	tu_pk_str(pk, "end");
	msgpack_pack_true(pk);
	tu_pk_str(pk, "records");
	msgpack_pack_int64(pk, n);
}
