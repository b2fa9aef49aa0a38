/* fuzz_image: libFuzzer harness for the JPEG, PNG and PNM decoders
 * (lib/data/image.c), through image_decode and the channel conversion and resize
 * that image_load applies after it.
 *
 * The input is one image file. Besides crashes and leaks (libjpeg's and
 * libpng's error exits must unwind through our cleanup), it checks:
 *   - a failure leaves out.data NULL and one non-empty line in err;
 *   - a decoded image has 1 or 3 channels, sides in [1, IMAGE_MAX_SIDE],
 *     at most MAX_PIXELS pixels, and h * w * c readable bytes;
 *   - decoding is deterministic (the same bytes give the same pixels);
 *   - the format decoded is the one image_sniff names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "base/util.h"

#define MAX_PIXELS (INT64_C(1) << 20)

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_image: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static uint64_t
fnv(const uint8_t *b, size_t n)
{
	return fnv1a(FNV1A_INIT, b, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Image im, again;
	char err[256];
	ImageFormat fmt = image_sniff(data, size);
	size_t np, n;
	uint64_t sum;
	int oh, ow, oc;
	uint8_t *conv, *small;

	memset(&im, 0xa5, sizeof im);
	if (image_decode(data, size, MAX_PIXELS, &im, err, sizeof err) < 0) {
		CHECK(im.data == NULL);
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		return 0;
	}
	CHECK(fmt != IMAGE_FMT_UNKNOWN);
	CHECK(im.c == 1 || im.c == 3);
	CHECK(im.h >= 1 && im.w >= 1 && im.h <= IMAGE_MAX_SIDE && im.w <= IMAGE_MAX_SIDE);
	np = (size_t)im.h * (size_t)im.w;
	CHECK((int64_t)np <= MAX_PIXELS);
	n = np * (size_t)im.c;
	sum = fnv(im.data, n);   /* ASan: every byte must be there */

	CHECK(image_decode(data, size, MAX_PIXELS, &again, err, sizeof err) == 0);
	CHECK(again.h == im.h && again.w == im.w && again.c == im.c);
	CHECK(fnv(again.data, n) == sum);
	free(again.data);

	/* the steps image_load takes after decoding: other channel count, then
	 * a resize that shrinks one axis and grows the other */
	oc = im.c == 1 ? 3 : 1;
	conv = xmalloc(np * (size_t)oc);
	image_convert_channels(conv, oc, im.data, im.c, np);
	oh = im.h > 1 ? (im.h + 1) / 2 : 1;
	ow = im.w < 64 ? im.w * 2 + 1 : 64;
	small = xmalloc((size_t)oh * (size_t)ow * (size_t)oc);
	image_resize(small, oh, ow, conv, im.h, im.w, oc, NULL);
	(void)fnv(small, (size_t)oh * (size_t)ow * (size_t)oc);
	free(small);
	free(conv);
	free(im.data);

	/* and image_load itself, to a fixed size, in each fit mode (by the input size) */
	if (image_load(data, size, MAX_PIXELS, 3, 7, 5, (ImageFit)(size % IMAGE_FIT_N), &im, err, sizeof err) == 0) {
		CHECK(im.h == 7 && im.w == 5 && im.c == 3);
		(void)fnv(im.data, 7 * 5 * 3);
		free(im.data);
	} else {
		CHECK(0);   /* it decoded a moment ago */
	}
	return 0;
}
