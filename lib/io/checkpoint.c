/* checkpoint: see checkpoint.h.
 *
 * Writing streams msgpack straight into the atomic temporary file through a
 * packer callback that also runs the CRC, so a checkpoint never needs a
 * second copy of the model in memory.
 *
 * Reading takes the whole file into memory, then walks the msgpack bytes
 * once with the scanner of msgpack_util.h before msgpack-c sees them (as
 * lib/io/stream.c does): msgpack-c allocates for a container's claimed element
 * count before reading the elements, so a few hostile bytes could ask for
 * gigabytes. The scanner refuses a nesting deeper than the format needs and
 * tells a truncated file (bytes missing, as for any claim larger than the
 * bytes left) from a malformed one. Tensors then borrow the file's bytes until restored. */
#include "io/checkpoint.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/msgpack_util.h"
#include "base/util.h"

#define CK_MAX_FILE_BYTES  (INT64_C(1) << 36)  /* 64 GiB: far beyond any ResNet */
#define CK_MAX_TENSOR_BYTES (INT64_C(1) << 34)
#define CK_SCAN_MAX_DEPTH  8                   /* containers open at once; the format needs 4 */
#define CK_LIST_NAMES      3                   /* names quoted per mismatch kind */

/* ------------------------------------------------------------------ crc */

static uint32_t crc_table[256];

static void
crc_init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
checkpoint_crc32(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (!crc_table[1])
		crc_init_table();
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* ------------------------------------------------------------ lifecycle */

typedef struct {
	char   name[TENSOR_MAX_NAME];
	Tensor t;        /* borrows the file's bytes */
} CkTensor;

typedef struct {
	unsigned char   *bytes;
	size_t           size;
	msgpack_zone     zone;
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
	msgpack_zone_destroy(&pv->zone);
	free(pv->bytes);
	free(pv->params);
	free(pv->state);
	free(pv);
	checkpoint_init(ck);
}

/* -------------------------------------------------------------- decoding */

/* Keys of a map must be strings, each once. */
static int
check_keys(const msgpack_object *m, const char *what, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR) {
			snprintf(why, whylen, "%s: a key is not a string", what);
			return -1;
		}
		for (uint32_t j = 0; j < i; j++) {
			const msgpack_object *q = &m->via.map.ptr[j].key;
			if (q->via.str.size == k->via.str.size && memcmp(q->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0) {
				snprintf(why, whylen, "%s: duplicate key '%.*s'", what, (int)(k->via.str.size > 64 ? 64 : k->via.str.size),
				         k->via.str.ptr);
				return -1;
			}
		}
	}
	return 0;
}

/* The value of key in the map m, or NULL and "sect: missing 'key'". */
static const msgpack_object *
need_key(const msgpack_object *m, const char *sect, const char *key, char *why, size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	if (!o)
		snprintf(why, whylen, "%s: missing '%s'", sect, key);
	return o;
}

static int
get_int(const msgpack_object *m, const char *sect, const char *key, int64_t min, int64_t max, int64_t *v, char *why,
        size_t whylen)
{
	const msgpack_object *o = need_key(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_i64(o, v) < 0 || *v < min || *v > max) {
		snprintf(why, whylen, "%s: '%s' must be an integer in [%lld, %lld]", sect, key, (long long)min,
		         (long long)max);
		return -1;
	}
	return 0;
}

static int
get_f64(const msgpack_object *m, const char *sect, const char *key, double *v, char *why, size_t whylen)
{
	const msgpack_object *o = need_key(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_f64(o, v) < 0 || !isfinite(*v)) {
		snprintf(why, whylen, "%s: '%s' must be a finite number", sect, key);
		return -1;
	}
	return 0;
}

static int
get_bool(const msgpack_object *m, const char *sect, const char *key, int *v, char *why, size_t whylen)
{
	const msgpack_object *o = need_key(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_bool(o, v) < 0) {
		snprintf(why, whylen, "%s: '%s' must be a boolean", sect, key);
		return -1;
	}
	return 0;
}

