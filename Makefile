# ssl-tools: one GNU Makefile. `make` builds build/bin/ssl-* and build/libssltools.a.
# New lib/*/*.c, tools/ssl-*.c and tests/check_*.c files are picked up automatically.
include config.mk

BUILD ?= build
SHELL := /bin/bash

ifeq ($(SAN),1)
OPT = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD = -fsanitize=address,undefined
endif
ifeq ($(CI),true)
WERROR = -Werror
endif

PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null)
TEST_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(TEST_PKGS) 2>/dev/null)
TEST_LIBS   := $(shell $(PKG_CONFIG) --libs $(TEST_PKGS) 2>/dev/null)

ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DSSL_VERSION=\"$(VERSION)\" -fopenmp $(OPT) $(WARN) $(WERROR) \
             -MMD -MP -Ilib $(PKG_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = -fopenmp $(SANLD) $(LDFLAGS)
LIBS = $(PKG_LIBS) -lm

LIB_SRC   := $(wildcard lib/*/*.c)
TOOL_SRC  := $(wildcard tools/ssl-*.c)
TEST_SRC  := $(wildcard tests/check_*.c)
TESTSUP_SRC := $(filter-out tests/check_%,$(wildcard tests/*.c))
TEST_SCRIPTS := $(wildcard tests/check-*.sh)

LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o)
TOOL_BIN  := $(TOOL_SRC:tools/%.c=$(BUILD)/bin/%)
TEST_BIN  := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TESTSUP_OBJ := $(TESTSUP_SRC:%.c=$(BUILD)/%.o)
LIBA      := $(BUILD)/libssltools.a
MAN_PAGES := $(wildcard man/*.1 man/*.5)

.PHONY: all deps check check-asan test demo install clean fixtures bench fuzz
.DELETE_ON_ERROR:
.SECONDARY:

all: $(TOOL_BIN)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Kernel files compiled once per instruction-set level (lib/base/cpu.h):
# lib/*/*_avx2.c and *_avx512.c.
ifneq ($(filter x86_64%,$(shell $(CC) -dumpmachine)),)
CPU_FLAGS_AVX2   = -march=x86-64-v3
CPU_FLAGS_AVX512 = -march=x86-64-v4 -mprefer-vector-width=512
endif
$(BUILD)/lib/%_avx2.o: ALL_CFLAGS += $(CPU_FLAGS_AVX2)
$(BUILD)/lib/%_avx512.o: ALL_CFLAGS += $(CPU_FLAGS_AVX512)

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/tools/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBA) $(LIBS)

$(BUILD)/tests/check_%: $(BUILD)/tests/check_%.o $(TESTSUP_OBJ) $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(TESTSUP_OBJ) $(LIBA) $(TEST_LIBS) $(LIBS)

# Installs the Debian packages that are missing (as root), or says how.
deps:
	@scripts/deps.sh

# Runs every Check suite (and the tool tests, which run the built binaries).
test: all $(TEST_BIN)
	@SSL_BIN=$(abspath $(BUILD)/bin) SSL_SRC=$(CURDIR) scripts/run-tests.sh $(TEST_BIN) $(TEST_SCRIPTS)

check: deps
	@$(MAKE) --no-print-directory test

check-asan: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=1 test

# The demo pre-trains for a wall time, not a number of epochs: it ends when
# promised on any CPU, and 5 minutes of the short-budget recipe beat the old
# fixed 2 epochs by about 2 kNN points (README, "Results on this machine").
# Each budget has its own run folder: make would otherwise keep a model
# trained for another budget (or for epochs) and report it again.
DEMO_BUDGET ?= 5m
demo: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -f pipelines/fashion-mnist.mk BUDGET=$(DEMO_BUDGET) RUN=demo-$(DEMO_BUDGET)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(MANPREFIX)/man1 $(DESTDIR)$(MANPREFIX)/man5
	install -m 755 $(TOOL_BIN) $(DESTDIR)$(PREFIX)/bin/
	for p in $(MAN_PAGES); do case $$p in *.1) d=man1;; *.5) d=man5;; esac; \
	  install -m 644 $$p $(DESTDIR)$(MANPREFIX)/$$d/; done

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# ---- compute core: benches and fixtures (lib/nn/model et al.) ----
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBA) $(LIBS)

