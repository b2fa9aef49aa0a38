/* Tests for lib/nn/bf16: conversion edge cases, the packed layout, the
 * native kernel (where the CPU has avx512_bf16) against the portable one
 * bit for bit, and the bf16 GEMM against the fp32 naive twin, on
 * bf16-rounded inputs (fp32 summation bound only) and on raw inputs (plus
 * the rounding of the inputs). The first line of output says which kernels
 * ran. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "nn/bf16.h"
#include "nn/conv.h"
#include "nn/gemm.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "base/util.h"
#include "testutil.h"

static float
f_of(uint32_t u)
{
	float x;
	memcpy(&x, &u, sizeof x);
	return x;
}

static uint32_t
u_of(float x)
{
	uint32_t u;
	memcpy(&u, &x, sizeof u);
	return u;
}

START_TEST(test_convert_cases)
{
	static const struct {
		uint32_t in;
		uint16_t out;
	} cases[] = {
		{ 0x3f800000, 0x3f80 }, /* 1 */
		{ 0x3f808000, 0x3f80 }, /* tie, even below */
		{ 0x3f818000, 0x3f82 }, /* tie, even above */
		{ 0x3f808001, 0x3f81 }, /* just above the tie */
		{ 0x3f807fff, 0x3f80 }, /* just below */
		{ 0xbf818000, 0xbf82 }, /* negative tie */
		{ 0x80000000, 0x8000 }, /* -0 */
		{ 0x7f800000, 0x7f80 }, /* inf */
		{ 0xff800000, 0xff80 }, /* -inf */
		{ 0x7f7fffff, 0x7f80 }, /* FLT_MAX rounds to inf */
		{ 0x7f7f7fff, 0x7f7f }, /* the largest that does not */
		{ 0x00000001, 0x0000 }, /* denormals become zero, */
		{ 0x00018000, 0x0000 },
		{ 0x007fffff, 0x0000 }, /* even the largest (RNE would give FLT_MIN), */
		{ 0x80010000, 0x8000 }, /* with their sign */
		{ 0x00800000, 0x0080 }, /* FLT_MIN stays */
		{ 0x00808000, 0x0080 }, /* tie at the bottom of the normals */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
		ck_assert_msg(bf16_from_f32(f_of(cases[i].in)) == cases[i].out, "0x%08x -> 0x%04x, want 0x%04x",
		              cases[i].in, bf16_from_f32(f_of(cases[i].in)), cases[i].out);
	/* NaNs stay NaN whatever their payload (a carry would make 0x7fffffff inf
	 * or wrap a signalling NaN with a low payload to inf), sign kept */
	static const uint32_t nans[] = { 0x7fc00000, 0x7f800001, 0x7fffffff, 0xff800001, 0xffc00000, 0x7fbfffff };
	for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
		uint16_t h = bf16_from_f32(f_of(nans[i]));
		ck_assert_msg(isnan(bf16_to_f32(h)), "NaN 0x%08x -> 0x%04x", nans[i], h);
		ck_assert_uint_eq(h >> 15, nans[i] >> 31);
	}
}
END_TEST

/* every bf16 value but NaN and denormals survives the round trip; rounding
 * is to the nearest */
START_TEST(test_convert_all)
{
	for (uint32_t h = 0; h < 0x10000; h++) {
		float x = bf16_to_f32((uint16_t)h);
		if (isnan(x) || ((h & 0x7f80) == 0 && (h & 0x7f)))
			continue;
		ck_assert_msg(bf16_from_f32(x) == h, "0x%04x", h);
		ck_assert_uint_eq(u_of(bf16_round(x)), u_of(x));
	}
	Rng r = rng_for(7, 0, 0, 0);
	for (int i = 0; i < 100000; i++) {
		float x = f_of(((uint32_t)rng_u32(&r) & 0x7effffffu) | 0x00800000u); /* normal, positive, below inf */
		float y = bf16_round(x);
		uint32_t u = u_of(y);
		float lo = f_of(u - (u ? 0x10000u : 0)), hi = f_of(u + 0x10000u);
		ck_assert_msg(fabsf(y - x) <= fabsf(x - lo) && fabsf(y - x) <= fabsf(hi - x), "%a -> %a", x, y);
	}
}
END_TEST

