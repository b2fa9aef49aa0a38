/* The hostile-input corpus: inputs from strangers, broken pipes and cut
 * streams, run through the real tools (ssl-decode, ssl-info).
 *
 * Every input is made here, at test time, from our own writers and a few
 * hand-made headers (tar, zip, PNG chunks, IDX, msgpack): no committed
 * blobs. Each case runs its command under `ulimit -v` (HOSTILE_AS_MIB,
 * 1 GiB) and checks
 *   - the exit status;
 *   - the message: one line, "ssl-<tool>: <input>: <member or record>: what";
 *   - the memory: the largest resident set of the case's processes
 *     (getrusage of the children; each case is its own forked test) stays
 *     under the case's bound;
 *   - for pipelines, that the consumer never takes a cut stream as whole.
 * Under ASan (make check-asan) the address-space and RSS limits are off:
 * ASan reserves terabytes of shadow and keeps freed memory in quarantine.
 * HOSTILE_VERBOSE=1 prints one line per case (status, max RSS, seconds). */
#include <png.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <dirent.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <msgpack.h>

#include "io/checkpoint.h"
#include "imgwrite.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "io/stream.h"
#include "base/util.h"
#include "testutil.h"
#include "tu_stream.h"

#define HOSTILE_AS_MIB 1024
#define GIB (UINT64_C(1) << 30)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* ---------------------------------------------------------------- bytes */

typedef struct {
	uint8_t *p;
	size_t   n, cap;
} Buf;

static void
buf_add(Buf *b, const void *p, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 1024;
		b->p = realloc(b->p, b->cap);
		ck_assert_ptr_nonnull(b->p);
	}
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
buf_zeros(Buf *b, size_t n)
{
	static const uint8_t z[512];
	while (n) {
		size_t k = n < sizeof z ? n : sizeof z;
		buf_add(b, z, k);
		n -= k;
	}
}

static void
put_le16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}

static void
put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void
put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (24 - 8 * i));
}

/* zlib's CRC-32, as PNG and zip use it */
static uint32_t
crc32_of(const uint8_t *p, size_t n)
{
	return checkpoint_crc32(0, p, n);
}

static void
write_buf(const char *path, const Buf *b)
{
	tu_write_file(path, b->p, b->n);
}

/* ---------------------------------------------------------------- images */

enum { IH = 6, IW = 5 };

