/* Tests for lib/io/stream: round trips, truncation at every cut point, and
 * hostile inputs (which must fail with a message, without a crash or a big
 * allocation; run under ASan via `make BUILD=build/asan SAN=1 test`). */
#include <errno.h>
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "io/stream.h"
#include "io/tensor.h"
#include "testutil.h"
#include "tu_stream.h"
#include "base/util.h"

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


/* Every dtype, ranks 0..8, several tensors per record, extreme ids, a
 * zero-size tensor, growth of the read buffer past its initial size. */
static double
value_at(DType d, int64_t i, int rank)
{
	double v = (double)((i * 37 + rank * 11) % 251);
	return d == DTYPE_U8 ? v : (d == DTYPE_F32 || d == DTYPE_F64) ? v / 8 - 7.25 : v - 100;
}

static void
set_value(Tensor *t, int64_t i, double v)
{
	switch (t->dtype) {
	case DTYPE_U8: ((uint8_t *)t->data)[i] = (uint8_t)v; break;
	case DTYPE_I32: ((int32_t *)t->data)[i] = (int32_t)v; break;
	case DTYPE_I64: ((int64_t *)t->data)[i] = (int64_t)v; break;
	case DTYPE_F32: ((float *)t->data)[i] = (float)v; break;
	case DTYPE_F64: ((double *)t->data)[i] = v; break;
	}
}

static double
get_value(const Tensor *t, int64_t i)
{
	switch (t->dtype) {
	case DTYPE_U8: return ((const uint8_t *)t->data)[i];
	case DTYPE_I32: return ((const int32_t *)t->data)[i];
	case DTYPE_I64: return (double)((const int64_t *)t->data)[i];
	case DTYPE_F32: return ((const float *)t->data)[i];
	case DTYPE_F64: return ((const double *)t->data)[i];
	}
	return 0;
}

static const DType all_dtypes[] = { DTYPE_U8, DTYPE_I32, DTYPE_I64, DTYPE_F32, DTYPE_F64 };

static void
rank_shape(int rank, int k, int64_t *shape)
{
	for (int i = 0; i < rank; i++)
		shape[i] = 1 + (i + k) % 3;
}

