/* stream: the ssl-tools tensor stream; see stream.h and man/ssl-stream.5.
 *
 * Reading. The reader frames each msgpack object itself before msgpack-c
 * sees it: the resumable scanner of msgpack_util.h walks the bytes in our buffer, skips
 * str/bin/ext payloads without looking at them, and decides where the object
 * ends. Only a complete object (every byte present) goes to msgpack_unpack.
 * Why not msgpack_unpacker: it allocates 16 bytes per element as soon as it
 * parses an array header, so the 5 bytes dd ff ff ff ff cost a 64 GiB
 * allocation before a single element arrives. The scanner refuses a
 * container that claims more elements than we allow, a nesting deeper than
 * we need, and an object longer than the size limit, before reading its
 * payload; what msgpack-c then allocates is bounded by the bytes present.
 *
 * Records borrow: tensor data points into our read buffer (or into an
 * aligned copy when the bin is misaligned for its dtype), msgpack objects
 * live in one zone cleared per object, so a record costs no malloc once the
 * buffers have grown to the largest object. */
#include "io/stream.h"

#include <errno.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/msgpack_util.h"
#include "base/util.h"

#define READ_CHUNK     (64 * 1024)
#define INITIAL_BUF    (256 * 1024)
#define OBJECT_SLACK   (INT64_C(16) << 20)  /* keys, shapes, strings around the tensors */
#define SCAN_MAX_DEPTH 16                   /* containers open at once; the format needs 4 */
#define SCAN_MAX_ELEMS (1u << 20)           /* elements per object (classes, args, ...) */
#define ZONE_CHUNK     (16 * 1024)

/* ---------------------------------------------------------------- header */

void
stream_header_init(StreamHeader *h, const char *kind)
{
	memset(h, 0, sizeof *h);
	h->version_major = STREAM_VERSION_MAJOR;
	h->version_minor = STREAM_VERSION_MINOR;
	ASSERT(kind && strlen(kind) < sizeof h->kind);
	strcpy(h->kind, kind);
	h->records_per_epoch = -1;
	h->epochs = -1;
	h->start_epoch = 0;
}

void
stream_header_free(StreamHeader *h)
{
	for (int i = 0; i < h->nclasses; i++)
		free(h->classes[i]);
	free(h->classes);
	provenance_free(h->prov, h->nprov);
	for (int i = 0; i < h->nmeta; i++) {
		free(h->meta[i].key);
		free(h->meta[i].value);
	}
	free(h->meta);
	memset(h, 0, sizeof *h);
}

void
stream_header_copy(StreamHeader *dst, const StreamHeader *src)
{
	*dst = *src;
	dst->classes = NULL;
	dst->nclasses = 0;
	dst->prov = NULL;
	dst->nprov = 0;
	dst->meta = NULL;
	dst->nmeta = 0;
	stream_header_set_classes(dst, src->nclasses, src->classes);
	if (src->nprov > 0) {
		dst->prov = provenance_copy(src->prov, src->nprov);
		dst->nprov = src->nprov;
	}
	for (int i = 0; i < src->nmeta; i++)
		stream_header_set_meta(dst, src->meta[i].key, src->meta[i].value);
}

void
stream_header_set_classes(StreamHeader *h, int n, char *const *names)
{
	for (int i = 0; i < h->nclasses; i++)
		free(h->classes[i]);
	free(h->classes);
	h->classes = NULL;
	h->nclasses = 0;
	if (n <= 0)
		return;
	h->classes = xcalloc((size_t)n, sizeof h->classes[0]);
	for (int i = 0; i < n; i++)
		h->classes[i] = xstrdup(names[i]);
	h->nclasses = n;
}

void
stream_header_add_provenance(StreamHeader *h, int argc, char **argv)
{
	Provenance *p;
	const char *tool = argc > 0 && argv[0] ? argv[0] : getprogname_ssl();
	const char *slash = strrchr(tool, '/');
	h->prov = xreallocarray(h->prov, (size_t)h->nprov + 1, sizeof h->prov[0]);
	p = &h->prov[h->nprov++];
	p->tool = xstrdup(slash ? slash + 1 : tool);
	p->version = xstrdup(SSL_VERSION);
	p->nargs = argc > 1 ? argc - 1 : 0;
	p->args = xcalloc(p->nargs > 0 ? (size_t)p->nargs : 1, sizeof p->args[0]);
	for (int i = 0; i < p->nargs; i++)
		p->args[i] = xstrdup(argv[i + 1]);
}

