/* lqr_flm.c: LQR with fitted local linear models (Levine and Abbeel 2014;
 * the lectures' "LQR-FLM"), planner.h's MB_PLAN_LQR_FLM; the seam is
 * plan_methods.h. The dynamics are sampled, never differentiated: it works
 * for known models and for the ensemble as a black box alike.
 *
 * The controller is linear-Gaussian: u_t = u^_t + K_t (x_t - x^_t) +
 * N(0, S_t). A call starts from u^ = the warm start (or the middle of the
 * bounds), K = 0, S = (init_std x half range)^2 I, then each iteration:
 *   1. samples `population` rollouts of the controller (actions clipped
 *      to the bounds) through the dynamics: known, or the ensemble with one
 *      member drawn per rollout (its mean: the members' disagreement is the
 *      model's uncertainty);
 *   2. fits per step x_{t+1} = A_t x_t + B_t u_t + c_t by ridge regression
 *      on the samples, centred at the sample means (x-_t, u-_t), each
 *      feature's penalty fit_reg x samples x its variance; the model's own
 *      reward (learned head or known reward) is fitted linearly the same
 *      way (its gradient; no curvature: say so), the declared terms are
 *      expanded exactly (reward_quad.h) at the sample means;
 *   3. updates the controller under a KL bound: minimising
 *      E[cost] + eta E[-log p_old(u|x)] - eta H(p) is an LQR with the cost
 *      plus eta/2 (u - K_old x - k_old)' S_old^-1 (...), solved by
 *      mb_lqr_backward in deviations from the sample means; the new
 *      controller is (K, k) with covariance S = eta Quu^-1 (plus a floor
 *      of (1e-2 half range)^2, so the next samples still spread), k boxed so
 *      the new nominal stays inside the action bounds (clamped controls
 *      get no feedback, as in iLQR). eta is found by
 *      bisection in log space (24 steps, [1e-6, 1e6] x the cost scale) so
 *      that the KL divergence from the old controller, summed over the
 *      horizon along the state distribution the fitted dynamics propagate
 *      (mean and covariance from x_0), is at most kl_step x horizon.
 * The plan is the controller's mean rolled through the mean dynamics with
 * its feedback (the controls it would apply), and is the warm start.
 * The deadline (mb_plan_ctl.stop) is polled before every iteration, every
 * sampling step and every step of the bisection: a cut iteration is
 * dropped (the controller stays the last one updated) and the plan is
 * that controller's mean rollout (H one-row steps), its predicted return
 * the discounted return along it; stopped before the first samples were
 * rolled out there is no answer (MB_ECANCELED).
 * No allocation in plan_flm_run. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/lqr.h"
#include "plan/model_step.h"
#include "plan/plan_methods.h"
#include "plan/reward_quad.h"

struct plan_flm_ws {
    int H, O, A, d, M;
    mb_lqr_ws *lqr;
    plan_mstep *ms;
    void *block;                  /* the arrays below (flm__layout) */
    float *Xs, *Us, *Rs;          /* (M, H + 1, O), (M, H, A), (M, H) samples */
    float *sx, *sa, *sn, *smr, *srw; /* (M, O), (M, A), (M, O), (M), (M) */
    uint8_t *alive;               /* (M) */
    int *rmem;                    /* (M) */
    double *xbar, *ubar;          /* (H + 1, O), (H, A) sample means */
    double *Am, *Bm;              /* (H, O, O), (H, O, A) */
    double *gm;                   /* (H, d) fitted model-reward gradient */
    double *Hc, *gc;              /* (H + 1, d, d), (H + 1, d) cost expansion (declared terms) */
    double *Q, *R, *N, *q, *r;    /* the augmented LQR's cost */
    double *K, *k, *Quu;          /* (H, A, O), (H, A), (H, A, A) */
    /* controller: absolute nominal and gains, covariance */
    double *cu, *cx, *cK, *cS;    /* (H, A), (H + 1, O), (H, A, O), (H, A, A) */
    double *cL;                   /* (H, A, A) Cholesky factor of cS */
    double *oKd, *okd, *oSi;      /* old controller in deviations: (H, A, O), (H, A), (H, A, A) S^-1 */
    double *G, *rhs, *zc;         /* (d, d), (d, O + 1), (d) regression */
    double *mu, *Sx, *T1, *T2;    /* (O), (O, O), (O, O), (O, O) KL propagation */
    double *Fm, *tm, *tm2;        /* (O, O) A + B K, (A), (A) */
    double *Kb, *kb, *Sb;         /* (H, A, O), (H, A), (H, A, A): the candidate controller */
    double *blo, *bhi;            /* (H, A) the action bounds minus the sample means */
    double *LA;                   /* (A, A) Cholesky scratch */
    double smin[MB_MAX_ACT_DIM];  /* the covariance floor's std: 1e-2 x half range */
};

