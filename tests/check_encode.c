/* Tests for ssl-encode and lib/io/npy.
 *
 * Each test writes a tiny random-init checkpoint (ResNet-18, width 4, 8x8
 * inputs, random BatchNorm running statistics so that eval mode matters)
 * and a small images stream, runs the tool, and checks the embeddings
 * against an in-process forward pass of the same checkpoint. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/checkpoint.h"
#include "eval/precise_bn.h"
#include "data/image.h"
#include "nn/bf16.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "io/npy.h"
#include "base/rng.h"
#include "io/stream.h"
#include "testutil.h"
#include "tu_stream.h"
#include "base/util.h"

#define IMG 8
#define NREC 13   /* not a multiple of the batch sizes used */

static char *const class_names[] = { "ant", "bee", "cat" };

static void
tiny_config(ModelConfig *c, int channels, int num_classes)
{
	*c = tu_tiny_config();
	c->in_channels = channels;
	c->in_h = c->in_w = IMG;
	c->proj_layers = 2;
	c->num_classes = num_classes;
}

/* A random-init checkpoint whose BN running statistics are far from 0/1. */
static void
make_checkpoint(const char *path, int channels, int num_classes)
{
	ModelConfig c;
	tiny_config(&c, channels, num_classes);
	Model *m = tu_new_model(&c, 4, 7);
	ParamTable *t = model_params(m);
	Rng r = rng_for(3, 0, 0, 0);
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		size_t len = strlen(e->name);
		int is_mean = len > 12 && strcmp(e->name + len - 12, "running_mean") == 0;
		int is_var = len > 11 && strcmp(e->name + len - 11, "running_var") == 0;
		for (int64_t k = 0; e->data && k < e->numel; k++) {
			if (is_mean)
				e->data[k] = (float)(0.2 * rng_normal(&r));
			else if (is_var)
				e->data[k] = (float)(0.5 + rng_uniform(&r));
		}
	}
	float mean[3] = { 0.4f, 0.5f, 0.6f }, std[3] = { 0.2f, 0.25f, 0.3f };
	tu_save_model(path, m, mean, std);
}

/* Deterministic pixels for record i. */
static void
fill_image(uint8_t *px, int64_t i, int h, int w, int c)
{
	Rng r = rng_for(11, 0, (uint64_t)i, 0);
	for (int k = 0; k < h * w * c; k++)
		px[k] = (uint8_t)rng_below(&r, 256);
}

typedef struct {
	int h, w, c;
} EncImages;

static void
enc_record(int i, Record *rec, uint8_t *px, void *arg)
{
	const EncImages *e = arg;
	static char src[64];
	rec->id = 100 + i;
	rec->label = i % 3;
	rec->epoch = 2;
	snprintf(src, sizeof src, "%s/%d.png", class_names[i % 3], i);
	rec->source = i % 2 == 0 ? src : NULL;
	fill_image(px, i, e->h, e->w, e->c);
}

/* n images of h x w x c; ids 100+i, labels i % 3, epoch 2, source on even i. */
static void
write_images(const char *path, int n, int h, int w, int c, int truncate)
{
	EncImages e = { h, w, c };
	TuImages s = { .H = h, .W = w, .C = c, .nclasses = 3, .classes = class_names, .records_per_epoch = n,
		       .epochs = 1, .start_epoch = 2, .no_trailer = truncate, .record = enc_record, .arg = &e };
	tu_write_images(path, n, &s);
}

typedef struct {
	StreamHeader h;
	int64_t      n;
	int          dim;
	float       *x;        /* (n, dim) */
	int64_t      id[64], label[64], epoch[64];
	char         source[64][64];
} Emb;

