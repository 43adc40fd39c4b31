/* test_qnet.c: twin Q-functions with targets (core/nn/qnet.c): each twin's
 * forward against the double MLP of ref_mlp.h on (obs, action); the
 * backward's parameter gradient (only twin k's slice written) and the
 * gradients w.r.t. obs and action against central differences (step 1e-5,
 * |g - fd| <= 1e-4 * max(|fd|, rms) + 1e-6); Polyak averaging; targets. */
#include "ref_mlp.h"

#include "base/rng.h"
#include "nn/qnet.h"

static void small_spec(mb_qnet_spec *s) {
    memset(s, 0, sizeof *s);
    s->obs_dim = 3;
    s->act_dim = 2;
    s->n_hidden = 2;
    s->hidden[0] = 8;
    s->hidden[1] = 5;
    s->activation = MB_ACT_SILU;
}

typedef struct {
    const mb_qnet *q;
    const double *p, *x, *w; /* one twin's params, inputs (n, 5), weights (n) */
    size_t n;
    int wrt_x;
} q_ctx;

static double q_loss(void *vctx, const double *v) {
    q_ctx *c = vctx;
    const double *p = c->wrt_x ? c->p : v, *x = c->wrt_x ? v : c->x;
    double L = 0, y;
    for (size_t r = 0; r < c->n; r++) {
        ref_mlp_row(&c->q->mlp, p, x + r * 5, &y);
        L += c->w[r] * y;
    }
    return L;
}

START_TEST(test_gradcheck_twins) {
    mb_qnet_spec s;
    small_spec(&s);
    mb_qnet q;
    char err[128];
    ck_assert_int_eq(mb_qnet_init(&q, &s, 3, err, sizeof err), MB_OK);
    ck_assert_int_ne(memcmp(q.params, q.params + q.net_size, q.net_size * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(q.params, q.target, q.n_params * sizeof(float)), 0);
    const size_t n = 6;
    mb_rng r;
    mb_rng_seed(&r, 17);
    float obs[18], act[12], w[6], out[6], gobs[18], gact[12];
    mb_rng_fill_normal(&r, obs, 18, 0, 1);
    mb_rng_fill_normal(&r, act, 12, 0, 1);
    mb_rng_fill_normal(&r, w, 6, 0, 1);
    mb_qnet_ws *ws = mb_qnet_ws_new(&s, n);
    ck_assert_ptr_nonnull(ws);
    float *g = malloc(q.n_params * sizeof(float));
    double *pd = malloc(q.net_size * sizeof(double)), xd[30], wd[6];
    for (size_t i = 0; i < n; i++)
        for (int j = 0; j < 5; j++) xd[i * 5 + j] = j < 3 ? obs[i * 3 + j] : act[i * 2 + j - 3];
    ref_to_double(w, wd, 6);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < q.n_params; i++) g[i] = -7.0f;
        mb_qnet_forward_train(&q, ws, k, obs, act, n, out);
        mb_qnet_backward(&q, ws, k, n, w, g, 0, gobs, gact);
        const float *other = g + (size_t)(1 - k) * q.net_size;
        for (size_t i = 0; i < q.net_size; i++) ck_assert(other[i] == -7.0f);
        ref_to_double(q.params + (size_t)k * q.net_size, pd, q.net_size);
        for (size_t i = 0; i < n; i++) {
            double y;
            ref_mlp_row(&q.mlp, pd, xd + i * 5, &y);
            MB_ASSERT_CLOSE("Q", out[i], y, 1e-5 * (1 + fabs(y)));
        }
        float qi[6];
        mb_qnet_forward(&q, ws, k, 0, obs, act, n, qi);
        for (size_t i = 0; i < n; i++) MB_ASSERT_CLOSE("inference Q", qi[i], out[i], 1e-5);
        q_ctx c = {.q = &q, .p = pd, .x = xd, .w = wd, .n = n};
        ref_check_tensor(k ? "twin 1" : "twin 0", q_loss, &c, pd, 0, q.net_size,
                         g + (size_t)k * q.net_size, 1e-5, 1e-4, 1e-6);
        /* input gradient: columns 0..2 obs, 3..4 action */
        float dx[30];
        for (size_t i = 0; i < n; i++)
            for (int j = 0; j < 5; j++) dx[i * 5 + j] = j < 3 ? gobs[i * 3 + j] : gact[i * 2 + j - 3];
        c.wrt_x = 1;
        ref_check_tensor("d (obs, action)", q_loss, &c, xd, 0, n * 5, dx, 1e-5, 1e-4, 1e-6);
    }
    free(g);
    free(pd);
    mb_qnet_ws_free(ws);
    mb_qnet_free(&q);
}
END_TEST

START_TEST(test_polyak_and_targets) {
    mb_qnet_spec s;
    small_spec(&s);
    mb_qnet q, c;
    ck_assert_int_eq(mb_qnet_init(&q, &s, 1, NULL, 0), MB_OK);
    for (size_t i = 0; i < q.n_params; i++) q.target[i] = 0.0f;
    float keep0 = q.params[3];
    mb_qnet_polyak(&q, 0.25f);
    MB_ASSERT_CLOSE("target after one step", q.target[3], 0.25f * keep0, 1e-7);
    mb_qnet_polyak(&q, 0.25f);
    MB_ASSERT_CLOSE("target after two", q.target[3], (0.25f + 0.75f * 0.25f) * keep0, 1e-6);
    ck_assert_int_eq(mb_qnet_copy(&c, &q, NULL, 0), MB_OK);
    ck_assert_int_eq(memcmp(c.target, q.target, q.n_params * sizeof(float)), 0);
    ck_assert_int_eq(memcmp(c.params, q.params, q.n_params * sizeof(float)), 0);
    /* the target forward reads the target block */
    mb_qnet_ws *ws = mb_qnet_ws_new(&s, 4);
    float obs[3] = {1, 2, 3}, act[2] = {0.5f, -0.5f}, on, tg;
    mb_qnet_polyak(&q, 1.0f);
    mb_qnet_forward(&q, ws, 1, 0, obs, act, 1, &on);
    mb_qnet_forward(&q, ws, 1, 1, obs, act, 1, &tg);
    ck_assert(on == tg);
    mb_qnet_polyak(&c, 0.0f);
    mb_qnet_forward(&c, ws, 1, 1, obs, act, 1, &tg);
    ck_assert(on != tg);
    mb_qnet_ws_free(ws);
    mb_qnet_free(&q);
    mb_qnet_free(&c);
    small_spec(&s);
    s.act_dim = 0;
    ck_assert_int_eq(mb_qnet_spec_check(&s, NULL, 0), MB_ERANGE);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("qnet");
    TCase *tc = tcase_create("qnet");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gradcheck_twins);
    tcase_add_test(tc, test_polyak_and_targets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
