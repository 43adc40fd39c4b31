/* test_term_head.c: the learned termination head (core/nn/term_head.c) and
 * its fit (core/learn/term_fit.c): every parameter's gradient against
 * central differences of a double-precision reference of the class-weighted
 * loss, the loss against a hand count, the untrained head's p = 0.02, copies
 * with the ensemble, and the snapshot round trip (TERM section; files
 * without it load as before).
 * Its fit: test_term_fit.c; the planner ending particles with it:
 * test_planner_term.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/rng.h"
#include "nn/ensemble.h"
#include "nn/term_head.h"
#include "store/snapshot.h"

enum { IN = 3, N = 5, TH = MB_TERM_HIDDEN };

/* The loss of term_head.h in double from the parameter block p. */
static double ref_loss(const double *p, const float *x, const float *y, const float *w, int n) {
    const double *W1 = p, *b1 = W1 + IN * TH, *W2 = b1 + TH, *b2 = W2 + TH * TH, *w3 = b2 + TH,
                 *b3 = w3 + TH;
    double L = 0.0;
    for (int r = 0; r < n; r++) {
        double h1[TH], h2[TH], z = b3[0];
        for (int j = 0; j < TH; j++) {
            double a = b1[j];
            for (int i = 0; i < IN; i++) a += x[r * IN + i] * W1[i * TH + j];
            h1[j] = tanh(a);
        }
        for (int j = 0; j < TH; j++) {
            double a = b2[j];
            for (int i = 0; i < TH; i++) a += h1[i] * W2[i * TH + j];
            h2[j] = tanh(a);
            z += h2[j] * w3[j];
        }
        double sp = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
        L += w[r] * (sp - y[r] * z);
    }
    return L / n;
}

START_TEST(test_gradient_check) {
    mb_term_head h;
    char err[200];
    ck_assert_int_eq(mb_term_head_init(&h, IN, 5, err, sizeof err), MB_OK);
    ck_assert_uint_eq(h.n_params, (size_t)IN * TH + TH + TH * TH + TH + TH + 1);
    /* larger output weights and a bias near 0, so every layer matters */
    mb_rng r;
    mb_rng_seed(&r, 3);
    for (size_t i = 0; i < h.n_params; i++) h.params[i] = (float)(0.6 * (2 * mb_rng_uniform(&r) - 1));
    float x[N * IN], y[N] = {1, 0, 0, 1, 0}, w[N] = {2.5, 0.625, 0.625, 2.5, 0.625};
    for (int i = 0; i < N * IN; i++) x[i] = (float)(2 * mb_rng_uniform(&r) - 1);
    float *g = malloc(h.n_params * sizeof(float));
    double *p = malloc(h.n_params * sizeof(double));
    for (size_t i = 0; i < h.n_params; i++) p[i] = h.params[i];
    double L = mb_term_head_loss_grad(&h, x, y, w, N, g);
    MB_ASSERT_CLOSE("loss = reference", L, ref_loss(p, x, y, w, N), 1e-5);
    double worst = 0.0;
    for (size_t i = 0; i < h.n_params; i++) {
        const double eps = 1e-5;
        double keep = p[i];
        p[i] = keep + eps;
        double lp = ref_loss(p, x, y, w, N);
        p[i] = keep - eps;
        double lm = ref_loss(p, x, y, w, N);
        p[i] = keep;
        double num = (lp - lm) / (2 * eps);
        double e = fabs(num - g[i]) / fmax(1e-3, fabs(num));
        if (e > worst) worst = e;
        ck_assert_msg(e < 2e-3, "param %zu: analytic %g, numeric %g", i, (double)g[i], num);
    }
    printf("termination head gradient: worst relative error %.2g over %zu parameters\n", worst, h.n_params);
    free(g);
    free(p);
    mb_term_head_free(&h);
}
END_TEST

/* With all weights 0 and the output bias b: z = b for every row, so the
 * loss is mean_r w_r (softplus(b) - y_r b). b = 0: softplus(0) = ln 2;
 * rows (y, w) = (1, 2), (0, 1): (2 ln 2 + ln 2) / 2 = 1.5 ln 2. */
START_TEST(test_loss_hand_count_and_init) {
    mb_term_head h;
    ck_assert_int_eq(mb_term_head_init(&h, 2, 1, NULL, 0), MB_OK);
    const float mean[2] = {0, 0}, sd[2] = {1, 1}, s[2] = {0.3f, -0.2f};
    MB_ASSERT_CLOSE("untrained p", mb_term_head_prob(&h, mean, sd, s), 1.0 / (1.0 + exp(3.9)), 0.03);
    memset(h.params, 0, h.n_params * sizeof(float));
    float x[4] = {1, 2, 3, 4}, y[2] = {1, 0}, w[2] = {2, 1};
    float *g = malloc(h.n_params * sizeof(float));
    MB_ASSERT_CLOSE("loss", mb_term_head_loss_grad(&h, x, y, w, 2, g), 1.5 * log(2.0), 1e-6);
    /* d/db3 = mean w (sigmoid(0) - y) = (2 (0.5 - 1) + 1 (0.5 - 0)) / 2 = -0.25 */
    MB_ASSERT_CLOSE("d loss / d b3", g[h.n_params - 1], -0.25, 1e-6);
    free(g);
    mb_term_head_free(&h);
}
END_TEST

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

START_TEST(test_copy_and_snapshot_round_trip) {
    mb_ensemble e, c;
    make_ens(&e, 1);
    ck_assert_ptr_nonnull(e.term.params);
    char err[256];
    ck_assert_int_eq(mb_ensemble_copy(&c, &e, err, sizeof err), MB_OK);
    ck_assert_ptr_nonnull(c.term.params);
    ck_assert(c.term.params != e.term.params);
    ck_assert_int_eq(memcmp(c.term.params, e.term.params, e.term.n_params * sizeof(float)), 0);
    e.term.params[3] = 0.125f;
    mb_snapshot_src src = {.meta = "{}", .meta_len = 2, .ens = &e};
    void *data;
    size_t n;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    mb_snapshot s;
    ck_assert_msg(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_eq(s.ens.spec.learn_termination, 1);
    ck_assert_int_eq(memcmp(&s.ens.spec, &e.spec, sizeof e.spec), 0);
    ck_assert_int_eq(memcmp(s.ens.term.params, e.term.params, e.term.n_params * sizeof(float)), 0);
    mb_snapshot_free(&s);
    /* a flipped byte in the head is caught */
    ((unsigned char *)data)[n - 200] ^= 0x10;
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_ECORRUPT);
    free(data);
    /* without a head: no TERM section, as older builds wrote */
    mb_ensemble plain;
    make_ens(&plain, 0);
    ck_assert_ptr_null(plain.term.params);
    src.ens = &plain;
    ck_assert_int_eq(mb_snapshot_encode_mem(&src, &data, &n, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_snapshot_decode_mem(data, n, NULL, &s, err, sizeof err), MB_OK);
    ck_assert_int_eq(s.ens.spec.learn_termination, 0);
    ck_assert_ptr_null(s.ens.term.params);
    mb_snapshot_free(&s);
    free(data);
    mb_ensemble_free(&plain);
    mb_ensemble_free(&c);
    mb_ensemble_free(&e);
}
END_TEST

int main(void) {
    Suite *s = suite_create("term_head");
    TCase *tc = tcase_create("term_head");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_gradient_check);
    tcase_add_test(tc, test_loss_hand_count_and_init);
    tcase_add_test(tc, test_copy_and_snapshot_round_trip);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
