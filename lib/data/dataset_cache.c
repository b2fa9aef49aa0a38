/* dataset_cache: a decoded set kept in a file (ssl-decode --cache), for
 * re-runs and resumes: the pixel store made to be kept (pixstore.h) with
 * the set's metadata after the pixels, and a key that says what was
 * decoded from what (dataset.h). */
#include "data/dataset_impl.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define META_VERSION 2
#define SAME_PATH    UINT32_C(0xFFFFFFFF)   /* a sample's path is the one before it */

/* ---- the key ---- */

typedef struct {
	char  *s;
	size_t n, cap;
} Text;

static void ATTR_PRINTF(2, 3)
text_add(Text *t, const char *fmt, ...)
{
	va_list ap;
	int k;
	for (;;) {
		va_start(ap, fmt);
		k = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
		va_end(ap);
		ASSERT(k >= 0);
		if (t->s && (size_t)k < t->cap - t->n)
			break;
		t->cap = (t->cap + (size_t)k + 1) * 2;
		t->s = xrealloc(t->s, t->cap);
	}
	t->n += (size_t)k;
}

static int
cmp_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

/* A file's identity: the inode and the change time as well as the size and
 * the modification time, which a user can set back (touch -d, tar, cp -p,
 * rsync -t) after the bytes changed; the change time no user can set. */
static uint64_t
hash_stat(uint64_t h, const char *rel, const struct stat *st)
{
	int64_t v[7] = { (int64_t)st->st_mode,          (int64_t)st->st_size,         (int64_t)st->st_mtim.tv_sec,
		             (int64_t)st->st_mtim.tv_nsec, (int64_t)st->st_ino,          (int64_t)st->st_ctim.tv_sec,
		             (int64_t)st->st_ctim.tv_nsec };
	h = fnv1a(h, rel, strlen(rel) + 1);
	return fnv1a(h, v, sizeof v);
}

/* Files beside an IDX file or CIFAR batch that the reader may read: the
 * labels, the class names. */
static int
beside_wanted(const char *name)
{
	return ds_is_idx_name(name) || strcmp(name, "batches.meta.txt") == 0 ||
	       strcmp(name, "fine_label_names.txt") == 0 || strcmp(name, "coarse_label_names.txt") == 0;
}

/* Hashes (path, type, size, mtime, inode, ctime) of everything below dir,
 * in name order (the same walk as the reader's, ds_walk: links to folders
 * not followed, as deep as DATASET_MAX_DEPTH); depth: dir's below the
 * input, or -1: only the folder's own files that beside_wanted. *count:
 * the entries. */
static uint64_t
hash_tree(uint64_t h, const char *dir, const char *rel, int depth, int64_t *count)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, cmp_name);
	if (n < 0)
		return fnv1a(h, "?", 1);
	for (int i = 0; i < n; i++) {
		char full[PATH_MAX], crel[PATH_MAX];
		struct stat st, lst;
		const char *nm = names[i]->d_name;
		if (strcmp(nm, ".") && strcmp(nm, "..") && (depth >= 0 || beside_wanted(nm)) && (size_t)snprintf(full, sizeof full, "%s/%s", dir, nm) < sizeof full &&
		    (size_t)snprintf(crel, sizeof crel, "%s%s%s", rel, *rel ? "/" : "", nm) < sizeof crel &&
		    lstat(full, &lst) == 0) {
			int link = S_ISLNK(lst.st_mode);
			if (!link || stat(full, &st) < 0)
				st = lst;
			h = hash_stat(h, crel, &st);
			++*count;
			if (!link && S_ISDIR(st.st_mode) && depth >= 0 && depth < DATASET_MAX_DEPTH)
				h = hash_tree(h, full, crel, depth + 1, count);
		}
		free(names[i]);
	}
	free(names);
	return h;
}

/* The parent folder of path, in buf. */
static const char *
parent_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return ".";
	snprintf(buf, len, "%.*s", (int)(slash - path) + (slash == path), path);
	return buf;
}

