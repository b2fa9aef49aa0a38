/* gemm_avx2: the micro-kernels of lib/nn/gemm_micro.h at the avx2 level
 * (the Makefile compiles this file with -march=x86-64-v3): vectors of 8
 * floats, tiles of 4 x 16 (8 of the 16 ymm registers accumulate), dot
 * blocks of 4 x 3 (12 accumulators, 7 loads per 12 FMAs). */
#if defined(__AVX2__) && defined(__FMA__)
#define VL 8
#define MR 4
#define NV 2
#define DR 3
#define TABLE gemm_kernels_avx2
#define NAME "avx2 4x16"
#include "nn/gemm_micro.h"
#endif
