/* grad.c: gradient-based shooting (planner.h's MB_PLAN_GRAD) and the
 * CEM-gradient hybrid (MB_PLAN_CEM_GRAD); the seam is plan_methods.h.
 *
 * The objective of a sequence U (H, act_dim) is the predicted return
 *   J(U) = sum_t discount^t [ model reward (x_t, u_t) + declared terms (x_{t+1}, u_t) ]
 * along the mean dynamics (the mean over the members used, or the known
 * step), termination ignored. Its gradient is backpropagation through
 * time: the adjoint lambda_t = dJ/dx_t runs backwards,
 *   dJ/du_t  = disc^t (d model reward/du + d terms/du) + (dx_{t+1}/du_t)' lambda_{t+1}
 *   lambda_t = disc^t d model reward/dx + (dx_{t+1}/dx_t)' lambda_{t+1}
 *              + disc^(t-1) d terms/dx_t   (t >= 1),
 * where for the ensemble the two products and the reward head's gradient
 * are one vector-Jacobian product per step (mb_ensemble_vjp with the
 * cotangent (lambda_{t+1}, disc^t) on (delta, reward)); for known dynamics
 * the Jacobians are central differences (2 (obs_dim + act_dim) extra rows
 * per sequence and step).
 *   grad: `population` sequences side by side, sequence 0 from the warm
 *     start (or the middle of the bounds), the others around it with
 *     init_std half-range Gaussian noise; grad_steps Adam steps (step lr x
 *     half range per action, beta 0.9 / 0.999), clipped to the bounds after
 *     each; the plan is the best sequence seen.
 *   cem_grad: PETS CEM (Gaussian per step, the variance capped by the
 *     distance to the bounds, 2-std truncation, alpha smoothing); in each
 *     iteration the grad_elites best candidates take grad_steps steps of
 *     gradient ascent with a line search (4 step sizes side by side, the
 *     largest the distribution's current std per entry along g / max|g|:
 *     the refinement narrows with the search; Adam's sign-like first steps
 *     wasted the budget here) and are scored again (plan_evaluate) before
 *     the refit; the plan is
 *     the better of the final mean and the best candidate scored.
 * Rows through the model are counted in model_rows (a VJP row as 2).
 * The deadline (mb_plan_ctl.stop) is polled before every gradient step
 * (and inside the evaluations): grad answers the best sequence seen, its
 * objective J as the predicted return (none before the first step:
 * MB_ECANCELED); cem_grad drops the iteration it cuts and answers the best
 * candidate scored so far (the refined ones and the best sampled of each
 * finished evaluation), none before the first evaluation finished.
 * No allocation in the run functions. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ensemble_grad.h"
#include "plan/model_step.h"
#include "plan/plan_methods.h"
#include "plan/reward_quad.h"

#define GR_LS 4 /* step sizes tried side by side in cem_grad's refinement */

struct plan_grad_ws {
    int H, O, A, d, G, is_ens, in, out, N;
    float *Uc, *Xc;        /* (G GR_LS, H, A), (G GR_LS, H + 1, O) line-search candidates */
    double *Jc;            /* (G GR_LS) */
    double *base;          /* (G) line-search start per sequence */
    plan_mstep *ms;
    mb_ens_grad_ws *eg;
    void *block;           /* the arrays (gr__layout) */
    float *X;              /* (G, H + 1, O) */
    float *U, *dU;         /* (G, H, A) */
    float *m, *v;          /* (G, H, A) Adam moments */
    float *bestU;          /* (G, H, A) best seen per sequence */
    double *bestJ, *J;     /* (G) */
    float *sx, *sa, *sn, *smr, *srw; /* (rows, O), (rows, A), (rows, O), (rows), (rows) */
    uint8_t *alive;        /* (rows) */
    float *xin, *gy, *gx;  /* (G, in), (G, out), (G, in) */
    double *lam, *dl;      /* (G, O) adjoint, scratch */
    double *gs;            /* (O) declared-terms gradient */
    size_t rows;           /* G (1 + 2 d) for known */
    /* cem_grad */
    float *fb;             /* (H, A) the best sampled candidate scored (what a stop answers) */
    float *all;            /* (N, H, A) candidates */
    float *sc;             /* (N) scores */
    int *ord;              /* (N) */
    float *cmean, *cvar, *csd; /* (H, A) */
};

