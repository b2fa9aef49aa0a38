/* fuzz_stream: libFuzzer harness for the stream reader (lib/io/stream.c).
 *
 * The input is a whole stream: header, records, trailer. Besides crashes,
 * leaks and big allocations (ASan, -malloc_limit_mb), it checks the
 * reader's promises:
 *   - an error is one non-empty line that starts with the input's name;
 *   - every tensor of an accepted record has numel * itemsize readable
 *     bytes, aligned to its item size;
 *   - a stream the reader accepts survives a round trip: written again by
 *     stream_writer and read back, it gives the same records (ids, labels,
 *     epochs, sources, tensors) and the same count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/stream.h"
#include "io/tensor.h"
#include "base/util.h"

#define MAX_BYTES (INT64_C(1) << 20)

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_stream: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

/* A digest of everything a consumer sees in a record. */
static uint64_t
record_digest(const Record *rec)
{
	uint64_t h = FNV1A_INIT;
	h = fnv1a(h, &rec->id, sizeof rec->id);
	h = fnv1a(h, &rec->label, sizeof rec->label);
	h = fnv1a(h, &rec->epoch, sizeof rec->epoch);
	if (rec->source)
		h = fnv1a(h, rec->source, strlen(rec->source) + 1);
	for (int i = 0; i < rec->ntensors; i++) {
		const Tensor *t = &rec->tensors[i];
		size_t isz = dtype_size(t->dtype);
		int64_t numel = tensor_numel_checked(t->shape, t->ndim, 0);
		CHECK(numel >= 0);
		CHECK(t->ndim >= 0 && t->ndim <= TENSOR_MAX_DIM);
		CHECK((size_t)numel * isz == tensor_nbytes(t));
		CHECK(tensor_nbytes(t) <= (size_t)MAX_BYTES);
		CHECK(((uintptr_t)t->data & (isz - 1)) == 0);
		CHECK(memchr(t->name, '\0', sizeof t->name) != NULL);
		h = fnv1a(h, t->name, strlen(t->name) + 1);
		h = fnv1a(h, &t->dtype, sizeof t->dtype);
		h = fnv1a(h, &t->ndim, sizeof t->ndim);
		h = fnv1a(h, t->shape, sizeof t->shape[0] * (size_t)t->ndim);
		h = fnv1a(h, t->data, tensor_nbytes(t));   /* ASan: every byte must be readable */
	}
	return h;
}

static void
check_error(const char *err, const char *name)
{
	CHECK(err != NULL);
	CHECK(strncmp(err, name, strlen(name)) == 0 && err[strlen(name)] == ':');
	CHECK(strlen(err) > strlen(name) + 2);
	CHECK(strchr(err, '\n') == NULL);
}

static FILE *
open_mem(const uint8_t *data, size_t size)
{
	if (size == 0)
		return fopen("/dev/null", "rb");
	return fmemopen((void *)data, size, "rb");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	FILE *f = open_mem(data, size), *out;
	StreamReader *r;
	StreamWriter *w = NULL;
	const StreamHeader *h;
	Record rec;
	char *copy = NULL;
	size_t copylen = 0;
	uint64_t *digests = NULL;
	size_t nd = 0, capd = 0;
	int s;

	CHECK(f != NULL);
	r = stream_reader_open(f, "fuzz");
	stream_reader_set_max_bytes(r, MAX_BYTES);
	h = stream_reader_header(r);
	if (!h) {
		check_error(stream_reader_error(r), "fuzz");
		stream_reader_close(r);
		fclose(f);
		return 0;
	}
	CHECK(h->nclasses >= 0 && h->nprov >= 0 && h->nmeta >= 0);
	CHECK(strlen(h->kind) > 0 && strlen(h->kind) < sizeof h->kind);
	for (int i = 0; i < h->nclasses; i++)
		CHECK(h->classes[i] != NULL);
	for (int i = 0; i < h->nprov; i++)
		CHECK(h->prov[i].tool && h->prov[i].version && h->prov[i].args);
	out = open_memstream(&copy, &copylen);
	CHECK(out != NULL);
	w = stream_writer_open(out, "copy", h);
	CHECK(w != NULL);
	while ((s = stream_reader_next(r, &rec)) == 1) {
		const Tensor *t;
		char err[256];
		CHECK(rec.id >= 0 && rec.label >= -1);
		CHECK(h->nclasses == 0 || rec.label < h->nclasses);
		CHECK(rec.ntensors >= 0 && rec.ntensors <= STREAM_MAX_TENSORS);
		if (nd == capd) {
			capd = capd ? capd * 2 : 16;
			digests = xreallocarray(digests, capd, sizeof *digests);
		}
		digests[nd++] = record_digest(&rec);
		/* the lookup a consumer makes: found or a message */
		t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
		if (!t)
			CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
		CHECK(stream_writer_put(w, &rec) == 0);
	}
	CHECK(stream_reader_count(r) == (int64_t)nd);
	if (s < 0) {
		check_error(stream_reader_error(r), "fuzz");
		stream_writer_abort(w);
		fclose(out);
	} else {
		FILE *back;
		StreamReader *r2;
		size_t i = 0;
		CHECK(stream_writer_close(w) == 0);
		fclose(out);
		back = open_mem((const uint8_t *)copy, copylen);
		CHECK(back != NULL);
		r2 = stream_reader_open(back, "copy");
		stream_reader_set_max_bytes(r2, MAX_BYTES);
		CHECK(stream_reader_header(r2) != NULL);
		CHECK(stream_reader_header(r2)->nclasses == h->nclasses);
		CHECK(strcmp(stream_reader_header(r2)->kind, h->kind) == 0);
		CHECK(stream_reader_header(r2)->records_per_epoch == h->records_per_epoch);
		CHECK(stream_reader_header(r2)->epochs == h->epochs);
		while ((s = stream_reader_next(r2, &rec)) == 1) {
			CHECK(i < nd);
			CHECK(record_digest(&rec) == digests[i]);
			i++;
		}
		if (s != 0)
			fprintf(stderr, "round trip: %s\n", stream_reader_error(r2));
		CHECK(s == 0 && i == nd);
		stream_reader_close(r2);
		fclose(back);
	}
	free(copy);
	free(digests);
	stream_reader_close(r);
	fclose(f);
	return 0;
}
