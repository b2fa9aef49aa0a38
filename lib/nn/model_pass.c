/* model_pass: the passes of a Model (model.h): the training forward (stem,
 * blocks, head), the backward in reverse, and the eval forward with
 * BatchNorm's running statistics. What is kept and fused: see model.c. */
#include "nn/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"
#include "dist/syncbn.h"
#include "nn/bf16.h"
#include "nn/bn.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/model_impl.h"

/* ---- forward (training) ---- */

static int
hw(const Conv *cv)
{
	return cv->s.OH * cv->s.OW;
}

/* Batch statistics of a BN from the sums its convolution gathered. */
static void
bn_finish(BNorm *bn, int64_t M, float momentum)
{
	if (bn->sync) /* sums (and M) over every rank's batch */
		syncbn_reduce_stats(bn->sync, bn->stats, bn->C, &M);
	bn_stats_finish(bn->mean, bn->rstd, bn->run_mean, bn->run_var, bn->stats, bn->C, M, momentum, BN_EPS);
	for (int c = 0; c < bn->C; c++)
		bn->scale[c] = bn->gamma[c] * bn->rstd[c];
	(*bn->nbt)++;
}

/* the products of the head and the classifier, in the model's precision */
static GemmFn *
lin_gemm(const Model *m)
{
	return m->precision == PRECISION_BF16 ? gemm_bf16 : gemm;
}

/* out = conv(x) with the statistics of `bn` (the BN that follows) gathered
 * on the way; `in` is the BN+ReLU applied to x on the fly (NULL: none). */
static void
conv_train(Model *m, Conv *cv, float *out, const float *x, const BNorm *in, BNorm *bn, int n)
{
	memset(bn->stats, 0, sizeof(double) * 2 * (size_t)bn->C);
	ConvFuse f = { .in_mean = in ? in->mean : NULL, .in_scale = in ? in->scale : NULL,
		       .in_shift = in ? in->beta : NULL, .out_stats = bn->stats };
	conv2d_forward_fused(out, m->col, x, cv->w, NULL, n, &cv->s, &f);
	bn_finish(bn, (int64_t)n * hw(cv), m->bn_momentum);
}

static void
block_forward_train(Model *m, Block *bk, int n)
{
	conv_train(m, &bk->c1, bk->a1, bk->x, NULL, &bk->b1, n);
	conv_train(m, &bk->c2, bk->a2, bk->a1, &bk->b1, &bk->b2, n);
	BNorm *last = &bk->b2;
	float *alast = bk->a2;
	if (bk->bottleneck) {
		conv_train(m, &bk->c3, bk->a3, bk->a2, &bk->b2, &bk->b3, n);
		last = &bk->b3;
		alast = bk->a3;
	}
	const float *res = bk->x;
	if (bk->has_sc) {
		conv_train(m, &bk->sc, bk->asc, bk->x, NULL, &bk->bsc, n);
		bn_apply(m->buf[0], bk->asc, NULL, bk->bsc.mean, bk->bsc.rstd, bk->bsc.gamma, bk->bsc.beta, n, bk->OC,
		         bk->OH * bk->OW, 0);
		res = m->buf[0];
	}
	bn_apply(bk->out, alast, res, last->mean, last->rstd, last->gamma, last->beta, n, last->C, bk->OH * bk->OW, 1);
}

static void
encoder_forward_train(Model *m, const float *x, int n)
{
	const ModelConfig *c = &m->cfg;
	ASSERT(m->mode == MODEL_TRAIN);
	ASSERT(n >= 1 && n <= m->max_batch);
	nchw_to_cnhw(m->x_in, x, n, c->in_channels, c->in_h * c->in_w);
	BNorm *bn = &m->stem_bn;
	conv_train(m, &m->stem, m->stem_c, m->x_in, NULL, bn, n);
	float *a = m->has_pool ? m->stem_buf[0] : m->stem_a;
	bn_apply(a, m->stem_c, NULL, bn->mean, bn->rstd, bn->gamma, bn->beta, n, bn->C, hw(&m->stem), 1);
	if (m->has_pool)
		maxpool2d_forward(m->pool_out, m->pool_arg, a, n, &m->pool);
	for (int i = 0; i < m->nblocks; i++)
		block_forward_train(m, &m->blocks[i], n);
	const Block *lb = &m->blocks[m->nblocks - 1];
	avgpool_global_forward(m->h_cm, lb->out, n, m->D, lb->OH * lb->OW);
	transpose(m->h_rows, m->h_cm, m->D, n);
}

