/* sampler: see sampler.h. */
#include "data/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "data/subset.h"
#include "base/util.h"

/* The selected ids, increasing, into sel; their count, or -1. */
static int64_t
select_ids(const SamplerOptions *o, const SamplerIds *in, int64_t *sel, char *err, size_t errlen)
{
	int64_t n = in->n, k;
	if (o->label_frac > 0 || o->label_per_class > 0) {
		int64_t labelled = 0;
		for (int64_t i = 0; i < n; i++)
			labelled += in->labels[i] >= 0 && in->labels[i] < in->nclasses;
		if (!labelled) {
			snprintf(err, errlen, "--labels needs labelled images, and these have no labels");
			return -1;
		}
		k = subset_stratified(in->labels, n, in->nclasses, o->label_frac, o->label_per_class, o->seed, sel);
		if (o->label_rest) {   /* the complement, in id order */
			uint8_t *inset = xcalloc((size_t)(n ? n : 1), 1);
			for (int64_t j = 0; j < k; j++)
				inset[sel[j]] = 1;
			k = 0;
			for (int64_t i = 0; i < n; i++)
				if (!inset[i])
					sel[k++] = i;
			free(inset);
		}
	} else {
		for (int64_t i = 0; i < n; i++)
			sel[i] = i;
		k = n;
	}
	if (o->limit > 0 && o->limit < k)
		k = o->limit;
	if (k == 0) {
		snprintf(err, errlen, "no images selected");
		return -1;
	}
	return k;
}

int
sampler_init_ids(Sampler *s, const SamplerOptions *o, const SamplerIds *in, char *err, size_t errlen)
{
	int64_t *sel, k, *count;
	memset(s, 0, sizeof *s);
	ASSERT(o->nshards >= 1 && o->shard >= 0 && o->shard < o->nshards && (in->shards || o->nshards == 1));
	s->shuffle = o->shuffle;
	s->seed = o->seed;
	s->shard = o->shard;
	s->nshards = o->nshards;
	sel = xcalloc((size_t)(in->n ? in->n : 1), sizeof *sel);
	if ((k = select_ids(o, in, sel, err, errlen)) < 0) {
		free(sel);
		return -1;
	}
	/* this shard's, held here; M: the most selected ids any shard has */
	count = xcalloc((size_t)o->nshards, sizeof *count);
	for (int64_t j = 0; j < k; j++) {
		int64_t id = sel[j], sh = in->shards ? in->shards[id] : 0, at = in->local ? in->local[id] : id;
		if (++count[sh] > s->size)
			s->size = count[sh];
		if (sh == o->shard && at >= 0)
			sel[s->n++] = at;
	}
	free(count);
	if (s->n == 0) {
		snprintf(err, errlen, "--shard %lld/%lld: none of the %lld selected images is this shard's and decoded",
		         (long long)o->shard, (long long)o->nshards, (long long)k);
		free(sel);
		return -1;
	}
	s->ids = sel;
	s->perm = xcalloc((size_t)s->size, sizeof *s->perm);
	return 0;
}

int
sampler_init(Sampler *s, const SamplerOptions *o, const int64_t *labels, int64_t n, int nclasses, char *err,
             size_t errlen)
{
	SamplerIds in = { n, labels, NULL, NULL, nclasses };
	return sampler_init_ids(s, o, &in, err, errlen);
}

int64_t
sampler_epoch_size(const Sampler *s)
{
	return s->size;
}

const int64_t *
sampler_epoch(Sampler *s, int64_t epoch)
{
	memcpy(s->perm, s->ids, (size_t)s->n * sizeof *s->perm);
	if (s->shuffle) {
		Rng r = rng_for(s->seed, (uint64_t)epoch, RNG_DOMAIN_SHUFFLE, (uint64_t)s->shard);
		rng_shuffle_i64(&r, s->perm, s->n);
	}
	/* a shard with fewer than the most: its first records again */
	for (int64_t j = s->n; j < s->size; j++)
		s->perm[j] = s->perm[(j - s->n) % s->n];
	return s->perm;
}

void
sampler_free(Sampler *s)
{
	free(s->ids);
	free(s->perm);
	memset(s, 0, sizeof *s);
}
