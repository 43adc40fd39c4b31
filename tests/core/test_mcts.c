/* test_mcts.c: MCTS (core/plan/mcts.c) and the discrete random shooting and
 * CEM (core/plan/discrete.c) through mb_plan.
 *   - a deterministic chain with a distant reward and a nearby distractor:
 *     MCTS finds the optimal first action, and its choice converges (once
 *     right, it stays right as simulations grow, for every seed tried);
 *     discrete CEM finds it too;
 *   - the pendulum with 5 discrete torques (a test-local wrapper of the
 *     known model) swings up in closed loop;
 *   - through a discrete ensemble (one-hot input): both rollout modes run,
 *     the same seed gives the same plan, rows are counted;
 *   - the time budget, and configuration errors;
 *   - the deadline (mb_plan_ctl.stop, plan_stop.h): MCTS cut at each of its
 *     polls (before a round, between rollout steps) answers the rounds that
 *     finished (one-hot, its value in the chain's range) or nothing before
 *     a root action was visited; a cut session's kept tree re-roots and
 *     answers the next call; a re-rooted tree answers even when stopped at
 *     once; discrete CEM answers the finished iterations' best; discrete
 *     random, one evaluation, has nothing to answer when cut.
 * Not for: the continuous planners (test_planner). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"
#include "plan_stop.h"

/* ---- the chain: positions 0..L-1, actions 0 = left, 1 = right ----------
 * Staying at 0 by going left pays 0.02 per step (the distractor); reaching
 * L-1 pays 1 and ends the episode (a bound on the position). From position
 * 1 with discount 0.95 and horizon 15: right earns 0.95^7 = 0.70 (8 steps
 * to the end), left at most 0.02 (1 - 0.95^15) / 0.05 = 0.22. */
#define CH_L 10
static void chain_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        float p = obs[i];
        int right = act[2 * i + 1] > act[2 * i];
        float np = right ? p + 1.0f : p - 1.0f;
        if (np < 0.0f) np = 0.0f;
        if (np > CH_L - 1) np = CH_L - 1;
        next[i] = np;
        if (reward) reward[i] = (np >= CH_L - 1 - 0.5f) ? 1.0f : (!right && p < 0.5f) ? 0.02f : 0.0f;
    }
}
static const mb_known_model chain_model = {.name = "chain", .obs_dim = 1, .act_dim = 2,
                                           .act_low = {0, 0}, .act_high = {1, 1}, .step = chain_step};
static const float oh_lo[5] = {0, 0, 0, 0, 0}, oh_hi[5] = {1, 1, 1, 1, 1};

static mb_dynamics chain_dyn(void) {
    return (mb_dynamics){.known = &chain_model, .obs_dim = 1, .act_dim = 2, .act_low = oh_lo,
                         .act_high = oh_hi, .discrete = 2};
}
static void chain_reward(mb_reward_spec *rw) {
    mb_reward_spec_default(rw);
    rw->discount = 0.95f;
    rw->n_bounds = 1;
    rw->bounds[0] = (mb_bound){.index = 0, .has_max = 1, .max = CH_L - 1.5f};
}

static int first_action(const float *plan, int K) {
    int k = 0;
    for (int i = 1; i < K; i++)
        if (plan[i] > plan[k]) k = i;
    return k;
}