bench: $(BENCH_BIN)

# Regenerates the PyTorch parity fixtures (development only; needs Debian's python3-torch).
fixtures:
	/usr/bin/python3 tests/ref/make_core_fixtures.py tests/fixtures
# ---- end compute core ----

# ---- ssl-augment (issue 3) --------------------------------------------------
# lib/data/augment's kernels are plain loops written to vectorise; -O2's cheap cost
# model and trapping-math if-conversion rules leave them scalar. These flags
# change no values (no fast-math): the results stay torchvision's bit for bit.
# (Probed, so that compilers without them, such as clang, still build.)
AUGMENT_VEC_FLAGS := $(shell $(CC) -fno-trapping-math -fvect-cost-model=dynamic -Werror -E -x c /dev/null \
                       >/dev/null 2>&1 && echo -fno-trapping-math -fvect-cost-model=dynamic)
$(BUILD)/lib/data/augment.o: ALL_CFLAGS += $(AUGMENT_VEC_FLAGS)

.PHONY: bench-augment
bench-augment: $(BUILD)/bench/bench_augment
	@bench/bench_augment.sh $(BUILD)

$(BUILD)/bench/bench_augment: $(BUILD)/bench/bench_augment.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(LIBA) $(LIBS)
# ---- end ssl-augment ---------------------------------------------------------

# ---- bench-decode (ssl-decode): images/s vs PIL on the CIFAR-10 train JPEGs ----
.PHONY: bench-decode
$(BUILD)/bench/bench_decode: bench/bench_decode.c $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(ALL_LDFLAGS) $(LIBA) $(LIBS)
bench-decode: $(BUILD)/bench/bench_decode
	bench/decode.sh $(BUILD)
# ---- end bench-decode ----

# ---- fuzz (issue 9): libFuzzer harnesses under ASan+UBSan ----
# `make fuzz FUZZ_SECONDS=N` builds fuzz/fuzz_*.c and lib/*/*.c with clang
# into $(BUILD)/fuzz, writes the seed corpora (fuzz/make_corpus.c, from our
# own writers) and runs each harness for N seconds on them (nice 19). A
# crash, leak, sanitizer report, timeout or oversized allocation fails the
# target; the input is kept in $(BUILD)/fuzz/artifacts. The growing corpora
# stay in $(BUILD)/fuzz/corpus between runs.
.PHONY: fuzz-build
FUZZ_CC ?= clang
FUZZ_SECONDS ?= 60
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -DSSL_VERSION=\"$(VERSION)\" -O1 -g -fno-omit-frame-pointer $(FUZZ_SAN) \
               -fsanitize=fuzzer-no-link -fopenmp $(WARN) -Wno-pass-failed $(WERROR) -MMD -MP -Ilib $(PKG_CFLAGS)
FUZZ_SRC := $(wildcard fuzz/fuzz_*.c)
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIB_OBJ := $(LIB_SRC:lib/%.c=$(FUZZ_DIR)/lib/%.o)

$(FUZZ_DIR)/lib/%_avx2.o: FUZZ_CFLAGS += $(CPU_FLAGS_AVX2)
$(FUZZ_DIR)/lib/%_avx512.o: FUZZ_CFLAGS += $(CPU_FLAGS_AVX512)
$(FUZZ_DIR)/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_DIR)/%.o: fuzz/%.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c -o $@ $<
$(FUZZ_DIR)/fuzz_%: $(FUZZ_DIR)/fuzz_%.o $(FUZZ_LIB_OBJ)
	$(FUZZ_CC) $(FUZZ_SAN) -fsanitize=fuzzer -fopenmp -o $@ $^ $(LIBS)
