/* model: see model.h. model_forward_train calls the stem, the blocks and
 * the head in order; model_backward calls their backward passes in reverse.
 *
 * What is kept for backward (MODEL_TRAIN): the input, each convolution's
 * output (pre-BN) and each block's output. A BN+ReLU whose output feeds a
 * convolution is never stored: the convolution applies it to its input
 * while building columns (lib/nn/conv.h ConvFuse), in forward and again in
 * backward. Convolutions also gather the BN statistics of their output and
 * the BN backward sums of their input gradient while the data is in cache.
 * Activation gradients rotate through four scratch buffers of the largest
 * activation size, each written before it is read (no zeroing passes). */
#include "nn/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bn.h"
#include "nn/bf16.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "base/cpu.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "dist/syncbn.h"
#include "base/util.h"

#include "nn/model_impl.h"

/* ---- building: the parameter table ---- */

typedef struct {
	Model *m;
	char  *err;
	size_t errlen;
	int    failed;
} Builder;

static int
add_entry(Builder *b, const char *name, ParamRole role, DType dt, int ndim, const int64_t *shape,
          int fan_in, int zero_gamma)
{
	if (b->failed)
		return -1;
	int idx = params_add(&b->m->params, name, role, dt, ndim, shape, b->err, b->errlen);
	if (idx < 0) {
		b->failed = 1;
		return -1;
	}
	b->m->fan_in = xreallocarray(b->m->fan_in, (size_t)idx + 1, sizeof(int));
	b->m->zero_gamma = xreallocarray(b->m->zero_gamma, (size_t)idx + 1, 1);
	b->m->fan_in[idx] = fan_in;
	b->m->zero_gamma[idx] = (uint8_t)zero_gamma;
	return idx;
}

static void
conv_add(Builder *b, Conv *cv, const char *name, int C, int H, int W, int OC, int K, int S, int P)
{
	if (b->failed)
		return;
	if (conv_shape_init(&cv->s, C, H, W, OC, K, S, P, b->m->max_batch) != 0) {
		snprintf(b->err, b->errlen, "%s: input %dx%d too small", name, H, W);
		b->failed = 1;
		return;
	}
	snprintf(cv->name, sizeof cv->name, "%s", name);
	char full[TENSOR_MAX_NAME];
	snprintf(full, sizeof full, "%s.weight", name);
	int64_t shape[4] = { OC, C, K, K };
	cv->pidx = add_entry(b, full, PARAM_WEIGHT, DTYPE_F32, 4, shape, C * K * K, 0);
}

static void
bn_add(Builder *b, BNorm *bn, const char *name, int C, int zero_gamma)
{
	char full[TENSOR_MAX_NAME];
	int64_t shape[1] = { C };
	bn->C = C;
	snprintf(bn->name, sizeof bn->name, "%s", name);
	snprintf(full, sizeof full, "%s.weight", name);
	bn->pidx = add_entry(b, full, PARAM_BN_GAMMA, DTYPE_F32, 1, shape, 0, zero_gamma);
	snprintf(full, sizeof full, "%s.bias", name);
	add_entry(b, full, PARAM_BN_BETA, DTYPE_F32, 1, shape, 0, 0);
	snprintf(full, sizeof full, "%s.running_mean", name);
	add_entry(b, full, PARAM_BUFFER, DTYPE_F32, 1, shape, 0, 0);
	snprintf(full, sizeof full, "%s.running_var", name);
	add_entry(b, full, PARAM_BUFFER, DTYPE_F32, 1, shape, 0, 0);
	snprintf(full, sizeof full, "%s.num_batches_tracked", name);
	add_entry(b, full, PARAM_BUFFER, DTYPE_I64, 0, shape, 0, 0);
}

static void
linear_add(Builder *b, Linear *l, const char *name, int in, int out, int has_bias)
{
	char full[TENSOR_MAX_NAME];
	int64_t shape[2] = { out, in };
	l->in = in;
	l->out = out;
	l->has_bias = has_bias;
	snprintf(l->name, sizeof l->name, "%s", name);
	snprintf(full, sizeof full, "%s.weight", name);
	l->pidx = add_entry(b, full, PARAM_WEIGHT, DTYPE_F32, 2, shape, in, 0);
	if (has_bias) {
		snprintf(full, sizeof full, "%s.bias", name);
		add_entry(b, full, PARAM_BIAS, DTYPE_F32, 1, &shape[0], in, 0);
	}
}

