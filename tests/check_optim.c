/* Tests for lib/nn/optim and lib/nn/params: each optimizer against PyTorch (and
 * SimCLR's LARS written out in the generator) on fixed gradients, the
 * schedule, the state table, and the parameter table's rules. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "base/parallel.h"
#include "testutil.h"
#include "base/util.h"

#define FIXTURE "tests/fixtures/core_optim.msgpack"

static const struct {
	const char *name;
	ParamRole   role;
	int         ndim;
	int64_t     shape[4];
} tensors[] = {
	{ "a.weight", PARAM_WEIGHT, 4, { 4, 3, 3, 3 } }, { "a.bias", PARAM_BIAS, 1, { 4 } },
	{ "bn.weight", PARAM_BN_GAMMA, 1, { 4 } },       { "bn.bias", PARAM_BN_BETA, 1, { 4 } },
	{ "fc.weight", PARAM_WEIGHT, 2, { 5, 6 } },
};
#define NT ((int)(sizeof tensors / sizeof tensors[0]))

static void
make_table(ParamTable *t)
{
	char err[256];
	params_init(t);
	for (int i = 0; i < NT; i++)
		ck_assert_int_eq(params_add(t, tensors[i].name, tensors[i].role, DTYPE_F32, tensors[i].ndim,
		                            tensors[i].shape, err, sizeof err), i);
	int64_t one = 1;
	ck_assert_int_ge(params_add(t, "bn.running_mean", PARAM_BUFFER, DTYPE_F32, 1, &one, err, sizeof err), 0);
	params_alloc(t, 1);
}

static void
run_fixture(const char *tag, const OptimConfig *oc, float lr)
{
	Fixture *f = fixture_load(FIXTURE);
	ParamTable t;
	make_table(&t);
	char nm[128];
	for (int i = 0; i < NT; i++) {
		snprintf(nm, sizeof nm, "p0/%s", tensors[i].name);
		memcpy(t.e[i].data, fixture_f32(f, nm, t.e[i].numel), sizeof(float) * (size_t)t.e[i].numel);
	}
	t.e[NT].data[0] = 42.0f;
	Optim *o = optim_new(oc, &t);
	for (int s = 0; s < 3; s++) {
		for (int i = 0; i < NT; i++) {
			snprintf(nm, sizeof nm, "g%d/%s", s, tensors[i].name);
			memcpy(t.e[i].grad, fixture_f32(f, nm, t.e[i].numel), sizeof(float) * (size_t)t.e[i].numel);
		}
		optim_step(o, lr);
	}
	for (int i = 0; i < NT; i++) {
		snprintf(nm, sizeof nm, "%s/%s", tag, tensors[i].name);
		double err = rel_err(t.e[i].data, fixture_f32(f, nm, t.e[i].numel), (size_t)t.e[i].numel, 1e-3);
		ck_assert_msg(err < 2e-6, "%s: %s error %g", tag, tensors[i].name, err);
	}
	ck_assert(t.e[NT].data[0] == 42.0f); /* buffers are not trained */
	ck_assert_int_eq(optim_get_step(o), 3);
	optim_free(o);
	params_free(&t);
	fixture_free(f);
}

START_TEST(test_sgd)
{
	OptimConfig c;
	optim_config_default(&c, OPTIM_SGD);
	c.weight_decay = 5e-4f;
	run_fixture("sgd", &c, 0.1f);
	c.nesterov = 1;
	run_fixture("nesterov", &c, 0.1f);
}
END_TEST

START_TEST(test_adamw)
{
	OptimConfig c;
	optim_config_default(&c, OPTIM_ADAMW);
	c.weight_decay = 0.01f;
	run_fixture("adamw", &c, 0.01f);
}
END_TEST

START_TEST(test_lars)
{
	OptimConfig c;
	optim_config_default(&c, OPTIM_LARS);
	c.weight_decay = 1e-4f;
	run_fixture("lars", &c, 0.5f);
}
END_TEST

