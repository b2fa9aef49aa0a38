/* msgpack_util: bounded framing of msgpack bytes and small accessors for
 * decoded objects, shared by the stream reader (lib/io/stream.c) and the
 * checkpoint loader (lib/io/checkpoint.c).
 *
 * Framing. msgpack-c allocates for a container's claimed element count
 * before the elements arrive, so a few hostile bytes could ask for
 * gigabytes. The scanner walks one object's bytes first: it reads only
 * headers, skips str/bin/ext payloads without looking at them, and refuses
 * a nesting, an element count or a size beyond the limits before any
 * payload is read. It is resumable: mpu_scan_step takes the bytes present
 * so far (always from the object's first byte) and either finishes, asks
 * for more, or refuses; called again with more bytes it goes on where it
 * stopped. A caller with the whole input treats "asks for more" as
 * truncated. Only an object the scanner finished goes to msgpack_unpack,
 * and what that allocates is then bounded by the bytes present.
 *
 * Accessors return 0 and the value, or -1 when the object has another type
 * (or does not fit), and never write a message: the caller names the key. */
#ifndef SSL_MSGPACK_UTIL_H
#define SSL_MSGPACK_UTIL_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define MPU_MAX_DEPTH 16 /* the most max_depth a scanner takes */

typedef struct {
	int      max_depth;                 /* containers open at once */
	uint64_t max_elems;                 /* elements of all its arrays and maps together */
	uint64_t max_bytes;                 /* the object's size */
	int      whole;                     /* 0 from mpu_scan_init; see there */
	size_t   pos;                       /* bytes walked; passes the bytes present while a payload is skipped */
	int      depth;                     /* slots in use in left[]; left[0] is the root */
	uint64_t left[MPU_MAX_DEPTH + 1];   /* elements still to come per open level */
	uint64_t elems;
} MpuScan;

/* Starts a scan of one object; max_depth in [1, MPU_MAX_DEPTH]; UINT64_MAX
 * for no limit on elements or bytes. A caller that gives all its bytes at
 * once sets s->whole = 1 afterwards: a container that claims more elements
 * than bytes are left (each takes one at least) then ends the scan with 0
 * at once, before its elements are looked at. */
void mpu_scan_init(MpuScan *s, int max_depth, uint64_t max_elems, uint64_t max_bytes);
/* Walks on over p[0, avail), the object's bytes present so far (the same
 * bytes as before plus any new ones). 1: the object is complete and s->pos
 * is its size; 0: it needs more bytes (s->pos, when past avail, says how
 * many at least); -1: refused, a message in why ("nesting deeper than 16
 * levels", "a container claims N elements (limit M per object)", "object
 * larger than the limit of N bytes", "malformed msgpack (byte 0xc1 at
 * offset N)"). */
int mpu_scan_step(MpuScan *s, const unsigned char *p, size_t avail, char *why, size_t whylen);

/* A str equal to s. */
int mpu_key_is(const msgpack_object *k, const char *s);
/* The value of the first key equal to key in a map, or NULL. */
const msgpack_object *mpu_map_get(const msgpack_object *m, const char *key);
/* The values of the keys names[0..n) of a map into vals (NULL when absent;
 * other keys are ignored). -1, or the index of the first name that appears
 * twice. */
int mpu_map_pick(const msgpack_object *m, const char *const *names, int n, const msgpack_object **vals);
/* An integer that fits int64 (msgpack has separate unsigned and signed kinds). */
int mpu_get_i64(const msgpack_object *o, int64_t *v);
/* A float, or an integer as a double. */
int mpu_get_f64(const msgpack_object *o, double *v);
/* A boolean, or the integer 0 or 1. */
int mpu_get_bool(const msgpack_object *o, int *v);
/* A str without NUL bytes, shorter than len, into buf as a C string. */
int mpu_get_str(const msgpack_object *o, char *buf, size_t len);
/* A str without NUL bytes as a fresh C string (xmalloc), or NULL. Bytes
 * that are not valid UTF-8 come out as \xHH, as mpu_pack_str writes them. */
char *mpu_strdup(const msgpack_object *o);
/* The same, with the reason in why when NULL: "WHAT must be a string" or
 * "WHAT contains a NUL byte" (the one accessor that writes a message). */
char *mpu_strdup_why(const msgpack_object *o, const char *what, char *why, size_t whylen);

/* What a value is, for messages: "a map", "an integer", ... */
const char *mpu_type_name(msgpack_object_type t);

/* A C string as a msgpack str; nonzero on a packer error. Bytes that are
 * not valid UTF-8 go out as \xHH (str_utf8_escape). */
int mpu_pack_str(msgpack_packer *pk, const char *s);

#endif
