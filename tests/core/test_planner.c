/* test_planner.c: the planners over known dynamics (core/plan/planner.c,
 * core/plan/propagate.c): CEM against the closed-form finite-horizon LQR
 * optimum, pendulum swing-up in closed loop, CEM vs random shooting at equal
 * model evaluations, bounds, warm start, determinism, discount and config
 * checks. The ensemble side is in test_planner_ensemble.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"

/* ---- a double integrator with quadratic cost (test-local known model) ----
 * x = (p, v), u scalar: p' = p + dt v, v' = v + dt u;
 * reward = -(p'^2 + v'^2 + R u^2) (of the next state). */
#include "double_integrator.h"

static mb_planner_cfg cfg_for(mb_plan_method m, int H, int N, int elites, int iters) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, m);
    c.horizon = H;
    c.population = N;
    c.elites = elites;
    c.iterations = iters;
    c.particles = 1;
    return c;
}

/* Plans once from x0 and returns the plan's true cost. */
static double plan_di(const mb_planner_cfg *cfg, const float *x0, uint64_t seed, float *plan,
                      mb_plan_info *info) {
    mb_dynamics dyn = di_dyn();
    mb_plan_ws *ws = mb_plan_ws_new(cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    float action[1];
    char err[160] = "";
    mb_status st = mb_plan(cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, action, plan, info, err,
                           sizeof err);
    ck_assert_msg(st == MB_OK, "mb_plan: %s", err);
    ck_assert_float_eq(action[0], plan[0]);
    mb_plan_ws_free(ws);
    return di_cost(x0, plan, cfg->horizon);
}

START_TEST(test_cem_matches_lqr) {
    const int H = 20;
    const float x0[2] = {1.0f, 0.0f};
    float u_opt[H], plan[H];
    double J = di_lqr(x0, H, u_opt, NULL);
    /* The comparison means something only if the bounds do not bind and
     * the recursion is right: the LQR controls' own cost is J. */
    for (int t = 0; t < H; t++) ck_assert(fabsf(u_opt[t]) < 5.0f);
    MB_ASSERT_CLOSE("Riccati J* vs rollout of the LQR controls", di_cost(x0, u_opt, H), J, 1e-6 * J);
    mb_planner_cfg cfg = cfg_for(MB_PLAN_CEM, H, 400, 40, 8);
    mb_plan_info info;
    double c = plan_di(&cfg, x0, 7, plan, &info);
    ck_assert_msg(c >= J * (1 - 1e-6), "CEM %g beat the LQR optimum %g: LQR is wrong", c, J);
    ck_assert_msg(c <= J * 1.03, "CEM cost %g vs LQR %g (%.2f%%)", c, J, 100 * (c / J - 1));
    MB_ASSERT_CLOSE("predicted return = -cost of the plan", info.predicted_return, -c, 1e-4 * c);
    MB_ASSERT_CLOSE("known dynamics: no spread", info.return_std, 0.0, 1e-6);
    MB_ASSERT_CLOSE("model rows: iterations x population x H + the final mean",
                    info.model_rows, 8.0 * 400 * H + H, 0.0);
    MB_ASSERT_CLOSE("no ensemble FLOPs", info.flops, 0.0, 0.0);
    fprintf(stderr, "LQR J* = %.5f, CEM %.5f (+%.2f%%)\n", J, c, 100 * (c / J - 1));
}
END_TEST

START_TEST(test_mppi_icem_near_lqr) {
    const int H = 20;
    const float x0[2] = {1.0f, -0.5f};
    float u_opt[H], plan[H];
    double J = di_lqr(x0, H, u_opt, NULL);
    mb_planner_cfg m = cfg_for(MB_PLAN_MPPI, H, 400, 1, 8);
    m.kappa = 50.0f;
    m.sigma = 0.2f;
    m.beta = 0.7f;
    double cm = plan_di(&m, x0, 3, plan, NULL);
    mb_planner_cfg ic = cfg_for(MB_PLAN_ICEM, H, 400, 40, 8);
    double ci = plan_di(&ic, x0, 3, plan, NULL);
    fprintf(stderr, "LQR J* = %.5f, MPPI %.5f, iCEM %.5f\n", J, cm, ci);
    ck_assert_msg(cm >= J * (1 - 1e-6) && cm <= J * 1.10, "MPPI %g vs LQR %g", cm, J);
    ck_assert_msg(ci >= J * (1 - 1e-6) && ci <= J * 1.10, "iCEM %g vs LQR %g", ci, J);
}
END_TEST

START_TEST(test_cem_beats_random_equal_evals) {
    /* Same model evaluations: CEM 5 x 100 candidates vs random 500. */
    const int H = 20;
    const float x0[2] = {1.0f, 0.0f};
    float u_opt[H], plan[H];
    double J = di_lqr(x0, H, u_opt, NULL);
    for (uint64_t seed = 1; seed <= 4; seed++) {
        mb_planner_cfg cem = cfg_for(MB_PLAN_CEM, H, 100, 10, 5);
        mb_planner_cfg rnd = cfg_for(MB_PLAN_RANDOM, H, 500, 1, 1);
        mb_plan_info ic, ir;
        double cc = plan_di(&cem, x0, seed, plan, &ic);
        double cr = plan_di(&rnd, x0, seed, plan, &ir);
        /* CEM's extra evaluation of its final mean is one candidate. */
        ck_assert(ic.model_rows <= ir.model_rows + H);
        ck_assert_msg(cc < 0.8 * cr, "seed %d: CEM %g vs random %g (LQR %g)", (int)seed, cc, cr, J);
    }
}
END_TEST

/* One Pendulum-v1 episode of closed-loop MPC with warm start; returns the
 * return over 200 steps and counts upright steps among the last 50. */
static double pendulum_episode(const mb_planner_cfg *cfg, mb_plan_ws *ws, mb_rng *rng, double th,
                               double thdot, int *upright_end) {
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics dyn = {.known = pm, .obs_dim = 3, .act_dim = 1,
                       .act_low = pm->act_low, .act_high = pm->act_high};
    mb_plan_state state;
    char err[160];
    ck_assert_int_eq(mb_plan_state_init(&state, cfg, 1, err, sizeof err), MB_OK);
    float obs[3] = {(float)cos(th), (float)sin(th), (float)thdot}, next[3], a, r;
    double ret = 0.0;
    *upright_end = 0;
    for (int t = 0; t < 200; t++) {
        mb_plan_state_shift(&state, pm->act_low, pm->act_high);
        ck_assert_int_eq(mb_plan(cfg, &dyn, NULL, obs, &state, rng, ws, NULL, &a, NULL, NULL, err,
                                 sizeof err), MB_OK);
        ck_assert(a >= -2.0f && a <= 2.0f);
        pm->step(1, obs, &a, next, &r);
        ret += r;
        memcpy(obs, next, sizeof obs);
        if (t >= 150 && obs[0] > 0.95f) (*upright_end)++;
    }
    mb_plan_state_free(&state);
    return ret;
}

/* Closed-loop MPC over the exact Pendulum-v1 dynamics.
 * From hanging at rest the issue asked for a return better than -200; that
 * is physically out of reach: the torque (3u <= 6) is well below gravity
 * (15 sin th), so the first ~20 steps near the bottom alone cost ~180, and
 * an exhaustive search over bang-bang swing-ups with up to 4 switches
 * followed by a PD balance (Python, offline) found -306 at best. So: from
 * hanging, it must swing up, stay upright for the last 50 steps and beat
 * -400; from Gymnasium's reset distribution (th ~ U(-pi, pi), thdot ~
 * U(-1, 1)) the mean return must beat -200 (a good policy gets ~ -150). */
START_TEST(test_pendulum_swing_up) {
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics dyn = {.known = pm, .obs_dim = 3, .act_dim = 1,
                       .act_low = pm->act_low, .act_high = pm->act_high};
    int san = mb_test_sanitized();
    mb_planner_cfg cfg = cfg_for(MB_PLAN_CEM, 30, san ? 150 : 200, san ? 15 : 20, 3);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 11);
    int up;
    double ret = pendulum_episode(&cfg, ws, &rng, M_PI, 0.0, &up);
    fprintf(stderr, "pendulum from hanging: return %.1f, upright %d of the last 50 steps\n", ret, up);
    ck_assert_msg(ret > -400.0, "return from hanging %g", ret);
    ck_assert_int_eq(up, 50);
    int episodes = san ? 2 : 4;
    double sum = 0.0;
    for (int ep = 0; ep < episodes; ep++) {
        double th = -M_PI + 2.0 * M_PI * mb_rng_uniform(&rng), thd = -1.0 + 2.0 * mb_rng_uniform(&rng);
        double r = pendulum_episode(&cfg, ws, &rng, th, thd, &up);
        fprintf(stderr, "pendulum th0 %.2f thdot0 %.2f: return %.1f, upright %d/50\n", th, thd, r, up);
        ck_assert_int_eq(up, 50);
        sum += r;
    }
    ck_assert_msg(sum / episodes > -200.0, "mean return %g", sum / episodes);
    mb_plan_ws_free(ws);
}
END_TEST

