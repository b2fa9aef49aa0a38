/* Tests for lib/eval/similar (top-k by cosine, near-duplicate pairs),
 * lib/eval/simsheet and the ssl-similar tool.
 *
 * The oracles are the naive double-precision twins similar_topk_ref and
 * similar_pairs_ref. Small-integer data makes every dot product exact in
 * float, so exact ties (planted duplicate rows, a zero query) must break
 * the same way, to the lower bank index, whatever the chunking. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/rng.h"
#include "base/util.h"
#include "eval/similar.h"
#include "eval/simsheet.h"
#include "embwrite.h"
#include "testutil.h"

enum { D = 16, NB = 203, NQ = 37 };

/* x (n, D) with entries in -3..3; rows dup_from.. copied from earlier rows */
static void
int_data(float *x, int64_t n, uint64_t seed, int ndup)
{
	Rng r = rng_for(seed, 0, 0, 0);
	for (int64_t i = 0; i < n * D; i++)
		x[i] = (float)((int)(rng_u64(&r) % 7) - 3);
	for (int d = 0; d < ndup; d++) {
		int64_t to = n - 1 - 3 * d, from = (int64_t)(rng_u64(&r) % (uint64_t)(n / 2));
		memcpy(x + to * D, x + from * D, D * sizeof *x);
	}
}

static double
cosine(const float *a, const float *b)
{
	double ab = 0, aa = 0, bb = 0;
	for (int j = 0; j < D; j++)
		ab += (double)a[j] * b[j], aa += (double)a[j] * a[j], bb += (double)b[j] * b[j];
	return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* Checks fast against the twin: the same count; at each rank the same
 * score (1e-5), and a row whose exact cosine is the twin's at that rank
 * (1e-6: equal or nearly equal cosines from different dot products and
 * norms may round apart in float, and then swap); identical rows always
 * in index order. */
static void
check_topk(const float *Q, const int64_t *qids, int64_t nq, const float *bank, const int64_t *bids, int64_t n, int k,
           const SimilarOpts *o)
{
	int64_t *idx = calloc((size_t)(nq * k), sizeof *idx), *ridx = calloc((size_t)(nq * k), sizeof *ridx);
	float *sc = calloc((size_t)(nq * k), sizeof *sc), *qinv = calloc((size_t)nq, sizeof *qinv);
	float *binv = calloc((size_t)(n ? n : 1), sizeof *binv);
	double *rsc = calloc((size_t)(nq * k), sizeof *rsc);
	int *found = calloc((size_t)nq, sizeof *found), *rfound = calloc((size_t)nq, sizeof *rfound);
	similar_inv_norms(qinv, Q, nq, D);
	similar_inv_norms(binv, bank, n, D);
	similar_topk(idx, sc, found, Q, qinv, qids, nq, bank, binv, bids, n, D, k, o);
	similar_topk_ref(ridx, rsc, rfound, Q, qids, nq, bank, bids, n, D, k);
	for (int64_t i = 0; i < nq; i++) {
		ck_assert_int_eq(found[i], rfound[i]);
		for (int j = 0; j < k; j++) {
			int64_t a = i * k + j;
			ck_assert_msg(fabs(sc[a] - rsc[a]) < 1e-5, "query %lld rank %d: %g vs %g", (long long)i, j, sc[a], rsc[a]);
			if (j >= found[i]) {
				ck_assert_int_eq(idx[a], -1);
				continue;
			}
			/* the one chosen scores as the twin's at this rank, up to float rounding */
			ck_assert_msg(fabs(cosine(Q + i * D, bank + idx[a] * D) - rsc[a]) < 1e-6,
			              "query %lld rank %d: index %lld, twin %lld", (long long)i, j, (long long)idx[a],
			              (long long)ridx[a]);
			/* identical rows: the lower index first */
			for (int t = 0; t < j; t++)
				if (memcmp(bank + idx[i * k + t] * D, bank + idx[a] * D, D * sizeof *bank) == 0)
					ck_assert_msg(idx[i * k + t] < idx[a], "query %lld: identical rows %lld after %lld", (long long)i,
					              (long long)idx[i * k + t], (long long)idx[a]);
			if (qids && bids)
				ck_assert_int_ne(qids[i], bids[idx[a]]);
		}
	}
	free(idx), free(ridx), free(sc), free(qinv), free(binv), free(rsc), free(found), free(rfound);
}

START_TEST(test_topk_ties_and_chunks)
{
	float *bank = malloc(NB * D * sizeof *bank), *Q = malloc(NQ * D * sizeof *Q);
	int64_t qids[NQ], bids[NB];
	SimilarOpts small = { 7, 16, NULL, NULL }, one = { 1, 1, NULL, NULL };
	int_data(bank, NB, 1, 12);
	int_data(Q, NQ, 2, 0);
	memcpy(Q + 3 * D, bank + 40 * D, D * sizeof *Q); /* a query that is in the bank (twice, if 40 was copied) */
	memset(Q + 5 * D, 0, D * sizeof *Q);              /* a zero query: every score 0, a tie of all */
	memset(bank + 7 * D, 0, D * sizeof *bank);        /* a zero bank row */
	for (int i = 0; i < NB; i++)
		bids[i] = 1000 + i % 50;
	for (int i = 0; i < NQ; i++)
		qids[i] = 1000 + i;
	const int ks[] = { 1, 5, 64 };
	for (int t = 0; t < 3; t++) {
		check_topk(Q, NULL, NQ, bank, NULL, NB, ks[t], NULL);
		check_topk(Q, NULL, NQ, bank, NULL, NB, ks[t], &small);
		check_topk(Q, qids, NQ, bank, bids, NB, ks[t], &small);
	}
	check_topk(Q, NULL, 9, bank, NULL, 11, 3, &one);
	/* the zero query: ties everywhere, so the first k bank rows */
	{
		int64_t idx[5];
		float sc[5], qinv[1], *binv = malloc(NB * sizeof *binv);
		int found[1];
		similar_inv_norms(qinv, Q + 5 * D, 1, D);
		similar_inv_norms(binv, bank, NB, D);
		similar_topk(idx, sc, found, Q + 5 * D, qinv, NULL, 1, bank, binv, NULL, NB, D, 5, &small);
		for (int j = 0; j < 5; j++)
			ck_assert_int_eq(idx[j], j);
		free(binv);
	}
	free(bank);
	free(Q);
}
END_TEST

START_TEST(test_topk_small_banks)
{
	float bank[4 * D], Q[3 * D];
	int64_t idx[3 * 10];
	float sc[3 * 10], qinv[3], binv[4];
	int found[3];
	int_data(bank, 4, 3, 0);
	int_data(Q, 3, 4, 0);
	/* k larger than the bank: all of it, in order, then -1 */
	check_topk(Q, NULL, 3, bank, NULL, 4, 10, NULL);
	similar_inv_norms(qinv, Q, 3, D);
	similar_inv_norms(binv, bank, 4, D);
	similar_topk(idx, sc, found, Q, qinv, NULL, 3, bank, binv, NULL, 4, D, 10, NULL);
	ck_assert_int_eq(found[2], 4);
	ck_assert_int_eq(idx[2 * 10 + 4], -1);
	/* an empty bank: nothing found */
	similar_topk(idx, sc, found, Q, qinv, NULL, 3, bank, binv, NULL, 0, D, 10, NULL);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(found[i], 0);
		ck_assert_int_eq(idx[i * 10], -1);
	}
}
END_TEST

