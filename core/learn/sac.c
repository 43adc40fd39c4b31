/* sac.c: soft actor-critic updates (sac.h): the agent's networks and
 * optimisers, the batch split into pieces over the pool, the critic, actor,
 * entropy and value steps, Polyak targets.
 * Not for: sampling batches (mbpo.c) or the networks' math (nn/). */
#include "learn/sac.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mb_sac_cfg_default(mb_sac_cfg *c) {
    memset(c, 0, sizeof *c);
    c->gamma = 0.99f;
    c->tau = 0.005f;
    c->lr_actor = c->lr_critic = c->lr_alpha = c->lr_value = 3e-4f;
    c->batch_size = 256;
    c->auto_alpha = 1;
    c->init_alpha = 0.2f;
    c->target_entropy = NAN;
    c->train_value = 1;
}

mb_status mb_sac_cfg_check(const mb_sac_cfg *c, char *err, size_t err_sz) {
    if (!c) return mb_fail(err, err_sz, MB_EINVAL, "sac: NULL config");
    if (!(c->gamma > 0 && c->gamma <= 1))
        return mb_fail(err, err_sz, MB_ERANGE, "gamma must be in (0, 1]");
    if (!(c->tau >= 0 && c->tau <= 1)) return mb_fail(err, err_sz, MB_ERANGE, "tau must be in [0, 1]");
    const float lrs[4] = {c->lr_actor, c->lr_critic, c->lr_alpha, c->lr_value};
    for (int i = 0; i < 4; i++)
        if (!(lrs[i] > 0 && lrs[i] <= 1)) return mb_fail(err, err_sz, MB_ERANGE, "learning rates must be in (0, 1]");
    if (c->batch_size < 1 || c->batch_size > MB_SAC_MAX_BATCH)
        return mb_fail(err, err_sz, MB_ERANGE, "batch_size must be in [1, %d]", MB_SAC_MAX_BATCH);
    if (c->auto_alpha != 0 && c->auto_alpha != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "auto_alpha must be 0 or 1");
    if (!(c->init_alpha > 0 && c->init_alpha <= 1e3f))
        return mb_fail(err, err_sz, MB_ERANGE, "alpha must be in (0, 1000]");
    if (!isnan(c->target_entropy) && !(fabsf(c->target_entropy) <= 1e4f))
        return mb_fail(err, err_sz, MB_ERANGE, "target_entropy must be finite");
    if (c->train_value != 0 && c->train_value != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "train_value must be 0 or 1");
    return MB_OK;
}

void mb_agent_spec_default(mb_agent_spec *s) {
    memset(s, 0, sizeof *s);
    s->n_hidden = 2;
    s->hidden[0] = s->hidden[1] = 256;
    s->activation = MB_ACT_RELU;
    for (int j = 0; j < MB_MAX_ACT_DIM; j++) {
        s->act_low[j] = -1.0f;
        s->act_high[j] = 1.0f;
    }
}

void mb_agent_policy_spec(const mb_agent_spec *s, mb_policy_spec *out) {
    mb_policy_spec_default(out);
    out->obs_dim = s->obs_dim;
    out->act_dim = s->act_dim;
    out->n_hidden = s->n_hidden;
    memcpy(out->hidden, s->hidden, sizeof out->hidden);
    out->activation = s->activation;
    memcpy(out->act_low, s->act_low, sizeof out->act_low);
    memcpy(out->act_high, s->act_high, sizeof out->act_high);
}

void mb_agent_qnet_spec(const mb_agent_spec *s, mb_qnet_spec *out) {
    memset(out, 0, sizeof *out);
    out->obs_dim = s->obs_dim;
    out->act_dim = s->act_dim;
    out->n_hidden = s->n_hidden;
    memcpy(out->hidden, s->hidden, sizeof out->hidden);
    out->activation = s->activation;
}

void mb_agent_vnet_spec(const mb_agent_spec *s, mb_vnet_spec *out) {
    memset(out, 0, sizeof *out);
    out->obs_dim = s->obs_dim;
    out->n_hidden = s->n_hidden;
    memcpy(out->hidden, s->hidden, sizeof out->hidden);
    out->activation = s->activation;
}