/* Parses an embeddings stream held in memory (the tool's stdout). */
static void
read_embeddings(Emb *e, const char *buf, size_t len)
{
	FILE *fp = fmemopen((void *)buf, len, "rb");
	ck_assert_ptr_nonnull(fp);
	StreamReader *r = stream_reader_open(fp, "<out>");
	const StreamHeader *h = stream_reader_header(r);
	ck_assert_msg(h != NULL, "%s", stream_reader_error(r));
	memset(e, 0, sizeof *e);
	stream_header_copy(&e->h, h);
	Record rec;
	int rc;
	char err[256];
	while ((rc = stream_reader_next(r, &rec)) > 0) {
		const Tensor *t = record_tensor(&rec, "embedding", DTYPE_F32, 1, err, sizeof err);
		ck_assert_msg(t != NULL, "%s", err);
		ck_assert_int_lt(e->n, 64);
		if (e->n == 0)
			e->dim = (int)t->shape[0];
		ck_assert_int_eq(t->shape[0], e->dim);
		e->x = realloc(e->x, (size_t)(e->n + 1) * e->dim * sizeof(float));
		memcpy(e->x + e->n * e->dim, t->data, (size_t)e->dim * sizeof(float));
		e->id[e->n] = rec.id;
		e->label[e->n] = rec.label;
		e->epoch[e->n] = rec.epoch;
		snprintf(e->source[e->n], 64, "%s", rec.source ? rec.source : "");
		e->n++;
	}
	ck_assert_msg(rc == 0, "%s", stream_reader_error(r));
	stream_reader_close(r);
	fclose(fp);
}

static void
emb_free(Emb *e)
{
	free(e->x);
	stream_header_free(&e->h);
}

/* The reference: the checkpoint run in process on image i. */
static void
reference(float *out, const char *ckpath, int n, ModelOutput which, int h, int w, int *dim)
{
	Checkpoint ck;
	char err[512];
	checkpoint_init(&ck);
	ck_assert_msg(checkpoint_load(&ck, ckpath, err, sizeof err) == 0, "%s", err);
	Model *m = model_new(&ck.config, n, MODEL_INFER, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_msg(checkpoint_restore_model(&ck, m, 0, err, sizeof err) == 0, "%s", err);
	int C = ck.config.in_channels;
	uint8_t *px = malloc((size_t)n * IMG * IMG * C), *src = malloc((size_t)h * w * C);
	float *x = malloc((size_t)n * IMG * IMG * C * sizeof(float));
	for (int i = 0; i < n; i++) {
		fill_image(src, i, h, w, C);
		if (h == IMG && w == IMG)
			memcpy(px + (size_t)i * IMG * IMG * C, src, (size_t)IMG * IMG * C);
		else
			image_resize(px + (size_t)i * IMG * IMG * C, IMG, IMG, src, h, w, C, NULL);
	}
	input_normalize_u8(x, px, n, IMG, IMG, C, ck.mean, ck.std);
	const float *y = model_forward_eval(m, x, n, which);
	*dim = model_output_dim(m, which);
	memcpy(out, y, (size_t)n * *dim * sizeof(float));
	free(px);
	free(src);
	free(x);
	model_free(m);
	checkpoint_free(&ck);
}

static void
assert_close(const float *a, const float *b, size_t n, double tol)
{
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabs(a[i] - b[i]) <= tol * (1 + fabs(b[i])), "element %zu: %.8g vs %.8g", i, a[i], b[i]);
}

/* ------------------------------------------------------------------ */

START_TEST(test_encode_basic)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	Emb e;
	float ref[NREC * 64];
	int dim;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --batch 5 < '%s'", ckp, in);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	read_embeddings(&e, r.out, r.outlen);
	ck_assert_str_eq(e.h.kind, "embeddings");
	ck_assert_int_eq(e.h.nclasses, 3);
	ck_assert_str_eq(e.h.classes[2], "cat");
	ck_assert_int_eq(e.h.records_per_epoch, NREC);
	ck_assert_int_eq(e.h.start_epoch, 2);
	ck_assert_str_eq(stream_header_get_meta(&e.h, "layer"), "encoder");
	ck_assert_str_eq(stream_header_get_meta(&e.h, "model"), ckp);
	ck_assert_int_ge(e.h.nprov, 1);
	ck_assert_str_eq(e.h.prov[e.h.nprov - 1].tool, "ssl-encode");
	ck_assert_int_eq(e.n, NREC);
	ck_assert_int_eq(e.dim, 32);  /* 8 x width */
	for (int i = 0; i < NREC; i++) {
		char want[64];
		snprintf(want, sizeof want, "%s/%d.png", class_names[i % 3], i);
		ck_assert_int_eq(e.id[i], 100 + i);
		ck_assert_int_eq(e.label[i], i % 3);
		ck_assert_int_eq(e.epoch[i], 2);
		ck_assert_str_eq(e.source[i], i % 2 == 0 ? want : "");
	}
	reference(ref, ckp, NREC, MODEL_OUT_ENCODER, IMG, IMG, &dim);
	ck_assert_int_eq(dim, 32);
	assert_close(e.x, ref, (size_t)NREC * dim, 1e-5);
	emb_free(&e);
	tu_result_free(&r);
}
END_TEST