static TwBuf
good_png(int seed)
{
	uint8_t px[IH * IW * 3];
	tw_pattern(px, IH, IW, 3, seed);
	return tw_png(px, IH, IW, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
}

static TwBuf
good_jpeg(int seed, int progressive)
{
	uint8_t px[IH * IW * 3];
	tw_pattern(px, IH, IW, 3, seed);
	return tw_jpeg(px, IH, IW, 3, 90, progressive);
}

/* A JPEG whose frame header (SOF0/SOF2) claims h x w. */
static TwBuf
jpeg_claiming(int h, int w, int progressive)
{
	TwBuf b = good_jpeg(1, progressive);
	for (size_t i = 2; i + 9 < b.len; i++) {
		if (b.data[i] == 0xff && (b.data[i + 1] == 0xc0 || b.data[i + 1] == 0xc2)) {
			b.data[i + 5] = (uint8_t)(h >> 8), b.data[i + 6] = (uint8_t)h;
			b.data[i + 7] = (uint8_t)(w >> 8), b.data[i + 8] = (uint8_t)w;
			return b;
		}
	}
	ck_abort_msg("no SOF marker");
	return b;
}

/* A PNG whose IHDR claims h x w (with a correct CRC, so libpng reads on). */
static TwBuf
png_claiming(uint32_t h, uint32_t w)
{
	TwBuf b = good_png(1);
	ck_assert(memcmp(b.data + 12, "IHDR", 4) == 0);
	put_be32(b.data + 16, w);
	put_be32(b.data + 20, h);
	put_be32(b.data + 29, crc32_of(b.data + 12, 17));
	return b;
}

/* ---------------------------------------------------------------- tar */

/* One ustar header; size is what the header claims. Names over 100 bytes
 * get a GNU long-name entry first, as GNU tar writes them. */
static void
tar_header(Buf *t, const char *name, char type, uint64_t size, const char *link)
{
	uint8_t h[512];
	unsigned sum = 0;
	size_t nl = strlen(name);
	if (nl > 99) {
		tar_header(t, "././@LongLink", 'L', nl + 1, NULL);
		buf_add(t, name, nl + 1);
		buf_zeros(t, (512 - (nl + 1) % 512) % 512);
	}
	memset(h, 0, sizeof h);
	memcpy(h, name, nl > 99 ? 99 : nl);
	snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf((char *)h + 108, 8, "%07o", 0);
	snprintf((char *)h + 116, 8, "%07o", 0);
	snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
	snprintf((char *)h + 136, 12, "%011o", 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = (uint8_t)type;
	if (link)
		memcpy(h + 157, link, strlen(link) < 100 ? strlen(link) : 99);
	memcpy(h + 257, "ustar", 6);
	memcpy(h + 263, "00", 2);
	for (int i = 0; i < 512; i++)
		sum += h[i];
	snprintf((char *)h + 148, 8, "%06o", sum);
	h[155] = ' ';
	buf_add(t, h, sizeof h);
}

static void
tar_file(Buf *t, const char *name, const void *data, size_t n)
{
	tar_header(t, name, '0', n, NULL);
	buf_add(t, data, n);
	buf_zeros(t, (512 - n % 512) % 512);
}

static void
tar_end(Buf *t)
{
	buf_zeros(t, 1024);
}

/* ---------------------------------------------------------------- gzip */

/* gzip members concatenate (RFC 1952): n copies of one member that holds
 * 1 MiB of zeros expand n MiB from about n KiB, and cost nothing to make. */
static void
gz_add(Buf *out, const void *data, size_t n)
{
	const char *tmp = tu_path(".gz-member");
	size_t len;
	char *g;
	tw_gzip_file(tmp, data, n);
	g = tu_read_file(tmp, &len);
	buf_add(out, g, len);
	free(g);
	unlink(tmp);
}

static void
gz_zeros_mib(Buf *out, size_t mib)
{
	Buf one = { 0 };
	uint8_t *z = calloc(1, 1 << 20);
	ck_assert_ptr_nonnull(z);
	gz_add(&one, z, 1 << 20);
	for (size_t i = 0; i < mib; i++)
		buf_add(out, one.p, one.n);
	free(z);
	free(one.p);
}

/* ---------------------------------------------------------------- zip */

typedef struct {
	const char *name;
	const void *data;
	uint32_t    stored;   /* bytes present */
	uint32_t    claim;    /* compressed and uncompressed size in the headers */
} ZipEntry;

/* A stored (method 0) zip whose headers claim the given sizes. */
static void
zip_build(Buf *z, const ZipEntry *e, int n)
{
	Buf cd = { 0 };
	uint8_t h[46], end[22];
	uint32_t *offs = calloc((size_t)n, sizeof *offs);
	ck_assert_ptr_nonnull(offs);
	for (int i = 0; i < n; i++) {
		size_t nl = strlen(e[i].name);
		uint32_t crc = crc32_of(e[i].data, e[i].stored);
		offs[i] = (uint32_t)z->n;
		memset(h, 0, sizeof h);
		put_le32(h, 0x04034b50);
		put_le16(h + 4, 20);
		put_le32(h + 14, crc);
		put_le32(h + 18, e[i].claim);
		put_le32(h + 22, e[i].claim);
		put_le16(h + 26, (unsigned)nl);
		buf_add(z, h, 30);
		buf_add(z, e[i].name, nl);
		buf_add(z, e[i].data, e[i].stored);
	}
	for (int i = 0; i < n; i++) {
		size_t nl = strlen(e[i].name);
		memset(h, 0, sizeof h);
		put_le32(h, 0x02014b50);
		put_le16(h + 4, 20);
		put_le16(h + 6, 20);
		put_le32(h + 16, crc32_of(e[i].data, e[i].stored));
		put_le32(h + 20, e[i].claim);
		put_le32(h + 24, e[i].claim);
		put_le16(h + 28, (unsigned)nl);
		put_le32(h + 42, offs[i]);
		buf_add(&cd, h, 46);
		buf_add(&cd, e[i].name, nl);
	}
	memset(end, 0, sizeof end);
	put_le32(end, 0x06054b50);
	put_le16(end + 8, (unsigned)n);
	put_le16(end + 10, (unsigned)n);
	put_le32(end + 12, (uint32_t)cd.n);
	put_le32(end + 16, (uint32_t)z->n);
	buf_add(z, cd.p, cd.n);
	buf_add(z, end, sizeof end);
	free(cd.p);
	free(offs);
}

/* ---------------------------------------------------------------- streams */

/* A record {id, label -1, epoch 0, image: {dtype, shape, data}} whose shape
 * and bin length are given separately (data bytes: present). */
static void
pk_record(msgpack_packer *pk, int64_t id, const int64_t *shape, int ndim, uint32_t binlen, size_t present)
{
	tu_pk_record(pk, 1, id, -1, 0);
	tu_pk_str(pk, "image");
	tu_pk_tensor(pk, "|u1", ndim, shape, binlen, present);
}

/* ---------------------------------------------------------------- running */

typedef struct {
	char        cmd[4096];
	const char *tool;       /* "ssl-decode" */
	char        input[512]; /* named in the message */
	char        where[512]; /* member or record named in the message, or "" */
	const char *want;       /* in the message */
	int         status;
	long        rss_mib;    /* bound on the largest resident set */
} Expect;

static long
children_maxrss_kib(void)
{
	struct rusage ru;
	ck_assert_int_eq(getrusage(RUSAGE_CHILDREN, &ru), 0);
	return ru.ru_maxrss;
}

/* Runs cmd (printf-style) under the address-space limit, with the thread
 * counts of a small machine. */
static void
run_bounded(TuResult *r, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
run_bounded(TuResult *r, const char *name, const char *fmt, ...)
{
	char cmd[6144], limit[64] = "";
	struct timeval t0, t1;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	if (!UNDER_ASAN)
		snprintf(limit, sizeof limit, "ulimit -v %d || exit 99; ", HOSTILE_AS_MIB * 1024);
	gettimeofday(&t0, NULL);
	tu_run(r, "%sOMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=1; export OMP_NUM_THREADS OPENBLAS_NUM_THREADS; %s", limit,
	       cmd);
	gettimeofday(&t1, NULL);
	ck_assert_msg(r->status != 99, "%s: ulimit -v failed", name);
	if (getenv("HOSTILE_VERBOSE"))
		fprintf(stderr, "hostile: %-34s status %3d  max RSS %7ld KiB  %6.2f s\n", name, r->status,
		        children_maxrss_kib(), (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_usec - t0.tv_usec) * 1e-6);
}

static int
count_lines(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void
check_rss(const char *name, long bound_mib)
{
	long kib = children_maxrss_kib();
	if (UNDER_ASAN)
		return;
	ck_assert_msg(kib <= bound_mib * 1024, "%s: max RSS %ld KiB, over the bound of %ld MiB", name, kib, bound_mib);
}

/* The message is one line: "<tool>: <input>: [<where>: ]...<want>...". */
static void
check_message(const char *name, const char *err, const Expect *e)
{
	char prefix[1200];
	ck_assert_msg(count_lines(err) == 1 && err[strlen(err) - 1] == '\n', "%s: want one line, got '%s'", name, err);
	if (e->where[0])
		snprintf(prefix, sizeof prefix, "%s: %s: %s: ", e->tool, e->input, e->where);
	else
		snprintf(prefix, sizeof prefix, "%s: %s: ", e->tool, e->input);
	ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "%s: want '%s...', got '%s'", name, prefix, err);
	ck_assert_msg(strstr(err, e->want) != NULL, "%s: want '%s' in '%s'", name, e->want, err);
	ck_assert_msg(strstr(err + strlen(prefix), e->input) == NULL, "%s: the input named twice: '%s'", name, err);
}

/* ---------------------------------------------------------------- cases */

typedef struct {
	const char *name;
	void      (*make)(Expect *e);
} Case;

static void
expect_decode(Expect *e, const char *input, const char *where, const char *want, const char *opts)
{
	e->tool = "ssl-decode";
	snprintf(e->input, sizeof e->input, "%s", input);
	snprintf(e->where, sizeof e->where, "%s", where ? where : "");
	e->want = want;
	e->status = 1;
	e->rss_mib = 64;
	snprintf(e->cmd, sizeof e->cmd, "ssl-decode %s '%s' > '%s'", opts, input, tu_path("out.ssl"));
}

/* One bad member in a tar, decoded with --strict: the first bad member is
 * the error. */
static void
bad_member(Expect *e, const char *member, TwBuf img, const char *want)
{
	Buf t = { 0 };
	const char *path = tu_path("in.tar");
	TwBuf ok = good_png(3);
	tar_file(&t, "cat/0-good.png", ok.data, ok.len);
	tar_file(&t, member, img.data, img.len);
	tar_end(&t);
	write_buf(path, &t);
	expect_decode(e, path, member, want, "--strict");
	free(t.p);
	free(ok.data);
	free(img.data);
}

static void
c_jpeg_truncated(Expect *e)
{
	TwBuf b = good_jpeg(2, 0);
	b.len = b.len * 2 / 3;
	bad_member(e, "cat/cut.jpg", b, "JPEG");
}

static void
c_jpeg_header_only(Expect *e)
{
	TwBuf b = good_jpeg(2, 1);
	size_t i;
	for (i = 2; i + 1 < b.len && !(b.data[i] == 0xff && b.data[i + 1] == 0xda); i++)
		; /* up to the first scan */
	b.len = i;
	bad_member(e, "cat/no-scan.jpg", b, "JPEG");
}

static void
c_png_truncated(Expect *e)
{
	TwBuf b = good_png(2);
	b.len = b.len - 20;
	bad_member(e, "cat/cut.png", b, "PNG");
}

static void
c_png_bad_crc(Expect *e)
{
	TwBuf b = good_png(2);
	b.data[40] ^= 0x10;   /* inside IDAT: CRC mismatch */
	bad_member(e, "cat/flip.png", b, "PNG");
}

static void
c_jpeg_60000(Expect *e)
{
	bad_member(e, "cat/huge.jpg", jpeg_claiming(60000, 60000, 0), "60000x60000 = 3600000000 pixels, over the limit");
}

static void
c_jpeg_60000_progressive(Expect *e)
{
	bad_member(e, "cat/huge-p.jpg", jpeg_claiming(60000, 60000, 1), "over the limit");
}

static void
c_png_60000(Expect *e)
{
	bad_member(e, "cat/huge.png", png_claiming(60000, 60000), "60000x60000 = 3600000000 pixels, over the limit");
}

static void
c_png_4g(Expect *e)
{
	bad_member(e, "cat/4g.png", png_claiming(0x7fffffff, 0x7fffffff), "PNG");
}

static void
c_pnm_60000(Expect *e)
{
	static const char p[] = "P6\n60000 60000\n255\n\x01\x02\x03";
	TwBuf b = { malloc(sizeof p), sizeof p - 1 };
	memcpy(b.data, p, sizeof p);
	bad_member(e, "cat/huge.ppm", b, "over the limit");
}

/* Under the pixel limit but with almost no data: refused without filling
 * 8000 x 8000 x 3 bytes (libjpeg stops at the missing scan data). */
static void
c_jpeg_8000_empty(Expect *e)
{
	bad_member(e, "cat/8000.jpg", jpeg_claiming(8000, 8000, 1), "JPEG");
	e->rss_mib = 256;
}

static void
c_pnm_ascii_8000_empty(Expect *e)
{
	static const char p[] = "P3\n8000 8000\n255\n1 2 3\n";
	TwBuf b = { malloc(sizeof p), sizeof p - 1 };
	memcpy(b.data, p, sizeof p);
	bad_member(e, "cat/8000.ppm", b, "truncated PNM data");
	e->rss_mib = 256;
}

/* A tar.gz member whose header claims 1.1 GiB (and whose data is there:
 * 1.1 GiB of zeros from 1.1 MiB of gzip): refused by the member limit from
 * its header, before one byte is stored. */
static void
c_targz_bomb(Expect *e)
{
	const char *path = tu_path("bomb.tar.gz");
	Buf t = { 0 }, g = { 0 }, h = { 0 };
	uint64_t size = GIB + (GIB >> 3);
	tar_header(&h, "cat/bomb.jpg", '0', size, NULL);
	gz_add(&g, h.p, h.n);
	gz_zeros_mib(&g, (size_t)(size >> 20));
	tar_end(&t);
	gz_add(&g, t.p, t.n);
	write_buf(path, &g);
	expect_decode(e, path, "cat/bomb.jpg", "over 1073741824 bytes", "--strict");
	free(t.p);
	free(g.p);
	free(h.p);
}

/* 64 MiB of zeros named like a JPEG, and a good member after it: the bomb
 * is sniffed after 8 bytes and skipped, not stored; the good one decodes. */
static void
c_targz_zero_jpeg(Expect *e)
{
	const char *path = tu_path("zeros.tar.gz");
	Buf t = { 0 }, g = { 0 }, h = { 0 };
	TwBuf ok = good_png(4);
	tar_header(&h, "cat/zeros.jpg", '0', 64u << 20, NULL);
	gz_add(&g, h.p, h.n);
	gz_zeros_mib(&g, 64);
	tar_file(&t, "cat/ok.png", ok.data, ok.len);
	tar_end(&t);
	gz_add(&g, t.p, t.n);
	write_buf(path, &g);
	expect_decode(e, path, "cat/zeros.jpg", "not a JPEG, PNG or PNM image", "--strict");
	free(t.p);
	free(g.p);
	free(h.p);
	free(ok.data);
}

/* A tar header claiming 1000 MB with 512 bytes behind it: nothing like
 * 1000 MB is allocated (under ulimit -v 1 GiB that would fail). */
static void
c_tar_lying_size(Expect *e)
{
	const char *path = tu_path("lie.tar");
	Buf t = { 0 };
	TwBuf j = good_jpeg(1, 0);
	tar_header(&t, "cat/lie.jpg", '0', 1000u << 20, NULL);
	buf_add(&t, j.data, 512);
	write_buf(path, &t);
	expect_decode(e, path, "cat/lie.jpg", "runcated", "");
	free(t.p);
	free(j.data);
}

/* zip central directory claiming a 4 GiB - 1 member: refused from the
 * header, and skipped by seeking (no read). */
static void
c_zip_claims_4g(Expect *e)
{
	const char *path = tu_path("bomb.zip");
	TwBuf ok = good_png(5);
	/* not 0xffffffff: that value means "see the zip64 extra field" */
	ZipEntry z[2] = { { "cat/bomb.png", ok.data, (uint32_t)ok.len, 0xfffffff0u },
		              { "cat/ok.png", ok.data, (uint32_t)ok.len, (uint32_t)ok.len } };
	Buf b = { 0 };
	zip_build(&b, z, 2);
	write_buf(path, &b);
	expect_decode(e, path, "cat/bomb.png", "over 1073741824 bytes", "--strict");
	free(b.p);
	free(ok.data);
}

/* IDX images, gzip'd: a 16-byte header for one 28x28 image, then 300 MiB
 * of zeros. Refused after the first MiB, not read to the end. */
static void
c_idx_gz_bomb(Expect *e)
{
	const char *path = tu_path("bomb-images-idx3-ubyte.gz");
	static const uint8_t hdr[16] = { 0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28 };
	Buf g = { 0 };
	gz_add(&g, hdr, sizeof hdr);
	gz_zeros_mib(&g, 300);
	write_buf(path, &g);
	expect_decode(e, path, NULL, "IDX data is longer than the 784 bytes its header gives", "");
	free(g.p);
}

static void
idx_file(const char *path, uint32_t n, uint32_t h, uint32_t w, size_t present)
{
	Buf b = { 0 };
	uint8_t hdr[16] = { 0, 0, 8, 3 };
	put_be32(hdr + 4, n);
	put_be32(hdr + 8, h);
	put_be32(hdr + 12, w);
	buf_add(&b, hdr, sizeof hdr);
	buf_zeros(&b, present);
	write_buf(path, &b);
	free(b.p);
}

static void
c_idx_count_lies(Expect *e)
{
	const char *path = tu_path("lies-images-idx3-ubyte");
	idx_file(path, 1000, 28, 28, 2 * 784);
	expect_decode(e, path, NULL, "IDX data is 1568 bytes, expected 784000 for 1000 images of 28x28x1", "");
}

static void
c_idx_count_4g(Expect *e)
{
	const char *path = tu_path("many-images-idx3-ubyte");
	idx_file(path, 0xffffffffu, 28, 28, 2 * 784);
	expect_decode(e, path, NULL, "expected 3367254359280 for 4294967295 images", "");
}

static void
c_idx_dims_huge(Expect *e)
{
	const char *path = tu_path("wide-images-idx3-ubyte");
	idx_file(path, 1, 65535, 65535, 16);
	expect_decode(e, path, NULL, "IDX images are 65535x65535, over the limit", "");
}

static void
c_idx_labels_lie(Expect *e)
{
	const char *path = tu_path("l-images-idx3-ubyte"), *lpath = tu_path("l-labels-idx1-ubyte");
	static const uint8_t lab[] = { 0, 0, 8, 1, 0, 0, 0, 9, 1, 2, 3 };
	idx_file(path, 2, 2, 2, 8);
	tu_write_file(lpath, lab, sizeof lab);
	expect_decode(e, path, NULL, "", "");
	/* the message names the labels file */
	snprintf(e->input, sizeof e->input, "%s", lpath);
	e->want = "not an IDX labels file for 2 images";
}

static void
c_cifar_short(Expect *e)
{
	const char *path = tu_path("data_batch_1.bin");
	Buf b = { 0 };
	buf_zeros(&b, 3073 * 2 + 100);
	write_buf(path, &b);
	expect_decode(e, path, NULL, "is not a whole number of CIFAR-10 records", "");
	free(b.p);
}

static void
c_cifar_label(Expect *e)
{
	const char *path = tu_path("test_batch.bin");
	Buf b = { 0 };
	buf_zeros(&b, 3073 * 3);
	b.p[3073 * 2] = 10;
	write_buf(path, &b);
	expect_decode(e, path, "record 2", "label 10 is out of range for 10 classes", "");
	free(b.p);
}

/* ---- streams, read by ssl-info */

static void
expect_info(Expect *e, const char *path, const char *where, const char *want)
{
	e->tool = "ssl-info";
	snprintf(e->input, sizeof e->input, "%s", path);
	snprintf(e->where, sizeof e->where, "%s", where);
	e->want = want;
	e->status = 1;
	e->rss_mib = 64;
	snprintf(e->cmd, sizeof e->cmd, "ssl-info -q '%s'", path);
}

typedef void (*Packer)(msgpack_packer *pk);

static void
stream_case(Expect *e, const char *file, Packer body, const char *where, const char *want)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	const char *path = tu_path(file);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	tu_pk_header(&pk, 0, "ssl-stream", 1, 0);
	body(&pk);
	tu_write_file(path, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	expect_info(e, path, where, want);
}

static void
s_overflow(msgpack_packer *pk)
{
	int64_t shape[3] = { INT64_C(1) << 62, INT64_C(1) << 62, 4 };
	pk_record(pk, 7, shape, 3, 16, 16);
	tu_pk_trailer(pk, 1);
}

static void
s_overflow_f4(msgpack_packer *pk)
{
	int64_t shape[3] = { INT64_C(1) << 31, INT64_C(1) << 31, INT64_C(1) << 31 };
	pk_record(pk, 7, shape, 3, 16, 16);
	tu_pk_trailer(pk, 1);
}

static void
s_negative(msgpack_packer *pk)
{
	int64_t shape[3] = { -1, -1, 3 };
	pk_record(pk, 7, shape, 3, 3, 3);
	tu_pk_trailer(pk, 1);
}

static void
s_short_bin(msgpack_packer *pk)
{
	int64_t shape[3] = { 4, 4, 3 };
	pk_record(pk, 7, shape, 3, 47, 47);
	tu_pk_trailer(pk, 1);
}

static void
s_long_bin(msgpack_packer *pk)
{
	int64_t shape[3] = { 4, 4, 3 };
	pk_record(pk, 7, shape, 3, 49, 49);
	tu_pk_trailer(pk, 1);
}

/* A bin claiming 1 GiB with 300 KiB present, then EOF: a truncated
 * stream, and no 1 GiB buffer on the way. */
static void
s_claims_1g(msgpack_packer *pk)
{
	int64_t shape[3] = { 1024, 1024, 1024 };
	pk_record(pk, 7, shape, 3, (uint32_t)GIB, 300 << 10);
}

static void
s_nest_bomb(msgpack_packer *pk)
{
	for (int i = 0; i < 100000; i++)
		msgpack_pack_array(pk, 1);
	msgpack_pack_nil(pk);
}

static void
s_map_4g(msgpack_packer *pk)
{
	static const char m[] = "\xdf\xff\xff\xff\xff\xa2id\x01";
	msgpack_pack_bin_body(pk, m, sizeof m - 1);
}

static void
s_no_trailer(msgpack_packer *pk)
{
	int64_t shape[3] = { 2, 2, 3 };
	pk_record(pk, 0, shape, 3, 12, 12);
	pk_record(pk, 1, shape, 3, 12, 12);
}

static void
s_trailer_lies(msgpack_packer *pk)
{
	int64_t shape[3] = { 2, 2, 3 };
	pk_record(pk, 0, shape, 3, 12, 12);
	tu_pk_trailer(pk, 5);
}

/* A dtype holding a newline and an escape (found by fuzz_stream): the
 * message still is one line. */
static void
s_dtype_ctl(msgpack_packer *pk)
{
	msgpack_pack_map(pk, 4);
	tu_pk_str(pk, "id");
	msgpack_pack_int(pk, 0);
	tu_pk_str(pk, "label");
	msgpack_pack_int(pk, -1);
	tu_pk_str(pk, "epoch");
	msgpack_pack_int(pk, 0);
	tu_pk_str(pk, "embedding");
	msgpack_pack_map(pk, 3);
	tu_pk_str(pk, "dtype");
	tu_pk_str(pk, "<\n\x1b[2J");
	tu_pk_str(pk, "shape");
	msgpack_pack_array(pk, 1);
	msgpack_pack_int(pk, 1);
	tu_pk_str(pk, "data");
	msgpack_pack_bin(pk, 4);
	msgpack_pack_bin_body(pk, "abcd", 4);
	tu_pk_trailer(pk, 1);
}

static void c_stream_dtype_ctl(Expect *e) { stream_case(e, "dt.ssl", s_dtype_ctl, "record 1 (id 0)", "unsupported dtype '<??[2J'"); }
static void c_stream_overflow(Expect *e) { stream_case(e, "ovf.ssl", s_overflow, "record 1 (id 7)", "tensor 'image'"); }
static void c_stream_overflow_f4(Expect *e) { stream_case(e, "ovf4.ssl", s_overflow_f4, "record 1 (id 7)", "tensor 'image'"); }
static void c_stream_negative(Expect *e) { stream_case(e, "neg.ssl", s_negative, "record 1 (id 7)", "negative"); }
static void c_stream_short_bin(Expect *e) { stream_case(e, "short.ssl", s_short_bin, "record 1 (id 7)", "data has 47 bytes"); }
static void c_stream_long_bin(Expect *e) { stream_case(e, "long.ssl", s_long_bin, "record 1 (id 7)", "data has 49 bytes"); }
static void c_stream_claims_1g(Expect *e) { stream_case(e, "1g.ssl", s_claims_1g, "record 1", "truncated stream"); }
static void c_stream_nest_bomb(Expect *e) { stream_case(e, "nest.ssl", s_nest_bomb, "record 1", "nesting deeper"); }
static void c_stream_map_4g(Expect *e) { stream_case(e, "map.ssl", s_map_4g, "record 1", "claims 8589934590 elements"); }
static void c_stream_no_trailer(Expect *e) { stream_case(e, "cut.ssl", s_no_trailer, "", "truncated stream (EOF after 2 records, no trailer)"); }
static void c_stream_trailer_lies(Expect *e) { stream_case(e, "tl.ssl", s_trailer_lies, "trailer", "says 5 records, the stream has 1"); }

/* The same nesting bomb through a pipe: the message names <stdin>. */
static void
c_stream_pipe(Expect *e)
{
	stream_case(e, "nest2.ssl", s_nest_bomb, "record 1", "nesting deeper");
	snprintf(e->cmd, sizeof e->cmd, "cat '%s' | ssl-info -q", e->input);
	snprintf(e->input, sizeof e->input, "<stdin>");
}

/* ---- checkpoints, read by ssl-encode */


/* A freshly initialised tiny model's checkpoint, written by the library. */
static void
write_checkpoint(const char *path)
{
	ModelConfig c = tu_tiny_config();
	float mean[3] = { 0.5f, 0.5f, 0.5f }, std[3] = { 0.25f, 0.25f, 0.25f };
	tu_save_model(path, tu_new_model(&c, 1, 1), mean, std);
}

static void
pattern_record(int i, Record *rec, uint8_t *px, void *arg)
{
	(void)arg;
	rec->id = i;
	tw_pattern(px, 8, 8, 3, i);
}

/* An images stream of n 8x8x3 records for ssl-encode to read. */
static void
write_images(const char *path, int n)
{
	TuImages s = { .H = 8, .W = 8, .C = 3, .record = pattern_record };
	tu_write_images(path, n, &s);
}

static msgpack_object *
map_get(msgpack_object *m, const char *key)
{
	ck_assert_int_eq(m->type, MSGPACK_OBJECT_MAP);
	for (uint32_t i = 0; i < m->via.map.size; i++) {
		msgpack_object *k = &m->via.map.ptr[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(key) && memcmp(k->via.str.ptr, key, k->via.str.size) == 0)
			return &m->via.map.ptr[i].val;
	}
	ck_abort_msg("no key '%s'", key);
	return NULL;
}

typedef void (*CkEdit)(msgpack_object *root);

/* Rewrites a checkpoint after edit() changed its tree, with the checksum
 * recomputed (the last key, 0xce and the CRC-32 of every byte before): the
 * loader's checks behind the checksum are what is tested. */
static void
checkpoint_rewrite(const char *in, const char *out, CkEdit edit)
{
	size_t len, off = 0;
	char *bytes = tu_read_file(in, &len);
	msgpack_zone zone;
	msgpack_object root;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	uint8_t tail[5] = { 0xce };
	uint32_t crc;
	ck_assert(msgpack_zone_init(&zone, 4096));
	ck_assert_int_eq(msgpack_unpack(bytes, len, &off, &zone, &root), MSGPACK_UNPACK_SUCCESS);
	edit(&root);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, root.via.map.size);
	for (uint32_t i = 0; i < root.via.map.size; i++) {
		msgpack_object *k = &root.via.map.ptr[i].key;
		if (k->via.str.size == 8 && memcmp(k->via.str.ptr, "checksum", 8) == 0)
			continue;
		msgpack_pack_object(&pk, *k);
		msgpack_pack_object(&pk, root.via.map.ptr[i].val);
	}
	tu_pk_str(&pk, "checksum");
	crc = checkpoint_crc32(0, sb.data, sb.size);
	put_be32(tail + 1, crc);
	msgpack_sbuffer_write(&sb, (const char *)tail, 5);
	tu_write_file(out, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	msgpack_zone_destroy(&zone);
	free(bytes);
}

static void
ed_shape_swap(msgpack_object *root)
{
	msgpack_object *shape = map_get(map_get(map_get(root, "params"), "conv1.weight"), "shape");
	int64_t t = shape->via.array.ptr[0].via.i64;   /* 4x3x3x3 -> 3x4x3x3: same bytes, other shape */
	shape->via.array.ptr[0].via.u64 = shape->via.array.ptr[1].via.u64;
	shape->via.array.ptr[1].via.u64 = (uint64_t)t;
}

static void
ed_rename(msgpack_object *root)
{
	msgpack_object *params = map_get(root, "params");
	for (uint32_t i = 0; i < params->via.map.size; i++) {
		msgpack_object *k = &params->via.map.ptr[i].key;
		if (k->via.str.size == 8 && memcmp(k->via.str.ptr, "bn1.bias", 8) == 0)
			k->via.str.ptr = "bn1.biaz";
	}
}

static void
ed_dtype(msgpack_object *root)
{
	msgpack_object *dt = map_get(map_get(map_get(root, "params"), "conv1.weight"), "dtype");
	dt->via.str.ptr = "<i4";
}

static void
ed_short_bin(msgpack_object *root)
{
	map_get(map_get(map_get(root, "params"), "conv1.weight"), "data")->via.bin.size -= 4;
}

static void
ed_std_zero(msgpack_object *root)
{
	msgpack_object *std = map_get(map_get(root, "normalize"), "std");
	std->via.array.ptr[1].via.f64 = 0;
}

static void
ed_width(msgpack_object *root)
{
	map_get(map_get(root, "config"), "width")->via.u64 = 8;
}

static void
ed_huge_dims(msgpack_object *root)
{
	msgpack_object *shape = map_get(map_get(map_get(root, "params"), "conv1.weight"), "shape");
	shape->via.array.ptr[0].via.u64 = UINT64_C(1) << 40;
}

static void
ck_case(Expect *e, CkEdit edit, const char *want)
{
	const char *good = tu_path("good.ssl"), *bad = tu_path("bad.ssl"), *imgs = tu_path("imgs.ssl");
	write_checkpoint(good);
	write_images(imgs, 4);
	if (edit)
		checkpoint_rewrite(good, bad, edit);
	e->tool = "ssl-encode";
	snprintf(e->input, sizeof e->input, "%s", bad);
	e->where[0] = '\0';
	e->want = want;
	e->status = 1;
	e->rss_mib = 128;
	snprintf(e->cmd, sizeof e->cmd, "ssl-encode -m '%s' '%s' > '%s'", bad, imgs, tu_path("out.ssl"));
}

static void c_ck_shape(Expect *e) { ck_case(e, ed_shape_swap, "conv1.weight"); }
static void c_ck_rename(Expect *e) { ck_case(e, ed_rename, "bn1.bias"); }
static void c_ck_dtype(Expect *e) { ck_case(e, ed_dtype, "conv1.weight"); }
static void c_ck_short_bin(Expect *e) { ck_case(e, ed_short_bin, "conv1.weight"); }
static void c_ck_std_zero(Expect *e) { ck_case(e, ed_std_zero, "std"); }
static void c_ck_width(Expect *e) { ck_case(e, ed_width, "[8x3x3x3] in the model"); }
static void c_ck_huge_dims(Expect *e) { ck_case(e, ed_huge_dims, "conv1.weight"); }

static void
c_ck_flipped(Expect *e)
{
	size_t len;
	char *b;
	ck_case(e, NULL, "checksum mismatch");
	b = tu_read_file(tu_path("good.ssl"), &len);
	b[len / 3] ^= 0x20;
	tu_write_file(e->input, b, len);
	free(b);
}

static void
c_ck_truncated(Expect *e)
{
	size_t len;
	char *b;
	ck_case(e, NULL, "truncated");
	b = tu_read_file(tu_path("good.ssl"), &len);
	tu_write_file(e->input, b, len * 2 / 3);
	free(b);
}

static void
c_ck_stream(Expect *e)
{
	/* an images stream given as a checkpoint */
	ck_case(e, NULL, "");
	write_images(e->input, 2);
}

/* 3: a PNG whose ancillary chunk declares 600 MiB in a file of a few hundred
 * bytes (libpng allocated it all). */
static void
png_chunk_bomb(Expect *e, const char *type, const char *member)
{
	TwBuf ok = good_png(2), b;
	uint8_t chunk[12 + 16];
	ck_assert(memcmp(ok.data + 12, "IHDR", 4) == 0);
	b.len = 33 + sizeof chunk + 64;
	b.data = calloc(1, b.len);
	ck_assert_ptr_nonnull(b.data);
	memcpy(b.data, ok.data, 33);   /* signature and IHDR */
	put_be32(chunk, 600u << 20);
	memcpy(chunk + 4, type, 4);
	memcpy(chunk + 8, "Comment\0hello!!", 16);
	put_be32(chunk + 24, crc32_of(chunk + 4, 20));
	memcpy(b.data + 33, chunk, sizeof chunk);
	free(ok.data);
	bad_member(e, member, b, "truncated PNG data");
	e->rss_mib = 64;
}

static void c_png_text_600m(Expect *e) { png_chunk_bomb(e, "tEXt", "cat/text.png"); }
static void c_png_ztxt_600m(Expect *e) { png_chunk_bomb(e, "zTXt", "cat/ztxt.png"); }
static void c_png_private_600m(Expect *e) { png_chunk_bomb(e, "prVt", "cat/private.png"); }

static const Case cases[] = {
	{ "png tEXt claims 600 MiB", c_png_text_600m },
	{ "png zTXt claims 600 MiB", c_png_ztxt_600m },
	{ "png private chunk claims 600 MiB", c_png_private_600m },
	{ "jpeg truncated", c_jpeg_truncated },
	{ "jpeg without scans", c_jpeg_header_only },
	{ "png truncated", c_png_truncated },
	{ "png crc mismatch", c_png_bad_crc },
	{ "jpeg claims 60000x60000", c_jpeg_60000 },
	{ "progressive jpeg 60000x60000", c_jpeg_60000_progressive },
	{ "png claims 60000x60000", c_png_60000 },
	{ "png claims 2^31x2^31", c_png_4g },
	{ "ppm claims 60000x60000", c_pnm_60000 },
	{ "jpeg claims 8000x8000, no data", c_jpeg_8000_empty },
	{ "ascii ppm 8000x8000, no data", c_pnm_ascii_8000_empty },
	{ "tar.gz member of 1.1 GiB", c_targz_bomb },
	{ "tar.gz 64 MiB of zeros as jpg", c_targz_zero_jpeg },
	{ "tar header claims 1000 MB", c_tar_lying_size },
	{ "zip claims 4 GiB", c_zip_claims_4g },
	{ "idx.gz bomb (300 MiB)", c_idx_gz_bomb },
	{ "idx count lies", c_idx_count_lies },
	{ "idx count 2^32-1", c_idx_count_4g },
	{ "idx 65535x65535", c_idx_dims_huge },
	{ "idx labels count lies", c_idx_labels_lie },
	{ "cifar partial record", c_cifar_short },
	{ "cifar label out of range", c_cifar_label },
	{ "stream shape overflows int64", c_stream_overflow },
	{ "stream 2^93 elements", c_stream_overflow_f4 },
	{ "stream negative dims", c_stream_negative },
	{ "stream bin shorter than shape", c_stream_short_bin },
	{ "stream bin longer than shape", c_stream_long_bin },
	{ "stream bin claims 1 GiB", c_stream_claims_1g },
	{ "stream nesting bomb", c_stream_nest_bomb },
	{ "stream map claims 4G entries", c_stream_map_4g },
	{ "stream without trailer", c_stream_no_trailer },
	{ "stream trailer count lies", c_stream_trailer_lies },
	{ "stream nesting bomb on stdin", c_stream_pipe },
	{ "stream dtype with a newline", c_stream_dtype_ctl },
	{ "checkpoint tensor of another shape", c_ck_shape },
	{ "checkpoint tensor renamed", c_ck_rename },
	{ "checkpoint tensor of another dtype", c_ck_dtype },
	{ "checkpoint bin shorter than shape", c_ck_short_bin },
	{ "checkpoint std 0", c_ck_std_zero },
	{ "checkpoint config width lies", c_ck_width },
	{ "checkpoint tensor of 2^40 x ...", c_ck_huge_dims },
	{ "checkpoint bit flipped", c_ck_flipped },
	{ "checkpoint truncated", c_ck_truncated },
	{ "checkpoint is a stream", c_ck_stream },
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(test_case)
{
	const Case *c = &cases[_i];
	Expect e;
	TuResult r;
	memset(&e, 0, sizeof e);
	c->make(&e);
	run_bounded(&r, c->name, "%s", e.cmd);
	if (getenv("HOSTILE_VERBOSE"))
		fprintf(stderr, "         %s", r.err);
	ck_assert_msg(r.status == e.status, "%s: status %d, want %d (%s)", c->name, r.status, e.status, r.err);
	check_message(c->name, r.err, &e);
	if (strcmp(e.tool, "ssl-info") != 0) {
		/* nothing written: a consumer would see no stream at all */
		size_t n = 0;
		char *out = tu_read_file(tu_path("out.ssl"), &n);
		ck_assert_msg(n == 0, "%s: %zu bytes on stdout", c->name, n);
		free(out);
	} else {
		ck_assert_msg(r.outlen == 0, "%s: ssl-info -q printed '%s'", c->name, r.out);
	}
	check_rss(c->name, e.rss_mib);
	tu_result_free(&r);
}
END_TEST

/* ------------------------------------------------------- many at once */

/* One archive of truncated and bit-flipped JPEGs and PNGs around good ones,
 * decoded without --strict: the tool keeps the good images, names each bad
 * member on one line, and ends with a summary; ssl-info then counts exactly
 * the kept records. Every damaged PNG is caught (CRCs); a damaged JPEG may
 * decode to other pixels (JPEG has no checksum), but never crashes. */
START_TEST(test_damaged_members)
{
	const char *path = tu_path("damaged.tar");
	Buf t = { 0 };
	TwBuf src[4] = { good_jpeg(1, 0), good_jpeg(2, 1), good_png(3), good_png(4) };
	int members = 0, goods = 0, pngs_bad = 0;
	char name[64], want[128], *line, *save = NULL;
	long skipped = -1, of = -1;
	TuResult r;
	unsigned seed = 12345;
	for (int k = 0; k < 4; k++) {
		int is_png = k >= 2;
		snprintf(name, sizeof name, "good/%d.%s", k, is_png ? "png" : "jpg");
		tar_file(&t, name, src[k].data, src[k].len);
		members++, goods++;
		/* cut at 24 points */
		for (int cut = 1; cut <= 24; cut++) {
			size_t n = src[k].len * (size_t)cut / 25;
			snprintf(name, sizeof name, "cut/%d-%02d.%s", k, cut, is_png ? "png" : "jpg");
			tar_file(&t, name, src[k].data, n);
			members++;
			pngs_bad += is_png;
		}
		/* 60 single-bit flips each, past the signature */
		for (int f = 0; f < 60; f++) {
			uint8_t *d = malloc(src[k].len);
			size_t at;
			ck_assert_ptr_nonnull(d);
			memcpy(d, src[k].data, src[k].len);
			seed = seed * 1103515245u + 12345u;
			at = 8 + (seed >> 8) % (src[k].len - 8);
			d[at] ^= (uint8_t)(1u << ((seed >> 4) & 7));
			snprintf(name, sizeof name, "flip/%d-%02d.%s", k, f, is_png ? "png" : "jpg");
			tar_file(&t, name, d, src[k].len);
			members++;
			pngs_bad += is_png;
			free(d);
		}
	}
	tar_end(&t);
	write_buf(path, &t);
	run_bounded(&r, "damaged members (340)", "ssl-decode --size 6x5 '%s' | ssl-info", path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	/* every stderr line names the input and a member, except the summary */
	for (line = strtok_r(r.err, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char prefix[600];
		snprintf(prefix, sizeof prefix, "ssl-decode: %s: ", path);
		if (sscanf(line, "ssl-decode: skipped %ld of %ld members", &skipped, &of) == 2)
			continue;
		ck_assert_msg(strncmp(line, prefix, strlen(prefix)) == 0, "stray line '%s'", line);
		ck_assert_msg(strncmp(line + strlen(prefix), "cut/", 4) == 0 || strncmp(line + strlen(prefix), "flip/", 5) == 0,
		              "line does not name a damaged member: '%s'", line);
		ck_assert_msg(strstr(line, ".png:") == NULL || strstr(line, "PNG") || strstr(line, "not a JPEG"),
		              "'%s'", line);
	}
	ck_assert_int_eq(of, members);
	ck_assert_msg(skipped >= pngs_bad, "only %ld skipped, %d damaged PNGs", skipped, pngs_bad);
	snprintf(want, sizeof want, "\nrecords: %ld\n", of - skipped);
	ck_assert_msg(strstr(r.out, want) != NULL, "want '%s' in '%s'", want + 1, r.out);
	ck_assert_msg(strstr(r.out, "trailer: seen") != NULL, "%s", r.out);
	check_rss("damaged members", 128);
	if (getenv("HOSTILE_VERBOSE"))
		fprintf(stderr, "hostile: damaged members: %d members, %ld skipped (%d damaged PNGs, all caught), "
		        "%ld kept (%d good)\n", members, skipped, pngs_bad, of - skipped, goods);
	tu_result_free(&r);
	for (int k = 0; k < 4; k++)
		free(src[k].data);
	free(t.p);
}
END_TEST

/* Member paths from strangers: "../", absolute, 3000 bytes long, control
 * characters; symlinks, hard links, devices, FIFOs, a folder named x.png.
 * Nothing is written to the file system (ssl-decode never extracts),
 * classes come from the parent folder's name, links and special files are
 * not members, and every message stays on one line. */
START_TEST(test_absurd_paths)
{
	const char *path = tu_path("paths.tar");
	Buf t = { 0 };
	TwBuf ok = good_png(6);
	char longname[3100];
	TuResult r;
	memset(longname, 'a', sizeof longname);
	memcpy(longname, "deep/", 5);
	memcpy(longname + 3000, "/x.png", 7);
	tar_file(&t, "../../../../../tmp/evil/up.png", ok.data, ok.len);
	tar_file(&t, "/etc/abs/root.png", ok.data, ok.len);
	tar_file(&t, longname, ok.data, ok.len);
	tar_file(&t, "ctl/bad\n\x1b[2Jname.png", ok.data, 10);   /* damaged, with a newline and an escape */
	tar_header(&t, "link/sym.png", '2', 0, "/etc/passwd");
	tar_header(&t, "link/hard.png", '1', 0, "/etc/abs/root.png");
	tar_header(&t, "link/dev.png", '3', 0, NULL);
	tar_header(&t, "link/fifo.png", '6', 0, NULL);
	tar_header(&t, "dir.png/", '5', 0, NULL);
	tar_file(&t, "./dot/ok.png", ok.data, ok.len);
	tar_end(&t);
	write_buf(path, &t);
	run_bounded(&r, "absurd paths", "cd '%s' && ssl-decode '%s' | ssl-info", tu_tmpdir(), path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	/* kept: abs/root.png, the long one (its 2995-byte folder name is no
	 * class), dot/ok.png, link/hard.png (a copy of abs/root.png); "../"
	 * paths hold a ".." component: hidden, skipped */
	ck_assert_msg(strstr(r.out, "\nrecords: 4\n") != NULL, "%s", r.out);
	ck_assert_msg(strstr(r.out, "\nclasses: 3\n") && strstr(r.out, " abs: 1") && strstr(r.out, " dot: 1") &&
	              strstr(r.out, " link: 1"), "%s", r.out);
	for (char *p = r.err; *p; p++)
		ck_assert_msg(*p == '\n' || (unsigned char)*p >= 0x20, "control byte 0x%02x on stderr", *p);
	ck_assert_msg(strstr(r.err, "ctl/bad??[2Jname.png: ") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, ": dir.png: empty class folder\n") != NULL, "%s", r.err);
	ck_assert_int_eq(count_lines(r.err), 3);   /* the damaged member, the empty folder, the summary */
	ck_assert_msg(access(tu_path("tmp/evil/up.png"), F_OK) != 0, "something was extracted");
	check_rss("absurd paths", 64);
	tu_result_free(&r);
	free(ok.data);
	free(t.p);
}
END_TEST

/* A folder input with a symlink loop, a link to /dev/zero and to a FIFO
 * named like images, and a dangling link: no hang, no loop, one warning. */
START_TEST(test_folder_links)
{
	char dir[600], p[700];
	TwBuf ok = good_png(7);
	TuResult r;
	snprintf(dir, sizeof dir, "%s/links", tu_tmpdir());
	TwMember m[] = { { "cat/ok.png", ok.data, ok.len } };
	tw_folder(dir, m, 1);
	snprintf(p, sizeof p, "%s/cat/loop", dir);
	ck_assert_int_eq(symlink("..", p), 0);
	snprintf(p, sizeof p, "%s/cat/zero.png", dir);
	ck_assert_int_eq(symlink("/dev/zero", p), 0);
	snprintf(p, sizeof p, "%s/cat/fifo.png", dir);
	ck_assert_int_eq(mkfifo(p, 0644), 0);
	snprintf(p, sizeof p, "%s/cat/dangling.png", dir);
	ck_assert_int_eq(symlink("nowhere.png", p), 0);
	run_bounded(&r, "folder links", "ssl-decode '%s' | ssl-info", dir);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\nrecords: 1\n") != NULL, "%s", r.out);
	snprintf(p, sizeof p, "ssl-decode: %s: cat/dangling.png: ", dir);
	ck_assert_msg(strncmp(r.err, p, strlen(p)) == 0, "%s", r.err);
	ck_assert_int_eq(count_lines(r.err), 2);
	check_rss("folder links", 64);
	tu_result_free(&r);
	free(ok.data);
}
END_TEST

/* ---------------------------------------------------------------- pipes */

/* A folder of one image, emitted as many records: a stream of ~1.6 MB. */
static const char *
big_input(void)
{
	static char dir[600];
	TwBuf ok = good_png(8);
	TwMember m[] = { { "cat/ok.png", ok.data, ok.len } };
	snprintf(dir, sizeof dir, "%s/big", tu_tmpdir());
	tw_folder(dir, m, 1);
	free(ok.data);
	return dir;
}

static int
read_status(const char *file)
{
	char *s = tu_read_file(tu_path(file), NULL);
	int v = atoi(s);
	free(s);
	return v;
}

/* A consumer that stops early: the producer ends by SIGPIPE (141) or
 * cleanly, and says nothing. */
START_TEST(test_consumer_exits_early)
{
	const char *dir = big_input();
	TuResult r;
	run_bounded(&r, "head -c 1000", "{ ssl-decode -e 2000 --size 16x16 '%s'; echo $? > '%s'; } | head -c 1000 >/dev/null",
	            dir, tu_path("st1"));
	ck_assert_int_eq(r.status, 0);
	ck_assert_msg(r.err[0] == '\0', "producer complained: '%s'", r.err);
	ck_assert_msg(read_status("st1") == 141 || read_status("st1") == 0, "status %d", read_status("st1"));
	tu_result_free(&r);
	/* with SIGPIPE ignored (as some shells and services start us), EPIPE:
	 * one line at most, and a failure status */
	run_bounded(&r, "head -c 1000, SIGPIPE ignored",
	            "trap '' PIPE; { ssl-decode -e 2000 --size 16x16 '%s'; echo $? > '%s'; } | head -c 1000 >/dev/null", dir,
	            tu_path("st1"));
	ck_assert_int_eq(read_status("st1"), 1);
	ck_assert_msg(count_lines(r.err) <= 1, "error spam: '%s'", r.err);
	ck_assert_msg(r.err[0] == '\0' || strstr(r.err, "Broken pipe") != NULL, "'%s'", r.err);
	tu_result_free(&r);
}
END_TEST

/* A stream cut in the middle (head -c): ssl-info reports a truncated
 * stream; never records: N with a clean exit. */
START_TEST(test_cut_stream)
{
	const char *dir = big_input();
	static const long cuts[] = { 0, 1, 100, 300, 5000, 65536, 100000, 777777 };
	TuResult r;
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
		run_bounded(&r, "cut stream",
		            "{ ssl-decode -e 2000 --size 16x16 '%s'; echo $? > '%s'; } | head -c %ld | { ssl-info; echo $? > '%s'; }",
		            dir, tu_path("st1"), cuts[i], tu_path("st2"));
		ck_assert_msg(read_status("st2") == 1, "cut at %ld: ssl-info status %d", cuts[i], read_status("st2"));
		ck_assert_msg(strstr(r.err, "ssl-info: <stdin>: ") && strstr(r.err, "truncated stream"), "cut at %ld: '%s'",
		              cuts[i], r.err);
		ck_assert_msg(strstr(r.err, "ssl-decode") == NULL, "producer complained: '%s'", r.err);
		ck_assert_int_eq(count_lines(r.err), 1);
		ck_assert_msg(strstr(r.out, "trailer: seen") == NULL, "%s", r.out);
		tu_result_free(&r);
	}
}
END_TEST

/* A producer killed mid-stream: the consumer reports a truncated stream. */
START_TEST(test_producer_killed)
{
	const char *dir = big_input();
	TuResult r;
	run_bounded(&r, "producer killed",
	            "{ ssl-decode -q -e 1000000 --size 16x16 '%s' & p=$!; sleep 0.3; kill -KILL $p; wait $p; echo $? > '%s'; }"
	            " | { ssl-info -q; echo $? > '%s'; }",
	            dir, tu_path("st1"), tu_path("st2"));
	ck_assert_int_eq(read_status("st1"), 137);
	ck_assert_int_eq(read_status("st2"), 1);
	ck_assert_msg(strstr(r.err, "ssl-info: <stdin>: ") && strstr(r.err, "truncated stream"), "'%s'", r.err);
	tu_result_free(&r);
}
END_TEST

/* A producer that fails on a bad input: it writes nothing, and the
 * consumer fails too (no stream is not an empty stream). */
START_TEST(test_producer_fails)
{
	const char *path = tu_path("bad.tar");
	Buf t = { 0 };
	TwBuf b = good_jpeg(1, 0);
	TuResult r;
	tar_file(&t, "cat/cut.jpg", b.data, b.len / 2);
	tar_end(&t);
	write_buf(path, &t);
	run_bounded(&r, "producer fails",
	            "{ ssl-decode --strict '%s'; echo $? > '%s'; } | { ssl-info; echo $? > '%s'; }", path, tu_path("st1"),
	            tu_path("st2"));
	ck_assert_int_eq(read_status("st1"), 1);
	ck_assert_int_eq(read_status("st2"), 1);
	ck_assert_int_eq(count_lines(r.err), 2);
	ck_assert_msg(strstr(r.err, "cat/cut.jpg: ") != NULL, "%s", r.err);
	ck_assert_msg(strstr(r.err, "ssl-info: <stdin>: header: truncated stream (no data)") != NULL, "%s", r.err);
	tu_result_free(&r);
	free(b.data);
	free(t.p);
}
END_TEST

/* ---------------------------------------------------- faults in training */

#define TRAIN "ssl-train --arch resnet18 --width 4 --proj-hidden 16 --proj-dim 8 --batch 4 --threads 1 " \
              "--lr 0.2 --lr-abs --checkpoint-every 1 --quiet"

/* 12 random 8x8 pictures in two classes, through the real tools: 60
 * epochs of 2 augmented views each, 180 training steps. */
static const char *
views_stream(void)
{
	static char path[600];
	char dir[600], name[64];
	uint8_t px[8 * 8 * 3];
	TwBuf b[12];
	TwMember m[12];
	TuResult r;
	unsigned seed = 7;
	snprintf(dir, sizeof dir, "%s/pics", tu_tmpdir());
	for (int i = 0; i < 12; i++) {
		for (size_t k = 0; k < sizeof px; k++) {
			seed = seed * 1103515245u + 12345u;
			px[k] = (uint8_t)(seed >> 16);
		}
		b[i] = tw_png(px, 8, 8, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
		snprintf(name, sizeof name, "%c/%d.png", 'a' + i % 2, i);
		m[i] = (TwMember){ strdup(name), b[i].data, b[i].len };
	}
	tw_folder(dir, m, 12);
	snprintf(path, sizeof path, "%s/pics.views", tu_tmpdir());
	tu_run(&r, "ssl-decode -q -e 60 '%s' | ssl-augment --recipe cifar --size 8 --threads 1 > '%s'", dir, path);
	ck_assert_msg(r.status == 0, "%s", r.err);
	tu_result_free(&r);
	for (int i = 0; i < 12; i++) {
		free(b[i].data);
		free((char *)m[i].path);
	}
	return path;
}

/* Starts cmd with ssl-train as the process itself (exec), so that a
 * signal reaches the trainer, not a shell. */
static pid_t
spawn(const char *cmd)
{
	char full[8192];
	pid_t pid;
	snprintf(full, sizeof full, "PATH='%s':\"$PATH\"; export PATH; exec %s </dev/null >/dev/null 2>>'%s'",
	         getenv("SSL_BIN") ? getenv("SSL_BIN") : "build/bin", cmd, tu_path("train.err"));
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c", full, (char *)NULL);
		_exit(127);
	}
	return pid;
}

static double
seconds(void)
{
	struct timeval tv;
	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

typedef struct {
	int     loads, torn;  /* checkpoint_load calls while training ran, and failures */
	int64_t step;         /* step of the last checkpoint loaded */
} Watch;

/* While pid runs, loads the checkpoint at path again and again (a reader
 * must never see a torn file) until one of step >= until_step has been
 * seen, or for at most `wait` seconds. Returns 1 when the process ended by
 * itself (status in *st). Kills are placed by step, not by time, so that
 * a fast machine does not finish the run before the kill lands. */
static int
watch(pid_t pid, const char *path, int64_t until_step, double wait, Watch *w, int *st)
{
	double end = seconds() + wait;
	while (seconds() < end) {
		Checkpoint ck;
		char err[512];
		if (waitpid(pid, st, WNOHANG) == pid)
			return 1;
		if (access(path, F_OK) == 0) {
			if (checkpoint_load(&ck, path, err, sizeof err) < 0) {
				fprintf(stderr, "torn: %s\n", err);
				w->torn++;
			} else {
				w->loads++;
				w->step = ck.train.step;
				checkpoint_free(&ck);
				if (w->step >= until_step)
					return 0;
			}
		}
		usleep(1000);
	}
	return 0;
}

/* Temporary files of the atomic writes beside path. */
static int
count_temps(const char *path)
{
	char dir[600], prefix[300];
	const char *slash = strrchr(path, '/');
	struct dirent *de;
	DIR *d;
	int n = 0;
	snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
	snprintf(prefix, sizeof prefix, "%s.tmp.", slash + 1);
	ck_assert_ptr_nonnull(d = opendir(dir));
	while ((de = readdir(d)))
		n += strncmp(de->d_name, prefix, strlen(prefix)) == 0;
	closedir(d);
	return n;
}

/* SIGKILL at random moments (the trainer checkpoints every step, so most
 * kills land in or near a write), then --resume from the same stream:
 * every checkpoint ever on disk loads (a reader polls it all along), and
 * the run, killed three times, ends bitwise equal to an uninterrupted one.
 * Then a file size limit (a real EFBIG from the kernel, as a full disk
 * gives ENOSPC) fails the next write: the previous checkpoint stays as it
 * was, and the temporary is removed. */
START_TEST(test_train_sigkill_resume)
{
	const char *views = views_stream(), *full = tu_path("full.ssl"), *part = tu_path("part.ssl");
	char cmd[2048], *before, *after;
	size_t n1, n2;
	Watch w = { 0 };
	unsigned seed = 2024;
	int st, kills = 0, temps;
	int64_t killed_at[3] = { 0 };
	TuResult r;
	pid_t pid;

	snprintf(cmd, sizeof cmd, TRAIN " -o '%s' '%s'", full, views);
	pid = spawn(cmd);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "uninterrupted run: status %x", st);

	for (int round = 0; round < 3; round++) {
		int64_t target;
		seed = seed * 1103515245u + 12345u;
		target = w.step + 5 + (int64_t)(seed >> 16 & 0xffff) % 40;   /* at most 3 x 44 < 180 */
		if (access(part, F_OK) == 0)
			snprintf(cmd, sizeof cmd, TRAIN " --resume '%s' -o '%s' '%s'", part, part, views);
		else
			snprintf(cmd, sizeof cmd, TRAIN " -o '%s' '%s'", part, views);
		pid = spawn(cmd);
		if (watch(pid, part, target, 120, &w, &st)) {
			ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "status %x", st);
			break;   /* it finished first */
		}
		kill(pid, SIGKILL);
		ck_assert_int_eq(waitpid(pid, &st, 0), pid);
		ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
		if (access(part, F_OK) == 0) {
			Checkpoint ck;
			char err[512];
			ck_assert_msg(checkpoint_load(&ck, part, err, sizeof err) == 0, "after SIGKILL: %s", err);
			killed_at[kills++] = ck.train.step;
			checkpoint_free(&ck);
		}
	}
	ck_assert_int_eq(w.torn, 0);
	ck_assert_msg(kills >= 1, "no kill landed after the first checkpoint");
	ck_assert_msg(killed_at[kills - 1] < 180, "the run had finished");

	/* a write that fails: the file size limit is below a checkpoint's size */
	before = tu_read_file(part, &n1);
	temps = count_temps(part);
	tu_run(&r, "trap '' XFSZ; ulimit -f %zu; " TRAIN " --resume '%s' -o '%s' '%s'", n1 / 512 / 2, part, part, views);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.err, "File too large") != NULL && strstr(r.err, part) != NULL, "%s", r.err);
	after = tu_read_file(part, &n2);
	ck_assert_msg(n1 == n2 && memcmp(before, after, n1) == 0, "the previous checkpoint changed");
	ck_assert_int_le(count_temps(part), temps);   /* no new one; the kills' are removed (issue 19, item 10) */
	tu_result_free(&r);
	free(before);
	free(after);

	/* the last resume runs to the end */
	snprintf(cmd, sizeof cmd, TRAIN " --resume '%s' -o '%s' '%s'", part, part, views);
	pid = spawn(cmd);
	while (!watch(pid, part, INT64_MAX, 1.0, &w, &st))
		;
	ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "final resume: status %x", st);
	ck_assert_int_eq(w.torn, 0);
	tu_assert_same_checkpoints(full, part);
	ck_assert_int_eq(count_temps(part), 0);
	if (getenv("HOSTILE_VERBOSE"))
		fprintf(stderr, "hostile: SIGKILL at steps %lld %lld %lld of 180, %d loads while training, %d torn, "
		        "%d temporaries left at the end; EFBIG kept the step-%lld checkpoint; resumed = uninterrupted\n",
		        (long long)killed_at[0], (long long)killed_at[1], (long long)killed_at[2], w.loads, w.torn,
		        count_temps(part), (long long)killed_at[kills - 1]);
}
END_TEST

/* ------------------------------------------------- round two (issue 19) */

/* A tar of one good PNG under cat/ plus the given member, decoded; the
 * result in r (stdout: ssl-info's report). */
static void
decode_tar_with(TuResult *r, const char *name, Buf *t)
{
	const char *path = tu_path("r2.tar");
	TwBuf ok = good_png(3);
	Buf all = { 0 };
	tar_file(&all, "cat/0-good.png", ok.data, ok.len);
	buf_add(&all, t->p, t->n);
	tar_end(&all);
	write_buf(path, &all);
	run_bounded(r, name, "ssl-decode '%s' | ssl-info", path);
	free(all.p);
	free(ok.data);
}

/* 1: a member path of 2,040 components: no recursion on its depth. */
START_TEST(test_deep_member_path)
{
	char name[4096];
	Buf t = { 0 };
	TwBuf ok = good_png(5);
	TuResult r;
	for (int i = 0; i < 2040; i++)
		memcpy(name + 2 * i, "d/", 2);
	name[4080] = '\0';
	tar_header(&t, name, '5', 0, NULL);
	memcpy(name + 4080, "x.png", 6);
	tar_file(&t, name, ok.data, ok.len);
	decode_tar_with(&r, "deep member path", &t);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\nrecords: 2\n") != NULL, "%s", r.out);
	tu_result_free(&r);
	free(t.p);
	free(ok.data);
}
END_TEST

/* 11: a member path over 4,095 bytes is skipped with a warning, never cut
 * into another (unlabelled) path. */
START_TEST(test_long_member_path)
{
	char name[4300];
	Buf t = { 0 };
	TwBuf ok = good_png(5);
	TuResult r;
	memset(name, 'a', sizeof name);
	memcpy(name, "cls/", 4);
	memcpy(name + 4095, "/x.png", 7);
	tar_file(&t, name, ok.data, ok.len);
	decode_tar_with(&r, "long member path", &t);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\nrecords: 1\n") != NULL, "%s", r.out);
	tu_assert_has(r.err, "path over 4095 bytes");
	tu_assert_has(r.err, "skipped 1 of 2 members: 1 unreadable");
	tu_result_free(&r);
	free(t.p);
	free(ok.data);
}
END_TEST

/* A stream of one kind holding one record whose tensor `name` has the
 * given shape (|u1, or <f4 for embeddings) and matching data. */
static void
write_counted_stream(const char *path, const char *kind, const char *name, const int64_t *shape, int ndim,
                     int64_t rpe, int64_t epochs);

static void
write_shaped_stream(const char *path, const char *kind, const char *name, const int64_t *shape, int ndim)
{
	write_counted_stream(path, kind, name, shape, ndim, -1, -1);
}

/* The same, with records_per_epoch and epochs in the header (-1: absent). */
static void
write_counted_stream(const char *path, const char *kind, const char *name, const int64_t *shape, int ndim,
                     int64_t rpe, int64_t epochs)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n = 1;
	int f4 = strcmp(kind, "embeddings") == 0;
	uint8_t *d;
	for (int i = 0; i < ndim; i++)
		n *= (size_t)shape[i];
	n *= f4 ? 4 : 1;
	d = calloc(1, n + 1);
	ck_assert_ptr_nonnull(d);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3 + (rpe >= 0) + (epochs >= 0));
	tu_pk_str(&pk, "format");
	tu_pk_str(&pk, "ssl-stream");
	tu_pk_str(&pk, "version");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 0);
	tu_pk_str(&pk, "kind");
	tu_pk_str(&pk, kind);
	if (rpe >= 0) {
		tu_pk_str(&pk, "records_per_epoch");
		msgpack_pack_int64(&pk, rpe);
	}
	if (epochs >= 0) {
		tu_pk_str(&pk, "epochs");
		msgpack_pack_int64(&pk, epochs);
	}
	msgpack_pack_map(&pk, 4);
	tu_pk_str(&pk, "id");
	msgpack_pack_int(&pk, 3);
	tu_pk_str(&pk, "label");
	msgpack_pack_int(&pk, -1);
	tu_pk_str(&pk, "epoch");
	msgpack_pack_int(&pk, 0);
	tu_pk_str(&pk, name);
	msgpack_pack_map(&pk, 3);
	tu_pk_str(&pk, "dtype");
	tu_pk_str(&pk, f4 ? "<f4" : "|u1");
	tu_pk_str(&pk, "shape");
	msgpack_pack_array(&pk, (size_t)ndim);
	for (int i = 0; i < ndim; i++)
		msgpack_pack_int64(&pk, shape[i]);
	tu_pk_str(&pk, "data");
	msgpack_pack_bin(&pk, n);
	msgpack_pack_bin_body(&pk, d, n);
	tu_pk_trailer(&pk, 1);
	tu_write_file(path, sb.data, sb.size);
	msgpack_sbuffer_destroy(&sb);
	free(d);
}

