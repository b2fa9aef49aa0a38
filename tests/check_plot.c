/* Tests for lib/eval/plot, lib/eval/pca and the ssl-plot tool. Pictures are read back
 * with libpng and checked for size and for what they claim to show: each
 * series' colour in its own panel, class colours present or absent, lines
 * going the right way, glyphs drawn bit for bit. */
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pca.h"
#include "eval/plot.h"
#include "base/rng.h"
#include "io/stream.h"
#include "testutil.h"
#include "base/util.h"

typedef struct {
	int      w, h;
	uint8_t *rgb;  /* (h, w, 3) */
} Png;

static void
png_load(Png *p, const char *path)
{
	png_image img;
	memset(&img, 0, sizeof img);
	img.version = PNG_IMAGE_VERSION;
	ck_assert_msg(png_image_begin_read_from_file(&img, path), "%s: %s", path, img.message);
	img.format = PNG_FORMAT_RGB;
	p->w = (int)img.width;
	p->h = (int)img.height;
	p->rgb = malloc(PNG_IMAGE_SIZE(img));
	ck_assert_ptr_nonnull(p->rgb);
	ck_assert_msg(png_image_finish_read(&img, NULL, p->rgb, 0, NULL), "%s: %s", path, img.message);
}

/* Pixels of exactly colour c inside rows [y0, y1). */
static int64_t
count_color(const Png *p, PlotRgb c, int y0, int y1)
{
	int64_t n = 0;
	for (int y = y0 < 0 ? 0 : y0; y < y1 && y < p->h; y++)
		for (int x = 0; x < p->w; x++) {
			const uint8_t *q = p->rgb + 3 * ((size_t)y * p->w + x);
			n += q[0] == c.r && q[1] == c.g && q[2] == c.b;
		}
	return n;
}

/* ---- font and text */

START_TEST(test_glyphs)
{
	static const uint8_t A[7] = { 0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11 };
	ck_assert_int_eq(memcmp(plot_glyph('A'), A, 7), 0);
	ck_assert_ptr_eq(plot_glyph(0x07), plot_glyph('?'));
	ck_assert_ptr_eq(plot_glyph(0xe9), plot_glyph('?'));
	/* every printable glyph but space has ink, and no two are the same */
	for (int c = 33; c <= 126; c++) {
		int ink = 0;
		for (int r = 0; r < 7; r++) {
			ck_assert_int_eq(plot_glyph((unsigned char)c)[r] & ~0x1f, 0);
			ink |= plot_glyph((unsigned char)c)[r];
		}
		ck_assert_msg(ink, "glyph %c is empty", c);
		for (int d = 32; d < c; d++)
			ck_assert_msg(memcmp(plot_glyph((unsigned char)c), plot_glyph((unsigned char)d), 7) != 0,
			              "glyphs %c and %c are the same", c, d);
	}
	ck_assert_int_eq(plot_text_width("", 2), 0);
	ck_assert_int_eq(plot_text_width("ab", 1), 11);
	ck_assert_int_eq(plot_text_width("ab", 2), 22);
}
END_TEST

START_TEST(test_text_pixels)
{
	PlotCanvas c;
	const PlotRgb bg = { 255, 255, 255 }, fg = { 10, 20, 30 };
	for (int scale = 1; scale <= 3; scale++) {
		plot_canvas_init(&c, 40, 30, bg);
		plot_text(&c, 3, 2, "H", fg, scale);
		const uint8_t *g = plot_glyph('H');
		for (int y = 0; y < c.H; y++)
			for (int x = 0; x < c.W; x++) {
				int gx = (x - 3) / scale, gy = (y - 2) / scale;
				int on = x >= 3 && y >= 2 && gx < 5 && gy < 7 && (g[gy] & (0x10 >> gx));
				const uint8_t *q = c.pix + 3 * (y * c.W + x);
				ck_assert_msg(q[0] == (on ? fg.r : bg.r), "scale %d pixel %d,%d", scale, x, y);
			}
		plot_canvas_free(&c);
	}
	/* vertical text: the first glyph sits at the bottom, turned left */
	plot_canvas_init(&c, 20, 40, bg);
	plot_text_up(&c, 2, 30, "L", fg, 1);
	/* 'L' has its vertical bar on the left: turned, it lies along the bottom */
	for (int k = 0; k < 7; k++)
		ck_assert_int_eq(c.pix[3 * ((30 - 1) * c.W + 2 + k)], fg.r);
	plot_canvas_free(&c);
	/* drawing off the canvas is clipped, not a crash */
	plot_canvas_init(&c, 10, 10, bg);
	plot_text(&c, -20, -20, "clipped text", fg, 4);
	plot_text(&c, 8, 8, "W", fg, 4);
	plot_line(&c, -1e9, -1e9, 1e9, 1e9, fg, 3);
	plot_line(&c, NAN, 0, 5, 5, fg, 1);
	plot_blend_disc(&c, -100, 5, 3, fg, 1);
	plot_fill_rect(&c, -5, -5, 100, 2, fg);
	plot_canvas_free(&c);
}
END_TEST

