# clients.mk: the C client's programs, the simulators and `make bench-learning`.
#
#   $(BUILD)/libmbsim.a        simulators (clients/c/sim/*.c; MuJoCo + core/known)
#   $(BUILD)/mbrl-sim          the learning loop through the daemon, every task
#   $(BUILD)/mbrl-example      the client library in ~80 lines (clients/c/example_basic.c)
# Tests in tests/clients/ link libmbclient.a by the Makefile's rule; the
# simulator suite also needs libmbsim.a and -lmujoco (target variables below).
# The client's request bodies write floats the way the daemon's answers do:
# one helper, compiled into both libraries.
CLIENT_OBJ += $(BUILD)/server/json_floats.o
SIM_SRC := $(wildcard clients/c/sim/*.c)
SIM_OBJ := $(SIM_SRC:%.c=$(BUILD)/%.o)
LIBS_CLIENT_PROG = $(BUILD)/libmbclient.a $(BUILD)/libmbcore.a $(LIBS_SERVER) $(LIBS_CURL) $(LIBS_CORE)

# The task XMLs (Gymnasium's, MIT, clients/c/sim/models/LICENSE): the last
# place the simulator looks is the source tree it was built from.
$(BUILD)/clients/c/sim/sim_mujoco.o: CPPFLAGS += -DSIM_MODELS_DIR='"$(CURDIR)/clients/c/sim/models"'

$(BUILD)/libmbsim.a: $(SIM_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

PROGS += $(BUILD)/mbrl-sim $(BUILD)/mbrl-example
$(BUILD)/mbrl-sim: $(BUILD)/clients/c/mbrl-sim.o $(BUILD)/libmbsim.a $(BUILD)/libmbclient.a $(BUILD)/libmbcore.a
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libmbsim.a $(LIBS_CLIENT_PROG) $(LIBS_MUJOCO)
$(BUILD)/mbrl-example: $(BUILD)/clients/c/example_basic.o $(BUILD)/libmbclient.a
	$(CC) $(CFLAGS) $< -o $@ $(LDFLAGS) $(BUILD)/libmbclient.a $(LIBS_SERVER) $(LIBS_CURL)

$(BUILD)/tests/test_sim: $(BUILD)/libmbsim.a
$(BUILD)/tests/test_sim: LDFLAGS += $(BUILD)/libmbsim.a
$(BUILD)/tests/test_sim: LIBS_CORE += $(LIBS_MUJOCO)

# Learning curves of docs/RESULTS.md (CSV + PNG into docs/results/), every
# task over several seeds; TASKS="pendulum inverted_pendulum" runs some.
.PHONY: bench-learning
bench-learning: $(BUILD)/mbrld $(BUILD)/mbrl-sim
	@sh tools/bench-learning.sh --build $(BUILD) --out docs/results $(TASKS)
