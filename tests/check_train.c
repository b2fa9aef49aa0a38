/* Tool tests for ssl-train on tiny generated views streams (resnet18 of
 * width 4 on 8x8 views, batch 4): the loss falls; an interrupted run
 * (SIGTERM inside a step, or a real SIGTERM while it waits for input)
 * resumed with the printed command ends bitwise equal to an uninterrupted
 * run; a diverging run stops with a message and a loadable checkpoint; a
 * truncated input leaves a checkpoint; corrupt checkpoints are refused;
 * --steps 0 writes the random-init baseline; bad options exit 2. */
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "imgwrite.h"
#include "io/checkpoint.h"
#include "nn/bf16.h"
#include "base/rng.h"
#include "io/stream.h"
#include "testutil.h"
#include "tu_stream.h"
#include "train/trainer.h"
#include "base/util.h"

#define TINY_B(b) "ssl-train --arch resnet18 --width 4 --proj-hidden 16 --proj-dim 8 --batch " #b " --threads 1"
#define TINY TINY_B(4)

typedef struct {
	int rpe, epochs, H, W, C, V, K;
	int first;        /* first epoch written (the header's start_epoch) */
	int counts;       /* header gives records_per_epoch and epochs */
	int64_t cut;      /* records before the stream stops without a trailer; < 0: complete */
} Gen;

/* id i has its own random picture (class i % K adds a brightness); each
 * view is the picture plus fresh noise, so views of one id match. */
static void
write_views(const char *path, const Gen *g)
{
	char *names[] = { "a", "b", "c", "d" };
	char *argv1[] = { "ssl-decode", "--epochs", "9", "data dir/x.tar" };
	char *argv2[] = { "ssl-augment", "--views", "2" };
	size_t img = (size_t)g->H * g->W * g->C;
	uint8_t *px = malloc(img * g->V);
	FILE *f = fopen(path, "wb");
	StreamHeader h;
	StreamWriter *w;
	int64_t n = 0;
	ck_assert_ptr_nonnull(f);
	stream_header_init(&h, STREAM_KIND_VIEWS);
	if (g->K)
		stream_header_set_classes(&h, g->K, names);
	if (g->counts) {
		h.records_per_epoch = g->rpe;
		h.epochs = g->epochs;
	}
	h.start_epoch = g->first;
	stream_header_add_provenance(&h, 4, argv1);
	stream_header_add_provenance(&h, 3, argv2);
	w = stream_writer_open(f, path, &h);
	ck_assert_ptr_nonnull(w);
	for (int e = g->first; e < g->epochs; e++) {
		for (int k = 0; k < g->rpe; k++) {
			int id = (k * 7 + e * 3) % g->rpe; /* another order each epoch */
			int64_t shape[4] = { g->V, g->H, g->W, g->C };
			Rng base = rng_for(7, 0, (uint64_t)id, 0);
			Record rec = { .id = id, .label = g->K ? id % g->K : -1, .epoch = e, .ntensors = 1 };
			for (size_t p = 0; p < img; p++) {
				int b = (int)rng_below(&base, 200) + (g->K ? 12 * (id % g->K) : 0);
				for (int v = 0; v < g->V; v++) {
					Rng r = rng_for(7, (uint64_t)e, (uint64_t)id, (uint64_t)(1 + v));
					int x;
					for (size_t s = 0; s < p % 3; s++)
						rng_u32(&r);
					x = b + (int)rng_below(&r, 40) - 20;
					px[(size_t)v * img + p] = (uint8_t)(x < 0 ? 0 : x > 255 ? 255 : x);
				}
			}
			rec.tensors[0] = tensor_view("views", DTYPE_U8, 4, shape, px);
			if (g->cut >= 0 && n == g->cut)
				goto cut;
			ck_assert_int_eq(stream_writer_put(w, &rec), 0);
			n++;
		}
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	goto done;
cut:
	stream_writer_abort(w);
done:
	ck_assert_int_eq(fclose(f), 0);
	stream_header_free(&h);
	free(px);
}

static void
write_tiny(const char *path, int epochs, int64_t cut)
{
	Gen g = { .rpe = 12, .epochs = epochs, .H = 8, .W = 8, .C = 3, .V = 2, .K = 0, .counts = 1, .cut = cut };
	write_views(path, &g);
}

typedef struct {
	int K, shuffled;
} MonitorSpec;

static void
monitor_record(int i, Record *rec, uint8_t *px, void *arg)
{
	const MonitorSpec *m = arg;
	Rng r = rng_for(9, 0, (uint64_t)i, 0);
	rec->id = i;
	rec->label = (i / 2) % m->K;
	for (size_t p = 0; p < 8 * 8 * 3; p++)
		px[p] = (uint8_t)(60 * rec->label + rng_below(&r, 40));
	if (m->shuffled)
		rec->label = (int64_t)rng_below(&r, (uint32_t)m->K);
}

/* A labelled images stream for --monitor: class c is a brightness level;
 * shuffled: the labels are drawn apart from the pictures (no encoder can
 * beat chance on them). */
static void
write_images(const char *path, int n, int K, int shuffled)
{
	static char *names[] = { "a", "b", "c", "d" };
	MonitorSpec m = { K, shuffled };
	TuImages s = { .H = 8, .W = 8, .C = 3, .nclasses = K, .classes = names, .record = monitor_record, .arg = &m };
	tu_write_images(path, n, &s);
}

/* Loads a checkpoint or fails the test. */
static void
load_ok(Checkpoint *ck, const char *path)
{
	char err[512];
	ck_assert_msg(checkpoint_load(ck, path, err, sizeof err) == 0, "%s", err);
}

/* Data rows of a log (after the header) and the loss column of each. */
static int
read_log(const char *path, double *loss, int max, char rows[][160])
{
	FILE *f = fopen(path, "r");
	char line[512];
	int n = 0;
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	ck_assert_str_eq(line, "step\tepoch\tloss\tlr\timages_per_s\tcontrastive_top1\tmonitor_knn_top1\n");
	while (fgets(line, sizeof line, f) && n < max) {
		long long step, epoch;
		double l;
		ck_assert_int_eq(sscanf(line, "%lld\t%lld\t%lf", &step, &epoch, &l), 3);
		if (loss)
			loss[n] = l;
		if (rows)
			snprintf(rows[n], 160, "%.150s", line);
		n++;
	}
	fclose(f);
	return n;
}

START_TEST(test_loss_falls)
{
	TuResult r;
	double loss[64];
	char rows[64][160];
	int n;
	Checkpoint ck;
	write_tiny(tu_path("lf.views"), 8, -1);
	tu_run_ok(&r, TINY " --lr 0.3 --lr-abs --log $TMP/lf.tsv -o $TMP/lf.ssl $TMP/lf.views");
	tu_result_free(&r);
	n = read_log(tu_path("lf.tsv"), loss, 64, rows);
	ck_assert_int_eq(n, 24); /* 12 records / 4 = 3 steps x 8 epochs */
	{
		double first = (loss[0] + loss[1] + loss[2]) / 3, last = (loss[n - 1] + loss[n - 2] + loss[n - 3]) / 3;
		ck_assert_msg(last < first - 0.1, "loss did not fall: first %.4f last %.4f", first, last);
	}
	ck_assert_msg(strncmp(rows[23], "24\t7\t", 5) == 0, "%s", rows[23]);
	load_ok(&ck, tu_path("lf.ssl"));
	ck_assert_int_eq(ck.train.step, 24);
	ck_assert_int_eq(ck.train.total_steps, 24);
	ck_assert_int_eq(ck.train.epoch, 8);
	ck_assert_int_eq(ck.train.epoch_records, 0);
	ck_assert_int_eq(ck.config.in_h, 8);
	ck_assert_int_eq(ck.config.width, 4);
	ck_assert_int_eq(ck.nprov, 3);
	ck_assert_str_eq(ck.prov[2].tool, "ssl-train");
	ck_assert(ck.std[0] > 0.1f && ck.std[0] < 0.5f);
	checkpoint_free(&ck);
}
END_TEST

START_TEST(test_last_short_batch)
{
	/* 10 records per epoch, batch 4: steps of 4, 4, 2 records. */
	Gen g = { .rpe = 10, .epochs = 2, .H = 8, .W = 8, .C = 3, .V = 3, .counts = 1, .cut = -1 };
	TuResult r;
	Checkpoint ck;
	int n;
	char rows[16][160];
	write_views(tu_path("sb.views"), &g);
	tu_run_ok(&r, TINY " --log $TMP/sb.tsv -o $TMP/sb.ssl $TMP/sb.views");
	tu_result_free(&r);
	n = read_log(tu_path("sb.tsv"), NULL, 16, rows);
	ck_assert_int_eq(n, 6);
	ck_assert_msg(strncmp(rows[2], "3\t0\t", 4) == 0 && strncmp(rows[3], "4\t1\t", 4) == 0, "%s%s", rows[2], rows[3]);
	load_ok(&ck, tu_path("sb.ssl"));
	ck_assert_int_eq(ck.train.total_steps, 6);
	checkpoint_free(&ck);
	/* Without the counts in the header, --steps is needed (exit 2). */
	g.counts = 0;
	write_views(tu_path("nc.views"), &g);
	tu_run(&r, TINY " -o $TMP/nc.ssl $TMP/nc.views");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "give --steps");
	tu_result_free(&r);
	/* With --steps, epochs are found from the records' epoch numbers. */
	tu_run_ok(&r, TINY " --steps 6 --log $TMP/nc.tsv -o $TMP/nc.ssl $TMP/nc.views");
	tu_result_free(&r);
	n = read_log(tu_path("nc.tsv"), NULL, 16, rows);
	ck_assert_int_eq(n, 6);
	ck_assert_msg(strncmp(rows[2], "3\t0\t", 4) == 0 && strncmp(rows[3], "4\t1\t", 4) == 0, "%s%s", rows[2], rows[3]);
}
END_TEST