/* ---- ticks */

START_TEST(test_ticks)
{
	static const double ranges[][2] = {
		{ 0, 1 }, { 0.013, 0.087 }, { -3, 1234 }, { 1e-4, 3.4e-4 }, { 5, 5 }, { 0, 0 }, { 7, -2 }, { 1e8, 1.0000001e8 },
		{ -1e-9, 1e-9 }, { 0, 2.5e6 },
	};
	for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
		double lo = ranges[i][0], hi = ranges[i][1], a, b, s;
		int n = plot_nice_ticks(lo, hi, 5, &a, &b, &s);
		double mn = fmin(lo, hi), mx = fmax(lo, hi);
		ck_assert_msg(n >= 2 && n <= PLOT_MAX_TICKS, "range %zu: %d ticks", i, n);
		ck_assert_msg(a <= mn && b >= mx && b > a, "range %zu: [%g, %g] does not cover", i, a, b);
		ck_assert_msg(fabs((b - a) / s - (n - 1)) < 1e-6, "range %zu: ticks do not reach the ends", i);
		double m = s / pow(10, floor(log10(s) + 1e-9));
		ck_assert_msg(fabs(m - 1) < 1e-9 || fabs(m - 2) < 1e-9 || fabs(m - 5) < 1e-9, "range %zu: step %g", i, s);
		ck_assert_msg(fabs(a / s - nearbyint(a / s)) < 1e-6, "range %zu: ticks not at multiples of the step", i);
	}
	double a, b, s;
	ck_assert_int_eq(plot_nice_ticks(0, 1, 5, &a, &b, &s), 6);
	ck_assert(a == 0 && b == 1 && fabs(s - 0.2) < 1e-12);
}
END_TEST

START_TEST(test_tick_labels)
{
	static const struct {
		double v, step;
		const char *want;
	} cases[] = {
		{ 0.25, 0.25, "0.25" }, { 0.5, 0.5, "0.5" }, { 1500, 500, "1500" }, { 0.0003, 5e-5, "3.0e-04" },
		{ 0.00015, 5e-5, "1.5e-04" }, { 0, 5e-5, "0" }, { -0.2, 0.2, "-0.2" }, { 0, 0.2, "0.0" },
		{ 1e-17, 0.2, "0.0" }, { 2e6, 5e5, "2.0e+06" }, { 40, 20, "40" }, { 0.0105, 0.0005, "0.0105" },
	};
	char buf[64];
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		plot_format_tick(buf, sizeof buf, cases[i].v, cases[i].step);
		ck_assert_msg(strcmp(buf, cases[i].want) == 0, "%g step %g: '%s', expected '%s'", cases[i].v, cases[i].step,
		              buf, cases[i].want);
	}
}
END_TEST

START_TEST(test_class_colors)
{
	PlotRgb g = plot_class_color(-1);
	ck_assert(g.r == g.g && g.g == g.b);
	for (int a = 0; a < 40; a++)
		for (int b = 0; b < a; b++) {
			PlotRgb x = plot_class_color(a), y = plot_class_color(b);
			ck_assert_msg(x.r != y.r || x.g != y.g || x.b != y.b, "classes %d and %d share a colour", a, b);
		}
}
END_TEST

/* ---- PCA */

