/* dataset: see dataset.h. */
#include "data/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

#include "base/fault.h"
#include "data/image.h"
#include "base/util.h"
#include "data/dataset_impl.h"


/* ---- a small string -> int map (open addressing) ---- */


static uint64_t
str_hash(const char *s)
{
	return fnv1a(FNV1A_INIT, s, strlen(s));
}

/* The value slot for key, inserted (val = init) when absent and insert is set. */
static int *
strmap_find(StrMap *m, const char *key, int insert, int init, int *isnew)
{
	size_t i;
	if (isnew)
		*isnew = 0;
	if (insert && (m->n + 1) * 2 > m->cap) {
		StrMap big = { xcalloc(m->cap ? m->cap * 2 : 64, sizeof(StrSlot)), m->cap ? m->cap * 2 : 64, m->n };
		for (size_t k = 0; k < m->cap; k++) {
			if (!m->slots[k].key)
				continue;
			for (i = str_hash(m->slots[k].key) & (big.cap - 1); big.slots[i].key; i = (i + 1) & (big.cap - 1))
				;
			big.slots[i] = m->slots[k];
		}
		free(m->slots);
		*m = big;
	}
	if (!m->cap)
		return NULL;
	for (i = str_hash(key) & (m->cap - 1); m->slots[i].key; i = (i + 1) & (m->cap - 1))
		if (strcmp(m->slots[i].key, key) == 0)
			return &m->slots[i].val;
	if (!insert)
		return NULL;
	m->slots[i].key = xstrdup(key);
	m->slots[i].val = init;
	m->n++;
	if (isnew)
		*isnew = 1;
	return &m->slots[i].val;
}

static void
strmap_free(StrMap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].key);
	free(m->slots);
	memset(m, 0, sizeof *m);
}


int
ds_fail(Dataset *d, const char *fmt, ...) ATTR_PRINTF(2, 3);

int
ds_fail(Dataset *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->err, sizeof d->err, fmt, ap);
	va_end(ap);
	str_printable(d->err);
	return -1;
}

Dataset *
dataset_new(const DatasetOptions *opt)
{
	Dataset *d = xcalloc(1, sizeof *d);
	d->opt = *opt;
	if (d->opt.max_pixels <= 0)
		d->opt.max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
	d->max_label = -1;
	if (!d->opt.sizes_only) {
		int64_t budget = d->opt.memory == 0 ? PIXSTORE_DEFAULT_BUDGET : d->opt.memory;
		d->store = pixstore_new(dataset_pixel_budget(budget), d->opt.cache_dir, d->opt.cache_path, d->err,
		                        sizeof d->err);
	}
	return d;
}

/* --memory is the budget of the whole process, so that a user can size it
 * against the machine whatever the collection: the pixels kept in memory
 * get what is left after a reserve for the per-image metadata and the decoding buffers
 * (a quarter, at most DATASET_RESERVE; measured beside a full 1 GiB of
 * pixels: 161 MB for a million 32x32 images, 138 MB for 200,000 at 96x96). */
int64_t
dataset_pixel_budget(int64_t memory)
{
	int64_t reserve = memory / 4 < DATASET_RESERVE ? memory / 4 : DATASET_RESERVE;
	return memory < 0 ? memory : memory - reserve;
}

const char *
dataset_error(const Dataset *d)
{
	return d->err;
}

const char *
ds_keep_str(Dataset *d, char *s)
{
	if (d->nstrs == d->capstrs) {
		d->capstrs = d->capstrs ? d->capstrs * 2 : 256;
		d->strs = xreallocarray(d->strs, d->capstrs, sizeof *d->strs);
	}
	d->strs[d->nstrs++] = s;
	return s;
}

Sample *
ds_push_sample(Dataset *d)
{
	Sample *s;
	if (d->n == d->cap) {
		d->cap = d->cap ? d->cap * 2 : 1024;
		d->samples = xreallocarray(d->samples, (size_t)d->cap, sizeof *d->samples);
	}
	s = &d->samples[d->n++];
	memset(s, 0, sizeof *s);
	s->seq = d->seq++;
	s->input = d->cur_input;
	s->sub = -1;
	s->cls = -1;
	s->label = -1;
	s->ref = -1;
	s->cand = -1;
	s->id = -1;
	return s;
}

