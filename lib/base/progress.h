/* progress: one self-overwriting status line on stderr for long work.
 *
 * Shown only when stderr is a terminal or --progress was given, never with
 * --quiet. Updates are rate-limited (a few per second) so calling
 * progress_update() per record is cheap. On a non-terminal each update is a
 * full line, at most every `interval` seconds. */
#ifndef SSL_PROGRESS_H
#define SSL_PROGRESS_H

#include <stdint.h>

typedef struct {
	int     enabled;
	int     tty;
	char    what[32];   /* "decode", "train" */
	char    unit[16];   /* "images", "views" */
	int64_t total;      /* <= 0: unknown, no ETA */
	double  t0, last;
	double  interval;
	int     dirty;      /* a line is on screen without newline */
} Progress;

/* force: --progress given; quiet: --quiet given. */
void progress_init(Progress *p, const char *what, const char *unit, int64_t total, int force, int quiet);
/* done: units so far; extra: appended text (may be NULL), e.g. "loss 5.12". */
void progress_update(Progress *p, int64_t done, const char *extra);
/* Prints the final line (always on a terminal when enabled) and a newline. */
void progress_finish(Progress *p, int64_t done, const char *extra);

#endif
