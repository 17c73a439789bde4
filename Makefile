# SPDX-License-Identifier: MIT
# The front door. CMake is the build; these targets wrap it.
#   make            build build/libbytepool.a and build/libbytepool.so
#   make test       install missing Debian packages (as root), build, run the
#                   unit suite in a normal, an ASan+UBSan and a TSan build
#   make demo       build and run examples/fanout (needs no root, no packages)
#   make deps       install the Debian packages the tests need (as root)
#   make install PREFIX=/usr/local
#   make clean

, := ,
BUILD    ?= build
PREFIX   ?= /usr/local
JOBS     ?= $(shell nproc)
# What the tests need (make demo needs only a C compiler, make and cmake).
DEB_PKGS := cmake ninja-build gcc g++ clang libclang-rt-14-dev make valgrind libcmocka-dev pkg-config \
            jq binutils curl prometheus libmicrohttpd-dev chromium python3-pil liburing-dev man-db build-essential debhelper \
            gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user golang-go
GEN      := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")
CTEST    := ctest --output-on-failure --timeout 300 -j $(JOBS)
# Configures build dir $(1) with options $(2) unless it holds build files:
# a configure that failed or was interrupted leaves a CMakeCache.txt but no
# build.ninja, and the next make must configure again, not fail on it.
configure_dir = test -f $(1)/build.ninja || test -f $(1)/Makefile || cmake -S . -B $(1) $(GEN) $(2)

.PHONY: stress-shm bench-shm bench-net bench-io deb test-arm64 all deps configure test test-normal test-asan test-tsan test-fuzz fuzz fuzz-build valgrind stress bench bench-full bench-deps demo install clean

all: configure
	cmake --build $(BUILD) -j $(JOBS)

configure:
	@$(call configure_dir,$(BUILD),-DCMAKE_BUILD_TYPE=RelWithDebInfo)

# Whether Debian package $(1) is installed for architecture $(2) (or is
# Architecture: all). With arm64 added, `dpkg -s` calls a package installed
# for both ambiguous, and a plain dpkg-query takes libcmocka-dev:arm64 for
# the native libcmocka-dev.
NATIVE_ARCH := $(shell dpkg --print-architecture 2>/dev/null)
installed = dpkg-query -W -f='$${Architecture} $${db:Status-Abbrev}\n' $(1) 2>/dev/null | \
  grep -qE '^($(2)|all) ii'
# The arm64 cross run needs cmocka for arm64: Debian's multiarch, which
# `make deps` turns on (dpkg --add-architecture arm64) when it runs as root.
ARM64_PKGS := libcmocka-dev:arm64
deps:
	@if [ "$(ARM64)" != no ] && [ "$$(id -u)" = 0 ] && ! $(call installed,$(ARM64_PKGS),arm64); then \
	  echo "installing: $(ARM64_PKGS) (adding the arm64 architecture to dpkg)"; \
	  { dpkg --add-architecture arm64 && apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(ARM64_PKGS) >/dev/null; } || \
	  echo "could not install $(ARM64_PKGS): make test-arm64 will skip"; fi
	@missing=""; for p in $(DEB_PKGS); do \
	  $(call installed,$$p,$(NATIVE_ARCH)) || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing Debian packages:$$missing (run 'make deps' as root)"; exit 1; fi; \
	fi

# Every stage runs even when one fails; the last line sums them up.
TEST_STAGES := test-normal test-asan test-tsan test-fuzz test-arm64
test: deps
	@passed=0; failed=0; for t in $(TEST_STAGES); do \
	  if $(MAKE) --no-print-directory $$t; then passed=$$((passed + 1)); \
	  else failed=$$((failed + 1)); echo "== $$t FAILED"; fi; done; \
	echo "suites: $$passed passed, $$failed failed"; [ $$failed -eq 0 ]

# Configured again: a build directory made before `make deps` (by make demo)
# finds cmocka and libmicrohttpd now.
test-normal: configure
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && $(CTEST)

test-asan:
	@$(call configure_dir,$(BUILD)-asan,-DCMAKE_BUILD_TYPE=Debug -DBP_SANITIZE=address$(,)undefined)
	cmake --build $(BUILD)-asan -j $(JOBS)
	cd $(BUILD)-asan && $(CTEST)

