/* Tests for lib/eval/lbfgs, lib/eval/probe, lib/eval/embed and the ssl-probe tool.
 *
 * Parity with scikit-learn and a reference kNN uses the committed fixture
 * tests/fixtures/probe_parity.msgpack (tests/ref/make_probe_fixtures.py). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <msgpack.h>

#include "eval/embed.h"
#include "eval/lbfgs.h"
#include "eval/probe.h"
#include "base/rng.h"
#include "io/stream.h"
#include "data/subset.h"
#include "testutil.h"
#include "base/util.h"

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
	ck_assert_int_eq(linear_fit(&m, &res, x, y, N, 1.0, &p, NULL), 0);
	ck_assert(res.status == LBFGS_CONVERGED_GTOL || res.status == LBFGS_CONVERGED_FTOL);
	ck_assert(res.gmax < 1e-3);
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

/* Strongly correlated features (x = z M, M with singular values from 1 to
 * 1e-3): the whitening in linear_fit must make them as quick to fit as the
 * latent z, and give the same objective as a fit on z re-expressed. */
START_TEST(test_linear_correlated)
{
	enum { N = 400, D = 16, K = 3 };
	float *z = calloc(N * D, sizeof *z), *x = calloc(N * D, sizeof *x);
	int64_t y[N];
	double M[D * D];
	Rng r = rng_for(41, 0, 0, 0);
	LinearModel m;
	LbfgsParams p;
	LbfgsResult res;
	make_blobs(z, y, N, D, K, 0.7, 42, 43);
	/* M = diag(s) R with R a random rotation-ish mix: column j of x mixes
	 * all of z, with very different gains */
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			M[i * D + j] = pow(10.0, -3.0 * i / (D - 1)) * (rng_normal(&r) + (i == j ? 3 : 0));
	for (int n = 0; n < N; n++)
		for (int j = 0; j < D; j++) {
			double s = 0;
			for (int i = 0; i < D; i++)
				s += z[n * D + i] * M[i * D + j];
			x[n * D + j] = (float)s;
		}
	lbfgs_params_default(&p);
	linear_init(&m, K, D);
	linear_fit(&m, &res, x, y, N, 10.0, &p, NULL);
	ck_assert_msg(res.status == LBFGS_CONVERGED_GTOL, "%s after %d iterations", lbfgs_status_str(res.status),
	              res.iters);
	ck_assert_msg(res.iters < 60, "%d iterations", res.iters);
	/* the optimum: the gradient of the objective as posed is tiny, and a
	 * restart from it does not move */
	ck_assert_msg(res.gmax < 1e-4, "gradient %g", res.gmax);
	{
		double f0 = res.f;
		linear_fit(&m, &res, x, y, N, 10.0, &p, NULL);
		ck_assert(fabs(res.f - f0) < 1e-9 * fmax(1, f0));
		ck_assert_int_le(res.iters, 2);
	}
	linear_free(&m);
	free(z);
	free(x);
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

/* ------------------------------------------------------------------ */
/* parity with scikit-learn and the reference kNN (committed fixture)   */

typedef struct {
	char             *buf;
	msgpack_unpacked  u;
} Fixture;

static void
fixture_open(Fixture *f)
{
	char path[1024];
	size_t len, off = 0;
	snprintf(path, sizeof path, "%s/tests/fixtures/probe_parity.msgpack", tu_src());
	f->buf = tu_read_file(path, &len);
	msgpack_unpacked_init(&f->u);
	ck_assert_int_eq(msgpack_unpack_next(&f->u, f->buf, len, &off), MSGPACK_UNPACK_SUCCESS);
	ck_assert_int_eq(f->u.data.type, MSGPACK_OBJECT_MAP);
}

static void
fixture_close(Fixture *f)
{
	msgpack_unpacked_destroy(&f->u);
	free(f->buf);
}

/* A malloc'd copy of tensor `key` (dtype checked); its element count in *n. */
static void *
fixture_get(Fixture *f, const char *key, DType dtype, int64_t *n)
{
	const msgpack_object_map *m = &f->u.data.via.map;
	for (uint32_t i = 0; i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) &&
		    memcmp(k->via.str.ptr, key, k->via.str.size) == 0) {
			Tensor t;
			char err[256];
			void *copy;
			ck_assert_msg(tensor_unpack(&m->ptr[i].val, &t, 1 << 24, err, sizeof err) == 0, "%s: %s", key, err);
			ck_assert_msg(t.dtype == dtype, "%s: dtype %s", key, dtype_str(t.dtype));
			copy = malloc(tensor_nbytes(&t) + 1);
			memcpy(copy, t.data, tensor_nbytes(&t));
			*n = tensor_numel(&t);
			return copy;
		}
	}
	ck_abort_msg("fixture has no '%s'", key);
	return NULL;
}

