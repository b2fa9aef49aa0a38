/* encode: images to embeddings with a trained model, the one way (ssl-encode
 * and the trainer's kNN monitor): normalise the pixels, the eval forward
 * pass (BatchNorm's running statistics), and, when asked, each embedding
 * scaled to unit L2 norm (probe_l2_normalize). */
#ifndef SSL_ENCODE_H
#define SSL_ENCODE_H

#include <stdint.h>

#include "nn/model.h"

/* pix: n images (n, H, W, C) uint8 with n <= model_max_batch(m); x:
 * scratch of n * C * H * W floats; out: (n, D) with D =
 * model_output_dim(m, layer). mean/std: C values each. */
void encode_batch(Model *m, float *x, const uint8_t *pix, int n, int H, int W, int C, const float *mean,
                  const float *std, ModelOutput layer, int l2, float *out);

#endif