/* The cartpole swing-up over its exact dynamics, from hanging at rest:
 * PETS reaches ~180 of 200 with a learned model; the yardstick with the
 * true model must be at least 150 and end upright. */
START_TEST(test_cartpole_swing_up) {
    const mb_known_model *cm = &mb_known_cartpole_swingup;
    mb_dynamics dyn = {.known = cm, .obs_dim = 4, .act_dim = 1,
                       .act_low = cm->act_low, .act_high = cm->act_high};
    int san = mb_test_sanitized();
    mb_planner_cfg cfg = cfg_for(MB_PLAN_CEM, 25, san ? 120 : 200, san ? 12 : 20, 3);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    mb_plan_state state;
    char err[160];
    ck_assert_int_eq(mb_plan_state_init(&state, &cfg, 1, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, 2);
    float obs[4] = {0, 0, 0, 0}, next[4], a, r;
    double ret = 0.0;
    for (int t = 0; t < 200; t++) {
        mb_plan_state_shift(&state, cm->act_low, cm->act_high);
        ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, obs, &state, &rng, ws, NULL, &a, NULL, NULL, err,
                                 sizeof err), MB_OK);
        cm->step(1, obs, &a, next, &r);
        ret += r;
        memcpy(obs, next, sizeof obs);
    }
    fprintf(stderr, "cartpole swing-up: return %.1f over 200 steps, final th %.3f\n", ret, obs[1]);
    ck_assert_msg(ret > 150.0, "return %g", ret);
    ck_assert_msg(cos(obs[1]) < -0.95, "not upright at the end: th = %g", obs[1]);
    mb_plan_state_free(&state);
    mb_plan_ws_free(ws);
}
END_TEST

