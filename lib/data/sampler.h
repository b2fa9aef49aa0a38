/* sampler: which samples each epoch emits, and in which order.
 *
 * The sampler sees ids 0 .. n-1, each with a label, a shard and the
 * sample that holds it in this process (or none: another shard's, or one
 * that failed to decode); without shards the ids are the samples.
 *
 * Selection happens once, over the ids, the same in every shard: an
 * optional stratified label subset (lib/data/subset, so ssl-probe selects
 * the same images for the same seed and spec) or its complement, then an
 * optional limit that keeps the first N selected ids.
 *
 * Shard I of N emits the selected ids of shard I that it holds: each epoch
 * e in id order, or with shuffle in a permutation drawn from
 * rng_for(seed, e, RNG_DOMAIN_SHUFFLE, I). So that ranks take the same
 * number of steps, every shard emits M records per epoch, M the largest
 * number of selected ids in any shard: one with fewer repeats the first
 * records of its epoch's order after its last (as PyTorch's
 * DistributedSampler pads). Per epoch, the shards together emit every
 * selected id that decoded, each once, plus the repeats. Without shards
 * (N = 1) an epoch is the selection, in order or permuted, with no repeat.
 * An epoch depends only on (seed, e), which is what lets --start-epoch
 * resume exactly. */
#ifndef SSL_SAMPLER_H
#define SSL_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
	int64_t   n;        /* ids of this shard to emit */
	int64_t  *ids;      /* the samples that hold them, in id order */
	int64_t   size;     /* records per epoch (M) */
	int64_t  *perm;     /* scratch for one epoch's order (size) */
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

/* The ids: labels[i] is id i's class in [0, nclasses), or -1; shards[i]
 * its shard (NULL: all in shard 0, for nshards 1); local[i] the sample
 * that holds it here, or -1 (NULL: id i is sample i). */
typedef struct {
	int64_t        n;
	const int64_t *labels;
	const int32_t *shards;
	const int64_t *local;
	int            nclasses;
} SamplerIds;

/* -1 with a message when a label subset is asked of unlabelled data,
 * nothing is selected, or this shard holds none of the selection. */
int sampler_init_ids(Sampler *s, const SamplerOptions *o, const SamplerIds *ids, char *err, size_t errlen);
/* The same for n samples without shards (labels[i] of sample i). */
int sampler_init(Sampler *s, const SamplerOptions *o, const int64_t *labels, int64_t n, int nclasses, char *err,
                 size_t errlen);
int64_t sampler_epoch_size(const Sampler *s);
/* Epoch e's samples, in order; valid until the next call. */
const int64_t *sampler_epoch(Sampler *s, int64_t epoch);
void sampler_free(Sampler *s);

#endif
