/* test_sac.c: soft actor-critic (core/learn/sac.c) on 1-D problems with
 * closed-form answers.
 *
 * Bandit: s ~ U(-1, 1), a in [-1, 1], r = -(a - s/2)^2, every step
 * terminal. Q*(s, a) = -(a - s/2)^2 exactly, and whatever the entropy
 * coefficient the best mean action is s/2 (the reward is symmetric about
 * it and the squashed Gaussian is nearly symmetric well inside the
 * bounds), so after training the deterministic action is within 0.05 of
 * s/2 on a grid of s, Q_0 within 0.03 of Q* on a grid of (s, a) around the
 * optimum, and automatic tuning has brought the policy's entropy within
 * 0.4 nats of its target -1.
 * Discounted: s' = s (the state never changes), gamma 0.9, alpha fixed at
 * 1e-4: Q*(s, a) = -(a - s/2)^2 - gamma/(1 - gamma) c, where c >= 0 is the
 * optimal policy's small per-step cost (its variance plus alpha log pi,
 * below 0.01); checked: the deterministic action within 0.05 of s/2 and
 * Q_0(s, a) + (a - s/2)^2 equal across the grid within 0.05 (the shape of
 * Q* through the target networks' bootstrap) and within [-0.15, 0.05].
 * Also: the same seed and pool size give bit-identical agents; a pool of 2
 * matches no pool within float rounding; copies carry optimiser state.
 * Under the sanitizers the two closed-form runs take 100 updates and check
 * only that the update path runs clean (thousands take minutes there). */
#include <math.h>
#include <string.h>

#include "check_util.h"
#include "learn/sac.h"

static void spec1(mb_agent_spec *a) {
    mb_agent_spec_default(a);
    a->obs_dim = 1;
    a->act_dim = 1;
    a->hidden[0] = a->hidden[1] = 64;
}

static void fill_batch(mb_sac_batch *b, mb_rng *r, int terminal) {
    for (size_t i = 0; i < b->n; i++) {
        float s = (float)(2 * mb_rng_uniform(r) - 1), a = (float)(2 * mb_rng_uniform(r) - 1);
        b->obs[i] = s;
        b->act[i] = a;
        b->rew[i] = -(a - 0.5f * s) * (a - 0.5f * s);
        b->next_obs[i] = s;
        b->done[i] = terminal ? 1.0f : 0.0f;
    }
}

static void train(mb_sac *ag, const mb_sac_cfg *cfg, int updates, int terminal, mb_pool *pool,
                  uint64_t seed) {
    mb_sac_ws *ws = mb_sac_ws_new(ag, cfg, mb_pool_size(pool));
    ck_assert_ptr_nonnull(ws);
    mb_rng r, data;
    mb_rng_seed(&r, seed);
    mb_rng_seed(&data, seed + 1);
    char err[128];
    for (int u = 0; u < updates; u++) {
        fill_batch(mb_sac_ws_batch(ws), &data, terminal);
        ck_assert_int_eq(mb_sac_update(ag, cfg, ws, &r, pool, NULL, err, sizeof err), MB_OK);
    }
    mb_sac_ws_free(ws);
}

START_TEST(test_bandit_closed_form) {
    mb_agent_spec sp;
    spec1(&sp);
    mb_sac_cfg cfg;
    mb_sac_cfg_default(&cfg);
    cfg.batch_size = 128;
    cfg.lr_actor = cfg.lr_critic = cfg.lr_value = 1e-3f;
    cfg.lr_alpha = 3e-3f;
    mb_sac ag;
    char err[128];
    ck_assert_int_eq(mb_sac_init(&ag, &sp, &cfg, 1, err, sizeof err), MB_OK);
    if (mb_test_sanitized()) { /* minutes under ASan: the update path only */
        train(&ag, &cfg, 100, 1, NULL, 5);
        ck_assert_int_eq(ag.updates, 100);
        ck_assert(isfinite(ag.last.critic) && ag.last.alpha > 0);
        mb_sac_free(&ag);
        return;
    }
    train(&ag, &cfg, 3000, 1, NULL, 5);
    mb_policy_ws *pw = mb_policy_ws_new(&ag.pi.spec, 64);
    mb_qnet_ws *qw = mb_qnet_ws_new(&ag.q.spec, 64);
    for (int k = 0; k <= 10; k++) {
        float s = -0.9f + 0.18f * (float)k, a;
        mb_policy_act(&ag.pi, pw, &s, 1, NULL, &a, NULL);
        MB_ASSERT_CLOSE("bandit: deterministic action vs s/2", a, 0.5f * s, 0.05);
        for (int j = -2; j <= 2; j++) {
            float aa = 0.5f * s + 0.2f * (float)j, q;
            mb_qnet_forward(&ag.q, qw, 0, 0, &s, &aa, 1, &q);
            MB_ASSERT_CLOSE("bandit: Q_0 vs -(a - s/2)^2", q, -(aa - 0.5f * s) * (aa - 0.5f * s), 0.03);
        }
    }
    MB_ASSERT_CLOSE("bandit: entropy vs target -1", ag.last.entropy, -1.0, 0.4);
    ck_assert(ag.last.alpha > 0 && ag.last.alpha < cfg.init_alpha);
    ck_assert_int_eq(ag.updates, 3000);
    mb_policy_ws_free(pw);
    mb_qnet_ws_free(qw);
    mb_sac_free(&ag);
}
END_TEST