typedef struct {
	SimilarPair p[512];
	int64_t     n;
	int         calls;
} Collect;

static int
collect(void *ctx, const SimilarPair *p, size_t np)
{
	Collect *c = ctx;
	ck_assert_msg(c->n + (int64_t)np <= 512, "too many pairs");
	memcpy(c->p + c->n, p, np * sizeof *p);
	c->n += (int64_t)np;
	c->calls++;
	return 0;
}

START_TEST(test_pairs_planted)
{
	enum { N = 150, DD = 32 };
	float *x = malloc(N * DD * sizeof *x);
	float inv[N];
	int64_t ids[N];
	Rng r = rng_for(5, 0, 0, 0);
	SimilarPair *ref;
	int64_t nref;
	/* planted: 8 exact copies, 4 near copies (noise 1e-3), one triple */
	static const int64_t plant[][2] = { { 3, 140 }, { 10, 11 }, { 20, 99 }, { 21, 149 }, { 50, 51 }, { 60, 120 },
		                            { 61, 62 }, { 70, 71 }, { 80, 81 }, { 90, 91 }, { 100, 130 }, { 100, 131 } };
	const int nplant = (int)(sizeof plant / sizeof plant[0]);
	for (int i = 0; i < N * DD; i++)
		x[i] = (float)rng_normal(&r);
	for (int p = 0; p < nplant; p++)
		for (int j = 0; j < DD; j++)
			x[plant[p][1] * DD + j] = x[plant[p][0] * DD + j] + (p >= 6 && p < 10 ? 1e-3f * (float)rng_normal(&r) : 0);
	for (int i = 0; i < N; i++)
		ids[i] = i;
	similar_inv_norms(inv, x, N, DD);
	nref = similar_pairs_ref(&ref, x, NULL, N, DD, 0.95);
	/* the 12 planted pairs and the one they imply (130, 131) */
	ck_assert_int_eq(nref, nplant + 1);
	{
		const SimilarOpts opts[] = { { 0, 0, NULL, NULL }, { 16, 7, NULL, NULL }, { 1, 1000, NULL, NULL } };
		for (int t = 0; t < 3; t++) {
			Collect c = { 0 };
			ck_assert_int_eq(similar_pairs(x, inv, NULL, N, DD, 0.95f, &opts[t], collect, &c), nref);
			ck_assert_int_eq(c.n, nref);
			for (int64_t i = 0; i < nref; i++) {
				ck_assert_int_eq(c.p[i].a, ref[i].a);
				ck_assert_int_eq(c.p[i].b, ref[i].b);
				ck_assert(fabsf(c.p[i].score - ref[i].score) < 1e-5f);
			}
		}
	}
	/* planted pairs in order: (3,140) first, (100,130) (100,131) (130,131) last */
	ck_assert_int_eq(ref[0].a, 3);
	ck_assert_int_eq(ref[nref - 1].a, 130);
	ck_assert_int_eq(ref[nref - 1].b, 131);
	free(ref);
	/* equal ids leave the pair out */
	ids[140] = 3;
	{
		Collect c = { 0 };
		ck_assert_int_eq(similar_pairs(x, inv, ids, N, DD, 0.95f, NULL, collect, &c), nplant);
		for (int64_t i = 0; i < c.n; i++)
			ck_assert(!(c.p[i].a == 3 && c.p[i].b == 140));
	}
	free(x);
}
END_TEST

