/* ilqr.c: iterative LQR (Li and Todorov 2004; Tassa, Erez and Todorov 2012)
 * over known dynamics or the ensemble's mean dynamics (planner.h's
 * MB_PLAN_ILQR; the seam is plan_methods.h).
 *
 * Objective (maximised): sum_t discount^t [ model reward (x_t, u_t)
 * + declared terms (x_{t+1}, u_t) ] along x_{t+1} = f(x_t, u_t), with f the
 * mean over the members (the elites with elites_only) of s + delta, or the
 * known step. Termination bounds are not part of the optimisation (the
 * final plan is scored by plan_evaluate, which applies them).
 * Each iteration:
 *   1. linearise at the nominal (X, U):
 *      ensemble: A_t = I + d delta/dx, B_t = d delta/du by backpropagation
 *        (mb_ensemble_jacobian); the reward head's gradient is the last row
 *        of the same Jacobian, its Hessian central differences of that
 *        gradient (2 (obs_dim + act_dim) VJP rows per step, step 1e-2 of
 *        the input normaliser's std): finite differences, not Gauss-Newton;
 *      known: central differences of the step (and of its reward: gradient
 *        and Hessian, the off-diagonal from the 4-point formula), step
 *        3e-3 (1 + |z|);
 *      declared terms: exact gradient and Hessian (reward_quad.h);
 *   2. backward pass: mb_lqr_backward on the deviations with
 *      Levenberg-Marquardt mu on Quu and the action bounds as a box on the
 *      feedforward (clamped controls get no feedback);
 *   3. forward pass with line search: the 8 step sizes alpha in
 *      {1, 1/2, ..., 1/128} roll out side by side as 8 rows,
 *      u = clip(U + alpha k + K (x - X)); the largest alpha whose actual
 *      decrease is at least 0.1 of the expected one (or, when none is
 *      expected, any decrease) is taken and mu shrinks by 10; if none, mu
 *      grows by 10 (up to 1e10, then the iterations stop).
 * Starts (`population` of them, each optimised in turn, the best kept):
 * the previous call's controls (shifted by the caller) or, cold, the middle
 * of the bounds plus 0.1 half-range of seeded noise (breaks the symmetry of
 * a pendulum hanging still, where every gradient through the dynamics is
 * zero); then constant low, constant high, then uniform random sequences.
 * iLQR is local: from a pendulum hanging still the middle start alone only
 * finds "lean and hold" over a short horizon, a bang start finds the swing.
 * The gains K_0 and the nominal x_0 of the last backward pass are kept for
 * mb_plan_ws_gains. The deadline (mb_plan_ctl.stop) is polled before each
 * start, each iteration, each Hessian block of the ensemble's
 * linearisation and each line search: a cut iteration is dropped, and the
 * answer is the best start so far (its accepted controls), its predicted
 * return the objective above (-J: the mean dynamics, no termination);
 * stopped before the first nominal rollout there is none (MB_ECANCELED).
 * No allocation in plan_ilqr_run. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/ensemble_grad.h"
#include "plan/lqr.h"
#include "plan/model_step.h"
#include "plan/plan_methods.h"
#include "plan/reward_quad.h"

#define ILQR_ALPHAS 8
#define ILQR_MU_MIN 1e-6
#define ILQR_MU_MAX 1e10

struct plan_ilqr_ws {
    int H, O, A, d, is_ens, in, out;
    mb_lqr_ws *lqr;
    mb_ens_grad_ws *eg;
    plan_mstep *ms;
    void *block;           /* the arrays below (il__layout) */
    double *Am, *Bm, *Q, *R, *N, *q, *r, *lo, *hi, *K, *k;
    float *X, *U;          /* (H + 1, O), (H, A) nominal */
    float *Xa, *Ua;        /* (ALPHAS, H + 1, O), (ALPHAS, H, A) */
    float *sx, *sa, *sn, *smr, *srw; /* (ALPHAS, O), (ALPHAS, A), (ALPHAS, O), (ALPHAS) x 2 */
    uint8_t *alive;        /* (ALPHAS) */
    /* ensemble linearisation */
    float *xin, *jac;      /* (H, in), (H, out, in) */
    int tb;                /* steps per Hessian block */
    float *hx, *hgy, *hgx; /* (tb 2 in, in), (tb 2 in, out), (tb 2 in, in) */
    double *hr;            /* (H, d, d) model-reward Hessian; (H, d) gradient in gr */
    double *gr;
    /* known linearisation: kr rows per step */
    int kr;
    float *kobs, *kact, *knext, *krew; /* (H kr, O), (H kr, A), (H kr, O), (H kr) */
    float *hstep;          /* (H, d) the differencing steps */
    int have_gains, run_gains;
    float *K0, *x0;        /* (A, O), (O) of the best start */
    float *runK0;          /* (A, O) of the current start */
};

