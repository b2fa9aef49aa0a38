/* model: ResNet encoders with a SimCLR projection head (and an optional
 * linear classifier), forward and backward over memory planned once.
 *
 * Encoders: ResNet-18/34 (basic blocks) and ResNet-50 (bottleneck, stride on
 * the 3x3 as torchvision), with a CIFAR stem (3x3/1 conv, no max-pool) or an
 * ImageNet stem (7x7/2 conv + 3x3/2 max-pool); width = channels of the stem
 * (64 is torchvision's; stages use width, 2w, 4w, 8w); any in_channels and
 * input size. The encoder ends in global average pooling: features h of
 * D = 8*width (basic) or 32*width (bottleneck) dimensions.
 *
 * Projection head (proj_layers 2 or 3; 0 for none):
 *   2: Linear(D, hidden, no bias) BN1d ReLU Linear(hidden, proj_dim)
 *   3: Linear(D, hidden, no bias) BN1d ReLU Linear(hidden, hidden, no bias)
 *      BN1d ReLU Linear(hidden, proj_dim)
 * named head.0, head.1, head.3 (head.4, head.6) as the nn.Sequential would be.
 * Classifier (num_classes > 0): fc = Linear(D, num_classes), on h.
 *
 * Names are torchvision's: conv1.weight, bn1.{weight,bias,running_mean,
 * running_var,num_batches_tracked}, layer1.0.conv1.weight,
 * layer2.0.downsample.0.weight, layer2.0.downsample.1.weight, ..., fc.weight.
 *
 * Memory: model_new plans and allocates everything once for max_batch
 * images: parameters, gradients, activations kept for backward, gradient
 * scratch and im2col workspaces. A step allocates nothing; any n <=
 * max_batch works. MODEL_INFER allocates only parameters and what eval needs.
 *
 * Inputs x are float (n, C, H, W), normalised (layers.h
 * input_normalize_u8). Outputs are row-major (n, dim) and stay valid until
 * the next forward. BatchNorm: momentum 0.1, eps 1e-5 (PyTorch). */
#ifndef SSL_MODEL_H
#define SSL_MODEL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "nn/params.h"

typedef enum { ARCH_RESNET18, ARCH_RESNET34, ARCH_RESNET50 } ModelArch;
typedef enum { STEM_CIFAR, STEM_IMAGENET } ModelStem;
typedef enum { MODEL_TRAIN, MODEL_INFER } ModelMode;
typedef enum {
	MODEL_OUT_ENCODER,     /* h (n, D) after global average pooling */
	MODEL_OUT_PROJ_HIDDEN, /* after the head's first BN-ReLU (n, proj_hidden) */
	MODEL_OUT_PROJ,        /* z (n, proj_dim) */
	MODEL_OUT_LOGITS       /* fc(h) (n, num_classes) */
} ModelOutput;

typedef struct {
	ModelArch arch;
	ModelStem stem;
	int width;             /* base channels; 64 standard, 16 small CPU model */
	int in_channels, in_h, in_w;
	int proj_layers;       /* 0, 2 or 3 */
	int proj_hidden;       /* head hidden dim */
	int proj_dim;          /* head output dim */
	int num_classes;       /* 0: no classifier */
	int zero_init_residual;/* gamma 0 on the last BN of each residual branch */
} ModelConfig;

typedef struct Model Model;

/* The limits of a ModelConfig: one set, for the model and for every file
 * that stores one (model_config_keys). */
#define MODEL_MAX_WIDTH       1024
#define MODEL_MAX_IN_CHANNELS 16
#define MODEL_MAX_SIDE        8192
#define MODEL_MAX_PROJ        65536
#define MODEL_MAX_CLASSES     1000000

/* The integer fields of a ModelConfig as checkpoints and safetensors
 * metadata store them, in their order there (after "arch" and "stem",
 * before the bool "zero_init_residual"): key, place, limits. */
typedef struct {
	const char *key;
	size_t      off;
	int         min, max;
} ModelConfigKey;
#define MODEL_CONFIG_NKEYS 8
extern const ModelConfigKey model_config_keys[MODEL_CONFIG_NKEYS];
int *model_config_field(ModelConfig *c, const ModelConfigKey *k);

/* resnet18, CIFAR stem, width 64, 3x32x32, head 2 layers 2048 -> 128, no fc. */
void model_config_default(ModelConfig *c);
/* -1 with a message for an invalid combination (e.g. input too small). */
int  model_config_check(const ModelConfig *c, char *err, size_t errlen);
int  model_arch_parse(const char *s, ModelArch *out);  /* "resnet18" "resnet34" "resnet50" */
int  model_stem_parse(const char *s, ModelStem *out);  /* "cifar" "imagenet" */
const char *model_arch_name(ModelArch a);
const char *model_stem_name(ModelStem s);
int  model_output_parse(const char *s, ModelOutput *out); /* "encoder" "proj-hidden" "proj" "logits" */

