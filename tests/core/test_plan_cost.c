/* test_plan_cost.c: mb_plan_cost_of (planner.h), the bytes of a planning
 * request computed before anything is allocated, against what
 * mb_plan_ws_new and mb_plan_state_init actually allocate (this binary
 * counts the bytes asked of malloc/calloc/realloc, alloc_count.h), for
 * every method and propagation, known dynamics and ensembles, elites_only,
 * particles below and above the member count; issue 14's methods with
 * their own workspaces (mcts with and without tree_reuse, by simulations
 * and by max_ms alone; ilqr, lqr_flm, grad, cem_grad; discrete random and
 * cem) over discrete and continuous ensembles and known models; the
 * learned value and policy prior (terminal_value, policy_samples, costed
 * with mb_plan_cost_with_prior; without the networks nothing is made and
 * nothing costed); and the issue-10 request
 * (obs 256, act 64, population 100,000, particles 10, horizon 199) costed
 * at its ~10 GB without allocating it. Sanitizer builds keep their own
 * allocator: there the figures are checked against mb_plan_ws_bytes only. */
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"

#include "alloc_count.h"

/* Bytes and calls asked of the allocator so far (0 in sanitizer builds). */
static long bytes_now(void) {
#if ALLOC_COUNTING
    return atomic_load(&n_alloc_bytes);
#else
    return 0;
#endif
}
static long allocs_now(void) {
#if ALLOC_COUNTING
    return atomic_load(&n_allocs);
#else
    return 0;
#endif
}

static mb_ensemble_spec spec_of(int obs, int act, int members, int hidden, int layers) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.obs_dim = obs;
    s.act_dim = act;
    s.members = members;
    s.n_hidden = layers;
    for (int l = 0; l < layers; l++) s.hidden[l] = hidden;
    return s;
}

/* Checks one (cfg, dynamics) pair; dyn->ens may be NULL (known); the
 * networks of dyn->value and dyn->policy are costed with it. */
static void check_one(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    char err[200];
    mb_plan_cost c;
    const mb_ensemble_spec *spec = dyn->ens ? &dyn->ens->spec : NULL;
    ck_assert_msg(mb_plan_cost_with_prior(cfg, spec, dyn->obs_dim, dyn->act_dim,
                                          dyn->value ? &dyn->value->spec : NULL,
                                          dyn->policy ? &dyn->policy->spec : NULL, &c, err, sizeof err) == MB_OK,
                  "%s", err);
    if (!dyn->value && !dyn->policy) { /* the same figure without networks */
        mb_plan_cost c0;
        ck_assert_int_eq(mb_plan_cost_of(cfg, spec, dyn->obs_dim, dyn->act_dim, &c0, err, sizeof err), MB_OK);
        ck_assert(!memcmp(&c0, &c, sizeof c));
    }
    ck_assert_uint_eq(c.total, c.ws + c.ens_ws + c.state);
    ck_assert_msg((c.ens_ws == 0) == (spec == NULL), "ens_ws %zu", c.ens_ws);
    long before = bytes_now();
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    long ws_bytes = bytes_now() - before;
    ck_assert_ptr_nonnull(ws);
    ck_assert_uint_eq(mb_plan_ws_bytes(ws), c.ws + c.ens_ws);
    if (ALLOC_COUNTING)
        ck_assert_msg((size_t)ws_bytes == c.ws + c.ens_ws,
                      "%s/%s: mb_plan_ws_new allocated %ld bytes, the cost says %zu + %zu",
                      mb_plan_method_name(cfg->method), mb_prop_name(cfg->propagation), ws_bytes,
                      c.ws, c.ens_ws);
    mb_plan_state st;
    before = bytes_now();
    mb_status ss = mb_plan_state_init(&st, cfg, dyn->act_dim, err, sizeof err);
    long st_bytes = bytes_now() - before;
    ck_assert_int_eq(ss, MB_OK); /* libcheck's asserts allocate: after the count */
    if (ALLOC_COUNTING)
        ck_assert_msg((size_t)st_bytes == c.state, "%s: state allocated %ld bytes, the cost says %zu",
                      mb_plan_method_name(cfg->method), st_bytes, c.state);
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
}

