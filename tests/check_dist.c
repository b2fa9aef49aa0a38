/* Tests for the data-parallel pieces without MPI: lib/dist/dist (the
 * one-process communicator and its counters), lib/dist/ntxent_dist and
 * lib/dist/syncbn, and the model's sync-BN hook. Ranks are threads here: a
 * communicator over a shared hub and barriers (the sums taken in rank
 * order, as a deterministic MPI would), so 2 or 3 "ranks" with parts of a
 * batch can be compared with one process on the whole batch:
 *   - NT-Xent: the same loss and top-1, and each rank's rows of dz equal
 *     the single computation's (uneven parts too);
 *   - BatchNorm: forward (outputs, batch and running statistics, through
 *     both entry points) and backward (every mask, overwrite and
 *     accumulate; dgamma and dbeta summed over ranks) equal bn.c's on the
 *     whole batch;
 *   - a model with the hook: the summed gradients of two half batches equal
 *     one model's gradients on the whole batch (and without the hook they
 *     do not). */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nn/bn.h"
#include "dist/dist.h"
#include "fixture.h"
#include "nn/loss.h"
#include "nn/model.h"
#include "dist/ntxent_dist.h"
#include "base/parallel.h"
#include "base/rng.h"
#include "dist/syncbn.h"
#include "testutil.h"
#include "base/util.h"

#define MAXR 4

/* ------------------------------------------------ ranks as threads */

typedef struct {
	pthread_barrier_t bar;
	int               size;
	const void       *slot[MAXR];
} Hub;

static void
hub_sync(Dist *d)
{
	pthread_barrier_wait(&((Hub *)d->impl)->bar);
}

static void
th_allreduce_f32(Dist *d, float *buf, size_t n, DistTag tag)
{
	Hub *h = d->impl;
	float *sum = xcalloc(n ? n : 1, sizeof *sum);
	(void)tag;
	h->slot[d->rank] = buf;
	hub_sync(d);
	for (int r = 0; r < h->size; r++)
		for (size_t i = 0; i < n; i++)
			sum[i] += ((const float *)h->slot[r])[i];
	hub_sync(d);
	memcpy(buf, sum, n * sizeof *sum);
	free(sum);
	hub_sync(d);
}

static void
th_allreduce_f64(Dist *d, double *buf, size_t n, DistTag tag)
{
	Hub *h = d->impl;
	double *sum = xcalloc(n ? n : 1, sizeof *sum);
	(void)tag;
	h->slot[d->rank] = buf;
	hub_sync(d);
	for (int r = 0; r < h->size; r++)
		for (size_t i = 0; i < n; i++)
			sum[i] += ((const double *)h->slot[r])[i];
	hub_sync(d);
	memcpy(buf, sum, n * sizeof *sum);
	free(sum);
	hub_sync(d);
}

static void
th_allgather(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag)
{
	Hub *h = d->impl;
	(void)tag;
	h->slot[d->rank] = send;
	hub_sync(d);
	for (int r = 0; r < h->size; r++)
		memcpy((char *)recv + r * bytes, h->slot[r], bytes);
	hub_sync(d);
}

static void
th_allgatherv_f32(Dist *d, const float *send, const int *counts, float *recv, DistTag tag)
{
	Hub *h = d->impl;
	size_t off = 0;
	(void)tag;
	h->slot[d->rank] = send;
	hub_sync(d);
	for (int r = 0; r < h->size; r++) {
		memcpy(recv + off, h->slot[r], sizeof(float) * (size_t)counts[r]);
		off += (size_t)counts[r];
	}
	hub_sync(d);
}

static void
th_bcast(Dist *d, void *buf, size_t bytes, int root, DistTag tag)
{
	Hub *h = d->impl;
	(void)tag;
	h->slot[d->rank] = buf;
	hub_sync(d);
	if (d->rank != root)
		memcpy(buf, h->slot[root], bytes);
	hub_sync(d);
}

static void ATTR_NORETURN
th_abort(Dist *d, int status)
{
	(void)d;
	ck_abort_msg("dist_abort (status %d)", status);
	abort();
}

static void
th_finalize(Dist *d)
{
	(void)d;
}

static const DistOps th_ops = { th_allreduce_f32, th_allreduce_f64, th_allgather, th_allgatherv_f32,
	                        th_bcast, th_abort, th_finalize, NULL };

