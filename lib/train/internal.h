/* lib/train internals: the Trainer that the parts of the training run
 * share, and what each part offers the others. Not for tools (trainer.h).
 *
 *   trainer.c      set-up: the schedule, the model and optimizer, buffers,
 *                  outputs; trainer_new / trainer_free, --steps 0
 *   agree.c        data-parallel start-up: what the ranks check together
 *   feeder.c       the batch feeder: the input's header and first record,
 *                  epochs, resume skipping, filling a batch
 *   step.c         one step: normalise, forward, loss, backward, update
 *   run.c          the run loop over the communicator, its end
 *   log_monitor.c  the TSV log and the kNN monitor
 *   save.c         checkpoint writing
 *   resume_cmd.c   the command that continues an interrupted run
 *
 * The fault-injection hooks they call are lib/base/fault.h. */
#ifndef SSL_TRAIN_INTERNAL_H
#define SSL_TRAIN_INTERNAL_H

#include "base/progress.h"
#include "dist/syncbn.h"
#include "train/trainer.h"

#define NORM_DEFAULT_MEAN 0.5f
#define NORM_DEFAULT_STD  0.25f

typedef struct {
	int64_t step, epoch;
	double  loss, lr, images_per_s, acc;
	double  monitor;      /* < 0: not measured */
} LogRow;

enum { FILL_BATCH, FILL_EPOCH_END, FILL_EOF, FILL_ERROR };

/* What each rank says before every step (run.c). */
typedef struct {
	int32_t n;      /* records in its batch */
	int32_t status; /* FILL_* */
	int32_t ends;   /* its batch ends its epoch */
	int32_t stop;   /* a signal arrived */
	int64_t epoch;  /* the epoch of the batch, or of the end it is at */
} CtlMsg;

struct Trainer {
	TrainSetup    s;
	StreamReader *in;
	const StreamHeader *hdr;
	Model        *m;
	Optim        *o;
	ModelConfig   cfg;
	int           H, W, C, V;
	size_t        img;                 /* bytes of one view: H*W*C */
	int           B;                   /* records per step (over all ranks) */
	int           cap;                 /* records per step on this process: B / ranks */
	/* schedule */
	int64_t       step, total, warmup, spe, rpe, epochs, first_epoch;
	int64_t       relaid_at;            /* the cosine re-laid there by a --budget re-plan (0: never) */
	double        relaid_phase;         /* ... from this phase (LrSchedule) */
	int           log_errno;            /* the log's first write error, 0 if none */
	float         lr_base;
	/* position in the input */
	int64_t       epoch, epoch_records; /* epoch of the next step; its records trained on (all ranks) */
	int64_t       lrpe;                 /* this process's records per epoch (its header); -1: unknown */
	int64_t       lrec;                 /* this process's records of `epoch` used (trained, skipped, dropped) */
	int           epoch_started;        /* a record of `epoch` was seen */
	int64_t       skip_left;            /* this process's records of `epoch` still to skip (resume) */
	int64_t       skipped;
	Record        pending;
	int           has_pending;
	int           eof;
	/* the batch */
	uint8_t      *u8;                   /* (2, cap, H, W, C): view 0 block, view 1 block */
	int32_t      *labels;               /* (cap) */
	float        *x;                    /* (2 cap, C, H, W) */
	float        *dz, *work;            /* (2 cap, proj_dim), NT-Xent workspace; (cap, K) for CE */
	int           n;                    /* records in the batch */
	int64_t       batch_epoch;
	int           batch_ends_epoch;
	/* normalisation (in_channels each) */
	float        *mean, *std;
	int           have_norm;
	/* outputs */
	Checkpoint    meta;
	int           ckpt_written;
	int64_t       ckpt_step;            /* step of the last checkpoint written */
	FILE         *log;
	LogRow        row;
	int           row_pending;
	double        row_t0;
	int64_t       row_images;
	/* monitor */
	int64_t       mon_n, mon_nbank, mon_nq;
	int           mon_K;
	uint8_t      *mon_u8;               /* (mon_n, H, W, C): bank first, then queries */
	int64_t      *mon_y;                /* (mon_n) */
	float        *mon_feat;             /* (mon_n, D) */
	double       *mon_votes;            /* (mon_nq, K) */
	double        mon_last;             /* the last kNN monitor value, -1 before any */
	int64_t       mon_last_step;
	double        mon_first;            /* this run's first epoch-end value, -1 before it */
	double        mon_base;             /* the encoder before training (random init), -1 until measured */
	/* reporting */
	Progress      prog;
	double        t_start;
	double        t_begin;              /* trainer_new: --budget counts from here */
	int           planning;             /* --budget: 1 until the steps that fit are known (budget.c) */
	double        probe_t0;             /* --budget: the timed steps start here */
	int64_t       probe_step0;          /* (moved to each re-plan: the rate is the recent one) */
	int           replans;              /* --budget: re-plans made (budget.c) */
	double        mon_eval_s;           /* one monitor evaluation, seconds */
	double        save_s;               /* one checkpoint, seconds */
	int64_t       step_start, images;
	double        last_loss, last_acc;
	float         last_lr;
	int64_t       row_logged;           /* step of the last row written */
	/* the communicator: s.dist, or dist_local() (one process is a world of one) */
	Dist         *d;
	int           mpi;                  /* s.dist given (ssl-train-mpi), even with one rank */
	int           rank, size;
	SyncBN       *sbn;                  /* --sync-bn */
	int           local_epoch_done;     /* this rank's epoch ended; waiting for the others' */
	CtlMsg       *ctl;                  /* (size) what each rank said before the step (run.c) */
	int          *counts;               /* (size) records of each rank in the step */
	int          *zcounts;              /* (size) floats each rank adds to the gather */
	int64_t       nsum, noff;           /* records in the step on all ranks; this rank's offset */
	float        *zrank, *zall;         /* (2B, D) gathered projections: rank order, global order */
	int64_t       dropped;              /* records at epoch ends not trained on (a short tail, or fewer than ranks) */
	int           min_tail;             /* an epoch-end batch of fewer records is dropped (the first batch of an
	                                       epoch never is, unless some ranks would get no records) */
};

