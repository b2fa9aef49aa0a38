/* bf16: see bf16.h. Blocked like a Goto GEMM: for each BF16_NC columns and
 * BF16_KC elements of K, B's block is packed once; for each BF16_MC rows,
 * A's block; then micro-tiles of BF16_MR x BF16_NR, rows innermost so that
 * one packed column panel of B stays in L1. */
#include "nn/bf16.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "nn/gemm.h"

#define BF16_MC 128  /* rows of A per packed block (64 KB) */
#define BF16_NC 1024 /* columns of B per packed block (512 KB) */

#ifdef CPU_HAVE_X86
#include <immintrin.h>
#endif

/* ---- conversion ---- */

uint16_t
bf16_from_f32(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	if ((u & 0x7f800000u) == 0) /* zero or denormal: signed zero */
		return (uint16_t)((u >> 16) & 0x8000u);
	if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep sign and top payload, make it quiet */
		return (uint16_t)((u >> 16) | 0x0040u);
	u += 0x7fffu + ((u >> 16) & 1u);
	return (uint16_t)(u >> 16);
}

float
bf16_to_f32(uint16_t h)
{
	uint32_t u = (uint32_t)h << 16;
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

float
bf16_round(float x)
{
	return bf16_to_f32(bf16_from_f32(x));
}

/* ---- packing ---- */

static size_t
pairs(int K)
{
	return ((size_t)K + 1) / 2;
}

size_t
bf16_pack_a_elems(int M, int K)
{
	return ((size_t)M + BF16_MR - 1) / BF16_MR * BF16_MR * 2 * pairs(K);
}

size_t
bf16_pack_b_elems(int K, int N)
{
	return ((size_t)N + BF16_NR - 1) / BF16_NR * BF16_NR * 2 * pairs(K);
}

/* One packing for both sides: rows (A) or columns (B) of a panel of w, the
 * element (i, k) of op(X) at X[i * si + k * sk]. */
static void
pack_portable(uint16_t *Xp, int w, const float *X, size_t si, size_t sk, int rows, int K)
{
	const size_t KP = pairs(K);
	const int np = (rows + w - 1) / w;
	for (int p = 0; p < np; p++) {
		uint16_t *dst = Xp + (size_t)p * KP * w * 2;
		for (size_t q = 0; q < KP; q++)
			for (int r = 0; r < w; r++) {
				int i = p * w + r;
				int k = (int)(2 * q);
				const float *x = X + (size_t)i * si + (size_t)k * sk;
				uint16_t *d = dst + (q * w + r) * 2;
				d[0] = i < rows ? bf16_from_f32(x[0]) : 0;
				d[1] = i < rows && k + 1 < K ? bf16_from_f32(x[sk]) : 0;
			}
	}
}

#ifdef CPU_HAVE_X86
static void pack_native(uint16_t *Xp, int w, const float *X, size_t si, size_t sk, int rows, int K);
#endif

static void
pack(uint16_t *Xp, int w, const float *X, size_t si, size_t sk, int rows, int K)
{
#ifdef CPU_HAVE_X86
	if ((si == 1 || sk == 1) && (w == 8 || w % 16 == 0) && bf16_native()) {
		pack_native(Xp, w, X, si, sk, rows, K);
		return;
	}
#endif
	pack_portable(Xp, w, X, si, sk, rows, K);
}

void
bf16_pack_a(uint16_t *Ap, int ta, const float *A, int lda, int M, int K)
{
	pack(Ap, BF16_MR, A, ta ? 1 : (size_t)lda, ta ? (size_t)lda : 1, M, K);
}

void
bf16_pack_b(uint16_t *Bp, int tb, const float *B, int ldb, int K, int N)
{
	pack(Bp, BF16_NR, B, tb ? (size_t)ldb : 1, tb ? 1 : (size_t)ldb, N, K);
}

/* ---- run-time choice (lib/base/cpu: the avx512 level and the avx512_bf16 feature) ---- */

static int portable_forced = -1; /* -1: not decided yet ($SSL_BF16) */

int
bf16_cpu_has(void)
{
	const CpuFeatures *f = cpu_features();
	return f->avx512bf16 && f->avx512f && f->avx512bw && f->avx512vl;
}

int
bf16_native(void)
{
	if (portable_forced < 0) {
		const char *e = getenv("SSL_BF16");
		portable_forced = e && strcmp(e, "portable") == 0;
	}
	return !portable_forced && bf16_cpu_has() && cpu_isa() == CPU_AVX512;
}

void
bf16_native_set(int on)
{
	portable_forced = on ? -1 : 1;
}

/* ---- micro-kernels: C[mr x nr] (+)= alpha * (Ap panel x Bp panel) over kp pairs ---- */

typedef void TileFn(size_t kp, const uint16_t *ap, const uint16_t *bp, float *c, int ldc, int mr, int nr, int acc,
                    float alpha);

/* a bf16 value as vdpbf16ps reads it: denormals are zero */
static inline float
daz(uint16_t h)
{
	return (h & 0x7f80u) ? bf16_to_f32(h) : bf16_to_f32(h & 0x8000u);
}

/* and what it writes: denormal results flushed to (signed) zero */
static inline float
ftz(float x)
{
	return fabsf(x) < FLT_MIN ? copysignf(0.0f, x) : x;
}

/* One vdpbf16ps lane step on the pair (a0, a1) x (b0, b1), inputs already
 * read through daz: the odd product first, each sum flushed. (The product of
 * two bf16 values is exact in fp32: no fma needed.) The portable kernels
 * all go through it. */
static inline float
pair_step(float t, float a0, float a1, float b0, float b1)
{
	return ftz(ftz(t + b1 * a1) + b0 * a0);
}

static void
tile_portable(size_t kp, const uint16_t *ap, const uint16_t *bp, float *c, int ldc, int mr, int nr, int acc,
              float alpha)
{
	float t[BF16_MR][BF16_NR] = { { 0 } };
	for (size_t q = 0; q < kp; q++, ap += 2 * BF16_MR, bp += 2 * BF16_NR) {
		float b0[BF16_NR], b1[BF16_NR];
		for (int j = 0; j < BF16_NR; j++) {
			b0[j] = daz(bp[2 * j]);
			b1[j] = daz(bp[2 * j + 1]);
		}
		for (int r = 0; r < BF16_MR; r++) {
			const float a0 = daz(ap[2 * r]), a1 = daz(ap[2 * r + 1]);
			for (int j = 0; j < BF16_NR; j++)
				t[r][j] = pair_step(t[r][j], a0, a1, b0[j], b1[j]);
		}
	}
	for (int r = 0; r < mr; r++)
		for (int j = 0; j < nr; j++) {
			float v = alpha == 1.0f ? t[r][j] : t[r][j] * alpha;
			float *cp = &c[(size_t)r * ldc + j];
			*cp = acc ? *cp + v : v;
		}
}

#ifdef CPU_HAVE_X86
#define NATIVE CPU_TARGET_AVX512_BF16

NATIVE static inline __m512bh
bcast_pair(const uint16_t *p)
{
	int32_t w;
	memcpy(&w, p, sizeof w);
	return (__m512bh)_mm512_set1_epi32(w);
}

NATIVE static void
tile_native(size_t kp, const uint16_t *ap, const uint16_t *bp, float *c, int ldc, int mr, int nr, int acc,
            float alpha)
{
	__m512 t[BF16_MR][2];
	for (int r = 0; r < BF16_MR; r++)
		t[r][0] = t[r][1] = _mm512_setzero_ps();
	for (size_t q = 0; q < kp; q++, ap += 2 * BF16_MR, bp += 2 * BF16_NR) {
		const __m512bh b0 = (__m512bh)_mm512_loadu_si512(bp), b1 = (__m512bh)_mm512_loadu_si512(bp + 32);
#pragma GCC unroll 8
		for (int r = 0; r < BF16_MR; r++) {
			const __m512bh a = bcast_pair(ap + 2 * r);
			t[r][0] = _mm512_dpbf16_ps(t[r][0], b0, a);
			t[r][1] = _mm512_dpbf16_ps(t[r][1], b1, a);
		}
	}
	const __mmask16 m0 = nr >= 16 ? 0xffff : (__mmask16)((1u << nr) - 1);
	const __mmask16 m1 = nr >= 32 ? 0xffff : nr <= 16 ? 0 : (__mmask16)((1u << (nr - 16)) - 1);
	const __m512 va = _mm512_set1_ps(alpha);
	for (int r = 0; r < mr; r++) {
		float *cp = c + (size_t)r * ldc;
		__m512 v0 = alpha == 1.0f ? t[r][0] : _mm512_mul_ps(t[r][0], va);
		__m512 v1 = alpha == 1.0f ? t[r][1] : _mm512_mul_ps(t[r][1], va);
		if (acc) {
			v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, cp));
			v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, cp + 16));
		}
		_mm512_mask_storeu_ps(cp, m0, v0);
		_mm512_mask_storeu_ps(cp + 16, m1, v1);
	}
}

