/* plot: see plot.h. */
#include "eval/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pca.h"
#include "io/png_write.h"
#include "base/util.h"

/* ---- font: 5x7 glyphs for ASCII 32..126, one byte per row, bit 4 = left */

static const uint8_t font5x7[95][7] = {
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }, /* space */
	{ 0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04 }, /* ! */
	{ 0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00 }, /* " */
	{ 0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A }, /* # */
	{ 0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04 }, /* $ */
	{ 0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03 }, /* % */
	{ 0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D }, /* & */
	{ 0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00 }, /* ' */
	{ 0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02 }, /* ( */
	{ 0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08 }, /* ) */
	{ 0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00 }, /* * */
	{ 0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00 }, /* + */
	{ 0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08 }, /* , */
	{ 0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00 }, /* - */
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C }, /* . */
	{ 0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00 }, /* / */
	{ 0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E }, /* 0 */
	{ 0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E }, /* 1 */
	{ 0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F }, /* 2 */
	{ 0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E }, /* 3 */
	{ 0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02 }, /* 4 */
	{ 0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E }, /* 5 */
	{ 0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E }, /* 6 */
	{ 0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08 }, /* 7 */
	{ 0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E }, /* 8 */
	{ 0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C }, /* 9 */
	{ 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00 }, /* : */
	{ 0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08 }, /* ; */
	{ 0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02 }, /* < */
	{ 0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00 }, /* = */
	{ 0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08 }, /* > */
	{ 0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04 }, /* ? */
	{ 0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E }, /* @ */
	{ 0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11 }, /* A */
	{ 0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E }, /* B */
	{ 0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E }, /* C */
	{ 0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C }, /* D */
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F }, /* E */
	{ 0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10 }, /* F */
	{ 0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F }, /* G */
	{ 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11 }, /* H */
	{ 0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E }, /* I */
	{ 0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C }, /* J */
	{ 0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11 }, /* K */
	{ 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F }, /* L */
	{ 0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11 }, /* M */
	{ 0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11 }, /* N */
	{ 0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, /* O */
	{ 0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10 }, /* P */
	{ 0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D }, /* Q */
	{ 0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11 }, /* R */
	{ 0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E }, /* S */
	{ 0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 }, /* T */
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E }, /* U */
	{ 0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04 }, /* V */
	{ 0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A }, /* W */
	{ 0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11 }, /* X */
	{ 0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04 }, /* Y */
	{ 0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F }, /* Z */
	{ 0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E }, /* [ */
	{ 0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00 }, /* backslash */
	{ 0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E }, /* ] */
	{ 0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00 }, /* ^ */
	{ 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F }, /* _ */
	{ 0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00 }, /* ` */
	{ 0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F }, /* a */
	{ 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E }, /* b */
	{ 0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E }, /* c */
	{ 0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F }, /* d */
	{ 0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E }, /* e */
	{ 0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08 }, /* f */
	{ 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E }, /* g (drops 2 rows) */
	{ 0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11 }, /* h */
	{ 0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E }, /* i */
	{ 0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C }, /* j */
	{ 0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12 }, /* k */
	{ 0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E }, /* l */
	{ 0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11 }, /* m */
	{ 0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11 }, /* n */
	{ 0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E }, /* o */
	{ 0x1E, 0x11, 0x11, 0x11, 0x1E, 0x10, 0x10 }, /* p (drops 2 rows) */
	{ 0x0F, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x01 }, /* q (drops 2 rows) */
	{ 0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10 }, /* r */
	{ 0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E }, /* s */
	{ 0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06 }, /* t */
	{ 0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D }, /* u */
	{ 0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04 }, /* v */
	{ 0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A }, /* w */
	{ 0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11 }, /* x */
	{ 0x11, 0x11, 0x11, 0x11, 0x0F, 0x01, 0x0E }, /* y (drops 2 rows) */
	{ 0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F }, /* z */
	{ 0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02 }, /* { */
	{ 0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04 }, /* | */
	{ 0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08 }, /* } */
	{ 0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00 }, /* ~ */
};

/* Letters with a descender are drawn two rows lower: their seven rows are
 * the x-height and the descender. */
static int
glyph_drop(unsigned char ch)
{
	return ch == 'g' || ch == 'p' || ch == 'q' || ch == 'y' ? 2 : 0;
}

