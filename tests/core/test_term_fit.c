/* test_term_fit.c: fitting the termination head (core/learn/term_fit.c,
 * through mb_train): a termination set that is not a box on state entries
 * (cos th1 + cos(th1 + th2) < 1, a height from two angles), about one row in
 * five terminating, learned with balanced classes; the fit's report (steps,
 * terminated rows, holdout accuracy per class) and fresh states classified.
 * The head's numerics: test_term_head.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "learn/trainer.h"

static void make_ens(mb_ensemble *e, int learn_termination) {
    mb_ensemble_spec sp;
    mb_ensemble_spec_default(&sp);
    sp.members = 2;
    sp.obs_dim = 2;
    sp.act_dim = 2;
    sp.n_hidden = 2;
    sp.hidden[0] = sp.hidden[1] = 32;
    sp.learn_reward = 0;
    sp.learn_termination = learn_termination;
    char err[200];
    ck_assert_msg(mb_ensemble_init(e, &sp, 7, err, sizeof err) == MB_OK, "%s", err);
}

static int height_ends(float a, float b) { return cosf(a) + cosf(a + b) < 1.0f; }

/* States uniform in [-1.2, 1.2]^2, s' = s + 0.2 u: about one row in ten
 * terminates. After mb_train the head separates fresh states of both
 * classes away from the boundary (|height - 1| > 0.1) in > 95% of cases. */
START_TEST(test_fit_height_from_two_angles) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, 2, 2, 4000, 0.1f, 3, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 11);
    int pos = 0;
    for (int i = 0; i < 3000; i++) {
        float s[2], u[2], ns[2], rew = 0;
        for (int j = 0; j < 2; j++) {
            s[j] = (float)(2.4 * mb_rng_uniform(&r) - 1.2);
            u[j] = (float)(2 * mb_rng_uniform(&r) - 1);
            ns[j] = s[j] + 0.2f * u[j];
        }
        unsigned char term = (unsigned char)height_ends(ns[0], ns[1]);
        pos += term;
        mb_buffer_append(&b, 1, s, u, &rew, ns, &term, NULL);
    }
    ck_assert_msg(pos > 100 && pos < 900, "%d terminations", pos);
    mb_ensemble e;
    make_ens(&e, 1);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    mb_train_cfg_default(&cfg);
    cfg.max_epochs = 5;
    cfg.min_steps = 0;
    mb_train_result res;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_ge(res.term_steps, 500);
    ck_assert_uint_gt(res.term_pos, 50);
    ck_assert_msg(res.term_acc_pos > 0.9f && res.term_acc_neg > 0.9f, "holdout accuracy %g / %g",
                  (double)res.term_acc_pos, (double)res.term_acc_neg);
    int ok[2] = {0}, cnt[2] = {0};
    for (int i = 0; i < 4000; i++) {
        float s[2] = {(float)(2.4 * mb_rng_uniform(&r) - 1.2), (float)(2.4 * mb_rng_uniform(&r) - 1.2)};
        float hgt = cosf(s[0]) + cosf(s[0] + s[1]);
        if (fabsf(hgt - 1.0f) < 0.1f) continue;
        int t = hgt < 1.0f;
        float p = mb_term_head_prob(&e.term, e.in_mean, e.in_std, s);
        cnt[t]++;
        ok[t] += (p > MB_TERM_THRESHOLD) == t;
    }
    double acc_t = (double)ok[1] / cnt[1], acc_a = (double)ok[0] / cnt[0];
    printf("termination head: %d terminations in 3000 rows; fresh states: %.3f of %d ending, %.3f of %d "
           "not, right\n", pos, acc_t, cnt[1], acc_a, cnt[0]);
    ck_assert_msg(acc_t > 0.95 && acc_a > 0.95, "accuracy %g (ending) %g (not)", acc_t, acc_a);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST


/* Without terminations in the data the head learns "never": no fresh state
 * is called terminal. */
START_TEST(test_fit_without_terminations) {
    mb_buffer b;
    ck_assert_int_eq(mb_buffer_init(&b, 2, 2, 1000, 0.1f, 3, NULL, 0), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, 5);
    for (int i = 0; i < 500; i++) {
        float s[2] = {(float)mb_rng_uniform(&r), (float)mb_rng_uniform(&r)}, u[2] = {0, 0}, rew = 0;
        mb_buffer_append(&b, 1, s, u, &rew, s, NULL, NULL);
    }
    mb_ensemble e;
    make_ens(&e, 1);
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    mb_train_cfg cfg;
    mb_train_cfg_default(&cfg);
    cfg.max_epochs = 2;
    cfg.min_steps = 0;
    mb_train_result res;
    char err[256];
    ck_assert_msg(mb_train(&e, &opt, &b, &cfg, NULL, NULL, NULL, &res, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_uint_eq(res.term_pos, 0);
    ck_assert(isnan(res.term_acc_pos));
    ck_assert(res.term_acc_neg == 1.0f);
    for (int i = 0; i < 200; i++) {
        float s[2] = {(float)(4 * mb_rng_uniform(&r) - 2), (float)(4 * mb_rng_uniform(&r) - 2)};
        ck_assert(mb_term_head_prob(&e.term, e.in_mean, e.in_std, s) < MB_TERM_THRESHOLD);
    }
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    mb_buffer_free(&b);
}
END_TEST

int main(void) {
    Suite *s = suite_create("term_fit");
    TCase *tc = tcase_create("term_fit");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_fit_height_from_two_angles);
    tcase_add_test(tc, test_fit_without_terminations);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
