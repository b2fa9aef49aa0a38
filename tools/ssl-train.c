/* ssl-train: SimCLR pre-training (or supervised fine-tuning) from a views
 * stream into a checkpoint file. See ssl-train(1); the loop is lib/train/trainer.c,
 * the file format lib/io/checkpoint.c.
 *
 * Compiled a second time with -DSSL_MPI (mpicc) this is ssl-train-mpi, the
 * data-parallel trainer: one process per rank under mpirun, each reading
 * its shard (ssl-train(1) DISTRIBUTED TRAINING, lib/dist/dist.h). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/atomicfile.h"
#include "base/cli.h"
#include "io/checkpoint.h"
#include "io/modelfile.h"
#include "dist/dist.h"
#include "eval/plot.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "train/trainer.h"
#include "base/util.h"

#ifdef SSL_MPI
#define PROG "ssl-train-mpi"
#else
#define PROG "ssl-train"
#endif

#if defined(SSL_MPI) && defined(__SANITIZE_ADDRESS__)
/* Sanitizer builds: Open MPI keeps allocations past MPI_Finalize (in
 * components it has unloaded, so no suppression can name them). Leak
 * checking stays on for ssl-train, the same code without MPI. */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
	return "detect_leaks=0";
}
#endif

enum {
	OPT_ARCH = 256, OPT_STEM, OPT_WIDTH, OPT_ZIR, OPT_PROJ_LAYERS, OPT_PROJ_HIDDEN, OPT_PROJ_DIM, OPT_OBJECTIVE,
	OPT_INIT, OPT_BATCH, OPT_MIN_TAIL, OPT_BUDGET, OPT_TEMP, OPT_OPTIM, OPT_LR, OPT_LR_ABS, OPT_WD, OPT_MOMENTUM, OPT_NESTEROV,
	OPT_WARMUP_EPOCHS, OPT_WARMUP_STEPS, OPT_STEPS, OPT_SEED, OPT_CKPT_EVERY, OPT_RESUME, OPT_LOG,
	OPT_LOG_EVERY, OPT_MONITOR, OPT_PLOT, OPT_MEAN, OPT_STD, OPT_INPUT_SIZE, OPT_SYNC_BN, OPT_TIMEOUT, OPT_VERBOSE,
	OPT_INIT_FROM, OPT_EPOCHS, OPT_PRECISION, OPT_END
};

static const struct option longopts[] = {
	{ "output", required_argument, NULL, 'o' },
	{ "arch", required_argument, NULL, OPT_ARCH },
	{ "stem", required_argument, NULL, OPT_STEM },
	{ "width", required_argument, NULL, OPT_WIDTH },
	{ "zero-init-residual", no_argument, NULL, OPT_ZIR },
	{ "proj-layers", required_argument, NULL, OPT_PROJ_LAYERS },
	{ "proj-hidden", required_argument, NULL, OPT_PROJ_HIDDEN },
	{ "proj-dim", required_argument, NULL, OPT_PROJ_DIM },
	{ "objective", required_argument, NULL, OPT_OBJECTIVE },
	{ "init", required_argument, NULL, OPT_INIT },
	{ "init-from", required_argument, NULL, OPT_INIT_FROM },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "min-tail", required_argument, NULL, OPT_MIN_TAIL },
	{ "budget", required_argument, NULL, OPT_BUDGET },
	{ "temperature", required_argument, NULL, OPT_TEMP },
	{ "optim", required_argument, NULL, OPT_OPTIM },
	{ "lr", required_argument, NULL, OPT_LR },
	{ "lr-abs", no_argument, NULL, OPT_LR_ABS },
	{ "wd", required_argument, NULL, OPT_WD },
	{ "momentum", required_argument, NULL, OPT_MOMENTUM },
	{ "nesterov", no_argument, NULL, OPT_NESTEROV },
	{ "warmup-epochs", required_argument, NULL, OPT_WARMUP_EPOCHS },
	{ "warmup-steps", required_argument, NULL, OPT_WARMUP_STEPS },
	{ "steps", required_argument, NULL, OPT_STEPS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "checkpoint-every", required_argument, NULL, OPT_CKPT_EVERY },
	{ "resume", required_argument, NULL, OPT_RESUME },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "log-every", required_argument, NULL, OPT_LOG_EVERY },
	{ "monitor", required_argument, NULL, OPT_MONITOR },
	{ "plot", required_argument, NULL, OPT_PLOT },
	{ "mean", required_argument, NULL, OPT_MEAN },
	{ "std", required_argument, NULL, OPT_STD },
	{ "input-size", required_argument, NULL, OPT_INPUT_SIZE },
	{ "sync-bn", no_argument, NULL, OPT_SYNC_BN },
	{ "precision", required_argument, NULL, OPT_PRECISION },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "verbose", no_argument, NULL, OPT_VERBOSE },
	{ "epochs", required_argument, NULL, OPT_EPOCHS }, /* refused with a hint: not in --help */
	{ NULL, 0, NULL, 0 },
};

