/* cli: see cli.h. */
#include "base/cli.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "base/util.h"

Cli
cli_init(const char *name, void (*usage)(FILE *fp))
{
	Cli c = { 0 };
	c.name = name;
	c.usage = usage;
	return c;
}

void
cli_option(Cli *cli, int c, const char *arg)
{
	switch (c) {
	case CLI_QUIET: cli->quiet = 1; break;
	case CLI_PROGRESS: cli->progress = 1; break;
	case CLI_THREADS: cli->threads = (int)opt_i64("--threads", arg, 1, 1024); break;
	case CLI_HELP:
		cli->usage(stdout);
		exit(fshut(stdout, "<stdout>"));
	case CLI_VERSION:
		printf("%s %s\n", cli->name, SSL_VERSION);
		exit(fshut(stdout, "<stdout>"));
	default: die_usage("unknown option");
	}
}

void
cli_apply(const Cli *cli)
{
	set_quiet(cli->quiet);
	if (cli->threads > 0) {
		omp_set_num_threads(cli->threads);
		openblas_set_num_threads(cli->threads);
	}
}