/* The workspace's sizes and arrays for cfg and sh: with w, its sizes are
 * set; with block too, its arrays point into it. *block_bytes gets the
 * block's size. Returns the bytes plan_flm_ws_new allocates (struct,
 * block, LQR and model-step workspaces), the same code sizing and
 * carving. */
static size_t flm__layout(const mb_planner_cfg *cfg, const plan_shape *sh, plan_flm_ws *w, char *block,
                          size_t *block_bytes) {
    const int H = cfg->horizon, O = sh->obs_dim, A = sh->act_dim, d = O + A, M = cfg->population;
    if (w) {
        w->H = H; w->O = O; w->A = A; w->d = d; w->M = M;
    }
    size_t h = (size_t)H, m = (size_t)M;
    plan_carver c = {block, 0};
#define FLM_F(f, n) PLAN_CARVE(&c, w, f, n)
    FLM_F(Xs, m * (h + 1) * O); FLM_F(Us, m * h * A); FLM_F(Rs, m * h);
    FLM_F(sx, m * O); FLM_F(sa, m * A); FLM_F(sn, m * O); FLM_F(smr, m); FLM_F(srw, m);
    FLM_F(alive, m); FLM_F(rmem, m);
    FLM_F(xbar, (h + 1) * O); FLM_F(ubar, h * A); FLM_F(Am, h * O * O); FLM_F(Bm, h * O * A);
    FLM_F(gm, h * d); FLM_F(Hc, (h + 1) * d * d); FLM_F(gc, (h + 1) * d);
    FLM_F(Q, (h + 1) * O * O); FLM_F(R, h * A * A); FLM_F(N, h * A * O); FLM_F(q, (h + 1) * O);
    FLM_F(r, h * A); FLM_F(K, h * A * O); FLM_F(k, h * A); FLM_F(Quu, h * A * A);
    FLM_F(cu, h * A); FLM_F(cx, (h + 1) * O); FLM_F(cK, h * A * O); FLM_F(cS, h * A * A);
    FLM_F(cL, h * A * A); FLM_F(oKd, h * A * O); FLM_F(okd, h * A); FLM_F(oSi, h * A * A);
    FLM_F(G, (size_t)d * d); FLM_F(rhs, (size_t)d * (O + 1)); FLM_F(zc, (size_t)d);
    FLM_F(mu, (size_t)O); FLM_F(Sx, (size_t)O * O); FLM_F(T1, (size_t)O * O); FLM_F(T2, (size_t)O * O);
    FLM_F(Fm, (size_t)O * O); FLM_F(tm, (size_t)A); FLM_F(tm2, (size_t)A);
    FLM_F(Kb, h * A * O); FLM_F(kb, h * A); FLM_F(Sb, h * A * A); FLM_F(blo, h * A); FLM_F(bhi, h * A); FLM_F(LA, (size_t)A * A);
#undef FLM_F
    *block_bytes = c.off;
    return sizeof(plan_flm_ws) + c.off + mb_lqr_ws_bytes(O, A) + plan_mstep_bytes(sh->spec, m);
}

size_t plan_flm_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh) {
    size_t block;
    return flm__layout(cfg, sh, NULL, NULL, &block);
}