typedef struct {
	Dist  d;
	void (*fn)(Dist *d, void *arg);
	void *arg;
} Rank;

static void *
rank_main(void *p)
{
	Rank *r = p;
	r->fn(&r->d, r->arg);
	return NULL;
}

/* Runs fn on `size` threads, each with its rank's communicator. */
static void
run_ranks(int size, void (*fn)(Dist *d, void *arg), void *arg)
{
	Hub h;
	Rank rk[MAXR];
	pthread_t th[MAXR];
	ck_assert_int_le(size, MAXR);
	memset(&h, 0, sizeof h);
	h.size = size;
	pthread_barrier_init(&h.bar, NULL, (unsigned)size);
	for (int r = 0; r < size; r++) {
		memset(&rk[r], 0, sizeof rk[r]);
		rk[r].d = (Dist){ .ops = &th_ops, .name = "threads", .rank = r, .size = size, .local_size = size,
			          .impl = &h };
		rk[r].fn = fn;
		rk[r].arg = arg;
		ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &rk[r]), 0);
	}
	for (int r = 0; r < size; r++)
		pthread_join(th[r], NULL);
	pthread_barrier_destroy(&h.bar);
}

static void
fill_normal(float *x, size_t n, uint64_t seed, double scale, double shift)
{
	Rng r = rng_for(seed, 0, 99, 0);
	for (size_t i = 0; i < n; i++)
		x[i] = (float)(shift + scale * rng_normal(&r));
}

/* max |a - b| / max(max |b|, floor) */
static double
max_rel(const float *a, const float *b, size_t n, double floor)
{
	return rel_err(a, b, n, floor);
}

/* ------------------------------------------------ the local communicator */

START_TEST(test_local)
{
	Dist *d = dist_local();
	float f[3] = { 1, 2, 3 }, g[3];
	double x[2] = { 4, 5 };
	int counts[1] = { 3 };
	int64_t calls = dist_stats(d, DIST_GRADS)->calls;
	ck_assert_int_eq(dist_rank(d), 0);
	ck_assert_int_eq(dist_size(d), 1);
	dist_allreduce_sum_f32(d, f, 3, DIST_GRADS);
	dist_allreduce_sum_f64(d, x, 2, DIST_BN);
	ck_assert(f[0] == 1 && f[2] == 3 && x[1] == 5);
	dist_allgather(d, f, sizeof f, g, DIST_CONTROL);
	ck_assert(g[0] == 1 && g[1] == 2 && g[2] == 3);
	memset(g, 0, sizeof g);
	dist_allgatherv_f32(d, f, counts, g, DIST_EMBED);
	ck_assert(g[2] == 3);
	dist_bcast(d, x, sizeof x, 0, DIST_SETUP);
	ck_assert_int_eq(dist_stats(d, DIST_GRADS)->calls, calls + 1);
	ck_assert(dist_stats(d, DIST_GRADS)->bytes >= 12);
	ck_assert_str_eq(dist_tag_name(DIST_GRADS), "gradients");
}
END_TEST

/* ------------------------------------------------ NT-Xent over ranks */

typedef struct {
	int          N, D, parts[MAXR];
	float        t;
	const float *z;       /* (2N, D) global order */
	float        loss[MAXR], acc[MAXR];
	float       *dz[MAXR]; /* (2 n_r, D) */
} NtxJob;

static void
ntx_rank(Dist *d, void *arg)
{
	NtxJob *j = arg;
	int off = 0, n = j->parts[d->rank];
	for (int r = 0; r < d->rank; r++)
		off += j->parts[r];
	float *work = xalloc_aligned(sizeof(float) * ntxent_dist_work_floats(n, j->N, j->D));
	j->dz[d->rank] = xcalloc(2 * (size_t)n * j->D, sizeof(float));
	ck_assert_int_eq(ntxent_dist_forward_backward(d, &j->loss[d->rank], &j->acc[d->rank], j->dz[d->rank], work,
	                                              j->z, j->N, off, n, j->D, j->t),
	                 0);
	free(work);
}