/* Rows of a log whose epoch column is e. */
static int
rows_of_epoch(char rows[][160], int n, int e)
{
	int k = 0;
	for (int i = 0; i < n; i++) {
		long long step, epoch;
		ck_assert_int_eq(sscanf(rows[i], "%lld\t%lld", &step, &epoch), 2);
		k += epoch == e;
	}
	return k;
}

static const char *resume_line(const char *err);

/* Tails of 1 (dropped: a one-pair step) and of batch - 1 (trained on), a
 * whole epoch shorter than a batch (trained on), --min-tail 1 (every
 * tail), and an exact resume across dropped tails. */
START_TEST(test_tail_batches)
{
	Gen g = { .rpe = 9, .epochs = 3, .H = 8, .W = 8, .C = 3, .V = 2, .counts = 1, .cut = -1 };
	TuResult r;
	Checkpoint ck;
	char rows[32][160];
	int n;
	write_views(tu_path("t1.views"), &g);
	tu_run_ok(&r, TINY " --log $TMP/t1.tsv -o $TMP/t1.ssl $TMP/t1.views");
	tu_assert_has(r.err, "not trained on: 3 records at epoch ends, where the last batch had fewer than 2 records");
	tu_result_free(&r);
	n = read_log(tu_path("t1.tsv"), NULL, 32, rows);
	ck_assert_int_eq(n, 6);
	for (int e = 0; e < 3; e++)
		ck_assert_int_eq(rows_of_epoch(rows, n, e), 2);
	load_ok(&ck, tu_path("t1.ssl"));
	ck_assert_int_eq(ck.train.total_steps, 6);
	ck_assert_int_eq(ck.train.min_tail, 2);
	checkpoint_free(&ck);
	/* --min-tail 1: every tail, 3 steps an epoch. */
	tu_run_ok(&r, TINY " --min-tail 1 --log $TMP/k1.tsv -o $TMP/k1.ssl $TMP/t1.views");
	ck_assert_ptr_null(strstr(r.err, "not trained on"));
	tu_result_free(&r);
	ck_assert_int_eq(read_log(tu_path("k1.tsv"), NULL, 32, NULL), 9);
	/* Interrupted in epoch 1 after a dropped tail, resumed: the same weights,
	 * and the resume keeps the checkpoint's rule. */
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=3 " TINY " -o $TMP/p1.ssl $TMP/t1.views");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	load_ok(&ck, tu_path("p1.ssl"));
	ck_assert_int_eq(ck.train.epoch, 1);
	ck_assert_int_eq(ck.train.epoch_records, 4);
	checkpoint_free(&ck);
	tu_result_free(&r);
	tu_run(&r, TINY " --min-tail 1 --resume $TMP/p1.ssl -o $TMP/p1.ssl $TMP/t1.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--min-tail 1, the checkpoint has 2");
	tu_result_free(&r);
	tu_run_ok(&r, TINY " --resume $TMP/p1.ssl -o $TMP/p1.ssl $TMP/t1.views");
	tu_result_free(&r);
	tu_assert_same_checkpoints(tu_path("t1.ssl"), tu_path("p1.ssl"));
	/* A tail of batch - 1 is trained on. */
	g.rpe = 7;
	write_views(tu_path("t3.views"), &g);
	tu_run_ok(&r, TINY " --log $TMP/t3.tsv -o $TMP/t3.ssl $TMP/t3.views");
	ck_assert_ptr_null(strstr(r.err, "not trained on"));
	tu_result_free(&r);
	ck_assert_int_eq(read_log(tu_path("t3.tsv"), NULL, 32, NULL), 6);
	/* The last epoch's dropped tail is still read to the trailer: a tail
	 * larger than a pipe's and the reader's buffers (200 records of 32x32,
	 * 1.2 MB) must not leave the tool upstream dead of SIGPIPE (exit 141
	 * under pipefail). */
	g.rpe = 712;
	g.epochs = 1;
	g.H = g.W = 32;
	write_views(tu_path("big.views"), &g);
	tu_run(&r, "bash -c 'set -o pipefail; cat $TMP/big.views | " TINY_B(512) " -o $TMP/big.ssl'");
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	tu_assert_has(r.err, "not trained on: 200 records at epoch ends");
	ck_assert_ptr_null(strstr(r.err, "the rest of the input is not used"));
	tu_result_free(&r);
	/* An epoch shorter than a batch, even below --min-tail, is trained on whole. */
	g.rpe = 3;
	g.epochs = 3;
	g.H = g.W = 8;
	write_views(tu_path("s3.views"), &g);
	tu_run_ok(&r, TINY " --min-tail 4 --log $TMP/s3.tsv -o $TMP/s3.ssl $TMP/s3.views");
	tu_result_free(&r);
	ck_assert_int_eq(read_log(tu_path("s3.tsv"), NULL, 32, NULL), 3);
}
END_TEST

