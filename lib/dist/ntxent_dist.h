/* ntxent_dist: NT-Xent (loss.h) over a batch spread across ranks, as
 * SimCLR computes it across accelerators: every rank sees the negatives of
 * the whole global batch.
 *
 * The global batch has N pairs; this rank holds n of them, at offset off
 * (the pairs of the ranks before it). z_all (2N, D) holds every rank's
 * projections gathered in global order: rows [0, N) are views 0 of all
 * samples (rank 0's first), rows [N, 2N) views 1 in the same order, so row
 * i pairs with row i +- N as in ntxent_forward_backward. This rank's rows
 * are [off, off + n) and [N + off, N + off + n).
 *
 * *loss and *acc are those of ntxent_forward_backward on z_all, the same on
 * every rank. dz (2n, D) is d loss / d z for this rank's rows (views 0 then
 * views 1: the order of the model's local batch), counting every place a
 * row appears (anchor, positive, negative); backpropagating it and summing
 * the parameter gradients over the ranks gives the gradient of the one
 * global loss.
 *
 * Each rank computes only its 2n rows of the similarity matrix (2n x 2N,
 * not 2N x 2N). With lse_i the log-sum-exp of row i, G = d loss / d S =
 * (softmax - onehot) / 2N, and du_i = sum_j (G_ij + G_ji) u_j / t, where by
 * symmetry G_ji = (exp(s_ij - lse_j) - [j = p(i)]) / 2N: the other rows'
 * lse_j are all a rank needs from the others. They travel in one
 * all-reduce of 2N + 2 doubles (each rank fills its own rows and adds its
 * loss sum and top-1 hits at the end; tag DIST_EMBED).
 *
 * work holds ntxent_dist_work_floats(n, N, D) floats, 8-byte aligned. */
#ifndef SSL_NTXENT_DIST_H
#define SSL_NTXENT_DIST_H

#include <stddef.h>

#include "dist/dist.h"

size_t ntxent_dist_work_floats(int n, int N, int D);
/* 0, or -1 (nothing written) when N < 1, n < 1, off + n > N, D < 1 or
 * t <= 0. dz NULL: the loss alone (the all-reduce still happens). */
int    ntxent_dist_forward_backward(Dist *d, float *loss, float *acc, float *dz, float *work, const float *z_all,
                                    int N, int off, int n, int D, float temperature);

#endif
