/* dynamics.h: mb_dynamics, where the next state comes from in the planners
 * (planner.h) and in mb_predict (predict.h): a learned ensemble or known
 * dynamics, with the action bounds.
 * The value and policy that go with the model ride along for the planners
 * that use them (plan/prior.c).
 * Not for: stepping anything (propagate.c, predict.c do). */
#ifndef MB_DYNAMICS_H
#define MB_DYNAMICS_H

#include "nn/ensemble.h"
#include "nn/policy.h"
#include "nn/vnet.h"
#include "plan/known.h"

/* Where the next state comes from. Exactly one of ens / known is set. */
typedef struct {
    const mb_ensemble *ens;       /* learned: s' = s + delta (+ reward head) */
    const mb_known_model *known;  /* known: exact step and reward */
    int obs_dim, act_dim;
    const float *act_low, *act_high; /* (act_dim) bounds */
    /* K > 0: discrete actions 0..K-1, given to the model one-hot, so
     * act_dim == K (bounds 0 and 1); the planners' sequences hold one-hot
     * rows. 0: continuous. */
    int discrete;
    /* What a learned value and policy prior plan with (planner.h's
     * terminal_value and policy_samples); NULL when there are none. */
    const mb_vnet *value;
    const mb_policy *policy;
} mb_dynamics;

#endif
