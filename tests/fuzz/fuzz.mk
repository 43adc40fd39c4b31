# fuzz.mk: libFuzzer targets (tests/fuzz/fuzz_*.c, see tests/fuzz/README.md),
# built with clang -fsanitize=fuzzer,address,undefined into $(BUILD)/fuzz/.
# `make fuzz-build` builds them when clang's fuzzer runtime is there (Debian:
# clang + libclang-rt-dev, which `make deps` installs) and says so otherwise;
# tests/fuzz/test_fuzz.sh runs each for a few seconds from the checked-in
# corpus in `make test`.
FUZZ_CC ?= clang
FUZZ_DIR := $(BUILD)/fuzz
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SRC := $(CORE_SRC) server/jsonv.c server/errors.c server/spec.c server/spec_policy.c server/options.c \
	server/transitions_json.c \
	server/json_floats.c
FUZZ_OBJ := $(FUZZ_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
# no -Werror: clang warns about things gcc does not, and the fuzz build must
# not fail `make test` over a warning (the gcc builds keep -Werror)
FUZZ_CFLAGS := -std=c11 -Wall -Wextra -O1 -g $(ARCH) -pthread -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=undefined
LIBS_FUZZ = $(shell $(PC) --libs libcjson 2>/dev/null || echo -lcjson) $(LIBS_CORE)

.PHONY: fuzz-build
.SECONDARY: $(FUZZ_OBJ)
fuzz-build:
	@if sh tests/fuzz/have-fuzzer.sh $(FUZZ_CC); then \
		$(MAKE) --no-print-directory $(FUZZ_TARGETS); \
	else echo "fuzz: $(FUZZ_CC) cannot link -fsanitize=fuzzer here (Debian: apt-get install clang libclang-rt-dev); fuzz targets not built"; fi

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJ)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_OBJ) -o $@ $(LIBS_FUZZ)
