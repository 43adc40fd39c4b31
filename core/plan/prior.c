/* prior.c: MPC with a learned value and a policy prior (TD-MPC / TD-MPC2
 * style, for CEM, MPPI and iCEM):
 *   terminal value: every particle's return gets discount^H V(s_H) when it
 *     is still alive after the horizon, so a short plan sees past its end;
 *   policy samples: K action sequences are rolled out once per call from
 *     the start state through the model with the policy (the first with its
 *     deterministic action, the others sampled), deterministically through
 *     the mean over the call's members (or the known step), and every
 *     iteration's last K candidates are replaced by them, so the search
 *     always considers what the policy would do.
 * The networks come with the dynamics (mb_dynamics.value / .policy); this
 * file owns their scratch (allocated with the plan workspace, never during
 * a plan).
 * Not for: training them (learn/). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/carve.h"
#include "plan/plan_ws.h"

#define PRIOR_V_ROWS 256 /* value inference chunk */

struct plan_prior {
    int has_value, K;
    mb_mlp_spec vspec;       /* what vw was made for */
    mb_policy_spec pspec;    /* what pw was made for */
    mb_mlp_ws *vw;
    mb_policy_ws *pw;
    void *block;             /* the arrays below (prior__layout) */
    float *v;                /* (PRIOR_V_ROWS) */
    int H, O, A, in, out, k_max;
    float *seq;              /* (K, H, A) the policy's sequences */
    float *S, *next, *act, *eps, *x, *mu; /* (K, O), (K, O), (K, A), (K, A), (k, K, in), (k, K, out) */
};

/* The prior's sizes and arrays for cfg, the model (spec, NULL: known
 * dynamics; dims) and the networks (vspec: the value's MLP, pspec: the
 * policy; NULL: none): with p, its sizes are set; with block too, its
 * arrays point into it. *block_bytes gets the block's size. Returns the
 * bytes plan_prior_new allocates (0: it makes nothing), the same code
 * sizing and carving. */
static size_t prior__layout(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim,
                            int act_dim, const mb_mlp_spec *vspec, const mb_policy_spec *pspec,
                            plan_prior *p, char *block, size_t *block_bytes) {
    *block_bytes = 0;
    int want_v = cfg->terminal_value && vspec, K = pspec ? cfg->policy_samples : 0;
    if (!want_v && K <= 0) return 0;
    size_t Kz = K > 0 ? (size_t)K : 0, H = (size_t)cfg->horizon, O = (size_t)obs_dim, A = (size_t)act_dim;
    size_t in = O + A, out = spec ? (size_t)mb_ensemble_out_dim(spec) : O;
    size_t k_max = spec ? (size_t)spec->members : 1;
    if (p) {
        p->has_value = want_v;
        p->K = K > 0 ? K : 0;
        p->H = cfg->horizon;
        p->O = obs_dim;
        p->A = act_dim;
        p->in = (int)in;
        p->out = (int)out;
        p->k_max = (int)k_max;
    }
    size_t sub = 0;
    plan_carver c = {block, 0};
    if (want_v) {
        PLAN_CARVE(&c, p, v, PRIOR_V_ROWS);
        sub += mb_mlp_ws_bytes(vspec, PRIOR_V_ROWS);
    }
    if (K > 0) {
        PLAN_CARVE(&c, p, seq, Kz * H * A);
        PLAN_CARVE(&c, p, S, Kz * O);
        PLAN_CARVE(&c, p, next, Kz * O);
        PLAN_CARVE(&c, p, act, Kz * A);
        PLAN_CARVE(&c, p, eps, Kz * A);
        PLAN_CARVE(&c, p, x, k_max * Kz * in);
        PLAN_CARVE(&c, p, mu, k_max * Kz * out);
        sub += mb_policy_ws_bytes(pspec, Kz < 256 ? Kz : 256);
    }
    *block_bytes = c.off;
    return sizeof(plan_prior) + c.off + sub;
}

size_t plan_prior_bytes(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim, int act_dim,
                        const mb_mlp_spec *value, const mb_policy_spec *policy) {
    size_t block;
    return prior__layout(cfg, spec, obs_dim, act_dim, value, policy, NULL, NULL, &block);
}

plan_prior *plan_prior_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn, int *failed) {
    *failed = 0;
    const mb_ensemble_spec *spec = dyn->ens ? &dyn->ens->spec : NULL;
    const mb_mlp_spec *vspec = dyn->value ? &dyn->value->mlp : NULL;
    const mb_policy_spec *pspec = dyn->policy ? &dyn->policy->spec : NULL;
    size_t block;
    if (!prior__layout(cfg, spec, dyn->obs_dim, dyn->act_dim, vspec, pspec, NULL, NULL, &block)) return NULL;
    plan_prior *p = calloc(1, sizeof *p);
    if (!p) goto fail;
    prior__layout(cfg, spec, dyn->obs_dim, dyn->act_dim, vspec, pspec, p, NULL, &block);
    p->block = calloc(1, block);
    if (!p->block) goto fail;
    prior__layout(cfg, spec, dyn->obs_dim, dyn->act_dim, vspec, pspec, p, p->block, &block);
    if (p->has_value) {
        p->vspec = *vspec;
        if (!(p->vw = mb_mlp_ws_new(&p->vspec, PRIOR_V_ROWS))) goto fail;
    }
    if (p->K > 0) {
        p->pspec = *pspec;
        size_t Kz = (size_t)p->K;
        if (!(p->pw = mb_policy_ws_new(&p->pspec, Kz < 256 ? Kz : 256))) goto fail;
    }
    return p;
fail:
    *failed = 1;
    plan_prior_free(p);
    return NULL;
}

