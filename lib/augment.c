/* augment: see augment.h. */
#include "augment.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* ------------------------------------------------------------------------ */
/* recipes and checks */

int
augment_recipe(AugmentParams *p, const char *name)
{
	memset(p, 0, sizeof *p);
	snprintf(p->recipe, sizeof p->recipe, "%s", name);
	p->random_crop = 1;
	p->scale_min = 0.08;
	p->scale_max = 1.0;
	p->ratio_min = 3.0 / 4.0;
	p->ratio_max = 4.0 / 3.0;
	p->flip_p = 0.5;
	p->jitter_p = 0.8;
	p->gray_p = 0.2;
	p->blur_sigma_min = 0.1;
	p->blur_sigma_max = 2.0;
	p->solarize_threshold = 128;
	p->views = 2;
	if (strcmp(name, "cifar") == 0) {
		/* SimCLR appendix B.9: colour strength 0.5, no blur at 32 px. */
		p->out_h = p->out_w = 32;
		p->brightness = p->contrast = p->saturation = 0.4;
		p->hue = 0.1;
	} else if (strcmp(name, "stl10") == 0 || strcmp(name, "imagenet") == 0) {
		/* SimCLR appendix A: colour strength 1.0, blur half the time. */
		p->out_h = p->out_w = name[0] == 's' ? 96 : 224;
		p->brightness = p->contrast = p->saturation = 0.8;
		p->hue = 0.2;
		p->blur_p = 0.5;
	} else if (strcmp(name, "mnist") == 0) {
		/* Grayscale data: brightness and contrast only (the reference's fmnist branch). */
		p->out_h = p->out_w = 28;
		p->scale_min = 0.2;
		p->brightness = p->contrast = 0.4;
		p->gray_p = 0;
	} else if (strcmp(name, "none") == 0) {
		/* Evaluation: deterministic, one view, nothing random unless asked for. */
		p->random_crop = 0;
		p->flip_p = p->jitter_p = p->gray_p = 0;
		p->views = 1;
	} else {
		return -1;
	}
	return 0;
}

static int
check_prob(const char *opt, double v, char *err, size_t errlen)
{
	if (!(v >= 0 && v <= 1)) {
		snprintf(err, errlen, "%s: probability %g is not in [0, 1]", opt, v);
		return -1;
	}
	return 0;
}

int
augment_params_check(const AugmentParams *p, char *err, size_t errlen)
{
	if (p->views < 1 || p->views > AUGMENT_MAX_VIEWS) {
		snprintf(err, errlen, "--views: %d is not in [1, %d]", p->views, AUGMENT_MAX_VIEWS);
		return -1;
	}
	if (p->out_h < 0 || p->out_w < 0 || p->out_h > AUGMENT_MAX_SIDE || p->out_w > AUGMENT_MAX_SIDE ||
	    (p->out_h == 0) != (p->out_w == 0) || (p->random_crop && p->out_h == 0)) {
		snprintf(err, errlen, "--size: %dx%d is not a valid output size", p->out_h, p->out_w);
		return -1;
	}
	if (!(p->scale_min > 0 && p->scale_min <= p->scale_max && p->scale_max <= 1)) {
		snprintf(err, errlen, "--scale: %g,%g is not 0 < MIN <= MAX <= 1", p->scale_min, p->scale_max);
		return -1;
	}
	if (!(p->ratio_min > 0 && p->ratio_min <= p->ratio_max && isfinite(p->ratio_max))) {
		snprintf(err, errlen, "--ratio: %g,%g is not 0 < MIN <= MAX", p->ratio_min, p->ratio_max);
		return -1;
	}
	if (!(p->brightness >= 0 && p->contrast >= 0 && p->saturation >= 0 && isfinite(p->brightness) &&
	      isfinite(p->contrast) && isfinite(p->saturation) && p->hue >= 0 && p->hue <= 0.5)) {
		snprintf(err, errlen, "--jitter: %g,%g,%g,%g: brightness, contrast, saturation must be >= 0 "
		         "and hue in [0, 0.5]", p->brightness, p->contrast, p->saturation, p->hue);
		return -1;
	}
	if (check_prob("--flip", p->flip_p, err, errlen) || check_prob("--jitter-p", p->jitter_p, err, errlen) ||
	    check_prob("--gray-p", p->gray_p, err, errlen) || check_prob("--blur-p", p->blur_p, err, errlen) ||
	    check_prob("--solarize-p", p->solarize_p, err, errlen))
		return -1;
	if (!(p->blur_sigma_min > 0 && p->blur_sigma_min <= p->blur_sigma_max && isfinite(p->blur_sigma_max))) {
		snprintf(err, errlen, "--blur-sigma: %g,%g is not 0 < MIN <= MAX", p->blur_sigma_min,
		         p->blur_sigma_max);
		return -1;
	}
	if (p->solarize_threshold < 0 || p->solarize_threshold > 255) {
		snprintf(err, errlen, "--solarize-threshold: %d is not in [0, 255]", p->solarize_threshold);
		return -1;
	}
	return 0;
}

