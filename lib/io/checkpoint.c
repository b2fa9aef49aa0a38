/* checkpoint: see checkpoint.h.
 *
 * The file is a msgfile (lib/io/msgfile.h): writing streams msgpack straight
 * into the atomic temporary file through a packer that also runs the CRC, so
 * a checkpoint never needs a second copy of the model in memory; reading
 * takes the whole file into memory and walks it with the bounded scanner of
 * msgpack_util.h before msgpack-c sees it, then checks format, version and
 * checksum. Tensors then borrow the file's bytes until restored. */
#include "io/checkpoint.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "io/msgfile.h"
#include "io/msgpack_util.h"
#include "base/util.h"

#define CK_MAX_FILE_BYTES  (INT64_C(1) << 36)  /* 64 GiB: far beyond any ResNet */
#define CK_MAX_TENSOR_BYTES (INT64_C(1) << 34)
#define CK_SCAN_MAX_DEPTH  8                   /* containers open at once; the format needs 4 */
#define CK_LIST_NAMES      3                   /* names quoted per mismatch kind */

/* ------------------------------------------------------------------ crc */

uint32_t
checkpoint_crc32(uint32_t crc, const void *data, size_t len)
{
	return msgfile_crc32(crc, data, len);
}

/* ------------------------------------------------------------ lifecycle */

typedef struct {
	char   name[TENSOR_MAX_NAME];
	Tensor t;        /* borrows the file's bytes */
} CkTensor;

typedef struct {
	MsgFile          file;
	CkTensor        *params;
	int              nparams;
	CkTensor        *state;
	int              nstate;
	char             path[256];
} CkPriv;

void
checkpoint_init(Checkpoint *ck)
{
	memset(ck, 0, sizeof *ck);
}

void
checkpoint_free(Checkpoint *ck)
{
	CkPriv *pv = ck->priv_;
	if (!pv)
		return; /* a save-only Checkpoint: the arrays are the caller's */
	free(ck->mean);
	free(ck->std);
	for (int i = 0; i < ck->nclasses; i++)
		free(ck->classes[i]);
	free(ck->classes);
	provenance_free(ck->prov, ck->nprov);
	msgfile_free(&pv->file);
	free(pv->params);
	free(pv->state);
	free(pv);
	checkpoint_init(ck);
}

/* --------------------------------------------------------------- saving */

static int
pack_kv_i64(msgpack_packer *pk, const char *k, int64_t v)
{
	return mpu_pack_str(pk, k) | msgpack_pack_int64(pk, v);
}

static int
pack_kv_f64(msgpack_packer *pk, const char *k, double v)
{
	return mpu_pack_str(pk, k) | msgpack_pack_double(pk, v);
}

static int
pack_kv_f32(msgpack_packer *pk, const char *k, float v)
{
	return mpu_pack_str(pk, k) | msgpack_pack_float(pk, v);
}

static int
pack_kv_bool(msgpack_packer *pk, const char *k, int v)
{
	return mpu_pack_str(pk, k) | (v ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
}

static int
pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
	return mpu_pack_str(pk, k) | mpu_pack_str(pk, v);
}

static int
pack_config(msgpack_packer *pk, const ModelConfig *c)
{
	ModelConfig cc = *c;
	int rc = msgpack_pack_map(pk, 3 + MODEL_CONFIG_NKEYS);
	rc |= pack_kv_str(pk, "arch", model_arch_name(c->arch));
	rc |= pack_kv_str(pk, "stem", model_stem_name(c->stem));
	for (int i = 0; i < MODEL_CONFIG_NKEYS; i++)
		rc |= pack_kv_i64(pk, model_config_keys[i].key, *model_config_field(&cc, &model_config_keys[i]));
	rc |= pack_kv_bool(pk, "zero_init_residual", c->zero_init_residual);
	return rc;
}

static int
pack_floats(msgpack_packer *pk, const char *k, const float *v, int n)
{
	int rc = mpu_pack_str(pk, k) | msgpack_pack_array(pk, (size_t)n);
	for (int i = 0; i < n; i++)
		rc |= msgpack_pack_float(pk, v[i]);
	return rc;
}

static int
pack_table(msgpack_packer *pk, const ParamTable *t)
{
	int rc = msgpack_pack_map(pk, (size_t)t->n);
	for (int i = 0; i < t->n && !rc; i++) {
		Tensor v = params_tensor(&t->e[i]);
		rc |= mpu_pack_str(pk, t->e[i].name);
		rc |= tensor_pack(pk, &v);
	}
	return rc;
}

