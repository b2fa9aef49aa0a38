/* tensor: a named, contiguous, C-order array with a dtype and a shape.
 *
 * Shapes are outermost first (numpy/PyTorch order). data is either owned
 * (tensor_alloc / tensor_free) or borrowed (points into someone else's
 * memory, e.g. a stream record valid until the next read). */
#ifndef SSL_TENSOR_H
#define SSL_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAX_DIM  8
#define TENSOR_MAX_NAME 96

typedef enum { DTYPE_U8, DTYPE_I32, DTYPE_I64, DTYPE_F32, DTYPE_F64 } DType;

typedef struct {
	DType   dtype;
	int     ndim;
	int64_t shape[TENSOR_MAX_DIM];
	void   *data;   /* C order, contiguous, little-endian */
	int     owned;  /* 1 if tensor_free must free data */
	char    name[TENSOR_MAX_NAME];
} Tensor;

size_t      dtype_size(DType t);
const char *dtype_str(DType t);              /* "|u1" "<i4" "<i8" "<f4" "<f8" */
int         dtype_parse(const char *s, size_t len, DType *out); /* -1 if unknown */

/* Number of elements, or -1 when a dim is negative or the product overflows
 * int64 or `limit` elements (limit <= 0: no limit beyond int64). */
int64_t tensor_numel_checked(const int64_t *shape, int ndim, int64_t limit);
int64_t tensor_numel(const Tensor *t);       /* trusted shapes only */
size_t  tensor_nbytes(const Tensor *t);

/* Owned allocation (zeroed); dies on overflow or OOM. */
void tensor_alloc(Tensor *t, const char *name, DType dtype, int ndim, const int64_t *shape);
void tensor_free(Tensor *t);
/* A borrowed view of existing data. */
Tensor tensor_view(const char *name, DType dtype, int ndim, const int64_t *shape, void *data);
/* "32x32x3" into buf. */
const char *tensor_shape_str(const Tensor *t, char *buf, size_t len);
int tensor_same_shape(const Tensor *a, const Tensor *b);

#endif
