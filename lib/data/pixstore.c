/* pixstore: see pixstore.h. */
#include "data/pixstore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomicfile.h"
#include "base/fault.h"
#include "base/util.h"

#define BLOCK_BYTES  ((size_t)64 << 20)   /* memory is taken in blocks of this size at most */
#define WRITE_BYTES  ((size_t)1 << 20)    /* spill writes are gathered up to this */
#define KEPT_MAGIC   "SSLPIXC"
#define KEPT_VERSION 1
#define MAX_META     (INT64_C(1) << 36)

/* A block of memory; its images sit at logical offsets base.. base+used. */
typedef struct {
	uint8_t *data;
	size_t   cap, used;
	int64_t  base;
} Block;

struct PixStore {
	int64_t    budget, mem;   /* mem: bytes of the blocks taken */
	Block     *blocks;
	int        nblocks;
	int64_t    mem_end;       /* logical end of the pixels in memory */
	int        fd;            /* the spill file, or -1 */
	char      *place;         /* its folder, or the kept file's path */
	int        keeping;       /* the file is a kept one in the making */
	int        named;         /* the file is a cache file (for messages) */
	AtomicFile af;
	int64_t    file_end;      /* offset after the last byte put in the file (buffered ones too) */
	uint8_t   *wbuf;          /* bytes not yet written, from offset wstart */
	size_t     wlen;
	int64_t    wstart;
	int64_t    kept_base;     /* where the memory pixels go in the kept file; -1 before pixstore_keep */
	int64_t    pix_lo, pix_hi;  /* a file opened with pixstore_open_kept: its pixels */
	char       err[1024];
};

static int
fail(PixStore *p, int e, const char *what)
{
	int full = e == ENOSPC || e == EFBIG;
	snprintf(p->err, sizeof p->err, "%s: %s the %s: %s%s", p->place, what, p->named ? "cache file" : "spill file",
	         strerror(e),
	         full ? p->named ? " (give --cache a place with more room, or leave it out)"
	                           : " (give --cache-dir a folder with more room, or a larger --memory)"
	              : "");
	errno = e;
	return -1;
}

static const char *
default_dir(void)
{
	const char *t = getenv("TMPDIR");
	return t && *t ? t : "/var/tmp";
}

static int
open_spill(PixStore *p, const char *dir, char *err, size_t errlen)
{
	size_t n = strlen(dir) + 32;
	char *tmpl = xmalloc(n);
	snprintf(tmpl, n, "%s/ssl-decode-spill.XXXXXX", dir);
	p->fd = mkstemp(tmpl);
	if (p->fd < 0) {
		snprintf(err, errlen, "%s: cannot make a spill file there: %s (give --cache-dir a writable folder)", dir,
		         strerror(errno));
		free(tmpl);
		return -1;
	}
	unlink(tmpl);   /* nothing is left behind, whatever happens next */
	free(tmpl);
	return 0;
}

static int
open_keep(PixStore *p, const char *path, char *err, size_t errlen)
{
	if (atomicfile_open_rw(&p->af, path) < 0) {
		snprintf(err, errlen, "%s: cannot write the cache file: %s", path, strerror(errno));
		return -1;
	}
	p->fd = dup(fileno(p->af.fp));   /* ours: reads go on after the rename closes the FILE */
	if (p->fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		atomicfile_abort(&p->af);
		return -1;
	}
	p->keeping = p->named = 1;
	p->file_end = PIXSTORE_HEADER;   /* written last, once everything else is */
	return 0;
}

PixStore *
pixstore_new(int64_t budget, const char *dir, const char *keep_path, char *err, size_t errlen)
{
	PixStore *p = xcalloc(1, sizeof *p);
	p->budget = budget > 0 ? budget : 0;
	p->fd = -1;
	p->kept_base = -1;
	p->place = xstrdup(keep_path ? keep_path : dir ? dir : default_dir());
	if ((keep_path ? open_keep(p, keep_path, err, errlen) : open_spill(p, p->place, err, errlen)) < 0) {
		free(p->place);
		free(p);
		return NULL;
	}
	p->wstart = p->file_end;
	return p;
}

