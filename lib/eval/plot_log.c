/* plot_log: the chart of an ssl-train log (plot_log_tsv, plot.h): the TSV
 * read and checked, its curves smoothed and drawn in stacked panels. */
#include "eval/plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static const char *const log_columns[] = {
	"step", "epoch", "loss", "lr", "images_per_s", "contrastive_top1", "monitor_knn_top1",
};
enum { COL_STEP, COL_EPOCH, COL_LOSS, COL_LR, COL_IPS, COL_TOP1, COL_KNN, NCOLS };

typedef struct {
	int64_t n, cap;
	double *col[NCOLS];
} Log;

static void
log_free(Log *l)
{
	for (int k = 0; k < NCOLS; k++)
		free(l->col[k]);
	memset(l, 0, sizeof *l);
}

/* One data line into the columns: 0, or -1 with a message. Empty cells are
 * NaN except step, which every line needs. */
static int
log_parse_line(Log *l, char *line, const char *path, int64_t lineno, char *err, size_t errlen)
{
	double v[NCOLS];
	char *p = line;
	for (int k = 0; k < NCOLS; k++) {
		char *end = strchr(p, '\t');
		if (!end && k < NCOLS - 1) {
			snprintf(err, errlen, "%s: line %lld: %d fields, expected %d", path, (long long)lineno, k + 1, NCOLS);
			return -1;
		}
		if (end && k == NCOLS - 1) {
			snprintf(err, errlen, "%s: line %lld: more than %d fields", path, (long long)lineno, NCOLS);
			return -1;
		}
		if (end)
			*end = '\0';
		if (*p == '\0') {
			v[k] = NAN;
		} else {
			char *q;
			errno = 0;
			v[k] = strtod(p, &q);
			if (*q != '\0' || errno == ERANGE) {
				snprintf(err, errlen, "%s: line %lld: field %s: '%.32s' is not a number", path,
				         (long long)lineno, log_columns[k], p);
				return -1;
			}
		}
		p = end ? end + 1 : p;
	}
	if (!isfinite(v[COL_STEP])) {
		snprintf(err, errlen, "%s: line %lld: field step: missing", path, (long long)lineno);
		return -1;
	}
	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		for (int k = 0; k < NCOLS; k++)
			l->col[k] = xreallocarray(l->col[k], (size_t)l->cap, sizeof(double));
	}
	for (int k = 0; k < NCOLS; k++)
		l->col[k][l->n] = v[k];
	l->n++;
	return 0;
}

static int
log_read(Log *l, const char *path, char *err, size_t errlen)
{
	memset(l, 0, sizeof *l);
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	int64_t lineno = 0;
	int rc = 0;
	char want[256] = "";
	for (int k = 0; k < NCOLS; k++) {
		strcat(want, log_columns[k]);
		if (k < NCOLS - 1)
			strcat(want, "\t");
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (lineno == 1) {
			if (strcmp(line, want) != 0) {
				snprintf(err, errlen, "%s: line 1: not an ssl-train log (the header must be the tab-separated "
				         "columns %s ... %s)", path, log_columns[0], log_columns[NCOLS - 1]);
				rc = -1;
				break;
			}
			continue;
		}
		/* blank lines, and the header again where a resumed run appended */
		if (len == 0 || strcmp(line, want) == 0)
			continue;
		if ((rc = log_parse_line(l, line, path, lineno, err, errlen)) < 0)
			break;
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		rc = -1;
	}
	if (rc == 0 && lineno == 0) {
		snprintf(err, errlen, "%s: empty file, not an ssl-train log", path);
		rc = -1;
	}
	free(line);
	fclose(fp);
	if (rc < 0)
		log_free(l);
	return rc;
}

/* Debiased exponential moving average over the finite values (NaN stays
 * NaN), as TensorBoard's smoothing. */
static void
smooth(double *out, const double *y, int64_t n, double beta)
{
	double s = 0, w = 0;
	for (int64_t i = 0; i < n; i++) {
		if (!isfinite(y[i])) {
			out[i] = NAN;
			continue;
		}
		s = beta * s + (1 - beta) * y[i];
		w = beta * w + (1 - beta);
		out[i] = s / w;
	}
}

