/* cpu: the one place that knows about instruction sets.
 *
 * Three levels, each a superset of the one before:
 *   generic  the baseline of the build (x86-64: SSE2)
 *   avx2     AVX2 + FMA (x86-64-v3: Zen 2/3, Haswell and later)
 *   avx512   AVX-512 F + BW + DQ + VL (x86-64-v4: Zen 4/5, Skylake-X and later)
 * The level the kernels use is the highest this CPU runs, or $SSL_ISA
 * (generic|avx2|avx512) where set: a level the CPU lacks is refused (the
 * first kernel to ask dies with "SSL_ISA=avx512: this CPU lacks avx512f").
 * Features beyond the levels (avx512_vnni, avx512_bf16) are reported for the
 * kernels that need them.
 *
 * Kernels reach a level in one of two ways:
 *  - a whole file compiled once per level (lib/nn/gemm_avx2.c and _avx512.c
 *    include one template written over a vector width; the Makefile gives
 *    them the target flags), called through a table filled once;
 *  - a plain loop cloned per level with CPU_CLONES below. */
#ifndef SSL_CPU_H
#define SSL_CPU_H

#include <stddef.h>

typedef enum { CPU_GENERIC, CPU_AVX2, CPU_AVX512, CPU_NISA } CpuIsa;

typedef struct {
	int avx2, fma;                               /* avx2 level */
	int avx512f, avx512bw, avx512dq, avx512vl;   /* avx512 level */
	int avx512vnni, avx512bf16;                  /* extras (vpdpbusd, vdpbf16ps) */
} CpuFeatures;

/* What this CPU has (detected once; all zero off x86-64). */
const CpuFeatures *cpu_features(void);
/* The highest level this CPU runs. */
CpuIsa cpu_isa_best(void);
/* The level kernels use: $SSL_ISA if set (dies if the CPU lacks it or the
 * name is unknown), else cpu_isa_best(). */
CpuIsa cpu_isa(void);
/* For tests and benches: kernels use isa from now on. Returns 0, or -1 (and
 * changes nothing) where the CPU lacks it. Not while kernels run. */
int cpu_isa_set(CpuIsa isa);
/* "generic", "avx2", "avx512". */
const char *cpu_isa_name(CpuIsa isa);
/* The level named s, or -1. */
int cpu_isa_parse(const char *s);
/* Why this CPU cannot run isa ("CPU lacks avx512f"), or NULL if it can. */
const char *cpu_isa_lacks(CpuIsa isa);
/* One line for --verbose and benches, e.g.
 * "isa avx512 (cpu: avx2 fma avx512f avx512bw avx512dq avx512vl avx512_vnni avx512_bf16)". */
void cpu_describe(char *buf, size_t n);

/* ---- cloning a plain loop per level ----
 * Write the loop once as an inline body, then let CPU_CLONES make one copy
 * compiled for each level and a dispatcher of the body's name minus _body
 * that calls the copy for cpu_isa() (so $SSL_ISA and cpu_isa_set reach it,
 * unlike GCC's target_clones):
 *
 *   CPU_BODY void scale_body(float *x, size_t n, float a) { ... }
 *   CPU_CLONES(scale, (float *x, size_t n, float a), (x, n, a))
 *
 * (CPU_CLONES_RET(float, name, ...) for a body that returns a value.)
 *
 * The copies differ only in code generation: floating-point contraction
 * stays off (-std=c11), so each runs the same IEEE operations in more
 * lanes and gives the same bits. */
#define CPU_BODY static inline __attribute__((always_inline))

#if defined(__x86_64__) && defined(__GNUC__)
#define CPU_HAVE_X86 1
/* target flags of the levels, for functions (the Makefile's CPU_FLAGS_* say
 * the same for whole files) */
#define CPU_TARGET_AVX2 __attribute__((target("arch=x86-64-v3")))
#define CPU_TARGET_AVX512 __attribute__((target("arch=x86-64-v4")))
/* the avx512 level plus avx512_bf16 (vdpbf16ps), for the kernels of
 * lib/nn/bf16.c; they run only where cpu_features() reports it */
#define CPU_TARGET_AVX512_BF16 __attribute__((target("arch=x86-64-v4,avx512bf16")))
/* name##_body returns void: CPU_CLONES; a value of type ret: CPU_CLONES_RET */
#define CPU_CLONES(name, params, args)                                               \
	CPU_TARGET_AVX512 static void name##_avx512 params { name##_body args; }      \
	CPU_TARGET_AVX2 static void name##_avx2 params { name##_body args; }          \
	static void name##_generic params { name##_body args; }                       \
	static void name params                                                       \
	{                                                                             \
		CpuIsa isa_ = cpu_isa();                                              \
		if (isa_ == CPU_AVX512)                                               \
			name##_avx512 args;                                           \
		else if (isa_ == CPU_AVX2)                                            \
			name##_avx2 args;                                             \
		else                                                                  \
			name##_generic args;                                          \
	}
#define CPU_CLONES_RET(ret, name, params, args)                                      \
	CPU_TARGET_AVX512 static ret name##_avx512 params { return name##_body args; } \
	CPU_TARGET_AVX2 static ret name##_avx2 params { return name##_body args; }     \
	static ret name##_generic params { return name##_body args; }                  \
	static ret name params                                                         \
	{                                                                              \
		CpuIsa isa_ = cpu_isa();                                               \
		return isa_ == CPU_AVX512 ? name##_avx512 args                         \
		     : isa_ == CPU_AVX2   ? name##_avx2 args                           \
		                          : name##_generic args;                       \
	}
#else
#define CPU_CLONES(name, params, args) \
	static void name params { name##_body args; }
#define CPU_CLONES_RET(ret, name, params, args) \
	static ret name params { return name##_body args; }
#endif

#endif