/* ---- the tool ---- */

static void
write_sets(void)
{
	float bank[20 * D], q[6 * D], d8[3 * 8];
	EmbWriteOpts bo = { 0, NULL, "aaaa", "encoder", 100, 1 }, qo = { 0, NULL, "aaaa", "encoder", 0, 1 };
	EmbWriteOpts other = { 0, NULL, "bbbb", "encoder", 0, 1 };
	int_data(bank, 20, 7, 2);
	int_data(q, 6, 8, 0);
	memcpy(q, bank + 4 * D, D * sizeof *q);
	for (int i = 0; i < 24; i++)
		d8[i] = (float)i;
	ew_embeddings(tu_path("bank.emb"), bank, NULL, 20, D, &bo);
	ew_embeddings(tu_path("q.emb"), q, NULL, 6, D, &qo);
	ew_embeddings(tu_path("empty.emb"), q, NULL, 0, D, &bo);
	ew_embeddings(tu_path("other.emb"), q, NULL, 6, D, &other);
	ew_embeddings(tu_path("d8.emb"), d8, NULL, 3, 8, &qo);
	ew_images(tu_path("bank.images"), 20, 5, 7, 100);
	ew_images(tu_path("q.images"), 6, 5, 7, 0);
}

static int
count_lines(const char *s)
{
	int n = 0;
	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

START_TEST(test_tool)
{
	TuResult r;
	json_error_t je;
	write_sets();
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb -k 3 q.emb", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_int_eq(count_lines(r.out), 1 + 6 * 3);
	tu_assert_has(r.out, "query_id\tquery_source\trank\tid\tsource\tscore\n0\titem0.png\t1\t104\titem104.png\t1.000000\n");
	tu_result_free(&r);

	/* k > bank: every bank row once per query, JSON lines */
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb -k 50 --json < q.emb", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_int_eq(count_lines(r.out), 6);
	{
		char *nl = strchr(r.out, '\n');
		*nl = '\0';
		json_t *o = json_loads(r.out, 0, &je);
		ck_assert_msg(o != NULL, "%s", je.text);
		ck_assert_int_eq(json_array_size(json_object_get(o, "neighbours")), 20);
		ck_assert_str_eq(json_string_value(json_object_get(o, "source")), "item0.png");
		json_decref(o);
	}
	tu_result_free(&r);

	/* an empty bank: the header, no neighbours, a warning */
	tu_run(&r, "cd '%s' && ssl-similar --bank empty.emb q.emb", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_int_eq(count_lines(r.out), 1);
	tu_assert_has(r.err, "empty.emb: the bank is empty");
	tu_result_free(&r);

	/* the collection against itself: itself excluded by id */
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb -k 1 --exclude-same-id bank.emb | cut -f1,4 | "
	       "awk 'NR > 1 && $1 == $2' | wc -l", tu_tmpdir());
	ck_assert_msg(r.status == 0 && atoi(r.out) == 0, "%s%s", r.out, r.err);
	tu_result_free(&r);

	/* duplicates: the two planted copies (rows 19 and 16 of the bank) */
	tu_run(&r, "cd '%s' && ssl-similar --duplicates 0.9999 bank.emb", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.out, "id_a\tsource_a\tid_b\tsource_b\tscore\n");
	ck_assert_int_eq(count_lines(r.out), 3);
	tu_assert_has(r.err, "2 pairs with cosine >= 0.9999 among 20 records");
	tu_result_free(&r);

	/* refused */
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb other.emb", tu_tmpdir());
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "other.emb: embeddings of another encoder (model_id bbbb");
	ck_assert_int_eq(r.outlen, 0);
	tu_result_free(&r);
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb d8.emb", tu_tmpdir());
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "d8.emb: embeddings of 8 dimensions, but the bank bank.emb has 16");
	tu_result_free(&r);
	const char *bad[] = { "q.emb", "--bank bank.emb --duplicates 0.9 q.emb", "--bank bank.emb -k 0 q.emb",
		              "--bank bank.emb --sheet s.png q.emb", "--duplicates 2 q.emb", "--bank bank.emb a b" };
	for (int i = 0; i < 6; i++) {
		tu_run(&r, "cd '%s' && ssl-similar %s", tu_tmpdir(), bad[i]);
		ck_assert_msg(r.status == 2 && r.outlen == 0, "%s: status %d", bad[i], r.status);
		tu_result_free(&r);
	}
	tu_run(&r, "ssl-similar --help");
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "usage: ssl-similar");
	tu_result_free(&r);
}
END_TEST