void plan_prior_free(plan_prior *p) {
    if (!p) return;
    mb_mlp_ws_free(p->vw);
    mb_policy_ws_free(p->pw);
    free(p->block);
    free(p);
}

int plan_prior_fits(const plan_prior *p, const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    int want_v = cfg->terminal_value && dyn->value, K = dyn->policy ? cfg->policy_samples : 0;
    if (!want_v && K <= 0) return 1; /* a prior it will not use is harmless */
    if (!p) return 0;
    if (want_v && (!p->has_value || memcmp(&p->vspec, &dyn->value->mlp, sizeof p->vspec))) return 0;
    if (K > 0 && (p->K != K || p->H != cfg->horizon || memcmp(&p->pspec, &dyn->policy->spec, sizeof p->pspec)))
        return 0;
    return 1;
}

void plan_prior_rollout(plan_run *run) {
    plan_prior *p = run->ws->prior;
    const mb_dynamics *dyn = run->dyn;
    const size_t K = (size_t)p->K, O = (size_t)p->O, A = (size_t)p->A, I = (size_t)p->in, U = (size_t)p->out;
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE ^ 0x9e11ull);
    for (size_t r = 0; r < K; r++) memcpy(p->S + r * O, run->obs, O * sizeof(float));
    int k = run->k > 0 ? run->k : 1;
    mb_ens_ws *ews = run->ws->ens_ws;
    size_t chunk = dyn->ens ? mb_ens_ws_rows(ews) : K;
    for (int t = 0; t < p->H; t++) {
        for (size_t i = 0; i < K * A; i++) p->eps[i] = i < A ? 0.0f : plan_normal(&g, run->ws);
        mb_policy_act(dyn->policy, p->pw, p->S, K, p->eps, p->act, NULL);
        for (size_t r = 0; r < K; r++) {
            float *dst = p->seq + (r * (size_t)p->H + (size_t)t) * A;
            for (size_t a = 0; a < A; a++) {
                float v = p->act[r * A + a], lo = dyn->act_low[a], hi = dyn->act_high[a];
                dst[a] = v < lo ? lo : v > hi ? hi : v;
            }
        }
        if (t == p->H - 1) break;
        if (dyn->known) {
            dyn->known->step(K, p->S, p->act, p->next, NULL);
        } else {
            /* the mean over the call's members, K rows at a time per chunk */
            for (size_t r0 = 0; r0 < K; r0 += chunk) {
                size_t nr = K - r0 < chunk ? K - r0 : chunk;
                for (int j = 0; j < k; j++)
                    for (size_t r = 0; r < nr; r++) {
                        float *x = p->x + ((size_t)j * nr + r) * I;
                        memcpy(x, p->S + (r0 + r) * O, O * sizeof(float));
                        memcpy(x + O, p->act + (r0 + r) * A, A * sizeof(float));
                    }
                mb_ensemble_forward(dyn->ens, ews, NULL, run->members, k, p->x, nr, p->mu, NULL);
                for (size_t r = 0; r < nr; r++)
                    for (size_t o = 0; o < O; o++) {
                        float m = 0;
                        for (int j = 0; j < k; j++) m += p->mu[((size_t)j * nr + r) * U + o];
                        p->next[(r0 + r) * O + o] = p->S[(r0 + r) * O + o] + m / (float)k;
                    }
            }
        }
        memcpy(p->S, p->next, K * O * sizeof(float));
    }
}

void plan_prior_seed(plan_run *run, int n_cand) {
    plan_prior *p = run->ws->prior;
    if (!p || p->K <= 0 || run->cfg->policy_samples <= 0) return;
    int K = p->K < n_cand ? p->K : n_cand;
    size_t seq = (size_t)p->H * (size_t)p->A;
    for (int i = 0; i < K; i++)
        memcpy(run->ws->cand + (size_t)(n_cand - K + i) * seq, p->seq + (size_t)i * seq, seq * sizeof(float));
}

void plan_prior_terminal(plan_run *run, size_t rows, float disc) {
    plan_prior *p = run->ws->prior;
    mb_plan_ws *ws = run->ws;
    const size_t O = (size_t)ws->obs_dim;
    for (size_t r0 = 0; r0 < rows; r0 += PRIOR_V_ROWS) {
        size_t nr = rows - r0 < PRIOR_V_ROWS ? rows - r0 : PRIOR_V_ROWS;
        mb_vnet_forward(run->dyn->value, p->vw, ws->S + r0 * O, nr, p->v);
        for (size_t r = 0; r < nr; r++)
            if (ws->alive[r0 + r]) ws->ret[r0 + r] += disc * p->v[r];
    }
}
