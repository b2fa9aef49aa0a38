/* testutil: see testutil.h. */
#include "testutil.h"

#include "io/checkpoint.h"
#include "nn/model.h"
#include "nn/optim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char tmpdir[256];

static void
cleanup_tmpdir(void)
{
	char cmd[300];
	if (tmpdir[0] && !getenv("TU_KEEP")) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			fprintf(stderr, "testutil: could not remove %s\n", tmpdir);
	}
}

const char *
tu_tmpdir(void)
{
	if (!tmpdir[0]) {
		const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
		snprintf(tmpdir, sizeof tmpdir, "%s/ssltest.XXXXXX", base);
		if (!mkdtemp(tmpdir)) {
			perror("mkdtemp");
			abort();
		}
		atexit(cleanup_tmpdir);
	}
	return tmpdir;
}

const char *
tu_path(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *b = bufs[next++ % 8];
	snprintf(b, 512, "%s/%s", tu_tmpdir(), name);
	return b;
}

const char *
tu_src(void)
{
	const char *s = getenv("SSL_SRC");
	return s ? s : ".";
}

static char *
slurp_fd(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	ssize_t k;
	ck_assert_ptr_nonnull(buf);
	while ((k = read(fd, buf + n, cap - n)) != 0) {
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		n += (size_t)k;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			ck_assert_ptr_nonnull(buf);
		}
	}
	buf[n] = '\0';
	if (len)
		*len = n;
	return buf;
}

void
tu_run(TuResult *r, const char *fmt, ...)
{
	char cmd[8192], full[10240];
	va_list ap;
	char outp[512], errp[512];
	int st, fd;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	snprintf(outp, sizeof outp, "%s/.out.%d", tu_tmpdir(), (int)getpid());
	snprintf(errp, sizeof errp, "%s/.err.%d", tu_tmpdir(), (int)getpid());
	/* Files, not pipes: a big stdout cannot deadlock the test. */
	snprintf(full, sizeof full, "PATH='%s':\"$PATH\"; export PATH; ( %s ) >'%s' 2>'%s' </dev/null",
	         getenv("SSL_BIN") ? getenv("SSL_BIN") : "build/bin", cmd, outp, errp);
	st = system(full);
	memset(r, 0, sizeof *r);
	if (st == -1)
		r->status = -1;
	else if (WIFEXITED(st))
		r->status = WEXITSTATUS(st);
	else
		r->status = 128 + WTERMSIG(st);
	fd = open(outp, O_RDONLY);
	r->out = fd >= 0 ? slurp_fd(fd, &r->outlen) : strdup("");
	if (fd >= 0)
		close(fd);
	fd = open(errp, O_RDONLY);
	r->err = fd >= 0 ? slurp_fd(fd, NULL) : strdup("");
	if (fd >= 0)
		close(fd);
	unlink(outp);
	unlink(errp);
}

void
tu_result_free(TuResult *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

void
tu_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	ck_assert_uint_eq(fwrite(data, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

char *
tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY);
	char *b;
	ck_assert_msg(fd >= 0, "cannot read %s", path);
	b = slurp_fd(fd, len);
	close(fd);
	return b;
}

void
tu_assert_has(const char *text, const char *needle)
{
	ck_assert_msg(text && strstr(text, needle) != NULL, "missing '%s' in:\n%s", needle, text ? text : "(null)");
}

void
tu_run_ok(TuResult *r, const char *cmd)
{
	tu_run(r, "%s", cmd);
	ck_assert_msg(r->status == 0, "'%s' exited %d:\n%s", cmd, r->status, r->err);
}

void
tu_assert_same_checkpoints(const char *a, const char *b)
{
	Checkpoint x, y;
	Model *m[2];
	Optim *o[2];
	char err[512];
	ck_assert_msg(checkpoint_load(&x, a, err, sizeof err) == 0, "%s", err);
	ck_assert_msg(checkpoint_load(&y, b, err, sizeof err) == 0, "%s", err);
	ck_assert_int_eq(x.train.step, y.train.step);
	ck_assert_int_eq(x.optim_step, y.optim_step);
	m[0] = model_new(&x.config, 1, MODEL_TRAIN, err, sizeof err);
	m[1] = model_new(&y.config, 1, MODEL_TRAIN, err, sizeof err);
	ck_assert_msg(m[0] && m[1], "%s", err);
	ck_assert_int_eq(checkpoint_restore_model(&x, m[0], 0, err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_restore_model(&y, m[1], 0, err, sizeof err), 0);
	o[0] = optim_new(&x.optim, model_params(m[0]));
	o[1] = optim_new(&y.optim, model_params(m[1]));
	ck_assert_int_eq(checkpoint_restore_optim(&x, o[0], err, sizeof err), 0);
	ck_assert_int_eq(checkpoint_restore_optim(&y, o[1], err, sizeof err), 0);
	for (int k = 0; k < 2; k++) {
		ParamTable *p = k ? optim_state(o[0]) : model_params(m[0]);
		ParamTable *q = k ? optim_state(o[1]) : model_params(m[1]);
		for (int i = 0; i < p->n; i++) {
			ParamEntry *e = &p->e[i], *f = params_find(q, e->name);
			const void *ea = e->data ? (const void *)e->data : (const void *)e->i64;
			ck_assert_ptr_nonnull(f);
			const void *fa = f->data ? (const void *)f->data : (const void *)f->i64;
			ck_assert_msg(memcmp(ea, fa, (size_t)e->numel * (e->data ? 4 : 8)) == 0, "%s differs between %s and %s",
			              e->name, a, b);
		}
	}
	for (int k = 0; k < 2; k++) {
		optim_free(o[k]);
		model_free(m[k]);
	}
	checkpoint_free(&x);
	checkpoint_free(&y);
}

void
tu_skip(const char *fmt, ...)
{
	const char *path = getenv("TU_SKIP_FILE");
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	fprintf(stderr, "skipped: %s\n", why);
	if (path) {
		FILE *f = fopen(path, "a");
		ck_assert_msg(f != NULL, "%s: cannot record the skip", path);
		fprintf(f, "%s\n", why);
		ck_assert_msg(fclose(f) == 0, "%s: cannot record the skip", path);
	}
}

int
tu_main(Suite *s)
{
	SRunner *sr = srunner_create(s);
	char own[64] = "", line[512], all[2048] = "";
	const char *path = getenv("TU_SKIP_FILE");
	int failed;
	FILE *f;
	if (!path) {
		int fd;
		snprintf(own, sizeof own, "/tmp/tu-skip.XXXXXX");
		if ((fd = mkstemp(own)) < 0) {
			perror(own);
			return 1;
		}
		close(fd);
		setenv("TU_SKIP_FILE", own, 1);
		path = own;
	}
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	/* the distinct reasons, in order */
	if ((f = fopen(path, "r"))) {
		while (fgets(line, sizeof line, f)) {
			line[strcspn(line, "\n")] = '\0';
			if (line[0] && !strstr(all, line) && strlen(all) + strlen(line) + 3 < sizeof all)
				snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", all[0] ? "; " : "", line);
		}
		fclose(f);
	}
	if (own[0])
		unlink(own);
	if (failed)
		return 1;
	if (all[0]) {
		printf("skipped: %s\n", all);
		return TU_EXIT_SKIP;
	}
	return 0;
}
