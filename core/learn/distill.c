/* distill.c: DAgger-style planner distillation (distill.h).
 * Not for: planning itself (plan/planner.c). */
#include "learn/distill.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mb_distill_cfg_default(mb_distill_cfg *c) {
    memset(c, 0, sizeof *c);
    c->states = 256;
    c->horizon = 10;
    c->updates = 200;
    c->batch_size = 128;
    c->lr = 1e-3f;
    c->max_dataset = 50000;
}

mb_status mb_distill_cfg_check(const mb_distill_cfg *c, char *err, size_t err_sz) {
    if (!c) return mb_fail(err, err_sz, MB_EINVAL, "distill: NULL config");
    if (c->states < 1 || c->states > 100000)
        return mb_fail(err, err_sz, MB_ERANGE, "states must be in [1, 100000]");
    if (c->horizon < 1 || c->horizon > 1000)
        return mb_fail(err, err_sz, MB_ERANGE, "horizon must be in [1, 1000]");
    if (c->updates < 0 || c->updates > 100000)
        return mb_fail(err, err_sz, MB_ERANGE, "updates must be in [0, 100000]");
    if (c->batch_size < 1 || c->batch_size > 65536)
        return mb_fail(err, err_sz, MB_ERANGE, "batch_size must be in [1, 65536]");
    if (!(c->lr > 0 && c->lr <= 1)) return mb_fail(err, err_sz, MB_ERANGE, "lr must be in (0, 1]");
    if (c->max_dataset < c->states || c->max_dataset > 10000000)
        return mb_fail(err, err_sz, MB_ERANGE, "max_dataset must be in [states, 10000000]");
    return MB_OK;
}

mb_status mb_distill_init(mb_distill *d, const mb_distill_cfg *cfg, int obs_dim, int act_dim,
                          uint64_t seed, char *err, size_t err_sz) {
    if (!d) return mb_fail(err, err_sz, MB_EINVAL, "distill: NULL");
    memset(d, 0, sizeof *d);
    mb_status st = mb_distill_cfg_check(cfg, err, err_sz);
    if (st != MB_OK) return st;
    d->obs_dim = obs_dim;
    d->act_dim = act_dim;
    d->cap = (size_t)cfg->max_dataset;
    d->obs = malloc(d->cap * (size_t)obs_dim * sizeof(float));
    d->act = malloc(d->cap * (size_t)act_dim * sizeof(float));
    if (!d->obs || !d->act) {
        mb_distill_free(d);
        return mb_fail(err, err_sz, MB_ENOMEM, "distill: cannot allocate %zu pairs", (size_t)cfg->max_dataset);
    }
    mb_rng_seed(&d->rng, seed);
    return MB_OK;
}

void mb_distill_free(mb_distill *d) {
    if (!d) return;
    free(d->obs);
    free(d->act);
    memset(d, 0, sizeof *d);
}

struct mb_distill_ws {
    size_t n, batch;
    int obs_dim, act_dim;
    mb_policy_ws *pw;   /* batch rows */
    mb_policy_ws *pw_roll; /* inference over n rows */
    mb_rollout_ws *roll;
    float *S, *next, *act, *rew, *keep, *label, *bobs, *blab, *ga, *grad;
    uint8_t *alive;
    int *stop_at;
    size_t *slots;
};

mb_distill_ws *mb_distill_ws_new(const mb_distill_cfg *cfg, const mb_policy *pi,
                                 const mb_dynamics *dyn) {
    if (!cfg || !pi || !dyn || mb_distill_cfg_check(cfg, NULL, 0) != MB_OK) return NULL;
    mb_distill_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    const size_t n = (size_t)cfg->states, B = (size_t)cfg->batch_size;
    const size_t O = (size_t)pi->spec.obs_dim, A = (size_t)pi->spec.act_dim;
    ws->n = n;
    ws->batch = B;
    ws->obs_dim = (int)O;
    ws->act_dim = (int)A;
    ws->pw = mb_policy_ws_new(&pi->spec, B);
    ws->pw_roll = mb_policy_ws_new(&pi->spec, n < 256 ? n : 256);
    ws->roll = mb_rollout_ws_new(dyn, n);
    size_t floats = n * (3 * O + 2 * A + 1) + B * (O + 2 * A) + pi->n_params;
    ws->S = malloc(floats * sizeof(float));
    ws->alive = malloc(n);
    ws->stop_at = malloc(n * sizeof(int));
    ws->slots = malloc(n * sizeof(size_t));
    if (!ws->pw || !ws->pw_roll || !ws->roll || !ws->S || !ws->alive || !ws->stop_at || !ws->slots) {
        mb_distill_ws_free(ws);
        return NULL;
    }
    ws->next = ws->S + n * O;
    ws->keep = ws->next + n * O;
    ws->act = ws->keep + n * O;
    ws->label = ws->act + n * A;
    ws->rew = ws->label + n * A;
    ws->bobs = ws->rew + n;
    ws->blab = ws->bobs + B * O;
    ws->ga = ws->blab + B * A;
    ws->grad = ws->ga + B * A;
    return ws;
}

void mb_distill_ws_free(mb_distill_ws *ws) {
    if (!ws) return;
    mb_policy_ws_free(ws->pw);
    mb_policy_ws_free(ws->pw_roll);
    mb_rollout_ws_free(ws->roll);
    free(ws->S);
    free(ws->alive);
    free(ws->stop_at);
    free(ws->slots);
    free(ws);
}

