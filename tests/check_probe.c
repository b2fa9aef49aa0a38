/* Tests for lib/lbfgs, lib/probe, lib/embed and the ssl-probe tool.
 *
 * Parity with scikit-learn and a reference kNN uses the committed fixture
 * tests/fixtures/probe_parity.msgpack (tests/ref/make_probe_fixtures.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "embed.h"
#include "lbfgs.h"
#include "probe.h"
#include "rng.h"
#include "stream.h"
#include "subset.h"
#include "testutil.h"
#include "util.h"

/* ------------------------------------------------------------------ */
/* L-BFGS                                                               */

/* f(x) = 1/2 (x - b)'A(x - b) with A = H diag(1..1000) H (H a Householder
 * reflection): a convex quadratic, minimum 0 at b. */
typedef struct {
	int     n;
	double *A, *b;
	int     evals;
} Quad;

static double
quad_f(void *ctx, const double *x, double *g, int64_t n)
{
	Quad *q = ctx;
	double f = 0;
	q->evals++;
	for (int i = 0; i < n; i++) {
		double ad = 0;
		for (int j = 0; j < n; j++)
			ad += q->A[i * n + j] * (x[j] - q->b[j]);
		g[i] = ad;
		f += 0.5 * (x[i] - q->b[i]) * ad;
	}
	return f;
}

START_TEST(test_lbfgs_quadratic)
{
	enum { N = 40 };
	Quad q = { N, calloc(N * N, sizeof(double)), calloc(N, sizeof(double)), 0 };
	double xstar[N], x[N], v[N], M[N * N];
	Rng r = rng_for(1, 0, 0, 0);
	LbfgsParams p;
	LbfgsResult res;
	/* A = H diag H with H = I - 2vv'/v'v */
	for (int i = 0; i < N; i++)
		v[i] = rng_normal(&r);
	double vv = 0;
	for (int i = 0; i < N; i++)
		vv += v[i] * v[i];
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++)
			M[i * N + j] = (i == j) - 2 * v[i] * v[j] / vv;
	for (int i = 0; i < N; i++)
		for (int j = 0; j < N; j++) {
			double s = 0;
			for (int k = 0; k < N; k++)
				s += M[i * N + k] * (1.0 + 999.0 * k / (N - 1)) * M[j * N + k];
			q.A[i * N + j] = s;
		}
	for (int i = 0; i < N; i++) {
		xstar[i] = q.b[i] = rng_normal(&r);
		x[i] = 0;
	}
	lbfgs_params_default(&p);
	p.gtol = 1e-9;
	p.ftol = 0;
	lbfgs_minimize(&res, x, N, quad_f, &q, &p);
	ck_assert_msg(res.status == LBFGS_CONVERGED_GTOL, "%s after %d iterations, gmax %g", lbfgs_status_str(res.status), res.iters, res.gmax);
	ck_assert_int_eq(res.status, LBFGS_CONVERGED_GTOL);
	ck_assert(res.gmax <= 1e-9);
	ck_assert_int_eq(res.evals, q.evals);
	for (int i = 0; i < N; i++)
		ck_assert_msg(fabs(x[i] - xstar[i]) < 1e-8, "x[%d] = %g, expected %g", i, x[i], xstar[i]);
	/* condition number 1000 in 40 dims: far fewer steps than gradient descent needs */
	ck_assert_msg(res.iters < 200, "%d iterations", res.iters);
	free(q.A);
	free(q.b);
}
END_TEST

/* f(x) = sum_i (x_i - log x_i): convex on x > 0 with minimum at 1, and
 * "infinite" outside; from a far start the first steps overshoot into
 * x <= 0, which the line search must back away from. */
static double
barrier_f(void *ctx, const double *x, double *g, int64_t n)
{
	double f = 0;
	(void)ctx;
	for (int64_t i = 0; i < n; i++) {
		if (x[i] <= 0)
			return INFINITY;
		f += x[i] - log(x[i]);
		g[i] = 1 - 1 / x[i];
	}
	return f;
}

START_TEST(test_lbfgs_domain)
{
	double x[3] = { 30, 0.01, 5 };
	LbfgsParams p;
	LbfgsResult res;
	lbfgs_params_default(&p);
	p.gtol = 1e-10;
	p.ftol = 0;
	ck_assert_int_eq(lbfgs_minimize(&res, x, 3, barrier_f, NULL, &p), 0);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(fabs(x[i] - 1) < 1e-8, "x[%d] = %.12g", i, x[i]);
	ck_assert(fabs(res.f - 3) < 1e-12);
}
END_TEST

