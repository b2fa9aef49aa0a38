/* Tests for lib/data/image: every decoder on images written here with libjpeg and
 * libpng, damaged input, the pixel limit, channel conversion and resizing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <jpeglib.h>
#include <png.h>

#include "data/image.h"
#include "imgwrite.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static double
mean_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += abs((int)a[i] - (int)b[i]);
	return s / (double)n;
}

static void
decode_ok(const TwBuf *b, Image *im, int h, int w, int c)
{
	char err[256] = "";
	int r = image_decode(b->data, b->len, 0, im, err, sizeof err);
	ck_assert_msg(r == 0, "decode failed: %s", err);
	ck_assert_int_eq(im->h, h);
	ck_assert_int_eq(im->w, w);
	ck_assert_int_eq(im->c, c);
}

START_TEST(test_sniff_and_names)
{
	ck_assert_int_eq(image_sniff("\xff\xd8\xff\xe0", 4), IMAGE_FMT_JPEG);
	ck_assert_int_eq(image_sniff("\x89PNG\r\n\x1a\n", 8), IMAGE_FMT_PNG);
	ck_assert_int_eq(image_sniff("P6\n", 3), IMAGE_FMT_PNM);
	ck_assert_int_eq(image_sniff("P7\n", 3), IMAGE_FMT_UNKNOWN);
	ck_assert_int_eq(image_sniff("GIF89a", 6), IMAGE_FMT_UNKNOWN);
	ck_assert_int_eq(image_name_kind("cat/1.JPG"), 1);
	ck_assert_int_eq(image_name_kind("a.png"), 1);
	ck_assert_int_eq(image_name_kind("a.gif"), 2);
	ck_assert_int_eq(image_name_kind("README"), 0);
	ck_assert_int_eq(image_name_kind("dir.png/README"), 0);
}
END_TEST

START_TEST(test_jpeg_rgb_baseline_progressive)
{
	uint8_t px[24 * 40 * 3];
	Image a, b;
	tw_pattern(px, 24, 40, 3, 1);
	TwBuf base = tw_jpeg(px, 24, 40, 3, 95, 0), prog = tw_jpeg(px, 24, 40, 3, 95, 1);
	ck_assert(memcmp(base.data, prog.data, base.len < prog.len ? base.len : prog.len) != 0);
	decode_ok(&base, &a, 24, 40, 3);
	decode_ok(&prog, &b, 24, 40, 3);
	ck_assert_msg(mean_abs_diff(a.data, px, sizeof px) < 3.0, "baseline error %g", mean_abs_diff(a.data, px, sizeof px));
	ck_assert_msg(mean_abs_diff(b.data, px, sizeof px) < 3.0, "progressive error %g", mean_abs_diff(b.data, px, sizeof px));
	free(a.data);
	free(b.data);
	free(base.data);
	free(prog.data);
}
END_TEST

START_TEST(test_jpeg_gray_and_cmyk)
{
	uint8_t g[16 * 16], cmyk[16 * 16 * 4];
	Image a, b;
	tw_pattern(g, 16, 16, 1, 3);
	TwBuf jg = tw_jpeg(g, 16, 16, 1, 95, 0);
	decode_ok(&jg, &a, 16, 16, 1);
	ck_assert(mean_abs_diff(a.data, g, sizeof g) < 3.0);
	/* flat inks C=40 M=200 Y=0 K=100, stored inverted (Adobe) */
	for (int i = 0; i < 16 * 16; i++) {
		cmyk[4 * i] = 255 - 40;
		cmyk[4 * i + 1] = 255 - 200;
		cmyk[4 * i + 2] = 255 - 0;
		cmyk[4 * i + 3] = 255 - 100;
	}
	TwBuf jc = tw_jpeg(cmyk, 16, 16, 4, 100, 0);
	decode_ok(&jc, &b, 16, 16, 3);
	int er = (255 - 40) * (255 - 100) / 255, eg = (255 - 200) * (255 - 100) / 255, eb = 155;
	for (int i = 0; i < 16 * 16; i++) {
		ck_assert_msg(abs(b.data[3 * i] - er) <= 2, "R %d want %d", b.data[3 * i], er);
		ck_assert_msg(abs(b.data[3 * i + 1] - eg) <= 2, "G %d want %d", b.data[3 * i + 1], eg);
		ck_assert_msg(abs(b.data[3 * i + 2] - eb) <= 2, "B %d want %d", b.data[3 * i + 2], eb);
	}
	free(a.data);
	free(b.data);
	free(jg.data);
	free(jc.data);
}
END_TEST