/* The learning rate of a log's rows after warm-up never rises (a --budget
 * re-plan lays the rest of the cosine from where it stands); the rows read. */
static int
assert_lr_falls_after(const char *path, long long warmup)
{
	FILE *f = fopen(path, "r");
	char line[512];
	double prev = INFINITY;
	int n = 0;
	ck_assert_ptr_nonnull(f);
	ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
	while (fgets(line, sizeof line, f)) {
		long long step, epoch;
		double loss, lr;
		ck_assert_int_eq(sscanf(line, "%lld\t%lld\t%lf\t%lf", &step, &epoch, &loss, &lr), 4);
		if (step > warmup) {
			ck_assert_msg(lr <= prev, "%s: step %lld: lr %g after %g", path, step, lr, prev);
			prev = lr;
		}
		n++;
	}
	fclose(f);
	return n;
}

/* A --budget run whose steps SSL_FAULT_SLOW_FROM_STEP=slow slows: it
 * re-plans (saying `says`) to more steps than first planned, or fewer,
 * re-lays the cosine after warm-up, and its rate only falls. */
static void
check_replan(const char *slow, const char *name, const char *says, int more)
{
	TuResult r;
	Checkpoint ck;
	char cmd[512], file[64];
	const char *p;
	long long planned;
	snprintf(cmd, sizeof cmd, "SSL_FAULT_SLOW_FROM_STEP=%s " TINY " --budget 2s --warmup-steps 5 --log $TMP/%s.tsv "
	         "-o $TMP/%s.ssl $TMP/b.views", slow, name, name);
	tu_run_ok(&r, cmd);
	p = strstr(r.err, "the plan: ");
	planned = p ? atoll(p + strlen("the plan: ")) : -1;
	tu_assert_has(r.err, "--budget: re-planned at ");
	tu_assert_has(r.err, says);
	snprintf(file, sizeof file, "%s.ssl", name);
	load_ok(&ck, tu_path(file));
	ck_assert_msg(more ? ck.train.total_steps > planned : ck.train.total_steps < planned,
	              "%lld steps, first planned %lld:\n%s", (long long)ck.train.total_steps, planned, r.err);
	ck_assert_int_eq(ck.train.step, ck.train.total_steps);
	ck_assert_int_gt(ck.train.relaid_at, 25);
	ck_assert(ck.train.relaid_phase > 0 && ck.train.relaid_phase < 1);
	snprintf(file, sizeof file, "%s.tsv", name);
	ck_assert_int_eq(assert_lr_falls_after(tu_path(file), 5), ck.train.step);
	checkpoint_free(&ck);
	tu_result_free(&r);
}

/* --budget: the plan is fixed after the timed steps and recorded; a run
 * interrupted while still timing records its estimate, and the resume keeps
 * it. (How long a run takes is not asserted: that is for bench/.) */
START_TEST(test_budget)
{
	Gen g = { .rpe = 12, .epochs = 400, .H = 8, .W = 8, .C = 3, .V = 2, .counts = 1, .cut = -1 };
	TuResult r;
	Checkpoint ck;
	int64_t total;
	write_views(tu_path("b.views"), &g);
	tu_run_ok(&r, TINY " --budget 2s -o $TMP/b.ssl $TMP/b.views");
	tu_assert_has(r.err, "as many steps as fit in --budget (planned after 25)");
	tu_assert_has(r.err, "--budget 2s: ");
	tu_assert_has(r.err, "the plan: ");
	tu_result_free(&r);
	load_ok(&ck, tu_path("b.ssl"));
	ck_assert_int_ge(ck.train.total_steps, 25);
	ck_assert_int_le(ck.train.total_steps, 1200);
	ck_assert_int_eq(ck.train.step, ck.train.total_steps);
	checkpoint_free(&ck);
	/* interrupted at step 10, before the plan: the checkpoint holds an estimate */
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=10 " TINY " --budget 2s -o $TMP/bi.ssl $TMP/b.views");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	tu_result_free(&r);
	load_ok(&ck, tu_path("bi.ssl"));
	ck_assert_int_eq(ck.train.step, 10);
	total = ck.train.total_steps;
	ck_assert_int_ge(total, 10);
	checkpoint_free(&ck);
	tu_run_ok(&r, TINY " --budget 2s --resume $TMP/bi.ssl -o $TMP/bi.ssl $TMP/b.views");
	tu_assert_has(r.err, "a resumed run keeps the plan its checkpoint recorded");
	tu_result_free(&r);
	load_ok(&ck, tu_path("bi.ssl"));
	ck_assert_int_eq(ck.train.total_steps, total);
	ck_assert_int_eq(ck.train.step, total);
	checkpoint_free(&ck);
	/* A machine that gets busy after the plan (each step from the 30th
	 * 40 ms longer): the run re-plans to fewer steps than it first planned. */
	check_replan("30:40", "bs", "(the steps slowed down)", 0);
	/* Interrupted after that re-plan, the resume keeps the re-laid cosine. */
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=50 SSL_FAULT_SLOW_FROM_STEP=30:40 " TINY " --budget 2s --warmup-steps 5 "
	           "--log $TMP/br.tsv -o $TMP/br.ssl $TMP/b.views");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	tu_result_free(&r);
	{
		int64_t relaid_at;
		double relaid_phase;
		load_ok(&ck, tu_path("br.ssl"));
		ck_assert_int_eq(ck.train.step, 50);
		ck_assert_int_gt(ck.train.relaid_at, 25);
		relaid_at = ck.train.relaid_at;
		relaid_phase = ck.train.relaid_phase;
		checkpoint_free(&ck);
		tu_run_ok(&r, TINY " --budget 2s --resume $TMP/br.ssl --log $TMP/br.tsv -o $TMP/br.ssl $TMP/b.views");
		tu_result_free(&r);
		load_ok(&ck, tu_path("br.ssl"));
		ck_assert_int_eq(ck.train.step, ck.train.total_steps);
		ck_assert_int_eq(ck.train.relaid_at, relaid_at);
		ck_assert(ck.train.relaid_phase == relaid_phase);
		ck_assert_int_eq(assert_lr_falls_after(tu_path("br.tsv"), 5), ck.train.step);
		checkpoint_free(&ck);
	}
	/* ... and one that gets quieter after a busy start (the first 30 steps
	 * 20 ms longer, the rest 10 ms: the plan must last past the half-way
	 * re-plan): it re-plans to more steps, and the rate still only falls. */
	check_replan("1:20:31,31:10", "bq", "(the steps sped up)", 1);
	/* the budget decides the steps */
	tu_run(&r, TINY " --budget 2s --steps 5 -o $TMP/x.ssl $TMP/b.views");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "--budget and --steps: give one");
	tu_result_free(&r);
	tu_run(&r, TINY " --budget 45 -o $TMP/x.ssl $TMP/b.views");
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "is not a duration such as 45m");
	tu_result_free(&r);
}
END_TEST

