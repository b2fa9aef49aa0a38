/* embwrite: small `embeddings` and `images` streams for the tool tests of
 * ssl-probe --save/--predict and ssl-similar. Every function fails the
 * running Check test on error. */
#ifndef SSL_EMBWRITE_H
#define SSL_EMBWRITE_H

#include <stdint.h>

typedef struct {
	int                nclasses;  /* 0: no class names in the header */
	char *const       *classes;
	const char        *model_id;  /* header meta, NULL: none */
	const char        *layer;
	int64_t            id0;       /* record i gets id id0 + i */
	int                sources;   /* nonzero: record i gets source "item<id>.png" */
} EmbWriteOpts;

/* n records of x (n, D) with labels y (NULL: all -1) to path. */
void ew_embeddings(const char *path, const float *x, const int64_t *y, int64_t n, int D, const EmbWriteOpts *o);
/* n images (h, w, 3) of a solid colour each (record i: a colour from i), ids id0 + i. */
void ew_images(const char *path, int64_t n, int h, int w, int64_t id0);

#endif