float mb_distill_update(mb_policy *pi, mb_adam *opt, mb_distill_ws *ws, const float *obs,
                        const float *label, size_t n) {
    const mb_policy_spec *s = &pi->spec;
    const int A = s->act_dim;
    float *a = ws->ga; /* the actions, then their gradient in place */
    mb_policy_forward_train(pi, ws->pw, obs, n, NULL, a, NULL);
    double loss = 0;
    const float inv_n = 1.0f / (float)n;
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < A; j++) {
            float sc = 0.5f * (s->act_high[j] - s->act_low[j]);
            float d = (a[r * A + j] - label[r * A + j]) / sc;
            loss += 0.5 * (double)d * d;
            a[r * A + j] = d / sc * inv_n;
        }
    mb_policy_backward(pi, ws->pw, obs, n, a, NULL, ws->grad, 0, NULL);
    mb_adam_step(opt, pi->params, ws->grad);
    return (float)(loss / (double)n);
}

mb_status mb_distill_round(mb_distill *d, mb_policy *pi, mb_adam *opt, const mb_distill_cfg *cfg,
                           const mb_buffer *real, const mb_distill_teacher *t,
                           mb_distill_ws *ws, mb_distill_stats *stats, char *err, size_t err_sz) {
    if (!real || real->size == 0) return mb_fail(err, err_sz, MB_ESTATE, "distill: the replay buffer is empty");
    const size_t O = (size_t)ws->obs_dim, A = (size_t)ws->act_dim, n = ws->n;
    const mb_policy_spec *s = &pi->spec;
    opt->lr = cfg->lr;
    /* 1. visited states */
    mb_buffer_sample(real, ws->slots, n, &d->rng);
    for (size_t i = 0; i < n; i++) memcpy(ws->S + i * O, real->obs + ws->slots[i] * O, O * sizeof(float));
    if (d->rounds > 0) {
        memcpy(ws->keep, ws->S, n * O * sizeof(float));
        for (size_t i = 0; i < n; i++) {
            ws->stop_at[i] = 1 + (int)mb_rng_below(&d->rng, (uint64_t)cfg->horizon);
            ws->alive[i] = 1;
        }
        for (int step = 1; step <= cfg->horizon; step++) {
            mb_policy_act(pi, ws->pw_roll, ws->S, n, NULL, ws->act, NULL);
            mb_rollout_step(t->dyn, t->rw, ws->roll, t->pool, &d->rng, ws->S, ws->act, n, ws->next,
                            ws->rew, ws->alive);
            for (size_t i = 0; i < n; i++) {
                int finite = 1;
                for (size_t o = 0; o < O; o++) finite &= isfinite(ws->next[i * O + o]) != 0;
                if (!finite) ws->alive[i] = 0;
                if (ws->alive[i] && step <= ws->stop_at[i])
                    memcpy(ws->keep + i * O, ws->next + i * O, O * sizeof(float));
            }
            memcpy(ws->S, ws->next, n * O * sizeof(float));
            /* a dead row stays where it ended (its keep is its last live state) */
            for (size_t i = 0; i < n; i++)
                if (!ws->alive[i]) memcpy(ws->S + i * O, ws->keep + i * O, O * sizeof(float));
        }
        memcpy(ws->S, ws->keep, n * O * sizeof(float));
    }
    /* 2. labels */
    mb_policy_act(pi, ws->pw_roll, ws->S, n, NULL, ws->act, NULL);
    double gap = 0;
    size_t labelled = 0;
    for (size_t i = 0; i < n; i++) {
        if (t->should_stop && t->should_stop(t->stop_ctx)) {
            if (stats) stats->labelled = labelled;
            return mb_fail(err, err_sz, MB_ECANCELED, "distill: stopped");
        }
        mb_status st = mb_plan(t->cfg, t->dyn, t->rw, ws->S + i * O, NULL, &d->rng, t->ws, t->pool,
                               ws->label + i * A, NULL, NULL, err, err_sz);
        if (st != MB_OK) return st;
        for (size_t j = 0; j < A; j++) {
            float sc = 0.5f * (s->act_high[j] - s->act_low[j]);
            gap += fabsf(ws->act[i * A + j] - ws->label[i * A + j]) / sc;
        }
        /* 3. aggregate */
        memcpy(d->obs + d->head * O, ws->S + i * O, O * sizeof(float));
        memcpy(d->act + d->head * A, ws->label + i * A, A * sizeof(float));
        d->head = (d->head + 1) % d->cap;
        if (d->n < d->cap) d->n++;
        labelled++;
    }
    /* 4. imitation */
    const size_t B = d->n < ws->batch ? d->n : ws->batch;
    double loss = 0;
    for (int u = 0; u < cfg->updates; u++) {
        for (size_t r = 0; r < B; r++) {
            size_t k = (size_t)mb_rng_below(&d->rng, d->n);
            memcpy(ws->bobs + r * O, d->obs + k * O, O * sizeof(float));
            memcpy(ws->blab + r * A, d->act + k * A, A * sizeof(float));
        }
        float l = mb_distill_update(pi, opt, ws, ws->bobs, ws->blab, B);
        if (!isfinite(l)) return mb_fail(err, err_sz, MB_ERANGE, "distill: the loss is not finite");
        loss += l;
    }
    d->rounds++;
    if (stats) {
        stats->loss = cfg->updates ? (float)(loss / cfg->updates) : 0.0f;
        stats->gap = (float)(gap / ((double)n * (double)A));
        stats->dataset = d->n;
        stats->labelled = labelled;
    }
    return MB_OK;
}
