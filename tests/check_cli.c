/* The option front end every tool shares (lib/base/cli): the same five
 * options everywhere, one line for an unknown option or a missing argument
 * (the program's name, not its path), and options that do not apply
 * refused with a reason. */
#include <stdio.h>
#include <string.h>

#include "testutil.h"

static const char *const tools[] = { "ssl-decode", "ssl-augment", "ssl-train", "ssl-encode", "ssl-probe",
	                             "ssl-info",   "ssl-plot",    "ssl-export" };
#define NTOOLS (sizeof tools / sizeof tools[0])

/* stderr is exactly "<tool>: <what>" and the --help hint, two lines. */
static void
assert_usage_error(const TuResult *r, const char *tool, const char *what)
{
	char want[256];
	snprintf(want, sizeof want, "%s: %s\nTry '%s --help' for more information.\n", tool, what, tool);
	ck_assert_msg(r->status == 2, "%s: exit %d, want 2", tool, r->status);
	ck_assert_msg(r->outlen == 0, "%s: %zu bytes on stdout", tool, r->outlen);
	ck_assert_msg(strcmp(r->err, want) == 0, "%s: stderr is\n%s\nwant\n%s", tool, r->err, want);
}

START_TEST(test_unknown_and_missing)
{
	for (size_t i = 0; i < NTOOLS; i++) {
		TuResult r;
		tu_run(&r, "%s --bogus", tools[i]);
		assert_usage_error(&r, tools[i], "unknown option '--bogus'");
		tu_result_free(&r);
		tu_run(&r, "%s --bogus=1", tools[i]);
		assert_usage_error(&r, tools[i], "unknown option '--bogus'");
		tu_result_free(&r);
		tu_run(&r, "%s -Z", tools[i]);
		assert_usage_error(&r, tools[i], "unknown option '-Z'");
		tu_result_free(&r);
		tu_run(&r, "%s --threads", tools[i]);
		assert_usage_error(&r, tools[i], "option '--threads' needs an argument");
		tu_result_free(&r);
		tu_run(&r, "%s --quiet=1", tools[i]);
		assert_usage_error(&r, tools[i], "option '--quiet' takes no argument");
		tu_result_free(&r);
		tu_run(&r, "%s --threads 0", tools[i]);
		ck_assert_msg(r.status == 2, "%s --threads 0: exit %d", tools[i], r.status);
		tu_result_free(&r);
	}
}
END_TEST

START_TEST(test_shared_options)
{
	static const char *const shared[] = { "-q, --quiet", "--progress", "--threads N", "-h, --help", "--version" };
	for (size_t i = 0; i < NTOOLS; i++) {
		TuResult r;
		char want[64];
		tu_run(&r, "%s -q --progress --threads 2 --version", tools[i]);
		snprintf(want, sizeof want, "%s %s", tools[i], "");
		ck_assert_msg(r.status == 0 && strncmp(r.out, want, strlen(want)) == 0, "%s --version: exit %d, '%s'",
		              tools[i], r.status, r.out);
		tu_result_free(&r);
		tu_run(&r, "%s -h", tools[i]);
		ck_assert_msg(r.status == 0 && strstr(r.out, "usage: "), "%s -h: exit %d", tools[i], r.status);
		for (size_t k = 0; k < sizeof shared / sizeof shared[0]; k++)
			ck_assert_msg(strstr(r.out, shared[k]), "%s --help lacks '%s'", tools[i], shared[k]);
		tu_result_free(&r);
	}
}
END_TEST

START_TEST(test_train_refuses)
{
	TuResult r;
	tu_run(&r, "ssl-train --epochs 3 -o x.ssl");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "ssl-decode --epochs N");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --sync-bn -o x.ssl");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "ssl-train: --sync-bn: only for data-parallel training (ssl-train-mpi");
	tu_result_free(&r);
	tu_run(&r, "ssl-train --timeout 5 -o x.ssl");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "ssl-train: --timeout: only for data-parallel training");
	tu_result_free(&r);
	tu_run(&r, "ssl-augment -j 2 --recipe cifar");
	assert_usage_error(&r, "ssl-augment", "unknown option '-j'");
	tu_result_free(&r);
}
END_TEST

static Suite *
cli_suite(void)
{
	Suite *s = suite_create("cli");
	TCase *tc = tcase_create("tools");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_unknown_and_missing);
	tcase_add_test(tc, test_shared_options);
	tcase_add_test(tc, test_train_refuses);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(cli_suite)
