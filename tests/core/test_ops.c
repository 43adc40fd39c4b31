/* test_ops.c: dense helpers and activations (core/nn/ops.c).
 *
 * The vectorised exp/softplus/sigmoid are checked against libm over their
 * whole useful range, and vmath.h's 8- and 16-lane exp against each other
 * on every float; activations and their derivatives against double
 * closed forms and central finite differences; the linear layer's forward
 * and backward against naive double loops and finite differences of
 * L = sum(y * c) (so dy = c).
 * Not for: ensemble-level checks (test_ensemble). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "nn/ops.h"
#include "nn/vmath.h"
#include "base/rng.h"

/* Loops over many elements keep the worst error relative to its tolerance
 * and assert once (each ck_assert costs libcheck a pipe write). */
typedef struct {
    double ratio, got, want, tol;
    char label[96];
} worst_t;

static void worst_note(worst_t *w, const char *name, double x, double got, double want,
                       double tol) {
    double r = isfinite(got) ? fabs(got - want) / tol : INFINITY;
    if (r > w->ratio || (w->label[0] == 0)) {
        w->ratio = r;
        w->got = got;
        w->want = want;
        w->tol = tol;
        snprintf(w->label, sizeof w->label, "%s at x=%.9g", name, x);
    }
}
#define WORST_ASSERT(w) MB_ASSERT_CLOSE((w).label, (w).got, (w).want, (w).tol)

static double ref_act(mb_activation a, double x) {
    switch (a) {
    case MB_ACT_SILU: return x / (1.0 + exp(-x));
    case MB_ACT_RELU: return x > 0 ? x : 0.0;
    case MB_ACT_TANH: return tanh(x);
    }
    return x;
}

static double ref_dact(mb_activation a, double x) {
    switch (a) {
    case MB_ACT_SILU: {
        double s = 1.0 / (1.0 + exp(-x));
        return s * (1.0 + x * (1.0 - s));
    }
    case MB_ACT_RELU: return x > 0 ? 1.0 : 0.0;
    case MB_ACT_TANH: return 1.0 - tanh(x) * tanh(x);
    }
    return 1;
}

/* exp: relative error <= 1.5e-7 over [-87, 88] (measured 1.18e-7, one
 * float ulp);
 * clamped outside (finite, no overflow). 1,000,003 points: not a multiple
 * of 8, so the tail path runs too. */
START_TEST(test_exp_approx) {
    const size_t n = 1000003;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = -87.0f + 175.0f * (float)i / (float)(n - 1);
    mb_exp_approx(x, y, n);
    double worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        double want = exp((double)x[i]);
        double rel = fabs(y[i] - want) / want;
        if (rel > worst) {
            worst = rel;
            at = i;
        }
    }
    char lab[64];
    snprintf(lab, sizeof lab, "exp rel err worst at x=%g", x[at]);
    MB_ASSERT_CLOSE(lab, worst, 0, 1.5e-7);
    /* in place, and clamping */
    float big[5] = {-1000.0f, -88.5f, 0.0f, 89.0f, 1000.0f};
    mb_exp_approx(big, big, 5);
    MB_ASSERT_CLOSE("exp(-1000) clamps to exp(-87)", big[0], exp(-87.0), 1e-6 * exp(-87.0));
    MB_ASSERT_CLOSE("exp(0)", big[2], 1.0, 0);
    ck_assert(isfinite(big[4]) && big[4] > 1e38f);
    free(x);
    free(y);
}
END_TEST

/* nn/vmath.h: the 16-lane exp (scalef) equals the 8-lane one (multiply by
 * a built exponent) bit for bit, on every 7th block of 16 bit patterns
 * (every exponent and a spread of mantissas: 1/7 of the 2^32 inputs, 1.2 s
 * on an idle core; MBRLD_TEST_EXHAUSTIVE=1 checks all 2^32, which passed
 * when this was written), a 1/61 sample under the sanitizers, so gemm's
 * fused epilogue and ops' loops agree. Compiled for AVX-512 whatever
 * -march says; skipped where the CPU lacks it or MBRLD_ISA keeps the
 * kernels off it (the comparison is the same in that rerun). */