/* The workspace's sizes and arrays for cfg and sh: with w, its sizes are
 * set; with block too, its arrays point into it. *block_bytes gets the
 * block's size. Returns the bytes plan_grad_ws_new allocates (struct,
 * block, model-step and ensemble-gradient workspaces), the same code
 * sizing and carving. */
static size_t gr__layout(const mb_planner_cfg *cfg, const plan_shape *sh, plan_grad_ws *w, char *block,
                         size_t *block_bytes) {
    const int H = cfg->horizon, O = sh->obs_dim, A = sh->act_dim, d = O + A;
    const mb_ensemble_spec *spec = sh->spec;
    int Gi = cfg->method == MB_PLAN_GRAD ? cfg->population : cfg->grad_elites;
    int Ni = cfg->method == MB_PLAN_CEM_GRAD ? cfg->population : 0;
    size_t G = (size_t)Gi, seq = (size_t)H * A, sx = (size_t)(H + 1) * O;
    size_t rows = spec ? G : G * (1 + 2 * (size_t)d);
    if (rows < G * GR_LS) rows = G * GR_LS;
    int in = spec ? mb_ensemble_in_dim(spec) : 0, out = spec ? mb_ensemble_out_dim(spec) : 0;
    if (w) {
        w->H = H; w->O = O; w->A = A; w->d = d;
        w->is_ens = spec != NULL;
        w->G = Gi;
        w->N = Ni;
        w->rows = rows;
        w->in = in;
        w->out = out;
    }
    plan_carver c = {block, 0};
    PLAN_CARVE(&c, w, Uc, G * GR_LS * seq);
    PLAN_CARVE(&c, w, Xc, G * GR_LS * sx);
    PLAN_CARVE(&c, w, Jc, G * GR_LS);
    PLAN_CARVE(&c, w, base, G);
    PLAN_CARVE(&c, w, X, G * sx);
    PLAN_CARVE(&c, w, U, G * seq);
    PLAN_CARVE(&c, w, dU, G * seq);
    PLAN_CARVE(&c, w, m, G * seq);
    PLAN_CARVE(&c, w, v, G * seq);
    PLAN_CARVE(&c, w, bestU, G * seq);
    PLAN_CARVE(&c, w, bestJ, G);
    PLAN_CARVE(&c, w, J, G);
    PLAN_CARVE(&c, w, sx, rows * O);
    PLAN_CARVE(&c, w, sa, rows * A);
    PLAN_CARVE(&c, w, sn, rows * O);
    PLAN_CARVE(&c, w, smr, rows);
    PLAN_CARVE(&c, w, srw, rows);
    PLAN_CARVE(&c, w, alive, rows);
    PLAN_CARVE(&c, w, lam, G * O);
    PLAN_CARVE(&c, w, dl, G * (size_t)d);
    PLAN_CARVE(&c, w, gs, (size_t)d);
    size_t sub = plan_mstep_bytes(spec, rows);
    if (spec) {
        PLAN_CARVE(&c, w, xin, G * in);
        PLAN_CARVE(&c, w, gy, G * out);
        PLAN_CARVE(&c, w, gx, G * in);
        sub += mb_ens_grad_ws_bytes(spec);
    }
    if (Ni > 0) {
        PLAN_CARVE(&c, w, fb, seq);
        PLAN_CARVE(&c, w, all, (size_t)Ni * seq);
        PLAN_CARVE(&c, w, sc, (size_t)Ni);
        PLAN_CARVE(&c, w, ord, (size_t)Ni);
        PLAN_CARVE(&c, w, cmean, seq);
        PLAN_CARVE(&c, w, cvar, seq);
        PLAN_CARVE(&c, w, csd, seq);
    }
    *block_bytes = c.off;
    return sizeof(plan_grad_ws) + c.off + sub;
}

