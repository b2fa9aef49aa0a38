/* bn: see bn.h. One thread per channel; each channel is one contiguous run
 * of M = n*HW values. Statistics accumulate in double. */
#include "nn/bn.h"

#include <math.h>
#include <stddef.h>

#include "base/parallel.h"
#include "base/cpu.h"

/* ---- per-channel kernels: one contiguous run of M values each ---- */

CPU_BODY void
sums_body(const float *x, size_t M, double *sum, double *sumsq)
{
	double s = 0, s2 = 0;
#pragma omp simd reduction(+ : s, s2)
	for (size_t j = 0; j < M; j++) {
		double v = x[j];
		s += v;
		s2 += v * v;
	}
	*sum += s;
	*sumsq += s2;
}
CPU_CLONES(sums, (const float *x, size_t M, double *sum, double *sumsq), (x, M, sum, sumsq))

void
bn_sums(const float *x, size_t M, double *sum, double *sumsq)
{
	sums(x, M, sum, sumsq);
}

/* y = act((x - m) * a + b [+ r]): (x - m) * a, not x * a + (b - m * a),
 * so there is no cancellation when |mean| >> std. */
CPU_BODY void
chan_apply_body(float *y, const float *x, const float *r, size_t M, float m, float a, float b, int relu)
{
	if (r) {
#pragma omp simd
		for (size_t j = 0; j < M; j++) {
			float v = (x[j] - m) * a + b + r[j];
			y[j] = v > 0.0f ? v : 0.0f;
		}
	} else if (relu) {
#pragma omp simd
		for (size_t j = 0; j < M; j++) {
			float v = (x[j] - m) * a + b;
			y[j] = v > 0.0f ? v : 0.0f;
		}
	} else {
#pragma omp simd
		for (size_t j = 0; j < M; j++)
			y[j] = (x[j] - m) * a + b;
	}
}
CPU_CLONES(chan_apply,
           (float *y, const float *x, const float *r, size_t M, float m, float a, float b, int relu),
           (y, x, r, M, m, a, b, relu))

/* sums of g and g * xhat, g = dy masked; xhat = (x - m) * rs. Blocks of
 * GRAD_BLOCK values sum in float (all SIMD lanes, no conversions), the
 * blocks in double: these are plain means, with no cancellation to guard. */
#define GRAD_BLOCK 256
CPU_BODY void
chan_grad_sums_body(const float *dy, const float *x, const float *o, size_t M, float m, float rs, float a,
                    float b, BnMask mask, double *sg_out, double *sgx_out)
{
	double sg = 0, sgx = 0;
	for (size_t j0 = 0; j0 < M; j0 += GRAD_BLOCK) {
		const size_t j1 = M - j0 < GRAD_BLOCK ? M : j0 + GRAD_BLOCK;
		float bg = 0, bgx = 0;
		if (mask == BN_MASK_NONE) {
#pragma omp simd reduction(+ : bg, bgx)
			for (size_t j = j0; j < j1; j++) {
				bg += dy[j];
				bgx += dy[j] * ((x[j] - m) * rs);
			}
		} else if (mask == BN_MASK_RECOMPUTE) {
#pragma omp simd reduction(+ : bg, bgx)
			for (size_t j = j0; j < j1; j++) {
				float g = (x[j] - m) * a + b > 0.0f ? dy[j] : 0.0f;
				bg += g;
				bgx += g * ((x[j] - m) * rs);
			}
		} else {
#pragma omp simd reduction(+ : bg, bgx)
			for (size_t j = j0; j < j1; j++) {
				float g = o[j] > 0.0f ? dy[j] : 0.0f;
				bg += g;
				bgx += g * ((x[j] - m) * rs);
			}
		}
		sg += bg;
		sgx += bgx;
	}
	*sg_out = sg;
	*sgx_out = sgx;
}
CPU_CLONES(chan_grad_sums,
           (const float *dy, const float *x, const float *o, size_t M, float m, float rs, float a, float b,
            BnMask mask, double *sg_out, double *sgx_out),
           (dy, x, o, M, m, rs, a, b, mask, sg_out, sgx_out))