$(FUZZ_DIR)/make_corpus: fuzz/make_corpus.c $(BUILD)/tests/imgwrite.o $(LIBA)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(TEST_CFLAGS) -Itests -o $@ $< $(BUILD)/tests/imgwrite.o $(ALL_LDFLAGS) $(LIBA) $(TEST_LIBS) $(LIBS)
fuzz-build: $(FUZZ_BIN) $(FUZZ_DIR)/make_corpus
fuzz: fuzz-build
	@fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(FUZZ_BIN)
# ---- end fuzz ----

# ---- safetensors export/import (issue 10) ----
.PHONY: bench-export fixtures-safetensors
# The round trip with PyTorch on this machine (Debian's python3-torch).
bench-export: all
	@SSL_BIN=$(abspath $(BUILD)/bin) bench/export_roundtrip.sh
# Regenerates tests/fixtures/resnet18_w8*.safetensors (development only).
fixtures-safetensors:
	/usr/bin/python3 tests/ref/make_safetensors_fixture.py tests/fixtures
# ---- end safetensors ----
# ---- ssl-train-mpi (issue 8): data-parallel ssl-train over MPI ----------------
# Built only when mpicc is on PATH (Debian: libopenmpi-dev); without it the
# rest of the build, and `make check`, go on (tests/check_mpi skips).
# tools/ssl-train.c and lib/dist/dist_mpi.c are compiled again with -DSSL_MPI.
MPICC ?= $(shell command -v mpicc 2>/dev/null)
ifneq ($(MPICC),)
MPI_BIN := $(BUILD)/bin/ssl-train-mpi
MPI_OBJ := $(BUILD)/mpi/tools/ssl-train.o $(BUILD)/mpi/lib/dist/dist_mpi.o
TOOL_BIN += $(MPI_BIN)
all: $(MPI_BIN)
$(BUILD)/mpi/%.o: %.c
	@mkdir -p $(@D)
	$(MPICC) $(ALL_CFLAGS) -DSSL_MPI -c -o $@ $<
$(MPI_BIN): $(MPI_OBJ) $(LIBA)
	@mkdir -p $(@D)
	$(MPICC) $(ALL_LDFLAGS) -o $@ $(MPI_OBJ) $(LIBA) $(LIBS)
endif

.PHONY: bench-mpi
bench-mpi: all
	@bench/mpi.sh $(BUILD)
# ---- end ssl-train-mpi ---------------------------------------------------------

# ---- bench-bf16 (issue 15): bf16 GEMM vs our fp32 GEMM vs OpenBLAS sgemm ----
# One thread on core 1 (the core kept for timing), OpenBLAS left to pick its
# own kernel (OPENBLAS_CORETYPE, OPENBLAS_L2_SIZE unset).
.PHONY: bench-bf16
bench-bf16: $(BUILD)/bench/bench_bf16_gemm
	env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
	  taskset -c 1 $(BUILD)/bench/bench_bf16_gemm $(BENCH_ARGS)
# ---- end bench-bf16 ----

# ---- fuzz corpora in make check (issue 19) ----
# Each harness is linked with fuzz/replay.c (no fuzzing engine), with the
# compiler and sanitizers of this build, and tests/check-fuzz-corpus.sh
# replays fuzz/corpus/<name>/ through it: the reproducers of every bug the
# fuzzers or hostile inputs found, in seconds.
REPLAY_DIR := $(BUILD)/fuzz-replay
REPLAY_BIN := $(FUZZ_SRC:fuzz/fuzz_%.c=$(REPLAY_DIR)/replay_%)
$(REPLAY_DIR)/%.o: fuzz/%.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<
$(REPLAY_DIR)/replay_%: $(REPLAY_DIR)/fuzz_%.o $(REPLAY_DIR)/replay.o $(LIBA)
	$(CC) $(ALL_LDFLAGS) -o $@ $< $(REPLAY_DIR)/replay.o $(LIBA) $(LIBS)
test: $(REPLAY_BIN)
# ---- end fuzz corpora ----