typedef struct {
	TrainSetup  s;
	const char *input;        /* NULL: stdin */
	const char *resume, *init, *init_from, *plot;
	ModelPrecision precision; /* as asked (auto not yet resolved) */
	int         has_input_size, nstd;
	Cli         cli;
	double      timeout;      /* data-parallel watchdog, seconds (0: none) */
	char        given[OPT_END];
} Options;

static volatile sig_atomic_t got_signal;
static int input_fd = -1, devnull_fd = -1;
static Dist *signal_dist; /* data-parallel: a signal while waiting for the ranks is worth a line */

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: %s [options] -o MODEL [FILE]\n"
	        "  -o, --output MODEL        checkpoint to write (atomically, every --checkpoint-every and at the end)\n"
	        "  --arch A                  resnet18, resnet34 or resnet50 (resnet18)\n"
	        "  --stem S                  cifar (3x3 conv) or imagenet (7x7/2 conv and max-pool) (cifar)\n"
	        "  --width N                 channels of the stem; stages use N, 2N, 4N, 8N (64)\n"
	        "  --zero-init-residual      start each residual branch's last BatchNorm at 0\n"
	        "  --proj-layers N           projection head layers, 2 or 3 (2)\n"
	        "  --proj-hidden N           head hidden units (32 x width)\n"
	        "  --proj-dim N              head output dimension (128)\n"
	        "  --objective O             simclr, or supervised (cross-entropy on view 0 and labels) (simclr)\n"
	        "  --init MODEL              supervised: start the encoder from this checkpoint\n"
	        "  --init-from FILE          start the encoder from a safetensors file (torchvision names,\n"
	        "                            e.g. from ssl-export or PyTorch); --arch, --stem, --width and\n"
	        "                            the normalisation default to the file's\n"
	        "  --batch N                 pairs (simclr) or images (supervised) per step (256)\n"
	        "  --min-tail N              an epoch's last batch with fewer records is not trained on\n"
	        "                            (half the batch; 1 trains on every tail)\n"
	        "  --temperature T           NT-Xent temperature (0.5)\n"
	        "  --optim O                 sgd, lars or adamw (sgd)\n"
	        "  --lr X                    base learning rate, times batch/256 (sgd 0.06, lars 0.3, adamw 0.001)\n"
	        "  --lr-abs                  use --lr as is, without the batch/256 scaling\n"
	        "  --wd X                    weight decay (sgd 5e-4, lars 1e-6, adamw 0.01)\n"
	        "  --momentum X              momentum for sgd and lars (0.9)\n"
	        "  --nesterov                Nesterov momentum for sgd and lars\n"
	        "  --warmup-epochs X         linear warm-up epochs before the cosine decay (0)\n"
	        "  --warmup-steps N          warm-up in steps (overrides --warmup-epochs)\n"
	        "  --steps N                 schedule length in steps (default: from the stream header);\n"
	        "                            0 writes the untrained model (random-init baseline)\n"
	        "  --budget DURATION         train for this wall time (e.g. 45m, 2h, 1h30m): the schedule is\n"
	        "                            laid over the steps that fit, measured on the first 25\n"
	        "  --seed N                  initialisation seed (0)\n"
	        "  --checkpoint-every N[e]   checkpoint every N steps, or every N epochs with e (1e)\n"
	        "  --resume MODEL            continue the run saved in MODEL exactly\n"
	        "  --log FILE                TSV log: step epoch loss lr images_per_s contrastive_top1 monitor_knn_top1\n"
	        "  --log-every K             a log row every K steps (1); epoch ends always get one\n"
	        "  --monitor FILE            labelled images stream: kNN top-1 every epoch (even ids bank, odd ids queries)\n"
	        "  --plot FILE               PNG plot of the log at the end (default with --log: MODEL.png)\n"
	        "  --mean M[,M...]           per-channel mean on 0..1 pixels (default: from the first batch)\n"
	        "  --std S[,S...]            per-channel standard deviation (default: from the first batch)\n"
	        "  --input-size HxWxC        with --steps 0: the input size, so no stream is read\n"
	        "  --precision P             fp32, bf16 (convolutions and head products in bf16, fp32 sums;\n"
	        "                            needs avx512_bf16) or auto (bf16 where the CPU has it) (fp32;\n"
	        "                            with --resume: the checkpoint's)\n"
	        "  --sync-bn                 ssl-train-mpi: BatchNorm statistics over all ranks' batches\n"
	        "  --timeout S               ssl-train-mpi: end the job when the ranks wait S seconds for one (1800; 0 never)\n"
	        "  --verbose                 print the ISA level and the model, one line per layer\n", PROG);
	cli_help_shared(fp, 28, 0);
}

