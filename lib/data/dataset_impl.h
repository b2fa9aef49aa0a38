/* dataset_impl: what the parts of lib/data/dataset (dataset.c: inputs,
 * member paths and classes, decoding, the finished set; dataset_read.c:
 * folders and archives; dataset_files.c: the
 * official CIFAR/STL-10 files, IDX and CIFAR batches, single images) share.
 * Not for use outside lib/data/dataset*.c. */
#ifndef SSL_DATASET_IMPL_H
#define SSL_DATASET_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "data/dataset.h"
#include "data/image.h"
#include "data/pixstore.h"
#include "base/util.h"

enum { SKIP_DECODE, SKIP_UNSUPPORTED, SKIP_TOO_LARGE, SKIP_UNREADABLE, SKIP_EMPTY_DIR, SKIP_NKINDS };
static const char *const skip_names[SKIP_NKINDS] = {
	"undecodable", "unsupported format", "too large", "unreadable", "empty class folder"
};

enum { MODE_NONE, MODE_NAMED, MODE_INDEXED };
enum { DIR_HAS_SUBDIR = 1, DIR_HAS_MEMBER = 2 };

/* A chunk of members read but not yet decoded: the reader fills one while
 * the other is decoded by OpenMP tasks. */
/* Folders below a folder input are read to this depth (deeper ones are
 * skipped members); the cache key's walk goes exactly as deep. */
#define DATASET_MAX_DEPTH 64

#define CHUNK_ITEMS 1024
#define CHUNK_BYTES (64u << 20)
#define TASK_ITEMS  16

typedef struct {
	char *key;
	int   val;
} StrSlot;

typedef struct {
	StrSlot *slots;
	size_t   cap, n;
} StrMap;

/* ---- the dataset ---- */

/* An official dataset file (CIFAR or STL-10 binary version) kept from the
 * current input until the whole input is read. */
enum { OFF_NONE, OFF_CIFAR10, OFF_CIFAR100, OFF_STL10, OFF_MAX_FILES = 16 };

typedef struct {
	char    *member;   /* path inside the input */
	uint8_t *data;
	size_t   len;
} OffFile;

typedef struct {
	char    *path;
	uint8_t *data;
	size_t   len;
	int64_t  cand;
	int      cls;
	int      rc;
	Image    img;
	char     err[200];
} Pending;

/* With shards: a member (or batch record) of any shard that would be
 * decoded; ids are positions in the sorted candidates. */
typedef struct {
	const char *path;   /* kept (ds_keep_str) */
	int64_t     sub, seq;
	int         input;
	int         cls;    /* named: class_of; indexed: the label */
	int         shard;
} Cand;

typedef struct {
	Pending *items;
	int      n, cap;
	size_t   bytes;
	int      launched;
} Chunk;

struct Dataset {
	DatasetOptions opt;
	Sample   *samples;
	int64_t   n, cap, seq;
	char    **inputs;
	int       ninputs;
	char    **strs;            /* owned strings that samples borrow */
	size_t    nstrs, capstrs;
	PixStore *store;           /* the pixels; NULL with sizes_only */
	int       to_rgb;          /* gray samples are made RGB when read */
	int       mode;
	StrMap    classmap;        /* named: class name -> interned id */
	char    **cnames;
	int       ncnames;
	char    **idx_names;       /* indexed: names from the data (CIFAR meta) */
	int       nidx_names;
	int       max_label;
	char    **classes;         /* final */
	int       nclasses;
	StrMap    dirs;            /* folders of the current input */
	char    **links;           /* hard links of the current archive: (member, target) pairs */
	int64_t  *link_cand;       /* with shards: each link's candidate */
	size_t    nlinks;
	Cand     *cands;           /* with shards: every candidate of every shard */
	int64_t   ncands, capcands;
	int64_t   nids;            /* after finish: ids */
	int32_t  *id_shard;        /* with shards, after finish: per id */
	int32_t  *id_label;
	Chunk     chunks[2];
	int       cur;
	int       cur_input;
	int64_t   members, skipped, skip_kind[SKIP_NKINDS];
	OffFile   off[OFF_MAX_FILES]; /* official dataset files of the current input */
	int       noff, off_layout;
	int       any_official;
	int       finished;
	char      err[1024];
};

struct archive;

int ds_keep_pixels(Dataset *d, Sample *s, const uint8_t *px);
int ds_fail(Dataset *d, const char *fmt, ...) ATTR_PRINTF(2, 3);
const char * ds_keep_str(Dataset *d, char *s);
Sample * ds_push_sample(Dataset *d);
int ds_skip(Dataset *d, int kind, const char *member, const char *fmt, ...) ATTR_PRINTF(4, 5);
int ds_slurp_fd(int fd, const uint8_t *pre, size_t prelen, int64_t max, uint8_t **out, size_t *outlen);
int ds_slurp_path(const char *path, int64_t max, uint8_t **out, size_t *outlen);
const char * ds_base_name(const char *path);
int ds_cifar_kind(const char *base);
int ds_is_idx_name(const char *base);
int official_archive_entry(Dataset *d, struct archive *a, const char *path, const char *member, int64_t size);
int official_file(Dataset *d, const char *root, const char *full, const char *rel);
int official_finish(Dataset *d, const char *path, int prev_mode);
void official_free(Dataset *d);
int official_kind(const char *member);
int official_refuse_other(Dataset *d, const char *path, const char *member);
int ds_read_cifar(Dataset *d, const char *path, int is100);
int ds_read_idx(Dataset *d, const char *path);
int ds_read_single_image(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen);
int ds_set_mode(Dataset *d, int mode, const char *path);

/* dataset.c and dataset_read.c */
void ds_dir_note(Dataset *d, const char *path, int flag);
int ds_is_junk_path(const char *path);
int ds_member_kind(const char *path);
/* Whether the first bytes of a member whose name says nothing make it an
 * image to decode: 8 of them at least (in folders and archives alike, and
 * the same on every rank), that sniff as one. */
int ds_sniff_head(const uint8_t *head, size_t len);
int ds_member_wanted(Dataset *d, const char *path, int kind, const uint8_t *head, size_t headlen);
void ds_note_member_dir(Dataset *d, const char *path);
int ds_submit(Dataset *d, const char *path, uint8_t *data, size_t len, int64_t cand);
/* With shards: the shard of a member (sub: index in a batch, or -1), and
 * whether it is this rank's. Without: 0, and always. */
int ds_shard_of(const Dataset *d, const char *path, int64_t sub);
int ds_mine(const Dataset *d, const char *path, int64_t sub);
/* Records a candidate (path: kept by the dataset; cls: a class_of id, or
 * the label of an indexed record) in shard `shard`: its index. */
int64_t ds_add_cand(Dataset *d, const char *path, int64_t sub, int cls, int shard);
int ds_class_of(Dataset *d, const char *path);
int ds_read_archive(Dataset *d, const char *path, int fd, const uint8_t *head, size_t headlen);
ssize_t ds_read_head(int fd, uint8_t *buf, size_t n);
int ds_walk(Dataset *d, const char *root, const char *rel, int depth);

#endif
