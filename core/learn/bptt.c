/* bptt.c: backpropagation through the model into the policy (bptt.h):
 * the forward rollout keeping every step, the declared terms' derivatives,
 * the backward through time, clipping and the Adam step.
 * Not for: the ensemble's input derivatives (nn/ensemble_grad.c). */
#include "learn/bptt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mb_bptt_cfg_default(mb_bptt_cfg *c) {
    memset(c, 0, sizeof *c);
    c->horizon = 10;
    c->batch_size = 256;
    c->gamma = 0.99f;
    c->lr = 3e-4f;
    c->max_grad_norm = 100.0f;
    c->use_value = 0;
}

mb_status mb_bptt_cfg_check(const mb_bptt_cfg *c, char *err, size_t err_sz) {
    if (!c) return mb_fail(err, err_sz, MB_EINVAL, "bptt: NULL config");
    if (c->horizon < 1 || c->horizon > MB_BPTT_MAX_HORIZON)
        return mb_fail(err, err_sz, MB_ERANGE, "horizon must be in [1, %d]", MB_BPTT_MAX_HORIZON);
    if (c->batch_size < 1 || c->batch_size > 65536)
        return mb_fail(err, err_sz, MB_ERANGE, "batch_size must be in [1, 65536]");
    if (!(c->gamma > 0 && c->gamma <= 1)) return mb_fail(err, err_sz, MB_ERANGE, "gamma must be in (0, 1]");
    if (!(c->lr > 0 && c->lr <= 1)) return mb_fail(err, err_sz, MB_ERANGE, "lr must be in (0, 1]");
    if (!(c->max_grad_norm >= 0 && isfinite(c->max_grad_norm)))
        return mb_fail(err, err_sz, MB_ERANGE, "max_grad_norm must be >= 0");
    if (c->use_value != 0 && c->use_value != 1) return mb_fail(err, err_sz, MB_EINVAL, "use_value must be 0 or 1");
    return MB_OK;
}

struct mb_bptt_ws {
    int H, O, A, I, U, k;
    size_t n;
    mb_policy_ws **pw;      /* (H) */
    mb_mlp_ws *vw;          /* value, or NULL */
    mb_ens_ws *ews;
    mb_ens_grad_ws *gws;
    float *S;      /* (H + 1, n, O) states */
    float *X;      /* (H, n, I) model inputs */
    float *act;    /* (n, A) scratch */
    float *xk, *mk;/* (k, n, I), (k, n, U) forward copies per member */
    float *y;      /* (n, U) */
    float *gy, *gx, *gs, *ga, *gobs, *gtmp; /* adjoints */
    float *vout;   /* (n) */
    uint8_t *alive;/* (H + 1, n): alive before step t */
    float *rew;    /* (n) */
    float *grad;   /* (policy params) */
    float *mem;
};