START_TEST(test_lbfgs_nonfinite_start)
{
	double x[2] = { -1, 1 };
	LbfgsParams p;
	LbfgsResult res;
	lbfgs_params_default(&p);
	ck_assert_int_eq(lbfgs_minimize(&res, x, 2, barrier_f, NULL, &p), 1);
	ck_assert_int_eq(res.status, LBFGS_NONFINITE);
	ck_assert(x[0] == -1 && x[1] == 1);
}
END_TEST

/* Rosenbrock: not convex, but the classic test that the line search and
 * the curvature pairs work together. */
static double
rosen_f(void *ctx, const double *x, double *g, int64_t n)
{
	double a = 1 - x[0], b = x[1] - x[0] * x[0];
	(void)ctx;
	(void)n;
	g[0] = -2 * a - 400 * x[0] * b;
	g[1] = 200 * b;
	return a * a + 100 * b * b;
}

START_TEST(test_lbfgs_rosenbrock)
{
	double x[2] = { -1.2, 1 };
	LbfgsParams p;
	LbfgsResult res;
	lbfgs_params_default(&p);
	p.gtol = 1e-10;
	p.ftol = 0;
	lbfgs_minimize(&res, x, 2, rosen_f, NULL, &p);
	ck_assert_msg(fabs(x[0] - 1) < 1e-6 && fabs(x[1] - 1) < 1e-6, "(%g, %g) after %d iterations: %s", x[0],
	              x[1], res.iters, lbfgs_status_str(res.status));
	ck_assert(res.iters < 100);
}
END_TEST

/* ------------------------------------------------------------------ */
/* metrics                                                              */

START_TEST(test_metrics_hand)
{
	/* 3 classes, 6 items; item 4 has a tie between classes 0 and 2 (argmax
	 * takes 0) and item 5 a three-way tie */
	const double s[6 * 3] = {
		0.9, 0.05, 0.05, /* true 0, pred 0 */
		0.2, 0.5, 0.3,   /* true 1, pred 1 */
		0.6, 0.1, 0.3,   /* true 2, pred 0; true class 2nd */
		0.1, 0.3, 0.6,   /* true 1, pred 2; true class 2nd */
		0.4, 0.2, 0.4,   /* true 2, pred 0 (tie); true class 2nd */
		1.0, 1.0, 1.0,   /* true 2, pred 0; rank of class 2 is 3rd */
	};
	const int64_t y[6] = { 0, 1, 2, 1, 2, 2 };
	const int64_t conf[9] = { 1, 0, 0, 0, 1, 1, 3, 0, 0 };
	Metrics m;
	metrics_compute(&m, s, y, 6, 3, 2);
	ck_assert_int_eq(m.n, 6);
	ck_assert_int_eq(m.topk, 2);
	ck_assert_int_eq(m.correct, 2);
	ck_assert_int_eq(m.correct_topk, 5);
	for (int i = 0; i < 9; i++)
		ck_assert_int_eq(m.confusion[i], conf[i]);
	ck_assert_int_eq(m.class_n[0], 1);
	ck_assert_int_eq(m.class_n[1], 2);
	ck_assert_int_eq(m.class_n[2], 3);
	ck_assert_int_eq(m.class_correct[0], 1);
	ck_assert_int_eq(m.class_correct[1], 1);
	ck_assert_int_eq(m.class_correct[2], 0);
	metrics_free(&m);
	/* top-5 with 3 classes means top-3: everything */
	metrics_compute(&m, s, y, 6, 3, 5);
	ck_assert_int_eq(m.topk, 3);
	ck_assert_int_eq(m.correct_topk, 6);
	metrics_free(&m);
}
END_TEST

/* ------------------------------------------------------------------ */
/* features and splits                                                  */

START_TEST(test_standardize)
{
	enum { N = 50, D = 3 };
	float x[N * D], mean[D], scale[D];
	Rng r = rng_for(2, 0, 0, 0);
	for (int i = 0; i < N; i++) {
		x[i * D + 0] = (float)(1000 + 0.01 * rng_normal(&r)); /* big mean, tiny spread */
		x[i * D + 1] = (float)(5 * rng_normal(&r));
		x[i * D + 2] = 7; /* constant */
	}
	probe_standardize_fit(mean, scale, x, N, D);
	probe_standardize_apply(x, N, D, mean, scale);
	ck_assert(scale[2] == 1.0f);
	for (int j = 0; j < D; j++) {
		double s = 0, s2 = 0;
		for (int i = 0; i < N; i++) {
			s += x[i * D + j];
			s2 += (double)x[i * D + j] * x[i * D + j];
		}
		ck_assert_msg(fabs(s / N) < 2e-3, "dim %d mean %g", j, s / N);
		if (j < 2)
			ck_assert_msg(fabs(s2 / N - 1) < 2e-3, "dim %d var %g", j, s2 / N);
		else
			ck_assert(s2 == 0);
	}
}
END_TEST