/* One bad member: warn and count, or with strict, the error. With shards,
 * another shard's member is its rank's to report: not counted here (the
 * callers counted it as a member: uncounted). `owner` is the path whose
 * shard the member belongs to: its own, or a hard link's target's. */
static int
skip_member(Dataset *d, const char *owner, int kind, const char *member, const char *what)
{
	char msg[1024];
	if (!ds_mine(d, owner, -1)) {
		d->members--;   /* another shard's: its rank counts and reports it */
		return 0;
	}
	snprintf(msg, sizeof msg, "%s: %s: %s", d->inputs[d->cur_input], member, what);
	str_printable(msg);
	d->skipped++;
	d->skip_kind[kind]++;
	if (d->opt.strict)
		return ds_fail(d, "%s", msg);
	if (d->opt.warn)
		d->opt.warn(d->opt.ctx, msg);
	return 0;
}

int
ds_skip(Dataset *d, int kind, const char *member, const char *fmt, ...) ATTR_PRINTF(4, 5);

int
ds_skip(Dataset *d, int kind, const char *member, const char *fmt, ...)
{
	char what[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	return skip_member(d, member, kind, member, what);
}

/* A hard link to nothing kept: it is its target's shard's (shard_link),
 * and that rank reports it. */
static int
skip_link(Dataset *d, const char *member, const char *target)
{
	char what[512];
	snprintf(what, sizeof what, "hard link to %s, which is not a kept image", target);
	return skip_member(d, target, SKIP_UNREADABLE, member, what);
}

/* ---- member paths, classes, folders ---- */

/* Hidden files and folders, and macOS resource forks, are never members. */
int
ds_is_junk_path(const char *path)
{
	const char *p = path;
	while (*p) {
		const char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len > 0 && p[0] == '.')
			return 1;
		if (len == 8 && strncmp(p, "__MACOSX", 8) == 0)
			return 1;
		if (!end)
			break;
		p = end + 1;
	}
	return 0;
}

/* Class id from the parent folder's name, -1 at the top. */
int
ds_class_of(Dataset *d, const char *path)
{
	const char *slash = strrchr(path, '/'), *start;
	char name[1024];
	int *v, isnew;
	size_t len;
	if (!slash)
		return -1;
	for (start = slash; start > path && start[-1] != '/'; start--)
		;
	len = (size_t)(slash - start);
	if (len == 0 || len >= sizeof name)
		return -1;
	memcpy(name, start, len);
	name[len] = '\0';
	v = strmap_find(&d->classmap, name, 1, d->ncnames, &isnew);
	if (isnew) {
		d->cnames = xreallocarray(d->cnames, (size_t)d->ncnames + 1, sizeof *d->cnames);
		d->cnames[d->ncnames++] = xstrdup(name);
	}
	return *v;
}

/* ---- shards ---- */

int
ds_shard_of(const Dataset *d, const char *path, int64_t sub)
{
	uint64_t h = fnv1a(FNV1A_INIT, path, strlen(path));
	uint8_t le[8];   /* sub's bytes little-endian: the same partition on every machine */
	if (d->opt.nshards <= 1)
		return 0;
	for (int i = 0; i < 8; i++)
		le[i] = (uint8_t)((uint64_t)sub >> (8 * i));
	h = fnv1a(h, le, sizeof le);
	h ^= h >> 31;   /* the low bits of FNV alone mix poorly; mod uses them */
	h *= UINT64_C(0x9e3779b97f4a7c15);
	h ^= h >> 29;
	return (int)(h % (uint64_t)d->opt.nshards);
}

int
ds_mine(const Dataset *d, const char *path, int64_t sub)
{
	return d->opt.nshards <= 1 || ds_shard_of(d, path, sub) == d->opt.shard;
}

