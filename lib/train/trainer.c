/* trainer: set-up and teardown of a training run (trainer.h, ssl-train(1)):
 * the input's first record, the schedule, the model and optimizer (fresh,
 * --init, --init-from or --resume), the buffers of a step, the outputs.
 * The other parts are listed in train/internal.h. */
#include "train/internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomicfile.h"
#include "base/util.h"
#include "dist/ntxent_dist.h"
#include "nn/loss.h"

static volatile sig_atomic_t never_stop;

void
trainer_setup_default(TrainSetup *s)
{
	memset(s, 0, sizeof *s);
	s->objective = OBJECTIVE_SIMCLR;
	model_config_default(&s->model);
	s->model.in_channels = s->model.in_h = s->model.in_w = 0;
	optim_config_default(&s->optim, OPTIM_SGD);
	s->batch = 256;
	s->lr = 0.06;
	s->warmup_steps = -1;
	s->steps = -1;
	s->temperature = 0.5;
	s->log_every = 1;
	s->monitor_k = 200;
	s->monitor_t = 0.1;
}

/* Whether the last batch of an epoch, of n records (all ranks), is not
 * trained on: a short tail after full batches (a one-pair SimCLR step has
 * zero loss and BatchNorm statistics from two images, and the run's final
 * model would carry them), or, with ranks, fewer records than ranks (some
 * would have none; see run_loop). A whole epoch shorter than a batch is
 * trained on. */
int
tail_dropped(const Trainer *t, int64_t n, int after_full_batches)
{
	return n < t->size || (after_full_batches && n < t->min_tail);
}

/* Steps in an epoch of rpe records (all ranks), -1 if unknown. */
static int64_t
steps_per_epoch(const Trainer *t, int64_t rpe)
{
	int64_t full, last;
	if (rpe <= 0)
		return -1;
	full = rpe / t->B;
	last = rpe % t->B;
	return full + (last > 0 && !tail_dropped(t, last, full > 0));
}

/* grpe: the records per epoch of the input (all ranks'), -1 if unknown. */
static int
plan_schedule(Trainer *t, int64_t grpe, char *err, size_t errlen)
{
	const TrainSetup *s = &t->s;
	if (s->resume) {
		const CheckpointTrain *tr = &s->resume->train;
		t->step = tr->step;
		t->total = tr->total_steps;
		t->warmup = tr->warmup_steps;
		t->relaid_at = tr->relaid_at;
		t->relaid_phase = tr->relaid_phase;
		t->rpe = tr->records_per_epoch;
		t->epochs = tr->epochs;
		t->spe = steps_per_epoch(t, t->rpe);
		t->lr_base = (float)tr->lr;
		t->first_epoch = tr->first_epoch;
		t->epoch = tr->epoch;
		/* The ranks' shards, interleaved, are the epoch (ssl-decode(1)
		 * SHARDS: one length each): rank r's records are its positions
		 * r, r + size, ..., and those below epoch_records were trained on. */
		t->epoch_records = tr->epoch_records;
		t->skip_left = t->epoch_records > t->rank ? (t->epoch_records - t->rank + t->size - 1) / t->size : 0;
		if (grpe >= 0 && t->rpe >= 0 && grpe != t->rpe) {
			snprintf(err, errlen, "%s: %lld records per epoch%s, the checkpoint's run had %lld",
			         stream_reader_name(t->in), (long long)grpe, t->mpi ? " on all ranks" : "", (long long)t->rpe);
			return -1;
		}
		return 0;
	}
	t->rpe = grpe > 0 ? grpe : -1;
	t->epochs = t->hdr->epochs > 0 ? t->hdr->epochs : -1;
	t->spe = steps_per_epoch(t, t->rpe);
	if (s->budget_s > 0) {
		t->planning = 1; /* budget.c sets the total once steps are timed */
		t->total = BUDGET_UNPLANNED;
	} else if (s->steps >= 0)
		t->total = s->steps;
	else if (t->spe > 0 && t->epochs > 0) {
		if (__builtin_mul_overflow(t->spe, t->epochs, &t->total)) {
			snprintf(err, errlen, "%s: header: %lld records per epoch for %lld epochs is more steps than "
			         "can be counted; give --steps", stream_reader_name(t->in), (long long)t->rpe,
			         (long long)t->epochs);
			return -1;
		}
	} else {
		snprintf(err, errlen, "%s: the header does not give records_per_epoch and epochs; give --steps",
		         stream_reader_name(t->in));
		return -1;
	}
	if (s->warmup_steps >= 0)
		t->warmup = s->warmup_steps;
	else if (s->warmup_epochs > 0) {
		if (t->spe <= 0) {
			snprintf(err, errlen, "--warmup-epochs: the epoch size is unknown; give --warmup-steps");
			return -1;
		}
		double w = s->warmup_epochs * (double)t->spe;
		t->warmup = w < (double)t->total ? (int64_t)llround(w) : t->total;
	}
	if (t->warmup > t->total)
		t->warmup = t->total;
	t->lr_base = (float)(s->lr_abs ? s->lr : s->lr * t->B / 256.0);
	t->step = 0;
	t->first_epoch = t->epoch = t->hdr->start_epoch;
	return 0;
}

