/* Tests for lib/data/dataset, lib/data/sampler and the ssl-decode tool, on archives,
 * folders, IDX files and CIFAR batches written here at run time. */
#include <dirent.h>
#include <png.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/pixstore.h"
#include "imgwrite.h"
#include "base/rng.h"
#include "data/sampler.h"
#include "io/stream.h"
#include "testutil.h"

enum { H = 6, W = 8 };

/* The members of the standard test archive and what they must decode to. */
typedef struct {
	TwMember m[20];
	int      n;
	TwBuf    bufs[20];
	int      nbufs;
	uint8_t  px[8][H * W * 3];   /* expected pixels (RGB) of the image members */
} Fixture;

static const char *const fixture_images[] = {
	/* sorted order; label: a=0, b=1 */
	"a/1.png", "a/2.ppm", "a/3.jpg", "a/gray.pgm", "b/1.png", "b/2-progressive.jpeg", "b/noext", "top.png",
};

/* Sample i's pixels, in a buffer valid until the next call. */
static const uint8_t *
pixels_of(Dataset *d, int64_t i)
{
	static uint8_t buf[128 * 128 * 3];
	const Sample *s = dataset_sample(d, i);
	const uint8_t *px;
	ck_assert_uint_le((size_t)s->h * (size_t)s->w * (size_t)s->c, sizeof buf);
	px = dataset_pixels(d, i, buf);
	ck_assert_msg(px != NULL, "%s", dataset_error(d));
	return px;
}

static TwBuf
bytes(const char *s, size_t n)
{
	TwBuf b = { malloc(n), n };
	ck_assert_ptr_nonnull(b.data);
	memcpy(b.data, s, n);
	return b;
}

static TwBuf
fixture_add(Fixture *f, const char *path, TwBuf b)
{
	f->bufs[f->nbufs++] = b;
	f->m[f->n++] = (TwMember){ path, b.data, b.len };
	return b;
}

static void
fixture_build(Fixture *f)
{
	uint8_t g[H * W];
	memset(f, 0, sizeof *f);
	for (int i = 0; i < 8; i++)
		tw_pattern(f->px[i], H, W, 3, i);
	/* written out of order on purpose: the reader sorts */
	fixture_add(f, "b/2-progressive.jpeg", tw_jpeg(f->px[5], H, W, 3, 95, 1));
	fixture_add(f, "b/1.png", tw_png(f->px[4], H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0));
	fixture_add(f, "a/2.ppm", tw_pnm(f->px[1], H, W, 3, 0));
	fixture_add(f, "a/1.png", tw_png(f->px[0], H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 1));
	fixture_add(f, "a/3.jpg", tw_jpeg(f->px[2], H, W, 3, 95, 0));
	/* a gray image among color ones: auto channels make it RGB */
	tw_pattern(g, H, W, 1, 3);
	for (int i = 0; i < H * W; i++)
		f->px[3][3 * i] = f->px[3][3 * i + 1] = f->px[3][3 * i + 2] = g[i];
	fixture_add(f, "a/gray.pgm", tw_pnm(g, H, W, 1, 1));
	/* a PNG without an extension is found by its bytes */
	fixture_add(f, "b/noext", tw_png(f->px[6], H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0));
	fixture_add(f, "top.png", tw_png(f->px[7], H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0));
	/* junk, skipped quietly */
	fixture_add(f, "README", bytes("hello\n", 6));
	fixture_add(f, "a/.DS_Store", bytes("\x00\x01", 2));
	/* a name that says nothing and under 8 bytes: not an image, on every
	 * rank alike (sorted first: a rank that made it a candidate would
	 * number every id it holds one too high) */
	fixture_add(f, "a/0tiny", bytes("\xFF\xD8\xFF\xE0", 4));
	fixture_add(f, "__MACOSX/a/._1.png", tw_png(f->px[0], H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0));
	/* bad members: warned, skipped, counted */
	fixture_add(f, "b/anim.gif", bytes("GIF89a....", 10));
	{
		TwBuf j = tw_jpeg(f->px[0], H, W, 3, 95, 0);
		j.len /= 2;
		fixture_add(f, "b/bad.jpg", j);
	}
	f->m[f->n++] = (TwMember){ "empty", NULL, 0 };
	f->m[f->n++] = (TwMember){ "b", NULL, 0 };
}

static void
fixture_free(Fixture *f)
{
	for (int i = 0; i < f->nbufs; i++)
		free(f->bufs[i].data);
}

typedef struct {
	char msgs[8][512];
	int  n;
} Warnings;

static void
collect_warning(void *ctx, const char *msg)
{
	Warnings *w = ctx;
	if (w->n < 8)
		snprintf(w->msgs[w->n], sizeof w->msgs[0], "%s", msg);
	w->n++;
}

static int
has_warning(const Warnings *w, const char *needle)
{
	for (int i = 0; i < w->n && i < 8; i++)
		if (strstr(w->msgs[i], needle))
			return 1;
	return 0;
}

static const char *const containers[][2] = {
	{ "tar", NULL }, { "tar", "gz" }, { "tar", "bz2" }, { "tar", "xz" }, { "tar", "zst" },
	{ "zip", NULL }, { "7z", NULL }, { "cpio", NULL }, { "folder", NULL },
};

static void
check_fixture_dataset(Dataset *d, const Fixture *f)
{
	char err[256];
	ck_assert_msg(dataset_finish(d) == 0, "finish: %s", dataset_error(d));
	ck_assert_int_eq(dataset_count(d), 8);
	ck_assert_int_eq(dataset_nclasses(d), 2);
	ck_assert_str_eq(dataset_classes(d)[0], "a");
	ck_assert_str_eq(dataset_classes(d)[1], "b");
	for (int i = 0; i < 8; i++) {
		const Sample *s = dataset_sample(d, i);
		ck_assert_str_eq(s->path, fixture_images[i]);
		ck_assert_int_eq(s->label, i < 4 ? 0 : i < 7 ? 1 : -1);
		ck_assert_int_eq(s->h, H);
		ck_assert_int_eq(s->w, W);
		ck_assert_int_eq(s->c, 3);
		if (strstr(s->path, "jpg") || strstr(s->path, "jpeg")) {
			double e = 0;
			for (int k = 0; k < H * W * 3; k++)
				e += abs((int)pixels_of(d, i)[k] - (int)f->px[i][k]);
			ck_assert_msg(e / (H * W * 3) < 4, "%s: mean error %g", s->path, e / (H * W * 3));
		} else {
			ck_assert_msg(memcmp(pixels_of(d, i), f->px[i], H * W * 3) == 0, "%s: pixels differ", s->path);
		}
	}
	ck_assert_int_eq(dataset_skipped(d), 3);
	ck_assert_int_eq(dataset_members(d), 11);
	ck_assert_str_eq(dataset_summary(d, err, sizeof err),
	                 "skipped 3 of 11 members: 1 undecodable, 1 unsupported format, 1 empty class folder");
}

static const char *
write_container(const Fixture *f, int i)
{
	static char path[512];
	const char *fmt = containers[i][0], *flt = containers[i][1];
	snprintf(path, sizeof path, "%s/fixture%d.%s%s%s", tu_tmpdir(), i, fmt, flt ? "." : "", flt ? flt : "");
	if (strcmp(fmt, "folder") == 0)
		tw_folder(path, f->m, f->n);
	else
		tw_archive(path, fmt, flt, f->m, f->n);
	return path;
}

START_TEST(test_containers)
{
	Fixture f;
	Warnings w = { .n = 0 };
	/* every other container with no pixels in memory: all read back from the spill file */
	DatasetOptions o = { .warn = collect_warning, .ctx = &w, .memory = _i % 2 ? -1 : 0, .cache_dir = tu_tmpdir() };
	fixture_build(&f);
	const char *path = write_container(&f, _i);
	Dataset *d = dataset_new(&o);
	ck_assert_msg(dataset_add(d, path) == 0, "%s: %s", path, dataset_error(d));
	ck_assert_int_eq(w.n, 3);
	ck_assert(has_warning(&w, "b/bad.jpg: truncated JPEG data"));
	ck_assert(has_warning(&w, "b/anim.gif: unsupported image format"));
	ck_assert(has_warning(&w, ": empty: empty class folder"));
	ck_assert(strncmp(w.msgs[0], path, strlen(path)) == 0);
	check_fixture_dataset(d, &f);
	dataset_free(d);
	fixture_free(&f);
}
END_TEST

START_TEST(test_strict)
{
	Fixture f;
	DatasetOptions o = { .strict = 1 };
	fixture_build(&f);
	const char *path = write_container(&f, 1);
	Dataset *d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, path), -1);
	ck_assert_msg(strstr(dataset_error(d), "fixture1.tar.gz: b/") != NULL, "%s", dataset_error(d));
	dataset_free(d);
	fixture_free(&f);
}
END_TEST

START_TEST(test_bad_inputs)
{
	DatasetOptions o = { 0 };
	Dataset *d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("missing.tar")), -1);
	ck_assert_msg(strstr(dataset_error(d), "missing.tar: No such file or directory") != NULL, "%s",
	              dataset_error(d));
	dataset_free(d);
	/* not an archive */
	tu_write_file(tu_path("notes.txt"), "just some words, not an archive\n", 32);
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("notes.txt")), -1);
	ck_assert_ptr_nonnull(strstr(dataset_error(d), "notes.txt: "));
	dataset_free(d);
	/* a tar.gz cut short */
	Fixture f;
	fixture_build(&f);
	const char *path = write_container(&f, 1);
	size_t len;
	char *bytes = tu_read_file(path, &len);
	tu_write_file(tu_path("cut.tar.gz"), bytes, len * 2 / 3);
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cut.tar.gz")), -1);
	ck_assert_msg(strstr(dataset_error(d), "cut.tar.gz: ") != NULL, "%s", dataset_error(d));
	dataset_free(d);
	free(bytes);
	/* nothing in it */
	tw_archive(tu_path("empty.tar"), "tar", NULL, f.m + 8, 3);   /* README and junk only */
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("empty.tar")), 0);
	ck_assert_int_eq(dataset_finish(d), -1);
	ck_assert_str_eq(dataset_error(d), "no images found in the input");
	dataset_free(d);
	fixture_free(&f);
}
END_TEST

