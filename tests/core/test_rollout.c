/* test_rollout.c: one simulated step (core/learn/rollout.c).
 *   - through an ensemble each row goes to one elite member (never a
 *     non-elite) and rows go to every elite: with the log-variance pinned
 *     near exp(-20) the next state equals obs + the chosen member's mean
 *     within 1e-3 (and the reward its reward head), so the member is
 *     identified;
 *   - known dynamics step exactly, with the known reward when use_learned
 *     and the declared terms and bounds on top. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "learn/rollout.h"
#include "plan/known.h"

START_TEST(test_model_step_random_elite) {
    mb_ensemble_spec es;
    mb_ensemble_spec_default(&es);
    es.members = 3;
    es.obs_dim = 2;
    es.act_dim = 1;
    es.n_hidden = 1;
    es.hidden[0] = 8;
    mb_ensemble e;
    ck_assert_int_eq(mb_ensemble_init(&e, &es, 4, NULL, 0), MB_OK);
    for (int m = 0; m < 3; m++) {
        float *mx = mb_ensemble_max_logvar(&es, e.params, m), *mn = mb_ensemble_min_logvar(&es, e.params, m);
        for (int o = 0; o < 3; o++) {
            mx[o] = -20;
            mn[o] = -21;
        }
        float *b = mb_ensemble_layer_b(&es, e.params, m, 1);
        b[0] = (float)m; /* members far apart in their first output */
    }
    e.n_elites = 2;
    e.elites[0] = 2;
    e.elites[1] = 0;
    const float lo[1] = {-1}, hi[1] = {1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = lo, .act_high = hi};
    mb_rollout_ws *ws = mb_rollout_ws_new(&dyn, 300);
    ck_assert_ptr_nonnull(ws);
    const size_t n = 300;
    float obs[600], act[300], next[600], rew[300], mean[3 * 300 * 3], x[300 * 3];
    uint8_t alive[300];
    mb_rng r;
    mb_rng_seed(&r, 5);
    mb_rng_fill_normal(&r, obs, 600, 0, 1);
    mb_rng_fill_uniform(&r, act, 300, -1, 1);
    memset(alive, 1, sizeof alive);
    mb_rollout_step(&dyn, NULL, ws, NULL, &r, obs, act, n, next, rew, alive);
    for (size_t i = 0; i < n; i++) {
        x[i * 3] = obs[i * 2];
        x[i * 3 + 1] = obs[i * 2 + 1];
        x[i * 3 + 2] = act[i];
    }
    mb_ens_ws *ew = mb_ens_ws_new(&es, n);
    int all[3] = {0, 1, 2};
    float xx[3 * 300 * 3];
    for (int m = 0; m < 3; m++) memcpy(xx + (size_t)m * n * 3, x, sizeof x);
    mb_ensemble_forward(&e, ew, NULL, all, 3, xx, n, mean, NULL);
    int used[3] = {0};
    for (size_t i = 0; i < n; i++) {
        int who = -1;
        for (int m = 0; m < 3; m++) {
            const float *mu = mean + ((size_t)m * n + i) * 3;
            if (fabsf(next[i * 2] - obs[i * 2] - mu[0]) < 1e-3f &&
                fabsf(next[i * 2 + 1] - obs[i * 2 + 1] - mu[1]) < 1e-3f && fabsf(rew[i] - mu[2]) < 1e-3f)
                who = m;
        }
        ck_assert_msg(who >= 0, "row %zu matches no member", i);
        used[who]++;
        ck_assert_int_eq(alive[i], 1);
    }
    ck_assert_int_eq(used[1], 0); /* not an elite */
    ck_assert_int_gt(used[0], 100);
    ck_assert_int_gt(used[2], 100);
    mb_ens_ws_free(ew);
    mb_rollout_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_known_exact_with_terms) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high};
    mb_rollout_ws *ws = mb_rollout_ws_new(&dyn, 4);
    ck_assert_ptr_nonnull(ws);
    float obs[12] = {1, 0, 0.5f, 0, 1, -1, -1, 0, 2, 0.6f, 0.8f, 0}, act[4] = {1, -2, 0.5f, 0};
    float want_next[12], want_r[4], next[12], rew[4];
    k->step(4, obs, act, want_next, want_r);
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.5f};
    rw.n_bounds = 1;
    rw.bounds[0] = (mb_bound){.index = 0, .has_min = 1, .min = 0.0f};
    uint8_t alive[4] = {1, 1, 1, 0};
    mb_rng r;
    mb_rng_seed(&r, 1);
    mb_rollout_step(&dyn, &rw, ws, NULL, &r, obs, act, 4, next, rew, alive);
    for (int i = 0; i < 12; i++) MB_ASSERT_CLOSE("known next", next[i], want_next[i], 0);
    for (int i = 0; i < 3; i++) MB_ASSERT_CLOSE("known + action_l2", rew[i], want_r[i] - 0.5f * act[i] * act[i], 1e-6);
    MB_ASSERT_CLOSE("dead row earns nothing", rew[3], 0, 0);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(alive[i], next[i * 3] > 0.0f);
    ck_assert_int_eq(alive[3], 0);
    rw.use_learned = 0;
    memset(alive, 1, 4);
    mb_rollout_step(&dyn, &rw, ws, NULL, &r, obs, act, 4, next, rew, alive);
    MB_ASSERT_CLOSE("declared only", rew[0], -0.5f, 1e-7);
    mb_rollout_ws_free(ws);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("rollout");
    TCase *tc = tcase_create("rollout");
    tcase_add_test(tc, test_model_step_random_elite);
    tcase_add_test(tc, test_known_exact_with_terms);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
