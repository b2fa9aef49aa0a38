/* pca: see pca.h. */
#include "eval/pca.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nn/gemm.h"

/* LAPACK from OpenBLAS, Fortran calling convention (Debian ships no
 * lapacke.h with OpenBLAS); the trailing size_t are the hidden lengths of
 * the character arguments. */
extern void ssyevr_(const char *jobz, const char *range, const char *uplo, const int *n, float *a,
                    const int *lda, const float *vl, const float *vu, const int *il, const int *iu,
                    const float *abstol, int *m, float *w, float *z, const int *ldz, int *isuppz,
                    float *work, const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t ljobz, size_t lrange, size_t luplo);

/* Upper bound of features we accept: the covariance is D x D floats. */
#define PCA_MAX_DIM 16384

int
pca_fit(Pca *p, const float *x, int64_t n, int d, char *err, size_t errlen)
{
	size_t nd, dd;
	memset(p, 0, sizeof *p);
	if (n < 2 || d < 2) {
		snprintf(err, errlen, "PCA needs at least 2 points of at least 2 dimensions (have %lld x %d)",
		         (long long)n, d);
		return -1;
	}
	if (d > PCA_MAX_DIM || n > INT32_MAX || size_mul((size_t)n, (size_t)d, &nd) < 0 ||
	    size_mul((size_t)d, (size_t)d, &dd) < 0) {
		snprintf(err, errlen, "PCA: %lld x %d features are too many", (long long)n, d);
		return -1;
	}
	double *sum = xcalloc((size_t)d, sizeof *sum);
	for (int64_t i = 0; i < n; i++) {
		const float *row = x + (size_t)i * (size_t)d;
		for (int j = 0; j < d; j++)
			sum[j] += row[j];
	}
	for (int j = 0; j < d; j++) {
		if (!isfinite(sum[j])) {
			free(sum);
			snprintf(err, errlen, "PCA: the features hold a non-finite value (dimension %d)", j);
			return -1;
		}
	}
	p->dim = d;
	p->mean = xcalloc((size_t)d, sizeof *p->mean);
	p->axes = xcalloc(2 * (size_t)d, sizeof *p->axes);
	for (int j = 0; j < d; j++)
		p->mean[j] = (float)(sum[j] / (double)n);
	free(sum);

	float *xc = xcalloc(nd, sizeof *xc), amax = 0;
	for (int64_t i = 0; i < n; i++)
		for (int j = 0; j < d; j++) {
			float v = x[(size_t)i * (size_t)d + (size_t)j] - p->mean[j];
			xc[(size_t)i * (size_t)d + (size_t)j] = v;
			amax = fmaxf(amax, fabsf(v));
		}
	/* Values far from 1 (1e30: their squares overflow a float) are scaled
	 * to at most 1 for the covariance; the axes do not change, and the
	 * variances are scaled back in double. */
	double scale2 = 1;
	if (isfinite(amax) && (amax > 1e15f || (amax > 0 && amax < 1e-15f))) {
		for (size_t i = 0; i < nd; i++)
			xc[i] /= amax;
		scale2 = (double)amax * (double)amax;
	}
	float *cov = xcalloc(dd, sizeof *cov);
	gemm_serial(1, 0, d, d, (int)n, 1.0f / (float)(n - 1), xc, d, xc, d, 0.0f, cov, d);
	free(xc);
	p->total_var = 0;
	for (int j = 0; j < d; j++)
		p->total_var += cov[(size_t)j * (size_t)d + (size_t)j] * scale2;

	/* The two largest eigenpairs: indices d-1 and d (1-based, ascending). */
	int il = d - 1, iu = d, m = 0, info = 0, lwork = -1, liwork = -1, iwq = 0;
	float vl = 0, vu = 0, abstol = 0, wq = 0, w[2] = { 0 };
	float *z = xcalloc(2 * (size_t)d, sizeof *z);
	int *isuppz = xcalloc(4, sizeof *isuppz);
	float *wall = xcalloc((size_t)d, sizeof *wall);
	ssyevr_("V", "I", "U", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, wall, z, &d, isuppz, &wq, &lwork,
	        &iwq, &liwork, &info, 1, 1, 1);
	if (info == 0) {
		lwork = (int)wq + 1;
		liwork = iwq;
		float *work = xcalloc((size_t)lwork, sizeof *work);
		int *iwork = xcalloc((size_t)liwork, sizeof *iwork);
		ssyevr_("V", "I", "U", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, wall, z, &d, isuppz, work,
		        &lwork, iwork, &liwork, &info, 1, 1, 1);
		free(work);
		free(iwork);
	}
	free(cov);
	free(isuppz);
	if (info != 0 || m != 2) {
		free(z);
		free(wall);
		pca_free(p);
		snprintf(err, errlen, "PCA: LAPACK ssyevr found %d of 2 eigenvalues (info %d)", m, info);
		return -1;
	}
	w[0] = wall[1];
	w[1] = wall[0];
	free(wall);
	/* Column-major eigenvectors in ascending order: PC1 is the second. */
	for (int k = 0; k < 2; k++) {
		const float *v = z + (size_t)(1 - k) * (size_t)d;
		int jmax = 0;
		for (int j = 1; j < d; j++)
			if (fabsf(v[j]) > fabsf(v[jmax]))
				jmax = j;
		float sign = v[jmax] < 0 ? -1.0f : 1.0f;
		for (int j = 0; j < d; j++)
			p->axes[(size_t)k * (size_t)d + (size_t)j] = sign * v[j];
		p->var[k] = w[k] > 0 ? w[k] * scale2 : 0;
	}
	free(z);
	return 0;
}

void
pca_project(const Pca *p, const float *x, int64_t n, float *coords)
{
	int d = p->dim;
	ASSERT(n <= INT32_MAX);
	/* Project around the mean without forming x - mean: subtract the mean's
	 * projection from each coordinate instead. */
	double off[2] = { 0, 0 };
	for (int k = 0; k < 2; k++)
		for (int j = 0; j < d; j++)
			off[k] += (double)p->mean[j] * p->axes[(size_t)k * (size_t)d + (size_t)j];
	if (n <= 0)
		return;
	gemm_serial(0, 1, (int)n, 2, d, 1.0f, x, d, p->axes, d, 0.0f, coords, 2);
	for (int64_t i = 0; i < n; i++) {
		coords[2 * i] -= (float)off[0];
		coords[2 * i + 1] -= (float)off[1];
	}
}

void
pca_free(Pca *p)
{
	free(p->mean);
	free(p->axes);
	memset(p, 0, sizeof *p);
}