typedef struct {
	float   *xtr, *xte;
	int64_t *ytr, *yte;
	int64_t  ntr, nte;
} ParityData;

enum { PD = 32, PK = 5 };

static void
parity_load(Fixture *f, ParityData *d)
{
	int64_t n;
	fixture_open(f);
	d->xtr = fixture_get(f, "x_train", DTYPE_F32, &n);
	d->ytr = fixture_get(f, "y_train", DTYPE_I64, &d->ntr);
	ck_assert_int_eq(n, d->ntr * PD);
	d->xte = fixture_get(f, "x_test", DTYPE_F32, &n);
	d->yte = fixture_get(f, "y_test", DTYPE_I64, &d->nte);
	ck_assert_int_eq(n, d->nte * PD);
}

static void
parity_free(Fixture *f, ParityData *d)
{
	free(d->xtr);
	free(d->xte);
	free(d->ytr);
	free(d->yte);
	fixture_close(f);
}

START_TEST(test_linear_parity)
{
	Fixture f;
	ParityData d;
	int64_t nC, n;
	double *Cs, *acc, *obj;
	float *str = NULL, *mean = calloc(PD, sizeof *mean), *scale = calloc(PD, sizeof *scale);
	parity_load(&f, &d);
	Cs = fixture_get(&f, "lr_C", DTYPE_F64, &nC);
	acc = fixture_get(&f, "lr_test_acc", DTYPE_F64, &n);
	obj = fixture_get(&f, "lr_objective", DTYPE_F64, &n);
	/* the standardised training set, as probe_run makes it */
	str = malloc((size_t)d.ntr * PD * sizeof *str);
	memcpy(str, d.xtr, (size_t)d.ntr * PD * sizeof *str);
	probe_standardize_fit(mean, scale, str, d.ntr, PD);
	probe_standardize_apply(str, d.ntr, PD, mean, scale);
	for (int i = 0; i < nC; i++) {
		char key[32];
		ProbeConfig c;
		ProbeResult r;
		LinearModel m;
		double *coef, *icpt, ours_at_theirs;
		int64_t *pred, agree = 0;
		probe_config_default(&c);
		c.C = Cs[i];
		probe_run(&r, &c, d.xtr, d.ytr, d.ntr, d.xte, d.yte, d.nte, PD, PK);
		ck_assert_msg(r.opt.status == LBFGS_CONVERGED_GTOL, "C %g: %s", Cs[i], lbfgs_status_str(r.opt.status));
		/* the acceptance bound of the issue: within 0.5 points */
		ck_assert_msg(fabs((double)r.metrics.correct / (double)d.nte - acc[i]) <= 0.005 + 1e-12,
		              "C %g: our test accuracy %.4f, scikit-learn's %.4f", Cs[i],
		              (double)r.metrics.correct / (double)d.nte, acc[i]);
		/* the same optimum: our objective at scikit-learn's solution is its
		 * recorded objective (same definition), and ours is no worse */
		snprintf(key, sizeof key, "lr_coef_%d", i);
		coef = fixture_get(&f, key, DTYPE_F64, &n);
		ck_assert_int_eq(n, PK * PD);
		snprintf(key, sizeof key, "lr_intercept_%d", i);
		icpt = fixture_get(&f, key, DTYPE_F64, &n);
		linear_init(&m, PK, PD);
		for (int j = 0; j < PK * PD; j++)
			m.W[j] = (float)coef[j];
		for (int k = 0; k < PK; k++)
			m.b[k] = (float)icpt[k];
		ours_at_theirs = linear_objective(&m, NULL, NULL, str, d.ytr, d.ntr, Cs[i]);
		ck_assert_msg(fabs(ours_at_theirs - obj[i]) < 1e-6, "C %g: objective at sklearn's solution %.9f vs %.9f",
		              Cs[i], ours_at_theirs, obj[i]);
		ck_assert_msg(fabs(r.opt.f - obj[i]) < 1e-6 * fmax(1, fabs(obj[i])), "C %g: our optimum %.9f, sklearn's %.9f",
		              Cs[i], r.opt.f, obj[i]);
		/* and (nearly) the same predictions */
		snprintf(key, sizeof key, "lr_pred_%d", i);
		pred = fixture_get(&f, key, DTYPE_I64, &n);
		{
			double *s = calloc((size_t)d.nte * PK, sizeof *s);
			float *ste = malloc((size_t)d.nte * PD * sizeof *ste);
			LbfgsResult res;
			LbfgsParams p;
			memcpy(ste, d.xte, (size_t)d.nte * PD * sizeof *ste);
			probe_standardize_apply(ste, d.nte, PD, mean, scale);
			lbfgs_params_default(&p);
			linear_fit(&m, &res, str, d.ytr, d.ntr, Cs[i], &p, NULL); /* from their solution: stays there */
			ck_assert(res.f <= ours_at_theirs + 1e-9);
			linear_scores(s, &m, ste, d.nte);
			for (int64_t q = 0; q < d.nte; q++)
				agree += probe_argmax(s + q * PK, PK) == pred[q];
			free(s);
			free(ste);
		}
		ck_assert_msg(agree >= d.nte - 1, "C %g: %lld of %lld predictions agree", Cs[i], (long long)agree,
		              (long long)d.nte);
		linear_free(&m);
		free(coef);
		free(icpt);
		free(pred);
		probe_result_free(&r);
	}
	free(Cs);
	free(acc);
	free(obj);
	free(str);
	free(mean);
	free(scale);
	parity_free(&f, &d);
}
END_TEST

