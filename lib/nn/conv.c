/* conv: see conv.h. Convolution as im2col + one sgemm per chunk of images;
 * backward as two sgemms (weights, then columns) + col2im. */
#include "nn/conv.h"

#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "nn/bf16.h"
#include "nn/bn.h"
#include "nn/gemm.h"
#include "base/parallel.h"
#include "base/cpu.h"

/* Output columns per chunk worth one sgemm call, and the most column floats
 * a thread may hold (16 MB). */
#ifndef CHUNK_COLS
#define CHUNK_COLS   512
#endif
#define CHUNK_BUDGET ((size_t)1 << 22)

int
conv_shape_init(ConvShape *s, int C, int H, int W, int OC, int K, int S, int P, int max_n)
{
	if (C < 1 || H < 1 || W < 1 || OC < 1 || K < 1 || S < 1 || P < 0 || P > 65536 || K > 65536 ||
	    max_n < 1)
		return -1;
	if ((long)H + 2L * P < K || (long)W + 2L * P < K)
		return -1;
	*s = (ConvShape){ .C = C, .H = H, .W = W, .OC = OC, .K = K, .S = S, .P = P };
	s->OH = (H + 2 * P - K) / S + 1;
	s->OW = (W + 2 * P - K) / S + 1;
	s->threads = parallel_threads();
	size_t ohw = (size_t)s->OH * s->OW, per = (size_t)C * K * K * ohw;
	size_t chunk = (CHUNK_COLS + ohw - 1) / ohw;
	while (chunk > 1 && chunk * per > CHUNK_BUDGET)
		chunk--;
	size_t fair = ((size_t)max_n + s->threads - 1) / s->threads; /* every thread gets work */
	if (chunk > fair)
		chunk = fair;
	s->chunk = chunk ? (int)chunk : 1;
	return 0;
}

static int
conv_is_pointwise(const ConvShape *s)
{
	return s->K == 1 && s->S == 1 && s->P == 0;
}

/* Stride 1 and "same" padding (out size = in size): the backward data pass
 * is then itself such a convolution, of dout with the flipped, transposed
 * weights, and needs no col2im. */
static int
conv_is_same(const ConvShape *s)
{
	return s->S == 1 && s->OH == s->H && s->OW == s->W && 2 * s->P == s->K - 1;
}

/* Chunks are dealt out in GROUPS fixed groups per thread, taken
 * dynamically (a thread that the OS keeps waiting does not hold the others
 * up), and every sum over chunks goes into its group's slot and is then
 * added up in group order: the same result every run, whichever thread
 * did which group. */
#define GROUPS 2

static int
conv_groups(const ConvShape *s)
{
	return GROUPS * s->threads;
}

/* Matrices with few rows go to our own micro-kernels (lib/nn/gemm.h
 * gemm_fast), which read the columns in place instead of packing them
 * again and waste nothing on 16 or 32 rows; wider ones to OpenBLAS. */
#define FAST_ROWS 32

static int
fast_rows(const ConvShape *s, int rows)
{
	return !s->bf16 && rows <= FAST_ROWS && gemm_fast();
}

/* The one-thread product the other sizes go to: OpenBLAS, or bf16. */
static GemmFn *
conv_gemm(const ConvShape *s)
{
	return s->bf16 ? gemm_bf16_serial : gemm_serial;
}

/* The same for a product whose op(A) is the layer's weights (or their
 * transpose): in bf16 A comes from the copy packed once per call in ap
 * (bf16_pack_a), not converted again for every chunk. */
