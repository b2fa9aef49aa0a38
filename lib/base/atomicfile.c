/* atomicfile: see atomicfile.h. */
#include "base/atomicfile.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fault.h"
#include "base/util.h"

/* Removes "<path>.tmp.<pid>" files whose process is gone (a writer killed
 * with SIGKILL, or a machine that lost power, leaves a full-size one). A
 * pid that is alive, or not ours to signal, is left alone. */
static void
remove_stale_temps(const char *path)
{
	char *copy = xstrdup(path), *dir = dirname(copy);
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	size_t blen = strlen(base);
	DIR *d = opendir(dir);
	struct dirent *de;
	if (d) {
		while ((de = readdir(d))) {
			const char *p = de->d_name + blen + 5;
			char *end, full[8192];
			long pid;
			if (strncmp(de->d_name, base, blen) != 0 || strncmp(de->d_name + blen, ".tmp.", 5) != 0 ||
			    *p < '1' || *p > '9')
				continue;
			errno = 0;
			pid = strtol(p, &end, 10);
			if (*end || errno || pid <= 0 || (pid_t)pid == getpid() || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
				continue;
			if ((size_t)snprintf(full, sizeof full, "%s/%s", dir, de->d_name) < sizeof full)
				unlink(full);
		}
		closedir(d);
	}
	free(copy);
}

int
atomicfile_check(const char *path)
{
	struct stat st;
	char *copy;
	int rc;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
		errno = EISDIR;
		return -1;
	}
	copy = xstrdup(path);
	rc = access(dirname(copy), W_OK | X_OK);
	free(copy);
	return rc;
}

/* Linux: the temporary made without a name in path's folder (O_TMPFILE),
 * so that a writer killed by any signal, or ending in die(), leaves nothing
 * (the file may be the size of a whole data set); atomicfile_sync links it
 * as af->tmp just before the rename. -1 where the kernel or the file system
 * cannot (the named temporary then; an error there is the one to report). */
static int
open_unnamed(AtomicFile *af, const char *mode)
{
#ifdef O_TMPFILE
	char *copy = xstrdup(af->path), proc[64];
	int fd = open(dirname(copy), O_TMPFILE | O_RDWR, 0666);
	free(copy);
	if (fd < 0)
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (access(proc, F_OK) < 0 || !(af->fp = fdopen(fd, mode))) {   /* linked through /proc */
		close(fd);
		return -1;
	}
	af->unnamed = 1;
	return 0;
#else
	(void)af;
	(void)mode;
	return -1;
#endif
}

static int
open_mode(AtomicFile *af, const char *path, const char *mode, int unnamed)
{
	size_t n = strlen(path) + 32;
	remove_stale_temps(path);
	memset(af, 0, sizeof *af);
	af->path = xstrdup(path);
	af->tmp = xmalloc(n);
	snprintf(af->tmp, n, "%s.tmp.%ld", path, (long)getpid());
	if (!unnamed || open_unnamed(af, mode) < 0)
		af->fp = fopen(af->tmp, mode);
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

int
atomicfile_open(AtomicFile *af, const char *path)
{
	return open_mode(af, path, "wb", 0);
}

int
atomicfile_open_rw(AtomicFile *af, const char *path)
{
	return open_mode(af, path, "w+b", 1);
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

/* Names an unnamed temporary af->tmp (a leftover of a dead process with our
 * pid replaced), while its descriptor is still open. */
static int
link_unnamed(AtomicFile *af)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fileno(af->fp));
	if (unlink(af->tmp) < 0 && errno != ENOENT)
		return -1;
	return linkat(AT_FDCWD, proc, AT_FDCWD, af->tmp, AT_SYMLINK_FOLLOW);
}

int
atomicfile_sync(AtomicFile *af)
{
	int e = 0;
	if (fflush(af->fp) == EOF || ferror(af->fp))
		e = errno ? errno : EIO;
	if (!e && fault_disk_full(ftell(af->fp)))
		e = ENOSPC;
	if (!e && fsync(fileno(af->fp)) < 0)
		e = errno;
	if (!e && af->unnamed && link_unnamed(af) < 0)
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
