/* msgfile: see msgfile.h. */
#include "io/msgfile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "io/msgpack_util.h"

/* ------------------------------------------------------------------ crc */

static uint32_t crc_table[256];

static void
crc_init_table(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

uint32_t
msgfile_crc32(uint32_t crc, const void *data, size_t len)
{
	const unsigned char *p = data;
	if (!crc_table[1])
		crc_init_table();
	crc = ~crc;
	for (size_t i = 0; i < len; i++)
		crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
	return ~crc;
}

/* -------------------------------------------------------------- writing */

static int
writer_write(void *data, const char *buf, size_t len)
{
	MsgFileWriter *w = data;
	if (w->failed)
		return -1;
	if (len && fwrite(buf, 1, len, w->af.fp) != len) {
		w->failed = 1;
		return -1;
	}
	w->crc = msgfile_crc32(w->crc, buf, len);
	w->bytes += len;
	return 0;
}

int
msgfile_writer_open(MsgFileWriter *w, const char *path, char *err, size_t errlen)
{
	memset(w, 0, sizeof *w);
	if (atomicfile_open(&w->af, path) < 0) {
		snprintf(err, errlen, "%s: cannot create a temporary file beside it: %s", path, strerror(errno));
		return -1;
	}
	setvbuf(w->af.fp, NULL, _IOFBF, 1 << 20);
	msgpack_packer_init(&w->pk, w, writer_write);
	return 0;
}

int
msgfile_writer_commit(MsgFileWriter *w, int pack_rc, char *err, size_t errlen)
{
	char path[1024];
	unsigned char tail[5];
	snprintf(path, sizeof path, "%s", w->af.path); /* commit and abort free it */
	pack_rc |= mpu_pack_str(&w->pk, "checksum");
	/* The value is written by hand so that its encoding (and so the bytes
	 * the CRC covers) is fixed: uint32, 0xce and 4 big-endian bytes. */
	tail[0] = 0xce;
	tail[1] = (unsigned char)(w->crc >> 24);
	tail[2] = (unsigned char)(w->crc >> 16);
	tail[3] = (unsigned char)(w->crc >> 8);
	tail[4] = (unsigned char)w->crc;
	if (!pack_rc && !w->failed && fwrite(tail, 1, sizeof tail, w->af.fp) != sizeof tail)
		w->failed = 1;
	if (pack_rc || w->failed) {
		int e = errno;
		snprintf(err, errlen, "%s: write failed: %s", path, w->failed && e ? strerror(e) : "packing error");
		atomicfile_abort(&w->af);
		return -1;
	}
	if (atomicfile_commit(&w->af) < 0) {
		snprintf(err, errlen, "%s: %s (the previous file, if any, is intact)", path, strerror(errno));
		return -1;
	}
	return 0;
}

void
msgfile_writer_abort(MsgFileWriter *w)
{
	atomicfile_abort(&w->af);
}

/* -------------------------------------------------------------- reading */

const char *
msgfile_identify(const unsigned char *b, size_t n, char *buf, size_t len)
{
	if (n >= 8 && memcmp(b, "\x89PNG\r\n\x1a\n", 8) == 0)
		return snprintf(buf, len, "a PNG image"), buf;
	if (n >= 3 && b[0] == 0xff && b[1] == 0xd8 && b[2] == 0xff)
		return snprintf(buf, len, "a JPEG image"), buf;
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return snprintf(buf, len, "a gzip file"), buf;
	if (n >= 9 && b[8] == '{' && !(b[0] & 0x80) && !b[7])
		return snprintf(buf, len, "a safetensors file"), buf;
	if (n && ((b[0] & 0xf0) == 0x80 || b[0] == 0xde || b[0] == 0xdf)) {
		/* a msgpack map: the first object of a stream is its header */
		MpuScan s;
		char why[128];
		msgpack_zone zone;
		msgpack_object o;
		size_t off = 0;
		const char *ret = NULL;
		mpu_scan_init(&s, 8, 1 << 16, 1 << 24);
		s.whole = 1;
		if (mpu_scan_step(&s, b, n, why, sizeof why) != 1 || !msgpack_zone_init(&zone, 4096))
			return NULL;
		if (msgpack_unpack((const char *)b, s.pos, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS
		    && o.type == MSGPACK_OBJECT_MAP) {
			char fmt[64], kind[64];
			const msgpack_object *f = mpu_map_get(&o, "format"), *k = mpu_map_get(&o, "kind");
			if (f && mpu_get_str(f, fmt, sizeof fmt) == 0) {
				if (k && mpu_get_str(k, kind, sizeof kind) == 0)
					snprintf(buf, len, "an %s of kind \"%s\"", fmt, kind);
				else
					snprintf(buf, len, "an %s file", fmt);
				ret = buf;
			}
		}
		msgpack_zone_destroy(&zone);
		return ret;
	}
	for (size_t i = 0; i < n && i < 512; i++)
		if (b[i] < 0x09 || (b[i] > 0x0d && b[i] < 0x20) || b[i] == 0x7f)
			return NULL;
	return n ? (snprintf(buf, len, "a text file"), buf) : NULL;
}

static int
read_file(MsgFile *f, const char *path, const MsgFileSpec *spec, char *why, size_t whylen)
{
	FILE *fp = fopen(path, "rb");
	struct stat st;
	if (!fp) {
		snprintf(why, whylen, "%s", strerror(errno));
		return -1;
	}
	if (fstat(fileno(fp), &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "not a regular file");
		fclose(fp);
		return -1;
	}
	if (st.st_size > spec->max_bytes) {
		snprintf(why, whylen, "%lld bytes is larger than any %s (limit %lld)", (long long)st.st_size, spec->what,
		         (long long)spec->max_bytes);
		fclose(fp);
		return -1;
	}
	f->bytes = xmalloc(st.st_size ? (size_t)st.st_size : 1);
	if (fread(f->bytes, 1, (size_t)st.st_size, fp) != (size_t)st.st_size) {
		snprintf(why, whylen, "read error: %s", ferror(fp) ? strerror(errno) : "the file shrank while reading");
		fclose(fp);
		return -1;
	}
	fclose(fp);
	f->size = (size_t)st.st_size;
	return 0;
}

static int
check(MsgFile *f, const MsgFileSpec *spec, char *why, size_t whylen)
{
	const msgpack_object *o;
	char kind[128];
	const char *is;
	MpuScan scan;
	size_t off = 0;
	int s;

	if (f->size == 0) {
		snprintf(why, whylen, "empty file, not an ssl-tools %s", spec->what);
		return -1;
	}
	if ((f->bytes[0] & 0xf0) != 0x80 && f->bytes[0] != 0xde && f->bytes[0] != 0xdf) {
		is = msgfile_identify(f->bytes, f->size, kind, sizeof kind);
		snprintf(why, whylen, "not an ssl-tools %s (%s)", spec->what, is ? is : "does not start with a msgpack map");
		return -1;
	}
	mpu_scan_init(&scan, spec->max_depth, UINT64_MAX, UINT64_MAX);
	scan.whole = 1;
	s = mpu_scan_step(&scan, f->bytes, f->size, why, whylen);
	if (s < 0)
		return -1;
	if (s == 0 || msgpack_unpack((const char *)f->bytes, scan.pos, &off, &f->zone, &f->root) != MSGPACK_UNPACK_SUCCESS
	    || f->root.type != MSGPACK_OBJECT_MAP) {
		if (s == 0) {
			snprintf(why, whylen, "truncated file (%zu bytes, the data stops inside the map)", f->size);
			return -1;
		}
		snprintf(why, whylen, "malformed msgpack");
		return -1;
	}
	if (!(o = mpu_map_get(&f->root, "format")) || !mpu_key_is(o, spec->format)) {
		is = msgfile_identify(f->bytes, f->size, kind, sizeof kind);
		snprintf(why, whylen, "not an ssl-tools %s (%s)", spec->what, is ? is : "'format' is missing");
		return -1;
	}
	if (scan.pos != f->size) {
		snprintf(why, whylen, "%zu bytes of garbage after the %s", f->size - scan.pos, spec->what);
		return -1;
	}
	if (msgfile_check_keys(&f->root, spec->what, why, whylen) < 0)
		return -1;
	if (!(o = mpu_map_get(&f->root, "version")) || o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 2
	    || mpu_get_i64(&o->via.array.ptr[0], &f->major) < 0 || mpu_get_i64(&o->via.array.ptr[1], &f->minor) < 0) {
		snprintf(why, whylen, "'version' must be [major, minor]");
		return -1;
	}
	if (f->major != spec->major) {
		snprintf(why, whylen, "%s version %lld.%lld is not supported (this is %d.%d)", spec->what,
		         (long long)f->major, (long long)f->minor, spec->major, spec->minor);
		return -1;
	}
	/* The checksum: the last key, its value the file's last 5 bytes. */
	{
		const msgpack_object_kv *last = f->root.via.map.size ? &f->root.via.map.ptr[f->root.via.map.size - 1] : NULL;
		const unsigned char *t = f->bytes + f->size - 5;
		uint32_t want, got;
		if (!last || !mpu_key_is(&last->key, "checksum") || f->size < 6 || t[0] != 0xce) {
			snprintf(why, whylen, "no checksum at the end of the file (corrupt, or not written by %s)",
			         spec->writer);
			return -1;
		}
		want = (uint32_t)t[1] << 24 | (uint32_t)t[2] << 16 | (uint32_t)t[3] << 8 | t[4];
		got = msgfile_crc32(0, f->bytes, f->size - 5);
		if (want != got) {
			snprintf(why, whylen, "checksum mismatch (file says %08x, contents give %08x): the file is corrupt",
			         want, got);
			return -1;
		}
	}
	return 0;
}

int
msgfile_load(MsgFile *f, const char *path, const MsgFileSpec *spec, char *why, size_t whylen)
{
	memset(f, 0, sizeof *f);
	if (!msgpack_zone_init(&f->zone, 64 * 1024)) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	f->zone_ok = 1;
	if (read_file(f, path, spec, why, whylen) < 0 || check(f, spec, why, whylen) < 0) {
		msgfile_free(f);
		return -1;
	}
	return 0;
}

void
msgfile_free(MsgFile *f)
{
	if (f->zone_ok)
		msgpack_zone_destroy(&f->zone);
	free(f->bytes);
	memset(f, 0, sizeof *f);
}

/* ------------------------------------------------------------- getters */

int
msgfile_check_keys(const msgpack_object *m, const char *sect, char *why, size_t whylen)
{
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		const msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR) {
			snprintf(why, whylen, "%s: a key is not a string", sect);
			return -1;
		}
		for (uint32_t j = 0; j < i; j++) {
			const msgpack_object *q = &m->via.map.ptr[j].key;
			if (q->via.str.size == k->via.str.size && memcmp(q->via.str.ptr, k->via.str.ptr, k->via.str.size) == 0) {
				snprintf(why, whylen, "%s: duplicate key '%.*s'", sect,
				         (int)(k->via.str.size > 64 ? 64 : k->via.str.size), k->via.str.ptr);
				return -1;
			}
		}
	}
	return 0;
}