int64_t
ds_add_cand(Dataset *d, const char *path, int64_t sub, int cls, int shard)
{
	Cand *c;
	if (d->ncands == d->capcands) {
		d->capcands = d->capcands ? d->capcands * 2 : 1024;
		d->cands = xreallocarray(d->cands, (size_t)d->capcands, sizeof *d->cands);
	}
	c = &d->cands[d->ncands];
	c->path = path;
	c->sub = sub;
	c->seq = d->ncands;
	c->input = d->cur_input;
	c->cls = cls;
	c->shard = shard;
	return d->ncands++;
}

/* Notes path as a folder, and every folder above it (a loop, not a
 * recursion: the depth is the input's to choose). */
void
ds_dir_note(Dataset *d, const char *path, int flag)
{
	char *p = xstrdup(path), *slash;
	for (;;) {
		int isnew, *v;
		if (!*p)
			break;
		v = strmap_find(&d->dirs, p, 1, 0, &isnew);
		*v |= flag;
		if (!isnew || !(slash = strrchr(p, '/')))
			break;
		*slash = '\0';
		flag = DIR_HAS_SUBDIR;
	}
	free(p);
}

void
ds_note_member_dir(Dataset *d, const char *path)
{
	char *parent = xstrdup(path), *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		ds_dir_note(d, parent, DIR_HAS_MEMBER);
	}
	free(parent);
}

/* Hard links of the archive just read: each becomes a sample with its own
 * path (and class) and a copy of its target's pixels, or a skipped member
 * when the target was not kept. */
static int
resolve_links(Dataset *d)
{
	StrMap kept = { 0 };
	int rc = 0;
	if (!d->nlinks)
		return 0;
	for (int64_t i = 0; i < d->n; i++)
		if (d->samples[i].input == d->cur_input && d->samples[i].sub < 0)
			*strmap_find(&kept, d->samples[i].path, 1, 0, NULL) = (int)i;
	for (size_t k = 0; k < d->nlinks && rc == 0; k++) {
		const char *member = d->links[2 * k], *target = d->links[2 * k + 1];
		int *at = strmap_find(&kept, target, 0, 0, NULL);
		d->members++;
		ds_note_member_dir(d, member);
		if (at) {
			Sample *s, *t;
			s = ds_push_sample(d);   /* may move the samples */
			t = &d->samples[*at];
			s->cand = d->link_cand ? d->link_cand[k] : -1;
			s->path = s->cand >= 0 ? d->cands[s->cand].path : ds_keep_str(d, xstrdup(member));
			s->cls = ds_class_of(d, member);
			s->h = t->h;
			s->w = t->w;
			s->c = s->sc = t->c;
			s->ref = t->ref;   /* the same pixels, stored once */
		} else {
			rc = skip_link(d, member, target);
		}
	}
	strmap_free(&kept);
	return rc;
}

