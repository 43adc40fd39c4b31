/* test_ensemble_grad.c: input derivatives of the ensemble's mean
 * (core/nn/ensemble_grad.c) against central finite differences of a double
 * reference written here from ensemble.h's formulas (normalisers included).
 *
 * Tolerance per entry: |analytic - fd| <= 1e-4 * max(|fd|, rms of the
 * tensor's fd) + 1e-5. The analytic side is float (a few hundred terms per
 * entry through 3 layers); the reference is double with step 1e-5
 * (truncation ~1e-10). Also: the averaged mean equals mb_ensemble_forward's,
 * VJP == J^T gy, the member average (elites), chunking over > 256 rows,
 * an output wider than one chunk (Jacobian groups of one row).
 * Not for: parameter gradients (test_ensemble). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "nn/ensemble.h"
#include "nn/ensemble_grad.h"
#include "base/rng.h"

static double ref_act(mb_activation a, double x) {
    switch (a) {
    case MB_ACT_SILU: return x / (1.0 + exp(-x));
    case MB_ACT_RELU: return x > 0 ? x : 0.0;
    case MB_ACT_TANH: return tanh(x);
    }
    return x;
}

/* Raw input x (in) -> averaged raw mean y (out) over members[0..k), double. */
static void ref_mean(const mb_ensemble *e, const int *members, int k, const double *x, double *y) {
    const mb_ensemble_spec *s = &e->spec;
    int L = s->n_hidden, in = mb_ensemble_in_dim(s), out = mb_ensemble_out_dim(s);
    int dim[MB_MAX_LAYERS + 2];
    dim[0] = in;
    for (int l = 0; l < L; l++) dim[l + 1] = s->hidden[l];
    dim[L + 1] = 2 * out;
    for (int o = 0; o < out; o++) y[o] = 0;
    double a[2048], b[2048];
    for (int j = 0; j < k; j++) {
        int m = members[j];
        for (int i = 0; i < in; i++) a[i] = (x[i] - e->in_mean[i]) / e->in_std[i];
        for (int l = 0; l <= L; l++) {
            const float *W = mb_ensemble_layer_W(s, e->params, m, l);
            const float *bb = mb_ensemble_layer_b(s, e->params, m, l);
            for (int c = 0; c < dim[l + 1]; c++) {
                double z = bb[c];
                for (int i = 0; i < dim[l]; i++) z += a[i] * W[(size_t)i * dim[l + 1] + c];
                b[c] = l < L ? ref_act(s->activation, z) : z;
            }
            memcpy(a, b, sizeof(double) * (size_t)dim[l + 1]);
        }
        for (int o = 0; o < out; o++) y[o] += (a[o] * e->out_std[o] + e->out_mean[o]) / k;
    }
}

/* fd (out, in) = d y / d x at x by central differences of the reference. */
static void ref_jacobian(const mb_ensemble *e, const int *members, int k, const float *xf,
                         double *fd) {
    int in = mb_ensemble_in_dim(&e->spec), out = mb_ensemble_out_dim(&e->spec);
    const double h = 1e-5;
    double x[512], yp[512], ym[512];
    for (int i = 0; i < in; i++) x[i] = xf[i];
    for (int i = 0; i < in; i++) {
        double keep = x[i];
        double hi = h * fmax(1.0, fabs(keep));
        x[i] = keep + hi;
        ref_mean(e, members, k, x, yp);
        x[i] = keep - hi;
        ref_mean(e, members, k, x, ym);
        x[i] = keep;
        for (int o = 0; o < out; o++) fd[o * in + i] = (yp[o] - ym[o]) / (2 * hi);
    }
}

