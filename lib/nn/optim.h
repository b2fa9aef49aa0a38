/* optim: LARS, SGD (momentum, Nesterov) and AdamW over a ParamTable, and
 * the learning-rate schedule.
 *
 * The optimizer's state (momentum buffers, Adam moments) lives in its own
 * arena, described by a second ParamTable so checkpoints save it by name:
 * "<param>.momentum_buffer" (SGD, LARS), "<param>.exp_avg" and
 * "<param>.exp_avg_sq" (AdamW). Gradients are true dL/dtheta.
 *
 * SGD (PyTorch torch.optim.SGD, dampening 0):
 *   g = grad + wd * p;  buf = momentum * buf + g;
 *   p -= lr * (nesterov ? g + momentum * buf : buf)
 * LARS (SimCLR's): for PARAM_WEIGHT tensors g = grad + wd * p and
 *   lr_t = lr * trust * |p| / |g| (1 when either norm is 0); BN and bias
 *   tensors use g = grad and lr_t = lr. Then
 *   buf = momentum * buf + lr_t * g;
 *   p -= nesterov ? momentum * buf + lr_t * g : buf
 * AdamW (PyTorch): p *= 1 - lr * wd; m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *   p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
 * SGD and AdamW decay every trainable tensor when decay_all (PyTorch's
 * default), else PARAM_WEIGHT tensors only. */
#ifndef SSL_OPTIM_H
#define SSL_OPTIM_H

#include <stdint.h>

#include "nn/params.h"

typedef enum { OPTIM_SGD, OPTIM_LARS, OPTIM_ADAMW } OptimKind;

typedef struct {
	OptimKind kind;
	float momentum;      /* SGD, LARS; default 0.9 */
	int   nesterov;      /* SGD, LARS; default 0 */
	float weight_decay;  /* default 1e-6 (LARS), 5e-4 (SGD), 1e-2 (AdamW) */
	float trust_coef;    /* LARS eta; default 0.001 */
	float beta1, beta2;  /* AdamW; default 0.9, 0.999 */
	float eps;           /* AdamW; default 1e-8 */
	int   decay_all;     /* SGD, AdamW; default 1 */
} OptimConfig;

typedef struct Optim Optim;

void  optim_config_default(OptimConfig *c, OptimKind kind);
/* -1 with a message for an out-of-range hyper-parameter. */
int   optim_config_check(const OptimConfig *c, char *err, size_t errlen);
int   optim_kind_parse(const char *s, OptimKind *out); /* "sgd" "lars" "adamw"; -1 if unknown */
const char *optim_kind_name(OptimKind k);

/* The table must have gradients and outlive the optimizer. State is zero. */
Optim *optim_new(const OptimConfig *c, ParamTable *params);
void   optim_free(Optim *o);
/* One update from the gradients in the table; allocates nothing. */
void   optim_step(Optim *o, float lr);
/* Named state tensors (read/write, for checkpoints). */
ParamTable *optim_state(Optim *o);
int64_t optim_get_step(const Optim *o);          /* updates done (AdamW bias correction) */
void    optim_set_step(Optim *o, int64_t step);  /* after loading a checkpoint */

/* The learning-rate schedule: linear warm-up, base * (step + 1) / warmup
 * for steps [0, warmup), then cosine decay to 0 at step total, base * 0.5 *
 * (1 + cos(pi * phase)). Laid once, the phase is (step - warmup) / (total -
 * warmup). A schedule re-laid at step relaid_at (a --budget re-plan that
 * moved total) runs the rest of the cosine from the phase it had reached
 * there over the steps left, relaid_phase + (1 - relaid_phase) * (step -
 * relaid_at) / (total - relaid_at): the rate goes on falling, without a step
 * up or down, whether the end moved out or in. */
typedef struct {
	int64_t total, warmup;
	int64_t relaid_at;    /* <= warmup: laid once */
	double  relaid_phase; /* the cosine's phase (0..1) at relaid_at */
} LrSchedule;

double lr_phase(int64_t step, const LrSchedule *s); /* 0 at the end of warm-up, 1 at total */
float  lr_at(int64_t step, const LrSchedule *s, float base); /* steps >= total give 0 */

#endif
