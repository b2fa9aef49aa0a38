/* dist: the communicator of a data-parallel run (ssl-train-mpi): this
 * process's rank among `size` processes and the few collective operations
 * the trainer needs. Two implementations behind one interface:
 *
 *   dist_local()     one process, rank 0 of 1: every operation is a copy
 *                    or nothing. Always built.
 *   dist_mpi_open()  MPI_COMM_WORLD (lib/dist/dist_mpi.c), compiled only into
 *                    ssl-train-mpi, which the Makefile builds when mpicc
 *                    is present.
 *
 * Every operation is collective: all ranks call it, in the same order, with
 * matching sizes. A collective cannot fail on one rank and go on, so an
 * error or a timeout ends the whole job (dist_abort) with one line naming
 * the rank and the operation; operations never return an error. Each
 * operation carries a tag (what it moves) for that message and for the
 * per-tag counts of calls, bytes and seconds that ssl-train reports.
 *
 * The watchdog: with a timeout, an operation that has not completed after
 * that many seconds (a rank is stuck, or gone without the launcher
 * noticing) ends the job with a message instead of hanging. */
#ifndef SSL_DIST_H
#define SSL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "base/util.h"

typedef enum {
	DIST_CONTROL,  /* the per-step agreement: batch sizes, epochs, stop, errors */
	DIST_GRADS,    /* the gradient all-reduce */
	DIST_EMBED,    /* projections gathered for NT-Xent, and its row sums */
	DIST_BN,       /* synchronised BatchNorm statistics */
	DIST_SETUP,    /* start-up: options, schedule, weights; checkpoints */
	DIST_NTAGS
} DistTag;

typedef struct {
	int64_t calls;
	double  bytes;   /* payload: the vector reduced, or the bytes a rank receives from a gather */
	double  seconds; /* wall time inside the operation, waiting for the slowest rank included */
} DistStats;

typedef struct Dist Dist;

/* An implementation (dist.c, dist_mpi.c). counts: elements per rank. */
typedef struct {
	void (*allreduce_f32)(Dist *d, float *buf, size_t n, DistTag tag);
	void (*allreduce_f64)(Dist *d, double *buf, size_t n, DistTag tag);
	void (*allgather)(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag);
	void (*allgatherv_f32)(Dist *d, const float *send, const int *counts, float *recv, DistTag tag);
	void (*bcast)(Dist *d, void *buf, size_t bytes, int root, DistTag tag);
	void (*abort)(Dist *d, int status) ATTR_NORETURN;
	void (*finalize)(Dist *d);
	void (*note_signal)(Dist *d); /* NULL: nothing to say */
} DistOps;

struct Dist {
	const DistOps *ops;
	const char    *name;       /* "local", "mpi" */
	int            rank, size;
	int            local_size; /* ranks on this host (for the default thread count) */
	double         timeout;    /* seconds; 0: wait forever */
	DistStats      stats[DIST_NTAGS];
	void          *impl;
};

/* The one-process communicator (a static object). */
Dist *dist_local(void);

int  dist_rank(const Dist *d);
int  dist_size(const Dist *d);
const char *dist_tag_name(DistTag tag); /* "control", "gradients", ... (for messages) */

/* In place: buf = the element-wise sum of every rank's buf. */
void dist_allreduce_sum_f32(Dist *d, float *buf, size_t n, DistTag tag);
void dist_allreduce_sum_f64(Dist *d, double *buf, size_t n, DistTag tag);
/* recv (size * bytes) = every rank's `bytes` bytes, in rank order. */
void dist_allgather(Dist *d, const void *send, size_t bytes, void *recv, DistTag tag);
/* recv = every rank's counts[rank] floats, in rank order (counts known to all). */
void dist_allgatherv_f32(Dist *d, const float *send, const int *counts, float *recv, DistTag tag);
/* Every rank's buf = root's. */
void dist_bcast(Dist *d, void *buf, size_t bytes, int root, DistTag tag);
/* Prints the message (warn: the tool's progname names the rank) and ends
 * every rank of the job with status. */
void dist_abort(Dist *d, int status, const char *fmt, ...) ATTR_PRINTF(3, 4) ATTR_NORETURN;
/* The end of a run that went well (or failed the same way on every rank). */
void dist_finalize(Dist *d);

/* For a signal handler (async-signal-safe): when the signal arrives while
 * this rank waits in a collective operation, writes one line saying so
 * (mpirun ends the other ranks with SIGTERM when one fails). */
void dist_note_signal(Dist *d);

/* Counters since the start (or since the caller's snapshot). */
const DistStats *dist_stats(const Dist *d, DistTag tag);

#ifdef SSL_MPI
/* MPI_Init with thread level FUNNELED (OpenMP threads never call MPI),
 * errors returned rather than fatal, and the watchdog (timeout seconds, 0:
 * none). NULL with a message if MPI cannot start. */
Dist *dist_mpi_open(int *argc, char ***argv, double timeout, char *err, size_t errlen);
#endif

#endif