static size_t il__known_rows(int d, int learned) { return 1 + 2 * (size_t)d + (learned ? 2 * (size_t)d * (d - 1) : 0); }

/* The workspace's sizes and arrays for cfg and sh: with w, its sizes are
 * set; with block too, its arrays point into it. *block_bytes gets the
 * block's size. Returns the bytes plan_ilqr_ws_new allocates (struct,
 * block, LQR and model-step workspaces, the ensemble's gradient
 * workspace), the same code sizing and carving. */
static size_t il__layout(const mb_planner_cfg *cfg, const plan_shape *sh, plan_ilqr_ws *w, char *block,
                         size_t *block_bytes) {
    const int H = cfg->horizon, O = sh->obs_dim, A = sh->act_dim, d = O + A;
    size_t h = (size_t)H, nn = (size_t)O * O, al = ILQR_ALPHAS;
    const mb_ensemble_spec *spec = sh->spec;
    int in = spec ? mb_ensemble_in_dim(spec) : 0, out = spec ? mb_ensemble_out_dim(spec) : 0;
    int tb = 0, kr = 0;
    if (spec) {
        int rows_per_t = 2 * in;
        tb = 4096 / rows_per_t > 0 ? 4096 / rows_per_t : 1;
        if (tb > H) tb = H;
    } else {
        /* the reward Hessian rows are only needed with use_learned, which
         * is per call: size for it */
        kr = (int)il__known_rows(d, 1);
    }
    if (w) {
        w->H = H; w->O = O; w->A = A; w->d = d;
        w->is_ens = spec != NULL;
        w->in = in; w->out = out; w->tb = tb; w->kr = kr;
    }
    plan_carver c = {block, 0};
    PLAN_CARVE(&c, w, Am, h * nn);
    PLAN_CARVE(&c, w, Bm, h * O * A);
    PLAN_CARVE(&c, w, Q, (h + 1) * nn);
    PLAN_CARVE(&c, w, R, h * A * A);
    PLAN_CARVE(&c, w, N, h * A * O);
    PLAN_CARVE(&c, w, q, (h + 1) * O);
    PLAN_CARVE(&c, w, r, h * A);
    PLAN_CARVE(&c, w, lo, h * A);
    PLAN_CARVE(&c, w, hi, h * A);
    PLAN_CARVE(&c, w, K, h * A * O);
    PLAN_CARVE(&c, w, k, h * A);
    PLAN_CARVE(&c, w, X, (h + 1) * O);
    PLAN_CARVE(&c, w, U, h * A);
    PLAN_CARVE(&c, w, Xa, al * (h + 1) * O);
    PLAN_CARVE(&c, w, Ua, al * h * A);
    PLAN_CARVE(&c, w, sx, al * O);
    PLAN_CARVE(&c, w, sa, al * A);
    PLAN_CARVE(&c, w, sn, al * O);
    PLAN_CARVE(&c, w, smr, al);
    PLAN_CARVE(&c, w, srw, al);
    PLAN_CARVE(&c, w, alive, al);
    PLAN_CARVE(&c, w, hr, h * d * d);
    PLAN_CARVE(&c, w, gr, h * d);
    PLAN_CARVE(&c, w, hstep, h * d);
    PLAN_CARVE(&c, w, K0, (size_t)A * O);
    PLAN_CARVE(&c, w, runK0, (size_t)A * O);
    PLAN_CARVE(&c, w, x0, (size_t)O);
    size_t sub = mb_lqr_ws_bytes(O, A) + plan_mstep_bytes(spec, ILQR_ALPHAS);
    if (spec) {
        size_t hrows = (size_t)tb * 2 * in;
        PLAN_CARVE(&c, w, xin, h * in);
        PLAN_CARVE(&c, w, jac, h * out * in);
        PLAN_CARVE(&c, w, hx, hrows * in);
        PLAN_CARVE(&c, w, hgy, hrows * out); /* zero but the reward column (calloc) */
        PLAN_CARVE(&c, w, hgx, hrows * in);
        sub += mb_ens_grad_ws_bytes(spec);
    } else {
        size_t rows = h * kr;
        PLAN_CARVE(&c, w, kobs, rows * O);
        PLAN_CARVE(&c, w, kact, rows * A);
        PLAN_CARVE(&c, w, knext, rows * O);
        PLAN_CARVE(&c, w, krew, rows);
    }
    *block_bytes = c.off;
    return sizeof(plan_ilqr_ws) + c.off + sub;
}