START_TEST(test_sizes_channels_limits)
{
	uint8_t a[H * W * 3], b[10 * W * 3];
	DatasetOptions o = { 0 };
	Warnings w = { .n = 0 };
	tw_pattern(a, H, W, 3, 1);
	tw_pattern(b, 10, W, 3, 2);
	TwBuf pa = tw_png(a, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0), pb = tw_png(b, 10, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	TwMember m[3] = { { "c/z.png", pa.data, pa.len }, { "c/y.png", pb.data, pb.len }, { "c/a.png", pa.data, pa.len } };
	tw_archive(tu_path("sizes.tar"), "tar", NULL, m, 3);
	Dataset *d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("sizes.tar")), 0);
	ck_assert_int_eq(dataset_finish(d), -1);
	ck_assert_msg(strstr(dataset_error(d), "sizes.tar: c/y.png: image is 10x8, but c/a.png is 6x8") != NULL, "%s",
	              dataset_error(d));
	dataset_free(d);
	/* --size 3x4 --channels 1 */
	o.height = 3;
	o.width = 4;
	o.channels = 1;
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("sizes.tar")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	for (int i = 0; i < 3; i++) {
		const Sample *s = dataset_sample(d, i);
		ck_assert_int_eq(s->h * 100 + s->w * 10 + s->c, 341);
	}
	{
		uint8_t g[H * W], g34[12];
		image_convert_channels(g, 1, a, 3, H * W);
		image_resize(g34, 3, 4, g, H, W, 1, NULL);
		ck_assert_mem_eq(pixels_of(d, 0), g34, 12);
	}
	dataset_free(d);
	/* --fit crop and pad: each image as image_fit makes it (6x8 and 10x8 to 4x4) */
	for (int fit = IMAGE_FIT_CROP; fit <= IMAGE_FIT_PAD; fit++) {
		uint8_t g[10 * W], want[16];
		o.height = o.width = 4;
		o.fit = fit;
		d = dataset_new(&o);
		ck_assert_int_eq(dataset_add(d, tu_path("sizes.tar")), 0);
		ck_assert_int_eq(dataset_finish(d), 0);
		image_convert_channels(g, 1, b, 3, 10 * W);
		image_fit(want, 4, 4, g, 10, W, 1, (ImageFit)fit, NULL);
		ck_assert_mem_eq(pixels_of(d, 1), want, 16);   /* c/y.png */
		image_convert_channels(g, 1, a, 3, H * W);
		image_fit(want, 4, 4, g, H, W, 1, (ImageFit)fit, NULL);
		ck_assert_mem_eq(pixels_of(d, 0), want, 16);
		if (fit == IMAGE_FIT_PAD)   /* 6x8 fits as 3x4: the last row is black */
			for (int x = 0; x < 4; x++)
				ck_assert_int_eq(want[12 + x], 0);
		dataset_free(d);
	}
	o.fit = IMAGE_FIT_STRETCH;
	/* the pixel limit skips big images with a warning */
	DatasetOptions lim = { .max_pixels = H * W, .warn = collect_warning, .ctx = &w };
	d = dataset_new(&lim);
	ck_assert_int_eq(dataset_add(d, tu_path("sizes.tar")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_count(d), 2);
	ck_assert_int_eq(w.n, 1);
	ck_assert(has_warning(&w, "c/y.png: image is 10x8 = 80 pixels, over the limit of 48"));
	dataset_free(d);
	free(pa.data);
	free(pb.data);
}
END_TEST

START_TEST(test_multiple_inputs_and_single_files)
{
	uint8_t a[H * W * 3];
	DatasetOptions o = { 0 };
	tw_pattern(a, H, W, 3, 4);
	TwBuf p = tw_png(a, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	TwMember m1[2] = { { "dog/1.png", p.data, p.len }, { "cat/9.png", p.data, p.len } };
	TwMember m2[1] = { { "ant/5.png", p.data, p.len } };
	tw_archive(tu_path("one.zip"), "zip", NULL, m1, 2);
	tw_folder(tu_path("two"), m2, 1);
	tu_write_file(tu_path("single.png"), p.data, p.len);
	Dataset *d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("one.zip")), 0);
	ck_assert_int_eq(dataset_add(d, tu_path("two/")), 0);
	ck_assert_int_eq(dataset_add(d, tu_path("single.png")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_count(d), 4);
	/* inputs in the order given, each sorted; classes sorted over all */
	ck_assert_str_eq(dataset_sample(d, 0)->path, "cat/9.png");
	ck_assert_str_eq(dataset_sample(d, 1)->path, "dog/1.png");
	ck_assert_str_eq(dataset_sample(d, 2)->path, "ant/5.png");
	ck_assert_str_eq(dataset_sample(d, 3)->path, "single.png");
	ck_assert_int_eq(dataset_sample(d, 0)->label, 1);
	ck_assert_int_eq(dataset_sample(d, 1)->label, 2);
	ck_assert_int_eq(dataset_sample(d, 2)->label, 0);
	ck_assert_int_eq(dataset_sample(d, 3)->label, -1);
	ck_assert_str_eq(dataset_input_name(d, dataset_sample(d, 2)->input), tu_path("two/"));
	dataset_free(d);
	free(p.data);
}
END_TEST

/* ---- IDX and CIFAR ---- */

static void
write_idx(const char *images, const char *labels, int n, int h, int w, int gz)
{
	size_t ilen = 16 + (size_t)n * h * w, llen = 8 + (size_t)n;
	uint8_t *ib = malloc(ilen), *lb = malloc(llen);
	uint8_t hdr[16] = { 0, 0, 8, 3, 0, 0, 0, (uint8_t)n, 0, 0, 0, (uint8_t)h, 0, 0, 0, (uint8_t)w };
	uint8_t lh[8] = { 0, 0, 8, 1, 0, 0, 0, (uint8_t)n };
	memcpy(ib, hdr, 16);
	memcpy(lb, lh, 8);
	for (size_t i = 16; i < ilen; i++)
		ib[i] = (uint8_t)(i * 7);
	for (int i = 0; i < n; i++)
		lb[8 + i] = (uint8_t)(i % 3);
	if (gz) {
		tw_gzip_file(images, ib, ilen);
		if (labels)
			tw_gzip_file(labels, lb, llen);
	} else {
		tu_write_file(images, ib, ilen);
		if (labels)
			tu_write_file(labels, lb, llen);
	}
	free(ib);
	free(lb);
}

START_TEST(test_idx)
{
	Warnings w = { .n = 0 };
	DatasetOptions o = { .warn = collect_warning, .ctx = &w };
	char src[64];
	mkdir(tu_path("idx"), 0755);
	write_idx(tu_path("idx/train-images-idx3-ubyte.gz"), tu_path("idx/train-labels-idx1-ubyte.gz"), 5, 4, 3, 1);
	write_idx(tu_path("idx/t10k-images-idx3-ubyte"), tu_path("idx/t10k-labels-idx1-ubyte"), 2, 4, 3, 0);
	Dataset *d = dataset_new(&o);
	ck_assert_msg(dataset_add(d, tu_path("idx/train-images-idx3-ubyte.gz")) == 0, "%s", dataset_error(d));
	ck_assert_int_eq(dataset_add(d, tu_path("idx/train-labels-idx1-ubyte.gz")), 0);   /* skipped */
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_count(d), 5);
	ck_assert_int_eq(dataset_nclasses(d), 3);
	ck_assert_str_eq(dataset_classes(d)[2], "2");
	for (int i = 0; i < 5; i++) {
		const Sample *s = dataset_sample(d, i);
		ck_assert_int_eq(s->h * 100 + s->w * 10 + s->c, 431);
		ck_assert_int_eq(s->label, i % 3);
		for (int k = 0; k < 12; k++)
			ck_assert_int_eq(pixels_of(d, i)[k], (uint8_t)((16 + i * 12 + k) * 7));
	}
	ck_assert_str_eq(dataset_source(d, 4, src, sizeof src), "train-images-idx3-ubyte.gz#4");
	ck_assert_int_eq(w.n, 0);
	dataset_free(d);
	/* uncompressed, with --classes and --size/--channels */
	char *names[3] = { "zero", "one", "two" };
	DatasetOptions o2 = { .nclass_names = 3, .class_names = names, .height = 2, .width = 2, .channels = 3 };
	d = dataset_new(&o2);
	ck_assert_int_eq(dataset_add(d, tu_path("idx/t10k-images-idx3-ubyte")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_count(d), 2);
	ck_assert_str_eq(dataset_classes(d)[1], "one");
	ck_assert_int_eq(dataset_sample(d, 1)->h * 100 + dataset_sample(d, 1)->w * 10 + dataset_sample(d, 1)->c, 223);
	dataset_free(d);
	/* no labels file: labels -1 and a warning */
	write_idx(tu_path("idx/lonely-images-idx3-ubyte"), NULL, 3, 2, 2, 0);
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("idx/lonely-images-idx3-ubyte")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_sample(d, 0)->label, -1);
	ck_assert_int_eq(dataset_nclasses(d), 0);
	ck_assert(has_warning(&w, "no labels file"));
	dataset_free(d);
	/* a damaged IDX: data shorter than the header says */
	uint8_t bad[20] = { 0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 2, 0, 0, 0, 2 };
	tu_write_file(tu_path("idx/bad-images-idx3-ubyte"), bad, sizeof bad);
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("idx/bad-images-idx3-ubyte")), -1);
	ck_assert_msg(strstr(dataset_error(d), "IDX data is 4 bytes, expected 36") != NULL, "%s", dataset_error(d));
	dataset_free(d);
	/* IDX and folders do not mix */
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("idx/t10k-images-idx3-ubyte")), 0);
	ck_assert_int_eq(dataset_add(d, tu_path("idx")), -1);
	ck_assert_ptr_nonnull(strstr(dataset_error(d), "cannot mix"));
	dataset_free(d);
}
END_TEST