START_TEST(test_cost_matches_allocation) {
    const int shapes[][5] = {{5, 2, 5, 16, 2}, {3, 1, 3, 32, 1}, {18, 6, 2, 64, 2}};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        mb_ensemble_spec spec = spec_of(shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3],
                                        shapes[sh][4]);
        mb_ensemble e;
        char err[160];
        ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
        float lo[8], hi[8];
        for (int a = 0; a < 8; a++) lo[a] = -1, hi[a] = 1;
        mb_dynamics ens = {.ens = &e, .obs_dim = spec.obs_dim, .act_dim = spec.act_dim,
                           .act_low = lo, .act_high = hi};
        const mb_known_model *pm = &mb_known_pendulum;
        mb_dynamics known = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                             .act_high = pm->act_high};
        for (int d = 0; d < 2; d++)
            for (int m = MB_PLAN_RANDOM; m <= MB_PLAN_ICEM; m++)
                for (int pr = 0; pr < 4; pr++)
                    for (int variant = 0; variant < 3; variant++) {
                        if (d == 1 && (pr > 0 || sh > 0)) break;
                        mb_planner_cfg cfg;
                        mb_planner_cfg_default(&cfg, (mb_plan_method)m);
                        cfg.horizon = 7 + variant * 4;
                        cfg.population = 60 + 17 * variant;
                        cfg.elites = 6 + variant;
                        cfg.iterations = 2;
                        cfg.particles = variant == 1 ? 1 : 7 + variant; /* 1: fewer than members */
                        cfg.propagation = (mb_prop)pr;
                        cfg.elites_only = variant == 2;
                        cfg.keep_elites = 0.3f + 0.3f * variant;
                        check_one(&cfg, d == 0 ? &ens : &known);
                    }
        mb_ensemble_free(&e);
    }
}
END_TEST

/* A known model with discrete actions (K = 3, one-hot). */
static void d3_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        next[2 * i] = obs[2 * i] + act[3 * i] - act[3 * i + 2];
        next[2 * i + 1] = obs[2 * i + 1] * 0.9f;
        if (reward) reward[i] = -next[2 * i] * next[2 * i];
    }
}
static const mb_known_model d3_model = {.name = "d3", .obs_dim = 2, .act_dim = 3, .step = d3_step};

/* Issue 14's methods: their workspaces (mb_plan_ws_new's hook) are in the
 * figure, to the byte, whatever their sizes depend on. */