/* --init-from: every encoder tensor from the file, checked by name and
 * shape; the file's head.* and fc.* are left out (the model's stay fresh). */
int
trainer_init_from_file(const SafeTensors *st, Model *m, int quiet, char *err, size_t errlen)
{
	int ignored = 0;
	if (safetensors_restore(st, model_params(m), 0, &ignored, err, errlen) < 0)
		return -1;
	if (!quiet)
		note("encoder weights from %s%s", st->name, ignored ? " (its head/fc tensors left out)" : "");
	return 0;
}

static int
build_model(Trainer *t, char *err, size_t errlen)
{
	const TrainSetup *s = &t->s;
	char why[512];
	int maxb = s->objective == OBJECTIVE_SIMCLR ? 2 * t->cap : t->cap;
	if (s->resume) {
		t->cfg = s->resume->config;
		if (t->cfg.in_channels != t->C || t->cfg.in_h != t->H || t->cfg.in_w != t->W) {
			snprintf(err, errlen, "%s: views are %dx%dx%d, the checkpoint's model takes %dx%dx%d",
			         stream_reader_name(t->in), t->H, t->W, t->C, t->cfg.in_h, t->cfg.in_w, t->cfg.in_channels);
			return -1;
		}
	} else if (s->init) {
		t->cfg = s->init->config;
		t->cfg.proj_layers = 0;
		t->cfg.proj_hidden = t->cfg.proj_dim = 0;
		t->cfg.num_classes = s->model.num_classes;
		if (t->cfg.in_channels != t->C || t->cfg.in_h != t->H || t->cfg.in_w != t->W) {
			snprintf(err, errlen, "%s: views are %dx%dx%d, the --init model takes %dx%dx%d",
			         stream_reader_name(t->in), t->H, t->W, t->C, t->cfg.in_h, t->cfg.in_w, t->cfg.in_channels);
			return -1;
		}
	} else {
		t->cfg = s->model;
		t->cfg.in_channels = t->C;
		t->cfg.in_h = t->H;
		t->cfg.in_w = t->W;
		if (s->objective == OBJECTIVE_SUPERVISED) {
			t->cfg.proj_layers = 0; /* the head would only be decayed */
			t->cfg.proj_hidden = t->cfg.proj_dim = 0;
		}
	}
	if (s->objective == OBJECTIVE_SUPERVISED && t->cfg.num_classes < 1) {
		snprintf(err, errlen, "%s: supervised training needs class names in the header", stream_reader_name(t->in));
		return -1;
	}
	t->m = model_new(&t->cfg, maxb, MODEL_TRAIN, why, sizeof why);
	if (!t->m) {
		snprintf(err, errlen, "model: %s", why);
		return -1;
	}
	model_init(t->m, s->seed);
	model_set_precision(t->m, s->precision);
	if (s->init_from && trainer_init_from_file(s->init_from, t->m, s->quiet, err, errlen) < 0)
		return -1;
	t->mean = xcalloc((size_t)t->C, sizeof *t->mean);
	t->std = xcalloc((size_t)t->C, sizeof *t->std);
	if (s->resume || s->init) {
		const Checkpoint *ck = s->resume ? s->resume : s->init;
		if (checkpoint_restore_model(ck, t->m, s->resume ? 0 : CHECKPOINT_ENCODER_ONLY, err, errlen) < 0)
			return -1;
		memcpy(t->mean, ck->mean, sizeof(float) * t->C);
		memcpy(t->std, ck->std, sizeof(float) * t->C);
		t->have_norm = 1;
	}
	if (s->nnorm) {
		if (s->nnorm != 1 && s->nnorm != t->C) {
			snprintf(err, errlen, "--mean/--std: %d values for %d input channels", s->nnorm, t->C);
			return -1;
		}
		for (int c = 0; c < t->C; c++) {
			t->mean[c] = s->mean[s->nnorm == 1 ? 0 : c];
			t->std[c] = s->std[s->nnorm == 1 ? 0 : c];
		}
		t->have_norm = 1;
	}
	if (t->total > 0) {
		OptimConfig oc = s->resume ? s->resume->optim : s->optim;
		t->o = optim_new(&oc, model_params(t->m));
		if (s->resume && checkpoint_restore_optim(s->resume, t->o, err, errlen) < 0)
			return -1;
	}
	return 0;
}