void
stream_header_set_meta(StreamHeader *h, const char *key, const char *value)
{
	for (int i = 0; i < h->nmeta; i++) {
		if (strcmp(h->meta[i].key, key) == 0) {
			free(h->meta[i].value);
			h->meta[i].value = xstrdup(value);
			return;
		}
	}
	h->meta = xreallocarray(h->meta, (size_t)h->nmeta + 1, sizeof h->meta[0]);
	h->meta[h->nmeta].key = xstrdup(key);
	h->meta[h->nmeta].value = xstrdup(value);
	h->nmeta++;
}

int64_t
stream_header_records(const StreamHeader *h)
{
	int64_t n;
	if (h->records_per_epoch <= 0 || h->epochs <= 0 || __builtin_mul_overflow(h->records_per_epoch, h->epochs, &n))
		return -1;
	return n;
}

const char *
stream_header_get_meta(const StreamHeader *h, const char *key)
{
	for (int i = 0; i < h->nmeta; i++)
		if (strcmp(h->meta[i].key, key) == 0)
			return h->meta[i].value;
	return NULL;
}

const Tensor *
record_tensor(const Record *rec, const char *name, DType dtype, int ndim, char *err, size_t errlen)
{
	for (int i = 0; i < rec->ntensors; i++) {
		const Tensor *t = &rec->tensors[i];
		if (strcmp(t->name, name) != 0)
			continue;
		if (t->dtype != dtype) {
			snprintf(err, errlen, "tensor '%s' has dtype %s, expected %s", name, dtype_str(t->dtype),
			         dtype_str(dtype));
			return NULL;
		}
		if (ndim >= 0 && t->ndim != ndim) {
			snprintf(err, errlen, "tensor '%s' has rank %d, expected %d", name, t->ndim, ndim);
			return NULL;
		}
		return t;
	}
	snprintf(err, errlen, "no tensor '%s' in the record", name);
	return NULL;
}

/* ------------------------------------------------------ tensor encoding */

int
tensor_pack(msgpack_packer *pk, const Tensor *t)
{
	int rc = 0;
	size_t nbytes = tensor_nbytes(t);
	ASSERT(t->ndim >= 0 && t->ndim <= TENSOR_MAX_DIM);
	rc |= msgpack_pack_map(pk, 3);
	rc |= mpu_pack_str(pk, "dtype");
	rc |= mpu_pack_str(pk, dtype_str(t->dtype));
	rc |= mpu_pack_str(pk, "shape");
	rc |= msgpack_pack_array(pk, (size_t)t->ndim);
	for (int i = 0; i < t->ndim; i++)
		rc |= msgpack_pack_int64(pk, t->shape[i]);
	rc |= mpu_pack_str(pk, "data");
	rc |= msgpack_pack_bin(pk, nbytes);
	rc |= msgpack_pack_bin_body(pk, t->data, nbytes);
	return rc ? -1 : 0;
}

