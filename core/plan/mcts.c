/* mcts.c: Monte Carlo tree search with UCT (Kocsis and Szepesvari 2006)
 * for discrete actions, over known dynamics or the ensemble (planner.h's
 * MB_PLAN_MCTS; the seam is plan_methods.h).
 *
 * Nodes hold a state (the tree's transitions use the mean over the members
 * used, deterministic), the reward of the edge into them and whether the
 * episode is still alive after it (termination bounds). One simulation:
 *   1. tree policy: from the root, descend through expanded nodes by the
 *      UCT score  qn(c) + uct_c sqrt(ln N(parent) / N(c)),  unvisited
 *      children first (in index order), where qn is the child's value
 *      Q(c) = r(c) + discount W(c) / N(c) min-max normalised over every Q
 *      seen in this search (MuZero's normalisation: uct_c works at any
 *      reward scale);
 *   2. expansion: the leaf's K children are made in one batched model step
 *      (state, edge reward, alive);
 *   3. leaf evaluation: `particles` random rollouts of rollout_depth steps
 *      (at most to the horizon: depth(leaf) + steps <= horizon, so every
 *      action is judged over the same horizon) from the leaf's state with
 *      uniform actions, each through one member
 *      drawn per rollout (rollout_mean 0) or the mean over the members
 *      (rollout_mean 1); the value is their mean discounted return;
 *   4. backup: visits and value sums up the path.
 * leaf_batch leaves are selected per round with virtual loss (a pending
 * visit counts as the lowest value seen), so their expansions and rollouts
 * run as one batch of rows through the model (leaf parallelism). A leaf
 * picked twice in a round is expanded once. The tree is at most `horizon`
 * deep; leaves there are only evaluated.
 * Budget: `simulations` leaf evaluations, and/or `max_ms` of wall clock
 * (checked between rounds). The answer is the most visited root action
 * (ties: the higher Q); the plan follows the most visited children down
 * the tree and repeats its last action beyond it.
 * The tree lives in the workspace and is rebuilt each call (no reuse across
 * calls). No allocation in plan_mcts_run. */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plan/model_step.h"
#include "plan/plan_methods.h"

#define MCTS_TIME_SIMS 100000 /* node capacity when only max_ms bounds the search */

struct plan_mcts_ws {
    int O, K, H, B, R, D;
    int max_sims;
    size_t max_nodes, n_nodes;
    float *state;          /* (max_nodes, O) */
    float *edge_r;         /* (max_nodes) */
    uint8_t *alive;        /* (max_nodes) alive after the edge into the node */
    uint8_t *pending;      /* (max_nodes) expansion scheduled this round */
    int *parent, *child0, *depth;
    int *N, *vl;
    double *W;
    int *leaf;             /* (B) */
    int *expand;           /* (B) leaves expanded this round */
    plan_mstep *ms;
    size_t rows;           /* max(B K, B R) */
    float *sx, *sa, *sn, *smr, *srw; /* (rows, O), (rows, K), (rows, O), (rows), (rows) */
    uint8_t *salive;       /* (rows) */
    int *rmem;             /* (rows) member per rollout row */
    double *ret;           /* (rows) */
};