/* s' = s + a (3 dims), reward = sum s: every planner wants the upper bound. */
static void push_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n * 3; i++) next[i] = obs[i] + act[i];
    if (reward)
        for (size_t i = 0; i < n; i++) reward[i] = next[3 * i] + next[3 * i + 1] + next[3 * i + 2];
}
static const mb_known_model push_model = {.name = "push", .obs_dim = 3, .act_dim = 3,
                                          .act_low = {-1, -0.3f, 2}, .act_high = {1, 1.7f, 2.5f},
                                          .step = push_step};

START_TEST(test_bounds_respected) {
    mb_dynamics dyn = {.known = &push_model, .obs_dim = 3, .act_dim = 3,
                       .act_low = push_model.act_low, .act_high = push_model.act_high};
    const float obs[3] = {0, 0, 0};
    for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++) {
        mb_planner_cfg cfg = cfg_for((mb_plan_method)m, 8, 64, 8, 3);
        cfg.init_std = 3.0f; /* wide sampling: clipping must do the work */
        cfg.sigma = 3.0f;
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws);
        mb_plan_state state;
        char err[160];
        ck_assert_int_eq(mb_plan_state_init(&state, &cfg, 3, err, sizeof err), MB_OK);
        mb_rng rng;
        mb_rng_seed(&rng, 5);
        float plan[8 * 3], a[3];
        for (int call = 0; call < 3; call++) {
            mb_plan_state_shift(&state, dyn.act_low, dyn.act_high);
            ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, obs, &state, &rng, ws, NULL, a, plan, NULL,
                                     err, sizeof err), MB_OK);
            for (int t = 0; t < 8; t++)
                for (int j = 0; j < 3; j++) {
                    float v = plan[t * 3 + j];
                    ck_assert_msg(v >= dyn.act_low[j] && v <= dyn.act_high[j],
                                  "%s: plan[%d][%d] = %g outside [%g, %g]",
                                  mb_plan_method_name((mb_plan_method)m), t, j, v, dyn.act_low[j],
                                  dyn.act_high[j]);
                }
            for (int j = 0; j < 3 * 8; j++)
                ck_assert(state.mean[j] >= dyn.act_low[j % 3] && state.mean[j] <= dyn.act_high[j % 3]);
        }
        /* The reward pushes every entry to its upper bound. */
        if (m != MB_PLAN_RANDOM)
            for (int j = 0; j < 3; j++)
                ck_assert_msg(a[j] > 0.5f * (dyn.act_high[j] + dyn.act_low[j]),
                              "%s: a[%d] = %g", mb_plan_method_name((mb_plan_method)m), j, a[j]);
        mb_plan_state_free(&state);
        mb_plan_ws_free(ws);
    }
}
END_TEST

