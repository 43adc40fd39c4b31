/* mbpo.c: MBPO's branched rollouts into the model-data buffer, the length
 * schedule, and the mixed real/model batches fed to SAC (mbpo.h).
 * Not for: the SAC update itself (sac.c). */
#include "learn/mbpo.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void mb_mbpo_cfg_default(mb_mbpo_cfg *c) {
    memset(c, 0, sizeof *c);
    c->rollouts = 400;
    c->min_length = c->max_length = 1;
    c->min_epoch = 20;
    c->max_epoch = 100;
    c->epoch_steps = 1000;
    c->retain_steps = 1000;
    c->updates_per_step = 20;
    c->real_ratio = 0.05f;
    mb_sac_cfg_default(&c->sac);
}

mb_status mb_mbpo_cfg_check(const mb_mbpo_cfg *c, char *err, size_t err_sz) {
    if (!c) return mb_fail(err, err_sz, MB_EINVAL, "mbpo: NULL config");
    if (c->rollouts < 1 || c->rollouts > MB_MBPO_MAX_ROLLOUTS)
        return mb_fail(err, err_sz, MB_ERANGE, "rollouts must be in [1, %d]", MB_MBPO_MAX_ROLLOUTS);
    if (c->min_length < 1 || c->max_length > MB_MBPO_MAX_LENGTH || c->min_length > c->max_length)
        return mb_fail(err, err_sz, MB_ERANGE,
                       "rollout lengths must satisfy 1 <= min_length <= max_length <= %d",
                       MB_MBPO_MAX_LENGTH);
    if (c->min_epoch < 0 || c->max_epoch < c->min_epoch)
        return mb_fail(err, err_sz, MB_ERANGE, "rollout schedule epochs must satisfy 0 <= min_epoch <= max_epoch");
    if (c->epoch_steps < 1) return mb_fail(err, err_sz, MB_ERANGE, "epoch_steps must be >= 1");
    if (c->retain_steps < 1) return mb_fail(err, err_sz, MB_ERANGE, "retain_steps must be >= 1");
    if (c->updates_per_step < 0 || c->updates_per_step > 10000)
        return mb_fail(err, err_sz, MB_ERANGE, "updates_per_step must be in [0, 10000]");
    if (!(c->real_ratio >= 0 && c->real_ratio <= 1))
        return mb_fail(err, err_sz, MB_ERANGE, "real_ratio must be in [0, 1]");
    return mb_sac_cfg_check(&c->sac, err, err_sz);
}

int mb_mbpo_length(const mb_mbpo_cfg *c, long step) {
    double epoch = (double)step / (double)c->epoch_steps;
    if (epoch <= c->min_epoch || c->max_epoch == c->min_epoch)
        return epoch <= c->min_epoch ? c->min_length : c->max_length;
    double f = (epoch - c->min_epoch) / (double)(c->max_epoch - c->min_epoch);
    if (f > 1) f = 1;
    return c->min_length + (int)floor(f * (c->max_length - c->min_length));
}

size_t mb_mbpo_model_capacity(const mb_mbpo_cfg *c) {
    double rows = (double)c->rollouts * c->max_length * c->retain_steps;
    return rows > MB_MBPO_MAX_MODEL_ROWS ? MB_MBPO_MAX_MODEL_ROWS : (size_t)rows;
}

mb_status mb_mbpo_init(mb_mbpo *m, const mb_mbpo_cfg *cfg, int obs_dim, int act_dim,
                       uint64_t seed, char *err, size_t err_sz) {
    if (!m) return mb_fail(err, err_sz, MB_EINVAL, "mbpo: NULL");
    memset(m, 0, sizeof *m);
    mb_status st = mb_mbpo_cfg_check(cfg, err, err_sz);
    if (st != MB_OK) return st;
    st = mb_buffer_init(&m->model, obs_dim, act_dim, mb_mbpo_model_capacity(cfg), 0.0f, 0, err, err_sz);
    if (st != MB_OK) return st;
    mb_rng_seed(&m->rng, seed);
    return MB_OK;
}