START_TEST(test_knn_parity)
{
	Fixture f;
	ParityData d;
	int64_t nk, n;
	int64_t *ks;
	double *Ts;
	float *tr, *te;
	parity_load(&f, &d);
	ks = fixture_get(&f, "knn_k", DTYPE_I64, &nk);
	Ts = fixture_get(&f, "knn_T", DTYPE_F64, &n);
	tr = malloc((size_t)d.ntr * PD * sizeof *tr);
	te = malloc((size_t)d.nte * PD * sizeof *te);
	memcpy(tr, d.xtr, (size_t)d.ntr * PD * sizeof *tr);
	memcpy(te, d.xte, (size_t)d.nte * PD * sizeof *te);
	probe_l2_normalize(tr, d.ntr, PD);
	probe_l2_normalize(te, d.nte, PD);
	for (int i = 0; i < nk; i++) {
		char key[32];
		int64_t *pred, correct = 0;
		double *votes, *v = calloc((size_t)d.nte * PK, sizeof *v);
		ProbeConfig c;
		ProbeResult r;
		snprintf(key, sizeof key, "knn_pred_%d", i);
		pred = fixture_get(&f, key, DTYPE_I64, &n);
		snprintf(key, sizeof key, "knn_votes_%d", i);
		votes = fixture_get(&f, key, DTYPE_F64, &n);
		knn_scores(v, tr, d.ytr, d.ntr, te, d.nte, PD, PK, (int)ks[i], Ts[i], NULL);
		for (int64_t q = 0; q < d.nte; q++) {
			ck_assert_msg(probe_argmax(v + q * PK, PK) == pred[q], "k %lld: query %lld predicts %d, reference %lld",
			              (long long)ks[i], (long long)q, probe_argmax(v + q * PK, PK), (long long)pred[q]);
			for (int k = 0; k < PK; k++)
				ck_assert_msg(fabs(v[q * PK + k] - votes[q * PK + k]) <= 1e-4 * votes[q * PK + k] + 1e-9,
				              "k %lld query %lld class %d: %g vs %g", (long long)ks[i], (long long)q, k,
				              v[q * PK + k], votes[q * PK + k]);
			correct += pred[q] == d.yte[q];
		}
		/* the same through probe_run, which normalises copies itself */
		probe_config_default(&c);
		c.method = PROBE_KNN;
		c.k = (int)ks[i];
		c.T = Ts[i];
		probe_run(&r, &c, d.xtr, d.ytr, d.ntr, d.xte, d.yte, d.nte, PD, PK);
		ck_assert_int_eq(r.metrics.correct, correct);
		probe_result_free(&r);
		free(pred);
		free(votes);
		free(v);
	}
	free(ks);
	free(Ts);
	free(tr);
	free(te);
	parity_free(&f, &d);
}
END_TEST

