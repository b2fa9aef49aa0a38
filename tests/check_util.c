/* Tests for lib/base/util (parsing), lib/base/rng and lib/io/tensor. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomicfile.h"
#include "base/rng.h"
#include "data/subset.h"
#include "io/tensor.h"
#include "testutil.h"
#include "base/util.h"

START_TEST(test_parse_i64)
{
	char err[128];
	int64_t v;
	ck_assert_int_eq(parse_i64("42", 0, 100, &v, err, sizeof err), 0);
	ck_assert_int_eq(v, 42);
	ck_assert_int_eq(parse_i64("-3", -5, 5, &v, err, sizeof err), 0);
	ck_assert_int_eq(v, -3);
	ck_assert_int_eq(parse_i64("42x", 0, 100, &v, err, sizeof err), -1);
	ck_assert_int_eq(parse_i64("", 0, 100, &v, err, sizeof err), -1);
	ck_assert_int_eq(parse_i64("101", 0, 100, &v, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "out of range"));
	ck_assert_int_eq(parse_i64("99999999999999999999999", 0, INT64_MAX, &v, err, sizeof err), -1);
}
END_TEST

START_TEST(test_parse_f64)
{
	char err[128];
	double v;
	ck_assert_int_eq(parse_f64("0.5", 0, 1, &v, err, sizeof err), 0);
	ck_assert(v == 0.5);
	ck_assert_int_eq(parse_f64("1e-3", 0, 1, &v, err, sizeof err), 0);
	ck_assert_int_eq(parse_f64("nan", 0, 1, &v, err, sizeof err), -1);
	ck_assert_int_eq(parse_f64("0.5.", 0, 1, &v, err, sizeof err), -1);
	ck_assert_int_eq(parse_f64("-0.1", 0, 1, &v, err, sizeof err), -1);
}
END_TEST

START_TEST(test_parse_duration)
{
	char err[128];
	double v;
	static const struct { const char *s; double want; } ok[] = {
		{ "45m", 2700 }, { "2h", 7200 }, { "1h30m", 5400 }, { "90s", 90 }, { "2.5h", 9000 }, { "1m30s", 90 },
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		ck_assert_msg(parse_duration(ok[i].s, &v, err, sizeof err) == 0, "%s: %s", ok[i].s, err);
		ck_assert_msg(v == ok[i].want, "%s: %g", ok[i].s, v);
	}
	static const char *bad[] = { "", "45", "m", "45x", "-5m", "0s", "1h-5m", "nanm", "1e9h" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(parse_duration(bad[i], &v, err, sizeof err) == -1, "'%s' accepted", bad[i]);
}
END_TEST

START_TEST(test_parse_hw_labels)
{
	char err[128];
	int h, w;
	double f;
	int64_t n;
	ck_assert_int_eq(parse_hw("32x24", 4096, &h, &w, err, sizeof err), 0);
	ck_assert_int_eq(h, 32);
	ck_assert_int_eq(w, 24);
	ck_assert_int_eq(parse_hw("28", 4096, &h, &w, err, sizeof err), 0);
	ck_assert_int_eq(h, 28);
	ck_assert_int_eq(w, 28);
	ck_assert_int_eq(parse_hw("0x5", 4096, &h, &w, err, sizeof err), -1);
	ck_assert_int_eq(parse_hw("5x", 4096, &h, &w, err, sizeof err), -1);
	ck_assert_int_eq(parse_label_spec("1%", &f, &n, err, sizeof err), 0);
	ck_assert(fabs(f - 0.01) < 1e-12 && n == -1);
	ck_assert_int_eq(parse_label_spec("0.1", &f, &n, err, sizeof err), 0);
	ck_assert(fabs(f - 0.1) < 1e-12);
	ck_assert_int_eq(parse_label_spec("25-per-class", &f, &n, err, sizeof err), 0);
	ck_assert_int_eq(n, 25);
	ck_assert_int_eq(parse_label_spec("0", &f, &n, err, sizeof err), -1);
	ck_assert_int_eq(parse_label_spec("150%", &f, &n, err, sizeof err), -1);
	ck_assert_int_eq(parse_label_spec("x-per-class", &f, &n, err, sizeof err), -1);
}
END_TEST

START_TEST(test_rng_keyed)
{
	Rng a = rng_for(1, 2, 3, 4), b = rng_for(1, 2, 3, 4), c = rng_for(1, 2, 4, 4);
	uint64_t x = rng_u64(&a);
	ck_assert_uint_eq(x, rng_u64(&b));
	ck_assert_uint_ne(x, rng_u64(&c));
}
END_TEST

START_TEST(test_rng_moments)
{
	Rng r = rng_for(7, 0, 0, 0);
	double s = 0, s2 = 0, ns = 0, ns2 = 0;
	int n = 200000, counts[10] = { 0 };
	for (int i = 0; i < n; i++) {
		double u = rng_uniform(&r), z = rng_normal(&r);
		ck_assert(u >= 0 && u < 1);
		s += u;
		s2 += u * u;
		ns += z;
		ns2 += z * z;
		counts[rng_below(&r, 10)]++;
	}
	ck_assert(fabs(s / n - 0.5) < 0.005);
	ck_assert(fabs(s2 / n - 1.0 / 3) < 0.005);
	ck_assert(fabs(ns / n) < 0.01);
	ck_assert(fabs(ns2 / n - 1) < 0.02);
	for (int k = 0; k < 10; k++)
		ck_assert(abs(counts[k] - n / 10) < 600);
}
END_TEST

START_TEST(test_rng_shuffle_is_permutation)
{
	int64_t p[1000];
	int seen[1000] = { 0 };
	Rng r = rng_for(3, 1, RNG_DOMAIN_SHUFFLE, 0);
	for (int i = 0; i < 1000; i++)
		p[i] = i;
	rng_shuffle_i64(&r, p, 1000);
	int fixed = 0;
	for (int i = 0; i < 1000; i++) {
		seen[p[i]]++;
		fixed += p[i] == i;
	}
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(seen[i], 1);
	ck_assert(fixed < 10);
}
END_TEST

START_TEST(test_tensor_numel)
{
	int64_t ok[3] = { 32, 32, 3 }, neg[2] = { 4, -1 }, big[3] = { INT64_C(1) << 40, INT64_C(1) << 30, 4 };
	DType d;
	ck_assert_int_eq(tensor_numel_checked(ok, 3, 0), 3072);
	ck_assert_int_eq(tensor_numel_checked(ok, 3, 1000), -1);
	ck_assert_int_eq(tensor_numel_checked(neg, 2, 0), -1);
	ck_assert_int_eq(tensor_numel_checked(big, 3, 0), -1);
	ck_assert_int_eq(tensor_numel_checked(ok, TENSOR_MAX_DIM + 1, 0), -1);
	ck_assert_int_eq(dtype_parse("<f4", 3, &d), 0);
	ck_assert_int_eq(d, DTYPE_F32);
	ck_assert_int_eq(dtype_parse(">f4", 3, &d), -1);
	ck_assert_str_eq(dtype_str(DTYPE_U8), "|u1");
}
END_TEST


START_TEST(test_subset_stratified)
{
	int64_t labels[100], out[100];
	int per[3] = { 0 };
	for (int i = 0; i < 100; i++)
		labels[i] = i < 50 ? 0 : (i < 90 ? 1 : (i < 99 ? 2 : -1));
	int64_t k = subset_stratified(labels, 100, 3, 0.1, 0, 5, out);
	ck_assert_int_eq(k, 5 + 4 + 1);
	for (int64_t i = 0; i < k; i++) {
		if (i)
			ck_assert(out[i] > out[i - 1]);
		per[labels[out[i]]]++;
	}
	ck_assert_int_eq(per[0], 5);
	ck_assert_int_eq(per[1], 4);
	ck_assert_int_eq(per[2], 1);
	int64_t again[100];
	ck_assert_int_eq(subset_stratified(labels, 100, 3, 0.1, 0, 5, again), k);
	ck_assert_mem_eq(out, again, (size_t)k * sizeof out[0]);
	ck_assert_int_eq(subset_stratified(labels, 100, 3, 0, 20, 5, out), 20 + 20 + 9);
}
END_TEST


START_TEST(test_atomicfile)
{
	AtomicFile af;
	const char *p = tu_path("atomic.bin");
	size_t len;
	char *got;
	ck_assert_int_eq(atomicfile_open(&af, p), 0);
	fputs("first", af.fp);
	ck_assert_int_eq(atomicfile_commit(&af), 0);
	got = tu_read_file(p, &len);
	ck_assert_str_eq(got, "first");
	free(got);
	/* a write that fails (disk full) leaves the previous file intact */
	setenv("SSL_FAULT_WRITE_BYTES", "3", 1);
	ck_assert_int_eq(atomicfile_open(&af, p), 0);
	fputs("second, longer", af.fp);
	ck_assert_int_eq(atomicfile_commit(&af), -1);
	unsetenv("SSL_FAULT_WRITE_BYTES");
	got = tu_read_file(p, &len);
	ck_assert_str_eq(got, "first");
	free(got);
	/* abort leaves it intact too, and no temporary behind */
	ck_assert_int_eq(atomicfile_open(&af, p), 0);
	fputs("third", af.fp);
	atomicfile_abort(&af);
	got = tu_read_file(p, &len);
	ck_assert_str_eq(got, "first");
	free(got);
	TuResult r;
	tu_run(&r, "ls '%s' | grep -c tmp", tu_tmpdir());
	ck_assert_str_eq(r.out, "0\n");
	tu_result_free(&r);
	ck_assert_int_eq(atomicfile_open(&af, "/nonexistent-dir/x"), -1);
}
END_TEST