/* LARS by hand on one step: the trust ratio scales weights, not BN or bias. */
START_TEST(test_lars_groups)
{
	ParamTable t;
	make_table(&t);
	for (int i = 0; i < NT; i++)
		for (int64_t j = 0; j < t.e[i].numel; j++) {
			t.e[i].data[j] = 2.0f;
			t.e[i].grad[j] = 0.5f;
		}
	OptimConfig c;
	optim_config_default(&c, OPTIM_LARS);
	c.weight_decay = 0.0f;
	c.trust_coef = 0.01f;
	Optim *o = optim_new(&c, &t);
	optim_step(o, 1.0f);
	/* weight: |p| / |g| = 4, so lr_t = 0.04 and p = 2 - 0.04 * 0.5 */
	ck_assert(fabsf(params_find(&t, "a.weight")->data[7] - (2.0f - 0.02f)) < 1e-6f);
	ck_assert(fabsf(params_find(&t, "fc.weight")->data[0] - (2.0f - 0.02f)) < 1e-6f);
	/* bias and BN: plain momentum SGD, p = 2 - 1.0 * 0.5 */
	ck_assert(fabsf(params_find(&t, "a.bias")->data[1] - 1.5f) < 1e-6f);
	ck_assert(fabsf(params_find(&t, "bn.weight")->data[1] - 1.5f) < 1e-6f);
	ck_assert(fabsf(params_find(&t, "bn.bias")->data[1] - 1.5f) < 1e-6f);
	/* a zero gradient leaves the weight alone (trust ratio 1, nothing to apply) */
	ParamEntry *w = params_find(&t, "fc.weight");
	memset(w->grad, 0, sizeof(float) * (size_t)w->numel);
	float before = w->data[3];
	ParamTable *st = optim_state(o);
	memset(st->buffers, 0, sizeof(float) * st->nbuffers);
	optim_step(o, 1.0f);
	ck_assert(w->data[3] == before);
	optim_free(o);
	params_free(&t);
}
END_TEST

START_TEST(test_state_table)
{
	ParamTable t;
	make_table(&t);
	OptimConfig c;
	optim_config_default(&c, OPTIM_SGD);
	Optim *o = optim_new(&c, &t);
	ParamTable *st = optim_state(o);
	ck_assert_int_eq(st->n, NT);
	ParamEntry *e = params_find(st, "a.weight.momentum_buffer");
	ck_assert(e && e->ndim == 4 && e->shape[3] == 3 && e->role == PARAM_BUFFER && e->grad == NULL);
	ck_assert_ptr_null(params_find(st, "bn.running_mean.momentum_buffer"));
	/* the state is its own arena, not the gradients (darknet reuses them; we don't) */
	ck_assert(e->data < t.grads || e->data >= t.grads + t.nparams);
	optim_free(o);
	optim_config_default(&c, OPTIM_ADAMW);
	o = optim_new(&c, &t);
	st = optim_state(o);
	ck_assert_int_eq(st->n, 2 * NT);
	ck_assert_ptr_nonnull(params_find(st, "fc.weight.exp_avg"));
	ck_assert_ptr_nonnull(params_find(st, "fc.weight.exp_avg_sq"));
	optim_set_step(o, 41);
	optim_step(o, 0.0f);
	ck_assert_int_eq(optim_get_step(o), 42);
	optim_free(o);
	params_free(&t);
}
END_TEST

START_TEST(test_config)
{
	char err[256];
	OptimConfig c;
	OptimKind k;
	optim_config_default(&c, OPTIM_LARS);
	ck_assert_int_eq(optim_config_check(&c, err, sizeof err), 0);
	ck_assert(c.momentum == 0.9f && c.trust_coef == 0.001f);
	c.momentum = 1.0f;
	ck_assert_int_eq(optim_config_check(&c, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "momentum"));
	optim_config_default(&c, OPTIM_SGD);
	c.momentum = 0.0f;
	c.nesterov = 1;
	ck_assert_int_eq(optim_config_check(&c, err, sizeof err), -1);
	optim_config_default(&c, OPTIM_ADAMW);
	c.beta2 = 1.0f;
	ck_assert_int_eq(optim_config_check(&c, err, sizeof err), -1);
	ck_assert_int_eq(optim_kind_parse("adamw", &k), 0);
	ck_assert_int_eq(k, OPTIM_ADAMW);
	ck_assert_int_eq(optim_kind_parse("adam", &k), -1);
	ck_assert_str_eq(optim_kind_name(OPTIM_LARS), "lars");
}
END_TEST

