/* test_policy.c: the tanh-squashed Gaussian policy (core/nn/policy.c).
 *
 * Reference: the head of the double MLP of ref_mlp.h, then the squash and
 * log-probability written naively from policy.h (log(1 - tanh(u)^2) taken
 * directly, not in the stable form the code uses). Checked:
 *   - actions and log pi against the reference (rel 1e-5 / abs 2e-5);
 *   - the backward (reparameterised: eps fixed) against central differences
 *     of L = sum w . action + sum c * log pi, step 1e-5, per entry
 *     |g - fd| <= 2e-4 * max(|fd|, rms) + 1e-5 (the squash's float tanh and
 *     log1p dominate), for every tensor and for d L / d obs;
 *   - the density integrates to 1 over the action interval (1-D, bounds
 *     [-2, 3], trapezoid on 20,000 points: |integral - 1| <= 2e-3), which
 *     checks the squash correction and the scale term independently. */
#include "ref_mlp.h"

#include "base/rng.h"
#include "nn/policy.h"

static void small_spec(mb_policy_spec *s, int obs, int act, mb_activation a) {
    mb_policy_spec_default(s);
    s->obs_dim = obs;
    s->act_dim = act;
    s->hidden[0] = 8;
    s->hidden[1] = 6;
    s->activation = a;
    for (int j = 0; j < act; j++) {
        s->act_low[j] = -1.0f - 0.5f * (float)j;
        s->act_high[j] = 2.0f + (float)j;
    }
}

/* Reference: one row; returns log pi, fills action (act_dim). */
static double ref_policy_row(const mb_policy *p, const double *params, const double *obs,
                             const double *eps, double *action) {
    const mb_policy_spec *s = &p->spec;
    double head[2 * MB_MAX_ACT_DIM];
    ref_mlp_row(&p->mlp, params, obs, head);
    double lp = 0;
    for (int j = 0; j < s->act_dim; j++) {
        double ls = s->log_std_min + 0.5 * (s->log_std_max - s->log_std_min) * (tanh(head[s->act_dim + j]) + 1);
        double e = eps ? eps[j] : 0;
        double u = head[j] + exp(ls) * e;
        double c = 0.5 * ((double)s->act_high[j] + s->act_low[j]);
        double sc = 0.5 * ((double)s->act_high[j] - s->act_low[j]);
        action[j] = c + sc * tanh(u);
        lp += -0.5 * e * e - ls - 0.5 * log(2 * M_PI) - log(sc * (1 - tanh(u) * tanh(u)));
    }
    return lp;
}

typedef struct {
    const mb_policy *p;
    const double *params, *obs, *eps, *w, *c;
    size_t n;
    int wrt_obs;
} pol_ctx;

static double pol_loss(void *vctx, const double *v) {
    pol_ctx *x = vctx;
    const int O = x->p->spec.obs_dim, A = x->p->spec.act_dim;
    const double *params = x->wrt_obs ? x->params : v, *obs = x->wrt_obs ? v : x->obs;
    double a[MB_MAX_ACT_DIM], L = 0;
    for (size_t r = 0; r < x->n; r++) {
        double lp = ref_policy_row(x->p, params, obs + r * O, x->eps ? x->eps + r * A : NULL, a);
        for (int j = 0; j < A; j++) L += x->w[r * A + j] * a[j];
        L += x->c[r] * lp;
    }
    return L;
}

