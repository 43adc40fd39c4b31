/* test_ilqr.c: iLQR through mb_plan (core/plan/ilqr.c, with lqr.c,
 * reward_quad.c, model_step.c and the ensemble's Jacobians).
 *   - on a linear system with a quadratic declared reward, one iteration
 *     lands on the LQR optimum (an independent Riccati recursion written
 *     here, in double, as in test_planner) to 1e-3 of the control range;
 *   - the gains K_0 equal the Riccati recursion's first gain;
 *   - it swings the known pendulum up in closed loop, on the known model's
 *     reward (derivatives by finite differences) and on declared terms;
 *   - through an ensemble (mean dynamics, Jacobians by backpropagation,
 *     the reward head's Hessian by differences) the plan is at least as
 *     good as its cold start's nominal, under the model itself;
 *   - configuration errors (discrete actions);
 *   - the deadline (mb_plan_ctl.stop, plan_stop.h): cut at each of its polls
 *     (starts, iterations, Hessian blocks, line searches, the final
 *     evaluation) it answers the best start so far, predicted return = its
 *     cost under the model, never better than the whole call's; through
 *     an ensemble with the reward head (Hessian blocks polled) too.
 * Not for: the recursion itself (test_lqr). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"
#include "plan_stop.h"

#include "double_integrator.h"

START_TEST(test_linear_one_iteration_is_lqr) {
    const int H = 20;
    mb_dynamics dyn = {.known = &di_model_declared, .obs_dim = 2, .act_dim = 1, .act_low = di_low,
                       .act_high = di_high};
    mb_reward_spec rw;
    di_reward(&rw);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = H;
    cfg.iterations = 1;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    const float x0[2] = {1.0f, -0.5f};
    float u_opt[20], plan[20], a;
    double K0[2];
    di_lqr(x0, H, u_opt, K0);
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    char err[160];
    mb_plan_info info;
    ck_assert_msg(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, plan, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    for (int t = 0; t < H; t++) {
        char lab[48];
        snprintf(lab, sizeof lab, "u[%d] after one iteration", t);
        MB_ASSERT_CLOSE(lab, plan[t], u_opt[t], 1e-3 * 5.0);
    }
    float K[2], xn[2];
    ck_assert_int_eq(mb_plan_ws_gains(ws, K, xn), 1);
    MB_ASSERT_CLOSE("K_0[p]", K[0], K0[0], 1e-3 * fabs(K0[0]) + 1e-3);
    MB_ASSERT_CLOSE("K_0[v]", K[1], K0[1], 1e-3 * fabs(K0[1]) + 1e-3);
    MB_ASSERT_CLOSE("nominal x_0", xn[0], x0[0], 0.0);
    /* more iterations stay there */
    cfg.iterations = 5;
    ck_assert(mb_plan_ws_fits(ws, &cfg, &dyn));
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, plan, &info, err, sizeof err), MB_OK);
    for (int t = 0; t < H; t++) MB_ASSERT_CLOSE("u after 5 iterations", plan[t], u_opt[t], 5e-3);
    mb_plan_ws_free(ws);
}
END_TEST

/* Closed loop on the exact pendulum; returns the return over 200 steps and
 * the count of upright steps in the last 50. */
