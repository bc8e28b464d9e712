# gaze: `make test` and `make bench` set up everything themselves on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build test bench format clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# ctest runs the GoogleTest units and the pytest parity/end-to-end suites; the summary of each
# runner is printed at the end.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 3000; rc=$$?; \
	  ../scripts/test-summary Testing/Temporary/LastTest.log; exit $$rc

bench: build
	@scripts/bench $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	@rm -rf $(BUILD)
