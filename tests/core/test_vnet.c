/* test_vnet.c: the state-value network (core/nn/vnet.c): forward against
 * the double MLP of ref_mlp.h, the parameter gradient of a squared error
 * against central differences (step 1e-5, |g - fd| <= 1e-4 max(|fd|, rms)
 * + 1e-6), spec checks and copies. */
#include "ref_mlp.h"

#include "base/rng.h"
#include "nn/vnet.h"

typedef struct {
    const mb_vnet *v;
    const double *x, *y;
    size_t n;
} v_ctx;

/* L = sum_r 0.5 (V(x_r) - y_r)^2 */
static double v_loss(void *vctx, const double *p) {
    v_ctx *c = vctx;
    double L = 0, out;
    for (size_t r = 0; r < c->n; r++) {
        ref_mlp_row(&c->v->mlp, p, c->x + r * c->v->spec.obs_dim, &out);
        L += 0.5 * (out - c->y[r]) * (out - c->y[r]);
    }
    return L;
}

START_TEST(test_forward_and_gradcheck) {
    mb_vnet_spec s = {.obs_dim = 4, .n_hidden = 2, .hidden = {10, 6}, .activation = MB_ACT_TANH};
    mb_vnet v, c;
    char err[128];
    ck_assert_int_eq(mb_vnet_init(&v, &s, 2, err, sizeof err), MB_OK);
    const size_t n = 7;
    mb_rng r;
    mb_rng_seed(&r, 3);
    float x[28], y[7], out[7], dy[7];
    mb_rng_fill_normal(&r, x, 28, 0, 1);
    mb_rng_fill_normal(&r, y, 7, 0, 1);
    mb_mlp_ws *ws = mb_vnet_ws_new(&s, n);
    ck_assert_ptr_nonnull(ws);
    mb_mlp_forward_train(&v.mlp, v.params, ws, x, n, out);
    for (size_t i = 0; i < n; i++) dy[i] = out[i] - y[i];
    float *g = malloc(v.n_params * sizeof(float));
    mb_mlp_backward(&v.mlp, v.params, ws, x, n, dy, g, 0, NULL);
    double *pd = malloc(v.n_params * sizeof(double)), xd[28], yd[7];
    ref_to_double(v.params, pd, v.n_params);
    ref_to_double(x, xd, 28);
    ref_to_double(y, yd, 7);
    float vi[7];
    mb_vnet_forward(&v, ws, x, n, vi);
    for (size_t i = 0; i < n; i++) {
        double want;
        ref_mlp_row(&v.mlp, pd, xd + i * 4, &want);
        MB_ASSERT_CLOSE("V", vi[i], want, 1e-5 * (1 + fabs(want)));
    }
    v_ctx cx = {.v = &v, .x = xd, .y = yd, .n = n};
    ref_check_tensor("V params", v_loss, &cx, pd, 0, v.n_params, g, 1e-5, 1e-4, 1e-6);
    ck_assert_int_eq(mb_vnet_copy(&c, &v, err, sizeof err), MB_OK);
    ck_assert_int_eq(memcmp(c.params, v.params, v.n_params * sizeof(float)), 0);
    free(g);
    free(pd);
    mb_mlp_ws_free(ws);
    mb_vnet_free(&v);
    mb_vnet_free(&c);
    s.n_hidden = MB_MAX_LAYERS + 1;
    ck_assert_int_eq(mb_vnet_spec_check(&s, err, sizeof err), MB_ERANGE);
    ck_assert_ptr_null(mb_vnet_ws_new(&s, 3));
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("vnet");
    TCase *tc = tcase_create("vnet");
    tcase_add_test(tc, test_forward_and_gradcheck);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