/* Points along three orthogonal axes with spreads 3, 1 and 0.1, rotated and
 * shifted: PCA must find the first two axes. */
START_TEST(test_pca_known_axes)
{
	enum { N = 2000 };
	const double spread[3] = { 3, 1, 0.1 };
	double u[3][3];
	/* an orthonormal basis: rotations about z then x */
	double t1 = 0.7, t2 = -0.4;
	double R[3][3] = {
		{ cos(t1), -sin(t1) * cos(t2), sin(t1) * sin(t2) },
		{ sin(t1), cos(t1) * cos(t2), -cos(t1) * sin(t2) },
		{ 0, sin(t2), cos(t2) },
	};
	for (int k = 0; k < 3; k++)
		for (int j = 0; j < 3; j++)
			u[k][j] = R[j][k];
	float *x = malloc(N * 3 * sizeof *x), *xy = malloc(N * 2 * sizeof *xy);
	double *coef = malloc(N * 3 * sizeof *coef);
	Rng r = rng_for(5, 0, 0, 0);
	for (int i = 0; i < N; i++)
		for (int j = 0; j < 3; j++) {
			double v = 10.0 + j;  /* the offset PCA must remove */
			if (j == 0)
				for (int k = 0; k < 3; k++)
					coef[i * 3 + k] = spread[k] * rng_normal(&r);
			for (int k = 0; k < 3; k++)
				v += coef[i * 3 + k] * u[k][j];
			x[i * 3 + j] = (float)v;
		}
	Pca p;
	char err[256];
	ck_assert_msg(pca_fit(&p, x, N, 3, err, sizeof err) == 0, "%s", err);
	for (int k = 0; k < 2; k++) {
		double dot = 0, norm = 0;
		int jmax = 0;
		for (int j = 0; j < 3; j++) {
			dot += p.axes[k * 3 + j] * u[k][j];
			norm += p.axes[k * 3 + j] * p.axes[k * 3 + j];
			if (fabs(p.axes[k * 3 + j]) > fabs(p.axes[k * 3 + jmax]))
				jmax = j;
		}
		ck_assert_msg(fabs(fabs(dot) - 1) < 1e-3, "axis %d: |dot| = %g", k, fabs(dot));
		ck_assert_msg(fabs(norm - 1) < 1e-5, "axis %d not unit", k);
		ck_assert_msg(p.axes[k * 3 + jmax] > 0, "axis %d: sign convention", k);
	}
	ck_assert_msg(fabs(p.var[0] / 9 - 1) < 0.1 && fabs(p.var[1] - 1) < 0.1, "variances %g %g", p.var[0], p.var[1]);
	ck_assert_msg(fabs(p.total_var / 10.01 - 1) < 0.1, "total %g", p.total_var);
	/* the projection recovers the first two coefficients (up to sign) */
	pca_project(&p, x, N, xy);
	for (int k = 0; k < 2; k++) {
		double sxy = 0, sxx = 0, syy = 0;
		for (int i = 0; i < N; i++) {
			sxy += xy[i * 2 + k] * coef[i * 3 + k];
			sxx += xy[i * 2 + k] * xy[i * 2 + k];
			syy += coef[i * 3 + k] * coef[i * 3 + k];
		}
		ck_assert_msg(fabs(sxy) / sqrt(sxx * syy) > 0.999, "PC%d correlation %g", k + 1, fabs(sxy) / sqrt(sxx * syy));
	}
	/* centred: the projected mean is 0 */
	double m0 = 0;
	for (int i = 0; i < N; i++)
		m0 += xy[i * 2];
	ck_assert_msg(fabs(m0 / N) < 1e-3, "mean %g", m0 / N);
	pca_free(&p);
	free(x);
	free(xy);
	free(coef);
}
END_TEST

