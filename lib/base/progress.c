/* progress: see progress.h. */
#include "base/progress.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

void
progress_init(Progress *p, const char *what, const char *unit, int64_t total, int force, int quiet)
{
	memset(p, 0, sizeof *p);
	p->tty = isatty(STDERR_FILENO);
	p->enabled = !quiet && (force || p->tty);
	snprintf(p->what, sizeof p->what, "%s", what);
	snprintf(p->unit, sizeof p->unit, "%s", unit);
	p->total = total;
	p->t0 = p->last = now_seconds();
	p->interval = p->tty ? 0.25 : 10.0;
}

static void
fmt_duration(char *buf, size_t len, double s)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, len, "%ldh%02ldm", t / 3600, (t / 60) % 60);
	else
		snprintf(buf, len, "%ldm%02lds", t / 60, t % 60);
}

/* three significant figures or so: 0.47 steps/s, not 0 */
static void
fmt_rate(char *buf, size_t len, double r)
{
	snprintf(buf, len, r < 10 ? "%.2f" : r < 100 ? "%.1f" : "%.0f", r);
}

static void
show(Progress *p, int64_t done, const char *extra, int final)
{
	double now = now_seconds(), el = now - p->t0;
	double rate = el > 0 ? done / el : 0;
	char eta[32] = "", elapsed[32], line[512], rs[32];
	int n;
	fmt_duration(elapsed, sizeof elapsed, el);
	fmt_rate(rs, sizeof rs, rate);
	if (!final && p->total > 0 && rate > 0 && done <= p->total) {
		char d[24];
		fmt_duration(d, sizeof d, (p->total - done) / rate);
		snprintf(eta, sizeof eta, " ETA %s", d);
	}
	if (p->total > 0)
		n = snprintf(line, sizeof line, "%s: %lld/%lld %s (%.1f%%) %s %s/s %s%s%s%s", getprogname_ssl(),
		             (long long)done, (long long)p->total, p->unit, 100.0 * done / p->total, rs, p->unit,
		             elapsed, eta, extra ? "  " : "", extra ? extra : "");
	else
		n = snprintf(line, sizeof line, "%s: %lld %s %s %s/s %s%s%s", getprogname_ssl(), (long long)done,
		             p->unit, rs, p->unit, elapsed, extra ? "  " : "", extra ? extra : "");
	(void)n;
	if (p->tty)
		fprintf(stderr, "\r%s\033[K%s", line, final ? "\n" : "");
	else
		fprintf(stderr, "%s\n", line);
	p->dirty = p->tty && !final;
	p->last = now;
}

void
progress_update(Progress *p, int64_t done, const char *extra)
{
	if (!p->enabled)
		return;
	if (now_seconds() - p->last < p->interval)
		return;
	show(p, done, extra, 0);
}

void
progress_finish(Progress *p, int64_t done, const char *extra)
{
	if (!p->enabled)
		return;
	show(p, done, extra, 1);
	p->dirty = 0;
}
