/* imgwrite: see imgwrite.h. */
#include "imgwrite.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <archive.h>
#include <archive_entry.h>
#include <jpeglib.h>
#include <png.h>

TwBuf
tw_jpeg(const uint8_t *px, int h, int w, int c, int quality, int progressive)
{
	struct jpeg_compress_struct ci;
	struct jpeg_error_mgr jerr;
	unsigned char *mem = NULL;
	unsigned long memlen = 0;
	TwBuf b;
	ci.err = jpeg_std_error(&jerr);
	jpeg_create_compress(&ci);
	jpeg_mem_dest(&ci, &mem, &memlen);
	ci.image_width = (JDIMENSION)w;
	ci.image_height = (JDIMENSION)h;
	ci.input_components = c;
	ci.in_color_space = c == 1 ? JCS_GRAYSCALE : c == 3 ? JCS_RGB : JCS_CMYK;
	jpeg_set_defaults(&ci);
	jpeg_set_quality(&ci, quality, TRUE);
	if (progressive)
		jpeg_simple_progression(&ci);
	jpeg_start_compress(&ci, TRUE);
	while (ci.next_scanline < ci.image_height) {
		JSAMPROW row = (JSAMPROW)(px + (size_t)ci.next_scanline * (size_t)w * (size_t)c);
		jpeg_write_scanlines(&ci, &row, 1);
	}
	jpeg_finish_compress(&ci);
	jpeg_destroy_compress(&ci);
	b.data = malloc(memlen);
	ck_assert_ptr_nonnull(b.data);
	memcpy(b.data, mem, memlen);
	b.len = memlen;
	free(mem);
	return b;
}

static void
png_write_mem(png_structp png, png_bytep data, size_t n)
{
	TwBuf *b = png_get_io_ptr(png);
	b->data = realloc(b->data, b->len + n);
	ck_assert_ptr_nonnull(b->data);
	memcpy(b->data + b->len, data, n);
	b->len += n;
}

static void
png_flush_mem(png_structp png)
{
	(void)png;
}

TwBuf
tw_png(const uint8_t *px, int h, int w, int color_type, int bit_depth, const uint8_t *palette, int npal,
       int interlace)
{
	TwBuf b = { NULL, 0 };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
	png_infop info = png_create_info_struct(png);
	int ch;
	size_t stride;
	ck_assert_ptr_nonnull(png);
	ck_assert_ptr_nonnull(info);
	ck_assert_int_eq(setjmp(png_jmpbuf(png)), 0);
	png_set_write_fn(png, &b, png_write_mem, png_flush_mem);
	png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, bit_depth, color_type,
	             interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
	             PNG_FILTER_TYPE_DEFAULT);
	if (color_type == PNG_COLOR_TYPE_PALETTE) {
		png_color pal[256];
		for (int i = 0; i < npal; i++) {
			pal[i].red = palette[3 * i];
			pal[i].green = palette[3 * i + 1];
			pal[i].blue = palette[3 * i + 2];
		}
		png_set_PLTE(png, info, pal, npal);
	}
	png_write_info(png, info);
	switch (color_type) {
	case PNG_COLOR_TYPE_GRAY:       ch = 1; break;
	case PNG_COLOR_TYPE_GRAY_ALPHA: ch = 2; break;
	case PNG_COLOR_TYPE_RGB:        ch = 3; break;
	case PNG_COLOR_TYPE_RGB_ALPHA:  ch = 4; break;
	default:                        ch = 1; break;
	}
	stride = ((size_t)w * (size_t)ch * (size_t)bit_depth + 7) / 8;
	{
		png_bytep *rows = calloc((size_t)h, sizeof *rows);
		ck_assert_ptr_nonnull(rows);
		for (int y = 0; y < h; y++)
			rows[y] = (png_bytep)(px + (size_t)y * stride);
		png_write_image(png, rows);
		free(rows);
	}
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return b;
}

TwBuf
tw_pnm(const uint8_t *px, int h, int w, int c, int ascii)
{
	size_t n = (size_t)h * (size_t)w * (size_t)c, cap = 64 + n * 4;
	TwBuf b;
	int k;
	b.data = malloc(cap);
	ck_assert_ptr_nonnull(b.data);
	k = snprintf((char *)b.data, cap, "P%d\n# test image\n%d %d\n255\n", (c == 3 ? 3 : 2) + (ascii ? 0 : 3), w, h);
	b.len = (size_t)k;
	for (size_t i = 0; i < n; i++) {
		if (ascii)
			b.len += (size_t)snprintf((char *)b.data + b.len, cap - b.len, "%u%c", px[i], i % 12 == 11 ? '\n' : ' ');
		else
			b.data[b.len++] = px[i];
	}
	return b;
}