plan_mcts_ws *plan_mcts_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    plan_mcts_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->O = dyn->obs_dim;
    w->K = dyn->act_dim;
    w->H = cfg->horizon;
    w->B = cfg->leaf_batch;
    w->R = cfg->particles;
    w->D = cfg->rollout_depth;
    w->max_sims = cfg->simulations > 0 ? cfg->simulations : MCTS_TIME_SIMS;
    w->max_nodes = 1 + ((size_t)w->max_sims + (size_t)w->B) * (size_t)w->K;
    size_t M = w->max_nodes, O = (size_t)w->O;
    w->rows = (size_t)w->B * (size_t)(w->K > w->R ? w->K : w->R);
    w->state = malloc(M * O * sizeof(float));
    w->edge_r = malloc(M * sizeof(float));
    w->alive = malloc(M);
    w->pending = malloc(M);
    w->parent = malloc(M * sizeof(int));
    w->child0 = malloc(M * sizeof(int));
    w->depth = malloc(M * sizeof(int));
    w->N = malloc(M * sizeof(int));
    w->vl = malloc(M * sizeof(int));
    w->W = malloc(M * sizeof(double));
    w->leaf = malloc((size_t)w->B * sizeof(int));
    w->expand = malloc((size_t)w->B * sizeof(int));
    w->ms = plan_mstep_new(dyn, w->rows);
    w->sx = malloc(w->rows * O * sizeof(float));
    w->sa = malloc(w->rows * (size_t)w->K * sizeof(float));
    w->sn = malloc(w->rows * O * sizeof(float));
    w->smr = malloc(w->rows * sizeof(float));
    w->srw = malloc(w->rows * sizeof(float));
    w->salive = malloc(w->rows);
    w->rmem = malloc(w->rows * sizeof(int));
    w->ret = malloc(w->rows * sizeof(double));
    if (!w->state || !w->edge_r || !w->alive || !w->pending || !w->parent || !w->child0 ||
        !w->depth || !w->N || !w->vl || !w->W || !w->leaf || !w->expand || !w->ms || !w->sx ||
        !w->sa || !w->sn || !w->smr || !w->srw || !w->salive || !w->rmem || !w->ret) {
        plan_mcts_ws_free(w);
        return NULL;
    }
    return w;
}

void plan_mcts_ws_free(plan_mcts_ws *w) {
    if (!w) return;
    free(w->state); free(w->edge_r); free(w->alive); free(w->pending); free(w->parent);
    free(w->child0); free(w->depth); free(w->N); free(w->vl); free(w->W); free(w->leaf);
    free(w->expand); plan_mstep_free(w->ms); free(w->sx); free(w->sa); free(w->sn); free(w->smr);
    free(w->srw); free(w->salive); free(w->rmem); free(w->ret);
    free(w);
}

typedef struct {
    double qmin, qmax, vmin; /* Q range seen (normalisation); lowest value (virtual loss) */
    int have_q;
    float disc;
} mcts__norm;

static double mcts__q(const plan_mcts_ws *w, const mcts__norm *nm, int c) {
    int n = w->N[c] + w->vl[c];
    if (n == 0) return 0.0;
    double v = (w->W[c] + w->vl[c] * nm->vmin) / n;
    return w->edge_r[c] + (w->alive[c] ? nm->disc * v : 0.0);
}

static double mcts__score(const plan_mcts_ws *w, const mcts__norm *nm, int node, int c, float uct_c) {
    int nc = w->N[c] + w->vl[c];
    if (nc == 0) return DBL_MAX;
    double q = mcts__q(w, nm, c);
    double qn = nm->have_q && nm->qmax > nm->qmin ? (q - nm->qmin) / (nm->qmax - nm->qmin) : 0.5;
    int np = w->N[node] + w->vl[node];
    return qn + uct_c * sqrt(log((double)(np > 1 ? np : 1)) / nc);
}

/* Tree policy: returns the leaf and applies one virtual visit along the path. */
static int mcts__select(plan_mcts_ws *w, const mcts__norm *nm, float uct_c) {
    int node = 0;
    for (;;) {
        w->vl[node]++;
        if ((node != 0 && !w->alive[node]) || w->child0[node] < 0 || w->depth[node] >= w->H) return node;
        int c0 = w->child0[node], best = c0;
        double bs = -DBL_MAX;
        for (int k = 0; k < w->K; k++) {
            double s = mcts__score(w, nm, node, c0 + k, uct_c);
            if (s > bs) {
                bs = s;
                best = c0 + k;
            }
        }
        node = best;
    }
}

