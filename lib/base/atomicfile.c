/* atomicfile: see atomicfile.h. */
#include "base/atomicfile.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/fault.h"
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
atomicfile_commit(AtomicFile *af)
{
	int e = 0;
	if (fflush(af->fp) == EOF || ferror(af->fp))
		e = errno ? errno : EIO;
	if (!e && fault_disk_full(ftell(af->fp)))
		e = ENOSPC;
	if (!e && fsync(fileno(af->fp)) < 0)
		e = errno;
	if (fclose(af->fp) == EOF && !e)
		e = errno;
	af->fp = NULL;
	if (!e && rename(af->tmp, af->path) < 0)
		e = errno;
	if (e) {
		unlink(af->tmp);
		release(af);
		errno = e;
		return -1;
	}
	fsync_dir_of(af->path); /* durability of the rename; the file itself is complete either way */
	release(af);
	return 0;
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