static void
free_links(Dataset *d)
{
	for (size_t i = 0; i < 2 * d->nlinks; i++)
		free(d->links[i]);
	free(d->links);
	free(d->link_cand);
	d->links = NULL;
	d->link_cand = NULL;
	d->nlinks = 0;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Leaf folders without a single image member are empty class folders. */
static int
check_empty_dirs(Dataset *d)
{
	char **empty = NULL;
	size_t n = 0;
	int rc = 0;
	for (size_t i = 0; i < d->dirs.cap; i++)
		if (d->dirs.slots[i].key && d->dirs.slots[i].val == 0) {
			empty = xreallocarray(empty, n + 1, sizeof *empty);
			empty[n++] = d->dirs.slots[i].key;
		}
	if (n)
		qsort(empty, n, sizeof *empty, cmp_str);
	for (size_t i = 0; i < n && rc == 0; i++) {
		d->members++;
		rc = ds_skip(d, SKIP_EMPTY_DIR, empty[i], "empty class folder");
	}
	free(empty);
	return rc;
}

/* ---- parallel decoding of chunks ---- */

static void
chunk_decode(Dataset *d, Chunk *c, int lo, int hi)
{
	for (int i = lo; i < hi; i++) {
		Pending *p = &c->items[i];
		p->rc = image_load(p->data, p->len, d->opt.max_pixels, d->opt.channels, d->opt.height, d->opt.width,
		                   (ImageFit)d->opt.fit, &p->img, p->err, sizeof p->err);
		free(p->data);
		p->data = NULL;
	}
}

static void
chunk_launch(Dataset *d, Chunk *c)
{
	for (int lo = 0; lo < c->n; lo += TASK_ITEMS) {
		int hi = lo + TASK_ITEMS < c->n ? lo + TASK_ITEMS : c->n;
#pragma omp task firstprivate(d, c, lo, hi)
		chunk_decode(d, c, lo, hi);
	}
	c->launched = 1;
}

/* Stores the pixels of s (h * w * c bytes at px), unless only sizes are
 * kept. -1 on a write error (a full disk). */
int
ds_keep_pixels(Dataset *d, Sample *s, const uint8_t *px)
{
	s->sc = s->c;
	if (d->opt.sizes_only)
		return 0;
	if (pixstore_put(d->store, px, (size_t)s->h * (size_t)s->w * (size_t)s->c, &s->ref) < 0)
		return ds_fail(d, "%s", pixstore_error(d->store));
	return 0;
}

/* Moves decoded images into samples, in read order; reports failures. */
static int
chunk_collect(Dataset *d, Chunk *c)
{
	int rc = 0;
	for (int i = 0; i < c->n; i++) {
		Pending *p = &c->items[i];
		if (rc == 0 && p->rc == 0) {
			Sample *s = ds_push_sample(d);
			s->cand = p->cand;
			s->path = p->cand >= 0 ? d->cands[p->cand].path : ds_keep_str(d, p->path);
			if (p->cand >= 0)
				free(p->path);
			s->cls = p->cls;
			s->h = p->img.h;
			s->w = p->img.w;
			s->c = p->img.c;
			p->path = NULL;
			rc = ds_keep_pixels(d, s, p->img.data);
		} else if (rc == 0) {
			rc = ds_skip(d, SKIP_DECODE, p->path, "%s", p->err);
		}
		free(p->path);
		free(p->img.data);
		free(p->data);
	}
	c->n = 0;
	c->bytes = 0;
	c->launched = 0;
	if (d->opt.progress)
		d->opt.progress(d->opt.ctx, d->n);
	fault_decode_stall(d->n);
	return rc;
}

static void
chunk_discard(Chunk *c)
{
	for (int i = 0; i < c->n; i++) {
		free(c->items[i].path);
		free(c->items[i].img.data);
		free(c->items[i].data);
	}
	free(c->items);
	memset(c, 0, sizeof *c);
}

/* The current chunk goes to the decoders; the previous one is collected. */
static int
chunk_rotate(Dataset *d)
{
	Chunk *now = &d->chunks[d->cur], *prev = &d->chunks[1 - d->cur];
	int rc = 0;
#pragma omp taskwait
	if (prev->launched)
		rc = chunk_collect(d, prev);
	if (rc < 0)
		return rc;
	chunk_launch(d, now);
	d->cur = 1 - d->cur;
	return 0;
}

static int
chunk_drain(Dataset *d)
{
	Chunk *last;
	if (chunk_rotate(d) < 0)
		return -1;
	last = &d->chunks[1 - d->cur];
#pragma omp taskwait
	return chunk_collect(d, last);
}

/* Takes ownership of data; cand: the member's candidate (with shards), or -1. */
int
ds_submit(Dataset *d, const char *path, uint8_t *data, size_t len, int64_t cand)
{
	Chunk *c = &d->chunks[d->cur];
	Pending *p;
	if (c->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		c->items = xreallocarray(c->items, (size_t)c->cap, sizeof *c->items);
	}
	p = &c->items[c->n++];
	memset(p, 0, sizeof *p);
	p->path = xstrdup(path);
	p->data = data;
	p->len = len;
	p->cand = cand;
	p->cls = ds_class_of(d, path);
	c->bytes += len;
	d->members++;
	ds_note_member_dir(d, path);
	if (c->n >= CHUNK_ITEMS || c->bytes >= CHUNK_BYTES)
		return chunk_rotate(d);
	return 0;
}

/* What a member is by its name: 0 junk (skip quietly), 1 an image, 2 an
 * image format we do not decode, 3 unknown (look at the bytes). */
int
ds_member_kind(const char *path)
{
	int k;
	if (ds_is_junk_path(path))
		return 0;
	k = image_name_kind(path);
	return k ? k : 3;
}

int
ds_sniff_head(const uint8_t *head, size_t len)
{
	return len >= 8 && image_sniff(head, len) != IMAGE_FMT_UNKNOWN;
}

/* Handles a member once its first bytes are known: for kind 3, a quiet skip
 * unless the bytes look like an image. Returns 1 to read the member. */
int
ds_member_wanted(Dataset *d, const char *path, int kind, const uint8_t *head, size_t headlen)
{
	if (kind == 3 && !ds_sniff_head(head, headlen))
		return 0;
	if (kind == 2) {
		d->members++;
		ds_note_member_dir(d, path);
		return -1;
	}
	return 1;
}

int
dataset_add(Dataset *d, const char *path)
{
	struct stat st;
	const char *base = ds_base_name(path);
	int rc = 0, ck, fd = -1, is_stdin = strcmp(path, "-") == 0, prev_mode;
	uint8_t head[8];
	ssize_t k = 0;
	ASSERT(!d->finished);
	if (!d->store && !d->opt.sizes_only)
		return -1;   /* no place for the pixels: d->err says why */
	d->inputs = xreallocarray(d->inputs, (size_t)d->ninputs + 1, sizeof *d->inputs);
	d->inputs[d->ninputs] = xstrdup(path);
	d->cur_input = d->ninputs++;
	if (is_stdin)
		st.st_mode = S_IFIFO;
	else if (stat(path, &st) < 0)
		return ds_fail(d, "%s: %s", path, strerror(errno));
	if (!is_stdin && !S_ISDIR(st.st_mode) && ds_is_idx_name(base))
		return ds_set_mode(d, MODE_INDEXED, path) < 0 ? -1 : ds_read_idx(d, path);
	if (!is_stdin && !S_ISDIR(st.st_mode) && (ck = ds_cifar_kind(base)))
		return ds_set_mode(d, MODE_INDEXED, path) < 0 ? -1 : ds_read_cifar(d, path, ck == 100);
	/* the mode is known once the input is read: images, or official files */
	prev_mode = d->mode;
	if (!S_ISDIR(st.st_mode)) {
		/* opened once and sniffed from the bytes read: FIFOs and pipes work */
		if ((fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY)) < 0)
			return ds_fail(d, "%s: %s", path, strerror(errno));
		if ((k = ds_read_head(fd, head, sizeof head)) < 0) {
			rc = ds_fail(d, "%s: %s", path, strerror(errno));
			if (!is_stdin)
				close(fd);
			return rc;
		}
		if (image_sniff(head, (size_t)k) != IMAGE_FMT_UNKNOWN) {
			/* a single image: the file itself is the member */
			rc = ds_set_mode(d, MODE_NAMED, path) < 0 ? -1 : ds_read_single_image(d, path, fd, head, (size_t)k);
			if (!is_stdin)
				close(fd);
			return rc;
		}
	}
#pragma omp parallel
#pragma omp single
	{
		if (S_ISDIR(st.st_mode))
			rc = ds_walk(d, path, "", 0);
		else
			rc = ds_read_archive(d, path, fd, head, (size_t)k);
		if (rc == 0)
			rc = chunk_drain(d);
	}
	if (fd > STDIN_FILENO)
		close(fd);
	chunk_discard(&d->chunks[0]);
	chunk_discard(&d->chunks[1]);
	d->cur = 0;
	if (rc == 0)
		rc = resolve_links(d);
	free_links(d);
	if (rc == 0 && d->off_layout)
		rc = official_finish(d, path, prev_mode);
	else if (rc == 0 && (rc = ds_set_mode(d, MODE_NAMED, path)) == 0)
		rc = check_empty_dirs(d);
	official_free(d);
	strmap_free(&d->dirs);
	return rc;
}

