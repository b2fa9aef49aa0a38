/* gemm_micro: the micro-kernels of lib/nn/gemm.c, written once over a
 * vector width (GCC vector extensions). Not a header to include anywhere
 * else: gemm_avx2.c and gemm_avx512.c each define
 *
 *   VL     floats per vector (8, 16)
 *   MR     rows of A per tile and per packed panel
 *   NV     vectors per tile row (a tile is MR x NV * VL)
 *   DR     columns of C per dot block (rows_nt)
 *   TABLE  the GemmKernels to fill, NAME its name
 *
 * and include it, compiled with their level's target flags. The logic is
 * the same at both widths, so the tests on an AVX2 machine exercise it;
 * only the code generation differs on AVX-512. A broadcast, the FMA (named:
 * GCC contracts a * b + c only from -O2, and an unfused multiply-add loses
 * the precision that cancelling weight gradients need), the masked loads
 * and stores of tails and the horizontal sum are the width-specific lines. */
#include <immintrin.h>
#include <string.h>

#include "nn/gemm_kern.h"

typedef float vf __attribute__((vector_size(VL * sizeof(float))));

#define NR (NV * VL) /* columns of B per tile */
#define DM 4         /* rows of C per dot block */

static inline vf
vload(const float *p)
{
	vf v;
	memcpy(&v, p, sizeof v);
	return v;
}

static inline void
vstore(float *p, vf v)
{
	memcpy(p, &v, sizeof v);
}

