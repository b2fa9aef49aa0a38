# pipelines/images.mk: SimCLR on any collection of images, with settings
# chosen from the data.
#
#   make -f pipelines/images.mk TRAIN=my-train.tar.gz [TEST=my-test.tar.gz] [RUN=name] [VAR=value ...]
#
# TRAIN and TEST are anything ssl-decode reads: archives or folders in
# <class>/<file> layout (images of any size and shape), CIFAR or STL-10
# archives, IDX files. Outputs go to runs/$(RUN)/ (RUN: the name of TRAIN).
#
# The rule. First `ssl-decode --survey $(TRAIN)` (runs/$(RUN)/survey.txt)
# counts the images (N), the labelled ones, the channels, and the median
# shorter side S; then, each choice a variable to set on the command line:
#
#   SIZE     32 when S <= 48; 64 when S <= 80; otherwise 96. Every image is
#            brought to SIZE x SIZE with FIT.
#   FIT      crop: the shorter side to SIZE, then the centre (torchvision
#            Resize + CenterCrop); pad (letterbox) or stretch on request.
#   RECIPE   cifar when SIZE <= 48, otherwise stl10 (ssl-augment --help).
#            Where colour tells the classes apart (flowers, birds, products),
#            stl10's strong colour distortion can cost more than training
#            gains: try RECIPE=photo (ssl-augment(1), Recipes), and watch
#            ssl-train's verdict on its kNN monitor in the report.
#   STEM     cifar (3x3, no down-sampling) when SIZE <= 48, otherwise
#            imagenet (7x7/2 and max-pool): at 96 px it costs about what
#            32 px costs with the cifar stem.
#   WIDTH    16; 8 over 50,000 images.
#   BATCH    256, halved (down to 32) while it is over N / 8, so that an
#            epoch has at least 8 steps; LR 0.06 (ssl-train scales it by
#            BATCH / 256; SGD, cosine), TEMPERATURE 0.5: SimCLR's CIFAR
#            settings, as pipelines/cifar10.mk.
#   EPOCHS   200,000 images seen / N rounded, from 1 to 200: about 25 minutes
#            of pre-training on 2 cores at 32 px (cifar10.mk does 350,000 in
#            about 40). Or BUDGET=45m: as many steps as fit in that wall time
#            (ssl-train --budget).
#   TEST     when not given: if TRAIN has labels, a stratified TEST_PART (20%)
#            of each class of TRAIN is the test set (ssl-decode --labels) and
#            the rest (--labels-complement) is trained on and probed; without
#            labels there is nothing to probe, and the run ends with the model,
#            the training curves and the augmentation preview.
#
# It ends with the report of pipelines/simclr.mk: runs/$(RUN)/report.md,
# table.txt, curves.png, preview.png and the PCA maps.

ifndef TRAIN
$(error give TRAIN=archive-or-folder (and TEST=... if you have a test set): make -f pipelines/images.mk TRAIN=my-photos/)
endif

BIN  ?= build/bin
RUN  ?= $(basename $(basename $(notdir $(patsubst %/,%,$(TRAIN)))))
OUT  := runs/$(RUN)

# the survey and the choices it implies, remade when TRAIN changes
-include $(OUT)/choices.mk
$(OUT)/choices.mk: $(patsubst %/,%,$(TRAIN)) pipelines/images.mk
	@mkdir -p $(OUT)
	@echo "== survey of $(TRAIN) (ssl-decode --survey)"
	$(BIN)/ssl-decode --quiet --survey $(TRAIN) > $(OUT)/survey.txt
	@awk -v budget=200000 ' \
	  $$1 == "images" { n = $$2 } $$1 == "labelled" { l = $$2 } $$1 == "channels" { c = $$2 } \
	  $$1 == "short" { s = $$3 } \
	  END { size = s <= 48 ? 32 : s <= 80 ? 64 : 96; \
	        b = 256; while (b > 32 && b * 8 > n) b /= 2; \
	        e = int(budget / n + 0.5); if (e < 1) e = 1; if (e > 200) e = 200; \
	        print "AUTO_IMAGES := " n; print "AUTO_LABELLED := " l; print "AUTO_CHANNELS := " c; \
	        print "AUTO_SHORT := " s; print "AUTO_SIZE := " size; print "AUTO_BATCH := " b; \
	        print "AUTO_EPOCHS := " e; print "AUTO_WIDTH := " (n > 50000 ? 8 : 16) }' \
	  $(OUT)/survey.txt > $@.tmp
	@mv $@.tmp $@
	@cat $(OUT)/survey.txt

SIZE        ?= $(AUTO_SIZE)
FIT         ?= crop
SMALL       := $(shell [ "0$(SIZE)" -le 48 ] && echo 1)
RECIPE      ?= $(if $(SMALL),cifar,stl10)
STEM        ?= $(if $(SMALL),cifar,imagenet)
WIDTH       ?= $(AUTO_WIDTH)
BATCH       ?= $(AUTO_BATCH)
TEMPERATURE ?= 0.5
EPOCHS      ?= $(AUTO_EPOCHS)
TEST_PART   ?= 20%
CHANNELS    ?= $(AUTO_CHANNELS)

DATASET       := $(notdir $(patsubst %/,%,$(TRAIN)))
INPUT_SIZE    := $(SIZE)x$(SIZE)x$(CHANNELS)
DECODE_FLAGS  ?= --size $(SIZE) --fit $(FIT)
AUGMENT_FLAGS ?= --size $(SIZE)
TRAIN_INPUT   := $(TRAIN)
ifdef TEST
TEST_INPUT    := $(TEST)
else ifneq ($(AUTO_LABELLED),0)
# a stratified split of TRAIN, the same on every side (--seed is SEED's);
# the training monitor takes 100 labelled images per class of TRAIN
TEST_INPUT    := $(TRAIN)
MONITOR_INPUT := $(TRAIN)
TEST_SELECT   := --labels $(TEST_PART)
TRAIN_SELECT  := --labels $(TEST_PART) --labels-complement
DATASET       := $(DATASET) ($(TEST_PART) of each class held out for the test)
else
PROBE         := 0
endif
TEST_SELECT  += --seed $(or $(SEED),1)
TRAIN_SELECT += --seed $(or $(SEED),1)

include pipelines/simclr.mk
.DEFAULT_GOAL := all
