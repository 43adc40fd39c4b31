/* propagate.c: scores a population of action sequences by rolling them out
 * through known dynamics or the ensemble (trajectory sampling), with the
 * declared and learned rewards, termination and discount.
 *
 * Rows: candidate c, particle p is row r = c * P + p; its state lives in
 * ws->S. For the ensemble, each step gathers (state, action) rows into
 * ws->x, member-major, and pushes all of them through the members with one
 * mb_ensemble_forward (one sgemm per layer per (member, row block) tile):
 *   TS-inf:  row r goes to position q = r, i.e. member q % k for the whole
 *            rollout (particle p of every candidate keeps member p % k when
 *            k divides P). When it does not, candidates get the members in
 *            different proportions (P 20 over 3 members: 7/7/6, 6/7/7, ...),
 *            so a candidate's return is the mean over its members of the
 *            mean over each member's particles: every candidate weighs the
 *            members equally. With P < k the first P members (rotating with
 *            the evaluation) are used, one particle each;
 *   TS-1:    q = a fresh random permutation of the rows at every step;
 *            position q is slot (q % k) * n + q / k, n = ceil(rows / k);
 *   expectation / mean: every row through every member (x holds k copies),
 *            next = s + mean over members (+ sqrt(mean variance) * eps).
 * The state update, noise, rewards and next gather run in parallel tasks of
 * whole candidates (PLAN_TASK_ROWS rows) on the pool; each task draws from
 * its own stream (seed, evaluation, step, task), so the result does not
 * depend on the number of workers.
 *
 * Threads, measured on this 2-core machine (bench/bench_plan.c): see the
 * comment there; the pool given to mb_plan is handed to the forward.
 * Not for: choosing candidates (planner.c). */
#include "plan/plan_ws.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#ifdef MB_X86
#include <immintrin.h>
#endif

void plan_gen_init(plan_gen *g, uint64_t seed, uint64_t stream) {
    mb_rng base, child;
    mb_rng_seed(&base, seed);
    mb_rng_split(&base, stream, &child);
    memcpy(g->s, child.s, sizeof g->s);
    if (!(g->s[0] | g->s[1] | g->s[2] | g->s[3])) g->s[0] = 1; /* xoshiro's one bad state */
    g->has_spare = 0;
    g->spare = 0;
}

float plan_normal_slow(plan_gen *g, const mb_plan_ws *ws, int i, float u) {
    for (;;) {
        if (i == 0) { /* the tail beyond R (Marsaglia) */
            const double R = PLAN_ZIG_R;
            double x, y;
            do {
                x = log(((double)(plan_u64(g) >> 11) + 0.5) * 0x1p-53) / R;
                y = log(((double)(plan_u64(g) >> 11) + 0.5) * 0x1p-53);
            } while (-2.0 * y < x * x);
            return (float)(u < 0 ? x - R : R - x);
        }
        double x = (double)u * ws->zig_x[i];
        double f0 = exp(-0.5 * (ws->zig_x[i] * ws->zig_x[i] - x * x));
        double f1 = exp(-0.5 * (ws->zig_x[i + 1] * ws->zig_x[i + 1] - x * x));
        if (f1 + (double)plan_uniform(g) * (f0 - f1) < 1.0) return (float)x;
        uint32_t h = (uint32_t)plan_u64(g);
        i = (int)(h & 127u);
        u = (float)(int32_t)(h & ~127u) * 0x1p-31f;
        if (fabsf(u) < ws->zig_rf[i]) return u * ws->zig_xf[i];
    }
}

void plan_vgen_init(plan_vgen *g, uint64_t seed, uint64_t stream) {
    mb_vrng_init(&g->v, seed, stream);
    plan_gen_init(&g->scalar, seed, stream ^ 0x5ca1a7ull);
}

/* The vector streams at every instruction-set level (scalar twins where
 * the CPU lacks AVX2): the same normals whatever the CPU. */
void plan_fill_normal(plan_vgen *g, const mb_plan_ws *ws, float *out, size_t n) {
    (void)ws;
    mb_vrng_fill_normal(&g->v, out, n);
}

/* A task's supply of normals, refilled PLAN_NOISE_CHUNK at a time. */
typedef struct {
    plan_vgen g;
    int pos;
    float buf[PLAN_NOISE_CHUNK];
} prop_noise;

