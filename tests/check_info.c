/* Tool tests for ssl-info: runs the built binary on streams written here. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/stream.h"
#include "testutil.h"
#include "base/util.h"

/* Six records over two epochs; image shapes vary in H; labels 0,1,1,2,-1,0.
 * With classes=0 the header has no class names. Returns the file size. */
static size_t
write_stream(const char *path, int classes, int trailer)
{
	static const int64_t labels[6] = { 0, 1, 1, 2, -1, 0 };
	char *names[] = { "cat", "dog", "frog" };
	char *argv1[] = { "ssl-decode", "--epochs", "2", "my data.tar" };
	char *argv2[] = { "/x/ssl-augment", "--views", "2" };
	unsigned char px[16 * 8 * 3];
	FILE *f = fopen(path, "wb");
	StreamHeader h;
	StreamWriter *w;
	long size;
	ck_assert_ptr_nonnull(f);
	stream_header_init(&h, STREAM_KIND_IMAGES);
	if (classes)
		stream_header_set_classes(&h, 3, names);
	h.records_per_epoch = 3;
	h.epochs = 2;
	h.start_epoch = 4;
	stream_header_set_meta(&h, "size", "8x8");
	stream_header_add_provenance(&h, 4, argv1);
	stream_header_add_provenance(&h, 3, argv2);
	w = stream_writer_open(f, path, &h);
	ck_assert_ptr_nonnull(w);
	for (int i = 0; i < 6; i++) {
		int64_t shape[3] = { 8 + 8 * (i == 3), 8, 3 }, emb[1] = { 4 };
		float e[4] = { 1, 2, 3, (float)i };
		Record rec = { .id = 100 + i, .label = labels[i] + (classes ? 0 : 5 * (labels[i] >= 0)), .epoch = 4 + i / 3 };
		memset(px, i, sizeof px);
		rec.ntensors = 2;
		rec.tensors[0] = tensor_view("image", DTYPE_U8, 3, shape, px);
		rec.tensors[1] = tensor_view("feat", DTYPE_F32, 1, emb, e);
		ck_assert_int_eq(stream_writer_put(w, &rec), 0);
	}
	if (trailer)
		ck_assert_int_eq(stream_writer_close(w), 0);
	else
		stream_writer_abort(w);
	size = ftell(f);
	ck_assert_int_eq(fclose(f), 0);
	stream_header_free(&h);
	return (size_t)size;
}

START_TEST(test_text_report)
{
	const char *path = tu_path("s.ssl");
	TuResult r;
	write_stream(path, 1, 1);
	tu_run(&r, "ssl-info '%s'", path);
	ck_assert_msg(r.status == 0, "status %d: %s", r.status, r.err);
	ck_assert_str_eq(r.err, "");
	tu_assert_has(r.out, "format: ssl-stream 1.0\nkind: images\nclasses: 3\nrecords_per_epoch: 3\nepochs: 2\n"
	                  "start_epoch: 4\nmeta: size=8x8\n");
	tu_assert_has(r.out, "\npipeline: ssl-decode --epochs 2 'my data.tar' | ssl-augment --views 2\n");
	tu_assert_has(r.out, "\nrecords: 6\nclass 0 cat: 2\nclass 1 dog: 2\nclass 2 frog: 1\nlabel unknown: 1\n"
	                  "epoch 4: 3\nepoch 5: 3\n");
	tu_assert_has(r.out, "\ntensor image: |u1 varies 8x8x3 to 16x8x3 in 6 records\n");
	tu_assert_has(r.out, "\ntensor feat: <f4 4 in 6 records\n");
	tu_assert_has(r.out, "\ntrailer: seen\n");
	tu_result_free(&r);
	/* stdin, "-" and a pipe give the same report but for the file name */
	tu_run(&r, "ssl-info - < '%s' && cat '%s' | ssl-info", path, path);
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "file: <stdin>\n");
	tu_assert_has(r.out, "\ntrailer: seen\nfile: <stdin>\n");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_labels_without_classes)
{
	const char *path = tu_path("nc.ssl");
	TuResult r;
	write_stream(path, 0, 1);
	tu_run(&r, "ssl-info < '%s'", path);
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "\nclasses: 0\n");
	tu_assert_has(r.out, "\nlabel 5: 2\nlabel 6: 2\nlabel 7: 1\nlabel unknown: 1\n");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_json_report)
{
	const char *path = tu_path("j.ssl");
	json_error_t jerr;
	json_t *o, *t, *pc;
	TuResult r;
	write_stream(path, 1, 1);
	tu_run(&r, "ssl-info --json '%s'", path);
	ck_assert_int_eq(r.status, 0);
	o = json_loads(r.out, 0, &jerr);
	ck_assert_msg(o != NULL, "bad JSON: %s", jerr.text);
	ck_assert_str_eq(json_string_value(json_object_get(o, "kind")), "images");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(o, "version"), 0)), 1);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "records")), 6);
	ck_assert_int_eq(json_integer_value(json_object_get(o, "epochs")), 2);
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(o, "classes"), 2)), "frog");
	ck_assert_str_eq(json_string_value(json_object_get(json_object_get(o, "meta"), "size")), "8x8");
	t = json_array_get(json_object_get(o, "provenance"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(t, "tool")), "ssl-augment");
	ck_assert_str_eq(json_string_value(json_array_get(json_object_get(t, "args"), 0)), "--views");
	pc = json_object_get(o, "per_class");
	ck_assert_int_eq(json_array_size(pc), 4);
	ck_assert_str_eq(json_string_value(json_object_get(json_array_get(pc, 1), "name")), "dog");
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pc, 1), "count")), 2);
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(pc, 3), "label")), -1);
	ck_assert(json_is_null(json_object_get(json_array_get(pc, 3), "name")));
	ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(json_object_get(o, "per_epoch"), 1),
	                                                    "epoch")), 5);
	t = json_array_get(json_object_get(o, "tensors"), 0);
	ck_assert_str_eq(json_string_value(json_object_get(t, "name")), "image");
	ck_assert(json_is_true(json_object_get(t, "varies")));
	ck_assert(json_is_null(json_object_get(t, "shape")));
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(t, "max_shape"), 0)), 16);
	t = json_array_get(json_object_get(o, "tensors"), 1);
	ck_assert_str_eq(json_string_value(json_object_get(t, "dtype")), "<f4");
	ck_assert_int_eq(json_integer_value(json_array_get(json_object_get(t, "shape"), 0)), 4);
	ck_assert(json_is_true(json_object_get(o, "trailer")));
	ck_assert_ptr_null(json_object_get(o, "error"));
	json_decref(o);
	tu_result_free(&r);
}
END_TEST