static int
get_map(const msgpack_object *m, const char *sect, const char *key, int required, const msgpack_object **out,
        char *why, size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	*out = NULL;
	if (!o) {
		if (!required)
			return 0;
		snprintf(why, whylen, "%smissing '%s'", sect, key);
		return -1;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "%s'%s' must be a map", sect, key);
		return -1;
	}
	*out = o;
	return check_keys(o, key, why, whylen);
}

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
		if (get_int(m, "config", k->key, k->min, k->max, &v, why, whylen) < 0)
			return -1;
		*model_config_field(c, k) = (int)v;
	}
	if (get_bool(m, "config", "zero_init_residual", &c->zero_init_residual, why, whylen) < 0)
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
		if (get_f64(m, "optimizer", floats[i].key, &d, why, whylen) < 0)
			return -1;
		*(float *)((char *)c + floats[i].off) = (float)d;
	}
	if (get_bool(m, "optimizer", "nesterov", &c->nesterov, why, whylen) < 0
	    || get_bool(m, "optimizer", "decay_all", &c->decay_all, why, whylen) < 0
	    || get_int(m, "optimizer", "step", 0, INT64_MAX, &ck->optim_step, why, whylen) < 0
	    || get_map(m, "optimizer: ", "state", 1, &state, why, whylen) < 0)
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
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
		if (get_int(m, "train", ints[i].key, ints[i].min, INT64_MAX, (int64_t *)((char *)t + ints[i].off), why,
		            whylen) < 0)
			return -1;
	for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
		/* The last loss may be anything a person wants to see, even NaN. */
		if (strcmp(dbls[i].key, "loss") == 0 && (o = mpu_map_get(m, "loss")) && mpu_get_f64(o, &t->loss) == 0)
			continue;
		if (get_f64(m, "train", dbls[i].key, (double *)((char *)t + dbls[i].off), why, whylen) < 0)
			return -1;
	}
	if (get_int(m, "train", "batch", 1, INT32_MAX, &v, why, whylen) < 0)
		return -1;
	t->batch = (int)v;
	if (get_int(m, "train", "threads", 0, 1 << 16, &v, why, whylen) < 0)
		return -1;
	t->threads = (int)v;
	if (get_bool(m, "train", "lr_abs", &t->lr_abs, why, whylen) < 0)
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

static int
read_file(const char *path, unsigned char **bytes, size_t *size, char *why, size_t whylen)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	unsigned char *b;
	if (!fp) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		fclose(fp);
		return -1;
	}
	if (st.st_size > CK_MAX_FILE_BYTES) {
		snprintf(why, whylen, "%lld bytes is larger than any checkpoint (limit %lld)", (long long)st.st_size,
		         (long long)CK_MAX_FILE_BYTES);
		fclose(fp);
		return -1;
	}
	b = xmalloc(st.st_size ? (size_t)st.st_size : 1);
	if (fread(b, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		snprintf(why, whylen, "read error: %s", ferror(fp) ? strerror(errno) : "the file shrank while reading");
		free(b);
		fclose(fp);
		return -1;
	}
	fclose(fp);
	*bytes = b;
	*size = (size_t)st.st_size;
	return 0;
}