START_TEST(test_cifar)
{
	enum { N = 3 };
	uint8_t rec10[N * 3073], rec100[N * 3074];
	DatasetOptions o = { 0 };
	mkdir(tu_path("cifar"), 0755);
	for (int i = 0; i < N; i++) {
		rec10[i * 3073] = (uint8_t)(9 - i);
		rec100[i * 3074] = (uint8_t)(19 - i);      /* coarse */
		rec100[i * 3074 + 1] = (uint8_t)(99 - i);  /* fine */
		for (int k = 0; k < 3072; k++)
			rec10[i * 3073 + 1 + k] = rec100[i * 3074 + 2 + k] = (uint8_t)(k / 1024 * 50 + k % 7 + i);
	}
	tu_write_file(tu_path("cifar/data_batch_1.bin"), rec10, sizeof rec10);
	tu_write_file(tu_path("cifar/train.bin"), rec100, sizeof rec100);
	static const char meta[] = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
	tu_write_file(tu_path("cifar/batches.meta.txt"), meta, strlen(meta));
	Dataset *d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cifar/data_batch_1.bin")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_count(d), N);
	ck_assert_int_eq(dataset_nclasses(d), 10);
	ck_assert_str_eq(dataset_classes(d)[9], "truck");
	for (int i = 0; i < N; i++) {
		const Sample *s = dataset_sample(d, i);
		ck_assert_int_eq(s->label, 9 - i);
		ck_assert_int_eq(s->h * 100 + s->w * 10 + s->c, 32 * 100 + 320 + 3);
		/* HWC: pixel p channel k comes from plane k */
		for (int p = 0; p < 1024; p += 37)
			for (int k = 0; k < 3; k++)
				ck_assert_int_eq(pixels_of(d, i)[3 * p + k], (uint8_t)(k * 50 + (k * 1024 + p) % 7 + i));
	}
	dataset_free(d);
	/* blocks fit too: 32x32 padded into 8x16 is 8x8 in columns 4..11 */
	o.height = 8;
	o.width = 16;
	o.fit = IMAGE_FIT_PAD;
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cifar/data_batch_1.bin")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	for (int y = 0; y < 8; y++)
		for (int x = 0; x < 16; x++) {
			const uint8_t *px = pixels_of(d, 0) + (y * 16 + x) * 3;
			ck_assert_int_eq(px[0] == 0 && px[1] == 0 && px[2] == 0, x < 4 || x >= 12);
		}
	dataset_free(d);
	memset(&o, 0, sizeof o);
	/* CIFAR-100: fine labels by default, coarse on request; numeric names */
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cifar/train.bin")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_nclasses(d), 100);
	ck_assert_int_eq(dataset_sample(d, 0)->label, 99);
	ck_assert_str_eq(dataset_classes(d)[99], "99");
	dataset_free(d);
	o.coarse = 1;
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cifar/train.bin")), 0);
	ck_assert_int_eq(dataset_finish(d), 0);
	ck_assert_int_eq(dataset_nclasses(d), 20);
	ck_assert_int_eq(dataset_sample(d, 2)->label, 17);
	dataset_free(d);
	/* a batch whose size is not a whole number of records */
	tu_write_file(tu_path("cifar/test_batch.bin"), rec10, 3073 + 5);
	d = dataset_new(&o);
	ck_assert_int_eq(dataset_add(d, tu_path("cifar/test_batch.bin")), -1);
	ck_assert_ptr_nonnull(strstr(dataset_error(d), "not a whole number of CIFAR-10 records"));
	dataset_free(d);
}
END_TEST

/* ---- the official CIFAR-10, CIFAR-100 and STL-10 archives ---- */

enum { STL = 96, STL_REC = 3 * STL * STL };
#define TEN_NAMES "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n"

/* The members of tiny archives in the official layouts (a few records each). */
typedef struct {
	TwMember m[16];
	int      n;
	uint8_t *bufs[16];
	int      nbufs;
} OffFixture;

static const uint8_t *
off_add(OffFixture *f, const char *path, uint8_t *data, size_t len)
{
	if (data)
		f->bufs[f->nbufs++] = data;
	f->m[f->n++] = (TwMember){ path, data, len };
	return data;
}

/* n CIFAR records of rec bytes; record i has label bytes (first, i) and
 * pixel k = (k / 1024) * 60 + i + seed. */
static uint8_t *
cifar_recs(int n, int rec, int first, int seed)
{
	uint8_t *b = malloc((size_t)n * (size_t)rec);
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < n; i++) {
		uint8_t *r = b + (size_t)i * (size_t)rec;
		r[0] = (uint8_t)(first + i);
		if (rec == 3074)
			r[1] = (uint8_t)(90 + i);
		for (int k = 0; k < 3072; k++)
			r[rec - 3072 + k] = (uint8_t)(k / 1024 * 60 + i + seed);
	}
	return b;
}

static uint8_t *
names_text(const char *prefix, int n, size_t *len)
{
	char *t = malloc((size_t)n * 16 + 2);
	size_t o = 0;
	ck_assert_ptr_nonnull(t);
	for (int i = 0; i < n; i++)
		o += (size_t)sprintf(t + o, "%s%d\n", prefix, i);
	t[o++] = '\n';   /* the official files end in blank lines */
	*len = o;
	return (uint8_t *)t;
}

/* n STL-10 images, column-major per channel plane; image i has value
 * 10 * (i + 1) + ch at (row 2, column 5) of channel ch, and 0 elsewhere. */
static uint8_t *
stl_images(int n)
{
	uint8_t *b = calloc((size_t)n, STL_REC);
	ck_assert_ptr_nonnull(b);
	for (int i = 0; i < n; i++)
		for (int ch = 0; ch < 3; ch++)
			b[(size_t)i * STL_REC + (size_t)ch * STL * STL + 5 * STL + 2] = (uint8_t)(10 * (i + 1) + ch);
	return b;
}

static uint8_t *
dup_bytes(const char *s, size_t n)
{
	uint8_t *b = malloc(n);
	ck_assert_ptr_nonnull(b);
	memcpy(b, s, n);
	return b;
}

static void
off_cifar10(OffFixture *f)
{
	static const char *const batches[] = {
		"cifar-10-batches-bin/data_batch_1.bin", "cifar-10-batches-bin/data_batch_2.bin",
		"cifar-10-batches-bin/data_batch_3.bin", "cifar-10-batches-bin/data_batch_4.bin",
		"cifar-10-batches-bin/data_batch_5.bin",
	};
	size_t len;
	uint8_t *names = names_text("c", 10, &len);
	memset(f, 0, sizeof *f);
	off_add(f, "cifar-10-batches-bin", NULL, 0);
	off_add(f, "cifar-10-batches-bin/test_batch.bin", cifar_recs(2, 3073, 7, 100), 2 * 3073);
	for (int b = 0; b < 5; b++)   /* batch b: one record, label b */
		off_add(f, batches[b], cifar_recs(1, 3073, b, b), 3073);
	off_add(f, "cifar-10-batches-bin/batches.meta.txt", names, len);
	off_add(f, "cifar-10-batches-bin/readme.html", dup_bytes("<html>", 6), 6);
}

static void
off_cifar100(OffFixture *f)
{
	size_t fl, cl;
	uint8_t *fine = names_text("f", 100, &fl), *coarse = names_text("k", 20, &cl);
	memset(f, 0, sizeof *f);
	off_add(f, "cifar-100-binary/coarse_label_names.txt", coarse, cl);
	off_add(f, "cifar-100-binary/fine_label_names.txt", fine, fl);
	off_add(f, "cifar-100-binary/test.bin", cifar_recs(1, 3074, 19, 0), 3074);
	off_add(f, "cifar-100-binary/train.bin", cifar_recs(3, 3074, 4, 0), 3 * 3074);
}

static void
off_stl10(OffFixture *f)
{
	size_t len;
	uint8_t *names = names_text("s", 10, &len);
	memset(f, 0, sizeof *f);
	off_add(f, "stl10_binary/class_names.txt", names, len);
	off_add(f, "stl10_binary/fold_indices.txt", dup_bytes("0 1\n", 4), 4);
	off_add(f, "stl10_binary/test_X.bin", stl_images(1), STL_REC);
	off_add(f, "stl10_binary/test_y.bin", dup_bytes("\x0a", 1), 1);
	off_add(f, "stl10_binary/train_X.bin", stl_images(2), 2 * STL_REC);
	off_add(f, "stl10_binary/train_y.bin", dup_bytes("\x01\x05", 2), 2);
	off_add(f, "stl10_binary/unlabeled_X.bin", stl_images(3), 3 * STL_REC);
}

static void
off_free(OffFixture *f)
{
	for (int i = 0; i < f->nbufs; i++)
		free(f->bufs[i]);
}

/* Writes the members as a tar.gz, or as files under a folder, and frees them. */
static void
off_write(OffFixture *f, const char *path, int folder)
{
	if (folder)
		tw_folder(path, f->m, f->n);
	else
		tw_archive(path, "tar", "gz", f->m, f->n);
	off_free(f);
}

/* Decodes path with the split (NULL: default) and coarse; NULL and the
 * error in err when dataset_add or dataset_finish fails. */
static Dataset *
off_decode(const char *path, const char *split, int coarse, char *err, size_t errlen)
{
	DatasetOptions o = { .split = split, .coarse = coarse };
	Dataset *d = dataset_new(&o);
	if (dataset_add(d, path) < 0 || dataset_finish(d) < 0) {
		snprintf(err, errlen, "%s", dataset_error(d));
		dataset_free(d);
		return NULL;
	}
	return d;
}

static Dataset *
off_ok(const char *path, const char *split, int coarse)
{
	char err[1024];
	Dataset *d = off_decode(path, split, coarse, err, sizeof err);
	ck_assert_msg(d != NULL, "%s --split %s: %s", path, split ? split : "(default)", err);
	return d;
}

static void
off_fails(const char *path, const char *split, const char *needle)
{
	char err[1024] = "";
	Dataset *d = off_decode(path, split, 0, err, sizeof err);
	ck_assert_msg(d == NULL, "%s: decoded, expected '%s'", path, needle);
	tu_assert_has(err, needle);
	ck_assert_msg(!strchr(err, '\n'), "not one line: %s", err);
}

/* _i: 0 a tar.gz as downloaded, 1 the same extracted into a folder */
START_TEST(test_official_cifar)
{
	OffFixture f;
	char buf[64];
	const char *p10 = tu_path(_i ? "off10" : "cifar-10-binary.tar.gz");
	const char *p100 = tu_path(_i ? "off100" : "cifar-100-binary.tar.gz");
	Dataset *d;
	off_cifar10(&f);
	off_write(&f, p10, _i);
	/* default split: train, the five batches in order */
	d = off_ok(p10, NULL, 0);
	ck_assert_int_eq(dataset_count(d), 5);
	ck_assert_int_eq(dataset_nclasses(d), 10);
	ck_assert_str_eq(dataset_classes(d)[9], "c9");
	for (int b = 0; b < 5; b++) {
		const Sample *s = dataset_sample(d, b);
		ck_assert_int_eq(s->label, b);
		ck_assert_int_eq(s->h * 100 + s->w * 10 + s->c, 32 * 100 + 320 + 3);
		/* pixel 77: R, G, B from the three planes */
		ck_assert_int_eq(pixels_of(d, b)[3 * 77 + 0], b);
		ck_assert_int_eq(pixels_of(d, b)[3 * 77 + 2], 120 + b);
	}
	ck_assert_str_eq(dataset_source(d, 2, buf, sizeof buf), "data_batch_3.bin#0");
	dataset_free(d);
	d = off_ok(p10, "test", 0);
	ck_assert_int_eq(dataset_count(d), 2);
	ck_assert_int_eq(dataset_sample(d, 1)->label, 8);
	ck_assert_int_eq(pixels_of(d, 1)[3 * 5 + 1], 60 + 1 + 100);
	ck_assert_str_eq(dataset_source(d, 1, buf, sizeof buf), "test_batch.bin#1");
	dataset_free(d);
	off_fails(p10, "unlabeled", "--split unlabeled: CIFAR-10 has the splits train, test");

	off_cifar100(&f);
	off_write(&f, p100, _i);
	d = off_ok(p100, NULL, 0);   /* fine labels */
	ck_assert_int_eq(dataset_count(d), 3);
	ck_assert_int_eq(dataset_nclasses(d), 100);
	ck_assert_int_eq(dataset_sample(d, 2)->label, 92);
	ck_assert_str_eq(dataset_classes(d)[92], "f92");
	dataset_free(d);
	d = off_ok(p100, "test", 1);   /* coarse labels */
	ck_assert_int_eq(dataset_count(d), 1);
	ck_assert_int_eq(dataset_nclasses(d), 20);
	ck_assert_int_eq(dataset_sample(d, 0)->label, 19);
	ck_assert_str_eq(dataset_classes(d)[19], "k19");
	dataset_free(d);
}
END_TEST

