/* encode: see encode.h. */
#include "eval/encode.h"

#include <string.h>

#include "eval/probe.h"
#include "nn/layers.h"

void
encode_batch(Model *m, float *x, const uint8_t *pix, int n, int H, int W, int C, const float *mean,
             const float *std, ModelOutput layer, int l2, float *out)
{
	int D = model_output_dim(m, layer);
	const float *y;
	input_normalize_u8(x, pix, n, H, W, C, mean, std);
	y = model_forward_eval(m, x, n, layer);
	memcpy(out, y, sizeof(float) * (size_t)n * (size_t)D);
	if (l2)
		probe_l2_normalize(out, n, D);
}
