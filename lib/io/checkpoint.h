/* checkpoint: a trained model, its normalisation and everything needed to
 * resume training, in one msgpack file (ssl-train(1) FILES describes it).
 *
 * The file is one msgpack map, tensors in the stream encoding
 * (tensor_pack/tensor_unpack of lib/io/stream.h):
 *   {"format": "ssl-checkpoint", "version": [1, 0],
 *    "config": {"arch": "resnet18", "stem": "cifar", "width": 64,
 *               "in_channels": 3, "in_h": 32, "in_w": 32, "proj_layers": 2,
 *               "proj_hidden": 2048, "proj_dim": 128, "num_classes": 0,
 *               "zero_init_residual": false},
 *    "normalize": {"mean": [..], "std": [..]},         (in_channels floats each)
 *    "params": {"conv1.weight": tensor, ...},          (every ParamTable entry)
 *    "optimizer": {"kind": "lars", "momentum": .., "nesterov": .., "weight_decay": ..,
 *                  "trust_coef": .., "beta1": .., "beta2": .., "eps": .., "decay_all": ..,
 *                  "step": n, "state": {"conv1.weight.momentum_buffer": tensor, ...}},
 *    "train": {"objective": "simclr", "step": .., "epoch": .., "epoch_records": ..,
 *              "total_steps": .., "warmup_steps": .., ...},   (see CheckpointTrain)
 *    "classes": [..], "provenance": [{"tool", "version", "args"}, ..],
 *    "checksum": crc32}
 * "optimizer" and "train" are absent from a file written without them.
 * "checksum" is the last key; its value is always packed as msgpack uint32
 * (0xce and 4 big-endian bytes, the last 5 bytes of the file) and is the
 * CRC-32 (zlib's, Python zlib.crc32) of every byte before those 5. Unknown
 * keys are ignored (newer minor versions); another major version is refused.
 *
 * Loading never trusts sizes: every tensor goes through tensor_unpack with a
 * byte limit, names are bounded, and restoring into a model checks every
 * name, dtype and shape, reporting missing and extra names. A truncated,
 * bit-flipped or foreign file is refused with a message saying what is
 * wrong. Functions return 0, or -1 with a one-line message in err. */
#ifndef SSL_CHECKPOINT_H
#define SSL_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "nn/model.h"
#include "nn/optim.h"
#include "nn/params.h"
#include "io/stream.h"

#define CHECKPOINT_FORMAT        "ssl-checkpoint"
#define CHECKPOINT_VERSION_MAJOR 1
#define CHECKPOINT_VERSION_MINOR 0

/* The training state needed to continue exactly (ssl-train --resume). */
typedef struct {
	char     objective[16];     /* "simclr" or "supervised" */
	int64_t  step;              /* optimizer steps done */
	int64_t  epoch;             /* stream epoch number of the next step */
	int64_t  epoch_records;     /* records of `epoch` already trained on (0 at an epoch boundary) */
	int64_t  first_epoch;       /* epoch number of step 0 */
	int64_t  total_steps;       /* schedule length (LR reaches 0 there) */
	int64_t  warmup_steps;
	int64_t  relaid_at;         /* the cosine re-laid at this step by a --budget re-plan; 0: never
	                               (files without the key) */
	double   relaid_phase;      /* its phase there, in [0, 1) (lr_at's LrSchedule) */
	int64_t  records_per_epoch; /* -1: unknown */
	int64_t  epochs;            /* epochs of the schedule; -1: unknown (--steps) */
	int      batch;             /* pairs (simclr) or images (supervised) per step */
	int      min_tail;          /* an epoch's last batch shorter than this is not trained on
	                               (1: every tail trained; files without the key) */
	double   lr;                /* base rate given to lr_at (after batch scaling) */
	double   lr_arg;            /* --lr as given */
	int      lr_abs;            /* 1: lr_arg was used as is (no batch/256 scaling) */
	double   warmup_epochs;
	double   temperature;       /* NT-Xent */
	uint64_t seed;              /* initialisation seed */
	int      threads;           /* results are bitwise reproducible with the same count */
	double   loss;              /* mean loss of the last step (for people) */
	char     precision[8];      /* products of the run: "fp32" or "bf16" (ssl-train --precision);
	                             * load: "fp32" for a file written before the key existed */
} CheckpointTrain;

