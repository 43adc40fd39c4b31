/* test_grad.c: gradient shooting and the CEM-gradient hybrid
 * (core/plan/grad.c) through mb_plan.
 *   - grad reaches the double integrator's optimum (closed-form Riccati,
 *     as in test_planner) within 0.5% of its cost;
 *   - through an ensemble (BPTT by vector-Jacobian products) it reaches
 *     the same objective as iLQR (Jacobians, Newton steps) to 1e-3: two
 *     independent derivative paths agreeing on the optimum;
 *   - cem_grad is never worse than CEM at equal model evaluations (CEM
 *     gets at least the hybrid's rows) on the double integrator and the
 *     known pendulum, seed by seed;
 *   - the deadline (mb_plan_ctl.stop, plan_stop.h): grad cut at each of its
 *     polls answers the best sequence seen (predicted return = its return,
 *     never better than the whole call's), or nothing before its first
 *     step; cem_grad answers the best candidate scored so far (an
 *     evaluation: its return), or nothing before its first evaluation.
 * Not for: CEM itself (test_planner). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"
#include "plan_stop.h"

#include "double_integrator.h"

static void plan_once(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                      const float *x0, uint64_t seed, float *plan, mb_plan_info *info) {
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    float a[4];
    char err[200];
    ck_assert_msg(mb_plan(cfg, dyn, rw, x0, NULL, &rng, ws, NULL, a, plan, info, err, sizeof err) == MB_OK,
                  "%s", err);
    mb_plan_ws_free(ws);
}

START_TEST(test_grad_double_integrator_optimum) {
    const int H = 20;
    const float x0[2] = {1.0f, -0.5f};
    double J = di_optimum(x0, H);
    mb_dynamics dyn = di_dyn();
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_GRAD);
    cfg.horizon = H;
    cfg.population = 4;
    cfg.grad_steps = 400;
    cfg.lr = 0.01f;
    float plan[20];
    mb_plan_info info;
    plan_once(&cfg, &dyn, NULL, x0, 1, plan, &info);
    double c = di_cost(x0, plan, H);
    fprintf(stderr, "grad on the double integrator: cost %.6f, optimum %.6f (+%.3f%%), rows %.0f\n", c, J,
            100 * (c / J - 1), info.model_rows);
    ck_assert_msg(c >= J * (1 - 1e-5), "below the optimum: the reference is wrong");
    ck_assert_msg(c <= J * 1.005, "cost %g vs optimum %g", c, J);
    MB_ASSERT_CLOSE("predicted return = -cost", info.predicted_return, -c, 1e-4 * c);
}
END_TEST

START_TEST(test_grad_matches_ilqr_on_ensemble) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 3;
    s.act_dim = 2;
    s.learn_reward = 1;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 32;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 5, err, sizeof err), MB_OK);
    float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 3, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw); /* the reward head, plus a target and an action cost */
    rw.discount = 0.95f;
    rw.n_terms = 2;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 3,
                                   .idx = {0, 1, 2}, .target = {0.3f, -0.3f, 0.2f}};
    rw.terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    const float x0[3] = {0.1f, 0.2f, -0.3f};
    float pg[20], pi[20];
    mb_plan_info ig, ii;
    mb_planner_cfg cg, ci;
    mb_planner_cfg_default(&cg, MB_PLAN_GRAD);
    cg.horizon = 10;
    cg.population = 4;
    cg.grad_steps = 300;
    cg.lr = 0.01f;
    plan_once(&cg, &dyn, &rw, x0, 2, pg, &ig);
    mb_planner_cfg_default(&ci, MB_PLAN_ILQR);
    ci.horizon = 10;
    ci.iterations = 30;
    plan_once(&ci, &dyn, &rw, x0, 2, pi, &ii);
    fprintf(stderr, "ensemble: grad %.6f (rows %.0f), ilqr %.6f (rows %.0f)\n", ig.predicted_return,
            ig.model_rows, ii.predicted_return, ii.model_rows);
    MB_ASSERT_CLOSE("grad vs ilqr objective", ig.predicted_return, ii.predicted_return,
                    1e-3 * fabs(ii.predicted_return) + 1e-4);
    mb_ensemble_free(&e);
}
END_TEST

