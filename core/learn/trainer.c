/* trainer.c: fits an ensemble to a replay buffer (see trainer.h), after
 * mbrl-lib's ModelTrainer: normaliser refit, per-member bootstrap order,
 * minibatch Adam over the whole block, holdout MSE per member per epoch,
 * early stopping with patience, best weights per member, elites.
 *
 * Parallel plan, workers <= members (the usual case): one pool run per
 * epoch (tr__epoch_task). Members' parameters and Adam moments are
 * independent, so each member's sequence of steps (gradient of a full
 * minibatch, then its Adam step with t = t0 + step) can run on its own; the
 * members' step sequences are laid end to end and cut into one equal range
 * per worker, a member cut in two running its first part first on one worker
 * and its rest last on the next (a release/acquire step counter orders the
 * two). No barrier per minibatch and no partial gradients; each member's
 * trajectory is the same whatever the pool size. Measured (bench ensemble,
 * mb_train epoch 100k, pool 2 x BLAS 1, best of runs on a noisy VM): 2.47 s
 * with one pool run per minibatch, 2.45 s this way (2.51-2.73 s in others).
 *
 * Parallel plan, more workers than members (one Adam step per minibatch): the members' minibatches are
 * laid end to end (members * n rows) and cut into one equal piece per pool
 * worker; a piece is a few tiles (member, row range). A tile that covers a
 * whole member writes that member's gradient slice directly; a tile that
 * covers part of a member writes a per-piece partial gradient, and the
 * partials are combined weighted by rows (exact: loss_grad returns the
 * gradient of a row mean plus regularisers, so sum_k (rows_k / n) g_k is the
 * gradient over all n rows). With 2 workers and 5 members only one member is
 * split, and both workers get 2.5 members' work. Members' parameters are
 * independent, so each member takes its Adam step (through a view of the
 * optimiser) as soon as its gradient is complete, inside the same parallel
 * pass: a whole member right after its tile, a split member by the last of
 * its pieces to finish. One pool run per minibatch; the Adam work is spread
 * over the workers (a serial Adam over 5 x 4 x 200 parameters cost ~9% of
 * the epoch with the other core idle). The split depends on the pool size
 * only, so a given (seed, pool size) gives bit-identical weights.
 * All scratch is allocated before the first epoch; the epoch loop does not
 * allocate.
 * Not for: threads of its own, job bookkeeping, locking the buffer. */
#include "learn/trainer.h"
#include "learn/term_fit.h"

#include <float.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>

#define TR__MAX_TILES (MB_MAX_MEMBERS + 2)
/* Rows per holdout scoring task; also a lower bound on the workspace rows. */
#define TR__EVAL_CHUNK 1024
/* Rows scored when nothing is held out and max_holdout is 0. */
#define TR__DEFAULT_TRAIN_SCORE_ROWS 10000
/* The defaults that learn (trainer.h, mb_train_plan; the measurements that
 * chose them are in docs/RESULTS.md, "Defaults that learn"). */
#define TR__MIN_STEPS 1000
#define TR__MIN_EPOCHS 5
#define TR__MIN_BATCHES_PER_EPOCH 32.0
#define TR__AUTO_BATCH_MIN 8
#define TR__AUTO_BATCH_MAX 256

void mb_train_cfg_default(mb_train_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_epochs = 100;
    cfg->patience = 5;
    cfg->min_improvement = 0.01f;
    cfg->batch_size = 0; /* adapts: mb_train_plan */
    cfg->lr = 1e-3f;
    cfg->max_holdout = 0;
    cfg->n_elites = 0; /* all members */
    cfg->bootstrap = 1;
    cfg->seed = 0;
    cfg->min_steps = TR__MIN_STEPS;
    cfg->min_epochs = TR__MIN_EPOCHS;
}

void mb_train_plan(const mb_train_cfg *cfg, size_t n_train, mb_train_sizes *out) {
    size_t n = n_train > 0 ? n_train : 1, B;
    if (cfg->batch_size > 0) {
        B = (size_t)cfg->batch_size;
    } else {
        double b = (double)n / TR__MIN_BATCHES_PER_EPOCH;
        if (cfg->min_steps > 0) {
            double fit = (double)n * (double)cfg->max_epochs / (double)cfg->min_steps;
            if (fit < b) b = fit;
        }
        B = b < TR__AUTO_BATCH_MIN ? TR__AUTO_BATCH_MIN
            : b > TR__AUTO_BATCH_MAX ? TR__AUTO_BATCH_MAX : (size_t)b;
    }
    if (B > n) B = n;
    out->batch_size = (int)B;
    out->steps_per_epoch = (int)((n + B - 1) / B);
    long need = cfg->min_steps > 0 ? (cfg->min_steps + out->steps_per_epoch - 1) / out->steps_per_epoch : 0;
    if (need < cfg->min_epochs) need = cfg->min_epochs;
    out->min_epochs = need > cfg->max_epochs ? cfg->max_epochs : (int)need;
}