START_TEST(test_roundtrip_dtypes_ranks)
{
	Mem m = { 0 };
	FILE *f = open_memstream(&m.buf, &m.len);
	StreamHeader h, h2;
	StreamWriter *w;
	StreamReader *r;
	const StreamHeader *rh;
	Record rec;
	Tensor big;
	int64_t bigshape[2] = { 1024, 1031 };
	char err[256];
	stream_header_init(&h, "tensors");
	header_full(&h2, "tensors");
	stream_header_copy(&h, &h2); /* deep copy: h2 is freed before reading */
	stream_header_set_meta(&h, "size", "9x9"); /* replaces */
	h.epochs = -1;
	stream_header_free(&h2);
	w = stream_writer_open(f, "mem", &h);
	ck_assert_ptr_nonnull(w);
	for (int rank = 0; rank <= TENSOR_MAX_DIM; rank++) {
		Record out = { .id = rank == 8 ? INT64_MAX : rank, .label = rank % 4 - 1, .epoch = 1000 + rank };
		for (int k = 0; k < 5; k++) {
			int64_t shape[TENSOR_MAX_DIM];
			char name[16];
			Tensor *t = &out.tensors[out.ntensors++];
			rank_shape(rank, k, shape);
			snprintf(name, sizeof name, "t%d", k);
			tensor_alloc(t, name, all_dtypes[k], rank, shape);
			for (int64_t i = 0; i < tensor_numel(t); i++)
				set_value(t, i, value_at(t->dtype, i, rank));
		}
		out.source = rank % 2 ? "a/b c.png" : NULL;
		ck_assert_int_eq(stream_writer_put(w, &out), 0);
		for (int k = 0; k < out.ntensors; k++)
			tensor_free(&out.tensors[k]);
	}
	/* empty tensor, and a 1 MiB one that makes the reader grow its buffer */
	tensor_alloc(&big, "big", DTYPE_U8, 2, bigshape);
	fill_bytes(big.data, tensor_nbytes(&big), 99);
	{
		int64_t zshape[2] = { 0, 3 };
		Record out = { .id = 77, .label = 2, .epoch = 3, .ntensors = 2 };
		out.tensors[0] = tensor_view("empty", DTYPE_F32, 2, zshape, NULL);
		out.tensors[1] = big;
		ck_assert_int_eq(stream_writer_put(w, &out), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(f);

	f = fmemopen(m.buf, m.len, "rb");
	r = stream_reader_open(f, "mem");
	rh = stream_reader_header(r);
	ck_assert_ptr_nonnull(rh);
	ck_assert_str_eq(rh->kind, "tensors");
	ck_assert_str_eq(stream_header_get_meta(rh, "size"), "9x9");
	ck_assert_str_eq(stream_header_get_meta(rh, "mean"), "0.5");
	ck_assert_int_eq(rh->epochs, -1);
	ck_assert_int_eq(rh->nprov, 1);
	ck_assert_str_eq(rh->prov[0].args[0], "--seed");
	for (int rank = 0; rank <= TENSOR_MAX_DIM; rank++) {
		ck_assert_int_eq(stream_reader_next(r, &rec), 1);
		ck_assert_int_eq(rec.id, rank == 8 ? INT64_MAX : rank);
		ck_assert_int_eq(rec.label, rank % 4 - 1);
		ck_assert_int_eq(rec.epoch, 1000 + rank);
		if (rank % 2)
			ck_assert_str_eq(rec.source, "a/b c.png");
		ck_assert_int_eq(rec.ntensors, 5);
		for (int k = 0; k < 5; k++) {
			int64_t shape[TENSOR_MAX_DIM];
			char name[16];
			const Tensor *t;
			snprintf(name, sizeof name, "t%d", k);
			t = record_tensor(&rec, name, all_dtypes[k], rank, err, sizeof err);
			ck_assert_msg(t != NULL, "%s", err);
			ck_assert_int_eq(t->owned, 0);
			ck_assert_uint_eq((uintptr_t)t->data % dtype_size(t->dtype), 0);
			rank_shape(rank, k, shape);
			for (int i = 0; i < rank; i++)
				ck_assert_int_eq(t->shape[i], shape[i]);
			for (int64_t i = 0; i < tensor_numel(t); i++)
				ck_assert_msg(get_value(t, i) == value_at(t->dtype, i, rank), "rank %d %s [%lld]", rank,
				              dtype_str(t->dtype), (long long)i);
		}
	}
	ck_assert_int_eq(stream_reader_next(r, &rec), 1);
	ck_assert_int_eq(rec.ntensors, 2);
	ck_assert_int_eq(rec.tensors[0].shape[0], 0);
	ck_assert_int_eq(tensor_nbytes(&rec.tensors[1]), tensor_nbytes(&big));
	ck_assert_mem_eq(rec.tensors[1].data, big.data, tensor_nbytes(&big));
	ck_assert_int_eq(stream_reader_next(r, &rec), 0);
	stream_reader_close(r);
	fclose(f);
	tensor_free(&big);
	stream_header_free(&h);
	free(m.buf);
}
END_TEST

/* Many ~3 KB records through a FILE: buffer compaction and record reuse. */
START_TEST(test_many_records_file)
{
	const char *path = tu_path("many.ssl");
	FILE *f = fopen(path, "wb");
	StreamHeader h;
	StreamWriter *w;
	StreamReader *r;
	Record rec;
	unsigned char px[32 * 32 * 3];
	int64_t shape[3] = { 32, 32, 3 };
	int n = 5000;
	stream_header_init(&h, STREAM_KIND_IMAGES);
	w = stream_writer_open(f, path, &h);
	for (int i = 0; i < n; i++) {
		Record out = { .id = i, .label = -1, .epoch = 0, .ntensors = 1 };
		px[0] = (unsigned char)i;
		px[sizeof px - 1] = (unsigned char)(i >> 8);
		out.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, px);
		ck_assert_int_eq(stream_writer_put(w, &out), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	ck_assert_int_eq(fclose(f), 0);
	r = stream_reader_open_path(path);
	ck_assert_ptr_nonnull(stream_reader_header(r));
	for (int i = 0; i < n; i++) {
		const unsigned char *d;
		ck_assert_int_eq(stream_reader_next(r, &rec), 1);
		ck_assert_int_eq(rec.id, i);
		d = rec.tensors[0].data;
		ck_assert_int_eq(d[0], (unsigned char)i);
		ck_assert_int_eq(d[sizeof px - 1], (unsigned char)(i >> 8));
	}
	ck_assert_int_eq(stream_reader_next(r, &rec), 0);
	stream_reader_close(r);
	stream_header_free(&h);
}
END_TEST

/* ---- hostile input, built with msgpack by hand */

static void
pk_header(msgpack_packer *pk, const char *format, int major, int minor)
{
	tu_pk_header(pk, 2, format, major, minor);
	tu_pk_str(pk, "classes");
	msgpack_pack_array(pk, 2);
	tu_pk_str(pk, "a");
	tu_pk_str(pk, "b");
	tu_pk_str(pk, "future_key"); /* unknown keys are ignored */
	msgpack_pack_map(pk, 1);
	tu_pk_str(pk, "x");
	msgpack_pack_double(pk, 1.5);
}

/* Record start: map of 3 + extra entries with id/label/epoch. */
static void
pk_rec(msgpack_packer *pk, int extra)
{
	tu_pk_record(pk, extra, 5, 1, 0);
}

/* A tensor map whose shape is given; data has `bytes` bytes. */
static void
pk_tensor(msgpack_packer *pk, const char *dtype, int ndim, const int64_t *shape, size_t bytes)
{
	tu_pk_tensor(pk, dtype, ndim, shape, (uint32_t)bytes, bytes);
}

typedef struct {
	const char *name;
	void (*build)(msgpack_packer *pk);
	const char *want; /* substring of the error */
} Hostile;

static void
h_ok(msgpack_packer *pk)
{
	int64_t s[3] = { 2, 2, 3 };
	pk_rec(pk, 2);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "|u1", 3, s, 12);
	tu_pk_str(pk, "note"); /* unknown non-map key: ignored */
	tu_pk_str(pk, "hello");
}
static void
h_huge_dims(msgpack_packer *pk)
{
	int64_t s[2] = { INT64_C(1) << 40, INT64_C(1) << 40 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "|u1", 2, s, 16);
}
static void
h_overflow(msgpack_packer *pk)
{
	int64_t s[3] = { INT64_C(1) << 32, INT64_C(1) << 32, INT64_C(1) << 32 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "<f8", 3, s, 16);
}
static void
h_negative(msgpack_packer *pk)
{
	int64_t s[2] = { -4, -3 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "|u1", 2, s, 12);
}
static void
h_short(msgpack_packer *pk)
{
	int64_t s[2] = { 4, 3 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "<f4", 2, s, 47);
}
static void
h_long(msgpack_packer *pk)
{
	int64_t s[2] = { 4, 3 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "|u1", 2, s, 13);
}
static void
h_dtype(msgpack_packer *pk)
{
	int64_t s[1] = { 4 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, ">f4", 1, s, 16);
}
static void
h_dtype_type(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	msgpack_pack_int(pk, 4);
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 0);
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, 1);
	msgpack_pack_bin_body(pk, "x", 1);
}
static void
h_rank9(msgpack_packer *pk)
{
	int64_t s[9] = { 1, 1, 1, 1, 1, 1, 1, 1, 1 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	pk_tensor(pk, "|u1", 9, s, 1);
}
static void
h_shape_str(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "|u1");
	tu_pk_str(pk, "shape");
	tu_pk_str(pk, "2x2");
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, 4);
	msgpack_pack_bin_body(pk, "abcd", 4);
}
static void
h_shape_elem(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "|u1");
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 1);
	msgpack_pack_double(pk, 4.0);
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, 4);
	msgpack_pack_bin_body(pk, "abcd", 4);
}
static void
h_shape_u64(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "|u1");
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 1);
	msgpack_pack_uint64(pk, UINT64_MAX);
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, 4);
	msgpack_pack_bin_body(pk, "abcd", 4);
}
static void
h_data_str(msgpack_packer *pk)
{
	int64_t s[1] = { 4 };
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "|u1");
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 1);
	msgpack_pack_int64(pk, s[0]);
	tu_pk_str(pk, "data");
	tu_pk_str(pk, "abcd");
}
static void
h_no_data(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	msgpack_pack_map(pk, 2);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "|u1");
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 0);
}
static void
h_id_str(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "id");
	tu_pk_str(pk, "5");
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, 1);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
}
static void
h_id_neg(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, -5);
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, 1);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
}
static void
h_no_id(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, 1);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
}
static void
h_label_float(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, 5);
	tu_pk_str(pk, "label");
	msgpack_pack_double(pk, 1.0);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
}
static void
h_label_range(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, 5);
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, 2); /* two classes */
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
}
static void
h_epoch_nil(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, 5);
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, 1);
	tu_pk_str(pk, "epoch");
	msgpack_pack_nil(pk);
}
static void
h_dup_key(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, 6);
}
static void
h_source_int(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "source");
	msgpack_pack_int(pk, 6);
}
static void
h_nine_tensors(msgpack_packer *pk)
{
	int64_t s[1] = { 1 };
	pk_rec(pk, 9);
	for (int i = 0; i < 9; i++) {
		char name[16];
		snprintf(name, sizeof name, "t%d", i);
		tu_pk_str(pk, name);
		pk_tensor(pk, "|u1", 1, s, 1);
	}
}
static void
h_dup_tensor(msgpack_packer *pk)
{
	int64_t s[1] = { 1 };
	pk_rec(pk, 2);
	tu_pk_str(pk, "x");
	pk_tensor(pk, "|u1", 1, s, 1);
	tu_pk_str(pk, "x");
	pk_tensor(pk, "|u1", 1, s, 1);
}
static void
h_tensor_int_key(msgpack_packer *pk)
{
	int64_t s[1] = { 1 };
	pk_rec(pk, 1);
	msgpack_pack_int(pk, 3);
	pk_tensor(pk, "|u1", 1, s, 1);
}
static void
h_array_record(msgpack_packer *pk)
{
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 2);
}
static void
h_int_record(msgpack_packer *pk)
{
	msgpack_pack_int(pk, 42);
}
static void
h_trailer_count(msgpack_packer *pk)
{
	h_ok(pk);
	tu_pk_trailer(pk, 7);
}
static void
h_trailer_false(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	tu_pk_str(pk, "end");
	msgpack_pack_false(pk);
	tu_pk_str(pk, "records");
	msgpack_pack_int(pk, 0);
}
static void
h_garbage_after(msgpack_packer *pk)
{
	tu_pk_trailer(pk, 0);
	msgpack_pack_int(pk, 0);
}
/* Raw bytes: msgpack_pack_bin_body appends them as they are. */
static void
h_raw(msgpack_packer *pk, const char *bytes, size_t n, size_t repeat)
{
	for (size_t i = 0; i < repeat; i++)
		msgpack_pack_bin_body(pk, bytes, n);
}
#define RAW(pk, lit, repeat) h_raw(pk, lit, sizeof lit - 1, repeat)
static void
h_nest_bomb(msgpack_packer *pk)
{
	RAW(pk, "\x91", 100000);
}
static void
h_nest_maps(msgpack_packer *pk)
{
	RAW(pk, "\x81\xa1k", 1000);
}
static void
h_bin_4g(msgpack_packer *pk)
{
	pk_rec(pk, 1);
	tu_pk_str(pk, "image");
	RAW(pk, "\x83\xa5" "dtype" "\xa3|u1" "\xa5shape" "\x91\xce\xff\xff\xff\xff" "\xa4" "data"
	          "\xc6\xff\xff\xff\xff" "abc", 1);
}
static void
h_array_4g(msgpack_packer *pk)
{
	RAW(pk, "\xdd\xff\xff\xff\xff\x01\x02\x03", 1);
}
static void
h_map_4g(msgpack_packer *pk)
{
	RAW(pk, "\xdf\xff\xff\xff\xff\xa2id\x01", 1);
}
static void
h_str_4g(msgpack_packer *pk)
{
	RAW(pk, "\x81\xdb\xff\xff\xff\xff" "abc", 1);
}
static void
h_c1(msgpack_packer *pk)
{
	RAW(pk, "\x81\xc1\x01", 1);
}
static void
h_many_small(msgpack_packer *pk)
{
	/* a 2-million-element array of nils: a zone bomb if unbounded */
	msgpack_pack_array(pk, 2000000);
	for (int i = 0; i < 2000000; i++)
		msgpack_pack_nil(pk);
}