/* dx (+)= k * (g - mg - xhat * mgx); dr (+)= g */
CPU_BODY void
chan_grad_apply_body(float *dx, float *dr, const float *dy, const float *x, const float *o, size_t M, float m,
                     float rs, float a, float b, float k, float mg, float mgx, BnMask mask, int acc)
{
	if (mask == BN_MASK_NONE) {
		if (dx && acc) {
#pragma omp simd
			for (size_t j = 0; j < M; j++)
				dx[j] += k * (dy[j] - mg - (x[j] - m) * rs * mgx);
		} else if (dx) {
#pragma omp simd
			for (size_t j = 0; j < M; j++)
				dx[j] = k * (dy[j] - mg - (x[j] - m) * rs * mgx);
		}
		if (dr && acc) {
#pragma omp simd
			for (size_t j = 0; j < M; j++)
				dr[j] += dy[j];
		} else if (dr) {
#pragma omp simd
			for (size_t j = 0; j < M; j++)
				dr[j] = dy[j];
		}
		return;
	}
	if (mask == BN_MASK_RECOMPUTE) {
		if (acc) {
#pragma omp simd
			for (size_t j = 0; j < M; j++) {
				float g = (x[j] - m) * a + b > 0.0f ? dy[j] : 0.0f;
				if (dx)
					dx[j] += k * (g - mg - (x[j] - m) * rs * mgx);
				if (dr)
					dr[j] += g;
			}
		} else {
#pragma omp simd
			for (size_t j = 0; j < M; j++) {
				float g = (x[j] - m) * a + b > 0.0f ? dy[j] : 0.0f;
				if (dx)
					dx[j] = k * (g - mg - (x[j] - m) * rs * mgx);
				if (dr)
					dr[j] = g;
			}
		}
		return;
	}
	if (dx && dr && !acc) { /* the residual block end, the hot case */
#pragma omp simd
		for (size_t j = 0; j < M; j++) {
			float g = o[j] > 0.0f ? dy[j] : 0.0f;
			dx[j] = k * (g - mg - (x[j] - m) * rs * mgx);
			dr[j] = g;
		}
		return;
	}
	if (acc) {
#pragma omp simd
		for (size_t j = 0; j < M; j++) {
			float g = o[j] > 0.0f ? dy[j] : 0.0f;
			if (dx)
				dx[j] += k * (g - mg - (x[j] - m) * rs * mgx);
			if (dr)
				dr[j] += g;
		}
	} else {
#pragma omp simd
		for (size_t j = 0; j < M; j++) {
			float g = o[j] > 0.0f ? dy[j] : 0.0f;
			if (dx)
				dx[j] = k * (g - mg - (x[j] - m) * rs * mgx);
			if (dr)
				dr[j] = g;
		}
	}
}
CPU_CLONES(chan_grad_apply,
           (float *dx, float *dr, const float *dy, const float *x, const float *o, size_t M, float m,
            float rs, float a, float b, float k, float mg, float mgx, BnMask mask, int acc),
           (dx, dr, dy, x, o, M, m, rs, a, b, k, mg, mgx, mask, acc))

/* ---- building blocks ---- */

void
bn_grad_sums_recompute(double *sums, const float *dy, const float *x, size_t len, float m, float rs, float a,
                       float b)
{
	double sg, sgx;
	chan_grad_sums(dy, x, NULL, len, m, rs, a, b, BN_MASK_RECOMPUTE, &sg, &sgx);
	sums[0] += sg;
	sums[1] += sgx;
}

void
bn_stats_accumulate(double *stats, const float *inp, int n, int C, int HW)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++)
		bn_sums(inp + c * M, M, &stats[2 * c], &stats[2 * c + 1]);
}

void
bn_stats_finish(float *mean, float *rstd, float *run_mean, float *run_var, const double *stats,
                int C, int64_t M, float momentum, float eps)
{
	for (int c = 0; c < C; c++) {
		/* one pass in double is exact enough for activations (|mean| / std never near 1e8) */
		double mu = stats[2 * c] / (double)M, var = stats[2 * c + 1] / (double)M - mu * mu;
		if (var < 0)
			var = 0;
		mean[c] = (float)mu;
		rstd[c] = (float)(1.0 / sqrt(var + eps));
		if (run_mean)
			run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
		if (run_var) {
			double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
			run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
		}
	}
}

void
bn_eval_rstd(float *rstd, const float *run_var, int C, float eps)
{
	for (int c = 0; c < C; c++)
		rstd[c] = (float)(1.0 / sqrt((double)run_var[c] + eps));
}

void
bn_apply(float *out, const float *inp, const float *res, const float *mean, const float *rstd,
         const float *gamma, const float *beta, int n, int C, int HW, int relu)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++)
		chan_apply(out + c * M, inp + c * M, res ? res + c * M : NULL, M, mean[c], gamma[c] * rstd[c], beta[c],
		           relu);
}

/* The gradient through y = gamma * xhat + beta, xhat = (x - mean) * rstd,
 * with batch statistics: dx = gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)). */
