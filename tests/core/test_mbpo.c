/* test_mbpo.c: MBPO (core/learn/mbpo.c).
 *   - the rollout-length schedule and the model buffer's size;
 *   - the declared bounds end rollouts (terminal transitions recorded,
 *     terminal rows not continued);
 *   - the whole loop on Pendulum-v1 with the exact model (known dynamics):
 *     from 2,000 transitions spread over the state space, 300 MBPO steps
 *     (6,000 SAC updates, 64 x 64 networks) give a deterministic policy
 *     whose mean return over 3 true episodes beats -400 (a random policy
 *     earns about -1,200; measured -123). Under the sanitizers the loop
 *     runs 30 steps and only its bookkeeping is checked. */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "learn/mbpo.h"
#include "plan/known.h"

START_TEST(test_schedule_and_capacity) {
    mb_mbpo_cfg c;
    mb_mbpo_cfg_default(&c);
    char err[128];
    ck_assert_int_eq(mb_mbpo_cfg_check(&c, err, sizeof err), MB_OK);
    ck_assert_int_eq(c.rollouts, 400);
    ck_assert_int_eq(c.updates_per_step, 20);
    MB_ASSERT_CLOSE("real ratio", c.real_ratio, 0.05, 1e-7);
    ck_assert_int_eq(mb_mbpo_length(&c, 0), 1);
    ck_assert_int_eq(mb_mbpo_length(&c, 1000000), 1);
    ck_assert_uint_eq(mb_mbpo_model_capacity(&c), 400u * 1000u);
    c.min_length = 1;
    c.max_length = 15;
    c.min_epoch = 2;
    c.max_epoch = 9;
    c.epoch_steps = 10;
    ck_assert_int_eq(mb_mbpo_length(&c, 15), 1);
    ck_assert_int_eq(mb_mbpo_length(&c, 20), 1);
    ck_assert_int_eq(mb_mbpo_length(&c, 55), 1 + (int)floor((5.5 - 2) / 7 * 14));
    ck_assert_int_eq(mb_mbpo_length(&c, 90), 15);
    ck_assert_int_eq(mb_mbpo_length(&c, 500), 15);
    c.retain_steps = 1000000;
    ck_assert_uint_eq(mb_mbpo_model_capacity(&c), MB_MBPO_MAX_MODEL_ROWS);
    c.min_length = 3;
    c.max_length = 2;
    ck_assert_int_eq(mb_mbpo_cfg_check(&c, err, sizeof err), MB_ERANGE);
    mb_mbpo_cfg_default(&c);
    c.real_ratio = 1.5f;
    ck_assert_int_eq(mb_mbpo_cfg_check(&c, err, sizeof err), MB_ERANGE);
    mb_mbpo_cfg_default(&c);
    c.sac.gamma = 2;
    ck_assert_int_eq(mb_mbpo_cfg_check(&c, err, sizeof err), MB_ERANGE);
}
END_TEST

static void agent(mb_sac *ag, const mb_mbpo_cfg *cfg, int obs, int act, float lo, float hi, int hidden) {
    mb_agent_spec sp;
    mb_agent_spec_default(&sp);
    sp.obs_dim = obs;
    sp.act_dim = act;
    sp.hidden[0] = sp.hidden[1] = hidden;
    for (int j = 0; j < act; j++) {
        sp.act_low[j] = lo;
        sp.act_high[j] = hi;
    }
    char err[128];
    ck_assert_int_eq(mb_sac_init(ag, &sp, &cfg->sac, 1, err, sizeof err), MB_OK);
}

static void pendulum_data(mb_buffer *buf, size_t n, mb_rng *r) {
    const mb_known_model *k = &mb_known_pendulum;
    for (size_t i = 0; i < n; i++) {
        double th = (2 * mb_rng_uniform(r) - 1) * M_PI, thd = (2 * mb_rng_uniform(r) - 1) * 8;
        float o[3] = {(float)cos(th), (float)sin(th), (float)thd}, a = (float)(4 * mb_rng_uniform(r) - 2), nx[3], rw;
        k->step(1, o, &a, nx, &rw);
        mb_buffer_append(buf, 1, o, &a, &rw, nx, NULL, NULL);
    }
}

