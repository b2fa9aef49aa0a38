/* testutil: shared helpers for the Check suites.
 *
 * Each tests/check_<module>.c defines `Suite *<module>_suite(void)` and ends
 * with CHECK_MAIN(<module>_suite). Tool tests run the built binaries through
 * /bin/sh with $SSL_BIN (set by `make test`) first on PATH. */
#ifndef SSL_TESTUTIL_H
#define SSL_TESTUTIL_H

#include <check.h>
#include <stddef.h>

#define CHECK_MAIN(suite_fn) \
	int main(void) { return tu_main(suite_fn()); }

/* The exit status of a suite that passed but skipped tests (automake's). */
#define TU_EXIT_SKIP 77

/* Runs the suite: 1 if a test failed; else TU_EXIT_SKIP (and a line
 * "skipped: WHY; WHY" on stdout) if a test called tu_skip; else 0. */
int tu_main(Suite *s);
/* Says that the running test cannot test what it is for (no mpirun, no
 * pty, ...): the test returns (or exits) at once after this, and the suite
 * counts as skipped, not passed. The reason is collected through the file
 * $TU_SKIP_FILE (scripts/run-tests.sh sets it; tu_main otherwise), as the
 * tests run in child processes. */
void tu_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

typedef struct {
	int    status;   /* exit status, or 128+signal */
	char  *out;      /* stdout bytes (NUL-terminated for convenience) */
	size_t outlen;
	char  *err;      /* stderr text */
} TuResult;

/* Runs `sh -c cmd` (printf-style) with $SSL_BIN on PATH; captures everything. */
void tu_run(TuResult *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tu_result_free(TuResult *r);
/* A fresh temporary directory (removed at exit). */
const char *tu_tmpdir(void);
/* Path inside tu_tmpdir(); returned buffer valid until the next 8 calls. */
const char *tu_path(const char *name);
/* Source tree root ($SSL_SRC, or "."), for fixtures. */
const char *tu_src(void);
/* Writes bytes to a file; fails the test on error. */
void tu_write_file(const char *path, const void *data, size_t len);
/* Reads a whole file (malloc'd, NUL-terminated); fails the test on error. */
char *tu_read_file(const char *path, size_t *len);

/* Fails the test unless text (may be NULL) contains needle; shows the text. */
void tu_assert_has(const char *text, const char *needle);
/* tu_run that must exit 0; fails the test with the command's stderr otherwise. */
void tu_run_ok(TuResult *r, const char *cmd);
/* Fails unless two checkpoints hold the same step and bitwise equal
 * parameters, buffers and optimizer state (tensor by tensor, by name). */
void tu_assert_same_checkpoints(const char *a, const char *b);

#endif