/* cem_grad vs CEM with at least as many model rows, on one task. Returns
 * how many seeds the hybrid lost. */
static int hybrid_vs_cem(const mb_dynamics *dyn, const mb_reward_spec *rw, const float *x0, int H,
                         const char *name) {
    int lost = 0;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        mb_planner_cfg h;
        mb_planner_cfg_default(&h, MB_PLAN_CEM_GRAD);
        h.horizon = H;
        h.population = 100;
        h.elites = 10;
        h.iterations = 3;
        h.particles = 1;
        float ph[64], pc[64];
        mb_plan_info ih, ic;
        plan_once(&h, dyn, rw, x0, seed, ph, &ih);
        mb_planner_cfg c;
        mb_planner_cfg_default(&c, MB_PLAN_CEM);
        c.horizon = H;
        c.elites = 10;
        c.iterations = 3;
        c.particles = 1;
        /* CEM rows = iterations N H + H: at least the hybrid's */
        c.population = (int)ceil((ih.model_rows - H) / (3.0 * H));
        plan_once(&c, dyn, rw, x0, seed, pc, &ic);
        ck_assert(ic.model_rows >= ih.model_rows);
        fprintf(stderr, "%s seed %d: cem_grad %.4f (%.0f rows), cem %.4f (N %d, %.0f rows)\n", name,
                (int)seed, ih.predicted_return, ih.model_rows, ic.predicted_return, c.population,
                ic.model_rows);
        if (ih.predicted_return < ic.predicted_return) lost++;
    }
    return lost;
}

START_TEST(test_hybrid_not_worse_than_cem) {
    mb_dynamics dyn = di_dyn();
    const float x0[2] = {1.0f, -0.5f};
    ck_assert_int_eq(hybrid_vs_cem(&dyn, NULL, x0, 20, "double integrator"), 0);
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics pd = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                      .act_high = pm->act_high};
    const float p0[3] = {(float)cos(2.5), (float)sin(2.5), 0.5f};
    ck_assert_int_eq(hybrid_vs_cem(&pd, NULL, p0, 30, "pendulum"), 0);
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
    const int H = 15;
    const float x0[2] = {1.0f, -0.5f};
    mb_dynamics dyn = di_dyn();
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_GRAD);
    cfg.horizon = H;
    cfg.population = 3;
    cfg.grad_steps = 40;
    cfg.lr = 0.05f;
    float plan[15];
    mb_plan_info info;
    plan_once(&cfg, &dyn, NULL, x0, 3, plan, &info);
    di_stop_check c = {.x0 = x0, .H = H, .full_cost = di_cost(x0, plan, H)};
    ps_result r;
    ps_sweep(&cfg, &dyn, NULL, x0, 3, 200, check_di_stop, &c, &r);
    fprintf(stderr, "grad: %d polls, %d cuts, %d truncated, the first answer at %d\n", r.polls, r.cuts,
            r.truncated, r.first_answer);
    ck_assert_int_eq(r.polls, cfg.grad_steps + 1 + H); /* the steps (and the last J), the evaluation */
    ck_assert_int_eq(r.first_answer, 1);
    ck_assert_int_eq(r.truncated, r.cuts);
    /* cem_grad */
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM_GRAD);
    cfg.horizon = H;
    cfg.population = 40;
    cfg.elites = 6;
    cfg.iterations = 3;
    cfg.grad_elites = 2;
    cfg.grad_steps = 4;
    c.full_cost = -1; /* the whole call compares the final mean, not the samples: no prefix check */
    ps_sweep(&cfg, &dyn, NULL, x0, 5, 200, check_di_stop, &c, &r);
    fprintf(stderr, "cem_grad: %d polls, %d cuts, %d truncated, the first answer at %d\n", r.polls, r.cuts,
            r.truncated, r.first_answer);
    ck_assert_int_eq(r.polls, 3 * (H + 4 + H) + H); /* per iteration: evaluation, steps, evaluation */
    ck_assert_int_eq(r.first_answer, H);
}
END_TEST

int main(void) {
    Suite *s = suite_create("grad");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_grad_double_integrator_optimum);
    tcase_add_test(tc, test_grad_matches_ilqr_on_ensemble);
    tcase_add_test(tc, test_hybrid_not_worse_than_cem);
    tcase_add_test(tc, test_stop);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