static void
conv_bind(Conv *cv, ParamTable *t)
{
	cv->w = t->e[cv->pidx].data;
	cv->dw = t->e[cv->pidx].grad;
}

static void
bn_bind(BNorm *bn, ParamTable *t)
{
	ParamEntry *e = &t->e[bn->pidx];
	bn->gamma = e[0].data;
	bn->dgamma = e[0].grad;
	bn->beta = e[1].data;
	bn->dbeta = e[1].grad;
	bn->run_mean = e[2].data;
	bn->run_var = e[3].data;
	bn->nbt = e[4].i64;
}

static void
linear_bind(Linear *l, ParamTable *t)
{
	l->w = t->e[l->pidx].data;
	l->dw = t->e[l->pidx].grad;
	l->b = l->has_bias ? t->e[l->pidx + 1].data : NULL;
	l->db = l->has_bias ? t->e[l->pidx + 1].grad : NULL;
}

/* ---- building: activations (two passes: count, then hand out pointers) ---- */

typedef struct {
	float *base;
	size_t used;
} Plan;

static float *
take(Plan *p, size_t floats)
{
	floats = (floats + 15) & ~(size_t)15; /* 64-byte aligned slices */
	float *r = p->base ? p->base + p->used : NULL;
	p->used += floats;
	return r;
}

static void
bn_layout(BNorm *bn, Plan *p)
{
	bn->mean = take(p, (size_t)bn->C);
	bn->rstd = take(p, (size_t)bn->C);
	bn->scale = take(p, (size_t)bn->C);
	bn->ersd = take(p, (size_t)bn->C);
	bn->escale = take(p, (size_t)bn->C);
	bn->stats = (double *)take(p, 2 * sizeof(double) / sizeof(float) * (size_t)bn->C);
}

static size_t
act(const Model *m, int C, int H, int W)
{
	return (size_t)C * m->max_batch * H * W;
}

