/* fuzz_paths: libFuzzer harness for member paths through libarchive and
 * lib/data/dataset.c: deep ones (thousands of components), long ones (past
 * the 4,095 bytes a member path may have), odd bytes, folders, hard and
 * symbolic links. Raw archives (fuzz_dataset) almost never grow such paths;
 * here the input describes the entries and the harness writes a pax tar with
 * libarchive, so every path arrives whole.
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

#include <archive.h>
#include <archive_entry.h>

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

static void
on_warn(void *ctx, const char *msg)
{
	(void)ctx;
	CHECK(msg[0] != '\0' && strchr(msg, '\n') == NULL);
}

static void
remove_dir(void)
{
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_tmpdir(dir, sizeof dir, "fuzz_paths");
	atexit(remove_dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[512], *last = NULL;
	struct archive *a = archive_write_new();
	struct archive_entry *e = archive_entry_new();
	DatasetOptions opt;
	Dataset *d;
	size_t pos = 0;
	int files = 0, n = 0, rc;
	CHECK(a && e);
	snprintf(path, sizeof path, "%s/in.tar", dir);
	CHECK(archive_write_set_format_pax(a) == ARCHIVE_OK);
	CHECK(archive_write_open_filename(a, path) == ARCHIVE_OK);
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
		memcpy(name + len, type == 1 ? "" : ".png", type == 1 ? 1 : 5);
		archive_entry_clear(e);
		archive_entry_set_pathname(e, name);
		archive_entry_set_mtime(e, 1700000000, 0);
		if (type == 1) {
			archive_entry_set_filetype(e, AE_IFDIR);
			archive_entry_set_perm(e, 0755);
		} else {
			archive_entry_set_filetype(e, type == 3 ? AE_IFLNK : AE_IFREG);
			archive_entry_set_perm(e, 0644);
			if (type == 2 && last)
				archive_entry_set_hardlink(e, last);
			if (type == 3)
				archive_entry_set_symlink(e, last ? last : "x");
			archive_entry_set_size(e, type == 0 ? (la_int64_t)sizeof png2x2 : 0);
		}
		if (archive_write_header(a, e) == ARCHIVE_OK && type == 0)
			CHECK(archive_write_data(a, png2x2, sizeof png2x2) == (la_ssize_t)sizeof png2x2);
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
	CHECK(archive_write_close(a) == ARCHIVE_OK);
	archive_write_free(a);
	archive_entry_free(e);

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
			CHECK(s->h == 2 && s->w == 2 && s->c == 3);
			CHECK(s->pixels[0] == 200 && s->pixels[11] == 30);
			CHECK(s->path && strlen(s->path) <= 4095);
			CHECK(s->label >= -1 && s->label < dataset_nclasses(d));
		}
	}
	dataset_free(d);
	unlink(path);
	return 0;
}