const uint8_t *
plot_glyph(unsigned char ch)
{
	if (ch < 32 || ch > 126)
		ch = '?';
	return font5x7[ch - 32];
}

/* ---- canvas */

void
plot_canvas_init(PlotCanvas *c, int W, int H, PlotRgb bg)
{
	ASSERT(W >= 1 && H >= 1 && W <= PLOT_MAX_SIDE && H <= PLOT_MAX_SIDE);
	c->W = W;
	c->H = H;
	c->pix = xmalloc((size_t)W * (size_t)H * 3);
	for (size_t i = 0; i < (size_t)W * (size_t)H; i++) {
		c->pix[3 * i] = bg.r;
		c->pix[3 * i + 1] = bg.g;
		c->pix[3 * i + 2] = bg.b;
	}
}

void
plot_canvas_free(PlotCanvas *c)
{
	free(c->pix);
	memset(c, 0, sizeof *c);
}

int
plot_canvas_write(const PlotCanvas *c, const char *path, char *err, size_t errlen)
{
	return png_write_u8(path, c->pix, c->H, c->W, 3, err, errlen);
}

static void
put(PlotCanvas *c, int x, int y, PlotRgb col)
{
	if (x < 0 || y < 0 || x >= c->W || y >= c->H)
		return;
	uint8_t *p = c->pix + 3 * ((size_t)y * (size_t)c->W + (size_t)x);
	p[0] = col.r;
	p[1] = col.g;
	p[2] = col.b;
}

static void
blend(PlotCanvas *c, int x, int y, PlotRgb col, double a)
{
	if (x < 0 || y < 0 || x >= c->W || y >= c->H)
		return;
	uint8_t *p = c->pix + 3 * ((size_t)y * (size_t)c->W + (size_t)x);
	p[0] = (uint8_t)lrint(p[0] + a * (col.r - p[0]));
	p[1] = (uint8_t)lrint(p[1] + a * (col.g - p[1]));
	p[2] = (uint8_t)lrint(p[2] + a * (col.b - p[2]));
}

void
plot_fill_rect(PlotCanvas *c, int x, int y, int w, int h, PlotRgb col)
{
	int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
	int x1 = x + w > c->W ? c->W : x + w, y1 = y + h > c->H ? c->H : y + h;
	for (int j = y0; j < y1; j++)
		for (int i = x0; i < x1; i++)
			put(c, i, j, col);
}

static void
stroke_rect(PlotCanvas *c, int x, int y, int w, int h, PlotRgb col)
{
	plot_fill_rect(c, x, y, w, 1, col);
	plot_fill_rect(c, x, y + h - 1, w, 1, col);
	plot_fill_rect(c, x, y, 1, h, col);
	plot_fill_rect(c, x + w - 1, y, 1, h, col);
}

/* Coverage of each pixel is estimated on a 4x4 grid of sub-samples, so
 * small discs look round and overlapping ones stay translucent. */
void
plot_blend_disc(PlotCanvas *c, double cx, double cy, double r, PlotRgb col, double alpha)
{
	int x0 = (int)floor(cx - r), x1 = (int)ceil(cx + r);
	int y0 = (int)floor(cy - r), y1 = (int)ceil(cy + r);
	for (int y = y0; y <= y1; y++) {
		for (int x = x0; x <= x1; x++) {
			int hit = 0;
			for (int sy = 0; sy < 4; sy++)
				for (int sx = 0; sx < 4; sx++) {
					double dx = x + (sx + 0.5) / 4 - cx, dy = y + (sy + 0.5) / 4 - cy;
					hit += dx * dx + dy * dy <= r * r;
				}
			if (hit)
				blend(c, x, y, col, alpha * hit / 16.0);
		}
	}
}