static int chain_mcts(int sims, uint64_t seed, mb_plan_info *info) {
    mb_dynamics dyn = chain_dyn();
    mb_reward_spec rw;
    chain_reward(&rw);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    cfg.horizon = 15;
    cfg.simulations = sims;
    cfg.rollout_depth = 15;
    cfg.leaf_batch = 4;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    float obs[1] = {1.0f}, a[2], plan[30];
    char err[200];
    ck_assert_msg(mb_plan(&cfg, &dyn, &rw, obs, NULL, &rng, ws, NULL, a, plan, info, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert_float_eq(a[0] + a[1], 1.0f);
    mb_plan_ws_free(ws);
    return first_action(plan, 2);
}

/* Converges: the share of seeds choosing right grows with the budget from
 * 64 simulations on and is every seed from 1,024 on. */
START_TEST(test_chain_distant_reward) {
    const int budgets[] = {16, 64, 256, 1024, 4096};
    int seeds = mb_test_sanitized() ? 4 : 10, right[5] = {0};
    for (int b = 0; b < 5; b++) {
        for (uint64_t seed = 1; seed <= (uint64_t)seeds; seed++) {
            mb_plan_info info;
            right[b] += chain_mcts(budgets[b], seed, &info) == 1;
        }
        fprintf(stderr, "chain: %4d simulations: right in %d of %d seeds\n", budgets[b], right[b], seeds);
    }
    /* 16 and 64 simulations barely see the goal (near chance either way);
     * from 256 on the share of right choices may only grow */
    for (int b = 3; b < 5; b++) ck_assert_msg(right[b] >= right[b - 1],
                                              "fewer right at %d than at %d simulations", budgets[b], budgets[b - 1]);
    ck_assert_msg(right[2] > right[1] || right[2] == seeds, "256 simulations no better than 64");
    ck_assert_int_eq(right[3], seeds);
    ck_assert_int_eq(right[4], seeds);
    /* the plan's predicted return: the optimum 0.95^7 */
    mb_plan_info info;
    ck_assert_int_eq(chain_mcts(4096, 99, &info), 1);
    MB_ASSERT_CLOSE("predicted return of the MCTS plan", info.predicted_return, pow(0.95, 7), 1e-5);
}
END_TEST

/* Tree reuse: after a deep search from position 1 (right) the session
 * steps to 2; with the kept tree re-rooted there, one more simulation
 * answers right (the carried visits decide); rebuilt, one simulation ties
 * and answers the first action (left). A state that matches no child, or
 * another session, starts afresh. */
START_TEST(test_tree_reuse) {
    mb_dynamics dyn = chain_dyn();
    mb_reward_spec rw;
    chain_reward(&rw);
    for (int reuse = 0; reuse < 2; reuse++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
        cfg.horizon = 15;
        cfg.rollout_depth = 15;
        cfg.leaf_batch = 4;
        cfg.simulations = 4096;
        cfg.tree_reuse = reuse;
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws);
        mb_plan_state st;
        char err[200];
        ck_assert_int_eq(mb_plan_state_init(&st, &cfg, 2, err, sizeof err), MB_OK);
        mb_rng rng;
        mb_rng_seed(&rng, 1);
        float obs[1] = {1.0f}, a[2], next[1], r;
        ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, obs, &st, &rng, ws, NULL, a, NULL, NULL, err, sizeof err), MB_OK);
        ck_assert_int_eq(first_action(a, 2), 1);
        chain_step(1, obs, a, next, &r);
        ck_assert_float_eq(next[0], 2.0f);
        /* one simulation more, in the same workspace (made for more) */
        mb_planner_cfg one = cfg;
        one.simulations = 1;
        ck_assert(mb_plan_ws_fits(ws, &one, &dyn));
        mb_plan_state_shift(&st, dyn.act_low, dyn.act_high);
        ck_assert_int_eq(mb_plan(&one, &dyn, &rw, next, &st, &rng, ws, NULL, a, NULL, NULL, err, sizeof err), MB_OK);
        fprintf(stderr, "chain, tree_reuse %d: one more simulation from position 2 answers %d\n", reuse,
                first_action(a, 2));
        ck_assert_int_eq(first_action(a, 2), reuse ? 1 : 0);
        /* an observation no child matches: a fresh tree (one simulation: a tie, left) */
        float far[1] = {6.0f};
        ck_assert_int_eq(mb_plan(&one, &dyn, &rw, far, &st, &rng, ws, NULL, a, NULL, NULL, err, sizeof err), MB_OK);
        ck_assert_int_eq(first_action(a, 2), 0);
        mb_plan_state_free(&st);
        mb_plan_ws_free(ws);
    }
}
END_TEST