static void
conv_wgemm(const ConvShape *s, const float *ap, int ta, int M, int N, int K, const float *A, int lda, const float *B,
           int ldb, float beta, float *C, int ldc)
{
	if (s->bf16)
		gemm_bf16_packed_a(M, N, K, (const uint16_t *)ap, 0, B, ldb, beta, C, ldc);
	else
		gemm_serial(ta, 0, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
}

/* Channel pairs of a bf16 implicit product. */
static int
pairs_of(int channels)
{
	return (channels + 1) / 2;
}

/* Floats that the bf16 packing of the weights takes, for every way they
 * are used (OC x CKK forward; C x OC*K*K or CKK x OC backward). */
static size_t
bf16_weight_floats(const ConvShape *s)
{
	const int KK = s->K * s->K;
	size_t e = bf16_pack_a_elems(s->OC, s->C * KK), t;
	if ((t = bf16_pack_a_elems(s->C, s->OC * KK)) > e)
		e = t;
	if ((t = bf16_pack_a_elems(s->C * KK, s->OC)) > e)
		e = t;
	/* the implicit products': pairs of channels, an odd one padded */
	if ((t = bf16_pack_a_elems(s->OC, 2 * pairs_of(s->C) * KK)) > e)
		e = t;
	if ((t = bf16_pack_a_elems(s->C, 2 * pairs_of(s->OC) * KK)) > e)
		e = t;
	return (e + 1) / 2;
}

/* Stride-1 "same" convolutions with few channels on both sides run as an
 * implicit GEMM: each image is copied once into zero-padded planes of width
 * Wp = W + 2P, and row (c, kh, kw) of its im2col is that copy read from
 * c * plane + kh * Wp + kw, over an output grid of H rows of Wp columns
 * whose last 2P columns are junk, dropped when the result is copied out.
 * The K*K-fold column matrix is never written nor read: for the 16- and
 * 32-channel layers of a CIFAR ResNet that traffic cost more than the
 * multiply. */
#define IMPLICIT_MAX_K 7
#ifndef IMPLICIT_MAX_C
#define IMPLICIT_MAX_C 32
#endif
#define IMPLICIT_MAX_OFFS (IMPLICIT_MAX_C * IMPLICIT_MAX_K * IMPLICIT_MAX_K)
/* elements of a bf16 implicit product's weight rows: pairs, an odd channel padded */
#define IMPLICIT_MAX_PAIRED ((IMPLICIT_MAX_C + 1) * IMPLICIT_MAX_K * IMPLICIT_MAX_K)

static int
implicit_shape(const ConvShape *s)
{
	return conv_is_same(s) && s->K > 1 && s->K <= IMPLICIT_MAX_K && s->C <= IMPLICIT_MAX_C &&
	       s->OC <= IMPLICIT_MAX_C;
}

/* In bf16 too (gemm_bf16_rows: pairs of channels, interleaved). */
static int
conv_is_implicit(const ConvShape *s)
{
	return implicit_shape(s) && gemm_fast();
}

typedef struct {
	int    Wp;    /* padded width */
	size_t plane; /* floats per padded plane, with zeros that junk columns read past the end */
	int    grid;  /* output grid H x Wp */
	int    gld;   /* row stride of a grid buffer */
} Pad;

static Pad
pad_geometry(const ConvShape *s)
{
	Pad g;
	g.Wp = s->W + 2 * s->P;
	g.plane = (size_t)gemm_pad_ld((s->H + 2 * s->P) * g.Wp + s->K - 1);
	g.grid = s->H * g.Wp;
	g.gld = gemm_pad_ld(g.grid);
	return g;
}

/* Per thread: padded input and dout (fp32), then in bf16 their copies
 * (input and dout as bf16 planes, the pairs of the side being multiplied
 * as interleaved words), then one grid of max(C, OC) rows. The size does
 * not depend on the precision (a model switches between steps). */
typedef struct {
	float    *pin, *pdy; /* C and OC fp32 planes */
	uint16_t *pinb, *pdyb; /* C and OC bf16 planes */
	uint32_t *pairs; /* pairs_of(max(C, OC)) interleaved planes */
	float    *grid;
	size_t    floats;
} ImplicitBuf;

static ImplicitBuf
implicit_layout(float *buf, const ConvShape *s)
{
	const Pad g = pad_geometry(s);
	const size_t cmax = s->C > s->OC ? (size_t)s->C : (size_t)s->OC;
	ImplicitBuf b;
	size_t off = 0;
#define AT(p) ((buf) ? (buf) + (p) : NULL)
	b.pin = AT(off);
	off += (size_t)s->C * g.plane;
	b.pdy = AT(off);
	off += (size_t)s->OC * g.plane;
	b.pinb = (uint16_t *)AT(off);
	off += ((size_t)s->C * g.plane + 1) / 2;
	b.pdyb = (uint16_t *)AT(off);
	off += ((size_t)s->OC * g.plane + 1) / 2;
	b.pairs = (uint32_t *)AT(off);
	off += (size_t)pairs_of((int)cmax) * g.plane;
	off = (off + 15) & ~(size_t)15; /* the grid as aligned as the buffer */
	b.grid = AT(off);
	off += cmax * g.gld;
#undef AT
	b.floats = off;
	return b;
}

static size_t
implicit_floats(const ConvShape *s)
{
	return implicit_layout(NULL, s).floats;
}

/* off[(c * K + kh) * K + kw] = c * plane + kh * Wp + kw for c < channels */
static void
implicit_offsets(ptrdiff_t *off, int channels, const ConvShape *s, const Pad *g)
{
	const int K = s->K;
	for (int c = 0; c < channels; c++)
		for (int kh = 0; kh < K; kh++)
			for (int kw = 0; kw < K; kw++)
				off[(c * K + kh) * K + kw] = (ptrdiff_t)(c * g->plane) + kh * g->Wp + kw;
}

/* Row stride of a chunk's columns, padded for the fast kernels. */
static int
col_ld(const ConvShape *s, int nb)
{
	return gemm_pad_ld(nb * s->OH * s->OW);
}

/* Strided convolutions split each input plane into S phases per row (input
 * columns S x + p, for p < S) with zeros around, once per channel and
 * image: every im2col row (and col2im's sum) is then a contiguous run per
 * output row instead of a strided gather of K*K times the plane. Phase row
 * (y, p) holds column S x + p at lead + x. That pays where taps overlap
 * (K > S) and runs fill a vector (bench_conv, Zen 5: the 7x7/2 ImageNet
 * stem 1.5x, 3x3/2 on 32 px 1.3x; 3x3/2 on 8 px 1.4x slower, 1x1/2 2x
 * slower). */
static int
conv_uses_phases(const ConvShape *s)
{
	return s->S > 1 && s->K > s->S && s->OW >= 16;
}

static int
phase_lead(const ConvShape *s)
{
	return (s->P + s->S - 1) / s->S;
}

static int
phase_rowlen(const ConvShape *s)
{
	return phase_lead(s) + s->OW + s->K + 1;
}

/* floats of one plane's phase rows (after the chunk's columns) */
static size_t
phase_floats(const ConvShape *s)
{
	/* whole 64-byte lines: the next thread's columns stay aligned */
	return conv_uses_phases(s) ? ((size_t)s->H * s->S * phase_rowlen(s) + 15) & ~(size_t)15 : 0;
}

/* Column floats of one chunk (pointwise convolutions need them too when an
 * input transform needs a transformed copy; same convolutions hold dout's
 * columns in backward). */
static size_t
conv_chunk_floats(const ConvShape *s)
{
	int c = conv_is_same(s) && s->OC > s->C ? s->OC : s->C;
	size_t n = (size_t)c * s->K * s->K * (size_t)col_ld(s, s->chunk) + phase_floats(s);
	/* whether or not the fast kernels are on: the size does not depend on the CPU */
	if (implicit_shape(s) && implicit_floats(s) > n)
		n = implicit_floats(s);
	return n;
}

typedef struct {
	float  *col;       /* threads x csz column floats */
	size_t  csz;
	float  *ap;        /* packed weights for the fast kernels */
	float  *partial;   /* groups x weight gradients */
	float  *wt;        /* flipped, transposed weights (same convolutions) */
	double *sums;      /* groups x 2 x max(C, OC) */
	size_t  total, total_eval; /* floats needed */
} Work;

static Work
work_layout(float *work, const ConvShape *s)
{
	Work w;
	size_t wsz = (size_t)s->OC * s->C * s->K * s->K, G = (size_t)conv_groups(s);
	size_t cmax = s->C > s->OC ? (size_t)s->C : (size_t)s->OC, off = 0;
#define AT(p) ((work) ? (work) + (p) : NULL)
	w.csz = conv_chunk_floats(s);
	w.col = AT(off);
	off += w.csz * s->threads;
	w.ap = AT(off);
	/* either precision's packed weights (the size does not depend on it) */
	size_t apf = gemm_pack_floats((int)cmax, (int)(cmax * s->K * s->K));
	off += bf16_weight_floats(s) > apf ? bf16_weight_floats(s) : apf;
	w.total_eval = off;
	w.partial = AT(off);
	off += G * wsz;
	w.wt = AT(off);
	off += conv_is_same(s) ? wsz : 0;
	off = (off + 1) & ~(size_t)1; /* doubles: 8-byte aligned, as work is */
	w.sums = (double *)AT(off);
	off += G * 4 * cmax;
#undef AT
	w.total = off;
	return w;
}

size_t
conv_work_floats(const ConvShape *s)
{
	return work_layout(NULL, s).total;
}

size_t
conv_work_floats_eval(const ConvShape *s)
{
	return work_layout(NULL, s).total_eval;
}

int64_t
conv_flops(const ConvShape *s)
{
	return 2 * (int64_t)s->C * s->K * s->K * s->OC * s->OH * s->OW;
}

/* Group g's share [lo, hi) of nchunks (of G groups), in order. */
static void
share(int nchunks, int t, int T, int *lo, int *hi)
{
	*lo = (int)((long)nchunks * t / T);
	*hi = (int)((long)nchunks * (t + 1) / T);
}

/* dst[0..L) = f(src[j]) for a run (transform: relu((v - m) * a + b)) */
static inline void
run_copy(float *dst, const float *src, size_t L, int tf, float m, float a, float b)
{
	if (!tf) {
		memcpy(dst, src, sizeof(float) * L);
		return;
	}
#pragma omp simd
	for (size_t j = 0; j < L; j++) {
		float v = (src[j] - m) * a + b;
		dst[j] = v > 0.0f ? v : 0.0f;
	}
}

/* im2col for stride 1 and same padding: each (c, kh, kw) row of an image is
 * the input plane shifted by (kh - P, kw - P), so it is one long run plus
 * zeroed borders, whatever the width (the 4x4 maps at the end of a CIFAR
 * ResNet make per-row loops slow). */
CPU_BODY void
im2col_same_body(float *col, size_t ld, const float *inp, int n, int i0, int nb, const ConvShape *s,
                 const ConvFuse *f)
{
	const int K = s->K, P = s->P, H = s->H, W = s->W;
	const size_t hw = (size_t)H * W;
	const int tf = f && f->in_mean;
	for (long r = 0; r < (long)s->C * K * K; r++) {
		int kw = (int)(r % K), kh = (int)(r / K % K), c = (int)(r / (K * K));
		float m = tf ? f->in_mean[c] : 0.0f, a = tf ? f->in_scale[c] : 1.0f, b = tf ? f->in_shift[c] : 0.0f;
		int dy = kh - P, dx = kw - P;
		int lo = dy < 0 ? -dy : 0, hi = dy > 0 ? H - dy : H; /* output rows that read inside */
		if (hi < lo)
			hi = lo;
		for (int ii = 0; ii < nb; ii++) {
			float *dst = col + (size_t)r * ld + (size_t)ii * hw;
			const float *src = inp + ((size_t)c * n + i0 + ii) * hw;
			memset(dst, 0, sizeof(float) * (size_t)lo * W);
			memset(dst + (size_t)hi * W, 0, sizeof(float) * (size_t)(H - hi) * W);
			size_t L = (size_t)(hi - lo) * W;
			if (!L)
				continue;
			float *d = dst + (size_t)lo * W;
			const float *sp = src + (size_t)(lo + dy) * W; /* + dx, kept in bounds below */
			if (dx == 0) {
				run_copy(d, sp, L, tf, m, a, b);
			} else if (dx < 0) { /* column j reads j + dx; the first -dx of each row are padding */
				run_copy(d - dx, sp, L + dx, tf, m, a, b);
				for (int y = 0; y < hi - lo; y++)
					for (int k = 0; k < -dx; k++)
						d[(size_t)y * W + k] = 0.0f;
			} else {
				run_copy(d, sp + dx, L - dx, tf, m, a, b);
				for (int y = 0; y < hi - lo; y++)
					for (int k = W - dx; k < W; k++)
						d[(size_t)y * W + k] = 0.0f;
			}
		}
	}
}
CPU_CLONES(im2col_same,
           (float *col, size_t ld, const float *inp, int n, int i0, int nb, const ConvShape *s,
            const ConvFuse *f),
           (col, ld, inp, n, i0, nb, s, f))

/* dst (C planes, g->plane apart) = image i of src (C,n,H,W) zero-padded by
 * P, through the input transform when f has one (padding stays 0). */
static void
pad_image(float *dst, const Pad *g, const float *src, int C, int n, int i, const ConvShape *s, const ConvFuse *f)
{
	const int H = s->H, W = s->W, P = s->P, Wp = g->Wp;
	const int tf = f && f->in_mean;
	for (int c = 0; c < C; c++) {
		float *d = dst + (size_t)c * g->plane;
		const float *sp = src + ((size_t)c * n + i) * H * W;
		float m = tf ? f->in_mean[c] : 0.0f, a = tf ? f->in_scale[c] : 1.0f, b = tf ? f->in_shift[c] : 0.0f;
		memset(d, 0, sizeof(float) * ((size_t)P * Wp + P));
		for (int y = 0; y < H; y++) {
			float *row = d + (size_t)(y + P) * Wp + P;
			run_copy(row, sp + (size_t)y * W, (size_t)W, tf, m, a, b);
			for (int k = 0; k < 2 * P; k++) /* this row's right pad, the next row's left */
				row[W + k] = 0.0f;
		}
		size_t done = (size_t)(H + P) * Wp + P;
		memset(d + done, 0, sizeof(float) * (g->plane - done));
	}
}

/* image i of dst (C,n,H,W) = (accumulate: +=) the valid columns of grid */
static void
unpad_grid(float *dst, const float *grid, const Pad *g, int C, int n, int i, const ConvShape *s, int accumulate)
{
	const int H = s->H, W = s->W;
	for (int c = 0; c < C; c++)
		for (int y = 0; y < H; y++) {
			float *d = dst + (((size_t)c * n + i) * H + y) * W;
			const float *sp = grid + (size_t)c * g->gld + (size_t)y * g->Wp;
			if (!accumulate) {
				memcpy(d, sp, sizeof(float) * W);
				continue;
			}
#pragma omp simd
			for (int x = 0; x < W; x++)
				d[x] += sp[x];
		}
}

/* The phase rows of plane src (H x W), through the input transform when tf. */
CPU_BODY void
split_phases(float *ph, const float *src, const ConvShape *s, int tf, float m, float a, float b)
{
	const int S = s->S, W = s->W, A = phase_lead(s), L = phase_rowlen(s);
	for (int y = 0; y < s->H; y++)
		for (int p = 0; p < S; p++) {
			float *d = ph + ((size_t)y * S + p) * L;
			const int n = p < W ? (W - p + S - 1) / S : 0;
			const float *r = src + (size_t)y * W + (n ? p : 0);
			memset(d, 0, sizeof(float) * A);
			memset(d + A + n, 0, sizeof(float) * (L - A - n));
			d += A;
			if (!tf) {
#pragma omp simd
				for (int x = 0; x < n; x++)
					d[x] = r[(size_t)x * S];
			} else {
#pragma omp simd
				for (int x = 0; x < n; x++) {
					float v = (r[(size_t)x * S] - m) * a + b;
					d[x] = v > 0.0f ? v : 0.0f;
				}
			}
		}
}

/* Where tap column kw reads in input row 0: phase row (0, p) at its lead
 * + shift; input row ih is ih * S phase rows further. */
static inline float *
phase_tap(float *ph, const ConvShape *s, int kw)
{
	const int S = s->S, off = kw - s->P, p = ((off % S) + S) % S;
	return ph + (size_t)p * phase_rowlen(s) + phase_lead(s) + (off - p) / S;
}

/* im2col of a strided convolution through the phase rows (in ph). */
CPU_BODY void
im2col_strided(float *col, size_t ld, float *ph, const float *inp, int n, int i0, int nb, const ConvShape *s,
               const ConvFuse *f)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, OH = s->OH, OW = s->OW;
	const size_t hw = (size_t)H * s->W, ohw = (size_t)OH * OW, rowstep = (size_t)S * phase_rowlen(s);
	const int tf = f && f->in_mean;
	for (int c = 0; c < s->C; c++) {
		float m = tf ? f->in_mean[c] : 0.0f, a = tf ? f->in_scale[c] : 1.0f, b = tf ? f->in_shift[c] : 0.0f;
		for (int ii = 0; ii < nb; ii++) {
			split_phases(ph, inp + ((size_t)c * n + i0 + ii) * hw, s, tf, m, a, b);
			for (int kh = 0; kh < K; kh++)
				for (int kw = 0; kw < K; kw++) {
					float *dst = col + ((size_t)(c * K + kh) * K + kw) * ld + (size_t)ii * ohw;
					const float *tap = phase_tap(ph, s, kw);
					for (int oh = 0, ih = kh - P; oh < OH; oh++, ih += S, dst += OW) {
						if (ih < 0 || ih >= H) {
							memset(dst, 0, sizeof(float) * OW);
							continue;
						}
						const float *run = tap + (size_t)ih * rowstep;
#pragma omp simd
						for (int ow = 0; ow < OW; ow++)
							dst[ow] = run[ow];
					}
				}
		}
	}
}