static void
check_ntxent(int size, const int *parts)
{
	NtxJob j;
	int N = 0, D = 5, off = 0;
	memset(&j, 0, sizeof j);
	for (int r = 0; r < size; r++)
		N += j.parts[r] = parts[r];
	j.N = N;
	j.D = D;
	j.t = 0.5f;
	float *z = xalloc_aligned(sizeof(float) * 2 * N * D), *dz = xalloc_aligned(sizeof(float) * 2 * N * D);
	float *work = xalloc_aligned(sizeof(float) * ntxent_work_floats(N, D)), loss, acc;
	fill_normal(z, 2 * (size_t)N * D, 11, 1.0, 0.0);
	for (int i = 0; i < N; i++) /* positives resemble their pair, so top-1 is not trivial */
		for (int k = 0; k < D; k++)
			z[(size_t)(N + i) * D + k] = z[(size_t)i * D + k] + 0.7f * z[(size_t)(N + i) * D + k];
	j.z = z;
	ck_assert_int_eq(ntxent_forward_backward(&loss, &acc, dz, work, z, N, D, j.t), 0);
	run_ranks(size, ntx_rank, &j);
	for (int r = 0; r < size; r++) {
		int n = parts[r];
		ck_assert_msg(fabs(j.loss[r] - loss) <= 1e-6 * fabs(loss), "rank %d loss %.9g, one process %.9g", r,
		              j.loss[r], loss);
		ck_assert(j.acc[r] == acc);
		/* rank r's rows: views 0 then views 1 of its samples */
		ck_assert_double_le(max_rel(j.dz[r], dz + (size_t)off * D, (size_t)n * D, 1e-3), 1e-5);
		ck_assert_double_le(max_rel(j.dz[r] + (size_t)n * D, dz + (size_t)(N + off) * D, (size_t)n * D, 1e-3),
		                    1e-5);
		off += n;
		free(j.dz[r]);
	}
	free(z);
	free(dz);
	free(work);
}

START_TEST(test_ntxent_ranks)
{
	int even[2] = { 4, 4 }, uneven[3] = { 3, 1, 2 };
	check_ntxent(2, even);
	check_ntxent(3, uneven);
}
END_TEST

START_TEST(test_ntxent_bad_args)
{
	float loss, w[1], z[1];
	ck_assert_int_eq(ntxent_dist_forward_backward(dist_local(), &loss, NULL, NULL, w, z, 4, 3, 2, 5, 0.5f), -1);
	ck_assert_int_eq(ntxent_dist_forward_backward(dist_local(), &loss, NULL, NULL, w, z, 4, 0, 0, 5, 0.5f), -1);
	ck_assert_int_eq(ntxent_dist_forward_backward(dist_local(), &loss, NULL, NULL, w, z, 4, 0, 4, 5, 0.0f), -1);
}
END_TEST

/* ------------------------------------------------ BatchNorm over ranks */

enum { BN_C = 3, BN_HW = 5 };

typedef struct {
	int          size, parts[MAXR], N, mode; /* mode: 0 plain, 1 relu, 2 add+relu (forward) */
	BnMask       mask;
	int          accumulate, via_stats, given_sums;
	/* global (C, N, HW) */
	const float *x, *res, *dy, *out, *gamma, *beta, *mean, *rstd, *dx0, *dr0;
	/* per rank results, scattered back into global layout */
	float       *y, *gmean, *grstd, *rmean, *rvar, *dx, *dr, *dgamma, *dbeta;
} BnJob;

/* copies rank r's part (C, n, HW) out of a global (C, N, HW) or back */
static void
part_copy(float *dst, const float *src, int N, int off, int n, int to_global)
{
	for (int c = 0; c < BN_C; c++) {
		float *g = (float *)(to_global ? dst : src) + ((size_t)c * N + off) * BN_HW;
		float *l = (float *)(to_global ? src : dst) + (size_t)c * n * BN_HW;
		if (to_global)
			memcpy(g, l, sizeof(float) * n * BN_HW);
		else
			memcpy(l, g, sizeof(float) * n * BN_HW);
	}
}