static double pendulum_episode(const mb_planner_cfg *cfg, const mb_reward_spec *rw, double th,
                               double thdot, uint64_t seed, int *up) {
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics dyn = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                       .act_high = pm->act_high};
    mb_plan_ws *ws = mb_plan_ws_new(cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_plan_state state;
    char err[160];
    ck_assert_int_eq(mb_plan_state_init(&state, cfg, 1, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    float obs[3] = {(float)cos(th), (float)sin(th), (float)thdot}, next[3], a, r;
    double ret = 0.0;
    *up = 0;
    for (int t = 0; t < 200; t++) {
        mb_plan_state_shift(&state, pm->act_low, pm->act_high);
        ck_assert_msg(mb_plan(cfg, &dyn, rw, obs, &state, &rng, ws, NULL, &a, NULL, NULL, err,
                              sizeof err) == MB_OK, "%s", err);
        ck_assert(a >= -2.0f && a <= 2.0f);
        pm->step(1, obs, &a, next, &r);
        ret += r;
        memcpy(obs, next, sizeof obs);
        if (t >= 150 && obs[0] > 0.95f) (*up)++;
    }
    mb_plan_state_free(&state);
    mb_plan_ws_free(ws);
    return ret;
}

/* From hanging still (test_planner explains why -400 is the bar from
 * there) and from two of Gymnasium's random starts. */
START_TEST(test_pendulum_swing_up_known_reward) {
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = 40;
    cfg.iterations = 5;
    int up;
    double ret = pendulum_episode(&cfg, NULL, M_PI, 0.0, 1, &up);
    fprintf(stderr, "ilqr pendulum (known reward) from hanging: %.1f, upright %d/50\n", ret, up);
    ck_assert_msg(ret > -400.0, "return %g", ret);
    ck_assert_int_eq(up, 50);
    ret = pendulum_episode(&cfg, NULL, 2.0, -0.7, 2, &up);
    fprintf(stderr, "ilqr pendulum (known reward) from th 2.0: %.1f, upright %d/50\n", ret, up);
    ck_assert_msg(ret > -400.0, "return %g", ret);
    ck_assert_int_eq(up, 50);
}
END_TEST

/* Declared terms in the observation (cos, sin, thdot): -(1 - cos)^2 -
 * sin^2 - 0.1 thdot^2 - 0.001 u^2, i.e. the distance to upright. */
START_TEST(test_pendulum_swing_up_declared_terms) {
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 3;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2,
                                   .idx = {0, 1}, .target = {1, 0}};
    rw.terms[1] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 0.1f, .n_idx = 1,
                                   .idx = {2}, .target = {0}};
    rw.terms[2] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.001f};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = 40;
    cfg.iterations = 5;
    int up;
    double ret = pendulum_episode(&cfg, &rw, -2.5, 0.5, 4, &up);
    fprintf(stderr, "ilqr pendulum (declared terms) from th -2.5: %.1f, upright %d/50\n", ret, up);
    ck_assert_msg(ret > -400.0, "return %g", ret);
    ck_assert_int_eq(up, 50);
}
END_TEST

START_TEST(test_discrete_refused) {
    mb_dynamics dyn = {.known = &di_model_declared, .obs_dim = 2, .act_dim = 1, .act_low = di_low,
                       .act_high = di_high, .discrete = 1};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    ck_assert_ptr_null(mb_plan_ws_new(&cfg, &dyn));
    dyn.discrete = 0;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    dyn.discrete = 1;
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    float x0[2] = {0, 0}, a;
    char err[200] = "";
    ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err),
                     MB_EINVAL);
    ck_assert_msg(strstr(err, "continuous") != NULL, "%s", err);
    mb_plan_ws_free(ws);
}
END_TEST

/* Through a random ensemble with a reward head, declared terms on top:
 * the plan scores at least as well as the nominal it started from (under
 * the model's mean dynamics), the gains are finite, and the same seed
 * gives the same plan. */
START_TEST(test_ensemble_improves) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 3;
    s.act_dim = 2;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 32;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 5, err, sizeof err), MB_OK);
    float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 3, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 3,
                                   .idx = {0, 1, 2}, .target = {0.5f, -0.5f, 0.2f}};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = 10;
    cfg.iterations = 8;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    float x0[3] = {0.1f, 0.2f, -0.3f}, a[2], plan[20], plan2[20];
    mb_rng rng;
    mb_rng_seed(&rng, 9);
    mb_plan_info info, info0;
    ck_assert_msg(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, a, plan, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    float K[6], xn[3];
    ck_assert_int_eq(mb_plan_ws_gains(ws, K, xn), 1);
    for (int i = 0; i < 6; i++) ck_assert(isfinite(K[i]));
    /* the cold start's nominal: zero iterations are not allowed, so score
     * the same seed's start by a 1-iteration run that can only improve */
    mb_planner_cfg c1 = cfg;
    c1.iterations = 1;
    mb_rng_seed(&rng, 9);
    ck_assert_int_eq(mb_plan(&c1, &dyn, &rw, x0, NULL, &rng, ws, NULL, a, plan2, &info0, err, sizeof err), MB_OK);
    fprintf(stderr, "ilqr ensemble: 1 iteration %.5f, 8 iterations %.5f (model rows %.0f)\n",
            info0.predicted_return, info.predicted_return, info.model_rows);
    ck_assert(info.predicted_return >= info0.predicted_return - 1e-5f);
    ck_assert(info.model_rows > 0);
    mb_rng_seed(&rng, 9);
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, a, plan2, NULL, err, sizeof err), MB_OK);
    for (int i = 0; i < 20; i++) ck_assert_float_eq(plan[i], plan2[i]);
    mb_plan_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