static void mcts__backup(plan_mcts_ws *w, mcts__norm *nm, int leaf, double v) {
    double G = v;
    for (int n = leaf; n >= 0; n = w->parent[n]) {
        w->N[n]++;
        w->W[n] += G;
        w->vl[n]--;
        if (G < nm->vmin) nm->vmin = G;
        if (n == 0) break;
        double q = w->edge_r[n] + (w->alive[n] ? nm->disc * G : 0.0);
        if (!nm->have_q) {
            nm->qmin = nm->qmax = q;
            nm->have_q = 1;
        } else {
            if (q < nm->qmin) nm->qmin = q;
            if (q > nm->qmax) nm->qmax = q;
        }
        G = q;
    }
}

static double mcts__ms_since(const struct timespec *t0) {
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) * 1e-6;
}

/* The root child with the most visits (ties: higher Q, then lower index). */
static int mcts__most_visited(const plan_mcts_ws *w, const mcts__norm *nm, int node) {
    int c0 = w->child0[node], best = c0;
    for (int k = 1; k < w->K; k++) {
        int c = c0 + k;
        if (w->N[c] > w->N[best] || (w->N[c] == w->N[best] && mcts__q(w, nm, c) > mcts__q(w, nm, best)))
            best = c;
    }
    return best;
}

