/* dataset_files: the inputs that are files of records rather than image
 * files: the official CIFAR-10/CIFAR-100/STL-10 binary archives, IDX files,
 * CIFAR batches, and a single image given as an input (see dataset.h). */
#include "data/dataset_impl.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>

/* ---- official dataset files: CIFAR-10, CIFAR-100, STL-10 (binary versions) ---- */

/* A split and the data files it is made of, in record order. */
typedef struct {
	const char *split;
	const char *files[6];
} OffSplit;

typedef struct {
	const char *title, *root, *download;
	const char *members[8];   /* the data and class-name files that identify the layout */
	OffSplit    splits[4];
	const char *names, *coarse_names;
	int         nclass, ncoarse;
	int         h, w;
} OffLayout;

static const OffLayout off_layouts[] = {
	[OFF_CIFAR10 - 1] = {
		"CIFAR-10", "cifar-10-batches-bin", "cifar-10-binary.tar.gz",
		{ "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
		  "test_batch.bin", "batches.meta.txt" },
		{ { "train", { "data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
		               "data_batch_5.bin" } },
		  { "test", { "test_batch.bin" } } },
		"batches.meta.txt", NULL, 10, 0, 32, 32,
	},
	[OFF_CIFAR100 - 1] = {
		"CIFAR-100", "cifar-100-binary", "cifar-100-binary.tar.gz",
		{ "train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt" },
		{ { "train", { "train.bin" } }, { "test", { "test.bin" } } },
		"fine_label_names.txt", "coarse_label_names.txt", 100, 20, 32, 32,
	},
	[OFF_STL10 - 1] = {
		"STL-10", "stl10_binary", "stl10_binary.tar.gz",
		{ "train_X.bin", "train_y.bin", "test_X.bin", "test_y.bin", "unlabeled_X.bin", "class_names.txt" },
		{ { "train", { "train_X.bin", "train_y.bin" } },
		  { "test", { "test_X.bin", "test_y.bin" } },
		  { "unlabeled", { "unlabeled_X.bin" } },
		  { "train+unlabeled", { "train_X.bin", "train_y.bin", "unlabeled_X.bin" } } },
		"class_names.txt", NULL, 10, 0, 96, 96,
	},
};

/* Other versions of the same data sets, which we do not read. */
static const char *const off_other[][3] = {
	{ "cifar-10-batches-py/", "the Python version of CIFAR-10", "cifar-10-binary.tar.gz" },
	{ "cifar-10-batches-mat/", "the Matlab version of CIFAR-10", "cifar-10-binary.tar.gz" },
	{ "cifar-100-python/", "the Python version of CIFAR-100", "cifar-100-binary.tar.gz" },
	{ "cifar-100-matlab/", "the Matlab version of CIFAR-100", "cifar-100-binary.tar.gz" },
	{ "stl10_matlab/", "the Matlab version of STL-10", "stl10_binary.tar.gz" },
};

const char *ds_base_name(const char *path);

/* The layout a member belongs to by its file name, or OFF_NONE. */
int
official_kind(const char *member)
{
	const char *base = ds_base_name(member);
	for (int l = 0; l < (int)(sizeof off_layouts / sizeof off_layouts[0]); l++)
		for (int i = 0; i < 8 && off_layouts[l].members[i]; i++)
			if (strcmp(base, off_layouts[l].members[i]) == 0)
				return l + 1;
	return OFF_NONE;
}

/* -1 (an error in d) when member belongs to a version we do not read. */
int
official_refuse_other(Dataset *d, const char *path, const char *member)
{
	for (size_t i = 0; i < sizeof off_other / sizeof off_other[0]; i++) {
		size_t n = strlen(off_other[i][0]) - 1;   /* the folder, or a member inside it */
		if (strncmp(member, off_other[i][0], n) == 0 && (member[n] == '\0' || member[n] == '/'))
			return ds_fail(d, "%s: %s is from %s; ssl-decode reads the binary version, %s", path, member,
			            off_other[i][1], off_other[i][2]);
	}
	return 0;
}

static const OffSplit *
official_split(const OffLayout *L, const char *split)
{
	for (int i = 0; i < 4 && L->splits[i].split; i++)
		if (strcmp(L->splits[i].split, split) == 0)
			return &L->splits[i];
	return NULL;
}

