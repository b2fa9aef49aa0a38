/* Tests for lib/nn/model and lib/nn/params: parity with PyTorch on resnet18 width
 * 16 + head + NT-Xent (loss, embeddings, every gradient by name, 3 LARS and
 * 3 SGD steps), torchvision names and parameter counts, finite differences
 * through whole tiny networks (basic and bottleneck blocks, both stems), eval
 * mode, and a training step that allocates nothing. */
#include <malloc.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fixture.h"
#include "gradcheck.h"
#include "tu_stream.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "base/parallel.h"
#include "testutil.h"
#include "base/util.h"

#define FIXTURE "tests/fixtures/core_model.msgpack"


static Model *
new_model(const ModelConfig *c, int batch, ModelMode mode)
{
	char err[256];
	Model *m = model_new(c, batch, mode, err, sizeof err);
	ck_assert_msg(m != NULL, "model_new: %s", err);
	return m;
}

/* ------------------------------------------------------------------ PyTorch parity */

static int64_t
stride_k(int64_t numel, int64_t k)
{
	int64_t s = (numel + k - 1) / k;
	return s > 1 ? s : 1;
}

static int64_t
stride_of(int64_t numel)
{
	return stride_k(numel, 256);
}

/* every trainable tensor from the fixture's uint8 + scale encoding; buffers reset */
static void
load_weights_prefix(Model *m, const Fixture *f, const char *prefix)
{
	ParamTable *t = model_params(m);
	model_init(m, 0); /* running stats 0 / 1, counters 0 */
	int loaded = 0;
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (!params_trainable(e))
			continue;
		char nm[160];
		snprintf(nm, sizeof nm, "%sw/%s", prefix, e->name);
		const uint8_t *q = fixture_get(f, nm, DTYPE_U8, e->numel)->data;
		snprintf(nm, sizeof nm, "%ss/%s", prefix, e->name);
		float scale = (float)fixture_scalar(f, nm);
		for (int64_t j = 0; j < e->numel; j++)
			e->data[j] = ((float)q[j] - 128.0f) * scale;
		loaded++;
	}
	ck_assert_int_gt(loaded, 30);
}

static void
load_weights(Model *m, const Fixture *f)
{
	load_weights_prefix(m, f, "");
}

static int
fixture_count_prefix(const Fixture *f, const ParamTable *t, const char *prefix)
{
	int found = 0;
	for (int i = 0; i < t->n; i++) {
		char nm[160];
		snprintf(nm, sizeof nm, "%s%s", prefix, t->e[i].name);
		found += fixture_find(f, nm) != NULL;
	}
	return found;
}

/* the strided sample the generator stored */
static double
sample_err(const float *v, int64_t numel, const float *want)
{
	int64_t s = stride_of(numel), k = 0;
	float buf[512];
	for (int64_t j = 0; j < numel; j += s)
		buf[k++] = v[j];
	return rel_err(buf, want, (size_t)k, 1e-6);
}

static int64_t
sample_len(int64_t numel)
{
	return (numel + stride_of(numel) - 1) / stride_of(numel);
}

static void
check_buffers(Model *m, const Fixture *f, const char *prefix, double tol)
{
	ParamTable *t = model_params(m);
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (e->role != PARAM_BUFFER || e->dtype != DTYPE_F32)
			continue;
		char nm[160];
		snprintf(nm, sizeof nm, "%s%s", prefix, e->name);
		double err = rel_err(e->data, fixture_f32(f, nm, e->numel), (size_t)e->numel, 1e-3);
		ck_assert_msg(err < tol, "%s: error %g", nm, err);
	}
}

static ModelConfig
fixture_config(const Fixture *f, int *N)
{
	const int32_t *cfg = fixture_get(f, "cfg", DTYPE_I32, 4)->data;
	ModelConfig c;
	model_config_default(&c);
	c.width = cfg[0];
	c.proj_hidden = cfg[1];
	c.proj_dim = cfg[2];
	*N = cfg[3];
	return c;
}

static float *
fixture_input(const Fixture *f, int n)
{
	float *x = xcalloc((size_t)n * 3 * 32 * 32, sizeof(float));
	const uint8_t *img = fixture_get(f, "images", DTYPE_U8, n * 32 * 32 * 3)->data;
	input_normalize_u8(x, img, n, 32, 32, 3, fixture_f32(f, "mean", 3), fixture_f32(f, "std", 3));
	return x;
}

