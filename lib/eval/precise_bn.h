/* precise_bn: BatchNorm statistics recomputed over un-augmented images.
 *
 * A SimCLR encoder's running statistics are a momentum-0.1 blend of the
 * last few training batches, which are augmented views, and (in a short
 * run) of a model that was still moving. precise_bn_from_stream passes an
 * images stream (un-augmented training images of the model's input size)
 * through the model in training mode, batch by batch, and sets every
 * running mean and variance to the average of the batches' statistics
 * (model_precise_bn_*). Weights are untouched. An epoch-end batch shorter
 * than half of `batch` is left out (its statistics would weigh as much as a
 * whole batch's), unless it is the only one. */
#ifndef SSL_PRECISE_BN_H
#define SSL_PRECISE_BN_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"

/* m: MODEL_TRAIN with max batch >= batch. mean/std: the model's input
 * normalisation. *nimages: images used. 0, or -1 with a message naming the
 * input and record. */
int precise_bn_from_stream(Model *m, const char *path, const float *mean, const float *std, int batch,
                           int64_t *nimages, char *err, size_t errlen);

#endif
