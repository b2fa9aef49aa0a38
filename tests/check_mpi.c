/* Tool tests for ssl-train-mpi (data-parallel training) under
 * `mpirun --allow-run-as-root --oversubscribe -np 2` on this machine, each
 * rank reading its shard of a tiny generated folder (12 images of 16x16,
 * two epochs, batch 8: steps of 8 and 4 records) through
 * ssl-decode --shard | ssl-augment:
 *   - 2 ranks with --sync-bn take the same steps as one process with the
 *     whole batch (the two shards' records interleaved, as the ranks take
 *     them step by step): every step from the same state (the start, or one
 *     process's checkpoint resumed on 2 ranks) gives the same update up to
 *     float32 rounding (1e-5 of the update), the same first loss (1e-6),
 *     and the whole run the same schedule and nearly the same losses (a
 *     ReLU input within rounding of 0 may flip after a few steps and the
 *     runs drift apart, as one process does between thread counts);
 *     without --sync-bn the results differ (the test can fail);
 *   - one rank is bitwise one process;
 *   - interrupted (a signal inside step 1 on every rank) and resumed with
 *     the printed mpirun command, a run ends bitwise equal to an
 *     uninterrupted one (each rank skips its part of the trained records);
 *   - a rank that dies ends the job, the last checkpoint stays good; a rank
 *     that stops answering ends the job after --timeout with a message; an
 *     input cut short on one rank stops all after the last whole step, with
 *     a checkpoint and both ranks saying what happened;
 *   - wrong shards, other options on one rank, a batch that the ranks do
 *     not divide: clear errors, no hang;
 *   - an epoch whose last batch has fewer records than ranks, or fewer
 *     than --min-tail (a short tail, as one process drops it): those are
 *     skipped with a note, and the schedule counts without them (inputs of
 *     unequal length: ssl-decode's shards are of one length).
 * Every test is skipped (tu_skip: the suite counts as skipped, not passed)
 * when mpirun or ssl-train-mpi is missing: the build without MPI stays
 * green, and says what it did not test. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "io/stream.h"
#include "imgwrite.h"
#include "nn/model.h"
#include "base/rng.h"
#include "testutil.h"
#include "base/util.h"

#define MPIRUN "mpirun --allow-run-as-root --oversubscribe -np 2"
#define TINY   "--arch resnet18 --width 4 --proj-hidden 16 --proj-dim 8 --batch 8 --lr 0.5 --quiet --seed 4"
#define SHARD  "--shard $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE"
#define DECODE "ssl-decode -q --shuffle --seed 4 --epochs 2"
#define AUGMENT "ssl-augment -q --recipe cifar --size 16 --seed 4"

static int
have_mpi(void)
{
	char path[1024];
	const char *bin = getenv("SSL_BIN");
	snprintf(path, sizeof path, "%s/ssl-train-mpi", bin ? bin : "build/bin");
	if (access(path, X_OK) != 0) {
		tu_skip("no ssl-train-mpi: mpicc was not found at build time (Debian: libopenmpi-dev)");
		return 0;
	}
	if (system("command -v mpirun >/dev/null 2>&1") != 0) {
		tu_skip("no mpirun (Debian: openmpi-bin)");
		return 0;
	}
	return 1;
}

/* 12 distinct random 16x16 pictures in two class folders. */
static void
write_data(const char *dir)
{
	TwMember m[12];
	TwBuf b[12];
	char names[12][32];
	uint8_t px[16 * 16 * 3];
	for (int i = 0; i < 12; i++) {
		Rng r = rng_for(21, 0, (uint64_t)i, 0);
		for (size_t p = 0; p < sizeof px; p++)
			px[p] = (uint8_t)rng_below(&r, 256);
		b[i] = tw_pnm(px, 16, 16, 3, 0);
		snprintf(names[i], sizeof names[i], "%c/%d.ppm", i < 6 ? 'a' : 'b', i % 6);
		m[i] = (TwMember){ names[i], b[i].data, b[i].len };
	}
	tw_folder(dir, m, 12);
	for (int i = 0; i < 12; i++)
		free(b[i].data);
}

/* The 2-rank pipeline with extra trainer args (env: assignments for
 * ssl-train-mpi, the fault injections). */