void
plot_line(PlotCanvas *c, double x0, double y0, double x1, double y1, PlotRgb col, int width)
{
	if (!isfinite(x0) || !isfinite(y0) || !isfinite(x1) || !isfinite(y1))
		return;
	/* Keep the step count bounded for wild coordinates: clip to a margin
	 * around the canvas first (a segment entirely outside is dropped). */
	double lo = -64, hix = c->W + 64.0, hiy = c->H + 64.0;
	if ((x0 < lo && x1 < lo) || (y0 < lo && y1 < lo) || (x0 > hix && x1 > hix) || (y0 > hiy && y1 > hiy))
		return;
	double dx = x1 - x0, dy = y1 - y0;
	double len = fabs(dx) > fabs(dy) ? fabs(dx) : fabs(dy);
	if (len > 4.0 * PLOT_MAX_SIDE)
		len = 4.0 * PLOT_MAX_SIDE;
	int steps = (int)ceil(len);
	int w = width < 1 ? 1 : width, off = (w - 1) / 2;
	for (int i = 0; i <= steps; i++) {
		double t = steps ? (double)i / steps : 0;
		int x = (int)lrint(x0 + t * dx) - off, y = (int)lrint(y0 + t * dy) - off;
		for (int j = 0; j < w; j++)
			for (int k = 0; k < w; k++)
				put(c, x + k, y + j, col);
	}
}

int
plot_text_width(const char *s, int scale)
{
	size_t n = strlen(s);
	return n ? (int)n * PLOT_GLYPH_W * scale - scale : 0;
}

void
plot_text(PlotCanvas *c, int x, int y, const char *s, PlotRgb col, int scale)
{
	for (; *s; s++, x += PLOT_GLYPH_W * scale) {
		const uint8_t *g = plot_glyph((unsigned char)*s);
		int drop = glyph_drop((unsigned char)*s);
		for (int row = 0; row < 7; row++)
			for (int bit = 0; bit < 5; bit++)
				if (g[row] & (0x10 >> bit))
					plot_fill_rect(c, x + bit * scale, y + (row + drop) * scale, scale, scale, col);
	}
}

void
plot_text_up(PlotCanvas *c, int x, int y, const char *s, PlotRgb col, int scale)
{
	/* Glyph column `bit` runs up from the baseline; row `row` runs right. */
	for (; *s; s++, y -= PLOT_GLYPH_W * scale) {
		const uint8_t *g = plot_glyph((unsigned char)*s);
		int drop = glyph_drop((unsigned char)*s);
		for (int row = 0; row < 7; row++)
			for (int bit = 0; bit < 5; bit++)
				if (g[row] & (0x10 >> bit))
					plot_fill_rect(c, x + (row + drop) * scale, y - (bit + 1) * scale, scale, scale, col);
	}
}

/* ---- ticks */

int
plot_nice_ticks(double lo, double hi, int target, double *axis_lo, double *axis_hi, double *step)
{
	if (!isfinite(lo) || !isfinite(hi)) {
		lo = 0;
		hi = 1;
	}
	if (hi < lo) {
		double t = lo;
		lo = hi;
		hi = t;
	}
	if (hi - lo <= fabs(hi) * 1e-9 || hi == lo) {
		/* A flat series: open a window around it. */
		double pad = lo != 0 ? fabs(lo) * 0.1 : 1;
		lo -= pad;
		hi += pad;
	}
	if (target < 2)
		target = 2;
	double raw = (hi - lo) / target;
	double mag = pow(10, floor(log10(raw)));
	double norm = raw / mag;
	double s = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
	double a = floor(lo / s + 1e-9) * s, b = ceil(hi / s - 1e-9) * s;
	int n = (int)lrint((b - a) / s) + 1;
	while (n > PLOT_MAX_TICKS) {
		s *= 2;
		a = floor(lo / s + 1e-9) * s;
		b = ceil(hi / s - 1e-9) * s;
		n = (int)lrint((b - a) / s) + 1;
	}
	*axis_lo = a;
	*axis_hi = b;
	*step = s;
	return n;
}

/* Decimals that show multiples of step exactly (0.5 needs one, 0.25 two). */
static int
step_decimals(double step)
{
	int dec = (int)ceil(-log10(step) - 1e-9);
	if (dec < 0)
		dec = 0;
	while (dec < 12) {
		double scaled = step * pow(10, dec);
		if (fabs(scaled - nearbyint(scaled)) <= 1e-6 * scaled)
			break;
		dec++;
	}
	return dec;
}

