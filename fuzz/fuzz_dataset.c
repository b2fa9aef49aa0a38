/* fuzz_dataset: libFuzzer harness for ssl-decode's per-input path
 * (lib/data/dataset.c): archives through libarchive, IDX images and labels, and
 * CIFAR-10/100 batches. lib/data/dataset.h has no memory entry point, so the
 * bytes go to a file in a private temporary folder first.
 *
 * Input: one selector byte, then the file.
 *   selector & 7:  0, 5, 6, 7  an archive ("in.archive"; libarchive goes by
 *                              the bytes: tar, zip, cpio, 7z, gz, xz, ...)
 *                  1  IDX images ("t-images-idx3-ubyte"), no labels file
 *                  2  IDX images and labels: 4 bytes (big-endian) give the
 *                     length of the images part, the rest is the labels
 *                     file ("t-labels-idx1-ubyte")
 *                  3  CIFAR-10 batch ("data_batch_1.bin")
 *                  4  CIFAR-100 batch ("train.bin")
 *   selector & 8:  strict (bad members are errors)
 *   selector & 16: CIFAR-100 coarse labels
 *   (selector >> 5) & 3: channels 0, 1, 3, 3
 *   selector & 128: resize to 5x7
 * Checks: errors and warnings are one non-empty line; every kept sample has
 * h * w * c readable pixels, a label below the class count, a source name;
 * with a fixed size or channel count, every sample has it. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "base/util.h"

#include "fuzz_tmpdir.h"

#define MAX_PIXELS (INT64_C(1) << 20)

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_dataset: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static char dir[256];

static void
on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
}

static void
put_file(const char *path, const uint8_t *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	CHECK(f != NULL);
	CHECK(fwrite(data, 1, n, f) == n || n == 0);
	CHECK(fclose(f) == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir_init(dir, sizeof dir, "fuzz_dataset");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const int chans[4] = { 0, 1, 3, 3 };
	char path[512], lpath[512] = "";
	DatasetOptions opt;
	Dataset *d;
	unsigned sel;
	int rc;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	memset(&opt, 0, sizeof opt);
	opt.max_pixels = MAX_PIXELS;
	opt.strict = (sel & 8) != 0;
	opt.coarse = (sel & 16) != 0;
	opt.channels = chans[(sel >> 5) & 3];
	if (sel & 128)
		opt.height = 5, opt.width = 7;
	opt.warn = on_warn;

	switch (sel & 7) {
	case 1:
		snprintf(path, sizeof path, "%s/t-images-idx3-ubyte", dir);
		put_file(path, data, size);
		break;
	case 2: {
		size_t n;
		if (size < 4)
			return 0;
		n = (size_t)data[0] << 24 | (size_t)data[1] << 16 | (size_t)data[2] << 8 | data[3];
		data += 4;
		size -= 4;
		if (n > size)
			n = size;
		snprintf(path, sizeof path, "%s/t-images-idx3-ubyte", dir);
		snprintf(lpath, sizeof lpath, "%s/t-labels-idx1-ubyte", dir);
		put_file(path, data, n);
		put_file(lpath, data + n, size - n);
		break;
	}
	case 3:
		snprintf(path, sizeof path, "%s/data_batch_1.bin", dir);
		put_file(path, data, size);
		break;
	case 4:
		snprintf(path, sizeof path, "%s/train.bin", dir);
		put_file(path, data, size);
		break;
	default:
		snprintf(path, sizeof path, "%s/in.archive", dir);
		put_file(path, data, size);
		break;
	}

	d = dataset_new(&opt);
	rc = dataset_add(d, path);
	if (rc == 0)
		rc = dataset_finish(d);
	if (rc < 0) {
		const char *e = dataset_error(d);
		CHECK(e[0] != '\0' && strchr(e, '\n') == NULL);
	} else {
		int64_t n = dataset_count(d);
		int nc = dataset_nclasses(d);
		char src[4200], sum[512];
		CHECK(n > 0);
		CHECK(dataset_skipped(d) <= dataset_members(d));
		for (int i = 0; i < nc; i++)
			CHECK(dataset_classes(d)[i] != NULL);
		for (int64_t i = 0; i < n; i++) {
			const Sample *s = dataset_sample(d, i);
			size_t bytes = (size_t)s->h * (size_t)s->w * (size_t)s->c;
			volatile uint8_t acc = 0;
			CHECK(s->c == 1 || s->c == 3);
			CHECK(s->h >= 1 && s->w >= 1);
			CHECK(!opt.channels || s->c == opt.channels);
			CHECK(!opt.height || (s->h == opt.height && s->w == opt.width));
			CHECK(s->h == dataset_sample(d, 0)->h && s->w == dataset_sample(d, 0)->w);
			CHECK(s->label >= -1 && s->label < nc);
			uint8_t *buf = xmalloc(bytes);
			const uint8_t *px = dataset_pixels(d, i, buf);
			CHECK(px != NULL);
			for (size_t k = 0; k < bytes; k += 61)
				acc ^= px[k];
			acc ^= px[bytes - 1];
			(void)acc;
			free(buf);
			CHECK(dataset_source(d, i, src, sizeof src)[0] != '\0');
		}
		(void)dataset_summary(d, sum, sizeof sum);
	}
	dataset_free(d);
	unlink(path);
	if (lpath[0])
		unlink(lpath);
	return 0;
}
