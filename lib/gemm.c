/* gemm: see gemm.h. */
#include "gemm.h"

#include <cblas.h>
#include <omp.h>

#include "parallel.h"

void
gemm_serial(int ta, int tb, int M, int N, int K, float alpha,
            const float *A, int lda, const float *B, int ldb,
            float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
	            M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void
gemm(int ta, int tb, int M, int N, int K, float alpha,
     const float *A, int lda, const float *B, int ldb,
     float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	int nt = parallel_threads();
	double work = 2.0 * M * N * (K > 0 ? K : 1);
	if (omp_in_parallel() || nt == 1 || work < 4e6) {
		gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
		return;
	}
	/* Slices of 16 columns (or rows), whichever side is longer. */
	int by_cols = N >= M;
	int len = by_cols ? N : M;
	int units = (len + 15) / 16;
	if (nt > units)
		nt = units;
#pragma omp parallel num_threads(nt)
	{
		int t = omp_get_thread_num(), T = omp_get_num_threads();
		int lo = (int)((long)units * t / T) * 16, hi = (int)((long)units * (t + 1) / T) * 16;
		if (hi > len)
			hi = len;
		if (hi > lo) {
			if (by_cols)
				gemm_serial(ta, tb, M, hi - lo, K, alpha, A, lda,
				            tb ? B + (long)lo * ldb : B + lo, ldb, beta, C + lo, ldc);
			else
				gemm_serial(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + (long)lo * lda, lda,
				            B, ldb, beta, C + (long)lo * ldc, ldc);
		}
	}
}

void
gemm_ref(int ta, int tb, int M, int N, int K, float alpha,
         const float *A, int lda, const float *B, int ldb,
         float beta, float *C, int ldc)
{
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double s = 0;
			for (int k = 0; k < K; k++) {
				float a = ta ? A[(long)k * lda + i] : A[(long)i * lda + k];
				float b = tb ? B[(long)j * ldb + k] : B[(long)k * ldb + j];
				s += (double)a * b;
			}
			float *c = &C[(long)i * ldc + j];
			*c = (float)(alpha * s + (beta == 0.0f ? 0.0 : (double)beta * *c));
		}
}
