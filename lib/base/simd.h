/* simd: compile hot loops for AVX2 as well as the baseline, chosen at run
 * time (GCC/Clang function multi-versioning). Results are identical in
 * both: floating-point contraction stays off (-std=c11), so the wider
 * clone only runs the same operations in more lanes. */
#ifndef SSL_SIMD_H
#define SSL_SIMD_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) && !defined(SSL_NO_CLONES)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

#endif