/* A cut plan on the double integrator: its predicted return is its return
 * (the method's own estimate or an evaluation: both the exact model here),
 * and with `prefix` (the cut call ran a prefix of the whole call's
 * monotone search) it is no better than the whole call's plan. */
typedef struct {
    const float *x0;
    int H;
    double full_cost; /* < 0: no prefix check */
} di_stop_check;
static void check_di_stop(void *ctx, const float *plan, const mb_plan_info *info) {
    const di_stop_check *c = ctx;
    double cost = di_cost(c->x0, plan, c->H);
    MB_ASSERT_CLOSE("predicted return of a cut plan = -its cost", info->predicted_return, -cost,
                    1e-4 * cost + 1e-6);
    if (c->full_cost >= 0)
        ck_assert_msg(cost >= c->full_cost * (1 - 1e-6) - 1e-9, "a cut plan (cost %.9g) beats the whole call (%.9g)",
                      cost, c->full_cost);
}

START_TEST(test_stop) {
    const int H = 20;
    mb_dynamics dyn = {.known = &di_model_declared, .obs_dim = 2, .act_dim = 1, .act_low = di_low,
                       .act_high = di_high};
    mb_reward_spec rw;
    di_reward(&rw);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = H;
    cfg.population = 4; /* starts: warm/middle, low, high, random */
    cfg.iterations = 6;
    const float x0[2] = {3.0f, -2.0f};
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 11);
    float plan[20], a;
    char err[200];
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, plan, NULL, err, sizeof err), MB_OK);
    mb_plan_ws_free(ws);
    di_stop_check c = {.x0 = x0, .H = H, .full_cost = di_cost(x0, plan, H)};
    ps_result r;
    ps_sweep(&cfg, &dyn, &rw, x0, 11, 200, check_di_stop, &c, &r);
    fprintf(stderr, "ilqr: %d polls, %d cuts, %d truncated, the first answer at %d\n", r.polls, r.cuts,
            r.truncated, r.first_answer);
    ck_assert_int_eq(r.first_answer, 1); /* the first start's nominal rolls out after one poll */
    ck_assert_int_eq(r.truncated, r.cuts);
    /* through an ensemble with the reward head: the linearisation's
     * Hessian blocks poll too */
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 3;
    s.act_dim = 2;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 16;
    s.learn_reward = 1;
    mb_ensemble e;
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 5, err, sizeof err), MB_OK);
    float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics ens = {.ens = &e, .obs_dim = 3, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec erw;
    mb_reward_spec_default(&erw);
    erw.use_learned = 1;
    mb_planner_cfg_default(&cfg, MB_PLAN_ILQR);
    cfg.horizon = 8;
    cfg.iterations = 4;
    const float e0[3] = {0.1f, 0.2f, -0.3f};
    ps_sweep(&cfg, &ens, &erw, e0, 9, 60, NULL, NULL, &r);
    fprintf(stderr, "ilqr ensemble: %d polls, %d cuts, %d truncated\n", r.polls, r.cuts, r.truncated);
    ck_assert_int_eq(r.truncated, r.cuts);
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ilqr");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_linear_one_iteration_is_lqr);
    tcase_add_test(tc, test_pendulum_swing_up_known_reward);
    tcase_add_test(tc, test_pendulum_swing_up_declared_terms);
    tcase_add_test(tc, test_discrete_refused);
    tcase_add_test(tc, test_ensemble_improves);
    tcase_add_test(tc, test_stop);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
