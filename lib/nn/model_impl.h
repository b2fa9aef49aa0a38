/* model internals: the layers of a Model as the parts of lib/nn/model
 * share them (model.c builds and plans, model_pass.c runs the passes).
 * Not for other modules: model.h is the interface. */
#ifndef SSL_MODEL_IMPL_H
#define SSL_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "dist/syncbn.h"
#include "nn/conv.h"
#include "nn/model.h"

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
	float       bn_momentum;  /* BN_MOMENTUM; 1/(k+1) for batch k of a precise-BN pass */
	int64_t     precise_batches; /* batches of the precise-BN pass so far; -1: none running */
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
	ModelPrecision precision; /* PRECISION_FP32 or PRECISION_BF16 (model_set_precision) */
};

#endif
