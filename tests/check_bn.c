/* Tests for lib/nn/bn: the fused kernels against the double twins at each
 * instruction-set level this CPU runs, finite differences, and PyTorch
 * values (tests/fixtures/core_layers.msgpack). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bn.h"
#include "nn/layers.h"
#include "base/parallel.h"
#include "base/util.h"
#include "testutil.h"
#include "fixture.h"
#include "gradcheck.h"
#include "isa.h"

#define FIXTURE "tests/fixtures/core_layers.msgpack"

/* eval mode as the model runs it: rstd from the running variance, then bn_apply */
static void
bn_eval_apply(float *y, const float *x, const float *res, const float *rm, const float *rv, const float *g,
              const float *b, int n, int C, int HW, float eps, int relu)
{
	float *rs = gc_floats((size_t)C);
	bn_eval_rstd(rs, rv, C, eps);
	bn_apply(y, x, res, rm, rs, g, b, n, C, HW, relu);
	free(rs);
}

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
	c.x = gc_floats(len), c.res = gc_floats(len), c.y = gc_floats(len), c.r = gc_floats(len);
	c.gamma = gc_floats(c.C), c.beta = gc_floats(c.C), c.mean = gc_floats(c.C), c.rstd = gc_floats(c.C);
	gc_fill_normal(c.x, len, 1, mode, 2);
	gc_fill_normal(c.res, len, 2, mode, 1);
	gc_fill_normal(c.r, len, 3, mode, 1);
	gc_fill_normal(c.gamma, c.C, 4, mode, 0.5f);
	gc_fill_normal(c.beta, c.C, 5, mode, 0.5f);
	for (int k = 0; k < c.C; k++)
		c.gamma[k] += 1.0f;
	bn_ctx_forward(&c);
	float *dx = gc_floats(len), *dres = gc_floats(len), *dg = gc_floats(c.C), *dbt = gc_floats(c.C);
	if (mode == 0)
		bn_backward_fused(dx, NULL, dg, dbt, c.r, NULL, c.x, c.mean, c.rstd, c.gamma, NULL, c.n, c.C,
		                  c.HW, BN_MASK_NONE, 1, NULL);
	else if (mode == 1)
		bn_backward_fused(dx, NULL, dg, dbt, c.r, NULL, c.x, c.mean, c.rstd, c.gamma, c.beta, c.n,
		                  c.C, c.HW, BN_MASK_RECOMPUTE, 1, NULL);
	else
		bn_backward_fused(dx, dres, dg, dbt, c.r, c.y, c.x, c.mean, c.rstd, c.gamma, NULL, c.n, c.C,
		                  c.HW, BN_MASK_OUT, 1, NULL);
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
	float *x = gc_floats(len), *res = gc_floats(len), *g = gc_floats(C), *b = gc_floats(C), *dy = gc_floats(len);
	gc_fill_normal(x, len, 1, 0, 3);
	for (size_t j = 0; j < len; j++)
		x[j] += 10.0f; /* a large mean: the one-pass variance must hold up */
	gc_fill_normal(res, len, 2, 0, 1);
	gc_fill_normal(g, C, 3, 0, 1);
	gc_fill_normal(b, C, 4, 0, 1);
	gc_fill_normal(dy, len, 5, 0, 1);
	float *y = gc_floats(len), *yr = gc_floats(len), m[3], rs[3], mr[3], rsr[3];
	float rm[3] = { 0.1f, 0.2f, 0.3f }, rv[3] = { 1, 2, 3 }, rmr[3], rvr[3];
	memcpy(rmr, rm, sizeof rm);
	memcpy(rvr, rv, sizeof rv);
	bn_forward_train(y, m, rs, rm, rv, x, g, b, n, C, HW, 0.1f, 1e-5f);
	bn_forward_train_ref(yr, mr, rsr, rmr, rvr, x, g, b, n, C, HW, 0.1f, 1e-5f);
	ck_assert(rel_err(y, yr, len, 1) < 1e-5);
	ck_assert(rel_err(m, mr, C, 1) < 1e-6 && rel_err(rs, rsr, C, 1e-3) < 1e-5);
	ck_assert(rel_err(rm, rmr, C, 1) < 1e-6 && rel_err(rv, rvr, C, 1) < 1e-6);
	float *dx = gc_floats(len), *dxr = gc_floats(len), dg[3] = { 0 }, dgr[3] = { 0 }, db[3] = { 0 }, dbr[3] = { 0 };
	bn_backward_fused(dx, NULL, dg, db, dy, NULL, x, m, rs, g, NULL, n, C, HW, BN_MASK_NONE, 1, NULL);
	bn_backward_ref(dxr, dgr, dbr, dy, x, m, rs, g, n, C, HW);
	ck_assert(rel_err(dx, dxr, len, 1e-3) < 1e-5);
	ck_assert(rel_err(dg, dgr, C, 1e-3) < 1e-5 && rel_err(db, dbr, C, 1e-3) < 1e-5);

	/* relu(bn(x)): forward, recompute, backward = bn backward of the masked gradient */
	bn_relu_forward_train(y, m, rs, NULL, NULL, x, g, b, n, C, HW, 0.1f, 1e-5f);
	for (size_t j = 0; j < len; j++)
		ck_assert(y[j] == (yr[j] > 0 ? yr[j] : 0.0f) || fabsf(y[j] - fmaxf(yr[j], 0)) < 1e-5f);
	bn_apply(yr, x, NULL, m, rs, g, b, n, C, HW, 1);
	ck_assert(memcmp(y, yr, len * sizeof(float)) == 0); /* bit-identical */
	float *gm = gc_floats(len);
	for (size_t j = 0; j < len; j++)
		gm[j] = y[j] > 0 ? dy[j] : 0.0f;
	memset(dx, 0, len * sizeof(float));
	memset(dxr, 0, len * sizeof(float));
	memset(dg, 0, sizeof dg), memset(dgr, 0, sizeof dgr), memset(db, 0, sizeof db), memset(dbr, 0, sizeof dbr);
	bn_backward_fused(dx, NULL, dg, db, dy, NULL, x, m, rs, g, b, n, C, HW, BN_MASK_RECOMPUTE, 1, NULL);
	bn_backward_ref(dxr, dgr, dbr, gm, x, m, rs, g, n, C, HW);
	ck_assert(rel_err(dx, dxr, len, 1e-3) < 1e-5 && rel_err(dg, dgr, C, 1e-3) < 1e-5);

	/* eval mode: (x - rm) / sqrt(rv + eps) * g + b */
	bn_eval_apply(y, x, NULL, rm, rv, g, b, n, C, HW, 1e-5f, 0);
	for (int c = 0; c < C; c++)
		for (size_t j = 0; j < (size_t)n * HW; j++) {
			size_t k = c * n * HW + j;
			double want = (x[k] - rm[c]) / sqrt(rv[c] + 1e-5) * g[c] + b[c];
			ck_assert(fabs(y[k] - want) < 1e-4 * (1 + fabs(want)));
		}
	bn_eval_apply(yr, x, res, rm, rv, g, b, n, C, HW, 1e-5f, 1);
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
	float *x = gc_floats(len), *dy = gc_floats(len), *o = gc_floats(len), *g = gc_floats(C), *b = gc_floats(C), m[4], rs[4];
	gc_fill_normal(x, len, 1, 0, 1);
	gc_fill_normal(dy, len, 2, 0, 1);
	gc_fill_normal(o, len, 3, 0, 1);
	gc_fill_normal(g, C, 4, 0, 1);
	gc_fill_normal(b, C, 5, 0, 1);
	double st[8] = { 0 };
	bn_stats_accumulate(st, x, n, C, HW);
	bn_stats_finish(m, rs, NULL, NULL, st, C, (int64_t)n * HW, 0.1f, 1e-5f);
	for (int mask = BN_MASK_NONE; mask <= BN_MASK_OUT; mask++) {
		float *d1 = gc_floats(len), *r1 = gc_floats(len), *d2 = gc_floats(len), *r2 = gc_floats(len), *d3 = gc_floats(len), *r3 = gc_floats(len);
		float dg1[4] = { 0 }, db1[4] = { 0 }, dg2[4] = { 0 }, db2[4] = { 0 }, dg3[4] = { 0 }, db3[4] = { 0 };
		for (size_t j = 0; j < len; j++)
			d2[j] = r2[j] = d3[j] = r3[j] = 7.0f; /* overwritten */
		bn_backward_fused(d1, r1, dg1, db1, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 1, NULL);
		bn_backward_fused(d2, r2, dg2, db2, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 0, NULL);
		/* equal as numbers (0 + -0 is +0, so not bytes) */
		ck_assert_msg(rel_err(d1, d2, len, 1) == 0 && rel_err(r1, r2, len, 1) == 0, "mask %d", mask);
		ck_assert(rel_err(dg1, dg2, C, 1) == 0 && rel_err(db1, db2, C, 1) == 0);
		/* in place: dinp is dout (the model's ImageNet stem) */
		float *d4 = gc_floats_dup(dy, len), dg4[4] = { 0 }, db4[4] = { 0 };
		bn_backward_fused(d4, NULL, dg4, db4, d4, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 0, NULL);
		ck_assert_msg(rel_err(d4, d2, len, 1) == 0 && rel_err(dg4, dg2, C, 1) == 0, "in place, mask %d", mask);
		free(d4);
		if (mask == BN_MASK_RECOMPUTE) {
			double sums[8] = { 0 };
			for (int c = 0; c < C; c++)
				bn_grad_sums_recompute(&sums[2 * c], dy + (size_t)c * n * HW, x + (size_t)c * n * HW,
				                       (size_t)n * HW, m[c], rs[c], g[c] * rs[c], b[c]);
			bn_backward_fused(d3, r3, dg3, db3, dy, o, x, m, rs, g, b, n, C, HW, (BnMask)mask, 0,
			                  sums);
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
		float *x = gc_floats(len), *y = gc_floats(len), *yn = gc_floats(len), *dy = gc_floats(len), *dx = gc_floats(len), *dxn = gc_floats(len);
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
		bn_backward_fused(dx, NULL, dg, db, dy, NULL, x, m, rs, FX("gamma", C), NULL, n, C, HW,
		                  BN_MASK_NONE, 1, NULL);
		cnhw_to_nchw(dxn, dx, n, C, HW);
		ck_assert_msg(rel_err(dxn, FX("dx", (int64_t)len), len, 1e-3) < 1e-5, "%s dx", tags[k]);
		ck_assert_msg(rel_err(dg, FX("dgamma", C), C, 1e-3) < 1e-5, "%s dgamma", tags[k]);
		ck_assert_msg(rel_err(db, FX("dbeta", C), C, 1e-3) < 1e-5, "%s dbeta", tags[k]);
		bn_eval_apply(y, x, NULL, rm, rv, FX("gamma", C), FX("beta", C), n, C, HW, 1e-5f, 0);
		cnhw_to_nchw(yn, y, n, C, HW);
		ck_assert_msg(rel_err(yn, FX("yeval", (int64_t)len), len, 1e-3) < 1e-5, "%s eval", tags[k]);
#undef FX
		free(x), free(y), free(yn), free(dy), free(dx), free(dxn);
	}
	/* relu(bn(x) + r) */
	{
		int n = 3, C = 4, HW = 15;
		size_t len = (size_t)n * C * HW;
		float *x = gc_floats(len), *r = gc_floats(len), *y = gc_floats(len), *yn = gc_floats(len), *dy = gc_floats(len), *dx = gc_floats(len),
		      *dr = gc_floats(len), *tn = gc_floats(len);
		float m[4], rs[4], dg[4] = { 0 }, db[4] = { 0 };
		nchw_to_cnhw(x, fixture_f32(f, "bnaddrelu.x", (int64_t)len), n, C, HW);
		nchw_to_cnhw(r, fixture_f32(f, "bnaddrelu.r", (int64_t)len), n, C, HW);
		nchw_to_cnhw(dy, fixture_f32(f, "bnaddrelu.dy", (int64_t)len), n, C, HW);
		const float *g = fixture_f32(f, "bnaddrelu.gamma", C), *b = fixture_f32(f, "bnaddrelu.beta", C);
		bn_add_relu_forward_train(y, m, rs, NULL, NULL, x, r, g, b, n, C, HW, 0.1f, 1e-5f);
		cnhw_to_nchw(yn, y, n, C, HW);
		ck_assert(rel_err(yn, fixture_f32(f, "bnaddrelu.y", (int64_t)len), len, 1e-3) < 1e-5);
		bn_backward_fused(dx, dr, dg, db, dy, y, x, m, rs, g, NULL, n, C, HW, BN_MASK_OUT, 1, NULL);
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

static Suite *
bn_suite(void)
{
	parallel_set_threads(2);
	isa_report("bn");
	Suite *s = suite_create("bn");
	TCase *tc = tcase_create("bn");
	tcase_add_loop_test(tc, test_bn_gradcheck, 0, 3);
	tcase_add_loop_test(tc, test_bn_vs_ref, 0, CPU_NISA);
	tcase_add_test(tc, test_bn_torch);
	tcase_add_loop_test(tc, test_bn_fused_modes, 0, CPU_NISA);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(bn_suite)