START_TEST(test_select_C)
{
	Fixture f;
	ParityData d;
	ProbeConfig c;
	ProbeResult r, r2;
	int64_t n;
	double *acc;
	parity_load(&f, &d);
	acc = fixture_get(&f, "lr_test_acc", DTYPE_F64, &n);
	probe_config_default(&c);
	probe_run(&r, &c, d.xtr, d.ytr, d.ntr, d.xte, d.yte, d.nte, PD, PK);
	ck_assert(r.C_chosen);
	ck_assert_int_eq(r.search.nfit + r.search.nval, d.ntr);
	ck_assert_int_eq(r.search.nval, 120); /* 20% of 120 per class */
	ck_assert(r.search.n >= 3 && r.search.best < r.search.n);
	ck_assert(r.C == r.search.C[r.search.best]);
	for (int i = 0; i < r.search.n; i++)
		ck_assert(r.search.val_loss[r.search.best] <= r.search.val_loss[i]);
	/* a sensible choice: as good as scikit-learn at either fixed C, give
	 * or take 3 points */
	ck_assert_msg((double)r.metrics.correct / (double)d.nte >= fmin(acc[0], acc[1]) - 0.03, "C %g: %lld/%lld", r.C,
	              (long long)r.metrics.correct, (long long)d.nte);
	/* deterministic for a seed */
	probe_run(&r2, &c, d.xtr, d.ytr, d.ntr, d.xte, d.yte, d.nte, PD, PK);
	ck_assert(r2.C == r.C && r2.metrics.correct == r.metrics.correct);
	probe_result_free(&r);
	probe_result_free(&r2);
	free(acc);
	parity_free(&f, &d);
}
END_TEST

/* ------------------------------------------------------------------ */
/* embeddings streams and the tool                                      */

static char *class_names[PK] = { "ant", "bee", "cat", "dog", "eel" };

/* Writes n records of x (n, D) with labels y to path. Knobs for hostile
 * input: kind, bad_dim_at (that record gets D/2 dims; -1: none), classes
 * (0: no names in the header), trailer. */
typedef struct {
	const char *kind;
	int         classes;
	int64_t     bad_dim_at;
	int         trailer;
} EmbOpts;

