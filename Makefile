# The README contract: `make demo`, `make test`, `make bench`. Each first installs the
# missing Debian packages (.ci/packages.txt), then configures and builds under build/.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build demo test bench compare sweep decode clean test-sanitize fuzz readme package docs

all: build

deps:
	@.ci/deps .ci/packages.txt

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# The demo programs with --quick; the ones that draw write their pictures (PNG) into $(BUILD)/plots.
demo: build
	@$(BUILD)/examples/demo --plot

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# Rewrites the printed outputs in README.md from the programs (make test checks them).
readme: build
	@python3 examples/readme_outputs.py --build $(BUILD)

bench: build
	@$(BUILD)/bench/xgrad_bench

# xgrad beside PyTorch in the same run (../shared/bench/compare.py: the libtorch anchor, built once
# under build/torch-anchor, and xgrad_bench alternate); prints the ratio table, then each workload's
# peak resident memory on both sides (bench/peak_memory.py). COMPARE_FLAGS=--quick for a
# one-second-per-workload pass.
COMPARE_FLAGS ?=
compare: build
	@.ci/deps --with bench .ci/packages.txt
	@/usr/bin/python3 ../shared/bench/compare.py --xgrad $(BUILD)/bench/xgrad_bench $(COMPARE_FLAGS)
	@/usr/bin/python3 bench/peak_memory.py --xgrad $(BUILD)/bench/xgrad_bench --anchor $(BUILD)/torch-anchor/torch_anchor_cpp

# Issue 17's measurements beside libtorch (bench/scaling.py; its twin bench/torch_twin is built once under
# build/torch-twin): the LSTM/GRU train-step sweep over T, H and B (markdown table, memory linearity,
# PNG at SWEEP_PLOT), the T axis again interleaved in one process per side (the verdict on time per
# token flat in T), then batch-1 decoding latency. About 8 minutes a round (SWEEP_FLAGS="--rounds 3":
# 24), 8 more for the interleaved run; SWEEP_FLAGS=--quick for less, SWEEP_FLAGS="--only flatness" for
# the interleaved run alone. `make decode` runs the decoding part alone.
SWEEP_FLAGS ?=
SWEEP_PLOT ?= $(BUILD)/plots/scaling.png
sweep: build
	@.ci/deps --with bench .ci/packages.txt
	@/usr/bin/python3 bench/scaling.py --xgrad $(BUILD)/bench/xgrad_bench --plot $(SWEEP_PLOT) $(SWEEP_FLAGS)

decode: build
	@.ci/deps --with bench .ci/packages.txt
	@/usr/bin/python3 bench/scaling.py --xgrad $(BUILD)/bench/xgrad_bench --only decode $(SWEEP_FLAGS)

# The whole suite (tests and example runs) under AddressSanitizer, UndefinedBehaviorSanitizer and
# LeakSanitizer, in its own build dir; any report fails the run (no suppressions).
SANITIZE_BUILD ?= build-sanitize
SANITIZE_ENV = ASAN_OPTIONS=detect_leaks=1:check_initialization_order=1:strict_init_order=1 \
  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
test-sanitize: deps
	@cmake -S . -B $(SANITIZE_BUILD) -DCMAKE_BUILD_TYPE=Debug -DXGRAD_SANITIZE=ON > /dev/null
	@cmake --build $(SANITIZE_BUILD) -j$(JOBS)
	@cd $(SANITIZE_BUILD) && $(SANITIZE_ENV) ctest --output-on-failure -j$(JOBS)

# libFuzzer (clang, ASan + UBSan) on the three targets in tests/fuzz, FUZZ_SECONDS each: the
# safetensors parser, Module/Optimizer load_state_dict from bytes, random graphs through backward.
# Each starts from the seeds fuzz_seeds writes. Not in CI (CI replays the seeds with any compiler).
# A finding is saved as $(FUZZ_BUILD)/<target>-crash-*.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= safetensors state_dict graph
fuzz:
	@.ci/deps --with fuzz .ci/packages.txt
	@cmake -S . -B $(FUZZ_BUILD) -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=Debug -DXGRAD_FUZZ=ON > /dev/null
	@cmake --build $(FUZZ_BUILD) -j$(JOBS) --target fuzz_seeds $(addprefix fuzz_,$(FUZZ_TARGETS))
	@$(FUZZ_BUILD)/tests/fuzz/fuzz_seeds $(FUZZ_BUILD)/seeds
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$t; \
	  dict=tests/fuzz/$$t.dict; [ -f $$dict ] || dict=tests/fuzz/safetensors.dict; \
	  [ $$t = graph ] && dictflag= || dictflag=-dict=$$dict; \
	  $(FUZZ_BUILD)/tests/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) $$dictflag -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$t- $(FUZZ_BUILD)/corpus/$$t $(FUZZ_BUILD)/seeds/$$t || exit 1; \
	done

# A .deb (CPack) of what `cmake --install` installs, under /usr: the library, the headers
# (/usr/include/xgrad), the CMake package and xgrad.pc; Depends on the Debian -dev packages the
# headers need. Built from its own library-only dir (no tests, examples or bench).
# PACKAGE_FLAGS=-DBUILD_SHARED_LIBS=ON packages libxgrad.so instead of libxgrad.a.
PACKAGE_BUILD ?= build-package
PACKAGE_FLAGS ?=
package: deps
	@cmake -S . -B $(PACKAGE_BUILD) -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
	  -DXGRAD_BUILD_TESTS=OFF -DXGRAD_BUILD_EXAMPLES=OFF -DXGRAD_BUILD_BENCH=OFF $(PACKAGE_FLAGS) > /dev/null
	@cmake --build $(PACKAGE_BUILD) -j$(JOBS)
	@cd $(PACKAGE_BUILD) && cpack -G DEB

# The API reference: Doxygen (docs/Doxyfile) over the public headers, with README.md as the main
# page and a page per layer (docs/*.md). HTML in build-docs/html/index.html. Fails on any Doxygen
# warning (the log is build-docs/warnings.log) and when a public header is missing from its
# layer's page. Doxygen reads the sources through build-docs/src/xgrad, a link to this folder, so
# that the reference names headers as users include them (<xgrad/nn/recurrent.hpp>). docs/Doxyfile
# names build-docs too.
DOCS_BUILD = build-docs
XGRAD_VERSION = ${shell sed -n 's/^project(xgrad VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt}
docs:
	@.ci/deps --with docs .ci/packages.txt
	@rm -rf $(DOCS_BUILD)/html $(DOCS_BUILD)/warnings.log
	@mkdir -p $(DOCS_BUILD)/src && ln -sfn ../.. $(DOCS_BUILD)/src/xgrad
	@XGRAD_VERSION=$(XGRAD_VERSION) doxygen docs/Doxyfile || { cat $(DOCS_BUILD)/warnings.log; exit 1; }
	@if [ -s $(DOCS_BUILD)/warnings.log ]; then cat $(DOCS_BUILD)/warnings.log; exit 1; fi
	@missing=0; for h in core/*.hpp autograd/*.hpp nn/*.hpp optim/*.hpp data/*.hpp; do \
	  grep -q "src/xgrad/$$h" docs/Doxyfile && continue; \
	  grep -qF "\ref xgrad/$$h" docs/$${h%%/*}.md || { echo "docs: $$h is not on docs/$${h%%/*}.md"; missing=1; }; \
	done; exit $$missing
	@echo "docs: $(DOCS_BUILD)/html/index.html"

clean:
	rm -rf $(BUILD) $(SANITIZE_BUILD) $(FUZZ_BUILD) $(PACKAGE_BUILD) $(DOCS_BUILD)