static void
train_two(TuResult *r, const char *env, const char *args)
{
	tu_run(r, MPIRUN " sh -c '" DECODE " " SHARD " %s | " AUGMENT " | %s ssl-train-mpi " TINY " %s'", tu_path("data"),
	       env ? env : "", args);
}

static void
train_two_ok(const char *args)
{
	TuResult r;
	train_two(&r, NULL, args);
	ck_assert_msg(r.status == 0, "2 ranks exited %d:\n%s", r.status, r.err);
	tu_result_free(&r);
}

/* The trainable values (and, with want_buffers, the running statistics)
 * of a checkpoint, concatenated in table order. */
static float *
load_params(const char *path, size_t *n, Checkpoint *keep)
{
	Checkpoint ck;
	char err[512];
	Model *m;
	float *v;
	checkpoint_init(&ck);
	ck_assert_msg(checkpoint_load(&ck, path, err, sizeof err) == 0, "%s", err);
	m = model_new(&ck.config, 1, MODEL_INFER, err, sizeof err);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(checkpoint_restore_model(&ck, m, 0, err, sizeof err) == 0, "%s", err);
	*n = model_params(m)->nparams;
	v = xmalloc(sizeof(float) * *n);
	memcpy(v, model_params(m)->params, sizeof(float) * *n);
	model_free(m);
	if (keep)
		*keep = ck;
	else
		checkpoint_free(&ck);
	return v;
}

/* |a - b| / |b - base| (base NULL: / |b|), Euclidean norms. */
static double
rel_dist(const float *a, const float *b, const float *base, size_t n)
{
	double d = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double u = (double)b[i] - (base ? base[i] : 0);
		d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
		s += u * u;
	}
	return sqrt(d / (s > 0 ? s : 1e-300));
}

/* The loss column of a log; returns the rows. */
static int
read_losses(const char *path, double *loss, int max)
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	ck_assert_msg(f != NULL, "no log %s", path);
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	while (n < max && fgets(line, sizeof line, f)) {
		long long step, epoch;
		ck_assert_int_eq(sscanf(line, "%lld\t%lld\t%lf", &step, &epoch, &loss[n]), 3);
		ck_assert_int_eq(step, n + 1);
		n++;
	}
	fclose(f);
	return n;
}

/* What two ranks read, as one stream: shard 0's record k, then shard 1's
 * record k, the order in which the ranks' parts make each global batch.
 * Returns the records per epoch of one shard. */
static int64_t
write_interleaved(const char *out)
{
	StreamReader *in[2];
	StreamHeader h;
	StreamWriter *w;
	Record rec;
	FILE *fp;
	int64_t per;
	int more[2] = { 1, 1 };
	for (int i = 0; i < 2; i++) {
		char name[32], cmd[2048];
		TuResult r;
		snprintf(name, sizeof name, "shard%d.ssl", i);
		snprintf(cmd, sizeof cmd, DECODE " --shard %d/2 %s > %s", i, tu_path("data"), tu_path(name));
		tu_run_ok(&r, cmd);
		tu_result_free(&r);
		in[i] = stream_reader_open_path(tu_path(name));
		ck_assert_ptr_nonnull(stream_reader_header(in[i]));
	}
	per = stream_reader_header(in[0])->records_per_epoch;
	ck_assert_int_eq(stream_reader_header(in[1])->records_per_epoch, per);
	stream_header_init(&h, STREAM_KIND_IMAGES);
	stream_header_set_classes(&h, stream_reader_header(in[0])->nclasses, stream_reader_header(in[0])->classes);
	h.records_per_epoch = 2 * per;
	h.epochs = stream_reader_header(in[0])->epochs;
	ck_assert_ptr_nonnull(fp = fopen(out, "wb"));
	ck_assert_ptr_nonnull(w = stream_writer_open(fp, out, &h));
	while (more[0] || more[1])
		for (int i = 0; i < 2; i++)
			if (more[i] && (more[i] = stream_reader_next(in[i], &rec)) == 1)
				ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	ck_assert_int_eq(stream_writer_close(w), 0);
	ck_assert_int_eq(fclose(fp), 0);
	for (int i = 0; i < 2; i++)
		stream_reader_close(in[i]);
	stream_header_free(&h);
	return per;
}

/* One process's run on the interleaved shards (write_interleaved), stopped
 * after step `stop` (0: the whole run). */