/* 2: zero-sized images, views and embeddings are refused by the stream
 * reader, so by every tool, with one message naming the record (ssl-encode
 * --resize read out of bounds; ssl-encode without it embedded garbage). */
START_TEST(test_zero_sized_tensors)
{
	static const struct {
		const char *kind, *name, *cmd;
		int64_t     shape[4];
		int         ndim;
	} zc[] = {
		{ "images", "image", "ssl-encode --resize -m '%s' '%s'", { 0, 60000, 3 }, 3 },
		{ "images", "image", "ssl-encode --resize -m '%s' '%s'", { 0, 8, 3 }, 3 },
		{ "images", "image", "ssl-encode --resize -m '%s' '%s'", { 8, 0, 3 }, 3 },
		{ "images", "image", "ssl-encode -m '%s' '%s'", { 8, 8, 0 }, 3 },
		{ "images", "image", "ssl-augment --recipe cifar '%.0s%s'", { 0, 8, 3 }, 3 },
		{ "images", "image", "ssl-info '%.0s%s'", { 8, 0, 3 }, 3 },
		{ "views", "views", "ssl-train --batch 2 --steps 1 -o '%s.out' '%s'", { 2, 0, 8, 3 }, 4 },
		{ "views", "views", "ssl-info '%.0s%s'", { 0, 8, 8, 3 }, 4 },
		{ "embeddings", "embedding", "ssl-plot embed -o '%s.png' '%s'", { 0 }, 1 },
		{ "embeddings", "embedding", "ssl-probe --train '%.0s%s' --test '%2$s'", { 0 }, 1 },
	};
	const char *model = tu_path("model.ssl"), *in = tu_path("zero.ssl");
	write_checkpoint(model);
	for (size_t i = 0; i < sizeof zc / sizeof zc[0]; i++) {
		char cmd[1200], tool[32];
		TuResult r;
		write_shaped_stream(in, zc[i].kind, zc[i].name, zc[i].shape, zc[i].ndim);
		snprintf(cmd, sizeof cmd, zc[i].cmd, model, in);
		sscanf(cmd, "%31s", tool);
		run_bounded(&r, tool, "%s > /dev/null", cmd);
		ck_assert_msg(r.status == 1, "%s: status %d: %.400s", cmd, r.status, r.err);
		ck_assert_msg(count_lines(r.err) == 1 && strstr(r.err, ": record 1 (id 3): tensor '") &&
		              strstr(r.err, "holds no empty ones"), "%s: '%.400s'", cmd, r.err);
		tu_result_free(&r);
	}
}
END_TEST

