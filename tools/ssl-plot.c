/* ssl-plot: pictures for people: the training curves of an ssl-train log,
 * and a 2-D PCA map of an embeddings stream coloured by class. See
 * ssl-plot(1); the drawing lives in lib/eval/plot.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "eval/plot.h"
#include "base/progress.h"
#include "base/rng.h"
#include "io/stream.h"
#include "base/util.h"

typedef struct {
	const char *command;   /* "curves" or "embed" */
	const char *input;
	const char *output;
	int64_t     max_points;
	uint64_t    seed;
	Cli         cli;
} Options;

enum { OPT_OUTPUT = 'o', OPT_MAX_POINTS = 256, OPT_SEED };

static const struct option longopts[] = {
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "max-points", required_argument, NULL, OPT_MAX_POINTS },
	{ "seed", required_argument, NULL, OPT_SEED },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-plot curves LOG.tsv -o FILE.png\n"
	        "       ssl-plot embed [EMBEDDINGS] -o FILE.png [--max-points N] [--seed S]\n"
	        "  curves                the loss, contrastive top-1, monitor kNN top-1 and learning rate\n"
	        "                        of an ssl-train log (TSV) against step\n"
	        "  embed                 a 2-D PCA map of an embeddings stream (stdin when absent or -),\n"
	        "                        coloured by class, with the class names of its header\n"
	        "  -o, --output FILE     the PNG to write (required)\n"
	        "  --max-points N        embed: draw a uniform random sample of N records (5000)\n"
	        "  --seed S              embed: seed of that sample (0)\n");
	cli_help_shared(fp, 24, 0);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	int c;
	memset(o, 0, sizeof *o);
	cli_init(&o->cli, "ssl-plot", usage, "o:", longopts);
	o->cli.blas_threads = 1; /* PCA calls BLAS itself (parallel.h) */
	o->max_points = 5000;
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (c) {
		case OPT_OUTPUT: o->output = optarg; break;
		case OPT_MAX_POINTS: o->max_points = opt_i64("--max-points", optarg, 2, 10000000); break;
		case OPT_SEED: o->seed = (uint64_t)opt_i64("--seed", optarg, 0, INT64_MAX); break;
		}
	}
	if (optind >= argc)
		die_usage("a command is needed: curves or embed");
	o->command = argv[optind++];
	if (strcmp(o->command, "curves") != 0 && strcmp(o->command, "embed") != 0)
		die_usage("unknown command '%s' (curves or embed)", o->command);
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->output)
		die_usage("-o FILE.png is needed");
	if (strcmp(o->command, "curves") == 0 && !o->input)
		die_usage("curves: the log file is needed");
}

/* Reads the stream keeping a uniform random sample of at most max records
 * (reservoir sampling, Algorithm R): memory stays max x D whatever the size
 * of the input, and the sample depends only on the seed and the stream. */
static int64_t
sample_stream(const Options *o, StreamReader *r, float **xout, int64_t **yout, int *dim)
{
	Record rec;
	int rc, D = 0;
	char err[256];
	float *x = NULL;
	int64_t *y = NULL, seen = 0, kept = 0;
	Rng rng = rng_for(o->seed, 0, RNG_DOMAIN_SPLIT, 0);
	const StreamHeader *h = stream_reader_header(r);
	Progress pg;
	progress_init(&pg, "read", "records", stream_header_records(h), o->cli.progress, o->cli.quiet);
	while ((rc = stream_reader_next(r, &rec)) > 0) {
		const Tensor *t = record_tensor(&rec, "embedding", DTYPE_F32, 1, err, sizeof err);
		if (!t)
			die("%s", err);
		if (seen == 0) {
			if (t->shape[0] < 2 || t->shape[0] > (1 << 20))
				die("%s: record 1 (id %lld): embedding of %lld dimensions; the map needs 2 to %d",
				    stream_reader_name(r), (long long)rec.id, (long long)t->shape[0], 1 << 20);
			D = (int)t->shape[0];
			x = xcalloc((size_t)o->max_points, (size_t)D * sizeof *x);
			y = xcalloc((size_t)o->max_points, sizeof *y);
		} else if (t->shape[0] != D) {
			die("%s: embedding of %lld dimensions, the first had %d", stream_at_reader(r, rec.id).s,
			    (long long)t->shape[0], D);
		}
		int64_t slot = kept < o->max_points ? kept++ : (int64_t)rng_below(&rng, (uint64_t)seen + 1);
		seen++;
		if (slot < o->max_points) {
			memcpy(x + (size_t)slot * (size_t)D, t->data, (size_t)D * sizeof *x);
			y[slot] = rec.label;
		}
		progress_update(&pg, seen, NULL);
	}
	if (rc < 0)
		die("%s", stream_reader_error(r));
	progress_finish(&pg, seen, NULL);
	*xout = x;
	*yout = y;
	*dim = D;
	return kept;
}

static void
plot_embed(const Options *o)
{
	char err[512];
	StreamReader *r = stream_reader_open_or_die(o->input, STREAM_KIND_EMBEDDINGS);
	const StreamHeader *h = stream_reader_header(r);
	float *x = NULL;
	int64_t *y = NULL;
	int D = 0;
	int64_t n = sample_stream(o, r, &x, &y, &D);
	if (n < 2)
		die("%s: %lld records; a map needs at least 2", stream_reader_name(r), (long long)n);
	/* Draw in a random order, so that no class is always painted last. */
	float *xs = xcalloc((size_t)n, (size_t)D * sizeof *xs);
	int64_t *ys = xcalloc((size_t)n, sizeof *ys), *perm = xcalloc((size_t)n, sizeof *perm);
	for (int64_t i = 0; i < n; i++)
		perm[i] = i;
	Rng rng = rng_for(o->seed, 0, RNG_DOMAIN_SHUFFLE, 0);
	rng_shuffle_i64(&rng, perm, n);
	for (int64_t i = 0; i < n; i++) {
		memcpy(xs + (size_t)i * (size_t)D, x + (size_t)perm[i] * (size_t)D, (size_t)D * sizeof *xs);
		ys[i] = y[perm[i]];
	}
	const char *what = o->input && strcmp(o->input, "-") != 0 ? o->input : "<stdin>";
	if (plot_embed_pca(o->output, what, xs, ys, n, D, h->nclasses, h->classes, err, sizeof err) < 0)
		die("%s", err);
	note("%s: %lld points of %d dimensions", o->output, (long long)n, D);
	free(x);
	free(y);
	free(xs);
	free(ys);
	free(perm);
	stream_reader_close(r);
}

int
main(int argc, char *argv[])
{
	Options o;
	char err[512];
	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	cli_apply(&o.cli);
	if (strcmp(o.command, "curves") == 0) {
		if (plot_log_tsv(o.input, o.output, err, sizeof err) < 0)
			die("%s", err);
	} else {
		plot_embed(&o);
	}
	return 0;
}
