/* gemm: see gemm.h. */
#include "nn/gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "base/cpu.h"
#include "base/parallel.h"

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

/* ---- fast paths ---- */

#define MR 4  /* rows of A per micro-tile: 16 and 32 channels split evenly */
#define NR 16 /* columns of B per micro-tile: two AVX vectors */
#define KC 256

#ifdef CPU_HAVE_X86
#include <immintrin.h>
#endif

int
gemm_fast(void)
{
	return cpu_isa() >= CPU_AVX2;
}

int
gemm_pad_ld(int n)
{
	/* 16 floats (one cache line) beyond a multiple of 16: rows at distinct sets */
	int ld = (n + 15) / 16 * 16;
	return ld % 256 == 0 ? ld + 16 : ld;
}

size_t
gemm_pack_floats(int M, int K)
{
	return (size_t)(M + MR - 1) / MR * MR * (size_t)K;
}

/* panel p holds rows p*MR.. as Ap[p*MR*K + k*MR + r], zero rows beyond M */
void
gemm_pack_a(float *Ap, const float *A, int lda, int M, int K)
{
	int np = (M + MR - 1) / MR;
	for (int p = 0; p < np; p++)
		for (int k = 0; k < K; k++)
			for (int r = 0; r < MR; r++) {
				int i = p * MR + r;
				Ap[((size_t)p * K + k) * MR + r] = i < M ? A[(size_t)i * lda + k] : 0.0f;
			}
}

/* The micro-tiles read B's row k at b + boff[k]: rows ldb apart for a
 * stored matrix, or shifted views of one padded image for an implicit
 * im2col (lib/nn/conv.c). */

/* the tail of a tile (nr < NR columns), plainly */
static void
tile_plain(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr,
           int nr)
{
	float t[MR][NR] = { { 0 } };
	for (int k = 0; k < kc; k++, ap += MR)
		for (int r = 0; r < MR; r++)
			for (int j = 0; j < nr; j++)
				t[r][j] += ap[r] * b[boff[k] + j];
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++)
			c[(size_t)r * ldc + j] = acc ? c[(size_t)r * ldc + j] + t[r][j] : t[r][j];
}

#ifdef CPU_HAVE_X86
CPU_TARGET_AVX2 static void
tile_4x16(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr)
{
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
	       c31 = c00;
	for (int k = 0; k < kc; k++, ap += MR) {
		const float *bk = b + boff[k];
		__m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8), a;
		a = _mm256_broadcast_ss(ap + 0);
		c00 = _mm256_fmadd_ps(a, b0, c00);
		c01 = _mm256_fmadd_ps(a, b1, c01);
		a = _mm256_broadcast_ss(ap + 1);
		c10 = _mm256_fmadd_ps(a, b0, c10);
		c11 = _mm256_fmadd_ps(a, b1, c11);
		a = _mm256_broadcast_ss(ap + 2);
		c20 = _mm256_fmadd_ps(a, b0, c20);
		c21 = _mm256_fmadd_ps(a, b1, c21);
		a = _mm256_broadcast_ss(ap + 3);
		c30 = _mm256_fmadd_ps(a, b0, c30);
		c31 = _mm256_fmadd_ps(a, b1, c31);
	}
#define STORE_ROW(r, v0, v1)                                                                          \
	do {                                                                                          \
		float *cp = c + (size_t)(r) * ldc;                                                    \
		if (acc) {                                                                            \
			v0 = _mm256_add_ps(v0, _mm256_loadu_ps(cp));                                  \
			v1 = _mm256_add_ps(v1, _mm256_loadu_ps(cp + 8));                              \
		}                                                                                     \
		_mm256_storeu_ps(cp, v0);                                                             \
		_mm256_storeu_ps(cp + 8, v1);                                                         \
	} while (0)
	STORE_ROW(0, c00, c01);
	if (mr > 1)
		STORE_ROW(1, c10, c11);
	if (mr > 2)
		STORE_ROW(2, c20, c21);
	if (mr > 3)
		STORE_ROW(3, c30, c31);
