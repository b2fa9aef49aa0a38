/* gradcheck: see gradcheck.h. */
#include "gradcheck.h"

#include <math.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

GcResult
gradcheck(GcLoss loss, GcKink kink, void *ctx, float *x, const float *grad, size_t len,
          double eps, int max_points, double floor)
{
	GcResult r = { 0, 0, 0, 0 };
	double scale = floor;
	for (size_t j = 0; j < len; j++)
		if (fabs(grad[j]) > scale)
			scale = fabs(grad[j]);
	size_t step = len <= (size_t)max_points ? 1 : (len + max_points - 1) / max_points;
	for (size_t j = 0; j < len; j += step) {
		float x0 = x[j];
		float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
		x[j] = xp;
		double lp = loss(ctx);
		uint64_t kp = kink ? kink(ctx) : 0;
		x[j] = xm;
		double lm = loss(ctx);
		uint64_t km = kink ? kink(ctx) : 0;
		x[j] = x0;
		if (kp != km) {
			r.skipped++;
			continue;
		}
		double fd = (lp - lm) / ((double)xp - (double)xm);
		double e = fabs(fd - grad[j]) / scale;
		if (!(e <= r.max_err)) {
			r.max_err = isnan(e) ? INFINITY : e;
			r.worst = j;
		}
		r.checked++;
	}
	return r;
}

double
gc_dot(const float *out, const float *r, size_t n)
{
	double s = 0;
	for (size_t i = 0; i < n; i++)
		s += (double)out[i] * r[i];
	return s;
}

uint64_t
gc_mask_hash(uint64_t h, const float *v, size_t n)
{
	if (!h)
		h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++) {
		h ^= (uint64_t)(v[i] > 0.0f) + 1;
		h *= UINT64_C(0x100000001b3);
	}
	return h;
}

void
gc_fill_normal(float *x, size_t n, uint64_t seed, uint64_t id, float scale)
{
	Rng r = rng_for(seed, 0, id, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(rng_normal(&r) * scale);
}

float *
gc_floats(size_t n)
{
	return xcalloc(n ? n : 1, sizeof(float));
}

float *
gc_floats_dup(const float *src, size_t n)
{
	float *p = gc_floats(n);
	memcpy(p, src, n * sizeof(float));
	return p;
}

GcResult
gradcheck_auto(GcLoss loss, void *ctx, float *x, const float *grad, size_t len,
               double eps, int max_points, double floor, double kink_tol)
{
	GcResult r = { 0, 0, 0, 0 };
	double scale = floor;
	for (size_t j = 0; j < len; j++)
		if (fabs(grad[j]) > scale)
			scale = fabs(grad[j]);
	size_t step = len <= (size_t)max_points ? 1 : (len + max_points - 1) / max_points;
	double l0 = loss(ctx);
	for (size_t j = 0; j < len; j += step) {
		float x0 = x[j];
		float xp = (float)(x0 + eps), xm = (float)(x0 - eps);
		x[j] = xp;
		double lp = loss(ctx);
		x[j] = xm;
		double lm = loss(ctx);
		x[j] = x0;
		double sr = (lp - l0) / ((double)xp - x0), sl = (l0 - lm) / ((double)x0 - xm);
		if (fabs(sr - sl) > kink_tol * scale) {
			r.skipped++;
			continue;
		}
		double fd = (lp - lm) / ((double)xp - (double)xm);
		double e = fabs(fd - grad[j]) / scale;
		if (!(e <= r.max_err)) {
			r.max_err = isnan(e) ? INFINITY : e;
			r.worst = j;
		}
		r.checked++;
	}
	return r;
}
