/* subset: see subset.h. */
#include "data/subset.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"
#include "base/util.h"

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

int64_t
subset_stratified(const int64_t *labels, int64_t n, int nclasses, double frac, int64_t per_class,
                  uint64_t seed, int64_t *out)
{
	int64_t *items = xcalloc((size_t)(n ? n : 1), sizeof *items);
	int64_t total = 0;
	for (int c = 0; c < nclasses; c++) {
		int64_t nc = 0, k;
		Rng r;
		for (int64_t i = 0; i < n; i++)
			if (labels[i] == c)
				items[nc++] = i;
		if (nc == 0)
			continue;
		if (per_class > 0)
			k = per_class;
		else
			k = (int64_t)llround(frac * (double)nc);
		if (k < 1)
			k = 1;
		if (k > nc)
			k = nc;
		r = rng_for(seed, 0, RNG_DOMAIN_LABELS, (uint64_t)c);
		rng_shuffle_i64(&r, items, nc);
		memcpy(out + total, items, (size_t)k * sizeof *items);
		total += k;
	}
	qsort(out, (size_t)total, sizeof *out, cmp_i64);
	free(items);
	return total;
}
