/* probe_mlp: the MLP probe (one hidden layer, Adam, early stopping on the
 * held-out part); see probe.h. */
#include "eval/probe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"
#include "eval/probe_impl.h"
#include "nn/gemm.h"

/* ------------------------------------------------------------------ */
/* MLP                                                                  */

void
mlp_options_default(MlpOptions *o)
{
	o->hidden = 512;
	o->max_epochs = 100;
	o->batch = 256;
	o->patience = 10;
	o->lr = 1e-3;
	o->weight_decay = 0;
	o->seed = 0;
}

void
mlp_alloc(MlpModel *m, int D, int H, int K)
{
	size_t nW1 = probe_count2(H, D), nW2 = probe_count2(K, H), np = nW1 + (size_t)H + nW2 + (size_t)K;
	memset(m, 0, sizeof *m);
	m->D = D;
	m->H = H;
	m->K = K;
	m->params = xcalloc(np, sizeof *m->params);
	m->W1 = m->params;
	m->b1 = m->W1 + nW1;
	m->W2 = m->b1 + H;
	m->b2 = m->W2 + nW2;
}

static size_t
mlp_nparams(const MlpModel *m)
{
	return probe_count2(m->H, m->D) + (size_t)m->H + probe_count2(m->K, m->H) + (size_t)m->K;
}

/* Buffers for a forward/backward pass over up to B rows. */
typedef struct {
	int    B;
	float *xb;     /* (B, D) */
	float *h;      /* (B, H) pre-activation, then ReLU output */
	float *mask;   /* (B, H) 1 where the pre-activation was > 0 */
	float *out;    /* (B, K) logits, then dlogits */
	float *dh;     /* (B, H) */
	float *grad;   /* like params */
} MlpWork;

static void
mlp_work_init(MlpWork *w, const MlpModel *m, int B)
{
	w->B = B;
	w->xb = xcalloc(probe_count2(B, m->D), sizeof *w->xb);
	w->h = xcalloc(probe_count2(B, m->H), sizeof *w->h);
	w->mask = xcalloc(probe_count2(B, m->H), sizeof *w->mask);
	w->out = xcalloc(probe_count2(B, m->K), sizeof *w->out);
	w->dh = xcalloc(probe_count2(B, m->H), sizeof *w->dh);
	w->grad = xcalloc(mlp_nparams(m), sizeof *w->grad);
}

static void
mlp_work_free(MlpWork *w)
{
	free(w->xb);
	free(w->h);
	free(w->mask);
	free(w->out);
	free(w->dh);
	free(w->grad);
}

/* logits (b, K) into w->out for the rows in w->xb. */
static void
mlp_forward(MlpWork *w, const MlpModel *m, int b)
{
	int D = m->D, H = m->H, K = m->K;
	gemm_serial(0, 1, b, H, D, 1.0f, w->xb, D, m->W1, D, 0.0f, w->h, H);
	/* no OpenMP in the MLP's small elementwise loops: between sgemm calls
	 * the spinning OpenMP workers would take the cores OpenBLAS needs */
	for (int i = 0; i < b; i++)
		for (int j = 0; j < H; j++) {
			size_t at = (size_t)i * (size_t)H + (size_t)j;
			float v = w->h[at] + m->b1[j];
			w->mask[at] = v > 0 ? 1.0f : 0.0f;
			w->h[at] = v > 0 ? v : 0.0f;
		}
	gemm_serial(0, 1, b, K, H, 1.0f, w->h, H, m->W2, H, 0.0f, w->out, K);
	for (int i = 0; i < b; i++)
		for (int k = 0; k < K; k++)
			w->out[(size_t)i * (size_t)K + (size_t)k] += m->b2[k];
}

