/* make_corpus: writes the seed corpora of the fuzz harnesses, built here
 * from our own writers (tests/imgwrite.c, lib/io/stream.c), so that no binary
 * of unknown origin is committed.
 *
 * usage: make_corpus DIR
 * Creates DIR/stream, DIR/image, DIR/dataset, DIR/options and
 * DIR/checkpoint and DIR/safetensors with small
 * valid inputs (and a few near misses) in the layout each harness expects
 * (see the comment at the top of fuzz/fuzz_*.c). The writers of
 * tests/imgwrite.c report through Check, so the work runs as one Check test
 * (in this process: CK_NOFORK). */
#include <check.h>
#include <errno.h>
#include <png.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "imgwrite.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "io/tensor.h"
#include "base/util.h"

static const char *root;
static char tmp[4096];

static void
put(const char *sub, const char *name, const void *a, size_t alen, const void *b, size_t blen)
{
	char path[4096];
	FILE *f;
	snprintf(path, sizeof path, "%s/%s/%s", root, sub, name);
	if (!(f = fopen(path, "wb")))
		die("%s:", path);
	if ((alen && fwrite(a, 1, alen, f) != alen) || (blen && fwrite(b, 1, blen, f) != blen) || fclose(f) != 0)
		die("%s: write error", path);
}

static void
subdir(const char *sub)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", root, sub);
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		die("%s:", path);
}

static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;
	if (!f || fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) < 0)
		die("%s:", path);
	buf = xmalloc((size_t)n + 1);
	if (fread(buf, 1, (size_t)n, f) != (size_t)n)
		die("%s: read error", path);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* ---- streams ---- */

static void
stream_seed(const char *name, const char *kind, int nrec, int dtype, int ndim, const int64_t *shape, int finish)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	StreamHeader h;
	StreamWriter *w;
	char *classes[] = { "cat", "dog", "frog" };
	char *argv[] = { "ssl-decode", "--size", "4x4", "train.tar.gz" };
	int64_t numel = 1;
	uint8_t *data;
	for (int i = 0; i < ndim; i++)
		numel *= shape[i];
	data = xcalloc((size_t)numel, dtype_size((DType)dtype));
	for (size_t i = 0; i < (size_t)numel * dtype_size((DType)dtype); i++)
		data[i] = (uint8_t)(i * 37 + 11);
	stream_header_init(&h, kind);
	stream_header_set_classes(&h, 3, classes);
	h.records_per_epoch = nrec;
	h.epochs = 1;
	stream_header_set_meta(&h, "size", "4x4");
	stream_header_add_provenance(&h, 4, argv);
	if (!f || !(w = stream_writer_open(f, "seed", &h)))
		die("stream seed %s", name);
	for (int i = 0; i < nrec; i++) {
		Record rec = { .id = i, .label = i % 4 - 1, .epoch = 0, .ntensors = 1 };
		rec.source = i % 2 ? "dog/1.jpg" : NULL;
		rec.tensors[0] = tensor_view(strcmp(kind, "images") == 0 ? "image" : strcmp(kind, "views") == 0 ? "views"
		                                                                                                  : "embedding",
		                             (DType)dtype, ndim, shape, data);
		if (stream_writer_put(w, &rec) < 0)
			die("stream seed %s: put", name);
	}
	if (finish) {
		if (stream_writer_close(w) < 0)
			die("stream seed %s: close", name);
	} else {
		stream_writer_abort(w);
	}
	fclose(f);
	put("stream", name, buf, len, NULL, 0);
	free(buf);
	free(data);
	stream_header_free(&h);
}

