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
#include "nn/conv.h"
#include "nn/layers.h"
#include "base/cpu.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "dist/syncbn.h"
#include "base/util.h"

#define NBUF 4

typedef struct {
	ConvShape s;
	int       pidx;  /* weight entry in the table */
	float    *w, *dw;
	char      name[40];
} Conv;

typedef struct {
	int      C;
	int      pidx;  /* gamma entry; beta, running_mean, running_var, num_batches_tracked follow */
	float   *gamma, *beta, *dgamma, *dbeta, *run_mean, *run_var;
	int64_t *nbt;
	float   *mean, *rstd; /* batch statistics of the last training forward */
	float   *scale;       /* gamma * rstd: the input transform of the next convolution */
	float   *ersd;        /* 1 / sqrt(running_var + eps), for eval */
	float   *escale;      /* gamma * ersd */
	double  *stats;       /* sums from the convolution that feeds it */
	SyncBN  *sync;        /* data-parallel: statistics over all ranks (model_set_sync_bn) */
	char     name[40];
} BNorm;

typedef struct {
	int    in, out, has_bias;
	int    pidx;
	float *w, *dw, *b, *db;
	char   name[40];
} Linear;

typedef struct {
	int    bottleneck, has_sc;
	int    C, H, W, mid, OC, OH, OW;
	Conv   c1, c2, c3, sc;
	BNorm  b1, b2, b3, bsc;
	float *x;                    /* input: the previous block's out or the stem's */
	float *a1, *a2, *a3, *asc;   /* conv outputs (pre-BN), kept for backward */
	float *out;                  /* block output, kept */
	char   name[32];
} Block;

struct Model {
	ModelConfig cfg;
	ModelMode   mode;
	int         max_batch, D;
	ParamTable  params;
	int        *fan_in;       /* per table entry, for initialisation */
	uint8_t    *zero_gamma;   /* per table entry: zero_init_residual target */

	Conv    stem;
	BNorm   stem_bn;
	int     has_pool;
	PoolShape pool;
	int     nblocks;
	Block  *blocks;
	int     nhead;            /* linear layers in the head (0, 2, 3) */
	Linear  head[3];
	BNorm   head_bn[2];
	int     has_fc;
	Linear  fc;

	/* activations (one arena) */
	float   *arena;
	size_t   arena_floats;
	float   *x_in;            /* (C, n, H, W) */
	float   *stem_c, *stem_a; /* conv out; relu(bn) out (kept for the CIFAR stem) */
	float   *pool_out;
	int32_t *pool_arg;
	float   *h_cm;            /* (D, n) */
	float   *hl[3], *ht[2];   /* head linear outputs; head BN-ReLU outputs */
	float   *out_rows;        /* (n, dim) row-major result */
	float   *h_rows;          /* (n, D) */
	float   *logits_cm;
	float   *buf[NBUF];
	size_t   buf_floats;
	float   *stem_buf[2];     /* with a max-pool after the stem: its output's and the input's scratch */
	float   *hbuf[3];         /* head gradients (maxdim, n) */
	float   *col;
	size_t   col_floats;

	int      last_n;          /* batch of the last training forward, 0 if none */
	int      last_classify;
};

/* ---- configuration ---- */

void
model_config_default(ModelConfig *c)
{
	*c = (ModelConfig){ .arch = ARCH_RESNET18, .stem = STEM_CIFAR, .width = 64, .in_channels = 3,
		            .in_h = 32, .in_w = 32, .proj_layers = 2, .proj_hidden = 2048, .proj_dim = 128,
		            .num_classes = 0, .zero_init_residual = 0 };
}

int
model_config_check(const ModelConfig *c, char *err, size_t errlen)
{
	if (c->arch != ARCH_RESNET18 && c->arch != ARCH_RESNET34 && c->arch != ARCH_RESNET50) {
		snprintf(err, errlen, "unknown architecture");
		return -1;
	}
	if (c->stem != STEM_CIFAR && c->stem != STEM_IMAGENET) {
		snprintf(err, errlen, "unknown stem");
		return -1;
	}
	if (c->width < 1 || c->width > 1024) {
		snprintf(err, errlen, "width %d not in [1, 1024]", c->width);
		return -1;
	}
	if (c->in_channels < 1 || c->in_channels > 1024) {
		snprintf(err, errlen, "input channels %d not in [1, 1024]", c->in_channels);
		return -1;
	}
	if (c->in_h < 1 || c->in_w < 1 || c->in_h > 8192 || c->in_w > 8192) {
		snprintf(err, errlen, "input size %dx%d not in [1, 8192]", c->in_h, c->in_w);
		return -1;
	}
	if (c->proj_layers != 0 && c->proj_layers != 2 && c->proj_layers != 3) {
		snprintf(err, errlen, "projection head layers must be 0, 2 or 3, not %d", c->proj_layers);
		return -1;
	}
	if (c->proj_layers && (c->proj_hidden < 1 || c->proj_hidden > 65536 || c->proj_dim < 1 ||
	                       c->proj_dim > 65536)) {
		snprintf(err, errlen, "projection head dims must be in [1, 65536]");
		return -1;
	}
	if (c->num_classes < 0 || c->num_classes > 1000000) {
		snprintf(err, errlen, "number of classes %d not in [0, 1000000]", c->num_classes);
		return -1;
	}
	return 0;
}