START_TEST(test_pca_edges)
{
	Pca p;
	char err[256];
	float x[8 * 50];
	Rng r = rng_for(9, 0, 0, 0);
	for (int i = 0; i < 8 * 50; i++)
		x[i] = (float)rng_normal(&r);
	/* more dimensions than points still works */
	ck_assert_msg(pca_fit(&p, x, 8, 50, err, sizeof err) == 0, "%s", err);
	ck_assert(p.var[0] >= p.var[1] && p.var[1] > 0);
	pca_free(&p);
	ck_assert_int_eq(pca_fit(&p, x, 1, 50, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "at least 2"));
	ck_assert_int_eq(pca_fit(&p, x, 50, 1, err, sizeof err), -1);
	x[7] = NAN;
	ck_assert_int_eq(pca_fit(&p, x, 8, 50, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "non-finite"));
	/* all points equal: zero variance, no failure */
	float same[4 * 3] = { 1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3 };
	ck_assert_msg(pca_fit(&p, same, 4, 3, err, sizeof err) == 0, "%s", err);
	ck_assert(p.var[0] < 1e-10);
	pca_free(&p);
}
END_TEST

/* ---- line charts */

START_TEST(test_lines_direction)
{
	PlotCanvas c;
	const PlotRgb col = { 200, 30, 40 };
	double x[50], y[50];
	for (int i = 0; i < 50; i++) {
		x[i] = i;
		y[i] = i % 10 == 3 ? NAN : 2.0 * i;  /* gaps are bridged */
	}
	plot_canvas_init(&c, 400, 300, (PlotRgb){ 240, 240, 240 });
	PlotPanel p = { 0, 0, 400, 300, "rising", "x", "y", 1, 0, 0, 0, 0 };
	PlotSeries s = { "2x", x, y, 50, col, 2, 0 };
	plot_lines(&c, &p, &s, 1);
	/* centroid of the line's pixels: left half lower on screen than right */
	double yl = 0, yr = 0;
	int64_t nl = 0, nr = 0;
	for (int yy = 0; yy < c.H; yy++)
		for (int xx = 0; xx < c.W; xx++) {
			const uint8_t *q = c.pix + 3 * (yy * c.W + xx);
			if (q[0] != col.r || q[1] != col.g || q[2] != col.b)
				continue;
			if (xx < c.W / 2) {
				yl += yy;
				nl++;
			} else {
				yr += yy;
				nr++;
			}
		}
	ck_assert_int_gt(nl, 50);
	ck_assert_int_gt(nr, 50);
	ck_assert_msg(yl / nl > yr / nr + 50, "the line does not rise: %g vs %g", yl / nl, yr / nr);
	plot_canvas_free(&c);
}
END_TEST

static const char log_header[] = "step\tepoch\tloss\tlr\timages_per_s\tcontrastive_top1\tmonitor_knn_top1\n";

static void
write_log(const char *path, int rows, int monitor)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(log_header, f);
	for (int i = 1; i <= rows; i++) {
		fprintf(f, "%d\t%d\t%.4f\t%.6g\t%.1f\t%.4f\t", i, (i - 1) / 50, 5.0 * exp(-i / 100.0) + 0.1 * sin(i),
		        0.3 * i / rows, 700.0, 1 - exp(-i / 80.0));
		if (monitor && i % 50 == 0)
			fprintf(f, "%.3f", 0.3 + i / 1000.0);
		fputc('\n', f);
	}
	ck_assert_int_eq(fclose(f), 0);
}

static const PlotRgb loss_blue = { 31, 119, 180 }, knn_green = { 44, 160, 44 }, lr_purple = { 148, 103, 189 };

