/* provargs: the command-line arguments a tool records in its provenance.
 *
 * Options that change how a tool runs but not what it writes (--threads,
 * --progress, --quiet, ...) are left out, so that the same work gives the
 * same bytes however it was run (ssl-augment --threads 1 and 2 cmp equal). */
#ifndef SSL_PROVARGS_H
#define SSL_PROVARGS_H

#include <getopt.h>

/* Copies argv[0..argc) into out (room for argc + 1 pointers, NULL-terminated;
 * the strings are shared, not copied) without the options named in
 * drop_long (NULL-terminated names without "--") and drop_short (option
 * letters), with their arguments, parsed as getopt_long would parse them with
 * optstring and longopts: "--name V", "--name=V", unambiguous abbreviations,
 * "-j 2", "-j2". A cluster of short options is dropped only when all its
 * options are. Everything after "--" is kept. Returns the count. */
int provargs_filter(int argc, char **argv, const char *optstring, const struct option *longopts,
                    const char *const *drop_long, const char *drop_short, char **out);

#endif