START_TEST(test_warm_start_shift) {
    mb_planner_cfg cfg = cfg_for(MB_PLAN_ICEM, 4, 20, 10, 2);
    cfg.keep_elites = 0.3f;
    mb_plan_state s;
    char err[160];
    ck_assert_int_eq(mb_plan_state_init(&s, &cfg, 2, err, sizeof err), MB_OK);
    ck_assert_int_eq(s.valid, 0);
    ck_assert_int_eq(s.max_kept, 3);
    const float lo[2] = {-1, 0}, hi[2] = {3, 1};
    for (int i = 0; i < 8; i++) s.mean[i] = (float)i;
    for (int i = 0; i < 3 * 8; i++) s.kept[i] = 100.0f + i;
    s.n_kept = 2;
    mb_plan_state_shift(&s, lo, hi); /* not valid: untouched */
    ck_assert_float_eq(s.mean[0], 0.0f);
    s.valid = 1;
    mb_plan_state_shift(&s, lo, hi);
    const float want[8] = {2, 3, 4, 5, 6, 7, 1.0f, 0.5f};
    for (int i = 0; i < 8; i++) MB_ASSERT_CLOSE("shifted mean", s.mean[i], want[i], 0.0);
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 6; i++)
            MB_ASSERT_CLOSE("shifted kept elite", s.kept[k * 8 + i], 100.0f + k * 8 + i + 2, 0.0);
    MB_ASSERT_CLOSE("kept elite refilled", s.kept[6], 1.0, 0.0);
    MB_ASSERT_CLOSE("third slot unused: untouched", s.kept[16], 116.0, 0.0);
    mb_plan_state_free(&s);

    /* A plan writes its mean into the state; the next call starts from it
     * shifted: with 1 iteration and alpha 1 nothing moves the mean, so the
     * second plan is exactly the shifted first one. */
    mb_dynamics dyn = di_dyn();
    mb_planner_cfg c2 = cfg_for(MB_PLAN_CEM, 10, 50, 5, 3);
    ck_assert_int_eq(mb_plan_state_init(&s, &c2, 1, err, sizeof err), MB_OK);
    mb_plan_ws *ws = mb_plan_ws_new(&c2, &dyn);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    const float x0[2] = {1, 0};
    float p1[10], p2[10], a;
    ck_assert_int_eq(mb_plan(&c2, &dyn, NULL, x0, &s, &rng, ws, NULL, &a, p1, NULL, err, sizeof err), MB_OK);
    ck_assert_int_eq(s.valid, 1);
    for (int t = 0; t < 10; t++) ck_assert_float_eq(s.mean[t], p1[t]);
    mb_plan_state_shift(&s, di_low, di_high);
    c2.iterations = 1;
    c2.alpha = 0.999f;
    mb_plan_ws_free(ws);
    ws = mb_plan_ws_new(&c2, &dyn);
    ck_assert_int_eq(mb_plan(&c2, &dyn, NULL, x0, &s, &rng, ws, NULL, &a, p2, NULL, err, sizeof err), MB_OK);
    for (int t = 0; t < 9; t++) MB_ASSERT_CLOSE("warm start = shifted plan", p2[t], p1[t + 1], 0.02);
    MB_ASSERT_CLOSE("refilled last step starts at the middle", p2[9], 0.0, 0.02);
    mb_plan_ws_free(ws);
    mb_plan_state_free(&s);

    /* iCEM hands its kept elites to the state (inside the bounds), and a
     * warm call with them still plans inside the bounds. */
    mb_planner_cfg ci = cfg_for(MB_PLAN_ICEM, 10, 40, 10, 3);
    ck_assert_int_eq(mb_plan_state_init(&s, &ci, 1, err, sizeof err), MB_OK);
    ws = mb_plan_ws_new(&ci, &dyn);
    ck_assert_int_eq(mb_plan(&ci, &dyn, NULL, x0, &s, &rng, ws, NULL, &a, p1, NULL, err, sizeof err), MB_OK);
    ck_assert_int_eq(s.n_kept, s.max_kept);
    ck_assert_int_eq(s.max_kept, 3);
    for (int i = 0; i < s.n_kept * 10; i++) ck_assert(s.kept[i] >= -5.0f && s.kept[i] <= 5.0f);
    float kept0[10];
    memcpy(kept0, s.kept, sizeof kept0);
    mb_plan_state_shift(&s, di_low, di_high);
    for (int t = 0; t < 9; t++) ck_assert_float_eq(s.kept[t], kept0[t + 1]);
    ck_assert_int_eq(mb_plan(&ci, &dyn, NULL, x0, &s, &rng, ws, NULL, &a, p2, NULL, err, sizeof err), MB_OK);
    for (int t = 0; t < 10; t++) ck_assert(p2[t] >= -5.0f && p2[t] <= 5.0f);
    mb_plan_ws_free(ws);
    mb_plan_state_free(&s);
}
END_TEST

