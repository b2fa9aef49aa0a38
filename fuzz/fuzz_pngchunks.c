/* fuzz_pngchunks: libFuzzer harness for libpng's ancillary chunks through
 * lib/data/image.c. Random bytes rarely get past the PNG signature and the
 * CRCs (fuzz_image); here the harness frames the chunks itself, with correct
 * CRCs, between a fixed IHDR and a valid IDAT, so libpng reads what they
 * claim: text chunks declaring 2 GiB, tRNS with palettes and grey, iCCP,
 * sPLT, unknown chunks, chunks after IDAT.
 *
 * Input: a selector byte (& 7 picks the colour type and depth: grey 8, RGB 8,
 * palette 8, grey+alpha 8, RGBA 8, grey 16, palette 4, grey 1; & 8: chunks
 * go after IDAT instead of before), then chunks, each 9 bytes and data: a
 * 4-byte type, a 4-byte big-endian declared length, n (the data bytes that
 * follow, at most 255), n bytes. The length written is the declared one, the
 * data the n bytes: a lie in the length is a lie libpng must survive.
 * Checks: no crash or leak; no allocation over the fuzzer's
 * -malloc_limit_mb (256 MiB) from a file of a few KiB; a failure leaves no
 * data and one line; a decoded image is 3 x 2 pixels of 1 or 3 channels. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "io/checkpoint.h"
#include "base/util.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_pngchunks: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

enum { W = 3, H = 2 };

typedef struct {
	uint8_t *p;
	size_t   n, cap;
} Out;

static void
put(Out *o, const void *p, size_t n)
{
	if (o->n + n > o->cap) {
		o->cap = (o->n + n) * 2;
		o->p = xrealloc(o->p, o->cap);
	}
	if (n)
		memcpy(o->p + o->n, p, n);
	o->n += n;
}

static void
put_be32(Out *o, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	put(o, b, 4);
}

/* A chunk whose length field says `declared` and whose data is p[0..n). */
static void
put_chunk(Out *o, const char *type, uint32_t declared, const uint8_t *p, size_t n)
{
	uint32_t crc = checkpoint_crc32(checkpoint_crc32(0, type, 4), p, n);   /* zlib's CRC-32, as PNG's */
	put_be32(o, declared);
	put(o, type, 4);
	put(o, p, n);
	put_be32(o, crc);
}

/* zlib stream of raw (stored) blocks: what IDAT needs, without zlib. */
static void
put_idat(Out *o, const uint8_t *raw, size_t n)
{
	uint8_t *z = xmalloc(n + 11);
	uint32_t a = 1, b = 0;
	for (size_t i = 0; i < n; i++) {
		a = (a + raw[i]) % 65521;
		b = (b + a) % 65521;
	}
	z[0] = 0x78, z[1] = 0x01, z[2] = 0x01;   /* the last block, stored */
	z[3] = (uint8_t)n, z[4] = (uint8_t)(n >> 8), z[5] = (uint8_t)~n, z[6] = (uint8_t)(~n >> 8);
	memcpy(z + 7, raw, n);
	z[n + 7] = (uint8_t)(b >> 8), z[n + 8] = (uint8_t)b, z[n + 9] = (uint8_t)(a >> 8), z[n + 10] = (uint8_t)a;
	put_chunk(o, "IDAT", (uint32_t)(n + 11), z, n + 11);
	free(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct {
		uint8_t ctype, depth, bits_per_px;
	} kinds[8] = { { 0, 8, 8 }, { 2, 8, 24 }, { 3, 8, 8 }, { 4, 8, 16 }, { 6, 8, 32 }, { 0, 16, 16 }, { 3, 4, 4 },
		           { 0, 1, 1 } };
	static const uint8_t sig[8] = { 0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a };
	static const uint8_t plte[12] = { 200, 10, 30, 0, 255, 0, 9, 8, 7, 100, 100, 100 };
	uint8_t ihdr[13] = { 0, 0, 0, W, 0, 0, 0, H, 8, 0, 0, 0, 0 }, raw[H * (1 + W * 4)];
	Out o = { 0 }, chunks = { 0 };
	Image im;
	char err[256];
	size_t pos = 1, stride;
	int k, after;
	if (size < 1)
		return 0;
	k = data[0] & 7;
	after = data[0] & 8;
	ihdr[8] = kinds[k].depth;
	ihdr[9] = kinds[k].ctype;
	while (pos + 9 <= size) {
		char type[4];
		uint32_t declared = (uint32_t)data[pos + 4] << 24 | (uint32_t)data[pos + 5] << 16 |
		                    (uint32_t)data[pos + 6] << 8 | data[pos + 7];
		size_t n = data[pos + 8];
		memcpy(type, data + pos, 4);
		pos += 9;
		if (n > size - pos)
			n = size - pos;
		put_chunk(&chunks, type, declared, data + pos, n);
		pos += n;
	}
	stride = ((size_t)W * kinds[k].bits_per_px + 7) / 8;
	for (int y = 0; y < H; y++) {
		raw[y * (1 + stride)] = 0;   /* filter: none */
		for (size_t x = 0; x < stride; x++)
			raw[y * (1 + stride) + 1 + x] = (uint8_t)(x * 37 + (size_t)y * 11);
	}
	if (kinds[k].ctype == 3)   /* indices inside the 4-entry palette */
		for (size_t i = 0; i < (size_t)H * (1 + stride); i++)
			raw[i] &= i % (1 + stride) ? (kinds[k].depth == 8 ? 3 : 0x33) : 0;
	put(&o, sig, sizeof sig);
	put_chunk(&o, "IHDR", 13, ihdr, 13);
	if (kinds[k].ctype == 3)
		put_chunk(&o, "PLTE", 12, plte, 12);
	if (!after && chunks.n)
		put(&o, chunks.p, chunks.n);
	put_idat(&o, raw, (size_t)H * (1 + stride));
	if (after && chunks.n)
		put(&o, chunks.p, chunks.n);
	put_chunk(&o, "IEND", 0, NULL, 0);

	memset(&im, 0xa5, sizeof im);
	if (image_decode(o.p, o.n, INT64_C(1) << 20, &im, err, sizeof err) < 0) {
		CHECK(im.data == NULL);
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	} else {
		uint32_t sum = 0;
		CHECK(im.h == H && im.w == W && (im.c == 1 || im.c == 3));
		for (int i = 0; i < H * W * im.c; i++)   /* ASan: every byte is there */
			sum += im.data[i];
		(void)sum;
		free(im.data);
	}
	free(o.p);
	free(chunks.p);
	return 0;
}