size_t plan_grad_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh) {
    size_t block;
    return gr__layout(cfg, sh, NULL, NULL, &block);
}

plan_grad_ws *plan_grad_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    plan_grad_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    plan_shape sh = plan_shape_of(dyn);
    size_t block;
    gr__layout(cfg, &sh, w, NULL, &block);
    w->block = calloc(1, block);
    w->ms = plan_mstep_new(dyn, w->rows);
    if (w->is_ens) w->eg = mb_ens_grad_ws_new(sh.spec);
    if (!w->block || !w->ms || (w->is_ens && !w->eg)) {
        plan_grad_ws_free(w);
        return NULL;
    }
    gr__layout(cfg, &sh, w, w->block, &block);
    return w;
}

void plan_grad_ws_free(plan_grad_ws *w) {
    if (!w) return;
    plan_mstep_free(w->ms);
    mb_ens_grad_ws_free(w->eg);
    free(w->block);
    free(w);
}

/* The objective J (n) of the n sequences U (n, H, A), their states X
 * (n, H + 1, O); n <= w->rows. */
static void gr__forward(plan_run *run, plan_grad_ws *w, int n, const float *U, float *X, double *J) {
    const int H = w->H, O = w->O, A = w->A;
    const mb_dynamics *dyn = run->dyn;
    const mb_reward_spec *rw = run->rw;
    const int kmem = dyn->ens ? run->k : 1;
    const size_t sx = (size_t)(H + 1) * O, su = (size_t)H * A;
    for (int g = 0; g < n; g++) {
        memcpy(X + g * sx, run->obs, (size_t)O * sizeof(float));
        J[g] = 0.0;
    }
    double disc = 1.0;
    for (int t = 0; t < H; t++) {
        for (int g = 0; g < n; g++) {
            memcpy(w->sx + (size_t)g * O, X + g * sx + (size_t)t * O, (size_t)O * sizeof(float));
            memcpy(w->sa + (size_t)g * A, U + g * su + (size_t)t * A, (size_t)A * sizeof(float));
            w->alive[g] = 1;
        }
        plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k, NULL, w->sx, w->sa, (size_t)n,
                       w->sn, w->smr);
        run->model_rows += (double)n * kmem;
        mb_reward_step(rw, O, A, (size_t)n, w->sn, w->sa, rw->use_learned ? w->smr : NULL, w->alive,
                       w->srw);
        for (int g = 0; g < n; g++) {
            J[g] += disc * w->srw[g];
            memcpy(X + g * sx + (size_t)(t + 1) * O, w->sn + (size_t)g * O, (size_t)O * sizeof(float));
        }
        disc *= rw->discount;
    }
}

