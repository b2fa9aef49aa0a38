/* syncbn: synchronised BatchNorm for data-parallel training (ssl-train
 * --sync-bn). Every rank normalises with the mean and variance of the
 * global batch (the union of the ranks' batches), and the backward uses the
 * global sums of g and g * xhat, so the model computes what one process
 * would on the whole batch (PyTorch's SyncBatchNorm).
 *
 * Per BatchNorm layer and step this moves 2C doubles in forward (the sums
 * and sums of squares) and 2C in backward (the sums of g and g * xhat),
 * one all-reduce each (dist.h, tag DIST_BN).
 *
 * The model calls these through its hook (model_set_sync_bn): the
 * statistics its convolutions gathered go through syncbn_reduce_stats
 * before bn_stats_finish; the projection head's BatchNorm1d uses
 * syncbn_forward_train; every backward uses syncbn_backward. Layouts and
 * arguments are bn.h's. The parameter gradients dgamma, dbeta receive this
 * rank's part only: the gradient all-reduce adds the parts.
 *
 * Nothing is allocated after syncbn_new. */
#ifndef SSL_SYNCBN_H
#define SSL_SYNCBN_H

#include <stdint.h>

#include "nn/bn.h"
#include "dist/dist.h"

typedef struct SyncBN SyncBN;

/* max_channels: the widest BatchNorm of the model. */
SyncBN *syncbn_new(Dist *d, int max_channels);
void    syncbn_free(SyncBN *s);
/* The batch of the coming forward and backward: n images on this rank,
 * n_total on all ranks together. */
void    syncbn_set_batch(SyncBN *s, int n, int64_t n_total);

/* stats (2C: per channel the sum and the sum of squares over this rank's
 * M = n * HW values) become the sums over all ranks, and *M their count. */
void syncbn_reduce_stats(SyncBN *s, double *stats, int C, int64_t *M);
/* bn_forward_train (relu 0) or bn_relu_forward_train (relu 1) with the
 * statistics of the global batch. */
void syncbn_forward_train(SyncBN *s, float *out, float *mean, float *rstd, float *run_mean, float *run_var,
                          const float *inp, const float *gamma, const float *beta, int n, int C, int HW, int relu,
                          float momentum, float eps);
/* bn_backward_fused with the sums of the global batch; sums: this rank's
 * (2C: sum g, sum g * xhat per channel) when already known, else NULL. */
void syncbn_backward(SyncBN *s, float *dinp, float *dres, float *dgamma, float *dbeta, const float *dout,
                     const float *out, const float *inp, const float *mean, const float *rstd, const float *gamma,
                     const float *beta, int n, int C, int HW, BnMask mask, int accumulate, const double *sums);

#endif
