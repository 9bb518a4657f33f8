# The README contract: `make demo`, `make test`, `make bench`. Each first installs the
# missing Debian packages (.ci/packages.txt), then configures and builds under build/.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?= -DCMAKE_BUILD_TYPE=Release

.PHONY: all deps configure build demo test bench clean

all: build

deps:
	@.ci/deps .ci/packages.txt

configure: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) > /dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

demo: build
	@$(BUILD)/examples/demo

test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

bench: build
	@$(BUILD)/bench/xgrad_bench

clean:
	rm -rf $(BUILD)