START_TEST(test_official_stl10)
{
	OffFixture f;
	const char *p = tu_path("stl10_binary.tar.gz");
	Dataset *d;
	off_stl10(&f);
	off_write(&f, p, 0);
	d = off_ok(p, NULL, 0);   /* train */
	ck_assert_int_eq(dataset_count(d), 2);
	ck_assert_str_eq(dataset_classes(d)[4], "s4");
	for (int i = 0; i < 2; i++) {
		const Sample *s = dataset_sample(d, i);
		ck_assert_int_eq(s->label, i ? 4 : 0);   /* the files count from 1 */
		ck_assert_int_eq(s->h * 1000 + s->w * 10 + s->c, 96 * 1000 + 960 + 3);
		for (int ch = 0; ch < 3; ch++) {
			/* column-major: byte 5 * 96 + 2 of a plane is row 2, column 5 */
			ck_assert_int_eq(pixels_of(d, i)[(2 * STL + 5) * 3 + ch], 10 * (i + 1) + ch);
			ck_assert_int_eq(pixels_of(d, i)[(5 * STL + 2) * 3 + ch], 0);
		}
	}
	dataset_free(d);
	d = off_ok(p, "test", 0);
	ck_assert_int_eq(dataset_count(d), 1);
	ck_assert_int_eq(dataset_sample(d, 0)->label, 9);
	dataset_free(d);
	d = off_ok(p, "unlabeled", 0);
	ck_assert_int_eq(dataset_count(d), 3);
	ck_assert_int_eq(dataset_nclasses(d), 10);
	ck_assert_int_eq(dataset_sample(d, 2)->label, -1);
	ck_assert_int_eq(pixels_of(d, 2)[(2 * STL + 5) * 3], 30);
	dataset_free(d);
	d = off_ok(p, "train+unlabeled", 0);   /* train first, then unlabeled */
	ck_assert_int_eq(dataset_count(d), 5);
	ck_assert_int_eq(dataset_sample(d, 1)->label, 4);
	ck_assert_int_eq(dataset_sample(d, 2)->label, -1);
	dataset_free(d);
}
END_TEST