/* Eval mode: an image's embedding does not depend on its batch (train-mode
 * BatchNorm would mix the batch); and the same run gives the same bytes. */
START_TEST(test_encode_eval_deterministic)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r1, r2, r3;
	Emb a, b;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r1, "ssl-encode -m '%s' --batch 1 '%s'", ckp, in);
	tu_run(&r2, "ssl-encode -m '%s' --batch 256 --threads 1 '%s'", ckp, in);
	tu_run(&r3, "ssl-encode -m '%s' --batch 1 - < '%s'", ckp, in);
	ck_assert_msg(r1.status == 0 && r2.status == 0 && r3.status == 0, "%s%s%s", r1.err, r2.err, r3.err);
	read_embeddings(&a, r1.out, r1.outlen);
	read_embeddings(&b, r2.out, r2.outlen);
	ck_assert_int_eq(a.n, NREC);
	ck_assert_int_eq(b.n, NREC);
	assert_close(a.x, b.x, (size_t)NREC * a.dim, 1e-5);
	/* Provenance differs ("-" vs the path), the records do not. */
	emb_free(&b);
	read_embeddings(&b, r3.out, r3.outlen);
	ck_assert_int_eq(memcmp(a.x, b.x, (size_t)NREC * a.dim * sizeof(float)), 0);
	emb_free(&a);
	emb_free(&b);
	tu_result_free(&r3);
	tu_run(&r3, "ssl-encode -m '%s' --batch 1 '%s'", ckp, in);
	ck_assert_uint_eq(r3.outlen, r1.outlen);
	ck_assert_int_eq(memcmp(r3.out, r1.out, r1.outlen), 0);
	tu_result_free(&r1);
	tu_result_free(&r2);
	tu_result_free(&r3);
}
END_TEST

/* --precision bf16: embeddings near fp32's, not equal; the same on every
 * run; refused where the native kernel is off (SSL_ISA=avx2), where auto
 * is fp32 with a note. Without avx512_bf16 the bf16 runs use the portable
 * kernel ($SSL_BF16=portable). */
START_TEST(test_encode_bf16)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	const char *kernel = bf16_native() ? "" : "SSL_BF16=portable ";
	TuResult r, r16, r16b;
	Emb a, b;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --layer proj '%s'", ckp, in);
	tu_run(&r16, "%sssl-encode -m '%s' --layer proj --precision bf16 '%s'", kernel, ckp, in);
	tu_run(&r16b, "%sssl-encode -m '%s' --layer proj --precision bf16 --batch 3 '%s'", kernel, ckp, in);
	ck_assert_msg(r.status == 0 && r16.status == 0 && r16b.status == 0, "%s%s%s", r.err, r16.err, r16b.err);
	read_embeddings(&a, r.out, r.outlen);
	read_embeddings(&b, r16.out, r16.outlen);
	ck_assert_int_eq(a.n, b.n);
	assert_close(b.x, a.x, (size_t)a.n * a.dim, 0.03);
	ck_assert(memcmp(a.x, b.x, (size_t)a.n * a.dim * sizeof(float)) != 0);
	emb_free(&a);
	read_embeddings(&a, r16b.out, r16b.outlen);
	ck_assert(memcmp(a.x, b.x, (size_t)a.n * a.dim * sizeof(float)) == 0);
	emb_free(&a);
	emb_free(&b);
	tu_result_free(&r);
	tu_result_free(&r16);
	tu_result_free(&r16b);
	tu_run(&r, "env -u SSL_BF16 SSL_ISA=avx2 ssl-encode -m '%s' --precision bf16 '%s'", ckp, in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--precision bf16: ");
	ck_assert_uint_eq(r.outlen, 0);
	tu_result_free(&r);
	tu_run(&r, "SSL_ISA=avx2 ssl-encode -m '%s' --precision auto '%s'", ckp, in);
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.err, "--precision auto: fp32");
	tu_result_free(&r);
}
END_TEST