START_TEST(test_pack_layout)
{
	enum { M = 11, K = 5, N = 37 };
	float A[M * K], At[K * M], B[K * N], Bt[N * K];
	for (int i = 0; i < M; i++)
		for (int k = 0; k < K; k++)
			A[i * K + k] = At[k * M + i] = (float)(i * 16 + k + 1);
	for (int k = 0; k < K; k++)
		for (int j = 0; j < N; j++)
			B[k * N + j] = Bt[j * K + k] = (float)(j * 8 + k + 1);
	size_t na = bf16_pack_a_elems(M, K), nb = bf16_pack_b_elems(K, N);
	ck_assert_uint_eq(na, 16 * 6);  /* 2 panels of 8 rows, 3 pairs */
	ck_assert_uint_eq(nb, 64 * 6);  /* 2 panels of 32 columns, 3 pairs */
	uint16_t *ap = xcalloc(na, 2), *apt = xcalloc(na, 2), *bp = xcalloc(nb, 2), *bpt = xcalloc(nb, 2);
	bf16_pack_a(ap, 0, A, K, M, K);
	bf16_pack_a(apt, 1, At, M, M, K);
	bf16_pack_b(bp, 0, B, N, K, N);
	bf16_pack_b(bpt, 1, Bt, K, K, N);
	ck_assert_mem_eq(ap, apt, na * 2);
	ck_assert_mem_eq(bp, bpt, nb * 2);
	for (int p = 0; p < 2; p++)
		for (int q = 0; q < 3; q++)
			for (int r = 0; r < 8; r++)
				for (int e = 0; e < 2; e++) {
					int i = p * 8 + r, k = 2 * q + e;
					float want = i < M && k < K ? A[i * K + k] : 0.0f;
					ck_assert_float_eq(bf16_to_f32(ap[((p * 3 + q) * 8 + r) * 2 + e]), want);
				}
	for (int p = 0; p < 2; p++)
		for (int q = 0; q < 3; q++)
			for (int j = 0; j < 32; j++)
				for (int e = 0; e < 2; e++) {
					int c = p * 32 + j, k = 2 * q + e;
					float want = c < N && k < K ? bf16_round(B[k * N + c]) : 0.0f;
					ck_assert_float_eq(bf16_to_f32(bp[((p * 3 + q) * 32 + j) * 2 + e]), want);
				}
	free(ap);
	free(apt);
	free(bp);
	free(bpt);
}
END_TEST

static void fill(float *x, size_t n, Rng *r);

/* the vector packing (native) writes the bytes the scalar one writes, on
 * values with every kind of edge, for all four operand layouts */
START_TEST(test_pack_native)
{
	if (!bf16_native()) {
		printf("pack native vs portable: not run\n");
		return;
	}
	static const uint32_t edges[] = { 0x3f808000, 0x3f818000, 0x7fc00001, 0xff800001, 0x7f800000, 0x007fffff,
		                          0x80000001, 0x80000000, 0x7f7fffff, 0x00800000 };
	static const int dims[][2] = { { 1, 1 }, { 8, 2 }, { 13, 7 }, { 33, 40 }, { 70, 33 }, { 5, 300 } };
	Rng r = rng_for(19, 0, 0, 0);
	for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
		const int R = dims[d][0], K = dims[d][1];
		float *X = xcalloc((size_t)R * K, 4);
		fill(X, (size_t)R * K, &r);
		for (size_t e = 0; e < sizeof edges / sizeof edges[0]; e++)
			X[rng_below(&r, (uint64_t)R * K)] = f_of(edges[e]);
		size_t na = bf16_pack_a_elems(R, K), nb = bf16_pack_b_elems(K, R);
		uint16_t *p0 = xcalloc(na + nb, 2), *p1 = xcalloc(na + nb, 2);
		for (int t = 0; t < 2; t++) {
			/* X as A (R x K) and as B (K x R), each stored either way */
			for (int nat = 0; nat < 2; nat++) {
				uint16_t *p = nat ? p1 : p0;
				bf16_native_set(nat);
				bf16_pack_a(p, t, X, t ? R : K, R, K);
				bf16_pack_b(p + na, t, X, t ? K : R, K, R);
				bf16_native_set(1);
			}
			ck_assert_msg(memcmp(p0, p1, 2 * (na + nb)) == 0, "%d x %d, transposed %d", R, K, t);
		}
		free(X), free(p0), free(p1);
	}
}
END_TEST

static void
fill(float *x, size_t n, Rng *r)
{
	for (size_t i = 0; i < n; i++)
		x[i] = (float)rng_uniform_range(r, -1.0, 1.0);
}