static const Hostile hostile[] = {
	{ "huge dims", h_huge_dims, "exceeds the limit" },
	{ "overflow", h_overflow, "exceeds the limit" },
	{ "negative dims", h_negative, "negative" },
	{ "bin short", h_short, "data has 47 bytes" },
	{ "bin long", h_long, "data has 13 bytes" },
	{ "dtype", h_dtype, "unsupported dtype '>f4'" },
	{ "dtype type", h_dtype_type, "dtype must be a string" },
	{ "rank 9", h_rank9, "rank 9 exceeds 8" },
	{ "shape string", h_shape_str, "shape must be an array" },
	{ "shape float", h_shape_elem, "shape[0] is not an integer" },
	{ "shape u64", h_shape_u64, "shape[0] is not an integer" },
	{ "data str", h_data_str, "data must be a msgpack bin" },
	{ "no data", h_no_data, "missing 'data'" },
	{ "id string", h_id_str, "id must be a non-negative integer" },
	{ "id negative", h_id_neg, "id must be a non-negative integer" },
	{ "no id", h_no_id, "missing 'id'" },
	{ "label float", h_label_float, "label must be an integer" },
	{ "label range", h_label_range, "label 2 is outside [-1, 2)" },
	{ "epoch nil", h_epoch_nil, "epoch must be an integer" },
	{ "dup key", h_dup_key, "duplicate key 'id'" },
	{ "source int", h_source_int, "source must be a string" },
	{ "nine tensors", h_nine_tensors, "more than 8 tensors" },
	{ "dup tensor", h_dup_tensor, "duplicate tensor 'x'" },
	{ "int tensor name", h_tensor_int_key, "tensor name" },
	{ "array record", h_array_record, "record 1: not a map" },
	{ "int record", h_int_record, "record 1: not a map" },
	{ "trailer count", h_trailer_count, "trailer: says 7 records, the stream has 1" },
	{ "trailer false", h_trailer_false, "'end' must be true" },
	{ "garbage after trailer", h_garbage_after, "data after the trailer" },
	{ "nesting bomb", h_nest_bomb, "nesting deeper" },
	{ "nested maps", h_nest_maps, "nesting deeper" },
	{ "bin claims 4 GB", h_bin_4g, "larger than the limit" },
	{ "array claims 4G elements", h_array_4g, "claims 4294967295 elements" },
	{ "map claims 4G entries", h_map_4g, "claims 8589934590 elements" },
	{ "str claims 4 GB", h_str_4g, "larger than the limit" },
	{ "byte 0xc1", h_c1, "malformed msgpack" },
	{ "2M elements", h_many_small, "claims 2000000 elements" },
};

