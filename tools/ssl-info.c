/* ssl-info: describe a tensor stream and check that it is whole (pnmfile for
 * ssl-stream(5)). Reads every record, so a clean exit means the stream is
 * complete and valid; on a bad or truncated stream it still prints what it
 * saw, then fails with the reader's message. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cli.h"
#include "base/progress.h"
#include "io/stream.h"
#include "base/util.h"

#define MAX_NAMES   64        /* distinct tensor names tracked */
#define MAX_BUCKETS (1 << 20) /* labels or epochs counted one by one */

typedef struct {
	char    name[TENSOR_MAX_NAME];
	DType   dtype;
	int     mixed_dtype;
	int     ndim;
	int     mixed_rank;
	int64_t min[TENSOR_MAX_DIM], max[TENSOR_MAX_DIM];
	int64_t records;
} TensorStat;

/* Counts indexed by value - base, grown on demand up to MAX_BUCKETS; the rest
 * lands in `other`. */
typedef struct {
	int64_t  base;
	int64_t *n;
	int64_t  len;
	int64_t  other;
} Counts;

typedef struct {
	int64_t    records;
	Counts     labels;  /* base -1: index 0 is "unknown" */
	Counts     epochs;  /* base start_epoch */
	TensorStat t[MAX_NAMES];
	int        nt;
	int64_t    untracked;
} Stats;

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-info [--json] [--quiet] [--progress] [file]\n"
	        "Describes a tensor stream (ssl-stream(5)) and checks that it is complete.\n"
	        "With --quiet it prints nothing: the exit status tells whether the stream is whole.\n"
	        "  --json        print the report as one JSON object\n");
	cli_help_shared(fp, 16, 0);
}

static void
count(Counts *c, int64_t v)
{
	int64_t i = v - c->base;
	if (i < 0 || i >= MAX_BUCKETS) {
		c->other++;
		return;
	}
	if (i >= c->len) {
		int64_t len = c->len ? c->len : 16;
		while (len <= i)
			len *= 2;
		c->n = xreallocarray(c->n, (size_t)len, sizeof c->n[0]);
		memset(c->n + c->len, 0, (size_t)(len - c->len) * sizeof c->n[0]);
		c->len = len;
	}
	c->n[i]++;
}

static void
add_record(Stats *s, const Record *rec)
{
	s->records++;
	count(&s->labels, rec->label);
	count(&s->epochs, rec->epoch);
	for (int i = 0; i < rec->ntensors; i++) {
		const Tensor *t = &rec->tensors[i];
		TensorStat *ts = NULL;
		for (int k = 0; k < s->nt && !ts; k++)
			if (strcmp(s->t[k].name, t->name) == 0)
				ts = &s->t[k];
		if (!ts) {
			if (s->nt == MAX_NAMES) {
				s->untracked++;
				continue;
			}
			ts = &s->t[s->nt++];
			memset(ts, 0, sizeof *ts);
			strcpy(ts->name, t->name);
			ts->dtype = t->dtype;
			ts->ndim = t->ndim;
			memcpy(ts->min, t->shape, sizeof t->shape);
			memcpy(ts->max, t->shape, sizeof t->shape);
		}
		ts->records++;
		ts->mixed_dtype |= ts->dtype != t->dtype;
		if (ts->ndim != t->ndim) {
			ts->mixed_rank = 1;
			continue;
		}
		for (int d = 0; d < t->ndim; d++) {
			ts->min[d] = t->shape[d] < ts->min[d] ? t->shape[d] : ts->min[d];
			ts->max[d] = t->shape[d] > ts->max[d] ? t->shape[d] : ts->max[d];
		}
	}
}

static int
shape_varies(const TensorStat *ts)
{
	return ts->mixed_rank || memcmp(ts->min, ts->max, (size_t)ts->ndim * sizeof ts->min[0]) != 0;
}

/* ---- text */

/* Strings come from the stream: control characters (and bytes that are
 * not UTF-8) are shown as '?'. */
static void
put_clean(const char *s)
{
	fputs_printable(s, stdout);
}

static void
put_arg(const char *s)
{
	if (*s && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=+.,/:%@") == strlen(s)) {
		put_clean(s);
		return;
	}
	putchar('\'');
	for (const char *q; (q = strchr(s, '\'')); s = q + 1) {
		char *part = xstrdup(s);
		part[q - s] = '\0';
		put_clean(part);
		fputs("'\\''", stdout);
		free(part);
	}
	put_clean(s);
	putchar('\'');
}

static void
put_dims(const int64_t *d, int n)
{
	if (n == 0)
		fputs("scalar", stdout);
	for (int i = 0; i < n; i++)
		printf(i ? "x%lld" : "%lld", (long long)d[i]);
}