START_TEST(test_png_formats_exact)
{
	enum { H = 7, W = 9 };
	uint8_t rgb[H * W * 3], rgba[H * W * 4], gray[H * W], ga[H * W * 2], rgb16[H * W * 6], g16[H * W * 2];
	uint8_t idx[H * W], pal[4 * 3] = { 0, 0, 0, 255, 0, 0, 10, 20, 30, 200, 201, 202 };
	uint8_t bits[H * 2]; /* 1-bit gray, 9 px a row = 2 bytes */
	Image im;
	TwBuf b;
	tw_pattern(rgb, H, W, 3, 5);
	tw_pattern(gray, H, W, 1, 6);
	for (int i = 0; i < H * W; i++) {
		memcpy(rgba + 4 * i, rgb + 3 * i, 3);
		rgba[4 * i + 3] = (uint8_t)(i * 7);
		ga[2 * i] = gray[i];
		ga[2 * i + 1] = (uint8_t)(255 - i);
		for (int k = 0; k < 3; k++) {
			rgb16[6 * i + 2 * k] = rgb[3 * i + k];
			rgb16[6 * i + 2 * k + 1] = (uint8_t)(0xA5 ^ i);   /* low byte is dropped */
		}
		g16[2 * i] = gray[i];
		g16[2 * i + 1] = 0xFF;
		idx[i] = (uint8_t)(i % 4);
	}
	for (int interlace = 0; interlace < 2; interlace++) {
		b = tw_png(rgb, H, W, PNG_COLOR_TYPE_RGB, 8, NULL, 0, interlace);
		decode_ok(&b, &im, H, W, 3);
		ck_assert_mem_eq(im.data, rgb, sizeof rgb);
		free(im.data);
		free(b.data);
	}
	b = tw_png(rgba, H, W, PNG_COLOR_TYPE_RGB_ALPHA, 8, NULL, 0, 0);
	decode_ok(&b, &im, H, W, 3);
	ck_assert_mem_eq(im.data, rgb, sizeof rgb);
	free(im.data);
	free(b.data);
	b = tw_png(gray, H, W, PNG_COLOR_TYPE_GRAY, 8, NULL, 0, 0);
	decode_ok(&b, &im, H, W, 1);
	ck_assert_mem_eq(im.data, gray, sizeof gray);
	free(im.data);
	free(b.data);
	b = tw_png(ga, H, W, PNG_COLOR_TYPE_GRAY_ALPHA, 8, NULL, 0, 0);
	decode_ok(&b, &im, H, W, 1);
	ck_assert_mem_eq(im.data, gray, sizeof gray);
	free(im.data);
	free(b.data);
	b = tw_png(rgb16, H, W, PNG_COLOR_TYPE_RGB, 16, NULL, 0, 1);
	decode_ok(&b, &im, H, W, 3);
	ck_assert_mem_eq(im.data, rgb, sizeof rgb);
	free(im.data);
	free(b.data);
	b = tw_png(g16, H, W, PNG_COLOR_TYPE_GRAY, 16, NULL, 0, 0);
	decode_ok(&b, &im, H, W, 1);
	ck_assert_mem_eq(im.data, gray, sizeof gray);
	free(im.data);
	free(b.data);
	b = tw_png(idx, H, W, PNG_COLOR_TYPE_PALETTE, 8, pal, 4, 0);
	decode_ok(&b, &im, H, W, 3);
	for (int i = 0; i < H * W; i++)
		ck_assert_mem_eq(im.data + 3 * i, pal + 3 * (i % 4), 3);
	free(im.data);
	free(b.data);
	for (int y = 0; y < H; y++) {
		bits[2 * y] = (uint8_t)(0xA0 | y);
		bits[2 * y + 1] = 0x80;
	}
	b = tw_png(bits, H, W, PNG_COLOR_TYPE_GRAY, 1, NULL, 0, 0);
	decode_ok(&b, &im, H, W, 1);
	for (int y = 0; y < H; y++)
		for (int x = 0; x < W; x++) {
			int bit = (bits[2 * y + x / 8] >> (7 - x % 8)) & 1;
			ck_assert_int_eq(im.data[y * W + x], bit ? 255 : 0);
		}
	free(im.data);
	free(b.data);
}
END_TEST