static inline float prop__eps(prop_noise *q, const mb_plan_ws *ws) {
    if (q->pos == PLAN_NOISE_CHUNK) {
        plan_fill_normal(&q->g, ws, q->buf, PLAN_NOISE_CHUNK);
        q->pos = 0;
    }
    return q->buf[q->pos++];
}

/* The next n normals (n <= MB_MAX_OBS_DIM + 1) as one array: the same values
 * in the same order as n calls of prop__eps; tmp (n) is used when they
 * straddle a refill. */
static inline const float *prop__eps_n(prop_noise *q, const mb_plan_ws *ws, int n, float *tmp) {
    if (q->pos + n <= PLAN_NOISE_CHUNK) {
        q->pos += n;
        return q->buf + q->pos - n;
    }
    for (int i = 0; i < n; i++) tmp[i] = prop__eps(q, ws);
    return tmp;
}

/* s += m + sd * e over n floats: the scalar loop's operations (no fused
 * multiply-add), 8 lanes at a time where the CPU has AVX2, so the bits do
 * not depend on the CPU. */
#ifdef MB_X86
static MB_TARGET_AVX2 void prop__step8(float *s, const float *m, const float *sd, const float *e, int n) {
    int o = 0;
    for (; o + 8 <= n; o += 8)
        _mm256_storeu_ps(s + o, _mm256_add_ps(_mm256_loadu_ps(s + o),
                                              _mm256_add_ps(_mm256_loadu_ps(m + o),
                                                            _mm256_mul_ps(_mm256_loadu_ps(sd + o),
                                                                          _mm256_loadu_ps(e + o)))));
    for (; o < n; o++) s[o] += m[o] + sd[o] * e[o];
}
#endif
static inline void prop__step(float *s, const float *m, const float *sd, const float *e, int n) {
#ifdef MB_X86
    if (mb_cpu_isa() >= MB_ISA_AVX2) {
        prop__step8(s, m, sd, e, n);
        return;
    }
#endif
    for (int o = 0; o < n; o++) s[o] += m[o] + sd[o] * e[o];
}

typedef struct {
    plan_run *run;
    int n_cand;         /* candidates evaluated */
    int cand_per_task;
    int t;              /* step */
    int last;           /* t == horizon - 1: no gather for t + 1 */
    size_t n;           /* rows per member in x */
    float disc;         /* discount^t */
    const int *slot_cur, *slot_next;
    uint64_t stream;    /* PLAN_STREAM_ROLL | eval | step */
} prop_step;

static const float *prop__seq(const mb_plan_ws *ws, int c) {
    return ws->cand + (size_t)c * (size_t)ws->horizon * (size_t)ws->act_dim;
}

/* x rows for row r (state ws->S[r], action of candidate c at step t). */
static void prop__gather(const prop_step *st, size_t r, int c, int t, const int *slot) {
    const mb_plan_ws *ws = st->run->ws;
    int O = ws->obs_dim, A = ws->act_dim, in = ws->in_dim;
    const float *s = ws->S + r * (size_t)O, *a = prop__seq(ws, c) + (size_t)t * A;
    if (ws->prop == MB_PROP_TS1 || ws->prop == MB_PROP_TS_INF) {
        float *x = ws->x + (size_t)slot[r] * in;
        memcpy(x, s, (size_t)O * sizeof(float));
        memcpy(x + O, a, (size_t)A * sizeof(float));
    } else {
        for (int j = 0; j < st->run->k; j++) {
            float *x = ws->x + ((size_t)j * st->n + r) * in;
            memcpy(x, s, (size_t)O * sizeof(float));
            memcpy(x + O, a, (size_t)A * sizeof(float));
        }
    }
}

static void prop__task_range(const prop_step *st, int task, int *c0, int *c1) {
    *c0 = task * st->cand_per_task;
    *c1 = *c0 + st->cand_per_task;
    if (*c1 > st->n_cand) *c1 = st->n_cand;
}

