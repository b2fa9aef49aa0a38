/* Tests for lib/nn/conv: the fast paths (implicit GEMM, im2col + packed
 * kernels or OpenBLAS) against the naive twin at each instruction-set level
 * this CPU runs, the fusions against their composition, finite differences,
 * and PyTorch values (tests/fixtures/core_layers.msgpack from
 * tests/ref/make_core_fixtures.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bn.h"
#include "nn/conv.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "base/parallel.h"
#include "base/util.h"
#include "testutil.h"
#include "fixture.h"
#include "gradcheck.h"
#include "isa.h"

#define FIXTURE "tests/fixtures/core_layers.msgpack"

static const int conv_cases[][9] = {
	/* n, C, H, W, OC, K, S, P, chunk (0: as planned) */
	{ 2, 3, 7, 6, 4, 3, 1, 1, 0 },  { 1, 4, 9, 8, 5, 3, 2, 1, 0 }, { 5, 3, 5, 5, 2, 3, 1, 0, 2 },
	{ 3, 6, 5, 5, 3, 1, 2, 0, 0 },  { 4, 5, 4, 4, 6, 1, 1, 0, 1 }, { 2, 2, 11, 10, 4, 7, 2, 3, 0 },
	{ 3, 4, 6, 7, 3, 3, 2, 1, 1 },  { 1, 1, 1, 1, 1, 1, 1, 0, 0 }, { 7, 2, 3, 3, 3, 3, 1, 1, 3 },
	{ 2, 3, 5, 1, 2, 3, 1, 1, 0 },  { 2, 2, 6, 7, 3, 5, 1, 2, 1 }, { 3, 5, 2, 2, 4, 3, 1, 1, 2 },
	{ 2, 3, 10, 11, 4, 4, 3, 1, 0 }, { 1, 2, 5, 6, 3, 2, 2, 2, 0 }, { 2, 2, 5, 1, 3, 3, 2, 1, 1 },
	/* strided, 16 or more output columns: im2col and col2im through phase rows */
	{ 2, 2, 33, 34, 3, 3, 2, 1, 2 }, { 1, 3, 20, 35, 4, 7, 2, 3, 0 }, { 2, 2, 7, 50, 2, 4, 3, 1, 1 },
	{ 3, 2, 20, 33, 2, 3, 2, 0, 2 }, /* two images a chunk, a partial last one, no padding */
};

#define NCONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

