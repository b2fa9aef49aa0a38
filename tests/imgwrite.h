/* imgwrite: writers for the tiny images and archives the decode tests build
 * at run time (libjpeg, libpng, libarchive's writer). Every function fails
 * the running Check test on error. Buffers are malloc'd; the caller frees. */
#ifndef SSL_IMGWRITE_H
#define SSL_IMGWRITE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	uint8_t *data;
	size_t   len;
} TwBuf;

/* c = 1 (gray) or 3 (RGB) from HWC pixels; c = 4 writes CMYK as given
 * (Adobe convention: stored values are inverted inks). */
TwBuf tw_jpeg(const uint8_t *px, int h, int w, int c, int quality, int progressive);
/* color_type and bit_depth as in png.h; px holds the samples as PNG wants
 * them (16-bit big-endian). For a palette image px holds indices and
 * palette/npal the RGB entries. interlace: Adam7. */
TwBuf tw_png(const uint8_t *px, int h, int w, int color_type, int bit_depth, const uint8_t *palette, int npal,
             int interlace);
/* P5/P6 (binary) or P2/P3 (ascii) with maxval. */
TwBuf tw_pnm(const uint8_t *px, int h, int w, int c, int ascii);
/* A deterministic test pattern. */
void tw_pattern(uint8_t *px, int h, int w, int c, int seed);

/* An archive member: path and bytes (data NULL: a directory entry). */
typedef struct {
	const char    *path;
	const uint8_t *data;
	size_t         len;
} TwMember;

/* format: "tar" "zip" "7z" "cpio"; filter: NULL, "gz" "bz2" "xz" "zst". */
void tw_archive(const char *path, const char *format, const char *filter, const TwMember *m, int n);
/* The same members as files under dir (created; directories as needed). */
void tw_folder(const char *dir, const TwMember *m, int n);
/* gzip one buffer into a file (libarchive raw writer). */
void tw_gzip_file(const char *path, const void *data, size_t len);

#endif