/* The schedule laid once, from the end of warm-up to total. */
static float
lr_once(int64_t step, int64_t total, int64_t warmup, float base)
{
	LrSchedule s = { .total = total, .warmup = warmup };
	return lr_at(step, &s, base);
}

START_TEST(test_schedule)
{
	/* warm-up: base * (step + 1) / warmup */
	ck_assert(fabsf(lr_once(0, 100, 10, 1.0f) - 0.1f) < 1e-7f);
	ck_assert(fabsf(lr_once(4, 100, 10, 2.0f) - 1.0f) < 1e-7f);
	ck_assert(fabsf(lr_once(10, 100, 10, 1.0f) - 1.0f) < 1e-7f);
	/* cosine: half way through the decay */
	ck_assert(fabsf(lr_once(55, 100, 10, 1.0f) - 0.5f) < 1e-6f);
	ck_assert(lr_once(99, 100, 10, 1.0f) > 0.0f && lr_once(99, 100, 10, 1.0f) < 1e-3f);
	ck_assert(lr_once(100, 100, 10, 1.0f) == 0.0f);
	ck_assert(lr_once(1000, 100, 10, 1.0f) == 0.0f);
	ck_assert(fabsf(lr_once(0, 100, 0, 3.0f) - 3.0f) < 1e-6f);
	for (int s = 1; s < 100; s++) /* monotone after warm-up */
		if (s > 10)
			ck_assert(lr_once(s, 100, 10, 1.0f) <= lr_once(s - 1, 100, 10, 1.0f));
}
END_TEST

/* A --budget re-plan moves the end at step 40 of a 100-step schedule (10
 * warm-up): the rest of the cosine runs from the phase reached there over
 * the steps left, so the rate is continuous at the re-plan and falls to 0
 * at the new end, whether that end moved out or in. Laying the cosine again
 * over the new total from step 0 would step the rate up when the end moves
 * out (the old way, seen in a two-hour run). */
START_TEST(test_schedule_relaid)
{
	static const int64_t ends[] = { 160, 60, 41 };
	LrSchedule old = { .total = 100, .warmup = 10 };
	double p40 = lr_phase(40, &old);
	ck_assert(fabs(p40 - 30.0 / 90.0) < 1e-12);
	for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
		LrSchedule s = { .total = ends[k], .warmup = 10, .relaid_at = 40, .relaid_phase = p40 };
		float prev = lr_at(39, &old, 1.0f);
		ck_assert(fabs(lr_phase(40, &s) - p40) < 1e-12);
		ck_assert(lr_at(40, &s, 1.0f) == lr_at(40, &old, 1.0f));
		for (int64_t i = 40; i < s.total; i++) {
			float lr = lr_at(i, &s, 1.0f);
			ck_assert_msg(lr <= prev && lr > 0.0f, "end %lld step %lld: %g after %g", (long long)s.total,
			              (long long)i, lr, prev);
			prev = lr;
		}
		ck_assert(lr_at(s.total, &s, 1.0f) == 0.0f);
		/* half way from the re-plan to the end, the phase is half way from p40 to 1 */
		if ((s.total - 40) % 2 == 0)
			ck_assert(fabs(lr_phase(40 + (s.total - 40) / 2, &s) - (p40 + 1.0) / 2) < 1e-12);
	}
	/* re-laid twice (the end moved out at 40, then in at 70): the second
	 * re-plan starts from the phase the first had reached */
	{
		LrSchedule s1 = { .total = 160, .warmup = 10, .relaid_at = 40, .relaid_phase = p40 }, s2 = s1;
		float prev = lr_at(69, &s1, 1.0f);
		s2.total = 120;
		s2.relaid_at = 70;
		s2.relaid_phase = lr_phase(70, &s1);
		ck_assert(s2.relaid_phase > p40 && s2.relaid_phase < 1);
		ck_assert(lr_at(70, &s2, 1.0f) == lr_at(70, &s1, 1.0f));
		for (int64_t i = 70; i < s2.total; i++) {
			float lr = lr_at(i, &s2, 1.0f);
			ck_assert(lr <= prev && lr > 0.0f);
			prev = lr;
		}
		ck_assert(lr_at(120, &s2, 1.0f) == 0.0f);
	}
	/* laid again at or before the end of warm-up: the schedule laid once */
	{
		LrSchedule s = { .total = 100, .warmup = 10, .relaid_at = 10, .relaid_phase = 0.5 };
		ck_assert(lr_at(55, &s, 1.0f) == lr_once(55, 100, 10, 1.0f));
	}
}
END_TEST

