/* conv: see conv.h. Convolution as im2col + one sgemm per chunk of images;
 * backward as two sgemms (weights, then columns) + col2im. */
#include "conv.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "gemm.h"
#include "parallel.h"
#include "simd.h"

/* Output columns per chunk worth one sgemm call, and the most column floats
 * a thread may hold (16 MB). */
#define CHUNK_COLS   512
#define CHUNK_BUDGET ((size_t)1 << 22)

int
conv_shape_init(ConvShape *s, int C, int H, int W, int OC, int K, int S, int P, int max_n)
{
	if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0 || P > 65536 || K > 65536 ||
	    max_n < 1)
		return -1;
	if ((long)H + 2L * P < K || (long)W + 2L * P < K)
		return -1;
	*s = (ConvShape){ .C = C, .H = H, .W = W, .OC = OC, .K = K, .S = S, .P = P };
	s->OH = (H + 2 * P - K) / S + 1;
	s->OW = (W + 2 * P - K) / S + 1;
	s->threads = parallel_threads();
	size_t ohw = (size_t)s->OH * s->OW, per = (size_t)C * K * K * ohw;
	size_t chunk = (CHUNK_COLS + ohw - 1) / ohw;
	while (chunk > 1 && chunk * per > CHUNK_BUDGET)
		chunk--;
	size_t fair = ((size_t)max_n + s->threads - 1) / s->threads; /* every thread gets work */
	if (chunk > fair)
		chunk = fair;
	s->chunk = chunk ? (int)chunk : 1;
	return 0;
}

static int
conv_is_pointwise(const ConvShape *s)
{
	return s->K == 1 && s->S == 1 && s->P == 0;
}

/* Column floats of one chunk (also used by pointwise convolutions when an
 * input transform needs a transformed copy). */
static size_t
conv_chunk_floats(const ConvShape *s)
{
	return (size_t)s->C * s->K * s->K * s->OH * s->OW * s->chunk;
}

/* work: [threads x chunk columns][(threads - 1) x weight partials][threads x 2*OC doubles] */
size_t
conv_work_floats(const ConvShape *s)
{
	return conv_chunk_floats(s) * s->threads + (size_t)(s->threads - 1) * s->OC * s->C * s->K * s->K +
	       (size_t)s->threads * 4 * s->OC + 4;
}

int64_t
conv_flops(const ConvShape *s)
{
	return 2 * (int64_t)s->C * s->K * s->K * s->OC * s->OH * s->OW;
}

/* A thread's share [lo, hi) of nchunks, in order: the same chunks every
 * run, so sums over chunks are reproducible. */
static void
share(int nchunks, int t, int T, int *lo, int *hi)
{
	*lo = (int)((long)nchunks * t / T);
	*hi = (int)((long)nchunks * (t + 1) / T);
}

/* col (C*K*K, nb*OH*OW) from images [i0, i0+nb) of inp (C,n,H,W), through
 * the input transform relu((x - m) * a + b) when f has one (padding stays 0:
 * it pads the transformed input). */