START_TEST(test_conv_vs_ref)
{
	/* the cases at each level (generic: OpenBLAS and plain loops) */
	if (!isa_use(_i / NCONV))
		return;
	const int *c = conv_cases[_i % NCONV];
	int n = c[0];
	ConvShape s;
	ck_assert_int_eq(conv_shape_init(&s, c[1], c[2], c[3], c[4], c[5], c[6], c[7], n), 0);
	if (c[8])
		s.chunk = c[8]; /* several chunks, a partial last one */
	size_t in = (size_t)s.C * n * s.H * s.W, out = (size_t)s.OC * n * s.OH * s.OW,
	       wn = (size_t)s.OC * s.C * s.K * s.K;
	float *x = gc_floats(in), *w = gc_floats(wn), *b = gc_floats(s.OC), *dy = gc_floats(out), *work = gc_floats(conv_work_floats(&s));
	gc_fill_normal(x, in, 1, _i, 1);
	gc_fill_normal(w, wn, 2, _i, 0.5f);
	gc_fill_normal(b, s.OC, 3, _i, 1);
	gc_fill_normal(dy, out, 4, _i, 1);
	float *y = gc_floats(out), *yr = gc_floats(out);
	conv2d_forward(y, work, x, w, b, n, &s);
	conv2d_forward_ref(yr, x, w, b, n, &s);
	ck_assert_msg(rel_err(y, yr, out, 1) < 1e-5, "forward %g", rel_err(y, yr, out, 1));
	/* backward accumulates onto what is there */
	float *dx = gc_floats(in), *dw = gc_floats(wn), *db = gc_floats(s.OC);
	gc_fill_normal(dx, in, 5, _i, 1);
	gc_fill_normal(dw, wn, 6, _i, 1);
	float *dxr = gc_floats_dup(dx, in), *dwr = gc_floats_dup(dw, wn), *dbr = gc_floats_dup(db, s.OC);
	conv2d_backward(dx, dw, db, work, dy, x, w, n, &s);
	conv2d_backward_ref(dxr, dwr, dbr, dy, x, w, n, &s);
	ck_assert_msg(rel_err(dx, dxr, in, 1) < 1e-5, "dinp %g", rel_err(dx, dxr, in, 1));
	ck_assert_msg(rel_err(dw, dwr, wn, 1) < 1e-5, "dweight %g", rel_err(dw, dwr, wn, 1));
	ck_assert_msg(rel_err(db, dbr, s.OC, 1) < 1e-5, "dbias %g", rel_err(db, dbr, s.OC, 1));
	/* dinp NULL skips the input gradient only */
	memcpy(dw, dwr, wn * sizeof(float));
	conv2d_backward(NULL, dw, NULL, work, dy, x, w, n, &s);
	conv2d_backward_ref(NULL, dwr, NULL, dy, x, w, n, &s);
	ck_assert(rel_err(dw, dwr, wn, 1) < 1e-5);
	free(x), free(w), free(b), free(dy), free(work), free(y), free(yr);
	free(dx), free(dw), free(db), free(dxr), free(dwr), free(dbr);
}
END_TEST

/* The fusions equal their composition: a BN+ReLU transform of the input
 * (= bn_apply, then convolve), output statistics (= bn_stats_accumulate),
 * dinp overwrite (= zero, then accumulate); at each level. */
