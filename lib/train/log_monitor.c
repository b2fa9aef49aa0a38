/* The TSV log (one row every --log-every steps and at every epoch end; a
 * resumed run keeps the rows up to its checkpoint) and the kNN monitor (a
 * labelled images stream, even ids the memory bank and odd ids the
 * queries, evaluated with the encoder in eval mode at every epoch end). */
#include "train/internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/atomicfile.h"
#include "base/util.h"
#include "eval/encode.h"
#include "eval/probe.h"

/* Opens --log: a fresh file, or (resuming) the rows up to keep_upto kept. */
int
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
	if (fflush(t->log) == EOF || ferror(t->log)) {
		snprintf(err, errlen, "%s: write error: %s", path, strerror(errno ? errno : EIO));
		fclose(t->log);
		t->log = NULL;
		return -1;
	}
	return 0;
}

/* The row of the step just taken; written when the next step starts or
 * the epoch ends (which may add the monitor's figure). */
void
log_queue_row(Trainer *t)
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

/* Writes the queued row, if it is due. */
void
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
	if ((fflush(t->log) == EOF || ferror(t->log)) && !t->log_errno) {
		/* a full disk: said now, and the run fails at its end (the checkpoint is still written) */
		t->log_errno = errno ? errno : EIO;
		warn("%s: write error: %s; no more log rows", t->s.log_path, strerror(t->log_errno));
		fclose(t->log);
		t->log = NULL;
	}
	t->row_logged = r->step;
}

/* Loads --monitor into memory, the bank first. */
int
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
			snprintf(err, errlen, "--monitor: %s: %s", stream_at_reader(r, rec.id).s,
			         im ? "image size differs from the model input " : why);
			if (im)
				snprintf(err + strlen(err), errlen - strlen(err), "(%lldx%lldx%lld, want %dx%dx%d)",
				         (long long)im->shape[0], (long long)im->shape[1], (long long)im->shape[2], t->H, t->W, t->C);
			goto fail;
		}
		if (rec.label < 0) {
			snprintf(err, errlen, "--monitor: %s: no label (the monitor needs labelled images)",
			         stream_at_reader(r, rec.id).s);
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

/* kNN top-1 of the queries against the bank, features from m's encoder in
 * eval mode (running statistics). */
double
monitor_eval(Trainer *t, Model *m)
{
	int D = model_feature_dim(m), maxb = model_max_batch(m);
	int64_t correct = 0;
	for (int64_t i = 0; i < t->mon_n; i += maxb) {
		int cnt = (int)(t->mon_n - i < maxb ? t->mon_n - i : maxb);
		encode_batch(m, t->x, t->mon_u8 + (size_t)i * t->img, cnt, t->H, t->W, t->C, t->mean, t->std,
		             MODEL_OUT_ENCODER, 1, t->mon_feat + (size_t)i * D);
	}
	knn_scores(t->mon_votes, t->mon_feat, t->mon_y, t->mon_nbank, t->mon_feat + (size_t)t->mon_nbank * D,
	           t->mon_nq, D, t->mon_K, t->s.monitor_k, t->s.monitor_t, NULL);
	for (int64_t q = 0; q < t->mon_nq; q++)
		correct += probe_argmax(t->mon_votes + (size_t)q * t->mon_K, t->mon_K) == t->mon_y[t->mon_nbank + q];
	return (double)correct / (double)t->mon_nq;
}

/* The guard's reference: the monitor on the encoder before training. A
 * fresh run measures its own starting model before step 1; a resumed one
 * builds the random-init encoder of its seed (the one its step 0 had,
 * unless that run started from --init or --init-from). */
void
monitor_baseline(Trainer *t)
{
	double t0 = now_seconds();
	if (t->mon_n == 0 || t->mon_base >= 0)
		return;
	if (t->step == 0) {
		t->mon_base = monitor_eval(t, t->m);
	} else {
		char why[256];
		int maxb = model_max_batch(t->m) < 64 ? model_max_batch(t->m) : 64;
		Model *r = model_new(&t->cfg, maxb, MODEL_INFER, why, sizeof why);
		if (!r) {
			warn("--monitor: no random-init reference (%s)", why);
			t->mon_base = -2;
			return;
		}
		model_init(r, t->s.seed);
		t->mon_base = monitor_eval(t, r);
		model_free(r);
	}
	t->mon_eval_s = now_seconds() - t0;
	t->row_t0 += t->mon_eval_s; /* the monitor's time is not training time */
	note("kNN monitor before training: top-1 %.2f%% (%s)", 100 * t->mon_base,
	     t->step > 0 || !(t->s.init || t->s.init_from) ? "random init" : "the starting encoder");
}

/* A run that ends inside an epoch (--steps, a dropped last tail) is measured
 * once more, before its last log row is written: the row, the plot's monitor
 * panel and the verdict then all end on the final encoder. */
void
monitor_final(Trainer *t)
{
	double t0;
	if (t->mon_n == 0 || t->step == t->step_start || t->mon_last_step == t->step)
		return;
	t0 = now_seconds();
	t->mon_last = monitor_eval(t, t->m);
	t->mon_last_step = t->step;
	if (t->mon_first < 0)
		t->mon_first = t->mon_last;
	if (t->row.step == t->step && t->row_logged != t->step) {
		t->row.monitor = t->mon_last;
		t->row_pending = 1;
		t->row_t0 += now_seconds() - t0;
	}
}

/* Whether training helped, on the monitor: the last value against the
 * encoder before training, with a margin of two standard errors of the
 * difference of two accuracies over the same queries. */
void
monitor_verdict(Trainer *t)
{
	double p, margin;
	if (t->mon_n == 0 || t->step == t->step_start)
		return;
	if (t->mon_base < 0)
		return;
	p = t->mon_base > 0.01 && t->mon_base < 0.99 ? t->mon_base : 0.01;
	margin = 2 * sqrt(2 * p * (1 - p) / (double)t->mon_nq);
	note("kNN monitor: before training %.2f%%, after %s %.2f%%, at the end (step %lld) %.2f%%: %+.2f points",
	     100 * t->mon_base, t->s.resume ? "the first epoch of this resumed run" : "the first epoch",
	     100 * t->mon_first, (long long)t->step, 100 * t->mon_last, 100 * (t->mon_last - t->mon_base));
	if (t->mon_last <= t->mon_base + margin)
		warn("training did not beat the encoder before training on the monitor (%.2f%% vs %.2f%%, within %.2f "
		     "points): likely too few steps for this collection, an augmentation too strong for it (ssl-augment "
		     "--recipe photo or cifar keep more colour), or the learning rate; see ssl-train(1), \"Did training "
		     "help\"", 100 * t->mon_last, 100 * t->mon_base, 100 * margin);
	else if (t->mon_last <= t->mon_first)
		warn("the kNN monitor did not rise after the first epoch (%.2f%%, then %.2f%% at the end): more epochs "
		     "may not help; see ssl-train(1), \"Did training help\"", 100 * t->mon_first, 100 * t->mon_last);
}
