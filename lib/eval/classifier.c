/* classifier: see classifier.h.
 *
 * On disk (ssl-probe(1), PROBE FILES):
 *   {"format": "ssl-probe", "version": [1, 0],
 *    "encoder": {"model_id": .., "model": .., "layer": .., "l2": ..} (each optional),
 *    "trained_on": {"input": name, "records": n},
 *    "classes": [K names], "dim": D,
 *    "standardize": {"mean": <f4 (D), "scale": <f4 (D)},
 *    "classifiers": [{"method": "linear", "C": c, "test_accuracy": a,
 *                     "weight": <f4 (K, D), "bias": <f4 (K)},
 *                    {"method": "mlp", "test_accuracy": a, "W1": <f4 (H, D),
 *                     "b1": <f4 (H), "W2": <f4 (K, H), "b2": <f4 (K)}],
 *    "checksum": crc32}
 * Tensors are encoded as in the stream (lib/io/stream.h tensor_pack). */
#include "eval/classifier.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/util.h"
#include "io/msgfile.h"
#include "io/msgpack_util.h"
#include "io/stream.h"

#define PF_MAX_BYTES  (INT64_C(1) << 32)
#define PF_MAX_DEPTH  6   /* the format needs 4 */
#define PF_MAX_CLASSES 100000

static const MsgFileSpec pf_spec = {
	PROBEFILE_FORMAT, "probe file", "ssl-probe --save", PROBEFILE_VERSION_MAJOR, PROBEFILE_VERSION_MINOR,
	PF_MAX_BYTES,     PF_MAX_DEPTH,
};

static char *
dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static float *
dup_floats(const float *x, size_t n)
{
	float *y = xreallocarray(NULL, n ? n : 1, sizeof *y);
	memcpy(y, x, n * sizeof *y);
	return y;
}

void
probefile_init(ProbeFile *pf, int D, int K, char *const *classes, const EncoderId *id, const char *trained_on,
               int64_t ntrain)
{
	memset(pf, 0, sizeof *pf);
	pf->D = D;
	pf->K = K;
	pf->classes = xcalloc((size_t)K, sizeof *pf->classes);
	for (int k = 0; k < K; k++)
		pf->classes[k] = xstrdup(classes[k]);
	pf->model_id = dup_or_null(id->model_id);
	pf->model = dup_or_null(id->model);
	pf->layer = dup_or_null(id->layer);
	pf->l2 = dup_or_null(id->l2);
	pf->trained_on = dup_or_null(trained_on);
	pf->ntrain = ntrain;
}

void
probefile_add(ProbeFile *pf, const ProbeResult *r)
{
	Classifier *c;
	if (r->cfg.method == PROBE_KNN)
		return;
	ASSERT(pf->nclf < PROBEFILE_MAX_CLF && r->mean && r->scale);
	if (!pf->mean) {
		pf->mean = dup_floats(r->mean, (size_t)pf->D);
		pf->scale = dup_floats(r->scale, (size_t)pf->D);
	}
	c = &pf->clf[pf->nclf++];
	memset(c, 0, sizeof *c);
	c->method = r->cfg.method;
	c->test_accuracy = r->metrics.n ? (double)r->metrics.correct / (double)r->metrics.n : 0;
	if (c->method == PROBE_LINEAR) {
		ASSERT(r->linear.K == pf->K && r->linear.D == pf->D);
		c->C = r->C;
		linear_init(&c->linear, pf->K, pf->D);
		linear_copy(&c->linear, &r->linear);
	} else {
		const MlpModel *m = &r->mlp;
		ASSERT(m->K == pf->K && m->D == pf->D && m->params);
		mlp_alloc(&c->mlp, m->D, m->H, m->K);
		memcpy(c->mlp.params, m->params,
		       ((size_t)m->H * (size_t)m->D + (size_t)m->H + (size_t)m->K * (size_t)m->H + (size_t)m->K)
		               * sizeof *m->params);
	}
}

void
probefile_free(ProbeFile *pf)
{
	for (int k = 0; pf->classes && k < pf->K; k++)
		free(pf->classes[k]);
	free(pf->classes);
	free(pf->mean);
	free(pf->scale);
	for (int i = 0; i < pf->nclf; i++) {
		linear_free(&pf->clf[i].linear);
		mlp_free(&pf->clf[i].mlp);
	}
	free(pf->model_id);
	free(pf->model);
	free(pf->layer);
	free(pf->l2);
	free(pf->trained_on);
	memset(pf, 0, sizeof *pf);
}

