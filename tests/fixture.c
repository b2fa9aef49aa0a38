/* fixture: see fixture.h. */
#include "fixture.h"

#include <check.h>
#include <math.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "base/util.h"

struct Fixture {
	int     n;
	Tensor *t;
};

static int
key_is(const msgpack_object *k, const char *s)
{
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(s) &&
	       memcmp(k->via.str.ptr, s, k->via.str.size) == 0;
}

static void
parse_tensor(Tensor *t, const msgpack_object *key, const msgpack_object *val)
{
	ck_assert_msg(key->type == MSGPACK_OBJECT_STR && key->via.str.size < TENSOR_MAX_NAME, "fixture: bad key");
	memcpy(t->name, key->via.str.ptr, key->via.str.size);
	t->name[key->via.str.size] = 0;
	ck_assert_msg(val->type == MSGPACK_OBJECT_MAP, "fixture %s: not a map", t->name);
	const msgpack_object *dt = NULL, *shape = NULL, *data = NULL;
	for (uint32_t i = 0; i < val->via.map.size; i++) {
		const msgpack_object_kv *kv = &val->via.map.ptr[i];
		if (key_is(&kv->key, "dtype"))
			dt = &kv->val;
		else if (key_is(&kv->key, "shape"))
			shape = &kv->val;
		else if (key_is(&kv->key, "data"))
			data = &kv->val;
	}
	ck_assert_msg(dt && shape && data && dt->type == MSGPACK_OBJECT_STR && shape->type == MSGPACK_OBJECT_ARRAY &&
	                      data->type == MSGPACK_OBJECT_BIN,
	              "fixture %s: malformed tensor", t->name);
	ck_assert_msg(dtype_parse(dt->via.str.ptr, dt->via.str.size, &t->dtype) == 0, "fixture %s: dtype", t->name);
	ck_assert_msg(shape->via.array.size <= TENSOR_MAX_DIM, "fixture %s: rank", t->name);
	t->ndim = (int)shape->via.array.size;
	for (int d = 0; d < t->ndim; d++) {
		const msgpack_object *o = &shape->via.array.ptr[d];
		ck_assert_msg(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER, "fixture %s: shape", t->name);
		t->shape[d] = (int64_t)o->via.u64;
	}
	int64_t numel = tensor_numel_checked(t->shape, t->ndim, INT64_C(1) << 30);
	ck_assert_msg(numel >= 0 && (size_t)numel * dtype_size(t->dtype) == data->via.bin.size,
	              "fixture %s: data size", t->name);
	t->data = xalloc_aligned(data->via.bin.size ? data->via.bin.size : 1);
	memcpy(t->data, data->via.bin.ptr, data->via.bin.size);
	t->owned = 1;
}

Fixture *
fixture_load(const char *relpath)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", tu_src(), relpath);
	size_t len;
	char *buf = tu_read_file(path, &len);
	msgpack_unpacked u;
	msgpack_unpacked_init(&u);
	size_t off = 0;
	ck_assert_msg(msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS, "%s: not msgpack", path);
	ck_assert_msg(u.data.type == MSGPACK_OBJECT_MAP, "%s: not a map", path);
	Fixture *f = xcalloc(1, sizeof *f);
	f->n = (int)u.data.via.map.size;
	f->t = xcalloc((size_t)f->n + 1, sizeof *f->t);
	for (int i = 0; i < f->n; i++)
		parse_tensor(&f->t[i], &u.data.via.map.ptr[i].key, &u.data.via.map.ptr[i].val);
	msgpack_unpacked_destroy(&u);
	free(buf);
	return f;
}

void
fixture_free(Fixture *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++)
		free(f->t[i].data);
	free(f->t);
	free(f);
}

const Tensor *
fixture_find(const Fixture *f, const char *name)
{
	for (int i = 0; i < f->n; i++)
		if (strcmp(f->t[i].name, name) == 0)
			return &f->t[i];
	return NULL;
}

const Tensor *
fixture_get(const Fixture *f, const char *name, DType dtype, int64_t numel)
{
	const Tensor *t = fixture_find(f, name);
	ck_assert_msg(t != NULL, "fixture: %s missing", name);
	ck_assert_msg(t->dtype == dtype, "fixture: %s has dtype %s", name, dtype_str(t->dtype));
	if (numel >= 0)
		ck_assert_msg(tensor_numel(t) == numel, "fixture: %s has %lld elements, want %lld", name,
		              (long long)tensor_numel(t), (long long)numel);
	return t;
}

const float *
fixture_f32(const Fixture *f, const char *name, int64_t numel)
{
	return fixture_get(f, name, DTYPE_F32, numel)->data;
}

double
fixture_scalar(const Fixture *f, const char *name)
{
	const Tensor *t = fixture_find(f, name);
	ck_assert_msg(t != NULL && tensor_numel(t) == 1, "fixture: scalar %s missing", name);
	if (t->dtype == DTYPE_F64)
		return *(const double *)t->data;
	ck_assert_msg(t->dtype == DTYPE_F32, "fixture: %s not a float", name);
	return *(const float *)t->data;
}

double
rel_err(const float *a, const float *b, size_t n, double floor)
{
	double scale = floor, err = 0;
	for (size_t i = 0; i < n; i++) {
		double d = fabs((double)a[i] - b[i]);
		if (!(d <= err)) /* NaN counts as infinite error */
			err = isnan(d) ? INFINITY : d;
		if (fabs(b[i]) > scale)
			scale = fabs(b[i]);
	}
	return err / scale;
}