void
plot_format_tick(char *buf, size_t len, double v, double step)
{
	if (!(step > 0) || !isfinite(v)) {
		snprintf(buf, len, "%g", v);
		return;
	}
	if (fabs(v) < step * 1e-6)
		v = 0;
	int dec = step_decimals(step);
	if (v == 0 && dec > 4) {
		snprintf(buf, len, "0");
		return;
	}
	if (v == 0 || (dec <= 4 && fabs(v) < 1e6)) {
		snprintf(buf, len, "%.*f", dec, v);
		return;
	}
	/* Scientific: as many mantissa decimals as the step needs at this
	 * value's exponent (1.5e-04 next to 1.0e-04, not 1e-04). */
	int e = (int)floor(log10(fabs(v)) + 1e-9);
	int md = step_decimals(step / pow(10, e));
	snprintf(buf, len, "%.*e", md > 6 ? 6 : md, v);
}

/* ---- colours */

static const PlotRgb palette20[20] = {
	{ 31, 119, 180 }, { 255, 127, 14 }, { 44, 160, 44 }, { 214, 39, 40 }, { 148, 103, 189 },
	{ 140, 86, 75 },  { 227, 119, 194 }, { 127, 127, 127 }, { 188, 189, 34 }, { 23, 190, 207 },
	{ 174, 199, 232 }, { 255, 187, 120 }, { 152, 223, 138 }, { 255, 152, 150 }, { 197, 176, 213 },
	{ 196, 156, 148 }, { 247, 182, 210 }, { 199, 199, 199 }, { 219, 219, 141 }, { 158, 218, 229 },
};

PlotRgb
plot_class_color(int64_t k)
{
	if (k < 0)
		return (PlotRgb){ 160, 160, 160 };
	if (k < 20)
		return palette20[k];
	/* Golden-angle hues at fixed saturation and value. */
	double h = fmod((double)k * 137.50776, 360.0) / 60.0, s = 0.65, v = 0.8;
	double f = h - floor(h), p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
	double r, g, b;
	switch ((int)h % 6) {
	case 0: r = v, g = t, b = p; break;
	case 1: r = q, g = v, b = p; break;
	case 2: r = p, g = v, b = t; break;
	case 3: r = p, g = q, b = v; break;
	case 4: r = t, g = p, b = v; break;
	default: r = v, g = p, b = q; break;
	}
	return (PlotRgb){ (uint8_t)lrint(255 * r), (uint8_t)lrint(255 * g), (uint8_t)lrint(255 * b) };
}

/* ---- axes */

const PlotRgb plot_ink = { 40, 40, 40 }, plot_faint = { 110, 110, 110 };
static const PlotRgb grid = { 228, 228, 228 }, frame = { 120, 120, 120 }, white = { 255, 255, 255 };

typedef struct {
	int    px, py, pw, ph;       /* plot area */
	double xlo, xhi, ylo, yhi;
} Axes;

static double
ax_x(const Axes *a, double x)
{
	return a->px + (x - a->xlo) / (a->xhi - a->xlo) * (a->pw - 1);
}

static double
ax_y(const Axes *a, double y)
{
	return a->py + a->ph - 1 - (y - a->ylo) / (a->yhi - a->ylo) * (a->ph - 1);
}

/* Lays out the panel (title, tick labels, axis labels) around the plot area
 * for data in [xmin, xmax] x [ymin, ymax], draws grid, frame and labels, and
 * fills *a. right_reserve: pixels kept free at the right (a legend). */