/* A small ensemble with non-trivial normalisers and biases. */
static void make_ens(mb_ensemble *e, mb_activation act, int obs, int ad, int members, uint64_t seed) {
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = members;
    s.obs_dim = obs;
    s.act_dim = ad;
    s.learn_reward = 1;
    s.n_hidden = 3;
    s.hidden[0] = 24;
    s.hidden[1] = 17;
    s.hidden[2] = 9;
    s.activation = act;
    char err[128];
    ck_assert_int_eq(mb_ensemble_init(e, &s, seed, err, sizeof err), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, seed + 1);
    for (int m = 0; m < members; m++)
        for (int l = 0; l <= s.n_hidden; l++) {
            float *b = mb_ensemble_layer_b(&s, e->params, m, l);
            int w = l < s.n_hidden ? s.hidden[l] : 2 * mb_ensemble_out_dim(&s);
            for (int j = 0; j < w; j++) b[j] = (float)(0.3 * mb_rng_normal(&r));
        }
    int in = mb_ensemble_in_dim(&s), out = mb_ensemble_out_dim(&s);
    for (int i = 0; i < in; i++) {
        e->in_mean[i] = (float)(0.5 * mb_rng_normal(&r));
        e->in_std[i] = (float)(0.3 + 2.0 * mb_rng_uniform(&r));
    }
    for (int o = 0; o < out; o++) {
        e->out_mean[o] = (float)(0.5 * mb_rng_normal(&r));
        e->out_std[o] = (float)(0.1 + 3.0 * mb_rng_uniform(&r));
    }
}

static void check_J(const char *what, const float *J, const double *fd, int out, int in) {
    double rms = 0;
    for (int i = 0; i < out * in; i++) rms += fd[i] * fd[i];
    rms = sqrt(rms / (out * in));
    for (int i = 0; i < out * in; i++) {
        char lab[96];
        snprintf(lab, sizeof lab, "%s J[%d][%d]", what, i / in, i % in);
        MB_ASSERT_CLOSE(lab, J[i], fd[i], 1e-4 * fmax(fabs(fd[i]), rms) + 1e-5);
    }
}

static void jacobian_case(mb_activation act, int members_k, int use_elites) {
    mb_ensemble e;
    make_ens(&e, act, 4, 2, 3, 21 + (uint64_t)act);
    int in = 6, out = 5;
    int list[3] = {2, 0, 1};
    const int *mem = list;
    int k = members_k;
    if (use_elites) {
        e.n_elites = 2;
        e.elites[0] = 2;
        e.elites[1] = 0;
        mem = e.elites;
        k = e.n_elites;
    }
    const size_t n = 7;
    float x[7 * 6];
    mb_rng r;
    mb_rng_seed(&r, 5);
    mb_rng_fill_normal(&r, x, n * in, 0, 1.5f);
    mb_ens_grad_ws *ws = mb_ens_grad_ws_new(&e.spec);
    ck_assert_ptr_nonnull(ws);
    float J[7 * 5 * 6], mean[7 * 5];
    mb_ensemble_jacobian(&e, ws, mem, k, x, n, mean, J);
    double fd[5 * 6], y[5], xd[6];
    for (size_t row = 0; row < n; row++) {
        ref_jacobian(&e, mem, k, x + row * in, fd);
        char what[64];
        snprintf(what, sizeof what, "%s k=%d row %zu", mb_activation_name(act), k, row);
        check_J(what, J + row * out * in, fd, out, in);
        for (int i = 0; i < in; i++) xd[i] = x[row * in + i];
        ref_mean(&e, mem, k, xd, y);
        for (int o = 0; o < out; o++)
            MB_ASSERT_CLOSE("averaged mean vs reference", mean[row * out + o], y[o],
                            1e-5 * fmax(1.0, fabs(y[o])));
    }
    /* VJP == J^T gy, and its mean equals the Jacobian's */
    float gy[7 * 5], gx[7 * 6], mean2[7 * 5];
    mb_rng_fill_normal(&r, gy, n * out, 0, 1);
    mb_ensemble_vjp(&e, ws, mem, k, x, gy, n, mean2, gx);
    for (size_t row = 0; row < n; row++)
        for (int i = 0; i < in; i++) {
            double want = 0;
            for (int o = 0; o < out; o++) want += gy[row * out + o] * J[(row * out + o) * in + i];
            MB_ASSERT_CLOSE("vjp vs J^T gy", gx[row * in + i], want, 1e-5 * fmax(1.0, fabs(want)));
        }
    for (size_t i = 0; i < n * out; i++) MB_ASSERT_CLOSE("vjp mean", mean2[i], mean[i], 1e-6);
    mb_ens_grad_ws_free(ws);
    mb_ensemble_free(&e);
}

START_TEST(test_jacobian_silu_one_member) { jacobian_case(MB_ACT_SILU, 1, 0); }
END_TEST
START_TEST(test_jacobian_tanh_three_members) { jacobian_case(MB_ACT_TANH, 3, 0); }
END_TEST
START_TEST(test_jacobian_silu_elites) { jacobian_case(MB_ACT_SILU, 0, 1); }
END_TEST