mb_status mb_train_cfg_check(const mb_train_cfg *cfg, int members, char *err, size_t err_sz) {
    if (cfg->max_epochs < 1 || cfg->max_epochs > 1000000)
        return mb_fail(err, err_sz, MB_ERANGE, "max_epochs %d outside [1, 1000000]", cfg->max_epochs);
    if (cfg->patience < 0 || cfg->patience > 1000000)
        return mb_fail(err, err_sz, MB_ERANGE, "patience %d outside [0, 1000000]", cfg->patience);
    if (!(cfg->min_improvement >= 0.0f && cfg->min_improvement < 1.0f))
        return mb_fail(err, err_sz, MB_ERANGE, "min_improvement %g outside [0, 1)",
                       (double)cfg->min_improvement);
    if (cfg->batch_size < 0 || cfg->batch_size > 65536)
        return mb_fail(err, err_sz, MB_ERANGE, "batch_size %d outside [0, 65536] (0 = adapts)",
                       cfg->batch_size);
    if (cfg->min_steps < 0 || cfg->min_steps > 100000000)
        return mb_fail(err, err_sz, MB_ERANGE, "min_steps %d outside [0, 100000000]", cfg->min_steps);
    if (cfg->min_epochs < 0 || cfg->min_epochs > 1000000)
        return mb_fail(err, err_sz, MB_ERANGE, "min_epochs %d outside [0, 1000000]", cfg->min_epochs);
    if (!(cfg->lr > 0.0f && cfg->lr <= 1.0f))
        return mb_fail(err, err_sz, MB_ERANGE, "lr %g outside (0, 1]", (double)cfg->lr);
    if (cfg->n_elites < 0 || cfg->n_elites > members)
        return mb_fail(err, err_sz, MB_ERANGE, "n_elites %d outside [0, %d] (0 = all members)",
                       cfg->n_elites, members);
    if (cfg->bootstrap != 0 && cfg->bootstrap != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "bootstrap must be 0 or 1");
    if (cfg->keep_last != 0 && cfg->keep_last != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "keep_last must be 0 or 1");
    return MB_OK;
}

/* Normaliser ---------------------------------------------------------------- */

/* Row `slot` as inputs x (in_dim: obs then action) and targets y (out_dim:
 * s' - s, then the reward if out_dim > obs_dim), raw units, in double. */
static void tr__row(const mb_buffer *b, size_t slot, int out_dim, double *x, double *y) {
    size_t od = (size_t)b->obs_dim, ad = (size_t)b->act_dim;
    const float *o = b->obs + slot * od, *a = b->act + slot * ad, *no = b->next_obs + slot * od;
    for (size_t j = 0; j < od; j++) {
        x[j] = (double)o[j];
        y[j] = (double)no[j] - (double)o[j];
    }
    for (size_t j = 0; j < ad; j++) x[od + j] = (double)a[j];
    if ((size_t)out_dim > od) y[od] = (double)b->rew[slot];
}

/* mean and std (ddof 0; < 1e-6 -> 1) from the mean and the sum of squared
 * deviations over n rows. */
static void tr__finish(const double *mu, const double *ss, int dim, size_t n, float *mean,
                       float *std) {
    for (int j = 0; j < dim; j++) {
        double sd = sqrt(ss[j] / (double)n);
        mean[j] = (float)mu[j];
        std[j] = sd < 1e-6 ? 1.0f : (float)sd;
    }
}

void mb_trainer_fit_normalizer(mb_ensemble *e, const mb_buffer *buf, const size_t *slots,
                               size_t n) {
    enum { IN = MB_MAX_OBS_DIM + MB_MAX_ACT_DIM, OUT = MB_MAX_OBS_DIM + 1 };
    int in_dim = mb_ensemble_in_dim(&e->spec), out_dim = mb_ensemble_out_dim(&e->spec);
    if (n == 0) {
        for (int j = 0; j < in_dim; j++) { e->in_mean[j] = 0.0f; e->in_std[j] = 1.0f; }
        for (int j = 0; j < out_dim; j++) { e->out_mean[j] = 0.0f; e->out_std[j] = 1.0f; }
        return;
    }
    double x[IN], y[OUT], sx[IN] = {0}, sy[OUT] = {0}, qx[IN] = {0}, qy[OUT] = {0};
    /* Two passes, row by row (the rows are scattered slots): means first,
     * then squared deviations, so a large mean against a small spread does
     * not cancel. */
    for (size_t i = 0; i < n; i++) {
        tr__row(buf, slots[i], out_dim, x, y);
        for (int j = 0; j < in_dim; j++) sx[j] += x[j];
        for (int j = 0; j < out_dim; j++) sy[j] += y[j];
    }
    for (int j = 0; j < in_dim; j++) sx[j] /= (double)n;
    for (int j = 0; j < out_dim; j++) sy[j] /= (double)n;
    for (size_t i = 0; i < n; i++) {
        tr__row(buf, slots[i], out_dim, x, y);
        for (int j = 0; j < in_dim; j++) qx[j] += (x[j] - sx[j]) * (x[j] - sx[j]);
        for (int j = 0; j < out_dim; j++) qy[j] += (y[j] - sy[j]) * (y[j] - sy[j]);
    }
    tr__finish(sx, qx, in_dim, n, e->in_mean, e->in_std);
    tr__finish(sy, qy, out_dim, n, e->out_mean, e->out_std);
}

