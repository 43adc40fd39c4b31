/* test_dispatch.c: the kernels agree across the run-time instruction-set
 * levels (base/cpu.h). Each level this CPU has (scalar, avx2, avx512) is
 * forced in turn and the same inputs go through sgemm (nn, tn, the fused
 * bias + activation), the elementwise ops and their training variants, the
 * vector normal and uniform streams, the ensemble forward and loss
 * gradient, and a whole CEM plan through an ensemble.
 *   avx2 vs avx512: every output bit for bit (the code promises it: same
 *     operations per element in the same order; gemm.h, vmath.h).
 *   scalar vs avx2: sgemm without an activation and the random streams bit
 *     for bit (fmaf chains; the *_ref twins); activations and the ensemble
 *     within 2e-6 relative + 1e-6 absolute (exp/log without fused
 *     multiply-adds); the plan is not compared (a last-bit difference may
 *     swap an elite).
 * On a CPU without AVX-512 the avx512 comparisons are skipped (nothing to
 * compare), and without AVX2 the suite checks scalar alone.
 * Not for: accuracy against references (test_gemm, test_ops, ...). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "base/pool.h"
#include "base/rng_vec.h"
#include "check_util.h"
#include "nn/gemm.h"
#include "plan/planner.h"

/* Every output of one level, concatenated (sections named for messages). */
#define MAX_SECTIONS 64
typedef struct {
    float *v;
    size_t n, cap;
    int n_sec;
    const char *sec_name[MAX_SECTIONS];
    size_t sec_start[MAX_SECTIONS];
    int sec_exact_scalar[MAX_SECTIONS]; /* bit-exact against scalar too */
} outputs;

static float *take(outputs *o, const char *name, size_t n, int exact_scalar) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2;
        o->v = realloc(o->v, o->cap * sizeof(float));
        ck_assert_ptr_nonnull(o->v);
    }
    ck_assert_int_lt(o->n_sec, MAX_SECTIONS);
    o->sec_name[o->n_sec] = name;
    o->sec_start[o->n_sec] = o->n;
    o->sec_exact_scalar[o->n_sec] = exact_scalar;
    o->n_sec++;
    float *p = o->v + o->n;
    o->n += n;
    return p;
}

static void fill(float *x, size_t n, uint64_t seed, float scale) {
    mb_rng r;
    mb_rng_seed(&r, seed);
    for (size_t i = 0; i < n; i++) x[i] = scale * (float)mb_rng_normal(&r);
}

static void run_gemm(outputs *o) {
    enum { M = 37, N = 53, K = 29 };
    float A[M * K], B[K * N], C0[M * N], bias[200], At[67 * 41], Bt[67 * 38];
    fill(A, M * K, 1, 1.0f);
    fill(B, K * N, 2, 0.5f);
    fill(C0, M * N, 3, 1.0f);
    fill(bias, 200, 4, 1.0f);
    fill(At, 67 * 41, 5, 1.0f);
    fill(Bt, 67 * 38, 6, 1.0f);
    float *c = take(o, "gemm_nn", M * N, 1);
    mb_gemm_nn(M, N, K, A, B, c, 0);
    c = take(o, "gemm_nn accumulate", M * N, 1);
    memcpy(c, C0, sizeof C0);
    mb_gemm_nn(M, N, K, A, B, c, 1);
    c = take(o, "gemm_tn", 41 * 38, 1);
    mb_gemm_tn(41, 38, 67, At, Bt, c, 0);
    c = take(o, "gemm_tn accumulate", 41 * 38, 1);
    memcpy(c, C0, 41 * 38 * sizeof(float));
    mb_gemm_tn(41, 38, 67, At, Bt, c, 1);
    /* bias + activation: 19 rows x 200 (a 48-column panel tail of 8) */
    float X[19 * 24], W[24 * 200];
    fill(X, 19 * 24, 7, 1.0f);
    fill(W, 24 * 200, 8, 0.3f);
    static const char *names[3] = {"gemm silu", "gemm relu", "gemm tanh"};
    for (int a = 0; a < 3; a++) {
        c = take(o, names[a], 19 * 200, a == MB_ACT_RELU);
        mb_gemm_nn_bias_act(19, 200, 24, X, W, bias, (mb_activation)a, c);
    }
}