static int
parse_floats(const char *opt, const char *s, float *out, int max)
{
	char *copy = xstrdup(s), *save = NULL;
	int n = 0;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (n == max)
			die_usage("%s: more than %d values", opt, max);
		out[n++] = (float)opt_f64(opt, tok, -1e6, 1e6);
	}
	free(copy);
	if (n == 0)
		die_usage("%s: no values in '%s'", opt, s);
	return n;
}

static void
parse_input_size(const char *s, ModelConfig *c)
{
	char buf[64], err[128], *x;
	int h, w;
	if (strlen(s) >= sizeof buf || !(x = strrchr(strcpy(buf, s), 'x')))
		die_usage("--input-size: '%s' is not HxWxC", s);
	*x = '\0';
	if (parse_hw(buf, MODEL_MAX_SIDE, &h, &w, err, sizeof err) < 0 || !strchr(buf, 'x'))
		die_usage("--input-size: '%s' is not HxWxC", s);
	c->in_h = h;
	c->in_w = w;
	c->in_channels = (int)opt_i64("--input-size", x + 1, 1, MODEL_MAX_IN_CHANNELS);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	TrainSetup *s = &o->s;
	double lr = -1, wd = -1, momentum = -1;
	int c, nesterov = 0, width_given = 0;
	char err[256];
	memset(o, 0, sizeof *o);
	trainer_setup_default(s);
	s->model.width = 64;
	s->ckpt_every_epochs = 1;
	o->timeout = 1800;
	cli_init(&o->cli, PROG, usage, "o:", longopts);
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		if (c > 0 && c < OPT_END)
			o->given[c] = 1;
		switch (c) {
		case 'o': s->out_path = optarg; break;
		case OPT_ARCH:
			if (model_arch_parse(optarg, &s->model.arch) < 0)
				die_usage("--arch: '%s' is not resnet18, resnet34 or resnet50", optarg);
			break;
		case OPT_STEM:
			if (model_stem_parse(optarg, &s->model.stem) < 0)
				die_usage("--stem: '%s' is not cifar or imagenet", optarg);
			break;
		case OPT_WIDTH: s->model.width = (int)opt_i64("--width", optarg, 1, MODEL_MAX_WIDTH); width_given = 1; break;
		case OPT_ZIR: s->model.zero_init_residual = 1; break;
		case OPT_PROJ_LAYERS: s->model.proj_layers = (int)opt_i64("--proj-layers", optarg, 2, 3); break;
		case OPT_PROJ_HIDDEN: s->model.proj_hidden = (int)opt_i64("--proj-hidden", optarg, 1, MODEL_MAX_PROJ); break;
		case OPT_PROJ_DIM: s->model.proj_dim = (int)opt_i64("--proj-dim", optarg, 1, MODEL_MAX_PROJ); break;
		case OPT_OBJECTIVE:
			if (strcmp(optarg, "simclr") == 0)
				s->objective = OBJECTIVE_SIMCLR;
			else if (strcmp(optarg, "supervised") == 0)
				s->objective = OBJECTIVE_SUPERVISED;
			else
				die_usage("--objective: '%s' is not simclr or supervised", optarg);
			break;
		case OPT_INIT: o->init = optarg; break;
		case OPT_INIT_FROM: o->init_from = optarg; break;
		case OPT_BATCH: s->batch = (int)opt_i64("--batch", optarg, 1, 1 << 16); break;
		case OPT_MIN_TAIL: s->min_tail = (int)opt_i64("--min-tail", optarg, 1, 1 << 16); break;
		case OPT_BUDGET: s->budget_s = opt_duration("--budget", optarg); break;
		case OPT_TEMP: s->temperature = opt_f64("--temperature", optarg, 1e-4, 1e4); break;
		case OPT_OPTIM: {
			OptimKind k;
			if (optim_kind_parse(optarg, &k) < 0)
				die_usage("--optim: '%s' is not sgd, lars or adamw", optarg);
			optim_config_default(&s->optim, k);
			break;
		}
		case OPT_LR: lr = opt_f64("--lr", optarg, 0, 1e30); break;
		case OPT_LR_ABS: s->lr_abs = 1; break;
		case OPT_WD: wd = opt_f64("--wd", optarg, 0, 10); break;
		case OPT_MOMENTUM: momentum = opt_f64("--momentum", optarg, 0, 0.9999); break;
		case OPT_NESTEROV: nesterov = 1; break;
		case OPT_WARMUP_EPOCHS: s->warmup_epochs = opt_f64("--warmup-epochs", optarg, 0, 1e6); break;
		case OPT_WARMUP_STEPS: s->warmup_steps = opt_i64("--warmup-steps", optarg, 0, INT64_C(1) << 40); break;
		case OPT_STEPS: s->steps = opt_i64("--steps", optarg, 0, INT64_C(1) << 40); break;
		case OPT_SEED: s->seed = (uint64_t)opt_i64("--seed", optarg, 0, INT64_MAX); break;
		case OPT_CKPT_EVERY: {
			size_t n = strlen(optarg);
			char buf[32];
			int epochs = n > 0 && optarg[n - 1] == 'e';
			if (n >= sizeof buf)
				die_usage("--checkpoint-every: '%s' is not N or Ne", optarg);
			snprintf(buf, sizeof buf, "%.*s", (int)(n - epochs), optarg);
			if (parse_i64(buf, 1, INT64_C(1) << 40, epochs ? &s->ckpt_every_epochs : &s->ckpt_every_steps, err,
			              sizeof err) < 0)
				die_usage("--checkpoint-every: '%s' is not N (steps) or Ne (epochs)", optarg);
			if (epochs)
				s->ckpt_every_steps = 0;
			else
				s->ckpt_every_epochs = 0;
			break;
		}
		case OPT_RESUME: o->resume = optarg; break;
		case OPT_PRECISION:
			if (model_precision_parse(optarg, &o->precision) < 0)
				die_usage("--precision: '%s' is not fp32, bf16 or auto", optarg);
			break;
		case OPT_LOG: s->log_path = optarg; break;
		case OPT_LOG_EVERY: s->log_every = opt_i64("--log-every", optarg, 1, INT64_C(1) << 40); break;
		case OPT_MONITOR: s->monitor_path = optarg; break;
		case OPT_PLOT: o->plot = optarg; break;
		case OPT_MEAN: s->nnorm = parse_floats("--mean", optarg, s->mean, 16); break;
		case OPT_STD: o->nstd = parse_floats("--std", optarg, s->std, 16); break;
		case OPT_INPUT_SIZE: parse_input_size(optarg, &s->model); o->has_input_size = 1; break;
		case OPT_SYNC_BN: s->sync_bn = 1; break;
		case OPT_TIMEOUT: o->timeout = opt_f64("--timeout", optarg, 0, 1e9); break;
		case OPT_VERBOSE: s->verbose = 1; break;
		case OPT_EPOCHS:
			die_usage("--epochs: the input says how many epochs there are (ssl-decode --epochs N); "
			          "ssl-train trains until it ends, or for --steps N");
		}
	}
	s->quiet = o->cli.quiet;
	s->progress = o->cli.progress;
