/* util: see util.h. */
#include "base/util.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static const char *progname = "ssl-tools";
static int quiet;

void
setprogname(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	progname = slash ? slash + 1 : argv0;
}

const char *
getprogname_ssl(void)
{
	return progname;
}

void
set_quiet(int q)
{
	quiet = q;
}

int
is_quiet(void)
{
	return quiet;
}

static void
vmessage(const char *fmt, va_list ap)
{
	int saved = errno;
	size_t len = strlen(fmt);
	char buf[4096];
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	if (n < 0)
		buf[0] = '\0';
	if (len > 0 && fmt[len - 1] == ':')
		fprintf(stderr, "%s: %s %s\n", progname, buf, strerror(saved));
	else
		fprintf(stderr, "%s: %s\n", progname, buf);
}

void
die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	exit(EXIT_RUNTIME);
}

void
die_status(int status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	exit(status);
}

void
warn(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

void
note(const char *fmt, ...)
{
	va_list ap;
	if (quiet)
		return;
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
}

void
die_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vmessage(fmt, ap);
	va_end(ap);
	fprintf(stderr, "Try '%s --help' for more information.\n", progname);
	exit(EXIT_USAGE);
}

void
assert_fail(const char *expr, const char *file, int line)
{
	fprintf(stderr, "%s: internal error: %s:%d: assertion '%s' failed\n", progname, file, line, expr);
	abort();
}

void *
xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory allocating %zu bytes", n);
	return p;
}

void *
xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		die("out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *
xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		die("out of memory allocating %zu bytes", n);
	return q;
}

void *
xreallocarray(void *p, size_t n, size_t size)
{
	size_t total;
	if (size_mul(n, size, &total) < 0)
		die("allocation of %zu x %zu bytes overflows", n, size);
	return xrealloc(p, total);
}

char *
xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = xmalloc(n);
	memcpy(p, s, n);
	return p;
}

void *
xalloc_aligned(size_t n)
{
	void *p = NULL;
	size_t align = n >= (4u << 20) ? (2u << 20) : 64;
	size_t rounded = (n + align - 1) / align * align;
	if (rounded < n || posix_memalign(&p, align, rounded ? rounded : align) != 0)
		die("out of memory allocating %zu bytes", n);
#ifdef MADV_HUGEPAGE
	if (rounded >= (4u << 20))
		madvise(p, rounded, MADV_HUGEPAGE); /* page faults are slow here; failure is harmless */
#endif
	return p;
}

int
size_mul(size_t a, size_t b, size_t *out)
{
	if (a && b > SIZE_MAX / a)
		return -1;
	*out = a * b;
	return 0;
}

int
size_add(size_t a, size_t b, size_t *out)
{
	if (b > SIZE_MAX - a)
		return -1;
	*out = a + b;
	return 0;
}

