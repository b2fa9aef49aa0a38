/* provenance: see provenance.h. */
#include "io/provenance.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"
#include "io/msgpack_util.h"

int
provenance_pack(msgpack_packer *pk, const Provenance *p, int n)
{
	int rc = msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++) {
		rc |= msgpack_pack_map(pk, 3);
		rc |= mpu_pack_str(pk, "tool") | mpu_pack_str(pk, p[i].tool ? p[i].tool : "");
		rc |= mpu_pack_str(pk, "version") | mpu_pack_str(pk, p[i].version ? p[i].version : "");
		rc |= mpu_pack_str(pk, "args") | msgpack_pack_array(pk, (size_t)p[i].nargs);
		for (int j = 0; j < p[i].nargs; j++)
			rc |= mpu_pack_str(pk, p[i].args[j]);
	}
	return rc;
}

static int
decode_provenance(const msgpack_object *o, Provenance *p, char *why, size_t whylen)
{
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "provenance entries must be maps");
		return -1;
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *k = &o->via.map.ptr[i].key, *v = &o->via.map.ptr[i].val;
		if (mpu_key_is(k, "tool") || mpu_key_is(k, "version")) {
			char **slot = mpu_key_is(k, "tool") ? &p->tool : &p->version;
			if (*slot) {
				snprintf(why, whylen, "duplicate key in a provenance entry");
				return -1;
			}
			if (!(*slot = mpu_strdup_why(v, "a provenance tool or version", why, whylen)))
				return -1;
		} else if (mpu_key_is(k, "args")) {
			if (v->type != MSGPACK_OBJECT_ARRAY || p->args) {
				snprintf(why, whylen, "provenance args must be one array of strings");
				return -1;
			}
			p->args = xcalloc(v->via.array.size ? v->via.array.size : 1, sizeof p->args[0]);
			for (uint32_t j = 0; j < v->via.array.size; j++) {
				if (!(p->args[j] = mpu_strdup_why(&v->via.array.ptr[j], "provenance arg", why, whylen)))
					return -1;
				p->nargs++;
			}
		}
	}
	if (!p->tool) {
		snprintf(why, whylen, "provenance entry without 'tool'");
		return -1;
	}
	if (!p->version)
		p->version = xstrdup("");
	if (!p->args)
		p->args = xcalloc(1, sizeof p->args[0]);
	return 0;
}

int
provenance_decode(const msgpack_object *o, Provenance **out, int *n, char *why, size_t whylen)
{
	*out = NULL;
	*n = 0;
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(why, whylen, "provenance must be an array of maps");
		return -1;
	}
	*out = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof **out);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		/* counted first so that provenance_free releases a partial entry */
		(*n)++;
		if (decode_provenance(&o->via.array.ptr[i], &(*out)[i], why, whylen) < 0)
			return -1;
	}
	return 0;
}

Provenance *
provenance_copy(const Provenance *p, int n)
{
	Provenance *q = xcalloc(n > 0 ? (size_t)n : 1, sizeof *q);
	for (int i = 0; i < n; i++) {
		q[i].tool = xstrdup(p[i].tool);
		q[i].version = xstrdup(p[i].version);
		q[i].nargs = p[i].nargs;
		q[i].args = xcalloc(p[i].nargs > 0 ? (size_t)p[i].nargs : 1, sizeof q[i].args[0]);
		for (int j = 0; j < p[i].nargs; j++)
			q[i].args[j] = xstrdup(p[i].args[j]);
	}
	return q;
}

void
provenance_free(Provenance *p, int n)
{
	for (int i = 0; i < n; i++) {
		free(p[i].tool);
		free(p[i].version);
		for (int j = 0; j < p[i].nargs; j++)
			free(p[i].args[j]);
		free(p[i].args);
	}
	free(p);
}