static void
draw_axes(PlotCanvas *c, const PlotPanel *p, double xmin, double xmax, double ymin, double ymax,
          int right_reserve, Axes *a)
{
	int s = p->scale < 1 ? 1 : p->scale;
	int th = PLOT_GLYPH_H * s;
	double xs, ys;
	int nx = plot_nice_ticks(xmin, xmax, 6, &a->xlo, &a->xhi, &xs);
	int ny = plot_nice_ticks(ymin, ymax, 5, &a->ylo, &a->yhi, &ys);
	char buf[64];
	int ytw = 0;
	for (int i = 0; i < ny; i++) {
		plot_format_tick(buf, sizeof buf, a->ylo + i * ys, ys);
		int w = plot_text_width(buf, s);
		ytw = w > ytw ? w : ytw;
	}
	int left = 6 + (p->ylabel ? th + 8 : 0) + ytw + 8;
	left = p->left > left ? p->left : left;
	int top = (p->title ? th + 14 : 8);
	/* Room on the right for half of the last x tick label. */
	plot_format_tick(buf, sizeof buf, a->xhi, xs);
	int right = plot_text_width(buf, s) / 2 + 8;
	right = right < 16 ? 16 : right;
	int bottom = th + 10 + s + (p->xlabel ? th + 10 : 0) + 4;
	a->px = p->x + left;
	a->py = p->y + top;
	a->pw = p->w - left - right - right_reserve;
	a->ph = p->h - top - bottom;
	if (a->pw < 16)
		a->pw = 16;
	if (a->ph < 16)
		a->ph = 16;

	plot_fill_rect(c, a->px, a->py, a->pw, a->ph, white);
	for (int i = 0; i < nx; i++) {
		double v = a->xlo + i * xs;
		int x = (int)lrint(ax_x(a, v));
		plot_fill_rect(c, x, a->py, 1, a->ph, grid);
		plot_fill_rect(c, x, a->py + a->ph, 1, 4, frame);
		plot_format_tick(buf, sizeof buf, v, xs);
		int w = plot_text_width(buf, s);
		plot_text(c, x - w / 2, a->py + a->ph + 7 + s, buf, plot_ink, s);
	}
	for (int i = 0; i < ny; i++) {
		double v = a->ylo + i * ys;
		int y = (int)lrint(ax_y(a, v));
		plot_fill_rect(c, a->px, y, a->pw, 1, grid);
		plot_fill_rect(c, a->px - 4, y, 4, 1, frame);
		plot_format_tick(buf, sizeof buf, v, ys);
		int w = plot_text_width(buf, s);
		plot_text(c, a->px - 7 - w, y - th / 2, buf, plot_ink, s);
	}
	stroke_rect(c, a->px - 1, a->py - 1, a->pw + 2, a->ph + 2, frame);
	if (p->title)
		plot_text(c, a->px, p->y + 6, p->title, plot_ink, s);
	if (p->xlabel) {
		int w = plot_text_width(p->xlabel, s);
		plot_text(c, a->px + (a->pw - w) / 2, a->py + a->ph + 7 + s + th + 10, p->xlabel, plot_ink, s);
	}
	if (p->ylabel) {
		int w = plot_text_width(p->ylabel, s);
		plot_text_up(c, p->x + 6, a->py + (a->ph + w) / 2, p->ylabel, plot_ink, s);
	}
}

/* ---- line charts */

typedef struct {
	int x, y, w, h;
} Box;

static int
in_box(const Box *b, double x, double y)
{
	return x >= b->x && x < b->x + b->w && y >= b->y && y < b->y + b->h;
}

/* How much of the drawing a legend box at b would hide: points and samples
 * along each segment. */
static int64_t
box_cost(const Box *b, const Axes *a, const PlotSeries *s, int ns)
{
	int64_t cost = 0;
	for (int k = 0; k < ns; k++) {
		double lx = NAN, ly = NAN;
		for (int64_t i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].y[i]) || !isfinite(s[k].x[i]))
				continue;
			double x = ax_x(a, s[k].x[i]), y = ax_y(a, s[k].y[i]);
			cost += in_box(b, x, y);
			if (isfinite(lx))
				for (int t = 1; t < 8; t++)
					cost += in_box(b, lx + (x - lx) * t / 8, ly + (y - ly) * t / 8);
			lx = x;
			ly = y;
		}
	}
	return cost;
}

