# gaprune — build, test, run, bench, fixtures, deps.
#
#   make            release build: build/gaprune and build/libgaprune.a
#   make test       installs missing packages, builds, runs every test (under ASan + UBSan) but the
#                   long cases: within 6 minutes on 2 cores (docs/testing.md "Tests": which case runs where)
#   make test-long  the long cases (tu_long_test in tests/test_*.c: many ranks, kill-and-resume
#                   matrices, model-sized memory checks); CI runs both
#   make run        installs missing packages, builds, builds the corpora, runs jobs/demo.ini on 2 ranks
#   make data       the demo corpora (WordNet, manual pages) into build/data
#   make test-slurm a private Slurm (munge, slurmctld, slurmd): a job, and one requeued by USR1
#   make bench      speed against PyTorch and the machine's sgemm rate
#   make fuzz       every libFuzzer harness of tests/fuzz for FUZZ_SECONDS (600) each, JOBS at a time (clang)
#   make fuzz-smoke the same for 20 s each (CI)
#   make fixtures   regenerates tests/fixtures with the PyTorch reference (/usr/bin/python3)
#   make deps       installs the Debian packages (apt-get; nothing when all are present)
#
# Knobs: CC, BUILD (build dir), ARCH_FLAGS (default -march=native when the compiler takes it),
# NP (ranks for `make run`, one thread each; docs/scaling.md "Ranks and threads" for more threads),
# FUZZ_CC (clang), FUZZ_SECONDS (per harness), JOBS (compilations and fuzzers at a time; nproc).

CC         ?= gcc
BUILD      ?= build
NP         ?= 2
# parallel compilation in the targets below (their prerequisites; tests still run one at a time)
JOBS       ?= $(shell nproc 2>/dev/null || echo 1)
PKGS       := hdf5-openmpi openblas cmocka libcjson libutf8proc libpcre2-8 inih libcrypto zlib
DEB_BUILD  := pkg-config openmpi-bin libopenmpi-dev libhdf5-openmpi-dev hdf5-tools \
              libopenblas-dev libcmocka-dev libcjson-dev libutf8proc-dev libpcre2-dev libinih-dev libssl-dev zlib1g-dev liblinear-dev libdnnl-dev librsvg2-bin
DEB_PY     := python3-torch python3-numpy python3-h5py python3-regex
DEB_DATA   := python3 wordnet-base manpages manpages-dev
DEB_SLURM  := slurm-wlm munge
DEB_FUZZ   := clang libomp-dev
PYTHON_REF := /usr/bin/python3

ARCH_FLAGS ?= $(shell echo 'int main(void){return 0;}' | $(CC) -march=native -x c -o /dev/null - >/dev/null 2>&1 && echo -march=native)

PKG_CFLAGS  = $(shell pkg-config --cflags $(PKGS))
# liblinear (taskmetrics.c's logistic regression) and oneDNN (bf16.c's BF16 matmul) ship no pkg-config file
PKG_LIBS    = $(shell pkg-config --libs $(PKGS)) -llinear -ldnnl -lm
WARN        = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wno-unused-parameter
# nothing reads errno after a math call; without errno, sqrt and friends vectorize (same results)
WARN       += -fno-math-errno
# OpenMP threads for the kernels' loops (libgomp comes with gcc), compiling and linking; §4.7 of docs/DESIGN.md
OMP_FLAGS   = -fopenmp
CFLAGS_REL  = -O3 -g $(ARCH_FLAGS) $(OMP_FLAGS) $(WARN) -Iinclude $(PKG_CFLAGS)
CFLAGS_SAN  = -O1 -g $(ARCH_FLAGS) -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer \
              $(OMP_FLAGS) $(WARN) -Iinclude $(PKG_CFLAGS)

