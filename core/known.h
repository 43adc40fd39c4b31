/* known.h: built-in known dynamics, for planning without a learned model
 * (the yardstick for planning with one) and for the simulator clients.
 *
 *   pendulum: Gymnasium Pendulum-v1. obs (cos th, sin th, thdot), act (u),
 *     g = 10, m = l = 1, dt = 0.05, |thdot| <= 8, |u| <= 2;
 *     reward -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2) of the state
 *     before the step and the clipped torque.
 *   cartpole_swingup: the PETS cartpole swing-up. obs (x, th, xdot, thdot),
 *     th = 0 upright... (see known.c for the exact equations and reward).
 * Not for: learned models (ensemble.h). */
#ifndef MB_KNOWN_H
#define MB_KNOWN_H

#include <stddef.h>

typedef struct {
    const char *name;
    int obs_dim, act_dim;
    float act_low[4], act_high[4];
    /* n rows: obs (n, obs_dim), act (n, act_dim) -> next_obs (n, obs_dim),
     * reward (n) (may be NULL). Pure function: thread-safe. */
    void (*step)(size_t n, const float *obs, const float *act, float *next_obs, float *reward);
} mb_known_model;

extern const mb_known_model mb_known_pendulum;
extern const mb_known_model mb_known_cartpole_swingup;

/* By name ("pendulum", "cartpole_swingup"); NULL if unknown. */
const mb_known_model *mb_known_find(const char *name);

#endif
