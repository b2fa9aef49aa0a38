/* probe_report: the text and JSON reports of ssl-probe (see probe.h). */
#include "eval/probe.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"

/* ------------------------------------------------------------------ */
/* reports                                                              */

static double
ratio(int64_t a, int64_t b)
{
	return b > 0 ? (double)a / (double)b : NAN;
}

static void
report_settings_text(FILE *fp, const ProbeResult *r)
{
	const ProbeConfig *c = &r->cfg;
	switch (c->method) {
	case PROBE_LINEAR:
		fprintf(fp, "C          %g (lambda %.4g = 1/(C n))", r->C, r->lambda);
		if (r->C_chosen && r->search.nval > 0)
			fprintf(fp, ", chosen by cross-entropy on a held-out %g%% of the training items (%lld fit, %lld val)\n",
			        100 * c->val_frac, (long long)r->search.nfit, (long long)r->search.nval);
		else if (r->C_chosen)
			fprintf(fp, ", the middle of the grid: too few items to hold any out\n");
		else
			fprintf(fp, ", given\n");
		if (r->C_chosen && r->search.nval > 0) {
			fprintf(fp, "C search  ");
			for (int i = 0; i < r->search.n; i++)
				fprintf(fp, "%s%g: %.4f %.2f%%%s", i ? ", " : " ", r->search.C[i], r->search.val_loss[i],
				        100 * r->search.val_acc[i], i == r->search.best ? " *" : "");
			fprintf(fp, "  (validation loss, accuracy)\n");
		}
		fprintf(fp, "optimizer  L-BFGS, %d iterations, %d evaluations, %s, max |gradient| %.2g, objective %.6g\n",
		        r->opt.iters, r->opt.evals, lbfgs_status_str(r->opt.status), r->opt.gmax, r->opt.f);
		break;
	case PROBE_KNN:
		fprintf(fp, "k          %d", r->k_used);
		if (r->k_used != c->k)
			fprintf(fp, " (%d asked, more than the training items)", c->k);
		fprintf(fp, "\nT          %g (votes weighted exp(cosine similarity / T))\n", c->T);
		break;
	case PROBE_MLP:
		fprintf(fp, "network    %d hidden units (ReLU), Adam lr %g, weight decay %g, batch %d\n", c->mlp.hidden,
		        c->mlp.lr, c->mlp.weight_decay, c->mlp.batch);
		if (r->nval > 0)
			fprintf(fp, "epochs     %d run, best %d (validation loss %.4f, accuracy %.2f%%; held-out %g%%: %lld fit, "
			            "%lld val; patience %d)\n",
			        r->mlp.epochs_run, r->mlp.best_epoch, r->mlp.best_val_loss, 100 * r->mlp.best_val_acc,
			        100 * c->val_frac, (long long)r->nfit, (long long)r->nval, c->mlp.patience);
		else
			fprintf(fp, "epochs     %d (too few items to hold any out: no early stopping)\n", r->mlp.epochs_run);
		break;
	}
}

/* Class c's index in the stream header (the probe keeps only the classes
 * with training items). */
static int
class_id(const ProbeDataInfo *info, int c)
{
	return info->class_ids ? info->class_ids[c] : c;
}