/* What a checkpoint file holds. checkpoint_load fills every field; before
 * checkpoint_save the caller fills the ones marked "save". */
typedef struct {
	ModelConfig     config;     /* load (save takes it from the model) */
	float          *mean;       /* (in_channels) per-channel, on 0..1 pixels; save */
	float          *std;        /* (in_channels); save */
	int             has_optim;  /* load; save: 1 to store optim below */
	OptimConfig     optim;      /* save when has_optim */
	int64_t         optim_step; /* load (save takes optim_get_step) */
	int             has_train;  /* load; save: 1 to store train below */
	CheckpointTrain train;      /* save when has_train */
	int             nclasses;   /* save (0: none) */
	char          **classes;    /* (nclasses); save */
	int             nprov;      /* save */
	Provenance     *prov;       /* (nprov) upstream pipeline then ssl-train; save */
	/* private: the file's bytes and parsed tree, referenced by restore */
	void           *priv_;
} Checkpoint;

/* Zeroes ck (a freshly initialised Checkpoint owns nothing). */
void checkpoint_init(Checkpoint *ck);
/* Frees what checkpoint_load allocated (mean, std, classes, prov, the
 * file's bytes); leaves ck as checkpoint_init does. Never frees the
 * caller's arrays of a Checkpoint that was only used for saving. */
void checkpoint_free(Checkpoint *ck);

/* Reads and checks a checkpoint file: format, major version, checksum,
 * every required key and type, the config (model_config_check), the
 * normalisation (in_channels finite values, std > 0) and every tensor's
 * encoding. Tensors stay in the file's bytes until restored. err names the
 * path. On failure ck is left as checkpoint_init does. */
int  checkpoint_load(Checkpoint *ck, const char *path, char *err, size_t errlen);

/* Compares the checkpoint's config with `want`, field by field; -1 with a
 * message listing each field that differs ("width 16 in the checkpoint,
 * 32 expected"). */
int  checkpoint_check_config(const Checkpoint *ck, const ModelConfig *want, char *err, size_t errlen);

/* Restore flags. */
#define CHECKPOINT_ENCODER_ONLY 1u /* only names outside "head." and "fc.": the
                                     model's head/classifier keep their values,
                                     the file's are ignored (fine-tuning) */

/* Copies every tensor of the model's ParamTable (values and buffers) from
 * the checkpoint. -1 with a message when names are missing or extra (the
 * first few of each, and how many) or a dtype or shape differs; the model
 * is then partly overwritten and should be discarded. */
int  checkpoint_restore_model(const Checkpoint *ck, Model *m, unsigned flags, char *err, size_t errlen);
/* The same for any table (names and shapes must match exactly). */
int  checkpoint_restore_params(const Checkpoint *ck, ParamTable *t, unsigned flags, char *err, size_t errlen);
/* Optimizer state tensors (by name, optim_state(o)) and the step counter.
 * Build o from ck->optim (the kind and hyper-parameters are not checked
 * here). -1 when the file has no optimizer or the state does not match. */
int  checkpoint_restore_optim(const Checkpoint *ck, Optim *o, char *err, size_t errlen);

/* Writes ck's save fields, the model's config and every ParamTable entry,
 * and (has_optim) the optimizer's state and step, atomically to path
 * (lib/base/atomicfile.h): on failure (disk full, unwritable directory,
 * non-finite parameter) the previous file at path is intact. o may be NULL
 * when !ck->has_optim. */
int  checkpoint_save(const char *path, const Checkpoint *ck, Model *m, Optim *o, char *err, size_t errlen);

/* CRC-32 (IEEE, zlib-compatible) of len bytes, continuing from crc (0 to
 * start): msgfile_crc32 (lib/io/msgfile.h), the checkpoint's checksum. */
uint32_t checkpoint_crc32(uint32_t crc, const void *data, size_t len);

#endif