#ifdef MB_X86
static MB_TARGET_AVX512 uint64_t exp_widths(uint64_t step, uint64_t *first) {
    uint64_t bad = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += step) {
        uint32_t in[16], o16[16], o8[16];
        for (int l = 0; l < 16; l++) in[l] = (uint32_t)(b + (uint64_t)l);
        __m512 x = _mm512_castsi512_ps(_mm512_loadu_si512(in));
        _mm512_storeu_si512(o16, _mm512_castps_si512(mb_vm_exp16(x)));
        for (int h = 0; h < 2; h++) {
            __m256 x8 = _mm256_castsi256_ps(_mm256_loadu_si256((const __m256i *)(in + 8 * h)));
            _mm256_storeu_si256((__m256i *)(o8 + 8 * h), _mm256_castps_si256(mb_vm_exp8(x8)));
        }
        for (int l = 0; l < 16; l++)
            if (o16[l] != o8[l] && !bad++) *first = b + (uint64_t)l;
    }
    return bad;
}
#endif

START_TEST(test_exp_widths_agree) {
#ifdef MB_X86
    if (mb_cpu_isa() < MB_ISA_AVX512) return; /* nothing to compare on this CPU / in this rerun */
    const char *ex = getenv("MBRLD_TEST_EXHAUSTIVE");
    const uint64_t step = mb_test_sanitized() ? 16 * 61 : ex && ex[0] == '1' ? 16 : 16 * 7;
    uint64_t first = 0, bad = exp_widths(step, &first);
    ck_assert_msg(bad == 0, "%llu inputs differ, first bits 0x%08llx", (unsigned long long)bad,
                  (unsigned long long)first);
#endif
}
END_TEST

START_TEST(test_softplus_sigmoid) {
    const size_t n = 20001;
    float *x = malloc(n * sizeof(float)), *sp = malloc(n * sizeof(float)),
          *sg = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = -60.0f + 120.0f * (float)i / (float)(n - 1);
    mb_softplus_approx(x, sp, n);
    mb_sigmoid_approx(x, sg, n);
    worst_t w[4] = {{0}};
    for (size_t i = 0; i < n; i++) {
        double xd = x[i];
        double wsp = fmax(xd, 0) + log1p(exp(-fabs(xd))), wsg = 1 / (1 + exp(-xd));
        worst_note(&w[0], "softplus_approx", xd, sp[i], wsp, 1e-6 * fmax(1, fabs(wsp)));
        worst_note(&w[1], "sigmoid_approx", xd, sg[i], wsg, 1e-6);
        worst_note(&w[2], "softplus", xd, mb_softplus(x[i]), wsp, 1e-6 * fmax(1, fabs(wsp)));
        worst_note(&w[3], "sigmoid", xd, mb_sigmoid(x[i]), wsg, 1e-7);
    }
    for (int k = 0; k < 4; k++) WORST_ASSERT(w[k]);
    /* far tails stay finite */
    ck_assert(isfinite(mb_softplus(1e30f)) && mb_softplus(1e30f) == 1e30f);
    ck_assert(mb_softplus(-1e30f) == 0.0f);
    ck_assert(mb_sigmoid(-1e30f) == 0.0f && mb_sigmoid(1e30f) == 1.0f);
    free(x);
    free(sp);
    free(sg);
}
END_TEST

/* Forward vs closed form, backward vs the closed-form derivative and vs
 * central differences (step 1e-3 in double around the float input; for ReLU
 * points within 2e-3 of the kink are skipped). */
static void act_case(mb_activation a) {
    const size_t n = 4099;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)),
          *dy = malloc(n * sizeof(float)), *dx = malloc(n * sizeof(float));
    mb_rng r;
    mb_rng_seed(&r, 100 + (uint64_t)a);
    for (size_t i = 0; i < n; i++) x[i] = (float)(4.0 * mb_rng_normal(&r));
    x[0] = 0.0f;
    x[1] = 30.0f;
    x[2] = -30.0f;
    mb_rng_fill_normal(&r, dy, n, 0, 1);
    mb_act_forward(a, x, y, n);
    mb_act_backward(a, x, dy, dx, n);
    const double h = 1e-3;
    worst_t w[3] = {{0}};
    char lab[3][48];
    snprintf(lab[0], sizeof lab[0], "%s", mb_activation_name(a));
    snprintf(lab[1], sizeof lab[1], "%s' * dy", mb_activation_name(a));
    snprintf(lab[2], sizeof lab[2], "%s' * dy vs finite difference", mb_activation_name(a));
    for (size_t i = 0; i < n; i++) {
        double xd = x[i];
        worst_note(&w[0], lab[0], xd, y[i], ref_act(a, xd), 1e-6 * fmax(1, fabs(xd)));
        worst_note(&w[1], lab[1], xd, dx[i], dy[i] * ref_dact(a, xd), 2e-6 * fmax(1, fabs(dy[i])));
        if (a == MB_ACT_RELU && fabs(xd) < 2 * h) continue;
        /* central difference of the double closed form: truncation error
         * h^2/6 times the third derivative, below 1e-6 here */
        double fd = (ref_act(a, xd + h) - ref_act(a, xd - h)) / (2 * h);
        worst_note(&w[2], lab[2], xd, dx[i], dy[i] * fd, 1e-5 * fmax(1, fabs(dy[i])));
    }
    for (int k = 0; k < 3; k++) WORST_ASSERT(w[k]);
    /* in place: y may alias x, dx may alias dy */
    float *xc = malloc(n * sizeof(float)), *dyc = malloc(n * sizeof(float));
    memcpy(xc, x, n * sizeof(float));
    mb_act_forward(a, xc, xc, n);
    ck_assert_mem_eq(xc, y, n * sizeof(float));
    memcpy(dyc, dy, n * sizeof(float));
    mb_act_backward(a, x, dyc, dyc, n);
    ck_assert_mem_eq(dyc, dx, n * sizeof(float));
    free(xc);
    free(dyc);
    free(x);
    free(y);
    free(dy);
    free(dx);
}

