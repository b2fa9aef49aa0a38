/* atomicfile: see atomicfile.h. */
#include "base/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

int
atomicfile_open(AtomicFile *af, const char *path)
{
	size_t n = strlen(path) + 32;
	memset(af, 0, sizeof *af);
	af->path = xstrdup(path);
	af->tmp = xmalloc(n);
	snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	af->fp = fopen(af->tmp, "wb");
	if (!af->fp) {
		int e = errno;
		free(af->path);
		free(af->tmp);
		memset(af, 0, sizeof *af);
		errno = e;
		return -1;
	}
	return 0;
}

static void
release(AtomicFile *af)
{
	free(af->path);
	free(af->tmp);
	memset(af, 0, sizeof *af);
}

static int
fsync_dir_of(const char *path)
{
	char *copy = xstrdup(path);
	int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
	int rc = 0;
	free(copy);
	if (fd < 0)
		return -1;
	if (fsync(fd) < 0 && errno != EINVAL)
		rc = -1;
	close(fd);
	return rc;
}

int
atomicfile_sync(AtomicFile *af)
{
	int e = 0;
	const char *limit = getenv("SSL_FAULT_WRITE_BYTES");
	if (fflush(af->fp) == EOF || ferror(af->fp))
		e = errno ? errno : EIO;
	if (!e && limit) {
		long pos = ftell(af->fp);
		if (pos > atol(limit))
			e = ENOSPC;
	}
	if (!e && fsync(fileno(af->fp)) < 0)
		e = errno;
	if (fclose(af->fp) == EOF && !e)
		e = errno;
	af->fp = NULL;
	if (e) {
		unlink(af->tmp);
		release(af);
		errno = e;
		return -1;
	}
	return 0;
}

int
atomicfile_rename(AtomicFile *af)
{
	ASSERT(!af->fp);
	if (rename(af->tmp, af->path) < 0) {
		int e = errno;
		unlink(af->tmp);
		release(af);
		errno = e;
		return -1;
	}
	fsync_dir_of(af->path); /* durability of the rename; the file itself is complete either way */
	release(af);
	return 0;
}

int
atomicfile_commit(AtomicFile *af)
{
	return atomicfile_sync(af) < 0 ? -1 : atomicfile_rename(af);
}

void
atomicfile_abort(AtomicFile *af)
{
	if (af->fp)
		fclose(af->fp);
	if (af->tmp)
		unlink(af->tmp);
	release(af);
}
