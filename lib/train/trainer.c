/* trainer: see trainer.h and ssl-train(1).
 *
 * The loop: fill a batch of one epoch's records (copying the views into a
 * planned uint8 buffer), normalise, forward, loss, backward, check that
 * the loss and every gradient are finite, optimizer step, then the epoch
 * end (monitor, log row, checkpoint) and periodic checkpoints. A signal
 * only sets a flag; the loop looks at it between steps, so a step always
 * finishes and the checkpoint describes whole steps. */
#include "train/trainer.h"

#include <signal.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/atomicfile.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "dist/ntxent_dist.h"
#include "base/parallel.h"
#include "eval/probe.h"
#include "base/progress.h"
#include "dist/syncbn.h"
#include "base/util.h"

#define NORM_DEFAULT_MEAN 0.5f
#define NORM_DEFAULT_STD  0.25f

typedef struct {
	int64_t step, epoch;
	double  loss, lr, images_per_s, acc;
	double  monitor;      /* < 0: not measured */
} LogRow;

enum { FILL_BATCH, FILL_EPOCH_END, FILL_EOF, FILL_ERROR };

/* Data-parallel: what each rank says before every step (run_dist). */
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
	double        mon_last;
	/* reporting */
	Progress      prog;
	double        t_start;
	int64_t       step_start, images;
	double        last_loss, last_acc;
	float         last_lr;
	int64_t       row_logged;           /* step of the last row written */
	int64_t       fault_signal_step;    /* SSL_FAULT_SIGNAL_AT_STEP (tests): raise SIGTERM inside that step */
	/* data-parallel (s.dist): NULL d for one process */
	Dist         *d;
	int           rank, size;
	SyncBN       *sbn;                  /* --sync-bn */
	int           local_epoch_done;     /* this rank's epoch ended; waiting for the others' */
	CtlMsg       *ctl;                  /* (size) */
	int          *counts;               /* (size) records of each rank in the step */
	int          *zcounts;              /* (size) floats each rank adds to the gather */
	int64_t       nsum, noff;           /* records in the step on all ranks; this rank's offset */
	float        *zrank, *zall;         /* (2B, D) gathered projections: rank order, global order */
	int64_t       dropped;              /* records at epoch ends that some ranks lacked (not trained on) */
	int64_t       fault_kill_step;      /* SSL_FAULT_RANK_AT_STEP=R:S:kill|hang (tests): this rank fails there */
	int           fault_hang;
};

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

/* ------------------------------------------------------------ utilities */

static int
all_finite(const float *v, size_t n)
{
	float acc = 0.0f;
	/* x * 0 is 0 for every finite x and NaN for NaN and +-inf; one pass
	 * the compiler vectorises. */
	for (size_t i = 0; i < n; i++)
		acc += v[i] * 0.0f;
	return acc == 0.0f;
}

static void
norm_from_batch(Trainer *t)
{
	int C = t->C, views = t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1;
	double sum[16] = { 0 }, sq[16] = { 0 }, all[33];
	int64_t cnt = 0;
	for (int v = 0; v < views; v++) {
		const uint8_t *p = t->u8 + (size_t)v * t->cap * t->img;
		size_t npix = (size_t)t->n * t->H * t->W;
		for (size_t i = 0; i < npix; i++)
			for (int c = 0; c < C; c++) {
				double x = p[i * C + c] / 255.0;
				sum[c] += x;
				sq[c] += x * x;
			}
		cnt += (int64_t)npix;
	}
	if (t->d) { /* the first global batch: every rank's pixels */
		for (int c = 0; c < C; c++) {
			all[c] = sum[c];
			all[16 + c] = sq[c];
		}
		all[32] = (double)cnt;
		dist_allreduce_sum_f64(t->d, all, 33, DIST_SETUP);
		for (int c = 0; c < C; c++) {
			sum[c] = all[c];
			sq[c] = all[16 + c];
		}
		cnt = (int64_t)all[32];
	}
	for (int c = 0; c < C; c++) {
		double mu = sum[c] / (double)cnt, var = sq[c] / (double)cnt - mu * mu;
		double sd = var > 0 ? sqrt(var) : 0;
		t->mean[c] = (float)mu;
		t->std[c] = sd > 1e-3 ? (float)sd : 1.0f; /* a constant channel: leave its scale alone */
	}
	t->have_norm = 1;
	if (!t->s.quiet) {
		char buf[256];
		size_t u = 0;
		for (int c = 0; c < C && u < sizeof buf; c++)
			u += (size_t)snprintf(buf + u, sizeof buf - u, "%s%.4f/%.4f", c ? " " : "", t->mean[c], t->std[c]);
		note("normalisation from the first batch (mean/std per channel): %s", buf);
	}
}

/* ------------------------------------------------------------- the log */

static int
log_open(Trainer *t, int64_t keep_upto, char *err, size_t errlen)
{
	static const char head[] = "step\tepoch\tloss\tlr\timages_per_s\tcontrastive_top1\tmonitor_knn_top1\n";
	const char *path = t->s.log_path;
	if (!path)
		return 0;
	if (keep_upto > 0) {
		/* Resuming: keep the rows up to the checkpoint's step, drop any
		 * written after it by the interrupted run. */
		FILE *old = fopen(path, "r");
		AtomicFile af;
		char line[512];
		if (old) {
			if (atomicfile_open(&af, path) < 0) {
				snprintf(err, errlen, "%s: %s", path, strerror(errno));
				fclose(old);
				return -1;
			}
			fputs(head, af.fp);
			if (fgets(line, sizeof line, old)) {
				while (fgets(line, sizeof line, old)) {
					long long st = strtoll(line, NULL, 10);
					if (st >= 1 && st <= keep_upto)
						fputs(line, af.fp);
				}
			}
			fclose(old);
			if (atomicfile_commit(&af) < 0) {
				snprintf(err, errlen, "%s: %s", path, strerror(errno));
				return -1;
			}
			t->log = fopen(path, "a");
			goto opened;
		}
	}
	t->log = fopen(path, "w");
	if (t->log)
		fputs(head, t->log);
opened:
	if (!t->log) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	fflush(t->log);
	return 0;
}

static void
log_flush_row(Trainer *t)
{
	LogRow *r = &t->row;
	if (!t->row_pending)
		return;
	t->row_pending = 0;
	if (!t->log)
		return;
	fprintf(t->log, "%lld\t%lld\t%.6f\t%.6g\t%.1f\t%.4f\t", (long long)r->step, (long long)r->epoch, r->loss, r->lr,
	        r->images_per_s, r->acc);
	if (r->monitor >= 0)
		fprintf(t->log, "%.4f", r->monitor);
	fputc('\n', t->log);
	fflush(t->log);
	t->row_logged = r->step;
}

/* ------------------------------------------------------------- monitor */