SIMD_CLONES static void
im2col(float *col, const float *inp, int n, int i0, int nb, const ConvShape *s, const ConvFuse *f)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const long rows = (long)s->C * K * K;
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw;
	const int tf = f && f->in_mean;
	for (long r = 0; r < rows; r++) {
		int kw = (int)(r % K), kh = (int)(r / K % K), c = (int)(r / (K * K));
		float m = tf ? f->in_mean[c] : 0.0f, a = tf ? f->in_scale[c] : 1.0f, b = tf ? f->in_shift[c] : 0.0f;
		float *dst = col + (size_t)r * ld;
		/* output columns [ow_lo, ow_hi) read inside the image */
		int ow_lo = 0, ow_hi = OW;
		while (ow_lo < OW && ow_lo * S - P + kw < 0)
			ow_lo++;
		while (ow_hi > ow_lo && (ow_hi - 1) * S - P + kw >= W)
			ow_hi--;
		for (int ii = 0; ii < nb; ii++) {
			const float *src = inp + ((size_t)c * n + i0 + ii) * H * W;
			for (int oh = 0; oh < OH; oh++, dst += OW) {
				int ih = oh * S - P + kh;
				if (ih < 0 || ih >= H) {
					memset(dst, 0, sizeof(float) * OW);
					continue;
				}
				const float *row = src + (size_t)ih * W; /* input column ow*S - P + kw */
				const int off = kw - P;
				for (int ow = 0; ow < ow_lo; ow++)
					dst[ow] = 0.0f;
				if (S == 1 && !tf) {
					memcpy(dst + ow_lo, row + ow_lo + off, sizeof(float) * (ow_hi - ow_lo));
				} else if (S == 1) {
#pragma omp simd
					for (int ow = ow_lo; ow < ow_hi; ow++) {
						float v = (row[ow + off] - m) * a + b;
						dst[ow] = v > 0.0f ? v : 0.0f;
					}
				} else if (!tf) {
					for (int ow = ow_lo; ow < ow_hi; ow++)
						dst[ow] = row[ow * S + off];
				} else {
					for (int ow = ow_lo; ow < ow_hi; ow++) {
						float v = (row[ow * S + off] - m) * a + b;
						dst[ow] = v > 0.0f ? v : 0.0f;
					}
				}
				for (int ow = ow_hi; ow < OW; ow++)
					dst[ow] = 0.0f;
			}
		}
	}
}

/* dinp (C,n,H,W) images [i0, i0+nb) += col2im(dcol); overwrite: the chunk's
 * images are cleared first (they are about to be in cache anyway). */
SIMD_CLONES static void
col2im(float *dinp, const float *dcol, int n, int i0, int nb, const ConvShape *s, int overwrite)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw;
	for (int c = 0; c < s->C; c++) {
		if (overwrite)
			memset(dinp + ((size_t)c * n + i0) * H * W, 0, sizeof(float) * nb * H * W);
		for (int kh = 0; kh < K; kh++)
			for (int kw = 0; kw < K; kw++) {
				const float *src = dcol + ((size_t)(c * K + kh) * K + kw) * ld;
				int ow_lo = 0, ow_hi = OW;
				while (ow_lo < OW && ow_lo * S - P + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * S - P + kw >= W)
					ow_hi--;
				const int off = kw - P;
				for (int ii = 0; ii < nb; ii++) {
					float *dst = dinp + ((size_t)c * n + i0 + ii) * H * W;
					for (int oh = 0; oh < OH; oh++, src += OW) {
						int ih = oh * S - P + kh;
						if (ih < 0 || ih >= H)
							continue;
						float *row = dst + (size_t)ih * W;
						if (S == 1) {
#pragma omp simd
							for (int ow = ow_lo; ow < ow_hi; ow++)
								row[ow + off] += src[ow];
						} else {
							for (int ow = ow_lo; ow < ow_hi; ow++)
								row[ow * S + off] += src[ow];
						}
					}
				}
			}
	}
}

SIMD_CLONES static void
row_sums(const float *x, int len, double *sum, double *sumsq)
{
	double a = 0, b = 0;
#pragma omp simd reduction(+ : a, b)
	for (int j = 0; j < len; j++) {
		double v = x[j];
		a += v;
		b += v * v;
	}
	*sum += a;
	*sumsq += b;
}

void
conv2d_forward_fused(float *out, float *work, const float *inp, const float *weight, const float *bias,
                     int n, const ConvShape *s, const ConvFuse *f)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K, nchunks = (n + s->chunk - 1) / s->chunk;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw, csz = conv_chunk_floats(s);
	const int direct = conv_is_pointwise(s) && !(f && f->in_mean);
	double *tstats = (double *)(work + csz * s->threads + (size_t)(s->threads - 1) * OC * CKK);
	tstats = (double *)(((uintptr_t)tstats + 7) & ~(uintptr_t)7);
	double *stats = f ? f->out_stats : NULL;
