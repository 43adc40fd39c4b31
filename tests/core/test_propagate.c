/* test_propagate.c: the planners' random numbers (core/plan/propagate.c,
 * core/plan/plan_ws.h): the ziggurat normal's moments and tails, stream
 * independence, and iCEM's coloured noise (per-step variance and
 * autocorrelation against the closed form of its spectrum). Rollouts
 * themselves are checked through mb_plan in test_planner*.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "check_util.h"
#include "plan/plan_ws.h"

static void dummy_step(size_t n, const float *obs, const float *act, float *next, float *reward) {
    (void)act;
    memcpy(next, obs, n * sizeof(float));
    if (reward) memset(reward, 0, n * sizeof(float));
}
static const mb_known_model dummy = {.name = "dummy", .obs_dim = 1, .act_dim = 1,
                                     .act_low = {-1}, .act_high = {1}, .step = dummy_step};
static const float lo[1] = {-1}, hi[1] = {1};

static mb_plan_ws *ws_for(mb_plan_method m, int H) {
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, m);
    cfg.horizon = H;
    cfg.population = 10;
    cfg.elites = 2;
    mb_dynamics dyn = {.known = &dummy, .obs_dim = 1, .act_dim = 1, .act_low = lo, .act_high = hi};
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    return ws;
}

START_TEST(test_normal_moments) {
    mb_plan_ws *ws = ws_for(MB_PLAN_CEM, 5);
    plan_gen g;
    plan_gen_init(&g, 12345, 7);
    const long n = mb_test_sanitized() ? 400000 : 4000000;
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0;
    long tail2 = 0, tail3 = 0, tail_far = 0;
    for (long i = 0; i < n; i++) {
        double z = plan_normal(&g, ws);
        m1 += z;
        m2 += z * z;
        m3 += z * z * z;
        m4 += z * z * z * z;
        tail2 += fabs(z) > 2.0;
        tail3 += fabs(z) > 3.0;
        tail_far += fabs(z) > PLAN_ZIG_R; /* only the tail algorithm gets there */
    }
    m1 /= n; m2 /= n; m3 /= n; m4 /= n;
    /* Tolerances ~ 5 standard errors of each estimate. */
    double se = 1.0 / sqrt((double)n);
    MB_ASSERT_CLOSE("normal mean", m1, 0.0, 5 * se);
    MB_ASSERT_CLOSE("normal variance", m2, 1.0, 5 * sqrt(2.0) * se);
    MB_ASSERT_CLOSE("normal third moment", m3, 0.0, 5 * sqrt(15.0) * se);
    MB_ASSERT_CLOSE("normal fourth moment", m4, 3.0, 5 * sqrt(96.0) * se);
    double p2 = 0.0455003, p3 = 0.0026998, pr = erfc(PLAN_ZIG_R / sqrt(2.0));
    MB_ASSERT_CLOSE("P(|z| > 2)", (double)tail2 / n, p2, 5 * sqrt(p2 / n));
    MB_ASSERT_CLOSE("P(|z| > 3)", (double)tail3 / n, p3, 5 * sqrt(p3 / n));
    MB_ASSERT_CLOSE("P(|z| > R), the tail path", (double)tail_far / n, pr, 5 * sqrt(pr / n) + 1e-6);
    /* Same seed and stream, same numbers; another stream, others. */
    plan_gen a, b, c;
    plan_gen_init(&a, 1, 2);
    plan_gen_init(&b, 1, 2);
    plan_gen_init(&c, 1, 3);
    int same_c = 0;
    for (int i = 0; i < 1000; i++) {
        float x = plan_normal(&a, ws), y = plan_normal(&b, ws), z = plan_normal(&c, ws);
        ck_assert_float_eq(x, y);
        same_c += x == z;
    }
    ck_assert_int_lt(same_c, 5);
    /* Uniform in [0, 1). */
    double um = 0;
    for (int i = 0; i < 100000; i++) {
        float u = plan_uniform(&a);
        ck_assert(u >= 0.0f && u < 1.0f);
        um += u;
    }
    MB_ASSERT_CLOSE("uniform mean", um / 100000, 0.5, 5 * sqrt(1.0 / 12 / 100000));
    mb_plan_ws_free(ws);
}
END_TEST

/* The rollouts' bulk normals (AVX2 Box-Muller, or the ziggurat): moments,
 * tails, lane/stream independence and determinism. */