static int
monitor_load(Trainer *t, char *err, size_t errlen)
{
	StreamReader *r = stream_reader_open_path(t->s.monitor_path);
	const StreamHeader *h = stream_reader_header(r);
	Record rec;
	int64_t cap = 0, n = 0, maxlab = -1;
	uint8_t *u8 = NULL;
	int64_t *y = NULL, *id = NULL;
	char why[256];
	int s;
	if (!h) {
		snprintf(err, errlen, "--monitor: %s", stream_reader_error(r));
		stream_reader_close(r);
		return -1;
	}
	if (strcmp(h->kind, STREAM_KIND_IMAGES) != 0) {
		snprintf(err, errlen, "--monitor: %s: kind '%s', expected an images stream", t->s.monitor_path, h->kind);
		stream_reader_close(r);
		return -1;
	}
	while ((s = stream_reader_next(r, &rec)) > 0) {
		const Tensor *im = record_tensor(&rec, "image", DTYPE_U8, 3, why, sizeof why);
		if (!im || im->shape[0] != t->H || im->shape[1] != t->W || im->shape[2] != t->C) {
			snprintf(err, errlen, "--monitor: %s: record %lld: %s%s", t->s.monitor_path, (long long)n + 1,
			         im ? "image size differs from the model input " : why, "");
			if (im)
				snprintf(err + strlen(err), errlen - strlen(err), "(%lldx%lldx%lld, want %dx%dx%d)",
				         (long long)im->shape[0], (long long)im->shape[1], (long long)im->shape[2], t->H, t->W, t->C);
			goto fail;
		}
		if (rec.label < 0) {
			snprintf(err, errlen, "--monitor: %s: record %lld: no label (the monitor needs labelled images)",
			         t->s.monitor_path, (long long)n + 1);
			goto fail;
		}
		if (n == cap) {
			size_t bytes;
			cap = cap ? 2 * cap : 1024;
			if (size_mul((size_t)cap, t->img, &bytes) < 0) {
				snprintf(err, errlen, "--monitor: too large");
				goto fail;
			}
			u8 = xrealloc(u8, bytes);
			y = xreallocarray(y, (size_t)cap, sizeof *y);
			id = xreallocarray(id, (size_t)cap, sizeof *id);
		}
		memcpy(u8 + (size_t)n * t->img, im->data, t->img);
		y[n] = rec.label;
		id[n] = rec.id;
		if (rec.label > maxlab)
			maxlab = rec.label;
		n++;
	}
	if (s < 0) {
		snprintf(err, errlen, "--monitor: %s", stream_reader_error(r));
		goto fail;
	}
	t->mon_K = h->nclasses > maxlab ? h->nclasses : (int)maxlab + 1;
	stream_reader_close(r);
	r = NULL;
	/* Even ids are the memory bank, odd ids the queries: a split that
	 * does not depend on the order of the file. */
	t->mon_u8 = xmalloc(n ? (size_t)n * t->img : 1);
	t->mon_y = xcalloc(n ? (size_t)n : 1, sizeof *t->mon_y);
	for (int pass = 0; pass < 2; pass++)
		for (int64_t i = 0; i < n; i++)
			if ((id[i] & 1) == pass) {
				int64_t k = t->mon_nbank + t->mon_nq;
				memcpy(t->mon_u8 + (size_t)k * t->img, u8 + (size_t)i * t->img, t->img);
				t->mon_y[k] = y[i];
				if (pass == 0)
					t->mon_nbank++;
				else
					t->mon_nq++;
			}
	free(u8);
	free(y);
	free(id);
	if (t->mon_nbank == 0 || t->mon_nq == 0) {
		snprintf(err, errlen, "--monitor: %s: needs images with even ids (memory bank) and odd ids (queries); has %lld and %lld",
		         t->s.monitor_path, (long long)t->mon_nbank, (long long)t->mon_nq);
		return -1;
	}
	t->mon_n = n;
	t->mon_feat = xcalloc((size_t)n * model_feature_dim(t->m), sizeof *t->mon_feat);
	t->mon_votes = xcalloc((size_t)t->mon_nq * t->mon_K, sizeof *t->mon_votes);
	return 0;
fail:
	free(u8);
	free(y);
	free(id);
	stream_reader_close(r);
	return -1;
}

/* kNN top-1 of the queries against the bank, features from the encoder in
 * eval mode (running statistics). */
static double
monitor_eval(Trainer *t)
{
	int D = model_feature_dim(t->m), maxb = model_max_batch(t->m);
	int64_t correct = 0;
	for (int64_t i = 0; i < t->mon_n; i += maxb) {
		int cnt = (int)(t->mon_n - i < maxb ? t->mon_n - i : maxb);
		const float *f;
		input_normalize_u8(t->x, t->mon_u8 + (size_t)i * t->img, cnt, t->H, t->W, t->C, t->mean, t->std);
		f = model_forward_eval(t->m, t->x, cnt, MODEL_OUT_ENCODER);
		memcpy(t->mon_feat + (size_t)i * D, f, sizeof(float) * (size_t)cnt * D);
	}
	probe_l2_normalize(t->mon_feat, t->mon_n, D);
	knn_scores(t->mon_votes, t->mon_feat, t->mon_y, t->mon_nbank, t->mon_feat + (size_t)t->mon_nbank * D,
	           t->mon_nq, D, t->mon_K, t->s.monitor_k, t->s.monitor_t, NULL);
	for (int64_t q = 0; q < t->mon_nq; q++)
		correct += probe_argmax(t->mon_votes + (size_t)q * t->mon_K, t->mon_K) == t->mon_y[t->mon_nbank + q];
	return (double)correct / (double)t->mon_nq;
}

/* ---------------------------------------------------------- checkpoints */

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
	tr->total_steps = t->total;
	tr->warmup_steps = t->warmup;
	tr->records_per_epoch = t->rpe;
	tr->epochs = t->epochs;
	tr->batch = t->B;
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
static int
save(Trainer *t, char *err, size_t errlen)
{
	int32_t rc = 0;
	if (t->d && t->size > 1 && !t->sbn) {
		ParamTable *pt = model_params(t->m);
		dist_allreduce_sum_f32(t->d, pt->buffers, pt->nbuffers, DIST_SETUP);
		for (size_t i = 0; i < pt->nbuffers; i++)
			pt->buffers[i] /= (float)t->size;
	}
	if (t->rank == 0) {
		fill_meta(t);
		rc = checkpoint_save(t->s.out_path, &t->meta, t->m, t->o, err, errlen) < 0 ? -1 : 0;
	}
	if (t->d) {
		dist_bcast(t->d, &rc, sizeof rc, 0, DIST_SETUP);
		if (rc < 0 && t->rank != 0)
			snprintf(err, errlen, "rank 0 could not write %s (its message says why)", t->s.out_path);
	}
	if (rc < 0)
		return -1;
	t->ckpt_written = 1;
	t->ckpt_step = t->step;
	return 0;
}

/* --------------------------------------------------------------- setup */

static int
record_views(Trainer *t, const Record *rec, const Tensor **v, char *err, size_t errlen)
{
	char why[256];
	int need = t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1;
	*v = record_tensor(rec, "views", DTYPE_U8, 4, why, sizeof why);
	if (!*v) {
		snprintf(err, errlen, "%s: record %lld (id %lld): %s", stream_reader_name(t->in),
		         (long long)stream_reader_count(t->in), (long long)rec->id, why);
		return -1;
	}
	if ((*v)->shape[0] < need) {
		snprintf(err, errlen, "%s: record %lld (id %lld): %lld views, %s needs %d", stream_reader_name(t->in),
		         (long long)stream_reader_count(t->in), (long long)rec->id, (long long)(*v)->shape[0],
		         need == 2 ? "SimCLR" : "supervised training", need);
		return -1;
	}
	if (t->H && ((*v)->shape[1] != t->H || (*v)->shape[2] != t->W || (*v)->shape[3] != t->C)) {
		snprintf(err, errlen, "%s: record %lld (id %lld): views are %lldx%lldx%lld, expected %dx%dx%d",
		         stream_reader_name(t->in), (long long)stream_reader_count(t->in), (long long)rec->id,
		         (long long)(*v)->shape[1], (long long)(*v)->shape[2], (long long)(*v)->shape[3], t->H, t->W, t->C);
		return -1;
	}
	return 0;
}

