/* probe: see probe.h. */
#include "eval/probe.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "data/subset.h"
#include "base/util.h"
#include "nn/gemm.h"

/* Below this many elements a loop runs on one thread: starting the team
 * costs more, and its workers, spinning after the region, would take the
 * cores from the OpenBLAS threads of the next sgemm. */
#define OMP_MIN_WORK (INT64_C(1) << 18)

/* Checked n * m element counts for our buffers. */
static size_t
count2(int64_t n, int64_t m)
{
	size_t out;
	if (n < 0 || m < 0 || size_mul((size_t)n, (size_t)m, &out) < 0)
		die("probe: %lld x %lld elements: too large", (long long)n, (long long)m);
	return out ? out : 1;
}

static void progress_report(const ProbeProgress *pg, const char *stage, int64_t done, int64_t total, const char *fmt,
                            ...) ATTR_PRINTF(5, 6);

static void
progress_report(const ProbeProgress *pg, const char *stage, int64_t done, int64_t total, const char *fmt, ...)
{
	char buf[128];
	va_list ap;
	if (!pg || !pg->fn)
		return;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(buf, sizeof buf, fmt, ap);
		va_end(ap);
	}
	pg->fn(pg->ctx, stage, done, total, fmt ? buf : NULL);
}

/* ------------------------------------------------------------------ */
/* features                                                             */

void
probe_standardize_fit(float *mean, float *scale, const float *x, int64_t n, int D)
{
	double *s = xcalloc((size_t)D, sizeof *s), *s2 = xcalloc((size_t)D, sizeof *s2);
	/* two passes in double: the variance of features with a large mean
	 * loses everything to cancellation in one float pass */
	for (int64_t i = 0; i < n; i++)
		for (int j = 0; j < D; j++)
			s[j] += x[(size_t)i * (size_t)D + (size_t)j];
	for (int j = 0; j < D; j++)
		s[j] = n > 0 ? s[j] / (double)n : 0;
	for (int64_t i = 0; i < n; i++)
		for (int j = 0; j < D; j++) {
			double d = x[(size_t)i * (size_t)D + (size_t)j] - s[j];
			s2[j] += d * d;
		}
	for (int j = 0; j < D; j++) {
		double sd = n > 0 ? sqrt(s2[j] / (double)n) : 0;
		mean[j] = (float)s[j];
		scale[j] = sd > 1e-12 ? (float)(1.0 / sd) : 1.0f;
	}
	free(s);
	free(s2);
}

void
probe_standardize_apply(float *x, int64_t n, int D, const float *mean, const float *scale)
{
#pragma omp parallel for schedule(static) if ((int64_t)n * D >= OMP_MIN_WORK)
	for (int64_t i = 0; i < n; i++) {
		float *r = x + (size_t)i * (size_t)D;
		for (int j = 0; j < D; j++)
			r[j] = (r[j] - mean[j]) * scale[j];
	}
}

void
probe_l2_normalize(float *x, int64_t n, int D)
{
#pragma omp parallel for schedule(static) if ((int64_t)n * D >= OMP_MIN_WORK)
	for (int64_t i = 0; i < n; i++) {
		float *r = x + (size_t)i * (size_t)D;
		double ss = 0;
		for (int j = 0; j < D; j++)
			ss += (double)r[j] * r[j];
		if (ss > 1e-24) {
			float inv = (float)(1.0 / sqrt(ss));
			for (int j = 0; j < D; j++)
				r[j] *= inv;
		}
	}
}

void
probe_gather(float *xo, int64_t *yo, const float *x, const int64_t *y, int D, const int64_t *idx, int64_t m)
{
	for (int64_t i = 0; i < m; i++) {
		memcpy(xo + (size_t)i * (size_t)D, x + (size_t)idx[i] * (size_t)D, (size_t)D * sizeof *xo);
		if (yo)
			yo[i] = y[idx[i]];
	}
}

void
probe_split_holdout(int64_t *fit, int64_t *nfit, int64_t *val, int64_t *nval, const int64_t *y, int64_t n, int K,
                    double val_frac, uint64_t seed)
{
	/* a seed of its own, so the split is independent of the --labels subset
	 * drawn with the same user seed */
	Rng r = rng_for(seed, 0, RNG_DOMAIN_SPLIT, 0);
	int64_t nf = subset_stratified(y, n, K, 1.0 - val_frac, -1, rng_u64(&r), fit), nv = 0, j = 0;
	for (int64_t i = 0; i < n; i++) {
		if (j < nf && fit[j] == i)
			j++;
		else
			val[nv++] = i;
	}
	*nfit = nf;
	*nval = nv;
}

/* ------------------------------------------------------------------ */
/* metrics                                                              */

int
probe_argmax(const double *s, int K)
{
	int best = 0;
	for (int c = 1; c < K; c++)
		if (s[c] > s[best])
			best = c;
	return best;
}

static void
metrics_compute_ex(Metrics *m, const double *scores, const int64_t *y, int64_t n, int K, int topk, int confusion)
{
	memset(m, 0, sizeof *m);
	m->K = K;
	m->topk = topk < K ? topk : K;
	m->n = n;
	if (confusion)
		m->confusion = xcalloc(count2(K, K), sizeof *m->confusion);
	m->class_n = xcalloc((size_t)K, sizeof *m->class_n);
	m->class_correct = xcalloc((size_t)K, sizeof *m->class_correct);
	for (int64_t i = 0; i < n; i++) {
		const double *s = scores + (size_t)i * (size_t)K;
		int t = (int)y[i], p = probe_argmax(s, K), rank = 0;
		ASSERT(t >= 0 && t < K);
		/* rank of the true class under the same tie rule as argmax */
		for (int c = 0; c < K; c++)
			if (s[c] > s[t] || (s[c] == s[t] && c < t))
				rank++;
		if (m->confusion)
			m->confusion[(size_t)t * (size_t)K + (size_t)p]++;
		m->class_n[t]++;
		if (p == t) {
			m->correct++;
			m->class_correct[t]++;
		}
		if (rank < m->topk)
			m->correct_topk++;
	}
}

void
metrics_compute(Metrics *m, const double *scores, const int64_t *y, int64_t n, int K, int topk)
{
	metrics_compute_ex(m, scores, y, n, K, topk, 1);
}

void
metrics_free(Metrics *m)
{
	free(m->confusion);
	free(m->class_n);
	free(m->class_correct);
	memset(m, 0, sizeof *m);
}

/* ------------------------------------------------------------------ */
/* linear                                                               */

void
linear_init(LinearModel *m, int K, int D)
{
	m->K = K;
	m->D = D;
	m->W = xcalloc(count2(K, D), sizeof *m->W);
	m->b = xcalloc((size_t)K, sizeof *m->b);
}

void
linear_copy(LinearModel *dst, const LinearModel *src)
{
	ASSERT(dst->K == src->K && dst->D == src->D);
	memcpy(dst->W, src->W, count2(src->K, src->D) * sizeof *dst->W);
	memcpy(dst->b, src->b, (size_t)src->K * sizeof *dst->b);
}

void
linear_free(LinearModel *m)
{
	free(m->W);
	free(m->b);
	m->W = m->b = NULL;
}