void mb_mbpo_free(mb_mbpo *m) {
    if (!m) return;
    mb_buffer_free(&m->model);
    memset(m, 0, sizeof *m);
}

/* ---- workspace ----------------------------------------------------------- */

struct mb_mbpo_ws {
    size_t n;              /* rollouts */
    int obs_dim, act_dim;
    mb_rollout_ws *roll;
    mb_policy_ws *pw;
    mb_sac_ws *sac;
    size_t *slots;         /* (max(n, B)) */
    uint8_t *alive, *term; /* (n) */
    float *S, *act, *next, *rew, *eps; /* rollout state */
};

mb_mbpo_ws *mb_mbpo_ws_new(const mb_mbpo_cfg *cfg, const mb_sac *agent, const mb_dynamics *dyn,
                           int pieces) {
    if (!cfg || !agent || !dyn || mb_mbpo_cfg_check(cfg, NULL, 0) != MB_OK) return NULL;
    mb_mbpo_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    const size_t n = (size_t)cfg->rollouts, B = (size_t)cfg->sac.batch_size;
    ws->n = n;
    ws->obs_dim = dyn->obs_dim;
    ws->act_dim = dyn->act_dim;
    const size_t O = (size_t)ws->obs_dim, A = (size_t)ws->act_dim, nb = n > B ? n : B;
    ws->roll = mb_rollout_ws_new(dyn, n);
    ws->pw = mb_policy_ws_new(&agent->pi.spec, n < 256 ? n : 256);
    ws->sac = mb_sac_ws_new(agent, &cfg->sac, pieces);
    ws->slots = malloc(nb * sizeof(size_t));
    ws->alive = malloc(2 * n);
    ws->S = malloc(n * (2 * O + 2 * A + 1) * sizeof(float));
    if (!ws->roll || !ws->pw || !ws->sac || !ws->slots || !ws->alive || !ws->S) {
        mb_mbpo_ws_free(ws);
        return NULL;
    }
    ws->term = ws->alive + n;
    ws->next = ws->S + n * O;
    ws->act = ws->next + n * O;
    ws->eps = ws->act + n * A;
    ws->rew = ws->eps + n * A;
    return ws;
}

void mb_mbpo_ws_free(mb_mbpo_ws *ws) {
    if (!ws) return;
    mb_rollout_ws_free(ws->roll);
    mb_policy_ws_free(ws->pw);
    mb_sac_ws_free(ws->sac);
    free(ws->slots);
    free(ws->alive);
    free(ws->S);
    free(ws);
}

/* ---- one MBPO step ------------------------------------------------------- */

static void mbpo__gather(const mb_buffer *b, const size_t *slots, size_t n, size_t at,
                         mb_sac_batch *batch) {
    const size_t O = (size_t)b->obs_dim, A = (size_t)b->act_dim;
    for (size_t i = 0; i < n; i++) {
        size_t s = slots[i], r = at + i;
        memcpy(batch->obs + r * O, b->obs + s * O, O * sizeof(float));
        memcpy(batch->next_obs + r * O, b->next_obs + s * O, O * sizeof(float));
        memcpy(batch->act + r * A, b->act + s * A, A * sizeof(float));
        batch->rew[r] = b->rew[s];
        batch->done[r] = b->terminated[s] ? 1.0f : 0.0f;
    }
}

