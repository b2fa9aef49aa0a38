/* loss: see loss.h. */
#include "nn/loss.h"

#include <math.h>
#include <string.h>

#include "nn/gemm.h"

#define NORM_EPS 1e-12 /* F.normalize's eps */

double
ntxent_row_lse(const float *s, int M, int i, int *best)
{
	float mx = -INFINITY;
	double sum = 0;
	*best = -1;
	for (int j = 0; j < M; j++)
		if (j != i && s[j] > mx) {
			mx = s[j];
			*best = j;
		}
	for (int j = 0; j < M; j++)
		if (j != i)
			sum += exp((double)s[j] - mx);
	return mx + log(sum);
}

size_t
ntxent_work_floats(int N, int D)
{
	size_t m = 2 * (size_t)N;
	return 2 * m * (size_t)D + m + m * m;
}

int
ntxent_forward_backward(float *loss, float *acc, float *dz, float *work,
                        const float *z, int N, int D, float temperature)
{
	if (N < 1 || D < 1 || !(temperature > 0.0f))
		return -1;
	const int M = 2 * N;
	float *u = work, *du = u + (size_t)M * D, *nrm = du + (size_t)M * D, *S = nrm + M;
	const float inv_t = 1.0f / temperature;

	for (int i = 0; i < M; i++) {
		const float *zi = z + (size_t)i * D;
		double s = 0;
		for (int k = 0; k < D; k++)
			s += (double)zi[k] * zi[k];
		double r = sqrt(s);
		nrm[i] = (float)(r > NORM_EPS ? r : NORM_EPS);
		for (int k = 0; k < D; k++)
			u[(size_t)i * D + k] = (float)(zi[k] / (double)nrm[i]);
	}
	gemm(0, 1, M, M, D, inv_t, u, D, u, D, 0.0f, S, M);

	double total = 0;
	int hits = 0;
	for (int i = 0; i < M; i++) {
		float *s = S + (size_t)i * M;
		int pos = i < N ? i + N : i - N, best;
		double lse = ntxent_row_lse(s, M, i, &best);
		total += lse - s[pos];
		hits += best == pos;
		/* row i of G = d loss / d S: (softmax - onehot) / M, 0 on the diagonal */
		for (int j = 0; j < M; j++)
			s[j] = j == i ? 0.0f : (float)((exp((double)s[j] - lse) - (j == pos)) / M);
	}
	*loss = (float)(total / M);
	if (acc)
		*acc = (float)hits / (float)M;
	if (!dz)
		return 0;
	/* S = u u^T / t, so du = (G + G^T) u / t. */
	gemm(0, 0, M, D, M, inv_t, S, M, u, D, 0.0f, du, D);
	gemm(1, 0, M, D, M, inv_t, S, M, u, D, 1.0f, du, D);
	/* through u = z / |z|: dz = (du - u (u . du)) / |z| (just du / eps when clamped) */
	for (int i = 0; i < M; i++) {
		const float *ui = u + (size_t)i * D, *dui = du + (size_t)i * D;
		float *dzi = dz + (size_t)i * D;
		double dot = 0;
		for (int k = 0; k < D; k++)
			dot += (double)ui[k] * dui[k];
		int clamped = nrm[i] <= (float)NORM_EPS;
		for (int k = 0; k < D; k++)
			dzi[k] = (float)((dui[k] - (clamped ? 0.0 : ui[k] * dot)) / nrm[i]);
	}
	return 0;
}

double
ntxent_loss_ref(const float *z, int N, int D, float temperature)
{
	const int M = 2 * N;
	double total = 0;
	for (int i = 0; i < M; i++) {
		int pos = i < N ? i + N : i - N;
		double ni = 0;
		for (int k = 0; k < D; k++)
			ni += (double)z[(size_t)i * D + k] * z[(size_t)i * D + k];
		ni = fmax(sqrt(ni), NORM_EPS);
		double sum = 0, spos = 0;
		for (int j = 0; j < M; j++) {
			if (j == i)
				continue;
			double nj = 0, d = 0;
			for (int k = 0; k < D; k++) {
				nj += (double)z[(size_t)j * D + k] * z[(size_t)j * D + k];
				d += (double)z[(size_t)i * D + k] * z[(size_t)j * D + k];
			}
			nj = fmax(sqrt(nj), NORM_EPS);
			double s = d / (ni * nj) / temperature;
			sum += exp(s);
			if (j == pos)
				spos = s;
		}
		total += log(sum) - spos;
	}
	return total / M;
}

int
cross_entropy_forward_backward(float *loss, float *acc, float *dlogits,
                               const float *logits, const int32_t *labels, int n, int K)
{
	int count = 0, hits = 0;
	double total = 0;
	for (int i = 0; i < n; i++) {
		if (labels[i] >= K)
			return -1;
		count += labels[i] >= 0;
	}
	for (int i = 0; i < n; i++) {
		const float *x = logits + (size_t)i * K;
		float *d = dlogits ? dlogits + (size_t)i * K : NULL;
		if (labels[i] < 0) {
			if (d)
				memset(d, 0, sizeof(float) * K);
			continue;
		}
		float mx = x[0];
		int best = 0;
		for (int k = 1; k < K; k++)
			if (x[k] > mx) {
				mx = x[k];
				best = k;
			}
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += exp((double)x[k] - mx);
		double lse = mx + log(sum);
		total += lse - x[labels[i]];
		hits += best == labels[i];
		if (d)
			for (int k = 0; k < K; k++)
				d[k] = (float)((exp((double)x[k] - lse) - (k == labels[i])) / count);
	}
	*loss = count ? (float)(total / count) : 0.0f;
	if (acc)
		*acc = count ? (float)hits / (float)count : 0.0f;
	return count;
}

double
cross_entropy_loss_ref(const float *logits, const int32_t *labels, int n, int K)
{
	double total = 0;
	int count = 0;
	for (int i = 0; i < n; i++) {
		if (labels[i] < 0)
			continue;
		double sum = 0;
		for (int k = 0; k < K; k++)
			sum += exp((double)logits[(size_t)i * K + k]);
		total += log(sum) - logits[(size_t)i * K + labels[i]];
		count++;
	}
	return count ? total / count : 0.0;
}
