/* syncbn: see syncbn.h. Both directions reuse bn.h's building blocks, so a
 * rank computes exactly what bn.c does, only with sums over every rank:
 * forward sums, finish, apply; backward the sums (given by the model's
 * convolution, or computed here as bn.c does), then bn_backward_fused with
 * the global sums. */
#include "dist/syncbn.h"

#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"

struct SyncBN {
	Dist   *d;
	int     cmax;
	int     n;        /* images on this rank */
	int64_t n_total;  /* on all ranks */
	double *sums;     /* (2 * cmax) */
	float  *keep;     /* (2 * cmax) dgamma, dbeta before a backward */
	float  *global;   /* (2 * cmax) their global sums */
};

SyncBN *
syncbn_new(Dist *d, int max_channels)
{
	SyncBN *s = xcalloc(1, sizeof *s);
	ASSERT(max_channels >= 1);
	s->d = d;
	s->cmax = max_channels;
	s->sums = xcalloc(2 * (size_t)max_channels, sizeof *s->sums);
	s->keep = xcalloc(2 * (size_t)max_channels, sizeof *s->keep);
	s->global = xcalloc(2 * (size_t)max_channels, sizeof *s->global);
	return s;
}

void
syncbn_free(SyncBN *s)
{
	if (!s)
		return;
	free(s->sums);
	free(s->keep);
	free(s->global);
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
                const float *beta, int n, int C, int HW, BnMask mask, int accumulate, const double *sums_in)
{
	const size_t M = (size_t)n * HW;
	double *sums = s->sums, scale;
	int64_t Mg = global_count(s, (int64_t)M);
	ASSERT(C <= s->cmax && n == s->n);
	if (sums_in) {
		memcpy(sums, sums_in, sizeof(double) * 2 * (size_t)C);
	} else { /* this rank's sums of g and g * xhat */
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
	}
	dist_allreduce_sum_f64(s->d, sums, 2 * (size_t)C, DIST_BN);
	/* bn_backward_fused divides the sums by this rank's M: scaled by M / Mg
	 * they give the global means. It also adds them to dgamma and dbeta;
	 * those get the global sums themselves instead, from rank 0 alone, so
	 * that the gradient all-reduce leaves exactly one process's value
	 * (parts rounded on each rank would not add up to it). */
	for (int c = 0; c < C; c++) {
		s->keep[2 * c] = dgamma[c];
		s->keep[2 * c + 1] = dbeta[c];
		s->global[2 * c] = (float)sums[2 * c + 1];
		s->global[2 * c + 1] = (float)sums[2 * c];
	}
	scale = (double)M / (double)Mg;
	for (int c = 0; c < 2 * C; c++)
		sums[c] *= scale;
	bn_backward_fused(dinp, dres, dgamma, dbeta, dout, out, inp, mean, rstd, gamma, beta, n, C, HW, mask, accumulate,
	                  sums);
	for (int c = 0; c < C; c++) {
		int first = dist_rank(s->d) == 0;
		dgamma[c] = s->keep[2 * c] + (first ? s->global[2 * c] : 0.0f);
		dbeta[c] = s->keep[2 * c + 1] + (first ? s->global[2 * c + 1] : 0.0f);
	}
}
