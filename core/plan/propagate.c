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
    mb_rng base, child, lane;
    mb_rng_seed(&base, seed);
    mb_rng_split(&base, stream, &child);
    for (int l = 0; l < 8; l++) {
        mb_rng_split(&child, (uint64_t)l, &lane);
        for (int w = 0; w < 4; w++) g->s[w][l] = lane.s[w];
        if (!(g->s[0][l] | g->s[1][l] | g->s[2][l] | g->s[3][l])) g->s[0][l] = 1;
    }
    plan_gen_init(&g->scalar, seed, stream ^ 0x5ca1a7ull);
}

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>

static inline __m256i prop__rotl(__m256i x, int k) {
    return _mm256_or_si256(_mm256_slli_epi64(x, k), _mm256_srli_epi64(x, 64 - k));
}

/* One xoshiro256** step on 4 lanes; s0..s3 are the state words. */
static inline __m256i prop__xoshiro4(__m256i *s0, __m256i *s1, __m256i *s2, __m256i *s3) {
    __m256i x5 = _mm256_add_epi64(_mm256_slli_epi64(*s1, 2), *s1);   /* s1 * 5 */
    __m256i r = prop__rotl(x5, 7);
    r = _mm256_add_epi64(_mm256_slli_epi64(r, 3), r);                 /* * 9 */
    __m256i t = _mm256_slli_epi64(*s1, 17);
    *s2 = _mm256_xor_si256(*s2, *s0);
    *s3 = _mm256_xor_si256(*s3, *s1);
    *s1 = _mm256_xor_si256(*s1, *s2);
    *s0 = _mm256_xor_si256(*s0, *s3);
    *s2 = _mm256_xor_si256(*s2, t);
    *s3 = prop__rotl(*s3, 45);
    return r;
}

/* ln(u) for u in (0, 1]: exponent + 2 atanh((m-1)/(m+1)) series, m in
 * [sqrt(1/2), sqrt(2)); |error| < 2e-7. */
static inline __m256 prop__log(__m256 u) {
    __m256i bits = _mm256_castps_si256(u);
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(127));
    __m256 m = _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                                   _mm256_set1_epi32(0x3f800000)));
    __m256 big = _mm256_cmp_ps(m, _mm256_set1_ps(1.41421356f), _CMP_GT_OQ);
    m = _mm256_blendv_ps(m, _mm256_mul_ps(m, _mm256_set1_ps(0.5f)), big);
    e = _mm256_sub_epi32(e, _mm256_castps_si256(big)); /* big lanes are -1 */
    __m256 one = _mm256_set1_ps(1.0f);
    __m256 t = _mm256_div_ps(_mm256_sub_ps(m, one), _mm256_add_ps(m, one));
    __m256 t2 = _mm256_mul_ps(t, t);
    __m256 p = _mm256_fmadd_ps(t2, _mm256_set1_ps(1.0f / 9), _mm256_set1_ps(1.0f / 7));
    p = _mm256_fmadd_ps(t2, p, _mm256_set1_ps(1.0f / 5));
    p = _mm256_fmadd_ps(t2, p, _mm256_set1_ps(1.0f / 3));
    p = _mm256_fmadd_ps(t2, p, one);
    __m256 lnm = _mm256_mul_ps(_mm256_add_ps(t, t), p);
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(e), _mm256_set1_ps(0.69314718f), lnm);
}

/* cos and sin of 2 pi u for u in [0, 1): quadrant + Taylor on [0, pi/2)
 * (|error| < 1e-7). */
static inline void prop__sincos(__m256 u, __m256 *c_out, __m256 *s_out) {
    __m256 x = _mm256_mul_ps(u, _mm256_set1_ps(4.0f));
    __m256i q = _mm256_cvttps_epi32(x);
    __m256 a = _mm256_mul_ps(_mm256_sub_ps(x, _mm256_cvtepi32_ps(q)), _mm256_set1_ps(1.57079633f));
    __m256 a2 = _mm256_mul_ps(a, a);
    __m256 s = _mm256_fmadd_ps(a2, _mm256_set1_ps(-1.0f / 39916800), _mm256_set1_ps(1.0f / 362880));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(-1.0f / 5040));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(1.0f / 120));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(-1.0f / 6));
    s = _mm256_fmadd_ps(a2, s, _mm256_set1_ps(1.0f));
    s = _mm256_mul_ps(s, a);
    __m256 c = _mm256_fmadd_ps(a2, _mm256_set1_ps(1.0f / 479001600), _mm256_set1_ps(-1.0f / 3628800));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f / 40320));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(-1.0f / 720));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f / 24));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(-0.5f));
    c = _mm256_fmadd_ps(a2, c, _mm256_set1_ps(1.0f));
    /* quadrant q: (cos, sin) = (c, s), (-s, c), (-c, -s), (s, -c) */
    __m256 swap = _mm256_castsi256_ps(_mm256_cmpeq_epi32(_mm256_and_si256(q, _mm256_set1_epi32(1)),
                                                         _mm256_set1_epi32(1)));
    __m256 cv = _mm256_blendv_ps(c, s, swap), sv = _mm256_blendv_ps(s, c, swap);
    __m256i two = _mm256_set1_epi32(2);
    __m256 neg_s = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_and_si256(q, two), 30));
    __m256 neg_c = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_and_si256(_mm256_add_epi32(q, _mm256_set1_epi32(1)), two), 30));
    *c_out = _mm256_xor_ps(cv, neg_c);
    *s_out = _mm256_xor_ps(sv, neg_s);
}