START_TEST(test_log_png)
{
	char err[512];
	Png p;
	const char *tsv = tu_path("log.tsv"), *png = tu_path("log.png");
	write_log(tsv, 300, 1);
	ck_assert_msg(plot_log_tsv(tsv, png, err, sizeof err) == 0, "%s", err);
	png_load(&p, png);
	ck_assert_int_eq(p.w, PLOT_LOG_W);
	ck_assert_int_eq(p.h, plot_log_height(4));
	/* panels from the top: loss, contrastive top-1, monitor, lr */
	int y0 = PLOT_LOG_HEADER, ph = PLOT_LOG_PANEL_H;
	ck_assert_int_gt(count_color(&p, loss_blue, y0, y0 + ph), 300);
	ck_assert_int_eq(count_color(&p, loss_blue, y0 + ph, p.h), 0);
	ck_assert_int_gt(count_color(&p, knn_green, y0 + 2 * ph, y0 + 3 * ph), 100);
	ck_assert_int_eq(count_color(&p, knn_green, 0, y0 + 2 * ph), 0);
	ck_assert_int_gt(count_color(&p, lr_purple, y0 + 3 * ph, p.h), 300);
	free(p.rgb);

	/* no monitor column values: three panels, no green */
	write_log(tsv, 300, 0);
	ck_assert_msg(plot_log_tsv(tsv, png, err, sizeof err) == 0, "%s", err);
	png_load(&p, png);
	ck_assert_int_eq(p.h, plot_log_height(3));
	ck_assert_int_eq(count_color(&p, knn_green, 0, p.h), 0);
	ck_assert_int_gt(count_color(&p, lr_purple, y0 + 2 * ph, p.h), 300);
	free(p.rgb);

	/* a resumed run may append the header again: it is skipped */
	FILE *f = fopen(tsv, "a");
	fprintf(f, "%s301\t6\t0.5\t0.01\t700\t0.9\t0.6\n", log_header);
	fclose(f);
	ck_assert_msg(plot_log_tsv(tsv, png, err, sizeof err) == 0, "%s", err);
	png_load(&p, png);
	ck_assert_int_eq(p.h, plot_log_height(4));
	free(p.rgb);

	/* just the header: still a picture (training has not logged yet) */
	tu_write_file(tsv, log_header, strlen(log_header));
	ck_assert_msg(plot_log_tsv(tsv, png, err, sizeof err) == 0, "%s", err);
	png_load(&p, png);
	ck_assert_int_eq(p.h, plot_log_height(3));
	free(p.rgb);
}
END_TEST

static const struct {
	const char *body;  /* after the header */
	const char *want;
} bad_logs[] = {
	{ "1\t0\tabc\t0.1\t5\t0.5\t\n", "line 2: field loss: 'abc' is not a number" },
	{ "1\t0\t1.0\t0.1\t5\t0.5\t\n2\t0\t1.0\t0.1\n", "line 3: 4 fields, expected 7" },
	{ "1\t0\t1.0\t0.1\t5\t0.5\t\t9\n", "line 2: more than 7 fields" },
	{ "\t0\t1.0\t0.1\t5\t0.5\t\n", "line 2: field step: missing" },
	{ "1\t0\t1e999\t0.1\t5\t0.5\t\n", "field loss" },
};

START_TEST(test_log_errors)
{
	char err[512], text[512];
	const char *tsv = tu_path("bad.tsv"), *png = tu_path("bad.png");
	snprintf(text, sizeof text, "%s%s", log_header, bad_logs[_i].body);
	tu_write_file(tsv, text, strlen(text));
	ck_assert_int_eq(plot_log_tsv(tsv, png, err, sizeof err), -1);
	ck_assert_msg(strstr(err, bad_logs[_i].want) && strstr(err, "bad.tsv"), "%s", err);
	FILE *f = fopen(png, "rb");
	ck_assert_ptr_null(f);
}
END_TEST

START_TEST(test_log_not_a_log)
{
	char err[512];
	const char *tsv = tu_path("x.tsv"), *png = tu_path("x.png");
	tu_write_file(tsv, "step\tloss\n1\t2\n", 14);
	ck_assert_int_eq(plot_log_tsv(tsv, png, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "line 1: not an ssl-train log") != NULL, "%s", err);
	tu_write_file(tsv, "", 0);
	ck_assert_int_eq(plot_log_tsv(tsv, png, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "empty") != NULL, "%s", err);
	ck_assert_int_eq(plot_log_tsv(tu_path("none.tsv"), png, err, sizeof err), -1);
	ck_assert_msg(strstr(err, "none.tsv") != NULL, "%s", err);
	write_log(tsv, 10, 0);
	ck_assert_int_eq(plot_log_tsv(tsv, "/nonexistent/dir/x.png", err, sizeof err), -1);
}
END_TEST

/* ---- scatter */

