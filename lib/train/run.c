/* The run loop: one loop over the communicator, whatever its size (one
 * process is a world of one, dist_local()). Then the end of the run: the
 * last log row, the final checkpoint, and what the run stopped on. */
#include "train/internal.h"

#include <stdio.h>
#include <string.h>

#include "base/util.h"

static void
show_progress(Trainer *t, int final)
{
	char extra[192], of[32] = "";
	double el = now_seconds() - t->t_start;
	if (!t->planning)
		snprintf(of, sizeof of, "/%lld", (long long)t->total);
	snprintf(extra, sizeof extra, "epoch %lld step %lld%s loss %.4f lr %.4g %.0f img/s", (long long)t->batch_epoch,
	         (long long)t->step, of, t->last_loss, t->last_lr, el > 0 ? t->images / el : 0.0);
	if (final)
		progress_finish(&t->prog, t->step - t->step_start, extra);
	else
		progress_update(&t->prog, t->step - t->step_start, extra);
}

/* The epoch that the last batch belonged to is complete. */
static int
end_epoch(Trainer *t, char *err, size_t errlen)
{
	int64_t done_epoch = t->epoch;
	if (t->mon_n > 0 && t->step > 0) {
		double t0 = now_seconds();
		t->mon_last = monitor_eval(t, t->m);
		t->mon_last_step = t->step;
		if (t->mon_first < 0)
			t->mon_first = t->mon_last;
		t->row.monitor = t->mon_last;
		t->row_pending = 1;
		t->mon_eval_s = now_seconds() - t0;
		t->row_t0 += t->mon_eval_s; /* the monitor's time is not training time */
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
		return save_checkpoint(t, err, errlen);
	return 0;
}

enum { RUN_DONE, RUN_INTERRUPTED, RUN_TRUNCATED, RUN_DIVERGED, RUN_FAILED };

/* Batches until the schedule or the input ends; werr: the input's error
 * (RUN_TRUNCATED), err: anything else. One process is a world of one; with
 * ranks, all run the loop in lockstep. Before every step each rank
 * fills its part of the batch (B / size records of its shard, a fixed part
 * of the input of one length in every rank (ssl-decode(1) SHARDS), so the
 * parts of step k are the records k*B .. k*B + B - 1 of the shards
 * interleaved, the batch one process reading them so would take) and all
 * ranks exchange what they have (CtlMsg). From that every
 * rank takes the same decision: stop (a signal on any rank), fail (an
 * input failed), end the epoch (every rank at its end), or step. A rank
 * whose part of the epoch ended first waits (its fill returns no records)
 * until the others' ends. A short last batch of an epoch is not trained on
 * (tail_dropped: fewer than --min-tail records after full batches, or fewer
 * records than ranks, which would leave some ranks without any), and the
 * schedule does not count it (steps_per_epoch). */
static int
run_loop(Trainer *t, char *werr, size_t wlen, char *err, size_t errlen)
{
	CtlMsg *all = t->ctl;
	while (t->step < t->total || (t->total == 0 && !t->have_norm)) {
		CtlMsg me;
		int status, stop = 0, bad = -1, odd = -1, alleof = 1, alllast = 1, allend = 1, anyend = 0, nmin = INT32_MAX;
		int64_t nsum = 0, noff = 0;
		status = *t->s.stop ? FILL_EPOCH_END : feeder_fill(t, werr, wlen);
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
			alllast &= c->status == FILL_EOF; /* the input ends with this batch */
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
			step_norm_from_batch(t);
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
		if (nmin == 0 || (allend && tail_dropped(t, nsum, t->epoch_records > 0))) { /* see tail_dropped */
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
		if (step_train(t, err, errlen) < 0)
			return RUN_DIVERGED;
		t->epoch_records += nsum;
		t->lrec += t->n;
		log_queue_row(t);
		show_progress(t, 0);
		if (allend) {
			if (end_epoch(t, err, errlen) < 0)
				return RUN_FAILED;
		} else if (t->batch_ends_epoch) {
			t->local_epoch_done = 1;
		}
		if (t->s.ckpt_every_steps > 0 && t->step % t->s.ckpt_every_steps == 0 && t->step < t->total
		    && t->ckpt_step != t->step && save_checkpoint(t, err, errlen) < 0)
			return RUN_FAILED;
		if (alllast)
			break;
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
	progress_init(&t->prog, "train", "steps", t->planning ? -1 : t->total - t->step, t->s.progress, t->s.quiet);
	{
		char per[64] = "", steps[64];
		const OptimConfig *oc = t->s.resume ? &t->s.resume->optim : &t->s.optim;
		if (t->spe > 0 && t->epochs > 0 && !t->planning)
			snprintf(per, sizeof per, " (%lld per epoch x %lld epochs)", (long long)t->spe, (long long)t->epochs);
		budget_describe_steps(t, steps, sizeof steps);
		note("%s %s width %d, %dx%dx%d, %.3fM parameters; %s of %d %s%s; %s lr %.4g, warm-up %lld steps",
		     model_arch_name(t->cfg.arch), model_stem_name(t->cfg.stem), t->cfg.width, t->H, t->W, t->C,
		     params_count(model_params(t->m)) / 1e6, steps, t->B,
		     t->s.objective == OBJECTIVE_SIMCLR ? "pairs" : "images", per, optim_kind_name(oc->kind), t->lr_base,
		     (long long)t->warmup);
	}
	if (t->s.resume)
		note("resuming at step %lld of %lld (epoch %lld, %lld records of it already trained on)",
		     (long long)t->step, (long long)t->total, (long long)t->epoch, (long long)t->epoch_records);
	switch (run_loop(t, werr, sizeof werr, err, errlen)) {
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
	monitor_final(t);
	log_flush_row(t);
	show_progress(t, 1);
	monitor_verdict(t);
	budget_report(t);
	if (t->mpi)
		comm_report(t);
	if (t->step < t->total && t->rank == 0)
		warn("the input ended after step %lld of %lld; the schedule did not finish (the checkpoint can be resumed)",
		     (long long)t->step, (long long)t->total);
	else if (!t->eof && t->total > 0) {
		int64_t left = t->rpe > 0 ? t->rpe - t->epoch_records : -1;
		Record rec;
		int more = 0;
		if (left > 0 && t->epochs > 0 && t->epoch == t->first_epoch + t->epochs - 1 &&
		    tail_dropped(t, left, t->epoch_records > 0)) {
			/* the last epoch's short tail: read to the trailer, so that the
			 * tools upstream end their stream instead of dying of SIGPIPE */
			int64_t k = t->has_pending;
			t->dropped += left;
			t->has_pending = 0;
			while (k <= left && (more = stream_reader_next(t->in, &rec)) > 0)
				k++;
			if (more < 0)
				warn("%s (after the last step; the checkpoint is written)", stream_reader_error(t->in));
			else if (k > left)
				note("the schedule ended after %lld steps; the rest of the input is not used", (long long)t->total);
		} else if ((t->has_pending ? 1 : stream_reader_next(t->in, &rec)) > 0) {
			note("the schedule ended after %lld steps; the rest of the input is not used", (long long)t->total);
		}
	}
	if (t->dropped > 0)
		note("not trained on: %lld record%s at epoch ends, where the last batch had fewer than %d records "
		     "(--min-tail; each epoch shuffles anew, so the records left out differ from epoch to epoch)",
		     (long long)t->dropped, t->dropped == 1 ? "" : "s", t->min_tail > t->size ? t->min_tail : t->size);
	if (save_checkpoint(t, err, errlen) < 0)
		return TRAIN_FAILED;
	if (t->log_errno) {
		snprintf(err, errlen, "%s: write error: %s; the log is incomplete (the checkpoint was written)",
		         t->s.log_path, strerror(t->log_errno));
		return TRAIN_FAILED;
	}
	return TRAIN_DONE;
interrupted:
	log_flush_row(t);
	progress_finish(&t->prog, t->step - t->step_start, NULL);
	if (!t->have_norm || (t->s.resume && t->step == t->step_start)) {
		snprintf(err, errlen, "interrupted before the first step; %s", t->s.resume ? "the checkpoint is unchanged" : "nothing written");
		return TRAIN_INTERRUPTED;
	}
	if (save_checkpoint(t, err, errlen) < 0)
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
	if (!t->have_norm || save_checkpoint(t, err, errlen) < 0) {
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
