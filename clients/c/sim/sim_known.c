/* sim_known.c: the pendulum and the cartpole swing-up as simulators. The
 * physics and reward are core/plan/known.h's pure step functions (the same ones
 * the planner tests use); this file adds what an environment has besides:
 * the reset distribution, the episode length and the spec to declare.
 *
 *   pendulum (Gymnasium Pendulum-v1): reset th ~ U(-pi, pi), thdot ~ U(-1, 1);
 *     obs (cos th, sin th, thdot); 200 steps; never terminates.
 *   cartpole_swingup (PETS): reset (x, th, xdot, thdot) = 0 + N(0, 0.1^2)
 *     each (pole hanging down); 200 steps; never terminates. The observation
 *     adds the pole tip (ee_x, ee_y) = (x - l sin th, -l cos th), l = 0.6, as
 *     entries 4, 5 (PETS also plans on features of the angle): the reward
 *     exp(-|ee - (0, l)|^2 / l^2) - 0.01 F^2 then has a declared stand-in,
 *     quadratic on (ee_x, ee_y) to (0, l) with weight 1 / l^2 (the log of the
 *     exponential) plus action_l2 0.01, which points the planner at upright
 *     states it has never seen; a learned reward cannot know them.
 * The pendulum's reward (an angle through atan2) has no declared form, and
 * random torques visit every angle, so the ensemble learns it.
 * Not for: MuJoCo tasks (sim_mujoco.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/known.h"
#include "sim.h"

typedef struct {
    const mb_known_model *km;
    float obs[SIM_MAX_OBS];   /* the known model's state (km->obs_dim) */
} known_env;

#define CARTPOLE_L 0.6

/* The simulator's observation: the state, plus the pole tip for the
 * cartpole. state: (km->obs_dim); obs: (e->obs_dim). */
static void known__observe(const sim_env *e, const float *state, float *obs) {
    const known_env *k = e->impl;
    memcpy(obs, state, sizeof(float) * (size_t)k->km->obs_dim);
    if (e->obs_dim > k->km->obs_dim) {
        obs[4] = (float)(state[0] - CARTPOLE_L * sin(state[1]));
        obs[5] = (float)(-CARTPOLE_L * cos(state[1]));
    }
}

static void known__reset(sim_env *e, sim_rng *rng, float *obs) {
    known_env *k = e->impl;
    if (!strcmp(e->name, "pendulum")) {
        double th = (2.0 * sim_rng_uniform(rng) - 1.0) * M_PI;
        double thdot = 2.0 * sim_rng_uniform(rng) - 1.0;
        k->obs[0] = (float)cos(th);
        k->obs[1] = (float)sin(th);
        k->obs[2] = (float)thdot;
    } else {
        for (int i = 0; i < k->km->obs_dim; i++) k->obs[i] = (float)(0.1 * e->noise * sim_rng_normal(rng));
    }
    known__observe(e, k->obs, obs);
}

static void known__step(sim_env *e, const float *act, float *next_obs, float *reward, int *terminated) {
    known_env *k = e->impl;
    float next[SIM_MAX_OBS];
    k->km->step(1, k->obs, act, next, reward);
    memcpy(k->obs, next, sizeof(float) * (size_t)k->km->obs_dim);
    known__observe(e, k->obs, next_obs);
    *terminated = 0;
}

static void known__declare(const sim_env *e, const char *reward_mode, mbrl_model_spec *spec) {
    spec->obs_dim = e->obs_dim;
    spec->act_dim = e->act_dim;
    spec->act_low = e->act_low;
    spec->act_high = e->act_high;
    spec->n_terms = 0;
    spec->n_bounds = 0;
    spec->learn_reward = 1;
    if (strcmp(e->name, "cartpole_swingup") || (reward_mode && !strcmp(reward_mode, "learned"))) return;
    spec->learn_reward = 0;
    mbrl_term *t = &spec->terms[spec->n_terms++];
    memset(t, 0, sizeof *t);
    t->type = MBRL_TERM_QUADRATIC;
    t->weight = (float)(1.0 / (CARTPOLE_L * CARTPOLE_L));
    t->n_idx = 2;
    t->idx[0] = 4;
    t->idx[1] = 5;
    t->has_target = 1;
    t->target[0] = 0.0f;
    t->target[1] = (float)CARTPOLE_L;
    t = &spec->terms[spec->n_terms++];
    memset(t, 0, sizeof *t);
    t->type = MBRL_TERM_ACTION_L2;
    t->weight = 0.01f;
}

static void known__free(sim_env *e) {
    free(e->impl);
    free(e);
}

int sim_known_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz) {
    *out = NULL;
    const mb_known_model *km = mb_known_find(task);
    if (!km) {
        snprintf(err, err_sz, "no known model '%s' in core/plan/known.c", task);
        return -1;
    }
    if (km->obs_dim + 2 > SIM_MAX_OBS || km->act_dim > SIM_MAX_ACT || km->act_dim > 4) {
        snprintf(err, err_sz, "known model '%s' is larger than the simulator allows", task);
        return -1;
    }
    sim_env *e = calloc(1, sizeof *e);
    known_env *k = calloc(1, sizeof *k);
    if (!e || !k) {
        free(e);
        free(k);
        snprintf(err, err_sz, "out of memory");
        return -1;
    }
    k->km = km;
    e->name = !strcmp(task, "pendulum") ? "pendulum" : "cartpole_swingup";
    e->obs_dim = km->obs_dim + (strcmp(task, "pendulum") ? 2 : 0);
    e->act_dim = km->act_dim;
    e->max_steps = o->max_steps > 0 ? o->max_steps : 200;
    for (int i = 0; i < e->act_dim; i++) {
        e->act_low[i] = km->act_low[i];
        e->act_high[i] = km->act_high[i];
    }
    e->dt = 0.05; /* both: see core/plan/known.h */
    e->noise = o->reset_noise;
    e->reset = known__reset;
    e->step = known__step;
    e->declare = known__declare;
    e->free = known__free;
    e->impl = k;
    *out = e;
    return 0;
}