void
probe_report_text(FILE *fp, const ProbeResult *r, const ProbeDataInfo *info)
{
	const Metrics *m = &r->metrics;
	int K = m->K, w = 5;

	fprintf(fp, "method     %s\n", probe_method_name(r->cfg.method));
	fprintf(fp, "train      %s: %lld of %lld items", info->train_name, (long long)info->ntrain,
	        (long long)info->ntrain_total);
	if (info->labels_spec)
		fprintf(fp, " (labels %s, seed %llu)", info->labels_spec, (unsigned long long)info->seed);
	fprintf(fp, "\ntest       %s: %lld items\n", info->test_name, (long long)info->ntest);
	fprintf(fp, "features   %d dims, %d classes\n", info->D, K);
	report_settings_text(fp, r);
	fprintf(fp, "time       %.2f s\n", r->seconds);
	fprintf(fp, "top-1      %.2f%%  (%lld/%lld)\n", 100 * ratio(m->correct, m->n), (long long)m->correct,
	        (long long)m->n);
	fprintf(fp, "top-%d      %.2f%%  (%lld/%lld)\n", m->topk, 100 * ratio(m->correct_topk, m->n),
	        (long long)m->correct_topk, (long long)m->n);

	fprintf(fp, "\nper-class accuracy\n");
	for (int c = 0; c < K; c++) {
		char name[64];   /* from the stream: shown safely, cut to fit the column */
		snprintf(name, sizeof name, "%s", info->classes[c]);
		str_printable(name);
		if (m->class_n[c] > 0)
			fprintf(fp, "  %3d %-20s %7.2f%%  (%lld/%lld)\n", class_id(info, c), name,
			        100 * ratio(m->class_correct[c], m->class_n[c]), (long long)m->class_correct[c],
			        (long long)m->class_n[c]);
		else
			fprintf(fp, "  %3d %-20s       -   (no test items)\n", class_id(info, c), name);
	}

	if (!m->confusion) {
		fprintf(fp, "\nconfusion matrix: not shown for %d classes (--confusion shows it)\n", K);
		return;
	}
	for (int64_t i = 0; i < (int64_t)K * K; i++) {
		int d = snprintf(NULL, 0, "%lld", (long long)m->confusion[i]);
		if (d + 1 > w)
			w = d + 1;
	}
	fprintf(fp, "\nconfusion matrix (rows: true class, columns: predicted class)\n      ");
	for (int c = 0; c < K; c++)
		fprintf(fp, "%*d", w, class_id(info, c));
	fputc('\n', fp);
	for (int t = 0; t < K; t++) {
		fprintf(fp, "  %3d ", class_id(info, t));
		for (int p = 0; p < K; p++)
			fprintf(fp, "%*lld", w, (long long)m->confusion[(size_t)t * (size_t)K + (size_t)p]);
		fputc('\n', fp);
	}
}

/* json_real refuses NaN and infinities: those become null. */
static json_t *
jnum(double v)
{
	return isfinite(v) ? json_real(v) : json_null();
}

json_t *
probe_data_json(const ProbeDataInfo *info)
{
	json_t *o = json_object(), *classes = json_array();
	for (int c = 0; c < info->K; c++)
		json_array_append_new(classes, json_string(info->classes[c]));
	json_object_set_new(o, "train", json_pack("{s:s, s:I, s:I, s:o, s:I}", "name", info->train_name, "items",
	                                          (json_int_t)info->ntrain_total, "items_used",
	                                          (json_int_t)info->ntrain, "labels",
	                                          info->labels_spec ? json_string(info->labels_spec) : json_null(),
	                                          "seed", (json_int_t)info->seed));
	json_object_set_new(o, "test", json_pack("{s:s, s:I}", "name", info->test_name, "items", (json_int_t)info->ntest));
	json_object_set_new(o, "dim", json_integer(info->D));
	json_object_set_new(o, "classes", classes);
	return o;
}