/* Training state -------------------------------------------------------------- */

typedef struct {
    int member;
    size_t r0, r1;  /* rows [r0, r1) of the member's current minibatch */
    float *g;       /* gradient destination (member_size floats) */
    float loss;     /* loss_grad's value on these rows */
} tr__tile;

typedef struct {
    int n_tiles;
    tr__tile tiles[TR__MAX_TILES];
    mb_ens_ws *ws;
    float *xn;      /* (rows, in_dim) normalised inputs of one tile */
    float *yn;      /* (rows, out_dim) normalised targets of one tile */
    float *part;    /* (2, member_size) partial-tile gradients (first, last) */
} tr__piece;

typedef struct {
    const mb_ensemble *e;
    const mb_buffer *buf;
    int members, in_dim, out_dim;
    size_t member_size;
    /* normaliser in the form the gather uses: (x - mean) * inv_std */
    float in_mean[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM], in_inv[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM];
    float out_mean[MB_MAX_OBS_DIM + 1], out_inv[MB_MAX_OBS_DIM + 1];
    size_t n_train;
    size_t *order;  /* (members, n_train) slots, each member's epoch order */
    size_t pos, n;  /* current minibatch: positions [pos, pos + n) of each order */
    int n_pieces;
    tr__piece *pieces;
    atomic_int pending[MB_MAX_MEMBERS]; /* partial tiles of a member still running */
    float *grad;    /* (members, member_size), layout = params */
    float *params;  /* the ensemble's block, stepped by the train tasks */
    mb_adam *opt;
    /* whole-epoch schedule (tr__epoch_task): steps of B rows per member */
    size_t batch, n_steps;
    long t0;                               /* opt->t before the epoch */
    atomic_long done[MB_MAX_MEMBERS];      /* steps of each member completed */
    double epoch_loss[MB_MAX_MEMBERS];     /* sum of the members' step losses */
    /* scoring */
    const float *xe, *ye; /* (n_eval, in_dim), (n_eval, out_dim) normalised */
    size_t n_eval;
    int n_chunks;
    double *eval_sum;     /* (members, n_chunks) sum over rows of the row MSE */
} tr__ctx;

/* Normalised rows of `slots` into xn (count, in_dim) and yn (count, out_dim). */
static void tr__gather(const tr__ctx *c, const size_t *slots, size_t count, float *xn, float *yn) {
    const mb_buffer *b = c->buf;
    size_t od = (size_t)b->obs_dim, ad = (size_t)b->act_dim;
    int learn_reward = c->out_dim > b->obs_dim;
    for (size_t r = 0; r < count; r++) {
        /* rows are random slots: fetch a few rows ahead (each row touches
         * obs, act, next_obs and rew, four cache lines apart) */
        if (r + 6 < count) {
            size_t f = slots[r + 6];
            __builtin_prefetch(b->obs + f * od);
            __builtin_prefetch(b->act + f * ad);
            __builtin_prefetch(b->next_obs + f * od);
            __builtin_prefetch(b->rew + f);
        }
        size_t s = slots[r];
        const float *o = b->obs + s * od, *a = b->act + s * ad, *no = b->next_obs + s * od;
        float *x = xn + r * (size_t)c->in_dim, *y = yn + r * (size_t)c->out_dim;
        for (size_t j = 0; j < od; j++) x[j] = (o[j] - c->in_mean[j]) * c->in_inv[j];
        for (size_t j = 0; j < ad; j++) x[od + j] = (a[j] - c->in_mean[od + j]) * c->in_inv[od + j];
        for (size_t j = 0; j < od; j++) y[j] = (no[j] - o[j] - c->out_mean[j]) * c->out_inv[j];
        if (learn_reward) y[od] = (b->rew[s] - c->out_mean[od]) * c->out_inv[od];
    }
}

/* Cuts the current minibatch (members * n rows end to end) into pieces. */
static void tr__plan(tr__ctx *c) {
    size_t n = c->n, total = (size_t)c->members * n;
    int parts[MB_MAX_MEMBERS] = {0};
    for (int p = 0; p < c->n_pieces; p++) {
        tr__piece *pc = &c->pieces[p];
        size_t lo = total * (size_t)p / (size_t)c->n_pieces;
        size_t hi = total * (size_t)(p + 1) / (size_t)c->n_pieces;
        pc->n_tiles = 0;
        int partials = 0;
        for (size_t at = lo; at < hi;) {
            tr__tile *t = &pc->tiles[pc->n_tiles++];
            t->member = (int)(at / n);
            t->r0 = at % n;
            t->r1 = t->r0 + (hi - at) < n ? t->r0 + (hi - at) : n;
            if (t->r0 == 0 && t->r1 == n)
                t->g = c->grad + (size_t)t->member * c->member_size;
            else {
                t->g = pc->part + (size_t)(partials++) * c->member_size;
                parts[t->member]++;
            }
            at += t->r1 - t->r0;
        }
    }
    for (int m = 0; m < c->members; m++)
        atomic_store_explicit(&c->pending[m], parts[m], memory_order_relaxed);
}

