/* ssl-similar: the nearest neighbours of query embeddings in a bank, by
 * cosine, or the near-duplicate pairs of one collection; optionally a
 * contact sheet of the images. See ssl-similar(1); the search lives in
 * lib/eval/similar.c, the sheet in lib/eval/simsheet.c. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/cli.h"
#include "base/progress.h"
#include "base/util.h"
#include "eval/embed.h"
#include "eval/similar.h"
#include "eval/simsheet.h"
#include "io/stream.h"

typedef struct {
	const char *bank;        /* --bank FILE: neighbour mode */
	const char *input;       /* the queries, or the collection (NULL: stdin) */
	int         k;
	double      dup;         /* --duplicates T; < -1: neighbour mode */
	int         exclude_same_id;
	int         json;
	const char *sheet, *images, *query_images;
	int         sheet_rows;
	int64_t     chunk;
	Cli         cli;
} Options;

enum { OPT_BANK = 256, OPT_DUP, OPT_EXCL, OPT_JSON, OPT_SHEET, OPT_IMAGES, OPT_QIMAGES, OPT_ROWS, OPT_CHUNK };

static const struct option longopts[] = {
	{ "bank", required_argument, NULL, OPT_BANK },
	{ "k", required_argument, NULL, 'k' },
	{ "duplicates", required_argument, NULL, OPT_DUP },
	{ "exclude-same-id", no_argument, NULL, OPT_EXCL },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "sheet", required_argument, NULL, OPT_SHEET },
	{ "images", required_argument, NULL, OPT_IMAGES },
	{ "query-images", required_argument, NULL, OPT_QIMAGES },
	{ "sheet-rows", required_argument, NULL, OPT_ROWS },
	{ "chunk", required_argument, NULL, OPT_CHUNK },
	{ NULL, 0, NULL, 0 },
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	        "usage: ssl-similar --bank FILE [-k N] [options] [QUERIES]\n"
	        "       ssl-similar --duplicates T [options] [FILE]\n"
	        "  --bank FILE           embeddings to search; the queries are QUERIES (stdin when none)\n"
	        "  -k, --k N             neighbours per query (5)\n"
	        "  --duplicates T        instead: every pair of records of FILE with cosine >= T, once\n"
	        "  --exclude-same-id     no neighbour, and no pair, of two records with the same id\n"
	        "  --json                one JSON object per line instead of TSV\n"
	        "  --sheet FILE.png      a contact sheet: a row per query (its image, then its\n"
	        "                        neighbours' with scores) or per pair; needs --images\n"
	        "  --images FILE         the images stream the bank (or FILE) was encoded from\n"
	        "  --query-images FILE   the images stream the queries were encoded from (--images)\n"
	        "  --sheet-rows N        queries or pairs on the sheet (12)\n"
	        "  --chunk N             queries per matrix product (1024)\n");
	cli_help_shared(fp, 24, 0);
}

static void
parse_options(int argc, char **argv, Options *o)
{
	int c;
	memset(o, 0, sizeof *o);
	cli_init(&o->cli, "ssl-similar", usage, "k:", longopts);
	o->k = 5;
	o->dup = -2;
	o->sheet_rows = 12;
	while ((c = cli_getopt(&o->cli, argc, argv)) != -1) {
		switch (c) {
		case OPT_BANK: o->bank = optarg; break;
		case 'k': o->k = (int)opt_i64("--k", optarg, 1, 100000); break;
		case OPT_DUP: o->dup = opt_f64("--duplicates", optarg, -1, 1); break;
		case OPT_EXCL: o->exclude_same_id = 1; break;
		case OPT_JSON: o->json = 1; break;
		case OPT_SHEET: o->sheet = optarg; break;
		case OPT_IMAGES: o->images = optarg; break;
		case OPT_QIMAGES: o->query_images = optarg; break;
		case OPT_ROWS: o->sheet_rows = (int)opt_i64("--sheet-rows", optarg, 1, 1000); break;
		case OPT_CHUNK: o->chunk = opt_i64("--chunk", optarg, 1, 1 << 20); break;
		}
	}
	if (argc - optind > 1)
		die_usage("unexpected argument '%s'", argv[optind + 1]);
	o->input = optind < argc ? argv[optind] : "-";
	if ((o->dup >= -1) == (o->bank != NULL))
		die_usage("give one of --bank (neighbours) and --duplicates (pairs)");
	if (o->sheet && !o->images)
		die_usage("--sheet needs --images, the images stream the embeddings were encoded from");
	if (!o->sheet && (o->images || o->query_images))
		die_usage("--images and --query-images are for --sheet");
	if (o->bank && strcmp(o->bank, "-") == 0 && strcmp(o->input, "-") == 0)
		die_usage("the bank and the queries cannot both be stdin");
	if (!o->query_images)
		o->query_images = o->images;
}