static const struct {
	const char *name;
	ModelOutput out;
	int dim;
} layers[] = {
	{ "encoder", MODEL_OUT_ENCODER, 32 },
	{ "proj-hidden", MODEL_OUT_PROJ_HIDDEN, 16 },
	{ "proj", MODEL_OUT_PROJ, 8 },
	{ "logits", MODEL_OUT_LOGITS, 3 },
};

START_TEST(test_encode_layers)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	Emb e;
	float ref[NREC * 64];
	int dim;
	make_checkpoint(ckp, 3, 3);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --layer %s --batch 4 < '%s'", ckp, layers[_i].name, in);
	ck_assert_msg(r.status == 0, "%s", r.err);
	read_embeddings(&e, r.out, r.outlen);
	ck_assert_int_eq(e.dim, layers[_i].dim);
	ck_assert_str_eq(stream_header_get_meta(&e.h, "layer"), layers[_i].name);
	reference(ref, ckp, NREC, layers[_i].out, IMG, IMG, &dim);
	ck_assert_int_eq(dim, layers[_i].dim);
	assert_close(e.x, ref, (size_t)NREC * dim, 1e-5);
	emb_free(&e);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_no_classifier)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	make_checkpoint(ckp, 3, 0);
	write_images(in, 2, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --layer logits < '%s'", ckp, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "no logits layer") != NULL, "%s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_l2)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	Emb e, raw;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --l2 --layer proj < '%s'", ckp, in);
	ck_assert_msg(r.status == 0, "%s", r.err);
	read_embeddings(&e, r.out, r.outlen);
	tu_result_free(&r);
	tu_run(&r, "ssl-encode -m '%s' --layer proj < '%s'", ckp, in);
	read_embeddings(&raw, r.out, r.outlen);
	ck_assert_str_eq(stream_header_get_meta(&e.h, "l2"), "yes");
	for (int i = 0; i < NREC; i++) {
		double ss = 0, rs = 0;
		for (int j = 0; j < e.dim; j++) {
			ss += (double)e.x[i * e.dim + j] * e.x[i * e.dim + j];
			rs += (double)raw.x[i * e.dim + j] * raw.x[i * e.dim + j];
		}
		ck_assert_msg(fabs(sqrt(ss) - 1) < 1e-5, "record %d: norm %g", i, sqrt(ss));
		/* the direction is the raw one */
		for (int j = 0; j < e.dim; j++)
			ck_assert_msg(fabs(e.x[i * e.dim + j] - raw.x[i * e.dim + j] / sqrt(rs)) < 1e-5, "record %d", i);
	}
	emb_free(&e);
	emb_free(&raw);
	tu_result_free(&r);
}
END_TEST

/* --precise-bn: the tool's embeddings are the in-process precise pass
 * (8, 8, then the last 4 of 20 images: at least half a batch) followed by
 * eval; the header says so; a views stream or images of another size are
 * refused, naming the file. */
