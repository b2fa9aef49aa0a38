/* subset: stratified, seeded label subsets for the few-label protocols
 * (ssl-decode --labels, ssl-probe --labels). One definition so that the same
 * seed and spec select the same images in every tool. */
#ifndef SSL_SUBSET_H
#define SSL_SUBSET_H

#include <stdint.h>

/* For each class c with n_c items (labels[i] == c), keeps the first k_c items
 * of a permutation seeded by (seed, c): k_c = per_class when per_class > 0,
 * else round(frac * n_c) but at least 1 (when n_c > 0); k_c <= n_c.
 * Items with a label outside [0, nclasses) are never selected.
 * Writes the selected indices in increasing order to out (room for n) and
 * returns how many. */
int64_t subset_stratified(const int64_t *labels, int64_t n, int nclasses, double frac, int64_t per_class,
                          uint64_t seed, int64_t *out);

#endif
