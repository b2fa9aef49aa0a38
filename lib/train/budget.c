/* --budget: train for a wall time. The first BUDGET_PROBE_STEPS steps run
 * on a schedule whose end is out of sight (the learning rate stays at its
 * warm-up or peak value, as in the reference's probe), steps
 * BUDGET_WARM_STEPS.. of them are timed (their checkpoints and monitor
 * included), and then the warm-up and cosine are laid over the steps that
 * fit. A checkpoint written before that records the estimate of its
 * moment, so that a resume keeps a plan. */
#include "train/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"

#define BUDGET_WARM_STEPS  3
#define BUDGET_PROBE_STEPS 25

static void
fmt_seconds(char *buf, size_t len, double s)
{
	long v = (long)(s + 0.5);
	if (v >= 3600)
		snprintf(buf, len, "%ldh%02ldm%02lds", v / 3600, (v / 60) % 60, v % 60);
	else if (v >= 60)
		snprintf(buf, len, "%ldm%02lds", v / 60, v % 60);
	else
		snprintf(buf, len, "%lds", v);
}

/* The steps the run can take in all, from the steps timed so far: what is
 * left of the budget, less the monitor's verdict, a final checkpoint and 1%
 * held back, over the time a step takes with its share of the epoch-end
 * monitor and checkpoints. Capped by the input's epochs when the header
 * gives them. */
int64_t
budget_steps(const Trainer *t)
{
	double now = now_seconds(), per, left, extra = 0;
	int64_t timed = t->step - t->probe_step0, total;
	if (timed > 0 && t->probe_t0 > 0)
		per = (now - t->probe_t0) / (double)timed;
	else
		per = (now - t->t_begin) / (double)(t->step > t->step_start ? t->step - t->step_start : 1);
	if (t->spe > 0 && timed < t->spe) /* epoch ends the timed steps did not see */
		extra = (t->mon_eval_s + (t->s.ckpt_every_epochs > 0 ? t->save_s / t->s.ckpt_every_epochs : 0)) /
		        (double)t->spe;
	left = t->s.budget_s - (now - t->t_begin) - t->mon_eval_s - t->save_s - 0.01 * t->s.budget_s;
	total = t->step + (left > 0 ? (int64_t)(left / (per + extra)) : 0);
	if (t->spe > 0 && t->epochs > 0 && total > t->spe * t->epochs)
		total = t->spe * t->epochs;
	return total;
}

/* Fixes the schedule (every rank takes rank 0's plan; collective). */
static void
budget_plan(Trainer *t)
{
	int64_t total = budget_steps(t), *all = xcalloc((size_t)t->size, sizeof *all);
	char used[32], budget[32];
	dist_allgather(t->d, &total, sizeof total, all, DIST_CONTROL);
	total = all[0];
	free(all);
	if (t->spe > 0 && t->epochs > 0 && total == t->spe * t->epochs)
		note("--budget: the input holds %lld epochs (%lld steps), all of which fit; give ssl-decode more "
		     "--epochs to use the whole budget", (long long)t->epochs, (long long)total);
	t->total = total > t->step ? total : t->step;
	if (t->warmup > t->total)
		t->warmup = t->total;
	t->prog.total = t->total - t->step_start;
	t->planning = 0;
	fmt_seconds(budget, sizeof budget, t->s.budget_s);
	fmt_seconds(used, sizeof used, now_seconds() - t->t_begin);
	note("--budget %s: %s used by step %lld; the plan: %lld steps", budget, used, (long long)t->step,
	     (long long)t->total);
	if (t->spe > 0)
		note("--budget: %.1f epochs of %lld steps; warm-up %lld steps, then the cosine to step %lld",
		     (double)t->total / (double)t->spe, (long long)t->spe, (long long)t->warmup, (long long)t->total);
}

void
budget_after_step(Trainer *t)
{
	if (!t->planning)
		return;
	if (t->step - t->step_start == BUDGET_WARM_STEPS) {
		t->probe_t0 = now_seconds();
		t->probe_step0 = t->step;
	} else if (t->step - t->step_start >= BUDGET_PROBE_STEPS) {
		budget_plan(t);
	}
}

/* What the start of the run says about the steps. */
void
budget_describe_steps(const Trainer *t, char *buf, size_t len)
{
	if (t->planning)
		snprintf(buf, len, "as many steps as fit in --budget (planned after %d)", BUDGET_PROBE_STEPS);
	else
		snprintf(buf, len, "%lld steps", (long long)t->total);
}

void
budget_report(const Trainer *t)
{
	char budget[32], took[32];
	if (!(t->s.budget_s > 0) || t->s.resume)
		return;
	fmt_seconds(budget, sizeof budget, t->s.budget_s);
	fmt_seconds(took, sizeof took, now_seconds() - t->t_begin);
	note("--budget %s: training took %s", budget, took);
}
