/* sampler: see sampler.h. */
#include "data/sampler.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "data/subset.h"
#include "base/util.h"

int
sampler_init(Sampler *s, const SamplerOptions *o, const int64_t *labels, int64_t n, int nclasses, char *err,
             size_t errlen)
{
	memset(s, 0, sizeof *s);
	ASSERT(o->nshards >= 1 && o->shard >= 0 && o->shard < o->nshards);
	s->shuffle = o->shuffle;
	s->seed = o->seed;
	s->shard = o->shard;
	s->nshards = o->nshards;
	s->ids = xcalloc((size_t)(n ? n : 1), sizeof *s->ids);
	if (o->label_frac > 0 || o->label_per_class > 0) {
		int64_t labelled = 0;
		for (int64_t i = 0; i < n; i++)
			labelled += labels[i] >= 0 && labels[i] < nclasses;
		if (!labelled) {
			snprintf(err, errlen, "--labels needs labelled images, and these have no labels");
			sampler_free(s);
			return -1;
		}
		s->n = subset_stratified(labels, n, nclasses, o->label_frac, o->label_per_class, o->seed, s->ids);
		if (o->label_rest) {   /* the complement, in id order */
			uint8_t *in = xcalloc((size_t)(n ? n : 1), 1);
			for (int64_t j = 0; j < s->n; j++)
				in[s->ids[j]] = 1;
			s->n = 0;
			for (int64_t i = 0; i < n; i++)
				if (!in[i])
					s->ids[s->n++] = i;
			free(in);
		}
	} else {
		for (int64_t i = 0; i < n; i++)
			s->ids[i] = i;
		s->n = n;
	}
	if (o->limit > 0 && o->limit < s->n)
		s->n = o->limit;
	if (s->n == 0) {
		snprintf(err, errlen, "no images selected");
		sampler_free(s);
		return -1;
	}
	s->perm = xcalloc((size_t)s->n, sizeof *s->perm);
	return 0;
}

int64_t
sampler_epoch_size(const Sampler *s)
{
	return s->shard < s->n ? (s->n - s->shard + s->nshards - 1) / s->nshards : 0;
}

const int64_t *
sampler_epoch(Sampler *s, int64_t epoch)
{
	int64_t k = 0;
	memcpy(s->perm, s->ids, (size_t)s->n * sizeof *s->perm);
	if (s->shuffle) {
		Rng r = rng_for(s->seed, (uint64_t)epoch, RNG_DOMAIN_SHUFFLE, 0);
		rng_shuffle_i64(&r, s->perm, s->n);
	}
	/* in place: position shard + j*nshards moves to j, never ahead of itself */
	for (int64_t j = s->shard; j < s->n; j += s->nshards)
		s->perm[k++] = s->perm[j];
	return s->perm;
}

void
sampler_free(Sampler *s)
{
	free(s->ids);
	free(s->perm);
	memset(s, 0, sizeof *s);
}
