/* pca: the 2-D principal component projection of N x D float features, for
 * pictures of embeddings.
 *
 * The covariance C = Xc^T Xc / (N - 1) of the centred features is formed
 * with sgemm (OpenBLAS) and its two leading eigenvectors come from LAPACK's
 * ssyevr (OpenBLAS ships LAPACK; only those two are computed). Each axis is
 * signed so that its entry of largest magnitude is positive, which makes the
 * picture deterministic. */
#ifndef SSL_PCA_H
#define SSL_PCA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int     dim;        /* D */
	float  *mean;       /* (D) */
	float  *axes;       /* (2, D): PC1 then PC2, unit length */
	double  var[2];     /* variance along PC1, PC2 (eigenvalues) */
	double  total_var;  /* trace of the covariance */
} Pca;

/* Fits on x (n, d), n >= 2, d >= 2. 0, or -1 with a message in err (too
 * few points or dimensions, non-finite input, LAPACK failure). */
int  pca_fit(Pca *p, const float *x, int64_t n, int d, char *err, size_t errlen);
/* coords (n, 2) = (x - mean) . axes^T */
void pca_project(const Pca *p, const float *x, int64_t n, float *coords);
void pca_free(Pca *p);

#endif
