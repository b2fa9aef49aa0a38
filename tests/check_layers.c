/* Tests for lib/nn/gemm, lib/nn/conv, lib/nn/bn, lib/nn/layers and lib/nn/loss: each fast
 * kernel against its naive twin, finite differences, and PyTorch values
 * (tests/fixtures/core_layers.msgpack from tests/ref/make_core_fixtures.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bn.h"
#include "nn/conv.h"
#include "fixture.h"
#include "nn/gemm.h"
#include "gradcheck.h"
#include "isa.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "base/parallel.h"
#include "testutil.h"
#include "base/util.h"

#define FIXTURE "tests/fixtures/core_layers.msgpack"

static float *
fnew(size_t n)
{
	float *p = xcalloc(n ? n : 1, sizeof(float));
	return p;
}

static float *
fdup(const float *src, size_t n)
{
	float *p = fnew(n);
	memcpy(p, src, n * sizeof(float));
	return p;
}

/* ------------------------------------------------------------------ gemm */

START_TEST(test_gemm_vs_ref)
{
	static const int cases[][5] = {
		/* M, N, K, ta, tb */
		{ 3, 5, 7, 0, 0 },     { 17, 33, 9, 1, 0 },  { 8, 19, 31, 0, 1 }, { 13, 11, 5, 1, 1 },
		{ 70, 300, 200, 0, 0 }, /* big enough to split over threads (by columns) */
		{ 300, 70, 200, 1, 1 }, /* by rows */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2], ta = cases[c][3], tb = cases[c][4];
		float *A = fnew((size_t)M * K), *B = fnew((size_t)K * N), *C = fnew((size_t)M * N);
		float *R = fnew((size_t)M * N);
		gc_fill_normal(A, (size_t)M * K, 1, c, 1);
		gc_fill_normal(B, (size_t)K * N, 2, c, 1);
		gc_fill_normal(C, (size_t)M * N, 3, c, 1);
		memcpy(R, C, sizeof(float) * M * N);
		gemm(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, C, N);
		gemm_ref(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "gemm case %zu: %g", c, rel_err(C, R, (size_t)M * N, 1));
		free(A);
		free(B);
		free(C);
		free(R);
	}
}
END_TEST

/* the packed forms at each level: plain loops (generic), micro-kernels (avx2, avx512) */
START_TEST(test_gemm_packed)
{
	if (!isa_use(_i))
		return;
	static const int cases[][3] = { { 16, 1024, 144 }, { 5, 37, 300 }, { 1, 16, 3 }, { 32, 50, 600 }, { 7, 9, 1 } };
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2], ldb = gemm_pad_ld(N);
		float *A = fnew((size_t)M * K), *B = fnew((size_t)K * ldb), *C = fnew((size_t)M * N), *R = fnew((size_t)M * N);
		float *Ap = fnew(gemm_pack_floats(M, K));
		gc_fill_normal(A, (size_t)M * K, 1, c, 1);
		gc_fill_normal(B, (size_t)K * ldb, 2, c, 1);
		gc_fill_normal(C, (size_t)M * N, 3, c, 1);
		memcpy(R, C, sizeof(float) * M * N);
		gemm_pack_a(Ap, A, K, M, K);
		gemm_packed_nn(M, N, K, Ap, B, ldb, 1, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, ldb, 1.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed += case %zu", c);
		gemm_packed_nn(M, N, K, Ap, B, ldb, 0, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, ldb, 0.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed = case %zu", c);
		free(A), free(B), free(C), free(R), free(Ap);
	}
	ck_assert_int_ge(gemm_pad_ld(1024), 1024);
	ck_assert_int_ne(gemm_pad_ld(1024) % 256, 0);
}
END_TEST

/* The row-offset forms (implicit im2col) against gemm_ref on the rows they
 * gather: rows of B at scattered, overlapping offsets; shapes that leave
 * every kind of edge (4x3 blocks and their remainders, 16- and 8-column
 * tiles and plain tails), at each level. */
START_TEST(test_gemm_rows)
{
	if (!isa_use(_i))
		return;
	static const int cases[][3] = { { 16, 1088, 144 }, { 5, 37, 29 }, { 4, 24, 27 }, { 3, 13, 50 }, { 32, 8, 300 } };
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2];
		size_t span = (size_t)3 * K + N + 8;
		ptrdiff_t *off = xcalloc((size_t)K, sizeof *off);
		for (int k = 0; k < K; k++)
			off[k] = (ptrdiff_t)((k * 7919) % (3 * K)); /* out of order, overlapping */
		float *B = fnew(span), *G = fnew((size_t)K * N), *A = fnew((size_t)M * K), *Ap = fnew(gemm_pack_floats(M, K));
		float *C = fnew((size_t)M * N), *R = fnew((size_t)M * N), *Y = fnew((size_t)M * N);
		float *D = fnew((size_t)M * K), *DR = fnew((size_t)M * K);
		gc_fill_normal(B, span, 1, c, 1);
		gc_fill_normal(A, (size_t)M * K, 2, c, 1);
		gc_fill_normal(Y, (size_t)M * N, 3, c, 1);
		gc_fill_normal(D, (size_t)M * K, 4, c, 1);
		memcpy(DR, D, sizeof(float) * M * K);
		for (int k = 0; k < K; k++) /* the gathered matrix, stored */
			memcpy(G + (size_t)k * N, B + off[k], sizeof(float) * N);
		gemm_pack_a(Ap, A, K, M, K);
		gemm_packed_rows(M, N, K, Ap, B, off, 0, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, G, N, 0.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed rows case %zu", c);
		gemm_packed_rows(M, N, K, Ap, B, off, 1, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, G, N, 1.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed rows += case %zu", c);
		/* D (M x K) += Y (M x N) x G^T */
		gemm_rows_nt(M, K, N, Y, N, B, off, D, K);
		gemm_ref(0, 1, M, K, N, 1.0f, Y, N, G, N, 1.0f, DR, K);
		ck_assert_msg(rel_err(D, DR, (size_t)M * K, 1) < 1e-5, "rows nt case %zu: %g", c,
		              rel_err(D, DR, (size_t)M * K, 1));
		free(off), free(B), free(G), free(A), free(Ap), free(C), free(R), free(Y), free(D), free(DR);
	}
}
END_TEST

