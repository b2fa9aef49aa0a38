/* embed: see embed.h. */
#include "embed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

/* Grows the three arrays to hold at least `need` records of dim floats. */
static int
embed_reserve(Embeddings *e, int64_t *cap, int64_t need, char *err, size_t errlen)
{
	int64_t ncap = *cap ? *cap : 1024;
	size_t nx;
	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap = ncap > INT64_MAX / 2 ? need : ncap * 2;
	if (size_mul((size_t)ncap, (size_t)e->dim, &nx) < 0 || nx > SIZE_MAX / sizeof(float)) {
		snprintf(err, errlen, "%s: %lld records of %d dims: too large", e->name, (long long)need, e->dim);
		return -1;
	}
	e->x = xreallocarray(e->x, nx, sizeof *e->x);
	e->labels = xreallocarray(e->labels, (size_t)ncap, sizeof *e->labels);
	e->ids = xreallocarray(e->ids, (size_t)ncap, sizeof *e->ids);
	*cap = ncap;
	return 0;
}

int
embed_load_reader(Embeddings *e, StreamReader *r, char *err, size_t errlen)
{
	const StreamHeader *h;
	Record rec;
	int64_t cap = 0;
	int got;

	memset(e, 0, sizeof *e);
	e->name = xstrdup(stream_reader_name(r));
	stream_header_init(&e->header, STREAM_KIND_EMBEDDINGS);
	if (!(h = stream_reader_header(r))) {
		snprintf(err, errlen, "%s", stream_reader_error(r));
		goto fail;
	}
	if (strcmp(h->kind, STREAM_KIND_EMBEDDINGS) != 0) {
		snprintf(err, errlen, "%s: a stream of kind \"%s\", expected \"%s\" (ssl-encode writes them)",
		         e->name, h->kind, STREAM_KIND_EMBEDDINGS);
		goto fail;
	}
	stream_header_free(&e->header);
	stream_header_copy(&e->header, h);
	while ((got = stream_reader_next(r, &rec)) > 0) {
		char terr[256];
		const Tensor *t = record_tensor(&rec, "embedding", DTYPE_F32, 1, terr, sizeof terr);
		if (!t) {
			snprintf(err, errlen, "%s: record %lld (id %lld): %s", e->name, (long long)e->n,
			         (long long)rec.id, terr);
			goto fail;
		}
		if (e->n == 0) {
			if (t->shape[0] < 1 || t->shape[0] > EMBED_MAX_DIM) {
				snprintf(err, errlen, "%s: record 0 (id %lld): embedding of %lld dims (1 to %d allowed)",
				         e->name, (long long)rec.id, (long long)t->shape[0], EMBED_MAX_DIM);
				goto fail;
			}
			e->dim = (int)t->shape[0];
		} else if (t->shape[0] != e->dim) {
			snprintf(err, errlen, "%s: record %lld (id %lld): embedding has %lld dims, expected %d as in record 0",
			         e->name, (long long)e->n, (long long)rec.id, (long long)t->shape[0], e->dim);
			goto fail;
		}
		if (embed_reserve(e, &cap, e->n + 1, err, errlen) < 0)
			goto fail;
		memcpy(e->x + (size_t)e->n * (size_t)e->dim, t->data, (size_t)e->dim * sizeof(float));
		e->labels[e->n] = rec.label;
		e->ids[e->n] = rec.id;
		e->n++;
	}
	if (got < 0) {
		snprintf(err, errlen, "%s", stream_reader_error(r));
		goto fail;
	}
	return 0;
fail:
	embed_free(e);
	return -1;
}

int
embed_load(Embeddings *e, const char *path, char *err, size_t errlen)
{
	StreamReader *r = stream_reader_open_path(path);
	int rc = embed_load_reader(e, r, err, errlen);
	stream_reader_close(r);
	return rc;
}

void
embed_free(Embeddings *e)
{
	free(e->name);
	free(e->x);
	free(e->labels);
	free(e->ids);
	stream_header_free(&e->header);
	memset(e, 0, sizeof *e);
}
