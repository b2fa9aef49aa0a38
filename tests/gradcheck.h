/* gradcheck: finite-difference checks of analytic gradients, shared by the
 * Check suites (ggml's eval_grad idea).
 *
 * The test provides a loss L(values) computed in double from the float
 * kernels' outputs, usually L = sum(out * r) for a fixed random r, and the
 * analytic dL/dx that the backward kernels produced for that r. gradcheck
 * perturbs x[j] by +-eps (the float steps actually taken are used),
 * evaluates L twice and compares the central difference with grad[j].
 * Points where a piecewise-linear layer switches branch between the two
 * evaluations (a ReLU kink, a max-pool tie) are skipped: `kink` returns a
 * signature of the branches (e.g. a hash of the ReLU mask); NULL: none. */
#ifndef SSL_TEST_GRADCHECK_H
#define SSL_TEST_GRADCHECK_H

#include <stddef.h>
#include <stdint.h>

typedef double   (*GcLoss)(void *ctx);
typedef uint64_t (*GcKink)(void *ctx);

typedef struct {
	double max_err;   /* max |fd - analytic| / scale, scale = max(max |analytic|, floor) */
	size_t worst;     /* index of the worst point */
	int    checked, skipped;
} GcResult;

/* Checks up to max_points indices of x[0..len) spread evenly (all if len
 * is small). x is restored afterwards. */
GcResult gradcheck(GcLoss loss, GcKink kink, void *ctx, float *x, const float *grad, size_t len,
                   double eps, int max_points, double floor);

/* sum(out[i] * r[i]) in double. */
double gc_dot(const float *out, const float *r, size_t n);
/* FNV-1a of the sign pattern (v > 0) of v[0..n): a ReLU-mask signature. */
uint64_t gc_mask_hash(uint64_t h, const float *v, size_t n);
/* Fills with N(0, 1) * scale from rng_for(seed, 0, id, 0). */
void gc_fill_normal(float *x, size_t n, uint64_t seed, uint64_t id, float scale);
/* n zeroed floats (at least one), and a copy of src[0..n), for kernel tests; free() them. */
float *gc_floats(size_t n);
float *gc_floats_dup(const float *src, size_t n);

/* The same without a branch signature, for whole networks: a point is
 * skipped when the one-sided slopes (L(x+e) - L(x)) / e and (L(x) -
 * L(x-e)) / e differ by more than kink_tol * scale, i.e. a kink lies within
 * the step. */
GcResult gradcheck_auto(GcLoss loss, void *ctx, float *x, const float *grad, size_t len,
                        double eps, int max_points, double floor, double kink_tol);

#endif