static int
pack_optim(msgpack_packer *pk, const Checkpoint *ck, Optim *o)
{
	const OptimConfig *c = &ck->optim;
	int rc = msgpack_pack_map(pk, 11);
	rc |= pack_kv_str(pk, "kind", optim_kind_name(c->kind));
	rc |= pack_kv_f32(pk, "momentum", c->momentum);
	rc |= pack_kv_bool(pk, "nesterov", c->nesterov);
	rc |= pack_kv_f32(pk, "weight_decay", c->weight_decay);
	rc |= pack_kv_f32(pk, "trust_coef", c->trust_coef);
	rc |= pack_kv_f32(pk, "beta1", c->beta1);
	rc |= pack_kv_f32(pk, "beta2", c->beta2);
	rc |= pack_kv_f32(pk, "eps", c->eps);
	rc |= pack_kv_bool(pk, "decay_all", c->decay_all);
	rc |= pack_kv_i64(pk, "step", optim_get_step(o));
	rc |= mpu_pack_str(pk, "state");
	rc |= pack_table(pk, optim_state(o));
	return rc;
}

static int
pack_train(msgpack_packer *pk, const CheckpointTrain *t)
{
	int rc = msgpack_pack_map(pk, 23);
	rc |= pack_kv_str(pk, "objective", t->objective);
	rc |= pack_kv_str(pk, "precision", t->precision[0] ? t->precision : "fp32");
	rc |= pack_kv_i64(pk, "step", t->step);
	rc |= pack_kv_i64(pk, "epoch", t->epoch);
	rc |= pack_kv_i64(pk, "epoch_records", t->epoch_records);
	rc |= pack_kv_i64(pk, "first_epoch", t->first_epoch);
	rc |= pack_kv_i64(pk, "total_steps", t->total_steps);
	rc |= pack_kv_i64(pk, "warmup_steps", t->warmup_steps);
	rc |= pack_kv_i64(pk, "relaid_at", t->relaid_at);
	rc |= pack_kv_f64(pk, "relaid_phase", t->relaid_phase);
	rc |= pack_kv_i64(pk, "records_per_epoch", t->records_per_epoch);
	rc |= pack_kv_i64(pk, "epochs", t->epochs);
	rc |= pack_kv_i64(pk, "batch", t->batch);
	rc |= pack_kv_i64(pk, "min_tail", t->min_tail);
	rc |= pack_kv_f64(pk, "lr", t->lr);
	rc |= pack_kv_f64(pk, "lr_arg", t->lr_arg);
	rc |= pack_kv_bool(pk, "lr_abs", t->lr_abs);
	rc |= pack_kv_f64(pk, "warmup_epochs", t->warmup_epochs);
	rc |= pack_kv_f64(pk, "temperature", t->temperature);
	rc |= mpu_pack_str(pk, "seed") | msgpack_pack_uint64(pk, t->seed);
	rc |= pack_kv_i64(pk, "threads", t->threads);
	rc |= pack_kv_f64(pk, "loss", t->loss);
	rc |= pack_kv_str(pk, "rng", "counter-based: rng_for(seed, epoch, id, view); no hidden state");
	return rc;
}

/* The first non-finite value of a table, so a diverged run never replaces
 * its last good checkpoint. */
static const ParamEntry *
first_nonfinite(const ParamTable *t)
{
	for (int i = 0; i < t->n; i++) {
		const ParamEntry *e = &t->e[i];
		if (!e->data)
			continue;
		for (int64_t k = 0; k < e->numel; k++)
			if (!isfinite(e->data[k]))
				return e;
	}
	return NULL;
}

