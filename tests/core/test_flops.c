/* test_flops.c: mb_plan_flops / mb_plan_model_rows (core/plan/flops.c)
 * against hand counts written out below, and against what mb_plan itself
 * reports (mb_plan_info.model_rows and .flops) for the same configs, so the
 * count the benchmarks divide by is the work the planner does.
 *
 * The small network (spec_small): 2 members, obs 3, act 1, learned reward,
 * hidden [4, 5]. in = 3 + 1 = 4, out = 3 + 1 = 4, head 2 x 4 = 8 columns.
 *   multiply-adds per row: 4*4 + 4*5 + 5*8 = 16 + 20 + 40 = 76
 *   FLOPs per row:         2 * 76 = 152
 * The small plan (cfg_small): H 2, N 5, P 3, elites 2, 2 iterations, k = 2
 * members; one evaluation of n candidates has n * 3 rows.
 *   CEM, TS-inf: an evaluation of 5 is 15 rows, split over 2 members:
 *     ceil(15 / 2) = 8 each (one padding row), 16 per step, 32 over H = 2;
 *     2 iterations: 64; the final mean: 3 rows -> 2 + 2 = 4 per step, 8.
 *     total 72 rows; 72 * 152 = 10,944 FLOPs.
 *   CEM, expectation (every row through both members): 2 * 15 = 30 per
 *     step, 60 per evaluation, 120 for 2; the mean 2 * 3 * 2 = 12: 132 rows.
 *   MPPI, 2 iterations, TS-inf: as CEM, 72 rows.
 *   random, TS-1: one evaluation of 5: 32 rows.
 *   CEM, TS-inf, elites only (k = 1): 15 * 2 * 2 + 3 * 2 = 66 rows.
 * iCEM (cfg_icem): N 10, K 2, 3 iterations, decay 1.25, keep 0.5, P 3, H 2,
 *   TS-inf, k = 2. max_kept = int(0.5 * 2) = 1. Evaluated: the samples (the
 *   mean replaces one in the last iteration), plus the shifted kept elites
 *   in iteration 0 only (later the kept elites keep their scores).
 *   cold: it 0: 10 sampled -> 30 rows -> 2 * 15 = 30 / step;
 *         it 1: int(10 / 1.25) = 8 -> 24 -> 24;
 *         it 2: int(8 / 1.25) = 6 -> 18 -> 18;
 *         (30 + 24 + 18) * H 2 = 144 rows.
 *   warm (1 kept from the previous call): 11 -> 33 -> 34; 24; 18;
 *         (34 + 24 + 18) * 2 = 152 rows.
 * pets-halfcheetah (the PETS budget the issue quotes): 5 members, obs 18,
 *   act 6, 4 x 200, learned reward: in 24, head 2 * 19 = 38:
 *   MACs per row 24*200 + 3 * 200*200 + 200*38 = 4,800 + 120,000 + 7,600
 *   = 132,400, 264,800 FLOPs. CEM H 30, N 500, P 20, 5 iterations: 10,000
 *   rows per step (2,000 per member, no padding), 300,000 per evaluation,
 *   1,500,000 for 5; the mean 20 rows (4 per member) * 30 = 600;
 *   1,500,600 rows * 264,800 = 397,358,880,000 FLOPs (397 GFLOP). */
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/flops.h"
#include "plan/planner.h"

static mb_ensemble_spec spec_small(void) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 2;
    s.obs_dim = 3;
    s.act_dim = 1;
    s.learn_reward = 1;
    s.n_hidden = 2;
    s.hidden[0] = 4;
    s.hidden[1] = 5;
    return s;
}

static mb_planner_cfg cfg_small(mb_plan_method method, mb_prop prop) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, method);
    c.horizon = 2;
    c.population = 5;
    c.particles = 3;
    c.elites = 2;
    c.iterations = method == MB_PLAN_RANDOM ? 1 : 2;
    c.propagation = prop;
    return c;
}