START_TEST(test_encode_precise_bn)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl"), *bn = tu_path("bn.ssl");
	TuResult r, plain;
	Emb e;
	Checkpoint ck;
	char err[512];
	int64_t used;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	write_images(bn, 20, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --batch 8 --precise-bn '%s' < '%s'", ckp, bn, in);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.err, "BatchNorm statistics recomputed over 20 images");
	read_embeddings(&e, r.out, r.outlen);
	ck_assert_str_eq(stream_header_get_meta(&e.h, "precise_bn"), bn);
	/* the reference, in process */
	checkpoint_init(&ck);
	ck_assert_msg(checkpoint_load(&ck, ckp, err, sizeof err) == 0, "%s", err);
	Model *m = model_new(&ck.config, 8, MODEL_TRAIN, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(checkpoint_restore_model(&ck, m, 0, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(precise_bn_from_stream(m, bn, ck.mean, ck.std, 8, &used, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(used, 20);
	uint8_t px[NREC * IMG * IMG * 3];
	float x[NREC * IMG * IMG * 3];
	for (int i = 0; i < NREC; i++)
		fill_image(px + (size_t)i * IMG * IMG * 3, i, IMG, IMG, 3);
	input_normalize_u8(x, px, 8, IMG, IMG, 3, ck.mean, ck.std);
	assert_close(e.x, model_forward_eval(m, x, 8, MODEL_OUT_ENCODER), (size_t)8 * e.dim, 1e-5);
	/* and not what the checkpoint's own statistics give */
	tu_run(&plain, "ssl-encode -m '%s' --batch 8 < '%s'", ckp, in);
	ck_assert_int_eq(plain.status, 0);
	Emb p;
	read_embeddings(&p, plain.out, plain.outlen);
	ck_assert(p.n == e.n && p.dim == e.dim && memcmp(p.x, e.x, sizeof(float) * (size_t)e.n * e.dim) != 0);
	emb_free(&p);
	tu_result_free(&plain);
	model_free(m);
	checkpoint_free(&ck);
	emb_free(&e);
	tu_result_free(&r);
	/* an embeddings stream is not images */
	tu_run(&r, "ssl-encode -m '%s' < '%s' > '%s'", ckp, in, tu_path("e.ssl"));
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	tu_run(&r, "ssl-encode -m '%s' --precise-bn '%s' < '%s' > /dev/null", ckp, tu_path("e.ssl"), in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "expected an images stream");
	tu_result_free(&r);
	write_images(bn, 4, 10, 12, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --precise-bn '%s' < '%s' > /dev/null", ckp, bn, in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "record 1 (id 100): image is 10x12x3, the model takes 8x8x3");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_size_mismatch)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	make_checkpoint(ckp, 3, 0);
	write_images(in, 3, 10, 12, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' '%s' > /dev/null", ckp, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "record 1 (id 100)") && strstr(r.err, "10x12") &&
	              strstr(r.err, "ssl-decode --size 8x8") && strstr(r.err, "--resize"), "%s", r.err);
	ck_assert_msg(strstr(r.err, in) != NULL, "names the input: %s", r.err);
	/* one line */
	ck_assert_ptr_eq(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_resize)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	Emb e;
	float ref[NREC * 64];
	int dim;
	make_checkpoint(ckp, 3, 0);
	/* one shrinks (area), the other grows (bilinear) */
	int sizes[2][2] = { { 20, 14 }, { 5, 6 } };
	for (int k = 0; k < 2; k++) {
		write_images(in, NREC, sizes[k][0], sizes[k][1], 3, 0);
		tu_run(&r, "ssl-encode -m '%s' --resize < '%s'", ckp, in);
		ck_assert_msg(r.status == 0, "%s", r.err);
		read_embeddings(&e, r.out, r.outlen);
		reference(ref, ckp, NREC, MODEL_OUT_ENCODER, sizes[k][0], sizes[k][1], &dim);
		ck_assert_int_eq(e.n, NREC);
		assert_close(e.x, ref, (size_t)NREC * dim, 1e-5);
		emb_free(&e);
		tu_result_free(&r);
	}
}
END_TEST

START_TEST(test_encode_channels)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	make_checkpoint(ckp, 3, 0);
	write_images(in, 3, IMG, IMG, 1, 0);
	tu_run(&r, "ssl-encode -m '%s' --resize < '%s' > /dev/null", ckp, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "record 1 (id 100)") && strstr(r.err, "1 channel,") &&
	              strstr(r.err, "takes 3") && strstr(r.err, "--channels 3"), "%s", r.err);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_truncated)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl"), *npy = tu_path("t.npy");
	TuResult r;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 1);
	tu_run(&r, "ssl-encode -m '%s' --batch 4 --npy '%s' < '%s' > /dev/null; s=$?; ls '%s'; exit $s", ckp, npy,
	       in, tu_tmpdir());
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "truncated") != NULL, "%s", r.err);
	/* no .npy, finished or temporary, is left behind */
	ck_assert_msg(strstr(r.out, ".npy") == NULL, "left: %s", r.out);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_bad_model)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl");
	TuResult r;
	write_images(in, 2, IMG, IMG, 3, 0);
	tu_write_file(ckp, "not a checkpoint", 16);
	tu_run(&r, "ssl-encode -m '%s' < '%s'", ckp, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, ckp) != NULL, "%s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	tu_result_free(&r);
	tu_run(&r, "ssl-encode -m '%s' < '%s'", tu_path("missing.ssl"), in);
	ck_assert_int_eq(r.status, 1);
	tu_result_free(&r);
	/* an embeddings stream is not an images stream */
	make_checkpoint(ckp, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' < '%s' | ssl-encode -m '%s' > /dev/null", ckp, in, ckp);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "'embeddings', expected 'images'") != NULL, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

/* lib/io/modelfile: a file that is not a model is named for what it is. */
START_TEST(test_model_file_named)
{
	static const unsigned char damaged[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, '{', '"', 'a', '"', ':', '1', '}' };
	const char *in = tu_path("mf-in.ssl"), *st = tu_path("mf.safetensors");
	TuResult r;
	write_images(in, 2, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' < '%s'", in, in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "mf-in.ssl: an ssl-tools images stream (ssl-stream(5)), not a model: give a checkpoint");
	tu_result_free(&r);
	tu_run(&r, "ssl-export -o '%s' '%s'", st, in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "mf-in.ssl: an ssl-tools images stream (ssl-stream(5)), not a model");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --resume '%s' -o '%s' '%s'", in, tu_path("x.ssl"), in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--resume: ");
	tu_assert_has(r.err, "mf-in.ssl: an ssl-tools images stream (ssl-stream(5)), not a model: give an ssl-tools "
	                     "checkpoint");
	tu_result_free(&r);
	tu_write_file(st, damaged, sizeof damaged);
	tu_run(&r, "ssl-encode -m '%s' < '%s'", st, in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "mf.safetensors: a damaged safetensors file: its header length is 1099511627775 bytes, "
	                     "the file has 15");
	tu_result_free(&r);
	tu_run(&r, "ssl-export -o '%s' '%s'", tu_path("mf2.safetensors"), st);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "a damaged safetensors file");
	tu_result_free(&r);
	/* a checkpoint where a safetensors file is wanted, and the other way */
	make_checkpoint(tu_path("mf.ssl"), 3, 0);
	tu_run(&r, "ssl-train --init-from '%s' -o '%s' '%s'", tu_path("mf.ssl"), tu_path("x.ssl"), in);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--init-from: ");
	tu_assert_has(r.err, "mf.ssl: an ssl-tools checkpoint, not a safetensors file");
	tu_result_free(&r);
	{
		char cmd[1024];
		snprintf(cmd, sizeof cmd, "ssl-export -q -o '%s' '%s'", tu_path("mf3.safetensors"), tu_path("mf.ssl"));
		tu_run_ok(&r, cmd);
		tu_result_free(&r);
	}
	tu_run(&r, "ssl-export -o '%s' '%s'", tu_path("mf4.safetensors"), tu_path("mf3.safetensors"));
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "mf3.safetensors: a safetensors file, not an ssl-tools checkpoint");
	tu_result_free(&r);
}
END_TEST