int
checkpoint_save(const char *path, const Checkpoint *ck, Model *m, Optim *o, char *err, size_t errlen)
{
	const ModelConfig *c = model_config(m);
	ParamTable *pt = model_params(m);
	const ParamEntry *bad;
	MsgFileWriter w;
	msgpack_packer *pk = &w.pk;
	int rc = 0;

	if (ck->has_optim && !o) {
		snprintf(err, errlen, "%s: internal error: optimizer state asked for without an optimizer", path);
		return -1;
	}
	if (!ck->mean || !ck->std) {
		snprintf(err, errlen, "%s: no normalisation to store", path);
		return -1;
	}
	if ((bad = first_nonfinite(pt)) || (ck->has_optim && (bad = first_nonfinite(optim_state(o))))) {
		snprintf(err, errlen, "%s: not written: '%s' holds a non-finite value", path, bad->name);
		return -1;
	}
	if (msgfile_writer_open(&w, path, err, errlen) < 0)
		return -1;
	rc |= msgpack_pack_map(pk, 8 + (ck->has_optim != 0) + (ck->has_train != 0));
	rc |= pack_kv_str(pk, "format", CHECKPOINT_FORMAT);
	rc |= mpu_pack_str(pk, "version") | msgpack_pack_array(pk, 2);
	rc |= msgpack_pack_int(pk, CHECKPOINT_VERSION_MAJOR) | msgpack_pack_int(pk, CHECKPOINT_VERSION_MINOR);
	rc |= mpu_pack_str(pk, "config") | pack_config(pk, c);
	rc |= mpu_pack_str(pk, "normalize") | msgpack_pack_map(pk, 2);
	rc |= pack_floats(pk, "mean", ck->mean, c->in_channels);
	rc |= pack_floats(pk, "std", ck->std, c->in_channels);
	rc |= mpu_pack_str(pk, "params") | pack_table(pk, pt);
	if (ck->has_optim)
		rc |= mpu_pack_str(pk, "optimizer") | pack_optim(pk, ck, o);
	if (ck->has_train)
		rc |= mpu_pack_str(pk, "train") | pack_train(pk, &ck->train);
	rc |= mpu_pack_str(pk, "classes") | msgpack_pack_array(pk, (size_t)ck->nclasses);
	for (int i = 0; i < ck->nclasses; i++)
		rc |= mpu_pack_str(pk, ck->classes[i]);
	rc |= mpu_pack_str(pk, "provenance") | provenance_pack(pk, ck->prov, ck->nprov);
	return msgfile_writer_commit(&w, rc, err, errlen);
}

/* -------------------------------------------------------------- decoding */

static int
decode_config(const msgpack_object *m, ModelConfig *c, char *why, size_t whylen)
{
	char s[32];
	const msgpack_object *o;
	int64_t v;
	memset(c, 0, sizeof *c);
	if (!(o = mpu_map_get(m, "arch")) || mpu_get_str(o, s, sizeof s) < 0 || model_arch_parse(s, &c->arch) < 0) {
		snprintf(why, whylen, "config: '%s' is missing or not a known architecture", "arch");
		return -1;
	}
	if (!(o = mpu_map_get(m, "stem")) || mpu_get_str(o, s, sizeof s) < 0 || model_stem_parse(s, &c->stem) < 0) {
		snprintf(why, whylen, "config: '%s' is missing or not a known stem", "stem");
		return -1;
	}
	for (int i = 0; i < MODEL_CONFIG_NKEYS; i++) {
		const ModelConfigKey *k = &model_config_keys[i];
		if (msgfile_get_int(m, "config", k->key, k->min, k->max, &v, why, whylen) < 0)
			return -1;
		*model_config_field(c, k) = (int)v;
	}
	if (msgfile_get_bool(m, "config", "zero_init_residual", &c->zero_init_residual, why, whylen) < 0)
		return -1;
	return 0;
}

static int
decode_floats(const msgpack_object *m, const char *key, int n, int positive, float **out, char *why, size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	float *v;
	if (!o || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != (uint32_t)n) {
		snprintf(why, whylen, "normalize: '%s' must be an array of %d numbers (one per input channel)", key, n);
		return -1;
	}
	v = xcalloc((size_t)n, sizeof *v);
	for (int i = 0; i < n; i++) {
		double d;
		if (mpu_get_f64(&o->via.array.ptr[i], &d) < 0 || !isfinite(d) || (positive && !(d > 0))) {
			snprintf(why, whylen, "normalize: %s[%d] must be a finite number%s", key, i, positive ? " above 0" : "");
			free(v);
			return -1;
		}
		v[i] = (float)d;
	}
	*out = v;
	return 0;
}

