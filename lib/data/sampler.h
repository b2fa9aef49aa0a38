/* sampler: which samples each epoch emits, and in which order.
 *
 * Selection happens once: an optional stratified label subset (lib/data/subset,
 * so ssl-probe selects the same images for the same seed and spec) or its
 * complement, then an optional limit that keeps the first N selected samples
 * in id order.
 *
 * Each epoch e then takes the selection in id order, or with shuffle a
 * permutation drawn from rng_for(seed, e, RNG_DOMAIN_SHUFFLE, 0), and
 * shard I of N keeps positions I, I+N, I+2N, ... of that epoch's order
 * (as PyTorch's DistributedSampler does). Every shard computes the same
 * permutation, so per epoch the shards are disjoint and their union is the
 * whole selection; shard sizes differ by at most one. An epoch depends only
 * on (seed, e), which is what lets --start-epoch resume exactly. */
#ifndef SSL_SAMPLER_H
#define SSL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int64_t   n;        /* selected samples */
	int64_t  *ids;      /* their indices, increasing */
	int64_t  *perm;     /* scratch for one epoch's order */
	int       shuffle;
	uint64_t  seed;
	int64_t   shard, nshards;
} Sampler;

typedef struct {
	double   label_frac;       /* > 0: keep round(frac * n_c) per class (at least 1) */
	int64_t  label_per_class;  /* > 0: keep this many per class */
	int      label_rest;       /* keep what the label subset leaves out instead
	                              (its other labelled and all unlabelled samples) */
	int64_t  limit;            /* > 0: keep the first `limit` selected */
	int      shuffle;
	uint64_t seed;
	int64_t  shard, nshards;   /* shard in [0, nshards); nshards >= 1 */
} SamplerOptions;

/* labels[i] is sample i's class in [0, nclasses), or -1. -1 with a message
 * when a label subset is asked of unlabelled data or nothing is selected. */
int sampler_init(Sampler *s, const SamplerOptions *o, const int64_t *labels, int64_t n, int nclasses, char *err,
                 size_t errlen);
int64_t sampler_epoch_size(const Sampler *s);
/* Epoch e's sample indices, in order; valid until the next call. */
const int64_t *sampler_epoch(Sampler *s, int64_t epoch);
void sampler_free(Sampler *s);

#endif
