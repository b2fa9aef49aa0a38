/* Tests for lib/io/safetensors, ssl-export, ssl-encode -m FILE.safetensors and
 * ssl-train --init-from.
 *
 * PyTorch parity: tests/fixtures/resnet18_w8.safetensors is torchvision's
 * ResNet-18 (CIFAR stem, width 8, SimCLR head) with random weights and
 * BatchNorm statistics, written by tests/ref/make_safetensors_fixture.py;
 * resnet18_w8_batch.safetensors holds 8 images and PyTorch's embeddings of
 * them (float64 forward). Our import must give the same embeddings.
 *
 * Round trip: a checkpoint of ours goes out with ssl-export and back in;
 * names, dtypes, shapes, header layout and every byte are checked.
 *
 * Hostile files: each malformed header is refused with a message that says
 * what is wrong. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "nn/layers.h"
#include "nn/model.h"
#include "base/rng.h"
#include "io/safetensors.h"
#include "tu_stream.h"
#include "io/stream.h"
#include "testutil.h"
#include "base/util.h"

#define NIMG 8
#define TOL  1e-5

static const char *
fixture(const char *name)
{
	static char buf[2][1024];
	static int k;
	char *b = buf[k++ % 2];
	snprintf(b, 1024, "%s/tests/fixtures/%s", tu_src(), name);
	return b;
}

static void
open_ok(SafeTensors *st, const char *path)
{
	char err[1024];
	ck_assert_msg(safetensors_open(st, path, err, sizeof err) == 0, "%s", err);
}

/* Largest |a - b| / max(1, |b|). */
static double
max_rel_err(const float *a, const float *b, size_t n)
{
	double worst = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]) / fmax(1.0, fabs((double)b[i]));
		if (!(d <= worst)) /* NaN too */
			worst = isnan(d) ? INFINITY : d;
	}
	return worst;
}