size_t plan_ilqr_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh) {
    size_t block;
    return il__layout(cfg, sh, NULL, NULL, &block);
}

plan_ilqr_ws *plan_ilqr_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    plan_ilqr_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    plan_shape sh = plan_shape_of(dyn);
    size_t block;
    il__layout(cfg, &sh, w, NULL, &block);
    w->block = calloc(1, block);
    w->lqr = mb_lqr_ws_new(w->O, w->A);
    w->ms = plan_mstep_new(dyn, ILQR_ALPHAS);
    if (w->is_ens) w->eg = mb_ens_grad_ws_new(sh.spec);
    if (!w->block || !w->lqr || !w->ms || (w->is_ens && !w->eg)) {
        plan_ilqr_ws_free(w);
        return NULL;
    }
    il__layout(cfg, &sh, w, w->block, &block);
    return w;
}

void plan_ilqr_ws_free(plan_ilqr_ws *w) {
    if (!w) return;
    mb_lqr_ws_free(w->lqr);
    mb_ens_grad_ws_free(w->eg);
    plan_mstep_free(w->ms);
    free(w->block);
    free(w);
}

int plan_ilqr_gains(const plan_ilqr_ws *w, float *K0, float *x0) {
    if (!w->have_gains) return 0;
    if (K0) memcpy(K0, w->K0, (size_t)w->A * w->O * sizeof(float));
    if (x0) memcpy(x0, w->x0, (size_t)w->O * sizeof(float));
    return 1;
}

/* Rolls out n_rows sequences side by side from obs: row a uses
 * u = clip(U + alpha[a] k + K (x - X)) (feedback 0: open loop U_a given in
 * Ua). Writes Xa, Ua and the costs J[a] (minus the discounted reward,
 * termination ignored). */
static void il__rollout(plan_run *run, plan_ilqr_ws *w, int n_rows, const double *alpha,
                        int feedback, double *J) {
    const int H = w->H, O = w->O, A = w->A;
    const mb_dynamics *dyn = run->dyn;
    const mb_reward_spec *rw = run->rw;
    size_t sxa = (size_t)(H + 1) * O, sua = (size_t)H * A;
    for (int a = 0; a < n_rows; a++) {
        memcpy(w->Xa + a * sxa, run->obs, (size_t)O * sizeof(float));
        J[a] = 0.0;
    }
    double disc = 1.0;
    for (int t = 0; t < H; t++) {
        for (int a = 0; a < n_rows; a++) {
            const float *x = w->Xa + a * sxa + (size_t)t * O;
            float *u = w->Ua + a * sua + (size_t)t * A;
            if (feedback)
                for (int i = 0; i < A; i++) {
                    double v = w->U[t * A + i] + alpha[a] * w->k[t * A + i];
                    const double *Ki = w->K + ((size_t)t * A + i) * O;
                    for (int j = 0; j < O; j++) v += Ki[j] * ((double)x[j] - w->X[t * O + j]);
                    u[i] = plan_methods_clip((float)v, dyn->act_low[i], dyn->act_high[i]);
                }
            memcpy(w->sx + (size_t)a * O, x, (size_t)O * sizeof(float));
            memcpy(w->sa + (size_t)a * A, u, (size_t)A * sizeof(float));
            w->alive[a] = 1;
        }
        plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k, NULL, w->sx, w->sa,
                       (size_t)n_rows, w->sn, w->smr);
        run->model_rows += (double)n_rows * (dyn->ens ? run->k : 1);
        mb_reward_step(rw, O, A, (size_t)n_rows, w->sn, w->sa, rw->use_learned ? w->smr : NULL,
                       w->alive, w->srw);
        for (int a = 0; a < n_rows; a++) {
            J[a] -= disc * (double)w->srw[a];
            memcpy(w->Xa + a * sxa + (size_t)(t + 1) * O, w->sn + (size_t)a * O, (size_t)O * sizeof(float));
        }
        disc *= rw->discount;
    }
}

