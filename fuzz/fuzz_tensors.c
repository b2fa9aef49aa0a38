/* fuzz_tensors: libFuzzer harness for what the tools do with the tensors a
 * stream hands them: zero-sized and odd-shaped images, views and
 * embeddings. fuzz_stream checks the reader; here every record it accepts
 * goes on to the consumers' own steps:
 *   images     ssl-encode --resize (image_resize to the model's 8x8 and to
 *              3x5), ssl-augment (augment_check_input, then augment_record
 *              with the cifar and none recipes), channel conversion;
 *   views      the shape checks ssl-train makes (V >= 2 views of H x W x C);
 *   embeddings ssl-probe's and ssl-plot's loading, class check and PCA.
 * The harness writes the stream itself, so that shapes with zeros, huge
 * dims, bins shorter or longer than the shape, and ranks 0 to 5 are common.
 *
 * Input: a selector byte (& 3: kind images, views, embeddings, or images
 * with a rank other than 3; & 4: u1 or f4 data), the rank r (& 7, at most
 * 5), r dims of 1 byte each (0x80 and up: that many thousands), a 2-byte
 * bin length (0xffff: exactly what the shape needs), then the data bytes
 * (the bin is padded with zeros). Up to 3 records.
 * Checks: the reader refuses every record whose kind tensor has a zero
 * dimension (ssl-stream(5)); the consumers never read out of bounds (ASan),
 * and what they produce has the size they promise. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "data/augment.h"
#include "data/image.h"
#include "eval/embed.h"
#include "eval/pca.h"
#include "io/stream.h"
#include "base/util.h"

#define MAX_BYTES (INT64_C(1) << 20)

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_tensors: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static void
pk_str(msgpack_packer *pk, const char *s)
{
	msgpack_pack_str(pk, strlen(s));
	msgpack_pack_str_body(pk, s, strlen(s));
}

static void
consume_image(const Tensor *t)
{
	static const char *const recipes[2] = { "cifar", "none" };
	int h = (int)t->shape[0], w = (int)t->shape[1], c = (int)t->shape[2];
	uint8_t out[8 * 8 * 3], small[3 * 5 * 3];
	size_t np = (size_t)h * (size_t)w;
	CHECK(h >= 1 && w >= 1 && c >= 1);   /* the reader's rule */
	if (c != 1 && c != 3)
		return;   /* ssl-encode and ssl-augment refuse other channel counts */
	image_resize(out, 8, 8, t->data, h, w, c, NULL);
	image_resize(small, 3, 5, t->data, h, w, c, NULL);
	if (np <= 4096) {
		uint8_t *conv = xmalloc(np * (size_t)(4 - c));
		image_convert_channels(conv, 4 - c, t->data, c, np);
		free(conv);
	}
	for (int k = 0; k < 2; k++) {
		AugmentParams p;
		AugmentScratch s = { 0 };
		char err[256];
		int oh, ow;
		uint8_t *views;
		CHECK(augment_recipe(&p, recipes[k]) == 0);
		p.views = 2;
		if (k == 0)
			p.out_h = p.out_w = 8;
		if (augment_check_input(&p, h, w, c, &oh, &ow, err, sizeof err) < 0) {
			CHECK(err[0] && !strchr(err, '\n'));
			continue;
		}
		if ((size_t)oh * (size_t)ow > 4096)
			continue;
		views = xmalloc((size_t)p.views * (size_t)oh * (size_t)ow * (size_t)c);
		augment_record(views, &s, t->data, h, w, c, oh, ow, &p, 1, 0, 0);
		free(views);
		augment_scratch_free(&s);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const kinds[4] = { "images", "views", "embeddings", "images" };
	static const char *const names[4] = { "image", "views", "embedding", "image" };
	msgpack_sbuffer sb;
	msgpack_packer pk;
	StreamReader *r;
	FILE *fp;
	size_t pos = 1;
	int sel, nrec = 0, kind, f4;
	if (size < 1)
		return 0;
	sel = data[0];
	kind = sel & 3;
	f4 = (sel & 4) || kind == 2;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	pk_str(&pk, "format");
	pk_str(&pk, "ssl-stream");
	pk_str(&pk, "version");
	msgpack_pack_array(&pk, 2);
	msgpack_pack_int(&pk, 1);
	msgpack_pack_int(&pk, 0);
	pk_str(&pk, "kind");
	pk_str(&pk, kinds[kind]);
	while (pos < size && nrec < 3) {
		int rank = data[pos++] & 7;
		int64_t shape[8], need = f4 ? 4 : 1;
		size_t binlen, have;
		if (rank > 5)
			rank = 5;
		if (kind != 3 && rank != (kind == 0 ? 3 : kind == 1 ? 4 : 1) && rank < 5)
			rank = kind == 0 ? 3 : kind == 1 ? 4 : 1;   /* mostly the kind's own rank */
		for (int i = 0; i < rank; i++) {
			uint8_t b = pos < size ? data[pos++] : 1;
			shape[i] = b >= 0x80 ? (int64_t)(b - 0x7f) * 1000 : b;
			need = need > (INT64_C(1) << 40) ? need : need * shape[i];
		}
		if (pos + 2 > size)
			break;
		binlen = (size_t)data[pos] << 8 | data[pos + 1];
		pos += 2;
		if (binlen == 0xffff)
			binlen = need < MAX_BYTES ? (size_t)need : 0;
		have = size - pos < binlen ? size - pos : binlen;
		msgpack_pack_map(&pk, 4);
		pk_str(&pk, "id");
		msgpack_pack_int(&pk, nrec);
		pk_str(&pk, "label");
		msgpack_pack_int(&pk, nrec % 2);
		pk_str(&pk, "epoch");
		msgpack_pack_int(&pk, 0);
		pk_str(&pk, names[kind]);
		msgpack_pack_map(&pk, 3);
		pk_str(&pk, "dtype");
		pk_str(&pk, f4 ? "<f4" : "|u1");
		pk_str(&pk, "shape");
		msgpack_pack_array(&pk, (size_t)rank);
		for (int i = 0; i < rank; i++)
			msgpack_pack_int64(&pk, shape[i]);
		pk_str(&pk, "data");
		msgpack_pack_bin(&pk, binlen);
		if (have)
			msgpack_pack_bin_body(&pk, data + pos, have);
		for (size_t z = have; z < binlen; z++)
			msgpack_pack_bin_body(&pk, "", 1);
		pos += have;
		nrec++;
	}
	msgpack_pack_map(&pk, 2);
	pk_str(&pk, "end");
	msgpack_pack_true(&pk);
	pk_str(&pk, "records");
	msgpack_pack_int(&pk, nrec);

	if (kind == 2) {   /* embeddings: loaded whole, as ssl-probe and ssl-plot do */
		Embeddings e;
		char err[512];
		CHECK((fp = fmemopen(sb.data, sb.size, "rb")) != NULL);
		r = stream_reader_open(fp, "fuzz");
		stream_reader_set_max_bytes(r, MAX_BYTES);
		if (embed_load_reader(&e, r, err, sizeof err) == 0) {
			int K;
			char **cls;
			CHECK(e.n == 0 || e.dim >= 1);
			if (embed_check_pair(&e, &e, &K, &cls, err, sizeof err) == 0)
				embed_names_free(cls, K);
			if (e.n >= 2 && e.dim >= 2) {
				Pca p;
				if (pca_fit(&p, e.x, e.n, e.dim, err, sizeof err) == 0)
					pca_free(&p);
			}
		} else {
			CHECK(err[0] && !strchr(err, '\n'));
		}
		embed_free(&e);
		stream_reader_close(r);
		fclose(fp);
	} else {
		Record rec;
		int s;
		CHECK((fp = fmemopen(sb.data, sb.size, "rb")) != NULL);
		r = stream_reader_open(fp, "fuzz");
		stream_reader_set_max_bytes(r, MAX_BYTES);
		while ((s = stream_reader_next(r, &rec)) == 1) {
			char err[256];
			const Tensor *t;
			if (kind == 1) {
				t = record_tensor(&rec, "views", f4 ? DTYPE_F32 : DTYPE_U8, 4, err, sizeof err);
				if (t)   /* the reader's rule, which ssl-train relies on */
					CHECK(t->shape[0] >= 1 && t->shape[1] >= 1 && t->shape[2] >= 1 && t->shape[3] >= 1);
				continue;
			}
			t = record_tensor(&rec, "image", DTYPE_U8, 3, err, sizeof err);
			if (t)
				consume_image(t);
			else
				CHECK(err[0] && !strchr(err, '\n'));
		}
		if (s < 0)
			CHECK(stream_reader_error(r)[0] && !strchr(stream_reader_error(r), '\n'));
		stream_reader_close(r);
		fclose(fp);
	}
	msgpack_sbuffer_destroy(&sb);
	return 0;
}
