/* bench_conv: our convolutions layer by layer, forward and backward (input
 * and weight gradients), at each instruction-set level this CPU runs
 * (lib/base/cpu.h), on one thread: the shapes of resnet18 on CIFAR at width
 * 16 and 64 and of the ImageNet stem at width 32 on 96 px images.
 * bench/conv_torch.py times the same layers in PyTorch (oneDNN).
 * One line per layer, level and pass: median ms of REPS and GFLOP/s.
 * --precision bf16 runs every layer in bf16 (ConvShape.bf16); "bwd-w" is the backward pass without the input
 * gradient (the weight gradient alone, as for a network's first layer).
 *   usage: bench_conv [--batch 32] [--reps 5] [--isa LEVEL] [--only NAME-PREFIX]
 *                     [--precision fp32|bf16] */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "base/util.h"
#include "nn/bf16.h"
#include "nn/conv.h"
#include "nn/gemm.h"

typedef struct {
	const char *name;
	int C, H, W, OC, K, S, P;
} Layer;

/* shared with bench/conv_torch.py: keep the two lists the same */
static const Layer layers[] = {
	{ "w16-l1", 16, 32, 32, 16, 3, 1, 1 },   { "w16-l2", 32, 16, 16, 32, 3, 1, 1 },
	{ "w16-l3", 64, 8, 8, 64, 3, 1, 1 },     { "w16-l4", 128, 4, 4, 128, 3, 1, 1 },
	{ "w16-down2", 16, 32, 32, 32, 3, 2, 1 }, { "w16-down3", 32, 16, 16, 64, 3, 2, 1 },
	{ "w16-down4", 64, 8, 8, 128, 3, 2, 1 }, { "w16-short2", 16, 32, 32, 32, 1, 2, 0 },
	{ "w64-stem", 3, 32, 32, 64, 3, 1, 1 },
	{ "w64-l1", 64, 32, 32, 64, 3, 1, 1 },   { "w64-l2", 128, 16, 16, 128, 3, 1, 1 },
	{ "w64-l3", 256, 8, 8, 256, 3, 1, 1 },   { "w64-l4", 512, 4, 4, 512, 3, 1, 1 },
	{ "in-stem", 3, 96, 96, 32, 7, 2, 3 },   { "in-l1", 32, 24, 24, 32, 3, 1, 1 },
	{ "in-l2", 64, 12, 12, 64, 3, 1, 1 },    { "in-l3", 128, 6, 6, 128, 3, 1, 1 },
	{ "in-l4", 256, 3, 3, 256, 3, 1, 1 },
};

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	setprogname(argv[0]);
	int n = 32, reps = 5, only_isa = -1, bf16 = 0;
	const char *only = NULL;
	static const struct option opts[] = { { "batch", required_argument, NULL, 'b' },
		                              { "reps", required_argument, NULL, 'r' },
		                              { "isa", required_argument, NULL, 'i' },
		                              { "only", required_argument, NULL, 'o' },
		                              { "precision", required_argument, NULL, 'p' },
		                              { NULL, 0, NULL, 0 } };
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'b': n = (int)opt_i64("--batch", optarg, 1, 4096); break;
		case 'r': reps = (int)opt_i64("--reps", optarg, 1, 1000); break;
		case 'i':
			only_isa = cpu_isa_parse(optarg);
			if (only_isa < 0)
				die_usage("--isa: '%s' is not generic, avx2 or avx512", optarg);
			break;
		case 'o': only = optarg; break;
		case 'p':
			if (strcmp(optarg, "bf16") != 0 && strcmp(optarg, "fp32") != 0)
				die_usage("--precision: '%s' is not fp32 or bf16", optarg);
			bf16 = strcmp(optarg, "bf16") == 0;
			break;
		default:
			fprintf(stderr, "usage: bench_conv [--batch 32] [--reps 5] [--isa LEVEL] [--only NAME]\n"
			                "                  [--precision fp32|bf16]\n");
			return 2;
		}
	}
	parallel_set_threads(1);
	char line[160];
	cpu_describe(line, sizeof line);
	printf("bench_conv: batch %d, 1 thread, median of %d, %s; %s\n", n, reps,
	       bf16 ? (bf16_native() ? "bf16 (native kernel)" : "bf16 (portable kernel)") : "fp32", line);
	double *t = xcalloc((size_t)reps, sizeof *t);
	for (size_t l = 0; l < sizeof layers / sizeof layers[0]; l++) {
		const Layer *L = &layers[l];
		if (only && strncmp(L->name, only, strlen(only)) != 0)
			continue;
		ConvShape s;
		if (conv_shape_init(&s, L->C, L->H, L->W, L->OC, L->K, L->S, L->P, n) != 0)
			die("%s: bad shape", L->name);
		s.bf16 = bf16;
		size_t in = (size_t)s.C * n * s.H * s.W, out = (size_t)s.OC * n * s.OH * s.OW,
		       wn = (size_t)s.OC * s.C * s.K * s.K;
		float *x = xalloc_aligned(in * 4), *dx = xalloc_aligned(in * 4), *w = xalloc_aligned(wn * 4);
		float *dw = xalloc_aligned(wn * 4), *y = xalloc_aligned(out * 4), *dy = xalloc_aligned(out * 4);
		float *work = xalloc_aligned(conv_work_floats(&s) * 4);
		Rng r = rng_for(1, 0, 0, 0);
		for (size_t j = 0; j < in; j++)
			x[j] = (float)rng_normal(&r);
		for (size_t j = 0; j < wn; j++)
			w[j] = (float)rng_normal(&r) * 0.1f;
		for (size_t j = 0; j < out; j++)
			dy[j] = (float)rng_normal(&r);
		double gf = (double)conv_flops(&s) * n / 1e9;
		for (int isa = 0; isa < CPU_NISA; isa++) {
			if ((only_isa >= 0 && isa != only_isa) || cpu_isa_set((CpuIsa)isa) != 0)
				continue;
			for (int pass = 0; pass < 3; pass++) {
				for (int i = -1; i < reps; i++) {
					memset(dx, 0, in * 4);
					memset(dw, 0, wn * 4);
					double t0 = now_seconds();
					if (pass == 0)
						conv2d_forward(y, work, x, w, NULL, n, &s);
					else
						conv2d_backward(pass == 1 ? dx : NULL, dw, NULL, work, dy, x, w, n, &s);
					if (i >= 0)
						t[i] = now_seconds() - t0;
				}
				qsort(t, (size_t)reps, sizeof *t, cmp_double);
				double med = t[reps / 2], flops = gf * (pass == 1 ? 2 : 1);
				printf("%-10s %-7s %-5s %8.3f ms %7.1f GFLOP/s  (%s)\n", L->name, cpu_isa_name((CpuIsa)isa),
				       pass == 0 ? "fwd" : pass == 1 ? "bwd" : "bwd-w", med * 1e3, flops / med, gemm_micro_name());
				fflush(stdout);
			}
		}
		free(x), free(dx), free(w), free(dw), free(y), free(dy), free(work);
	}
	free(t);
	return 0;
}