START_TEST(test_split_holdout)
{
	enum { N = 103, K = 4 };
	int64_t y[N], fit[N], val[N], fit2[N], val2[N], nfit, nval, nfit2, nval2, per[K] = { 0 };
	int seen[N] = { 0 }, differs = 0;
	for (int i = 0; i < N; i++)
		y[i] = i < 100 ? i % 3 : 3; /* class 3 has 3 items */
	probe_split_holdout(fit, &nfit, val, &nval, y, N, K, 0.2, 7);
	ck_assert_int_eq(nfit + nval, N);
	for (int i = 0; i < nfit; i++)
		seen[fit[i]]++;
	for (int i = 0; i < nval; i++) {
		seen[val[i]]++;
		per[y[val[i]]]++;
	}
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(seen[i], 1);
	/* 20% of 34, 33, 33 and 3 items: round(0.8 n) stay */
	ck_assert_int_eq(per[0], 34 - 27);
	ck_assert_int_eq(per[1], 33 - 26);
	ck_assert_int_eq(per[2], 33 - 26);
	ck_assert_int_eq(per[3], 3 - 2);
	/* the same seed, the same split; another seed, another one */
	probe_split_holdout(fit2, &nfit2, val2, &nval2, y, N, K, 0.2, 7);
	ck_assert_int_eq(nfit2, nfit);
	ck_assert_mem_eq(fit2, fit, (size_t)nfit * sizeof *fit);
	probe_split_holdout(fit2, &nfit2, val2, &nval2, y, N, K, 0.2, 8);
	for (int i = 0; i < nval && i < nval2; i++)
		differs |= val2[i] != val[i];
	ck_assert(differs);
	/* a class with one item keeps it for fitting */
	y[0] = 3;
	for (int i = 1; i < N; i++)
		y[i] = 0;
	probe_split_holdout(fit, &nfit, val, &nval, y, N, K, 0.5, 1);
	ck_assert_int_eq(fit[0], 0);
}
END_TEST

/* ------------------------------------------------------------------ */
/* linear                                                               */

/* K Gaussian blobs in D dims (centres from seed, noise from noise_seed);
 * x (n, D), y (n). */
static void
make_blobs(float *x, int64_t *y, int n, int D, int K, double sep, uint64_t seed, uint64_t noise_seed)
{
	Rng r = rng_for(seed, 0, 0, 0);
	double *mu = calloc((size_t)K * D, sizeof *mu);
	for (int i = 0; i < K * D; i++)
		mu[i] = sep * rng_normal(&r);
	r = rng_for(noise_seed, 0, 0, 0);
	for (int i = 0; i < n; i++) {
		y[i] = i % K;
		for (int j = 0; j < D; j++)
			x[i * D + j] = (float)(mu[y[i] * D + j] + rng_normal(&r));
	}
	free(mu);
}

START_TEST(test_linear_gradient)
{
	enum { N = 40, D = 6, K = 3 };
	float x[N * D];
	int64_t y[N];
	double dW[K * D], db[K], C = 0.3;
	LinearModel m;
	Rng r = rng_for(3, 0, 0, 0);
	make_blobs(x, y, N, D, K, 1.0, 5, 6);
	linear_init(&m, K, D);
	for (int i = 0; i < K * D; i++)
		m.W[i] = (float)(0.5 * rng_normal(&r));
	for (int k = 0; k < K; k++)
		m.b[k] = (float)rng_normal(&r);
	linear_objective(&m, dW, db, x, y, N, C);
	/* central differences; the objective is computed in float logits, so
	 * use a step that keeps round-off well below the difference */
	for (int i = 0; i < K * D + K; i++) {
		float *p = i < K * D ? &m.W[i] : &m.b[i - K * D], save = *p;
		double h = 1e-2, fp, fm, fd, an = i < K * D ? dW[i] : db[i - K * D];
		*p = save + (float)h;
		fp = linear_objective(&m, NULL, NULL, x, y, N, C);
		*p = save - (float)h;
		fm = linear_objective(&m, NULL, NULL, x, y, N, C);
		*p = save;
		fd = (fp - fm) / (2 * h);
		ck_assert_msg(fabs(fd - an) < 2e-4 + 1e-3 * fabs(an), "param %d: analytic %g, numeric %g", i, an, fd);
	}
	linear_free(&m);
}
END_TEST

