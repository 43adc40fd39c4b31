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
 * (checked between rounds). The deadline (mb_plan_ctl.stop) is polled
 * before every round and every rollout step: a round it cuts is dropped
 * (its virtual losses undone; leaves it expanded keep their unvisited
 * children), and the search answers from the rounds that finished, with
 * the chosen root action's value as the predicted return; when no root
 * action has been visited yet (a re-rooted tree counts its visits) there
 * is no answer (MB_ECANCELED). The answer is the most visited root action
 * (ties: the higher Q); the plan follows the most visited children down
 * the tree and repeats its last action beyond it.
 * The tree lives in the workspace. With tree_reuse, a call from the same
 * session (state object), model, config and reward whose observation
 * matches the child of the action answered last time re-roots the kept
 * tree there and adds its simulations to the visits already made (room for
 * two calls' nodes is reserved; a full tree stops the search early).
 * No allocation in plan_mcts_run. */
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
    int *newidx;           /* (max_nodes) re-rooting scratch */
    /* tree reuse (cfg->tree_reuse): what the kept tree was grown for */
    int kept;              /* 1: the tree below may be re-rooted by the next call */
    int reused;            /* this call started from a re-rooted tree */
    int kept_action;       /* the root action answered */
    const void *kept_state, *kept_model;  /* the session's state and the dynamics */
    mb_planner_cfg kept_cfg;
    mb_reward_spec kept_rw;
    void *block;           /* the arrays (mcts__layout) */
    int *leaf;             /* (B) */
    int *expand;           /* (B) leaves expanded this round */
    plan_mstep *ms;
    size_t rows;           /* max(B K, B R) */
    float *sx, *sa, *sn, *smr, *srw; /* (rows, O), (rows, K), (rows, O), (rows), (rows) */
    uint8_t *salive;       /* (rows) */
    int *rmem;             /* (rows) member per rollout row */
    double *ret;           /* (rows) */
};

/* The workspace's sizes and arrays for cfg and sh: with w, its sizes are
 * set; with block too, its arrays point into it. *block_bytes gets the
 * block's size. Returns the bytes plan_mcts_ws_new allocates (struct,
 * block, model step), the same code sizing and carving. */
static size_t mcts__layout(const mb_planner_cfg *cfg, const plan_shape *sh, plan_mcts_ws *w, char *block,
                           size_t *block_bytes) {
    size_t O = (size_t)sh->obs_dim, K = (size_t)sh->act_dim, B = (size_t)cfg->leaf_batch;
    size_t R = (size_t)cfg->particles;
    int max_sims = cfg->simulations > 0 ? cfg->simulations : MCTS_TIME_SIMS;
    size_t M = 1 + ((size_t)max_sims + B) * K;
    /* a re-rooted tree keeps its nodes: room for one more call's */
    if (cfg->tree_reuse) M = 2 * M;
    size_t rows = B * (K > R ? K : R);
    if (w) {
        w->O = (int)O;
        w->K = (int)K;
        w->H = cfg->horizon;
        w->B = (int)B;
        w->R = (int)R;
        w->D = cfg->rollout_depth;
        w->max_sims = max_sims;
        w->max_nodes = M;
        w->rows = rows;
    }
    plan_carver c = {block, 0};
    PLAN_CARVE(&c, w, state, M * O);
    PLAN_CARVE(&c, w, edge_r, M);
    PLAN_CARVE(&c, w, alive, M);
    PLAN_CARVE(&c, w, pending, M);
    PLAN_CARVE(&c, w, parent, M);
    PLAN_CARVE(&c, w, child0, M);
    PLAN_CARVE(&c, w, depth, M);
    PLAN_CARVE(&c, w, N, M);
    PLAN_CARVE(&c, w, vl, M);
    PLAN_CARVE(&c, w, W, M);
    PLAN_CARVE(&c, w, leaf, B);
    PLAN_CARVE(&c, w, newidx, M);
    PLAN_CARVE(&c, w, expand, B);
    PLAN_CARVE(&c, w, sx, rows * O);
    PLAN_CARVE(&c, w, sa, rows * K);
    PLAN_CARVE(&c, w, sn, rows * O);
    PLAN_CARVE(&c, w, smr, rows);
    PLAN_CARVE(&c, w, srw, rows);
    PLAN_CARVE(&c, w, salive, rows);
    PLAN_CARVE(&c, w, rmem, rows);
    PLAN_CARVE(&c, w, ret, rows);
    *block_bytes = c.off;
    return sizeof(plan_mcts_ws) + c.off + plan_mstep_bytes(sh->spec, rows);
}