static void
bn_rank(Dist *d, void *arg)
{
	BnJob *j = arg;
	int off = 0, n = j->parts[d->rank], len = BN_C * n * BN_HW;
	for (int r = 0; r < d->rank; r++)
		off += j->parts[r];
	SyncBN *s = syncbn_new(d, BN_C);
	float *x = xcalloc((size_t)len, 4), *y = xcalloc((size_t)len, 4), *res = xcalloc((size_t)len, 4);
	float *dy = xcalloc((size_t)len, 4), *out = xcalloc((size_t)len, 4), *dx = xcalloc((size_t)len, 4);
	float *dr = xcalloc((size_t)len, 4), mean[BN_C], rstd[BN_C], rm[BN_C], rv[BN_C], dg[BN_C] = { 0 }, db[BN_C] = { 0 };
	part_copy(x, j->x, j->N, off, n, 0);
	part_copy(res, j->res, j->N, off, n, 0);
	part_copy(dy, j->dy, j->N, off, n, 0);
	part_copy(out, j->out, j->N, off, n, 0);
	part_copy(dx, j->dx0, j->N, off, n, 0);
	part_copy(dr, j->dr0, j->N, off, n, 0);
	for (int c = 0; c < BN_C; c++)
		rm[c] = 0.1f * c, rv[c] = 1.0f + c;
	syncbn_set_batch(s, n, j->N);
	if (j->via_stats) { /* as the model: local sums, reduced, then bn.h's finish and apply */
		double st[2 * BN_C] = { 0 };
		int64_t M = (int64_t)n * BN_HW;
		bn_stats_accumulate(st, x, n, BN_C, BN_HW);
		syncbn_reduce_stats(s, st, BN_C, &M);
		ck_assert_int_eq(M, (int64_t)j->N * BN_HW);
		bn_stats_finish(mean, rstd, rm, rv, st, BN_C, M, BN_MOMENTUM, BN_EPS);
		bn_apply(y, x, j->mode == 2 ? res : NULL, mean, rstd, j->gamma, j->beta, n, BN_C, BN_HW, j->mode > 0);
	} else {
		syncbn_forward_train(s, y, mean, rstd, rm, rv, x, j->gamma, j->beta, n, BN_C, BN_HW, j->mode, BN_MOMENTUM,
		                     BN_EPS);
	}
	part_copy(j->y, y, j->N, off, n, 1);
	if (d->rank == 0) {
		memcpy(j->gmean, mean, sizeof mean);
		memcpy(j->grstd, rstd, sizeof rstd);
		memcpy(j->rmean, rm, sizeof rm);
		memcpy(j->rvar, rv, sizeof rv);
	}
	/* backward with the reference's statistics (the same up to rounding) */
	{ /* with the sums given (as the model's convolutions gather them) and without */
		double sums[2 * BN_C];
		for (int c = 0; c < BN_C; c++) {
			double sg = 0, sgx = 0;
			for (int i = 0; i < n * BN_HW; i++) {
				size_t k = (size_t)c * n * BN_HW + (size_t)i;
				float mm = j->mean[c], rs = j->rstd[c], a = j->gamma[c] * rs;
				float g = j->mask == BN_MASK_RECOMPUTE ? ((x[k] - mm) * a + j->beta[c] > 0.0f ? dy[k] : 0.0f)
				          : j->mask == BN_MASK_OUT     ? (out[k] > 0.0f ? dy[k] : 0.0f)
				                                       : dy[k];
				sg += g;
				sgx += (double)g * ((x[k] - mm) * rs);
			}
			sums[2 * c] = sg, sums[2 * c + 1] = sgx;
		}
		syncbn_backward(s, dx, dr, dg, db, dy, out, x, j->mean, j->rstd, j->gamma, j->beta, n, BN_C, BN_HW, j->mask,
		                j->accumulate, j->given_sums ? sums : NULL);
	}
	part_copy(j->dx, dx, j->N, off, n, 1);
	part_copy(j->dr, dr, j->N, off, n, 1);
	/* the gradient all-reduce */
	dist_allreduce_sum_f32(d, dg, BN_C, DIST_GRADS);
	dist_allreduce_sum_f32(d, db, BN_C, DIST_GRADS);
	if (d->rank == 0) {
		memcpy(j->dgamma, dg, sizeof dg);
		memcpy(j->dbeta, db, sizeof db);
	}
	syncbn_free(s);
	free(x), free(y), free(res), free(dy), free(out), free(dx), free(dr);
}

