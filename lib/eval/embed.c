/* embed: see embed.h. */
#include "eval/embed.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* Grows the four arrays to hold at least `need` records of dim floats.
 * The first capacity is 1024 records or 1 MiB of floats, whichever is
 * fewer: memory follows the records that arrived (a stream of one embedding
 * of 256k dims reserved 1 GiB; found by fuzz_tensors). */
static int
embed_reserve(Embeddings *e, int64_t *cap, int64_t need, char *err, size_t errlen)
{
	int64_t first = ((int64_t)1 << 18) / e->dim;
	int64_t ncap = *cap ? *cap : first < 1 ? 1 : first > 1024 ? 1024 : first;
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
	e->sources = xreallocarray(e->sources, (size_t)ncap, sizeof *e->sources);
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
			snprintf(err, errlen, "%s: %s", stream_at(e->name, e->n + 1, rec.id).s, terr);
			goto fail;
		}
		if (e->n == 0) {
			if (t->shape[0] < 1 || t->shape[0] > EMBED_MAX_DIM) {
				snprintf(err, errlen, "%s: embedding of %lld dims (1 to %d allowed)",
				         stream_at(e->name, 1, rec.id).s, (long long)t->shape[0], EMBED_MAX_DIM);
				goto fail;
			}
			e->dim = (int)t->shape[0];
		} else if (t->shape[0] != e->dim) {
			snprintf(err, errlen, "%s: embedding has %lld dims, expected %d as in record 1",
			         stream_at(e->name, e->n + 1, rec.id).s, (long long)t->shape[0], e->dim);
			goto fail;
		}
		if (embed_reserve(e, &cap, e->n + 1, err, errlen) < 0)
			goto fail;
		memcpy(e->x + (size_t)e->n * (size_t)e->dim, t->data, (size_t)e->dim * sizeof(float));
		for (int j = 0; j < e->dim; j++) {
			if (!isfinite(e->x[(size_t)e->n * (size_t)e->dim + (size_t)j])) {
				snprintf(err, errlen, "%s: embedding value %d is not finite", stream_at(e->name, e->n + 1, rec.id).s,
				         j);
				goto fail;
			}
		}
		e->labels[e->n] = rec.label;
		e->ids[e->n] = rec.id;
		e->sources[e->n] = rec.source ? xstrdup(rec.source) : NULL;
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
	for (int64_t i = 0; i < e->n && e->sources; i++)
		free(e->sources[i]);
	free(e->sources);
	stream_header_free(&e->header);
	memset(e, 0, sizeof *e);
}

/* Every label of e known and in [0, K). */
static int
check_labels(const Embeddings *e, int K, char *err, size_t errlen)
{
	for (int64_t i = 0; i < e->n; i++) {
		if (e->labels[i] == -1) {
			snprintf(err, errlen, "%s: no label (-1); the probes need labelled items",
			         stream_at(e->name, i + 1, e->ids[i]).s);
			return -1;
		}
		if (e->labels[i] < 0 || e->labels[i] >= K) {
			snprintf(err, errlen, "%s: label %lld outside the %d classes", stream_at(e->name, i + 1, e->ids[i]).s,
			         (long long)e->labels[i], K);
			return -1;
		}
	}
	return 0;
}

