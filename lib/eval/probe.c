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
#include "eval/probe_impl.h"

/* Checked n * m element counts for our buffers. */
size_t
probe_count2(int64_t n, int64_t m)
{
	size_t out;
	if (n < 0 || m < 0 || size_mul((size_t)n, (size_t)m, &out) < 0)
		die("probe: %lld x %lld elements: too large", (long long)n, (long long)m);
	return out ? out : 1;
}

void
probe_progress_report(const ProbeProgress *pg, const char *stage, int64_t done, int64_t total, const char *fmt, ...)
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
		m->confusion = xcalloc(probe_count2(K, K), sizeof *m->confusion);
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
	m->W = xcalloc(probe_count2(K, D), sizeof *m->W);
	m->b = xcalloc((size_t)K, sizeof *m->b);
}

void
linear_copy(LinearModel *dst, const LinearModel *src)
{
	ASSERT(dst->K == src->K && dst->D == src->D);
	memcpy(dst->W, src->W, probe_count2(src->K, src->D) * sizeof *dst->W);
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
	c->Wd = xcalloc(probe_count2(K, D), sizeof *c->Wd);
	c->Zd = xcalloc(probe_count2(K, D), sizeof *c->Zd);
	c->Wf = xcalloc(probe_count2(K, D), sizeof *c->Wf);
	c->dWf = xcalloc(probe_count2(K, D), sizeof *c->dWf);
	c->G = xcalloc(probe_count2(n, K), sizeof *c->G);
	c->rowloss = xcalloc(probe_count2(n, 1), sizeof *c->rowloss);
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
	float *S = xcalloc(probe_count2(D, D), sizeof *S);
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
	size_t KD = probe_count2(m->K, m->D);
	for (size_t j = 0; j < KD; j++)
		theta[j] = m->W[j];
	for (int k = 0; k < m->K; k++)
		theta[KD + (size_t)k] = m->b[k];
}

static void
linear_from_theta(LinearModel *m, const double *theta)
{
	size_t KD = probe_count2(m->K, m->D);
	for (size_t j = 0; j < KD; j++)
		m->W[j] = (float)theta[j];
	for (int k = 0; k < m->K; k++)
		m->b[k] = (float)theta[KD + (size_t)k];
}

double
linear_objective(const LinearModel *m, double *dW, double *db, const float *x, const int64_t *y, int64_t n, double C)
{
	LinearCtx c;
	size_t KD = probe_count2(m->K, m->D), np;
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
	probe_progress_report(sp->pg, "linear", now->iters, sp->max_iter, "objective %.6g, max |gradient| %.2g", now->f,
	                now->gmax);
}

int
linear_fit(LinearModel *m, LbfgsResult *res, const float *x, const int64_t *y, int64_t n, double C,
           const LbfgsParams *lp, const ProbeProgress *pg)
{
	LbfgsParams p = *lp;
	StepProgress sp = { pg, lp->max_iter };
	LinearCtx c;
	size_t np, KD = probe_count2(m->K, m->D), DD = probe_count2(m->D, m->D), nD = probe_count2(n, m->D);
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
	float *L = xcalloc(probe_count2(n, K), sizeof *L);
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
	int64_t *fit = xcalloc(probe_count2(n, 1), sizeof *fit), *val = xcalloc(probe_count2(n, 1), sizeof *val);
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
	xfit = xcalloc(probe_count2(nfit, D), sizeof *xfit);
	yfit = xcalloc(probe_count2(nfit, 1), sizeof *yfit);
	xval = xcalloc(probe_count2(nval, D), sizeof *xval);
	yval = xcalloc(probe_count2(nval, 1), sizeof *yval);
	scores = xcalloc(probe_count2(nval, K), sizeof *scores);
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
		probe_progress_report(pg, "C search", i + 1, ngrid, "C %g: val loss %.4f", s->C[i], s->val_loss[i]);
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
	float *sims = xcalloc(probe_count2(QB, n), sizeof *sims);
	float *hs = xcalloc(probe_count2(QB, kk), sizeof *hs);
	int64_t *hi = xcalloc(probe_count2(QB, kk), sizeof *hi);

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
		probe_progress_report(pg, "knn", q0 + qb, nq, NULL);
	}
	free(sims);
	free(hs);
	free(hi);
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
	size_t m = probe_count2(n, D);
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
	double *scores = xcalloc(probe_count2(ntest, K), sizeof *scores);

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
			int64_t *fit = xcalloc(probe_count2(ntrain, 1), sizeof *fit), *val = xcalloc(probe_count2(ntrain, 1), sizeof *val);
			int64_t *yfit, *yval;
			float *xfit, *xval;
			probe_split_holdout(fit, &r->nfit, val, &r->nval, ytrain, ntrain, K, cfg->val_frac, cfg->seed);
			xfit = xcalloc(probe_count2(r->nfit, D), sizeof *xfit);
			yfit = xcalloc(probe_count2(r->nfit, 1), sizeof *yfit);
			xval = xcalloc(probe_count2(r->nval, D), sizeof *xval);
			yval = xcalloc(probe_count2(r->nval, 1), sizeof *yval);
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
