/* Tests for lib/base/cpu: level names, what this CPU runs, forcing a level,
 * and $SSL_ISA (refused where unknown or beyond the CPU). */
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "isa.h"
#include "testutil.h"

START_TEST(test_names)
{
	for (int i = 0; i < CPU_NISA; i++)
		ck_assert_int_eq(cpu_isa_parse(cpu_isa_name((CpuIsa)i)), i);
	ck_assert_int_eq(cpu_isa_parse("avx512f"), -1);
	ck_assert_int_eq(cpu_isa_parse(""), -1);
	ck_assert_int_eq(cpu_isa_parse(NULL), -1);
}
END_TEST

/* The levels nest; the best is the highest without a reason to refuse it;
 * forcing works exactly for those. */
START_TEST(test_levels)
{
	const CpuFeatures *f = cpu_features();
	CpuIsa best = cpu_isa_best();
	ck_assert_ptr_null(cpu_isa_lacks(CPU_GENERIC));
	for (int i = 0; i < CPU_NISA; i++) {
		ck_assert_int_eq(cpu_isa_lacks((CpuIsa)i) == NULL, i <= (int)best);
		ck_assert_int_eq(cpu_isa_set((CpuIsa)i), i <= (int)best ? 0 : -1);
		ck_assert_int_eq(cpu_isa(), i <= (int)best ? i : (int)best);
	}
	ck_assert_int_eq(cpu_isa_set(CPU_NISA), -1);
	if (best >= CPU_AVX2)
		ck_assert(f->avx2 && f->fma);
	if (best >= CPU_AVX512)
		ck_assert(f->avx512f && f->avx512bw && f->avx512dq && f->avx512vl);
	if (f->avx512bf16 || f->avx512vnni)
		ck_assert(f->avx512f);
	char line[160];
	cpu_describe(line, sizeof line);
	ck_assert_msg(strncmp(line, "isa ", 4) == 0 && strstr(line, cpu_isa_name(best)), "%s", line);
	cpu_describe(line, 10); /* truncates, terminated */
	ck_assert_uint_eq(strlen(line), 9);
}
END_TEST

START_TEST(test_env_level)
{
	/* each level this CPU runs is taken from $SSL_ISA */
	setenv("SSL_ISA", cpu_isa_name(cpu_isa_best()), 1);
	ck_assert_int_eq(cpu_isa(), cpu_isa_best());
}
END_TEST

START_TEST(test_env_generic)
{
	setenv("SSL_ISA", "generic", 1);
	ck_assert_int_eq(cpu_isa(), CPU_GENERIC);
}
END_TEST

/* refused: exit 1 (Check runs it in a child) */
START_TEST(test_env_unknown)
{
	setenv("SSL_ISA", "avx1024", 1);
	(void)cpu_isa();
}
END_TEST

START_TEST(test_env_beyond)
{
	int i = cpu_isa_best() + 1;
	if (i >= CPU_NISA)
		exit(1); /* nothing beyond this CPU to refuse */
	setenv("SSL_ISA", cpu_isa_name((CpuIsa)i), 1);
	(void)cpu_isa();
}
END_TEST

static Suite *
cpu_suite(void)
{
	isa_report("cpu");
	Suite *s = suite_create("cpu");
	TCase *tc = tcase_create("cpu");
	tcase_add_test(tc, test_names);
	tcase_add_test(tc, test_levels);
	tcase_add_test(tc, test_env_level);
	tcase_add_test(tc, test_env_generic);
	tcase_add_exit_test(tc, test_env_unknown, 1);
	tcase_add_exit_test(tc, test_env_beyond, 1);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(cpu_suite)