/* Mean cross-entropy of w->out against y; replaces w->out by dloss/dlogits. */
static double
mlp_loss_grad(MlpWork *w, const MlpModel *m, const int64_t *y, int b)
{
	int K = m->K;
	double loss = 0;
	for (int i = 0; i < b; i++) {
		float *o = w->out + (size_t)i * (size_t)K;
		double mx = -INFINITY, se = 0, lse;
		for (int k = 0; k < K; k++)
			mx = fmax(mx, o[k]);
		for (int k = 0; k < K; k++)
			se += exp(o[k] - mx);
		lse = mx + log(se);
		loss += lse - o[y[i]];
		for (int k = 0; k < K; k++)
			o[k] = (float)((exp(o[k] - lse) - (k == y[i])) / b);
	}
	return loss / b;
}

static void
mlp_backward(MlpWork *w, const MlpModel *m, int b)
{
	int D = m->D, H = m->H, K = m->K;
	float *gW1 = w->grad, *gb1 = gW1 + probe_count2(H, D), *gW2 = gb1 + H, *gb2 = gW2 + probe_count2(K, H);
	/* dW2 = dout^T h, db2 = sum dout, dh = dout W2 masked, dW1 = dh^T x */
	gemm_serial(1, 0, K, H, b, 1.0f, w->out, K, w->h, H, 0.0f, gW2, H);
	for (int k = 0; k < K; k++) {
		float s = 0;
		for (int i = 0; i < b; i++)
			s += w->out[(size_t)i * (size_t)K + (size_t)k];
		gb2[k] = s;
	}
	gemm_serial(0, 0, b, H, K, 1.0f, w->out, K, m->W2, H, 0.0f, w->dh, H);
	for (size_t j = 0; j < (size_t)b * (size_t)H; j++)
		w->dh[j] *= w->mask[j];
	gemm_serial(1, 0, H, D, b, 1.0f, w->dh, H, w->xb, D, 0.0f, gW1, D);
	for (int j = 0; j < H; j++)
		gb1[j] = 0;
	for (int i = 0; i < b; i++)
		for (int j = 0; j < H; j++)
			gb1[j] += w->dh[(size_t)i * (size_t)H + (size_t)j];
}

/* Mean loss and accuracy over (x, y) in batches of w->B. */
static void
mlp_evaluate(double *loss, double *acc, MlpWork *w, const MlpModel *m, const float *x, const int64_t *y, int64_t n)
{
	double l = 0;
	int64_t ok = 0;
	for (int64_t i0 = 0; i0 < n; i0 += w->B) {
		int b = n - i0 < w->B ? (int)(n - i0) : w->B;
		memcpy(w->xb, x + (size_t)i0 * (size_t)m->D, probe_count2(b, m->D) * sizeof *w->xb);
		mlp_forward(w, m, b);
		for (int i = 0; i < b; i++) {
			const float *o = w->out + (size_t)i * (size_t)m->K;
			int p = 0;
			for (int k = 1; k < m->K; k++)
				if (o[k] > o[p])
					p = k;
			ok += p == y[i0 + i];
		}
		l += mlp_loss_grad(w, m, y + i0, b) * b;
	}
	*loss = n > 0 ? l / (double)n : 0;
	*acc = n > 0 ? (double)ok / (double)n : 0;
}

