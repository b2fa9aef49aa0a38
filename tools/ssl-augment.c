/* ssl-augment: read an images stream, write a views stream of SimCLR
 * augmentations. See ssl-augment(1); the operations are lib/data/augment.
 *
 * Records are read in blocks, augmented in parallel (OpenMP) and written in
 * input order. Every random draw comes from rng_for(seed, epoch, id, view), so
 * the output is the same bytes for any --threads and --block. */
#include <getopt.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/augment.h"
#include "base/cli.h"
#include "io/png_write.h"
#include "base/progress.h"
#include "base/provargs.h"
#include "io/stream.h"
#include "base/util.h"

#define BLOCK_MAX_BYTES (64 << 20) /* a block stops growing past this many image + view bytes */
#define PREVIEW_MAX     64 /* --preview-count */

typedef struct {
	AugmentParams p;
	const char   *input;
	uint64_t      seed;
	int           block;
	Cli           cli;
	const char   *preview;
	int           preview_count;
} Options;

/* One record of a block: copies, because the reader's records are borrowed. */
typedef struct {
	int64_t  id, label, epoch, recno;
	int      has_source;
	char    *source;
	size_t   source_cap;
	int      H, W, C, oh, ow;
	uint8_t *img, *views;
	size_t   img_cap, views_cap;
} Slot;

enum { O_SCALE = 256, O_RATIO, O_FLIP, O_JITTER, O_JITTER_P, O_GRAY_P, O_BLUR_P, O_BLUR_SIGMA, O_SOL_P,
       O_SOL_T, O_SEED, O_BLOCK, O_PREVIEW, O_PREVIEW_N, O_LAST };
static const char optstring[] = "r:s:n:";
static const struct option longopts[] = {
	{ "recipe", required_argument, NULL, 'r' },        { "size", required_argument, NULL, 's' },
	{ "scale", required_argument, NULL, O_SCALE },     { "ratio", required_argument, NULL, O_RATIO },
	{ "flip", required_argument, NULL, O_FLIP },       { "jitter", required_argument, NULL, O_JITTER },
	{ "jitter-p", required_argument, NULL, O_JITTER_P }, { "gray-p", required_argument, NULL, O_GRAY_P },
	{ "blur-p", required_argument, NULL, O_BLUR_P },   { "blur-sigma", required_argument, NULL, O_BLUR_SIGMA },
	{ "solarize-p", required_argument, NULL, O_SOL_P }, { "solarize-threshold", required_argument, NULL, O_SOL_T },
	{ "views", required_argument, NULL, 'n' },         { "seed", required_argument, NULL, O_SEED },
	{ "block", required_argument, NULL, O_BLOCK },     { "preview", required_argument, NULL, O_PREVIEW },
	{ "preview-count", required_argument, NULL, O_PREVIEW_N }, { NULL, 0, NULL, 0 },
};
/* Left out of the provenance: they change how the work runs, not the stream. */
static const char *const run_only_long[] = { "threads", "block", "preview", "preview-count", "progress", "quiet", NULL };

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-augment --recipe NAME [options] [file]\n"
	        "Read an images stream, write a views stream of SimCLR augmentations.\n"
	        "  -r, --recipe NAME          cifar, stl10, imagenet, photo, mnist or none (required)\n"
	        "  -s, --size N|HxW           output size (recipe: 32, 96, 224, 96, 28; none: input size)\n"
	        "      --scale MIN,MAX        crop area fraction range (0.08,1; mnist 0.2,1)\n"
	        "      --ratio MIN,MAX        crop aspect ratio range (0.75,1.3333)\n"
	        "      --flip P               horizontal flip probability (0.5)\n"
	        "      --jitter B,C,S,H       colour jitter strengths (cifar 0.4,0.4,0.4,0.1)\n"
	        "      --jitter-p P           colour jitter probability (0.8)\n"
	        "      --gray-p P             grayscale probability (0.2; mnist 0)\n"
	        "      --blur-p P             Gaussian blur probability (stl10, imagenet 0.5)\n"
	        "      --blur-sigma MIN,MAX   blur sigma range (0.1,2)\n"
	        "      --solarize-p P         solarize probability (0)\n"
	        "      --solarize-threshold T levels >= T are inverted (128)\n"
	        "  -n, --views V              views per image (2; none 1)\n"
	        "      --seed S               random seed (0)\n"
	        "      --block N              records augmented per parallel block (256)\n"
	        "      --preview FILE.png     write a contact sheet: each row an image and its views\n"
	        "      --preview-count N      rows in the contact sheet (8)\n");
	cli_help_shared(fp, 29, 1);
}