int
tensor_unpack(const msgpack_object *o, Tensor *t, int64_t max_bytes, char *err, size_t errlen)
{
	static const char *const names[] = { "dtype", "shape", "data" };
	const msgpack_object *v[3], *dtype, *shape, *data;
	int64_t numel;
	size_t isz;
	int dup;
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(err, errlen, "a tensor must be a map");
		return -1;
	}
	/* unknown keys are for newer minor versions */
	if ((dup = mpu_map_pick(o, names, 3, v)) >= 0) {
		snprintf(err, errlen, "duplicate key '%s'", names[dup]);
		return -1;
	}
	dtype = v[0], shape = v[1], data = v[2];
	if (!dtype || !shape || !data) {
		snprintf(err, errlen, "missing '%s'", !dtype ? "dtype" : !shape ? "shape" : "data");
		return -1;
	}
	memset(t, 0, sizeof *t);
	if (dtype->type != MSGPACK_OBJECT_STR) {
		snprintf(err, errlen, "dtype must be a string");
		return -1;
	}
	if (dtype_parse(dtype->via.str.ptr, dtype->via.str.size, &t->dtype) < 0) {
		snprintf(err, errlen, "unsupported dtype '%.*s' (want |u1 <i4 <i8 <f4 <f8)",
		         dtype->via.str.size > 16 ? 16 : (int)dtype->via.str.size, dtype->via.str.ptr);
		str_printable(err);
		return -1;
	}
	if (shape->type != MSGPACK_OBJECT_ARRAY) {
		snprintf(err, errlen, "shape must be an array");
		return -1;
	}
	if (shape->via.array.size > TENSOR_MAX_DIM) {
		snprintf(err, errlen, "rank %u exceeds %d", shape->via.array.size, TENSOR_MAX_DIM);
		return -1;
	}
	t->ndim = (int)shape->via.array.size;
	for (int i = 0; i < t->ndim; i++) {
		if (mpu_get_i64(&shape->via.array.ptr[i], &t->shape[i]) < 0) {
			snprintf(err, errlen, "shape[%d] is not an integer", i);
			return -1;
		}
		if (t->shape[i] < 0) {
			snprintf(err, errlen, "shape[%d] is negative (%lld)", i, (long long)t->shape[i]);
			return -1;
		}
	}
	isz = dtype_size(t->dtype);
	numel = tensor_numel_checked(t->shape, t->ndim, max_bytes > 0 ? max_bytes / (int64_t)isz : 0);
	if (numel < 0) {
		char buf[160];
		snprintf(err, errlen, "shape %s exceeds the limit of %lld bytes", tensor_shape_str(t, buf, sizeof buf),
		         (long long)max_bytes);
		return -1;
	}
	if (data->type != MSGPACK_OBJECT_BIN) {
		snprintf(err, errlen, "data must be a msgpack bin");
		return -1;
	}
	if ((uint64_t)data->via.bin.size != (uint64_t)numel * isz) {
		char buf[160];
		snprintf(err, errlen, "data has %u bytes, shape %s of %s needs %llu", data->via.bin.size,
		         tensor_shape_str(t, buf, sizeof buf), dtype_str(t->dtype),
		         (unsigned long long)numel * isz);
		return -1;
	}
	t->data = (void *)data->via.bin.ptr;
	t->owned = 0;
	return 0;
}

/* --------------------------------------------------------------- reader */

enum { RS_START, RS_RECORDS, RS_DONE, RS_ERROR };

struct StreamReader {
	FILE          *fp;
	int            own_fp;
	char          *name;
	int            state;
	int64_t        max_bytes;
	int64_t        count;
	StreamHeader   hdr;
	/* bytes [start, end) of buf are read but not yet released */
	unsigned char *buf;
	size_t         cap, start, end;
	size_t         held;        /* size of the object handed out last */
	int            eof;
	MpuScan        scan;        /* resumable across reads; positions relative to start */
	msgpack_zone   zone;
	char          *src;         /* NUL-terminated copy of a record's source */
	size_t         srccap;
	unsigned char *aligned;     /* copies of misaligned tensor data */
	size_t         alignedcap;
	char           err[640];
};

static void
rerr(StreamReader *r, const char *fmt, ...) ATTR_PRINTF(2, 3);

static void
rerr(StreamReader *r, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(r->err, sizeof r->err, "%s: ", r->name);
	va_start(ap, fmt);
	vsnprintf(r->err + n, sizeof r->err - (size_t)n, fmt, ap);
	va_end(ap);
	str_printable(r->err);
	r->state = RS_ERROR;
}

StreamReader *
stream_reader_open(FILE *fp, const char *name)
{
	StreamReader *r = xcalloc(1, sizeof *r);
	r->fp = fp;
	r->name = xstrdup(name ? name : "<stdin>");
	r->max_bytes = STREAM_DEFAULT_MAX_BYTES;
	r->cap = INITIAL_BUF;
	r->buf = xmalloc(r->cap);
	if (!msgpack_zone_init(&r->zone, ZONE_CHUNK))
		die("out of memory");
	r->state = RS_START;
	return r;
}

