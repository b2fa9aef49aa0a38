/* tu_stream: the test toolkit's builders of tiny inputs: images streams
 * (tu_write_images), tiny model configurations (tu_tiny_config), and
 * streams built byte by byte with msgpack for hostile input (tu_pk_*).
 * Every function fails the running Check test on error. */
#ifndef SSL_TU_STREAM_H
#define SSL_TU_STREAM_H

#include <msgpack.h>
#include <stdint.h>

#include "io/checkpoint.h"
#include "io/stream.h"
#include "nn/model.h"

/* What an images stream holds. The header: kind (NULL: images), class
 * names, records_per_epoch / epochs / start_epoch (0: as
 * stream_header_init leaves them), one provenance entry when prov_argc > 0.
 * The records: record(i, rec, px, arg) fills record i's id, label, epoch
 * and source (rec comes zeroed, label -1) and its H x W x C pixels. */
typedef struct {
	const char  *kind;
	int          H, W, C;
	int          nclasses;
	char *const *classes;
	int64_t      records_per_epoch, epochs, start_epoch;
	int          prov_argc;
	char *const *prov_argv;
	int          no_trailer;   /* end without a trailer (a truncated stream) */
	void       (*record)(int i, Record *rec, uint8_t *px, void *arg);
	void        *arg;
} TuImages;

/* Writes n records to path. */
void tu_write_images(const char *path, int n, const TuImages *spec);

/* The small model the tests build: resnet18, CIFAR stem, width 4, 3 x 8 x 8
 * input, a 2-layer head 16 -> 8, no classifier (callers change what their
 * test needs). */
ModelConfig tu_tiny_config(void);

/* A model of config c for max_batch images, initialised with seed (for a
 * test to change before tu_save_model). */
Model *tu_new_model(const ModelConfig *c, int max_batch, uint64_t seed);
/* m as a checkpoint at path, with normalisation mean/std (c.in_channels
 * each); no optimizer, no run state. Frees m. */
void tu_save_model(const char *path, Model *m, const float *mean, const float *std);

/* msgpack by hand. A str. */
void tu_pk_str(msgpack_packer *pk, const char *s);
/* A header map of 3 + nextra entries: format, version [major, minor] and
 * kind "images"; the caller packs the nextra other entries. */
void tu_pk_header(msgpack_packer *pk, int nextra, const char *format, int major, int minor);
/* A record map of 3 + nextra entries: id, label, epoch; then the caller's. */
void tu_pk_record(msgpack_packer *pk, int nextra, int64_t id, int64_t label, int64_t epoch);
/* A tensor map {dtype, shape, data} whose bin claims binlen bytes and
 * holds `present` zero bytes (fewer or more than binlen for hostile input). */
void tu_pk_tensor(msgpack_packer *pk, const char *dtype, int ndim, const int64_t *shape, uint32_t binlen,
                  size_t present);
/* The trailer {end: true, records: n}. */
void tu_pk_trailer(msgpack_packer *pk, int64_t n);

#endif
