/* ssl-encode: read an images stream, run a trained encoder in eval mode
 * (running BatchNorm statistics) and write an embeddings stream, one float32
 * vector per record, in input order. See ssl-encode(1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "eval/encode.h"
#include "io/modelfile.h"
#include "eval/precise_bn.h"
#include "data/image.h"
#include "nn/model.h"
#include "io/npy.h"
#include "base/progress.h"
#include "io/safetensors.h"
#include "io/stream.h"
#include "base/util.h"

typedef struct {
	const char *model, *input, *npy, *precise_bn;
	const char *layer_name;
	ModelOutput layer;
	int         l2, batch, resize;
	Cli         cli;
	ModelPrecision precision; /* as asked, then as resolved (fp32 or bf16) */
} Options;

/* One record of the batch being filled: what is written back out. */
typedef struct {
	int64_t id, label, epoch;
	char   *source;      /* "" when the record has none */
	size_t  source_cap;
} Slot;

typedef struct {
	int      H, W, C, D, max;
	int      n;           /* records in the batch */
	Slot    *slot;        /* (max) */
	uint8_t *pix;         /* (max, H, W, C) */
	float   *x;           /* (max, C, H, W) normalised */
	float   *emb;         /* (max, D) */
	uint8_t *ws;          /* resize scratch, grown on demand */
	size_t   ws_len;
} Batch;

enum { OPT_MODEL = 'm', OPT_LAYER = 256, OPT_L2, OPT_BATCH, OPT_RESIZE, OPT_NPY, OPT_PRECISE_BN, OPT_PRECISION };

static const struct option longopts[] = {
	{ "model", required_argument, NULL, OPT_MODEL },
	{ "layer", required_argument, NULL, OPT_LAYER },
	{ "l2", no_argument, NULL, OPT_L2 },
	{ "batch", required_argument, NULL, OPT_BATCH },
	{ "resize", no_argument, NULL, OPT_RESIZE },
	{ "npy", required_argument, NULL, OPT_NPY },
	{ "precise-bn", required_argument, NULL, OPT_PRECISE_BN },
	{ "precision", required_argument, NULL, OPT_PRECISION },
	{ NULL, 0, NULL, 0 },
};

/* The .npy files being written, removed if the tool dies half way. */
static NpyWriter npy_x, npy_y;

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-encode -m MODEL [options] [file]\n"
	        "Reads an images stream (file, or stdin when absent or -), writes an embeddings stream.\n"
	        "  -m, --model MODEL     checkpoint written by ssl-train, or a safetensors file\n"
	        "                        written by ssl-export (required)\n"
	        "  --layer L             encoder (default), proj-hidden, proj or logits\n"
	        "  --l2                  scale each embedding to unit L2 norm\n"
	        "  --batch N             images per forward pass (256)\n"
	        "  --resize              resize images of another size to the model's input\n"
	        "                        (area when shrinking, bilinear when growing)\n"
	        "  --npy FILE            also write the N x D float32 matrix to FILE (.npy) and the\n"
	        "                        int64 labels to FILE with .npy replaced by .labels.npy\n"
	        "  --precise-bn IMAGES   first recompute the BatchNorm statistics over these\n"
	        "                        un-augmented training images (an images stream)\n"
	        "  --precision P         fp32 (default), bf16 (convolutions and linear layers in bf16,\n"
	        "                        fp32 sums; needs avx512_bf16) or auto (bf16 where the CPU has it)\n");
	cli_help_shared(fp, 24, 0);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	int c;
	memset(o, 0, sizeof *o);
	o->batch = 256;
	o->layer = MODEL_OUT_ENCODER;
	o->layer_name = "encoder";
	cli_init(&o->cli, "ssl-encode", usage, "m:", longopts);
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (c) {
		case OPT_MODEL: o->model = optarg; break;
		case OPT_LAYER:
			if (model_output_parse(optarg, &o->layer) < 0)
				die_usage("--layer: '%s' is not encoder, proj-hidden, proj or logits", optarg);
			o->layer_name = optarg;
			break;
		case OPT_L2: o->l2 = 1; break;
		case OPT_BATCH: o->batch = (int)opt_i64("--batch", optarg, 1, 65536); break;
		case OPT_RESIZE: o->resize = 1; break;
		case OPT_NPY:
			if (!*optarg)
				die_usage("--npy: empty file name");
			o->npy = optarg;
			break;
		case OPT_PRECISE_BN:
			if (!*optarg)
				die_usage("--precise-bn: empty file name");
			o->precise_bn = optarg;
			break;
		case OPT_PRECISION:
			if (model_precision_parse(optarg, &o->precision) < 0)
				die_usage("--precision: '%s' is not fp32, bf16 or auto", optarg);
			break;
		}
	}
	if (optind < argc)
		o->input = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!o->model)
		die_usage("-m MODEL is needed");
	/* precise-BN runs batches in training mode (activations kept): at most
	 * 256 images a batch, as a training step has */
	if (o->precise_bn && o->batch > 256)
		o->batch = 256;
}