/* The fixture's model built from its metadata, with its weights. */
static Model *
fixture_model(SafeTensors *st, ModelConfig *c, float *mean, float *std)
{
	char err[1024];
	Model *m;
	open_ok(st, fixture("resnet18_w8.safetensors"));
	ck_assert_msg(safetensors_model_config(st, c, mean, std, err, sizeof err) == 1, "%s", err);
	m = model_new(c, NIMG, MODEL_INFER, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_msg(safetensors_restore(st, model_params(m), ST_MODEL_HEAD, NULL, err, sizeof err) == 0, "%s", err);
	return m;
}

/* ------------------------------------------------------ PyTorch parity */

START_TEST(test_fixture_matches_pytorch)
{
	SafeTensors st, batch;
	ModelConfig c;
	float mean[16], std[16], *x, *h = malloc(NIMG * 64 * sizeof *h), *z = malloc(NIMG * 16 * sizeof *z);
	const StTensor *img, *ref_h, *ref_z;
	Model *m = fixture_model(&st, &c, mean, std);
	ck_assert_int_eq(c.arch, ARCH_RESNET18);
	ck_assert_int_eq(c.stem, STEM_CIFAR);
	ck_assert_int_eq(c.width, 8);
	ck_assert_int_eq(c.proj_layers, 2);
	ck_assert_int_eq(c.proj_dim, 16);
	ck_assert_float_eq_tol(mean[0], 0.4914f, 1e-7);
	ck_assert_float_eq_tol(std[2], 0.2616f, 1e-7);
	/* torchvision's num_batches_tracked: an int64 scalar, as written by torch */
	const StTensor *nbt = safetensors_find(&st, "layer3.1.bn2.num_batches_tracked");
	ck_assert_ptr_nonnull(nbt);
	ck_assert_int_eq(nbt->dtype, ST_I64);
	ck_assert_int_eq(nbt->ndim, 0);
	ck_assert_int_eq(*params_find(model_params(m), "layer3.1.bn2.num_batches_tracked")->i64,
	                 ((const int64_t *)(const void *)nbt->data)[0]);

	open_ok(&batch, fixture("resnet18_w8_batch.safetensors"));
	img = safetensors_find(&batch, "images");
	ref_h = safetensors_find(&batch, "encoder");
	ref_z = safetensors_find(&batch, "proj");
	ck_assert(img && ref_h && ref_z && img->dtype == ST_U8 && img->numel == NIMG * 32 * 32 * 3);
	ck_assert(ref_h->numel == NIMG * 64 && ref_z->numel == NIMG * 16);
	x = malloc((size_t)NIMG * 3 * 32 * 32 * sizeof *x);
	input_normalize_u8(x, img->data, NIMG, 32, 32, 3, mean, std);
	memcpy(h, model_forward_eval(m, x, NIMG, MODEL_OUT_ENCODER), NIMG * 64 * sizeof *h);
	memcpy(z, model_forward_eval(m, x, NIMG, MODEL_OUT_PROJ), NIMG * 16 * sizeof *z);
	{
		float *rh = malloc(NIMG * 64 * sizeof *rh), *rz = malloc(NIMG * 16 * sizeof *rz);
		char err[256];
		ck_assert(safetensors_read_f32(ref_h, rh, err, sizeof err) == 0);
		ck_assert(safetensors_read_f32(ref_z, rz, err, sizeof err) == 0);
		double eh = max_rel_err(h, rh, NIMG * 64), ez = max_rel_err(z, rz, NIMG * 16);
		if (getenv("SHOW_ERR"))
			fprintf(stderr, "fixture: max relative error encoder %.3g, proj %.3g\n", eh, ez);
		ck_assert_msg(eh <= TOL, "encoder embeddings differ from PyTorch's by %g (relative)", eh);
		ck_assert_msg(ez <= TOL, "projections differ from PyTorch's by %g (relative)", ez);
		free(rh);
		free(rz);
	}
	free(x);
	free(h);
	free(z);
	model_free(m);
	safetensors_free(&st);
	safetensors_free(&batch);
}
END_TEST

/* The fixture's images as an images stream. */
static void
write_fixture_images(const char *path)
{
	SafeTensors b;
	StreamHeader hd;
	StreamWriter *w;
	FILE *fp = fopen(path, "wb");
	open_ok(&b, fixture("resnet18_w8_batch.safetensors"));
	const StTensor *img = safetensors_find(&b, "images");
	ck_assert_ptr_nonnull(fp);
	stream_header_init(&hd, STREAM_KIND_IMAGES);
	hd.records_per_epoch = NIMG;
	hd.epochs = 1;
	w = stream_writer_open(fp, path, &hd);
	for (int i = 0; i < NIMG; i++) {
		int64_t shape[3] = { 32, 32, 3 };
		Record rec = { .id = i, .label = -1, .epoch = 0, .ntensors = 1 };
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, (void *)(img->data + (size_t)i * 32 * 32 * 3));
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	ck_assert_int_eq(fclose(fp), 0);
	stream_header_free(&hd);
	safetensors_free(&b);
}

/* An embeddings stream (tool output) into (n, D) floats. */
static float *
read_embeddings(const char *buf, size_t len, int *n, int *D)
{
	FILE *fp = fmemopen((void *)buf, len, "rb");
	StreamReader *r = stream_reader_open(fp, "<out>");
	Record rec;
	float *x = NULL;
	int rc;
	char err[256];
	ck_assert_msg(stream_reader_header(r) != NULL, "%s", stream_reader_error(r));
	*n = 0;
	while ((rc = stream_reader_next(r, &rec)) > 0) {
		const Tensor *t = record_tensor(&rec, "embedding", DTYPE_F32, 1, err, sizeof err);
		ck_assert_msg(t != NULL, "%s", err);
		*D = (int)t->shape[0];
		x = realloc(x, (size_t)(*n + 1) * (size_t)*D * sizeof *x);
		memcpy(x + (size_t)*n * (size_t)*D, t->data, (size_t)*D * sizeof *x);
		ck_assert_int_eq(rec.id, *n);
		(*n)++;
	}
	ck_assert_msg(rc == 0, "%s", stream_reader_error(r));
	stream_reader_close(r);
	fclose(fp);
	return x;
}

/* The reference embeddings of the fixture ("encoder" or "proj"). */
static float *
fixture_ref(const char *name, int64_t *numel)
{
	SafeTensors b;
	char err[256];
	open_ok(&b, fixture("resnet18_w8_batch.safetensors"));
	const StTensor *t = safetensors_find(&b, name);
	float *v = malloc((size_t)t->numel * sizeof *v);
	ck_assert(safetensors_read_f32(t, v, err, sizeof err) == 0);
	*numel = t->numel;
	safetensors_free(&b);
	return v;
}

static void
assert_tool_matches(const char *cmd, const char *ref_name, int want_dim)
{
	TuResult r;
	int n, D;
	int64_t numel;
	tu_run_ok(&r, cmd);
	float *x = read_embeddings(r.out, r.outlen, &n, &D), *ref = fixture_ref(ref_name, &numel);
	ck_assert_int_eq(n, NIMG);
	ck_assert_int_eq(D, want_dim);
	ck_assert_int_eq(numel, (int64_t)n * D);
	double e = max_rel_err(x, ref, (size_t)numel);
	ck_assert_msg(e <= TOL, "%s: %s differs from PyTorch's by %g", cmd, ref_name, e);
	free(x);
	free(ref);
	tu_result_free(&r);
}

START_TEST(test_encode_tool_on_fixture)
{
	char cmd[2048];
	write_fixture_images(tu_path("fx.images"));
	snprintf(cmd, sizeof cmd, "ssl-encode --threads 1 -m '%s' $TMP/fx.images", fixture("resnet18_w8.safetensors"));
	assert_tool_matches(cmd, "encoder", 64);
	snprintf(cmd, sizeof cmd, "ssl-encode --batch 3 --layer proj -m '%s' $TMP/fx.images",
	         fixture("resnet18_w8.safetensors"));
	assert_tool_matches(cmd, "proj", 16);
}
END_TEST

/* ----------------------------------------------------- our checkpoints */

/* A random checkpoint: resnet18 width 4 on 8x8, head 2 layers 16 -> 8,
 * classifier of 3 when fc, BN statistics and counters far from their
 * initial values. */
static void
make_checkpoint(const char *path, ModelArch arch, int width, int fc)
{
	ModelConfig c = tu_tiny_config();
	float mean[3] = { 0.4f, 0.5f, 0.6f }, std[3] = { 0.2f, 0.25f, 0.3f };
	c.arch = arch;
	c.width = width;
	c.num_classes = fc ? 3 : 0;
	Model *m = tu_new_model(&c, 2, 5);
	ParamTable *t = model_params(m);
	Rng r = rng_for(3, 0, 0, 0);
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		for (int64_t k = 0; k < e->numel; k++) {
			if (e->i64)
				e->i64[k] = 1000 + i;
			else if (strstr(e->name, "running_var"))
				e->data[k] = (float)(0.5 + rng_uniform(&r));
			else if (e->role == PARAM_BUFFER || e->role == PARAM_BN_BETA)
				e->data[k] = (float)(0.2 * rng_normal(&r));
		}
	}
	tu_save_model(path, m, mean, std);
}

