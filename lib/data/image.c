/* image: see image.h. */
#include "data/image.h"

#include <ctype.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>

#include "base/util.h"

ImageFormat
image_sniff(const void *buf, size_t len)
{
	const uint8_t *p = buf;
	if (len >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF)
		return IMAGE_FMT_JPEG;
	if (len >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0)
		return IMAGE_FMT_PNG;
	if (len >= 3 && p[0] == 'P' && p[1] >= '1' && p[1] <= '6' && isspace(p[2]))
		return IMAGE_FMT_PNM;
	return IMAGE_FMT_UNKNOWN;
}

#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)

const char *
image_codec_versions(void)
{
	static char buf[128];
	/* libjpeg-turbo has no version to ask at run time (its message table
	 * says 6b): the headers' it was built with; libpng's own */
#ifdef LIBJPEG_TURBO_VERSION
	const char *turbo = STRINGIFY(LIBJPEG_TURBO_VERSION);
#else
	const char *turbo = "-";
#endif
	snprintf(buf, sizeof buf, "libjpeg %d libjpeg-turbo %s libpng %s", JPEG_LIB_VERSION, turbo,
	         png_get_libpng_ver(NULL));
	return buf;
}

const char *
image_format_name(ImageFormat f)
{
	switch (f) {
	case IMAGE_FMT_JPEG: return "JPEG";
	case IMAGE_FMT_PNG:  return "PNG";
	case IMAGE_FMT_PNM:  return "PNM";
	default:             return "unknown";
	}
}

int
image_name_kind(const char *name)
{
	static const char *ours[] = { "jpg", "jpeg", "jpe", "jfif", "png", "pnm", "ppm", "pgm", "pbm" };
	static const char *others[] = { "gif", "bmp", "webp", "tif", "tiff", "heic", "heif", "avif",
		                            "jp2", "j2k", "jxl", "ico", "tga", "psd", "exr", "hdr", "pam" };
	const char *dot = strrchr(name, '.'), *slash = strrchr(name, '/');
	if (!dot || (slash && dot < slash))
		return 0;
	dot++;
	for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++)
		if (strcasecmp(dot, ours[i]) == 0)
			return 1;
	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
		if (strcasecmp(dot, others[i]) == 0)
			return 2;
	return 0;
}

/* Checks the header's dimensions before anything is allocated. */
static int
check_dims(int64_t w, int64_t h, int64_t max_pixels, char *err, size_t errlen)
{
	if (max_pixels <= 0)
		max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
	if (w <= 0 || h <= 0 || w > IMAGE_MAX_SIDE || h > IMAGE_MAX_SIDE) {
		snprintf(err, errlen, "bad image size %lldx%lld", (long long)h, (long long)w);
		return -1;
	}
	if (w * h > max_pixels) {
		snprintf(err, errlen, "image is %lldx%lld = %lld pixels, over the limit of %lld (see --max-pixels)",
		         (long long)h, (long long)w, (long long)(w * h), (long long)max_pixels);
		return -1;
	}
	return 0;
}

/* ---- JPEG (libjpeg-turbo) ---- */

typedef struct {
	struct jpeg_error_mgr pub;
	jmp_buf jb;
	char    msg[JMSG_LENGTH_MAX + 32];
} JpegErr;

static void
jpeg_on_error(j_common_ptr ci)
{
	JpegErr *e = (JpegErr *)ci->err;
	char m[JMSG_LENGTH_MAX];
	(*ci->err->format_message)(ci, m);
	snprintf(e->msg, sizeof e->msg, "JPEG: %s", m);
	longjmp(e->jb, 1);
}

/* libjpeg reports truncated or damaged entropy data as warnings and fills
 * in gray; a half-gray training image is worse than a skipped one, so
 * those warnings are errors here. Other warnings are harmless. */