#undef STORE_ROW
}


/* lanes [0, n) of a vector: for the masked loads and stores of tails */
CPU_TARGET_AVX2 static __m256i
lane_mask(int n)
{
	return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* a tail of nr <= 8 columns (small maps end their grid with one): masked,
 * never reading or writing past column nr */
CPU_TARGET_AVX2 static void
tile_4x8(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr, int nr)
{
	const __m256i mask = lane_mask(nr);
	__m256 c0 = _mm256_setzero_ps(), c1 = c0, c2 = c0, c3 = c0;
	for (int k = 0; k < kc; k++, ap += MR) {
		__m256 b0 = _mm256_maskload_ps(b + boff[k], mask);
		c0 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 0), b0, c0);
		c1 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 1), b0, c1);
		c2 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 2), b0, c2);
		c3 = _mm256_fmadd_ps(_mm256_broadcast_ss(ap + 3), b0, c3);
	}
	__m256 v[MR] = { c0, c1, c2, c3 };
	for (int r = 0; r < mr; r++) {
		float *cp = c + (size_t)r * ldc;
		_mm256_maskstore_ps(cp, mask, acc ? _mm256_add_ps(v[r], _mm256_maskload_ps(cp, mask)) : v[r]);
	}
}
#endif

/* C (+)= A x B over the k-block [k0, k0 + kc) */
static void
packed_block(int M, int N, int K, int k0, int kc, const float *Ap, const float *B, const ptrdiff_t *boff, int acc,
             float *C, int ldc)
{
	const int np = (M + MR - 1) / MR, fast = gemm_fast();
	for (int j = 0; j < N; j += NR) {
		int nr = N - j < NR ? N - j : NR;
		for (int p = 0; p < np; p++) {
			int mr = M - p * MR < MR ? M - p * MR : MR;
			const float *ap = Ap + ((size_t)p * K + k0) * MR;
			float *c = C + (size_t)p * MR * ldc + j;
#ifdef CPU_HAVE_X86
			if (fast && nr == NR) {
				tile_4x16(kc, ap, B + j, boff, c, ldc, acc, mr);
				continue;
			}
			if (fast) {
				tile_4x8(kc, ap, B + j, boff, c, ldc, acc, mr, nr < 8 ? nr : 8);
				if (nr > 8)
					tile_4x8(kc, ap, B + j + 8, boff, c + 8, ldc, acc, mr, nr - 8);
				continue;
			}
#endif
			tile_plain(kc, ap, B + j, boff, c, ldc, acc, mr, nr);
		}
	}
}

void
gemm_packed_nn(int M, int N, int K, const float *Ap, const float *B, int ldb, int accumulate, float *C, int ldc)
{
	ptrdiff_t boff[KC];
	for (int k0 = 0; k0 < K; k0 += KC) {
		int kc = K - k0 < KC ? K - k0 : KC;
		for (int k = 0; k < kc; k++)
			boff[k] = (ptrdiff_t)k * ldb;
		packed_block(M, N, K, k0, kc, Ap, B + (size_t)k0 * ldb, boff, accumulate || k0 > 0, C, ldc);
	}
}

void
gemm_packed_rows(int M, int N, int K, const float *Ap, const float *B, const ptrdiff_t *boff, int accumulate,
                 float *C, int ldc)
{
	for (int k0 = 0; k0 < K; k0 += KC) {
		int kc = K - k0 < KC ? K - k0 : KC;
		packed_block(M, N, K, k0, kc, Ap, B, boff + k0, accumulate || k0 > 0, C, ldc);
	}
}

/* ---- C += A x B^T with B's rows at offsets: dot products of long rows ---- */

static float
dot_plain(const float *a, const float *b, int N)
{
	float t = 0;
	for (int j = 0; j < N; j++)
		t += a[j] * b[j];
	return t;
}