static void run_ops(outputs *o) {
    enum { N = 1003, R = 21, W = 38 };
    float x[N], g[N], z[R * W], dh[R * W], b[W];
    fill(x, N, 11, 6.0f);
    fill(g, N, 12, 1.0f);
    fill(z, R * W, 13, 3.0f);
    fill(dh, R * W, 14, 1.0f);
    fill(b, W, 15, 1.0f);
    mb_exp_approx(x, take(o, "exp", N, 0), N);
    mb_softplus_approx(x, take(o, "softplus", N, 0), N);
    mb_sigmoid_approx(x, take(o, "sigmoid", N, 0), N);
    for (int a = 0; a < 3; a++) {
        mb_act_forward((mb_activation)a, x, take(o, "act forward", N, a == MB_ACT_RELU), N);
        mb_act_backward((mb_activation)a, x, g, take(o, "act backward", N, a == MB_ACT_RELU), N);
        float zc[R * W];
        memcpy(zc, z, sizeof zc);
        float *h = take(o, "bias_act forward", R * W, 0);
        mb_bias_act_forward((mb_activation)a, zc, b, h, R, W);
        memcpy(take(o, "bias_act stored z", R * W, 1), zc, sizeof zc);
        float *h2 = take(o, "forward_aux h", R * W, a == MB_ACT_RELU);
        float *s = take(o, "forward_aux s", R * W, 0);
        memset(s, 0, sizeof zc);
        mb_bias_act_forward_aux((mb_activation)a, z, b, h2, s, R, W);
        float *dz = take(o, "backward_aux dz", R * W, 0);
        float *db = take(o, "backward_aux db", W, 0);
        memset(db, 0, W * sizeof(float));
        mb_act_backward_aux((mb_activation)a, h2, s, dh, dz, db, R, W);
    }
    float y[N];
    memcpy(y, g, sizeof y);
    double ss = mb_axpy_sumsq(0.5f, x, y, N);
    memcpy(take(o, "axpy", N, 0), y, sizeof y);
    *take(o, "sumsq", 1, 0) = (float)ss;
}

static void run_rng(outputs *o) {
    mb_vrng g;
    mb_vrng_init(&g, 99, 7);
    mb_vrng_fill_normal(&g, take(o, "vrng normal", 16 * 37, 1), 16 * 37); /* odd block count */
    mb_vrng_fill_uniform(&g, take(o, "vrng uniform", 8 * 13, 1), 8 * 13);
    mb_vrng_fill_normal(&g, take(o, "vrng normal after", 32, 1), 32);
}

static void small_ensemble(mb_ensemble *e, int obs, int act) {
    mb_ensemble_spec spec;
    mb_ensemble_spec_default(&spec);
    spec.obs_dim = obs;
    spec.act_dim = act;
    spec.n_hidden = 2;
    spec.hidden[0] = 64;
    spec.hidden[1] = 50;
    spec.weight_decay[2] = 1e-4f;
    char err[200];
    ck_assert_int_eq(mb_ensemble_init(e, &spec, 5, err, sizeof err), MB_OK);
    int in = obs + act, out = obs + 1;
    for (int i = 0; i < in; i++) e->in_mean[i] = 0.1f * (float)i, e->in_std[i] = 1.0f + 0.05f * (float)i;
    for (int i = 0; i < out; i++) e->out_mean[i] = -0.02f * (float)i, e->out_std[i] = 0.5f + 0.1f * (float)i;
}

static void run_ensemble(outputs *o, mb_pool *pool) {
    mb_ensemble e;
    small_ensemble(&e, 18, 6);
    enum { N = 203, IN = 24, D = 19 };
    mb_ens_ws *ws = mb_ens_ws_new(&e.spec, N);
    ck_assert_ptr_nonnull(ws);
    float *x = malloc(sizeof(float) * 5 * N * IN), *y = malloc(sizeof(float) * N * D);
    fill(x, 5 * N * IN, 21, 1.0f);
    fill(y, N * D, 22, 1.0f);
    float *mean = take(o, "ensemble mean", 5 * N * D, 0), *sd = take(o, "ensemble std", 5 * N * D, 0);
    mb_ensemble_forward(&e, ws, pool, NULL, 5, x, N, mean, sd);
    float *grad = take(o, "loss grad", e.member_size, 0);
    *take(o, "loss", 1, 0) = mb_ensemble_loss_grad(&e, ws, 2, x, y, N, grad);
    *take(o, "mse", 1, 0) = mb_ensemble_mse(&e, ws, 1, x, y, N);
    free(x);
    free(y);
    mb_ens_ws_free(ws);
    mb_ensemble_free(&e);
}

