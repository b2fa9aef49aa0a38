/* msgpack_util: see msgpack_util.h. */
#include "io/msgpack_util.h"

#include <string.h>

#include "base/util.h"

/* ------------------------------------------------------------- scanning */

void
mpu_scan_init(MpuScan *s, int max_depth, uint64_t max_elems, uint64_t max_bytes)
{
	ASSERT(max_depth >= 1 && max_depth <= MPU_MAX_DEPTH);
	s->max_depth = max_depth;
	s->max_elems = max_elems;
	s->max_bytes = max_bytes;
	s->whole = 0;
	s->pos = 0;
	s->depth = 1;
	s->left[0] = 1;
	s->elems = 0;
}

int
mpu_scan_step(MpuScan *s, const unsigned char *p, size_t avail, char *why, size_t whylen)
{
	while (s->depth > 0) {
		size_t hdr, pos = s->pos;
		uint64_t skip = 0, n = 0;
		int container = 0;
		unsigned b;
		if (pos >= avail)
			return 0;
		b = p[pos];
#define NEED(k) do { if (avail - pos < (k)) return 0; } while (0)
#define BE16(q) ((uint64_t)(q)[0] << 8 | (q)[1])
#define BE32(q) ((uint64_t)(q)[0] << 24 | (uint64_t)(q)[1] << 16 | (uint64_t)(q)[2] << 8 | (q)[3])
		if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
			hdr = 1;
		} else if (b <= 0x8f) {
			hdr = 1, n = 2 * (uint64_t)(b & 0x0f), container = 1;
		} else if (b <= 0x9f) {
			hdr = 1, n = b & 0x0f, container = 1;
		} else if (b <= 0xbf) {
			hdr = 1, skip = b & 0x1f;
		} else {
			switch (b) {
			case 0xc4: case 0xd9: NEED(2); hdr = 2, skip = p[pos + 1]; break;
			case 0xc5: case 0xda: NEED(3); hdr = 3, skip = BE16(p + pos + 1); break;
			case 0xc6: case 0xdb: NEED(5); hdr = 5, skip = BE32(p + pos + 1); break;
			case 0xc7: NEED(2); hdr = 3, skip = p[pos + 1]; break;
			case 0xc8: NEED(3); hdr = 4, skip = BE16(p + pos + 1); break;
			case 0xc9: NEED(5); hdr = 6, skip = BE32(p + pos + 1); break;
			case 0xca: hdr = 5; break;
			case 0xcb: hdr = 9; break;
			case 0xcc: case 0xd0: hdr = 2; break;
			case 0xcd: case 0xd1: hdr = 3; break;
			case 0xce: case 0xd2: hdr = 5; break;
			case 0xcf: case 0xd3: hdr = 9; break;
			case 0xd4: hdr = 3; break;
			case 0xd5: hdr = 4; break;
			case 0xd6: hdr = 6; break;
			case 0xd7: hdr = 10; break;
			case 0xd8: hdr = 18; break;
			case 0xdc: NEED(3); hdr = 3, n = BE16(p + pos + 1), container = 1; break;
			case 0xdd: NEED(5); hdr = 5, n = BE32(p + pos + 1), container = 1; break;
			case 0xde: NEED(3); hdr = 3, n = 2 * BE16(p + pos + 1), container = 1; break;
			case 0xdf: NEED(5); hdr = 5, n = 2 * BE32(p + pos + 1), container = 1; break;
			default: /* 0xc1 */
				snprintf(why, whylen, "malformed msgpack (byte 0xc1 at offset %zu)", pos);
				return -1;
			}
		}
#undef NEED
#undef BE16
#undef BE32
		if ((uint64_t)pos + hdr + skip > s->max_bytes) {
			snprintf(why, whylen, "object larger than the limit of %llu bytes", (unsigned long long)s->max_bytes);
			return -1;
		}
		s->pos = pos + hdr + (size_t)skip;
		s->left[s->depth - 1]--;
		if (container && n > 0) {
			if (n > s->max_elems - s->elems) {
				snprintf(why, whylen, "a container claims %llu elements (limit %llu per object)",
				         (unsigned long long)n, (unsigned long long)s->max_elems);
				return -1;
			}
			if (s->whole && n > avail - s->pos)
				return 0;
			if (s->depth > s->max_depth) {
				snprintf(why, whylen, "nesting deeper than %d levels", s->max_depth);
				return -1;
			}
			s->elems += n;
			s->left[s->depth++] = n;
		}
		while (s->depth > 0 && s->left[s->depth - 1] == 0)
			s->depth--;
	}
	return s->pos <= avail ? 1 : 0;
}