static const char *
resume_line(const char *err)
{
	static char cmd[4096];
	const char *p = strstr(err, "to resume: ");
	size_t n;
	ck_assert_msg(p != NULL, "no resume command in:\n%s", err);
	p += strlen("to resume: ");
	n = strcspn(p, "\n");
	ck_assert_uint_lt(n, sizeof cmd);
	memcpy(cmd, p, n);
	cmd[n] = '\0';
	return cmd;
}

START_TEST(test_sigterm_at_step_then_resume)
{
	TuResult r;
	const char *cmd;
	Checkpoint ck;
	char rows[32][160];
	int n;
	write_tiny(tu_path("rs.views"), 4, -1);
	tu_run_ok(&r, TINY " --lr 0.2 --lr-abs -o $TMP/full.ssl $TMP/rs.views");
	tu_result_free(&r);
	/* Step 5 is the second of epoch 1: a mid-epoch checkpoint. */
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=5 " TINY " --lr 0.2 --lr-abs --log $TMP/rs.tsv -o $TMP/part.ssl $TMP/rs.views");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	tu_assert_has(r.err, "interrupted after step 5 of 12 (epoch 1)");
	cmd = resume_line(r.err);
	ck_assert_msg(strstr(cmd, "--resume ") && strstr(cmd, "rs.views"), "%s", cmd);
	tu_result_free(&r);
	load_ok(&ck, tu_path("part.ssl"));
	ck_assert_int_eq(ck.train.step, 5);
	ck_assert_int_eq(ck.train.epoch, 1);
	ck_assert_int_eq(ck.train.epoch_records, 8);
	checkpoint_free(&ck);
	ck_assert_int_eq(read_log(tu_path("rs.tsv"), NULL, 32, NULL), 5);
	tu_run_ok(&r, cmd);
	tu_assert_has(r.err, "resuming at step 5 of 12");
	tu_result_free(&r);
	tu_assert_same_checkpoints(tu_path("full.ssl"), tu_path("part.ssl"));
	/* The log continues: 12 rows, steps 1..12 once each. */
	n = read_log(tu_path("rs.tsv"), NULL, 32, rows);
	ck_assert_int_eq(n, 12);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(atoi(rows[i]), i + 1);
	/* The finished run cannot be resumed again. */
	tu_run(&r, "%s", cmd);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "the run is complete");
	tu_result_free(&r);
	/* A changed setting is refused, naming it. */
	tu_run(&r, TINY " --batch 8 --resume $TMP/full.ssl -o $TMP/x.ssl $TMP/rs.views");
	ck_assert_int_eq(r.status, 1);
	tu_result_free(&r);
}
END_TEST

/* --precision bf16: the checkpoint records it; a run interrupted at step 5
 * and resumed with the printed command (or without --precision: the
 * checkpoint's is used) ends bitwise equal to an uninterrupted bf16 run,
 * which differs from the fp32 run; the loss falls. Without
 * avx512_bf16 the test runs the portable kernel ($SSL_BF16=portable). With
 * the native kernel turned off ($SSL_ISA=avx2), bf16 is an error and auto
 * is fp32 with a note. */
