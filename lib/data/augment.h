/* augment: the SimCLR image augmentations, matching torchvision's definitions.
 *
 * Images are uint8 HWC with 1 or 3 channels. One view is produced by
 *   RandomResizedCrop -> RandomHorizontalFlip -> RandomApply(ColorJitter, p)
 *   -> RandomGrayscale -> RandomApply(GaussianBlur, p) -> RandomSolarize
 * as in SimCLR (Chen et al. 2020, appendix A) and torchvision 0.14
 * (https://pytorch.org/vision/0.14/transforms.html). Every random decision of
 * a view comes from rng_for(seed, epoch, id, view), drawn in one fixed order
 * whatever the probabilities are, so the output depends only on that key.
 *
 * Numerics (checked against torchvision by tests/check_augment.c):
 * - crop + resize: bilinear with PIL's antialiasing (the triangle filter is
 *   widened by the scale factor when shrinking; weights are renormalised at
 *   the crop border), separable, in float; rounded to nearest.
 * - ColorJitter follows torchvision's tensor math on uint8 bit for bit: each
 *   op blends in float32 and truncates to uint8; contrast and saturation
 *   blend with torchvision's truncated gray 0.2989 R + 0.587 G + 0.114 B (its
 *   mean for contrast); hue goes through _rgb2hsv/_hsv2rgb. Saturation and
 *   hue leave 1-channel images alone (as torchvision); callers that want an
 *   error check it first.
 * - RandomGrayscale is PIL's convert("L"), as on the PIL images SimCLR
 *   pipelines use: the rounded ITU-R 601-2 luma (299 R + 587 G + 114 B) / 1000.
 * - Gaussian blur: torchvision's kernel, reflect padding, rounded.
 * The kernels never allocate except through AugmentScratch, which only grows. */
#ifndef SSL_AUGMENT_H
#define SSL_AUGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"

#define AUGMENT_MAX_SIDE  16384   /* input and output sides */
#define AUGMENT_MAX_VIEWS 64

enum { JITTER_BRIGHTNESS, JITTER_CONTRAST, JITTER_SATURATION, JITTER_HUE };

typedef struct {
	char   recipe[16];
	int    out_h, out_w;           /* 0: keep the input size (recipe none only) */
	int    random_crop;            /* 0: deterministic centre crop to the output aspect + resize */
	double scale_min, scale_max;   /* crop area fraction, 0 < min <= max <= 1 */
	double ratio_min, ratio_max;   /* crop aspect w/h, 0 < min <= max */
	double flip_p;
	double brightness, contrast, saturation, hue; /* jitter strengths; 0 turns one off */
	double jitter_p;
	double gray_p;
	double blur_p;
	double blur_sigma_min, blur_sigma_max;
	double solarize_p;
	int    solarize_threshold;     /* pixels >= threshold are inverted */
	int    views;
} AugmentParams;

/* Fills p with recipe `name` (cifar stl10 imagenet photo mnist none); -1 if unknown. */
int augment_recipe(AugmentParams *p, const char *name);
/* Checks ranges and consistency; -1 with a message naming the option. */
int augment_params_check(const AugmentParams *p, char *err, size_t errlen);
/* Checks an input image against p: 1 or 3 channels, saturation/hue need 3,
 * the deterministic path does not enlarge. Sets the output size. -1 with a message. */
int augment_check_input(const AugmentParams *p, int H, int W, int C, int *out_h, int *out_w, char *err,
                        size_t errlen);

typedef struct {
	int top, left, height, width;
} CropBox;

/* torchvision RandomResizedCrop.get_params: 10 attempts with area fraction
 * uniform in [smin, smax) and log-uniform aspect ratio, then the centre-crop
 * fallback. *fallback (may be NULL) is set to 1 when the fallback was used. */
CropBox augment_crop_sample(Rng *r, int H, int W, double smin, double smax, double rmin, double rmax,
                            int *fallback);
/* The largest centred box of the output's aspect ratio. */
CropBox augment_crop_center(int H, int W, int out_h, int out_w);

/* Every random decision of one view. */
typedef struct {
	CropBox box;
	int     flip;
	int     njitter;       /* ops in order[] that run (0: jitter not applied) */
	int     order[4];      /* JITTER_* in the order they run */
	double  bright, contrast, saturation, hue;
	int     gray;
	int     blur;
	float   sigma;
	int     solarize;
} ViewPlan;

/* Draws the plan of one view from r for an H x W input. */
void augment_plan(ViewPlan *v, const AugmentParams *p, int H, int W, Rng *r);

/* Per-thread workspace: grows as needed, never shrinks. Zero-initialise. */
typedef struct {
	float  *planes;  /* the view being made, (C, H, W) float levels */
	size_t  pcap;    /* floats */
	float  *buf;     /* temporaries of one step */
	size_t  cap;
	struct ResampleCache *cache; /* resampling weights by (in, out, flip) */
} AugmentScratch;

void augment_scratch_free(AugmentScratch *s);

/* One view: out (out_h, out_w, C) from img (H, W, C) following plan v. */
void augment_view(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, int out_h,
                  int out_w, const ViewPlan *v, const AugmentParams *p);
/* All views of one record: out (views, out_h, out_w, C); view k uses
 * rng_for(seed, epoch, id, k). Sizes from augment_check_input. */
void augment_record(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, int out_h,
                    int out_w, const AugmentParams *p, uint64_t seed, int64_t epoch, int64_t id);

/* ---- the kernels, each one torchvision op ---- */
/* Crops box from img (H,W,C) and resizes it to out (OH,OW,C); flip mirrors x. */
void augment_resize_crop(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, CropBox box,
                         int OH, int OW, int flip);
/* In place on img (npix pixels of C channels); s holds a float copy. */
void augment_brightness(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor);
void augment_contrast(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor);
void augment_saturation(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor);
void augment_hue(uint8_t *img, AugmentScratch *s, size_t npix, int C, double shift); /* shift in [-0.5, 0.5] */
/* ColorJitter with fixed factors: ops order[0..nops) (JITTER_*) in turn. */
void augment_jitter(uint8_t *img, AugmentScratch *s, size_t npix, int C, const int *order, int nops,
                    double bright, double contrast, double saturation, double hue);
/* The same, per pixel and plainly written: the reference for tests. */
void augment_jitter_ref(uint8_t *img, size_t npix, int C, const int *order, int nops, double bright,
                        double contrast, double saturation, double hue);
void augment_grayscale(uint8_t *img, size_t npix, int C);
/* Kernel sizes odd and >= 1; sigma > 0. */
void augment_blur(uint8_t *img, AugmentScratch *s, int H, int W, int C, int kernel, float sigma);
void augment_solarize(uint8_t *img, size_t n, int threshold);
/* The blur kernel size SimCLR uses for a side: 10% of it, made odd, at least 3. */
int augment_blur_kernel(int side);
/* PIL's luma of one RGB pixel. */
static inline uint8_t
augment_luma(const uint8_t *px)
{
	return (uint8_t)((px[0] * 19595u + px[1] * 38470u + px[2] * 7471u + 0x8000u) >> 16);
}

#endif
