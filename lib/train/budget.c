/* --budget: train for a wall time. The first BUDGET_PROBE_STEPS steps run
 * on a schedule whose end is out of sight (the learning rate stays at its
 * warm-up or peak value, as in the reference's probe), steps
 * BUDGET_WARM_STEPS.. of them are timed (their checkpoints and monitor
 * included), and then the warm-up and cosine are laid over the steps that
 * fit. A checkpoint written before that records the estimate of its
 * moment, so that a resume keeps a plan.
 *
 * A machine can get busier (or quieter) after the plan is made, so the run
 * re-plans at a quarter, half, three quarters and nine tenths of the budget,
 * from the rate of the steps since the previous plan, when that moves the
 * end by more than 1%: the rest of the cosine, from the phase it has
 * reached, is laid over the steps left (LrSchedule), so the rate never steps
 * up when the end moves out. A resumed run keeps the plan its checkpoint
 * recorded and does not re-plan. */
#include "train/internal.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/util.h"

#define BUDGET_WARM_STEPS  3
#define BUDGET_PROBE_STEPS 25

static const double replan_at[] = { 0.25, 0.5, 0.75, 0.9 };
#define NREPLANS ((int)(sizeof replan_at / sizeof replan_at[0]))

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

/* budget_steps on rank 0, for every rank (collective). */
static int64_t
budget_steps_agreed(Trainer *t)
{
	int64_t total = budget_steps(t), *all = xcalloc((size_t)t->size, sizeof *all);
	dist_allgather(t->d, &total, sizeof total, all, DIST_CONTROL);
	total = all[0];
	free(all);
	return total;
}

/* Fixes the schedule (every rank takes rank 0's plan; collective). */
static void
budget_plan(Trainer *t)
{
	int64_t total = budget_steps_agreed(t);
	char used[32], budget[32];
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

/* Due by rank 0's clock, which every rank then follows: asked every
 * REPLAN_POLL steps under MPI (one small message), every step alone. */
#define REPLAN_POLL 8
static void
budget_replan(Trainer *t)
{
	int64_t total, old = t->total;
	int due = 0, *all;
	char used[32];
	if (t->replans >= NREPLANS || (t->size > 1 && t->step % REPLAN_POLL))
		return;
	if (t->rank == 0)
		due = now_seconds() - t->t_begin >= replan_at[t->replans] * t->s.budget_s;
	if (t->size > 1) {
		all = xcalloc((size_t)t->size, sizeof *all);
		dist_allgather(t->d, &due, sizeof due, all, DIST_CONTROL);
		due = all[0];
		free(all);
	}
	if (!due)
		return;
	total = budget_steps_agreed(t);
	if (total <= t->step)
		total = t->step + 1;
	t->replans++;
	t->probe_t0 = now_seconds();
	t->probe_step0 = t->step;
	if (llabs(total - old) * 100 <= old)
		return;
	if (t->step > t->warmup) { /* the rest of the cosine, from where it stands */
		LrSchedule sched = trainer_lr_schedule(t);
		t->relaid_phase = lr_phase(t->step, &sched);
		t->relaid_at = t->step;
	}
	t->total = total;
	if (t->warmup > t->total)
		t->warmup = t->total;
	t->prog.total = t->total - t->step_start;
	fmt_seconds(used, sizeof used, now_seconds() - t->t_begin);
	note("--budget: re-planned at %s, step %lld: %lld steps in all instead of %lld (the steps %s)", used,
	     (long long)t->step, (long long)t->total, (long long)old, t->total < old ? "slowed down" : "sped up");
}

void
budget_after_step(Trainer *t)
{
	if (!t->planning) {
		if (t->s.budget_s > 0 && !t->s.resume && t->step < t->total)
			budget_replan(t);
		return;
	}
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
