/* cpu: see cpu.h. */
#include "base/cpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#ifdef CPU_HAVE_X86
#include <cpuid.h>
#endif

static CpuFeatures feat;
static int feat_done;
/* levels below x86-64-v3's AVX2 + FMA that the compiler may also use there */
static int v3_extras;
static int isa_now = -1;

static const char *const isa_names[CPU_NISA] = { "generic", "avx2", "avx512" };

#ifdef CPU_HAVE_X86
static unsigned long long
xgetbv0(void)
{
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((unsigned long long)hi << 32) | lo;
}

static void
detect(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return;
	int fma = (c >> 12) & 1, movbe = (c >> 22) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1,
	    f16c = (c >> 29) & 1;
	/* the OS saves the ymm (XCR0 bits 1-2) and zmm/mask (bits 5-7) registers */
	unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
	int ymm_os = avx && (xcr0 & 0x6) == 0x6, zmm_os = ymm_os && (xcr0 & 0xe0) == 0xe0;
	unsigned max = __get_cpuid_max(0, NULL);
	unsigned b7 = 0, c7 = 0, a71 = 0;
	if (max >= 7) {
		__cpuid_count(7, 0, a, b7, c7, d);
		unsigned sub = a;
		if (sub >= 1)
			__cpuid_count(7, 1, a71, b, c, d);
	}
	int lzcnt = 0;
	if (__get_cpuid(0x80000001, &a, &b, &c, &d))
		lzcnt = (c >> 5) & 1;
	feat.avx2 = ymm_os && ((b7 >> 5) & 1);
	feat.fma = ymm_os && fma;
	feat.avx512f = zmm_os && ((b7 >> 16) & 1);
	feat.avx512dq = zmm_os && ((b7 >> 17) & 1);
	feat.avx512bw = zmm_os && ((b7 >> 30) & 1);
	feat.avx512vl = zmm_os && ((b7 >> 31) & 1);
	feat.avx512vnni = zmm_os && ((c7 >> 11) & 1);
	feat.avx512bf16 = zmm_os && ((a71 >> 5) & 1);
	v3_extras = movbe && f16c && lzcnt && ((b7 >> 3) & 1) && ((b7 >> 8) & 1); /* + bmi1, bmi2 */
}
#else
static void
detect(void)
{
}
#endif

const CpuFeatures *
cpu_features(void)
{
	if (!feat_done) {
		detect();
		feat_done = 1;
	}
	return &feat;
}

const char *
cpu_isa_lacks(CpuIsa isa)
{
	const CpuFeatures *f = cpu_features();
#ifndef CPU_HAVE_X86
	if (isa != CPU_GENERIC)
		return "build is not x86-64";
#endif
	if (isa >= CPU_AVX2) {
		if (!f->avx2)
			return "CPU lacks avx2";
		if (!f->fma)
			return "CPU lacks fma";
		if (!v3_extras)
			return "CPU lacks one of bmi1 bmi2 lzcnt movbe f16c";
	}
	if (isa >= CPU_AVX512) {
		if (!f->avx512f)
			return "CPU lacks avx512f";
		if (!f->avx512bw)
			return "CPU lacks avx512bw";
		if (!f->avx512dq)
			return "CPU lacks avx512dq";
		if (!f->avx512vl)
			return "CPU lacks avx512vl";
	}
	return NULL;
}

CpuIsa
cpu_isa_best(void)
{
	for (int i = CPU_NISA - 1; i > 0; i--)
		if (!cpu_isa_lacks((CpuIsa)i))
			return (CpuIsa)i;
	return CPU_GENERIC;
}

const char *
cpu_isa_name(CpuIsa isa)
{
	return isa >= 0 && isa < CPU_NISA ? isa_names[isa] : "?";
}

int
cpu_isa_parse(const char *s)
{
	for (int i = 0; i < CPU_NISA; i++)
		if (s && strcmp(s, isa_names[i]) == 0)
			return i;
	return -1;
}

CpuIsa
cpu_isa(void)
{
	int v = __atomic_load_n(&isa_now, __ATOMIC_RELAXED);
	if (v >= 0)
		return (CpuIsa)v;
	const char *e = getenv("SSL_ISA");
	if (e && *e) {
		v = cpu_isa_parse(e);
		if (v < 0)
			die("SSL_ISA=%s: unknown level (generic, avx2 or avx512)", e);
		const char *why = cpu_isa_lacks((CpuIsa)v);
		if (why)
			die("SSL_ISA=%s: %s (it runs up to %s)", e, why, cpu_isa_name(cpu_isa_best()));
	} else {
		v = cpu_isa_best();
	}
	__atomic_store_n(&isa_now, v, __ATOMIC_RELAXED);
	return (CpuIsa)v;
}

int
cpu_isa_set(CpuIsa isa)
{
	if (isa < 0 || isa >= CPU_NISA || cpu_isa_lacks(isa))
		return -1;
	__atomic_store_n(&isa_now, (int)isa, __ATOMIC_RELAXED);
	return 0;
}

void
cpu_describe(char *buf, size_t n)
{
	const CpuFeatures *f = cpu_features();
	static const struct {
		const char *name;
		size_t off;
	} list[] = {
		{ "avx2", offsetof(CpuFeatures, avx2) },
		{ "fma", offsetof(CpuFeatures, fma) },
		{ "avx512f", offsetof(CpuFeatures, avx512f) },
		{ "avx512bw", offsetof(CpuFeatures, avx512bw) },
		{ "avx512dq", offsetof(CpuFeatures, avx512dq) },
		{ "avx512vl", offsetof(CpuFeatures, avx512vl) },
		{ "avx512_vnni", offsetof(CpuFeatures, avx512vnni) },
		{ "avx512_bf16", offsetof(CpuFeatures, avx512bf16) },
	};
	size_t len = (size_t)snprintf(buf, n, "isa %s (cpu:", cpu_isa_name(cpu_isa()));
	int any = 0;
	for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
		if (*(const int *)((const char *)f + list[i].off) && len < n) {
			len += (size_t)snprintf(buf + len, n - len, " %s", list[i].name);
			any = 1;
		}
	if (len < n)
		snprintf(buf + len, n - len, "%s)", any ? "" : " baseline only");
}