START_TEST(test_torch_forward_backward)
{
	Fixture *f = fixture_load(FIXTURE);
	int N;
	ModelConfig c = fixture_config(f, &N);
	Model *m = new_model(&c, 2 * N, MODEL_TRAIN);
	ParamTable *t = model_params(m);
	load_weights(m, f);
	/* the names match both ways: every trainable tensor has weights and gradients */
	int ntrain = 0;
	for (int i = 0; i < t->n; i++)
		ntrain += params_trainable(&t->e[i]);
	ck_assert_int_eq(fixture_count_prefix(f, t, "w/"), ntrain);
	ck_assert_int_eq(fixture_count_prefix(f, t, "g/"), ntrain);

	float *x = fixture_input(f, 2 * N);
	const float *z = model_forward_train(m, x, 2 * N);
	double ez = rel_err(z, fixture_f32(f, "z", 2 * N * c.proj_dim), (size_t)2 * N * c.proj_dim, 1e-6);
	double eh = rel_err(model_features(m), fixture_f32(f, "h", 2 * N * model_feature_dim(m)),
	                    (size_t)2 * N * model_feature_dim(m), 1e-6);
	ck_assert_msg(ez < 1e-4 && eh < 1e-4, "embeddings: z %g h %g", ez, eh);

	float *dz = xcalloc((size_t)2 * N * c.proj_dim, sizeof(float));
	float *work = xcalloc(ntxent_work_floats(N, c.proj_dim), sizeof(float)), loss, acc;
	float temp = (float)fixture_scalar(f, "temperature");
	ck_assert_int_eq(ntxent_forward_backward(&loss, &acc, dz, work, z, N, c.proj_dim, temp), 0);
	double want = fixture_scalar(f, "loss");
	ck_assert_msg(fabs(loss - want) < 1e-4 * fabs(want), "loss %.7f vs %.7f", loss, want);

	model_zero_grad(m);
	model_backward(m, dz);
	double worst = 0;
	const char *worst_name = "";
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		if (!params_trainable(e))
			continue;
		char nm[160];
		snprintf(nm, sizeof nm, "g/%s", e->name);
		double err = sample_err(e->grad, e->numel, fixture_f32(f, nm, sample_len(e->numel)));
		double norm = 0;
		for (int64_t j = 0; j < e->numel; j++)
			norm += (double)e->grad[j] * e->grad[j];
		snprintf(nm, sizeof nm, "gn/%s", e->name);
		double wn = fixture_scalar(f, nm), en = fabs(sqrt(norm) - wn) / (wn > 1e-12 ? wn : 1e-12);
		if (err > worst || en > worst) {
			worst = err > en ? err : en;
			worst_name = e->name;
		}
		ck_assert_msg(err < 1e-4 && en < 1e-4, "gradient %s: sample error %g, norm error %g", e->name, err, en);
	}
	ck_assert_msg(worst < 1e-4, "worst gradient %s %g", worst_name, worst);
	check_buffers(m, f, "b1/", 1e-5);
	ck_assert_int_eq(*params_find(t, "layer3.1.bn2.num_batches_tracked")->i64, 1);
	free(x), free(dz), free(work);
	model_free(m);
	fixture_free(f);
}
END_TEST

/* 3 optimizer steps from the fixture's weights. The first update is
 * checked tightly (parameters after it, and the loss it gives); later
 * losses loosely: a ReLU network's trajectory is chaotic in the last bits
 * (PyTorch's own float32 run differs from its float64 run by up to 5e-3
 * after 3 steps), while a wrong momentum, trust ratio or learning rate moves
 * the loss by several percent. lib/nn/optim's formulas are checked exactly on
 * fixed gradients in check_optim. */
static void
run_trajectory(OptimKind kind, const char *tag)
{
	Fixture *f = fixture_load(FIXTURE);
	int N;
	ModelConfig c = fixture_config(f, &N);
	Model *m = new_model(&c, 2 * N, MODEL_TRAIN);
	ParamTable *t = model_params(m);
	load_weights(m, f);
	OptimConfig oc;
	optim_config_default(&oc, kind);
	if (kind == OPTIM_LARS) {
		oc.weight_decay = 1e-6f;
	} else {
		oc.weight_decay = 5e-4f;
		oc.decay_all = 1;
	}
	Optim *o = optim_new(&oc, t);
	char nm[160];
	snprintf(nm, sizeof nm, "%s/lr", tag);
	float lr = (float)fixture_scalar(f, nm);
	snprintf(nm, sizeof nm, "%s/losses", tag);
	const double *want = fixture_get(f, nm, DTYPE_F64, 4)->data;
	float *x = fixture_input(f, 2 * N);
	float *dz = xcalloc((size_t)2 * N * c.proj_dim, sizeof(float));
	float *work = xcalloc(ntxent_work_floats(N, c.proj_dim), sizeof(float)), loss, acc;
	float *p0 = xcalloc(t->nparams, sizeof(float));
	memcpy(p0, t->params, sizeof(float) * t->nparams);
	for (int it = 0; it < 4; it++) {
		const float *z = model_forward_train(m, x, 2 * N);
		ntxent_forward_backward(&loss, &acc, dz, work, z, N, c.proj_dim, 0.5f);
		double tol = (it < 2 ? 1e-4 : 1e-2) * fabs(want[it]);
		ck_assert_msg(fabs(loss - want[it]) < tol, "%s step %d: loss %.7f vs %.7f", tag, it, loss, want[it]);
		if (it == 3)
			break;
		model_zero_grad(m);
		model_backward(m, dz);
		optim_step(o, lr);
		if (it > 0)
			continue;
		/* the first update, p1 - p0, against PyTorch's */
		for (int i = 0; i < t->n; i++) {
			ParamEntry *e = &t->e[i];
			if (!params_trainable(e))
				continue;
			snprintf(nm, sizeof nm, "%s/p1/%s", tag, e->name);
			int64_t s = stride_of(e->numel), k = 0, len = sample_len(e->numel);
			const float *want_p = fixture_f32(f, nm, len);
			float got[512], wd[512];
			for (int64_t j = 0; j < e->numel; j += s, k++) {
				got[k] = e->data[j] - p0[e->offset + j];
				wd[k] = want_p[k] - p0[e->offset + j];
			}
			double err = rel_err(got, wd, (size_t)len, 1e-12);
			ck_assert_msg(err < 1e-3, "%s: first update of %s: error %g", tag, e->name, err);
		}
	}
	snprintf(nm, sizeof nm, "%s/b/", tag);
	check_buffers(m, f, nm, 1e-2);
	ck_assert_int_eq(*params_find(t, "bn1.num_batches_tracked")->i64, 4);
	ck_assert_int_eq(optim_get_step(o), 3);
	free(x), free(dz), free(work), free(p0);
	optim_free(o);
	model_free(m);
	fixture_free(f);
}

