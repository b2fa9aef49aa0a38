/* png_write: see png_write.h. */
#include "io/png_write.h"

#include <errno.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

#define SHEET_MAX_SIDE 32768

typedef struct {
	char  *err;
	size_t errlen;
} PngErr;

static void
png_error_fn(png_structp png, png_const_charp msg)
{
	PngErr *e = png_get_error_ptr(png);
	snprintf(e->err, e->errlen, "libpng: %s", msg);
	png_longjmp(png, 1);
}

static void
png_warning_fn(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg; /* warnings do not make the picture wrong */
}

/* The libpng part, apart so that setjmp does not clobber the caller's locals. */
static int
png_write_fp(FILE *fp, const uint8_t *img, int H, int W, int C, PngErr *e)
{
	static const int color[5] = { 0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
		                      PNG_COLOR_TYPE_RGB_ALPHA };
	png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, e, png_error_fn, png_warning_fn);
	if (!png) {
		snprintf(e->err, e->errlen, "libpng: cannot create a writer");
		return -1;
	}
	png_infop info = png_create_info_struct(png);
	if (!info || setjmp(png_jmpbuf(png))) {
		if (!info)
			snprintf(e->err, e->errlen, "libpng: cannot create an info struct");
		png_destroy_write_struct(&png, info ? &info : NULL);
		return -1;
	}
	png_init_io(png, fp);
	png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, color[C], PNG_INTERLACE_NONE,
	             PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
	png_write_info(png, info);
	for (int y = 0; y < H; y++)
		png_write_row(png, (png_const_bytep)(img + (size_t)y * W * C));
	png_write_end(png, NULL);
	png_destroy_write_struct(&png, &info);
	return 0;
}