/* Archives of another or a broken layout: one line naming what is wrong. */
START_TEST(test_official_bad_layouts)
{
	OffFixture f;
	TwMember m[4];
	uint8_t *rec = cifar_recs(1, 3073, 1, 0), *img = stl_images(1);
	TwBuf png;
	uint8_t px[H * W * 3];
	const char *p;
	char err[1024];
	Dataset *d;
	/* a CIFAR-10 archive without its test batch: train still decodes */
	off_cifar10(&f);
	f.m[1] = f.m[--f.n];   /* drops test_batch.bin */
	p = tu_path("no-test.tar.gz");
	tw_archive(p, "tar", "gz", f.m, f.n);
	off_free(&f);
	dataset_free(off_ok(p, "train", 0));
	off_fails(p, "test", "not a whole CIFAR-10 archive (cifar-10-binary.tar.gz): no cifar-10-batches-bin/test_batch.bin");
	/* data without class names */
	m[0] = (TwMember){ "cifar-10-batches-bin/test_batch.bin", rec, 3073 };
	p = tu_path("no-meta.tar");
	tw_archive(p, "tar", NULL, m, 1);
	off_fails(p, "test", "no cifar-10-batches-bin/batches.meta.txt");
	/* the Python version */
	m[0] = (TwMember){ "cifar-10-batches-py/data_batch_1", rec, 3073 };
	p = tu_path("cifar-10-python.tar.gz");
	tw_archive(p, "tar", "gz", m, 1);
	off_fails(p, NULL, "cifar-10-batches-py/data_batch_1 is from the Python version of CIFAR-10; ssl-decode reads "
	                   "the binary version, cifar-10-binary.tar.gz");
	/* a record cut short, labels that do not match, names of another count */
	m[0] = (TwMember){ "cifar-10-batches-bin/test_batch.bin", rec, 3000 };
	m[1] = (TwMember){ "cifar-10-batches-bin/batches.meta.txt", (const uint8_t *)TEN_NAMES, strlen(TEN_NAMES) };
	p = tu_path("short.zip");
	tw_archive(p, "zip", NULL, m, 2);
	off_fails(p, "test", "test_batch.bin: 3000 bytes is not a whole number of CIFAR-10 records");
	m[0].len = 3073;
	m[1].len = 4;   /* "a\nb\n" */
	p = tu_path("names.zip");
	tw_archive(p, "zip", NULL, m, 2);
	off_fails(p, "test", "batches.meta.txt: 2 class names, expected 10");
	m[0] = (TwMember){ "stl10_binary/test_X.bin", img, STL_REC };
	m[1] = (TwMember){ "stl10_binary/test_y.bin", (const uint8_t *)"\x01\x02", 2 };
	m[2] = (TwMember){ "stl10_binary/class_names.txt", (const uint8_t *)TEN_NAMES, strlen(TEN_NAMES) };
	p = tu_path("stl-labels.tar");
	tw_archive(p, "tar", NULL, m, 3);
	off_fails(p, "test", "test_y.bin: 2 labels for the 1 images of stl10_binary/test_X.bin");
	/* two data sets in one archive; official files among images */
	m[1] = (TwMember){ "cifar-10-batches-bin/test_batch.bin", rec, 3073 };
	p = tu_path("both.tar");
	tw_archive(p, "tar", NULL, m, 2);
	off_fails(p, "test", "holds files of both STL-10 and CIFAR-10");
	tw_pattern(px, H, W, 3, 1);
	png = tw_png(px, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	m[0] = (TwMember){ "cifar-10-batches-bin/test_batch.bin", rec, 3073 };
	m[1] = (TwMember){ "cifar-10-batches-bin/batches.meta.txt", (const uint8_t *)TEN_NAMES,
		               strlen(TEN_NAMES) };
	m[2] = (TwMember){ "cat/1.png", png.data, png.len };
	p = tu_path("mixed.tar");
	tw_archive(p, "tar", NULL, m, 3);
	off_fails(p, "test", "holds both images and CIFAR-10 files");
	/* --split needs an official archive */
	p = tu_path("images.tar");
	tw_archive(p, "tar", NULL, m + 2, 1);
	off_fails(p, "test", "--split picks a split of a CIFAR-10, CIFAR-100 or STL-10 archive");
	ck_assert_ptr_nonnull(d = off_decode(p, NULL, 0, err, sizeof err));
	dataset_free(d);
	free(png.data);
	free(rec);
	free(img);
}
END_TEST

/* --survey: counts and sizes without keeping pixels, sizes may differ */
START_TEST(test_tool_survey)
{
	uint8_t a[H * W * 3], b[10 * 4];
	TuResult r;
	tw_pattern(a, H, W, 3, 1);
	tw_pattern(b, 10, 4, 1, 2);
	TwBuf pa = tw_png(a, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0), pb = tw_pnm(b, 10, 4, 1, 0);
	TwMember m[4] = { { "c/a.png", pa.data, pa.len }, { "c/b.pgm", pb.data, pb.len }, { "d/a.png", pa.data, pa.len },
		              { "top.png", pa.data, pa.len } };
	tw_archive(tu_path("survey.tar"), "tar", NULL, m, 4);
	tu_run(&r, "ssl-decode --survey '%s'", tu_path("survey.tar"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_str_eq(r.out, "images 4\nlabelled 3\nclasses 2\nchannels 3\nheight 6 6 10\nwidth 4 8 8\n"
	                        "short 4 6 6\n");
	tu_result_free(&r);
	/* the complement of a stratified subset: the 4 less one per class */
	tu_run(&r, "ssl-decode --labels 1-per-class --seed 4 --labels-complement --size 4 '%s' | ssl-info",
	       tu_path("survey.tar"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.out, "records: 2\n");
	tu_assert_has(r.out, "label unknown: 1\n");
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --labels-complement '%s'", tu_path("survey.tar"));
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
	free(pa.data);
	free(pb.data);
}
END_TEST

START_TEST(test_tool_official)
{
	OffFixture f;
	TuResult r;
	const char *p = tu_path("t-stl10_binary.tar.gz");
	off_stl10(&f);
	off_write(&f, p, 0);
	tu_run(&r, "ssl-decode --split train+unlabeled '%s' | ssl-info", p);
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.out, "records: 5\n");
	tu_assert_has(r.out, "class 4 s4: 1\n");
	tu_assert_has(r.out, "label unknown: 3\n");
	tu_assert_has(r.out, "96x96x3 in 5 records");
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --split unlabeled - < '%s' | ssl-info", p);   /* from a pipe too */
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.out, "records: 3\n");
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --split validation '%s'", p);
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "--split: 'validation' is not train, test, unlabeled or train+unlabeled");
	tu_result_free(&r);
}
END_TEST

/* ---- sampler ---- */

static void
fill_labels(int64_t *labels, int64_t n, int nclasses)
{
	for (int64_t i = 0; i < n; i++)
		labels[i] = (i * 7) % nclasses;
}

START_TEST(test_sampler_shuffle)
{
	enum { N = 200 };
	int64_t labels[N], a[N], b[N];
	char err[128];
	Sampler s, t;
	SamplerOptions o = { .shuffle = 1, .seed = 42, .nshards = 1 };
	fill_labels(labels, N, 5);
	ck_assert_int_eq(sampler_init(&s, &o, labels, N, 5, err, sizeof err), 0);
	ck_assert_int_eq(sampler_init(&t, &o, labels, N, 5, err, sizeof err), 0);
	ck_assert_int_eq(sampler_epoch_size(&s), N);
	memcpy(a, sampler_epoch(&s, 3), sizeof a);
	memcpy(b, sampler_epoch(&t, 3), sizeof b);
	ck_assert_mem_eq(a, b, sizeof a);                /* same seed, same epoch: same order */
	memcpy(b, sampler_epoch(&s, 4), sizeof b);
	ck_assert(memcmp(a, b, sizeof a) != 0);          /* a fresh permutation each epoch */
	int seen[N] = { 0 }, fixed = 0;
	for (int i = 0; i < N; i++) {
		seen[b[i]]++;
		fixed += b[i] == i;
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert(fixed < 10);
	sampler_free(&t);
	o.seed = 43;
	ck_assert_int_eq(sampler_init(&t, &o, labels, N, 5, err, sizeof err), 0);
	ck_assert(memcmp(a, sampler_epoch(&t, 3), sizeof a) != 0);
	sampler_free(&t);
	o.shuffle = 0;
	ck_assert_int_eq(sampler_init(&t, &o, labels, N, 5, err, sizeof err), 0);
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(sampler_epoch(&t, 9)[i], i);
	sampler_free(&t);
	sampler_free(&s);
}
END_TEST

/* Shards by a fixed assignment of ids (as the dataset's hash gives), some
 * ids not decoded: every shard emits the same count per epoch, its own
 * decoded ids each once (then repeats of its own), shuffled anew each
 * epoch; together the shards emit every decoded id once. */
START_TEST(test_sampler_shards)
{
	enum { N = 103 };
	int64_t labels[N], local[N];
	int32_t shards[N];
	char err[128];
	fill_labels(labels, N, 4);
	for (int nshards = 1; nshards <= 5; nshards++) {
		int64_t most = 0, per[5] = { 0 };
		for (int i = 0; i < N; i++) {
			Rng r = rng_for(5, 0, (uint64_t)i, 0);
			shards[i] = (int32_t)rng_below(&r, (uint64_t)nshards);
			most = ++per[shards[i]] > most ? per[shards[i]] : most;
		}
		for (int64_t epoch = 0; epoch < 3; epoch++) {
			int seen[N] = { 0 };
			for (int shard = 0; shard < nshards; shard++) {
				Sampler s;
				SamplerOptions o = { .shuffle = 1, .seed = 7, .shard = shard, .nshards = nshards };
				int64_t own = 0, prev[N];
				for (int i = 0; i < N; i++) {   /* the sample index of a held id: 1000 + id; ids % 10 == 3 failed */
					local[i] = shards[i] == shard && i % 10 != 3 ? 1000 + i : -1;
					own += local[i] >= 0;
				}
				SamplerIds in = { N, labels, shards, local, 4 };
				ck_assert_int_eq(sampler_init_ids(&s, &o, &in, err, sizeof err), 0);
				ck_assert_int_eq(sampler_epoch_size(&s), most);
				const int64_t *ids = sampler_epoch(&s, epoch);
				memcpy(prev, ids, sizeof(int64_t) * (size_t)most);
				for (int64_t k = 0; k < most; k++) {
					int64_t id = ids[k] - 1000;
					ck_assert(id >= 0 && id < N && shards[id] == shard && id % 10 != 3);
					if (k < own)
						seen[id]++;
					else   /* a repeat of the first records */
						ck_assert_int_eq(ids[k], ids[(k - own) % own]);
				}
				if (own > 3)   /* the next epoch: another order */
					ck_assert(memcmp(prev, sampler_epoch(&s, epoch + 1), sizeof(int64_t) * (size_t)own) != 0);
				sampler_free(&s);
			}
			for (int i = 0; i < N; i++)
				ck_assert_msg(seen[i] == (i % 10 != 3), "%d shards, epoch %lld: id %d seen %d times", nshards,
				              (long long)epoch, i, seen[i]);
		}
	}
}
END_TEST

START_TEST(test_sampler_labels_limit)
{
	enum { N = 1000 };
	int64_t labels[N], none[N];
	char err[128];
	Sampler s;
	int per[10] = { 0 };
	fill_labels(labels, N, 10);
	labels[5] = -1;
	SamplerOptions o = { .label_per_class = 7, .seed = 1, .nshards = 1 };
	ck_assert_int_eq(sampler_init(&s, &o, labels, N, 10, err, sizeof err), 0);
	ck_assert_int_eq(sampler_epoch_size(&s), 70);
	for (int64_t k = 0; k < 70; k++)
		per[labels[sampler_epoch(&s, 0)[k]]]++;
	for (int c = 0; c < 10; c++)
		ck_assert_int_eq(per[c], 7);
	sampler_free(&s);
	/* 10% of 1000 (999 labelled): about 100, exactly round(0.1 * n_c) each */
	SamplerOptions f = { .label_frac = 0.1, .seed = 1, .nshards = 1 };
	ck_assert_int_eq(sampler_init(&s, &f, labels, N, 10, err, sizeof err), 0);
	ck_assert_int_eq(sampler_epoch_size(&s), 100);
	sampler_free(&s);
	/* the complement: every other sample (the unlabelled one too), in id order, disjoint */
	{
		uint8_t in[N] = { 0 };
		const int64_t *ids;
		ck_assert_int_eq(sampler_init(&s, &o, labels, N, 10, err, sizeof err), 0);
		ids = sampler_epoch(&s, 0);
		for (int64_t k = 0; k < 70; k++)
			in[ids[k]] = 1;
		sampler_free(&s);
		o.label_rest = 1;
		ck_assert_int_eq(sampler_init(&s, &o, labels, N, 10, err, sizeof err), 0);
		ck_assert_int_eq(sampler_epoch_size(&s), N - 70);
		ids = sampler_epoch(&s, 0);
		for (int64_t k = 0; k < N - 70; k++) {
			ck_assert_int_eq(in[ids[k]], 0);
			ck_assert(k == 0 || ids[k] > ids[k - 1]);
		}
		ck_assert_int_eq(ids[5], 5);   /* the unlabelled one */
		sampler_free(&s);
		o.label_rest = 0;
	}
	/* limit keeps the first N of the selection */
	SamplerOptions l = { .limit = 13, .nshards = 1 };
	ck_assert_int_eq(sampler_init(&s, &l, labels, N, 10, err, sizeof err), 0);
	ck_assert_int_eq(sampler_epoch_size(&s), 13);
	ck_assert_int_eq(sampler_epoch(&s, 0)[12], 12);
	sampler_free(&s);
	for (int i = 0; i < N; i++)
		none[i] = -1;
	ck_assert_int_eq(sampler_init(&s, &o, none, N, 0, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "needs labelled images"));
}
END_TEST


/* ---- the tool ---- */

typedef struct {
	int64_t id, label, epoch;
	int64_t  c;     /* channels */
	uint32_t sum;   /* of the pixel bytes */
	char     source[64];
} Rec;

typedef struct {
	StreamHeader h;
	Rec         *recs;
	int64_t      n;
} Stream;

/* Reads a whole stream file written by ssl-decode. */
static void
read_stream(Stream *s, const char *path)
{
	StreamReader *r = stream_reader_open_path(path);
	const StreamHeader *h = stream_reader_header(r);
	Record rec;
	int k;
	char err[256];
	ck_assert_msg(h != NULL, "%s", stream_reader_error(r));
	stream_header_copy(&s->h, h);
	ck_assert_str_eq(s->h.kind, "images");
	s->recs = NULL;
	s->n = 0;
	while ((k = stream_reader_next(r, &rec)) == 1) {
		const Tensor *t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
		Rec *o;
		ck_assert_msg(t != NULL, "%s", err);
		s->recs = realloc(s->recs, (size_t)(s->n + 1) * sizeof *s->recs);
		o = &s->recs[s->n++];
		memset(o, 0, sizeof *o);   /* compared with memcmp */
		o->id = rec.id;
		o->label = rec.label;
		o->epoch = rec.epoch;
		o->c = t->shape[2];
		o->sum = 0;
		for (size_t i = 0; i < tensor_nbytes(t); i++)
			o->sum = o->sum * 31 + ((const uint8_t *)t->data)[i];
		snprintf(o->source, sizeof o->source, "%s", rec.source ? rec.source : "");
	}
	ck_assert_msg(k == 0, "%s", stream_reader_error(r));
	stream_reader_close(r);
}

static void
free_stream(Stream *s)
{
	stream_header_free(&s->h);
	free(s->recs);
}

static const char *
tool_fixture(void)
{
	static char path[512];
	Fixture f;
	if (!path[0]) {
		fixture_build(&f);
		snprintf(path, sizeof path, "%s", write_container(&f, 1));
		fixture_free(&f);
	}
	return path;
}

START_TEST(test_tool_epochs_resume)
{
	const char *in = tool_fixture();
	TuResult r;
	Stream full, tail, again;
	tu_run(&r, "ssl-decode --shuffle --seed 3 --epochs 3 '%s' > '%s'", in, tu_path("full.ssl"));
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	/* one line per bad member and the summary; nothing else */
	ck_assert_msg(strstr(r.err, "fixture1.tar.gz: b/bad.jpg: truncated JPEG data\n") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "ssl-decode: skipped 3 of 11 members: 1 undecodable, 1 unsupported format, "
	                            "1 empty class folder\n") != NULL, "%s", r.err);
	tu_result_free(&r);
	read_stream(&full, tu_path("full.ssl"));
	ck_assert_int_eq(full.h.nclasses, 2);
	ck_assert_str_eq(full.h.classes[1], "b");
	ck_assert_int_eq(full.h.records_per_epoch, 8);
	ck_assert_int_eq(full.h.epochs, 3);
	ck_assert_int_eq(full.n, 24);
	ck_assert_int_eq(full.h.nprov, 1);
	for (int e = 0; e < 3; e++) {
		int seen[8] = { 0 };
		for (int k = 0; k < 8; k++) {
			const Rec *x = &full.recs[e * 8 + k];
			ck_assert_int_eq(x->epoch, e);
			seen[x->id]++;
			ck_assert_str_eq(x->source, fixture_images[x->id]);
			ck_assert_int_eq(x->label, x->id < 4 ? 0 : x->id < 7 ? 1 : -1);
		}
		for (int i = 0; i < 8; i++)
			ck_assert_int_eq(seen[i], 1);
	}
	/* epochs are shuffled differently */
	ck_assert(memcmp(&full.recs[0], &full.recs[8], sizeof(Rec)) != 0 || full.recs[1].id != full.recs[9].id);
	/* --start-epoch 1 is exactly the tail of the full run */
	tu_run(&r, "ssl-decode -q --shuffle --seed 3 --epochs 3 --start-epoch 1 '%s' > '%s'", in, tu_path("tail.ssl"));
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	read_stream(&tail, tu_path("tail.ssl"));
	ck_assert_int_eq(tail.h.start_epoch, 1);
	ck_assert_int_eq(tail.n, 16);
	ck_assert_mem_eq(tail.recs, full.recs + 8, 16 * sizeof(Rec));
	/* the same command gives the same bytes */
	tu_run(&r, "ssl-decode --shuffle --seed 3 --epochs 3 '%s' 2>/dev/null | cmp - '%s'", in, tu_path("full.ssl"));
	ck_assert_msg(r.status == 0, "not byte-identical: %s", r.out);
	tu_result_free(&r);
	/* another seed, another order */
	tu_run(&r, "ssl-decode -q --shuffle --seed 4 --epochs 3 '%s' > '%s'", in, tu_path("other.ssl"));
	read_stream(&again, tu_path("other.ssl"));
	int same = 1;
	for (int k = 0; k < 24; k++)
		same &= again.recs[k].id == full.recs[k].id;
	ck_assert(!same);
	tu_result_free(&r);
	free_stream(&full);
	free_stream(&tail);
	free_stream(&again);
}
END_TEST

START_TEST(test_tool_shards_labels_limit)
{
	const char *in = tool_fixture();
	TuResult r;
	Stream s;
	/* one labelled image per class; the unlabelled top.png never */
	tu_run(&r, "ssl-decode -q --labels 1-per-class --seed 9 '%s' > '%s'", in, tu_path("l.ssl"));
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	read_stream(&s, tu_path("l.ssl"));
	ck_assert_int_eq(s.n, 2);
	ck_assert_int_eq(s.recs[0].label, 0);
	ck_assert_int_eq(s.recs[1].label, 1);
	free_stream(&s);
	tu_run(&r, "ssl-decode -q --limit 3 --size 3x5 --channels 1 '%s' > '%s'", in, tu_path("l.ssl"));
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	read_stream(&s, tu_path("l.ssl"));
	ck_assert_int_eq(s.n, 3);
	ck_assert_int_eq(s.recs[2].id, 2);
	free_stream(&s);
}
END_TEST

START_TEST(test_tool_errors)
{
	const char *in = tool_fixture();
	static const char *const bad_usage[] = {
		"--size 0x3", "--channels 2", "--shard 3/3", "--shard x", "--epochs 2 --start-epoch 2", "--labels 0",
		"--limit 0", "--bogus", "--max-pixels -1", "--classes ,", "--split val", "--fit crop",
		"--size 4 --fit squash", "--memory 1X", "--memory -1", "--cache x --survey",
	};
	TuResult r;
	for (size_t i = 0; i < sizeof bad_usage / sizeof bad_usage[0]; i++) {
		tu_run(&r, "ssl-decode %s '%s'", bad_usage[i], in);
		ck_assert_msg(r.status == 2, "%s: status %d", bad_usage[i], r.status);
		ck_assert_uint_eq(r.outlen, 0);
		ck_assert_msg(strstr(r.err, "Try 'ssl-decode --help'") != NULL, "%s: %s", bad_usage[i], r.err);
		tu_result_free(&r);
	}
	tu_run(&r, "ssl-decode");
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --help");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "usage: ssl-decode [options] INPUT..."));
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --version");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "ssl-decode "));
	tu_result_free(&r);
	/* run-time errors: exit 1, one line naming the input */
	tu_run(&r, "ssl-decode '%s' '%s'", in, tu_path("nothere.tar"));
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_msg(strstr(r.err, "ssl-decode: ") && strstr(r.err, "nothere.tar: No such file or directory\n"), "%s",
	              r.err);
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --strict '%s'", in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_msg(strstr(r.err, "fixture1.tar.gz: b/") != NULL, "%s", r.err);
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --classes x,y '%s'", in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_nonnull(strstr(r.err, "--classes"));
	tu_result_free(&r);
	/* a cut stream is not a success downstream */
	tu_run(&r, "ssl-decode --epochs 50 '%s' 2>/dev/null | head -c 3000 | ssl-info", in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "truncated") != NULL, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_tool_idx_classes)
{
	TuResult r;
	Stream s;
	mkdir(tu_path("tidx"), 0755);
	write_idx(tu_path("tidx/t10k-images-idx3-ubyte.gz"), tu_path("tidx/t10k-labels-idx1-ubyte.gz"), 4, 3, 2, 1);
	tu_run(&r, "ssl-decode --classes 'T-shirt/top,Trouser,Ankle boot' '%s' > '%s'", tu_path("tidx/t10k-images-idx3-ubyte.gz"),
	       tu_path("idx.ssl"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_result_free(&r);
	read_stream(&s, tu_path("idx.ssl"));
	ck_assert_int_eq(s.n, 4);
	ck_assert_int_eq(s.h.nclasses, 3);
	ck_assert_str_eq(s.h.classes[2], "Ankle boot");
	ck_assert_str_eq(s.recs[3].source, "t10k-images-idx3-ubyte.gz#3");
	ck_assert_int_eq(s.recs[3].label, 0);
	free_stream(&s);
}
END_TEST

/* The files in dir (0 when it is empty). */
static int
count_files(const char *dir)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(dp);
	while ((de = readdir(dp)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(dp);
	return n;
}

/* The records of two stream files are the same (the headers differ in
 * their provenance). */
static void
assert_same_records(const char *a, const char *b)
{
	Stream x, y;
	read_stream(&x, a);
	read_stream(&y, b);
	ck_assert_int_eq(x.n, y.n);
	ck_assert_int_eq(x.h.records_per_epoch, y.h.records_per_epoch);
	ck_assert_mem_eq(x.recs, y.recs, (size_t)x.n * sizeof *x.recs);
	free_stream(&x);
	free_stream(&y);
}

/* A tiny --memory: most images go to the spill file and come back from it,
 * gray ones made RGB when read; the records are the ones an in-memory run
 * gives, and the cache folder is empty afterwards. */
START_TEST(test_tool_spill)
{
	static const char *const sizes[] = { "", "--size 5x7" };
	static const char *const budgets[] = { "300", "0", "600" };
	const char *in = tool_fixture();
	char mem[512], dir[512];
	TuResult r;
	snprintf(dir, sizeof dir, "%s", tu_path("spill"));
	mkdir(dir, 0755);
	for (int k = 0; k < 2; k++) {
		snprintf(mem, sizeof mem, "%s", tu_path("mem.ssl"));
		tu_run(&r, "ssl-decode -q --shuffle --seed 5 --epochs 2 %s '%s' > '%s'", sizes[k], in, mem);
		ck_assert_msg(r.status == 0, "%s", r.err);
		tu_result_free(&r);
		for (int b = 0; b < 3; b++) {
			long long inmem = -1, spilled = -1;
			const char *line;
			tu_run(&r, "ssl-decode -q -v --memory %s --cache-dir '%s' --shuffle --seed 5 --epochs 2 %s '%s' > '%s'",
			       budgets[b], dir, sizes[k], in, tu_path("spill.ssl"));
			ck_assert_msg(r.status == 0, "%s", r.err);
			ck_assert_ptr_nonnull(line = strstr(r.err, "pixels: "));
			ck_assert_int_eq(sscanf(line, "pixels: %lld bytes in memory, %lld bytes in the spill file", &inmem,
			                        &spilled), 2);
			ck_assert_msg(spilled > 0 && (b == 1 ? inmem == 0 : inmem > 0), "%s", line);
			/* a quarter of the budget is kept for the rest of the process */
			ck_assert_msg(inmem <= atoll(budgets[b]) * 3 / 4, "%s", line);
			tu_assert_has(r.err, "decoded 8 images in ");
			tu_assert_has(r.err, "epoch 1: 8 records in ");
			tu_result_free(&r);
			assert_same_records(mem, tu_path("spill.ssl"));
			ck_assert_int_eq(count_files(dir), 0);
		}
	}
}
END_TEST

/* A spill file that cannot grow (a file size limit: EFBIG, as a full disk
 * gives ENOSPC): one line naming the folder and what to do, no stream. */
START_TEST(test_tool_spill_full)
{
	const char *in = tool_fixture();
	char dir[512];
	TuResult r;
	snprintf(dir, sizeof dir, "%s", tu_path("full"));
	mkdir(dir, 0755);
	tu_run(&r, "trap '' XFSZ; ulimit -f 4; exec ssl-decode -q --memory 0 --cache-dir '%s' --size 32 --epochs 2 '%s'",
	       dir, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "full: writing the spill file: File too large (give --cache-dir a folder with more room, "
	                     "or a larger --memory)\n");
	tu_result_free(&r);
	ck_assert_int_eq(count_files(dir), 0);
	/* a full disk (ENOSPC, injected) */
	tu_run(&r, "SSL_FAULT_WRITE_BYTES=1000 ssl-decode -q --memory 0 --cache-dir '%s' --size 32 '%s'", dir, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "full: writing the spill file: No space left on device (give --cache-dir a folder with "
	                     "more room, or a larger --memory)\n");
	tu_result_free(&r);
	/* a folder that is not there */
	tu_run(&r, "ssl-decode -q --cache-dir '%s' '%s'", tu_path("nowhere"), in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "nowhere: cannot make a spill file there: No such file or directory");
	tu_result_free(&r);
}
END_TEST

/* Files in dir whose name starts with prefix. */
static int
count_prefixed(const char *dir, const char *prefix)
{
	DIR *dp = opendir(dir);
	struct dirent *de;
	int n = 0;
	ck_assert_ptr_nonnull(dp);
	while ((de = readdir(dp)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(dp);
	return n;
}

/* ssl-decode --cache with the fixture copy `in`, writing out; the messages
 * must hold `want` (and, for a run from the cache, not "decoded"). */
static void
cached_run(const char *in, const char *cache, const char *args, const char *out, const char *want)
{
	TuResult r;
	tu_run(&r, "ssl-decode -q -v --shuffle --seed 2 --epochs 2 %s --cache '%s' '%s' > '%s'", args, cache, in, out);
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.err, want);
	if (strstr(want, "from the cache"))
		ck_assert_msg(!strstr(r.err, "decoded"), "decoded again:\n%s", r.err);
	else
		tu_assert_has(r.err, "decoded 8 images");
	tu_assert_has(r.err, "skipped 3 of 11 members");
	tu_result_free(&r);
}

/* Flips byte `at` (from the end when negative) of a file. */
static void
flip_byte(const char *path, long at)
{
	size_t len;
	char *b = tu_read_file(path, &len);
	size_t k = at < 0 ? len - (size_t)-at : (size_t)at;
	b[k] ^= 0x20;
	tu_write_file(path, b, len);
	free(b);
}

/* --cache: the first run keeps the decoded set, later ones read it instead
 * of decoding (the same records, resumable); other options or a changed
 * input, and a damaged file, are noticed and rebuilt. */
START_TEST(test_tool_cache)
{
	char in[512], cache[512], full[512], again[512], cmd[2048];
	Stream a, t;
	TuResult r;
	snprintf(in, sizeof in, "%s", tu_path("cached.tar.gz"));
	snprintf(cache, sizeof cache, "%s", tu_path("set.cache"));
	snprintf(full, sizeof full, "%s", tu_path("full-c.ssl"));
	snprintf(again, sizeof again, "%s", tu_path("again-c.ssl"));
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", tool_fixture(), in);
	tu_run_ok(&r, cmd);
	tu_result_free(&r);
	cached_run(in, cache, "", full, "decoded 8 images");
	ck_assert_int_eq(count_prefixed(tu_tmpdir(), "set.cache"), 1);   /* no temporary left */
	cached_run(in, cache, "--memory 0", again, "read 8 images from the cache");
	assert_same_records(full, again);
	/* resume from the cache: exactly epoch 1 of the full run */
	cached_run(in, cache, "--start-epoch 1", again, "from the cache");
	read_stream(&a, full);
	read_stream(&t, again);
	ck_assert_int_eq(t.n, 8);
	ck_assert_mem_eq(t.recs, a.recs + 8, 8 * sizeof *t.recs);
	free_stream(&a);
	free_stream(&t);
	/* another size, then the input touched: rebuilt each time */
	cached_run(in, cache, "--size 4", again, "set.cache: inputs or options changed; rebuilding");
	cached_run(in, cache, "--size 4", again, "from the cache");
	snprintf(cmd, sizeof cmd, "touch -d 2001-02-03 '%s'", in);
	tu_run_ok(&r, cmd);
	tu_result_free(&r);
	cached_run(in, cache, "", again, "set.cache: inputs or options changed; rebuilding");
	assert_same_records(full, again);
	/* damaged: cut short, metadata changed, not a cache file: never trusted */
	snprintf(cmd, sizeof cmd, "truncate -s -10 '%s'", cache);
	tu_run_ok(&r, cmd);
	tu_result_free(&r);
	cached_run(in, cache, "", again, "set.cache: cut short or grown");
	assert_same_records(full, again);
	flip_byte(cache, -3);
	cached_run(in, cache, "", again, "set.cache: its metadata does not match its checksum; rebuilding");
	/* a little fuzzing: every third byte of the header, or one of the metadata's end, changed */
	{
		size_t len;
		char *good = tu_read_file(cache, &len);
		for (long at = 0; at < 64 + 12; at += at < 64 ? 3 : 1) {
			tu_write_file(cache, good, len);
			flip_byte(cache, at < 64 ? at : -(at - 63));
			cached_run(in, cache, "", again, "; rebuilding");
		}
		free(good);
	}
	flip_byte(cache, 60);
	cached_run(in, cache, "", again, "set.cache: cut short or grown");
	flip_byte(cache, 1);
	cached_run(in, cache, "", again, "set.cache: not an ssl-decode cache file; rebuilding");
	assert_same_records(full, again);
	cached_run(in, cache, "", again, "from the cache");
	/* a full disk: an error, and neither the file nor a temporary */
	unlink(cache);
	tu_run(&r, "trap '' XFSZ; ulimit -f 4; exec ssl-decode -q --size 32 --cache '%s' '%s'", cache, in);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "set.cache: writing the cache file: File too large (give --cache a place with more room");
	tu_result_free(&r);
	ck_assert_int_eq(count_prefixed(tu_tmpdir(), "set.cache"), 0);
	/* killed mid-decode (SIGTERM, SIGHUP): nothing left beside the cache's place.
	 * Under nohup SIGHUP comes ignored, and the children would inherit that
	 * (the kill would never land): they get the default action back. */
	signal(SIGHUP, SIG_DFL);
	for (int k = 0; k < 2; k++) {
		static const char *const sigs[] = { "TERM", "HUP" };
		char dir[512];
		snprintf(dir, sizeof dir, "%s/killed%d", tu_tmpdir(), k);
		mkdir(dir, 0755);
		tu_run(&r,
		       "SSL_FAULT_DECODE_STALL=1 ssl-decode -q --cache '%s/c.cache' '%s' 2> '%s/../killed.err' & pid=$!; "
		       "for i in $(seq 400); do grep -q stalled '%s/../killed.err' && break; sleep 0.05; done; "
		       "kill -%s $pid; wait $pid",
		       dir, in, dir, dir, sigs[k]);
		ck_assert_int_eq(r.status, 128 + (k ? 1 : 15));
		tu_result_free(&r);
		ck_assert_msg(count_files(dir) == 0, "SIG%s left a file in the cache's folder", sigs[k]);
	}
	/* standard input cannot be checked, by any name, nor a FIFO; a cache
	 * that is a FIFO (it blocked the open) or a folder (found at the rename,
	 * after the decode): refused at once */
	tu_run(&r, "ssl-decode --cache '%s' - < '%s'", cache, in);
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
	tu_run(&r, "cat '%s' | timeout 20 ssl-decode --cache '%s' /dev/stdin", in, cache);
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "--cache: /dev/stdin is neither a file nor a folder");
	tu_result_free(&r);
	ck_assert_int_eq(mkfifo(tu_path("cache.fifo"), 0600), 0);
	tu_run(&r, "timeout 20 ssl-decode --cache '%s' '%s'", tu_path("cache.fifo"), in);
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "cache.fifo: not a regular file");
	tu_result_free(&r);
	tu_run(&r, "timeout 20 ssl-decode --cache '%s' '%s' < /dev/null", cache, tu_path("cache.fifo"));
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "cache.fifo is neither a file nor a folder");
	tu_result_free(&r);
	tu_run(&r, "ssl-decode --cache '%s' '%s'", tu_tmpdir(), in);
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, ": not a regular file");
	ck_assert_msg(!strstr(r.err, "decoded"), "%s", r.err);
	tu_result_free(&r);
	/* the store alone: a FIFO is refused without blocking */
	{
		uint8_t *meta = NULL;
		size_t metalen = 0;
		char err[512];
		ck_assert_ptr_null(pixstore_open_kept(tu_path("cache.fifo"), &meta, &metalen, err, sizeof err));
		tu_assert_has(err, "cache.fifo: not a regular file");
	}
}
END_TEST

