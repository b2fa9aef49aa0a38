/* bench_augment: views per second of lib/data/augment on one thread.
 *
 *   bench_augment --write N H W C FILE       write N photo-like test images (raw uint8 NHWC)
 *   bench_augment --recipe R FILE N H W C [SECONDS]
 *                                            augment FILE's images round-robin for about
 *                                            SECONDS of CPU time (default 2) and print the
 *                                            views per CPU-second
 * bench/bench_augment.sh runs it beside torchvision on the same files. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/augment.h"
#include "base/rng.h"
#include "base/util.h"

/* CPU time of this thread: the machine may be shared, and we want per-core rates. */
static double
cpu_seconds(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void
write_images(const char *path, int N, int H, int W, int C)
{
	size_t n = (size_t)N * H * W * C;
	uint8_t *img = xmalloc(n);
	for (int k = 0; k < N; k++) {
		Rng r = rng_for(42, 0, (uint64_t)k, 0);
		double fx = rng_uniform_range(&r, 0.02, 0.3), fy = rng_uniform_range(&r, 0.02, 0.3);
		double ph[3] = { rng_uniform(&r) * 6, rng_uniform(&r) * 6, rng_uniform(&r) * 6 };
		uint8_t *p = img + (size_t)k * H * W * C;
		for (int y = 0; y < H; y++)
			for (int x = 0; x < W; x++)
				for (int c = 0; c < C; c++) {
					double v = 128 + 100 * sin(fx * x + ph[c]) * cos(fy * y - ph[c]) +
					           12 * rng_normal(&r);
					*p++ = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
				}
	}
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(img, 1, n, f) != n || fclose(f) != 0)
		die("%s:", path);
	free(img);
}

int
main(int argc, char *argv[])
{
	setprogname(argv[0]);
	if (argc == 7 && strcmp(argv[1], "--write") == 0) {
		write_images(argv[6], (int)opt_i64("N", argv[2], 1, 100000), (int)opt_i64("H", argv[3], 1, 4096),
		             (int)opt_i64("W", argv[4], 1, 4096), (int)opt_i64("C", argv[5], 1, 3));
		return 0;
	}
	if (argc < 8 || argc > 9 || strcmp(argv[1], "--recipe") != 0)
		die_usage("usage: bench_augment --write N H W C FILE | --recipe R FILE N H W C [SECONDS]");
	AugmentParams p;
	char err[256];
	if (augment_recipe(&p, argv[2]) < 0)
		die_usage("unknown recipe %s", argv[2]);
	int N = (int)opt_i64("N", argv[4], 1, 100000), H = (int)opt_i64("H", argv[5], 1, 4096);
	int W = (int)opt_i64("W", argv[6], 1, 4096), C = (int)opt_i64("C", argv[7], 1, 3);
	double seconds = argc == 9 ? opt_f64("SECONDS", argv[8], 0.01, 600) : 2.0;
	size_t isz = (size_t)H * W * C, n = (size_t)N * isz;
	uint8_t *img = xmalloc(n);
	FILE *f = fopen(argv[3], "rb");
	if (!f || fread(img, 1, n, f) != n)
		die("%s: cannot read %d images of %dx%dx%d", argv[3], N, H, W, C);
	fclose(f);
	int oh, ow;
	if (augment_params_check(&p, err, sizeof err) < 0 || augment_check_input(&p, H, W, C, &oh, &ow, err, sizeof err) < 0)
		die("%s", err);
	uint8_t *out = xmalloc((size_t)p.views * oh * ow * C);
	AugmentScratch s = { 0 };
	int64_t records = 0;
	unsigned check = 0;
	double t0 = cpu_seconds(), w0 = now_seconds(), t;
	/* Whole passes over the images, so every run sees the same mix. */
	do {
		for (int k = 0; k < N; k++, records++) {
			augment_record(out, &s, img + (size_t)k * isz, H, W, C, oh, ow, &p, 1, (int64_t)(records / N),
			               k);
			check += out[0];
		}
		t = cpu_seconds() - t0;
	} while (t < seconds);
	printf("%.1f views/s per core (%lld views in %.2f s CPU, %.2f s wall, %dx%dx%d -> %dx%d, checksum %u)\n",
	       (double)records * p.views / t, (long long)records * p.views, t, now_seconds() - w0, H, W, C, oh, ow,
	       check);
	augment_scratch_free(&s);
	free(out);
	free(img);
	return 0;
}
