/* sim.c: the simulators' shared parts: the random generator and opening a
 * task by name. Not for: any task's physics (sim_known.c, sim_mujoco.c). */
#include "sim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix__(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(sim_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix__(&seed);
}

static uint64_t rotl__(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** */
static uint64_t next__(sim_rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl__(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl__(s[3], 45);
    return out;
}

double sim_rng_uniform(sim_rng *r) { return (double)(next__(r) >> 11) * 0x1.0p-53; }

double sim_rng_normal(sim_rng *r) {
    /* Box-Muller; one draw per call keeps the stream simple to reproduce */
    double u = sim_rng_uniform(r), v = sim_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

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