mb_status mb_agent_spec_check(const mb_agent_spec *s, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "policy: NULL spec");
    mb_policy_spec ps;
    mb_agent_policy_spec(s, &ps);
    return mb_policy_spec_check(&ps, err, err_sz);
}

float mb_sac_alpha(const mb_sac *s) { return expf(s->log_alpha); }

void mb_sac_set_lr(mb_sac *s, const mb_sac_cfg *cfg) {
    s->opt_pi.lr = cfg->lr_actor;
    s->opt_q.lr = cfg->lr_critic;
    s->opt_v.lr = cfg->lr_value;
    s->opt_alpha.lr = cfg->lr_alpha;
}

mb_status mb_sac_init(mb_sac *s, const mb_agent_spec *spec, const mb_sac_cfg *cfg, uint64_t seed,
                      char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "sac: NULL");
    memset(s, 0, sizeof *s);
    mb_status st = mb_agent_spec_check(spec, err, err_sz);
    if (st == MB_OK) st = mb_sac_cfg_check(cfg, err, err_sz);
    if (st != MB_OK) return st;
    s->spec = *spec;
    mb_policy_spec ps;
    mb_qnet_spec qs;
    mb_vnet_spec vs;
    mb_agent_policy_spec(spec, &ps);
    mb_agent_qnet_spec(spec, &qs);
    mb_agent_vnet_spec(spec, &vs);
    st = mb_policy_init(&s->pi, &ps, seed, err, err_sz);
    if (st == MB_OK) st = mb_qnet_init(&s->q, &qs, seed + 1, err, err_sz);
    if (st == MB_OK) st = mb_vnet_init(&s->v, &vs, seed + 2, err, err_sz);
    if (st == MB_OK) st = mb_adam_init(&s->opt_pi, s->pi.n_params, cfg->lr_actor, err, err_sz);
    if (st == MB_OK) st = mb_adam_init(&s->opt_q, s->q.n_params, cfg->lr_critic, err, err_sz);
    if (st == MB_OK) st = mb_adam_init(&s->opt_v, s->v.n_params, cfg->lr_value, err, err_sz);
    if (st == MB_OK) st = mb_adam_init(&s->opt_alpha, 1, cfg->lr_alpha, err, err_sz);
    if (st != MB_OK) {
        mb_sac_free(s);
        return st;
    }
    s->log_alpha = logf(cfg->init_alpha);
    s->last.alpha = cfg->init_alpha;
    return MB_OK;
}

void mb_sac_free(mb_sac *s) {
    if (!s) return;
    mb_policy_free(&s->pi);
    mb_qnet_free(&s->q);
    mb_vnet_free(&s->v);
    mb_adam_free(&s->opt_pi);
    mb_adam_free(&s->opt_q);
    mb_adam_free(&s->opt_v);
    mb_adam_free(&s->opt_alpha);
    memset(s, 0, sizeof *s);
}

static mb_status sac__adam_copy(mb_adam *dst, const mb_adam *src, char *err, size_t err_sz) {
    mb_status st = mb_adam_init(dst, src->n, src->lr, err, err_sz);
    if (st != MB_OK) return st;
    dst->beta1 = src->beta1;
    dst->beta2 = src->beta2;
    dst->eps = src->eps;
    dst->t = src->t;
    memcpy(dst->m, src->m, src->n * sizeof(float));
    memcpy(dst->v, src->v, src->n * sizeof(float));
    return MB_OK;
}