/* J (G) and dU = dJ/dU (G, H, A) for the n <= G sequences in w->U. */
static void gr__value_grad(plan_run *run, plan_grad_ws *w, int n) {
    const int H = w->H, O = w->O, A = w->A, d = w->d;
    const mb_dynamics *dyn = run->dyn;
    const mb_reward_spec *rw = run->rw;
    const int kmem = dyn->ens ? run->k : 1;
    const size_t sx = (size_t)(H + 1) * O, su = (size_t)H * A;
    int learned = rw->use_learned && (!w->is_ens || w->out > O);
    gr__forward(run, w, n, w->U, w->X, w->J);
    /* backward: lambda_H = disc^(H-1) d terms/dx_H */
    double dt = pow((double)rw->discount, H - 1);
    for (int g = 0; g < n; g++) {
        double *lam = w->lam + (size_t)g * O;
        for (int i = 0; i < O; i++) lam[i] = 0.0;
        mb_reward_state_quad(rw, O, w->X + g * sx + (size_t)H * O, dt, lam, NULL);
    }
    for (int t = H - 1; t >= 0; t--) {
        /* dt = disc^t */
        double dtt = pow((double)rw->discount, t);
        if (w->is_ens) {
            for (int g = 0; g < n; g++) {
                float *x = w->xin + (size_t)g * w->in, *gy = w->gy + (size_t)g * w->out;
                memcpy(x, w->X + g * sx + (size_t)t * O, (size_t)O * sizeof(float));
                memcpy(x + O, w->U + g * su + (size_t)t * A, (size_t)A * sizeof(float));
                for (int i = 0; i < O; i++) gy[i] = (float)w->lam[(size_t)g * O + i];
                if (w->out > O) gy[O] = learned ? (float)dtt : 0.0f;
            }
            mb_ensemble_vjp(dyn->ens, w->eg, run->members, run->k, w->xin, w->gy, (size_t)n, NULL, w->gx);
            run->model_rows += 2.0 * n * kmem;
            for (int g = 0; g < n; g++) {
                const float *gx = w->gx + (size_t)g * w->in;
                double *dl = w->dl + (size_t)g * d, *lam = w->lam + (size_t)g * O;
                /* x_{t+1} = x_t + delta: the identity carries lambda through */
                for (int i = 0; i < O; i++) dl[i] = lam[i] + gx[i];
                for (int j = 0; j < A; j++) dl[O + j] = gx[O + j];
            }
        } else {
            /* central differences of the step and its reward, per sequence */
            size_t r = 0;
            float hs[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM];
            for (int g = 0; g < n; g++) {
                const float *x = w->X + g * sx + (size_t)t * O, *u = w->U + g * su + (size_t)t * A;
                for (int i = 0; i < d; i++) {
                    float z = i < O ? x[i] : u[i - O];
                    hs[i] = 3e-3f * (1.0f + fabsf(z));
                    for (int sgn = 0; sgn < 2; sgn++, r++) {
                        memcpy(w->sx + r * O, x, (size_t)O * sizeof(float));
                        memcpy(w->sa + r * A, u, (size_t)A * sizeof(float));
                        float delta = sgn ? -hs[i] : hs[i];
                        if (i < O) w->sx[r * O + i] += delta;
                        else w->sa[r * A + i - O] += delta;
                    }
                }
            }
            dyn->known->step(r, w->sx, w->sa, w->sn, w->smr);
            run->model_rows += (double)r;
            r = 0;
            for (int g = 0; g < n; g++) {
                const float *x = w->X + g * sx + (size_t)t * O, *u = w->U + g * su + (size_t)t * A;
                double *dl = w->dl + (size_t)g * d, *lam = w->lam + (size_t)g * O;
                for (int i = 0; i < d; i++, r += 2) {
                    float z = i < O ? x[i] : u[i - O];
                    double h = 3e-3 * (1.0 + fabs((double)z));
                    double s = 0.0;
                    for (int o = 0; o < O; o++)
                        s += lam[o] * ((double)w->sn[r * O + o] - w->sn[(r + 1) * O + o]) / (2.0 * h);
                    if (learned) s += dtt * ((double)w->smr[r] - w->smr[r + 1]) / (2.0 * h);
                    dl[i] = s;
                }
            }
        }
        for (int g = 0; g < n; g++) {
            double *dl = w->dl + (size_t)g * d, *lam = w->lam + (size_t)g * O;
            float *du = w->dU + g * su + (size_t)t * A;
            for (int j = 0; j < A; j++) w->gs[j] = 0.0;
            mb_reward_action_quad(rw, A, w->U + g * su + (size_t)t * A, dtt, w->gs, NULL);
            for (int j = 0; j < A; j++) du[j] = (float)(dl[O + j] + w->gs[j]);
            for (int i = 0; i < O; i++) lam[i] = dl[i];
            if (t >= 1) mb_reward_state_quad(rw, O, w->X + g * sx + (size_t)t * O, dtt / rw->discount, lam, NULL);
        }
    }
}

/* steps Adam steps on the n sequences of w->U (ascent), keeping the best
 * seen per sequence in bestU / bestJ. The step of entry j is lr x scale[j]
 * (H, A), or lr x half the action range when scale is NULL. */
