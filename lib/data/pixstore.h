/* pixstore: the decoded pixels of one ssl-decode run, held in memory up to
 * a budget and beyond it appended to a spill file on disk.
 *
 * The spill file is made with mkstemp in a cache folder (the one given, else
 * $TMPDIR, else /var/tmp) and unlinked at once, so that nothing is left
 * behind, even after a crash. Pixels are read back with pread into the
 * caller's buffer, not mapped: mapped pages count in the process's resident
 * memory, which must stay under the budget; the kernel's page cache still
 * serves later epochs from memory when there is room.
 *
 * A store can also be kept (the cache file of ssl-decode --cache): the
 * spill file is then a temporary beside the cache file (atomicfile_open_rw:
 * on Linux without a name until it is kept, so that a run killed by a
 * signal leaves nothing), and pixstore_keep writes the pixels held in memory and the caller's
 * metadata after the spilled ones and renames the file into place. A kept
 * file is opened again with pixstore_open_kept: every image is then read
 * from it.
 *
 * A place in the store is a PixRef: 2 * offset + 1 in the file, 2 * offset
 * in memory. Puts and gets are not thread-safe (one reader thread calls
 * them). Every error is a message naming the file or folder, for
 * pixstore_error; a full disk (ENOSPC, EFBIG) says what to do about it. */
#ifndef SSL_PIXSTORE_H
#define SSL_PIXSTORE_H

#include <stddef.h>
#include <stdint.h>

#define PIXSTORE_DEFAULT_BUDGET (INT64_C(1) << 30)

typedef int64_t PixRef;
typedef struct PixStore PixStore;

/* A store keeping up to budget bytes in memory; the rest spills to a file
 * in dir (NULL: $TMPDIR, else /var/tmp), or with keep_path set to a
 * temporary beside keep_path (kept by pixstore_keep, removed otherwise). NULL
 * and a message in err when the folder cannot take a file. */
PixStore *pixstore_new(int64_t budget, const char *dir, const char *keep_path, char *err, size_t errlen);
/* Stores n bytes; *ref says where. -1 on error (pixstore_error). */
int pixstore_put(PixStore *p, const uint8_t *px, size_t n, PixRef *ref);
/* Writes out what is buffered for the spill file: call before reading. */
int pixstore_flush(PixStore *p);
/* The n bytes at ref: a pointer into memory, or buf (n bytes) filled from
 * the file. NULL on error (pixstore_error). */
const uint8_t *pixstore_get(PixStore *p, PixRef ref, size_t n, uint8_t *buf);
const char *pixstore_error(const PixStore *p);
/* Bytes held in memory, and in the file. */
int64_t pixstore_memory(const PixStore *p);
int64_t pixstore_spilled(const PixStore *p);
/* The folder (or file) that pixels spill to, for messages. */
const char *pixstore_place(const PixStore *p);

/* ---- kept stores (cache files) ----
 * Layout: a header of PIXSTORE_HEADER bytes, the pixels, then the
 * metadata. The header holds a magic, a version, the offsets and lengths
 * of the pixels and the metadata, a checksum of the metadata and the
 * file's size; pixstore_open_kept checks each against the file. */
#define PIXSTORE_HEADER 64

/* The place ref will have in the kept file (memory refs move to the end of
 * the spilled pixels). Valid once pixstore_keep has begun: call it from
 * the meta callback. */
PixRef pixstore_kept_ref(const PixStore *p, PixRef ref);
/* Appends the pixels held in memory, then the metadata that meta(ctx)
 * fills (its buffer and length; it may call pixstore_kept_ref), writes the
 * header, syncs and renames the file into place. The store goes on as
 * before. -1 on error (the temporary is removed). */
int pixstore_keep(PixStore *p, int (*meta)(void *ctx, uint8_t **buf, size_t *len), void *ctx);
/* Opens a kept file: its metadata (malloc'd) in *meta, and a store that
 * reads every image from the file. NULL and a reason in err (damaged,
 * truncated, another version, missing: errno ENOENT). */
PixStore *pixstore_open_kept(const char *path, uint8_t **meta, size_t *metalen, char *err, size_t errlen);
/* 1 when ref and n lie inside the pixels of the store. */
int pixstore_valid(const PixStore *p, PixRef ref, size_t n);
void pixstore_free(PixStore *p);

#endif