START_TEST(test_bf16_resume)
{
	TuResult r;
	Checkpoint c16, c32;
	double loss[16];
	const char *kernel = bf16_native() ? "" : "SSL_BF16=portable ";
	printf("bf16 training: %s kernel\n", bf16_native() ? "native" : bf16_cpu_has() ? "portable (native turned off)" : "portable (CPU lacks avx512_bf16)");
	write_tiny(tu_path("bf.views"), 4, -1);
	tu_run_ok(&r, TINY " --lr 0.2 --lr-abs -o $TMP/bf32.ssl $TMP/bf.views");
	tu_result_free(&r);
	tu_run(&r, "%s" TINY " --precision bf16 --lr 0.2 --lr-abs --log $TMP/bf.tsv -o $TMP/bf16.ssl $TMP/bf.views",
	       kernel);
	ck_assert_msg(r.status == 0, "exit %d:\n%s", r.status, r.err);
	tu_result_free(&r);
	load_ok(&c16, tu_path("bf16.ssl"));
	load_ok(&c32, tu_path("bf32.ssl"));
	ck_assert_str_eq(c16.train.precision, "bf16");
	ck_assert_str_eq(c32.train.precision, "fp32");
	/* (how near: 12 steps at lr 0.2 of so small a net amplify any difference,
	 * the last loss moves by 0.15 between builds; lib-level bounds are in
	 * check_model and check_bf16) */
	ck_assert_msg(c16.train.loss != c32.train.loss && isfinite(c16.train.loss), "final loss bf16 %.9g fp32 %.9g",
	              c16.train.loss, c32.train.loss);
	checkpoint_free(&c16);
	checkpoint_free(&c32);
	ck_assert_int_eq(read_log(tu_path("bf.tsv"), loss, 16, NULL), 12);
	ck_assert_msg(loss[9] + loss[10] + loss[11] < loss[0] + loss[1] + loss[2], "bf16 loss did not fall: %g -> %g",
	              (loss[0] + loss[1] + loss[2]) / 3, (loss[9] + loss[10] + loss[11]) / 3);
	for (int how = 0; how < 2; how++) {
		tu_run(&r, "%sSSL_FAULT_SIGNAL_AT_STEP=5 " TINY " --precision bf16 --lr 0.2 --lr-abs -o $TMP/bfp.ssl "
		           "$TMP/bf.views", kernel);
		ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
		const char *cmd = resume_line(r.err);
		ck_assert_msg(strstr(cmd, "--precision bf16"), "%s", cmd);
		char again[4200];
		if (how == 0)
			snprintf(again, sizeof again, "%s%s", kernel, cmd);
		else
			snprintf(again, sizeof again, "%s" TINY " --lr 0.2 --lr-abs --resume $TMP/bfp.ssl -o $TMP/bfp.ssl "
			         "$TMP/bf.views", kernel);
		tu_result_free(&r);
		tu_run_ok(&r, again);
		tu_result_free(&r);
		tu_assert_same_checkpoints(tu_path("bf16.ssl"), tu_path("bfp.ssl"));
	}
	/* a CPU without the native kernel: bf16 refused, auto falls back */
	tu_run(&r, "env -u SSL_BF16 SSL_ISA=avx2 " TINY " --precision bf16 -o $TMP/no.ssl $TMP/bf.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--precision bf16: ");
	tu_result_free(&r);
	tu_run_ok(&r, "SSL_ISA=avx2 " TINY " --precision auto --steps 1 -o $TMP/auto.ssl $TMP/bf.views");
	tu_assert_has(r.err, "--precision auto: fp32");
	tu_result_free(&r);
	load_ok(&c32, tu_path("auto.ssl"));
	ck_assert_str_eq(c32.train.precision, "fp32");
	checkpoint_free(&c32);
	tu_run(&r, TINY " --precision fp16 -o $TMP/no.ssl $TMP/bf.views");
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
}
END_TEST

/* A real SIGTERM while ssl-train waits for input on a pipe (the upstream
 * still open): exit 143, checkpoint after whole steps, and a resume from
 * the whole stream again gives the uninterrupted weights. */