static void
put_count(const char *what, int64_t v)
{
	if (v < 0)
		printf("%s: unknown\n", what);
	else
		printf("%s: %lld\n", what, (long long)v);
}

static void
print_text(const char *name, const StreamHeader *h, const Stats *s, int complete)
{
	printf("file: ");
	put_clean(name);
	printf("\nformat: %s %d.%d\nkind: ", STREAM_FORMAT, h->version_major, h->version_minor);
	put_clean(h->kind);
	printf("\nclasses: %d\n", h->nclasses);
	put_count("records_per_epoch", h->records_per_epoch);
	put_count("epochs", h->epochs);
	printf("start_epoch: %lld\n", (long long)h->start_epoch);
	for (int i = 0; i < h->nmeta; i++) {
		printf("meta: ");
		put_clean(h->meta[i].key);
		putchar('=');
		put_clean(h->meta[i].value);
		putchar('\n');
	}
	printf("pipeline:");
	if (h->nprov == 0)
		printf(" unknown");
	for (int i = 0; i < h->nprov; i++) {
		printf(i ? " | " : " ");
		put_arg(h->prov[i].tool);
		for (int j = 0; j < h->prov[i].nargs; j++) {
			putchar(' ');
			put_arg(h->prov[i].args[j]);
		}
	}
	printf("\nrecords: %lld\n", (long long)s->records);
	for (int c = 0; c < h->nclasses; c++) {
		printf("class %d ", c);
		put_clean(h->classes[c]);
		printf(": %lld\n", (long long)(c + 1 < s->labels.len ? s->labels.n[c + 1] : 0));
	}
	if (h->nclasses == 0)
		for (int64_t i = 1; i < s->labels.len; i++)
			if (s->labels.n[i])
				printf("label %lld: %lld\n", (long long)(i - 1), (long long)s->labels.n[i]);
	if (s->labels.len > 0 && s->labels.n[0])
		printf("label unknown: %lld\n", (long long)s->labels.n[0]);
	if (s->labels.other)
		printf("label other: %lld\n", (long long)s->labels.other);
	for (int64_t i = 0; i < s->epochs.len; i++)
		if (s->epochs.n[i])
			printf("epoch %lld: %lld\n", (long long)(s->epochs.base + i), (long long)s->epochs.n[i]);
	if (s->epochs.other)
		printf("epoch other: %lld\n", (long long)s->epochs.other);
	for (int k = 0; k < s->nt; k++) {
		const TensorStat *ts = &s->t[k];
		printf("tensor ");
		put_clean(ts->name);
		printf(": %s ", ts->mixed_dtype ? "mixed" : dtype_str(ts->dtype));
		if (ts->mixed_rank) {
			printf("varies (rank differs)");
		} else if (shape_varies(ts)) {
			printf("varies ");
			put_dims(ts->min, ts->ndim);
			printf(" to ");
			put_dims(ts->max, ts->ndim);
		} else {
			put_dims(ts->min, ts->ndim);
		}
		printf(" in %lld records\n", (long long)ts->records);
	}
	if (s->untracked)
		printf("tensor other: %lld more, not listed\n", (long long)s->untracked);
	printf("trailer: %s\n", complete ? "seen" : "missing");
}

/* ---- JSON */

/* json_string() refuses invalid UTF-8; stream strings are not trusted. */
static json_t *
jstr(const char *s)
{
	json_t *j = json_string(s);
	if (!j) {
		char *c = xstrdup(s);
		for (char *p = c; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		j = json_string(c);
		free(c);
	}
	return j;
}

static json_t *
jcount(int64_t v)
{
	return v < 0 ? json_null() : json_integer(v);
}

static json_t *
jdims(const int64_t *d, int n)
{
	json_t *a = json_array();
	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_integer(d[i]));
	return a;
}

static json_t *
jlabel(int64_t label, const char *name, int64_t n)
{
	return json_pack("{s:I, s:o, s:I}", "label", (json_int_t)label, "name", name ? jstr(name) : json_null(),
	                 "count", (json_int_t)n);
}

