/* layers: the small layers (ReLU, residual add, max-pool, global average
 * pool, linear) and the layout/normalisation helpers at the model's edges.
 *
 * Activations are channel-major (C, n, H, W) as in conv.h; features are
 * (C, n). Forward overwrites its output; backward accumulates (+=) into
 * every gradient buffer (NULL skips one). */
#ifndef SSL_LAYERS_H
#define SSL_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/gemm.h"

/* out = max(inp, 0); in place allowed. */
void relu_forward(float *out, const float *inp, size_t len);
/* dinp += dout where out > 0. */
void relu_backward(float *dinp, const float *dout, const float *out, size_t len);

/* out = a + b; in place allowed. */
void add_forward(float *out, const float *a, const float *b, size_t len);
/* da += dout, db += dout. */
void add_backward(float *da, float *db, const float *dout, size_t len);

/* Max-pool over K x K windows with stride S and padding P (padding never
 * wins, as PyTorch's -inf padding). The first maximum in a window wins. */
typedef struct {
	int C, H, W, K, S, P;
	int OH, OW; /* set by pool_shape_init */
} PoolShape;
int  pool_shape_init(PoolShape *s, int C, int H, int W, int K, int S, int P); /* -1 if invalid */
/* out (C,n,OH,OW); argmax (same size) keeps the winning y*W+x for backward. */
void maxpool2d_forward(float *out, int32_t *argmax, const float *inp, int n, const PoolShape *s);
void maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax, int n, const PoolShape *s);
void maxpool2d_forward_ref(float *out, const float *inp, int n, const PoolShape *s);

/* Global average pool: inp (C,n,HW) -> out (C,n). */
void avgpool_global_forward(float *out, const float *inp, int n, int C, int HW);
void avgpool_global_backward(float *dinp, const float *dout, int n, int C, int HW);

/* Linear on features: out (OC,n) = weight (OC,C) x inp (C,n) + bias (OC).
 * weight is PyTorch's nn.Linear layout; bias NULL: none. */
void linear_forward(float *out, const float *inp, const float *weight, const float *bias,
                    int n, int C, int OC);
void linear_backward(float *dinp, float *dweight, float *dbias,
                     const float *dout, const float *inp, const float *weight,
                     int n, int C, int OC);
/* The same with the products done by mm: gemm (what the two above use) or
 * gemm_bf16 (lib/nn/bf16.h) for the bf16 precision. */
void linear_forward_with(GemmFn *mm, float *out, const float *inp, const float *weight, const float *bias, int n,
                         int C, int OC);
void linear_backward_with(GemmFn *mm, float *dinp, float *dweight, float *dbias, const float *dout,
                          const float *inp, const float *weight, int n, int C, int OC);
void linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                        int n, int C, int OC);

/* out (cols, rows) = inp (rows, cols)^T; not in place. */
void transpose(float *out, const float *inp, int rows, int cols);
/* (n,C,HW) <-> (C,n,HW); not in place. */
void nchw_to_cnhw(float *out, const float *inp, int n, int C, int HW);
void cnhw_to_nchw(float *out, const float *inp, int n, int C, int HW);

/* uint8 images (n,H,W,C) -> float (n,C,H,W):
 *   out = (inp / 255 - mean[c]) / std[c]
 * computed as inp * a[c] + b[c] with a = 1/(255 std), b = -mean/std (float). */
void input_normalize_u8(float *out, const uint8_t *inp, int n, int H, int W, int C,
                        const float *mean, const float *std);

#endif
