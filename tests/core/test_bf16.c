/* test_bf16.c: the bf16 products (core/nn/bf16.c) and the bf16 planning
 * forward built on them (mb_ensemble_forward_prec, planner precision).
 *   - the pair-dot kernels against double loops over the bf16-rounded
 *     operands: awkward m, odd n (the even pad column must be 0) and k,
 *     canaries after each row; tolerance 1e-5 * sum |terms| for the fp32
 *     accumulation, plus half a bf16 ulp (2^-9 relative) where the
 *     output is stored as bf16;
 *   - one-step predictions of an ensemble with O(1) outputs (2 x 64 SiLU,
 *     init weights x 2.5): bf16 means within 2e-2 * (1 + |mean|) and stds
 *     within 2e-2 relative of fp32 (bf16 keeps 8 significant bits;
 *     measured worst 1.1e-2 and 6e-3 over 28,595 outputs; the error grows
 *     with the pre-activations: x 4 weights give 4e-2);
 *   - planning quality: CEM through the double-integrator ensemble (the
 *     LQR problem of test_planner_ensemble) in bf16 reaches the LQR
 *     optimum within 3% as fp32 does, and the two plans' true costs agree
 *     within 2%;
 *   - fp32 where bf16 cannot run (no copy, MBRLD_ISA=avx2, a CPU without
 *     AVX512_BF16): the same bits as the fp32 forward, and the precision
 *     reported says so.
 * On a CPU without AVX512_BF16 only the fallback test has work to do. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "check_util.h"
#include "nn/bf16.h"
#include "plan/planner.h"

#define CANARY 0x7e57u
#include "base/pool.h"

/* Round to nearest even, as vcvtneps2bf16 does for normal numbers. */
static float bf16_round(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&f, &u, 4);
    return f;
}
static float bf16_to_f(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static double ref_act(mb_activation a, double x) {
    return a == MB_ACT_SILU ? x / (1 + exp(-x)) : a == MB_ACT_RELU ? (x > 0 ? x : 0) : tanh(x);
}

static void gemm_case(size_t m, int n, int k, int act, mb_rng *r) {
    int ks = mb_bf16_stride(k), ns = mb_bf16_stride(n);
    size_t rows = mb_bf16_rows_alloc(m);
    float *A = malloc(sizeof(float) * m * k), *W = malloc(sizeof(float) * k * n), *b = malloc(sizeof(float) * n);
    mb_rng_fill_normal(r, A, m * (size_t)k, 0, 1);
    mb_rng_fill_normal(r, W, (size_t)k * n, 0, 0.3f);
    mb_rng_fill_normal(r, b, (size_t)n, 0, 1);
    uint16_t *A16 = malloc(sizeof(uint16_t) * rows * ks), *P = malloc(sizeof(uint16_t) * mb_bf16_packed_size(k, n));
    for (size_t i = 0; i < rows * ks; i++) A16[i] = 0x7fc0; /* NaN past m: those rows must stay apart */
    mb_bf16_rows(A, m, k, A16);
    for (size_t i = 0; i < m; i++)
        for (int j = k; j < ks; j++) ck_assert_uint_eq(A16[i * ks + j], 0);
    mb_bf16_pack(W, k, n, P);
    /* C with a canary block after the last row */
    size_t ldc = act >= 0 ? (size_t)ns : (size_t)n;
    uint16_t *C16 = malloc(sizeof(uint16_t) * (m * ldc + 8));
    float *C32 = malloc(sizeof(float) * (m * ldc + 8));
    for (size_t i = 0; i < m * ldc + 8; i++) C16[i] = CANARY, C32[i] = -777.0f;
    if (act >= 0) mb_gemm_bf16_act(m, n, k, A16, P, b, (mb_activation)act, C16);
    else mb_gemm_bf16_f32(m, n, k, A16, P, C32);
    for (size_t i = 0; i < m; i++) {
        for (int j = 0; j < n; j++) {
            double s = act >= 0 ? b[j] : 0, mag = act >= 0 ? fabs(b[j]) : 0;
            for (int kk = 0; kk < k; kk++) {
                double t = (double)bf16_round(A[i * k + kk]) * bf16_round(W[(size_t)kk * n + j]);
                s += t;
                mag += fabs(t);
            }
            double want = act >= 0 ? ref_act((mb_activation)act, s) : s;
            double got = act >= 0 ? bf16_to_f(C16[i * ldc + j]) : C32[i * ldc + j];
            double tol = 1e-5 * (1 + mag) + (act >= 0 ? 0x1p-8 * fabs(want) : 0);
            char lab[112];
            snprintf(lab, sizeof lab, "bf16 (%s) %s m=%zu n=%d k=%d C[%zu][%d]", mb_cpu_has_amx() ? "amx" : "dpbf16",
                     act >= 0 ? mb_activation_name((mb_activation)act) : "f32", m, n, k, i, j);
            MB_ASSERT_CLOSE(lab, got, want, tol);
        }
        if (act >= 0) /* the padding is act(0) = 0 */
            for (int j = n; j < ns; j++) ck_assert_uint_eq(C16[i * ldc + j], 0);
    }
    for (int i = 0; i < 8; i++) {
        if (act >= 0) ck_assert_uint_eq(C16[m * ldc + i], CANARY);
        else ck_assert_float_eq(C32[m * ldc + i], -777.0f);
    }
    free(A), free(W), free(b), free(A16), free(P), free(C16), free(C32);
}

static void kernel_cases(void) {
    static const size_t ms[] = {1, 7, 8, 9, 17, 33};
    static const int ns[] = {1, 5, 16, 17, 38, 49, 200};
    static const int ks[] = {1, 3, 24, 64};
    mb_rng r;
    mb_rng_seed(&r, 8);
    for (size_t a = 0; a < sizeof ms / sizeof ms[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++)
            for (size_t c = 0; c < sizeof ks / sizeof ks[0]; c++)
                for (int act = -1; act < 3; act++) gemm_case(ms[a], ns[b], ks[c], act, &r);
    gemm_case(256, 200, 200, MB_ACT_SILU, &r);
    gemm_case(203, 38, 200, -1, &r);
}

/* Both bf16 paths where the CPU has AMX: tiles, then vdpbf16ps. */
START_TEST(test_kernels) {
    if (!mb_cpu_has_bf16()) return; /* nothing runs on this CPU */
    kernel_cases();
    if (mb_cpu_has_amx()) {
        mb_cpu_amx_force(0);
        ck_assert_int_eq(mb_cpu_has_amx(), 0);
        kernel_cases();
        mb_cpu_amx_force(1);
    }
}
END_TEST

/* A PETS-shaped ensemble (2 x 64 SiLU) scaled so outputs are O(1). */
static void scaled_ensemble(mb_ensemble *e) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = 18;
    spec.act_dim = 6;
    spec.n_hidden = 2;
    spec.hidden[0] = spec.hidden[1] = 64;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(e, &spec, 4, err, sizeof err), MB_OK);
    for (size_t i = 0; i < e->n_params; i++) e->params[i] *= 2.5f;
    for (int i = 0; i < 24; i++) e->in_mean[i] = 0.05f * (float)i, e->in_std[i] = 1.0f + 0.1f * (float)i;
    for (int i = 0; i < 19; i++) e->out_mean[i] = 0.1f, e->out_std[i] = 0.5f + 0.05f * (float)i;
}

