/* Tests for lib/nn/loss: NT-Xent and cross-entropy against finite
 * differences and PyTorch values (tests/fixtures/core_layers.msgpack). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/loss.h"
#include "base/parallel.h"
#include "base/util.h"
#include "testutil.h"
#include "fixture.h"
#include "gradcheck.h"

#define FIXTURE "tests/fixtures/core_layers.msgpack"

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
	c.z = gc_floats(len), c.work = gc_floats(ntxent_work_floats(c.N, c.D));
	gc_fill_normal(c.z, len, 1, 0, 1);
	float loss, acc, *dz = gc_floats(len);
	ck_assert_int_eq(ntxent_forward_backward(&loss, &acc, dz, c.work, c.z, c.N, c.D, c.t), 0);
	ck_assert(fabs(loss - ntxent_loss_ref(c.z, c.N, c.D, c.t)) < 1e-5);
	GcResult g = gradcheck(nt_loss, NULL, &c, c.z, dz, len, 1e-3, 100, 1e-3);
	ck_assert_msg(g.max_err < 1e-3, "ntxent grad err %g", g.max_err);
	/* cosine similarity: the scale of each row does not matter */
	float *z3 = gc_floats_dup(c.z, len), l3;
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
		float *work = gc_floats(ntxent_work_floats(N, D)), *dz = gc_floats((size_t)2 * N * D), loss;
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
	CeCtx c = { gc_floats_dup(logits, 24), xcalloc(6, sizeof(int32_t)), 6, 4 };
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
loss_suite(void)
{
	parallel_set_threads(2);
	Suite *s = suite_create("loss");
	TCase *tc = tcase_create("loss");
	tcase_add_test(tc, test_ntxent);
	tcase_add_test(tc, test_ntxent_torch);
	tcase_add_test(tc, test_cross_entropy);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(loss_suite)
