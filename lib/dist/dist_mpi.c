/* dist_mpi: the MPI communicator (see dist.h). Compiled with -DSSL_MPI by
 * mpicc into ssl-train-mpi only (Makefile, ssl-train-mpi block); in the
 * plain build this file is empty, so the library never needs MPI.
 *
 * Errors: MPI_ERRORS_RETURN on MPI_COMM_WORLD, so a failed call comes back
 * here and ends the job with a message naming the rank and the operation
 * (MPI_Abort) instead of Open MPI's default abort without context.
 *
 * The watchdog: a one-shot timer armed around every blocking call. When it
 * fires the call is stuck (a rank hangs, or died without the launcher
 * killing the job); the handler writes the prepared message with write(2)
 * and _exit()s, both async-signal-safe, and the launcher then ends the
 * other ranks (mpirun aborts a job when one process exits non-zero before
 * MPI_Finalize). */
#include "dist/dist.h"

#ifdef SSL_MPI

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define CHUNK (1 << 28) /* elements per MPI call: counts are int */

typedef struct {
	int *displs; /* (size) for allgatherv */
	int *counts;
} MpiImpl;

/* Prepared before every operation, for the handlers (write(2) only). */
static char   watch_msg[512], stop_msg[512];
static size_t watch_len, stop_len;
static volatile sig_atomic_t in_op;

static void
on_alarm(int sig)
{
	(void)sig;
	if (write(STDERR_FILENO, watch_msg, watch_len) < 0) {
		/* nothing more can be done */
	}
	_exit(EXIT_RUNTIME);
}

