/* test_planner_icem.c: iCEM against its paper's code (Pinneri et al. 2020;
 * core/plan/planner.c, plan__icem and its helpers), one piece at a time,
 * each against a small case computed by hand: the population decay and its
 * floor, the number of kept elites, the coloured-noise table's covariance,
 * clipping (not truncation), the mean as a candidate of the last iteration,
 * the kept elites carried with their scores (not evaluated again), the
 * shifted elites' new last step drawn from the distribution, and the plan
 * being the best candidate of the last iteration.
 * Coloured-noise moments by sampling are in test_propagate.c; iCEM planning
 * quality in test_planner.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/plan_ws.h"

/* x' = x + u, reward -(x')^2: the best first action moves x to 0. */
static void lin_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        next[i] = obs[i] + act[i];
        if (reward) reward[i] = -next[i] * next[i];
    }
}
static const mb_known_model lin = {.name = "lin", .obs_dim = 1, .act_dim = 1,
                                   .act_low = {-5}, .act_high = {5}, .step = lin_step};
static const float lo[1] = {-5}, hi[1] = {5};
static mb_dynamics lin_dyn(void) {
    return (mb_dynamics){.known = &lin, .obs_dim = 1, .act_dim = 1, .act_low = lo, .act_high = hi};
}

static mb_planner_cfg icem_cfg(int H, int N, int K, int iters) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_ICEM);
    c.horizon = H;
    c.population = N;
    c.elites = K;
    c.iterations = iters;
    c.particles = 1;
    return c;
}

/* N_i = max(2K, int(N_{i-1} / 1.25)), by hand:
 *   N 300, K 10: 300, 240, 192, 153 (153.6), 122 (122.4), 97 (97.6); the
 *     paper's max(N 1.25^-i, 2K) truncated once gives 98 (98.3) at i = 5;
 *   N 40, K 10: 40, 32, 25 (25.6), 20 (20.48), 20 (16.0 -> the floor 2K);
 *   N 15, K 10 (2K > N): capped at N. */
START_TEST(test_population_decay) {
    mb_planner_cfg c = icem_cfg(5, 300, 10, 6);
    const int want[] = {300, 240, 192, 153, 122, 97};
    for (int i = 0; i < 6; i++) ck_assert_int_eq(plan_icem_population(&c, i), want[i]);
    c = icem_cfg(5, 40, 10, 5);
    const int want2[] = {40, 32, 25, 20, 20};
    for (int i = 0; i < 5; i++) ck_assert_int_eq(plan_icem_population(&c, i), want2[i]);
    c = icem_cfg(5, 15, 10, 3);
    for (int i = 0; i < 3; i++) ck_assert_int_eq(plan_icem_population(&c, i), 15);
}
END_TEST

/* int(0.3 K): K 10 -> 3, 50 -> 15, 7 -> 2 (2.1), 5 -> 1 (1.5; ceil gave 2),
 * 3 -> 0 (0.9); only iCEM keeps any. */
START_TEST(test_kept_count) {
    const int K[] = {10, 50, 7, 5, 3}, want[] = {3, 15, 2, 1, 0};
    for (int i = 0; i < 5; i++) {
        mb_planner_cfg c = icem_cfg(4, 100, K[i], 3);
        c.keep_elites = 0.3f;
        mb_plan_state s;
        ck_assert_int_eq(mb_plan_state_init(&s, &c, 1, NULL, 0), MB_OK);
        ck_assert_msg(s.max_kept == want[i], "K %d: kept %d, want %d", K[i], s.max_kept, want[i]);
        mb_plan_state_free(&s);
    }
    mb_planner_cfg c = icem_cfg(4, 100, 10, 3);
    c.method = MB_PLAN_CEM;
    mb_plan_state s;
    ck_assert_int_eq(mb_plan_state_init(&s, &c, 1, NULL, 0), MB_OK);
    ck_assert_int_eq(s.max_kept, 0);
    mb_plan_state_free(&s);
}
END_TEST