START_TEST(test_real_sigterm_on_pipe)
{
	char *bytes, bin[512], *args[32];
	size_t len;
	int fds[2], status, rows = 0, argc = 0;
	pid_t pid;
	TuResult r;
	Checkpoint ck;
	char *a = xstrdup(TINY " --lr 0.2 --lr-abs --checkpoint-every 1000 --quiet -o"), *save = NULL;
	write_tiny(tu_path("pp.views"), 30, -1); /* 150 KB: more than the reader's 64 KB reads */
	tu_run_ok(&r, TINY " --lr 0.2 --lr-abs --checkpoint-every 1000 -o $TMP/ppfull.ssl $TMP/pp.views");
	tu_result_free(&r);
	bytes = tu_read_file(tu_path("pp.views"), &len);
	snprintf(bin, sizeof bin, "%s/ssl-train", getenv("SSL_BIN") ? getenv("SSL_BIN") : "build/bin");
	for (char *t = strtok_r(a, " ", &save); t; t = strtok_r(NULL, " ", &save))
		args[argc++] = t;
	args[0] = bin;
	args[argc++] = (char *)tu_path("pp.ssl");
	args[argc++] = "--log";
	args[argc++] = (char *)tu_path("pp.tsv");
	args[argc] = NULL;
	ck_assert_int_eq(pipe(fds), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int e = open(tu_path("pp.err"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
		dup2(fds[0], 0);
		dup2(e, 2);
		close(fds[0]);
		close(fds[1]);
		execv(bin, args);
		_exit(127);
	}
	close(fds[0]);
	/* 60% of the bytes: the header and many epochs' worth of records.
	 * Then wait until the log stops growing: ssl-train has used what it
	 * could and waits in a read (the pipe is still open). */
	ck_assert_int_eq(write(fds[1], bytes, len * 6 / 10), (ssize_t)(len * 6 / 10));
	for (int tries = 0, same = 0; tries < 500 && same < 15; tries++) {
		struct stat st;
		int now = 0;
		usleep(20000);
		if (stat(tu_path("pp.tsv"), &st) == 0 && st.st_size > 0)
			now = read_log(tu_path("pp.tsv"), NULL, 200, NULL);
		same = now > 3 && now == rows ? same + 1 : 0;
		rows = now;
	}
	ck_assert_int_ge(rows, 3);
	kill(pid, SIGTERM);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	close(fds[1]);
	ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 143, "status %x", status);
	{
		char *msg = tu_read_file(tu_path("pp.err"), NULL);
		tu_assert_has(msg, "interrupted after step ");
		tu_assert_has(msg, "--start-epoch ");
		tu_assert_has(msg, "| ssl-augment --views 2 | ssl-train ");
		free(msg);
	}
	load_ok(&ck, tu_path("pp.ssl"));
	ck_assert_int_ge(ck.train.step, 3);
	ck_assert_int_lt(ck.train.step, 90);
	checkpoint_free(&ck);
	tu_run_ok(&r, TINY " --lr 0.2 --lr-abs --checkpoint-every 1000 --resume $TMP/pp.ssl -o $TMP/pp.ssl < $TMP/pp.views");
	tu_result_free(&r);
	tu_assert_same_checkpoints(tu_path("ppfull.ssl"), tu_path("pp.ssl"));
	free(bytes);
	free(a);
}
END_TEST

START_TEST(test_nan_stops)
{
	TuResult r;
	Checkpoint ck;
	write_tiny(tu_path("nan.views"), 4, -1);
	tu_run(&r, TINY " --lr 1e20 --lr-abs --checkpoint-every 1 -o $TMP/nan.ssl $TMP/nan.views");
	ck_assert_msg(r.status == 1, "exit %d:\n%s", r.status, r.err);
	tu_assert_has(r.err, "diverged");
	tu_assert_has(r.err, "step ");
	tu_assert_has(r.err, "the last checkpoint is intact");
	tu_result_free(&r);
	load_ok(&ck, tu_path("nan.ssl"));
	ck_assert_int_ge(ck.train.step, 1);
	checkpoint_free(&ck);
}
END_TEST

START_TEST(test_truncated_input)
{
	TuResult r;
	Checkpoint ck;
	write_tiny(tu_path("tr.views"), 4, 30);
	tu_run(&r, TINY " -o $TMP/tr.ssl $TMP/tr.views");
	ck_assert_msg(r.status == 1, "exit %d:\n%s", r.status, r.err);
	tu_assert_has(r.err, "truncated");
	tu_assert_has(r.err, "checkpoint after step 7");
	tu_assert_has(r.err, "to resume: ");
	tu_result_free(&r);
	load_ok(&ck, tu_path("tr.ssl"));
	ck_assert_int_eq(ck.train.step, 7); /* 30 records: 3 + 3 steps, then a full batch of epoch 2 */
	ck_assert_int_eq(ck.train.epoch, 2);
	ck_assert_int_eq(ck.train.epoch_records, 4);
	checkpoint_free(&ck);
	/* Resuming from the complete stream finishes the run. */
	write_tiny(tu_path("tr.views"), 4, -1);
	tu_run_ok(&r, TINY " --resume $TMP/tr.ssl -o $TMP/tr.ssl $TMP/tr.views");
	tu_result_free(&r);
	load_ok(&ck, tu_path("tr.ssl"));
	ck_assert_int_eq(ck.train.step, 12);
	checkpoint_free(&ck);
	/* A stream restarted at a later epoch than the checkpoint needs is
	 * refused; restarted at that epoch, it is what the message says to do. */
	write_tiny(tu_path("tr.views"), 4, 30);
	tu_run(&r, TINY " -o $TMP/tr2.ssl $TMP/tr.views");
	ck_assert_int_eq(r.status, 1);
	tu_result_free(&r);
	{
		Gen g = { .rpe = 12, .epochs = 4, .first = 3, .H = 8, .W = 8, .C = 3, .V = 2, .counts = 1, .cut = -1 };
		write_views(tu_path("e3.views"), &g);
		tu_run(&r, TINY " --resume $TMP/tr2.ssl -o $TMP/tr2.ssl $TMP/e3.views");
		ck_assert_int_eq(r.status, 1);
		tu_assert_has(r.err, "the checkpoint needs epoch 2");
		tu_result_free(&r);
		g.first = 2;
		write_views(tu_path("e2.views"), &g);
		tu_run_ok(&r, TINY " --resume $TMP/tr2.ssl -o $TMP/tr2.ssl < $TMP/e2.views");
		tu_result_free(&r);
		tu_assert_same_checkpoints(tu_path("tr.ssl"), tu_path("tr2.ssl"));
	}
}
END_TEST

START_TEST(test_corrupt_checkpoint_refused)
{
	TuResult r;
	char *bytes;
	size_t len;
	write_tiny(tu_path("cc.views"), 2, -1);
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=2 " TINY " -o $TMP/cc.ssl $TMP/cc.views");
	ck_assert_int_eq(r.status, 143);
	tu_result_free(&r);
	bytes = tu_read_file(tu_path("cc.ssl"), &len);
	bytes[len / 2] ^= 4;
	tu_write_file(tu_path("flip.ssl"), bytes, len);
	tu_run(&r, TINY " --resume $TMP/flip.ssl -o $TMP/cc2.ssl $TMP/cc.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "flip.ssl: checksum mismatch");
	tu_result_free(&r);
	tu_write_file(tu_path("cut.ssl"), bytes, len - 100);
	tu_run(&r, TINY " --resume $TMP/cut.ssl -o $TMP/cc2.ssl $TMP/cc.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "cut.ssl: truncated");
	tu_result_free(&r);
	/* Another architecture in --resume: the options name the mismatch. */
	bytes[len / 2] ^= 4;
	tu_run(&r, TINY " --width 8 --resume $TMP/cc.ssl -o $TMP/cc2.ssl $TMP/cc.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "--width 8, the checkpoint has 4");
	tu_result_free(&r);
	free(bytes);
}
END_TEST

START_TEST(test_disk_full_keeps_previous)
{
	TuResult r;
	char *before, *after;
	size_t n1, n2;
	write_tiny(tu_path("df.views"), 2, -1);
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=3 " TINY " -o $TMP/df.ssl $TMP/df.views");
	ck_assert_int_eq(r.status, 143);
	tu_result_free(&r);
	before = tu_read_file(tu_path("df.ssl"), &n1);
	tu_run(&r, "SSL_FAULT_WRITE_BYTES=1000 " TINY " --resume $TMP/df.ssl -o $TMP/df.ssl $TMP/df.views");
	ck_assert_msg(r.status == 1, "exit %d:\n%s", r.status, r.err);
	tu_assert_has(r.err, "No space left on device");
	tu_result_free(&r);
	after = tu_read_file(tu_path("df.ssl"), &n2);
	ck_assert(n1 == n2 && memcmp(before, after, n1) == 0);
	free(before);
	free(after);
	/* An unwritable output is refused before any training. */
	tu_run(&r, TINY " -o /nonexistent-dir/m.ssl $TMP/df.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "/nonexistent-dir/m.ssl");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_steps0_baseline)
{
	TuResult r;
	Checkpoint ck;
	tu_run_ok(&r, "ssl-train --steps 0 --input-size 32x32x3 -o $TMP/rand.ssl < /dev/null");
	tu_result_free(&r);
	load_ok(&ck, tu_path("rand.ssl"));
	ck_assert_int_eq(ck.config.in_h, 32);
	ck_assert_int_eq(ck.config.in_channels, 3);
	ck_assert_int_eq(ck.config.width, 64);
	ck_assert_int_eq(ck.config.proj_hidden, 2048);
	ck_assert_int_eq(ck.has_optim, 0);
	ck_assert_int_eq(ck.train.step, 0);
	ck_assert_float_eq(ck.mean[0], 0.5f);
	checkpoint_free(&ck);
	/* From a stream: the size and normalisation from the first batch. */
	write_tiny(tu_path("s0.views"), 1, -1);
	tu_run_ok(&r, TINY " --steps 0 --seed 3 -o $TMP/s0.ssl < $TMP/s0.views");
	tu_result_free(&r);
	load_ok(&ck, tu_path("s0.ssl"));
	ck_assert_int_eq(ck.config.in_h, 8);
	ck_assert(ck.mean[0] > 0.2f && ck.mean[0] < 0.6f);
	ck_assert(ck.train.seed == 3);
	checkpoint_free(&ck);
	tu_run_ok(&r, "ssl-train --steps 0 --input-size 8x8x1 --width 2 --mean 0.3 --std 0.2 -o $TMP/g.ssl");
	tu_result_free(&r);
	load_ok(&ck, tu_path("g.ssl"));
	ck_assert_int_eq(ck.config.in_channels, 1);
	ck_assert_float_eq(ck.std[0], 0.2f);
	checkpoint_free(&ck);
}
END_TEST

START_TEST(test_monitor_and_supervised)
{
	Gen g = { .rpe = 12, .epochs = 3, .H = 8, .W = 8, .C = 3, .V = 2, .K = 3, .counts = 1, .cut = -1 };
	TuResult r;
	Checkpoint ck;
	char rows[16][160];
	int n;
	write_views(tu_path("lab.views"), &g);
	write_images(tu_path("mon.images"), 24, 3, 0);
	tu_run_ok(&r, TINY " --monitor $TMP/mon.images --log $TMP/mon.tsv --log-every 2 -o $TMP/mon.ssl $TMP/lab.views");
	n = read_log(tu_path("mon.tsv"), NULL, 16, rows);
	/* Rows at steps 2, 3 (epoch end), 4, 6 (epoch end), 8, 9 (epoch end). */
	ck_assert_int_eq(n, 6);
	for (int i = 0; i < n; i++) {
		int step = atoi(rows[i]);
		char *last = strrchr(rows[i], '\t') + 1;
		if (step % 3 == 0) {
			double acc = atof(last);
			ck_assert_msg(*last != '\n' && acc >= 0 && acc <= 1, "%s", rows[i]);
		} else {
			ck_assert_msg(*last == '\n', "monitor cell not empty: %s", rows[i]);
		}
	}
	tu_assert_has(r.err, "kNN monitor before training: top-1");
	tu_assert_has(r.err, "kNN monitor: before training");
	tu_result_free(&r);
	/* A run that ends inside an epoch: its last row has the final monitor
	 * value too (rows 2, 3 at the epoch end, 4, and 5 the last step). */
	tu_run_ok(&r, TINY " --monitor $TMP/mon.images --steps 5 --log $TMP/mon5.tsv --log-every 2 -o $TMP/mon5.ssl $TMP/lab.views");
	n = read_log(tu_path("mon5.tsv"), NULL, 16, rows);
	ck_assert_int_eq(n, 4);
	ck_assert_int_eq(atoi(rows[3]), 5);
	ck_assert_msg(strrchr(rows[3], '\t')[1] != '\n', "no monitor value in the last row: %s", rows[3]);
	tu_result_free(&r);
	/* A monitor whose labels say nothing about the pictures: no run beats
	 * random init on it, and the run says so. */
	write_images(tu_path("shuf.images"), 64, 4, 1);
	tu_run_ok(&r, TINY " --monitor $TMP/shuf.images -o $TMP/shuf.ssl $TMP/lab.views");
	tu_assert_has(r.err, "training did not beat the encoder before training on the monitor");
	tu_result_free(&r);
	/* A resumed run measures the random-init encoder of its seed. */
	tu_run(&r, "SSL_FAULT_SIGNAL_AT_STEP=4 " TINY " --monitor $TMP/mon.images -o $TMP/monr.ssl $TMP/lab.views");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	tu_result_free(&r);
	tu_run_ok(&r, TINY " --monitor $TMP/mon.images --resume $TMP/monr.ssl -o $TMP/monr.ssl $TMP/lab.views");
	tu_assert_has(r.err, "kNN monitor before training: top-1");
	tu_assert_has(r.err, "(random init)");
	tu_assert_has(r.err, "after the first epoch of this resumed run");
	tu_result_free(&r);
	/* The same weights as without the monitor's extra measurements. */
	tu_assert_same_checkpoints(tu_path("mon.ssl"), tu_path("monr.ssl"));
	/* Fine-tuning the encoder with a classifier on the labels. */
	tu_run_ok(&r, TINY " --objective supervised --init $TMP/mon.ssl --lr 0.5 --log $TMP/sup.tsv -o $TMP/sup.ssl $TMP/lab.views");
	tu_result_free(&r);
	load_ok(&ck, tu_path("sup.ssl"));
	ck_assert_int_eq(ck.config.num_classes, 3);
	ck_assert_int_eq(ck.config.proj_layers, 0);
	ck_assert_str_eq(ck.train.objective, "supervised");
	ck_assert_int_eq(ck.nclasses, 3);
	checkpoint_free(&ck);
	/* Unlabelled views cannot train a classifier. */
	write_tiny(tu_path("unl.views"), 1, -1);
	tu_run(&r, TINY " --objective supervised -o $TMP/x.ssl $TMP/unl.views");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "class names");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_resume_command)
{
	char *a1[] = { "--epochs", "10", "--shuffle", "--start-epoch", "2", "my data/train.tar.gz" };
	char *a2[] = { "--recipe", "cifar", "--seed=4" };
	Provenance prov[2] = { { .tool = "ssl-decode", .version = "0.1.0", .nargs = 6, .args = a1 },
		               { .tool = "ssl-augment", .version = "0.1.0", .nargs = 3, .args = a2 } };
	char *argv[] = { "ssl-train", "--batch", "8", "--resume", "old.ssl", "-o", "it's.ssl", NULL };
	char buf[1024];
	trainer_resume_command(buf, sizeof buf, prov, 2, 1, 7, argv, "it's.ssl", 5);
	ck_assert_str_eq(buf, "ssl-decode --epochs 10 --shuffle 'my data/train.tar.gz' --start-epoch 5 | ssl-augment "
	                      "--recipe cifar --seed=4 | ssl-train --batch 8 -o 'it'\\''s.ssl' --resume 'it'\\''s.ssl'");
	/* Read from a file: ssl-train alone (it skips what was trained on). */
	trainer_resume_command(buf, sizeof buf, prov, 2, 0, 7, argv, "m.ssl", 5);
	ck_assert_str_eq(buf, "ssl-train --batch 8 -o 'it'\\''s.ssl' --resume m.ssl");
	/* No ssl-decode upstream: the command says what the input must be. */
	trainer_resume_command(buf, sizeof buf, prov + 1, 1, 1, 3, argv, "m.ssl", 5);
	ck_assert_str_eq(buf, "<the same input, from epoch 5 (or from the start)> | ssl-train --batch 8 --resume m.ssl");
	/* ssl-augment read a file: the pipeline starts there (what made the
	 * file is not part of this run), and no --start-epoch: the file holds
	 * the epochs from the start and the trainer skips those done. */
	{
		char *a3[] = { "--recipe", "cifar", "-s", "8", "--seed=4", "img.ssl" };
		char *a4[] = { "-qr", "cifar", "-n", "2", "-" };
		char *a5[] = { "-rcifar", "--", "my views.ssl" };
		Provenance p2[2] = { prov[0], { .tool = "ssl-augment", .version = "0.1.0", .nargs = 6, .args = a3 } };
		trainer_resume_command(buf, sizeof buf, p2, 2, 1, 3, argv, "m.ssl", 5);
		ck_assert_str_eq(buf, "ssl-augment --recipe cifar -s 8 --seed=4 img.ssl | ssl-train --batch 8 --resume m.ssl");
		p2[1].args = a4, p2[1].nargs = 5; /* "-": its standard input, ssl-decode's output */
		trainer_resume_command(buf, sizeof buf, p2, 2, 1, 3, argv, "m.ssl", 5);
		ck_assert_str_eq(buf, "ssl-decode --epochs 10 --shuffle 'my data/train.tar.gz' --start-epoch 5 | ssl-augment "
		                      "-qr cifar -n 2 - | ssl-train --batch 8 --resume m.ssl");
		p2[1].args = a5, p2[1].nargs = 3;
		trainer_resume_command(buf, sizeof buf, p2 + 1, 1, 1, 3, argv, "m.ssl", 5);
		ck_assert_str_eq(buf, "ssl-augment -rcifar -- 'my views.ssl' | ssl-train --batch 8 --resume m.ssl");
	}
}
END_TEST

/* The resume command of a run whose ssl-augment read a file works: it
 * gives the weights of the uninterrupted run. */
START_TEST(test_resume_command_augment_file)
{
	TuResult r;
	const char *cmd;
	uint8_t px[8 * 8 * 3];
	char path[64];
	TwBuf b[4];
	TwMember m[4];
	for (int i = 0; i < 4; i++) {
		tw_pattern(px, 8, 8, 3, i);
		b[i] = tw_pnm(px, 8, 8, 3, 0);
		snprintf(path, sizeof path, "%s/%d.ppm", i & 1 ? "b" : "a", i);
		m[i] = (TwMember){ xstrdup(path), b[i].data, b[i].len };
	}
	tw_folder(tu_path("af"), m, 4);
	for (int i = 0; i < 4; i++) {
		free((char *)m[i].path);
		free(b[i].data);
	}
	tu_run_ok(&r, "ssl-decode -q --epochs 3 --shuffle $TMP/af > $TMP/af.img");
	tu_result_free(&r);
	tu_run_ok(&r, "ssl-augment -q --recipe cifar --size 8 --seed 2 $TMP/af.img | " TINY " -o $TMP/af-full.ssl");
	tu_result_free(&r);
	tu_run(&r, "cd $TMP && ssl-augment -q --recipe cifar --size 8 --seed 2 af.img | SSL_FAULT_SIGNAL_AT_STEP=2 " TINY
	           " -o af-part.ssl");
	ck_assert_msg(r.status == 143, "exit %d:\n%s", r.status, r.err);
	cmd = resume_line(r.err);
	{
		static const char want[] = "ssl-augment --recipe cifar --size 8 --seed 2 af.img | ssl-train ";
		ck_assert_msg(strncmp(cmd, want, strlen(want)) == 0, "%s", cmd);
	}
	tu_result_free(&r);
	{
		char full[4200];
		snprintf(full, sizeof full, "cd $TMP && %s", cmd);
		tu_run_ok(&r, full);
		tu_assert_has(r.err, "resuming at step 2 of 3");
		tu_result_free(&r);
	}
	tu_assert_same_checkpoints(tu_path("af-full.ssl"), tu_path("af-part.ssl"));
}
END_TEST

START_TEST(test_bad_options)
{
	static const char *bad[] = {
		"ssl-train",                                   /* no -o */
		"ssl-train -o m.ssl --arch resnet99",
		"ssl-train -o m.ssl --stem vgg",
		"ssl-train -o m.ssl --batch 0",
		"ssl-train -o m.ssl --batch x",
		"ssl-train -o m.ssl --optim adam",
		"ssl-train -o m.ssl --proj-layers 4",
		"ssl-train -o m.ssl --temperature 0",
		"ssl-train -o m.ssl --checkpoint-every 3x",
		"ssl-train -o m.ssl --checkpoint-every 0e",
		"ssl-train -o m.ssl --mean 0.5",
		"ssl-train -o m.ssl --mean 0.5,0.5 --std 0.2",
		"ssl-train -o m.ssl --std 0,1,1 --mean 1,1,1",
		"ssl-train -o m.ssl --input-size 32x32x3",
		"ssl-train -o m.ssl --steps 0 --input-size 32x32",
		"ssl-train -o m.ssl --objective byol",
		"ssl-train -o m.ssl --init a.ssl",
		"ssl-train -o m.ssl --objective supervised --init a.ssl --resume b.ssl",
		"ssl-train -o m.ssl --plot m.png",
		"ssl-train -o m.ssl --no-such-option",
		"ssl-train -o m.ssl a.views b.views",
		"ssl-train -o m.ssl --lr -1",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		TuResult r;
		tu_run(&r, "%s < /dev/null", bad[i]);
		ck_assert_msg(r.status == 2, "'%s' exited %d:\n%s", bad[i], r.status, r.err);
		ck_assert_uint_eq(r.outlen, 0);
		ck_assert_msg(strncmp(r.err, "ssl-train: ", 11) == 0, "%s", r.err);
		tu_result_free(&r);
	}
	{
		TuResult r;
		tu_run(&r, "ssl-train --help");
		ck_assert_int_eq(r.status, 0);
		tu_assert_has(r.out, "--checkpoint-every");
		tu_result_free(&r);
		tu_run(&r, "ssl-train -o m.ssl < /dev/null");
		ck_assert_int_eq(r.status, 1);
		tu_assert_has(r.err, "<stdin>");
		tu_result_free(&r);
	}
}
END_TEST

/* In the forked test process: its own temporary directory as $TMP. */
static void
setup(void)
{
	setenv("TMP", tu_tmpdir(), 1);
	setenv("OMP_NUM_THREADS", "1", 1);
}

static Suite *
train_suite(void)
{
	Suite *s = suite_create("train");
	TCase *tc = tcase_create("train");
	tcase_add_checked_fixture(tc, setup, NULL);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_resume_command);
	tcase_add_test(tc, test_resume_command_augment_file);
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_loss_falls);
	tcase_add_test(tc, test_last_short_batch);
	tcase_add_test(tc, test_tail_batches);
	tcase_add_test(tc, test_budget);
	tcase_add_test(tc, test_sigterm_at_step_then_resume);
	tcase_add_test(tc, test_bf16_resume);
	tcase_add_test(tc, test_real_sigterm_on_pipe);
	tcase_add_test(tc, test_nan_stops);
	tcase_add_test(tc, test_truncated_input);
	tcase_add_test(tc, test_corrupt_checkpoint_refused);
	tcase_add_test(tc, test_disk_full_keeps_previous);
	tcase_add_test(tc, test_steps0_baseline);
	tcase_add_test(tc, test_monitor_and_supervised);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(train_suite)