StreamReader *
stream_reader_open_path(const char *path)
{
	StreamReader *r;
	FILE *fp;
	if (!path || strcmp(path, "-") == 0)
		return stream_reader_open(stdin, "<stdin>");
	fp = fopen(path, "rb");
	r = stream_reader_open(fp, path);
	if (!fp)
		rerr(r, "cannot open: %s", strerror(errno));
	else
		r->own_fp = 1;
	return r;
}

void
stream_reader_set_max_bytes(StreamReader *r, int64_t max_tensor_bytes)
{
	ASSERT(max_tensor_bytes > 0);
	r->max_bytes = max_tensor_bytes;
}

int64_t
stream_reader_count(const StreamReader *r)
{
	return r->count;
}

StreamAt
stream_at(const char *name, int64_t n, int64_t id)
{
	StreamAt a;
	snprintf(a.s, sizeof a.s, "%s: record %lld (id %lld)", name, (long long)n, (long long)id);
	return a;
}

StreamAt
stream_at_reader(const StreamReader *r, int64_t id)
{
	return stream_at(stream_reader_name(r), stream_reader_count(r), id);
}

const char *
stream_reader_name(const StreamReader *r)
{
	return r->name;
}

const char *
stream_reader_error(const StreamReader *r)
{
	return r->state == RS_ERROR ? r->err : NULL;
}

void
stream_reader_close(StreamReader *r)
{
	if (!r)
		return;
	if (r->own_fp && r->fp)
		fclose(r->fp);
	stream_header_free(&r->hdr);
	msgpack_zone_destroy(&r->zone);
	free(r->buf);
	free(r->src);
	free(r->aligned);
	free(r->name);
	free(r);
}

static int64_t
object_limit(const StreamReader *r)
{
	return r->max_bytes > INT64_MAX - OBJECT_SLACK ? INT64_MAX : r->max_bytes + OBJECT_SLACK;
}

/* Makes room and reads more. -1 on a read error (message set). */
static int
fill(StreamReader *r)
{
	size_t want, n;
	if (r->end == r->cap) {
		if (r->start > 0) {
			memmove(r->buf, r->buf + r->start, r->end - r->start);
			r->end -= r->start;
			r->start = 0;
		} else {
			/* doubled as the bytes arrive, not sized to what the object
			 * claims: 300 KiB that claim a 1 GiB bin cost 512 KiB */
			size_t ncap = r->cap * 2;
			size_t most = (size_t)object_limit(r) + READ_CHUNK;
			if (ncap > most)
				ncap = most > r->end + READ_CHUNK ? most : r->end + READ_CHUNK;
			r->buf = xrealloc(r->buf, ncap);
			r->cap = ncap;
		}
	}
	/* A large payload is read in one go; otherwise in chunks so that a
	 * slow producer's records flow without waiting for a full buffer. */
	want = r->start + r->scan.pos > r->end ? r->start + r->scan.pos - r->end : 0;
	if (want < READ_CHUNK)
		want = READ_CHUNK;
	if (want > r->cap - r->end)
		want = r->cap - r->end;
	n = fread(r->buf + r->end, 1, want, r->fp);
	r->end += n;
	if (n == 0) {
		if (ferror(r->fp)) {
			rerr(r, "read error: %s", strerror(errno));
			return -1;
		}
		r->eof = 1;
	}
	return 0;
}

/* The next object. 1: *o holds it (valid until the next call); 0: clean
 * EOF at an object boundary; -1: error, message set, prefixed by `where`. */