plan_flm_ws *plan_flm_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    plan_flm_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    plan_shape sh = plan_shape_of(dyn);
    size_t block;
    flm__layout(cfg, &sh, w, NULL, &block);
    w->block = calloc(1, block);
    w->lqr = mb_lqr_ws_new(w->O, w->A);
    w->ms = plan_mstep_new(dyn, (size_t)w->M);
    if (!w->block || !w->lqr || !w->ms) {
        plan_flm_ws_free(w);
        return NULL;
    }
    flm__layout(cfg, &sh, w, w->block, &block);
    return w;
}

void plan_flm_ws_free(plan_flm_ws *w) {
    if (!w) return;
    mb_lqr_ws_free(w->lqr);
    plan_mstep_free(w->ms);
    free(w->block);
    free(w);
}

/* Inverse of an SPD matrix S (n, n) into out through its Cholesky factor
 * (L in scratch L (n, n), col (n)); -1 if not positive definite. */
static int flm__spd_inv(const double *S, int n, double *L, double *col, double *out) {
    memcpy(L, S, (size_t)n * n * sizeof(double));
    if (mb_chol(L, n)) return -1;
    for (int j = 0; j < n; j++) {
        for (int i = 0; i < n; i++) col[i] = (double)(i == j);
        mb_chol_solve(L, n, col, col);
        for (int i = 0; i < n; i++) out[i * n + j] = col[i];
    }
    return 0;
}

/* 1. samples from the controller (cu, cx, cK, cL) */
static void flm__sample(plan_run *run, plan_flm_ws *w, plan_gen *g) {
    const int H = w->H, O = w->O, A = w->A, M = w->M;
    const mb_dynamics *dyn = run->dyn;
    const mb_reward_spec *rw = run->rw;
    const int kmem = dyn->ens ? run->k : 1;
    const size_t sx = (size_t)(H + 1) * O, su = (size_t)H * A;
    for (int s = 0; s < M; s++) {
        memcpy(w->Xs + s * sx, run->obs, (size_t)O * sizeof(float));
        w->rmem[s] = (int)(((plan_u64(g) >> 32) * (uint64_t)kmem) >> 32);
    }
    for (int t = 0; t < H; t++) {
        if (t > 0 && plan_should_stop(run)) return; /* the samples are void */
        for (int s = 0; s < M; s++) {
            const float *x = w->Xs + s * sx + (size_t)t * O;
            float *u = w->Us + s * su + (size_t)t * A;
            double e[MB_MAX_ACT_DIM];
            for (int i = 0; i < A; i++) e[i] = plan_normal(g, run->ws);
            for (int i = 0; i < A; i++) {
                double v = w->cu[t * A + i];
                for (int j = 0; j < O; j++) v += w->cK[((size_t)t * A + i) * O + j] * ((double)x[j] - w->cx[t * O + j]);
                for (int j = 0; j <= i; j++) v += w->cL[((size_t)t * A + i) * A + j] * e[j];
                u[i] = plan_methods_clip((float)v, dyn->act_low[i], dyn->act_high[i]);
            }
            memcpy(w->sx + (size_t)s * O, x, (size_t)O * sizeof(float));
            memcpy(w->sa + (size_t)s * A, u, (size_t)A * sizeof(float));
        }
        plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k, dyn->ens ? w->rmem : NULL, w->sx,
                       w->sa, (size_t)M, w->sn, w->smr);
        run->model_rows += (double)M;
        for (int s = 0; s < M; s++) {
            memcpy(w->Xs + s * sx + (size_t)(t + 1) * O, w->sn + (size_t)s * O, (size_t)O * sizeof(float));
            w->Rs[(size_t)s * H + t] = rw->use_learned ? w->smr[s] : 0.0f;
        }
    }
}

