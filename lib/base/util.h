/* util: messages, exit codes, checked allocation and strict number parsing.
 *
 * Every message is one line on stderr prefixed "ssl-<tool>: ". A format that
 * ends in ':' gets ": strerror(errno)" appended (sbase). Exit codes: 1 for
 * run-time errors, 2 for usage errors. lib/ code that reads untrusted input
 * returns -1 with a message instead of calling die(); only the x* allocation
 * wrappers die inside lib/. */
#ifndef SSL_UTIL_H
#define SSL_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef SSL_VERSION
#define SSL_VERSION "0.1.0"
#endif

#define EXIT_RUNTIME 1
#define EXIT_USAGE   2

#define ATTR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define ATTR_NORETURN __attribute__((noreturn))

void        setprogname(const char *argv0);
const char *getprogname_ssl(void);

void die(const char *fmt, ...) ATTR_PRINTF(1, 2) ATTR_NORETURN;
void die_status(int status, const char *fmt, ...) ATTR_PRINTF(2, 3) ATTR_NORETURN;
void warn(const char *fmt, ...) ATTR_PRINTF(1, 2);
/* "ssl-x: <msg>\nTry 'ssl-x --help'." then exit 2 */
void die_usage(const char *fmt, ...) ATTR_PRINTF(1, 2) ATTR_NORETURN;
/* Silences note() (progress-like chatter), not warn() or die(). */
void set_quiet(int quiet);
int  is_quiet(void);
void note(const char *fmt, ...) ATTR_PRINTF(1, 2);

/* Our own programming errors: stays on under NDEBUG, prints file:line. */
#define ASSERT(x) \
	do { if (!(x)) assert_fail(#x, __FILE__, __LINE__); } while (0)
void assert_fail(const char *expr, const char *file, int line) ATTR_NORETURN;

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
/* 64-byte aligned, for SIMD kernels and big buffers (huge pages advised when large). */
void *xalloc_aligned(size_t n);

/* Overflow-checked size arithmetic: return 0 and set *out, or -1 on overflow. */
int size_mul(size_t a, size_t b, size_t *out);
int size_add(size_t a, size_t b, size_t *out);

/* Strict parsing: the whole string must be a number inside [min, max].
 * Return 0, or -1 with a message in err ("--batch: 'x' is not a number"). */
int parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, char *err, size_t errlen);
int parse_f64(const char *s, double min, double max, double *out, char *err, size_t errlen);
/* "HxW" or "N" (square) into h, w in [1, max]. */
int parse_hw(const char *s, int max, int *h, int *w, char *err, size_t errlen);
/* A fraction "0.01" / "1%" (is_count=0), or a count "N-per-class" (is_count=1). */
int parse_label_spec(const char *s, double *frac, int64_t *per_class, char *err, size_t errlen);

/* The same, but die_usage() naming the option on failure: for tools' option parsing. */
int64_t opt_i64(const char *opt, const char *s, int64_t min, int64_t max);
double  opt_f64(const char *opt, const char *s, double min, double max);
/* A duration: one or more NUMBER followed by h, m or s ("45m", "1h30m",
 * "2.5h", "90s"); seconds, > 0. opt_duration exits 2 with a message. */
int     parse_duration(const char *s, double *out, char *err, size_t errlen);
double  opt_duration(const char *opt, const char *s);

/* Replaces control characters in s with '?': strings from the input that
 * appear in a message must not break the one-line message or reach the
 * terminal as escape sequences. Control characters are C0, DEL and C1
 * (U+0080 to U+009F); every byte of an invalid UTF-8 sequence is one too.
 * The length does not change, and the result is valid UTF-8. */
void str_printable(char *s);
/* Writes s to fp as str_printable() would leave it: the one way tools put
 * strings from their input on a terminal. */
void fputs_printable(const char *s, FILE *fp);

/* The length of the valid UTF-8 sequence (RFC 3629: no overlong forms, no
 * surrogates, at most U+10FFFF) at the start of p[0..n), or 0. */
size_t utf8_seq(const unsigned char *p, size_t n);
/* s as valid UTF-8: each byte that is not part of a valid sequence becomes
 * the four characters \xHH (lowercase hex); valid text is unchanged.
 * Newly allocated. */
char *str_utf8_escape(const char *s);
/* 1 when s[0..n) is valid UTF-8. */
int utf8_valid(const char *s, size_t n);
/* Writes s (NULL: nothing) as one TSV field: a backslash, tab, newline or
 * carriage return as \\ \t \n \r. 0, or -1 on a write error. */
int  fput_tsv(const char *s, FILE *fp);

/* Flushes and checks a stream; returns 1 (and warns) on error (sbase fshut). */
int fshut(FILE *fp, const char *name);

/* Monotonic seconds. */
double now_seconds(void);

/* FNV-1a, 64 bits (Fowler-Noll-Vo), continuing from h (FNV1A_INIT to
 * start): checksums, cache keys, shard choice and hash tables. Not for
 * anything an adversary chooses to collide. */
#define FNV1A_INIT UINT64_C(14695981039346656037)
uint64_t fnv1a(uint64_t h, const void *data, size_t n);

#endif