void
plot_lines(PlotCanvas *c, const PlotPanel *p, const PlotSeries *s, int ns)
{
	double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
	int sc = p->scale < 1 ? 1 : p->scale;
	for (int k = 0; k < ns; k++)
		for (int64_t i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i]))
				continue;
			xmin = fmin(xmin, s[k].x[i]);
			xmax = fmax(xmax, s[k].x[i]);
			ymin = fmin(ymin, s[k].y[i]);
			ymax = fmax(ymax, s[k].y[i]);
		}
	Axes a;
	int empty = !isfinite(xmin);
	if (empty) {
		xmin = ymin = 0;
		xmax = ymax = 1;
	}
	if (p->xfix) {
		xmin = p->xmin;
		xmax = p->xmax;
	}
	draw_axes(c, p, xmin, xmax, ymin, ymax, 0, &a);
	if (empty) {
		const char *msg = "no data";
		plot_text(c, a.px + (a.pw - plot_text_width(msg, sc)) / 2, a.py + a.ph / 2 - 4 * sc, msg, plot_faint, sc);
		return;
	}
	for (int k = 0; k < ns; k++) {
		double lx = NAN, ly = NAN;
		for (int64_t i = 0; i < s[k].n; i++) {
			if (!isfinite(s[k].x[i]) || !isfinite(s[k].y[i]))
				continue;
			double x = ax_x(&a, s[k].x[i]), y = ax_y(&a, s[k].y[i]);
			if (isfinite(lx))
				plot_line(c, lx, ly, x, y, s[k].color, s[k].width);
			else if (!s[k].markers)
				plot_line(c, x, y, x, y, s[k].color, s[k].width);
			if (s[k].markers)
				plot_blend_disc(c, x, y, 2.0 + s[k].width, s[k].color, 1.0);
			lx = x;
			ly = y;
		}
	}

	/* Legend: a swatch and the name of each named series. */
	int th = PLOT_GLYPH_H * sc, rowh = th + 6, nl = 0, tw = 0;
	for (int k = 0; k < ns; k++)
		if (s[k].name) {
			nl++;
			int w = plot_text_width(s[k].name, sc);
			tw = w > tw ? w : tw;
		}
	if (!nl)
		return;
	Box b = { 0, 0, 8 + 24 + 6 + tw + 8, 6 + nl * rowh + 2 };
	Box corners[4] = {
		{ a.px + a.pw - b.w - 6, a.py + 6, b.w, b.h },          /* top right */
		{ a.px + 6, a.py + 6, b.w, b.h },                        /* top left */
		{ a.px + a.pw - b.w - 6, a.py + a.ph - b.h - 6, b.w, b.h }, /* bottom right */
		{ a.px + 6, a.py + a.ph - b.h - 6, b.w, b.h },           /* bottom left */
	};
	int64_t best = -1;
	for (int i = 0; i < 4; i++) {
		int64_t cost = box_cost(&corners[i], &a, s, ns);
		if (best < 0 || cost < best) {
			best = cost;
			b = corners[i];
		}
	}
	plot_fill_rect(c, b.x, b.y, b.w, b.h, white);
	stroke_rect(c, b.x, b.y, b.w, b.h, frame);
	int row = 0;
	for (int k = 0; k < ns; k++) {
		if (!s[k].name)
			continue;
		int y = b.y + 6 + row * rowh;
		plot_line(c, b.x + 8, y + th / 2, b.x + 8 + 24, y + th / 2, s[k].color, s[k].width < 2 ? 2 : s[k].width);
		if (s[k].markers)
			plot_blend_disc(c, b.x + 8 + 12, y + th / 2, 2.0 + s[k].width, s[k].color, 1.0);
		plot_text(c, b.x + 8 + 24 + 6, y, s[k].name, plot_ink, sc);
		row++;
	}
}

/* ---- scatter */

#define LEGEND_NAME_MAX 24