mb_status mb_sac_copy(mb_sac *dst, const mb_sac *src, char *err, size_t err_sz) {
    if (!dst || !src) return mb_fail(err, err_sz, MB_EINVAL, "sac copy: NULL");
    memset(dst, 0, sizeof *dst);
    dst->spec = src->spec;
    dst->log_alpha = src->log_alpha;
    dst->updates = src->updates;
    dst->last = src->last;
    mb_status st = mb_policy_copy(&dst->pi, &src->pi, err, err_sz);
    if (st == MB_OK) st = mb_qnet_copy(&dst->q, &src->q, err, err_sz);
    if (st == MB_OK) st = mb_vnet_copy(&dst->v, &src->v, err, err_sz);
    if (st == MB_OK) st = sac__adam_copy(&dst->opt_pi, &src->opt_pi, err, err_sz);
    if (st == MB_OK) st = sac__adam_copy(&dst->opt_q, &src->opt_q, err, err_sz);
    if (st == MB_OK) st = sac__adam_copy(&dst->opt_v, &src->opt_v, err, err_sz);
    if (st == MB_OK) st = sac__adam_copy(&dst->opt_alpha, &src->opt_alpha, err, err_sz);
    if (st != MB_OK) mb_sac_free(dst);
    return st;
}

/* ---- workspace ----------------------------------------------------------- */

enum { SAC_CRITIC = 0, SAC_ACTOR, SAC_VALUE, SAC_ENTROPY, SAC_QMEAN, SAC_NSUM };

typedef struct {
    size_t r0, nr;
    mb_policy_ws *pw;
    mb_qnet_ws *qw;
    mb_mlp_ws *vw;
    float *g_pi, *g_q, *g_v;            /* gradient blocks of this piece */
    float *a, *lp, *q0, *q1, *y, *g0, *g1, *ga, *ga1, *glp, *vo; /* (nr[, A]) */
    double sum[SAC_NSUM];
} sac__piece;

struct mb_sac_ws {
    int pieces;
    size_t B;
    mb_sac_batch batch;
    float *eps_next, *eps_now; /* (B, A) */
    float *lp_now;             /* (B) actor's log pi for the entropy step */
    sac__piece piece[MB_MAX_MEMBERS];
    float *mem;
};

mb_sac_ws *mb_sac_ws_new(const mb_sac *s, const mb_sac_cfg *cfg, int pieces) {
    if (!s || !cfg || mb_sac_cfg_check(cfg, NULL, 0) != MB_OK) return NULL;
    if (pieces < 1) pieces = 1;
    if (pieces > MB_MAX_MEMBERS) pieces = MB_MAX_MEMBERS;
    size_t B = (size_t)cfg->batch_size;
    if ((size_t)pieces > B) pieces = (int)B;
    const size_t O = (size_t)s->spec.obs_dim, A = (size_t)s->spec.act_dim;
    mb_sac_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->pieces = pieces;
    ws->B = B;
    size_t rows = (B + (size_t)pieces - 1) / (size_t)pieces;
    size_t total = B * (2 * O + A + 2) + 2 * B * A + B;
    size_t per = s->pi.n_params + s->q.n_params + s->v.n_params + rows * (4 * A + 9);
    total += per * (size_t)pieces;
    ws->mem = malloc(total * sizeof(float));
    if (!ws->mem) {
        free(ws);
        return NULL;
    }
    float *p = ws->mem;
    ws->batch.obs = p, p += B * O;
    ws->batch.next_obs = p, p += B * O;
    ws->batch.act = p, p += B * A;
    ws->batch.rew = p, p += B;
    ws->batch.done = p, p += B;
    ws->batch.n = B;
    ws->eps_next = p, p += B * A;
    ws->eps_now = p, p += B * A;
    ws->lp_now = p, p += B;
    mb_policy_spec ps = s->pi.spec;
    mb_qnet_spec qs = s->q.spec;
    mb_vnet_spec vs = s->v.spec;
    for (int k = 0; k < pieces; k++) {
        sac__piece *pc = &ws->piece[k];
        pc->r0 = (size_t)k * rows;
        pc->nr = pc->r0 >= B ? 0 : (B - pc->r0 < rows ? B - pc->r0 : rows);
        pc->pw = mb_policy_ws_new(&ps, rows);
        pc->qw = mb_qnet_ws_new(&qs, rows);
        pc->vw = mb_vnet_ws_new(&vs, rows);
        if (!pc->pw || !pc->qw || !pc->vw) {
            mb_sac_ws_free(ws);
            return NULL;
        }
        pc->g_pi = p, p += s->pi.n_params;
        pc->g_q = p, p += s->q.n_params;
        pc->g_v = p, p += s->v.n_params;
        pc->a = p, p += rows * A;
        pc->ga = p, p += rows * A;
        pc->ga1 = p, p += rows * A;
        p += rows * A; /* spare: keeps the per-piece size a simple formula */
        pc->lp = p, p += rows;
        pc->q0 = p, p += rows;
        pc->q1 = p, p += rows;
        pc->y = p, p += rows;
        pc->g0 = p, p += rows;
        pc->g1 = p, p += rows;
        pc->glp = p, p += rows;
        pc->vo = p, p += rows;
        p += rows;
    }
    return ws;
}

