/* safetensors: see safetensors.h.
 *
 * jansson parses and writes the JSON header: it is in Debian
 * (libjansson-dev), has a small C API, a strict parser that reports the
 * byte position of an error and refuses duplicate keys on request, and the
 * project already uses it for --json outputs (ssl-info, ssl-probe). */
#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/atomicfile.h"
#include "base/util.h"


static const struct {
	const char *name;
	size_t      size;
} dtypes[] = {
	[ST_BOOL] = { "BOOL", 1 }, [ST_U8] = { "U8", 1 },     [ST_I8] = { "I8", 1 },     [ST_I16] = { "I16", 2 },
	[ST_U16] = { "U16", 2 },   [ST_I32] = { "I32", 4 },   [ST_U32] = { "U32", 4 },   [ST_I64] = { "I64", 8 },
	[ST_U64] = { "U64", 8 },   [ST_F16] = { "F16", 2 },   [ST_BF16] = { "BF16", 2 }, [ST_F32] = { "F32", 4 },
	[ST_F64] = { "F64", 8 },   [ST_F8_E5M2] = { "F8_E5M2", 1 }, [ST_F8_E4M3] = { "F8_E4M3", 1 },
};
#define NDTYPES ((int)(sizeof dtypes / sizeof dtypes[0]))

const char *
safetensors_dtype_name(StDType d)
{
	return (int)d >= 0 && (int)d < NDTYPES ? dtypes[d].name : "?";
}

int
safetensors_dtype_parse(const char *s, StDType *out)
{
	for (int i = 0; i < NDTYPES; i++)
		if (strcmp(s, dtypes[i].name) == 0) {
			*out = (StDType)i;
			return 0;
		}
	return -1;
}

size_t
safetensors_dtype_size(StDType d)
{
	return (int)d >= 0 && (int)d < NDTYPES ? dtypes[d].size : 0;
}

/* "[64, 3, 3, 3]" (PyTorch's way of printing a shape) into buf. */
const char *
safetensors_shape_str(const int64_t *shape, int ndim, char *buf, size_t len)
{
	size_t u = (size_t)snprintf(buf, len, "[");
	for (int d = 0; d < ndim && u < len; d++)
		u += (size_t)snprintf(buf + u, len - u, "%s%lld", d ? ", " : "", (long long)shape[d]);
	if (u < len)
		snprintf(buf + u, len - u, "]");
	return buf;
}

/* --------------------------------------------------------------- reading */

void
safetensors_free(SafeTensors *st)
{
	for (int i = 0; i < st->ntensors; i++)
		free(st->t[i].name);
	for (int i = 0; i < st->nmeta; i++) {
		free(st->meta[i].key);
		free(st->meta[i].value);
	}
	free(st->t);
	free(st->meta);
	free(st->bytes);
	free(st->name);
	memset(st, 0, sizeof *st);
}

/* A JSON integer in [0, max], or -1. */
static int
json_u64(const json_t *j, uint64_t max, uint64_t *out)
{
	if (!json_is_integer(j) || json_integer_value(j) < 0 || (uint64_t)json_integer_value(j) > max)
		return -1;
	*out = (uint64_t)json_integer_value(j);
	return 0;
}

static int
parse_meta(SafeTensors *st, json_t *m, char *why, size_t whylen)
{
	const char *k;
	json_t *v;
	if (!json_is_object(m)) {
		snprintf(why, whylen, "'__metadata__' is not an object");
		return -1;
	}
	st->meta = xcalloc(json_object_size(m) ? json_object_size(m) : 1, sizeof *st->meta);
	json_object_foreach(m, k, v) {
		if (!json_is_string(v)) {
			snprintf(why, whylen, "'__metadata__' value of '%.64s' is not a string", k);
			return -1;
		}
		st->meta[st->nmeta].key = xstrdup(k);
		st->meta[st->nmeta].value = xstrdup(json_string_value(v));
		st->nmeta++;
	}
	return 0;
}