static void gradcheck(mb_activation act, int with_noise, uint64_t seed) {
    mb_policy_spec s;
    small_spec(&s, 4, 3, act);
    mb_policy p;
    char err[128];
    ck_assert_int_eq(mb_policy_init(&p, &s, seed, err, sizeof err), MB_OK);
    mb_rng r;
    mb_rng_seed(&r, seed + 100);
    /* a larger head so means and log-stds spread over their ranges */
    size_t wo = mb_mlp_W_offset(&p.mlp, p.mlp.n_hidden), bo = mb_mlp_b_offset(&p.mlp, p.mlp.n_hidden);
    for (size_t i = wo; i < bo; i++) p.params[i] *= 15.0f;
    mb_rng_fill_normal(&r, p.params + bo, 6, 0, 0.5f);
    const size_t n = 5;
    const int O = 4, A = 3;
    float obs[5 * 4], eps[5 * 3], w[5 * 3], c[5], act_out[5 * 3], logp[5], gobs[5 * 4];
    mb_rng_fill_normal(&r, obs, n * O, 0, 1);
    mb_rng_fill_normal(&r, eps, n * A, 0, 1);
    mb_rng_fill_normal(&r, w, n * A, 0, 1);
    mb_rng_fill_normal(&r, c, n, 0, 1);
    mb_policy_ws *ws = mb_policy_ws_new(&s, n);
    ck_assert_ptr_nonnull(ws);
    const float *ep = with_noise ? eps : NULL;
    mb_policy_forward_train(&p, ws, obs, n, ep, act_out, logp);
    float *g = malloc(p.n_params * sizeof(float));
    mb_policy_backward(&p, ws, obs, n, w, c, g, 0, gobs);
    double *pd = malloc(p.n_params * sizeof(double)), od[20], ed[15], wd[15], cd[5];
    ref_to_double(p.params, pd, p.n_params);
    ref_to_double(obs, od, 20);
    ref_to_double(eps, ed, 15);
    ref_to_double(w, wd, 15);
    ref_to_double(c, cd, 5);
    /* forward against the reference */
    for (size_t i = 0; i < n; i++) {
        double a[3];
        double lp = ref_policy_row(&p, pd, od + i * O, with_noise ? ed + i * A : NULL, a);
        MB_ASSERT_CLOSE("log pi", logp[i], lp, 2e-5 * (1 + fabs(lp)));
        for (int j = 0; j < A; j++) MB_ASSERT_CLOSE("action", act_out[i * A + j], a[j], 2e-5 * (1 + fabs(a[j])));
    }
    pol_ctx x = {.p = &p, .params = pd, .obs = od, .eps = with_noise ? ed : NULL, .w = wd, .c = cd, .n = n};
    char lab[32];
    for (int l = 0; l <= p.mlp.n_hidden; l++) {
        size_t a0 = mb_mlp_W_offset(&p.mlp, l), b0 = mb_mlp_b_offset(&p.mlp, l);
        size_t next = l < p.mlp.n_hidden ? mb_mlp_W_offset(&p.mlp, l + 1) : p.n_params;
        snprintf(lab, sizeof lab, "%s W_%d", with_noise ? "noisy" : "det", l);
        ref_check_tensor(lab, pol_loss, &x, pd, a0, b0 - a0, g + a0, 1e-5, 2e-4, 1e-5);
        snprintf(lab, sizeof lab, "%s b_%d", with_noise ? "noisy" : "det", l);
        ref_check_tensor(lab, pol_loss, &x, pd, b0, next - b0, g + b0, 1e-5, 2e-4, 1e-5);
    }
    x.wrt_obs = 1;
    ref_check_tensor("d obs", pol_loss, &x, od, 0, n * O, gobs, 1e-5, 2e-4, 1e-5);
    /* inference gives the training forward's numbers */
    float act2[15], logp2[5];
    mb_policy_act(&p, ws, obs, n, ep, act2, logp2);
    for (size_t i = 0; i < n * A; i++) MB_ASSERT_CLOSE("act == forward_train", act2[i], act_out[i], 1e-5);
    for (size_t i = 0; i < n; i++) MB_ASSERT_CLOSE("act logp", logp2[i], logp[i], 1e-4);
    free(g);
    free(pd);
    mb_policy_ws_free(ws);
    mb_policy_free(&p);
}

START_TEST(test_gradcheck_noise_silu) { gradcheck(MB_ACT_SILU, 1, 1); }
END_TEST
START_TEST(test_gradcheck_noise_relu) { gradcheck(MB_ACT_RELU, 1, 2); }
END_TEST
START_TEST(test_gradcheck_deterministic_tanh) { gradcheck(MB_ACT_TANH, 0, 3); }
END_TEST

/* exp(log pi) integrates to 1 over the bounds: a = c + s tanh(u) with
 * u = mu + std eps, so eps(a) = (atanh((a - c) / s) - mu) / std. */