void
mlp_fit(MlpModel *m, const float *xfit, const int64_t *yfit, int64_t nfit, const float *xval, const int64_t *yval,
        int64_t nval, int D, int K, const MlpOptions *o, const ProbeProgress *pg)
{
	int H = o->hidden, B = (int64_t)o->batch < nfit ? o->batch : (int)nfit, bad = 0;
	size_t np;
	float *mom, *vel, *best;
	int64_t *perm = xcalloc(probe_count2(nfit, 1), sizeof *perm), *yb = xcalloc((size_t)B, sizeof *yb);
	MlpWork w;
	Rng r = rng_for(o->seed, 0, RNG_DOMAIN_INIT, 0);
	double b1p = 1, b2p = 1;
	const double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

	ASSERT(nfit > 0 && H > 0 && B > 0);
	mlp_alloc(m, D, H, K);
	np = mlp_nparams(m);
	/* PyTorch's nn.Linear initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
	for (size_t j = 0; j < probe_count2(H, D) + (size_t)H; j++)
		m->W1[j] = (float)rng_uniform_range(&r, -1.0 / sqrt(D), 1.0 / sqrt(D));
	for (size_t j = 0; j < probe_count2(K, H) + (size_t)K; j++)
		m->W2[j] = (float)rng_uniform_range(&r, -1.0 / sqrt(H), 1.0 / sqrt(H));
	mom = xcalloc(np, sizeof *mom);
	vel = xcalloc(np, sizeof *vel);
	best = xcalloc(np, sizeof *best);
	mlp_work_init(&w, m, B);
	m->best_val_loss = INFINITY;

	for (int ep = 0; ep < o->max_epochs; ep++) {
		Rng sr = rng_for(o->seed, (uint64_t)ep, RNG_DOMAIN_SHUFFLE, 0);
		double vloss, vacc;
		for (int64_t i = 0; i < nfit; i++)
			perm[i] = i;
		rng_shuffle_i64(&sr, perm, nfit);
		/* a short last batch would be a noisy step: dropped, as
		 * DataLoader(drop_last=True) does; B <= nfit keeps one batch */
		for (int64_t i0 = 0; i0 + B <= nfit; i0 += B) {
			int b = B;
			double lr_t;
			probe_gather(w.xb, yb, xfit, yfit, D, perm + i0, b);
			mlp_forward(&w, m, b);
			mlp_loss_grad(&w, m, yb, b);
			mlp_backward(&w, m, b);
			b1p *= beta1;
			b2p *= beta2;
			lr_t = o->lr * sqrt(1 - b2p) / (1 - b1p);
			for (size_t j = 0; j < np; j++) {
				float gj = w.grad[j];
				mom[j] = (float)(beta1 * mom[j] + (1 - beta1) * gj);
				vel[j] = (float)(beta2 * vel[j] + (1 - beta2) * gj * gj);
				m->params[j] -= (float)(lr_t * mom[j] / (sqrt(vel[j]) + eps * sqrt(1 - b2p)) +
				                        o->lr * o->weight_decay * m->params[j]);
			}
		}
		m->epochs_run = ep + 1;
		if (nval == 0)
			continue;
		mlp_evaluate(&vloss, &vacc, &w, m, xval, yval, nval);
		probe_progress_report(pg, "mlp", ep + 1, o->max_epochs, "val loss %.4f", vloss);
		if (vloss < m->best_val_loss) {
			m->best_val_loss = vloss;
			m->best_val_acc = vacc;
			m->best_epoch = ep + 1;
			memcpy(best, m->params, np * sizeof *best);
			bad = 0;
		} else if (++bad >= o->patience) {
			break;
		}
	}
	if (nval > 0 && m->best_epoch > 0)
		memcpy(m->params, best, np * sizeof *best);
	mlp_work_free(&w);
	free(mom);
	free(vel);
	free(best);
	free(perm);
	free(yb);
}

void
mlp_scores(double *scores, const MlpModel *m, const float *x, int64_t n)
{
	MlpWork w;
	mlp_work_init(&w, m, 256);
	for (int64_t i0 = 0; i0 < n; i0 += w.B) {
		int b = n - i0 < w.B ? (int)(n - i0) : w.B;
		memcpy(w.xb, x + (size_t)i0 * (size_t)m->D, probe_count2(b, m->D) * sizeof *w.xb);
		mlp_forward(&w, m, b);
		for (size_t j = 0; j < probe_count2(b, m->K); j++)
			scores[(size_t)i0 * (size_t)m->K + j] = w.out[j];
	}
	mlp_work_free(&w);
}

void
mlp_free(MlpModel *m)
{
	free(m->params);
	m->params = m->W1 = m->b1 = m->W2 = m->b2 = NULL;
}

