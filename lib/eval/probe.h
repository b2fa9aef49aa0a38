/* probe: the evaluation protocols for frozen features (ssl-probe(1)).
 *
 * - linear: multinomial logistic regression on standardised features,
 *   minimising  mean_i CE(W x_i + b, y_i) + (lambda/2) ||W||^2  (bias not
 *   regularised) with L-BFGS (lib/eval/lbfgs.h); forward and backward are two
 *   OpenBLAS sgemm calls. C has scikit-learn's meaning: lambda = 1/(C n),
 *   n the number of training items, so C = 1 here is LogisticRegression(C=1).
 *   Without an explicit C, one is chosen from a grid by accuracy on a
 *   stratified held-out part of the training set, then the model is refit on
 *   the whole training set.
 * - knn: the weighted kNN classifier of Wu et al. 2018 (InstDisc, sec. 3.4):
 *   cosine similarity to every training item, the k most similar vote for
 *   their class with weight exp(sim / T).
 * - mlp: one hidden ReLU layer, Adam on minibatches, early stopping on a
 *   stratified held-out part of the training set; standardised features.
 * - metrics: top-1, top-k, per-class accuracy, confusion matrix.
 *
 * Scores are (n, K) row-major doubles (logits or votes); a prediction is the
 * highest score, ties going to the lower class index. Labels are class
 * indices in [0, K). Functions here trust their arguments (the tool checks
 * user input) and die only on allocation failure. */
#ifndef SSL_PROBE_H
#define SSL_PROBE_H

#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "eval/lbfgs.h"

#define PROBE_MAX_GRID 32

/* Reports progress of long work (NULL fn: nothing): stage ("C search",
 * "mlp", "knn"), done of total units, a short text (may be NULL). */
typedef struct {
	void (*fn)(void *ctx, const char *stage, int64_t done, int64_t total, const char *extra);
	void *ctx;
} ProbeProgress;

/* ---- features ---- */

/* Per-dimension mean and 1/std (population std; 1 where the std is 0). */
void probe_standardize_fit(float *mean, float *scale, const float *x, int64_t n, int D);
/* x = (x - mean) * scale, in place. */
void probe_standardize_apply(float *x, int64_t n, int D, const float *mean, const float *scale);
/* Each row to unit L2 norm (rows of norm < 1e-12 are left as they are). */
void probe_l2_normalize(float *x, int64_t n, int D);
/* Rows idx[0..m) of x (n, D) and their labels into xo (m, D), yo (m). */
void probe_gather(float *xo, int64_t *yo, const float *x, const int64_t *y, int D, const int64_t *idx, int64_t m);
/* A seeded, stratified hold-out split of items 0..n: about val_frac of each
 * class goes to val, the rest to fit (each class keeps at least one item in
 * fit; a class with one item keeps it). Uses subset_stratified with a seed
 * derived from `seed` for this purpose. fit and val need room for n. */
void probe_split_holdout(int64_t *fit, int64_t *nfit, int64_t *val, int64_t *nval, const int64_t *y, int64_t n,
                         int K, double val_frac, uint64_t seed);

/* ---- metrics ---- */

typedef struct {
	int      K, topk;         /* topk = min(5, K) unless asked otherwise */
	int64_t  n;               /* items scored */
	int64_t  correct;         /* top-1 */
	int64_t  correct_topk;
	int64_t *confusion;       /* (K, K): row = true class, column = predicted; NULL when not asked for */
	int64_t *class_n;         /* (K) items per true class */
	int64_t *class_correct;   /* (K) */
} Metrics;

/* Up to this many classes the report shows the confusion matrix unasked
 * (K x K counts: 21k classes would be 3.5 GB and a 21k-column table). */
#define PROBE_CONFUSION_AUTO 20

int  probe_argmax(const double *s, int K);
void metrics_compute(Metrics *m, const double *scores, const int64_t *y, int64_t n, int K, int topk);
void metrics_free(Metrics *m);

/* ---- linear ---- */

typedef struct {
	int    K, D;
	float *W;  /* (K, D) */
	float *b;  /* (K) */
} LinearModel;

void linear_init(LinearModel *m, int K, int D);   /* zeros */
void linear_copy(LinearModel *dst, const LinearModel *src); /* same K, D */
void linear_free(LinearModel *m);
/* The objective above at m's parameters, and its gradient into dW (K, D)
 * and db (K) when they are not NULL. */
double linear_objective(const LinearModel *m, double *dW, double *db, const float *x, const int64_t *y, int64_t n,
                        double C);
/* Minimises the objective from m's current parameters (a warm start),
 * reporting each L-BFGS step to pg (may be NULL) as stage "linear". The
 * solver works in whitened coordinates (see LinearCtx in probe.c) and its
 * gradient tolerance applies there; res->f and res->gmax are then those of
 * the objective above at the result. 0 when L-BFGS converged, 1 otherwise
 * (res says how it stopped). */
int linear_fit(LinearModel *m, LbfgsResult *res, const float *x, const int64_t *y, int64_t n, double C,
               const LbfgsParams *lp, const ProbeProgress *pg);
void linear_scores(double *scores, const LinearModel *m, const float *x, int64_t n);

typedef struct {
	int    n;                     /* grid points tried (the search stops early) */
	double C[PROBE_MAX_GRID];
	double val_acc[PROBE_MAX_GRID];
	double val_loss[PROBE_MAX_GRID];   /* mean cross-entropy on val */
	int    best;
	int64_t nfit, nval;
} LinearSearch;