START_TEST(test_params_rules)
{
	ParamTable t;
	char err[256];
	int64_t sh[2] = { 3, 2 }, bad[2] = { 3, -1 };
	params_init(&t);
	ck_assert_int_eq(params_add(&t, "x.weight", PARAM_WEIGHT, DTYPE_F32, 2, sh, err, sizeof err), 0);
	ck_assert_int_eq(params_add(&t, "x.weight", PARAM_BIAS, DTYPE_F32, 1, sh, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "duplicate"));
	ck_assert_int_eq(params_add(&t, "y", PARAM_WEIGHT, DTYPE_F32, 2, bad, err, sizeof err), -1);
	ck_assert_int_eq(params_add(&t, "z", PARAM_WEIGHT, DTYPE_I64, 1, sh, err, sizeof err), -1);
	char longname[200];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = 0;
	ck_assert_int_eq(params_add(&t, longname, PARAM_WEIGHT, DTYPE_F32, 1, sh, err, sizeof err), -1);
	ck_assert_int_eq(params_add(&t, "x.count", PARAM_BUFFER, DTYPE_I64, 0, sh, err, sizeof err), 1);
	ck_assert_int_eq(params_add(&t, "x.bias", PARAM_BIAS, DTYPE_F32, 1, sh, err, sizeof err), 2);
	params_alloc(&t, 1);
	ck_assert_int_eq(params_count(&t), 9);
	ck_assert_ptr_eq(params_find(&t, "x.bias")->data, t.params + 6);
	ck_assert_ptr_eq(params_find(&t, "x.bias")->grad, t.grads + 6);
	ck_assert_ptr_nonnull(params_find(&t, "x.count")->i64);
	ck_assert(params_decayed(&t.e[0]) && !params_decayed(&t.e[2]) && !params_trainable(&t.e[1]));
	ck_assert_str_eq(params_role_name(PARAM_BN_GAMMA), "bn_gamma");
	Tensor v = params_tensor(&t.e[0]);
	ck_assert(v.dtype == DTYPE_F32 && v.ndim == 2 && v.shape[1] == 2 && v.data == t.params && !v.owned);
	ck_assert_int_eq(params_add(&t, "late", PARAM_WEIGHT, DTYPE_F32, 1, sh, err, sizeof err), -1);
	t.grads[4] = 3.0f;
	params_zero_grad(&t);
	ck_assert(t.grads[4] == 0.0f);

	/* copying by name: shape mismatches and missing names are reported */
	ParamTable u;
	params_init(&u);
	int64_t sh2[2] = { 2, 3 };
	params_add(&u, "x.weight", PARAM_WEIGHT, DTYPE_F32, 2, sh2, err, sizeof err);
	params_alloc(&u, 0);
	ck_assert_int_eq(params_copy(&u, &t, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "x.weight"));
	ck_assert_int_eq(params_copy(&t, &u, err, sizeof err), -1);
	params_free(&u);
	params_free(&t);
}
END_TEST

static Suite *
optim_suite(void)
{
	parallel_set_threads(2);
	Suite *s = suite_create("optim");
	TCase *tc = tcase_create("torch");
	tcase_add_test(tc, test_sgd);
	tcase_add_test(tc, test_adamw);
	tcase_add_test(tc, test_lars);
	suite_add_tcase(s, tc);
	tc = tcase_create("rules");
	tcase_add_test(tc, test_lars_groups);
	tcase_add_test(tc, test_state_table);
	tcase_add_test(tc, test_config);
	tcase_add_test(tc, test_schedule);
	tcase_add_test(tc, test_schedule_relaid);
	tcase_add_test(tc, test_params_rules);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(optim_suite)