static void gr__adam(plan_run *run, plan_grad_ws *w, int n, int steps, const float *scale) {
    const int H = w->H, A = w->A;
    const size_t su = (size_t)H * A;
    const mb_dynamics *dyn = run->dyn;
    const float lr = run->cfg->lr, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    memset(w->m, 0, (size_t)n * su * sizeof(float));
    memset(w->v, 0, (size_t)n * su * sizeof(float));
    for (int g = 0; g < n; g++) w->bestJ[g] = -DBL_MAX;
    for (int s = 0; s <= steps; s++) {
        if (plan_should_stop(run)) return; /* the best seen so far stands */
        gr__value_grad(run, w, n);
        for (int g = 0; g < n; g++)
            if (isfinite(w->J[g]) && w->J[g] > w->bestJ[g]) {
                w->bestJ[g] = w->J[g];
                memcpy(w->bestU + g * su, w->U + g * su, su * sizeof(float));
            }
        if (s == steps) break;
        float c1 = 1.0f - powf(b1, (float)(s + 1)), c2 = 1.0f - powf(b2, (float)(s + 1));
        for (int g = 0; g < n; g++)
            for (size_t j = 0; j < su; j++) {
                size_t i = g * su + j;
                int a = (int)(j % (size_t)A);
                float gr = w->dU[i];
                if (!isfinite(gr)) gr = 0.0f;
                w->m[i] = b1 * w->m[i] + (1 - b1) * gr;
                w->v[i] = b2 * w->v[i] + (1 - b2) * gr * gr;
                float half = scale ? scale[j] : 0.5f * (dyn->act_high[a] - dyn->act_low[a]);
                float step = lr * half * (w->m[i] / c1) / (sqrtf(w->v[i] / c2) + eps);
                w->U[i] = plan_methods_clip(w->U[i] + step, dyn->act_low[a], dyn->act_high[a]);
            }
    }
}

/* steps gradient-ascent steps with a line search on the n sequences of
 * w->U: each step tries U + alpha s g / max|g| for GR_LS step sizes alpha
 * in {1, 1/4, 1/16, 1/64} side by side (s: scale (H, A), the search
 * distribution's std) and keeps the best if it improves; otherwise the
 * next step starts a factor 64 smaller. Leaves the result in bestU/bestJ. */
static void gr__refine(plan_run *run, plan_grad_ws *w, int n, int steps, const float *scale) {
    const int H = w->H, A = w->A;
    const size_t su = (size_t)H * A;
    const mb_dynamics *dyn = run->dyn;
    double *base = w->base;
    for (int g = 0; g < n; g++) base[g] = 1.0;
    for (int s = 0; s < steps; s++) {
        if (plan_should_stop(run)) return; /* the caller drops the refinement */
        gr__value_grad(run, w, n);
        for (int g = 0; g < n; g++) {
            float gmax = 0.0f;
            const float *dU = w->dU + g * su;
            for (size_t j = 0; j < su; j++) gmax = fmaxf(gmax, fabsf(dU[j]));
            for (int l = 0; l < GR_LS; l++) {
                float *c = w->Uc + ((size_t)g * GR_LS + l) * su;
                double alpha = base[g] * ldexp(1.0, -2 * l);
                for (size_t j = 0; j < su; j++) {
                    int a = (int)(j % (size_t)A);
                    float step = gmax > 0.0f ? (float)alpha * scale[j] * dU[j] / gmax : 0.0f;
                    c[j] = plan_methods_clip(w->U[g * su + j] + step, dyn->act_low[a], dyn->act_high[a]);
                }
            }
        }
        gr__forward(run, w, n * GR_LS, w->Uc, w->Xc, w->Jc);
        for (int g = 0; g < n; g++) {
            int b = -1;
            double bj = w->J[g];
            for (int l = 0; l < GR_LS; l++)
                if (isfinite(w->Jc[g * GR_LS + l]) && w->Jc[g * GR_LS + l] > bj) {
                    bj = w->Jc[g * GR_LS + l];
                    b = l;
                }
            if (b >= 0) {
                memcpy(w->U + g * su, w->Uc + ((size_t)g * GR_LS + b) * su, su * sizeof(float));
                w->J[g] = bj;
            } else {
                base[g] *= ldexp(1.0, -2 * GR_LS);
            }
        }
    }
    for (int g = 0; g < n; g++) {
        w->bestJ[g] = w->J[g];
        memcpy(w->bestU + g * su, w->U + g * su, su * sizeof(float));
    }
}

