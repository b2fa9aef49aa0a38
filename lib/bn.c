/* bn: see bn.h. One thread per channel; each channel is one contiguous run
 * of M = n*HW values. Statistics accumulate in double. */
#include "bn.h"

#include <math.h>
#include <stddef.h>

/* Batch mean and biased variance of x[0..M) in double. One pass is exact
 * enough in double for activations (|mean| / std is never near 1e8). */
static void
channel_stats(const float *x, size_t M, double *mean, double *var)
{
	double s = 0, s2 = 0;
#pragma omp simd reduction(+ : s, s2)
	for (size_t j = 0; j < M; j++) {
		double v = x[j];
		s += v;
		s2 += v * v;
	}
	double m = s / (double)M, v = s2 / (double)M - m * m;
	*mean = m;
	*var = v > 0 ? v : 0;
}

static void
channel_update_running(float *run_mean, float *run_var, int c, double mean, double var,
                       size_t M, float momentum)
{
	if (run_mean)
		run_mean[c] = (float)((1.0 - momentum) * run_mean[c] + momentum * mean);
	if (run_var) {
		double unbiased = M > 1 ? var * (double)M / (double)(M - 1) : var;
		run_var[c] = (float)((1.0 - momentum) * run_var[c] + momentum * unbiased);
	}
}

/* mode: 0 plain, 1 relu, 2 add+relu */
static void
bn_train_any(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
             const float *inp, const float *res, const float *gamma, const float *beta,
             int n, int C, int HW, float momentum, float eps, int mode)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M;
		float *y = out + c * M;
		double mu, var;
		channel_stats(x, M, &mu, &var);
		double rs = 1.0 / sqrt(var + eps);
		mean[c] = (float)mu;
		rstd[c] = (float)rs;
		channel_update_running(run_mean, run_var, c, mu, var, M, momentum);
		/* The same float a, b as bn_relu_recompute and the backward's ReLU
		 * mask, so the recomputed activation is bit-identical. */
		float a = gamma[c] * rstd[c], b = beta[c] - mean[c] * a;
		if (mode == 0) {
			for (size_t j = 0; j < M; j++)
				y[j] = x[j] * a + b;
		} else if (mode == 1) {
			for (size_t j = 0; j < M; j++) {
				float v = x[j] * a + b;
				y[j] = v > 0.0f ? v : 0.0f;
			}
		} else {
			const float *r = res + c * M;
			for (size_t j = 0; j < M; j++) {
				float v = x[j] * a + b + r[j];
				y[j] = v > 0.0f ? v : 0.0f;
			}
		}
	}
}

static void
bn_eval_any(float *out, const float *inp, const float *res, const float *run_mean, const float *run_var,
            const float *gamma, const float *beta, int n, int C, int HW, float eps, int mode)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M;
		float *y = out + c * M;
		double rs = 1.0 / sqrt((double)run_var[c] + eps);
		float a = (float)(gamma[c] * rs), b = (float)(beta[c] - run_mean[c] * gamma[c] * rs);
		if (mode == 0) {
			for (size_t j = 0; j < M; j++)
				y[j] = x[j] * a + b;
		} else if (mode == 1) {
			for (size_t j = 0; j < M; j++) {
				float v = x[j] * a + b;
				y[j] = v > 0.0f ? v : 0.0f;
			}
		} else {
			const float *r = res + c * M;
			for (size_t j = 0; j < M; j++) {
				float v = x[j] * a + b + r[j];
				y[j] = v > 0.0f ? v : 0.0f;
			}
		}
	}
}

void
bn_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                 const float *inp, const float *gamma, const float *beta,
                 int n, int C, int HW, float momentum, float eps)
{
	bn_train_any(out, mean, rstd, run_mean, run_var, inp, NULL, gamma, beta, n, C, HW, momentum, eps, 0);
}

void
bn_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                      const float *inp, const float *gamma, const float *beta,
                      int n, int C, int HW, float momentum, float eps)
{
	bn_train_any(out, mean, rstd, run_mean, run_var, inp, NULL, gamma, beta, n, C, HW, momentum, eps, 1);
}

void
bn_add_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                          const float *inp, const float *res, const float *gamma, const float *beta,
                          int n, int C, int HW, float momentum, float eps)
{
	bn_train_any(out, mean, rstd, run_mean, run_var, inp, res, gamma, beta, n, C, HW, momentum, eps, 2);
}

void
bn_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                const float *gamma, const float *beta, int n, int C, int HW, float eps)
{
	bn_eval_any(out, inp, NULL, run_mean, run_var, gamma, beta, n, C, HW, eps, 0);
}

void
bn_relu_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                     const float *gamma, const float *beta, int n, int C, int HW, float eps)
{
	bn_eval_any(out, inp, NULL, run_mean, run_var, gamma, beta, n, C, HW, eps, 1);
}

