/* similar: see similar.h. */
#include "eval/similar.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "nn/gemm.h"


void
similar_inv_norms(float *inv, const float *x, int64_t n, int D)
{
	for (int64_t i = 0; i < n; i++) {
		const float *r = x + (size_t)i * (size_t)D;
		double s = 0;
		for (int j = 0; j < D; j++)
			s += (double)r[j] * r[j];
		inv[i] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
	}
}

#define SCAN_BLOCK 64 /* similarities looked at together before any is taken */

static void
chunks(const SimilarOpts *o, int64_t *qc, int64_t *bc)
{
	*qc = o && o->qchunk > 0 ? o->qchunk : SIMILAR_QCHUNK;
	*bc = o && o->bchunk > 0 ? o->bchunk : SIMILAR_BCHUNK;
}

/* ------------------------------------------------------------- top-k */

/* (sa, ia) ranks before (sb, ib): more similar, or as similar and a lower index */
static int
ahead(float sa, int64_t ia, float sb, int64_t ib)
{
	return sa > sb || (sa == sb && ia < ib);
}

static void
swap(float *s, int64_t *ix, int a, int b)
{
	float ts = s[a];
	int64_t ti = ix[a];
	s[a] = s[b];
	ix[a] = ix[b];
	s[b] = ts;
	ix[b] = ti;
}

/* A heap of at most k entries whose root is the one ranked last. */
static void
heap_down(float *s, int64_t *ix, int m, int at)
{
	for (;;) {
		int c = 2 * at + 1, last = at;
		if (c < m && ahead(s[last], ix[last], s[c], ix[c]))
			last = c;
		if (c + 1 < m && ahead(s[last], ix[last], s[c + 1], ix[c + 1]))
			last = c + 1;
		if (last == at)
			return;
		swap(s, ix, at, last);
		at = last;
	}
}

static void
heap_push(float *s, int64_t *ix, int *m, int k, float v, int64_t j)
{
	int at;
	if (*m == k) {
		if (!ahead(v, j, s[0], ix[0]))
			return;
		s[0] = v;
		ix[0] = j;
		heap_down(s, ix, k, 0);
		return;
	}
	at = (*m)++;
	s[at] = v;
	ix[at] = j;
	while (at > 0) {
		int p = (at - 1) / 2;
		if (!ahead(s[p], ix[p], s[at], ix[at]))
			break;
		swap(s, ix, at, p);
		at = p;
	}
}

/* The heap's m entries in rank order, best first (heap sort). */
static void
heap_sort(float *s, int64_t *ix, int m)
{
	for (int end = m - 1; end > 0; end--) {
		swap(s, ix, 0, end);
		heap_down(s, ix, end, 0);
	}
}

void
similar_topk(int64_t *idx, float *score, int *found, const float *Q, const float *qinv, const int64_t *qids,
             int64_t nq, const float *bank, const float *binv, const int64_t *bids, int64_t n, int D, int k,
             const SimilarOpts *o)
{
	int64_t QC, BC;
	float *S;
	chunks(o, &QC, &BC);
	ASSERT(k >= 1 && D >= 1);
	S = xcalloc((size_t)QC * (size_t)BC, sizeof *S);
	for (int64_t i = 0; i < nq; i++) {
		found[i] = 0;
		for (int j = 0; j < k; j++) {
			idx[(size_t)i * (size_t)k + (size_t)j] = -1;
			score[(size_t)i * (size_t)k + (size_t)j] = 0;
		}
	}
	for (int64_t q0 = 0; q0 < nq; q0 += QC) {
		int qb = (int)(nq - q0 < QC ? nq - q0 : QC);
		for (int64_t b0 = 0; b0 < n; b0 += BC) {
			int nb = (int)(n - b0 < BC ? n - b0 : BC);
			gemm(0, 1, qb, nb, D, 1.0f, Q + (size_t)q0 * (size_t)D, D, bank + (size_t)b0 * (size_t)D, D, 0.0f, S,
			     nb);
#pragma omp parallel for schedule(static)
			for (int q = 0; q < qb; q++) {
				int64_t i = q0 + q;
				float *hs = score + (size_t)i * (size_t)k;
				int64_t *hi = idx + (size_t)i * (size_t)k;
				const float *row = S + (size_t)q * (size_t)nb;
				const float *bi = binv + b0;
				float qi = qinv[i];
				for (int j0 = 0; j0 < nb; j0 += SCAN_BLOCK) {
					int end = nb - j0 < SCAN_BLOCK ? nb : j0 + SCAN_BLOCK;
					if (found[i] == k) {
						/* bank rows come in index order, so a full heap takes only a
						 * strictly better cosine: skip blocks without one at once */
						float worst = hs[0];
						int hit = 0;
#pragma omp simd reduction(| : hit)
						for (int j = j0; j < end; j++)
							hit |= row[j] * qi * bi[j] > worst;
						if (!hit)
							continue;
					}
					for (int j = j0; j < end; j++) {
						int64_t b = b0 + j;
						float v = row[j] * qi * bi[j];
						if (found[i] == k && !ahead(v, b, hs[0], hi[0]))
							continue;
						if (qids && bids && qids[i] == bids[b])
							continue;
						heap_push(hs, hi, &found[i], k, v, b);
					}
				}
			}
		}
		for (int q = 0; q < qb; q++)
			heap_sort(score + (size_t)(q0 + q) * (size_t)k, idx + (size_t)(q0 + q) * (size_t)k, found[q0 + q]);
		if (o && o->progress)
			o->progress(o->ctx, q0 + qb, nq);
	}
	free(S);
}

