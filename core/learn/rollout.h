/* rollout.h: one simulated step of many rows through the dynamics the
 * policy learners use (MBPO's branches, distillation's visited states,
 * the BPTT reference): known dynamics step exactly; through an ensemble
 * every row goes to one member drawn at random among the elites (as MBPO)
 * and the next state and learned reward are sampled from that member's
 * Gaussian. Rows are grouped by member so each member runs one batched
 * forward (mb_ensemble_forward) over its rows.
 * The reward is the model's own (the ensemble's reward head or the known
 * model's) when rw->use_learned, plus the declared terms, and the declared
 * bounds end rows (mb_reward_step).
 * Not for: planning (plan/propagate.c scores candidates its own way). */
#ifndef MB_ROLLOUT_H
#define MB_ROLLOUT_H

#include <stddef.h>
#include <stdint.h>

#include "base/pool.h"
#include "base/rng.h"
#include "plan/dynamics.h"
#include "plan/reward.h"

typedef struct mb_rollout_ws mb_rollout_ws;
/* Scratch for steps of at most max_rows rows. NULL on allocation failure. */
mb_rollout_ws *mb_rollout_ws_new(const mb_dynamics *dyn, size_t max_rows);
void mb_rollout_ws_free(mb_rollout_ws *ws);

/* next_obs (n, obs_dim), reward (n), alive (n) in/out as in mb_reward_step
 * for obs (n, obs_dim) and act (n, act_dim); n <= max_rows. rw may be NULL
 * (the model's own reward). pool may be NULL; rng draws members and noise. */
void mb_rollout_step(const mb_dynamics *dyn, const mb_reward_spec *rw, mb_rollout_ws *ws,
                     mb_pool *pool, mb_rng *rng, const float *obs, const float *act, size_t n,
                     float *next_obs, float *reward, uint8_t *alive);

#endif
