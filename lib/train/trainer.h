/* trainer: the ssl-train loop (ssl-train(1)): batches from a views stream,
 * SimCLR (NT-Xent on views 0 and 1) or supervised (cross-entropy on view
 * 0) steps, the LR schedule, checkpoints, the TSV log, the kNN monitor, and
 * the fault paths (signals, truncated input, non-finite values, full disk).
 *
 * Batches never straddle epochs: the last batch of an epoch is used even
 * when short. An epoch ends when records_per_epoch records of it were seen
 * (when the header says) or when a record of a later epoch arrives.
 *
 * Resuming: the trainer restores the model, the optimizer and the step from
 * the checkpoint, then skips the input's records of epochs before the
 * checkpoint's epoch and the first `epoch_records` records of that epoch,
 * so a stream restarted at the epoch (ssl-decode --start-epoch E) or the
 * whole stream again both continue exactly.
 *
 * Data-parallel (ssl-train-mpi, TrainSetup.dist): the same loop on every
 * rank in lockstep, each rank reading its shard (ssl-decode --shard
 * RANK/SIZE) and taking batch / size records per step; the projections are
 * gathered so NT-Xent sees the whole global batch, the gradients are
 * summed over the ranks (one all-reduce of the flat gradient arena), and
 * with sync_bn BatchNorm uses the global batch's statistics. The result is
 * that of one process with the same (global) batch, up to float rounding:
 * the batch of step k is the same records either way. Rank 0 writes the
 * checkpoints, the log and the monitor; checkpoints hold the global batch
 * and position, so a run resumes on any number of ranks that divides the
 * batch (or on one process). trainer_new and trainer_run are collective:
 * every rank calls them; the ranks take every decision (stop, fail, end
 * of epoch) together, and messages that would be the same on every rank
 * are left to rank 0 (err is empty on the others).
 *
 * A step allocates nothing: every buffer is planned in trainer_new. */
#ifndef SSL_TRAINER_H
#define SSL_TRAINER_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "io/checkpoint.h"
#include "dist/dist.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "io/safetensors.h"
#include "io/stream.h"

typedef enum { OBJECTIVE_SIMCLR, OBJECTIVE_SUPERVISED } TrainObjective;

typedef struct {
	TrainObjective objective;
	ModelConfig    model;           /* in_channels/in_h/in_w: from the first record when 0 */
	OptimConfig    optim;
	int            batch;           /* pairs (simclr) or images (supervised) per step, over all ranks */
	int            min_tail;        /* the shortest epoch-end batch trained on; 0: half the batch */
	double         lr;              /* base rate as given (--lr) */
	int            lr_abs;          /* 0: lr * batch / 256 */
	double         warmup_epochs;
	int64_t        warmup_steps;    /* >= 0 overrides warmup_epochs */
	int64_t        steps;           /* >= 0: the schedule length (--steps); -1: from the header */
	double         budget_s;        /* > 0: as many steps as fit in this wall time (--budget) */
	double         temperature;
	uint64_t       seed;
	int            nnorm;           /* 0: normalisation computed from the first batch */
	float          mean[MODEL_MAX_IN_CHANNELS], std[MODEL_MAX_IN_CHANNELS]; /* nnorm values (1: same for every channel) */
	/* where the run starts: NULL for a fresh run */
	const Checkpoint *resume;       /* everything from the checkpoint (model, optimizer, step) */
	const Checkpoint *init;         /* encoder weights and normalisation (fine-tuning) */
	const SafeTensors *init_from;   /* encoder weights (--init-from; model from the options above) */
	/* outputs */
	const char    *out_path;        /* -o MODEL */
	int64_t        ckpt_every_steps;  /* 0: none */
	int64_t        ckpt_every_epochs; /* 0: none */
	const char    *log_path;        /* NULL: no log */
	int64_t        log_every;       /* rows every k steps (epoch ends always) */
	const char    *monitor_path;    /* NULL: no kNN monitor */
	int            monitor_k;       /* 200 */
	double         monitor_t;       /* 0.1 */
	ModelPrecision precision;       /* PRECISION_FP32 (default) or PRECISION_BF16, resolved
	                                 * (model_precision_resolve); recorded in the checkpoint */
	int            progress, quiet, verbose;
	volatile sig_atomic_t *stop;    /* set asynchronously: finish the step, checkpoint, stop */
	/* data-parallel: NULL for one process */
	Dist          *dist;
	int            sync_bn;         /* BatchNorm statistics over all ranks' batches */
	/* the provenance of the run (stream header's, then ssl-train's own) */
	int            nprov;
	const Provenance *prov;
} TrainSetup;

void trainer_setup_default(TrainSetup *s);

typedef enum {
	TRAIN_DONE,        /* the schedule (or the stream) ended; final checkpoint written */
	TRAIN_INTERRUPTED, /* *stop was set: checkpoint written after the last finished step */
	TRAIN_TRUNCATED,   /* the input failed (truncated, corrupt): checkpoint written, message */
	TRAIN_DIVERGED,    /* a non-finite loss or gradient: nothing written, message names the step */
	TRAIN_FAILED       /* anything else (checkpoint not writable, bad record): message */
} TrainStatus;

typedef struct Trainer Trainer;

/* Plans the run on an open reader whose header has been read: reads the
 * first record (input size), builds the model and optimizer (fresh, from
 * --init or from the checkpoint), checks the output path can be written and
 * loads the monitor set. NULL with a message when anything is wrong. */
Trainer *trainer_new(const TrainSetup *s, StreamReader *in, char *err, size_t errlen);
void     trainer_free(Trainer *t);
/* Runs to the end of the schedule (or stream, signal, failure). */
TrainStatus trainer_run(Trainer *t, char *err, size_t errlen);

/* Where the run stands (after trainer_run): steps done, the epoch of the
 * next step, and whether a checkpoint was written. */
int64_t trainer_step(const Trainer *t);
int64_t trainer_total_steps(const Trainer *t);
int64_t trainer_epoch(const Trainer *t);
int     trainer_checkpoint_written(const Trainer *t);
Model  *trainer_model(Trainer *t);

/* Writes a random-initialised model (the baseline for probes) without a
 * stream: the config must hold the input size; normalisation from s->mean/
 * std, else 0.5 / 0.25 per channel. With s->init_from the encoder comes
 * from that file (importing weights trained elsewhere as a checkpoint). */
int trainer_write_untrained(const TrainSetup *s, char *err, size_t errlen);

/* The shell command that continues an interrupted run: the upstream
 * pipeline from the provenance (ssl-decode with --start-epoch E) piped into
 * ssl-train with its own arguments and --resume MODEL. prov is the input's
 * provenance (may be 0 entries); from_stdin 0 means ssl-train read a file
 * (named in its args), which it can read again from the start. argv is
 * ssl-train's own. Returns buf. */
char *trainer_resume_command(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin,
                             int argc, char *const *argv, const char *model, int64_t epoch);
/* The same for ssl-train-mpi on `ranks` ranks: "mpirun -np N sh -c '...'"
 * whose ssl-decode takes --shard from $OMPI_COMM_WORLD_RANK and _SIZE (add
 * the launcher options the run had, such as a host file). */
char *trainer_resume_command_mpi(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin,
                                 int argc, char *const *argv, const char *model, int64_t epoch, int ranks);

#endif