void
bn_add_relu_forward_eval(float *out, const float *inp, const float *res,
                         const float *run_mean, const float *run_var,
                         const float *gamma, const float *beta, int n, int C, int HW, float eps)
{
	bn_eval_any(out, inp, res, run_mean, run_var, gamma, beta, n, C, HW, eps, 2);
}

void
bn_relu_recompute(float *out, const float *inp, const float *mean, const float *rstd,
                  const float *gamma, const float *beta, int n, int C, int HW)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M;
		float *y = out + c * M;
		float a = gamma[c] * rstd[c], b = beta[c] - mean[c] * a;
		for (size_t j = 0; j < M; j++) {
			float v = x[j] * a + b;
			y[j] = v > 0.0f ? v : 0.0f;
		}
	}
}

/* The gradient through y = gamma * xhat + beta, xhat = (x - mean) * rstd,
 * with batch statistics:
 *   dx = gamma * rstd * (g - mean(g) - xhat * mean(g * xhat)).
 * g is dout masked by: 0 none, 1 relu(bn(x)) > 0 (recomputed), 2 out > 0. */
static void
bn_backward_any(float *dinp, float *dres, float *dgamma, float *dbeta,
                const float *dout, const float *outp, const float *inp, const float *mean,
                const float *rstd, const float *gamma, const float *beta, int n, int C, int HW, int mode)
{
	const size_t M = (size_t)n * HW;
#pragma omp parallel for schedule(static)
	for (int c = 0; c < C; c++) {
		const float *x = inp + c * M, *dy = dout + c * M;
		const float *o = mode == 2 ? outp + c * M : NULL;
		const float mu = mean[c], rs = rstd[c];
		const float a = mode == 1 ? gamma[c] * rs : 0.0f, b = mode == 1 ? beta[c] - mu * a : 0.0f;
		double sg = 0, sgx = 0;
		if (mode == 0) {
#pragma omp simd reduction(+ : sg, sgx)
			for (size_t j = 0; j < M; j++) {
				sg += dy[j];
				sgx += (double)dy[j] * ((x[j] - mu) * rs);
			}
		} else if (mode == 1) {
#pragma omp simd reduction(+ : sg, sgx)
			for (size_t j = 0; j < M; j++) {
				float g = x[j] * a + b > 0.0f ? dy[j] : 0.0f;
				sg += g;
				sgx += (double)g * ((x[j] - mu) * rs);
			}
		} else {
#pragma omp simd reduction(+ : sg, sgx)
			for (size_t j = 0; j < M; j++) {
				float g = o[j] > 0.0f ? dy[j] : 0.0f;
				sg += g;
				sgx += (double)g * ((x[j] - mu) * rs);
			}
		}
		dgamma[c] += (float)sgx;
		dbeta[c] += (float)sg;
		if (mode == 2 && dres) {
			float *dr = dres + c * M;
			for (size_t j = 0; j < M; j++)
				dr[j] += o[j] > 0.0f ? dy[j] : 0.0f;
		}
		if (!dinp)
			continue;
		float *dx = dinp + c * M;
		const float k = gamma[c] * rs, mg = (float)(sg / (double)M), mgx = (float)(sgx / (double)M);
		if (mode == 0) {
			for (size_t j = 0; j < M; j++)
				dx[j] += k * (dy[j] - mg - (x[j] - mu) * rs * mgx);
		} else if (mode == 1) {
			for (size_t j = 0; j < M; j++) {
				float g = x[j] * a + b > 0.0f ? dy[j] : 0.0f;
				dx[j] += k * (g - mg - (x[j] - mu) * rs * mgx);
			}
		} else {
			for (size_t j = 0; j < M; j++) {
				float g = o[j] > 0.0f ? dy[j] : 0.0f;
				dx[j] += k * (g - mg - (x[j] - mu) * rs * mgx);
			}
		}
	}
}

void
bn_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
            const float *mean, const float *rstd, const float *gamma, int n, int C, int HW)
{
	bn_backward_any(dinp, NULL, dgamma, dbeta, dout, NULL, inp, mean, rstd, gamma, NULL, n, C, HW, 0);
}

void
bn_relu_backward(float *dinp, float *dgamma, float *dbeta, const float *dout, const float *inp,
                 const float *mean, const float *rstd, const float *gamma, const float *beta,
                 int n, int C, int HW)
{
	bn_backward_any(dinp, NULL, dgamma, dbeta, dout, NULL, inp, mean, rstd, gamma, beta, n, C, HW, 1);
}

void
bn_add_relu_backward(float *dinp, float *dres, float *dgamma, float *dbeta,
                     const float *dout, const float *out, const float *inp,
                     const float *mean, const float *rstd, const float *gamma, int n, int C, int HW)
{
	bn_backward_any(dinp, dres, dgamma, dbeta, dout, out, inp, mean, rstd, gamma, NULL, n, C, HW, 2);
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
		channel_update_running(run_mean, run_var, c, mu, var, M, momentum);
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