START_TEST(test_linear_fit_blobs)
{
	enum { N = 300, NT = 300, D = 10, K = 4 };
	float *x = calloc(N * D, sizeof *x), *xt = calloc(NT * D, sizeof *xt);
	int64_t y[N], yt[NT];
	double *s = calloc(NT * K, sizeof *s);
	LinearModel m;
	LbfgsParams p;
	LbfgsResult res;
	Metrics met;
	make_blobs(x, y, N, D, K, 1.0, 11, 1);
	make_blobs(xt, yt, NT, D, K, 1.0, 11, 2);
	lbfgs_params_default(&p);
	linear_init(&m, K, D);
	ck_assert_int_eq(linear_fit(&m, &res, x, y, N, 1.0, &p), 0);
	ck_assert(res.gmax <= p.gtol || res.status == LBFGS_CONVERGED_FTOL);
	linear_scores(s, &m, xt, NT);
	metrics_compute(&met, s, yt, NT, K, 5);
	ck_assert_msg(met.correct > 0.8 * NT, "%lld of %d", (long long)met.correct, NT);
	metrics_free(&met);
	linear_free(&m);
	free(x);
	free(xt);
	free(s);
}
END_TEST

/* ------------------------------------------------------------------ */
/* kNN                                                                  */

START_TEST(test_knn_hand)
{
	/* 2-D unit vectors; training items 1 and 2 are identical (a tie in
	 * similarity: the lower index, 1, wins the last neighbour slot) */
	const float tr[5 * 2] = { 1, 0, 0.6f, 0.8f, 0.6f, 0.8f, 0, 1, -1, 0 };
	const int64_t y[5] = { 0, 1, 2, 2, 0 };
	const float q[1 * 2] = { 0.8f, 0.6f };
	double v[3];
	/* sims: item0 .8, item1 .96, item2 .96, item3 .6, item4 -.8 */
	knn_scores(v, tr, y, 5, q, 1, 2, 3, 2, 0.5, NULL);
	ck_assert(fabs(v[1] - exp(0.96 / 0.5)) < 1e-5 * v[1]);
	ck_assert(v[0] == 0 && v[2] > 0 && fabs(v[2] - v[1]) < 1e-5 * v[1]);
	/* k = 1: only item 1 */
	knn_scores(v, tr, y, 5, q, 1, 2, 3, 1, 0.5, NULL);
	ck_assert(v[1] > 0 && v[0] == 0 && v[2] == 0);
	/* k beyond n: everything votes */
	knn_scores(v, tr, y, 5, q, 1, 2, 3, 50, 1.0, NULL);
	ck_assert(fabs(v[0] - (exp(0.8) + exp(-0.8))) < 1e-5);
}
END_TEST

/* The heap selection against a full sort, over many random queries with
 * deliberate duplicates. */
START_TEST(test_knn_select_vs_sort)
{
	enum { N = 97, D = 4, NQ = 33, K = 3 };
	float tr[N * D], q[NQ * D];
	int64_t y[N];
	double v[NQ * K];
	Rng r = rng_for(9, 0, 0, 0);
	for (int i = 0; i < N * D; i++)
		tr[i] = (float)rng_normal(&r);
	for (int i = 10; i < 20; i++) /* duplicates of items 0..9 */
		memcpy(tr + i * D, tr + (i - 10) * D, D * sizeof *tr);
	for (int i = 0; i < N; i++)
		y[i] = (int64_t)rng_below(&r, K);
	for (int i = 0; i < NQ * D; i++)
		q[i] = (float)rng_normal(&r);
	probe_l2_normalize(tr, N, D);
	probe_l2_normalize(q, NQ, D);
	for (int k = 1; k <= N; k += 12) {
		knn_scores(v, tr, y, N, q, NQ, D, K, k, 0.1, NULL);
		for (int a = 0; a < NQ; a++) {
			double sims[N], ref[K] = { 0 };
			int order[N];
			for (int i = 0; i < N; i++) {
				float s = 0;
				for (int j = 0; j < D; j++)
					s += q[a * D + j] * tr[i * D + j];
				sims[i] = s;
				order[i] = i;
			}
			/* insertion sort: stable, by descending similarity */
			for (int i = 1; i < N; i++)
				for (int j = i; j > 0 && sims[order[j]] > sims[order[j - 1]]; j--) {
					int t = order[j];
					order[j] = order[j - 1];
					order[j - 1] = t;
				}
			for (int i = 0; i < k; i++)
				ref[y[order[i]]] += exp(sims[order[i]] / 0.1);
			for (int c = 0; c < K; c++)
				ck_assert_msg(fabs(v[a * K + c] - ref[c]) <= 1e-4 * ref[c] + 1e-12,
				              "k %d query %d class %d: %g vs %g", k, a, c, v[a * K + c], ref[c]);
		}
	}
}
END_TEST

