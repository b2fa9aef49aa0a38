/* fuzz_paths: libFuzzer harness for member paths through libarchive and
 * lib/data/dataset.c: deep ones (thousands of components), long ones (past
 * the 4,095 bytes a member path may have), odd bytes, folders, hard and
 * symbolic links. Raw archives (fuzz_dataset) almost never grow such paths;
 * here the input describes the entries and the harness writes a tar itself
 * (GNU long-name and long-link entries; libarchive's own pax writer overflows
 * a buffer on some of these names), so every path arrives whole.
 *
 * Input: entries, each 3 bytes then a segment: type (& 3: 0 a file holding a
 * 2x2 PNG, 1 a folder, 2 a hard link to the previous file, 3 a symbolic
 * link to it), a repeat count r, the segment length n (<= 64), then n bytes.
 * The entry's path is the segment repeated r * 16 + 1 times (4,081 bytes of
 * "d/" at r = 127; over 4,095 with longer segments), ".png" added to files
 * and links.
 * Checks: no crash, no recursion on the depth (ASan's stack), warnings and
 * errors are one non-empty line, at most one record per file or hard link,
 * and every record is the 2x2 image under a path of at most 4,095 bytes. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dataset.h"
#include "base/util.h"

#include "fuzz_tmpdir.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_paths: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static const uint8_t png2x2[] = {
	0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00,
	0x00, 0x02, 0x00, 0x00, 0x00, 0x02, 0x08, 0x02, 0x00, 0x00, 0x00, 0xfd, 0xd4, 0x9a, 0x73, 0x00, 0x00, 0x00,
	0x16, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x3c, 0xc1, 0x25, 0xc7, 0xc0, 0xc0, 0xc0, 0xc4, 0xc0, 0xc0,
	0xc0, 0xc0, 0xc0, 0x00, 0x00, 0x0c, 0x14, 0x00, 0xf4, 0xe9, 0x67, 0x3f, 0x13, 0x00, 0x00, 0x00, 0x00, 0x49,
	0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
};

#define MAX_ENTRIES 64

static char dir[256];

/* One tar header (GNU: names over 99 bytes come in 'L' / 'K' entries). */
static void
tar_header(FILE *f, const char *name, char type, size_t size, const char *link)
{
	char h[512];
	unsigned sum = 0;
	size_t nl = strlen(name), ll = link ? strlen(link) : 0;
	static const char zeros[512];
	if (nl > 99 || ll > 99) {
		const char *s = nl > 99 ? name : link;
		size_t sl = strlen(s) + 1;
		tar_header(f, "././@LongLink", nl > 99 ? 'L' : 'K', sl, NULL);
		CHECK(fwrite(s, 1, sl, f) == sl);
		CHECK(fwrite(zeros, 1, (512 - sl % 512) % 512, f) == (512 - sl % 512) % 512);
		if (nl > 99 && ll > 99) {
			sl = ll + 1;
			tar_header(f, "././@LongLink", 'K', sl, NULL);
			CHECK(fwrite(link, 1, sl, f) == sl);
			CHECK(fwrite(zeros, 1, (512 - sl % 512) % 512, f) == (512 - sl % 512) % 512);
		}
	}
	memset(h, 0, sizeof h);
	memcpy(h, name, nl > 99 ? 99 : nl);
	snprintf(h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
	snprintf(h + 108, 8, "%07o", 0);
	snprintf(h + 116, 8, "%07o", 0);
	snprintf(h + 124, 12, "%011o", (unsigned)size);   /* sizes here are small */
	snprintf(h + 136, 12, "%011o", 1700000000);
	memset(h + 148, ' ', 8);
	h[156] = type;
	if (link)
		memcpy(h + 157, link, ll > 99 ? 99 : ll);
	memcpy(h + 257, "ustar  ", 8);   /* GNU magic */
	for (int i = 0; i < 512; i++)
		sum += (unsigned char)h[i];
	snprintf(h + 148, 8, "%06o", sum);
	h[155] = ' ';
	CHECK(fwrite(h, 1, sizeof h, f) == sizeof h);
}

static void
on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_tmpdir_init(dir, sizeof dir, "fuzz_paths");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char zeros[1024];
	char path[512], *last = NULL;
	DatasetOptions opt;
	Dataset *d;
	FILE *f;
	size_t pos = 0;
	int files = 0, n = 0, rc;
	snprintf(path, sizeof path, "%s/in.tar", dir);
	CHECK((f = fopen(path, "wb")) != NULL);
	while (pos + 3 <= size && n < MAX_ENTRIES) {
		int type = data[pos] & 3, reps = data[pos + 1] * 16 + 1;
		size_t seg = data[pos + 2] > 64 ? 64 : data[pos + 2], len;
		char *name;
		pos += 3;
		if (seg > size - pos)
			seg = size - pos;
		if (seg == 0)
			continue;
		len = seg * (size_t)reps;
		name = xmalloc(len + 5);
		for (int r = 0; r < reps; r++)
			memcpy(name + (size_t)r * seg, data + pos, seg);
		pos += seg;
		memcpy(name + len, type == 1 ? "/" : ".png", type == 1 ? 2 : 5);
		if (!name[0]) {   /* a NUL ends a tar name */
			free(name);
			continue;
		}
		if (type == 0) {
			tar_header(f, name, '0', sizeof png2x2, NULL);
			CHECK(fwrite(png2x2, 1, sizeof png2x2, f) == sizeof png2x2);
			CHECK(fwrite(zeros, 1, 512 - sizeof png2x2, f) == 512 - sizeof png2x2);
		} else if (type == 1) {
			tar_header(f, name, '5', 0, NULL);
		} else {
			tar_header(f, name, type == 2 && last ? '1' : type == 3 ? '2' : '0', 0,
			           type == 2 ? last : type == 3 ? (last ? last : "x") : NULL);
		}
		if (type == 0 || (type == 2 && last))
			files++;
		if (type == 0) {
			free(last);
			last = name;
		} else {
			free(name);
		}
		n++;
	}
	free(last);
	CHECK(fwrite(zeros, 1, sizeof zeros, f) == sizeof zeros);
	CHECK(fclose(f) == 0);

	memset(&opt, 0, sizeof opt);
	opt.warn = on_warn;
	opt.strict = size > 0 && (data[size - 1] & 1);
	d = dataset_new(&opt);
	rc = dataset_add(d, path);
	if (rc == 0)
		rc = dataset_finish(d);
	if (rc < 0) {
		const char *err = dataset_error(d);
		CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	} else {
		CHECK(dataset_count(d) <= files);
		for (int64_t i = 0; i < dataset_count(d); i++) {
			const Sample *s = dataset_sample(d, i);
			uint8_t buf[12];
			const uint8_t *px;
			CHECK(s->h == 2 && s->w == 2 && s->c == 3);
			CHECK((px = dataset_pixels(d, i, buf)) != NULL);
			CHECK(px[0] == 200 && px[11] == 30);
			CHECK(s->path && strlen(s->path) <= 4095);
			CHECK(s->label >= -1 && s->label < dataset_nclasses(d));
		}
	}
	dataset_free(d);
	unlink(path);
	return 0;
}