static int
write_all(int fd, const uint8_t *buf, size_t n, int64_t off)
{
	if (fault_disk_full((long)(off + (int64_t)n))) {   /* tests: a full disk, on demand */
		errno = ENOSPC;
		return -1;
	}
	while (n > 0) {
		ssize_t k = pwrite(fd, buf, n, (off_t)off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -1;
		if (k == 0) {
			errno = ENOSPC;
			return -1;
		}
		buf += k;
		n -= (size_t)k;
		off += k;
	}
	return 0;
}

int
pixstore_flush(PixStore *p)
{
	if (p->wlen > 0 && write_all(p->fd, p->wbuf, p->wlen, p->wstart) < 0)
		return fail(p, errno, "writing");
	p->wstart += (int64_t)p->wlen;
	p->wlen = 0;
	return 0;
}

/* A new block for an image of n bytes, when the budget allows one. */
static Block *
take_block(PixStore *p, size_t n)
{
	size_t cap = n > BLOCK_BYTES ? n : BLOCK_BYTES;
	Block *b;
	if ((int64_t)cap > p->budget - p->mem)
		cap = (size_t)(p->budget - p->mem);
	if (cap < n)
		return NULL;
	p->blocks = xreallocarray(p->blocks, (size_t)p->nblocks + 1, sizeof *p->blocks);
	b = &p->blocks[p->nblocks++];
	b->data = xmalloc(cap);
	b->cap = cap;
	b->used = 0;
	b->base = p->mem_end;
	p->mem += (int64_t)cap;
	return b;
}

int
pixstore_put(PixStore *p, const uint8_t *px, size_t n, PixRef *ref)
{
	Block *b = p->nblocks ? &p->blocks[p->nblocks - 1] : NULL;
	ASSERT(p->pix_hi == 0 && p->kept_base < 0);   /* not a store opened from a kept file */
	if (!b || b->cap - b->used < n)
		b = take_block(p, n);
	if (b) {
		memcpy(b->data + b->used, px, n);
		*ref = 2 * (b->base + (int64_t)b->used);
		b->used += n;
		p->mem_end += (int64_t)n;
		return 0;
	}
	/* over the budget: to the spill file */
	*ref = 2 * p->file_end + 1;
	if (p->wlen + n > WRITE_BYTES && pixstore_flush(p) < 0)
		return -1;
	if (n >= WRITE_BYTES) {
		if (write_all(p->fd, px, n, p->file_end) < 0)
			return fail(p, errno, "writing");
		p->wstart += (int64_t)n;
	} else {
		if (!p->wbuf)
			p->wbuf = xmalloc(WRITE_BYTES);
		memcpy(p->wbuf + p->wlen, px, n);
		p->wlen += n;
	}
	p->file_end += (int64_t)n;
	return 0;
}

static const Block *
find_block(const PixStore *p, int64_t off)
{
	int lo = 0, hi = p->nblocks - 1;
	while (lo < hi) {   /* the last block whose base is <= off */
		int mid = (lo + hi + 1) / 2;
		if (p->blocks[mid].base <= off)
			lo = mid;
		else
			hi = mid - 1;
	}
	return &p->blocks[lo];
}

const uint8_t *
pixstore_get(PixStore *p, PixRef ref, size_t n, uint8_t *buf)
{
	int64_t off = ref / 2;
	size_t got = 0;
	if (!(ref & 1)) {
		const Block *b = find_block(p, off);
		ASSERT(off - b->base + (int64_t)n <= (int64_t)b->used);
		return b->data + (off - b->base);
	}
	if (off + (int64_t)n > p->wstart && p->wlen && pixstore_flush(p) < 0)
		return NULL;
	while (got < n) {
		ssize_t k = pread(p->fd, buf + got, n - got, (off_t)(off + (int64_t)got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			fail(p, k < 0 ? errno : EIO, k < 0 ? "reading" : "reading (cut short)");
			return NULL;
		}
		got += (size_t)k;
	}
	return buf;
}

const char *
pixstore_error(const PixStore *p)
{
	return p->err;
}

int64_t
pixstore_memory(const PixStore *p)
{
	return p->mem_end;
}

int64_t
pixstore_spilled(const PixStore *p)
{
	return p->pix_hi ? p->pix_hi - p->pix_lo : p->file_end - (p->keeping ? PIXSTORE_HEADER : 0);
}

const char *
pixstore_place(const PixStore *p)
{
	return p->place;
}

/* ---- kept stores ---- */

PixRef
pixstore_kept_ref(const PixStore *p, PixRef ref)
{
	ASSERT(p->kept_base >= 0);
	return ref & 1 ? ref : 2 * (p->kept_base + ref / 2) + 1;
}

static void
put_u64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t
get_u64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* magic[8] version[8] pix_off pix_len meta_off meta_len meta_sum file_size */
static void
pack_header(uint8_t *h, int64_t pix_len, int64_t meta_len, uint64_t sum)
{
	memset(h, 0, PIXSTORE_HEADER);
	memcpy(h, KEPT_MAGIC, 8);
	put_u64(h + 8, KEPT_VERSION);
	put_u64(h + 16, PIXSTORE_HEADER);
	put_u64(h + 24, (uint64_t)pix_len);
	put_u64(h + 32, (uint64_t)(PIXSTORE_HEADER + pix_len));
	put_u64(h + 40, (uint64_t)meta_len);
	put_u64(h + 48, sum);
	put_u64(h + 56, (uint64_t)(PIXSTORE_HEADER + pix_len + meta_len));
}

int
pixstore_keep(PixStore *p, int (*meta)(void *ctx, uint8_t **buf, size_t *len), void *ctx)
{
	uint8_t *m = NULL, head[PIXSTORE_HEADER];
	size_t mlen = 0;
	int64_t at;
	ASSERT(p->keeping && p->kept_base < 0);
	if (pixstore_flush(p) < 0)
		goto fail;
	at = p->kept_base = p->file_end;
	for (int i = 0; i < p->nblocks; i++) {
		if (write_all(p->fd, p->blocks[i].data, p->blocks[i].used, at) < 0) {
			fail(p, errno, "writing");
			goto fail;
		}
		at += (int64_t)p->blocks[i].used;
	}
	if (meta(ctx, &m, &mlen) < 0) {
		snprintf(p->err, sizeof p->err, "%s: the metadata does not fit in a cache file", p->place);
		goto fail;
	}
	pack_header(head, at - PIXSTORE_HEADER, (int64_t)mlen, fnv1a(FNV1A_INIT, m, mlen));
	if (write_all(p->fd, m, mlen, at) < 0 || write_all(p->fd, head, sizeof head, 0) < 0) {
		fail(p, errno, "writing");
		goto fail;
	}
	free(m);
	m = NULL;
	if (atomicfile_commit(&p->af) < 0) {
		fail(p, errno, "finishing");
		p->keeping = 0;
		return -1;
	}
	p->keeping = 0;
	return 0;
fail:
	free(m);
	atomicfile_abort(&p->af);
	p->keeping = 0;
	return -1;
}

static int
read_all(int fd, uint8_t *buf, size_t n, int64_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t k = pread(fd, buf + got, n - got, (off_t)(off + (int64_t)got));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

/* Checks the header h of a file of size bytes: NULL, or what is wrong. */
static const char *
check_header(const uint8_t *h, int64_t size)
{
	uint64_t pix_off = get_u64(h + 16), pix_len = get_u64(h + 24), meta_off = get_u64(h + 32);
	uint64_t meta_len = get_u64(h + 40), file_size = get_u64(h + 56);
	if (memcmp(h, KEPT_MAGIC, 8) != 0)
		return "not an ssl-decode cache file";
	if (get_u64(h + 8) != KEPT_VERSION)
		return "a cache file of another version";
	if (file_size != (uint64_t)size)
		return "cut short or grown: its size is not the one its header gives";
	if (pix_off != PIXSTORE_HEADER || pix_len > (uint64_t)size || meta_off != pix_off + pix_len ||
	    meta_len > (uint64_t)MAX_META || meta_off + meta_len != file_size)
		return "damaged header";
	return NULL;
}

PixStore *
pixstore_open_kept(const char *path, uint8_t **meta, size_t *metalen, char *err, size_t errlen)
{
	uint8_t head[PIXSTORE_HEADER], *m;
	struct stat st = { 0 };
	const char *why;
	PixStore *p;
	int fd = open(path, O_RDONLY | O_NONBLOCK);   /* a FIFO must not block: refused below */
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		errno = e;   /* ENOENT: no cache yet */
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < PIXSTORE_HEADER ||
	    read_all(fd, head, sizeof head, 0) < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path,
		         !st.st_mode                    ? strerror(e)   /* fstat failed */
		         : !S_ISREG(st.st_mode)         ? "not a regular file"
		         : st.st_size < PIXSTORE_HEADER ? "too short"
		                                        : strerror(e));
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	if ((why = check_header(head, (int64_t)st.st_size))) {
		snprintf(err, errlen, "%s: %s", path, why);
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	*metalen = (size_t)get_u64(head + 40);
	m = xmalloc(*metalen ? *metalen : 1);
	if (read_all(fd, m, *metalen, (int64_t)get_u64(head + 32)) < 0 ||
	    fnv1a(FNV1A_INIT, m, *metalen) != get_u64(head + 48)) {
		snprintf(err, errlen, "%s: its metadata does not match its checksum", path);
		free(m);
		close(fd);
		errno = EINVAL;
		return NULL;
	}
	p = xcalloc(1, sizeof *p);
	p->fd = fd;
	p->named = 1;
	p->kept_base = -1;
	p->place = xstrdup(path);
	p->pix_lo = PIXSTORE_HEADER;
	p->pix_hi = (int64_t)get_u64(head + 32);
	*meta = m;
	return p;
}

int
pixstore_valid(const PixStore *p, PixRef ref, size_t n)
{
	int64_t off = ref / 2;
	if (ref < 0 || !(ref & 1) || !p->pix_hi)
		return 0;
	return off >= p->pix_lo && (uint64_t)off + n <= (uint64_t)p->pix_hi;
}

void
pixstore_free(PixStore *p)
{
	if (!p)
		return;
	if (p->keeping)
		atomicfile_abort(&p->af);
	if (p->fd >= 0)
		close(p->fd);
	for (int i = 0; i < p->nblocks; i++)
		free(p->blocks[i].data);
	free(p->blocks);
	free(p->wbuf);
	free(p->place);
	free(p);
}