/* Model-reward gradient gr (H, d) and Hessian hr (H, d, d), and A_t, B_t,
 * for the ensemble. */
static void il__linearise_ens(plan_run *run, plan_ilqr_ws *w) {
    const int H = w->H, O = w->O, A = w->A, d = w->d, in = w->in, out = w->out;
    const mb_ensemble *e = run->dyn->ens;
    for (int t = 0; t < H; t++) {
        memcpy(w->xin + (size_t)t * in, w->X + (size_t)t * O, (size_t)O * sizeof(float));
        memcpy(w->xin + (size_t)t * in + O, w->U + (size_t)t * A, (size_t)A * sizeof(float));
    }
    mb_ensemble_jacobian(e, w->eg, run->members, run->k, w->xin, (size_t)H, NULL, w->jac);
    run->model_rows += 2.0 * H * out * run->k;
    for (int t = 0; t < H; t++) {
        const float *J = w->jac + (size_t)t * out * in;
        double *At = w->Am + (size_t)t * O * O, *Bt = w->Bm + (size_t)t * O * A;
        for (int i = 0; i < O; i++) {
            for (int j = 0; j < O; j++) At[i * O + j] = (i == j) + (double)J[i * in + j];
            for (int j = 0; j < A; j++) Bt[i * A + j] = J[i * in + O + j];
        }
    }
    int learned = run->rw->use_learned && out > O;
    if (!learned) return;
    for (int t = 0; t < H; t++)
        for (int i = 0; i < d; i++) w->gr[(size_t)t * d + i] = w->jac[((size_t)t * out + O) * in + i];
    /* Hessian of the reward head: central differences of its gradient */
    int rows_t = 2 * in;
    for (int r = 0; r < w->tb * rows_t; r++) w->hgy[(size_t)r * out + O] = 1.0f;
    for (int t0 = 0; t0 < H; t0 += w->tb) {
        if (plan_should_stop(run)) return; /* the linearisation is void */
        int nt = H - t0 < w->tb ? H - t0 : w->tb;
        for (int tt = 0; tt < nt; tt++)
            for (int i = 0; i < in; i++) {
                float hs = 1e-2f * e->in_std[i];
                w->hstep[(size_t)(t0 + tt) * d + i] = hs;
                for (int sgn = 0; sgn < 2; sgn++) {
                    float *x = w->hx + ((size_t)tt * rows_t + 2 * i + sgn) * in;
                    memcpy(x, w->xin + (size_t)(t0 + tt) * in, (size_t)in * sizeof(float));
                    x[i] += sgn ? -hs : hs;
                }
            }
        size_t n = (size_t)nt * rows_t;
        mb_ensemble_vjp(e, w->eg, run->members, run->k, w->hx, w->hgy, n, NULL, w->hgx);
        run->model_rows += 2.0 * (double)n * run->k;
        for (int tt = 0; tt < nt; tt++) {
            double *Hr = w->hr + (size_t)(t0 + tt) * d * d;
            for (int i = 0; i < in; i++) {
                const float *gp = w->hgx + ((size_t)tt * rows_t + 2 * i) * in;
                const float *gm = gp + in;
                double hs = w->hstep[(size_t)(t0 + tt) * d + i];
                for (int j = 0; j < in; j++) Hr[j * d + i] = ((double)gp[j] - gm[j]) / (2.0 * hs);
            }
            for (int i = 0; i < d; i++)
                for (int j = 0; j < i; j++) {
                    double s = 0.5 * (Hr[i * d + j] + Hr[j * d + i]);
                    Hr[i * d + j] = Hr[j * d + i] = s;
                }
        }
    }
}