/* Everything one evaluation needs, allocated once per fit.
 *
 * With a preconditioner (L != NULL) the solver works on V = W L, where
 * L L' = S + mu I, S = X'X/n the features' second moments: the logits are
 * X W' = Xw V' with whitened features Xw = X L^-T, and the penalty is still
 * (lambda/2)||W||^2 with W = V L^-1. The problem and its minimiser are the
 * same; only the coordinates change. For correlated features (every real
 * encoder's) the Hessian in W is badly conditioned and L-BFGS crawls; in V
 * it is close to the identity (exactly so for mu = lambda and a quadratic
 * loss), and it converges in tens of iterations instead of hundreds. */
typedef struct {
	const float   *x;       /* (n, D): the features, whitened when L is set */
	const int64_t *y;
	int64_t        n;
	int            D, K;
	double         lambda;
	const double  *L, *U;   /* (D, D) lower Cholesky factor and U = L'; NULL: none */
	double        *Wd;      /* (K, D) W = V L^-1 (with L) */
	double        *Zd;      /* (K, D) lambda W L^-T, the penalty's gradient in V */
	float         *Wf;      /* (K, D) float copy of V for sgemm */
	float         *dWf;     /* (K, D) */
	float         *G;       /* (n, K) logits, then dLoss/dlogits */
	double        *rowloss; /* (n) */
} LinearCtx;

static void
linear_ctx_init(LinearCtx *c, const float *x, const int64_t *y, int64_t n, int D, int K, double lambda)
{
	memset(c, 0, sizeof *c);
	c->x = x;
	c->y = y;
	c->n = n;
	c->D = D;
	c->K = K;
	c->lambda = lambda;
	c->Wd = xcalloc(count2(K, D), sizeof *c->Wd);
	c->Zd = xcalloc(count2(K, D), sizeof *c->Zd);
	c->Wf = xcalloc(count2(K, D), sizeof *c->Wf);
	c->dWf = xcalloc(count2(K, D), sizeof *c->dWf);
	c->G = xcalloc(count2(n, K), sizeof *c->G);
	c->rowloss = xcalloc(count2(n, 1), sizeof *c->rowloss);
}

static void
linear_ctx_free(LinearCtx *c)
{
	free(c->Wd);
	free(c->Zd);
	free(c->Wf);
	free(c->dWf);
	free(c->G);
	free(c->rowloss);
}

/* w = v L^-1 for each of the K rows (w L = v: back substitution on U = L'). */
static void
precond_to_w(double *W, const double *V, const double *U, int K, int D)
{
	for (int k = 0; k < K; k++) {
		const double *v = V + (size_t)k * (size_t)D;
		double *w = W + (size_t)k * (size_t)D;
		for (int j = D - 1; j >= 0; j--) {
			const double *u = U + (size_t)j * (size_t)D;
			double s = v[j];
			for (int i = j + 1; i < D; i++)
				s -= w[i] * u[i];
			w[j] = s / u[j];
		}
	}
}

/* z = a w L^-T for each row (z L' = a w: forward substitution on L). */
static void
precond_grad(double *Z, const double *W, const double *L, double a, int K, int D)
{
	for (int k = 0; k < K; k++) {
		const double *w = W + (size_t)k * (size_t)D;
		double *z = Z + (size_t)k * (size_t)D;
		for (int j = 0; j < D; j++) {
			const double *l = L + (size_t)j * (size_t)D;
			double s = a * w[j];
			for (int i = 0; i < j; i++)
				s -= z[i] * l[i];
			z[j] = s / l[j];
		}
	}
}

/* v = w L for each row. */
static void
precond_to_v(double *V, const double *W, const double *U, int K, int D)
{
	for (int k = 0; k < K; k++) {
		const double *w = W + (size_t)k * (size_t)D;
		double *v = V + (size_t)k * (size_t)D;
		for (int j = 0; j < D; j++) {
			const double *u = U + (size_t)j * (size_t)D;
			double s = 0;
			for (int i = j; i < D; i++)
				s += w[i] * u[i];
			v[j] = s;
		}
	}
}

/* In-place Cholesky A = L L' of a symmetric (D, D) matrix (lower triangle
 * read, L written there, upper zeroed). -1 when not positive definite. */
static int
cholesky(double *A, int D)
{
	for (int j = 0; j < D; j++) {
		double *aj = A + (size_t)j * (size_t)D, d = aj[j];
		for (int k = 0; k < j; k++)
			d -= aj[k] * aj[k];
		if (!(d > 0))
			return -1;
		aj[j] = sqrt(d);
		for (int i = j + 1; i < D; i++) {
			double *ai = A + (size_t)i * (size_t)D, s = ai[j];
			for (int k = 0; k < j; k++)
				s -= ai[k] * aj[k];
			ai[j] = s / aj[j];
		}
		for (int k = j + 1; k < D; k++)
			aj[k] = 0;
	}
	return 0;
}

/* L (lower) and U = L' for S + mu I, S = X'X/n, mu = lambda plus a little
 * jitter (S is rounded in float and may be singular; any positive definite
 * L gives the same minimiser, so more jitter only costs iterations). */
static void
precond_build(double *L, double *U, const float *x, int64_t n, int D, double lambda)
{
	float *S = xcalloc(count2(D, D), sizeof *S);
	double tr = 0, mu;
	gemm_syrk_tn(D, (int)n, 1.0f / (float)n, x, D, 0.0f, S, D);
	for (int j = 0; j < D; j++)
		tr += S[(size_t)j * (size_t)D + (size_t)j];
	mu = lambda + 1e-6 * (tr / D > 0 ? tr / D : 1);
	for (;;) {
		for (int i = 0; i < D; i++)
			for (int j = 0; j <= i; j++)
				L[(size_t)i * (size_t)D + (size_t)j] = S[(size_t)i * (size_t)D + (size_t)j] + (i == j ? mu : 0);
		if (cholesky(L, D) == 0)
			break;
		mu *= 10;
	}
	for (int i = 0; i < D; i++)
		for (int j = 0; j < D; j++)
			U[(size_t)i * (size_t)D + (size_t)j] = L[(size_t)j * (size_t)D + (size_t)i];
	free(S);
}

/* Parameters theta = [V (K, D) row-major, b (K)] in double (V = W without a
 * preconditioner); returns the objective and writes its gradient with
 * respect to theta to g (NULL: objective only). */