void
bn_backward_fused(float *dinp, float *dres, float *dgamma, float *dbeta,
                  const float *dout, const float *out, const float *inp,
                  const float *mean, const float *rstd, const float *gamma, const float *beta,
                  int n, int C, int HW, BnMask mask, int accumulate, const double *sums)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M, *dy = dout + c * M, *o = mask == BN_MASK_OUT ? out + c * M : NULL;
		const float m = mean[c], rs = rstd[c], a = gamma[c] * rs;
		const float b = mask == BN_MASK_RECOMPUTE ? beta[c] : 0.0f;
		double sg, sgx;
		if (sums) {
			sg = sums[2 * c];
			sgx = sums[2 * c + 1];
		} else {
			chan_grad_sums(dy, x, o, M, m, rs, a, b, mask, &sg, &sgx);
		}
		dgamma[c] += (float)sgx;
		dbeta[c] += (float)sg;
		chan_grad_apply(dinp ? dinp + c * M : NULL, dres ? dres + c * M : NULL, dy, x, o, M, m, rs, a, b, a,
		                (float)(sg / (double)M), (float)(sgx / (double)M), mask, accumulate);
	}
}

/* ---- the layer API ---- */

static void
bn_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var, const float *inp,
         const float *res, const float *gamma, const float *beta, int n, int C, int HW, float momentum,
         float eps, int relu)
{
	enum { STACK_C = 512 };
	double buf[2 * STACK_C], *stats = C <= STACK_C ? buf : NULL;
	if (!stats) { /* wide layers: channel by channel, no stats array */
		const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)C * M > PAR_MIN)
		for (int c = 0; c < C; c++) {
			double st[2] = { 0, 0 };
			bn_sums(inp + c * M, M, &st[0], &st[1]);
			bn_stats_finish(mean + c, rstd + c, run_mean ? run_mean + c : NULL, run_var ? run_var + c : NULL, st,
			                1, (int64_t)M, momentum, eps);
		}
	} else {
		for (int c = 0; c < 2 * C; c++)
			stats[c] = 0;
		bn_stats_accumulate(stats, inp, n, C, HW);
		bn_stats_finish(mean, rstd, run_mean, run_var, stats, C, (int64_t)n * HW, momentum, eps);
	}
	bn_apply(out, inp, res, mean, rstd, gamma, beta, n, C, HW, relu);
}

void
bn_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                 const float *inp, const float *gamma, const float *beta,
                 int n, int C, int HW, float momentum, float eps)
{
	bn_train(out, mean, rstd, run_mean, run_var, inp, NULL, gamma, beta, n, C, HW, momentum, eps, 0);
}

void
bn_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                      const float *inp, const float *gamma, const float *beta,
                      int n, int C, int HW, float momentum, float eps)
{
	bn_train(out, mean, rstd, run_mean, run_var, inp, NULL, gamma, beta, n, C, HW, momentum, eps, 1);
}

void
bn_add_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                          const float *inp, const float *res, const float *gamma, const float *beta,
                          int n, int C, int HW, float momentum, float eps)
{
	bn_train(out, mean, rstd, run_mean, run_var, inp, res, gamma, beta, n, C, HW, momentum, eps, 1);
}

void
bn_relu_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                     const float *gamma, const float *beta, int n, int C, int HW, float eps)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(dynamic, 1) if ((size_t)C * M > PAR_MIN)
	for (int c = 0; c < C; c++) {
		float rs = (float)(1.0 / sqrt((double)run_var[c] + eps));
		chan_apply(out + c * M, inp + c * M, NULL, M, run_mean[c], gamma[c] * rs, beta[c], 1);
	}
}

/* ---- naive twins: two-pass statistics, everything in double ---- */

void
bn_forward_train_ref(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                     const float *inp, const float *gamma, const float *beta,
                     int n, int C, int HW, float momentum, float eps)
{
	const size_t M = (size_t)n * HW;
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M;
		double mu = 0, var = 0;
		for (size_t j = 0; j < M; j++)
			mu += x[j];
		mu /= (double)M;
		for (size_t j = 0; j < M; j++)
			var += (x[j] - mu) * (x[j] - mu);
		var /= (double)M;
		double rs = 1.0 / sqrt(var + eps);
		mean[c] = (float)mu;
		rstd[c] = (float)rs;
		if (run_mean)
			run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mu);
		if (run_var)
			run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * var * (double)M / (double)(M - 1));
		for (size_t j = 0; j < M; j++)
			out[c * M + j] = (float)((x[j] - mu) * rs * gamma[c] + beta[c]);
	}
}

void
bn_backward_ref(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                const float *mean, const float *rstd, const float *gamma, int n, int C, int HW)
{
	const size_t M = (size_t)n * HW;
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M, *dy = dout + c * M;
		double sg = 0, sgx = 0;
		for (size_t j = 0; j < M; j++) {
			double xh = ((double)x[j] - mean[c]) * rstd[c];
			sg += dy[j];
			sgx += dy[j] * xh;
		}
		dgamma[c] += (float)sgx;
		dbeta[c] += (float)sg;
		if (!dinp)
			continue;
		for (size_t j = 0; j < M; j++) {
			double xh = ((double)x[j] - mean[c]) * rstd[c];
			dinp[c * M + j] += (float)((double)gamma[c] * rstd[c] *
			                           (dy[j] - sg / (double)M - xh * sgx / (double)M));
		}
	}
}