/* The order of samples and candidates: input, path, index in a batch,
 * then the order read. */
static int
cmp_source(int xi, const char *xp, int64_t xs, int64_t xq, int yi, const char *yp, int64_t ys, int64_t yq)
{
	int c;
	if (xi != yi)
		return xi < yi ? -1 : 1;
	if (xp != yp && (c = strcmp(xp, yp)) != 0)
		return c;
	if (xs != ys)
		return xs < ys ? -1 : 1;
	return (xq > yq) - (xq < yq);
}

static int
cmp_sample(const void *a, const void *b)
{
	const Sample *x = a, *y = b;
	return cmp_source(x->input, x->path, x->sub, x->seq, y->input, y->path, y->sub, y->seq);
}

static int
cmp_name_idx(const void *a, const void *b, void *names)
{
	char **n = names;
	return strcmp(n[*(const int *)a], n[*(const int *)b]);
}

static int
finish_named(Dataset *d)
{
	int *order, *rank;
	if (d->opt.nclass_names)
		return ds_fail(d, "--classes names the classes of IDX and CIFAR inputs; folders and archives take "
		               "theirs from folder names");
	order = xcalloc((size_t)d->ncnames, sizeof *order);
	rank = xcalloc((size_t)d->ncnames, sizeof *rank);
	/* only classes that kept at least one image (with shards: that have a
	 * candidate, which every rank knows) */
	for (int64_t i = 0; i < d->n; i++)
		if (d->samples[i].cls >= 0)
			rank[d->samples[i].cls] = 1;
	for (int64_t i = 0; i < d->ncands; i++)
		if (d->cands[i].cls >= 0)
			rank[d->cands[i].cls] = 1;
	for (int i = 0; i < d->ncnames; i++)
		if (rank[i])
			order[d->nclasses++] = i;
	qsort_r(order, (size_t)d->nclasses, sizeof *order, cmp_name_idx, d->cnames);
	d->classes = xcalloc((size_t)d->nclasses + 1, sizeof *d->classes);
	for (int i = 0; i < d->nclasses; i++) {
		d->classes[i] = xstrdup(d->cnames[order[i]]);
		rank[order[i]] = i;
	}
	for (int64_t i = 0; i < d->n; i++)
		d->samples[i].label = d->samples[i].cls >= 0 ? rank[d->samples[i].cls] : -1;
	for (int64_t i = 0; i < d->ncands; i++)   /* from here a candidate's cls is its label */
		d->cands[i].cls = d->cands[i].cls >= 0 ? rank[d->cands[i].cls] : -1;
	free(order);
	free(rank);
	return 0;
}

