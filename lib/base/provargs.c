/* provargs: see provargs.h. */
#include "base/provargs.h"

#include <string.h>

/* The long option an argument names, as getopt_long resolves it (exact name
 * or unique prefix); NULL if none. */
static const struct option *
resolve_long(const struct option *longopts, const char *name, size_t len)
{
	const struct option *found = NULL;
	for (const struct option *o = longopts; o->name; o++) {
		if (strncmp(o->name, name, len) != 0)
			continue;
		if (strlen(o->name) == len)
			return o;
		if (found)
			return NULL; /* ambiguous */
		found = o;
	}
	return found;
}

static int
in_list(const char *const *list, const char *name)
{
	for (; list && *list; list++)
		if (strcmp(*list, name) == 0)
			return 1;
	return 0;
}

int
provargs_filter(int argc, char **argv, const char *optstring, const struct option *longopts,
                const char *const *drop_long, const char *drop_short, char **out)
{
	int n = 0, i, next;
	if (argc > 0)
		out[n++] = argv[0];
	for (i = 1; i < argc; i = next) {
		const char *a = argv[i];
		int drop = 0;
		next = i + 1;
		if (strcmp(a, "--") == 0) {
			next = argc; /* the rest are operands */
		} else if (a[0] == '-' && a[1] == '-') {
			const char *eq = strchr(a + 2, '=');
			size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
			const struct option *o = resolve_long(longopts, a + 2, len);
			if (o && o->has_arg == required_argument && !eq)
				next = i + 2;
			drop = o && in_list(drop_long, o->name);
		} else if (a[0] == '-' && a[1] != '\0') {
			drop = 1;
			for (const char *c = a + 1; *c; c++) {
				const char *d = *c != ':' ? strchr(optstring, *c) : NULL;
				if (!d || !drop_short || !strchr(drop_short, *c))
					drop = 0;
				if (d && d[1] == ':') {
					next = c[1] == '\0' ? i + 2 : i + 1; /* the rest, or the next, is its argument */
					break;
				}
			}
		}
		if (next > argc)
			next = argc;
		for (int k = i; k < next && !drop; k++)
			out[n++] = argv[k];
	}
	out[n] = NULL;
	return n;
}
