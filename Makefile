# cutover — `make` builds, `make test` runs every test (normal build and
# ASan+UBSan), `make demo` runs the demo, `make bench` prints the benchmarks.
# Missing Debian packages are installed by scripts/deps.sh (as root).

BUILD      ?= build
ASAN_BUILD ?= build-asan
PREFIX     ?= /usr/local
JOBS       ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_ARGS ?=

.PHONY: all build asan test test-release test-asan demo bench install clean deps docs

all: build

deps:
	@scripts/deps.sh --check >/dev/null 2>&1 || scripts/deps.sh

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_ARGS)

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD) -j $(JOBS)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DCO_SANITIZE=ON $(CMAKE_ARGS)

asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD) -j $(JOBS)

test-release: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

test-asan: asan
	cd $(ASAN_BUILD) && ctest --output-on-failure -j $(JOBS)

# The release run first, then the sanitizer run: its ctest summary ends the output.
test: test-release test-asan

demo: build
	scripts/demo.sh $(BUILD)/cutover

bench: build
	bench/run.sh $(BUILD)/cutover

docs: build
	$(BUILD)/cutover config > docs/config.md

install: build
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
