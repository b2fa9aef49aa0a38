/* Tests for lib/nn/layers: ReLU, residual add, pooling, linear, layout and
 * normalisation, against hand values, finite differences and PyTorch
 * (tests/fixtures/core_layers.msgpack). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/layers.h"
#include "base/parallel.h"
#include "base/util.h"
#include "testutil.h"
#include "fixture.h"
#include "gradcheck.h"

#define FIXTURE "tests/fixtures/core_layers.msgpack"

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
	c.x = gc_floats(in), c.y = gc_floats(out), c.r = gc_floats(out), c.am = xcalloc(out, sizeof(int32_t));
	gc_fill_normal(c.x, in, 1, 0, 1);
	gc_fill_normal(c.r, out, 2, 0, 1);
	float *yr = gc_floats(out), *dx = gc_floats(in);
	maxpool2d_forward(c.y, c.am, c.x, c.n, &c.s);
	maxpool2d_forward_ref(yr, c.x, c.n, &c.s);
	ck_assert(memcmp(c.y, yr, out * sizeof(float)) == 0);
	maxpool2d_backward(dx, c.r, c.am, c.n, &c.s);
	GcResult g = gradcheck(pool_loss, pool_kink, &c, c.x, dx, in, 1e-3, 400, 1e-3);
	ck_assert_msg(g.max_err < 1e-3 && g.checked > 100, "maxpool err %g", g.max_err);
	/* PyTorch */
	Fixture *f = fixture_load(FIXTURE);
	float *xf = gc_floats(in), *yn = gc_floats(out), *dy = gc_floats(out), *dxn = gc_floats(in);
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

static Suite *
layers_suite(void)
{
	parallel_set_threads(2);
	Suite *s = suite_create("layers");
	TCase *tc = tcase_create("small");
	tcase_add_test(tc, test_relu_add);
	tcase_add_test(tc, test_maxpool);
	tcase_add_test(tc, test_avgpool_linear_torch);
	tcase_add_test(tc, test_layout_normalize);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(layers_suite)
