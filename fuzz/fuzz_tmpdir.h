/* fuzz_tmpdir: the private temporary folder of a harness whose code under
 * test takes paths, made once in LLVMFuzzerInitialize ($TMPDIR or /tmp). */
#ifndef FUZZ_TMPDIR_H
#define FUZZ_TMPDIR_H

#include <stdio.h>
#include <stdlib.h>

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

#endif