/* Adam for member m's slice, through a view of the optimiser: mb_adam_step
 * is one flat elementwise loop, so stepping the members' disjoint slices with
 * the same pre-step `t` equals one step over the block (mb_train advances
 * opt->t once per step, after the pool run). */
static void tr__adam_member(tr__ctx *c, int m) {
    size_t off = (size_t)m * c->member_size;
    mb_adam view = *c->opt;
    view.n = c->member_size;
    view.m = c->opt->m + off;
    view.v = c->opt->v + off;
    mb_adam_step(&view, c->params + off, c->grad + off);
}

/* A split member's gradient: its partial tiles weighted by rows, summed in
 * piece order (so the result does not depend on which worker runs this). */
static void tr__combine_member(tr__ctx *c, int m) {
    float *dst = c->grad + (size_t)m * c->member_size;
    double inv_n = 1.0 / (double)c->n;
    int first = 1;
    for (int p = 0; p < c->n_pieces; p++) {
        const tr__piece *pc = &c->pieces[p];
        for (int k = 0; k < pc->n_tiles; k++) {
            const tr__tile *t = &pc->tiles[k];
            if (t->member != m) continue;
            float w = (float)((double)(t->r1 - t->r0) * inv_n);
            const float *src = t->g;
            if (first) {
                for (size_t i = 0; i < c->member_size; i++) dst[i] = w * src[i];
                first = 0;
            } else {
                for (size_t i = 0; i < c->member_size; i++) dst[i] += w * src[i];
            }
        }
    }
}

/* Piece `task` of one step: gradient of each tile, then the Adam step of
 * every member it completes. A whole member is stepped at once, while its
 * gradient is still in cache; a split member is combined and stepped by
 * whichever of its pieces finishes last (the acq_rel countdown makes the
 * other pieces' partial gradients visible). One pool run per step. */
static void tr__train_task(void *ctx, int task, int worker) {
    (void)worker;
    tr__ctx *c = ctx;
    tr__piece *pc = &c->pieces[task];
    for (int k = 0; k < pc->n_tiles; k++) {
        tr__tile *t = &pc->tiles[k];
        size_t rows = t->r1 - t->r0;
        const size_t *slots = c->order + (size_t)t->member * c->n_train + c->pos + t->r0;
        tr__gather(c, slots, rows, pc->xn, pc->yn);
        t->loss = mb_ensemble_loss_grad(c->e, pc->ws, t->member, pc->xn, pc->yn, rows, t->g);
        if (t->r0 == 0 && t->r1 == c->n) {
            tr__adam_member(c, t->member);
        } else if (atomic_fetch_sub_explicit(&c->pending[t->member], 1, memory_order_acq_rel) == 1) {
            tr__combine_member(c, t->member);
            tr__adam_member(c, t->member);
        }
    }
}

/* One member's steps [s0, s1) of the epoch, each a full minibatch gradient
 * and its Adam step (t = t0 + s + 1). Steps of different members are
 * independent, so a member's trajectory does not depend on the schedule. */
static void tr__member_steps(tr__ctx *c, tr__piece *pc, int m, size_t s0, size_t s1) {
    size_t off = (size_t)m * c->member_size;
    float *g = c->grad + off;
    for (size_t s = s0; s < s1; s++) {
        size_t pos = s * c->batch;
        size_t rows = c->n_train - pos < c->batch ? c->n_train - pos : c->batch;
        const size_t *slots = c->order + (size_t)m * c->n_train + pos;
        tr__gather(c, slots, rows, pc->xn, pc->yn);
        c->epoch_loss[m] += (double)mb_ensemble_loss_grad(c->e, pc->ws, m, pc->xn, pc->yn, rows, g);
        mb_adam view = *c->opt;
        view.t = c->t0 + (long)s;
        view.n = c->member_size;
        view.m = c->opt->m + off;
        view.v = c->opt->v + off;
        mb_adam_step(&view, c->params + off, g);
    }
}

/* Worker `task` of a whole epoch in one pool run (used when workers <=
 * members): the members' step sequences laid end to end (members x n_steps
 * units) are cut into one equal range per worker. A member cut in two runs
 * its first part first on the earlier worker and its second part last on the
 * later one (which waits for the first part: it is due long before, since a
 * range is at least one member long); whole members run in between. No
 * barrier per minibatch, no partial gradients. */
