/* layers: see layers.h. */
#include "nn/layers.h"

#include <string.h>

#include "nn/gemm.h"
#include "base/parallel.h"

void
relu_forward(float *out, const float *inp, size_t len)
{
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
	for (size_t j = 0; j < len; j++)
		out[j] = inp[j] > 0.0f ? inp[j] : 0.0f;
}

void
relu_backward(float *dinp, const float *dout, const float *out, size_t len)
{
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
	for (size_t j = 0; j < len; j++)
		dinp[j] += out[j] > 0.0f ? dout[j] : 0.0f;
}

void
add_forward(float *out, const float *a, const float *b, size_t len)
{
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
	for (size_t j = 0; j < len; j++)
		out[j] = a[j] + b[j];
}

void
add_backward(float *da, float *db, const float *dout, size_t len)
{
	if (da) {
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
		for (size_t j = 0; j < len; j++)
			da[j] += dout[j];
	}
	if (db) {
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
		for (size_t j = 0; j < len; j++)
			db[j] += dout[j];
	}
}

int
pool_shape_init(PoolShape *s, int C, int H, int W, int K, int S, int P)
{
	/* PyTorch: padding at most half the kernel, so no window is all padding. */
	if (C < 1 || H < 1 || W < 1 || K < 1 || S < 1 || P < 0 || 2 * P > K || K > 65536)
		return -1;
	if ((long)H + 2L * P < K || (long)W + 2L * P < K)
		return -1;
	*s = (PoolShape){ .C = C, .H = H, .W = W, .K = K, .S = S, .P = P };
	s->OH = (H + 2 * P - K) / S + 1;
	s->OW = (W + 2 * P - K) / S + 1;
	return 0;
}

void
maxpool2d_forward(float *out, int32_t *argmax, const float *inp, int n, const PoolShape *s)
{
	const int H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const long planes = (long)s->C * n;
#pragma omp parallel for schedule(static) if ((size_t)planes * s->H * s->W > PAR_MIN)
	for (long p = 0; p < planes; p++) {
		const float *x = inp + (size_t)p * H * W;
		float *y = out + (size_t)p * OH * OW;
		int32_t *am = argmax + (size_t)p * OH * OW;
		for (int oh = 0; oh < OH; oh++)
			for (int ow = 0; ow < OW; ow++) {
				int h0 = oh * s->S - s->P, w0 = ow * s->S - s->P;
				int h1 = h0 + s->K < H ? h0 + s->K : H, w1 = w0 + s->K < W ? w0 + s->K : W;
				if (h0 < 0)
					h0 = 0;
				if (w0 < 0)
					w0 = 0;
				int best = h0 * W + w0;
				float m = x[best];
				for (int ih = h0; ih < h1; ih++)
					for (int iw = w0; iw < w1; iw++)
						if (x[ih * W + iw] > m) {
							m = x[ih * W + iw];
							best = ih * W + iw;
						}
				y[oh * OW + ow] = m;
				am[oh * OW + ow] = best;
			}
	}
}

void
maxpool2d_backward(float *dinp, const float *dout, const int32_t *argmax, int n, const PoolShape *s)
{
	const long planes = (long)s->C * n;
	const size_t ohw = (size_t)s->OH * s->OW, hw = (size_t)s->H * s->W;
#pragma omp parallel for schedule(static) if (planes * hw > PAR_MIN)
	for (long p = 0; p < planes; p++)
		for (size_t j = 0; j < ohw; j++)
			dinp[p * hw + argmax[p * ohw + j]] += dout[p * ohw + j];
}

void
maxpool2d_forward_ref(float *out, const float *inp, int n, const PoolShape *s)
{
	for (long p = 0; p < (long)s->C * n; p++)
		for (int oh = 0; oh < s->OH; oh++)
			for (int ow = 0; ow < s->OW; ow++) {
				float m = 0;
				int any = 0;
				for (int kh = 0; kh < s->K; kh++)
					for (int kw = 0; kw < s->K; kw++) {
						int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;
						if (ih < 0 || ih >= s->H || iw < 0 || iw >= s->W)
							continue;
						float v = inp[(p * s->H + ih) * s->W + iw];
						if (!any || v > m)
							m = v;
						any = 1;
					}
				out[(p * s->OH + oh) * s->OW + ow] = m;
			}
}

void
avgpool_global_forward(float *out, const float *inp, int n, int C, int HW)
{
	const long planes = (long)C * n;
#pragma omp parallel for schedule(static) if ((size_t)planes * HW > PAR_MIN)
	for (long p = 0; p < planes; p++) {
		const float *x = inp + (size_t)p * HW;
		float t = 0;
		for (int j = 0; j < HW; j++)
			t += x[j];
		out[p] = t / (float)HW;
	}
}

