/* gemm_kern: the table of micro-kernels lib/nn/gemm.c calls at each
 * instruction-set level (lib/base/cpu.h).
 *
 * The kernels are written once, over a vector width, in gemm_micro.h;
 * gemm_avx2.c (8 floats) and gemm_avx512.c (16 floats) include it, the
 * Makefile compiles each for its level, and each fills one table. The
 * generic level has no table: gemm.c's plain loops and OpenBLAS.
 *
 * A bf16 variant (bf16 inputs, fp32 accumulation, vdpbf16ps) slots in
 * beside it: a gemm_avx512bf16.c including the same template with the
 * element type and the multiply-add as its width-specific lines
 * (vdpbf16ps takes pairs along k: A packed as [k/2][mr][2], B's row pair
 * (k, k+1) interleaved, e.g. a padded image copied with channel pairs
 * interleaved and the implicit offsets over (kh, kw, c/2)), compiled with
 * -march=x86-64-v4 -mavx512bf16 (a Makefile pattern like the others), its
 * table chosen when the level is avx512, cpu_features()->avx512bf16 is
 * set and the caller asks for bf16. The table's shape (mr, packed_block,
 * rows_nt) stays; only the pointer types of A and B change. */
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
