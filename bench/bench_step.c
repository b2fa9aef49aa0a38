/* bench_step: our SimCLR training step (or eval forward) on random data,
 * the same work as ../shared/reference/torch_bench_step.py:
 *   train: B pairs -> 2B images; forward both views, head, NT-Xent (t=0.5),
 *          backward, SGD momentum step (lr 0.06*B/256, wd 5e-4);
 *   eval:  encoder forward in eval mode on B images.
 * Prints per-step times, the median, images/s, achieved GFLOP/s (3 x forward
 * FLOPs per image for training, as the PyTorch script counts), peak RSS, and
 * the OpenBLAS sgemm rate and the FMA peak of the threads (gemm_fma_peak)
 * measured in the same run for comparison. --stem imagenet --size 96: the
 * shape of ../shared/reference/torch_step_imagenet_stem.py. */
#include <cblas.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "base/cpu.h"
#include "nn/gemm.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "base/util.h"

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static double
sgemm_rate(int size, double seconds)
{
	float *a = xalloc_aligned(sizeof(float) * size * size), *b = xalloc_aligned(sizeof(float) * size * size);
	float *c = xalloc_aligned(sizeof(float) * size * size);
	for (long j = 0; j < (long)size * size; j++) {
		a[j] = (float)(j % 7) * 0.1f;
		b[j] = (float)(j % 5) * 0.1f;
	}
	gemm(0, 0, size, size, size, 1.0f, a, size, b, size, 0.0f, c, size); /* warm */
	int reps = 0;
	double t0 = now_seconds(), t;
	do {
		gemm(0, 0, size, size, size, 1.0f, a, size, b, size, 0.0f, c, size);
		reps++;
		t = now_seconds() - t0;
	} while (t < seconds);
	free(a);
	free(b);
	free(c);
	return 2.0 * size * size * (double)size * reps / t / 1e9;
}

static void
usage(void)
{
	fprintf(stderr, "usage: bench_step [--mode train|eval] [--arch resnet18] [--width 16] [--batch B]\n"
	                "                  [--steps 5] [--warmup 2] [--threads 2] [--hidden 512] [--summary]\n"
	                "                  [--stem cifar|imagenet] [--size 32] [--precision fp32|bf16|auto]\n");
	exit(2);
}