static void tr__epoch_task(void *ctx, int task, int worker) {
    (void)worker;
    tr__ctx *c = ctx;
    tr__piece *pc = &c->pieces[task];
    const size_t S = c->n_steps, U = (size_t)c->members * S;
    const size_t lo = U * (size_t)task / (size_t)c->n_pieces;
    const size_t hi = U * (size_t)(task + 1) / (size_t)c->n_pieces;
    if (lo >= hi) return;
    int m_first = (int)(lo / S), m_last = (int)((hi - 1) / S);
    size_t head0 = lo - (size_t)m_first * S;      /* first member starts mid-way? */
    size_t tail1 = hi - (size_t)m_last * S;       /* last member ends early? */
    int has_head = head0 > 0, has_tail = tail1 < S && m_last != m_first;
    /* 1: the first part of a member continued by the next worker */
    if (has_tail) {
        tr__member_steps(c, pc, m_last, 0, tail1);
        atomic_store_explicit(&c->done[m_last], (long)tail1, memory_order_release);
    }
    /* 2: whole members */
    for (int m = m_first + has_head; m <= m_last - has_tail; m++) {
        size_t s1 = m == m_last ? tail1 : S;
        tr__member_steps(c, pc, m, 0, s1);
        atomic_store_explicit(&c->done[m], (long)s1, memory_order_release);
    }
    /* 3: the rest of a member begun by the previous worker */
    if (has_head) {
        size_t s1 = m_first == m_last ? tail1 : S;
        while (atomic_load_explicit(&c->done[m_first], memory_order_acquire) < (long)head0)
            sched_yield();
        tr__member_steps(c, pc, m_first, head0, s1);
        atomic_store_explicit(&c->done[m_first], (long)s1, memory_order_release);
    }
}

/* After a step: each member's minibatch loss (rows-weighted over its tiles,
 * in piece order). */
static void tr__combine_loss(const tr__ctx *c, double *member_loss) {
    double inv_n = 1.0 / (double)c->n;
    for (int p = 0; p < c->n_pieces; p++) {
        const tr__piece *pc = &c->pieces[p];
        for (int k = 0; k < pc->n_tiles; k++) {
            const tr__tile *t = &pc->tiles[k];
            member_loss[t->member] += (double)(t->r1 - t->r0) * inv_n * (double)t->loss;
        }
    }
}

static void tr__eval_task(void *ctx, int task, int worker) {
    tr__ctx *c = ctx;
    int m = task / c->n_chunks, ch = task % c->n_chunks;
    size_t r0 = (size_t)ch * TR__EVAL_CHUNK;
    size_t r1 = r0 + TR__EVAL_CHUNK < c->n_eval ? r0 + TR__EVAL_CHUNK : c->n_eval;
    float mse = mb_ensemble_mse(c->e, c->pieces[worker].ws, m, c->xe + r0 * (size_t)c->in_dim,
                                c->ye + r0 * (size_t)c->out_dim, r1 - r0);
    c->eval_sum[task] = (double)mse * (double)(r1 - r0);
}

/* Score of every member on the eval rows: mean MSE in normalised units. The
 * chunk sums are added in a fixed order, whichever worker ran them. */
static void tr__evaluate(tr__ctx *c, mb_pool *pool, float *score) {
    mb_pool_run(pool, tr__eval_task, c, c->members * c->n_chunks);
    for (int m = 0; m < c->members; m++) {
        double s = 0.0;
        for (int ch = 0; ch < c->n_chunks; ch++) s += c->eval_sum[m * c->n_chunks + ch];
        score[m] = (float)(s / (double)c->n_eval);
    }
}

static void tr__shuffle(size_t *a, size_t n, mb_rng *rng) {
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)mb_rng_below(rng, i);
        size_t t = a[i - 1];
        a[i - 1] = a[j];
        a[j] = t;
    }
}

static double tr__now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Ranks members by loss (best first, ties by index) into e's elite list. */
static void tr__mark_elites(mb_ensemble *e, const float *loss, int n_elites) {
    int M = e->spec.members, rank[MB_MAX_MEMBERS];
    for (int m = 0; m < M; m++) rank[m] = m;
    for (int i = 1; i < M; i++) { /* insertion sort: M <= 16; NaN ranks last */
        int v = rank[i], j = i;
        while (j > 0 && (loss[v] < loss[rank[j - 1]] ||
                         (isnan(loss[rank[j - 1]]) && !isnan(loss[v])))) {
            rank[j] = rank[j - 1];
            j--;
        }
        rank[j] = v;
    }
    for (int m = 0; m < M; m++) {
        e->elites[m] = rank[m];
        e->holdout_loss[m] = loss[m];
    }
    e->n_elites = n_elites > 0 ? n_elites : M;
}