mb_status mb_mbpo_step(mb_mbpo *m, mb_sac *agent, const mb_mbpo_cfg *cfg, const mb_buffer *real,
                       const mb_dynamics *dyn, const mb_reward_spec *rw, mb_mbpo_ws *ws,
                       mb_pool *pool, mb_mbpo_stats *stats, char *err, size_t err_sz) {
    if (!real || real->size == 0) return mb_fail(err, err_sz, MB_ESTATE, "mbpo: the replay buffer is empty");
    if (real->obs_dim != ws->obs_dim || real->act_dim != ws->act_dim)
        return mb_fail(err, err_sz, MB_EINVAL, "mbpo: buffer and model dimensions differ");
    if (dyn->ens && (!rw || rw->use_learned) && !dyn->ens->spec.learn_reward)
        return mb_fail(err, err_sz, MB_ESTATE,
                       "mbpo: the reward uses the model's own reward but the ensemble learns none");
    const size_t O = (size_t)ws->obs_dim, A = (size_t)ws->act_dim, n = ws->n;
    const int len = mb_mbpo_length(cfg, m->steps);
    /* 1. branched rollouts from real states */
    mb_buffer_sample(real, ws->slots, n, &m->rng);
    for (size_t i = 0; i < n; i++) {
        memcpy(ws->S + i * O, real->obs + ws->slots[i] * O, O * sizeof(float));
        ws->alive[i] = 1;
    }
    size_t live = n, added = 0;
    for (int t = 0; t < len && live > 0; t++) {
        mb_rng_fill_normal(&m->rng, ws->eps, live * A, 0, 1);
        mb_policy_act(&agent->pi, ws->pw, ws->S, live, ws->eps, ws->act, NULL);
        mb_rollout_step(dyn, rw, ws->roll, pool, &m->rng, ws->S, ws->act, live, ws->next, ws->rew, ws->alive);
        size_t keep = 0;
        for (size_t i = 0; i < live; i++) {
            ws->term[i] = (uint8_t)!ws->alive[i];
            /* a diverged model (non-finite state) ends the row unrecorded */
            int finite = isfinite(ws->rew[i]);
            for (size_t o = 0; o < O && finite; o++) finite = isfinite(ws->next[i * O + o]);
            if (!finite) {
                ws->alive[i] = 0;
                ws->term[i] = 2;
            }
        }
        /* record (drop the non-finite rows), then keep the live ones */
        size_t w = 0;
        for (size_t i = 0; i < live; i++) {
            if (ws->term[i] == 2) continue;
            if (w != i) {
                memmove(ws->S + w * O, ws->S + i * O, O * sizeof(float));
                memmove(ws->act + w * A, ws->act + i * A, A * sizeof(float));
                memmove(ws->next + w * O, ws->next + i * O, O * sizeof(float));
                ws->rew[w] = ws->rew[i];
                ws->term[w] = ws->term[i];
                ws->alive[w] = ws->alive[i];
            }
            w++;
        }
        mb_buffer_append(&m->model, w, ws->S, ws->act, ws->rew, ws->next, ws->term, NULL);
        added += w;
        for (size_t i = 0; i < w; i++) {
            if (!ws->alive[i]) continue;
            memcpy(ws->S + keep * O, ws->next + i * O, O * sizeof(float));
            ws->alive[keep] = 1;
            keep++;
        }
        live = keep;
    }
    /* 2. SAC updates on mixed batches */
    mb_sac_batch *batch = mb_sac_ws_batch(ws->sac);
    const size_t B = batch->n;
    size_t n_real = m->model.size == 0 ? B : (size_t)lrintf(cfg->real_ratio * (float)B);
    if (n_real > B) n_real = B;
    mb_sac_losses L = agent->last;
    for (int u = 0; u < cfg->updates_per_step; u++) {
        mb_buffer_sample(real, ws->slots, n_real, &m->rng);
        mbpo__gather(real, ws->slots, n_real, 0, batch);
        if (B > n_real) {
            mb_buffer_sample(&m->model, ws->slots, B - n_real, &m->rng);
            mbpo__gather(&m->model, ws->slots, B - n_real, n_real, batch);
        }
        mb_status st = mb_sac_update(agent, &cfg->sac, ws->sac, &m->rng, pool, &L, err, err_sz);
        if (st != MB_OK) return st;
    }
    m->steps++;
    if (stats) {
        stats->length = len;
        stats->model_rows = m->model.size;
        stats->simulated = added;
        stats->losses = L;
    }
    return MB_OK;
}