static void
bn_train_plain(BNorm *bn, float *out, const float *inp, int n, int HW, int relu, float momentum)
{
	if (bn->sync) {
		syncbn_forward_train(bn->sync, out, bn->mean, bn->rstd, bn->run_mean, bn->run_var, inp, bn->gamma,
		                     bn->beta, n, bn->C, HW, relu, momentum, BN_EPS);
		(*bn->nbt)++;
		return;
	}
	(relu ? bn_relu_forward_train : bn_forward_train)(out, bn->mean, bn->rstd, bn->run_mean, bn->run_var,
	                                                  inp, bn->gamma, bn->beta, n, bn->C, HW, momentum,
	                                                  BN_EPS);
	(*bn->nbt)++;
}

const float *
model_forward_train(Model *m, const float *x, int n)
{
	encoder_forward_train(m, x, n);
	const float *in = m->h_cm;
	for (int j = 0; j < m->nhead; j++) {
		Linear *l = &m->head[j];
		linear_forward_with(lin_gemm(m), m->hl[j], in, l->w, l->b, n, l->in, l->out);
		if (j + 1 < m->nhead) {
			bn_train_plain(&m->head_bn[j], m->ht[j], m->hl[j], n, 1, 1, m->bn_momentum);
			in = m->ht[j];
		}
	}
	m->last_n = n;
	m->last_classify = 0;
	if (!m->nhead)
		return m->h_rows;
	transpose(m->out_rows, m->hl[m->nhead - 1], m->cfg.proj_dim, n);
	return m->out_rows;
}

/* Precise BatchNorm statistics: batch k of the pass blends its statistics
 * in with momentum 1/(k+1), so that after the pass every running mean and
 * variance is the plain average over the pass's batches (PyTorch's
 * momentum=None, as fvcore's update_bn_stats uses it). */
void
model_precise_bn_begin(Model *m)
{
	ASSERT(m->mode == MODEL_TRAIN);
	m->precise_batches = 0;
}

void
model_precise_bn_batch(Model *m, const float *x, int n)
{
	ASSERT(m->precise_batches >= 0);
	m->bn_momentum = 1.0f / (float)(m->precise_batches + 1);
	model_forward_train(m, x, n);
	m->precise_batches++;
	m->bn_momentum = BN_MOMENTUM;
}

int64_t
model_precise_bn_end(Model *m)
{
	int64_t k = m->precise_batches;
	m->precise_batches = -1;
	return k;
}

const float *
model_features(const Model *m)
{
	return m->h_rows;
}

const float *
model_forward_train_classify(Model *m, const float *x, int n)
{
	ASSERT(m->has_fc);
	encoder_forward_train(m, x, n);
	linear_forward_with(lin_gemm(m), m->logits_cm, m->h_cm, m->fc.w, m->fc.b, n, m->fc.in, m->fc.out);
	transpose(m->out_rows, m->logits_cm, m->fc.out, n);
	m->last_n = n;
	m->last_classify = 1;
	return m->out_rows;
}

/* ---- backward ---- */

static void
zero(float *p, size_t len)
{
#pragma omp parallel for simd schedule(static) if (len > PAR_MIN)
	for (size_t j = 0; j < len; j++)
		p[j] = 0.0f;
}

static size_t
act_n(int C, int n, int H, int W)
{
	return (size_t)C * n * H * W;
}

/* d x (+)= conv backward; with `in`, x is read through relu(in(x)) and the
 * sums in's backward needs are gathered into in->stats on the way. */
