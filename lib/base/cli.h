/* cli: the options every tool shares, handled one way.
 *
 *   --quiet        set_quiet(): no notes or progress
 *   --progress     progress lines even when stderr is not a terminal
 *   --threads N    threads for OpenMP and OpenBLAS (1 to 1024)
 *   --help         the tool's usage on stdout, exit 0
 *   --version      "<tool> <version>" on stdout, exit 0
 *
 * A tool lists the CLI_OPT_* entries it offers in its getopt_long table
 * (with 'q' and 'h' in its short options when it offers -q and -h), hands
 * every option its own switch does not know to cli_option(), and calls
 * cli_apply() once the options are valid. Its usage text stays its own. */
#ifndef SSL_CLI_H
#define SSL_CLI_H

#include <getopt.h>
#include <stdio.h>

enum { CLI_QUIET = 'q', CLI_HELP = 'h', CLI_PROGRESS = 0x1000, CLI_VERSION, CLI_THREADS };

#define CLI_OPT_QUIET    { "quiet", no_argument, NULL, CLI_QUIET }
#define CLI_OPT_PROGRESS { "progress", no_argument, NULL, CLI_PROGRESS }
#define CLI_OPT_THREADS  { "threads", required_argument, NULL, CLI_THREADS }
#define CLI_OPT_HELP     { "help", no_argument, NULL, CLI_HELP }
#define CLI_OPT_VERSION  { "version", no_argument, NULL, CLI_VERSION }

typedef struct {
	const char *name;              /* "ssl-info", for --version */
	void      (*usage)(FILE *fp);  /* prints the --help text */
	int         quiet, progress;
	int         threads;           /* 0: the default (OMP_NUM_THREADS or all cores) */
} Cli;

/* A Cli with nothing given yet. */
Cli cli_init(const char *name, void (*usage)(FILE *fp));
/* Handles one shared option c (its argument arg); exits for --help and
 * --version; die_usage("unknown option") for anything else. */
void cli_option(Cli *cli, int c, const char *arg);
/* Applies --quiet and --threads. */
void cli_apply(const Cli *cli);

#endif