START_TEST(test_torch_lars)
{
	run_trajectory(OPTIM_LARS, "lars");
}
END_TEST

START_TEST(test_torch_sgd)
{
	run_trajectory(OPTIM_SGD, "sgd");
}
END_TEST

/* ------------------------------------------------------------------ names and counts */

START_TEST(test_torchvision_counts)
{
	/* torchvision resnet18/34/50 with a 1000-class fc */
	static const struct {
		ModelArch a;
		long long params;
	} tv[] = { { ARCH_RESNET18, 11689512LL }, { ARCH_RESNET34, 21797672LL }, { ARCH_RESNET50, 25557032LL } };
	for (int k = 0; k < 3; k++) {
		ModelConfig c;
		model_config_default(&c);
		c.arch = tv[k].a;
		c.stem = STEM_IMAGENET;
		c.in_h = c.in_w = 33;
		c.proj_layers = 0;
		c.num_classes = 1000;
		Model *m = new_model(&c, 1, MODEL_INFER);
		ParamTable *t = model_params(m);
		ck_assert_int_eq(params_count(t), tv[k].params);
		ck_assert_ptr_null(t->grads);
		ck_assert_int_eq(model_feature_dim(m), k == 2 ? 2048 : 512);
		const ParamEntry *e = params_find(t, "conv1.weight");
		ck_assert(e && e->ndim == 4 && e->shape[0] == 64 && e->shape[1] == 3 && e->shape[2] == 7);
		ck_assert_ptr_nonnull(params_find(t, "bn1.running_var"));
		e = params_find(t, "bn1.num_batches_tracked");
		ck_assert(e && e->dtype == DTYPE_I64 && e->ndim == 0 && e->role == PARAM_BUFFER);
		ck_assert_ptr_nonnull(params_find(t, "layer2.0.downsample.0.weight"));
		ck_assert_ptr_nonnull(params_find(t, "layer2.0.downsample.1.running_mean"));
		ck_assert_ptr_nonnull(params_find(t, "fc.bias"));
		ck_assert(params_find(t, "fc.weight")->role == PARAM_WEIGHT);
		ck_assert(params_find(t, "fc.bias")->role == PARAM_BIAS);
		ck_assert(params_find(t, "layer1.0.bn1.weight")->role == PARAM_BN_GAMMA);
		ck_assert(params_find(t, "layer1.0.bn1.bias")->role == PARAM_BN_BETA);
		if (k == 2) {
			ck_assert_ptr_nonnull(params_find(t, "layer1.0.conv3.weight"));
			ck_assert_ptr_nonnull(params_find(t, "layer1.0.downsample.0.weight"));
			ck_assert_ptr_nonnull(params_find(t, "layer3.5.bn3.weight"));
		} else {
			ck_assert_ptr_null(params_find(t, "layer1.0.downsample.0.weight"));
			ck_assert_ptr_null(params_find(t, "layer1.0.conv3.weight"));
		}
		ck_assert_int_eq(model_output_dim(m, MODEL_OUT_LOGITS), 1000);
		ck_assert_int_eq(model_output_dim(m, MODEL_OUT_PROJ_HIDDEN), 0);
		model_free(m);
	}
}
END_TEST

