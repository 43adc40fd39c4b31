/* qnet.c: twin Q-functions with Polyak target copies (qnet.h).
 * Not for: losses (learn/sac.c). */
#include "nn/qnet.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

void mb_qnet_mlp_spec(const mb_qnet_spec *s, mb_mlp_spec *out) {
    memset(out, 0, sizeof *out);
    out->in_dim = s->obs_dim + s->act_dim;
    out->out_dim = 1;
    out->n_hidden = s->n_hidden;
    for (int l = 0; l < s->n_hidden && l < MB_MAX_LAYERS; l++) out->hidden[l] = s->hidden[l];
    out->activation = s->activation;
}

mb_status mb_qnet_spec_check(const mb_qnet_spec *s, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "q: NULL spec");
    if (s->obs_dim < 1 || s->obs_dim > MB_MAX_OBS_DIM || s->act_dim < 1 || s->act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "q: obs_dim in [1, %d] and act_dim in [1, %d]",
                       MB_MAX_OBS_DIM, MB_MAX_ACT_DIM);
    if (s->n_hidden < 1 || s->n_hidden > MB_MAX_LAYERS)
        return mb_fail(err, err_sz, MB_ERANGE, "q.hidden must have 1..%d layers, got %d",
                       MB_MAX_LAYERS, s->n_hidden);
    mb_mlp_spec m;
    mb_qnet_mlp_spec(s, &m);
    return mb_mlp_spec_check(&m, "q", err, err_sz);
}

mb_status mb_qnet_init(mb_qnet *q, const mb_qnet_spec *s, uint64_t seed, char *err, size_t err_sz) {
    if (!q) return mb_fail(err, err_sz, MB_EINVAL, "q: NULL");
    memset(q, 0, sizeof *q);
    mb_status st = mb_qnet_spec_check(s, err, err_sz);
    if (st != MB_OK) return st;
    q->spec = *s;
    mb_qnet_mlp_spec(s, &q->mlp);
    q->net_size = mb_mlp_size(&q->mlp);
    q->n_params = 2 * q->net_size;
    q->params = malloc(2 * q->n_params * sizeof(float));
    if (!q->params) {
        memset(q, 0, sizeof *q);
        return mb_fail(err, err_sz, MB_ENOMEM, "q: cannot allocate %zu parameters", 2 * q->n_params);
    }
    q->target = q->params + q->n_params;
    mb_rng root, r;
    mb_rng_seed(&root, seed);
    for (int k = 0; k < 2; k++) {
        mb_rng_split(&root, (uint64_t)k, &r);
        mb_mlp_init(&q->mlp, q->params + (size_t)k * q->net_size, &r, 1.0f);
    }
    memcpy(q->target, q->params, q->n_params * sizeof(float));
    return MB_OK;
}

void mb_qnet_free(mb_qnet *q) {
    if (!q) return;
    free(q->params); /* target lives in the same allocation */
    memset(q, 0, sizeof *q);
}

mb_status mb_qnet_copy(mb_qnet *dst, const mb_qnet *src, char *err, size_t err_sz) {
    if (!dst || !src || !src->params) return mb_fail(err, err_sz, MB_EINVAL, "q copy: NULL");
    *dst = *src;
    dst->params = malloc(2 * src->n_params * sizeof(float));
    if (!dst->params) {
        memset(dst, 0, sizeof *dst);
        return mb_fail(err, err_sz, MB_ENOMEM, "q copy: cannot allocate");
    }
    dst->target = dst->params + src->n_params;
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    memcpy(dst->target, src->target, src->n_params * sizeof(float));
    return MB_OK;
}

void mb_qnet_polyak(mb_qnet *q, float tau) {
    const float keep = 1.0f - tau;
    float *restrict t = q->target;
    const float *restrict p = q->params;
    for (size_t i = 0; i < q->n_params; i++) t[i] = keep * t[i] + tau * p[i];
}

struct mb_qnet_ws {
    mb_mlp_ws *mlp[2];
    size_t rows;
    int in;
    float *x[2];   /* (rows, obs + act) the inputs of each twin's training forward */
    float *dx;     /* (rows, obs + act) */
    float *mem;
};