static void
conv_back(Model *m, Conv *cv, float *dinp, int overwrite, const float *dout, const float *x, BNorm *in, int n)
{
	ConvFuse f = { .in_mean = in ? in->mean : NULL, .in_scale = in ? in->scale : NULL,
		       .in_shift = in ? in->beta : NULL, .dinp_overwrite = overwrite,
		       .in_rstd = in ? in->rstd : NULL, .dinp_sums = in && overwrite ? in->stats : NULL };
	if (f.dinp_sums)
		memset(f.dinp_sums, 0, sizeof(double) * 2 * (size_t)in->C);
	conv2d_backward_fused(dinp, cv->dw, NULL, m->col, dout, x, cv->w, n, &cv->s, &f);
}

static void
bn_back(const BNorm *bn, float *dinp, float *dres, const float *dout, const float *out, const float *inp, int n,
        int HW, BnMask mask, const double *sums)
{
	if (bn->sync) {
		syncbn_backward(bn->sync, dinp, dres, bn->dgamma, bn->dbeta, dout, out, inp, bn->mean, bn->rstd, bn->gamma,
		                bn->beta, n, bn->C, HW, mask, 0, sums);
		return;
	}
	bn_backward_fused(dinp, dres, bn->dgamma, bn->dbeta, dout, out, inp, bn->mean, bn->rstd, bn->gamma, bn->beta,
	                  n, bn->C, HW, mask, 0, sums);
}

/* The block's gradient: d out in buf[io[0]], d x into buf[io[1]]; io[2],
 * io[3] are scratch. Every buffer is written before it is read (no
 * zeroing): the first write to d x overwrites, the second accumulates. */
static void
block_backward(Model *m, Block *bk, int n, const int io[NBUF])
{
	float *dout = m->buf[io[0]], *dx = m->buf[io[1]], *B2 = m->buf[io[2]], *B3 = m->buf[io[3]];
	const int ohw = bk->OH * bk->OW;
	BNorm *last = bk->bottleneck ? &bk->b3 : &bk->b2;
	float *alast = bk->bottleneck ? bk->a3 : bk->a2;
	Conv *clast = bk->bottleneck ? &bk->c3 : &bk->c2;
	BNorm *before = bk->bottleneck ? &bk->b2 : &bk->b1; /* the BN+ReLU feeding clast */
	float *abefore = bk->bottleneck ? bk->a2 : bk->a1;

	/* out = relu(bn_last(alast) + res): B2 = d alast; d res to dx, or to B3 */
	bn_back(last, B2, bk->has_sc ? B3 : dx, dout, bk->out, alast, n, ohw, BN_MASK_OUT, NULL);
	/* d out is dead from here: its buffer is scratch */
	if (bk->has_sc) { /* res = bn_sc(conv_sc(x)) */
		bn_back(&bk->bsc, dout, NULL, B3, NULL, bk->asc, n, ohw, BN_MASK_NONE, NULL);
		conv_back(m, &bk->sc, dx, 1, dout, bk->x, NULL, n);
	}
	/* clast reads relu(before(abefore)) */
	conv_back(m, clast, dout, 1, B2, abefore, before, n);
	bn_back(before, B3, NULL, dout, NULL, abefore, n, hw(bk->bottleneck ? &bk->c2 : &bk->c1), BN_MASK_RECOMPUTE,
	        before->stats);
	if (bk->bottleneck) { /* conv2 reads relu(bn1(a1)) */
		conv_back(m, &bk->c2, dout, 1, B3, bk->a1, &bk->b1, n);
		bn_back(&bk->b1, B2, NULL, dout, NULL, bk->a1, n, hw(&bk->c1), BN_MASK_RECOMPUTE, bk->b1.stats);
		conv_back(m, &bk->c1, dx, 0, B2, bk->x, NULL, n);
	} else {
		conv_back(m, &bk->c1, dx, 0, B3, bk->x, NULL, n);
	}
}

