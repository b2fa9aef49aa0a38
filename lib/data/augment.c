/* augment: see augment.h. */
#include "data/augment.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/cpu.h"
#include "base/util.h"

/* ------------------------------------------------------------------------ */
/* random decisions */

/* b's size clamped to [1, H] x [1, W], placed in the middle of the image. */
static CropBox
centred(CropBox b, int H, int W)
{
	b.height = b.height < 1 ? 1 : b.height > H ? H : b.height;
	b.width = b.width < 1 ? 1 : b.width > W ? W : b.width;
	b.top = (H - b.height) / 2;
	b.left = (W - b.width) / 2;
	return b;
}

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
	return centred(b, H, W);
}

CropBox
augment_crop_center(int H, int W, int out_h, int out_w)
{
	CropBox b = { 0, 0, H, W };
	if ((int64_t)H * out_w > (int64_t)W * out_h) /* taller than the output: trim rows */
		b.height = (int)nearbyint((double)W * out_h / out_w);
	else if ((int64_t)H * out_w < (int64_t)W * out_h)
		b.width = (int)nearbyint((double)H * out_w / out_h);
	return centred(b, H, W);
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
grow_floats(float **buf, size_t *cap, size_t n)
{
	if (n > *cap) {
		free(*buf);
		*buf = xalloc_aligned(n * sizeof(float));
		*cap = n;
	}
	return *buf;
}

/* Resampling weights depend only on (in size, out size, flip), and random
 * crops repeat sizes (at 32 px, always), so each axis keeps a small
 * direct-mapped cache of them. */
#define RESAMPLE_SLOTS 64

typedef struct {
	int    in, out, flip, nk;  /* in == 0: empty */
	float *w;                  /* (out, nk) */
	int   *x0;                 /* (out) */
	size_t wcap, xcap;
} ResampleSlot;

struct ResampleCache {
	ResampleSlot axis[2][RESAMPLE_SLOTS];
};

static void
resample_cache_free(struct ResampleCache *c)
{
	if (!c)
		return;
	for (int a = 0; a < 2; a++)
		for (int i = 0; i < RESAMPLE_SLOTS; i++) {
			free(c->axis[a][i].w);
			free(c->axis[a][i].x0);
		}
	free(c);
}

void
augment_scratch_free(AugmentScratch *s)
{
	resample_cache_free(s->cache);
	free(s->planes);
	free(s->buf);
	memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------ */
/* Vector kernels. A view lives in a planar float image (C planes of levels)
 * from the resize to the final store, so that every op is a simple loop the
 * compiler vectorises. Each is cloned per instruction-set level
 * (lib/base/cpu.h CPU_CLONES) and picked at run time; the results are the
 * same bits at every level (no FMA contraction in ISO C mode, the same IEEE
 * operations). */

/* Clamps and truncates (torch's uint8 cast after clamp). Truncating first is
 * the same and lets GCC vectorise the clamp with AVX2 too (a float select
 * feeding a conversion is not if-converted there). */
static inline float
trunc_level(float v)
{
	int i = (int)v;
	i = i > 0 ? i : 0;
	i = i < 255 ? i : 255;
	return (float)i;
}

CPU_BODY void
planes_load_body(float *restrict pl, const uint8_t *restrict img, size_t npix, int C)
{
	if (C == 3) {
		float *r = pl, *g = pl + npix, *b = pl + 2 * npix;
		for (size_t i = 0; i < npix; i++) {
			r[i] = img[3 * i];
			g[i] = img[3 * i + 1];
			b[i] = img[3 * i + 2];
		}
	} else {
		for (size_t i = 0; i < npix; i++)
			pl[i] = img[i];
	}
}
CPU_CLONES(planes_load, (float *restrict pl, const uint8_t *restrict img, size_t npix, int C),
           (pl, img, npix, C))

/* Back to uint8 HWC; solarize >= 0 inverts levels >= it on the way. */
CPU_BODY void
planes_store_body(uint8_t *restrict img, const float *restrict pl, size_t npix, int C, int solarize)
{
	int t = solarize >= 0 ? solarize : 256;
	if (C == 3) {
		const float *r = pl, *g = pl + npix, *b = pl + 2 * npix;
		for (size_t i = 0; i < npix; i++) {
			int ri = (int)r[i], gi = (int)g[i], bi = (int)b[i];
			img[3 * i] = (uint8_t)(ri >= t ? 255 - ri : ri);
			img[3 * i + 1] = (uint8_t)(gi >= t ? 255 - gi : gi);
			img[3 * i + 2] = (uint8_t)(bi >= t ? 255 - bi : bi);
		}
	} else {
		for (size_t i = 0; i < npix; i++) {
			int v = (int)pl[i];
			img[i] = (uint8_t)(v >= t ? 255 - v : v);
		}
	}
}
CPU_CLONES(planes_store, (uint8_t *restrict img, const float *restrict pl, size_t npix, int C, int solarize),
           (img, pl, npix, C, solarize))

/* ------------------------------------------------------------------------ */
/* crop + resize */

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

/* PIL's precompute_coeffs for the bilinear filter: output pixel x takes
 * input [x0[x], x0[x] + nk) with weights w[x * nk + k], normalised to sum 1.
 * Every output gets the same tap count nk (returned; at most ksize): windows
 * cut by the border are shifted inside it with zero weights, which leaves the
 * sums unchanged and the inner loop fixed. flip mirrors the output. */
static int
resample_coeffs(float *w, int *x0s, int ksize, int in_size, int out_size, int flip)
{
	double scale = (double)in_size / out_size;
	double fs = scale < 1 ? 1 : scale, support = fs, ss = 1.0 / fs;
	int nk = 1;
	for (int pass = 0; pass < 2; pass++) {
		for (int x = 0; x < out_size; x++) {
			double center = (x + 0.5) * scale, sum = 0;
			int x0 = (int)(center - support + 0.5), x1 = (int)(center + support + 0.5);
			if (x0 < 0)
				x0 = 0;
			if (x1 > in_size)
				x1 = in_size;
			int n = x1 - x0;
			ASSERT(n >= 1 && n <= ksize && n <= in_size);
			if (pass == 0) {
				nk = n > nk ? n : nk;
				continue;
			}
			int start = x0 + nk > in_size ? in_size - nk : x0, ox = flip ? out_size - 1 - x : x;
			float *wx = w + (size_t)ox * nk;
			for (int i = 0; i < n; i++)
				sum += triangle((i + x0 - center + 0.5) * ss);
			for (int i = 0; i < nk; i++)
				wx[i] = 0;
			for (int i = 0; i < n; i++)
				wx[x0 - start + i] = (float)(sum != 0 ? triangle((i + x0 - center + 0.5) * ss) / sum : 0);
			x0s[ox] = start;
		}
	}
	return nk;
}

static int resample_ksize(int in_size, int out_size);

/* The weights for one axis (0: x, 1: y), from the cache or computed into it. */
static const ResampleSlot *
resample_get(AugmentScratch *s, int axis, int in, int out, int flip)
{
	if (!s->cache)
		s->cache = xcalloc(1, sizeof *s->cache);
	unsigned h = ((unsigned)in * 2654435761u) ^ ((unsigned)out * 40503u) ^ (unsigned)flip;
	ResampleSlot *e = &s->cache->axis[axis][(h ^ (h >> 16)) % RESAMPLE_SLOTS];
	if (e->in == in && e->out == out && e->flip == flip)
		return e;
	int k = resample_ksize(in, out);
	size_t nw = (size_t)out * k;
	if (nw > e->wcap) {
		free(e->w);
		e->w = xmalloc(nw * sizeof *e->w);
		e->wcap = nw;
	}
	if ((size_t)out > e->xcap) {
		free(e->x0);
		e->x0 = xmalloc((size_t)out * sizeof *e->x0);
		e->xcap = (size_t)out;
	}
	e->nk = resample_coeffs(e->w, e->x0, k, in, out, flip);
	e->in = in;
	e->out = out;
	e->flip = flip;
	return e;
}

/* Horizontal pass of one plane: out (rows, OW) from in (rows, IW). */
CPU_BODY void
resample_rows_body(float *restrict out, const float *restrict in, int rows, int IW, int OW, const float *w,
                   const int *x0, int nk)
{
	for (int y = 0; y < rows; y++) {
		const float *src = in + (size_t)y * IW;
		float *o = out + (size_t)y * OW;
		if (nk == 2) {
			for (int x = 0; x < OW; x++) {
				const float *p = src + x0[x];
				o[x] = w[2 * x] * p[0] + w[2 * x + 1] * p[1];
			}
		} else {
			for (int x = 0; x < OW; x++) {
				const float *p = src + x0[x], *k = w + (size_t)x * nk;
				float a = k[0] * p[0];
				for (int i = 1; i < nk; i++)
					a += k[i] * p[i];
				o[x] = a;
			}
		}
	}
}
CPU_CLONES(resample_rows,
           (float *restrict out, const float *restrict in, int rows, int IW, int OW, const float *w,
            const int *x0, int nk),
           (out, in, rows, IW, OW, w, x0, nk))

/* Vertical pass of one plane: out (OH, W) from in (rows, W), rounded. */
CPU_BODY void
resample_cols_body(float *restrict out, const float *restrict in, int OH, int W, const float *w,
                   const int *y0, int nk)
{
	for (int y = 0; y < OH; y++) {
		const float *k = w + (size_t)y * nk, *t = in + (size_t)y0[y] * W;
		float *o = out + (size_t)y * W;
		float k0 = k[0];
		for (int x = 0; x < W; x++)
			o[x] = k0 * t[x];
		for (int i = 1; i < nk; i++) {
			const float *ti = t + (size_t)i * W;
			float ki = k[i];
			for (int x = 0; x < W; x++)
				o[x] += ki * ti[x];
		}
		for (int x = 0; x < W; x++)
			o[x] = trunc_level(o[x] + 0.5f);
	}
}
CPU_CLONES(resample_cols,
           (float *restrict out, const float *restrict in, int OH, int W, const float *w, const int *y0,
            int nk),
           (out, in, OH, W, w, y0, nk))

/* The box of img as C float planes (C, bh, bw). */
CPU_BODY void
crop_load_body(float *restrict pl, const uint8_t *restrict img, int W, int C, CropBox b)
{
	size_t plane = (size_t)b.height * b.width;
	for (int y = 0; y < b.height; y++) {
		const uint8_t *src = img + ((size_t)(b.top + y) * W + b.left) * C;
		float *d = pl + (size_t)y * b.width;
		if (C == 3) {
			for (int x = 0; x < b.width; x++) {
				d[x] = src[3 * x];
				d[plane + x] = src[3 * x + 1];
				d[2 * plane + x] = src[3 * x + 2];
			}
		} else {
			for (int x = 0; x < b.width; x++)
				d[x] = src[x];
		}
	}
}
CPU_CLONES(crop_load, (float *restrict pl, const uint8_t *restrict img, int W, int C, CropBox b),
           (pl, img, W, C, b))

/* Vertical pass straight from the uint8 image: out (OH, bw * C), still
 * interleaved, from the rows of box b. */
CPU_BODY void
resample_cols_u8_body(float *restrict out, const uint8_t *restrict img, int W, int C, CropBox b, int OH,
                      const float *w, const int *y0, int nk)
{
	size_t row = (size_t)b.width * C;
	for (int y = 0; y < OH; y++) {
		const float *k = w + (size_t)y * nk;
		float *o = out + (size_t)y * row;
		const uint8_t *t = img + ((size_t)(b.top + y0[y]) * W + b.left) * C;
		float k0 = k[0];
		for (size_t j = 0; j < row; j++)
			o[j] = k0 * t[j];
		for (int i = 1; i < nk; i++) {
			const uint8_t *ti = t + (size_t)i * W * C;
			float ki = k[i];
			for (size_t j = 0; j < row; j++)
				o[j] += ki * ti[j];
		}
	}
}
CPU_CLONES(resample_cols_u8,
           (float *restrict out, const uint8_t *restrict img, int W, int C, CropBox b, int OH, const float *w,
            const int *y0, int nk),
           (out, img, W, C, b, OH, w, y0, nk))

/* Horizontal pass over interleaved rows in (rows, IW, C) into planes pl
 * (C, rows, OW), rounded. */
static void
resample_rows_interleaved(float *restrict pl, const float *restrict in, int rows, int IW, int C, int OW,
                          const float *w, const int *x0, int nk)
{
	size_t plane = (size_t)rows * OW;
	for (int y = 0; y < rows; y++) {
		const float *src = in + (size_t)y * IW * C;
		float *o = pl + (size_t)y * OW;
		for (int x = 0; x < OW; x++) {
			const float *k = w + (size_t)x * nk, *p = src + (size_t)x0[x] * C;
			if (C == 3) {
				float a0 = k[0] * p[0], a1 = k[0] * p[1], a2 = k[0] * p[2];
				for (int i = 1; i < nk; i++) {
					a0 += k[i] * p[3 * i];
					a1 += k[i] * p[3 * i + 1];
					a2 += k[i] * p[3 * i + 2];
				}
				o[x] = trunc_level(a0 + 0.5f);
				o[plane + x] = trunc_level(a1 + 0.5f);
				o[2 * plane + x] = trunc_level(a2 + 0.5f);
			} else {
				float a0 = k[0] * p[0];
				for (int i = 1; i < nk; i++)
					a0 += k[i] * p[i];
				o[x] = trunc_level(a0 + 0.5f);
			}
		}
	}
}

/* Crop + resize into planes pl (C, OH, OW), rounded to levels. PIL resamples
 * x first; when the box is taller than the output, y first is much less work
 * (the rows shrink before the taps gather), and changes only float rounding. */
static void
resize_planes(float *pl, AugmentScratch *s, const uint8_t *img, int H, int W, int C, CropBox box, int OH, int OW,
              int flip)
{
	ASSERT(box.top >= 0 && box.left >= 0 && box.height >= 1 && box.width >= 1 &&
	       box.top + box.height <= H && box.left + box.width <= W && (C == 1 || C == 3));
	int bh = box.height, bw = box.width;
	const ResampleSlot *cx = resample_get(s, 0, bw, OW, flip), *cy = resample_get(s, 1, bh, OH, 0);
	if (bh > OH) {
		float *tmp = grow_floats(&s->buf, &s->cap, (size_t)OH * bw * C); /* (OH, bw, C) */
		resample_cols_u8(tmp, img, W, C, box, OH, cy->w, cy->x0, cy->nk);
		resample_rows_interleaved(pl, tmp, OH, bw, C, OW, cx->w, cx->x0, cx->nk);
		return;
	}
	size_t crop = (size_t)bh * bw, tmpsz = (size_t)bh * OW;
	float *src = grow_floats(&s->buf, &s->cap, C * crop + tmpsz); /* (C, bh, bw) */
	float *tmp = src + C * crop; /* (bh, OW) of one plane after the horizontal pass */
	crop_load(src, img, W, C, box);
	for (int c = 0; c < C; c++) {
		resample_rows(tmp, src + c * crop, bh, bw, OW, cx->w, cx->x0, cx->nk);
		resample_cols(pl + (size_t)c * OH * OW, tmp, OH, OW, cy->w, cy->x0, cy->nk);
	}
}

void
augment_resize_crop(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, CropBox box,
                    int OH, int OW, int flip)
{
	size_t npix = (size_t)OH * OW;
	float *pl = grow_floats(&s->planes, &s->pcap, npix * C);
	resize_planes(pl, s, img, H, W, C, box, OH, OW, flip);
	planes_store(out, pl, npix, C, -1);
}

/* ------------------------------------------------------------------------ */
/* colour: every op ends on whole levels, as torchvision's uint8 results do,
 * with torch's float32 operations in torch's order, so the results are
 * torchvision's bit for bit. */



/* torchvision's rgb_to_grayscale on uint8 tensors, which ColorJitter's
 * contrast and saturation blend with: float32, truncated. (RandomGrayscale on
 * PIL images uses PIL's rounded luma instead: augment_luma.) */
static inline float
luma_tv(float r, float g, float b)
{
	return (float)(int)(0.2989f * r + 0.587f * g + 0.114f * b);
}

/* torch _blend with a constant: ratio * img + ((1 - ratio) * other).
 * Brightness blends with 0, contrast with the gray mean. */
CPU_BODY void
op_blend_const_body(float *p, size_t n, float ratio, float rest_other)
{
	for (size_t i = 0; i < n; i++)
		p[i] = trunc_level(ratio * p[i] + rest_other);
}
CPU_CLONES(op_blend_const, (float *p, size_t n, float ratio, float rest_other), (p, n, ratio, rest_other))

CPU_BODY float
planes_mean_gray_body(const float *pl, size_t npix, int C)
{
	/* Whole levels: an integer sum is exact (and vectorises). torch divides in float32. */
	int64_t sum = 0;
	if (C == 3) {
		const float *r = pl, *g = pl + npix, *b = pl + 2 * npix;
		for (size_t i = 0; i < npix; i++)
			sum += (int)(0.2989f * r[i] + 0.587f * g[i] + 0.114f * b[i]);
	} else {
		for (size_t i = 0; i < npix; i++)
			sum += (int)pl[i];
	}
	return (float)sum / (float)npix;
}
CPU_CLONES_RET(float, planes_mean_gray, (const float *pl, size_t npix, int C), (pl, npix, C))

CPU_BODY void
op_saturation_body(float *pl, size_t npix, float ratio, float rest)
{
	float *restrict r = pl, *restrict g = pl + npix, *restrict b = pl + 2 * npix;
	for (size_t i = 0; i < npix; i++) {
		float l = luma_tv(r[i], g[i], b[i]);
		r[i] = trunc_level(ratio * r[i] + rest * l);
		g[i] = trunc_level(ratio * g[i] + rest * l);
		b[i] = trunc_level(ratio * b[i] + rest * l);
	}
}
CPU_CLONES(op_saturation, (float *pl, size_t npix, float ratio, float rest), (pl, npix, ratio, rest))

/* torchvision adjust_hue: _rgb2hsv, (h + shift) mod 1, _hsv2rgb, * 255,
 * truncate; branch-free so that it vectorises. */
CPU_BODY void
op_hue_body(float *pl, size_t npix, float shift)
{
	float *restrict R = pl, *restrict G = pl + npix, *restrict B = pl + 2 * npix;
	for (size_t i = 0; i < npix; i++) {
		/* Every select is two-way on computed values, which GCC if-converts. */
		float r = R[i] / 255.0f, g = G[i] / 255.0f, b = B[i] / 255.0f;
		float maxc = r > g ? r : g, minc = r < g ? r : g;
		maxc = maxc > b ? maxc : b;
		minc = minc < b ? minc : b;
		float cr = maxc - minc;
		int eqc = maxc == minc;
		float s = cr / (eqc ? 1.0f : maxc);
		float crd = eqc ? 1.0f : cr;
		float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
		float hr = bc - gc, hg = 2.0f + rc - bc, hb = 4.0f + gc - rc;
		float h = maxc == g ? hg : hb;
		h = maxc == r ? hr : h;
		float t6 = h / 6.0f + 1.0f; /* in [5/6, 11/6]: fmod(t6, 1) is t6 - trunc(t6), exactly */
		h = t6 - (float)(int)t6;
		h = h + shift; /* torch.remainder(h, 1): h - floor(h) for h in [-0.5, 1.5) */
		float fl = (float)(int)h;
		fl = fl > h ? fl - 1.0f : fl;
		h = h - fl;
		float v = maxc, h6 = h * 6.0f, fi = (float)(int)h6, f = h6 - fi;
		fi = fi >= 6.0f ? fi - 6.0f : fi;
		float p = v * (1.0f - s), q = v * (1.0f - s * f), t = v * (1.0f - s * (1.0f - f));
		p = p > 0 ? p : 0;
		p = p < 1 ? p : 1;
		q = q > 0 ? q : 0;
		q = q < 1 ? q : 1;
		t = t > 0 ? t : 0;
		t = t < 1 ? t : 1;
		/* sector: 0 (v,t,p) 1 (q,v,p) 2 (p,v,t) 3 (p,q,v) 4 (t,p,v) 5 (v,p,q) */
		float ro = fi == 4 ? t : p, go = fi == 3 ? q : p, bo = fi == 5 ? q : p;
		ro = fi == 1 ? q : ro;
		go = fi == 0 ? t : go;
		bo = fi == 2 ? t : bo;
		ro = fi == 0 ? v : ro;
		ro = fi == 5 ? v : ro;
		go = fi == 1 ? v : go;
		go = fi == 2 ? v : go;
		bo = fi == 3 ? v : bo;
		bo = fi == 4 ? v : bo;
		R[i] = trunc_level(ro * 255.0f);
		G[i] = trunc_level(go * 255.0f);
		B[i] = trunc_level(bo * 255.0f);
	}
}
CPU_CLONES(op_hue, (float *pl, size_t npix, float shift), (pl, npix, shift))

/* RandomGrayscale on planes: PIL's rounded luma into all three. */
CPU_BODY void
planes_gray_body(float *pl, size_t npix)
{
	float *restrict r = pl, *restrict g = pl + npix, *restrict b = pl + 2 * npix;
	for (size_t i = 0; i < npix; i++) {
		int l = ((int)r[i] * 19595 + (int)g[i] * 38470 + (int)b[i] * 7471 + 0x8000) >> 16;
		r[i] = g[i] = b[i] = (float)l;
	}
}
CPU_CLONES(planes_gray, (float *pl, size_t npix), (pl, npix))

/* ColorJitter's ops in order on the planes. */
static void
jitter_planes(float *pl, size_t npix, int C, const int *order, int nops, const double *fac)
{
	for (int k = 0; k < nops; k++) {
		/* torch casts each Python scalar to float32: ratio and (1 - ratio). */
		float f = (float)fac[order[k]], g = (float)(1 - fac[order[k]]);
		switch (order[k]) {
		case JITTER_BRIGHTNESS:
			op_blend_const(pl, npix * C, f, g * 0.0f);
			break;
		case JITTER_CONTRAST:
			op_blend_const(pl, npix * C, f, g * planes_mean_gray(pl, npix, C));
			break;
		case JITTER_SATURATION:
			if (C == 3)
				op_saturation(pl, npix, f, g);
			break;
		default:
			if (C == 3)
				op_hue(pl, npix, (float)fac[JITTER_HUE]);
			break;
		}
	}
}

void
augment_jitter(uint8_t *img, AugmentScratch *s, size_t npix, int C, const int *order, int nops, double bright,
               double contrast, double saturation, double hue)
{
	const double fac[4] = { bright, contrast, saturation, hue };
	float *pl = grow_floats(&s->planes, &s->pcap, npix * C);
	planes_load(pl, img, npix, C);
	jitter_planes(pl, npix, C, order, nops, fac);
	planes_store(img, pl, npix, C, -1);
}

/* The naive twin of the jitter kernels: per pixel, op by op, torchvision's
 * formulas written out with libm. Tests hold the fast path to it exactly. */
static void
hue_px_ref(float *px, float shift)
{
	float r = px[0] / 255.0f, g = px[1] / 255.0f, b = px[2] / 255.0f;
	float maxc = fmaxf(r, fmaxf(g, b)), minc = fminf(r, fminf(g, b));
	int eqc = maxc == minc;
	float cr = maxc - minc;
	float s = cr / (eqc ? 1.0f : maxc);
	float crd = eqc ? 1.0f : cr;
	float rc = (maxc - r) / crd, gc = (maxc - g) / crd, bc = (maxc - b) / crd;
	float hr = maxc == r ? bc - gc : 0, hg = maxc == g && maxc != r ? 2.0f + rc - bc : 0;
	float hb = maxc != g && maxc != r ? 4.0f + gc - rc : 0;
	float h = fmodf((hr + hg + hb) / 6.0f + 1.0f, 1.0f);
	h = h + shift;
	h = h - floorf(h);
	float i = floorf(h * 6.0f), f = h * 6.0f - i;
	float p = fminf(fmaxf(maxc * (1.0f - s), 0), 1), q = fminf(fmaxf(maxc * (1.0f - s * f), 0), 1);
	float t = fminf(fmaxf(maxc * (1.0f - s * (1.0f - f)), 0), 1);
	const float a[3][6] = { { maxc, q, p, p, t, maxc }, { t, maxc, maxc, q, p, p }, { p, p, t, maxc, maxc, q } };
	int k = (int)i % 6;
	for (int c = 0; c < 3; c++)
		px[c] = floorf(fminf(fmaxf(a[c][k] * 255.0f, 0), 255));
}

void
augment_jitter_ref(uint8_t *img, size_t npix, int C, const int *order, int nops, double bright,
                   double contrast, double saturation, double hue)
{
	const double fac[4] = { bright, contrast, saturation, hue };
	for (int k = 0; k < nops; k++) {
		int op = order[k];
		float f = (float)fac[op], g = (float)(1 - fac[op]), mean = 0;
		if (op == JITTER_CONTRAST) {
			double sum = 0;
			for (size_t i = 0; i < npix; i++) {
				const uint8_t *p = img + i * C;
				sum += C == 3 ? (float)(int)(0.2989f * p[0] + 0.587f * p[1] + 0.114f * p[2]) : p[0];
			}
			mean = (float)sum / (float)npix;
		}
		for (size_t i = 0; i < npix; i++) {
			uint8_t *p = img + i * C;
			float px[3] = { p[0], C == 3 ? p[1] : 0, C == 3 ? p[2] : 0 };
			float l = C == 3 ? (float)(int)(0.2989f * px[0] + 0.587f * px[1] + 0.114f * px[2]) : 0;
			for (int c = 0; c < C; c++) {
				float v = px[c];
				if (op == JITTER_BRIGHTNESS)
					v = f * v + g * 0.0f;
				else if (op == JITTER_CONTRAST)
					v = f * v + g * mean;
				else if (op == JITTER_SATURATION && C == 3)
					v = f * v + g * l;
				px[c] = floorf(fminf(fmaxf(v, 0), 255));
			}
			if (op == JITTER_HUE && C == 3)
				hue_px_ref(px, (float)fac[JITTER_HUE]);
			for (int c = 0; c < C; c++)
				p[c] = (uint8_t)px[c];
		}
	}
}

void
augment_brightness(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor)
{
	int op = JITTER_BRIGHTNESS;
	augment_jitter(img, s, npix, C, &op, 1, factor, 1, 1, 0);
}

void
augment_contrast(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor)
{
	int op = JITTER_CONTRAST;
	augment_jitter(img, s, npix, C, &op, 1, 1, factor, 1, 0);
}

void
augment_saturation(uint8_t *img, AugmentScratch *s, size_t npix, int C, double factor)
{
	int op = JITTER_SATURATION;
	augment_jitter(img, s, npix, C, &op, 1, 1, 1, factor, 0);
}

void
augment_hue(uint8_t *img, AugmentScratch *s, size_t npix, int C, double shift)
{
	int op = JITTER_HUE;
	augment_jitter(img, s, npix, C, &op, 1, 1, 1, 1, shift);
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

/* Horizontal Gaussian pass over one plane: out (H, W) from in (H, W), with
 * torch's reflect padding built in `padded` (W + k - 1 floats). */
CPU_BODY void
blur_rows_body(float *restrict out, const float *restrict in, float *restrict padded, int H, int W,
               const float *w, int k)
{
	int pad = k / 2;
	for (int y = 0; y < H; y++) {
		const float *src = in + (size_t)y * W;
		for (int x = 0; x < pad; x++) {
			padded[x] = src[reflect(x - pad, W)];
			padded[pad + W + x] = src[reflect(W + x, W)];
		}
		memcpy(padded + pad, src, (size_t)W * sizeof *src);
		float *o = out + (size_t)y * W;
		float w0 = w[0];
		for (int x = 0; x < W; x++)
			o[x] = w0 * padded[x];
		for (int i = 1; i < k; i++) {
			const float *p = padded + i;
			float wi = w[i];
			for (int x = 0; x < W; x++)
				o[x] += wi * p[x];
		}
	}
}
CPU_CLONES(blur_rows,
           (float *restrict out, const float *restrict in, float *restrict padded, int H, int W,
            const float *w, int k),
           (out, in, padded, H, W, w, k))

/* Vertical pass: out (H, W) from in (H, W), reflected at the top and bottom, rounded. */
CPU_BODY void
blur_cols_body(float *restrict out, const float *restrict in, int H, int W, const float *w, int k)
{
	int pad = k / 2;
	for (int y = 0; y < H; y++) {
		float *o = out + (size_t)y * W;
		const float *t = in + (size_t)reflect(y - pad, H) * W;
		float w0 = w[0];
		for (int x = 0; x < W; x++)
			o[x] = w0 * t[x];
		for (int i = 1; i < k; i++) {
			const float *ti = in + (size_t)reflect(y + i - pad, H) * W;
			float wi = w[i];
			for (int x = 0; x < W; x++)
				o[x] += wi * ti[x];
		}
		for (int x = 0; x < W; x++)
			o[x] = trunc_level(o[x] + 0.5f);
	}
}
CPU_CLONES(blur_cols, (float *restrict out, const float *restrict in, int H, int W, const float *w, int k),
           (out, in, H, W, w, k))

/* Gaussian blur of C planes (H, W) in place, rounded to levels. */
static void
blur_planes(float *pl, AugmentScratch *s, int H, int W, int C, int kernel, float sigma)
{
	ASSERT(kernel >= 1 && kernel % 2 == 1 && sigma > 0);
	size_t plane = (size_t)H * W;
	float *w = grow_floats(&s->buf, &s->cap, (size_t)kernel + plane + (size_t)W + (size_t)kernel);
	float *tmp = w + kernel;     /* one plane after the horizontal pass */
	float *padded = tmp + plane; /* one row with its reflected border */

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
	for (int c = 0; c < C; c++) {
		blur_rows(tmp, pl + (size_t)c * plane, padded, H, W, w, kernel);
		blur_cols(pl + (size_t)c * plane, tmp, H, W, w, kernel);
	}
}

void
augment_blur(uint8_t *img, AugmentScratch *s, int H, int W, int C, int kernel, float sigma)
{
	size_t npix = (size_t)H * W;
	float *pl = grow_floats(&s->planes, &s->pcap, npix * C);
	planes_load(pl, img, npix, C);
	blur_planes(pl, s, H, W, C, kernel, sigma);
	planes_store(img, pl, npix, C, -1);
}

/* ------------------------------------------------------------------------ */
/* a whole view */

void
augment_view(uint8_t *out, AugmentScratch *s, const uint8_t *img, int H, int W, int C, int out_h, int out_w,
             const ViewPlan *v, const AugmentParams *p)
{
	size_t npix = (size_t)out_h * out_w;
	float *pl = grow_floats(&s->planes, &s->pcap, npix * C);
	resize_planes(pl, s, img, H, W, C, v->box, out_h, out_w, v->flip);
	if (v->njitter) {
		const double fac[4] = { v->bright, v->contrast, v->saturation, v->hue };
		jitter_planes(pl, npix, C, v->order, v->njitter, fac);
	}
	int gray = v->gray && C == 3;
	if (gray)
		planes_gray(pl, npix);
	if (v->blur) {
		int side = out_h < out_w ? out_h : out_w;
		/* A gray image has three equal planes: blur one, copy it. */
		blur_planes(pl, s, out_h, out_w, gray ? 1 : C, augment_blur_kernel(side), v->sigma);
		if (gray) {
			memcpy(pl + npix, pl, npix * sizeof(float));
			memcpy(pl + 2 * npix, pl, npix * sizeof(float));
		}
	}
	planes_store(out, pl, npix, C, v->solarize ? p->solarize_threshold : -1);
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
