/* gemm_kern: the table of micro-kernels lib/nn/gemm.c calls at each
 * instruction-set level (lib/base/cpu.h).
 *
 * The kernels are written once, over a vector width, in gemm_micro.h;
 * gemm_avx2.c (8 floats) and gemm_avx512.c (16 floats) include it, the
 * Makefile compiles each for its level, and each fills one table. The
 * generic level has no table: gemm.c's plain loops and OpenBLAS.
 *
 * A bf16 variant (packed bf16 A and B, fp32 accumulation, vdpbf16ps) slots
 * in as more members of the same table, filled where the CPU has
 * avx512_bf16: the packing (pack_a) and the tile loop (packed_block) are
 * the two places that know the element type. */
#ifndef SSL_GEMM_KERN_H
#define SSL_GEMM_KERN_H

#include <stddef.h>

/* rows of A per packed panel, at most (gemm_pack_floats sizes for this) */
#define GEMM_MR_MAX 8

typedef struct {
	const char *name; /* "avx2 4x16", for benches */
	int mr;           /* rows of A per packed panel (gemm_pack_a's layout) */
	/* C (+)= A x B over the k-block [k0, k0 + kc): A packed in panels of mr
	 * rows (K per panel), B's row k at B + boff[k] */
	void (*packed_block)(int M, int N, int K, int k0, int kc, const float *Ap, const float *B,
	                     const ptrdiff_t *boff, int acc, float *C, int ldc);
	/* C (M x R) += A (M x N, lda) x B^T, B's row r (N floats) at B + boff[r] */
	void (*rows_nt)(int M, int R, int N, const float *A, int lda, const float *B, const ptrdiff_t *boff,
	                float *C, int ldc);
	/* iters rounds of fma_flops FLOPs in registers (for gemm_fma_peak) */
	float (*fma_loop)(long iters);
	int fma_flops;
} GemmKernels;

extern const GemmKernels gemm_kernels_avx2, gemm_kernels_avx512;

#endif
