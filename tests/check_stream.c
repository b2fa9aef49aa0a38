/* Tests for lib/stream: round trips, truncation at every cut point, and
 * hostile inputs (which must fail with a message, without a crash or a big
 * allocation; run under ASan via `make BUILD=build/asan SAN=1 test`). */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream.h"
#include "tensor.h"
#include "testutil.h"
#include "util.h"

/* ---- helpers */

typedef struct {
	char  *buf;
	size_t len;
} Mem;

static void
fill_bytes(void *p, size_t n, unsigned seed)
{
	unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		b[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static void
header_full(StreamHeader *h, const char *kind)
{
	char *classes[] = { "cat", "dog", "frog" };
	char *argv[] = { "/usr/bin/ssl-test", "--seed", "7", "x y" };
	stream_header_init(h, kind);
	stream_header_set_classes(h, 3, classes);
	h->records_per_epoch = 4;
	h->epochs = 2;
	h->start_epoch = 3;
	stream_header_set_meta(h, "size", "8x8");
	stream_header_set_meta(h, "mean", "0.5");
	stream_header_add_provenance(h, 4, argv);
}

/* A small images stream: n records with an 8x8x3 |u1 image each. */
static Mem
small_stream(int n)
{
	Mem m = { 0 };
	FILE *f = open_memstream(&m.buf, &m.len);
	StreamHeader h;
	StreamWriter *w;
	unsigned char px[8 * 8 * 3];
	int64_t shape[3] = { 8, 8, 3 };
	header_full(&h, STREAM_KIND_IMAGES);
	w = stream_writer_open(f, "mem", &h);
	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < n; i++) {
		Record rec = { .id = 10 + i, .label = i % 3 - (i == 1 ? 2 : 0), .epoch = 3 + i % 2 };
		fill_bytes(px, sizeof px, (unsigned)i);
		rec.source = i % 2 ? "dog/1.jpg" : NULL;
		rec.ntensors = 1;
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, px);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_count(w), n);
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(f);
	stream_header_free(&h);
	return m;
}

/* Reads the whole of buf; returns the final status of next() (0 ok, -1
 * error) and copies the error message. */
static int
read_all(const void *buf, size_t len, int64_t *nrec, char *err, size_t errlen)
{
	FILE *f = len ? fmemopen((void *)buf, len, "rb") : fopen("/dev/null", "rb");
	StreamReader *r;
	Record rec;
	int s;
	ck_assert_ptr_nonnull(f);
	r = stream_reader_open(f, "mem");
	if (!stream_reader_header(r)) {
		s = -1;
	} else {
		while ((s = stream_reader_next(r, &rec)) == 1)
			;
	}
	if (nrec)
		*nrec = stream_reader_count(r);
	snprintf(err, errlen, "%s", s < 0 ? stream_reader_error(r) : "");
	stream_reader_close(r);
	fclose(f);
	return s;
}

/* ---- round trips */

START_TEST(test_roundtrip_small)
{
	Mem m = small_stream(5);
	FILE *f = fmemopen(m.buf, m.len, "rb");
	StreamReader *r = stream_reader_open(f, "mem");
	const StreamHeader *h = stream_reader_header(r);
	unsigned char px[8 * 8 * 3];
	Record rec;
	char err[256];
	ck_assert_ptr_nonnull(h);
	ck_assert_str_eq(h->kind, "images");
	ck_assert_int_eq(h->version_major, 1);
	ck_assert_int_eq(h->nclasses, 3);
	ck_assert_str_eq(h->classes[2], "frog");
	ck_assert_int_eq(h->records_per_epoch, 4);
	ck_assert_int_eq(h->epochs, 2);
	ck_assert_int_eq(h->start_epoch, 3);
	ck_assert_str_eq(stream_header_get_meta(h, "size"), "8x8");
	ck_assert_ptr_null(stream_header_get_meta(h, "nope"));
	ck_assert_int_eq(h->nprov, 1);
	ck_assert_str_eq(h->prov[0].tool, "ssl-test");
	ck_assert_int_eq(h->prov[0].nargs, 3);
	ck_assert_str_eq(h->prov[0].args[2], "x y");
	for (int i = 0; i < 5; i++) {
		const Tensor *t;
		ck_assert_int_eq(stream_reader_next(r, &rec), 1);
		ck_assert_int_eq(rec.id, 10 + i);
		ck_assert_int_eq(rec.label, i % 3 - (i == 1 ? 2 : 0));
		ck_assert_int_eq(rec.epoch, 3 + i % 2);
		if (i % 2)
			ck_assert_str_eq(rec.source, "dog/1.jpg");
		else
			ck_assert_ptr_null(rec.source);
		t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
		ck_assert_msg(t != NULL, "%s", err);
		ck_assert_int_eq(t->shape[0], 8);
		fill_bytes(px, sizeof px, (unsigned)i);
		ck_assert_mem_eq(t->data, px, sizeof px);
		ck_assert_ptr_null(record_tensor(&rec, "image", DTYPE_F32, 3, err, sizeof err));
		ck_assert_ptr_nonnull(strstr(err, "dtype"));
		ck_assert_ptr_null(record_tensor(&rec, "image", DTYPE_U8, 2, err, sizeof err));
		ck_assert_ptr_nonnull(strstr(err, "rank"));
		ck_assert_ptr_null(record_tensor(&rec, "views", DTYPE_U8, 4, err, sizeof err));
	}
	ck_assert_int_eq(stream_reader_next(r, &rec), 0);
	ck_assert_int_eq(stream_reader_next(r, &rec), 0);
	ck_assert_int_eq(stream_reader_count(r), 5);
	ck_assert_ptr_null(stream_reader_error(r));
	stream_reader_close(r);
	fclose(f);
	free(m.buf);
}
END_TEST

/* ---- truncation */

START_TEST(test_truncated_every_cut)
{
	Mem m = small_stream(3);
	char err[640];
	int64_t n;
	ck_assert_int_eq(read_all(m.buf, m.len, &n, err, sizeof err), 0);
	ck_assert_int_eq(n, 3);
	for (size_t cut = 0; cut < m.len; cut++) {
		int s = read_all(m.buf, cut, NULL, err, sizeof err);
		ck_assert_msg(s == -1, "prefix of %zu/%zu bytes read as success", cut, m.len);
		ck_assert_msg(strstr(err, "truncated stream") != NULL, "cut %zu: '%s'", cut, err);
		ck_assert_msg(strncmp(err, "mem: ", 5) == 0, "cut %zu: '%s'", cut, err);
	}
	free(m.buf);
}
END_TEST

static Suite *
stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, test_roundtrip_small);
	tcase_add_test(tc, test_truncated_every_cut);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(stream_suite)