int
augment_check_input(const AugmentParams *p, int H, int W, int C, int *out_h, int *out_w, char *err,
                    size_t errlen)
{
	if (H < 1 || W < 1 || H > AUGMENT_MAX_SIDE || W > AUGMENT_MAX_SIDE) {
		snprintf(err, errlen, "image is %dx%d, sides must be in [1, %d]", H, W, AUGMENT_MAX_SIDE);
		return -1;
	}
	if (C != 1 && C != 3) {
		snprintf(err, errlen, "image has %d channels, expected 1 or 3", C);
		return -1;
	}
	if (C == 1 && p->jitter_p > 0 && (p->saturation > 0 || p->hue > 0)) {
		snprintf(err, errlen, "1-channel image, but saturation and hue jitter need 3 channels "
		         "(use --recipe mnist or --jitter B,C,0,0)");
		return -1;
	}
	*out_h = p->out_h ? p->out_h : H;
	*out_w = p->out_w ? p->out_w : W;
	if (!p->random_crop && (H < *out_h || W < *out_w)) {
		snprintf(err, errlen, "image is %dx%d, smaller than the output %dx%d (recipe none does not enlarge)",
		         H, W, *out_h, *out_w);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------------ */
/* random decisions */

CropBox
augment_crop_sample(Rng *r, int H, int W, double smin, double smax, double rmin, double rmax, int *fallback)
{
	double area = (double)H * W, lr0 = log(rmin), lr1 = log(rmax);
	CropBox b;
	if (fallback)
		*fallback = 0;
	for (int attempt = 0; attempt < 10; attempt++) {
		double target = area * rng_uniform_range(r, smin, smax);
		double ar = exp(rng_uniform_range(r, lr0, lr1));
		/* nearbyint rounds half to even, like Python's round(). */
		double w = nearbyint(sqrt(target * ar)), h = nearbyint(sqrt(target / ar));
		if (w > 0 && w <= W && h > 0 && h <= H) {
			b.height = (int)h;
			b.width = (int)w;
			b.top = (int)rng_below(r, (uint64_t)(H - b.height + 1));
			b.left = (int)rng_below(r, (uint64_t)(W - b.width + 1));
			return b;
		}
	}
	if (fallback)
		*fallback = 1;
	double in_ratio = (double)W / H;
	b.width = W;
	b.height = H;
	if (in_ratio < rmin)
		b.height = (int)nearbyint(W / rmin);
	else if (in_ratio > rmax)
		b.width = (int)nearbyint(H * rmax);
	b.height = b.height < 1 ? 1 : b.height > H ? H : b.height;
	b.width = b.width < 1 ? 1 : b.width > W ? W : b.width;
	b.top = (H - b.height) / 2;
	b.left = (W - b.width) / 2;
	return b;
}

CropBox
augment_crop_center(int H, int W, int out_h, int out_w)
{
	CropBox b = { 0, 0, H, W };
	if ((int64_t)H * out_w > (int64_t)W * out_h) /* taller than the output: trim rows */
		b.height = (int)nearbyint((double)W * out_h / out_w);
	else if ((int64_t)H * out_w < (int64_t)W * out_h)
		b.width = (int)nearbyint((double)H * out_w / out_h);
	b.height = b.height < 1 ? 1 : b.height > H ? H : b.height;
	b.width = b.width < 1 ? 1 : b.width > W ? W : b.width;
	b.top = (H - b.height) / 2;
	b.left = (W - b.width) / 2;
	return b;
}

void
augment_plan(ViewPlan *v, const AugmentParams *p, int H, int W, Rng *r)
{
	/* Every draw happens whatever the probabilities, in this order, so that
	 * switching one op off leaves the other decisions of a view unchanged. */
	memset(v, 0, sizeof *v);
	if (p->random_crop)
		v->box = augment_crop_sample(r, H, W, p->scale_min, p->scale_max, p->ratio_min, p->ratio_max, NULL);
	else if (p->out_h)
		v->box = augment_crop_center(H, W, p->out_h, p->out_w);
	else
		v->box = (CropBox){ 0, 0, H, W };
	v->flip = rng_uniform(r) < p->flip_p;

	int jitter = rng_uniform(r) < p->jitter_p;
	int perm[4] = { JITTER_BRIGHTNESS, JITTER_CONTRAST, JITTER_SATURATION, JITTER_HUE };
	for (int i = 3; i > 0; i--) {
		int j = (int)rng_below(r, (uint64_t)i + 1);
		int t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
	/* ColorJitter's ranges: [max(0, 1 - s), 1 + s] and [-hue, hue]. */
	v->bright = rng_uniform_range(r, fmax(0, 1 - p->brightness), 1 + p->brightness);
	v->contrast = rng_uniform_range(r, fmax(0, 1 - p->contrast), 1 + p->contrast);
	v->saturation = rng_uniform_range(r, fmax(0, 1 - p->saturation), 1 + p->saturation);
	v->hue = rng_uniform_range(r, -p->hue, p->hue);
	const double strength[4] = { p->brightness, p->contrast, p->saturation, p->hue };
	v->njitter = 0;
	for (int i = 0; i < 4 && jitter; i++)
		if (strength[perm[i]] > 0) /* torchvision: a zero strength turns the op off */
			v->order[v->njitter++] = perm[i];

	v->gray = rng_uniform(r) < p->gray_p;
	v->blur = rng_uniform(r) < p->blur_p;
	v->sigma = (float)rng_uniform_range(r, p->blur_sigma_min, p->blur_sigma_max);
	v->solarize = rng_uniform(r) < p->solarize_p;
}

/* ------------------------------------------------------------------------ */
/* scratch */

static float *
scratch_floats(AugmentScratch *s, size_t n)
{
	if (n > s->cap) {
		free(s->buf);
		s->buf = xalloc_aligned(n * sizeof(float));
		s->cap = n;
	}
	return s->buf;
}

static int *
scratch_ints(AugmentScratch *s, size_t n)
{
	if (n > s->icap) {
		s->ibuf = xreallocarray(s->ibuf, n, sizeof(int));
		s->icap = n;
	}
	return s->ibuf;
}

void
augment_scratch_free(AugmentScratch *s)
{
	free(s->buf);
	free(s->ibuf);
	memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ */
/* crop + resize */

static inline uint8_t
round_u8(float v)
{
	v += 0.5f;
	return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/* Clamp and truncate, as torchvision's uint8 casts do. */
static inline float
trunc_level(float v)
{
	return v <= 0 ? 0 : v >= 255 ? 255 : (float)(int)v;
}

static double
triangle(double x)
{
	x = fabs(x);
	return x < 1 ? 1 - x : 0;
}

static int
resample_ksize(int in_size, int out_size)
{
	double fs = (double)in_size / out_size;
	return (int)ceil(fs < 1 ? 1 : fs) * 2 + 1;
}

/* PIL's precompute_coeffs for the bilinear filter: output pixel x covers
 * input [x0, x0 + n) with weights w[x * ksize + k], normalised to sum 1. */
static void
resample_coeffs(float *w, int *bounds, int ksize, int in_size, int out_size)
{
	double scale = (double)in_size / out_size;
	double fs = scale < 1 ? 1 : scale, support = fs, ss = 1.0 / fs;
	for (int x = 0; x < out_size; x++) {
		double center = (x + 0.5) * scale, sum = 0;
		int x0 = (int)(center - support + 0.5), x1 = (int)(center + support + 0.5);
		if (x0 < 0)
			x0 = 0;
		if (x1 > in_size)
			x1 = in_size;
		int n = x1 - x0;
		ASSERT(n >= 1 && n <= ksize);
		float *wx = w + (size_t)x * ksize;
		for (int i = 0; i < n; i++)
			sum += triangle((i + x0 - center + 0.5) * ss);
		for (int i = 0; i < n; i++)
			wx[i] = (float)(sum != 0 ? triangle((i + x0 - center + 0.5) * ss) / sum : 0);
		for (int i = n; i < ksize; i++)
			wx[i] = 0;
		bounds[2 * x] = x0;
		bounds[2 * x + 1] = n;
	}
}

void
augment_resize_crop(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, CropBox box,
                    int OH, int OW, int flip)
{
	ASSERT(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1 &&
	       box.top + box.height <= H && box.left + box.width <= W && (C == 1 || C == 3));
	int kx = resample_ksize(box.width, OW), ky = resample_ksize(box.height, OH);
	size_t row = (size_t)OW * C;
	size_t nw = (size_t)OW * kx + (size_t)OH * ky;
	float *xw = scratch_floats(s, nw + (size_t)box.height * row + row);
	float *yw = xw + (size_t)OW * kx;
	float *tmp = yw + (size_t)OH * ky; /* (box.height, OW, C) */
	float *acc = tmp + (size_t)box.height * row;
	int *xb = scratch_ints(s, 2 * ((size_t)OW + OH));
	int *yb = xb + 2 * (size_t)OW;
	resample_coeffs(xw, xb, kx, box.width, OW);
	resample_coeffs(yw, yb, ky, box.height, OH);

	/* Horizontal pass over the rows of the box (PIL resamples x first). */
	for (int y = 0; y < box.height; y++) {
		const uint8_t *src = img + ((size_t)(box.top + y) * W + box.left) * C;
		float *t = tmp + (size_t)y * row;
		for (int x = 0; x < OW; x++) {
			const float *k = xw + (size_t)x * kx;
			const uint8_t *p = src + (size_t)xb[2 * x] * C;
			int n = xb[2 * x + 1], ox = flip ? OW - 1 - x : x;
			if (C == 3) {
				float a0 = 0, a1 = 0, a2 = 0;
				for (int i = 0; i < n; i++, p += 3) {
					a0 += k[i] * p[0];
					a1 += k[i] * p[1];
					a2 += k[i] * p[2];
				}
				t[3 * ox] = a0;
				t[3 * ox + 1] = a1;
				t[3 * ox + 2] = a2;
			} else {
				float a0 = 0;
				for (int i = 0; i < n; i++)
					a0 += k[i] * p[i];
				t[ox] = a0;
			}
		}
	}
	/* Vertical pass: whole rows at a time, which vectorises. */
	for (int y = 0; y < OH; y++) {
		const float *k = yw + (size_t)y * ky;
		const float *t = tmp + (size_t)yb[2 * y] * row;
		int n = yb[2 * y + 1];
		for (size_t j = 0; j < row; j++)
			acc[j] = k[0] * t[j];
		for (int i = 1; i < n; i++) {
			const float *ti = t + (size_t)i * row;
			float ki = k[i];
			for (size_t j = 0; j < row; j++)
				acc[j] += ki * ti[j];
		}
		uint8_t *o = out + (size_t)y * row;
		for (size_t j = 0; j < row; j++)
			o[j] = round_u8(acc[j]);
	}
}

/* ------------------------------------------------------------------------ */
/* colour */

/* torchvision's rgb_to_grayscale on uint8 tensors, which ColorJitter's
 * contrast and saturation blend with: float32, truncated. (RandomGrayscale on
 * PIL images uses PIL's rounded luma instead: augment_luma.) */
static inline float
luma_tv(float r, float g, float b)
{
	return (float)(int)(0.2989f * r + 0.587f * g + 0.114f * b);
}

/* torchvision _rgb2hsv, hue shift modulo 1, _hsv2rgb, on [0, 255] levels. */
static inline void
hue_px(float *pr, float *pg, float *pb, float shift)
{
	float r = *pr / 255.0f, g = *pg / 255.0f, b = *pb / 255.0f;
	float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
	int eqc = maxc == minc;
	float cr = maxc - minc;
	float s = cr / (eqc ? 1.0f : maxc);
	float crd = eqc ? 1.0f : cr;
	float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
	float h;
	if (maxc == r)
		h = bc - gc;
	else if (maxc == g)
		h = 2.0f + rc - bc;
	else
		h = 4.0f + gc - rc;
	h = fmodf(h / 6.0f + 1.0f, 1.0f);
	h += shift;
	h -= floorf(h);
	float v = maxc, h6 = h * 6.0f, fi = floorf(h6), f = h6 - fi;
	int i = (int)fi % 6;
	float p = fminf(fmaxf(v * (1.0f - s), 0.0f), 1.0f);
	float q = fminf(fmaxf(v * (1.0f - s * f), 0.0f), 1.0f);
	float t = fminf(fmaxf(v * (1.0f - s * (1.0f - f)), 0.0f), 1.0f);
	switch (i) {
	case 0: r = v; g = t; b = p; break;
	case 1: r = q; g = v; b = p; break;
	case 2: r = p; g = v; b = t; break;
	case 3: r = p; g = q; b = v; break;
	case 4: r = t; g = p; b = v; break;
	default: r = v; g = p; b = q; break;
	}
	*pr = trunc_level(r * 255.0f);
	*pg = trunc_level(g * 255.0f);
	*pb = trunc_level(b * 255.0f);
}

/* Runs ops[0..n) on one pixel; every op ends on a uint8 level, as in torchvision. */
static inline void
jitter_px(float *px, int C, const int *ops, int n, const float *fac, const float *rest, float mean)
{
	for (int k = 0; k < n; k++) {
		float f = fac[ops[k]], g = rest[ops[k]];
		switch (ops[k]) {
		case JITTER_BRIGHTNESS:
			for (int c = 0; c < C; c++)
				px[c] = trunc_level(f * px[c]);
			break;
		case JITTER_CONTRAST:
			for (int c = 0; c < C; c++)
				px[c] = trunc_level(f * px[c] + g * mean);
			break;
		case JITTER_SATURATION:
			if (C == 3) {
				float l = luma_tv(px[0], px[1], px[2]);
				for (int c = 0; c < 3; c++)
					px[c] = trunc_level(f * px[c] + g * l);
			}
			break;
		default:
			if (C == 3)
				hue_px(&px[0], &px[1], &px[2], f);
			break;
		}
	}
}

/* One pass of ops over the image; returns the mean luma of the result when
 * want_mean (what contrast blends with). */
static float
jitter_pass(uint8_t *img, size_t npix, int C, const int *ops, int n, const float *fac, const float *rest,
            float mean, int want_mean)
{
	double sum = 0;
	if (C == 3) {
		for (size_t i = 0; i < npix; i++) {
			uint8_t *p = img + 3 * i;
			float px[3] = { p[0], p[1], p[2] };
			jitter_px(px, 3, ops, n, fac, rest, mean);
			p[0] = (uint8_t)px[0];
			p[1] = (uint8_t)px[1];
			p[2] = (uint8_t)px[2];
			if (want_mean)
				sum += luma_tv(px[0], px[1], px[2]);
		}
	} else {
		for (size_t i = 0; i < npix; i++) {
			float px = img[i];
			jitter_px(&px, 1, ops, n, fac, rest, mean);
			img[i] = (uint8_t)px;
			sum += img[i];
		}
	}
	return npix ? (float)(sum / (double)npix) : 0.0f;
}

static float
image_mean_luma(const uint8_t *img, size_t npix, int C)
{
	/* Integer sums are exact; 2^64 / 255 pixels is far beyond any image. */
	uint64_t sum = 0;
	if (C == 3)
		for (size_t i = 0; i < npix; i++)
			sum += (uint64_t)luma_tv(img[3 * i], img[3 * i + 1], img[3 * i + 2]);
	else
		for (size_t i = 0; i < npix; i++)
			sum += img[i];
	return npix ? (float)((double)sum / (double)npix) : 0.0f;
}

void
augment_jitter(uint8_t *img, size_t npix, int C, const int *order, int nops, double bright, double contrast,
               double saturation, double hue)
{
	/* torch blends as ratio * img + (1 - ratio) * other, each scalar in float32. */
	const float fac[4] = { (float)bright, (float)contrast, (float)saturation, (float)hue };
	const float rest[4] = { (float)(1 - bright), (float)(1 - contrast), (float)(1 - saturation), 0 };
	int split = nops; /* contrast needs the mean of the image it gets: split there */
	for (int k = 0; k < nops; k++)
		if (order[k] == JITTER_CONTRAST)
			split = k;
	float mean = 0;
	if (split == nops) {
		jitter_pass(img, npix, C, order, nops, fac, rest, 0, 0);
		return;
	}
	if (split > 0)
		mean = jitter_pass(img, npix, C, order, split, fac, rest, 0, 1);
	else
		mean = image_mean_luma(img, npix, C);
	jitter_pass(img, npix, C, order + split, nops - split, fac, rest, mean, 0);
}

void
augment_brightness(uint8_t *img, size_t npix, int C, double factor)
{
	int op = JITTER_BRIGHTNESS;
	augment_jitter(img, npix, C, &op, 1, factor, 1, 1, 0);
}

void
augment_contrast(uint8_t *img, size_t npix, int C, double factor)
{
	int op = JITTER_CONTRAST;
	augment_jitter(img, npix, C, &op, 1, 1, factor, 1, 0);
}

void
augment_saturation(uint8_t *img, size_t npix, int C, double factor)
{
	int op = JITTER_SATURATION;
	augment_jitter(img, npix, C, &op, 1, 1, 1, factor, 0);
}

void
augment_hue(uint8_t *img, size_t npix, int C, double shift)
{
	int op = JITTER_HUE;
	augment_jitter(img, npix, C, &op, 1, 1, 1, 1, shift);
}

void
augment_grayscale(uint8_t *img, size_t npix, int C)
{
	if (C != 3)
		return;
	for (size_t i = 0; i < npix; i++) {
		uint8_t *p = img + 3 * i;
		p[0] = p[1] = p[2] = augment_luma(p);
	}
}

void
augment_solarize(uint8_t *img, size_t n, int threshold)
{
	for (size_t i = 0; i < n; i++)
		if (img[i] >= threshold)
			img[i] = (uint8_t)(255 - img[i]);
}

/* ------------------------------------------------------------------------ */
/* blur */

int
augment_blur_kernel(int side)
{
	int k = (int)(0.1 * side);
	k |= 1;
	return k < 3 ? 3 : k;
}

/* torch "reflect" padding (edge not repeated), for any index. */
static inline int
reflect(int i, int n)
{
	if (n == 1)
		return 0;
	int period = 2 * (n - 1);
	i %= period;
	if (i < 0)
		i += period;
	return i < n ? i : period - i;
}

void
augment_blur(uint8_t *img, AugmentScratch *s, int H, int W, int C, int kernel, float sigma)
{
	ASSERT(kernel >= 1 && kernel % 2 == 1 && sigma > 0);
	int pad = kernel / 2;
	size_t row = (size_t)W * C, prow = (size_t)(W + 2 * pad) * C;
	float *w = scratch_floats(s, (size_t)kernel + (size_t)H * row + prow + row);
	float *tmp = w + kernel;              /* (H, W, C) after the horizontal pass */
	float *padded = tmp + (size_t)H * row; /* one input row with its reflected border */
	float *acc = padded + prow;

	/* torchvision _get_gaussian_kernel1d, in float32 like torch. */
	float half = (kernel - 1) * 0.5f, sum = 0;
	for (int i = 0; i < kernel; i++) {
		float x = kernel > 1 ? -half + (float)i * (2 * half / (float)(kernel - 1)) : 0;
		float z = x / sigma;
		w[i] = expf(-0.5f * z * z);
		sum += w[i];
	}
	for (int i = 0; i < kernel; i++)
		w[i] /= sum;

	for (int y = 0; y < H; y++) {
		const uint8_t *src = img + (size_t)y * row;
		for (int x = -pad; x < W + pad; x++) {
			const uint8_t *p = src + (size_t)reflect(x, W) * C;
			for (int c = 0; c < C; c++)
				padded[(size_t)(x + pad) * C + c] = p[c];
		}
		float *t = tmp + (size_t)y * row;
		for (size_t j = 0; j < row; j++)
			t[j] = w[0] * padded[j];
		for (int i = 1; i < kernel; i++) {
			const float *pi = padded + (size_t)i * C;
			float wi = w[i];
			for (size_t j = 0; j < row; j++)
				t[j] += wi * pi[j];
		}
	}
	for (int y = 0; y < H; y++) {
		for (size_t j = 0; j < row; j++)
			acc[j] = 0;
		for (int i = 0; i < kernel; i++) {
			const float *t = tmp + (size_t)reflect(y + i - pad, H) * row;
			float wi = w[i];
			for (size_t j = 0; j < row; j++)
				acc[j] += wi * t[j];
		}
		uint8_t *o = img + (size_t)y * row;
		for (size_t j = 0; j < row; j++)
			o[j] = round_u8(acc[j]);
	}
}

/* ------------------------------------------------------------------------ */
/* a whole view */

void
augment_view(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, int out_h, int out_w,
             const ViewPlan *v, const AugmentParams *p)
{
	size_t npix = (size_t)out_h * out_w;
	augment_resize_crop(out, s, img, H, W, C, v->box, out_h, out_w, v->flip);
	if (v->njitter)
		augment_jitter(out, npix, C, v->order, v->njitter, v->bright, v->contrast, v->saturation, v->hue);
	if (v->gray)
		augment_grayscale(out, npix, C);
	if (v->blur) {
		int side = out_h < out_w ? out_h : out_w;
		augment_blur(out, s, out_h, out_w, C, augment_blur_kernel(side), v->sigma);
	}
	if (v->solarize)
		augment_solarize(out, npix * C, p->solarize_threshold);
}

void
augment_record(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, int out_h, int out_w,
               const AugmentParams *p, uint64_t seed, int64_t epoch, int64_t id)
{
	size_t vsize = (size_t)out_h * out_w * C;
	for (int k = 0; k < p->views; k++) {
		Rng r = rng_for(seed, (uint64_t)epoch, (uint64_t)id, (uint64_t)k);
		ViewPlan v;
		augment_plan(&v, p, H, W, &r);
		augment_view(out + (size_t)k * vsize, s, img, H, W, C, out_h, out_w, &v, p);
	}
}