START_TEST(test_bounds_end_rollouts) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_mbpo_cfg cfg;
    mb_mbpo_cfg_default(&cfg);
    cfg.rollouts = 200;
    cfg.min_length = cfg.max_length = 5;
    cfg.retain_steps = 2;
    cfg.updates_per_step = 1;
    cfg.sac.batch_size = 32;
    mb_sac ag;
    agent(&ag, &cfg, 3, 1, -2, 2, 16);
    mb_buffer buf;
    ck_assert_int_eq(mb_buffer_init(&buf, 3, 1, 500, 0, 0, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 3);
    pendulum_data(&buf, 500, &r);
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_bounds = 1; /* alive while cos th > 0 (upper half) */
    rw.bounds[0] = (mb_bound){.index = 0, .has_min = 1, .min = 0.0f};
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high};
    mb_mbpo m;
    char err[128];
    ck_assert_int_eq(mb_mbpo_init(&m, &cfg, 3, 1, 7, err, sizeof err), MB_OK);
    mb_mbpo_ws *ws = mb_mbpo_ws_new(&cfg, &ag, &dyn, 1);
    mb_mbpo_stats st;
    ck_assert_int_eq(mb_mbpo_step(&m, &ag, &cfg, &buf, &dyn, &rw, ws, NULL, &st, err, sizeof err), MB_OK);
    ck_assert_int_eq(st.length, 5);
    /* about half the starts are in the lower half: they end at once */
    ck_assert_uint_lt(st.simulated, 200u * 5u * 3u / 4u);
    ck_assert_uint_ge(st.simulated, 200u);
    size_t terminal = 0;
    for (size_t i = 0; i < m.model.size; i++) {
        size_t s = mb_buffer_slot(&m.model, i);
        if (m.model.terminated[s]) {
            terminal++;
            ck_assert(!(m.model.next_obs[s * 3] > 0.0f));
        } else {
            ck_assert(m.model.next_obs[s * 3] > 0.0f);
        }
    }
    ck_assert_uint_gt(terminal, 50);
    ck_assert_uint_eq(st.model_rows, m.model.size);
    /* retention: two steps' worth at most */
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(mb_mbpo_step(&m, &ag, &cfg, &buf, &dyn, &rw, ws, NULL, &st, err, sizeof err), MB_OK);
    ck_assert_uint_le(m.model.size, 200u * 5u * 2u);
    ck_assert_int_eq(m.steps, 4);
    ck_assert_int_eq(ag.updates, 4);
    /* an empty buffer is refused */
    mb_buffer empty;
    ck_assert_int_eq(mb_buffer_init(&empty, 3, 1, 10, 0, 0, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_mbpo_step(&m, &ag, &cfg, &empty, &dyn, &rw, ws, NULL, &st, err, sizeof err), MB_ESTATE);
    mb_buffer_free(&empty);
    mb_mbpo_ws_free(ws);
    mb_mbpo_free(&m);
    mb_buffer_free(&buf);
    mb_sac_free(&ag);
}
END_TEST

static double pendulum_episode(const mb_sac *ag, mb_policy_ws *pw, mb_rng *r) {
    const mb_known_model *k = &mb_known_pendulum;
    double th = (2 * mb_rng_uniform(r) - 1) * M_PI, thd = 2 * mb_rng_uniform(r) - 1, R = 0;
    float obs[3] = {(float)cos(th), (float)sin(th), (float)thd}, a, nx[3], rew;
    for (int t = 0; t < 200; t++) {
        mb_policy_act(&ag->pi, pw, obs, 1, NULL, &a, NULL);
        k->step(1, obs, &a, nx, &rew);
        R += rew;
        memcpy(obs, nx, sizeof obs);
    }
    return R;
}

START_TEST(test_pendulum_exact_model) {
    const mb_known_model *k = &mb_known_pendulum;
    mb_mbpo_cfg cfg;
    mb_mbpo_cfg_default(&cfg);
    cfg.retain_steps = 50;
    mb_sac ag;
    agent(&ag, &cfg, 3, 1, -2, 2, 64);
    mb_buffer buf;
    ck_assert_int_eq(mb_buffer_init(&buf, 3, 1, 2000, 0, 0, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 1);
    pendulum_data(&buf, 2000, &r);
    mb_dynamics dyn = {.known = k, .obs_dim = 3, .act_dim = 1, .act_low = k->act_low, .act_high = k->act_high};
    mb_mbpo m;
    char err[128];
    ck_assert_int_eq(mb_mbpo_init(&m, &cfg, 3, 1, 2, err, sizeof err), MB_OK);
    mb_pool *pool = mb_pool_new(2);
    mb_mbpo_ws *ws = mb_mbpo_ws_new(&cfg, &ag, &dyn, 2);
    const int steps = mb_test_sanitized() ? 30 : 300;
    mb_mbpo_stats st;
    for (int s = 0; s < steps; s++)
        ck_assert_int_eq(mb_mbpo_step(&m, &ag, &cfg, &buf, &dyn, NULL, ws, pool, &st, err, sizeof err), MB_OK);
    ck_assert_int_eq(ag.updates, 20L * steps);
    ck_assert_uint_eq(st.model_rows, (size_t)(steps < 50 ? steps : 50) * 400u);
    ck_assert(isfinite(st.losses.critic) && st.losses.alpha > 0);
    if (!mb_test_sanitized()) {
        mb_policy_ws *pw = mb_policy_ws_new(&ag.pi.spec, 1);
        mb_rng er;
        mb_rng_seed(&er, 99);
        double R = 0;
        for (int e = 0; e < 3; e++) R += pendulum_episode(&ag, pw, &er);
        ck_assert_msg(R / 3 > -400, "mean return %.1f over 3 episodes (want > -400)", R / 3);
        mb_policy_ws_free(pw);
    }
    mb_mbpo_ws_free(ws);
    mb_pool_free(pool);
    mb_mbpo_free(&m);
    mb_buffer_free(&buf);
    mb_sac_free(&ag);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mbpo");
    TCase *tc = tcase_create("mbpo");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_schedule_and_capacity);
    tcase_add_test(tc, test_bounds_end_rollouts);
    tcase_add_test(tc, test_pendulum_exact_model);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
