/* One training step on the batch the feeder filled: normalise the pixels,
 * forward, loss (NT-Xent on views 0 and 1, or cross-entropy on view 0),
 * backward, the gradients summed over the ranks, a check that the loss and
 * every gradient are finite, and the optimizer's update. Also the
 * normalisation taken from the first batch. */
#include "train/internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/fault.h"
#include "base/util.h"
#include "dist/ntxent_dist.h"
#include "nn/layers.h"
#include "nn/loss.h"

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

/* The mean and standard deviation of each channel over the first batch,
 * every rank's pixels. */
void
step_norm_from_batch(Trainer *t)
{
	int C = t->C, views = t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1;
	enum { M = MODEL_MAX_IN_CHANNELS };
	double sum[M] = { 0 }, sq[M] = { 0 }, all[2 * M + 1]; /* all: sums, squares, count */
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
	/* the first global batch: every rank's pixels */
	for (int c = 0; c < C; c++) {
		all[c] = sum[c];
		all[M + c] = sq[c];
	}
	all[2 * M] = (double)cnt;
	dist_allreduce_sum_f64(t->d, all, 2 * M + 1, DIST_SETUP);
	for (int c = 0; c < C; c++) {
		sum[c] = all[c];
		sq[c] = all[M + c];
	}
	cnt = (int64_t)all[2 * M];
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
int
step_train(Trainer *t, char *err, size_t errlen)
{
	ParamTable *pt = model_params(t->m);
	size_t per = t->img;
	float loss = 0, acc = 0, lr;
	int n = t->n;
	monitor_baseline(t);
	LrSchedule sched = trainer_lr_schedule(t);
	lr = lr_at(t->step, &sched, t->lr_base);
	if (t->mpi)
		fault_rank_in_step(t->rank, t->step + 1);
	if (t->s.objective == OBJECTIVE_SIMCLR) {
		const float *z;
		int D = model_output_dim(t->m, MODEL_OUT_PROJ);
		input_normalize_u8(t->x, t->u8, n, t->H, t->W, t->C, t->mean, t->std);
		input_normalize_u8(t->x + (size_t)n * per, t->u8 + (size_t)t->cap * per, n, t->H, t->W, t->C, t->mean,
		                   t->std);
		if (t->sbn)
			syncbn_set_batch(t->sbn, 2 * n, 2 * t->nsum);
		z = model_forward_train(t->m, t->x, 2 * n);
		if (t->size > 1)
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
		if (t->size > 1) { /* the mean over the global batch */
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
	if (t->size > 1) /* every rank's part of the gradient: the global batch's */
		dist_allreduce_sum_f32(t->d, pt->grads, pt->nparams, DIST_GRADS);
	fault_signal_in_step(t->step + 1); /* as if a signal arrived mid-step: the step still finishes */
	fault_slow_step(t->step + 1);
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
	budget_after_step(t);
	t->last_loss = loss;
	t->last_acc = acc;
	t->last_lr = lr;
	t->images += t->nsum * (t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1);
	t->row_images += t->nsum * (t->s.objective == OBJECTIVE_SIMCLR ? 2 : 1);
	return 0;
nonfinite_loss:
	snprintf(err, errlen, "step %lld (epoch %lld): the loss is %g (lr %g): training diverged; lower --lr or add warm-up",
	         (long long)t->step + 1, (long long)t->batch_epoch, loss, lr);
	return -1;
}
