/* Tests for lib/data/augment, lib/io/png_write and the ssl-augment tool.
 *
 * parity:   every op against torchvision outputs at fixed parameters
 *           (tests/fixtures/augment.msgpack, from tests/ref/make_augment_fixtures.py),
 *           within 2 levels; the max difference per op is printed.
 * sampling: RandomResizedCrop's boxes against the definition of get_params.
 * kernels:  fast jitter == its plain reference, flip, centre crop, blur edges.
 * tool:     ssl-augment on small generated streams. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/augment.h"
#include "io/png_write.h"
#include "base/rng.h"
#include "io/stream.h"
#include "isa.h"
#include "testutil.h"
#include "tu_stream.h"
#include "base/util.h"

/* ------------------------------------------------------------------------ */
/* parity with torchvision */

static const msgpack_object *
map_get(const msgpack_object *m, const char *key)
{
	if (m->type != MSGPACK_OBJECT_MAP)
		return NULL;
	size_t n = strlen(key);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, key, n) == 0)
			return &m->via.map.ptr[i].val;
	}
	return NULL;
}

static double
num(const msgpack_object *m, const char *key)
{
	const msgpack_object *o = map_get(m, key);
	ck_assert_msg(o != NULL, "fixture: no key %s", key);
	switch (o->type) {
	case MSGPACK_OBJECT_POSITIVE_INTEGER: return (double)o->via.u64;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return (double)o->via.i64;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return o->via.f64;
	default: ck_abort_msg("fixture: key %s is not a number", key);
	}
	return 0;
}

static int
str_is(const msgpack_object *m, const char *key, const char *want)
{
	const msgpack_object *o = map_get(m, key);
	ck_assert_msg(o && o->type == MSGPACK_OBJECT_STR, "fixture: no string %s", key);
	return o->via.str.size == strlen(want) && memcmp(o->via.str.ptr, want, o->via.str.size) == 0;
}

static void
unpack_u8(const msgpack_object *o, Tensor *t)
{
	char err[256];
	ck_assert_msg(o != NULL, "fixture: tensor missing");
	ck_assert_msg(tensor_unpack(o, t, 1 << 20, err, sizeof err) == 0, "fixture: %s", err);
	ck_assert_int_eq(t->dtype, DTYPE_U8);
	ck_assert_int_eq(t->ndim, 3);
}

typedef struct {
	const char *op, *ref;
	int         maxdiff, cases;
	double      sumdiff;
	int64_t     values;
} ParityStat;

static ParityStat *
stat_for(ParityStat *st, int *nst, const char *op, const char *ref)
{
	for (int i = 0; i < *nst; i++)
		if (strcmp(st[i].op, op) == 0 && strcmp(st[i].ref, ref) == 0)
			return &st[i];
	st[*nst] = (ParityStat){ op, ref, 0, 0, 0, 0 };
	return &st[(*nst)++];
}

