/* augment_params: the recipes and the checks of their parameters and of an
 * input image against them (see augment.h). */
#include "data/augment.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

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
	} else if (strcmp(name, "photo") == 0) {
		/* Collections where colour carries the class (flowers, birds, products):
		 * mild brightness/contrast/saturation, hue and grayscale off, no blur. */
		p->out_h = p->out_w = 96;
		p->brightness = p->contrast = 0.4;
		p->saturation = 0.2;
		p->gray_p = 0;
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