/* The table's covariance between steps t and t + d is sum_k amp_k^2
 * cos(2 pi k d / H). H 4, beta 2: f = 1/4 (k 0, clamped to f_1), 1/4, 2/4;
 * power weights 0.5, 1, 0.5 times f^-2 = 16, 16, 4 -> 8, 16, 2 (sum 26):
 * lag 0: 1; lag 1: (8 + 0 - 2) / 26 = 6/26; lag 2: (8 - 16 + 2) / 26 = -6/26.
 * beta 0 (white): weights 0.5, 1, 0.5 (sum 2): lag 1: (0.5 - 0.5) / 2 = 0;
 * lag 2: (0.5 - 1 + 0.5) / 2 = 0. */
START_TEST(test_coloured_noise_table) {
    mb_planner_cfg c = icem_cfg(4, 10, 2, 1);
    mb_dynamics dyn = lin_dyn();
    mb_plan_ws *ws = mb_plan_ws_new(&c, &dyn);
    ck_assert_ptr_nonnull(ws);
    const float betas[2] = {2.0f, 0.0f};
    const double want[2][3] = {{1.0, 6.0 / 26.0, -6.0 / 26.0}, {1.0, 0.0, 0.0}};
    for (int b = 0; b < 2; b++) {
        plan_cn_table(ws, betas[b]);
        for (int t = 0; t < 4; t++)
            for (int d = 0; d < 3 && t + d < 4; d++) {
                double cov = 0.0;
                for (int k = 0; k < ws->n_freq; k++) {
                    const float *cs = ws->cn_cos + (size_t)k * 4, *sn = ws->cn_sin + (size_t)k * 4;
                    cov += (double)cs[t] * cs[t + d] + (double)sn[t] * sn[t + d];
                }
                char what[64];
                snprintf(what, sizeof what, "beta %g cov(%d, %d)", (double)betas[b], t, t + d);
                MB_ASSERT_CLOSE(what, cov, want[b][d], 1e-6);
            }
    }
    mb_plan_ws_free(ws);
}
END_TEST

/* One iteration, cold: the mean is the middle (0), the std 2 x half the
 * range (init_std 2) = 10, white noise. Clipping puts every sample with
 * |z| > 1/2 exactly on a bound: P = 2 (1 - Phi(0.5)) = 0.6171 (truncation
 * or resampling would put none there). The last (only) iteration's first
 * candidate is the mean; the plan is the best candidate. */
