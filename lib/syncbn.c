/* syncbn: see syncbn.h. The forward reuses bn.h's building blocks (sums,
 * finish, apply), so a rank computes exactly what bn.c does, only with
 * sums over every rank. The backward is bn_backward_fused split in two
 * passes around the all-reduce (bn.c keeps its fused per-channel kernels
 * private); the arithmetic is the same expression for expression. */
#include "syncbn.h"

#include <stdlib.h>

#include "parallel.h"
#include "util.h"

struct SyncBN {
	Dist   *d;
	int     cmax;
	int     n;        /* images on this rank */
	int64_t n_total;  /* on all ranks */
	double *sums;     /* (2 * cmax) */
};

SyncBN *
syncbn_new(Dist *d, int max_channels)
{
	SyncBN *s = xcalloc(1, sizeof *s);
	ASSERT(max_channels >= 1);
	s->d = d;
	s->cmax = max_channels;
	s->sums = xcalloc(2 * (size_t)max_channels, sizeof *s->sums);
	return s;
}

void
syncbn_free(SyncBN *s)
{
	if (!s)
		return;
	free(s->sums);
	free(s);
}

void
syncbn_set_batch(SyncBN *s, int n, int64_t n_total)
{
	ASSERT(n >= 1 && n_total >= n);
	s->n = n;
	s->n_total = n_total;
}

/* Values per channel over all ranks, from this rank's M = n * HW. */
static int64_t
global_count(const SyncBN *s, int64_t M)
{
	ASSERT(s->n >= 1 && M % s->n == 0);
	return M / s->n * s->n_total;
}

void
syncbn_reduce_stats(SyncBN *s, double *stats, int C, int64_t *M)
{
	ASSERT(C <= s->cmax);
	dist_allreduce_sum_f64(s->d, stats, 2 * (size_t)C, DIST_BN);
	*M = global_count(s, *M);
}

void
syncbn_forward_train(SyncBN *s, float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                     const float *inp, const float *gamma, const float *beta, int n, int C, int HW, int relu,
                     float momentum, float eps)
{
	int64_t M = (int64_t)n * HW;
	ASSERT(C <= s->cmax && n == s->n);
	for (int c = 0; c < 2 * C; c++)
		s->sums[c] = 0;
	bn_stats_accumulate(s->sums, inp, n, C, HW);
	syncbn_reduce_stats(s, s->sums, C, &M);
	bn_stats_finish(mean, rstd, run_mean, run_var, s->sums, C, M, momentum, eps);
	bn_apply(out, inp, NULL, mean, rstd, gamma, beta, n, C, HW, relu);
}

/* g: dout masked as bn.h's BnMask says. */
static inline float
masked(BnMask mask, float dy, float x, const float *o, size_t j, float m, float a, float b)
{
	if (mask == BN_MASK_RECOMPUTE)
		return (x - m) * a + b > 0.0f ? dy : 0.0f;
	if (mask == BN_MASK_OUT)
		return o[j] > 0.0f ? dy : 0.0f;
	return dy;
}

void
syncbn_backward(SyncBN *s, float *dinp, float *dres, float *dgamma, float *dbeta, const float *dout,
                const float *out, const float *inp, const float *mean, const float *rstd, const float *gamma,
                const float *beta, int n, int C, int HW, BnMask mask, int accumulate)
{
	const size_t M = (size_t)n * HW;
	double *sums = s->sums;
	int64_t Mg = global_count(s, (int64_t)M);
	ASSERT(C <= s->cmax && n == s->n);
	/* this rank's sums of g and g * xhat */
#pragma omp parallel for schedule(static) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M, *dy = dout + c * M, *o = mask == BN_MASK_OUT ? out + c * M : NULL;
		const float m = mean[c], rs = rstd[c], a = gamma[c] * rs;
		const float b = mask == BN_MASK_RECOMPUTE ? beta[c] : 0.0f;
		double sg = 0, sgx = 0;
		for (size_t j = 0; j < M; j++) {
			float g = masked(mask, dy[j], x[j], o, j, m, a, b);
			sg += g;
			sgx += (double)g * ((x[j] - m) * rs);
		}
		sums[2 * c] = sg;
		sums[2 * c + 1] = sgx;
	}
	dist_allreduce_sum_f64(s->d, sums, 2 * (size_t)C, DIST_BN);
	/* The parameter gradients are the global sums themselves: rank 0 adds
	 * them, the others nothing, so the gradient all-reduce gives every rank
	 * exactly what one process computes (float sums of per-rank parts
	 * would round differently, and these sums cancel a lot). */
	if (dist_rank(s->d) == 0)
		for (int c = 0; c < C; c++) {
			dgamma[c] += (float)sums[2 * c + 1];
			dbeta[c] += (float)sums[2 * c];
		}
	/* dx (+)= k * (g - mean(g) - xhat * mean(g * xhat)) over the global batch; dres (+)= g */
#pragma omp parallel for schedule(static) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M, *dy = dout + c * M, *o = mask == BN_MASK_OUT ? out + c * M : NULL;
		const float m = mean[c], rs = rstd[c], a = gamma[c] * rs;
		const float b = mask == BN_MASK_RECOMPUTE ? beta[c] : 0.0f;
		const float mg = (float)(sums[2 * c] / (double)Mg), mgx = (float)(sums[2 * c + 1] / (double)Mg);
		float *dx = dinp ? dinp + c * M : NULL, *dr = dres ? dres + c * M : NULL;
		for (size_t j = 0; j < M; j++) {
			float g = masked(mask, dy[j], x[j], o, j, m, a, b);
			if (dx) {
				float v = a * (g - mg - (x[j] - m) * rs * mgx);
				dx[j] = accumulate ? dx[j] + v : v;
			}
			if (dr)
				dr[j] = accumulate ? dr[j] + g : g;
		}
	}
}