START_TEST(test_pnm_formats)
{
	enum { H = 5, W = 6 };
	uint8_t rgb[H * W * 3], gray[H * W];
	Image im;
	char err[256];
	tw_pattern(rgb, H, W, 3, 7);
	tw_pattern(gray, H, W, 1, 8);
	for (int ascii = 0; ascii < 2; ascii++) {
		TwBuf b = tw_pnm(rgb, H, W, 3, ascii), g = tw_pnm(gray, H, W, 1, ascii);
		decode_ok(&b, &im, H, W, 3);
		ck_assert_mem_eq(im.data, rgb, sizeof rgb);
		free(im.data);
		decode_ok(&g, &im, H, W, 1);
		ck_assert_mem_eq(im.data, gray, sizeof gray);
		free(im.data);
		free(b.data);
		free(g.data);
	}
	/* maxval 15 scales to 0..255; 16-bit samples; bitmaps: 1 is black */
	static const char p2[] = "P2 3 1 15\n0 7 15\n";
	ck_assert_int_eq(image_decode(p2, strlen(p2), 0, &im, err, sizeof err), 0);
	ck_assert_int_eq(im.data[0], 0);
	ck_assert_int_eq(im.data[1], 119);
	ck_assert_int_eq(im.data[2], 255);
	free(im.data);
	static const uint8_t p5[] = "P5 2 1 65535\n\x80\x00\xff\xff";
	ck_assert_int_eq(image_decode(p5, sizeof p5 - 1, 0, &im, err, sizeof err), 0);
	ck_assert_int_eq(im.data[0], 128);
	ck_assert_int_eq(im.data[1], 255);
	free(im.data);
	static const uint8_t p4[] = "P4\n10 1\n\xA0\x40";
	ck_assert_int_eq(image_decode(p4, sizeof p4 - 1, 0, &im, err, sizeof err), 0);
	ck_assert_int_eq(im.w, 10);
	ck_assert_int_eq(im.data[0], 0);
	ck_assert_int_eq(im.data[1], 255);
	ck_assert_int_eq(im.data[2], 0);
	ck_assert_int_eq(im.data[9], 0);
	free(im.data);
	static const char p1[] = "P1 2 2 1 0 0 1";
	ck_assert_int_eq(image_decode(p1, strlen(p1), 0, &im, err, sizeof err), 0);
	ck_assert_int_eq(im.data[0], 0);
	ck_assert_int_eq(im.data[1], 255);
	free(im.data);
	static const char bad[] = "P2 2 1 10\n3 11\n";
	ck_assert_int_eq(image_decode(bad, strlen(bad), 0, &im, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "over maxval"));
}
END_TEST

/* Every prefix of a valid file is refused, with no crash and no leak. */
static void
check_all_cuts(const TwBuf *b, const char *what)
{
	char err[256];
	Image im;
	for (size_t cut = 0; cut < b->len; cut++) {
		uint8_t *copy = malloc(cut ? cut : 1);   /* exact size: ASan sees over-reads */
		memcpy(copy, b->data, cut);
		err[0] = '\0';
		int r = image_decode(copy, cut, 0, &im, err, sizeof err);
		ck_assert_msg(r == -1, "%s cut at %zu of %zu decoded", what, cut, b->len);
		ck_assert_ptr_null(im.data);
		ck_assert_msg(err[0] != '\0', "%s cut at %zu: no message", what, cut);
		free(copy);
	}
}

