/* simsheet: see simsheet.h. */
#include "eval/simsheet.h"

#include <stdio.h>
#include <string.h>

#include "eval/plot.h"
#include "io/png_write.h"

static int
cell_side(int side)
{
	return side * sheet_upscale_factor(side, SIMSHEET_TARGET);
}

void
simsheet_size(int rows, int cols, int side, int *W, int *H)
{
	int S = cell_side(side);
	*W = SIMSHEET_GAP + cols * (S + SIMSHEET_GAP) + (cols > 1 ? SIMSHEET_SEP : 0);
	*H = SIMSHEET_GAP + rows * (S + SIMSHEET_TEXT_H + SIMSHEET_GAP);
}

static int
is_blank(const SimSheetCell *c)
{
	return !c->px && !c->h && !c->text[0][0] && !c->text[1][0];
}

int
simsheet_write(const char *path, const SimSheetCell *cells, int rows, int cols, char *err, size_t errlen)
{
	const PlotRgb bg = { 34, 34, 34 }, fg = { 230, 230, 230 }, none = { 90, 90, 90 };
	int side = 1, S, f, W, H, rc;
	PlotCanvas cv;
	for (int i = 0; i < rows * cols; i++) {
		if (cells[i].px && cells[i].h > side)
			side = cells[i].h;
		if (cells[i].px && cells[i].w > side)
			side = cells[i].w;
	}
	f = sheet_upscale_factor(side, SIMSHEET_TARGET);
	S = cell_side(side);
	simsheet_size(rows, cols, side, &W, &H);
	plot_canvas_init(&cv, W, H, bg);
	for (int r = 0; r < rows; r++)
		for (int col = 0; col < cols; col++) {
			const SimSheetCell *c = &cells[r * cols + col];
			int x0 = SIMSHEET_GAP + col * (S + SIMSHEET_GAP) + (col > 0 ? SIMSHEET_SEP : 0);
			int y0 = SIMSHEET_GAP + r * (S + SIMSHEET_TEXT_H + SIMSHEET_GAP);
			if (is_blank(c))
				continue;
			if (!c->px) {
				plot_fill_rect(&cv, x0, y0, S, S, none);
				plot_text(&cv, x0 + S / 2 - 5, y0 + S / 2 - 7, "?", fg, 2);
			} else {
				/* centred, enlarged by f */
				int ox = x0 + (S - c->w * f) / 2, oy = y0 + (S - c->h * f) / 2;
				for (int y = 0; y < c->h * f; y++)
					for (int x = 0; x < c->w * f; x++) {
						const uint8_t *p = c->px + ((size_t)(y / f) * (size_t)c->w + (size_t)(x / f)) * (size_t)c->c;
						uint8_t *q = cv.pix + 3 * ((size_t)(oy + y) * (size_t)W + (size_t)(ox + x));
						q[0] = p[0];
						q[1] = c->c == 3 ? p[1] : p[0];
						q[2] = c->c == 3 ? p[2] : p[0];
					}
			}
			for (int l = 0; l < 2; l++) {
				char t[sizeof c->text[l]];
				int fit = (S + SIMSHEET_GAP) / PLOT_GLYPH_W; /* characters that fit under the cell */
				snprintf(t, sizeof t, "%.*s", fit, c->text[l]);
				plot_text(&cv, x0, y0 + S + 3 + 11 * l, t, fg, 1);
			}
		}
	rc = plot_canvas_write(&cv, path, err, errlen);
	plot_canvas_free(&cv);
	return rc;
}