/* ---- .npy */

typedef struct {
	char    descr[8];
	int     fortran;
	int     ndim;
	int64_t shape[2];
	size_t  offset;
} NpyInfo;

/* A strict little parser of the v1.0 header we write. */
static void
npy_parse(NpyInfo *info, const char *buf, size_t len)
{
	memset(info, 0, sizeof *info);
	ck_assert_uint_ge(len, 10);
	ck_assert_int_eq(memcmp(buf, "\x93NUMPY", 6), 0);
	ck_assert_int_eq(buf[6], 1);
	ck_assert_int_eq(buf[7], 0);
	size_t hlen = (unsigned char)buf[8] | (size_t)(unsigned char)buf[9] << 8;
	info->offset = 10 + hlen;
	ck_assert_uint_eq(info->offset % 64, 0);
	ck_assert_uint_le(info->offset, len);
	ck_assert_int_eq(buf[info->offset - 1], '\n');
	char dict[256];
	ck_assert_uint_lt(hlen, sizeof dict);
	memcpy(dict, buf + 10, hlen);
	dict[hlen] = '\0';
	const char *d = strstr(dict, "'descr': '");
	ck_assert_ptr_nonnull(d);
	memcpy(info->descr, d + 10, 3);
	ck_assert_int_eq(d[13], '\'');
	ck_assert_ptr_nonnull(strstr(dict, "'fortran_order': False"));
	const char *s = strstr(dict, "'shape': (");
	ck_assert_ptr_nonnull(s);
	long long a, b;
	if (sscanf(s, "'shape': (%lld, %lld)", &a, &b) == 2) {
		info->ndim = 2;
		info->shape[0] = a;
		info->shape[1] = b;
	} else {
		ck_assert_int_eq(sscanf(s, "'shape': (%lld,)", &a), 1);
		info->ndim = 1;
		info->shape[0] = a;
	}
	ck_assert_int_eq(dict[0], '{');
	/* only spaces after the closing brace, then the newline */
	const char *close = strrchr(dict, '}');
	ck_assert_ptr_nonnull(close);
	for (const char *p = close + 1; p < dict + hlen - 1; p++)
		ck_assert_int_eq(*p, ' ');
}