START_TEST(test_clip_mean_candidate_best) {
    enum { H = 10, N = 2000 };
    mb_planner_cfg c = icem_cfg(H, N, 10, 1);
    c.init_std = 2.0f;
    c.noise_beta = 0.0f;
    mb_dynamics dyn = lin_dyn();
    mb_plan_ws *ws = mb_plan_ws_new(&c, &dyn);
    mb_rng rng;
    mb_rng_seed(&rng, 5);
    const float x0[1] = {3.0f};
    float a, plan[H];
    mb_plan_info info;
    char err[200];
    ck_assert_msg(mb_plan(&c, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, plan, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    long at_bound = 0, inside = 0;
    for (int i = 1; i < N; i++) {
        const float *s = ws->cand + (size_t)i * H;
        for (int t = 0; t < H; t++) {
            ck_assert(s[t] >= -5.0f && s[t] <= 5.0f);
            if (s[t] == -5.0f || s[t] == 5.0f) at_bound++;
            else inside++;
        }
    }
    double frac = (double)at_bound / (double)(at_bound + inside);
    MB_ASSERT_CLOSE("fraction clipped onto a bound", frac, 0.6171, 0.02);
    for (int t = 0; t < H; t++) ck_assert_float_eq(ws->cand[t], 0.0f); /* candidate 0: the mean */
    int b = ws->order[0];
    for (int i = 0; i < N; i++) ck_assert(ws->score[i] <= ws->score[b]);
    for (int t = 0; t < H; t++) ck_assert_float_eq(plan[t], ws->cand[(size_t)b * H + t]);
    MB_ASSERT_CLOSE("predicted return = the best score", info.predicted_return, ws->ret_mean[b], 0.0);
    /* one evaluation of N rows of H steps */
    MB_ASSERT_CLOSE("rows", info.model_rows, (double)N * H, 0.0);
    mb_plan_ws_free(ws);
}
END_TEST

/* Two iterations, N 40, K 4, keep 0.5 -> 2 kept: iteration 1 samples
 * int(40 / 1.25) = 32 and adds iteration 0's best two with their scores,
 * unevaluated: rows = H (40 + 32) = 720. The kept two sit after the 32
 * samples, best first, and the plan is the best of the 34 (so never worse
 * than iteration 0's best). */
START_TEST(test_kept_elites_keep_scores) {
    enum { H = 10 };
    mb_planner_cfg c = icem_cfg(H, 40, 4, 2);
    c.keep_elites = 0.5f;
    mb_dynamics dyn = lin_dyn();
    mb_plan_ws *ws = mb_plan_ws_new(&c, &dyn);
    mb_rng rng;
    mb_rng_seed(&rng, 9);
    const float x0[1] = {3.0f};
    float a, plan[H];
    mb_plan_info info;
    char err[200];
    ck_assert_msg(mb_plan(&c, &dyn, NULL, x0, NULL, &rng, ws, NULL, &a, plan, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    MB_ASSERT_CLOSE("rows: the kept are not evaluated again", info.model_rows, 720.0, 0.0);
    ck_assert(ws->score[32] >= ws->score[33]);
    /* their scores are their returns (known dynamics: exact) */
    for (int k = 32; k < 34; k++) {
        const float *s = ws->cand + (size_t)k * H;
        double x = 3.0, r = 0.0;
        for (int t = 0; t < H; t++) {
            x = (float)(x + s[t]);
            r -= x * x;
        }
        MB_ASSERT_CLOSE("kept elite's carried score", ws->score[k], r, 1e-3 * fabs(r) + 1e-3);
    }
    int b = ws->order[0];
    ck_assert(ws->score[b] >= ws->score[32]);
    for (int t = 0; t < H; t++) ck_assert_float_eq(plan[t], ws->cand[(size_t)b * H + t]);
    mb_plan_ws_free(ws);
}
END_TEST

/* Warm start, one iteration, a tiny std (init_std 1e-5: samples = mean):
 * the state's mean m (already shifted by the caller) gets its last step
 * repeated from the one before (m[H-2]); a kept elite (all 4) keeps its
 * first H - 1 steps and draws its last from the distribution, so it is
 * m[H-2] (not 4, not the middle 0). Candidate 0 (the mean) shows the
 * repeated step. */
START_TEST(test_shifted_elites_and_mean) {
    enum { H = 6, N = 20 };
    mb_planner_cfg c = icem_cfg(H, N, 4, 1);
    c.keep_elites = 0.5f; /* 2 kept */
    c.init_std = 1e-5f;
    mb_dynamics dyn = lin_dyn();
    mb_plan_ws *ws = mb_plan_ws_new(&c, &dyn);
    mb_plan_state st;
    ck_assert_int_eq(mb_plan_state_init(&st, &c, 1, NULL, 0), MB_OK);
    const float m[H] = {-1.0f, -0.5f, 0.25f, 0.5f, 1.5f, 0.0f};
    memcpy(st.mean, m, sizeof m);
    for (int t = 0; t < H; t++) st.kept[t] = 4.0f;
    st.n_kept = 1;
    st.valid = 1;
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    const float x0[1] = {0.0f};
    float a;
    char err[200];
    mb_plan_info info;
    ck_assert_msg(mb_plan(&c, &dyn, NULL, x0, &st, &rng, ws, NULL, &a, NULL, &info, err, sizeof err) == MB_OK,
                  "%s", err);
    for (int t = 0; t < H - 1; t++) ck_assert_float_eq(ws->cand[t], m[t]);
    ck_assert_float_eq(ws->cand[H - 1], m[H - 2]);
    const float *kept = ws->cand + (size_t)N * H;
    for (int t = 0; t < H - 1; t++) ck_assert_float_eq(kept[t], 4.0f);
    MB_ASSERT_CLOSE("shifted elite's last step from the distribution", kept[H - 1], m[H - 2], 1e-3);
    MB_ASSERT_CLOSE("rows: N samples + 1 shifted elite", info.model_rows, (double)(N + 1) * H, 0.0);
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
}
END_TEST

int main(void) {
    Suite *s = suite_create("planner_icem");
    TCase *tc = tcase_create("icem");
    tcase_add_test(tc, test_population_decay);
    tcase_add_test(tc, test_kept_count);
    tcase_add_test(tc, test_coloured_noise_table);
    tcase_add_test(tc, test_clip_mean_candidate_best);
    tcase_add_test(tc, test_kept_elites_keep_scores);
    tcase_add_test(tc, test_shifted_elites_and_mean);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