static int
parse_tensor(StTensor *t, const char *name, json_t *v, uint64_t data_size, char *why, size_t whylen)
{
	json_t *dt, *shape, *off;
	uint64_t b, e, nbytes;
	char s[160];
	t->name = xstrdup(name);
	if (!*name) {
		snprintf(why, whylen, "a tensor has an empty name");
		return -1;
	}
	if (!json_is_object(v)) {
		snprintf(why, whylen, "tensor '%.100s': not an object", name);
		return -1;
	}
	dt = json_object_get(v, "dtype");
	shape = json_object_get(v, "shape");
	off = json_object_get(v, "data_offsets");
	if (!dt || !shape || !off) {
		snprintf(why, whylen, "tensor '%.100s': '%s' is missing", name, !dt ? "dtype" : !shape ? "shape" : "data_offsets");
		return -1;
	}
	if (!json_is_string(dt) || safetensors_dtype_parse(json_string_value(dt), &t->dtype) < 0) {
		snprintf(why, whylen, "tensor '%.100s': unknown dtype %.32s", name,
		         json_is_string(dt) ? json_string_value(dt) : "(not a string)");
		return -1;
	}
	if (!json_is_array(shape) || json_array_size(shape) > SAFETENSORS_MAX_DIM) {
		snprintf(why, whylen, "tensor '%.100s': shape is not an array of at most %d dims", name, SAFETENSORS_MAX_DIM);
		return -1;
	}
	t->ndim = (int)json_array_size(shape);
	for (int d = 0; d < t->ndim; d++) {
		uint64_t n;
		if (json_u64(json_array_get(shape, (size_t)d), INT64_MAX, &n) < 0) {
			snprintf(why, whylen, "tensor '%.100s': shape[%d] is not a non-negative integer", name, d);
			return -1;
		}
		t->shape[d] = (int64_t)n;
	}
	if (!json_is_array(off) || json_array_size(off) != 2 || json_u64(json_array_get(off, 0), UINT64_MAX, &b) < 0 ||
	    json_u64(json_array_get(off, 1), UINT64_MAX, &e) < 0) {
		snprintf(why, whylen, "tensor '%.100s': data_offsets is not [begin, end] in non-negative integers", name);
		return -1;
	}
	if (b > e || e > data_size) {
		snprintf(why, whylen, "tensor '%.100s': data_offsets [%llu, %llu] outside the data area (%llu bytes)", name,
		         (unsigned long long)b, (unsigned long long)e, (unsigned long long)data_size);
		return -1;
	}
	t->numel = tensor_numel_checked(t->shape, t->ndim, 0);
	if (t->numel < 0 || (uint64_t)t->numel > UINT64_MAX / safetensors_dtype_size(t->dtype)) {
		snprintf(why, whylen, "tensor '%.100s': shape %s overflows", name, safetensors_shape_str(t->shape, t->ndim, s, sizeof s));
		return -1;
	}
	nbytes = (uint64_t)t->numel * safetensors_dtype_size(t->dtype);
	if (nbytes != e - b) {
		snprintf(why, whylen, "tensor '%.100s': shape %s of %s is %llu bytes, data_offsets [%llu, %llu] hold %llu", name,
		         safetensors_shape_str(t->shape, t->ndim, s, sizeof s), safetensors_dtype_name(t->dtype),
		         (unsigned long long)nbytes, (unsigned long long)b, (unsigned long long)e,
		         (unsigned long long)(e - b));
		return -1;
	}
	t->begin = b;
	t->end = e;
	return 0;
}

typedef struct {
	uint64_t begin, end;
	int      i;
} Range;

static int
by_offset(const void *a, const void *b)
{
	const Range *x = a, *y = b;
	if (x->begin != y->begin)
		return x->begin < y->begin ? -1 : 1;
	if (x->end != y->end)
		return x->end < y->end ? -1 : 1;
	return 0;
}