START_TEST(test_head_names_and_config)
{
	ModelConfig c = tu_tiny_config();
	c.in_channels = 1;
	c.in_h = 28;
	c.in_w = 20;
	c.proj_layers = 3;
	c.proj_hidden = 24;
	c.proj_dim = 8;
	Model *m = new_model(&c, 3, MODEL_TRAIN);
	ParamTable *t = model_params(m);
	static const char *names[] = { "head.0.weight", "head.1.weight", "head.1.running_mean", "head.3.weight",
		                       "head.4.bias", "head.6.weight", "head.6.bias" };
	for (size_t k = 0; k < sizeof names / sizeof names[0]; k++)
		ck_assert_msg(params_find(t, names[k]) != NULL, "%s missing", names[k]);
	ck_assert_ptr_null(params_find(t, "head.0.bias"));
	ck_assert_ptr_null(params_find(t, "head.3.bias"));
	ck_assert_int_eq(params_find(t, "conv1.weight")->shape[1], 1);
	ck_assert_int_eq(params_find(t, "head.6.weight")->shape[0], 8);
	ck_assert_int_eq(model_output_dim(m, MODEL_OUT_PROJ), 8);
	ck_assert_int_eq(model_output_dim(m, MODEL_OUT_PROJ_HIDDEN), 24);
	ck_assert_int_eq(model_feature_dim(m), 32);
	/* the grads arena mirrors the params arena */
	const ParamEntry *e = params_find(t, "layer2.1.conv1.weight");
	ck_assert_int_eq(e->grad - t->grads, e->data - t->params);
	model_free(m);

	char err[256];
	ModelConfig bad = c;
	bad.proj_layers = 1;
	ck_assert_ptr_null(model_new(&bad, 2, MODEL_TRAIN, err, sizeof err));
	ck_assert_ptr_nonnull(strstr(err, "0, 2 or 3"));
	bad = c;
	bad.width = 0;
	ck_assert_int_eq(model_config_check(&bad, err, sizeof err), -1);
	bad = c;
	bad.in_h = 0;
	ck_assert_int_eq(model_config_check(&bad, err, sizeof err), -1);
	ck_assert_ptr_null(model_new(&c, 0, MODEL_TRAIN, err, sizeof err));
	ModelArch a;
	ModelStem s;
	ModelOutput o;
	ck_assert_int_eq(model_arch_parse("resnet50", &a), 0);
	ck_assert_int_eq(a, ARCH_RESNET50);
	ck_assert_int_eq(model_arch_parse("resnet51", &a), -1);
	ck_assert_int_eq(model_stem_parse("imagenet", &s), 0);
	ck_assert_int_eq(model_output_parse("proj-hidden", &o), 0);
	ck_assert_int_eq(o, MODEL_OUT_PROJ_HIDDEN);
	ck_assert_str_eq(model_arch_name(ARCH_RESNET34), "resnet34");
}
END_TEST