/* The key of a cache file holds what decoding depends on beyond the
 * options: the decoder's revision and the libraries' versions. */
START_TEST(test_cache_key)
{
	DatasetOptions o = { 0 };
	char want[256], *in[1] = { (char *)tool_fixture() }, *key = dataset_cache_key(&o, 1, in);
	snprintf(want, sizeof want, " decode %d %s\n", DECODE_REVISION, image_codec_versions());
	ck_assert_msg(strstr(key, want) != NULL, "%s", key);
	ck_assert_ptr_nonnull(strstr(want, " libpng 1."));
	free(key);
	/* a file whose modification time was set back (after a change of its
	 * bytes, say): the change time tells, and the inode of a copy put in
	 * its place; for an input and for a file in a folder input */
	for (int k = 0; k < 2; k++) {
		char *before, *after;
		TuResult r;
		in[0] = (char *)tu_path(k ? "keydir" : "key.tar.gz");
		tu_run(&r, "mkdir -p '%s/a' && cp '%s' '%s%s'", tu_path("keydir"), tool_fixture(), in[0],
		       k ? "/a/x.tar.gz" : "");
		ck_assert_int_eq(r.status, 0);
		tu_result_free(&r);
		before = dataset_cache_key(&o, 1, in);
		tu_run(&r, "sleep 0.05; f='%s%s'; touch -r \"$f\" '%s' && touch -m -r '%s' \"$f\"", in[0],
		       k ? "/a/x.tar.gz" : "", tu_path("stamp"), tu_path("stamp"));
		ck_assert_int_eq(r.status, 0);
		tu_result_free(&r);
		after = dataset_cache_key(&o, 1, in);
		ck_assert_msg(strcmp(before, after) != 0, "mtime set back, key unchanged:\n%s", after);
		free(after);
		tu_run(&r, "sleep 0.05; f='%s%s'; cp -p \"$f\" \"$f.new\" && mv \"$f.new\" \"$f\"", in[0],
		       k ? "/a/x.tar.gz" : "");
		ck_assert_int_eq(r.status, 0);
		tu_result_free(&r);
		ck_assert_ptr_nonnull(strstr(after = dataset_cache_key(&o, 1, in), " ino "));
		ck_assert_str_ne(before, after);
		free(before);
		free(after);
	}
}
END_TEST

