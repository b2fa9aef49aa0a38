/* bench_bf16_gemm: one thread, the GEMMs of a CIFAR ResNet-18's 3x3 and
 * 1x1 convolutions as lib/nn/conv runs them through im2col (a chunk of at
 * least 512 output columns):
 *   fwd   out (OC x cols)    = W (OC x CKK)      x col (CKK x cols)
 *   wgrad dW  (OC x CKK)    += dout (OC x cols)  x col^T
 *   dgrad col (CKK x cols)   = W^T (CKK x OC)    x dout (OC x cols)
 * for: our bf16 GEMM (lib/nn/bf16, native kernel where the CPU has
 * avx512_bf16, else portable), our fp32 micro-kernels (lib/nn/gemm
 * gemm_packed_nn: only fwd, only up to 32 rows, as conv uses them) and
 * OpenBLAS sgemm. (Debian 12's OpenBLAS 0.3.21 declares cblas_sbgemm in
 * cblas.h but is built without BUILD_BFLOAT16: the symbol is not in
 * libopenblas.so, so there is no OpenBLAS bf16 column.) GFLOP/s, median
 * of --reps repeats of at least 20 ms each. Run through `make bench-bf16`
 * (core 1, OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset). */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bf16.h"
#include "nn/gemm.h"
#include "base/rng.h"
#include "base/util.h"

enum { FWD, WGRAD, DGRAD };
static const char *const op_name[] = { "fwd", "wgrad", "dgrad" };

typedef struct {
	int op, M, N, K, ta, tb;
	const float *A, *B;
	float *C, *Ap; /* Ap: A packed for gemm_packed_nn */
} Job;

enum { OURS_BF16, OURS_FP32, SGEMM, NIMPL };
static const char *const impl_name[] = { "bf16 (ours)", "fp32 (ours)", "sgemm" };

static void
run(const Job *j, int impl)
{
	/* leading dimensions padded as lib/nn/conv pads its columns (gemm_pad_ld) */
	const int lda = gemm_pad_ld(j->ta ? j->M : j->K), ldb = gemm_pad_ld(j->tb ? j->K : j->N), ldc = gemm_pad_ld(j->N);
	const float beta = j->op == WGRAD ? 1.0f : 0.0f;
	switch (impl) {
	case OURS_BF16:
		gemm_bf16_serial(j->ta, j->tb, j->M, j->N, j->K, 1.0f, j->A, lda, j->B, ldb, beta, j->C, ldc);
		break;
	case OURS_FP32:
		gemm_pack_a(j->Ap, j->A, lda, j->M, j->K);
		gemm_packed_nn(j->M, j->N, j->K, j->Ap, j->B, ldb, 0, j->C, ldc);
		break;
	case SGEMM:
		gemm_serial(j->ta, j->tb, j->M, j->N, j->K, 1.0f, j->A, lda, j->B, ldb, beta, j->C, ldc);
		break;
	}
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* median GFLOP/s over reps repeats of >= 20 ms */
static double
rate(const Job *j, int impl, int reps)
{
	double r[64], flops = 2.0 * j->M * j->N * (double)j->K;
	run(j, impl); /* warm */
	for (int k = 0; k < reps; k++) {
		int it = 0;
		double t0 = now_seconds(), t;
		do {
			run(j, impl);
			it++;
			t = now_seconds() - t0;
		} while (t < 0.02);
		r[k] = flops * it / t / 1e9;
	}
	qsort(r, (size_t)reps, sizeof r[0], cmp_double);
	return r[reps / 2];
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_bf16_gemm [--width 16] [--width 64] [--reps 7]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = { { "width", required_argument, 0, 'w' },
		                               { "reps", required_argument, 0, 'r' },
		                               { 0, 0, 0, 0 } };
	int widths[8], nw = 0, reps = 7, c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'w' && nw < 8)
			widths[nw++] = atoi(optarg);
		else if (c == 'r')
			reps = atoi(optarg);
		else
			usage();
	}
	if (reps < 1 || reps > 64)
		usage();
	if (!nw) {
		widths[nw++] = 16;
		widths[nw++] = 64;
	}
	openblas_set_num_threads(1);
	printf("one thread; openblas kernel %s; bf16 kernel %s; median of %d repeats, GFLOP/s\n",
	       openblas_get_corename(), bf16_native() ? "native (avx512_bf16)" : "portable", reps);
	printf("%-5s %-22s %-6s %5s %5s %5s", "width", "layer", "op", "M", "N", "K");
	for (int i = 0; i < NIMPL; i++)
		printf(" %12s", impl_name[i]);
	printf("\n");
	for (int wi = 0; wi < nw; wi++) {
		const int w = widths[wi];
		/* C, OC, K, output map side (CIFAR stem: 32x32 in, no max-pool) */
		const struct {
			const char *name;
			int C, OC, k, side;
		} layers[] = {
			{ "conv1 3x3", 3, w, 3, 32 },         { "layer1 3x3", w, w, 3, 32 },
			{ "layer2.0 3x3 s2", w, 2 * w, 3, 16 }, { "layer2 3x3", 2 * w, 2 * w, 3, 16 },
			{ "layer2.0 1x1 s2", w, 2 * w, 1, 16 }, { "layer3 3x3", 4 * w, 4 * w, 3, 8 },
			{ "layer4 3x3", 8 * w, 8 * w, 3, 4 },
		};
		for (size_t li = 0; li < sizeof layers / sizeof layers[0]; li++) {
			const int ohw = layers[li].side * layers[li].side, cols = ohw >= 512 ? ohw : 512;
			const int OC = layers[li].OC, CKK = layers[li].C * layers[li].k * layers[li].k;
			size_t big = (size_t)(CKK > OC ? CKK : OC) * gemm_pad_ld(cols > CKK ? cols : CKK);
			float *A = xalloc_aligned(sizeof(float) * big), *B = xalloc_aligned(sizeof(float) * big);
			float *C = xalloc_aligned(sizeof(float) * big), *Ap = xalloc_aligned(sizeof(float) * gemm_pack_floats(OC, CKK));
			Rng r = rng_for(1, 0, li, 0);
			for (size_t k = 0; k < big; k++) {
				A[k] = (float)rng_uniform_range(&r, -1, 1);
				B[k] = (float)rng_uniform_range(&r, -1, 1);
			}
			for (int op = FWD; op <= DGRAD; op++) {
				Job j = { .op = op, .A = A, .B = B, .C = C, .Ap = Ap };
				if (op == FWD)
					j.M = OC, j.N = cols, j.K = CKK;
				else if (op == WGRAD)
					j.M = OC, j.N = CKK, j.K = cols, j.tb = 1;
				else
					j.M = CKK, j.N = cols, j.K = OC, j.ta = 1;
				printf("%-5d %-22s %-6s %5d %5d %5d", w, layers[li].name, op_name[op], j.M, j.N, j.K);
				for (int i = 0; i < NIMPL; i++) {
					if (i == OURS_FP32 && (op != FWD || OC > 32))
						printf(" %12s", "-");
					else
						printf(" %12.1f", rate(&j, i, reps));
					fflush(stdout);
				}
				printf("\n");
			}
			free(A), free(B), free(C), free(Ap);
		}
	}
	return 0;
}
