/* model_step.h: one deterministic step of a batch of rows through the
 * dynamics, for the planners that do not sample trajectories the PETS way
 * (MCTS, iLQR, gradient shooting, LQR-FLM): next state and the model's own
 * reward (the ensemble's reward head, or a known model's reward).
 *
 * Ensemble: s' = s + mean, either the mean over the k members (members[j],
 * members NULL = all) for every row, or one member per row (row_member[r]
 * in [0, k) indexes the member list): no sampled noise in either mode.
 * Known: the model's step (row_member ignored).
 * Scratch sized once for max_rows rows; no allocation per step.
 * Private to core/plan. Not for: the sampling planners' rollouts
 * (propagate.c). */
#ifndef MB_MODEL_STEP_H
#define MB_MODEL_STEP_H

#include <stddef.h>

#include "base/pool.h"
#include "plan/dynamics.h"

typedef struct plan_mstep plan_mstep;

/* NULL on allocation failure or bad dynamics. */
plan_mstep *plan_mstep_new(const mb_dynamics *dyn, size_t max_rows);
void plan_mstep_free(plan_mstep *ms);
/* Bytes plan_mstep_new allocates for dynamics with this ensemble spec
 * (NULL: known dynamics) and max_rows. */
size_t plan_mstep_bytes(const mb_ensemble_spec *spec, size_t max_rows);
size_t plan_mstep_rows(const plan_mstep *ms);

/* obs (n, obs_dim), act (n, act_dim) -> next (n, obs_dim), mreward (n) or
 * NULL (0 when the model has none). n <= plan_mstep_rows. pool may be NULL.
 * row_member: (n) or NULL (mean over the k members). */
void plan_mstep_run(plan_mstep *ms, const mb_dynamics *dyn, mb_pool *pool, const int *members,
                    int k, const int *row_member, const float *obs, const float *act, size_t n,
                    float *next, float *mreward);

#endif