static Mem
build_stream(void (*build)(msgpack_packer *pk), int with_trailer)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	Mem m;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	pk_header(&pk, STREAM_FORMAT, 1, 0);
	build(&pk);
	if (with_trailer)
		tu_pk_trailer(&pk, 1);
	m.len = sb.size;
	m.buf = msgpack_sbuffer_release(&sb);
	msgpack_sbuffer_destroy(&sb);
	return m;
}

/* Outside ASan (which reserves terabytes of shadow), caps this test
 * process's address space so that a big allocation fails the test. */
static void
cap_address_space(size_t extra)
{
#if !defined(__SANITIZE_ADDRESS__)
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kb = 0;
	struct rlimit rl;
	if (!f)
		return;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	rl.rlim_cur = rl.rlim_max = (rlim_t)kb * 1024 + extra;
	if (kb > 0)
		ck_assert_int_eq(setrlimit(RLIMIT_AS, &rl), 0);
#else
	(void)extra;
#endif
}

START_TEST(test_hostile)
{
	const Hostile *c = &hostile[_i];
	Mem m = build_stream(c->build, 1);
	char err[640];
	cap_address_space((size_t)256 << 20);
	ck_assert_int_eq(read_all(m.buf, m.len, NULL, err, sizeof err), -1);
	ck_assert_msg(strstr(err, c->want) != NULL, "%s: got '%s', want '%s'", c->name, err, c->want);
	ck_assert_msg(strncmp(err, "mem: record 1", 13) == 0 || strncmp(err, "mem: trailer", 12) == 0, "%s: '%s'",
	              c->name, err);
	free(m.buf);
}
END_TEST

