/* tensor: see tensor.h. */
#include "io/tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const struct {
	const char *str;
	size_t size;
} dtypes[] = {
	[DTYPE_U8] = { "|u1", 1 },
	[DTYPE_I32] = { "<i4", 4 },
	[DTYPE_I64] = { "<i8", 8 },
	[DTYPE_F32] = { "<f4", 4 },
	[DTYPE_F64] = { "<f8", 8 },
};

size_t
dtype_size(DType t)
{
	return dtypes[t].size;
}

const char *
dtype_str(DType t)
{
	return dtypes[t].str;
}

int
dtype_parse(const char *s, size_t len, DType *out)
{
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
		if (strlen(dtypes[i].str) == len && memcmp(dtypes[i].str, s, len) == 0) {
			*out = (DType)i;
			return 0;
		}
	}
	/* numpy writes "u1" and "<u1" for bytes as well */
	if ((len == 2 && memcmp(s, "u1", 2) == 0) || (len == 3 && memcmp(s, "<u1", 3) == 0)) {
		*out = DTYPE_U8;
		return 0;
	}
	return -1;
}

int64_t
tensor_numel_checked(const int64_t *shape, int ndim, int64_t limit)
{
	int64_t n = 1;
	if (ndim < 0 || ndim > TENSOR_MAX_DIM)
		return -1;
	for (int i = 0; i < ndim; i++) {
		if (shape[i] < 0)
			return -1;
		if (shape[i] != 0 && n > INT64_MAX / shape[i])
			return -1;
		n *= shape[i];
	}
	if (limit > 0 && n > limit)
		return -1;
	return n;
}

int64_t
tensor_numel(const Tensor *t)
{
	int64_t n = tensor_numel_checked(t->shape, t->ndim, 0);
	ASSERT(n >= 0);
	return n;
}

size_t
tensor_nbytes(const Tensor *t)
{
	return (size_t)tensor_numel(t) * dtype_size(t->dtype);
}

static void
set_name(Tensor *t, const char *name)
{
	snprintf(t->name, sizeof t->name, "%s", name ? name : "");
}

void
tensor_alloc(Tensor *t, const char *name, DType dtype, int ndim, const int64_t *shape)
{
	int64_t n;
	size_t bytes;
	memset(t, 0, sizeof *t);
	ASSERT(ndim >= 0 && ndim <= TENSOR_MAX_DIM);
	n = tensor_numel_checked(shape, ndim, 0);
	if (n < 0 || size_mul((size_t)n, dtype_size(dtype), &bytes) < 0)
		die("tensor %s: size overflows", name ? name : "");
	t->dtype = dtype;
	t->ndim = ndim;
	memcpy(t->shape, shape, ndim * sizeof shape[0]);
	t->data = xcalloc(bytes ? bytes : 1, 1);
	t->owned = 1;
	set_name(t, name);
}

void
tensor_free(Tensor *t)
{
	if (t->owned)
		free(t->data);
	t->data = NULL;
	t->owned = 0;
}

Tensor
tensor_view(const char *name, DType dtype, int ndim, const int64_t *shape, void *data)
{
	Tensor t;
	memset(&t, 0, sizeof t);
	ASSERT(ndim >= 0 && ndim <= TENSOR_MAX_DIM);
	t.dtype = dtype;
	t.ndim = ndim;
	memcpy(t.shape, shape, ndim * sizeof shape[0]);
	t.data = data;
	set_name(&t, name);
	return t;
}

const char *
tensor_shape_str(const Tensor *t, char *buf, size_t len)
{
	size_t used = 0;
	buf[0] = '\0';
	if (t->ndim == 0)
		snprintf(buf, len, "scalar");
	for (int i = 0; i < t->ndim && used < len; i++) {
		int n = snprintf(buf + used, len - used, i ? "x%lld" : "%lld", (long long)t->shape[i]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
	return buf;
}

int
tensor_same_shape(const Tensor *a, const Tensor *b)
{
	if (a->ndim != b->ndim)
		return 0;
	for (int i = 0; i < a->ndim; i++)
		if (a->shape[i] != b->shape[i])
			return 0;
	return 1;
}