static json_t *
settings_json(const ProbeResult *r)
{
	const ProbeConfig *c = &r->cfg;
	json_t *s = json_object();
	switch (c->method) {
	case PROBE_LINEAR: {
		json_t *search = json_array();
		json_object_set_new(s, "C", jnum(r->C));
		json_object_set_new(s, "lambda", jnum(r->lambda));
		json_object_set_new(s, "C_chosen", json_boolean(r->C_chosen));
		if (r->C_chosen) {
			json_object_set_new(s, "holdout", jnum(c->val_frac));
			json_object_set_new(s, "fit_items", json_integer(r->search.nfit));
			json_object_set_new(s, "val_items", json_integer(r->search.nval));
			for (int i = 0; i < r->search.n && r->search.nval > 0; i++)
				json_array_append_new(search, json_pack("{s:o, s:o, s:o}", "C", jnum(r->search.C[i]),
				                                        "val_accuracy", jnum(r->search.val_acc[i]), "val_loss",
				                                        jnum(r->search.val_loss[i])));
		}
		json_object_set_new(s, "search", search);
		json_object_set_new(s, "optimizer", json_pack("{s:s, s:i, s:i, s:b, s:s, s:o, s:o, s:o, s:i}", "name",
		                                              "lbfgs", "iterations", r->opt.iters, "evaluations",
		                                              r->opt.evals, "converged",
		                                              r->opt.status == LBFGS_CONVERGED_GTOL ||
		                                                  r->opt.status == LBFGS_CONVERGED_FTOL,
		                                              "status", lbfgs_status_str(r->opt.status), "grad_max",
		                                              jnum(r->opt.gmax), "objective", jnum(r->opt.f), "gtol",
		                                              jnum(c->lbfgs.gtol), "max_iter", c->lbfgs.max_iter));
		break;
	}
	case PROBE_KNN:
		json_object_set_new(s, "k", json_integer(c->k));
		json_object_set_new(s, "k_used", json_integer(r->k_used));
		json_object_set_new(s, "T", jnum(c->T));
		break;
	case PROBE_MLP:
		json_object_set_new(s, "hidden", json_integer(c->mlp.hidden));
		json_object_set_new(s, "lr", jnum(c->mlp.lr));
		json_object_set_new(s, "weight_decay", jnum(c->mlp.weight_decay));
		json_object_set_new(s, "batch", json_integer(c->mlp.batch));
		json_object_set_new(s, "max_epochs", json_integer(c->mlp.max_epochs));
		json_object_set_new(s, "patience", json_integer(c->mlp.patience));
		json_object_set_new(s, "holdout", jnum(c->val_frac));
		json_object_set_new(s, "fit_items", json_integer(r->nfit));
		json_object_set_new(s, "val_items", json_integer(r->nval));
		json_object_set_new(s, "epochs_run", json_integer(r->mlp.epochs_run));
		json_object_set_new(s, "best_epoch", json_integer(r->mlp.best_epoch));
		json_object_set_new(s, "best_val_loss", jnum(r->mlp.best_val_loss));
		json_object_set_new(s, "best_val_accuracy", jnum(r->mlp.best_val_acc));
		break;
	}
	json_object_set_new(s, "seed", json_integer((json_int_t)c->seed));
	return s;
}

json_t *
probe_result_json(const ProbeResult *r, const ProbeDataInfo *info)
{
	const Metrics *m = &r->metrics;
	json_t *o = json_object(), *pc = json_array(), *conf = json_array();
	int K = m->K;
	json_object_set_new(o, "method", json_string(probe_method_name(r->cfg.method)));
	json_object_set_new(o, "settings", settings_json(r));
	json_object_set_new(o, "seconds", jnum(r->seconds));
	json_object_set_new(o, "items", json_integer(m->n));
	json_object_set_new(o, "top1", jnum(ratio(m->correct, m->n)));
	json_object_set_new(o, "correct", json_integer(m->correct));
	json_object_set_new(o, "topk", json_integer(m->topk));
	json_object_set_new(o, "top5", jnum(ratio(m->correct_topk, m->n)));
	json_object_set_new(o, "correct_top5", json_integer(m->correct_topk));
	for (int c = 0; c < K; c++) {
		json_t *row = json_array();
		json_array_append_new(pc, json_pack("{s:i, s:s, s:I, s:I, s:o}", "index", class_id(info, c), "class",
		                                    info->classes[c],
		                                    "items", (json_int_t)m->class_n[c], "correct",
		                                    (json_int_t)m->class_correct[c], "accuracy",
		                                    jnum(ratio(m->class_correct[c], m->class_n[c]))));
		for (int p = 0; p < K && m->confusion; p++)
			json_array_append_new(row, json_integer(m->confusion[(size_t)c * (size_t)K + (size_t)p]));
		json_array_append_new(conf, row);
	}
	json_object_set_new(o, "per_class", pc);
	if (m->confusion)
		json_object_set_new(o, "confusion", conf);
	else {
		json_decref(conf);
		json_object_set_new(o, "confusion", json_null());
	}
	return o;
}