static void
jpeg_on_message(j_common_ptr ci, int level)
{
	JpegErr *e = (JpegErr *)ci->err;
	int code = ci->err->msg_code;
	if (level >= 0)
		return;
	if (code == JWRN_JPEG_EOF) {
		snprintf(e->msg, sizeof e->msg, "truncated JPEG data");
		longjmp(e->jb, 1);
	}
	if (code == JWRN_HIT_MARKER || code == JWRN_HUFF_BAD_CODE || code == JWRN_MUST_RESYNC) {
		char m[JMSG_LENGTH_MAX];
		(*ci->err->format_message)(ci, m);
		snprintf(e->msg, sizeof e->msg, "JPEG: %s", m);
		longjmp(e->jb, 1);
	}
}

/* A progressive JPEG may hold thousands of tiny scans that take minutes to
 * decode; real files have about ten. libjpeg-turbo's own tools stop at 500
 * (djpeg -maxscans), and so do we. */
#define JPEG_MAX_SCANS 500

static void
jpeg_on_progress(j_common_ptr ci)
{
	j_decompress_ptr di = (j_decompress_ptr)ci;
	JpegErr *e = (JpegErr *)ci->err;
	if (di->input_scan_number > JPEG_MAX_SCANS) {
		snprintf(e->msg, sizeof e->msg, "JPEG: more than %d scans", JPEG_MAX_SCANS);
		longjmp(e->jb, 1);
	}
}

/* Adobe CMYK JPEGs store inverted ink values (Photoshop's convention, which
 * libjpeg and PIL follow); RGB = (255 - C)(255 - K) / 255 on real inks. */