LIB_SRC   := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
TEST_SRC  := $(sort $(wildcard tests/test_*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/*.c))
FUZZ_SRC  := $(sort $(wildcard tests/fuzz/fuzz_*.c))

REL_OBJ := $(LIB_SRC:%.c=$(BUILD)/rel/%.o)
SAN_OBJ := $(LIB_SRC:%.c=$(BUILD)/san/%.o)

# Fuzzing (tests/fuzz): libFuzzer needs clang; the library is compiled a third time with clang,
# coverage-instrumented for libFuzzer and under ASan + UBSan, in $(BUILD)/fuzz.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 600
CFLAGS_FUZZ   = -O1 -g $(ARCH_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
                -fno-omit-frame-pointer $(OMP_FLAGS) $(WARN) -Iinclude $(PKG_CFLAGS)
FUZZ_OBJ := $(LIB_SRC:%.c=$(BUILD)/fuzz/%.o)
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# the same harnesses with tests/fuzz/replay.c's main against the sanitized library: make test
# replays the committed corpora and crash inputs through them (no clang needed)
REPLAY_BIN := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/san/fuzz/%)

.PHONY: all test test-run test-long test-long-run check run run-local data test-slurm bench bench-run fuzz fuzz-smoke fuzz-build fixtures \
        deps deps-py deps-data deps-slurm deps-fuzz clean
.SUFFIXES:

all: $(BUILD)/gaprune

$(BUILD)/rel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_REL) -MMD -MP -c $< -o $@

$(BUILD)/san/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) -MMD -MP -c $< -o $@

$(BUILD)/libgaprune.a: $(REL_OBJ)
	ar rcs $@ $^

$(BUILD)/san/libgaprune.a: $(SAN_OBJ)
	ar rcs $@ $^

$(BUILD)/gaprune: $(BUILD)/rel/src/main.o $(BUILD)/libgaprune.a
	$(CC) $(CFLAGS_REL) $^ $(PKG_LIBS) -o $@

$(BUILD)/san/gaprune: $(BUILD)/san/src/main.o $(BUILD)/san/libgaprune.a
	$(CC) $(CFLAGS_SAN) $^ $(PKG_LIBS) -o $@

# Tests: built and run under AddressSanitizer + UndefinedBehaviorSanitizer.
$(BUILD)/san/tests/%: tests/%.c $(BUILD)/san/libgaprune.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) -MMD -MP $< $(BUILD)/san/libgaprune.a $(PKG_LIBS) -o $@

$(BUILD)/san/fuzz/replay.o: tests/fuzz/replay.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_SAN) -MMD -MP -c $< -o $@

$(BUILD)/san/fuzz/%: tests/fuzz/%.c $(BUILD)/san/fuzz/replay.o $(BUILD)/san/libgaprune.a
	$(CC) $(CFLAGS_SAN) -DGP_FUZZ_REPLAY -MMD -MP $< $(BUILD)/san/fuzz/replay.o $(BUILD)/san/libgaprune.a $(PKG_LIBS) -o $@

$(BUILD)/fuzz/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(CFLAGS_FUZZ) -MMD -MP -c $< -o $@

$(BUILD)/fuzz/libgaprune.a: $(FUZZ_OBJ)
	ar rcs $@ $^

$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/fuzz/libgaprune.a
	$(FUZZ_CC) $(CFLAGS_FUZZ) -fsanitize=fuzzer -MMD -MP $< $(BUILD)/fuzz/libgaprune.a $(PKG_LIBS) -o $@

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libgaprune.a
	@mkdir -p $(@D)
	$(CC) $(CFLAGS_REL) $< $(BUILD)/libgaprune.a $(PKG_LIBS) -o $@

TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/san/tests/%)
# the programs with long cases (tu_long_test, tests/test_util.h), which `make test` leaves out
LONG_TEST_BIN := $(patsubst tests/%.c,$(BUILD)/san/tests/%,$(shell grep -lw tu_long_test $(TEST_SRC)))

# `make test` and `make run` install what is missing first, then re-read this file (the
# pkg-config flags above are only right once the packages are there).
test: deps
	@$(MAKE) --no-print-directory -j$(JOBS) test-run

check: test

test-run: $(BUILD)/gaprune $(BUILD)/san/gaprune $(TEST_BIN) $(REPLAY_BIN)
	@tests/check_layers.sh && tests/check_layers.sh --selftest && tests/check_docs.sh $(BUILD)/gaprune && tests/check_docs.sh --selftest $(BUILD)/gaprune
	@GAPRUNE_BIN=$(BUILD)/san/gaprune tests/run_tests.sh $(TEST_BIN) $(REPLAY_BIN)

test-long: deps
	@$(MAKE) --no-print-directory -j$(JOBS) test-long-run

test-long-run: $(BUILD)/gaprune $(BUILD)/san/gaprune $(LONG_TEST_BIN)
	@GAPRUNE_TEST_LONG=1 GAPRUNE_BIN=$(BUILD)/san/gaprune tests/run_tests.sh $(LONG_TEST_BIN)

# The embedded default: corpora from Debian packages, the committed demo model, jobs/demo.ini.
run: deps deps-data
	@$(MAKE) --no-print-directory -j$(JOBS) run-local

run-local: $(BUILD)/gaprune $(BUILD)/data/SOURCES.txt
	OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
	  mpirun -np $(NP) -x OMP_NUM_THREADS $(BUILD)/gaprune run jobs/demo.ini
	@cat $(BUILD)/demo/report.md

# The demo corpora (not committed): WordNet and the Linux manual pages, in seconds.
data: deps-data
	@$(MAKE) --no-print-directory $(BUILD)/data/SOURCES.txt

$(BUILD)/data/SOURCES.txt: data/build_corpora.py
	/usr/bin/python3 data/build_corpora.py $(BUILD)/data

# Slurm: a private munge + slurmctld + slurmd, a job, a requeued job, then the daemons stop.
test-slurm: deps deps-slurm
	@$(MAKE) --no-print-directory $(BUILD)/gaprune
	@tests/slurm/test_slurm.sh $(BUILD)/gaprune

bench: deps deps-py
	@$(MAKE) --no-print-directory -j$(JOBS) bench-run

bench-run: $(BUILD)/bench/bench_bert $(BUILD)/bench/bench_kmeans $(BUILD)/bench/bench_obs
	@tests/bench/run_bench.sh $(BUILD)/bench/bench_bert
	@OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 $(BUILD)/bench/bench_obs 5

# Each harness for FUZZ_SECONDS, one after the other, on a copy of its committed corpus
# (tests/fuzz/run_fuzz.sh: executions and coverage per harness; a crash input is kept in
# $(BUILD)/fuzz/artifacts and fails the target).
fuzz: deps deps-fuzz
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	@FUZZ_JOBS=$(JOBS) tests/fuzz/run_fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

fuzz-smoke: deps deps-fuzz
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build
	@FUZZ_JOBS=$(JOBS) tests/fuzz/run_fuzz.sh 20 $(FUZZ_BIN)

fuzz-build: $(FUZZ_BIN)

fixtures: deps-py
	$(PYTHON_REF) tests/reference/make_bert_fixtures.py tests/fixtures
	$(PYTHON_REF) tests/reference/make_stats_fixtures.py tests/fixtures
	$(PYTHON_REF) tests/reference/make_prune_fixtures.py tests/fixtures
	$(PYTHON_REF) tests/reference/obs_ref.py tests/fixtures
	$(PYTHON_REF) tests/reference/make_bpe_fixture.py tests/fixtures
	$(PYTHON_REF) tests/reference/make_qwen3_fixtures.py tests/fixtures
	$(PYTHON_REF) tests/reference/compare_ref.py tests/fixtures/compare.expected.json
	$(PYTHON_REF) tests/reference/taskmetrics_ref.py tests/fixtures/taskmetrics.expected.json

# apt-get only what dpkg does not already have; sudo when not root.
define install_debs
	@missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  sudo=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  echo "make: installing" $$missing; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

deps:
	$(call install_debs,$(DEB_BUILD))

deps-py:
	$(call install_debs,$(DEB_PY))

deps-data:
	$(call install_debs,$(DEB_DATA))

deps-slurm:
	$(call install_debs,$(DEB_SLURM))

deps-fuzz:
	$(call install_debs,$(DEB_FUZZ))

clean:
	rm -rf $(BUILD)

-include $(REL_OBJ:.o=.d) $(SAN_OBJ:.o=.d) $(BUILD)/rel/src/main.d $(BUILD)/san/src/main.d $(TEST_BIN:=.d)
-include $(FUZZ_OBJ:.o=.d) $(FUZZ_BIN:=.d) $(REPLAY_BIN:=.d) $(BUILD)/san/fuzz/replay.d