/* The byte ranges, sorted, must tile [0, data_size): no overlap, no gap. */
static int
check_tiling(const SafeTensors *st, uint64_t data_size, char *why, size_t whylen)
{
	Range *r = xcalloc(st->ntensors ? (size_t)st->ntensors : 1, sizeof *r);
	uint64_t pos = 0;
	int rc = 0;
	for (int i = 0; i < st->ntensors; i++)
		r[i] = (Range){ st->t[i].begin, st->t[i].end, i };
	qsort(r, (size_t)st->ntensors, sizeof *r, by_offset);
	for (int i = 0; i < st->ntensors && !rc; i++) {
		const StTensor *t = &st->t[r[i].i];
		if (t->begin < pos) {
			snprintf(why, whylen, "tensor '%.100s': data_offsets [%llu, %llu] overlap those of '%.100s'", t->name,
			         (unsigned long long)t->begin, (unsigned long long)t->end, st->t[r[i - 1].i].name);
			rc = -1;
		} else if (t->begin > pos) {
			snprintf(why, whylen, "tensor '%.100s': %llu unused bytes before its data_offsets [%llu, %llu]", t->name,
			         (unsigned long long)(t->begin - pos), (unsigned long long)t->begin, (unsigned long long)t->end);
			rc = -1;
		}
		pos = t->end;
	}
	if (!rc && pos != data_size) {
		snprintf(why, whylen, "%llu bytes after the last tensor's data", (unsigned long long)(data_size - pos));
		rc = -1;
	}
	free(r);
	return rc;
}

static int
parse(SafeTensors *st, char *why, size_t whylen)
{
	const unsigned char *p = st->bytes;
	uint64_t n = 0, data_size;
	json_error_t jerr;
	json_t *root, *v;
	const char *k;
	int rc = -1;
	if (st->size < 8) {
		snprintf(why, whylen, "%zu bytes: too short for a safetensors file (8-byte header length)", st->size);
		return -1;
	}
	for (int i = 7; i >= 0; i--)
		n = n << 8 | p[i];
	if (n < 2 || n > SAFETENSORS_MAX_HEADER) {
		snprintf(why, whylen, "header length %llu not in [2, %u] (not a safetensors file?)", (unsigned long long)n,
		         SAFETENSORS_MAX_HEADER);
		return -1;
	}
	if (n > st->size - 8) {
		snprintf(why, whylen, "header length %llu runs past the end of the file (%zu bytes; truncated?)",
		         (unsigned long long)n, st->size);
		return -1;
	}
	if (p[8] != '{') {
		snprintf(why, whylen, "the header does not start with '{' (not a safetensors file?)");
		return -1;
	}
	data_size = st->size - 8 - n;
	root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(why, whylen, "header: JSON error at byte %d: %s", jerr.position, jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(why, whylen, "header: not a JSON object");
		goto out;
	}
	st->t = xcalloc(json_object_size(root) ? json_object_size(root) : 1, sizeof *st->t);
	json_object_foreach(root, k, v) {
		if (strcmp(k, "__metadata__") == 0) {
			if (parse_meta(st, v, why, whylen) < 0)
				goto out;
			continue;
		}
		StTensor *t = &st->t[st->ntensors++];
		if (parse_tensor(t, k, v, data_size, why, whylen) < 0)
			goto out;
		t->data = p + 8 + n + t->begin;
	}
	rc = check_tiling(st, data_size, why, whylen);
out:
	json_decref(root);
	return rc;
}