void
plot_scatter(PlotCanvas *c, const PlotPanel *p, const float *xy, const int64_t *labels, int64_t n,
             int nclasses, char *const *names)
{
	int sc = p->scale < 1 ? 1 : p->scale;
	int th = PLOT_GLYPH_H * sc, rowh = th + 6;
	double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1]))
			continue;
		xmin = fmin(xmin, xy[2 * i]);
		xmax = fmax(xmax, xy[2 * i]);
		ymin = fmin(ymin, xy[2 * i + 1]);
		ymax = fmax(ymax, xy[2 * i + 1]);
	}
	if (!isfinite(xmin)) {
		xmin = ymin = 0;
		xmax = ymax = 1;
	}
	/* Which classes are present (and unknown labels), for the legend. */
	int64_t maxlab = -1;
	for (int64_t i = 0; labels && i < n; i++)
		if (labels[i] > maxlab)
			maxlab = labels[i];
	int64_t K = maxlab + 1 > nclasses ? maxlab + 1 : nclasses;
	int64_t *count = labels ? xcalloc((size_t)(K + 1), sizeof *count) : NULL;
	for (int64_t i = 0; labels && i < n; i++)
		count[labels[i] < 0 ? K : labels[i]]++;

	char name[LEGEND_NAME_MAX + 32];
	int legend_w = 0;
	if (labels) {
		for (int64_t k = 0; k <= K; k++) {
			if (!count[k])
				continue;
			if (k == K)
				snprintf(name, sizeof name, "unknown");
			else if (names && k < nclasses)
				snprintf(name, sizeof name, "%.*s", LEGEND_NAME_MAX, names[k]);
			else
				snprintf(name, sizeof name, "class %lld", (long long)k);
			int w = plot_text_width(name, sc);
			legend_w = w > legend_w ? w : legend_w;
		}
		legend_w += th + 8 + 16;
	}
	/* A little air around the points so none sits on the frame. */
	double padx = (xmax - xmin) * 0.03, pady = (ymax - ymin) * 0.03;
	Axes a;
	draw_axes(c, p, xmin - padx, xmax + padx, ymin - pady, ymax + pady, legend_w, &a);
	double r = n > 20000 ? 1.5 : n > 2000 ? 2.0 : 3.0;
	double alpha = n > 2000 ? 0.55 : 0.8;
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(xy[2 * i]) || !isfinite(xy[2 * i + 1]))
			continue;
		PlotRgb col = plot_class_color(labels ? labels[i] : 0);
		plot_blend_disc(c, ax_x(&a, xy[2 * i]), ax_y(&a, xy[2 * i + 1]), r, col, alpha);
	}
	if (!labels)
		return;
	int x = a.px + a.pw + 16, y = a.py, rows = 0, maxrows = a.ph / rowh;
	for (int64_t k = 0; k <= K; k++) {
		if (!count[k])
			continue;
		if (rows == maxrows - 1) {
			int64_t more = 0;
			for (int64_t j = k; j <= K; j++)
				more += count[j] != 0;
			if (more > 1) {
				snprintf(name, sizeof name, "+%lld more", (long long)more);
				plot_text(c, x, y, name, plot_ink, sc);
				break;
			}
		}
		if (k == K)
			snprintf(name, sizeof name, "unknown");
		else if (names && k < nclasses)
			snprintf(name, sizeof name, "%.*s", LEGEND_NAME_MAX, names[k]);
		else
			snprintf(name, sizeof name, "class %lld", (long long)k);
		plot_fill_rect(c, x, y, th, th, plot_class_color(k == K ? -1 : k));
		plot_text(c, x + th + 8, y, name, plot_ink, sc);
		y += rowh;
		rows++;
	}
	free(count);
}

/* ---- embeddings */

int
plot_embed_pca(const char *png_path, const char *what, const float *x, const int64_t *labels, int64_t n,
               int d, int nclasses, char *const *names, char *err, size_t errlen)
{
	Pca pca;
	char msg[256];
	if (pca_fit(&pca, x, n, d, msg, sizeof msg) < 0) {
		snprintf(err, errlen, "%s: %s", what, msg);
		return -1;
	}
	float *xy = xcalloc((size_t)n * 2, sizeof *xy);
	pca_project(&pca, x, n, xy);

	PlotCanvas c;
	plot_canvas_init(&c, PLOT_EMBED_W, PLOT_EMBED_H, (PlotRgb){ 246, 246, 246 });
	char title[320], xl[64], yl[64];
	snprintf(title, sizeof title, "PCA of %.160s: %lld points, %d dims", what, (long long)n, d);
	double tv = pca.total_var > 0 ? pca.total_var : 1;
	snprintf(xl, sizeof xl, "PC1 (%.1f%% of variance)", 100 * pca.var[0] / tv);
	snprintf(yl, sizeof yl, "PC2 (%.1f%% of variance)", 100 * pca.var[1] / tv);
	PlotPanel p = { 0, 0, PLOT_EMBED_W, PLOT_EMBED_H, title, xl, yl, 2, 0, 0, 0, 0 };
	plot_scatter(&c, &p, xy, labels, n, nclasses, names);
	free(xy);
	pca_free(&pca);
	int rc = plot_canvas_write(&c, png_path, err, errlen);
	plot_canvas_free(&c);
	return rc;
}