/* 2. fits A_t, B_t and the model reward's gradient; the cost expansion. */
static void flm__fit(plan_run *run, plan_flm_ws *w) {
    const int H = w->H, O = w->O, A = w->A, d = w->d, M = w->M;
    const size_t sx = (size_t)(H + 1) * O, su = (size_t)H * A;
    const double reg = run->cfg->fit_reg;
    for (int t = 0; t <= H; t++)
        for (int i = 0; i < O; i++) {
            double s = 0;
            for (int m = 0; m < M; m++) s += w->Xs[m * sx + (size_t)t * O + i];
            w->xbar[t * O + i] = s / M;
        }
    for (int t = 0; t < H; t++)
        for (int i = 0; i < A; i++) {
            double s = 0;
            for (int m = 0; m < M; m++) s += w->Us[m * su + (size_t)t * A + i];
            w->ubar[t * A + i] = s / M;
        }
    for (int t = 0; t < H; t++) {
        memset(w->G, 0, (size_t)d * d * sizeof(double));
        memset(w->rhs, 0, (size_t)d * (O + 1) * sizeof(double));
        double rbar = 0;
        for (int m = 0; m < M; m++) rbar += w->Rs[(size_t)m * H + t];
        rbar /= M;
        for (int m = 0; m < M; m++) {
            for (int i = 0; i < O; i++) w->zc[i] = w->Xs[m * sx + (size_t)t * O + i] - w->xbar[t * O + i];
            for (int i = 0; i < A; i++) w->zc[O + i] = w->Us[m * su + (size_t)t * A + i] - w->ubar[t * A + i];
            for (int i = 0; i < d; i++) {
                for (int j = 0; j <= i; j++) w->G[i * d + j] += w->zc[i] * w->zc[j];
                for (int o = 0; o < O; o++)
                    w->rhs[i * (O + 1) + o] +=
                        w->zc[i] * ((double)w->Xs[m * sx + (size_t)(t + 1) * O + o] - w->xbar[(t + 1) * O + o]);
                w->rhs[i * (O + 1) + O] += w->zc[i] * ((double)w->Rs[(size_t)m * H + t] - rbar);
            }
        }
        for (int i = 0; i < d; i++) {
            for (int j = 0; j < i; j++) w->G[j * d + i] = w->G[i * d + j];
            /* ridge relative to each feature's spread (and a floor) */
            w->G[i * d + i] += reg * w->G[i * d + i] + 1e-8 * M;
        }
        if (mb_chol(w->G, d)) {
            /* degenerate samples: no information this step */
            memset(w->Am + (size_t)t * O * O, 0, (size_t)O * O * sizeof(double));
            for (int i = 0; i < O; i++) w->Am[(size_t)t * O * O + i * O + i] = 1.0;
            memset(w->Bm + (size_t)t * O * A, 0, (size_t)O * A * sizeof(double));
            memset(w->gm + (size_t)t * d, 0, (size_t)d * sizeof(double));
            continue;
        }
        for (int o = 0; o <= O; o++) {
            for (int i = 0; i < d; i++) w->zc[i] = w->rhs[i * (O + 1) + o];
            mb_chol_solve(w->G, d, w->zc, w->zc);
            if (o == O) {
                for (int i = 0; i < d; i++) w->gm[(size_t)t * d + i] = w->zc[i];
            } else {
                for (int j = 0; j < O; j++) w->Am[(size_t)t * O * O + o * O + j] = w->zc[j];
                for (int j = 0; j < A; j++) w->Bm[(size_t)t * O * A + o * A + j] = w->zc[O + j];
            }
        }
    }
    /* cost = -reward, expanded at the sample means: Hc, gc per step over
     * (x_t, u_t) (index H: the last state only) */
    memset(w->Hc, 0, (size_t)(H + 1) * d * d * sizeof(double));
    memset(w->gc, 0, (size_t)(H + 1) * d * sizeof(double));
    double disc = 1.0;
    float xs[MB_MAX_OBS_DIM], us[MB_MAX_ACT_DIM];
    double gs[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM];
    double *Hs = w->T1; /* (O, O) scratch */
    for (int t = 0; t < H; t++) {
        double *Ht = w->Hc + (size_t)t * d * d, *gt = w->gc + (size_t)t * d;
        for (int i = 0; i < d; i++) gt[i] -= disc * w->gm[(size_t)t * d + i];
        for (int i = 0; i < A; i++) us[i] = (float)w->ubar[t * A + i];
        /* action terms are diagonal (action_l2): accumulate the gradient and
         * the diagonal into Ht directly */
        for (int i = 0; i < run->rw->n_terms; i++) {
            const mb_reward_term *tm = &run->rw->terms[i];
            if (tm->type != MB_TERM_ACTION_L2) continue;
            for (int j = 0; j < A; j++) {
                gt[O + j] += disc * 2.0 * tm->weight * us[j];
                Ht[(O + j) * d + O + j] += disc * 2.0 * tm->weight;
            }
        }
        /* state terms of x_{t+1}: attributed to step t + 1 */
        double *Hn = w->Hc + (size_t)(t + 1) * d * d, *gn = w->gc + (size_t)(t + 1) * d;
        for (int i = 0; i < O; i++) xs[i] = (float)w->xbar[(t + 1) * O + i];
        memset(Hs, 0, (size_t)O * O * sizeof(double));
        for (int i = 0; i < O; i++) gs[i] = 0.0;
        mb_reward_state_quad(run->rw, O, xs, -disc, gs, Hs);
        for (int i = 0; i < O; i++) {
            gn[i] += gs[i];
            for (int j = 0; j < O; j++) Hn[i * d + j] += Hs[i * O + j];
        }
        disc *= run->rw->discount;
    }
}

