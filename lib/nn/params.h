/* params: the one table of named tensors of a model (or of an optimizer's
 * state).
 *
 * Each entry has a torchvision-style name ("conv1.weight",
 * "layer1.0.bn1.running_mean", "layer2.0.downsample.0.weight",
 * "head.0.weight"), a shape, a role and pointers into arenas: trainable
 * tensors live back to back in one params arena and their gradients at the
 * same offsets in one grads arena (so an all-reduce or a checkpoint moves one
 * block); buffers (BN running statistics) in a buffers arena; the int64
 * counters (num_batches_tracked) in a counters arena. The table drives
 * allocation, optimizer groups (LARS leaves BN and bias alone), checkpoint
 * I/O and fixture comparison by name.
 *
 * Life cycle: params_init, params_add... (planning: shapes only), then
 * params_alloc once; pointers are valid until params_free. */
#ifndef SSL_PARAMS_H
#define SSL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "io/tensor.h"

typedef enum {
	PARAM_WEIGHT,   /* conv / linear weight: weight decay and LARS trust ratio */
	PARAM_BIAS,     /* linear / conv bias: neither */
	PARAM_BN_GAMMA, /* BatchNorm weight: neither */
	PARAM_BN_BETA,  /* BatchNorm bias: neither */
	PARAM_BUFFER    /* not trained: running stats, counters, optimizer state */
} ParamRole;

#define PARAM_MAX_DIM 4

typedef struct {
	char      name[TENSOR_MAX_NAME];
	ParamRole role;
	DType     dtype;  /* DTYPE_F32, or DTYPE_I64 for counters */
	int       ndim;   /* 0 for a scalar (num_batches_tracked) */
	int64_t   shape[PARAM_MAX_DIM];
	int64_t   numel;
	float    *data;   /* F32 values; NULL for I64 */
	int64_t  *i64;    /* I64 values; NULL for F32 */
	float    *grad;   /* trainable only: same offset in the grads arena; else NULL */
	size_t    offset; /* element offset in its arena */
} ParamEntry;

typedef struct {
	int         n, cap;
	ParamEntry *e;
	int         with_grads;
	float      *params;   size_t nparams;   /* trainable values, contiguous */
	float      *grads;                      /* nparams floats, or NULL */
	float      *buffers;  size_t nbuffers;  /* F32 buffers */
	int64_t    *counters; size_t ncounters; /* I64 buffers */
} ParamTable;

void params_init(ParamTable *t);
/* Planning: records a tensor; returns its index, or -1 (message in err) for
 * a duplicate name, a bad shape or a name too long. I64 only for buffers. */
int  params_add(ParamTable *t, const char *name, ParamRole role, DType dtype,
                int ndim, const int64_t *shape, char *err, size_t errlen);
/* Allocates the arenas (zeroed; grads only if with_grads) and sets pointers. */
void params_alloc(ParamTable *t, int with_grads);
void params_free(ParamTable *t);

ParamEntry *params_find(const ParamTable *t, const char *name); /* NULL if absent */
int  params_trainable(const ParamEntry *e);     /* role != PARAM_BUFFER */
int  params_decayed(const ParamEntry *e);       /* role == PARAM_WEIGHT (LARS group) */
const char *params_role_name(ParamRole r);      /* "weight" "bias" "bn_gamma" "bn_beta" "buffer" */
int64_t params_count(const ParamTable *t);      /* trainable scalars */
void params_zero_grad(ParamTable *t);
/* A borrowed Tensor over the entry's values (for tensor_pack / checkpoints). */
Tensor params_tensor(const ParamEntry *e);
/* Copies every entry of src into the same-named entry of dst (values only).
 * -1 with a message naming the first missing name or shape mismatch. */
int  params_copy(ParamTable *dst, const ParamTable *src, char *err, size_t errlen);

/* A 64-bit fingerprint (FNV-1a) of every F32 entry's name, shape and value
 * bytes, continuing from h (0 to start; pass the result on to add more with
 * params_hash_bytes). Two tables with the same named values have the same
 * fingerprint; I64 counters (num_batches_tracked) do not count. For the
 * "model_id" that ssl-encode writes into an embeddings header. */
uint64_t params_fingerprint(const ParamTable *t, uint64_t h);
uint64_t params_hash_bytes(uint64_t h, const void *data, size_t n);

#endif