static void
streams(void)
{
	int64_t img[3] = { 4, 3, 3 }, views[4] = { 2, 2, 2, 1 }, emb[1] = { 5 }, any[2] = { 2, 3 };
	subdir("stream");
	stream_seed("images-3", "images", 3, DTYPE_U8, 3, img, 1);
	stream_seed("images-0", "images", 0, DTYPE_U8, 3, img, 1);
	stream_seed("views-2", "views", 2, DTYPE_U8, 4, views, 1);
	stream_seed("embeddings-2", "embeddings", 2, DTYPE_F32, 1, emb, 1);
	stream_seed("other-f64", "other", 1, DTYPE_F64, 2, any, 1);
	stream_seed("other-i64", "other", 1, DTYPE_I64, 2, any, 1);
	stream_seed("other-i32", "other", 1, DTYPE_I32, 1, emb, 1);
	stream_seed("truncated", "images", 2, DTYPE_U8, 3, img, 0);
}

/* ---- images ---- */

static void
images(void)
{
	enum { H = 5, W = 7 };
	uint8_t px[H * W * 4], idx[H * W], pal[3 * 4] = { 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255 };
	uint8_t px16[H * W * 4 * 2];
	TwBuf b;
	subdir("image");
	tw_pattern(px, H, W, 4, 1);
	for (int i = 0; i < H * W; i++)
		idx[i] = (uint8_t)(i % 4);
	for (size_t i = 0; i < sizeof px16; i++)
		px16[i] = (uint8_t)(i * 13);
#define SEED(name, expr) do { b = (expr); put("image", name, b.data, b.len, NULL, 0); free(b.data); } while (0)
	SEED("rgb.jpg", tw_jpeg(px, H, W, 3, 90, 0));
	SEED("rgb-progressive.jpg", tw_jpeg(px, H, W, 3, 75, 1));
	SEED("gray.jpg", tw_jpeg(px, H, W, 1, 90, 0));
	SEED("cmyk.jpg", tw_jpeg(px, H, W, 4, 90, 0));
	SEED("rgb.png", tw_png(px, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0));
	SEED("rgba-interlaced.png", tw_png(px, H, W, PNG_COLOR_TYPE_RGB_ALPHA, 8, NULL, 0, 1));
	SEED("gray1.png", tw_png(px, H, W, PNG_COLOR_TYPE_GRAY, 1, NULL, 0, 0));
	SEED("gray4.png", tw_png(px, H, W, PNG_COLOR_TYPE_GRAY, 4, NULL, 0, 0));
	SEED("gray16.png", tw_png(px16, H, W, PNG_COLOR_TYPE_GRAY, 16, NULL, 0, 0));
	SEED("graya.png", tw_png(px, H, W, PNG_COLOR_TYPE_GRAY_ALPHA, 8, NULL, 0, 0));
	SEED("rgba16.png", tw_png(px16, H, W, PNG_COLOR_TYPE_RGB_ALPHA, 16, NULL, 0, 0));
	SEED("palette.png", tw_png(idx, H, W, PNG_COLOR_TYPE_PALETTE, 8, pal, 4, 0));
	SEED("p6.ppm", tw_pnm(px, H, W, 3, 0));
	SEED("p3.ppm", tw_pnm(px, H, W, 3, 1));
	SEED("p5.pgm", tw_pnm(px, H, W, 1, 0));
	SEED("p2.pgm", tw_pnm(px, H, W, 1, 1));
#undef SEED
	{
		static const char p1[] = "P1\n# bits\n3 2\n1 0 1\n0 1 0\n";
		static const char p4[] = "P4\n9 2\n\xa5\x80\x5a\x00";
		static const char p5_16[] = "P5 2 1 65535\n\x12\x34\xff\xff";
		put("image", "p1.pbm", p1, sizeof p1 - 1, NULL, 0);
		put("image", "p4.pbm", p4, sizeof p4 - 1, NULL, 0);
		put("image", "p5-16.pgm", p5_16, sizeof p5_16 - 1, NULL, 0);
	}
}

/* ---- dataset inputs: a selector byte, then the file ---- */

static void
dataset_archive(const char *name, const char *format, const char *filter, const TwMember *m, int n, uint8_t sel)
{
	uint8_t *data;
	size_t len;
	tw_archive(tmp, format, filter, m, n);
	data = slurp(tmp, &len);
	put("dataset", name, &sel, 1, data, len);
	free(data);
	unlink(tmp);
}