void
avgpool_global_backward(float *dinp, const float *dout, int n, int C, int HW)
{
	const long planes = (long)C * n;
#pragma omp parallel for schedule(static) if ((size_t)planes * HW > PAR_MIN)
	for (long p = 0; p < planes; p++) {
		float g = dout[p] / (float)HW;
		float *d = dinp + (size_t)p * HW;
		for (int j = 0; j < HW; j++)
			d[j] += g;
	}
}

void
linear_forward(float *out, const float *inp, const float *weight, const float *bias,
               int n, int C, int OC)
{
	linear_forward_with(gemm, out, inp, weight, bias, n, C, OC);
}

void
linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                const float *weight, int n, int C, int OC)
{
	linear_backward_with(gemm, dinp, dweight, dbias, dout, inp, weight, n, C, OC);
}

void
linear_forward_with(GemmFn *mm, float *out, const float *inp, const float *weight, const float *bias, int n, int C,
                    int OC)
{
	mm(0, 0, OC, n, C, 1.0f, weight, C, inp, n, 0.0f, out, n);
	if (bias)
		for (int o = 0; o < OC; o++)
			for (int i = 0; i < n; i++)
				out[(size_t)o * n + i] += bias[o];
}

void
linear_backward_with(GemmFn *mm, float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                     const float *weight, int n, int C, int OC)
{
	mm(0, 1, OC, C, n, 1.0f, dout, n, inp, n, 1.0f, dweight, C);
	if (dinp)
		mm(1, 0, C, n, OC, 1.0f, weight, C, dout, n, 1.0f, dinp, n);
	if (dbias)
		for (int o = 0; o < OC; o++) {
			double t = 0;
			for (int i = 0; i < n; i++)
				t += dout[(size_t)o * n + i];
			dbias[o] += (float)t;
		}
}

void
linear_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                   int n, int C, int OC)
{
	for (int o = 0; o < OC; o++)
		for (int i = 0; i < n; i++) {
			double t = bias ? bias[o] : 0.0;
			for (int c = 0; c < C; c++)
				t += (double)weight[(size_t)o * C + c] * inp[(size_t)c * n + i];
			out[(size_t)o * n + i] = (float)t;
		}
}

void
transpose(float *out, const float *inp, int rows, int cols)
{
	/* Small tiles keep both sides in cache. */
	enum { T = 32 };
	for (int r0 = 0; r0 < rows; r0 += T)
		for (int c0 = 0; c0 < cols; c0 += T) {
			int r1 = r0 + T < rows ? r0 + T : rows, c1 = c0 + T < cols ? c0 + T : cols;
			for (int r = r0; r < r1; r++)
				for (int c = c0; c < c1; c++)
					out[(size_t)c * rows + r] = inp[(size_t)r * cols + c];
		}
}

void
nchw_to_cnhw(float *out, const float *inp, int n, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * C * HW > PAR_MIN)
	for (int i = 0; i < n; i++)
		for (int c = 0; c < C; c++)
			memcpy(out + ((size_t)c * n + i) * HW, inp + ((size_t)i * C + c) * HW, sizeof(float) * HW);
}

void
cnhw_to_nchw(float *out, const float *inp, int n, int C, int HW)
{
#pragma omp parallel for collapse(2) schedule(static) if ((size_t)n * C * HW > PAR_MIN)
	for (int i = 0; i < n; i++)
		for (int c = 0; c < C; c++)
			memcpy(out + ((size_t)i * C + c) * HW, inp + ((size_t)c * n + i) * HW, sizeof(float) * HW);
}

void
input_normalize_u8(float *out, const uint8_t *inp, int n, int H, int W, int C,
                   const float *mean, const float *std)
{
	enum { MAXC = 64 };
	float a[MAXC], b[MAXC];
	const size_t hw = (size_t)H * W;
	if (C > MAXC) { /* never for images; keep it correct anyway */
		for (int i = 0; i < n; i++)
			for (int c = 0; c < C; c++)
				for (size_t p = 0; p < hw; p++)
					out[((size_t)i * C + c) * hw + p] =
						((float)inp[((size_t)i * hw + p) * C + c] / 255.0f - mean[c]) / std[c];
		return;
	}
	for (int c = 0; c < C; c++) {
		a[c] = 1.0f / (255.0f * std[c]);
		b[c] = -mean[c] / std[c];
	}
#pragma omp parallel for schedule(static) if (n * hw * C > PAR_MIN)
	for (int i = 0; i < n; i++) {
		const uint8_t *x = inp + (size_t)i * hw * C;
		float *y = out + (size_t)i * C * hw;
		for (int c = 0; c < C; c++)
			for (size_t p = 0; p < hw; p++)
				y[c * hw + p] = (float)x[p * C + c] * a[c] + b[c];
	}
}
