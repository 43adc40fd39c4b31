/* test_prior.c: MPC with a learned value and a policy prior
 * (core/plan/prior.c), on Pendulum-v1's known dynamics.
 *   - terminal value: with V = c everywhere (a network whose output layer is
 *     zero with bias c) and no bounds, every candidate's return moves by
 *     discount^H c, so the same seed picks the same plan and the predicted
 *     return differs by exactly that (float tolerance 1e-4 relative);
 *     with a bound that ends every rollout, nothing is added;
 *   - policy samples: with a reward of -a^2 only and a policy whose
 *     deterministic action is 0, iCEM (best candidate seen) returns exactly
 *     the policy's sequence (action 0, predicted return 0), which random
 *     sampling alone never hits; through an ensemble the seeded plan is
 *     finite and the workspace sizes itself for it;
 *   - preconditions: terminal_value without a value network and
 *     policy_samples without a policy are MB_ESTATE; policy_samples above
 *     the population is refused by the check; a workspace made without the
 *     prior does not fit a config that wants it. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "plan/planner.h"

static void const_value(mb_vnet *v, float c) {
    mb_vnet_spec vs = {.obs_dim = 3, .n_hidden = 1, .hidden = {8}, .activation = MB_ACT_TANH};
    ck_assert_int_eq(mb_vnet_init(v, &vs, 1, NULL, 0), MB_OK);
    size_t wo = mb_mlp_W_offset(&v->mlp, 1), bo = mb_mlp_b_offset(&v->mlp, 1);
    memset(v->params + wo, 0, (bo - wo) * sizeof(float));
    v->params[bo] = c;
}

static void zero_policy(mb_policy *p) {
    mb_policy_spec ps;
    mb_policy_spec_default(&ps);
    ps.obs_dim = 3;
    ps.act_dim = 1;
    ps.hidden[0] = ps.hidden[1] = 8;
    ps.act_low[0] = -2;
    ps.act_high[0] = 2;
    ck_assert_int_eq(mb_policy_init(p, &ps, 3, NULL, 0), MB_OK);
    size_t wo = mb_mlp_W_offset(&p->mlp, 2);
    memset(p->params + wo, 0, (p->n_params - wo) * sizeof(float)); /* mean 0, log-std mid */
}

START_TEST(test_terminal_value_shift) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_vnet v;
    const_value(&v, 3.0f);
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high, .value = &v};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.discount = 0.9f;
    mb_planner_cfg c0;
    mb_planner_cfg_default(&c0, MB_PLAN_CEM);
    c0.horizon = 5;
    c0.population = 40;
    c0.elites = 5;
    c0.iterations = 2;
    mb_planner_cfg c1 = c0;
    c1.terminal_value = 1;
    mb_plan_ws *w0 = mb_plan_ws_new(&c0, &dyn), *w1 = mb_plan_ws_new(&c1, &dyn);
    ck_assert_ptr_nonnull(w0);
    ck_assert_ptr_nonnull(w1);
    ck_assert(!mb_plan_ws_fits(w0, &c1, &dyn));
    ck_assert(mb_plan_ws_fits(w1, &c1, &dyn));
    float obs[3] = {0.6f, 0.8f, 0.5f}, a0, a1, p0[5], p1[5];
    mb_rng r0, r1;
    mb_rng_seed(&r0, 5);
    mb_rng_seed(&r1, 5);
    mb_plan_info i0, i1;
    char err[200];
    ck_assert_int_eq(mb_plan(&c0, &dyn, &rw, obs, NULL, &r0, w0, NULL, &a0, p0, &i0, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_plan(&c1, &dyn, &rw, obs, NULL, &r1, w1, NULL, &a1, p1, &i1, err, sizeof err), MB_OK);
    ck_assert(a0 == a1);
    ck_assert_int_eq(memcmp(p0, p1, sizeof p0), 0);
    double shift = 3.0 * pow(0.9, 5);
    MB_ASSERT_CLOSE("return shift = discount^H c", i1.predicted_return - i0.predicted_return, shift,
                    1e-4 * fabs(i0.predicted_return) + 1e-4);
    /* dead particles get no value */
    rw.n_bounds = 1;
    rw.bounds[0] = (mb_bound){.index = 0, .has_min = 1, .min = 2.0f}; /* cos th > 2: never alive */
    mb_rng_seed(&r1, 5);
    ck_assert_int_eq(mb_plan(&c1, &dyn, &rw, obs, NULL, &r1, w1, NULL, &a1, NULL, &i1, err, sizeof err), MB_OK);
    ck_assert(fabsf(i1.predicted_return) < 20.0f); /* the first step's reward only, no value */
    mb_rng_seed(&r0, 5);
    ck_assert_int_eq(mb_plan(&c0, &dyn, &rw, obs, NULL, &r0, w0, NULL, &a0, NULL, &i0, err, sizeof err), MB_OK);
    MB_ASSERT_CLOSE("no value after termination", i1.predicted_return, i0.predicted_return, 1e-6);
    /* without a value network */
    dyn.value = NULL;
    ck_assert_int_eq(mb_plan(&c1, &dyn, &rw, obs, NULL, &r1, w1, NULL, &a1, NULL, NULL, err, sizeof err), MB_ESTATE);
    ck_assert_ptr_nonnull(strstr(err, "terminal_value"));
    mb_plan_ws_free(w0);
    mb_plan_ws_free(w1);
    mb_vnet_free(&v);
}
END_TEST

