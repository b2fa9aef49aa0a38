/* dist: see dist.h. The wrappers count and time every operation; the
 * one-process implementation is here, the MPI one in dist_mpi.c. */
#include "dist/dist.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------- one process */

static void
local_allreduce_f32(Dist *d, float *buf, size_t n, DistTag tag)
{
	(void)d, (void)buf, (void)n, (void)tag;
}

static void
local_allreduce_f64(Dist *d, double *buf, size_t n, DistTag tag)
{
	(void)d, (void)buf, (void)n, (void)tag;
}

static void
local_allgather(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag)
{
	(void)d, (void)tag;
	if (bytes && recv != send)
		memmove(recv, send, bytes);
}

static void
local_allgatherv_f32(Dist *d, const float *send, const int *counts, float *recv, DistTag tag)
{
	(void)d, (void)tag;
	if (counts[0] > 0 && recv != send)
		memmove(recv, send, sizeof(float) * (size_t)counts[0]);
}

static void
local_bcast(Dist *d, void *buf, size_t bytes, int root, DistTag tag)
{
	(void)d, (void)buf, (void)bytes, (void)root, (void)tag;
}

static void ATTR_NORETURN
local_abort(Dist *d, int status)
{
	(void)d;
	exit(status);
}

static void
local_finalize(Dist *d)
{
	(void)d;
}

static const DistOps local_ops = {
	local_allreduce_f32, local_allreduce_f64, local_allgather, local_allgatherv_f32,
	local_bcast, local_abort, local_finalize, NULL,
};

Dist *
dist_local(void)
{
	static Dist d = { .ops = &local_ops, .name = "local", .rank = 0, .size = 1, .local_size = 1 };
	return &d;
}

/* ----------------------------------------------------------- wrappers */

int
dist_rank(const Dist *d)
{
	return d->rank;
}

int
dist_size(const Dist *d)
{
	return d->size;
}

const char *
dist_tag_name(DistTag tag)
{
	static const char *names[DIST_NTAGS] = { "control", "gradients", "embeddings", "BatchNorm statistics",
		                                 "set-up" };
	return tag >= 0 && tag < DIST_NTAGS ? names[tag] : "?";
}

static void
account(Dist *d, DistTag tag, double bytes, double t0)
{
	DistStats *s = &d->stats[tag];
	s->calls++;
	s->bytes += bytes;
	s->seconds += now_seconds() - t0;
}

void
dist_allreduce_sum_f32(Dist *d, float *buf, size_t n, DistTag tag)
{
	double t0 = now_seconds();
	d->ops->allreduce_f32(d, buf, n, tag);
	account(d, tag, (double)n * sizeof(float), t0);
}

void
dist_allreduce_sum_f64(Dist *d, double *buf, size_t n, DistTag tag)
{
	double t0 = now_seconds();
	d->ops->allreduce_f64(d, buf, n, tag);
	account(d, tag, (double)n * sizeof(double), t0);
}

void
dist_allgather(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag)
{
	double t0 = now_seconds();
	d->ops->allgather(d, send, bytes, recv, tag);
	account(d, tag, (double)bytes * d->size, t0);
}

void
dist_allgatherv_f32(Dist *d, const float *send, const int *counts, float *recv, DistTag tag)
{
	double t0 = now_seconds(), total = 0;
	for (int r = 0; r < d->size; r++)
		total += counts[r];
	d->ops->allgatherv_f32(d, send, counts, recv, tag);
	account(d, tag, total * sizeof(float), t0);
}

void
dist_bcast(Dist *d, void *buf, size_t bytes, int root, DistTag tag)
{
	double t0 = now_seconds();
	d->ops->bcast(d, buf, bytes, root, tag);
	account(d, tag, (double)bytes, t0);
}

void
dist_abort(Dist *d, int status, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	warn("%s", buf);
	fflush(stderr);
	d->ops->abort(d, status);
}

void
dist_note_signal(Dist *d)
{
	if (d && d->ops->note_signal)
		d->ops->note_signal(d);
}

void
dist_finalize(Dist *d)
{
	d->ops->finalize(d);
}

const DistStats *
dist_stats(const Dist *d, DistTag tag)
{
	return &d->stats[tag];
}
