# bench.mk: build/mbrld-bench, one binary with every benchmark.
BENCH_SRC := $(wildcard bench/*.c)
BENCH_OBJ := $(BENCH_SRC:%.c=$(BUILD)/%.o)
PROGS += $(BUILD)/mbrld-bench
# bench_serve runs the daemon in-process: the server lib, MHD, cJSON, libcurl
$(BUILD)/mbrld-bench: $(BENCH_OBJ) $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a
	$(CC) $(CFLAGS) $(BENCH_OBJ) -o $@ $(LDFLAGS) $(BUILD)/libmbserver.a $(BUILD)/libmbcore.a $(LIBS_SERVER) $(LIBS_CURL) $(LIBS_CORE)
