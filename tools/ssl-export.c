/* ssl-export: write a checkpoint's encoder (and, on request, its projection
 * head and classifier) as a safetensors file under torchvision's names, for
 * PyTorch; or list what a safetensors file holds. See ssl-export(1). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "io/modelfile.h"
#include "nn/model.h"
#include "base/progress.h"
#include "io/safetensors.h"
#include "base/util.h"

typedef struct {
	const char *output, *input;
	unsigned    flags;
	int         list;
	Cli         cli;
} Options;

enum { OPT_OUTPUT = 'o', OPT_HEAD = 256, OPT_FC, OPT_LIST };

static const struct option longopts[] = {
	{ "output", required_argument, NULL, OPT_OUTPUT },
	{ "head", no_argument, NULL, OPT_HEAD },
	{ "fc", no_argument, NULL, OPT_FC },
	{ "list", no_argument, NULL, OPT_LIST },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-export [--head] [--fc] [--quiet] [--progress] -o FILE.safetensors MODEL\n"
	        "       ssl-export --list FILE.safetensors\n"
	        "Writes the encoder of the checkpoint MODEL as safetensors, under torchvision's ResNet names.\n"
	        "  -o, --output FILE     the safetensors file to write (atomically)\n"
	        "  --head                also the projection head (head.0, head.1, head.3; head.4, head.6)\n"
	        "  --fc                  also the classifier (fc.weight, fc.bias)\n"
	        "  --list                print the metadata and tensors of a safetensors file\n");
	cli_help_shared(fp, 24, 0);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	int c;
	memset(o, 0, sizeof *o);
	cli_init(&o->cli, "ssl-export", usage, "o:", longopts);
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (c) {
		case OPT_OUTPUT:
			if (!*optarg)
				die_usage("-o: empty file name");
			o->output = optarg;
			break;
		case OPT_HEAD: o->flags |= ST_MODEL_HEAD; break;
		case OPT_FC: o->flags |= ST_MODEL_FC; break;
		case OPT_LIST: o->list = 1; break;
		}
	}
	if (optind >= argc)
		die_usage(o->list ? "--list: a safetensors file is needed" : "a checkpoint (MODEL) is needed");
	o->input = argv[optind++];
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (o->list && (o->output || o->flags))
		die_usage("--list only reads; -o, --head and --fc are for exporting");
	if (!o->list && !o->output)
		die_usage("-o FILE.safetensors is needed");
}

/* Metadata as "# key: value", then "name<TAB>dtype<TAB>[d0, d1, ...]". */
static int
list(const char *path)
{
	SafeTensors st;
	char err[1024];
	if (safetensors_open(&st, path, err, sizeof err) < 0)
		die("%s", err);
	/* names and metadata come from the file: shown as ssl-info shows strings */
	for (int i = 0; i < st.nmeta; i++) {
		fputs("# ", stdout);
		fputs_printable(st.meta[i].key, stdout);
		fputs(": ", stdout);
		fputs_printable(st.meta[i].value, stdout);
		putchar('\n');
	}
	for (int i = 0; i < st.ntensors; i++) {
		const StTensor *t = &st.t[i];
		char shape[32 * SAFETENSORS_MAX_DIM];
		fputs_printable(t->name, stdout);
		printf("\t%s\t%s\n", safetensors_dtype_name(t->dtype), safetensors_shape_str(t->shape, t->ndim, shape, sizeof shape));
	}
	safetensors_free(&st);
	return fshut(stdout, "<stdout>");
}

int
main(int argc, char *argv[])
{
	Options o;
	ModelFile f;
	Progress pg;
	char err[1024];
	Model *m;
	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	cli_apply(&o.cli);
	if (o.list)
		return list(o.input);

	progress_init(&pg, "export", "steps", 3, o.cli.progress, o.cli.quiet);
	if (modelfile_open(&f, o.input, MODELFILE_CHECKPOINT, err, sizeof err) < 0)
		die("%s", err);
	if ((o.flags & ST_MODEL_HEAD) && !f.config.proj_layers)
		die("%s: --head: the model has no projection head", o.input);
	if ((o.flags & ST_MODEL_FC) && !f.config.num_classes)
		die("%s: --fc: the model has no classifier", o.input);
	progress_update(&pg, 1, "read");
	if (!(m = model_new(&f.config, 1, MODEL_INFER, err, sizeof err)))
		die("%s: %s", o.input, err);
	if (modelfile_restore(&f, m, err, sizeof err) < 0)
		die("%s", err);
	progress_update(&pg, 2, "restored");
	if (safetensors_export_model(o.output, &f.config, f.mean, f.std, model_params(m), o.flags, err, sizeof err) < 0)
		die("%s", err);
	progress_finish(&pg, 3, NULL);
	note("%s: %s encoder%s%s (%s stem, width %d) written to %s", o.input, model_arch_name(f.config.arch),
	     o.flags & ST_MODEL_HEAD ? " + head" : "", o.flags & ST_MODEL_FC ? " + fc" : "",
	     model_stem_name(f.config.stem), f.config.width, o.output);
	model_free(m);
	modelfile_free(&f);
	return 0;
}
