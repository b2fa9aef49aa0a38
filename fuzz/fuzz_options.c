/* fuzz_options: libFuzzer harness for the strict number parsers behind
 * every tool option (lib/base/util.c): parse_i64, parse_f64, parse_hw and
 * parse_label_spec.
 *
 * Input: one selector byte, then the option's text (cut at the first NUL,
 * as argv would be). selector & 3 picks the parser; selector >> 2 picks the
 * range and the size of the message buffer (down to 1 byte, to check that
 * messages are cut, never overrun).
 * Checks: a success lies inside the range (and the text really is a
 * number: strtoll/strtod agree); a failure leaves a NUL-terminated message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/image.h"
#include "base/util.h"

#define CHECK(x) do { if (!(x)) { fprintf(stderr, "fuzz_options: check failed: %s (line %d)\n", #x, __LINE__); abort(); } } while (0)

static const int64_t ranges[8][2] = {
	{ 1, INT64_MAX }, { 0, INT64_C(1) << 30 }, { 1, 3 }, { INT64_MIN, INT64_MAX },
	{ -1, 1 }, { 0, 0 }, { 1, INT64_C(1) << 20 }, { 0, INT64_MAX },
};
static const double franges[4][2] = { { 0, 1 }, { 0, 100 }, { -1e300, 1e300 }, { 1e-9, 1e9 } };
static const size_t errlens[4] = { 256, 1, 7, 40 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s, *err, *end;
	unsigned sel;
	size_t errlen;
	int rc;

	if (size < 1 || size > 4096)
		return 0;
	sel = data[0];
	s = xmalloc(size);
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	errlen = errlens[(sel >> 5) & 3];
	err = xmalloc(errlen);   /* exactly errlen: ASan catches an overrun */
	memset(err, 'x', errlen);

	switch (sel & 3) {
	case 0: {
		const int64_t *r = ranges[(sel >> 2) & 7];
		int64_t v = 0;
		rc = parse_i64(s, r[0], r[1], &v, err, errlen);
		if (rc == 0) {
			CHECK(v >= r[0] && v <= r[1]);
			CHECK(strtoll(s, &end, 10) == v && *end == '\0' && end != s);
		}
		break;
	}
	case 1: {
		const double *r = franges[(sel >> 2) & 3];
		double v = NAN;
		rc = parse_f64(s, r[0], r[1], &v, err, errlen);
		if (rc == 0) {
			CHECK(!isnan(v) && v >= r[0] && v <= r[1]);
			CHECK(strtod(s, &end) == v && *end == '\0' && end != s);
		}
		break;
	}
	case 2: {
		int maxs[4] = { IMAGE_MAX_SIDE, 1, 64, 2147483647 };
		int max = maxs[(sel >> 2) & 3], h = -7, w = -7;
		rc = parse_hw(s, max, &h, &w, err, errlen);
		if (rc == 0)
			CHECK(h >= 1 && w >= 1 && h <= max && w <= max);
		break;
	}
	default: {
		double frac = 0;
		int64_t per = 0;
		rc = parse_label_spec(s, &frac, &per, err, errlen);
		if (rc == 0)
			CHECK((frac > 0 && frac <= 1 && per == -1) || (per >= 1 && frac == -1));
		break;
	}
	}
	if (rc < 0)
		CHECK(memchr(err, '\0', errlen) != NULL);
	else
		CHECK(rc == 0);
	free(err);
	free(s);
	return 0;
}