void plan_grad_run(plan_run *run, plan_grad_ws *w, int warm) {
    mb_plan_ws *ws = run->ws;
    const int H = w->H, A = w->A, G = w->G;
    const size_t su = (size_t)H * A;
    const mb_dynamics *dyn = run->dyn;
    plan_gen gen;
    plan_gen_init(&gen, run->seed, PLAN_STREAM_SAMPLE);
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++) {
            float lo = dyn->act_low[a], hi = dyn->act_high[a];
            float c = warm ? run->state->mean[t * A + a] : 0.5f * (lo + hi);
            for (int g = 0; g < G; g++) {
                float v = c;
                if (g > 0) v += run->cfg->init_std * 0.5f * (hi - lo) * plan_normal(&gen, ws);
                w->U[g * su + (size_t)t * A + a] = plan_methods_clip(v, lo, hi);
            }
        }
    gr__adam(run, w, G, run->cfg->grad_steps, NULL);
    int b = 0;
    for (int g = 1; g < G; g++)
        if (w->bestJ[g] > w->bestJ[b]) b = g;
    if (run->stopped && !(w->bestJ[b] > -DBL_MAX)) return; /* no step finished: no answer */
    memcpy(ws->best, w->bestU + b * su, su * sizeof(float));
    memcpy(ws->mean, ws->best, su * sizeof(float));
    run->ret_mean = (float)w->bestJ[b]; /* the objective: the answer if the evaluation is stopped */
    run->ret_std = 0.0f;
    run->have_best = 1;
    plan_methods_eval_best(run);
}

static float *gr__cand(mb_plan_ws *ws, int c) { return ws->cand + (size_t)c * ws->horizon * ws->act_dim; }

/* ord[0..n) by sc, best first (selection of the first k). */
static void gr__top(const float *sc, int *ord, int n, int k) {
    for (int i = 0; i < n; i++) ord[i] = i;
    for (int i = 0; i < k && i < n; i++) {
        int b = i;
        for (int j = i + 1; j < n; j++)
            if (sc[ord[j]] > sc[ord[b]] || (sc[ord[j]] == sc[ord[b]] && ord[j] < ord[b])) b = j;
        int t = ord[i];
        ord[i] = ord[b];
        ord[b] = t;
    }
}

