/* rng: a counter-based random number generator.
 *
 * Every random draw in ssl-tools comes from a stream keyed by
 * (seed, epoch, id, view), so results never depend on thread count, chunking
 * or the order in which records are processed. Within one key the generator
 * is SplitMix64 (Steele et al. 2014): a 64-bit counter passed through a
 * strong mixing function. Use a distinct `view` (or RNG_DOMAIN_* for id)
 * for each independent purpose. */
#ifndef SSL_RNG_H
#define SSL_RNG_H

#include <stdint.h>

typedef struct {
	uint64_t state;
} Rng;

/* Reserved ids for draws that are not about one record. */
#define RNG_DOMAIN_SHUFFLE UINT64_C(0xfffffffffffff001)
#define RNG_DOMAIN_LABELS  UINT64_C(0xfffffffffffff002)
#define RNG_DOMAIN_INIT    UINT64_C(0xfffffffffffff003)
#define RNG_DOMAIN_SPLIT   UINT64_C(0xfffffffffffff004)

Rng      rng_for(uint64_t seed, uint64_t epoch, uint64_t id, uint64_t view);
uint64_t rng_u64(Rng *r);
uint32_t rng_u32(Rng *r);
double   rng_uniform(Rng *r);                    /* [0, 1), 53 bits */
double   rng_uniform_range(Rng *r, double a, double b); /* [a, b) */
uint64_t rng_below(Rng *r, uint64_t n);          /* [0, n), unbiased; n > 0 */
double   rng_normal(Rng *r);                     /* N(0, 1), Box-Muller */
/* Fisher-Yates shuffle of perm[0..n) in place. */
void     rng_shuffle_i64(Rng *r, int64_t *perm, int64_t n);

#endif