/* col (C*K*K rows of nb*OH*OW, row stride ld) from images [i0, i0+nb) of inp (C,n,H,W), through
 * the input transform relu((x - m) * a + b) when f has one (padding stays 0:
 * it pads the transformed input). */
CPU_BODY void
im2col_body(float *col, size_t ld, const float *inp, int n, int i0, int nb, const ConvShape *s,
            const ConvFuse *f)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const long rows = (long)s->C * K * K;
	const int tf = f && f->in_mean;
	if (conv_is_same(s) && W > 1) {
		im2col_same(col, ld, inp, n, i0, nb, s, f);
		return;
	}
	if (conv_uses_phases(s)) { /* the phase rows after the chunk's columns (conv_chunk_floats) */
		im2col_strided(col, ld, col + (size_t)rows * ld, inp, n, i0, nb, s, f);
		return;
	}
	for (long r = 0; r < rows; r++) {
		int kw = (int)(r % K), kh = (int)(r / K % K), c = (int)(r / (K * K));
		float m = tf ? f->in_mean[c] : 0.0f, a = tf ? f->in_scale[c] : 1.0f, b = tf ? f->in_shift[c] : 0.0f;
		float *dst = col + (size_t)r * ld;
		/* output columns [ow_lo, ow_hi) read inside the image */
		int ow_lo = 0, ow_hi = OW;
		while (ow_lo < OW && ow_lo * S - P + kw < 0)
			ow_lo++;
		while (ow_hi > ow_lo && (ow_hi - 1) * S - P + kw >= W)
			ow_hi--;
		for (int ii = 0; ii < nb; ii++) {
			const float *src = inp + ((size_t)c * n + i0 + ii) * H * W;
			for (int oh = 0; oh < OH; oh++, dst += OW) {
				int ih = oh * S - P + kh;
				if (ih < 0 || ih >= H) {
					memset(dst, 0, sizeof(float) * OW);
					continue;
				}
				const float *row = src + (size_t)ih * W; /* input column ow*S - P + kw */
				const int off = kw - P;
				for (int ow = 0; ow < ow_lo; ow++)
					dst[ow] = 0.0f;
				if (S == 1 && !tf) {
					memcpy(dst + ow_lo, row + ow_lo + off, sizeof(float) * (ow_hi - ow_lo));
				} else if (S == 1) {
#pragma omp simd
					for (int ow = ow_lo; ow < ow_hi; ow++) {
						float v = (row[ow + off] - m) * a + b;
						dst[ow] = v > 0.0f ? v : 0.0f;
					}
				} else if (!tf) {
					for (int ow = ow_lo; ow < ow_hi; ow++)
						dst[ow] = row[ow * S + off];
				} else {
					for (int ow = ow_lo; ow < ow_hi; ow++) {
						float v = (row[ow * S + off] - m) * a + b;
						dst[ow] = v > 0.0f ? v : 0.0f;
					}
				}
				for (int ow = ow_hi; ow < OW; ow++)
					dst[ow] = 0.0f;
			}
		}
	}
}
CPU_CLONES(im2col,
           (float *col, size_t ld, const float *inp, int n, int i0, int nb, const ConvShape *s,
            const ConvFuse *f),
           (col, ld, inp, n, i0, nb, s, f))