int
model_arch_parse(const char *s, ModelArch *out)
{
	if (strcmp(s, "resnet18") == 0)
		*out = ARCH_RESNET18;
	else if (strcmp(s, "resnet34") == 0)
		*out = ARCH_RESNET34;
	else if (strcmp(s, "resnet50") == 0)
		*out = ARCH_RESNET50;
	else
		return -1;
	return 0;
}

int
model_stem_parse(const char *s, ModelStem *out)
{
	if (strcmp(s, "cifar") == 0)
		*out = STEM_CIFAR;
	else if (strcmp(s, "imagenet") == 0)
		*out = STEM_IMAGENET;
	else
		return -1;
	return 0;
}

const char *
model_arch_name(ModelArch a)
{
	return a == ARCH_RESNET18 ? "resnet18" : a == ARCH_RESNET34 ? "resnet34" : "resnet50";
}

const char *
model_stem_name(ModelStem s)
{
	return s == STEM_CIFAR ? "cifar" : "imagenet";
}

int
model_output_parse(const char *s, ModelOutput *out)
{
	if (strcmp(s, "encoder") == 0)
		*out = MODEL_OUT_ENCODER;
	else if (strcmp(s, "proj-hidden") == 0)
		*out = MODEL_OUT_PROJ_HIDDEN;
	else if (strcmp(s, "proj") == 0)
		*out = MODEL_OUT_PROJ;
	else if (strcmp(s, "logits") == 0)
		*out = MODEL_OUT_LOGITS;
	else
		return -1;
	return 0;
}

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

/* ---- forward (training) ---- */

static int
hw(const Conv *cv)
{
	return cv->s.OH * cv->s.OW;
}

/* Batch statistics of a BN from the sums its convolution gathered. */
static void
bn_finish(BNorm *bn, int64_t M)
{
	if (bn->sync) /* sums (and M) over every rank's batch */
		syncbn_reduce_stats(bn->sync, bn->stats, bn->C, &M);
	bn_stats_finish(bn->mean, bn->rstd, bn->run_mean, bn->run_var, bn->stats, bn->C, M, BN_MOMENTUM, BN_EPS);
	for (int c = 0; c < bn->C; c++)
		bn->scale[c] = bn->gamma[c] * bn->rstd[c];
	(*bn->nbt)++;
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
	bn_finish(bn, (int64_t)n * hw(cv));
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
bn_train_plain(BNorm *bn, float *out, const float *inp, int n, int HW, int relu)
{
	if (bn->sync) {
		syncbn_forward_train(bn->sync, out, bn->mean, bn->rstd, bn->run_mean, bn->run_var, inp, bn->gamma,
		                     bn->beta, n, bn->C, HW, relu, BN_MOMENTUM, BN_EPS);
		(*bn->nbt)++;
		return;
	}
	(relu ? bn_relu_forward_train : bn_forward_train)(out, bn->mean, bn->rstd, bn->run_mean, bn->run_var,
	                                                  inp, bn->gamma, bn->beta, n, bn->C, HW, BN_MOMENTUM,
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
		linear_forward(m->hl[j], in, l->w, l->b, n, l->in, l->out);
		if (j + 1 < m->nhead) {
			bn_train_plain(&m->head_bn[j], m->ht[j], m->hl[j], n, 1, 1);
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
	linear_forward(m->logits_cm, m->h_cm, m->fc.w, m->fc.b, n, m->fc.in, m->fc.out);
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
		linear_backward(e, l->dw, l->db, d, in, l->w, n, l->in, l->out);
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
	linear_backward(e, m->fc.dw, m->fc.db, d, m->h_cm, m->fc.w, n, m->fc.in, m->fc.out);
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
		linear_forward(m->logits_cm, m->h_cm, m->fc.w, m->fc.b, n, m->fc.in, m->fc.out);
		feat = m->logits_cm;
		dim = m->fc.out;
	} else if (which != MODEL_OUT_ENCODER && m->nhead) {
		int last = which == MODEL_OUT_PROJ_HIDDEN ? 1 : m->nhead;
		for (int j = 0; j < last; j++) {
			Linear *l = &m->head[j];
			linear_forward(m->hl[j], feat, l->w, l->b, n, l->in, l->out);
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

/* ---- data-parallel hook (lib/dist/syncbn.h, ssl-train --sync-bn) ---- */

/* Calls fn on every BatchNorm of the model. */
static void
each_bn(Model *m, void (*fn)(BNorm *bn, void *arg), void *arg)
{
	fn(&m->stem_bn, arg);
	for (int i = 0; i < m->nblocks; i++) {
		Block *bk = &m->blocks[i];
		fn(&bk->b1, arg);
		fn(&bk->b2, arg);
		if (bk->bottleneck)
			fn(&bk->b3, arg);
		if (bk->has_sc)
			fn(&bk->bsc, arg);
	}
	for (int j = 0; j + 1 < m->nhead; j++)
		fn(&m->head_bn[j], arg);
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
	each_bn(m, set_sync, s);
}

int
model_max_bn_channels(const Model *m)
{
	int c = 0;
	each_bn((Model *)m, widest, &c);
	return c;
}
