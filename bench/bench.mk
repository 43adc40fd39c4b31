# bench.mk: build/mbrld-bench, one binary with every benchmark.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)
PROGS += $(BUILD)/mbrld-bench
$(BUILD)/mbrld-bench: $(BENCH_OBJ) $(BUILD)/libmbcore.a
	$(CC) $(CFLAGS) $(BENCH_OBJ) -o $@ $(LDFLAGS) $(BUILD)/libmbcore.a $(LIBS_CORE)
