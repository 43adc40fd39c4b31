/* test_bptt.c: backpropagation through the model (core/learn/bptt.c).
 *   - the analytic dJ/dtheta against central differences of J itself
 *     along 4 random unit directions in parameter space (float J, step
 *     1e-2: |g.v - fd| <= 2e-2 |fd| + 2e-5), on an untrained ensemble
 *     (2 obs, 2 actions, learned reward head, normalisers not identity),
 *     H = 4, gamma 0.9, every declared term type (linear, quadratic, norm to
 *     a target and between groups, action_l2, constant) and the terminal
 *     value: every path of the backward is exercised; bounds are left out
 *     (the alive mask makes J a step function);
 *   - learning: a point mass s' = s + 0.5 a, reward -s'^2 (declared), an
 *     ensemble fitted to 2,000 transitions of it; 300 BPTT steps at H 5
 *     turn a policy into one that pushes toward 0 (pi(1) < -0.3,
 *     pi(-1) > 0.3) and raise the model return by more than half;
 *   - known dynamics are refused; the gradient norm is finite for H from
 *     1 to 50 (bench policy reports how it grows). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "learn/bptt.h"
#include "learn/trainer.h"

static void make_policy(mb_policy *pi, int obs, int act, int hidden, mb_activation a, uint64_t seed) {
    mb_policy_spec ps;
    mb_policy_spec_default(&ps);
    ps.obs_dim = obs;
    ps.act_dim = act;
    ps.hidden[0] = ps.hidden[1] = hidden;
    ps.activation = a;
    ck_assert_int_eq(mb_policy_init(pi, &ps, seed, NULL, 0), MB_OK);
}

START_TEST(test_gradient_directional) {
    mb_ensemble_spec es;
    mb_ensemble_spec_default(&es);
    es.members = 3;
    es.obs_dim = 2;
    es.act_dim = 2;
    es.n_hidden = 2;
    es.hidden[0] = es.hidden[1] = 12;
    mb_ensemble e;
    ck_assert_int_eq(mb_ensemble_init(&e, &es, 3, NULL, 0), MB_OK);
    e.n_elites = 2;
    e.elites[0] = 2;
    e.elites[1] = 0;
    for (int i = 0; i < 4; i++) {
        e.in_mean[i] = 0.1f * (float)i;
        e.in_std[i] = 1.0f + 0.2f * (float)i;
    }
    for (int o = 0; o < 3; o++) {
        e.out_mean[o] = 0.05f * (float)o;
        e.out_std[o] = 0.5f + 0.1f * (float)o;
    }
    mb_policy pi;
    make_policy(&pi, 2, 2, 10, MB_ACT_TANH, 4);
    mb_vnet_spec vs = {.obs_dim = 2, .n_hidden = 1, .hidden = {8}, .activation = MB_ACT_SILU};
    mb_vnet v;
    ck_assert_int_eq(mb_vnet_init(&v, &vs, 5, NULL, 0), MB_OK);
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.n_terms = 6;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_LINEAR, .weight = 0.3f, .n_idx = 1, .idx = {1}};
    rw.terms[1] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 0.2f, .n_idx = 2, .idx = {0, 1}, .target = {0.5f, -0.2f}};
    rw.terms[2] = (mb_reward_term){.type = MB_TERM_NORM, .weight = 0.1f, .n_idx = 1, .idx = {0}, .target = {3.0f}};
    rw.terms[3] = (mb_reward_term){.type = MB_TERM_NORM, .weight = 0.15f, .n_idx = 1, .idx = {0}, .n_other = 1, .other = {1}};
    rw.terms[4] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.05f};
    rw.terms[5] = (mb_reward_term){.type = MB_TERM_CONSTANT, .weight = 1.0f};
    const float lo[2] = {-1, -1}, hi[2] = {1, 1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 2, .act_low = lo, .act_high = hi};
    mb_bptt_cfg cfg;
    mb_bptt_cfg_default(&cfg);
    cfg.horizon = 4;
    cfg.batch_size = 16;
    cfg.gamma = 0.9f;
    cfg.use_value = 1;
    mb_bptt_ws *ws = mb_bptt_ws_new(&cfg, &pi, &v, &dyn);
    ck_assert_ptr_nonnull(ws);
    float obs0[32];
    mb_rng r;
    mb_rng_seed(&r, 8);
    mb_rng_fill_normal(&r, obs0, 32, 0, 1);
    float *g = malloc(pi.n_params * sizeof(float)), *g2 = malloc(pi.n_params * sizeof(float)),
          *dir = malloc(pi.n_params * sizeof(float)), *keep = malloc(pi.n_params * sizeof(float));
    char err[128];
    mb_bptt_stats st;
    ck_assert_int_eq(mb_bptt_grad(&pi, &v, &cfg, &dyn, &rw, obs0, 16, ws, g, &st, err, sizeof err), MB_OK);
    ck_assert(st.grad_norm > 0 && isfinite(st.ret) && st.obs_grad_norm > 0);
    memcpy(keep, pi.params, pi.n_params * sizeof(float));
    for (int d = 0; d < 4; d++) {
        mb_rng_fill_normal(&r, dir, pi.n_params, 0, 1);
        double nn = 0, gv = 0;
        for (size_t i = 0; i < pi.n_params; i++) nn += (double)dir[i] * dir[i];
        for (size_t i = 0; i < pi.n_params; i++) {
            dir[i] /= (float)sqrt(nn);
            gv -= (double)g[i] * dir[i]; /* g is d(-J)/dtheta */
        }
        const float h = 1e-2f;
        mb_bptt_stats sp, sm;
        for (size_t i = 0; i < pi.n_params; i++) pi.params[i] = keep[i] + h * dir[i];
        ck_assert_int_eq(mb_bptt_grad(&pi, &v, &cfg, &dyn, &rw, obs0, 16, ws, g2, &sp, err, sizeof err), MB_OK);
        for (size_t i = 0; i < pi.n_params; i++) pi.params[i] = keep[i] - h * dir[i];
        ck_assert_int_eq(mb_bptt_grad(&pi, &v, &cfg, &dyn, &rw, obs0, 16, ws, g2, &sm, err, sizeof err), MB_OK);
        memcpy(pi.params, keep, pi.n_params * sizeof(float));
        double fd = ((double)sp.ret - sm.ret) / (2.0 * h);
        if (getenv("MB_DEBUG")) fprintf(stderr, "dir %d: analytic %.6g fd %.6g J %.4f\n", d, gv, fd, st.ret);
        MB_ASSERT_CLOSE("dJ/dtheta . v vs central difference", gv, fd, 2e-2 * fabs(fd) + 2e-5);
    }
    /* the gradient norm stays finite over horizons */
    for (int H = 1; H <= 50; H *= 7) {
        mb_bptt_cfg c2 = cfg;
        c2.horizon = H;
        mb_bptt_ws *w2 = mb_bptt_ws_new(&c2, &pi, &v, &dyn);
        ck_assert_int_eq(mb_bptt_grad(&pi, &v, &c2, &dyn, &rw, obs0, 16, w2, g2, &st, err, sizeof err), MB_OK);
        ck_assert(isfinite(st.grad_norm));
        mb_bptt_ws_free(w2);
    }
    /* known dynamics have no derivatives */
    const mb_known_model *km = &mb_known_pendulum;
    mb_dynamics kd = {.known = km, .obs_dim = 3, .act_dim = 1, .act_low = km->act_low, .act_high = km->act_high};
    ck_assert_ptr_null(mb_bptt_ws_new(&cfg, &pi, &v, &kd));
    free(g);
    free(g2);
    free(dir);
    free(keep);
    mb_bptt_ws_free(ws);
    mb_vnet_free(&v);
    mb_policy_free(&pi);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_point_mass_learns) {
    mb_ensemble_spec es;
    mb_ensemble_spec_default(&es);
    es.members = 2;
    es.obs_dim = 1;
    es.act_dim = 1;
    es.learn_reward = 0;
    es.n_hidden = 2;
    es.hidden[0] = es.hidden[1] = 32;
    for (int l = 0; l <= 2; l++) es.weight_decay[l] = 0;
    mb_ensemble e;
    ck_assert_int_eq(mb_ensemble_init(&e, &es, 1, NULL, 0), MB_OK);
    mb_buffer buf;
    ck_assert_int_eq(mb_buffer_init(&buf, 1, 1, 2000, 0.1f, 3, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 2);
    for (int i = 0; i < 2000; i++) {
        float s = (float)(4 * mb_rng_uniform(&r) - 2), a = (float)(2 * mb_rng_uniform(&r) - 1);
        float nx = s + 0.5f * a, rew = -nx * nx;
        mb_buffer_append(&buf, 1, &s, &a, &rew, &nx, NULL, NULL);
    }
    mb_train_cfg tc;
    mb_train_cfg_default(&tc);
    tc.max_epochs = mb_test_sanitized() ? 10 : 40;
    tc.patience = 0;
    mb_adam topt;
    memset(&topt, 0, sizeof topt);
    char err[128];
    ck_assert_int_eq(mb_train(&e, &topt, &buf, &tc, NULL, NULL, NULL, NULL, err, sizeof err), MB_OK);
    mb_adam_free(&topt);
    mb_policy pi;
    make_policy(&pi, 1, 1, 32, MB_ACT_TANH, 6);
    mb_adam opt;
    ck_assert_int_eq(mb_adam_init(&opt, pi.n_params, 3e-3f, NULL, 0), MB_OK);
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 0;
    rw.n_terms = 1;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 1, .idx = {0}};
    const float lo[1] = {-1}, hi[1] = {1};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 1, .act_dim = 1, .act_low = lo, .act_high = hi};
    mb_bptt_cfg cfg;
    mb_bptt_cfg_default(&cfg);
    cfg.horizon = 5;
    cfg.batch_size = 64;
    cfg.lr = 3e-3f;
    mb_bptt_ws *ws = mb_bptt_ws_new(&cfg, &pi, NULL, &dyn);
    mb_bptt_stats st, first;
    const int steps = mb_test_sanitized() ? 60 : 300;
    for (int i = 0; i < steps; i++) {
        ck_assert_int_eq(mb_bptt_step(&pi, &opt, NULL, &cfg, &buf, &dyn, &rw, ws, &r, &st, err, sizeof err), MB_OK);
        if (i == 0) first = st;
    }
    if (!mb_test_sanitized()) {
        mb_policy_ws *pw = mb_policy_ws_new(&pi.spec, 2);
        float s[2] = {1, -1}, a[2];
        mb_policy_act(&pi, pw, s, 2, NULL, a, NULL);
        ck_assert_msg(a[0] < -0.3f && a[1] > 0.3f, "pi(1) = %.3f, pi(-1) = %.3f", a[0], a[1]);
        ck_assert_msg(st.ret > first.ret * 0.5f, "model return %.3f vs first %.3f", st.ret, first.ret);
        mb_policy_ws_free(pw);
    }
    mb_buffer empty;
    mb_buffer_init(&empty, 1, 1, 4, 0, 0, NULL, 0);
    ck_assert_int_eq(mb_bptt_step(&pi, &opt, NULL, &cfg, &empty, &dyn, &rw, ws, &r, &st, err, sizeof err), MB_ESTATE);
    mb_buffer_free(&empty);
    mb_bptt_ws_free(ws);
    mb_adam_free(&opt);
    mb_policy_free(&pi);
    mb_buffer_free(&buf);
    mb_ensemble_free(&e);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("bptt");
    TCase *tc = tcase_create("bptt");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_gradient_directional);
    tcase_add_test(tc, test_point_mass_learns);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
