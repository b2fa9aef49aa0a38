/* Tests for lib/base/provargs: run-only options leave the provenance. */
#include <string.h>

#include "base/provargs.h"
#include "testutil.h"

static const struct option longopts[] = {
	{ "recipe", required_argument, NULL, 'r' }, { "threads", required_argument, NULL, 'j' },
	{ "progress", no_argument, NULL, 1 },       { "preview", required_argument, NULL, 2 },
	{ "preview-count", required_argument, NULL, 3 }, { "quiet", no_argument, NULL, 'q' },
	{ "seed", required_argument, NULL, 4 },     { NULL, 0, NULL, 0 },
};
static const char *const drop[] = { "threads", "progress", "preview", "preview-count", "quiet", NULL };

static void
expect(const char *want, int argc, char **argv)
{
	char *out[32], buf[512] = "";
	int n = provargs_filter(argc, argv, "r:j:qv", longopts, drop, "jq", out);
	ck_assert_ptr_null(out[n]);
	for (int i = 0; i < n; i++) {
		strcat(buf, i ? " " : "");
		strcat(buf, out[i]);
	}
	ck_assert_str_eq(buf, want);
}

START_TEST(test_filter)
{
	char *a1[] = { "x", "--recipe", "cifar", "--threads", "2", "--progress", "in.ssl" };
	expect("x --recipe cifar in.ssl", 7, a1);
	char *a2[] = { "x", "--threads=2", "-j3", "-j", "4", "-q", "--thr", "5", "-r", "-j", "--seed", "1" };
	expect("x -r -j --seed 1", 12, a2); /* "-j" after -r is -r's argument */
	char *a3[] = { "x", "-qv", "-qj", "2", "--preview", "p.png", "--preview-c", "3", "--pre", "y", "--", "-q" };
	expect("x -qv --pre y -- -q", 12, a3); /* --pre is ambiguous: getopt would refuse it, we keep it */
	char *a4[] = { "x", "--threads" }; /* a missing argument does not run off the end */
	expect("x", 2, a4);
}
END_TEST

Suite *
provargs_suite(void)
{
	Suite *s = suite_create("provargs");
	TCase *tc = tcase_create("filter");
	tcase_add_test(tc, test_filter);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(provargs_suite)
