/* ssl-probe: train a probe on frozen embeddings and report test accuracy.
 * See ssl-probe(1); the methods live in lib/eval/probe.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/cli.h"
#include "eval/classifier.h"
#include "eval/embed.h"
#include "eval/probe.h"
#include "base/progress.h"
#include "data/subset.h"
#include "base/util.h"

#define MAX_METHODS 3

typedef struct {
	const char *train, *test;
	ProbeMethod methods[MAX_METHODS];
	int         nmethods;
	ProbeConfig cfg;
	const char *labels;      /* NULL: all training labels */
	double      labels_frac;
	int64_t     labels_per_class;
	int         json;
	const char *save;        /* --save FILE */
	const char *predict;     /* --predict FILE */
	char      **inputs;      /* --predict: the embeddings (none: stdin) */
	int         ninputs;
	Cli         cli;
} Options;

enum {
	OPT_TRAIN = 256, OPT_TEST, OPT_METHOD, OPT_C, OPT_HOLDOUT, OPT_MAX_ITER, OPT_TOL, OPT_K, OPT_KNN_T, OPT_HIDDEN,
	OPT_EPOCHS, OPT_BATCH, OPT_LR, OPT_WD, OPT_PATIENCE, OPT_LABELS, OPT_SEED, OPT_JSON,
	OPT_CONFUSION, OPT_SAVE, OPT_PREDICT
};

static const struct option longopts[] = {
	{ "train", required_argument, NULL, OPT_TRAIN },
	{ "test", required_argument, NULL, OPT_TEST },
	{ "method", required_argument, NULL, OPT_METHOD },
	{ "C", required_argument, NULL, OPT_C },
	{ "holdout", required_argument, NULL, OPT_HOLDOUT },
	{ "max-iter", required_argument, NULL, OPT_MAX_ITER },
	{ "tol", required_argument, NULL, OPT_TOL },
	{ "k", required_argument, NULL, OPT_K },
	{ "knn-t", required_argument, NULL, OPT_KNN_T },
	{ "hidden", required_argument, NULL, OPT_HIDDEN },
	{ "epochs", required_argument, NULL, OPT_EPOCHS },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "lr", required_argument, NULL, OPT_LR },
	{ "weight-decay", required_argument, NULL, OPT_WD },
	{ "patience", required_argument, NULL, OPT_PATIENCE },
	{ "labels", required_argument, NULL, OPT_LABELS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "confusion", no_argument, NULL, OPT_CONFUSION },
	{ "save", required_argument, NULL, OPT_SAVE },
	{ "predict", required_argument, NULL, OPT_PREDICT },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-probe --train FILE --test FILE [--save PROBE] [options]\n"
	        "       ssl-probe --predict PROBE [--method M] [--json] [EMB...]\n"
	        "  --train FILE          embeddings stream to train the probe on (- for stdin)\n"
	        "  --test FILE           embeddings stream to report accuracy on (- for stdin)\n"
	        "  --method M[,M...]     linear, knn or mlp; repeatable (default linear)\n"
	        "  --C C                 linear: inverse L2 strength, lambda = 1/(C n) as in scikit-learn\n"
	        "                        (default: chosen on a held-out part of the training set)\n"
	        "  --holdout FRACTION    held-out part for choosing C and MLP early stopping (0.2)\n"
	        "  --max-iter N          linear: L-BFGS iterations at most (1000)\n"
	        "  --tol X               linear: stop when every gradient entry is below X, in the\n"
	        "                        whitened coordinates L-BFGS works in (1e-5)\n"
	        "  --k N                 knn: neighbours (200)\n"
	        "  --knn-t T             knn: temperature of the exp(sim/T) votes (0.1)\n"
	        "  --hidden N            mlp: hidden units (512)\n"
	        "  --epochs N            mlp: epochs at most (100)\n"
	        "  --batch N             mlp: minibatch size (256)\n"
	        "  --lr X                mlp: Adam learning rate (0.001)\n"
	        "  --weight-decay X      mlp: decoupled weight decay (0)\n"
	        "  --patience N          mlp: epochs without a better validation loss before stopping (10)\n"
	        "  --labels SPEC         train on a stratified subset: 1%%, 0.1 or N-per-class\n"
	        "  --seed N              seed for --labels, the held-out split and the MLP (0)\n"
	        "  --json                write the report as JSON; with --predict, one JSON object per line\n"
	        "  --confusion           show the confusion matrix for any number of classes (default: up to 20)\n"
	        "  --save PROBE          keep the trained linear and mlp classifiers in the probe file PROBE\n"
	        "  --predict PROBE       predict the class of every record of EMB (stdin when none) with\n"
	        "                        the classifier of PROBE (--method picks one; default the first)\n");
	cli_help_shared(fp, 24, 0);
}