test-tsan:
	@$(call configure_dir,$(BUILD)-tsan,-DCMAKE_BUILD_TYPE=Debug -DBP_SANITIZE=thread)
	cmake --build $(BUILD)-tsan -j $(JOBS)
	cd $(BUILD)-tsan && TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(CTEST)

# The unit suite for aarch64: Debian's cross compiler, run under qemu-user.
# Skipped, with a message, on a machine without the cross packages. A probe
# first asks whether the emulator runs threads and fork() (bookworm's qemu
# 7.2 hangs in both on some kernels); if not, the tests needing them are
# left out.
QEMU_ARM64 := qemu-aarch64 -L /usr/aarch64-linux-gnu
test-arm64:
	@if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null || \
	    ! [ -f /usr/lib/aarch64-linux-gnu/pkgconfig/cmocka.pc ]; then \
	  echo "test-arm64: skipped (needs gcc-aarch64-linux-gnu, qemu-user, libcmocka-dev:arm64: make deps)"; \
	else \
	  mkdir -p $(BUILD)-arm64 && \
	  aarch64-linux-gnu-gcc -O1 -pthread -o $(BUILD)-arm64/thread_probe tests/cross/thread_probe.c && \
	  if timeout -s KILL 20 $(QEMU_ARM64) $(BUILD)-arm64/thread_probe; then threads=ON; else threads=OFF; \
	    echo "test-arm64: this qemu-aarch64 cannot start a thread or fork: those tests are left out"; fi; \
	  $(call configure_dir,$(BUILD)-arm64,-DCMAKE_BUILD_TYPE=RelWithDebInfo \
	    -DCMAKE_TOOLCHAIN_FILE=$(CURDIR)/cmake/aarch64-linux-gnu.cmake -DBP_BUILD_BENCH=OFF) && \
	  cmake -S . -B $(BUILD)-arm64 -DBP_CROSS_THREADS=$$threads >/dev/null && \
	  cmake --build $(BUILD)-arm64 -j $(JOBS) && \
	  cd $(BUILD)-arm64 && $(CTEST); fi

# The unit suite under Valgrind memcheck, with mempool requests compiled in.
valgrind: deps
	@$(call configure_dir,$(BUILD)-valgrind,-DCMAKE_BUILD_TYPE=Debug -DBP_VALGRIND=ON \
	  "-DBP_TEST_RUNNER=valgrind;-q;--error-exitcode=99;--leak-check=full;--errors-for-leak-kinds=definite")
	cmake --build $(BUILD)-valgrind -j $(JOBS)
	cd $(BUILD)-valgrind && $(CTEST) -E 'http|install|track'

# libFuzzer against the reference models: fuzz_ops (the core) for
# FUZZ_SECONDS, fuzz_uring (the buffer ring's state machine, when liburing
# is there) for FUZZ_URING_SECONDS, fuzz_shm (the shared pool's counting,
# peers dying at any step) for FUZZ_SHM_SECONDS. make test runs an 80-second
# smoke of the three; make fuzz a long run. New inputs go to build-fuzz.
FUZZ_SECONDS ?= 600
FUZZ_URING_SECONDS ?= 300
FUZZ_SHM_SECONDS ?= 300
fuzz-build:
	@export CC=clang; $(call configure_dir,$(BUILD)-fuzz,-DCMAKE_BUILD_TYPE=RelWithDebInfo -DBP_FUZZ=ON \
	  -DBP_BUILD_TESTS=OFF -DBP_BUILD_EXAMPLES=OFF "-DBP_SANITIZE=fuzzer-no-link$(,)address$(,)undefined")
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_ops
	@if cmake --build $(BUILD)-fuzz --target help 2>/dev/null | grep -q fuzz_uring; then \
	  cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_uring; \
	else echo "liburing not found: fuzz_uring is not built"; fi
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_shm

# One fuzzer run: $(1) target, $(2) seconds, $(3) seed corpus.
fuzz_run = mkdir -p $(BUILD)-fuzz/corpus-$(1) && rc=0; \
	$(BUILD)-fuzz/fuzz/$(1) -max_total_time=$(2) -print_final_stats=1 \
	  -artifact_prefix=$(BUILD)-fuzz/$(1)- $(BUILD)-fuzz/corpus-$(1) $(3) \
	  > $(BUILD)-fuzz/$(1).log 2>&1 || rc=$$?; \
	echo "== $(1)"; tail -25 $(BUILD)-fuzz/$(1).log; test $$rc = 0