START_TEST(test_cost_matches_allocation_issue14) {
    const int shapes[][5] = {{5, 2, 5, 16, 2}, {3, 1, 3, 32, 1}, {2, 3, 4, 8, 3}};
    const float lo[8] = {-1, -1, -1, -1, -1, -1, -1, -1}, hi[8] = {1, 1, 1, 1, 1, 1, 1, 1};
    const float zlo[3] = {0, 0, 0}, ohi[3] = {1, 1, 1};
    const mb_known_model *pm = &mb_known_pendulum;
    mb_dynamics known = {.known = pm, .obs_dim = 3, .act_dim = 1, .act_low = pm->act_low,
                         .act_high = pm->act_high};
    mb_dynamics dknown = {.known = &d3_model, .obs_dim = 2, .act_dim = 3, .act_low = zlo, .act_high = ohi,
                          .discrete = 3};
    const mb_plan_method cont[] = {MB_PLAN_ILQR, MB_PLAN_LQR_FLM, MB_PLAN_GRAD, MB_PLAN_CEM_GRAD};
    for (size_t sh = 0; sh < sizeof shapes / sizeof shapes[0]; sh++) {
        mb_ensemble_spec spec = spec_of(shapes[sh][0], shapes[sh][1], shapes[sh][2], shapes[sh][3],
                                        shapes[sh][4]);
        spec.learn_reward = sh != 1;
        mb_ensemble e;
        char err[160];
        ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
        mb_dynamics ens = {.ens = &e, .obs_dim = spec.obs_dim, .act_dim = spec.act_dim,
                           .act_low = lo, .act_high = hi};
        for (int i = 0; i < 4; i++)
            for (int variant = 0; variant < 2; variant++)
                for (int d = 0; d < 2; d++) {
                    if (d == 1 && sh > 0) break;
                    mb_planner_cfg cfg;
                    mb_planner_cfg_default(&cfg, cont[i]);
                    cfg.horizon = 6 + 5 * variant;
                    cfg.population = cont[i] == MB_PLAN_ILQR ? 2 + variant : 9 + 13 * variant;
                    cfg.elites = 4 + variant;
                    cfg.grad_elites = 1 + variant;
                    cfg.iterations = 2;
                    cfg.particles = 2 + 3 * variant;
                    cfg.elites_only = variant;
                    check_one(&cfg, d ? &known : &ens);
                }
        /* discrete actions: the ensemble takes K = act_dim one-hot inputs */
        if (spec.act_dim == 3) {
            mb_dynamics dens = ens;
            dens.act_low = zlo;
            dens.act_high = ohi;
            dens.discrete = 3;
            const mb_plan_method disc[] = {MB_PLAN_MCTS, MB_PLAN_RANDOM, MB_PLAN_CEM};
            for (int i = 0; i < 3; i++)
                for (int mode = 0; mode < 3; mode++)
                    for (int d = 0; d < 2; d++) {
                        mb_planner_cfg cfg;
                        mb_planner_cfg_default(&cfg, disc[i]);
                        cfg.horizon = 5 + mode;
                        cfg.population = disc[i] == MB_PLAN_MCTS ? 1 : 30 + mode;
                        cfg.elites = 4;
                        cfg.particles = 2 + mode;
                        cfg.leaf_batch = 3 + 5 * mode;
                        cfg.rollout_depth = 3;
                        cfg.tree_reuse = mode == 1;
                        /* mode 2: only the clock bounds mcts (its time capacity) */
                        cfg.simulations = mode == 2 ? 0 : 40 + 7 * mode;
                        cfg.max_ms = mode == 2 ? 5.0f : 0.0f;
                        check_one(&cfg, d ? &dknown : &dens);
                    }
        }
        mb_ensemble_free(&e);
    }
}
END_TEST

/* The learned value and policy prior: its scratch (a value workspace, the
 * policy's K rollouts through the model) is in the figure when the
 * networks are given, for CEM/MPPI/iCEM over known dynamics and ensembles;
 * a config asking for them without networks makes and costs nothing. */