/* col2im of a strided convolution: each image's runs summed into the phase
 * rows (in ph), which then go to dinp (overwrite: assigned). */
CPU_BODY void
col2im_strided(float *dinp, const float *dcol, float *ph, int n, int i0, int nb, const ConvShape *s, int overwrite)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const int A = phase_lead(s), L = phase_rowlen(s);
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw, rowstep = (size_t)S * L;
	for (int c = 0; c < s->C; c++)
		for (int ii = 0; ii < nb; ii++) {
			memset(ph, 0, sizeof(float) * phase_floats(s));
			for (int kh = 0; kh < K; kh++)
				for (int kw = 0; kw < K; kw++) {
					const float *src = dcol + ((size_t)(c * K + kh) * K + kw) * ld + (size_t)ii * ohw;
					float *tap = phase_tap(ph, s, kw);
					for (int oh = 0, ih = kh - P; oh < OH; oh++, ih += S, src += OW) {
						if (ih < 0 || ih >= H)
							continue;
						float *run = tap + (size_t)ih * rowstep;
#pragma omp simd
						for (int ow = 0; ow < OW; ow++)
							run[ow] += src[ow];
					}
				}
			float *img = dinp + ((size_t)c * n + i0 + ii) * H * W;
			for (int y = 0; y < H; y++)
				for (int p = 0; p < S && p < W; p++) {
					const float *d = ph + ((size_t)y * S + p) * L + A;
					float *r = img + (size_t)y * W + p;
					const int np = (W - p + S - 1) / S;
					if (overwrite) {
#pragma omp simd
						for (int x = 0; x < np; x++)
							r[(size_t)x * S] = d[x];
					} else {
#pragma omp simd
						for (int x = 0; x < np; x++)
							r[(size_t)x * S] += d[x];
					}
				}
		}
}