/* ---- output ---- */

static json_t *
item_json(const Embeddings *e, int64_t i)
{
	return json_pack("{s:I,s:o}", "id", (json_int_t)e->ids[i], "source",
	                 e->sources[i] ? json_string(e->sources[i]) : json_null());
}

static void
put_json(json_t *o)
{
	char *line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(7));
	if (!line)
		die("out of memory");
	puts(line);
	free(line);
	json_decref(o);
}

static void
write_neighbours(const Options *o, const Embeddings *q, const Embeddings *b, const int64_t *idx, const float *score,
                 const int *found, int k)
{
	if (!o->json)
		puts("query_id\tquery_source\trank\tid\tsource\tscore");
	for (int64_t i = 0; i < q->n; i++) {
		const int64_t *ix = idx + (size_t)i * (size_t)k;
		const float *sc = score + (size_t)i * (size_t)k;
		if (o->json) {
			json_t *obj = item_json(q, i), *nb = json_array();
			for (int j = 0; j < found[i]; j++) {
				json_t *n = item_json(b, ix[j]);
				json_object_set_new(n, "score", json_real(sc[j]));
				json_array_append_new(nb, n);
			}
			json_object_set_new(obj, "neighbours", nb);
			put_json(obj);
			continue;
		}
		for (int j = 0; j < found[i]; j++) {
			printf("%lld\t", (long long)q->ids[i]);
			fput_tsv(q->sources[i], stdout);
			printf("\t%d\t%lld\t", j + 1, (long long)b->ids[ix[j]]);
			fput_tsv(b->sources[ix[j]], stdout);
			printf("\t%.6f\n", sc[j]);
		}
	}
}

/* ---- pairs: written as they come, the first sheet_rows kept for the sheet ---- */

typedef struct {
	const Options    *o;
	const Embeddings *e;
	SimilarPair      *keep;
	int               nkeep;
} PairOut;

static int
emit_pairs(void *ctx, const SimilarPair *p, size_t np)
{
	PairOut *po = ctx;
	const Embeddings *e = po->e;
	for (size_t i = 0; i < np; i++) {
		if (po->o->sheet && po->nkeep < po->o->sheet_rows)
			po->keep[po->nkeep++] = p[i];
		if (po->o->json) {
			put_json(json_pack("{s:o,s:o,s:f}", "a", item_json(e, p[i].a), "b", item_json(e, p[i].b), "score",
			                   (double)p[i].score));
			continue;
		}
		printf("%lld\t", (long long)e->ids[p[i].a]);
		fput_tsv(e->sources[p[i].a], stdout);
		printf("\t%lld\t", (long long)e->ids[p[i].b]);
		fput_tsv(e->sources[p[i].b], stdout);
		printf("\t%.6f\n", p[i].score);
	}
	return ferror(stdout) ? -1 : 0;
}

/* ---- the sheet ---- */

/* The images of the wanted ids (sorted, unique) from an images stream: img[i]
 * for want[i], NULL where the stream has none. The first record of an id is
 * taken (a stream of several epochs repeats them). */
typedef struct {
	uint8_t *px;
	int      h, w, c;
} Picture;

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static void
read_pictures(Picture *pic, const int64_t *want, int64_t nwant, const char *path)
{
	StreamReader *r = stream_reader_open_or_die(path, STREAM_KIND_IMAGES);
	Record rec;
	int got;
	char err[256];
	while ((got = stream_reader_next(r, &rec)) > 0) {
		const int64_t *at = bsearch(&rec.id, want, (size_t)nwant, sizeof *want, cmp_i64);
		const Tensor *t;
		Picture *p;
		if (!at || pic[at - want].px)
			continue;
		if (!(t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err)))
			die("%s: record %lld (id %lld): %s", stream_reader_name(r), (long long)stream_reader_count(r),
			    (long long)rec.id, err);
		if ((t->shape[2] != 1 && t->shape[2] != 3) || t->shape[0] > 4096 || t->shape[1] > 4096)
			die("%s: record %lld (id %lld): a %lldx%lldx%lld image; the sheet takes 1 or 3 channels, sides up to 4096",
			    stream_reader_name(r), (long long)stream_reader_count(r), (long long)rec.id,
			    (long long)t->shape[0], (long long)t->shape[1], (long long)t->shape[2]);
		p = &pic[at - want];
		p->h = (int)t->shape[0];
		p->w = (int)t->shape[1];
		p->c = (int)t->shape[2];
		p->px = xmalloc(tensor_nbytes(t));
		memcpy(p->px, t->data, tensor_nbytes(t));
	}
	if (got < 0)
		die("%s", stream_reader_error(r));
	stream_reader_close(r);
}