static void
check_bn(int size, const int *parts, int mode, BnMask mask, int accumulate, int via_stats)
{
	BnJob j;
	int N = 0;
	memset(&j, 0, sizeof j);
	for (int r = 0; r < size; r++)
		N += j.parts[r] = parts[r];
	size_t len = (size_t)BN_C * N * BN_HW;
	float *x = xcalloc(len, 4), *res = xcalloc(len, 4), *dy = xcalloc(len, 4), *out = xcalloc(len, 4);
	float *dx0 = xcalloc(len, 4), *dr0 = xcalloc(len, 4), *y = xcalloc(len, 4), *dx = xcalloc(len, 4);
	float *dr = xcalloc(len, 4), *ydist = xcalloc(len, 4), *dxdist = xcalloc(len, 4), *drdist = xcalloc(len, 4);
	float gamma[BN_C] = { 1.2f, 0.7f, -0.4f }, beta[BN_C] = { 0.1f, -0.3f, 0.05f }, mean[BN_C], rstd[BN_C];
	float rm[BN_C], rv[BN_C], dg[BN_C] = { 0 }, db[BN_C] = { 0 };
	float gm[BN_C], gr[BN_C], grm[BN_C], grv[BN_C], gdg[BN_C], gdb[BN_C];
	fill_normal(x, len, 1, 2.0, 0.5);
	fill_normal(res, len, 2, 1.0, 0.0);
	fill_normal(dy, len, 3, 1.0, 0.0);
	fill_normal(dx0, len, 4, 1.0, 0.0);
	fill_normal(dr0, len, 5, 1.0, 0.0);
	for (int c = 0; c < BN_C; c++)
		rm[c] = 0.1f * c, rv[c] = 1.0f + c;
	/* one process on the whole batch */
	if (mode == 2)
		bn_add_relu_forward_train(y, mean, rstd, rm, rv, x, res, gamma, beta, N, BN_C, BN_HW, BN_MOMENTUM, BN_EPS);
	else
		(mode ? bn_relu_forward_train : bn_forward_train)(y, mean, rstd, rm, rv, x, gamma, beta, N, BN_C, BN_HW,
		                                                  BN_MOMENTUM, BN_EPS);
	memcpy(out, y, len * 4); /* the mask of BN_MASK_OUT */
	memcpy(dx, dx0, len * 4);
	memcpy(dr, dr0, len * 4);
	bn_backward_fused(dx, dr, dg, db, dy, out, x, mean, rstd, gamma, beta, N, BN_C, BN_HW, mask, accumulate, NULL);
	j.size = size, j.N = N, j.mode = mode, j.mask = mask, j.accumulate = accumulate, j.via_stats = via_stats;
	j.given_sums = via_stats; /* both ways over the cases */
	j.x = x, j.res = res, j.dy = dy, j.out = out, j.gamma = gamma, j.beta = beta, j.mean = mean, j.rstd = rstd;
	j.dx0 = dx0, j.dr0 = dr0;
	j.y = ydist, j.gmean = gm, j.grstd = gr, j.rmean = grm, j.rvar = grv, j.dx = dxdist, j.dr = drdist;
	j.dgamma = gdg, j.dbeta = gdb;
	run_ranks(size, bn_rank, &j);
	ck_assert_double_le(max_rel(ydist, y, len, 1e-3), 1e-6);
	ck_assert_double_le(max_rel(gm, mean, BN_C, 1e-3), 1e-6);
	ck_assert_double_le(max_rel(gr, rstd, BN_C, 1e-3), 1e-6);
	ck_assert_double_le(max_rel(grm, rm, BN_C, 1e-3), 1e-6);
	ck_assert_double_le(max_rel(grv, rv, BN_C, 1e-3), 1e-6);
	ck_assert_double_le(max_rel(dxdist, dx, len, 1e-3), 1e-5);
	ck_assert_double_le(max_rel(drdist, dr, len, 1e-3), 1e-6);
	/* gradient sums add float blocks of 256 (lib/nn/bn.c): other splits of the batch round differently */
	ck_assert_double_le(max_rel(gdg, dg, BN_C, 1e-3), 1e-5);
	ck_assert_double_le(max_rel(gdb, db, BN_C, 1e-3), 1e-5);
	free(x), free(res), free(dy), free(out), free(dx0), free(dr0), free(y), free(dx), free(dr);
	free(ydist), free(dxdist), free(drdist);
}

START_TEST(test_bn_ranks)
{
	int two[2] = { 3, 2 }, three[3] = { 1, 2, 3 };
	BnMask masks[3] = { BN_MASK_NONE, BN_MASK_RECOMPUTE, BN_MASK_OUT };
	for (int mode = 0; mode < 3; mode++)
		for (int acc = 0; acc < 2; acc++) {
			check_bn(2, two, mode, masks[mode], acc, mode == 2);
			check_bn(3, three, mode, masks[mode], acc, mode != 1);
		}
}
END_TEST