/* ------------------------------------------------------------------ conv */

static const int conv_cases[][9] = {
	/* n, C, H, W, OC, K, S, P, chunk (0: as planned) */
	{ 2, 3, 7, 6, 4, 3, 1, 1, 0 },  { 1, 4, 9, 8, 5, 3, 2, 1, 0 }, { 5, 3, 5, 5, 2, 3, 1, 0, 2 },
	{ 3, 6, 5, 5, 3, 1, 2, 0, 0 },  { 4, 5, 4, 4, 6, 1, 1, 0, 1 }, { 2, 2, 11, 10, 4, 7, 2, 3, 0 },
	{ 3, 4, 6, 7, 3, 3, 2, 1, 1 },  { 1, 1, 1, 1, 1, 1, 1, 0, 0 }, { 7, 2, 3, 3, 3, 3, 1, 1, 3 },
	{ 2, 3, 5, 1, 2, 3, 1, 1, 0 },  { 2, 2, 6, 7, 3, 5, 1, 2, 1 }, { 3, 5, 2, 2, 4, 3, 1, 1, 2 },
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
	float *x = fnew(in), *w = fnew(wn), *b = fnew(s.OC), *dy = fnew(out), *work = fnew(conv_work_floats(&s));
	gc_fill_normal(x, in, 1, _i, 1);
	gc_fill_normal(w, wn, 2, _i, 0.5f);
	gc_fill_normal(b, s.OC, 3, _i, 1);
	gc_fill_normal(dy, out, 4, _i, 1);
	float *y = fnew(out), *yr = fnew(out);
	conv2d_forward(y, work, x, w, b, n, &s);
	conv2d_forward_ref(yr, x, w, b, n, &s);
	ck_assert_msg(rel_err(y, yr, out, 1) < 1e-5, "forward %g", rel_err(y, yr, out, 1));
	/* backward accumulates onto what is there */
	float *dx = fnew(in), *dw = fnew(wn), *db = fnew(s.OC);
	gc_fill_normal(dx, in, 5, _i, 1);
	gc_fill_normal(dw, wn, 6, _i, 1);
	float *dxr = fdup(dx, in), *dwr = fdup(dw, wn), *dbr = fdup(db, s.OC);
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
	float *x = fnew(in), *t = fnew(in), *w = fnew(wn), *dy = fnew(out), *work = fnew(conv_work_floats(&s));
	float *mean = fnew(s.C), *rstd = fnew(s.C), *g = fnew(s.C), *b = fnew(s.C), *scale = fnew(s.C);
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
	float *y = fnew(out), *y2 = fnew(out);
	conv2d_forward_fused(y, work, x, w, NULL, n, &s, &f);
	conv2d_forward(y2, work, t, w, NULL, n, &s);
	ck_assert_msg(rel_err(y, y2, out, 1) < 1e-6, "transformed forward");
	bn_stats_accumulate(st2, y, n, s.OC, s.OH * s.OW);
	for (int k = 0; k < 2 * s.OC; k++)
		ck_assert(fabs(st[k] - st2[k]) <= 1e-9 * (1 + fabs(st2[k])));
	float *dx = fnew(in), *dx2 = fnew(in), *dw = fnew(wn), *dw2 = fnew(wn);
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
	for (int k = 0; k < 2 * s.C; k++)
		/* float blocks inside, double across: sums over other chunkings agree to float rounding */
		ck_assert_msg(fabs(ds[k] - ds2[k]) <= 1e-6 * (1 + fabs(ds2[k])), "dinp sums %d: %g vs %g", k, ds[k], ds2[k]);
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
	ConvCtx ctx = { &s, n, fnew(in), fnew(wn), fnew(s.OC), fnew(out), fnew(out), fnew(conv_work_floats(&s)) };
	gc_fill_normal(ctx.x, in, 1, _i, 1);
	gc_fill_normal(ctx.w, wn, 2, _i, 0.5f);
	gc_fill_normal(ctx.b, s.OC, 3, _i, 1);
	gc_fill_normal(ctx.r, out, 4, _i, 1);
	float *dx = fnew(in), *dw = fnew(wn), *db = fnew(s.OC);
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
		float *x = fnew(in), *y = fnew(out), *yn = fnew(out), *dy = fnew(out), *dx = fnew(in), *dxn = fnew(in);
		float *dw = fnew(wn), *db = fnew(s.OC), *work = fnew(conv_work_floats(&s));
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

/* ------------------------------------------------------------------ bn */

typedef struct {
	int n, C, HW, mode; /* 0 bn, 1 bn+relu, 2 bn+res+relu */
	float *x, *res, *gamma, *beta, *y, *r, *mean, *rstd;
} BnCtx;

static void
bn_ctx_forward(BnCtx *c)
{
	if (c->mode == 0)
		bn_forward_train(c->y, c->mean, c->rstd, NULL, NULL, c->x, c->gamma, c->beta, c->n, c->C, c->HW, 0.1f, 1e-5f);
	else if (c->mode == 1)
		bn_relu_forward_train(c->y, c->mean, c->rstd, NULL, NULL, c->x, c->gamma, c->beta, c->n, c->C, c->HW, 0.1f,
		                      1e-5f);
	else
		bn_add_relu_forward_train(c->y, c->mean, c->rstd, NULL, NULL, c->x, c->res, c->gamma, c->beta, c->n, c->C,
		                          c->HW, 0.1f, 1e-5f);
}

static double
bn_loss(void *p)
{
	BnCtx *c = p;
	bn_ctx_forward(c);
	return gc_dot(c->y, c->r, (size_t)c->C * c->n * c->HW);
}

static uint64_t
bn_kink(void *p)
{
	BnCtx *c = p;
	return c->mode ? gc_mask_hash(0, c->y, (size_t)c->C * c->n * c->HW) : 0;
}

START_TEST(test_bn_gradcheck)
{
	int mode = _i;
	BnCtx c = { .n = 3, .C = 4, .HW = 5, .mode = mode };
	size_t len = (size_t)c.C * c.n * c.HW;
	c.x = fnew(len), c.res = fnew(len), c.y = fnew(len), c.r = fnew(len);
	c.gamma = fnew(c.C), c.beta = fnew(c.C), c.mean = fnew(c.C), c.rstd = fnew(c.C);
	gc_fill_normal(c.x, len, 1, mode, 2);
	gc_fill_normal(c.res, len, 2, mode, 1);
	gc_fill_normal(c.r, len, 3, mode, 1);
	gc_fill_normal(c.gamma, c.C, 4, mode, 0.5f);
	gc_fill_normal(c.beta, c.C, 5, mode, 0.5f);
	for (int k = 0; k < c.C; k++)
		c.gamma[k] += 1.0f;
	bn_ctx_forward(&c);
	float *dx = fnew(len), *dres = fnew(len), *dg = fnew(c.C), *dbt = fnew(c.C);
	if (mode == 0)
		bn_backward(dx, dg, dbt, c.r, c.x, c.mean, c.rstd, c.gamma, c.n, c.C, c.HW);
	else if (mode == 1)
		bn_relu_backward(dx, dg, dbt, c.r, c.x, c.mean, c.rstd, c.gamma, c.beta, c.n, c.C, c.HW);
	else
		bn_add_relu_backward(dx, dres, dg, dbt, c.r, c.y, c.x, c.mean, c.rstd, c.gamma, c.n, c.C, c.HW);
	GcResult g = gradcheck(bn_loss, bn_kink, &c, c.x, dx, len, 1e-3, 60, 1e-3);
	ck_assert_msg(g.max_err < 2e-3 && g.checked > 30, "dx err %g (%d checked)", g.max_err, g.checked);
	g = gradcheck(bn_loss, bn_kink, &c, c.gamma, dg, c.C, 1e-3, 60, 1e-3);
	ck_assert_msg(g.max_err < 2e-3, "dgamma err %g", g.max_err);
	g = gradcheck(bn_loss, bn_kink, &c, c.beta, dbt, c.C, 1e-3, 60, 1e-3);
	ck_assert_msg(g.max_err < 2e-3, "dbeta err %g", g.max_err);
	if (mode == 2) {
		g = gradcheck(bn_loss, bn_kink, &c, c.res, dres, len, 1e-3, 60, 1e-3);
		ck_assert_msg(g.max_err < 2e-3, "dres err %g", g.max_err);
	}
	free(c.x), free(c.res), free(c.y), free(c.r), free(c.gamma), free(c.beta), free(c.mean), free(c.rstd);
	free(dx), free(dres), free(dg), free(dbt);
}
END_TEST

/* Fast kernels vs the double twins; fused kernels vs their composition; at each level. */
START_TEST(test_bn_vs_ref)
{
	if (!isa_use(_i))
		return;
	const int n = 5, C = 3, HW = 7;
	size_t len = (size_t)n * C * HW;
	float *x = fnew(len), *res = fnew(len), *g = fnew(C), *b = fnew(C), *dy = fnew(len);
	gc_fill_normal(x, len, 1, 0, 3);
	for (size_t j = 0; j < len; j++)
		x[j] += 10.0f; /* a large mean: the one-pass variance must hold up */
	gc_fill_normal(res, len, 2, 0, 1);
	gc_fill_normal(g, C, 3, 0, 1);
	gc_fill_normal(b, C, 4, 0, 1);
	gc_fill_normal(dy, len, 5, 0, 1);
	float *y = fnew(len), *yr = fnew(len), m[3], rs[3], mr[3], rsr[3];
	float rm[3] = { 0.1f, 0.2f, 0.3f }, rv[3] = { 1, 2, 3 }, rmr[3], rvr[3];
	memcpy(rmr, rm, sizeof rm);
	memcpy(rvr, rv, sizeof rv);
	bn_forward_train(y, m, rs, rm, rv, x, g, b, n, C, HW, 0.1f, 1e-5f);
	bn_forward_train_ref(yr, mr, rsr, rmr, rvr, x, g, b, n, C, HW, 0.1f, 1e-5f);
	ck_assert(rel_err(y, yr, len, 1) < 1e-5);
	ck_assert(rel_err(m, mr, C, 1) < 1e-6 && rel_err(rs, rsr, C, 1e-3) < 1e-5);
	ck_assert(rel_err(rm, rmr, C, 1) < 1e-6 && rel_err(rv, rvr, C, 1) < 1e-6);
	float *dx = fnew(len), *dxr = fnew(len), dg[3] = { 0 }, dgr[3] = { 0 }, db[3] = { 0 }, dbr[3] = { 0 };
	bn_backward(dx, dg, db, dy, x, m, rs, g, n, C, HW);
	bn_backward_ref(dxr, dgr, dbr, dy, x, m, rs, g, n, C, HW);
	ck_assert(rel_err(dx, dxr, len, 1e-3) < 1e-5);
	ck_assert(rel_err(dg, dgr, C, 1e-3) < 1e-5 && rel_err(db, dbr, C, 1e-3) < 1e-5);

	/* relu(bn(x)): forward, recompute, backward = bn backward of the masked gradient */
	bn_relu_forward_train(y, m, rs, NULL, NULL, x, g, b, n, C, HW, 0.1f, 1e-5f);
	for (size_t j = 0; j < len; j++)
		ck_assert(y[j] == (yr[j] > 0 ? yr[j] : 0.0f) || fabsf(y[j] - fmaxf(yr[j], 0)) < 1e-5f);
	bn_relu_recompute(yr, x, m, rs, g, b, n, C, HW);
	ck_assert(memcmp(y, yr, len * sizeof(float)) == 0); /* bit-identical */
	float *gm = fnew(len);
	for (size_t j = 0; j < len; j++)
		gm[j] = y[j] > 0 ? dy[j] : 0.0f;
	memset(dx, 0, len * sizeof(float));
	memset(dxr, 0, len * sizeof(float));
	memset(dg, 0, sizeof dg), memset(dgr, 0, sizeof dgr), memset(db, 0, sizeof db), memset(dbr, 0, sizeof dbr);
	bn_relu_backward(dx, dg, db, dy, x, m, rs, g, b, n, C, HW);
	bn_backward_ref(dxr, dgr, dbr, gm, x, m, rs, g, n, C, HW);
	ck_assert(rel_err(dx, dxr, len, 1e-3) < 1e-5 && rel_err(dg, dgr, C, 1e-3) < 1e-5);

	/* eval mode: (x - rm) / sqrt(rv + eps) * g + b */
	bn_forward_eval(y, x, rm, rv, g, b, n, C, HW, 1e-5f);
	for (int c = 0; c < C; c++)
		for (size_t j = 0; j < (size_t)n * HW; j++) {
			size_t k = c * n * HW + j;
			double want = (x[k] - rm[c]) / sqrt(rv[c] + 1e-5) * g[c] + b[c];
			ck_assert(fabs(y[k] - want) < 1e-4 * (1 + fabs(want)));
		}
	bn_add_relu_forward_eval(yr, x, res, rm, rv, g, b, n, C, HW, 1e-5f);
	for (size_t j = 0; j < len; j++)
		ck_assert(fabsf(yr[j] - fmaxf(y[j] + res[j], 0.0f)) < 1e-5f);
	free(x), free(res), free(g), free(b), free(dy), free(y), free(yr), free(dx), free(dxr), free(gm);
}
END_TEST

/* The building blocks: overwrite equals accumulate into zeros; sums handed
 * in (as a convolution's backward gathers them) equal sums computed; at each level. */
START_TEST(test_bn_fused_modes)
{
	if (!isa_use(_i))
		return;
	const int n = 3, C = 4, HW = 10;
	size_t len = (size_t)n * C * HW;
	float *x = fnew(len), *dy = fnew(len), *o = fnew(len), *g = fnew(C), *b = fnew(C), m[4], rs[4];
	gc_fill_normal(x, len, 1, 0, 1);
	gc_fill_normal(dy, len, 2, 0, 1);
	gc_fill_normal(o, len, 3, 0, 1);
	gc_fill_normal(g, C, 4, 0, 1);
	gc_fill_normal(b, C, 5, 0, 1);
	double st[8] = { 0 };
	bn_stats_accumulate(st, x, n, C, HW);
	bn_stats_finish(m, rs, NULL, NULL, st, C, (int64_t)n * HW, 0.1f, 1e-5f);
	for (int mask = BN_MASK_NONE; mask <= BN_MASK_OUT; mask++) {
		float *d1 = fnew(len), *r1 = fnew(len), *d2 = fnew(len), *r2 = fnew(len), *d3 = fnew(len), *r3 = fnew(len);
		float dg1[4] = { 0 }, db1[4] = { 0 }, dg2[4] = { 0 }, db2[4] = { 0 }, dg3[4] = { 0 }, db3[4] = { 0 };
		for (size_t j = 0; j < len; j++)
			d2[j] = r2[j] = d3[j] = r3[j] = 7.0f; /* overwritten */
		bn_backward_fused(d1, r1, dg1, db1, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 1, NULL);
		bn_backward_fused(d2, r2, dg2, db2, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 0, NULL);
		/* equal as numbers (0 + -0 is +0, so not bytes) */
		ck_assert_msg(rel_err(d1, d2, len, 1) == 0 && rel_err(r1, r2, len, 1) == 0, "mask %d", mask);
		ck_assert(rel_err(dg1, dg2, C, 1) == 0 && rel_err(db1, db2, C, 1) == 0);
		if (mask == BN_MASK_RECOMPUTE) {
			double sums[8] = { 0 };
			for (int c = 0; c < C; c++)
				bn_grad_sums_recompute(&sums[2 * c], dy + (size_t)c * n * HW, x + (size_t)c * n * HW,
				                       (size_t)n * HW, m[c], rs[c], g[c] * rs[c], b[c]);
			bn_backward_fused(d3, r3, dg3, db3, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 0, sums);
			ck_assert(rel_err(d3, d1, len, 1e-3) < 1e-6 && rel_err(dg3, dg1, C, 1e-3) < 1e-6);
		}
		free(d1), free(r1), free(d2), free(r2), free(d3), free(r3);
	}
	free(x), free(dy), free(o), free(g), free(b);
}
END_TEST

START_TEST(test_bn_torch)
{
	Fixture *f = fixture_load(FIXTURE);
	static const char *tags[2] = { "bn2d", "bn1d" };
	static const int shp[2][3] = { { 4, 3, 30 }, { 7, 5, 1 } }; /* n, C, HW */
	for (int k = 0; k < 2; k++) {
		int n = shp[k][0], C = shp[k][1], HW = shp[k][2];
		size_t len = (size_t)n * C * HW;
		char nm[64];
#define FX(name, l) (snprintf(nm, sizeof nm, "%s." name, tags[k]), fixture_f32(f, nm, (l)))
		float *x = fnew(len), *y = fnew(len), *yn = fnew(len), *dy = fnew(len), *dx = fnew(len), *dxn = fnew(len);
		float m[8], rs[8], rm[8], rv[8], dg[8] = { 0 }, db[8] = { 0 };
		nchw_to_cnhw(x, FX("x", (int64_t)len), n, C, HW);
		nchw_to_cnhw(dy, FX("dy", (int64_t)len), n, C, HW);
		memcpy(rm, FX("rm0", C), C * sizeof(float));
		memcpy(rv, FX("rv0", C), C * sizeof(float));
		bn_forward_train(y, m, rs, rm, rv, x, FX("gamma", C), FX("beta", C), n, C, HW, 0.1f, 1e-5f);
		cnhw_to_nchw(yn, y, n, C, HW);
		ck_assert_msg(rel_err(yn, FX("y", (int64_t)len), len, 1e-3) < 1e-5, "%s forward", tags[k]);
		ck_assert_msg(rel_err(rm, FX("rm1", C), C, 1e-3) < 1e-5, "%s running mean", tags[k]);
		ck_assert_msg(rel_err(rv, FX("rv1", C), C, 1e-3) < 1e-5, "%s running var", tags[k]);
		bn_backward(dx, dg, db, dy, x, m, rs, FX("gamma", C), n, C, HW);
		cnhw_to_nchw(dxn, dx, n, C, HW);
		ck_assert_msg(rel_err(dxn, FX("dx", (int64_t)len), len, 1e-3) < 1e-5, "%s dx", tags[k]);
		ck_assert_msg(rel_err(dg, FX("dgamma", C), C, 1e-3) < 1e-5, "%s dgamma", tags[k]);
		ck_assert_msg(rel_err(db, FX("dbeta", C), C, 1e-3) < 1e-5, "%s dbeta", tags[k]);
		bn_forward_eval(y, x, rm, rv, FX("gamma", C), FX("beta", C), n, C, HW, 1e-5f);
		cnhw_to_nchw(yn, y, n, C, HW);
		ck_assert_msg(rel_err(yn, FX("yeval", (int64_t)len), len, 1e-3) < 1e-5, "%s eval", tags[k]);
#undef FX
		free(x), free(y), free(yn), free(dy), free(dx), free(dxn);
	}
	/* relu(bn(x) + r) */
	{
		int n = 3, C = 4, HW = 15;
		size_t len = (size_t)n * C * HW;
		float *x = fnew(len), *r = fnew(len), *y = fnew(len), *yn = fnew(len), *dy = fnew(len), *dx = fnew(len),
		      *dr = fnew(len), *tn = fnew(len);
		float m[4], rs[4], dg[4] = { 0 }, db[4] = { 0 };
		nchw_to_cnhw(x, fixture_f32(f, "bnaddrelu.x", (int64_t)len), n, C, HW);
		nchw_to_cnhw(r, fixture_f32(f, "bnaddrelu.r", (int64_t)len), n, C, HW);
		nchw_to_cnhw(dy, fixture_f32(f, "bnaddrelu.dy", (int64_t)len), n, C, HW);
		const float *g = fixture_f32(f, "bnaddrelu.gamma", C), *b = fixture_f32(f, "bnaddrelu.beta", C);
		bn_add_relu_forward_train(y, m, rs, NULL, NULL, x, r, g, b, n, C, HW, 0.1f, 1e-5f);
		cnhw_to_nchw(yn, y, n, C, HW);
		ck_assert(rel_err(yn, fixture_f32(f, "bnaddrelu.y", (int64_t)len), len, 1e-3) < 1e-5);
		bn_add_relu_backward(dx, dr, dg, db, dy, y, x, m, rs, g, n, C, HW);
		cnhw_to_nchw(tn, dx, n, C, HW);
		ck_assert(rel_err(tn, fixture_f32(f, "bnaddrelu.dx", (int64_t)len), len, 1e-3) < 1e-5);
		cnhw_to_nchw(tn, dr, n, C, HW);
		ck_assert(rel_err(tn, fixture_f32(f, "bnaddrelu.dr", (int64_t)len), len, 1e-3) < 1e-5);
		ck_assert(rel_err(dg, fixture_f32(f, "bnaddrelu.dgamma", C), C, 1e-3) < 1e-5);
		ck_assert(rel_err(db, fixture_f32(f, "bnaddrelu.dbeta", C), C, 1e-3) < 1e-5);
		free(x), free(r), free(y), free(yn), free(dy), free(dx), free(dr), free(tn);
	}
	fixture_free(f);
}
END_TEST

/* ------------------------------------------------------------------ small layers */

START_TEST(test_relu_add)
{
	float x[6] = { -1, 0, 2, -0.5f, 3, 1e-30f }, y[6], d[6] = { 1, 1, 1, 1, 1, 1 }, dx[6] = { 0 };
	relu_forward(y, x, 6);
	ck_assert(y[0] == 0 && y[1] == 0 && y[2] == 2 && y[3] == 0 && y[4] == 3 && y[5] == 1e-30f);
	relu_backward(dx, d, y, 6);
	ck_assert(dx[0] == 0 && dx[1] == 0 && dx[2] == 1 && dx[4] == 1 && dx[5] == 1);
	float a[3] = { 1, 2, 3 }, b[3] = { 4, 5, 6 }, o[3], da[3] = { 1, 1, 1 }, db[3] = { 0 };
	add_forward(o, a, b, 3);
	ck_assert(o[0] == 5 && o[2] == 9);
	add_backward(da, db, o, 3);
	ck_assert(da[0] == 6 && db[2] == 9);
	add_backward(NULL, db, o, 3);
	ck_assert(db[2] == 18);
}
END_TEST

typedef struct {
	PoolShape s;
	int n;
	float *x, *y, *r;
	int32_t *am;
} PoolCtx;

static double
pool_loss(void *p)
{
	PoolCtx *c = p;
	maxpool2d_forward(c->y, c->am, c->x, c->n, &c->s);
	return gc_dot(c->y, c->r, (size_t)c->s.C * c->n * c->s.OH * c->s.OW);
}

static uint64_t
pool_kink(void *p)
{
	PoolCtx *c = p;
	uint64_t h = 1469598103934665603ULL;
	for (size_t j = 0; j < (size_t)c->s.C * c->n * c->s.OH * c->s.OW; j++)
		h = (h ^ (uint64_t)c->am[j]) * 1099511628211ULL;
	return h;
}

START_TEST(test_maxpool)
{
	PoolCtx c = { .n = 2 };
	ck_assert_int_eq(pool_shape_init(&c.s, 3, 9, 8, 3, 2, 1), 0);
	ck_assert_int_eq(c.s.OH, 5);
	ck_assert_int_eq(c.s.OW, 4);
	size_t in = (size_t)3 * 2 * 72, out = (size_t)3 * 2 * 20;
	c.x = fnew(in), c.y = fnew(out), c.r = fnew(out), c.am = xcalloc(out, sizeof(int32_t));
	gc_fill_normal(c.x, in, 1, 0, 1);
	gc_fill_normal(c.r, out, 2, 0, 1);
	float *yr = fnew(out), *dx = fnew(in);
	maxpool2d_forward(c.y, c.am, c.x, c.n, &c.s);
	maxpool2d_forward_ref(yr, c.x, c.n, &c.s);
	ck_assert(memcmp(c.y, yr, out * sizeof(float)) == 0);
	maxpool2d_backward(dx, c.r, c.am, c.n, &c.s);
	GcResult g = gradcheck(pool_loss, pool_kink, &c, c.x, dx, in, 1e-3, 400, 1e-3);
	ck_assert_msg(g.max_err < 1e-3 && g.checked > 100, "maxpool err %g", g.max_err);
	/* PyTorch */
	Fixture *f = fixture_load(FIXTURE);
	float *xf = fnew(in), *yn = fnew(out), *dy = fnew(out), *dxn = fnew(in);
	nchw_to_cnhw(xf, fixture_f32(f, "maxpool.x", (int64_t)in), 2, 3, 72);
	nchw_to_cnhw(dy, fixture_f32(f, "maxpool.dy", (int64_t)out), 2, 3, 20);
	maxpool2d_forward(c.y, c.am, xf, 2, &c.s);
	cnhw_to_nchw(yn, c.y, 2, 3, 20);
	ck_assert(rel_err(yn, fixture_f32(f, "maxpool.y", (int64_t)out), out, 1) == 0);
	memset(dx, 0, in * sizeof(float));
	maxpool2d_backward(dx, dy, c.am, 2, &c.s);
	cnhw_to_nchw(dxn, dx, 2, 3, 72);
	ck_assert(rel_err(dxn, fixture_f32(f, "maxpool.dx", (int64_t)in), in, 1) < 1e-6);
	ck_assert_int_eq(pool_shape_init(&c.s, 3, 9, 8, 3, 2, 2), -1); /* pad > kernel/2 */
	fixture_free(f);
	free(c.x), free(c.y), free(c.r), free(c.am), free(yr), free(dx), free(xf), free(yn), free(dy), free(dxn);
}
END_TEST

START_TEST(test_avgpool_linear_torch)
{
	Fixture *f = fixture_load(FIXTURE);
	/* global average pool: (3,4,5,3) -> (3,4) */
	float x[180], y[12], yn[12], dy[12], dx[180] = { 0 }, dxn[180];
	nchw_to_cnhw(x, fixture_f32(f, "avgpool.x", 180), 3, 4, 15);
	avgpool_global_forward(y, x, 3, 4, 15);
	transpose(yn, y, 4, 3);
	ck_assert(rel_err(yn, fixture_f32(f, "avgpool.y", 12), 12, 1e-3) < 1e-6);
	transpose(dy, fixture_f32(f, "avgpool.dy", 12), 3, 4);
	avgpool_global_backward(dx, dy, 3, 4, 15);
	cnhw_to_nchw(dxn, dx, 3, 4, 15);
	ck_assert(rel_err(dxn, fixture_f32(f, "avgpool.dx", 180), 180, 1e-3) < 1e-6);

	/* linear: x (6,5) -> (6,7); ours is feature-major */
	float xt[30], lyt[42], ly[42], ldy[42], ldx[30] = { 0 }, ldxn[30], dw[35] = { 0 }, db[7] = { 0 }, lyr[42];
	const float *w = fixture_f32(f, "linear.w", 35), *b = fixture_f32(f, "linear.b", 7);
	transpose(xt, fixture_f32(f, "linear.x", 30), 6, 5);
	linear_forward(lyt, xt, w, b, 6, 5, 7);
	linear_forward_ref(lyr, xt, w, b, 6, 5, 7);
	ck_assert(rel_err(lyt, lyr, 42, 1) < 1e-6);
	transpose(ly, lyt, 7, 6);
	ck_assert(rel_err(ly, fixture_f32(f, "linear.y", 42), 42, 1e-3) < 1e-5);
	transpose(ldy, fixture_f32(f, "linear.dy", 42), 6, 7);
	linear_backward(ldx, dw, db, ldy, xt, w, 6, 5, 7);
	transpose(ldxn, ldx, 5, 6);
	ck_assert(rel_err(ldxn, fixture_f32(f, "linear.dx", 30), 30, 1e-3) < 1e-5);
	ck_assert(rel_err(dw, fixture_f32(f, "linear.dw", 35), 35, 1e-3) < 1e-5);
	ck_assert(rel_err(db, fixture_f32(f, "linear.db", 7), 7, 1e-3) < 1e-5);
	fixture_free(f);
}
END_TEST

START_TEST(test_layout_normalize)
{
	float a[2 * 3 * 4], b[24], c[24];
	for (int j = 0; j < 24; j++)
		a[j] = (float)j;
	nchw_to_cnhw(b, a, 2, 3, 4);
	ck_assert(b[4] == 12.0f && b[8] == 4.0f); /* (c=0, i=1) then (c=1, i=0) */
	cnhw_to_nchw(c, b, 2, 3, 4);
	ck_assert(memcmp(a, c, sizeof a) == 0);
	transpose(b, a, 4, 6);
	ck_assert(b[1] == 6.0f && b[6 * 4 - 1] == 23.0f);
	uint8_t img[2 * 2 * 3 * 3]; /* n=2, H=2, W=3, C=3 */
	for (int j = 0; j < 36; j++)
		img[j] = (uint8_t)(j * 7);
	float mean[3] = { 0.5f, 0.4f, 0.3f }, sd[3] = { 0.25f, 0.2f, 0.3f }, out[36];
	input_normalize_u8(out, img, 2, 2, 3, 3, mean, sd);
	for (int i = 0; i < 2; i++)
		for (int ch = 0; ch < 3; ch++)
			for (int p = 0; p < 6; p++) {
				double want = (img[(i * 6 + p) * 3 + ch] / 255.0 - mean[ch]) / sd[ch];
				ck_assert(fabs(out[(i * 3 + ch) * 6 + p] - want) < 1e-5);
			}
}
END_TEST

/* ------------------------------------------------------------------ losses */

typedef struct {
	int N, D;
	float t;
	float *z, *work;
} NtCtx;

static double
nt_loss(void *p)
{
	NtCtx *c = p;
	float l;
	ntxent_forward_backward(&l, NULL, NULL, c->work, c->z, c->N, c->D, c->t);
	return ntxent_loss_ref(c->z, c->N, c->D, c->t);
}

START_TEST(test_ntxent)
{
	NtCtx c = { .N = 4, .D = 6, .t = 0.5f };
	size_t len = (size_t)2 * c.N * c.D;
	c.z = fnew(len), c.work = fnew(ntxent_work_floats(c.N, c.D));
	gc_fill_normal(c.z, len, 1, 0, 1);
	float loss, acc, *dz = fnew(len);
	ck_assert_int_eq(ntxent_forward_backward(&loss, &acc, dz, c.work, c.z, c.N, c.D, c.t), 0);
	ck_assert(fabs(loss - ntxent_loss_ref(c.z, c.N, c.D, c.t)) < 1e-5);
	GcResult g = gradcheck(nt_loss, NULL, &c, c.z, dz, len, 1e-3, 100, 1e-3);
	ck_assert_msg(g.max_err < 1e-3, "ntxent grad err %g", g.max_err);
	/* cosine similarity: the scale of each row does not matter */
	float *z3 = fdup(c.z, len), l3;
	for (size_t j = 0; j < (size_t)c.D; j++)
		z3[j] *= 3.0f;
	ntxent_forward_backward(&l3, NULL, NULL, c.work, z3, c.N, c.D, c.t);
	ck_assert(fabs(l3 - loss) < 1e-5);
	/* one pair: the only other row is the positive, so the masked loss is 0
	 * (subtracting exp(s_ii) instead of masking would give another value) */
	float one[4] = { 1, 2, -1, 0.5f }, d1[4], l1, a1;
	ck_assert_int_eq(ntxent_forward_backward(&l1, &a1, d1, c.work, one, 1, 2, 0.5f), 0);
	ck_assert(fabs(l1) < 1e-6 && a1 == 1.0f);
	/* identical views are found: accuracy 1; a low temperature stays finite */
	for (int i = 0; i < c.N; i++)
		memcpy(z3 + (size_t)(i + c.N) * c.D, z3 + (size_t)i * c.D, c.D * sizeof(float));
	ck_assert_int_eq(ntxent_forward_backward(&l3, &acc, dz, c.work, z3, c.N, c.D, 0.01f), 0);
	ck_assert(acc == 1.0f && isfinite(l3));
	for (size_t j = 0; j < len; j++)
		ck_assert(isfinite(dz[j]));
	ck_assert_int_eq(ntxent_forward_backward(&l3, &acc, dz, c.work, z3, 0, c.D, 0.5f), -1);
	ck_assert_int_eq(ntxent_forward_backward(&l3, &acc, dz, c.work, z3, c.N, c.D, 0.0f), -1);
	free(c.z), free(c.work), free(dz), free(z3);
}
END_TEST

START_TEST(test_ntxent_torch)
{
	Fixture *f = fixture_load(FIXTURE);
	for (int k = 0; k < 2; k++) {
		char nm[64];
		snprintf(nm, sizeof nm, "ntxent%d.cfg", k);
		const int32_t *cfg = fixture_get(f, nm, DTYPE_I32, 2)->data;
		int N = cfg[0], D = cfg[1];
		snprintf(nm, sizeof nm, "ntxent%d.t", k);
		float t = (float)fixture_scalar(f, nm);
		snprintf(nm, sizeof nm, "ntxent%d.z", k);
		const float *z = fixture_f32(f, nm, 2 * N * D);
		float *work = fnew(ntxent_work_floats(N, D)), *dz = fnew((size_t)2 * N * D), loss;
		ck_assert_int_eq(ntxent_forward_backward(&loss, NULL, dz, work, z, N, D, t), 0);
		snprintf(nm, sizeof nm, "ntxent%d.loss", k);
		double want = fixture_scalar(f, nm);
		ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want), "ntxent%d loss %g vs %g", k, loss, want);
		snprintf(nm, sizeof nm, "ntxent%d.dz", k);
		ck_assert_msg(rel_err(dz, fixture_f32(f, nm, 2 * N * D), (size_t)2 * N * D, 1e-3) < 1e-5, "ntxent%d dz", k);
		free(work), free(dz);
	}
	fixture_free(f);
}
END_TEST