START_TEST(test_conv_fused)
{
	if (!isa_use(_i / NCONV))
		return;
	const int *c = conv_cases[_i % NCONV];
	int n = c[0];
	ConvShape s;
	ck_assert_int_eq(conv_shape_init(&s, c[1], c[2], c[3], c[4], c[5], c[6], c[7], n), 0);
	if (c[8])
		s.chunk = c[8];
	size_t in = (size_t)s.C * n * s.H * s.W, out = (size_t)s.OC * n * s.OH * s.OW,
	       wn = (size_t)s.OC * s.C * s.K * s.K;
	float *x = gc_floats(in), *t = gc_floats(in), *w = gc_floats(wn), *dy = gc_floats(out), *work = gc_floats(conv_work_floats(&s));
	float *mean = gc_floats(s.C), *rstd = gc_floats(s.C), *g = gc_floats(s.C), *b = gc_floats(s.C), *scale = gc_floats(s.C);
	gc_fill_normal(x, in, 1, _i, 1);
	gc_fill_normal(w, wn, 2, _i, 0.5f);
	gc_fill_normal(dy, out, 4, _i, 1);
	gc_fill_normal(mean, s.C, 5, _i, 0.3f);
	gc_fill_normal(b, s.C, 6, _i, 0.3f);
	for (int k = 0; k < s.C; k++) {
		rstd[k] = 1.3f;
		g[k] = 0.5f + 0.1f * k;
		scale[k] = g[k] * rstd[k];
	}
	bn_apply(t, x, NULL, mean, rstd, g, b, n, s.C, s.H * s.W, 1);
	double *st = xcalloc(2 * (size_t)s.OC, sizeof(double)), *st2 = xcalloc(2 * (size_t)s.OC, sizeof(double));
	double *ds = xcalloc(2 * (size_t)s.C, sizeof(double)), *ds2 = xcalloc(2 * (size_t)s.C, sizeof(double));
	ConvFuse f = { .in_mean = mean, .in_scale = scale, .in_shift = b, .out_stats = st, .dinp_overwrite = 1,
		       .in_rstd = rstd, .dinp_sums = ds };
	float *y = gc_floats(out), *y2 = gc_floats(out);
	conv2d_forward_fused(y, work, x, w, NULL, n, &s, &f);
	conv2d_forward(y2, work, t, w, NULL, n, &s);
	ck_assert_msg(rel_err(y, y2, out, 1) < 1e-6, "transformed forward");
	bn_stats_accumulate(st2, y, n, s.OC, s.OH * s.OW);
	for (int k = 0; k < 2 * s.OC; k++)
		ck_assert(fabs(st[k] - st2[k]) <= 1e-9 * (1 + fabs(st2[k])));
	float *dx = gc_floats(in), *dx2 = gc_floats(in), *dw = gc_floats(wn), *dw2 = gc_floats(wn);
	for (size_t j = 0; j < in; j++)
		dx[j] = 123.0f; /* overwritten */
	conv2d_backward_fused(dx, dw, NULL, work, dy, x, w, n, &s, &f);
	conv2d_backward(dx2, dw2, NULL, work, dy, t, w, n, &s);
	ck_assert_msg(rel_err(dx, dx2, in, 1) < 1e-6, "dinp overwrite");
	ck_assert_msg(rel_err(dw, dw2, wn, 1) < 1e-6, "dweight through the transform");
	/* the BN backward sums gathered on the way */
	for (int k = 0; k < s.C; k++)
		for (int i = 0; i < n; i++) {
			size_t off = ((size_t)k * n + i) * s.H * s.W;
			bn_grad_sums_recompute(&ds2[2 * k], dx + off, x + off, (size_t)s.H * s.W, mean[k], rstd[k], scale[k],
			                       b[k]);
		}
	/* float blocks of 256 inside, double across: sums over other chunkings
	 * agree to float rounding of the blocks, 256 u of the sum of magnitudes
	 * on each side (the sums themselves may cancel) */
	for (int k = 0; k < s.C; k++) {
		double mag[2] = { 0, 0 };
		for (size_t j = 0; j < (size_t)n * s.H * s.W; j++) {
			size_t at = (size_t)k * n * s.H * s.W + j;
			double gm = (x[at] - mean[k]) * scale[k] + b[k] > 0 ? dx[at] : 0;
			mag[0] += fabs(gm);
			mag[1] += fabs(gm * (x[at] - mean[k]) * rstd[k]);
		}
		for (int e = 0; e < 2; e++)
			ck_assert_msg(fabs(ds[2 * k + e] - ds2[2 * k + e]) <= 2 * 256 * 0x1p-24 * mag[e] + 1e-9,
			              "dinp sums %d: %g vs %g", 2 * k + e, ds[2 * k + e], ds2[2 * k + e]);
	}
	free(ds), free(ds2);
	free(x), free(t), free(w), free(dy), free(work), free(mean), free(rstd), free(g), free(b), free(scale);
	free(st), free(st2), free(y), free(y2), free(dx), free(dx2), free(dw), free(dw2);
}
END_TEST

typedef struct {
	const ConvShape *s;
	int n;
	float *x, *w, *b, *y, *r, *work;
} ConvCtx;

static double
conv_loss(void *p)
{
	ConvCtx *c = p;
	conv2d_forward_ref(c->y, c->x, c->w, c->b, c->n, c->s);
	return gc_dot(c->y, c->r, (size_t)c->s->OC * c->n * c->s->OH * c->s->OW);
}

