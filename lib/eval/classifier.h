/* classifier: a trained probe kept in a file, and predictions from it
 * (ssl-probe --save and --predict; the file format is in ssl-probe(1)).
 *
 * A probe file holds what ssl-probe trained on frozen embeddings and
 * everything needed to apply it to new ones: the class names, the feature
 * standardisation it used, one or two classifiers (linear, mlp) with the
 * top-1 test accuracy ssl-probe printed for each, and the identity of the
 * encoder whose embeddings it was trained on (lib/eval/embed.h EncoderId).
 * It is one msgpack map with a format name, a version and a CRC-32
 * (lib/io/msgfile.h), written atomically.
 *
 * Predictions are the softmax of the same scores ssl-probe evaluated: the
 * inputs are standardised with the stored mean and scale and scored by
 * linear_scores or mlp_scores (lib/eval/probe.h); the predicted class is
 * probe_argmax of those scores. So predicting the test embeddings ssl-probe
 * was given reproduces its top-1 accuracy, image by image. */
#ifndef SSL_CLASSIFIER_H
#define SSL_CLASSIFIER_H

#include <stdint.h>
#include <stdio.h>

#include "eval/embed.h"
#include "eval/probe.h"

#define PROBEFILE_FORMAT        "ssl-probe"
#define PROBEFILE_VERSION_MAJOR 1
#define PROBEFILE_VERSION_MINOR 0
#define PROBEFILE_MAX_CLF       2

typedef struct {
	ProbeMethod method;         /* PROBE_LINEAR or PROBE_MLP */
	LinearModel linear;         /* linear: W (K, D), b (K) */
	MlpModel    mlp;            /* mlp: W1 (H, D), b1 (H), W2 (K, H), b2 (K) */
	double      C;              /* linear: the C it was fitted with; 0 for mlp */
	double      test_accuracy;  /* top-1 on the test set ssl-probe was given, in [0, 1] */
} Classifier;

/* All strings and arrays owned. */
typedef struct {
	int         D, K;
	char      **classes;        /* (K) names */
	float      *mean, *scale;   /* (D) each: x' = (x - mean) * scale */
	int         nclf;
	Classifier  clf[PROBEFILE_MAX_CLF];
	char       *model_id, *model, *layer, *l2;  /* the encoder, NULL where unknown */
	char       *trained_on;     /* the training input's name */
	int64_t     ntrain;         /* items it was trained on */
} ProbeFile;

/* A probe file with no classifier yet: D, K, copies of the class names and
 * of the encoder's identity (id's fields may be NULL). */
void probefile_init(ProbeFile *pf, int D, int K, char *const *classes, const EncoderId *id, const char *trained_on,
                    int64_t ntrain);
/* Adds a copy of r's classifier (a linear or mlp result of probe_run on
 * this D and K); the standardisation is taken from the first one added (all
 * results of one ssl-probe run share it). Ignores knn results. */
void probefile_add(ProbeFile *pf, const ProbeResult *r);
void probefile_free(ProbeFile *pf);

/* Writes pf atomically. 0, or -1 with a message naming the path in err. */
int probefile_save(const char *path, const ProbeFile *pf, char *err, size_t errlen);
/* Reads and checks a probe file. 0, or -1 with "path: why" in err ("not an
 * ssl-tools probe file (an ssl-stream of kind \"embeddings\")", "truncated
 * file", "checksum mismatch ...: the file is corrupt", ...); pf is then
 * empty. */
int probefile_load(ProbeFile *pf, const char *path, char *err, size_t errlen);

/* The index of the classifier of method m, or -1. */
int probefile_find(const ProbeFile *pf, ProbeMethod m);

/* Checks that embeddings e can be given to pf: the same dimension and the
 * same encoder (embed_check_encoder). 0, or -1 with a message naming e. */
int probefile_check_input(const ProbeFile *pf, const char *probe_name, const Embeddings *e, char *err, size_t errlen);

/* Classifier `which` on x (n, D): pred (n) the predicted class, prob (n) its
 * softmax probability. */
void probefile_predict(int64_t *pred, double *prob, const ProbeFile *pf, int which, const float *x, int64_t n);

/* Writes predictions for e, one line per record, to fp: TSV (header line
 * "id source class probability true_class" when header is set) or, with
 * json, one object per line {"id", "source", "class", "label",
 * "probability", "true_class"}. The true class is written where the record
 * is labelled and e's classes are pf's (or e names none); *nknown and
 * *ncorrect count those records. 0, or -1 on a write error (errno set). */
int probefile_write_predictions(FILE *fp, const ProbeFile *pf, int which, const Embeddings *e, int json, int header,
                                int64_t *nknown, int64_t *ncorrect);

#endif
