/* known.h: built-in known dynamics, for planning without a learned model
 * (the yardstick for planning with one) and for the simulator clients.
 *
 *   pendulum: Gymnasium Pendulum-v1. obs (cos th, sin th, thdot), act (u),
 *     g = 10, m = l = 1, dt = 0.05, |thdot| <= 8, |u| <= 2;
 *     reward -(angle_normalize(th)^2 + 0.1 thdot^2 + 0.001 u^2) of the state
 *     before the step and the clipped torque.
 *     The state crosses steps as the float obs (th = atan2(sin, cos)), so a
 *     simulator that only keeps obs reproduces Gymnasium to float rounding.
 *   cartpole_swingup: the PETS cartpole swing-up, with our own equations of
 *     motion. obs (x, th, xdot, thdot); th = 0 hangs down, th = pi is upright
 *     (th is not wrapped); act u in [-3, 3] (clipped), force F = 100 u
 *     newtons (PETS's motor gear). Masses close to PETS's MuJoCo model
 *     (density-1000 capsules): cart M = 10.5 kg, pole a uniform rod of
 *     m = 5.0 kg and length l = 0.6 m hinged at the cart (centre of mass
 *     lc = l/2, inertia about the hinge J = m l^2 / 3); g = 9.81. Unlike
 *     PETS: no joint damping and no track limits. With s = sin th,
 *     c = cos th, Lagrange's equations are
 *       (M + m) xdd - m lc c thdd = F - m lc s thd^2
 *       -m lc c xdd + J thdd      = -m g lc s
 *     solved as a 2x2 system; dt = 0.04 per step (PETS: 2 x 0.02), by 8
 *     semi-implicit Euler substeps of 0.005 s (velocities first).
 *     reward (of the state after the step, as in PETS):
 *       exp(-||ee - (0, l)||^2 / l^2) - 0.01 * u^2,  ee = (x - l s, -l c),
 *     so 1 upright over the origin, exp(-4) ~ 0.018 hanging at x = 0.
 *     CEM (H 30, N 300, 4 iterations) on these exact dynamics swings up
 *     within ~1 s and earns ~176 over 200 steps.
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