/* The augmented LQR for multiplier eta, then the new controller (in
 * deviations: K, k; covariance Sb) and its KL from the old one along the
 * state distribution of the fitted dynamics. Returns the KL, or -1 if the
 * backward pass failed. */
static double flm__solve(plan_flm_ws *w, double eta) {
    const int H = w->H, O = w->O, A = w->A, d = w->d;
    for (int t = 0; t <= H; t++) {
        const double *Ht = w->Hc + (size_t)t * d * d, *gt = w->gc + (size_t)t * d;
        double *Qt = w->Q + (size_t)t * O * O, *qt = w->q + (size_t)t * O;
        for (int i = 0; i < O; i++) {
            qt[i] = gt[i];
            for (int j = 0; j < O; j++) Qt[i * O + j] = Ht[i * d + j];
        }
        if (t == H) break;
        double *Rt = w->R + (size_t)t * A * A, *Nt = w->N + (size_t)t * A * O, *rt = w->r + (size_t)t * A;
        const double *Si = w->oSi + (size_t)t * A * A, *Ko = w->oKd + (size_t)t * A * O, *ko = w->okd + (size_t)t * A;
        for (int i = 0; i < A; i++) {
            rt[i] = gt[O + i];
            for (int j = 0; j < A; j++) Rt[i * A + j] = Ht[(O + i) * d + O + j] + eta * Si[i * A + j];
            for (int j = 0; j < O; j++) Nt[i * O + j] = Ht[(O + i) * d + j];
            for (int j = 0; j < A; j++) rt[i] -= eta * Si[i * A + j] * ko[j];
        }
        /* + eta/2 (u - Ko x - ko)' Si (u - Ko x - ko): N -= eta Si Ko,
         * Q += eta Ko' Si Ko, q += eta Ko' Si ko */
        for (int i = 0; i < A; i++)
            for (int j = 0; j < O; j++) {
                double s = 0;
                for (int l = 0; l < A; l++) s += Si[i * A + l] * Ko[l * O + j];
                Nt[i * O + j] -= eta * s;
            }
        for (int i = 0; i < O; i++) {
            for (int j = 0; j < O; j++) {
                double s = 0;
                for (int a = 0; a < A; a++)
                    for (int b = 0; b < A; b++) s += Ko[a * O + i] * Si[a * A + b] * Ko[b * O + j];
                Qt[i * O + j] += eta * s;
            }
            double s = 0;
            for (int a = 0; a < A; a++)
                for (int b = 0; b < A; b++) s += Ko[a * O + i] * Si[a * A + b] * ko[b];
            qt[i] += eta * s;
        }
    }
    mb_lqr_problem pb = {.n = O, .m = A, .H = H, .A = w->Am, .B = w->Bm, .Q = w->Q, .R = w->R,
                         .N = w->N, .q = w->q, .r = w->r, .lo = w->blo, .hi = w->bhi};
    mb_lqr_solution sol = {.K = w->K, .k = w->k, .Quu = w->Quu};
    if (mb_lqr_backward(&pb, 0.0, w->lqr, &sol, NULL, 0) != MB_OK) return -1.0;
    /* covariance eta Quu^-1 and the KL along the fitted state distribution */
    double kl = 0.0;
    memset(w->mu, 0, (size_t)O * sizeof(double)); /* deviations from x-_0 = x_0 */
    memset(w->Sx, 0, (size_t)O * O * sizeof(double));
    for (int t = 0; t < H; t++) {
        double *Sb = w->Sb + (size_t)t * A * A;
        if (flm__spd_inv(w->Quu + (size_t)t * A * A, A, w->LA, w->tm, Sb)) return -1.0;
        for (int i = 0; i < A * A; i++) Sb[i] *= eta;
        /* a floor on the exploration: the next fit needs spread in u */
        for (int i = 0; i < A; i++) Sb[i * A + i] += w->smin[i] * w->smin[i];
        const double *K = w->K + (size_t)t * A * O, *k = w->k + (size_t)t * A;
        const double *Si = w->oSi + (size_t)t * A * A, *Ko = w->oKd + (size_t)t * A * O, *ko = w->okd + (size_t)t * A;
        /* KL(N(Kx + k, Sb) || N(Ko x + ko, So)) averaged over x ~ N(mu, Sx):
         * 1/2 [tr(Si Sb) - A + log det So - log det Sb + E (dK x + dk)' Si (dK x + dk)] */
        double tr = 0, e = 0;
        for (int i = 0; i < A; i++)
            for (int j = 0; j < A; j++) tr += Si[i * A + j] * Sb[j * A + i];
        /* log det: So = Si^-1 so log det So = -log det Si */
        double *L = w->LA;
        memcpy(L, Si, (size_t)A * A * sizeof(double));
        if (mb_chol(L, A)) return -1.0;
        double ldSi = 0;
        for (int i = 0; i < A; i++) ldSi += 2.0 * log(L[i * A + i]);
        memcpy(L, Sb, (size_t)A * A * sizeof(double));
        if (mb_chol(L, A)) return -1.0;
        double ldSb = 0;
        for (int i = 0; i < A; i++) ldSb += 2.0 * log(L[i * A + i]);
        /* m = dK mu + dk; E = m' Si m + tr(dK' Si dK Sx) */
        for (int i = 0; i < A; i++) {
            double s = k[i] - ko[i];
            for (int j = 0; j < O; j++) s += (K[i * O + j] - Ko[i * O + j]) * w->mu[j];
            w->tm[i] = s;
        }
        for (int i = 0; i < A; i++)
            for (int j = 0; j < A; j++) e += w->tm[i] * Si[i * A + j] * w->tm[j];
        for (int a = 0; a < A; a++)
            for (int b = 0; b < A; b++) {
                double sab = Si[a * A + b];
                if (sab == 0.0) continue;
                for (int i = 0; i < O; i++) {
                    double dKa = K[a * O + i] - Ko[a * O + i];
                    if (dKa == 0.0) continue;
                    for (int j = 0; j < O; j++) e += sab * dKa * w->Sx[i * O + j] * (K[b * O + j] - Ko[b * O + j]);
                }
            }
        kl += 0.5 * (tr - A - ldSi - ldSb + e);
        /* propagate: mu' = A mu + B (K mu + k); Sx' = F Sx F' + B Sb B', F = A + B K */
        const double *At = w->Am + (size_t)t * O * O, *Bt = w->Bm + (size_t)t * O * A;
        for (int i = 0; i < O; i++)
            for (int j = 0; j < O; j++) {
                double s = At[i * O + j];
                for (int a = 0; a < A; a++) s += Bt[i * A + a] * K[a * O + j];
                w->Fm[i * O + j] = s;
            }
        for (int a = 0; a < A; a++) {
            double s = k[a];
            for (int j = 0; j < O; j++) s += K[a * O + j] * w->mu[j];
            w->tm2[a] = s;
        }
        double mun[MB_MAX_OBS_DIM];
        for (int i = 0; i < O; i++) {
            double s = 0;
            for (int j = 0; j < O; j++) s += At[i * O + j] * w->mu[j];
            for (int a = 0; a < A; a++) s += Bt[i * A + a] * w->tm2[a];
            mun[i] = s;
        }
        memcpy(w->mu, mun, (size_t)O * sizeof(double));
        for (int i = 0; i < O; i++)
            for (int j = 0; j < O; j++) {
                double s = 0;
                for (int l = 0; l < O; l++) s += w->Fm[i * O + l] * w->Sx[l * O + j];
                w->T1[i * O + j] = s;
            }
        for (int i = 0; i < O; i++)
            for (int j = 0; j < O; j++) {
                double s = 0;
                for (int l = 0; l < O; l++) s += w->T1[i * O + l] * w->Fm[j * O + l];
                for (int a = 0; a < A; a++)
                    for (int b = 0; b < A; b++) s += Bt[i * A + a] * Sb[a * A + b] * Bt[j * A + b];
                w->T2[i * O + j] = s;
            }
        memcpy(w->Sx, w->T2, (size_t)O * O * sizeof(double));
    }
    memcpy(w->Kb, w->K, (size_t)H * A * O * sizeof(double));
    memcpy(w->kb, w->k, (size_t)H * A * sizeof(double));
    return kl;
}