START_TEST(test_chain_discrete_cem_and_random) {
    mb_dynamics dyn = chain_dyn();
    mb_reward_spec rw;
    chain_reward(&rw);
    for (int m = 0; m < 2; m++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, m ? MB_PLAN_CEM : MB_PLAN_RANDOM);
        cfg.horizon = 15;
        cfg.population = m ? 200 : 2000;
        cfg.elites = 20;
        cfg.iterations = m ? 6 : 1;
        cfg.particles = 1;
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws);
        mb_rng rng;
        mb_rng_seed(&rng, 4);
        float obs[1] = {1.0f}, a[2], plan[30];
        mb_plan_info info;
        char err[200];
        ck_assert_msg(mb_plan(&cfg, &dyn, &rw, obs, NULL, &rng, ws, NULL, a, plan, &info, err, sizeof err) == MB_OK,
                      "%s", err);
        fprintf(stderr, "chain %s: first action %d, predicted %.3f\n", m ? "cem" : "random",
                first_action(plan, 2), info.predicted_return);
        ck_assert_int_eq(first_action(plan, 2), 1);
        MB_ASSERT_CLOSE("optimal return", info.predicted_return, pow(0.95, 7), 1e-5);
        for (int t = 0; t < 15; t++) MB_ASSERT_CLOSE("one-hot row", plan[2 * t] + plan[2 * t + 1], 1.0, 0.0);
        mb_plan_ws_free(ws);
    }
}
END_TEST

/* ---- the pendulum with 5 torques {-2, -1, 0, 1, 2} ----------------------- */
static void pend5_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        float u = 0.0f;
        for (int k = 0; k < 5; k++)
            if (act[5 * i + k] > 0.5f) u = (float)(k - 2);
        mb_known_pendulum.step(1, obs + 3 * i, &u, next + 3 * i, reward ? reward + i : NULL);
    }
}
/* (known.h's act_low/high hold 4 entries; the planner reads dyn's bounds) */
static const mb_known_model pend5_model = {.name = "pendulum5", .obs_dim = 3, .act_dim = 5,
                                           .step = pend5_step};

START_TEST(test_pendulum_5_torques) {
    mb_dynamics dyn = {.known = &pend5_model, .obs_dim = 3, .act_dim = 5, .act_low = oh_lo,
                       .act_high = oh_hi, .discrete = 5};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    cfg.simulations = mb_test_sanitized() ? 150 : 300;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 5);
    float obs[3] = {-1.0f, 0.0f, 0.0f}, a[5], next[3], r;
    double ret = 0.0;
    int up = 0;
    char err[200];
    for (int t = 0; t < 200; t++) {
        ck_assert_msg(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, NULL, a, NULL, NULL, err, sizeof err) == MB_OK,
                      "%s", err);
        pend5_step(1, obs, a, next, &r);
        ret += r;
        memcpy(obs, next, sizeof obs);
        if (t >= 150 && obs[0] > 0.95f) up++;
    }
    fprintf(stderr, "mcts pendulum, 5 torques, from hanging: return %.1f, upright %d/50\n", ret, up);
    ck_assert_msg(ret > -400.0, "return %g", ret);
    ck_assert_int_eq(up, 50);
    mb_plan_ws_free(ws);
}
END_TEST

