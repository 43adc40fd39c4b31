/* test_gemm.c: the ensemble's sgemm (core/nn/gemm.c) against naive double
 * loops over awkward shapes: rows not a multiple of the 8-row block, widths
 * around the 16-lane vectors and the 48-column panel, k from 1 up; both
 * overwrite and accumulate; the fused bias + activation epilogue; and
 * canaries around C so a masked store that
 * strays past a row or the matrix is caught.
 * Tolerance per entry: 1e-6 * sum_k |a_ik b_kj| (float accumulation).
 * Not for: speed (bench/). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "nn/gemm.h"
#include "base/rng.h"

#define CANARY 12345.0f
#define PAD 64

static void check_case(int tn, size_t m, int n, int k, int acc, mb_rng *r) {
    /* A: (m, k) for nn, (k, m) for tn; B: (k, n) */
    float *A = malloc(sizeof(float) * (m * (size_t)k + 1)), *B = malloc(sizeof(float) * ((size_t)k * n + 1));
    float *Cbuf = malloc(sizeof(float) * (m * (size_t)n + 2 * PAD)), *C = Cbuf + PAD;
    float *C0 = malloc(sizeof(float) * (m * (size_t)n + 1));
    mb_rng_fill_normal(r, A, m * (size_t)k, 0, 1);
    mb_rng_fill_normal(r, B, (size_t)k * n, 0, 1);
    for (size_t i = 0; i < m * (size_t)n + 2 * PAD; i++) Cbuf[i] = CANARY;
    mb_rng_fill_normal(r, C, m * (size_t)n, 0, 1);
    memcpy(C0, C, sizeof(float) * m * (size_t)n);
    if (tn) mb_gemm_tn((int)m, n, (size_t)k, A, B, C, acc);
    else mb_gemm_nn(m, n, k, A, B, C, acc);
    double worst = -1, got = 0, want = 0, tol = 0;
    size_t wi = 0;
    for (size_t i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = acc ? C0[i * n + j] : 0, mag = acc ? fabs(C0[i * n + j]) : 0;
            for (int kk = 0; kk < k; kk++) {
                double a = tn ? A[(size_t)kk * m + i] : A[i * (size_t)k + kk];
                s += a * B[(size_t)kk * n + j];
                mag += fabs(a * B[(size_t)kk * n + j]);
            }
            double t = 1e-6 * mag + 1e-30, e = fabs(C[i * n + j] - s) / t;
            if (!(e <= worst) ) {
                worst = e;
                got = C[i * n + j];
                want = s;
                tol = t;
                wi = i * n + j;
            }
        }
    char lab[96];
    snprintf(lab, sizeof lab, "%s m=%zu n=%d k=%d acc=%d C[%zu]", tn ? "tn" : "nn", m, n, k, acc, wi);
    MB_ASSERT_CLOSE(lab, got, want, tol);
    int strays = 0;
    for (int i = 0; i < PAD; i++) strays += Cbuf[i] != CANARY || C[m * (size_t)n + i] != CANARY;
    ck_assert_msg(strays == 0, "%s: %d writes outside C", lab, strays);
    free(A);
    free(B);
    free(Cbuf);
    free(C0);
}

static void shapes(int tn) {
    static const size_t ms[] = {1, 2, 7, 8, 9, 17, 64};
    static const int ns[] = {1, 5, 15, 16, 17, 38, 47, 48, 49, 100, 200};
    static const int ks[] = {1, 3, 24, 200};
    mb_rng r;
    mb_rng_seed(&r, 40 + (uint64_t)tn);
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++)
                for (int acc = 0; acc < 2; acc++) check_case(tn, ms[a], ns[b], ks[c], acc, &r);
    /* the ensemble's shapes: a 256-row tile through a 200-wide layer */
    check_case(tn, 256, 200, 200, 0, &r);
    check_case(tn, 256, 38, 200, 1, &r);
}

START_TEST(test_nn) { shapes(0); }
END_TEST
START_TEST(test_tn) { shapes(1); }
END_TEST

/* act(A B + bias) against double loops: tolerance 1e-6 * (1 + sum|terms|)
 * for the product plus the activation's ~1e-7 relative error. */
static double ref_act(mb_activation a, double x) {
    return a == MB_ACT_SILU ? x / (1 + exp(-x)) : a == MB_ACT_RELU ? (x > 0 ? x : 0) : tanh(x);
}

START_TEST(test_nn_bias_act) {
    static const size_t ms[] = {1, 8, 9, 17};
    static const int ns[] = {5, 16, 38, 49, 200};
    mb_rng r;
    mb_rng_seed(&r, 77);
    for (int a = 0; a < 3; a++)
        for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++)
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                size_t m = ms[mi];
                int n = ns[ni], k = 24;
                float *A = malloc(sizeof(float) * m * k), *B = malloc(sizeof(float) * k * n);
                float *bias = malloc(sizeof(float) * n);
                float *Cbuf = malloc(sizeof(float) * (m * n + 2 * PAD)), *C = Cbuf + PAD;
                mb_rng_fill_normal(&r, A, m * k, 0, 1);
                mb_rng_fill_normal(&r, B, (size_t)k * n, 0, 0.5f);
                mb_rng_fill_normal(&r, bias, (size_t)n, 0, 1);
                for (size_t i = 0; i < m * n + 2 * PAD; i++) Cbuf[i] = CANARY;
                mb_gemm_nn_bias_act(m, n, k, A, B, bias, (mb_activation)a, C);
                double worst = -1, got = 0, want = 0, tol = 1;
                for (size_t i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double z = bias[j], mag = fabs(bias[j]);
                        for (int kk = 0; kk < k; kk++) {
                            z += (double)A[i * k + kk] * B[(size_t)kk * n + j];
                            mag += fabs((double)A[i * k + kk] * B[(size_t)kk * n + j]);
                        }
                        double w = ref_act((mb_activation)a, z), t = 1e-6 * (1 + mag);
                        double e = fabs(C[i * n + j] - w) / t;
                        if (!(e <= worst)) {
                            worst = e;
                            got = C[i * n + j];
                            want = w;
                            tol = t;
                        }
                    }
                char lab[80];
                snprintf(lab, sizeof lab, "%s(A B + b) m=%zu n=%d", mb_activation_name((mb_activation)a), m, n);
                MB_ASSERT_CLOSE(lab, got, want, tol);
                int strays = 0;
                for (int i = 0; i < PAD; i++) strays += Cbuf[i] != CANARY || C[m * n + i] != CANARY;
                ck_assert_msg(strays == 0, "%s: %d writes outside C", lab, strays);
                free(A);
                free(B);
                free(bias);
                free(Cbuf);
            }
}
END_TEST

START_TEST(test_empty) {
    float A[4] = {1, 2, 3, 4}, B[4] = {1, 1, 1, 1}, C[4] = {7, 7, 7, 7};
    mb_gemm_nn(0, 2, 2, A, B, C, 0);
    mb_gemm_tn(0, 2, 2, A, B, C, 0);
    mb_gemm_nn(2, 0, 2, A, B, C, 0);
    for (int i = 0; i < 4; i++) ck_assert_float_eq(C[i], 7);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("gemm");
    TCase *tc = tcase_create("gemm");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_nn);
    tcase_add_test(tc, test_tn);
    tcase_add_test(tc, test_nn_bias_act);
    tcase_add_test(tc, test_empty);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
