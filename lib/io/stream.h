/* stream: the ssl-tools tensor stream (normative spec: man/ssl-stream.5).
 *
 * A stream is a sequence of msgpack maps: one header, then records, then one
 * trailer. On the wire:
 *   header : {"format": "ssl-stream", "version": [1, 0], "kind": "images",
 *             "classes": ["airplane", ...], "records_per_epoch": N | nil,
 *             "epochs": N | nil, "start_epoch": E, "meta": {str: str},
 *             "provenance": [{"tool": .., "version": .., "args": [..]}, ..]}
 *   record : {"id": i, "label": l, "epoch": e, ["source": "cat/1.jpg"],
 *             <tensor name>: {"dtype": "|u1", "shape": [H, W, C], "data": bin}, ...}
 *   trailer: {"end": true, "records": N}
 * Tensor names by kind: images -> "image" (H,W,C) |u1; views -> "views"
 * (V,H,W,C) |u1; embeddings -> "embedding" (D) <f4.
 *
 * Readers bound everything and never trust sizes; EOF before the trailer is
 * an error ("truncated stream"), never success. Errors are returned as -1
 * with a message that names the input and the record number (1 = the first
 * record after the header): "<input>: record N (id I): what",
 * "<input>: header: what" or "<input>: trailer: what".
 *
 * Record rules: every map-valued entry of a record is a tensor (at most
 * STREAM_MAX_TENSORS); other unknown keys are ignored. A map with the key
 * "end" is the trailer. Tensor data is aligned to its item size. */
#ifndef SSL_STREAM_H
#define SSL_STREAM_H

#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>

#include "io/provenance.h"
#include "io/tensor.h"

#define STREAM_FORMAT         "ssl-stream"
#define STREAM_VERSION_MAJOR  1
#define STREAM_VERSION_MINOR  0
#define STREAM_MAX_TENSORS    8
#define STREAM_DEFAULT_MAX_BYTES (INT64_C(1) << 30) /* per tensor */
#define STREAM_KIND_IMAGES     "images"
#define STREAM_KIND_VIEWS      "views"
#define STREAM_KIND_EMBEDDINGS "embeddings"


typedef struct {
	char  *key;
	char  *value;
} MetaEntry;

/* All strings owned by the header. */
typedef struct {
	int         version_major, version_minor;
	char        kind[32];
	int         nclasses;
	char      **classes;           /* class index -> name, sorted by the producer */
	int64_t     records_per_epoch; /* -1: unknown */
	int64_t     epochs;            /* -1: unknown */
	int64_t     start_epoch;       /* first epoch number in this stream (0) */
	int         nprov;
	Provenance *prov;
	int         nmeta;
	MetaEntry  *meta;
} StreamHeader;

void stream_header_init(StreamHeader *h, const char *kind);
void stream_header_copy(StreamHeader *dst, const StreamHeader *src);
void stream_header_free(StreamHeader *h);
void stream_header_set_classes(StreamHeader *h, int n, char *const *names);
/* Appends {tool: progname, version, args: argv[1..]}. */
void stream_header_add_provenance(StreamHeader *h, int argc, char **argv);
void stream_header_set_meta(StreamHeader *h, const char *key, const char *value);
const char *stream_header_get_meta(const StreamHeader *h, const char *key); /* NULL if absent */
/* Records the header announces (records_per_epoch x epochs), for progress
 * lines; -1 when unknown or over INT64_MAX. */
int64_t stream_header_records(const StreamHeader *h);

/* A record from stream_reader_next borrows the reader's memory until the
 * next call; copy what you keep. For writing, tensors may point anywhere. */
typedef struct {
	int64_t     id;
	int64_t     label;     /* -1 when unknown */
	int64_t     epoch;
	const char *source;    /* optional, NULL when absent */
	int         ntensors;
	Tensor      tensors[STREAM_MAX_TENSORS];
} Record;

/* Finds tensor `name` and checks dtype and rank (ndim < 0: any rank).
 * NULL with a message in err when missing or mismatched. */
const Tensor *record_tensor(const Record *rec, const char *name, DType dtype, int ndim,
                            char *err, size_t errlen);

/* ---- reading ---- */
typedef struct StreamReader StreamReader;

/* Never NULL. "-" or NULL path means stdin. Opening and header errors are
 * reported by stream_reader_header() returning NULL. */
StreamReader *stream_reader_open_path(const char *path);
StreamReader *stream_reader_open(FILE *fp, const char *name); /* does not own fp */
void stream_reader_set_max_bytes(StreamReader *r, int64_t max_tensor_bytes);
/* Reads the header on first call; NULL on error (see stream_reader_error). */
const StreamHeader *stream_reader_header(StreamReader *r);
/* 1: a record in *rec; 0: trailer reached (and checked); -1: error. */
int stream_reader_next(StreamReader *r, Record *rec);
int64_t stream_reader_count(const StreamReader *r);  /* records returned so far */
const char *stream_reader_name(const StreamReader *r);
const char *stream_reader_error(const StreamReader *r);
void stream_reader_close(StreamReader *r);

/* Where a message about one record points, the one way to say it:
 * "NAME: record N (id I)", N counted from 1. The text lives in the returned
 * value, until the end of the statement that calls:
 *   die("%s: no label", stream_at_reader(r, rec.id).s); */
typedef struct {
	char s[1152];
} StreamAt;
StreamAt stream_at(const char *name, int64_t n, int64_t id);
/* The record the reader returned last. */
StreamAt stream_at_reader(const StreamReader *r, int64_t id);

/* Tool helper: open, read the header, check the kind (NULL: any); die() on error. */
StreamReader *stream_reader_open_or_die(const char *path, const char *kind);

/* ---- writing ---- */
typedef struct StreamWriter StreamWriter;

/* Writes the header. fp is not closed. Refuses a terminal (returns NULL,
 * errno = ENOTTY); NULL with errno set on a write error. */
StreamWriter *stream_writer_open(FILE *fp, const char *name, const StreamHeader *h);
int  stream_writer_put(StreamWriter *w, const Record *rec);  /* 0, or -1 on write error */
/* Writes the trailer, flushes, frees. 0, or -1 on write error. */
int  stream_writer_close(StreamWriter *w);
/* Frees without writing a trailer: the output reads as truncated, by design. */
void stream_writer_abort(StreamWriter *w);
int64_t stream_writer_count(const StreamWriter *w);
/* Tool helper: the writer on stdout; die() if stdout is a terminal or on error. */
StreamWriter *stream_writer_stdout_or_die(const StreamHeader *h);

/* ---- the tensor encoding, shared with checkpoints ---- */
int tensor_pack(msgpack_packer *pk, const Tensor *t);
/* Borrowed view into o's memory. Checks dtype, rank, dims, numel overflow,
 * max_bytes, and that the bin length equals numel * itemsize. */
int tensor_unpack(const msgpack_object *o, Tensor *t, int64_t max_bytes, char *err, size_t errlen);

#endif
