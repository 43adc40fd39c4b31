/* test_planner_alloc.c: mb_plan allocates nothing (planner.h's promise):
 * this test binary interposes malloc/calloc/realloc (forwarding to glibc's
 * __libc_* entry points) and counts calls made during planning calls, with
 * known dynamics and through an ensemble, every method and propagation,
 * with and without a pool. Sanitizer builds keep their own allocator, so
 * there the suite has no test (the other planner suites run there). */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "check_util.h"
#include "plan/batch.h"
#include "plan/planner.h"

#include "alloc_count.h"

#if ALLOC_COUNTING
START_TEST(test_no_allocation_in_plan) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = 5;
    spec.act_dim = 2;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 16;
    mb_ensemble e;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics ens = {.ens = &e, .obs_dim = 5, .act_dim = 2, .act_low = lo, .act_high = hi};
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics known = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                         .act_high = pm->act_high};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    mb_pool *pool = mb_pool_new(2);
    const float obs[5] = {0.1f, -0.2f, 0.3f, 0.0f, 1.0f};
    int bf16 = mb_ensemble_bf16_prepare(&e, NULL, 0) == MB_OK;
    for (int prec = 0; prec <= bf16; prec++)
    for (int d = 0; d < 2; d++)
        for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++)
            for (int pr = 0; pr < 4; pr++) {
                if (d == 1 && pr > 0) break; /* propagation is moot for known dynamics */
                const mb_dynamics *dyn = d == 0 ? &ens : &known;
                mb_planner_cfg cfg;
                mb_planner_cfg_default(&cfg, (mb_plan_method)m);
                cfg.horizon = 7;
                cfg.population = 60;
                cfg.elites = 6;
                cfg.iterations = 2;
                cfg.particles = 7; /* not a multiple of 5: padding too */
                cfg.propagation = (mb_prop)pr;
                cfg.precision = (mb_precision)prec;
                mb_plan_ws *ws = mb_plan_ws_new(&cfg, dyn);
                ck_assert_ptr_nonnull(ws);
                mb_plan_state st;
                ck_assert_int_eq(mb_plan_state_init(&st, &cfg, dyn->act_dim, err, sizeof err), MB_OK);
                mb_rng rng;
                mb_rng_seed(&rng, 1);
                float a[2], plan[7 * 2];
                mb_plan_info info;
                for (int call = 0; call < 3; call++) {
                    mb_pool *p = call == 1 ? pool : NULL;
                    mb_plan_state_shift(&st, dyn->act_low, dyn->act_high);
                    long before = atomic_load(&n_allocs);
                    mb_status s = mb_plan(&cfg, dyn, &rw, obs, &st, &rng, ws, p, a, plan, &info,
                                          err, sizeof err);
                    long after = atomic_load(&n_allocs);
                    ck_assert_msg(s == MB_OK, "%s", err);
                    ck_assert_msg(after == before, "%s/%s (%s, pool %d, %s): %ld allocations in mb_plan",
                                  mb_plan_method_name(cfg.method), mb_prop_name(cfg.propagation),
                                  d == 0 ? "ensemble" : "known", p != NULL,
                                  mb_precision_name(cfg.precision), after - before);
                    if (d == 0) ck_assert_int_eq(info.precision, cfg.precision);
                }
                mb_plan_state_free(&st);
                mb_plan_ws_free(ws);
            }
    /* The counter works: the workspace itself is allocated. */
    long before = atomic_load(&n_allocs);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &known);
    ck_assert_int_gt(atomic_load(&n_allocs), before);
    mb_plan_ws_free(ws);
    mb_pool_free(pool);
    mb_ensemble_free(&e);
}
END_TEST

/* A batch of a size seen before allocates nothing (lanes, helper threads,
 * tables and workspaces are made by the first batch and kept). */
START_TEST(test_no_allocation_in_batch) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = 5;
    spec.act_dim = 2;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 16;
    mb_ensemble e;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 5, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.horizon = 6;
    cfg.population = 40;
    cfg.elites = 5;
    cfg.iterations = 2;
    cfg.particles = 5;
    enum { N = 4 };
    mb_plan_ws *ws[N];
    mb_rng rng[N];
    float a[N][2];
    mb_plan_req q[N];
    const float obs[5] = {0.1f, -0.2f, 0.3f, 0.0f, 1.0f};
    for (int i = 0; i < N; i++) {
        ws[i] = mb_plan_ws_new(&cfg, &dyn);
        ck_assert_ptr_nonnull(ws[i]);
        mb_rng_seed(&rng[i], (uint64_t)i);
        q[i] = (mb_plan_req){.cfg = &cfg, .obs = obs, .rng = &rng[i], .ws = ws[i], .action = a[i]};
    }
    mb_pool *pool = mb_pool_new(2);
    mb_plan_batcher *b = mb_plan_batcher_new(N);
    ck_assert_int_eq(mb_plan_batch(b, &dyn, q, N, pool, err, sizeof err), MB_OK); /* makes its lanes */
    long before = atomic_load(&n_allocs);
    mb_status st = mb_plan_batch(b, &dyn, q, N, pool, err, sizeof err);
    long after = atomic_load(&n_allocs);
    ck_assert_int_eq(st, MB_OK);
    for (int i = 0; i < N; i++) ck_assert_int_eq(q[i].status, MB_OK);
    ck_assert_msg(after == before, "%ld allocations in a batch of a size seen before", after - before);
    mb_plan_batcher_free(b);
    mb_pool_free(pool);
    for (int i = 0; i < N; i++) mb_plan_ws_free(ws[i]);
    mb_ensemble_free(&e);
}
END_TEST