START_TEST(test_cost_matches_allocation_prior) {
    mb_vnet v;
    mb_policy pi;
    mb_vnet_spec vs = {.obs_dim = 3, .n_hidden = 2, .hidden = {12, 7}, .activation = MB_ACT_TANH};
    ck_assert_int_eq(mb_vnet_init(&v, &vs, 1, NULL, 0), MB_OK);
    mb_policy_spec ps;
    mb_policy_spec_default(&ps);
    ps.obs_dim = 3;
    ps.act_dim = 1;
    ps.hidden[0] = ps.hidden[1] = 10;
    ck_assert_int_eq(mb_policy_init(&pi, &ps, 3, NULL, 0), MB_OK);
    mb_ensemble_spec spec = spec_of(3, 1, 4, 16, 2);
    mb_ensemble e;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(&e, &spec, 1, err, sizeof err), MB_OK);
    const float lo[1] = {-2}, hi[1] = {2};
    const mb_known_model *pm = &mb_known_pendulum;
    for (int d = 0; d < 2; d++)
        for (int m = MB_PLAN_CEM; m <= MB_PLAN_ICEM; m++)
            for (int which = 0; which < 4; which++) {
                mb_dynamics dyn = {.obs_dim = 3, .act_dim = 1, .act_low = lo, .act_high = hi};
                if (d) dyn.known = pm;
                else dyn.ens = &e;
                mb_planner_cfg cfg;
                mb_planner_cfg_default(&cfg, (mb_plan_method)m);
                cfg.horizon = 6;
                cfg.population = 300; /* K above the policy's 256-row chunk */
                cfg.elites = 8;
                cfg.iterations = 2;
                cfg.particles = 3;
                cfg.terminal_value = which & 1;
                cfg.policy_samples = which & 2 ? 280 : 0;
                if (which & 1) dyn.value = &v;
                if (which & 2) dyn.policy = &pi;
                check_one(&cfg, &dyn);
                /* without the networks: nothing made, nothing costed */
                mb_dynamics bare = dyn;
                bare.value = NULL;
                bare.policy = NULL;
                check_one(&cfg, &bare);
                if (which) { /* the prior is a real part of the figure */
                    mb_plan_cost with, without;
                    ck_assert_int_eq(mb_plan_cost_with_prior(&cfg, d ? NULL : &spec, 3, 1, &v.spec, &pi.spec,
                                                             &with, err, sizeof err), MB_OK);
                    ck_assert_int_eq(mb_plan_cost_of(&cfg, d ? NULL : &spec, 3, 1, &without, err, sizeof err),
                                     MB_OK);
                    ck_assert_uint_gt(with.ws, without.ws);
                }
            }
    /* a bad network spec is refused, not costed */
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    mb_plan_cost c;
    vs.n_hidden = 0;
    ck_assert_int_ne(mb_plan_cost_with_prior(&cfg, NULL, 3, 1, &vs, NULL, &c, err, sizeof err), MB_OK);
    mb_ensemble_free(&e);
    mb_policy_free(&pi);
    mb_vnet_free(&v);
}
END_TEST

/* The request of issue 10: costed without being allocated; the figure is
 * the sum of its big arrays (a hand count, within the small ones). */
START_TEST(test_issue10_request_costed_not_allocated) {
    mb_ensemble_spec spec = spec_of(256, 64, 5, 200, 4);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.population = 100000;
    cfg.particles = 10;
    cfg.horizon = 199;
    cfg.iterations = 1;
    char err[200];
    mb_plan_cost c;
    long before = allocs_now();
    mb_status cs = mb_plan_cost_of(&cfg, &spec, 256, 64, &c, err, sizeof err);
    long allocs = allocs_now() - before;
    ck_assert_msg(cs == MB_OK, "%s", err);
    ck_assert_int_le(allocs, 1); /* the temporary struct only */
    /* Hand count of the big arrays, in floats: candidates N H A; states
     * twice rows O; act rows rows A; x (rows + E) in; mu, sdv (rows + E) out. */
    double N = 100000, H = 199, A = 64, O = 256, rows = N * 10, E = 5, in = 320, out = 257;
    double big = 4.0 * (N * H * A + 2 * rows * O + rows * A + (rows + E) * (in + 2 * out));
    ck_assert_msg((double)c.total >= big && (double)c.total < big * 1.01,
                  "cost %zu bytes, the big arrays alone %.0f", c.total, big);
    ck_assert_msg(c.total > (size_t)9 << 30, "cost %zu bytes: under 9 GiB", c.total);
    /* an invalid config is refused, not costed */
    cfg.population = 0;
    ck_assert_int_eq(mb_plan_cost_of(&cfg, &spec, 256, 64, &c, err, sizeof err), MB_ERANGE);
}
END_TEST

int main(void) {
    Suite *s = suite_create("plan_cost");
    TCase *tc = tcase_create("plan_cost");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_cost_matches_allocation);
    tcase_add_test(tc, test_cost_matches_allocation_issue14);
    tcase_add_test(tc, test_cost_matches_allocation_prior);
    tcase_add_test(tc, test_issue10_request_costed_not_allocated);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