START_TEST(test_embed_png)
{
	enum { N = 600, D = 6 };
	char err[512];
	char *names[5] = { "zero", "one", "two", "three", "four" };
	float *x = malloc(N * D * sizeof *x);
	int64_t lab[N];
	Rng r = rng_for(2, 0, 0, 0);
	for (int i = 0; i < N; i++) {
		lab[i] = i % 3;
		if (i % 50 == 0)
			lab[i] = -1;
		for (int j = 0; j < D; j++)
			x[i * D + j] = (float)(rng_normal(&r) + (j == lab[i] ? 5 : 0));
	}
	const char *png = tu_path("e.png");
	ck_assert_msg(plot_embed_pca(png, "test.emb", x, lab, N, D, 5, names, err, sizeof err) == 0, "%s", err);
	Png p;
	png_load(&p, png);
	ck_assert_int_eq(p.w, PLOT_EMBED_W);
	ck_assert_int_eq(p.h, PLOT_EMBED_H);
	/* legend swatches are solid: each present class shows its exact colour,
	 * absent classes (3, 4) none; unknown labels get grey */
	for (int k = 0; k < 3; k++)
		ck_assert_msg(count_color(&p, plot_class_color(k), 0, p.h) >= 196, "class %d", k);
	for (int k = 3; k < 5; k++)
		ck_assert_msg(count_color(&p, plot_class_color(k), 0, p.h) == 0, "class %d is absent", k);
	ck_assert_int_ge(count_color(&p, plot_class_color(-1), 0, p.h), 196);
	free(p.rgb);
	/* too few points */
	ck_assert_int_eq(plot_embed_pca(png, "tiny", x, lab, 1, D, 5, names, err, sizeof err), -1);
	ck_assert_ptr_nonnull(strstr(err, "tiny"));
	free(x);
}
END_TEST

/* ---- the tool */