/* shapes: M, N, K, ta, tb (odd K, K > BF16_KC, M > 128, N > 1024, edges) */
static const int shapes[][5] = {
	{ 1, 1, 1, 0, 0 },     { 7, 33, 5, 0, 0 },    { 16, 300, 144, 0, 0 }, { 64, 200, 577, 0, 1 },
	{ 130, 70, 300, 1, 0 }, { 9, 1100, 40, 1, 1 }, { 33, 31, 513, 0, 1 },  { 200, 48, 64, 1, 0 },
};
#define NSHAPES ((int)(sizeof shapes / sizeof shapes[0]))

/* C for shape i with the given kernel, beta and alpha, from a fixed C0 */
static float *
run_case(int i, int native, float alpha, float beta, const float *A, const float *B, const float *C0)
{
	const int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], ta = shapes[i][3], tb = shapes[i][4];
	float *C = xcalloc((size_t)M * N, sizeof(float));
	memcpy(C, C0, sizeof(float) * M * N);
	bf16_native_set(native);
	gemm_bf16_serial(ta, tb, M, N, K, alpha, A, ta ? M : K, B, tb ? K : N, beta, C, N);
	bf16_native_set(1);
	return C;
}

START_TEST(test_native_vs_portable)
{
	if (!bf16_native()) {
		if (_i == 0)
			printf("native vs portable: not run (%s)\n",
		       bf16_cpu_has() ? "native kernel turned off by $SSL_BF16 or $SSL_ISA" : "CPU lacks avx512_bf16");
		return;
	}
	const int i = _i;
	const int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2];
	Rng r = rng_for(11, 0, (uint64_t)i, 0);
	float *A = xcalloc((size_t)M * K, 4), *B = xcalloc((size_t)K * N, 4), *C0 = xcalloc((size_t)M * N, 4);
	fill(A, (size_t)M * K, &r);
	fill(B, (size_t)K * N, &r);
	fill(C0, (size_t)M * N, &r);
	static const float ab[][2] = { { 1, 0 }, { 1, 1 }, { 2, 0.5f } };
	for (int c = 0; c < 3; c++) {
		float *cn = run_case(i, 1, ab[c][0], ab[c][1], A, B, C0);
		float *cp = run_case(i, 0, ab[c][0], ab[c][1], A, B, C0);
		ck_assert_msg(memcmp(cn, cp, sizeof(float) * M * N) == 0, "shape %d alpha %g beta %g: native != portable",
		              i, ab[c][0], ab[c][1]);
		free(cn);
		free(cp);
	}
	free(A);
	free(B);
	free(C0);
}
END_TEST

/* What vdpbf16ps does at the edges: bf16 denormal inputs are zero, denormal
 * results are flushed, infinities and NaN propagate; the portable kernel
 * agrees (only products below FLT_MIN are out of its promise), and so do the
 * in-place products (gemm_bf16_rows bit for bit; the dot's lane tree adds
 * zeros, which may turn -0 into +0). */