START_TEST(test_truncated_every_cut)
{
	uint8_t px[16 * 16 * 3];
	char err[256];
	Image im;
	tw_pattern(px, 16, 16, 3, 9);
	TwBuf j = tw_jpeg(px, 16, 16, 3, 90, 0), jp = tw_jpeg(px, 16, 16, 3, 90, 1);
	TwBuf p = tw_png(px, 16, 16, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 1), n = tw_pnm(px, 16, 16, 3, 0);
	check_all_cuts(&j, "JPEG");
	check_all_cuts(&jp, "progressive JPEG");
	check_all_cuts(&p, "PNG");
	check_all_cuts(&n, "PNM");
	ck_assert_int_eq(image_decode(j.data, j.len - 100, 0, &im, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "truncated") != NULL, "message: %s", err);
	/* garbage after a valid JPEG marker */
	memset(j.data + 200, 0xAB, j.len - 202);
	ck_assert_int_eq(image_decode(j.data, j.len, 0, &im, err, sizeof err), -1);
	/* a PNG with a damaged CRC */
	p.data[40] ^= 0x55;
	ck_assert_int_eq(image_decode(p.data, p.len, 0, &im, err, sizeof err), -1);
	ck_assert_int_eq(image_decode("hello", 5, 0, &im, err, sizeof err), -1);
	ck_assert_str_eq(err, "not a JPEG, PNG or PNM image");
	free(j.data);
	free(jp.data);
	free(p.data);
	free(n.data);
}
END_TEST

START_TEST(test_pixel_limit)
{
	uint8_t px[12 * 10 * 3] = { 0 };
	char err[256];
	Image im;
	TwBuf j = tw_jpeg(px, 12, 10, 3, 90, 0), p = tw_png(px, 12, 10, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	ck_assert_int_eq(image_decode(j.data, j.len, 120, &im, err, sizeof err), 0);
	free(im.data);
	ck_assert_int_eq(image_decode(j.data, j.len, 119, &im, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "over the limit") != NULL, "%s", err);
	ck_assert_int_eq(image_decode(p.data, p.len, 119, &im, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "over the limit") != NULL, "%s", err);
	/* a header claiming 60000x60000 (10.8 GB) must be refused from the
	 * header alone: run under a 256 MB address-space limit to prove that
	 * nothing big was allocated (not under ASan, which maps terabytes) */
	struct rlimit old;
	ck_assert_int_eq(getrlimit(RLIMIT_AS, &old), 0);
#ifndef UNDER_ASAN
	{
		struct rlimit rl = { 256u << 20, old.rlim_max };
		ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
	}
#endif
	/* patch the JPEG SOF0 dimensions */
	for (size_t i = 2; i + 8 < j.len; i++) {
		if (j.data[i] == 0xFF && j.data[i + 1] == 0xC0) {
			j.data[i + 5] = 60000 >> 8;
			j.data[i + 6] = 60000 & 255;
			j.data[i + 7] = 60000 >> 8;
			j.data[i + 8] = 60000 & 255;
			break;
		}
	}
	ck_assert_int_eq(image_decode(j.data, j.len, 0, &im, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "60000x60000") != NULL, "%s", err);
	static const char pnm[] = "P6 60000 60000 255\n";
	ck_assert_int_eq(image_decode(pnm, strlen(pnm), 0, &im, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "over the limit") != NULL, "%s", err);
	ck_assert_int_eq(setrlimit(RLIMIT_AS, &old), 0);
	free(j.data);
	free(p.data);
}
END_TEST


/* A gray progressive JPEG with 1 + 63 * (al + 1) scans: every AC
 * coefficient in its own band, refined one bit at a time. */
static TwBuf
jpeg_many_scans(const uint8_t *px, int h, int w, int al)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	jpeg_scan_info *scans = calloc(1 + 63 * (size_t)(al + 1), sizeof *scans);
	unsigned char *mem = NULL;
	unsigned long memlen = 0;
	int n = 0;
	TwBuf b;
	ck_assert_ptr_nonnull(scans);
	scans[n++] = (jpeg_scan_info){ 1, { 0 }, 0, 0, 0, 0 };
	for (int k = 1; k < 64; k++) {
		scans[n++] = (jpeg_scan_info){ 1, { 0 }, k, k, 0, al };
		for (int a = al; a > 0; a--)
			scans[n++] = (jpeg_scan_info){ 1, { 0 }, k, k, a, a - 1 };
	}
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_mem_dest(&ci, &mem, &memlen);
	ci.image_width = (JDIMENSION)w;
	ci.image_height = (JDIMENSION)h;
	ci.input_components = 1;
	ci.in_color_space = JCS_GRAYSCALE;
	jpeg_set_defaults(&ci);
	ci.scan_info = scans;
	ci.num_scans = n;
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)w);
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	free(scans);
	b.data = malloc(memlen);
	ck_assert_ptr_nonnull(b.data);
	memcpy(b.data, mem, memlen);
	b.len = memlen;
	free(mem);
	return b;
}