/* width and height from a PNG's IHDR */
static void
png_size(const char *path, int *W, int *H)
{
	size_t len;
	unsigned char *b = (unsigned char *)tu_read_file(path, &len);
	ck_assert_msg(len > 33 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(b + 12, "IHDR", 4) == 0,
	              "%s: not a PNG", path);
	*W = b[16] << 24 | b[17] << 16 | b[18] << 8 | b[19];
	*H = b[20] << 24 | b[21] << 16 | b[22] << 8 | b[23];
	free(b);
}

START_TEST(test_sheet)
{
	TuResult r;
	int W, H, eW, eH;
	write_sets();
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb -k 4 --sheet s.png --images bank.images "
	       "--query-images q.images --sheet-rows 5 q.emb > /dev/null", tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	ck_assert_msg(strstr(r.err, "not found") == NULL, "%s", r.err);
	tu_result_free(&r);
	png_size(tu_path("s.png"), &W, &H);
	simsheet_size(5, 5, 7, &eW, &eH);
	ck_assert_int_eq(W, eW);
	ck_assert_int_eq(H, eH);
	/* 7-pixel sides enlarged 10 times: 5 cells of 70 */
	ck_assert_int_eq(W, SIMSHEET_GAP + 5 * (70 + SIMSHEET_GAP) + SIMSHEET_SEP);

	/* pairs: a row per pair, two cells */
	tu_run(&r, "cd '%s' && ssl-similar --duplicates 0.9999 --sheet d.png --images bank.images bank.emb > /dev/null",
	       tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_result_free(&r);
	png_size(tu_path("d.png"), &W, &H);
	simsheet_size(2, 2, 7, &eW, &eH);
	ck_assert_int_eq(W, eW);
	ck_assert_int_eq(H, eH);

	/* ids that are not in the images stream: grey cells and a warning */
	tu_run(&r, "cd '%s' && ssl-similar --bank bank.emb --sheet m.png --images q.images q.emb > /dev/null",
	       tu_tmpdir());
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_assert_has(r.err, "not found in the images streams");
	tu_result_free(&r);
}
END_TEST

/* the TSV field escaping of both tools' output */
START_TEST(test_tsv_field)
{
	char buf[64] = { 0 };
	FILE *fp = fmemopen(buf, sizeof buf - 1, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fput_tsv("a\tb\nc\\d\re", fp), 0);
	ck_assert_int_eq(fput_tsv(NULL, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_str_eq(buf, "a\\tb\\nc\\\\d\\re");
}
END_TEST

static Suite *
similar_suite(void)
{
	Suite *s = suite_create("similar");
	TCase *lib = tcase_create("search"), *tool = tcase_create("tool");
	tcase_add_test(lib, test_topk_ties_and_chunks);
	tcase_add_test(lib, test_topk_small_banks);
	tcase_add_test(lib, test_pairs_planted);
	tcase_add_test(lib, test_tsv_field);
	tcase_set_timeout(tool, 60);
	tcase_add_test(tool, test_tool);
	tcase_add_test(tool, test_sheet);
	suite_add_tcase(s, lib);
	suite_add_tcase(s, tool);
	return s;
}

CHECK_MAIN(similar_suite)