static double
linear_eval(LinearCtx *c, const double *theta, double *g)
{
	int D = c->D, K = c->K;
	int64_t n = c->n;
	size_t KD = (size_t)K * (size_t)D;
	const double *b = theta + KD, *W = theta;
	double loss = 0, reg = 0, invn = 1.0 / (double)n;

	if (c->L) {
		precond_to_w(c->Wd, theta, c->U, K, D);
		W = c->Wd;
	}
	for (size_t j = 0; j < KD; j++) {
		c->Wf[j] = (float)theta[j];
		reg += W[j] * W[j];
	}
	/* logits = X W^T */
	gemm_serial(0, 1, (int)n, K, D, 1.0f, c->x, D, c->Wf, D, 0.0f, c->G, K);
#pragma omp parallel for schedule(static) if ((int64_t)n * K >= OMP_MIN_WORK / 16)
	for (int64_t i = 0; i < n; i++) {
		float *gi = c->G + (size_t)i * (size_t)K;
		int yi = (int)c->y[i];
		double mx = -INFINITY, se = 0, lse;
		for (int k = 0; k < K; k++)
			mx = fmax(mx, (double)gi[k] + b[k]);
		for (int k = 0; k < K; k++)
			se += exp((double)gi[k] + b[k] - mx);
		lse = mx + log(se);
		c->rowloss[i] = lse - ((double)gi[yi] + b[yi]);
		for (int k = 0; k < K; k++) {
			double p = exp((double)gi[k] + b[k] - lse);
			gi[k] = (float)((p - (k == yi)) * invn);
		}
	}
	/* a fixed summation order keeps results independent of threads */
	for (int64_t i = 0; i < n; i++)
		loss += c->rowloss[i];
	loss = loss * invn + 0.5 * c->lambda * reg;
	if (!g)
		return loss;
	/* dW = G^T X, db = column sums of G */
	gemm_serial(1, 0, K, D, (int)n, 1.0f, c->G, K, c->x, D, 0.0f, c->dWf, D);
	if (c->L) {
		precond_grad(c->Zd, W, c->L, c->lambda, K, D);
		for (size_t j = 0; j < KD; j++)
			g[j] = (double)c->dWf[j] + c->Zd[j];
	} else {
		for (size_t j = 0; j < KD; j++)
			g[j] = (double)c->dWf[j] + c->lambda * theta[j];
	}
	for (int k = 0; k < K; k++)
		g[KD + (size_t)k] = 0;
	for (int64_t i = 0; i < n; i++)
		for (int k = 0; k < K; k++)
			g[KD + (size_t)k] += c->G[(size_t)i * (size_t)K + (size_t)k];
	return loss;
}

static double
linear_lbfgs_func(void *ctx, const double *x, double *g, int64_t n)
{
	(void)n;
	return linear_eval(ctx, x, g);
}

static double
linear_lambda(double C, int64_t n)
{
	return 1.0 / (C * (double)n);
}

static void
linear_to_theta(double *theta, const LinearModel *m)
{
	size_t KD = count2(m->K, m->D);
	for (size_t j = 0; j < KD; j++)
		theta[j] = m->W[j];
	for (int k = 0; k < m->K; k++)
		theta[KD + (size_t)k] = m->b[k];
}

static void
linear_from_theta(LinearModel *m, const double *theta)
{
	size_t KD = count2(m->K, m->D);
	for (size_t j = 0; j < KD; j++)
		m->W[j] = (float)theta[j];
	for (int k = 0; k < m->K; k++)
		m->b[k] = (float)theta[KD + (size_t)k];
}

double
linear_objective(const LinearModel *m, double *dW, double *db, const float *x, const int64_t *y, int64_t n, double C)
{
	LinearCtx c;
	size_t KD = count2(m->K, m->D), np;
	double *theta, *g = NULL, f;
	if (size_add(KD, (size_t)m->K, &np) < 0)
		die("probe: too many parameters");
	theta = xcalloc(np, sizeof *theta);
	if (dW || db)
		g = xcalloc(np, sizeof *g);
	linear_ctx_init(&c, x, y, n, m->D, m->K, linear_lambda(C, n));
	linear_to_theta(theta, m);
	f = linear_eval(&c, theta, g);
	if (dW)
		memcpy(dW, g, KD * sizeof *dW);
	if (db)
		memcpy(db, g + KD, (size_t)m->K * sizeof *db);
	linear_ctx_free(&c);
	free(theta);
	free(g);
	return f;
}

typedef struct {
	const ProbeProgress *pg;
	int                  max_iter;
} StepProgress;

static void
linear_step_progress(void *ctx, const LbfgsResult *now)
{
	const StepProgress *sp = ctx;
	/* the iteration limit is the only total known in advance */
	progress_report(sp->pg, "linear", now->iters, sp->max_iter, "objective %.6g, max |gradient| %.2g", now->f,
	                now->gmax);
}

int
linear_fit(LinearModel *m, LbfgsResult *res, const float *x, const int64_t *y, int64_t n, double C,
           const LbfgsParams *lp, const ProbeProgress *pg)
{
	LbfgsParams p = *lp;
	StepProgress sp = { pg, lp->max_iter };
	LinearCtx c;
	size_t np, KD = count2(m->K, m->D), DD = count2(m->D, m->D), nD = count2(n, m->D);
	double *theta, *L = xcalloc(DD, sizeof *L), *U = xcalloc(DD, sizeof *U), *Wd, lambda = linear_lambda(C, n);
	float *Lf = xcalloc(DD, sizeof *Lf), *xw = xcalloc(nD, sizeof *xw);
	int rc, D = m->D, K = m->K;
	if (size_add(KD, (size_t)K, &np) < 0)
		die("probe: too many parameters");
	theta = xcalloc(np, sizeof *theta);
	Wd = xcalloc(KD, sizeof *Wd);

	/* whitened features xw = x L^-T (see LinearCtx) */
	precond_build(L, U, x, n, D, lambda);
	for (size_t j = 0; j < DD; j++)
		Lf[j] = (float)L[j];
	memcpy(xw, x, nD * sizeof *xw);
	gemm_trsm_rlt((int)n, D, Lf, D, xw, D);

	linear_ctx_init(&c, xw, y, n, D, K, lambda);
	c.L = L;
	c.U = U;
	/* the warm start, moved into V = W L */
	linear_to_theta(theta, m);
	memcpy(Wd, theta, KD * sizeof *Wd);
	precond_to_v(theta, Wd, U, K, D);
	if (pg && pg->fn) {
		p.on_step = linear_step_progress;
		p.on_step_ctx = &sp;
	}
	rc = lbfgs_minimize(res, theta, (int64_t)np, linear_lbfgs_func, &c, &p);
	precond_to_w(Wd, theta, U, K, D);
	memcpy(theta, Wd, KD * sizeof *Wd);
	linear_from_theta(m, theta);
	linear_ctx_free(&c);
	/* report the objective and gradient of the problem as posed (in W,
	 * on the features as given), not of the whitened coordinates */
	{
		double *g = xcalloc(np, sizeof *g), gmax = 0;
		linear_ctx_init(&c, x, y, n, D, K, lambda);
		linear_to_theta(theta, m);
		res->f = linear_eval(&c, theta, g);
		for (size_t j = 0; j < np; j++)
			gmax = fmax(gmax, fabs(g[j]));
		res->gmax = gmax;
		linear_ctx_free(&c);
		free(g);
	}
	free(theta);
	free(Wd);
	free(L);
	free(U);
	free(Lf);
	free(xw);
	return rc;
}

void
linear_scores(double *scores, const LinearModel *m, const float *x, int64_t n)
{
	int K = m->K;
	float *L = xcalloc(count2(n, K), sizeof *L);
	gemm_serial(0, 1, (int)n, K, m->D, 1.0f, x, m->D, m->W, m->D, 0.0f, L, K);
	for (int64_t i = 0; i < n; i++)
		for (int k = 0; k < K; k++)
			scores[(size_t)i * (size_t)K + (size_t)k] = (double)L[(size_t)i * (size_t)K + (size_t)k] + m->b[k];
	free(L);
}