mb_bptt_ws *mb_bptt_ws_new(const mb_bptt_cfg *cfg, const mb_policy *pi, const mb_vnet *v,
                           const mb_dynamics *dyn) {
    if (!cfg || !pi || !dyn || !dyn->ens || mb_bptt_cfg_check(cfg, NULL, 0) != MB_OK) return NULL;
    if (cfg->use_value && !v) return NULL;
    const mb_ensemble *e = dyn->ens;
    mb_bptt_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->H = cfg->horizon;
    ws->O = dyn->obs_dim;
    ws->A = dyn->act_dim;
    ws->I = ws->O + ws->A;
    ws->U = mb_ensemble_out_dim(&e->spec);
    ws->k = e->spec.members;
    const size_t n = (size_t)cfg->batch_size, H = (size_t)ws->H, O = (size_t)ws->O,
                 A = (size_t)ws->A, I = (size_t)ws->I, U = (size_t)ws->U, K = (size_t)ws->k;
    ws->n = n;
    ws->pw = calloc(H, sizeof *ws->pw);
    ws->ews = mb_ens_ws_new(&e->spec, n);
    ws->gws = mb_ens_grad_ws_new(&e->spec);
    if (v) ws->vw = mb_vnet_ws_new(&v->spec, n);
    size_t floats = (H + 1) * n * O + H * n * I + n * A + K * n * (I + U) + n * U +
                    n * (U + I + O + A + O + O) + 2 * n + (H + 1) * n + pi->n_params + 4;
    ws->mem = malloc(floats * sizeof(float));
    int ok = ws->pw && ws->ews && ws->gws && (!v || ws->vw) && ws->mem;
    for (size_t t = 0; ok && t < H; t++) ok = (ws->pw[t] = mb_policy_ws_new(&pi->spec, n)) != NULL;
    if (!ok) {
        mb_bptt_ws_free(ws);
        return NULL;
    }
    float *p = ws->mem;
    ws->S = p, p += (H + 1) * n * O;
    ws->X = p, p += H * n * I;
    ws->act = p, p += n * A;
    ws->xk = p, p += K * n * I;
    ws->mk = p, p += K * n * U;
    ws->y = p, p += n * U;
    ws->gy = p, p += n * U;
    ws->gx = p, p += n * I;
    ws->gs = p, p += n * O;
    ws->ga = p, p += n * A;
    ws->gobs = p, p += n * O;
    ws->gtmp = p, p += n * O;
    ws->vout = p, p += n;
    ws->rew = p, p += n;
    ws->grad = p, p += pi->n_params;
    ws->alive = (uint8_t *)p;
    return ws;
}

void mb_bptt_ws_free(mb_bptt_ws *ws) {
    if (!ws) return;
    if (ws->pw)
        for (int t = 0; t < ws->H; t++) mb_policy_ws_free(ws->pw[t]);
    free(ws->pw);
    mb_mlp_ws_free(ws->vw);
    mb_ens_ws_free(ws->ews);
    mb_ens_grad_ws_free(ws->gws);
    free(ws->mem);
    free(ws);
}

/* Adds w * d(declared terms)/d s' into gs (O) and d/d a into ga (A) for
 * one row (s' = s, a). */
static void bptt__terms_grad(const mb_reward_spec *rw, const float *s, const float *a, int A,
                             float w, float *gs, float *ga) {
    for (int i = 0; i < rw->n_terms; i++) {
        const mb_reward_term *t = &rw->terms[i];
        switch (t->type) {
        case MB_TERM_LINEAR: gs[t->idx[0]] += w * t->weight; break;
        case MB_TERM_QUADRATIC:
            for (int j = 0; j < t->n_idx; j++) gs[t->idx[j]] -= w * t->weight * 2.0f * (s[t->idx[j]] - t->target[j]);
            break;
        case MB_TERM_NORM: {
            float q = 0, d[MB_MAX_TERM_IDX];
            for (int j = 0; j < t->n_idx; j++) {
                d[j] = s[t->idx[j]] - (t->n_other ? s[t->other[j]] : t->target[j]);
                q += d[j] * d[j];
            }
            if (q <= 0) break; /* the norm's kink: no direction */
            float inv = 1.0f / sqrtf(q);
            for (int j = 0; j < t->n_idx; j++) {
                gs[t->idx[j]] -= w * t->weight * d[j] * inv;
                if (t->n_other) gs[t->other[j]] += w * t->weight * d[j] * inv;
            }
            break;
        }
        case MB_TERM_ACTION_L2:
            for (int j = 0; j < A; j++) ga[j] -= w * t->weight * 2.0f * a[j];
            break;
        case MB_TERM_CONSTANT: break;
        }
    }
}

