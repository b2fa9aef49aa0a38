/* conv: see conv.h. Convolution as im2col + one sgemm per chunk of images;
 * backward as two sgemms (weights, then columns) + col2im. */
#include "conv.h"

#include <omp.h>
#include <string.h>

#include "gemm.h"
#include "parallel.h"

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

static size_t
conv_chunk_floats(const ConvShape *s)
{
	if (conv_is_pointwise(s))
		return 0;
	return (size_t)s->C * s->K * s->K * s->OH * s->OW * s->chunk;
}

size_t
conv_work_floats(const ConvShape *s)
{
	return conv_chunk_floats(s) * s->threads + (size_t)(s->threads - 1) * s->OC * s->C * s->K * s->K;
}

int64_t
conv_flops(const ConvShape *s)
{
	return 2 * (int64_t)s->C * s->K * s->K * s->OC * s->OH * s->OW;
}

/* col (C*K*K, nb*OH*OW) from images [i0, i0+nb) of inp (C,n,H,W). */
static void
im2col(float *col, const float *inp, int n, int i0, int nb, const ConvShape *s)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const long rows = (long)s->C * K * K;
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw;
	for (long r = 0; r < rows; r++) {
		int kw = (int)(r % K), kh = (int)(r / K % K), c = (int)(r / (K * K));
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
				long base = (long)ih * W - P + kw; /* + ow*S: the input column */
				for (int ow = 0; ow < ow_lo; ow++)
					dst[ow] = 0.0f;
				if (S == 1)
					memcpy(dst + ow_lo, src + base + ow_lo, sizeof(float) * (ow_hi - ow_lo));
				else
					for (int ow = ow_lo; ow < ow_hi; ow++)
						dst[ow] = src[base + (long)ow * S];
				for (int ow = ow_hi; ow < OW; ow++)
					dst[ow] = 0.0f;
			}
		}
	}
}

/* dinp (C,n,H,W) images [i0, i0+nb) += col2im(dcol). */
static void
col2im_add(float *dinp, const float *dcol, int n, int i0, int nb, const ConvShape *s)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw;
	for (int c = 0; c < s->C; c++)
		for (int kh = 0; kh < K; kh++)
			for (int kw = 0; kw < K; kw++) {
				const float *src = dcol + ((size_t)(c * K + kh) * K + kw) * ld;
				int ow_lo = 0, ow_hi = OW;
				while (ow_lo < OW && ow_lo * S - P + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * S - P + kw >= W)
					ow_hi--;
				for (int ii = 0; ii < nb; ii++) {
					float *dst = dinp + ((size_t)c * n + i0 + ii) * H * W;
					for (int oh = 0; oh < OH; oh++, src += OW) {
						int ih = oh * S - P + kh;
						if (ih < 0 || ih >= H)
							continue;
						long base = (long)ih * W - P + kw;
						for (int ow = ow_lo; ow < ow_hi; ow++)
							dst[base + (long)ow * S] += src[ow];
					}
				}
			}
}

void
conv2d_forward(float *out, float *work, const float *inp, const float *weight, const float *bias,
               int n, const ConvShape *s)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K, nchunks = (n + s->chunk - 1) / s->chunk;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw, csz = conv_chunk_floats(s);
	const int pw = conv_is_pointwise(s);
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->threads)
	for (int ch = 0; ch < nchunks; ch++) {
		int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
		int ncol = (int)(nb * ohw);
		const float *B = inp + i0 * ohw;
		int ldb = (int)ldo;
		if (!pw) {
			float *col = work + (size_t)omp_get_thread_num() * csz;
			im2col(col, inp, n, i0, nb, s);
			B = col;
			ldb = ncol;
		}
		gemm_serial(0, 0, OC, ncol, CKK, 1.0f, weight, CKK, B, ldb, 0.0f, out + i0 * ohw, (int)ldo);
		if (bias)
			for (int oc = 0; oc < OC; oc++) {
				float *o = out + oc * ldo + i0 * ohw, b = bias[oc];
				for (int j = 0; j < ncol; j++)
					o[j] += b;
			}
	}
}

void
conv2d_backward(float *dinp, float *dweight, float *dbias, float *work,
                const float *dout, const float *inp, const float *weight, int n, const ConvShape *s)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K, nchunks = (n + s->chunk - 1) / s->chunk;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw, csz = conv_chunk_floats(s);
	const size_t wsz = (size_t)OC * CKK;
	const int pw = conv_is_pointwise(s);
	float *partial = work + csz * s->threads; /* (threads - 1) weight gradients */
	if (dbias) {
#pragma omp parallel for schedule(static) num_threads(s->threads)
		for (int oc = 0; oc < OC; oc++) {
			const float *d = dout + oc * ldo;
			double t = 0;
			for (size_t j = 0; j < ldo; j++)
				t += d[j];
			dbias[oc] += (float)t;
		}
	}
#pragma omp parallel num_threads(s->threads)
	{
		const int t = omp_get_thread_num(), T = omp_get_num_threads();
		float *dw = t ? partial + (size_t)(t - 1) * wsz : dweight;
		if (t)
			memset(dw, 0, sizeof(float) * wsz);
		float *col = work + (size_t)t * csz;
#pragma omp for schedule(dynamic, 1)
		for (int ch = 0; ch < nchunks; ch++) {
			int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
			int ncol = (int)(nb * ohw);
			const float *dy = dout + i0 * ohw;
			if (pw) {
				gemm_serial(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, inp + i0 * ohw, (int)ldo, 1.0f, dw, CKK);
				if (dinp)
					gemm_serial(1, 0, CKK, ncol, OC, 1.0f, weight, CKK, dy, (int)ldo, 1.0f,
					            dinp + i0 * ohw, (int)ldo);
				continue;
			}
			im2col(col, inp, n, i0, nb, s);
			gemm_serial(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, col, ncol, 1.0f, dw, CKK);
			if (dinp) {
				gemm_serial(1, 0, CKK, ncol, OC, 1.0f, weight, CKK, dy, (int)ldo, 0.0f, col, ncol);
				col2im_add(dinp, col, n, i0, nb, s);
			}
		}
		/* implicit barrier: every partial is complete */
#pragma omp for schedule(static)
		for (size_t j = 0; j < wsz; j++) {
			float a = 0;
			for (int u = 1; u < T; u++)
				a += partial[(size_t)(u - 1) * wsz + j];
			dweight[j] += a;
		}
	}
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