static void
train_one_until(int stop, const char *args)
{
	TuResult r;
	char cmd[2048];
	snprintf(cmd, sizeof cmd, "cat %s | " AUGMENT " | SSL_FAULT_SIGNAL_AT_STEP=%d ssl-train " TINY " %s",
	         tu_path("one.ssl"), stop, args);
	tu_run(&r, "%s", cmd);
	ck_assert_msg(r.status == (stop ? 143 : 0), "'%s' exited %d:\n%s", cmd, r.status, r.err);
	tu_result_free(&r);
}

/* |update of b - update of a| / |update of a| from the same start: float
 * rounding of one step. */
static void
assert_same_step(const char *start, const char *one, const char *two, int step)
{
	size_t n, n1, n2;
	float *w0 = load_params(start, &n, NULL), *ws = load_params(one, &n1, NULL), *wd = load_params(two, &n2, NULL);
	double e;
	ck_assert(n == n1 && n == n2);
	e = rel_dist(wd, ws, w0, n);
	ck_assert_msg(e < 1e-5, "step %d on 2 ranks: its update differs from one process's by %g of its size", step, e);
	free(w0);
	free(ws);
	free(wd);
}

START_TEST(test_same_as_one_process)
{
	TuResult r;
	double ls[8], ld[8], ln[8];
	size_t n, n2;
	float *w0, *ws, *wd;
	char args[1024], env[64];
	Checkpoint ck;
	int64_t per;
	if (!have_mpi())
		return;
	per = write_interleaved(tu_path("one.ssl"));
	snprintf(args, sizeof args, "ssl-train " TINY " --steps 0 --input-size 16x16x3 -o %s", tu_path("init.ssl"));
	tu_run_ok(&r, args);
	tu_result_free(&r);
	/* one process: the whole run (2 epochs of a full and a short step) and
	 * its state after each step */
	snprintf(args, sizeof args, "--log %s -o %s", tu_path("s.tsv"), tu_path("s4.ssl"));
	train_one_until(0, args);
	for (int k = 1; k <= 3; k++) {
		snprintf(args, sizeof args, "-o %s", tu_path(k == 1 ? "s1.ssl" : k == 2 ? "s2.ssl" : "s3.ssl"));
		train_one_until(k, args);
	}
	/* Every step on 2 ranks from the state one process had before it (step 1
	 * from the start, the others resumed from one process's checkpoint: a
	 * resume across world sizes): the same update up to float rounding.
	 * Step by step, because over several steps a ReLU input within rounding
	 * of 0 may flip and the runs drift apart (one process does the same
	 * between thread counts). */
	snprintf(args, sizeof args, "--sync-bn -o %s", tu_path("d1.ssl"));
	train_two(&r, "SSL_FAULT_SIGNAL_AT_STEP=1", args);
	ck_assert_msg(r.status != 0 && strstr(r.err, "interrupted after step 1"), "%s", r.err);
	tu_result_free(&r);
	assert_same_step(tu_path("init.ssl"), tu_path("s1.ssl"), tu_path("d1.ssl"), 1);
	for (int k = 1; k <= 3; k++) {
		char from[32], to[32], cmd[600];
		snprintf(from, sizeof from, "s%d.ssl", k);
		snprintf(to, sizeof to, "s%d.ssl", k + 1);
		snprintf(cmd, sizeof cmd, "cp %s %s", tu_path(from), tu_path("r.ssl"));
		tu_run_ok(&r, cmd);
		tu_result_free(&r);
		snprintf(env, sizeof env, "SSL_FAULT_SIGNAL_AT_STEP=%d", k + 1);
		snprintf(args, sizeof args, "--sync-bn --resume %s -o %s", tu_path("r.ssl"), tu_path("r.ssl"));
		train_two(&r, k < 3 ? env : NULL, args);
		ck_assert_msg(k < 3 ? r.status != 0 : r.status == 0, "resumed at step %d: exit %d\n%s", k, r.status, r.err);
		tu_result_free(&r);
		assert_same_step(tu_path(from), tu_path(to), tu_path("r.ssl"), k + 1);
	}

	/* The whole run on 2 ranks: the same losses, weights and schedule (looser:
	 * the drift above); without --sync-bn far apart (the test can fail). */
	snprintf(args, sizeof args, "--sync-bn --log %s -o %s", tu_path("d.tsv"), tu_path("d.ssl"));
	train_two_ok(args);
	snprintf(args, sizeof args, "--log %s -o %s", tu_path("n.tsv"), tu_path("n.ssl"));
	train_two_ok(args);
	ck_assert_int_eq(read_losses(tu_path("s.tsv"), ls, 8), 4);
	ck_assert_int_eq(read_losses(tu_path("d.tsv"), ld, 8), 4);
	ck_assert_int_eq(read_losses(tu_path("n.tsv"), ln, 8), 4);
	ck_assert_msg(fabs(ld[0] - ls[0]) <= 1e-6 * ls[0], "step 1: loss %.7g, one process %.7g", ld[0], ls[0]);
	for (int i = 1; i < 4; i++)
		ck_assert_msg(fabs(ld[i] - ls[i]) <= 1e-2 * ls[i], "step %d: loss %.7g, one process %.7g", i + 1, ld[i],
		              ls[i]);
	ck_assert_msg(fabs(ln[0] - ls[0]) > 1e-3 * ls[0], "without --sync-bn the loss should differ (%g, %g)", ln[0],
	              ls[0]);
	w0 = load_params(tu_path("init.ssl"), &n, NULL);
	ws = load_params(tu_path("s4.ssl"), &n2, NULL);
	wd = load_params(tu_path("d.ssl"), &n2, &ck);
	ck_assert_msg(rel_dist(wd, ws, w0, n) < 1e-1, "the updates differ by %g", rel_dist(wd, ws, w0, n));
	/* the checkpoint describes the global run */
	ck_assert_int_eq(ck.train.batch, 8);
	ck_assert_int_eq(ck.train.records_per_epoch, 2 * per);   /* 12 images, the shorter shard repeating some */
	ck_assert_int_eq(ck.train.step, 4);
	ck_assert_int_eq(ck.train.total_steps, 4);
	checkpoint_free(&ck);
	free(wd);
	wd = load_params(tu_path("n.ssl"), &n2, NULL);
	ck_assert_msg(rel_dist(wd, ws, w0, n) > 0.5, "without --sync-bn the updates should differ (%g)",
	              rel_dist(wd, ws, w0, n));
	free(w0);
	free(ws);
	free(wd);
}
END_TEST

