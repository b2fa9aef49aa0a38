/* lbfgs: limited-memory BFGS for smooth unconstrained minimisation.
 *
 * Nocedal & Wright, Numerical Optimization (2nd ed.): the two-loop recursion
 * (Algorithm 7.4) with the scaling gamma = s'y / y'y for the initial inverse
 * Hessian (eq. 7.20), and a line search that finds a step satisfying the
 * strong Wolfe conditions (Algorithms 3.5 and 3.6, zoom by safeguarded cubic
 * interpolation). Used by the linear probe (lib/eval/probe.c); small enough to
 * test on its own against known convex problems.
 *
 * Everything is double: the parameter vectors are small (classes x dim), the
 * expensive part is the caller's function evaluation. */
#ifndef SSL_LBFGS_H
#define SSL_LBFGS_H

#include <stdint.h>

/* Returns f(x) and writes the gradient at x to g (both length n). A
 * non-finite return means "x is outside the domain": the line search backs
 * off from it. */
typedef double (*LbfgsFunc)(void *ctx, const double *x, double *g, int64_t n);

typedef struct LbfgsResult LbfgsResult;

typedef struct {
	int    m;         /* correction pairs kept (10) */
	int    max_iter;  /* iterations (1000) */
	double gtol;      /* stop when max_i |g_i| <= gtol (1e-5) */
	double ftol;      /* stop when (f_prev - f) <= ftol * max(|f_prev|, |f|, 1) (1e-12; 0: off) */
	double c1, c2;    /* Wolfe constants: sufficient decrease 1e-4, curvature 0.9 */
	int    max_ls;    /* function evaluations per line search (25) */
	/* called after each accepted step with the state so far (NULL: never) */
	void (*on_step)(void *ctx, const LbfgsResult *now);
	void  *on_step_ctx;
} LbfgsParams;

typedef enum {
	LBFGS_CONVERGED_GTOL,    /* gradient small enough */
	LBFGS_CONVERGED_FTOL,    /* objective stopped decreasing (relative ftol) */
	LBFGS_MAX_ITER,
	LBFGS_LINESEARCH_FAILED, /* no strong Wolfe step: usually round-off at the optimum */
	LBFGS_NONFINITE          /* f or g not finite at the starting point */
} LbfgsStatus;

struct LbfgsResult {
	LbfgsStatus status;
	int         iters;   /* accepted steps */
	int         evals;   /* function evaluations */
	double      f;       /* objective at the returned x */
	double      gmax;    /* max |g_i| at the returned x */
};

void lbfgs_params_default(LbfgsParams *p);
/* Minimises f from the starting point x (n), overwriting x with the result,
 * which is always the best point accepted (never worse than the start).
 * Returns 0 when converged (gtol or ftol), 1 otherwise (see res->status). */
int lbfgs_minimize(LbfgsResult *res, double *x, int64_t n, LbfgsFunc f, void *ctx, const LbfgsParams *p);
const char *lbfgs_status_str(LbfgsStatus s);

#endif