START_TEST(test_one_step_tolerance) {
    if (!mb_cpu_has_bf16()) return;
    mb_ensemble e;
    scaled_ensemble(&e);
    char err[160];
    ck_assert_int_eq(mb_ensemble_bf16_prepare(&e, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_ensemble_bf16_prepare(&e, err, sizeof err), MB_OK); /* idempotent */
    enum { N = 301, D = 19 };
    mb_ens_ws *ws = mb_ens_ws_new(&e.spec, N);
    float *x = malloc(sizeof(float) * 5 * N * 24), *m32 = malloc(sizeof(float) * 5 * N * D),
          *s32 = malloc(sizeof(float) * 5 * N * D), *m16 = malloc(sizeof(float) * 5 * N * D),
          *s16 = malloc(sizeof(float) * 5 * N * D);
    mb_rng r;
    mb_rng_seed(&r, 9);
    mb_rng_fill_normal(&r, x, 5 * N * 24, 0, 2);
    mb_pool *pool = mb_pool_new(2);
    ck_assert_int_eq(mb_ensemble_forward_prec(&e, ws, pool, NULL, 5, x, N, m32, s32, MB_PREC_FP32), MB_PREC_FP32);
    ck_assert_int_eq(mb_ensemble_forward_prec(&e, ws, pool, NULL, 5, x, N, m16, s16, MB_PREC_BF16), MB_PREC_BF16);
    double worst_m = 0, worst_s = 0, scale = 0;
    for (size_t i = 0; i < 5 * (size_t)N * D; i++) {
        double dm = fabs(m16[i] - m32[i]) / (1 + fabs(m32[i])), ds = fabs(s16[i] - s32[i]) / s32[i];
        if (dm > worst_m) worst_m = dm;
        if (ds > worst_s) worst_s = ds;
        scale += fabs(m32[i]);
    }
    fprintf(stderr, "bf16 one step: worst |dmean| / (1 + |mean|) %.3g, worst |dstd| / std %.3g (mean |mean| %.3g)\n",
            worst_m, worst_s, scale / (5.0 * N * D));
    ck_assert(scale / (5.0 * N * D) > 0.3); /* the outputs are O(1): the check means something */
    MB_ASSERT_CLOSE("bf16 mean vs fp32", worst_m, 0, 2e-2);
    MB_ASSERT_CLOSE("bf16 std vs fp32", worst_s, 0, 2e-2);
    /* no pool: the same bf16 numbers */
    float *m2 = malloc(sizeof(float) * 5 * N * D);
    mb_ensemble_forward_prec(&e, ws, NULL, NULL, 5, x, N, m2, NULL, MB_PREC_BF16);
    ck_assert(!memcmp(m2, m16, sizeof(float) * 5 * N * D));
    free(x), free(m32), free(s32), free(m16), free(s16), free(m2);
    mb_pool_free(pool);
    mb_ens_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

START_TEST(test_fallback_is_fp32) {
    mb_ensemble e;
    scaled_ensemble(&e);
    enum { N = 37, D = 19 };
    mb_ens_ws *ws = mb_ens_ws_new(&e.spec, N);
    float x[5 * N * 24], a[5 * N * D], b[5 * N * D];
    mb_rng r;
    mb_rng_seed(&r, 10);
    mb_rng_fill_normal(&r, x, 5 * N * 24, 0, 1);
    mb_ensemble_forward(&e, ws, NULL, NULL, 5, x, N, a, NULL);
    /* no bf16 copy yet */
    ck_assert_int_eq(mb_ensemble_forward_prec(&e, ws, NULL, NULL, 5, x, N, b, NULL, MB_PREC_BF16), MB_PREC_FP32);
    ck_assert(!memcmp(a, b, sizeof a));
    int have = mb_ensemble_bf16_prepare(&e, NULL, 0) == MB_OK;
    ck_assert_int_eq(have, mb_cpu_has_bf16());
    /* the AVX2 level has no bf16: fp32, whatever the copy */
    mb_isa was = mb_cpu_isa();
    mb_cpu_isa_force(MB_ISA_AVX2);
    ck_assert_int_eq(mb_cpu_has_bf16(), 0);
    ck_assert_int_eq(mb_ensemble_forward_prec(&e, ws, NULL, NULL, 5, x, N, b, NULL, MB_PREC_BF16), MB_PREC_FP32);
    ck_assert(!memcmp(a, b, sizeof a));
    mb_cpu_isa_force(was);
    mb_ens_ws_free(ws);
    mb_ensemble_free(&e);
}
END_TEST

/* ---- planning quality: the double integrator as an exact ReLU ensemble
 * (test_planner_ensemble.c): h = relu(+-v), relu(+-u); dp = dt (h0 - h1),
 * dv = dt (h2 - h3); learned reward 0.5. */
#define DT 0.1
static void di_ensemble(mb_ensemble *e) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.members = 2;
    spec.obs_dim = 2;
    spec.act_dim = 1;
    spec.n_hidden = 1;
    spec.hidden[0] = 4;
    spec.activation = MB_ACT_RELU;
    char err[160];
    ck_assert_int_eq(mb_ensemble_init(e, &spec, 1, err, sizeof err), MB_OK);
    memset(e->params, 0, e->n_params * sizeof(float));
    for (int m = 0; m < 2; m++) {
        float *W0 = mb_ensemble_layer_W(&spec, e->params, m, 0), *W1 = mb_ensemble_layer_W(&spec, e->params, m, 1);
        float *b1 = mb_ensemble_layer_b(&spec, e->params, m, 1);
        W0[1 * 4 + 0] = 1, W0[1 * 4 + 1] = -1, W0[2 * 4 + 2] = 1, W0[2 * 4 + 3] = -1;
        W1[0 * 6 + 0] = (float)DT, W1[1 * 6 + 0] = (float)-DT, W1[2 * 6 + 1] = (float)DT, W1[3 * 6 + 1] = (float)-DT;
        b1[2] = 0.5f;
        for (int o = 0; o < 3; o++) b1[3 + o] = -20.0f;
        float *mx = mb_ensemble_max_logvar(&spec, e->params, m), *mn = mb_ensemble_min_logvar(&spec, e->params, m);
        for (int o = 0; o < 3; o++) mx[o] = 0.5f, mn[o] = -20.0f;
    }
}

static double di_cost(const float *x0, const float *u, int H) {
    double p = x0[0], v = x0[1], c = 0.0;
    for (int t = 0; t < H; t++) {
        double np = p + DT * v, nv = v + DT * u[t];
        c += np * np + nv * nv + 0.1 * u[t] * u[t];
        p = np;
        v = nv;
    }
    return c;
}

/* Finite-horizon LQR optimum of di_cost (test_planner.c derives it). */
static double lqr_optimum(const float *x0, int H) {
    double P[2][2] = {{1, 0}, {0, 1}};
    for (int t = H - 1; t >= 0; t--) {
        double s = 0.1 + DT * DT * P[1][1];
        double k0 = DT * P[1][0] / s, k1 = DT * (DT * P[1][0] + P[1][1]) / s;
        double M[2][2] = {{1, DT}, {-DT * k0, 1 - DT * k1}};
        double PM[2][2], NP[2][2];
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 2; j++) PM[i][j] = P[i][0] * M[0][j] + P[i][1] * M[1][j];
        for (int j = 0; j < 2; j++) {
            NP[0][j] = PM[0][j];
            NP[1][j] = DT * PM[0][j] + PM[1][j];
        }
        if (t > 0) NP[0][0] += 1.0, NP[1][1] += 1.0;
        memcpy(P, NP, sizeof P);
    }
    return x0[0] * (P[0][0] * x0[0] + P[0][1] * x0[1]) + x0[1] * (P[1][0] * x0[0] + P[1][1] * x0[1]);
}

