/* test_mlp.c: the plain MLP (core/nn/mlp.c) against the double reference of
 * ref_mlp.h: inference and training forwards, and the backward's parameter
 * and input gradients against central differences (step 1e-5 in double;
 * per entry |g - fd| <= 1e-4 * max(|fd|, rms of the tensor) + 1e-6: float
 * accumulation over tens of terms plus the ~1e-7 relative error of the
 * vectorised activations).
 * Not for: what the outputs mean (test_policy, test_qnet, test_vnet). */
#include "ref_mlp.h"

#include "base/rng.h"

static void small(mb_mlp_spec *s, mb_activation act) {
    memset(s, 0, sizeof *s);
    s->in_dim = 5;
    s->out_dim = 3;
    s->n_hidden = 2;
    s->hidden[0] = 9;
    s->hidden[1] = 7;
    s->activation = act;
}

typedef struct {
    const mb_mlp_spec *s;
    const double *p, *x, *w; /* params, inputs (n, in), loss weights (n, out) */
    size_t n;
    int wrt_x;               /* 1: v is x, else v is p */
} loss_ctx;

/* L = sum_r sum_o w[r, o] * y[r, o] */
static double loss_of(void *vctx, const double *v) {
    loss_ctx *c = vctx;
    const double *p = c->wrt_x ? c->p : v, *x = c->wrt_x ? v : c->x;
    double y[64], L = 0;
    for (size_t r = 0; r < c->n; r++) {
        ref_mlp_row(c->s, p, x + r * c->s->in_dim, y);
        for (int o = 0; o < c->s->out_dim; o++) L += c->w[r * c->s->out_dim + o] * y[o];
    }
    return L;
}

static void gradcheck(mb_activation act, uint64_t seed) {
    mb_mlp_spec s;
    small(&s, act);
    size_t np = mb_mlp_size(&s), n = 6;
    mb_rng r;
    mb_rng_seed(&r, seed);
    float *p = malloc(np * sizeof(float)), *x = malloc(n * 5 * sizeof(float)),
          *w = malloc(n * 3 * sizeof(float)), *y = malloc(n * 3 * sizeof(float)),
          *g = malloc(np * sizeof(float)), *dx = malloc(n * 5 * sizeof(float));
    mb_mlp_init(&s, p, &r, 1.0f);
    /* non-zero biases so every term of the gradient is exercised */
    for (int l = 0; l <= s.n_hidden; l++) {
        size_t b = mb_mlp_b_offset(&s, l);
        int cnt = l < s.n_hidden ? s.hidden[l] : s.out_dim;
        mb_rng_fill_normal(&r, p + b, (size_t)cnt, 0, 0.3f);
    }
    mb_rng_fill_normal(&r, x, n * 5, 0, 1);
    mb_rng_fill_normal(&r, w, n * 3, 0, 1);
    mb_mlp_ws *ws = mb_mlp_ws_new(&s, n);
    ck_assert_ptr_nonnull(ws);
    mb_mlp_forward_train(&s, p, ws, x, n, y);
    /* accumulate 1 on a block of ones must add exactly the gradient */
    for (size_t i = 0; i < np; i++) g[i] = 1.0f;
    mb_mlp_backward(&s, p, ws, x, n, w, g, 1, dx);
    for (size_t i = 0; i < np; i++) g[i] -= 1.0f;
    double *pd = malloc(np * sizeof(double)), *xd = malloc(n * 5 * sizeof(double)),
           *wd = malloc(n * 3 * sizeof(double));
    ref_to_double(p, pd, np);
    ref_to_double(x, xd, n * 5);
    ref_to_double(w, wd, n * 3);
    loss_ctx c = {.s = &s, .p = pd, .x = xd, .w = wd, .n = n};
    char lab[32];
    for (int l = 0; l <= s.n_hidden; l++) {
        size_t wo = mb_mlp_W_offset(&s, l), bo = mb_mlp_b_offset(&s, l);
        size_t next = l < s.n_hidden ? mb_mlp_W_offset(&s, l + 1) : np;
        snprintf(lab, sizeof lab, "W_%d", l);
        ref_check_tensor(lab, loss_of, &c, pd, wo, bo - wo, g + wo, 1e-5, 1e-4, 1e-6);
        snprintf(lab, sizeof lab, "b_%d", l);
        ref_check_tensor(lab, loss_of, &c, pd, bo, next - bo, g + bo, 1e-5, 1e-4, 1e-6);
    }
    c.wrt_x = 1;
    ref_check_tensor("dx", loss_of, &c, xd, 0, n * 5, dx, 1e-5, 1e-4, 1e-6);
    /* the overwrite form gives the same gradient */
    float *g2 = malloc(np * sizeof(float));
    for (size_t i = 0; i < np; i++) g2[i] = 123.0f;
    mb_mlp_backward(&s, p, ws, x, n, w, g2, 0, NULL);
    for (size_t i = 0; i < np; i++) MB_ASSERT_CLOSE("overwrite == accumulate on zero", g2[i], g[i], 1e-5 * (1 + fabs(g[i])));
    free(g2);
    free(pd);
    free(xd);
    free(wd);
    free(p);
    free(x);
    free(w);
    free(y);
    free(g);
    free(dx);
    mb_mlp_ws_free(ws);
}