/* Issue 14's methods: iLQR, LQR-FLM, grad and cem_grad on both dynamics,
 * MCTS and the discrete random / CEM over a discrete ensemble and a
 * discrete known model. */
static void discrete_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        next[2 * i] = obs[2 * i] + act[3 * i] - act[3 * i + 2];
        next[2 * i + 1] = obs[2 * i + 1] * 0.9f;
        if (reward) reward[i] = -next[2 * i] * next[2 * i];
    }
}
static const mb_known_model discrete_model = {.name = "d3", .obs_dim = 2, .act_dim = 3,
                                              .step = discrete_step};

static void no_alloc_case(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const float *obs,
                          mb_pool *pool, const char *what) {
    char err[160];
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 0.5f, .n_idx = 1, .idx = {0}};
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    ck_assert_msg(ws != NULL, "%s %s: no workspace", mb_plan_method_name(cfg->method), what);
    mb_plan_state st;
    ck_assert_int_eq(mb_plan_state_init(&st, cfg, dyn->act_dim, err, sizeof err), MB_OK);
    mb_rng rng;
    mb_rng_seed(&rng, 1);
    float a[4], plan[7 * 4], K0[8], x0[8];
    mb_plan_info info;
    for (int call = 0; call < 3; call++) {
        mb_plan_state_shift(&st, dyn->act_low, dyn->act_high);
        long before = atomic_load(&n_allocs);
        mb_status s = mb_plan(cfg, dyn, &rw, obs, &st, &rng, ws, call == 1 ? pool : NULL, a, plan,
                              &info, err, sizeof err);
        (void)mb_plan_ws_gains(ws, K0, x0);
        long after = atomic_load(&n_allocs);
        ck_assert_msg(s == MB_OK, "%s %s: %s", mb_plan_method_name(cfg->method), what, err);
        ck_assert_msg(after == before, "%s (%s): %ld allocations in mb_plan",
                      mb_plan_method_name(cfg->method), what, after - before);
    }
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
}

START_TEST(test_no_allocation_issue14_methods) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = 2;
    spec.act_dim = 3;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 16;
    mb_ensemble e;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
    const float lo[3] = {-1, -1, -1}, hi[3] = {1, 1, 1}, zlo[3] = {0, 0, 0}, ohi[3] = {1, 1, 1};
    mb_dynamics ens = {.ens = &e, .obs_dim = 2, .act_dim = 3, .act_low = lo, .act_high = hi};
    mb_dynamics known = {.known = &discrete_model, .obs_dim = 2, .act_dim = 3, .act_low = lo,
                         .act_high = hi};
    mb_dynamics dens = ens, dknown = known;
    dens.act_low = dknown.act_low = zlo;
    dens.act_high = dknown.act_high = ohi;
    dens.discrete = dknown.discrete = 3;
    mb_pool *pool = mb_pool_new(2);
    const float obs[2] = {0.3f, -0.2f};
    const mb_plan_method cont[] = {MB_PLAN_ILQR, MB_PLAN_LQR_FLM, MB_PLAN_GRAD, MB_PLAN_CEM_GRAD};
    for (int i = 0; i < 4; i++)
        for (int d = 0; d < 2; d++) {
            mb_planner_cfg cfg;
            mb_planner_cfg_default(&cfg, cont[i]);
            cfg.horizon = 7;
            if (cont[i] == MB_PLAN_CEM_GRAD) {
                cfg.population = 40;
                cfg.elites = 6;
                cfg.iterations = 2;
                cfg.particles = 3;
            }
            if (cont[i] == MB_PLAN_GRAD) cfg.grad_steps = 5;
            no_alloc_case(&cfg, d ? &known : &ens, obs, pool, d ? "known" : "ensemble");
        }
    const mb_plan_method disc[] = {MB_PLAN_MCTS, MB_PLAN_RANDOM, MB_PLAN_CEM};
    for (int i = 0; i < 3; i++)
        for (int d = 0; d < 2; d++)
            for (int mode = 0; mode < 2; mode++) {
                mb_planner_cfg cfg;
                mb_planner_cfg_default(&cfg, disc[i]);
                cfg.horizon = 7;
                cfg.population = disc[i] == MB_PLAN_MCTS ? 1 : 40;
                cfg.elites = 5;
                cfg.particles = 3;
                cfg.simulations = 50;
                cfg.rollout_depth = 4;
                cfg.rollout_mean = mode;
                cfg.tree_reuse = mode; /* re-rooting moves nodes in place */
                no_alloc_case(&cfg, d ? &dknown : &dens, obs, pool, d ? "discrete known" : "discrete ensemble");
            }
    mb_pool_free(pool);
    mb_ensemble_free(&e);
}
END_TEST
#endif

int main(void) {
    Suite *s = suite_create("planner_alloc");
    TCase *tc = tcase_create("alloc");
#if ALLOC_COUNTING
    tcase_add_test(tc, test_no_allocation_in_plan);
    tcase_add_test(tc, test_no_allocation_in_batch);
    tcase_add_test(tc, test_no_allocation_issue14_methods);
#endif
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