START_TEST(test_planning_quality) {
    if (!mb_cpu_has_bf16()) return;
    mb_ensemble e;
    di_ensemble(&e);
    static const float lo[1] = {-5.0f}, hi[1] = {5.0f};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 2, .act_dim = 1, .act_low = lo, .act_high = hi};
    mb_reward_spec rw;
    mb_reward_spec_default(&rw);
    rw.use_learned = 1;
    rw.n_terms = 2;
    rw.terms[0] = (mb_reward_term){.type = MB_TERM_QUADRATIC, .weight = 1.0f, .n_idx = 2, .idx = {0, 1}, .target = {0, 0}};
    rw.terms[1] = (mb_reward_term){.type = MB_TERM_ACTION_L2, .weight = 0.1f};
    enum { H = 20 };
    const float x0[2] = {1.0f, 0.0f};
    double J = lqr_optimum(x0, H), cost[2];
    for (int prec = 0; prec < 2; prec++) {
        mb_planner_cfg cfg;
        mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
        cfg.horizon = H, cfg.population = 200, cfg.elites = 20, cfg.iterations = 8, cfg.particles = 2;
        cfg.precision = (mb_precision)prec;
        mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
        mb_rng rng;
        mb_rng_seed(&rng, 3);
        float a, plan[H];
        mb_plan_info info;
        char err[160] = "";
        ck_assert_msg(mb_plan(&cfg, &dyn, &rw, x0, NULL, &rng, ws, NULL, &a, plan, &info, err, sizeof err) == MB_OK,
                      "%s", err);
        ck_assert_int_eq(info.precision, cfg.precision);
        cost[prec] = di_cost(x0, plan, H);
        fprintf(stderr, "DI LQR through the ensemble, %s: J* %.5f, CEM %.5f (+%.2f%%), predicted %.4f\n",
                mb_precision_name(cfg.precision), J, cost[prec], 100 * (cost[prec] / J - 1), info.predicted_return);
        ck_assert_msg(cost[prec] >= J * (1 - 1e-4) && cost[prec] <= J * 1.03, "%s: CEM %g vs LQR %g",
                      mb_precision_name(cfg.precision), cost[prec], J);
        mb_plan_ws_free(ws);
    }
    MB_ASSERT_CLOSE("bf16 plan's true cost vs fp32's", cost[1], cost[0], 0.02 * cost[0]);
    mb_ensemble_free(&e);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("bf16");
    TCase *tc = tcase_create("bf16");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_kernels);
    tcase_add_test(tc, test_one_step_tolerance);
    tcase_add_test(tc, test_fallback_is_fp32);
    tcase_add_test(tc, test_planning_quality);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
