/* checkpoint_save: writing a checkpoint (checkpoint.h): the model's
 * config, normalisation, tensors, optimizer state and run state as one
 * msgpack map, its CRC-32 last, written atomically; refused when a value
 * is not finite. */
#include "io/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomicfile.h"
#include "base/util.h"
#include "io/msgpack_util.h"

typedef struct {
	FILE    *fp;
	uint32_t crc;
	uint64_t bytes;
	int      failed;
} CkWriter;

static int
ck_write(void *data, const char *buf, size_t len)
{
	CkWriter *w = data;
	if (w->failed)
		return -1;
	if (len && fwrite(buf, 1, len, w->fp) != len) {
		w->failed = 1;
		return -1;
	}
	w->crc = checkpoint_crc32(w->crc, buf, len);
	w->bytes += len;
	return 0;
}

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
	int rc = msgpack_pack_map(pk, 19);
	rc |= pack_kv_str(pk, "objective", t->objective);
	rc |= pack_kv_i64(pk, "step", t->step);
	rc |= pack_kv_i64(pk, "epoch", t->epoch);
	rc |= pack_kv_i64(pk, "epoch_records", t->epoch_records);
	rc |= pack_kv_i64(pk, "first_epoch", t->first_epoch);
	rc |= pack_kv_i64(pk, "total_steps", t->total_steps);
	rc |= pack_kv_i64(pk, "warmup_steps", t->warmup_steps);
	rc |= pack_kv_i64(pk, "records_per_epoch", t->records_per_epoch);
	rc |= pack_kv_i64(pk, "epochs", t->epochs);
	rc |= pack_kv_i64(pk, "batch", t->batch);
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
	AtomicFile af;
	CkWriter w = { 0 };
	msgpack_packer pk;
	unsigned char tail[5];
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
	if (atomicfile_open(&af, path) < 0) {
		snprintf(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
		return -1;
	}
	setvbuf(af.fp, NULL, _IOFBF, 1 << 20);
	w.fp = af.fp;
	msgpack_packer_init(&pk, &w, ck_write);
	rc |= msgpack_pack_map(&pk, 8 + (ck->has_optim != 0) + (ck->has_train != 0));
	rc |= pack_kv_str(&pk, "format", CHECKPOINT_FORMAT);
	rc |= mpu_pack_str(&pk, "version") | msgpack_pack_array(&pk, 2);
	rc |= msgpack_pack_int(&pk, CHECKPOINT_VERSION_MAJOR) | msgpack_pack_int(&pk, CHECKPOINT_VERSION_MINOR);
	rc |= mpu_pack_str(&pk, "config") | pack_config(&pk, c);
	rc |= mpu_pack_str(&pk, "normalize") | msgpack_pack_map(&pk, 2);
	rc |= pack_floats(&pk, "mean", ck->mean, c->in_channels);
	rc |= pack_floats(&pk, "std", ck->std, c->in_channels);
	rc |= mpu_pack_str(&pk, "params") | pack_table(&pk, pt);
	if (ck->has_optim)
		rc |= mpu_pack_str(&pk, "optimizer") | pack_optim(&pk, ck, o);
	if (ck->has_train)
		rc |= mpu_pack_str(&pk, "train") | pack_train(&pk, &ck->train);
	rc |= mpu_pack_str(&pk, "classes") | msgpack_pack_array(&pk, (size_t)ck->nclasses);
	for (int i = 0; i < ck->nclasses; i++)
		rc |= mpu_pack_str(&pk, ck->classes[i]);
	rc |= mpu_pack_str(&pk, "provenance") | provenance_pack(&pk, ck->prov, ck->nprov);
	rc |= mpu_pack_str(&pk, "checksum");
	/* The value is written by hand so that its encoding (and so the bytes
	 * the CRC covers) is fixed: uint32, 0xce and 4 big-endian bytes. */
	tail[0] = 0xce;
	tail[1] = (unsigned char)(w.crc >> 24);
	tail[2] = (unsigned char)(w.crc >> 16);
	tail[3] = (unsigned char)(w.crc >> 8);
	tail[4] = (unsigned char)w.crc;
	if (!rc && !w.failed && fwrite(tail, 1, sizeof tail, af.fp) != sizeof tail)
		w.failed = 1;
	if (rc || w.failed) {
		int e = errno;
		atomicfile_abort(&af);
		snprintf(err, errlen, "%s: write failed: %s", path, w.failed && e ? strerror(e) : "packing error");
		return -1;
	}
	if (atomicfile_commit(&af) < 0) {
		snprintf(err, errlen, "%s: %s (the previous file, if any, is intact)", path, strerror(errno));
		return -1;
	}
	return 0;
}

