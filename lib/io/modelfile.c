/* modelfile: see modelfile.h. */
#include "io/modelfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "io/stream.h"

/* What the first bytes say the file is. */
enum { SNIFF_OTHER, SNIFF_CHECKPOINT, SNIFF_SAFETENSORS, SNIFF_STREAM };

static int
sniff(const unsigned char *b, size_t n)
{
	static const char sm[] = "\xa6" "format" "\xaa" STREAM_FORMAT;
	if (n >= 9 && b[8] == '{')
		return SNIFF_SAFETENSORS; /* an 8-byte header length, then the JSON header */
	if ((b[0] & 0xf0) != 0x80 && b[0] != 0xde && b[0] != 0xdf)
		return SNIFF_OTHER; /* not a msgpack map */
	if (memmem(b, n, sm, sizeof sm - 1))
		return SNIFF_STREAM;
	return SNIFF_CHECKPOINT; /* checkpoint_load checks the rest */
}

static const char *
wanted(int accept)
{
	return accept == MODELFILE_CHECKPOINT    ? "an ssl-tools checkpoint (ssl-train -o)"
	       : accept == MODELFILE_SAFETENSORS ? "a safetensors file (ssl-export, or PyTorch)"
	                                         : "a checkpoint (ssl-train -o) or a safetensors file (ssl-export)";
}

/* A file that starts like safetensors but whose header length cannot be. */
static int
damaged_safetensors(const unsigned char *b, long long size, const char *path, char *err, size_t errlen)
{
	unsigned long long len = 0;
	for (int i = 7; i >= 0; i--)
		len = len << 8 | b[i];
	if (len >= 2 && len <= SAFETENSORS_MAX_HEADER && len <= (unsigned long long)size - 8)
		return 0;
	snprintf(err, errlen, "%s: a damaged safetensors file: its header length is %llu bytes, the file has %lld",
	         path, len, size);
	return -1;
}

static int
what_it_is(const char *path, int accept, char *err, size_t errlen)
{
	unsigned char b[64];
	long long size;
	size_t n;
	int kind;
	FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	n = fread(b, 1, sizeof b, fp);
	size = fseek(fp, 0, SEEK_END) == 0 ? (long long)ftell(fp) : -1;
	fclose(fp);
	if (n == 0) {
		snprintf(err, errlen, "%s: empty file, not %s", path, wanted(accept));
		return -1;
	}
	kind = sniff(b, n);
	if (kind == SNIFF_SAFETENSORS && damaged_safetensors(b, size, path, err, errlen) < 0)
		return -1;
	if (kind == SNIFF_STREAM) {
		StreamReader *r = stream_reader_open_path(path);
		const StreamHeader *h = stream_reader_header(r);
		snprintf(err, errlen, "%s: an ssl-tools %s%sstream (ssl-stream(5)), not a model: give %s", path,
		         h ? h->kind : "", h ? " " : "", wanted(accept));
		stream_reader_close(r);
		return -1;
	}
	if (kind == SNIFF_OTHER) {
		snprintf(err, errlen, "%s: neither an ssl-tools checkpoint nor a safetensors file: give %s", path,
		         wanted(accept));
		return -1;
	}
	kind = kind == SNIFF_CHECKPOINT ? MODELFILE_CHECKPOINT : MODELFILE_SAFETENSORS;
	if (!(kind & accept)) {
		snprintf(err, errlen, "%s: %s, not %s", path,
		         kind == MODELFILE_CHECKPOINT ? "an ssl-tools checkpoint" : "a safetensors file", wanted(accept));
		return -1;
	}
	return kind;
}

int
modelfile_open(ModelFile *f, const char *path, int accept, char *err, size_t errlen)
{
	int rc;
	memset(f, 0, sizeof *f);
	checkpoint_init(&f->ck);
	if ((f->kind = what_it_is(path, accept, err, errlen)) < 0)
		return -1;
	if (f->kind == MODELFILE_CHECKPOINT) {
		if (checkpoint_load(&f->ck, path, err, errlen) < 0)
			return -1;
		f->has_config = 1;
		f->config = f->ck.config;
		f->mean = f->ck.mean;
		f->std = f->ck.std;
		f->nprov = f->ck.nprov;
		f->prov = f->ck.prov;
		return 0;
	}
	if (safetensors_open(&f->st, path, err, errlen) < 0)
		return -1;
	if ((rc = safetensors_model_config(&f->st, &f->config, f->st_mean, f->st_std, err, errlen)) < 0)
		return -1;
	f->has_config = rc == 1;
	if (f->has_config) {
		f->mean = f->st_mean;
		f->std = f->st_std;
	}
	return 0;
}

int
modelfile_restore(const ModelFile *f, Model *m, char *err, size_t errlen)
{
	if (f->kind == MODELFILE_CHECKPOINT)
		return checkpoint_restore_model(&f->ck, m, 0, err, errlen);
	{
		const ModelConfig *c = model_config(m);
		unsigned parts = (c->proj_layers ? ST_MODEL_HEAD : 0) | (c->num_classes ? ST_MODEL_FC : 0);
		return safetensors_restore(&f->st, model_params(m), parts, NULL, err, errlen);
	}
}

void
modelfile_free(ModelFile *f)
{
	checkpoint_free(&f->ck);
	safetensors_free(&f->st);
	memset(f, 0, sizeof *f);
}