#ifndef SSL_MPI
	if (o->given[OPT_SYNC_BN] || o->given[OPT_TIMEOUT])
		die_usage("%s: only for data-parallel training (ssl-train-mpi under mpirun)",
		          o->given[OPT_SYNC_BN] ? "--sync-bn" : "--timeout");
#endif
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!s->out_path)
		die_usage("-o MODEL is required");
	if (atomicfile_check(s->out_path) < 0)   /* now, not at the first checkpoint */
		die("%s: %s", s->out_path, strerror(errno));
	if (lr < 0)
		lr = s->optim.kind == OPTIM_LARS ? 0.3 : s->optim.kind == OPTIM_ADAMW ? 0.001 : 0.06;
	s->lr = lr;
	if (wd >= 0)
		s->optim.weight_decay = (float)wd;
	if (momentum >= 0)
		s->optim.momentum = (float)momentum;
	s->optim.nesterov = nesterov;
	if (!o->given[OPT_PROJ_HIDDEN])
		s->model.proj_hidden = 32 * s->model.width;
	(void)width_given;
	if ((s->nnorm > 0) != (o->nstd > 0) || (s->nnorm && s->nnorm != o->nstd))
		die_usage("--mean and --std go together, with as many values");
	for (int i = 0; i < o->nstd; i++)
		if (!(s->std[i] > 0))
			die_usage("--std: values must be above 0");
	if (o->init && s->objective != OBJECTIVE_SUPERVISED)
		die_usage("--init is for --objective supervised");
	if (o->init && o->resume)
		die_usage("--init and --resume do not go together (a resumed run has its weights)");
	if (o->init_from && (o->init || o->resume))
		die_usage("--init-from and %s do not go together", o->init ? "--init" : "--resume");
	if (o->has_input_size && s->steps != 0)
		die_usage("--input-size is only for --steps 0 (otherwise the stream gives the size)");
	if (o->has_input_size && o->input)
		die_usage("--input-size: no input is read, remove '%s'", o->input);
	if (o->resume && s->steps == 0)
		die_usage("--resume with --steps 0 makes nothing");
	if (o->plot && !s->log_path)
		die_usage("--plot needs --log");
	if (s->budget_s > 0 && o->given[OPT_STEPS])
		die_usage("--budget and --steps: give one (the budget decides the steps)");
	if (s->budget_s > 0 && o->resume) {
		note("--budget: a resumed run keeps the plan its checkpoint recorded");
		s->budget_s = 0;
	}
}