/* Known dynamics: every derivative by central differences in one batch. */
static void il__linearise_known(plan_run *run, plan_ilqr_ws *w) {
    const int H = w->H, O = w->O, A = w->A, d = w->d;
    int learned = run->rw->use_learned;
    int kr = (int)il__known_rows(d, learned);
    for (int t = 0; t < H; t++) {
        float z[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM];
        memcpy(z, w->X + (size_t)t * O, (size_t)O * sizeof(float));
        memcpy(z + O, w->U + (size_t)t * A, (size_t)A * sizeof(float));
        float *hs = w->hstep + (size_t)t * d;
        for (int i = 0; i < d; i++) hs[i] = 3e-3f * (1.0f + fabsf(z[i]));
        size_t r = (size_t)t * kr;
#define IL_ROW(dz_i, di, dz_j, dj)                                                   \
    do {                                                                             \
        float *o_ = w->kobs + r * O, *a_ = w->kact + r * A;                          \
        memcpy(o_, z, (size_t)O * sizeof(float));                                    \
        memcpy(a_, z + O, (size_t)A * sizeof(float));                                \
        if ((di) >= 0) *((di) < O ? &o_[(di)] : &a_[(di) - O]) += (dz_i);               \
        if ((dj) >= 0) *((dj) < O ? &o_[(dj)] : &a_[(dj) - O]) += (dz_j);               \
        r++;                                                                         \
    } while (0)
        IL_ROW(0.0f, -1, 0.0f, -1);
        for (int i = 0; i < d; i++) {
            IL_ROW(hs[i], i, 0.0f, -1);
            IL_ROW(-hs[i], i, 0.0f, -1);
        }
        if (learned)
            for (int i = 0; i < d; i++)
                for (int j = 0; j < i; j++) {
                    IL_ROW(hs[i], i, hs[j], j);
                    IL_ROW(hs[i], i, -hs[j], j);
                    IL_ROW(-hs[i], i, hs[j], j);
                    IL_ROW(-hs[i], i, -hs[j], j);
                }
#undef IL_ROW
    }
    size_t rows = (size_t)H * kr;
    run->dyn->known->step(rows, w->kobs, w->kact, w->knext, w->krew);
    run->model_rows += (double)rows;
    for (int t = 0; t < H; t++) {
        const float *hs = w->hstep + (size_t)t * d;
        size_t r0 = (size_t)t * kr;
        double *At = w->Am + (size_t)t * O * O, *Bt = w->Bm + (size_t)t * O * A;
        double *g = w->gr + (size_t)t * d, *Hr = w->hr + (size_t)t * d * d;
        double f0 = w->krew[r0];
        for (int i = 0; i < d; i++) {
            const float *np = w->knext + (r0 + 1 + 2 * i) * O, *nm = np + O;
            for (int o = 0; o < O; o++) {
                double v = ((double)np[o] - nm[o]) / (2.0 * hs[i]);
                if (i < O) At[o * O + i] = v;
                else Bt[o * A + i - O] = v;
            }
            if (learned) {
                double fp = w->krew[r0 + 1 + 2 * i], fm = w->krew[r0 + 2 + 2 * i];
                g[i] = (fp - fm) / (2.0 * hs[i]);
                Hr[i * d + i] = (fp - 2.0 * f0 + fm) / ((double)hs[i] * hs[i]);
            }
        }
        if (!learned) continue;
        size_t rr = r0 + 1 + 2 * (size_t)d;
        for (int i = 0; i < d; i++)
            for (int j = 0; j < i; j++) {
                double fpp = w->krew[rr], fpm = w->krew[rr + 1], fmp = w->krew[rr + 2],
                       fmm = w->krew[rr + 3];
                rr += 4;
                double v = (fpp - fpm - fmp + fmm) / (4.0 * hs[i] * hs[j]);
                Hr[i * d + j] = Hr[j * d + i] = v;
            }
    }
}