/* The cache key walks a folder input as deep as the reader does: an image
 * in the deepest folder read is decoded, and touching it changes the key. */
START_TEST(test_cache_key_depth)
{
	char dir[4096], file[4200], *in[1] = { dir }, *before, *after;
	DatasetOptions o = { 0 };
	uint8_t px[H * W * 3];
	TwBuf b;
	TuResult r;
	int n = snprintf(dir, sizeof dir, "%s", tu_path("deep"));
	mkdir(dir, 0755);
	for (int k = 0; k < 64; k++) {   /* DATASET_MAX_DEPTH folders below the input */
		n += snprintf(dir + n, sizeof dir - (size_t)n, "/d");
		ck_assert_int_eq(mkdir(dir, 0755), 0);
	}
	tw_pattern(px, H, W, 3, 1);
	b = tw_png(px, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	snprintf(file, sizeof file, "%s/x.png", dir);
	tu_write_file(file, b.data, b.len);
	free(b.data);
	snprintf(dir, sizeof dir, "%s", tu_path("deep"));
	tu_run(&r, "ssl-decode -q -v '%s' > /dev/null", dir);
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.err, "decoded 1 images");
	tu_result_free(&r);
	before = dataset_cache_key(&o, 1, in);
	tu_run(&r, "sleep 0.05; touch -d 2001-02-03 '%s'", file);
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	after = dataset_cache_key(&o, 1, in);
	ck_assert_str_ne(before, after);
	free(before);
	free(after);
}
END_TEST

/* With shards the ids are positions among the members every rank would
 * decode (b/bad.jpg included: it fails on its rank alone). */
static const char *const shard_ids[] = {
	"a/1.png", "a/2.ppm", "a/3.jpg", "a/gray.pgm", "b/1.png", "b/2-progressive.jpeg", "b/bad.jpg", "b/noext", "top.png",
};

/* Shard i of n of the fixture, 3 epochs shuffled (extra args), into s;
 * the images it decoded. */
