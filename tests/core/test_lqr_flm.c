/* test_lqr_flm.c: LQR with fitted local linear models
 * (core/plan/lqr_flm.c) through mb_plan.
 *   - on the double integrator (linear: the regression recovers it from
 *     the samples) with a loose KL bound it reaches the Riccati optimum
 *     within 1%;
 *   - a tight KL bound keeps the controller near the old one: the plan
 *     moves less from the initial controls, monotonically in kl_step;
 *   - it brings the known pendulum from 1.2 rad up and holds it, in closed
 *     loop on declared terms (a local method: from hanging it swings up in
 *     some configurations only, see docs/RESULTS.md);
 *   - through an ensemble (a black box: one member per sample) it plans
 *     finite, deterministic plans;
 *   - the deadline (mb_plan_ctl.stop, plan_stop.h): cut at each of its polls
 *     (iterations, sampling steps, bisection steps, the final evaluation)
 *     it answers the last controller updated, predicted return = the
 *     plan's return under the model, or nothing before its first samples.
 * Not for: the recursion (test_lqr). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"
#include "plan_stop.h"

#include "double_integrator.h"

static void plan_di(float kl_step, int iters, float *plan) {
    mb_dynamics dyn = {.known = &di_model_declared, .obs_dim = 2, .act_dim = 1, .act_low = di_low,
                       .act_high = di_high};
    mb_reward_spec rw;
    di_reward(&rw);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_LQR_FLM);
    cfg.horizon = 20;
    cfg.iterations = iters;
    cfg.kl_step = kl_step;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 2);
    const float x0[2] = {1.0f, -0.5f};
    float a;
    char err[200];
    ck_assert_msg(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, plan, NULL, err, sizeof err) == MB_OK,
                  "%s", err);
    mb_plan_ws_free(ws);
}

START_TEST(test_double_integrator_optimum) {
    const float x0[2] = {1.0f, -0.5f};
    float plan[20];
    plan_di(100.0f, 8, plan);
    double c = di_cost(x0, plan, 20), J = di_optimum(x0, 20);
    fprintf(stderr, "lqr_flm double integrator: cost %.5f, optimum %.5f (+%.3f%%)\n", c, J, 100 * (c / J - 1));
    ck_assert_msg(c >= J * (1 - 1e-5), "below the optimum");
    ck_assert_msg(c <= J * 1.01, "cost %g vs optimum %g", c, J);
}
END_TEST

/* The plan's distance from the initial controls (0) grows with kl_step. */
START_TEST(test_kl_bound_limits_the_step) {
    const float steps[3] = {0.001f, 0.05f, 100.0f};
    double moved[3];
    for (int i = 0; i < 3; i++) {
        float plan[20];
        plan_di(steps[i], 1, plan);
        double s = 0;
        for (int t = 0; t < 20; t++) s += plan[t] * plan[t];
        moved[i] = sqrt(s);
        fprintf(stderr, "lqr_flm kl_step %g: |plan| %.4f\n", steps[i], moved[i]);
    }
    ck_assert(moved[0] < moved[1] && moved[1] < moved[2]);
    ck_assert(moved[0] < 0.2 * moved[2]);
}
END_TEST

START_TEST(test_pendulum_declared_terms) {
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics dyn = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                       .act_high = pm->act_high};
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
    mb_planner_cfg_default(&cfg, MB_PLAN_LQR_FLM);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_plan_state state;
    char err[200];
    ck_assert_int_eq(mb_plan_state_init(&state, &cfg, 1, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    float obs[3] = {(float)cos(1.2), (float)sin(1.2), 0.5f}, next[3], a, r;
    double ret = 0;
    int up = 0;
    for (int t = 0; t < 200; t++) {
        mb_plan_state_shift(&state, pm->act_low, pm->act_high);
        ck_assert_msg(mb_plan(&cfg, &dyn, &rw, obs, &state, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err) == MB_OK,
                      "%s", err);
        pm->step(1, obs, &a, next, &r);
        ret += r;
        memcpy(obs, next, sizeof obs);
        if (t >= 150 && obs[0] > 0.95f) up++;
    }
    fprintf(stderr, "lqr_flm pendulum from th 1.2: return %.1f, upright %d/50\n", ret, up);
    ck_assert_msg(ret > -200.0, "return %g", ret);
    ck_assert_int_eq(up, 50);
    mb_plan_state_free(&state);
    mb_plan_ws_free(ws);
}
END_TEST

START_TEST(test_ensemble_black_box) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 3;
    s.act_dim = 2;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 16;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 5, err, sizeof err), MB_OK);
    float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 3, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_LQR_FLM);
    cfg.horizon = 8;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    float x0[3] = {0.1f, 0.2f, -0.3f}, a[2], p1[16], p2[16];
    mb_plan_info info;
    mb_rng rng;
    mb_rng_seed(&rng, 4);
    ck_assert_msg(mb_plan(&cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, a, p1, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    for (int i = 0; i < 16; i++) ck_assert(p1[i] >= -1.0f && p1[i] <= 1.0f);
    ck_assert(info.model_rows > 0);
    mb_rng_seed(&rng, 4);
    ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, a, p2, NULL, err, sizeof err), MB_OK);
    ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
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
    const int H = 12;
    mb_dynamics dyn = {.known = &di_model_declared, .obs_dim = 2, .act_dim = 1, .act_low = di_low,
                       .act_high = di_high};
    mb_reward_spec rw;
    di_reward(&rw);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_LQR_FLM);
    cfg.horizon = H;
    cfg.iterations = 3;
    const float x0[2] = {1.0f, -0.5f};
    di_stop_check c = {.x0 = x0, .H = H, .full_cost = -1}; /* not monotone: no prefix check */
    ps_result r;
    ps_sweep(&cfg, &dyn, &rw, x0, 2, 120, check_di_stop, &c, &r);
    fprintf(stderr, "lqr_flm: %d polls, %d cuts, %d truncated, the first answer at %d\n", r.polls, r.cuts,
            r.truncated, r.first_answer);
    /* per iteration: 1 + (H - 1) sampling steps + 1 + 24 bisection steps
     * (the bound binds here: the bisection runs); then the evaluation's H */
    ck_assert_int_eq(r.polls, 3 * (H + 25) + H);
    ck_assert_int_eq(r.first_answer, H); /* the first samples finished */
    /* through an ensemble */
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 3;
    s.act_dim = 2;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 16;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 5, err, sizeof err), MB_OK);
    float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics ens = {.ens = &e, .obs_dim = 3, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_planner_cfg_default(&cfg, MB_PLAN_LQR_FLM);
    cfg.horizon = 8;
    cfg.iterations = 2;
    const float e0[3] = {0.1f, 0.2f, -0.3f};
    ps_sweep(&cfg, &ens, NULL, e0, 4, 60, NULL, NULL, &r);
    ck_assert_int_gt(r.truncated, 0);
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("lqr_flm");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_double_integrator_optimum);
    tcase_add_test(tc, test_kl_bound_limits_the_step);
    tcase_add_test(tc, test_pendulum_declared_terms);
    tcase_add_test(tc, test_ensemble_black_box);
    tcase_add_test(tc, test_stop);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
