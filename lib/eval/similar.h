/* similar: nearest neighbours by cosine similarity, and near-duplicate
 * pairs, over embeddings held in memory (ssl-similar(1)).
 *
 * Both work a chunk of queries at a time: one matrix product (lib/nn/gemm.h)
 * of the chunk against a chunk of the bank gives a block of dot products,
 * which are scaled by the two rows' inverse norms into cosines and then
 * scanned: kept in a partial top-k per query (a heap of k, O(log k) per
 * candidate that beats the worst kept), or compared with the threshold.
 * Memory is the block (qchunk x bchunk floats) and the results; never an
 * N x N matrix. No loop over pairs outside the scan of each block.
 *
 * Ties: equal cosines go to the lower bank index, so results do not depend
 * on chunk sizes or threads. A zero row has cosine 0 with everything.
 * Ids, where given, let a collection be searched against itself: a bank row
 * whose id equals the query's id is never its neighbour, and a pair of rows
 * with the same id is never a near-duplicate. */
#ifndef SSL_SIMILAR_H
#define SSL_SIMILAR_H

#include <stddef.h>
#include <stdint.h>

#define SIMILAR_QCHUNK 1024  /* queries per matrix product */
#define SIMILAR_BCHUNK 4096  /* bank rows per matrix product */

typedef struct {
	int64_t qchunk, bchunk;   /* 0: the defaults above */
	/* called after each chunk of queries (NULL: nothing) */
	void  (*progress)(void *ctx, int64_t done, int64_t total);
	void   *ctx;
} SimilarOpts;

/* inv (n): 1/||x_i|| for each row of x (n, D); 0 for a zero row. */
void similar_inv_norms(float *inv, const float *x, int64_t n, int D);

/* For each query q of Q (nq, D), the k most similar rows of bank (n, D),
 * best first: idx (nq, k) bank row indices, score (nq, k) cosines, found
 * (nq) how many (fewer than k when the bank has fewer rows to offer; the
 * rest of the row is idx -1, score 0). qinv, binv from similar_inv_norms.
 * qids, bids (may both be NULL): skip bank rows of the query's id. k >= 1;
 * n may be 0. */
void similar_topk(int64_t *idx, float *score, int *found, const float *Q, const float *qinv, const int64_t *qids,
                  int64_t nq, const float *bank, const float *binv, const int64_t *bids, int64_t n, int D, int k,
                  const SimilarOpts *o);
/* The naive twin: every cosine in double precision, then a sort. The oracle
 * for tests. */
void similar_topk_ref(int64_t *idx, double *score, int *found, const float *Q, const int64_t *qids, int64_t nq,
                      const float *bank, const int64_t *bids, int64_t n, int D, int k);

typedef struct {
	int64_t a, b;   /* row indices, a < b */
	float   score;  /* cosine */
} SimilarPair;

/* Calls emit with the pairs (a < b) of rows of X (n, D) whose cosine is at
 * least threshold, in (a, b) order, a batch per chunk of rows a; ids (may
 * be NULL) leave out pairs of equal ids. emit returns 0, or -1 to stop
 * (then so does this). Returns the number of pairs emitted, or -1. */
int64_t similar_pairs(const float *X, const float *inv, const int64_t *ids, int64_t n, int D, float threshold,
                      const SimilarOpts *o, int (*emit)(void *ctx, const SimilarPair *p, size_t np), void *ctx);
/* The naive twin, in double precision: the pairs into a malloc'd array
 * (*pairs, free it), in (a, b) order; returns their number. */
int64_t similar_pairs_ref(SimilarPair **pairs, const float *X, const int64_t *ids, int64_t n, int D,
                          double threshold);

#endif