void plan_fill_normal(plan_vgen *g, const mb_plan_ws *ws, float *out, size_t n) {
    (void)ws;
    __m256i a0 = _mm256_loadu_si256((const __m256i *)&g->s[0][0]);
    __m256i a1 = _mm256_loadu_si256((const __m256i *)&g->s[1][0]);
    __m256i a2 = _mm256_loadu_si256((const __m256i *)&g->s[2][0]);
    __m256i a3 = _mm256_loadu_si256((const __m256i *)&g->s[3][0]);
    __m256i b0 = _mm256_loadu_si256((const __m256i *)&g->s[0][4]);
    __m256i b1 = _mm256_loadu_si256((const __m256i *)&g->s[1][4]);
    __m256i b2 = _mm256_loadu_si256((const __m256i *)&g->s[2][4]);
    __m256i b3 = _mm256_loadu_si256((const __m256i *)&g->s[3][4]);
    const __m256i m24 = _mm256_set1_epi64x(0xffffff);
    const __m256 scale = _mm256_set1_ps(0x1p-24f), one = _mm256_set1_ps(1.0f);
    for (size_t i = 0; i + 16 <= n; i += 16) {
        __m256i ra = prop__xoshiro4(&a0, &a1, &a2, &a3), rb = prop__xoshiro4(&b0, &b1, &b2, &b3);
        /* 24-bit fields in the low half of each 64-bit lane, packed to 8 x 32 */
        __m256i k1a = _mm256_srli_epi64(ra, 40), k1b = _mm256_srli_epi64(rb, 40);
        __m256i k2a = _mm256_and_si256(_mm256_srli_epi64(ra, 16), m24);
        __m256i k2b = _mm256_and_si256(_mm256_srli_epi64(rb, 16), m24);
        __m256 k1 = _mm256_shuffle_ps(_mm256_castsi256_ps(k1a), _mm256_castsi256_ps(k1b), 0x88);
        __m256 k2 = _mm256_shuffle_ps(_mm256_castsi256_ps(k2a), _mm256_castsi256_ps(k2b), 0x88);
        __m256 u1 = _mm256_mul_ps(_mm256_add_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(k1)), one), scale);
        __m256 u2 = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_castps_si256(k2)), scale);
        __m256 r = _mm256_sqrt_ps(_mm256_mul_ps(_mm256_set1_ps(-2.0f), prop__log(u1)));
        __m256 c, s;
        prop__sincos(u2, &c, &s);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(r, c));
        _mm256_storeu_ps(out + i + 8, _mm256_mul_ps(r, s));
    }
    _mm256_storeu_si256((__m256i *)&g->s[0][0], a0);
    _mm256_storeu_si256((__m256i *)&g->s[1][0], a1);
    _mm256_storeu_si256((__m256i *)&g->s[2][0], a2);
    _mm256_storeu_si256((__m256i *)&g->s[3][0], a3);
    _mm256_storeu_si256((__m256i *)&g->s[0][4], b0);
    _mm256_storeu_si256((__m256i *)&g->s[1][4], b1);
    _mm256_storeu_si256((__m256i *)&g->s[2][4], b2);
    _mm256_storeu_si256((__m256i *)&g->s[3][4], b3);
}
#else
void plan_fill_normal(plan_vgen *g, const mb_plan_ws *ws, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = plan_normal(&g->scalar, ws);
}
#endif

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
                for (int o = 0; o < O; o++) s[o] += m[o] + sd[o] * prop__eps(&q, ws);
                if (D > O) ws->learned[r] = m[O] + sd[O] * prop__eps(&q, ws);
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