static void
datasets(void)
{
	enum { H = 4, W = 5 };
	uint8_t px[H * W * 3], idx[16 + 3 * H * W], lab[8 + 3], cifar[2 * 3074];
	TwBuf j = { 0 }, p = { 0 }, g = { 0 };
	uint8_t sel;
	subdir("dataset");
	tw_pattern(px, H, W, 3, 2);
	j = tw_jpeg(px, H, W, 3, 90, 0);
	p = tw_png(px, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	g = tw_pnm(px, H, W, 1, 0);
	{
		TwMember m[] = {
			{ "cat/", NULL, 0 },        { "cat/1.jpg", j.data, j.len },     { "dog/a.png", p.data, p.len },
			{ "dog/b.pgm", g.data, g.len }, { "top.png", p.data, p.len }, { "readme.txt", (const uint8_t *)"hi\n", 3 },
		};
		dataset_archive("tar", "tar", NULL, m, 6, 0);
		dataset_archive("tar-strict-gray", "tar", NULL, m, 6, 8 | 32);
		dataset_archive("tar.gz-resize", "tar", "gz", m, 6, 128);
		dataset_archive("zip", "zip", NULL, m, 6, 0 | 64);
		dataset_archive("cpio.xz", "cpio", "xz", m, 6, 5);
		dataset_archive("tar.bz2", "tar", "bz2", m, 3, 6);
		dataset_archive("tar.zst", "tar", "zst", m, 3, 7);
		dataset_archive("7z", "7z", NULL, m + 1, 2, 0);
	}
	/* IDX: 3 images of 4x5, then with labels */
	memcpy(idx, "\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x04\x00\x00\x00\x05", 16);
	for (int i = 0; i < 3 * H * W; i++)
		idx[16 + i] = (uint8_t)(i * 7);
	sel = 1;
	put("dataset", "idx3", &sel, 1, idx, sizeof idx);
	memcpy(lab, "\x00\x00\x08\x01\x00\x00\x00\x03\x00\x02\x01", 11);
	{
		uint8_t buf[1 + 4 + sizeof idx + sizeof lab];
		buf[0] = 2;
		buf[1] = 0, buf[2] = 0, buf[3] = 0, buf[4] = (uint8_t)sizeof idx;
		memcpy(buf + 5, idx, sizeof idx);
		memcpy(buf + 5 + sizeof idx, lab, sizeof lab);
		put("dataset", "idx3+labels", buf, sizeof buf, NULL, 0);
		buf[0] = 2 | 128;
		put("dataset", "idx3+labels-resize", buf, sizeof buf, NULL, 0);
	}
	{
		/* IDX with 4 dimensions: 1 image of 2x2x3 */
		static const uint8_t idx4[] = { 0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
			                            1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 };
		sel = 1 | 32;
		put("dataset", "idx4", &sel, 1, idx4, sizeof idx4);
	}
	/* gzip'd IDX */
	tw_gzip_file(tmp, idx, sizeof idx);
	{
		size_t len;
		uint8_t *data = slurp(tmp, &len);
		sel = 1;
		put("dataset", "idx3.gz", &sel, 1, data, len);
		free(data);
		unlink(tmp);
	}
	/* CIFAR-10: 2 records; CIFAR-100: 2 records (coarse, fine) */
	for (int i = 0; i < (int)sizeof cifar; i++)
		cifar[i] = (uint8_t)(i * 11);
	cifar[0] = 3;
	cifar[3073] = 9;
	sel = 3;
	put("dataset", "cifar10", &sel, 1, cifar, 2 * 3073);
	cifar[0] = 4, cifar[1] = 55;
	cifar[3074] = 19, cifar[3075] = 99;
	sel = 4;
	put("dataset", "cifar100", &sel, 1, cifar, 2 * 3074);
	sel = 4 | 16 | 128;
	put("dataset", "cifar100-coarse", &sel, 1, cifar, 2 * 3074);
	free(j.data);
	free(p.data);
	free(g.data);
}

/* ---- option texts: a selector byte, then the text ---- */

static void
options(void)
{
	static const struct {
		uint8_t     sel;
		const char *text;
	} o[] = {
		{ 0, "12" }, { 0 | 4, "-5" }, { 0 | 12, "9223372036854775807" }, { 0, "0x10" }, { 0 | 32, " 7" },
		{ 1, "0.25" }, { 1 | 4, "1e2" }, { 1 | 8, "-inf" }, { 1, "nan" }, { 1 | 64, "1e-400" },
		{ 2, "32x32" }, { 2, "224" }, { 2 | 8, "64X65" }, { 2, "0x5" }, { 2 | 96, "7xx7" },
		{ 3, "0.1" }, { 3, "10%" }, { 3, "25-per-class" }, { 3, "100%" }, { 3 | 32, "-per-class" },
	};
	char name[32];
	subdir("options");
	for (size_t i = 0; i < sizeof o / sizeof o[0]; i++) {
		snprintf(name, sizeof name, "opt-%02zu", i);
		put("options", name, &o[i].sel, 1, o[i].text, strlen(o[i].text));
	}
}

/* ---- checkpoints: a selector byte, then the file ---- */

static void
checkpoint_seed(const char *name, ModelArch arch, int proj_layers, int num_classes, OptimKind kind, int train,
                uint8_t sel)
{
	ModelConfig c;
	OptimConfig oc;
	Checkpoint ck;
	Model *m;
	Optim *o = NULL;
	float mean[3] = { 0.5f, 0.25f, 0.125f }, std[3] = { 0.25f, 0.5f, 1.0f };
	char *classes[3] = { "cat", "dog", "frog" }, *args[2] = { "--size", "8x8" }, err[512];
	Provenance prov = { .tool = "ssl-decode", .version = "0.1.0", .nargs = 2, .args = args };
	uint8_t *data;
	size_t len;
	ParamTable *t;
	model_config_default(&c);
	c.arch = arch;
	c.width = 1;
	c.in_h = c.in_w = 8;
	c.proj_layers = proj_layers;
	c.proj_hidden = 8;
	c.proj_dim = 4;
	c.num_classes = num_classes;
	if (!(m = model_new(&c, 1, MODEL_TRAIN, err, sizeof err)))
		die("checkpoint seed %s: %s", name, err);
	model_init(m, 7);
	checkpoint_init(&ck);
	ck.mean = mean;
	ck.std = std;
	ck.nclasses = num_classes;
	ck.classes = classes;
	ck.nprov = 1;
	ck.prov = &prov;
	if (kind >= 0) {
		optim_config_default(&oc, kind);
		o = optim_new(&oc, model_params(m));
		t = optim_state(o);
		for (int i = 0; i < t->n; i++)
			for (int64_t k = 0; k < t->e[i].numel; k++)
				if (t->e[i].data)
					t->e[i].data[k] = 0.01f * (float)(k % 7);
		optim_set_step(o, 5);
		ck.has_optim = 1;
		ck.optim = oc;
	}
	if (train) {
		ck.has_train = 1;
		snprintf(ck.train.objective, sizeof ck.train.objective, "%s", num_classes ? "supervised" : "simclr");
		ck.train.step = 5;
		ck.train.epoch = 1;
		ck.train.epoch_records = 2;
		ck.train.total_steps = 10;
		ck.train.warmup_steps = 1;
		ck.train.relaid_at = 3; /* a --budget re-plan at step 3 */
		ck.train.relaid_phase = 0.25;
		ck.train.records_per_epoch = 8;
		ck.train.epochs = 2;
		ck.train.batch = 2;
		ck.train.lr = 0.1;
		ck.train.lr_arg = 0.1;
		ck.train.temperature = 0.5;
		ck.train.seed = 3;
		ck.train.threads = 1;
		ck.train.loss = 1.5;
	}
	if (checkpoint_save(tmp, &ck, m, o, err, sizeof err) < 0)
		die("checkpoint seed %s: %s", name, err);
	data = slurp(tmp, &len);
	put("checkpoint", name, &sel, 1, data, len);
	free(data);
	unlink(tmp);
	optim_free(o);
	model_free(m);
}

static void
checkpoints(void)
{
	subdir("checkpoint");
	checkpoint_seed("resnet18-lars", ARCH_RESNET18, 2, 0, OPTIM_LARS, 1, 3);
	checkpoint_seed("resnet18-lars-nocrc", ARCH_RESNET18, 2, 0, OPTIM_LARS, 1, 2);
	checkpoint_seed("resnet34-sgd-fc", ARCH_RESNET34, 3, 3, OPTIM_SGD, 1, 3);
	checkpoint_seed("resnet50-adamw", ARCH_RESNET50, 2, 0, OPTIM_ADAMW, 0, 3);
	checkpoint_seed("resnet18-bare", ARCH_RESNET18, 0, 3, (OptimKind)-1, 0, 1);
}

/* ---- safetensors: a selector byte, then the file ---- */

static void
safetensors_seeds(void)
{
	static const char hdr[] = "{\"__metadata__\":{\"format\":\"pt\"},"
	                          "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]},"
	                          "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[8,12]},"
	                          "\"b\":{\"dtype\":\"BF16\",\"shape\":[1,1],\"data_offsets\":[12,14]},"
	                          "\"n\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[14,22]}}";
	uint8_t small[8 + sizeof hdr - 1 + 22] = { (uint8_t)(sizeof hdr - 1) }, sel;
	ModelConfig c;
	char err[512];
	float mean[1] = { 0.5f }, std[1] = { 0.25f };
	size_t len;
	uint8_t *data;
	Model *m;
	subdir("safetensors");
	memcpy(small + 8, hdr, sizeof hdr - 1);
	sel = 0;
	put("safetensors", "dtypes", &sel, 1, small, sizeof small);
	put("safetensors", "empty", &sel, 1, "\2\0\0\0\0\0\0\0{}", 10);
	/* a whole model as ssl-export writes it: resnet18 of width 1, head, fc */
	model_config_default(&c);
	c.width = 1;
	c.in_channels = 1;
	c.in_h = c.in_w = 8;
	c.proj_hidden = 4;
	c.proj_dim = 2;
	c.num_classes = 3;
	if (!(m = model_new(&c, 1, MODEL_INFER, err, sizeof err)))
		die("safetensors seed: %s", err);
	model_init(m, 1);
	if (safetensors_export_model(tmp, &c, mean, std, model_params(m), ST_MODEL_HEAD | ST_MODEL_FC, err, sizeof err) < 0)
		die("safetensors seed: %s", err);
	data = slurp(tmp, &len);
	sel = 7;
	put("safetensors", "resnet18-w1", &sel, 1, data, len);
	free(data);
	unlink(tmp);
	model_free(m);
}

START_TEST(make_all)
{
	streams();
	images();
	datasets();
	options();
	checkpoints();
	safetensors_seeds();
}
END_TEST

int
main(int argc, char *argv[])
{
	Suite *s = suite_create("make_corpus");
	TCase *tc = tcase_create("seeds");
	SRunner *sr;
	int failed;
	setprogname(argv[0]);
	if (argc != 2)
		die_usage("usage: make_corpus DIR");
	root = argv[1];
	if (mkdir(root, 0755) < 0 && errno != EEXIST)
		die("%s:", root);
	snprintf(tmp, sizeof tmp, "%s/.tmp-archive", root);
	tcase_add_test(tc, make_all);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_SILENT);
	failed = srunner_ntests_failed(sr);
	if (failed)
		srunner_print(sr, CK_NORMAL);
	srunner_free(sr);
	return failed ? 1 : 0;
}