static const char *
official_split_name(const Dataset *d)
{
	return d->opt.split ? d->opt.split : "train";
}

static const char *
official_names_file(const Dataset *d, const OffLayout *L, int *nclass)
{
	int coarse = d->opt.coarse && L->coarse_names;
	*nclass = coarse ? L->ncoarse : L->nclass;
	return coarse ? L->coarse_names : L->names;
}

/* 1 when the selected split (or the class names) needs the file. */
static int
official_needed(const Dataset *d, const OffLayout *L, const char *base)
{
	const OffSplit *sp = official_split(L, official_split_name(d));
	int nclass;
	if (strcmp(base, official_names_file(d, L, &nclass)) == 0)
		return 1;
	for (int i = 0; sp && i < 6 && sp->files[i]; i++)
		if (strcmp(base, sp->files[i]) == 0)
			return 1;
	return 0;
}

/* Notes an official member of layout lay; *want says whether to read its
 * bytes (then official_keep takes them). -1 on error. */
static int
official_member(Dataset *d, const char *path, const char *member, int lay, int *want)
{
	const OffLayout *L = &off_layouts[lay - 1];
	*want = 0;
	if (d->off_layout && d->off_layout != lay)
		return ds_fail(d, "%s: holds files of both %s and %s (%s); give one data set per input", path,
		            off_layouts[d->off_layout - 1].title, L->title, member);
	if (!official_split(L, official_split_name(d))) {
		const char *sep = "";
		char list[128] = "";
		for (int i = 0; i < 4 && L->splits[i].split; i++) {
			size_t o = strlen(list);
			snprintf(list + o, sizeof list - o, "%s%s", sep, L->splits[i].split);
			sep = ", ";
		}
		return ds_fail(d, "%s: --split %s: %s has the splits %s", path, official_split_name(d), L->title, list);
	}
	d->off_layout = lay;
	d->members++;
	if (!official_needed(d, L, ds_base_name(member)))
		return 0;
	for (int i = 0; i < d->noff; i++)
		if (strcmp(ds_base_name(d->off[i].member), ds_base_name(member)) == 0)
			return ds_fail(d, "%s: holds %s twice (%s and %s)", path, ds_base_name(member), d->off[i].member, member);
	if (d->noff == OFF_MAX_FILES)
		return ds_fail(d, "%s: too many %s files", path, L->title);
	*want = 1;
	return 0;
}

/* Keeps the bytes of the member official_member asked for (owned here). */
static void
official_keep(Dataset *d, const char *member, uint8_t *data, size_t len)
{
	OffFile *f = &d->off[d->noff++];
	f->member = xstrdup(member);
	f->data = data;
	f->len = len;
}

void
official_free(Dataset *d)
{
	for (int i = 0; i < d->noff; i++) {
		free(d->off[i].member);
		free(d->off[i].data);
	}
	memset(d->off, 0, sizeof d->off);
	d->noff = 0;
	d->off_layout = OFF_NONE;
}

int ds_slurp_path(const char *path, int64_t max, uint8_t **out, size_t *outlen);

/* An official file found in a folder. */
int
official_file(Dataset *d, const char *root, const char *full, const char *rel)
{
	uint8_t *data;
	size_t len;
	int want;
	if (official_member(d, root, rel, official_kind(rel), &want) < 0)
		return -1;
	if (!want)
		return 0;
	if (ds_slurp_path(full, DATASET_MAX_BATCH_BYTES, &data, &len) < 0)
		return ds_fail(d, "%s: %s: %s", root, rel, errno == EFBIG ? "file too large" : strerror(errno));
	official_keep(d, rel, data, len);
	return 0;
}

/* Reads the current archive entry whole (at most DATASET_MAX_BATCH_BYTES).
 * Memory follows the bytes that arrive, up to the size the header gives. */
