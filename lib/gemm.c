/* gemm: see gemm.h. */
#include "gemm.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

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

/* ---- fast paths ---- */

#define MR 4  /* rows of A per micro-tile: 16 and 32 channels split evenly */
#define NR 16 /* columns of B per micro-tile: two AVX vectors */
#define KC 256

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

static int fast_state = -1;

void
gemm_fast_set(int on)
{
	fast_state = -1;
	if (on)
		(void)gemm_fast();
	else
		fast_state = 0;
}

int
gemm_fast(void)
{
	int v = fast_state;
	if (v < 0) {
#ifdef HAVE_X86
		__builtin_cpu_init();
		v = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
		v = 0;
#endif
		if (getenv("SSL_NO_FAST_GEMM"))
			v = 0;
		fast_state = v;
	}
	return v;
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

/* the tail of a tile (nr < NR columns), plainly */
static void
tile_plain(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, int acc, int mr, int nr)
{
	float t[MR][NR] = { { 0 } };
	for (int k = 0; k < kc; k++, ap += MR, b += ldb)
		for (int r = 0; r < MR; r++)
			for (int j = 0; j < nr; j++)
				t[r][j] += ap[r] * b[j];
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++)
			c[(size_t)r * ldc + j] = acc ? c[(size_t)r * ldc + j] + t[r][j] : t[r][j];
}

#ifdef HAVE_X86
__attribute__((target("avx2,fma"))) static void
tile_4x16(int kc, const float *ap, const float *b, int ldb, float *c, int ldc, int acc, int mr)
{
	__m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00,
	       c31 = c00;
	for (int k = 0; k < kc; k++, ap += MR, b += ldb) {
		__m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8), a;
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

#endif

void
gemm_packed_nn(int M, int N, int K, const float *Ap, const float *B, int ldb, int accumulate, float *C, int ldc)
{
	const int np = (M + MR - 1) / MR;
	for (int k0 = 0; k0 < K; k0 += KC) {
		int kc = K - k0 < KC ? K - k0 : KC, acc = accumulate || k0 > 0;
		for (int j = 0; j < N; j += NR) {
			int nr = N - j < NR ? N - j : NR;
			for (int p = 0; p < np; p++) {
				int mr = M - p * MR < MR ? M - p * MR : MR;
				const float *ap = Ap + ((size_t)p * K + k0) * MR;
				const float *b = B + (size_t)k0 * ldb + j;
				float *c = C + (size_t)p * MR * ldc + j;
#ifdef HAVE_X86
				if (nr == NR) {
					tile_4x16(kc, ap, b, ldb, c, ldc, acc, mr);
					continue;
				}
#endif
				tile_plain(kc, ap, b, ldb, c, ldc, acc, mr, nr);
			}
		}
	}
}
