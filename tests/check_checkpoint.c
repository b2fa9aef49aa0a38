/* lib/io/checkpoint: round trip of every tensor by name, refusal of truncated,
 * bit-flipped, foreign, other-version and other-architecture files, and
 * an injected full disk that leaves the previous file intact. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "testutil.h"
#include "tu_stream.h"
#include "base/util.h"

static ModelConfig
tiny_config(ModelArch arch, int width)
{
	ModelConfig c = tu_tiny_config();
	c.arch = arch;
	c.width = width;
	return c;
}

/* Every value of the model and the optimizer state gets a distinct
 * pseudo-random value, counters too, so a mix-up of two names shows. */
static void
scramble(ParamTable *t, uint64_t seed)
{
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		Rng r = rng_for(seed, 0, (uint64_t)i, 0);
		for (int64_t k = 0; k < e->numel; k++) {
			if (e->data)
				e->data[k] = (float)rng_normal(&r);
			else
				e->i64[k] = (int64_t)rng_below(&r, 1000000);
		}
	}
}

static void
assert_tables_equal(const ParamTable *a, const ParamTable *b)
{
	ck_assert_int_eq(a->n, b->n);
	for (int i = 0; i < a->n; i++) {
		const ParamEntry *x = &a->e[i], *y = params_find(b, x->name);
		ck_assert_msg(y != NULL, "%s missing", x->name);
		ck_assert_int_eq(x->numel, y->numel);
		ck_assert_msg(memcmp(x->data ? (void *)x->data : (void *)x->i64, y->data ? (void *)y->data : (void *)y->i64,
		                     (size_t)x->numel * (x->data ? 4 : 8)) == 0,
		              "%s differs", x->name);
	}
}

typedef struct {
	Model     *m;
	Optim     *o;
	Checkpoint meta;
	float      mean[3], std[3];
	char      *classes[2];
	Provenance prov[1];
	char      *args[2];
} Fixture;

static void
fixture_make(Fixture *f, ModelArch arch, int width, uint64_t seed)
{
	char err[256];
	ModelConfig c = tiny_config(arch, width);
	OptimConfig oc;
	memset(f, 0, sizeof *f);
	f->m = model_new(&c, 4, MODEL_TRAIN, err, sizeof err);
	ck_assert_msg(f->m != NULL, "%s", err);
	scramble(model_params(f->m), seed);
	optim_config_default(&oc, OPTIM_LARS);
	oc.weight_decay = 1.5e-6f;
	f->o = optim_new(&oc, model_params(f->m));
	scramble(optim_state(f->o), seed + 1);
	optim_set_step(f->o, 77);
	checkpoint_init(&f->meta);
	f->mean[0] = 0.4914f, f->mean[1] = 0.4822f, f->mean[2] = 0.4465f;
	f->std[0] = 0.247f, f->std[1] = 0.2435f, f->std[2] = 0.2616f;
	f->meta.mean = f->mean;
	f->meta.std = f->std;
	f->meta.has_optim = 1;
	f->meta.optim = oc;
	f->meta.has_train = 1;
	snprintf(f->meta.train.objective, sizeof f->meta.train.objective, "simclr");
	f->meta.train.step = 77;
	f->meta.train.epoch = 3;
	f->meta.train.epoch_records = 16;
	f->meta.train.total_steps = 100;
	f->meta.train.warmup_steps = 10;
	f->meta.train.relaid_at = 40;
	f->meta.train.relaid_phase = 0.25;
	f->meta.train.records_per_epoch = 40;
	f->meta.train.epochs = 5;
	f->meta.train.batch = 2;
	f->meta.train.lr = 0.3 * 2 / 256;
	f->meta.train.lr_arg = 0.3;
	f->meta.train.temperature = 0.5;
	f->meta.train.seed = UINT64_C(0xfedcba9876543210);
	f->meta.train.threads = 2;
	f->meta.train.loss = 3.25;
	f->classes[0] = "cat";
	f->classes[1] = "dög";
	f->meta.nclasses = 2;
	f->meta.classes = f->classes;
	f->args[0] = "--epochs";
	f->args[1] = "it's";
	f->prov[0] = (Provenance){ .tool = "ssl-decode", .version = "0.1.0", .nargs = 2, .args = f->args };
	f->meta.nprov = 1;
	f->meta.prov = f->prov;
}

static void
fixture_free(Fixture *f)
{
	optim_free(f->o);
	model_free(f->m);
}