static int
finish_indexed(Dataset *d)
{
	int n = d->nidx_names > d->max_label + 1 ? d->nidx_names : d->max_label + 1;
	if (d->opt.nclass_names) {
		if (d->opt.nclass_names < d->max_label + 1)
			return ds_fail(d, "--classes gives %d names, but the labels go up to %d", d->opt.nclass_names,
			            d->max_label);
		n = d->opt.nclass_names;
	}
	d->nclasses = n;
	d->classes = xcalloc((size_t)n + 1, sizeof *d->classes);
	for (int i = 0; i < n; i++) {
		char num[16];
		snprintf(num, sizeof num, "%d", i);
		d->classes[i] = xstrdup(d->opt.nclass_names ? d->opt.class_names[i]
		                        : i < d->nidx_names ? d->idx_names[i] : num);
	}
	return 0;
}

static int
cmp_cand(const void *a, const void *b, void *cands)
{
	const Cand *x = &((const Cand *)cands)[*(const int64_t *)a], *y = &((const Cand *)cands)[*(const int64_t *)b];
	return cmp_source(x->input, x->path, x->sub, x->seq, y->input, y->path, y->sub, y->seq);
}

static int
cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(char *const *)a, y = (uintptr_t)*(char *const *)b;
	return (x > y) - (x < y);
}

/* With shards, the paths of other shards' members were needed for the ids
 * only: freed, so that a rank holds 8 bytes for each of them, not a name. */
static void
drop_other_paths(Dataset *d)
{
	char **used = xcalloc((size_t)(d->n ? d->n : 1), sizeof *used);
	size_t kept = 0;
	for (int64_t i = 0; i < d->n; i++)
		used[i] = (char *)d->samples[i].path;
	qsort(used, (size_t)d->n, sizeof *used, cmp_ptr);
	for (size_t i = 0; i < d->nstrs; i++) {
		if (bsearch(&d->strs[i], used, (size_t)d->n, sizeof *used, cmp_ptr))
			d->strs[kept++] = d->strs[i];
		else
			free(d->strs[i]);
	}
	d->nstrs = kept;
	free(used);
}

