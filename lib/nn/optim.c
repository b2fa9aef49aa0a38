/* optim: see optim.h. Updates are flat loops per tensor (llm.c gpt2_update). */
#include "nn/optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"

struct Optim {
	OptimConfig cfg;
	ParamTable *params;
	ParamTable  state;
	int        *slot;  /* params entry -> first state entry, -1 for buffers */
	int64_t     step;
};

void
optim_config_default(OptimConfig *c, OptimKind kind)
{
	*c = (OptimConfig){ .kind = kind, .momentum = 0.9f, .nesterov = 0, .trust_coef = 0.001f,
		            .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .decay_all = 1 };
	c->weight_decay = kind == OPTIM_LARS ? 1e-6f : kind == OPTIM_SGD ? 5e-4f : 1e-2f;
}

int
optim_config_check(const OptimConfig *c, char *err, size_t errlen)
{
	if (c->kind != OPTIM_SGD && c->kind != OPTIM_LARS && c->kind != OPTIM_ADAMW) {
		snprintf(err, errlen, "unknown optimizer");
		return -1;
	}
	if (!(c->momentum >= 0.0f && c->momentum < 1.0f)) {
		snprintf(err, errlen, "momentum %g not in [0, 1)", c->momentum);
		return -1;
	}
	if (!(c->weight_decay >= 0.0f && c->weight_decay < 1.0f)) {
		snprintf(err, errlen, "weight decay %g not in [0, 1)", c->weight_decay);
		return -1;
	}
	if (!(c->trust_coef > 0.0f && c->trust_coef <= 1.0f)) {
		snprintf(err, errlen, "trust coefficient %g not in (0, 1]", c->trust_coef);
		return -1;
	}
	if (!(c->beta1 >= 0.0f && c->beta1 < 1.0f) || !(c->beta2 >= 0.0f && c->beta2 < 1.0f) ||
	    !(c->eps > 0.0f)) {
		snprintf(err, errlen, "AdamW betas must be in [0, 1) and eps > 0");
		return -1;
	}
	if (c->nesterov && c->momentum == 0.0f) {
		snprintf(err, errlen, "Nesterov momentum needs momentum > 0");
		return -1;
	}
	return 0;
}

int
optim_kind_parse(const char *s, OptimKind *out)
{
	if (strcmp(s, "sgd") == 0)
		*out = OPTIM_SGD;
	else if (strcmp(s, "lars") == 0)
		*out = OPTIM_LARS;
	else if (strcmp(s, "adamw") == 0)
		*out = OPTIM_ADAMW;
	else
		return -1;
	return 0;
}

const char *
optim_kind_name(OptimKind k)
{
	return k == OPTIM_SGD ? "sgd" : k == OPTIM_LARS ? "lars" : "adamw";
}

Optim *
optim_new(const OptimConfig *c, ParamTable *params)
{
	ASSERT(params->grads);
	Optim *o = xcalloc(1, sizeof *o);
	o->cfg = *c;
	o->params = params;
	o->slot = xcalloc((size_t)params->n ? (size_t)params->n : 1, sizeof(int));
	params_init(&o->state);
	const char *suffix[2] = { ".momentum_buffer", NULL };
	if (c->kind == OPTIM_ADAMW) {
		suffix[0] = ".exp_avg";
		suffix[1] = ".exp_avg_sq";
	}
	for (int i = 0; i < params->n; i++) {
		const ParamEntry *e = &params->e[i];
		o->slot[i] = -1;
		if (!params_trainable(e))
			continue;
		for (int k = 0; k < 2 && suffix[k]; k++) {
			char name[2 * TENSOR_MAX_NAME], err[256];
			snprintf(name, sizeof name, "%s%s", e->name, suffix[k]);
			int idx = params_add(&o->state, name, PARAM_BUFFER, DTYPE_F32, e->ndim, e->shape,
			                     err, sizeof err);
			if (idx < 0)
				die("optimizer state: %s", err);
			if (k == 0)
				o->slot[i] = idx;
		}
	}
	params_alloc(&o->state, 0);
	return o;
}

void
optim_free(Optim *o)
{
	if (!o)
		return;
	params_free(&o->state);
	free(o->slot);
	free(o);
}

ParamTable *
optim_state(Optim *o)
{
	return &o->state;
}

int64_t
optim_get_step(const Optim *o)
{
	return o->step;
}

