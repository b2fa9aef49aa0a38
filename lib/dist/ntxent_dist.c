/* ntxent_dist: see ntxent_dist.h. The arithmetic follows loss.c's
 * ntxent_forward_backward (normalisation, masked diagonal, log-sum-exp
 * around the row maximum in double). Rows are independent, so the row
 * loops run on the OpenMP team and the sums are taken afterwards in row
 * order (the result does not depend on the thread count). */
#include "dist/ntxent_dist.h"

#include <math.h>
#include <string.h>

#include "nn/gemm.h"
#include "nn/loss.h"

#define NORM_EPS 1e-12 /* F.normalize's eps, as loss.c */

/* The work layout: doubles first (aligned as the buffer is). */
typedef struct {
	double *vec;  /* (2N + 2): lse of every row, loss sum, hits */
	double *rl;   /* (2n, 2): the loss of each local row, and 1 if its top-1 is the positive */
	float  *u;    /* (2N, D) normalised z_all */
	float  *ul;   /* (2n, D) this rank's rows of u */
	float  *S;    /* (2n, 2N) similarities, then d loss / d S + its transpose */
	float  *du;   /* (2n, D) */
	float  *nrm;  /* (2N) */
} Work;

static Work
work_split(float *work, int n, int N, int D)
{
	size_t M = 2 * (size_t)N, m = 2 * (size_t)n;
	Work w;
	w.vec = (double *)work;
	w.rl = w.vec + M + 2;
	w.u = (float *)(w.rl + 2 * m);
	w.ul = w.u + M * D;
	w.S = w.ul + m * D;
	w.du = w.S + m * M;
	w.nrm = w.du + m * D;
	return w;
}

size_t
ntxent_dist_work_floats(int n, int N, int D)
{
	size_t M = 2 * (size_t)N, m = 2 * (size_t)n;
	return 2 * (M + 2 + 2 * m) + M * D + m * D + m * M + m * D + M;
}

/* Global row of local row l. */
static int
grow(int l, int n, int N, int off)
{
	return l < n ? off + l : N + off + (l - n);
}

int
ntxent_dist_forward_backward(Dist *d, float *loss, float *acc, float *dz, float *work, const float *z_all, int N,
                             int off, int n, int D, float temperature)
{
	if (N < 1 || n < 1 || off < 0 || off + n > N || D < 1 || !(temperature > 0.0f))
		return -1;
	const int M = 2 * N, m = 2 * n;
	const float inv_t = 1.0f / temperature;
	Work w = work_split(work, n, N, D);

#pragma omp parallel for schedule(static) if ((size_t)M * D > 65536)
	for (int i = 0; i < M; i++) {
		const float *zi = z_all + (size_t)i * D;
		double s = 0;
		for (int k = 0; k < D; k++)
			s += (double)zi[k] * zi[k];
		double r = sqrt(s);
		w.nrm[i] = (float)(r > NORM_EPS ? r : NORM_EPS);
		for (int k = 0; k < D; k++)
			w.u[(size_t)i * D + k] = (float)(zi[k] / (double)w.nrm[i]);
	}
	for (int l = 0; l < m; l++)
		memcpy(w.ul + (size_t)l * D, w.u + (size_t)grow(l, n, N, off) * D, sizeof(float) * D);
	gemm(0, 1, m, M, D, inv_t, w.ul, D, w.u, D, 0.0f, w.S, M);

	memset(w.vec, 0, sizeof(double) * (M + 2));
#pragma omp parallel for schedule(static) if ((size_t)m * M > 65536)
	for (int l = 0; l < m; l++) {
		const float *s = w.S + (size_t)l * M;
		int i = grow(l, n, N, off), pos = i < N ? i + N : i - N, best;
		double lse = ntxent_row_lse(s, M, i, &best);
		w.vec[i] = lse;
		w.rl[2 * l] = lse - s[pos];
		w.rl[2 * l + 1] = best == pos;
	}
	for (int l = 0; l < m; l++) {
		w.vec[M] += w.rl[2 * l];
		w.vec[M + 1] += w.rl[2 * l + 1];
	}
	dist_allreduce_sum_f64(d, w.vec, (size_t)M + 2, DIST_EMBED);
	*loss = (float)(w.vec[M] / M);
	if (acc)
		*acc = (float)(w.vec[M + 1] / M);
	if (!dz)
		return 0;

	/* row l of G + G^T (local rows, all columns), 0 on the diagonal */
#pragma omp parallel for schedule(static) if ((size_t)m * M > 65536)
	for (int l = 0; l < m; l++) {
		float *s = w.S + (size_t)l * M;
		int i = grow(l, n, N, off), pos = i < N ? i + N : i - N;
		double lse_i = w.vec[i];
		for (int j = 0; j < M; j++)
			s[j] = j == i ? 0.0f
			              : (float)((exp((double)s[j] - lse_i) + exp((double)s[j] - w.vec[j]) - 2.0 * (j == pos)) / M);
	}
	gemm(0, 0, m, D, M, inv_t, w.S, M, w.u, D, 0.0f, w.du, D);
	/* through u = z / |z|: dz = (du - u (u . du)) / |z| (du / eps when clamped) */
	for (int l = 0; l < m; l++) {
		int i = grow(l, n, N, off);
		const float *ui = w.ul + (size_t)l * D, *dui = w.du + (size_t)l * D;
		float *dzi = dz + (size_t)l * D;
		double dot = 0;
		for (int k = 0; k < D; k++)
			dot += (double)ui[k] * dui[k];
		int clamped = w.nrm[i] <= (float)NORM_EPS;
		for (int k = 0; k < D; k++)
			dzi[k] = (float)((dui[k] - (clamped ? 0.0 : ui[k] * dot)) / w.nrm[i]);
	}
	return 0;
}
