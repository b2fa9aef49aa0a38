# pipelines/simclr.mk: the SimCLR experiment as file targets, shared by the
# dataset pipelines (fashion-mnist.mk, cifar10.mk), which set the variables
# below and include this file. Every stage is a file under runs/$(RUN)/, so
# make redoes only what changed; each stage's stderr is kept beside its output
# as <output>.log.
#
#   images --decode--> augment --> ssl-train --> model.ssl
#   model.ssl + images --ssl-encode--> {train,test}.emb --ssl-probe--> *.json
#   random.ssl (ssl-train --steps 0) gives the random-init baseline.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DELETE_ON_ERROR:
.SECONDARY:

BIN     ?= build/bin
RUN     ?= $(DATASET)
OUT     := runs/$(RUN)
SEED    ?= 1
THREADS ?= 2

# model and training
ARCH        ?= resnet18
STEM        ?= cifar
WIDTH       ?= 16
PROJ_HIDDEN ?= 512
PROJ_DIM    ?= 128
BATCH       ?= 256
EPOCHS      ?= 7
OPTIM       ?= sgd
LR          ?= 0.06
WD          ?= 5e-4
MOMENTUM    ?= 0.9
TEMPERATURE ?= 0.5
WARMUP      ?= 0
EXTRA_TRAIN ?=

PROBE_LABELS ?= 1% 10%
# e.g. DECODE_FLAGS='--limit 2000' for a smoke run on part of the data
DECODE_FLAGS ?=
# ssl-decode selections of the train and test images (pipelines/images.mk
# splits one input with --labels / --labels-complement), ssl-augment flags
TRAIN_SELECT  ?=
TEST_SELECT   ?=
AUGMENT_FLAGS ?=
# ssl-train's online kNN monitor: 100 labelled images per class of this input
MONITOR_INPUT ?= $(TEST_INPUT)
# PROBE=0: no labels, nothing to probe; the run ends with the model
PROBE ?= 1

D := $(BIN)/ssl-decode
A := $(BIN)/ssl-augment
T := $(BIN)/ssl-train
E := $(BIN)/ssl-encode
P := $(BIN)/ssl-probe
PLOT := $(BIN)/ssl-plot

TRAIN_FLAGS = --arch $(ARCH) --stem $(STEM) --width $(WIDTH) --proj-hidden $(PROJ_HIDDEN) \
  --proj-dim $(PROJ_DIM) --batch $(BATCH) --optim $(OPTIM) --lr $(LR) --wd $(WD) \
  --momentum $(MOMENTUM) --temperature $(TEMPERATURE) --warmup-epochs $(WARMUP) \
  --threads $(THREADS) --seed $(SEED) $(EXTRA_TRAIN)

MODELS := simclr random
PROBES := linear knn $(foreach l,$(PROBE_LABELS),linear-$(subst %,pct,$(l)))

.PHONY: all report clean-run
all: report

ifeq ($(PROBE),1)
report: $(OUT)/report.md
	@cat $(OUT)/table.txt
MONITOR_FLAGS = --monitor $(OUT)/monitor.images
MONITOR_DEP   = $(OUT)/monitor.images
else
report: $(OUT)/simclr.ssl $(OUT)/preview.png
	@printf '# SimCLR on %s\n\nNo labels, so no probe: the model is %s (curves: %s; augmentations: %s).\n' \
	  "$(DATASET)" $(OUT)/simclr.ssl $(OUT)/curves.png $(OUT)/preview.png | tee $(OUT)/report.md
endif

$(OUT)/.dir:
	@mkdir -p $(OUT) && touch $@

# a small labelled set for ssl-train's online kNN monitor
$(OUT)/monitor.images: | $(OUT)/.dir
	$(D) --quiet $(DECODE_FLAGS) --labels 100-per-class --seed $(SEED) $(MONITOR_INPUT) > $@ 2> $@.log

$(OUT)/preview.png: | $(OUT)/.dir
	$(D) --quiet $(DECODE_FLAGS) --limit 8 $(TRAIN_INPUT) | $(A) --recipe $(RECIPE) $(AUGMENT_FLAGS) --seed $(SEED) --views 6 \
	  --preview $@ > /dev/null 2> $@.log

$(OUT)/simclr.ssl: $(MONITOR_DEP) | $(OUT)/.dir
	@echo "== pre-training $(ARCH) width $(WIDTH), $(EPOCHS) epochs (log: $@.log)"
	@start=$$(date +%s); \
	$(D) --quiet $(DECODE_FLAGS) $(TRAIN_SELECT) --shuffle --seed $(SEED) --epochs $(EPOCHS) $(TRAIN_INPUT) \
	  | $(A) --recipe $(RECIPE) $(AUGMENT_FLAGS) --seed $(SEED) --threads 1 \
	  | $(T) $(TRAIN_FLAGS) --progress --log $(OUT)/train.tsv --plot $(OUT)/curves.png \
	      $(MONITOR_FLAGS) -o $@ 2> >(tee $@.log >&2); \
	echo $$(( $$(date +%s) - start )) > $(OUT)/train-seconds.txt

$(OUT)/random.ssl: | $(OUT)/.dir
	$(T) --steps 0 --input-size $(INPUT_SIZE) $(TRAIN_FLAGS) -o $@ 2> $@.log

$(OUT)/%-train.emb: $(OUT)/%.ssl
	$(D) --quiet $(DECODE_FLAGS) $(TRAIN_SELECT) $(TRAIN_INPUT) | $(E) -m $< --threads $(THREADS) > $@ 2> $@.log

$(OUT)/%-test.emb: $(OUT)/%.ssl
	$(D) --quiet $(DECODE_FLAGS) $(TEST_SELECT) $(TEST_INPUT) | $(E) -m $< --threads $(THREADS) > $@ 2> $@.log

$(OUT)/%-map.png: $(OUT)/%-test.emb
	$(PLOT) embed $< -o $@ 2> $@.log

$(OUT)/%-linear.json: $(OUT)/%-train.emb $(OUT)/%-test.emb
	$(P) --quiet --train $(word 1,$^) --test $(word 2,$^) --method linear --json --threads $(THREADS) > $@ 2> $@.log

$(OUT)/%-knn.json: $(OUT)/%-train.emb $(OUT)/%-test.emb
	$(P) --quiet --train $(word 1,$^) --test $(word 2,$^) --method knn --json --threads $(THREADS) > $@ 2> $@.log

# linear-1pct, linear-10pct: the few-label protocol (stratified, seeded)
$(OUT)/simclr-linear-%pct.json: $(OUT)/simclr-train.emb $(OUT)/simclr-test.emb
	$(P) --quiet --train $(word 1,$^) --test $(word 2,$^) --method linear --labels $*% --seed $(SEED) --json > $@ 2> $@.log
$(OUT)/random-linear-%pct.json: $(OUT)/random-train.emb $(OUT)/random-test.emb
	$(P) --quiet --train $(word 1,$^) --test $(word 2,$^) --method linear --labels $*% --seed $(SEED) --json > $@ 2> $@.log

RESULTS := $(foreach m,$(MODELS),$(foreach p,$(PROBES),$(OUT)/$(m)-$(p).json))

$(OUT)/report.md: $(RESULTS) $(OUT)/simclr-map.png $(OUT)/random-map.png $(OUT)/preview.png
	scripts/report.sh $(OUT) "$(DATASET)" "$(ARCH) width $(WIDTH), $(STEM) stem, batch $(BATCH), $(EPOCHS) epochs, $(OPTIM) lr $(LR) wd $(WD), temperature $(TEMPERATURE)" "$(PROBES)"

clean-run:
	rm -rf $(OUT)
