# SimCLR on CIFAR-10 pre-trained data-parallel: ssl-train-mpi on RANKS ranks
# under mpirun, each rank decoding and augmenting its shard of the archive
# (ssl-decode --shard), with synchronised BatchNorm, so the model is the one
# a single process with the same global BATCH would train (cifar10.mk's
# recipe). Then the probes of simclr.mk on the result, named "mpi":
# runs/$(RUN)/mpi.ssl, mpi-linear.json, mpi-knn.json, ...
#   make -f pipelines/cifar10-mpi.mk [RANKS=2] [EPOCHS=..] [MPIRUN='mpirun --hostfile hosts']
# (As root, in containers, Open MPI needs --allow-run-as-root: added then.)
# RANK_THREADS: OpenMP threads per rank.
RANKS        ?= 2
RANK_THREADS ?= 1
RUN     ?= CIFAR-10-mpi$(RANKS)
MPIRUN  ?= mpirun $(if $(filter 0,$(shell id -u)),--allow-run-as-root)
include pipelines/cifar10.mk

TM := $(BIN)/ssl-train-mpi
.DEFAULT_GOAL := mpi
.PHONY: mpi

mpi: $(OUT)/mpi-linear.json $(OUT)/mpi-knn.json
	@for f in $^; do echo "$$f: $$(cat $$f)"; done

$(OUT)/mpi.ssl: $(OUT)/monitor.images | $(OUT)/.dir
	@echo "== pre-training $(ARCH) width $(WIDTH), $(EPOCHS) epochs on $(RANKS) ranks (log: $@.log)"
	@start=$$(date +%s); \
	$(MPIRUN) -np $(RANKS) sh -c '$(D) --quiet $(DECODE_FLAGS) --shuffle --seed $(SEED) --epochs $(EPOCHS) \
	    --shard $$OMPI_COMM_WORLD_RANK/$$OMPI_COMM_WORLD_SIZE $(TRAIN_INPUT) \
	  | $(A) --recipe $(RECIPE) --seed $(SEED) --threads 1 \
	  | $(TM) $(TRAIN_FLAGS) --threads $(RANK_THREADS) --sync-bn --progress --log $(OUT)/mpi-train.tsv --plot $(OUT)/mpi-curves.png \
	      --monitor $(OUT)/monitor.images -o $@' 2> >(tee $@.log >&2); \
	echo $$(( $$(date +%s) - start )) > $(OUT)/mpi-train-seconds.txt