char *
dataset_cache_key(const DatasetOptions *o, int ninputs, char *const *inputs)
{
	Text t = { 0 };
	text_add(&t, "ssl-decode %s decode %d %s\nsize %dx%d fit %d channels %d max-pixels %lld split %s coarse %d strict %d\n",
	         SSL_VERSION, DECODE_REVISION, image_codec_versions(), o->height, o->width, o->fit, o->channels, (long long)o->max_pixels,
	         o->split ? o->split : "-", o->coarse, o->strict);
	text_add(&t, "classes");
	for (int i = 0; i < o->nclass_names; i++)
		text_add(&t, " %zu:%s", strlen(o->class_names[i]), o->class_names[i]);
	text_add(&t, "\nshard %lld/%lld\n", (long long)o->shard, (long long)o->nshards);
	for (int i = 0; i < ninputs; i++) {
		struct stat st;
		char real[PATH_MAX], dir[PATH_MAX];
		int64_t count = 0;
		uint64_t h = FNV1A_INIT;
		if (!realpath(inputs[i], real))
			snprintf(real, sizeof real, "?%s", strerror(errno));
		if (stat(inputs[i], &st) < 0)
			memset(&st, 0, sizeof st);
		text_add(&t, "input %zu:%s real %zu:%s size %lld mtime %lld.%09ld ino %llu ctime %lld.%09ld\n",
		         strlen(inputs[i]), inputs[i], strlen(real), real, (long long)st.st_size,
		         (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (unsigned long long)st.st_ino,
		         (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
		/* a folder: its members; an IDX file or a CIFAR batch: the files
		 * beside it that say its labels and class names */
		if (S_ISDIR(st.st_mode))
			h = hash_tree(h, inputs[i], "", 0, &count);
		else if (ds_is_idx_name(ds_base_name(inputs[i])) || ds_cifar_kind(ds_base_name(inputs[i])))
			h = hash_tree(h, parent_of(inputs[i], dir, sizeof dir), "", -1, &count);
		text_add(&t, "tree %lld %016llx\n", (long long)count, (unsigned long long)h);
	}
	return t.s;
}

/* ---- the metadata: little-endian numbers, strings as length + bytes ---- */

typedef struct {
	uint8_t *p;
	size_t   n, cap;
} Out;

static void
out_bytes(Out *o, const void *b, size_t n)
{
	if (o->n + n > o->cap) {
		o->cap = (o->n + n) * 2;
		o->p = xrealloc(o->p, o->cap);
	}
	memcpy(o->p + o->n, b, n);
	o->n += n;
}

static void
out_u64(Out *o, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
	out_bytes(o, b, 8);
}

static void
out_str(Out *o, const char *s)
{
	out_u64(o, strlen(s));
	out_bytes(o, s, strlen(s));
}

typedef struct {
	const uint8_t *p;
	size_t         n, at;
	int            bad;
} In;

static uint64_t
in_u64(In *in)
{
	uint64_t v = 0;
	if (in->bad || in->n - in->at < 8) {
		in->bad = 1;
		return 0;
	}
	for (int i = 7; i >= 0; i--)
		v = v << 8 | in->p[in->at + (size_t)i];
	in->at += 8;
	return v;
}

/* A number in [lo, hi], else the metadata is bad. */
static int64_t
in_range(In *in, int64_t lo, int64_t hi)
{
	int64_t v = (int64_t)in_u64(in);
	if (v < lo || v > hi)
		in->bad = 1;
	return in->bad ? lo : v;
}

/* A string (malloc'd), or NULL when the metadata is bad. */
static char *
in_str(In *in)
{
	uint64_t len = in_u64(in);
	char *s;
	if (in->bad || len > in->n - in->at || memchr(in->p + in->at, '\0', (size_t)len)) {
		in->bad = 1;
		return NULL;
	}
	s = xmalloc((size_t)len + 1);
	memcpy(s, in->p + in->at, (size_t)len);
	s[len] = '\0';
	in->at += (size_t)len;
	return s;
}

typedef struct {
	Dataset    *d;
	const char *key;
} KeepCtx;

static int
pack_meta(void *ctx, uint8_t **buf, size_t *len)
{
	KeepCtx *k = ctx;
	Dataset *d = k->d;
	Out o = { 0 };
	out_u64(&o, META_VERSION);
	out_str(&o, k->key);
	out_u64(&o, (uint64_t)d->ninputs);
	for (int i = 0; i < d->ninputs; i++)
		out_str(&o, d->inputs[i]);
	out_u64(&o, (uint64_t)d->nclasses);
	for (int i = 0; i < d->nclasses; i++)
		out_str(&o, d->classes[i]);
	out_u64(&o, (uint64_t)d->members);
	out_u64(&o, (uint64_t)d->skipped);
	for (int i = 0; i < SKIP_NKINDS; i++)
		out_u64(&o, (uint64_t)d->skip_kind[i]);
	out_u64(&o, (uint64_t)d->n);
	for (int64_t i = 0; i < d->n; i++) {
		const Sample *s = &d->samples[i];
		if (i > 0 && s->path == s[-1].path)
			out_u64(&o, SAME_PATH);
		else
			out_str(&o, s->path);
		out_u64(&o, (uint64_t)s->sub);
		out_u64(&o, (uint64_t)s->input);
		out_u64(&o, (uint64_t)s->label);
		out_u64(&o, (uint64_t)s->h);
		out_u64(&o, (uint64_t)s->w);
		out_u64(&o, (uint64_t)s->c);
		out_u64(&o, (uint64_t)s->sc);
		out_u64(&o, (uint64_t)pixstore_kept_ref(d->store, s->ref));
	}
	/* with shards: every id's label and shard, and the samples' ids */
	out_u64(&o, d->id_shard != NULL);
	if (d->id_shard) {
		out_u64(&o, (uint64_t)d->nids);
		for (int64_t j = 0; j < d->nids; j++) {
			out_u64(&o, (uint64_t)(int64_t)d->id_label[j]);
			out_u64(&o, (uint64_t)d->id_shard[j]);
		}
		for (int64_t i = 0; i < d->n; i++)
			out_u64(&o, (uint64_t)d->samples[i].id);
	}
	*buf = o.p;
	*len = o.n;
	return 0;
}

int
dataset_cache_keep(Dataset *d, const char *key)
{
	KeepCtx k = { d, key };
	ASSERT(d->finished && d->opt.cache_path);
	if (pixstore_keep(d->store, pack_meta, &k) < 0)
		return ds_fail(d, "%s", pixstore_error(d->store));
	return 0;
}

/* One sample of the metadata; 0, or -1 when it is bad. */
static int
unpack_sample(In *in, Dataset *d, Sample *s)
{
	uint64_t mark = in->n - in->at >= 8 ? in_u64(&(In){ in->p, in->n, in->at, 0 }) : 0;
	size_t np;
	if (mark == SAME_PATH && d->n > 0) {
		in_u64(in);
		s->path = d->samples[d->n - 1].path;
	} else {
		char *p = in_str(in);
		if (!p)
			return -1;
		s->path = ds_keep_str(d, p);
	}
	s->sub = in_range(in, -1, INT64_MAX);
	s->input = (int)in_range(in, 0, d->ninputs - 1);
	s->label = (int)in_range(in, -1, d->nclasses - 1);
	s->h = (int)in_range(in, 1, IMAGE_MAX_SIDE);
	s->w = (int)in_range(in, 1, IMAGE_MAX_SIDE);
	s->c = (int)in_range(in, 1, 3);
	s->sc = (int)in_range(in, 1, s->c);
	s->ref = in_range(in, 0, INT64_MAX);
	np = (size_t)s->h * (size_t)s->w * (size_t)s->sc;
	if (in->bad || s->c == 2 || s->sc == 2 || !pixstore_valid(d->store, s->ref, np))
		return -1;
	if (d->n > 0 && (s->h != d->samples[0].h || s->w != d->samples[0].w || s->c != d->samples[0].c))
		return -1;
	d->to_rgb |= s->sc != s->c;
	return 0;
}

/* With shards: the ids' labels and shards, the samples' ids (each once). */
static int
unpack_ids(Dataset *d, In *in)
{
	uint8_t *seen;
	if (!in_range(in, 0, 1))
		return in->bad ? -1 : 0;
	d->nids = in_range(in, d->n, (int64_t)(in->n / 16));
	if (in->bad)
		return -1;
	d->id_label = xcalloc((size_t)d->nids, sizeof *d->id_label);
	d->id_shard = xcalloc((size_t)d->nids, sizeof *d->id_shard);
	for (int64_t k = 0; k < d->nids; k++) {
		d->id_label[k] = (int32_t)in_range(in, -1, d->nclasses - 1);
		d->id_shard[k] = (int32_t)in_range(in, 0, d->opt.nshards - 1);
	}
	seen = xcalloc((size_t)d->nids, 1);
	for (int64_t i = 0; i < d->n && !in->bad; i++) {
		Sample *s = &d->samples[i];
		s->id = in_range(in, 0, d->nids - 1);
		if (seen[s->id]++ || d->id_shard[s->id] != d->opt.shard || d->id_label[s->id] != s->label)
			in->bad = 1;
	}
	free(seen);
	return in->bad ? -1 : 0;
}

static int
unpack_meta(Dataset *d, In *in, const char *key)
{
	char *k;
	int64_t n;
	if (in_u64(in) != META_VERSION || !(k = in_str(in)))
		return -1;
	if (strcmp(k, key) != 0) {
		free(k);
		return -2;
	}
	free(k);
	d->ninputs = (int)in_range(in, 1, INT32_MAX);
	d->inputs = xcalloc((size_t)d->ninputs, sizeof *d->inputs);
	for (int i = 0; i < d->ninputs && !in->bad; i++)
		d->inputs[i] = in_str(in);
	d->nclasses = (int)in_range(in, 0, 1 << 20);
	d->classes = xcalloc((size_t)d->nclasses + 1, sizeof *d->classes);
	for (int i = 0; i < d->nclasses && !in->bad; i++)
		d->classes[i] = in_str(in);
	d->members = in_range(in, 0, INT64_MAX);
	d->skipped = in_range(in, 0, d->members);
	for (int i = 0; i < SKIP_NKINDS; i++)
		d->skip_kind[i] = in_range(in, 0, d->skipped);
	n = in_range(in, 1, (int64_t)(in->n / 8));
	if (in->bad)
		return -1;
	d->samples = xcalloc((size_t)n, sizeof *d->samples);
	d->cap = n;
	for (int64_t i = 0; i < n; i++) {
		Sample *s = &d->samples[i];
		s->seq = i;
		s->cls = -1;
		if (unpack_sample(in, d, s) < 0)
			return -1;
		s->id = i;
		d->n++;
	}
	d->nids = n;
	return unpack_ids(d, in) < 0 || in->at != in->n ? -1 : 0;
}

int
dataset_cache_load(const DatasetOptions *opt, const char *path, const char *key, Dataset **out, char *err,
                   size_t errlen)
{
	uint8_t *meta;
	size_t len;
	PixStore *store = pixstore_open_kept(path, &meta, &len, err, errlen);
	Dataset *d;
	In in;
	int rc;
	*out = NULL;
	if (!store)
		return errno == ENOENT ? 0 : -1;
	d = dataset_new(&(DatasetOptions){ .sizes_only = 1 });   /* no store of its own */
	d->opt = *opt;
	d->store = store;
	in = (In){ meta, len, 0, 0 };
	rc = unpack_meta(d, &in, key);
	free(meta);
	if (rc < 0) {
		snprintf(err, errlen, "%s: %s", path, rc == -2 ? "inputs or options changed" : "damaged metadata");
		dataset_free(d);
		return -1;
	}
	d->finished = 1;
	*out = d;
	return 1;
}
