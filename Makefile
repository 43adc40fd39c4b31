# mbrld build. `make test` and `make run` install what they need first
# (tools/deps.sh), so a fresh Debian 12 machine needs nothing else.
#
#   make [all]     daemon, bench, clients, test binaries (into $(BUILD))
#   make test      every test suite (+ ASan/UBSan build of the suites)
#   make bench     every benchmark; build/mbrld-bench NAME runs one
#   make run       the pendulum learning loop through a real daemon
#   make check-layout   the include rules between core's rooms
#   make container-test the image built with podman and smoke-tested (also in make test)
#   make kube-test      deploy/k8s played with podman kube play (also in make test)
#   make clean
#
# Areas add their programs in their own fragment (server/server.mk,
# clients/clients.mk, bench/bench.mk); tests are found by name:
# tests/core/test_*.c link core, tests/server/test_*.c link server + core,
# tests/clients/test_*.c link the C client, tests/**/test_*.sh are scripts.

BUILD ?= build
CC ?= gcc
# The x86-64-v3 baseline (AVX2 + FMA): what the container and packages
# ship. The kernels (sgemm, activations, exp/log, the normal streams) are
# compiled for every level anyway and chosen at run time (core/base/cpu.h:
# AVX-512 when the CPU has it; MBRLD_ISA=avx2 forces the AVX2 kernels).
# ARCH=-march=native still works (the rest of the code then uses the
# host's full width too; the binary may not run on another CPU).
ARCH ?= -march=x86-64-v3
SAN ?=
OPT ?= -O2

PKGS_BUILD := build-essential pkg-config libmicrohttpd-dev libcjson-dev libopenblas-dev \
	check libcurl4-openssl-dev libmujoco-dev clang libclang-rt-dev
PKGS_RUN := curl jq gnuplot-nox openssl
PKGS_BENCH := python3-torch
PKGS_TEST := chromium

CPPFLAGS += -D_GNU_SOURCE -Icore -Iserver -Iclients/c -I/usr/include/x86_64-linux-gnu/openblas-pthread
CFLAGS := -std=c11 -Wall -Wextra -Werror $(OPT) -g $(ARCH) -pthread $(CFLAGS_EXTRA)
ifeq ($(SAN),asan)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
CFLAGS += -fsanitize=thread -fno-omit-frame-pointer
LDFLAGS += -fsanitize=thread
endif

PC := pkg-config
LIBS_CORE := -lopenblas -lm -lpthread
LIBS_SERVER = $(shell $(PC) --libs libmicrohttpd libcjson 2>/dev/null || echo -lmicrohttpd -lcjson)
LIBS_CURL = $(shell $(PC) --libs libcurl 2>/dev/null || echo -lcurl)
LIBS_CHECK = $(shell $(PC) --libs check 2>/dev/null || echo -lcheck -lsubunit -lrt -lm)
LIBS_MUJOCO := -lmujoco

CORE_SRC := $(wildcard core/*/*.c)
CORE_OBJ := $(CORE_SRC:%.c=$(BUILD)/%.o)
SERVER_SRC := $(filter-out server/main.c,$(wildcard server/*.c))
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
CLIENT_SRC := $(wildcard clients/c/lib/*.c)
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/%.o)

TESTS_CORE := $(patsubst tests/core/%.c,$(BUILD)/tests/%,$(wildcard tests/core/test_*.c))
TESTS_SERVER := $(patsubst tests/server/%.c,$(BUILD)/tests/%,$(wildcard tests/server/test_*.c))
TESTS_CLIENT := $(patsubst tests/clients/%.c,$(BUILD)/tests/%,$(wildcard tests/clients/test_*.c))
TESTS_SH := $(wildcard tests/*/test_*.sh)
TEST_BINS := $(TESTS_CORE) $(TESTS_SERVER) $(TESTS_CLIENT)

PROGS :=
-include server/server.mk
-include clients/clients.mk
-include bench/bench.mk
-include tests/fault/fault.mk
-include tests/fuzz/fuzz.mk

.PHONY: all deps deps-bench deps-test test test-fast test-asan test-tsan bench run clean tests-bin check-layout
all: $(BUILD)/libmbcore.a $(PROGS) $(TEST_BINS)

deps:
	@sh tools/deps.sh $(PKGS_BUILD) $(PKGS_RUN)
deps-bench: deps
	@sh tools/deps.sh $(PKGS_BENCH)
# the status page's test runs it in headless Chromium (tests/server/test_ui.sh)
deps-test: deps
	@sh tools/deps.sh $(PKGS_TEST)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libmbcore.a: $(CORE_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmbserver.a: $(SERVER_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^
$(BUILD)/libmbclient.a: $(CLIENT_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/tests/%: tests/core/%.c $(BUILD)/libmbcore.a tests/check_util.h tests/alloc_count.h tests/tmpdir.h tests/plan_stop.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libmbcore.a $(LIBS_CHECK) $(LIBS_CORE)
$(BUILD)/tests/%: tests/server/%.c $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a tests/check_util.h tests/alloc_count.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a $(LIBS_SERVER) $(LIBS_CURL) $(LIBS_CHECK) $(LIBS_CORE)
$(BUILD)/tests/%: tests/clients/%.c $(BUILD)/libmbclient.a $(BUILD)/libmbcore.a tests/check_util.h tests/alloc_count.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libmbclient.a $(BUILD)/libmbcore.a $(LIBS_SERVER) $(LIBS_CURL) $(LIBS_CHECK) $(LIBS_CORE)

tests-bin: $(TEST_BINS) $(PROGS)

# The include rules between core's rooms (core/README.md); also a test suite.
check-layout:
	@sh tools/check-layout.sh

# The image (./Dockerfile) built with podman and run (tools/podman.sh,
# deploy/README.md); both skip, saying why, without podman.
.PHONY: container-test kube-test
container-test: all
	@sh tests/deploy/test_container.sh
kube-test: all
	@sh tests/deploy/test_kube.sh

# Every suite, then the sanitizer build of the C suites; one summary line.
# JOBS: parallel compile jobs (all cores by default).
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: deps deps-test
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/asan SAN=asan OPT=-O1 tests-bin
	@$(MAKE) --no-print-directory -j$(JOBS) BUILD=$(BUILD)/tsan SAN=tsan OPT=-O1 $(BUILD)/tsan/mbrld \
		$(BUILD)/tsan/tests/fault/faultfs.so $(TESTS_SERVER:$(BUILD)/tests/%=$(BUILD)/tsan/tests/%)
	@$(MAKE) --no-print-directory -j$(JOBS) fuzz-build || { rm -f $(BUILD)/fuzz/fuzz_*; \
		echo "fuzz: the build failed (above): test_fuzz.sh counts its targets as failed"; }
	@BUILD=$(BUILD) sh tests/run.sh $(BUILD) $(BUILD)/asan $(BUILD)/tsan

# Quick loop while developing: plain build only, no sanitizers.
test-fast:
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@BUILD=$(BUILD) sh tests/run.sh $(BUILD)

bench: deps-bench
	@$(MAKE) --no-print-directory -j$(JOBS) all
	$(BUILD)/mbrld-bench all

run: deps
	@$(MAKE) --no-print-directory -j$(JOBS) all
	@sh tools/run-demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