/* A map of name -> tensor into a CkTensor array (borrowing the file). */
static int
decode_tensors(const msgpack_object *m, const char *sect, CkTensor **out, int *nout, char *why, size_t whylen)
{
	CkTensor *a = xcalloc(m->via.map.size ? m->via.map.size : 1, sizeof *a);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];
		char tw[200];
		if (mpu_get_str(&kv->key, a[i].name, sizeof a[i].name) < 0 || !a[i].name[0]) {
			snprintf(why, whylen, "%s: entry %u: the name is empty, too long or not a string", sect, i);
			free(a);
			return -1;
		}
		if (tensor_unpack(&kv->val, &a[i].t, CK_MAX_TENSOR_BYTES, tw, sizeof tw) < 0) {
			snprintf(why, whylen, "%s: '%s': %s", sect, a[i].name, tw);
			free(a);
			return -1;
		}
		if (a[i].t.dtype != DTYPE_F32 && a[i].t.dtype != DTYPE_I64) {
			snprintf(why, whylen, "%s: '%s': dtype %s (want <f4 or <i8)", sect, a[i].name, dtype_str(a[i].t.dtype));
			free(a);
			return -1;
		}
		snprintf(a[i].t.name, sizeof a[i].t.name, "%s", a[i].name);
	}
	*out = a;
	*nout = (int)m->via.map.size;
	return 0;
}

static int
decode_optim(const msgpack_object *m, Checkpoint *ck, CkPriv *pv, char *why, size_t whylen)
{
	static const struct {
		const char *key;
		size_t      off;
	} floats[] = {
		{ "momentum", offsetof(OptimConfig, momentum) },     { "weight_decay", offsetof(OptimConfig, weight_decay) },
		{ "trust_coef", offsetof(OptimConfig, trust_coef) }, { "beta1", offsetof(OptimConfig, beta1) },
		{ "beta2", offsetof(OptimConfig, beta2) },           { "eps", offsetof(OptimConfig, eps) },
	};
	OptimConfig *c = &ck->optim;
	const msgpack_object *o, *state;
	char s[32];
	double d;
	if (!(o = mpu_map_get(m, "kind")) || mpu_get_str(o, s, sizeof s) < 0 || optim_kind_parse(s, &c->kind) < 0) {
		snprintf(why, whylen, "optimizer: 'kind' is missing or not one of sgd, lars, adamw");
		return -1;
	}
	optim_config_default(c, c->kind);
	for (size_t i = 0; i < sizeof floats / sizeof floats[0]; i++) {
		if (msgfile_get_f64(m, "optimizer", floats[i].key, &d, why, whylen) < 0)
			return -1;
		*(float *)((char *)c + floats[i].off) = (float)d;
	}
	if (msgfile_get_bool(m, "optimizer", "nesterov", &c->nesterov, why, whylen) < 0
	    || msgfile_get_bool(m, "optimizer", "decay_all", &c->decay_all, why, whylen) < 0
	    || msgfile_get_int(m, "optimizer", "step", 0, INT64_MAX, &ck->optim_step, why, whylen) < 0
	    || msgfile_get_map(m, "optimizer: ", "state", 1, &state, why, whylen) < 0)
		return -1;
	return decode_tensors(state, "optimizer state", &pv->state, &pv->nstate, why, whylen);
}

