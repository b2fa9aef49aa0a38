/* ssl-decode: decode image archives, folders, IDX files and CIFAR batches
 * into an images stream. See ssl-decode(1). */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/cli.h"
#include "data/dataset.h"
#include "data/image.h"
#include "base/progress.h"
#include "data/sampler.h"
#include "io/stream.h"
#include "base/util.h"

typedef struct {
	DatasetOptions ds;
	SamplerOptions sm;
	int64_t        epochs, start_epoch;
	int            verbose;
	const char    *cache;         /* --cache FILE */
	Cli            cli;
	char          *classes_arg;
	char          *classes_buf;   /* the names point into it */
	char         **class_names;
	int            nclass_names;
} Options;

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-decode [options] INPUT...\n"
	        "Decode archives, folders (ImageFolder layout), IDX files, CIFAR batches and\n"
	        "the CIFAR-10, CIFAR-100 and STL-10 binary archives as downloaded\n"
	        "into an images stream on stdout. An INPUT of - is an archive or image on stdin.\n"
	        "  -s, --size HxW          resize every image (area average down, bilinear up)\n"
	        "      --fit MODE          how --size meets another aspect ratio: stretch (default),\n"
	        "                          crop (shorter side, then the centre), pad (on black)\n"
	        "  -c, --channels 1|3      convert to gray or RGB (default: RGB unless all are gray)\n"
	        "  -e, --epochs N          emit N epochs (default 1)\n"
	        "      --start-epoch E     emit only epochs E.. of the same command (resume)\n"
	        "      --shuffle           a fresh seeded permutation each epoch\n"
	        "      --seed S            seed for --shuffle and --labels (default 0)\n"
	        "      --shard I/N         decode and emit shard I of N (0 <= I < N): the images\n"
	        "                          whose name hashes to I, shuffled within the shard\n"
	        "      --labels SPEC       stratified label subset: 0.1, 10%% or 25-per-class\n"
	        "      --labels-complement with --labels: every image that subset leaves out\n"
	        "      --limit N           keep the first N selected images\n"
	        "      --classes A,B,...   class names for IDX and CIFAR inputs\n"
	        "      --split NAME        of a CIFAR or STL-10 archive: train (default), test;\n"
	        "                          STL-10 also unlabeled, train+unlabeled\n"
	        "      --coarse            CIFAR-100: the 20 coarse labels instead of the 100 fine\n"
	        "      --strict            bad members are errors, not warnings\n"
	        "      --max-pixels N      refuse images over N pixels (default %lld)\n"
	        "      --survey            print what the inputs hold (count, labels, channels,\n"
	        "                          sizes), one 'key value...' line each, instead of a stream\n"
	        "      --memory SIZE       the process's memory budget (K, M, G; default 1G):\n"
	        "                          decoded pixels past 3/4 of it go to a spill file\n"
	        "      --cache-dir DIR     the spill file's folder (default $TMPDIR, else /var/tmp)\n"
	        "      --cache FILE        keep the decoded images in FILE, and use them again in\n"
	        "                          a later run with the same inputs and options\n"
	        "  -v, --verbose           the time of each phase: decoding, and each epoch\n",
	        (long long)IMAGE_DEFAULT_MAX_PIXELS);
	cli_help_shared(fp, 26, 1);
}