void plan_cem_grad_run(plan_run *run, plan_grad_ws *w, int warm) {
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    const mb_dynamics *dyn = run->dyn;
    const int H = w->H, A = w->A, N = cfg->population, E = cfg->elites, Gr = cfg->grad_elites;
    const size_t seq = (size_t)H * A;
    for (int t = 0; t < H; t++)
        for (int a = 0; a < A; a++) {
            float lo = dyn->act_low[a], hi = dyn->act_high[a], half = 0.5f * (hi - lo);
            w->cmean[t * A + a] = warm ? plan_methods_clip(run->state->mean[t * A + a], lo, hi) : 0.5f * (lo + hi);
            float s = cfg->init_std * half;
            w->cvar[t * A + a] = s * s;
        }
    plan_gen gen;
    plan_gen_init(&gen, run->seed, PLAN_STREAM_SAMPLE);
    float best_score = -FLT_MAX, best_mean = 0, best_std = 0;
    float fb_score = -FLT_MAX, fb_mean = 0, fb_std = 0; /* the best sampled (w->fb) */
    int have_fb = 0;
    for (int it = 0; it < cfg->iterations; it++) {
        for (size_t j = 0; j < seq; j++) {
            int a = (int)(j % (size_t)A);
            float m = w->cmean[j];
            float dl = 0.5f * (m - dyn->act_low[a]), dh = 0.5f * (dyn->act_high[a] - m);
            w->csd[j] = sqrtf(fminf(fminf(dl * dl, dh * dh), w->cvar[j]));
        }
        for (int c = 0; c < N; c++) {
            float *s = gr__cand(ws, c);
            for (size_t j = 0; j < seq; j++) {
                int a = (int)(j % (size_t)A);
                float z;
                do z = plan_normal(&gen, ws);
                while (z < -2.0f || z > 2.0f);
                s[j] = plan_methods_clip(w->cmean[j] + w->csd[j] * z, dyn->act_low[a], dyn->act_high[a]);
            }
        }
        plan_evaluate(run, N);
        if (run->stopped) break;
        memcpy(w->all, ws->cand, (size_t)N * seq * sizeof(float));
        memcpy(w->sc, ws->score, (size_t)N * sizeof(float));
        gr__top(w->sc, w->ord, N, Gr);
        if (!have_fb || w->sc[w->ord[0]] > fb_score) { /* kept for a stop only */
            int c = w->ord[0];
            have_fb = 1;
            fb_score = w->sc[c];
            fb_mean = ws->ret_mean[c];
            fb_std = ws->ret_std[c];
            memcpy(w->fb, w->all + (size_t)c * seq, seq * sizeof(float));
        }
        /* refine the best Gr by gradient steps, then score them again */
        for (int g = 0; g < Gr; g++) memcpy(w->U + g * seq, w->all + (size_t)w->ord[g] * seq, seq * sizeof(float));
        gr__refine(run, w, Gr, cfg->grad_steps, w->csd);
        if (run->stopped) break;
        for (int g = 0; g < Gr; g++) memcpy(gr__cand(ws, g), w->bestU + g * seq, seq * sizeof(float));
        plan_evaluate(run, Gr);
        if (run->stopped) break;
        for (int g = 0; g < Gr; g++) {
            int c = w->ord[g];
            memcpy(w->all + (size_t)c * seq, w->bestU + g * seq, seq * sizeof(float));
            w->sc[c] = ws->score[g];
            if (ws->score[g] > best_score) {
                best_score = ws->score[g];
                best_mean = ws->ret_mean[g];
                best_std = ws->ret_std[g];
                memcpy(ws->best, w->bestU + g * seq, seq * sizeof(float));
            }
        }
        gr__top(w->sc, w->ord, N, E);
        for (size_t j = 0; j < seq; j++) {
            double m = 0.0, q = 0.0;
            for (int e = 0; e < E; e++) m += w->all[(size_t)w->ord[e] * seq + j];
            m /= E;
            for (int e = 0; e < E; e++) {
                double dd = w->all[(size_t)w->ord[e] * seq + j] - m;
                q += dd * dd;
            }
            q /= E;
            w->cmean[j] = (float)(cfg->alpha * w->cmean[j] + (1.0 - cfg->alpha) * m);
            w->cvar[j] = (float)(cfg->alpha * w->cvar[j] + (1.0 - cfg->alpha) * q);
        }
    }
    /* the final mean as PETS returns it, against the best refined candidate */
    memcpy(gr__cand(ws, 0), w->cmean, seq * sizeof(float));
    plan_evaluate(run, 1);
    memcpy(ws->mean, w->cmean, seq * sizeof(float));
    if (run->stopped) { /* the best scored so far: refined (in ws->best) or sampled */
        if (have_fb && (best_score == -FLT_MAX || fb_score > best_score)) {
            memcpy(ws->best, w->fb, seq * sizeof(float));
            best_mean = fb_mean;
            best_std = fb_std;
        } else if (best_score == -FLT_MAX) {
            return; /* nothing scored: no answer */
        }
        run->ret_mean = best_mean;
        run->ret_std = best_std;
        run->have_best = 1;
        return;
    }
    if (ws->score[0] >= best_score) {
        memcpy(ws->best, w->cmean, seq * sizeof(float));
        run->ret_mean = ws->ret_mean[0];
        run->ret_std = ws->ret_std[0];
    } else {
        run->ret_mean = best_mean;
        run->ret_std = best_std;
    }
}
