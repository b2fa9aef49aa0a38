/* bf16: bfloat16 matrix products with fp32 accumulation, as AVX512_BF16's
 * vdpbf16ps computes them.
 *
 *   C = alpha * op(A) * op(B) + beta * C     (row-major, as lib/nn/gemm.h)
 *
 * with every element of A and B rounded to bf16 (round to nearest even)
 * while it is packed, and the products summed in fp32. The operands stay
 * fp32 in memory: the rounding happens in the packing, so callers (the
 * convolutions and linear layers in bf16 mode) hand over the same buffers
 * as for gemm(). (The in-place products at the end read B already in bf16.)
 *
 * Packed layout (what vdpbf16ps reads): K is taken in pairs (an odd K is
 * padded with a zero). A is cut into panels of BF16_MR rows, B into panels
 * of BF16_NR columns, both zero-padded at the edges:
 *     Ap[(p * KP + q) * BF16_MR * 2 + r * 2 + e] = bf16(A[p*MR + r][2q + e])
 *     Bp[(p * KP + q) * BF16_NR * 2 + j * 2 + e] = bf16(B[2q + e][p*NR + j])
 * with KP = (K + 1) / 2 pairs, so that one 32-bit word of Ap is an (a0, a1)
 * pair to broadcast and 16 words of Bp are the pairs of 16 columns.
 *
 * One micro-kernel semantics, two implementations: for each pair q,
 *     t = ftz(t + b1 * a1); t = ftz(t + b0 * a0)
 * (the odd element first, each step one fused multiply-add with the product
 * exact, bf16 denormal inputs read as zero, denormal results flushed to
 * zero: Intel SDM, VDPBF16PS). The tile sums start at zero for every block
 * of BF16_KC elements of K and are then added to C in fp32. The portable
 * kernel is plain C; the native one uses _mm512_dpbf16_ps where the CPU has
 * avx512_bf16. They agree bit for bit, except where a product of two bf16
 * values is below FLT_MIN in magnitude (the portable product rounds there;
 * the fused one does not) -- far below any value a network holds. */
#ifndef SSL_BF16_H
#define SSL_BF16_H

#include <stddef.h>
#include <stdint.h>

#define BF16_MR 8   /* rows of a micro-tile */
#define BF16_NR 32  /* columns of a micro-tile: two 512-bit vectors of fp32 */
#define BF16_KC 256 /* elements of K per packed block */

/* fp32 -> bf16 as vcvtneps2bf16 converts: round to nearest even, NaN stays
 * NaN (made quiet, sign kept), infinities stay, denormals become zero (with
 * their sign; vdpbf16ps would read a bf16 denormal as zero anyway). */
uint16_t bf16_from_f32(float x);
float    bf16_to_f32(uint16_t h);
/* x rounded to bf16 and back. */
float    bf16_round(float x);

/* uint16_t elements that the packed panels of an M x K A (or K x N B) take. */
size_t bf16_pack_a_elems(int M, int K);
size_t bf16_pack_b_elems(int K, int N);
/* Packs op(A) (M x K; ta: A stored K x M) and op(B) (K x N; tb: B stored
 * N x K) in the layout above, rounding to bf16 (with vcvtne2ps2bf16 where
 * bf16_native(): the same bytes). */
void   bf16_pack_a(uint16_t *Ap, int ta, const float *A, int lda, int M, int K);
void   bf16_pack_b(uint16_t *Bp, int tb, const float *B, int ldb, int K, int N);

/* Whether the native kernel runs: the CPU has avx512_bf16, lib/base/cpu's
 * level is avx512 ($SSL_ISA=generic or avx2, or cpu_isa_set, turn it off)
 * and nothing else turned it off ($SSL_BF16=portable, bf16_native_set(0)). */
int    bf16_native(void);
/* Whether the CPU itself has avx512_bf16 (whatever the overrides say). */
int    bf16_cpu_has(void);
/* Tests and benches: 0 forces the portable kernel, 1 goes back to the CPU's
 * choice (and the environment's). */
void   bf16_native_set(int on);

/* C = alpha * op(A) * op(B) + beta * C with bf16 operands and fp32 sums, on
 * the calling thread. Blocks of packed operands live in per-thread static
 * buffers: no allocation, any M, N, K. beta == 0 overwrites C. */
void   gemm_bf16_serial(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                        const float *B, int ldb, float beta, float *C, int ldc);
/* The same (alpha 1) with op(A) packed beforehand, whole, by bf16_pack_a
 * into bf16_pack_a_elems(M, K) elements: a matrix used in many products
 * (a convolution's weights, over its chunks) is converted once. The same
 * bits as gemm_bf16_serial. */
void   gemm_bf16_packed_a(int M, int N, int K, const uint16_t *Ap, int tb, const float *B, int ldb, float beta,
                          float *C, int ldc);
/* The same, split over the OpenMP team as gemm() (lib/nn/gemm.h). */
void   gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc);

/* ---- products read in place (lib/nn/conv's stride-1 convolutions) ----
 * B is not packed: its rows are read where they lie, at offsets, as the
 * fp32 implicit kernels read them (lib/nn/gemm.h gemm_packed_rows,
 * gemm_rows_nt). The same steps as the kernels above: vdpbf16ps's fused
 * pair steps (odd element first), bf16 denormals read as zero, denormal
 * sums flushed; native and portable give the same bits. Unlike them the
 * sums run over all of K (no restart every BF16_KC elements), so they are
 * not gemm_bf16's bits for K > BF16_KC. */

/* Ap for gemm_bf16_rows: the M x 2*KP matrix whose element (i, k) is
 * X[i * si + koff[k]], or 0 where koff[k] < 0, packed as bf16_pack_a. */
void   bf16_pack_a_gather(uint16_t *Ap, const float *X, int M, size_t KP, ptrdiff_t si, const ptrdiff_t *koff);
/* C (M x N, row stride ldc) = Ap x B, overwritten. Pair row q of B is the
 * N words at B + boff[q]; word j holds the pair (element 2q, element 2q+1)
 * of column j, the even one in its low half (bf16_interleave). */
void   gemm_bf16_rows(int M, int N, size_t KP, const uint16_t *Ap, const uint32_t *B, const ptrdiff_t *boff,
                      float *C, int ldc);
/* C (M x R, row stride ldc) += A x B^T: the dot products of rows i of A
 * (the N values at A + i * lda) and r of B (the N values at B + boff[r]).
 * Each dot is 16 lane sums over pairs of consecutive elements (lane l
 * takes pairs l, l + 16, ...), then the lanes are added as
 * f_i = l_i + l_(i+8), ((f0 + f1) + (f2 + f3)) + ((f4 + f5) + (f6 + f7)). */
void   gemm_bf16_rows_nt(int M, int R, int N, const uint16_t *A, size_t lda, const uint16_t *B,
                         const ptrdiff_t *boff, float *C, int ldc);
/* dst[x] = bf16(src[x]) for x < n. */
void   bf16_convert(uint16_t *dst, const float *src, size_t n);
/* dst[x] = bf16(a[x]) | bf16(b[x]) << 16 for x < n (b NULL: zeros). */
void   bf16_interleave(uint32_t *dst, const float *a, const float *b, size_t n);

#endif
