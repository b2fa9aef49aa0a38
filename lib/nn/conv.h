/* conv: 2-D convolution (cross-correlation, as PyTorch), forward and backward.
 *
 * Layout. Activations are channel-major "CNHW": element (c, i, y, x) of a
 * batch of n images is at ((c * n + i) * H + y) * W + x. With it every
 * convolution of the whole batch is one sgemm,
 *     out (OC, n*OH*OW) = weight (OC, C*K*K) x col (C*K*K, n*OH*OW),
 * whose N = n*OH*OW stays large even for the 4x4 maps at the end of a CIFAR
 * ResNet, and BatchNorm reads each channel as one contiguous run. Weights
 * are PyTorch's (OC, C, K, K). Convert at the edges with lib/nn/layers.h
 * (nchw_to_cnhw / cnhw_to_nchw).
 *
 * im2col runs in chunks of s->chunk images so the workspace stays bounded
 * (conv_work_floats); 1x1 stride-1 unpadded convolutions skip im2col, and
 * so do stride-1 "same" convolutions of up to 32 channels on CPUs with
 * AVX2+FMA (an implicit GEMM over one zero-padded copy of each image; in
 * bf16 over interleaved pairs of its channels).
 * Threads take fixed shares of chunks, so results do not change between
 * runs with the same thread count.
 *
 * Forward overwrites `out`; backward accumulates (+=) into dinp, dweight and
 * dbias. dinp == NULL skips the input gradient (first layer), dbias/bias
 * NULL: no bias. */
#ifndef SSL_CONV_H
#define SSL_CONV_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int C, H, W;     /* input channels and size */
	int OC, K, S, P; /* output channels, square kernel, stride, zero padding */
	int OH, OW;      /* set by conv_shape_init */
	int chunk;       /* images per im2col chunk; set by conv_shape_init */
	int threads;     /* OpenMP team the workspace is planned for (parallel_threads()) */
	int bf16;        /* 1: every product in bf16 with fp32 sums (lib/nn/bf16.h): the
	                  * implicit GEMM's shapes on its bf16 kernels, the others through
	                  * im2col (1x1 stride 1: directly); 0 after conv_shape_init. Set
	                  * by the model's precision. */
} ConvShape;

/* Fills s for batches of at most max_n images. Chunks are a few hundred
 * output columns (enough for an efficient sgemm, small enough for the cache
 * and to share n images among threads). -1 when a size is invalid or the
 * output would be empty. */
int    conv_shape_init(ConvShape *s, int C, int H, int W, int OC, int K, int S, int P, int max_n);
/* Workspace floats that `work` must hold: one column chunk per thread,
 * weight-gradient partials and sums for backward and statistics. */
size_t conv_work_floats(const ConvShape *s);
/* Enough for a forward pass without out_stats (inference). */
size_t conv_work_floats_eval(const ConvShape *s);
/* Forward FLOPs for one image (2 * C*K*K * OC * OH*OW). */
int64_t conv_flops(const ConvShape *s);

/* out (OC,n,OH,OW) = conv(inp (C,n,H,W), weight (OC,C,K,K)) + bias (OC).
 * Threads take chunks of images; each runs im2col and a one-thread sgemm. */
void conv2d_forward(float *out, float *work,
                    const float *inp, const float *weight, const float *bias,
                    int n, const ConvShape *s);
/* dinp (C,n,H,W) +=, dweight (OC,C,K,K) +=, dbias (OC) += from dout (OC,n,OH,OW).
 * Per chunk: dweight_t += dout x col^T, then col = weight^T x dout and
 * col2im into the chunk's own images (no two threads touch one image);
 * the per-thread weight partials are summed at the end. */
void conv2d_backward(float *dinp, float *dweight, float *dbias, float *work,
                     const float *dout, const float *inp, const float *weight,
                     int n, const ConvShape *s);

/* Fusions around a convolution, for the model (all optional). */
typedef struct {
	/* The convolution reads relu((x - in_mean[c]) * in_scale[c] + in_shift[c])
	 * instead of x: the BatchNorm+ReLU that feeds it is applied while
	 * building columns, so its output is never stored. Backward then gives
	 * the gradient with respect to that transformed input. */
	const float *in_mean, *in_scale, *in_shift;
	/* Forward: out_stats[2oc] += sum and out_stats[2oc+1] += sum of squares
	 * of output channel oc (BatchNorm statistics taken while it is in cache). */
	double *out_stats;
	/* Backward: dinp = (overwrite) instead of dinp += (no zeroing pass). */
	int dinp_overwrite;
	/* Backward, with an input transform and dinp_overwrite: the sums the
	 * BatchNorm backward of that transform needs, taken while each chunk of
	 * dinp is in cache: dinp_sums[2c] += sum g, [2c+1] += sum g * xhat, where
	 * g = dinp * (transformed input > 0) and xhat = (x - in_mean) * in_rstd
	 * (see bn_backward_fused). */
	const float *in_rstd;
	double *dinp_sums;
} ConvFuse;

void conv2d_forward_fused(float *out, float *work, const float *inp, const float *weight, const float *bias,
                          int n, const ConvShape *s, const ConvFuse *f);
void conv2d_backward_fused(float *dinp, float *dweight, float *dbias, float *work, const float *dout,
                           const float *inp, const float *weight, int n, const ConvShape *s, const ConvFuse *f);

/* Naive twins: direct loops, double accumulation, no workspace. */
void conv2d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                        int n, const ConvShape *s);
void conv2d_backward_ref(float *dinp, float *dweight, float *dbias,
                         const float *dout, const float *inp, const float *weight,
                         int n, const ConvShape *s);

#endif