static int
decode_train(const msgpack_object *m, CheckpointTrain *t, char *why, size_t whylen)
{
	static const struct {
		const char *key;
		size_t      off;
		int64_t     min;
	} ints[] = {
		{ "step", offsetof(CheckpointTrain, step), 0 },
		{ "epoch", offsetof(CheckpointTrain, epoch), 0 },
		{ "epoch_records", offsetof(CheckpointTrain, epoch_records), 0 },
		{ "first_epoch", offsetof(CheckpointTrain, first_epoch), 0 },
		{ "total_steps", offsetof(CheckpointTrain, total_steps), 0 },
		{ "warmup_steps", offsetof(CheckpointTrain, warmup_steps), 0 },
		{ "records_per_epoch", offsetof(CheckpointTrain, records_per_epoch), -1 },
		{ "epochs", offsetof(CheckpointTrain, epochs), -1 },
	};
	static const struct {
		const char *key;
		size_t      off;
	} dbls[] = {
		{ "lr", offsetof(CheckpointTrain, lr) },
		{ "lr_arg", offsetof(CheckpointTrain, lr_arg) },
		{ "warmup_epochs", offsetof(CheckpointTrain, warmup_epochs) },
		{ "temperature", offsetof(CheckpointTrain, temperature) },
		{ "loss", offsetof(CheckpointTrain, loss) },
	};
	const msgpack_object *o;
	int64_t v;
	memset(t, 0, sizeof *t);
	if (!(o = mpu_map_get(m, "objective")) || mpu_get_str(o, t->objective, sizeof t->objective) < 0) {
		snprintf(why, whylen, "train: 'objective' is missing or not a short string");
		return -1;
	}
	strcpy(t->precision, "fp32");
	if ((o = mpu_map_get(m, "precision")) &&
	    (mpu_get_str(o, t->precision, sizeof t->precision) < 0 ||
	     (strcmp(t->precision, "fp32") != 0 && strcmp(t->precision, "bf16") != 0))) {
		snprintf(why, whylen, "train: 'precision' is neither \"fp32\" nor \"bf16\"");
		return -1;
	}
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if (msgfile_get_int(m, "train", ints[i].key, ints[i].min, INT64_MAX, (int64_t *)((char *)t + ints[i].off), why,
		            whylen) < 0)
			return -1;
	for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
		/* The last loss may be anything a person wants to see, even NaN. */
		if (strcmp(dbls[i].key, "loss") == 0 && (o = mpu_map_get(m, "loss")) && mpu_get_f64(o, &t->loss) == 0)
			continue;
		if (msgfile_get_f64(m, "train", dbls[i].key, (double *)((char *)t + dbls[i].off), why, whylen) < 0)
			return -1;
	}
	if (msgfile_get_int(m, "train", "batch", 1, INT32_MAX, &v, why, whylen) < 0)
		return -1;
	t->batch = (int)v;
	/* Written since short tails are dropped; older runs (and 0) trained on every tail. */
	t->min_tail = 1;
	if (mpu_map_get(m, "min_tail")) {
		if (msgfile_get_int(m, "train", "min_tail", 0, INT32_MAX, &v, why, whylen) < 0)
			return -1;
		t->min_tail = v > 0 ? (int)v : 1;
	}
	/* Written since budget re-plans re-lay the cosine; older files laid it once. */
	if (mpu_map_get(m, "relaid_at") &&
	    (msgfile_get_int(m, "train", "relaid_at", 0, INT64_MAX, &t->relaid_at, why, whylen) < 0 ||
	     msgfile_get_f64(m, "train", "relaid_phase", &t->relaid_phase, why, whylen) < 0))
		return -1;
	/* A re-plan happens at a step already taken, after warm-up. */
	if (t->relaid_at > 0 && (t->relaid_at <= t->warmup_steps || t->relaid_at > t->step ||
	                         !(t->relaid_phase >= 0 && t->relaid_phase < 1))) {
		snprintf(why, whylen, "train: relaid_at %lld (phase %g) is not a step of the cosine already taken "
		         "(warm-up %lld, step %lld) with a phase in [0, 1)", (long long)t->relaid_at, t->relaid_phase,
		         (long long)t->warmup_steps, (long long)t->step);
		return -1;
	}
	if (msgfile_get_int(m, "train", "threads", 0, 1 << 16, &v, why, whylen) < 0)
		return -1;
	t->threads = (int)v;
	if (msgfile_get_bool(m, "train", "lr_abs", &t->lr_abs, why, whylen) < 0)
		return -1;
	if (!(o = mpu_map_get(m, "seed")) || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) {
		snprintf(why, whylen, "train: 'seed' is missing or not a non-negative integer");
		return -1;
	}
	t->seed = o->via.u64;
	if (t->step > t->total_steps) {
		snprintf(why, whylen, "train: step %lld is past total_steps %lld", (long long)t->step,
		         (long long)t->total_steps);
		return -1;
	}
	return 0;
}

static int
decode_classes(const msgpack_object *o, Checkpoint *ck, char *why, size_t whylen)
{
	if (o->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(why, whylen, "'classes' must be an array");
		return -1;
	}
	ck->classes = xcalloc(o->via.array.size ? o->via.array.size : 1, sizeof *ck->classes);
	for (uint32_t i = 0; i < o->via.array.size; i++) {
		if (!(ck->classes[i] = mpu_strdup(&o->via.array.ptr[i]))) {
			snprintf(why, whylen, "classes[%u] is not a string", i);
			return -1;
		}
		ck->nclasses++;
	}
	return 0;
}

