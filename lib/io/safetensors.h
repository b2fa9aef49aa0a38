/* safetensors: read and write the safetensors format (Hugging Face's
 * tensor file, loaded by PyTorch without running code), and move a model's
 * named parameters in and out of it (ssl-export(1), ssl-train --init-from,
 * ssl-encode -m FILE.safetensors).
 *
 * The format: 8 bytes N (little-endian u64), N bytes of JSON header, then
 * the data area. The header is one object: tensor name -> {"dtype": "F32",
 * "shape": [64, 3, 3, 3], "data_offsets": [begin, end]} (byte offsets into
 * the data area), plus an optional "__metadata__" object of string ->
 * string. The JSON is parsed with jansson (strict: duplicate keys, invalid
 * UTF-8, trailing garbage and integer overflow are errors).
 *
 * Reading trusts nothing: N is at least 2, at most SAFETENSORS_MAX_HEADER
 * and inside the file; the header starts with '{'; every tensor has a known
 * dtype, a shape of non-negative dims (at most SAFETENSORS_MAX_DIM) whose
 * element count times the item size neither overflows nor differs from
 * end - begin; the tensors' byte ranges, sorted, tile the data area exactly
 * (no overlap, no gap, nothing after the last), as the reference
 * implementation requires. Every failure is -1 with one line naming the
 * file and, where there is one, the tensor.
 *
 * Dtypes: the reader knows every dtype of the format (BOOL, U8, I8, I16,
 * U16, I32, U32, I64, U64, F16, BF16, F32, F64, F8_E5M2, F8_E4M3), so any
 * well-formed file opens; restoring a model takes F32 as is, converts F16
 * and BF16 (exactly) and F64 (rounded to nearest) to F32, and wants I64 for
 * the num_batches_tracked counters. The writer writes F32 and I64.
 *
 * Data is little-endian (as the host; lib/io/tensor.h assumes the same). */
#ifndef SSL_SAFETENSORS_H
#define SSL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "nn/params.h"

#define SAFETENSORS_MAX_HEADER 100000000u /* bytes, as the reference implementation */
#define SAFETENSORS_MAX_DIM    8

/* Metadata keys written by safetensors_export_model. */
#define SAFETENSORS_META_CONFIG    "ssl_tools.config"    /* JSON: the checkpoint's config map */
#define SAFETENSORS_META_NORMALIZE "ssl_tools.normalize" /* JSON: {"mean": [..], "std": [..]} on 0..1 pixels */

typedef enum {
	ST_BOOL, ST_U8, ST_I8, ST_I16, ST_U16, ST_I32, ST_U32, ST_I64, ST_U64,
	ST_F16, ST_BF16, ST_F32, ST_F64, ST_F8_E5M2, ST_F8_E4M3
} StDType;

typedef struct {
	char                *name;
	StDType              dtype;
	int                  ndim;   /* 0: a scalar */
	int64_t              shape[SAFETENSORS_MAX_DIM];
	int64_t              numel;
	uint64_t             begin, end; /* byte range in the data area */
	const unsigned char *data;   /* begin of the bytes (not aligned: read with memcpy) */
} StTensor;

typedef struct {
	char *key, *value;
} StMeta;

typedef struct {
	char          *name;     /* for messages (the path) */
	unsigned char *bytes;    /* the whole file */
	size_t         size;
	int            ntensors; /* in the header's order */
	StTensor      *t;
	int            nmeta;
	StMeta        *meta;
} SafeTensors;

const char *safetensors_dtype_name(StDType d);       /* "F32" */
int         safetensors_dtype_parse(const char *s, StDType *out); /* -1 if unknown */
size_t      safetensors_dtype_size(StDType d);       /* bytes per element */
/* "[d0, d1, ...]" into buf (as ssl-export --list prints shapes). */
const char *safetensors_shape_str(const int64_t *shape, int ndim, char *buf, size_t len);

/* 1 when the file starts as a safetensors file does (an 8-byte header
 * length of at least 2, then '{'; an absurd length is for safetensors_open
 * to name), else 0 (a checkpoint, say, or unreadable). */