/* The pictures of ids (n of them) of the images stream at path, in order. */
static Picture *
pictures_for(const int64_t *ids, int64_t n, const char *path)
{
	int64_t *want = xcalloc(n ? (size_t)n : 1, sizeof *want), m = 0;
	Picture *sorted, *out = xcalloc(n ? (size_t)n : 1, sizeof *out);
	memcpy(want, ids, (size_t)n * sizeof *want);
	qsort(want, (size_t)n, sizeof *want, cmp_i64);
	for (int64_t i = 0; i < n; i++)
		if (m == 0 || want[m - 1] != want[i])
			want[m++] = want[i];
	sorted = xcalloc(m ? (size_t)m : 1, sizeof *sorted);
	read_pictures(sorted, want, m, path);
	for (int64_t i = 0; i < n; i++) {
		const int64_t *at = bsearch(&ids[i], want, (size_t)m, sizeof *want, cmp_i64);
		const Picture *p = &sorted[at - want];
		out[i] = *p;
		if (p->px) {
			out[i].px = xmalloc((size_t)p->h * (size_t)p->w * (size_t)p->c);
			memcpy(out[i].px, p->px, (size_t)p->h * (size_t)p->w * (size_t)p->c);
		}
	}
	for (int64_t i = 0; i < m; i++)
		free(sorted[i].px);
	free(sorted);
	free(want);
	return out;
}

static void
set_cell(SimSheetCell *c, const Picture *p, int64_t id, const char *line2)
{
	c->px = p->px;
	c->h = p->h;
	c->w = p->w;
	c->c = p->c;
	snprintf(c->text[0], sizeof c->text[0], "%lld", (long long)id);
	snprintf(c->text[1], sizeof c->text[1], "%s", line2);
}

/* rows x cols cells: row r shows ids left (from lpath) then ids right
 * (from rpath), scores under the right ones; missing ones reported. */
static void
draw_sheet(const char *path, const int64_t *lid, const char *lpath, int rows, const int64_t *rid,
           const float *rscore, const int *rn, int rcols, const char *rpath)
{
	int cols = 1 + rcols, missing = 0;
	int64_t nr = (int64_t)rows * rcols;
	Picture *lp = pictures_for(lid, rows, lpath), *rp = pictures_for(rid, nr, rpath);
	SimSheetCell *cells = xcalloc((size_t)rows * (size_t)cols, sizeof *cells);
	char err[512];
	for (int r = 0; r < rows; r++) {
		set_cell(&cells[r * cols], &lp[r], lid[r], "query");
		missing += !lp[r].px;
		for (int j = 0; j < rn[r]; j++) {
			char s[16];
			snprintf(s, sizeof s, "%.3f", rscore[r * rcols + j]);
			set_cell(&cells[r * cols + 1 + j], &rp[r * rcols + j], rid[r * rcols + j], s);
			missing += !rp[r * rcols + j].px;
		}
	}
	if (missing)
		warn("%s: %d images of the sheet not found in the images streams (ids do not match?)", path, missing);
	if (simsheet_write(path, cells, rows, cols, err, sizeof err) < 0)
		die("%s", err);
	note("%s: %d rows", path, rows);
	for (int r = 0; r < rows; r++)
		free(lp[r].px);
	for (int64_t i = 0; i < nr; i++)
		free(rp[i].px);
	free(lp);
	free(rp);
	free(cells);
}

/* ---- main ---- */

static void
on_progress(void *ctx, int64_t done, int64_t total)
{
	(void)total;
	progress_update(ctx, done, NULL);
}

static void
load(Embeddings *e, const char *path)
{
	char err[1024];
	if (embed_load(e, path, err, sizeof err) < 0)
		die("%s", err);
}