mb_qnet_ws *mb_qnet_ws_new(const mb_qnet_spec *s, size_t max_rows) {
    if (!s || mb_qnet_spec_check(s, NULL, 0) != MB_OK || max_rows == 0) return NULL;
    mb_mlp_spec m;
    mb_qnet_mlp_spec(s, &m);
    mb_qnet_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->rows = max_rows;
    ws->in = m.in_dim;
    ws->mlp[0] = mb_mlp_ws_new(&m, max_rows);
    ws->mlp[1] = mb_mlp_ws_new(&m, max_rows);
    ws->mem = malloc(3 * max_rows * (size_t)m.in_dim * sizeof(float));
    if (!ws->mlp[0] || !ws->mlp[1] || !ws->mem) {
        mb_qnet_ws_free(ws);
        return NULL;
    }
    ws->x[0] = ws->mem;
    ws->x[1] = ws->x[0] + max_rows * (size_t)m.in_dim;
    ws->dx = ws->x[1] + max_rows * (size_t)m.in_dim;
    return ws;
}

void mb_qnet_ws_free(mb_qnet_ws *ws) {
    if (!ws) return;
    mb_mlp_ws_free(ws->mlp[0]);
    mb_mlp_ws_free(ws->mlp[1]);
    free(ws->mem);
    free(ws);
}

/* x (nr, O + A) = [obs | act] */
static void q__concat(float *x, const float *obs, const float *act, size_t nr, int O, int A) {
    for (size_t r = 0; r < nr; r++) {
        memcpy(x + r * (size_t)(O + A), obs + r * (size_t)O, (size_t)O * sizeof(float));
        memcpy(x + r * (size_t)(O + A) + O, act + r * (size_t)A, (size_t)A * sizeof(float));
    }
}

void mb_qnet_forward(const mb_qnet *q, mb_qnet_ws *ws, int k, int target, const float *obs,
                     const float *act, size_t n, float *out) {
    assert(k == 0 || k == 1);
    const int O = q->spec.obs_dim, A = q->spec.act_dim;
    const float *p = (target ? q->target : q->params) + (size_t)k * q->net_size;
    for (size_t r0 = 0; r0 < n; r0 += ws->rows) {
        size_t nr = n - r0 < ws->rows ? n - r0 : ws->rows;
        q__concat(ws->dx, obs + r0 * (size_t)O, act + r0 * (size_t)A, nr, O, A);
        mb_mlp_forward(&q->mlp, p, ws->mlp[k], ws->dx, nr, out + r0);
    }
}

void mb_qnet_forward_train(const mb_qnet *q, mb_qnet_ws *ws, int k, const float *obs,
                           const float *act, size_t n, float *out) {
    assert((k == 0 || k == 1) && n <= ws->rows);
    q__concat(ws->x[k], obs, act, n, q->spec.obs_dim, q->spec.act_dim);
    mb_mlp_forward_train(&q->mlp, q->params + (size_t)k * q->net_size, ws->mlp[k], ws->x[k], n, out);
}

void mb_qnet_backward(const mb_qnet *q, mb_qnet_ws *ws, int k, size_t n, const float *g_q,
                      float *grad, int accumulate, float *g_obs, float *g_act) {
    assert((k == 0 || k == 1) && n <= ws->rows);
    const int O = q->spec.obs_dim, A = q->spec.act_dim;
    int want = g_obs || g_act;
    mb_mlp_backward(&q->mlp, q->params + (size_t)k * q->net_size, ws->mlp[k], ws->x[k], n, g_q,
                    grad ? grad + (size_t)k * q->net_size : NULL, accumulate, want ? ws->dx : NULL);
    if (!want) return;
    for (size_t r = 0; r < n; r++) {
        const float *d = ws->dx + r * (size_t)(O + A);
        if (g_obs) memcpy(g_obs + r * (size_t)O, d, (size_t)O * sizeof(float));
        if (g_act) memcpy(g_act + r * (size_t)A, d + O, (size_t)A * sizeof(float));
    }
}