START_TEST(test_kernel_edges)
{
	const float tiny = ldexpf(1.0f, -63), big = ldexpf(1.0f, 100);
	/* K = 2: C = a0 * b0 + a1 * b1, the odd pair first */
	static const float pairs_[][4] = {
		/* a0, b0, a1, b1 (multipliers of tiny or big are filled below) */
		{ 1.5f, 1, -1, 1 }, /* 1.5 FLT_MIN - FLT_MIN: denormal result, flushed */
		{ 0, 0, 0, 0 },     /* bf16 denormal inputs (set below) */
		{ 1, 1, 3, 2 },     /* plain */
		{ 0, 0, 0, 0 },     /* inf * 0 -> NaN */
		{ 0, 0, 0, 0 },     /* big * big -> inf, then + finite */
	};
	float A[5][2], B[5][2];
	for (int c = 0; c < 5; c++) {
		A[c][0] = pairs_[c][0];
		B[c][0] = pairs_[c][1];
		A[c][1] = pairs_[c][2];
		B[c][1] = pairs_[c][3];
	}
	A[0][0] *= tiny, B[0][0] *= tiny, A[0][1] *= tiny, B[0][1] *= tiny;
	A[1][0] = bf16_to_f32(0x0040), B[1][0] = 4.0f, A[1][1] = bf16_to_f32(0x8001), B[1][1] = 1e30f;
	A[3][0] = INFINITY, B[3][0] = 0.0f, A[3][1] = 1.0f, B[3][1] = 1.0f;
	A[4][0] = big, B[4][0] = big, A[4][1] = 1.0f, B[4][1] = -1.0f;
	float want[5];
	for (int c = 0; c < 5; c++) {
		float C[2];
		for (int nat = 0; nat < 2; nat++) {
			if (nat && !bf16_native())
				break;
			bf16_native_set(nat);
			gemm_bf16_serial(0, 1, 1, 1, 2, 1.0f, A[c], 2, B[c], 2, 0.0f, &C[nat], 1);
			/* the in-place products take the same steps on the same pair */
			uint16_t ap[2 * BF16_MR] = { 0 }, a16[2], b16[2];
			uint32_t bw;
			const ptrdiff_t zero = 0;
			float cr = NAN, cnt = 0.0f;
			bf16_pack_a(ap, 0, A[c], 2, 1, 2);
			bf16_interleave(&bw, &B[c][0], &B[c][1], 1);
			gemm_bf16_rows(1, 1, 1, ap, &bw, &zero, &cr, 1);
			bf16_convert(a16, A[c], 2);
			bf16_convert(b16, B[c], 2);
			gemm_bf16_rows_nt(1, 1, 2, a16, 2, b16, &zero, &cnt, 1);
			bf16_native_set(1);
			ck_assert_msg(u_of(cr) == u_of(C[nat]) || (isnan(cr) && isnan(C[nat])),
			              "case %d, kernel %d: in place %a, packed %a", c, nat, cr, C[nat]);
			ck_assert_msg(cnt == C[nat] || (isnan(cnt) && isnan(C[nat])), "case %d, kernel %d: dot %a, packed %a",
			              c, nat, cnt, C[nat]);
		}
		want[c] = C[0];
		if (bf16_native())
			ck_assert_msg(u_of(C[0]) == u_of(C[1]) || (isnan(C[0]) && isnan(C[1])),
			              "case %d: portable %a native %a", c, C[0], C[1]);
	}
	ck_assert_msg(u_of(want[0]) == 0, "flushed: %a", want[0]);
	ck_assert_msg(u_of(want[1]) == 0, "denormal inputs: %a", want[1]);
	ck_assert_float_eq(want[2], 7.0f);
	ck_assert(isnan(want[3]));
	ck_assert(isinf(want[4]) && want[4] > 0);
}
END_TEST

/* Against the fp32 naive twin (double sums). On bf16-rounded inputs the
 * products are exact: only fp32 summation differs, |err| <= K u S with
 * u = 2^-24 and S = sum |a b|. On raw inputs each operand is off by at most
 * 2^-8 relative (bf16 keeps 8 significant bits), so
 * |err| <= (2^-7 + 2^-16 + K u) S. */
START_TEST(test_vs_fp32)
{
	const int i = _i;
	const int M = shapes[i][0], N = shapes[i][1], K = shapes[i][2], ta = shapes[i][3], tb = shapes[i][4];
	const int lda = ta ? M : K, ldb = tb ? K : N;
	Rng r = rng_for(13, 0, (uint64_t)i, 0);
	size_t na = (size_t)M * K, nb = (size_t)K * N, nc = (size_t)M * N;
	float *A = xcalloc(na, 4), *B = xcalloc(nb, 4), *Ar = xcalloc(na, 4), *Br = xcalloc(nb, 4);
	float *Aabs = xcalloc(na, 4), *Babs = xcalloc(nb, 4);
	float *C = xcalloc(nc, 4), *ref = xcalloc(nc, 4), *refr = xcalloc(nc, 4), *S = xcalloc(nc, 4);
	fill(A, na, &r);
	fill(B, nb, &r);
	for (size_t j = 0; j < na; j++)
		Ar[j] = bf16_round(A[j]), Aabs[j] = fabsf(A[j]);
	for (size_t j = 0; j < nb; j++)
		Br[j] = bf16_round(B[j]), Babs[j] = fabsf(B[j]);
	gemm_bf16_serial(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C, N);
	/* A packed beforehand: the same bits */
	uint16_t *ap = xcalloc(bf16_pack_a_elems(M, K), 2);
	bf16_pack_a(ap, ta, A, lda, M, K);
	gemm_bf16_packed_a(M, N, K, ap, tb, B, ldb, 0.0f, refr, N);
	ck_assert_msg(memcmp(C, refr, sizeof(float) * nc) == 0, "shape %d: packed A differs", i);
	free(ap);
	gemm_ref(ta, tb, M, N, K, 1.0f, Ar, lda, Br, ldb, 0.0f, refr, N);
	gemm_ref(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, ref, N);
	gemm_ref(ta, tb, M, N, K, 1.0f, Aabs, lda, Babs, ldb, 0.0f, S, N);
	const double u = ldexp(1.0, -24);
	double worst_raw = 0;
	for (size_t j = 0; j < nc; j++) {
		double tight = K * u * S[j] + 1e-30, loose = (ldexp(1.0, -7) + ldexp(1.0, -16) + K * u) * S[j] + 1e-30;
		ck_assert_msg(fabs((double)C[j] - refr[j]) <= tight, "shape %d [%zu]: %g vs rounded-input ref %g (bound %g)",
		              i, j, C[j], refr[j], tight);
		ck_assert_msg(fabs((double)C[j] - ref[j]) <= loose, "shape %d [%zu]: %g vs fp32 ref %g (bound %g)", i, j,
		              C[j], ref[j], loose);
		if (fabs((double)C[j] - ref[j]) / (S[j] + 1e-30) > worst_raw)
			worst_raw = fabs((double)C[j] - ref[j]) / (S[j] + 1e-30);
	}
	/* the rounding is real: against raw inputs some error exceeds the tight bound */
	if (K > 1)
		ck_assert_msg(worst_raw > K * u, "shape %d: bf16 GEMM matches fp32 too well (%g)", i, worst_raw);
	free(A), free(B), free(Ar), free(Br), free(Aabs), free(Babs);
	free(C), free(ref), free(refr), free(S);
}
END_TEST