mb_status mb_bptt_grad(const mb_policy *pi, const mb_vnet *v, const mb_bptt_cfg *cfg,
                       const mb_dynamics *dyn, const mb_reward_spec *rw, const float *obs0,
                       size_t n, mb_bptt_ws *ws, float *grad, mb_bptt_stats *stats, char *err,
                       size_t err_sz) {
    if (!dyn->ens) return mb_fail(err, err_sz, MB_EINVAL, "bptt: needs a learned ensemble (known dynamics have no derivatives)");
    if (n > ws->n || cfg->horizon != ws->H) return mb_fail(err, err_sz, MB_EINVAL, "bptt: workspace made for another size");
    if (cfg->use_value && (!v || !ws->vw)) return mb_fail(err, err_sz, MB_EINVAL, "bptt: use_value needs a value network");
    mb_reward_spec def;
    if (!rw) {
        mb_reward_spec_default(&def);
        rw = &def;
    }
    const mb_ensemble *e = dyn->ens;
    const int H = ws->H, O = ws->O, A = ws->A, I = ws->I, U = ws->U;
    const int k = e->n_elites > 0 ? e->n_elites : e->spec.members;
    const int *members = e->elites;
    const int learned = rw->use_learned && U > O;
    const float inv_k = 1.0f / (float)k;
    /* forward */
    if (obs0 != ws->S) memcpy(ws->S, obs0, n * (size_t)O * sizeof(float));
    memset(ws->alive, 1, n);
    double J = 0;
    float disc = 1.0f;
    for (int t = 0; t < H; t++) {
        const float *St = ws->S + (size_t)t * n * O;
        float *Sn = ws->S + (size_t)(t + 1) * n * O, *Xt = ws->X + (size_t)t * n * I;
        mb_policy_forward_train(pi, ws->pw[t], St, n, NULL, ws->act, NULL);
        for (size_t r = 0; r < n; r++) {
            memcpy(Xt + r * I, St + r * O, (size_t)O * sizeof(float));
            memcpy(Xt + r * I + O, ws->act + r * A, (size_t)A * sizeof(float));
        }
        for (int j = 0; j < k; j++) memcpy(ws->xk + (size_t)j * n * I, Xt, n * (size_t)I * sizeof(float));
        mb_ensemble_forward(e, ws->ews, NULL, members, k, ws->xk, n, ws->mk, NULL);
        for (size_t i = 0; i < n * (size_t)U; i++) {
            float s = 0;
            for (int j = 0; j < k; j++) s += ws->mk[(size_t)j * n * U + i];
            ws->y[i] = s * inv_k;
        }
        for (size_t r = 0; r < n; r++)
            for (int o = 0; o < O; o++) Sn[r * O + o] = St[r * O + o] + ws->y[r * U + o];
        const uint8_t *al = ws->alive + (size_t)t * n;
        uint8_t *an = ws->alive + (size_t)(t + 1) * n;
        memcpy(an, al, n);
        for (size_t r = 0; r < n; r++) ws->gobs[r] = learned ? ws->y[r * U + O] : 0.0f;
        mb_reward_step_strided(rw, O, A, n, Sn, (size_t)O, ws->act, (size_t)A, ws->gobs, 1, an, ws->rew);
        double sr = 0;
        for (size_t r = 0; r < n; r++) sr += ws->rew[r];
        J += disc * sr;
        disc *= cfg->gamma;
    }
    const float *SH = ws->S + (size_t)H * n * O;
    memset(ws->gs, 0, n * (size_t)O * sizeof(float));
    const float inv_n = 1.0f / (float)n;
    if (cfg->use_value) {
        mb_mlp_forward_train(&v->mlp, v->params, ws->vw, SH, n, ws->vout);
        double sv = 0;
        for (size_t r = 0; r < n; r++) {
            /* the value counts for rows still alive after the last step */
            float w = ws->alive[(size_t)H * n + r] ? disc * inv_n : 0.0f;
            sv += ws->alive[(size_t)H * n + r] ? ws->vout[r] : 0.0f;
            ws->rew[r] = w;
        }
        J += disc * sv;
        mb_mlp_backward(&v->mlp, v->params, ws->vw, SH, n, ws->rew, NULL, 0, ws->gs);
    }
    J *= inv_n;
    if (!isfinite(J)) return mb_fail(err, err_sz, MB_ERANGE, "bptt: the model return is not finite");
    /* backward through time: gs = dJ/ds_{t+1} on entry to step t */
    for (int t = H - 1; t >= 0; t--) {
        disc /= cfg->gamma;
        const float *Sn = ws->S + (size_t)(t + 1) * n * O, *Xt = ws->X + (size_t)t * n * I;
        const uint8_t *al = ws->alive + (size_t)t * n;
        memset(ws->ga, 0, n * (size_t)A * sizeof(float));
        for (size_t r = 0; r < n; r++) {
            float w = al[r] ? disc * inv_n : 0.0f;
            if (w != 0) bptt__terms_grad(rw, Sn + r * O, Xt + r * I + O, A, w, ws->gs + r * O, ws->ga + r * A);
            for (int o = 0; o < O; o++) ws->gy[r * U + o] = ws->gs[r * O + o];
            if (U > O) ws->gy[r * U + O] = learned ? w : 0.0f;
        }
        mb_ensemble_vjp(e, ws->gws, members, k, Xt, ws->gy, n, NULL, ws->gx);
        for (size_t r = 0; r < n; r++) {
            for (int o = 0; o < O; o++) ws->gs[r * O + o] += ws->gx[r * I + o]; /* s + delta */
            for (int j = 0; j < A; j++) ws->ga[r * A + j] += ws->gx[r * I + O + j];
        }
        /* ascent on J = descent on -J: the policy's loss gradient is -ga */
        for (size_t i = 0; i < n * (size_t)A; i++) ws->ga[i] = -ws->ga[i];
        mb_policy_backward(pi, ws->pw[t], ws->S + (size_t)t * n * O, n, ws->ga, NULL, grad,
                           t != H - 1, ws->gtmp);
        for (size_t i = 0; i < n * (size_t)O; i++) ws->gs[i] -= ws->gtmp[i];
    }
    /* grad holds d(-J)/dtheta: report and keep it as the descent direction */
    double g2 = 0, s0 = 0;
    for (size_t i = 0; i < pi->n_params; i++) g2 += (double)grad[i] * grad[i];
    for (size_t r = 0; r < n; r++) {
        double q = 0;
        for (int o = 0; o < O; o++) q += (double)ws->gs[r * O + o] * ws->gs[r * O + o];
        s0 += sqrt(q) * n; /* gs is d(mean J)/ds_0: per row that is n times smaller */
    }
    if (stats) {
        stats->ret = (float)J;
        stats->grad_norm = (float)sqrt(g2);
        stats->obs_grad_norm = (float)(s0 / (double)n);
    }
    if (!isfinite(g2)) return mb_fail(err, err_sz, MB_ERANGE, "bptt: the gradient is not finite");
    return MB_OK;
}