/* Steps in an epoch of rpe records (all ranks), -1 if unknown. With
 * ranks, the last batch of an epoch is not trained on when it has fewer
 * records than ranks (some would have none; see run_dist). */
static int64_t
steps_per_epoch(const Trainer *t, int64_t rpe)
{
	int64_t spe, last;
	if (rpe <= 0)
		return -1;
	spe = (rpe + t->B - 1) / t->B;
	last = rpe % t->B;
	return last > 0 && last < t->size ? spe - 1 : spe;
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
		t->rpe = tr->records_per_epoch;
		t->epochs = tr->epochs;
		t->spe = steps_per_epoch(t, t->rpe);
		t->lr_base = (float)tr->lr;
		t->first_epoch = tr->first_epoch;
		t->epoch = tr->epoch;
		/* Rank r's shard holds positions r, r + size, ... of the epoch:
		 * those below epoch_records were trained on. */
		t->epoch_records = tr->epoch_records;
		t->skip_left = t->epoch_records > t->rank ? (t->epoch_records - t->rank + t->size - 1) / t->size : 0;
		if (grpe >= 0 && t->rpe >= 0 && grpe != t->rpe) {
			snprintf(err, errlen, "%s: %lld records per epoch%s, the checkpoint's run had %lld",
			         stream_reader_name(t->in), (long long)grpe, t->d ? " on all ranks" : "", (long long)t->rpe);
			return -1;
		}
		return 0;
	}
	t->rpe = grpe > 0 ? grpe : -1;
	t->epochs = t->hdr->epochs > 0 ? t->hdr->epochs : -1;
	t->spe = steps_per_epoch(t, t->rpe);
	if (s->steps >= 0)
		t->total = s->steps;
	else if (t->spe > 0 && t->epochs > 0)
		t->total = t->spe * t->epochs;
	else {
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
		t->warmup = (int64_t)llround(s->warmup_epochs * (double)t->spe);
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
static int
init_from_file(const SafeTensors *st, Model *m, int quiet, char *err, size_t errlen)
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
	if (s->init_from && init_from_file(s->init_from, t->m, s->quiet, err, errlen) < 0)
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

/* What one process can check alone: the header, the first record (the
 * input size), the batch. */
static int
setup_input(Trainer *t, char *err, size_t errlen)
{
	const TrainSetup *s = &t->s;
	StreamReader *in = t->in;
	const Tensor *v;
	int rc;
	if (!t->hdr) {
		snprintf(err, errlen, "%s", stream_reader_error(in));
		return -1;
	}
	if (strcmp(t->hdr->kind, STREAM_KIND_VIEWS) != 0) {
		snprintf(err, errlen, "%s: kind '%s', expected a views stream (ssl-augment makes one)",
		         stream_reader_name(in), t->hdr->kind);
		return -1;
	}
	if (t->B % t->size != 0) {
		snprintf(err, errlen, "--batch %d is not a multiple of the %d ranks (each takes batch / ranks)", t->B,
		         t->size);
		return -1;
	}
	if (s->objective == OBJECTIVE_SUPERVISED && !s->resume)
		t->s.model.num_classes = t->hdr->nclasses;
	t->lrpe = t->hdr->records_per_epoch > 0 ? t->hdr->records_per_epoch : -1;
	/* The first record gives the input size; it stays pending for the
	 * first batch (the reader keeps it valid until the next read). */
	rc = stream_reader_next(in, &t->pending);
	if (rc < 0) {
		snprintf(err, errlen, "%s", stream_reader_error(in));
		return -1;
	}
	if (rc == 0) {
		snprintf(err, errlen, "%s: no records", stream_reader_name(in));
		return -1;
	}
	t->has_pending = 1;
	if (record_views(t, &t->pending, &v, err, errlen) < 0)
		return -1;
	t->V = (int)v->shape[0];
	t->H = (int)v->shape[1];
	t->W = (int)v->shape[2];
	t->C = (int)v->shape[3];
	if (t->C > 16) {
		snprintf(err, errlen, "%s: %d channels; at most 16 are supported", stream_reader_name(in), t->C);
		return -1;
	}
	t->img = (size_t)t->H * t->W * t->C;
	return 0;
}

/* FNV-1a of the settings every rank must share (the same command). */
static uint64_t
settings_fingerprint(const Trainer *t)
{
	const TrainSetup *s = &t->s;
	const ModelConfig *c = &s->model;
	const OptimConfig *o = s->resume ? &s->resume->optim : &s->optim;
	char buf[1024];
	uint64_t h = UINT64_C(14695981039346656037);
	int n = snprintf(buf, sizeof buf,
	                 "%d %d %d %d %d %d %d %d %d %d | %d %.9g %d %.9g %.9g %.9g %.9g %.9g %d | %d %.17g %d %.17g %lld "
	                 "%lld %.17g %llu %lld %lld %d %d %lld %d %d",
	                 s->objective, c->arch, c->stem, c->width, c->proj_layers, c->proj_hidden, c->proj_dim,
	                 c->num_classes, c->zero_init_residual, s->sync_bn, o->kind, o->momentum, o->nesterov,
	                 o->weight_decay, o->trust_coef, o->beta1, o->beta2, o->eps, o->decay_all, t->B, s->lr, s->lr_abs,
	                 s->warmup_epochs, (long long)s->warmup_steps, (long long)s->steps, s->temperature,
	                 (unsigned long long)s->seed, (long long)s->ckpt_every_steps, (long long)s->ckpt_every_epochs,
	                 s->resume != NULL, s->init != NULL, s->resume ? (long long)s->resume->train.step : -1LL,
	                 s->nnorm, (int)s->precision);
	for (int i = 0; i < s->nnorm && n > 0 && (size_t)n < sizeof buf; i++)
		n += snprintf(buf + n, sizeof buf - (size_t)n, " %.9g/%.9g", s->mean[i], s->std[i]);
	for (int i = 0; i < n && (size_t)i < sizeof buf; i++)
		h = (h ^ (uint8_t)buf[i]) * UINT64_C(1099511628211);
	return h;
}

typedef struct {
	int32_t  ok, H, W, C, nclasses, shard_i, shard_n, pad;
	int64_t  rpe, epochs, start_epoch;
	uint64_t fingerprint;
} SetupMsg;

/* Data-parallel start-up, a collective call that every rank makes even when
 * its own set-up failed (ok 0), so that no rank waits for one that gave up.
 * Checks that the ranks run the same command on shards of one input and
 * gives the records per epoch of all ranks (*grpe, -1 if unknown). On a
 * failure only the rank that failed, or else rank 0, leaves a message. */
static int
agree_setup(Trainer *t, int ok, int64_t *grpe, char *err, size_t errlen)
{
	SetupMsg me, *all = xcalloc((size_t)t->size, sizeof *all);
	const SetupMsg *a0 = &all[0];
	const char *sh = ok ? stream_header_get_meta(t->hdr, "shard") : NULL;
	long long si = -1, sn = -1;
	int bad = -1, unsharded = 0;
	char msg[512] = "";
	memset(&me, 0, sizeof me);
	me.ok = ok;
	if (ok) {
		me.H = t->H, me.W = t->W, me.C = t->C, me.nclasses = t->hdr->nclasses;
		me.rpe = t->lrpe, me.epochs = t->hdr->epochs, me.start_epoch = t->hdr->start_epoch;
		me.fingerprint = settings_fingerprint(t);
		if (sh && sscanf(sh, "%lld/%lld", &si, &sn) != 2)
			si = sn = -2;
		me.shard_i = (int32_t)si;
		me.shard_n = (int32_t)sn;
	}
	dist_allgather(t->d, &me, sizeof me, all, DIST_SETUP);
	for (int r = 0; r < t->size && bad < 0; r++)
		if (!all[r].ok)
			bad = r;
	if (bad >= 0) {
		if (ok && t->rank == 0)
			snprintf(err, errlen, "rank %d could not start (its message says why)", bad);
		else if (ok)
			err[0] = '\0';
		free(all);
		return -1;
	}
	*grpe = 0;
	for (int r = 0; r < t->size; r++) {
		const SetupMsg *m = &all[r];
		if (!msg[0] && m->fingerprint != a0->fingerprint)
			snprintf(msg, sizeof msg, "rank %d runs with other options than rank 0: every rank must run the same "
			         "ssl-train-mpi command", r);
		if (!msg[0] && (m->H != a0->H || m->W != a0->W || m->C != a0->C))
			snprintf(msg, sizeof msg, "rank %d's views are %dx%dx%d, rank 0's %dx%dx%d", r, m->H, m->W, m->C, a0->H,
			         a0->W, a0->C);
		if (!msg[0] && (m->epochs != a0->epochs || m->start_epoch != a0->start_epoch || m->nclasses != a0->nclasses))
			snprintf(msg, sizeof msg, "rank %d's input (epochs %lld from %lld, %d classes) does not match rank 0's "
			         "(epochs %lld from %lld, %d classes)", r, (long long)m->epochs, (long long)m->start_epoch,
			         m->nclasses, (long long)a0->epochs, (long long)a0->start_epoch, a0->nclasses);
		if (!msg[0] && m->shard_n >= 0 && (m->shard_i != r || m->shard_n != t->size))
			snprintf(msg, sizeof msg, "rank %d reads shard %d/%d of its input; it needs shard %d/%d "
			         "(ssl-decode --shard $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE)", r, m->shard_i, m->shard_n, r,
			         t->size);
		if (!msg[0] && m->shard_n == -2)
			snprintf(msg, sizeof msg, "rank %d: its input's meta entry 'shard' is not I/N", r);
		unsharded += m->shard_n == -1;
		*grpe = m->rpe > 0 && *grpe >= 0 ? *grpe + m->rpe : -1;
	}
	free(all);
	if (msg[0]) {
		snprintf(err, errlen, "%s", t->rank == 0 ? msg : "");
		return -1;
	}
	if (unsharded && t->size > 1 && t->rank == 0)
		warn("%d of the %d ranks read an input without a shard (ssl-decode --shard I/N): the ranks must read "
		     "different records, or they train on copies", unsharded, t->size);
	return 0;
}

/* Data-parallel: every rank learns whether all are ready (rank 0 alone
 * checks its outputs). */
static int
agree_ready(Trainer *t, int ok, char *err, size_t errlen)
{
	int32_t me = ok, *all = xcalloc((size_t)t->size, sizeof *all);
	int bad = -1;
	dist_allgather(t->d, &me, sizeof me, all, DIST_SETUP);
	for (int r = 0; r < t->size && bad < 0; r++)
		if (!all[r])
			bad = r;
	free(all);
	if (bad < 0)
		return 0;
	if (ok)
		err[0] = '\0'; /* the rank that failed says why */
	return -1;
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

/* Data-parallel: identical weights, buffers and normalisation on every
 * rank to start with (they are made alike; this makes sure). */
static void
share_weights(Trainer *t)
{
	ParamTable *pt = model_params(t->m);
	int32_t have = t->have_norm;
	dist_bcast(t->d, pt->params, sizeof(float) * pt->nparams, 0, DIST_SETUP);
	dist_bcast(t->d, pt->buffers, sizeof(float) * pt->nbuffers, 0, DIST_SETUP);
	dist_bcast(t->d, pt->counters, sizeof(int64_t) * pt->ncounters, 0, DIST_SETUP);
	dist_bcast(t->d, &have, sizeof have, 0, DIST_SETUP);
	if (have) {
		dist_bcast(t->d, t->mean, sizeof(float) * t->C, 0, DIST_SETUP);
		dist_bcast(t->d, t->std, sizeof(float) * t->C, 0, DIST_SETUP);
	}
}

Trainer *
trainer_new(const TrainSetup *s, StreamReader *in, char *err, size_t errlen)
{
	Trainer *t = xcalloc(1, sizeof *t);
	int D, ok, shared = 0;
	int64_t grpe;
	t->s = *s;
	t->in = in;
	t->hdr = stream_reader_header(in);
	t->d = s->dist;
	t->rank = t->d ? dist_rank(t->d) : 0;
	t->size = t->d ? dist_size(t->d) : 1;
	t->B = s->resume ? s->resume->train.batch : s->batch;
	t->cap = t->B / t->size;
	if (!t->s.stop)
		t->s.stop = &never_stop;
	if (s->resume) {
		t->s.temperature = s->resume->train.temperature;
		t->s.seed = s->resume->train.seed;
		t->s.objective = strcmp(s->resume->train.objective, "supervised") == 0 ? OBJECTIVE_SUPERVISED
		                                                                         : OBJECTIVE_SIMCLR;
	}
	s = &t->s;
	ok = setup_input(t, err, errlen) == 0;
	grpe = t->lrpe;
	if (t->d) {
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
	if (t->d) {
		t->counts = xcalloc((size_t)t->size, sizeof *t->counts);
		t->zcounts = xcalloc((size_t)t->size, sizeof *t->zcounts);
		t->ctl = xcalloc((size_t)t->size, sizeof *t->ctl);
		if (s->objective == OBJECTIVE_SIMCLR) {
			t->zrank = xalloc_aligned(sizeof(float) * 2 * (size_t)t->B * D);
			t->zall = xalloc_aligned(sizeof(float) * 2 * (size_t)t->B * D);
		}
		if (s->sync_bn && t->size > 1) { /* one rank: its batch is the global one */
			t->sbn = syncbn_new(t->d, model_max_bn_channels(t->m));
			model_set_sync_bn(t->m, t->sbn);
		}
	}
	ok = t->rank != 0 || setup_outputs(t, err, errlen) == 0;
	if (t->d) {
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
	t->mon_last = -1;
	{
		const char *f = getenv("SSL_FAULT_SIGNAL_AT_STEP");
		t->fault_signal_step = f ? atoll(f) : -1;
		/* SSL_FAULT_RANK_AT_STEP=R:S:kill|hang: rank R dies (SIGKILL) or
		 * stops answering inside step S (tests of the failure paths) */
		f = getenv("SSL_FAULT_RANK_AT_STEP");
		t->fault_kill_step = -1;
		if (f && t->d) {
			int r = -1;
			long long st = -1;
			char how[8] = "";
			if (sscanf(f, "%d:%lld:%7s", &r, &st, how) == 3 && r == t->rank) {
				t->fault_kill_step = st;
				t->fault_hang = strcmp(how, "hang") == 0;
			}
		}
	}
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

/* ------------------------------------------------------------- batches */

/* Gathers up to B records of one epoch. FILL_BATCH: t->n records (the
 * batch may end the epoch: t->batch_ends_epoch); FILL_EPOCH_END: a record
 * of a later epoch arrived between batches (it stays pending);
 * FILL_EOF: the trailer was reached (t->n may be > 0: the last batch);
 * FILL_ERROR: message in err. */
static int
fill_batch(Trainer *t, char *err, size_t errlen)
{
	t->n = 0;
	t->batch_ends_epoch = 0;
	if (t->eof)
		return FILL_EOF;
	if (t->local_epoch_done)
		return FILL_EPOCH_END; /* data-parallel: the other ranks are still in this epoch */
	while (t->n < t->cap) {
		Record rec;
		const Tensor *v;
		int got;
		if (t->has_pending) {
			rec = t->pending;
			t->has_pending = 0;
			got = 1;
		} else {
			got = stream_reader_next(t->in, &rec);
		}
		if (got < 0) {
			snprintf(err, errlen, "%s", stream_reader_error(t->in));
			return FILL_ERROR;
		}
		if (got == 0) {
			t->eof = 1;
			if (t->n > 0 || t->lrec > 0)
				t->batch_ends_epoch = 1;
			return FILL_EOF;
		}
		/* Before the first record of the checkpoint's epoch, a resumed run
		 * may skip earlier epochs (the whole stream replayed). */
		int replaying = t->s.resume && t->step == t->s.resume->train.step && !t->epoch_started;
		if (rec.epoch < t->epoch) {
			if (!replaying) {
				snprintf(err, errlen, "%s: record %lld (id %lld): epoch %lld after epoch %lld%s",
				         stream_reader_name(t->in), (long long)stream_reader_count(t->in), (long long)rec.id,
				         (long long)rec.epoch, (long long)t->epoch,
				         t->rpe > 0 ? " (more records in an epoch than the header's records_per_epoch?)" : "");
				return FILL_ERROR;
			}
			t->skipped++; /* resuming from a stream that starts earlier */
			continue;
		}
		if (rec.epoch > t->epoch) {
			if (replaying || t->skip_left > 0) {
				snprintf(err, errlen, "%s: record %lld (id %lld): epoch %lld, but the checkpoint needs epoch %lld "
				         "(from its record %lld); restart the input at epoch %lld",
				         stream_reader_name(t->in), (long long)stream_reader_count(t->in), (long long)rec.id,
				         (long long)rec.epoch, (long long)t->epoch, (long long)t->skip_left, (long long)t->epoch);
				return FILL_ERROR;
			}
			if (t->n > 0 || t->lrec > 0) {
				t->pending = rec;
				t->has_pending = 1;
				if (t->n > 0) {
					t->batch_ends_epoch = 1;
					return FILL_BATCH;
				}
				return FILL_EPOCH_END;
			}
			t->epoch = rec.epoch; /* an epoch the input skipped, or the first */
			if (t->step == 0)
				t->first_epoch = rec.epoch;
		}
		t->epoch_started = 1;
		if (t->skip_left > 0) {
			t->skip_left--;
			t->skipped++;
			t->lrec++;
			continue;
		}
		if (record_views(t, &rec, &v, err, errlen) < 0)
			return FILL_ERROR;
		memcpy(t->u8 + (size_t)t->n * t->img, v->data, t->img);
		if (t->s.objective == OBJECTIVE_SIMCLR) {
			memcpy(t->u8 + ((size_t)t->cap + t->n) * t->img, (const uint8_t *)v->data + t->img, t->img);
		} else {
			if (rec.label < 0 || rec.label >= t->cfg.num_classes) {
				snprintf(err, errlen, "%s: record %lld (id %lld): label %lld; supervised training needs labels in [0, %d) "
				         "(ssl-decode --labels keeps the labelled records)",
				         stream_reader_name(t->in), (long long)stream_reader_count(t->in), (long long)rec.id,
				         (long long)rec.label, t->cfg.num_classes);
				return FILL_ERROR;
			}
			t->labels[t->n] = (int32_t)rec.label;
		}
		t->batch_epoch = t->epoch;
		t->n++;
		if (t->lrpe > 0 && t->lrec + t->n >= t->lrpe) {
			t->batch_ends_epoch = 1;
			break;
		}
	}
	return FILL_BATCH;
}

/* ---------------------------------------------------------------- steps */

/* Data-parallel NT-Xent: gathers every rank's projections z (2n, D) into
 * the global order (views 0 of all samples, then views 1) and computes the
 * loss of the global batch and dz of this rank's rows (ntxent_dist.h). */
static void
ntxent_global(Trainer *t, const float *z, int D, float *loss, float *acc)
{
	int64_t off = 0, N = t->nsum;
	for (int r = 0; r < t->size; r++)
		t->zcounts[r] = 2 * t->counts[r] * D;
	dist_allgatherv_f32(t->d, z, t->zcounts, t->zrank, DIST_EMBED);
	/* rank r's block is [views 0 (n_r rows), views 1 (n_r rows)] */
	for (int r = 0; r < t->size; r++) {
		size_t nr = (size_t)t->counts[r] * D;
		memcpy(t->zall + (size_t)off * D, t->zrank + 2 * (size_t)off * D, sizeof(float) * nr);
		memcpy(t->zall + (size_t)(N + off) * D, t->zrank + 2 * (size_t)off * D + nr, sizeof(float) * nr);
		off += t->counts[r];
	}
	ntxent_dist_forward_backward(t->d, loss, acc, t->dz, t->work, t->zall, (int)N, (int)t->noff, t->n, D,
	                             (float)t->s.temperature);
}

/* One optimizer step on the batch; -1 (message) on a non-finite value,
 * before anything is updated. Data-parallel: t->counts, nsum and noff
 * describe the step's global batch, and every rank calls this together. */
static int
train_step(Trainer *t, char *err, size_t errlen)
{
	ParamTable *pt = model_params(t->m);
	size_t per = t->img;
	float loss = 0, acc = 0, lr;
	int n = t->n;
	lr = lr_at(t->step, t->total, t->warmup, t->lr_base);
	if (t->step + 1 == t->fault_kill_step) {
		if (t->fault_hang) /* stop answering: the others' watchdog ends the job */
			for (;;)
				pause();
		raise(SIGKILL);
	}
	if (t->s.objective == OBJECTIVE_SIMCLR) {
		const float *z;
		int D = model_output_dim(t->m, MODEL_OUT_PROJ);
		input_normalize_u8(t->x, t->u8, n, t->H, t->W, t->C, t->mean, t->std);
		input_normalize_u8(t->x + (size_t)n * per, t->u8 + (size_t)t->cap * per, n, t->H, t->W, t->C, t->mean,
		                   t->std);
		if (t->sbn)
			syncbn_set_batch(t->sbn, 2 * n, 2 * t->nsum);
		z = model_forward_train(t->m, t->x, 2 * n);
		if (t->d && t->size > 1)
			ntxent_global(t, z, D, &loss, &acc);
		else
			ntxent_forward_backward(&loss, &acc, t->dz, t->work, z, n, D, (float)t->s.temperature);
		if (!isfinite(loss))
			goto nonfinite_loss;
		model_zero_grad(t->m);
		model_backward(t->m, t->dz);
	} else {
		const float *logits;
		int K = t->cfg.num_classes, count;
		input_normalize_u8(t->x, t->u8, n, t->H, t->W, t->C, t->mean, t->std);
		if (t->sbn)
			syncbn_set_batch(t->sbn, n, t->nsum);
		logits = model_forward_train_classify(t->m, t->x, n);
		count = cross_entropy_forward_backward(&loss, &acc, t->dz, logits, t->labels, n, K);
		if (t->d && t->size > 1) { /* the mean over the global batch */
			double v[3] = { (double)loss * count, (double)acc * count, count };
			dist_allreduce_sum_f64(t->d, v, 3, DIST_EMBED);
			loss = v[2] > 0 ? (float)(v[0] / v[2]) : 0.0f;
			acc = v[2] > 0 ? (float)(v[1] / v[2]) : 0.0f;
			for (size_t i = 0; v[2] > 0 && i < (size_t)n * K; i++)
				t->dz[i] = (float)(t->dz[i] * (count / v[2]));
		}
		if (!isfinite(loss))
			goto nonfinite_loss;
		model_zero_grad(t->m);
		model_backward_classify(t->m, t->dz);
	}
	if (t->d && t->size > 1) /* every rank's part of the gradient: the global batch's */
		dist_allreduce_sum_f32(t->d, pt->grads, pt->nparams, DIST_GRADS);
	if (t->step + 1 == t->fault_signal_step)
		raise(SIGTERM); /* as if it arrived mid-step: the step still finishes */
	if (!all_finite(pt->grads, pt->nparams)) {
		for (int i = 0; i < pt->n; i++)
			if (pt->e[i].grad && !all_finite(pt->e[i].grad, (size_t)pt->e[i].numel)) {
				snprintf(err, errlen, "step %lld (epoch %lld): non-finite gradient in '%s' (loss %g, lr %g); "
				         "lower --lr or add warm-up",
				         (long long)t->step + 1, (long long)t->batch_epoch, pt->e[i].name, loss, lr);
				break;
			}
		return -1;
	}
	optim_step(t->o, lr);
	if (!all_finite(pt->params, pt->nparams)) {
		for (int i = 0; i < pt->n; i++)
			if (pt->e[i].grad && !all_finite(pt->e[i].data, (size_t)pt->e[i].numel)) {
				snprintf(err, errlen, "step %lld (epoch %lld): the update made '%s' non-finite (lr %g): training "
				         "diverged; lower --lr or add warm-up",
				         (long long)t->step + 1, (long long)t->batch_epoch, pt->e[i].name, lr);
				break;
			}
		return -1;
	}
	t->step++;
	t->last_loss = loss;
	t->last_acc = acc;
	t->last_lr = lr;
	t->images += (t->d ? t->nsum : n) * (t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1);
	t->row_images += (t->d ? t->nsum : n) * (t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1);
	return 0;
nonfinite_loss:
	snprintf(err, errlen, "step %lld (epoch %lld): the loss is %g (lr %g): training diverged; lower --lr or add warm-up",
	         (long long)t->step + 1, (long long)t->batch_epoch, loss, lr);
	return -1;
}

static void
show_progress(Trainer *t, int final)
{
	char extra[192];
	double el = now_seconds() - t->t_start;
	snprintf(extra, sizeof extra, "epoch %lld step %lld/%lld loss %.4f lr %.4g %.0f img/s", (long long)t->batch_epoch,
	         (long long)t->step, (long long)t->total, t->last_loss, t->last_lr, el > 0 ? t->images / el : 0.0);
	if (final)
		progress_finish(&t->prog, t->step - t->step_start, extra);
	else
		progress_update(&t->prog, t->step - t->step_start, extra);
}

static void
queue_row(Trainer *t)
{
	double now = now_seconds(), dt = now - t->row_t0;
	t->row = (LogRow){ .step = t->step,
		           .epoch = t->batch_epoch,
		           .loss = t->last_loss,
		           .lr = t->last_lr,
		           .images_per_s = dt > 0 ? t->row_images / dt : 0,
		           .acc = t->last_acc,
		           .monitor = -1 };
	t->row_pending = t->s.log_every > 0 && t->step % t->s.log_every == 0;
	t->row_t0 = now;
	t->row_images = 0;
}

/* The epoch that the last batch belonged to is complete. */
static int
end_epoch(Trainer *t, char *err, size_t errlen)
{
	int64_t done_epoch = t->epoch;
	if (t->mon_n > 0 && t->step > 0) {
		double t0 = now_seconds();
		t->mon_last = monitor_eval(t);
		t->row.monitor = t->mon_last;
		t->row_pending = 1;
		t->row_t0 += now_seconds() - t0; /* the monitor's time is not training time */
		note("epoch %lld: kNN monitor top-1 %.2f%% (%lld queries)", (long long)done_epoch, 100 * t->mon_last,
		     (long long)t->mon_nq);
	} else if (t->step > 0) {
		t->row_pending = 1; /* every epoch end gets a row */
	}
	log_flush_row(t);
	t->epoch++;
	t->epoch_records = 0;
	t->lrec = 0;
	t->local_epoch_done = 0;
	t->epoch_started = 0;
	if (t->s.ckpt_every_epochs > 0 && (t->epoch - t->first_epoch) % t->s.ckpt_every_epochs == 0
	    && t->step < t->total && t->ckpt_step != t->step)
		return save(t, err, errlen);
	return 0;
}

enum { RUN_DONE, RUN_INTERRUPTED, RUN_TRUNCATED, RUN_DIVERGED, RUN_FAILED };

/* One process: batches until the schedule or the input ends. werr: the
 * input's error (RUN_TRUNCATED); err: anything else. */
static int
run_single(Trainer *t, char *werr, size_t wlen, char *err, size_t errlen)
{
	int status;
	while (t->step < t->total || (t->total == 0 && !t->have_norm)) {
		if (*t->s.stop)
			return RUN_INTERRUPTED;
		status = fill_batch(t, werr, wlen);
		if (status == FILL_ERROR)
			return *t->s.stop ? RUN_INTERRUPTED : RUN_TRUNCATED;
		if (*t->s.stop)
			return RUN_INTERRUPTED; /* the batch read while the signal came is not trained on */
		if (status == FILL_EPOCH_END) {
			if (end_epoch(t, err, errlen) < 0)
				return RUN_FAILED;
			continue;
		}
		if (t->n == 0) {
			/* the input ended */
			if (t->batch_ends_epoch && end_epoch(t, err, errlen) < 0)
				return RUN_FAILED;
			break;
		}
		if (!t->have_norm)
			norm_from_batch(t);
		if (t->total == 0)
			break;
		log_flush_row(t);
		if (train_step(t, err, errlen) < 0)
			return RUN_DIVERGED;
		t->epoch_records += t->n;
		t->lrec += t->n;
		queue_row(t);
		show_progress(t, 0);
		if (t->batch_ends_epoch && end_epoch(t, err, errlen) < 0)
			return RUN_FAILED;
		if (t->s.ckpt_every_steps > 0 && t->step % t->s.ckpt_every_steps == 0 && t->step < t->total
		    && t->ckpt_step != t->step && save(t, err, errlen) < 0)
			return RUN_FAILED;
		if (status == FILL_EOF)
			break;
	}
	return RUN_DONE;
}

/* Data-parallel: the same loop in lockstep. Before every step each rank
 * fills its part of the batch (B / size records: rank r's shard holds
 * positions r, r + size, ... of each epoch, so the parts of step k are the
 * records k*B .. k*B + B - 1 of the epoch, the batch one process would
 * take) and all ranks exchange what they have (CtlMsg). From that every
 * rank takes the same decision: stop (a signal on any rank), fail (an
 * input failed), end the epoch (every rank at its end), or step. A rank
 * whose part of the epoch ended first waits (its fill returns no records)
 * until the others' ends. The last batch of an epoch with fewer records
 * than ranks leaves some ranks without any: it is not trained on (and the
 * schedule does not count it: steps_per_epoch). */
static int
run_dist(Trainer *t, char *werr, size_t wlen, char *err, size_t errlen)
{
	CtlMsg *all = t->ctl;
	while (t->step < t->total || (t->total == 0 && !t->have_norm)) {
		CtlMsg me;
		int status, stop = 0, bad = -1, odd = -1, alleof = 1, allend = 1, anyend = 0, nmin = INT32_MAX;
		int64_t nsum = 0, noff = 0;
		status = *t->s.stop ? FILL_EPOCH_END : fill_batch(t, werr, wlen);
		if (*t->s.stop)
			t->n = 0; /* a batch read while the signal came is not trained on */
		me = (CtlMsg){ t->n, status, t->batch_ends_epoch, *t->s.stop != 0, t->n > 0 ? t->batch_epoch : t->epoch };
		dist_allgather(t->d, &me, sizeof me, all, DIST_CONTROL);
		for (int r = 0; r < t->size; r++) {
			const CtlMsg *c = &all[r];
			stop |= c->stop;
			if (c->status == FILL_ERROR && bad < 0)
				bad = r;
			if (c->epoch != all[0].epoch && odd < 0)
				odd = r;
			nsum += c->n;
			if (r < t->rank)
				noff += c->n;
			nmin = c->n < nmin ? c->n : nmin;
			alleof &= c->status == FILL_EOF && c->n == 0;
			anyend |= c->ends;
			/* at the end of its part of the epoch: nothing left, or its batch ends it */
			allend &= c->n == 0 ? c->status != FILL_BATCH : c->ends;
		}
		if (stop)
			return RUN_INTERRUPTED;
		if (bad >= 0) {
			if (status != FILL_ERROR)
				snprintf(werr, wlen, "%s", "");
			if (status != FILL_ERROR && t->rank == 0)
				snprintf(werr, wlen, "the input of rank %d failed (its message says why)", bad);
			return RUN_TRUNCATED;
		}
		if (odd >= 0) {
			snprintf(err, errlen, "%s", "");
			if (t->rank == 0)
				snprintf(err, errlen, "the ranks are out of step: rank %d is in epoch %lld, rank 0 in epoch %lld "
				         "(each rank must read its shard of one input: ssl-decode --shard RANK/SIZE, the same options)",
				         odd, (long long)all[odd].epoch, (long long)all[0].epoch);
			return RUN_FAILED;
		}
		if (nsum > 0 && !t->have_norm)
			norm_from_batch(t);
		if (t->total == 0 && t->have_norm)
			break;
		if (nsum == 0) {
			if (alleof) { /* the input ended */
				if (anyend && end_epoch(t, err, errlen) < 0)
					return RUN_FAILED;
				break;
			}
			if (end_epoch(t, err, errlen) < 0) /* every rank is at the end of the epoch */
				return RUN_FAILED;
			continue;
		}
		if (!allend && nmin == 0) {
			snprintf(err, errlen, "%s", "");
			if (t->rank == 0)
				snprintf(err, errlen, "the ranks are out of step in epoch %lld: some have no records left while "
				         "others have a batch that does not end the epoch (are the inputs shards of one "
				         "ssl-decode command, --shard RANK/SIZE?)", (long long)all[0].epoch);
			return RUN_FAILED;
		}
		if (nmin == 0) { /* the last few records of the epoch, fewer than ranks: not trained on */
			t->lrec += t->n;
			t->epoch_records += nsum;
			t->dropped += nsum;
			if (end_epoch(t, err, errlen) < 0)
				return RUN_FAILED;
			continue;
		}
		for (int r = 0; r < t->size; r++)
			t->counts[r] = all[r].n;
		t->nsum = nsum;
		t->noff = noff;
		log_flush_row(t);
		if (train_step(t, err, errlen) < 0)
			return RUN_DIVERGED;
		t->epoch_records += nsum;
		t->lrec += t->n;
		queue_row(t);
		show_progress(t, 0);
		if (allend) {
			if (end_epoch(t, err, errlen) < 0)
				return RUN_FAILED;
		} else if (t->batch_ends_epoch) {
			t->local_epoch_done = 1;
		}
		if (t->s.ckpt_every_steps > 0 && t->step % t->s.ckpt_every_steps == 0 && t->step < t->total
		    && t->ckpt_step != t->step && save(t, err, errlen) < 0)
			return RUN_FAILED;
	}
	return RUN_DONE;
}

/* Rank 0: what the ranks exchanged per step, by kind (dist.h). */
static void
comm_report(const Trainer *t)
{
	int64_t steps = t->step - t->step_start;
	char buf[512];
	size_t u = 0;
	if (steps <= 0 || t->rank != 0)
		return;
	for (int k = 0; k < DIST_NTAGS && u < sizeof buf; k++) {
		const DistStats *st = dist_stats(t->d, (DistTag)k);
		if (k == DIST_SETUP || st->calls == 0)
			continue;
		u += (size_t)snprintf(buf + u, sizeof buf - u, "%s%s %.4g MB in %.3g ms (%.3g calls)", u ? ", " : "",
		                      dist_tag_name((DistTag)k), st->bytes / steps / 1e6, 1e3 * st->seconds / steps,
		                      (double)st->calls / steps);
	}
	note("%d ranks; communication per step: %s", t->size, buf);
}

TrainStatus
trainer_run(Trainer *t, char *err, size_t errlen)
{
	char werr[512] = "";
	t->t_start = t->row_t0 = now_seconds();
	t->step_start = t->step;
	progress_init(&t->prog, "train", "steps", t->total - t->step, t->s.progress, t->s.quiet);
	{
		char per[64] = "";
		const OptimConfig *oc = t->s.resume ? &t->s.resume->optim : &t->s.optim;
		if (t->spe > 0 && t->epochs > 0)
			snprintf(per, sizeof per, " (%lld per epoch x %lld epochs)", (long long)t->spe, (long long)t->epochs);
		note("%s %s width %d, %dx%dx%d, %.3fM parameters; %lld steps of %d %s%s; %s lr %.4g, warm-up %lld steps",
		     model_arch_name(t->cfg.arch), model_stem_name(t->cfg.stem), t->cfg.width, t->H, t->W, t->C,
		     params_count(model_params(t->m)) / 1e6, (long long)t->total, t->B,
		     t->s.objective == OBJECTIVE_SIMCLR ? "pairs" : "images", per, optim_kind_name(oc->kind), t->lr_base,
		     (long long)t->warmup);
	}
	if (t->s.resume)
		note("resuming at step %lld of %lld (epoch %lld, %lld records of it already trained on)",
		     (long long)t->step, (long long)t->total, (long long)t->epoch, (long long)t->epoch_records);
	switch (t->d ? run_dist(t, werr, sizeof werr, err, errlen) : run_single(t, werr, sizeof werr, err, errlen)) {
	case RUN_FAILED: return TRAIN_FAILED;
	case RUN_DIVERGED:
		log_flush_row(t);
		progress_finish(&t->prog, t->step - t->step_start, NULL);
		return TRAIN_DIVERGED;
	case RUN_INTERRUPTED: goto interrupted;
	case RUN_TRUNCATED: goto truncated;
	default: break;
	}
	/* The last step always gets a row. */
	if (t->step > t->step_start && t->row.step == t->step && t->row_logged != t->step)
		t->row_pending = 1;
	log_flush_row(t);
	show_progress(t, 1);
	if (t->dropped > 0)
		note("not trained on: %lld record%s at epoch ends, where the last batch had fewer records than the %d "
		     "ranks (a batch that divides the records per epoch, or leaves at least as many as ranks, avoids "
		     "this)", (long long)t->dropped, t->dropped == 1 ? "" : "s", t->size);
	if (t->d)
		comm_report(t);
	if (t->step < t->total && t->rank == 0)
		warn("the input ended after step %lld of %lld; the schedule did not finish (the checkpoint can be resumed)",
		     (long long)t->step, (long long)t->total);
	else if (!t->eof && t->total > 0) {
		Record rec;
		int more = t->has_pending ? 1 : stream_reader_next(t->in, &rec);
		if (more > 0)
			note("the schedule ended after %lld steps; the rest of the input is not used", (long long)t->total);
	}
	if (save(t, err, errlen) < 0)
		return TRAIN_FAILED;
	return TRAIN_DONE;
interrupted:
	log_flush_row(t);
	progress_finish(&t->prog, t->step - t->step_start, NULL);
	if (!t->have_norm || (t->s.resume && t->step == t->step_start)) {
		snprintf(err, errlen, "interrupted before the first step; %s", t->s.resume ? "the checkpoint is unchanged" : "nothing written");
		return TRAIN_INTERRUPTED;
	}
	if (save(t, err, errlen) < 0)
		return TRAIN_FAILED;
	snprintf(err, errlen, "interrupted after step %lld of %lld (epoch %lld); checkpoint written to %s",
	         (long long)t->step, (long long)t->total, (long long)t->epoch, t->s.out_path);
	return TRAIN_INTERRUPTED;
truncated:
	log_flush_row(t);
	progress_finish(&t->prog, t->step - t->step_start, NULL);
	if (t->s.resume && t->step == t->step_start) {
		if (werr[0])
			snprintf(err, errlen, "%s; no step trained, %s is unchanged", werr, t->s.out_path);
		else
			err[0] = '\0';
		return TRAIN_FAILED;
	}
	if (!t->have_norm || save(t, err, errlen) < 0) {
		char e2[1600];
		snprintf(e2, sizeof e2, "%s; no checkpoint written%s%s", werr, t->have_norm ? ": " : "",
		         t->have_norm ? err : "");
		snprintf(err, errlen, "%s", e2);
		return TRAIN_FAILED;
	}
	if (werr[0])
		snprintf(err, errlen, "%s; checkpoint after step %lld written to %s", werr, (long long)t->step,
		         t->s.out_path);
	else
		err[0] = '\0'; /* data-parallel: rank 0 and the rank that failed say it */
	return TRAIN_TRUNCATED;
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

/* ----------------------------------------------------- untrained model */

int
trainer_write_untrained(const TrainSetup *s, char *err, size_t errlen)
{
	Checkpoint meta;
	ModelConfig c = s->model;
	float mean[16], std[16];
	char why[256];
	Model *m;
	int rc;
	if (c.in_channels < 1 || c.in_channels > 16) {
		snprintf(err, errlen, "--input-size: %d channels (1 to 16)", c.in_channels);
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
	if (s->init_from && init_from_file(s->init_from, m, s->quiet, err, errlen) < 0) {
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

/* ------------------------------------------------------ resume command */

static int
shell_safe(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%", *s))
			return 0;
	return 1;
}

static void
append(char *buf, size_t len, size_t *used, const char *s)
{
	if (*used < len)
		*used += (size_t)snprintf(buf + *used, len - *used, "%s", s);
}

static void
append_arg(char *buf, size_t len, size_t *used, const char *a)
{
	append(buf, len, used, " ");
	if (shell_safe(a)) {
		append(buf, len, used, a);
		return;
	}
	append(buf, len, used, "'");
	for (const char *p = a; *p; p++) {
		char c[2] = { *p, 0 };
		append(buf, len, used, *p == '\'' ? "'\\''" : c);
	}
	append(buf, len, used, "'");
}

/* Does argument i (of n) name `opt` ("--opt X" or "--opt=X")? Returns how
 * many arguments it takes (1 or 2), 0 when it is something else. */
static int
is_opt(char *const *a, int i, int n, const char *opt)
{
	size_t l = strlen(opt);
	if (strncmp(a[i], opt, l) != 0)
		return 0;
	if (a[i][l] == '=')
		return 1;
	if (a[i][l] == '\0')
		return i + 1 < n ? 2 : 1;
	return 0;
}

/* prog: the trainer's name; shard_env: each rank's ssl-decode takes its
 * shard from Open MPI's environment (any --shard it had is dropped). */
static char *
resume_command(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
               char *const *argv, const char *model, int64_t epoch, const char *prog, int shard_env)
{
	size_t used = 0;
	char num[32];
	buf[0] = '\0';
	if (from_stdin) {
		int found = 0;
		for (int i = 0; i < nprov; i++) {
			const Provenance *p = &prov[i];
			int decode = strcmp(p->tool, "ssl-decode") == 0;
			append(buf, len, &used, p->tool);
			for (int j = 0; j < p->nargs; j++) {
				int k = decode ? is_opt(p->args, j, p->nargs, "--start-epoch") : 0;
				if (!k && decode && shard_env)
					k = is_opt(p->args, j, p->nargs, "--shard");
				if (k) {
					j += k - 1;
					continue;
				}
				append_arg(buf, len, &used, p->args[j]);
			}
			if (decode) {
				snprintf(num, sizeof num, "%lld", (long long)epoch);
				if (shard_env)
					append(buf, len, &used, " --shard $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE");
				append(buf, len, &used, " --start-epoch ");
				append(buf, len, &used, num);
				found = 1;
			}
			append(buf, len, &used, " | ");
		}
		if (!found) {
			/* No ssl-decode upstream: say what it must do. */
			used = 0;
			buf[0] = '\0';
			snprintf(num, sizeof num, "%lld", (long long)epoch);
			append(buf, len, &used, "<the same input, from epoch ");
			append(buf, len, &used, num);
			append(buf, len, &used, " (or from the start)> | ");
		}
	}
	append(buf, len, &used, prog);
	for (int i = 1; i < argc; i++) {
		int k = is_opt(argv, i, argc, "--resume");
		if (!k)
			k = is_opt(argv, i, argc, "--init");
		if (!k) /* the checkpoint has the weights; --resume refuses --init-from */
			k = is_opt(argv, i, argc, "--init-from");
		if (k) {
			i += k - 1;
			continue;
		}
		append_arg(buf, len, &used, argv[i]);
	}
	append(buf, len, &used, " --resume");
	append_arg(buf, len, &used, model);
	return buf;
}

char *
trainer_resume_command(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
                       char *const *argv, const char *model, int64_t epoch)
{
	return resume_command(buf, len, prov, nprov, from_stdin, argc, argv, model, epoch, "ssl-train", 0);
}

char *
trainer_resume_command_mpi(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
                           char *const *argv, const char *model, int64_t epoch, int ranks)
{
	char *inner = xmalloc(len), num[32];
	size_t used = 0;
	resume_command(inner, len, prov, nprov, from_stdin, argc, argv, model, epoch, "ssl-train-mpi", 1);
	buf[0] = '\0';
	snprintf(num, sizeof num, "%d", ranks);
	append(buf, len, &used, "mpirun -np ");
	append(buf, len, &used, num);
	append(buf, len, &used, " sh -c");
	append_arg(buf, len, &used, inner);
	free(inner);
	return buf;
}
