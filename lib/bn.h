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
 * relu(bn(x)) and its backward recomputes the ReLU mask from inp, so the
 * output need not be kept; *_add_relu computes relu(bn(x) + res), the end of
 * a residual block, and its backward takes the mask from the saved output.
 *
 * Forward overwrites out; backward accumulates (+=) into dinp, dres, dgamma,
 * dbeta (dinp or dres may be NULL to skip). */
#ifndef SSL_BN_H
#define SSL_BN_H

#define BN_MOMENTUM 0.1f
#define BN_EPS      1e-5f

void bn_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                      const float *inp, const float *gamma, const float *beta,
                      int n, int C, int HW, float momentum, float eps);
void bn_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                     const float *gamma, const float *beta, int n, int C, int HW, float eps);
void bn_backward(float *dinp, float *dgamma, float *dbeta,
                 const float *dout, const float *inp, const float *mean, const float *rstd,
                 const float *gamma, int n, int C, int HW);

/* out = relu(bn(inp)) */
void bn_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                           const float *inp, const float *gamma, const float *beta,
                           int n, int C, int HW, float momentum, float eps);
void bn_relu_forward_eval(float *out, const float *inp, const float *run_mean, const float *run_var,
                          const float *gamma, const float *beta, int n, int C, int HW, float eps);
void bn_relu_backward(float *dinp, float *dgamma, float *dbeta,
                      const float *dout, const float *inp, const float *mean, const float *rstd,
                      const float *gamma, const float *beta, int n, int C, int HW);
/* Recomputes relu(bn(inp)) from saved statistics (backward of the next layer needs it). */
void bn_relu_recompute(float *out, const float *inp, const float *mean, const float *rstd,
                       const float *gamma, const float *beta, int n, int C, int HW);

/* out = relu(bn(inp) + res) */
void bn_add_relu_forward_train(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                               const float *inp, const float *res, const float *gamma, const float *beta,
                               int n, int C, int HW, float momentum, float eps);
void bn_add_relu_forward_eval(float *out, const float *inp, const float *res,
                              const float *run_mean, const float *run_var,
                              const float *gamma, const float *beta, int n, int C, int HW, float eps);
/* g = dout * (out > 0); dres += g; dinp, dgamma, dbeta += bn backward of g. */
void bn_add_relu_backward(float *dinp, float *dres, float *dgamma, float *dbeta,
                          const float *dout, const float *out, const float *inp,
                          const float *mean, const float *rstd, const float *gamma,
                          int n, int C, int HW);

/* Naive twins in double: the plain (unfused) train forward and backward. */
void bn_forward_train_ref(float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                          const float *inp, const float *gamma, const float *beta,
                          int n, int C, int HW, float momentum, float eps);
void bn_backward_ref(float *dinp, float *dgamma, float *dbeta,
                     const float *dout, const float *inp, const float *mean, const float *rstd,
                     const float *gamma, int n, int C, int HW);

#endif