static int
next_object(StreamReader *r, msgpack_object *o, const char *where)
{
	char why[256];
	size_t off = 0;
	msgpack_unpack_return ret;
	int s;
	r->start += r->held;
	r->held = 0;
	if (r->start == r->end)
		r->start = r->end = 0;
	msgpack_zone_clear(&r->zone);
	mpu_scan_init(&r->scan, SCAN_MAX_DEPTH, SCAN_MAX_ELEMS, (uint64_t)object_limit(r));
	while ((s = mpu_scan_step(&r->scan, r->buf + r->start, r->end - r->start, why, sizeof why)) == 0) {
		if (r->eof) {
			if (r->end == r->start)
				return 0;
			rerr(r, "%s: truncated stream (EOF inside an object, %zu of at least %zu bytes present)", where,
			     r->end - r->start, r->scan.pos > r->end - r->start ? r->scan.pos : r->end - r->start + 1);
			return -1;
		}
		if (fill(r) < 0)
			return -1;
	}
	if (s < 0) {
		rerr(r, "%s: %s", where, why);
		return -1;
	}
	ret = msgpack_unpack((const char *)r->buf + r->start, r->scan.pos, &off, &r->zone, o);
	if ((ret != MSGPACK_UNPACK_SUCCESS && ret != MSGPACK_UNPACK_EXTRA_BYTES) || off != r->scan.pos) {
		rerr(r, "%s: malformed msgpack%s", where, ret == MSGPACK_UNPACK_NOMEM_ERROR ? " (out of memory)" : "");
		return -1;
	}
	r->held = r->scan.pos;
	return 1;
}

static int
header_count(const msgpack_object *o, const char *what, int64_t *v, char *why, size_t whylen)
{
	if (o->type == MSGPACK_OBJECT_NIL) {
		*v = -1;
		return 0;
	}
	if (mpu_get_i64(o, v) < 0 || *v < 0) {
		snprintf(why, whylen, "%s must be a non-negative integer or nil", what);
		return -1;
	}
	return 0;
}


static int
decode_header(StreamReader *r, const msgpack_object *o, char *why, size_t whylen)
{
	enum { K_FORMAT, K_VERSION, K_KIND, K_CLASSES, K_RPE, K_EPOCHS, K_START, K_META, K_PROV, K_N };
	static const char *const names[K_N] = { "format", "version", "kind", "classes", "records_per_epoch",
		                                    "epochs", "start_epoch", "meta", "provenance" };
	const msgpack_object *v[K_N];
	StreamHeader *h = &r->hdr;
	const msgpack_object *x;
	int64_t major, minor;
	int dup;

	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "not an ssl-stream (the first object is not a map)");
		return -1;
	}
	if ((dup = mpu_map_pick(o, names, K_N, v)) >= 0) {
		snprintf(why, whylen, "duplicate key '%s'", names[dup]);
		return -1;
	}
	x = v[K_FORMAT];
	if (!x || !mpu_key_is(x, STREAM_FORMAT)) {
		snprintf(why, whylen, "not an ssl-stream (format is not \"%s\")", STREAM_FORMAT);
		return -1;
	}
	x = v[K_VERSION];
	if (!x || x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size != 2 || mpu_get_i64(&x->via.array.ptr[0], &major) < 0
	    || mpu_get_i64(&x->via.array.ptr[1], &minor) < 0 || major < 0 || minor < 0 || major > INT32_MAX
	    || minor > INT32_MAX) {
		snprintf(why, whylen, "version must be [major, minor]");
		return -1;
	}
	if (major != STREAM_VERSION_MAJOR) {
		snprintf(why, whylen, "unsupported version %lld.%lld (this reader knows %d.x)", (long long)major,
		         (long long)minor, STREAM_VERSION_MAJOR);
		return -1;
	}
	h->version_major = (int)major;
	h->version_minor = (int)minor;
	x = v[K_KIND];
	if (!x || mpu_get_str(x, h->kind, sizeof h->kind) < 0 || !h->kind[0] || !utf8_valid(h->kind, strlen(h->kind))) {
		snprintf(why, whylen, "kind must be a UTF-8 string of 1 to %zu bytes", sizeof h->kind - 1);
		return -1;
	}
	if ((x = v[K_CLASSES])) {
		if (x->type != MSGPACK_OBJECT_ARRAY || x->via.array.size > INT32_MAX) {
			snprintf(why, whylen, "classes must be an array of strings");
			return -1;
		}
		h->classes = xcalloc(x->via.array.size ? x->via.array.size : 1, sizeof h->classes[0]);
		for (uint32_t i = 0; i < x->via.array.size; i++) {
			if (!(h->classes[i] = mpu_strdup_why(&x->via.array.ptr[i], "a class name", why, whylen)))
				return -1;
			h->nclasses++;
		}
	}
	h->records_per_epoch = h->epochs = -1;
	if (v[K_RPE] && header_count(v[K_RPE], "records_per_epoch", &h->records_per_epoch, why, whylen) < 0)
		return -1;
	if (v[K_EPOCHS] && header_count(v[K_EPOCHS], "epochs", &h->epochs, why, whylen) < 0)
		return -1;
	h->start_epoch = 0;
	if (v[K_START] && (mpu_get_i64(v[K_START], &h->start_epoch) < 0 || h->start_epoch < 0)) {
		snprintf(why, whylen, "start_epoch must be a non-negative integer");
		return -1;
	}
	if ((x = v[K_META])) {
		if (x->type != MSGPACK_OBJECT_MAP) {
			snprintf(why, whylen, "meta must be a map of strings");
			return -1;
		}
		h->meta = xcalloc(x->via.map.size ? x->via.map.size : 1, sizeof h->meta[0]);
		for (uint32_t i = 0; i < x->via.map.size; i++) {
			MetaEntry *m = &h->meta[h->nmeta];
			if (!(m->key = mpu_strdup_why(&x->via.map.ptr[i].key, "a meta key", why, whylen)))
				return -1;
			if (!(m->value = mpu_strdup_why(&x->via.map.ptr[i].val, "a meta value", why, whylen))) {
				free(m->key);
				return -1;
			}
			h->nmeta++;
		}
	}
	if ((x = v[K_PROV]) && provenance_decode(x, &h->prov, &h->nprov, why, whylen) < 0)
		return -1;
	return 0;
}