/* Rank 0's outputs: checkpoint path, monitor set, log. */
static int
setup_outputs(Trainer *t, char *err, size_t errlen)
{
	const TrainSetup *s = &t->s;
	AtomicFile probe;
	/* Refuse an unwritable output now, not after an hour of training. */
	if (atomicfile_open(&probe, s->out_path) < 0) {
		snprintf(err, errlen, "%s: cannot write beside it: %s", s->out_path, strerror(errno));
		return -1;
	}
	atomicfile_abort(&probe);
	if (s->monitor_path && monitor_load(t, err, errlen) < 0)
		return -1;
	if (log_open(t, s->resume ? t->step : 0, err, errlen) < 0)
		return -1;
	return 0;
}

Trainer *
trainer_new(const TrainSetup *s, StreamReader *in, char *err, size_t errlen)
{
	Trainer *t = xcalloc(1, sizeof *t);
	int D, ok, shared = 0;
	int64_t grpe;
	t->s = *s;
	t->t_begin = now_seconds();
	t->in = in;
	t->hdr = stream_reader_header(in);
	t->mpi = s->dist != NULL;
	t->d = t->mpi ? s->dist : dist_local();
	t->rank = dist_rank(t->d);
	t->size = dist_size(t->d);
	t->B = s->resume ? s->resume->train.batch : s->batch;
	t->cap = t->B / t->size;
	t->min_tail = s->resume ? s->resume->train.min_tail : s->min_tail > 0 ? s->min_tail : (t->B + 1) / 2;
	if (!t->s.stop)
		t->s.stop = &never_stop;
	if (s->resume) {
		t->s.temperature = s->resume->train.temperature;
		t->s.seed = s->resume->train.seed;
		t->s.objective = strcmp(s->resume->train.objective, "supervised") == 0 ? OBJECTIVE_SUPERVISED
		                                                                         : OBJECTIVE_SIMCLR;
	}
	s = &t->s;
	ok = feeder_setup(t, err, errlen) == 0;
	grpe = t->lrpe;
	if (t->mpi) {
		if (agree_setup(t, ok, &grpe, err, errlen) < 0)
			goto fail;
		shared = 1; /* from here on a failure is the same on every rank */
	} else if (!ok) {
		goto fail;
	}
	if (plan_schedule(t, grpe, err, errlen) < 0)
		goto fail;
	if (build_model(t, err, errlen) < 0)
		goto fail;
	D = model_output_dim(t->m, s->objective == OBJECTIVE_SIMCLR ? MODEL_OUT_PROJ : MODEL_OUT_LOGITS);
	if (D < 1) {
		snprintf(err, errlen, "model: no %s output", s->objective == OBJECTIVE_SIMCLR ? "projection" : "classifier");
		goto fail;
	}
	{
		size_t nimg = 2 * (size_t)t->cap, bytes, work;
		if (size_mul(nimg, t->img, &bytes) < 0 || size_mul(bytes, sizeof(float), &bytes) < 0) {
			snprintf(err, errlen, "--batch %d: buffers too large", t->B);
			goto fail;
		}
		t->u8 = xalloc_aligned(nimg * t->img);
		t->x = xalloc_aligned(bytes);
		t->labels = xcalloc((size_t)t->cap, sizeof *t->labels);
		t->dz = xalloc_aligned(sizeof(float) * nimg * (size_t)D);
		if (s->objective != OBJECTIVE_SIMCLR)
			work = 1;
		else if (t->size > 1)
			work = ntxent_dist_work_floats(t->cap, t->B, D);
		else
			work = ntxent_work_floats(t->B, D);
		t->work = xalloc_aligned(sizeof(float) * work);
	}
	t->counts = xcalloc((size_t)t->size, sizeof *t->counts);
	t->zcounts = xcalloc((size_t)t->size, sizeof *t->zcounts);
	t->ctl = xcalloc((size_t)t->size, sizeof *t->ctl);
	if (t->size > 1) { /* one rank: its batch is the global one */
		if (s->objective == OBJECTIVE_SIMCLR) {
			t->zrank = xalloc_aligned(sizeof(float) * 2 * (size_t)t->B * D);
			t->zall = xalloc_aligned(sizeof(float) * 2 * (size_t)t->B * D);
		}
		if (s->sync_bn) {
			t->sbn = syncbn_new(t->d, model_max_bn_channels(t->m));
			model_set_sync_bn(t->m, t->sbn);
		}
	}
	ok = t->rank != 0 || setup_outputs(t, err, errlen) == 0;
	if (t->mpi) {
		if (agree_ready(t, ok, err, errlen) < 0)
			goto fail;
		share_weights(t);
	} else if (!ok) {
		goto fail;
	}
	t->meta.nclasses = t->hdr->nclasses;
	t->meta.classes = t->hdr->classes;
	t->meta.nprov = s->nprov;
	t->meta.prov = (Provenance *)s->prov;
	t->ckpt_step = -1;
	t->mon_last = t->mon_first = t->mon_base = -1;
	t->mon_last_step = -1;
	if (s->verbose && t->rank == 0)
		model_print_summary(t->m, stderr);
	return t;
fail:
	if (shared && t->rank != 0)
		err[0] = '\0'; /* rank 0 says it */
	trainer_free(t);
	return NULL;
}

void
trainer_free(Trainer *t)
{
	if (!t)
		return;
	if (t->log)
		fclose(t->log);
	model_free(t->m);
	optim_free(t->o);
	free(t->u8);
	free(t->x);
	free(t->labels);
	free(t->dz);
	free(t->work);
	free(t->mean);
	free(t->std);
	free(t->mon_u8);
	free(t->mon_y);
	free(t->mon_feat);
	free(t->mon_votes);
	syncbn_free(t->sbn);
	free(t->counts);
	free(t->zcounts);
	free(t->ctl);
	free(t->zrank);
	free(t->zall);
	free(t);
}

int64_t
trainer_step(const Trainer *t)
{
	return t->step;
}

int64_t
trainer_total_steps(const Trainer *t)
{
	return t->total;
}

int64_t
trainer_epoch(const Trainer *t)
{
	return t->epoch;
}

int
trainer_checkpoint_written(const Trainer *t)
{
	return t->ckpt_written;
}

Model *
trainer_model(Trainer *t)
{
	return t->m;
}