mb_status mb_train(mb_ensemble *e, mb_adam *opt, const mb_buffer *buf, const mb_train_cfg *cfg,
                   mb_pool *pool, mb_train_epoch_fn cb, void *cb_ctx, mb_train_result *res,
                   char *err, size_t err_sz) {
    double t_start = tr__now();
    mb_train_result res_local;
    if (!res) res = &res_local;
    memset(res, 0, sizeof *res);
    if (!e || !e->params || !opt || !buf || !buf->obs || !cfg)
        return mb_fail(err, err_sz, MB_EINVAL, "train: NULL ensemble, optimiser, buffer or config");
    const mb_ensemble_spec *spec = &e->spec;
    const int M = spec->members;
    mb_status st = mb_train_cfg_check(cfg, M, err, err_sz);
    if (st != MB_OK) return st;
    if (buf->obs_dim != spec->obs_dim || buf->act_dim != spec->act_dim)
        return mb_fail(err, err_sz, MB_EINVAL,
                       "train: buffer dims (%d, %d) differ from the ensemble's (%d, %d)",
                       buf->obs_dim, buf->act_dim, spec->obs_dim, spec->act_dim);
    if (opt->m && opt->n != e->n_params)
        return mb_fail(err, err_sz, MB_EINVAL, "train: optimiser holds %zu floats, ensemble %zu",
                       opt->n, e->n_params);

    tr__ctx c;
    memset(&c, 0, sizeof c);
    c.e = e;
    c.buf = buf;
    c.members = M;
    c.in_dim = mb_ensemble_in_dim(spec);
    c.out_dim = mb_ensemble_out_dim(spec);
    c.member_size = e->member_size;
    c.n_pieces = mb_pool_size(pool);
    c.params = e->params;
    c.opt = opt;

    float saved_in_mean[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM], saved_in_std[MB_MAX_OBS_DIM + MB_MAX_ACT_DIM];
    float saved_out_mean[MB_MAX_OBS_DIM + 1], saved_out_std[MB_MAX_OBS_DIM + 1];
    int refit = 0, started = 0;
    size_t *train = NULL, *hold = NULL, n_train = 0, n_hold = 0;
    float *xe = NULL, *ye = NULL, *best = NULL;
    st = MB_ENOMEM;
    train = malloc((buf->size ? buf->size : 1) * sizeof *train);
    hold = malloc((buf->size ? buf->size : 1) * sizeof *hold);
    if (!train || !hold) goto out;
    mb_buffer_split(buf, train, &n_train, hold, &n_hold);
    res->n_train = n_train;
    res->n_holdout = n_hold;
    mb_train_sizes tp;
    mb_train_plan(cfg, n_train, &tp);
    const size_t B = (size_t)tp.batch_size;
    res->batch_size = tp.batch_size;
    res->min_epochs = tp.min_epochs;
    if (n_train < 2) {
        st = mb_fail(err, err_sz, MB_ESTATE,
                     "train: need at least 2 training rows, have %zu (%zu rows held, %zu in holdout)",
                     n_train, buf->size, n_hold);
        goto out;
    }
    if (!opt->m) {
        st = mb_adam_init(opt, e->n_params, cfg->lr, err, err_sz);
        if (st != MB_OK) goto out;
        st = MB_ENOMEM;
    }
    opt->lr = cfg->lr; /* this call's step size, also on a warm optimiser */

    /* The normaliser is refit here; on an error before training starts the
     * ensemble gets its old one back, so a failed call leaves e as it was. */
    memcpy(saved_in_mean, e->in_mean, (size_t)c.in_dim * sizeof(float));
    memcpy(saved_in_std, e->in_std, (size_t)c.in_dim * sizeof(float));
    memcpy(saved_out_mean, e->out_mean, (size_t)c.out_dim * sizeof(float));
    memcpy(saved_out_std, e->out_std, (size_t)c.out_dim * sizeof(float));
    refit = 1;
    mb_trainer_fit_normalizer(e, buf, train, n_train);
    for (int j = 0; j < c.in_dim + c.out_dim; j++) {
        float mu = j < c.in_dim ? e->in_mean[j] : e->out_mean[j - c.in_dim];
        float sd = j < c.in_dim ? e->in_std[j] : e->out_std[j - c.in_dim];
        if (!isfinite(mu) || !isfinite(sd)) {
            st = mb_fail(err, err_sz, MB_EINVAL,
                         "train: non-finite or overflowing values in the training rows (%s column %d)",
                         j < c.in_dim ? "input" : "target", j < c.in_dim ? j : j - c.in_dim);
            goto out;
        }
    }
    for (int j = 0; j < c.in_dim; j++) {
        c.in_mean[j] = e->in_mean[j];
        c.in_inv[j] = (float)(1.0 / (double)e->in_std[j]);
    }
    for (int j = 0; j < c.out_dim; j++) {
        c.out_mean[j] = e->out_mean[j];
        c.out_inv[j] = (float)(1.0 / (double)e->out_std[j]);
    }

    /* Score rows: the holdout, or training rows when nothing is held out;
     * an even stride picks them when capped. */
    const size_t *score_src = n_hold > 0 ? hold : train;
    size_t n_src = n_hold > 0 ? n_hold : n_train;
    size_t cap = cfg->max_holdout ? cfg->max_holdout
                                  : (n_hold > 0 ? n_src : TR__DEFAULT_TRAIN_SCORE_ROWS);
    c.n_eval = n_src < cap ? n_src : cap;
    c.n_chunks = (int)((c.n_eval + TR__EVAL_CHUNK - 1) / TR__EVAL_CHUNK);
    xe = malloc(c.n_eval * (size_t)c.in_dim * sizeof(float));
    ye = malloc(c.n_eval * (size_t)c.out_dim * sizeof(float));
    c.eval_sum = malloc((size_t)M * (size_t)c.n_chunks * sizeof(double));
    if (!xe || !ye || !c.eval_sum) goto out;
    for (size_t i = 0; i < c.n_eval; i++) {
        size_t slot = score_src[c.n_eval == n_src ? i : i * n_src / c.n_eval];
        tr__gather(&c, &slot, 1, xe + i * (size_t)c.in_dim, ye + i * (size_t)c.out_dim);
    }
    c.xe = xe;
    c.ye = ye;

    /* Each member's rows: its own bootstrap resample (drawn once per run, as
     * mbrl-lib does) or the training rows, shuffled every epoch. */
    c.n_train = n_train;
    c.order = malloc((size_t)M * n_train * sizeof(size_t));
    c.grad = calloc(e->n_params, sizeof(float));
    best = malloc(e->n_params * sizeof(float));
    c.pieces = calloc((size_t)c.n_pieces, sizeof *c.pieces);
    if (!c.order || !c.grad || !best || !c.pieces) goto out;
    size_t ws_rows = B > TR__EVAL_CHUNK ? B : TR__EVAL_CHUNK;
    for (int p = 0; p < c.n_pieces; p++) {
        tr__piece *pc = &c.pieces[p];
        pc->ws = mb_ens_ws_new(spec, ws_rows);
        pc->xn = malloc(B * (size_t)c.in_dim * sizeof(float));
        pc->yn = malloc(B * (size_t)c.out_dim * sizeof(float));
        pc->part = malloc(2 * c.member_size * sizeof(float));
        if (!pc->ws || !pc->xn || !pc->yn || !pc->part) goto out;
    }
    mb_rng root, rng[MB_MAX_MEMBERS];
    mb_rng_seed(&root, cfg->seed);
    for (int m = 0; m < M; m++) {
        mb_rng_split(&root, (uint64_t)m + 1, &rng[m]);
        size_t *o = c.order + (size_t)m * n_train;
        if (cfg->bootstrap) mb_buffer_bootstrap(train, n_train, o, n_train, &rng[m]);
        else memcpy(o, train, n_train * sizeof(size_t));
    }

    /* Epoch 0: the weights we start from are the first "best" (a warm
     * restart must not end worse than it began). */
    float score[MB_MAX_MEMBERS], best_score[MB_MAX_MEMBERS], ref_score[MB_MAX_MEMBERS];
    int best_at[MB_MAX_MEMBERS] = {0}; /* epoch of each member's kept weights */
    float train_loss[MB_MAX_MEMBERS];
    tr__evaluate(&c, pool, score);
    double best_mean = 0.0;
    for (int m = 0; m < M; m++) {
        /* entry weights that score NaN/inf (a diverged import) lose to any
         * finite epoch; FLT_MAX keeps the relative test meaningful */
        if (!isfinite(score[m])) score[m] = FLT_MAX;
        best_score[m] = ref_score[m] = score[m];
        best_mean += score[m];
    }
    memcpy(best, e->params, e->n_params * sizeof(float));
    int since_improved = 0, diverged = 0;
    st = MB_OK;
    started = 1;

    for (int epoch = 1; epoch <= cfg->max_epochs; epoch++) {
        double loss_sum[MB_MAX_MEMBERS] = {0};
        size_t n_batches = 0;
        for (int m = 0; m < M; m++) tr__shuffle(c.order + (size_t)m * n_train, n_train, &rng[m]);
        if (c.n_pieces <= M) {
            c.batch = B;
            c.n_steps = (n_train + B - 1) / B;
            c.t0 = opt->t;
            for (int m = 0; m < M; m++) {
                atomic_store_explicit(&c.done[m], 0, memory_order_relaxed);
                c.epoch_loss[m] = 0.0;
            }
            mb_pool_run(pool, tr__epoch_task, &c, c.n_pieces);
            opt->t += (long)c.n_steps;
            n_batches = c.n_steps;
            for (int m = 0; m < M; m++) loss_sum[m] = c.epoch_loss[m];
        } else {
            for (c.pos = 0; c.pos < n_train; c.pos += c.n) {
                c.n = n_train - c.pos < B ? n_train - c.pos : B;
                tr__plan(&c);
                mb_pool_run(pool, tr__train_task, &c, c.n_pieces);
                opt->t++;
                tr__combine_loss(&c, loss_sum);
                n_batches++;
            }
        }
        for (int m = 0; m < M; m++) train_loss[m] = (float)(loss_sum[m] / (double)n_batches);

        tr__evaluate(&c, pool, score);
        for (int m = 0; m < M && !diverged; m++) {
            if (isfinite(train_loss[m]) && isfinite(score[m])) continue;
            /* NaN/inf weights would also poison Adam's moments for every later
             * (warm) run: reset the optimiser and end with the best weights. */
            diverged = 1;
            memset(opt->m, 0, opt->n * sizeof(float));
            memset(opt->v, 0, opt->n * sizeof(float));
            opt->t = 0;
            st = mb_fail(err, err_sz, MB_ERANGE,
                         "train: diverged at epoch %d (non-finite loss of member %d); kept the "
                         "best weights and reset the optimiser (try a smaller lr)", epoch, m);
        }
        if (diverged) {
            res->epochs = epoch;
            memcpy(res->train_loss, train_loss, (size_t)M * sizeof(float));
            break;
        }
        int improved = 0;
        double mean = 0.0;
        for (int m = 0; m < M; m++) {
            mean += score[m];
            if (score[m] < best_score[m]) { /* keep the member's best weights */
                best_score[m] = score[m];
                best_at[m] = epoch;
                size_t off = (size_t)m * c.member_size;
                memcpy(best + off, e->params + off, c.member_size * sizeof(float));
            }
            /* relative to the reference, as mbrl-lib: slow steady progress
             * adds up until it counts */
            if ((ref_score[m] - score[m]) > cfg->min_improvement * fabsf(ref_score[m])) improved = 1;
        }
        if (mean < best_mean) {
            best_mean = mean;
            res->best_epoch = epoch;
        }
        if (improved) {
            for (int m = 0; m < M; m++)
                if (score[m] < ref_score[m]) ref_score[m] = score[m];
            since_improved = 0;
        } else {
            since_improved++;
        }
        res->epochs = epoch;
        memcpy(res->train_loss, train_loss, (size_t)M * sizeof(float));
        if (cb && cb(cb_ctx, epoch, M, train_loss, score)) {
            res->canceled = 1;
            st = mb_fail(err, err_sz, MB_ECANCELED, "train: canceled after epoch %d", epoch);
            break;
        }
        res->steps += (long)n_batches;
        if (cfg->patience > 0 && since_improved >= cfg->patience && epoch >= tp.min_epochs) {
            res->stopped_early = 1;
            break;
        }
    }

    if (cfg->keep_last && !diverged) {
        memcpy(best_score, score, (size_t)M * sizeof(float));
    } else {
        memcpy(e->params, best, e->n_params * sizeof(float));
        /* Weights rolled back to an earlier epoch no longer match Adam's
         * moments (they carry the later epochs' gradients): the next warm
         * run starts the optimiser afresh from the kept weights. */
        int rolled_back = 0;
        for (int m = 0; m < M; m++) rolled_back |= best_at[m] != res->epochs;
        if (rolled_back && !diverged) {
            memset(opt->m, 0, opt->n * sizeof(float));
            memset(opt->v, 0, opt->n * sizeof(float));
            opt->t = 0;
        }
    }
    memcpy(res->holdout_loss, best_score, (size_t)M * sizeof(float));
    tr__mark_elites(e, best_score, cfg->n_elites);
    if (e->term.params && st == MB_OK) { /* the termination head, on the same rows */
        mb_term_fit_result tf;
        st = mb_term_fit(e, buf, train, n_train, n_hold ? hold : train, n_hold ? n_hold : n_train,
                         cfg->seed, &tf, err, err_sz);
        res->term_steps = tf.steps;
        res->term_pos = tf.n_pos;
        res->term_loss = tf.loss;
        res->term_acc_pos = tf.acc_pos;
        res->term_acc_neg = tf.acc_neg;
    }

out:
    if (refit && !started) {
        memcpy(e->in_mean, saved_in_mean, (size_t)c.in_dim * sizeof(float));
        memcpy(e->in_std, saved_in_std, (size_t)c.in_dim * sizeof(float));
        memcpy(e->out_mean, saved_out_mean, (size_t)c.out_dim * sizeof(float));
        memcpy(e->out_std, saved_out_std, (size_t)c.out_dim * sizeof(float));
    }
    if (c.pieces) {
        for (int p = 0; p < c.n_pieces; p++) {
            mb_ens_ws_free(c.pieces[p].ws);
            free(c.pieces[p].xn);
            free(c.pieces[p].yn);
            free(c.pieces[p].part);
        }
        free(c.pieces);
    }
    if (st == MB_ENOMEM) mb_fail(err, err_sz, MB_ENOMEM, "train: out of memory");
    free(c.order);
    free(c.grad);
    free(c.eval_sum);
    free(best);
    free(xe);
    free(ye);
    free(train);
    free(hold);
    res->seconds = tr__now() - t_start;
    return st;
}