static mb_planner_cfg cfg_icem(void) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_ICEM);
    c.horizon = 2;
    c.population = 10;
    c.particles = 3;
    c.elites = 2;
    c.iterations = 3;
    c.pop_decay = 1.25f;
    c.keep_elites = 0.5f;
    c.propagation = MB_PROP_TS_INF;
    return c;
}

/* One mb_plan call (twice with a state for a warm iCEM call): its info. */
static mb_plan_info run_plan(const mb_ensemble *e, const mb_planner_cfg *cfg, int warm) {
    const int O = e->spec.obs_dim, A = e->spec.act_dim;
    float low[MB_MAX_ACT_DIM], high[MB_MAX_ACT_DIM], obs[MB_MAX_OBS_DIM] = {0}, act[MB_MAX_ACT_DIM];
    for (int a = 0; a < A; a++) low[a] = -1.0f, high[a] = 1.0f;
    for (int i = 0; i < O; i++) obs[i] = 0.1f * (float)(i + 1);
    mb_dynamics dyn = {.ens = e, .obs_dim = O, .act_dim = A, .act_low = low, .act_high = high};
    mb_plan_ws *ws = mb_plan_ws_new(cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_plan_state st;
    char err[200];
    ck_assert_int_eq(mb_plan_state_init(&st, cfg, A, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, 11);
    mb_plan_info info = {0};
    for (int call = 0; call < (warm ? 2 : 1); call++) {
        if (call) mb_plan_state_shift(&st, low, high);
        mb_status s = mb_plan(cfg, &dyn, NULL, obs, warm ? &st : NULL, &rng, ws, NULL, act, NULL,
                              &info, err, sizeof err);
        ck_assert_msg(s == MB_OK, "mb_plan: %s", err);
    }
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
    return info;
}

START_TEST(test_flops_per_row_hand_count) {
    mb_ensemble_spec s = spec_small();
    MB_ASSERT_CLOSE("FLOPs per row, small net", mb_plan_flops_per_row(&s), 152.0, 0.0);
    MB_ASSERT_CLOSE("the ensemble's own count agrees", mb_ensemble_flops_per_row(&s), 152.0, 0.0);
    s.learn_reward = 0; /* out 3, head 6: 16 + 20 + 30 = 66 MACs */
    MB_ASSERT_CLOSE("FLOPs per row, no reward head", mb_plan_flops_per_row(&s), 132.0, 0.0);
}
END_TEST

START_TEST(test_rows_hand_count) {
    mb_planner_cfg c = cfg_small(MB_PLAN_CEM, MB_PROP_TS_INF);
    MB_ASSERT_CLOSE("CEM ts_inf rows", mb_plan_model_rows(&c, 2, 0), 72.0, 0.0);
    mb_ensemble_spec s = spec_small();
    MB_ASSERT_CLOSE("CEM ts_inf FLOPs", mb_plan_flops(&s, &c), 10944.0, 0.0);
    MB_ASSERT_CLOSE("CEM elites only rows", mb_plan_model_rows(&c, 1, 0), 66.0, 0.0);
    c = cfg_small(MB_PLAN_CEM, MB_PROP_EXPECTATION);
    MB_ASSERT_CLOSE("CEM expectation rows", mb_plan_model_rows(&c, 2, 0), 132.0, 0.0);
    c = cfg_small(MB_PLAN_MPPI, MB_PROP_TS_INF);
    MB_ASSERT_CLOSE("MPPI rows", mb_plan_model_rows(&c, 2, 0), 72.0, 0.0);
    c = cfg_small(MB_PLAN_RANDOM, MB_PROP_TS1);
    MB_ASSERT_CLOSE("random ts1 rows", mb_plan_model_rows(&c, 2, 0), 32.0, 0.0);
    c = cfg_icem();
    MB_ASSERT_CLOSE("iCEM cold rows", mb_plan_model_rows(&c, 2, 0), 144.0, 0.0);
    MB_ASSERT_CLOSE("iCEM warm rows", mb_plan_model_rows(&c, 2, 1), 152.0, 0.0);
}
END_TEST

START_TEST(test_pets_halfcheetah_budget) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s); /* 5 x 4 x 200 SiLU, learned reward */
    s.obs_dim = 18;
    s.act_dim = 6;
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_CEM); /* H 30, N 500, 50 elites, 5 iterations, P 20 */
    MB_ASSERT_CLOSE("pets-halfcheetah FLOPs per row", mb_plan_flops_per_row(&s), 264800.0, 0.0);
    MB_ASSERT_CLOSE("pets-halfcheetah rows", mb_plan_model_rows(&c, 5, 0), 1500600.0, 0.0);
    MB_ASSERT_CLOSE("pets-halfcheetah FLOPs", mb_plan_flops(&s, &c), 397358880000.0, 0.0);
}
END_TEST