/* the native kernel follows lib/base/cpu's level: off below avx512 */
START_TEST(test_follows_isa)
{
	if (cpu_isa_best() < CPU_AVX512) {
		ck_assert(!bf16_native());
		return;
	}
	const CpuIsa was = cpu_isa();
	ck_assert_int_eq(cpu_isa_set(CPU_AVX2), 0);
	ck_assert(!bf16_native());
	ck_assert_int_eq(cpu_isa_set(CPU_AVX512), 0);
	ck_assert_int_eq(bf16_native(), bf16_cpu_has() && !getenv("SSL_BF16"));
	cpu_isa_set(was);
}
END_TEST

/* gemm_bf16 split over threads gives what one thread gives, bit for bit */
START_TEST(test_threads)
{
	enum { M = 64, N = 700, K = 130 };
	Rng r = rng_for(17, 0, 0, 0);
	float *A = xcalloc((size_t)M * K, 4), *B = xcalloc((size_t)K * N, 4);
	float *c1 = xcalloc((size_t)M * N, 4), *c2 = xcalloc((size_t)M * N, 4);
	fill(A, (size_t)M * K, &r);
	fill(B, (size_t)K * N, &r);
	gemm_bf16_serial(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, c1, N);
	gemm_bf16(0, 0, M, N, K, 1.0f, A, K, B, N, 0.0f, c2, N);
	ck_assert_mem_eq(c1, c2, sizeof(float) * M * N);
	free(A), free(B), free(c1), free(c2);
}
END_TEST

/* The products read in place (gemm_bf16_rows, gemm_bf16_rows_nt) on
 * shapes with every kind of edge (rows short of a panel, columns short of
 * a tile or of a pair, one pair): native and portable bit for bit, both
 * against double sums of the bf16-rounded operands (fp32 summation bound
 * K u S, S = sum |a b|), and the packing and conversions they rely on. */
static const int rows_shapes[][3] = {
	/* M, N, pairs (rows); M, R, N (rows_nt) */
	{ 1, 1, 1 }, { 8, 48, 9 }, { 13, 100, 17 }, { 16, 1088, 72 }, { 5, 47, 3 }, { 3, 9, 63 },
};
#define NROWS ((int)(sizeof rows_shapes / sizeof rows_shapes[0]))

static int
kernels_to_run(void)
{
	return bf16_native() ? 2 : 1; /* portable, then native */
}

