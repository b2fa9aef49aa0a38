/* npy: write NumPy .npy files (format version 1.0) for NumPy users.
 *
 * A file is the magic "\x93NUMPY", version 1.0, a little-endian uint16
 * header length, and a Python dict literal padded with spaces and ended by
 * '\n' so that the data starts at a multiple of 64 bytes:
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (N, D), }
 * then the C-order data. np.load(path) reads it.
 *
 * The row count is often unknown until the end (a stream), so NpyWriter
 * reserves a fixed-size header (NPY_HEADER_BYTES), appends rows, and
 * rewrites the header with the final shape when it commits. The file is
 * written under a temporary name and renamed (lib/base/atomicfile), so a failed
 * run never leaves a half-written .npy. Errors: -1 with a message. */
#ifndef SSL_NPY_H
#define SSL_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "base/atomicfile.h"
#include "io/tensor.h"

#define NPY_HEADER_BYTES 128  /* magic + version + length + dict, data offset */

typedef struct {
	AtomicFile af;
	DType      dtype;      /* DTYPE_F32, DTYPE_I64, ... */
	int        ndim;       /* 1 (shape (N,)) or 2 (shape (N, cols)) */
	int64_t    cols;       /* elements per row (1 when ndim is 1) */
	int64_t    rows;       /* rows written so far */
	int        open;
} NpyWriter;

/* Writes the whole header of an array into buf (NPY_HEADER_BYTES bytes).
 * -1 if the shape does not fit the reserved header. */
int npy_header(char *buf, DType dtype, int ndim, const int64_t *shape);

/* ndim 1: a vector of rows elements (cols must be 1); ndim 2: rows x cols. */
int npy_writer_open(NpyWriter *w, const char *path, DType dtype, int ndim, int64_t cols,
                    char *err, size_t errlen);
/* Appends n rows of cols elements each (data in the writer's dtype). */
int npy_writer_put(NpyWriter *w, const void *data, int64_t n, char *err, size_t errlen);
/* Rewrites the header with the final row count, syncs and renames. */
int npy_writer_commit(NpyWriter *w, char *err, size_t errlen);
/* Two files that belong together (embeddings and their labels): both are
 * written out and synced before either is renamed, b first; when a's rename
 * fails, b is removed. On failure neither file of this run is left. */
int npy_writer_commit_pair(NpyWriter *a, NpyWriter *b, char *err, size_t errlen);
/* Drops the temporary file; safe on a writer that is not open. */
void npy_writer_abort(NpyWriter *w);

/* A whole array in one call. */
int npy_write(const char *path, const void *data, DType dtype, int ndim, const int64_t *shape,
              char *err, size_t errlen);

/* The labels file next to an embeddings .npy: "x.npy" -> "x.labels.npy";
 * a name without ".npy" gets ".labels.npy" appended. malloc'd. */
char *npy_labels_path(const char *path);

#endif
