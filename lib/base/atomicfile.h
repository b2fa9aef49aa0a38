/* atomicfile: write a file so that readers see either the old complete file
 * or the new complete one, never a torn one: write to "<path>.tmp.<pid>" in
 * the same directory, fflush + fsync, rename over <path>, fsync the directory.
 * On any failure the temporary is removed and <path> is untouched. A writer
 * killed half way (SIGKILL) leaves its temporary: the next atomicfile_open
 * of the same path removes those whose process no longer exists (with
 * atomicfile_open_rw on Linux the temporary has no name until the end, so
 * there is none to leave).
 *
 * Fault injection for tests: atomicfile_commit fails with ENOSPC as a full
 * disk would under SSL_FAULT_WRITE_BYTES (lib/base/fault.h). */
#ifndef SSL_ATOMICFILE_H
#define SSL_ATOMICFILE_H

#include <stdio.h>

typedef struct {
	FILE *fp;          /* write here */
	char *path;
	char *tmp;
	int   unnamed;     /* tmp is not linked yet (O_TMPFILE) */
} AtomicFile;

/* Whether a later atomicfile_open/commit of path can work, for tools to ask
 * before hours of work: path is not a folder (EISDIR), and its folder exists
 * and is writable. 0, or -1 with errno set. */
int  atomicfile_check(const char *path);
/* 0, or -1 with errno set (the directory is not writable...). */
int  atomicfile_open(AtomicFile *af, const char *path);
/* The same, the temporary open for reading too (fileno(af->fp) for pread
 * and pwrite: a file written at offsets and read back before it is kept).
 * On Linux it has no name until atomicfile_sync (O_TMPFILE: a writer
 * killed by a signal leaves nothing, however large); elsewhere, or where
 * the file system cannot, it is "<path>.tmp.<pid>" from the start. */
int  atomicfile_open_rw(AtomicFile *af, const char *path);
/* Flush, fsync, rename, fsync dir. 0, or -1 with errno (temp removed). */
int  atomicfile_commit(AtomicFile *af);
/* The two halves of atomicfile_commit, for files that must appear together
 * (all synced before any is renamed): flush, fsync and close, then rename.
 * Each: 0, or -1 with errno (temp removed, af released). */
int  atomicfile_sync(AtomicFile *af);
int  atomicfile_rename(AtomicFile *af);
/* Abandons the write: closes and removes the temporary. */
void atomicfile_abort(AtomicFile *af);

#endif
