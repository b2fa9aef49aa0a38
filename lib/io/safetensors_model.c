/* safetensors_model: a model's weights as safetensors (safetensors.h):
 * export under torchvision's names with the config and normalisation as
 * metadata, the config read back from that metadata or inferred from the
 * tensors, and the weights restored into a model's table. */
#include "io/safetensors.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define ST_LIST_NAMES 4 /* names quoted per kind of mismatch */

static int
is_head(const char *name)
{
	return strncmp(name, "head.", 5) == 0;
}

static int
is_fc(const char *name)
{
	return strncmp(name, "fc.", 3) == 0;
}

/* Whether a name belongs to the parts that flags select. */
static int
selected(const char *name, unsigned flags)
{
	if (is_head(name))
		return (flags & ST_MODEL_HEAD) != 0;
	if (is_fc(name))
		return (flags & ST_MODEL_FC) != 0;
	return 1;
}

static json_t *
config_json(const ModelConfig *c)
{
	ModelConfig cc = *c;
	json_t *o = json_pack("{s:s, s:s}", "arch", model_arch_name(c->arch), "stem", model_stem_name(c->stem));
	for (int i = 0; o && i < MODEL_CONFIG_NKEYS; i++)
		json_object_set_new(o, model_config_keys[i].key,
		                    json_integer(*model_config_field(&cc, &model_config_keys[i])));
	if (o)
		json_object_set_new(o, "zero_init_residual", json_boolean(c->zero_init_residual));
	return o;
}

int
safetensors_export_model(const char *path, const ModelConfig *c, const float *mean, const float *std,
                         const ParamTable *t, unsigned flags, char *err, size_t errlen)
{
	ModelConfig fc = *c;
	StWriteTensor *w = xcalloc(t->n ? (size_t)t->n : 1, sizeof *w);
	StMeta meta[4];
	json_t *norm, *jm = json_array(), *js = json_array();
	char *cfg_s, *norm_s, version[64];
	int n = 0, rc;
	if ((flags & ST_MODEL_HEAD) && !c->proj_layers) {
		snprintf(err, errlen, "%s: the model has no projection head to export", path);
		free(w);
		json_decref(jm);
		json_decref(js);
		return -1;
	}
	if ((flags & ST_MODEL_FC) && !c->num_classes) {
		snprintf(err, errlen, "%s: the model has no classifier (fc) to export", path);
		free(w);
		json_decref(jm);
		json_decref(js);
		return -1;
	}
	if (!(flags & ST_MODEL_HEAD))
		fc.proj_layers = fc.proj_hidden = fc.proj_dim = 0;
	if (!(flags & ST_MODEL_FC))
		fc.num_classes = 0;
	for (int i = 0; i < t->n; i++) {
		const ParamEntry *e = &t->e[i];
		if (!selected(e->name, flags))
			continue;
		w[n].name = e->name;
		w[n].dtype = e->dtype == DTYPE_I64 ? ST_I64 : ST_F32;
		w[n].ndim = e->ndim;
		w[n].shape = e->shape;
		w[n].data = e->dtype == DTYPE_I64 ? (const void *)e->i64 : (const void *)e->data;
		n++;
	}
	for (int i = 0; i < c->in_channels; i++) {
		json_array_append_new(jm, json_real(mean[i]));
		json_array_append_new(js, json_real(std[i]));
	}
	norm = json_pack("{s:o, s:o}", "mean", jm, "std", js);
	{
		json_t *cj = config_json(&fc);
		cfg_s = json_dumps(cj, JSON_COMPACT);
		json_decref(cj);
	}
	norm_s = json_dumps(norm, JSON_COMPACT);
	json_decref(norm);
	if (!cfg_s || !norm_s) {
		snprintf(err, errlen, "%s: the metadata could not be formatted", path);
		free(cfg_s);
		free(norm_s);
		free(w);
		return -1;
	}
	snprintf(version, sizeof version, "ssl-tools %s", SSL_VERSION);
	meta[0] = (StMeta){ "format", "pt" };
	meta[1] = (StMeta){ SAFETENSORS_META_CONFIG, cfg_s };
	meta[2] = (StMeta){ SAFETENSORS_META_NORMALIZE, norm_s };
	meta[3] = (StMeta){ "ssl_tools.version", version };
	rc = safetensors_write(path, w, n, meta, 4, err, errlen);
	free(cfg_s);
	free(norm_s);
	free(w);
	return rc;
}