/* Q, R, N, q, r (cost = -reward) at the nominal, and the box. */
static void il__expand_cost(plan_run *run, plan_ilqr_ws *w) {
    const int H = w->H, O = w->O, A = w->A, d = w->d;
    const mb_reward_spec *rw = run->rw;
    memset(w->Q, 0, (size_t)(H + 1) * O * O * sizeof(double));
    memset(w->q, 0, (size_t)(H + 1) * O * sizeof(double));
    memset(w->R, 0, (size_t)H * A * A * sizeof(double));
    memset(w->N, 0, (size_t)H * A * O * sizeof(double));
    memset(w->r, 0, (size_t)H * A * sizeof(double));
    int learned = rw->use_learned && (!w->is_ens || w->out > O);
    double disc = 1.0;
    for (int t = 0; t < H; t++) {
        double *Qt = w->Q + (size_t)t * O * O, *qt = w->q + (size_t)t * O;
        double *Rt = w->R + (size_t)t * A * A, *Nt = w->N + (size_t)t * A * O, *rt = w->r + (size_t)t * A;
        if (learned) {
            const double *g = w->gr + (size_t)t * d, *Hr = w->hr + (size_t)t * d * d;
            for (int i = 0; i < O; i++) {
                qt[i] -= disc * g[i];
                for (int j = 0; j < O; j++) Qt[i * O + j] -= disc * Hr[i * d + j];
            }
            for (int i = 0; i < A; i++) {
                rt[i] -= disc * g[O + i];
                for (int j = 0; j < A; j++) Rt[i * A + j] -= disc * Hr[(O + i) * d + O + j];
                for (int j = 0; j < O; j++) Nt[i * O + j] -= disc * Hr[(O + i) * d + j];
            }
        }
        mb_reward_action_quad(rw, A, w->U + (size_t)t * A, -disc, rt, Rt);
        mb_reward_state_quad(rw, O, w->X + (size_t)(t + 1) * O, -disc, w->q + (size_t)(t + 1) * O,
                             w->Q + (size_t)(t + 1) * O * O);
        for (int i = 0; i < A; i++) {
            w->lo[t * A + i] = (double)run->dyn->act_low[i] - w->U[t * A + i];
            w->hi[t * A + i] = (double)run->dyn->act_high[i] - w->U[t * A + i];
        }
        disc *= rw->discount;
    }
}

/* One iLQR from the controls in w->U: leaves the optimised U, X and J.
 * Stopped (run->stopped), U, X and J are the last accepted; *rolled is 0
 * when even the nominal rollout did not run (no J). */