/* at each instruction-set level (the kernels are cloned per level, lib/base/cpu.h) */
START_TEST(test_parity_torchvision)
{
	if (!isa_use(_i))
		return;
	char path[1024];
	size_t len;
	snprintf(path, sizeof path, "%s/tests/fixtures/augment.msgpack", tu_src());
	char *buf = tu_read_file(path, &len);
	msgpack_unpacked up;
	msgpack_unpacked_init(&up);
	ck_assert_int_eq(msgpack_unpack_next(&up, buf, len, NULL), MSGPACK_UNPACK_SUCCESS);
	const msgpack_object *root = &up.data;
	const msgpack_object *images = map_get(root, "images"), *cases = map_get(root, "cases");
	ck_assert(images && images->type == MSGPACK_OBJECT_ARRAY && cases && cases->type == MSGPACK_OBJECT_ARRAY);
	ck_assert_uint_ge(cases->via.array.size, 60);

	static const char *ops[] = { "crop_resize", "brightness", "contrast", "saturation", "hue",
		                     "jitter", "grayscale", "blur", "solarize" };
	ParityStat st[32];
	int nst = 0, bad = 0;
	AugmentScratch scratch = { 0 };
	for (uint32_t ci = 0; ci < cases->via.array.size; ci++) {
		const msgpack_object *c = &cases->via.array.ptr[ci];
		Tensor in, want;
		int k = (int)num(c, "image");
		ck_assert(k >= 0 && (uint32_t)k < images->via.array.size);
		unpack_u8(&images->via.array.ptr[k], &in);
		unpack_u8(map_get(c, "expect"), &want);
		int H = (int)in.shape[0], W = (int)in.shape[1], C = (int)in.shape[2];
		size_t npix = (size_t)H * W;
		uint8_t *got = malloc(tensor_nbytes(&want) + tensor_nbytes(&in));
		ck_assert_ptr_nonnull(got);
		const char *op = NULL;
		for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
			if (str_is(c, "op", ops[i]))
				op = ops[i];
		ck_assert_msg(op != NULL, "fixture case %u: unknown op", ci);
		if (strcmp(op, "crop_resize") == 0) {
			CropBox b = { (int)num(c, "top"), (int)num(c, "left"), (int)num(c, "height"),
				      (int)num(c, "width") };
			int oh = (int)num(c, "out_h"), ow = (int)num(c, "out_w");
			ck_assert(want.shape[0] == oh && want.shape[1] == ow && want.shape[2] == C);
			augment_resize_crop(got, &scratch, in.data, H, W, C, b, oh, ow, 0);
		} else {
			ck_assert(tensor_same_shape(&in, &want));
			memcpy(got, in.data, tensor_nbytes(&in));
			if (strcmp(op, "brightness") == 0) {
				augment_brightness(got, &scratch, npix, C, num(c, "factor"));
			} else if (strcmp(op, "contrast") == 0) {
				augment_contrast(got, &scratch, npix, C, num(c, "factor"));
			} else if (strcmp(op, "saturation") == 0) {
				augment_saturation(got, &scratch, npix, C, num(c, "factor"));
			} else if (strcmp(op, "hue") == 0) {
				augment_hue(got, &scratch, npix, C, num(c, "factor"));
			} else if (strcmp(op, "jitter") == 0) {
				const msgpack_object *o = map_get(c, "order");
				ck_assert(o && o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 4);
				int order[4];
				for (int i = 0; i < 4; i++)
					order[i] = (int)o->via.array.ptr[i].via.u64;
				augment_jitter(got, &scratch, npix, C, order, 4, num(c, "brightness"),
				               num(c, "contrast"), num(c, "saturation"),
				               num(c, "hue"));
			} else if (strcmp(op, "grayscale") == 0) {
				augment_grayscale(got, npix, C);
			} else if (strcmp(op, "blur") == 0) {
				augment_blur(got, &scratch, H, W, C, (int)num(c, "kernel"), (float)num(c, "sigma"));
			} else {
				augment_solarize(got, npix * C, (int)num(c, "threshold"));
			}
		}
		const msgpack_object *ro = map_get(c, "ref");
		ParityStat *s = stat_for(st, &nst, op, ro && str_is(c, "ref", "pil") ? "PIL" : "tensor");
		const uint8_t *w = want.data;
		int md = 0;
		for (size_t i = 0; i < tensor_nbytes(&want); i++) {
			int d = abs((int)got[i] - (int)w[i]);
			md = d > md ? d : md;
			s->sumdiff += d;
		}
		s->values += (int64_t)tensor_nbytes(&want);
		s->maxdiff = md > s->maxdiff ? md : s->maxdiff;
		s->cases++;
		if (md > 2) {
			printf("fixture case %u (%s, image %d): max difference %d levels > 2\n", ci, op, k, md);
			bad++;
		}
		free(got);
	}
	for (int i = 0; i < nst; i++)
		printf("augment parity vs torchvision %-7s %-12s %2d cases: max diff %d, mean %.3f levels\n",
		       st[i].ref, st[i].op, st[i].cases, st[i].maxdiff, st[i].sumdiff / (double)st[i].values);
	fflush(stdout);
	ck_assert_int_ge(nst, 10); /* every op was exercised */
	ck_assert_msg(bad == 0, "%d fixture cases differ by more than 2 levels", bad);
	augment_scratch_free(&scratch);
	msgpack_unpacked_destroy(&up);
	free(buf);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* crop sampling against the definition of get_params */

START_TEST(test_crop_moments)
{
	/* With these ranges every first attempt fits, so the area fraction is
	 * uniform on [0.1, 0.5) up to rounding, log(w/h) uniform on
	 * [log 3/4, log 4/3), and the position uniform over the valid offsets. */
	const int H = 2000, W = 2000, n = 40000;
	const double lr = log(4.0 / 3.0);
	double sa = 0, sa2 = 0, slr = 0, spos = 0;
	int hist[10] = { 0 }, fallbacks = 0;
	for (int k = 0; k < n; k++) {
		Rng r = rng_for(11, 0, (uint64_t)k, 0);
		int fb;
		CropBox b = augment_crop_sample(&r, H, W, 0.1, 0.5, 3.0 / 4.0, 4.0 / 3.0, &fb);
		fallbacks += fb;
		ck_assert(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W);
		double a = (double)b.height * b.width / (H * W), l = log((double)b.width / b.height);
		sa += a;
		sa2 += a * a;
		slr += l;
		int bin = (int)((l + lr) / (2 * lr) * 10);
		hist[bin < 0 ? 0 : bin > 9 ? 9 : bin]++;
		if (H > b.height)
			spos += (double)b.top / (H - b.height);
		else
			spos += 0.5;
	}
	double mean = sa / n, var = sa2 / n - mean * mean;
	ck_assert_int_eq(fallbacks, 0);
	/* mean 0.3, sd 0.4/sqrt(12) = 0.115: the standard error is 0.0006. */
	ck_assert_msg(fabs(mean - 0.3) < 0.003, "mean area fraction %.4f, expected 0.3", mean);
	ck_assert_msg(fabs(var - 0.16 / 12) < 0.0008, "area fraction variance %.5f, expected %.5f", var, 0.16 / 12);
	ck_assert_msg(fabs(slr / n) < 0.005, "mean log ratio %.4f, expected 0", slr / n);
	ck_assert_msg(fabs(spos / n - 0.5) < 0.01, "mean relative offset %.4f", spos / n);
	/* log ratio flat over 10 bins: chi-square with 9 dof, 99.99% point is 33.7.
	 * Rounding w and h blurs the edges a little, so the edge bins are left out. */
	double chi = 0;
	int inner = 0;
	for (int i = 1; i < 9; i++)
		inner += hist[i];
	for (int i = 1; i < 9; i++) {
		double e = inner / 8.0;
		chi += (hist[i] - e) * (hist[i] - e) / e;
	}
	ck_assert_msg(chi < 30, "log ratio histogram not flat: chi2 %.1f", chi);
}
END_TEST

/* The probability that one attempt fits, from the definition, by integration. */
static double
attempt_fit_prob(int H, int W, double smin, double smax, double rmin, double rmax)
{
	const int n = 2000;
	int fit = 0;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++) {
			double target = (double)H * W * (smin + (smax - smin) * (i + 0.5) / n);
			double ar = exp(log(rmin) + (log(rmax) - log(rmin)) * (j + 0.5) / n);
			double w = nearbyint(sqrt(target * ar)), h = nearbyint(sqrt(target / ar));
			fit += w > 0 && w <= W && h > 0 && h <= H;
		}
	return (double)fit / ((double)n * n);
}