void
tw_pattern(uint8_t *px, int h, int w, int c, int seed)
{
	/* smooth gradients (JPEG-friendly), at most 249, plus a seed-dependent offset */
	for (int y = 0; y < h; y++)
		for (int x = 0; x < w; x++)
			for (int k = 0; k < c; k++)
				px[((size_t)y * (size_t)w + (size_t)x) * (size_t)c + (size_t)k] =
				    (uint8_t)(x * 80 / (w > 1 ? w - 1 : 1) + y * 80 / (h > 1 ? h - 1 : 1) + k * 30 + (seed * 7) % 30);
}

void
tw_archive(const char *path, const char *format, const char *filter, const TwMember *m, int n)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e;
	int r;
	ck_assert_ptr_nonnull(a);
	if (strcmp(format, "tar") == 0)
		r = archive_write_set_format_pax_restricted(a);
	else if (strcmp(format, "zip") == 0)
		r = archive_write_set_format_zip(a);
	else if (strcmp(format, "7z") == 0)
		r = archive_write_set_format_7zip(a);
	else if (strcmp(format, "cpio") == 0)
		r = archive_write_set_format_cpio_newc(a);
	else
		r = ARCHIVE_FATAL;
	ck_assert_msg(r == ARCHIVE_OK, "format %s: %s", format, archive_error_string(a));
	if (filter) {
		if (strcmp(filter, "gz") == 0)
			r = archive_write_add_filter_gzip(a);
		else if (strcmp(filter, "bz2") == 0)
			r = archive_write_add_filter_bzip2(a);
		else if (strcmp(filter, "xz") == 0)
			r = archive_write_add_filter_xz(a);
		else if (strcmp(filter, "zst") == 0)
			r = archive_write_add_filter_zstd(a);
		else
			r = ARCHIVE_FATAL;
		ck_assert_msg(r == ARCHIVE_OK, "filter %s: %s", filter, archive_error_string(a));
	}
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	for (int i = 0; i < n; i++) {
		e = archive_entry_new();
		archive_entry_set_pathname(e, m[i].path);
		archive_entry_set_mtime(e, 1700000000, 0);
		if (m[i].data) {
			archive_entry_set_filetype(e, AE_IFREG);
			archive_entry_set_perm(e, 0644);
			archive_entry_set_size(e, (la_int64_t)m[i].len);
		} else {
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
			archive_entry_set_size(e, 0);
		}
		ck_assert_msg(archive_write_header(a, e) == ARCHIVE_OK, "%s: %s", m[i].path, archive_error_string(a));
		if (m[i].data && m[i].len)
			ck_assert_int_eq(archive_write_data(a, m[i].data, m[i].len), (la_ssize_t)m[i].len);
		archive_entry_free(e);
	}
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_write_free(a);
}

static void
mkdirs(const char *path)
{
	char buf[1024];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s", buf);
			*p = '/';
		}
	}
	ck_assert_msg(mkdir(buf, 0755) == 0 || errno == EEXIST, "mkdir %s", buf);
}

void
tw_folder(const char *dir, const TwMember *m, int n)
{
	char p[1024];
	mkdirs(dir);
	for (int i = 0; i < n; i++) {
		snprintf(p, sizeof p, "%s/%s", dir, m[i].path);
		if (!m[i].data) {
			mkdirs(p);
			continue;
		}
		{
			char *slash = strrchr(p, '/');
			*slash = '\0';
			mkdirs(p);
			*slash = '/';
		}
		FILE *f = fopen(p, "wb");
		ck_assert_msg(f != NULL, "cannot write %s", p);
		ck_assert_uint_eq(fwrite(m[i].data, 1, m[i].len, f), m[i].len);
		ck_assert_int_eq(fclose(f), 0);
	}
}

void
tw_gzip_file(const char *path, const void *data, size_t len)
{
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	ck_assert_int_eq(archive_write_set_format_raw(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_add_filter_gzip(a), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_open_filename(a, path), ARCHIVE_OK);
	archive_entry_set_pathname(e, "data");
	archive_entry_set_filetype(e, AE_IFREG);
	archive_entry_set_size(e, (la_int64_t)len);
	ck_assert_int_eq(archive_write_header(a, e), ARCHIVE_OK);
	ck_assert_int_eq(archive_write_data(a, data, len), (la_ssize_t)len);
	ck_assert_int_eq(archive_write_close(a), ARCHIVE_OK);
	archive_entry_free(e);
	archive_write_free(a);
}
