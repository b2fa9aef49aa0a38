/* dataset: the images of one ssl-decode run, enumerated, decoded once and
 * kept: in memory up to a budget, the rest in a spill file on disk
 * (pixstore.h), read back for every epoch.
 *
 * Inputs (dataset_add, once per command-line argument):
 *   - a folder, walked recursively, or any archive libarchive reads (tar,
 *     plain or gz/bz2/xz/zstd, zip, 7z, cpio, ...), in ImageFolder layout:
 *     a member's class is the name of its parent folder; members at the top
 *     have none (label -1). Hidden files and folders and __MACOSX/ are
 *     skipped quietly, and so are files that are neither named nor shaped
 *     like images (README, .csv, ...). Symbolic links to folders are not
 *     followed.
 *   - a single JPEG, PNG or PNM file (no class);
 *   - an IDX images file of the MNIST family (name contains "idx3" or
 *     "idx4" and "ubyte", gzip'd or not); labels come from the matching
 *     labels file ("images" -> "labels", "idx3" -> "idx1", with or without
 *     .gz) beside it, or are -1 when there is none (with a warning). Labels
 *     files given as inputs are skipped quietly;
 *   - a CIFAR-10 binary batch (data_batch_N.bin, test_batch.bin; 1 label
 *     byte + 3072 bytes per image) or CIFAR-100 (train.bin, test.bin; coarse
 *     and fine label bytes: the fine one unless coarse is set). Class names
 *     from batches.meta.txt (fine_label_names.txt, coarse_label_names.txt)
 *     beside the batch when present.
 *   - the CIFAR-10, CIFAR-100 and STL-10 archives as downloaded (binary
 *     versions), or the folders they extract to, recognised by member names
 *     (data_batch_N.bin, train.bin, train_X.bin, ...): the split of
 *     DatasetOptions.split, class names from the archive. STL-10 images are
 *     stored channel plane after plane, each column-major; its labels count
 *     from 1; unlabeled_X.bin has label -1. A file the split needs that is
 *     missing, the Python/Matlab versions, two data sets or images among
 *     these files in one input are errors.
 * IDX and CIFAR inputs have class indices in the data ("indexed"); folders
 * and archives have class names ("named"). One run takes one kind or the
 * other. Indexed class names are "0", "1", ... unless the batch names them
 * or DatasetOptions.class_names does.
 *
 * Order: inputs in the order given; inside an input, members sorted by path
 * (bytes, strcmp), then by index inside a batch file. A sample's id is its
 * position in that order. Named classes are indexed in sorted name order.
 *
 * Bad members (an undecodable or truncated image, an unsupported format,
 * a member too big, an empty class folder) are reported one line each to
 * DatasetOptions.warn as "<input>: <member>: <what>", skipped and counted;
 * with strict set the first one is an error instead. A missing or
 * unreadable input, or a damaged archive, is an error: -1 and a message.
 *
 * Decoding runs on OpenMP threads while the (serial) reader fills the next
 * chunk of members; the result does not depend on the thread count. */
#ifndef SSL_DATASET_H
#define SSL_DATASET_H

#include <stddef.h>
#include <stdint.h>

#define DATASET_MAX_MEMBER_BYTES (INT64_C(1) << 30)  /* one archive member or file */
#define DATASET_MAX_BATCH_BYTES  (INT64_C(4) << 30)  /* one IDX or CIFAR file */

typedef struct {
	int64_t      max_pixels;    /* per image; <= 0: IMAGE_DEFAULT_MAX_PIXELS */
	int          height, width; /* resize to this (0: keep; then all must agree) */
	int          fit;           /* how, an ImageFit: stretch (0), crop, pad */
	int          channels;      /* 1 or 3; 0: 1 if every image is gray, else 3 */
	int          strict;        /* bad members are errors */
	int          sizes_only;    /* keep each image's size, not its pixels;
	                               sizes may differ */
	int          coarse;        /* CIFAR-100: coarse labels */
	int64_t      memory;        /* the process's memory budget, in bytes: 0 the
	                               default (PIXSTORE_DEFAULT_BUDGET), < 0 no pixels
	                               in memory; decoded pixels get
	                               dataset_pixel_budget() of it, the rest goes to
	                               a spill file (pixstore.h) */
	const char  *cache_dir;     /* the spill file's folder; NULL: $TMPDIR, /var/tmp */
	const char  *cache_path;    /* keep the decoded set in this file (dataset_cache_keep):
	                               the spill file is made beside it instead */
	int64_t      shard, nshards; /* nshards > 1: decode only the members of shard
	                               `shard` (see SHARDS below) */
	const char  *split;         /* official archives: train, test, unlabeled,
	                               train+unlabeled (STL-10); NULL: train */
	int          nclass_names;  /* names for indexed classes, or 0 */
	char *const *class_names;
	void       (*warn)(void *ctx, const char *msg);
	void       (*progress)(void *ctx, int64_t decoded);
	void        *ctx;
} DatasetOptions;