static void
add_methods(Options *o, const char *list)
{
	char *copy = xstrdup(list), *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		ProbeMethod m;
		if (probe_method_parse(tok, &m) < 0)
			die_usage("--method: '%s' is not linear, knn or mlp", tok);
		for (int i = 0; i < o->nmethods; i++)
			if (o->methods[i] == m)
				die_usage("--method: '%s' given twice", tok);
		o->methods[o->nmethods++] = m;
	}
	if (o->nmethods == 0)
		die_usage("--method: '%s' names no method", list);
	free(copy);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	int c;
	char err[256];
	memset(o, 0, sizeof *o);
	cli_init(&o->cli, "ssl-probe", usage, "", longopts);
	o->cli.blas_threads = 1; /* the probes call BLAS themselves (parallel.h) */
	probe_config_default(&o->cfg);
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (c) {
		case OPT_TRAIN: o->train = optarg; break;
		case OPT_CONFUSION: o->cfg.confusion = 1; break;
		case OPT_TEST: o->test = optarg; break;
		case OPT_METHOD: add_methods(o, optarg); break;
		case OPT_C:
			o->cfg.C = opt_f64("--C", optarg, 1e-12, 1e12);
			break;
		case OPT_HOLDOUT: o->cfg.val_frac = opt_f64("--holdout", optarg, 0.01, 0.9); break;
		case OPT_MAX_ITER: o->cfg.lbfgs.max_iter = (int)opt_i64("--max-iter", optarg, 1, 1000000); break;
		case OPT_TOL: o->cfg.lbfgs.gtol = opt_f64("--tol", optarg, 1e-12, 1); break;
		case OPT_K: o->cfg.k = (int)opt_i64("--k", optarg, 1, 1000000); break;
		case OPT_KNN_T: o->cfg.T = opt_f64("--knn-t", optarg, 1e-3, 1e3); break;
		case OPT_HIDDEN: o->cfg.mlp.hidden = (int)opt_i64("--hidden", optarg, 1, 65536); break;
		case OPT_EPOCHS: o->cfg.mlp.max_epochs = (int)opt_i64("--epochs", optarg, 1, 100000); break;
		case OPT_BATCH: o->cfg.mlp.batch = (int)opt_i64("--batch", optarg, 1, 65536); break;
		case OPT_LR: o->cfg.mlp.lr = opt_f64("--lr", optarg, 1e-9, 10); break;
		case OPT_WD: o->cfg.mlp.weight_decay = opt_f64("--weight-decay", optarg, 0, 10); break;
		case OPT_PATIENCE: o->cfg.mlp.patience = (int)opt_i64("--patience", optarg, 1, 100000); break;
		case OPT_LABELS:
			if (parse_label_spec(optarg, &o->labels_frac, &o->labels_per_class, err, sizeof err) < 0)
				die_usage("--labels: %s", err);
			o->labels = optarg;
			break;
		case OPT_SEED: o->cfg.seed = (uint64_t)opt_i64("--seed", optarg, 0, INT64_MAX); break;
		case OPT_JSON: o->json = 1; break;
		case OPT_SAVE: o->save = optarg; break;
		case OPT_PREDICT: o->predict = optarg; break;
		}
	}
	if (o->predict) {
		if (o->train || o->test || o->save || o->labels)
			die_usage("--predict takes no --train, --test, --save or --labels");
		if (o->nmethods > 1 || (o->nmethods && o->methods[0] == PROBE_KNN))
			die_usage("--predict: --method names one classifier, linear or mlp");
		o->inputs = argv + optind;
		o->ninputs = argc - optind;
		return;
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->train || !o->test)
		die_usage("both --train and --test are needed");
	if (strcmp(o->train, "-") == 0 && strcmp(o->test, "-") == 0)
		die_usage("--train and --test cannot both be stdin");
	if (o->nmethods == 0)
		o->methods[o->nmethods++] = PROBE_LINEAR;
	if (o->save && o->nmethods == 1 && o->methods[0] == PROBE_KNN)
		die_usage("--save: kNN keeps no classifier (add --method linear or mlp)");
}

/* ssl-probe --predict: one line per record of each input. */
static int
predict(const Options *o)
{
	ProbeFile pf;
	char err[1024];
	int which = 0, status = 0;
	if (probefile_load(&pf, o->predict, err, sizeof err) < 0)
		die("%s", err);
	if (o->nmethods && (which = probefile_find(&pf, o->methods[0])) < 0)
		die("%s: holds no %s classifier", o->predict, probe_method_name(o->methods[0]));
	for (int i = 0; i < (o->ninputs ? o->ninputs : 1); i++) {
		Embeddings e;
		int64_t known, correct;
		if (embed_load(&e, o->ninputs ? o->inputs[i] : "-", err, sizeof err) < 0)
			die("%s", err);
		if (probefile_check_input(&pf, o->predict, &e, err, sizeof err) < 0)
			die("%s", err);
		if (probefile_write_predictions(stdout, &pf, which, &e, o->json, i == 0, &known, &correct) < 0)
			die("<stdout>: write error:");
		if (known)
			note("%s: %lld of %lld labelled records predicted right (%.2f%%, %s)", e.name, (long long)correct,
			     (long long)known, 100.0 * (double)correct / (double)known,
			     probe_method_name(pf.clf[which].method));
		embed_free(&e);
	}
	probefile_free(&pf);
	status |= fshut(stdout, "<stdout>");
	return status;
}