void plan_flm_run(plan_run *run, plan_flm_ws *w, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    const mb_dynamics *dyn = run->dyn;
    const int H = w->H, O = w->O, A = w->A;
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    memset(w->cK, 0, (size_t)H * A * O * sizeof(double));
    memset(w->cx, 0, (size_t)(H + 1) * O * sizeof(double));
    memset(w->cS, 0, (size_t)H * A * A * sizeof(double));
    memset(w->cL, 0, (size_t)H * A * A * sizeof(double));
    for (int t = 0; t < H; t++)
        for (int i = 0; i < A; i++) {
            float lo = dyn->act_low[i], hi = dyn->act_high[i];
            w->cu[t * A + i] = warm ? plan_methods_clip(run->state->mean[t * A + i], lo, hi) : 0.5f * (lo + hi);
            double s = cfg->init_std * 0.5 * (hi - lo);
            if (!(s > 1e-6)) s = 1e-6;
            w->smin[i] = 1e-2 * 0.5 * (hi - lo) > 1e-6 ? 1e-2 * 0.5 * (hi - lo) : 1e-6;
            w->cS[((size_t)t * A + i) * A + i] = s * s;
            w->cL[((size_t)t * A + i) * A + i] = s;
        }
    double target = (double)cfg->kl_step * H;
    int sampled = 0; /* a sample batch finished: there is an answer */
    for (int it = 0; it < cfg->iterations; it++) {
        if (plan_should_stop(run)) break;
        flm__sample(run, w, &g);
        if (run->stopped) break;
        sampled = 1;
        flm__fit(run, w);
        /* the old controller in deviations from the sample means:
         * u - u- = Ko (x - x-) + ko, ko = cu + cK (x- - cx) - u- */
        int bad = 0;
        for (int t = 0; t < H && !bad; t++) {
            double *Ko = w->oKd + (size_t)t * A * O, *ko = w->okd + (size_t)t * A;
            memcpy(Ko, w->cK + (size_t)t * A * O, (size_t)A * O * sizeof(double));
            for (int i = 0; i < A; i++) {
                double s = w->cu[t * A + i] - w->ubar[t * A + i];
                for (int j = 0; j < O; j++) s += Ko[i * O + j] * (w->xbar[t * O + j] - w->cx[t * O + j]);
                ko[i] = s;
            }
            bad = flm__spd_inv(w->cS + (size_t)t * A * A, A, w->LA, w->tm, w->oSi + (size_t)t * A * A);
        }
        if (bad) break;
        /* the nominal stays inside the bounds: a box on k (clamped
         * controls get no feedback), or the samples would all sit on a
         * bound and the fit would lose B */
        for (int t = 0; t < H; t++)
            for (int i = 0; i < A; i++) {
                w->blo[t * A + i] = dyn->act_low[i] - w->ubar[t * A + i];
                w->bhi[t * A + i] = dyn->act_high[i] - w->ubar[t * A + i];
            }
        /* eta by bisection in log space: KL falls as eta grows */
        /* eta's range: the cost's scale over the old precision's */
        double scale = 0.0, prec = 0.0;
        for (int t = 0; t <= H; t++)
            for (int i = 0; i < w->d; i++) scale += fabs(w->gc[(size_t)t * w->d + i]);
        for (int t = 0; t < H; t++)
            for (int i = 0; i < A; i++) prec += w->oSi[((size_t)t * A + i) * A + i];
        scale = scale > 1e-9 ? scale / H : 1.0;
        prec = prec > 0.0 ? prec / ((double)H * A) : 1.0;
        scale /= prec;
        double lo = log(1e-6 * scale), hi = log(1e6 * scale), best_eta = -1.0;
        if (plan_should_stop(run)) break;
        double kl_hi = flm__solve(w, exp(hi));
        if (kl_hi < 0.0) break;
        if (kl_hi > target) {
            best_eta = exp(hi);
        } else {
            for (int b = 0; b < 24 && !plan_should_stop(run); b++) {
                double mid = 0.5 * (lo + hi);
                double kl = flm__solve(w, exp(mid));
                if (kl >= 0.0 && kl <= target) hi = mid;
                else lo = mid;
            }
            best_eta = exp(hi);
        }
        if (run->stopped || flm__solve(w, best_eta) < 0.0) break;
        /* the new controller: absolute nominal at the sample means */
        for (int t = 0; t < H; t++) {
            for (int i = 0; i < A; i++) w->cu[t * A + i] = w->ubar[t * A + i] + w->kb[t * A + i];
            memcpy(w->cK + (size_t)t * A * O, w->Kb + (size_t)t * A * O, (size_t)A * O * sizeof(double));
            memcpy(w->cS + (size_t)t * A * A, w->Sb + (size_t)t * A * A, (size_t)A * A * sizeof(double));
            memcpy(w->cL + (size_t)t * A * A, w->Sb + (size_t)t * A * A, (size_t)A * A * sizeof(double));
            if (mb_chol(w->cL + (size_t)t * A * A, A)) {
                bad = 1;
                break;
            }
        }
        memcpy(w->cx, w->xbar, (size_t)(H + 1) * O * sizeof(double));
        if (bad) break;
    }
    if (run->stopped && !sampled) return; /* no samples rolled out: no answer */
    /* the plan: the controller's mean with its feedback through the mean
     * dynamics; its return along the way (what a stopped call answers) */
    float x[MB_MAX_OBS_DIM], xn[MB_MAX_OBS_DIM], mr, rew;
    uint8_t alive = 1;
    double ret = 0.0, disc = 1.0;
    memcpy(x, run->obs, (size_t)O * sizeof(float));
    for (int t = 0; t < H; t++) {
        float *u = ws->best + (size_t)t * A;
        for (int i = 0; i < A; i++) {
            double v = w->cu[t * A + i];
            for (int j = 0; j < O; j++) v += w->cK[((size_t)t * A + i) * O + j] * ((double)x[j] - w->cx[t * O + j]);
            float mid = 0.5f * (dyn->act_low[i] + dyn->act_high[i]);
            u[i] = plan_methods_clip(isfinite(v) ? (float)v : mid, dyn->act_low[i], dyn->act_high[i]);
        }
        plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k, NULL, x, u, 1, xn, &mr);
        run->model_rows += dyn->ens ? run->k : 1;
        /* mb_reward_step as plan_evaluate applies it, one row */
        mb_reward_step(run->rw, O, A, 1, xn, u, run->rw->use_learned ? &mr : NULL, &alive, &rew);
        ret += disc * rew;
        disc *= run->rw->discount;
        memcpy(x, xn, (size_t)O * sizeof(float));
    }
    memcpy(ws->mean, ws->best, (size_t)H * A * sizeof(float));
    run->ret_mean = (float)ret;
    run->ret_std = 0.0f;
    run->have_best = 1;
    plan_methods_eval_best(run);
}