START_TEST(test_bulk_normal_moments) {
    mb_plan_ws *ws = ws_for(MB_PLAN_CEM, 5);
    plan_vgen g;
    plan_vgen_init(&g, 4242, 3);
    const long n = mb_test_sanitized() ? 409600 : 4096000;
    float buf[PLAN_NOISE_CHUNK];
    double m1 = 0, m2 = 0, m3 = 0, m4 = 0, lag = 0, prev = 0;
    long tail2 = 0, tail3 = 0, tail4 = 0;
    for (long i = 0; i < n; i += PLAN_NOISE_CHUNK) {
        plan_fill_normal(&g, ws, buf, PLAN_NOISE_CHUNK);
        for (int j = 0; j < PLAN_NOISE_CHUNK; j++) {
            double z = buf[j];
            ck_assert(isfinite(z));
            m1 += z;
            m2 += z * z;
            m3 += z * z * z;
            m4 += z * z * z * z;
            lag += z * prev;
            prev = z;
            tail2 += fabs(z) > 2.0;
            tail3 += fabs(z) > 3.0;
            tail4 += fabs(z) > 4.0;
        }
    }
    m1 /= n; m2 /= n; m3 /= n; m4 /= n; lag /= n;
    double se = 1.0 / sqrt((double)n);
    MB_ASSERT_CLOSE("bulk normal mean", m1, 0.0, 5 * se);
    MB_ASSERT_CLOSE("bulk normal variance", m2, 1.0, 5 * sqrt(2.0) * se);
    MB_ASSERT_CLOSE("bulk normal third moment", m3, 0.0, 5 * sqrt(15.0) * se);
    MB_ASSERT_CLOSE("bulk normal fourth moment", m4, 3.0, 5 * sqrt(96.0) * se);
    MB_ASSERT_CLOSE("bulk normal lag-1 correlation (pairs, lanes)", lag, 0.0, 5 * se);
    double p2 = 0.0455003, p3 = 0.0026998, p4 = 6.334e-5;
    MB_ASSERT_CLOSE("bulk P(|z| > 2)", (double)tail2 / n, p2, 5 * sqrt(p2 / n));
    MB_ASSERT_CLOSE("bulk P(|z| > 3)", (double)tail3 / n, p3, 5 * sqrt(p3 / n));
    MB_ASSERT_CLOSE("bulk P(|z| > 4)", (double)tail4 / n, p4, 5 * sqrt(p4 / n) + 1e-6);
    /* Same seed and stream: same numbers; another stream: others. */
    plan_vgen a, b, c;
    plan_vgen_init(&a, 1, 2);
    plan_vgen_init(&b, 1, 2);
    plan_vgen_init(&c, 1, 3);
    float xa[64], xb[64], xc[64];
    plan_fill_normal(&a, ws, xa, 64);
    plan_fill_normal(&b, ws, xb, 64);
    plan_fill_normal(&c, ws, xc, 64);
    ck_assert(!memcmp(xa, xb, sizeof xa));
    ck_assert(memcmp(xa, xc, sizeof xa));
    /* Consecutive fills continue the streams (no repeats). */
    plan_fill_normal(&a, ws, xb, 64);
    ck_assert(memcmp(xa, xb, sizeof xa));
    mb_plan_ws_free(ws);
}
END_TEST

/* Closed form of the noise's autocorrelation at lag d (see plan_cn_table). */
static double cn_rho(int H, double beta, int d) {
    double num = 0, den = 0;
    for (int k = 0; k <= H / 2; k++) {
        double f = (double)(k > 0 ? k : 1) / H, w = (k == 0 || 2 * k == H) ? 0.5 : 1.0;
        double p = w * pow(f, -beta);
        num += p * cos(2 * M_PI * k * d / H);
        den += p;
    }
    return num / den;
}

START_TEST(test_coloured_noise) {
    const int H = 32;
    mb_plan_ws *ws = ws_for(MB_PLAN_ICEM, H);
    const int n = mb_test_sanitized() ? 4000 : 20000;
    const float betas[3] = {0.0f, 1.0f, 2.0f};
    for (int bi = 0; bi < 3; bi++) {
        plan_cn_table(ws, betas[bi]);
        plan_gen g;
        plan_gen_init(&g, 99, (uint64_t)bi);
        double var[H], lag1 = 0, lag4 = 0;
        memset(var, 0, sizeof var);
        float x[H];
        for (int s = 0; s < n; s++) {
            plan_cn_sample(ws, &g, x);
            for (int t = 0; t < H; t++) var[t] += (double)x[t] * x[t];
            for (int t = 0; t + 1 < H; t++) lag1 += (double)x[t] * x[t + 1];
            for (int t = 0; t + 4 < H; t++) lag4 += (double)x[t] * x[t + 4];
        }
        char label[64];
        for (int t = 0; t < H; t += 7) {
            snprintf(label, sizeof label, "beta %.0f: variance at step %d", (double)betas[bi], t);
            MB_ASSERT_CLOSE(label, var[t] / n, 1.0, 6 * sqrt(2.0 / n));
        }
        lag1 /= (double)n * (H - 1);
        lag4 /= (double)n * (H - 4);
        snprintf(label, sizeof label, "beta %.0f: lag-1 correlation", (double)betas[bi]);
        MB_ASSERT_CLOSE(label, lag1, cn_rho(H, betas[bi], 1), 6 / sqrt((double)n));
        snprintf(label, sizeof label, "beta %.0f: lag-4 correlation", (double)betas[bi]);
        MB_ASSERT_CLOSE(label, lag4, cn_rho(H, betas[bi], 4), 6 / sqrt((double)n));
    }
    /* Sanity of the closed form itself: white at beta 0, red at beta 2. */
    MB_ASSERT_CLOSE("white noise: no correlation", cn_rho(H, 0.0, 1), 0.0, 1e-12);
    ck_assert(cn_rho(H, 2.0, 1) > 0.8);
    mb_plan_ws_free(ws);
}
END_TEST

int main(void) {
    Suite *s = suite_create("propagate");
    TCase *tc = tcase_create("random");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_normal_moments);
    tcase_add_test(tc, test_bulk_normal_moments);
    tcase_add_test(tc, test_coloured_noise);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
