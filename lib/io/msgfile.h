/* msgfile: a file that is one msgpack map with a format name, a version and
 * a CRC-32 at its end: probe files (ssl-probe --save, lib/eval/classifier.h)
 * and checkpoints (ssl-train -o, lib/io/checkpoint.h, whose layout this
 * generalises).
 *
 *   {"format": NAME, "version": [major, minor], ...,  "checksum": crc32}
 *
 * "checksum" is the last key; its value is always packed as msgpack uint32
 * (0xce and 4 big-endian bytes, the last 5 bytes of the file) and is the
 * CRC-32 (zlib's, Python zlib.crc32) of every byte before those 5.
 *
 * Writing packs straight into an atomic temporary (lib/base/atomicfile.h)
 * through a packer that also runs the CRC, so no second copy of the
 * contents is ever held: msgfile_writer_open, pack the map (its size
 * counting "checksum") through w.pk, then msgfile_writer_commit packs the
 * checksum and renames. On any failure the previous file is intact.
 *
 * Reading takes the whole file into memory and walks its bytes with the
 * scanner of msgpack_util.h before msgpack-c sees them, then checks, in
 * this order: a msgpack map; the format (a file of another kind is named:
 * "an ssl-stream of kind \"embeddings\"", "a PNG image", ...); complete
 * (else "truncated"); nothing after the map; the major version; the
 * checksum. The root map then borrows the file's bytes until msgfile_free.
 *
 * Messages (why) do not name the file: the caller puts the path first.
 * The getters return 0, or -1 with "sect: 'key' must be ..." in why. */
#ifndef SSL_MSGFILE_H
#define SSL_MSGFILE_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "base/atomicfile.h"

/* What a reader expects. */
typedef struct {
	const char *format;    /* "ssl-checkpoint" */
	const char *what;      /* "checkpoint", for messages */
	const char *writer;    /* "ssl-train", for messages */
	int         major, minor;
	int64_t     max_bytes; /* the largest file accepted */
	int         max_depth; /* containers open at once */
} MsgFileSpec;

typedef struct {
	unsigned char *bytes;  /* the whole file */
	size_t         size;
	msgpack_zone   zone;
	int            zone_ok;
	msgpack_object root;   /* a map; borrows bytes and zone */
	int64_t        major, minor;
} MsgFile;

/* 0, or -1 with a message in why; f is then empty (msgfile_free is safe). */
int  msgfile_load(MsgFile *f, const char *path, const MsgFileSpec *spec, char *why, size_t whylen);
void msgfile_free(MsgFile *f);

/* What the first bytes of a file look like, for "not a checkpoint" messages:
 * "an ssl-stream of kind \"images\"", "an ssl-checkpoint file", "a PNG
 * image", "a JPEG image", "a gzip file", "a safetensors file", "a text
 * file"; NULL when nothing is recognised. buf holds the text. */
const char *msgfile_identify(const unsigned char *b, size_t n, char *buf, size_t len);

/* CRC-32 (IEEE, zlib-compatible) of len bytes, continuing from crc (0 to start). */
uint32_t msgfile_crc32(uint32_t crc, const void *data, size_t len);

typedef struct {
	AtomicFile     af;
	msgpack_packer pk;     /* pack the map here */
	uint32_t       crc;
	uint64_t       bytes;
	int            failed;
} MsgFileWriter;

/* 0, or -1 with "path: cannot create a temporary file beside it: ..." in err. */
int  msgfile_writer_open(MsgFileWriter *w, const char *path, char *err, size_t errlen);
/* Packs "checksum" and its value, then flushes, fsyncs and renames. pack_rc:
 * the OR of the caller's packer results (nonzero: abandon). 0, or -1 with a
 * message naming the path in err (the temporary is removed). */
int  msgfile_writer_commit(MsgFileWriter *w, int pack_rc, char *err, size_t errlen);
/* Abandons the write: the temporary is removed, the previous file kept. */
void msgfile_writer_abort(MsgFileWriter *w);

/* ---- reading a map's entries, with messages "sect: ..." ---- */

/* Keys of map m must be strings, each once. */
int msgfile_check_keys(const msgpack_object *m, const char *sect, char *why, size_t whylen);
/* The value of key in m, or NULL and "sect: missing 'key'". */
const msgpack_object *msgfile_need(const msgpack_object *m, const char *sect, const char *key, char *why,
                                   size_t whylen);
int msgfile_get_int(const msgpack_object *m, const char *sect, const char *key, int64_t min, int64_t max, int64_t *v,
                    char *why, size_t whylen);
int msgfile_get_f64(const msgpack_object *m, const char *sect, const char *key, double *v, char *why, size_t whylen);
int msgfile_get_bool(const msgpack_object *m, const char *sect, const char *key, int *v, char *why, size_t whylen);
/* A map under key (checked with msgfile_check_keys); absent is fine when
 * !required (*out = NULL). sect is a prefix ("" or "train: "). */
int msgfile_get_map(const msgpack_object *m, const char *sect, const char *key, int required,
                    const msgpack_object **out, char *why, size_t whylen);

#endif