START_TEST(test_truncated)
{
	const char *path = tu_path("t.ssl"), *cut = tu_path("cut.ssl");
	size_t n = write_stream(path, 1, 1);
	json_t *o;
	TuResult r;
	/* cut inside the last record, and no trailer at all */
	tu_run(&r, "head -c %zu '%s' > '%s'", n - 40, path, cut);
	ck_assert_int_eq(r.status, 0);
	tu_result_free(&r);
	tu_run(&r, "ssl-info '%s'", cut);
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "ssl-info: ");
	tu_assert_has(r.err, "truncated stream");
	tu_assert_has(r.out, "\nrecords: 5\n");
	tu_assert_has(r.out, "\ntrailer: missing\n");
	tu_result_free(&r);
	tu_run(&r, "ssl-info --json < '%s'", cut);
	ck_assert_int_eq(r.status, 1);
	o = json_loads(r.out, 0, NULL);
	ck_assert_ptr_nonnull(o);
	ck_assert(json_is_false(json_object_get(o, "trailer")));
	tu_assert_has(json_string_value(json_object_get(o, "error")), "truncated stream");
	json_decref(o);
	tu_result_free(&r);
	write_stream(path, 1, 0);
	tu_run(&r, "ssl-info --quiet '%s'", path);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "truncated stream (EOF after 6 records, no trailer)");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_quiet_ok)
{
	const char *path = tu_path("q.ssl");
	TuResult r;
	write_stream(path, 1, 1);
	tu_run(&r, "ssl-info -q '%s'", path);
	ck_assert_int_eq(r.status, 0);
	ck_assert_uint_eq(r.outlen, 0);
	ck_assert_str_eq(r.err, "");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_bad_inputs)
{
	TuResult r;
	tu_run(&r, "ssl-info '%s'", tu_path("missing.ssl"));
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "missing.ssl: cannot open: No such file or directory");
	tu_result_free(&r);
	tu_run(&r, "echo hello | ssl-info");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "ssl-info: <stdin>: header: not an ssl-stream");
	ck_assert_uint_eq(r.outlen, 0);
	tu_result_free(&r);
	tu_run(&r, "ssl-info < /dev/null");
	ck_assert_int_eq(r.status, 1);
	tu_assert_has(r.err, "truncated stream");
	tu_result_free(&r);
}
END_TEST

START_TEST(test_usage)
{
	TuResult r;
	tu_run(&r, "ssl-info --bogus");
	ck_assert_int_eq(r.status, 2);
	ck_assert_uint_eq(r.outlen, 0);
	tu_assert_has(r.err, "--help");
	tu_result_free(&r);
	tu_run(&r, "ssl-info a b");
	ck_assert_int_eq(r.status, 2);
	tu_result_free(&r);
	tu_run(&r, "ssl-info --help");
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "usage: ssl-info [--json] [--quiet] [--progress] [file]");
	tu_result_free(&r);
	tu_run(&r, "ssl-info --version");
	ck_assert_int_eq(r.status, 0);
	tu_assert_has(r.out, "ssl-info ");
	tu_result_free(&r);
}
END_TEST

static Suite *
info_suite(void)
{
	Suite *s = suite_create("info");
	TCase *tc = tcase_create("tool");
	tcase_add_test(tc, test_text_report);
	tcase_add_test(tc, test_labels_without_classes);
	tcase_add_test(tc, test_json_report);
	tcase_add_test(tc, test_truncated);
	tcase_add_test(tc, test_quiet_ok);
	tcase_add_test(tc, test_bad_inputs);
	tcase_add_test(tc, test_usage);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(info_suite)