START_TEST(test_act_silu) { act_case(MB_ACT_SILU); }
END_TEST
START_TEST(test_act_relu) { act_case(MB_ACT_RELU); }
END_TEST
START_TEST(test_act_tanh) { act_case(MB_ACT_TANH); }
END_TEST

/* Fused bias + activation and activation backward + bias gradient equal the
 * unfused pieces; widths 5 (tail only), 8, 13 and 37 (vectors + tail). */
static void fused_case(mb_activation a, int out) {
    const size_t n = 11, cnt = n * (size_t)out;
    float *z = malloc(cnt * sizeof(float)), *z2 = malloc(cnt * sizeof(float)),
          *h = malloc(cnt * sizeof(float)), *href = malloc(cnt * sizeof(float)),
          *b = malloc((size_t)out * sizeof(float)), *dh = malloc(cnt * sizeof(float)),
          *dz = malloc(cnt * sizeof(float)), *dzref = malloc(cnt * sizeof(float)),
          *db = calloc((size_t)out, sizeof(float));
    mb_rng r;
    mb_rng_seed(&r, 7 + (uint64_t)out);
    mb_rng_fill_normal(&r, z, cnt, 0, 2);
    mb_rng_fill_normal(&r, b, (size_t)out, 0, 1);
    mb_rng_fill_normal(&r, dh, cnt, 0, 1);
    memcpy(z2, z, cnt * sizeof(float));
    mb_bias_act_forward(a, z, b, h, n, out);
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            char lab[48];
            snprintf(lab, sizeof lab, "z+b[%zu,%d]", i, j);
            MB_ASSERT_CLOSE(lab, z[i * out + j], z2[i * out + j] + b[j], 0);
        }
    mb_act_forward(a, z, href, cnt);
    ck_assert_mem_eq(h, href, cnt * sizeof(float));
    /* aliased (inference): same activations */
    mb_bias_act_forward(a, z2, b, z2, n, out);
    ck_assert_mem_eq(z2, h, cnt * sizeof(float));
    /* backward + colsum */
    for (int j = 0; j < out; j++) db[j] = 1.0f; /* accumulates */
    mb_act_backward_bias(a, z, dh, dz, db, n, out);
    mb_act_backward(a, z, dh, dzref, cnt);
    ck_assert_mem_eq(dz, dzref, cnt * sizeof(float));
    for (int j = 0; j < out; j++) {
        double s = 1.0;
        for (size_t i = 0; i < n; i++) s += dzref[i * out + j];
        char lab[32];
        snprintf(lab, sizeof lab, "db[%d]", j);
        MB_ASSERT_CLOSE(lab, db[j], s, 1e-5);
    }
    free(z);
    free(z2);
    free(h);
    free(href);
    free(b);
    free(dh);
    free(dz);
    free(dzref);
    free(db);
}

START_TEST(test_fused) {
    fused_case(MB_ACT_SILU, 13);
    fused_case(MB_ACT_SILU, 37);
    fused_case(MB_ACT_RELU, 8);
    fused_case(MB_ACT_TANH, 5);
}
END_TEST

/* Training variants: h and the kept sigmoid against double closed forms,
 * the backward from (h, aux) against the closed-form derivative at z + b,
 * db accumulated; widths 5, 8, 13, 200 (tail only, one vector, both, many). */
