/* npy: see npy.h. */
#include "io/npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

int
npy_header(char *buf, DType dtype, int ndim, const int64_t *shape)
{
	char dict[NPY_HEADER_BYTES];
	int len;
	if (ndim == 1)
		len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld,), }",
		               dtype_str(dtype), (long long)shape[0]);
	else if (ndim == 2)
		len = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
		               dtype_str(dtype), (long long)shape[0], (long long)shape[1]);
	else
		return -1;
	/* magic (6) + version (2) + length (2) + dict + at least the '\n' */
	if (len < 0 || 10 + len + 1 > NPY_HEADER_BYTES)
		return -1;
	memcpy(buf, "\x93NUMPY\x01\x00", 8);
	buf[8] = (char)((NPY_HEADER_BYTES - 10) & 0xff);
	buf[9] = (char)((NPY_HEADER_BYTES - 10) >> 8);
	memcpy(buf + 10, dict, (size_t)len);
	memset(buf + 10 + len, ' ', (size_t)(NPY_HEADER_BYTES - 10 - len - 1));
	buf[NPY_HEADER_BYTES - 1] = '\n';
	return 0;
}

int
npy_writer_open(NpyWriter *w, const char *path, DType dtype, int ndim, int64_t cols,
                char *err, size_t errlen)
{
	char hdr[NPY_HEADER_BYTES];
	int64_t shape[2] = { 0, cols };
	memset(w, 0, sizeof *w);
	if ((ndim != 1 && ndim != 2) || cols < 1 || (ndim == 1 && cols != 1)) {
		snprintf(err, errlen, "%s: bad array shape", path);
		return -1;
	}
	if (npy_header(hdr, dtype, ndim, shape) < 0) {
		snprintf(err, errlen, "%s: array shape does not fit a .npy header", path);
		return -1;
	}
	if (atomicfile_open(&w->af, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	/* A placeholder; the real row count is written by npy_writer_commit. */
	if (fwrite(hdr, 1, sizeof hdr, w->af.fp) != sizeof hdr) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		atomicfile_abort(&w->af);
		return -1;
	}
	w->dtype = dtype;
	w->ndim = ndim;
	w->cols = cols;
	w->open = 1;
	return 0;
}

int
npy_writer_put(NpyWriter *w, const void *data, int64_t n, char *err, size_t errlen)
{
	size_t count, bytes;
	ASSERT(w->open && n >= 0);
	if (size_mul((size_t)n, (size_t)w->cols, &count) < 0 || size_mul(count, dtype_size(w->dtype), &bytes) < 0) {
		snprintf(err, errlen, "%s: array too large", w->af.path);
		return -1;
	}
	if (bytes && fwrite(data, 1, bytes, w->af.fp) != bytes) {
		snprintf(err, errlen, "%s: %s", w->af.path, strerror(errno));
		return -1;
	}
	w->rows += n;
	return 0;
}

/* Writes the final header and syncs: the file is complete under its
 * temporary name. On failure the writer is aborted. */
static int
npy_writer_finish(NpyWriter *w, char *err, size_t errlen)
{
	char hdr[NPY_HEADER_BYTES];
	int64_t shape[2] = { w->rows, w->cols };
	char path[4096];
	ASSERT(w->open);
	snprintf(path, sizeof path, "%s", w->af.path);
	if (npy_header(hdr, w->dtype, w->ndim, shape) < 0) {
		snprintf(err, errlen, "%s: array shape does not fit a .npy header", path);
		npy_writer_abort(w);
		return -1;
	}
	/* Back to the start for the header, then to the end again so that the
	 * file position (and atomicfile's accounting) covers the whole file. */
	if (fseek(w->af.fp, 0, SEEK_SET) < 0 || fwrite(hdr, 1, sizeof hdr, w->af.fp) != sizeof hdr ||
	    fseek(w->af.fp, 0, SEEK_END) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		npy_writer_abort(w);
		return -1;
	}
	w->open = 0;
	if (atomicfile_sync(&w->af) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
npy_writer_commit(NpyWriter *w, char *err, size_t errlen)
{
	char path[4096];
	snprintf(path, sizeof path, "%s", w->af.path);
	if (npy_writer_finish(w, err, errlen) < 0)
		return -1;
	if (atomicfile_rename(&w->af) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

int
npy_writer_commit_pair(NpyWriter *a, NpyWriter *b, char *err, size_t errlen)
{
	char apath[4096], bpath[4096];
	snprintf(apath, sizeof apath, "%s", a->af.path);
	snprintf(bpath, sizeof bpath, "%s", b->af.path);
	if (npy_writer_finish(a, err, errlen) < 0) {
		npy_writer_abort(b);
		return -1;
	}
	if (npy_writer_finish(b, err, errlen) < 0) {
		atomicfile_abort(&a->af);
		return -1;
	}
	if (atomicfile_rename(&b->af) < 0) {
		snprintf(err, errlen, "%s: %s", bpath, strerror(errno));
		atomicfile_abort(&a->af);
		return -1;
	}
	if (atomicfile_rename(&a->af) < 0) {
		snprintf(err, errlen, "%s: %s", apath, strerror(errno));
		unlink(bpath);
		return -1;
	}
	return 0;
}

void
npy_writer_abort(NpyWriter *w)
{
	if (w->open)
		atomicfile_abort(&w->af);
	w->open = 0;
}

int
npy_write(const char *path, const void *data, DType dtype, int ndim, const int64_t *shape,
          char *err, size_t errlen)
{
	NpyWriter w;
	if (ndim != 1 && ndim != 2) {
		snprintf(err, errlen, "%s: only 1-D and 2-D arrays", path);
		return -1;
	}
	if (npy_writer_open(&w, path, dtype, ndim, ndim == 2 ? shape[1] : 1, err, errlen) < 0)
		return -1;
	if (npy_writer_put(&w, data, shape[0], err, errlen) < 0) {
		npy_writer_abort(&w);
		return -1;
	}
	return npy_writer_commit(&w, err, errlen);
}

char *
npy_labels_path(const char *path)
{
	size_t n = strlen(path);
	size_t stem = n >= 4 && strcmp(path + n - 4, ".npy") == 0 ? n - 4 : n;
	char *out = xmalloc(stem + sizeof ".labels.npy");
	memcpy(out, path, stem);
	memcpy(out + stem, ".labels.npy", sizeof ".labels.npy");
	return out;
}