int
main(int argc, char **argv)
{
	setprogname(argv[0]);
	int train = 1, width = 16, B = 256, steps = 5, warm = 2, threads = 2, hidden = -1, summary = 0, size = 32;
	ModelArch arch = ARCH_RESNET18;
	ModelPrecision prec = PRECISION_FP32;
	ModelStem stem = STEM_CIFAR;
	static const struct option lo[] = {
		{ "mode", required_argument, 0, 'm' }, { "arch", required_argument, 0, 'a' },
		{ "width", required_argument, 0, 'w' }, { "batch", required_argument, 0, 'b' },
		{ "steps", required_argument, 0, 's' }, { "warmup", required_argument, 0, 'u' },
		{ "threads", required_argument, 0, 't' }, { "hidden", required_argument, 0, 'h' },
		{ "summary", no_argument, 0, 'S' }, { "stem", required_argument, 0, 'T' },
		{ "size", required_argument, 0, 'z' }, { "precision", required_argument, 0, 'p' }, { 0, 0, 0, 0 }
	};
	int ch;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'm':
			if (strcmp(optarg, "train") && strcmp(optarg, "eval"))
				usage();
			train = strcmp(optarg, "train") == 0;
			break;
		case 'a':
			if (model_arch_parse(optarg, &arch))
				usage();
			break;
		case 'w': width = (int)opt_i64("--width", optarg, 1, 1024); break;
		case 'b': B = (int)opt_i64("--batch", optarg, 1, 1 << 16); break;
		case 's': steps = (int)opt_i64("--steps", optarg, 1, 10000); break;
		case 'u': warm = (int)opt_i64("--warmup", optarg, 0, 10000); break;
		case 't': threads = (int)opt_i64("--threads", optarg, 1, 1024); break;
		case 'h': hidden = (int)opt_i64("--hidden", optarg, 1, 65536); break;
		case 'S': summary = 1; break;
		case 'p':
			if (model_precision_parse(optarg, &prec))
				usage();
			break;
		case 'T':
			if (model_stem_parse(optarg, &stem))
				usage();
			break;
		case 'z': size = (int)opt_i64("--size", optarg, 8, 4096); break;
		default: usage();
		}
	}
	parallel_set_threads(threads);
	ModelConfig cfg;
	model_config_default(&cfg);
	cfg.arch = arch;
	cfg.width = width;
	cfg.stem = stem;
	cfg.in_h = cfg.in_w = size;
	cfg.proj_hidden = hidden > 0 ? hidden : 8 * width * (arch == ARCH_RESNET50 ? 4 : 1) * 4;
	if (hidden <= 0 && width == 64)
		cfg.proj_hidden = 2048;
	if (hidden <= 0 && width == 16)
		cfg.proj_hidden = 512;
	int nimg = train ? 2 * B : B;
	char err[256];
	Model *m = model_new(&cfg, nimg, train ? MODEL_TRAIN : MODEL_INFER, err, sizeof err);
	if (!m)
		die("%s", err);
	model_init(m, 1);
	char msg[256];
	if (model_precision_resolve(prec, &prec, msg, sizeof msg) < 0)
		die("%s", msg);
	if (msg[0])
		note("%s", msg);
	model_set_precision(m, prec);
	if (summary)
		model_print_summary(m, stderr);
	char isa[160];
	cpu_describe(isa, sizeof isa);
	printf("kernel %s openblas=%s config=%s\n", isa, openblas_get_corename(), openblas_get_config());
	double gflop_img = (double)model_flops(m, train ? MODEL_OUT_PROJ : MODEL_OUT_ENCODER) / 1e9;
	printf("ours model=%s-w%d mode=%s precision=%s B=%d threads=%d fwd_flops/img=%.2fM params=%.3fM memory=%.0fMB\n",
	       model_arch_name(arch), width, train ? "train" : "eval", model_precision_name(prec), B, threads, gflop_img * 1e3,
	       params_count(model_params(m)) / 1e6, model_memory_bytes(m) / 1e6);

	const size_t xn = (size_t)nimg * 3 * size * size;
	float *x = xalloc_aligned(sizeof(float) * xn);
	Rng r = rng_for(1, 0, 0, 0);
	for (size_t j = 0; j < xn; j++)
		x[j] = (float)rng_normal(&r);
	float *dz = xalloc_aligned(sizeof(float) * (size_t)nimg * cfg.proj_dim);
	float *work = xalloc_aligned(sizeof(float) * ntxent_work_floats(B, cfg.proj_dim));
	OptimConfig oc;
	optim_config_default(&oc, OPTIM_SGD);
	Optim *opt = train ? optim_new(&oc, model_params(m)) : NULL;

	double *times = xcalloc((size_t)steps, sizeof(double));
	double phase[4] = { 0 };
	for (int i = 0; i < warm + steps; i++) {
		double t0 = now_seconds(), t1, t2, t3;
		float loss = 0, acc = 0;
		if (train) {
			const float *z = model_forward_train(m, x, nimg);
			t1 = now_seconds();
			ntxent_forward_backward(&loss, &acc, dz, work, z, B, cfg.proj_dim, 0.5f);
			model_zero_grad(m);
			t2 = now_seconds();
			model_backward(m, dz);
			t3 = now_seconds();
			optim_step(opt, 0.06f * B / 256);
		} else {
			model_forward_eval(m, x, nimg, MODEL_OUT_ENCODER);
			t1 = t2 = t3 = now_seconds();
		}
		double t4 = now_seconds(), dt = t4 - t0;
		if (i >= warm) {
			times[i - warm] = dt;
			phase[0] += t1 - t0;
			phase[1] += t2 - t1;
			phase[2] += t3 - t2;
			phase[3] += t4 - t3;
		}
		printf("step %d %s %.3fs", i, i < warm ? "warm" : "timed", dt);
		if (train)
			printf(" loss %.4f (fwd %.3f loss %.3f bwd %.3f opt %.3f)", loss, t1 - t0, t2 - t1, t3 - t2,
			       t4 - t3);
		printf("\n");
		fflush(stdout);
	}
	qsort(times, (size_t)steps, sizeof(double), cmp_double);
	double med = times[steps / 2], ips = nimg / med;
	double flops_img = (train ? 3.0 : 1.0) * gflop_img;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double blas = sgemm_rate(1024, 0.5), peak = 0;
#pragma omp parallel num_threads(threads) reduction(+ : peak)
	peak += gemm_fma_peak(0.3);
	printf("RESULT ours model=%s-w%d mode=%s precision=%s B=%d images_per_step=%d median_step_s=%.4f min=%.4f "
	       "images_per_s=%.1f achieved_GFLOPs=%.1f fwd_flops_per_img=%.2f peak_rss_MB=%.0f sgemm1024_GFLOPs=%.1f "
	       "fma_peak_GFLOPs=%.1f phases_s fwd=%.3f loss=%.3f bwd=%.3f opt=%.3f\n",
	       model_arch_name(arch), width, train ? "train" : "eval", model_precision_name(prec), B, nimg, med, times[0], ips, flops_img * ips,
	       flops_img * 1e3, ru.ru_maxrss / 1024.0, blas, peak, phase[0] / steps, phase[1] / steps, phase[2] / steps, phase[3] / steps);
	free(times);
	free(x);
	free(dz);
	free(work);
	optim_free(opt);
	model_free(m);
	return 0;
}