int
official_archive_entry(Dataset *d, struct archive *a, const char *path, const char *member, int64_t size)
{
	const size_t step = (size_t)64 << 20;
	size_t most = size >= 0 ? (size_t)size + 1 : (size_t)DATASET_MAX_BATCH_BYTES + 1;
	size_t cap = most < step ? most : step, len = 0;
	uint8_t *buf;
	int want;
	if (official_member(d, path, member, official_kind(member), &want) < 0)
		return -1;
	if (!want)
		return 0;
	if (size > DATASET_MAX_BATCH_BYTES)
		return ds_fail(d, "%s: %s: over %lld bytes", path, member, (long long)DATASET_MAX_BATCH_BYTES);
	buf = xmalloc(cap);
	for (;;) {
		la_ssize_t k = archive_read_data(a, buf + len, cap - len);
		if (k < 0) {
			free(buf);
			return ds_fail(d, "%s: %s: %s", path, member, archive_error_string(a));
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (len == most) {
			free(buf);
			if (size >= 0)
				return ds_fail(d, "%s: %s: more data than the archive says (%lld bytes)", path, member,
				            (long long)size);
			return ds_fail(d, "%s: %s: over %lld bytes", path, member, (long long)DATASET_MAX_BATCH_BYTES);
		}
		if (len == cap) {
			cap = cap * 2 < most ? cap * 2 : most;
			buf = xrealloc(buf, cap);
		}
	}
	official_keep(d, member, buf, len);
	return 0;
}

/* ---- IDX and CIFAR batches ---- */

/* Looks at the bytes read so far: -1 and a reason when they already
 * cannot be a good file (read_raw then stops reading). */
typedef int (*RawCheck)(const uint8_t *buf, size_t len, char *why, size_t whylen);

/* Reads a whole file through libarchive's raw format, so gzip (and any
 * other filter libarchive knows) comes for free. check (or NULL) runs
 * after every read, so that a gzip bomb is refused after a few MiB. */
static int
read_raw(Dataset *d, const char *path, RawCheck check, uint8_t **out, size_t *outlen)
{
	struct archive *a = archive_read_new();
	struct archive_entry *e;
	size_t cap = 1 << 20, len = 0;
	uint8_t *buf;
	int rc = 0;
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	archive_read_support_format_empty(a);
	if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK ||
	    (rc = archive_read_next_header(a, &e)) < ARCHIVE_WARN) {
		rc = ds_fail(d, "%s: %s", path, archive_error_string(a));
		archive_read_free(a);
		return rc;
	}
	buf = xmalloc(cap);
	if (rc == ARCHIVE_EOF) {   /* an empty file */
		archive_read_free(a);
		*out = buf;
		*outlen = 0;
		return 0;
	}
	rc = 0;
	for (;;) {
		la_ssize_t k = archive_read_data(a, buf + len, cap - len);
		if (k < 0) {
			rc = ds_fail(d, "%s: %s", path, archive_error_string(a));
			break;
		}
		if (k == 0)
			break;
		len += (size_t)k;
		if (check) {
			char why[256];
			if (check(buf, len, why, sizeof why) < 0) {
				rc = ds_fail(d, "%s: %s", path, why);
				break;
			}
		}
		if (len == cap) {
			if ((int64_t)cap >= DATASET_MAX_BATCH_BYTES) {
				rc = ds_fail(d, "%s: over %lld bytes", path, (long long)DATASET_MAX_BATCH_BYTES);
				break;
			}
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
	}
	archive_read_free(a);
	if (rc < 0) {
		free(buf);
		return -1;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

const char *
ds_base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static uint32_t
be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* An IDX file longer than its header says is refused as soon as it is
 * (a gzip bomb behind a small header), not after reading gigabytes. */
static int
idx_check_len(const uint8_t *b, size_t len, char *why, size_t whylen)
{
	uint64_t want = 1, hdr;
	int ndim;
	if (len < 4 || b[0] || b[1] || b[2] != 0x08 || b[3] < 1 || b[3] > 4)
		return 0;   /* read_idx says what is wrong */
	ndim = b[3];
	hdr = 4 + 4 * (uint64_t)ndim;
	if (len < hdr)
		return 0;
	for (int i = 0; i < ndim; i++) {
		uint64_t dim = be32(b + 4 + 4 * i);
		want = dim && want > (UINT64_MAX - hdr) / dim ? UINT64_MAX - hdr : want * dim;
	}
	if (len - hdr > want) {
		snprintf(why, whylen, "IDX data is longer than the %llu bytes its header gives", (unsigned long long)want);
		return -1;
	}
	return 0;
}

/* With shards: records every record of the block as a candidate, and
 * moves this shard's to the front of block (their indices in keep).
 * Returns how many are kept. */
static int64_t
shard_block(Dataset *d, const char *name, uint8_t *block, int64_t n, size_t isz, const int *labels, int64_t *keep)
{
	int64_t m = 0;
	for (int64_t i = 0; i < n; i++) {
		int sh = ds_shard_of(d, name, i);
		ds_add_cand(d, name, i, labels ? labels[i] : -1, sh);
		if (sh != d->opt.shard)
			continue;
		if (m != i)
			memcpy(block + (size_t)m * isz, block + (size_t)i * isz, isz);
		keep[m++] = i;
	}
	return m;
}

/* Adds n images of (h, w, c) stored in block (freed here), resized and
 * converted as the options say, their pixels to the store (with shards,
 * this shard's only). -1 on a write error. */
static int
add_block(Dataset *d, const char *path, uint8_t *block, int64_t n, int h, int w, int c, const int *labels)
{
	int oc = d->opt.channels ? d->opt.channels : c;
	int oh = d->opt.height ? d->opt.height : h, ow = d->opt.width ? d->opt.width : w;
	size_t isz = (size_t)h * (size_t)w * (size_t)c, osz = (size_t)oh * (size_t)ow * (size_t)oc;
	const char *name = ds_keep_str(d, xstrdup(ds_base_name(path)));
	int64_t *keep = NULL, m = n, total = n;
	for (int64_t i = 0; labels && i < n; i++)
		if (labels[i] > d->max_label)
			d->max_label = labels[i];
	if (d->opt.nshards > 1) {
		keep = xcalloc((size_t)(n ? n : 1), sizeof *keep);
		m = n = shard_block(d, name, block, n, isz, labels, keep);
	}
	if (oc != c || oh != h || ow != w) {
		uint8_t *nb = xmalloc(osz * (size_t)(n ? n : 1));
#pragma omp parallel
		{
			uint8_t *tmp = xmalloc((size_t)h * (size_t)w * (size_t)oc);
			void *ws = xmalloc(image_fit_scratch(h, w, oh, ow, oc, (ImageFit)d->opt.fit));
#pragma omp for schedule(static)
			for (int64_t i = 0; i < n; i++) {
				image_convert_channels(tmp, oc, block + (size_t)i * isz, c, (size_t)h * (size_t)w);
				if (oh != h || ow != w)
					image_fit(nb + (size_t)i * osz, oh, ow, tmp, h, w, oc, (ImageFit)d->opt.fit, ws);
				else
					memcpy(nb + (size_t)i * osz, tmp, osz);
			}
			free(tmp);
			free(ws);
		}
		free(block);
		block = nb;
	}
	for (int64_t k = 0; k < m; k++) {
		int64_t i = keep ? keep[k] : k;
		Sample *s = ds_push_sample(d);
		s->path = name;
		s->sub = i;
		s->cand = keep ? d->ncands - total + i : -1;
		s->label = labels ? labels[i] : -1;
		s->h = oh;
		s->w = ow;
		s->c = oc;
		if (ds_keep_pixels(d, s, block + (size_t)k * osz) < 0) {
			free(block);
			free(keep);
			return -1;
		}
	}
	free(block);
	free(keep);
	d->members += total;
	if (d->opt.progress)
		d->opt.progress(d->opt.ctx, d->n);
	return 0;
}

/* "train-images-idx3-ubyte.gz" -> "train-labels-idx1-ubyte.gz" (and the
 * same with or without .gz); NULL when no such file exists. */
static char *
idx_labels_path(const char *path, char *buf, size_t len)
{
	char name[4096], *p;
	const char *base = ds_base_name(path);
	size_t dirlen = (size_t)(base - path), n;
	int k;
	snprintf(name, sizeof name, "%s", base);
	if (!(p = strstr(name, "images")))
		return NULL;
	memcpy(p, "labels", 6);
	if ((p = strstr(name, "idx3")) || (p = strstr(name, "idx4")))
		p[3] = '1';
	for (int pass = 0; pass < 2; pass++) {
		char alt[4096];
		snprintf(alt, sizeof alt, "%s", name);
		n = strlen(alt);
		if (pass == 1) {
			if (n > 3 && strcmp(alt + n - 3, ".gz") == 0)
				alt[n - 3] = '\0';
			else if (n + 3 < sizeof alt)
				memcpy(alt + n, ".gz", 4);
		}
		k = snprintf(buf, len, "%.*s%s", (int)dirlen, path, alt);
		if (k > 0 && (size_t)k < len && access(buf, R_OK) == 0)
			return buf;
	}
	k = snprintf(buf, len, "%.*s%s", (int)dirlen, path, name);
	if (k < 0 || (size_t)k >= len)
		snprintf(buf, len, "%s", name);   /* for the message only */
	return NULL;
}

int
ds_read_idx(Dataset *d, const char *path)
{
	uint8_t *buf = NULL, *lbuf = NULL, *block;
	size_t len, llen, need;
	uint32_t dims[4] = { 0, 0, 0, 1 };
	int ndim, *labels = NULL, rc;
	int64_t n, h, w, c;
	char lpath[4096];
	if (read_raw(d, path, idx_check_len, &buf, &len) < 0)
		return -1;
	if (len < 4 || buf[0] || buf[1] || buf[2] != 0x08) {
		free(buf);
		return ds_fail(d, "%s: not an IDX file of unsigned bytes", path);
	}
	ndim = buf[3];
	if (ndim == 1) {   /* a labels file: read along with its images */
		free(buf);
		return 0;
	}
	if (ndim != 3 && ndim != 4) {
		free(buf);
		return ds_fail(d, "%s: IDX file has %d dimensions, expected 3 (n, rows, cols) or 4", path, ndim);
	}
	if (len < 4 + 4 * (size_t)ndim) {
		free(buf);
		return ds_fail(d, "%s: truncated IDX header", path);
	}
	for (int i = 0; i < ndim; i++)
		dims[i] = be32(buf + 4 + 4 * i);
	n = dims[0];
	h = dims[1];
	w = dims[2];
	c = dims[3];
	if (c != 1 && c != 3) {
		free(buf);
		return ds_fail(d, "%s: IDX images have %lld channels, expected 1 or 3", path, (long long)c);
	}
	if (h < 1 || w < 1) {
		free(buf);
		return ds_fail(d, "%s: IDX images are %lldx%lld: a zero dimension", path, (long long)h, (long long)w);
	}
	if (h > IMAGE_MAX_SIDE || w > IMAGE_MAX_SIDE || h * w > d->opt.max_pixels) {
		free(buf);
		return ds_fail(d, "%s: IDX images are %lldx%lld, over the limit", path, (long long)h, (long long)w);
	}
	need = (size_t)n * (size_t)(h * w * c);   /* < 2^32 * 2^32 * 3: fits in 64 bits */
	if (len - 4 - 4 * (size_t)ndim != need) {
		free(buf);
		return ds_fail(d, "%s: IDX data is %zu bytes, expected %zu for %lld images of %lldx%lldx%lld", path,
		            len - 4 - 4 * (size_t)ndim, need, (long long)n, (long long)h, (long long)w, (long long)c);
	}
	if (idx_labels_path(path, lpath, sizeof lpath)) {
		if (read_raw(d, lpath, idx_check_len, &lbuf, &llen) < 0) {
			free(buf);
			return -1;
		}
		if (llen < 8 || be32(lbuf) != 0x00000801 || be32(lbuf + 4) != (uint32_t)n || llen != 8 + (size_t)n) {
			free(buf);
			free(lbuf);
			return ds_fail(d, "%s: not an IDX labels file for %lld images", lpath, (long long)n);
		}
		labels = xcalloc((size_t)n, sizeof *labels);
		for (int64_t i = 0; i < n; i++)
			labels[i] = lbuf[8 + i];
		free(lbuf);
	} else if (d->opt.warn) {
		char msg[4200];
		snprintf(msg, sizeof msg, "%s: no labels file %s; labels are -1", path, lpath);
		d->opt.warn(d->opt.ctx, msg);
	}
	block = xmalloc(need ? need : 1);
	memcpy(block, buf + 4 + 4 * ndim, need);
	free(buf);
	rc = add_block(d, path, block, n, (int)h, (int)w, (int)c, labels);
	free(labels);
	return rc;
}

/* Class names, one a line (blank lines and trailing spaces dropped), from
 * len bytes; *got is how many there are. NULL unless exactly `want`. */
static char **
parse_names(const uint8_t *buf, size_t len, int want, int *got)
{
	char **names = xcalloc((size_t)want, sizeof *names);
	size_t at = 0;
	int n = 0;
	while (at < len) {
		const uint8_t *nl = memchr(buf + at, '\n', len - at);
		size_t end = nl ? (size_t)(nl - buf) : len, l = end - at;
		while (l > 0 && (buf[at + l - 1] == '\r' || buf[at + l - 1] == ' '))
			l--;
		if (l > 0) {
			if (n < want) {
				names[n] = xmalloc(l + 1);
				memcpy(names[n], buf + at, l);
				names[n][l] = '\0';
			}
			n++;
		}
		at = end + 1;
	}
	*got = n;
	if (n != want) {
		for (int i = 0; i < n && i < want; i++)
			free(names[i]);
		free(names);
		return NULL;
	}
	return names;
}

/* Class names from a file beside path; NULL when absent or when it does
 * not hold exactly `want` names. */
static char **
read_names_beside(const char *path, const char *file, int want)
{
	char full[4096], **names;
	const char *base = ds_base_name(path);
	uint8_t *buf;
	size_t len;
	int got;
	snprintf(full, sizeof full, "%.*s%s", (int)(base - path), path, file);
	if (ds_slurp_path(full, 1 << 20, &buf, &len) < 0)
		return NULL;
	names = parse_names(buf, len, want, &got);
	free(buf);
	return names;
}

static char **
number_names(int n)
{
	char **names = xcalloc((size_t)n, sizeof *names);
	for (int i = 0; i < n; i++) {
		char num[16];
		snprintf(num, sizeof num, "%d", i);
		names[i] = xstrdup(num);
	}
	return names;
}

static void
free_names(char **names, int n)
{
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int
set_indexed_names(Dataset *d, char **names, int n, const char *path)
{
	if (!d->idx_names) {
		d->idx_names = names;
		d->nidx_names = n;
		return 0;
	}
	for (int i = 0; i < n && i < d->nidx_names; i++)
		if (strcmp(names[i], d->idx_names[i]) != 0)
			return ds_fail(d, "%s: class %d is '%s' here but '%s' in an earlier input", path, i, names[i],
			            d->idx_names[i]);
	if (n > d->nidx_names) {
		for (int i = 0; i < d->nidx_names; i++)
			free(d->idx_names[i]);
		free(d->idx_names);
		d->idx_names = names;
		d->nidx_names = n;
		return 0;
	}
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
}

/* The records of a CIFAR batch (buf, len bytes; named what in messages)
 * as an (n, 32, 32, 3) block and labels, both malloc'd. -1 on error. */
static int
cifar_records(Dataset *d, const char *what, const uint8_t *buf, size_t len, int is100, uint8_t **blockp,
              int **labelsp, int64_t *np)
{
	size_t rec = is100 ? 3074 : 3073;
	int nclass = is100 ? (d->opt.coarse ? 20 : 100) : 10, *labels;
	int64_t n;
	uint8_t *block;
	if (len == 0 || len % rec != 0)
		return ds_fail(d, "%s: %zu bytes is not a whole number of CIFAR-%d records of %zu bytes", what, len,
		            is100 ? 100 : 10, rec);
	n = (int64_t)(len / rec);
	labels = xcalloc((size_t)n, sizeof *labels);
	block = xmalloc((size_t)n * 3072);
	for (int64_t i = 0; i < n; i++) {
		const uint8_t *r = buf + (size_t)i * rec;
		const uint8_t *px = r + rec - 3072;   /* planes R, G, B of 32x32 */
		uint8_t *o = block + (size_t)i * 3072;
		labels[i] = is100 ? r[d->opt.coarse ? 0 : 1] : r[0];
		if (labels[i] >= nclass) {
			ds_fail(d, "%s: record %lld: label %d is out of range for %d classes", what, (long long)i, labels[i],
			     nclass);
			free(block);
			free(labels);
			return -1;
		}
		for (int p = 0; p < 1024; p++) {
			o[3 * p] = px[p];
			o[3 * p + 1] = px[1024 + p];
			o[3 * p + 2] = px[2048 + p];
		}
	}
	*blockp = block;
	*labelsp = labels;
	*np = n;
	return 0;
}

int
ds_read_cifar(Dataset *d, const char *path, int is100)
{
	int nclass = is100 ? (d->opt.coarse ? 20 : 100) : 10, *labels, rc;
	int64_t n;
	size_t len;
	uint8_t *buf, *block;
	char **names;
	if (read_raw(d, path, NULL, &buf, &len) < 0)
		return -1;
	if (cifar_records(d, path, buf, len, is100, &block, &labels, &n) < 0) {
		free(buf);
		return -1;
	}
	free(buf);
	names = read_names_beside(path, is100 ? (d->opt.coarse ? "coarse_label_names.txt" : "fine_label_names.txt")
	                                      : "batches.meta.txt", nclass);
	if (!names)
		names = number_names(nclass);
	if (set_indexed_names(d, names, nclass, path) < 0) {
		free_names(names, nclass);
		free(block);
		free(labels);
		return -1;
	}
	rc = add_block(d, path, block, n, 32, 32, 3, labels);
	free(labels);
	return rc;
}

static OffFile *
official_find(Dataset *d, const char *base)
{
	for (int i = 0; i < d->noff; i++)
		if (strcmp(ds_base_name(d->off[i].member), base) == 0)
			return &d->off[i];
	return NULL;
}

/* An STL-10 images file (n x 3 x 96 x 96, each channel plane column-major:
 * byte c*9216 + x*96 + y is channel c of row y, column x) turned into an
 * (n, 96, 96, 3) block in place, with its labels file (bytes 1..10), or
 * none (labels -1). */
static int
stl_records(Dataset *d, const char *path, OffFile *x, OffFile *y, int nclass)
{
	enum { S = 96, PLANE = S * S, REC = 3 * PLANE };
	uint8_t *tmp;
	int *labels = NULL, rc;
	int64_t n;
	if (x->len == 0 || x->len % REC != 0)
		return ds_fail(d, "%s: %s: %zu bytes is not a whole number of STL-10 images of %d bytes", path, x->member,
		            x->len, REC);
	n = (int64_t)(x->len / REC);
	if (y) {
		if (y->len != (size_t)n)
			return ds_fail(d, "%s: %s: %zu labels for the %lld images of %s", path, y->member, y->len,
			            (long long)n, x->member);
		labels = xcalloc((size_t)n, sizeof *labels);
		for (int64_t i = 0; i < n; i++) {
			if (y->data[i] < 1 || y->data[i] > nclass) {
				free(labels);
				return ds_fail(d, "%s: %s: record %lld: label %d is not in 1..%d", path, y->member, (long long)i,
				            y->data[i], nclass);
			}
			labels[i] = y->data[i] - 1;
		}
	}
	tmp = xmalloc(REC);
	for (int64_t i = 0; i < n; i++) {
		uint8_t *im = x->data + (size_t)i * REC;
		memcpy(tmp, im, REC);
		for (int r = 0; r < S; r++)
			for (int c = 0; c < S; c++)
				for (int ch = 0; ch < 3; ch++)
					im[(r * S + c) * 3 + ch] = tmp[ch * PLANE + c * S + r];
	}
	free(tmp);
	rc = add_block(d, x->member, x->data, n, S, S, 3, labels);
	x->data = NULL;   /* add_block freed it */
	free(labels);
	return rc;
}

/* Builds the split from the official files kept from input `path`. */
int
official_finish(Dataset *d, const char *path, int prev_mode)
{
	const OffLayout *L = &off_layouts[d->off_layout - 1];
	const OffSplit *sp = official_split(L, official_split_name(d));
	int nclass, got, rc;
	const char *namesfile = official_names_file(d, L, &nclass);
	char missing[512] = "", **names;
	OffFile *nf;
	for (int64_t i = 0; i < d->n + d->ncands; i++)   /* this shard's images, or any shard's */
		if ((i < d->n ? d->samples[i].input : d->cands[i - d->n].input) == d->cur_input)
			return ds_fail(d, "%s: holds both images and %s files; give them as separate inputs", path, L->title);
	if (prev_mode == MODE_NAMED)
		return ds_fail(d, "%s: cannot mix %s files with image folders and archives in one run", path, L->title);
	for (int i = 0; i <= 6; i++) {
		const char *f = i < 6 ? sp->files[i] : namesfile;
		size_t o = strlen(missing);
		if (f && !official_find(d, f))
			snprintf(missing + o, sizeof missing - o, "%s%s/%s", o ? ", " : "", L->root, f);
	}
	if (*missing)
		return ds_fail(d, "%s: not a whole %s archive (%s): no %s", path, L->title, L->download, missing);
	nf = official_find(d, namesfile);
	if (!(names = parse_names(nf->data, nf->len, nclass, &got)))
		return ds_fail(d, "%s: %s: %d class names, expected %d", path, nf->member, got, nclass);
	if (set_indexed_names(d, names, nclass, path) < 0) {
		free_names(names, nclass);
		return -1;
	}
	d->mode = MODE_INDEXED;
	d->any_official = 1;
	for (int i = 0; i < 6 && sp->files[i]; i++) {
		OffFile *f = official_find(d, sp->files[i]);
		if (d->off_layout == OFF_STL10) {
			size_t k = strlen(sp->files[i]);
			if (sp->files[i][k - 5] != 'X')
				continue;   /* a labels file, read with its images */
			char yname[64];
			snprintf(yname, sizeof yname, "%.*sy.bin", (int)(k - 5), sp->files[i]);
			if (stl_records(d, path, f, official_find(d, yname), nclass) < 0)
				return -1;
		} else {
			uint8_t *block;
			int *labels;
			int64_t n;
			char what[4200];
			snprintf(what, sizeof what, "%s: %s", path, f->member);
			if (cifar_records(d, what, f->data, f->len, d->off_layout == OFF_CIFAR100, &block, &labels, &n) < 0)
				return -1;
			free(f->data);
			f->data = NULL;
			rc = add_block(d, f->member, block, n, 32, 32, 3, labels);
			free(labels);
			if (rc < 0)
				return -1;
		}
	}
	return 0;
}

int
ds_is_idx_name(const char *base)
{
	return strstr(base, "ubyte") && (strstr(base, "idx1") || strstr(base, "idx3") || strstr(base, "idx4"));
}

/* 10 or 100 for CIFAR batch names, else 0. */
int
ds_cifar_kind(const char *base)
{
	if (fnmatch("data_batch_*.bin", base, 0) == 0 || strcmp(base, "test_batch.bin") == 0)
		return 10;
	if (strcmp(base, "train.bin") == 0 || strcmp(base, "test.bin") == 0)
		return 100;
	return 0;
}

int
ds_set_mode(Dataset *d, int mode, const char *path)
{
	if (d->mode != MODE_NONE && d->mode != mode)
		return ds_fail(d, "%s: cannot mix IDX or CIFAR batches with image folders and archives in one run", path);
	d->mode = mode;
	return 0;
}

/* A single image given as an input, its first headlen bytes already read
 * from fd. */
int
ds_read_single_image(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen)
{
	const char *base = ds_base_name(path);
	uint8_t *data;
	size_t len;
	Image im;
	char err[256];
	Sample *s;
	int r;
	int64_t cand = -1;
	if (d->opt.nshards > 1) {   /* a candidate of its shard; another shard's is not read */
		int sh = ds_shard_of(d, base, -1);
		cand = ds_add_cand(d, ds_keep_str(d, xstrdup(base)), -1, -1, sh);
		if (sh != d->opt.shard)
			return 0;
	}
	if (ds_slurp_fd(fd, head, headlen, DATASET_MAX_MEMBER_BYTES, &data, &len) < 0)
		return ds_fail(d, "%s: %s", path, strerror(errno));
	d->members++;
	r = image_load(data, len, d->opt.max_pixels, d->opt.channels, d->opt.height, d->opt.width,
	               (ImageFit)d->opt.fit, &im, err, sizeof err);
	free(data);
	if (r < 0)
		return ds_skip(d, SKIP_DECODE, base, "%s", err);
	s = ds_push_sample(d);
	s->cand = cand;
	s->path = cand >= 0 ? d->cands[cand].path : ds_keep_str(d, xstrdup(base));
	s->h = im.h;
	s->w = im.w;
	s->c = im.c;
	r = ds_keep_pixels(d, s, im.data);
	free(im.data);
	return r;
}