fuzz: deps fuzz-build
	@$(call fuzz_run,fuzz_ops,$(FUZZ_SECONDS),fuzz/corpus)
	@if [ -x $(BUILD)-fuzz/fuzz/fuzz_uring ]; then \
	  $(call fuzz_run,fuzz_uring,$(FUZZ_URING_SECONDS),fuzz/corpus-uring); fi
	@$(call fuzz_run,fuzz_shm,$(FUZZ_SHM_SECONDS),fuzz/corpus-shm)

test-fuzz: fuzz-build
	$(MAKE) fuzz FUZZ_SECONDS=45 FUZZ_URING_SECONDS=15 FUZZ_SHM_SECONDS=20

# Benchmarks against the peers (installs them as make test installs its
# packages). bench: ~2 minutes; bench-full: more rounds, longer cells.
BENCH_PKGS := libmimalloc-dev libjemalloc-dev libgoogle-perftools-dev libavutil-dev libdpdk-dev gnuplot-nox valgrind
bench-deps:
	@$(MAKE) --no-print-directory deps DEB_PKGS="$(BENCH_PKGS)"

bench: deps bench-deps configure
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target bench fanout_mem
	$(BUILD)/bench/bench --rounds 5 --out bench/results > bench/results/latest.md; s=$$?; cat bench/results/latest.md; \
	  for m in malloc pool; do $(BUILD)/bench/fanout_mem $$m || s=1; done; exit $$s

bench-full: deps bench-deps configure
	cmake -S . -B $(BUILD) >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target bench
	$(BUILD)/bench/bench --rounds 11 --cell-ms 150 --out bench/results > bench/results/latest.md; s=$$?; cat bench/results/latest.md; exit $$s

# Debian packages (libbytepool0, libbytepool-http0, libbytepool-dev) built
# with dpkg-buildpackage from a copy of the tree, checked, left in build/deb.
deb:
	tests/check_deb.sh $(CURDIR) $(BUILD)/deb

# Fixed (registered) pool buffers against plain ones, 64 KiB io_uring
# writes to a file (O_DIRECT where the filesystem allows), same run.
bench-io: deps all
	cmake --build $(BUILD) -j $(JOBS) --target uring_fixed
	$(BUILD)/bench/uring_fixed --writes 20000 --rounds 5

# uring_echo with pool buffers against private rings (not in make test).
bench-net: deps all
	bench/net.sh $(BUILD) 3 | tee bench/results/net.md

# Long stress runs: the normal build, then under ThreadSanitizer.
stress: all test-tsan
	$(BUILD)/tests/stress --seconds 60 --threads 8
	TSAN_OPTIONS="halt_on_error=1 die_after_fork=0" $(BUILD)-tsan/tests/stress --seconds 60 --threads 4

# The shared pool (libbytepool_shm), not in make test: 10,000 random
# consumer kills with the demo, 20-100 ms apart (RSS and descriptors
# sampled; about 17 minutes), and the
# benchmark against a UNIX socket, written to bench/results/shm.md.
SHM_KILLS ?= 10000
stress-shm: all
	SAMPLE=1 KILL_MS_MAX=100 tests/check_shm_kill.sh $(BUILD)/examples/shm_producer $(BUILD)/examples/shm_consumer $(SHM_KILLS)

bench-shm: all
	cmake --build $(BUILD) -j $(JOBS) --target shm_bench
	$(BUILD)/bench/shm_bench --rounds 5 --out bench/results/shm.md
	cat bench/results/shm.md

# Nothing but a compiler, make and cmake; no root, no test packages. Builds
# what it runs (the library and the example), not the tests or benchmarks.
demo: configure
	cmake --build $(BUILD) -j $(JOBS) --target fanout
	$(BUILD)/examples/fanout

install: all
	cmake --install $(BUILD) --prefix $(PREFIX)

clean:
	rm -rf $(BUILD) $(BUILD)-asan $(BUILD)-tsan $(BUILD)-valgrind $(BUILD)-fuzz $(BUILD)-arm64