/* The ParamTable of a checkpoint (model built and restored). */
static Model *
checkpoint_model(const char *path, Checkpoint *ck)
{
	char err[512];
	Model *m;
	checkpoint_init(ck);
	ck_assert_msg(checkpoint_load(ck, path, err, sizeof err) == 0, "%s", err);
	m = model_new(&ck->config, 2, MODEL_INFER, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	ck_assert_msg(checkpoint_restore_model(ck, m, 0, err, sizeof err) == 0, "%s", err);
	return m;
}

static uint64_t
le64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

START_TEST(test_export_round_trip)
{
	TuResult r;
	Checkpoint ck;
	SafeTensors st;
	ModelConfig c;
	float mean[16], std[16];
	char err[1024];
	size_t len;
	make_checkpoint(tu_path("rt.ssl"), ARCH_RESNET18, 4, 1);
	tu_run_ok(&r, "ssl-export --head --fc -o $TMP/rt.safetensors $TMP/rt.ssl");
	tu_result_free(&r);
	Model *m = checkpoint_model(tu_path("rt.ssl"), &ck);
	ParamTable *t = model_params(m);

	/* Layout: 8-byte length, a '{' ... '}' header padded with spaces to a
	 * multiple of 8, the data area with each tensor aligned to its item size. */
	unsigned char *bytes = (unsigned char *)tu_read_file(tu_path("rt.safetensors"), &len);
	uint64_t n = le64(bytes);
	ck_assert(n % 8 == 0 && 8 + n <= len && bytes[8] == '{');
	size_t last = 8 + n - 1;
	while (bytes[last] == ' ')
		last--;
	ck_assert_int_eq(bytes[last], '}');
	ck_assert_int_lt(8 + n - 1 - last, 8);

	open_ok(&st, tu_path("rt.safetensors"));
	ck_assert_int_eq(st.ntensors, t->n); /* encoder + head + fc: every entry */
	for (int i = 0; i < t->n; i++) {
		const ParamEntry *e = &t->e[i];
		const StTensor *f = &st.t[i]; /* the header keeps the table's (state_dict) order */
		ck_assert_str_eq(f->name, e->name);
		ck_assert_int_eq(f->dtype, e->dtype == DTYPE_I64 ? ST_I64 : ST_F32);
		ck_assert_int_eq(f->ndim, e->ndim);
		for (int d = 0; d < e->ndim; d++)
			ck_assert_int_eq(f->shape[d], e->shape[d]);
		ck_assert_int_eq(f->begin % safetensors_dtype_size(f->dtype), 0);
		ck_assert_msg(memcmp(f->data, e->i64 ? (void *)e->i64 : (void *)e->data,
		                     (size_t)e->numel * safetensors_dtype_size(f->dtype)) == 0,
		              "%s: bytes differ", e->name);
	}
	const StTensor *nbt = safetensors_find(&st, "bn1.num_batches_tracked");
	ck_assert(nbt && nbt->dtype == ST_I64 && nbt->ndim == 0 && nbt->numel == 1);
	ck_assert_str_eq(safetensors_meta(&st, "format"), "pt");
	ck_assert_int_eq(safetensors_model_config(&st, &c, mean, std, err, sizeof err), 1);
	ck_assert_msg(checkpoint_check_config(&ck, &c, err, sizeof err) == 0, "%s", err);
	for (int i = 0; i < 3; i++) {
		ck_assert(mean[i] == ck.mean[i]);
		ck_assert(std[i] == ck.std[i]);
	}

	/* Back in: a fresh model of the same config gets identical tensors. */
	{
		Model *m2 = model_new(&c, 2, MODEL_INFER, err, sizeof err);
		ParamTable *t2 = model_params(m2);
		ck_assert_msg(safetensors_restore(&st, t2, ST_MODEL_HEAD | ST_MODEL_FC, NULL, err, sizeof err) == 0, "%s", err);
		ck_assert_int_eq(t2->nparams, t->nparams);
		ck_assert(memcmp(t2->params, t->params, t->nparams * sizeof(float)) == 0);
		ck_assert(memcmp(t2->buffers, t->buffers, t->nbuffers * sizeof(float)) == 0);
		ck_assert(memcmp(t2->counters, t->counters, t->ncounters * sizeof(int64_t)) == 0);
		model_free(m2);
	}
	safetensors_free(&st);
	free(bytes);
	model_free(m);
	checkpoint_free(&ck);
}
END_TEST

/* Without --head/--fc only the encoder goes out, and the metadata says so. */
START_TEST(test_export_encoder_only)
{
	TuResult r;
	SafeTensors st;
	ModelConfig c;
	float mean[16], std[16];
	char err[512];
	make_checkpoint(tu_path("eo.ssl"), ARCH_RESNET18, 4, 1);
	tu_run_ok(&r, "ssl-export -o $TMP/eo.safetensors $TMP/eo.ssl");
	tu_result_free(&r);
	open_ok(&st, tu_path("eo.safetensors"));
	for (int i = 0; i < st.ntensors; i++)
		ck_assert_msg(strncmp(st.t[i].name, "head.", 5) != 0 && strncmp(st.t[i].name, "fc.", 3) != 0, "%s",
		              st.t[i].name);
	ck_assert_int_eq(st.ntensors, 120); /* torchvision resnet18's state_dict (122) without fc */
	ck_assert_int_eq(safetensors_model_config(&st, &c, mean, std, err, sizeof err), 1);
	ck_assert_int_eq(c.proj_layers, 0);
	ck_assert_int_eq(c.num_classes, 0);
	safetensors_free(&st);
	/* ssl-encode: the encoder works, the head is not there */
	tu_run(&r, "ssl-encode --layer proj-hidden -m $TMP/eo.safetensors </dev/null");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "no projection head");
	tu_result_free(&r);
	/* --head on a model without one */
	make_checkpoint(tu_path("nh.ssl"), ARCH_RESNET18, 4, 0);
	tu_run(&r, "ssl-export --fc -o $TMP/nh.safetensors $TMP/nh.ssl");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "ssl-export: ");
	tu_assert_has(r.err, "no classifier");
	tu_result_free(&r);
}
END_TEST

