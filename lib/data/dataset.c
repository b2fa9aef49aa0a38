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

#include "data/image.h"
#include "base/util.h"
#include "data/dataset_impl.h"


/* ---- a small string -> int map (open addressing) ---- */


static uint64_t
str_hash(const char *s)
{
	uint64_t h = UINT64_C(1469598103934665603);
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * UINT64_C(1099511628211);
	return h;
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
	return d;
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
	return s;
}

/* One bad member: warn and count, or with strict, the error. */
int
ds_skip(Dataset *d, int kind, const char *member, const char *fmt, ...) ATTR_PRINTF(4, 5);

int
ds_skip(Dataset *d, int kind, const char *member, const char *fmt, ...)
{
	char what[512], msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
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

/* ---- member paths, classes, folders ---- */

/* Hidden files and folders, and macOS resource forks, are never members. */
static int
is_junk_path(const char *path)
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
static int
class_of(Dataset *d, const char *path)
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

/* Notes path as a folder, and every folder above it (a loop, not a
 * recursion: the depth is the input's to choose). */
static void
dir_note(Dataset *d, const char *path, int flag)
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

static void
note_member_dir(Dataset *d, const char *path)
{
	char *parent = xstrdup(path), *slash = strrchr(parent, '/');
	if (slash) {
		*slash = '\0';
		dir_note(d, parent, DIR_HAS_MEMBER);
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
		note_member_dir(d, member);
		if (at) {
			Sample *s, *t;
			size_t np;
			s = ds_push_sample(d);   /* may move the samples */
			t = &d->samples[*at];
			np = (size_t)t->h * (size_t)t->w * (size_t)t->c;
			s->path = ds_keep_str(d, xstrdup(member));
			s->cls = class_of(d, member);
			s->h = t->h;
			s->w = t->w;
			s->c = t->c;
			if (t->pixels) {
				s->pixels = xmalloc(np ? np : 1);
				memcpy(s->pixels, t->pixels, np);
				s->owned = 1;
			}
		} else {
			rc = ds_skip(d, SKIP_UNREADABLE, member, "hard link to %s, which is not a kept image", target);
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
	d->links = NULL;
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

void
ds_drop_pixels(Dataset *d, Sample *s)
{
	if (!d->opt.sizes_only || !s->owned)
		return;
	free(s->pixels);
	s->pixels = NULL;
	s->owned = 0;
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
			s->path = ds_keep_str(d, p->path);
			s->cls = p->cls;
			s->h = p->img.h;
			s->w = p->img.w;
			s->c = p->img.c;
			s->pixels = p->img.data;
			s->owned = 1;
			p->path = NULL;
			p->img.data = NULL;
			ds_drop_pixels(d, s);
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

/* Takes ownership of data. */
static int
submit(Dataset *d, const char *path, uint8_t *data, size_t len)
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
	p->cls = class_of(d, path);
	c->bytes += len;
	d->members++;
	note_member_dir(d, path);
	if (c->n >= CHUNK_ITEMS || c->bytes >= CHUNK_BYTES)
		return chunk_rotate(d);
	return 0;
}

/* What a member is by its name: 0 junk (skip quietly), 1 an image, 2 an
 * image format we do not decode, 3 unknown (look at the bytes). */
static int
member_kind(const char *path)
{
	int k;
	if (is_junk_path(path))
		return 0;
	k = image_name_kind(path);
	return k ? k : 3;
}

/* Handles a member once its first bytes are known: for kind 3, a quiet skip
 * unless the bytes look like an image. Returns 1 to read the member. */
static int
member_wanted(Dataset *d, const char *path, int kind, const uint8_t *head, size_t headlen)
{
	if (kind == 3 && image_sniff(head, headlen) == IMAGE_FMT_UNKNOWN)
		return 0;
	if (kind == 2) {
		d->members++;
		note_member_dir(d, path);
		return -1;
	}
	return 1;
}

/* ---- folders ---- */

static int read_file(Dataset *d, const char *full, const char *rel, int kind);
static int read_archive(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen);

static int
walk(Dataset *d, const char *root, const char *rel, int depth)
{
	char full[4096], child[4096];
	DIR *dir;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	snprintf(full, sizeof full, "%s%s%s", root, *rel ? "/" : "", rel);
	if (depth > 64) {
		d->members++;
		return ds_skip(d, SKIP_UNREADABLE, rel, "folders nested too deep");
	}
	if (!(dir = opendir(full))) {
		if (!*rel)
			return ds_fail(d, "%s: %s", root, strerror(errno));
		d->members++;
		return ds_skip(d, SKIP_UNREADABLE, rel, "%s", strerror(errno));
	}
	while ((de = readdir(dir))) {
		if (de->d_name[0] == '.' || strcmp(de->d_name, "__MACOSX") == 0)
			continue;
		names = xreallocarray(names, n + 1, sizeof *names);
		names[n++] = xstrdup(de->d_name);
	}
	closedir(dir);
	for (size_t i = 0; i < n; i++) {
		struct stat st, lst;
		int len = snprintf(child, sizeof child, "%s%s%s", rel, *rel ? "/" : "", names[i]);
		char cfull[8192];
		if (rc < 0)
			break;
		if (len < 0 || (size_t)len >= sizeof child ||
		    (len = snprintf(cfull, sizeof cfull, "%s/%s", root, child)) < 0 || (size_t)len >= sizeof cfull) {
			d->members++;
			rc = ds_skip(d, SKIP_UNREADABLE, names[i], "path too long");
			continue;
		}
		if (lstat(cfull, &lst) < 0 || stat(cfull, &st) < 0) {
			if (member_kind(child) != 3) {
				d->members++;
				rc = ds_skip(d, SKIP_UNREADABLE, child, "%s", strerror(errno));
			}
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (S_ISLNK(lst.st_mode))
				continue;   /* not followed: no loops */
			dir_note(d, child, 0);
			rc = walk(d, root, child, depth + 1);
		} else if (S_ISREG(st.st_mode) && official_kind(child)) {
			rc = official_file(d, root, cfull, child);
		} else if (S_ISREG(st.st_mode)) {
			rc = read_file(d, cfull, child, member_kind(child));
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Reads the rest of fd into memory after the `prelen` bytes already read
 * from it (limit: max bytes in all); fd may be a pipe. 0, or -1 with errno
 * set (EFBIG when over the limit). Does not close fd. */
int
ds_slurp_fd(int fd, const uint8_t *pre, size_t prelen, int64_t max, uint8_t **out, size_t *outlen)
{
	struct stat st;
	uint8_t *buf;
	size_t len = prelen, cap;
	if (fstat(fd, &st) < 0)
		return -1;
	if (S_ISREG(st.st_mode) && st.st_size > max) {
		errno = EFBIG;
		return -1;
	}
	cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : (size_t)1 << 16;
	if (cap <= prelen)
		cap = prelen + 1;
	buf = xmalloc(cap);
	if (prelen)
		memcpy(buf, pre, prelen);
	for (;;) {
		ssize_t k = read(fd, buf + len, cap - len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			errno = e;
			return -1;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len == cap) {   /* a pipe, or a file that grew while we read it */
			if ((int64_t)cap > max) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	*out = buf;
	*outlen = len;
	return 0;
}

int
ds_slurp_path(const char *path, int64_t max, uint8_t **out, size_t *outlen)
{
	int fd = open(path, O_RDONLY), rc, e;
	if (fd < 0)
		return -1;
	rc = ds_slurp_fd(fd, NULL, 0, max, out, outlen);
	e = errno;
	close(fd);
	errno = e;
	return rc;
}

/* Reads up to n bytes (fewer only at EOF): the count, or -1. */
static ssize_t
read_head(int fd, uint8_t *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = read(fd, buf + got, n - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0)
			break;
		got += (size_t)k;
	}
	return (ssize_t)got;
}

static int
read_file(Dataset *d, const char *full, const char *rel, int kind)
{
	uint8_t head[16], *data;
	size_t headlen = 0, len;
	int w;
	if (kind == 0)
		return 0;
	if (kind == 3) {
		int fd = open(full, O_RDONLY);
		ssize_t k = fd < 0 ? -1 : read(fd, head, sizeof head);
		if (fd >= 0)
			close(fd);
		if (k <= 0)
			return 0;   /* unreadable or empty, and not named like an image */
		headlen = (size_t)k;
	}
	w = member_wanted(d, rel, kind, head, headlen);
	if (w == 0)
		return 0;
	if (w < 0)
		return ds_skip(d, SKIP_UNSUPPORTED, rel, "unsupported image format");
	if (ds_slurp_path(full, DATASET_MAX_MEMBER_BYTES, &data, &len) < 0) {
		d->members++;
		note_member_dir(d, rel);
		if (errno == EFBIG)
			return ds_skip(d, SKIP_TOO_LARGE, rel, "over %lld bytes", (long long)DATASET_MAX_MEMBER_BYTES);
		return ds_skip(d, SKIP_UNREADABLE, rel, "%s", strerror(errno));
	}
	return submit(d, rel, data, len);
}

/* ---- archives ---- */

/* Reads the current entry's data. Returns 0 (data in *out), 1 (sniffed:
 * not an image), 2 (over the limit), 3 (this entry cannot be read; the
 * archive goes on), 4 (more data than the archive's header says), -1 (the
 * archive is damaged).
 * Memory follows the bytes that arrive, not the size a header claims, and
 * never exceeds that size: a member whose header lies (or a decompression
 * bomb) costs what the header promised at most. Every member is sniffed
 * after its first bytes (a member named *.jpg full of zeros is not stored);
 * sniff selects what a miss means: 1 (skip quietly), or 0 (read on: the
 * decoder then names the problem). */
static int
archive_slurp(struct archive *a, int64_t size, int sniff, uint8_t **out, size_t *outlen)
{
	size_t cap = size >= 0 && size < (1 << 20) ? (size_t)size + 1 : 1 << 20, len = 0;
	uint8_t *buf;
	int sniffed = 0;
	if (size > DATASET_MAX_MEMBER_BYTES)
		return 2;
	buf = xmalloc(cap);
	for (;;) {
		la_ssize_t k = archive_read_data(a, buf + len, cap - len);
		if (k < 0) {
			free(buf);
			return k == ARCHIVE_FATAL ? -1 : 3;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (size >= 0 && len > (size_t)size) {
			free(buf);
			return 4;
		}
		if (!sniffed && len >= 8) {
			if (image_sniff(buf, len) == IMAGE_FMT_UNKNOWN) {
				if (sniff) {
					free(buf);
					return 1;
				}
				/* named like an image but is not one: keep 8 bytes for the decoder's message */
				*out = buf;
				*outlen = len;
				return 0;
			}
			sniffed = 1;
		}
		if ((int64_t)len > DATASET_MAX_MEMBER_BYTES) {
			free(buf);
			return 2;
		}
		if (len == cap) {
			size_t most = size >= 0 ? (size_t)size + 1 : (size_t)DATASET_MAX_MEMBER_BYTES + 1;
			cap = cap * 2 < most ? cap * 2 : most;
			buf = xrealloc(buf, cap);
		}
	}
	if (sniff && !sniffed && image_sniff(buf, len) == IMAGE_FMT_UNKNOWN) {
		free(buf);
		return 1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

/* The member path without leading "/" and "./" and trailing "/"; NULL when
 * it does not fit in buf. */
static const char *
clean_member_path(const char *p, char *buf, size_t len)
{
	size_t n;
	for (;;) {
		if (p[0] == '/')
			p++;
		else if (p[0] == '.' && p[1] == '/')
			p += 2;
		else
			break;
	}
	if (strlen(p) >= len)
		return NULL;   /* never cut: a cut path names another file, or none */
	snprintf(buf, len, "%s", p);
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '/')
		buf[--n] = '\0';
	return buf;
}

/* An archive read from a descriptor opened once (a FIFO, a pipe, standard
 * input): the bytes sniffed before come first. Seeks (zip's central
 * directory, 7z) only where the descriptor is a regular file. */
typedef struct {
	int            fd;
	const uint8_t *head;
	size_t         headlen, headpos;
	uint8_t        buf[1 << 16];
} ArchiveSrc;

static la_ssize_t
src_read(struct archive *a, void *ctx, const void **out)
{
	ArchiveSrc *s = ctx;
	if (s->headpos < s->headlen) {
		size_t n = s->headlen - s->headpos;
		*out = s->head + s->headpos;
		s->headpos = s->headlen;
		return (la_ssize_t)n;
	}
	for (;;) {
		ssize_t k = read(s->fd, s->buf, sizeof s->buf);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			archive_set_error(a, errno, "%s", strerror(errno));
			return -1;
		}
		*out = s->buf;
		return k;
	}
}

static la_int64_t
src_seek(struct archive *a, void *ctx, la_int64_t off, int whence)
{
	ArchiveSrc *s = ctx;
	off_t r;
	if (whence == SEEK_CUR)   /* the descriptor is ahead by the head not yet returned */
		off -= (la_int64_t)(s->headlen - s->headpos);
	if ((r = lseek(s->fd, (off_t)off, whence)) < 0) {
		archive_set_error(a, errno, "%s", strerror(errno));
		return ARCHIVE_FATAL;
	}
	s->headpos = s->headlen;
	return (la_int64_t)r;
}

static la_int64_t
src_skip(struct archive *a, void *ctx, la_int64_t n)
{
	ArchiveSrc *s = ctx;
	off_t now = lseek(s->fd, 0, SEEK_CUR);
	(void)a;
	if (s->headpos < s->headlen || now < 0 || lseek(s->fd, (off_t)n, SEEK_CUR) < 0)
		return 0;   /* libarchive reads through instead */
	return n;
}

static int
read_archive(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char member[4096] = "", last[4096] = "";
	ArchiveSrc *src;
	struct stat st;
	int r, rc = 0, any = 0;
	if (!a)
		return ds_fail(d, "%s: out of memory", path);
	src = xcalloc(1, sizeof *src);
	src->fd = fd;
	src->head = head;
	src->headlen = headlen;
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	archive_read_set_callback_data(a, src);
	archive_read_set_read_callback(a, src_read);
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		archive_read_set_seek_callback(a, src_seek);
		archive_read_set_skip_callback(a, src_skip);
	}
	if (archive_read_open1(a) != ARCHIVE_OK) {
		rc = ds_fail(d, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		free(src);
		return rc;
	}
	while (rc == 0) {
		const char *name;
		int kind, w;
		r = archive_read_next_header(a, &e);
		if (r == ARCHIVE_EOF)
			break;
		if (r == ARCHIVE_FATAL) {
			if (!any)
				rc = ds_fail(d, "%s: %s", path, archive_error_string(a));
			else
				rc = ds_fail(d, "%s: damaged archive after member %s: %s", path, last, archive_error_string(a));
			break;
		}
		any = 1;
		name = archive_entry_pathname(e);
		if (!name)
			name = archive_entry_pathname_utf8(e);
		if (!name)
			continue;
		if (!clean_member_path(name, member, sizeof member)) {
			if (archive_entry_filetype(e) == AE_IFDIR)
				continue;   /* its members say it */
			snprintf(member, sizeof member, "%.64s...", name);
			snprintf(last, sizeof last, "%s", member);
			d->members++;
			rc = ds_skip(d, SKIP_UNREADABLE, member, "path over %zu bytes", sizeof member - 1);
			continue;
		}
		snprintf(last, sizeof last, "%s", member);
		if (r == ARCHIVE_FAILED || r == ARCHIVE_RETRY) {
			if (!is_junk_path(member)) {
				d->members++;
				rc = ds_skip(d, SKIP_UNREADABLE, member, "%s", archive_error_string(a));
			}
			continue;
		}
		if (!*member || is_junk_path(member))
			continue;
		if ((rc = official_refuse_other(d, path, member)) < 0)
			break;
		if (archive_entry_filetype(e) == AE_IFREG && official_kind(member)) {
			rc = official_archive_entry(d, a, path, member,
			                            archive_entry_size_is_set(e) ? archive_entry_size(e) : -1);
			continue;
		}
		if (archive_entry_filetype(e) == AE_IFDIR) {
			dir_note(d, member, 0);
			continue;
		}
		if (archive_entry_hardlink(e) && !(archive_entry_size_is_set(e) && archive_entry_size(e) > 0)) {
			char target[4096];
			if (member_kind(member) == 0)
				continue;
			if (!clean_member_path(archive_entry_hardlink(e), target, sizeof target))
				snprintf(target, sizeof target, "%.64s...", archive_entry_hardlink(e));
			d->links = xreallocarray(d->links, 2 * d->nlinks + 2, sizeof *d->links);
			d->links[2 * d->nlinks] = xstrdup(member);
			d->links[2 * d->nlinks + 1] = xstrdup(target);
			d->nlinks++;
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		kind = member_kind(member);
		w = member_wanted(d, member, kind == 3 ? 1 : kind, NULL, 0);
		if (w < 0) {
			rc = ds_skip(d, SKIP_UNSUPPORTED, member, "unsupported image format");
			continue;
		}
		{
			uint8_t *data = NULL;
			size_t len = 0;
			int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
			int s = archive_slurp(a, size, kind == 3, &data, &len);
			if (s == 1)
				continue;
			if (s == -1) {
				rc = ds_fail(d, "%s: %s: %s", path, member, archive_error_string(a));
				break;
			}
			if (s > 1) {
				d->members++;
				note_member_dir(d, member);
				if (s == 2)
					rc = ds_skip(d, SKIP_TOO_LARGE, member, "over %lld bytes",
					          (long long)DATASET_MAX_MEMBER_BYTES);
				else if (s == 4)
					rc = ds_skip(d, SKIP_UNREADABLE, member, "more data than the archive says (%lld bytes)",
					          (long long)size);
				else
					rc = ds_skip(d, SKIP_UNREADABLE, member, "%s", archive_error_string(a));
				continue;
			}
			rc = submit(d, member, data, len);
		}
	}
	archive_read_free(a);
	free(src);
	return rc;
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
		if ((k = read_head(fd, head, sizeof head)) < 0) {
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
			rc = walk(d, path, "", 0);
		else
			rc = read_archive(d, path, fd, head, (size_t)k);
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

static int
cmp_sample(const void *a, const void *b)
{
	const Sample *x = a, *y = b;
	int c;
	if (x->input != y->input)
		return x->input < y->input ? -1 : 1;
	if (x->path != y->path && (c = strcmp(x->path, y->path)) != 0)
		return c;
	if (x->sub != y->sub)
		return x->sub < y->sub ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
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
	/* only classes that kept at least one image */
	for (int64_t i = 0; i < d->n; i++)
		if (d->samples[i].cls >= 0)
			rank[d->samples[i].cls] = 1;
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

int
dataset_finish(Dataset *d)
{
	int any1 = 0, any3 = 0;
	const Sample *first;
	ASSERT(!d->finished);
	d->finished = 1;
	if (d->opt.split && !d->any_official)
		return ds_fail(d, "--split picks a split of a CIFAR-10, CIFAR-100 or STL-10 archive, and no input is one");
	if (d->n == 0)
		return ds_fail(d, "no images found in the input%s", d->ninputs > 1 ? "s" : "");
	qsort(d->samples, (size_t)d->n, sizeof *d->samples, cmp_sample);
	if ((d->mode == MODE_INDEXED ? finish_indexed(d) : finish_named(d)) < 0)
		return -1;
	for (int64_t i = 0; i < d->n; i++) {
		any1 |= d->samples[i].c == 1;
		any3 |= d->samples[i].c == 3;
	}
	if (any1 && any3) {
		/* auto channels: some color images, so every gray one becomes RGB */
#pragma omp parallel for schedule(dynamic, 64)
		for (int64_t i = 0; i < d->n; i++) {
			Sample *s = &d->samples[i];
			size_t np = (size_t)s->h * (size_t)s->w;
			uint8_t *rgb;
			if (s->c != 1)
				continue;
			if (!s->pixels) {   /* sizes only */
				s->c = 3;
				continue;
			}
			rgb = xmalloc(np * 3);
			image_convert_channels(rgb, 3, s->pixels, 1, np);
			if (s->owned)
				free(s->pixels);
			s->pixels = rgb;
			s->owned = 1;
			s->c = 3;
		}
	}
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
	for (int64_t i = 0; i < d->n; i++)
		if (d->samples[i].owned)
			free(d->samples[i].pixels);
	free(d->samples);
	for (int i = 0; i < d->ninputs; i++)
		free(d->inputs[i]);
	free(d->inputs);
	for (size_t i = 0; i < d->nstrs; i++)
		free(d->strs[i]);
	free(d->strs);
	for (int i = 0; i < d->nblocks; i++)
		free(d->blocks[i]);
	free(d->blocks);
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