/* ------------------------------------------------------------- accessors */

int
mpu_key_is(const msgpack_object *k, const char *s)
{
	size_t n = strlen(s);
	return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n && memcmp(k->via.str.ptr, s, n) == 0;
}

const msgpack_object *
mpu_map_get(const msgpack_object *m, const char *key)
{
	for (uint32_t i = 0; i < m->via.map.size; i++)
		if (mpu_key_is(&m->via.map.ptr[i].key, key))
			return &m->via.map.ptr[i].val;
	return NULL;
}

int
mpu_map_pick(const msgpack_object *m, const char *const *names, int n, const msgpack_object **vals)
{
	for (int k = 0; k < n; k++)
		vals[k] = NULL;
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		for (int k = 0; k < n; k++) {
			if (!mpu_key_is(&m->via.map.ptr[i].key, names[k]))
				continue;
			if (vals[k])
				return k;
			vals[k] = &m->via.map.ptr[i].val;
			break;
		}
	}
	return -1;
}

int
mpu_get_i64(const msgpack_object *o, int64_t *v)
{
	if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return -1;
		*v = (int64_t)o->via.u64;
		return 0;
	}
	if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return 0;
	}
	return -1;
}

int
mpu_get_f64(const msgpack_object *o, double *v)
{
	int64_t i;
	if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64) {
		*v = o->via.f64;
		return 0;
	}
	if (mpu_get_i64(o, &i) == 0) {
		*v = (double)i;
		return 0;
	}
	return -1;
}

int
mpu_get_bool(const msgpack_object *o, int *v)
{
	int64_t i;
	if (o->type == MSGPACK_OBJECT_BOOLEAN) {
		*v = o->via.boolean;
		return 0;
	}
	if (mpu_get_i64(o, &i) == 0 && (i == 0 || i == 1)) {
		*v = (int)i;
		return 0;
	}
	return -1;
}

int
mpu_get_str(const msgpack_object *o, char *buf, size_t len)
{
	if (o->type != MSGPACK_OBJECT_STR || o->via.str.size >= len || memchr(o->via.str.ptr, 0, o->via.str.size))
		return -1;
	memcpy(buf, o->via.str.ptr, o->via.str.size);
	buf[o->via.str.size] = '\0';
	return 0;
}

char *
mpu_strdup(const msgpack_object *o)
{
	char *s;
	if (o->type != MSGPACK_OBJECT_STR || memchr(o->via.str.ptr, 0, o->via.str.size))
		return NULL;
	s = xmalloc((size_t)o->via.str.size + 1);
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	if (!utf8_valid(s, o->via.str.size)) {   /* read as written: stray bytes as \xHH */
		char *e = str_utf8_escape(s);
		free(s);
		s = e;
	}
	return s;
}

char *
mpu_strdup_why(const msgpack_object *o, const char *what, char *why, size_t whylen)
{
	char *s = mpu_strdup(o);
	if (!s)
		snprintf(why, whylen, o->type != MSGPACK_OBJECT_STR ? "%s must be a string" : "%s contains a NUL byte", what);
	return s;
}

/* --------------------------------------------------------------- packing */

const char *
mpu_type_name(msgpack_object_type t)
{
	switch (t) {
	case MSGPACK_OBJECT_NIL: return "nil";
	case MSGPACK_OBJECT_BOOLEAN: return "a boolean";
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER: return "an integer";
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64: return "a float";
	case MSGPACK_OBJECT_STR: return "a string";
	case MSGPACK_OBJECT_ARRAY: return "an array";
	case MSGPACK_OBJECT_MAP: return "a map";
	case MSGPACK_OBJECT_BIN: return "bin";
	default: return "an extension";
	}
}

int
mpu_pack_str(msgpack_packer *pk, const char *s)
{
	size_t n = strlen(s);
	char *e;
	int rc;
	if (utf8_valid(s, n))
		return msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, s, n);
	/* a msgpack str is UTF-8 (ssl-stream(5)): a member or file name that is
	 * not goes out with its stray bytes as \xHH */
	e = str_utf8_escape(s);
	n = strlen(e);
	rc = msgpack_pack_str(pk, n) | msgpack_pack_str_body(pk, e, n);
	free(e);
	return rc;
}