static void aux_case(mb_activation a, int out) {
    const size_t n = 7, cnt = n * (size_t)out;
    float *z = malloc(cnt * sizeof(float)), *zc = malloc(cnt * sizeof(float)),
          *h = malloc(cnt * sizeof(float)), *b = malloc((size_t)out * sizeof(float)),
          *dh = malloc(cnt * sizeof(float)), *dz = malloc(cnt * sizeof(float)),
          *db = malloc((size_t)out * sizeof(float));
    mb_rng r;
    mb_rng_seed(&r, 70 + (uint64_t)out + 1000 * (uint64_t)a);
    mb_rng_fill_normal(&r, z, cnt, 0, 3);
    mb_rng_fill_normal(&r, b, (size_t)out, 0, 1);
    mb_rng_fill_normal(&r, dh, cnt, 0, 1);
    memcpy(zc, z, cnt * sizeof(float));
    /* aux aliases z, as the ensemble uses it */
    mb_bias_act_forward_aux(a, z, b, h, z, n, out);
    for (int j = 0; j < out; j++) db[j] = 0.5f;
    mb_act_backward_aux(a, h, z, dh, dz, db, n, out);
    worst_t w[4] = {{0}};
    double colsum[256] = {0};
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            size_t k = i * (size_t)out + j;
            double v = (double)zc[k] + b[j];
            worst_note(&w[0], "act(z + b)", v, h[k], ref_act(a, v), 1e-6 * fmax(1, fabs(v)));
            if (a == MB_ACT_SILU)
                worst_note(&w[1], "kept sigmoid", v, z[k], 1 / (1 + exp(-v)), 1e-6);
            worst_note(&w[2], "dz from (h, aux)", v, dz[k], dh[k] * ref_dact(a, v),
                       3e-6 * fmax(1, fabs(dh[k])));
            colsum[j] += dz[k];
        }
    for (int j = 0; j < out; j++)
        worst_note(&w[3], "db colsum (column index as x)", j, db[j], 0.5 + colsum[j], 1e-5);
    for (int k = 0; k < 4; k++)
        if (w[k].label[0]) WORST_ASSERT(w[k]);
    /* in place: dz may alias dh */
    mb_act_backward_aux(a, h, z, dh, dh, NULL, n, out);
    ck_assert_mem_eq(dh, dz, cnt * sizeof(float));
    free(z);
    free(zc);
    free(h);
    free(b);
    free(dh);
    free(dz);
    free(db);
}

START_TEST(test_aux_variants) {
    const int widths[4] = {5, 8, 13, 200};
    for (int k = 0; k < 4; k++) {
        aux_case(MB_ACT_SILU, widths[k]);
        aux_case(MB_ACT_RELU, widths[k]);
        aux_case(MB_ACT_TANH, widths[k]);
    }
}
END_TEST

START_TEST(test_axpy_sumsq) {
    const size_t n = 1003;
    float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float)),
          *y0 = malloc(n * sizeof(float));
    mb_rng r;
    mb_rng_seed(&r, 31);
    mb_rng_fill_normal(&r, x, n, 0, 1);
    mb_rng_fill_normal(&r, y, n, 0, 1);
    memcpy(y0, y, n * sizeof(float));
    double ss = mb_axpy_sumsq(0.25f, x, y, n), want = 0;
    worst_t w = {0};
    for (size_t i = 0; i < n; i++) {
        want += (double)x[i] * x[i];
        worst_note(&w, "y + 0.25 x", (double)i, y[i], y0[i] + 0.25 * (double)x[i], 1e-6);
    }
    WORST_ASSERT(w);
    MB_ASSERT_CLOSE("sum x^2", ss, want, 1e-5 * want);
    free(x);
    free(y);
    free(y0);
}
END_TEST

/* Linear layer: forward vs naive double; backward vs finite differences of
 * L(x, W, b) = sum_ij y_ij c_ij (exact in double for a linear map, so the
 * only error is float rounding: tolerance 1e-4 relative to the sum of
 * |terms|). */