/* "a,b,..." into exactly n numbers. */
static void
parse_list(const char *opt, const char *s, double *out, int n)
{
	char buf[256], *save = NULL, *tok;
	int k = 0;
	if (strlen(s) >= sizeof buf)
		die_usage("%s: '%s' is too long", opt, s);
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok && k < n; tok = strtok_r(NULL, ",", &save))
		out[k++] = opt_f64(opt, tok, -1e9, 1e9);
	if (k != n || tok)
		die_usage("%s: '%s' is not %d comma-separated numbers", opt, s, n);
}

static void
parse_options(int argc, char **argv, const Cli *cli, Options *o)
{
	/* Overrides are applied after the recipe, whatever the order on the command line. */
	static int given[O_LAST];
	double scale[2], ratio[2], jit[4], sigma[2], flip = 0, jitter_p = 0, gray_p = 0, blur_p = 0, sol_p = 0;
	int ch, h = 0, w = 0, sol_t = 0, views = 0;
	const char *recipe = NULL;
	char err[256];
	memset(o, 0, sizeof *o);
	o->cli = *cli;
	o->block = 256;
	o->preview_count = 8;
	while ((ch = cli_getopt(&o->cli, argc, argv)) != -1) {
		if (ch >= 0 && ch < O_LAST)
			given[ch] = 1;
		switch (ch) {
		case 'r': recipe = optarg; break;
		case 's':
			if (parse_hw(optarg, AUGMENT_MAX_SIDE, &h, &w, err, sizeof err) < 0)
				die_usage("--size: %s", err);
			break;
		case O_SCALE: parse_list("--scale", optarg, scale, 2); break;
		case O_RATIO: parse_list("--ratio", optarg, ratio, 2); break;
		case O_FLIP: flip = opt_f64("--flip", optarg, 0, 1); break;
		case O_JITTER: parse_list("--jitter", optarg, jit, 4); break;
		case O_JITTER_P: jitter_p = opt_f64("--jitter-p", optarg, 0, 1); break;
		case O_GRAY_P: gray_p = opt_f64("--gray-p", optarg, 0, 1); break;
		case O_BLUR_P: blur_p = opt_f64("--blur-p", optarg, 0, 1); break;
		case O_BLUR_SIGMA: parse_list("--blur-sigma", optarg, sigma, 2); break;
		case O_SOL_P: sol_p = opt_f64("--solarize-p", optarg, 0, 1); break;
		case O_SOL_T: sol_t = (int)opt_i64("--solarize-threshold", optarg, 0, 255); break;
		case 'n': views = (int)opt_i64("--views", optarg, 1, AUGMENT_MAX_VIEWS); break;
		case O_SEED: o->seed = (uint64_t)opt_i64("--seed", optarg, 0, INT64_MAX); break;
		case O_BLOCK: o->block = (int)opt_i64("--block", optarg, 1, 1 << 20); break;
		case O_PREVIEW: o->preview = optarg; break;
		case O_PREVIEW_N: o->preview_count = (int)opt_i64("--preview-count", optarg, 1, PREVIEW_MAX); break;
		}
	}
	if (optind < argc - 1)
		die_usage("one input file at most");
	o->input = optind < argc ? argv[optind] : "-";
	if (!recipe)
		die_usage("--recipe is required: cifar, stl10, imagenet, photo, mnist or none");
	AugmentParams *p = &o->p;
	if (augment_recipe(p, recipe) < 0)
		die_usage("--recipe: unknown recipe '%s' (cifar, stl10, imagenet, photo, mnist, none)", recipe);
	if (!p->random_crop && (given[O_SCALE] || given[O_RATIO]))
		die_usage("--scale and --ratio do not apply to --recipe none (a centre crop)");
	if (given['s']) {
		p->out_h = h;
		p->out_w = w;
	}
	if (given[O_SCALE]) {
		p->scale_min = scale[0];
		p->scale_max = scale[1];
	}
	if (given[O_RATIO]) {
		p->ratio_min = ratio[0];
		p->ratio_max = ratio[1];
	}
	if (given[O_JITTER]) {
		p->brightness = jit[0];
		p->contrast = jit[1];
		p->saturation = jit[2];
		p->hue = jit[3];
	}
	if (given[O_BLUR_SIGMA]) {
		p->blur_sigma_min = sigma[0];
		p->blur_sigma_max = sigma[1];
	}
	p->flip_p = given[O_FLIP] ? flip : p->flip_p;
	p->jitter_p = given[O_JITTER_P] ? jitter_p : p->jitter_p;
	p->gray_p = given[O_GRAY_P] ? gray_p : p->gray_p;
	p->blur_p = given[O_BLUR_P] ? blur_p : p->blur_p;
	p->solarize_p = given[O_SOL_P] ? sol_p : p->solarize_p;
	p->solarize_threshold = given[O_SOL_T] ? sol_t : p->solarize_threshold;
	p->views = given['n'] ? views : p->views;
	if (augment_params_check(p, err, sizeof err) < 0)
		die_usage("%s", err);
}