/* One progress line per stage, restarted when the stage changes. */
typedef struct {
	Progress    p;
	char        stage[32];
	int         force, quiet, open;
	int64_t     done;
} ProgressState;

static const char *
progress_unit(const char *stage)
{
	return strcmp(stage, "knn") == 0 ? "queries" : strcmp(stage, "mlp") == 0 ? "epochs"
	     : strcmp(stage, "linear") == 0 ? "iterations" : "C values";
}

static void
progress_close(ProgressState *s)
{
	if (s->open)
		progress_finish(&s->p, s->done, NULL);
	s->open = 0;
	s->stage[0] = '\0';
}

static void
on_progress(void *ctx, const char *stage, int64_t done, int64_t total, const char *extra)
{
	ProgressState *s = ctx;
	if (strcmp(s->stage, stage) != 0) {
		progress_close(s);
		snprintf(s->stage, sizeof s->stage, "%s", stage);
		progress_init(&s->p, stage, progress_unit(stage), total, s->force, s->quiet);
		s->open = 1;
	}
	s->done = done;
	if (done >= total) {
		progress_finish(&s->p, done, extra);
		s->open = 0;
	} else {
		progress_update(&s->p, done, extra);
	}
}

int
main(int argc, char *argv[])
{
	Options o;
	Embeddings tr, te;
	char err[512], **names;
	int K, *class_ids;
	int64_t ntrain, *idx = NULL, *ytrain;
	float *xtrain;
	ProbeDataInfo info;
	ProgressState ps = { 0 };
	json_t *root = NULL, *results = NULL;

	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	cli_apply(&o.cli);
	if (o.predict)
		return predict(&o);
	ps.force = o.cli.progress;
	ps.quiet = o.cli.quiet;
	o.cfg.progress = (ProbeProgress){ on_progress, &ps };

	if (embed_load(&tr, o.train, err, sizeof err) < 0)
		die("%s", err);
	if (embed_load(&te, o.test, err, sizeof err) < 0)
		die("%s", err);
	if (embed_check_pair(&tr, &te, &K, &names, err, sizeof err) < 0)
		die("%s", err);
	embed_keep_present_classes(&tr, &te, &K, &names, &class_ids);
	{
		EncoderId a = embed_encoder_id(&te.header), b = embed_encoder_id(&tr.header);
		if (embed_check_encoder(te.name, &a, tr.name, &b, err, sizeof err) < 0)
			die("%s", err);
	}

	ntrain = tr.n;
	xtrain = tr.x;
	ytrain = tr.labels;
	if (o.labels) {
		idx = xcalloc((size_t)tr.n, sizeof *idx);
		ntrain = subset_stratified(tr.labels, tr.n, K, o.labels_frac, o.labels_per_class, o.cfg.seed, idx);
		xtrain = xreallocarray(NULL, (size_t)ntrain, (size_t)tr.dim * sizeof *xtrain);
		ytrain = xcalloc((size_t)ntrain, sizeof *ytrain);
		probe_gather(xtrain, ytrain, tr.x, tr.labels, tr.dim, idx, ntrain);
		note("--labels %s: %lld of %lld training items", o.labels, (long long)ntrain, (long long)tr.n);
	}
	info = (ProbeDataInfo){ tr.name, te.name, tr.n, ntrain, te.n, tr.dim, K, names, o.labels, o.cfg.seed, class_ids };
	if (o.json) {
		root = probe_data_json(&info);
		results = json_array();
	}
	ProbeFile pf;
	if (o.save) {
		EncoderId id = embed_encoder_id(&tr.header);
		probefile_init(&pf, tr.dim, K, names, &id, tr.name, ntrain);
	}
	for (int i = 0; i < o.nmethods; i++) {
		ProbeResult r;
		o.cfg.method = o.methods[i];
		probe_run(&r, &o.cfg, xtrain, ytrain, ntrain, te.x, te.labels, te.n, tr.dim, K);
		progress_close(&ps);
		if (o.json) {
			json_array_append_new(results, probe_result_json(&r, &info));
		} else {
			if (i > 0)
				putchar('\n');
			probe_report_text(stdout, &r, &info);
		}
		if (o.save)
			probefile_add(&pf, &r);
		probe_result_free(&r);
	}
	if (o.save) {
		if (probefile_save(o.save, &pf, err, sizeof err) < 0)
			die("%s", err);
		probefile_free(&pf);
	}
	if (o.json) {
		json_object_set_new(root, "results", results);
		if (json_dumpf(root, stdout, JSON_INDENT(2)) < 0)
			die("<stdout>: writing JSON failed");
		putchar('\n');
		json_decref(root);
	}
	if (o.labels) {
		free(xtrain);
		free(ytrain);
		free(idx);
	}
	embed_names_free(names, K);
	free(class_ids);
	embed_free(&tr);
	embed_free(&te);
	return fshut(stdout, "<stdout>");
}
