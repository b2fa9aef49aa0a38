/* Data-parallel start-up (ssl-train-mpi), collective calls: the ranks
 * check together that they run the same command on shards of one input,
 * learn whether all are ready, and start from the same weights. */
#include "train/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* FNV-1a of the settings every rank must share (the same command). */
static uint64_t
settings_fingerprint(const Trainer *t)
{
	const TrainSetup *s = &t->s;
	const ModelConfig *c = &s->model;
	const OptimConfig *o = s->resume ? &s->resume->optim : &s->optim;
	char buf[1024];
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
	return fnv1a(FNV1A_INIT, buf, n < 0 ? 0 : (size_t)n < sizeof buf ? (size_t)n : sizeof buf);
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
int
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
int
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

/* Data-parallel: identical weights, buffers and normalisation on every
 * rank to start with (they are made alike; this makes sure). */
void
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