/* dinp (C,n,H,W) images [i0, i0+nb) += col2im(dcol); overwrite: the chunk's
 * images are cleared first (they are about to be in cache anyway). */
CPU_BODY void
col2im_body(float *dinp, const float *dcol, int n, int i0, int nb, const ConvShape *s, int overwrite)
{
	const int K = s->K, S = s->S, P = s->P, H = s->H, W = s->W, OH = s->OH, OW = s->OW;
	const size_t ohw = (size_t)OH * OW, ld = (size_t)nb * ohw;
	if (conv_uses_phases(s)) { /* the phase rows after the chunk's columns (dcol is the column
	                            * buffer, ld nb * ohw <= col_ld: conv_chunk_floats) */
		col2im_strided(dinp, dcol, (float *)dcol + (size_t)s->C * K * K * col_ld(s, nb), n, i0, nb, s, overwrite);
		return;
	}
	for (int c = 0; c < s->C; c++) {
		if (overwrite)
			memset(dinp + ((size_t)c * n + i0) * H * W, 0, sizeof(float) * nb * H * W);
		for (int kh = 0; kh < K; kh++)
			for (int kw = 0; kw < K; kw++) {
				const float *src = dcol + ((size_t)(c * K + kh) * K + kw) * ld;
				int ow_lo = 0, ow_hi = OW;
				while (ow_lo < OW && ow_lo * S - P + kw < 0)
					ow_lo++;
				while (ow_hi > ow_lo && (ow_hi - 1) * S - P + kw >= W)
					ow_hi--;
				const int off = kw - P;
				for (int ii = 0; ii < nb; ii++) {
					float *dst = dinp + ((size_t)c * n + i0 + ii) * H * W;
					for (int oh = 0; oh < OH; oh++, src += OW) {
						int ih = oh * S - P + kh;
						if (ih < 0 || ih >= H)
							continue;
						float *row = dst + (size_t)ih * W;
						if (S == 1) {
#pragma omp simd
							for (int ow = ow_lo; ow < ow_hi; ow++)
								row[ow + off] += src[ow];
						} else {
							for (int ow = ow_lo; ow < ow_hi; ow++)
								row[ow * S + off] += src[ow];
						}
					}
				}
			}
	}
}
CPU_CLONES(col2im, (float *dinp, const float *dcol, int n, int i0, int nb, const ConvShape *s, int overwrite),
           (dinp, dcol, n, i0, nb, s, overwrite))

/* BN backward sums over chunk ch of dinp (see ConvFuse.dinp_sums) */
static void
chunk_sums(double *ts, const float *dinp, const float *inp, int n, int ch, const ConvShape *s, const ConvFuse *f)
{
	int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
	size_t hw = (size_t)s->H * s->W;
	for (int c = 0; c < s->C; c++) {
		size_t off = ((size_t)c * n + i0) * hw;
		bn_grad_sums_recompute(&ts[2 * c], dinp + off, inp + off, (size_t)nb * hw, f->in_mean[c], f->in_rstd[c],
		                       f->in_scale[c], f->in_shift[c]);
	}
}

/* dst (channels / 2 planes of words, rounded up) = the planes of src in
 * pairs as bf16, interleaved (bf16_interleave); an odd last one paired
 * with zeros. */