START_TEST(test_one_rank_is_one_process)
{
	TuResult r;
	char cmd[2048];
	size_t n, n2;
	float *a, *b;
	if (!have_mpi())
		return;
	snprintf(cmd, sizeof cmd, DECODE " %s | " AUGMENT " > %s", tu_path("data"), tu_path("v.st"));
	tu_run_ok(&r, cmd);
	tu_result_free(&r);
	snprintf(cmd, sizeof cmd, "ssl-train " TINY " -o %s %s && mpirun --allow-run-as-root -np 1 ssl-train-mpi " TINY
	         " --sync-bn -o %s %s", tu_path("a.ssl"), tu_path("v.st"), tu_path("b.ssl"), tu_path("v.st"));
	tu_run_ok(&r, cmd);
	tu_result_free(&r);
	a = load_params(tu_path("a.ssl"), &n, NULL);
	b = load_params(tu_path("b.ssl"), &n2, NULL);
	ck_assert_uint_eq(n, n2);
	ck_assert_msg(memcmp(a, b, sizeof(float) * n) == 0, "one rank differs from one process");
	free(a);
	free(b);
}
END_TEST

START_TEST(test_interrupt_and_resume)
{
	TuResult r;
	char args[1024], *line, *end, *cmd;
	size_t n, n2;
	float *a, *b;
	if (!have_mpi())
		return;
	snprintf(args, sizeof args, "--sync-bn --checkpoint-every 1 -o %s", tu_path("full.ssl"));
	train_two_ok(args);
	/* a signal inside step 1 on every rank: the step finishes, rank 0 saves */
	snprintf(args, sizeof args, "--sync-bn --checkpoint-every 1 -o %s", tu_path("cut.ssl"));
	train_two(&r, "SSL_FAULT_SIGNAL_AT_STEP=1", args);
	ck_assert_int_ne(r.status, 0);
	tu_assert_has(r.err, "interrupted after step 1 of 4");
	line = strstr(r.err, "to resume: mpirun -np 2 sh -c '");
	ck_assert_msg(line != NULL, "no mpirun resume command in:\n%s", r.err);
	line += strlen("to resume: mpirun -np 2 ");
	end = strchr(line, '\n');
	ck_assert_ptr_nonnull(end);
	*end = '\0';
	tu_assert_has(line, "--shard $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE --start-epoch 0");
	tu_assert_has(line, "--resume");
	cmd = xstrdup(line);
	tu_result_free(&r);
	tu_run(&r, MPIRUN " %s", cmd);
	ck_assert_msg(r.status == 0, "the resume command failed (%d):\n%s", r.status, r.err);
	tu_result_free(&r);
	free(cmd);
	a = load_params(tu_path("full.ssl"), &n, NULL);
	b = load_params(tu_path("cut.ssl"), &n2, NULL);
	ck_assert_uint_eq(n, n2);
	ck_assert_msg(memcmp(a, b, sizeof(float) * n) == 0, "the resumed run differs from the uninterrupted one");
	free(a);
	free(b);
}
END_TEST

