/* sim.c: the simulators' shared part: opening a task by name (the random
 * generator is core's mb_rng, see sim.h).
 * Not for: any task's physics (sim_known.c, sim_mujoco.c). */
#include "sim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *sim_task_names(void) {
    return "pendulum, cartpole_swingup, halfcheetah, hopper, swimmer, inverted_pendulum";
}

int sim_env_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz) {
    *out = NULL;
    sim_opts d = {NULL, 1.0, 0};
    if (!o) o = &d;
    if (!task) task = "";
    if (!strcmp(task, "pendulum") || !strcmp(task, "cartpole_swingup"))
        return sim_known_open(out, task, o, err, err_sz);
    if (!strcmp(task, "halfcheetah") || !strcmp(task, "hopper") || !strcmp(task, "swimmer") ||
        !strcmp(task, "inverted_pendulum"))
        return sim_mujoco_open(out, task, o, err, err_sz);
    snprintf(err, err_sz, "unknown task '%s' (tasks: %s)", task, sim_task_names());
    return -1;
}

void sim_env_free(sim_env *e) {
    if (e && e->free) e->free(e);
}
