/* vnet.c: the state-value network (vnet.h).
 * Not for: its regression target (learn/sac.c). */
#include "nn/vnet.h"

#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

void mb_vnet_mlp_spec(const mb_vnet_spec *s, mb_mlp_spec *out) {
    memset(out, 0, sizeof *out);
    out->in_dim = s->obs_dim;
    out->out_dim = 1;
    out->n_hidden = s->n_hidden;
    for (int l = 0; l < s->n_hidden && l < MB_MAX_LAYERS; l++) out->hidden[l] = s->hidden[l];
    out->activation = s->activation;
}

mb_status mb_vnet_spec_check(const mb_vnet_spec *s, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "value: NULL spec");
    if (s->obs_dim < 1 || s->obs_dim > MB_MAX_OBS_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "value: obs_dim must be in [1, %d]", MB_MAX_OBS_DIM);
    if (s->n_hidden < 1 || s->n_hidden > MB_MAX_LAYERS)
        return mb_fail(err, err_sz, MB_ERANGE, "value.hidden must have 1..%d layers, got %d",
                       MB_MAX_LAYERS, s->n_hidden);
    mb_mlp_spec m;
    mb_vnet_mlp_spec(s, &m);
    return mb_mlp_spec_check(&m, "value", err, err_sz);
}

mb_status mb_vnet_init(mb_vnet *v, const mb_vnet_spec *s, uint64_t seed, char *err, size_t err_sz) {
    if (!v) return mb_fail(err, err_sz, MB_EINVAL, "value: NULL");
    memset(v, 0, sizeof *v);
    mb_status st = mb_vnet_spec_check(s, err, err_sz);
    if (st != MB_OK) return st;
    v->spec = *s;
    mb_vnet_mlp_spec(s, &v->mlp);
    v->n_params = mb_mlp_size(&v->mlp);
    v->params = malloc(v->n_params * sizeof(float));
    if (!v->params) {
        memset(v, 0, sizeof *v);
        return mb_fail(err, err_sz, MB_ENOMEM, "value: cannot allocate %zu parameters", v->n_params);
    }
    mb_rng r;
    mb_rng_seed(&r, seed);
    mb_mlp_init(&v->mlp, v->params, &r, 1.0f);
    return MB_OK;
}

void mb_vnet_free(mb_vnet *v) {
    if (!v) return;
    free(v->params);
    memset(v, 0, sizeof *v);
}

mb_status mb_vnet_copy(mb_vnet *dst, const mb_vnet *src, char *err, size_t err_sz) {
    if (!dst || !src || !src->params) return mb_fail(err, err_sz, MB_EINVAL, "value copy: NULL");
    *dst = *src;
    dst->params = malloc(src->n_params * sizeof(float));
    if (!dst->params) {
        memset(dst, 0, sizeof *dst);
        return mb_fail(err, err_sz, MB_ENOMEM, "value copy: cannot allocate");
    }
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    return MB_OK;
}

void mb_vnet_forward(const mb_vnet *v, mb_mlp_ws *ws, const float *obs, size_t n, float *out) {
    mb_mlp_forward(&v->mlp, v->params, ws, obs, n, out);
}

mb_mlp_ws *mb_vnet_ws_new(const mb_vnet_spec *s, size_t max_rows) {
    mb_mlp_spec m;
    if (!s || mb_vnet_spec_check(s, NULL, 0) != MB_OK) return NULL;
    mb_vnet_mlp_spec(s, &m);
    return mb_mlp_ws_new(&m, max_rows);
}
