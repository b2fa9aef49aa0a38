/* gemm: row-major single-precision matrix multiply, the one place that
 * calls BLAS.
 *
 *   C = alpha * op(A) * op(B) + beta * C
 *
 * op(A) is M x K, op(B) is K x N, C is M x N; ta/tb nonzero mean the stored
 * matrix is transposed (A stored K x M). Leading dimensions are in elements,
 * as in cblas_sgemm with CblasRowMajor. beta == 0 overwrites C (NaNs in C do
 * not survive). */
#ifndef SSL_GEMM_H
#define SSL_GEMM_H

/* OpenBLAS with the thread count of lib/parallel.h; call outside OpenMP regions. */
void gemm(int ta, int tb, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc);
/* The same on one thread: safe inside an OpenMP parallel region. */
void gemm_serial(int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
/* Naive twin (triple loop, double accumulation): the oracle for tests. */
void gemm_ref(int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

#endif