START_TEST(test_encode_npy)
{
	const char *ckp = tu_path("m.ssl"), *in = tu_path("in.ssl"), *npy = tu_path("e.npy");
	TuResult r;
	Emb e;
	NpyInfo info;
	size_t len;
	make_checkpoint(ckp, 3, 0);
	write_images(in, NREC, IMG, IMG, 3, 0);
	tu_run(&r, "ssl-encode -m '%s' --batch 4 --npy '%s' < '%s'", ckp, npy, in);
	ck_assert_msg(r.status == 0, "%s", r.err);
	read_embeddings(&e, r.out, r.outlen);
	char *buf = tu_read_file(npy, &len);
	npy_parse(&info, buf, len);
	ck_assert_str_eq(info.descr, "<f4");
	ck_assert_int_eq(info.ndim, 2);
	ck_assert_int_eq(info.shape[0], NREC);
	ck_assert_int_eq(info.shape[1], 32);
	ck_assert_uint_eq(len, info.offset + (size_t)NREC * 32 * sizeof(float));
	ck_assert_int_eq(memcmp(buf + info.offset, e.x, (size_t)NREC * 32 * sizeof(float)), 0);
	free(buf);
	buf = tu_read_file(tu_path("e.labels.npy"), &len);
	npy_parse(&info, buf, len);
	ck_assert_str_eq(info.descr, "<i8");
	ck_assert_int_eq(info.ndim, 1);
	ck_assert_int_eq(info.shape[0], NREC);
	ck_assert_uint_eq(len, info.offset + (size_t)NREC * sizeof(int64_t));
	for (int i = 0; i < NREC; i++) {
		int64_t v;
		memcpy(&v, buf + info.offset + i * sizeof v, sizeof v);
		ck_assert_int_eq(v, i % 3);
	}
	free(buf);
	emb_free(&e);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_npy_lib)
{
	char err[256];
	float x[6] = { 1, 2, 3, 4, 5, 6 };
	int64_t shape[2] = { 3, 2 };
	NpyInfo info;
	size_t len;
	ck_assert_int_eq(npy_write(tu_path("a.npy"), x, DTYPE_F32, 2, shape, err, sizeof err), 0);
	char *buf = tu_read_file(tu_path("a.npy"), &len);
	npy_parse(&info, buf, len);
	ck_assert_uint_eq(info.offset, NPY_HEADER_BYTES);
	ck_assert_int_eq(info.shape[0], 3);
	ck_assert_int_eq(info.shape[1], 2);
	ck_assert_uint_eq(len, NPY_HEADER_BYTES + sizeof x);
	ck_assert_int_eq(memcmp(buf + info.offset, x, sizeof x), 0);
	free(buf);
	/* an empty array is still a valid file */
	NpyWriter w;
	ck_assert_int_eq(npy_writer_open(&w, tu_path("z.npy"), DTYPE_F32, 2, 5, err, sizeof err), 0);
	ck_assert_int_eq(npy_writer_commit(&w, err, sizeof err), 0);
	buf = tu_read_file(tu_path("z.npy"), &len);
	npy_parse(&info, buf, len);
	ck_assert_int_eq(info.shape[0], 0);
	ck_assert_int_eq(info.shape[1], 5);
	ck_assert_uint_eq(len, NPY_HEADER_BYTES);
	free(buf);
	/* abort leaves nothing */
	ck_assert_int_eq(npy_writer_open(&w, tu_path("gone.npy"), DTYPE_F32, 2, 5, err, sizeof err), 0);
	ck_assert_int_eq(npy_writer_put(&w, x, 1, err, sizeof err), 0);
	npy_writer_abort(&w);
	struct stat st;
	ck_assert_int_ne(stat(tu_path("gone.npy"), &st), 0);
	/* unwritable place */
	ck_assert_int_eq(npy_writer_open(&w, "/nonexistent/dir/x.npy", DTYPE_F32, 2, 5, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "/nonexistent/dir/x.npy") != NULL, "%s", err);
	/* the labels name */
	char *p = npy_labels_path("run/test.npy");
	ck_assert_str_eq(p, "run/test.labels.npy");
	free(p);
	p = npy_labels_path("emb");
	ck_assert_str_eq(p, "emb.labels.npy");
	free(p);
	/* a shape too long for the fixed header is refused */
	char hdr[NPY_HEADER_BYTES];
	int64_t big[2] = { INT64_MAX, INT64_MAX };
	ck_assert_int_eq(npy_header(hdr, DTYPE_F32, 2, big), 0);
	ck_assert_int_eq(npy_header(hdr, DTYPE_F32, 3, big), -1);
}
END_TEST