static double il__optimise(plan_run *run, plan_ilqr_ws *w, int *rolled) {
    const int H = w->H, O = w->O, A = w->A;
    *rolled = 0;
    if (plan_should_stop(run)) return INFINITY;
    *rolled = 1;
    /* nominal rollout: one open-loop row */
    double J, alpha[ILQR_ALPHAS], Ja[ILQR_ALPHAS];
    for (int a = 0; a < ILQR_ALPHAS; a++) alpha[a] = ldexp(1.0, -a);
    memcpy(w->Ua, w->U, (size_t)H * A * sizeof(float));
    il__rollout(run, w, 1, alpha, 0, &J);
    memcpy(w->X, w->Xa, (size_t)(H + 1) * O * sizeof(float));
    double mu = ILQR_MU_MIN;
    mb_lqr_solution sol = {.K = w->K, .k = w->k};
    mb_lqr_problem pb = {.n = O, .m = A, .H = H, .A = w->Am, .B = w->Bm, .Q = w->Q, .R = w->R,
                         .N = w->N, .q = w->q, .r = w->r, .lo = w->lo, .hi = w->hi};
    int relinearise = 1;
    w->run_gains = 0;
    for (int it = 0; it < run->cfg->iterations && isfinite(J); it++) {
        if (plan_should_stop(run)) break;
        if (relinearise) {
            if (w->is_ens) il__linearise_ens(run, w);
            else il__linearise_known(run, w);
            if (run->stopped) break;
            il__expand_cost(run, w);
            relinearise = 0;
        }
        /* backward pass, raising mu until Quu is positive definite */
        while (mb_lqr_backward(&pb, mu, w->lqr, &sol, NULL, 0) != MB_OK && mu < ILQR_MU_MAX)
            mu = fmax(mu * 10.0, 1e-3);
        if (mu >= ILQR_MU_MAX) break;
        if (plan_should_stop(run)) break;
        w->run_gains = 1;
        for (int i = 0; i < A * O; i++) w->runK0[i] = (float)w->K[i];
        il__rollout(run, w, ILQR_ALPHAS, alpha, 1, Ja);
        int best = -1;
        for (int a = 0; a < ILQR_ALPHAS; a++) {
            double expected = -(alpha[a] * sol.dV[0] + alpha[a] * alpha[a] * sol.dV[1]);
            double actual = J - Ja[a];
            if (!isfinite(Ja[a]) || !(actual > 0.0)) continue;
            if (expected <= 0.0 || actual >= 0.1 * expected) {
                best = a;
                break;
            }
        }
        if (best < 0) {
            mu = fmax(mu * 10.0, 1e-3);
            if (mu >= ILQR_MU_MAX) break;
            continue;
        }
        double improvement = J - Ja[best];
        J = Ja[best];
        memcpy(w->X, w->Xa + (size_t)best * (H + 1) * O, (size_t)(H + 1) * O * sizeof(float));
        memcpy(w->U, w->Ua + (size_t)best * H * A, (size_t)H * A * sizeof(float));
        mu = fmax(mu / 10.0, ILQR_MU_MIN);
        relinearise = 1;
        if (improvement < 1e-7 * (1.0 + fabs(J))) break;
    }
    return J;
}

void plan_ilqr_run(plan_run *run, plan_ilqr_ws *w, int warm) {
    mb_plan_ws *ws = run->ws;
    const int H = w->H, A = w->A, O = w->O;
    const mb_dynamics *dyn = run->dyn;
    w->have_gains = 0;
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    double bestJ = INFINITY;
    int have = 0;
    /* population = starts: the warm start (or the middle of the bounds
     * with a little noise), then constant low, constant high, then random
     * sequences; iLQR is local, and from a pendulum hanging still the
     * middle start only finds "lean and hold" */
    for (int r = 0; r < run->cfg->population && !run->stopped; r++) {
        int kind = r == 0 ? 0 : r <= 2 ? r : 3;
        for (int t = 0; t < H; t++)
            for (int i = 0; i < A; i++) {
                float lo = dyn->act_low[i], hi = dyn->act_high[i], v;
                if (kind == 0 && warm) v = run->state->mean[t * A + i];
                else if (kind == 0) v = 0.5f * (lo + hi) + 0.1f * 0.5f * (hi - lo) * plan_normal(&g, ws);
                else if (kind == 1) v = lo;
                else if (kind == 2) v = hi;
                else v = lo + (hi - lo) * plan_uniform(&g);
                w->U[t * A + i] = plan_methods_clip(v, lo, hi);
            }
        int rolled;
        double J = il__optimise(run, w, &rolled);
        if (!rolled) break; /* stopped before this start was rolled out */
        if (!have || J < bestJ) {
            have = 1;
            bestJ = J;
            memcpy(ws->best, w->U, (size_t)H * A * sizeof(float));
            w->have_gains = w->run_gains;
            memcpy(w->K0, w->runK0, (size_t)A * O * sizeof(float));
            memcpy(w->x0, run->obs, (size_t)O * sizeof(float));
        }
    }
    if (!have) return; /* stopped before any rollout: no answer */
    memcpy(ws->mean, ws->best, (size_t)H * A * sizeof(float));
    run->ret_mean = (float)-bestJ; /* the objective: the answer if the evaluation is stopped */
    run->ret_std = 0.0f;
    run->have_best = 1;
    plan_methods_eval_best(run);
}