START_TEST(test_same_seed_same_plan) {
    mb_dynamics dyn = di_dyn();
    const float x0[2] = {0.5f, 0.2f};
    mb_pool *pool = mb_pool_new(2);
    ck_assert_ptr_nonnull(pool);
    for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++) {
        mb_planner_cfg cfg = cfg_for((mb_plan_method)m, 12, 1100, 20, 2);
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        float p[3][12], a;
        char err[160];
        for (int k = 0; k < 3; k++) {
            mb_rng rng;
            mb_rng_seed(&rng, k == 2 ? 43 : 42);
            ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, x0, NULL, &rng, ws, k == 1 ? pool : NULL, &a,
                                     p[k], NULL, err, sizeof err), MB_OK);
        }
        ck_assert_msg(!memcmp(p[0], p[1], sizeof p[0]), "%s: same seed, serial vs pool differ",
                      mb_plan_method_name((mb_plan_method)m));
        ck_assert_msg(memcmp(p[0], p[2], sizeof p[0]), "%s: other seed, same plan",
                      mb_plan_method_name((mb_plan_method)m));
        mb_plan_ws_free(ws);
    }
    mb_pool_free(pool);
}
END_TEST

/* mb_plan_ctl.stop: polled once per evaluation and between its steps (H
 * polls per evaluation); stopping before any evaluation finished is
 * MB_ECANCELED with the state untouched; stopping later answers the best
 * fully evaluated plan with truncated = 1; never stopping is mb_plan. */