/* d loss / d h (D, n) in dh -> parameter gradients of the encoder. */
static void
encoder_backward(Model *m, const float *dh, int n)
{
	const Block *lb = &m->blocks[m->nblocks - 1];
	int cur = 0;
	zero(m->buf[cur], act_n(lb->OC, n, lb->OH, lb->OW));
	avgpool_global_backward(m->buf[cur], dh, n, m->D, lb->OH * lb->OW);
	for (int i = m->nblocks - 1; i >= 0; i--) {
		int io[NBUF], k = 1;
		io[0] = cur;
		for (int j = 0; j < NBUF; j++)
			if (j != cur)
				io[k++] = j;
		block_backward(m, &m->blocks[i], n, io);
		cur = io[1];
	}
	/* stem */
	float *d = m->buf[cur];
	float *f1 = m->buf[(cur + 1) % NBUF], *f2 = m->buf[(cur + 2) % NBUF];
	if (m->has_pool) {
		/* the BN backward in place: one stem-sized buffer */
		f1 = f2 = m->stem_buf[0];
		zero(f1, act_n(m->stem.s.OC, n, m->stem.s.OH, m->stem.s.OW));
		maxpool2d_backward(f1, d, m->pool_arg, n, &m->pool);
		d = f1;
	}
	bn_back(&m->stem_bn, f2, NULL, d, NULL, m->stem_c, n, hw(&m->stem), BN_MASK_RECOMPUTE, NULL);
	conv_back(m, &m->stem, NULL, 0, f2, m->x_in, NULL, n);
}

void
model_zero_grad(Model *m)
{
	params_zero_grad(&m->params);
}

void
model_backward(Model *m, const float *dz)
{
	const int n = m->last_n;
	ASSERT(n > 0 && !m->last_classify);
	const int pd = model_output_dim(m, MODEL_OUT_PROJ);
	float *d = m->hbuf[0], *e = m->hbuf[1], *f = m->hbuf[2];
	transpose(d, dz, n, pd);
	for (int j = m->nhead - 1; j >= 0; j--) {
		Linear *l = &m->head[j];
		const float *in = j ? m->ht[j - 1] : m->h_cm;
		zero(e, (size_t)l->in * n);
		linear_backward_with(lin_gemm(m), e, l->dw, l->db, d, in, l->w, n, l->in, l->out);
		if (j) {
			BNorm *bn = &m->head_bn[j - 1];
			bn_back(bn, f, NULL, e, NULL, m->hl[j - 1], n, 1, BN_MASK_RECOMPUTE, NULL);
			float *s = d;
			d = f;
			f = s;
		} else {
			d = e;
		}
	}
	encoder_backward(m, d, n);
}

void
model_backward_classify(Model *m, const float *dlogits)
{
	const int n = m->last_n;
	ASSERT(n > 0 && m->last_classify);
	float *d = m->hbuf[0], *e = m->hbuf[1];
	transpose(d, dlogits, n, m->fc.out);
	zero(e, (size_t)m->D * n);
	linear_backward_with(lin_gemm(m), e, m->fc.dw, m->fc.db, d, m->h_cm, m->fc.w, n, m->fc.in, m->fc.out);
	encoder_backward(m, e, n);
}

/* ---- forward (eval) ---- */

/* Eval-mode BN constants (running statistics). */
static void
bn_eval_prepare(BNorm *bn)
{
	bn_eval_rstd(bn->ersd, bn->run_var, bn->C, BN_EPS);
	for (int c = 0; c < bn->C; c++)
		bn->escale[c] = bn->gamma[c] * bn->ersd[c];
}

/* out = conv(x); x read through relu(bn_eval(x)) when `in` is set */
static void
conv_eval(Model *m, const Conv *cv, float *out, const float *x, const BNorm *in, int n)
{
	ConvFuse f = { .in_mean = in ? in->run_mean : NULL, .in_scale = in ? in->escale : NULL,
		       .in_shift = in ? in->beta : NULL };
	conv2d_forward_fused(out, m->col, x, cv->w, NULL, n, &cv->s, &f);
}

