/* cli: see cli.h. */
#include "base/cli.h"

#include <stdlib.h>
#include <string.h>

#include "base/parallel.h"
#include "base/util.h"

static const struct option shared[] = {
	{ "quiet", no_argument, NULL, CLI_QUIET },
	{ "progress", no_argument, NULL, CLI_PROGRESS },
	{ "threads", required_argument, NULL, CLI_THREADS },
	{ "help", no_argument, NULL, CLI_HELP },
	{ "version", no_argument, NULL, CLI_VERSION },
};
#define NSHARED (sizeof shared / sizeof shared[0])

void
cli_init(Cli *cli, const char *name, void (*usage)(FILE *fp), const char *shortopts,
         const struct option *longopts)
{
	size_t n = 0;
	memset(cli, 0, sizeof *cli);
	cli->name = name;
	cli->usage = usage;
	/* ':' first in the string getopt sees: a missing argument is told
	 * apart from an unknown option (cli_getopt) */
	snprintf(cli->shortopts, sizeof cli->shortopts, "%sqh", shortopts ? shortopts : "");
	if (strlen(cli->shortopts) + 1 >= sizeof cli->shortopts)
		die("cli: %s: too many short options", name);
	for (; longopts && longopts[n].name; n++) {
		if (n + NSHARED + 1 > CLI_MAX_OPTIONS)
			die("cli: %s: more than %d options", name, CLI_MAX_OPTIONS);
		cli->longopts[n] = longopts[n];
	}
	memcpy(cli->longopts + n, shared, sizeof shared);
}

/* The option that argv[optind - 1] names, for a message: "--name" (without
 * "=value") for a long option, else "-c". */
static void
failed_option(char *buf, size_t len, char **argv, int c)
{
	const char *a = optind > 0 ? argv[optind - 1] : "";
	if (strncmp(a, "--", 2) == 0 && (c == ':' || optopt == 0 || strchr(a, '=')))
		snprintf(buf, len, "%.*s", (int)strcspn(a, "="), a);
	else
		snprintf(buf, len, "-%c", optopt);
}

int
cli_getopt(Cli *cli, int argc, char **argv)
{
	char gs[sizeof cli->shortopts + 1], opt[128];
	int c;
	snprintf(gs, sizeof gs, ":%s", cli->shortopts);
	opterr = 0;
	for (;;) {
		c = getopt_long(argc, argv, gs, cli->longopts, NULL);
		switch (c) {
		case CLI_QUIET: cli->quiet = 1; break;
		case CLI_PROGRESS: cli->progress = 1; break;
		case CLI_THREADS: cli->threads = (int)opt_i64("--threads", optarg, 1, 1024); break;
		case CLI_HELP:
			cli->usage(stdout);
			exit(fshut(stdout, "<stdout>"));
		case CLI_VERSION:
			printf("%s %s\n", cli->name, SSL_VERSION);
			exit(fshut(stdout, "<stdout>"));
		case ':':
			failed_option(opt, sizeof opt, argv, c);
			die_usage("option '%s' needs an argument", opt);
		case '?':
			failed_option(opt, sizeof opt, argv, c);
			if (optopt != 0 && strncmp(opt, "--", 2) == 0)
				die_usage("option '%s' takes no argument", opt);
			die_usage("unknown option '%s'", opt);
		default: return c;
		}
	}
}

void
cli_apply(const Cli *cli)
{
	set_quiet(cli->quiet);
	if (cli->blas_threads)
		parallel_set_threads_blas(cli->threads);
	else
		parallel_set_threads(cli->threads);
}

void
cli_help_shared(FILE *fp, int col, int aligned)
{
	static const char *const lines[][2] = {
		{ "-q, --quiet", "no notes or progress on stderr" },
		{ "--progress", "show progress even when stderr is not a terminal" },
		{ "--threads N", "threads (default: $OMP_NUM_THREADS or all CPUs)" },
		{ "-h, --help", "show this help and exit" },
		{ "--version", "show the version and exit" },
	};
	for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		int pad = aligned && lines[i][0][1] == '-' ? 4 : 0; /* "      --x" under "  -c, --y" */
		fprintf(fp, "  %*s%-*s%s\n", pad, "", col - 2 - pad, lines[i][0], lines[i][1]);
	}
}