mb_status mb_bptt_step(mb_policy *pi, mb_adam *opt, const mb_vnet *v, const mb_bptt_cfg *cfg,
                       const mb_buffer *buf, const mb_dynamics *dyn, const mb_reward_spec *rw,
                       mb_bptt_ws *ws, mb_rng *rng, mb_bptt_stats *stats, char *err, size_t err_sz) {
    if (!buf || buf->size == 0) return mb_fail(err, err_sz, MB_ESTATE, "bptt: the replay buffer is empty");
    const size_t n = ws->n, O = (size_t)ws->O;
    for (size_t r = 0; r < n; r++) {
        size_t s = mb_buffer_slot(buf, (size_t)mb_rng_below(rng, buf->size));
        memcpy(ws->S + r * O, buf->obs + s * O, O * sizeof(float));
    }
    float *grad = ws->grad;
    mb_bptt_stats st;
    mb_status rc = mb_bptt_grad(pi, v, cfg, dyn, rw, ws->S, n, ws, grad, &st, err, err_sz);
    if (rc == MB_OK) {
        opt->lr = cfg->lr;
        if (cfg->max_grad_norm > 0 && st.grad_norm > cfg->max_grad_norm) {
            float sc = cfg->max_grad_norm / st.grad_norm;
            for (size_t i = 0; i < pi->n_params; i++) grad[i] *= sc;
        }
        mb_adam_step(opt, pi->params, grad);
        if (stats) *stats = st;
    }
    return rc;
}