/* Start of a rollout: every row at obs, alive, no return; first gather. */
static void prop__init_task(void *ctx, int task, int worker) {
    (void)worker;
    const prop_step *st = ctx;
    mb_plan_ws *ws = st->run->ws;
    int c0, c1, P = ws->P, O = ws->obs_dim;
    prop__task_range(st, task, &c0, &c1);
    for (int c = c0; c < c1; c++)
        for (int p = 0; p < P; p++) {
            size_t r = (size_t)c * P + p;
            memcpy(ws->S + r * O, st->run->obs, (size_t)O * sizeof(float));
            ws->ret[r] = 0.0f;
            ws->alive[r] = 1;
            if (ws->is_ens) prop__gather(st, r, c, 0, st->slot_cur);
        }
}

/* Learned termination (nn/term_head.h): a row the reward step left alive
 * ends at this step when the head's p(terminated | s') exceeds
 * MB_TERM_THRESHOLD; like a bound, the terminating step earns every term
 * but `constant`, later steps nothing. */
static void prop__learned_term(const plan_run *run, size_t r0, int P, const float *next) {
    const mb_ensemble *e = run->dyn->ens;
    mb_plan_ws *ws = run->ws;
    int O = ws->obs_dim;
    float constant = 0.0f;
    for (int i = 0; i < run->rw->n_terms; i++)
        if (run->rw->terms[i].type == MB_TERM_CONSTANT) constant += run->rw->terms[i].weight;
    for (int p = 0; p < P; p++) {
        size_t r = r0 + (size_t)p;
        if (!ws->alive[r]) continue;
        if (mb_term_head_prob(&e->term, e->in_mean, e->in_std, next + r * O) > MB_TERM_THRESHOLD) {
            ws->alive[r] = 0;
            ws->rew[r] -= constant;
        }
    }
}

/* Rewards of candidate c's P rows (states already in `next`), into ret. */
static void prop__reward(const prop_step *st, int c, const float *next) {
    const plan_run *run = st->run;
    mb_plan_ws *ws = run->ws;
    int P = ws->P, O = ws->obs_dim, A = ws->act_dim;
    size_t r0 = (size_t)c * P;
    const float *learned = run->rw->use_learned ? ws->learned + r0 : NULL;
    mb_reward_step_strided(run->rw, O, A, (size_t)P, next + r0 * O, (size_t)O,
                           prop__seq(ws, c) + (size_t)st->t * A, 0, learned, 1, ws->alive + r0,
                           ws->rew + r0);
    if (ws->is_ens && run->dyn->ens->term.params) prop__learned_term(run, r0, P, next);
    for (int p = 0; p < P; p++) ws->ret[r0 + p] += st->disc * ws->rew[r0 + p];
}

/* After the ensemble forward of step t: s += sampled delta, reward, gather. */
static void prop__ens_task(void *ctx, int task, int worker) {
    (void)worker;
    const prop_step *st = ctx;
    const plan_run *run = st->run;
    mb_plan_ws *ws = run->ws;
    int c0, c1, P = ws->P, O = ws->obs_dim, D = ws->out_dim, k = run->k;
    int sampled = ws->prop != MB_PROP_MEAN;
    int ts = ws->prop == MB_PROP_TS1 || ws->prop == MB_PROP_TS_INF;
    float inv_k = 1.0f / (float)k;
    prop_noise q;
    float eps_tmp[MB_MAX_OBS_DIM + 1];
    plan_vgen_init(&q.g, run->seed, st->stream | (uint64_t)task);
    q.pos = PLAN_NOISE_CHUNK;
    prop__task_range(st, task, &c0, &c1);
    for (int c = c0; c < c1; c++) {
        for (int p = 0; p < P; p++) {
            size_t r = (size_t)c * P + p;
            float *s = ws->S + r * O;
            if (ts) {
                const float *m = ws->mu + (size_t)st->slot_cur[r] * D;
                const float *sd = ws->sdv + (size_t)st->slot_cur[r] * D;
                /* the row's D normals at once (the order of prop__eps calls) */
                const float *e = prop__eps_n(&q, ws, D, eps_tmp);
                prop__step(s, m, sd, e, O);
                if (D > O) ws->learned[r] = m[O] + sd[O] * e[O];
            } else {
                for (int o = 0; o < D; o++) {
                    float m = 0.0f, v = 0.0f;
                    for (int j = 0; j < k; j++) {
                        size_t q = ((size_t)j * st->n + r) * D + o;
                        m += ws->mu[q];
                        if (sampled) v += ws->sdv[q] * ws->sdv[q];
                    }
                    float d = m * inv_k;
                    if (sampled) d += sqrtf(v * inv_k) * prop__eps(&q, ws);
                    if (o < O) s[o] += d;
                    else ws->learned[r] = d;
                }
            }
        }
        prop__reward(st, c, ws->S);
        if (!st->last)
            for (int p = 0; p < P; p++) prop__gather(st, (size_t)c * P + p, c, st->t + 1, st->slot_next);
    }
}