size_t plan_mcts_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh) {
    size_t block;
    return mcts__layout(cfg, sh, NULL, NULL, &block);
}

plan_mcts_ws *plan_mcts_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    plan_mcts_ws *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    plan_shape sh = plan_shape_of(dyn);
    size_t block;
    mcts__layout(cfg, &sh, w, NULL, &block);
    w->block = calloc(1, block);
    w->ms = plan_mstep_new(dyn, w->rows);
    if (!w->block || !w->ms) {
        plan_mcts_ws_free(w);
        return NULL;
    }
    mcts__layout(cfg, &sh, w, w->block, &block);
    return w;
}

void plan_mcts_ws_free(plan_mcts_ws *w) {
    if (!w) return;
    plan_mstep_free(w->ms);
    free(w->block);
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

static int mcts__first_action(const float *onehot, int K) {
    int k = 0;
    for (int i = 1; i < K; i++)
        if (onehot[i] > onehot[k]) k = i;
    return k;
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

/* Tree reuse: if the last call of this session (same state object, model,
 * reward, and the settings that give the nodes their meaning: horizon,
 * rollout depth, rollout mode, rollouts per leaf, members) answered action a and obs matches the child of a
 * (every |s - obs| <= 1e-4 (1 + |obs|)), that child becomes the root: its
 * subtree is compacted to the front in one pass (a node's children were
 * made after it, so membership and the new, smaller indices follow in
 * index order and no node is overwritten before it moves). Returns 1 if
 * re-rooted. */
static int mcts__reroot(plan_run *run, plan_mcts_ws *w) {
    if (!w->kept || !run->state || w->kept_state != (const void *)run->state ||
        w->kept_model != (run->dyn->ens ? (const void *)run->dyn->ens : (const void *)run->dyn->known) ||
        w->kept_cfg.horizon != run->cfg->horizon || w->kept_cfg.rollout_depth != run->cfg->rollout_depth ||
        w->kept_cfg.rollout_mean != run->cfg->rollout_mean || w->kept_cfg.particles != run->cfg->particles ||
        w->kept_cfg.elites_only != run->cfg->elites_only ||
        memcmp(&w->kept_rw, run->rw, sizeof w->kept_rw) || w->child0[0] < 0)
        return 0;
    const int O = w->O;
    int c = w->child0[0] + w->kept_action;
    if (!w->alive[c]) return 0;
    for (int i = 0; i < O; i++) {
        float d = fabsf(w->state[(size_t)c * O + i] - run->obs[i]);
        if (!(d <= 1e-4f * (1.0f + fabsf(run->obs[i])))) return 0;
    }
    size_t n = 0;
    for (size_t i = 0; i < w->n_nodes; i++) {
        int p = w->parent[i];
        int member = (int)i == c || (p >= 0 && w->newidx[p] >= 0 && (size_t)p >= (size_t)c);
        w->newidx[i] = member ? (int)n++ : -1;
        if (!member) continue;
        size_t j = (size_t)w->newidx[i];
        if (j != i) {
            memcpy(w->state + j * O, w->state + i * O, (size_t)O * sizeof(float));
            w->edge_r[j] = w->edge_r[i];
            w->alive[j] = w->alive[i];
            w->N[j] = w->N[i];
            w->W[j] = w->W[i];
            w->child0[j] = w->child0[i];
        }
        w->parent[j] = (int)i == c ? -1 : w->newidx[p];
        w->depth[j] = w->depth[i] - 1;
        w->vl[j] = 0;
        w->pending[j] = 0;
    }
    for (size_t j = 0; j < n; j++)
        if (w->child0[j] >= 0) w->child0[j] = w->newidx[w->child0[j]];
    memcpy(w->state, run->obs, (size_t)O * sizeof(float)); /* the observed state, to rounding */
    w->edge_r[0] = 0.0f;
    w->alive[0] = 1;
    w->n_nodes = n;
    return 1;
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
    w->reused = 0;
    if (cfg->tree_reuse && mcts__reroot(run, w)) {
        w->reused = 1;
        /* the value range seen so far, for the normalisation */
        for (size_t i = 0; i < w->n_nodes; i++) {
            if (w->N[i] == 0) continue;
            double v = w->W[i] / w->N[i];
            if (!vmin_set || v < nm.vmin) nm.vmin = v;
            vmin_set = 1;
            if (i == 0) continue;
            double q = w->edge_r[i] + (w->alive[i] ? nm.disc * v : 0.0);
            if (!nm.have_q) nm.qmin = nm.qmax = q, nm.have_q = 1;
            if (q < nm.qmin) nm.qmin = q;
            if (q > nm.qmax) nm.qmax = q;
        }
    } else {
        /* a fresh root */
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
    }
    w->kept = 0;
    int sims = 0, max_sims = cfg->simulations > 0 ? cfg->simulations : MCTS_TIME_SIMS;
    if (max_sims > w->max_sims) max_sims = w->max_sims;
    while (sims < max_sims) {
        if (cfg->max_ms > 0.0f && sims > 0 && mcts__ms_since(&t0) >= cfg->max_ms) break;
        if (plan_should_stop(run)) break; /* the deadline, before a round */
        int nb = max_sims - sims < B ? max_sims - sims : B;
        if (w->n_nodes + (size_t)nb * K > w->max_nodes) break; /* full (time budget, or a kept tree) */
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
        int cut = 0;
        for (int t = 0; t < D; t++) {
            /* a rollout ends at the horizon: depth(leaf) + t < H */
            for (size_t r = 0; r < rows; r++)
                if (w->depth[w->leaf[r / (size_t)R]] + t >= H) w->salive[r] = 0;
            int any = 0;
            for (size_t r = 0; r < rows && !any; r++) any = w->salive[r];
            if (!any) break;
            if ((cut = plan_should_stop(run))) break; /* the deadline, between steps */
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
        if (cut) { /* the round is dropped: its virtual visits undone */
            for (int b = 0; b < nb; b++)
                for (int n = w->leaf[b]; n >= 0; n = w->parent[n]) {
                    w->vl[n]--;
                    if (n == 0) break;
                }
            break;
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
    if (run->stopped) { /* an answer needs a visited root action */
        int visited = 0;
        for (int k = 0; w->child0[0] >= 0 && k < K; k++) visited |= w->N[w->child0[0] + k] > 0;
        if (!visited) return;
    }
    /* the plan: most visited children down the tree, then the last action */
    int node = 0, last = 0, t = 0;
    for (; t < H; t++) {
        if (w->child0[node] < 0 || w->N[node] == 0) break;
        int c = mcts__most_visited(w, &nm, node);
        last = c - w->child0[node];
        if (t == 0) run->ret_mean = (float)mcts__q(w, &nm, c); /* the tree's value: if stopped */
        node = c;
        for (int j = 0; j < K; j++) ws->best[(size_t)t * K + j] = (float)(j == last);
    }
    run->ret_std = 0.0f;
    run->have_best = 1;
    for (; t < H; t++)
        for (int j = 0; j < K; j++) ws->best[(size_t)t * K + j] = (float)(j == last);
    memcpy(ws->mean, ws->best, (size_t)H * K * sizeof(float));
    if (cfg->tree_reuse && w->child0[0] >= 0) {
        w->kept = 1;
        w->kept_action = mcts__first_action(ws->best, K);
        w->kept_state = run->state;
        w->kept_model = dyn->ens ? (const void *)dyn->ens : (const void *)dyn->known;
        memcpy(&w->kept_cfg, cfg, sizeof w->kept_cfg);
        memcpy(&w->kept_rw, rw, sizeof w->kept_rw);
    }
    plan_methods_eval_best(run);
}