static void
model_layout(Model *m, Plan *p)
{
	const ModelConfig *c = &m->cfg;
	const int n = m->max_batch, train = m->mode == MODEL_TRAIN;
	const int hmax = m->nhead ? (c->proj_hidden > c->proj_dim ? c->proj_hidden : c->proj_dim) : 0;
	int dmax = m->D > hmax ? m->D : hmax;
	if (c->num_classes > dmax)
		dmax = c->num_classes;

	m->x_in = take(p, act(m, c->in_channels, c->in_h, c->in_w));
	if (train) {
		m->stem_c = take(p, act(m, m->stem.s.OC, m->stem.s.OH, m->stem.s.OW));
		if (!m->has_pool)
			m->stem_a = take(p, act(m, m->stem.s.OC, m->stem.s.OH, m->stem.s.OW));
		else
			m->pool_out = take(p, act(m, m->pool.C, m->pool.OH, m->pool.OW));
		for (int i = 0; i < m->nblocks; i++) {
			Block *bk = &m->blocks[i];
			bk->a1 = take(p, act(m, bk->c1.s.OC, bk->c1.s.OH, bk->c1.s.OW));
			bk->a2 = take(p, act(m, bk->c2.s.OC, bk->c2.s.OH, bk->c2.s.OW));
			bk->a3 = bk->bottleneck ? take(p, act(m, bk->c3.s.OC, bk->c3.s.OH, bk->c3.s.OW)) : NULL;
			bk->asc = bk->has_sc ? take(p, act(m, bk->sc.s.OC, bk->sc.s.OH, bk->sc.s.OW)) : NULL;
			bk->out = take(p, act(m, bk->OC, bk->OH, bk->OW));
		}
	}
	if (m->has_pool) {
		/* argmax as int32 in float-sized slots */
		m->pool_arg = (int32_t *)take(p, act(m, m->pool.C, m->pool.OH, m->pool.OW));
	}
	m->h_cm = take(p, (size_t)m->D * n);
	for (int j = 0; j < m->nhead; j++) {
		m->hl[j] = take(p, (size_t)m->head[j].out * n);
		if (j < m->nhead - 1)
			m->ht[j] = take(p, (size_t)m->head[j].out * n);
	}
	m->logits_cm = m->has_fc ? take(p, (size_t)c->num_classes * n) : NULL;
	m->out_rows = take(p, (size_t)dmax * n);
	m->h_rows = take(p, (size_t)m->D * n);

	/* scratch: the largest activation of any block, and of the input and
	 * the stem's output unless a max-pool follows the stem: then those, up
	 * to four times a block's activation, get buffers of their own
	 * (stem_buf[0]: the stem's output, and its gradient in backward;
	 * stem_buf[1]: the input in model_forward_eval) */
	size_t big = act(m, c->in_channels, c->in_h, c->in_w);
	size_t s = act(m, m->stem.s.OC, m->stem.s.OH, m->stem.s.OW);
	if (m->has_pool) {
		m->stem_buf[0] = take(p, s);
		m->stem_buf[1] = take(p, big);
		big = 0;
	} else {
		big = s > big ? s : big;
	}
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		size_t t1 = act(m, bk->c1.s.OC, bk->c1.s.OH, bk->c1.s.OW);
		size_t t2 = act(m, bk->c2.s.OC, bk->c2.s.OH, bk->c2.s.OW);
		size_t t3 = act(m, bk->OC, bk->OH, bk->OW);
		size_t t0 = act(m, bk->C, bk->H, bk->W);
		big = t1 > big ? t1 : big;
		big = t2 > big ? t2 : big;
		big = t3 > big ? t3 : big;
		big = t0 > big ? t0 : big;
	}
	m->buf_floats = big;
	for (int k = 0; k < NBUF; k++)
		m->buf[k] = take(p, big);
	if (train)
		for (int k = 0; k < 3; k++)
			m->hbuf[k] = take(p, (size_t)dmax * n);
	size_t (*wf)(const ConvShape *) = train ? conv_work_floats : conv_work_floats_eval;
	size_t col = wf(&m->stem.s);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		size_t cs[4] = { wf(&bk->c1.s), wf(&bk->c2.s), bk->bottleneck ? wf(&bk->c3.s) : 0,
			         bk->has_sc ? wf(&bk->sc.s) : 0 };
		for (int k = 0; k < 4; k++)
			col = cs[k] > col ? cs[k] : col;
	}
	m->col_floats = col;
	m->col = take(p, col ? col : 1);
	/* batch statistics of every BN */
	bn_layout(&m->stem_bn, p);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		BNorm *bs[4] = { &bk->b1, &bk->b2, bk->bottleneck ? &bk->b3 : NULL, bk->has_sc ? &bk->bsc : NULL };
		for (int k = 0; k < 4; k++)
			if (bs[k])
				bn_layout(bs[k], p);
	}
	for (int j = 0; j + 1 < m->nhead; j++)
		bn_layout(&m->head_bn[j], p);
}

static void
build_block(Builder *b, Block *bk, const char *name, int bottleneck, int C, int H, int W, int planes, int stride,
            int zero_init)
{
	char nm[TENSOR_MAX_NAME];
	snprintf(bk->name, sizeof bk->name, "%s", name);
	bk->bottleneck = bottleneck;
	bk->C = C;
	bk->H = H;
	bk->W = W;
	bk->mid = planes;
	bk->OC = bottleneck ? 4 * planes : planes;
	if (!bottleneck) {
		snprintf(nm, sizeof nm, "%s.conv1", name);
		conv_add(b, &bk->c1, nm, C, H, W, planes, 3, stride, 1);
		if (b->failed)
			return;
		snprintf(nm, sizeof nm, "%s.bn1", name);
		bn_add(b, &bk->b1, nm, planes, 0);
		snprintf(nm, sizeof nm, "%s.conv2", name);
		conv_add(b, &bk->c2, nm, planes, bk->c1.s.OH, bk->c1.s.OW, planes, 3, 1, 1);
		if (b->failed)
			return;
		snprintf(nm, sizeof nm, "%s.bn2", name);
		bn_add(b, &bk->b2, nm, planes, zero_init);
		bk->OH = bk->c2.s.OH;
		bk->OW = bk->c2.s.OW;
	} else {
		snprintf(nm, sizeof nm, "%s.conv1", name);
		conv_add(b, &bk->c1, nm, C, H, W, planes, 1, 1, 0);
		snprintf(nm, sizeof nm, "%s.bn1", name);
		bn_add(b, &bk->b1, nm, planes, 0);
		snprintf(nm, sizeof nm, "%s.conv2", name);
		conv_add(b, &bk->c2, nm, planes, H, W, planes, 3, stride, 1);
		if (b->failed)
			return;
		snprintf(nm, sizeof nm, "%s.bn2", name);
		bn_add(b, &bk->b2, nm, planes, 0);
		snprintf(nm, sizeof nm, "%s.conv3", name);
		conv_add(b, &bk->c3, nm, planes, bk->c2.s.OH, bk->c2.s.OW, 4 * planes, 1, 1, 0);
		if (b->failed)
			return;
		snprintf(nm, sizeof nm, "%s.bn3", name);
		bn_add(b, &bk->b3, nm, 4 * planes, zero_init);
		bk->OH = bk->c3.s.OH;
		bk->OW = bk->c3.s.OW;
	}
	bk->has_sc = stride != 1 || C != bk->OC;
	if (bk->has_sc) {
		snprintf(nm, sizeof nm, "%s.downsample.0", name);
		conv_add(b, &bk->sc, nm, C, H, W, bk->OC, 1, stride, 0);
		snprintf(nm, sizeof nm, "%s.downsample.1", name);
		bn_add(b, &bk->bsc, nm, bk->OC, 0);
	}
}