START_TEST(test_rows)
{
	const int M = rows_shapes[_i][0], N = rows_shapes[_i][1], KP = rows_shapes[_i][2], K = 2 * KP;
	const int L = N + 3 * KP + 7; /* words of B; pair rows start anywhere in [0, L - N] */
	Rng r = rng_for(29, 0, (uint64_t)_i, 0);
	float *A = xcalloc((size_t)M * K, 4), *b0 = xcalloc((size_t)L, 4), *b1 = xcalloc((size_t)L, 4);
	fill(A, (size_t)M * K, &r);
	fill(b0, (size_t)L, &r);
	fill(b1, (size_t)L, &r);
	uint16_t *Ap = xcalloc(bf16_pack_a_elems(M, K), 2), *Ag = xcalloc(bf16_pack_a_elems(M, K), 2);
	uint32_t *B = xcalloc((size_t)L, 4);
	ptrdiff_t *boff = xcalloc((size_t)KP, sizeof *boff), *koff = xcalloc((size_t)K, sizeof *koff);
	for (int q = 0; q < KP; q++)
		boff[q] = (ptrdiff_t)rng_below(&r, (uint64_t)(L - N + 1));
	for (int k = 0; k < K; k++)
		koff[k] = k;
	bf16_pack_a(Ap, 0, A, K, M, K);
	bf16_pack_a_gather(Ag, A, M, (size_t)KP, K, koff);
	ck_assert_mem_eq(Ap, Ag, 2 * bf16_pack_a_elems(M, K));
	koff[K - 1] = -1; /* a missing element packs as zero */
	bf16_pack_a_gather(Ag, A, M, (size_t)KP, K, koff);
	for (int i = 0; i < M; i++)
		ck_assert_int_eq(Ag[(((size_t)(i / BF16_MR) * KP + KP - 1) * BF16_MR + i % BF16_MR) * 2 + 1], 0);
	bf16_interleave(B, b0, b1, (size_t)L);
	float *C[2];
	for (int nat = 0; nat < kernels_to_run(); nat++) {
		C[nat] = xcalloc((size_t)M * N, 4);
		fill(C[nat], (size_t)M * N, &r); /* overwritten, not added to */
		bf16_native_set(nat);
		gemm_bf16_rows(M, N, (size_t)KP, Ap, B, boff, C[nat], N);
		bf16_native_set(1);
	}
	if (kernels_to_run() == 2)
		ck_assert_msg(memcmp(C[0], C[1], sizeof(float) * M * N) == 0, "rows %d: native != portable", _i);
	for (int i = 0; i < M; i++)
		for (int j = 0; j < N; j++) {
			double ref = 0, S = 0;
			for (int q = 0; q < KP; q++) {
				double p0 = (double)bf16_round(A[(size_t)i * K + 2 * q]) * bf16_round(b0[boff[q] + j]);
				double p1 = (double)bf16_round(A[(size_t)i * K + 2 * q + 1]) * bf16_round(b1[boff[q] + j]);
				ref += p0 + p1, S += fabs(p0) + fabs(p1);
			}
			ck_assert_msg(fabs(C[0][(size_t)i * N + j] - ref) <= K * 0x1p-24 * S + 1e-30, "rows %d (%d, %d): %g vs %g",
			              _i, i, j, C[0][(size_t)i * N + j], ref);
		}
	for (int nat = 0; nat < kernels_to_run(); nat++)
		free(C[nat]);
	free(A), free(b0), free(b1), free(Ap), free(Ag), free(B), free(boff), free(koff);
}
END_TEST

START_TEST(test_rows_nt)
{
	const int M = rows_shapes[_i][0], R = rows_shapes[_i][1], N = rows_shapes[_i][2];
	const size_t lda = (size_t)N + 5, L = (size_t)N + 2 * R + 3;
	Rng r = rng_for(31, 0, (uint64_t)_i, 0);
	float *a = xcalloc((size_t)M * lda, 4), *b = xcalloc(L, 4), *C0 = xcalloc((size_t)M * R, 4);
	fill(a, (size_t)M * lda, &r);
	fill(b, L, &r);
	fill(C0, (size_t)M * R, &r);
	uint16_t *A = xcalloc((size_t)M * lda, 2), *B = xcalloc(L, 2);
	bf16_convert(A, a, (size_t)M * lda);
	bf16_convert(B, b, L);
	ptrdiff_t *boff = xcalloc((size_t)R, sizeof *boff);
	for (int k = 0; k < R; k++)
		boff[k] = (ptrdiff_t)rng_below(&r, (uint64_t)(L - N + 1));
	float *C[2];
	for (int nat = 0; nat < kernels_to_run(); nat++) {
		C[nat] = xcalloc((size_t)M * R, 4);
		memcpy(C[nat], C0, sizeof(float) * M * R);
		bf16_native_set(nat);
		gemm_bf16_rows_nt(M, R, N, A, lda, B, boff, C[nat], R);
		bf16_native_set(1);
	}
	if (kernels_to_run() == 2)
		ck_assert_msg(memcmp(C[0], C[1], sizeof(float) * M * R) == 0, "rows_nt %d: native != portable", _i);
	for (int i = 0; i < M; i++)
		for (int k = 0; k < R; k++) {
			double ref = C0[(size_t)i * R + k], S = fabs(ref);
			for (int j = 0; j < N; j++) {
				double p = (double)bf16_round(a[(size_t)i * lda + j]) * bf16_round(b[boff[k] + j]);
				ref += p, S += fabs(p);
			}
			ck_assert_msg(fabs(C[0][(size_t)i * R + k] - ref) <= (N + 1) * 0x1p-24 * S, "rows_nt %d (%d, %d): %g vs %g",
			              _i, i, k, C[0][(size_t)i * R + k], ref);
		}
	for (int nat = 0; nat < kernels_to_run(); nat++)
		free(C[nat]);
	free(a), free(b), free(C0), free(A), free(B), free(boff);
}
END_TEST