const StreamHeader *
stream_reader_header(StreamReader *r)
{
	msgpack_object o;
	char why[256];
	int s;
	if (r->state == RS_ERROR)
		return NULL;
	if (r->state != RS_START)
		return &r->hdr;
	s = next_object(r, &o, "header");
	if (s < 0)
		return NULL;
	if (s == 0) {
		rerr(r, "header: truncated stream (no data)");
		return NULL;
	}
	if (decode_header(r, &o, why, sizeof why) < 0) {
		rerr(r, "header: %s", why);
		return NULL;
	}
	r->state = RS_RECORDS;
	return &r->hdr;
}

static int
is_reserved(const msgpack_object *k)
{
	return mpu_key_is(k, "id") || mpu_key_is(k, "label") || mpu_key_is(k, "epoch") || mpu_key_is(k, "source")
	    || mpu_key_is(k, "end");
}

/* After the trailer only EOF may follow. */
static int
expect_eof(StreamReader *r)
{
	r->start += r->held;
	r->held = 0;
	if (r->start == r->end && !r->eof) {
		r->start = r->end = 0;
		if (fill(r) < 0)
			return -1;
	}
	if (r->end > r->start) {
		rerr(r, "trailer: data after the trailer");
		return -1;
	}
	return 0;
}

static int
decode_trailer(StreamReader *r, const msgpack_object *o)
{
	const msgpack_object *end = NULL, *records = NULL;
	int64_t n;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		if (mpu_key_is(&kv->key, "end"))
			end = &kv->val;
		else if (mpu_key_is(&kv->key, "records"))
			records = &kv->val;
	}
	if (end->type != MSGPACK_OBJECT_BOOLEAN || !end->via.boolean) {
		rerr(r, "trailer: 'end' must be true");
		return -1;
	}
	if (!records || mpu_get_i64(records, &n) < 0) {
		rerr(r, "trailer: 'records' must be an integer");
		return -1;
	}
	if (n != r->count) {
		rerr(r, "trailer: says %lld records, the stream has %lld", (long long)n, (long long)r->count);
		return -1;
	}
	if (expect_eof(r) < 0)
		return -1;
	r->state = RS_DONE;
	return 0;
}

/* Points t->data at an aligned copy when the bin is misaligned for its
 * dtype, so consumers may read float/int arrays directly. */