/* ssl-encode gives the same embeddings from the checkpoint and its export. */
START_TEST(test_encode_same_as_checkpoint)
{
	TuResult a, b;
	StreamHeader hd;
	FILE *fp = fopen(tu_path("sm.images"), "wb");
	uint8_t px[8 * 8 * 3];
	stream_header_init(&hd, STREAM_KIND_IMAGES);
	StreamWriter *w = stream_writer_open(fp, "sm.images", &hd);
	for (int i = 0; i < 5; i++) {
		int64_t shape[3] = { 8, 8, 3 };
		Rng r = rng_for(4, 0, (uint64_t)i, 0);
		Record rec = { .id = i, .label = -1, .ntensors = 1 };
		for (size_t p = 0; p < sizeof px; p++)
			px[p] = (uint8_t)rng_below(&r, 256);
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, px);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(fp);
	stream_header_free(&hd);
	make_checkpoint(tu_path("sm.ssl"), ARCH_RESNET18, 4, 0);
	tu_run_ok(&a, "ssl-export --head -o $TMP/sm.safetensors $TMP/sm.ssl");
	tu_result_free(&a);
	for (int k = 0; k < 2; k++) {
		const char *layer = k ? "proj" : "encoder";
		int n1, n2, d1, d2;
		tu_run(&a, "ssl-encode --layer %s -m $TMP/sm.ssl $TMP/sm.images", layer);
		tu_run(&b, "ssl-encode --layer %s -m $TMP/sm.safetensors $TMP/sm.images", layer);
		ck_assert_msg(a.status == 0 && b.status == 0, "%s\n%s", a.err, b.err);
		float *x = read_embeddings(a.out, a.outlen, &n1, &d1), *y = read_embeddings(b.out, b.outlen, &n2, &d2);
		ck_assert(n1 == 5 && n2 == 5 && d1 == d2);
		ck_assert_msg(memcmp(x, y, (size_t)n1 * (size_t)d1 * sizeof *x) == 0, "%s embeddings differ", layer);
		free(x);
		free(y);
		tu_result_free(&a);
		tu_result_free(&b);
	}
}
END_TEST

/* ------------------------------------------------------- lib read/write */

START_TEST(test_write_read)
{
	float w[6] = { 1, -2, 3.5f, 0, 1e-30f, -7 };
	int64_t cnt = 42, s23[2] = { 2, 3 }, s0[1] = { 0 };
	StWriteTensor t[3] = {
		{ "a.weight", ST_F32, 2, s23, w },
		{ "a.num_batches_tracked", ST_I64, 0, NULL, &cnt },
		{ "empty", ST_F32, 1, s0, w },
	};
	StMeta meta[2] = { { "k", "v" }, { "unicode", "\xc3\xa9t\xc3\xa9" } };
	SafeTensors st;
	char err[512];
	float back[6];
	ck_assert_msg(safetensors_write(tu_path("w.st"), t, 3, meta, 2, err, sizeof err) == 0, "%s", err);
	open_ok(&st, tu_path("w.st"));
	ck_assert_int_eq(st.ntensors, 3);
	ck_assert_str_eq(st.t[0].name, "a.weight");
	ck_assert_str_eq(st.t[1].name, "a.num_batches_tracked");
	ck_assert_int_eq(st.t[1].ndim, 0);
	ck_assert_int_eq(st.t[1].begin, 0); /* 8-byte items first: aligned */
	ck_assert_int_eq(st.t[0].begin, 8);
	ck_assert_int_eq(st.t[2].numel, 0);
	ck_assert_int_eq(safetensors_read_f32(&st.t[0], back, err, sizeof err), 0);
	ck_assert(memcmp(back, w, sizeof w) == 0);
	ck_assert_str_eq(safetensors_meta(&st, "unicode"), "\xc3\xa9t\xc3\xa9");
	ck_assert_ptr_null(safetensors_meta(&st, "nope"));
	ck_assert_int_eq(safetensors_sniff(tu_path("w.st")), 1);
	ck_assert_int_eq(safetensors_read_f32(&st.t[1], back, err, sizeof err), -1);
	tu_assert_has(err, "'a.num_batches_tracked': dtype I64");
	safetensors_free(&st);
	/* repeated names are refused, not silently merged */
	t[2].name = "a.weight";
	ck_assert_int_eq(safetensors_write(tu_path("w2.st"), t, 3, NULL, 0, err, sizeof err), -1);
	tu_assert_has(err, "repeated");
	/* an unwritable place leaves nothing behind */
	ck_assert_int_eq(safetensors_write("/nonexistent/dir/x.st", t, 1, NULL, 0, err, sizeof err), -1);
	tu_assert_has(err, "/nonexistent/dir/x.st");
}
END_TEST