START_TEST(test_init)
{
	ModelConfig c;
	model_config_default(&c);
	c.width = 16;
	c.proj_hidden = 256;
	c.zero_init_residual = 1;
	Model *m = new_model(&c, 2, MODEL_TRAIN);
	ParamTable *t = model_params(m);
	model_init(m, 7);
	const ParamEntry *w = params_find(t, "layer3.0.conv2.weight"); /* (64, 64, 3, 3): fan_out 576 */
	double s = 0, s2 = 0;
	for (int64_t j = 0; j < w->numel; j++) {
		s += w->data[j];
		s2 += (double)w->data[j] * w->data[j];
	}
	double sd = sqrt(s2 / w->numel - (s / w->numel) * (s / w->numel));
	ck_assert_msg(fabs(sd - sqrt(2.0 / 576)) < 0.03 * sqrt(2.0 / 576), "conv std %g", sd);
	const ParamEntry *l = params_find(t, "head.0.weight"), *b = params_find(t, "head.3.bias");
	double bound = 1 / sqrt(128.0), mx = 0;
	for (int64_t j = 0; j < l->numel; j++)
		mx = fmax(mx, fabs(l->data[j]));
	ck_assert(mx <= bound && mx > 0.95 * bound);
	for (int64_t j = 0; j < b->numel; j++)
		ck_assert(fabs(b->data[j]) <= 1 / sqrt(256.0));
	ck_assert(params_find(t, "layer1.0.bn2.weight")->data[0] == 0.0f);  /* zero-init residual */
	ck_assert(params_find(t, "layer1.0.bn1.weight")->data[0] == 1.0f);
	ck_assert(params_find(t, "layer2.0.downsample.1.weight")->data[3] == 1.0f);
	ck_assert(params_find(t, "head.1.running_var")->data[5] == 1.0f);
	/* the same seed gives the same values, another seed others */
	float v = w->data[11];
	model_init(m, 7);
	ck_assert(w->data[11] == v);
	model_init(m, 8);
	ck_assert(w->data[11] != v);
	model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ other architectures */

#define ARCH_FIXTURE "tests/fixtures/core_arch.msgpack"

/* Tiny resnet50 (ImageNet stem, bottlenecks, 3-layer head, NT-Xent) and
 * resnet34 (classifier, cross-entropy) against PyTorch. */
START_TEST(test_torch_arch)
{
	static const char *tags[2] = { "r50/", "r34/" };
	const char *tag = tags[_i];
	Fixture *f = fixture_load(ARCH_FIXTURE);
	char nm[192];
	snprintf(nm, sizeof nm, "%scfg", tag);
	const int32_t *v = fixture_get(f, nm, DTYPE_I32, 11)->data;
	ModelConfig c;
	model_config_default(&c);
	c.arch = (ModelArch)v[0];
	c.stem = (ModelStem)v[1];
	c.width = v[2];
	c.in_channels = v[3];
	c.in_h = v[4];
	c.in_w = v[5];
	c.proj_layers = v[6];
	c.proj_hidden = v[7];
	c.proj_dim = v[8];
	c.num_classes = v[9];
	int n = v[10], classify = c.num_classes > 0;
	Model *m = new_model(&c, n, MODEL_TRAIN);
	ParamTable *t = model_params(m);
	load_weights_prefix(m, f, tag);
	size_t in = (size_t)n * c.in_channels * c.in_h * c.in_w;
	snprintf(nm, sizeof nm, "%sx", tag);
	const float *x = fixture_f32(f, nm, (int64_t)in);
	int D = classify ? c.num_classes : c.proj_dim;
	const float *y = classify ? model_forward_train_classify(m, x, n) : model_forward_train(m, x, n);
	snprintf(nm, sizeof nm, "%sy", tag);
	double ey = rel_err(y, fixture_f32(f, nm, n * D), (size_t)n * D, 1e-6);
	snprintf(nm, sizeof nm, "%sh", tag);
	int F = model_feature_dim(m);
	double eh = rel_err(model_features(m), fixture_f32(f, nm, n * F), (size_t)n * F, 1e-6);
	ck_assert_msg(ey < 1e-4 && eh < 1e-4, "%s outputs: %g, features: %g", tag, ey, eh);
	float *d = xcalloc((size_t)n * D, sizeof(float)), *work = xcalloc(ntxent_work_floats(n / 2, D), sizeof(float));
	float loss, acc;
	if (classify) {
		snprintf(nm, sizeof nm, "%slabels", tag);
		const int32_t *labels = fixture_get(f, nm, DTYPE_I32, n)->data;
		ck_assert_int_eq(cross_entropy_forward_backward(&loss, &acc, d, y, labels, n, D), n);
	} else {
		ck_assert_int_eq(ntxent_forward_backward(&loss, &acc, d, work, y, n / 2, D, 0.5f), 0);
	}
	snprintf(nm, sizeof nm, "%sloss", tag);
	double want = fixture_scalar(f, nm);
	ck_assert_msg(fabs(loss - want) < 1e-4 * fabs(want), "%s loss %.7f vs %.7f", tag, loss, want);
	model_zero_grad(m);
	if (classify)
		model_backward_classify(m, d);
	else
		model_backward(m, d);
	/* This resnet50 is deep for its width: PyTorch's own float32 gradients
	 * differ from float64 by up to 2e-3 here, and so may ours: the worst
	 * parameter is at 1.4e-3 with the implicit-GEMM convolutions, 9.7e-4
	 * with im2col + FMA tiles, 6.7e-4 with the plain loops (all float32
	 * orderings of the same sums). */
	const double tol = classify ? 1e-4 : 2e-3;
	int checked = 0;
	for (int i = 0; i < t->n; i++) {
		ParamEntry *e = &t->e[i];
		int64_t s = stride_k(e->numel, 64), k = 0;
		float buf[128];
		if (e->dtype != DTYPE_F32)
			continue;
		const float *vals = params_trainable(e) ? e->grad : e->data;
		for (int64_t j = 0; j < e->numel; j += s)
			buf[k++] = vals[j];
		snprintf(nm, sizeof nm, "%s%s/%s", tag, params_trainable(e) ? "g" : "b1", e->name);
		double err = rel_err(buf, fixture_f32(f, nm, k), (size_t)k, 1e-6);
		ck_assert_msg(err < tol, "%s: %s error %g", tag, nm, err);
		if (params_trainable(e)) {
			double norm = 0;
			for (int64_t j = 0; j < e->numel; j++)
				norm += (double)e->grad[j] * e->grad[j];
			snprintf(nm, sizeof nm, "%sgn/%s", tag, e->name);
			double wn = fixture_scalar(f, nm);
			ck_assert_msg(fabs(sqrt(norm) - wn) <= tol * wn + 1e-12, "%s: %s gradient norm", tag, e->name);
		}
		checked++;
	}
	ck_assert_int_gt(checked, 40);
	free(d), free(work);
	model_free(m);
	fixture_free(f);
}
END_TEST

/* Finite differences where the loss is smooth in the parameter (the last
 * linear layer: no ReLU or max-pool kink between it and the loss), through
 * the model's own plumbing. The whole network is covered by the PyTorch
 * values above; finite differences across hundreds of ReLUs in float32 are
 * too noisy to add anything there. */
typedef struct {
	Model *m;
	const float *x;
	int N, D, classify;
	const int32_t *labels;
} NetCtx;

static double
net_loss(void *p)
{
	NetCtx *c = p;
	if (c->classify) {
		const float *lg = model_forward_train_classify(c->m, c->x, 2 * c->N);
		return cross_entropy_loss_ref(lg, c->labels, 2 * c->N, c->D);
	}
	const float *z = model_forward_train(c->m, c->x, 2 * c->N);
	return ntxent_loss_ref(z, c->N, c->D, 0.5f);
}

START_TEST(test_gradcheck_last_layer)
{
	int classify = _i;
	ModelConfig c;
	model_config_default(&c);
	c.width = 2;
	c.in_h = 8;
	c.in_w = 6;
	c.proj_layers = classify ? 0 : 3;
	c.proj_hidden = 8;
	c.proj_dim = 4;
	c.num_classes = classify ? 3 : 0;
	const int N = 3;
	Model *m = new_model(&c, 2 * N, MODEL_TRAIN);
	model_init(m, 3);
	ParamTable *t = model_params(m);
	size_t in = (size_t)2 * N * 3 * 8 * 6;
	float *x = xcalloc(in, sizeof(float));
	gc_fill_normal(x, in, 4, 0, 1);
	int D = classify ? 3 : 4;
	int32_t labels[6] = { 0, 2, 1, 1, 0, 2 };
	NetCtx ctx = { m, x, N, D, classify, labels };
	float *d = xcalloc((size_t)2 * N * D, sizeof(float)), *work = xcalloc(ntxent_work_floats(N, D), sizeof(float));
	float loss, acc;
	model_zero_grad(m);
	if (classify) {
		cross_entropy_forward_backward(&loss, &acc, d, model_forward_train_classify(m, x, 2 * N), labels, 2 * N, D);
		model_backward_classify(m, d);
	} else {
		ntxent_forward_backward(&loss, &acc, d, work, model_forward_train(m, x, 2 * N), N, D, 0.5f);
		model_backward(m, d);
	}
	const char *names[2][2] = { { "head.6.weight", "head.6.bias" }, { "fc.weight", "fc.bias" } };
	for (int k = 0; k < 2; k++) {
		ParamEntry *e = params_find(t, names[classify][k]);
		float *g = xcalloc((size_t)e->numel, sizeof(float));
		memcpy(g, e->grad, sizeof(float) * (size_t)e->numel);
		GcResult r = gradcheck(net_loss, NULL, &ctx, e->data, g, (size_t)e->numel, 1e-2, 40, 1e-3);
		ck_assert_msg(r.max_err < 1e-3, "%s: finite-difference error %g", e->name, r.max_err);
		free(g);
	}
	free(x), free(d), free(work);
	model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ eval, batch sizes, memory */

/* _i 1: the ImageNet stem (its max-pool gives the stem scratch of its own) */
START_TEST(test_eval)
{
	ModelConfig c = tu_tiny_config();
	c.in_h = c.in_w = _i ? 24 : 12;
	c.stem = _i ? STEM_IMAGENET : STEM_CIFAR;
	c.proj_dim = 6;
	Model *m = new_model(&c, 8, MODEL_TRAIN);
	model_init(m, 5);
	size_t per = (size_t)3 * c.in_h * c.in_w;
	float *x = xcalloc(8 * per, sizeof(float));
	gc_fill_normal(x, 8 * per, 6, 0, 1);
	/* a few training passes give running statistics */
	for (int k = 0; k < 3; k++)
		model_forward_train(m, x, 8);
	float a[8 * 32], b[8 * 32];
	int D = model_feature_dim(m);
	memcpy(a, model_forward_eval(m, x, 8, MODEL_OUT_ENCODER), sizeof(float) * 8 * D);
	/* eval has no batch dependence: 3 images alone give the same rows */
	memcpy(b, model_forward_eval(m, x + 2 * per, 3, MODEL_OUT_ENCODER), sizeof(float) * 3 * D);
	ck_assert(rel_err(b, a + 2 * D, (size_t)3 * D, 1e-6) < 1e-5);
	/* the head in eval mode, by hand: Linear, BN (running stats), ReLU, Linear */
	ParamTable *t = model_params(m);
	const float *z = model_forward_eval(m, x, 8, MODEL_OUT_PROJ);
	const ParamEntry *w0 = params_find(t, "head.0.weight"), *g = params_find(t, "head.1.weight"),
	                 *be = params_find(t, "head.1.bias"), *rm = params_find(t, "head.1.running_mean"),
	                 *rv = params_find(t, "head.1.running_var"), *w3 = params_find(t, "head.3.weight"),
	                 *b3 = params_find(t, "head.3.bias");
	for (int i = 0; i < 8; i++) {
		double hid[16];
		for (int j = 0; j < 16; j++) {
			double s = 0;
			for (int k = 0; k < D; k++)
				s += (double)w0->data[j * D + k] * a[i * D + k];
			s = (s - rm->data[j]) / sqrt(rv->data[j] + 1e-5) * g->data[j] + be->data[j];
			hid[j] = s > 0 ? s : 0;
		}
		for (int o = 0; o < 6; o++) {
			double s = b3->data[o];
			for (int j = 0; j < 16; j++)
				s += w3->data[o * 16 + j] * hid[j];
			ck_assert_msg(fabs(z[i * 6 + o] - s) < 1e-4 * (1 + fabs(s)), "proj eval row %d", i);
		}
	}
	const float *hh = model_forward_eval(m, x, 8, MODEL_OUT_PROJ_HIDDEN);
	for (int j = 0; j < 8 * 16; j++)
		ck_assert(hh[j] >= 0.0f);
	/* an inference-only model with the same parameters agrees */
	Model *inf = new_model(&c, 8, MODEL_INFER);
	char err[256];
	ck_assert_int_eq(params_copy(model_params(inf), t, err, sizeof err), 0);
	if (!_i) /* (the ImageNet stem's scratch, planned in both modes, outweighs the rest at 24 px) */
		ck_assert(model_memory_bytes(inf) < model_memory_bytes(m) / 2);
	const float *e2 = model_forward_eval(inf, x, 8, MODEL_OUT_ENCODER);
	ck_assert(memcmp(e2, a, sizeof(float) * 8 * D) == 0);
	/* a smaller training batch than planned works, and matches a model planned for it */
	Model *small = new_model(&c, 4, MODEL_TRAIN);
	ck_assert_int_eq(params_copy(model_params(small), t, err, sizeof err), 0);
	memcpy(a, model_forward_train(m, x, 4), sizeof(float) * 4 * 6);
	memcpy(b, model_forward_train(small, x, 4), sizeof(float) * 4 * 6);
	ck_assert(rel_err(a, b, 4 * 6, 1e-6) < 1e-5);
	model_free(small);
	model_free(inf);
	model_free(m);
	free(x);
}
END_TEST

/* Copies every running statistic (names ending in running_mean or
 * running_var) of m into out; returns how many floats. */
static size_t
bn_stats(Model *m, float *out, size_t cap)
{
	ParamTable *t = model_params(m);
	size_t n = 0;
	for (int i = 0; i < t->n; i++) {
		const char *name = t->e[i].name;
		size_t len = strlen(name);
		if ((len > 12 && strcmp(name + len - 12, "running_mean") == 0) ||
		    (len > 11 && strcmp(name + len - 11, "running_var") == 0)) {
			ck_assert_uint_le(n + (size_t)t->e[i].numel, cap);
			memcpy(out + n, t->e[i].data, sizeof(float) * (size_t)t->e[i].numel);
			n += (size_t)t->e[i].numel;
		}
	}
	return n;
}

/* Precise BN: after a pass over batches A and B every running statistic is
 * the mean of those A alone and B alone give (training mode normalises with
 * batch statistics, so a batch's statistics do not depend on the running
 * ones), the weights stay, and training afterwards blends with 0.1 again. */
START_TEST(test_precise_bn)
{
	ModelConfig c = tu_tiny_config();
	c.proj_dim = 6;
	Model *m = new_model(&c, 8, MODEL_TRAIN);
	model_init(m, 3);
	size_t per = 3 * 8 * 8, cap = 4096;
	float *x = xcalloc(16 * per, sizeof(float));
	float *sa = xcalloc(cap, sizeof(float)), *sb = xcalloc(cap, sizeof(float)), *sab = xcalloc(cap, sizeof(float));
	gc_fill_normal(x, 16 * per, 4, 0.5, 2);
	const ParamEntry *w = params_find(model_params(m), "layer1.0.conv1.weight");
	float w0 = w->data[5];
	size_t n;
	model_forward_train(m, x, 8); /* some running statistics to be replaced */
	model_precise_bn_begin(m);
	model_precise_bn_batch(m, x, 8);
	ck_assert_int_eq(model_precise_bn_end(m), 1);
	n = bn_stats(m, sa, cap);
	ck_assert_uint_gt(n, 100);
	model_precise_bn_begin(m);
	model_precise_bn_batch(m, x + 8 * per, 8);
	model_precise_bn_end(m);
	bn_stats(m, sb, cap);
	model_precise_bn_begin(m);
	model_precise_bn_batch(m, x, 8);
	model_precise_bn_batch(m, x + 8 * per, 8);
	ck_assert_int_eq(model_precise_bn_end(m), 2);
	ck_assert_uint_eq(bn_stats(m, sab, cap), n);
	for (size_t i = 0; i < n; i++)
		ck_assert_msg(fabsf(sab[i] - 0.5f * (sa[i] + sb[i])) <= 1e-5f * (1 + fabsf(sab[i])), "stat %zu: %g, %g and %g",
		              i, sab[i], sa[i], sb[i]);
	ck_assert(fabsf(sa[0] - sb[0]) > 1e-4f); /* the two batches differ: the test can fail */
	ck_assert(w->data[5] == w0);
	/* training mode again: momentum 0.1 */
	model_forward_train(m, x, 8);
	bn_stats(m, sb, cap);
	for (size_t i = 0; i < n; i++)
		ck_assert(fabsf(sb[i] - (0.9f * sab[i] + 0.1f * sa[i])) <= 1e-5f * (1 + fabsf(sb[i])));
	model_free(m);
	free(x);
	free(sa);
	free(sb);
	free(sab);
}
END_TEST

/* --precision bf16: outputs and gradients near fp32's (bf16 keeps 8
 * significant bits) but not equal to them; the native and portable kernels
 * give the same step bit for bit where the CPU has avx512_bf16. Width 8 on
 * 12x12: at avx2 and up the 3x3 stride-1 layers of up to 32 channels run
 * on the implicit products, the others through im2col. The
 * gradients of so small a network in training mode (BatchNorm over a few
 * values per channel) move a lot with any perturbation: they are held to
 * what rounding only the weights to bf16 does to the fp32 model (the
 * convolutions alone are checked tightly in check_bf16). */
START_TEST(test_bf16_precision)
{
	ModelConfig c = tu_tiny_config();
	c.width = 8;
	c.in_h = c.in_w = 12;
	c.proj_hidden = 32;
	enum { N = 8, FP32 = 0, BF16 = 1, PORTABLE = 2, ROUNDED = 3 };
	Model *m[4];
	for (int k = 0; k < 4; k++) {
		m[k] = new_model(&c, N, MODEL_TRAIN);
		model_init(m[k], 3);
	}
	model_set_precision(m[BF16], PRECISION_BF16);
	model_set_precision(m[PORTABLE], PRECISION_BF16);
	ck_assert_int_eq(model_precision(m[FP32]), PRECISION_FP32);
	ck_assert_int_eq(model_precision(m[BF16]), PRECISION_BF16);
	ParamTable *rt = model_params(m[ROUNDED]);
	for (size_t j = 0; j < rt->nparams; j++)
		rt->params[j] = bf16_round(rt->params[j]);
	size_t per = 3 * 12 * 12, np = rt->nparams;
	float *x = xcalloc(N * per, sizeof(float)), *dz = xcalloc((size_t)N * 8, sizeof(float));
	float z[4][N * 8], *g[4];
	gc_fill_normal(x, N * per, 8, 0, 1);
	gc_fill_normal(dz, (size_t)N * 8, 9, 0, 0.1f);
	const int native = bf16_native();
	for (int k = 0; k < 4; k++) {
		if (k == PORTABLE && !native)
			continue;
		bf16_native_set(k != PORTABLE);
		memcpy(z[k], model_forward_train(m[k], x, N), sizeof z[k]);
		model_zero_grad(m[k]);
		model_backward(m[k], dz);
		g[k] = model_params(m[k])->grads;
		bf16_native_set(1);
	}
	double ez = rel_err(z[BF16], z[FP32], N * 8, 1e-3), eg = rel_err(g[BF16], g[FP32], np, 1e-3);
	double egw = rel_err(g[ROUNDED], g[FP32], np, 1e-3);
	ck_assert_msg(ez > 0 && ez < 0.05, "bf16 vs fp32 forward: relative error %g", ez);
	ck_assert_msg(eg > 0 && eg < 2 * egw, "bf16 vs fp32 gradients: relative error %g (weights rounded: %g)", eg,
	              egw);
	if (native) {
		ck_assert(memcmp(z[BF16], z[PORTABLE], sizeof z[0]) == 0);
		ck_assert(memcmp(g[BF16], g[PORTABLE], sizeof(float) * np) == 0);
	} else {
		printf("bf16 model, native vs portable: not run (%s)\n",
		       bf16_cpu_has() ? "native turned off by $SSL_BF16 or $SSL_ISA" : "CPU lacks avx512_bf16");
	}
	/* eval in bf16 near eval in fp32; back to fp32 gives fp32's bits again */
	float e32[N * 8];
	memcpy(e32, model_forward_eval(m[FP32], x, N, MODEL_OUT_PROJ), sizeof e32);
	ck_assert_int_eq(params_copy(model_params(m[BF16]), model_params(m[FP32]), NULL, 0), 0);
	double ee = rel_err(model_forward_eval(m[BF16], x, N, MODEL_OUT_PROJ), e32, N * 8, 1e-3);
	ck_assert_msg(ee > 0 && ee < 0.02, "bf16 vs fp32 eval: relative error %g", ee);
	model_set_precision(m[BF16], PRECISION_FP32);
	ck_assert(memcmp(model_forward_eval(m[BF16], x, N, MODEL_OUT_PROJ), e32, sizeof e32) == 0);
	free(x), free(dz);
	for (int k = 0; k < 4; k++)
		model_free(m[k]);
}
END_TEST

static size_t
heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();
	return mi.uordblks + mi.hblkhd;
}

START_TEST(test_step_allocates_nothing)
{
	ModelConfig c = tu_tiny_config();
	c.in_h = c.in_w = 16;
	c.proj_hidden = 32;
	c.proj_dim = 128;
	Model *m = new_model(&c, 8, MODEL_TRAIN);
	OptimConfig oc;
	optim_config_default(&oc, OPTIM_LARS);
	Optim *o = optim_new(&oc, model_params(m));
	float *x = xcalloc((size_t)8 * 3 * 16 * 16, sizeof(float)), *dz = xcalloc((size_t)8 * 128, sizeof(float));
	float *work = xcalloc(ntxent_work_floats(4, 128), sizeof(float)), loss, acc;
	gc_fill_normal(x, (size_t)8 * 3 * 16 * 16, 1, 0, 1);
	size_t before = 0;
	for (int it = 0; it < 3; it++) {
		if (it == 2)
			before = heap_in_use();
		const float *z = model_forward_train(m, x, 8);
		ntxent_forward_backward(&loss, &acc, dz, work, z, 4, 128, 0.5f);
		model_zero_grad(m);
		model_backward(m, dz);
		optim_step(o, 0.1f);
		model_forward_eval(m, x, 8, MODEL_OUT_PROJ);
	}
	ck_assert_uint_eq(heap_in_use(), before);
	ck_assert(isfinite(loss));
	free(x), free(dz), free(work);
	optim_free(o);
	model_free(m);
}
END_TEST

static Suite *
model_suite(void)
{
	parallel_set_threads(2);
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("torch");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_torch_forward_backward);
	tcase_add_test(tc, test_torch_lars);
	tcase_add_test(tc, test_torch_sgd);
	suite_add_tcase(s, tc);
	tc = tcase_create("structure");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, test_torchvision_counts);
	tcase_add_test(tc, test_head_names_and_config);
	tcase_add_test(tc, test_init);
	suite_add_tcase(s, tc);
	tc = tcase_create("arch");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_torch_arch, 0, 2);
	tcase_add_loop_test(tc, test_gradcheck_last_layer, 0, 2);
	suite_add_tcase(s, tc);
	tc = tcase_create("eval");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, test_eval, 0, 2);
	tcase_add_test(tc, test_precise_bn);
	tcase_add_test(tc, test_bf16_precision);
	tcase_add_test(tc, test_step_allocates_nothing);
	suite_add_tcase(s, tc);
	return s;
}

CHECK_MAIN(model_suite)
