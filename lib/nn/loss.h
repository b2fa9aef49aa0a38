/* loss: cross-entropy and NT-Xent, each one call that returns the mean loss
 * and writes the gradient of that mean (the first gradient of a backward
 * pass, so it overwrites). Inputs are row-major (rows = samples). */
#ifndef SSL_LOSS_H
#define SSL_LOSS_H

#include <stddef.h>
#include <stdint.h>

/* NT-Xent (SimCLR). z is (2N, D): rows i and i+N are the two views of
 * sample i. With u_i = z_i / max(|z_i|, 1e-12) and s_ij = u_i.u_j / t,
 *   loss = 1/(2N) sum_i [ log sum_{j != i} exp(s_ij) - s_{i,p(i)} ],
 * p(i) = i +- N. The self-similarity s_ii is masked out (excluded from the
 * sum, as PyTorch's fill_diagonal_(-inf)), not subtracted, and the
 * log-sum-exp is taken around the row maximum.
 * *acc = fraction of rows whose most similar other row is the positive.
 * dz (2N, D) = d loss / dz, overwritten; NULL: forward only.
 * work holds ntxent_work_floats(N, D) floats. Returns 0, or -1 if N < 1,
 * D < 1 or t <= 0 (nothing written). */
size_t ntxent_work_floats(int N, int D);
int    ntxent_forward_backward(float *loss, float *acc, float *dz, float *work,
                               const float *z, int N, int D, float temperature);
/* Naive twin: the loss alone, in double. */
double ntxent_loss_ref(const float *z, int N, int D, float temperature);
/* One row of the masked similarity matrix: s (M) = row i of S/t. Returns
 * log sum_{j != i} exp(s_j), taken around the row maximum, and sets *best to
 * the most similar other row. Shared by the one-process and the distributed
 * NT-Xent (lib/dist/ntxent_dist.c). */
double ntxent_row_lse(const float *s, int M, int i, int *best);

/* Cross-entropy of logits (n, K) against labels in [0, K); rows with a
 * negative label are ignored (PyTorch ignore_index). loss = mean over the
 * counted rows, *acc = top-1 accuracy over them; dlogits (n, K) overwritten
 * (zero on ignored rows), NULL: forward only. Returns the number of
 * counted rows, or -1 if a label is >= K. */
int    cross_entropy_forward_backward(float *loss, float *acc, float *dlogits,
                                      const float *logits, const int32_t *labels, int n, int K);
double cross_entropy_loss_ref(const float *logits, const int32_t *labels, int n, int K);

#endif