typedef struct {
    int polls, stop_at; /* stop when polls reaches stop_at (-1: never) */
} stop_counter;
static int stop_after(void *ctx) {
    stop_counter *c = ctx;
    return c->stop_at >= 0 && c->polls++ >= c->stop_at;
}

START_TEST(test_stop_truncates) {
    mb_dynamics dyn = di_dyn();
    const float x0[2] = {0.5f, 0.2f};
    const int H = 9;
    for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++) {
        mb_planner_cfg cfg = cfg_for((mb_plan_method)m, H, 200, 20, 4);
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws);
        mb_plan_state st;
        char err[200];
        ck_assert_int_eq(mb_plan_state_init(&st, &cfg, 1, err, sizeof err), MB_OK);
        const char *name = mb_plan_method_name(cfg.method);
        /* the full call, plain and under a ctl that never stops */
        float full[H], again[H], a;
        mb_plan_info fi, ai;
        mb_rng rng;
        mb_rng_seed(&rng, 7);
        ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, full, &fi, err, sizeof err), MB_OK);
        ck_assert_int_eq(fi.truncated, 0);
        stop_counter never = {0, -1};
        mb_plan_ctl ctl = {.stop = stop_after, .stop_ctx = &never};
        mb_rng_seed(&rng, 7);
        ck_assert_int_eq(mb_plan_ex(&cfg, &dyn, NULL, x0, NULL, &rng, ws, NULL, &ctl, &a, again, &ai,
                                    err, sizeof err), MB_OK);
        ck_assert_msg(!memcmp(full, again, sizeof full), "%s: a ctl that never stops changed the plan", name);
        ck_assert_int_eq(ai.truncated, 0);
        /* stopped at the first poll: no plan, the state as it was */
        stop_counter first = {0, 0};
        ctl.stop_ctx = &first;
        st.valid = 1;
        st.mean[0] = 0.25f;
        mb_rng_seed(&rng, 7);
        mb_status s = mb_plan_ex(&cfg, &dyn, NULL, x0, &st, &rng, ws, NULL, &ctl, &a, again, &ai, err, sizeof err);
        ck_assert_msg(s == MB_ECANCELED, "%s: stopped at once gave %d", name, (int)s);
        ck_assert_int_eq(st.valid, 1);
        ck_assert_float_eq(st.mean[0], 0.25f);
        st.valid = 0;
        /* stopped inside the second evaluation: the first one's best */
        stop_counter second = {0, H + 2};
        ctl.stop_ctx = &second;
        mb_rng_seed(&rng, 7);
        s = mb_plan_ex(&cfg, &dyn, NULL, x0, &st, &rng, ws, NULL, &ctl, &a, again, &ai, err, sizeof err);
        if (cfg.method == MB_PLAN_RANDOM) { /* one evaluation: it finished */
            ck_assert_int_eq(s, MB_OK);
            ck_assert_int_eq(ai.truncated, 0);
            ck_assert_msg(!memcmp(full, again, sizeof full), "random: one evaluation is the whole call");
        } else {
            ck_assert_msg(s == MB_OK, "%s: %s", name, err);
            ck_assert_msg(ai.truncated == 1, "%s: not marked truncated", name);
            ck_assert_int_eq(second.polls, H + 3); /* polled until it said stop */
            ck_assert_int_eq(st.valid, 1);         /* the session warm-starts from it */
            for (int t = 0; t < H; t++) ck_assert(again[t] >= di_low[0] && again[t] <= di_high[0]);
            ck_assert_float_eq(a, again[0]);
            ck_assert(isfinite(ai.predicted_return));
            /* half the evaluations cost fewer model rows */
            ck_assert(ai.model_rows < fi.model_rows);
            /* iCEM answers the best seen: fewer iterations never do better */
            if (cfg.method == MB_PLAN_ICEM)
                ck_assert_msg(ai.predicted_return <= fi.predicted_return, "iCEM truncated %g > full %g",
                              (double)ai.predicted_return, (double)fi.predicted_return);
            /* a real plan: finite cost on the true dynamics */
            ck_assert(isfinite(di_cost(x0, again, H)));
        }
        mb_plan_state_free(&st);
        mb_plan_ws_free(ws);
    }
}
END_TEST