int
png_write_u8(const char *path, const uint8_t *img, int H, int W, int C, char *err, size_t errlen)
{
	PngErr e = { err, errlen };
	if (H < 1 || W < 1 || C < 1 || C > 4) {
		snprintf(err, errlen, "%s: cannot write a %dx%dx%d image as PNG", path, H, W, C);
		return -1;
	}
	size_t n = strlen(path) + 16;
	char *tmp = xmalloc(n);
	snprintf(tmp, n, "%s.tmp%ld", path, (long)getpid());
	FILE *fp = fopen(tmp, "wb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", tmp, strerror(errno));
		free(tmp);
		return -1;
	}
	char msg[256] = "";
	e.err = msg;
	e.errlen = sizeof msg;
	int rc = png_write_fp(fp, img, H, W, C, &e);
	if (fflush(fp) != 0 || ferror(fp)) {
		if (rc == 0)
			snprintf(msg, sizeof msg, "%s", strerror(errno));
		rc = -1;
	}
	if (fclose(fp) != 0 && rc == 0) {
		snprintf(msg, sizeof msg, "%s", strerror(errno));
		rc = -1;
	}
	if (rc == 0 && rename(tmp, path) != 0) {
		snprintf(msg, sizeof msg, "rename: %s", strerror(errno));
		rc = -1;
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s: %s", path, msg);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

void
sheet_init(ContactSheet *s, int rows, int cols, int cell_h, int cell_w, int gap)
{
	memset(s, 0, sizeof *s);
	int64_t H = (int64_t)rows * (cell_h + gap) + gap, W = (int64_t)cols * (cell_w + gap) + gap;
	if (rows < 1 || cols < 1 || cell_h < 1 || cell_w < 1 || gap < 0 || H > SHEET_MAX_SIDE || W > SHEET_MAX_SIDE)
		die("contact sheet of %dx%d cells of %dx%d is too large", rows, cols, cell_h, cell_w);
	s->rows = rows;
	s->cols = cols;
	s->cell_h = cell_h;
	s->cell_w = cell_w;
	s->gap = gap;
	s->H = (int)H;
	s->W = (int)W;
	size_t n = (size_t)H * (size_t)W * 3;
	s->pix = xmalloc(n);
	memset(s->pix, 40, n);
}

void
sheet_put(ContactSheet *s, int row, int col, const uint8_t *img, int h, int w, int c, int factor)
{
	ASSERT(row >= 0 && row < s->rows && col >= 0 && col < s->cols && (c == 1 || c == 3) && factor >= 1);
	int hh = (int64_t)h * factor < s->cell_h ? h * factor : s->cell_h;
	int ww = (int64_t)w * factor < s->cell_w ? w * factor : s->cell_w;
	int y0 = s->gap + row * (s->cell_h + s->gap) + (s->cell_h - hh) / 2;
	int x0 = s->gap + col * (s->cell_w + s->gap) + (s->cell_w - ww) / 2;
	for (int y = 0; y < hh; y++) {
		uint8_t *d = s->pix + ((size_t)(y0 + y) * s->W + x0) * 3;
		const uint8_t *srow = img + (size_t)(y / factor) * w * c;
		for (int x = 0; x < ww; x++, d += 3) {
			const uint8_t *p = srow + (size_t)(x / factor) * c;
			d[0] = p[0];
			d[1] = p[c == 3 ? 1 : 0];
			d[2] = p[c == 3 ? 2 : 0];
		}
	}
}

int
sheet_write(const ContactSheet *s, const char *path, char *err, size_t errlen)
{
	return png_write_u8(path, s->pix, s->H, s->W, 3, err, errlen);
}

void
sheet_free(ContactSheet *s)
{
	free(s->pix);
	memset(s, 0, sizeof *s);
}

int
sheet_upscale_factor(int side, int target)
{
	if (side < 1 || side >= target)
		return 1;
	return (target + side - 1) / side;
}

void
grid_init(PictureGrid *g, int rows, int cols)
{
	ASSERT(rows >= 1 && cols >= 1);
	g->rows = rows;
	g->cols = cols;
	g->cells = xcalloc((size_t)rows * cols, sizeof *g->cells);
}

void
grid_set(PictureGrid *g, int row, int col, const uint8_t *img, int h, int w, int c)
{
	ASSERT(row >= 0 && row < g->rows && col >= 0 && col < g->cols && h >= 1 && w >= 1 && (c == 1 || c == 3));
	GridCell *cell = &g->cells[(size_t)row * g->cols + col];
	size_t n = (size_t)h * w * c;
	free(cell->pix);
	cell->pix = memcpy(xmalloc(n), img, n);
	cell->h = h;
	cell->w = w;
	cell->c = c;
}

int
grid_write_png(const PictureGrid *g, const char *path, int target, char *err, size_t errlen)
{
	int rows = 0, ch = 0, cw = 0;
	for (int i = 0; i < g->rows * g->cols; i++) {
		const GridCell *c = &g->cells[i];
		if (!c->pix)
			continue;
		rows = i / g->cols + 1;
		ch = c->h > ch ? c->h : ch;
		cw = c->w > cw ? c->w : cw;
	}
	if (!rows) {
		snprintf(err, errlen, "%s: no pictures to write", path);
		return -1;
	}
	int f = sheet_upscale_factor(ch > cw ? ch : cw, target);
	ContactSheet sh;
	sheet_init(&sh, rows, g->cols, ch * f, cw * f, 4);
	for (int i = 0; i < rows * g->cols; i++) {
		const GridCell *c = &g->cells[i];
		if (c->pix)
			sheet_put(&sh, i / g->cols, i % g->cols, c->pix, c->h, c->w, c->c, f);
	}
	int rc = sheet_write(&sh, path, err, errlen);
	sheet_free(&sh);
	return rc;
}

void
grid_free(PictureGrid *g)
{
	for (int i = 0; g->cells && i < g->rows * g->cols; i++)
		free(g->cells[i].pix);
	free(g->cells);
	memset(g, 0, sizeof *g);
}