START_TEST(test_rank_dies)
{
	TuResult r;
	char args[1024];
	Checkpoint ck;
	double t0 = now_seconds();
	if (!have_mpi())
		return;
	snprintf(args, sizeof args, "--sync-bn --checkpoint-every 2 -o %s", tu_path("die.ssl"));
	train_two(&r, "SSL_FAULT_RANK_AT_STEP=1:3:kill", args);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(now_seconds() - t0 < 30, "the job took %.0f s to end", now_seconds() - t0);
	/* mpirun says which process failed; rank 0, terminated in the collective, says why it stopped */
	ck_assert_msg(strstr(r.err, "137") || strstr(r.err, "signal 9") || strstr(r.err, "waiting for the other ranks"),
	              "no message about the failed rank:\n%s", r.err);
	tu_result_free(&r);
	size_t n;
	free(load_params(tu_path("die.ssl"), &n, &ck));
	ck_assert_int_eq(ck.train.step, 2);
	checkpoint_free(&ck);
}
END_TEST

START_TEST(test_rank_hangs)
{
	TuResult r;
	char args[1024];
	double t0 = now_seconds();
	if (!have_mpi())
		return;
	snprintf(args, sizeof args, "--timeout 2 -o %s", tu_path("hang.ssl"));
	train_two(&r, "SSL_FAULT_RANK_AT_STEP=1:2:hang", args);
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(now_seconds() - t0 < 30, "the job took %.0f s to end", now_seconds() - t0);
	tu_assert_has(r.err, "rank 0: no answer from the other ranks for 2 s");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_one_input_fails)
{
	TuResult r;
	char cmd[2048];
	Checkpoint ck;
	size_t n;
	if (!have_mpi())
		return;
	/* rank 1's stream is cut inside its 9th record (step 3: each shard has
	 * 8 records an epoch, the 12 images hashing 8 and 4) */
	snprintf(cmd, sizeof cmd, MPIRUN " sh -c '" DECODE " " SHARD " %s | " AUGMENT " | if [ $OMPI_COMM_WORLD_RANK = 1 ]; "
	         "then head -c 14000; else cat; fi | ssl-train-mpi " TINY " -o %s'", tu_path("data"), tu_path("cut.ssl"));
	tu_run(&r, "%s", cmd);
	ck_assert_int_ne(r.status, 0);
	tu_assert_has(r.err, "rank 1: <stdin>: record 9: truncated stream");
	tu_assert_has(r.err, "rank 0: the input of rank 1 failed (its message says why); checkpoint after step 2 written");
	tu_assert_has(r.err, "to resume: mpirun -np 2 sh -c");
	tu_result_free(&r);
	free(load_params(tu_path("cut.ssl"), &n, &ck));
	ck_assert_int_eq(ck.train.step, 2);
	ck_assert_int_eq(ck.train.epoch, 1);
	checkpoint_free(&ck);
}
END_TEST

