/* predict.h: mb_predict, one action sequence rolled through the dynamics
 * for diagnostics (the server's /predict). Unlike mb_plan it allocates its
 * scratch per call.
 * Not for: planning (planner.h), which never allocates. */
#ifndef MB_PREDICT_H
#define MB_PREDICT_H

#include <stddef.h>

#include "base/common.h"
#include "plan/dynamics.h"
#include "plan/reward.h"

/* Rolls one action sequence through the dynamics from obs, for diagnostics.
 * Ensemble: per step and per member the means; outputs over members:
 *   mean: (steps, obs_dim) mean next state; std: (steps, obs_dim) spread
 *   (std over members of their means plus mean aleatoric variance);
 *   reward_mean, reward_std: (steps) (learned + declared reward).
 * actions: (steps, act_dim). Known dynamics: std = 0. */
mb_status mb_predict(const mb_dynamics *dyn, const mb_reward_spec *rw, const float *obs,
                     const float *actions, int steps, float *mean, float *std,
                     float *reward_mean, float *reward_std, char *err, size_t err_sz);

#endif