START_TEST(test_hostile_ok_control)
{
	Mem m = build_stream(h_ok, 1);
	char err[640];
	int64_t n;
	ck_assert_msg(read_all(m.buf, m.len, &n, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(n, 1);
	free(m.buf);
}
END_TEST

/* The id of the offending record is named once it is known. */
START_TEST(test_message_names_id)
{
	Mem m = build_stream(h_huge_dims, 1);
	char err[640];
	ck_assert_int_eq(read_all(m.buf, m.len, NULL, err, sizeof err), -1);
	ck_assert_msg(strncmp(err, "mem: record 1 (id 5): tensor 'image': ", 38) == 0, "'%s'", err);
	free(m.buf);
}
END_TEST

START_TEST(test_max_bytes)
{
	Mem m = small_stream(1);
	FILE *f = fmemopen(m.buf, m.len, "rb");
	StreamReader *r = stream_reader_open(f, "mem");
	Record rec;
	stream_reader_set_max_bytes(r, 100); /* the image is 192 bytes */
	ck_assert_int_eq(stream_reader_next(r, &rec), -1);
	ck_assert_ptr_nonnull(strstr(stream_reader_error(r), "exceeds the limit of 100 bytes"));
	ck_assert_int_eq(stream_reader_next(r, &rec), -1); /* errors stick */
	stream_reader_close(r);
	fclose(f);
	free(m.buf);
}
END_TEST

static void
header_case(void (*build)(msgpack_packer *pk), const char *want)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	char err[640];
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	build(&pk);
	tu_pk_trailer(&pk, 0);
	ck_assert_int_eq(read_all(sb.data, sb.size, NULL, err, sizeof err), want ? -1 : 0);
	if (want) {
		ck_assert_msg(strstr(err, want) != NULL, "got '%s', want '%s'", err, want);
		ck_assert_msg(strncmp(err, "mem: header: ", 13) == 0, "'%s'", err);
	}
	msgpack_sbuffer_destroy(&sb);
}

static void hh_format(msgpack_packer *pk) { pk_header(pk, "ssl-strean", 1, 0); }
static void hh_major(msgpack_packer *pk) { pk_header(pk, STREAM_FORMAT, 2, 0); }
static void hh_minor(msgpack_packer *pk) { pk_header(pk, STREAM_FORMAT, 1, 7); }
static void hh_array(msgpack_packer *pk) { msgpack_pack_array(pk, 0); }
static void
hh_no_kind(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 2);
	tu_pk_str(pk, "format");
	tu_pk_str(pk, STREAM_FORMAT);
	tu_pk_str(pk, "version");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 0);
}
static void
hh_version_str(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "format");
	tu_pk_str(pk, STREAM_FORMAT);
	tu_pk_str(pk, "version");
	tu_pk_str(pk, "1.0");
	tu_pk_str(pk, "kind");
	tu_pk_str(pk, "images");
}
static void
hh_fields(msgpack_packer *pk, const char *key, int kind)
{
	msgpack_pack_map(pk, 4);
	tu_pk_str(pk, "format");
	tu_pk_str(pk, STREAM_FORMAT);
	tu_pk_str(pk, "version");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, 1);
	msgpack_pack_int(pk, 0);
	tu_pk_str(pk, "kind");
	tu_pk_str(pk, "images");
	tu_pk_str(pk, key);
	switch (kind) {
	case 0: msgpack_pack_int(pk, -3); break;
	case 1: msgpack_pack_array(pk, 1); msgpack_pack_int(pk, 3); break;
	case 2: msgpack_pack_map(pk, 1); tu_pk_str(pk, "k"); msgpack_pack_int(pk, 3); break;
	case 3: msgpack_pack_array(pk, 1); msgpack_pack_map(pk, 1); tu_pk_str(pk, "args"); msgpack_pack_array(pk, 0); break;
	case 4: msgpack_pack_array(pk, 1); msgpack_pack_str(pk, 3); msgpack_pack_str_body(pk, "a\0b", 3); break;
	}
}
static void hh_rpe(msgpack_packer *pk) { hh_fields(pk, "records_per_epoch", 0); }
static void hh_epochs(msgpack_packer *pk) { hh_fields(pk, "epochs", 1); }
static void hh_start(msgpack_packer *pk) { hh_fields(pk, "start_epoch", 0); }
static void hh_classes(msgpack_packer *pk) { hh_fields(pk, "classes", 1); }
static void hh_classes_nul(msgpack_packer *pk) { hh_fields(pk, "classes", 4); }
static void hh_meta(msgpack_packer *pk) { hh_fields(pk, "meta", 2); }
static void hh_prov(msgpack_packer *pk) { hh_fields(pk, "provenance", 3); }