/* The mean through all members equals mb_ensemble_forward's averaged mean;
 * 600 rows go through three chunks, each row's VJP checked against the
 * reference FD directional derivative. */
START_TEST(test_vjp_many_rows_matches_forward) {
    mb_ensemble e;
    make_ens(&e, MB_ACT_SILU, 3, 1, 2, 9);
    int in = 4, out = 4;
    const size_t n = 600;
    float *x = malloc(n * in * sizeof(float)), *gy = malloc(n * out * sizeof(float));
    float *gx = malloc(n * in * sizeof(float)), *mean = malloc(n * out * sizeof(float));
    float *fm = malloc(2 * n * out * sizeof(float));
    mb_rng r;
    mb_rng_seed(&r, 3);
    mb_rng_fill_normal(&r, x, n * in, 0, 1);
    mb_rng_fill_normal(&r, gy, n * out, 0, 1);
    mb_ens_grad_ws *ws = mb_ens_grad_ws_new(&e.spec);
    mb_ensemble_vjp(&e, ws, NULL, 0, x, gy, n, mean, gx);
    mb_ens_ws *fws = mb_ens_ws_new(&e.spec, n);
    float *x2 = malloc(2 * n * in * sizeof(float));
    memcpy(x2, x, n * in * sizeof(float));
    memcpy(x2 + n * in, x, n * in * sizeof(float));
    mb_ensemble_forward(&e, fws, NULL, NULL, 2, x2, n, fm, NULL);
    for (size_t i = 0; i < n * out; i++)
        MB_ASSERT_CLOSE("mean vs forward", mean[i], 0.5f * (fm[i] + fm[n * out + i]),
                        2e-5 * fmax(1.0, fabs(mean[i])));
    int all[2] = {0, 1};
    double fd[4 * 4];
    for (size_t row = 0; row < n; row += 37) {
        ref_jacobian(&e, all, 2, x + row * in, fd);
        for (int i = 0; i < in; i++) {
            double want = 0;
            for (int o = 0; o < out; o++) want += gy[row * out + o] * fd[o * in + i];
            MB_ASSERT_CLOSE("vjp row vs fd", gx[row * in + i], want, 1e-4 * fmax(1.0, fabs(want)));
        }
    }
    mb_ens_ws_free(fws);
    mb_ens_grad_ws_free(ws);
    mb_ensemble_free(&e);
    free(x); free(x2); free(gy); free(gx); free(mean); free(fm);
}
END_TEST

/* out_dim 257 > one chunk of 256 rows: the Jacobian goes one input row per
 * group of 257 VJP rows. */
START_TEST(test_jacobian_wide_output) {
    mb_ensemble e;
    mb_ensemble_spec s;
    mb_ensemble_spec_default(&s);
    s.members = 1;
    s.obs_dim = 256;
    s.act_dim = 1;
    s.n_hidden = 1;
    s.hidden[0] = 8;
    s.activation = MB_ACT_TANH;
    char err[128];
    ck_assert_int_eq(mb_ensemble_init(&e, &s, 4, err, sizeof err), MB_OK);
    int in = 257, out = 257;
    float *x = calloc(2 * (size_t)in, sizeof(float));
    float *J = malloc(2 * (size_t)out * in * sizeof(float));
    double *fd = malloc((size_t)out * in * sizeof(double));
    mb_rng r;
    mb_rng_seed(&r, 8);
    mb_rng_fill_normal(&r, x, 2 * (size_t)in, 0, 1);
    mb_ens_grad_ws *ws = mb_ens_grad_ws_new(&s);
    mb_ensemble_jacobian(&e, ws, NULL, 0, x, 2, NULL, J);
    int m0 = 0;
    ref_jacobian(&e, &m0, 1, x + in, fd);
    check_J("wide row 1", J + (size_t)out * in, fd, out, in);
    mb_ens_grad_ws_free(ws);
    mb_ensemble_free(&e);
    free(x); free(J); free(fd);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ensemble_grad");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_jacobian_silu_one_member);
    tcase_add_test(tc, test_jacobian_tanh_three_members);
    tcase_add_test(tc, test_jacobian_silu_elites);
    tcase_add_test(tc, test_vjp_many_rows_matches_forward);
    tcase_add_test(tc, test_jacobian_wide_output);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
