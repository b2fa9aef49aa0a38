/* The command that continues an interrupted run (trainer.h): the upstream
 * pipeline from the input's provenance, restarted at the epoch, piped into
 * ssl-train with its own arguments and --resume. */
#include "train/trainer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

static int
shell_safe(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:=,+-@%", *s))
			return 0;
	return 1;
}

static void
append(char *buf, size_t len, size_t *used, const char *s)
{
	if (*used < len)
		*used += (size_t)snprintf(buf + *used, len - *used, "%s", s);
}

static void
append_arg(char *buf, size_t len, size_t *used, const char *a)
{
	append(buf, len, used, " ");
	if (shell_safe(a)) {
		append(buf, len, used, a);
		return;
	}
	append(buf, len, used, "'");
	for (const char *p = a; *p; p++) {
		char c[2] = { *p, 0 };
		append(buf, len, used, *p == '\'' ? "'\\''" : c);
	}
	append(buf, len, used, "'");
}

/* Does argument i (of n) name `opt` ("--opt X" or "--opt=X")? Returns how
 * many arguments it takes (1 or 2), 0 when it is something else. */
static int
is_opt(char *const *a, int i, int n, const char *opt)
{
	size_t l = strlen(opt);
	if (strncmp(a[i], opt, l) != 0)
		return 0;
	if (a[i][l] == '=')
		return 1;
	if (a[i][l] == '\0')
		return i + 1 < n ? 2 : 1;
	return 0;
}

/* Does the tool of p read a file it was given rather than its standard
 * input? ssl-decode always does (its inputs are operands); ssl-augment when
 * it was given one other than "-". Every option ssl-augment keeps in its
 * provenance takes a value (its flags -q and --progress are left out, and
 * -h exits), so its operand is an argument that is neither an option nor
 * an option's value. */
static int
reads_file(const Provenance *p)
{
	if (strcmp(p->tool, "ssl-decode") == 0)
		return 1;
	if (strcmp(p->tool, "ssl-augment") != 0)
		return 0;
	for (int j = 0; j < p->nargs; j++) {
		const char *a = p->args[j];
		if (strcmp(a, "--") == 0)
			return j + 1 < p->nargs && strcmp(p->args[j + 1], "-") != 0;
		if (a[0] != '-')
			return 1;
		if (a[1] == '-') {
			j += strchr(a, '=') == NULL; /* "--name value" */
			continue;
		}
		/* "-r cifar", "-rcifar", "-qr cifar": the value of the first letter
		 * that takes one is the rest of the cluster or the next argument */
		for (const char *c = a + 1; *c; c++)
			if (*c != 'q' && *c != 'h') {
				j += c[1] == '\0';
				break;
			}
	}
	return 0;
}

/* prog: the trainer's name; shard_env: each rank's ssl-decode takes its
 * shard from Open MPI's environment (any --shard it had is dropped). */
static char *
resume_command(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
               char *const *argv, const char *model, int64_t epoch, const char *prog, int shard_env)
{
	size_t used = 0;
	char num[32];
	buf[0] = '\0';
	if (from_stdin) {
		/* The pipeline starts at the last tool that read a file: what ran
		 * before it fed that file, not this run. A file ssl-augment read
		 * holds the epochs from the start; the trainer skips those done. */
		int first = 0, found = 0;
		for (int i = 0; i < nprov; i++)
			if (reads_file(&prov[i]))
				first = i, found = 1;
		for (int i = first; i < nprov; i++) {
			const Provenance *p = &prov[i];
			int decode = strcmp(p->tool, "ssl-decode") == 0;
			append(buf, len, &used, p->tool);
			for (int j = 0; j < p->nargs; j++) {
				int k = decode ? is_opt(p->args, j, p->nargs, "--start-epoch") : 0;
				if (!k && decode && shard_env)
					k = is_opt(p->args, j, p->nargs, "--shard");
				if (k) {
					j += k - 1;
					continue;
				}
				append_arg(buf, len, &used, p->args[j]);
			}
			if (decode) {
				snprintf(num, sizeof num, "%lld", (long long)epoch);
				if (shard_env)
					append(buf, len, &used, " --shard $OMPI_COMM_WORLD_RANK/$OMPI_COMM_WORLD_SIZE");
				append(buf, len, &used, " --start-epoch ");
				append(buf, len, &used, num);
			}
			append(buf, len, &used, " | ");
		}
		if (!found) {
			/* No tool upstream read a file: say what the input must be. */
			used = 0;
			buf[0] = '\0';
			snprintf(num, sizeof num, "%lld", (long long)epoch);
			append(buf, len, &used, "<the same input, from epoch ");
			append(buf, len, &used, num);
			append(buf, len, &used, " (or from the start)> | ");
		}
	}
	append(buf, len, &used, prog);
	for (int i = 1; i < argc; i++) {
		int k = is_opt(argv, i, argc, "--resume");
		if (!k)
			k = is_opt(argv, i, argc, "--init");
		if (!k) /* the checkpoint has the weights; --resume refuses --init-from */
			k = is_opt(argv, i, argc, "--init-from");
		if (k) {
			i += k - 1;
			continue;
		}
		append_arg(buf, len, &used, argv[i]);
	}
	append(buf, len, &used, " --resume");
	append_arg(buf, len, &used, model);
	return buf;
}

char *
trainer_resume_command(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
                       char *const *argv, const char *model, int64_t epoch)
{
	return resume_command(buf, len, prov, nprov, from_stdin, argc, argv, model, epoch, "ssl-train", 0);
}

char *
trainer_resume_command_mpi(char *buf, size_t len, const Provenance *prov, int nprov, int from_stdin, int argc,
                           char *const *argv, const char *model, int64_t epoch, int ranks)
{
	char *inner = xmalloc(len), num[32];
	size_t used = 0;
	resume_command(inner, len, prov, nprov, from_stdin, argc, argv, model, epoch, "ssl-train-mpi", 1);
	buf[0] = '\0';
	snprintf(num, sizeof num, "%d", ranks);
	append(buf, len, &used, "mpirun -np ");
	append(buf, len, &used, num);
	append(buf, len, &used, " sh -c");
	append_arg(buf, len, &used, inner);
	free(inner);
	return buf;
}
