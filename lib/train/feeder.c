/* The batch feeder: the views stream's header and first record (the input
 * size), then batches of one epoch at a time. Epochs: a batch never
 * straddles two; an epoch ends when its records_per_epoch records were
 * seen (when the header says) or when a record of a later epoch arrives.
 * Resuming: records of epochs before the checkpoint's, and the first
 * epoch_records of its epoch (this rank's share of them), are skipped. */
#include "train/internal.h"

#include <string.h>

#include "base/util.h"

static int
record_views(Trainer *t, const Record *rec, const Tensor **v, char *err, size_t errlen)
{
	char why[256];
	int need = t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1;
	*v = record_tensor(rec, "views", DTYPE_U8, 4, why, sizeof why);
	if (!*v) {
		snprintf(err, errlen, "%s: %s", stream_at_reader(t->in, rec->id).s, why);
		return -1;
	}
	if ((*v)->shape[0] < need) {
		snprintf(err, errlen, "%s: %lld views, %s needs %d", stream_at_reader(t->in, rec->id).s, (long long)(*v)->shape[0],
		         need == 2 ? "SimCLR" : "supervised training", need);
		return -1;
	}
	if (t->H && ((*v)->shape[1] != t->H || (*v)->shape[2] != t->W || (*v)->shape[3] != t->C)) {
		snprintf(err, errlen, "%s: views are %lldx%lldx%lld, expected %dx%dx%d", stream_at_reader(t->in, rec->id).s,
		         (long long)(*v)->shape[1], (long long)(*v)->shape[2], (long long)(*v)->shape[3], t->H, t->W, t->C);
		return -1;
	}
	return 0;
}

/* What one process can check alone: the header, the first record (the
 * input size), the batch. */
int
feeder_setup(Trainer *t, char *err, size_t errlen)
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
	if (t->C > MODEL_MAX_IN_CHANNELS) {
		snprintf(err, errlen, "%s: %d channels; at most %d are supported", stream_reader_name(in), t->C,
		         MODEL_MAX_IN_CHANNELS);
		return -1;
	}
	t->img = (size_t)t->H * t->W * t->C;
	return 0;
}

/* Gathers up to B records of one epoch. FILL_BATCH: t->n records (the
 * batch may end the epoch: t->batch_ends_epoch); FILL_EPOCH_END: a record
 * of a later epoch arrived between batches (it stays pending);
 * FILL_EOF: the trailer was reached (t->n may be > 0: the last batch);
 * FILL_ERROR: message in err. */
int
feeder_fill(Trainer *t, char *err, size_t errlen)
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
				snprintf(err, errlen, "%s: epoch %lld after epoch %lld%s", stream_at_reader(t->in, rec.id).s,
				         (long long)rec.epoch, (long long)t->epoch,
				         t->rpe > 0 ? " (more records in an epoch than the header's records_per_epoch?)" : "");
				return FILL_ERROR;
			}
			t->skipped++; /* resuming from a stream that starts earlier */
			continue;
		}
		if (rec.epoch > t->epoch) {
			if (replaying || t->skip_left > 0) {
				snprintf(err, errlen, "%s: epoch %lld, but the checkpoint needs epoch %lld "
				         "(from its record %lld); restart the input at epoch %lld", stream_at_reader(t->in, rec.id).s,
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
				snprintf(err, errlen, "%s: label %lld; supervised training needs labels in [0, %d) "
				         "(ssl-decode --labels keeps the labelled records)", stream_at_reader(t->in, rec.id).s,
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
