/* plot: small raster charts for people, drawn into an RGB buffer and
 * written with png_write_u8 (lib/io/png_write.h).
 *
 * Line charts (axes, "nice" 1-2-5 ticks, labels, title, legend) and scatter
 * plots coloured by class (legend with class names), lettered with a
 * built-in 5x7 bitmap font for ASCII 32..126 (other bytes are drawn as '?'),
 * scaled by an integer factor. No fonts, no toolkit, nothing to install.
 *
 * Coordinates are pixels, (0, 0) at the top left. Drawing clips to the
 * canvas, so callers never need to check bounds. Functions that read files
 * return -1 with a message naming the file (and line). */
#ifndef SSL_PLOT_H
#define SSL_PLOT_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint8_t r, g, b;
} PlotRgb;

/* The ink of text and axes, and of secondary text. */
extern const PlotRgb plot_ink, plot_faint;

typedef struct {
	int      W, H;
	uint8_t *pix;  /* (H, W, 3) */
} PlotCanvas;

/* Glyph cell: 5x7 pixels plus one column of spacing, times `scale`. */
#define PLOT_GLYPH_W 6
#define PLOT_GLYPH_H 7
#define PLOT_MAX_SIDE 16384

/* A canvas filled with bg; dies on allocation failure or a side outside
 * [1, PLOT_MAX_SIDE]. */
void plot_canvas_init(PlotCanvas *c, int W, int H, PlotRgb bg);
void plot_canvas_free(PlotCanvas *c);
int  plot_canvas_write(const PlotCanvas *c, const char *path, char *err, size_t errlen);

/* Primitives (clipped). alpha in [0, 1] blends over what is there. */
void plot_fill_rect(PlotCanvas *c, int x, int y, int w, int h, PlotRgb col);
void plot_blend_disc(PlotCanvas *c, double cx, double cy, double r, PlotRgb col, double alpha);
void plot_line(PlotCanvas *c, double x0, double y0, double x1, double y1, PlotRgb col, int width);
/* Text with its top-left corner at (x, y); '\n' is not special. */
void plot_text(PlotCanvas *c, int x, int y, const char *s, PlotRgb col, int scale);
/* Text turned 90 degrees counter-clockwise (reads bottom to top), its
 * bottom-left corner at (x, y). For y-axis labels. */
void plot_text_up(PlotCanvas *c, int x, int y, const char *s, PlotRgb col, int scale);
int  plot_text_width(const char *s, int scale);
/* The glyph rows of byte ch (7 rows of 5 bits, bit 4 = leftmost column;
 * g p q y are drawn two rows lower, so text reaches 9 rows down). */
const uint8_t *plot_glyph(unsigned char ch);

/* Axis ticks at multiples of 1, 2 or 5 times a power of ten covering
 * [lo, hi]: the axis is widened to whole ticks. Returns the tick count
 * (at most PLOT_MAX_TICKS); *step gets the spacing. */
#define PLOT_MAX_TICKS 16
int plot_nice_ticks(double lo, double hi, int target, double *axis_lo, double *axis_hi, double *step);
/* A tick label for value v on an axis with tick spacing step ("0.25",
 * "1500", "3e-04"). */
void plot_format_tick(char *buf, size_t len, double v, double step);

/* The colour of class k of a categorical palette (Tableau 10, then 10
 * lighter variants, then golden-angle hues); k < 0: grey (unknown). */
PlotRgb plot_class_color(int64_t k);

typedef struct {
	const char   *name;     /* legend entry; NULL: not in the legend */
	const double *x, *y;    /* a non-finite y means no value at that x: the
	                         * line joins the finite points around it */
	int64_t       n;
	PlotRgb       color;
	int           width;    /* line width in pixels (>= 1) */
	int           markers;  /* 1: a dot at each finite point */
} PlotSeries;

/* A chart occupies the rectangle (x, y, w, h) of the canvas, margins for
 * title, tick labels and axis labels included. */
typedef struct {
	int         x, y, w, h;
	const char *title, *xlabel, *ylabel;
	int         scale;      /* text scale (1 or 2) */
	int         left;       /* plot area's offset from x (so stacked panels
	                         * line up); 0: fitted to the tick labels */
	int         xfix;       /* 1: the x axis spans [xmin, xmax] (widened to
	                         * whole ticks) whatever the data; 0: fitted */
	double      xmin, xmax;
} PlotPanel;

/* A line chart of ns series, the axes fitted to their finite points. A
 * legend (series with a name) goes in the corner of the plot area with the
 * fewest points under it. With no finite point the panel says "no data". */
void plot_lines(PlotCanvas *c, const PlotPanel *p, const PlotSeries *s, int ns);

/* A scatter plot of n points xy (n, 2), coloured by labels[i] (class index,
 * -1 unknown; labels NULL: one colour), drawn in the given order as
 * translucent discs. The legend (right of the plot area, one line per class
 * present, names[k] or "class k") takes part of the panel's width. */
void plot_scatter(PlotCanvas *c, const PlotPanel *p, const float *xy, const int64_t *labels, int64_t n,
                  int nclasses, char *const *names);

/* The training log of ssl-train: a TSV file whose first line is exactly
 *   step epoch loss lr images_per_s contrastive_top1 monitor_knn_top1
 * (tab-separated) and then one line per logged step (the header line may
 * come again, where a resumed run appended to the log); a cell may be empty
 * (monitor_knn_top1 is, except where the monitor ran). Writes a PNG of
 * PLOT_LOG_W x plot_log_height(panels) pixels, panels stacked over a shared
 * step axis: loss, contrastive top-1, monitor kNN top-1 (only when some row
 * has it; against epoch when it was measured in more than one epoch) and
 * learning rate. Noisy per-step series are drawn light with a smoothed
 * curve (debiased exponential moving average) on top. 0, or -1 with a
 * message ("log.tsv: line 7: field loss: 'x' is not a number"). */
#define PLOT_LOG_W        960
#define PLOT_LOG_HEADER   60
#define PLOT_LOG_PANEL_H  250
int plot_log_height(int panels);
int plot_log_tsv(const char *tsv_path, const char *png_path, char *err, size_t errlen);

/* The 2-D PCA map of embeddings: x (n, d) with labels, nclasses names
 * (may be NULL). Title names `what` (the input) and the explained variance.
 * PLOT_EMBED_W x PLOT_EMBED_H pixels. 0, or -1 with a message. */
#define PLOT_EMBED_W 960
#define PLOT_EMBED_H 720
int plot_embed_pca(const char *png_path, const char *what, const float *x, const int64_t *labels, int64_t n,
                   int d, int nclasses, char *const *names, char *err, size_t errlen);

#endif