/* With --resume the run's settings come from the checkpoint; a setting
 * given again must agree (the documented resume command repeats them). */
static void
check_resume(const Options *o, const Checkpoint *ck)
{
	const TrainSetup *s = &o->s;
	const ModelConfig *c = &ck->config;
	const CheckpointTrain *t = &ck->train;
	char what[512] = "";
	size_t u = 0;
#define DIFF(opt, cond, fmt, ...)                                                                       \
	do {                                                                                                \
		if (o->given[opt] && (cond) && u < sizeof what)                                               \
			u += (size_t)snprintf(what + u, sizeof what - u, "%s" fmt, u ? "; " : "", __VA_ARGS__);   \
	} while (0)
	if (!ck->has_train || !ck->has_optim)
		die("%s: no training state (an untrained or exported model cannot be resumed)", o->resume);
	DIFF(OPT_ARCH, s->model.arch != c->arch, "--arch %s, the checkpoint has %s", model_arch_name(s->model.arch),
	     model_arch_name(c->arch));
	DIFF(OPT_STEM, s->model.stem != c->stem, "--stem %s, the checkpoint has %s", model_stem_name(s->model.stem),
	     model_stem_name(c->stem));
	DIFF(OPT_WIDTH, s->model.width != c->width, "--width %d, the checkpoint has %d", s->model.width, c->width);
	DIFF(OPT_PROJ_LAYERS, s->model.proj_layers != c->proj_layers, "--proj-layers %d, the checkpoint has %d",
	     s->model.proj_layers, c->proj_layers);
	DIFF(OPT_PROJ_HIDDEN, s->model.proj_hidden != c->proj_hidden, "--proj-hidden %d, the checkpoint has %d",
	     s->model.proj_hidden, c->proj_hidden);
	DIFF(OPT_PROJ_DIM, s->model.proj_dim != c->proj_dim, "--proj-dim %d, the checkpoint has %d", s->model.proj_dim,
	     c->proj_dim);
	DIFF(OPT_BATCH, s->batch != t->batch, "--batch %d, the checkpoint has %d", s->batch, t->batch);
	DIFF(OPT_MIN_TAIL, s->min_tail != t->min_tail, "--min-tail %d, the checkpoint has %d", s->min_tail,
	     t->min_tail);
	DIFF(OPT_OPTIM, s->optim.kind != ck->optim.kind, "--optim %s, the checkpoint has %s",
	     optim_kind_name(s->optim.kind), optim_kind_name(ck->optim.kind));
	DIFF(OPT_LR, s->lr != t->lr_arg, "--lr %g, the checkpoint has %g", s->lr, t->lr_arg);
	DIFF(OPT_WD, s->optim.weight_decay != ck->optim.weight_decay, "--wd %g, the checkpoint has %g",
	     s->optim.weight_decay, ck->optim.weight_decay);
	DIFF(OPT_MOMENTUM, s->optim.momentum != ck->optim.momentum, "--momentum %g, the checkpoint has %g",
	     s->optim.momentum, ck->optim.momentum);
	DIFF(OPT_TEMP, s->temperature != t->temperature, "--temperature %g, the checkpoint has %g", s->temperature,
	     t->temperature);
	DIFF(OPT_SEED, s->seed != t->seed, "--seed %llu, the checkpoint has %llu", (unsigned long long)s->seed,
	     (unsigned long long)t->seed);
	DIFF(OPT_OBJECTIVE, strcmp(s->objective == OBJECTIVE_SIMCLR ? "simclr" : "supervised", t->objective) != 0,
	     "--objective %s, the checkpoint has %s", s->objective == OBJECTIVE_SIMCLR ? "simclr" : "supervised",
	     t->objective);
	DIFF(OPT_STEPS, s->steps != t->total_steps, "--steps %lld, the checkpoint's schedule has %lld",
	     (long long)s->steps, (long long)t->total_steps);
	DIFF(OPT_MEAN, 1, "%s", "--mean/--std: the checkpoint's normalisation is used");
#undef DIFF
	if (u)
		die("%s: does not match the options: %s", o->resume, what);
	if (o->cli.threads && t->threads && o->cli.threads != t->threads)
		warn("--threads %d; the checkpoint's run used %d: the result will not be bitwise identical to an "
		     "uninterrupted run", o->cli.threads, t->threads);
	if (t->step >= t->total_steps)
		die("%s: the run is complete (step %lld of %lld)", o->resume, (long long)t->step, (long long)t->total_steps);
}