/* Mean cross-entropy and accuracy of scores (n, K). */
static void
scores_loss_acc(double *loss, double *acc, const double *scores, const int64_t *y, int64_t n, int K)
{
	double l = 0;
	int64_t ok = 0;
	for (int64_t i = 0; i < n; i++) {
		const double *s = scores + (size_t)i * (size_t)K;
		double mx = s[probe_argmax(s, K)], se = 0;
		for (int k = 0; k < K; k++)
			se += exp(s[k] - mx);
		l += mx + log(se) - s[y[i]];
		ok += probe_argmax(s, K) == y[i];
	}
	*loss = n > 0 ? l / (double)n : 0;
	*acc = n > 0 ? (double)ok / (double)n : 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double
linear_select_C(LinearSearch *s, const float *x, const int64_t *y, int64_t n, int D, int K, const double *grid,
                int ngrid, double val_frac, uint64_t seed, const LbfgsParams *lp, const ProbeProgress *pg)
{
	int64_t *fit = xcalloc(count2(n, 1), sizeof *fit), *val = xcalloc(count2(n, 1), sizeof *val);
	int64_t nfit, nval, *yfit, *yval;
	float *xfit, *xval;
	double *scores, sorted[PROBE_MAX_GRID];
	LinearModel m;
	int worse = 0;

	ASSERT(ngrid >= 1 && ngrid <= PROBE_MAX_GRID);
	memset(s, 0, sizeof *s);
	memcpy(sorted, grid, (size_t)ngrid * sizeof *sorted);
	qsort(sorted, (size_t)ngrid, sizeof *sorted, cmp_double);
	probe_split_holdout(fit, &nfit, val, &nval, y, n, K, val_frac, seed);
	s->nfit = nfit;
	s->nval = nval;
	if (nval == 0 || ngrid == 1) {
		/* nothing to choose with (or from): the middle of the grid */
		s->n = 1;
		s->C[0] = sorted[(ngrid - 1) / 2];
		s->val_acc[0] = s->val_loss[0] = NAN;
		free(fit);
		free(val);
		return s->C[0];
	}
	xfit = xcalloc(count2(nfit, D), sizeof *xfit);
	yfit = xcalloc(count2(nfit, 1), sizeof *yfit);
	xval = xcalloc(count2(nval, D), sizeof *xval);
	yval = xcalloc(count2(nval, 1), sizeof *yval);
	scores = xcalloc(count2(nval, K), sizeof *scores);
	probe_gather(xfit, yfit, x, y, D, fit, nfit);
	probe_gather(xval, yval, x, y, D, val, nval);
	linear_init(&m, K, D);
	/* increasing C = decreasing regularisation: each fit starts from the
	 * previous optimum, which is close and cheaper to move from. The
	 * criterion is validation cross-entropy, not accuracy: on the small
	 * validation sets of the few-label protocols accuracy moves in steps
	 * of one item and picks by noise; the log-loss is smooth in C. */
	for (int i = 0; i < ngrid; i++) {
		LbfgsResult res;
		int b = s->best;
		linear_fit(&m, &res, xfit, yfit, nfit, sorted[i], lp, NULL);
		linear_scores(scores, &m, xval, nval);
		s->C[i] = sorted[i];
		scores_loss_acc(&s->val_loss[i], &s->val_acc[i], scores, yval, nval, K);
		s->n = i + 1;
		progress_report(pg, "C search", i + 1, ngrid, "C %g: val loss %.4f", s->C[i], s->val_loss[i]);
		if (i == 0 || s->val_loss[i] < s->val_loss[b]) {
			s->best = i;
			worse = 0;
		} else if (++worse >= 2) {
			break;
		}
	}
	linear_free(&m);
	free(fit);
	free(val);
	free(xfit);
	free(yfit);
	free(xval);
	free(yval);
	free(scores);
	return s->C[s->best];
}

/* ------------------------------------------------------------------ */
/* kNN                                                                  */

/* a before b: more similar, or as similar and a lower index */
static int
nb_better(float sa, int64_t ia, float sb, int64_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

/* Sift down in a heap whose root is the worst kept neighbour. */
static void
nb_sift(float *hs, int64_t *hi, int k, int at)
{
	for (;;) {
		int l = 2 * at + 1, r = l + 1, w = at;
		if (l < k && nb_better(hs[w], hi[w], hs[l], hi[l]))
			w = l;
		if (r < k && nb_better(hs[w], hi[w], hs[r], hi[r]))
			w = r;
		if (w == at)
			return;
		float ts = hs[at];
		int64_t ti = hi[at];
		hs[at] = hs[w];
		hi[at] = hi[w];
		hs[w] = ts;
		hi[w] = ti;
		at = w;
	}
}

/* The k best of sims[0..n) into hs/hi, sorted best first (heap select, then
 * heap sort: O(n log k), and every tie resolved by index). */
static void
nb_select(float *hs, int64_t *hi, const float *sims, int64_t n, int k)
{
	for (int j = 0; j < k; j++) {
		hs[j] = sims[j];
		hi[j] = j;
	}
	for (int j = k / 2 - 1; j >= 0; j--)
		nb_sift(hs, hi, k, j);
	for (int64_t j = k; j < n; j++) {
		if (nb_better(sims[j], j, hs[0], hi[0])) {
			hs[0] = sims[j];
			hi[0] = j;
			nb_sift(hs, hi, k, 0);
		}
	}
	/* repeatedly move the worst to the end: best first */
	for (int end = k - 1; end > 0; end--) {
		float ts = hs[0];
		int64_t ti = hi[0];
		hs[0] = hs[end];
		hi[0] = hi[end];
		hs[end] = ts;
		hi[end] = ti;
		nb_sift(hs, hi, end, 0);
	}
}

void
knn_scores(double *votes, const float *train, const int64_t *y, int64_t n, const float *query, int64_t nq, int D,
           int K, int k, double T, const ProbeProgress *pg)
{
	/* queries per sgemm: 256, fewer when n is so large that the (QB, n)
	 * similarity block would pass 128 MiB */
	int QB = n > (1 << 25) / 256 ? (int)((1 << 25) / n > 0 ? (1 << 25) / n : 1) : 256;
	int kk = (int64_t)k < n ? k : (int)n;
	float *sims = xcalloc(count2(QB, n), sizeof *sims);
	float *hs = xcalloc(count2(QB, kk), sizeof *hs);
	int64_t *hi = xcalloc(count2(QB, kk), sizeof *hi);

	ASSERT(n > 0 && kk > 0);
	for (int64_t q0 = 0; q0 < nq; q0 += QB) {
		int qb = nq - q0 < QB ? (int)(nq - q0) : QB;
		gemm_serial(0, 1, qb, (int)n, D, 1.0f, query + (size_t)q0 * (size_t)D, D, train, D, 0.0f,
		            sims, (int)n);
#pragma omp parallel for schedule(dynamic, 4) if ((int64_t)qb * n >= OMP_MIN_WORK)
		for (int q = 0; q < qb; q++) {
			float *s = hs + (size_t)q * (size_t)kk;
			int64_t *ix = hi + (size_t)q * (size_t)kk;
			double *v = votes + (size_t)(q0 + q) * (size_t)K;
			nb_select(s, ix, sims + (size_t)q * (size_t)n, n, kk);
			for (int c = 0; c < K; c++)
				v[c] = 0;
			for (int j = 0; j < kk; j++)
				v[y[ix[j]]] += exp((double)s[j] / T);
		}
		progress_report(pg, "knn", q0 + qb, nq, NULL);
	}
	free(sims);
	free(hs);
	free(hi);
}

/* ------------------------------------------------------------------ */
/* MLP                                                                  */

void
mlp_options_default(MlpOptions *o)
{
	o->hidden = 512;
	o->max_epochs = 100;
	o->batch = 256;
	o->patience = 10;
	o->lr = 1e-3;
	o->weight_decay = 0;
	o->seed = 0;
}

void
mlp_alloc(MlpModel *m, int D, int H, int K)
{
	size_t nW1 = count2(H, D), nW2 = count2(K, H), np = nW1 + (size_t)H + nW2 + (size_t)K;
	memset(m, 0, sizeof *m);
	m->D = D;
	m->H = H;
	m->K = K;
	m->params = xcalloc(np, sizeof *m->params);
	m->W1 = m->params;
	m->b1 = m->W1 + nW1;
	m->W2 = m->b1 + H;
	m->b2 = m->W2 + nW2;
}

static size_t
mlp_nparams(const MlpModel *m)
{
	return count2(m->H, m->D) + (size_t)m->H + count2(m->K, m->H) + (size_t)m->K;
}

/* Buffers for a forward/backward pass over up to B rows. */
typedef struct {
	int    B;
	float *xb;     /* (B, D) */
	float *h;      /* (B, H) pre-activation, then ReLU output */
	float *mask;   /* (B, H) 1 where the pre-activation was > 0 */
	float *out;    /* (B, K) logits, then dlogits */
	float *dh;     /* (B, H) */
	float *grad;   /* like params */
} MlpWork;

static void
mlp_work_init(MlpWork *w, const MlpModel *m, int B)
{
	w->B = B;
	w->xb = xcalloc(count2(B, m->D), sizeof *w->xb);
	w->h = xcalloc(count2(B, m->H), sizeof *w->h);
	w->mask = xcalloc(count2(B, m->H), sizeof *w->mask);
	w->out = xcalloc(count2(B, m->K), sizeof *w->out);
	w->dh = xcalloc(count2(B, m->H), sizeof *w->dh);
	w->grad = xcalloc(mlp_nparams(m), sizeof *w->grad);
}

static void
mlp_work_free(MlpWork *w)
{
	free(w->xb);
	free(w->h);
	free(w->mask);
	free(w->out);
	free(w->dh);
	free(w->grad);
}

/* logits (b, K) into w->out for the rows in w->xb. */
static void
mlp_forward(MlpWork *w, const MlpModel *m, int b)
{
	int D = m->D, H = m->H, K = m->K;
	gemm_serial(0, 1, b, H, D, 1.0f, w->xb, D, m->W1, D, 0.0f, w->h, H);
	/* no OpenMP in the MLP's small elementwise loops: between sgemm calls
	 * the spinning OpenMP workers would take the cores OpenBLAS needs */
	for (int i = 0; i < b; i++)
		for (int j = 0; j < H; j++) {
			size_t at = (size_t)i * (size_t)H + (size_t)j;
			float v = w->h[at] + m->b1[j];
			w->mask[at] = v > 0 ? 1.0f : 0.0f;
			w->h[at] = v > 0 ? v : 0.0f;
		}
	gemm_serial(0, 1, b, K, H, 1.0f, w->h, H, m->W2, H, 0.0f, w->out, K);
	for (int i = 0; i < b; i++)
		for (int k = 0; k < K; k++)
			w->out[(size_t)i * (size_t)K + (size_t)k] += m->b2[k];
}

/* Mean cross-entropy of w->out against y; replaces w->out by dloss/dlogits. */
static double
mlp_loss_grad(MlpWork *w, const MlpModel *m, const int64_t *y, int b)
{
	int K = m->K;
	double loss = 0;
	for (int i = 0; i < b; i++) {
		float *o = w->out + (size_t)i * (size_t)K;
		double mx = -INFINITY, se = 0, lse;
		for (int k = 0; k < K; k++)
			mx = fmax(mx, o[k]);
		for (int k = 0; k < K; k++)
			se += exp(o[k] - mx);
		lse = mx + log(se);
		loss += lse - o[y[i]];
		for (int k = 0; k < K; k++)
			o[k] = (float)((exp(o[k] - lse) - (k == y[i])) / b);
	}
	return loss / b;
}

static void
mlp_backward(MlpWork *w, const MlpModel *m, int b)
{
	int D = m->D, H = m->H, K = m->K;
	float *gW1 = w->grad, *gb1 = gW1 + count2(H, D), *gW2 = gb1 + H, *gb2 = gW2 + count2(K, H);
	/* dW2 = dout^T h, db2 = sum dout, dh = dout W2 masked, dW1 = dh^T x */
	gemm_serial(1, 0, K, H, b, 1.0f, w->out, K, w->h, H, 0.0f, gW2, H);
	for (int k = 0; k < K; k++) {
		float s = 0;
		for (int i = 0; i < b; i++)
			s += w->out[(size_t)i * (size_t)K + (size_t)k];
		gb2[k] = s;
	}
	gemm_serial(0, 0, b, H, K, 1.0f, w->out, K, m->W2, H, 0.0f, w->dh, H);
	for (size_t j = 0; j < (size_t)b * (size_t)H; j++)
		w->dh[j] *= w->mask[j];
	gemm_serial(1, 0, H, D, b, 1.0f, w->dh, H, w->xb, D, 0.0f, gW1, D);
	for (int j = 0; j < H; j++)
		gb1[j] = 0;
	for (int i = 0; i < b; i++)
		for (int j = 0; j < H; j++)
			gb1[j] += w->dh[(size_t)i * (size_t)H + (size_t)j];
}

/* Mean loss and accuracy over (x, y) in batches of w->B. */
static void
mlp_evaluate(double *loss, double *acc, MlpWork *w, const MlpModel *m, const float *x, const int64_t *y, int64_t n)
{
	double l = 0;
	int64_t ok = 0;
	for (int64_t i0 = 0; i0 < n; i0 += w->B) {
		int b = n - i0 < w->B ? (int)(n - i0) : w->B;
		memcpy(w->xb, x + (size_t)i0 * (size_t)m->D, count2(b, m->D) * sizeof *w->xb);
		mlp_forward(w, m, b);
		for (int i = 0; i < b; i++) {
			const float *o = w->out + (size_t)i * (size_t)m->K;
			int p = 0;
			for (int k = 1; k < m->K; k++)
				if (o[k] > o[p])
					p = k;
			ok += p == y[i0 + i];
		}
		l += mlp_loss_grad(w, m, y + i0, b) * b;
	}
	*loss = n > 0 ? l / (double)n : 0;
	*acc = n > 0 ? (double)ok / (double)n : 0;
}

void
mlp_fit(MlpModel *m, const float *xfit, const int64_t *yfit, int64_t nfit, const float *xval, const int64_t *yval,
        int64_t nval, int D, int K, const MlpOptions *o, const ProbeProgress *pg)
{
	int H = o->hidden, B = (int64_t)o->batch < nfit ? o->batch : (int)nfit, bad = 0;
	size_t np;
	float *mom, *vel, *best;
	int64_t *perm = xcalloc(count2(nfit, 1), sizeof *perm), *yb = xcalloc((size_t)B, sizeof *yb);
	MlpWork w;
	Rng r = rng_for(o->seed, 0, RNG_DOMAIN_INIT, 0);
	double b1p = 1, b2p = 1;
	const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

	ASSERT(nfit > 0 && H > 0 && B > 0);
	mlp_alloc(m, D, H, K);
	np = mlp_nparams(m);
	/* PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
	for (size_t j = 0; j < count2(H, D) + (size_t)H; j++)
		m->W1[j] = (float)rng_uniform_range(&r, -1.0 / sqrt(D), 1.0 / sqrt(D));
	for (size_t j = 0; j < count2(K, H) + (size_t)K; j++)
		m->W2[j] = (float)rng_uniform_range(&r, -1.0 / sqrt(H), 1.0 / sqrt(H));
	mom = xcalloc(np, sizeof *mom);
	vel = xcalloc(np, sizeof *vel);
	best = xcalloc(np, sizeof *best);
	mlp_work_init(&w, m, B);
	m->best_val_loss = INFINITY;

	for (int ep = 0; ep < o->max_epochs; ep++) {
		Rng sr = rng_for(o->seed, (uint64_t)ep, RNG_DOMAIN_SHUFFLE, 0);
		double vloss, vacc;
		for (int64_t i = 0; i < nfit; i++)
			perm[i] = i;
		rng_shuffle_i64(&sr, perm, nfit);
		/* a short last batch would be a noisy step: dropped, as
		 * DataLoader(drop_last=True) does; B <= nfit keeps one batch */
		for (int64_t i0 = 0; i0 + B <= nfit; i0 += B) {
			int b = B;
			double lr_t;
			probe_gather(w.xb, yb, xfit, yfit, D, perm + i0, b);
			mlp_forward(&w, m, b);
			mlp_loss_grad(&w, m, yb, b);
			mlp_backward(&w, m, b);
			b1p *= beta1;
			b2p *= beta2;
			lr_t = o->lr * sqrt(1 - b2p) / (1 - b1p);
			for (size_t j = 0; j < np; j++) {
				float gj = w.grad[j];
				mom[j] = (float)(beta1 * mom[j] + (1 - beta1) * gj);
				vel[j] = (float)(beta2 * vel[j] + (1 - beta2) * gj * gj);
				m->params[j] -= (float)(lr_t * mom[j] / (sqrt(vel[j]) + eps * sqrt(1 - b2p)) +
				                        o->lr * o->weight_decay * m->params[j]);
			}
		}
		m->epochs_run = ep + 1;
		if (nval == 0)
			continue;
		mlp_evaluate(&vloss, &vacc, &w, m, xval, yval, nval);
		progress_report(pg, "mlp", ep + 1, o->max_epochs, "val loss %.4f", vloss);
		if (vloss < m->best_val_loss) {
			m->best_val_loss = vloss;
			m->best_val_acc = vacc;
			m->best_epoch = ep + 1;
			memcpy(best, m->params, np * sizeof *best);
			bad = 0;
		} else if (++bad >= o->patience) {
			break;
		}
	}
	if (nval > 0 && m->best_epoch > 0)
		memcpy(m->params, best, np * sizeof *best);
	mlp_work_free(&w);
	free(mom);
	free(vel);
	free(best);
	free(perm);
	free(yb);
}

void
mlp_scores(double *scores, const MlpModel *m, const float *x, int64_t n)
{
	MlpWork w;
	mlp_work_init(&w, m, 256);
	for (int64_t i0 = 0; i0 < n; i0 += w.B) {
		int b = n - i0 < w.B ? (int)(n - i0) : w.B;
		memcpy(w.xb, x + (size_t)i0 * (size_t)m->D, count2(b, m->D) * sizeof *w.xb);
		mlp_forward(&w, m, b);
		for (size_t j = 0; j < count2(b, m->K); j++)
			scores[(size_t)i0 * (size_t)m->K + j] = w.out[j];
	}
	mlp_work_free(&w);
}

void
mlp_free(MlpModel *m)
{
	free(m->params);
	m->params = m->W1 = m->b1 = m->W2 = m->b2 = NULL;
}

/* ------------------------------------------------------------------ */
/* one run                                                              */

static const char *const method_names[] = {
	[PROBE_LINEAR] = "linear",
	[PROBE_KNN] = "knn",
	[PROBE_MLP] = "mlp",
};

const char *
probe_method_name(ProbeMethod m)
{
	return method_names[m];
}

int
probe_method_parse(const char *s, ProbeMethod *m)
{
	for (size_t i = 0; i < sizeof method_names / sizeof method_names[0]; i++) {
		if (strcmp(s, method_names[i]) == 0) {
			*m = (ProbeMethod)i;
			return 0;
		}
	}
	return -1;
}

void
probe_config_default(ProbeConfig *c)
{
	memset(c, 0, sizeof *c);
	c->method = PROBE_LINEAR;
	c->C = 0;
	/* decades around C = 1; with standardised features the optimum for
	 * good representations sits well inside */
	c->ngrid = 8;
	for (int i = 0; i < c->ngrid; i++)
		c->grid[i] = pow(10.0, i - 4);
	c->val_frac = 0.2;
	lbfgs_params_default(&c->lbfgs);
	c->k = 200;
	c->T = 0.1;
	mlp_options_default(&c->mlp);
	c->seed = 0;
}

static float *
copy_floats(const float *x, int64_t n, int D)
{
	size_t m = count2(n, D);
	float *y = xcalloc(m, sizeof *y);
	memcpy(y, x, m * sizeof *y);
	return y;
}

void
probe_run(ProbeResult *r, const ProbeConfig *cfg, const float *xtrain, const int64_t *ytrain, int64_t ntrain,
          const float *xtest, const int64_t *ytest, int64_t ntest, int D, int K)
{
	double t0 = now_seconds();
	float *xtr = copy_floats(xtrain, ntrain, D), *xte = copy_floats(xtest, ntest, D);
	double *scores = xcalloc(count2(ntest, K), sizeof *scores);

	ASSERT(ntrain > 0 && K >= 2 && D >= 1);
	memset(r, 0, sizeof *r);
	r->cfg = *cfg;
	if (cfg->method == PROBE_KNN) {
		probe_l2_normalize(xtr, ntrain, D);
		probe_l2_normalize(xte, ntest, D);
		r->k_used = (int64_t)cfg->k < ntrain ? cfg->k : (int)ntrain;
		knn_scores(scores, xtr, ytrain, ntrain, xte, ntest, D, K, cfg->k, cfg->T, &cfg->progress);
	} else {
		float *mean = r->mean = xcalloc((size_t)D, sizeof *mean), *scale = r->scale = xcalloc((size_t)D, sizeof *scale);
		probe_standardize_fit(mean, scale, xtr, ntrain, D);
		probe_standardize_apply(xtr, ntrain, D, mean, scale);
		probe_standardize_apply(xte, ntest, D, mean, scale);
		if (cfg->method == PROBE_LINEAR) {
			LinearModel *m = &r->linear;
			if (cfg->C > 0) {
				r->C = cfg->C;
			} else {
				r->C = linear_select_C(&r->search, xtr, ytrain, ntrain, D, K, cfg->grid, cfg->ngrid,
				                       cfg->val_frac, cfg->seed, &cfg->lbfgs, &cfg->progress);
				r->C_chosen = 1;
				r->nfit = r->search.nfit;
				r->nval = r->search.nval;
			}
			r->lambda = linear_lambda(r->C, ntrain);
			linear_init(m, K, D);
			linear_fit(m, &r->opt, xtr, ytrain, ntrain, r->C, &cfg->lbfgs, &cfg->progress);
			linear_scores(scores, m, xte, ntest);
		} else {
			int64_t *fit = xcalloc(count2(ntrain, 1), sizeof *fit), *val = xcalloc(count2(ntrain, 1), sizeof *val);
			int64_t *yfit, *yval;
			float *xfit, *xval;
			probe_split_holdout(fit, &r->nfit, val, &r->nval, ytrain, ntrain, K, cfg->val_frac, cfg->seed);
			xfit = xcalloc(count2(r->nfit, D), sizeof *xfit);
			yfit = xcalloc(count2(r->nfit, 1), sizeof *yfit);
			xval = xcalloc(count2(r->nval, D), sizeof *xval);
			yval = xcalloc(count2(r->nval, 1), sizeof *yval);
			probe_gather(xfit, yfit, xtr, ytrain, D, fit, r->nfit);
			probe_gather(xval, yval, xtr, ytrain, D, val, r->nval);
			r->cfg.mlp.seed = cfg->seed;
			mlp_fit(&r->mlp, xfit, yfit, r->nfit, xval, yval, r->nval, D, K, &r->cfg.mlp, &cfg->progress);
			mlp_scores(scores, &r->mlp, xte, ntest);
			free(fit);
			free(val);
			free(xfit);
			free(yfit);
			free(xval);
			free(yval);
		}
	}
	metrics_compute_ex(&r->metrics, scores, ytest, ntest, K, 5, cfg->confusion || K <= PROBE_CONFUSION_AUTO);
	r->seconds = now_seconds() - t0;
	free(xtr);
	free(xte);
	free(scores);
}

void
probe_result_free(ProbeResult *r)
{
	metrics_free(&r->metrics);
	linear_free(&r->linear);
	mlp_free(&r->mlp);
	free(r->mean);
	free(r->scale);
	r->mean = r->scale = NULL;
}

/* ------------------------------------------------------------------ */
/* reports                                                              */

static double
ratio(int64_t a, int64_t b)
{
	return b > 0 ? (double)a / (double)b : NAN;
}

static void
report_settings_text(FILE *fp, const ProbeResult *r)
{
	const ProbeConfig *c = &r->cfg;
	switch (c->method) {
	case PROBE_LINEAR:
		fprintf(fp, "C          %g (lambda %.4g = 1/(C n))", r->C, r->lambda);
		if (r->C_chosen && r->search.nval > 0)
			fprintf(fp, ", chosen by cross-entropy on a held-out %g%% of the training items (%lld fit, %lld val)\n",
			        100 * c->val_frac, (long long)r->search.nfit, (long long)r->search.nval);
		else if (r->C_chosen)
			fprintf(fp, ", the middle of the grid: too few items to hold any out\n");
		else
			fprintf(fp, ", given\n");
		if (r->C_chosen && r->search.nval > 0) {
			fprintf(fp, "C search  ");
			for (int i = 0; i < r->search.n; i++)
				fprintf(fp, "%s%g: %.4f %.2f%%%s", i ? ", " : " ", r->search.C[i], r->search.val_loss[i],
				        100 * r->search.val_acc[i], i == r->search.best ? " *" : "");
			fprintf(fp, "  (validation loss, accuracy)\n");
		}
		fprintf(fp, "optimizer  L-BFGS, %d iterations, %d evaluations, %s, max |gradient| %.2g, objective %.6g\n",
		        r->opt.iters, r->opt.evals, lbfgs_status_str(r->opt.status), r->opt.gmax, r->opt.f);
		break;
	case PROBE_KNN:
		fprintf(fp, "k          %d", r->k_used);
		if (r->k_used != c->k)
			fprintf(fp, " (%d asked, more than the training items)", c->k);
		fprintf(fp, "\nT          %g (votes weighted exp(cosine similarity / T))\n", c->T);
		break;
	case PROBE_MLP:
		fprintf(fp, "network    %d hidden units (ReLU), Adam lr %g, weight decay %g, batch %d\n", c->mlp.hidden,
		        c->mlp.lr, c->mlp.weight_decay, c->mlp.batch);
		if (r->nval > 0)
			fprintf(fp, "epochs     %d run, best %d (validation loss %.4f, accuracy %.2f%%; held-out %g%%: %lld fit, "
			            "%lld val; patience %d)\n",
			        r->mlp.epochs_run, r->mlp.best_epoch, r->mlp.best_val_loss, 100 * r->mlp.best_val_acc,
			        100 * c->val_frac, (long long)r->nfit, (long long)r->nval, c->mlp.patience);
		else
			fprintf(fp, "epochs     %d (too few items to hold any out: no early stopping)\n", r->mlp.epochs_run);
		break;
	}
}

/* Class c's index in the stream header (the probe keeps only the classes
 * with training items). */
static int
class_id(const ProbeDataInfo *info, int c)
{
	return info->class_ids ? info->class_ids[c] : c;
}

void
probe_report_text(FILE *fp, const ProbeResult *r, const ProbeDataInfo *info)
{
	const Metrics *m = &r->metrics;
	int K = m->K, w = 5;

	fprintf(fp, "method     %s\n", probe_method_name(r->cfg.method));
	fprintf(fp, "train      %s: %lld of %lld items", info->train_name, (long long)info->ntrain,
	        (long long)info->ntrain_total);
	if (info->labels_spec)
		fprintf(fp, " (labels %s, seed %llu)", info->labels_spec, (unsigned long long)info->seed);
	fprintf(fp, "\ntest       %s: %lld items\n", info->test_name, (long long)info->ntest);
	fprintf(fp, "features   %d dims, %d classes\n", info->D, K);
	report_settings_text(fp, r);
	fprintf(fp, "time       %.2f s\n", r->seconds);
	fprintf(fp, "top-1      %.2f%%  (%lld/%lld)\n", 100 * ratio(m->correct, m->n), (long long)m->correct,
	        (long long)m->n);
	fprintf(fp, "top-%d      %.2f%%  (%lld/%lld)\n", m->topk, 100 * ratio(m->correct_topk, m->n),
	        (long long)m->correct_topk, (long long)m->n);

	fprintf(fp, "\nper-class accuracy\n");
	for (int c = 0; c < K; c++) {
		char name[64];   /* from the stream: shown safely, cut to fit the column */
		snprintf(name, sizeof name, "%s", info->classes[c]);
		str_printable(name);
		if (m->class_n[c] > 0)
			fprintf(fp, "  %3d %-20s %7.2f%%  (%lld/%lld)\n", class_id(info, c), name,
			        100 * ratio(m->class_correct[c], m->class_n[c]), (long long)m->class_correct[c],
			        (long long)m->class_n[c]);
		else
			fprintf(fp, "  %3d %-20s       -   (no test items)\n", class_id(info, c), name);
	}

	if (!m->confusion) {
		fprintf(fp, "\nconfusion matrix: not shown for %d classes (--confusion shows it)\n", K);
		return;
	}
	for (int64_t i = 0; i < (int64_t)K * K; i++) {
		int d = snprintf(NULL, 0, "%lld", (long long)m->confusion[i]);
		if (d + 1 > w)
			w = d + 1;
	}
	fprintf(fp, "\nconfusion matrix (rows: true class, columns: predicted class)\n      ");
	for (int c = 0; c < K; c++)
		fprintf(fp, "%*d", w, class_id(info, c));
	fputc('\n', fp);
	for (int t = 0; t < K; t++) {
		fprintf(fp, "  %3d ", class_id(info, t));
		for (int p = 0; p < K; p++)
			fprintf(fp, "%*lld", w, (long long)m->confusion[(size_t)t * (size_t)K + (size_t)p]);
		fputc('\n', fp);
	}
}

/* json_real refuses NaN and infinities: those become null. */
static json_t *
jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *
probe_data_json(const ProbeDataInfo *info)
{
	json_t *o = json_object(), *classes = json_array();
	for (int c = 0; c < info->K; c++)
		json_array_append_new(classes, json_string(info->classes[c]));
	json_object_set_new(o, "train", json_pack("{s:s, s:I, s:I, s:o, s:I}", "name", info->train_name, "items",
	                                          (json_int_t)info->ntrain_total, "items_used",
	                                          (json_int_t)info->ntrain, "labels",
	                                          info->labels_spec ? json_string(info->labels_spec) : json_null(),
	                                          "seed", (json_int_t)info->seed));
	json_object_set_new(o, "test", json_pack("{s:s, s:I}", "name", info->test_name, "items", (json_int_t)info->ntest));
	json_object_set_new(o, "dim", json_integer(info->D));
	json_object_set_new(o, "classes", classes);
	return o;
}

static json_t *
settings_json(const ProbeResult *r)
{
	const ProbeConfig *c = &r->cfg;
	json_t *s = json_object();
	switch (c->method) {
	case PROBE_LINEAR: {
		json_t *search = json_array();
		json_object_set_new(s, "C", jnum(r->C));
		json_object_set_new(s, "lambda", jnum(r->lambda));
		json_object_set_new(s, "C_chosen", json_boolean(r->C_chosen));
		if (r->C_chosen) {
			json_object_set_new(s, "holdout", jnum(c->val_frac));
			json_object_set_new(s, "fit_items", json_integer(r->search.nfit));
			json_object_set_new(s, "val_items", json_integer(r->search.nval));
			for (int i = 0; i < r->search.n && r->search.nval > 0; i++)
				json_array_append_new(search, json_pack("{s:o, s:o, s:o}", "C", jnum(r->search.C[i]),
				                                        "val_accuracy", jnum(r->search.val_acc[i]), "val_loss",
				                                        jnum(r->search.val_loss[i])));
		}
		json_object_set_new(s, "search", search);
		json_object_set_new(s, "optimizer", json_pack("{s:s, s:i, s:i, s:b, s:s, s:o, s:o, s:o, s:i}", "name",
		                                              "lbfgs", "iterations", r->opt.iters, "evaluations",
		                                              r->opt.evals, "converged",
		                                              r->opt.status == LBFGS_CONVERGED_GTOL ||
		                                                  r->opt.status == LBFGS_CONVERGED_FTOL,
		                                              "status", lbfgs_status_str(r->opt.status), "grad_max",
		                                              jnum(r->opt.gmax), "objective", jnum(r->opt.f), "gtol",
		                                              jnum(c->lbfgs.gtol), "max_iter", c->lbfgs.max_iter));
		break;
	}
	case PROBE_KNN:
		json_object_set_new(s, "k", json_integer(c->k));
		json_object_set_new(s, "k_used", json_integer(r->k_used));
		json_object_set_new(s, "T", jnum(c->T));
		break;
	case PROBE_MLP:
		json_object_set_new(s, "hidden", json_integer(c->mlp.hidden));
		json_object_set_new(s, "lr", jnum(c->mlp.lr));
		json_object_set_new(s, "weight_decay", jnum(c->mlp.weight_decay));
		json_object_set_new(s, "batch", json_integer(c->mlp.batch));
		json_object_set_new(s, "max_epochs", json_integer(c->mlp.max_epochs));
		json_object_set_new(s, "patience", json_integer(c->mlp.patience));
		json_object_set_new(s, "holdout", jnum(c->val_frac));
		json_object_set_new(s, "fit_items", json_integer(r->nfit));
		json_object_set_new(s, "val_items", json_integer(r->nval));
		json_object_set_new(s, "epochs_run", json_integer(r->mlp.epochs_run));
		json_object_set_new(s, "best_epoch", json_integer(r->mlp.best_epoch));
		json_object_set_new(s, "best_val_loss", jnum(r->mlp.best_val_loss));
		json_object_set_new(s, "best_val_accuracy", jnum(r->mlp.best_val_acc));
		break;
	}
	json_object_set_new(s, "seed", json_integer((json_int_t)c->seed));
	return s;
}

json_t *
probe_result_json(const ProbeResult *r, const ProbeDataInfo *info)
{
	const Metrics *m = &r->metrics;
	json_t *o = json_object(), *pc = json_array(), *conf = json_array();
	int K = m->K;
	json_object_set_new(o, "method", json_string(probe_method_name(r->cfg.method)));
	json_object_set_new(o, "settings", settings_json(r));
	json_object_set_new(o, "seconds", jnum(r->seconds));
	json_object_set_new(o, "items", json_integer(m->n));
	json_object_set_new(o, "top1", jnum(ratio(m->correct, m->n)));
	json_object_set_new(o, "correct", json_integer(m->correct));
	json_object_set_new(o, "topk", json_integer(m->topk));
	json_object_set_new(o, "top5", jnum(ratio(m->correct_topk, m->n)));
	json_object_set_new(o, "correct_top5", json_integer(m->correct_topk));
	for (int c = 0; c < K; c++) {
		json_t *row = json_array();
		json_array_append_new(pc, json_pack("{s:i, s:s, s:I, s:I, s:o}", "index", class_id(info, c), "class",
		                                    info->classes[c],
		                                    "items", (json_int_t)m->class_n[c], "correct",
		                                    (json_int_t)m->class_correct[c], "accuracy",
		                                    jnum(ratio(m->class_correct[c], m->class_n[c]))));
		for (int p = 0; p < K && m->confusion; p++)
			json_array_append_new(row, json_integer(m->confusion[(size_t)c * (size_t)K + (size_t)p]));
		json_array_append_new(conf, row);
	}
	json_object_set_new(o, "per_class", pc);
	if (m->confusion)
		json_object_set_new(o, "confusion", conf);
	else {
		json_decref(conf);
		json_object_set_new(o, "confusion", json_null());
	}
	return o;
}