/* trainer.c */
int  trainer_init_from_file(const SafeTensors *st, Model *m, int quiet, char *err, size_t errlen);
int  tail_dropped(const Trainer *t, int64_t n, int after_full_batches);

/* agree.c (data-parallel start-up; collective) */
int  agree_setup(Trainer *t, int ok, int64_t *grpe, char *err, size_t errlen);
int  agree_ready(Trainer *t, int ok, char *err, size_t errlen);
void share_weights(Trainer *t);

/* feeder.c */
int  feeder_setup(Trainer *t, char *err, size_t errlen);
int  feeder_fill(Trainer *t, char *err, size_t errlen);

/* step.c */
void step_norm_from_batch(Trainer *t);
int  step_train(Trainer *t, char *err, size_t errlen);

/* log_monitor.c */
int    log_open(Trainer *t, int64_t keep_upto, char *err, size_t errlen);
void   log_queue_row(Trainer *t);
void   log_flush_row(Trainer *t);
int    monitor_load(Trainer *t, char *err, size_t errlen);
double monitor_eval(Trainer *t, Model *m);
void   monitor_baseline(Trainer *t);
void   monitor_final(Trainer *t);
void   monitor_verdict(Trainer *t);

/* budget.c */
#define BUDGET_UNPLANNED ((int64_t)1 << 40) /* the total while --budget times its first steps */
int64_t budget_steps(const Trainer *t);
void    budget_after_step(Trainer *t);       /* collective once: when the plan is fixed */
void    budget_describe_steps(const Trainer *t, char *buf, size_t len);
void    budget_report(const Trainer *t);

/* The learning-rate schedule of the run as it stands. */
static inline LrSchedule
trainer_lr_schedule(const Trainer *t)
{
	return (LrSchedule){ .total = t->total, .warmup = t->warmup, .relaid_at = t->relaid_at,
		             .relaid_phase = t->relaid_phase };
}

/* save.c (collective) */
int  save_checkpoint(Trainer *t, char *err, size_t errlen);

#endif