START_TEST(test_header_checks)
{
	char err[640];
	header_case(hh_format, "not an ssl-stream");
	header_case(hh_major, "unsupported version 2.0");
	header_case(hh_minor, NULL); /* newer minor: accepted */
	header_case(hh_array, "not an ssl-stream");
	header_case(hh_no_kind, "kind must be a UTF-8 string");
	header_case(hh_version_str, "version must be [major, minor]");
	header_case(hh_rpe, "records_per_epoch must be a non-negative integer or nil");
	header_case(hh_epochs, "epochs must be");
	header_case(hh_start, "start_epoch must be");
	header_case(hh_classes, "a class name must be a string");
	header_case(hh_classes_nul, "contains a NUL byte");
	header_case(hh_meta, "a meta value must be a string");
	header_case(hh_prov, "provenance entry without 'tool'");
	ck_assert_int_eq(read_all("\x01", 1, NULL, err, sizeof err), -1);
	ck_assert_str_eq(err, "mem: header: not an ssl-stream (the first object is not a map)");
	ck_assert_int_eq(read_all("", 0, NULL, err, sizeof err), -1);
	ck_assert_str_eq(err, "mem: header: truncated stream (no data)");
}
END_TEST

/* Random corruption of a valid stream: never a crash, only 0 or -1 with a message. */
START_TEST(test_mutations)
{
	Mem m = small_stream(4);
	char *copy = malloc(m.len), err[640];
	uint64_t x = 88172645463325252u;
	int fails = 0;
	ck_assert_ptr_nonnull(copy);
	for (int it = 0; it < 3000; it++) {
		int s, nflip;
		memcpy(copy, m.buf, m.len);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		nflip = 1 + (int)(x % 4);
		for (int k = 0; k < nflip; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			copy[(x >> 8) % m.len] = (char)(x >> 40);
		}
		s = read_all(copy, m.len, NULL, err, sizeof err);
		ck_assert(s == 0 || s == -1);
		if (s < 0) {
			ck_assert(strncmp(err, "mem: ", 5) == 0 && strlen(err) > 8);
			fails++;
		}
	}
	ck_assert(fails > 100); /* most corruptions are caught */
	free(copy);
	free(m.buf);
}
END_TEST

