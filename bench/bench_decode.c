/* bench_decode: images/s of our JPEG/PNG decoding on the members of one
 * archive, on 1 and 2 threads, decoding alone (members already in memory)
 * and end to end (lib/data/dataset: read, gunzip and decode, as ssl-decode
 * does). Prints a checksum of the pixels that bench/decode_pil.py computes
 * the same way, so the side-by-side run also checks that we decode the
 * same pixels as PIL. Run through bench/decode.sh. */
#include <archive.h>
#include <archive_entry.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/dataset.h"
#include "data/image.h"
#include "base/util.h"

typedef struct {
	char    *path;
	uint8_t *data;
	size_t   len;
} Member;

static int
cmp_member(const void *a, const void *b)
{
	return strcmp(((const Member *)a)->path, ((const Member *)b)->path);
}

/* sum_i (i+1) * sum_k px_ik * (k % 251 + 1), mod 2^64 */
static uint64_t
checksum_add(uint64_t acc, int64_t i, const uint8_t *px, size_t n)
{
	uint64_t s = 0;
	for (size_t k = 0; k < n; k++)
		s += (uint64_t)px[k] * (k % 251 + 1);
	return acc + (uint64_t)(i + 1) * s;
}

int
main(int argc, char **argv)
{
	struct archive *a;
	struct archive_entry *e;
	Member *m = NULL;
	int64_t n = 0, cap = 0;
	Image *out;
	int reps = 3;
	setprogname(argv[0]);
	if (argc != 2)
		die_usage("usage: bench_decode ARCHIVE");
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_all(a);
	if (archive_read_open_filename(a, argv[1], 1 << 16) != ARCHIVE_OK)
		die("%s: %s", argv[1], archive_error_string(a));
	while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		if (archive_entry_filetype(e) != AE_IFREG || image_name_kind(archive_entry_pathname(e)) != 1)
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 1024;
			m = xreallocarray(m, (size_t)cap, sizeof *m);
		}
		m[n].path = xstrdup(archive_entry_pathname(e));
		m[n].len = (size_t)archive_entry_size(e);
		m[n].data = xmalloc(m[n].len);
		if (archive_read_data(a, m[n].data, m[n].len) != (la_ssize_t)m[n].len)
			die("%s: %s: short read", argv[1], m[n].path);
		n++;
	}
	archive_read_free(a);
	qsort(m, (size_t)n, sizeof *m, cmp_member);
	out = xcalloc((size_t)n, sizeof *out);
	printf("members %lld\n", (long long)n);

	for (int th = 1; th <= 2; th++) {
		double best = 1e30;
		for (int r = 0; r < reps; r++) {
			double t = now_seconds();
			int bad = 0;
#pragma omp parallel for num_threads(th) schedule(dynamic, 32) reduction(+ : bad)
			for (int64_t i = 0; i < n; i++) {
				char err[256];
				free(out[i].data);
				bad += image_decode(m[i].data, m[i].len, 0, &out[i], err, sizeof err) < 0;
			}
			t = now_seconds() - t;
			if (bad)
				die("%d members did not decode", bad);
			if (t < best)
				best = t;
		}
		printf("ours_decode_%dt %.0f\n", th, (double)n / best);
	}
	{
		uint64_t sum = 0;
		for (int64_t i = 0; i < n; i++)
			sum = checksum_add(sum, i, out[i].data, (size_t)out[i].h * (size_t)out[i].w * (size_t)out[i].c);
		printf("checksum %llu\n", (unsigned long long)sum);
	}
	for (int64_t i = 0; i < n; i++) {
		free(out[i].data);
		free(m[i].data);
		free(m[i].path);
	}
	free(out);
	free(m);

	for (int th = 1; th <= 2; th++) {
		double best = 1e30;
		int64_t count = 0;
		omp_set_num_threads(th);
		for (int r = 0; r < reps; r++) {
			DatasetOptions o = { 0 };
			double t = now_seconds();
			Dataset *d = dataset_new(&o);
			if (dataset_add(d, argv[1]) < 0 || dataset_finish(d) < 0)
				die("%s", dataset_error(d));
			t = now_seconds() - t;
			count = dataset_count(d);
			dataset_free(d);
			if (t < best)
				best = t;
		}
		printf("ours_archive_%dt %.0f\n", th, (double)count / best);
	}
	return 0;
}