static inline __mmask16
mask16(int n)
{
	return n >= 16 ? (__mmask16)0xffff : n <= 0 ? 0 : (__mmask16)((1u << n) - 1);
}

/* v[r] word c -> v[c] word r: a 16 x 16 transpose of 32-bit words (pairs) */
NATIVE static inline void
transpose16(__m512i v[16])
{
	__m512i t[16];
	for (int i = 0; i < 16; i += 2) { /* per 128-bit lane: rows i, i+1 interleaved */
		t[i] = _mm512_unpacklo_epi32(v[i], v[i + 1]);
		t[i + 1] = _mm512_unpackhi_epi32(v[i], v[i + 1]);
	}
	for (int i = 0; i < 16; i += 4) { /* per lane: v[i + c] = word c of rows i..i+3 */
		v[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
		v[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
		v[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
		v[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
	}
	for (int i = 0; i < 16; i += 8) /* lanes 0, 2 / 1, 3 of row groups i and i+4 */
		for (int c = 0; c < 4; c++) {
			t[i + c] = _mm512_shuffle_i32x4(v[i + c], v[i + 4 + c], 0x88);
			t[i + 4 + c] = _mm512_shuffle_i32x4(v[i + c], v[i + 4 + c], 0xdd);
		}
	for (int c = 0; c < 8; c++) { /* word c and c + 8 of all 16 rows */
		v[c] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0x88);
		v[c + 8] = _mm512_shuffle_i32x4(t[c], t[8 + c], 0xdd);
	}
}

/* The native packing. vcvtne2ps2bf16 converts as bf16_from_f32 does (round
 * to nearest even, denormals to zero, NaN made quiet): the packed bytes do
 * not depend on the path. Two cases, by which index is contiguous in
 * memory: si == 1 (k runs down the rows: pack_native) and sk == 1 (a row's
 * pairs are adjacent already: here). sk == 1: 16 rows x 16 pairs at a time,
 * converted and transposed in registers; a group of 16 rows is half a
 * panel of 32 or two panels of 8 (w is 8 or a multiple of 16). */
NATIVE static void
pack_pairs_native(uint16_t *Xp, int w, const float *X, size_t si, int rows, int K)
{
	const size_t KP = pairs(K);
	const int np = (rows + w - 1) / w;
	for (int i0 = 0; i0 < np * w; i0 += 16) {
		const int p = i0 / w, rr = i0 % w;
		uint16_t *dst = Xp + (size_t)p * KP * w * 2;
		for (size_t q0 = 0; q0 < KP; q0 += 16) {
			__m512i v[16];
			for (int r = 0; r < 16; r++) {
				const float *x = X + (size_t)(i0 + r) * si + 2 * q0;
				const int left = i0 + r < rows ? K - (int)(2 * q0) : 0; /* floats of this row still to read */
				v[r] = (__m512i)_mm512_cvtne2ps_pbh(_mm512_maskz_loadu_ps(mask16(left - 16), x + 16),
				                                    _mm512_maskz_loadu_ps(mask16(left), x));
			}
			transpose16(v);
			const size_t nq = KP - q0 < 16 ? KP - q0 : 16;
			for (size_t j = 0; j < nq; j++) {
				if (w >= 16) {
					_mm512_storeu_si512(dst + ((q0 + j) * w + rr) * 2, v[j]);
				} else { /* w == 8: rows 0-7 to panel p, 8-15 to panel p + 1 */
					_mm256_storeu_si256((__m256i *)(dst + (q0 + j) * 16), _mm512_castsi512_si256(v[j]));
					if (p + 1 < np)
						_mm256_storeu_si256((__m256i *)(dst + (KP + q0 + j) * 16),
						                    _mm512_extracti64x4_epi64(v[j], 1));
				}
			}
		}
	}
}

NATIVE static void
pack_native(uint16_t *Xp, int w, const float *X, size_t si, size_t sk, int rows, int K)
{
	if (sk == 1) {
		pack_pairs_native(Xp, w, X, si, rows, K);
		return;
	}
	/* si == 1: 16 rows of one k at a time, k and k + 1 interleaved by a word permutation */
	const size_t KP = pairs(K);
	const int np = (rows + w - 1) / w;
	const __m512i inter = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6,
	                                       21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
	for (int p = 0; p < np; p++) {
		uint16_t *dst = Xp + (size_t)p * KP * w * 2;
		const int i0 = p * w, valid = rows - i0 < w ? rows - i0 : w;
		for (size_t q = 0; q < KP; q++) {
			const int k = (int)(2 * q);
			const float *x0 = X + (size_t)k * sk + i0, *x1 = x0 + sk;
			for (int g = 0; g < w; g += 16) {
				const int n = w - g < 16 ? w - g : 16;
				const __mmask16 m = mask16(valid - g);
				__m512 v0 = _mm512_maskz_loadu_ps(m, x0 + g);
				__m512 v1 = k + 1 < K ? _mm512_maskz_loadu_ps(m, x1 + g) : _mm512_setzero_ps();
				__m512i h = _mm512_permutexvar_epi16(inter, (__m512i)_mm512_cvtne2ps_pbh(v1, v0));
				_mm512_mask_storeu_epi16(dst + (q * w + g) * 2, n >= 16 ? 0xffffffffu : (1u << (2 * n)) - 1, h);
			}
		}
	}
}
#endif

/* ---- the blocked product ---- */

/* packed blocks, one pair per thread (static: no allocation in a step) */
static _Thread_local uint16_t blk_a[BF16_MC * BF16_KC], blk_b[BF16_KC * BF16_NC];

/* C = alpha op(A) op(B) + beta C; A from Ap (packed whole: bf16_pack_a) or
 * else packed here block by block. Either way the tiles read the same bytes
 * and give the same bits. */
static void
blocked(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const uint16_t *Ap,
        const float *B, int ldb, float beta, float *C, int ldc)
{
	if (M <= 0 || N <= 0)
		return;
	if (beta != 0.0f && beta != 1.0f)
		for (int i = 0; i < M; i++)
			for (int j = 0; j < N; j++)
				C[(size_t)i * ldc + j] *= beta;
	if (K <= 0) {
		if (beta == 0.0f)
			for (int i = 0; i < M; i++)
				memset(C + (size_t)i * ldc, 0, sizeof(float) * N);
		return;
	}
	TileFn *tile = tile_portable;
#ifdef CPU_HAVE_X86
	if (bf16_native())
		tile = tile_native;
#endif
	const size_t KP = pairs(K);
	for (int jc = 0; jc < N; jc += BF16_NC) {
		const int nc = N - jc < BF16_NC ? N - jc : BF16_NC;
		for (int pc = 0; pc < K; pc += BF16_KC) {
			const int kc = K - pc < BF16_KC ? K - pc : BF16_KC, acc = beta != 0.0f || pc > 0;
			const size_t kp = pairs(kc);
			bf16_pack_b(blk_b, tb, tb ? B + (size_t)jc * ldb + pc : B + (size_t)pc * ldb + jc, ldb, kc, nc);
			for (int ic = 0; ic < M; ic += BF16_MC) {
				const int mc = M - ic < BF16_MC ? M - ic : BF16_MC;
				/* panel p of this block: kp pairs, then the next panel (block) or KP (whole) */
				const uint16_t *ablk = blk_a;
				size_t astride = kp * BF16_MR * 2;
				if (Ap) {
					ablk = Ap + ((size_t)(ic / BF16_MR) * KP + (size_t)pc / 2) * BF16_MR * 2;
					astride = KP * BF16_MR * 2;
				} else {
					bf16_pack_a(blk_a, ta, ta ? A + (size_t)pc * lda + ic : A + (size_t)ic * lda + pc, lda, mc,
					            kc);
				}
				for (int jr = 0; jr < nc; jr += BF16_NR) {
					const uint16_t *bp = blk_b + (size_t)(jr / BF16_NR) * kp * BF16_NR * 2;
					const int nr = nc - jr < BF16_NR ? nc - jr : BF16_NR;
					for (int ir = 0; ir < mc; ir += BF16_MR) {
						const int mr = mc - ir < BF16_MR ? mc - ir : BF16_MR;
						tile(kp, ablk + (size_t)(ir / BF16_MR) * astride, bp, C + (size_t)(ic + ir) * ldc + jc + jr,
						     ldc, mr, nr, acc, alpha);
					}
				}
			}
		}
	}
}

void
gemm_bf16_serial(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc)
{
	blocked(ta, tb, M, N, K, alpha, A, lda, NULL, B, ldb, beta, C, ldc);
}

void
gemm_bf16_packed_a(int M, int N, int K, const uint16_t *Ap, int tb, const float *B, int ldb, float beta, float *C,
                   int ldc)
{
	blocked(0, tb, M, N, K, 1.0f, NULL, 0, Ap, B, ldb, beta, C, ldc);
}

void
gemm_bf16(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B, int ldb,
          float beta, float *C, int ldc)
{
	gemm_split(gemm_bf16_serial, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

/* ---- products read in place ---- */

void
bf16_pack_a_gather(uint16_t *Ap, const float *X, int M, size_t KP, ptrdiff_t si, const ptrdiff_t *koff)
{
	const int np = (M + BF16_MR - 1) / BF16_MR;
	for (int p = 0; p < np; p++)
		for (size_t q = 0; q < KP; q++)
			for (int r = 0; r < BF16_MR; r++) {
				const int i = p * BF16_MR + r;
				uint16_t *d = Ap + (((size_t)p * KP + q) * BF16_MR + r) * 2;
				for (int e = 0; e < 2; e++) {
					const ptrdiff_t o = koff[2 * q + e];
					d[e] = i < M && o >= 0 ? bf16_from_f32(X[(ptrdiff_t)i * si + o]) : 0;
				}
			}
}

/* columns of C per tile of gemm_bf16_rows: three vectors of 16 */
#define ROWS_NR 48

static void
rows_tile_portable(size_t KP, const uint16_t *ap, const uint32_t *b, const ptrdiff_t *boff, float *c, int ldc,
                   int mr, int nr)
{
	float t[BF16_MR][ROWS_NR] = { { 0 } };
	for (size_t q = 0; q < KP; q++, ap += 2 * BF16_MR) {
		const uint32_t *bq = b + boff[q];
		float b0[ROWS_NR], b1[ROWS_NR];
		for (int j = 0; j < nr; j++) {
			b0[j] = daz((uint16_t)(bq[j] & 0xffffu));
			b1[j] = daz((uint16_t)(bq[j] >> 16));
		}
		for (int r = 0; r < mr; r++) {
			const float a0 = daz(ap[2 * r]), a1 = daz(ap[2 * r + 1]);
			for (int j = 0; j < nr; j++)
				t[r][j] = pair_step(t[r][j], a0, a1, b0[j], b1[j]);
		}
	}
	for (int r = 0; r < mr; r++)
		memcpy(c + (size_t)r * ldc, t[r], sizeof(float) * nr);
}

/* the 16 lanes of a dot added as the native kernel does (halves folded,
 * then a tree of horizontal adds: lanes_sum4) */
static float
lanes_sum(const float *t)
{
	float f[8];
	for (int i = 0; i < 8; i++)
		f[i] = t[i] + t[i + 8];
	return ((f[0] + f[1]) + (f[2] + f[3])) + ((f[4] + f[5]) + (f[6] + f[7]));
}

static void
rows_nt_portable(int M, int R, int N, const uint16_t *A, size_t lda, const uint16_t *B, const ptrdiff_t *boff,
                 float *C, int ldc)
{
	for (int i = 0; i < M; i++)
		for (int r = 0; r < R; r++) {
			const uint16_t *a = A + (size_t)i * lda, *b = B + boff[r];
			float t[16] = { 0 };
			/* to a whole vector of 32, zeros past N: the native tail adds 0 * 0
			 * to every lane too (which makes a -0 lane +0) */
			for (int j = 0; j < (N + 31) / 32 * 32; j += 2) {
				const int l = j / 2 % 16;
				const float a0 = j < N ? daz(a[j]) : 0.0f, b0 = j < N ? daz(b[j]) : 0.0f;
				const float a1 = j + 1 < N ? daz(a[j + 1]) : 0.0f, b1 = j + 1 < N ? daz(b[j + 1]) : 0.0f;
				t[l] = pair_step(t[l], a0, a1, b0, b1);
			}
			C[(size_t)i * ldc + r] += lanes_sum(t);
		}
}

#ifdef CPU_HAVE_X86
/* one tile, MR x 48; full: nr == 48 and mr == MR (unmasked loads and stores) */
NATIVE static inline __attribute__((always_inline)) void
rows_tile_body(size_t KP, const uint16_t *ap, const uint32_t *b, const ptrdiff_t *boff, float *c, int ldc, int mr,
               int nr, int full)
{
	__m512 t[BF16_MR][3];
	for (int r = 0; r < BF16_MR; r++)
		t[r][0] = t[r][1] = t[r][2] = _mm512_setzero_ps();
	const __mmask16 m0 = mask16(nr), m1 = mask16(nr - 16), m2 = mask16(nr - 32);
	for (size_t q = 0; q < KP; q++, ap += 2 * BF16_MR) {
		const uint32_t *bq = b + boff[q];
		__m512bh b0, b1, b2;
		if (full) {
			b0 = (__m512bh)_mm512_loadu_si512(bq);
			b1 = (__m512bh)_mm512_loadu_si512(bq + 16);
			b2 = (__m512bh)_mm512_loadu_si512(bq + 32);
		} else {
			b0 = (__m512bh)_mm512_maskz_loadu_epi32(m0, bq);
			b1 = (__m512bh)_mm512_maskz_loadu_epi32(m1, bq + 16);
			b2 = (__m512bh)_mm512_maskz_loadu_epi32(m2, bq + 32);
		}
#pragma GCC unroll 8
		for (int r = 0; r < BF16_MR; r++) {
			const __m512bh a = bcast_pair(ap + 2 * r);
			t[r][0] = _mm512_dpbf16_ps(t[r][0], b0, a);
			t[r][1] = _mm512_dpbf16_ps(t[r][1], b1, a);
			t[r][2] = _mm512_dpbf16_ps(t[r][2], b2, a);
		}
	}
	for (int r = 0; r < (full ? BF16_MR : mr); r++) {
		float *cr = c + (size_t)r * ldc;
		if (full) {
			_mm512_storeu_ps(cr, t[r][0]);
			_mm512_storeu_ps(cr + 16, t[r][1]);
			_mm512_storeu_ps(cr + 32, t[r][2]);
		} else {
			_mm512_mask_storeu_ps(cr, m0, t[r][0]);
			_mm512_mask_storeu_ps(cr + 16, m1, t[r][1]);
			_mm512_mask_storeu_ps(cr + 32, m2, t[r][2]);
		}
	}
}

NATIVE static void
rows_native(int M, int N, size_t KP, const uint16_t *Ap, const uint32_t *B, const ptrdiff_t *boff, float *C,
            int ldc)
{
	for (int j0 = 0; j0 < N; j0 += ROWS_NR)
		for (int i0 = 0; i0 < M; i0 += BF16_MR) {
			const int mr = M - i0 < BF16_MR ? M - i0 : BF16_MR, nr = N - j0 < ROWS_NR ? N - j0 : ROWS_NR;
			const uint16_t *ap = Ap + (size_t)(i0 / BF16_MR) * KP * BF16_MR * 2;
			float *c = C + (size_t)i0 * ldc + j0;
			if (mr == BF16_MR && nr == ROWS_NR)
				rows_tile_body(KP, ap, B + j0, boff, c, ldc, mr, nr, 1);
			else
				rows_tile_body(KP, ap, B + j0, boff, c, ldc, mr, nr, 0);
		}
}

NATIVE static inline __m256
fold_halves(__m512 v)
{
	return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* the sums of a, b, c, d (in that order) in one vector, lanes added as
 * lanes_sum says */
NATIVE static inline __m128
lanes_sum4(__m512 a, __m512 b, __m512 c, __m512 d)
{
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(fold_halves(a), fold_halves(b)),
	                          _mm256_hadd_ps(fold_halves(c), fold_halves(d)));
	return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

/* 4 rows of A x 4 rows of B at a time; rows past the edge repeat the last
 * one and are not written */
NATIVE static void
rows_nt_native(int M, int R, int N, const uint16_t *A, size_t lda, const uint16_t *B, const ptrdiff_t *boff,
               float *C, int ldc)
{
	for (int i0 = 0; i0 < M; i0 += 4)
		for (int r0 = 0; r0 < R; r0 += 4) {
			const uint16_t *a[4], *b[4];
			for (int u = 0; u < 4; u++) {
				a[u] = A + (size_t)(i0 + u < M ? i0 + u : M - 1) * lda;
				b[u] = B + boff[r0 + u < R ? r0 + u : R - 1];
			}
			__m512 t[4][4];
#pragma GCC unroll 4
			for (int u = 0; u < 4; u++)
#pragma GCC unroll 4
				for (int v = 0; v < 4; v++)
					t[u][v] = _mm512_setzero_ps();
			int j = 0;
			for (; j + 32 <= N; j += 32) {
				__m512bh av[4], bv[4];
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++) {
					av[u] = (__m512bh)_mm512_loadu_si512(a[u] + j);
					bv[u] = (__m512bh)_mm512_loadu_si512(b[u] + j);
				}
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++)
#pragma GCC unroll 4
					for (int v = 0; v < 4; v++)
						t[u][v] = _mm512_dpbf16_ps(t[u][v], bv[v], av[u]);
			}
			if (j < N) {
				const __mmask32 m = N - j >= 32 ? 0xffffffffu : (__mmask32)((1u << (N - j)) - 1);
				__m512bh av[4], bv[4];
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++) {
					av[u] = (__m512bh)_mm512_maskz_loadu_epi16(m, a[u] + j);
					bv[u] = (__m512bh)_mm512_maskz_loadu_epi16(m, b[u] + j);
				}
#pragma GCC unroll 4
				for (int u = 0; u < 4; u++)
#pragma GCC unroll 4
					for (int v = 0; v < 4; v++)
						t[u][v] = _mm512_dpbf16_ps(t[u][v], bv[v], av[u]);
			}
			const int nv = R - r0 < 4 ? R - r0 : 4;
#pragma GCC unroll 4
			for (int u = 0; u < 4; u++) {
				if (i0 + u >= M)
					break;
				float *c = C + (size_t)(i0 + u) * ldc + r0;
				const __m128 sum = lanes_sum4(t[u][0], t[u][1], t[u][2], t[u][3]);
				if (nv == 4) {
					_mm_storeu_ps(c, _mm_add_ps(_mm_loadu_ps(c), sum));
				} else {
					float e[4];
					_mm_storeu_ps(e, sum);
					for (int v = 0; v < nv; v++)
						c[v] += e[v];
				}
			}
		}
}

NATIVE static void
convert_native(uint16_t *dst, const float *src, size_t n)
{
	size_t x = 0;
	for (; x + 32 <= n; x += 32)
		_mm512_storeu_si512(dst + x, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + x + 16),
		                                                          _mm512_loadu_ps(src + x)));
	for (; x < n; x++)
		dst[x] = bf16_from_f32(src[x]);
}

NATIVE static void
interleave_native(uint32_t *dst, const float *a, const float *b, size_t n)
{
	size_t x = 0;
	for (; x + 16 <= n; x += 16) {
		__m512i lo = _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(a + x)));
		__m512i hi = b ? _mm512_cvtepu16_epi32((__m256i)_mm512_cvtneps_pbh(_mm512_loadu_ps(b + x)))
		               : _mm512_setzero_si512();
		_mm512_storeu_si512(dst + x, _mm512_or_si512(lo, _mm512_slli_epi32(hi, 16)));
	}
	for (; x < n; x++)
		dst[x] = bf16_from_f32(a[x]) | (b ? (uint32_t)bf16_from_f32(b[x]) << 16 : 0u);
}
#endif