static void
interleave_planes(uint32_t *dst, const float *src, int channels, size_t plane)
{
	for (int cp = 0; cp < pairs_of(channels); cp++)
		bf16_interleave(dst + (size_t)cp * plane, src + (size_t)2 * cp * plane,
		                2 * cp + 1 < channels ? src + (size_t)(2 * cp + 1) * plane : NULL, plane);
}

/* The weights of a bf16 implicit product, packed as gemm_bf16_rows reads
 * them: forward, rows oc and pairs (c / 2, tap); data gradient (dgrad),
 * rows c and pairs (oc / 2, flipped tap). */
static void
implicit_pack_bf16(uint16_t *ap, const float *weight, const ConvShape *s, int dgrad)
{
	const int KK = s->K * s->K, rows = dgrad ? s->C : s->OC, inner = dgrad ? s->OC : s->C;
	const size_t KP = (size_t)pairs_of(inner) * KK;
	ptrdiff_t koff[IMPLICIT_MAX_PAIRED];
	for (size_t q = 0; q < KP; q++)
		for (int e = 0; e < 2; e++) {
			const int ch = (int)(q / KK) * 2 + e, t = (int)(q % KK);
			if (ch >= inner)
				koff[2 * q + e] = -1;
			else if (dgrad) /* element (c, k) at weight[(oc * C + c) * KK + KK - 1 - t] */
				koff[2 * q + e] = ((ptrdiff_t)ch * s->C) * KK + KK - 1 - t;
			else
				koff[2 * q + e] = (ptrdiff_t)ch * KK + t;
		}
	bf16_pack_a_gather(ap, weight, rows, KP, dgrad ? KK : (ptrdiff_t)s->C * KK, koff);
}

/* Forward of images [i0, i0+nb) by implicit GEMM, in buf (implicit_layout). */
static void
implicit_forward(float *out, float *buf, const float *inp, const float *ap, int n, int i0, int nb,
                 const ConvShape *s, const ConvFuse *f)
{
	const Pad g = pad_geometry(s);
	const ImplicitBuf b = implicit_layout(buf, s);
	const int KK = s->K * s->K;
	ptrdiff_t off[IMPLICIT_MAX_OFFS];
	implicit_offsets(off, s->bf16 ? pairs_of(s->C) : s->C, s, &g);
	for (int i = i0; i < i0 + nb; i++) {
		pad_image(b.pin, &g, inp, s->C, n, i, s, f);
		if (s->bf16) {
			interleave_planes(b.pairs, b.pin, s->C, g.plane);
			gemm_bf16_rows(s->OC, g.grid, (size_t)pairs_of(s->C) * KK, (const uint16_t *)ap, b.pairs, off, b.grid,
			               g.gld);
		} else {
			gemm_packed_rows(s->OC, g.grid, s->C * KK, ap, b.pin, off, 0, b.grid, g.gld);
		}
		unpad_grid(out, b.grid, &g, s->OC, n, i, s, 0);
	}
}

/* One chunk of the forward pass; sums into st when stats are wanted. */
static void
forward_chunk(float *out, const Work *w, const float *inp, const float *weight, const float *bias, int n, int ch,
              const ConvShape *s, const ConvFuse *f, double *st)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw;
	int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
	int ncol = (int)(nb * ohw);
	float *o = out + i0 * ohw;
	if (conv_is_pointwise(s) && !(f && f->in_mean)) {
		conv_wgemm(s, w->ap, 0, OC, ncol, CKK, weight, CKK, inp + i0 * ohw, (int)ldo, 0.0f, o, (int)ldo);
	} else if (conv_is_implicit(s)) {
		implicit_forward(out, w->col + (size_t)omp_get_thread_num() * w->csz, inp, w->ap, n, i0, nb, s, f);
	} else {
		float *col = w->col + (size_t)omp_get_thread_num() * w->csz;
		int ld = col_ld(s, nb);
		im2col(col, (size_t)ld, inp, n, i0, nb, s, f);
		if (fast_rows(s, OC))
			gemm_packed_nn(OC, ncol, CKK, w->ap, col, ld, 0, o, (int)ldo);
		else
			conv_wgemm(s, w->ap, 0, OC, ncol, CKK, weight, CKK, col, ld, 0.0f, o, (int)ldo);
	}
	for (int oc = 0; oc < OC && (bias || st); oc++) {
		float *r = o + oc * ldo;
		if (bias) {
			float b = bias[oc];
			for (int j = 0; j < ncol; j++)
				r[j] += b;
		}
		if (st) /* while the chunk is still in cache */
			bn_sums(r, (size_t)ncol, &st[2 * oc], &st[2 * oc + 1]);
	}
}

void
conv2d_forward_fused(float *out, float *work, const float *inp, const float *weight, const float *bias,
                     int n, const ConvShape *s, const ConvFuse *f)
{
	const int OC = s->OC, nchunks = (n + s->chunk - 1) / s->chunk, G = conv_groups(s);
	const Work w = work_layout(work, s);
	double *stats = f ? f->out_stats : NULL;
	if (s->bf16 && conv_is_implicit(s))
		implicit_pack_bf16((uint16_t *)w.ap, weight, s, 0);
	else if (s->bf16)
		bf16_pack_a((uint16_t *)w.ap, 0, weight, s->C * s->K * s->K, OC, s->C * s->K * s->K);
	else if (fast_rows(s, OC) || conv_is_implicit(s))
		gemm_pack_a(w.ap, weight, s->C * s->K * s->K, OC, s->C * s->K * s->K);
	if (!stats) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->threads) if (nchunks > 1)
		for (int ch = 0; ch < nchunks; ch++)
			forward_chunk(out, &w, inp, weight, bias, n, ch, s, f, NULL);
		return;
	}
	memset(w.sums, 0, sizeof(double) * 2 * OC * G);