int
safetensors_parse(SafeTensors *st, const void *bytes, size_t size, const char *name, char *err, size_t errlen)
{
	char why[512];
	memset(st, 0, sizeof *st);
	st->name = xstrdup(name);
	st->size = size;
	st->bytes = xmalloc(size ? size : 1);
	if (size)
		memcpy(st->bytes, bytes, size);
	if (parse(st, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", name, why);
		safetensors_free(st);
		return -1;
	}
	return 0;
}

int
safetensors_open(SafeTensors *st, const char *path, char *err, size_t errlen)
{
	char why[512];
	struct stat sb;
	int fd;
	size_t got = 0;
	memset(st, 0, sizeof *st);
	if ((fd = open(path, O_RDONLY)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(sb.st_mode)) {
		snprintf(err, errlen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	if ((uint64_t)sb.st_size > SIZE_MAX / 2) {
		snprintf(err, errlen, "%s: too large", path);
		close(fd);
		return -1;
	}
	st->name = xstrdup(path);
	st->size = (size_t)sb.st_size;
	st->bytes = xmalloc(st->size ? st->size : 1);
	while (got < st->size) {
		ssize_t r = read(fd, st->bytes + got, st->size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			snprintf(err, errlen, "%s: %s", path, r < 0 ? strerror(errno) : "the file shrank while being read");
			close(fd);
			safetensors_free(st);
			return -1;
		}
		got += (size_t)r;
	}
	close(fd);
	if (parse(st, why, sizeof why) < 0) {
		snprintf(err, errlen, "%s: %s", path, why);
		safetensors_free(st);
		return -1;
	}
	return 0;
}

int
safetensors_sniff(const char *path)
{
	unsigned char b[9];
	uint64_t n = 0;
	FILE *fp = fopen(path, "rb");
	size_t got = fp ? fread(b, 1, sizeof b, fp) : 0;
	if (fp)
		fclose(fp);
	if (got != sizeof b)
		return 0;
	for (int i = 7; i >= 0; i--)
		n = n << 8 | b[i];
	return n >= 2 && b[8] == '{';
}

const StTensor *
safetensors_find(const SafeTensors *st, const char *name)
{
	for (int i = 0; i < st->ntensors; i++)
		if (strcmp(st->t[i].name, name) == 0)
			return &st->t[i];
	return NULL;
}

const char *
safetensors_meta(const SafeTensors *st, const char *key)
{
	for (int i = 0; i < st->nmeta; i++)
		if (strcmp(st->meta[i].key, key) == 0)
			return st->meta[i].value;
	return NULL;
}

/* IEEE binary16 to float, exactly (subnormals, infinities, NaN). */
static float
half_to_float(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ff, bits;
	float f;
	if (e == 0) {
		f = ldexpf((float)m, -24);
		return sign ? -f : f;
	}
	if (e == 31)
		bits = sign | 0x7f800000u | (m << 13);
	else
		bits = sign | ((e + 112) << 23) | (m << 13);
	memcpy(&f, &bits, sizeof f);
	return f;
}

int
safetensors_read_f32(const StTensor *t, float *out, char *err, size_t errlen)
{
	const unsigned char *p = t->data;
	for (int64_t i = 0; i < t->numel; i++) {
		float f;
		switch (t->dtype) {
		case ST_F32: memcpy(&f, p + 4 * i, 4); break;
		case ST_F64: {
			double d;
			memcpy(&d, p + 8 * i, 8);
			f = (float)d;
			break;
		}
		case ST_F16: {
			uint16_t h;
			memcpy(&h, p + 2 * i, 2);
			f = half_to_float(h);
			break;
		}
		case ST_BF16: {
			uint16_t h;
			uint32_t bits;
			memcpy(&h, p + 2 * i, 2);
			bits = (uint32_t)h << 16;
			memcpy(&f, &bits, 4);
			break;
		}
		default:
			snprintf(err, errlen, "'%s': dtype %s, a float type (F32, F64, F16, BF16) expected", t->name,
			         safetensors_dtype_name(t->dtype));
			return -1;
		}
		if (!isfinite(f)) {
			snprintf(err, errlen, "'%s': element %lld is not finite%s", t->name, (long long)i,
			         t->dtype == ST_F64 ? " as float32" : "");
			return -1;
		}
		out[i] = f;
	}
	return 0;
}

/* --------------------------------------------------------------- writing */

int
safetensors_write(const char *path, const StWriteTensor *t, int n, const StMeta *meta, int nmeta, char *err,
                  size_t errlen)
{
	json_t *root = json_object(), *m;
	uint64_t *nbytes = xcalloc(n ? (size_t)n : 1, sizeof *nbytes), *begin = xcalloc(n ? (size_t)n : 1, sizeof *begin);
	char *hdr = NULL;
	int rc = -1;
	uint64_t pos = 0;
	size_t hlen, padded;
	AtomicFile af;
	if (nmeta > 0) {
		m = json_object();
		json_object_set_new(root, "__metadata__", m);
		for (int i = 0; i < nmeta; i++)
			if (json_object_set_new(m, meta[i].key, json_string(meta[i].value)) < 0) {
				snprintf(err, errlen, "%s: metadata '%s': not UTF-8", path, meta[i].key);
				goto out;
			}
	}
	for (int i = 0; i < n; i++) {
		int64_t numel = tensor_numel_checked(t[i].shape, t[i].ndim, INT64_C(1) << 40);
		if ((t[i].dtype != ST_F32 && t[i].dtype != ST_I64) || t[i].ndim < 0 || t[i].ndim > SAFETENSORS_MAX_DIM ||
		    numel < 0) {
			snprintf(err, errlen, "%s: '%s': unsupported dtype or shape", path, t[i].name);
			goto out;
		}
		if (!*t[i].name || strcmp(t[i].name, "__metadata__") == 0 || json_object_get(root, t[i].name)) {
			snprintf(err, errlen, "%s: '%s': empty, reserved or repeated tensor name", path, t[i].name);
			goto out;
		}
		nbytes[i] = (uint64_t)numel * safetensors_dtype_size(t[i].dtype);
		if (json_object_set_new(root, t[i].name, json_null()) < 0) { /* keeps the order; filled below */
			snprintf(err, errlen, "%s: tensor name '%s' is not UTF-8", path, t[i].name);
			goto out;
		}
	}
	/* Largest items first: with the data area 8-aligned, every tensor is
	 * aligned to its item size (what zero-copy loaders want). */
	for (size_t isz = 8; isz >= 1; isz /= 2)
		for (int i = 0; i < n; i++)
			if (safetensors_dtype_size(t[i].dtype) == isz) {
				begin[i] = pos;
				pos += nbytes[i];
			}
	for (int i = 0; i < n; i++) {
		json_t *shape = json_array();
		for (int d = 0; d < t[i].ndim; d++)
			json_array_append_new(shape, json_integer(t[i].shape[d]));
		json_object_set_new(root, t[i].name,
		                    json_pack("{s:s, s:o, s:[I, I]}", "dtype", safetensors_dtype_name(t[i].dtype), "shape",
		                              shape, "data_offsets", (json_int_t)begin[i], (json_int_t)(begin[i] + nbytes[i])));
	}
	if (!(hdr = json_dumps(root, JSON_COMPACT))) {
		snprintf(err, errlen, "%s: the header could not be formatted (invalid UTF-8 in a name or metadata?)", path);
		goto out;
	}
	hlen = strlen(hdr);
	padded = (hlen + 7) / 8 * 8;
	if (padded > SAFETENSORS_MAX_HEADER) {
		snprintf(err, errlen, "%s: header of %zu bytes is above the format's limit", path, padded);
		goto out;
	}
	if (atomicfile_open(&af, path) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto out;
	}
	{
		unsigned char len8[8];
		int bad = 0;
		for (int i = 0; i < 8; i++)
			len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
		bad |= fwrite(len8, 1, 8, af.fp) != 8;
		bad |= fwrite(hdr, 1, hlen, af.fp) != hlen;
		for (size_t i = hlen; i < padded; i++)
			bad |= putc(' ', af.fp) == EOF;
		for (size_t isz = 8; isz >= 1 && !bad; isz /= 2)
			for (int i = 0; i < n && !bad; i++)
				if (safetensors_dtype_size(t[i].dtype) == isz && nbytes[i])
					bad |= fwrite(t[i].data, 1, (size_t)nbytes[i], af.fp) != nbytes[i];
		if (bad) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno ? errno : EIO));
			atomicfile_abort(&af);
			goto out;
		}
		if (atomicfile_commit(&af) < 0) {
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
			goto out;
		}
	}
	rc = 0;
out:
	free(hdr);
	free(nbytes);
	free(begin);
	json_decref(root);
	return rc;
}