/* One step of known dynamics for a task's rows: S -> S2, reward. */
static void prop__known_task(void *ctx, int task, int worker) {
    (void)worker;
    const prop_step *st = ctx;
    mb_plan_ws *ws = st->run->ws;
    int c0, c1, O = ws->obs_dim, A = ws->act_dim; /* P == 1 */
    prop__task_range(st, task, &c0, &c1);
    if (c1 <= c0) return;
    for (int c = c0; c < c1; c++)
        memcpy(ws->act_rows + (size_t)c * A, prop__seq(ws, c) + (size_t)st->t * A,
               (size_t)A * sizeof(float));
    st->run->dyn->known->step((size_t)(c1 - c0), ws->S + (size_t)c0 * O,
                              ws->act_rows + (size_t)c0 * A, ws->S2 + (size_t)c0 * O,
                              ws->learned + c0);
    for (int c = c0; c < c1; c++) prop__reward(st, c, ws->S2);
}

/* slot[r] for position q(r): member-major. */
static int prop__slot(size_t q, int k, size_t n) { return (int)((q % (size_t)k) * n + q / (size_t)k); }

int plan_should_stop(plan_run *run) {
    if (!run->stopped && run->ctl && run->ctl->stop && run->ctl->stop(run->ctl->stop_ctx))
        run->stopped = 1;
    return run->stopped;
}