#pragma omp parallel for schedule(dynamic, 1) num_threads(s->threads) if (nchunks > 1)
	for (int g = 0; g < G; g++) {
		int lo, hi;
		share(nchunks, g, G, &lo, &hi);
		for (int ch = lo; ch < hi; ch++)
			forward_chunk(out, &w, inp, weight, bias, n, ch, s, f, w.sums + (size_t)g * 2 * OC);
	}
	for (int g = 0; g < G; g++)
		for (int j = 0; j < 2 * OC; j++)
			stats[j] += w.sums[(size_t)g * 2 * OC + j];
}

/* Backward of images [i0, i0+nb) by implicit GEMM: dw += dout x padded
 * input^T (a dot product per weight, dout's junk grid columns being the
 * padding's zeros), dinp (+)= flipped weights (packed in ap) x padded dout. */
static void
implicit_backward(float *dinp, float *dw, float *buf, const float *dout, const float *inp, const float *ap, int n,
                  int i0, int nb, const ConvShape *s, const ConvFuse *f, int overwrite)
{
	const Pad g = pad_geometry(s);
	const ImplicitBuf b = implicit_layout(buf, s);
	const int KK = s->K * s->K, cmax = s->C > s->OC ? s->C : s->OC;
	const size_t grid0 = (size_t)s->P * g.Wp + s->P; /* dout's grid in its padded plane */
	ptrdiff_t off[IMPLICIT_MAX_OFFS];
	implicit_offsets(off, cmax, s, &g);
	for (int i = i0; i < i0 + nb; i++) {
		pad_image(b.pin, &g, inp, s->C, n, i, s, f);
		pad_image(b.pdy, &g, dout, s->OC, n, i, s, NULL);
		if (s->bf16) {
			bf16_convert(b.pinb, b.pin, (size_t)s->C * g.plane);
			bf16_convert(b.pdyb, b.pdy, (size_t)s->OC * g.plane);
			gemm_bf16_rows_nt(s->OC, s->C * KK, g.grid, b.pdyb + grid0, g.plane, b.pinb, off, dw, s->C * KK);
		} else {
			gemm_rows_nt(s->OC, s->C * KK, g.grid, b.pdy + grid0, (int)g.plane, b.pin, off, dw, s->C * KK);
		}
		if (!dinp)
			continue;
		if (s->bf16) { /* off's first pairs_of(OC) * KK entries are the pairs' offsets too */
			interleave_planes(b.pairs, b.pdy, s->OC, g.plane);
			gemm_bf16_rows(s->C, g.grid, (size_t)pairs_of(s->OC) * KK, (const uint16_t *)ap, b.pairs, off, b.grid,
			               g.gld);
		} else {
			gemm_packed_rows(s->C, g.grid, s->OC * KK, ap, b.pdy, off, 0, b.grid, g.gld);
		}
		unpad_grid(dinp, b.grid, &g, s->C, n, i, s, !overwrite);
	}
}

void
conv2d_backward_fused(float *dinp, float *dweight, float *dbias, float *work, const float *dout,
                      const float *inp, const float *weight, int n, const ConvShape *s, const ConvFuse *f)
{
	const int OC = s->OC, CKK = s->C * s->K * s->K, nchunks = (n + s->chunk - 1) / s->chunk;
	const size_t ohw = (size_t)s->OH * s->OW, ldo = (size_t)n * ohw;
	const size_t wsz = (size_t)OC * CKK;
	const int G = conv_groups(s);
	const Work w = work_layout(work, s);
	const int direct = conv_is_pointwise(s) && !(f && f->in_mean);
	const int implicit = conv_is_implicit(s);
	const int overwrite = f && f->dinp_overwrite;
	/* same convolutions: dinp = conv(dout, wt), wt[c][oc][kh][kw] = w[oc][c][K-1-kh][K-1-kw] */
	const int transposed = dinp && conv_is_same(s) && !conv_is_pointwise(s);
	const int OKK = OC * s->K * s->K;
	ConvShape ts = *s;
	if (transposed) {
		const int K = s->K, KK = K * K;
		for (int oc = 0; oc < OC; oc++)
			for (int c = 0; c < s->C; c++)
				for (int k = 0; k < KK; k++)
					w.wt[((size_t)c * OC + oc) * KK + k] = weight[((size_t)oc * s->C + c) * KK + (KK - 1 - k)];
		ts.C = s->OC;
		ts.OC = s->C;
		if (!s->bf16 && (fast_rows(s, s->C) || implicit))
			gemm_pack_a(w.ap, w.wt, OKK, s->C, OKK);
	}
	if (s->bf16 && dinp && implicit)
		implicit_pack_bf16((uint16_t *)w.ap, weight, s, 1);
	else if (s->bf16 && dinp) /* the data gradient's A: wt, or weight^T */
		bf16_pack_a((uint16_t *)w.ap, !transposed, transposed ? w.wt : weight, transposed ? OKK : CKK,
		            transposed ? s->C : CKK, transposed ? OKK : OC);
	/* BN backward sums of the transformed input's gradient, per group */
	double *dsums = f && f->dinp_sums && f->in_mean && overwrite && dinp ? f->dinp_sums : NULL;
	if (dsums)
		memset(w.sums, 0, sizeof(double) * 2 * s->C * G);
	if (dbias) {
#pragma omp parallel for schedule(static) num_threads(s->threads) if (ldo * OC > PAR_MIN)
		for (int oc = 0; oc < OC; oc++) {
			const float *d = dout + oc * ldo;
			double t = 0;
			for (size_t j = 0; j < ldo; j++)
				t += d[j];
			dbias[oc] += (float)t;
		}
	}
#pragma omp parallel num_threads(s->threads) if (nchunks > 1)
	{
		float *col = w.col + (size_t)omp_get_thread_num() * w.csz;
#pragma omp for schedule(dynamic, 1)
		for (int g = 0; g < G; g++) {
			float *dw = w.partial + (size_t)g * wsz;
			memset(dw, 0, sizeof(float) * wsz);
			int lo, hi;
			share(nchunks, g, G, &lo, &hi);
			for (int ch = lo; ch < hi; ch++) {
				int i0 = ch * s->chunk, nb = n - i0 < s->chunk ? n - i0 : s->chunk;
				int ncol = (int)(nb * ohw), ld = col_ld(s, nb);
				const float *dy = dout + i0 * ohw;
				float *dx = dinp ? dinp + i0 * ohw : NULL;
				if (implicit) {
					implicit_backward(dinp, dw, col, dout, inp, w.ap, n, i0, nb, s, f, overwrite);
				} else if (direct) {
					conv_gemm(s)(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, inp + i0 * ohw, (int)ldo, 1.0f, dw, CKK);
				} else {
					im2col(col, (size_t)ld, inp, n, i0, nb, s, f);
					conv_gemm(s)(0, 1, OC, CKK, ncol, 1.0f, dy, (int)ldo, col, ld, 1.0f, dw, CKK);
				}
				if (dinp && !implicit) { /* (implicit_backward gave both gradients) */
					if (conv_is_pointwise(s)) {
						conv_wgemm(s, w.ap, 1, CKK, ncol, OC, weight, CKK, dy, (int)ldo, overwrite ? 0.0f : 1.0f,
						            dx, (int)ldo);
					} else if (transposed) {
						im2col(col, (size_t)ld, dout, n, i0, nb, &ts, NULL);
						if (fast_rows(s, s->C))
							gemm_packed_nn(s->C, ncol, OKK, w.ap, col, ld, !overwrite, dx, (int)ldo);
						else
							conv_wgemm(s, w.ap, 0, s->C, ncol, OKK, w.wt, OKK, col, ld, overwrite ? 0.0f : 1.0f,
							            dx, (int)ldo);
					} else {
						conv_wgemm(s, w.ap, 1, CKK, ncol, OC, weight, CKK, dy, (int)ldo, 0.0f, col, ncol);
						col2im(dinp, col, n, i0, nb, s, overwrite);
					}
				}
				if (dsums) /* while this chunk of dinp is in cache */
					chunk_sums(w.sums + (size_t)g * 2 * s->C, dinp, inp, n, ch, s, f);
			}
		}
		/* implicit barrier; the partials in group order */
#pragma omp for schedule(static)
		for (size_t j = 0; j < wsz; j++) {
			float a = 0;
			for (int u = 0; u < G; u++)
				a += w.partial[(size_t)u * wsz + j];
			dweight[j] += a;
		}
	}
	if (dsums)
		for (int g = 0; g < G; g++)
			for (int j = 0; j < 2 * s->C; j++)
				dsums[j] += w.sums[(size_t)g * 2 * s->C + j];
}