START_TEST(test_discounted_closed_form) {
    mb_agent_spec sp;
    spec1(&sp);
    mb_sac_cfg cfg;
    mb_sac_cfg_default(&cfg);
    cfg.batch_size = 128;
    cfg.gamma = 0.9f;
    cfg.tau = 0.02f;
    cfg.auto_alpha = 0;
    cfg.init_alpha = 1e-4f;
    cfg.lr_actor = cfg.lr_critic = cfg.lr_value = 1e-3f;
    mb_sac ag;
    ck_assert_int_eq(mb_sac_init(&ag, &sp, &cfg, 2, NULL, 0), MB_OK);
    if (mb_test_sanitized()) {
        train(&ag, &cfg, 100, 0, NULL, 9);
        ck_assert(isfinite(ag.last.critic));
        mb_sac_free(&ag);
        return;
    }
    train(&ag, &cfg, 4000, 0, NULL, 9);
    mb_policy_ws *pw = mb_policy_ws_new(&ag.pi.spec, 8);
    mb_qnet_ws *qw = mb_qnet_ws_new(&ag.q.spec, 8);
    float lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k <= 8; k++) {
        float s = -0.8f + 0.2f * (float)k, a;
        mb_policy_act(&ag.pi, pw, &s, 1, NULL, &a, NULL);
        MB_ASSERT_CLOSE("discounted: deterministic action vs s/2", a, 0.5f * s, 0.05);
        for (int j = -2; j <= 2; j++) {
            float aa = 0.5f * s + 0.15f * (float)j, q;
            mb_qnet_forward(&ag.q, qw, 0, 0, &s, &aa, 1, &q);
            float off = q + (aa - 0.5f * s) * (aa - 0.5f * s);
            lo = fminf(lo, off);
            hi = fmaxf(hi, off);
        }
    }
    ck_assert_msg(hi - lo <= 0.05f, "Q + (a - s/2)^2 spread %.4f over the grid", hi - lo);
    ck_assert_msg(lo >= -0.15f && hi <= 0.05f, "offset [%.4f, %.4f] outside [-0.15, 0.05]", lo, hi);
    mb_policy_ws_free(pw);
    mb_qnet_ws_free(qw);
    mb_sac_free(&ag);
}
END_TEST

START_TEST(test_determinism_pool_copy) {
    mb_agent_spec sp;
    spec1(&sp);
    sp.hidden[0] = 16;
    sp.hidden[1] = 12;
    mb_sac_cfg cfg;
    mb_sac_cfg_default(&cfg);
    cfg.batch_size = 37;
    mb_sac a, b, c, d;
    ck_assert_int_eq(mb_sac_init(&a, &sp, &cfg, 3, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_sac_init(&b, &sp, &cfg, 3, NULL, 0), MB_OK);
    ck_assert_int_eq(mb_sac_init(&c, &sp, &cfg, 3, NULL, 0), MB_OK);
    mb_pool *pool = mb_pool_new(2);
    train(&a, &cfg, 20, 0, pool, 4);
    train(&b, &cfg, 20, 0, pool, 4);
    train(&c, &cfg, 20, 0, NULL, 4);
    ck_assert_int_eq(memcmp(a.pi.params, b.pi.params, a.pi.n_params * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.q.target, b.q.target, a.q.n_params * sizeof(float)), 0);
    ck_assert(a.log_alpha == b.log_alpha);
    for (size_t i = 0; i < a.pi.n_params; i++)
        MB_ASSERT_CLOSE("pool 2 vs none", a.pi.params[i], c.pi.params[i], 1e-4);
    ck_assert_int_eq(mb_sac_copy(&d, &a, NULL, 0), MB_OK);
    train(&a, &cfg, 3, 0, NULL, 8);
    train(&d, &cfg, 3, 0, NULL, 8);
    ck_assert_int_eq(memcmp(a.pi.params, d.pi.params, a.pi.n_params * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(a.v.params, d.v.params, a.v.n_params * sizeof(float)), 0);
    ck_assert_int_eq(d.opt_q.t, a.opt_q.t);
    ck_assert(mb_sac_flops_per_update(&a, &cfg) > 0);
    mb_pool_free(pool);
    mb_sac_free(&a);
    mb_sac_free(&b);
    mb_sac_free(&c);
    mb_sac_free(&d);
}
END_TEST

START_TEST(test_cfg_check) {
    mb_sac_cfg c;
    mb_sac_cfg_default(&c);
    char err[128];
    ck_assert_int_eq(mb_sac_cfg_check(&c, err, sizeof err), MB_OK);
    c.gamma = 0;
    ck_assert_int_eq(mb_sac_cfg_check(&c, err, sizeof err), MB_ERANGE);
    mb_sac_cfg_default(&c);
    c.batch_size = 0;
    ck_assert_int_eq(mb_sac_cfg_check(&c, err, sizeof err), MB_ERANGE);
    mb_sac_cfg_default(&c);
    c.lr_actor = -1;
    ck_assert_int_eq(mb_sac_cfg_check(&c, err, sizeof err), MB_ERANGE);
    mb_agent_spec s;
    spec1(&s);
    s.act_high[0] = s.act_low[0];
    mb_sac ag;
    mb_sac_cfg_default(&c);
    ck_assert_int_eq(mb_sac_init(&ag, &s, &c, 1, err, sizeof err), MB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "bound 0"));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sac");
    TCase *tc = tcase_create("sac");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_bandit_closed_form);
    tcase_add_test(tc, test_discounted_closed_form);
    tcase_add_test(tc, test_determinism_pool_copy);
    tcase_add_test(tc, test_cfg_check);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