static void
parse_classes(Options *o, char *arg)
{
	char *save = NULL, *tok;
	for (tok = strtok_r(arg, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		o->class_names = xreallocarray(o->class_names, (size_t)o->nclass_names + 1, sizeof *o->class_names);
		o->class_names[o->nclass_names++] = tok;
	}
	if (!o->nclass_names)
		die_usage("--classes: no class names in '%s'", o->classes_arg);
	o->ds.class_names = o->class_names;
	o->ds.nclass_names = o->nclass_names;
}

static void
parse_shard(Options *o, const char *arg)
{
	char buf[64], *slash;
	if (strlen(arg) >= sizeof buf || !(slash = strchr(strcpy(buf, arg), '/')))
		die_usage("--shard: '%s' is not I/N", arg);
	*slash = '\0';
	o->sm.nshards = opt_i64("--shard", slash + 1, 1, INT64_C(1) << 20);
	o->sm.shard = opt_i64("--shard", buf, 0, o->sm.nshards - 1);
	o->ds.shard = o->sm.shard;   /* the dataset decodes this shard's members only */
	o->ds.nshards = o->sm.nshards;
}

/* "1G", "512M", "64K" or bytes: binary units. */
static int64_t
parse_bytes(const char *opt, const char *arg)
{
	char num[64];
	size_t n = strlen(arg);
	int shift = 0;
	if (n > 0 && n < sizeof num) {
		switch (arg[n - 1]) {
		case 'K': case 'k': shift = 10; break;
		case 'M': case 'm': shift = 20; break;
		case 'G': case 'g': shift = 30; break;
		case 'T': case 't': shift = 40; break;
		}
	}
	snprintf(num, sizeof num, "%.*s", (int)(shift ? n - 1 : n), arg);
	if (n >= sizeof num || !num[0])
		die_usage("%s: '%s' is not a size (a number, with K, M or G)", opt, arg);
	return opt_i64(opt, num, 0, INT64_C(1) << (62 - shift)) << shift;
}

/* --cache FILE: a regular file or none (a FIFO would block the open, a
 * folder be found only at the rename, after the whole decode), and inputs
 * whose changes can be seen: files and folders, not a pipe, a FIFO, a
 * device or the standard input by any name (/dev/stdin, /dev/fd/0). */
static void
check_cache_args(const char *cache, int ninputs, char **inputs)
{
	struct stat st;
	if (stat(cache, &st) == 0 && !S_ISREG(st.st_mode))
		die_usage("--cache %s: not a regular file", cache);
	for (int i = 0; i < ninputs; i++) {
		if (strcmp(inputs[i], "-") == 0)
			die_usage("--cache: an input on the standard input cannot be checked for changes");
		if (stat(inputs[i], &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
			die_usage("--cache: %s is neither a file nor a folder: its changes cannot be checked", inputs[i]);
	}
}

static void
parse_options(int argc, char **argv, Options *o)
{
	enum { O_START = 256, O_SHUFFLE, O_SEED, O_SHARD, O_LABELS, O_LIMIT, O_CLASSES, O_COARSE, O_STRICT,
	       O_MAXPX, O_SPLIT, O_FIT, O_COMPLEMENT, O_SURVEY, O_MEMORY, O_CACHE_DIR, O_CACHE };
	static const struct option longopts[] = {
		{ "size", required_argument, NULL, 's' },       { "channels", required_argument, NULL, 'c' },
		{ "epochs", required_argument, NULL, 'e' },     { "start-epoch", required_argument, NULL, O_START },
		{ "shuffle", no_argument, NULL, O_SHUFFLE },    { "seed", required_argument, NULL, O_SEED },
		{ "shard", required_argument, NULL, O_SHARD },  { "labels", required_argument, NULL, O_LABELS },
		{ "limit", required_argument, NULL, O_LIMIT },  { "classes", required_argument, NULL, O_CLASSES },
		{ "coarse", no_argument, NULL, O_COARSE },      { "strict", no_argument, NULL, O_STRICT },
		{ "max-pixels", required_argument, NULL, O_MAXPX }, { "split", required_argument, NULL, O_SPLIT },
		{ "fit", required_argument, NULL, O_FIT },          { "labels-complement", no_argument, NULL, O_COMPLEMENT },
		{ "survey", no_argument, NULL, O_SURVEY },          { "memory", required_argument, NULL, O_MEMORY },
		{ "cache-dir", required_argument, NULL, O_CACHE_DIR }, { "verbose", no_argument, NULL, 'v' },
		{ "cache", required_argument, NULL, O_CACHE },         { NULL, 0, NULL, 0 },
	};
	char err[256];
	int ch;
	memset(o, 0, sizeof *o);
	cli_init(&o->cli, "ssl-decode", usage, "s:c:e:v", longopts);
	o->epochs = 1;
	o->sm.nshards = 1;
	o->ds.max_pixels = IMAGE_DEFAULT_MAX_PIXELS;
	while ((ch = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (ch) {
		case 's':
			if (parse_hw(optarg, IMAGE_MAX_SIDE, &o->ds.height, &o->ds.width, err, sizeof err) < 0)
				die_usage("--size: %s", err);
			break;
		case 'c':
			o->ds.channels = (int)opt_i64("--channels", optarg, 1, 3);
			if (o->ds.channels == 2)
				die_usage("--channels: 2 is not 1 or 3");
			break;
		case 'e': o->epochs = opt_i64("--epochs", optarg, 1, INT64_C(1) << 30); break;
		case O_START: o->start_epoch = opt_i64("--start-epoch", optarg, 0, INT64_C(1) << 30); break;
		case O_SHUFFLE: o->sm.shuffle = 1; break;
		case O_SEED: o->sm.seed = (uint64_t)opt_i64("--seed", optarg, 0, INT64_MAX); break;
		case O_SHARD: parse_shard(o, optarg); break;
		case O_LABELS:
			if (parse_label_spec(optarg, &o->sm.label_frac, &o->sm.label_per_class, err, sizeof err) < 0)
				die_usage("--labels: %s", err);
			break;
		case O_LIMIT: o->sm.limit = opt_i64("--limit", optarg, 1, INT64_MAX); break;
		case O_CLASSES:
			o->classes_arg = optarg;
			free(o->classes_buf);
			free(o->class_names);
			o->class_names = NULL;
			o->nclass_names = 0;
			o->classes_buf = xstrdup(optarg);
			parse_classes(o, o->classes_buf);
			break;
		case O_COARSE: o->ds.coarse = 1; break;
		case O_COMPLEMENT: o->sm.label_rest = 1; break;
		case O_SURVEY: o->ds.sizes_only = 1; break;
		case O_MEMORY:
			o->ds.memory = parse_bytes("--memory", optarg);
			if (o->ds.memory == 0)
				o->ds.memory = -1;   /* none: DatasetOptions' 0 is the default */
			break;
		case O_CACHE_DIR: o->ds.cache_dir = optarg; break;
		case O_CACHE: o->cache = optarg; break;
		case 'v': o->verbose = 1; break;
		case O_FIT:
			for (o->ds.fit = 0; o->ds.fit < IMAGE_FIT_N && strcmp(optarg, image_fit_names[o->ds.fit]); o->ds.fit++)
				;
			if (o->ds.fit == IMAGE_FIT_N)
				die_usage("--fit: '%s' is not stretch, crop or pad", optarg);
			break;
		case O_SPLIT:
			if (strcmp(optarg, "train") && strcmp(optarg, "test") && strcmp(optarg, "unlabeled") &&
			    strcmp(optarg, "train+unlabeled"))
				die_usage("--split: '%s' is not train, test, unlabeled or train+unlabeled", optarg);
			o->ds.split = optarg;
			break;
		case O_STRICT: o->ds.strict = 1; break;
		case O_MAXPX: o->ds.max_pixels = opt_i64("--max-pixels", optarg, 1, INT64_C(1) << 40); break;
		}
	}
	if (optind >= argc)
		die_usage("no input given");
	if (o->sm.label_rest && !o->sm.label_frac && !o->sm.label_per_class)
		die_usage("--labels-complement: give --labels too");
	if (o->ds.fit && !o->ds.height)
		die_usage("--fit %s: give --size too", image_fit_names[o->ds.fit]);
	if (o->cache && o->ds.sizes_only)
		die_usage("--cache: --survey keeps no pixels to cache");
	if (o->cache)
		check_cache_args(o->cache, argc - optind, argv + optind);
	if (o->start_epoch >= o->epochs)
		die_usage("--start-epoch %lld: must be below --epochs %lld", (long long)o->start_epoch,
		          (long long)o->epochs);
	cli_apply(&o->cli);
}

static void
on_warning(void *ctx, const char *msg)
{
	Progress *p = ctx;
	if (p->dirty)
		fputc('\n', stderr);
	p->dirty = 0;
	warn("%s", msg);
}

static void
on_progress(void *ctx, int64_t decoded)
{
	progress_update(ctx, decoded, NULL);
}

/* --verbose: one line on stderr, even with --quiet (it was asked for). */
static void ATTR_PRINTF(2, 3)
verbose(const Options *o, const char *fmt, ...)
{
	va_list ap;
	if (!o->verbose)
		return;
	fprintf(stderr, "%s: ", getprogname_ssl());
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static double
per_second(int64_t n, double s)
{
	return s > 0 ? (double)n / s : 0;
}

/* Ends the run with the dataset's error, its temporary files removed first. */
static void ATTR_NORETURN
die_dataset(Dataset *d)
{
	char err[1024];
	snprintf(err, sizeof err, "%s", dataset_error(d));
	dataset_free(d);
	die("%s", err);
}

/* --cache: the set kept by an earlier run, when it is there and good. */
static Dataset *
load_cached(Options *o, const char *key)
{
	char err[2048], summary[512];
	double t0 = now_seconds();
	Dataset *d;
	int r = dataset_cache_load(&o->ds, o->cache, key, &d, err, sizeof err);
	if (r < 0)
		warn("%s; rebuilding", err);
	if (r <= 0)
		return NULL;
	if (dataset_skipped(d))
		warn("%s", dataset_summary(d, summary, sizeof summary));
	verbose(o, "%s: read %lld images from the cache in %.2f s", o->cache, (long long)dataset_count(d),
	        now_seconds() - t0);
	return d;
}

static Dataset *
load_dataset(Options *o, int ninputs, char **inputs)
{
	Progress p;
	Dataset *d;
	char summary[512], *key = NULL;
	double t0;
	if (o->cache) {
		key = dataset_cache_key(&o->ds, ninputs, inputs);
		if ((d = load_cached(o, key))) {
			free(key);
			return d;
		}
		o->ds.cache_path = o->cache;
	}
	t0 = now_seconds();
	progress_init(&p, "decode", "images", -1, o->cli.progress, o->cli.quiet);
	o->ds.warn = on_warning;
	o->ds.progress = on_progress;
	o->ds.ctx = &p;
	d = dataset_new(&o->ds);
	for (int i = 0; i < ninputs; i++)
		if (dataset_add(d, inputs[i]) < 0)
			die_dataset(d);
	progress_finish(&p, dataset_count(d), NULL);
	if (dataset_finish(d) < 0)
		die_dataset(d);
	if (dataset_skipped(d))
		warn("%s", dataset_summary(d, summary, sizeof summary));
	if (key && dataset_cache_keep(d, key) < 0)
		die_dataset(d);
	free(key);
	verbose(o, "decoded %lld images in %.2f s (%.0f images/s)", (long long)dataset_count(d), now_seconds() - t0,
	        per_second(dataset_count(d), now_seconds() - t0));
	if (!o->ds.sizes_only)
		verbose(o, "pixels: %lld bytes in memory, %lld bytes in the spill file in %s", (long long)dataset_memory(d),
		        (long long)dataset_spilled(d), dataset_spill_place(d));
	return d;
}

static int
cmp_int(const void *a, const void *b)
{
	return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

/* "key min median max" of n values (sorted here). */
static void
print_spread(const char *key, int *v, int64_t n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_int);
	printf("%s %d %d %d\n", key, v[0], v[n / 2], v[n - 1]);
}

/* --survey: what the inputs hold, for people and for pipelines/images.mk. */
static void
survey(const Dataset *d)
{
	int64_t n = dataset_count(d), labelled = 0;
	int *h = xcalloc((size_t)n, sizeof *h), *w = xcalloc((size_t)n, sizeof *w), *sh = xcalloc((size_t)n, sizeof *sh);
	int c = 1;
	for (int64_t i = 0; i < n; i++) {
		const Sample *s = dataset_sample(d, i);
		h[i] = s->h;
		w[i] = s->w;
		sh[i] = s->h < s->w ? s->h : s->w;
		labelled += s->label >= 0;
		c = s->c > c ? s->c : c;
	}
	printf("images %lld\nlabelled %lld\nclasses %d\nchannels %d\n", (long long)n, (long long)labelled,
	       dataset_nclasses(d), c);
	print_spread("height", h, n);
	print_spread("width", w, n);
	print_spread("short", sh, n);
	free(h);
	free(w);
	free(sh);
}

static void
emit(StreamWriter *w, Dataset *d, Sampler *s, const Options *o)
{
	Progress p;
	int64_t per = sampler_epoch_size(s), done = 0;
	char src[4200];
	uint8_t *buf = NULL;
	size_t cap = 0;
	progress_init(&p, "write", "records", per * (o->epochs - o->start_epoch), o->cli.progress, o->cli.quiet);
	for (int64_t e = o->start_epoch; e < o->epochs; e++) {
		const int64_t *ids = sampler_epoch(s, e);
		double t0 = now_seconds();
		for (int64_t k = 0; k < per; k++) {
			const Sample *sm = dataset_sample(d, ids[k]);
			int64_t shape[3] = { sm->h, sm->w, sm->c };
			size_t n = (size_t)sm->h * (size_t)sm->w * (size_t)sm->c;
			Record rec = { .id = sm->id, .label = sm->label, .epoch = e, .ntensors = 1 };
			const uint8_t *px;
			if (n > cap)
				buf = xrealloc(buf, cap = n);
			if (!(px = dataset_pixels(d, ids[k], buf)))
				die("%s", dataset_error(d));
			rec.source = dataset_source(d, ids[k], src, sizeof src);
			rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, (void *)px);
			if (stream_writer_put(w, &rec) < 0)
				die("<stdout>: record %lld:", (long long)stream_writer_count(w));
			progress_update(&p, ++done, NULL);
		}
		verbose(o, "epoch %lld: %lld records in %.2f s (%.0f records/s)", (long long)e, (long long)per,
		        now_seconds() - t0, per_second(per, now_seconds() - t0));
	}
	progress_finish(&p, done, NULL);
	free(buf);
}

int
main(int argc, char *argv[])
{
	Options o;
	Dataset *d;
	Sampler s;
	StreamHeader h;
	StreamWriter *w;
	int64_t n, *labels, *local;
	int32_t *shards;
	char err[256], shard[64];
	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	if (!o.ds.sizes_only && isatty(STDOUT_FILENO))   /* before the work, not after it */
		die("<stdout>: refusing to write a binary stream to a terminal; redirect or pipe it");

	d = load_dataset(&o, argc - optind, argv + optind);
	if (o.ds.sizes_only) {
		survey(d);
		dataset_free(d);
		free(o.class_names);
		free(o.classes_buf);
		return fshut(stdout, "<stdout>");
	}
	n = dataset_nids(d);
	labels = xcalloc((size_t)n, sizeof *labels);
	shards = xcalloc((size_t)n, sizeof *shards);
	local = xcalloc((size_t)n, sizeof *local);
	dataset_id_table(d, labels, shards, local);
	if (sampler_init_ids(&s, &o.sm, &(SamplerIds){ n, labels, shards, local, dataset_nclasses(d) }, err,
	                     sizeof err) < 0)
		die("%s", err);
	free(labels);
	free(shards);
	free(local);

	stream_header_init(&h, STREAM_KIND_IMAGES);
	stream_header_set_classes(&h, dataset_nclasses(d), dataset_classes(d));
	h.records_per_epoch = sampler_epoch_size(&s);
	h.epochs = o.epochs;
	h.start_epoch = o.start_epoch;
	if (o.sm.nshards > 1) {
		snprintf(shard, sizeof shard, "%lld/%lld", (long long)o.sm.shard, (long long)o.sm.nshards);
		stream_header_set_meta(&h, "shard", shard);
	}
	stream_header_add_provenance(&h, argc, argv);
	w = stream_writer_stdout_or_die(&h);
	emit(w, d, &s, &o);
	if (stream_writer_close(w) < 0)
		die("<stdout>:");
	stream_header_free(&h);
	sampler_free(&s);
	dataset_free(d);
	free(o.class_names);
	free(o.classes_buf);
	return fshut(stdout, "<stdout>");
}