void mb_sac_ws_free(mb_sac_ws *ws) {
    if (!ws) return;
    for (int k = 0; k < ws->pieces; k++) {
        mb_policy_ws_free(ws->piece[k].pw);
        mb_qnet_ws_free(ws->piece[k].qw);
        mb_mlp_ws_free(ws->piece[k].vw);
    }
    free(ws->mem);
    free(ws);
}

mb_sac_batch *mb_sac_ws_batch(mb_sac_ws *ws) { return &ws->batch; }

/* ---- the update ---------------------------------------------------------- */

typedef struct {
    mb_sac *s;
    const mb_sac_cfg *cfg;
    mb_sac_ws *ws;
    float alpha;
} sac__ctx;

/* Critic step of one piece: targets from the target twins and the current
 * policy at s', then both twins' gradients of 0.5 (Q - y)^2 / B. */
static void sac__critic_task(void *vctx, int task, int worker) {
    (void)worker;
    sac__ctx *c = vctx;
    sac__piece *pc = &c->ws->piece[task];
    memset(pc->sum, 0, sizeof pc->sum);
    const mb_sac *s = c->s;
    const size_t n = pc->nr, r0 = pc->r0, O = (size_t)s->spec.obs_dim, A = (size_t)s->spec.act_dim;
    if (n == 0) {
        memset(pc->g_q, 0, s->q.n_params * sizeof(float));
        return;
    }
    const mb_sac_batch *b = &c->ws->batch;
    const float *obs = b->obs + r0 * O, *act = b->act + r0 * A, *nx = b->next_obs + r0 * O;
    mb_policy_act(&s->pi, pc->pw, nx, n, c->ws->eps_next + r0 * A, pc->a, pc->lp);
    mb_qnet_forward(&s->q, pc->qw, 0, 1, nx, pc->a, n, pc->q0);
    mb_qnet_forward(&s->q, pc->qw, 1, 1, nx, pc->a, n, pc->q1);
    const float g = c->cfg->gamma, inv_b = 1.0f / (float)c->ws->B;
    for (size_t i = 0; i < n; i++) {
        float m = fminf(pc->q0[i], pc->q1[i]) - c->alpha * pc->lp[i];
        pc->y[i] = b->rew[r0 + i] + g * (1.0f - b->done[r0 + i]) * m;
    }
    mb_qnet_forward_train(&s->q, pc->qw, 0, obs, act, n, pc->q0);
    mb_qnet_forward_train(&s->q, pc->qw, 1, obs, act, n, pc->q1);
    double l = 0;
    for (size_t i = 0; i < n; i++) {
        float d0 = pc->q0[i] - pc->y[i], d1 = pc->q1[i] - pc->y[i];
        l += 0.5 * ((double)d0 * d0 + (double)d1 * d1);
        pc->g0[i] = d0 * inv_b;
        pc->g1[i] = d1 * inv_b;
    }
    pc->sum[SAC_CRITIC] = l;
    mb_qnet_backward(&s->q, pc->qw, 0, n, pc->g0, pc->g_q, 0, NULL, NULL);
    mb_qnet_backward(&s->q, pc->qw, 1, n, pc->g1, pc->g_q, 0, NULL, NULL);
}

