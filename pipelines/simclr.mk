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
# BUDGET=45m: train for that wall time instead of EPOCHS (ssl-train --budget);
# ssl-decode then offers up to BUDGET_MAX_EPOCHS epochs
BUDGET      ?=
BUDGET_MAX_EPOCHS ?= 1000
OPTIM       ?= sgd
# With BUDGET, the short-budget recipe of bench/recipe-trials.sh (README,
# "Training on a time budget"): lr 0.3 and temperature 0.2 beat the
# reference's 0.06 and 0.5 by 5.3 / 5.1 points (linear / kNN) at 3 CIFAR-10
# epochs, and are what Fashion-MNIST's 2-epoch demo had found on its own.
LR          ?= $(if $(BUDGET),0.3,0.06)
WD          ?= 5e-4
MOMENTUM    ?= 0.9
TEMPERATURE ?= $(if $(BUDGET),0.2,0.5)
WARMUP      ?= 0
# fp32, bf16 or auto (ssl-train --precision); the probes' embeddings stay fp32.
# Give a bf16 run its own RUN=... to keep the fp32 one beside it. With BUDGET,
# auto: bf16 where the CPU has it (as accurate, more steps in the time).
PRECISION   ?= $(if $(BUDGET),auto,fp32)
EXTRA_TRAIN ?=

PROBE_LABELS ?= 1% 10%
# e.g. DECODE_FLAGS='--limit 2000' for a smoke run on part of the data
DECODE_FLAGS ?=
# PRECISE_BN=1: ssl-encode first recomputes the BatchNorm statistics over the
# un-augmented training images (--precise-bn), for SimCLR and random init alike;
# PRECISE_BN_FLAGS picks fewer, e.g. '--labels 500-per-class'
PRECISE_BN       ?=
PRECISE_BN_FLAGS ?=
BN_IMAGES    := $(if $(PRECISE_BN),$(OUT)/bn.images)
ENCODE_FLAGS := $(if $(PRECISE_BN),--precise-bn $(OUT)/bn.images)
# ssl-decode selections of the train and test images (pipelines/images.mk
# splits one input with --labels / --labels-complement; a small collection:
# TRAIN_SELECT='--labels 300-per-class --limit 2945'), ssl-augment flags
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
  --threads $(THREADS) --seed $(SEED) --precision $(PRECISION) $(EXTRA_TRAIN)

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

# With BUDGET, ssl-train stops before the input ends, and ssl-decode and
# ssl-augment die of SIGPIPE (status 141, no message): only ssl-train's
# status counts then.
$(OUT)/simclr.ssl: $(MONITOR_DEP) | $(OUT)/.dir
	@echo "== pre-training $(ARCH) width $(WIDTH), $(if $(BUDGET),for $(BUDGET),$(EPOCHS) epochs) (log: $@.log)"
	@start=$$(date +%s); set +o pipefail; \
	$(D) --quiet $(DECODE_FLAGS) $(TRAIN_SELECT) --shuffle --seed $(SEED) \
	    --epochs $(if $(BUDGET),$(BUDGET_MAX_EPOCHS),$(EPOCHS)) $(TRAIN_INPUT) \
	  | $(A) --recipe $(RECIPE) $(AUGMENT_FLAGS) --seed $(SEED) --threads 1 \
	  | $(T) $(TRAIN_FLAGS) $(if $(BUDGET),--budget $(BUDGET)) --progress --log $(OUT)/train.tsv \
	      --plot $(OUT)/curves.png $(MONITOR_FLAGS) -o $@ 2> >(tee $@.log >&2); \
	s=("$${PIPESTATUS[@]}"); \
	for i in 0 1; do [ "$${s[$$i]}" = 0 ] || { [ -n "$(BUDGET)" ] && [ "$${s[$$i]}" = 141 ]; } || exit "$${s[$$i]}"; done; \
	[ "$${s[2]}" = 0 ] || exit "$${s[2]}"; \
	echo $$(( $$(date +%s) - start )) > $(OUT)/train-seconds.txt

$(OUT)/random.ssl: | $(OUT)/.dir
	$(T) --steps 0 --input-size $(INPUT_SIZE) $(TRAIN_FLAGS) -o $@ 2> $@.log

$(OUT)/bn.images: | $(OUT)/.dir
	$(D) --quiet $(DECODE_FLAGS) $(TRAIN_SELECT) $(PRECISE_BN_FLAGS) $(TRAIN_INPUT) > $@ 2> $@.log

$(OUT)/%-train.emb: $(OUT)/%.ssl $(BN_IMAGES)
	$(D) --quiet $(DECODE_FLAGS) $(TRAIN_SELECT) $(TRAIN_INPUT) \
	  | $(E) -m $< --threads $(THREADS) $(ENCODE_FLAGS) > $@ 2> $@.log

$(OUT)/%-test.emb: $(OUT)/%.ssl $(BN_IMAGES)
	$(D) --quiet $(DECODE_FLAGS) $(TEST_SELECT) $(TEST_INPUT) | $(E) -m $< --threads $(THREADS) $(ENCODE_FLAGS) > $@ 2> $@.log

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
	scripts/report.sh $(OUT) "$(DATASET)" "$(ARCH) width $(WIDTH), $(STEM) stem, batch $(BATCH), $(if $(BUDGET),a budget of $(BUDGET),$(EPOCHS) epochs), $(OPTIM) lr $(LR) wd $(WD), temperature $(TEMPERATURE), precision $(PRECISION)" "$(PROBES)"

clean-run:
	rm -rf $(OUT)