Model *
model_new(const ModelConfig *c, int max_batch, ModelMode mode, char *err, size_t errlen)
{
	if (model_config_check(c, err, errlen) != 0)
		return NULL;
	if (max_batch < 1 || max_batch > (1 << 24)) {
		snprintf(err, errlen, "batch %d not in [1, %d]", max_batch, 1 << 24);
		return NULL;
	}
	Model *m = xcalloc(1, sizeof *m);
	m->cfg = *c;
	m->mode = mode;
	m->max_batch = max_batch;
	m->bn_momentum = BN_MOMENTUM;
	m->precise_batches = -1;
	params_init(&m->params);
	Builder b = { m, err, errlen, 0 };

	/* stem */
	int H, W, w = c->width;
	if (c->stem == STEM_CIFAR)
		conv_add(&b, &m->stem, "conv1", c->in_channels, c->in_h, c->in_w, w, 3, 1, 1);
	else
		conv_add(&b, &m->stem, "conv1", c->in_channels, c->in_h, c->in_w, w, 7, 2, 3);
	if (b.failed)
		goto fail;
	bn_add(&b, &m->stem_bn, "bn1", w, 0);
	H = m->stem.s.OH;
	W = m->stem.s.OW;
	if (c->stem == STEM_IMAGENET) {
		m->has_pool = 1;
		if (pool_shape_init(&m->pool, w, H, W, 3, 2, 1) != 0) {
			snprintf(err, errlen, "maxpool: input %dx%d too small", H, W);
			goto fail;
		}
		H = m->pool.OH;
		W = m->pool.OW;
	}

	/* stages */
	static const int depth18[4] = { 2, 2, 2, 2 }, depth34[4] = { 3, 4, 6, 3 };
	const int *depth = c->arch == ARCH_RESNET18 ? depth18 : depth34; /* resnet50 = 3,4,6,3 too */
	int bottleneck = c->arch == ARCH_RESNET50;
	m->nblocks = depth[0] + depth[1] + depth[2] + depth[3];
	m->blocks = xcalloc((size_t)m->nblocks, sizeof *m->blocks);
	int C = w, k = 0;
	for (int st = 0; st < 4; st++)
		for (int j = 0; j < depth[st]; j++, k++) {
			char name[32];
			snprintf(name, sizeof name, "layer%d.%d", st + 1, j);
			Block *bk = &m->blocks[k];
			build_block(&b, bk, name, bottleneck, C, H, W, w << st, j == 0 && st > 0 ? 2 : 1,
			            c->zero_init_residual);
			if (b.failed)
				goto fail;
			C = bk->OC;
			H = bk->OH;
			W = bk->OW;
		}
	m->D = C;

	/* projection head and classifier */
	m->nhead = c->proj_layers;
	int in = m->D;
	for (int j = 0; j < m->nhead; j++) {
		char name[24];
		int last = j == m->nhead - 1;
		snprintf(name, sizeof name, "head.%d", 3 * j);
		linear_add(&b, &m->head[j], name, in, last ? c->proj_dim : c->proj_hidden, last);
		if (!last) {
			snprintf(name, sizeof name, "head.%d", 3 * j + 1);
			bn_add(&b, &m->head_bn[j], name, c->proj_hidden, 0);
			in = c->proj_hidden;
		}
	}
	if (c->num_classes > 0) {
		m->has_fc = 1;
		linear_add(&b, &m->fc, "fc", m->D, c->num_classes, 1);
	}
	if (b.failed)
		goto fail;

	/* memory: plan, check, allocate once */
	Plan p = { NULL, 0 };
	model_layout(m, &p);
	size_t bytes;
	if (size_mul(p.used, sizeof(float), &bytes) != 0 || p.used > ((size_t)1 << 38)) {
		snprintf(err, errlen, "batch %d needs too much memory", max_batch);
		goto fail;
	}
	for (int i = 0; i < m->nblocks; i++) /* GEMM dims are int */
		if (act(m, m->blocks[i].OC, m->blocks[i].OH, m->blocks[i].OW) > INT32_MAX / 2 ||
		    act(m, m->blocks[i].C, m->blocks[i].H, m->blocks[i].W) > INT32_MAX / 2) {
			snprintf(err, errlen, "batch %d too large for this input size", max_batch);
			goto fail;
		}
	params_alloc(&m->params, mode == MODEL_TRAIN);
	m->arena = xalloc_aligned(bytes);
	m->arena_floats = p.used;
	p = (Plan){ m->arena, 0 };
	model_layout(m, &p);

	ParamTable *t = &m->params;
	conv_bind(&m->stem, t);
	bn_bind(&m->stem_bn, t);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		conv_bind(&bk->c1, t);
		bn_bind(&bk->b1, t);
		conv_bind(&bk->c2, t);
		bn_bind(&bk->b2, t);
		if (bk->bottleneck) {
			conv_bind(&bk->c3, t);
			bn_bind(&bk->b3, t);
		}
		if (bk->has_sc) {
			conv_bind(&bk->sc, t);
			bn_bind(&bk->bsc, t);
		}
	}
	for (int j = 0; j < m->nhead; j++) {
		linear_bind(&m->head[j], t);
		if (j + 1 < m->nhead)
			bn_bind(&m->head_bn[j], t);
	}
	if (m->has_fc)
		linear_bind(&m->fc, t);
	if (mode == MODEL_TRAIN)
		for (int i = 0; i < m->nblocks; i++)
			m->blocks[i].x = i ? m->blocks[i - 1].out : m->has_pool ? m->pool_out : m->stem_a;
	model_init(m, 0);
	return m;