static int64_t
count_finite(const double *y, int64_t n)
{
	int64_t k = 0;
	for (int64_t i = 0; i < n; i++)
		k += isfinite(y[i]) != 0;
	return k;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int
plot_log_height(int panels)
{
	return PLOT_LOG_HEADER + panels * PLOT_LOG_PANEL_H;
}

/* A panel of one column against step: the raw values light and, when there
 * are enough of them to be noisy, a smoothed curve on top. */
static void
log_panel(PlotCanvas *c, const PlotPanel *p, const double *x, const double *y, int64_t n, double *tmp,
          PlotRgb strong, PlotRgb light, int smoothable)
{
	int64_t finite = count_finite(y, n);
	double window = finite / 40.0;
	if (smoothable && window >= 3) {
		smooth(tmp, y, n, 1 - 1 / window);
		PlotSeries s[2] = {
			{ "per step", x, y, n, light, 1, 0 },
			{ "smoothed", x, tmp, n, strong, 2, 0 },
		};
		plot_lines(c, p, s, 2);
	} else {
		PlotSeries s = { NULL, x, y, n, strong, 2, finite <= 60 };
		plot_lines(c, p, &s, 1);
	}
}

int
plot_log_tsv(const char *tsv_path, const char *png_path, char *err, size_t errlen)
{
	Log l;
	if (log_read(&l, tsv_path, err, errlen) < 0)
		return -1;
	int64_t n = l.n;
	const double *step = l.col[COL_STEP], *epoch = l.col[COL_EPOCH];
	int64_t knn_n = count_finite(l.col[COL_KNN], n);
	int panels = knn_n ? 4 : 3;
	PlotCanvas c;
	plot_canvas_init(&c, PLOT_LOG_W, plot_log_height(panels), (PlotRgb){ 246, 246, 246 });

	/* Header: what the file is and the figures people look for first. */
	const char *base = strrchr(tsv_path, '/') ? strrchr(tsv_path, '/') + 1 : tsv_path;
	char line[512];
	snprintf(line, sizeof line, "ssl-train log: %.200s", base);
	plot_text(&c, 16, 10, line, plot_ink, 2);
	double last_loss = NAN, first_epoch = NAN, last_epoch = NAN, ips_med = NAN;
	for (int64_t i = 0; i < n; i++) {
		if (isfinite(l.col[COL_LOSS][i]))
			last_loss = l.col[COL_LOSS][i];
		if (isfinite(epoch[i]) && !isfinite(first_epoch))
			first_epoch = epoch[i];
		if (isfinite(epoch[i]))
			last_epoch = epoch[i];
	}
	double *tmp = xcalloc(n ? (size_t)n : 1, sizeof *tmp);
	int64_t m = 0;
	for (int64_t i = 0; i < n; i++)
		if (isfinite(l.col[COL_IPS][i]))
			tmp[m++] = l.col[COL_IPS][i];
	if (m) {
		qsort(tmp, (size_t)m, sizeof *tmp, cmp_double);
		ips_med = tmp[m / 2];
	}
	char epochs[64];
	if (first_epoch == last_epoch)
		snprintf(epochs, sizeof epochs, "epoch %g", last_epoch);
	else
		snprintf(epochs, sizeof epochs, "epochs %g-%g", first_epoch, last_epoch);
	if (n)
		snprintf(line, sizeof line, "steps %.0f-%.0f, %s, last loss %.4g, median %.0f images/s", step[0],
		         step[n - 1], epochs, last_loss, ips_med);
	else
		snprintf(line, sizeof line, "no rows yet");
	plot_text(&c, 16, 32, line, plot_faint, 2);

	/* One left margin for every panel, so the step axes line up. */
	PlotPanel p = { 0, PLOT_LOG_HEADER, PLOT_LOG_W, PLOT_LOG_PANEL_H, NULL, "step", NULL, 2, 120, 0, 0, 0 };
	/* And one step range, so a point lines up with the same step above. */
	if (n) {
		p.xfix = 1;
		p.xmin = p.xmax = step[0];
		for (int64_t i = 1; i < n; i++) {
			p.xmin = fmin(p.xmin, step[i]);
			p.xmax = fmax(p.xmax, step[i]);
		}
	}
	const PlotRgb blue = { 31, 119, 180 }, blue_l = { 174, 199, 232 };
	const PlotRgb orange = { 255, 127, 14 }, orange_l = { 255, 204, 153 };
	const PlotRgb green = { 44, 160, 44 }, purple = { 148, 103, 189 };

	p.title = "NT-Xent loss";
	p.ylabel = "loss";
	log_panel(&c, &p, step, l.col[COL_LOSS], n, tmp, blue, blue_l, 1);
	p.y += PLOT_LOG_PANEL_H;

	p.title = "contrastive top-1: the positive ranked first among the 2N-1 others";
	p.ylabel = "top-1";
	log_panel(&c, &p, step, l.col[COL_TOP1], n, tmp, orange, orange_l, 1);
	p.y += PLOT_LOG_PANEL_H;

	if (knn_n) {
		/* The monitor runs now and then; per epoch reads best when it ran in
		 * more than one epoch. */
		double e0 = NAN, e1 = NAN;
		for (int64_t i = 0; i < n; i++)
			if (isfinite(l.col[COL_KNN][i]) && isfinite(epoch[i])) {
				e0 = isfinite(e0) ? fmin(e0, epoch[i]) : epoch[i];
				e1 = isfinite(e1) ? fmax(e1, epoch[i]) : epoch[i];
			}
		int by_epoch = isfinite(e0) && e1 > e0;
		PlotPanel q = p;
		q.title = "monitor: kNN top-1 on held-out labels";
		q.xlabel = by_epoch ? "epoch" : "step";
		q.xfix = by_epoch ? 0 : q.xfix;
		q.ylabel = "top-1";
		PlotSeries s = { NULL, by_epoch ? epoch : step, l.col[COL_KNN], n, green, 2, 1 };
		plot_lines(&c, &q, &s, 1);
		p.y += PLOT_LOG_PANEL_H;
	}

	p.title = "learning rate";
	p.ylabel = "lr";
	log_panel(&c, &p, step, l.col[COL_LR], n, tmp, purple, purple, 0);

	free(tmp);
	log_free(&l);
	int rc = plot_canvas_write(&c, png_path, err, errlen);
	plot_canvas_free(&c);
	return rc;
}