/* bf16_convert and bf16_interleave round as bf16_from_f32, on either kernel
 * and any length (vector bodies and scalar tails). */
START_TEST(test_convert_arrays)
{
	const size_t n = 77;
	Rng r = rng_for(37, 0, 0, 0);
	float a[77], b[77];
	for (size_t x = 0; x < n; x++) {
		a[x] = (float)rng_normal(&r) * 1e3f;
		b[x] = (float)rng_normal(&r) * 1e-3f;
	}
	a[3] = NAN, b[5] = -INFINITY, a[7] = 1e-40f;
	for (int nat = 0; nat < kernels_to_run(); nat++) {
		uint16_t h[77];
		uint32_t w[77], w1[77];
		bf16_native_set(nat);
		bf16_convert(h, a, n);
		bf16_interleave(w, a, b, n);
		bf16_interleave(w1, b, NULL, n);
		bf16_native_set(1);
		for (size_t x = 0; x < n; x++) {
			ck_assert_uint_eq(h[x], bf16_from_f32(a[x]));
			ck_assert_uint_eq(w[x], bf16_from_f32(a[x]) | (uint32_t)bf16_from_f32(b[x]) << 16);
			ck_assert_uint_eq(w1[x], bf16_from_f32(b[x]));
		}
	}
}
END_TEST

/* A convolution with ConvShape.bf16 against the naive twin on bf16-rounded
 * input, weights and dout: forward, dinp and dweight all agree to fp32
 * summation error (relative 1e-5 of the largest value), while on raw inputs
 * they differ by more (the rounding is used everywhere). Shapes: 3x3 same
 * (implicit products at avx2 and up, else the transposed backward), 3x3
 * stride 2 (col2im), 1x1 (direct), 1x1 stride 2, 40 channels (beyond the
 * implicit products and the fp32 micro-kernels' rows), and for the
 * implicit products an odd number of input channels (the stem's 3), of
 * output channels, an odd width and a 5x5 kernel; a 7x7 stride-2 one wide
 * enough for im2col's phase rows. Each case runs on the
 * default kernels, on the portable bf16 kernel, and at the generic level
 * (no implicit products: im2col, or the direct product for 1x1). */
static const int conv_cases[][8] = {
	/* n, C, H, OC, K, S, P, chunk images */
	{ 3, 4, 8, 6, 3, 1, 1, 1 },   { 2, 5, 9, 7, 3, 2, 1, 2 },  { 3, 6, 5, 9, 1, 1, 0, 2 },
	{ 2, 6, 6, 4, 1, 2, 0, 1 },   { 2, 40, 6, 40, 3, 1, 1, 2 }, { 2, 3, 8, 16, 3, 1, 1, 1 },
	{ 3, 16, 7, 32, 3, 1, 1, 2 }, { 2, 32, 6, 5, 3, 1, 1, 1 },  { 2, 8, 10, 8, 5, 1, 2, 2 },
	{ 2, 3, 34, 8, 7, 2, 3, 1 },   { 2, 1, 9, 4, 7, 1, 3, 1 },
};
#define NCONV ((int)(sizeof conv_cases / sizeof conv_cases[0]))

static double
max_abs(const float *x, size_t n)
{
	double m = 1e-30;
	for (size_t i = 0; i < n; i++)
		if (fabs(x[i]) > m)
			m = fabs(x[i]);
	return m;
}

static double
max_diff(const float *a, const float *b, size_t n)
{
	double m = 0;
	for (size_t i = 0; i < n; i++)
		if (fabs((double)a[i] - b[i]) > m)
			m = fabs((double)a[i] - b[i]);
	return m;
}

static void
round_all(float *dst, const float *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] = bf16_round(src[i]);
}