static const MsgFileSpec ck_spec = {
	CHECKPOINT_FORMAT, "checkpoint", "ssl-train", CHECKPOINT_VERSION_MAJOR, CHECKPOINT_VERSION_MINOR,
	CK_MAX_FILE_BYTES, CK_SCAN_MAX_DEPTH,
};

/* The contents of a checked file (format, version and checksum: msgfile_load). */
static int
load(Checkpoint *ck, CkPriv *pv, char *why, size_t whylen)
{
	const msgpack_object *root = &pv->file.root, *o, *cfg, *norm, *params, *optm, *train;

	if (msgfile_get_map(root, "", "config", 1, &cfg, why, whylen) < 0 || decode_config(cfg, &ck->config, why, whylen) < 0)
		return -1;
	{
		char cw[200];
		if (model_config_check(&ck->config, cw, sizeof cw) < 0) {
			snprintf(why, whylen, "config: %s", cw);
			return -1;
		}
	}
	if (msgfile_get_map(root, "", "normalize", 1, &norm, why, whylen) < 0
	    || decode_floats(norm, "mean", ck->config.in_channels, 0, &ck->mean, why, whylen) < 0
	    || decode_floats(norm, "std", ck->config.in_channels, 1, &ck->std, why, whylen) < 0)
		return -1;
	if (msgfile_get_map(root, "", "params", 1, &params, why, whylen) < 0
	    || decode_tensors(params, "params", &pv->params, &pv->nparams, why, whylen) < 0)
		return -1;
	if (msgfile_get_map(root, "", "optimizer", 0, &optm, why, whylen) < 0)
		return -1;
	if (optm) {
		if (decode_optim(optm, ck, pv, why, whylen) < 0)
			return -1;
		ck->has_optim = 1;
	}
	if (msgfile_get_map(root, "", "train", 0, &train, why, whylen) < 0)
		return -1;
	if (train) {
		if (decode_train(train, &ck->train, why, whylen) < 0)
			return -1;
		ck->has_train = 1;
	}
	if ((o = mpu_map_get(root, "classes")) && decode_classes(o, ck, why, whylen) < 0)
		return -1;
	if ((o = mpu_map_get(root, "provenance")) && provenance_decode(o, &ck->prov, &ck->nprov, why, whylen) < 0)
		return -1;
	return 0;
}