/* NULL with a message when the config is invalid or sizes overflow. */
Model *model_new(const ModelConfig *c, int max_batch, ModelMode mode, char *err, size_t errlen);
void   model_free(Model *m);

const ModelConfig *model_config(const Model *m);
ParamTable *model_params(Model *m);      /* the named table (values, grads, buffers) */
int    model_max_batch(const Model *m);
int    model_feature_dim(const Model *m); /* D */
int    model_output_dim(const Model *m, ModelOutput which); /* 0 if the model lacks it */
size_t model_memory_bytes(const Model *m);  /* everything model_new allocated */
int64_t model_flops(const Model *m, ModelOutput upto); /* forward FLOPs per image */
/* One line per layer: name, in -> out shape, parameters, MFLOPs (darknet). */
void   model_print_summary(const Model *m, FILE *fp);

/* Parameter initialisation as torchvision: convs kaiming-normal (fan_out,
 * relu gain); Linear weight kaiming-uniform(a = sqrt 5) = U(+-1/sqrt(fan_in)),
 * bias U(+-1/sqrt(fan_in)); BN gamma 1 (0 for the last BN of a residual
 * branch when zero_init_residual), beta 0, running stats 0/1, counters 0.
 * Tensor k of the table draws from rng_for(seed, 0, RNG_DOMAIN_INIT, k). */
void   model_init(Model *m, uint64_t seed);

/* Training: batch statistics, running stats updated, activations kept.
 * Returns z (n, proj_dim); model_features gives h (n, D) of the same pass.
 * (A BatchNorm that sees one value per channel, n = 1 at a 1x1 map or in
 * the head, outputs beta; PyTorch refuses that case.) */
const float *model_forward_train(Model *m, const float *x, int n);
const float *model_features(const Model *m);
/* Sets every gradient to 0 (once per step, before backward). */
void   model_zero_grad(Model *m);
/* Accumulates d loss / d params from dz (n, proj_dim) of the last
 * model_forward_train. */
void   model_backward(Model *m, const float *dz);

/* Data-parallel training (ssl-train --sync-bn): with s set, every
 * training-mode BatchNorm reduces its batch statistics (forward) and its
 * gradient sums (backward) over all ranks through s (lib/dist/syncbn.h), so the
 * ranks normalise over the global batch. NULL (the default): each process
 * uses its own batch. s must outlive its use. */
struct SyncBN;
void   model_set_sync_bn(Model *m, struct SyncBN *s);
/* The widest BatchNorm (channels), for syncbn_new. */
int    model_max_bn_channels(const Model *m);

/* Supervised path: encoder + fc, training mode. Returns logits (n, num_classes). */
const float *model_forward_train_classify(Model *m, const float *x, int n);
void   model_backward_classify(Model *m, const float *dlogits);

/* Precise BatchNorm statistics (Wu & Johnson 2021, "Rethinking 'Batch' in
 * BatchNorm"): between begin and end, each batch goes through training
 * mode and the running statistics become the average of the batches'
 * statistics (instead of a momentum-0.1 blend of the last few training
 * batches). Weights are untouched; end returns the batches seen. The
 * model must be MODEL_TRAIN. */
void   model_precise_bn_begin(Model *m);
void   model_precise_bn_batch(Model *m, const float *x, int n);
int64_t model_precise_bn_end(Model *m);

/* Precision of the products (ssl-train --precision): PRECISION_BF16 rounds
 * the inputs and weights of the convolutions and linear layers to bf16 and
 * sums in fp32 (lib/nn/bf16.h); BatchNorm, the loss, the optimizer, the
 * parameters and the checkpoint stay fp32. A new model is fp32. */
typedef enum { PRECISION_FP32, PRECISION_BF16, PRECISION_AUTO } ModelPrecision;
int  model_precision_parse(const char *s, ModelPrecision *out); /* "fp32" "bf16" "auto" */
const char *model_precision_name(ModelPrecision p);
/* What runs for a request: auto is bf16 where the CPU has avx512_bf16 (and
 * nothing turned it off), else fp32 with a note in msg; bf16 without it is
 * -1 with a message, unless $SSL_BF16=portable asks for the portable kernel
 * (slow: for tests on any CPU). msg is "" when there is nothing to say. */
int  model_precision_resolve(ModelPrecision want, ModelPrecision *out, char *msg, size_t len);
/* FP32 or BF16; between steps at any time (the parameters do not change). */
void model_set_precision(Model *m, ModelPrecision p);
ModelPrecision model_precision(const Model *m);

/* Eval mode (running statistics); nothing kept for backward. */
const float *model_forward_eval(Model *m, const float *x, int n, ModelOutput which);

#endif