static void
write_emb(const char *path, const float *x, const int64_t *y, int64_t n, int D, const EmbOpts *o)
{
	FILE *f = fopen(path, "wb");
	StreamHeader h;
	StreamWriter *w;
	ck_assert_ptr_nonnull(f);
	stream_header_init(&h, o->kind ? o->kind : STREAM_KIND_EMBEDDINGS);
	if (o->classes)
		stream_header_set_classes(&h, PK, class_names);
	h.records_per_epoch = n;
	h.epochs = 1;
	w = stream_writer_open(f, path, &h);
	ck_assert_ptr_nonnull(w);
	for (int64_t i = 0; i < n; i++) {
		int64_t shape[1] = { i == o->bad_dim_at ? D / 2 : D };
		Record rec = { .id = 1000 + i, .label = y[i], .epoch = 0, .ntensors = 1 };
		rec.tensors[0] = tensor_view("embedding", DTYPE_F32, 1, shape, (void *)(x + i * D));
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	if (o->trailer)
		ck_assert_int_eq(stream_writer_close(w), 0);
	else
		stream_writer_abort(w);
	ck_assert_int_eq(fclose(f), 0);
	stream_header_free(&h);
}

static const EmbOpts emb_ok = { NULL, 1, -1, 1 };

/* train.emb and test.emb from the parity fixture, in tu_tmpdir(). */
static void
write_parity_streams(ParityData *d)
{
	Fixture f;
	parity_load(&f, d);
	write_emb(tu_path("train.emb"), d->xtr, d->ytr, d->ntr, PD, &emb_ok);
	write_emb(tu_path("test.emb"), d->xte, d->yte, d->nte, PD, &emb_ok);
	fixture_close(&f);
}

/* Runs ssl-probe with args (train.emb/test.emb in the tmpdir are $TR/$TE)
 * and parses its JSON; fails the test unless it exits 0. */
static json_t *
run_json(const char *args)
{
	TuResult r;
	json_error_t je;
	json_t *j;
	tu_run(&r, "cd '%s' && ssl-probe --json --quiet %s", tu_tmpdir(), args);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	j = json_loads(r.out, 0, &je);
	ck_assert_msg(j != NULL, "bad JSON (%s): %s", je.text, r.out);
	tu_result_free(&r);
	return j;
}

static double
jget_real(json_t *o, const char *path)
{
	json_t *v = json_object_get(o, path);
	ck_assert_msg(v && json_is_number(v), "no number '%s'", path);
	return json_number_value(v);
}

START_TEST(test_tool_linear_parity)
{
	ParityData d;
	Fixture f;
	int64_t n;
	double *acc, *Cs;
	TuResult r;
	json_t *j, *res, *pc, *conf;
	int64_t sum = 0;
	write_parity_streams(&d);
	fixture_open(&f);
	acc = fixture_get(&f, "lr_test_acc", DTYPE_F64, &n);
	Cs = fixture_get(&f, "lr_C", DTYPE_F64, &n);
	/* text report */
	tu_run(&r, "cd '%s' && ssl-probe --train train.emb --test test.emb --C %g", tu_tmpdir(), Cs[0]);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.out, "method     linear\n");
	tu_assert_has(r.out, "train      train.emb: 600 of 600 items\n");
	tu_assert_has(r.out, "features   32 dims, 5 classes\n");
	tu_assert_has(r.out, "C          0.05 (lambda 0.03333 = 1/(C n)), given\n");
	tu_assert_has(r.out, "  2 cat ");
	tu_assert_has(r.out, "confusion matrix");
	{
		char want[64];
		snprintf(want, sizeof want, "top-1      %.2f%%  (%d/200)", 100 * acc[0], (int)lround(200 * acc[0]));
		tu_assert_has(r.out, want);
	}
	tu_result_free(&r);
	/* JSON */
	j = run_json("--train train.emb --test test.emb --C 1");
	ck_assert_int_eq(json_integer_value(json_object_get(j, "dim")), 32);
	ck_assert_int_eq(json_array_size(json_object_get(j, "classes")), 5);
	res = json_array_get(json_object_get(j, "results"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(res, "method")), "linear");
	ck_assert(fabs(jget_real(res, "top1") - acc[1]) <= 0.005 + 1e-12);
	ck_assert(jget_real(json_object_get(res, "settings"), "C") == 1.0);
	ck_assert(json_is_true(json_object_get(json_object_get(json_object_get(res, "settings"), "optimizer"),
	                                       "converged")));
	pc = json_object_get(res, "per_class");
	conf = json_object_get(res, "confusion");
	ck_assert_int_eq(json_array_size(pc), 5);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(pc, 4), "class")), "eel");
	for (size_t t = 0; t < 5; t++)
		for (size_t p = 0; p < 5; p++)
			sum += json_integer_value(json_array_get(json_array_get(conf, t), p));
	ck_assert_int_eq(sum, 200);
	json_decref(j);
	free(acc);
	free(Cs);
	fixture_close(&f);
	free(d.xtr);
	free(d.xte);
	free(d.ytr);
	free(d.yte);
}
END_TEST

