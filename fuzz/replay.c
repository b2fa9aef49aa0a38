/* replay: a libFuzzer harness without the fuzzing engine. Runs
 * LLVMFuzzerTestOneInput once on every file given, or on every file in each
 * folder given (sorted by name, so runs repeat), and says how many it ran.
 * `make check` builds one per harness (plain compiler, or ASan+UBSan under
 * check-asan) and replays the committed corpora in fuzz/corpus/<name>/,
 * crash reproducers included; the long runs stay in `make fuzz` (libFuzzer).
 *
 * A harness that finds a problem abort()s, so a failure is a non-zero exit
 * naming the input on stderr. As `make fuzz`'s -malloc_limit_mb=256 does,
 * a single allocation over REPLAY_MALLOC_MIB (a size taken from a header on
 * trust) aborts: outside ASan, malloc, calloc and realloc are wrapped here;
 * under ASan, tests/check-fuzz-corpus.sh sets max_allocation_size_mb. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define REPLAY_MALLOC_MIB 256

#if defined(__SANITIZE_ADDRESS__)
#define REPLAY_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define REPLAY_ASAN 1
#endif
#endif
#ifndef REPLAY_ASAN
#define REPLAY_ASAN 0
#endif

#if !REPLAY_ASAN
/* glibc's allocator under its own names; ours check the size first */
extern void *__libc_malloc(size_t n);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t n);

static void
too_big(size_t n)
{
	char msg[96];
	int k = snprintf(msg, sizeof msg, "replay: an allocation of %zu bytes, over %d MiB\n", n, REPLAY_MALLOC_MIB);
	(void)!write(2, msg, (size_t)k);
	abort();
}

void *
malloc(size_t n)
{
	if (n > (size_t)REPLAY_MALLOC_MIB << 20)
		too_big(n);
	return __libc_malloc(n);
}

void *
calloc(size_t n, size_t size)
{
	if (size && n > ((size_t)REPLAY_MALLOC_MIB << 20) / size)
		too_big(n * size);
	return __libc_calloc(n, size);
}

void *
realloc(void *p, size_t n)
{
	if (n > (size_t)REPLAY_MALLOC_MIB << 20)
		too_big(n);
	return __libc_realloc(p, n);
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static const char *current;   /* the input being run, for the message on a crash */

/* On a crash: name the input (write(2) only), then die of the signal. */
static void
on_crash(int sig)
{
	static const char msg[] = "replay: crashed on ";
	if (current) {
		(void)!write(2, msg, sizeof msg - 1);
		(void)!write(2, current, strlen(current));
		(void)!write(2, "\n", 1);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int
run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, k;
	if (!f) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap ? 2 * cap : 1 << 16;
			if (!(buf = realloc(buf, cap))) {
				fprintf(stderr, "replay: %s: out of memory\n", path);
				exit(1);
			}
		}
		k = fread(buf + len, 1, cap - len, f);
		len += k;
	} while (k > 0);
	if (ferror(f)) {
		fprintf(stderr, "replay: %s: read error\n", path);
		fclose(f);
		free(buf);
		return -1;
	}
	fclose(f);
	current = path;
	LLVMFuzzerTestOneInput(buf, len);
	current = NULL;
	free(buf);
	return 0;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The number of inputs run, or -1. */
static long
run_path(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	long count = 0;
	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path) < 0 ? -1 : 1;
	if (!(d = opendir(path))) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!(names = realloc(names, (n + 1) * sizeof *names)) || !(names[n] = strdup(de->d_name))) {
			fprintf(stderr, "replay: out of memory\n");
			exit(1);
		}
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, cmp_name);
	for (size_t i = 0; i < n; i++) {
		char full[4096];
		snprintf(full, sizeof full, "%s/%s", path, names[i]);
		if (count >= 0 && run_file(full) == 0)
			count++;
		else
			count = -1;
		free(names[i]);
	}
	free(names);
	return count;
}

int
main(int argc, char **argv)
{
	long total = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|FOLDER...\n", argv[0]);
		return 2;
	}
	signal(SIGABRT, on_crash);
	signal(SIGSEGV, on_crash);
	signal(SIGBUS, on_crash);
	signal(SIGFPE, on_crash);
	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++) {
		long k = run_path(argv[i]);
		if (k < 0)
			return 1;
		total += k;
	}
	current = NULL;
	printf("%s: %ld inputs\n", argv[0], total);
	return 0;
}
