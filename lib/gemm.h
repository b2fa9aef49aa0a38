/* gemm: row-major single-precision matrix multiply, the one place that
 * calls BLAS.
 *
 *   C = alpha * op(A) * op(B) + beta * C
 *
 * op(A) is M x K, op(B) is K x N, C is M x N; ta/tb nonzero mean the stored
 * matrix is transposed (A stored K x M). Leading dimensions are in elements,
 * as cblas_sgemm with CblasRowMajor. beta == 0 overwrites C. */
#ifndef SSL_GEMM_H
#define SSL_GEMM_H

/* Splits C into column (or row) slices over the OpenMP team (lib/parallel.h);
 * inside a parallel region it runs on the calling thread alone. */
void gemm(int ta, int tb, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc);
/* One thread (OpenBLAS single-threaded): for kernels that split work themselves. */
void gemm_serial(int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
/* Naive twin (triple loop, double accumulation): the oracle for tests. */
void gemm_ref(int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

#endif
