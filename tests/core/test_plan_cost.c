/* test_plan_cost.c: mb_plan_cost_of (planner.h), the bytes of a planning
 * request computed before anything is allocated, against what
 * mb_plan_ws_new and mb_plan_state_init actually allocate (this binary
 * counts the bytes asked of malloc/calloc/realloc, alloc_count.h), for
 * every method and propagation, known dynamics and ensembles, elites_only,
 * particles below and above the member count; and the issue-10 request
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

/* Checks one (cfg, dynamics) pair; dyn->ens may be NULL (known). */
static void check_one(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    char err[200];
    mb_plan_cost c;
    const mb_ensemble_spec *spec = dyn->ens ? &dyn->ens->spec : NULL;
    ck_assert_msg(mb_plan_cost_of(cfg, spec, dyn->obs_dim, dyn->act_dim, &c, err, sizeof err) == MB_OK,
                  "%s", err);
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
    tcase_add_test(tc, test_issue10_request_costed_not_allocated);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