START_TEST(test_gradcheck_silu) { gradcheck(MB_ACT_SILU, 1); }
END_TEST
START_TEST(test_gradcheck_tanh) { gradcheck(MB_ACT_TANH, 2); }
END_TEST
START_TEST(test_gradcheck_relu) { gradcheck(MB_ACT_RELU, 3); }
END_TEST

/* Inference (chunked over a small workspace) and the training forward both
 * match the reference. */
START_TEST(test_forward_matches_reference) {
    mb_activation acts[3] = {MB_ACT_SILU, MB_ACT_RELU, MB_ACT_TANH};
    for (int a = 0; a < 3; a++) {
        mb_mlp_spec s;
        small(&s, acts[a]);
        s.hidden[0] = 40; /* wider than one vector */
        size_t np = mb_mlp_size(&s), n = 37;
        mb_rng r;
        mb_rng_seed(&r, 7 + (uint64_t)a);
        float *p = malloc(np * sizeof(float)), *x = malloc(n * 5 * sizeof(float)),
              *y = malloc(n * 3 * sizeof(float)), *yt = malloc(n * 3 * sizeof(float));
        mb_mlp_init(&s, p, &r, 1.0f);
        mb_rng_fill_normal(&r, x, n * 5, 0, 2);
        mb_mlp_ws *small_ws = mb_mlp_ws_new(&s, 8), *ws = mb_mlp_ws_new(&s, n);
        mb_mlp_forward(&s, p, small_ws, x, n, y);
        mb_mlp_forward_train(&s, p, ws, x, n, yt);
        double *pd = malloc(np * sizeof(double)), xd[5], yd[3];
        ref_to_double(p, pd, np);
        for (size_t i = 0; i < n; i++) {
            ref_to_double(x + i * 5, xd, 5);
            ref_mlp_row(&s, pd, xd, yd);
            for (int o = 0; o < 3; o++) {
                MB_ASSERT_CLOSE("inference y", y[i * 3 + o], yd[o], 1e-5 * (1 + fabs(yd[o])));
                MB_ASSERT_CLOSE("training y", yt[i * 3 + o], yd[o], 1e-5 * (1 + fabs(yd[o])));
            }
        }
        free(pd);
        free(p);
        free(x);
        free(y);
        free(yt);
        mb_mlp_ws_free(small_ws);
        mb_mlp_ws_free(ws);
    }
}
END_TEST

START_TEST(test_spec_check_and_init) {
    mb_mlp_spec s;
    small(&s, MB_ACT_RELU);
    char err[128];
    ck_assert_int_eq(mb_mlp_spec_check(&s, "t", err, sizeof err), MB_OK);
    s.n_hidden = 0;
    ck_assert_int_eq(mb_mlp_spec_check(&s, "t", err, sizeof err), MB_ERANGE);
    ck_assert_ptr_nonnull(strstr(err, "t.hidden"));
    ck_assert_ptr_null(mb_mlp_ws_new(&s, 4));
    small(&s, MB_ACT_RELU);
    s.hidden[1] = MB_MAX_HIDDEN + 1;
    ck_assert_int_eq(mb_mlp_spec_check(&s, "t", err, sizeof err), MB_ERANGE);
    small(&s, MB_ACT_RELU);
    ck_assert_uint_eq(mb_mlp_size(&s), 5 * 9 + 9 + 9 * 7 + 7 + 7 * 3 + 3);
    MB_ASSERT_CLOSE("flops/row", mb_mlp_flops_per_row(&s), 2.0 * (45 + 63 + 21), 0);
    /* same seed, same block; weights within the PyTorch bound, biases 0 */
    size_t np = mb_mlp_size(&s);
    float *a = malloc(np * sizeof(float)), *b = malloc(np * sizeof(float));
    mb_rng r1, r2;
    mb_rng_seed(&r1, 5);
    mb_rng_seed(&r2, 5);
    mb_mlp_init(&s, a, &r1, 0.5f);
    mb_mlp_init(&s, b, &r2, 0.5f);
    ck_assert_int_eq(memcmp(a, b, np * sizeof(float)), 0);
    for (size_t i = 0; i < 45; i++) ck_assert(fabsf(a[i]) <= 1.0f / sqrtf(5.0f));
    size_t wo = mb_mlp_W_offset(&s, 2);
    for (size_t i = 0; i < 21; i++) ck_assert(fabsf(a[wo + i]) <= 0.5f / sqrtf(7.0f));
    for (int i = 0; i < 9; i++) ck_assert(a[mb_mlp_b_offset(&s, 0) + (size_t)i] == 0.0f);
    free(a);
    free(b);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("mlp");
    TCase *tc = tcase_create("mlp");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gradcheck_silu);
    tcase_add_test(tc, test_gradcheck_tanh);
    tcase_add_test(tc, test_gradcheck_relu);
    tcase_add_test(tc, test_forward_matches_reference);
    tcase_add_test(tc, test_spec_check_and_init);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