int
parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen)
{
	char *end;
	long long v;
	if (!s || !*s) {
		snprintf(err, errlen, "empty number");
		return -1;
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (end == s || *end != '\0') {
		snprintf(err, errlen, "'%s' is not an integer", s);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		snprintf(err, errlen, "'%s' is out of range [%lld, %lld]", s, (long long)min, (long long)max);
		return -1;
	}
	*out = v;
	return 0;
}

int
parse_f64(const char *s, double min, double max, double *out, char *err, size_t errlen)
{
	char *end;
	double v;
	if (!s || !*s) {
		snprintf(err, errlen, "empty number");
		return -1;
	}
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end != '\0' || isnan(v)) {
		snprintf(err, errlen, "'%s' is not a number", s);
		return -1;
	}
	if (errno == ERANGE || v < min || v > max) {
		snprintf(err, errlen, "'%s' is out of range [%g, %g]", s, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int
parse_duration(const char *s, double *out, char *err, size_t errlen)
{
	const char *p = s;
	double total = 0;
	if (!s || !*s) {
		snprintf(err, errlen, "empty duration");
		return -1;
	}
	while (*p) {
		char *end;
		double v;
		errno = 0;
		v = strtod(p, &end);
		if (end == p || !(v >= 0) || errno == ERANGE || !strchr("hms", *end) || !*end) {
			snprintf(err, errlen, "'%s' is not a duration such as 45m, 2h, 1h30m or 90s", s);
			return -1;
		}
		total += v * (*end == 'h' ? 3600 : *end == 'm' ? 60 : 1);
		p = end + 1;
	}
	if (!(total > 0) || total > 1e8) {
		snprintf(err, errlen, "'%s' is not a duration above 0 (and under three years)", s);
		return -1;
	}
	*out = total;
	return 0;
}

double
opt_duration(const char *opt, const char *s)
{
	char err[256];
	double v;
	if (parse_duration(s, &v, err, sizeof err) < 0)
		die_usage("%s: %s", opt, err);
	return v;
}

int
parse_hw(const char *s, int max, int *h, int *w, char *err, size_t errlen)
{
	char buf[64];
	char *x;
	int64_t a, b;
	if (!s || strlen(s) >= sizeof buf) {
		snprintf(err, errlen, "'%s' is not a size HxW", s ? s : "");
		return -1;
	}
	strcpy(buf, s);
	x = strchr(buf, 'x');
	if (!x)
		x = strchr(buf, 'X');
	if (x)
		*x = '\0';
	if (parse_i64(buf, 1, max, &a, err, errlen) < 0)
		return -1;
	b = a;
	if (x && parse_i64(x + 1, 1, max, &b, err, errlen) < 0)
		return -1;
	*h = (int)a;
	*w = (int)b;
	return 0;
}

int
parse_label_spec(const char *s, double *frac, int64_t *per_class, char *err, size_t errlen)
{
	char buf[64];
	size_t n = s ? strlen(s) : 0;
	*frac = -1;
	*per_class = -1;
	if (n == 0 || n >= sizeof buf) {
		snprintf(err, errlen, "'%s' is not a fraction, a percentage or N-per-class", s ? s : "");
		return -1;
	}
	strcpy(buf, s);
	if (n > 10 && strcmp(buf + n - 10, "-per-class") == 0) {
		buf[n - 10] = '\0';
		return parse_i64(buf, 1, INT64_MAX / 2, per_class, err, errlen);
	}
	if (buf[n - 1] == '%') {
		double pct;
		buf[n - 1] = '\0';
		if (parse_f64(buf, 0, 100, &pct, err, errlen) < 0 || pct <= 0) {
			snprintf(err, errlen, "'%s' is not a percentage in (0, 100]", s);
			return -1;
		}
		*frac = pct / 100.0;
		return 0;
	}
	if (parse_f64(buf, 0, 1, frac, err, errlen) < 0 || *frac <= 0) {
		snprintf(err, errlen, "'%s' is not a fraction in (0, 1], a percentage or N-per-class", s);
		return -1;
	}
	return 0;
}

int64_t
opt_i64(const char *opt, const char *s, int64_t min, int64_t max)
{
	char err[256];
	int64_t v;
	if (parse_i64(s, min, max, &v, err, sizeof err) < 0)
		die_usage("%s: %s", opt, err);
	return v;
}

double
opt_f64(const char *opt, const char *s, double min, double max)
{
	char err[256];
	double v;
	if (parse_f64(s, min, max, &v, err, sizeof err) < 0)
		die_usage("%s: %s", opt, err);
	return v;
}

size_t
utf8_seq(const unsigned char *p, size_t n)
{
	size_t len;
	uint32_t cp, min;
	if (n == 0)
		return 0;
	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f, min = 0x80;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f, min = 0x800;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07, min = 0x10000;
	else
		return 0;
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

int
utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0, k; i < n; i += k)
		if (!(k = utf8_seq(p + i, n - i)))
			return 0;
	return 1;
}

char *
str_utf8_escape(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), o = 0;
	char *out = xmalloc(4 * n + 1);
	for (size_t i = 0, k; i < n; i += k) {
		if ((k = utf8_seq(p + i, n - i))) {
			memcpy(out + o, p + i, k);
			o += k;
		} else {
			o += (size_t)sprintf(out + o, "\\x%02x", p[i]);
			k = 1;
		}
	}
	out[o] = '\0';
	return out;
}

void
str_printable(char *s)
{
	unsigned char *p = (unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq(p + i, n - i);
		if (k == 0 || p[i] < 0x20 || p[i] == 0x7f || (k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			size_t bad = k ? k : 1;
			memset(p + i, '?', bad);
			k = bad;
		}
	}
}

void
fputs_printable(const char *s, FILE *fp)
{
	char *c = xstrdup(s);
	str_printable(c);
	fputs(c, fp);
	free(c);
}

int
fshut(FILE *fp, const char *name)
{
	int ret = 0;
	if (fflush(fp) == EOF || ferror(fp)) {
		warn("%s: write error:", name);
		ret = 1;
	}
	return ret;
}

double
now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int
fput_tsv(const char *s, FILE *fp)
{
	for (; s && *s; s++) {
		const char *e = *s == '\\' ? "\\\\" : *s == '\t' ? "\\t" : *s == '\n' ? "\\n" : *s == '\r' ? "\\r" : NULL;
		if (e ? fputs(e, fp) < 0 : putc(*s, fp) == EOF)
			return -1;
	}
	return 0;
}

uint64_t
fnv1a(uint64_t h, const void *data, size_t n)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(1099511628211);
	return h;
}