void
conv2d_forward(float *out, float *work, const float *inp, const float *weight, const float *bias,
               int n, const ConvShape *s)
{
	conv2d_forward_fused(out, work, inp, weight, bias, n, s, NULL);
}

void
conv2d_backward(float *dinp, float *dweight, float *dbias, float *work,
                const float *dout, const float *inp, const float *weight, int n, const ConvShape *s)
{
	conv2d_backward_fused(dinp, dweight, dbias, work, dout, inp, weight, n, s, NULL);
}

/* ---- naive twins ---- */

void
conv2d_forward_ref(float *out, const float *inp, const float *weight, const float *bias,
                   int n, const ConvShape *s)
{
	const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
	for (int oc = 0; oc < s->OC; oc++)
		for (int i = 0; i < n; i++)
			for (int oh = 0; oh < OH; oh++)
				for (int ow = 0; ow < OW; ow++) {
					double t = bias ? bias[oc] : 0.0;
					for (int c = 0; c < C; c++)
						for (int kh = 0; kh < K; kh++)
							for (int kw = 0; kw < K; kw++) {
								int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								t += (double)inp[(((size_t)c * n + i) * H + ih) * W + iw] *
								     weight[(((size_t)oc * C + c) * K + kh) * K + kw];
							}
					out[(((size_t)oc * n + i) * OH + oh) * OW + ow] = (float)t;
				}
}

void
conv2d_backward_ref(float *dinp, float *dweight, float *dbias,
                    const float *dout, const float *inp, const float *weight, int n, const ConvShape *s)
{
	const int C = s->C, H = s->H, W = s->W, K = s->K, OH = s->OH, OW = s->OW;
	for (int oc = 0; oc < s->OC; oc++) {
		if (dbias) {
			double t = 0;
			for (size_t j = 0; j < (size_t)n * OH * OW; j++)
				t += dout[(size_t)oc * n * OH * OW + j];
			dbias[oc] += (float)t;
		}
		for (int c = 0; c < C; c++)
			for (int kh = 0; kh < K; kh++)
				for (int kw = 0; kw < K; kw++) {
					double t = 0;
					for (int i = 0; i < n; i++)
						for (int oh = 0; oh < OH; oh++)
							for (int ow = 0; ow < OW; ow++) {
								int ih = oh * s->S - s->P + kh, iw = ow * s->S - s->P + kw;
								if (ih < 0 || ih >= H || iw < 0 || iw >= W)
									continue;
								t += (double)dout[(((size_t)oc * n + i) * OH + oh) * OW + ow] *
								     inp[(((size_t)c * n + i) * H + ih) * W + iw];
							}
					dweight[(((size_t)oc * C + c) * K + kh) * K + kw] += (float)t;
				}
	}
	if (!dinp)
		return;
	for (int c = 0; c < C; c++)
		for (int i = 0; i < n; i++)
			for (int ih = 0; ih < H; ih++)
				for (int iw = 0; iw < W; iw++) {
					double t = 0;
					for (int oc = 0; oc < s->OC; oc++)
						for (int kh = 0; kh < K; kh++)
							for (int kw = 0; kw < K; kw++) {
								int a = ih + s->P - kh, b = iw + s->P - kw;
								if (a < 0 || b < 0 || a % s->S || b % s->S)
									continue;
								int oh = a / s->S, ow = b / s->S;
								if (oh >= OH || ow >= OW)
									continue;
								t += (double)dout[(((size_t)oc * n + i) * OH + oh) * OW + ow] *
								     weight[(((size_t)oc * C + c) * K + kh) * K + kw];
							}
					dinp[(((size_t)c * n + i) * H + ih) * W + iw] += (float)t;
				}
}