int
checkpoint_load(Checkpoint *ck, const char *path, char *err, size_t errlen)
{
	CkPriv *pv = xcalloc(1, sizeof *pv);
	char why[512];
	checkpoint_init(ck);
	ck->priv_ = pv;
	snprintf(pv->path, sizeof pv->path, "%s", path);
	if (msgfile_load(&pv->file, path, &ck_spec, why, sizeof why) < 0 || load(ck, pv, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		checkpoint_free(ck);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------ restoring */

int
checkpoint_check_config(const Checkpoint *ck, const ModelConfig *want, char *err, size_t errlen)
{
	const ModelConfig *c = &ck->config;
	size_t used = 0;
	int bad = 0;
#define CK_CMP(field, fmt, a, b)                                                                                  \
	do {                                                                                                          \
		if (c->field != want->field) {                                                                            \
			if (used < errlen)                                                                                    \
				used += (size_t)snprintf(err + used, errlen - used, "%s" #field " " fmt " in the checkpoint, " fmt \
				                         " expected",                                                             \
				                         bad ? "; " : "", a, b);                                                  \
			bad++;                                                                                                \
		}                                                                                                         \
	} while (0)
	CK_CMP(arch, "%s", model_arch_name(c->arch), model_arch_name(want->arch));
	CK_CMP(stem, "%s", model_stem_name(c->stem), model_stem_name(want->stem));
	CK_CMP(width, "%d", c->width, want->width);
	CK_CMP(in_channels, "%d", c->in_channels, want->in_channels);
	CK_CMP(in_h, "%d", c->in_h, want->in_h);
	CK_CMP(in_w, "%d", c->in_w, want->in_w);
	CK_CMP(proj_layers, "%d", c->proj_layers, want->proj_layers);
	CK_CMP(proj_hidden, "%d", c->proj_hidden, want->proj_hidden);
	CK_CMP(proj_dim, "%d", c->proj_dim, want->proj_dim);
	CK_CMP(num_classes, "%d", c->num_classes, want->num_classes);
	CK_CMP(zero_init_residual, "%d", c->zero_init_residual, want->zero_init_residual);
#undef CK_CMP
	return bad ? -1 : 0;
}

static int
is_head(const char *name)
{
	return strncmp(name, "head.", 5) == 0 || strncmp(name, "fc.", 3) == 0;
}

static const CkTensor *
find(const CkTensor *a, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(a[i].name, name) == 0)
			return &a[i];
	return NULL;
}

/* Appends a name to a list "a, b, c" (up to CK_LIST_NAMES). */
static void
list_add(char *buf, size_t len, int *count, const char *name)
{
	size_t used = strlen(buf);
	if (*count < CK_LIST_NAMES && used < len)
		snprintf(buf + used, len - used, "%s'%s'", *count ? ", " : "", name);
	(*count)++;
}

static int
restore(const CkTensor *a, int n, ParamTable *t, unsigned flags, const char *what, char *err, size_t errlen)
{
	char missing[256] = "", extra[256] = "", s1[64], s2[64];
	int nmissing = 0, nextra = 0;
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		const CkTensor *c;
		Tensor want;
		if ((flags & CHECKPOINT_ENCODER_ONLY) && is_head(e->name))
			continue;
		if (!(c = find(a, n, e->name))) {
			list_add(missing, sizeof missing, &nmissing, e->name);
			continue;
		}
		want = params_tensor(e);
		if (c->t.dtype != want.dtype) {
			snprintf(err, errlen, "%s '%s': dtype %s in the checkpoint, %s in the model", what, e->name,
			         dtype_str(c->t.dtype), dtype_str(want.dtype));
			return -1;
		}
		if (!tensor_same_shape(&c->t, &want)) {
			snprintf(err, errlen, "%s '%s': shape [%s] in the checkpoint, [%s] in the model", what, e->name,
			         tensor_shape_str(&c->t, s1, sizeof s1), tensor_shape_str(&want, s2, sizeof s2));
			return -1;
		}
	}
	for (int i = 0; i < n; i++) {
		if ((flags & CHECKPOINT_ENCODER_ONLY) && is_head(a[i].name))
			continue;
		if (!params_find(t, a[i].name))
			list_add(extra, sizeof extra, &nextra, a[i].name);
	}
	if (nmissing || nextra) {
		size_t used = (size_t)snprintf(err, errlen, "%s do not match the model:", what);
		if (nmissing && used < errlen)
			used += (size_t)snprintf(err + used, errlen - used, " %d missing (%s%s)", nmissing, missing,
			                         nmissing > CK_LIST_NAMES ? ", ..." : "");
		if (nextra && used < errlen)
			snprintf(err + used, errlen - used, "%s %d not in the model (%s%s)", nmissing ? ";" : "", nextra, extra,
			         nextra > CK_LIST_NAMES ? ", ..." : "");
		return -1;
	}
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		const CkTensor *c;
		if ((flags & CHECKPOINT_ENCODER_ONLY) && is_head(e->name))
			continue;
		c = find(a, n, e->name);
		memcpy(e->data ? (void *)e->data : (void *)e->i64, c->t.data, tensor_nbytes(&c->t));
	}
	return 0;
}

int
checkpoint_restore_params(const Checkpoint *ck, ParamTable *t, unsigned flags, char *err, size_t errlen)
{
	const CkPriv *pv = ck->priv_;
	char why[512];
	if (!pv) {
		snprintf(err, errlen, "checkpoint not loaded");
		return -1;
	}
	if (restore(pv->params, pv->nparams, t, flags, "parameters", why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", pv->path, why);
		return -1;
	}
	return 0;
}

int
checkpoint_restore_model(const Checkpoint *ck, Model *m, unsigned flags, char *err, size_t errlen)
{
	return checkpoint_restore_params(ck, model_params(m), flags, err, errlen);
}

int
checkpoint_restore_optim(const Checkpoint *ck, Optim *o, char *err, size_t errlen)
{
	const CkPriv *pv = ck->priv_;
	char why[512];
	if (!pv || !ck->has_optim) {
		snprintf(err, errlen, "%s: the checkpoint holds no optimizer state", pv ? pv->path : "checkpoint");
		return -1;
	}
	if (restore(pv->state, pv->nstate, optim_state(o), 0, "optimizer state", why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", pv->path, why);
		return -1;
	}
	optim_set_step(o, ck->optim_step);
	return 0;
}