START_TEST(test_jpeg_scan_limit)
{
	uint8_t g[16 * 16];
	char err[256];
	Image im;
	tw_pattern(g, 16, 16, 1, 4);
	TwBuf ok = jpeg_many_scans(g, 16, 16, 6), bomb = jpeg_many_scans(g, 16, 16, 9);   /* 442 and 631 scans */
	ck_assert_msg(image_decode(ok.data, ok.len, 0, &im, err, sizeof err) == 0, "%s", err);
	ck_assert(mean_abs_diff(im.data, g, sizeof g) < 3.0);
	free(im.data);
	ck_assert_int_eq(image_decode(bomb.data, bomb.len, 0, &im, err, sizeof err), -1);
	ck_assert_str_eq(err, "JPEG: more than 500 scans");
	free(ok.data);
	free(bomb.data);
}
END_TEST

START_TEST(test_channels)
{
	uint8_t rgb[] = { 255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30 }, g[5], back[15];
	image_convert_channels(g, 1, rgb, 3, 5);
	/* PIL: Image.new("RGB", ...).convert("L") gives 76, 150, 29, 255, 18 */
	ck_assert_int_eq(g[0], 76);
	ck_assert_int_eq(g[1], 150);
	ck_assert_int_eq(g[2], 29);
	ck_assert_int_eq(g[3], 255);
	ck_assert_int_eq(g[4], 18);
	image_convert_channels(back, 3, g, 1, 5);
	for (int i = 0; i < 5; i++)
		for (int k = 0; k < 3; k++)
			ck_assert_int_eq(back[3 * i + k], g[i]);
	/* in place, growing */
	uint8_t buf[9] = { 1, 2, 3 };
	image_convert_channels(buf, 3, buf, 1, 3);
	ck_assert_int_eq(buf[0], 1);
	ck_assert_int_eq(buf[4], 2);
	ck_assert_int_eq(buf[8], 3);
}
END_TEST

START_TEST(test_resize_area_exact)
{
	/* 4x4 -> 2x2: each output is the mean of its 2x2 block */
	uint8_t src[16] = { 10, 20, 1, 3, 30, 40, 5, 7, 100, 100, 0, 0, 100, 100, 0, 4 }, dst[4];
	image_resize(dst, 2, 2, src, 4, 4, 1, NULL);
	ck_assert_int_eq(dst[0], 25);
	ck_assert_int_eq(dst[1], 4);
	ck_assert_int_eq(dst[2], 100);
	ck_assert_int_eq(dst[3], 1);
	/* 3 -> 2 along x: outputs cover 1.5 source pixels: (2a+b)/3, (b+2c)/3 */
	uint8_t row[3] = { 0, 30, 90 }, out2[2];
	image_resize(out2, 1, 2, row, 1, 3, 1, NULL);
	ck_assert_int_eq(out2[0], 10);
	ck_assert_int_eq(out2[1], 70);
	/* per channel, in RGB */
	uint8_t rgb[2 * 2 * 3] = { 0, 10, 200, 4, 10, 100, 8, 10, 0, 12, 10, 0 }, one[3];
	image_resize(one, 1, 1, rgb, 2, 2, 3, NULL);
	ck_assert_int_eq(one[0], 6);
	ck_assert_int_eq(one[1], 10);
	ck_assert_int_eq(one[2], 75);
}
END_TEST