START_TEST(test_ensemble_discrete) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 2;
    s.act_dim = 4; /* K = 4, one-hot */
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 16;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 3, err, sizeof err), MB_OK);
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 4, .act_low = oh_lo, .act_high = oh_hi,
                       .discrete = 4};
    for (int mode = 0; mode < 2; mode++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
        cfg.simulations = 64;
        cfg.horizon = 5;
        cfg.rollout_depth = 5;
        cfg.rollout_mean = mode;
        cfg.particles = 2;
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws);
        float obs[2] = {0.3f, -0.2f}, a[4], p1[20], p2[20];
        mb_plan_info info;
        mb_rng rng;
        mb_rng_seed(&rng, 8);
        ck_assert_msg(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, NULL, a, p1, &info, err, sizeof err) == MB_OK,
                      "%s", err);
        ck_assert(info.model_rows > 0 && isfinite(info.predicted_return));
        ck_assert_float_eq(a[0] + a[1] + a[2] + a[3], 1.0f);
        mb_rng_seed(&rng, 8);
        ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, NULL, a, p2, NULL, err, sizeof err), MB_OK);
        ck_assert_int_eq(memcmp(p1, p2, sizeof p1), 0);
        mb_plan_ws_free(ws);
    }
    /* discrete CEM through the ensemble */
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.horizon = 5;
    cfg.population = 40;
    cfg.elites = 5;
    cfg.particles = 3;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    float obs[2] = {0.3f, -0.2f}, a[4];
    mb_rng rng;
    mb_rng_seed(&rng, 8);
    ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, NULL, a, NULL, NULL, err, sizeof err), MB_OK);
    ck_assert_float_eq(a[0] + a[1] + a[2] + a[3], 1.0f);
    mb_plan_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_time_budget_and_checks) {
    mb_dynamics dyn = chain_dyn();
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    cfg.simulations = 0;
    cfg.max_ms = 5.0f;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    float obs[1] = {1.0f}, a[2];
    mb_plan_info info;
    char err[200] = "";
    ck_assert_msg(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, NULL, a, NULL, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    ck_assert(info.model_rows > 0);
    mb_plan_ws_free(ws);
    /* neither budget */
    cfg.max_ms = 0.0f;
    ck_assert_int_eq(mb_planner_cfg_check(&cfg, 0, err, sizeof err), MB_EINVAL);
    /* mcts with continuous actions */
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    dyn.discrete = 0;
    ck_assert_ptr_null(mb_plan_ws_new(&cfg, &dyn));
    /* mppi with discrete actions */
    mb_planner_cfg_default(&cfg, MB_PLAN_MPPI);
    dyn.discrete = 2;
    ck_assert_ptr_null(mb_plan_ws_new(&cfg, &dyn));
    /* a tree too large */
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    cfg.simulations = 1000000;
    ck_assert_int_eq(mb_planner_cfg_check(&cfg, 0, err, sizeof err), MB_OK);
    mb_dynamics big = {.known = &chain_model, .obs_dim = 200, .act_dim = 2, .act_low = oh_lo,
                       .act_high = oh_hi, .discrete = 2};
    ck_assert_ptr_null(mb_plan_ws_new(&cfg, &big));
    /* names */
    mb_plan_method m;
    ck_assert_int_eq(mb_plan_method_parse("mcts", &m), 0);
    ck_assert_int_eq(m, MB_PLAN_MCTS);
    ck_assert_str_eq(mb_plan_method_name(MB_PLAN_CEM_GRAD), "cem_grad");
}
END_TEST

/* A cut plan over K discrete actions: one-hot rows, a value within
 * [lo, hi]. */
typedef struct {
    int K, H;
    double lo, hi;
} onehot_check;
static void check_onehot(void *ctx, const float *plan, const mb_plan_info *info) {
    const onehot_check *c = ctx;
    for (int t = 0; t < c->H; t++) {
        float s = 0;
        for (int k = 0; k < c->K; k++) {
            ck_assert(plan[t * c->K + k] == 0.0f || plan[t * c->K + k] == 1.0f);
            s += plan[t * c->K + k];
        }
        ck_assert_float_eq(s, 1.0f);
    }
    ck_assert_msg(info->predicted_return >= c->lo - 1e-6 && info->predicted_return <= c->hi + 1e-6,
                  "predicted %g outside [%g, %g]", (double)info->predicted_return, c->lo, c->hi);
}

START_TEST(test_stop) {
    mb_dynamics dyn = chain_dyn();
    mb_reward_spec rw;
    chain_reward(&rw);
    const float obs[1] = {1.0f};
    /* the chain's returns lie in [0, 1 + 0.02 / 0.05] */
    onehot_check oc = {.K = 2, .H = 15, .lo = 0.0, .hi = 1.4};
    ps_result r;
    for (int mode = 0; mode < 2; mode++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
        cfg.horizon = 15;
        cfg.simulations = 64;
        cfg.rollout_depth = 15;
        cfg.leaf_batch = 4;
        cfg.particles = 1 + mode;
        cfg.tree_reuse = mode;
        ps_sweep(&cfg, &dyn, &rw, obs, 5, 80, check_onehot, &oc, &r);
        fprintf(stderr, "mcts (mode %d): %d polls, %d cuts, %d truncated, the first answer at %d\n", mode,
                r.polls, r.cuts, r.truncated, r.first_answer);
        /* rounds of 4 leaves, up to 15 rollout steps each, then the
         * plan's evaluation (15 steps) */
        ck_assert_int_gt(r.polls, 16 + 15);
        ck_assert_int_gt(r.truncated, r.cuts / 2);
        ck_assert_int_ge(r.first_answer, 1);
    }
    /* a session's tree cut mid-search is kept consistent: re-rooted at the
     * next observation it answers, uncut */
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
    cfg.horizon = 15;
    cfg.simulations = 512;
    cfg.rollout_depth = 15;
    cfg.leaf_batch = 4;
    cfg.tree_reuse = 1;
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_plan_state st;
    char err[200];
    ck_assert_int_eq(mb_plan_state_init(&st, &cfg, 2, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    ps_counter c = {0, 300}; /* inside a round, well into the search */
    mb_plan_ctl ctl = {.stop = ps_stop, .stop_ctx = &c};
    float a[2], next[1], rew, plan[30];
    mb_plan_info info;
    ck_assert_int_eq(mb_plan_ex(&cfg, &dyn, &rw, obs, &st, &rng, ws, NULL, &ctl, a, plan, &info, err, sizeof err),
                     MB_OK);
    ck_assert_int_eq(info.truncated, 1);
    chain_step(1, obs, a, next, &rew);
    mb_plan_state_shift(&st, dyn.act_low, dyn.act_high);
    ck_assert_int_eq(mb_plan(&cfg, &dyn, &rw, next, &st, &rng, ws, NULL, a, plan, &info, err, sizeof err), MB_OK);
    ck_assert_int_eq(info.truncated, 0);
    check_onehot(&oc, plan, &info);
    /* re-rooted, stopped at once: the kept visits answer */
    chain_step(1, next, a, next, &rew);
    mb_plan_state_shift(&st, dyn.act_low, dyn.act_high);
    c = (ps_counter){0, 0};
    ck_assert_int_eq(mb_plan_ex(&cfg, &dyn, &rw, next, &st, &rng, ws, NULL, &ctl, a, plan, &info, err, sizeof err),
                     MB_OK);
    ck_assert_int_eq(info.truncated, 1);
    ck_assert_int_eq(c.polls, 1);
    ck_assert_float_eq(info.model_rows, 0.0); /* nothing ran */
    check_onehot(&oc, plan, &info);
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
    /* discrete CEM and random */
    for (int m = 0; m < 2; m++) {
        mb_planner_cfg_default(&cfg, m ? MB_PLAN_CEM : MB_PLAN_RANDOM);
        cfg.horizon = 15;
        cfg.population = 60;
        cfg.elites = 6;
        cfg.iterations = m ? 4 : 1;
        cfg.particles = 1;
        ps_sweep(&cfg, &dyn, &rw, obs, 6, 80, check_onehot, &oc, &r);
        fprintf(stderr, "discrete %s: %d polls, %d cuts, %d truncated\n", m ? "cem" : "random", r.polls,
                r.cuts, r.truncated);
        if (m) {
            ck_assert_int_eq(r.polls, 5 * 15); /* 4 iterations and the mode, 15 steps each */
            ck_assert_int_eq(r.first_answer, 15); /* the first iteration's evaluation finished */
        } else {
            ck_assert_int_eq(r.polls, 15);
            ck_assert_int_eq(r.truncated, 0); /* its only evaluation cut: no answer */
        }
    }
}
END_TEST

/* Through a discrete ensemble: both rollout modes, cut at every poll. */
START_TEST(test_stop_ensemble) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 3;
    s.obs_dim = 2;
    s.act_dim = 4;
    s.n_hidden = 2;
    s.hidden[0] = s.hidden[1] = 16;
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 3, err, sizeof err), MB_OK);
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 4, .act_low = oh_lo, .act_high = oh_hi,
                       .discrete = 4};
    const float obs[2] = {0.3f, -0.2f};
    onehot_check oc = {.K = 4, .H = 5, .lo = -1e30, .hi = 1e30};
    for (int mode = 0; mode < 2; mode++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, MB_PLAN_MCTS);
        cfg.simulations = 48;
        cfg.horizon = 5;
        cfg.rollout_depth = 5;
        cfg.rollout_mean = mode;
        cfg.particles = 2;
        ps_result r;
        ps_sweep(&cfg, &dyn, NULL, obs, 8, 40, check_onehot, &oc, &r);
        ck_assert_int_gt(r.truncated, 0);
    }
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("mcts");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_chain_distant_reward);
    tcase_add_test(tc, test_tree_reuse);
    tcase_add_test(tc, test_chain_discrete_cem_and_random);
    tcase_add_test(tc, test_pendulum_5_torques);
    tcase_add_test(tc, test_ensemble_discrete);
    tcase_add_test(tc, test_time_budget_and_checks);
    tcase_add_test(tc, test_stop);
    tcase_add_test(tc, test_stop_ensemble);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