static int
get_int(json_t *o, const char *key, int min, int max, int *out, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, key);
	if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(why, whylen, "'%s' is missing or not an integer in [%d, %d]", key, min, max);
		return -1;
	}
	*out = (int)json_integer_value(v);
	return 0;
}

static int
get_floats(json_t *o, const char *key, int n, int positive, float *out, char *why, size_t whylen)
{
	json_t *a = json_object_get(o, key);
	if (!json_is_array(a) || json_array_size(a) != (size_t)n) {
		snprintf(why, whylen, "'%s' is not an array of %d numbers (one per input channel)", key, n);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		json_t *v = json_array_get(a, (size_t)i);
		double d = json_number_value(v);
		if (!json_is_number(v) || !isfinite(d) || (positive && !(d > 0)) || fabs(d) > 1e6) {
			snprintf(why, whylen, "%s[%d] is not a finite number%s", key, i, positive ? " above 0" : "");
			return -1;
		}
		out[i] = (float)d;
	}
	return 0;
}

int
safetensors_model_config(const SafeTensors *st, ModelConfig *c, float *mean, float *std, char *err, size_t errlen)
{
	const char *cs = safetensors_meta(st, SAFETENSORS_META_CONFIG), *ns = safetensors_meta(st, SAFETENSORS_META_NORMALIZE);
	json_t *cj = NULL, *nj = NULL, *v;
	json_error_t jerr;
	char why[256], what[300];
	int rc = -1;
	if (!cs)
		return 0;
	memset(c, 0, sizeof *c);
	snprintf(what, sizeof what, "metadata %s", SAFETENSORS_META_CONFIG);
	if (!(cj = json_loads(cs, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(why, sizeof why, "JSON error at byte %d: %s", jerr.position, jerr.text);
		goto out;
	}
	if (!json_is_object(cj)) {
		snprintf(why, sizeof why, "not a JSON object");
		goto out;
	}
	v = json_object_get(cj, "arch");
	if (!json_is_string(v) || model_arch_parse(json_string_value(v), &c->arch) < 0) {
		snprintf(why, sizeof why, "'arch' is missing or not resnet18, resnet34 or resnet50");
		goto out;
	}
	v = json_object_get(cj, "stem");
	if (!json_is_string(v) || model_stem_parse(json_string_value(v), &c->stem) < 0) {
		snprintf(why, sizeof why, "'stem' is missing or not cifar or imagenet");
		goto out;
	}
	for (int i = 0; i < MODEL_CONFIG_NKEYS; i++) {
		const ModelConfigKey *k = &model_config_keys[i];
		if (get_int(cj, k->key, k->min, k->max, model_config_field(c, k), why, sizeof why) < 0)
			goto out;
	}
	v = json_object_get(cj, "zero_init_residual");
	c->zero_init_residual = v && json_is_true(v);
	if (model_config_check(c, why, sizeof why) < 0)
		goto out;
	snprintf(what, sizeof what, "metadata %s", SAFETENSORS_META_NORMALIZE);
	if (!ns) {
		snprintf(why, sizeof why, "missing (the file has %s)", SAFETENSORS_META_CONFIG);
		goto out;
	}
	if (!(nj = json_loads(ns, JSON_REJECT_DUPLICATES, &jerr))) {
		snprintf(why, sizeof why, "JSON error at byte %d: %s", jerr.position, jerr.text);
		goto out;
	}
	if (get_floats(nj, "mean", c->in_channels, 0, mean, why, sizeof why) < 0 ||
	    get_floats(nj, "std", c->in_channels, 1, std, why, sizeof why) < 0)
		goto out;
	rc = 1;
out:
	if (rc < 0)
		snprintf(err, errlen, "%s: %s: %s", st->name, what, why);
	json_decref(cj);
	json_decref(nj);
	return rc;
}

/* Shapes by name, from a file or from a table, so one inference describes
 * both sides of a mismatch. */
typedef const int64_t *(*ShapeFn)(const void *ctx, const char *name, int *ndim);

static const int64_t *
file_shape(const void *ctx, const char *name, int *ndim)
{
	const StTensor *t = safetensors_find(ctx, name);
	if (!t)
		return NULL;
	*ndim = t->ndim;
	return t->shape;
}

static const int64_t *
table_shape(const void *ctx, const char *name, int *ndim)
{
	const ParamEntry *e = params_find(ctx, name);
	if (!e)
		return NULL;
	*ndim = e->ndim;
	return e->shape;
}

static int
infer(ShapeFn shape_of, const void *ctx, ModelConfig *c, char *why, size_t whylen)
{
	static const int basic18[4] = { 2, 2, 2, 2 }, deep[4] = { 3, 4, 6, 3 };
	const int64_t *s;
	int nd, blocks[4], bottleneck, D;
	char name[64];
	memset(c, 0, sizeof *c);
	if (!(s = shape_of(ctx, "conv1.weight", &nd)) || nd != 4 || s[2] != s[3] || (s[2] != 3 && s[2] != 7) ||
	    s[0] < 1 || s[0] > 1024 || s[1] < 1 || s[1] > 1024) {
		snprintf(why, whylen, "no conv1.weight of a 3x3 (cifar) or 7x7 (imagenet) stem");
		return -1;
	}
	c->stem = s[2] == 3 ? STEM_CIFAR : STEM_IMAGENET;
	c->width = (int)s[0];
	c->in_channels = (int)s[1];
	bottleneck = shape_of(ctx, "layer1.0.conv3.weight", &nd) != NULL;
	for (int st = 0; st < 4; st++) {
		blocks[st] = 0;
		for (;;) {
			snprintf(name, sizeof name, "layer%d.%d.conv1.weight", st + 1, blocks[st]);
			if (!shape_of(ctx, name, &nd) || blocks[st] > 64)
				break;
			blocks[st]++;
		}
	}
	if (!bottleneck && memcmp(blocks, basic18, sizeof blocks) == 0)
		c->arch = ARCH_RESNET18;
	else if (!bottleneck && memcmp(blocks, deep, sizeof blocks) == 0)
		c->arch = ARCH_RESNET34;
	else if (bottleneck && memcmp(blocks, deep, sizeof blocks) == 0)
		c->arch = ARCH_RESNET50;
	else {
		snprintf(why, whylen, "%s blocks per stage %d, %d, %d, %d: not resnet18, resnet34 or resnet50",
		         bottleneck ? "bottleneck" : "basic", blocks[0], blocks[1], blocks[2], blocks[3]);
		return -1;
	}
	D = (bottleneck ? 32 : 8) * c->width;
	if ((s = shape_of(ctx, "head.0.weight", &nd)) && nd == 2 && s[1] == D && s[0] >= 1 && s[0] <= 65536) {
		const int64_t *last;
		c->proj_hidden = (int)s[0];
		c->proj_layers = shape_of(ctx, "head.6.weight", &nd) ? 3 : 2;
		last = shape_of(ctx, c->proj_layers == 3 ? "head.6.weight" : "head.3.weight", &nd);
		if (last && nd == 2 && last[0] >= 1 && last[0] <= 65536)
			c->proj_dim = (int)last[0];
		else
			c->proj_layers = c->proj_hidden = 0;
	}
	if ((s = shape_of(ctx, "fc.weight", &nd)) && nd == 2 && s[1] == D && s[0] <= 1000000)
		c->num_classes = (int)s[0];
	return 0;
}

int
safetensors_infer_config(const SafeTensors *st, ModelConfig *c, char *err, size_t errlen)
{
	char why[256];
	if (infer(file_shape, st, c, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", st->name, why);
		return -1;
	}
	return 0;
}

static void
list_add(char *buf, size_t len, int *count, const char *item, const char *sep)
{
	size_t used = strlen(buf);
	if (*count < ST_LIST_NAMES && used < len)
		snprintf(buf + used, len - used, "%s%s", *count ? sep : "", item);
	else if (*count == ST_LIST_NAMES && used < len)
		snprintf(buf + used, len - used, "%s...", sep);
	(*count)++;
}

static void
describe(const ModelConfig *c, char *buf, size_t len)
{
	snprintf(buf, len, "%s, %s stem, width %d, %d input channel%s", model_arch_name(c->arch), model_stem_name(c->stem),
	         c->width, c->in_channels, c->in_channels == 1 ? "" : "s");
}

int
safetensors_restore(const SafeTensors *st, ParamTable *t, unsigned flags, int *ignored, char *err, size_t errlen)
{
	char missing[300] = "", extra[300] = "", shapes[600] = "", dts[300] = "", item[300], s1[96], s2[96];
	int nmissing = 0, nextra = 0, nshapes = 0, ndts = 0, nignored = 0, parts = 0;
	for (int i = 0; i < t->n; i++) {
		const ParamEntry *e = &t->e[i];
		const StTensor *f;
		if (!selected(e->name, flags))
			continue;
		if (!(f = safetensors_find(st, e->name))) {
			snprintf(item, sizeof item, "'%s'", e->name);
			list_add(missing, sizeof missing, &nmissing, item, ", ");
			continue;
		}
		if (f->ndim != e->ndim || memcmp(f->shape, e->shape, sizeof(int64_t) * (size_t)e->ndim) != 0) {
			snprintf(item, sizeof item, "'%s' %s in the file, %s in the model", e->name,
			         safetensors_shape_str(f->shape, f->ndim, s1, sizeof s1), safetensors_shape_str(e->shape, e->ndim, s2, sizeof s2));
			list_add(shapes, sizeof shapes, &nshapes, item, "; ");
			continue;
		}
		if (e->dtype == DTYPE_I64 ? f->dtype != ST_I64
		                          : f->dtype != ST_F32 && f->dtype != ST_F64 && f->dtype != ST_F16 && f->dtype != ST_BF16) {
			snprintf(item, sizeof item, "'%s' %s in the file, %s in the model", e->name,
			         safetensors_dtype_name(f->dtype), e->dtype == DTYPE_I64 ? "I64" : "F32 (or F64, F16, BF16)");
			list_add(dts, sizeof dts, &ndts, item, "; ");
		}
	}
	for (int i = 0; i < st->ntensors; i++) {
		const char *name = st->t[i].name;
		if (!selected(name, flags))
			nignored++;
		else if (!params_find(t, name)) {
			snprintf(item, sizeof item, "'%.100s'", name);
			list_add(extra, sizeof extra, &nextra, item, ", ");
		}
	}
	if (nmissing || nextra || nshapes || ndts) {
		ModelConfig fcfg, mcfg;
		char why[64], d1[128], d2[128];
		size_t u = (size_t)snprintf(err, errlen, "%s: does not match the model:", st->name);
#define PART(n, list, what)                                                                                   \
	do {                                                                                                      \
		if ((n) && u < errlen)                                                                                \
			u += (size_t)snprintf(err + u, errlen - u, "%s %d %s (%s)", parts++ ? "." : "", (n), (what), \
			                      (list));                                                                    \
	} while (0)
		PART(nmissing, missing, nmissing == 1 ? "tensor missing" : "tensors missing");
		PART(nextra, extra, nextra == 1 ? "tensor not in the model" : "tensors not in the model");
		PART(nshapes, shapes, nshapes == 1 ? "shape differs" : "shapes differ");
		PART(ndts, dts, ndts == 1 ? "dtype differs" : "dtypes differ");
#undef PART
		if (infer(file_shape, st, &fcfg, why, sizeof why) == 0 && infer(table_shape, t, &mcfg, why, sizeof why) == 0 &&
		    (fcfg.arch != mcfg.arch || fcfg.stem != mcfg.stem || fcfg.width != mcfg.width ||
		     fcfg.in_channels != mcfg.in_channels) &&
		    u < errlen) {
			describe(&fcfg, d1, sizeof d1);
			describe(&mcfg, d2, sizeof d2);
			snprintf(err + u, errlen - u, ". The file holds %s; the model is %s", d1, d2);
		}
		return -1;
	}
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		const StTensor *f;
		if (!selected(e->name, flags))
			continue;
		f = safetensors_find(st, e->name);
		if (e->dtype == DTYPE_I64) {
			memcpy(e->i64, f->data, sizeof(int64_t) * (size_t)e->numel);
		} else if (safetensors_read_f32(f, e->data, item, sizeof item) < 0) {
			snprintf(err, errlen, "%s: %s", st->name, item);
			return -1;
		}
	}
	if (ignored)
		*ignored = nignored;
	return 0;
}