/* ------------------------------------------------------------------ */
/* MLP                                                                  */

/* XOR of two signs in 2 of 8 dimensions: a linear probe is at chance, one
 * hidden layer is not. */
static void
make_xor(float *x, int64_t *y, int n, uint64_t seed)
{
	Rng r = rng_for(seed, 0, 0, 0);
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 8; j++)
			x[i * 8 + j] = (float)rng_normal(&r);
		y[i] = (x[i * 8 + 0] > 0) ^ (x[i * 8 + 1] > 0);
	}
}

START_TEST(test_mlp_xor)
{
	enum { N = 1000, NT = 400 };
	float *x = calloc(N * 8, sizeof *x), *xt = calloc(NT * 8, sizeof *xt);
	int64_t *y = calloc(N, sizeof *y), *yt = calloc(NT, sizeof *yt);
	ProbeConfig c;
	ProbeResult lin, mlp;
	make_xor(x, y, N, 21);
	make_xor(xt, yt, NT, 22);
	probe_config_default(&c);
	c.C = 1.0;
	probe_run(&lin, &c, x, y, N, xt, yt, NT, 8, 2);
	c.method = PROBE_MLP;
	c.mlp.hidden = 32;
	c.mlp.batch = 64;
	c.mlp.lr = 3e-3;
	c.seed = 5;
	probe_run(&mlp, &c, x, y, N, xt, yt, NT, 8, 2);
	ck_assert_msg(lin.metrics.correct < 0.6 * NT, "linear %lld/%d", (long long)lin.metrics.correct, NT);
	ck_assert_msg(mlp.metrics.correct > 0.85 * NT, "mlp %lld/%d after %d epochs", (long long)mlp.metrics.correct,
	              NT, mlp.mlp.epochs_run);
	ck_assert_int_eq(mlp.nfit + mlp.nval, N);
	ck_assert(mlp.mlp.best_epoch >= 1 && mlp.mlp.best_epoch <= mlp.mlp.epochs_run);
	probe_result_free(&lin);
	probe_result_free(&mlp);
	free(x);
	free(xt);
	free(y);
	free(yt);
}
END_TEST

START_TEST(test_mlp_deterministic)
{
	enum { N = 200 };
	float *x = calloc(N * 8, sizeof *x);
	int64_t *y = calloc(N, sizeof *y);
	ProbeConfig c;
	ProbeResult a, b;
	make_xor(x, y, N, 31);
	probe_config_default(&c);
	c.method = PROBE_MLP;
	c.mlp.hidden = 16;
	c.mlp.max_epochs = 5;
	c.seed = 3;
	probe_run(&a, &c, x, y, N, x, y, N, 8, 2);
	probe_run(&b, &c, x, y, N, x, y, N, 8, 2);
	ck_assert_int_eq(a.metrics.correct, b.metrics.correct);
	ck_assert(a.mlp.best_val_loss == b.mlp.best_val_loss);
	probe_result_free(&a);
	probe_result_free(&b);
	free(x);
	free(y);
}
END_TEST

Suite *
probe_suite(void)
{
	Suite *s = suite_create("probe");
	TCase *tc = tcase_create("lbfgs");
	tcase_add_test(tc, test_lbfgs_quadratic);
	tcase_add_test(tc, test_lbfgs_domain);
	tcase_add_test(tc, test_lbfgs_nonfinite_start);
	tcase_add_test(tc, test_lbfgs_rosenbrock);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_test(tc, test_metrics_hand);
	tcase_add_test(tc, test_standardize);
	tcase_add_test(tc, test_split_holdout);
	suite_add_tcase(s, tc);

	tc = tcase_create("methods");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_linear_gradient);
	tcase_add_test(tc, test_linear_fit_blobs);
	tcase_add_test(tc, test_knn_hand);
	tcase_add_test(tc, test_knn_select_vs_sort);
	tcase_add_test(tc, test_mlp_xor);
	tcase_add_test(tc, test_mlp_deterministic);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(probe_suite)