/* b with a chunk inserted before its first IDAT. */
static void
png_insert_chunk(TwBuf *b, const char *type, const void *data, uint32_t n)
{
	size_t at = 8;
	uint8_t *nb;
	while (at + 8 <= b->len && memcmp(b->data + at + 4, "IDAT", 4) != 0)
		at += 12 + ((size_t)b->data[at] << 24 | (size_t)b->data[at + 1] << 16 | (size_t)b->data[at + 2] << 8 |
		            b->data[at + 3]);
	ck_assert(at + 8 <= b->len);
	nb = malloc(b->len + 12 + n);
	ck_assert_ptr_nonnull(nb);
	memcpy(nb, b->data, at);
	put_be32(nb + at, n);
	memcpy(nb + at + 4, type, 4);
	memcpy(nb + at + 8, data, n);
	put_be32(nb + at + 8 + n, crc32_of(nb + at + 4, 4 + n));
	memcpy(nb + at + 12 + n, b->data + at, b->len - at);
	free(b->data);
	b->data = nb;
	b->len += 12 + n;
}

/* 6: palette, grey and RGB PNGs with transparency (tRNS) decode to their
 * colours, alpha dropped (they were refused: "4 channels"). */
START_TEST(test_png_trns)
{
	static const uint8_t pal[4 * 3] = { 10, 20, 30, 40, 50, 60, 70, 80, 90, 200, 210, 220 };
	static const uint8_t pal_alpha[4] = { 0, 128, 255, 7 }, grey_key[2] = { 0, 5 }, rgb_key[6] = { 0, 1, 0, 2, 0, 3 };
	uint8_t idx[IH * IW], px[IH * IW * 3], want[IH * IW * 3];
	const char *path = tu_path("trns.png"), *out = tu_path("trns.ssl");
	for (int t = 0; t < 3; t++) {
		TwBuf b;
		TuResult r;
		StreamReader *sr;
		Record rec;
		const Tensor *im;
		char err[256];
		int c = t == 1 ? 1 : 3;
		for (int i = 0; i < IH * IW; i++)
			idx[i] = (uint8_t)(i % 4);
		tw_pattern(px, IH, IW, 3, 7);
		if (t == 0) {
			b = tw_png(idx, IH, IW, PNG_COLOR_TYPE_PALETTE, 8, pal, 4, 0);
			png_insert_chunk(&b, "tRNS", pal_alpha, sizeof pal_alpha);
			for (int i = 0; i < IH * IW; i++)
				memcpy(want + 3 * i, pal + 3 * idx[i], 3);
		} else if (t == 1) {
			b = tw_png(idx, IH, IW, PNG_COLOR_TYPE_GRAY, 8, NULL, 0, 0);
			png_insert_chunk(&b, "tRNS", grey_key, sizeof grey_key);
			memcpy(want, idx, sizeof idx);
		} else {
			b = tw_png(px, IH, IW, PNG_COLOR_TYPE_RGB, 8, NULL, 0, 0);
			png_insert_chunk(&b, "tRNS", rgb_key, sizeof rgb_key);
			memcpy(want, px, sizeof px);
		}
		tu_write_file(path, b.data, b.len);
		free(b.data);
		run_bounded(&r, "png tRNS", "ssl-decode --strict '%s' > '%s'", path, out);
		ck_assert_msg(r.status == 0, "case %d: status %d: %s", t, r.status, r.err);
		tu_result_free(&r);
		sr = stream_reader_open_path(out);
		ck_assert_int_eq(stream_reader_next(sr, &rec), 1);
		im = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
		ck_assert_msg(im && im->shape[0] == IH && im->shape[1] == IW && im->shape[2] == c, "case %d: %s", t, err);
		ck_assert_msg(memcmp(im->data, want, (size_t)(IH * IW * c)) == 0, "case %d: other pixels", t);
		stream_reader_close(sr);
	}
}
END_TEST