int
main(int argc, char *argv[])
{
	Options o;
	Embeddings q, b;
	Progress pg;
	SimilarOpts so = { 0 };
	char err[1024];
	float *qinv, *binv;

	setprogname(argv[0]);
	parse_options(argc, argv, &o);
	cli_apply(&o.cli);
	so.qchunk = o.chunk;
	so.progress = on_progress;
	so.ctx = &pg;

	load(&q, o.input);
	qinv = xcalloc(q.n ? (size_t)q.n : 1, sizeof *qinv);
	similar_inv_norms(qinv, q.x, q.n, q.dim);
	if (o.dup >= -1) {
		PairOut po = { &o, &q, xcalloc((size_t)o.sheet_rows, sizeof(SimilarPair)), 0 };
		int64_t np;
		if (!o.json)
			puts("id_a\tsource_a\tid_b\tsource_b\tscore");
		progress_init(&pg, "duplicates", "records", q.n, o.cli.progress, o.cli.quiet);
		np = similar_pairs(q.x, qinv, o.exclude_same_id ? q.ids : NULL, q.n, q.dim, (float)o.dup, &so, emit_pairs,
		                   &po);
		if (np < 0)
			die("<stdout>: write error:");
		progress_finish(&pg, q.n, NULL);
		note("%s: %lld pairs with cosine >= %g among %lld records", q.name, (long long)np, o.dup, (long long)q.n);
		if (o.sheet && po.nkeep) {
			int64_t *a = xcalloc((size_t)po.nkeep, sizeof *a), *c = xcalloc((size_t)po.nkeep, sizeof *c);
			float *s = xcalloc((size_t)po.nkeep, sizeof *s);
			int *one = xcalloc((size_t)po.nkeep, sizeof *one);
			for (int i = 0; i < po.nkeep; i++) {
				a[i] = q.ids[po.keep[i].a];
				c[i] = q.ids[po.keep[i].b];
				s[i] = po.keep[i].score;
				one[i] = 1;
			}
			draw_sheet(o.sheet, a, o.images, po.nkeep, c, s, one, 1, o.images);
			free(a);
			free(c);
			free(s);
			free(one);
		} else if (o.sheet) {
			warn("%s: no pairs: no sheet written", o.sheet);
		}
		free(po.keep);
	} else {
		int64_t *idx;
		float *score;
		int *found;
		load(&b, o.bank);
		if (q.n && b.n && q.dim != b.dim)
			die("%s: embeddings of %d dimensions, but the bank %s has %d", q.name, q.dim, b.name, b.dim);
		{
			EncoderId qi = embed_encoder_id(&q.header), bi = embed_encoder_id(&b.header);
			if (embed_check_encoder(q.name, &qi, b.name, &bi, err, sizeof err) < 0)
				die("%s", err);
		}
		if (b.n == 0)
			warn("%s: the bank is empty: no neighbours", b.name);
		binv = xcalloc(b.n ? (size_t)b.n : 1, sizeof *binv);
		similar_inv_norms(binv, b.x, b.n, b.dim);
		idx = xcalloc((size_t)(q.n ? q.n : 1) * (size_t)o.k, sizeof *idx);
		score = xcalloc((size_t)(q.n ? q.n : 1) * (size_t)o.k, sizeof *score);
		found = xcalloc(q.n ? (size_t)q.n : 1, sizeof *found);
		progress_init(&pg, "neighbours", "queries", q.n, o.cli.progress, o.cli.quiet);
		if (q.n)
			similar_topk(idx, score, found, q.x, qinv, o.exclude_same_id ? q.ids : NULL, q.n, b.x, binv,
			             o.exclude_same_id ? b.ids : NULL, b.n, q.n ? q.dim : 1, o.k, &so);
		progress_finish(&pg, q.n, NULL);
		write_neighbours(&o, &q, &b, idx, score, found, o.k);
		if (o.sheet && q.n && b.n) {
			int rows = q.n < o.sheet_rows ? (int)q.n : o.sheet_rows;
			int64_t *rid = xcalloc((size_t)rows * (size_t)o.k, sizeof *rid);
			for (int64_t i = 0; i < (int64_t)rows * o.k; i++)
				rid[i] = idx[i] >= 0 ? b.ids[idx[i]] : 0;
			draw_sheet(o.sheet, q.ids, o.query_images, rows, rid, score, found, o.k, o.images);
			free(rid);
		} else if (o.sheet) {
			warn("%s: no queries or an empty bank: no sheet written", o.sheet);
		}
		free(idx);
		free(score);
		free(found);
		free(binv);
		embed_free(&b);
	}
	free(qinv);
	embed_free(&q);
	return fshut(stdout, "<stdout>");
}
