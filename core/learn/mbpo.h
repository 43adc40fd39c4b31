/* mbpo.h: model-based policy optimisation (Janner et al. 2019, "When to
 * trust your model").
 *
 * One MBPO step stands for one environment step of the paper's loop:
 *   1. rollouts: `rollouts` start states drawn uniformly from the real
 *      replay buffer, each rolled `length` steps through the model with
 *      actions sampled from the current policy (mb_rollout_step: a random
 *      elite member per row, sampled Gaussians, learned + declared rewards);
 *      a row that leaves the declared bounds is a terminal transition and
 *      is not rolled further, a row whose state or reward is not finite (a
 *      diverged model) is dropped. Every simulated transition goes into the model-data
 *      buffer, a ring that keeps the last `retain_steps` steps' worth
 *      (rollouts * max length * retain_steps rows).
 *   2. `updates_per_step` SAC updates, each on a batch of which a fraction
 *      real_ratio comes from the real buffer and the rest from the model
 *      buffer (all real while the model buffer is empty).
 * The rollout length follows MBPO's schedule: min_length until step
 * min_epoch * epoch_steps, then linear up to max_length at max_epoch *
 * epoch_steps. Defaults are the paper's where one fits: rollouts of 1 step,
 * 400 started per step (100,000 every 250), 20 updates per step, 5% real
 * data, a 1,000-step epoch, one epoch retained.
 * Description vs state: mb_mbpo_cfg is const; mb_mbpo (model buffer, step
 * counter, generator) is the run's state; mb_mbpo_ws is scratch.
 * Not for: training the model (trainer.c), scheduling jobs (server/). */
#ifndef MB_MBPO_H
#define MB_MBPO_H

#include "learn/buffer.h"
#include "learn/rollout.h"
#include "learn/sac.h"
#include "plan/dynamics.h"
#include "plan/reward.h"

#define MB_MBPO_MAX_ROLLOUTS 1000000
#define MB_MBPO_MAX_LENGTH 100
/* Model-buffer rows at most (memory bound: rows * (2 obs + act + 3) floats). */
#define MB_MBPO_MAX_MODEL_ROWS 4000000

typedef struct {
    int rollouts;           /* started per step, 1..MB_MBPO_MAX_ROLLOUTS; 400 */
    int min_length, max_length; /* 1..MB_MBPO_MAX_LENGTH, min <= max; 1, 1 */
    int min_epoch, max_epoch;   /* schedule, in epochs; 20, 100 */
    int epoch_steps;        /* steps per epoch; 1000 */
    int retain_steps;       /* steps of rollouts the model buffer keeps; 1000 */
    int updates_per_step;   /* SAC updates per step; 20 */
    float real_ratio;       /* [0, 1]; 0.05 */
    mb_sac_cfg sac;
} mb_mbpo_cfg;

void mb_mbpo_cfg_default(mb_mbpo_cfg *c);
mb_status mb_mbpo_cfg_check(const mb_mbpo_cfg *c, char *err, size_t err_sz);
/* Rollout length at step `step` (0-based) under the schedule. */
int mb_mbpo_length(const mb_mbpo_cfg *c, long step);
/* Rows of the model buffer the config asks for (capped). */
size_t mb_mbpo_model_capacity(const mb_mbpo_cfg *c);

typedef struct {
    mb_buffer model;  /* simulated transitions (ring) */
    long steps;       /* MBPO steps taken */
    mb_rng rng;
} mb_mbpo;

mb_status mb_mbpo_init(mb_mbpo *m, const mb_mbpo_cfg *cfg, int obs_dim, int act_dim,
                       uint64_t seed, char *err, size_t err_sz);
void mb_mbpo_free(mb_mbpo *m);

typedef struct mb_mbpo_ws mb_mbpo_ws;
/* Scratch for rollouts of cfg->rollouts rows, the ensemble's forward (when
 * dyn->ens) and the SAC updates (pieces: the pool's size). */
mb_mbpo_ws *mb_mbpo_ws_new(const mb_mbpo_cfg *cfg, const mb_sac *agent, const mb_dynamics *dyn,
                           int pieces);
void mb_mbpo_ws_free(mb_mbpo_ws *ws);

typedef struct {
    int length;             /* rollout length used */
    size_t model_rows;      /* rows in the model buffer */
    size_t simulated;       /* transitions added this step */
    mb_sac_losses losses;   /* of the last update */
} mb_mbpo_stats;

/* One step (rollouts, then updates) of the agent against the real buffer
 * (read only, at least one row) and the dynamics. rw may be NULL (the
 * model's own reward). pool may be NULL. MB_ESTATE for an empty buffer or a
 * reward that needs a learned head the ensemble lacks; MB_ERANGE when SAC
 * diverges. */
mb_status mb_mbpo_step(mb_mbpo *m, mb_sac *agent, const mb_mbpo_cfg *cfg, const mb_buffer *real,
                       const mb_dynamics *dyn, const mb_reward_spec *rw, mb_mbpo_ws *ws,
                       mb_pool *pool, mb_mbpo_stats *stats, char *err, size_t err_sz);

#endif
