/* fuzz_tmpdir: the private temporary folder of a harness whose code under
 * test takes paths, made once in LLVMFuzzerInitialize ($TMPDIR or /tmp). */
#ifndef FUZZ_TMPDIR_H
#define FUZZ_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* dir (len bytes) = a new folder <base>/<name>.XXXXXX; exits when it cannot */
static inline void
fuzz_make_tmpdir(char *dir, size_t len, const char *name)
{
	const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(dir, len, "%s/%s.XXXXXX", base, name);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		exit(1);
	}
}

/* The folder fuzz_tmpdir_init made, for the exit handler. */
static inline char **
fuzz_tmpdir_slot(void)
{
	static char *dir;
	return &dir;
}

static inline void
fuzz_tmpdir_remove(void)
{
	if (*fuzz_tmpdir_slot())
		rmdir(*fuzz_tmpdir_slot());
}

/* fuzz_make_tmpdir, and the folder is removed at exit (once the harness has
 * emptied it): what every harness's LLVMFuzzerInitialize does. */
static inline void
fuzz_tmpdir_init(char *dir, size_t len, const char *name)
{
	fuzz_make_tmpdir(dir, len, name);
	*fuzz_tmpdir_slot() = dir;
	atexit(fuzz_tmpdir_remove);
}

#endif