int
embed_check_pair(const Embeddings *train, const Embeddings *test, int *K, char ***names, char *err, size_t errlen)
{
	const StreamHeader *htr = &train->header, *hte = &test->header;
	int64_t *count = NULL;
	int k = 0, present = 0;

	*names = NULL;
	*K = 0;
	if (train->n == 0 || test->n == 0) {
		snprintf(err, errlen, "%s: no records", train->n == 0 ? train->name : test->name);
		return -1;
	}
	if (train->n > INT32_MAX || test->n > INT32_MAX) {
		snprintf(err, errlen, "%s: more than %d records", train->n > INT32_MAX ? train->name : test->name,
		         INT32_MAX);
		return -1;
	}
	if (train->dim != test->dim) {
		snprintf(err, errlen, "%s: embeddings of %d dims, but %s has %d", test->name, test->dim, train->name,
		         train->dim);
		return -1;
	}
	if (htr->nclasses > 0 && hte->nclasses > 0) {
		if (htr->nclasses != hte->nclasses) {
			snprintf(err, errlen, "%s: %d classes in the header, but %s has %d", test->name, hte->nclasses,
			         train->name, htr->nclasses);
			return -1;
		}
		for (int c = 0; c < htr->nclasses; c++) {
			if (strcmp(htr->classes[c], hte->classes[c]) != 0) {
				snprintf(err, errlen, "%s: class %d is \"%s\", but \"%s\" in %s", test->name, c, hte->classes[c],
				         htr->classes[c], train->name);
				return -1;
			}
		}
	}
	k = htr->nclasses > 0 ? htr->nclasses : hte->nclasses;
	if (k == 0) {
		/* no names anywhere: the labels define the classes */
		const Embeddings *sets[2] = { train, test };
		int64_t max = -1;
		for (int s = 0; s < 2; s++)
			for (int64_t i = 0; i < sets[s]->n; i++)
				if (sets[s]->labels[i] > max)
					max = sets[s]->labels[i];
		if (max >= (int64_t)1 << 20) {
			snprintf(err, errlen, "%s: labels up to %lld and no class names: too many classes", train->name,
			         (long long)max);
			return -1;
		}
		k = (int)(max + 1);
	}
	if (check_labels(train, k, err, errlen) < 0 || check_labels(test, k, err, errlen) < 0)
		return -1;
	count = xcalloc((size_t)k, sizeof *count);
	for (int64_t i = 0; i < train->n; i++)
		count[train->labels[i]]++;
	for (int c = 0; c < k; c++)
		present += count[c] > 0;
	if (present < 2) {
		snprintf(err, errlen, "%s: labels of only %d class; a probe needs at least 2", train->name, present);
		free(count);
		return -1;
	}
	for (int64_t i = 0; i < test->n; i++) {
		int64_t c = test->labels[i];
		if (count[c] == 0) {
			snprintf(err, errlen, "%s: class %lld%s%s%s has no items in %s", stream_at(test->name, i + 1, test->ids[i]).s,
			         (long long)c, htr->nclasses > 0 ? " (" : "",
			         htr->nclasses > 0 ? htr->classes[c] : "", htr->nclasses > 0 ? ")" : "", train->name);
			free(count);
			return -1;
		}
	}
	free(count);
	*names = xcalloc((size_t)k, sizeof **names);
	for (int c = 0; c < k; c++) {
		const StreamHeader *h = htr->nclasses > 0 ? htr : hte;
		char buf[24];
		if (h->nclasses > 0) {
			(*names)[c] = xstrdup(h->classes[c]);
		} else {
			snprintf(buf, sizeof buf, "%d", c);
			(*names)[c] = xstrdup(buf);
		}
	}
	*K = k;
	return 0;
}

void
embed_keep_present_classes(Embeddings *train, Embeddings *test, int *K, char ***names, int **ids)
{
	int k = *K, kept = 0, *map = xcalloc((size_t)k, sizeof *map);
	char **old = *names;
	for (int64_t i = 0; i < train->n; i++)
		map[train->labels[i]] = 1;
	*ids = xcalloc((size_t)k, sizeof **ids);
	for (int c = 0; c < k; c++) {
		if (map[c]) {
			(*ids)[kept] = c;
			old[kept] = old[c];
			map[c] = kept++;
		} else {
			free(old[c]);
		}
	}
	for (int64_t i = 0; i < train->n; i++)
		train->labels[i] = map[train->labels[i]];
	for (int64_t i = 0; i < test->n; i++)   /* embed_check_pair: every test class has training items */
		test->labels[i] = map[test->labels[i]];
	free(map);
	*K = kept;
}

void
embed_names_free(char **names, int K)
{
	for (int c = 0; names && c < K; c++)
		free(names[c]);
	free(names);
}

EncoderId
embed_encoder_id(const StreamHeader *h)
{
	return (EncoderId){ stream_header_get_meta(h, "model_id"), stream_header_get_meta(h, "model"),
		            stream_header_get_meta(h, "layer"), stream_header_get_meta(h, "l2") };
}

/* a and b differ where both are known */
static int
differ(const char *a, const char *b)
{
	return a && b && strcmp(a, b) != 0;
}

int
embed_check_encoder(const char *aname, const EncoderId *a, const char *bname, const EncoderId *b, char *err,
                    size_t errlen)
{
	if (differ(a->model_id, b->model_id)) {
		snprintf(err, errlen, "%s: embeddings of another encoder (model_id %s%s%s, %s has %s%s%s)", aname,
		         a->model_id, a->model ? " from " : "", a->model ? a->model : "", bname, b->model_id,
		         b->model ? " from " : "", b->model ? b->model : "");
		return -1;
	}
	if (differ(a->layer, b->layer) || differ(a->l2, b->l2)) {
		snprintf(err, errlen, "%s: embeddings of another layer (layer %s, l2 %s; %s has layer %s, l2 %s)", aname,
		         a->layer ? a->layer : "?", a->l2 ? a->l2 : "?", bname, b->layer ? b->layer : "?",
		         b->l2 ? b->l2 : "?");
		return -1;
	}
	return 0;
}