/* Ids: samples in order, or with shards the candidates in order (the same
 * on every rank), each with its label and shard. */
static void
number_ids(Dataset *d)
{
	int64_t *order, *id_of;
	if (d->opt.nshards <= 1) {
		for (int64_t i = 0; i < d->n; i++)
			d->samples[i].id = i;
		d->nids = d->n;
		return;
	}
	order = xcalloc((size_t)d->ncands, sizeof *order);
	id_of = xcalloc((size_t)d->ncands, sizeof *id_of);
	for (int64_t i = 0; i < d->ncands; i++)
		order[i] = i;
	qsort_r(order, (size_t)d->ncands, sizeof *order, cmp_cand, d->cands);
	d->nids = d->ncands;
	d->id_shard = xcalloc((size_t)d->nids, sizeof *d->id_shard);
	d->id_label = xcalloc((size_t)d->nids, sizeof *d->id_label);
	for (int64_t k = 0; k < d->nids; k++) {
		id_of[order[k]] = k;
		d->id_shard[k] = d->cands[order[k]].shard;
		d->id_label[k] = d->cands[order[k]].cls;
	}
	for (int64_t i = 0; i < d->n; i++)
		d->samples[i].id = id_of[d->samples[i].cand];
	free(order);
	free(id_of);
	free(d->cands);
	d->cands = NULL;
	d->ncands = d->capcands = 0;
	drop_other_paths(d);
}

int
dataset_finish(Dataset *d)
{
	int any1 = 0, any3 = 0;
	const Sample *first;
	ASSERT(!d->finished);
	d->finished = 1;
	if (d->opt.split && !d->any_official)
		return ds_fail(d, "--split picks a split of a CIFAR-10, CIFAR-100 or STL-10 archive, and no input is one");
	if (d->n == 0 && d->ncands > 0)
		return ds_fail(d, "--shard %lld/%lld: no image of this shard decoded (%lld images in all shards)",
		               (long long)d->opt.shard, (long long)d->opt.nshards, (long long)d->ncands);
	if (d->n == 0)
		return ds_fail(d, "no images found in the input%s", d->ninputs > 1 ? "s" : "");
	qsort(d->samples, (size_t)d->n, sizeof *d->samples, cmp_sample);
	if ((d->mode == MODE_INDEXED ? finish_indexed(d) : finish_named(d)) < 0)
		return -1;
	number_ids(d);
	for (int64_t i = 0; i < d->n; i++) {
		any1 |= d->samples[i].c == 1;
		any3 |= d->samples[i].c == 3;
	}
	/* with shards a rank cannot see whether other shards hold colour;
	 * --channels 1 decoded every image gray already */
	any3 |= d->opt.nshards > 1 && d->mode == MODE_NAMED && !d->opt.channels;
	if (any1 && any3) {
		/* auto channels: some color images, so every gray one becomes RGB
		 * (when read: the store keeps one channel) */
		d->to_rgb = 1;
		for (int64_t i = 0; i < d->n; i++)
			d->samples[i].c = 3;
	}
	if (d->store && pixstore_flush(d->store) < 0)
		return ds_fail(d, "%s", pixstore_error(d->store));
	first = &d->samples[0];
	for (int64_t i = 1; i < d->n; i++) {
		const Sample *s = &d->samples[i];
		char a[4200], b[4200];
		if (d->opt.sizes_only || (s->h == first->h && s->w == first->w))
			continue;
		return ds_fail(d, "%s: %s: image is %dx%d, but %s is %dx%d; give --size to resize them all",
		            d->inputs[s->input], dataset_source(d, i, a, sizeof a), s->h, s->w,
		            dataset_source(d, 0, b, sizeof b), first->h, first->w);
	}
	return 0;
}