START_TEST(test_tool_methods_inputs)
{
	ParityData d;
	json_t *j, *results;
	TuResult r, r2;
	write_parity_streams(&d);
	/* two methods, knn exactly as the reference (k 10, T 0.07: 104/200) */
	j = run_json("--train train.emb --test test.emb --method knn,linear --k 10 --knn-t 0.07 --C 0.05");
	results = json_object_get(j, "results");
	ck_assert_int_eq(json_array_size(results), 2);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(results, 0), "method")), "knn");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(results, 0), "correct")), 104);
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(json_array_get(results, 0), "settings"),
	                                                    "k_used")), 10);
	json_decref(j);
	/* stdin and process substitution read the same */
	tu_run(&r, "cd '%s' && ssl-probe --quiet --train train.emb --test test.emb --C 0.05 | grep top-", tu_tmpdir());
	tu_run(&r2, "cd '%s' && ssl-probe --quiet --train - --test test.emb --C 0.05 < train.emb | grep top-",
	       tu_tmpdir());
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(r2.status, 0);
	ck_assert_str_eq(r.out, r2.out);
	tu_result_free(&r2);
	tu_run(&r2, "cd '%s' && bash -c 'ssl-probe --quiet --train <(cat train.emb) --test <(cat test.emb) --C 0.05' "
	       "| grep top-", tu_tmpdir());
	ck_assert_msg(r2.status == 0, "%s", r2.err);
	ck_assert_str_eq(r.out, r2.out);
	tu_result_free(&r);
	tu_result_free(&r2);
	/* --labels: a stratified subset, seeded */
	j = run_json("--train train.emb --test test.emb --labels 10% --C 1");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "train"), "items_used")), 60);
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "train"), "labels")), "10%");
	json_decref(j);
	j = run_json("--train train.emb --test test.emb --labels 3-per-class --method knn --seed 4");
	ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(j, "train"), "items_used")), 15);
	{
		/* the very subset lib/data/subset picks: the same kNN votes from it */
		int64_t idx[600], m = subset_stratified(d.ytr, d.ntr, PK, -1, 3, 4, idx), ys[15], correct = 0;
		float xs[15 * PD], *te = malloc((size_t)d.nte * PD * sizeof *te);
		double *v = calloc((size_t)d.nte * PK, sizeof *v);
		ck_assert_int_eq(m, 15);
		probe_gather(xs, ys, d.xtr, d.ytr, PD, idx, m);
		memcpy(te, d.xte, (size_t)d.nte * PD * sizeof *te);
		probe_l2_normalize(xs, m, PD);
		probe_l2_normalize(te, d.nte, PD);
		knn_scores(v, xs, ys, m, te, d.nte, PD, PK, 200, 0.1, NULL);
		for (int64_t q = 0; q < d.nte; q++)
			correct += probe_argmax(v + q * PK, PK) == d.yte[q];
		ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(j, "results"), 0),
		                                                    "correct")),
		                 correct);
		free(te);
		free(v);
	}
	/* k capped at the 15 training items */
	ck_assert_int_eq(json_integer_value(json_object_get(
	                     json_object_get(json_array_get(json_object_get(j, "results"), 0), "settings"), "k_used")),
	                 15);
	json_decref(j);
	/* mlp, small and quick, well above chance (20%) */
	j = run_json("--train train.emb --test test.emb --method mlp --hidden 32 --epochs 30 --seed 1");
	ck_assert(jget_real(json_array_get(json_object_get(j, "results"), 0), "top1") > 0.5);
	json_decref(j);
	free(d.xtr);
	free(d.xte);
	free(d.ytr);
	free(d.yte);
}
END_TEST

/* ssl-probe on train/test written with the given knobs must exit 1 with one
 * line on stderr containing `want`, and nothing on stdout. */
static void
expect_fail(const char *want, const char *args)
{
	TuResult r;
	tu_run(&r, "cd '%s' && ssl-probe %s", tu_tmpdir(), args);
	ck_assert_msg(r.status == 1, "status %d for %s: %s", r.status, args, r.err);
	ck_assert_msg(r.outlen == 0, "stdout not empty: %s", r.out);
	ck_assert_msg(strstr(r.err, want) != NULL, "missing '%s' in: %s", want, r.err);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line: %s", r.err);
	tu_result_free(&r);
}