START_TEST(test_conv_gradcheck)
{
	const int *c = conv_cases[_i];
	int n = c[0];
	ConvShape s;
	ck_assert_int_eq(conv_shape_init(&s, c[1], c[2], c[3], c[4], c[5], c[6], c[7], n), 0);
	size_t in = (size_t)s.C * n * s.H * s.W, out = (size_t)s.OC * n * s.OH * s.OW,
	       wn = (size_t)s.OC * s.C * s.K * s.K;
	ConvCtx ctx = { &s, n, gc_floats(in), gc_floats(wn), gc_floats(s.OC), gc_floats(out), gc_floats(out), gc_floats(conv_work_floats(&s)) };
	gc_fill_normal(ctx.x, in, 1, _i, 1);
	gc_fill_normal(ctx.w, wn, 2, _i, 0.5f);
	gc_fill_normal(ctx.b, s.OC, 3, _i, 1);
	gc_fill_normal(ctx.r, out, 4, _i, 1);
	float *dx = gc_floats(in), *dw = gc_floats(wn), *db = gc_floats(s.OC);
	conv2d_backward(dx, dw, db, ctx.work, ctx.r, ctx.x, ctx.w, n, &s);
	GcResult g = gradcheck(conv_loss, NULL, &ctx, ctx.x, dx, in, 1e-2, 200, 1e-3);
	ck_assert_msg(g.max_err < 1e-3, "dx err %g at %zu", g.max_err, g.worst);
	g = gradcheck(conv_loss, NULL, &ctx, ctx.w, dw, wn, 1e-2, 200, 1e-3);
	ck_assert_msg(g.max_err < 1e-3, "dw err %g at %zu", g.max_err, g.worst);
	g = gradcheck(conv_loss, NULL, &ctx, ctx.b, db, s.OC, 1e-2, 200, 1e-3);
	ck_assert_msg(g.max_err < 1e-3, "db err %g", g.max_err);
	free(ctx.x), free(ctx.w), free(ctx.b), free(ctx.y), free(ctx.r), free(ctx.work);
	free(dx), free(dw), free(db);
}
END_TEST

START_TEST(test_conv_torch)
{
	Fixture *f = fixture_load(FIXTURE);
	for (int k = 0; k < 5; k++) {
		char nm[64];
#define FX(name, len) (snprintf(nm, sizeof nm, "conv%d." name, k), fixture_f32(f, nm, (len)))
		snprintf(nm, sizeof nm, "conv%d.cfg", k);
		const int32_t *c = fixture_get(f, nm, DTYPE_I32, 9)->data;
		int n = c[0];
		ConvShape s;
		ck_assert_int_eq(conv_shape_init(&s, c[1], c[2], c[3], c[4], c[5], c[6], c[7], n), 0);
		int hw = s.H * s.W, ohw = s.OH * s.OW;
		size_t in = (size_t)s.C * n * hw, out = (size_t)s.OC * n * ohw, wn = (size_t)s.OC * s.C * s.K * s.K;
		const float *b = c[8] ? FX("b", s.OC) : NULL;
		float *x = gc_floats(in), *y = gc_floats(out), *yn = gc_floats(out), *dy = gc_floats(out), *dx = gc_floats(in), *dxn = gc_floats(in);
		float *dw = gc_floats(wn), *db = gc_floats(s.OC), *work = gc_floats(conv_work_floats(&s));
		nchw_to_cnhw(x, FX("x", (int64_t)in), n, s.C, hw);
		nchw_to_cnhw(dy, FX("dy", (int64_t)out), n, s.OC, ohw);
		conv2d_forward(y, work, x, FX("w", (int64_t)wn), b, n, &s);
		cnhw_to_nchw(yn, y, n, s.OC, ohw);
		ck_assert_msg(rel_err(yn, FX("y", (int64_t)out), out, 1e-3) < 1e-5, "conv%d forward", k);
		conv2d_backward(dx, dw, c[8] ? db : NULL, work, dy, x, FX("w", (int64_t)wn), n, &s);
		cnhw_to_nchw(dxn, dx, n, s.C, hw);
		ck_assert_msg(rel_err(dxn, FX("dx", (int64_t)in), in, 1e-3) < 1e-5, "conv%d dx", k);
		ck_assert_msg(rel_err(dw, FX("dw", (int64_t)wn), wn, 1e-3) < 1e-5, "conv%d dw", k);
		if (c[8])
			ck_assert_msg(rel_err(db, FX("db", s.OC), s.OC, 1e-3) < 1e-5, "conv%d db", k);
#undef FX
		free(x), free(y), free(yn), free(dy), free(dx), free(dxn), free(dw), free(db), free(work);
	}
	fixture_free(f);
}
END_TEST