static double
cos_ref(const float *a, const float *b, int D)
{
	double ab = 0, aa = 0, bb = 0;
	for (int j = 0; j < D; j++) {
		ab += (double)a[j] * b[j];
		aa += (double)a[j] * a[j];
		bb += (double)b[j] * b[j];
	}
	return aa > 0 && bb > 0 ? ab / (sqrt(aa) * sqrt(bb)) : 0.0;
}

typedef struct {
	double  s;
	int64_t i;
} RefHit;

static int
cmp_hit(const void *pa, const void *pb)
{
	const RefHit *a = pa, *b = pb;
	if (a->s != b->s)
		return a->s > b->s ? -1 : 1;
	return a->i < b->i ? -1 : a->i > b->i;
}

void
similar_topk_ref(int64_t *idx, double *score, int *found, const float *Q, const int64_t *qids, int64_t nq,
                 const float *bank, const int64_t *bids, int64_t n, int D, int k)
{
	RefHit *h = xcalloc(n ? (size_t)n : 1, sizeof *h);
	for (int64_t i = 0; i < nq; i++) {
		int64_t m = 0;
		for (int64_t b = 0; b < n; b++)
			if (!(qids && bids && qids[i] == bids[b]))
				h[m++] = (RefHit){ cos_ref(Q + (size_t)i * (size_t)D, bank + (size_t)b * (size_t)D, D), b };
		qsort(h, (size_t)m, sizeof *h, cmp_hit);
		found[i] = (int)(m < k ? m : k);
		for (int j = 0; j < k; j++) {
			idx[(size_t)i * (size_t)k + (size_t)j] = j < found[i] ? h[j].i : -1;
			score[(size_t)i * (size_t)k + (size_t)j] = j < found[i] ? h[j].s : 0;
		}
	}
	free(h);
}

/* ------------------------------------------------------ near-duplicates */

typedef struct {
	SimilarPair *p;
	size_t       n, cap;
} PairBuf;

static void
pairbuf_add(PairBuf *b, int64_t a, int64_t c, float s)
{
	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 256;
		b->p = xreallocarray(b->p, b->cap, sizeof *b->p);
	}
	b->p[b->n++] = (SimilarPair){ a, c, s };
}

int64_t
similar_pairs(const float *X, const float *inv, const int64_t *ids, int64_t n, int D, float threshold,
              const SimilarOpts *o, int (*emit)(void *ctx, const SimilarPair *p, size_t np), void *ctx)
{
	int64_t QC, BC, total = 0;
	float *S;
	PairBuf *row, all = { 0 };
	chunks(o, &QC, &BC);
	S = xcalloc((size_t)QC * (size_t)BC, sizeof *S);
	row = xcalloc((size_t)QC, sizeof *row); /* the pairs of each row of a chunk: (a, b) order as they come */
	for (int64_t a0 = 0; a0 < n; a0 += QC) {
		int qb = (int)(n - a0 < QC ? n - a0 : QC);
		/* only columns b > a: from the chunk's first row on */
		for (int64_t b0 = a0 + 1; b0 < n; b0 += BC) {
			int nb = (int)(n - b0 < BC ? n - b0 : BC);
			gemm(0, 1, qb, nb, D, 1.0f, X + (size_t)a0 * (size_t)D, D, X + (size_t)b0 * (size_t)D, D, 0.0f, S, nb);
#pragma omp parallel for schedule(static)
			for (int q = 0; q < qb; q++) {
				int64_t a = a0 + q;
				const float *s = S + (size_t)q * (size_t)nb;
				const float *bi = inv + b0;
				float ai = inv[a];
				for (int j0 = a < b0 ? 0 : (int)(a - b0 + 1); j0 < nb; j0 += SCAN_BLOCK) {
					int end = nb - j0 < SCAN_BLOCK ? nb : j0 + SCAN_BLOCK, hit = 0;
					/* pairs are rare: a branch-free look at the block first */
#pragma omp simd reduction(| : hit)
					for (int j = j0; j < end; j++)
						hit |= s[j] * ai * bi[j] >= threshold;
					if (!hit)
						continue;
					for (int j = j0; j < end; j++) {
						float v = s[j] * ai * bi[j];
						if (v >= threshold && !(ids && ids[a] == ids[b0 + j]))
							pairbuf_add(&row[q], a, b0 + j, v);
					}
				}
			}
		}
		all.n = 0;
		for (int q = 0; q < qb; q++) {
			for (size_t i = 0; i < row[q].n; i++)
				pairbuf_add(&all, row[q].p[i].a, row[q].p[i].b, row[q].p[i].score);
			row[q].n = 0;
		}
		if (all.n && emit(ctx, all.p, all.n) < 0) {
			total = -1;
			break;
		}
		total += (int64_t)all.n;
		if (o && o->progress)
			o->progress(o->ctx, a0 + qb, n);
	}
	for (int64_t q = 0; q < QC; q++)
		free(row[q].p);
	free(row);
	free(all.p);
	free(S);
	return total;
}

int64_t
similar_pairs_ref(SimilarPair **pairs, const float *X, const int64_t *ids, int64_t n, int D, double threshold)
{
	PairBuf b = { 0 };
	for (int64_t a = 0; a < n; a++)
		for (int64_t c = a + 1; c < n; c++) {
			double s = cos_ref(X + (size_t)a * (size_t)D, X + (size_t)c * (size_t)D, D);
			if (s >= threshold && !(ids && ids[a] == ids[c]))
				pairbuf_add(&b, a, c, (float)s);
		}
	*pairs = b.p;
	return (int64_t)b.n;
}
