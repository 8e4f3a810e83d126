# euar-bench build. `make` builds bin/euar; `make help` lists the targets.
CC      ?= cc
# CFLAGS and LDFLAGS are the user's (optimisation, sanitizers); the flags the project needs
# live in EUAR_CFLAGS and EUAR_LDLIBS so that `make CFLAGS=...` keeps them.
CFLAGS  ?= -O2 -g
EUAR_CFLAGS := -std=c11 -D_POSIX_C_SOURCE=200809L -fno-math-errno -Wall -Wextra -Wshadow \
               -Wno-unused-parameter -MMD -MP -I. -I/usr/include/hdf5/serial
EUAR_LDLIBS := -L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5 -lcjson -lopenblas -lz -lstb -lm
BUILD   ?= build
PYTHON  ?= /usr/bin/python3
JOBS    ?= $(shell nproc)
# Runner of the suite-* targets: local (worker processes, --jobs $(JOBS)) or slurm (a job
# array; SLURM_ARGS adds options such as --partition P --time HH:MM:SS, see docs/slurm.md).
RUNNER  ?= local
SLURM_ARGS ?=
ifeq ($(RUNNER),local)
SUITE_RUN_ARGS = --jobs $(JOBS)
else ifeq ($(RUNNER),slurm)
SUITE_RUN_ARGS = --runner slurm $(SLURM_ARGS)
else
$(error RUNNER=$(RUNNER) is not a runner; use RUNNER=local or RUNNER=slurm)
endif
# A dry run (--dry-run in SLURM_ARGS) writes no results, so the suite-* targets skip the report.
suite_report = $(if $(filter --dry-run,$(SUITE_RUN_ARGS)),@echo "dry run: no report of $(1)",\
               bin/euar report $(1))

# Debian packages the build, the embedded default data and the tests need.
DEB_PACKAGES := build-essential libhdf5-dev libcjson-dev libopenblas-dev librandom123-dev \
                gnuplot-nox zlib1g-dev libcmocka-dev dataset-fashion-mnist python3 pkg-config \
                python3-numpy python3-h5py \
                libstb-dev
# The reliability tests: valgrind (make test-valgrind) and clang with libFuzzer (make fuzz).
DEB_PACKAGES += valgrind clang libclang-rt-14-dev
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
# CUDA backend: built whenever nvcc is found, unless GPU=0 (core/ops_cuda_stub.c then stands in).
GPU ?= 1
ifeq ($(GPU),0)
NVCC_STATE := disabled by GPU=0 (CUDA backend not built)
else ifneq ($(NVCC),)
NVCC_STATE := found at $(NVCC): CUDA backend built for sm_80 to sm_90 plus PTX
CUDA_BUILD := 1
else
NVCC_STATE := not found (CUDA backend not built)
endif
ifneq ($(MAKECMDGOALS),deps)
$(info euar-bench: nvcc $(NVCC_STATE))
$(info euar-bench: gnuplot $(if $(GNUPLOT),found at $(GNUPLOT),not found: plots are skipped))
endif

