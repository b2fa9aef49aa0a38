/* gemm: see gemm.h. */
#include "nn/gemm.h"

#include <cblas.h>
#include <omp.h>

#include "base/cpu.h"
#include "base/parallel.h"
#include "base/util.h"
#include "nn/gemm_kern.h"

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
gemm_syrk_tn(int N, int K, float alpha, const float *A, int lda, float beta, float *C, int ldc)
{
	if (N <= 0)
		return;
	cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, N, K, alpha, A, lda, beta, C, ldc);
}

void
gemm_trsm_rlt(int M, int N, const float *L, int ldl, float *B, int ldb)
{
	if (M <= 0 || N <= 0)
		return;
	cblas_strsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit, M, N, 1.0f, L, ldl, B, ldb);
}

void
gemm(int ta, int tb, int M, int N, int K, float alpha,
     const float *A, int lda, const float *B, int ldb,
     float beta, float *C, int ldc)
{
	gemm_split(gemm_serial, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

void
gemm_split(GemmFn *f, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
           int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	int nt = parallel_threads();
	double work = 2.0 * M * N * (K > 0 ? K : 1);
	if (omp_in_parallel() || nt == 1 || work < 4e6) {
		f(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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
				f(ta, tb, M, hi - lo, K, alpha, A, lda,
				            tb ? B + (long)lo * ldb : B + lo, ldb, beta, C + lo, ldc);
			else
				f(ta, tb, hi - lo, N, K, alpha, ta ? A + lo : A + (long)lo * lda, lda,
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

/* ---- fast paths ----
 * The micro-kernels of each level fill a table (lib/nn/gemm_kern.h); the
 * generic level runs the plain loops below, in panels of MR_PLAIN rows. */

#define MR_PLAIN 4
#define NR_PLAIN 16
#define KC 256

static const GemmKernels *
kernels(void)
{
#ifdef CPU_HAVE_X86
	switch (cpu_isa()) {
	case CPU_AVX512: return &gemm_kernels_avx512;
	case CPU_AVX2: return &gemm_kernels_avx2;
	default: break;
	}
#endif
	return NULL;
}

int
gemm_fast(void)
{
	return kernels() != NULL;
}

const char *
gemm_micro_name(void)
{
	const GemmKernels *k = kernels();
	return k ? k->name : "plain";
}

double
gemm_fma_peak(double seconds)
{
	const GemmKernels *kt = kernels();
	if (!kt)
		return 0;
	long iters = 1 << 16, done = 0;
	volatile float sink = 0;
	double t0 = now_seconds(), t;
	do {
		sink += kt->fma_loop(iters);
		done += iters;
		t = now_seconds() - t0;
	} while (t < seconds);
	(void)sink;
	return (double)kt->fma_flops * (double)done / t / 1e9;
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
	return (size_t)(M + GEMM_MR_MAX - 1) / GEMM_MR_MAX * GEMM_MR_MAX * (size_t)K;
}

/* panel p holds rows p*mr.. as Ap[p*mr*K + k*mr + r], zero rows beyond M */
void
gemm_pack_a(float *Ap, const float *A, int lda, int M, int K)
{
	const GemmKernels *kt = kernels();
	const int mr = kt ? kt->mr : MR_PLAIN, np = (M + mr - 1) / mr;
	for (int p = 0; p < np; p++)
		for (int k = 0; k < K; k++)
			for (int r = 0; r < mr; r++) {
				int i = p * mr + r;
				Ap[((size_t)p * K + k) * mr + r] = i < M ? A[(size_t)i * lda + k] : 0.0f;
			}
}

/* The tiles read B's row k at b + boff[k]: rows ldb apart for a stored
 * matrix, or shifted views of one padded image for an implicit im2col
 * (lib/nn/conv.c). */

/* one MR_PLAIN x nr tile, plainly */
static void
tile_plain(int kc, const float *ap, const float *b, const ptrdiff_t *boff, float *c, int ldc, int acc, int mr,
           int nr)
{
	float t[MR_PLAIN][NR_PLAIN] = { { 0 } };
	for (int k = 0; k < kc; k++, ap += MR_PLAIN)
		for (int r = 0; r < MR_PLAIN; r++)
			for (int j = 0; j < nr; j++)
				t[r][j] += ap[r] * b[boff[k] + j];
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++)
			c[(size_t)r * ldc + j] = acc ? c[(size_t)r * ldc + j] + t[r][j] : t[r][j];
}

/* C (+)= A x B over the k-block [k0, k0 + kc) */
static void
packed_block(int M, int N, int K, int k0, int kc, const float *Ap, const float *B, const ptrdiff_t *boff, int acc,
             float *C, int ldc)
{
	const GemmKernels *kt = kernels();
	if (kt) {
		kt->packed_block(M, N, K, k0, kc, Ap, B, boff, acc, C, ldc);
		return;
	}
	const int np = (M + MR_PLAIN - 1) / MR_PLAIN;
	for (int j = 0; j < N; j += NR_PLAIN) {
		int nr = N - j < NR_PLAIN ? N - j : NR_PLAIN;
		for (int p = 0; p < np; p++) {
			int mr = M - p * MR_PLAIN < MR_PLAIN ? M - p * MR_PLAIN : MR_PLAIN;
			tile_plain(kc, Ap + ((size_t)p * K + k0) * MR_PLAIN, B + j, boff,
			           C + (size_t)p * MR_PLAIN * ldc + j, ldc, acc, mr, nr);
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

void
gemm_rows_nt(int M, int R, int N, const float *A, int lda, const float *B, const ptrdiff_t *boff, float *C, int ldc)
{
	const GemmKernels *kt = kernels();
	if (kt) {
		kt->rows_nt(M, R, N, A, lda, B, boff, C, ldc);
		return;
	}
	for (int m = 0; m < M; m++)
		for (int r = 0; r < R; r++) {
			const float *a = A + (size_t)m * lda, *b = B + boff[r];
			float t = 0;
			for (int j = 0; j < N; j++)
				t += a[j] * b[j];
			C[(size_t)m * ldc + r] += t;
		}
}