START_TEST(test_linear) {
    const int n = 9, in = 7, out = 5;
    float x[9 * 7], W[7 * 5], b[5], y[9 * 5], c[9 * 5];
    float dW[7 * 5], db[5], dx[9 * 7];
    mb_rng r;
    mb_rng_seed(&r, 3);
    mb_rng_fill_normal(&r, x, sizeof x / sizeof x[0], 0, 1);
    mb_rng_fill_normal(&r, W, sizeof W / sizeof W[0], 0, 1);
    mb_rng_fill_normal(&r, b, 5, 0, 1);
    mb_rng_fill_normal(&r, c, sizeof c / sizeof c[0], 0, 1);
    mb_linear_forward(x, W, b, y, (size_t)n, in, out);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < out; j++) {
            double s = b[j], mag = fabs(b[j]);
            for (int k = 0; k < in; k++) {
                s += (double)x[i * in + k] * W[k * out + j];
                mag += fabs((double)x[i * in + k] * W[k * out + j]);
            }
            char lab[32];
            snprintf(lab, sizeof lab, "y[%d,%d]", i, j);
            MB_ASSERT_CLOSE(lab, y[i * out + j], s, 1e-6 * mag + 1e-7);
        }
    for (int i = 0; i < in * out; i++) dW[i] = 0.5f; /* += semantics */
    for (int j = 0; j < out; j++) db[j] = -0.25f;
    mb_linear_backward(x, W, c, dW, db, dx, (size_t)n, in, out);
    /* dL/dW_kj = sum_i x_ik c_ij (closed form = central difference of a
     * linear function) */
    for (int k = 0; k < in; k++)
        for (int j = 0; j < out; j++) {
            double s = 0.5, mag = 0.5;
            for (int i = 0; i < n; i++) {
                s += (double)x[i * in + k] * c[i * out + j];
                mag += fabs((double)x[i * in + k] * c[i * out + j]);
            }
            char lab[32];
            snprintf(lab, sizeof lab, "dW[%d,%d]", k, j);
            MB_ASSERT_CLOSE(lab, dW[k * out + j], s, 1e-6 * mag);
        }
    for (int j = 0; j < out; j++) {
        double s = -0.25;
        for (int i = 0; i < n; i++) s += c[i * out + j];
        char lab[32];
        snprintf(lab, sizeof lab, "db[%d]", j);
        MB_ASSERT_CLOSE(lab, db[j], s, 1e-5);
    }
    /* dx via finite differences of L in double (step 1e-3) */
    for (int i = 0; i < n; i++)
        for (int k = 0; k < in; k++) {
            double L[2];
            for (int sgn = 0; sgn < 2; sgn++) {
                double xv = (double)x[i * in + k] + (sgn ? -1e-3 : 1e-3), s = 0;
                for (int j = 0; j < out; j++) s += xv * W[k * out + j] * c[i * out + j];
                L[sgn] = s;
            }
            char lab[32];
            snprintf(lab, sizeof lab, "dx[%d,%d]", i, k);
            MB_ASSERT_CLOSE(lab, dx[i * in + k], (L[0] - L[1]) / 2e-3, 1e-5);
        }
    /* NULL bias, NULL dx, n = 0 do nothing harmful */
    mb_linear_forward(x, W, NULL, y, (size_t)n, in, out);
    {
        double s = 0;
        for (int k = 0; k < in; k++) s += (double)x[k] * W[k * out];
        MB_ASSERT_CLOSE("y[0,0] without bias", y[0], s, 1e-5);
    }
    mb_linear_backward(x, W, c, dW, NULL, NULL, (size_t)n, in, out);
    mb_linear_forward(x, W, b, y, 0, in, out);
}
END_TEST

START_TEST(test_names) {
    mb_activation a;
    ck_assert_int_eq(mb_activation_parse("silu", &a), 0);
    ck_assert_int_eq(a, MB_ACT_SILU);
    ck_assert_int_eq(mb_activation_parse("relu", &a), 0);
    ck_assert_int_eq(a, MB_ACT_RELU);
    ck_assert_int_eq(mb_activation_parse("tanh", &a), 0);
    ck_assert_int_eq(a, MB_ACT_TANH);
    ck_assert_int_eq(mb_activation_parse("swish", &a), -1);
    ck_assert_int_eq(mb_activation_parse(NULL, &a), -1);
    ck_assert_str_eq(mb_activation_name(MB_ACT_TANH), "tanh");
    ck_assert_str_eq(mb_activation_name(MB_ACT_SILU), "silu");
    ck_assert_str_eq(mb_activation_name(MB_ACT_RELU), "relu");
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("ops");
    TCase *tc = tcase_create("ops");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_exp_approx);
    tcase_add_test(tc, test_exp_widths_agree);
    tcase_add_test(tc, test_softplus_sigmoid);
    tcase_add_test(tc, test_act_silu);
    tcase_add_test(tc, test_act_relu);
    tcase_add_test(tc, test_act_tanh);
    tcase_add_test(tc, test_fused);
    tcase_add_test(tc, test_aux_variants);
    tcase_add_test(tc, test_axpy_sumsq);
    tcase_add_test(tc, test_linear);
    tcase_add_test(tc, test_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