/* out = act(bn_eval(inp) [+ res]); out may be inp */
static void
bn_eval_apply(const BNorm *bn, float *out, const float *inp, const float *res, int n, int HW, int relu)
{
	bn_apply(out, inp, res, bn->run_mean, bn->ersd, bn->gamma, bn->beta, n, bn->C, HW, relu);
}

const float *
model_forward_eval(Model *m, const float *x, int n, ModelOutput which)
{
	const ModelConfig *c = &m->cfg;
	ASSERT(n >= 1 && n <= m->max_batch);
	ASSERT(model_output_dim(m, which) > 0);
	float **b = m->buf;
	bn_eval_prepare(&m->stem_bn);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		BNorm *bs[4] = { &bk->b1, &bk->b2, bk->bottleneck ? &bk->b3 : NULL, bk->has_sc ? &bk->bsc : NULL };
		for (int k = 0; k < 4; k++)
			if (bs[k])
				bn_eval_prepare(bs[k]);
	}
	float *xin = m->has_pool ? m->stem_buf[1] : b[0], *so = m->has_pool ? m->stem_buf[0] : b[1];
	nchw_to_cnhw(xin, x, n, c->in_channels, c->in_h * c->in_w);
	conv_eval(m, &m->stem, so, xin, NULL, n);
	bn_eval_apply(&m->stem_bn, so, so, NULL, n, hw(&m->stem), 1);
	int cur = 1;
	if (m->has_pool)
		maxpool2d_forward(b[1], m->pool_arg, so, n, &m->pool);
	for (int i = 0; i < m->nblocks; i++) {
		const Block *bk = &m->blocks[i];
		int o[3], k = 0;
		for (int j = 0; j < 4; j++)
			if (j != cur)
				o[k++] = j;
		float *xx = b[cur], *t = b[o[0]], *u = b[o[1]], *s = b[o[2]];
		const int ohw = bk->OH * bk->OW;
		conv_eval(m, &bk->c1, t, xx, NULL, n);
		conv_eval(m, &bk->c2, u, t, &bk->b1, n);
		const BNorm *last = &bk->b2;
		float *y = u;
		int yi = o[1];
		if (bk->bottleneck) {
			conv_eval(m, &bk->c3, t, u, &bk->b2, n);
			last = &bk->b3;
			y = t;
			yi = o[0];
		}
		const float *res = xx;
		if (bk->has_sc) {
			conv_eval(m, &bk->sc, s, xx, NULL, n);
			bn_eval_apply(&bk->bsc, s, s, NULL, n, ohw, 0);
			res = s;
		}
		bn_eval_apply(last, y, y, res, n, ohw, 1);
		cur = yi;
	}
	const Block *lb = &m->blocks[m->nblocks - 1];
	avgpool_global_forward(m->h_cm, b[cur], n, m->D, lb->OH * lb->OW);
	const float *feat = m->h_cm;
	int dim = m->D;
	if (which == MODEL_OUT_LOGITS) {
		linear_forward_with(lin_gemm(m), m->logits_cm, m->h_cm, m->fc.w, m->fc.b, n, m->fc.in, m->fc.out);
		feat = m->logits_cm;
		dim = m->fc.out;
	} else if (which != MODEL_OUT_ENCODER && m->nhead) {
		int last = which == MODEL_OUT_PROJ_HIDDEN ? 1 : m->nhead;
		for (int j = 0; j < last; j++) {
			Linear *l = &m->head[j];
			linear_forward_with(lin_gemm(m), m->hl[j], feat, l->w, l->b, n, l->in, l->out);
			feat = m->hl[j];
			dim = l->out;
			if (j + 1 < m->nhead)
				bn_relu_forward_eval(m->hl[j], m->hl[j], m->head_bn[j].run_mean, m->head_bn[j].run_var,
				                     m->head_bn[j].gamma, m->head_bn[j].beta, n, m->head_bn[j].C, 1, BN_EPS);
		}
	}
	transpose(m->out_rows, feat, dim, n);
	return m->out_rows;
}