#ifdef CPU_HAVE_X86
CPU_TARGET_AVX2 static float
hsum8(__m256 v)
{
	__m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_movehdup_ps(s));
	return _mm_cvtss_f32(s);
}

/* a 4 x 3 block of C: 12 accumulators in registers, 7 loads per 12 FMAs */
CPU_TARGET_AVX2 static void
dot_4x3(const float *a, int lda, const float *b0, const float *b1, const float *b2, int N, float *c, int ldc)
{
	const float *a0 = a, *a1 = a + lda, *a2 = a1 + lda, *a3 = a2 + lda;
	__m256 s00 = _mm256_setzero_ps(), s01 = s00, s02 = s00, s10 = s00, s11 = s00, s12 = s00, s20 = s00,
	       s21 = s00, s22 = s00, s30 = s00, s31 = s00, s32 = s00;
	/* full vectors, then the last partial one masked (short rows of small
	 * maps would otherwise spend as long in a scalar tail as in the loop) */
#define STEP(LOAD)                                                                     \
	do {                                                                           \
		__m256 x0 = LOAD(b0 + j), x1 = LOAD(b1 + j), x2 = LOAD(b2 + j), y;      \
		y = LOAD(a0 + j);                                                      \
		s00 = _mm256_fmadd_ps(y, x0, s00);                                     \
		s01 = _mm256_fmadd_ps(y, x1, s01);                                     \
		s02 = _mm256_fmadd_ps(y, x2, s02);                                     \
		y = LOAD(a1 + j);                                                      \
		s10 = _mm256_fmadd_ps(y, x0, s10);                                     \
		s11 = _mm256_fmadd_ps(y, x1, s11);                                     \
		s12 = _mm256_fmadd_ps(y, x2, s12);                                     \
		y = LOAD(a2 + j);                                                      \
		s20 = _mm256_fmadd_ps(y, x0, s20);                                     \
		s21 = _mm256_fmadd_ps(y, x1, s21);                                     \
		s22 = _mm256_fmadd_ps(y, x2, s22);                                     \
		y = LOAD(a3 + j);                                                      \
		s30 = _mm256_fmadd_ps(y, x0, s30);                                     \
		s31 = _mm256_fmadd_ps(y, x1, s31);                                     \
		s32 = _mm256_fmadd_ps(y, x2, s32);                                     \
	} while (0)
	int j = 0;
	for (; j + 8 <= N; j += 8)
		STEP(_mm256_loadu_ps);
	if (j < N) {
		const __m256i mask = lane_mask(N - j);
#define MASKED(p) _mm256_maskload_ps((p), mask)
		STEP(MASKED);
#undef MASKED
	}
#undef STEP
	const __m256 acc[4][3] = { { s00, s01, s02 }, { s10, s11, s12 }, { s20, s21, s22 }, { s30, s31, s32 } };
	for (int m = 0; m < 4; m++)
		for (int r = 0; r < 3; r++)
			c[(size_t)m * ldc + r] += hsum8(acc[m][r]);
}
#endif

void
gemm_rows_nt(int M, int R, int N, const float *A, int lda, const float *B, const ptrdiff_t *boff, float *C, int ldc)
{
	int m0 = 0, r0 = 0;
#ifdef CPU_HAVE_X86
	for (; m0 + 4 <= M && gemm_fast(); m0 += 4)
		for (r0 = 0; r0 + 3 <= R; r0 += 3)
			dot_4x3(A + (size_t)m0 * lda, lda, B + boff[r0], B + boff[r0 + 1], B + boff[r0 + 2], N,
			        C + (size_t)m0 * ldc + r0, ldc);
#endif
	/* what the blocks left: the last rows of C (all of it without AVX2), then the last columns */
	for (int m = 0; m < M; m++)
		for (int r = m < m0 ? r0 : 0; r < R; r++)
			C[(size_t)m * ldc + r] += dot_plain(A + (size_t)m * lda, B + boff[r], N);
}
