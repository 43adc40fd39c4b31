/* policy.c: the tanh-squashed Gaussian policy of policy.h: spec, init,
 * the squash with its log-probability, and the reparameterised backward.
 * Not for: the MLP itself (mlp.c) or any loss (learn/). */
#include "nn/policy.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

#define POL_LOG_2PI_HALF 0.91893853320467274f /* log(2 pi) / 2 */
#define POL_LN2 0.69314718055994531f

void mb_policy_spec_default(mb_policy_spec *s) {
    memset(s, 0, sizeof *s);
    s->n_hidden = 2;
    s->hidden[0] = s->hidden[1] = 256;
    s->activation = MB_ACT_RELU;
    s->log_std_min = -5.0f;
    s->log_std_max = 2.0f;
    for (int j = 0; j < MB_MAX_ACT_DIM; j++) {
        s->act_low[j] = -1.0f;
        s->act_high[j] = 1.0f;
    }
}

void mb_policy_mlp_spec(const mb_policy_spec *s, mb_mlp_spec *out) {
    memset(out, 0, sizeof *out);
    out->in_dim = s->obs_dim;
    out->out_dim = 2 * s->act_dim;
    out->n_hidden = s->n_hidden;
    for (int l = 0; l < s->n_hidden && l < MB_MAX_LAYERS; l++) out->hidden[l] = s->hidden[l];
    out->activation = s->activation;
}

mb_status mb_policy_spec_check(const mb_policy_spec *s, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "policy: NULL spec");
    if (s->obs_dim < 1 || s->obs_dim > MB_MAX_OBS_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "policy: obs_dim must be in [1, %d], got %d",
                       MB_MAX_OBS_DIM, s->obs_dim);
    if (s->act_dim < 1 || s->act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "policy: act_dim must be in [1, %d], got %d",
                       MB_MAX_ACT_DIM, s->act_dim);
    if (!(s->log_std_min >= -20.0f && s->log_std_max <= 5.0f && s->log_std_min < s->log_std_max))
        return mb_fail(err, err_sz, MB_ERANGE,
                       "policy: log_std bounds must satisfy -20 <= min < max <= 5");
    for (int j = 0; j < s->act_dim; j++)
        if (!(isfinite(s->act_low[j]) && isfinite(s->act_high[j]) && s->act_low[j] < s->act_high[j]))
            return mb_fail(err, err_sz, MB_EINVAL, "policy: action bound %d must be finite with low < high", j);
    if (s->n_hidden < 1 || s->n_hidden > MB_MAX_LAYERS)
        return mb_fail(err, err_sz, MB_ERANGE, "policy.hidden must have 1..%d layers, got %d",
                       MB_MAX_LAYERS, s->n_hidden);
    mb_mlp_spec m;
    mb_policy_mlp_spec(s, &m);
    return mb_mlp_spec_check(&m, "policy", err, err_sz);
}

mb_status mb_policy_init(mb_policy *p, const mb_policy_spec *s, uint64_t seed, char *err,
                         size_t err_sz) {
    if (!p) return mb_fail(err, err_sz, MB_EINVAL, "policy: NULL");
    memset(p, 0, sizeof *p);
    mb_status st = mb_policy_spec_check(s, err, err_sz);
    if (st != MB_OK) return st;
    p->spec = *s;
    mb_policy_mlp_spec(s, &p->mlp);
    p->n_params = mb_mlp_size(&p->mlp);
    p->params = malloc(p->n_params * sizeof(float));
    if (!p->params) return mb_fail(err, err_sz, MB_ENOMEM, "policy: cannot allocate %zu parameters", p->n_params);
    mb_rng rng;
    mb_rng_seed(&rng, seed);
    mb_mlp_init(&p->mlp, p->params, &rng, 0.1f);
    return MB_OK;
}

void mb_policy_free(mb_policy *p) {
    if (!p) return;
    free(p->params);
    memset(p, 0, sizeof *p);
}

mb_status mb_policy_copy(mb_policy *dst, const mb_policy *src, char *err, size_t err_sz) {
    if (!dst || !src || !src->params) return mb_fail(err, err_sz, MB_EINVAL, "policy copy: NULL");
    *dst = *src;
    dst->params = malloc(src->n_params * sizeof(float));
    if (!dst->params) {
        memset(dst, 0, sizeof *dst);
        return mb_fail(err, err_sz, MB_ENOMEM, "policy copy: cannot allocate %zu parameters", src->n_params);
    }
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    return MB_OK;
}

/* ---- workspace ----------------------------------------------------------- */

struct mb_policy_ws {
    mb_mlp_ws *mlp;
    size_t rows;
    int act_dim;
    /* (rows, 2 * act_dim): the head, then its gradient */
    float *head, *ghead;
    /* (rows, act_dim): tanh(u), std, d log_std / d raw, eps (0 without noise) */
    float *t, *sd, *dls, *eps;
    float *mem;
};

size_t mb_policy_ws_bytes(const mb_policy_spec *s, size_t max_rows) {
    if (!s || mb_policy_spec_check(s, NULL, 0) != MB_OK || max_rows == 0) return 0;
    mb_mlp_spec m;
    mb_policy_mlp_spec(s, &m);
    return sizeof(mb_policy_ws) + mb_mlp_ws_bytes(&m, max_rows) +
           8 * (size_t)s->act_dim * max_rows * sizeof(float); /* mem, as below */
}