START_TEST(test_resize_bilinear_and_mixed)
{
	/* 2 -> 4: half-pixel centres, edges clamp (PyTorch align_corners=False) */
	uint8_t row[2] = { 0, 100 }, out[4];
	image_resize(out, 1, 4, row, 1, 2, 1, NULL);
	ck_assert_int_eq(out[0], 0);
	ck_assert_int_eq(out[1], 25);
	ck_assert_int_eq(out[2], 75);
	ck_assert_int_eq(out[3], 100);
	/* a column the same way, and shrink x while growing y */
	uint8_t col[2] = { 0, 200 }, ocol[4];
	image_resize(ocol, 4, 1, col, 2, 1, 1, NULL);
	ck_assert_int_eq(ocol[1], 50);
	ck_assert_int_eq(ocol[2], 150);
	uint8_t sq[2 * 4] = { 0, 0, 100, 100, 200, 200, 40, 40 }, mixed[4 * 2];
	image_resize(mixed, 4, 2, sq, 2, 4, 1, NULL);
	/* x: pairs average -> rows (0,100) and (200,40); y: 0, .25, .75, 1 */
	ck_assert_int_eq(mixed[0], 0);
	ck_assert_int_eq(mixed[1], 100);
	ck_assert_int_eq(mixed[2], 50);
	ck_assert_int_eq(mixed[3], 85);
	ck_assert_int_eq(mixed[4], 150);
	ck_assert_int_eq(mixed[5], 55);
	ck_assert_int_eq(mixed[6], 200);
	ck_assert_int_eq(mixed[7], 40);
	/* a flat image stays flat at any size */
	uint8_t flat[23 * 37 * 3], big[50 * 10 * 3];
	memset(flat, 77, sizeof flat);
	image_resize(big, 50, 10, flat, 23, 37, 3, NULL);
	for (size_t i = 0; i < sizeof big; i++)
		ck_assert_int_eq(big[i], 77);
	/* image_load: decode + gray + resize in one call */
	uint8_t px[8 * 8 * 3];
	Image im;
	char err[128];
	tw_pattern(px, 8, 8, 3, 2);
	TwBuf b = tw_png(px, 8, 8, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
	ck_assert_int_eq(image_load(b.data, b.len, 0, 1, 4, 4, IMAGE_FIT_STRETCH, &im, err, sizeof err), 0);
	ck_assert_int_eq(im.h * 100 + im.w * 10 + im.c, 441);
	uint8_t g[64], g4[16];
	image_convert_channels(g, 1, px, 3, 64);
	image_resize(g4, 4, 4, g, 8, 8, 1, NULL);
	ck_assert_mem_eq(im.data, g4, 16);
	free(im.data);
	free(b.data);
}
END_TEST

/* image_fit on gray images small enough to work out by hand. */
static void
fit_expect(ImageFit fit, const uint8_t *src, int h, int w, int oh, int ow, const uint8_t *want)
{
	uint8_t out[64];
	uint8_t *ws = malloc(image_fit_scratch(h, w, oh, ow, 1, fit));
	ck_assert_ptr_nonnull(ws);
	memset(out, 0xAA, sizeof out);
	image_fit(out, oh, ow, src, h, w, 1, fit, ws);
	for (int i = 0; i < oh * ow; i++)
		ck_assert_msg(out[i] == want[i], "%s %dx%d -> %dx%d: pixel %d is %d, expected %d",
		              image_fit_names[fit], h, w, oh, ow, i, out[i], want[i]);
	image_fit(out, oh, ow, src, h, w, 1, fit, NULL);   /* scratch allocated inside: the same */
	ck_assert_mem_eq(out, want, (size_t)oh * (size_t)ow);
	free(ws);
}

START_TEST(test_fit_crop)
{
	/* 2x6 -> 2x2: no resize (the short side fits), centre columns 2, 3 */
	static const uint8_t wide[12] = { 0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15 };
	fit_expect(IMAGE_FIT_CROP, wide, 2, 6, 2, 2, (const uint8_t[]){ 2, 3, 12, 13 });
	/* 2x5 -> 2x2: margin 3, offset int(round(1.5)) = 2 (Python rounds halves to even), not 1 */
	static const uint8_t five[10] = { 0, 1, 2, 3, 4, 10, 11, 12, 13, 14 };
	fit_expect(IMAGE_FIT_CROP, five, 2, 5, 2, 2, (const uint8_t[]){ 2, 3, 12, 13 });
	/* 4x2 -> 2x2, tall: centre rows 1, 2 */
	static const uint8_t tall[8] = { 0, 1, 10, 11, 20, 21, 30, 31 };
	fit_expect(IMAGE_FIT_CROP, tall, 4, 2, 2, 2, (const uint8_t[]){ 10, 11, 20, 21 });
	/* 2x4 -> 1x1: short side 2 -> 1, long 4 -> int(1 * 4 / 2) = 2 by area
	 * averages (10+20+50+60)/4 = 35 and (30+40+70+80)/4 = 55; margin 1, offset
	 * int(round(0.5)) = 0 */
	static const uint8_t two4[8] = { 10, 20, 30, 40, 50, 60, 70, 80 };
	fit_expect(IMAGE_FIT_CROP, two4, 2, 4, 1, 1, (const uint8_t[]){ 35 });
	/* 1x2 -> 2x2, up: cover size 2x4, bilinear rows 0 25 75 100, centre 25 75 */
	static const uint8_t up[2] = { 0, 100 };
	fit_expect(IMAGE_FIT_CROP, up, 1, 2, 2, 2, (const uint8_t[]){ 25, 75, 25, 75 });
	/* the same aspect ratio: crop is stretch */
	fit_expect(IMAGE_FIT_CROP, two4, 2, 4, 1, 2, (const uint8_t[]){ 35, 55 });
}
END_TEST

START_TEST(test_fit_pad)
{
	/* 2x4 -> 4x4: fits as 2x4, one black row above and below */
	static const uint8_t two4[8] = { 10, 20, 30, 40, 50, 60, 70, 80 };
	fit_expect(IMAGE_FIT_PAD, two4, 2, 4, 4, 4,
	           (const uint8_t[]){ 0, 0, 0, 0, 10, 20, 30, 40, 50, 60, 70, 80, 0, 0, 0, 0 });
	/* 2x4 -> 2x2: shrinks to 1x2 (35, 55); the odd margin's extra row goes below */
	fit_expect(IMAGE_FIT_PAD, two4, 2, 4, 2, 2, (const uint8_t[]){ 35, 55, 0, 0 });
	/* 4x2 -> 2x3, tall: 2x1 by area (0+1+10+11)/4 = 5.5 -> 6 and 25.5 -> 26, centred in column 1 */
	static const uint8_t tall[8] = { 0, 1, 10, 11, 20, 21, 30, 31 };
	fit_expect(IMAGE_FIT_PAD, tall, 4, 2, 2, 3, (const uint8_t[]){ 0, 6, 0, 0, 26, 0 });
	/* 1x2 -> 3x3, up: 1x2 grows to round(3 * 1 / 2) = 2 rows of 3 (bilinear
	 * 0, 50, 100), the extra row below */
	static const uint8_t up[2] = { 0, 100 };
	fit_expect(IMAGE_FIT_PAD, up, 1, 2, 3, 3, (const uint8_t[]){ 0, 50, 100, 0, 50, 100, 0, 0, 0 });
	/* the same aspect ratio: pad is stretch */
	fit_expect(IMAGE_FIT_PAD, two4, 2, 4, 1, 2, (const uint8_t[]){ 35, 55 });
	/* a 1-pixel line keeps at least one row */
	static const uint8_t line[8] = { 8, 8, 8, 8, 8, 8, 8, 8 };
	fit_expect(IMAGE_FIT_PAD, line, 1, 8, 2, 2, (const uint8_t[]){ 8, 8, 0, 0 });
}
END_TEST

START_TEST(test_fit_stretch)
{
	static const uint8_t two4[8] = { 10, 20, 30, 40, 50, 60, 70, 80 };
	fit_expect(IMAGE_FIT_STRETCH, two4, 2, 4, 1, 1, (const uint8_t[]){ 45 });
	fit_expect(IMAGE_FIT_STRETCH, two4, 2, 4, 2, 2, (const uint8_t[]){ 15, 35, 55, 75 });
}
END_TEST

static Suite *
image_suite(void)
{
	Suite *s = suite_create("image");
	TCase *dec = tcase_create("decode"), *limits = tcase_create("limits"), *px = tcase_create("pixels");
	tcase_add_test(dec, test_sniff_and_names);
	tcase_add_test(dec, test_jpeg_rgb_baseline_progressive);
	tcase_add_test(dec, test_jpeg_gray_and_cmyk);
	tcase_add_test(dec, test_png_formats_exact);
	tcase_add_test(dec, test_pnm_formats);
	tcase_add_test(limits, test_truncated_every_cut);
	tcase_add_test(limits, test_pixel_limit);
	tcase_add_test(limits, test_jpeg_scan_limit);
	tcase_add_test(px, test_channels);
	tcase_add_test(px, test_resize_area_exact);
	tcase_add_test(px, test_resize_bilinear_and_mixed);
	tcase_add_test(px, test_fit_crop);
	tcase_add_test(px, test_fit_pad);
	tcase_add_test(px, test_fit_stretch);
	suite_add_tcase(s, dec);
	suite_add_tcase(s, limits);
	suite_add_tcase(s, px);
	return s;
}

CHECK_MAIN(image_suite)
