/* params: see params.h. */
#include "nn/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

void
params_init(ParamTable *t)
{
	memset(t, 0, sizeof *t);
}

int
params_add(ParamTable *t, const char *name, ParamRole role, DType dtype,
           int ndim, const int64_t *shape, char *err, size_t errlen)
{
	if (strlen(name) >= TENSOR_MAX_NAME) {
		snprintf(err, errlen, "tensor name too long: %s", name);
		return -1;
	}
	if (ndim < 0 || ndim > PARAM_MAX_DIM || (dtype != DTYPE_F32 && dtype != DTYPE_I64) ||
	    (dtype == DTYPE_I64 && role != PARAM_BUFFER)) {
		snprintf(err, errlen, "%s: unsupported rank or dtype", name);
		return -1;
	}
	if (t->params || t->buffers || t->counters) {
		snprintf(err, errlen, "%s: table already allocated", name);
		return -1;
	}
	int64_t numel = tensor_numel_checked(shape, ndim, INT64_C(1) << 40);
	if (numel < 1) {
		snprintf(err, errlen, "%s: bad shape", name);
		return -1;
	}
	if (params_find(t, name)) {
		snprintf(err, errlen, "duplicate tensor name: %s", name);
		return -1;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 64;
		t->e = xreallocarray(t->e, (size_t)t->cap, sizeof *t->e);
	}
	ParamEntry *e = &t->e[t->n];
	memset(e, 0, sizeof *e);
	strcpy(e->name, name);
	e->role = role;
	e->dtype = dtype;
	e->ndim = ndim;
	for (int d = 0; d < ndim; d++)
		e->shape[d] = shape[d];
	e->numel = numel;
	if (dtype == DTYPE_I64) {
		e->offset = t->ncounters;
		t->ncounters += (size_t)numel;
	} else if (role == PARAM_BUFFER) {
		e->offset = t->nbuffers;
		t->nbuffers += (size_t)numel;
	} else {
		e->offset = t->nparams;
		t->nparams += (size_t)numel;
	}
	return t->n++;
}

static void *
zalloc_floats(size_t n, size_t size)
{
	size_t bytes;
	if (size_mul(n ? n : 1, size, &bytes) != 0)
		die("parameter arena too large");
	void *p = xalloc_aligned(bytes);
	memset(p, 0, bytes);
	return p;
}

void
params_alloc(ParamTable *t, int with_grads)
{
	ASSERT(!t->params && !t->buffers && !t->counters);
	t->params = zalloc_floats(t->nparams, sizeof(float));
	t->buffers = zalloc_floats(t->nbuffers, sizeof(float));
	t->counters = zalloc_floats(t->ncounters, sizeof(int64_t));
	t->with_grads = with_grads;
	t->grads = with_grads ? zalloc_floats(t->nparams, sizeof(float)) : NULL;
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (e->dtype == DTYPE_I64) {
			e->i64 = t->counters + e->offset;
		} else if (e->role == PARAM_BUFFER) {
			e->data = t->buffers + e->offset;
		} else {
			e->data = t->params + e->offset;
			e->grad = t->grads ? t->grads + e->offset : NULL;
		}
	}
}

void
params_free(ParamTable *t)
{
	free(t->e);
	free(t->params);
	free(t->grads);
	free(t->buffers);
	free(t->counters);
	memset(t, 0, sizeof *t);
}

ParamEntry *
params_find(const ParamTable *t, const char *name)
{
	for (int i = 0; i < t->n; i++)
		if (strcmp(t->e[i].name, name) == 0)
			return &t->e[i];
	return NULL;
}

int
params_trainable(const ParamEntry *e)
{
	return e->role != PARAM_BUFFER;
}

int
params_decayed(const ParamEntry *e)
{
	return e->role == PARAM_WEIGHT;
}

const char *
params_role_name(ParamRole r)
{
	switch (r) {
	case PARAM_WEIGHT: return "weight";
	case PARAM_BIAS: return "bias";
	case PARAM_BN_GAMMA: return "bn_gamma";
	case PARAM_BN_BETA: return "bn_beta";
	case PARAM_BUFFER: return "buffer";
	}
	return "?";
}

int64_t
params_count(const ParamTable *t)
{
	return (int64_t)t->nparams;
}

void
params_zero_grad(ParamTable *t)
{
	if (t->grads)
		memset(t->grads, 0, sizeof(float) * t->nparams);
}

Tensor
params_tensor(const ParamEntry *e)
{
	void *p = e->dtype == DTYPE_I64 ? (void *)e->i64 : (void *)e->data;
	return tensor_view(e->name, e->dtype, e->ndim, e->shape, p);
}

int
params_copy(ParamTable *dst, const ParamTable *src, char *err, size_t errlen)
{
	for (int i = 0; i < src->n; i++) {
		const ParamEntry *s = &src->e[i];
		ParamEntry *d = params_find(dst, s->name);
		if (!d) {
			snprintf(err, errlen, "%s: not in the destination", s->name);
			return -1;
		}
		if (d->dtype != s->dtype || d->ndim != s->ndim ||
		    memcmp(d->shape, s->shape, sizeof(int64_t) * (size_t)s->ndim) != 0) {
			snprintf(err, errlen, "%s: shape or dtype differs", s->name);
			return -1;
		}
	}
	for (int i = 0; i < src->n; i++) {
		const ParamEntry *s = &src->e[i];
		ParamEntry *d = params_find(dst, s->name);
		if (s->dtype == DTYPE_I64)
			memcpy(d->i64, s->i64, sizeof(int64_t) * (size_t)s->numel);
		else
			memcpy(d->data, s->data, sizeof(float) * (size_t)s->numel);
	}
	return 0;
}

uint64_t
params_hash_bytes(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;
	if (!h)
		h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return h;
}

uint64_t
params_fingerprint(const ParamTable *t, uint64_t h)
{
	for (int i = 0; i < t->n; i++) {
		const ParamEntry *e = &t->e[i];
		if (!e->data)
			continue;
		h = params_hash_bytes(h, e->name, strlen(e->name) + 1);
		h = params_hash_bytes(h, e->shape, (size_t)e->ndim * sizeof e->shape[0]);
		h = params_hash_bytes(h, e->data, (size_t)e->numel * sizeof *e->data);
	}
	return h;
}