static void
write_embeddings(const char *path, int n, int d)
{
	StreamHeader h;
	char *names[3] = { "red", "green", "blue" };
	stream_header_init(&h, STREAM_KIND_EMBEDDINGS);
	stream_header_set_classes(&h, 3, names);
	FILE *fp = fopen(path, "wb");
	ck_assert_ptr_nonnull(fp);
	StreamWriter *w = stream_writer_open(fp, path, &h);
	float *v = malloc((size_t)d * sizeof *v);
	Rng r = rng_for(4, 0, 0, 0);
	for (int i = 0; i < n; i++) {
		Record rec;
		int64_t shape[1] = { d };
		memset(&rec, 0, sizeof rec);
		rec.id = i;
		rec.label = i % 3;
		for (int j = 0; j < d; j++)
			v[j] = (float)(rng_normal(&r) + (j == i % 3 ? 4 : 0));
		rec.ntensors = 1;
		rec.tensors[0] = tensor_view("embedding", DTYPE_F32, 1, shape, v);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(fp);
	free(v);
	stream_header_free(&h);
}

START_TEST(test_tool_curves)
{
	TuResult r;
	Png p;
	write_log(tu_path("l.tsv"), 120, 1);
	tu_run(&r, "ssl-plot curves '%s' -o '%s'", tu_path("l.tsv"), tu_path("c.png"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_uint_eq(r.outlen, 0);
	png_load(&p, tu_path("c.png"));
	ck_assert_int_eq(p.w, PLOT_LOG_W);
	ck_assert_int_eq(p.h, plot_log_height(4));
	free(p.rgb);
	tu_result_free(&r);
	tu_run(&r, "ssl-plot curves '%s' --output '%s'", tu_path("missing.tsv"), tu_path("c.png"));
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "ssl-plot: ") == r.err && strstr(r.err, "missing.tsv"), "%s", r.err);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_tool_embed)
{
	TuResult r;
	Png p;
	char emb[512];
	snprintf(emb, sizeof emb, "%s", tu_path("e.ssl"));  /* tu_path's buffers rotate */
	write_embeddings(emb, 300, 5);
	tu_run(&r, "ssl-plot embed '%s' -o '%s' --max-points 100 --seed 3", emb, tu_path("a.png"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_msg(strstr(r.err, "100 points of 5 dimensions") != NULL, "%s", r.err);
	png_load(&p, tu_path("a.png"));
	ck_assert_int_eq(p.w, PLOT_EMBED_W);
	ck_assert_int_eq(p.h, PLOT_EMBED_H);
	for (int k = 0; k < 3; k++)
		ck_assert_int_ge(count_color(&p, plot_class_color(k), 0, p.h), 196);
	free(p.rgb);
	tu_result_free(&r);
	/* the same seed: the same picture; another seed: another sample (the
	 * title names the input, so both read stdin) */
	tu_run(&r, "ssl-plot embed -o '%s' --max-points 100 --seed 3 < '%s' && "
	       "ssl-plot embed -o '%s' --max-points 100 --seed 3 --quiet < '%s' && cmp '%s' '%s'",
	       tu_path("a.png"), emb, tu_path("b.png"), emb, tu_path("a.png"), tu_path("b.png"));
	ck_assert_msg(r.status == 0, "%s%s", r.out, r.err);
	tu_result_free(&r);
	tu_run(&r, "ssl-plot embed --quiet -o '%s' '%s'", tu_path("b.png"), emb);
	ck_assert_str_eq(r.err, "");
	tu_result_free(&r);
	tu_run(&r, "ssl-plot embed - -o '%s' --max-points 100 --seed 4 < '%s' && ! cmp -s '%s' '%s'", tu_path("b.png"),
	       emb, tu_path("a.png"), tu_path("b.png"));
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_result_free(&r);
	/* not an embeddings stream */
	StreamHeader h;
	stream_header_init(&h, STREAM_KIND_IMAGES);
	FILE *fp = fopen(tu_path("i.ssl"), "wb");
	ck_assert_int_eq(stream_writer_close(stream_writer_open(fp, "i.ssl", &h)), 0);
	fclose(fp);
	stream_header_free(&h);
	tu_run(&r, "ssl-plot embed -o '%s' < '%s'", tu_path("c.png"), tu_path("i.ssl"));
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "'images', expected 'embeddings'") != NULL, "%s", r.err);
	tu_result_free(&r);
	/* fewer than two records */
	write_embeddings(emb, 1, 5);
	tu_run(&r, "ssl-plot embed -o '%s' '%s'", tu_path("c.png"), emb);
	ck_assert_int_eq(r.status, 1);
	ck_assert_msg(strstr(r.err, "at least 2") != NULL, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

static const char *const plot_bad_options[] = {
	"",
	"curves",
	"curves -o x.png",
	"embed",
	"draw x -o y.png",
	"embed -o y.png --max-points 1",
	"embed -o y.png --max-points x",
	"embed -o y.png --seed -1",
	"embed a b -o y.png",
	"embed -o y.png --bogus",
};

START_TEST(test_tool_bad_options)
{
	TuResult r;
	tu_run(&r, "ssl-plot %s < /dev/null", plot_bad_options[_i]);
	ck_assert_msg(r.status == 2, "'%s': status %d", plot_bad_options[_i], r.status);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_msg(strstr(r.err, "ssl-plot: ") == r.err, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

static Suite *
plot_suite(void)
{
	Suite *s = suite_create("plot");
	TCase *tc = tcase_create("draw");
	tcase_add_test(tc, test_glyphs);
	tcase_add_test(tc, test_text_pixels);
	tcase_add_test(tc, test_ticks);
	tcase_add_test(tc, test_tick_labels);
	tcase_add_test(tc, test_class_colors);
	tcase_add_test(tc, test_lines_direction);
	suite_add_tcase(s, tc);
	tc = tcase_create("pca");
	tcase_add_test(tc, test_pca_known_axes);
	tcase_add_test(tc, test_pca_edges);
	suite_add_tcase(s, tc);
	tc = tcase_create("pictures");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_log_png);
	tcase_add_loop_test(tc, test_log_errors, 0, (int)(sizeof bad_logs / sizeof bad_logs[0]));
	tcase_add_test(tc, test_log_not_a_log);
	tcase_add_test(tc, test_embed_png);
	suite_add_tcase(s, tc);
	tc = tcase_create("tool");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_tool_curves);
	tcase_add_test(tc, test_tool_embed);
	tcase_add_loop_test(tc, test_tool_bad_options, 0, (int)(sizeof plot_bad_options / sizeof plot_bad_options[0]));
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(plot_suite)