/* --precision: what this CPU runs (a clear error for bf16 without
 * avx512_bf16; auto falls back to fp32 with a note). A resumed run keeps
 * its checkpoint's precision unless told otherwise (a bf16 checkpoint on a
 * CPU without avx512_bf16 then needs --precision fp32); changing it works
 * (the checkpoint is fp32) but is not the uninterrupted run bit for bit. */
static void
resolve_precision(Options *o, const Checkpoint *ck)
{
	char msg[256];
	if (ck && !o->given[OPT_PRECISION] && model_precision_parse(ck->train.precision, &o->precision) < 0)
		o->precision = PRECISION_FP32;
	if (model_precision_resolve(o->precision, &o->s.precision, msg, sizeof msg) < 0)
		die("%s", msg);
	if (msg[0])
		note("%s", msg);
	if (ck && o->given[OPT_PRECISION] && strcmp(ck->train.precision, model_precision_name(o->s.precision)) != 0)
		warn("--precision %s; the checkpoint's run used %s: the result will not be bitwise identical to an "
		     "uninterrupted run", model_precision_name(o->s.precision), ck->train.precision);
}

/* --init-from: the encoder the file holds (from its metadata, else from
 * its tensors) gives --arch, --stem and --width when they are not given,
 * and its normalisation the --mean/--std. Names and shapes are checked
 * against the model when it is built. */
static void
setup_init_from(Options *o, ModelFile *f)
{
	TrainSetup *s = &o->s;
	ModelConfig fc;
	char err[1024];
	int rc;
	if (modelfile_open(f, o->init_from, MODELFILE_SAFETENSORS, err, sizeof err) < 0)
		die("--init-from: %s", err);
	rc = f->has_config;
	fc = f->config;
	if (rc == 0 && safetensors_infer_config(&f->st, &fc, err, sizeof err) < 0)
		die("%s (not a ResNet encoder under torchvision's names)", err);
	if (!o->given[OPT_ARCH])
		s->model.arch = fc.arch;
	if (!o->given[OPT_STEM])
		s->model.stem = fc.stem;
	if (!o->given[OPT_WIDTH]) {
		s->model.width = fc.width;
		if (!o->given[OPT_PROJ_HIDDEN])
			s->model.proj_hidden = 32 * fc.width;
	}
	if (rc == 1 && !s->nnorm) {
		s->nnorm = fc.in_channels;
		memcpy(s->mean, f->mean, sizeof(float) * (size_t)fc.in_channels);
		memcpy(s->std, f->std, sizeof(float) * (size_t)fc.in_channels);
	} else if (rc == 0 && !s->nnorm) {
		warn("%s has no normalisation metadata: give --mean/--std as its weights were trained with "
		     "(otherwise they come from the first batch)", o->init_from);
	}
	s->init_from = &f->st;
}