static void
cmyk_to_rgb(uint8_t *dst, const uint8_t *src, int w, int inverted)
{
	for (int x = 0; x < w; x++) {
		int c = src[4 * x], m = src[4 * x + 1], y = src[4 * x + 2], k = src[4 * x + 3];
		if (!inverted) {
			c = 255 - c;
			m = 255 - m;
			y = 255 - y;
			k = 255 - k;
		}
		dst[3 * x] = (uint8_t)((c * k + 127) / 255);
		dst[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
		dst[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
	}
}

static int
decode_jpeg(const uint8_t *buf, size_t len, int64_t max_pixels, Image *out, char *err, size_t errlen)
{
	struct jpeg_decompress_struct ci;
	struct jpeg_progress_mgr prog;
	JpegErr je;
	uint8_t *volatile pixels = NULL;
	uint8_t *volatile cmyk = NULL;
	int c, is_cmyk;
	size_t stride, total;

	memset(&ci, 0, sizeof ci);
	ci.err = jpeg_std_error(&je.pub);
	je.pub.error_exit = jpeg_on_error;
	je.pub.emit_message = jpeg_on_message;
	je.msg[0] = '\0';
	if (setjmp(je.jb)) {
		jpeg_destroy_decompress(&ci);
		free(pixels);
		free(cmyk);
		snprintf(err, errlen, "%s", je.msg);
		return -1;
	}
	jpeg_create_decompress(&ci);
	prog.progress_monitor = jpeg_on_progress;
	ci.progress = &prog;
	jpeg_mem_src(&ci, buf, (unsigned long)len);
	jpeg_read_header(&ci, TRUE);
	if (check_dims(ci.image_width, ci.image_height, max_pixels, err, errlen) < 0) {
		jpeg_destroy_decompress(&ci);
		return -1;
	}
	is_cmyk = ci.jpeg_color_space == JCS_CMYK || ci.jpeg_color_space == JCS_YCCK;
	if (ci.jpeg_color_space == JCS_GRAYSCALE) {
		ci.out_color_space = JCS_GRAYSCALE;
		c = 1;
	} else if (is_cmyk) {
		ci.out_color_space = JCS_CMYK;
		c = 3;
	} else {
		ci.out_color_space = JCS_RGB;
		c = 3;
	}
	jpeg_start_decompress(&ci);
	stride = (size_t)ci.output_width * (size_t)c;
	total = stride * ci.output_height;   /* bounded by check_dims */
	pixels = xmalloc(total);
	if (is_cmyk)
		cmyk = xmalloc((size_t)ci.output_width * 4);
	while (ci.output_scanline < ci.output_height) {
		JSAMPROW rows[4];
		JDIMENSION y = ci.output_scanline, n;
		if (is_cmyk) {
			rows[0] = cmyk;
			if (jpeg_read_scanlines(&ci, rows, 1) != 1)
				longjmp(je.jb, 1);
			cmyk_to_rgb(pixels + (size_t)y * stride, cmyk, (int)ci.output_width, ci.saw_Adobe_marker);
			continue;
		}
		for (int i = 0; i < 4; i++)
			rows[i] = pixels + (size_t)(y + (JDIMENSION)i < ci.output_height ? y + (JDIMENSION)i : y) * stride;
		n = jpeg_read_scanlines(&ci, rows, 4);
		if (n == 0) {
			snprintf(je.msg, sizeof je.msg, "truncated JPEG data");
			longjmp(je.jb, 1);
		}
	}
	jpeg_finish_decompress(&ci);
	out->h = (int)ci.output_height;
	out->w = (int)ci.output_width;
	out->c = c;
	out->data = pixels;
	jpeg_destroy_decompress(&ci);
	free(cmyk);
	return 0;
}

/* ---- PNG (libpng) ---- */

typedef struct {
	const uint8_t *p;
	size_t         len, pos;
	char           msg[200];
} PngSrc;

static void
png_on_error(png_structp png, png_const_charp msg)
{
	PngSrc *s = png_get_error_ptr(png);
	if (!s->msg[0])
		snprintf(s->msg, sizeof s->msg, "PNG: %s", msg);
	png_longjmp(png, 1);
}

static void
png_on_warning(png_structp png, png_const_charp msg)
{
	(void)png;
	(void)msg;
}

static void
png_read_mem(png_structp png, png_bytep dst, size_t n)
{
	PngSrc *s = png_get_io_ptr(png);
	if (n > s->len - s->pos) {
		snprintf(s->msg, sizeof s->msg, "truncated PNG data");
		png_error(png, "truncated");
	}
	memcpy(dst, s->p + s->pos, n);
	s->pos += n;
}

#define PNG_CHUNK_MAX 8000000   /* libpng's own default where it sets one */

/* Ancillary chunks that only carry metadata (5 bytes each: name and NUL). */
static const png_byte png_ignored_chunks[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0hIST\0pCAL\0sCAL\0tIME\0";

static int
decode_png(const uint8_t *buf, size_t len, int64_t max_pixels, Image *out, char *err, size_t errlen)
{
	PngSrc src = { buf, len, 0, "" };
	png_structp png;
	png_infop info = NULL;
	uint8_t *volatile pixels = NULL;
	png_bytep *volatile rows = NULL;
	png_uint_32 w, h;
	int depth, ctype, c;
	size_t stride;

	png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
	if (!png) {
		snprintf(err, errlen, "PNG: out of memory");
		return -1;
	}
	info = png_create_info_struct(png);
	if (!info) {
		png_destroy_read_struct(&png, NULL, NULL);
		snprintf(err, errlen, "PNG: out of memory");
		return -1;
	}
	if (setjmp(png_jmpbuf(png))) {
		png_destroy_read_struct(&png, &info, NULL);
		free(pixels);
		free(rows);
		snprintf(err, errlen, "%s", src.msg[0] ? src.msg : "PNG: bad data");
		return -1;
	}
	png_set_read_fn(png, &src, png_read_mem);
	png_set_user_limits(png, IMAGE_MAX_SIDE, IMAGE_MAX_SIDE);
	/* Metadata we never use is skipped unread, and no chunk may cost more
	 * memory than the file's bytes (plus 64 KiB of decompression) justify,
	 * nor more than 8 MB: a tEXt chunk that declares 2 GiB in a 137-byte file
	 * had libpng allocate all of it. */
	png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, png_ignored_chunks,
	                            (int)(sizeof png_ignored_chunks / 5));
	png_set_chunk_malloc_max(png, len < PNG_CHUNK_MAX - (1 << 16) ? len + (1 << 16) : PNG_CHUNK_MAX);
	png_set_chunk_cache_max(png, 32);
	png_read_info(png, info);
	png_get_IHDR(png, info, &w, &h, &depth, &ctype, NULL, NULL, NULL);
	if (check_dims(w, h, max_pixels, err, errlen) < 0) {
		png_destroy_read_struct(&png, &info, NULL);
		return -1;
	}
	if (depth == 16)
		png_set_strip_16(png);
	if (ctype == PNG_COLOR_TYPE_PALETTE)
		png_set_palette_to_rgb(png);
	if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8)
		png_set_expand_gray_1_2_4_to_8(png);
	/* tRNS (palette, grey or RGB with a transparent colour) expands to an
	 * alpha channel like a real one: both are dropped */
	if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
		png_set_strip_alpha(png);
	png_set_interlace_handling(png);
	png_read_update_info(png, info);
	c = png_get_channels(png, info);
	if ((c != 1 && c != 3) || png_get_bit_depth(png, info) != 8) {
		snprintf(src.msg, sizeof src.msg, "PNG: unexpected layout after conversion (%d channels)", c);
		png_longjmp(png, 1);
	}
	stride = (size_t)w * (size_t)c;
	pixels = xmalloc(stride * h);
	rows = xcalloc(h, sizeof *rows);
	for (png_uint_32 y = 0; y < h; y++)
		rows[y] = pixels + (size_t)y * stride;
	png_read_image(png, rows);
	png_read_end(png, NULL);
	png_destroy_read_struct(&png, &info, NULL);
	free(rows);
	out->h = (int)h;
	out->w = (int)w;
	out->c = c;
	out->data = pixels;
	return 0;
}

/* ---- PNM (P1-P6) ---- */

typedef struct {
	const uint8_t *p;
	size_t         len, pos;
} Cursor;

/* Skips whitespace and # comments. */
static void
pnm_skip_space(Cursor *c)
{
	while (c->pos < c->len) {
		if (c->p[c->pos] == '#') {
			while (c->pos < c->len && c->p[c->pos] != '\n' && c->p[c->pos] != '\r')
				c->pos++;
		} else if (isspace(c->p[c->pos])) {
			c->pos++;
		} else {
			break;
		}
	}
}

static int
pnm_number(Cursor *c, int64_t max, int64_t *v)
{
	int64_t x = 0;
	int any = 0;
	pnm_skip_space(c);
	while (c->pos < c->len && isdigit(c->p[c->pos])) {
		x = x * 10 + (c->p[c->pos++] - '0');
		if (x > max)
			return -1;
		any = 1;
	}
	*v = x;
	return any ? 0 : -1;
}

static int
decode_pnm(const uint8_t *buf, size_t len, int64_t max_pixels, Image *out, char *err, size_t errlen)
{
	Cursor cur = { buf, len, 2 };
	int kind = buf[1] - '0', c = (kind == 3 || kind == 6) ? 3 : 1;
	int64_t w, h, maxval = 1, v;
	size_t n, need;
	uint8_t *px;

	if (pnm_number(&cur, IMAGE_MAX_SIDE + 1, &w) < 0 || pnm_number(&cur, IMAGE_MAX_SIDE + 1, &h) < 0 ||
	    (kind != 1 && kind != 4 && pnm_number(&cur, 65536, &maxval) < 0)) {
		snprintf(err, errlen, "PNM: bad header");
		return -1;
	}
	if (maxval < 1 || maxval > 65535) {
		snprintf(err, errlen, "PNM: bad maxval %lld", (long long)maxval);
		return -1;
	}
	if (check_dims(w, h, max_pixels, err, errlen) < 0)
		return -1;
	n = (size_t)w * (size_t)h * (size_t)c;
	if (kind >= 4) {
		/* exactly one whitespace byte ends the header of a binary PNM */
		if (cur.pos >= len || !isspace(buf[cur.pos])) {
			snprintf(err, errlen, "PNM: bad header");
			return -1;
		}
		cur.pos++;
		need = kind == 4 ? (size_t)(w + 7) / 8 * (size_t)h : n * (maxval > 255 ? 2 : 1);
		if (len - cur.pos < need) {
			snprintf(err, errlen, "truncated PNM data");
			return -1;
		}
	}
	px = xmalloc(n);
	for (size_t i = 0; i < n; i++) {
		if (kind == 4) {
			size_t y = i / (size_t)w, x = i % (size_t)w;
			v = (buf[cur.pos + y * (size_t)((w + 7) / 8) + x / 8] >> (7 - x % 8)) & 1;
		} else if (kind >= 5) {
			v = maxval > 255 ? (buf[cur.pos + 2 * i] << 8 | buf[cur.pos + 2 * i + 1]) : buf[cur.pos + i];
		} else if (kind == 1) {
			pnm_skip_space(&cur);
			if (cur.pos >= len || (buf[cur.pos] != '0' && buf[cur.pos] != '1')) {
				free(px);
				snprintf(err, errlen, cur.pos >= len ? "truncated PNM data" : "PNM: bad bit");
				return -1;
			}
			v = buf[cur.pos++] - '0';
		} else if (pnm_number(&cur, 65535, &v) < 0) {
			free(px);
			snprintf(err, errlen, cur.pos >= len ? "truncated PNM data" : "PNM: bad sample");
			return -1;
		}
		if (kind == 1 || kind == 4) {
			px[i] = v ? 0 : 255;    /* 1 is black in a bitmap */
			continue;
		}
		if (v > maxval) {
			free(px);
			snprintf(err, errlen, "PNM: sample %lld over maxval %lld", (long long)v, (long long)maxval);
			return -1;
		}
		px[i] = maxval == 255 ? (uint8_t)v : (uint8_t)((v * 255 + maxval / 2) / maxval);
	}
	out->h = (int)h;
	out->w = (int)w;
	out->c = c;
	out->data = px;
	return 0;
}

int
image_decode(const void *buf, size_t len, int64_t max_pixels, Image *out, char *err, size_t errlen)
{
	memset(out, 0, sizeof *out);
	switch (image_sniff(buf, len)) {
	case IMAGE_FMT_JPEG: return decode_jpeg(buf, len, max_pixels, out, err, errlen);
	case IMAGE_FMT_PNG:  return decode_png(buf, len, max_pixels, out, err, errlen);
	case IMAGE_FMT_PNM:  return decode_pnm(buf, len, max_pixels, out, err, errlen);
	default:
		snprintf(err, errlen, len == 0 ? "empty file" : "not a JPEG, PNG or PNM image");
		return -1;
	}
}

void
image_convert_channels(uint8_t *dst, int dc, const uint8_t *src, int sc, size_t n)
{
	ASSERT((dc == 1 || dc == 3) && (sc == 1 || sc == 3));
	if (dc == sc) {
		if (dst != src)
			memmove(dst, src, n * (size_t)sc);
	} else if (dc == 3) {
		/* backwards, so that dst may extend src in place */
		for (size_t i = n; i-- > 0;) {
			uint8_t v = src[i];
			dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = v;
		}
	} else {
		for (size_t i = 0; i < n; i++)
			dst[i] = (uint8_t)((19595u * src[3 * i] + 38470u * src[3 * i + 1] + 7471u * src[3 * i + 2] +
			                    0x8000u) >> 16);
	}
}

/* ---- resize ---- */

/* Per-axis resampling taps: output o reads in[first[o] .. first[o]+ntaps)
 * with weights wt[o * maxtaps ..]. */
static int
axis_maxtaps(int in, int out)
{
	if (out < in)
		return (in + out - 1) / out + 1;
	return out == in ? 1 : 2;
}

/* Plans outputs off .. off+n-1 of resampling an axis of `in` pixels to `out`. */
static void
axis_plan(int in, int out, int off, int n, int maxtaps, int *first, int *ntaps, float *wt)
{
	for (int j = 0; j < n; j++) {
		int o = off + j;
		float *w = wt + (size_t)j * (size_t)maxtaps;
		if (out == in) {
			first[j] = o;
			ntaps[j] = 1;
			w[0] = 1;
		} else if (out < in) {
			/* exact coverage of [o*s, (o+1)*s) in source pixels, s = in/out,
			 * computed in integers scaled by out so the edges are exact */
			int64_t lo = (int64_t)o * in, hi = (int64_t)(o + 1) * in;
			int i0 = (int)(lo / out), i1 = (int)((hi + out - 1) / out);
			first[j] = i0;
			ntaps[j] = i1 - i0;
			ASSERT(ntaps[j] <= maxtaps);
			for (int i = i0; i < i1; i++) {
				int64_t a = (int64_t)i * out, b = (int64_t)(i + 1) * out;
				int64_t ov = (b < hi ? b : hi) - (a > lo ? a : lo);
				w[i - i0] = (float)((double)ov / (double)in);
			}
		} else {
			double src = ((double)o + 0.5) * (double)in / (double)out - 0.5;
			int i0;
			if (src < 0)
				src = 0;
			i0 = (int)src;
			if (i0 >= in - 1) {
				first[j] = in - 1;
				ntaps[j] = 1;
				w[0] = 1;
			} else {
				first[j] = i0;
				ntaps[j] = 2;
				w[1] = (float)(src - i0);
				w[0] = 1 - w[1];
			}
		}
	}
}

/* Scratch for a (wh, ww) window of an (h, w) -> (rh, rw) resize. */
static size_t
window_scratch(int h, int w, int rh, int rw, int wh, int ww, int c)
{
	size_t tx = (size_t)axis_maxtaps(w, rw), ty = (size_t)axis_maxtaps(h, rh);
	return (size_t)(ww + wh) * 2 * sizeof(int) + ((size_t)ww * tx + (size_t)wh * ty) * sizeof(float) +
	       (size_t)h * (size_t)ww * (size_t)c * sizeof(float) + 64;
}

/* Rows y0 .. y0+wh-1 and columns x0 .. x0+ww-1 of src (h, w, c) resized to
 * (rh, rw), written to dst with rows `stride` bytes apart. Each output pixel
 * is what the whole resize gives there, without computing the rest. */
static void
resize_window(uint8_t *dst, size_t stride, int wh, int ww, const uint8_t *src, int h, int w, int c, int rh,
              int rw, int y0, int x0, void *ws)
{
	int tx = axis_maxtaps(w, rw), ty = axis_maxtaps(h, rh);
	void *own = NULL;
	float *tmp, *wx, *wy;
	int *fx, *nx, *fy, *ny;
	if (!ws)
		ws = own = xmalloc(window_scratch(h, w, rh, rw, wh, ww, c));
	tmp = ws;
	wx = tmp + (size_t)h * (size_t)ww * (size_t)c;
	wy = wx + (size_t)ww * (size_t)tx;
	fx = (int *)(wy + (size_t)wh * (size_t)ty);
	nx = fx + ww;
	fy = nx + ww;
	ny = fy + wh;
	axis_plan(w, rw, x0, ww, tx, fx, nx, wx);
	axis_plan(h, rh, y0, wh, ty, fy, ny, wy);

	for (int y = 0; y < h; y++) {
		const uint8_t *row = src + (size_t)y * (size_t)w * (size_t)c;
		float *trow = tmp + (size_t)y * (size_t)ww * (size_t)c;
		for (int o = 0; o < ww; o++) {
			const float *wt = wx + (size_t)o * (size_t)tx;
			const uint8_t *s = row + (size_t)fx[o] * (size_t)c;
			for (int k = 0; k < c; k++) {
				float acc = 0;
				for (int t = 0; t < nx[o]; t++)
					acc += wt[t] * s[(size_t)t * (size_t)c + (size_t)k];
				trow[(size_t)o * (size_t)c + (size_t)k] = acc;
			}
		}
	}
	for (int o = 0; o < wh; o++) {
		const float *wt = wy + (size_t)o * (size_t)ty;
		uint8_t *drow = dst + (size_t)o * stride;
		size_t rowlen = (size_t)ww * (size_t)c;
		for (size_t j = 0; j < rowlen; j++) {
			float acc = 0;
			for (int t = 0; t < ny[o]; t++)
				acc += wt[t] * tmp[(size_t)(fy[o] + t) * rowlen + j];
			acc = floorf(acc + 0.5f);
			drow[j] = acc <= 0 ? 0 : acc >= 255 ? 255 : (uint8_t)acc;
		}
	}
	free(own);
}

size_t
image_resize_scratch(int h, int w, int oh, int ow, int c)
{
	return window_scratch(h, w, oh, ow, oh, ow, c);
}

void
image_resize(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w, int c, void *ws)
{
	resize_window(dst, (size_t)ow * (size_t)c, oh, ow, src, h, w, c, oh, ow, 0, 0, ws);
}

const char *const image_fit_names[IMAGE_FIT_N] = { "stretch", "crop", "pad" };

/* Only a window of the covering size is computed, so it may be large; this
 * keeps it an int (an image 1 pixel high and 65535 wide cropped to 65535). */
#define FIT_MAX_SIDE (INT64_C(1) << 29)

/* The size (rh, rw) the whole image is resized to before the crop or the
 * padding. */
static void
fit_dims(int h, int w, int oh, int ow, ImageFit fit, int *rh, int *rw)
{
	int64_t a = (int64_t)oh * w, b = (int64_t)ow * h;   /* a >= b: oh/h >= ow/w */
	*rh = oh;
	*rw = ow;
	if (fit == IMAGE_FIT_CROP) {   /* cover: torchvision Resize's int() */
		if (a > b)
			*rw = (int)(a / h < FIT_MAX_SIDE ? a / h : FIT_MAX_SIDE);
		else if (a < b)
			*rh = (int)(b / w < FIT_MAX_SIDE ? b / w : FIT_MAX_SIDE);
	} else if (fit == IMAGE_FIT_PAD) {   /* contain, rounded to nearest, at least 1 */
		if (a > b)
			*rh = (int)((b + w / 2) / w);
		else if (a < b)
			*rw = (int)((a + h / 2) / h);
		if (*rh < 1)
			*rh = 1;
		if (*rw < 1)
			*rw = 1;
	}
}

/* torchvision CenterCrop's offset, int(round(d / 2.0)): halves go to even. */
static int
centre_offset(int d)
{
	int k = d / 2;
	return d % 2 && k % 2 ? k + 1 : k;
}

size_t
image_fit_scratch(int h, int w, int oh, int ow, int c, ImageFit fit)
{
	int rh, rw;
	fit_dims(h, w, oh, ow, fit, &rh, &rw);
	return fit == IMAGE_FIT_PAD ? window_scratch(h, w, rh, rw, rh, rw, c) : window_scratch(h, w, rh, rw, oh, ow, c);
}

void
image_fit(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w, int c, ImageFit fit, void *ws)
{
	int rh, rw;
	size_t stride = (size_t)ow * (size_t)c;
	fit_dims(h, w, oh, ow, fit, &rh, &rw);
	if (fit == IMAGE_FIT_PAD) {
		int top = (oh - rh) / 2, left = (ow - rw) / 2;
		memset(dst, IMAGE_PAD_FILL, (size_t)oh * stride);
		resize_window(dst + (size_t)top * stride + (size_t)left * (size_t)c, stride, rh, rw, src, h, w, c, rh, rw,
		              0, 0, ws);
	} else {
		resize_window(dst, stride, oh, ow, src, h, w, c, rh, rw, centre_offset(rh - oh), centre_offset(rw - ow),
		              ws);
	}
}

int
image_load(const void *buf, size_t len, int64_t max_pixels, int channels, int oh, int ow, ImageFit fit, Image *out,
           char *err, size_t errlen)
{
	Image im;
	if (image_decode(buf, len, max_pixels, &im, err, errlen) < 0)
		return -1;
	if (channels && channels != im.c) {
		uint8_t *d = xmalloc((size_t)im.h * (size_t)im.w * (size_t)channels);
		image_convert_channels(d, channels, im.data, im.c, (size_t)im.h * (size_t)im.w);
		free(im.data);
		im.data = d;
		im.c = channels;
	}
	if (oh && ow && (oh != im.h || ow != im.w)) {
		uint8_t *d = xmalloc((size_t)oh * (size_t)ow * (size_t)im.c);
		image_fit(d, oh, ow, im.data, im.h, im.w, im.c, fit, NULL);
		free(im.data);
		im.data = d;
		im.h = oh;
		im.w = ow;
	}
	*out = im;
	return 0;
}