int
probefile_find(const ProbeFile *pf, ProbeMethod m)
{
	for (int i = 0; i < pf->nclf; i++)
		if (pf->clf[i].method == m)
			return i;
	return -1;
}

/* -------------------------------------------------------------- saving */

static int
pack_f32(msgpack_packer *pk, const char *key, const float *x, int ndim, int64_t d0, int64_t d1)
{
	int64_t shape[2] = { d0, d1 };
	Tensor t = tensor_view(key, DTYPE_F32, ndim, shape, (void *)x);
	return mpu_pack_str(pk, key) | tensor_pack(pk, &t);
}

static int
pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	return mpu_pack_str(pk, k) | mpu_pack_str(pk, v);
}

static int
pack_classifier(msgpack_packer *pk, const Classifier *c, int D, int K)
{
	int rc = 0;
	if (c->method == PROBE_LINEAR) {
		rc |= msgpack_pack_map(pk, 5);
		rc |= pack_kv_str(pk, "method", "linear");
		rc |= mpu_pack_str(pk, "C") | msgpack_pack_double(pk, c->C);
		rc |= mpu_pack_str(pk, "test_accuracy") | msgpack_pack_double(pk, c->test_accuracy);
		rc |= pack_f32(pk, "weight", c->linear.W, 2, K, D);
		rc |= pack_f32(pk, "bias", c->linear.b, 1, K, 0);
	} else {
		const MlpModel *m = &c->mlp;
		rc |= msgpack_pack_map(pk, 6);
		rc |= pack_kv_str(pk, "method", "mlp");
		rc |= mpu_pack_str(pk, "test_accuracy") | msgpack_pack_double(pk, c->test_accuracy);
		rc |= pack_f32(pk, "W1", m->W1, 2, m->H, D);
		rc |= pack_f32(pk, "b1", m->b1, 1, m->H, 0);
		rc |= pack_f32(pk, "W2", m->W2, 2, K, m->H);
		rc |= pack_f32(pk, "b2", m->b2, 1, K, 0);
	}
	return rc;
}

int
probefile_save(const char *path, const ProbeFile *pf, char *err, size_t errlen)
{
	MsgFileWriter w;
	msgpack_packer *pk = &w.pk;
	const char *idk[4] = { "model_id", "model", "layer", "l2" };
	const char *idv[4] = { pf->model_id, pf->model, pf->layer, pf->l2 };
	int rc = 0, nid = 0;

	ASSERT(pf->nclf > 0 && pf->mean);
	if (msgfile_writer_open(&w, path, err, errlen) < 0)
		return -1;
	for (int i = 0; i < 4; i++)
		nid += idv[i] != NULL;
	rc |= msgpack_pack_map(pk, 9);
	rc |= pack_kv_str(pk, "format", PROBEFILE_FORMAT);
	rc |= mpu_pack_str(pk, "version") | msgpack_pack_array(pk, 2);
	rc |= msgpack_pack_int(pk, PROBEFILE_VERSION_MAJOR) | msgpack_pack_int(pk, PROBEFILE_VERSION_MINOR);
	rc |= mpu_pack_str(pk, "encoder") | msgpack_pack_map(pk, (size_t)nid);
	for (int i = 0; i < 4; i++)
		if (idv[i])
			rc |= pack_kv_str(pk, idk[i], idv[i]);
	rc |= mpu_pack_str(pk, "trained_on") | msgpack_pack_map(pk, 2);
	rc |= pack_kv_str(pk, "input", pf->trained_on ? pf->trained_on : "");
	rc |= mpu_pack_str(pk, "records") | msgpack_pack_int64(pk, pf->ntrain);
	rc |= mpu_pack_str(pk, "classes") | msgpack_pack_array(pk, (size_t)pf->K);
	for (int k = 0; k < pf->K; k++)
		rc |= mpu_pack_str(pk, pf->classes[k]);
	rc |= mpu_pack_str(pk, "dim") | msgpack_pack_int(pk, pf->D);
	rc |= mpu_pack_str(pk, "standardize") | msgpack_pack_map(pk, 2);
	rc |= pack_f32(pk, "mean", pf->mean, 1, pf->D, 0);
	rc |= pack_f32(pk, "scale", pf->scale, 1, pf->D, 0);
	rc |= mpu_pack_str(pk, "classifiers") | msgpack_pack_array(pk, (size_t)pf->nclf);
	for (int i = 0; i < pf->nclf; i++)
		rc |= pack_classifier(pk, &pf->clf[i], pf->D, pf->K);
	return msgfile_writer_commit(&w, rc, err, errlen);
}