static void
on_signal(int sig)
{
	got_signal = sig;
	if (sig != SIGUSR1)
		dist_note_signal(signal_dist);
	/* The input now reads as ended: a read blocked on a live upstream (or
	 * the rest of a partly done fread) returns at once, and the loop
	 * stops after the current step. dup2 is async-signal-safe. */
	if (input_fd >= 0 && devnull_fd >= 0)
		dup2(devnull_fd, input_fd);
}

static void
catch_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: a blocked read returns, so the loop sees the flag.
	 * SA_RESETHAND: a second signal kills at once (the file on disk is
	 * never torn: checkpoints are written atomically). */
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* mpirun forwards SIGUSR1 to every rank (SIGTERM makes it kill them
	 * within seconds): the way to stop a data-parallel run with a checkpoint */
	sigaction(SIGUSR1, &sa, NULL);
}

static void
make_plot(const Options *o)
{
	char path[4096];
	const char *png = o->plot;
	if (!o->s.log_path)
		return;
	if (!png) {
		const char *dot = strrchr(o->s.out_path, '.'), *slash = strrchr(o->s.out_path, '/');
		int n = dot && (!slash || dot > slash) ? (int)(dot - o->s.out_path) : (int)strlen(o->s.out_path);
		snprintf(path, sizeof path, "%.*s.png", n, o->s.out_path);
		png = path;
	}
	{
		char err[512];
		if (plot_log_tsv(o->s.log_path, png, err, sizeof err) < 0)
			warn("plot: %s", err);
		else
			note("plot written to %s", png);
	}
}

#ifdef SSL_MPI
/* Data-parallel defaults: OpenMP threads are the cores of this rank (its
 * CPU binding, and at most this host's CPUs shared among its ranks). */
static int
rank_threads(const Dist *d)
{
	cpu_set_t set;
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	int bound = online > 0 ? (int)online : 1, share;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		bound = CPU_COUNT(&set);
	share = online > 0 ? (int)(online / (d->local_size > 0 ? d->local_size : 1)) : 1;
	share = share < 1 ? 1 : share;
	return bound < share ? bound : share;
}
#endif

/* Ends the run: every rank finishes MPI (all reach here together, or the
 * job is being torn down anyway). */
static int
finish(Dist *d, int rc)
{
	if (d)
		dist_finalize(d);
	return rc;
}

