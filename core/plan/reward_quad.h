/* reward_quad.h: the quadratic expansion (gradient and Hessian) of the
 * declared reward terms (reward.h), for iLQR, LQR-FLM and gradient
 * shooting. Exact for every term:
 *   linear     g_i += w
 *   quadratic  g += -2 w (s - t), H_jj += -2 w     (per listed index)
 *   norm       g += -w d/|d|, H += -w (I - d d'/|d|^2) / |d|, mapped onto s
 *              through d = s[idx] - t or s[idx] - s[other]; at |d| < 1e-6
 *              the gradient is 0 (a subgradient) and the Hessian uses
 *              |d| = 1e-3 (the cone's tip has none)
 *   action_l2  g += -2 w a, H_jj += -2 w
 *   constant   nothing (termination is not differentiated)
 * The state part is of the next state s, the action part of the action, as
 * in mb_reward_step. Accumulates scale * (derivative) into the caller's
 * arrays; H may be NULL (gradient only).
 * Not for: the learned reward head (its derivatives come from
 * nn/ensemble_grad.h) or termination. */
#ifndef MB_REWARD_QUAD_H
#define MB_REWARD_QUAD_H

#include "plan/reward.h"

/* s (obs_dim); g (obs_dim) and H (obs_dim, obs_dim) accumulate. */
void mb_reward_state_quad(const mb_reward_spec *r, int obs_dim, const float *s, double scale,
                          double *g, double *H);
/* a (act_dim); g (act_dim) and H (act_dim, act_dim) accumulate. */
void mb_reward_action_quad(const mb_reward_spec *r, int act_dim, const float *a, double scale,
                           double *g, double *H);

#endif