/* Reward 1 per step (constant term), discount d: return = (1 - d^H)/(1 - d);
 * termination after the state passes 2.5 ends it. */
START_TEST(test_discount_and_termination) {
    mb_dynamics dyn = {.known = &push_model, .obs_dim = 3, .act_dim = 3,
                       .act_low = push_model.act_low, .act_high = push_model.act_high};
    mb_planner_cfg cfg = cfg_for(MB_PLAN_RANDOM, 6, 10, 1, 1);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_CONSTANT, .weight = 1.0f};
    rw.discount = 0.9f;
    const float obs[3] = {0, 0, 0};
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    float a[3];
    mb_plan_info info;
    char err[160];
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, obs, NULL, &rng, ws, NULL, a, NULL, &info, err, sizeof err), MB_OK);
    MB_ASSERT_CLOSE("discounted return", info.predicted_return, (1 - pow(0.9, 6)) / 0.1, 1e-5);
    /* s[2] grows by 2..2.5 per step: alive while s[2] < 5 -> steps 1 and 2
     * are alive (2..2.5, 4..5 may or may not): use a bound every plan
     * crosses at step 3 (s[2] >= 6 > 5.9). */
    rw.n_bounds = 1;
    rw.bounds[0] = (mb_bound){.index = 2, .has_max = 1, .max = 5.9f};
    rw.discount = 1.0f;
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, obs, NULL, &rng, ws, NULL, a, NULL, &info, err, sizeof err), MB_OK);
    /* Steps 1, 2 alive (s2 <= 5), step 3 terminates (no constant), then 0. */
    MB_ASSERT_CLOSE("terminated return", info.predicted_return, 2.0, 1e-6);
    mb_plan_ws_free(ws);
}
END_TEST