START_TEST(test_npy_disk_full)
{
	char err[256];
	float x[64] = { 0 };
	int64_t shape[2] = { 16, 4 };
	setenv("SSL_FAULT_WRITE_BYTES", "100", 1);
	ck_assert_int_eq(npy_write(tu_path("full.npy"), x, DTYPE_F32, 2, shape, err, sizeof err), -1);
	unsetenv("SSL_FAULT_WRITE_BYTES");
	ck_assert_msg(strstr(err, "full.npy") != NULL, "%s", err);
	struct stat st;
	ck_assert_int_ne(stat(tu_path("full.npy"), &st), 0);
}
END_TEST

/* ---- options */

static const char *const bad_options[] = {
	"",                          /* no -m */
	"-m M --batch 0",
	"-m M --batch x",
	"-m M --batch 99999999",
	"-m M --threads 0",
	"-m M --layer pixels",
	"-m M --npy ''",
	"-m M --bogus",
	"-m M --precision fp16",
	"-m M a b",
	"-m",
};

START_TEST(test_encode_bad_options)
{
	TuResult r;
	tu_run(&r, "ssl-encode %s < /dev/null", bad_options[_i]);
	ck_assert_msg(r.status == 2, "'%s': status %d", bad_options[_i], r.status);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_msg(strstr(r.err, "ssl-encode: ") == r.err, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_encode_help)
{
	TuResult r;
	tu_run(&r, "ssl-encode --help");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "--layer"));
	tu_result_free(&r);
	tu_run(&r, "ssl-encode --version");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "ssl-encode "));
	tu_result_free(&r);
}
END_TEST

static Suite *
encode_suite(void)
{
	Suite *s = suite_create("encode");
	TCase *tc = tcase_create("tool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_encode_basic);
	tcase_add_test(tc, test_encode_eval_deterministic);
	tcase_add_test(tc, test_encode_bf16);
	tcase_add_loop_test(tc, test_encode_layers, 0, (int)(sizeof layers / sizeof layers[0]));
	tcase_add_test(tc, test_encode_no_classifier);
	tcase_add_test(tc, test_encode_l2);
	tcase_add_test(tc, test_encode_size_mismatch);
	tcase_add_test(tc, test_encode_resize);
	tcase_add_test(tc, test_encode_channels);
	tcase_add_test(tc, test_encode_truncated);
	tcase_add_test(tc, test_encode_bad_model);
	tcase_add_test(tc, test_model_file_named);
	tcase_add_test(tc, test_encode_npy);
	tcase_add_loop_test(tc, test_encode_bad_options, 0, (int)(sizeof bad_options / sizeof bad_options[0]));
	tcase_add_test(tc, test_encode_help);
	tcase_add_test(tc, test_encode_precise_bn);
	suite_add_tcase(s, tc);
	tc = tcase_create("npy");
	tcase_add_test(tc, test_npy_lib);
	tcase_add_test(tc, test_npy_disk_full);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(encode_suite)