/* Fits on a fit/val split of (x, y) for each C of the grid, increasing, with
 * warm starts; picks the lowest validation cross-entropy (ties: the smaller
 * C) and stops after two grid points in a row that do worse than the best.
 * Returns the chosen C. */
double linear_select_C(LinearSearch *s, const float *x, const int64_t *y, int64_t n, int D, int K, const double *grid,
                       int ngrid, double val_frac, uint64_t seed, const LbfgsParams *lp, const ProbeProgress *pg);

/* ---- kNN ---- */

/* votes (nq, K): for each query, the sum over its k most similar training
 * items (cosine; ties in similarity go to the lower training index) of
 * exp(sim / T), per class. train (n, D) and query (nq, D) must be L2
 * normalised already; k is capped at n. */
void knn_scores(double *votes, const float *train, const int64_t *y, int64_t n, const float *query, int64_t nq, int D,
                int K, int k, double T, const ProbeProgress *pg);

/* ---- MLP ---- */

typedef struct {
	int      hidden;        /* 512 */
	int      max_epochs;    /* 100 */
	int      batch;         /* 256 */
	int      patience;      /* epochs without a better validation loss before stopping (10) */
	double   lr;            /* Adam step (1e-3) */
	double   weight_decay;  /* decoupled, AdamW style (0) */
	uint64_t seed;
} MlpOptions;

typedef struct {
	int    D, H, K;
	float *params;          /* W1 (H, D), b1 (H), W2 (K, H), b2 (K), one block */
	float *W1, *b1, *W2, *b2;
	int    epochs_run, best_epoch;   /* best_epoch: 1-based, 0 = none */
	double best_val_loss, best_val_acc;
} MlpModel;

void mlp_options_default(MlpOptions *o);
/* Zeroed parameters for D inputs, H hidden units and K classes (mlp_free). */
void mlp_alloc(MlpModel *m, int D, int H, int K);
/* Trains from a seeded initialisation; keeps the parameters of the epoch with
 * the lowest validation loss (all epochs run when nval == 0, the last kept). */
void mlp_fit(MlpModel *m, const float *xfit, const int64_t *yfit, int64_t nfit, const float *xval,
             const int64_t *yval, int64_t nval, int D, int K, const MlpOptions *o, const ProbeProgress *pg);
void mlp_scores(double *scores, const MlpModel *m, const float *x, int64_t n);
void mlp_free(MlpModel *m);

/* ---- one probe run, as the tool does it ---- */

typedef enum { PROBE_LINEAR, PROBE_KNN, PROBE_MLP } ProbeMethod;

typedef struct {
	ProbeMethod method;
	/* linear */
	double      C;             /* <= 0: choose by held-out split over grid */
	double      grid[PROBE_MAX_GRID];
	int         ngrid;
	double      val_frac;      /* hold-out fraction for C selection and MLP early stopping */
	LbfgsParams lbfgs;
	/* knn */
	int         k;
	double      T;
	/* mlp */
	MlpOptions  mlp;
	uint64_t    seed;
	ProbeProgress progress;
	int         confusion;     /* 1: the confusion matrix for any K; 0: only up to PROBE_CONFUSION_AUTO */
} ProbeConfig;

typedef struct {
	ProbeConfig  cfg;          /* as used */
	double       C, lambda;    /* linear: the C used and its lambda */
	int          C_chosen;     /* 1 when C came from the search */
	LinearSearch search;
	LbfgsResult  opt;
	int          k_used;
	MlpModel     mlp;          /* mlp: the trained model, epochs and validation figures */
	LinearModel  linear;       /* linear: the trained model */
	float       *mean, *scale; /* linear, mlp: the standardisation, (D) each (x - mean) * scale */
	int64_t      nfit, nval;   /* split sizes where one was made */
	double       seconds;
	Metrics      metrics;
} ProbeResult;

const char *probe_method_name(ProbeMethod m);
/* 0 and *m, or -1 for an unknown name. */
int probe_method_parse(const char *s, ProbeMethod *m);
void probe_config_default(ProbeConfig *c);
/* Runs one method: trains on (xtrain, ytrain) and scores (xtest, ytest).
 * Inputs are not modified (standardised or normalised copies are made).
 * The trained classifier stays in r until probe_result_free (for
 * ssl-probe --save, lib/eval/classifier.h). */
void probe_run(ProbeResult *r, const ProbeConfig *cfg, const float *xtrain, const int64_t *ytrain, int64_t ntrain,
               const float *xtest, const int64_t *ytest, int64_t ntest, int D, int K);
void probe_result_free(ProbeResult *r);

/* What the report says about the data, beside each result. */
typedef struct {
	const char        *train_name, *test_name;
	int64_t            ntrain_total, ntrain, ntest;
	int                D, K;
	char *const       *classes;    /* K names */
	const char        *labels_spec; /* NULL: all labels */
	uint64_t           seed;
	const int         *class_ids;  /* K: each class's index in the header; NULL: 0..K-1 */
} ProbeDataInfo;

/* Human-readable report of one result (data, settings, accuracy, per-class
 * accuracy, confusion matrix) on fp. */
void probe_report_text(FILE *fp, const ProbeResult *r, const ProbeDataInfo *info);
/* The same for machines, as new JSON references: the data description and
 * one object per result (the tool puts them together). */
json_t *probe_data_json(const ProbeDataInfo *info);
json_t *probe_result_json(const ProbeResult *r, const ProbeDataInfo *info);

#endif