/* UTF-8: what is valid (RFC 3629), the \xHH escape of the rest, and the
 * terminal-safe form of both (issue 19, items 13 and 14). */
START_TEST(test_utf8)
{
	static const struct {
		const char *in, *escaped, *printable;
	} c[] = {
		{ "plain", "plain", "plain" },
		{ "caf\xc3\xa9 \xf0\x9f\x90\x88", "caf\xc3\xa9 \xf0\x9f\x90\x88", "caf\xc3\xa9 \xf0\x9f\x90\x88" },
		{ "caf\xe9", "caf\\xe9", "caf?" },
		{ "over\xc0\xaf", "over\\xc0\\xaf", "over??" },          /* overlong '/' */
		{ "sur\xed\xa0\x80", "sur\\xed\\xa0\\x80", "sur???" },  /* a surrogate */
		{ "big\xf4\x90\x80\x80", "big\\xf4\\x90\\x80\\x80", "big????" },
		{ "cut\xe2\x82", "cut\\xe2\\x82", "cut??" },
		{ "esc\x1b[2J\x7f", "esc\x1b[2J\x7f", "esc?[2J?" },
		{ "csi\xc2\x9b" "1m nbsp\xc2\xa0", "csi\xc2\x9b" "1m nbsp\xc2\xa0", "csi??1m nbsp\xc2\xa0" },
	};
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
		char *e = str_utf8_escape(c[i].in), *p = xstrdup(c[i].in);
		ck_assert_str_eq(e, c[i].escaped);
		ck_assert(utf8_valid(e, strlen(e)));
		ck_assert_int_eq(utf8_valid(c[i].in, strlen(c[i].in)), strcmp(c[i].in, c[i].escaped) == 0);
		str_printable(p);
		ck_assert_str_eq(p, c[i].printable);
		ck_assert(utf8_valid(p, strlen(p)));
		free(e);
		free(p);
	}
}
END_TEST

static Suite *
util_suite(void)
{
	Suite *s = suite_create("util");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_parse_i64);
	tcase_add_test(tc, test_parse_f64);
	tcase_add_test(tc, test_parse_duration);
	tcase_add_test(tc, test_parse_hw_labels);
	tcase_add_test(tc, test_rng_keyed);
	tcase_add_test(tc, test_rng_moments);
	tcase_add_test(tc, test_rng_shuffle_is_permutation);
	tcase_add_test(tc, test_tensor_numel);
	tcase_add_test(tc, test_subset_stratified);
	tcase_add_test(tc, test_atomicfile);
	tcase_add_test(tc, test_utf8);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(util_suite)