/* -------------------------------------------------------------- loading */

/* The <f4 tensor `key` of map m, of shape (d0) or (d0, d1) (d1 = 0: rank 1),
 * copied into a fresh array. */
static int
get_f32(const msgpack_object *m, const char *sect, const char *key, int64_t d0, int64_t d1, float **out, char *why,
        size_t whylen)
{
	const msgpack_object *o = msgfile_need(m, sect, key, why, whylen);
	Tensor t;
	char terr[200];
	int ndim = d1 ? 2 : 1;
	size_t n = (size_t)d0 * (size_t)(d1 ? d1 : 1);
	if (!o)
		return -1;
	if (tensor_unpack(o, &t, PF_MAX_BYTES, terr, sizeof terr) < 0) {
		snprintf(why, whylen, "%s: '%s': %s", sect, key, terr);
		return -1;
	}
	if (t.dtype != DTYPE_F32 || t.ndim != ndim || t.shape[0] != d0 || (d1 && t.shape[1] != d1)) {
		char shp[64];
		if (d1)
			snprintf(shp, sizeof shp, "(%lld, %lld)", (long long)d0, (long long)d1);
		else
			snprintf(shp, sizeof shp, "(%lld)", (long long)d0);
		snprintf(why, whylen, "%s: '%s' must be <f4 of shape %s", sect, key, shp);
		return -1;
	}
	*out = dup_floats(t.data, n);
	for (size_t i = 0; i < n; i++) {
		if (!isfinite((*out)[i])) {
			snprintf(why, whylen, "%s: '%s' holds a non-finite value", sect, key);
			free(*out);
			*out = NULL;
			return -1;
		}
	}
	return 0;
}

static int
get_str(const msgpack_object *m, const char *sect, const char *key, int required, char **out, char *why,
        size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	*out = NULL;
	if (!o && !required)
		return 0;
	if (!o || !(*out = mpu_strdup(o))) {
		snprintf(why, whylen, "%s: '%s' must be a string", sect, key);
		return -1;
	}
	return 0;
}

static int
load_classifier(Classifier *c, const msgpack_object *m, int D, int K, char *why, size_t whylen)
{
	const char *sect = "classifiers";
	char method[16];
	const msgpack_object *o;
	float *W = NULL, *b = NULL, *W1 = NULL, *b1 = NULL, *W2 = NULL, *b2 = NULL;
	int64_t H;
	memset(c, 0, sizeof *c);
	if (m->type != MSGPACK_OBJECT_MAP || msgfile_check_keys(m, sect, why, whylen) < 0) {
		if (m->type != MSGPACK_OBJECT_MAP)
			snprintf(why, whylen, "classifiers: each must be a map");
		return -1;
	}
	if (!(o = msgfile_need(m, sect, "method", why, whylen)))
		return -1;
	if (mpu_get_str(o, method, sizeof method) < 0 || probe_method_parse(method, &c->method) < 0
	    || c->method == PROBE_KNN) {
		snprintf(why, whylen, "classifiers: 'method' must be \"linear\" or \"mlp\"");
		return -1;
	}
	if (msgfile_get_f64(m, sect, "test_accuracy", &c->test_accuracy, why, whylen) < 0)
		return -1;
	if (c->method == PROBE_LINEAR) {
		if (msgfile_get_f64(m, sect, "C", &c->C, why, whylen) < 0
		    || get_f32(m, sect, "weight", K, D, &W, why, whylen) < 0
		    || get_f32(m, sect, "bias", K, 0, &b, why, whylen) < 0) {
			free(W);
			return -1;
		}
		c->linear = (LinearModel){ K, D, W, b };
		return 0;
	}
	{
		Tensor t;
		char terr[200];
		if (!(o = msgfile_need(m, sect, "W1", why, whylen)))
			return -1;
		if (tensor_unpack(o, &t, PF_MAX_BYTES, terr, sizeof terr) < 0 || t.ndim != 2 || t.shape[0] < 1
		    || t.shape[0] > 1 << 20) {
			snprintf(why, whylen, "classifiers: 'W1' must be <f4 of shape (H, %d)", D);
			return -1;
		}
		H = t.shape[0];
	}
	if (get_f32(m, sect, "W1", H, D, &W1, why, whylen) < 0 || get_f32(m, sect, "b1", H, 0, &b1, why, whylen) < 0
	    || get_f32(m, sect, "W2", K, H, &W2, why, whylen) < 0 || get_f32(m, sect, "b2", K, 0, &b2, why, whylen) < 0) {
		free(W1);
		free(b1);
		free(W2);
		return -1;
	}
	mlp_alloc(&c->mlp, D, (int)H, K);
	memcpy(c->mlp.W1, W1, (size_t)H * (size_t)D * sizeof *W1);
	memcpy(c->mlp.b1, b1, (size_t)H * sizeof *b1);
	memcpy(c->mlp.W2, W2, (size_t)K * (size_t)H * sizeof *W2);
	memcpy(c->mlp.b2, b2, (size_t)K * sizeof *b2);
	free(W1);
	free(b1);
	free(W2);
	free(b2);
	return 0;
}

