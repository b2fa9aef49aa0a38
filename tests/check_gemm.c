/* Tests for lib/nn/gemm: the OpenMP-split gemm and the packed and
 * row-offset micro-kernel forms against gemm_ref, at each instruction-set
 * level this CPU runs. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"
#include "base/parallel.h"
#include "base/util.h"
#include "testutil.h"
#include "fixture.h"
#include "gradcheck.h"
#include "isa.h"

START_TEST(test_gemm_vs_ref)
{
	static const int cases[][5] = {
		/* M, N, K, ta, tb */
		{ 3, 5, 7, 0, 0 },     { 17, 33, 9, 1, 0 },  { 8, 19, 31, 0, 1 }, { 13, 11, 5, 1, 1 },
		{ 70, 300, 200, 0, 0 }, /* big enough to split over threads (by columns) */
		{ 300, 70, 200, 1, 1 }, /* by rows */
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2], ta = cases[c][3], tb = cases[c][4];
		float *A = gc_floats((size_t)M * K), *B = gc_floats((size_t)K * N), *C = gc_floats((size_t)M * N);
		float *R = gc_floats((size_t)M * N);
		gc_fill_normal(A, (size_t)M * K, 1, c, 1);
		gc_fill_normal(B, (size_t)K * N, 2, c, 1);
		gc_fill_normal(C, (size_t)M * N, 3, c, 1);
		memcpy(R, C, sizeof(float) * M * N);
		gemm(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, C, N);
		gemm_ref(ta, tb, M, N, K, 0.7f, A, ta ? M : K, B, tb ? K : N, 0.5f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "gemm case %zu: %g", c, rel_err(C, R, (size_t)M * N, 1));
		free(A);
		free(B);
		free(C);
		free(R);
	}
}
END_TEST

/* the packed forms at each level: plain loops (generic), micro-kernels (avx2, avx512) */
START_TEST(test_gemm_packed)
{
	if (!isa_use(_i))
		return;
	static const int cases[][3] = { { 16, 1024, 144 }, { 5, 37, 300 }, { 1, 16, 3 }, { 32, 50, 600 }, { 7, 9, 1 } };
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2], ldb = gemm_pad_ld(N);
		float *A = gc_floats((size_t)M * K), *B = gc_floats((size_t)K * ldb), *C = gc_floats((size_t)M * N), *R = gc_floats((size_t)M * N);
		float *Ap = gc_floats(gemm_pack_floats(M, K));
		gc_fill_normal(A, (size_t)M * K, 1, c, 1);
		gc_fill_normal(B, (size_t)K * ldb, 2, c, 1);
		gc_fill_normal(C, (size_t)M * N, 3, c, 1);
		memcpy(R, C, sizeof(float) * M * N);
		gemm_pack_a(Ap, A, K, M, K);
		gemm_packed_nn(M, N, K, Ap, B, ldb, 1, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, ldb, 1.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed += case %zu", c);
		gemm_packed_nn(M, N, K, Ap, B, ldb, 0, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, B, ldb, 0.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed = case %zu", c);
		free(A), free(B), free(C), free(R), free(Ap);
	}
	ck_assert_int_ge(gemm_pad_ld(1024), 1024);
	ck_assert_int_ne(gemm_pad_ld(1024) % 256, 0);
}
END_TEST

/* The row-offset forms (implicit im2col) against gemm_ref on the rows they
 * gather: rows of B at scattered, overlapping offsets; shapes that leave
 * every kind of edge (4x3 blocks and their remainders, 16- and 8-column
 * tiles and plain tails), at each level. */
START_TEST(test_gemm_rows)
{
	if (!isa_use(_i))
		return;
	static const int cases[][3] = { { 16, 1088, 144 }, { 5, 37, 29 }, { 4, 24, 27 }, { 3, 13, 50 }, { 32, 8, 300 } };
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int M = cases[c][0], N = cases[c][1], K = cases[c][2];
		size_t span = (size_t)3 * K + N + 8;
		ptrdiff_t *off = xcalloc((size_t)K, sizeof *off);
		for (int k = 0; k < K; k++)
			off[k] = (ptrdiff_t)((k * 7919) % (3 * K)); /* out of order, overlapping */
		float *B = gc_floats(span), *G = gc_floats((size_t)K * N), *A = gc_floats((size_t)M * K), *Ap = gc_floats(gemm_pack_floats(M, K));
		float *C = gc_floats((size_t)M * N), *R = gc_floats((size_t)M * N), *Y = gc_floats((size_t)M * N);
		float *D = gc_floats((size_t)M * K), *DR = gc_floats((size_t)M * K);
		gc_fill_normal(B, span, 1, c, 1);
		gc_fill_normal(A, (size_t)M * K, 2, c, 1);
		gc_fill_normal(Y, (size_t)M * N, 3, c, 1);
		gc_fill_normal(D, (size_t)M * K, 4, c, 1);
		memcpy(DR, D, sizeof(float) * M * K);
		for (int k = 0; k < K; k++) /* the gathered matrix, stored */
			memcpy(G + (size_t)k * N, B + off[k], sizeof(float) * N);
		gemm_pack_a(Ap, A, K, M, K);
		gemm_packed_rows(M, N, K, Ap, B, off, 0, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, G, N, 0.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed rows case %zu", c);
		gemm_packed_rows(M, N, K, Ap, B, off, 1, C, N);
		gemm_ref(0, 0, M, N, K, 1.0f, A, K, G, N, 1.0f, R, N);
		ck_assert_msg(rel_err(C, R, (size_t)M * N, 1) < 1e-5, "packed rows += case %zu", c);
		/* D (M x K) += Y (M x N) x G^T */
		gemm_rows_nt(M, K, N, Y, N, B, off, D, K);
		gemm_ref(0, 1, M, K, N, 1.0f, Y, N, G, N, 1.0f, DR, K);
		ck_assert_msg(rel_err(D, DR, (size_t)M * K, 1) < 1e-5, "rows nt case %zu: %g", c,
		              rel_err(D, DR, (size_t)M * K, 1));
		free(off), free(B), free(G), free(A), free(Ap), free(C), free(R), free(Y), free(D), free(DR);
	}
}
END_TEST

static Suite *
gemm_suite(void)
{
	parallel_set_threads(2);
	isa_report("gemm");
	Suite *s = suite_create("gemm");
	TCase *tc = tcase_create("gemm");
	tcase_add_test(tc, test_gemm_vs_ref);
	tcase_add_loop_test(tc, test_gemm_packed, 0, CPU_NISA);
	tcase_add_loop_test(tc, test_gemm_rows, 0, CPU_NISA);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(gemm_suite)