static int
decode_shard(Stream *s, int i, int n, const char *args)
{
	TuResult r;
	int decoded = -1;
	const char *line;
	tu_run(&r, "ssl-decode -q -v --shuffle --seed 6 --epochs 3 --shard %d/%d %s '%s' > '%s'", i, n, args,
	       tool_fixture(), tu_path("shard.ssl"));
	ck_assert_msg(r.status == 0, "shard %d/%d: %s", i, n, r.err);
	if ((line = strstr(r.err, "decoded ")))
		ck_assert_int_eq(sscanf(line, "decoded %d images", &decoded), 1);
	tu_result_free(&r);
	read_stream(s, tu_path("shard.ssl"));
	return decoded;
}

/* --shard I/N: each rank decodes only its members; per epoch the shards are
 * disjoint and together hold every image; each shard the same count
 * (repeats where it has fewer), shuffled anew each epoch; ids unique
 * across ranks; --start-epoch resumes a shard exactly. */
START_TEST(test_tool_shards)
{
	for (int n = 2; n <= 3; n++) {
		int seen[3][9] = { { 0 } }, decoded = 0, reordered = 0;
		int64_t rpe = -1;
		for (int i = 0; i < n; i++) {
			Stream s, t;
			char meta[16];
			int dec = decode_shard(&s, i, n, ""), own[3][9] = { { 0 } };
			ck_assert_msg(dec > 0 && dec < 8, "shard %d/%d decoded %d", i, n, dec);
			decoded += dec;
			snprintf(meta, sizeof meta, "%d/%d", i, n);
			ck_assert_str_eq(stream_header_get_meta(&s.h, "shard"), meta);
			if (rpe < 0)
				rpe = s.h.records_per_epoch;
			ck_assert_int_eq(s.h.records_per_epoch, rpe);   /* ranks take the same steps */
			ck_assert_int_eq(s.n, 3 * rpe);
			for (int64_t k = 0; k < s.n; k++) {
				const Rec *x = &s.recs[k];
				ck_assert(x->id >= 0 && x->id < 9 && x->id != 6);
				ck_assert_str_eq(x->source, shard_ids[x->id]);
				if (!own[x->epoch][x->id]++)
					seen[x->epoch][x->id]++;
			}
			for (int e = 0; e < 3; e++)   /* every epoch holds the same images */
				for (int id = 0; id < 9; id++)
					ck_assert_int_eq(!own[e][id], !own[0][id]);
			for (int64_t k = 0; k < rpe; k++)
				reordered |= s.recs[k].id != s.recs[rpe + k].id;
			/* resumed at epoch 1: the same records as epochs 1 and 2 */
			decode_shard(&t, i, n, "--start-epoch 1");
			ck_assert_int_eq(t.n, 2 * rpe);
			ck_assert_mem_eq(t.recs, s.recs + rpe, (size_t)t.n * sizeof *t.recs);
			free_stream(&t);
			free_stream(&s);
		}
		ck_assert_int_eq(decoded, 8);   /* each image decoded once over all ranks */
		ck_assert(reordered);
		for (int e = 0; e < 3; e++)
			for (int id = 0; id < 9; id++)
				ck_assert_msg(seen[e][id] == (id != 6), "%d shards, epoch %d: id %d in %d shards", n, e, id,
				              seen[e][id]);
	}
}
END_TEST

/* --limit with shards selects by id, the same on every rank; a shard's
 * cache holds that shard; an IDX file's records are sharded one by one. */
START_TEST(test_tool_shards_select)
{
	int seen[9] = { 0 }, idx[40] = { 0 };
	char args[600];
	Stream s, t;
	TuResult r;
	for (int i = 0; i < 2; i++) {
		decode_shard(&s, i, 2, "--limit 5");
		for (int64_t k = 0; k < s.n; k++)
			seen[s.recs[k].id] = 1;
		free_stream(&s);
	}
	for (int id = 0; id < 9; id++)
		ck_assert_int_eq(seen[id], id < 5);
	/* --channels 1 holds with shards too (a rank cannot see colour elsewhere, but need not) */
	for (int i = 0; i < 2; i++) {
		decode_shard(&s, i, 2, "--channels 1");
		for (int64_t k = 0; k < s.n; k++)
			ck_assert_int_eq(s.recs[k].c, 1);
		free_stream(&s);
	}
	/* --cache: shard 0 kept, read again; shard 1 is another key */
	snprintf(args, sizeof args, "--cache '%s'", tu_path("shard.cache"));
	ck_assert_int_gt(decode_shard(&s, 0, 2, args), 0);
	ck_assert_int_eq(decode_shard(&t, 0, 2, args), -1);   /* no "decoded": read from the cache */
	ck_assert_int_eq(s.n, t.n);
	ck_assert_mem_eq(s.recs, t.recs, (size_t)s.n * sizeof *s.recs);
	free_stream(&s);
	free_stream(&t);
	ck_assert_int_gt(decode_shard(&s, 1, 2, args), 0);
	free_stream(&s);
	/* 40 IDX records over 3 shards: each record in one shard, id = index */
	write_idx(tu_path("s-images-idx3-ubyte"), tu_path("s-labels-idx1-ubyte"), 40, 2, 2, 0);
	for (int i = 0, decoded = 0; i < 3; i++) {
		int own[40] = { 0 }, dec = -1;
		tu_run(&r, "ssl-decode -q -v --shard %d/3 '%s' > '%s'", i, tu_path("s-images-idx3-ubyte"), tu_path("i.ssl"));
		ck_assert_msg(r.status == 0, "%s", r.err);
		ck_assert_int_eq(sscanf(strstr(r.err, "decoded "), "decoded %d", &dec), 1);
		decoded += dec;
		tu_result_free(&r);
		read_stream(&s, tu_path("i.ssl"));
		for (int64_t k = 0; k < s.n; k++) {
			char src[64];
			snprintf(src, sizeof src, "s-images-idx3-ubyte#%lld", (long long)s.recs[k].id);
			ck_assert_str_eq(s.recs[k].source, src);
			ck_assert_int_eq(s.recs[k].label, s.recs[k].id % 3);
			if (!own[s.recs[k].id]++)
				idx[s.recs[k].id]++;
		}
		free_stream(&s);
		if (i == 0) {   /* the partition is fixed: the same on every machine and in every version */
			char got[200] = "";
			for (int id = 0; id < 40; id++)
				if (own[id])
					snprintf(got + strlen(got), sizeof got - strlen(got), " %d", id);
			ck_assert_str_eq(got, " 5 9 13 18 19 20 22 24 26 31 32 36");
		}
		if (i == 2)
			ck_assert_int_eq(decoded, 40);
	}
	for (int i = 0; i < 40; i++)
		ck_assert_msg(idx[i] == 1, "record %d in %d shards", i, idx[i]);
}
END_TEST

/* The pixel store on its own: images in memory up to the budget, then in
 * the file (one larger than the write buffer too), all read back whole. */
START_TEST(test_pixstore)
{
	enum { N = 40 };
	static const size_t sizes[] = { 1, 100, 999, 3 << 20, 5000 };
	char err[512];
	PixStore *p = pixstore_new(20000, tu_tmpdir(), NULL, err, sizeof err);
	PixRef ref[N];
	uint8_t *img = malloc(3 << 20), *buf = malloc(3 << 20);
	int64_t total = 0;
	ck_assert_msg(p != NULL, "%s", err);
	ck_assert_ptr_nonnull(img);
	ck_assert_ptr_nonnull(buf);
	for (int i = 0; i < N; i++) {
		size_t n = sizes[i % 5];
		memset(img, i + 1, n);
		ck_assert_msg(pixstore_put(p, img, n, &ref[i]) == 0, "%s", pixstore_error(p));
		total += (int64_t)n;
		if (i == N / 2)
			ck_assert_int_eq(pixstore_flush(p), 0);
	}
	ck_assert_int_eq(pixstore_memory(p) + pixstore_spilled(p), total);
	ck_assert(pixstore_memory(p) > 0 && pixstore_memory(p) <= 20000 && pixstore_spilled(p) > 0);
	for (int i = N - 1; i >= 0; i--) {   /* before the last flush too: reads flush first */
		size_t n = sizes[i % 5];
		const uint8_t *px = pixstore_get(p, ref[i], n, buf);
		ck_assert_msg(px != NULL, "%s", pixstore_error(p));
		ck_assert_int_eq(px[0], i + 1);
		ck_assert_int_eq(px[n - 1], i + 1);
		ck_assert_int_eq(px[n / 2], i + 1);
	}
	pixstore_free(p);
	free(img);
	free(buf);
}
END_TEST

static Suite *
decode_suite(void)
{
	Suite *s = suite_create("decode");
	TCase *ds = tcase_create("dataset"), *sm = tcase_create("sampler"), *tool = tcase_create("tool");
	tcase_set_timeout(ds, 20);
	tcase_add_loop_test(ds, test_containers, 0, (int)(sizeof containers / sizeof containers[0]));
	tcase_add_test(ds, test_strict);
	tcase_add_test(ds, test_pixstore);
	tcase_add_test(ds, test_bad_inputs);
	tcase_add_test(ds, test_sizes_channels_limits);
	tcase_add_test(ds, test_multiple_inputs_and_single_files);
	tcase_add_test(ds, test_idx);
	tcase_add_test(ds, test_cifar);
	tcase_add_loop_test(ds, test_official_cifar, 0, 2);
	tcase_add_test(ds, test_official_stl10);
	tcase_add_test(ds, test_official_bad_layouts);
	tcase_add_test(sm, test_sampler_shuffle);
	tcase_add_test(sm, test_sampler_shards);
	tcase_add_test(sm, test_sampler_labels_limit);
	tcase_set_timeout(tool, 30);
	tcase_add_test(tool, test_tool_epochs_resume);
	tcase_add_test(tool, test_tool_shards_labels_limit);
	tcase_add_test(tool, test_tool_errors);
	tcase_add_test(tool, test_tool_idx_classes);
	tcase_add_test(tool, test_tool_official);
	tcase_add_test(tool, test_tool_survey);
	tcase_add_test(tool, test_tool_spill);
	tcase_add_test(tool, test_tool_spill_full);
	tcase_add_test(tool, test_tool_cache);
	tcase_add_test(tool, test_cache_key);
	tcase_add_test(tool, test_cache_key_depth);
	tcase_add_test(tool, test_tool_shards);
	tcase_add_test(tool, test_tool_shards_select);
	suite_add_tcase(s, ds);
	suite_add_tcase(s, sm);
	suite_add_tcase(s, tool);
	return s;
}

CHECK_MAIN(decode_suite)
