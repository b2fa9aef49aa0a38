/* embed: an `embeddings` stream loaded whole into memory, for the probes.
 *
 * Reads every record of a stream of kind "embeddings" (tensor "embedding",
 * shape (D), dtype <f4) into one N x D float matrix, with labels, ids and a
 * copy of the header (class names, provenance). Every record must have the
 * same D as the first. Labels are kept as they are (-1 = unknown); checking
 * them is the caller's business, since what is acceptable depends on use.
 * Messages number records from 1, as lib/io/stream does. */
#ifndef SSL_EMBED_H
#define SSL_EMBED_H

#include <stddef.h>
#include <stdint.h>

#include "io/stream.h"

#define EMBED_MAX_DIM (1 << 20)

typedef struct {
	char        *name;    /* the input's name, for messages ("<stdin>", a path) */
	int64_t      n;       /* records */
	int          dim;     /* D; 0 when the stream has no records */
	float       *x;       /* (n, D) */
	int64_t     *labels;  /* (n); -1 when unknown */
	int64_t     *ids;     /* (n) */
	char       **sources; /* (n) the records' "source" (owned), NULL where absent */
	StreamHeader header;  /* owned copy */
} Embeddings;

/* Reads the stream at path ("-" or NULL: stdin) to its trailer. 0, or -1
 * with a one-line message naming the input (and record) in err; *e is then
 * empty (embed_free is still safe). */
int embed_load(Embeddings *e, const char *path, char *err, size_t errlen);
/* The same from an open reader (not closed here). */
int embed_load_reader(Embeddings *e, StreamReader *r, char *err, size_t errlen);
void embed_free(Embeddings *e);

/* Checks that a training and a test set can be probed together, and settles
 * the classes: the same dimension; class lists that agree where both headers
 * have one; every label known (not -1) and inside the classes; at least two
 * classes among the training labels; every class of the test set present in
 * the training set. K is the header's class count (or 1 + the largest label
 * when neither header names classes) and *names gets K malloc'd names
 * (embed_names_free). 0, or -1 with a one-line message in err. */
int  embed_check_pair(const Embeddings *train, const Embeddings *test, int *K, char ***names, char *err, size_t errlen);
void embed_names_free(char **names, int K);
/* Keeps only the classes with training items (a header may name 100,000
 * classes for 100 items): relabels both sets 0..K'-1 in class order, shrinks
 * *names to match, sets *K to K' and *ids to each kept class's index in the
 * header (malloc'd, K' entries). Call after embed_check_pair. */
void embed_keep_present_classes(Embeddings *train, Embeddings *test, int *K, char ***names, int **ids);

/* Which encoder wrote a set of embeddings, from its header's meta (ssl-encode
 * writes them): "model_id" (a fingerprint of the parameters and the
 * normalisation), "model" (the path it was given), "layer", "l2". NULL where
 * absent; the strings are borrowed from the header. */
typedef struct {
	const char *model_id, *model, *layer, *l2;
} EncoderId;

EncoderId embed_encoder_id(const StreamHeader *h);
/* -1 and "aname: embeddings of another encoder (...)" when a and b disagree
 * on model_id, layer or l2 where both say (the path is not compared: a
 * model may move); 0 otherwise, unknown fields included. */
int embed_check_encoder(const char *aname, const EncoderId *a, const char *bname, const EncoderId *b, char *err,
                        size_t errlen);

#endif