void plan_mcts_run(plan_run *run, plan_mcts_ws *w, int warm) {
    (void)warm;
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    const mb_dynamics *dyn = run->dyn;
    const mb_reward_spec *rw = run->rw;
    const int O = w->O, K = w->K, H = w->H, B = w->B, R = w->R, D = w->D;
    const int kmem = dyn->ens ? run->k : 1;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    plan_gen g;
    plan_gen_init(&g, run->seed, PLAN_STREAM_SAMPLE);
    mcts__norm nm = {.qmin = 0, .qmax = 0, .vmin = 0, .have_q = 0, .disc = rw->discount};
    int vmin_set = 0;
    /* the root */
    memcpy(w->state, run->obs, (size_t)O * sizeof(float));
    w->edge_r[0] = 0.0f;
    w->alive[0] = 1;
    w->pending[0] = 0;
    w->parent[0] = -1;
    w->child0[0] = -1;
    w->depth[0] = 0;
    w->N[0] = w->vl[0] = 0;
    w->W[0] = 0.0;
    w->n_nodes = 1;
    int sims = 0;
    while (sims < w->max_sims) {
        if (cfg->max_ms > 0.0f && sims > 0 && mcts__ms_since(&t0) >= cfg->max_ms) break;
        int nb = w->max_sims - sims < B ? w->max_sims - sims : B;
        if (cfg->simulations == 0 && w->n_nodes + (size_t)nb * K > w->max_nodes) break;
        /* 1. select */
        int ne = 0;
        for (int b = 0; b < nb; b++) {
            int L = mcts__select(w, &nm, cfg->uct_c);
            w->leaf[b] = L;
            if (w->child0[L] < 0 && !w->pending[L] && (L == 0 || w->alive[L]) && w->depth[L] < H) {
                w->pending[L] = 1;
                w->expand[ne++] = L;
            }
        }
        /* 2. expand: K rows per leaf through the mean model */
        if (ne > 0) {
            size_t rows = (size_t)ne * K;
            for (int i = 0; i < ne; i++)
                for (int k = 0; k < K; k++) {
                    size_t r = (size_t)i * K + k;
                    memcpy(w->sx + r * O, w->state + (size_t)w->expand[i] * O, (size_t)O * sizeof(float));
                    for (int j = 0; j < K; j++) w->sa[r * K + j] = (float)(j == k);
                    w->salive[r] = 1;
                }
            plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k, NULL, w->sx, w->sa, rows,
                           w->sn, w->smr);
            run->model_rows += (double)rows * kmem;
            mb_reward_step(rw, O, K, rows, w->sn, w->sa, rw->use_learned ? w->smr : NULL, w->salive,
                           w->srw);
            for (int i = 0; i < ne; i++) {
                int L = w->expand[i];
                int c0 = (int)w->n_nodes;
                w->child0[L] = c0;
                w->pending[L] = 0;
                for (int k = 0; k < K; k++) {
                    int c = c0 + k;
                    size_t r = (size_t)i * K + k;
                    memcpy(w->state + (size_t)c * O, w->sn + r * O, (size_t)O * sizeof(float));
                    w->edge_r[c] = w->srw[r];
                    w->alive[c] = w->salive[r];
                    w->pending[c] = 0;
                    w->parent[c] = L;
                    w->child0[c] = -1;
                    w->depth[c] = w->depth[L] + 1;
                    w->N[c] = w->vl[c] = 0;
                    w->W[c] = 0.0;
                }
                w->n_nodes += (size_t)K;
            }
        }
        /* 3. rollouts from every selected leaf: R rows each */
        size_t rows = (size_t)nb * R;
        for (int b = 0; b < nb; b++)
            for (int q = 0; q < R; q++) {
                size_t r = (size_t)b * R + q;
                int L = w->leaf[b];
                memcpy(w->sx + r * O, w->state + (size_t)L * O, (size_t)O * sizeof(float));
                w->salive[r] = (uint8_t)(L == 0 || w->alive[L]);
                w->ret[r] = 0.0;
                w->rmem[r] = (int)(((plan_u64(&g) >> 32) * (uint64_t)kmem) >> 32);
            }
        double disc = 1.0;
        for (int t = 0; t < D; t++) {
            /* a rollout ends at the horizon: depth(leaf) + t < H */
            for (size_t r = 0; r < rows; r++)
                if (w->depth[w->leaf[r / (size_t)R]] + t >= H) w->salive[r] = 0;
            int any = 0;
            for (size_t r = 0; r < rows && !any; r++) any = w->salive[r];
            if (!any) break;
            for (size_t r = 0; r < rows; r++) {
                int k = (int)(((plan_u64(&g) >> 32) * (uint64_t)K) >> 32);
                for (int j = 0; j < K; j++) w->sa[r * K + j] = (float)(j == k);
            }
            plan_mstep_run(w->ms, dyn, run->pool, run->members, run->k,
                           cfg->rollout_mean || !dyn->ens ? NULL : w->rmem, w->sx, w->sa, rows,
                           w->sn, w->smr);
            run->model_rows += (double)rows * (cfg->rollout_mean ? kmem : 1);
            mb_reward_step(rw, O, K, rows, w->sn, w->sa, rw->use_learned ? w->smr : NULL, w->salive,
                           w->srw);
            for (size_t r = 0; r < rows; r++) w->ret[r] += disc * w->srw[r];
            memcpy(w->sx, w->sn, rows * (size_t)O * sizeof(float));
            disc *= rw->discount;
        }
        /* 4. backup */
        for (int b = 0; b < nb; b++) {
            double v = 0.0;
            for (int q = 0; q < R; q++) v += w->ret[(size_t)b * R + q];
            v /= R;
            if (!vmin_set) {
                nm.vmin = v;
                vmin_set = 1;
            }
            mcts__backup(w, &nm, w->leaf[b], v);
        }
        sims += nb;
    }
    /* the plan: most visited children down the tree, then the last action */
    int node = 0, last = 0, t = 0;
    for (; t < H; t++) {
        if (w->child0[node] < 0 || w->N[node] == 0) break;
        int c = mcts__most_visited(w, &nm, node);
        last = c - w->child0[node];
        node = c;
        for (int j = 0; j < K; j++) ws->best[(size_t)t * K + j] = (float)(j == last);
    }
    for (; t < H; t++)
        for (int j = 0; j < K; j++) ws->best[(size_t)t * K + j] = (float)(j == last);
    memcpy(ws->mean, ws->best, (size_t)H * K * sizeof(float));
    plan_methods_eval_best(run);
}