START_TEST(test_conv_bf16)
{
	const int *c = conv_cases[_i % NCONV], mode = _i / NCONV;
	const CpuIsa was = cpu_isa();
	if (mode == 1)
		bf16_native_set(0);
	if (mode == 2)
		ck_assert_int_eq(cpu_isa_set(CPU_GENERIC), 0);
	ConvShape s;
	ck_assert_int_eq(conv_shape_init(&s, c[1], c[2], c[2], c[3], c[4], c[5], c[6], c[0]), 0);
	s.chunk = c[7];
	s.bf16 = 1;
	const int n = c[0];
	const size_t ni = (size_t)s.C * n * s.H * s.W, nw = (size_t)s.OC * s.C * s.K * s.K,
	             no = (size_t)s.OC * n * s.OH * s.OW;
	float *x = xcalloc(ni, 4), *w = xcalloc(nw, 4), *dy = xcalloc(no, 4), *xr = xcalloc(ni, 4),
	      *wr = xcalloc(nw, 4), *dyr = xcalloc(no, 4);
	float *y = xcalloc(no, 4), *yref = xcalloc(no, 4), *yraw = xcalloc(no, 4);
	float *dx = xcalloc(ni, 4), *dxref = xcalloc(ni, 4), *dw = xcalloc(nw, 4), *dwref = xcalloc(nw, 4);
	float *work = xcalloc(conv_work_floats(&s), 4);
	Rng r = rng_for(23, 0, (uint64_t)_i, 0);
	fill(x, ni, &r);
	fill(w, nw, &r);
	fill(dy, no, &r);
	fill(dx, ni, &r); /* the gradients are added to what is there */
	fill(dw, nw, &r);
	memcpy(dxref, dx, sizeof(float) * ni);
	memcpy(dwref, dw, sizeof(float) * nw);
	round_all(xr, x, ni);
	round_all(wr, w, nw);
	round_all(dyr, dy, no);
	conv2d_forward(y, work, x, w, NULL, n, &s);
	conv2d_backward(dx, dw, NULL, work, dy, x, w, n, &s);
	bf16_native_set(1);
	cpu_isa_set(was);
	conv2d_forward_ref(yref, xr, wr, NULL, n, &s);
	conv2d_forward_ref(yraw, x, w, NULL, n, &s);
	conv2d_backward_ref(dxref, dwref, NULL, dyr, xr, wr, n, &s);
	ck_assert_msg(max_diff(y, yref, no) <= 1e-5 * max_abs(yref, no), "forward %g", max_diff(y, yref, no));
	ck_assert_msg(max_diff(dx, dxref, ni) <= 1e-5 * max_abs(dxref, ni), "dinp %g", max_diff(dx, dxref, ni));
	ck_assert_msg(max_diff(dw, dwref, nw) <= 1e-5 * max_abs(dwref, nw), "dweight %g", max_diff(dw, dwref, nw));
	ck_assert_msg(max_diff(y, yraw, no) > 1e-4 * max_abs(yraw, no), "forward not rounded");
	free(x), free(w), free(dy), free(xr), free(wr), free(dyr), free(y), free(yref), free(yraw);
	free(dx), free(dxref), free(dw), free(dwref), free(work);
}
END_TEST

static Suite *
bf16_suite(void)
{
	parallel_set_threads(2);
	if (bf16_native())
		printf("bf16 paths: portable native ran\n");
	else
		printf("bf16 paths: portable ran; native: not run (%s)\n",
		       bf16_cpu_has() ? "turned off by $SSL_BF16 or $SSL_ISA" : "CPU lacks avx512_bf16");
	fflush(stdout);
	Suite *s = suite_create("bf16");
	TCase *tc = tcase_create("convert");
	tcase_add_test(tc, test_convert_cases);
	tcase_add_test(tc, test_convert_all);
	tcase_add_test(tc, test_pack_layout);
	tcase_add_test(tc, test_pack_native);
	tcase_add_test(tc, test_follows_isa);
	suite_add_tcase(s, tc);
	tc = tcase_create("gemm");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_native_vs_portable, 0, NSHAPES);
	tcase_add_test(tc, test_kernel_edges);
	tcase_add_loop_test(tc, test_vs_fp32, 0, NSHAPES);
	tcase_add_test(tc, test_threads);
	tcase_add_loop_test(tc, test_rows, 0, NROWS);
	tcase_add_loop_test(tc, test_rows_nt, 0, NROWS);
	tcase_add_test(tc, test_convert_arrays);
	tcase_add_loop_test(tc, test_conv_bf16, 0, 3 * NCONV);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(bf16_suite)