/* Actor and value step of one piece: a ~ pi(s), the gradient of
 * mean(alpha log pi - min_k Q_k(s, a)) through the critics' action input,
 * and V's gradient toward min Q - alpha log pi. */
static void sac__actor_task(void *vctx, int task, int worker) {
    (void)worker;
    sac__ctx *c = vctx;
    sac__piece *pc = &c->ws->piece[task];
    memset(pc->sum, 0, sizeof pc->sum);
    const mb_sac *s = c->s;
    const size_t n = pc->nr, r0 = pc->r0, O = (size_t)s->spec.obs_dim, A = (size_t)s->spec.act_dim;
    if (n == 0) {
        memset(pc->g_pi, 0, s->pi.n_params * sizeof(float));
        memset(pc->g_v, 0, s->v.n_params * sizeof(float));
        return;
    }
    const float *obs = c->ws->batch.obs + r0 * O;
    float *lp = c->ws->lp_now + r0;
    mb_policy_forward_train(&s->pi, pc->pw, obs, n, c->ws->eps_now + r0 * A, pc->a, lp);
    mb_qnet_forward_train(&s->q, pc->qw, 0, obs, pc->a, n, pc->q0);
    mb_qnet_forward_train(&s->q, pc->qw, 1, obs, pc->a, n, pc->q1);
    const float inv_b = 1.0f / (float)c->ws->B;
    double la = 0, ent = 0, qm = 0;
    for (size_t i = 0; i < n; i++) {
        int first = pc->q0[i] <= pc->q1[i];
        float m = first ? pc->q0[i] : pc->q1[i];
        pc->g0[i] = first ? -inv_b : 0.0f;
        pc->g1[i] = first ? 0.0f : -inv_b;
        pc->glp[i] = c->alpha * inv_b;
        pc->y[i] = m - c->alpha * lp[i]; /* the value target */
        la += (double)c->alpha * lp[i] - m;
        ent -= lp[i];
        qm += m;
    }
    pc->sum[SAC_ACTOR] = la;
    pc->sum[SAC_ENTROPY] = ent;
    pc->sum[SAC_QMEAN] = qm;
    mb_qnet_backward(&s->q, pc->qw, 0, n, pc->g0, NULL, 0, NULL, pc->ga);
    mb_qnet_backward(&s->q, pc->qw, 1, n, pc->g1, NULL, 0, NULL, pc->ga1);
    for (size_t i = 0; i < n * A; i++) pc->ga[i] += pc->ga1[i];
    mb_policy_backward(&s->pi, pc->pw, obs, n, pc->ga, pc->glp, pc->g_pi, 0, NULL);
    if (!c->cfg->train_value) return;
    mb_mlp_forward_train(&s->v.mlp, s->v.params, pc->vw, obs, n, pc->vo);
    double lv = 0;
    for (size_t i = 0; i < n; i++) {
        float d = pc->vo[i] - pc->y[i];
        lv += 0.5 * (double)d * d;
        pc->g0[i] = d * inv_b;
    }
    pc->sum[SAC_VALUE] = lv;
    mb_mlp_backward(&s->v.mlp, s->v.params, pc->vw, obs, n, pc->g0, pc->g_v, 0, NULL);
}


static void sac__sum_grads(mb_sac_ws *ws, int which, size_t n) {
    float *dst = which == 0 ? ws->piece[0].g_q : which == 1 ? ws->piece[0].g_pi : ws->piece[0].g_v;
    for (int k = 1; k < ws->pieces; k++) {
        const float *src = which == 0 ? ws->piece[k].g_q : which == 1 ? ws->piece[k].g_pi : ws->piece[k].g_v;
        for (size_t i = 0; i < n; i++) dst[i] += src[i];
    }
}

static int sac__finite(const float *x, size_t n) {
    float acc = 0;
    for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
    return acc == 0.0f;
}

