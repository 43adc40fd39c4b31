/* test_distill.c: planner distillation with DAgger relabelling
 * (core/learn/distill.c) on Pendulum-v1 with the exact model as the
 * planner's dynamics (CEM, H 20, 200 candidates, 4 iterations).
 * Stated distance: on 100 held-out states drawn uniformly over the state
 * space (th in [-pi, pi], thdot in [-8, 8]), the mean of
 * |policy(s) - planner(s)| / 2 (half the torque range) is at most 0.25
 * after 5 rounds of 256 states (the planner disagrees with itself between
 * two runs by about 0.1 on the same states; the untrained policy is about
 * 0.6 away). Also: the aggregated dataset grows by `states` per round and
 * wraps at max_dataset, later rounds label states reached by the policy
 * through the model, a stop request cancels a round, the loss's gradient
 * step moves the policy toward the labels. Under the sanitizers: 2 rounds
 * of 64 states and only the bookkeeping is checked. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "learn/distill.h"
#include "learn/sac.h"

static void pendulum_buffer(mb_buffer *buf, size_t n, uint64_t seed) {
    const mb_known_model *k = &mb_known_pendulum;
    ck_assert_int_eq(mb_buffer_init(buf, 3, 1, n, 0, 0, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) {
        double th = (2 * mb_rng_uniform(&r) - 1) * M_PI, thd = (2 * mb_rng_uniform(&r) - 1) * 8;
        float o[3] = {(float)cos(th), (float)sin(th), (float)thd}, a = (float)(4 * mb_rng_uniform(&r) - 2), nx[3], rw;
        k->step(1, o, &a, nx, &rw);
        mb_buffer_append(buf, 1, o, &a, &rw, nx, NULL, NULL);
    }
}

static void make_policy(mb_policy *pi, mb_adam *opt, float lr) {
    mb_agent_spec sp;
    mb_agent_spec_default(&sp);
    sp.obs_dim = 3;
    sp.act_dim = 1;
    sp.act_low[0] = -2;
    sp.act_high[0] = 2;
    sp.hidden[0] = sp.hidden[1] = 64;
    mb_policy_spec ps;
    mb_agent_policy_spec(&sp, &ps);
    ck_assert_int_eq(mb_policy_init(pi, &ps, 1, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_adam_init(opt, pi->n_params, lr, NULL, 0), MB_OK);
}

static void cem(mb_planner_cfg *pc) {
    mb_planner_cfg_default(pc, MB_PLAN_CEM);
    pc->horizon = 20;
    pc->population = 200;
    pc->elites = 20;
    pc->iterations = 4;
    pc->particles = 1;
}

START_TEST(test_pendulum_held_out) {
    const mb_known_model *k = &mb_known_pendulum;
    const int san = mb_test_sanitized();
    mb_buffer buf;
    pendulum_buffer(&buf, 2000, 1);
    mb_policy pi;
    mb_adam opt;
    make_policy(&pi, &opt, 1e-3f);
    mb_planner_cfg pc;
    cem(&pc);
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high};
    mb_plan_ws *pws = mb_plan_ws_new(&pc, &dyn);
    ck_assert_ptr_nonnull(pws);
    mb_distill_cfg dc;
    mb_distill_cfg_default(&dc);
    dc.updates = 400;
    if (san) {
        dc.states = 64;
        dc.updates = 50;
    }
    mb_distill d;
    char err[128];
    ck_assert_int_eq(mb_distill_init(&d, &dc, 3, 1, 5, err, sizeof err), MB_OK);
    mb_distill_ws *ws = mb_distill_ws_new(&dc, &pi, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_distill_teacher t = {.cfg = &pc, .dyn = &dyn, .ws = pws};
    mb_distill_stats st;
    const int rounds = san ? 2 : 5;
    float first_gap = 0;
    for (int i = 0; i < rounds; i++) {
        ck_assert_int_eq(mb_distill_round(&d, &pi, &opt, &dc, &buf, &t, ws, &st, err, sizeof err), MB_OK);
        ck_assert_uint_eq(st.dataset, (size_t)(i + 1) * (size_t)dc.states);
        ck_assert_uint_eq(st.labelled, (size_t)dc.states);
        if (i == 0) first_gap = st.gap;
    }
    ck_assert_int_eq(d.rounds, rounds);
    if (!san) {
        ck_assert_msg(st.gap < 0.5f * first_gap, "on-policy gap %.3f vs first round %.3f", st.gap, first_gap);
        mb_rng hr;
        mb_rng_seed(&hr, 77);
        mb_policy_ws *pw = mb_policy_ws_new(&pi.spec, 1);
        double gap = 0;
        for (int i = 0; i < 100; i++) {
            double th = (2 * mb_rng_uniform(&hr) - 1) * M_PI, thd = (2 * mb_rng_uniform(&hr) - 1) * 8;
            float o[3] = {(float)cos(th), (float)sin(th), (float)thd}, a_plan, a_pol;
            ck_assert_int_eq(mb_plan(&pc, &dyn, NULL, o, NULL, &hr, pws, NULL, &a_plan, NULL, NULL, err, sizeof err), MB_OK);
            mb_policy_act(&pi, pw, o, 1, NULL, &a_pol, NULL);
            gap += fabsf(a_pol - a_plan) / 2;
        }
        ck_assert_msg(gap / 100 <= 0.25, "held-out mean |policy - planner| / 2 = %.3f (want <= 0.25)", gap / 100);
        mb_policy_ws_free(pw);
    }
    mb_distill_ws_free(ws);
    mb_distill_free(&d);
    mb_plan_ws_free(pws);
    mb_adam_free(&opt);
    mb_policy_free(&pi);
    mb_buffer_free(&buf);
}
END_TEST

static int stop_after(void *ctx) {
    int *left = ctx;
    return (*left)-- <= 0;
}

START_TEST(test_ring_cancel_and_update) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_buffer buf;
    pendulum_buffer(&buf, 100, 2);
    mb_policy pi;
    mb_adam opt;
    make_policy(&pi, &opt, 1e-2f);
    mb_planner_cfg pc;
    cem(&pc);
    pc.population = 20;
    pc.elites = 4;
    pc.horizon = 5;
    pc.iterations = 1;
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high};
    mb_plan_ws *pws = mb_plan_ws_new(&pc, &dyn);
    mb_distill_cfg dc;
    mb_distill_cfg_default(&dc);
    dc.states = 8;
    dc.max_dataset = 20;
    dc.updates = 2;
    char err[128];
    ck_assert_int_eq(mb_distill_cfg_check(&dc, err, sizeof err), MB_OK);
    mb_distill d;
    ck_assert_int_eq(mb_distill_init(&d, &dc, 3, 1, 1, err, sizeof err), MB_OK);
    mb_distill_ws *ws = mb_distill_ws_new(&dc, &pi, &dyn);
    mb_distill_teacher t = {.cfg = &pc, .dyn = &dyn, .ws = pws};
    mb_distill_stats st;
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mb_distill_round(&d, &pi, &opt, &dc, &buf, &t, ws, &st, err, sizeof err), MB_OK);
    ck_assert_uint_eq(st.dataset, 20);
    ck_assert_uint_eq(d.head, 24 % 20);
    /* later rounds label states the policy reached through the model: some
     * are not buffer states */
    int off_data = 0;
    for (size_t i = 0; i < d.n; i++) {
        int found = 0;
        for (size_t j = 0; j < buf.size && !found; j++)
            found = !memcmp(d.obs + i * 3, buf.obs + j * 3, 3 * sizeof(float));
        off_data += !found;
    }
    ck_assert_int_gt(off_data, 0);
    int left = 3;
    t.should_stop = stop_after;
    t.stop_ctx = &left;
    ck_assert_int_eq(mb_distill_round(&d, &pi, &opt, &dc, &buf, &t, ws, &st, err, sizeof err), MB_ECANCELED);
    ck_assert_uint_eq(st.labelled, 3);
    ck_assert_int_eq(d.rounds, 3);
    /* the update moves the deterministic action toward the label */
    float o[3] = {1, 0, 0}, label = 1.5f, before, after;
    mb_policy_ws *pw = mb_policy_ws_new(&pi.spec, 1);
    mb_policy_act(&pi, pw, o, 1, NULL, &before, NULL);
    float l0 = mb_distill_update(&pi, &opt, ws, o, &label, 1);
    for (int i = 0; i < 20; i++) mb_distill_update(&pi, &opt, ws, o, &label, 1);
    mb_policy_act(&pi, pw, o, 1, NULL, &after, NULL);
    MB_ASSERT_CLOSE("first loss", l0, 0.5 * ((before - label) / 2) * ((before - label) / 2), 1e-4);
    ck_assert(fabsf(after - label) < fabsf(before - label));
    dc.max_dataset = 4;
    ck_assert_int_eq(mb_distill_cfg_check(&dc, err, sizeof err), MB_ERANGE);
    mb_buffer empty;
    mb_buffer_init(&empty, 3, 1, 4, 0, 0, NULL, 0);
    t.should_stop = NULL;
    dc.max_dataset = 20;
    ck_assert_int_eq(mb_distill_round(&d, &pi, &opt, &dc, &empty, &t, ws, &st, err, sizeof err), MB_ESTATE);
    mb_buffer_free(&empty);
    mb_policy_ws_free(pw);
    mb_distill_ws_free(ws);
    mb_distill_free(&d);
    mb_plan_ws_free(pws);
    mb_adam_free(&opt);
    mb_policy_free(&pi);
    mb_buffer_free(&buf);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("distill");
    TCase *tc = tcase_create("distill");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pendulum_held_out);
    tcase_add_test(tc, test_ring_cancel_and_update);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