START_TEST(test_conv_limits)
{
	ConvShape s;
	ck_assert_int_eq(conv_shape_init(&s, 0, 4, 4, 1, 3, 1, 1, 1), -1);
	ck_assert_int_eq(conv_shape_init(&s, 1, 2, 2, 1, 5, 1, 1, 1), -1); /* kernel bigger than padded input */
	ck_assert_int_eq(conv_shape_init(&s, 1, 4, 4, 1, 3, 0, 1, 1), -1);
	ck_assert_int_eq(conv_shape_init(&s, 1, 4, 4, 1, 3, 1, -1, 1), -1);
	ck_assert_int_eq(conv_shape_init(&s, 1, 4, 4, 1, 3, 1, 1, 0), -1);
	ck_assert_int_eq(conv_shape_init(&s, 3, 32, 32, 8, 3, 2, 1, 64), 0);
	ck_assert_int_eq(s.OH, 16);
	ck_assert_int_eq(s.OW, 16);
	ck_assert_int_ge(s.chunk, 1);
	ck_assert_int_eq(conv_flops(&s), 2LL * 3 * 9 * 8 * 256);
	/* room for per-thread weight partials and statistics */
	ck_assert_int_eq(conv_shape_init(&s, 3, 5, 5, 4, 1, 1, 0, 8), 0);
	ck_assert_uint_ge(conv_work_floats(&s), (size_t)(s.threads - 1) * 12 + (size_t)s.threads * 4 * 4);
}
END_TEST

/* A model switches precision between steps on the workspace it planned
 * once: a layer's workspace must not depend on ConvShape.bf16 (the bf16
 * implicit products need their own planes and packed weights, an odd
 * channel count a padded pair). */
START_TEST(test_work_precision_free)
{
	static const int shapes[][7] = {
		/* C, H, W, OC, K, S, P */
		{ 16, 32, 32, 16, 3, 1, 1 }, { 32, 16, 16, 32, 3, 1, 1 }, { 3, 32, 32, 16, 3, 1, 1 },
		{ 32, 6, 6, 5, 3, 1, 1 },    { 64, 8, 8, 64, 3, 1, 1 },   { 16, 32, 32, 32, 3, 2, 1 },
		{ 32, 8, 8, 32, 1, 1, 0 },   { 3, 96, 96, 32, 7, 2, 3 },  { 1, 9, 9, 31, 7, 1, 3 },
	};
	for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
		const int *c = shapes[k];
		ConvShape s;
		ck_assert_int_eq(conv_shape_init(&s, c[0], c[1], c[2], c[3], c[4], c[5], c[6], 4), 0);
		size_t fp32 = conv_work_floats(&s), fp32_eval = conv_work_floats_eval(&s);
		s.bf16 = 1;
		ck_assert_uint_eq(conv_work_floats(&s), fp32);
		ck_assert_uint_eq(conv_work_floats_eval(&s), fp32_eval);
	}
}
END_TEST

static Suite *
conv_suite(void)
{
	parallel_set_threads(2);
	isa_report("conv");
	Suite *s = suite_create("conv");
	TCase *tc = tcase_create("conv");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_conv_vs_ref, 0, CPU_NISA * NCONV);
	tcase_add_loop_test(tc, test_conv_gradcheck, 0, NCONV);
	tcase_add_loop_test(tc, test_conv_fused, 0, CPU_NISA * NCONV);
	tcase_add_test(tc, test_conv_torch);
	tcase_add_test(tc, test_conv_limits);
	tcase_add_test(tc, test_work_precision_free);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(conv_suite)