/* The derived count is what mb_plan does: same rows, same FLOPs. */
START_TEST(test_matches_mb_plan) {
    mb_ensemble_spec s = spec_small();
    mb_ensemble e;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 3, err, sizeof err), MB_OK);
    const struct {
        mb_plan_method m;
        mb_prop p;
        double rows;
    } cases[] = {
        {MB_PLAN_CEM, MB_PROP_TS_INF, 72},      {MB_PLAN_CEM, MB_PROP_TS1, 72},
        {MB_PLAN_CEM, MB_PROP_EXPECTATION, 132}, {MB_PLAN_CEM, MB_PROP_MEAN, 132},
        {MB_PLAN_MPPI, MB_PROP_TS_INF, 72},     {MB_PLAN_RANDOM, MB_PROP_TS1, 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mb_planner_cfg c = cfg_small(cases[i].m, cases[i].p);
        mb_plan_info info = run_plan(&e, &c, 0);
        char what[96];
        snprintf(what, sizeof what, "%s/%s rows", mb_plan_method_name(cases[i].m), mb_prop_name(cases[i].p));
        MB_ASSERT_CLOSE(what, info.model_rows, cases[i].rows, 0.0);
        MB_ASSERT_CLOSE(what, mb_plan_model_rows(&c, 2, 0), cases[i].rows, 0.0);
        snprintf(what, sizeof what, "%s/%s FLOPs", mb_plan_method_name(cases[i].m), mb_prop_name(cases[i].p));
        MB_ASSERT_CLOSE(what, info.flops, mb_plan_flops(&s, &c), 1e-9 * info.flops);
    }
    /* elites only: one member in use */
    e.n_elites = 1;
    e.elites[0] = 1;
    mb_planner_cfg c = cfg_small(MB_PLAN_CEM, MB_PROP_TS_INF);
    c.elites_only = 1;
    mb_plan_info info = run_plan(&e, &c, 0);
    MB_ASSERT_CLOSE("elites only rows", info.model_rows, 66.0, 0.0);
    MB_ASSERT_CLOSE("elites only, derived", mb_plan_model_rows(&c, 1, 0), 66.0, 0.0);
    e.n_elites = 2;
    e.elites[0] = 0;
    e.elites[1] = 1;
    /* iCEM, cold and warm (the second call starts with the kept elite) */
    c = cfg_icem();
    info = run_plan(&e, &c, 0);
    MB_ASSERT_CLOSE("iCEM cold rows", info.model_rows, 144.0, 0.0);
    MB_ASSERT_CLOSE("iCEM cold FLOPs", info.flops, mb_plan_flops(&s, &c), 1e-9 * info.flops);
    info = run_plan(&e, &c, 1);
    MB_ASSERT_CLOSE("iCEM warm rows", info.model_rows, 152.0, 0.0);
    MB_ASSERT_CLOSE("iCEM warm, derived", mb_plan_model_rows(&c, 2, 1), 152.0, 0.0);
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("flops");
    TCase *tc = tcase_create("flops");
    tcase_add_test(tc, test_flops_per_row_hand_count);
    tcase_add_test(tc, test_rows_hand_count);
    tcase_add_test(tc, test_pets_halfcheetah_budget);
    tcase_add_test(tc, test_matches_mb_plan);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
