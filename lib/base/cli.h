/* cli: the one option front end of every tool.
 *
 * Every tool offers the same five shared options, handled here:
 *
 *   -q, --quiet    set_quiet(): no notes or progress
 *   --progress     progress lines even when stderr is not a terminal
 *   --threads N    threads (1 to 1024): the thread policy of parallel.h
 *   -h, --help     the tool's usage on stdout, exit 0
 *   --version      "<tool> <version>" on stdout, exit 0
 *
 * A tool gives cli_init its own short options and getopt_long table
 * (without the shared ones: cli adds them), takes its options from
 * cli_getopt() until -1, and calls cli_apply() once they are valid. An
 * unknown option or a missing argument ends the program with one line
 * naming the program and the option (then the "Try --help" hint), exit 2.
 * Its usage text stays its own; cli_help_shared() prints the shared lines. */
#ifndef SSL_CLI_H
#define SSL_CLI_H

#include <getopt.h>
#include <stdio.h>

enum { CLI_QUIET = 'q', CLI_HELP = 'h', CLI_PROGRESS = 0x1000, CLI_VERSION, CLI_THREADS };

#define CLI_MAX_OPTIONS 96

typedef struct {
	const char   *name;              /* "ssl-info", for --version */
	void        (*usage)(FILE *fp);  /* prints the --help text */
	int           quiet, progress;
	int           threads;           /* 0: the default (OMP_NUM_THREADS or all cores) */
	int           blas_threads;      /* the tool calls BLAS itself (parallel.h); set before cli_apply */
	/* the tool's options and the shared ones, for getopt_long (and provargs) */
	char          shortopts[64];     /* without the leading ':' */
	struct option longopts[CLI_MAX_OPTIONS];
} Cli;

/* Sets up cli for the tool `name` with its own options: shortopts as for
 * getopt ("o:m:"), longopts ending with a zero entry; either may be NULL. */
void cli_init(Cli *cli, const char *name, void (*usage)(FILE *fp), const char *shortopts,
              const struct option *longopts);
/* The next of the tool's own options (getopt_long's value; its argument in
 * optarg), -1 after the last option (optind: the first operand). The
 * shared options are handled on the way; --help and --version exit. */
int  cli_getopt(Cli *cli, int argc, char **argv);
/* Applies --quiet and --threads (parallel.h). */
void cli_apply(const Cli *cli);
/* The shared options' lines of a usage text, their descriptions starting
 * at column `col` (as the tool's own lines do); aligned: long-only options
 * are indented under the long names of "  -c, --name" lines. */
void cli_help_shared(FILE *fp, int col, int aligned);

#endif