/* 7: hard links in a tar are images like the files they link to (a tree
 * gave 3 records as a folder, 2 as its tarball); a link to nothing kept
 * is a skipped member, never a silent loss. */
START_TEST(test_tar_hard_links)
{
	Buf t = { 0 };
	TuResult r;
	TwBuf b = good_png(8);
	tar_file(&t, "dog/1.png", b.data, b.len);
	tar_header(&t, "dog/2.png", '1', 0, "dog/1.png");
	tar_header(&t, "fox/3.png", '1', 0, "./cat/0-good.png");
	tar_header(&t, "fox/4.png", '1', 0, "cat/missing.png");
	decode_tar_with(&r, "hard links", &t);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_msg(strstr(r.out, "\nrecords: 4\n") && strstr(r.out, " dog: 2") && strstr(r.out, " fox: 1"), "%s",
	              r.out);
	tu_assert_has(r.err, "fox/4.png: hard link to cat/missing.png, which is not a kept image");
	tu_assert_has(r.err, "skipped 1 of 5 members: 1 unreadable");
	tu_result_free(&r);
	free(t.p);
	free(b.data);
}
END_TEST

/* With shards a hard link is its target's shard's, whatever its own name
 * hashes to: a link to nothing kept is reported and counted by that rank
 * alone (as a skipped member; with --strict, an error), never lost. */
