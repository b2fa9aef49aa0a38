/* mpi_volume: the bytes the ranks of ssl-train-mpi exchange per step, by
 * kind, for a few models, from their structure (no MPI needed): with the
 * per-step compute time of a rank this estimates scaling on a cluster
 * (bench/mpi.sh prints it next to what it measures here).
 *   gradients:   4 P bytes, one all-reduce (P trainable parameters)
 *   embeddings:  the projections gathered, 2 B D 4 bytes (B pairs over all
 *                ranks, D = projection dim), and one all-reduce of the NT-Xent
 *                row sums, (2 B + 2) 8 bytes
 *   BN (--sync-bn): per BatchNorm layer of C channels 2 C 8 bytes forward and
 *                as much backward, 2 L all-reduces of that size
 *   control:     24 bytes per rank, one all-gather
 * A ring all-reduce moves 2 (N - 1) / N times the vector through each
 * rank's link; an all-gather (N - 1) / N of the result.
 *   usage: mpi_volume [B]   (default 256 pairs) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn/model.h"
#include "base/util.h"

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		ModelArch   arch;
		int         width;
	} models[] = { { "resnet18 w16", ARCH_RESNET18, 16 }, { "resnet18 w64", ARCH_RESNET18, 64 },
		       { "resnet50 w64", ARCH_RESNET50, 64 } };
	long B = argc > 1 ? atol(argv[1]) : 256;
	char err[256];
	printf("%-14s %10s %12s %12s %10s %5s %12s %12s\n", "model", "params", "grads_MB", "embed_MB", "bn_kB",
	       "bn_L", "total_MB", "ring_MB/rank");
	for (size_t k = 0; k < sizeof models / sizeof models[0]; k++) {
		ModelConfig c;
		Model *m;
		ParamTable *t;
		double bnc = 0, grads, embed, bn, total;
		int L = 0;
		model_config_default(&c);
		c.arch = models[k].arch;
		c.width = models[k].width;
		c.proj_hidden = 32 * c.width; /* ssl-train's default */
		m = model_new(&c, 1, MODEL_INFER, err, sizeof err);
		if (!m)
			die("%s: %s", models[k].name, err);
		t = model_params(m);
		for (int i = 0; i < t->n; i++)
			if (t->e[i].role == PARAM_BN_GAMMA) {
				bnc += (double)t->e[i].numel;
				L++;
			}
		grads = 4.0 * (double)t->nparams;
		embed = 2.0 * B * c.proj_dim * 4 + (2.0 * B + 2) * 8;
		bn = 2 * 2 * bnc * 8;
		total = grads + embed + bn;
		/* per rank through its link with many ranks: 2x the all-reduces, 1x the gathers */
		printf("%-14s %10lld %12.3f %12.3f %10.1f %5d %12.3f %12.3f\n", models[k].name, (long long)t->nparams,
		       grads / 1e6, embed / 1e6, bn / 1e3, L, total / 1e6,
		       (2 * grads + 2 * B * c.proj_dim * 4.0 + 2 * (2.0 * B + 2) * 8 + 2 * bn) / 1e6);
		model_free(m);
	}
	return 0;
}