static void
save_ok(Fixture *f, const char *path)
{
	char err[512];
	ck_assert_msg(checkpoint_save(path, &f->meta, f->m, f->o, err, sizeof err) == 0, "%s", err);
}

static int
load_fails_with(const char *path, const char *needle)
{
	Checkpoint ck;
	char err[512];
	int rc = checkpoint_load(&ck, path, err, sizeof err);
	ck_assert_msg(rc < 0, "%s loaded but should not have", path);
	ck_assert_msg(strstr(err, needle) != NULL, "message '%s' lacks '%s'", err, needle);
	ck_assert_msg(strstr(err, path) != NULL, "message '%s' does not name the file", err);
	ck_assert_ptr_null(ck.priv_);
	return 1;
}

START_TEST(test_round_trip)
{
	Fixture f, g;
	Checkpoint ck;
	char err[512];
	const char *path = tu_path("rt.ssl");
	fixture_make(&f, ARCH_RESNET18, 4, 1);
	save_ok(&f, path);
	ck_assert_int_eq(checkpoint_load(&ck, path, err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_check_config(&ck, model_config(f.m), err, sizeof err), 0);
	ck_assert_float_eq(ck.mean[1], 0.4822f);
	ck_assert_float_eq(ck.std[2], 0.2616f);
	ck_assert_int_eq(ck.has_optim, 1);
	ck_assert_int_eq(ck.optim.kind, OPTIM_LARS);
	ck_assert_float_eq(ck.optim.weight_decay, 1.5e-6f);
	ck_assert_int_eq(ck.optim_step, 77);
	ck_assert_int_eq(ck.has_train, 1);
	ck_assert_str_eq(ck.train.objective, "simclr");
	ck_assert_int_eq(ck.train.step, 77);
	ck_assert_int_eq(ck.train.epoch, 3);
	ck_assert_int_eq(ck.train.epoch_records, 16);
	ck_assert_int_eq(ck.train.total_steps, 100);
	ck_assert_int_eq(ck.train.warmup_steps, 10);
	ck_assert_int_eq(ck.train.relaid_at, 40);
	ck_assert(ck.train.relaid_phase == 0.25);
	ck_assert_int_eq(ck.train.records_per_epoch, 40);
	ck_assert(ck.train.lr == 0.3 * 2 / 256);
	ck_assert(ck.train.seed == UINT64_C(0xfedcba9876543210));
	ck_assert_int_eq(ck.nclasses, 2);
	ck_assert_str_eq(ck.classes[1], "dög");
	ck_assert_int_eq(ck.nprov, 1);
	ck_assert_str_eq(ck.prov[0].tool, "ssl-decode");
	ck_assert_str_eq(ck.prov[0].args[1], "it's");

	/* Restore into a fresh model and optimizer: every tensor by name. */
	fixture_make(&g, ARCH_RESNET18, 4, 99);
	ck_assert_int_eq(checkpoint_restore_model(&ck, g.m, 0, err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_restore_optim(&ck, g.o, err, sizeof err), 0);
	assert_tables_equal(model_params(f.m), model_params(g.m));
	assert_tables_equal(optim_state(f.o), optim_state(g.o));
	ck_assert_int_eq(optim_get_step(g.o), 77);
	ck_assert_ptr_nonnull(params_find(model_params(g.m), "layer1.0.bn1.running_mean"));
	ck_assert_ptr_nonnull(params_find(model_params(g.m), "bn1.num_batches_tracked"));
	checkpoint_free(&ck);
	ck_assert_ptr_null(ck.priv_);
	fixture_free(&f);
	fixture_free(&g);
}
END_TEST

START_TEST(test_other_arch)
{
	Fixture f;
	Checkpoint ck;
	Model *m;
	ModelConfig c = tiny_config(ARCH_RESNET18, 4), c8 = tiny_config(ARCH_RESNET18, 8);
	char err[512];
	const char *path = tu_path("r34.ssl");
	fixture_make(&f, ARCH_RESNET34, 4, 3);
	save_ok(&f, path);
	ck_assert_int_eq(checkpoint_load(&ck, path, err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_check_config(&ck, &c, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "arch resnet34 in the checkpoint, resnet18 expected"), "%s", err);
	m = model_new(&c, 2, MODEL_INFER, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(checkpoint_restore_model(&ck, m, 0, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "not in the model") && strstr(err, "layer1.2."), "%s", err);
	model_free(m);
	/* Same names, other width: the first shape mismatch is named. */
	checkpoint_free(&ck);
	fixture_free(&f);
	fixture_make(&f, ARCH_RESNET18, 4, 3);
	save_ok(&f, path);
	ck_assert_int_eq(checkpoint_load(&ck, path, err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_check_config(&ck, &c8, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "width 4 in the checkpoint, 8 expected"), "%s", err);
	m = model_new(&c8, 2, MODEL_INFER, err, sizeof err);
	ck_assert_int_eq(checkpoint_restore_model(&ck, m, 0, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "conv1.weight': shape [4x3x3x3] in the checkpoint, [8x3x3x3] in the model"), "%s", err);
	model_free(m);
	/* Encoder only: a supervised model (fc, no head) takes the encoder. */
	c.proj_layers = 0;
	c.num_classes = 5;
	m = model_new(&c, 2, MODEL_TRAIN, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_int_eq(checkpoint_restore_model(&ck, m, 0, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "missing ('fc.weight', 'fc.bias')") && strstr(err, "'head.0.weight'"), "%s", err);
	ck_assert_int_eq(checkpoint_restore_model(&ck, m, CHECKPOINT_ENCODER_ONLY, err, sizeof err), 0);
	ck_assert(memcmp(params_find(model_params(m), "layer4.1.conv2.weight")->data,
	                 params_find(model_params(f.m), "layer4.1.conv2.weight")->data, 4 * 4 * 8 * 8 * 9) == 0);
	model_free(m);
	checkpoint_free(&ck);
	fixture_free(&f);
}
END_TEST

START_TEST(test_truncated_and_flipped)
{
	Fixture f;
	const char *path = tu_path("good.ssl"), *bad = tu_path("bad.ssl");
	unsigned char *bytes;
	size_t len;
	int flips = 0;
	fixture_make(&f, ARCH_RESNET18, 2, 5);
	save_ok(&f, path);
	bytes = (unsigned char *)tu_read_file(path, &len);
	ck_assert_uint_gt(len, 1000);
	/* Every cut in the first 600 bytes (the structure) and then a spread
	 * through the tensor data and the tail. */
	for (size_t cut = 0; cut < len; cut += cut < 600 ? 1 : 997) {
		tu_write_file(bad, bytes, cut);
		load_fails_with(bad, cut == 0 ? "empty" : "");
	}
	for (size_t cut = len - 6; cut < len; cut++) {
		tu_write_file(bad, bytes, cut);
		load_fails_with(bad, "");
	}
	tu_write_file(bad, bytes, len / 2);
	load_fails_with(bad, "truncated");
	/* Bit flips anywhere: structure, tensor bytes, the checksum itself. */
	for (size_t pos = 0; pos < len; pos += pos < 400 ? 7 : 1231) {
		for (int bit = 0; bit < 8; bit += 3) {
			bytes[pos] ^= (unsigned char)(1u << bit);
			tu_write_file(bad, bytes, len);
			load_fails_with(bad, "");
			bytes[pos] ^= (unsigned char)(1u << bit);
			flips++;
		}
	}
	bytes[len - 1] ^= 1;
	tu_write_file(bad, bytes, len);
	load_fails_with(bad, "checksum mismatch");
	bytes[len - 1] ^= 1;
	bytes[len - 2000] ^= 0x10; /* inside a tensor's data */
	tu_write_file(bad, bytes, len);
	load_fails_with(bad, "checksum mismatch");
	bytes[len - 2000] ^= 0x10;
	ck_assert_int_gt(flips, 100);
	/* Garbage after the map. */
	{
		unsigned char *more = malloc(len + 3);
		memcpy(more, bytes, len);
		memcpy(more + len, "xyz", 3);
		tu_write_file(bad, more, len + 3);
		load_fails_with(bad, "garbage after");
		free(more);
	}
	free(bytes);
	fixture_free(&f);
}
END_TEST

START_TEST(test_foreign_and_version)
{
	Fixture f;
	const char *path = tu_path("v.ssl"), *bad = tu_path("v2.ssl");
	unsigned char *bytes, *p;
	size_t len;
	tu_write_file(bad, "hello\n", 6);
	load_fails_with(bad, "not an ssl-tools checkpoint");
	/* A views stream header is a msgpack map of another format. */
	{
		static const unsigned char m[] = { 0x82, 0xa6, 'f', 'o', 'r', 'm', 'a', 't', 0xaa, 's', 's', 'l', '-', 's', 't',
			                           'r', 'e', 'a', 'm', 0xa1, 'x', 0xc0 };
		tu_write_file(bad, m, sizeof m);
		load_fails_with(bad, "not an ssl-tools checkpoint (an ssl-stream file)");
	}
	/* A claimed 4-billion-entry map in 5 bytes: refused without allocating. */
	{
		static const unsigned char m[] = { 0xdf, 0xff, 0xff, 0xff, 0xff };
		tu_write_file(bad, m, sizeof m);
		load_fails_with(bad, "truncated");
	}
	load_fails_with(tu_path("does-not-exist.ssl"), "No such file");
	fixture_make(&f, ARCH_RESNET18, 2, 7);
	save_ok(&f, path);
	bytes = (unsigned char *)tu_read_file(path, &len);
	p = memmem(bytes, len, "\xa7version\x92\x01\x00", 11);
	ck_assert_ptr_nonnull(p);
	p[9] = 2;
	tu_write_file(bad, bytes, len);
	load_fails_with(bad, "checkpoint version 2.0 is not supported (this is 1.0)");
	free(bytes);
	/* A re-laid cosine inside the warm-up, past the steps taken, or with a
	 * phase outside [0, 1) would make a resume's rate jump: refused. */
	f.meta.train.relaid_at = 10;
	save_ok(&f, bad);
	load_fails_with(bad, "relaid_at 10 (phase 0.25) is not a step of the cosine");
	f.meta.train.relaid_at = 40;
	f.meta.train.relaid_phase = 1;
	save_ok(&f, bad);
	load_fails_with(bad, "relaid_at 40 (phase 1) is not a step of the cosine");
	f.meta.train.relaid_at = 78; /* after the checkpoint's step 77 */
	f.meta.train.relaid_phase = 0.25;
	save_ok(&f, bad);
	load_fails_with(bad, "relaid_at 78 (phase 0.25) is not a step of the cosine already taken");
	fixture_free(&f);
}
END_TEST

START_TEST(test_disk_full_keeps_previous)
{
	Fixture f, g;
	Checkpoint ck;
	char err[512];
	const char *path = tu_path("full.ssl");
	char *before, *after;
	size_t n1, n2;
	fixture_make(&f, ARCH_RESNET18, 2, 11);
	save_ok(&f, path);
	before = tu_read_file(path, &n1);
	fixture_make(&g, ARCH_RESNET18, 2, 12);
	setenv("SSL_FAULT_WRITE_BYTES", "4096", 1);
	ck_assert_int_eq(checkpoint_save(path, &g.meta, g.m, g.o, err, sizeof err), -1);
	unsetenv("SSL_FAULT_WRITE_BYTES");
	ck_assert_msg(strstr(err, "No space left on device") && strstr(err, "intact"), "%s", err);
	after = tu_read_file(path, &n2);
	ck_assert_uint_eq(n1, n2);
	ck_assert(memcmp(before, after, n1) == 0);
	ck_assert_int_eq(checkpoint_load(&ck, path, err, sizeof err), 0);
	checkpoint_free(&ck);
	/* An unwritable place: error, nothing else touched. */
	ck_assert_int_eq(checkpoint_save("/nonexistent-dir/x.ssl", &g.meta, g.m, g.o, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "/nonexistent-dir/x.ssl"), "%s", err);
	/* A non-finite parameter is never written over a good file. */
	model_params(g.m)->e[0].data[3] = NAN;
	ck_assert_int_eq(checkpoint_save(path, &g.meta, g.m, g.o, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "non-finite") && strstr(err, "conv1.weight"), "%s", err);
	free(after);
	after = tu_read_file(path, &n2);
	ck_assert(n1 == n2 && memcmp(before, after, n1) == 0);
	free(before);
	free(after);
	fixture_free(&f);
	fixture_free(&g);
}
END_TEST

START_TEST(test_crc32)
{
	/* The zlib / Python zlib.crc32 check value. */
	ck_assert_uint_eq(checkpoint_crc32(0, "123456789", 9), 0xcbf43926u);
	ck_assert_uint_eq(checkpoint_crc32(checkpoint_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
}
END_TEST

static Suite *
checkpoint_suite(void)
{
	Suite *s = suite_create("checkpoint");
	TCase *tc = tcase_create("checkpoint");
	parallel_set_threads(1);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_crc32);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_other_arch);
	tcase_add_test(tc, test_truncated_and_flipped);
	tcase_add_test(tc, test_foreign_and_version);
	tcase_add_test(tc, test_disk_full_keeps_previous);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(checkpoint_suite)