START_TEST(test_tar_hard_links_sharded)
{
	enum { NLINKS = 8 };
	const char *path = tu_path("links.tar");
	Buf t = { 0 };
	TuResult r;
	int skipped = 0, failed = 0;
	for (int i = 0; i < 8; i++) {
		char name[32];
		TwBuf b = good_png(i);
		snprintf(name, sizeof name, "dog/%d.png", i);
		tar_file(&t, name, b.data, b.len);
		free(b.data);
	}
	for (int i = 0; i < NLINKS; i++) {
		char name[32];
		snprintf(name, sizeof name, "fox/link%d.png", i);
		tar_header(&t, name, '1', 0, "cat/missing.png");
	}
	tar_end(&t);
	write_buf(path, &t);
	for (int i = 0; i < 2; i++) {
		int k = 0;
		const char *line;
		run_bounded(&r, "sharded links", "ssl-decode --shard %d/2 '%s' > /dev/null", i, path);
		ck_assert_msg(r.status == 0, "shard %d: %s", i, r.err);
		if ((line = strstr(r.err, "skipped ")))
			ck_assert_int_eq(sscanf(line, "skipped %d of", &k), 1);
		ck_assert_msg(k == 0 || k == NLINKS, "shard %d reported %d of the %d links:\n%s", i, k, NLINKS, r.err);
		skipped += k;
		tu_result_free(&r);
		run_bounded(&r, "sharded links", "ssl-decode --strict --shard %d/2 '%s' > /dev/null", i, path);
		if (r.status != 0) {
			tu_assert_has(r.err, ": hard link to cat/missing.png, which is not a kept image");
			failed++;
		}
		tu_result_free(&r);
	}
	ck_assert_int_eq(skipped, NLINKS);
	ck_assert_int_eq(failed, 1);
	free(t.p);
}
END_TEST