void
gemm_bf16_rows(int M, int N, size_t KP, const uint16_t *Ap, const uint32_t *B, const ptrdiff_t *boff, float *C,
               int ldc)
{
#ifdef CPU_HAVE_X86
	if (bf16_native()) {
		rows_native(M, N, KP, Ap, B, boff, C, ldc);
		return;
	}
#endif
	for (int j0 = 0; j0 < N; j0 += ROWS_NR)
		for (int i0 = 0; i0 < M; i0 += BF16_MR)
			rows_tile_portable(KP, Ap + (size_t)(i0 / BF16_MR) * KP * BF16_MR * 2, B + j0, boff,
			                   C + (size_t)i0 * ldc + j0, ldc, M - i0 < BF16_MR ? M - i0 : BF16_MR,
			                   N - j0 < ROWS_NR ? N - j0 : ROWS_NR);
}

void
gemm_bf16_rows_nt(int M, int R, int N, const uint16_t *A, size_t lda, const uint16_t *B, const ptrdiff_t *boff,
                  float *C, int ldc)
{
#ifdef CPU_HAVE_X86
	if (bf16_native()) {
		rows_nt_native(M, R, N, A, lda, B, boff, C, ldc);
		return;
	}
#endif
	rows_nt_portable(M, R, N, A, lda, B, boff, C, ldc);
}

void
bf16_convert(uint16_t *dst, const float *src, size_t n)
{
#ifdef CPU_HAVE_X86
	if (bf16_native()) {
		convert_native(dst, src, n);
		return;
	}
#endif
	for (size_t x = 0; x < n; x++)
		dst[x] = bf16_from_f32(src[x]);
}

void
bf16_interleave(uint32_t *dst, const float *a, const float *b, size_t n)
{
#ifdef CPU_HAVE_X86
	if (bf16_native()) {
		interleave_native(dst, a, b, n);
		return;
	}
#endif
	for (size_t x = 0; x < n; x++)
		dst[x] = bf16_from_f32(a[x]) | (b ? (uint32_t)bf16_from_f32(b[x]) << 16 : 0u);
}