static void
align_tensor(StreamReader *r, Tensor *t, size_t *used)
{
	size_t isz = dtype_size(t->dtype), n = tensor_nbytes(t);
	if (((uintptr_t)t->data & (isz - 1)) == 0)
		return;
	if (!r->aligned || r->alignedcap < r->held + 64 * STREAM_MAX_TENSORS) {
		/* once per record at most: the object size bounds all its tensors */
		ASSERT(*used == 0);
		free(r->aligned);
		r->alignedcap = r->held + 64 * STREAM_MAX_TENSORS;
		r->aligned = xalloc_aligned(r->alignedcap);
	}
	memcpy(r->aligned + *used, t->data, n);
	t->data = r->aligned + *used;
	*used += (n + 63) & ~(size_t)63;
}

/* The one place where zero-sized images, views and embeddings are refused:
 * the tensor a kind fixes has no zero dimension (a consumer would divide by
 * it, or read pixels that are not there). */
static int
check_kind_tensor(StreamReader *r, const Record *rec, long long recno, const char *idbuf)
{
	static const char *const kinds[][2] = {
		{ STREAM_KIND_IMAGES, "image" }, { STREAM_KIND_VIEWS, "views" }, { STREAM_KIND_EMBEDDINGS, "embedding" },
	};
	for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
		if (strcmp(r->hdr.kind, kinds[k][0]) != 0)
			continue;
		for (int i = 0; i < rec->ntensors; i++) {
			const Tensor *t = &rec->tensors[i];
			char shape[200] = "";
			int zero = 0;
			if (strcmp(t->name, kinds[k][1]) != 0)
				continue;
			for (int j = 0; j < t->ndim; j++) {
				size_t n = strlen(shape);
				zero |= t->shape[j] == 0;
				snprintf(shape + n, sizeof shape - n, "%s%lld", j ? "x" : "", (long long)t->shape[j]);
			}
			if (zero) {
				rerr(r, "record %lld%s: tensor '%s' is %s: a stream of %s holds no empty ones", recno, idbuf,
				     t->name, shape, kinds[k][0]);
				return -1;
			}
		}
	}
	return 0;
}