START_TEST(test_crop_fallback)
{
	/* Never fits: always the centre crop clamped to the ratio range. */
	for (int k = 0; k < 100; k++) {
		Rng r = rng_for(1, 0, (uint64_t)k, 0);
		int fb;
		CropBox b = augment_crop_sample(&r, 10, 10, 0.9, 1.0, 3.0, 4.0, &fb);
		ck_assert_int_eq(fb, 1);
		ck_assert(b.width == 10 && b.height == 3 && b.top == 3 && b.left == 0);
		b = augment_crop_sample(&r, 10, 40, 0.9, 1.0, 0.25, 0.3, &fb);
		ck_assert_int_eq(fb, 1);
		ck_assert(b.height == 10 && b.width == 3 && b.left == 18 && b.top == 0);
		b = augment_crop_sample(&r, 10, 12, 1.0, 1.0, 2.0, 2.0, &fb); /* in_ratio 1.2 < 2 */
		ck_assert(fb == 1 && b.width == 12 && b.height == 6 && b.top == 2);
	}
	/* Sometimes fits: the fallback rate is (1 - p)^10 for the one-attempt fit probability p. */
	const int H = 24, W = 32, n = 20000;
	double p = attempt_fit_prob(H, W, 0.3, 1.0, 0.2, 5.0);
	double expect = pow(1 - p, 10);
	int fallbacks = 0;
	for (int k = 0; k < n; k++) {
		Rng r = rng_for(5, 1, (uint64_t)k, 3);
		int fb;
		CropBox b = augment_crop_sample(&r, H, W, 0.3, 1.0, 0.2, 5.0, &fb);
		fallbacks += fb;
		ck_assert(b.top >= 0 && b.left >= 0 && b.top + b.height <= H && b.left + b.width <= W);
	}
	double rate = (double)fallbacks / n, se = sqrt(expect * (1 - expect) / n);
	printf("augment crop fallback rate %.4f, expected %.4f (one attempt fits with p = %.3f)\n", rate, expect, p);
	ck_assert(expect > 0.01 && expect < 0.5);
	ck_assert_msg(fabs(rate - expect) < 5 * se + 0.002, "fallback rate %.4f, expected %.4f", rate, expect);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* kernels */

static void
fill_image(uint8_t *img, int H, int W, int C, uint64_t seed)
{
	/* Smooth structure plus noise: like a photo, not like static. */
	Rng r = rng_for(seed, 0, 0, 0);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			for (int c = 0; c < C; c++) {
				double v = 128 + 90 * sin(0.21 * x + 1.3 * c) * cos(0.17 * y - 0.7 * c) + 30 * rng_normal(&r);
				img[((size_t)y * W + x) * C + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
			}
}

START_TEST(test_jitter_fast_equals_ref)
{
	if (!isa_use(_i))
		return;
	enum { H = 19, W = 23 };
	uint8_t img[H * W * 3], a[H * W * 3], b[H * W * 3];
	AugmentScratch s = { 0 };
	for (int trial = 0; trial < 400; trial++) {
		Rng r = rng_for(9, 0, (uint64_t)trial, 0);
		int C = trial % 5 == 4 ? 1 : 3;
		fill_image(img, H, W, C, (uint64_t)trial);
		/* Grays, extremes and ties, where hue is undefined or channels are equal. */
		for (int i = 0; i < H * W; i += 1 + (int)rng_below(&r, 7)) {
			uint8_t *p = img + (size_t)i * C;
			int kind = (int)rng_below(&r, 4), v = (int)rng_below(&r, 256);
			for (int c = 0; c < C; c++)
				p[c] = kind == 0 ? (uint8_t)v : kind == 1 ? (uint8_t)(c ? v : 255) : kind == 2 ? (uint8_t)(c == 1 ? 0 : v) : p[c];
		}
		int order[4] = { 0, 1, 2, 3 };
		for (int i = 3; i > 0; i--) {
			int j = (int)rng_below(&r, (uint64_t)i + 1), t = order[i];
			order[i] = order[j];
			order[j] = t;
		}
		int nops = 1 + (int)rng_below(&r, 4);
		double f[4] = { rng_uniform_range(&r, 0, 2), rng_uniform_range(&r, 0, 2), rng_uniform_range(&r, 0, 2),
			        rng_uniform_range(&r, -0.5, 0.5) };
		memcpy(a, img, sizeof img);
		memcpy(b, img, sizeof img);
		augment_jitter(a, &s, H * W, C, order, nops, f[0], f[1], f[2], f[3]);
		augment_jitter_ref(b, H * W, C, order, nops, f[0], f[1], f[2], f[3]);
		ck_assert_msg(memcmp(a, b, (size_t)H * W * C) == 0, "trial %d: jitter differs from its reference", trial);
	}
	/* Factor 1 leaves the image alone, exactly. (A zero hue shift does not:
	 * torchvision's HSV round trip truncates, and so do we.) */
	fill_image(img, H, W, 3, 3);
	memcpy(a, img, sizeof img);
	int bcs[3] = { 2, 0, 1 };
	augment_jitter(a, &s, H * W, 3, bcs, 3, 1, 1, 1, 0);
	ck_assert(memcmp(a, img, sizeof a) == 0);
	augment_scratch_free(&s);
}
END_TEST

START_TEST(test_flip_and_identity_resize)
{
	enum { H = 13, W = 17, C = 3 };
	uint8_t img[H * W * C], a[H * W * C], b[H * W * C];
	AugmentScratch s = { 0 };
	fill_image(img, H, W, C, 4);
	CropBox full = { 0, 0, H, W };
	augment_resize_crop(a, &s, img, H, W, C, full, H, W, 0);
	ck_assert(memcmp(a, img, sizeof a) == 0);
	augment_resize_crop(b, &s, img, H, W, C, full, H, W, 1);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++)
			ck_assert(memcmp(b + (y * W + x) * C, img + (y * W + W - 1 - x) * C, C) == 0);
	/* A flip of a resized crop is the mirror of the unflipped one. */
	CropBox box = { 2, 3, 9, 11 };
	uint8_t c1[7 * 5 * C], c2[7 * 5 * C];
	augment_resize_crop(c1, &s, img, H, W, C, box, 7, 5, 0);
	augment_resize_crop(c2, &s, img, H, W, C, box, 7, 5, 1);
	for (int y = 0; y < 7; y++)
		for (int x = 0; x < 5; x++)
			ck_assert(memcmp(c2 + (y * 5 + x) * C, c1 + (y * 5 + 4 - x) * C, C) == 0);
	/* Constant images stay constant at every scale. */
	memset(img, 77, sizeof img);
	uint8_t big[40 * 31 * C];
	augment_resize_crop(big, &s, img, H, W, C, box, 40, 31, 0);
	for (size_t i = 0; i < sizeof big; i++)
		ck_assert_int_eq(big[i], 77);
	augment_scratch_free(&s);
}
END_TEST

START_TEST(test_blur_and_solarize)
{
	enum { H = 9, W = 12, C = 3 };
	uint8_t img[H * W * C];
	AugmentScratch s = { 0 };
	memset(img, 200, sizeof img);
	augment_blur(img, &s, H, W, C, 23, 2.0f); /* kernel wider than the image: reflection wraps */
	for (size_t i = 0; i < sizeof img; i++)
		ck_assert_int_eq(img[i], 200);
	ck_assert_int_eq(augment_blur_kernel(224), 23);
	ck_assert_int_eq(augment_blur_kernel(96), 9);
	ck_assert_int_eq(augment_blur_kernel(32), 3);
	ck_assert_int_eq(augment_blur_kernel(5), 3);
	uint8_t v[4] = { 0, 127, 128, 255 };
	augment_solarize(v, 4, 128);
	ck_assert(v[0] == 0 && v[1] == 127 && v[2] == 127 && v[3] == 0);
	augment_scratch_free(&s);
}
END_TEST

START_TEST(test_center_crop)
{
	CropBox b = augment_crop_center(100, 60, 32, 32);
	ck_assert(b.height == 60 && b.width == 60 && b.top == 20 && b.left == 0);
	b = augment_crop_center(40, 100, 20, 30);
	ck_assert(b.height == 40 && b.width == 60 && b.left == 20 && b.top == 0);
	b = augment_crop_center(32, 32, 32, 32);
	ck_assert(b.height == 32 && b.width == 32 && b.top == 0 && b.left == 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* recipes, plans, whole records */

START_TEST(test_recipes_and_checks)
{
	AugmentParams p;
	char err[256];
	int oh, ow;
	static const char *names[] = { "cifar", "stl10", "imagenet", "photo", "mnist", "none" };
	for (int i = 0; i < 6; i++) {
		ck_assert_int_eq(augment_recipe(&p, names[i]), 0);
		ck_assert_msg(augment_params_check(&p, err, sizeof err) == 0, "%s: %s", names[i], err);
	}
	ck_assert_int_eq(augment_recipe(&p, "simclr"), -1);
	augment_recipe(&p, "cifar");
	ck_assert(p.out_h == 32 && p.scale_min == 0.08 && p.brightness == 0.4 && p.hue == 0.1 && p.blur_p == 0 &&
	          p.gray_p == 0.2 && p.jitter_p == 0.8 && p.views == 2);
	augment_recipe(&p, "imagenet");
	ck_assert(p.out_h == 224 && p.brightness == 0.8 && p.hue == 0.2 && p.blur_p == 0.5);
	/* photo keeps hue and colour: no hue jitter, no grayscale, no solarize */
	augment_recipe(&p, "photo");
	ck_assert(p.out_h == 96 && p.brightness == 0.4 && p.saturation == 0.2 && p.hue == 0 && p.gray_p == 0 &&
	          p.blur_p == 0 && p.solarize_p == 0 && p.random_crop && p.flip_p == 0.5);

	augment_recipe(&p, "cifar");
	p.flip_p = -0.1;
	ck_assert_int_eq(augment_params_check(&p, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "--flip"));
	augment_recipe(&p, "cifar");
	p.scale_min = 0.9;
	p.scale_max = 0.1;
	ck_assert_int_eq(augment_params_check(&p, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "--scale"));
	augment_recipe(&p, "cifar");
	p.hue = 0.6;
	ck_assert_int_eq(augment_params_check(&p, err, sizeof err), -1);

	augment_recipe(&p, "cifar");
	ck_assert_int_eq(augment_check_input(&p, 32, 32, 3, &oh, &ow, err, sizeof err), 0);
	ck_assert(oh == 32 && ow == 32);
	ck_assert_int_eq(augment_check_input(&p, 28, 28, 1, &oh, &ow, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "3 channels"));
	ck_assert_int_eq(augment_check_input(&p, 28, 28, 4, &oh, &ow, err, sizeof err), -1);
	augment_recipe(&p, "mnist");
	ck_assert_int_eq(augment_check_input(&p, 28, 28, 1, &oh, &ow, err, sizeof err), 0);
	augment_recipe(&p, "none");
	ck_assert_int_eq(augment_check_input(&p, 20, 30, 3, &oh, &ow, err, sizeof err), 0);
	ck_assert(oh == 20 && ow == 30);
	p.out_h = p.out_w = 24;
	ck_assert_int_eq(augment_check_input(&p, 20, 30, 3, &oh, &ow, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "smaller"));
}
END_TEST

START_TEST(test_plan_frequencies)
{
	AugmentParams p;
	augment_recipe(&p, "stl10");
	int n = 20000, flips = 0, jit = 0, gray = 0, blur = 0, sol = 0, first[4] = { 0 };
	double sig = 0, bmin = 9, bmax = -9, hmin = 9, hmax = -9;
	p.solarize_p = 0.3;
	for (int k = 0; k < n; k++) {
		Rng r = rng_for(2, 0, (uint64_t)k, 1);
		ViewPlan v;
		augment_plan(&v, &p, 96, 128, &r);
		flips += v.flip;
		jit += v.njitter > 0;
		gray += v.gray;
		blur += v.blur;
		sol += v.solarize;
		sig += v.sigma;
		if (v.njitter) {
			ck_assert_int_eq(v.njitter, 4);
			first[v.order[0]]++;
		}
		bmin = fmin(bmin, v.bright);
		bmax = fmax(bmax, v.bright);
		hmin = fmin(hmin, v.hue);
		hmax = fmax(hmax, v.hue);
	}
	/* Binomial standard errors are below 0.0036; allow 5 of them. */
	ck_assert(fabs(flips / (double)n - 0.5) < 0.018);
	ck_assert(fabs(jit / (double)n - 0.8) < 0.015);
	ck_assert(fabs(gray / (double)n - 0.2) < 0.015);
	ck_assert(fabs(blur / (double)n - 0.5) < 0.018);
	ck_assert(fabs(sol / (double)n - 0.3) < 0.016);
	ck_assert(fabs(sig / n - 1.05) < 0.02);
	for (int i = 0; i < 4; i++)
		ck_assert(fabs(first[i] / (double)jit - 0.25) < 0.02);
	ck_assert(bmin >= 0.2 && bmin < 0.21 && bmax < 1.8 && bmax > 1.79);
	ck_assert(hmin >= -0.2 && hmin < -0.19 && hmax < 0.2 && hmax > 0.19);
	/* Zero strengths drop out of the order. */
	augment_recipe(&p, "mnist");
	p.jitter_p = 1;
	Rng r = rng_for(2, 0, 0, 0);
	ViewPlan v;
	augment_plan(&v, &p, 28, 28, &r);
	ck_assert_int_eq(v.njitter, 2);
	for (int i = 0; i < 2; i++)
		ck_assert(v.order[i] == JITTER_BRIGHTNESS || v.order[i] == JITTER_CONTRAST);
}
END_TEST

START_TEST(test_record_determinism)
{
	enum { H = 40, W = 36, C = 3, V = 4 };
	uint8_t img[H * W * C], a[V * 32 * 32 * C], b[V * 32 * 32 * C];
	size_t vs = 32 * 32 * C;
	AugmentParams p;
	AugmentScratch s1 = { 0 }, s2 = { 0 };
	augment_recipe(&p, "cifar");
	p.views = V;
	p.blur_p = 0.5;
	p.solarize_p = 0.2;
	fill_image(img, H, W, C, 8);
	augment_record(a, &s1, img, H, W, C, 32, 32, &p, 1, 0, 17);
	/* A different scratch history gives the same bytes. */
	uint8_t junk[300 * 300 * 3];
	memset(junk, 9, sizeof junk);
	augment_record(b, &s2, junk, 300, 300, 3, 32, 32, &p, 1, 0, 5);
	augment_record(b, &s2, img, H, W, C, 32, 32, &p, 1, 0, 17);
	ck_assert(memcmp(a, b, sizeof a) == 0);
	for (int i = 0; i < V; i++)
		for (int j = i + 1; j < V; j++)
			ck_assert_msg(memcmp(a + i * vs, a + j * vs, vs) != 0, "views %d and %d are equal", i, j);
	augment_record(b, &s2, img, H, W, C, 32, 32, &p, 1, 1, 17); /* another epoch */
	ck_assert(memcmp(a, b, vs) != 0);
	augment_record(b, &s2, img, H, W, C, 32, 32, &p, 2, 0, 17); /* another seed */
	ck_assert(memcmp(a, b, vs) != 0);
	/* Recipe none is the identity at the input size. */
	augment_recipe(&p, "none");
	augment_record(b, &s2, img, H, W, C, H, W, &p, 1, 0, 17);
	ck_assert(memcmp(b, img, sizeof img) == 0);
	augment_scratch_free(&s1);
	augment_scratch_free(&s2);
}
END_TEST

START_TEST(test_png_sheet)
{
	ContactSheet sh;
	char err[256];
	uint8_t img[4 * 5 * 3], g[4 * 5], g3[5 * 4];
	fill_image(img, 4, 5, 3, 1);
	fill_image(g, 4, 5, 1, 2);
	fill_image(g3, 5, 4, 1, 3);
	ck_assert_int_eq(sheet_upscale_factor(32, 96), 3);
	ck_assert_int_eq(sheet_upscale_factor(28, 96), 4);
	ck_assert_int_eq(sheet_upscale_factor(224, 96), 1);
	sheet_init(&sh, 2, 3, 8, 10, 2);
	ck_assert(sh.H == 2 * 10 + 2 && sh.W == 3 * 12 + 2);
	sheet_put(&sh, 1, 2, img, 4, 5, 3, 2);
	sheet_put(&sh, 0, 0, g, 4, 5, 1, 2);
	const uint8_t *px = sh.pix + ((size_t)(2 + 10 + 3) * sh.W + 2 + 2 * 12 + 5) * 3;
	ck_assert(memcmp(px, img + (1 * 5 + 2) * 3, 3) == 0);
	px = sh.pix + ((size_t)2 * sh.W + 2) * 3;
	ck_assert(px[0] == g[0] && px[1] == g[0] && px[2] == g[0]);
	const char *path = tu_path("sheet.png");
	ck_assert_msg(sheet_write(&sh, path, err, sizeof err) == 0, "%s", err);
	size_t len;
	char *png = tu_read_file(path, &len);
	ck_assert(len > 33 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
	/* IHDR: width and height big-endian at bytes 16 and 20. */
	const unsigned char *u = (const unsigned char *)png;
	ck_assert_int_eq((u[16] << 24 | u[17] << 16 | u[18] << 8 | u[19]), sh.W);
	ck_assert_int_eq((u[20] << 24 | u[21] << 16 | u[22] << 8 | u[23]), sh.H);
	free(png);
	ck_assert_int_eq(sheet_write(&sh, "/nonexistent-dir/x.png", err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "/nonexistent-dir/x.png"));
	sheet_free(&sh);

	/* A grid of pictures of different sizes: cells fit the largest (5x4),
	 * enlarged 3 times to reach 12 pixels; the empty last row is left out. */
	PictureGrid pg;
	grid_init(&pg, 3, 2);
	ck_assert_int_eq(grid_write_png(&pg, path, 12, err, sizeof err), -1);
	grid_set(&pg, 0, 0, img, 4, 5, 3);
	grid_set(&pg, 1, 1, g3, 5, 4, 1);
	ck_assert_msg(grid_write_png(&pg, path, 12, err, sizeof err) == 0, "%s", err);
	png = tu_read_file(path, &len);
	u = (const unsigned char *)png;
	ck_assert_int_eq((u[16] << 24 | u[17] << 16 | u[18] << 8 | u[19]), 2 * (15 + 4) + 4);
	ck_assert_int_eq((u[20] << 24 | u[21] << 16 | u[22] << 8 | u[23]), 2 * (15 + 4) + 4);
	free(png);
	grid_free(&pg);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* the tool */

typedef struct {
	int n, epochs, H, W, C;
} AugImages;

static void
aug_record(int i, Record *rec, uint8_t *px, void *arg)
{
	const AugImages *a = arg;
	static char src[32];
	rec->id = 10 + i % (a->n / a->epochs);
	rec->label = i % 3;
	rec->epoch = i / (a->n / a->epochs);
	fill_image(px, a->H, a->W, a->C, (uint64_t)i);
	snprintf(src, sizeof src, "c/%d.png", i);
	rec->source = src;
}

/* n records of H x W x C photo-like images over `epochs` epochs, ids 10..,
 * labels i % 3, sources "c/i.png". kind: the header's kind. */
static void
write_images(const char *path, int n, int H, int W, int C, int epochs, const char *kind, int trailer)
{
	static char *names[] = { "cat", "dog", "frog" };
	static char *argv[] = { "ssl-decode", "x" };
	AugImages a = { n, epochs, H, W, C };
	TuImages s = { .kind = kind, .H = H, .W = W, .C = C, .nclasses = 3, .classes = names,
		       .records_per_epoch = n / epochs, .epochs = epochs, .prov_argc = 2, .prov_argv = argv,
		       .no_trailer = !trailer, .record = aug_record, .arg = &a };
	tu_write_images(path, n, &s);
}

static int
files_equal(const char *a, const char *b)
{
	size_t la, lb;
	char *x = tu_read_file(a, &la), *y = tu_read_file(b, &lb);
	int eq = la == lb && memcmp(x, y, la) == 0;
	free(x);
	free(y);
	return eq;
}

/* Reads a views stream and checks every record against the input images
 * and against augment_record() called here: the tool adds nothing of its own. */
static void
check_views(const char *path, int n, int H, int W, int C, const char *recipe, uint64_t seed, int views, int oh,
            int ow)
{
	StreamReader *r = stream_reader_open_path(path);
	const StreamHeader *h = stream_reader_header(r);
	ck_assert_msg(h != NULL, "%s", stream_reader_error(r));
	ck_assert_str_eq(h->kind, "views");
	ck_assert_int_eq(h->nclasses, 3);
	ck_assert_str_eq(h->classes[2], "frog");
	ck_assert_int_eq(h->nprov, 2);
	ck_assert_str_eq(h->prov[1].tool, "ssl-augment");
	ck_assert_str_eq(stream_header_get_meta(h, "augment_recipe"), recipe);
	AugmentParams p;
	AugmentScratch s = { 0 };
	augment_recipe(&p, recipe);
	p.views = views;
	p.out_h = oh;
	p.out_w = ow;
	size_t vsz = (size_t)views * oh * ow * C;
	uint8_t *img = malloc((size_t)H * W * C), *want = malloc(vsz);
	Record rec;
	int k = 0, st;
	char err[256], src[32];
	while ((st = stream_reader_next(r, &rec)) == 1) {
		int per = n / (int)h->epochs;
		ck_assert_int_eq(rec.id, 10 + k % per);
		ck_assert_int_eq(rec.label, k % 3);
		ck_assert_int_eq(rec.epoch, k / per);
		snprintf(src, sizeof src, "c/%d.png", k);
		ck_assert_str_eq(rec.source, src);
		const Tensor *t = record_tensor(&rec, "views", DTYPE_U8, 4, err, sizeof err);
		ck_assert_msg(t != NULL, "%s", err);
		ck_assert(t->shape[0] == views && t->shape[1] == oh && t->shape[2] == ow && t->shape[3] == C);
		fill_image(img, H, W, C, (uint64_t)k);
		augment_record(want, &s, img, H, W, C, oh, ow, &p, seed, rec.epoch, rec.id);
		ck_assert_msg(memcmp(t->data, want, vsz) == 0, "record %d differs from augment_record", k);
		k++;
	}
	ck_assert_msg(st == 0, "%s", stream_reader_error(r));
	ck_assert_int_eq(k, n);
	stream_reader_close(r);
	augment_scratch_free(&s);
	free(img);
	free(want);
}

START_TEST(test_tool_cifar)
{
	const char *in = tu_path("in.ssl"), *out = tu_path("out.ssl");
	TuResult r;
	write_images(in, 24, 40, 36, 3, 2, STREAM_KIND_IMAGES, 1);
	tu_run(&r, "ssl-augment --recipe cifar --seed 1 <'%s' >'%s'", in, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_str_eq(r.err, "");
	tu_result_free(&r);
	check_views(out, 24, 40, 36, 3, "cifar", 1, 2, 32, 32);
	tu_run(&r, "ssl-info '%s'", out);
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "tensor views: |u1 2x32x32x3 in 24 records"));
	tu_result_free(&r);
	/* Overrides reach the lib: 3 views of 20x24 with blur and solarize. */
	tu_run(&r, "ssl-augment -r stl10 --size 20x24 --views 3 --solarize-p 0.5 --seed 7 '%s' >'%s'", in, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	StreamReader *rd = stream_reader_open_path(out);
	Record rec;
	char err[128];
	ck_assert_int_eq(stream_reader_next(rd, &rec), 1);
	const Tensor *t = record_tensor(&rec, "views", DTYPE_U8, 4, err, sizeof err);
	ck_assert(t && t->shape[0] == 3 && t->shape[1] == 20 && t->shape[2] == 24);
	stream_reader_close(rd);
}
END_TEST

START_TEST(test_tool_threads_and_blocks)
{
	char in[512];
	TuResult r;
	snprintf(in, sizeof in, "%s", tu_path("tb.ssl")); /* tu_path's buffers rotate */
	write_images(in, 37, 33, 30, 3, 1, STREAM_KIND_IMAGES, 1);
	/* The input also arrives through a pipe in uneven pieces: the stream
	 * reader's chunking must not matter either. */
	char cut[1200];
	snprintf(cut, sizeof cut, "(head -c 1000 '%s'; sleep 0.1; tail -c +1001 '%s') | ", in, in);
	const char *runs[] = { "--threads 1 --block 1", "--threads 2", "--threads 2 --block 5", "--threads 3 --block 64",
		               "--block 3" };
	for (int i = 0; i < 5; i++) {
		char name[24]; /* "tb%d.ssl" for any int */
		snprintf(name, sizeof name, "tb%d.ssl", i);
		tu_run(&r, "%s ssl-augment --recipe imagenet --size 24 --seed 3 %s <'%s' >'%s'", i == 4 ? cut : "",
		       runs[i], i == 4 ? "/dev/stdin" : in, tu_path(name));
		ck_assert_msg(r.status == 0, "%s: status %d: %s", runs[i], r.status, r.err);
		tu_result_free(&r);
		if (i > 0)
			ck_assert_msg(files_equal(tu_path("tb0.ssl"), tu_path(name)), "%s: output differs", runs[i]);
	}
	tu_run(&r, "ssl-augment --recipe imagenet --size 24 --seed 4 <'%s' >'%s'", in, tu_path("tb9.ssl"));
	ck_assert_int_eq(r.status, 0);
	ck_assert(!files_equal(tu_path("tb0.ssl"), tu_path("tb9.ssl")));
	tu_result_free(&r);
}
END_TEST

START_TEST(test_tool_mnist_none)
{
	const char *in = tu_path("m.ssl"), *out = tu_path("mo.ssl");
	TuResult r;
	write_images(in, 6, 28, 28, 1, 1, STREAM_KIND_IMAGES, 1);
	tu_run(&r, "ssl-augment --recipe mnist --seed 2 '%s' >'%s'", in, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	check_views(out, 6, 28, 28, 1, "mnist", 2, 2, 28, 28);
	/* none without --size: the input, once. */
	write_images(in, 5, 21, 17, 3, 1, STREAM_KIND_IMAGES, 1);
	tu_run(&r, "ssl-augment --recipe none '%s' >'%s'", in, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	check_views(out, 5, 21, 17, 3, "none", 0, 1, 21, 17);
	tu_run(&r, "ssl-augment --recipe none --size 16 '%s' >'%s'", in, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	check_views(out, 5, 21, 17, 3, "none", 0, 1, 16, 16);
}
END_TEST

static void
expect_fail(int status, const char *needle, const char *fmt, const char *a, const char *b)
{
	TuResult r;
	tu_run(&r, fmt, a, b);
	ck_assert_msg(r.status == status, "'%s': status %d, expected %d: %s", fmt, r.status, status, r.err);
	ck_assert_msg(strstr(r.err, needle) != NULL, "'%s': no '%s' in: %s", fmt, needle, r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1 || status == 2, "not one line: %s", r.err);
	if (status == 2)
		ck_assert_uint_eq(r.outlen, 0);
	tu_result_free(&r);
}

/* A stream that must read as truncated (no trailer). */
static void
expect_truncated(const char *path)
{
	StreamReader *r = stream_reader_open_path(path);
	Record rec;
	int s;
	if (stream_reader_header(r))
		while ((s = stream_reader_next(r, &rec)) == 1)
			;
	ck_assert_ptr_nonnull(strstr(stream_reader_error(r), "truncated"));
	stream_reader_close(r);
}

START_TEST(test_tool_errors)
{
	const char *in = tu_path("e.ssl"), *out = tu_path("eo.ssl");
	TuResult r;
	write_images(in, 4, 20, 20, 3, 1, STREAM_KIND_IMAGES, 1);
	tu_run(&r, "ssl-augment --help");
	ck_assert_int_eq(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.out, "--recipe NAME"));
	tu_result_free(&r);
	expect_fail(2, "--recipe is required", "ssl-augment '%s' >'%s'", in, out);
	expect_fail(2, "unknown recipe", "ssl-augment --recipe simclr '%s' >'%s'", in, out);
	expect_fail(2, "--flip", "ssl-augment --recipe cifar --flip -0.1 '%s' >'%s'", in, out);
	expect_fail(2, "--scale", "ssl-augment --recipe cifar --scale 0.9,0.1 '%s' >'%s'", in, out);
	expect_fail(2, "--jitter", "ssl-augment --recipe cifar --jitter 0.4,0.4 '%s' >'%s'", in, out);
	expect_fail(2, "--jitter", "ssl-augment --recipe cifar --jitter 0.4,0.4,0.4,0.7 '%s' >'%s'", in, out);
	expect_fail(2, "--views", "ssl-augment --recipe cifar --views 0 '%s' >'%s'", in, out);
	expect_fail(2, "--size", "ssl-augment --recipe cifar --size 0 '%s' >'%s'", in, out);
	expect_fail(2, "do not apply", "ssl-augment --recipe none --ratio 1,2 '%s' >'%s'", in, out);
	expect_fail(2, "--blur-sigma", "ssl-augment --recipe stl10 --blur-sigma 0,1 '%s' >'%s'", in, out);

	/* Run-time errors: one line naming input and record; output without trailer. */
	write_images(in, 4, 20, 20, 3, 1, STREAM_KIND_EMBEDDINGS, 1);
	expect_fail(1, "stream kind is 'embeddings', expected 'images'", "ssl-augment --recipe cifar '%s' >'%s'", in,
	            out);
	write_images(in, 4, 28, 28, 1, 1, STREAM_KIND_IMAGES, 1);
	expect_fail(1, "record 1 (id 10): 1-channel image", "ssl-augment --recipe cifar <'%s' >'%s'", in, out);
	expect_truncated(out);
	write_images(in, 4, 20, 20, 3, 1, STREAM_KIND_IMAGES, 1);
	expect_fail(1, "smaller than the output 24x24", "ssl-augment --recipe none --size 24 '%s' >'%s'", in, out);
	expect_truncated(out);
	write_images(in, 300, 20, 20, 3, 1, STREAM_KIND_IMAGES, 0);
	expect_fail(1, "truncated", "ssl-augment --recipe cifar --block 16 '%s' >'%s'", in, out);
	expect_truncated(out);
	write_images(in, 4, 20, 20, 3, 1, STREAM_KIND_IMAGES, 1);
	expect_fail(1, "x.png", "ssl-augment --recipe cifar --preview /nonexistent/x.png '%s' >'%s'", in, out);
	expect_truncated(out);
}
END_TEST

START_TEST(test_tool_preview)
{
	const char *in = tu_path("p.ssl"), *png = tu_path("p.png");
	TuResult r;
	write_images(in, 5, 40, 36, 3, 1, STREAM_KIND_IMAGES, 1);
	tu_run(&r, "ssl-augment --recipe cifar --views 3 --preview '%s' --preview-count 4 '%s' >/dev/null", png, in);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	size_t len;
	unsigned char *u = (unsigned char *)tu_read_file(png, &len);
	ck_assert(len > 24 && memcmp(u, "\x89PNG", 4) == 0);
	/* 4 rows and 1 + 3 columns of 40x36 cells upscaled by 4, 4-pixel gaps. */
	int W = u[16] << 24 | u[17] << 16 | u[18] << 8 | u[19], H = u[20] << 24 | u[21] << 16 | u[22] << 8 | u[23];
	ck_assert_int_eq(W, 4 * (36 * 4 + 4) + 4);
	ck_assert_int_eq(H, 4 * (40 * 4 + 4) + 4);
	free(u);
}
END_TEST

Suite *
augment_suite(void)
{
	isa_report("augment");
	Suite *s = suite_create("augment");
	TCase *tc = tcase_create("parity");
	tcase_add_loop_test(tc, test_parity_torchvision, 0, CPU_NISA);
	suite_add_tcase(s, tc);
	tc = tcase_create("sampling");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_crop_moments);
	tcase_add_test(tc, test_crop_fallback);
	tcase_add_test(tc, test_plan_frequencies);
	suite_add_tcase(s, tc);
	tc = tcase_create("kernels");
	tcase_add_loop_test(tc, test_jitter_fast_equals_ref, 0, CPU_NISA);
	tcase_add_test(tc, test_flip_and_identity_resize);
	tcase_add_test(tc, test_blur_and_solarize);
	tcase_add_test(tc, test_center_crop);
	tcase_add_test(tc, test_recipes_and_checks);
	tcase_add_test(tc, test_record_determinism);
	tcase_add_test(tc, test_png_sheet);
	suite_add_tcase(s, tc);
	tc = tcase_create("tool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tool_cifar);
	tcase_add_test(tc, test_tool_threads_and_blocks);
	tcase_add_test(tc, test_tool_mnist_none);
	tcase_add_test(tc, test_tool_errors);
	tcase_add_test(tc, test_tool_preview);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(augment_suite)