static int
load(Checkpoint *ck, CkPriv *pv, char *why, size_t whylen)
{
	msgpack_object root;
	const msgpack_object *o, *cfg, *norm, *params, *optm, *train;
	MpuScan scan;
	size_t end, off = 0;
	int64_t major, minor;
	int s;

	if (pv->size == 0) {
		snprintf(why, whylen, "empty file, not a checkpoint");
		return -1;
	}
	if ((pv->bytes[0] & 0xf0) != 0x80 && pv->bytes[0] != 0xde && pv->bytes[0] != 0xdf) {
		snprintf(why, whylen, "not an ssl-tools checkpoint (does not start with a msgpack map)");
		return -1;
	}
	mpu_scan_init(&scan, CK_SCAN_MAX_DEPTH, UINT64_MAX, UINT64_MAX);
	scan.whole = 1;
	s = mpu_scan_step(&scan, pv->bytes, pv->size, why, whylen);
	if (s == 0) {
		snprintf(why, whylen, "truncated file (%zu bytes, the data stops inside the map)", pv->size);
		return -1;
	}
	if (s < 0)
		return -1;
	end = scan.pos;
	if (end != pv->size) {
		snprintf(why, whylen, "%zu bytes of garbage after the checkpoint", pv->size - end);
		return -1;
	}
	if (msgpack_unpack((const char *)pv->bytes, pv->size, &off, &pv->zone, &root) != MSGPACK_UNPACK_SUCCESS
	    || off != pv->size || root.type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "malformed msgpack");
		return -1;
	}
	if (check_keys(&root, "checkpoint", why, whylen) < 0)
		return -1;
	if (!(o = mpu_map_get(&root, "format")) || !mpu_key_is(o, CHECKPOINT_FORMAT)) {
		snprintf(why, whylen, "not an ssl-tools checkpoint ('format' is not \"%s\")", CHECKPOINT_FORMAT);
		return -1;
	}
	if (!(o = mpu_map_get(&root, "version")) || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2
	    || mpu_get_i64(&o->via.array.ptr[0], &major) < 0 || mpu_get_i64(&o->via.array.ptr[1], &minor) < 0) {
		snprintf(why, whylen, "'version' must be [major, minor]");
		return -1;
	}
	if (major != CHECKPOINT_VERSION_MAJOR) {
		snprintf(why, whylen, "checkpoint version %lld.%lld is not supported (this is %d.%d)", (long long)major,
		         (long long)minor, CHECKPOINT_VERSION_MAJOR, CHECKPOINT_VERSION_MINOR);
		return -1;
	}
	/* The checksum: the last key, its value the file's last 5 bytes. */
	{
		const msgpack_object_kv *last = root.via.map.size ? &root.via.map.ptr[root.via.map.size - 1] : NULL;
		const unsigned char *t = pv->bytes + pv->size - 5;
		uint32_t want, got;
		if (!last || !mpu_key_is(&last->key, "checksum") || pv->size < 6 || t[0] != 0xce) {
			snprintf(why, whylen, "no checksum at the end of the file (corrupt, or not written by ssl-train)");
			return -1;
		}
		want = (uint32_t)t[1] << 24 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 8 | t[4];
		got = checkpoint_crc32(0, pv->bytes, pv->size - 5);
		if (want != got) {
			snprintf(why, whylen, "checksum mismatch (file says %08x, contents give %08x): the file is corrupt",
			         want, got);
			return -1;
		}
	}
	if (get_map(&root, "", "config", 1, &cfg, why, whylen) < 0 || decode_config(cfg, &ck->config, why, whylen) < 0)
		return -1;
	{
		char cw[200];
		if (model_config_check(&ck->config, cw, sizeof cw) < 0) {
			snprintf(why, whylen, "config: %s", cw);
			return -1;
		}
	}
	if (get_map(&root, "", "normalize", 1, &norm, why, whylen) < 0
	    || decode_floats(norm, "mean", ck->config.in_channels, 0, &ck->mean, why, whylen) < 0
	    || decode_floats(norm, "std", ck->config.in_channels, 1, &ck->std, why, whylen) < 0)
		return -1;
	if (get_map(&root, "", "params", 1, &params, why, whylen) < 0
	    || decode_tensors(params, "params", &pv->params, &pv->nparams, why, whylen) < 0)
		return -1;
	if (get_map(&root, "", "optimizer", 0, &optm, why, whylen) < 0)
		return -1;
	if (optm) {
		if (decode_optim(optm, ck, pv, why, whylen) < 0)
			return -1;
		ck->has_optim = 1;
	}
	if (get_map(&root, "", "train", 0, &train, why, whylen) < 0)
		return -1;
	if (train) {
		if (decode_train(train, &ck->train, why, whylen) < 0)
			return -1;
		ck->has_train = 1;
	}
	if ((o = mpu_map_get(&root, "classes")) && decode_classes(o, ck, why, whylen) < 0)
		return -1;
	if ((o = mpu_map_get(&root, "provenance")) && provenance_decode(o, &ck->prov, &ck->nprov, why, whylen) < 0)
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
	if (!msgpack_zone_init(&pv->zone, 64 * 1024)) {
		snprintf(err, errlen, "%s: out of memory", path);
		free(pv);
		ck->priv_ = NULL;
		return -1;
	}
	if (read_file(path, &pv->bytes, &pv->size, why, sizeof why) < 0 || load(ck, pv, why, sizeof why) < 0) {
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