static void
remove_partial_npy(void)
{
	npy_writer_abort(&npy_x);
	npy_writer_abort(&npy_y);
}

static void
batch_init(Batch *b, const ModelConfig *c, int D, int max)
{
	size_t img = (size_t)c->in_h * (size_t)c->in_w * (size_t)c->in_channels;
	memset(b, 0, sizeof *b);
	b->H = c->in_h;
	b->W = c->in_w;
	b->C = c->in_channels;
	b->D = D;
	b->max = max;
	b->slot = xcalloc((size_t)max, sizeof *b->slot);
	b->pix = xcalloc((size_t)max, img);
	b->x = xcalloc((size_t)max, img * sizeof *b->x);
	b->emb = xcalloc((size_t)max, (size_t)D * sizeof *b->emb);
}

static void
batch_free(Batch *b)
{
	for (int i = 0; i < b->max; i++)
		free(b->slot[i].source);
	free(b->slot);
	free(b->pix);
	free(b->x);
	free(b->emb);
	free(b->ws);
}

/* Copies a borrowed record into the next slot (resizing when allowed). */
static void
batch_add(Batch *b, const Record *rec, const StreamReader *r, int resize)
{
	char err[512];
	const Tensor *t = record_tensor(rec, "image", DTYPE_U8, 3, err, sizeof err);
	if (!t)
		die("%s", err);
	int h = (int)t->shape[0], w = (int)t->shape[1], c = (int)t->shape[2];
	if (c != b->C)
		die("%s: image has %d channel%s, the model takes %d; convert with ssl-decode --channels %d",
		    stream_at_reader(r, rec->id).s, c, c == 1 ? "" : "s", b->C, b->C);
	Slot *s = &b->slot[b->n];
	uint8_t *dst = b->pix + (size_t)b->n * (size_t)b->H * (size_t)b->W * (size_t)b->C;
	if (h == b->H && w == b->W) {
		memcpy(dst, t->data, (size_t)h * (size_t)w * (size_t)c);
	} else if (resize) {
		size_t need = image_resize_scratch(h, w, b->H, b->W, c);
		if (need > b->ws_len) {
			b->ws = xrealloc(b->ws, need);
			b->ws_len = need;
		}
		image_resize(dst, b->H, b->W, t->data, h, w, c, b->ws);
	} else {
		die("%s: image is %dx%d, the model takes %dx%d; resize with ssl-decode --size %dx%d or ssl-encode --resize",
		    stream_at_reader(r, rec->id).s, h, w, b->H, b->W, b->H, b->W);
	}
	s->id = rec->id;
	s->label = rec->label;
	s->epoch = rec->epoch;
	/* Slots are reused batch after batch: the copy grows, never shrinks,
	 * and an empty string stands for "no source". */
	const char *src = rec->source ? rec->source : "";
	size_t len = strlen(src) + 1;
	if (len > s->source_cap) {
		s->source = xrealloc(s->source, len);
		s->source_cap = len;
	}
	memcpy(s->source, src, len);
	b->n++;
}

static void
batch_write(Batch *b, StreamWriter *w, int npy)
{
	char err[512];
	int64_t shape[1] = { b->D };
	Record out;
	memset(&out, 0, sizeof out);
	out.ntensors = 1;
	for (int i = 0; i < b->n; i++) {
		const Slot *s = &b->slot[i];
		out.id = s->id;
		out.label = s->label;
		out.epoch = s->epoch;
		out.source = s->source[0] ? s->source : NULL;
		out.tensors[0] = tensor_view("embedding", DTYPE_F32, 1, shape, b->emb + (size_t)i * (size_t)b->D);
		if (stream_writer_put(w, &out) < 0)
			die("<stdout>: write error:");
		if (npy && npy_writer_put(&npy_y, &s->label, 1, err, sizeof err) < 0)
			die("%s", err);
	}
	if (npy && npy_writer_put(&npy_x, b->emb, b->n, err, sizeof err) < 0)
		die("%s", err);
	b->n = 0;
}

/* The model file: a checkpoint, or a safetensors file whose metadata gives
 * the architecture and the normalisation (ssl-export(1)). */
