/* sim.h: the simulators the learning loop (mbrl-sim) drives, behind one
 * interface: reset, step, and the reward/termination spec to declare to
 * mbrld when the model is created.
 *
 *   pendulum           Gymnasium Pendulum-v1 (core/plan/known.h's step), 200 steps
 *   cartpole_swingup   the PETS cartpole swing-up (core/plan/known.h's step), 200 steps
 *   halfcheetah, hopper, swimmer, inverted_pendulum
 *                      Gymnasium MuJoCo v5 tasks on Debian's libmujoco 2.2.2,
 *                      exactly as clients/c/sim/models/TASKS.md states
 *
 * These are clients: they live here, never in the daemon. Not thread-safe
 * per env (one env per thread). Not for: HTTP (mbrl_client.h) or the loop.
 */
#ifndef MBRL_SIM_H
#define MBRL_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "base/rng.h"
#include "lib/mbrl_client.h"

#define SIM_MAX_OBS 32
#define SIM_MAX_ACT 8

/* The simulators' resets and random policies draw from core's one
 * generator (base/rng.h); these names keep the simulators' call sites. */
typedef mb_rng sim_rng;
static inline void sim_rng_seed(sim_rng *r, uint64_t seed) { mb_rng_seed(r, seed); }
static inline double sim_rng_uniform(sim_rng *r) { return mb_rng_uniform(r); } /* [0, 1) */
static inline double sim_rng_normal(sim_rng *r) { return mb_rng_normal_bm(r); } /* N(0, 1), Box-Muller */

typedef struct sim_env sim_env;

typedef struct {
    const char *model_dir;   /* MuJoCo XMLs; NULL: $MBRL_MUJOCO_DIR, else clients/c/sim/models */
    double reset_noise;      /* multiplies the task's reset noise; 1 = as the task says */
    int max_steps;           /* 0 = the task's T */
} sim_opts;

struct sim_env {
    const char *name;
    int obs_dim, act_dim;
    int max_steps;                      /* truncation at T */
    float act_low[SIM_MAX_ACT], act_high[SIM_MAX_ACT];
    double dt;                          /* seconds per step */
    /* obs: (obs_dim) out. */
    void (*reset)(sim_env *e, sim_rng *rng, float *obs);
    /* act: (act_dim); next_obs: (obs_dim) out. *terminated: the task ended
     * (not a time-limit truncation). */
    void (*step)(sim_env *e, const float *act, float *next_obs, float *reward, int *terminated);
    /* Fills what to declare to mbrld: learn_reward, reward terms and
     * termination bounds (dims and bounds too). reward_mode: "declared"
     * (the task's terms where they can be written in DESIGN.md's terms,
     * else learned), "learned" (the ensemble learns the whole reward). */
    void (*declare)(const sim_env *e, const char *reward_mode, mbrl_model_spec *spec);
    void (*free)(sim_env *e);
    void *impl;
    double noise;                       /* reset noise multiplier */
};

/* Opens a task by name (list: sim_task_names). *out owned by the caller
 * (sim_env_free). Returns 0, or -1 with a reason in err. */
int sim_env_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz);
void sim_env_free(sim_env *e);
/* "pendulum, cartpole_swingup, halfcheetah, hopper, swimmer, inverted_pendulum" */
const char *sim_task_names(void);

/* Known-dynamics tasks (sim_known.c) and MuJoCo tasks (sim_mujoco.c). */
int sim_known_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz);
int sim_mujoco_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz);

#endif