/* ------------------------------------------------ the model's hook */

typedef struct {
	ModelConfig c;
	int         N, sync;
	const float *x;   /* (N, C, H, W) */
	const float *dz;  /* (N, proj_dim) */
	float       *grads[MAXR];
	size_t       nparams;
} ModelJob;

static void
model_rank(Dist *d, void *arg)
{
	ModelJob *j = arg;
	char err[256];
	int n = j->N / d->size, img = j->c.in_channels * j->c.in_h * j->c.in_w;
	Model *m = model_new(&j->c, n, MODEL_TRAIN, err, sizeof err);
	SyncBN *s = NULL;
	ck_assert_msg(m != NULL, "%s", err);
	model_init(m, 3);
	if (j->sync) {
		s = syncbn_new(d, model_max_bn_channels(m));
		model_set_sync_bn(m, s);
		syncbn_set_batch(s, n, j->N);
	}
	model_forward_train(m, j->x + (size_t)d->rank * n * img, n);
	model_zero_grad(m);
	model_backward(m, j->dz + (size_t)d->rank * n * j->c.proj_dim);
	ParamTable *pt = model_params(m);
	dist_allreduce_sum_f32(d, pt->grads, pt->nparams, DIST_GRADS);
	j->nparams = pt->nparams;
	j->grads[d->rank] = xmalloc(sizeof(float) * pt->nparams);
	memcpy(j->grads[d->rank], pt->grads, sizeof(float) * pt->nparams);
	model_free(m);
	syncbn_free(s);
}

START_TEST(test_model_hook)
{
	ModelJob j;
	char err[256];
	int N = 8;
	memset(&j, 0, sizeof j);
	model_config_default(&j.c);
	j.c.width = 4;
	j.c.in_h = j.c.in_w = 8;
	j.c.proj_hidden = 16;
	j.c.proj_dim = 6;
	j.N = N;
	parallel_set_threads(1);
	int img = 3 * 8 * 8;
	float *x = xalloc_aligned(sizeof(float) * N * img), *dz = xalloc_aligned(sizeof(float) * N * 6);
	fill_normal(x, (size_t)N * img, 7, 1.0, 0.0);
	fill_normal(dz, (size_t)N * 6, 8, 0.1, 0.0);
	j.x = x;
	j.dz = dz;
	Model *m = model_new(&j.c, N, MODEL_TRAIN, err, sizeof err);
	ck_assert_msg(m != NULL, "%s", err);
	model_init(m, 3);
	ck_assert_int_eq(model_max_bn_channels(m), 32); /* layer4: 8 x width; the head's BN has 16 */
	model_forward_train(m, x, N);
	model_zero_grad(m);
	model_backward(m, dz);
	ParamTable *pt = model_params(m);
	for (int sync = 1; sync >= 0; sync--) {
		j.sync = sync;
		run_ranks(2, model_rank, &j);
		ck_assert_int_eq(j.nparams, pt->nparams);
		double e = rel_err(j.grads[0], pt->grads, pt->nparams, 1e-6);
		if (getenv("CHECK_DIST_VERBOSE"))
			fprintf(stderr, "sync %d: gradient error %g\n", sync, e);
		if (sync) {
			ck_assert_msg(e < 1e-4, "sync-BN gradients differ from one process's: %g", e);
			ck_assert(memcmp(j.grads[0], j.grads[1], sizeof(float) * pt->nparams) == 0);
		} else {
			ck_assert_msg(e > 1e-2, "per-rank BatchNorm should not give one process's gradients (%g)", e);
		}
		free(j.grads[0]);
		free(j.grads[1]);
	}
	model_free(m);
	free(x);
	free(dz);
}
END_TEST

static Suite *
dist_suite(void)
{
	Suite *s = suite_create("dist");
	TCase *tc = tcase_create("core");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_local);
	tcase_add_test(tc, test_ntxent_ranks);
	tcase_add_test(tc, test_ntxent_bad_args);
	tcase_add_test(tc, test_bn_ranks);
	tcase_add_test(tc, test_model_hook);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(dist_suite)