static size_t
clamp_len(int n, size_t cap)
{
	return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void
watch_begin(Dist *d, const char *op, DistTag tag)
{
	struct itimerval it;
	int n;
	n = snprintf(stop_msg, sizeof stop_msg,
	             "%s: stopped while waiting for the other ranks in the %s of %s: another rank failed, or the job "
	             "was interrupted\n",
	             getprogname_ssl(), op, dist_tag_name(tag));
	stop_len = clamp_len(n, sizeof stop_msg);
	in_op = 1;
	if (!(d->timeout > 0))
		return;
	n = snprintf(watch_msg, sizeof watch_msg,
	             "%s: no answer from the other ranks for %g s in the %s of %s: a rank is stuck or gone; "
	             "ending the job (--timeout)\n",
	             getprogname_ssl(), d->timeout, op, dist_tag_name(tag));
	watch_len = clamp_len(n, sizeof watch_msg);
	memset(&it, 0, sizeof it);
	it.it_value.tv_sec = (time_t)d->timeout;
	it.it_value.tv_usec = (suseconds_t)((d->timeout - floor(d->timeout)) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void
watch_end(Dist *d)
{
	struct itimerval it;
	in_op = 0;
	if (!(d->timeout > 0))
		return;
	memset(&it, 0, sizeof it);
	setitimer(ITIMER_REAL, &it, NULL);
}

static void
check(Dist *d, int rc, const char *op, DistTag tag)
{
	char msg[MPI_MAX_ERROR_STRING];
	int len = 0;
	if (rc == MPI_SUCCESS)
		return;
	watch_end(d);
	if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS)
		snprintf(msg, sizeof msg, "error %d", rc);
	dist_abort(d, EXIT_RUNTIME, "MPI %s of %s failed: %s", op, dist_tag_name(tag), msg);
}

static void
mpi_allreduce_f32(Dist *d, float *buf, size_t n, DistTag tag)
{
	watch_begin(d, "all-reduce", tag);
	for (size_t i = 0; i < n; i += CHUNK) {
		int cnt = (int)(n - i < CHUNK ? n - i : CHUNK);
		check(d, MPI_Allreduce(MPI_IN_PLACE, buf + i, cnt, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD), "all-reduce", tag);
	}
	watch_end(d);
}

static void
mpi_allreduce_f64(Dist *d, double *buf, size_t n, DistTag tag)
{
	watch_begin(d, "all-reduce", tag);
	for (size_t i = 0; i < n; i += CHUNK) {
		int cnt = (int)(n - i < CHUNK ? n - i : CHUNK);
		check(d, MPI_Allreduce(MPI_IN_PLACE, buf + i, cnt, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD), "all-reduce", tag);
	}
	watch_end(d);
}

static void
mpi_allgather(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag)
{
	if (bytes > INT_MAX)
		dist_abort(d, EXIT_RUNTIME, "all-gather of %s: %zu bytes per rank is too large", dist_tag_name(tag), bytes);
	watch_begin(d, "all-gather", tag);
	check(d, MPI_Allgather(send, (int)bytes, MPI_BYTE, recv, (int)bytes, MPI_BYTE, MPI_COMM_WORLD), "all-gather",
	      tag);
	watch_end(d);
}

static void
mpi_allgatherv_f32(Dist *d, const float *send, const int *counts, float *recv, DistTag tag)
{
	MpiImpl *im = d->impl;
	int64_t off = 0;
	for (int r = 0; r < d->size; r++) {
		if (off > INT_MAX)
			dist_abort(d, EXIT_RUNTIME, "all-gather of %s: too many values", dist_tag_name(tag));
		im->displs[r] = (int)off;
		im->counts[r] = counts[r];
		off += counts[r];
	}
	watch_begin(d, "all-gather", tag);
	check(d, MPI_Allgatherv(send, counts[d->rank], MPI_FLOAT, recv, im->counts, im->displs, MPI_FLOAT,
	                        MPI_COMM_WORLD),
	      "all-gather", tag);
	watch_end(d);
}

static void
mpi_bcast(Dist *d, void *buf, size_t bytes, int root, DistTag tag)
{
	watch_begin(d, "broadcast", tag);
	for (size_t i = 0; i < bytes; i += CHUNK) {
		int cnt = (int)(bytes - i < CHUNK ? bytes - i : CHUNK);
		check(d, MPI_Bcast((char *)buf + i, cnt, MPI_BYTE, root, MPI_COMM_WORLD), "broadcast", tag);
	}
	watch_end(d);
}

static void ATTR_NORETURN
mpi_abort(Dist *d, int status)
{
	(void)d;
	MPI_Abort(MPI_COMM_WORLD, status);
	_exit(status); /* MPI_Abort does not return; if it did, still end */
}

static void
mpi_finalize(Dist *d)
{
	MpiImpl *im = d->impl;
	watch_begin(d, "finalize", DIST_SETUP);
	MPI_Finalize();
	watch_end(d);
	free(im->displs);
	free(im->counts);
	free(im);
	d->impl = NULL;
}

static void
mpi_note_signal(Dist *d)
{
	(void)d;
	if (in_op && write(STDERR_FILENO, stop_msg, stop_len) < 0) {
		/* nothing more can be done */
	}
}

static const DistOps mpi_ops = {
	mpi_allreduce_f32, mpi_allreduce_f64, mpi_allgather, mpi_allgatherv_f32,
	mpi_bcast, mpi_abort, mpi_finalize, mpi_note_signal,
};

Dist *
dist_mpi_open(int *argc, char ***argv, double timeout, char *err, size_t errlen)
{
	static Dist d;
	MPI_Comm node;
	MpiImpl *im;
	struct sigaction sa;
	int provided = 0, rc;
	rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
	if (rc != MPI_SUCCESS) {
		snprintf(err, errlen, "MPI_Init failed (error %d)", rc);
		return NULL;
	}
	MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
	memset(&d, 0, sizeof d);
	d.ops = &mpi_ops;
	d.name = "mpi";
	d.timeout = timeout;
	MPI_Comm_rank(MPI_COMM_WORLD, &d.rank);
	MPI_Comm_size(MPI_COMM_WORLD, &d.size);
	d.local_size = 1;
	if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, d.rank, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
		MPI_Comm_size(node, &d.local_size);
		MPI_Comm_free(&node);
	}
	im = xcalloc(1, sizeof *im);
	im->displs = xcalloc((size_t)d.size, sizeof *im->displs);
	im->counts = xcalloc((size_t)d.size, sizeof *im->counts);
	d.impl = im;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	return &d;
}

#endif /* SSL_MPI */
