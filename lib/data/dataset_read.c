/* dataset_read: reading the inputs that hold image files: folders (a walk
 * in <class>/<file> layout) and archives (through libarchive, from a file,
 * a pipe or stdin), handing members to the decoders (see dataset.h). */
#include "data/dataset_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

/* ---- folders ---- */

static int read_file(Dataset *d, const char *full, const char *rel, int kind);
int ds_read_archive(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen);

int
ds_walk(Dataset *d, const char *root, const char *rel, int depth)
{
	char full[4096], child[4096];
	DIR *dir;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	int rc = 0;
	snprintf(full, sizeof full, "%s%s%s", root, *rel ? "/" : "", rel);
	if (depth > DATASET_MAX_DEPTH) {
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
			if (ds_member_kind(child) != 3) {
				d->members++;
				rc = ds_skip(d, SKIP_UNREADABLE, child, "%s", strerror(errno));
			}
			continue;
		}
		if (S_ISDIR(st.st_mode)) {
			if (S_ISLNK(lst.st_mode))
				continue;   /* not followed: no loops */
			ds_dir_note(d, child, 0);
			rc = ds_walk(d, root, child, depth + 1);
		} else if (S_ISREG(st.st_mode) && official_kind(child)) {
			rc = official_file(d, root, cfull, child);
		} else if (S_ISREG(st.st_mode)) {
			rc = read_file(d, cfull, child, ds_member_kind(child));
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
ssize_t
ds_read_head(int fd, uint8_t *buf, size_t n)
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

/* With shards, a member to be decoded is a candidate of its shard; -1 when
 * it is another shard's (then it is only noted, not read), else its
 * candidate (-1 without shards too: *theirs says which). */
static int64_t
shard_member(Dataset *d, const char *member, int *theirs)
{
	int sh;
	int64_t c;
	*theirs = 0;
	if (d->opt.nshards <= 1)
		return -1;
	sh = ds_shard_of(d, member, -1);
	c = ds_add_cand(d, ds_keep_str(d, xstrdup(member)), -1, ds_class_of(d, member), sh);
	if (sh != d->opt.shard) {
		ds_note_member_dir(d, member);   /* its folder is not empty */
		*theirs = 1;
	}
	return c;
}

static int
read_file(Dataset *d, const char *full, const char *rel, int kind)
{
	uint8_t head[16], *data;
	size_t headlen = 0, len;
	int w, theirs;
	int64_t cand;
	if (kind == 0)
		return 0;
	if (kind == 3) {
		int fd = open(full, O_RDONLY);
		ssize_t k = fd < 0 ? -1 : ds_read_head(fd, head, sizeof head);
		if (fd >= 0)
			close(fd);
		if (k <= 0)
			return 0;   /* unreadable or empty, and not named like an image */
		headlen = (size_t)k;
	}
	w = ds_member_wanted(d, rel, kind, head, headlen);
	if (w == 0)
		return 0;
	if (w < 0)
		return ds_skip(d, SKIP_UNSUPPORTED, rel, "unsupported image format");
	if ((cand = shard_member(d, rel, &theirs)), theirs)
		return 0;   /* not opened */
	if (ds_slurp_path(full, DATASET_MAX_MEMBER_BYTES, &data, &len) < 0) {
		d->members++;
		ds_note_member_dir(d, rel);
		if (errno == EFBIG)
			return ds_skip(d, SKIP_TOO_LARGE, rel, "over %lld bytes", (long long)DATASET_MAX_MEMBER_BYTES);
		return ds_skip(d, SKIP_UNREADABLE, rel, "%s", strerror(errno));
	}
	return ds_submit(d, rel, data, len, cand);
}

/* ---- archives ---- */

/* Reads the current entry's data, after the pre bytes already read from
 * it (a member whose name says nothing, sniffed by archive_head). Returns
 * 0 (data in *out), 2 (over the limit), 3 (this entry cannot be read; the
 * archive goes on), 4 (more data than the archive's header says), -1 (the
 * archive is damaged).
 * Memory follows the bytes that arrive, not the size a header claims, and
 * never exceeds that size: a member whose header lies (or a decompression
 * bomb) costs what the header promised at most. A member named like an
 * image whose first 8 bytes are not one is not read further (a *.jpg full
 * of zeros is not stored): those 8 bytes are kept for the decoder's
 * message. */
static int
archive_slurp(struct archive *a, int64_t size, const uint8_t *pre, size_t prelen, uint8_t **out, size_t *outlen)
{
	size_t cap = size >= 0 && size < (1 << 20) ? (size_t)size + 1 : 1 << 20, len = prelen;
	uint8_t *buf;
	int sniffed = 0;
	if (size > DATASET_MAX_MEMBER_BYTES)
		return 2;
	if (size >= 0 && (int64_t)prelen > size)
		return 4;
	buf = xmalloc(cap);   /* cap > prelen: at least size + 1, or 1 MiB */
	memcpy(buf, pre, prelen);
	for (;;) {
		la_ssize_t k;
		if (!sniffed && len >= 8) {
			if (image_sniff(buf, len) == IMAGE_FMT_UNKNOWN)
				break;   /* named like an image but is not one */
			sniffed = 1;
		}
		if ((k = archive_read_data(a, buf + len, cap - len)) < 0) {
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

/* Whether a member whose name says nothing (kind 3) is a candidate: its
 * first 8 bytes (ds_sniff_head) look like an image. Every rank decides so
 * from these bytes alone, before the header's size or a later read error
 * can count, so that all ranks agree on the candidates and so on the ids;
 * the rank that decodes it reads on after them (*got bytes in head). */
static int
archive_head(struct archive *a, uint8_t head[8], size_t *got)
{
	*got = 0;
	while (*got < 8) {
		la_ssize_t k = archive_read_data(a, head + *got, 8 - *got);
		if (k <= 0)
			break;
		*got += (size_t)k;
	}
	return ds_sniff_head(head, *got);
}

/* With shards, a hard link is a candidate of its target's shard (the rank
 * that decodes the target makes the link's record). 1 when it is another
 * shard's (noted only), 0 to keep it (with its candidate in link_cand). */
static int
shard_link(Dataset *d, const char *member, const char *target)
{
	int sh;
	int64_t c;
	if (d->opt.nshards <= 1)
		return 0;
	sh = ds_shard_of(d, target, -1);
	c = ds_add_cand(d, ds_keep_str(d, xstrdup(member)), -1, ds_class_of(d, member), sh);
	if (sh != d->opt.shard) {
		ds_note_member_dir(d, member);
		return 1;
	}
	d->link_cand = xreallocarray(d->link_cand, d->nlinks + 1, sizeof *d->link_cand);
	d->link_cand[d->nlinks] = c;
	return 0;
}

int
ds_read_archive(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	char member[4096] = "", last[4096] = "";
	uint8_t mhead[8];   /* a member's first bytes */
	size_t mheadlen;
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
			if (!ds_is_junk_path(member)) {
				d->members++;
				rc = ds_skip(d, SKIP_UNREADABLE, member, "%s", archive_error_string(a));
			}
			continue;
		}
		if (!*member || ds_is_junk_path(member))
			continue;
		if ((rc = official_refuse_other(d, path, member)) < 0)
			break;
		if (archive_entry_filetype(e) == AE_IFREG && official_kind(member)) {
			rc = official_archive_entry(d, a, path, member,
			                            archive_entry_size_is_set(e) ? archive_entry_size(e) : -1);
			continue;
		}
		if (archive_entry_filetype(e) == AE_IFDIR) {
			ds_dir_note(d, member, 0);
			continue;
		}
		if (archive_entry_hardlink(e) && !(archive_entry_size_is_set(e) && archive_entry_size(e) > 0)) {
			char target[4096];
			if (ds_member_kind(member) == 0)
				continue;
			if (!clean_member_path(archive_entry_hardlink(e), target, sizeof target))
				snprintf(target, sizeof target, "%.64s...", archive_entry_hardlink(e));
			if ((rc = shard_link(d, member, target)) != 0) {
				rc = rc < 0 ? rc : 0;
				continue;
			}
			d->links = xreallocarray(d->links, 2 * d->nlinks + 2, sizeof *d->links);
			d->links[2 * d->nlinks] = xstrdup(member);
			d->links[2 * d->nlinks + 1] = xstrdup(target);
			d->nlinks++;
			continue;
		}
		if (archive_entry_filetype(e) != AE_IFREG)
			continue;
		kind = ds_member_kind(member);
		w = ds_member_wanted(d, member, kind == 3 ? 1 : kind, NULL, 0);
		if (w < 0) {
			rc = ds_skip(d, SKIP_UNSUPPORTED, member, "unsupported image format");
			continue;
		}
		mheadlen = 0;
		if (kind == 3 && !archive_head(a, mhead, &mheadlen))
			continue;   /* not an image: quietly, on every rank */
		if (!ds_mine(d, member, -1)) {   /* another shard's: noted, its data skipped unread */
			int theirs;
			shard_member(d, member, &theirs);
			archive_read_data_skip(a);
			continue;
		}
		{
			uint8_t *data = NULL;
			size_t len = 0;
			int64_t size = archive_entry_size_is_set(e) ? archive_entry_size(e) : -1;
			int s = archive_slurp(a, size, mhead, mheadlen, &data, &len), theirs;
			int64_t cand = -1;
			if (s != -1)   /* a candidate from here on: a failure is its skip, and it keeps its id */
				cand = shard_member(d, member, &theirs);
			if (s == -1) {
				rc = ds_fail(d, "%s: %s: %s", path, member, archive_error_string(a));
				break;
			}
			if (s > 1) {
				d->members++;
				ds_note_member_dir(d, member);
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
			rc = ds_submit(d, member, data, len, cand);
		}
	}
	archive_read_free(a);
	free(src);
	return rc;
}