void
dataset_free(Dataset *d)
{
	if (!d)
		return;
	pixstore_free(d->store);
	free(d->samples);
	free(d->cands);
	free(d->id_shard);
	free(d->id_label);
	for (int i = 0; i < d->ninputs; i++)
		free(d->inputs[i]);
	free(d->inputs);
	for (size_t i = 0; i < d->nstrs; i++)
		free(d->strs[i]);
	free(d->strs);
	strmap_free(&d->classmap);
	strmap_free(&d->dirs);
	free_links(d);
	official_free(d);
	for (int i = 0; i < d->ncnames; i++)
		free(d->cnames[i]);
	free(d->cnames);
	for (int i = 0; i < d->nidx_names; i++)
		free(d->idx_names[i]);
	free(d->idx_names);
	for (int i = 0; i < d->nclasses; i++)
		free(d->classes[i]);
	free(d->classes);
	chunk_discard(&d->chunks[0]);
	chunk_discard(&d->chunks[1]);
	free(d);
}

int64_t
dataset_count(const Dataset *d)
{
	return d->n;
}

const Sample *
dataset_sample(const Dataset *d, int64_t i)
{
	ASSERT(i >= 0 && i < d->n);
	return &d->samples[i];
}

const uint8_t *
dataset_pixels(Dataset *d, int64_t i, uint8_t *buf)
{
	const Sample *s = dataset_sample(d, i);
	size_t np = (size_t)s->h * (size_t)s->w;
	const uint8_t *px;
	ASSERT(d->store && s->ref >= 0);
	px = pixstore_get(d->store, s->ref, np * (size_t)s->sc, buf);
	if (!px) {
		ds_fail(d, "%s", pixstore_error(d->store));
		return NULL;
	}
	if (s->sc == s->c)
		return px;
	/* gray to RGB in buf, from the last pixel down: never over one not yet read */
	if (px != buf)
		memcpy(buf, px, np);
	for (size_t k = np; k-- > 0;)
		buf[3 * k] = buf[3 * k + 1] = buf[3 * k + 2] = buf[k];
	return buf;
}

int64_t
dataset_nids(const Dataset *d)
{
	return d->nids;
}

void
dataset_id_table(const Dataset *d, int64_t *labels, int32_t *shards, int64_t *local)
{
	for (int64_t k = 0; k < d->nids; k++) {
		labels[k] = d->id_shard ? d->id_label[k] : d->samples[k].label;
		shards[k] = d->id_shard ? d->id_shard[k] : 0;
		local[k] = -1;
	}
	for (int64_t i = 0; i < d->n; i++)
		local[d->samples[i].id] = i;
}

int64_t
dataset_memory(const Dataset *d)
{
	return d->store ? pixstore_memory(d->store) : 0;
}

int64_t
dataset_spilled(const Dataset *d)
{
	return d->store ? pixstore_spilled(d->store) : 0;
}

const char *
dataset_spill_place(const Dataset *d)
{
	return d->store ? pixstore_place(d->store) : "";
}

int
dataset_nclasses(const Dataset *d)
{
	return d->nclasses;
}

char *const *
dataset_classes(const Dataset *d)
{
	return d->classes;
}

const char *
dataset_input_name(const Dataset *d, int input)
{
	ASSERT(input >= 0 && input < d->ninputs);
	return d->inputs[input];
}

const char *
dataset_source(const Dataset *d, int64_t i, char *buf, size_t len)
{
	const Sample *s = dataset_sample(d, i);
	if (s->sub < 0)
		return s->path;
	snprintf(buf, len, "%s#%lld", s->path, (long long)s->sub);
	return buf;
}

int64_t
dataset_members(const Dataset *d)
{
	return d->members;
}

int64_t
dataset_skipped(const Dataset *d)
{
	return d->skipped;
}

const char *
dataset_summary(const Dataset *d, char *buf, size_t len)
{
	size_t off;
	const char *sep = ": ";
	buf[0] = '\0';
	if (!d->skipped)
		return buf;
	snprintf(buf, len, "skipped %lld of %lld members", (long long)d->skipped, (long long)d->members);
	for (int k = 0; k < SKIP_NKINDS; k++) {
		if (!d->skip_kind[k])
			continue;
		off = strlen(buf);
		snprintf(buf + off, len - off, "%s%lld %s", sep, (long long)d->skip_kind[k], skip_names[k]);
		sep = ", ";
	}
	return buf;
}
