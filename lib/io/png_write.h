/* png_write: write uint8 images as PNG (libpng), and lay out contact sheets.
 *
 * For pictures meant for people (ssl-augment --preview, plot tools); the
 * streams never carry PNG. Errors are returned as -1 with a message. */
#ifndef SSL_PNG_WRITE_H
#define SSL_PNG_WRITE_H

#include <stddef.h>
#include <stdint.h>

/* Writes img (H, W, C) to path; C = 1 (gray), 3 (RGB) or 4 (RGBA). The file
 * is written to a temporary name and renamed, so a failed write leaves none. */
int png_write_u8(const char *path, const uint8_t *img, int H, int W, int C, char *err, size_t errlen);

/* A grid of equal cells on a dark background, RGB. Images smaller than a
 * cell are centred in it; 1-channel images are shown as gray. */
typedef struct {
	int      rows, cols;
	int      cell_h, cell_w;  /* pixels, after upscaling */
	int      gap;             /* pixels between cells and around the sheet */
	int      H, W;            /* the whole sheet */
	uint8_t *pix;             /* (H, W, 3) */
} ContactSheet;

/* Dies on allocation failure or an absurd size (sides are capped at 32768). */
void sheet_init(ContactSheet *s, int rows, int cols, int cell_h, int cell_w, int gap);
/* Puts img (h, w, c), c = 1 or 3, upscaled by an integer factor (nearest
 * neighbour) into cell (row, col), centred; clipped to the cell. */
void sheet_put(ContactSheet *s, int row, int col, const uint8_t *img, int h, int w, int c, int factor);
int  sheet_write(const ContactSheet *s, const char *path, char *err, size_t errlen);
void sheet_free(ContactSheet *s);
/* The integer factor that makes a side of `side` pixels at least `target` (>= 1). */
int  sheet_upscale_factor(int side, int target);

/* A grid of pictures of any sizes, copied in cell by cell, written as one
 * contact sheet: equal cells big enough for the largest picture, every
 * picture enlarged by the same whole factor so that the largest side is at
 * least `target` pixels (ssl-augment --preview: a row per image, the
 * original then its views). Rows after the last one filled are left out. */
typedef struct {
	int h, w, c;    /* 0 x 0: empty */
	uint8_t *pix;   /* (h, w, c), owned */
} GridCell;

typedef struct {
	int       rows, cols;
	GridCell *cells; /* rows * cols */
} PictureGrid;

void grid_init(PictureGrid *g, int rows, int cols);
/* Copies img (h, w, c), c = 1 or 3, into cell (row, col). */
void grid_set(PictureGrid *g, int row, int col, const uint8_t *img, int h, int w, int c);
/* -1 with a message if nothing was set or the file cannot be written. */
int  grid_write_png(const PictureGrid *g, const char *path, int target, char *err, size_t errlen);
void grid_free(PictureGrid *g);

#endif
