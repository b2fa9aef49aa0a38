/* Tests for lib/eval/classifier (probe files) through ssl-probe --save and
 * --predict: the round trip reproduces ssl-probe's accuracy image by image,
 * unlabelled inputs predict, and inputs of another encoder or dimension,
 * files that are not probe files and damaged ones are refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/rng.h"
#include "eval/classifier.h"
#include "io/msgfile.h"
#include "embwrite.h"
#include "testutil.h"

enum { D = 6, K = 3, NTR = 120, NTE = 61 };

static char *names[K] = { "ant", "bee", "cat" };

/* Overlapping Gaussian blobs: a probe gets most, not all, right. */
static void
blobs(float *x, int64_t *y, int64_t n, int dim, uint64_t seed)
{
	Rng r = rng_for(seed, 0, 0, 0);
	for (int64_t i = 0; i < n; i++) {
		y[i] = i % K;
		for (int j = 0; j < dim; j++)
			x[i * dim + j] = (float)(rng_normal(&r) + (j == y[i] ? 1.2 : 0.0));
	}
}

static void
write_pair(void)
{
	float xtr[NTR * D], xte[NTE * D];
	int64_t ytr[NTR], yte[NTE];
	EmbWriteOpts o = { K, names, "00c0ffee00c0ffee", "encoder", 0, 1 };
	blobs(xtr, ytr, NTR, D, 1);
	blobs(xte, yte, NTE, D, 2);
	ew_embeddings(tu_path("train.emb"), xtr, ytr, NTR, D, &o);
	o.id0 = 5000;
	ew_embeddings(tu_path("test.emb"), xte, yte, NTE, D, &o);
}