static int
load(ProbeFile *pf, const msgpack_object *root, char *why, size_t whylen)
{
	const msgpack_object *enc, *tr, *st, *o;
	int64_t v;
	if (msgfile_get_map(root, "", "encoder", 1, &enc, why, whylen) < 0
	    || get_str(enc, "encoder", "model_id", 0, &pf->model_id, why, whylen) < 0
	    || get_str(enc, "encoder", "model", 0, &pf->model, why, whylen) < 0
	    || get_str(enc, "encoder", "layer", 0, &pf->layer, why, whylen) < 0
	    || get_str(enc, "encoder", "l2", 0, &pf->l2, why, whylen) < 0)
		return -1;
	if (msgfile_get_map(root, "", "trained_on", 1, &tr, why, whylen) < 0
	    || get_str(tr, "trained_on", "input", 1, &pf->trained_on, why, whylen) < 0
	    || msgfile_get_int(tr, "trained_on", "records", 0, INT64_MAX, &pf->ntrain, why, whylen) < 0)
		return -1;
	if (msgfile_get_int(root, "probe", "dim", 1, EMBED_MAX_DIM, &v, why, whylen) < 0)
		return -1;
	pf->D = (int)v;
	if (!(o = msgfile_need(root, "probe", "classes", why, whylen)))
		return -1;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2 || o->via.array.size > PF_MAX_CLASSES) {
		snprintf(why, whylen, "'classes' must be an array of 2 to %d names", PF_MAX_CLASSES);
		return -1;
	}
	pf->classes = xcalloc(o->via.array.size, sizeof *pf->classes);
	for (uint32_t k = 0; k < o->via.array.size; k++) {
		if (!(pf->classes[k] = mpu_strdup(&o->via.array.ptr[k]))) {
			snprintf(why, whylen, "'classes': item %u is not a string", k);
			return -1;
		}
		pf->K = (int)k + 1;
	}
	if (msgfile_get_map(root, "", "standardize", 1, &st, why, whylen) < 0
	    || get_f32(st, "standardize", "mean", pf->D, 0, &pf->mean, why, whylen) < 0
	    || get_f32(st, "standardize", "scale", pf->D, 0, &pf->scale, why, whylen) < 0)
		return -1;
	if (!(o = msgfile_need(root, "probe", "classifiers", why, whylen)))
		return -1;
	if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 1 || o->via.array.size > PROBEFILE_MAX_CLF) {
		snprintf(why, whylen, "'classifiers' must be an array of 1 to %d classifiers", PROBEFILE_MAX_CLF);
		return -1;
	}
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		if (load_classifier(&pf->clf[i], &o->via.array.ptr[i], pf->D, pf->K, why, whylen) < 0)
			return -1;
		pf->nclf = (int)i + 1;
		if (probefile_find(pf, pf->clf[i].method) != (int)i) {
			snprintf(why, whylen, "classifiers: two of method %s", probe_method_name(pf->clf[i].method));
			return -1;
		}
	}
	return 0;
}