/* ---- writer */

START_TEST(test_writer_write_error)
{
	FILE *f = fopen("/dev/full", "wb");
	StreamHeader h;
	StreamWriter *w;
	unsigned char px[3000] = { 0 };
	int64_t shape[1] = { sizeof px };
	int rc = 0;
	ck_assert_ptr_nonnull(f);
	stream_header_init(&h, STREAM_KIND_IMAGES);
	w = stream_writer_open(f, "/dev/full", &h); /* buffered: may not fail yet */
	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < 100 && rc == 0; i++) {
		Record rec = { .id = i, .label = -1, .ntensors = 1 };
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 1, shape, px);
		rc = stream_writer_put(w, &rec);
	}
	ck_assert_int_eq(rc, -1);
	ck_assert_int_eq(stream_writer_close(w), -1);
	fclose(f);
	stream_header_free(&h);
}
END_TEST

static int
open_pty_slave(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY), s;
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
		return -1;
	s = open(ptsname(m), O_RDWR | O_NOCTTY);
	return s; /* the master stays open for the life of the test process */
}

START_TEST(test_writer_refuses_tty)
{
	int fd = open_pty_slave();
	FILE *f;
	StreamHeader h;
	if (fd < 0) {
		tu_skip("no pty: the refusal to write to a terminal is not tested");
		return;
	}
	f = fdopen(fd, "wb");
	stream_header_init(&h, STREAM_KIND_IMAGES);
	errno = 0;
	ck_assert_ptr_null(stream_writer_open(f, "tty", &h));
	ck_assert_int_eq(errno, ENOTTY);
	fclose(f);
	stream_header_free(&h);
}
END_TEST

START_TEST(test_stdout_or_die_tty)
{
	int fd = open_pty_slave();
	StreamHeader h;
	if (fd < 0) {
		tu_skip("no pty: the refusal to write to a terminal is not tested");
		exit(1); /* the status the test expects: the skip is what counts */
	}
	dup2(fd, STDOUT_FILENO);
	stream_header_init(&h, STREAM_KIND_IMAGES);
	stream_writer_stdout_or_die(&h);
	exit(0);
}
END_TEST

static const char *
write_small_file(const char *name)
{
	const char *path = tu_path(name);
	Mem m = small_stream(2);
	tu_write_file(path, m.buf, m.len);
	free(m.buf);
	return path;
}

START_TEST(test_open_or_die_kind)
{
	const char *path = write_small_file("kind.ssl");
	stream_reader_open_or_die(path, STREAM_KIND_VIEWS);
	exit(0);
}
END_TEST

START_TEST(test_open_or_die_missing)
{
	stream_reader_open_or_die(tu_path("does-not-exist.ssl"), NULL);
	exit(0);
}
END_TEST