START_TEST(test_tool_bad_input)
{
	enum { N = 20, D = 4 };
	float x[N * D];
	int64_t y[N], y1[N], ybad[N];
	EmbOpts o = emb_ok;
	for (int i = 0; i < N * D; i++)
		x[i] = (float)((i * 37) % 11) - 5;
	for (int i = 0; i < N; i++) {
		y[i] = i % PK;
		y1[i] = i % (PK - 1); /* no class 4 */
		ybad[i] = i == 7 ? -1 : i % PK;
	}
	write_emb(tu_path("ok.emb"), x, y, N, D, &o);
	write_emb(tu_path("four.emb"), x, y1, N, D, &o);
	write_emb(tu_path("unlabelled.emb"), x, ybad, N, D, &o);
	o.bad_dim_at = 3;
	write_emb(tu_path("baddim.emb"), x, y, N, D, &o);
	o = emb_ok;
	o.kind = STREAM_KIND_IMAGES;
	write_emb(tu_path("images.emb"), x, y, N, D, &o);
	o = emb_ok;
	o.trailer = 0;
	write_emb(tu_path("cut.emb"), x, y, N, D, &o);
	{
		float x8[N * 8] = { 0 };
		write_emb(tu_path("dim8.emb"), x8, y, N, 8, &emb_ok);
	}
	{
		int64_t y0[N] = { 0 };
		write_emb(tu_path("one.emb"), x, y0, N, D, &emb_ok);
	}
	{
		int64_t y9[N];
		for (int i = 0; i < N; i++)
			y9[i] = i == 5 ? 9 : i % PK;
		write_emb(tu_path("nine.emb"), x, y9, N, D, &emb_ok);
	}
	expect_fail("baddim.emb: record 4 (id 1003): embedding has 2 dims, expected 4",
	            "--train baddim.emb --test ok.emb");
	expect_fail("dim8.emb: embeddings of 8 dims, but ok.emb has 4", "--train ok.emb --test dim8.emb");
	expect_fail("ok.emb: record 5 (id 1004): class 4 (eel) has no items in four.emb",
	            "--train four.emb --test ok.emb");
	expect_fail("unlabelled.emb: record 8 (id 1007): no label (-1)", "--train unlabelled.emb --test ok.emb");
	expect_fail("unlabelled.emb: record 8 (id 1007): no label (-1)", "--train ok.emb --test unlabelled.emb");
	expect_fail("nine.emb: record 6 (id 1005): label 9", "--train nine.emb --test ok.emb");
	expect_fail("images.emb: a stream of kind \"images\", expected \"embeddings\"",
	            "--train images.emb --test ok.emb");
	expect_fail("labels of only 1 class", "--train one.emb --test one.emb");
	expect_fail("truncated", "--train ok.emb --test cut.emb");
	expect_fail("nope.emb", "--train nope.emb --test ok.emb");
}
END_TEST

START_TEST(test_tool_usage)
{
	static const char *bad[] = {
		"--train ok.emb",
		"--test ok.emb",
		"--train ok.emb --test ok.emb --method svm",
		"--train ok.emb --test ok.emb --method knn,knn",
		"--train ok.emb --test ok.emb --k 0",
		"--train ok.emb --test ok.emb --C -1",
		"--train ok.emb --test ok.emb --C x",
		"--train ok.emb --test ok.emb --labels 0",
		"--train ok.emb --test ok.emb --labels 200%",
		"--train ok.emb --test ok.emb --holdout 1",
		"--train ok.emb --test ok.emb --threads 0",
		"--train ok.emb --test ok.emb --bogus",
		"--train ok.emb --test ok.emb extra",
		"--train - --test -",
	};
	TuResult r;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		tu_run(&r, "cd '%s' && ssl-probe %s", tu_tmpdir(), bad[i]);
		ck_assert_msg(r.status == 2, "status %d for '%s': %s", r.status, bad[i], r.err);
		ck_assert_msg(r.outlen == 0, "stdout for '%s': %s", bad[i], r.out);
		tu_result_free(&r);
	}
	tu_run(&r, "ssl-probe --help");
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "usage: ssl-probe --train FILE --test FILE");
	tu_result_free(&r);
	tu_run(&r, "ssl-probe --version");
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "ssl-probe ");
	tu_result_free(&r);
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
	tcase_add_test(tc, test_linear_correlated);
	tcase_add_test(tc, test_knn_hand);
	tcase_add_test(tc, test_knn_select_vs_sort);
	tcase_add_test(tc, test_mlp_xor);
	tcase_add_test(tc, test_mlp_deterministic);
	suite_add_tcase(s, tc);

	tc = tcase_create("parity");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_linear_parity);
	tcase_add_test(tc, test_knn_parity);
	tcase_add_test(tc, test_select_C);
	suite_add_tcase(s, tc);

	tc = tcase_create("tool");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_tool_linear_parity);
	tcase_add_test(tc, test_tool_methods_inputs);
	tcase_add_test(tc, test_tool_bad_input);
	tcase_add_test(tc, test_tool_usage);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(probe_suite)
