/* lbfgs: see lbfgs.h. */
#include "eval/lbfgs.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void
lbfgs_params_default(LbfgsParams *p)
{
	p->m = 10;
	p->max_iter = 1000;
	p->gtol = 1e-5;
	p->ftol = 1e-12;
	p->c1 = 1e-4;
	p->c2 = 0.9;
	p->max_ls = 25;
	p->on_step = NULL;
	p->on_step_ctx = NULL;
}

const char *
lbfgs_status_str(LbfgsStatus s)
{
	switch (s) {
	case LBFGS_CONVERGED_GTOL: return "converged (gradient tolerance)";
	case LBFGS_CONVERGED_FTOL: return "converged (objective stopped decreasing)";
	case LBFGS_MAX_ITER: return "stopped at the iteration limit";
	case LBFGS_LINESEARCH_FAILED: return "stopped: line search found no better point (round-off)";
	case LBFGS_NONFINITE: return "objective not finite at the start";
	}
	return "?";
}

static double
dot(const double *a, const double *b, int64_t n)
{
	double s = 0;
	for (int64_t i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static double
absmax(const double *a, int64_t n)
{
	double m = 0;
	for (int64_t i = 0; i < n; i++)
		if (fabs(a[i]) > m)
			m = fabs(a[i]);
	return m;
}

/* ---- line search: phi(a) = f(x + a d) ---- */

typedef struct {
	double a, f, d; /* step, phi(a), phi'(a) */
} LsPoint;

typedef struct {
	const double *x, *dir;
	double       *xt, *gt;  /* the last evaluated trial point and its gradient */
	double        last_a;   /* the step xt/gt belong to */
	int64_t       n;
	LbfgsFunc     f;
	void         *ctx;
	int           evals;    /* in this line search */
	int           total_evals;
} LineSearch;

static LsPoint
ls_eval(LineSearch *ls, double a)
{
	LsPoint p;
	for (int64_t i = 0; i < ls->n; i++)
		ls->xt[i] = ls->x[i] + a * ls->dir[i];
	p.a = a;
	p.f = ls->f(ls->ctx, ls->xt, ls->gt, ls->n);
	p.d = dot(ls->gt, ls->dir, ls->n);
	ls->last_a = a;
	ls->evals++;
	ls->total_evals++;
	if (!isfinite(p.f) || !isfinite(p.d)) {
		/* outside the domain: treated as "far too high", which makes
		 * the search back off by bisection */
		p.f = INFINITY;
		p.d = NAN;
	}
	return p;
}

/* Minimiser of the cubic that interpolates phi and phi' at lo and hi
 * (Nocedal & Wright eq. 3.59); NaN when it does not exist. */
static double
cubic_step(LsPoint lo, LsPoint hi)
{
	double d1 = lo.d + hi.d - 3 * (lo.f - hi.f) / (lo.a - hi.a);
	double rad = d1 * d1 - lo.d * hi.d;
	double d2, den;
	if (!(rad >= 0) || !isfinite(rad))
		return NAN;
	d2 = copysign(sqrt(rad), hi.a - lo.a);
	den = hi.d - lo.d + 2 * d2;
	if (den == 0)
		return NAN;
	return hi.a - (hi.a - lo.a) * (hi.d + d2 - d1) / den;
}

/* Algorithm 3.6. lo satisfies sufficient decrease and has the lowest phi
 * seen; the interval (lo, hi) contains strong Wolfe steps. 0 and *out on
 * success; 1 with *out = lo when the budget or the interval runs out. */
static int
ls_zoom(LineSearch *ls, const LbfgsParams *p, LsPoint p0, LsPoint lo, LsPoint hi, LsPoint *out)
{
	while (ls->evals < p->max_ls) {
		double left = fmin(lo.a, hi.a), right = fmax(lo.a, hi.a), width = right - left;
		double a = cubic_step(lo, hi);
		LsPoint t;
		if (width <= 1e-16 * right)
			break;
		/* keep the trial away from the ends so the interval shrinks */
		if (!isfinite(a) || a < left + 0.1 * width || a > right - 0.1 * width)
			a = left + 0.5 * width;
		t = ls_eval(ls, a);
		if (t.f > p0.f + p->c1 * a * p0.d || t.f >= lo.f) {
			hi = t;
		} else {
			if (fabs(t.d) <= -p->c2 * p0.d) {
				*out = t;
				return 0;
			}
			if (t.d * (hi.a - lo.a) >= 0)
				hi = lo;
			lo = t;
		}
	}
	*out = lo;
	return 1;
}

/* Algorithm 3.5: a step a along dir from x (where phi(0) = f0, phi'(0) = d0
 * < 0) with phi(a) <= f0 + c1 a d0 and |phi'(a)| <= c2 |d0|. */
static int
ls_search(LineSearch *ls, const LbfgsParams *p, double f0, double d0, double a1, LsPoint *out)
{
	LsPoint p0 = { 0, f0, d0 }, prev = p0;
	double a = a1;
	ls->evals = 0;
	for (int i = 0; ls->evals < p->max_ls; i++) {
		LsPoint t = ls_eval(ls, a);
		if (t.f > f0 + p->c1 * a * d0 || (i > 0 && t.f >= prev.f))
			return ls_zoom(ls, p, p0, prev, t, out);
		if (fabs(t.d) <= -p->c2 * d0) {
			*out = t;
			return 0;
		}
		if (t.d >= 0)
			return ls_zoom(ls, p, p0, t, prev, out);
		prev = t;
		a *= 4;
	}
	*out = prev;
	return 1;
}

/* ---- the driver ---- */

int
lbfgs_minimize(LbfgsResult *res, double *x, int64_t n, LbfgsFunc f, void *ctx, const LbfgsParams *p)
{
	int m = p->m > 0 ? p->m : 1;
	size_t nn = (size_t)n, hist;
	double *g, *d, *xt, *gt, *S, *Y, *rho, *alpha;
	int k = 0, start = 0, retried = 0; /* k pairs stored in a ring starting at start */
	double fx;
	LineSearch ls;

	ASSERT(n > 0);
	if (size_mul(nn, (size_t)m, &hist) < 0)
		die("lbfgs: %lld parameters x %d pairs: too large", (long long)n, m);
	g = xcalloc(nn, sizeof *g);
	d = xcalloc(nn, sizeof *d);
	xt = xcalloc(nn, sizeof *xt);
	gt = xcalloc(nn, sizeof *gt);
	S = xcalloc(hist, sizeof *S);
	Y = xcalloc(hist, sizeof *Y);
	rho = xcalloc((size_t)m, sizeof *rho);
	alpha = xcalloc((size_t)m, sizeof *alpha);

	memset(res, 0, sizeof *res);
	fx = f(ctx, x, g, n);
	res->evals = 1;
	res->f = fx;
	res->gmax = absmax(g, n);
	if (!isfinite(fx) || !isfinite(res->gmax)) {
		res->status = LBFGS_NONFINITE;
		goto done;
	}
	ls = (LineSearch){ .x = x, .dir = d, .xt = xt, .gt = gt, .n = n, .f = f, .ctx = ctx };
	res->status = LBFGS_MAX_ITER;
	while (res->gmax > p->gtol && res->iters < p->max_iter) {
		double dg, a1, sy, yy, fprev = fx;
		LsPoint step;
		int failed;

		/* d = -H g by the two-loop recursion (Algorithm 7.4) */
		for (int64_t i = 0; i < n; i++)
			d[i] = -g[i];
		for (int j = k - 1; j >= 0; j--) {
			int r = (start + j) % m;
			alpha[r] = rho[r] * dot(S + (size_t)r * nn, d, n);
			for (int64_t i = 0; i < n; i++)
				d[i] -= alpha[r] * Y[(size_t)r * nn + (size_t)i];
		}
		if (k > 0) {
			int r = (start + k - 1) % m;
			double gamma = dot(S + (size_t)r * nn, Y + (size_t)r * nn, n) /
			               dot(Y + (size_t)r * nn, Y + (size_t)r * nn, n);
			for (int64_t i = 0; i < n; i++)
				d[i] *= gamma;
		}
		for (int j = 0; j < k; j++) {
			int r = (start + j) % m;
			double beta = rho[r] * dot(Y + (size_t)r * nn, d, n);
			for (int64_t i = 0; i < n; i++)
				d[i] += (alpha[r] - beta) * S[(size_t)r * nn + (size_t)i];
		}
		dg = dot(d, g, n);
		if (!(dg < 0)) {
			/* not a descent direction (round-off): restart from -g */
			k = 0;
			for (int64_t i = 0; i < n; i++)
				d[i] = -g[i];
			dg = -dot(g, g, n);
		}
		/* a unit step is right for a quasi-Newton direction; before any
		 * curvature is known, scale the first step to length 1 */
		a1 = k > 0 ? 1.0 : fmin(1.0, 1.0 / sqrt(-dg));
		failed = ls_search(&ls, p, fx, dg, a1, &step);
		res->evals = 1 + ls.total_evals;
		if (failed && step.a == 0) {
			if (k > 0 && !retried) {
				/* the quasi-Newton model went stale: forget it once */
				k = 0;
				retried = 1;
				continue;
			}
			res->status = LBFGS_LINESEARCH_FAILED;
			break;
		}
		if (ls.last_a != step.a) {
			ls_eval(&ls, step.a);
			res->evals = 1 + ls.total_evals;
		}
		/* new pair s = xt - x, y = gt - g, stored over the oldest one */
		{
			int r = k < m ? (start + k) % m : start;
			double *s = S + (size_t)r * nn, *y = Y + (size_t)r * nn;
			for (int64_t i = 0; i < n; i++) {
				s[i] = xt[i] - x[i];
				y[i] = gt[i] - g[i];
			}
			sy = dot(s, y, n);
			yy = dot(y, y, n);
			if (sy > 1e-10 * yy && yy > 0) {
				rho[r] = 1.0 / sy;
				if (k < m)
					k++;
				else
					start = (start + 1) % m;
			}
		}
		memcpy(x, xt, nn * sizeof *x);
		memcpy(g, gt, nn * sizeof *g);
		fx = step.f;
		res->iters++;
		res->f = fx;
		res->gmax = absmax(g, n);
		/* a search that ran out of budget but still went downhill is
		 * a step like any other */
		retried = 0;
		if (p->on_step)
			p->on_step(p->on_step_ctx, res);
		if (p->ftol > 0 && fprev - fx <= p->ftol * fmax(fmax(fabs(fprev), fabs(fx)), 1.0)) {
			res->status = LBFGS_CONVERGED_FTOL;
			break;
		}
	}
	if (res->gmax <= p->gtol)
		res->status = LBFGS_CONVERGED_GTOL;
done:
	free(g);
	free(d);
	free(xt);
	free(gt);
	free(S);
	free(Y);
	free(rho);
	free(alpha);
	return res->status == LBFGS_CONVERGED_GTOL || res->status == LBFGS_CONVERGED_FTOL ? 0 : 1;
}
