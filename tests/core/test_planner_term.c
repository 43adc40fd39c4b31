/* test_planner_term.c: the planner ends particles on learned termination
 * (core/plan/propagate.c with an ensemble's termination head,
 * nn/term_head.h). A two-angle "balance" task whose termination is not a box
 * on state entries: s = (th1, th2), s' = s + 0.2 u, u in [-1, 1]^2, the
 * episode ends when the tip height cos th1 + cos(th1 + th2) falls below 1;
 * the declared reward is +1 per step alive (constant), so a plan's return
 * is the number of steps it survives.
 *   By hand from s0 = (0.4, 0.3) (height 1.686), 4 steps:
 *     u = (+1, +1): (0.6, 0.5) height 1.279, (0.8, 0.7) 0.768: ends at step
 *       2, which earns no constant: return 1;
 *     u = (-1, -1): (0.2, 0.1) 1.935, (0, -0.1) 1.995, (-0.2, -0.3) 1.858,
 *       (-0.4, -0.5) 1.543: alive, return 4;  u = 0: 1.686 throughout, 4.
 *   Without the head nothing ends: 4, 4, 4.
 * And CEM from a state next to the boundary keeps the true system alive. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "learn/trainer.h"
#include "plan/plan_ws.h"

static float height(const float *s) { return cosf(s[0]) + cosf(s[0] + s[1]); }

static const float lo[2] = {-1, -1}, hi[2] = {1, 1};

static void train_model(mb_ensemble *e) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, 2, 2, 4000, 0.1f, 3, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 11);
    for (int i = 0; i < 3000; i++) {
        float s[2], u[2], ns[2], rew = 1;
        for (int j = 0; j < 2; j++) {
            s[j] = (float)(2.4 * mb_rng_uniform(&r) - 1.2);
            u[j] = (float)(2 * mb_rng_uniform(&r) - 1);
            ns[j] = s[j] + 0.2f * u[j];
        }
        unsigned char term = height(ns) < 1.0f;
        mb_buffer_append(&b, 1, s, u, &rew, ns, &term, NULL);
    }
    mb_ensemble_spec sp;
    mb_ensemble_spec_default(&sp);
    sp.members = 2;
    sp.obs_dim = 2;
    sp.act_dim = 2;
    sp.n_hidden = 2;
    sp.hidden[0] = sp.hidden[1] = 32;
    sp.learn_reward = 0;
    sp.learn_termination = 1;
    char err[256];
    ck_assert_int_eq(mb_ensemble_init(e, &sp, 7, err, sizeof err), MB_OK);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    mb_train_cfg_default(&cfg);
    cfg.max_epochs = mb_test_sanitized() ? 20 : 40; /* the sanitizer builds are ~10x slower */
    mb_train_result res;
    ck_assert_msg(mb_train(e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK, "%s", err);
    mb_adam_free(&opt);
    mb_buffer_free(&b);
}

static mb_reward_spec alive_reward(void) {
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0].type = MB_TERM_CONSTANT;
    rw.terms[0].weight = 1.0f;
    return rw;
}

/* Returns of three fixed 4-step sequences: all -1, all +1, all 0. */
static void three_returns(const mb_ensemble *e, float *ret) {
    mb_dynamics dyn = {.ens = e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_RANDOM);
    cfg.horizon = 4;
    cfg.population = 3;
    cfg.particles = 2;
    cfg.propagation = MB_PROP_MEAN;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    const float u[3] = {-1, 1, 0};
    for (int c = 0; c < 3; c++)
        for (int j = 0; j < 8; j++) ws->cand[c * 8 + j] = u[c];
    mb_reward_spec rw = alive_reward();
    const float s0[2] = {0.4f, 0.3f};
    plan_run run = {.cfg = &cfg, .dyn = &dyn, .rw = &rw, .obs = s0, .ws = ws, .seed = 1, .k = e->spec.members};
    plan_evaluate(&run, 3);
    for (int c = 0; c < 3; c++) ret[c] = ws->ret_mean[c];
    mb_plan_ws_free(ws);
}

START_TEST(test_particles_end_on_predicted_termination) {
    mb_ensemble e;
    train_model(&e);
    float ret[3];
    three_returns(&e, ret);
    printf("learned termination: returns %g (away), %g (into the boundary), %g (still)\n", (double)ret[0],
           (double)ret[1], (double)ret[2]);
    MB_ASSERT_CLOSE("moving up survives 4 steps", ret[0], 4.0, 1e-5);
    MB_ASSERT_CLOSE("moving down ends at step 2", ret[1], 1.0, 1e-5);
    MB_ASSERT_CLOSE("staying survives", ret[2], 4.0, 1e-5);
    /* the same model without its head ends nothing */
    mb_term_head_free(&e.term);
    e.spec.learn_termination = 0;
    three_returns(&e, ret);
    for (int c = 0; c < 3; c++) MB_ASSERT_CLOSE("no head, no termination", ret[c], 4.0, 1e-5);
    mb_ensemble_free(&e);
}
END_TEST

/* CEM (H 8) from states near the boundary, in closed loop on the true
 * system for 15 steps: with the head the system stays alive from every
 * start; the plans' predicted returns say so too. */
START_TEST(test_cem_keeps_the_true_system_alive) {
    mb_ensemble e;
    train_model(&e);
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.horizon = 8;
    cfg.population = 100;
    cfg.elites = 10;
    cfg.iterations = 3;
    cfg.particles = 2;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    mb_reward_spec rw = alive_reward();
    const float starts[3][2] = {{0.75f, 0.45f}, {-0.7f, -0.5f}, {0.9f, -0.2f}};
    mb_rng rng;
    mb_rng_seed(&rng, 4);
    char err[200];
    int n_starts = mb_test_sanitized() ? 1 : 3;
    for (int k = 0; k < n_starts; k++) {
        float s[2] = {starts[k][0], starts[k][1]};
        ck_assert(height(s) > 1.0f);
        int alive = 1;
        float first_pred = 0;
        for (int t = 0; t < 15 && alive; t++) {
            float a[2];
            mb_plan_info info;
            ck_assert_msg(mb_plan(&cfg, &dyn, &rw, s, NULL, &rng, ws, NULL, a, NULL, &info, err, sizeof err) == MB_OK,
                          "%s", err);
            if (t == 0) first_pred = info.predicted_return;
            s[0] += 0.2f * a[0];
            s[1] += 0.2f * a[1];
            alive = height(s) >= 1.0f;
        }
        printf("learned termination, CEM from (%g, %g): %s after 15 steps, first predicted return %g\n",
               (double)starts[k][0], (double)starts[k][1], alive ? "alive" : "ended", (double)first_pred);
        ck_assert_msg(alive, "start %d ended", k);
        MB_ASSERT_CLOSE("predicted survival", first_pred, 8.0, 0.5);
    }
    mb_plan_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("planner_term");
    TCase *tc = tcase_create("planner_term");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_particles_end_on_predicted_termination);
    tcase_add_test(tc, test_cem_keeps_the_true_system_alive);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