#pragma omp parallel num_threads(s->threads) if (nchunks > 1)
	{
		const int t = omp_get_thread_num(), T = omp_get_num_threads();
		double *ts = tstats + (size_t)t * 2 * OC;
		if (stats)
			memset(ts, 0, sizeof(double) * 2 * OC);
		int lo, hi;
		share(nchunks, t, T, &lo, &hi);
		for (int ch = lo; ch < hi; ch++) {
			int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
			int ncol = (int)(nb * ohw);
			const float *B = inp + i0 * ohw;
			int ldb = (int)ldo;
			if (!direct) {
				float *col = work + (size_t)t * csz;
				im2col(col, inp, n, i0, nb, s, f);
				B = col;
				ldb = ncol;
			}
			gemm_serial(0, 0, OC, ncol, CKK, 1.0f, weight, CKK, B, ldb, 0.0f, out + i0 * ohw, (int)ldo);
			for (int oc = 0; oc < OC && (bias || stats); oc++) {
				float *o = out + oc * ldo + i0 * ohw;
				if (bias) {
					float b = bias[oc];
					for (int j = 0; j < ncol; j++)
						o[j] += b;
				}
				if (stats) /* while the chunk is still in cache */
					row_sums(o, ncol, &ts[2 * oc], &ts[2 * oc + 1]);
			}
		}
#pragma omp barrier
#pragma omp single
		if (stats)
			for (int u = 0; u < T; u++)
				for (int j = 0; j < 2 * OC; j++)
					stats[j] += tstats[(size_t)u * 2 * OC + j];
	}
}

void
conv2d_backward_fused(float *dinp, float *dweight, float *dbias, float *work, const float *dout,
                      const float *inp, const float *weight, int n, const ConvShape *s, const ConvFuse *f)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K, nchunks = (n + s->chunk - 1) / s->chunk;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw, csz = conv_chunk_floats(s);
	const size_t wsz = (size_t)OC * CKK;
	const int direct = conv_is_pointwise(s) && !(f && f->in_mean);
	const int overwrite = f && f->dinp_overwrite;
	float *partial = work + csz * s->threads; /* (threads - 1) weight gradients */
	if (dbias) {
#pragma omp parallel for schedule(static) num_threads(s->threads) if (ldo * OC > PAR_MIN)
		for (int oc = 0; oc < OC; oc++) {
			const float *d = dout + oc * ldo;
			double t = 0;
			for (size_t j = 0; j < ldo; j++)
				t += d[j];
			dbias[oc] += (float)t;
		}
	}
#pragma omp parallel num_threads(s->threads) if (nchunks > 1)
	{
		const int t = omp_get_thread_num(), T = omp_get_num_threads();
		float *dw = t ? partial + (size_t)(t - 1) * wsz : dweight;
		if (t)
			memset(dw, 0, sizeof(float) * wsz);
		float *col = work + (size_t)t * csz;
		int lo, hi;
		share(nchunks, t, T, &lo, &hi);
		for (int ch = lo; ch < hi; ch++) {
			int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
			int ncol = (int)(nb * ohw);
			const float *dy = dout + i0 * ohw;
			if (direct) {
				gemm_serial(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, inp + i0 * ohw, (int)ldo, 1.0f, dw, CKK);
				if (dinp)
					gemm_serial(1, 0, CKK, ncol, OC, 1.0f, weight, CKK, dy, (int)ldo, overwrite ? 0.0f : 1.0f,
					            dinp + i0 * ohw, (int)ldo);
				continue;
			}
			im2col(col, inp, n, i0, nb, s, f);
			gemm_serial(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, col, ncol, 1.0f, dw, CKK);
			if (!dinp)
				continue;
			if (conv_is_pointwise(s)) {
				gemm_serial(1, 0, CKK, ncol, OC, 1.0f, weight, CKK, dy, (int)ldo, overwrite ? 0.0f : 1.0f,
				            dinp + i0 * ohw, (int)ldo);
			} else {
				gemm_serial(1, 0, CKK, ncol, OC, 1.0f, weight, CKK, dy, (int)ldo, 0.0f, col, ncol);
				col2im(dinp, col, n, i0, nb, s, overwrite);
			}
		}
#pragma omp barrier
		/* the partials, in thread order */
#pragma omp for schedule(static)
		for (size_t j = 0; j < wsz; j++) {
			float a = 0;
			for (int u = 1; u < T; u++)
				a += partial[(size_t)(u - 1) * wsz + j];
			dweight[j] += a;
		}
	}
}

