/* gen_collection: write a large synthetic image collection as an
 * uncompressed tar in ImageFolder layout, for the scale bench
 * (bench/scale.sh). Images are JPEGs of one size: a smooth two-colour
 * gradient, a few filled ellipses and rectangles and a little noise, so
 * that files compress like photos of simple scenes rather than like flat
 * colour. The class (folder c00..) is image i mod K; content does not
 * depend on the class. Deterministic for a given seed; encoding runs on
 * all OpenMP threads, the tar is written in order.
 *
 * usage: gen_collection N HxW OUT.tar [CLASSES [QUALITY [SEED]]] */
#include <archive.h>
#include <archive_entry.h>
#include <jpeglib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

#define BLOCK 512   /* images encoded in parallel before they are written */

typedef struct {
	unsigned char *data;
	unsigned long  len;
} Jpeg;

static void
paint(uint8_t *px, int h, int w, uint64_t seed, int64_t i)
{
	Rng r = rng_for(seed, 0, (uint64_t)i, 0);
	float c0[3], c1[3];
	for (int k = 0; k < 3; k++) {
		c0[k] = (float)rng_uniform(&r) * 255.f;
		c1[k] = (float)rng_uniform(&r) * 255.f;
	}
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++) {
			float t = ((float)y / (float)h + (float)x / (float)w) * 0.5f;
			for (int k = 0; k < 3; k++)
				px[((size_t)y * w + x) * 3 + k] = (uint8_t)(c0[k] + (c1[k] - c0[k]) * t);
		}
	int shapes = 2 + (int)(rng_u64(&r) % 5);
	for (int s = 0; s < shapes; s++) {
		float cy = (float)rng_uniform(&r) * (float)h, cx = (float)rng_uniform(&r) * (float)w;
		float ry = (0.05f + 0.3f * (float)rng_uniform(&r)) * (float)h;
		float rx = (0.05f + 0.3f * (float)rng_uniform(&r)) * (float)w;
		int ellipse = (int)(rng_u64(&r) & 1);
		uint8_t col[3];
		for (int k = 0; k < 3; k++)
			col[k] = (uint8_t)(rng_u64(&r) & 255);
		for (int y = 0; y < h; y++)
			for (int x = 0; x < w; x++) {
				float dy = ((float)y - cy) / ry, dx = ((float)x - cx) / rx;
				int in = ellipse ? dy * dy + dx * dx <= 1.f : dy * dy <= 1.f && dx * dx <= 1.f;
				if (in)
					memcpy(px + ((size_t)y * w + x) * 3, col, 3);
			}
	}
	for (size_t k = 0; k < (size_t)h * w * 3; k++) {
		int v = px[k] + (int)(rng_u64(&r) % 17) - 8;
		px[k] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
	}
}

static Jpeg
encode(const uint8_t *px, int h, int w, int quality)
{
	struct jpeg_compress_struct c;
	struct jpeg_error_mgr err;
	Jpeg j = { NULL, 0 };
	c.err = jpeg_std_error(&err);   /* errors here are bugs: libjpeg exits */
	jpeg_create_compress(&c);
	jpeg_mem_dest(&c, &j.data, &j.len);
	c.image_width = (JDIMENSION)w;
	c.image_height = (JDIMENSION)h;
	c.input_components = 3;
	c.in_color_space = JCS_RGB;
	jpeg_set_defaults(&c);
	jpeg_set_quality(&c, quality, TRUE);
	jpeg_start_compress(&c, TRUE);
	while (c.next_scanline < c.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * 3);
		jpeg_write_scanlines(&c, &row, 1);
	}
	jpeg_finish_compress(&c);
	jpeg_destroy_compress(&c);
	return j;
}

static void
put(struct archive *a, const char *path, const Jpeg *j)
{
	struct archive_entry *e = archive_entry_new();
	if (!e)
		die("out of memory");
	archive_entry_set_pathname(e, path);
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_perm(e, 0644);
	archive_entry_set_size(e, (la_int64_t)j->len);
	if (archive_write_header(a, e) != ARCHIVE_OK ||
	    archive_write_data(a, j->data, j->len) != (la_ssize_t)j->len)
		die("%s: %s", path, archive_error_string(a));
	archive_entry_free(e);
}

int
main(int argc, char **argv)
{
	int64_t n, done = 0;
	int h, w, classes = 10, quality = 90;
	uint64_t seed = 0, bytes = 0;
	char err[128];
	setprogname(argv[0]);
	if (argc < 4 || argc > 7)
		die_usage("usage: gen_collection N HxW OUT.tar [CLASSES [QUALITY [SEED]]]");
	n = opt_i64("N", argv[1], 1, INT64_C(100000000));
	if (parse_hw(argv[2], 8192, &h, &w, err, sizeof err) < 0)
		die_usage("HxW: %s", err);
	if (argc > 4)
		classes = (int)opt_i64("CLASSES", argv[4], 1, 1000);
	if (argc > 5)
		quality = (int)opt_i64("QUALITY", argv[5], 1, 100);
	if (argc > 6)
		seed = (uint64_t)opt_i64("SEED", argv[6], 0, INT64_MAX);

	struct archive *a = archive_write_new();
	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_open_filename(a, argv[3]) != ARCHIVE_OK)
		die("%s: %s", argv[3], a ? archive_error_string(a) : "out of memory");
	Jpeg *block = xcalloc(BLOCK, sizeof *block);
	for (int64_t base = 0; base < n; base += BLOCK) {
		int m = (int)(n - base < BLOCK ? n - base : BLOCK);
#pragma omp parallel
		{
			uint8_t *px = xmalloc((size_t)h * w * 3);
#pragma omp for schedule(dynamic, 8)
			for (int k = 0; k < m; k++) {
				paint(px, h, w, seed, base + k);
				block[k] = encode(px, h, w, quality);
			}
			free(px);
		}
		for (int k = 0; k < m; k++) {
			char path[64];
			snprintf(path, sizeof path, "c%02d/%09lld.jpg", (int)((base + k) % classes), (long long)(base + k));
			put(a, path, &block[k]);
			bytes += block[k].len;
			free(block[k].data);
		}
		done += m;
		if (done % (BLOCK * 200) == 0 || done == n)
			fprintf(stderr, "gen_collection: %lld/%lld images, %.1f MB of JPEG\n", (long long)done,
			        (long long)n, (double)bytes / 1e6);
	}
	if (archive_write_close(a) != ARCHIVE_OK)
		die("%s: %s", argv[3], archive_error_string(a));
	archive_write_free(a);
	free(block);
	printf("images %lld\nsize %dx%d\njpeg_bytes %llu\n", (long long)n, h, w, (unsigned long long)bytes);
	return 0;
}