START_TEST(test_open_or_die_ok)
{
	const char *path = write_small_file("ok.ssl");
	StreamReader *r = stream_reader_open_or_die(path, STREAM_KIND_IMAGES);
	Record rec;
	ck_assert_str_eq(stream_reader_name(r), path);
	ck_assert_int_eq(stream_reader_next(r, &rec), 1);
	stream_reader_close(r);
}
END_TEST

/* ---- the Python example of ssl-stream(5) */

static int
python_has_numpy_msgpack(void)
{
	return access("/usr/bin/python3", X_OK) == 0
	    && system("/usr/bin/python3 -c 'import msgpack, numpy' >/dev/null 2>&1") == 0;
}

START_TEST(test_python_example_in_man_page)
{
	char path[1024], *script, *page, *line, *save;
	int nlines = 0;
	snprintf(path, sizeof path, "%s/tests/read_stream.py", tu_src());
	script = tu_read_file(path, NULL);
	snprintf(path, sizeof path, "%s/man/ssl-stream.5", tu_src());
	page = tu_read_file(path, NULL);
	for (line = strtok_r(script, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char needle[512];
		if (strncmp(line, "#!", 2) == 0)
			continue;
		snprintf(needle, sizeof needle, "\n%s\n", line);
		ck_assert_msg(strstr(page, needle) != NULL, "man/ssl-stream.5 lacks the example line '%s'", line);
		nlines++;
	}
	ck_assert_int_gt(nlines, 10);
	free(script);
	free(page);
}
END_TEST

START_TEST(test_python_example_runs)
{
	const char *path = tu_path("py.ssl");
	Mem m = small_stream(5);
	double sum = 0;
	char want[128];
	TuResult r;
	if (!python_has_numpy_msgpack()) {
		tu_skip("/usr/bin/python3 lacks msgpack or numpy (python3-msgpack, python3-numpy): the Python reader is not tested");
		free(m.buf);
		return;
	}
	tu_write_file(path, m.buf, m.len);
	{
		FILE *f = fmemopen(m.buf, m.len, "rb");
		StreamReader *rd = stream_reader_open(f, "mem");
		Record rec;
		while (stream_reader_next(rd, &rec) == 1)
			for (int k = 0; k < rec.ntensors; k++)
				for (size_t i = 0; i < tensor_nbytes(&rec.tensors[k]); i++)
					sum += ((const unsigned char *)rec.tensors[k].data)[i];
		ck_assert_ptr_null(stream_reader_error(rd));
		stream_reader_close(rd);
		fclose(f);
	}
	snprintf(want, sizeof want, "images: 5 records, 3 classes, sum %.0f\n", sum);
	tu_run(&r, "/usr/bin/python3 '%s/tests/read_stream.py' < '%s'", tu_src(), path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_str_eq(r.out, want);
	tu_result_free(&r);
	/* and it refuses a truncated stream */
	tu_run(&r, "head -c %zu '%s' | /usr/bin/python3 '%s/tests/read_stream.py'", m.len - 3, path, tu_src());
	ck_assert_int_ne(r.status, 0);
	ck_assert_ptr_nonnull(strstr(r.err, "truncated stream"));
	tu_result_free(&r);
	free(m.buf);
}
END_TEST

static Suite *
stream_suite(void)
{
	Suite *s = suite_create("stream");
	TCase *tc = tcase_create("core");
	TCase *die = tcase_create("die");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_roundtrip_small);
	tcase_add_test(tc, test_roundtrip_dtypes_ranks);
	tcase_add_test(tc, test_many_records_file);
	tcase_add_test(tc, test_truncated_every_cut);
	tcase_add_loop_test(tc, test_hostile, 0, (int)(sizeof hostile / sizeof hostile[0]));
	tcase_add_test(tc, test_hostile_ok_control);
	tcase_add_test(tc, test_message_names_id);
	tcase_add_test(tc, test_max_bytes);
	tcase_add_test(tc, test_header_checks);
	tcase_add_test(tc, test_mutations);
	tcase_add_test(tc, test_writer_write_error);
	tcase_add_test(tc, test_writer_refuses_tty);
	tcase_add_test(tc, test_open_or_die_ok);
	tcase_add_test(tc, test_python_example_in_man_page);
	tcase_add_test(tc, test_python_example_runs);
	tcase_add_exit_test(die, test_stdout_or_die_tty, 1);
	tcase_add_exit_test(die, test_open_or_die_kind, 1);
	tcase_add_exit_test(die, test_open_or_die_missing, 1);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, die);
	return s;
}

CHECK_MAIN(stream_suite)
