/* model_config: a ModelConfig's defaults, checks and names, and the one
 * table of its keys and limits that every file storing one uses
 * (checkpoint.c, safetensors.c). See model.h. */
#include "nn/model.h"

#include <stdio.h>
#include <string.h>

const ModelConfigKey model_config_keys[MODEL_CONFIG_NKEYS] = {
	{ "width", offsetof(ModelConfig, width), 1, MODEL_MAX_WIDTH },
	{ "in_channels", offsetof(ModelConfig, in_channels), 1, MODEL_MAX_IN_CHANNELS },
	{ "in_h", offsetof(ModelConfig, in_h), 1, MODEL_MAX_SIDE },
	{ "in_w", offsetof(ModelConfig, in_w), 1, MODEL_MAX_SIDE },
	{ "proj_layers", offsetof(ModelConfig, proj_layers), 0, 3 },
	{ "proj_hidden", offsetof(ModelConfig, proj_hidden), 0, MODEL_MAX_PROJ },
	{ "proj_dim", offsetof(ModelConfig, proj_dim), 0, MODEL_MAX_PROJ },
	{ "num_classes", offsetof(ModelConfig, num_classes), 0, MODEL_MAX_CLASSES },
};

int *
model_config_field(ModelConfig *c, const ModelConfigKey *k)
{
	return (int *)((char *)c + k->off);
}

void
model_config_default(ModelConfig *c)
{
	*c = (ModelConfig){ .arch = ARCH_RESNET18, .stem = STEM_CIFAR, .width = 64, .in_channels = 3,
		            .in_h = 32, .in_w = 32, .proj_layers = 2, .proj_hidden = 2048, .proj_dim = 128,
		            .num_classes = 0, .zero_init_residual = 0 };
}

int
model_config_check(const ModelConfig *c, char *err, size_t errlen)
{
	if (c->arch != ARCH_RESNET18 && c->arch != ARCH_RESNET34 && c->arch != ARCH_RESNET50) {
		snprintf(err, errlen, "unknown architecture");
		return -1;
	}
	if (c->stem != STEM_CIFAR && c->stem != STEM_IMAGENET) {
		snprintf(err, errlen, "unknown stem");
		return -1;
	}
	if (c->width < 1 || c->width > MODEL_MAX_WIDTH) {
		snprintf(err, errlen, "width %d not in [1, %d]", c->width, MODEL_MAX_WIDTH);
		return -1;
	}
	if (c->in_channels < 1 || c->in_channels > MODEL_MAX_IN_CHANNELS) {
		snprintf(err, errlen, "input channels %d not in [1, %d]", c->in_channels, MODEL_MAX_IN_CHANNELS);
		return -1;
	}
	if (c->in_h < 1 || c->in_w < 1 || c->in_h > MODEL_MAX_SIDE || c->in_w > MODEL_MAX_SIDE) {
		snprintf(err, errlen, "input size %dx%d not in [1, %d]", c->in_h, c->in_w, MODEL_MAX_SIDE);
		return -1;
	}
	if (c->proj_layers != 0 && c->proj_layers != 2 && c->proj_layers != 3) {
		snprintf(err, errlen, "projection head layers must be 0, 2 or 3, not %d", c->proj_layers);
		return -1;
	}
	if (c->proj_layers && (c->proj_hidden < 1 || c->proj_hidden > MODEL_MAX_PROJ || c->proj_dim < 1 ||
	                       c->proj_dim > MODEL_MAX_PROJ)) {
		snprintf(err, errlen, "projection head dims must be in [1, %d]", MODEL_MAX_PROJ);
		return -1;
	}
	if (c->num_classes < 0 || c->num_classes > MODEL_MAX_CLASSES) {
		snprintf(err, errlen, "number of classes %d not in [0, %d]", c->num_classes, MODEL_MAX_CLASSES);
		return -1;
	}
	return 0;
}

int
model_arch_parse(const char *s, ModelArch *out)
{
	if (strcmp(s, "resnet18") == 0)
		*out = ARCH_RESNET18;
	else if (strcmp(s, "resnet34") == 0)
		*out = ARCH_RESNET34;
	else if (strcmp(s, "resnet50") == 0)
		*out = ARCH_RESNET50;
	else
		return -1;
	return 0;
}

int
model_stem_parse(const char *s, ModelStem *out)
{
	if (strcmp(s, "cifar") == 0)
		*out = STEM_CIFAR;
	else if (strcmp(s, "imagenet") == 0)
		*out = STEM_IMAGENET;
	else
		return -1;
	return 0;
}

const char *
model_arch_name(ModelArch a)
{
	return a == ARCH_RESNET18 ? "resnet18" : a == ARCH_RESNET34 ? "resnet34" : "resnet50";
}

const char *
model_stem_name(ModelStem s)
{
	return s == STEM_CIFAR ? "cifar" : "imagenet";
}

int
model_output_parse(const char *s, ModelOutput *out)
{
	if (strcmp(s, "encoder") == 0)
		*out = MODEL_OUT_ENCODER;
	else if (strcmp(s, "proj-hidden") == 0)
		*out = MODEL_OUT_PROJ_HIDDEN;
	else if (strcmp(s, "proj") == 0)
		*out = MODEL_OUT_PROJ;
	else if (strcmp(s, "logits") == 0)
		*out = MODEL_OUT_LOGITS;
	else
		return -1;
	return 0;
}