/* p.probe: a linear probe on train.emb */
static void
save_probe(void)
{
	TuResult r;
	tu_run(&r, "cd '%s' && ssl-probe --quiet --train train.emb --test test.emb --save p.probe", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_result_free(&r);
}

/* top-1 correct count of result i of ssl-probe --json */
static int64_t
json_correct(json_t *root, int i)
{
	json_t *r = json_array_get(json_object_get(root, "results"), (size_t)i);
	json_t *c = json_object_get(r, "correct");
	ck_assert_msg(c != NULL, "no results[%d].correct", i);
	return json_integer_value(c);
}

/* Counts TSV prediction lines whose class equals the true class. */
static int64_t
tsv_correct(const char *out, int64_t *lines)
{
	int64_t n = 0, ok = 0;
	const char *p = strchr(out, '\n');
	ck_assert_ptr_nonnull(p);
	ck_assert_msg(strncmp(out, "id\tsource\tclass\tprobability\ttrue_class\n", 39) == 0, "header: %.60s", out);
	for (p++; *p; n++) {
		char id[32], src[64], cls[32], truth[32];
		double prob;
		const char *e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		truth[0] = '\0';
		ck_assert_msg(sscanf(p, "%31[^\t]\t%63[^\t]\t%31[^\t]\t%lf\t%31[^\n]", id, src, cls, &prob, truth) >= 4,
		              "line %lld: %.80s", (long long)n + 2, p);
		ck_assert_msg(prob > 1.0 / K - 1e-9 && prob <= 1.0, "probability %g", prob);
		ck_assert_msg(strncmp(src, "item", 4) == 0, "source '%s'", src);
		ok += strcmp(cls, truth) == 0;
		p = e + 1;
	}
	*lines = n;
	return ok;
}

START_TEST(test_round_trip)
{
	TuResult r, p;
	json_error_t je;
	json_t *root;
	int64_t lines, want_lin, want_mlp;
	write_pair();
	tu_run(&r, "cd '%s' && ssl-probe --json --quiet --train train.emb --test test.emb --method linear,mlp --epochs 8 "
	       "--hidden 16 --save p.probe", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	root = json_loads(r.out, 0, &je);
	ck_assert_msg(root != NULL, "json: %s", je.text);
	want_lin = json_correct(root, 0);
	want_mlp = json_correct(root, 1);
	ck_assert_msg(want_lin > NTE / 2 && want_lin < NTE, "linear %lld of %d: no test of anything", (long long)want_lin,
	              NTE);
	json_decref(root);
	tu_result_free(&r);

	tu_run(&p, "cd '%s' && ssl-probe --predict p.probe test.emb", tu_tmpdir());
	ck_assert_msg(p.status == 0, "%s", p.err);
	ck_assert_int_eq(tsv_correct(p.out, &lines), want_lin);
	ck_assert_int_eq(lines, NTE);
	tu_assert_has(p.err, "test.emb: ");
	tu_assert_has(p.err, "predicted right");
	tu_result_free(&p);

	tu_run(&p, "cd '%s' && ssl-probe --predict p.probe --method mlp < test.emb", tu_tmpdir());
	ck_assert_msg(p.status == 0, "%s", p.err);
	ck_assert_int_eq(tsv_correct(p.out, &lines), want_mlp);
	tu_result_free(&p);

	/* JSON lines: the same predictions */
	tu_run(&p, "cd '%s' && ssl-probe --predict p.probe --json --quiet test.emb", tu_tmpdir());
	ck_assert_msg(p.status == 0, "%s", p.err);
	{
		int64_t n = 0, ok = 0;
		for (char *line = strtok(p.out, "\n"); line; line = strtok(NULL, "\n"), n++) {
			json_t *o = json_loads(line, 0, &je);
			ck_assert_msg(o != NULL, "line %lld: %s", (long long)n + 1, je.text);
			ck_assert_int_eq(json_integer_value(json_object_get(o, "id")), 5000 + n);
			ok += json_equal(json_object_get(o, "class"), json_object_get(o, "true_class"));
			json_decref(o);
		}
		ck_assert_int_eq(n, NTE);
		ck_assert_int_eq(ok, want_lin);
	}
	tu_result_free(&p);

	/* the file, read back by the library */
	{
		ProbeFile pf;
		char err[512];
		ck_assert_msg(probefile_load(&pf, tu_path("p.probe"), err, sizeof err) == 0, "%s", err);
		ck_assert_int_eq(pf.D, D);
		ck_assert_int_eq(pf.K, K);
		ck_assert_int_eq(pf.nclf, 2);
		ck_assert_str_eq(pf.classes[2], "cat");
		ck_assert_str_eq(pf.model_id, "00c0ffee00c0ffee");
		ck_assert_int_eq(pf.ntrain, NTR);
		ck_assert(fabs(pf.clf[0].test_accuracy - (double)want_lin / NTE) < 1e-12);
		probefile_free(&pf);
	}
}
END_TEST

START_TEST(test_unlabelled)
{
	TuResult r;
	float x[10 * D];
	int64_t y[10], lines;
	EmbWriteOpts o = { 0, NULL, "00c0ffee00c0ffee", NULL, 7, 1 };
	write_pair();
	save_probe();
	blobs(x, y, 10, D, 3);
	ew_embeddings(tu_path("new.emb"), x, NULL, 10, D, &o);
	tu_run(&r, "cd '%s' && ssl-probe --predict p.probe new.emb", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_int_eq(tsv_correct(r.out, &lines), 0);
	ck_assert_int_eq(lines, 10);
	ck_assert_msg(strstr(r.out, "\t\n") != NULL, "no empty true_class: %s", r.out);
	ck_assert_msg(strstr(r.err, "predicted right") == NULL, "%s", r.err);
	tu_result_free(&r);
}
END_TEST

/* exit 1 and nothing on stdout, with msg in the one-line error */
static void
refused(const char *cmd, const char *msg)
{
	TuResult r;
	tu_run(&r, "cd '%s' && %s", tu_tmpdir(), cmd);
	ck_assert_msg(r.status == 1, "%s: status %d: %s", cmd, r.status, r.err);
	ck_assert_msg(r.outlen == 0, "%s: wrote to stdout", cmd);
	tu_assert_has(r.err, msg);
	ck_assert_msg(strchr(r.err, '\n') == r.err + strlen(r.err) - 1, "not one line: %s", r.err);
	tu_result_free(&r);
}

START_TEST(test_refused)
{
	TuResult r;
	float x[10 * 4];
	int64_t y[10];
	EmbWriteOpts other = { K, names, "1111111111111111", "encoder", 0, 0 };
	EmbWriteOpts layer = { K, names, "00c0ffee00c0ffee", "proj", 0, 0 };
	EmbWriteOpts nometa = { 0, NULL, NULL, NULL, 0, 0 };
	write_pair();
	save_probe();
	blobs(x, y, 10, 4, 4);
	ew_embeddings(tu_path("d4.emb"), x, y, 10, 4, &nometa);
	blobs(x, y, 6, D, 4);
	ew_embeddings(tu_path("other.emb"), x, y, 6, D, &other);
	ew_embeddings(tu_path("layer.emb"), x, y, 6, D, &layer);

	refused("ssl-probe --predict p.probe other.emb",
	        "other.emb: embeddings of another encoder (model_id 1111111111111111, p.probe has 00c0ffee00c0ffee)");
	refused("ssl-probe --predict p.probe layer.emb", "layer.emb: embeddings of another layer");
	refused("ssl-probe --predict p.probe d4.emb", "d4.emb: embeddings of 4 dimensions, but p.probe was trained on 6");
	refused("ssl-probe --predict test.emb test.emb",
	        "test.emb: not an ssl-tools probe file (an ssl-stream of kind \"embeddings\")");
	refused("printf 'hello\\n' > t.txt && ssl-probe --predict t.txt test.emb", "t.txt: not an ssl-tools probe file (a text file)");
	refused("head -c 300 p.probe > cut.probe && ssl-probe --predict cut.probe test.emb", "cut.probe: truncated file");
	refused("cp p.probe bad.probe && printf 'Z' | dd of=bad.probe bs=1 seek=200 conv=notrunc 2>/dev/null && "
	        "ssl-probe --predict bad.probe test.emb",
	        "bad.probe: checksum mismatch");
	refused("ssl-probe --predict p.probe --method mlp test.emb", "p.probe: holds no mlp classifier");
	/* training on one encoder's embeddings and testing on another's */
	refused("ssl-probe --train train.emb --test other.emb", "other.emb: embeddings of another encoder");

	tu_run(&r, "cd '%s' && ssl-probe --train train.emb --test test.emb --method knn --save k.probe", tu_tmpdir());
	ck_assert_int_eq(r.status, 2);
	tu_assert_has(r.err, "--save: kNN keeps no classifier");
	tu_result_free(&r);
	tu_run(&r, "cd '%s' && ssl-probe --predict p.probe --train train.emb", tu_tmpdir());
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
}
END_TEST

/* ssl-encode's model_id: the same for one model wherever its file lies,
 * another for another model. */
START_TEST(test_model_id)
{
	TuResult r;
	ew_images(tu_path("im.images"), 12, 8, 8, 0);
	tu_run(&r, "cd '%s' && for s in 0 1; do ssl-train --quiet --steps 0 --seed $s --input-size 8x8x3 --width 2 "
	       "-o m$s.ssl || exit; done && cp m0.ssl moved.ssl && ssl-encode --quiet -m m0.ssl < im.images > a.emb && "
	       "ssl-encode --quiet -m moved.ssl < im.images > b.emb && ssl-encode --quiet -m m1.ssl < im.images > c.emb "
	       "&& for f in a b c; do ssl-info --json $f.emb | grep -o '\"model_id\": *\"[0-9a-f]*\"' || exit; done",
	       tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	{
		char id[3][64];
		const char *p = r.out;
		for (int i = 0; i < 3; i++) {
			const char *q = strchr(p, '\n');
			ck_assert_ptr_nonnull(q);
			snprintf(id[i], sizeof id[i], "%.*s", (int)(q - p), p);
			p = q + 1;
		}
		ck_assert_str_eq(id[0], id[1]);
		ck_assert_str_ne(id[0], id[2]);
	}
	tu_result_free(&r);
}
END_TEST

/* Hostile probe files: every truncation fails with one line naming the
 * file; random byte changes with the checksum made right again reach the
 * parser, which loads a consistent probe or fails with one line (and, under
 * make check-asan, touches nothing it should not). */
START_TEST(test_hostile_files)
{
	const char *path = tu_path("h.probe"), *bad = tu_path("bad.probe");
	char *names3[K] = { "ant", "bee", "cat" }, err[512];
	EncoderId id = { "0123456789abcdef", "m.ssl", "encoder", "no" };
	ProbeFile pf;
	ProbeResult r;
	unsigned char *b, *m;
	size_t len;
	Rng rng = rng_for(9, 0, 0, 0);
	int loaded = 0;

	/* a linear and an mlp classifier, by hand */
	memset(&r, 0, sizeof r);
	r.mean = calloc(D, sizeof *r.mean);
	r.scale = calloc(D, sizeof *r.scale);
	for (int j = 0; j < D; j++)
		r.scale[j] = 1;
	r.cfg.method = PROBE_LINEAR;
	linear_init(&r.linear, K, D);
	r.C = 1;
	probefile_init(&pf, D, K, names3, &id, "train.emb", 10);
	probefile_add(&pf, &r);
	r.cfg.method = PROBE_MLP;
	mlp_alloc(&r.mlp, D, 4, K);
	probefile_add(&pf, &r);
	ck_assert_msg(probefile_save(path, &pf, err, sizeof err) == 0, "%s", err);
	probefile_free(&pf);
	probe_result_free(&r);

	b = (unsigned char *)tu_read_file(path, &len);
	m = malloc(len);
	for (size_t n = 0; n < len; n++) {
		tu_write_file(bad, b, n);
		ck_assert_int_eq(probefile_load(&pf, bad, err, sizeof err), -1);
		ck_assert_msg(strncmp(err, bad, strlen(bad)) == 0 && !strchr(err, '\n'), "%zu bytes: %s", n, err);
	}
	for (int t = 0; t < 400; t++) {
		uint32_t crc;
		memcpy(m, b, len);
		for (int c = 0, nc = 1 + (int)rng_below(&rng, 4); c < nc; c++)
			m[rng_below(&rng, len - 5)] = (unsigned char)rng_below(&rng, 256);
		crc = msgfile_crc32(0, m, len - 5);
		m[len - 4] = (unsigned char)(crc >> 24), m[len - 3] = (unsigned char)(crc >> 16);
		m[len - 2] = (unsigned char)(crc >> 8), m[len - 1] = (unsigned char)crc;
		tu_write_file(bad, m, len);
		if (probefile_load(&pf, bad, err, sizeof err) == 0) {
			loaded++;
			ck_assert(pf.D >= 1 && pf.K >= 2 && pf.nclf >= 1 && pf.mean && pf.scale);
			for (int k = 0; k < pf.K; k++)
				ck_assert_ptr_nonnull(pf.classes[k]);
			probefile_free(&pf);
		} else {
			ck_assert_msg(strncmp(err, bad, strlen(bad)) == 0 && !strchr(err, '\n'), "%s", err);
		}
	}
	ck_assert_msg(loaded > 0 && loaded < 400, "%d of 400 changed files loaded: the test reaches nothing", loaded);
	free(b);
	free(m);
}
END_TEST

static Suite *
classifier_suite(void)
{
	Suite *s = suite_create("classifier");
	TCase *tc = tcase_create("probe files");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_round_trip);
	tcase_add_test(tc, test_unlabelled);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_model_id);
	tcase_add_test(tc, test_hostile_files);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(classifier_suite)
