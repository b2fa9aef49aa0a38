/* fuzz_checkpoint: libFuzzer harness for the checkpoint loader
 * (lib/io/checkpoint.c) and the restore into a model and an optimizer.
 * checkpoint_load takes a path, so the bytes go to a file in a private
 * temporary folder first.
 *
 * Input: one selector byte, then the file.
 *   selector & 1: rewrite the last 5 bytes as the CRC-32 of the rest (0xce
 *                 and 4 bytes, as the format says), so that mutations get
 *                 past the checksum and reach the parser behind it
 *   selector & 2: on a successful load of a small model, build it and
 *                 restore every tensor (and the optimizer state)
 * Checks: a failure is one line naming the file and leaves the Checkpoint
 * empty; a loaded checkpoint has a valid config, finite mean and std > 0
 * for every input channel, class names and provenance strings; restores
 * succeed or fail with one line. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "io/checkpoint.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "base/util.h"

#include "fuzz_tmpdir.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_checkpoint: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static char dir[256], path[300];

static void
remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

static void
check_message(const char *err, int names_path)
{
	CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
	if (names_path)
		CHECK(strncmp(err, path, strlen(path)) == 0);
}

/* Small enough to build in a fuzzing loop. */
static int
small(const ModelConfig *c)
{
	return c->width <= 8 && c->in_channels <= 4 && c->in_h <= 64 && c->in_w <= 64 && c->proj_hidden <= 256
	    && c->proj_dim <= 256 && c->num_classes <= 1000;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_make_tmpdir(dir, sizeof dir, "fuzz_checkpoint");
	snprintf(path, sizeof path, "%s/model.ssl", dir);
	atexit(remove_dir);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Checkpoint ck;
	char err[1024];
	unsigned sel;
	FILE *f;

	if (size < 1)
		return 0;
	sel = data[0];
	data++;
	size--;
	f = fopen(path, "wb");
	CHECK(f != NULL);
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	if ((sel & 1) && size >= 5) {
		uint32_t crc = checkpoint_crc32(0, data, size - 5);
		uint8_t tail[5] = { 0xce, (uint8_t)(crc >> 24), (uint8_t)(crc >> 16), (uint8_t)(crc >> 8), (uint8_t)crc };
		CHECK(fseek(f, (long)(size - 5), SEEK_SET) == 0);
		CHECK(fwrite(tail, 1, 5, f) == 5);
	}
	CHECK(fclose(f) == 0);

	if (checkpoint_load(&ck, path, err, sizeof err) < 0) {
		check_message(err, 1);
		CHECK(ck.mean == NULL && ck.std == NULL && ck.classes == NULL && ck.prov == NULL && ck.priv_ == NULL);
		return 0;
	}
	CHECK(model_config_check(&ck.config, err, sizeof err) == 0);
	CHECK(ck.mean != NULL && ck.std != NULL);
	for (int i = 0; i < ck.config.in_channels; i++)
		CHECK(isfinite(ck.mean[i]) && isfinite(ck.std[i]) && ck.std[i] > 0);
	CHECK(ck.nclasses >= 0 && (ck.nclasses == 0 || ck.classes != NULL));
	for (int i = 0; i < ck.nclasses; i++)
		CHECK(ck.classes[i] != NULL);
	for (int i = 0; i < ck.nprov; i++)
		CHECK(ck.prov[i].tool != NULL && ck.prov[i].version != NULL && (ck.prov[i].nargs == 0 || ck.prov[i].args));
	CHECK(checkpoint_check_config(&ck, &ck.config, err, sizeof err) == 0);

	if ((sel & 2) && small(&ck.config)) {
		Model *m = model_new(&ck.config, 1, MODEL_TRAIN, err, sizeof err);
		CHECK(m != NULL);   /* the config passed model_config_check */
		if (checkpoint_restore_model(&ck, m, 0, err, sizeof err) < 0) {
			check_message(err, 0);
		} else if (ck.has_optim) {
			if (optim_config_check(&ck.optim, err, sizeof err) < 0) {
				check_message(err, 0);
			} else {
				Optim *o = optim_new(&ck.optim, model_params(m));
				if (checkpoint_restore_optim(&ck, o, err, sizeof err) < 0)
					check_message(err, 0);
				else
					CHECK(optim_get_step(o) == ck.optim_step);
				optim_free(o);
			}
		}
		if (checkpoint_restore_model(&ck, m, CHECKPOINT_ENCODER_ONLY, err, sizeof err) < 0)
			check_message(err, 0);
		model_free(m);
	}
	checkpoint_free(&ck);
	CHECK(ck.priv_ == NULL && ck.mean == NULL);
	return 0;
}
