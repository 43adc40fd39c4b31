# fault.mk: the fault-injection shim (an LD_PRELOAD shared object, built
# without sanitizers so it can be preloaded into sanitized binaries too) and
# the suite that runs the write-ahead log and snapshots under it.
FAULTFS := $(BUILD)/tests/fault/faultfs.so
TEST_BINS += $(BUILD)/tests/test_wal_fault

$(FAULTFS): tests/fault/faultfs.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -O2 -g -fPIC -shared -D_GNU_SOURCE $< -o $@ -ldl

$(BUILD)/tests/test_wal_fault: tests/fault/test_wal_fault.c $(FAULTFS) $(BUILD)/libmbcore.a tests/check_util.h tests/tmpdir.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Itests $(CFLAGS) -DMB_FAULTFS='"$(abspath $(FAULTFS))"' $< -o $@ $(LDFLAGS) $(BUILD)/libmbcore.a $(LIBS_CHECK) $(LIBS_CORE)
