# euar-bench build. `make` builds bin/euar; `make help` lists the targets.
CC      ?= cc
# CFLAGS and LDFLAGS are the user's (optimisation, sanitizers); the flags the project needs
# live in EUAR_CFLAGS and EUAR_LDLIBS so that `make CFLAGS=...` keeps them.
CFLAGS  ?= -O2 -g
EUAR_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -fno-math-errno -Wall -Wextra -Wshadow \
               -Wno-unused-parameter -MMD -MP -I. -I/usr/include/hdf5/serial
EUAR_LDLIBS := -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lcjson -lopenblas -lz -lm
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
JOBS    ?= $(shell nproc)

# Debian packages the build and the embedded default data need.
DEB_PACKAGES := build-essential libhdf5-dev libcjson-dev libopenblas-dev librandom123-dev \
                gnuplot-nox zlib1g-dev libcmocka-dev dataset-fashion-mnist python3 pkg-config
# The reliability tests: valgrind (make test-valgrind), clang with libFuzzer (make fuzz) and
# h5py, which writes the malformed HDF5 files of tests/bad/.
DEB_PACKAGES += valgrind clang libclang-rt-14-dev python3-h5py python3-numpy
FMNIST_DIR ?= /usr/share/datasets/fashion-mnist

LIB_SRC  := $(wildcard core/*.c core/models/*.c noise/*.c datasets/*.c suites/*.c report/*.c)
CLI_SRC  := $(wildcard cli/*.c)
TEST_SRC := $(wildcard tests/test_*.c)
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      := $(BUILD)/libeuar.a

# Optional parts, one line each.
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
GNUPLOT := $(shell command -v gnuplot 2>/dev/null)
ifneq ($(MAKECMDGOALS),deps)
$(info euar-bench: nvcc $(if $(NVCC),found at $(NVCC) (CUDA backend not built yet),not found))
$(info euar-bench: gnuplot $(if $(GNUPLOT),found at $(GNUPLOT),not found: plots are skipped))
endif

.PHONY: all deps test test-unit test-e2e suite-missing suite-missing-quick suite-noise \
        suite-noise-quick suite-experts suite-experts-quick suite-ablation suite-ablation-quick \
        suite-convergence suite-convergence-quick suite-main suite-main-quick report bench clean \
        help data report test-asan test-valgrind fuzz fuzz-build

all: bin/euar

bin/euar: $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(EUAR_LDLIBS) $(LDLIBS)

# The same binary inside a build folder, for builds with other flags (make test-asan).
$(BUILD)/bin/euar: $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(EUAR_LDLIBS) $(LDLIBS)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

# The element-wise loops of the CPU backend are written to vectorise: -O2 alone uses GCC 12's
# very cheap cost model, which leaves them scalar.
# (clang vectorises at -O2 already and has no -fvect-cost-model.)
ifneq ($(shell $(CC) --version 2>/dev/null | grep -c clang),0)
$(BUILD)/core/ops_cpu.o: EUAR_CFLAGS += -ftree-vectorize
else
$(BUILD)/core/ops_cpu.o: EUAR_CFLAGS += -ftree-vectorize -fvect-cost-model=dynamic
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(EUAR_CFLAGS) -c $< -o $@

$(BUILD)/tests/%: tests/%.c $(LIB) $(wildcard tests/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(EUAR_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(EUAR_LDLIBS) $(LDLIBS) -lcmocka

# Installs the Debian packages that are missing (as root), or prints the command.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all packages present"; \
	elif [ "$$(id -u)" = 0 ]; then echo "deps: installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing$$missing; run as root:"; \
	    echo "  apt-get update && apt-get install -y$$missing"; exit 1; fi

# Embedded default data, generated once from fixed seeds.
data/synth-mosi.h5: | bin/euar
	@mkdir -p data
	bin/euar data synth mosi --out $@ --seed 1
data/fmnist-2view.h5: | bin/euar
	@mkdir -p data
	bin/euar data fmnist-2view --idx $(FMNIST_DIR) --out $@ --seed 1
data/synth-nyud.h5: | bin/euar
	@mkdir -p data
	bin/euar data synth nyud --out $@ --seed 1
data/synth-mvsa.h5: | bin/euar
	@mkdir -p data
	bin/euar data synth mvsa --out $@ --seed 1
data: data/synth-mosi.h5 data/fmnist-2view.h5 data/synth-nyud.h5 data/synth-mvsa.h5

suite-missing: bin/euar data
	bin/euar suite suites/missing.json --jobs $(JOBS) --results results/missing
	bin/euar report results/missing

suite-missing-quick: bin/euar data
	bin/euar suite suites/missing.json --quick --jobs $(JOBS) --results results/missing-quick
	bin/euar report results/missing-quick

suite-noise: bin/euar data
	bin/euar suite suites/noise.json --jobs $(JOBS) --results results/noise
	bin/euar report results/noise

suite-noise-quick: bin/euar data
	bin/euar suite suites/noise.json --quick --jobs $(JOBS) --results results/noise-quick
	bin/euar report results/noise-quick

# Renders every suite folder under results/ and writes results/index.md.
# 22856 samples, about 4 GB; not part of `data`: only the full paper suites need it.
data/synth-mosei.h5: | bin/euar
	@mkdir -p data
	bin/euar data synth mosei --out $@ --seed 1

suite-experts: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/experts.json --jobs $(JOBS) --results results/experts
	bin/euar report results/experts

suite-experts-quick: bin/euar data
	bin/euar suite suites/experts.json --quick --jobs $(JOBS) --results results/experts-quick
	bin/euar report results/experts-quick

suite-ablation: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/ablation.json --jobs $(JOBS) --results results/ablation
	bin/euar report results/ablation

suite-ablation-quick: bin/euar data
	bin/euar suite suites/ablation.json --quick --jobs $(JOBS) --results results/ablation-quick
	bin/euar report results/ablation-quick

suite-convergence: bin/euar data/synth-mosi.h5
	bin/euar suite suites/convergence.json --jobs $(JOBS) --results results/convergence
	bin/euar report results/convergence

suite-convergence-quick: bin/euar data/synth-mosi.h5
	bin/euar suite suites/convergence.json --quick --jobs $(JOBS) \
	    --results results/convergence-quick
	bin/euar report results/convergence-quick

suite-main: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/main.json --jobs $(JOBS) --results results/main
	bin/euar report results/main

suite-main-quick: bin/euar data
	bin/euar suite suites/main.json --quick --jobs $(JOBS) --results results/main-quick
	bin/euar report results/main-quick

# Renders every suite folder under results/ and writes results/index.md.
report: bin/euar
	bin/euar report results

test: test-unit test-e2e

test-unit: $(TEST_BIN) bin/euar
	@failed=0; for t in $(TEST_BIN); do echo "== $$t"; $$t || failed=$$((failed + 1)); done; \
	echo "unit test programs: $$failed failed"; [ $$failed -eq 0 ]

test-e2e: bin/euar data
	tests/e2e_quick.sh
	tests/e2e_noise.sh
	tests/e2e_paper.sh
	tests/e2e_diverge.sh
	tests/e2e_resume.sh
	tests/e2e_bad.sh
	tests/e2e_resources.sh

# Everything built with AddressSanitizer and UndefinedBehaviorSanitizer in build-asan/, then
# the unit tests and the quick end-to-end scripts run against it. Any report stops the
# program (halt_on_error) and fails the target; leaks count as reports.
ASAN_BUILD  := build-asan
ASAN_CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
               -fno-sanitize-recover=all -DEUAR_NO_CLONES
# malloc returns NULL beyond the sanitizer's size limit, as in a plain build, and the leaks
# of libhdf5 on damaged files are suppressed (tests/fuzz/lsan.supp); ours are reported.
ASAN_ENV    := ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0:allocator_may_return_null=1 \
               LSAN_OPTIONS=suppressions=$(CURDIR)/tests/fuzz/lsan.supp \
               UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
ASAN_TESTS  := $(TEST_BIN:$(BUILD)/%=$(ASAN_BUILD)/%)
# The two slowest scripts (paper suites, kills and resume) stay out of the default list to keep
# CI short; ASAN_E2E="..." runs any list, and every script passed under ASan on 2 cores.
ASAN_E2E    ?= tests/e2e_quick.sh tests/e2e_noise.sh tests/e2e_diverge.sh tests/e2e_bad.sh \
               tests/e2e_resources.sh

test-asan: data
	$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) CFLAGS="$(ASAN_CFLAGS)" \
	    LDFLAGS="-fsanitize=address,undefined" $(ASAN_BUILD)/bin/euar $(ASAN_TESTS)
	@failed=0; for t in $(ASAN_TESTS); do echo "== $$t"; \
	    env $(ASAN_ENV) $$t || failed=$$((failed + 1)); done; \
	echo "asan unit test programs: $$failed failed"; [ $$failed -eq 0 ]
	@failed=0; for s in $(ASAN_E2E); do echo "== $$s"; \
	    env $(ASAN_ENV) EUAR=$(ASAN_BUILD)/bin/euar $$s || failed=$$((failed + 1)); done; \
	echo "asan e2e scripts: $$failed failed"; [ $$failed -eq 0 ]

# libFuzzer targets of the suite file parser, the noise spec parser and the HDF5 dataset
# reader (tests/fuzz/), linked against the library built by clang with ASan and UBSan in
# build-fuzz/. `make fuzz FUZZ_SECONDS=N` runs each for N seconds (tests/fuzz/run.sh).
FUZZ_BUILD   := build-fuzz
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS  := -O1 -g -fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined \
                -fno-sanitize-recover=all
FUZZ_BIN     := $(FUZZ_BUILD)/fuzz_suite $(FUZZ_BUILD)/fuzz_noise $(FUZZ_BUILD)/fuzz_h5

fuzz-build:
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" \
	    $(FUZZ_BUILD)/libeuar.a
	$(MAKE) --no-print-directory $(FUZZ_BIN)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libeuar.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(EUAR_CFLAGS) -fsanitize=fuzzer -o $@ $< \
	    $(FUZZ_BUILD)/libeuar.a $(EUAR_LDLIBS)

fuzz: fuzz-build
	tests/fuzz/run.sh $(FUZZ_SECONDS)

# The quick convergence suite and its report under valgrind memcheck; several minutes.
test-valgrind: bin/euar data/synth-mosi.h5
	tests/valgrind.sh

bench: bin/euar data/synth-mosi.h5
	bench/run.sh

clean:
	rm -rf $(BUILD) bin $(ASAN_BUILD) $(FUZZ_BUILD)

help:
	@echo "make                      build bin/euar"
	@echo "make deps                 install missing Debian packages (as root)"
	@echo "make data                 generate the embedded datasets under data/"
	@echo "make test                 test-unit, then test-e2e"
	@echo "make test-unit            unit tests and gradient checks"
	@echo "make test-e2e             the quick missing suite end to end, with bad input"
	@echo "make test-asan            unit tests and quick e2e scripts under ASan and UBSan"
	@echo "make test-valgrind        the quick convergence suite under valgrind memcheck"
	@echo "make fuzz                 libFuzzer on the suite, noise and HDF5 parsers (FUZZ_SECONDS=60)"
	@echo "make suite-missing        every model on every missing-modality subset (Table 2)"
	@echo "make suite-missing-quick  the same in miniature (1 seed, 2 epochs)"
	@echo "make suite-noise          every model under test-time noise (Table 3)"
	@echo "make suite-noise-quick    the same in miniature (1 seed, 2 epochs)"
	@echo "make suite-experts        EUAR with 2 to 32 experts (Fig. 4)"
	@echo "make suite-ablation       EUAR without KL, U-loss or both (Table 4)"
	@echo "make suite-convergence    validation curves per epoch (Fig. 5)"
	@echo "make suite-main           every dataset and model on clean data (Table 1, Fig. 6)"
	@echo "                          (each suite-X has a suite-X-quick miniature)"
	@echo "make report               render every suite under results/ with an index"
	@echo "make bench                EUAR epochs against a PyTorch reference"
	@echo "make clean                remove build/ and bin/"

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