fail:
	model_free(m);
	return NULL;
}

void
model_free(Model *m)
{
	if (!m)
		return;
	params_free(&m->params);
	free(m->fan_in);
	free(m->zero_gamma);
	free(m->blocks);
	free(m->arena);
	free(m);
}

const ModelConfig *
model_config(const Model *m)
{
	return &m->cfg;
}

ParamTable *
model_params(Model *m)
{
	return &m->params;
}

int
model_max_batch(const Model *m)
{
	return m->max_batch;
}

int
model_feature_dim(const Model *m)
{
	return m->D;
}

int
model_output_dim(const Model *m, ModelOutput which)
{
	switch (which) {
	case MODEL_OUT_ENCODER: return m->D;
	case MODEL_OUT_PROJ_HIDDEN: return m->nhead ? m->cfg.proj_hidden : 0;
	case MODEL_OUT_PROJ: return m->nhead ? m->cfg.proj_dim : m->D;
	case MODEL_OUT_LOGITS: return m->has_fc ? m->cfg.num_classes : 0;
	}
	return 0;
}

size_t
model_memory_bytes(const Model *m)
{
	const ParamTable *t = &m->params;
	return sizeof(float) * (m->arena_floats + t->nparams * (t->grads ? 2 : 1) + t->nbuffers) +
	       sizeof(int64_t) * t->ncounters;
}

int64_t
model_flops(const Model *m, ModelOutput upto)
{
	int64_t f = conv_flops(&m->stem.s);
	for (int i = 0; i < m->nblocks; i++) {
		const Block *bk = &m->blocks[i];
		f += conv_flops(&bk->c1.s) + conv_flops(&bk->c2.s);
		if (bk->bottleneck)
			f += conv_flops(&bk->c3.s);
		if (bk->has_sc)
			f += conv_flops(&bk->sc.s);
	}
	if (upto == MODEL_OUT_LOGITS && m->has_fc)
		return f + 2 * (int64_t)m->fc.in * m->fc.out;
	if (upto == MODEL_OUT_ENCODER)
		return f;
	int last = upto == MODEL_OUT_PROJ_HIDDEN ? 1 : m->nhead;
	for (int j = 0; j < last && j < m->nhead; j++)
		f += 2 * (int64_t)m->head[j].in * m->head[j].out;
	return f;
}