static void run_plan(outputs *o, mb_pool *pool) {
    mb_ensemble e;
    small_ensemble(&e, 4, 2);
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.horizon = 8;
    cfg.population = 64;
    cfg.elites = 8;
    cfg.iterations = 3;
    cfg.particles = 5;
    float low[2] = {-1, -1}, high[2] = {1, 1}, obs[4] = {0.3f, -0.2f, 0.1f, 0.5f};
    mb_dynamics dyn = {.ens = &e, .obs_dim = 4, .act_dim = 2, .act_low = low, .act_high = high};
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    ck_assert_ptr_nonnull(ws);
    mb_rng rng;
    mb_rng_seed(&rng, 17);
    float *plan = take(o, "plan sequence", 8 * 2, 0), act[2];
    mb_plan_info info;
    char err[200];
    ck_assert_int_eq(mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, pool, act, plan, &info, err, sizeof err),
                     MB_OK);
    *take(o, "plan return", 1, 0) = info.predicted_return;
    mb_plan_ws_free(ws);
    mb_ensemble_free(&e);
}

static void run_all(mb_isa level, outputs *o, mb_pool *pool) {
    ck_assert_int_eq(mb_cpu_isa_force(level), level);
    memset(o, 0, sizeof *o);
    run_gemm(o);
    run_ops(o);
    run_rng(o);
    run_ensemble(o, pool);
    run_plan(o, pool);
}

/* Bit for bit, or |a - b| <= rel |b| + abs per entry; plan sections skipped
 * when `skip_plan`. */
static void compare(const outputs *a, const outputs *b, const char *what, int exact_all, double rel,
                    double abs_tol, int skip_plan) {
    ck_assert_int_eq(a->n, b->n);
    for (int s = 0; s < a->n_sec; s++) {
        size_t lo = a->sec_start[s], hi = s + 1 < a->n_sec ? a->sec_start[s + 1] : a->n;
        int exact = exact_all || a->sec_exact_scalar[s];
        if (skip_plan && !strncmp(a->sec_name[s], "plan", 4)) continue;
        for (size_t i = lo; i < hi; i++) {
            float x = a->v[i], y = b->v[i];
            int ok = exact ? !memcmp(&x, &y, sizeof x) : fabsf(x - y) <= rel * fabsf(y) + abs_tol;
            ck_assert_msg(ok, "%s: %s[%zu]: %.9g vs %.9g (%s)", what, a->sec_name[s], i - lo, (double)x,
                          (double)y, exact ? "must be bit-identical" : "tolerance");
        }
    }
}

START_TEST(test_levels_agree) {
    mb_isa max = mb_cpu_isa_max();
    mb_pool *pool = mb_pool_new(2);
    outputs lv[3];
    for (int l = 0; l <= (int)max; l++) run_all((mb_isa)l, &lv[l], pool);
    if (max >= MB_ISA_AVX512) compare(&lv[MB_ISA_AVX512], &lv[MB_ISA_AVX2], "avx512 vs avx2", 1, 0, 0, 0);
    if (max >= MB_ISA_AVX2) compare(&lv[MB_ISA_SCALAR], &lv[MB_ISA_AVX2], "scalar vs avx2", 0, 2e-6, 1e-6, 1);
    /* the same level twice, without a pool: nothing depends on the workers */
    outputs again;
    run_all(max, &again, NULL);
    compare(&again, &lv[max], "no pool vs pool", 1, 0, 0, 0);
    for (int l = 0; l <= (int)max; l++) free(lv[l].v);
    free(again.v);
    mb_pool_free(pool);
}
END_TEST

/* Every level's streams equal the lane-by-lane reference. */
START_TEST(test_rng_levels_match_ref) {
    for (int l = 0; l <= (int)mb_cpu_isa_max(); l++) {
        mb_cpu_isa_force((mb_isa)l);
        for (size_t n = 16; n <= 16 * 5; n += 16) {
            mb_vrng a, b;
            mb_vrng_init(&a, 5, 3);
            b = a;
            float x[16 * 5], y[16 * 5];
            mb_vrng_fill_normal(&a, x, n);
            mb_vrng_fill_normal_ref(&b, y, n);
            ck_assert_msg(!memcmp(x, y, n * sizeof(float)), "%s normal n=%zu", mb_isa_name((mb_isa)l), n);
            ck_assert_msg(!memcmp(&a, &b, sizeof a), "%s normal state n=%zu", mb_isa_name((mb_isa)l), n);
            mb_vrng_fill_uniform(&a, x, n);
            mb_vrng_fill_uniform_ref(&b, y, n);
            ck_assert_msg(!memcmp(x, y, n * sizeof(float)), "%s uniform n=%zu", mb_isa_name((mb_isa)l), n);
        }
    }
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("dispatch");
    TCase *tc = tcase_create("dispatch");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_levels_agree);
    tcase_add_test(tc, test_rng_levels_match_ref);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
