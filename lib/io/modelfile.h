/* modelfile: a trained model read from disk, whatever its format: an
 * ssl-tools checkpoint (ssl-train -o) or a safetensors file (ssl-export,
 * or PyTorch). The one place that tells them apart: the file's first bytes
 * decide, and a file that is neither is named for what it is (an ssl-tools
 * stream given as a model says so; a safetensors file whose header length
 * is absurd is called a damaged safetensors file).
 *
 * What it gives: the model's configuration, normalisation and provenance
 * when the file holds them, and the weights (modelfile_restore). */
#ifndef SSL_MODELFILE_H
#define SSL_MODELFILE_H

#include <stddef.h>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "nn/model.h"

/* The kinds a caller takes (modelfile_open's accept). */
enum { MODELFILE_CHECKPOINT = 1, MODELFILE_SAFETENSORS = 2, MODELFILE_ANY = 3 };

typedef struct {
	int          kind;        /* MODELFILE_CHECKPOINT or MODELFILE_SAFETENSORS */
	Checkpoint   ck;          /* a checkpoint: everything it holds */
	SafeTensors  st;          /* a safetensors file: its tensors and metadata */
	int          has_config;  /* config, mean and std known: always for a checkpoint;
	                             for a safetensors file, from its metadata (ssl-export) */
	ModelConfig  config;
	const float *mean, *std;  /* config.in_channels each */
	int          nprov;       /* the checkpoint's provenance (none in safetensors) */
	const Provenance *prov;
	float        st_mean[MODEL_MAX_IN_CHANNELS], st_std[MODEL_MAX_IN_CHANNELS];
} ModelFile;

/* Opens path as a model file of a kind in `accept`: 0, or -1 with a
 * message naming the path (what the file is, when it is not what is
 * wanted). f is safe to free either way. */
int  modelfile_open(ModelFile *f, const char *path, int accept, char *err, size_t errlen);
/* The file's weights into m, whose config is the file's: the encoder, and
 * the projection head and classifier that the config has. */
int  modelfile_restore(const ModelFile *f, Model *m, char *err, size_t errlen);
void modelfile_free(ModelFile *f);

#endif