mb_status mb_sac_update(mb_sac *s, const mb_sac_cfg *cfg, mb_sac_ws *ws, mb_rng *rng,
                        mb_pool *pool, mb_sac_losses *losses, char *err, size_t err_sz) {
    const size_t B = ws->B, A = (size_t)s->spec.act_dim;

    mb_rng_fill_normal(rng, ws->eps_next, B * A, 0, 1);
    mb_rng_fill_normal(rng, ws->eps_now, B * A, 0, 1);
    sac__ctx c = {.s = s, .cfg = cfg, .ws = ws, .alpha = cfg->auto_alpha ? expf(s->log_alpha) : cfg->init_alpha};
    mb_sac_losses L = {0};
    /* critics */
    mb_pool_run(pool, sac__critic_task, &c, ws->pieces);
    double sum = 0;
    for (int k = 0; k < ws->pieces; k++) sum += ws->piece[k].sum[SAC_CRITIC];
    L.critic = (float)(sum / (double)B);
    sac__sum_grads(ws, 0, s->q.n_params);
    if (!isfinite(L.critic) || !sac__finite(ws->piece[0].g_q, s->q.n_params))
        return mb_fail(err, err_sz, MB_ERANGE, "sac: the critic loss is not finite (diverged)");
    mb_adam_step(&s->opt_q, s->q.params, ws->piece[0].g_q);
    /* actor and value */
    mb_pool_run(pool, sac__actor_task, &c, ws->pieces);
    double sa = 0, sv = 0, se = 0, sq = 0;
    for (int k = 0; k < ws->pieces; k++) {
        sa += ws->piece[k].sum[SAC_ACTOR];
        sv += ws->piece[k].sum[SAC_VALUE];
        se += ws->piece[k].sum[SAC_ENTROPY];
        sq += ws->piece[k].sum[SAC_QMEAN];
    }
    L.actor = (float)(sa / (double)B);
    L.value = (float)(sv / (double)B);
    L.entropy = (float)(se / (double)B);
    L.q_mean = (float)(sq / (double)B);
    sac__sum_grads(ws, 1, s->pi.n_params);
    if (!isfinite(L.actor) || !sac__finite(ws->piece[0].g_pi, s->pi.n_params))
        return mb_fail(err, err_sz, MB_ERANGE, "sac: the actor loss is not finite (diverged)");
    mb_adam_step(&s->opt_pi, s->pi.params, ws->piece[0].g_pi);
    if (cfg->train_value) {
        sac__sum_grads(ws, 2, s->v.n_params);
        if (isfinite(L.value)) mb_adam_step(&s->opt_v, s->v.params, ws->piece[0].g_v);
    }
    /* entropy: d/d log_alpha of -log_alpha * mean(log pi + H*) */
    const float H = isnan(cfg->target_entropy) ? -(float)A : cfg->target_entropy;
    float mean_lp = -L.entropy;
    L.alpha_loss = -s->log_alpha * (mean_lp + H);
    if (cfg->auto_alpha) {
        float g = -(mean_lp + H);
        mb_adam_step(&s->opt_alpha, &s->log_alpha, &g);
        if (s->log_alpha < -20.0f) s->log_alpha = -20.0f;
        if (s->log_alpha > 7.0f) s->log_alpha = 7.0f;
    } else {
        s->log_alpha = logf(cfg->init_alpha);
    }
    L.alpha = expf(s->log_alpha);
    mb_qnet_polyak(&s->q, cfg->tau);
    s->updates++;
    s->last = L;
    if (losses) *losses = L;
    return MB_OK;
}

double mb_sac_flops_per_update(const mb_sac *s, const mb_sac_cfg *cfg) {
    double fp = mb_mlp_flops_per_row(&s->pi.mlp), fq = mb_mlp_flops_per_row(&s->q.mlp),
           fv = mb_mlp_flops_per_row(&s->v.mlp);
    /* critic: pi(s') + 2 target Q + 2 Q forwards + 2 Q backwards (2x);
     * actor: pi forward + backward (2x), 2 Q forwards + 2 input-only
     * backwards (1x); value: forward + backward (2x) */
    double per_row = (fp + 8 * fq) + (3 * fp + 4 * fq) + (cfg->train_value ? 3 * fv : 0);
    return per_row * (double)cfg->batch_size;
}