static void
summary_conv(FILE *fp, const Conv *cv)
{
	const ConvShape *s = &cv->s;
	fprintf(fp, "%-24s %4dx%-4dx%-4d -> %4dx%-4dx%-4d k%d/s%d params %9lld MFLOPs %8.2f\n", cv->name,
	        s->C, s->H, s->W, s->OC, s->OH, s->OW, s->K, s->S, (long long)s->OC * s->C * s->K * s->K,
	        conv_flops(s) / 1e6);
}

void
model_print_summary(const Model *m, FILE *fp)
{
	const ModelConfig *c = &m->cfg;
	fprintf(fp, "model %s stem %s width %d input %dx%dx%d features %d head %d\n",
	        model_arch_name(c->arch), model_stem_name(c->stem), c->width, c->in_channels, c->in_h, c->in_w,
	        m->D, c->proj_layers);
	char isa[160];
	cpu_describe(isa, sizeof isa);
	fprintf(fp, "kernels %s\n", isa);
	if (m->precision == PRECISION_BF16) {
		fprintf(fp, "precision bf16 (%s kernel)\n", bf16_native() ? "avx512_bf16" : "portable");
	} else {
		fprintf(fp, "precision %s\n", model_precision_name(m->precision));
	}
	summary_conv(fp, &m->stem);
	if (m->has_pool)
		fprintf(fp, "%-24s %4dx%-4dx%-4d -> %4dx%-4dx%-4d k3/s2\n", "maxpool", m->pool.C, m->pool.H,
		        m->pool.W, m->pool.C, m->pool.OH, m->pool.OW);
	for (int i = 0; i < m->nblocks; i++) {
		const Block *bk = &m->blocks[i];
		summary_conv(fp, &bk->c1);
		summary_conv(fp, &bk->c2);
		if (bk->bottleneck)
			summary_conv(fp, &bk->c3);
		if (bk->has_sc)
			summary_conv(fp, &bk->sc);
	}
	for (int j = 0; j < m->nhead; j++)
		fprintf(fp, "%-24s %14d -> %-14d params %9lld MFLOPs %8.2f\n", m->head[j].name, m->head[j].in,
		        m->head[j].out, (long long)m->head[j].in * m->head[j].out + (m->head[j].has_bias ? m->head[j].out : 0),
		        2.0 * m->head[j].in * m->head[j].out / 1e6);
	if (m->has_fc)
		fprintf(fp, "%-24s %14d -> %-14d params %9lld\n", "fc", m->fc.in, m->fc.out,
		        (long long)m->fc.in * m->fc.out + m->fc.out);
	fprintf(fp, "parameters %lld, memory for batch %d: %.1f MB\n", (long long)params_count(&m->params),
	        m->max_batch, model_memory_bytes(m) / 1e6);
}

/* ---- initialisation ---- */

void
model_init(Model *m, uint64_t seed)
{
	ParamTable *t = &m->params;
	for (int k = 0; k < t->n; k++) {
		ParamEntry *e = &t->e[k];
		Rng r = rng_for(seed, 0, RNG_DOMAIN_INIT, (uint64_t)k);
		const char *suffix = strrchr(e->name, '.');
		if (e->dtype == DTYPE_I64) {
			memset(e->i64, 0, sizeof(int64_t) * (size_t)e->numel);
		} else if (e->role == PARAM_WEIGHT && e->ndim == 4) {
			/* kaiming_normal_(mode="fan_out", nonlinearity="relu") */
			double sd = sqrt(2.0 / (double)(e->shape[0] * e->shape[2] * e->shape[3]));
			for (int64_t j = 0; j < e->numel; j++)
				e->data[j] = (float)(sd * rng_normal(&r));
		} else if (e->role == PARAM_WEIGHT || e->role == PARAM_BIAS) {
			/* nn.Linear: kaiming_uniform_(a=sqrt(5)) and its bias rule, both U(+-1/sqrt(fan_in)) */
			double bound = 1.0 / sqrt((double)m->fan_in[k]);
			for (int64_t j = 0; j < e->numel; j++)
				e->data[j] = (float)rng_uniform_range(&r, -bound, bound);
		} else if (e->role == PARAM_BN_GAMMA) {
			float v = m->cfg.zero_init_residual && m->zero_gamma[k] ? 0.0f : 1.0f;
			for (int64_t j = 0; j < e->numel; j++)
				e->data[j] = v;
		} else {
			/* beta and running_mean 0, running_var 1 */
			float v = suffix && strcmp(suffix, ".running_var") == 0 ? 1.0f : 0.0f;
			for (int64_t j = 0; j < e->numel; j++)
				e->data[j] = v;
		}
	}
}

