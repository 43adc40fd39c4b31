/* rollout.c: one simulated step through known dynamics or a random elite
 * member per row (rollout.h).
 * Not for: choosing actions (the callers' policies). */
#include "learn/rollout.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct mb_rollout_ws {
    size_t n;
    int obs_dim, act_dim, in, out;
    mb_ens_ws *ens;        /* NULL for known dynamics */
    int *member;           /* (n) */
    size_t *order;         /* (n) rows sorted by member */
    float *x, *mean, *std, *z, *learned; /* (n, in), (n, out) x 3, (n) */
};

mb_rollout_ws *mb_rollout_ws_new(const mb_dynamics *dyn, size_t max_rows) {
    if (!dyn || max_rows == 0) return NULL;
    mb_rollout_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->n = max_rows;
    ws->obs_dim = dyn->obs_dim;
    ws->act_dim = dyn->act_dim;
    ws->in = dyn->obs_dim + dyn->act_dim;
    ws->out = dyn->ens ? mb_ensemble_out_dim(&dyn->ens->spec) : dyn->obs_dim;
    const size_t n = max_rows, I = (size_t)ws->in, U = (size_t)ws->out;
    if (dyn->ens) ws->ens = mb_ens_ws_new(&dyn->ens->spec, n);
    ws->member = malloc(n * sizeof(int));
    ws->order = malloc(n * sizeof(size_t));
    ws->x = malloc((n * (I + 3 * U) + n) * sizeof(float));
    if ((dyn->ens && !ws->ens) || !ws->member || !ws->order || !ws->x) {
        mb_rollout_ws_free(ws);
        return NULL;
    }
    ws->mean = ws->x + n * I;
    ws->std = ws->mean + n * U;
    ws->z = ws->std + n * U;
    ws->learned = ws->z + n * U;
    return ws;
}

void mb_rollout_ws_free(mb_rollout_ws *ws) {
    if (!ws) return;
    mb_ens_ws_free(ws->ens);
    free(ws->member);
    free(ws->order);
    free(ws->x);
    free(ws);
}

void mb_rollout_step(const mb_dynamics *dyn, const mb_reward_spec *rw, mb_rollout_ws *ws,
                     mb_pool *pool, mb_rng *rng, const float *obs, const float *act, size_t n,
                     float *next_obs, float *reward, uint8_t *alive) {
    assert(n <= ws->n);
    mb_reward_spec def;
    if (!rw) {
        mb_reward_spec_default(&def);
        rw = &def;
    }
    const int O = ws->obs_dim, A = ws->act_dim, I = ws->in, U = ws->out;
    float *learned = NULL;
    if (dyn->known) {
        dyn->known->step(n, obs, act, next_obs, ws->learned);
        learned = rw->use_learned ? ws->learned : NULL;
    } else {
        const mb_ensemble *e = dyn->ens;
        /* a random elite per row; rows grouped by member so each member
         * runs one batched forward over its rows */
        int counts[MB_MAX_MEMBERS] = {0}, start[MB_MAX_MEMBERS + 1];
        for (size_t i = 0; i < n; i++) {
            int m = e->elites[mb_rng_below(rng, (uint64_t)e->n_elites)];
            ws->member[i] = m;
            counts[m]++;
        }
        start[0] = 0;
        for (int m = 0; m < e->spec.members; m++) start[m + 1] = start[m] + counts[m];
        int fill[MB_MAX_MEMBERS];
        memcpy(fill, start, sizeof(int) * (size_t)e->spec.members);
        for (size_t i = 0; i < n; i++) {
            size_t pos = (size_t)fill[ws->member[i]]++;
            ws->order[pos] = i;
            memcpy(ws->x + pos * I, obs + i * O, (size_t)O * sizeof(float));
            memcpy(ws->x + pos * I + O, act + i * A, (size_t)A * sizeof(float));
        }
        for (int m = 0; m < e->spec.members; m++) {
            if (!counts[m]) continue;
            size_t s0 = (size_t)start[m];
            mb_ensemble_forward(e, ws->ens, pool, &m, 1, ws->x + s0 * I, (size_t)counts[m],
                                ws->mean + s0 * U, ws->std + s0 * U);
        }
        mb_rng_fill_normal(rng, ws->z, n * (size_t)U, 0, 1);
        for (size_t pos = 0; pos < n; pos++) {
            size_t i = ws->order[pos];
            const float *mu = ws->mean + pos * U, *sd = ws->std + pos * U, *z = ws->z + pos * U;
            for (int o = 0; o < O; o++) next_obs[i * O + o] = obs[i * O + o] + mu[o] + sd[o] * z[o];
            ws->learned[i] = U > O ? mu[O] + sd[O] * z[O] : 0.0f;
        }
        learned = rw->use_learned && U > O ? ws->learned : NULL;
    }
    mb_reward_step(rw, O, A, n, next_obs, act, learned, alive, reward);
}