ifeq ($(CUDA_BUILD),1)
CUDA_HOME ?= $(abspath $(dir $(NVCC))..)
CUDA_LIB  := $(CUDA_HOME)/lib64
CU_SRC    := $(wildcard core/*.cu)
CU_OBJ    := $(CU_SRC:%.cu=$(BUILD)/%.o)
LIB_SRC   := $(filter-out core/ops_cuda_stub.c,$(LIB_SRC))
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(CU_OBJ)
# Ampere (sm_80, sm_86), Ada (sm_89) and Hopper (sm_90, the H100 and H200) as machine code, and
# PTX of sm_90 for later GPUs. --fmad=false keeps a * b + c as two roundings, as GCC does in
# ISO C mode, so the kernels' per-element results stay close to the CPU's.
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_86,code=sm_86 \
             -gencode arch=compute_89,code=sm_89 -gencode arch=compute_90,code=[sm_90,compute_90]
NVCC_FLAGS ?= -O2 -g
EUAR_NVCC_FLAGS := -std=c++17 --fmad=false $(CUDA_ARCH) -I. -I/usr/include/hdf5/serial \
                   -Xcompiler -Wall,-Wextra,-Wno-unused-parameter
EUAR_LDLIBS += -L$(CUDA_LIB) -Wl,-rpath,$(CUDA_LIB) -lcublas -lcurand -lcudart -lstdc++
endif

.PHONY: FORCE all deps deps-slurm test test-unit test-e2e suite-missing suite-missing-quick suite-noise \
        suite-noise-quick suite-experts suite-experts-quick suite-ablation suite-ablation-quick \
        suite-convergence suite-convergence-quick suite-main suite-main-quick report bench clean \
        help data report gpu-bundle test-asan test-valgrind fuzz fuzz-build gpu-bundle-check

all: bin/euar

bin/euar: $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(EUAR_LDLIBS) $(LDLIBS)

# The same binary inside a build folder, for builds with other flags (make test-asan).
$(BUILD)/bin/euar: $(CLI_OBJ) $(LIB)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(EUAR_LDLIBS) $(LDLIBS)

# The archive is rebuilt from scratch, and whenever the CUDA choice changes, so that a build
# with GPU=0 after one with CUDA (or the reverse) never keeps the other backend's objects.
CUDA_STAMP := $(BUILD)/cuda-config
CUDA_STATE := cuda=$(CUDA_BUILD) $(CUDA_ARCH)
$(CUDA_STAMP): FORCE
	@mkdir -p $(@D)
	@echo '$(CUDA_STATE)' | cmp -s - $@ || echo '$(CUDA_STATE)' > $@

$(LIB): $(LIB_OBJ) $(CUDA_STAMP)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $(LIB_OBJ)

FORCE:

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

$(BUILD)/%.o: %.cu
	@mkdir -p $(@D)
	$(NVCC) $(NVCC_FLAGS) $(EUAR_NVCC_FLAGS) -MMD -MP -MF $(@:.o=.d) -c $< -o $@

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

# Slurm and munge for tests/e2e_slurm.sh, which starts a single-node cluster; without them the
# test skips its cluster part.
SLURM_PACKAGES := slurm-wlm munge
deps-slurm:
	@$(MAKE) --no-print-directory deps DEB_PACKAGES="$(SLURM_PACKAGES)"

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
	bin/euar suite suites/missing.json $(SUITE_RUN_ARGS) --results results/missing
	$(call suite_report,results/missing)

suite-missing-quick: bin/euar data
	bin/euar suite suites/missing.json --quick $(SUITE_RUN_ARGS) --results results/missing-quick
	$(call suite_report,results/missing-quick)

suite-noise: bin/euar data
	bin/euar suite suites/noise.json $(SUITE_RUN_ARGS) --results results/noise
	$(call suite_report,results/noise)

suite-noise-quick: bin/euar data
	bin/euar suite suites/noise.json --quick $(SUITE_RUN_ARGS) --results results/noise-quick
	$(call suite_report,results/noise-quick)

# Renders every suite folder under results/ and writes results/index.md.
# 22856 samples, about 4 GB; not part of `data`: only the full paper suites need it.
data/synth-mosei.h5: | bin/euar
	@mkdir -p data
	bin/euar data synth mosei --out $@ --seed 1

suite-experts: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/experts.json $(SUITE_RUN_ARGS) --results results/experts
	$(call suite_report,results/experts)

suite-experts-quick: bin/euar data
	bin/euar suite suites/experts.json --quick $(SUITE_RUN_ARGS) --results results/experts-quick
	$(call suite_report,results/experts-quick)

suite-ablation: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/ablation.json $(SUITE_RUN_ARGS) --results results/ablation
	$(call suite_report,results/ablation)

suite-ablation-quick: bin/euar data
	bin/euar suite suites/ablation.json --quick $(SUITE_RUN_ARGS) --results results/ablation-quick
	$(call suite_report,results/ablation-quick)

suite-convergence: bin/euar data/synth-mosi.h5
	bin/euar suite suites/convergence.json $(SUITE_RUN_ARGS) --results results/convergence
	$(call suite_report,results/convergence)

suite-convergence-quick: bin/euar data/synth-mosi.h5
	bin/euar suite suites/convergence.json --quick $(SUITE_RUN_ARGS) \
	    --results results/convergence-quick
	$(call suite_report,results/convergence-quick)

suite-main: bin/euar data data/synth-mosei.h5
	bin/euar suite suites/main.json $(SUITE_RUN_ARGS) --results results/main
	$(call suite_report,results/main)

suite-main-quick: bin/euar data
	bin/euar suite suites/main.json --quick $(SUITE_RUN_ARGS) --results results/main-quick
	$(call suite_report,results/main-quick)

# Renders every suite folder under results/ and writes results/index.md.
report: bin/euar
	bin/euar report results

test: test-unit test-e2e

test-unit: $(TEST_BIN) bin/euar
	@failed=0; for t in $(TEST_BIN); do echo "== $$t"; $$t || failed=$$((failed + 1)); done; \
	echo "unit test programs: $$failed failed"; [ $$failed -eq 0 ]

test-e2e: bin/euar data $(BUILD)/tests/test_gpu
	tests/e2e_quick.sh
	tests/e2e_noise.sh
	tests/e2e_paper.sh
	tests/e2e_import_pickle.sh
	tests/e2e_import_images.sh
	tests/e2e_import_csd.sh
	tests/e2e_slurm.sh
	tests/e2e_device.sh
	tests/e2e_suite_data.sh
	tests/e2e_diverge.sh
	tests/e2e_resume.sh
	tests/e2e_bad.sh
	tests/e2e_resources.sh
	BUILD=$(BUILD) tests/e2e_gpu_bundle.sh

# Everything but the CUDA backend built with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan/, then the unit tests and the quick end-to-end scripts run against it. Any report
# stops the program (halt_on_error) and fails the target; leaks count as reports.
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
	$(MAKE) --no-print-directory BUILD=$(ASAN_BUILD) GPU=0 CFLAGS="$(ASAN_CFLAGS)" \
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
	$(MAKE) --no-print-directory BUILD=$(FUZZ_BUILD) GPU=0 CC=$(FUZZ_CC) CFLAGS="$(FUZZ_CFLAGS)" \
	    $(FUZZ_BUILD)/libeuar.a
	$(MAKE) --no-print-directory GPU=0 $(FUZZ_BIN)

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

# Shared libraries and headers for a GPU machine without a package registry (docs/gpu.md).
gpu-bundle: bin/euar $(BUILD)/tests/test_gpu
	tests/gpu_bundle.sh $(BUILD)/gpu-bundle bin/euar $(BUILD)/tests/test_gpu

# Checks that the bundle alone (no system development headers) can rebuild bin/euar.
gpu-bundle-check: gpu-bundle
	tests/gpu_bundle_check.sh $(BUILD)/gpu-bundle

clean:
	rm -rf $(BUILD) bin $(ASAN_BUILD) $(FUZZ_BUILD)

help:
	@echo "make                      build bin/euar"
	@echo "make deps                 install missing Debian packages (as root)"
	@echo "make deps-slurm           install Slurm and munge for the cluster test (as root)"
	@echo "make data                 generate the embedded datasets under data/"
	@echo "make test                 test-unit, then test-e2e"
	@echo "make test-unit            unit tests and gradient checks"
	@echo "make test-e2e             end-to-end scripts: quick suites, importers, Slurm, resume, bad input"
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
	@echo "                          (RUNNER=slurm SLURM_ARGS='...': as a Slurm job array)"
	@echo "make report               render every suite under results/ with an index"
	@echo "make bench                EUAR epochs against a PyTorch reference"
	@echo "make gpu-bundle           libraries for tests/gpu_check.sh on a GPU machine"
	@echo "make gpu-bundle-check     check that the bundle alone can rebuild bin/euar"
	@echo "make clean                remove build/ and bin/"

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