typedef struct {
	float *x;
	int32_t *y;
	int n, K;
} CeCtx;

static double
ce_loss(void *p)
{
	CeCtx *c = p;
	return cross_entropy_loss_ref(c->x, c->y, c->n, c->K);
}

START_TEST(test_cross_entropy)
{
	Fixture *f = fixture_load(FIXTURE);
	const float *logits = fixture_f32(f, "ce.logits", 24);
	const int32_t *labels = fixture_get(f, "ce.labels", DTYPE_I32, 6)->data;
	float loss, acc, d[24];
	ck_assert_int_eq(cross_entropy_forward_backward(&loss, &acc, d, logits, labels, 6, 4), 6);
	double want = fixture_scalar(f, "ce.loss");
	ck_assert(fabs(loss - want) <= 1e-6 * fabs(want));
	ck_assert(rel_err(d, fixture_f32(f, "ce.dlogits", 24), 24, 1e-3) < 1e-6);
	CeCtx c = { fdup(logits, 24), xcalloc(6, sizeof(int32_t)), 6, 4 };
	memcpy(c.y, labels, 6 * sizeof(int32_t));
	GcResult g = gradcheck(ce_loss, NULL, &c, c.x, d, 24, 1e-3, 24, 1e-3);
	ck_assert(g.max_err < 1e-3);
	/* ignored rows: not counted, zero gradient */
	c.y[1] = -1;
	ck_assert_int_eq(cross_entropy_forward_backward(&loss, &acc, d, logits, c.y, 6, 4), 5);
	ck_assert(d[4] == 0 && d[7] == 0);
	ck_assert(fabs(loss - cross_entropy_loss_ref(logits, c.y, 6, 4)) < 1e-6);
	c.y[1] = 4;
	ck_assert_int_eq(cross_entropy_forward_backward(&loss, &acc, d, logits, c.y, 6, 4), -1);
	free(c.x), free(c.y);
	fixture_free(f);
}
END_TEST

