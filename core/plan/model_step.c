/* model_step.c: deterministic batched steps for MCTS, iLQR, gradient
 * shooting and LQR-FLM (contract in model_step.h).
 *
 * Mean mode: x holds k copies of the rows (member-major) and one
 * mb_ensemble_forward runs them all; the means are averaged. Per-row mode:
 * rows are grouped by member (a counting sort into x), one forward per
 * member used, and scattered back. Not for: trajectory sampling
 * (propagate.c). */
#include "plan/model_step.h"

#include <stdlib.h>
#include <string.h>

#include "plan/carve.h"

struct plan_mstep {
    size_t max_rows;
    int is_ens, E, in, out, O, A;
    mb_ens_ws *ens_ws;
    void *block;        /* the arrays below (ensemble only) */
    float *x, *mu;      /* (E * max_rows, in), (E * max_rows, out) */
    int *order, *count; /* (max_rows), (E + 1) */
};

/* The arrays of ms (NULL: sizing) for spec (NULL: known dynamics, none) in
 * block (NULL: sizing); *block_bytes gets the block's size. Returns the
 * bytes plan_mstep_new allocates: the struct, the block and the ensemble
 * workspace. */
static size_t mstep__layout(const mb_ensemble_spec *spec, size_t max_rows, plan_mstep *ms, char *block,
                            size_t *block_bytes) {
    *block_bytes = 0;
    if (!spec) return sizeof(plan_mstep);
    size_t E = (size_t)spec->members;
    plan_carver c = {block, 0};
    PLAN_CARVE(&c, ms, x, E * max_rows * (size_t)mb_ensemble_in_dim(spec));
    PLAN_CARVE(&c, ms, mu, E * max_rows * (size_t)mb_ensemble_out_dim(spec));
    PLAN_CARVE(&c, ms, order, max_rows);
    PLAN_CARVE(&c, ms, count, E + 1);
    *block_bytes = c.off;
    return sizeof(plan_mstep) + c.off + mb_ens_ws_bytes(spec, max_rows);
}

size_t plan_mstep_bytes(const mb_ensemble_spec *spec, size_t max_rows) {
    size_t block;
    return max_rows ? mstep__layout(spec, max_rows, NULL, NULL, &block) : 0;
}

plan_mstep *plan_mstep_new(const mb_dynamics *dyn, size_t max_rows) {
    if (!dyn || (!dyn->ens == !dyn->known) || max_rows == 0) return NULL;
    plan_mstep *ms = calloc(1, sizeof *ms);
    if (!ms) return NULL;
    ms->max_rows = max_rows;
    ms->O = dyn->obs_dim;
    ms->A = dyn->act_dim;
    ms->is_ens = !!dyn->ens;
    if (ms->is_ens) {
        const mb_ensemble_spec *s = &dyn->ens->spec;
        ms->E = s->members;
        ms->in = mb_ensemble_in_dim(s);
        ms->out = mb_ensemble_out_dim(s);
        ms->ens_ws = mb_ens_ws_new(s, max_rows);
        size_t block;
        mstep__layout(s, max_rows, ms, NULL, &block);
        ms->block = calloc(1, block);
        if (!ms->ens_ws || !ms->block) {
            plan_mstep_free(ms);
            return NULL;
        }
        mstep__layout(s, max_rows, ms, ms->block, &block);
    }
    return ms;
}

void plan_mstep_free(plan_mstep *ms) {
    if (!ms) return;
    mb_ens_ws_free(ms->ens_ws);
    free(ms->block);
    free(ms);
}

size_t plan_mstep_rows(const plan_mstep *ms) { return ms ? ms->max_rows : 0; }

void plan_mstep_run(plan_mstep *ms, const mb_dynamics *dyn, mb_pool *pool, const int *members,
                    int k, const int *row_member, const float *obs, const float *act, size_t n,
                    float *next, float *mreward) {
    const int O = ms->O, A = ms->A;
    if (!ms->is_ens) {
        dyn->known->step(n, obs, act, next, mreward);
        return;
    }
    const mb_ensemble *e = dyn->ens;
    if (!members) k = ms->E;
    const int in = ms->in, out = ms->out;
    if (!row_member) {
        for (int j = 0; j < k; j++)
            for (size_t r = 0; r < n; r++) {
                float *x = ms->x + ((size_t)j * n + r) * in;
                memcpy(x, obs + r * O, (size_t)O * sizeof(float));
                memcpy(x + O, act + r * A, (size_t)A * sizeof(float));
            }
        mb_ensemble_forward(e, ms->ens_ws, pool, members, k, ms->x, n, ms->mu, NULL);
        float inv = 1.0f / (float)k;
        for (size_t r = 0; r < n; r++) {
            for (int o = 0; o < O; o++) {
                float s = 0;
                for (int j = 0; j < k; j++) s += ms->mu[((size_t)j * n + r) * out + o];
                next[r * O + o] = obs[r * O + o] + s * inv;
            }
            if (mreward) {
                float s = 0;
                if (out > O)
                    for (int j = 0; j < k; j++) s += ms->mu[((size_t)j * n + r) * out + O];
                mreward[r] = s * inv;
            }
        }
        return;
    }
    /* per-row member: counting sort of the rows by member */
    memset(ms->count, 0, (size_t)(k + 1) * sizeof(int));
    for (size_t r = 0; r < n; r++) ms->count[row_member[r] + 1]++;
    for (int j = 0; j < k; j++) ms->count[j + 1] += ms->count[j];
    for (size_t r = 0; r < n; r++) {
        int pos = ms->count[row_member[r]]++;
        ms->order[pos] = (int)r;
    }
    /* count[j] is now the end of member j's block; its start is count[j-1] */
    for (int j = 0; j < k; j++) {
        int start = j ? ms->count[j - 1] : 0, end = ms->count[j];
        if (end <= start) continue;
        for (int p = start; p < end; p++) {
            int r = ms->order[p];
            float *x = ms->x + (size_t)p * in;
            memcpy(x, obs + (size_t)r * O, (size_t)O * sizeof(float));
            memcpy(x + O, act + (size_t)r * A, (size_t)A * sizeof(float));
        }
        int m = members ? members[j] : j;
        mb_ensemble_forward(e, ms->ens_ws, pool, &m, 1, ms->x + (size_t)start * in,
                            (size_t)(end - start), ms->mu + (size_t)start * out, NULL);
    }
    for (int p = 0; p < (int)n; p++) {
        int r = ms->order[p];
        const float *mu = ms->mu + (size_t)p * out;
        for (int o = 0; o < O; o++) next[(size_t)r * O + o] = obs[(size_t)r * O + o] + mu[o];
        if (mreward) mreward[r] = out > O ? mu[O] : 0.0f;
    }
}
