/* gemm_avx512: the micro-kernels of lib/nn/gemm_micro.h at the avx512
 * level (the Makefile compiles this file with -march=x86-64-v4): vectors of
 * 16 floats, tiles of 8 x 48 (24 of the 32 zmm registers accumulate: 3
 * loads and 8 broadcasts per 24 FMAs), dot blocks of 4 x 4. (8 x 32 tiles
 * ran the 32-channel layers 2-10% slower; 4 x 6 dot blocks gained nothing:
 * bench/bench_conv, one core.) */
#if defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512BW__) && defined(__AVX512DQ__)
#define VL 16
#define MR 8
#define NV 3
#define DR 4
#define TABLE gemm_kernels_avx512
#define NAME "avx512 8x48"
#include "nn/gemm_micro.h"
#endif