static Suite *
layers_suite(void)
{
	parallel_set_threads(2);
	isa_report("layers");
	Suite *s = suite_create("layers");
	TCase *tc = tcase_create("gemm");
	tcase_add_test(tc, test_gemm_vs_ref);
	tcase_add_loop_test(tc, test_gemm_packed, 0, CPU_NISA);
	tcase_add_loop_test(tc, test_gemm_rows, 0, CPU_NISA);
	suite_add_tcase(s, tc);
	tc = tcase_create("conv");
	tcase_set_timeout(tc, 60);
	int nconv = (int)(sizeof conv_cases / sizeof conv_cases[0]);
	tcase_add_loop_test(tc, test_conv_vs_ref, 0, CPU_NISA * nconv);
	tcase_add_loop_test(tc, test_conv_gradcheck, 0, nconv);
	tcase_add_loop_test(tc, test_conv_fused, 0, CPU_NISA * nconv);
	tcase_add_test(tc, test_conv_torch);
	tcase_add_test(tc, test_conv_limits);
	suite_add_tcase(s, tc);
	tc = tcase_create("bn");
	tcase_add_loop_test(tc, test_bn_gradcheck, 0, 3);
	tcase_add_loop_test(tc, test_bn_vs_ref, 0, CPU_NISA);
	tcase_add_test(tc, test_bn_torch);
	tcase_add_loop_test(tc, test_bn_fused_modes, 0, CPU_NISA);
	suite_add_tcase(s, tc);
	tc = tcase_create("small");
	tcase_add_test(tc, test_relu_add);
	tcase_add_test(tc, test_maxpool);
	tcase_add_test(tc, test_avgpool_linear_torch);
	tcase_add_test(tc, test_layout_normalize);
	suite_add_tcase(s, tc);
	tc = tcase_create("loss");
	tcase_add_test(tc, test_ntxent);
	tcase_add_test(tc, test_ntxent_torch);
	tcase_add_test(tc, test_cross_entropy);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(layers_suite)