/* Builds a file from a header text and a data area of `data` bytes. */
static unsigned char *
build(const char *header, size_t data, size_t *len)
{
	size_t n = strlen(header);
	unsigned char *b = calloc(1, 8 + n + data + 1);
	for (int i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)n >> (8 * i));
	memcpy(b + 8, header, n);
	for (size_t i = 0; i < data; i++)
		b[8 + n + i] = (unsigned char)i;
	*len = 8 + n + data;
	return b;
}

/* F16, BF16 and F64 arrive as float32; other dtypes do not. */
START_TEST(test_convert_dtypes)
{
	/* F16: 1, -2, 0.5, 65504, smallest subnormal; BF16: 1, -3.5 */
	static const uint16_t f16[5] = { 0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001 };
	static const uint16_t bf16[2] = { 0x3f80, 0xc060 };
	static const double f64[2] = { 0.1, -1e-3 };
	const char *hdr = "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[16,26]},"
	                  "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[26,30]},"
	                  "\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
	size_t len;
	unsigned char *b = build(hdr, 30, &len);
	size_t base = len - 30;
	SafeTensors st;
	char err[512];
	float out[5];
	memcpy(b + base, f64, 16);
	memcpy(b + base + 16, f16, 10);
	memcpy(b + base + 26, bf16, 4);
	ck_assert_msg(safetensors_parse(&st, b, len, "conv", err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(safetensors_read_f32(safetensors_find(&st, "h"), out, err, sizeof err), 0);
	ck_assert(out[0] == 1 && out[1] == -2 && out[2] == 0.5f && out[3] == 65504 && out[4] == ldexpf(1, -24));
	ck_assert_int_eq(safetensors_read_f32(safetensors_find(&st, "b"), out, err, sizeof err), 0);
	ck_assert(out[0] == 1 && out[1] == -3.5f);
	ck_assert_int_eq(safetensors_read_f32(safetensors_find(&st, "d"), out, err, sizeof err), 0);
	ck_assert(out[0] == 0.1f && out[1] == -1e-3f);
	safetensors_free(&st);
	/* a non-finite value is refused, naming the tensor and the element */
	{
		double bad[2] = { 1, NAN };
		memcpy(b + base, bad, 16);
		ck_assert_int_eq(safetensors_parse(&st, b, len, "conv", err, sizeof err), 0);
		ck_assert_int_eq(safetensors_read_f32(safetensors_find(&st, "d"), out, err, sizeof err), -1);
		tu_assert_has(err, "'d': element 1 is not finite");
		safetensors_free(&st);
	}
	free(b);
}
END_TEST

/* ------------------------------------------------------ hostile headers */

static const struct {
	const char *header;  /* NULL: raw bytes below */
	size_t      data;    /* bytes of data area */
	const char *want;    /* in the message */
} hostile[] = {
	{ "{\"a\":", 0, "JSON error at byte" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate" },
	{ "[1, 2, 3]", 0, "does not start with '{'" },
	{ "{\"a\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a': unknown dtype F33" },
	{ "{\"a\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a': unknown dtype" },
	{ "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'a': 'dtype' is missing" },
	{ "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "'a': 'shape' is missing" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "'a': 'data_offsets' is missing" },
	{ "{\"a\":[1]}", 0, "'a': not an object" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, "shape[0] is not a non-negative" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, "at most 8 dims" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4,
	  "data_offsets [0, 8] outside the data area (4 bytes)" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "outside the data area" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, "data_offsets is not [begin, end]" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,-4]}}", 4, "data_offsets is not [begin, end]" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
	  "'a': shape [2] of F32 is 8 bytes, data_offsets [0, 4] hold 4" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,4611686018427387904],\"data_offsets\":[0,4]}}", 4,
	  "overflows" },
	{ "{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,4]}}", 4, "overflows" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, "JSON error" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
	  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "overlap" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
	  "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "'b': 4 unused bytes before" },
	{ "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 12, "8 bytes after the last tensor" },
	{ "{\"__metadata__\":{\"k\":1}}", 0, "'__metadata__' value of 'k' is not a string" },
	{ "{\"__metadata__\":[\"k\"]}", 0, "'__metadata__' is not an object" },
	{ "{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "empty name" },
	{ "{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "JSON error" },
	{ "{\"a\":1} x", 0, "JSON error" },
	{ "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "JSON error" },
};

START_TEST(test_hostile_header)
{
	size_t len;
	unsigned char *b = build(hostile[_i].header, hostile[_i].data, &len);
	SafeTensors st;
	char err[1024];
	ck_assert_msg(safetensors_parse(&st, b, len, "bad.st", err, sizeof err) == -1, "accepted: %s",
	              hostile[_i].header);
	ck_assert_msg(strncmp(err, "bad.st: ", 8) == 0 && strstr(err, hostile[_i].want),
	              "case %d: wanted '%s' in: %s", _i, hostile[_i].want, err);
	ck_assert_int_eq(st.ntensors, 0); /* left empty */
	safetensors_free(&st);
	free(b);
}
END_TEST

/* Header length fields that do not fit the file. */
START_TEST(test_hostile_length)
{
	SafeTensors st;
	char err[512];
	size_t len;
	unsigned char *b = build("{}", 0, &len), small[5] = { 1, 2, 3, 4, 5 };
	ck_assert_int_eq(safetensors_parse(&st, b, len, "ok", err, sizeof err), 0); /* the empty file is fine */
	safetensors_free(&st);
	ck_assert_int_eq(safetensors_parse(&st, small, sizeof small, "s", err, sizeof err), -1);
	tu_assert_has(err, "too short");
	b[0] = 200; /* 200 bytes claimed, 2 there */
	ck_assert_int_eq(safetensors_parse(&st, b, len, "s", err, sizeof err), -1);
	tu_assert_has(err, "header length 200 runs past the end of the file (10 bytes");
	b[0] = 0;
	b[4] = 1; /* 4 GiB */
	ck_assert_int_eq(safetensors_parse(&st, b, len, "s", err, sizeof err), -1);
	tu_assert_has(err, "header length 4294967296 not in [2, 100000000]");
	memset(b, 0xff, 8);
	ck_assert_int_eq(safetensors_parse(&st, b, len, "s", err, sizeof err), -1);
	tu_assert_has(err, "not in [2,");
	memset(b, 0, 8);
	b[0] = 1;
	ck_assert_int_eq(safetensors_parse(&st, b, len, "s", err, sizeof err), -1);
	tu_assert_has(err, "header length 1 not in");
	free(b);
	/* on disk: a directory, a missing file, a truncated export */
	ck_assert_int_eq(safetensors_open(&st, tu_tmpdir(), err, sizeof err), -1);
	tu_assert_has(err, "not a regular file");
	ck_assert_int_eq(safetensors_open(&st, tu_path("none.st"), err, sizeof err), -1);
	tu_assert_has(err, "none.st: No such file");
	{
		size_t n;
		char *all = tu_read_file(fixture("resnet18_w8.safetensors"), &n);
		tu_write_file(tu_path("cut.st"), all, n - 100);
		ck_assert_int_eq(safetensors_open(&st, tu_path("cut.st"), err, sizeof err), -1);
		tu_assert_has(err, "cut.st: ");
		tu_assert_has(err, "outside the data area");
		tu_write_file(tu_path("cut2.st"), all, 100);
		ck_assert_int_eq(safetensors_open(&st, tu_path("cut2.st"), err, sizeof err), -1);
		tu_assert_has(err, "runs past the end of the file");
		free(all);
	}
}
END_TEST

/* Through the tools: one line, exit 1, naming the file. */
START_TEST(test_hostile_tools)
{
	TuResult r;
	size_t len;
	unsigned char *b = build("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, &len);
	tu_write_file(tu_path("bad.safetensors"), b, len);
	free(b);
	tu_run(&r, "ssl-export --list $TMP/bad.safetensors");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "ssl-export: ");
	tu_assert_has(r.err, "bad.safetensors: tensor 'a': shape [3] of F32 is 12 bytes");
	ck_assert_int_eq(r.outlen, 0);
	ck_assert_ptr_null(strchr(r.err, '\n') ? strchr(strchr(r.err, '\n') + 1, '\n') : NULL);
	tu_result_free(&r);
	tu_run(&r, "ssl-encode -m $TMP/bad.safetensors </dev/null");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "ssl-encode: ");
	tu_assert_has(r.err, "tensor 'a'");
	tu_result_free(&r);
	/* a well-formed file without our metadata: ssl-encode cannot guess */
	b = build("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, &len);
	tu_write_file(tu_path("nometa.safetensors"), b, len);
	free(b);
	tu_run(&r, "ssl-encode -m $TMP/nometa.safetensors </dev/null");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "no ssl_tools.config metadata");
	tu_result_free(&r);
	/* bad metadata */
	b = build("{\"__metadata__\":{\"ssl_tools.config\":\"{\\\"arch\\\":\\\"resnet99\\\"}\"}}", 0, &len);
	tu_write_file(tu_path("badmeta.safetensors"), b, len);
	free(b);
	tu_run(&r, "ssl-encode -m $TMP/badmeta.safetensors </dev/null");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "metadata ssl_tools.config: 'arch' is missing or not resnet18");
	tu_result_free(&r);
}
END_TEST

/* ------------------------------------------------ names and shapes check */

/* Writes the encoder of a config as safetensors, minus `drop`. */
static void
write_encoder(const char *path, ModelArch arch, ModelStem stem, int width, const char *drop, int i32_counter)
{
	ModelConfig c;
	char err[512];
	model_config_default(&c);
	c.arch = arch;
	c.stem = stem;
	c.width = width;
	c.in_h = c.in_w = 32;
	c.proj_layers = 0;
	Model *m = model_new(&c, 1, MODEL_INFER, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	ParamTable *t = model_params(m);
	StWriteTensor *w = calloc((size_t)t->n, sizeof *w);
	static const int64_t two[1] = { 2 };
	int n = 0;
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (drop && strcmp(e->name, drop) == 0)
			continue;
		w[n] = (StWriteTensor){ e->name, e->dtype == DTYPE_I64 ? ST_I64 : ST_F32, e->ndim, e->shape,
			                    e->i64 ? (void *)e->i64 : (void *)e->data };
		if (i32_counter && e->i64) /* an F32 where the I64 counter belongs */
			w[n].dtype = ST_F32, w[n].ndim = 1, w[n].shape = two;
		n++;
	}
	ck_assert_msg(safetensors_write(path, w, n, NULL, 0, err, sizeof err) == 0, "%s", err);
	free(w);
	model_free(m);
}

static int
restore_into(const char *path, ModelArch arch, int width, char *err, size_t errlen)
{
	ModelConfig c;
	SafeTensors st;
	char why[256];
	int rc;
	model_config_default(&c);
	c.arch = arch;
	c.width = width;
	c.in_h = c.in_w = 32;
	Model *m = model_new(&c, 1, MODEL_INFER, why, sizeof why);
	ck_assert_msg(m != NULL, "%s", why);
	open_ok(&st, path);
	rc = safetensors_restore(&st, model_params(m), 0, NULL, err, errlen);
	safetensors_free(&st);
	model_free(m);
	return rc;
}

START_TEST(test_restore_mismatch)
{
	char err[1024];
	write_encoder(tu_path("ok.st"), ARCH_RESNET18, STEM_CIFAR, 8, NULL, 0);
	ck_assert_msg(restore_into(tu_path("ok.st"), ARCH_RESNET18, 8, err, sizeof err) == 0, "%s", err);

	write_encoder(tu_path("miss.st"), ARCH_RESNET18, STEM_CIFAR, 8, "layer2.0.downsample.1.running_var", 0);
	ck_assert_int_eq(restore_into(tu_path("miss.st"), ARCH_RESNET18, 8, err, sizeof err), -1);
	tu_assert_has(err, "miss.st: does not match the model: 1 tensor missing ('layer2.0.downsample.1.running_var')");

	ck_assert_int_eq(restore_into(tu_path("ok.st"), ARCH_RESNET18, 4, err, sizeof err), -1);
	tu_assert_has(err, "'conv1.weight' [8, 3, 3, 3] in the file, [4, 3, 3, 3] in the model");
	tu_assert_has(err, "The file holds resnet18, cifar stem, width 8, 3 input channels; the model is resnet18, cifar "
	                "stem, width 4");

	write_encoder(tu_path("r34.st"), ARCH_RESNET34, STEM_IMAGENET, 8, NULL, 0);
	ck_assert_int_eq(restore_into(tu_path("r34.st"), ARCH_RESNET18, 8, err, sizeof err), -1);
	tu_assert_has(err, "not in the model ('layer1.2.conv1.weight'");
	tu_assert_has(err, "'conv1.weight' [8, 3, 7, 7] in the file, [8, 3, 3, 3] in the model");
	tu_assert_has(err, "The file holds resnet34, imagenet stem, width 8");

	write_encoder(tu_path("dt.st"), ARCH_RESNET18, STEM_CIFAR, 8, NULL, 1);
	ck_assert_int_eq(restore_into(tu_path("dt.st"), ARCH_RESNET18, 8, err, sizeof err), -1);
	tu_assert_has(err, "'bn1.num_batches_tracked' [2] in the file, [] in the model");

	/* the inference behind those messages, on its own */
	{
		SafeTensors st;
		ModelConfig c;
		open_ok(&st, tu_path("r34.st"));
		ck_assert_int_eq(safetensors_infer_config(&st, &c, err, sizeof err), 0);
		ck_assert(c.arch == ARCH_RESNET34 && c.stem == STEM_IMAGENET && c.width == 8 && c.in_channels == 3);
		safetensors_free(&st);
		write_encoder(tu_path("r50.st"), ARCH_RESNET50, STEM_CIFAR, 2, NULL, 0);
		open_ok(&st, tu_path("r50.st"));
		ck_assert_int_eq(safetensors_infer_config(&st, &c, err, sizeof err), 0);
		ck_assert(c.arch == ARCH_RESNET50 && c.stem == STEM_CIFAR && c.width == 2 && c.proj_layers == 0);
		safetensors_free(&st);
		open_ok(&st, fixture("resnet18_w8.safetensors"));
		ck_assert_int_eq(safetensors_infer_config(&st, &c, err, sizeof err), 0);
		ck_assert(c.arch == ARCH_RESNET18 && c.width == 8 && c.proj_layers == 2 && c.proj_hidden == 32 &&
		          c.proj_dim == 16);
		safetensors_free(&st);
	}
}
END_TEST

/* ------------------------------------------------------- --init-from */

/* A views stream of n records of 32x32x3, two views each. */
static void
write_views(const char *path, int n, int C)
{
	StreamHeader hd;
	FILE *fp = fopen(path, "wb");
	uint8_t *px = malloc(2 * 32 * 32 * (size_t)C);
	char *names[] = { "a", "b" };
	stream_header_init(&hd, STREAM_KIND_VIEWS);
	stream_header_set_classes(&hd, 2, names);
	hd.records_per_epoch = n;
	hd.epochs = 1;
	StreamWriter *w = stream_writer_open(fp, path, &hd);
	for (int i = 0; i < n; i++) {
		int64_t shape[4] = { 2, 32, 32, C };
		Rng r = rng_for(6, 0, (uint64_t)i, 0);
		Record rec = { .id = i, .label = i % 2, .ntensors = 1 };
		for (size_t p = 0; p < 2 * 32 * 32 * (size_t)C; p++)
			px[p] = (uint8_t)rng_below(&r, 256);
		rec.tensors[0] = tensor_view("views", DTYPE_U8, 4, shape, px);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(fp);
	free(px);
	stream_header_free(&hd);
}

/* The fixture as a checkpoint (--steps 0 --input-size): its encoder, its
 * normalisation, the same embeddings as PyTorch. */
START_TEST(test_init_from_import)
{
	TuResult r;
	Checkpoint ck;
	char cmd[2048];
	tu_run_ok(&r, "ssl-train --init-from \"$FX\" --steps 0 --input-size 32x32x3 -o $TMP/imp.ssl");
	tu_assert_has(r.err, "encoder weights from");
	tu_assert_has(r.err, "head/fc tensors left out");
	tu_result_free(&r);
	checkpoint_init(&ck);
	{
		char err[512];
		ck_assert_msg(checkpoint_load(&ck, tu_path("imp.ssl"), err, sizeof err) == 0, "%s", err);
	}
	ck_assert_int_eq(ck.config.width, 8); /* from the file: no --width given */
	ck_assert(ck.mean[0] == 0.4914f && ck.std[1] == 0.2435f);
	checkpoint_free(&ck);
	write_fixture_images(tu_path("imp.images"));
	snprintf(cmd, sizeof cmd, "ssl-encode --threads 1 -m $TMP/imp.ssl $TMP/imp.images");
	assert_tool_matches(cmd, "encoder", 64);
}
END_TEST

/* Training starts from the file; a model of another shape is refused with
 * the names; --init-from goes with neither --init nor --resume. */
START_TEST(test_init_from_train)
{
	TuResult r;
	write_views(tu_path("v.views"), 4, 3);
	tu_run_ok(&r, "ssl-train --init-from \"$FX\" --batch 2 --steps 1 "
	           "--threads 1 --proj-hidden 16 --proj-dim 8 -o $TMP/t.ssl $TMP/v.views");
	tu_assert_has(r.err, "encoder weights from");
	tu_result_free(&r);
	tu_run_ok(&r, "ssl-train --init-from \"$FX\" --objective supervised "
	           "--batch 2 --steps 1 --threads 1 -o $TMP/s.ssl $TMP/v.views");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --init-from \"$FX\" --width 4 --batch 2 "
	           "--steps 1 --threads 1 -o $TMP/w.ssl $TMP/v.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "resnet18_w8.safetensors: does not match the model:");
	tu_assert_has(r.err, "'conv1.weight' [8, 3, 3, 3] in the file, [4, 3, 3, 3] in the model");
	tu_result_free(&r);
	write_views(tu_path("g.views"), 4, 1);
	tu_run(&r, "ssl-train --init-from \"$FX\" --batch 2 --steps 1 "
	           "--threads 1 -o $TMP/g.ssl $TMP/g.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "'conv1.weight' [8, 3, 3, 3] in the file, [8, 1, 3, 3] in the model");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --init-from x.safetensors --resume y.ssl -o $TMP/z.ssl");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "--init-from and --resume");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --init-from $TMP/none.safetensors -o $TMP/z.ssl $TMP/v.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "none.safetensors: No such file");
	tu_result_free(&r);
}
END_TEST

/* ------------------------------------------------------------ options */

START_TEST(test_export_options)
{
	TuResult r;
	static const char *bad[] = {
		"ssl-export", "ssl-export x.ssl", "ssl-export -o", "ssl-export -o '' x.ssl", "ssl-export --list",
		"ssl-export --list -o y x", "ssl-export --bogus -o y x", "ssl-export -o y x z",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tu_run(&r, "%s", bad[i]);
		ck_assert_msg(r.status == 2, "'%s' exited %d", bad[i], r.status);
		tu_assert_has(r.err, "ssl-export: ");
		tu_result_free(&r);
	}
	tu_run_ok(&r, "ssl-export --help");
	tu_assert_has(r.out, "--head");
	tu_assert_has(r.out, "--fc");
	tu_assert_has(r.out, "--list");
	tu_result_free(&r);
	tu_run_ok(&r, "ssl-export --version");
	tu_assert_has(r.out, "ssl-export ");
	tu_result_free(&r);
	tu_run(&r, "ssl-export -o $TMP/x.safetensors $TMP/missing.ssl");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "missing.ssl");
	tu_result_free(&r);
	/* the output is written atomically: nothing left on failure */
	make_checkpoint(tu_path("o.ssl"), ARCH_RESNET18, 4, 0);
	tu_run(&r, "SSL_FAULT_WRITE_BYTES=1000 ssl-export -o $TMP/full.safetensors $TMP/o.ssl");
	ck_assert_int_eq(r.status, 1);
	tu_result_free(&r);
	ck_assert(access(tu_path("full.safetensors"), F_OK) != 0);
}
END_TEST

/* In the forked test process: its own temporary directory as $TMP, the
 * fixture as $FX. */
static void
setup(void)
{
	setenv("TMP", tu_tmpdir(), 1);
	setenv("FX", fixture("resnet18_w8.safetensors"), 1);
	setenv("OMP_NUM_THREADS", "1", 1);
}

static Suite *
safetensors_suite(void)
{
	Suite *s = suite_create("safetensors");
	TCase *tc = tcase_create("core");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_fixture_matches_pytorch);
	tcase_add_test(tc, test_encode_tool_on_fixture);
	tcase_add_test(tc, test_export_round_trip);
	tcase_add_test(tc, test_export_encoder_only);
	tcase_add_test(tc, test_encode_same_as_checkpoint);
	tcase_add_test(tc, test_write_read);
	tcase_add_test(tc, test_convert_dtypes);
	tcase_add_loop_test(tc, test_hostile_header, 0, (int)(sizeof hostile / sizeof hostile[0]));
	tcase_add_test(tc, test_hostile_length);
	tcase_add_test(tc, test_hostile_tools);
	tcase_add_test(tc, test_restore_mismatch);
	tcase_add_test(tc, test_init_from_import);
	tcase_add_test(tc, test_init_from_train);
	tcase_add_test(tc, test_export_options);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(safetensors_suite)