/* 12: inputs are opened once and sniffed from the bytes read, so a FIFO,
 * bash's <(...) and standard input ("-") work: tar.gz, zip (read as a
 * stream) and a single PNG. On main the FIFO hung and <(...) was "not an
 * archive". */
START_TEST(test_pipes_and_stdin)
{
	const char *tgz = tu_path("p.tar.gz"), *zip = tu_path("p.zip"), *png = tu_path("p.png"),
	           *fifo = tu_path("fifo");
	Buf t = { 0 }, z = { 0 };
	TwBuf a = good_png(1), b = good_png(2);
	ZipEntry ze[2] = { { "cat/a.png", a.data, (uint32_t)a.len, (uint32_t)a.len },
	                   { "dog/b.png", b.data, (uint32_t)b.len, (uint32_t)b.len } };
	static const char *const cmds[] = {
		"timeout 20 ssl-decode '%s' | ssl-info",               /* the FIFO */
		"timeout 20 bash -c \"ssl-decode <(cat '%s')\" | ssl-info",
		"timeout 20 ssl-decode - < '%s' | ssl-info",
		"cat '%s' | timeout 20 ssl-decode - | ssl-info",
		"cat '%s' | timeout 20 ssl-decode - | ssl-info",
	};
	const char *in[] = { fifo, tgz, tgz, zip, png };
	const char *want[] = { "\nrecords: 2\n", "\nrecords: 2\n", "\nrecords: 2\n", "\nrecords: 2\n", "\nrecords: 1\n" };
	tar_file(&t, "cat/a.png", a.data, a.len);
	tar_file(&t, "dog/b.png", b.data, b.len);
	tar_end(&t);
	tw_gzip_file(tgz, t.p, t.n);
	zip_build(&z, ze, 2);
	write_buf(zip, &z);
	tu_write_file(png, a.data, a.len);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	for (int i = 0; i < 5; i++) {
		TuResult r;
		char cmd[2048];
		snprintf(cmd, sizeof cmd, cmds[i], in[i]);
		if (i == 0)   /* a writer for the FIFO */
			run_bounded(&r, "fifo", "(cat '%s' > '%s' &) ; %s", tgz, fifo, cmd);
		else
			run_bounded(&r, "pipe", "%s", cmd);
		ck_assert_msg(r.status == 0, "%s: status %d: %s", cmd, r.status, r.err);
		ck_assert_msg(strstr(r.out, want[i]) != NULL, "%s: %s", cmd, r.out);
		tu_result_free(&r);
	}
	free(t.p);
	free(z.p);
	free(a.data);
	free(b.data);
}
END_TEST

/* No byte of s is a control character (C0, DEL, C1) or outside valid
 * UTF-8, except newlines and tabs. */
static void
assert_terminal_safe(const char *what, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0, k; i < n; i += k) {
		k = utf8_seq(p + i, n - i);
		ck_assert_msg(k > 0, "%s: byte 0x%02x at %zu is not UTF-8: '%s'", what, p[i], i, s);
		ck_assert_msg(p[i] == '\n' || p[i] == '\t' || (p[i] >= 0x20 && p[i] != 0x7f), "%s: control 0x%02x at %zu",
		              what, p[i], i);
		ck_assert_msg(!(k == 2 && p[i] == 0xc2 && p[i + 1] < 0xa0), "%s: C1 control at %zu", what, i);
	}
}

/* 13: member names that are not UTF-8 are written with their stray bytes
 * as \xHH (ssl-stream(5): str is UTF-8), so Python reads the stream; a C1
 * control (U+009B, CSI) in a name is valid UTF-8 and stays, but ssl-info
 * shows it as '??'. */
START_TEST(test_invalid_utf8_names)
{
	const char *path = tu_path("utf8.tar"), *out = tu_path("utf8.ssl");
	Buf t = { 0 };
	TwBuf b = good_png(4);
	TuResult r;
	tar_file(&t, "caf\xe9/x\xff.png", b.data, b.len);
	tar_file(&t, "csi\xc2\x9b[2J/y.png", b.data, b.len);
	tar_end(&t);
	write_buf(path, &t);
	run_bounded(&r, "utf8 names", "ssl-decode '%s' > '%s' && /usr/bin/python3 '%s/tests/read_stream.py' < '%s' && "
	            "ssl-info '%s'", path, out, tu_src(), out, out);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.out, " caf\\xe9: 1");
	tu_assert_has(r.out, " csi??[2J: 1");
	assert_terminal_safe("ssl-info", r.out);
	tu_result_free(&r);
	{
		size_t n;
		char *raw = tu_read_file(out, &n);
		ck_assert_msg(memmem(raw, n, "caf\\xe9/x\\xff.png", 17) != NULL, "source not escaped");
		free(raw);
	}
	free(t.p);
	free(b.data);
}
END_TEST

/* 14: ssl-export --list shows names and metadata from a safetensors file
 * as ssl-info shows strings: no ESC, OSC or C1 sequence reaches the
 * terminal. */
START_TEST(test_export_list_clean)
{
	static const char json[] =
	    "{\"__metadata__\":{\"k\\u001b[2J\":\"v\\u001b]0;title\\u0007 \\u009b31m\"},"
	    "\"w\\u001b[31m\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
	const char *path = tu_path("esc.safetensors");
	Buf f = { 0 };
	uint8_t len[8] = { 0 };
	TuResult r;
	put_le32(len, (uint32_t)strlen(json));
	buf_add(&f, len, 8);
	buf_add(&f, json, strlen(json));
	buf_zeros(&f, 4);
	write_buf(path, &f);
	run_bounded(&r, "export --list", "ssl-export --list '%s'", path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.out, "w?[31m\tF32\t[1]");
	tu_assert_has(r.out, "# k?[2J: v?]0;title? ??31m");
	assert_terminal_safe("ssl-export --list", r.out);
	tu_result_free(&r);
	free(f.p);
}
END_TEST

/* 5: a views header with records_per_epoch and epochs of 2^62: the step
 * count overflowed, and ssl-train wrote an untrained model and exit 0. The
 * other tools' progress totals take the same product (checked). */
START_TEST(test_schedule_overflow)
{
	const char *in = tu_path("big.ssl"), *model = tu_path("big-model.ssl");
	const int64_t shape[4] = { 2, 8, 8, 3 }, big = INT64_C(1) << 62;
	TuResult r;
	write_counted_stream(in, "views", "views", shape, 4, big, big);
	run_bounded(&r, "schedule overflow", "ssl-train --batch 2 -o '%s' '%s'", model, in);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	tu_assert_has(r.err, "more steps than can be counted");
	ck_assert_msg(access(model, F_OK) != 0, "a model was written");
	tu_result_free(&r);
	run_bounded(&r, "schedule overflow", "ssl-info --progress '%s'", in);   /* UBSan: no overflow */
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
}
END_TEST

/* 8: ssl-encode --npy writes two files that belong together: when the
 * second cannot be written, the first is not left behind either (main
 * renamed e.npy into place before the labels file was written). The labels
 * file's name is taken by a folder, so its rename fails. */