int
main(int argc, char *argv[])
{
	Options o;
	ModelFile resume, init, init_from;
	StreamReader *in;
	FILE *fp;
	const StreamHeader *h;
	StreamHeader prov;
	Trainer *t;
	TrainStatus st;
	Dist *d = NULL;
	char err[1024];
	int rc = 0, rank = 0;

	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	set_quiet(o.cli.quiet); /* before MPI starts; cli_apply below, once the threads are known */
#ifdef SSL_MPI
	{
		static char name[64];
		if (!(d = dist_mpi_open(&argc, &argv, o.timeout, err, sizeof err)))
			die("%s", err);
		rank = dist_rank(d);
		if (dist_size(d) > 1) { /* every message names its rank; rank 0 alone reports progress */
			snprintf(name, sizeof name, "%s: rank %d", getprogname_ssl(), rank);
			setprogname(name);
			if (rank != 0) {
				o.cli.quiet = 1;
				o.s.quiet = 1;
				o.s.progress = 0;
				o.s.verbose = 0;
			}
		}
		if (!o.cli.threads && !getenv("OMP_NUM_THREADS"))
			o.cli.threads = rank_threads(d);
		o.s.dist = d;
		signal_dist = d;
	}
#endif
	cli_apply(&o.cli);
	memset(&resume, 0, sizeof resume); /* safe to free */
	memset(&init, 0, sizeof init);
	memset(&init_from, 0, sizeof init_from);
	if (o.init_from)
		setup_init_from(&o, &init_from);
	if (o.resume) {
		if (modelfile_open(&resume, o.resume, MODELFILE_CHECKPOINT, err, sizeof err) < 0)
			die("--resume: %s", err);
		check_resume(&o, &resume.ck);
		o.s.resume = &resume.ck;
	}
	resolve_precision(&o, o.resume ? &resume.ck : NULL);
	if (o.init) {
		if (modelfile_open(&init, o.init, MODELFILE_CHECKPOINT, err, sizeof err) < 0)
			die("--init: %s", err);
		o.s.init = &init.ck;
	}
	if (o.has_input_size) {
		stream_header_init(&prov, STREAM_KIND_VIEWS);
		stream_header_add_provenance(&prov, argc, argv);
		o.s.nprov = prov.nprov;
		o.s.prov = prov.prov;
		if (rank == 0) {
			if (trainer_write_untrained(&o.s, err, sizeof err) < 0)
				die("%s", err);
			if (o.init_from)
				note("model with the encoder of %s written to %s", o.init_from, o.s.out_path);
			else
				note("untrained model (seed %llu) written to %s", (unsigned long long)o.s.seed,
				     o.s.out_path);
		}
		stream_header_free(&prov);
		modelfile_free(&init_from);
		return finish(d, 0);
	}

	if (!o.input || strcmp(o.input, "-") == 0) {
		fp = stdin;
		in = stream_reader_open(fp, "<stdin>");
	} else {
		if (!(fp = fopen(o.input, "rb")))
			die("%s:", o.input);
		in = stream_reader_open(fp, o.input);
	}
	input_fd = fileno(fp);
	devnull_fd = open("/dev/null", O_RDONLY);
	if (!(h = stream_reader_header(in)))
		die("%s", stream_reader_error(in));
	if (!o.resume && o.s.steps < 0 && (h->records_per_epoch <= 0 || h->epochs <= 0))
		die_usage("%s: the header does not say how many records per epoch and epochs; give --steps",
		          stream_reader_name(in));
	if (!o.resume && o.s.warmup_epochs > 0 && o.s.warmup_steps < 0 && h->records_per_epoch <= 0)
		die_usage("--warmup-epochs: %s does not say how many records an epoch has; give --warmup-steps",
		          stream_reader_name(in));
	stream_header_copy(&prov, h);
	stream_header_add_provenance(&prov, argc, argv);
	o.s.nprov = prov.nprov;
	o.s.prov = prov.prov;
	o.s.stop = &got_signal;
	if (!(t = trainer_new(&o.s, in, err, sizeof err))) {
		if (err[0]) /* data-parallel: a message the ranks share comes from rank 0 */
			warn("%s", err);
		rc = 1;
		goto cleanup;   /* the reader and the provenance are freed there (LeakSanitizer) */
	}
	catch_signals();
	st = trainer_run(t, err, sizeof err);
	if (st == TRAIN_DONE) {
		note("%lld steps done; model written to %s", (long long)trainer_step(t), o.s.out_path);
		if (rank == 0)
			make_plot(&o);
	} else if (st == TRAIN_INTERRUPTED || st == TRAIN_TRUNCATED) {
		if (err[0] && (rank == 0 || st == TRAIN_TRUNCATED))
			warn("%s", err);
		if (trainer_checkpoint_written(t) && rank == 0) {
			char cmd[8192];
			if (d && dist_size(d) > 1)
				trainer_resume_command_mpi(cmd, sizeof cmd, h->prov, h->nprov, fp == stdin, argc, argv,
				                           o.s.out_path, trainer_epoch(t), dist_size(d));
			else
				trainer_resume_command(cmd, sizeof cmd, h->prov, h->nprov, fp == stdin, argc, argv, o.s.out_path,
				                       trainer_epoch(t));
			warn("to resume: %s", cmd);
		}
		rc = st == TRAIN_TRUNCATED ? 1 : 128 + (got_signal ? got_signal : SIGTERM);
	} else if (st == TRAIN_DIVERGED) {
		if (rank == 0)
			warn("%s; %s", err,
			     trainer_checkpoint_written(t) || o.resume ? "the last checkpoint is intact"
			                                               : "no checkpoint was written");
		rc = 1;
	} else {
		if (err[0])
			warn("%s", err);
		rc = 1;
	}
cleanup:
	trainer_free(t);
	stream_reader_close(in);
	if (fp != stdin)
		fclose(fp);
	stream_header_free(&prov);
	modelfile_free(&resume);
	modelfile_free(&init);
	modelfile_free(&init_from);
	return finish(d, rc);
}