START_TEST(test_policy_samples_seed) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_policy pol;
    zero_policy(&pol);
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high, .policy = &pol};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 1.0f};
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, MB_PLAN_ICEM);
    c.horizon = 6;
    c.population = 30;
    c.elites = 5;
    c.iterations = 2;
    float obs[3] = {1, 0, 0}, a, plan[6];
    mb_plan_info info;
    char err[200];
    mb_rng r;
    mb_rng_seed(&r, 2);
    mb_plan_ws *w0 = mb_plan_ws_new(&c, &dyn);
    ck_assert_int_eq(mb_plan(&c, &dyn, &rw, obs, NULL, &r, w0, NULL, &a, plan, &info, err, sizeof err), MB_OK);
    ck_assert(info.predicted_return < 0.0f); /* random sampling never hits 0 exactly */
    c.policy_samples = 4;
    mb_plan_ws *w1 = mb_plan_ws_new(&c, &dyn);
    ck_assert(!mb_plan_ws_fits(w0, &c, &dyn));
    mb_rng_seed(&r, 2);
    ck_assert_int_eq(mb_plan(&c, &dyn, &rw, obs, NULL, &r, w1, NULL, &a, plan, &info, err, sizeof err), MB_OK);
    MB_ASSERT_CLOSE("policy's return", info.predicted_return, 0.0, 1e-6);
    for (int t = 0; t < 6; t++) MB_ASSERT_CLOSE("policy's sequence", plan[t], 0.0, 1e-6);
    c.policy_samples = 31;
    ck_assert_int_eq(mb_planner_cfg_check(&c, 0, err, sizeof err), MB_ERANGE);
    c.policy_samples = 4;
    dyn.policy = NULL;
    ck_assert_int_eq(mb_plan(&c, &dyn, &rw, obs, NULL, &r, w1, NULL, &a, NULL, NULL, err, sizeof err), MB_ESTATE);
    mb_plan_ws_free(w0);
    mb_plan_ws_free(w1);
    /* through an ensemble, with MPPI and CEM and a value too */
    mb_ensemble_spec es;
    mb_ensemble_spec_default(&es);
    es.members = 3;
    es.obs_dim = 3;
    es.act_dim = 1;
    es.n_hidden = 1;
    es.hidden[0] = 8;
    mb_ensemble e;
    ck_assert_int_eq(mb_ensemble_init(&e, &es, 1, NULL, 0), MB_OK);
    mb_vnet v;
    const_value(&v, 1.0f);
    mb_dynamics de = {.ens = &e, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high,
                      .value = &v, .policy = &pol};
    mb_plan_method ms[2] = {MB_PLAN_MPPI, MB_PLAN_CEM};
    for (int i = 0; i < 2; i++) {
        mb_planner_cfg_default(&c, ms[i]);
        c.horizon = 4;
        c.population = 20;
        c.elites = 4;
        c.particles = 2; /* fewer particles than members */
        c.iterations = 2;
        c.policy_samples = 20;
        c.terminal_value = 1;
        mb_plan_ws *w = mb_plan_ws_new(&c, &de);
        ck_assert_ptr_nonnull(w);
        ck_assert_int_eq(mb_plan(&c, &de, NULL, obs, NULL, &r, w, NULL, &a, NULL, &info, err, sizeof err), MB_OK);
        ck_assert(isfinite(info.predicted_return));
        mb_plan_ws_free(w);
    }
    mb_vnet_free(&v);
    mb_ensemble_free(&e);
    mb_policy_free(&pol);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("prior");
    TCase *tc = tcase_create("prior");
    tcase_add_test(tc, test_terminal_value_shift);
    tcase_add_test(tc, test_policy_samples_seed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