START_TEST(test_npy_pair)
{
	char dir[600], npy[700], labels[700];
	const char *model = tu_path("model.ssl"), *imgs = tu_path("imgs.ssl");
	TuResult r;
	snprintf(dir, sizeof dir, "%s/npy", tu_tmpdir());
	snprintf(npy, sizeof npy, "%s/e.npy", dir);
	snprintf(labels, sizeof labels, "%s/e.labels.npy", dir);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	ck_assert_int_eq(mkdir(labels, 0700), 0);
	write_checkpoint(model);
	write_images(imgs, 4);
	run_bounded(&r, "npy pair", "ssl-encode -m '%s' --npy '%s' '%s' > /dev/null", model, npy, imgs);
	ck_assert_msg(r.status == 1 && strstr(r.err, "e.labels.npy"), "status %d: %s", r.status, r.err);
	ck_assert_msg(access(npy, F_OK) != 0, "e.npy left without its labels");
	tu_result_free(&r);
	tu_run(&r, "ls '%s'", dir);
	ck_assert_str_eq(r.out, "e.labels.npy\n");   /* the folder, no temporaries */
	tu_result_free(&r);
	/* a full disk while the data is written: neither file */
	ck_assert_int_eq(rmdir(labels), 0);
	run_bounded(&r, "npy pair", "SSL_FAULT_WRITE_BYTES=300 ssl-encode -m '%s' --npy '%s' '%s' > /dev/null", model, npy,
	            imgs);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	tu_run(&r, "ls '%s'", dir);
	ck_assert_str_eq(r.out, "");
	tu_result_free(&r);
}
END_TEST

/* 9: a --log that cannot be written (a full disk: /dev/full) is an error
 * before training, not a silent empty log and exit 0. */
START_TEST(test_train_log_full)
{
	const char *in = views_stream(), *model = tu_path("log-model.ssl");
	TuResult r;
	run_bounded(&r, "log on a full disk", TRAIN " --steps 3 --log /dev/full -o '%s' '%s'", model, in);
	ck_assert_msg(r.status == 1, "status %d: %s", r.status, r.err);
	tu_assert_has(r.err, "ssl-train: /dev/full: write error: No space left on device");
	tu_result_free(&r);
}
END_TEST

/* 10: a checkpoint write killed with SIGKILL leaves MODEL.tmp.<pid>, full
 * size; the next write of MODEL removes the temporaries of processes that
 * are gone, and leaves a live process's and other names alone. */
START_TEST(test_stale_temporaries)
{
	const char *in = views_stream(), *model = tu_path("stale.ssl");
	char dead[700], live[700], other[700];
	pid_t pid = fork();
	TuResult r;
	ck_assert_int_ge(pid, 0);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, NULL, 0), pid);   /* pid is now a process that is gone */
	snprintf(dead, sizeof dead, "%s.tmp.%ld", model, (long)pid);
	snprintf(live, sizeof live, "%s.tmp.%ld", model, (long)getpid());
	snprintf(other, sizeof other, "%s.tmp.backup", model);
	tu_write_file(dead, "a half-written checkpoint", 25);
	tu_write_file(live, "being written", 13);
	tu_write_file(other, "not ours", 8);
	run_bounded(&r, "stale temporaries", TRAIN " --steps 1 -o '%s' '%s'", model, in);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	ck_assert_msg(access(dead, F_OK) != 0, "the dead writer's temporary is still there");
	ck_assert_msg(access(live, F_OK) == 0 && access(other, F_OK) == 0, "a temporary not ours to remove was removed");
	ck_assert_msg(access(model, F_OK) == 0, "no model");
}
END_TEST

/* An embeddings stream whose header names nclasses classes, with n records
 * of 8 dims, record i labelled labels[i % nl] and placed near its class. */
static void
write_embeddings(const char *path, int nclasses, int64_t n, const int *labels, int nl, float scale)
{
	uint32_t lcg = 12345;
	StreamHeader h;
	StreamWriter *w;
	FILE *fp = fopen(path, "wb");
	char **names = calloc((size_t)nclasses, sizeof *names);
	ck_assert(fp && names);
	for (int c = 0; c < nclasses; c++) {
		names[c] = malloc(16);
		snprintf(names[c], 16, "c%d", c);
	}
	stream_header_init(&h, "embeddings");
	stream_header_set_classes(&h, nclasses, names);
	w = stream_writer_open(fp, path, &h);
	ck_assert_ptr_nonnull(w);
	for (int64_t i = 0; i < n; i++) {
		Record rec;
		float x[8];
		int l = labels[i % nl];
		for (int j = 0; j < 8; j++) {
			lcg = lcg * 1664525u + 1013904223u;
			x[j] = scale * ((float)((l * 7 + j * 3) % 11) * 0.1f + 2 * ((float)(lcg >> 8) / (float)(1 << 24)) - 1);
		}
		memset(&rec, 0, sizeof rec);
		rec.id = i;
		rec.label = l;
		rec.ntensors = 1;
		rec.tensors[0] = (Tensor){ .dtype = DTYPE_F32, .ndim = 1, .shape = { 8 }, .data = x, .name = "embedding" };
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	ck_assert_int_eq(stream_writer_close(w), 0);
	fclose(fp);
	stream_header_free(&h);
	for (int c = 0; c < nclasses; c++)
		free(names[c]);
	free(names);
}

/* 4: ssl-probe sizes everything by the classes present: a header of 100,000
 * class names over 100 items tried an 80 GB confusion matrix (and the linear
 * probe's K x D weights). Matrices over 20 classes only with --confusion. */
START_TEST(test_probe_many_classes)
{
	static const int three[] = { 5, 50000, 99999 };
	int many[25];
	const char *tr = tu_path("tr.emb"), *te = tu_path("te.emb");
	TuResult r;
	write_embeddings(tr, 100000, 100, three, 3, 1);
	write_embeddings(te, 100000, 30, three, 3, 1);
	run_bounded(&r, "probe 100k classes", "ssl-probe --quiet --method knn --train '%s' --test '%s'", tr, te);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.out, "features   8 dims, 3 classes");
	tu_assert_has(r.out, "  50000 c50000 ");
	tu_assert_has(r.out, "confusion matrix (rows");
	check_rss("probe 100k classes", 256);
	tu_result_free(&r);
	for (int i = 0; i < 25; i++)
		many[i] = 3 * i;
	write_embeddings(tr, 100, 100, many, 25, 1);
	write_embeddings(te, 100, 50, many, 25, 1);
	run_bounded(&r, "probe 25 classes", "ssl-probe --quiet --method knn --train '%s' --test '%s' && "
	            "ssl-probe --quiet --method knn --json --train '%s' --test '%s' | grep '\"confusion\": null' && "
	            "ssl-probe --quiet --method knn --confusion --train '%s' --test '%s'", tr, te, tr, te, tr, te);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_assert_has(r.out, "confusion matrix: not shown for 25 classes (--confusion shows it)");
	tu_assert_has(r.out, "confusion matrix (rows");
	tu_result_free(&r);
}
END_TEST

/* 15: the smaller ones, each a message or a refusal that came too late. */
START_TEST(test_small_messages)
{
	const char *st = tu_path("absurd.safetensors"), *emb = tu_path("big.emb"),
	           *idx = tu_path("t-images-idx3-ubyte"), *src = tu_path("srcmap.ssl");
	static const int two[] = { 0, 1 };
	uint8_t b[64] = { 0 };
	TuResult r;
	/* -o DIRECTORY: refused before training (main waited for the input) */
	run_bounded(&r, "-o dir", "sleep 20 | timeout 10 " TRAIN " --steps 1 -o '%s'", tu_tmpdir());
	ck_assert_msg(r.status == 1 && strstr(r.err, ": Is a directory"), "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	/* a safetensors file with an absurd header length is named as one */
	b[5] = 1;   /* 2^40 */
	b[8] = '{';
	tu_write_file(st, b, sizeof b);
	write_checkpoint(tu_path("model.ssl"));
	write_images(tu_path("imgs.ssl"), 2);
	run_bounded(&r, "absurd safetensors", "ssl-encode -m '%s' '%s'", st, tu_path("imgs.ssl"));
	ck_assert_msg(r.status == 1 && strstr(r.err, "a damaged safetensors file: its header length is 1099511627776") &&
	              !strstr(r.err, "not an ssl-tools checkpoint"), "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	/* embeddings near 1e30: the covariance overflowed a float */
	write_embeddings(emb, 2, 40, two, 2, 1e30f);
	run_bounded(&r, "pca 1e30", "ssl-plot embed -o '%s.png' '%s'", emb, emb);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	tu_result_free(&r);
	/* IDX images of 0 x 28 are not "over the limit" */
	b[0] = 0, b[1] = 0, b[2] = 8, b[3] = 3;
	memset(b + 4, 0, 12);
	b[7] = 1, b[15] = 28;
	tu_write_file(idx, b, 16);
	run_bounded(&r, "idx 0x28", "ssl-decode '%s' > /dev/null", idx);
	ck_assert_msg(r.status == 1 && strstr(r.err, "IDX images are 0x28: a zero dimension"), "status %d: %s", r.status,
	              r.err);
	tu_result_free(&r);
	/* a map as source is not "a string with NUL bytes" */
	{
		msgpack_sbuffer sb;
		msgpack_packer pk;
		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		tu_pk_header(&pk, 0, "ssl-stream", 1, 0);
		msgpack_pack_map(&pk, 4);
		tu_pk_str(&pk, "id");
		msgpack_pack_int(&pk, 0);
		tu_pk_str(&pk, "label");
		msgpack_pack_int(&pk, -1);
		tu_pk_str(&pk, "epoch");
		msgpack_pack_int(&pk, 0);
		tu_pk_str(&pk, "source");
		msgpack_pack_map(&pk, 0);
		tu_pk_trailer(&pk, 1);
		tu_write_file(src, sb.data, sb.size);
		msgpack_sbuffer_destroy(&sb);
	}
	run_bounded(&r, "source map", "ssl-info '%s'", src);
	ck_assert_msg(r.status == 1 && strstr(r.err, "record 1 (id 0): source must be a string, not a map"),
	              "status %d: %s", r.status, r.err);
	tu_result_free(&r);
}
END_TEST

static Suite *
hostile_suite(void)
{
	Suite *s = suite_create("hostile");
	TCase *tc = tcase_create("inputs");
	TCase *bulk = tcase_create("bulk");
	TCase *pipes = tcase_create("pipes");
	TCase *faults = tcase_create("faults");
	TCase *round2 = tcase_create("round2");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_case, 0, NCASES);
	tcase_set_timeout(bulk, 30);
	tcase_add_test(bulk, test_damaged_members);
	tcase_add_test(bulk, test_absurd_paths);
	tcase_add_test(bulk, test_folder_links);
	tcase_set_timeout(pipes, 30);
	tcase_add_test(pipes, test_consumer_exits_early);
	tcase_add_test(pipes, test_cut_stream);
	tcase_add_test(pipes, test_producer_killed);
	tcase_add_test(pipes, test_producer_fails);
	tcase_set_timeout(round2, 30);
	tcase_add_test(round2, test_deep_member_path);
	tcase_add_test(round2, test_long_member_path);
	tcase_add_test(round2, test_zero_sized_tensors);
	tcase_add_test(round2, test_png_trns);
	tcase_add_test(round2, test_tar_hard_links);
	tcase_add_test(round2, test_tar_hard_links_sharded);
	tcase_add_test(round2, test_pipes_and_stdin);
	tcase_add_test(round2, test_invalid_utf8_names);
	tcase_add_test(round2, test_schedule_overflow);
	tcase_add_test(round2, test_npy_pair);
	tcase_add_test(round2, test_train_log_full);
	tcase_add_test(round2, test_stale_temporaries);
	tcase_add_test(round2, test_probe_many_classes);
	tcase_add_test(round2, test_small_messages);
	tcase_add_test(round2, test_export_list_clean);
	tcase_set_timeout(faults, 60);
	tcase_add_test(faults, test_train_sigkill_resume);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, bulk);
	suite_add_tcase(s, faults);
	suite_add_tcase(s, pipes);
	suite_add_tcase(s, round2);
	return s;
}

CHECK_MAIN(hostile_suite)