void
conv2d_forward(float *out, float *work, const float *inp, const float *weight, const float *bias,
               int n, const ConvShape *s)
{
	conv2d_forward_fused(out, work, inp, weight, bias, n, s, NULL);
}

void
conv2d_backward(float *dinp, float *dweight, float *dbias, float *work,
                const float *dout, const float *inp, const float *weight, int n, const ConvShape *s)
{
	conv2d_backward_fused(dinp, dweight, dbias, work, dout, inp, weight, n, s, NULL);
}

/* ---- naive twins ---- */

void
conv2d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                   int n, const ConvShape *s)
{
	const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
	for (int oc = 0; oc < s->OC; oc++)
		for (int i = 0; i < n; i++)
			for (int oh = 0; oh < OH; oh++)
				for (int ow = 0; ow < OW; ow++) {
					double t = bias ? bias[oc] : 0.0;
					for (int c = 0; c < C; c++)
						for (int kh = 0; kh < K; kh++)
							for (int kw = 0; kw < K; kw++) {
								int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								t += (double)inp[(((size_t)c * n + i) * H + ih) * W + iw] *
								     weight[(((size_t)oc * C + c) * K + kh) * K + kw];
							}
					out[(((size_t)oc * n + i) * OH + oh) * OW + ow] = (float)t;
				}
}

void
conv2d_backward_ref(float *dinp, float *dweight, float *dbias,
                    const float *dout, const float *inp, const float *weight, int n, const ConvShape *s)
{
	const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
	for (int oc = 0; oc < s->OC; oc++) {
		if (dbias) {
			double t = 0;
			for (size_t j = 0; j < (size_t)n * OH * OW; j++)
				t += dout[(size_t)oc * n * OH * OW + j];
			dbias[oc] += (float)t;
		}
		for (int c = 0; c < C; c++)
			for (int kh = 0; kh < K; kh++)
				for (int kw = 0; kw < K; kw++) {
					double t = 0;
					for (int i = 0; i < n; i++)
						for (int oh = 0; oh < OH; oh++)
							for (int ow = 0; ow < OW; ow++) {
								int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								t += (double)dout[(((size_t)oc * n + i) * OH + oh) * OW + ow] *
								     inp[(((size_t)c * n + i) * H + ih) * W + iw];
							}
					dweight[(((size_t)oc * C + c) * K + kh) * K + kw] += (float)t;
				}
	}
	if (!dinp)
		return;
	for (int c = 0; c < C; c++)
		for (int i = 0; i < n; i++)
			for (int ih = 0; ih < H; ih++)
				for (int iw = 0; iw < W; iw++) {
					double t = 0;
					for (int oc = 0; oc < s->OC; oc++)
						for (int kh = 0; kh < K; kh++)
							for (int kw = 0; kw < K; kw++) {
								int a = ih + s->P - kh, b = iw + s->P - kw;
								if (a < 0 || b < 0 || a % s->S || b % s->S)
									continue;
								int oh = a / s->S, ow = b / s->S;
								if (oh >= OH || ow >= OW)
									continue;
								t += (double)dout[(((size_t)oc * n + i) * OH + oh) * OW + ow] *
								     weight[(((size_t)oc * C + c) * K + kh) * K + kw];
							}
					dinp[(((size_t)c * n + i) * H + ih) * W + iw] += (float)t;
				}
}