int
probefile_load(ProbeFile *pf, const char *path, char *err, size_t errlen)
{
	MsgFile f;
	char why[512];
	memset(pf, 0, sizeof *pf);
	if (msgfile_load(&f, path, &pf_spec, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		return -1;
	}
	if (load(pf, &f.root, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		probefile_free(pf);
		msgfile_free(&f);
		return -1;
	}
	msgfile_free(&f);
	return 0;
}

/* ----------------------------------------------------------- predicting */

int
probefile_check_input(const ProbeFile *pf, const char *probe_name, const Embeddings *e, char *err, size_t errlen)
{
	EncoderId mine = { pf->model_id, pf->model, pf->layer, pf->l2 };
	EncoderId theirs = embed_encoder_id(&e->header);
	if (e->n > 0 && e->dim != pf->D) {
		snprintf(err, errlen, "%s: embeddings of %d dimensions, but %s was trained on %d", e->name, e->dim,
		         probe_name, pf->D);
		return -1;
	}
	return embed_check_encoder(e->name, &theirs, probe_name, &mine, err, errlen);
}

void
probefile_predict(int64_t *pred, double *prob, const ProbeFile *pf, int which, const float *x, int64_t n)
{
	const Classifier *c = &pf->clf[which];
	int D = pf->D, K = pf->K;
	enum { CHUNK = 4096 };
	float *xs = xcalloc((size_t)CHUNK * (size_t)D, sizeof *xs);
	double *s = xcalloc((size_t)CHUNK * (size_t)K, sizeof *s);
	for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
		int64_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
		memcpy(xs, x + (size_t)i0 * (size_t)D, (size_t)m * (size_t)D * sizeof *xs);
		probe_standardize_apply(xs, m, D, pf->mean, pf->scale);
		if (c->method == PROBE_LINEAR)
			linear_scores(s, &c->linear, xs, m);
		else
			mlp_scores(s, &c->mlp, xs, m);
		for (int64_t i = 0; i < m; i++) {
			const double *si = s + (size_t)i * (size_t)K;
			int best = probe_argmax(si, K);
			double z = 0;
			for (int k = 0; k < K; k++)
				z += exp(si[k] - si[best]);
			pred[i0 + i] = best;
			prob[i0 + i] = 1.0 / z;
		}
	}
	free(xs);
	free(s);
}

/* The classes of e agree with pf's, so that its labels can be compared. */
static int
same_classes(const ProbeFile *pf, const Embeddings *e)
{
	if (e->header.nclasses == 0)
		return 1;
	if (e->header.nclasses != pf->K)
		return 0;
	for (int k = 0; k < pf->K; k++)
		if (strcmp(e->header.classes[k], pf->classes[k]) != 0)
			return 0;
	return 1;
}

int
probefile_write_predictions(FILE *fp, const ProbeFile *pf, int which, const Embeddings *e, int json, int header,
                            int64_t *nknown, int64_t *ncorrect)
{
	int64_t *pred = xcalloc(e->n ? (size_t)e->n : 1, sizeof *pred);
	double *prob = xcalloc(e->n ? (size_t)e->n : 1, sizeof *prob);
	int agree = same_classes(pf, e), bad = 0;
	*nknown = *ncorrect = 0;
	if (e->n)
		probefile_predict(pred, prob, pf, which, e->x, e->n);
	if (header && !json && fputs("id\tsource\tclass\tprobability\ttrue_class\n", fp) < 0)
		bad = 1;
	for (int64_t i = 0; i < e->n && !bad; i++) {
		int64_t y = e->labels[i];
		int known = agree && y >= 0 && y < pf->K;
		const char *cls = pf->classes[pred[i]];
		if (known) {
			(*nknown)++;
			*ncorrect += y == pred[i];
		}
		if (json) {
			json_t *o = json_object();
			char *line;
			json_object_set_new(o, "id", json_integer(e->ids[i]));
			json_object_set_new(o, "source", e->sources[i] ? json_string(e->sources[i]) : json_null());
			json_object_set_new(o, "class", json_string(cls));
			json_object_set_new(o, "label", json_integer(pred[i]));
			json_object_set_new(o, "probability", json_real(prob[i]));
			json_object_set_new(o, "true_class", known ? json_string(pf->classes[y]) : json_null());
			line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
			if (!line || fputs(line, fp) < 0 || putc('\n', fp) == EOF)
				bad = 1;
			free(line);
			json_decref(o);
		} else {
			bad |= fprintf(fp, "%lld\t", (long long)e->ids[i]) < 0 || fput_tsv(e->sources[i], fp) < 0
			       || putc('\t', fp) == EOF || fput_tsv(cls, fp) < 0 || fprintf(fp, "\t%.6f\t", prob[i]) < 0
			       || (known && fput_tsv(pf->classes[y], fp) < 0) || putc('\n', fp) == EOF;
		}
	}
	free(pred);
	free(prob);
	return bad ? -1 : 0;
}
