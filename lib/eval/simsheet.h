/* simsheet: a contact sheet of similar images for people to judge at a
 * glance (ssl-similar --sheet): a grid of cells, each an image enlarged by
 * a whole factor (nearest neighbour) with up to two lines of text under it;
 * the first column (the queries) is set apart from the rest by a wider gap.
 *
 * Layout, in pixels: every cell is S x S with S = the largest image side
 * times f = sheet_upscale_factor(largest side, SIMSHEET_TARGET); under it a
 * text band of SIMSHEET_TEXT_H; cells are SIMSHEET_GAP apart, with a margin
 * of SIMSHEET_GAP around all and SIMSHEET_SEP more after column 0. */
#ifndef SSL_SIMSHEET_H
#define SSL_SIMSHEET_H

#include <stddef.h>
#include <stdint.h>

#define SIMSHEET_TARGET 64   /* the largest image side is enlarged to at least this */
#define SIMSHEET_GAP    6
#define SIMSHEET_SEP    12
#define SIMSHEET_TEXT_H 24   /* two lines of the 5x7 font */

typedef struct {
	const uint8_t *px;       /* (h, w, c), c = 1 or 3; NULL: a missing image (a grey cell with "?") */
	int            h, w, c;
	char           text[2][40];  /* cut to the characters that fit under the cell */
} SimSheetCell;

/* The sheet's size for rows x cols cells whose largest image side is side. */
void simsheet_size(int rows, int cols, int side, int *W, int *H);
/* Draws cells (rows, cols), row-major (an all-zero cell is left blank) and
 * writes the PNG atomically. 0, or -1 with a message naming path in err. */
int simsheet_write(const char *path, const SimSheetCell *cells, int rows, int cols, char *err, size_t errlen);

#endif
