/* rng: see rng.h. */
#include "base/rng.h"

#include <math.h>

static uint64_t
mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

Rng
rng_for(uint64_t seed, uint64_t epoch, uint64_t id, uint64_t view)
{
	/* Chained mixing keeps nearby keys (id, id+1) uncorrelated. */
	uint64_t k = mix64(seed + UINT64_C(0x9e3779b97f4a7c15));
	k = mix64(k ^ (epoch + UINT64_C(0x632be59bd9b4e019)));
	k = mix64(k ^ (id + UINT64_C(0x8cb92ba72f3d8dd7)));
	k = mix64(k ^ (view + UINT64_C(0xd1b54a32d192ed03)));
	return (Rng){ k };
}

uint64_t
rng_u64(Rng *r)
{
	r->state += UINT64_C(0x9e3779b97f4a7c15);
	return mix64(r->state);
}

uint32_t
rng_u32(Rng *r)
{
	return (uint32_t)(rng_u64(r) >> 32);
}

double
rng_uniform(Rng *r)
{
	return (rng_u64(r) >> 11) * 0x1.0p-53;
}

double
rng_uniform_range(Rng *r, double a, double b)
{
	return a + (b - a) * rng_uniform(r);
}

uint64_t
rng_below(Rng *r, uint64_t n)
{
	/* Rejection keeps it unbiased for every n. */
	uint64_t limit = UINT64_MAX - UINT64_MAX % n;
	uint64_t x;
	do
		x = rng_u64(r);
	while (x >= limit);
	return x % n;
}

double
rng_normal(Rng *r)
{
	double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log is finite */
	double u2 = rng_uniform(r);
	return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

void
rng_shuffle_i64(Rng *r, int64_t *perm, int64_t n)
{
	for (int64_t i = n - 1; i > 0; i--) {
		int64_t j = (int64_t)rng_below(r, (uint64_t)i + 1);
		int64_t t = perm[i];
		perm[i] = perm[j];
		perm[j] = t;
	}
}