static void
print_json(const char *name, const StreamHeader *h, const Stats *s, int complete, const char *error)
{
	json_t *o = json_object(), *a;
	json_object_set_new(o, "file", jstr(name));
	json_object_set_new(o, "format", json_string(STREAM_FORMAT));
	json_object_set_new(o, "version", json_pack("[i, i]", h->version_major, h->version_minor));
	json_object_set_new(o, "kind", jstr(h->kind));
	a = json_array();
	for (int i = 0; i < h->nclasses; i++)
		json_array_append_new(a, jstr(h->classes[i]));
	json_object_set_new(o, "classes", a);
	json_object_set_new(o, "records_per_epoch", jcount(h->records_per_epoch));
	json_object_set_new(o, "epochs", jcount(h->epochs));
	json_object_set_new(o, "start_epoch", json_integer(h->start_epoch));
	a = json_object();
	for (int i = 0; i < h->nmeta; i++)
		json_object_set_new(a, h->meta[i].key, jstr(h->meta[i].value));
	json_object_set_new(o, "meta", a);
	a = json_array();
	for (int i = 0; i < h->nprov; i++) {
		json_t *args = json_array();
		for (int j = 0; j < h->prov[i].nargs; j++)
			json_array_append_new(args, jstr(h->prov[i].args[j]));
		json_array_append_new(a, json_pack("{s:o, s:o, s:o}", "tool", jstr(h->prov[i].tool), "version",
		                                   jstr(h->prov[i].version), "args", args));
	}
	json_object_set_new(o, "provenance", a);
	json_object_set_new(o, "records", json_integer(s->records));
	a = json_array();
	for (int c = 0; c < h->nclasses; c++)
		json_array_append_new(a, jlabel(c, h->classes[c], c + 1 < s->labels.len ? s->labels.n[c + 1] : 0));
	for (int64_t i = h->nclasses + 1; i < s->labels.len; i++)
		if (s->labels.n[i])
			json_array_append_new(a, jlabel(i - 1, NULL, s->labels.n[i]));
	if (s->labels.len > 0 && s->labels.n[0])
		json_array_append_new(a, jlabel(-1, NULL, s->labels.n[0]));
	json_object_set_new(o, "per_class", a);
	if (s->labels.other)
		json_object_set_new(o, "labels_not_counted", json_integer(s->labels.other));
	a = json_array();
	for (int64_t i = 0; i < s->epochs.len; i++)
		if (s->epochs.n[i])
			json_array_append_new(a, json_pack("{s:I, s:I}", "epoch", (json_int_t)(s->epochs.base + i), "count",
			                                   (json_int_t)s->epochs.n[i]));
	json_object_set_new(o, "per_epoch", a);
	if (s->epochs.other)
		json_object_set_new(o, "epochs_not_counted", json_integer(s->epochs.other));
	a = json_array();
	for (int k = 0; k < s->nt; k++) {
		const TensorStat *ts = &s->t[k];
		json_t *t = json_object();
		json_object_set_new(t, "name", jstr(ts->name));
		json_object_set_new(t, "dtype", ts->mixed_dtype ? json_null() : json_string(dtype_str(ts->dtype)));
		json_object_set_new(t, "varies", json_boolean(shape_varies(ts)));
		json_object_set_new(t, "shape", shape_varies(ts) ? json_null() : jdims(ts->min, ts->ndim));
		json_object_set_new(t, "min_shape", ts->mixed_rank ? json_null() : jdims(ts->min, ts->ndim));
		json_object_set_new(t, "max_shape", ts->mixed_rank ? json_null() : jdims(ts->max, ts->ndim));
		json_object_set_new(t, "records", json_integer(ts->records));
		json_array_append_new(a, t);
	}
	json_object_set_new(o, "tensors", a);
	json_object_set_new(o, "trailer", json_boolean(complete));
	if (error)
		json_object_set_new(o, "error", jstr(error));
	json_dumpf(o, stdout, JSON_INDENT(2));
	putchar('\n');
	json_decref(o);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	Cli cli;
	int json = 0, c, s;
	const char *path = "-";
	StreamReader *r;
	const StreamHeader *h;
	Stats st;
	Record rec;
	Progress pg;

	setprogname(argv[0]);
	cli_init(&cli, "ssl-info", usage, "", longopts);
	while ((c = cli_getopt(&cli, argc, argv)) != -1)
		if (c == 'j')
			json = 1;
	if (argc - optind > 1)
		die_usage("one file at most");
	if (argc - optind == 1)
		path = argv[optind];
	cli_apply(&cli);

	r = stream_reader_open_path(path);
	h = stream_reader_header(r);
	if (!h)
		die("%s", stream_reader_error(r));
	memset(&st, 0, sizeof st);
	st.labels.base = -1;
	st.epochs.base = h->start_epoch;
	progress_init(&pg, "info", "records", stream_header_records(h), cli.progress, cli.quiet);
	while ((s = stream_reader_next(r, &rec)) == 1) {
		add_record(&st, &rec);
		progress_update(&pg, st.records, NULL);
	}
	progress_finish(&pg, st.records, NULL);
	if (!cli.quiet) {
		if (json)
			print_json(stream_reader_name(r), h, &st, s == 0, s < 0 ? stream_reader_error(r) : NULL);
		else
			print_text(stream_reader_name(r), h, &st, s == 0);
	}
	if (fshut(stdout, "<stdout>"))
		s = -1;
	if (s < 0 && stream_reader_error(r))
		die("%s", stream_reader_error(r));
	stream_reader_close(r);
	free(st.labels.n);
	free(st.epochs.n);
	return s < 0 ? EXIT_RUNTIME : 0;
}