static Model *
load_model(ModelFile *f, const Options *o, int *D)
{
	char err[1024];
	Model *m;
	if (modelfile_open(f, o->model, MODELFILE_ANY, err, sizeof err) < 0)
		die("%s", err);
	if (!f->has_config)
		die("%s: no %s metadata: the architecture, input size and normalisation are unknown "
		    "(ssl-export writes them; or import the weights with ssl-train --init-from)",
		    o->model, SAFETENSORS_META_CONFIG);
	if (!(m = model_new(&f->config, o->batch, o->precise_bn ? MODEL_TRAIN : MODEL_INFER, err, sizeof err)))
		die("%s: %s", o->model, err);
	model_set_precision(m, o->precision);
	*D = model_output_dim(m, o->layer);
	if (*D <= 0)
		die("%s: the model has no %s layer (%s)", o->model, o->layer_name,
		    o->layer == MODEL_OUT_LOGITS ? "no classifier" : "no projection head");
	if (modelfile_restore(f, m, err, sizeof err) < 0)
		die("%s", err); /* err names the file */
	if (o->precise_bn) {
		int64_t used;
		if (precise_bn_from_stream(m, o->precise_bn, f->mean, f->std, model_max_batch(m), &used, err,
		                           sizeof err) < 0)
			die("%s", err);
		note("BatchNorm statistics recomputed over %lld images of %s", (long long)used, o->precise_bn);
	}
	return m;
}

int
main(int argc, char *argv[])
{
	Options o;
	ModelFile f;
	int D;
	char err[1024];
	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	cli_apply(&o.cli);
	char msg[256];
	if (model_precision_resolve(o.precision, &o.precision, msg, sizeof msg) < 0)
		die("%s", msg);
	if (msg[0])
		note("%s", msg);

	Model *m = load_model(&f, &o, &D);

	StreamReader *r = stream_reader_open_or_die(o.input, STREAM_KIND_IMAGES);
	StreamHeader h;
	stream_header_copy(&h, stream_reader_header(r));
	snprintf(h.kind, sizeof h.kind, "%s", STREAM_KIND_EMBEDDINGS);
	stream_header_add_provenance(&h, argc, argv);
	stream_header_set_meta(&h, "model", o.model);
	stream_header_set_meta(&h, "layer", o.layer_name);
	stream_header_set_meta(&h, "l2", o.l2 ? "yes" : "no");
	if (o.precise_bn)
		stream_header_set_meta(&h, "precise_bn", o.precise_bn);
	{ /* the encoder's identity for ssl-probe --predict and ssl-similar: its values and normalisation */
		char id[20];
		uint64_t fp = params_fingerprint(model_params(m), 0);
		fp = params_hash_bytes(fp, f.mean, (size_t)f.config.in_channels * sizeof *f.mean);
		snprintf(id, sizeof id, "%016llx",
		         (unsigned long long)params_hash_bytes(fp, f.std, (size_t)f.config.in_channels * sizeof *f.std));
		stream_header_set_meta(&h, "model_id", id);
	}

	char *labels_path = NULL;
	if (o.npy) {
		labels_path = npy_labels_path(o.npy);
		atexit(remove_partial_npy);
		if (npy_writer_open(&npy_x, o.npy, DTYPE_F32, 2, D, err, sizeof err) < 0 ||
		    npy_writer_open(&npy_y, labels_path, DTYPE_I64, 1, 1, err, sizeof err) < 0)
			die("%s", err);
	}
	StreamWriter *w = stream_writer_stdout_or_die(&h);

	Batch b;
	batch_init(&b, &f.config, D, o.batch);
	Progress pg;
	progress_init(&pg, "encode", "images", stream_header_records(&h), o.cli.progress, o.cli.quiet);
	Record rec;
	int rc;
	int64_t done = 0;
	while ((rc = stream_reader_next(r, &rec)) > 0) {
		batch_add(&b, &rec, r, o.resize);
		if (b.n == b.max) {
			done += b.n;
			encode_batch(m, b.x, b.pix, b.n, b.H, b.W, b.C, f.mean, f.std, o.layer, o.l2, b.emb);
			batch_write(&b, w, o.npy != NULL);
			progress_update(&pg, done, NULL);
		}
	}
	if (rc < 0)
		die("%s", stream_reader_error(r));
	if (b.n) {
		done += b.n;
		encode_batch(m, b.x, b.pix, b.n, b.H, b.W, b.C, f.mean, f.std, o.layer, o.l2, b.emb);
		batch_write(&b, w, o.npy != NULL);
	}
	progress_finish(&pg, done, NULL);
	if (o.npy && npy_writer_commit_pair(&npy_x, &npy_y, err, sizeof err) < 0)
		die("%s", err);
	int status = 0;
	if (stream_writer_close(w) < 0) {
		warn("<stdout>: write error:");
		status = 1;
	}
	status |= fshut(stdout, "<stdout>");
	note("%lld records, %d dimensions (%s)", (long long)done, D, o.layer_name);

	batch_free(&b);
	stream_reader_close(r);
	stream_header_free(&h);
	model_free(m);
	modelfile_free(&f);
	free(labels_path);
	return status;
}