#if VL == 8
static inline vf
vbcast(float a)
{
	return (vf)_mm256_set1_ps(a);
}
/* a * b + c, rounded once */
static inline vf
vfma(vf a, vf b, vf c)
{
	return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
}
static inline __m256i
lane_mask(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
/* lanes [0, n) of p; nothing read beyond */
static inline vf
vload_n(const float *p, int n)
{
	return (vf)_mm256_maskload_ps(p, lane_mask(n));
}
static inline void
vstore_n(float *p, vf v, int n)
{
	_mm256_maskstore_ps(p, lane_mask(n), (__m256)v);
}
static inline float
vsum(vf v)
{
	__m256 x = (__m256)v;
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(x), _mm256_extractf128_ps(x, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}
/* the sums of a, b, c, d in one vector: a hadd tree instead of four reductions */
static inline __m128
vsum4(vf a, vf b, vf c, vf d)
{
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps((__m256)a, (__m256)b), _mm256_hadd_ps((__m256)c, (__m256)d));
	return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}
#elif VL == 16
static inline vf
vbcast(float a)
{
	return (vf)_mm512_set1_ps(a);
}
static inline vf
vfma(vf a, vf b, vf c)
{
	return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
}
static inline vf
vload_n(const float *p, int n)
{
	return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline void
vstore_n(float *p, vf v, int n)
{
	_mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
}
static inline float
vsum(vf v)
{
	return _mm512_reduce_add_ps((__m512)v);
}
static inline __m256
fold256(vf v)
{
	__m512 x = (__m512)v;
	return _mm256_add_ps(_mm512_castps512_ps256(x), _mm512_extractf32x8_ps(x, 1));
}
/* the sums of a, b, c, d in one vector: halves folded, then a hadd tree */
static inline __m128
vsum4(vf a, vf b, vf c, vf d)
{
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(fold256(a), fold256(b)), _mm256_hadd_ps(fold256(c), fold256(d)));
	return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}
#else
#error "gemm_micro.h: VL must be 8 or 16"
#endif

/* ---- C (+)= packed A x B: tiles of MR rows x NR columns ---- */

/* a full tile, MR x NV vectors: the accumulators stay in registers */
static void
tile_full(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr)
{
	vf t[MR][NV];
#pragma GCC unroll 16
	for (int r = 0; r < MR; r++)
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			t[r][v] = (vf){ 0 };
	for (int k = 0; k < kc; k++, ap += MR) {
		const float *bk = b + boff[k];
		vf bv[NV];
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			bv[v] = vload(bk + v * VL);
#pragma GCC unroll 16
		for (int r = 0; r < MR; r++) {
			vf a = vbcast(ap[r]);
#pragma GCC unroll 4
			for (int v = 0; v < NV; v++)
				t[r][v] = vfma(a, bv[v], t[r][v]);
		}
	}
#pragma GCC unroll 16
	for (int r = 0; r < MR; r++) {
		if (r >= mr)
			break;
		float *cp = c + (size_t)r * ldc;
#pragma GCC unroll 4
		for (int v = 0; v < NV; v++)
			vstore(cp + v * VL, acc ? t[r][v] + vload(cp + v * VL) : t[r][v]);
	}
}

/* nr <= VL columns (the end of a row of small maps): masked, never reading
 * or writing past column nr */
static void
tile_tail(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr,
          int nr)
{
	vf t[MR];
#pragma GCC unroll 16
	for (int r = 0; r < MR; r++)
		t[r] = (vf){ 0 };
	for (int k = 0; k < kc; k++, ap += MR) {
		vf b0 = vload_n(b + boff[k], nr);
#pragma GCC unroll 16
		for (int r = 0; r < MR; r++)
			t[r] = vfma(vbcast(ap[r]), b0, t[r]);
	}
	for (int r = 0; r < mr; r++) {
		float *cp = c + (size_t)r * ldc;
		vstore_n(cp, acc ? t[r] + vload_n(cp, nr) : t[r], nr);
	}
}

static void
packed_block(int M, int N, int K, int k0, int kc, const float *Ap, const float *B, const ptrdiff_t *boff,
             int acc, float *C, int ldc)
{
	const int np = (M + MR - 1) / MR;
	for (int j = 0; j < N; j += NR) {
		int nr = N - j < NR ? N - j : NR;
		for (int p = 0; p < np; p++) {
			int mr = M - p * MR < MR ? M - p * MR : MR;
			const float *ap = Ap + ((size_t)p * K + k0) * MR;
			float *c = C + (size_t)p * MR * ldc + j;
			if (nr == NR) {
				tile_full(kc, ap, B + j, boff, c, ldc, acc, mr);
				continue;
			}
			for (int v = 0; v < nr; v += VL)
				tile_tail(kc, ap, B + j + v, boff, c + v, ldc, acc, mr, nr - v < VL ? nr - v : VL);
		}
	}
}

/* ---- C += A x B^T, B's rows at offsets: dot products of long rows ---- */

/* a dm x dr block of C (dm <= DM, dr <= DR, constants once inlined): full
 * vectors, then the last partial one masked (short rows of small maps would
 * otherwise spend as long in a scalar tail as in the loop); rows of 3 or 4
 * sums are reduced together (vsum4: on small maps the horizontal sums cost
 * a third as much as the FMAs). */
static inline __attribute__((always_inline)) void
dot_block(int dm, int dr, const float *a, int lda, const float *const *b, int N, float *c, int ldc)
{
	vf s[DM][DR];
#pragma GCC unroll 16
	for (int m = 0; m < dm; m++)
#pragma GCC unroll 16
		for (int r = 0; r < dr; r++)
			s[m][r] = (vf){ 0 };
	int j = 0;
	for (; j + VL <= N; j += VL) {
		vf x[DR];
#pragma GCC unroll 16
		for (int r = 0; r < dr; r++)
			x[r] = vload(b[r] + j);
#pragma GCC unroll 16
		for (int m = 0; m < dm; m++) {
			vf y = vload(a + (size_t)m * lda + j);
#pragma GCC unroll 16
			for (int r = 0; r < dr; r++)
				s[m][r] = vfma(y, x[r], s[m][r]);
		}
	}
	if (j < N) {
		vf x[DR];
#pragma GCC unroll 16
		for (int r = 0; r < dr; r++)
			x[r] = vload_n(b[r] + j, N - j);
#pragma GCC unroll 16
		for (int m = 0; m < dm; m++) {
			vf y = vload_n(a + (size_t)m * lda + j, N - j);
#pragma GCC unroll 16
			for (int r = 0; r < dr; r++)
				s[m][r] = vfma(y, x[r], s[m][r]);
		}
	}
#if DR >= 4
	if (dr == 4) {
#pragma GCC unroll 16
		for (int m = 0; m < dm; m++) {
			float *cm = c + (size_t)m * ldc;
			_mm_storeu_ps(cm, _mm_add_ps(_mm_loadu_ps(cm), vsum4(s[m][0], s[m][1], s[m][2], s[m][3])));
		}
		return;
	}
#endif
	if (dr == 3) {
#pragma GCC unroll 16
		for (int m = 0; m < dm; m++) {
			float t[4], *cm = c + (size_t)m * ldc;
			_mm_storeu_ps(t, vsum4(s[m][0], s[m][1], s[m][2], (vf){ 0 }));
			cm[0] += t[0], cm[1] += t[1], cm[2] += t[2];
		}
		return;
	}
#pragma GCC unroll 16
	for (int m = 0; m < dm; m++)
#pragma GCC unroll 16
		for (int r = 0; r < dr; r++)
			c[(size_t)m * ldc + r] += vsum(s[m][r]);
}

static void
dot_main(const float *a, int lda, const float *const *b, int N, float *c, int ldc)
{
	dot_block(DM, DR, a, lda, b, N, c, ldc);
}

static void
dot_col(const float *a, int lda, const float *const *b, int N, float *c, int ldc)
{
	dot_block(DM, 1, a, lda, b, N, c, ldc);
}

static void
dot_one(const float *a, int lda, const float *const *b, int N, float *c, int ldc)
{
	dot_block(1, 1, a, lda, b, N, c, ldc);
}

static void
rows_nt(int M, int R, int N, const float *A, int lda, const float *B, const ptrdiff_t *boff, float *C, int ldc)
{
	const float *b[DR];
	int m = 0;
	for (; m + DM <= M; m += DM) {
		const float *a = A + (size_t)m * lda;
		float *c = C + (size_t)m * ldc;
		int r = 0;
		for (; r + DR <= R; r += DR) {
			for (int i = 0; i < DR; i++)
				b[i] = B + boff[r + i];
			dot_main(a, lda, b, N, c + r, ldc);
		}
		for (; r < R; r++) {
			b[0] = B + boff[r];
			dot_col(a, lda, b, N, c + r, ldc);
		}
	}
	for (; m < M; m++)
		for (int r = 0; r < R; r++) {
			b[0] = B + boff[r];
			dot_one(A + (size_t)m * lda, lda, b, N, C + (size_t)m * ldc + r, ldc);
		}
}

/* ---- the FMA peak: FMA_CHAINS independent chains, no memory traffic ---- */

#define FMA_CHAINS 12 /* > latency x FMA pipes (4 x 2 on Zen 4/5 and most others) */

static float
fma_loop(long iters)
{
	vf acc[FMA_CHAINS];
	const vf m = vbcast(0.999999f), a = vbcast(1e-6f);
#pragma GCC unroll 16
	for (int r = 0; r < FMA_CHAINS; r++)
		acc[r] = vbcast((float)r);
	for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
		for (int r = 0; r < FMA_CHAINS; r++)
			acc[r] = vfma(acc[r], m, a);
	vf t = acc[0];
#pragma GCC unroll 16
	for (int r = 1; r < FMA_CHAINS; r++)
		t += acc[r];
	return vsum(t);
}

const GemmKernels TABLE = { NAME, MR, packed_block, rows_nt, fma_loop, 2 * FMA_CHAINS * VL };