void
optim_set_step(Optim *o, int64_t step)
{
	o->step = step;
}

static double
norm2(const float *x, int64_t n)
{
	double s = 0;
#pragma omp simd reduction(+ : s)
	for (int64_t j = 0; j < n; j++)
		s += (double)x[j] * x[j];
	return sqrt(s);
}

static void
sgd_update(float *p, const float *grad, float *buf, int64_t n, float lr, float wd, float mom, int nesterov)
{
	for (int64_t j = 0; j < n; j++) {
		float g = grad[j] + wd * p[j];
		float b = mom * buf[j] + g;
		buf[j] = b;
		p[j] -= lr * (nesterov ? g + mom * b : b);
	}
}

static void
lars_update(float *p, const float *grad, float *buf, int64_t n, float lr, float wd, float mom,
            int nesterov, float trust, int decayed)
{
	float lr_t = lr;
	if (decayed) {
		double pn = norm2(p, n), gn = 0;
		/* |grad + wd p| without a temporary */
		for (int64_t j = 0; j < n; j++) {
			double g = (double)grad[j] + (double)wd * p[j];
			gn += g * g;
		}
		gn = sqrt(gn);
		if (pn > 0 && gn > 0)
			lr_t = (float)(lr * trust * pn / gn);
	} else {
		wd = 0.0f;
	}
	for (int64_t j = 0; j < n; j++) {
		float g = grad[j] + wd * p[j];
		float b = mom * buf[j] + lr_t * g;
		buf[j] = b;
		p[j] -= nesterov ? mom * b + lr_t * g : b;
	}
}

static void
adamw_update(float *p, const float *grad, float *m, float *v, int64_t n, float lr, float wd,
             const OptimConfig *c, int64_t t)
{
	const float bc1 = (float)(1.0 - pow(c->beta1, (double)t));
	const float bc2 = (float)(1.0 - pow(c->beta2, (double)t));
	const float sbc2 = sqrtf(bc2);
	const float decay = 1.0f - lr * wd;
	for (int64_t j = 0; j < n; j++) {
		float g = grad[j];
		p[j] *= decay;
		m[j] = c->beta1 * m[j] + (1.0f - c->beta1) * g;
		v[j] = c->beta2 * v[j] + (1.0f - c->beta2) * g * g;
		/* PyTorch: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps) */
		p[j] -= (lr / bc1) * m[j] / (sqrtf(v[j]) / sbc2 + c->eps);
	}
}

void
optim_step(Optim *o, float lr)
{
	const OptimConfig *c = &o->cfg;
	ParamTable *t = o->params;
	o->step++;
#pragma omp parallel for schedule(dynamic, 1) if (t->nparams > PAR_MIN)
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (o->slot[i] < 0)
			continue;
		float *s0 = o->state.e[o->slot[i]].data;
		float wd = (c->decay_all || params_decayed(e)) ? c->weight_decay : 0.0f;
		switch (c->kind) {
		case OPTIM_SGD:
			sgd_update(e->data, e->grad, s0, e->numel, lr, wd, c->momentum, c->nesterov);
			break;
		case OPTIM_LARS:
			lars_update(e->data, e->grad, s0, e->numel, lr, c->weight_decay, c->momentum,
			            c->nesterov, c->trust_coef, params_decayed(e));
			break;
		case OPTIM_ADAMW:
			adamw_update(e->data, e->grad, s0, o->state.e[o->slot[i] + 1].data, e->numel, lr, wd,
			             c, o->step);
			break;
		}
	}
}

double
lr_phase(int64_t step, const LrSchedule *s)
{
	double p;
	if (step <= s->warmup)
		return 0.0;
	if (step >= s->total)
		return 1.0;
	if (s->relaid_at > s->warmup && step >= s->relaid_at)
		p = s->relaid_phase + (1.0 - s->relaid_phase) * (double)(step - s->relaid_at) /
		                          (double)(s->total - s->relaid_at);
	else
		p = (double)(step - s->warmup) / (double)(s->total - s->warmup);
	return p < 1.0 ? p : 1.0;
}

float
lr_at(int64_t step, const LrSchedule *s, float base)
{
	if (step < 0)
		step = 0;
	if (step >= s->total)
		return 0.0f;
	if (step < s->warmup)
		return base * (float)(step + 1) / (float)s->warmup;
	return (float)(base * 0.5 * (1.0 + cos(M_PI * lr_phase(step, s))));
}
