/* reward.h: declared reward terms and termination bounds (DESIGN.md).
 *
 * A step's reward = learned reward (if used) + sum of declared terms over
 * the predicted next state s and the action a:
 *   linear     + w * s[i]
 *   quadratic  - w * sum_j (s[idx_j] - t_j)^2
 *   norm       - w * ||s[idx] - t||   or   - w * ||s[idx] - s[other]||
 *   action_l2  - w * sum a^2
 *   constant   + w while alive (not on the terminating step)
 * Termination: alive while min < s[i] < max for every bound (either limit
 * optional); the terminating step earns every term but `constant`; later
 * steps earn nothing. Rewards are discounted by discount^t.
 * Not for: JSON (server/ fills these structs). */
#ifndef MB_REWARD_H
#define MB_REWARD_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define MB_MAX_TERMS 16
#define MB_MAX_TERM_IDX 32
#define MB_MAX_BOUNDS 32

typedef enum {
    MB_TERM_LINEAR = 0,
    MB_TERM_QUADRATIC,
    MB_TERM_NORM,
    MB_TERM_ACTION_L2,
    MB_TERM_CONSTANT
} mb_term_type;

typedef struct {
    mb_term_type type;
    float weight;
    int n_idx;                      /* linear: 1; quadratic/norm: entries */
    int idx[MB_MAX_TERM_IDX];
    float target[MB_MAX_TERM_IDX];  /* quadratic, norm with a target */
    int n_other;                    /* norm between groups: == n_idx, else 0 */
    int other[MB_MAX_TERM_IDX];
} mb_reward_term;

typedef struct {
    int index;
    int has_min, has_max;
    float min, max;
} mb_bound;

typedef struct {
    int use_learned;     /* add the model's own reward: the ensemble's reward
                          * head (needs learn_reward) or a known model's reward */
    int n_terms;
    mb_reward_term terms[MB_MAX_TERMS];
    int n_bounds;
    mb_bound bounds[MB_MAX_BOUNDS];
    float discount;      /* (0, 1]; 1 = undiscounted */
} mb_reward_spec;

/* Checks indices against the dims, weights finite, counts within limits. */
mb_status mb_reward_spec_check(const mb_reward_spec *r, int obs_dim, int act_dim,
                               char *err, size_t err_sz);
/* Overrides the target of term `term` (quadratic or norm with a target) for
 * one call, on a copy owned by the caller. n must equal the term's n_idx. */
mb_status mb_reward_set_target(mb_reward_spec *r, int term, const float *target, int n,
                               char *err, size_t err_sz);
/* One step for n rows.
 *   next_obs: (n, obs_dim); act: (n, act_dim); learned: (n) or NULL
 *   alive: (n) in: 1 if the row is still alive before this step; out: after
 *   reward: (n) out: this step's (undiscounted) reward, 0 for dead rows */
void mb_reward_step(const mb_reward_spec *r, int obs_dim, int act_dim, size_t n,
                    const float *next_obs, const float *act, const float *learned,
                    uint8_t *alive, float *reward);
/* mb_reward_step with row strides in floats (stride 0 repeats one row, e.g.
 * one action shared by P particles). Same contract otherwise. */
void mb_reward_step_strided(const mb_reward_spec *r, int obs_dim, int act_dim, size_t n,
                            const float *next_obs, size_t obs_stride, const float *act,
                            size_t act_stride, const float *learned, size_t learned_stride,
                            uint8_t *alive, float *reward);
/* Fills r with no terms, no bounds, discount 1 and use_learned = 1 (the
 * model's own reward: the ensemble's head, or a known model's reward). */
void mb_reward_spec_default(mb_reward_spec *r);

#endif