START_TEST(test_density_integrates_to_one) {
    mb_policy_spec s;
    small_spec(&s, 2, 1, MB_ACT_SILU);
    s.act_low[0] = -2.0f;
    s.act_high[0] = 3.0f;
    mb_policy p;
    ck_assert_int_eq(mb_policy_init(&p, &s, 9, NULL, 0), MB_OK);
    /* head bias: mean 0.4, a broad log-std */
    size_t bo = mb_mlp_b_offset(&p.mlp, p.mlp.n_hidden);
    p.params[bo] = 0.4f;
    p.params[bo + 1] = 0.3f;
    float obs[2] = {0.1f, -0.2f};
    mb_policy_ws *ws = mb_policy_ws_new(&s, 1);
    double pd[4096], od[2] = {0.1, -0.2}, head[2];
    ck_assert_uint_lt(p.n_params, 4096);
    ref_to_double(p.params, pd, p.n_params);
    ref_mlp_row(&p.mlp, pd, od, head);
    double ls = s.log_std_min + 0.5 * (s.log_std_max - s.log_std_min) * (tanh(head[1]) + 1);
    double mu = head[0], sd = exp(ls), c = 0.5, sc = 2.5;
    const int K = 20000;
    double integral = 0, prev = 0;
    for (int k = 0; k <= K; k++) {
        double a = -2.0 + 5.0 * (k + 0.5) / (K + 1);
        float eps = (float)((atanh((a - c) / sc) - mu) / sd), act, lp;
        mb_policy_act(&p, ws, obs, 1, &eps, &act, &lp);
        MB_ASSERT_CLOSE("action from eps", act, a, 1e-4 * (1 + fabs(a)));
        double dens = exp((double)lp);
        if (k > 0) integral += 0.5 * (dens + prev) * (5.0 / (K + 1));
        prev = dens;
    }
    MB_ASSERT_CLOSE("integral of pi over the bounds", integral, 1.0, 2e-3);
    mb_policy_ws_free(ws);
    mb_policy_free(&p);
}
END_TEST

START_TEST(test_spec_init_copy) {
    mb_policy_spec s;
    small_spec(&s, 3, 2, MB_ACT_RELU);
    char err[128];
    ck_assert_int_eq(mb_policy_spec_check(&s, err, sizeof err), MB_OK);
    mb_policy_spec b = s;
    b.act_low[1] = b.act_high[1];
    ck_assert_int_eq(mb_policy_spec_check(&b, err, sizeof err), MB_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "bound 1"));
    b = s;
    b.log_std_min = 3;
    ck_assert_int_eq(mb_policy_spec_check(&b, err, sizeof err), MB_ERANGE);
    b = s;
    b.obs_dim = 0;
    ck_assert_int_eq(mb_policy_spec_check(&b, err, sizeof err), MB_ERANGE);
    ck_assert_ptr_null(mb_policy_ws_new(&b, 4));
    mb_policy p, q, p2;
    ck_assert_int_eq(mb_policy_init(&p, &s, 4, err, sizeof err), MB_OK);
    ck_assert_int_eq(mb_policy_init(&p2, &s, 4, err, sizeof err), MB_OK);
    ck_assert_int_eq(memcmp(p.params, p2.params, p.n_params * sizeof(float)), 0);
    ck_assert_int_eq(mb_policy_copy(&q, &p, err, sizeof err), MB_OK);
    ck_assert_ptr_ne(q.params, p.params);
    ck_assert_int_eq(memcmp(q.params, p.params, p.n_params * sizeof(float)), 0);
    /* the first deterministic actions sit near the middle of the bounds */
    mb_policy_ws *ws = mb_policy_ws_new(&s, 2);
    float obs[3] = {0.5f, -1, 2}, a[2];
    mb_policy_act(&p, ws, obs, 1, NULL, a, NULL);
    for (int j = 0; j < 2; j++) {
        float mid = 0.5f * (s.act_low[j] + s.act_high[j]), half = 0.5f * (s.act_high[j] - s.act_low[j]);
        ck_assert(fabsf(a[j] - mid) < 0.5f * half);
    }
    mb_policy_ws_free(ws);
    mb_policy_free(&p);
    mb_policy_free(&p2);
    mb_policy_free(&q);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_gradcheck_noise_silu);
    tcase_add_test(tc, test_gradcheck_noise_relu);
    tcase_add_test(tc, test_gradcheck_deterministic_tanh);
    tcase_add_test(tc, test_density_integrates_to_one);
    tcase_add_test(tc, test_spec_init_copy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