/* ---- data-parallel hook (lib/dist/syncbn.h, ssl-train --sync-bn) ---- */

/* Calls fn on every BatchNorm of the model. */
/* Every convolution of the encoder (conv) and every BatchNorm, the head's
 * too (bn); either function may be NULL. */
static void
each_layer(Model *m, void (*conv)(Conv *cv, void *arg), void (*bn)(BNorm *bn, void *arg), void *arg)
{
#define VISIT(c, b)                      \
	do {                             \
		if (conv)                \
			conv((c), arg);  \
		if (bn)                  \
			bn((b), arg);    \
	} while (0)
	VISIT(&m->stem, &m->stem_bn);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		VISIT(&bk->c1, &bk->b1);
		VISIT(&bk->c2, &bk->b2);
		if (bk->bottleneck)
			VISIT(&bk->c3, &bk->b3);
		if (bk->has_sc)
			VISIT(&bk->sc, &bk->bsc);
	}
#undef VISIT
	for (int j = 0; j + 1 < m->nhead && bn; j++)
		bn(&m->head_bn[j], arg);
}

static void
set_sync(BNorm *bn, void *arg)
{
	bn->sync = arg;
}

static void
widest(BNorm *bn, void *arg)
{
	int *c = arg;
	if (bn->C > *c)
		*c = bn->C;
}

void
model_set_sync_bn(Model *m, SyncBN *s)
{
	each_layer(m, NULL, set_sync, s);
}

int
model_max_bn_channels(const Model *m)
{
	int c = 0;
	each_layer((Model *)m, NULL, widest, &c);
	return c;
}

/* ---- precision ---- */

static const char *const precision_names[] = { "fp32", "bf16", "auto" };

int
model_precision_parse(const char *s, ModelPrecision *out)
{
	for (int i = 0; i < 3; i++)
		if (strcmp(s, precision_names[i]) == 0) {
			*out = (ModelPrecision)i;
			return 0;
		}
	return -1;
}

const char *
model_precision_name(ModelPrecision p)
{
	return (unsigned)p < 3 ? precision_names[p] : "?";
}

int
model_precision_resolve(ModelPrecision want, ModelPrecision *out, char *msg, size_t len)
{
	const char *e = getenv("SSL_BF16");
	const int portable = e && strcmp(e, "portable") == 0;
	msg[0] = 0;
	*out = want;
	if (want == PRECISION_AUTO) {
		*out = bf16_native() ? PRECISION_BF16 : PRECISION_FP32;
		if (*out == PRECISION_FP32)
			snprintf(msg, len, "--precision auto: fp32 (%s)",
			         bf16_cpu_has() ? "native bf16 turned off by $SSL_BF16 or $SSL_ISA" : "this CPU lacks avx512_bf16");
		return 0;
	}
	if (want == PRECISION_BF16 && !bf16_native() && !portable) {
		snprintf(msg, len,
		         "--precision bf16: %s (use fp32 or auto; $SSL_BF16=portable runs the slow portable kernel, for tests)",
		         bf16_cpu_has() ? "native bf16 turned off by $SSL_ISA" : "this CPU lacks avx512_bf16");
		return -1;
	}
	return 0;
}

static void
set_conv_bf16(Conv *cv, void *arg)
{
	cv->s.bf16 = *(const int *)arg;
}

void
model_set_precision(Model *m, ModelPrecision p)
{
	int bf16 = p == PRECISION_BF16;
	m->precision = bf16 ? PRECISION_BF16 : PRECISION_FP32;
	each_layer(m, set_conv_bf16, NULL, &bf16);
}

ModelPrecision
model_precision(const Model *m)
{
	return m->precision;
}