static int
decode_record(StreamReader *r, const msgpack_object *o, Record *rec)
{
	const StreamHeader *h = &r->hdr;
	long long recno = (long long)r->count + 1;
	static const char *const names[] = { "id", "label", "epoch", "source" };
	const msgpack_object *v[4], *id, *label, *epoch, *source;
	char idbuf[40] = "", why[320];
	size_t used = 0;
	int dup;

	if ((dup = mpu_map_pick(o, names, 4, v)) >= 0) {
		rerr(r, "record %lld: duplicate key '%s'", recno, names[dup]);
		return -1;
	}
	id = v[0], label = v[1], epoch = v[2], source = v[3];
	memset(rec, 0, offsetof(Record, tensors));
	if (!id || mpu_get_i64(id, &rec->id) < 0 || rec->id < 0) {
		rerr(r, "record %lld: %s", recno, id ? "id must be a non-negative integer" : "missing 'id'");
		return -1;
	}
	snprintf(idbuf, sizeof idbuf, " (id %lld)", (long long)rec->id);
	if (!label || mpu_get_i64(label, &rec->label) < 0 || rec->label < -1
	    || (h->nclasses > 0 && rec->label >= h->nclasses)) {
		if (!label)
			snprintf(why, sizeof why, "missing 'label'");
		else if (mpu_get_i64(label, &rec->label) < 0)
			snprintf(why, sizeof why, "label must be an integer");
		else
			snprintf(why, sizeof why, "label %lld is outside [-1, %d)", (long long)rec->label,
			         h->nclasses > 0 ? h->nclasses : INT32_MAX);
		rerr(r, "record %lld%s: %s", recno, idbuf, why);
		return -1;
	}
	if (!epoch || mpu_get_i64(epoch, &rec->epoch) < 0) {
		rerr(r, "record %lld%s: %s", recno, idbuf, epoch ? "epoch must be an integer" : "missing 'epoch'");
		return -1;
	}
	if (rec->epoch < h->start_epoch || (h->epochs >= 0 && rec->epoch - h->start_epoch >= h->epochs)) {
		rerr(r, "record %lld%s: epoch %lld is outside the header's epochs", recno, idbuf, (long long)rec->epoch);
		return -1;
	}
	if (source) {
		if (source->type != MSGPACK_OBJECT_STR) {
			rerr(r, "record %lld%s: source must be a string, not %s", recno, idbuf, mpu_type_name(source->type));
			return -1;
		}
		if (memchr(source->via.str.ptr, '\0', source->via.str.size)) {
			rerr(r, "record %lld%s: source holds a NUL byte", recno, idbuf);
			return -1;
		}
		if (r->srccap < (size_t)source->via.str.size + 1) {
			r->srccap = (size_t)source->via.str.size + 64;
			free(r->src);
			r->src = xmalloc(r->srccap);
		}
		memcpy(r->src, source->via.str.ptr, source->via.str.size);
		r->src[source->via.str.size] = '\0';
		if (!utf8_valid(r->src, source->via.str.size)) {   /* as mpu_strdup: stray bytes as \xHH */
			char *e = str_utf8_escape(r->src);
			free(r->src);
			r->src = e;
			r->srccap = strlen(e) + 1;
		}
		rec->source = r->src;
	}
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object_kv *kv = &o->via.map.ptr[i];
		Tensor *t;
		if (kv->val.type != MSGPACK_OBJECT_MAP)
			continue; /* every map-valued entry is a tensor; other unknown keys are ignored */
		if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size == 0
		    || kv->key.via.str.size >= TENSOR_MAX_NAME || memchr(kv->key.via.str.ptr, '\0', kv->key.via.str.size)
		    || !utf8_valid(kv->key.via.str.ptr, kv->key.via.str.size) || is_reserved(&kv->key)) {
			rerr(r, "record %lld%s: a tensor name must be a UTF-8 string of 1 to %d bytes, not a reserved key",
			     recno, idbuf, TENSOR_MAX_NAME - 1);
			return -1;
		}
		if (rec->ntensors == STREAM_MAX_TENSORS) {
			rerr(r, "record %lld%s: more than %d tensors", recno, idbuf, STREAM_MAX_TENSORS);
			return -1;
		}
		t = &rec->tensors[rec->ntensors];
		if (tensor_unpack(&kv->val, t, r->max_bytes, why, sizeof why) < 0) {
			rerr(r, "record %lld%s: tensor '%.*s': %s", recno, idbuf, (int)kv->key.via.str.size,
			     kv->key.via.str.ptr, why);
			return -1;
		}
		memcpy(t->name, kv->key.via.str.ptr, kv->key.via.str.size);
		t->name[kv->key.via.str.size] = '\0';
		for (int j = 0; j < rec->ntensors; j++) {
			if (strcmp(rec->tensors[j].name, t->name) == 0) {
				rerr(r, "record %lld%s: duplicate tensor '%s'", recno, idbuf, t->name);
				return -1;
			}
		}
		align_tensor(r, t, &used);
		rec->ntensors++;
	}
	return check_kind_tensor(r, rec, recno, idbuf);
}

int
stream_reader_next(StreamReader *r, Record *rec)
{
	msgpack_object o;
	char where[64];
	int s;
	if (r->state == RS_START && !stream_reader_header(r))
		return -1;
	if (r->state == RS_ERROR)
		return -1;
	if (r->state == RS_DONE)
		return 0;
	snprintf(where, sizeof where, "record %lld", (long long)r->count + 1);
	s = next_object(r, &o, where);
	if (s < 0)
		return -1;
	if (s == 0) {
		rerr(r, "truncated stream (EOF after %lld records, no trailer)", (long long)r->count);
		return -1;
	}
	if (o.type != MSGPACK_OBJECT_MAP) {
		rerr(r, "%s: not a map", where);
		return -1;
	}
	if (mpu_map_get(&o, "end"))
		return decode_trailer(r, &o) < 0 ? -1 : 0;
	if (decode_record(r, &o, rec) < 0)
		return -1;
	r->count++;
	return 1;
}

StreamReader *
stream_reader_open_or_die(const char *path, const char *kind)
{
	StreamReader *r = stream_reader_open_path(path);
	const StreamHeader *h = stream_reader_header(r);
	if (!h)
		die("%s", stream_reader_error(r));
	if (kind && strcmp(h->kind, kind) != 0)
		die("%s: header: stream kind is '%s', expected '%s'", r->name, h->kind, kind);
	return r;
}