int  safetensors_sniff(const char *path);
/* Reads and checks a whole file. On failure st is empty (safe to free). */
int  safetensors_open(SafeTensors *st, const char *path, char *err, size_t errlen);
/* The same on bytes in memory (copied); name is used in messages. */
int  safetensors_parse(SafeTensors *st, const void *bytes, size_t size, const char *name, char *err, size_t errlen);
void safetensors_free(SafeTensors *st);

const StTensor *safetensors_find(const SafeTensors *st, const char *name); /* NULL if absent */
const char     *safetensors_meta(const SafeTensors *st, const char *key);  /* NULL if absent */

/* The tensor's values as float32 (F32, F64, F16, BF16); -1 with a message
 * naming the tensor for another dtype or a value that is not finite. */
int  safetensors_read_f32(const StTensor *t, float *out, char *err, size_t errlen);

/* One tensor to write: values of dtype (ST_F32 or ST_I64), C order. */
typedef struct {
	const char    *name;
	StDType        dtype;
	int            ndim;
	const int64_t *shape;
	const void    *data;
} StWriteTensor;

/* Writes the tensors (header in the given order) and the metadata to path,
 * atomically (lib/base/atomicfile.h). The header is padded with spaces so that
 * the data area starts at a multiple of 8 bytes, and the data is laid out
 * largest item size first, so every tensor is aligned to its item size. */
int  safetensors_write(const char *path, const StWriteTensor *t, int n, const StMeta *meta, int nmeta, char *err,
                       size_t errlen);

/* ------------------------------------------------------ model weights */

/* Which parts of a model go out (and what restore expects). */
#define ST_MODEL_HEAD 1u /* the projection head: head.0, head.1, head.3 (head.4, head.6) */
#define ST_MODEL_FC   2u /* the classifier: fc.weight, fc.bias */

/* Writes the encoder's parameters and buffers under torchvision's names
 * (conv1.weight, bn1.running_mean, bn1.num_batches_tracked as an I64
 * scalar, layer1.0.conv1.weight, layer2.0.downsample.0.weight, ...) and,
 * by flags, the head and the classifier, with metadata "format": "pt",
 * SAFETENSORS_META_CONFIG (the config of what the file holds: proj_layers 0
 * without the head, num_classes 0 without the classifier) and
 * SAFETENSORS_META_NORMALIZE. -1 when flags ask for a part the model lacks. */
int  safetensors_export_model(const char *path, const ModelConfig *c, const float *mean, const float *std,
                              const ParamTable *t, unsigned flags, char *err, size_t errlen);

/* The model config and normalisation from the metadata. Returns 1 when
 * found (mean/std: c->in_channels values each, at most 16), 0 when the
 * file has no SAFETENSORS_META_CONFIG, -1 when it is malformed. */
int  safetensors_model_config(const SafeTensors *st, ModelConfig *c, float *mean, float *std, char *err,
                              size_t errlen);
/* The encoder the tensors describe, from their names and shapes (arch,
 * stem, width, in_channels; proj_* and num_classes from head.* and fc.*;
 * in_h/in_w 0). -1 when they are not a ResNet of lib/nn/model.h. */
int  safetensors_infer_config(const SafeTensors *st, ModelConfig *c, char *err, size_t errlen);

/* Copies the file's tensors into the table's entries of the same names:
 * every entry outside head.* and fc.* (the encoder), and head.* / fc.* too
 * when flags say so. Names in the file outside what is restored are
 * ignored when they are head.* or fc.*, and an error otherwise. Before
 * anything is copied, every name, dtype and shape is checked; the message
 * lists the missing names, the extra ones and each shape that differs
 * ("'conv1.weight' [16, 3, 3, 3] in the file, [8, 3, 3, 3] in the model")
 * and, when the file's tensors describe another ResNet, which. *ignored
 * (may be NULL) counts the head.* / fc.* tensors left out. */
int  safetensors_restore(const SafeTensors *st, ParamTable *t, unsigned flags, int *ignored, char *err,
                         size_t errlen);

#endif
