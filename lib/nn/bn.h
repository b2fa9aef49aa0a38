/* bn: batch normalisation (BatchNorm2d and BatchNorm1d), PyTorch semantics.
 *
 * Layout is channel-major (see conv.h): channel c of a batch is the
 * contiguous run inp[c*n*HW .. (c+1)*n*HW). BatchNorm1d on features (C, n)
 * is the same call with HW = 1.
 *
 * Training mode normalises with the batch mean and biased variance, saves
 * mean and rstd = 1/sqrt(var + eps) for backward, and updates the running
 * statistics with the unbiased variance:
 *   run_mean = (1 - momentum) * run_mean + momentum * mean
 *   run_var  = (1 - momentum) * run_var  + momentum * var * M / (M - 1),  M = n*HW
 * (run_mean/run_var NULL: no update). Eval mode uses the running statistics.
 *
 * Fused variants save memory traffic and activation memory: *_relu computes
 * relu(bn(x)), whose backward (bn_backward_fused, BN_MASK_RECOMPUTE)
 * recomputes the ReLU mask from inp, so the output need not be kept;
 * *_add_relu computes relu(bn(x) + res), the end of a residual block, whose
 * backward (BN_MASK_OUT) takes the mask from the saved output. Eval mode is
 * bn_eval_rstd + bn_apply (bn_relu_forward_eval for the head).
 *
 * Each fused kernel is checked against the naive twins at the end
 * (bn_forward_train_ref, bn_backward_ref) in tests/check_bn.c.
 *
 * Forward overwrites out; backward accumulates (+=) into dinp, dres, dgamma,
 * dbeta (dinp or dres may be NULL to skip). */
#ifndef SSL_BN_H
#define SSL_BN_H

#include <stddef.h>
#include <stdint.h>

#define BN_MOMENTUM 0.1f
#define BN_EPS      1e-5f

void bn_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                      const float *inp, const float *gamma, const float *beta,
                      int n, int C, int HW, float momentum, float eps);

/* out = relu(bn(inp)) */
void bn_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                           const float *inp, const float *gamma, const float *beta,
                           int n, int C, int HW, float momentum, float eps);
void bn_relu_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                          const float *gamma, const float *beta, int n, int C, int HW, float eps);

/* out = relu(bn(inp) + res) */
void bn_add_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                               const float *inp, const float *res, const float *gamma, const float *beta,
                               int n, int C, int HW, float momentum, float eps);

/* ---- building blocks: the model fuses these with its convolutions ----
 * (the functions above are made of them). */
typedef enum {
	BN_MASK_NONE,      /* g = dout */
	BN_MASK_RECOMPUTE, /* g = dout * (relu(bn(inp)) > 0), the mask recomputed */
	BN_MASK_OUT        /* g = dout * (out > 0), the mask of a saved output */
} BnMask;

/* *sum += the sum, *sumsq += the sum of squares of M values (in double):
 * one channel's statistics (the convolutions take them from their output). */
void bn_sums(const float *x, size_t M, double *sum, double *sumsq);
/* stats[2c] += sum, stats[2c+1] += sum of squares of channel c (double). */
void bn_stats_accumulate(double *stats, const float *inp, int n, int C, int HW);
/* mean and rstd from the sums of M values per channel; updates the running
 * statistics (NULL: not) as bn_forward_train does. */
void bn_stats_finish(float *mean, float *rstd, float *run_mean, float *run_var, const double *stats,
                     int C, int64_t M, float momentum, float eps);
/* rstd = 1 / sqrt(run_var + eps), for bn_apply in eval mode. */
void bn_eval_rstd(float *rstd, const float *run_var, int C, float eps);
/* out = act((inp - mean) * (gamma * rstd) + beta [+ res]); act is ReLU when
 * relu; res NULL: none. out may be inp. */
void bn_apply(float *out, const float *inp, const float *res, const float *mean, const float *rstd,
              const float *gamma, const float *beta, int n, int C, int HW, int relu);
/* The backward of any of the above with g masked as `mask` says (beta only
 * for BN_MASK_RECOMPUTE, out only for BN_MASK_OUT). dres receives g (for
 * the residual input of *_add_relu); dinp the input gradient. accumulate:
 * 1 adds to dinp and dres, 0 overwrites them (no zeroing pass needed);
 * dinp may be dout itself (each value is read before it is overwritten).
 * sums: sum g and sum g * xhat per channel (2C) when already known (a
 * convolution's backward gathered them, conv.h ConvFuse), else NULL. */
void bn_backward_fused(float *dinp, float *dres, float *dgamma, float *dbeta,
                       const float *dout, const float *out, const float *inp,
                       const float *mean, const float *rstd, const float *gamma, const float *beta,
                       int n, int C, int HW, BnMask mask, int accumulate, const double *sums);

/* sums[0] += sum g, sums[1] += sum g * xhat over len values of one channel,
 * g = dy * ((x - m) * a + b > 0), xhat = (x - m) * rs: the BN_MASK_RECOMPUTE
 * sums, for a caller that has a piece of dy in cache. */
void bn_grad_sums_recompute(double *sums, const float *dy, const float *x, size_t len, float m, float rs,
                            float a, float b);

/* Naive twins in double: the plain (unfused) train forward and backward. */
void bn_forward_train_ref(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                          const float *inp, const float *gamma, const float *beta,
                          int n, int C, int HW, float momentum, float eps);
void bn_backward_ref(float *dinp, float *dgamma, float *dbeta,
                     const float *dout, const float *inp, const float *mean, const float *rstd,
                     const float *gamma, int n, int C, int HW);

#endif