mb_policy_ws *mb_policy_ws_new(const mb_policy_spec *s, size_t max_rows) {
    if (!s || mb_policy_spec_check(s, NULL, 0) != MB_OK || max_rows == 0) return NULL;
    mb_mlp_spec m;
    mb_policy_mlp_spec(s, &m);
    mb_policy_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->mlp = mb_mlp_ws_new(&m, max_rows);
    size_t a = (size_t)s->act_dim * max_rows;
    ws->mem = malloc(8 * a * sizeof(float));
    if (!ws->mlp || !ws->mem) {
        mb_policy_ws_free(ws);
        return NULL;
    }
    ws->rows = max_rows;
    ws->act_dim = s->act_dim;
    ws->head = ws->mem;
    ws->ghead = ws->head + 2 * a;
    ws->t = ws->ghead + 2 * a;
    ws->sd = ws->t + a;
    ws->dls = ws->sd + a;
    ws->eps = ws->dls + a;
    return ws;
}

void mb_policy_ws_free(mb_policy_ws *ws) {
    if (!ws) return;
    mb_mlp_ws_free(ws->mlp);
    free(ws->mem);
    free(ws);
}

/* ---- squash -------------------------------------------------------------- */

/* softplus(x) = log(1 + e^x), stable */
static inline float pol__softplus(float x) { return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x))); }

/* From the head (nr, 2A) and eps (nr, A) or NULL: action (nr, A), logp (nr)
 * or NULL; when keep, saves tanh(u), std, d log_std / d raw and eps in ws
 * (row offset 0). */
static void pol__squash(const mb_policy_spec *s, mb_policy_ws *ws, const float *head,
                        const float *eps, size_t nr, float *action, float *logp, int keep) {
    const int A = s->act_dim;
    const float half = 0.5f * (s->log_std_max - s->log_std_min);
    float log_scale_sum = 0;
    for (int j = 0; j < A; j++) log_scale_sum += logf(0.5f * (s->act_high[j] - s->act_low[j]));
    for (size_t r = 0; r < nr; r++) {
        const float *hr = head + r * 2 * (size_t)A;
        float lp = -log_scale_sum - (float)A * POL_LOG_2PI_HALF;
        for (int j = 0; j < A; j++) {
            float tr = tanhf(hr[A + j]);
            float ls = s->log_std_min + half * (tr + 1.0f);
            float sd = expf(ls);
            float e = eps ? eps[r * (size_t)A + j] : 0.0f;
            float u = hr[j] + sd * e;
            float t = tanhf(u);
            float center = 0.5f * (s->act_high[j] + s->act_low[j]);
            float scale = 0.5f * (s->act_high[j] - s->act_low[j]);
            action[r * (size_t)A + j] = center + scale * t;
            lp += -0.5f * e * e - ls - 2.0f * (POL_LN2 - u - pol__softplus(-2.0f * u));
            if (keep) {
                size_t i = r * (size_t)A + j;
                ws->t[i] = t;
                ws->sd[i] = sd;
                ws->dls[i] = half * (1.0f - tr * tr);
                ws->eps[i] = e;
            }
        }
        if (logp) logp[r] = lp;
    }
}

void mb_policy_act(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                   const float *eps, float *action, float *logp) {
    const int A = p->spec.act_dim, O = p->spec.obs_dim;
    assert(ws->act_dim == A);
    for (size_t r0 = 0; r0 < n; r0 += ws->rows) {
        size_t nr = n - r0 < ws->rows ? n - r0 : ws->rows;
        mb_mlp_forward(&p->mlp, p->params, ws->mlp, obs + r0 * (size_t)O, nr, ws->head);
        pol__squash(&p->spec, ws, ws->head, eps ? eps + r0 * (size_t)A : NULL, nr,
                    action + r0 * (size_t)A, logp ? logp + r0 : NULL, 0);
    }
}

void mb_policy_forward_train(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                             const float *eps, float *action, float *logp) {
    assert(n <= ws->rows && ws->act_dim == p->spec.act_dim);
    mb_mlp_forward_train(&p->mlp, p->params, ws->mlp, obs, n, ws->head);
    pol__squash(&p->spec, ws, ws->head, eps, n, action, logp, 1);
}

void mb_policy_backward(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                        const float *g_action, const float *g_logp, float *grad, int accumulate,
                        float *g_obs) {
    const mb_policy_spec *s = &p->spec;
    const int A = s->act_dim;
    assert(n <= ws->rows && ws->act_dim == A);
    /* u = mu + sd * eps; action = c + scale tanh(u);
     * d logp / d u = 2 tanh(u) (the squash correction), d logp / d log_std = -1
     * plus the path through u (sd * eps), log_std = min + half (tanh(raw) + 1) */
    for (size_t r = 0; r < n; r++) {
        float gl = g_logp ? g_logp[r] : 0.0f;
        float *gh = ws->ghead + r * 2 * (size_t)A;
        for (int j = 0; j < A; j++) {
            size_t i = r * (size_t)A + j;
            float t = ws->t[i];
            float scale = 0.5f * (s->act_high[j] - s->act_low[j]);
            float ga = g_action ? g_action[i] : 0.0f;
            float gu = ga * scale * (1.0f - t * t) + gl * 2.0f * t;
            gh[j] = gu;
            gh[A + j] = (gu * ws->sd[i] * ws->eps[i] - gl) * ws->dls[i];
        }
    }
    mb_mlp_backward(&p->mlp, p->params, ws->mlp, obs, n, ws->ghead, grad, accumulate, g_obs);
}