typedef struct {
	const char *path;    /* member path inside its input (borrowed) */
	int64_t     sub;     /* index inside an IDX/CIFAR file, -1 otherwise */
	int         input;   /* which dataset_add call */
	int         label;   /* class index, -1 when unknown */
	int         h, w, c; /* as dataset_pixels gives them */
	int64_t     id;      /* the record id: see Order, and SHARDS */
	/* private */
	int64_t     cand;    /* with shards: the candidate it was */
	int64_t     ref;     /* where the pixels are (a PixRef of pixstore.h), -1: none */
	int64_t     seq;
	int         cls;
	int         sc;      /* channels as stored (1 where c is 3: made RGB when read) */
} Sample;

typedef struct Dataset Dataset;

#define DATASET_RESERVE (INT64_C(256) << 20)
/* The bytes of decoded pixels kept in memory under a --memory budget (the
 * rest of it is for everything else the process holds); < 0 stays < 0. */
int64_t dataset_pixel_budget(int64_t memory);

Dataset *dataset_new(const DatasetOptions *opt);
/* Reads and decodes one input. -1 on error (see dataset_error). */
int dataset_add(Dataset *d, const char *path);
/* Sorts, assigns labels, unifies channels, checks that sizes agree.
 * -1 on error (no images; sizes differ, naming the first odd one). */
int dataset_finish(Dataset *d);
const char *dataset_error(const Dataset *d);
void dataset_free(Dataset *d);

/* SHARDS. With nshards > 1 every member that would be decoded (an image
 * file by its name or first bytes; a record of an IDX or CIFAR file) is a
 * candidate, and belongs to shard shard_of(its source) = a hash of its
 * member path (and index inside a batch file) mod nshards: membership
 * never depends on other members, and every rank computes it alike. Only
 * the candidates of this shard are read and decoded (other members of an
 * archive are skipped unread, other files of a folder are not opened,
 * other records of a batch file are dropped); a hard link goes with its
 * target. Bad members are reported (and counted) by their shard's rank
 * alone. Every rank lists every candidate, so ids are positions in the
 * order of all candidates of all shards (the same on every rank, unique
 * across ranks): without bad members the ids of an unsharded run; a
 * candidate that fails to decode keeps its id, which no record then uses.
 * Class names are those of the candidates (a class whose images all fail
 * still has its index). Images from files become RGB unless channels is
 * set, since a rank cannot see whether other shards hold colour.
 *
 * After dataset_finish. */
int64_t             dataset_count(const Dataset *d);
const Sample       *dataset_sample(const Dataset *d, int64_t i);
/* Sample i's pixels, (h, w, c) as dataset_sample says: a pointer into
 * memory, or buf (h * w * c bytes) filled from the spill file. NULL on a
 * read error (dataset_error). Gray images of a run that also has colour
 * ones become RGB here. */
const uint8_t      *dataset_pixels(Dataset *d, int64_t i, uint8_t *buf);
int                 dataset_nclasses(const Dataset *d);
char *const        *dataset_classes(const Dataset *d);
const char         *dataset_input_name(const Dataset *d, int input);
/* Bytes of pixels held in memory and in the spill file; the spill file's
 * folder (or the cache file). */
int64_t             dataset_memory(const Dataset *d);
int64_t             dataset_spilled(const Dataset *d);
const char         *dataset_spill_place(const Dataset *d);
/* The record's source: the member path, or "path#index" inside a batch. */
const char         *dataset_source(const Dataset *d, int64_t i, char *buf, size_t len);
/* Ids: every candidate of every shard (with shards), else the samples.
 * dataset_id_table fills, per id, its label, its shard and the sample
 * that holds it here (-1: another shard's, or it failed to decode). */
int64_t     dataset_nids(const Dataset *d);
void        dataset_id_table(const Dataset *d, int64_t *labels, int32_t *shards, int64_t *local);
/* Members considered and skipped so far, and "skipped N of M members: ..."
 * (empty string when nothing was skipped). */
int64_t     dataset_members(const Dataset *d);
int64_t     dataset_skipped(const Dataset *d);
const char *dataset_summary(const Dataset *d, char *buf, size_t len);

/* ---- a decoded set kept in a file (ssl-decode --cache) ----
 * The file is the pixel store kept (pixstore.h: pixels, then this set's
 * metadata: the key, inputs, classes, counts of members and skips, and
 * every sample), written atomically. The key says what the set was decoded
 * from: the options that change pixels, labels or which images exist, and
 * each input's path as given, real path, size and modification time (ns),
 * with the (path, type, size, mtime) of everything below a folder input,
 * or beside a file input (an IDX file's labels, a batch's class names). */

/* The key for these options and inputs (malloc'd). */
char *dataset_cache_key(const DatasetOptions *o, int ninputs, char *const *inputs);
/* Opens the set kept in path, finished (the options' callbacks are kept;
 * nothing is decoded). 1 and *out; 0 when there is no such file; -1 and a
 * message in err (naming path) when it is damaged, cut short, of another
 * version or made from other inputs or options ("inputs or options
 * changed"). */
int dataset_cache_load(const DatasetOptions *opt, const char *path, const char *key, Dataset **out, char *err,
                       size_t errlen);
/* After dataset_finish, with cache_path set: writes the file (atomically).
 * -1 on error (dataset_error; no file and no temporary are left). */
int dataset_cache_keep(Dataset *d, const char *key);

#endif