void plan_evaluate(plan_run *run, int n_cand) {
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
        if (ws->is_ens) {
            mb_ensemble_forward(run->dyn->ens, ws->ens_ws, run->pool, fw_members, k, ws->x, st.n,
                                ws->mu, ws->prop == MB_PROP_MEAN ? NULL : ws->sdv);
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

/* ---- mb_predict: diagnostics, may allocate -------------------------------- */

mb_status mb_predict(const mb_dynamics *dyn, const mb_reward_spec *rw, const float *obs,
                     const float *actions, int steps, float *mean, float *std,
                     float *reward_mean, float *reward_std, char *err, size_t err_sz) {
    if (!dyn || !obs || !actions || !mean || !std || !reward_mean || !reward_std)
        return mb_fail(err, err_sz, MB_EINVAL, "predict: NULL argument");
    if (!dyn->ens == !dyn->known)
        return mb_fail(err, err_sz, MB_EINVAL, "predict: set exactly one of dynamics.ens / .known");
    if (steps < 1 || steps > MB_MAX_HORIZON)
        return mb_fail(err, err_sz, MB_ERANGE, "predict: steps must be in [1, %d], got %d",
                       MB_MAX_HORIZON, steps);
    int O = dyn->obs_dim, A = dyn->act_dim;
    if (dyn->ens ? (dyn->ens->spec.obs_dim != O || dyn->ens->spec.act_dim != A)
                 : (dyn->known->obs_dim != O || dyn->known->act_dim != A))
        return mb_fail(err, err_sz, MB_EINVAL, "predict: dynamics dims do not match the model");
    mb_reward_spec rw_default;
    if (!rw) {
        mb_reward_spec_default(&rw_default);
        rw = &rw_default;
    }
    mb_status st = mb_reward_spec_check(rw, O, A, err, err_sz);
    if (st) return st;
    if (rw->use_learned && dyn->ens && !dyn->ens->spec.learn_reward)
        return mb_fail(err, err_sz, MB_EINVAL,
                       "predict: the reward uses the learned head but the ensemble has none");
    for (int i = 0; i < O; i++)
        if (!isfinite(obs[i])) return mb_fail(err, err_sz, MB_EINVAL, "obs[%d] is not finite", i);
    for (int i = 0; i < steps * A; i++)
        if (!isfinite(actions[i]))
            return mb_fail(err, err_sz, MB_EINVAL, "actions[%d][%d] is not finite", i / A, i % A);

    int E = dyn->ens ? dyn->ens->spec.members : 1;
    int in = O + A, D = dyn->ens ? mb_ensemble_out_dim(&dyn->ens->spec) : O;
    /* x (E, in), mu and sd (E, D), s and s2 (E, O), learned and rew (E). */
    float *buf = calloc((size_t)E * (size_t)(in + 2 * D + 2 * O + 2), sizeof(float));
    uint8_t *alive = calloc((size_t)E, 1);
    mb_ens_ws *ews = dyn->ens ? mb_ens_ws_new(&dyn->ens->spec, 1) : NULL;
    if (!buf || !alive || (dyn->ens && !ews)) {
        free(buf);
        free(alive);
        mb_ens_ws_free(ews);
        return mb_fail(err, err_sz, MB_ENOMEM, "predict: out of memory");
    }
    float *x = buf, *mu = x + (size_t)E * in, *sd = mu + (size_t)E * D, *s = sd + (size_t)E * D;
    float *s2 = s + (size_t)E * O, *learned = s2 + (size_t)E * O, *rew = learned + E;
    for (int j = 0; j < E; j++) {
        memcpy(s + (size_t)j * O, obs, (size_t)O * sizeof(float));
        alive[j] = 1;
    }
    for (int t = 0; t < steps; t++) {
        const float *a = actions + (size_t)t * A;
        if (dyn->ens) {
            /* Each member follows its own mean trajectory. */
            for (int j = 0; j < E; j++) {
                memcpy(x + (size_t)j * in, s + (size_t)j * O, (size_t)O * sizeof(float));
                memcpy(x + (size_t)j * in + O, a, (size_t)A * sizeof(float));
            }
            mb_ensemble_forward(dyn->ens, ews, NULL, NULL, E, x, 1, mu, sd);
            for (int j = 0; j < E; j++) {
                for (int o = 0; o < O; o++) s[(size_t)j * O + o] += mu[(size_t)j * D + o];
                learned[j] = D > O ? mu[(size_t)j * D + O] : 0.0f;
            }
        } else {
            dyn->known->step(1, s, a, s2, learned);
            memcpy(s, s2, (size_t)O * sizeof(float));
            for (int o = 0; o < O; o++) sd[o] = 0.0f;
        }
        mb_reward_step_strided(rw, O, A, (size_t)E, s, (size_t)O, a, 0,
                               rw->use_learned ? learned : NULL, 1, alive, rew);
        for (int o = 0; o < O; o++) {
            double m = 0.0, v = 0.0, alea = 0.0;
            for (int j = 0; j < E; j++) m += s[(size_t)j * O + o];
            m /= E;
            for (int j = 0; j < E; j++) {
                double d = s[(size_t)j * O + o] - m;
                v += d * d;
                alea += (double)sd[(size_t)j * (dyn->ens ? D : O) + o] * sd[(size_t)j * (dyn->ens ? D : O) + o];
            }
            mean[(size_t)t * O + o] = (float)m;
            std[(size_t)t * O + o] = (float)sqrt(v / E + alea / E);
        }
        double rm = 0.0, rv = 0.0;
        for (int j = 0; j < E; j++) rm += rew[j];
        rm /= E;
        for (int j = 0; j < E; j++) rv += (rew[j] - rm) * (rew[j] - rm);
        reward_mean[t] = (float)rm;
        reward_std[t] = (float)sqrt(rv / E);
    }
    free(buf);
    free(alive);
    mb_ens_ws_free(ews);
    return MB_OK;
}
