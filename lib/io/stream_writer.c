/* stream_writer: writing an ssl-tools tensor stream (stream.h,
 * man/ssl-stream.5): the header, one msgpack map per record, and the
 * trailer that tells a reader the stream is whole. Buffered; a terminal is
 * refused as the output. */
#include "io/stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/msgpack_util.h"
#include "base/util.h"

#define WRITE_BUF (256 * 1024)

struct StreamWriter {
	FILE          *fp;
	char          *name;
	msgpack_packer pk;
	int            err;
	int64_t        count;
	char          *buf;   /* msgpack-c emits many small pieces; gathered here */
	size_t         len;
};

static int
writer_flush(StreamWriter *w)
{
	if (w->len > 0 && !w->err && fwrite(w->buf, 1, w->len, w->fp) != w->len)
		w->err = errno ? errno : EIO;
	w->len = 0;
	return w->err ? -1 : 0;
}

/* Small pieces are copied into our buffer; a large payload that does not
 * fit goes to the FILE directly. Without this a 3 KB record costs a write
 * syscall through the FILE's 4 KiB buffer. */
static int
writer_cb(void *data, const char *buf, size_t len)
{
	StreamWriter *w = data;
	if (w->err)
		return -1;
	if (len > WRITE_BUF - w->len) {
		if (writer_flush(w) < 0)
			return -1;
		if (len >= WRITE_BUF / 2) {
			if (fwrite(buf, 1, len, w->fp) != len) {
				w->err = errno ? errno : EIO;
				return -1;
			}
			return 0;
		}
	}
	if (len > 0)
		memcpy(w->buf + w->len, buf, len);
	w->len += len;
	return 0;
}

static void
pack_header(StreamWriter *w, const StreamHeader *h)
{
	msgpack_packer *pk = &w->pk;
	msgpack_pack_map(pk, 9);
	mpu_pack_str(pk, "format");
	mpu_pack_str(pk, STREAM_FORMAT);
	mpu_pack_str(pk, "version");
	msgpack_pack_array(pk, 2);
	msgpack_pack_int(pk, STREAM_VERSION_MAJOR);
	msgpack_pack_int(pk, STREAM_VERSION_MINOR);
	mpu_pack_str(pk, "kind");
	mpu_pack_str(pk, h->kind);
	mpu_pack_str(pk, "classes");
	msgpack_pack_array(pk, (size_t)h->nclasses);
	for (int i = 0; i < h->nclasses; i++)
		mpu_pack_str(pk, h->classes[i]);
	mpu_pack_str(pk, "records_per_epoch");
	if (h->records_per_epoch < 0)
		msgpack_pack_nil(pk);
	else
		msgpack_pack_int64(pk, h->records_per_epoch);
	mpu_pack_str(pk, "epochs");
	if (h->epochs < 0)
		msgpack_pack_nil(pk);
	else
		msgpack_pack_int64(pk, h->epochs);
	mpu_pack_str(pk, "start_epoch");
	msgpack_pack_int64(pk, h->start_epoch);
	mpu_pack_str(pk, "meta");
	msgpack_pack_map(pk, (size_t)h->nmeta);
	for (int i = 0; i < h->nmeta; i++) {
		mpu_pack_str(pk, h->meta[i].key);
		mpu_pack_str(pk, h->meta[i].value);
	}
	mpu_pack_str(pk, "provenance");
	provenance_pack(pk, h->prov, h->nprov);
}

StreamWriter *
stream_writer_open(FILE *fp, const char *name, const StreamHeader *h)
{
	StreamWriter *w;
	int fd = fileno(fp);
	if (fd >= 0 && isatty(fd)) {
		errno = ENOTTY;
		return NULL;
	}
	w = xcalloc(1, sizeof *w);
	w->fp = fp;
	w->name = xstrdup(name ? name : "<stdout>");
	w->buf = xmalloc(WRITE_BUF);
	msgpack_packer_init(&w->pk, w, writer_cb);
	errno = 0;
	pack_header(w, h);
	/* the header goes out at once: a consumer can start on it */
	if (writer_flush(w) < 0) {
		int e = w->err;
		stream_writer_abort(w);
		errno = e;
		return NULL;
	}
	return w;
}

int
stream_writer_put(StreamWriter *w, const Record *rec)
{
	msgpack_packer *pk = &w->pk;
	ASSERT(rec->ntensors >= 0 && rec->ntensors <= STREAM_MAX_TENSORS);
	if (w->err)
		return -1;
	msgpack_pack_map(pk, 3 + (rec->source ? 1 : 0) + (size_t)rec->ntensors);
	mpu_pack_str(pk, "id");
	msgpack_pack_int64(pk, rec->id);
	mpu_pack_str(pk, "label");
	msgpack_pack_int64(pk, rec->label);
	mpu_pack_str(pk, "epoch");
	msgpack_pack_int64(pk, rec->epoch);
	if (rec->source) {
		mpu_pack_str(pk, "source");
		mpu_pack_str(pk, rec->source);
	}
	for (int i = 0; i < rec->ntensors; i++) {
		const Tensor *t = &rec->tensors[i];
		ASSERT(t->name[0] != '\0');
		mpu_pack_str(pk, t->name);
		tensor_pack(pk, t);
	}
	if (w->err)
		return -1;
	w->count++;
	return 0;
}

int
stream_writer_close(StreamWriter *w)
{
	int rc;
	if (!w)
		return -1;
	msgpack_pack_map(&w->pk, 2);
	mpu_pack_str(&w->pk, "end");
	msgpack_pack_true(&w->pk);
	mpu_pack_str(&w->pk, "records");
	msgpack_pack_int64(&w->pk, w->count);
	writer_flush(w);
	rc = w->err || fflush(w->fp) == EOF || ferror(w->fp) ? -1 : 0;
	free(w->buf);
	free(w->name);
	free(w);
	return rc;
}

void
stream_writer_abort(StreamWriter *w)
{
	if (!w)
		return;
	writer_flush(w); /* what was written stays readable, up to the missing trailer */
	fflush(w->fp);
	free(w->buf);
	free(w->name);
	free(w);
}

int64_t
stream_writer_count(const StreamWriter *w)
{
	return w->count;
}

StreamWriter *
stream_writer_stdout_or_die(const StreamHeader *h)
{
	StreamWriter *w;
	if (isatty(STDOUT_FILENO))
		die("<stdout>: refusing to write a binary stream to a terminal; redirect or pipe it");
	/* a larger buffer: records are kilobytes and pipes take 64 KiB */
	setvbuf(stdout, NULL, _IOFBF, 1 << 16);
	w = stream_writer_open(stdout, "<stdout>", h);
	if (!w)
		die("<stdout>: write error:");
	return w;
}
