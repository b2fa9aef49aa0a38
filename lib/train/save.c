/* Checkpoint writing: the run's state (model, optimizer, step, position
 * in the input, schedule, normalisation, provenance) through
 * lib/io/checkpoint.c, atomically; and the untrained model of --steps 0. */
#include "train/internal.h"

#include <stdio.h>

#include "base/parallel.h"
#include "base/util.h"

static void
fill_meta(Trainer *t)
{
	CheckpointTrain *tr = &t->meta.train;
	t->meta.mean = t->mean;
	t->meta.std = t->std;
	t->meta.has_optim = t->o != NULL;
	t->meta.optim = t->s.resume ? t->s.resume->optim : t->s.optim;
	t->meta.has_train = 1;
	snprintf(tr->objective, sizeof tr->objective, "%s", t->s.objective == OBJECTIVE_SIMCLR ? "simclr" : "supervised");
	tr->step = t->step;
	tr->epoch = t->epoch;
	tr->epoch_records = t->epoch_records; /* a resumed run still skipping keeps its place: it starts there */
	tr->first_epoch = t->first_epoch;
	/* a --budget run still timing its steps records its estimate: a resume keeps that plan */
	tr->total_steps = t->planning ? budget_steps(t) : t->total;
	tr->warmup_steps = t->warmup < tr->total_steps ? t->warmup : tr->total_steps;
	tr->relaid_at = t->relaid_at;
	tr->relaid_phase = t->relaid_phase;
	tr->records_per_epoch = t->rpe;
	tr->epochs = t->epochs;
	tr->batch = t->B;
	tr->min_tail = t->min_tail;
	tr->lr = t->lr_base;
	tr->lr_arg = t->s.resume ? t->s.resume->train.lr_arg : t->s.lr;
	tr->lr_abs = t->s.resume ? t->s.resume->train.lr_abs : t->s.lr_abs;
	tr->warmup_epochs = t->s.resume ? t->s.resume->train.warmup_epochs : t->s.warmup_epochs;
	tr->temperature = t->s.temperature;
	tr->seed = t->s.seed;
	tr->threads = parallel_threads();
	tr->loss = t->last_loss;
	snprintf(tr->precision, sizeof tr->precision, "%s", model_precision_name(model_precision(t->m)));
}

/* Data-parallel, a collective call: without --sync-bn each rank has its
 * own running statistics, so they are averaged first (on every rank, so
 * the ranks stay alike); rank 0 writes, and every rank learns whether that
 * worked. */
int
save_checkpoint(Trainer *t, char *err, size_t errlen)
{
	int32_t rc = 0;
	if (t->size > 1 && !t->sbn) {
		ParamTable *pt = model_params(t->m);
		dist_allreduce_sum_f32(t->d, pt->buffers, pt->nbuffers, DIST_SETUP);
		for (size_t i = 0; i < pt->nbuffers; i++)
			pt->buffers[i] /= (float)t->size;
	}
	if (t->rank == 0) {
		fill_meta(t);
		double t0 = now_seconds();
		rc = checkpoint_save(t->s.out_path, &t->meta, t->m, t->o, err, errlen) < 0 ? -1 : 0;
		t->save_s = now_seconds() - t0;
	}
	dist_bcast(t->d, &rc, sizeof rc, 0, DIST_SETUP);
	if (rc < 0 && t->rank != 0)
		snprintf(err, errlen, "rank 0 could not write %s (its message says why)", t->s.out_path);
	if (rc < 0)
		return -1;
	t->ckpt_written = 1;
	t->ckpt_step = t->step;
	return 0;
}

int
trainer_write_untrained(const TrainSetup *s, char *err, size_t errlen)
{
	Checkpoint meta;
	ModelConfig c = s->model;
	float mean[MODEL_MAX_IN_CHANNELS], std[MODEL_MAX_IN_CHANNELS];
	char why[256];
	Model *m;
	int rc;
	if (c.in_channels < 1 || c.in_channels > MODEL_MAX_IN_CHANNELS) {
		snprintf(err, errlen, "--input-size: %d channels (1 to %d)", c.in_channels, MODEL_MAX_IN_CHANNELS);
		return -1;
	}
	if (s->nnorm && s->nnorm != 1 && s->nnorm != c.in_channels) {
		snprintf(err, errlen, "--mean/--std: %d values for %d input channels", s->nnorm, c.in_channels);
		return -1;
	}
	for (int i = 0; i < c.in_channels; i++) {
		mean[i] = s->nnorm ? s->mean[s->nnorm == 1 ? 0 : i] : NORM_DEFAULT_MEAN;
		std[i] = s->nnorm ? s->std[s->nnorm == 1 ? 0 : i] : NORM_DEFAULT_STD;
	}
	m = model_new(&c, 1, MODEL_INFER, why, sizeof why);
	if (!m) {
		snprintf(err, errlen, "model: %s", why);
		return -1;
	}
	model_init(m, s->seed);
	if (s->init_from && trainer_init_from_file(s->init_from, m, s->quiet, err, errlen) < 0) {
		model_free(m);
		return -1;
	}
	checkpoint_init(&meta);
	meta.mean = mean;
	meta.std = std;
	meta.has_train = 1;
	snprintf(meta.train.objective, sizeof meta.train.objective, "%s",
	         s->objective == OBJECTIVE_SIMCLR ? "simclr" : "supervised");
	meta.train.records_per_epoch = meta.train.epochs = -1;
	meta.train.batch = s->batch;
	meta.train.min_tail = s->min_tail > 0 ? s->min_tail : (s->batch + 1) / 2;
	meta.train.lr = meta.train.lr_arg = s->lr;
	meta.train.lr_abs = s->lr_abs;
	meta.train.temperature = s->temperature;
	meta.train.seed = s->seed;
	meta.train.threads = parallel_threads();
	meta.nprov = s->nprov;
	meta.prov = (Provenance *)s->prov;
	rc = checkpoint_save(s->out_path, &meta, m, NULL, err, errlen);
	model_free(m);
	return rc;
}