START_TEST(test_bad_setups)
{
	TuResult r;
	char cmd[2048];
	if (!have_mpi())
		return;
	/* both ranks read shard 0/2 */
	snprintf(cmd, sizeof cmd, MPIRUN " sh -c '" DECODE " --shard 0/2 %s | " AUGMENT " | ssl-train-mpi " TINY " -o %s'",
	         tu_path("data"), tu_path("x.ssl"));
	tu_run(&r, "%s", cmd);
	ck_assert_int_ne(r.status, 0);
	tu_assert_has(r.err, "rank 1 reads shard 0/2 of its input; it needs shard 1/2");
	tu_result_free(&r);
	/* rank 1 with another learning rate */
	snprintf(cmd, sizeof cmd, MPIRUN " sh -c '" DECODE " " SHARD " %s | " AUGMENT " | ssl-train-mpi " TINY
	         " --lr 0.$((5 - OMPI_COMM_WORLD_RANK)) -o %s'", tu_path("data"), tu_path("x.ssl"));
	tu_run(&r, "%s", cmd);
	ck_assert_int_ne(r.status, 0);
	tu_assert_has(r.err, "rank 1 runs with other options than rank 0");
	tu_result_free(&r);
	/* a batch the ranks do not divide */
	{
		char args[700];   /* a path that could be written (ssl-train refuses one that cannot at once) */
		snprintf(args, sizeof args, "--batch 7 -o %s", tu_path("batch7.ssl"));
		train_two(&r, NULL, args);
	}
	ck_assert_int_ne(r.status, 0);
	ck_assert_msg(access(tu_path("batch7.ssl"), F_OK) != 0, "a model was written");
	tu_assert_has(r.err, "--batch 7 is not a multiple of the 2 ranks");
	tu_result_free(&r);
}
END_TEST

/* Two ranks on n records (rank 0 the first n - n/2, rank 1 the first n/2:
 * inputs of unequal length, which ssl-decode's shards never are), batch
 * 10, two epochs: exit 0 with one step an epoch (two log rows); r keeps
 * the messages. */
static void
train_two_short(TuResult *r, int n, const char *name)
{
	char cmd[2048], tsv[64], ssl[64];
	double loss[8];
	snprintf(tsv, sizeof tsv, "%s.tsv", name);
	snprintf(ssl, sizeof ssl, "%s.ssl", name);
	snprintf(cmd, sizeof cmd, MPIRUN " sh -c '" DECODE " --limit $((%d - %d * OMPI_COMM_WORLD_RANK)) %s | " AUGMENT
	         " | ssl-train-mpi --arch resnet18 --width 4 --proj-hidden 16 --proj-dim 8 --batch 10 --seed 4 --log %s "
	         "-o %s'", n - n / 2, n - n / 2 - n / 2, tu_path("data"), tu_path(tsv), tu_path(ssl));
	tu_run(r, "%s", cmd);
	ck_assert_msg(r->status == 0, "exited %d:\n%s", r->status, r->err);
	tu_assert_has(r->err, "2 steps of 10 pairs (1 per epoch x 2 epochs)");
	ck_assert_int_eq(read_losses(tu_path(tsv), loss, 8), 2);
}

START_TEST(test_short_epoch_end)
{
	TuResult r;
	if (!have_mpi())
		return;
	/* 11 records: the last batch has 1 record, rank 1 none; epoch 0's, and
	 * epoch 1's left unread when the schedule ends */
	train_two_short(&r, 11, "short");
	tu_assert_has(r.err, "not trained on: 2 records at epoch ends");
	tu_assert_has(r.err, "2 ranks; communication per step: control");
	tu_assert_has(r.err, "gradients");
	tu_result_free(&r);
	/* 12 records: a tail of 2, one per rank, but under the default
	 * --min-tail of 5: dropped on the ranks as by one process. */
	train_two_short(&r, 12, "tail");
	tu_assert_has(r.err, "not trained on: 4 records at epoch ends, where the last batch had fewer than 5 records");
	tu_result_free(&r);
}
END_TEST

/* In each forked test: its own temporary directory with the images. */
static void
setup(void)
{
	setenv("OMP_NUM_THREADS", "1", 1);
	write_data(tu_path("data"));
}

static Suite *
mpi_suite(void)
{
	Suite *s = suite_create("mpi");
	TCase *tc = tcase_create("mpi");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_same_as_one_process);
	tcase_add_test(tc, test_one_rank_is_one_process);
	tcase_add_test(tc, test_interrupt_and_resume);
	tcase_add_test(tc, test_rank_dies);
	tcase_add_test(tc, test_rank_hangs);
	tcase_add_test(tc, test_one_input_fails);
	tcase_add_test(tc, test_bad_setups);
	tcase_add_test(tc, test_short_epoch_end);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(mpi_suite)
