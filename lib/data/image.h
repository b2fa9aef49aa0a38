/* image: decode JPEG, PNG and PNM from memory into uint8 HWC, convert
 * channels, resize.
 *
 * Decoders never exit and never print: libjpeg and libpng error exits are
 * caught (setjmp) inside the wrapper, which frees what it allocated and
 * returns -1 with a message. The pixel count is checked against a limit from
 * the header, before any pixel buffer is allocated (decompression bombs).
 *
 * Channels after decoding: gray and gray+alpha give 1; RGB, RGBA, palette and
 * CMYK give 3. Alpha is dropped (not composited), as PIL's convert("RGB")
 * does. 16-bit samples keep their high byte (PIL does the same for RGB). */
#ifndef SSL_IMAGE_H
#define SSL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* The revision of what decoding, channel conversion and resizing output:
 * bump it with every change that alters a pixel of any image, so that
 * ssl-decode --cache files made before are decoded again (their key holds
 * it, with image_codec_versions). */
#define DECODE_REVISION 1

#define IMAGE_DEFAULT_MAX_PIXELS (INT64_C(64) << 20) /* 64 Mpx */
#define IMAGE_MAX_SIDE 65535

typedef enum { IMAGE_FMT_UNKNOWN, IMAGE_FMT_JPEG, IMAGE_FMT_PNG, IMAGE_FMT_PNM } ImageFormat;

typedef struct {
	int      h, w, c;  /* c is 1 or 3 */
	uint8_t *data;     /* (h, w, c), owned: free() */
} Image;

/* The format from the first bytes (magic numbers), not the file name. */
ImageFormat image_sniff(const void *buf, size_t len);
const char *image_format_name(ImageFormat f);
/* The libjpeg (libjpeg-turbo) and libpng in use, for keys of decoded sets:
 * another library may decode the same bytes to other pixels. */
const char *image_codec_versions(void);
/* 1 when a file name has an image extension we decode (.jpg .jpeg .png .pnm
 * .ppm .pgm .pbm); 2 when it names an image format we do not decode (.gif,
 * .bmp, .webp, .tif, ...); 0 otherwise. Case-insensitive. */
int image_name_kind(const char *name);

/* Decodes buf into out (data malloc'd; the caller frees). max_pixels <= 0
 * means IMAGE_DEFAULT_MAX_PIXELS. On failure returns -1, out->data is NULL
 * and err holds the reason ("truncated JPEG data", "PNG: ..."). */
int image_decode(const void *buf, size_t len, int64_t max_pixels, Image *out, char *err, size_t errlen);

/* Converts n pixels from sc to dc channels (1 or 3): gray to RGB replicates;
 * RGB to gray is ITU-R 601-2 luma, L = (19595 R + 38470 G + 7471 B + 2^15) >> 16,
 * PIL's integer form. dst and src must not overlap unless sc == dc. */
void image_convert_channels(uint8_t *dst, int dc, const uint8_t *src, int sc, size_t n);

/* Resamples a (h, w, c) image to (oh, ow, c). Separable, per axis: area
 * averaging when the axis shrinks (each output pixel is the exact
 * area-weighted mean of the source pixels it covers), bilinear with
 * half-pixel centres when it grows (PyTorch interpolate, align_corners=False),
 * a copy when it stays. Rounds to nearest. ws is scratch of at least
 * image_resize_scratch(h, w, oh, ow, c) bytes (NULL: allocated here). */
size_t image_resize_scratch(int h, int w, int oh, int ow, int c);
void image_resize(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w, int c, void *ws);

/* How an image meets an (oh, ow) of another aspect ratio:
 *   stretch  resize to (oh, ow) (image_resize): the aspect ratio is lost;
 *   crop     resize so that the image covers (oh, ow), the long side as
 *            int(short_out * long / short), then cut the centre: torchvision
 *            Resize + CenterCrop (offsets int(round(d / 2.0)), halves to even);
 *   pad      resize so that the image fits inside (oh, ow), each side rounded
 *            to nearest and at least 1, centred (the extra pixel of an odd
 *            margin at the bottom / right), the margins IMAGE_PAD_FILL.
 * Resampling as image_resize; ws is scratch of at least image_fit_scratch()
 * bytes, or NULL. */
typedef enum { IMAGE_FIT_STRETCH, IMAGE_FIT_CROP, IMAGE_FIT_PAD, IMAGE_FIT_N } ImageFit;
#define IMAGE_PAD_FILL 0   /* black, torchvision Pad's default fill */
extern const char *const image_fit_names[IMAGE_FIT_N];
size_t image_fit_scratch(int h, int w, int oh, int ow, int c, ImageFit fit);
void image_fit(uint8_t *dst, int oh, int ow, const uint8_t *src, int h, int w, int c, ImageFit fit, void *ws);

/* Decode, then convert to `channels` (0: keep) and fit to (oh, ow) (0: keep),
 * leaving the final image in out. */
int image_load(const void *buf, size_t len, int64_t max_pixels, int channels, int oh, int ow, ImageFit fit,
               Image *out, char *err, size_t errlen);

#endif