static void *
grow(void *buf, size_t *cap, size_t n)
{
	if (n > *cap) {
		free(buf);
		buf = xmalloc(n);
		*cap = n;
	}
	return buf;
}

/* Fails the run: the output gets no trailer, so downstream sees a truncated stream. */
static void
fail(StreamWriter *w, const char *msg)
{
	stream_writer_abort(w);
	fflush(stdout);
	die("%s", msg);
}

int
main(int argc, char *argv[])
{
	Options o;
	Cli cli;
	char err[512], msg[sizeof(StreamAt) + 520];
	char **pargv = xcalloc((size_t)argc + 1, sizeof *pargv);
	int pargc;
	setprogname(argv[0]);
	cli_init(&cli, "ssl-augment", usage, optstring, longopts);
	/* before cli_getopt, which reorders argv */
	pargc = provargs_filter(argc, argv, cli.shortopts, cli.longopts, run_only_long, "q", pargv);
	parse_options(argc, argv, &cli, &o);
	cli_apply(&o.cli);
	int nthreads = omp_get_max_threads();

	StreamReader *in = stream_reader_open_or_die(o.input, STREAM_KIND_IMAGES);
	const StreamHeader *ih = stream_reader_header(in);
	StreamHeader h;
	stream_header_copy(&h, ih);
	snprintf(h.kind, sizeof h.kind, "%s", STREAM_KIND_VIEWS);
	stream_header_add_provenance(&h, pargc, pargv);
	stream_header_set_meta(&h, "augment_recipe", o.p.recipe);
	StreamWriter *out = stream_writer_stdout_or_die(&h);
	int64_t total = stream_header_records(ih);
	Progress pg;
	progress_init(&pg, "augment", "images", total, o.cli.progress, o.cli.quiet);

	Slot *slots = xcalloc((size_t)o.block, sizeof *slots);
	AugmentScratch *scratch = xcalloc((size_t)nthreads, sizeof *scratch);
	PictureGrid pv = { 0 };
	int64_t previewed = 0;
	if (o.preview)
		grid_init(&pv, o.preview_count, 1 + o.p.views);
	int64_t done = 0;
	int s = 1;
	while (s == 1) {
		int n = 0;
		size_t bytes = 0;
		Record rec;
		while (n < o.block && bytes < BLOCK_MAX_BYTES && (s = stream_reader_next(in, &rec)) == 1) {
			Slot *sl = &slots[n];
			const Tensor *t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
			sl->recno = stream_reader_count(in);
			if (!t || augment_check_input(&o.p, (int)t->shape[0], (int)t->shape[1], (int)t->shape[2], &sl->oh,
			                              &sl->ow, err, sizeof err) < 0) {
				snprintf(msg, sizeof msg, "%s: %s", stream_at(stream_reader_name(in), sl->recno, rec.id).s, err);
				fail(out, msg);
			}
			sl->id = rec.id;
			sl->label = rec.label;
			sl->epoch = rec.epoch;
			sl->H = (int)t->shape[0];
			sl->W = (int)t->shape[1];
			sl->C = (int)t->shape[2];
			sl->has_source = rec.source != NULL;
			if (rec.source) {
				size_t len = strlen(rec.source) + 1;
				sl->source = grow(sl->source, &sl->source_cap, len);
				memcpy(sl->source, rec.source, len);
			}
			size_t isz = tensor_nbytes(t), vsz = (size_t)o.p.views * sl->oh * sl->ow * sl->C;
			sl->img = grow(sl->img, &sl->img_cap, isz);
			memcpy(sl->img, t->data, isz);
			sl->views = grow(sl->views, &sl->views_cap, vsz);
			bytes += isz + vsz;
			n++;
		}
		if (s < 0)
			fail(out, stream_reader_error(in));

#pragma omp parallel for schedule(dynamic, 1)
		for (int i = 0; i < n; i++) {
			Slot *sl = &slots[i];
			augment_record(sl->views, &scratch[omp_get_thread_num()], sl->img, sl->H, sl->W, sl->C, sl->oh,
			               sl->ow, &o.p, o.seed, sl->epoch, sl->id);
		}

		for (int i = 0; i < n; i++) {
			Slot *sl = &slots[i];
			Record r = { .id = sl->id, .label = sl->label, .epoch = sl->epoch, .ntensors = 1 };
			int64_t shape[4] = { o.p.views, sl->oh, sl->ow, sl->C };
			r.source = sl->has_source ? sl->source : NULL;
			r.tensors[0] = tensor_view("views", DTYPE_U8, 4, shape, sl->views);
			if (stream_writer_put(out, &r) < 0)
				fail(out, "<stdout>: write error");
			if (o.preview && previewed < o.preview_count) {
				size_t vsz = (size_t)sl->oh * sl->ow * sl->C;
				grid_set(&pv, (int)previewed, 0, sl->img, sl->H, sl->W, sl->C);
				for (int v = 0; v < o.p.views; v++)
					grid_set(&pv, (int)previewed, 1 + v, sl->views + v * vsz, sl->oh, sl->ow, sl->C);
				previewed++;
			}
		}
		done += n;
		progress_update(&pg, done, NULL);
	}
	progress_finish(&pg, done, NULL);
	/* 128: 32-pixel images shown 4 times larger. */
	if (o.preview && done > 0 && grid_write_png(&pv, o.preview, 128, err, sizeof err) < 0)
		fail(out, err);
	if (o.preview && done == 0)
		note("%s: no records, no preview written", o.preview);
	if (stream_writer_close(out) < 0)
		die("<stdout>: write error");
	stream_reader_close(in);
	grid_free(&pv);
	for (int i = 0; i < o.block; i++) {
		free(slots[i].img);
		free(slots[i].views);
		free(slots[i].source);
	}
	for (int i = 0; i < nthreads; i++)
		augment_scratch_free(&scratch[i]);
	free(slots);
	free(scratch);
	stream_header_free(&h);
	free(pargv);
	return fshut(stdout, "<stdout>");
}