const msgpack_object *
msgfile_need(const msgpack_object *m, const char *sect, const char *key, char *why, size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	if (!o)
		snprintf(why, whylen, "%s: missing '%s'", sect, key);
	return o;
}

int
msgfile_get_int(const msgpack_object *m, const char *sect, const char *key, int64_t min, int64_t max, int64_t *v,
                char *why, size_t whylen)
{
	const msgpack_object *o = msgfile_need(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_i64(o, v) < 0 || *v < min || *v > max) {
		snprintf(why, whylen, "%s: '%s' must be an integer in [%lld, %lld]", sect, key, (long long)min,
		         (long long)max);
		return -1;
	}
	return 0;
}

int
msgfile_get_f64(const msgpack_object *m, const char *sect, const char *key, double *v, char *why, size_t whylen)
{
	const msgpack_object *o = msgfile_need(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_f64(o, v) < 0 || !isfinite(*v)) {
		snprintf(why, whylen, "%s: '%s' must be a finite number", sect, key);
		return -1;
	}
	return 0;
}

int
msgfile_get_bool(const msgpack_object *m, const char *sect, const char *key, int *v, char *why, size_t whylen)
{
	const msgpack_object *o = msgfile_need(m, sect, key, why, whylen);
	if (!o)
		return -1;
	if (mpu_get_bool(o, v) < 0) {
		snprintf(why, whylen, "%s: '%s' must be a boolean", sect, key);
		return -1;
	}
	return 0;
}

int
msgfile_get_map(const msgpack_object *m, const char *sect, const char *key, int required, const msgpack_object **out,
                char *why, size_t whylen)
{
	const msgpack_object *o = mpu_map_get(m, key);
	*out = NULL;
	if (!o) {
		if (!required)
			return 0;
		snprintf(why, whylen, "%smissing '%s'", sect, key);
		return -1;
	}
	if (o->type != MSGPACK_OBJECT_MAP) {
		snprintf(why, whylen, "%s'%s' must be a map", sect, key);
		return -1;
	}
	*out = o;
	return msgfile_check_keys(o, key, why, whylen);
}
