/* gemm: row-major single-precision matrix multiply, the one place that
 * calls BLAS (no other file includes cblas.h but benches).
 *
 *   C = alpha * op(A) * op(B) + beta * C
 *
 * op(A) is M x K, op(B) is K x N, C is M x N; ta/tb nonzero mean the stored
 * matrix is transposed (A stored K x M). Leading dimensions are in elements,
 * as cblas_sgemm with CblasRowMajor. beta == 0 overwrites C. */
#ifndef SSL_GEMM_H
#define SSL_GEMM_H

#include <stddef.h>

/* Splits C into column (or row) slices over the OpenMP team (lib/base/parallel.h);
 * inside a parallel region it runs on the calling thread alone. */
void gemm(int ta, int tb, int M, int N, int K, float alpha,
          const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc);
/* One thread (OpenBLAS single-threaded): for kernels that split work themselves. */
void gemm_serial(int ta, int tb, int M, int N, int K, float alpha,
                 const float *A, int lda, const float *B, int ldb,
                 float beta, float *C, int ldc);
/* A one-thread product with gemm_serial's arguments (gemm_serial, gemm_bf16_serial). */
typedef void GemmFn(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                    int ldb, float beta, float *C, int ldc);
/* gemm()'s split over the OpenMP team, around any such product f. */
void gemm_split(GemmFn *f, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);
/* The two other BLAS calls we make (lib/eval/probe.c), on one thread:
 * C (N x N, lower triangle) = alpha * A^T A + beta * C, A stored K x N (ssyrk); */
void gemm_syrk_tn(int N, int K, float alpha, const float *A, int lda, float beta, float *C, int ldc);
/* B (M x N) = B x L^-T, L lower triangular N x N with a non-zero diagonal (strsm). */
void gemm_trsm_rlt(int M, int N, const float *L, int ldl, float *B, int ldb);

/* ---- fast paths for the narrow matrices of small convolutions ----
 * (micro-kernels; OpenBLAS packs and pads these shapes for a general case
 * and loses half its speed at 16 or 32 rows.) gemm_fast() says whether
 * they run at the level lib/base/cpu chose (avx2 and up); callers fall
 * back to gemm_serial. All single-threaded (callers split the work). */
int    gemm_fast(void);
/* The micro-kernels in use, e.g. "avx512 8x32" ("plain": the generic level). */
const char *gemm_micro_name(void);
/* GFLOP/s of a loop of independent FMAs in registers at the current level,
 * on the calling thread, for about `seconds`: the core's peak, against
 * which benches report (0 at the generic level). */
double gemm_fma_peak(double seconds);

/* C (M x N) = A (M x K) x B (K x N) (accumulate: +=). A is packed first by
 * gemm_pack_a into gemm_pack_floats(M, K) floats (enough at every level;
 * the layout is the level's: pack and multiply at the same level); B is read in place,
 * row-major with ldb, which should not be a multiple of 1024 floats (rows
 * would share cache sets: see gemm_pad_ld). */
size_t gemm_pack_floats(int M, int K);
void   gemm_pack_a(float *Ap, const float *A, int lda, int M, int K);
void   gemm_packed_nn(int M, int N, int K, const float *Ap, const float *B, int ldb, int accumulate,
                      float *C, int ldc);
/* As gemm_packed_nn with B's row k at B + boff[k] (K offsets). */
void   gemm_packed_rows(int M, int N, int K, const float *Ap, const float *B, const ptrdiff_t *boff, int accumulate,
                        float *C, int ldc);
/* C (M x R) += A (M x N, lda) x B^T, B's row r (N floats) at B + boff[r]. */
void   gemm_rows_nt(int M, int R, int N, const float *A, int lda, const float *B, const ptrdiff_t *boff, float *C,
                    int ldc);
/* A leading dimension >= n that keeps consecutive rows in different cache sets. */
int    gemm_pad_ld(int n);

/* Naive twin (triple loop, double accumulation): the oracle for tests. */
void gemm_ref(int ta, int tb, int M, int N, int K, float alpha,
              const float *A, int lda, const float *B, int ldb,
              float beta, float *C, int ldc);

#endif