START_TEST(test_config_checks) {
    char err[200];
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_CEM);
    ck_assert_int_eq(c.horizon, 30);
    ck_assert_int_eq(c.population, 500);
    ck_assert_int_eq(c.elites, 50);
    ck_assert_int_eq(c.iterations, 5);
    ck_assert_int_eq(c.particles, 20);
    ck_assert_int_eq(c.propagation, MB_PROP_TS_INF);
    ck_assert_int_eq(mb_planner_cfg_check(&c, 5, err, sizeof err), MB_OK);
    mb_planner_cfg b = c;
    b.elites = 501;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(strstr(err, "elites"));
    b = c;
    b.horizon = 0;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(strstr(err, "horizon"));
    b = c;
    b.population = 100000;
    b.particles = 100;
    b.horizon = 1000;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    b = c; /* rows within the limit, work over it */
    b.population = 50000;
    b.particles = 20;
    b.horizon = 300;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(strstr(err, "exceeds"));
    b = c;
    b.alpha = 1.0f;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    b = c;
    b.risk = NAN;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    b = c;
    b.method = (mb_plan_method)9;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    mb_planner_cfg_default(&b, MB_PLAN_MPPI);
    b.beta = 0.0f;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    mb_planner_cfg_default(&b, MB_PLAN_ICEM);
    b.pop_decay = 0.5f;
    ck_assert_int_ne(mb_planner_cfg_check(&b, 5, err, sizeof err), MB_OK);
    /* Names round-trip. */
    for (int m = 0; m < 4; m++) {
        mb_plan_method out;
        ck_assert_int_eq(mb_plan_method_parse(mb_plan_method_name((mb_plan_method)m), &out), 0);
        ck_assert_int_eq(out, m);
        mb_prop po;
        ck_assert_int_eq(mb_prop_parse(mb_prop_name((mb_prop)m), &po), 0);
        ck_assert_int_eq(po, m);
    }
    mb_plan_method out;
    ck_assert_int_ne(mb_plan_method_parse("cma-es", &out), 0);
    ck_assert_int_eq(mb_prop_parse("ts_inf", &(mb_prop){0}), 0);

    /* Workspace fit and mb_plan's argument checks. */
    mb_dynamics dyn = di_dyn();
    mb_planner_cfg k = cfg_for(MB_PLAN_CEM, 10, 50, 5, 2);
    mb_plan_ws *ws = mb_plan_ws_new(&k, &dyn);
    ck_assert_int_eq(mb_plan_ws_fits(ws, &k, &dyn), 1);
    mb_planner_cfg k2 = k;
    k2.horizon = 11;
    ck_assert_int_eq(mb_plan_ws_fits(ws, &k2, &dyn), 0);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    float a, x0[2] = {0, 0};
    ck_assert_int_eq(mb_plan(&k2, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err), MB_ESTATE);
    k2 = k;
    k2.elites = 51;
    ck_assert_int_ne(mb_plan(&k2, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err), MB_OK);
    x0[1] = NAN;
    ck_assert_int_eq(mb_plan(&k, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, NULL, NULL, err, sizeof err), MB_EINVAL);
    mb_plan_ws_free(ws);
    k.horizon = 0;
    ck_assert_ptr_null(mb_plan_ws_new(&k, &dyn));
}
END_TEST

START_TEST(test_predict_known) {
    mb_dynamics dyn = di_dyn();
    const float x0[2] = {1.0f, -1.0f}, u[3] = {1.0f, 2.0f, -1.0f};
    float mean[6], std[6], rm[3], rs[3];
    char err[160];
    ck_assert_int_eq(mb_predict(&dyn, NULL, x0, u, 3, mean, std, rm, rs, err, sizeof err), MB_OK);
    float s[2] = {1.0f, -1.0f}, ns[2], r;
    for (int t = 0; t < 3; t++) {
        di_step_rewarded(1, s, &u[t], ns, &r);
        MB_ASSERT_CLOSE("predict mean p", mean[2 * t], ns[0], 1e-6);
        MB_ASSERT_CLOSE("predict mean v", mean[2 * t + 1], ns[1], 1e-6);
        MB_ASSERT_CLOSE("predict std", std[2 * t], 0.0, 0.0);
        MB_ASSERT_CLOSE("predict reward", rm[t], r, 1e-6);
        MB_ASSERT_CLOSE("predict reward std", rs[t], 0.0, 0.0);
        memcpy(s, ns, sizeof s);
    }
    ck_assert_int_ne(mb_predict(&dyn, NULL, x0, u, 0, mean, std, rm, rs, err, sizeof err), MB_OK);
}
END_TEST

int main(void) {
    Suite *s = suite_create("planner");
    TCase *tc = tcase_create("known");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_cem_matches_lqr);
    tcase_add_test(tc, test_mppi_icem_near_lqr);
    tcase_add_test(tc, test_cem_beats_random_equal_evals);
    tcase_add_test(tc, test_pendulum_swing_up);
    tcase_add_test(tc, test_cartpole_swing_up);
    tcase_add_test(tc, test_bounds_respected);
    tcase_add_test(tc, test_warm_start_shift);
    tcase_add_test(tc, test_same_seed_same_plan);
    tcase_add_test(tc, test_stop_truncates);
    tcase_add_test(tc, test_discount_and_termination);
    tcase_add_test(tc, test_config_checks);
    tcase_add_test(tc, test_predict_known);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