void plan_evaluate(plan_run *run, int n_cand) {
    if (plan_should_stop(run)) return;
    mb_plan_ws *ws = run->ws;
    const mb_planner_cfg *cfg = run->cfg;
    int P = ws->P, H = ws->horizon;
    size_t rows = (size_t)n_cand * P;
    int ts = ws->prop == MB_PROP_TS1 || ws->prop == MB_PROP_TS_INF;
    int k = run->k;
    prop_step st = {
        .run = run,
        .n_cand = n_cand,
        .cand_per_task = PLAN_TASK_ROWS / P > 0 ? PLAN_TASK_ROWS / P : 1,
        .disc = 1.0f,
    };
    int n_tasks = (n_cand + st.cand_per_task - 1) / st.cand_per_task;
    uint64_t eval = (uint64_t)run->n_evals++;
    plan_gen perm_gen;
    int *slot_cur = ws->slot_a, *slot_next = ws->slot_b;
    const int *fw_members = run->members; /* the members forwarded through */
    int sub[MB_MAX_MEMBERS];
    if (ws->is_ens && ws->prop == MB_PROP_TS_INF && P < k) {
        for (int i = 0; i < P; i++) {
            int j = (int)((eval + (uint64_t)i) % (uint64_t)k);
            sub[i] = run->members ? run->members[j] : j;
        }
        fw_members = sub;
        k = P;
    }
    if (ws->is_ens) {
        st.n = ts ? (rows + (size_t)k - 1) / (size_t)k : rows;
        if (ts) {
            /* Positions past `rows` are padding: zero input, output unused. */
            for (size_t q = rows; q < (size_t)k * st.n; q++)
                memset(ws->x + (size_t)prop__slot(q, k, st.n) * ws->in_dim, 0,
                       (size_t)ws->in_dim * sizeof(float));
            for (size_t r = 0; r < rows; r++) ws->perm[r] = (int)r;
            plan_gen_init(&perm_gen, run->seed, PLAN_STREAM_ROLL | (eval << 40) | (1ull << 39));
            if (ws->prop == MB_PROP_TS1)
                for (size_t r = rows; r > 1; r--) { /* Fisher-Yates */
                    size_t j = (size_t)(((plan_u64(&perm_gen) >> 32) * (uint64_t)r) >> 32);
                    int t = ws->perm[r - 1]; ws->perm[r - 1] = ws->perm[j]; ws->perm[j] = t;
                }
            for (size_t r = 0; r < rows; r++) slot_cur[r] = prop__slot((size_t)ws->perm[r], k, st.n);
            if (ws->prop == MB_PROP_TS_INF) slot_next = slot_cur;
        }
    }
    st.slot_cur = slot_cur;
    st.slot_next = slot_next;
    mb_pool_run(run->pool, prop__init_task, &st, n_tasks);
    for (int t = 0; t < H; t++) {
        st.t = t;
        st.last = t == H - 1;
        st.stream = PLAN_STREAM_ROLL | (eval << 40) | ((uint64_t)t << 20);
        if (t > 0 && plan_should_stop(run)) return;
        if (ws->is_ens) {
            float *sdv = ws->prop == MB_PROP_MEAN ? NULL : ws->sdv;
            if (run->ctl && run->ctl->forward)
                run->precision = run->ctl->forward(run->ctl->forward_ctx, run->dyn->ens, ws->ens_ws,
                                                   run->pool, fw_members, k, ws->x, st.n, ws->mu, sdv,
                                                   run->cfg->precision);
            else
                run->precision = mb_ensemble_forward_prec(run->dyn->ens, ws->ens_ws, run->pool,
                                                          fw_members, k, ws->x, st.n, ws->mu, sdv,
                                                          run->cfg->precision);
            run->model_rows += (double)k * (double)st.n;
            if (ws->prop == MB_PROP_TS1 && !st.last) {
                for (size_t r = rows; r > 1; r--) {
                    size_t j = (size_t)(((plan_u64(&perm_gen) >> 32) * (uint64_t)r) >> 32);
                    int tmp = ws->perm[r - 1]; ws->perm[r - 1] = ws->perm[j]; ws->perm[j] = tmp;
                }
                for (size_t r = 0; r < rows; r++) slot_next[r] = prop__slot((size_t)ws->perm[r], k, st.n);
            }
            st.slot_cur = slot_cur;
            st.slot_next = slot_next;
            mb_pool_run(run->pool, prop__ens_task, &st, n_tasks);
            if (ws->prop == MB_PROP_TS1) {
                int *tmp = slot_cur; slot_cur = slot_next; slot_next = tmp;
            }
        } else {
            mb_pool_run(run->pool, prop__known_task, &st, n_tasks);
            run->model_rows += (double)rows;
            float *tmp = ws->S; ws->S = ws->S2; ws->S2 = tmp;
        }
        st.disc *= run->rw->discount;
    }
    if (cfg->terminal_value) plan_prior_terminal(run, rows, st.disc);
    /* TS-inf with k not dividing P: weight particle p of candidate c by
     * 1 / (k * n_j), n_j the candidate's particles on p's member j. */
    int weigh = ws->is_ens && ws->prop == MB_PROP_TS_INF && P % k != 0;
    for (int c = 0; c < n_cand; c++) {
        double m = 0.0, q = 0.0;
        if (weigh) {
            int base = (int)(((size_t)c * P) % (size_t)k), full = P / k, extra = P % k;
            double w[MB_MAX_MEMBERS];
            for (int j = 0; j < k; j++) /* member j serves particles p = (j - base) mod k + i k */
                w[j] = 1.0 / ((double)k * (double)(full + (((j - base) % k + k) % k < extra)));
            for (int p = 0; p < P; p++) m += w[(base + p) % k] * ws->ret[(size_t)c * P + p];
            for (int p = 0; p < P; p++) {
                double d = ws->ret[(size_t)c * P + p] - m;
                q += w[(base + p) % k] * d * d;
            }
            q *= P; /* as below: sd = sqrt(q / P) */
        } else {
            for (int p = 0; p < P; p++) m += ws->ret[(size_t)c * P + p];
            m /= P;
            for (int p = 0; p < P; p++) {
                double d = ws->ret[(size_t)c * P + p] - m;
                q += d * d;
            }
        }
        double sd = sqrt(q / P);
        double score = m - (double)cfg->risk * sd;
        ws->ret_mean[c] = (float)m;
        ws->ret_std[c] = (float)sd;
        /* A diverged rollout ranks last instead of poisoning the sort. */
        ws->score[c] = isfinite(score) && fabs(score) < FLT_MAX ? (float)score : -FLT_MAX;
    }
}
