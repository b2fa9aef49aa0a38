/* provenance: what made a stream or a checkpoint, one entry per tool of the
 * pipeline ({tool, version, args}: ssl-stream(5)), and its one msgpack
 * codec, used by the stream header (stream.c) and checkpoints
 * (checkpoint.c) alike. */
#ifndef SSL_PROVENANCE_H
#define SSL_PROVENANCE_H

#include <msgpack.h>
#include <stddef.h>

typedef struct {
	char  *tool;
	char  *version;
	int    nargs;
	char **args;
} Provenance;

/* An array of n maps {tool, version, args}. msgpack's status (0: packed). */
int  provenance_pack(msgpack_packer *pk, const Provenance *p, int n);
/* Decodes an array of such maps into *out (*n entries, owned by the
 * caller: provenance_free, also after a failure, which leaves what was
 * decoded so far). An entry needs 'tool'; 'version' defaults to "" and
 * 'args' to none; a key twice, a string with a NUL byte, anything else
 * than strings are refused. -1 with a message in why. */
int  provenance_decode(const msgpack_object *o, Provenance **out, int *n, char *why, size_t whylen);
Provenance *provenance_copy(const Provenance *p, int n);
void provenance_free(Provenance *p, int n);

#endif
