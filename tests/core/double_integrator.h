/* double_integrator.h: the double integrator the planner tests check
 * against a closed form (test_planner, test_ilqr, test_lqr_flm, test_grad):
 * p' = p + dt v, v' = v + dt u, u in [-5, 5], cost sum_t p'^2 + v'^2 + R u^2.
 *   di_model: the known model with that reward in its step (-cost);
 *   di_model_declared: the same dynamics, no reward of its own (the cost
 *     comes from the declared terms of di_reward).
 * di_cost rolls a control sequence out in double; di_optimum is the
 * finite-horizon LQR optimum by the Riccati recursion (di_lqr: also the
 * optimal controls and the first gain).
 * Header-only, for tests. */
#ifndef MB_TEST_DOUBLE_INTEGRATOR_H
#define MB_TEST_DOUBLE_INTEGRATOR_H

#include <string.h>

#include "plan/planner.h"

#define DI_DT 0.1
#define DI_R 0.1

static inline void di_step_rewarded(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        double p = obs[2 * i], v = obs[2 * i + 1], u = act[i];
        double np = p + DI_DT * v, nv = v + DI_DT * u;
        next[2 * i] = (float)np;
        next[2 * i + 1] = (float)nv;
        if (reward) reward[i] = (float)-(np * np + nv * nv + DI_R * u * u);
    }
}

static inline void di_step_declared(size_t n, const float *obs, const float *act, float *next, float *reward) {
    di_step_rewarded(n, obs, act, next, NULL);
    for (size_t i = 0; reward && i < n; i++) reward[i] = 0.0f;
}

static const mb_known_model di_model = {
    .name = "double_integrator", .obs_dim = 2, .act_dim = 1,
    .act_low = {-5.0f}, .act_high = {5.0f}, .step = di_step_rewarded};
static const mb_known_model di_model_declared = {
    .name = "double_integrator", .obs_dim = 2, .act_dim = 1,
    .act_low = {-5.0f}, .act_high = {5.0f}, .step = di_step_declared};
static const float di_low[1] = {-5.0f}, di_high[1] = {5.0f};

/* -(p'^2 + v'^2) - R u^2 as declared terms (no learned reward). */
static inline void di_reward(mb_reward_spec *rw) {
    mb_reward_spec_default(rw);
    rw->use_learned = 0;
    rw->n_terms = 2;
    rw->terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2,
                                    .idx = {0, 1}, .target = {0, 0}};
    rw->terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = (float)DI_R};
}

static inline double di_cost(const float *x0, const float *u, int H) {
    double p = x0[0], v = x0[1], c = 0.0;
    for (int t = 0; t < H; t++) {
        double np = p + DI_DT * v, nv = v + DI_DT * u[t];
        c += np * np + nv * nv + DI_R * u[t] * u[t];
        p = np;
        v = nv;
    }
    return c;
}

/* Finite-horizon LQR by the Riccati recursion for the cost above (states
 * x_1..x_H weighted by Q = I, x_0 not counted): returns J* = x0'(P_0 - Q) x0;
 * u_opt (H, may be NULL) gets the optimal controls from x0, K0 (may be
 * NULL) the first feedback gain (u = K0 x). */
static inline double di_lqr(const float *x0, int H, float *u_opt, double K0[2]) {
    double P[2][2] = {{1, 0}, {0, 1}}; /* P_H = Q */
    double K[MB_MAX_HORIZON][2];
    for (int t = H - 1; t >= 0; t--) {
        /* A = [[1, dt], [0, 1]], B = [0, dt]' */
        double PB0 = P[0][1] * DI_DT, PB1 = P[1][1] * DI_DT; /* P B */
        double s = DI_R + DI_DT * PB1;                        /* R + B'PB */
        K[t][0] = PB0 / s;                                    /* B'PA / s */
        K[t][1] = (DI_DT * PB0 + PB1) / s;
        double M[2][2] = {{1, DI_DT}, {-DI_DT * K[t][0], 1 - DI_DT * K[t][1]}}; /* A - B K */
        double PM[2][2], NP[2][2], At[2][2] = {{1, 0}, {DI_DT, 1}};
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) PM[i][j] = P[i][0] * M[0][j] + P[i][1] * M[1][j];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) NP[i][j] = At[i][0] * PM[0][j] + At[i][1] * PM[1][j];
        if (t > 0) { /* x_t's own cost for t >= 1 */
            NP[0][0] += 1.0;
            NP[1][1] += 1.0;
        }
        memcpy(P, NP, sizeof P);
    }
    double p = x0[0], v = x0[1];
    for (int t = 0; u_opt && t < H; t++) {
        double u = -(K[t][0] * p + K[t][1] * v);
        u_opt[t] = (float)u;
        double np = p + DI_DT * v;
        v = v + DI_DT * u;
        p = np;
    }
    if (K0) {
        K0[0] = -K[0][0];
        K0[1] = -K[0][1];
    }
    return x0[0] * (P[0][0] * x0[0] + P[0][1] * x0[1]) + x0[1] * (P[1][0] * x0[0] + P[1][1] * x0[1]);
}

static inline double di_optimum(const float *x0, int H) { return di_lqr(x0, H, NULL, NULL); }

static inline mb_dynamics di_dyn(void) {
    return (mb_dynamics){.known = &di_model, .obs_dim = 2, .act_dim = 1, .act_low = di_low, .act_high = di_high};
}

#endif
