/* plan_ws.h: internals shared by planner.c (methods) and propagate.c
 * (rollouts): the workspace layout, one planning call's context and the
 * per-task random numbers (streams of base/rng.h and base/rng_vec.h, with
 * the ziggurat for scalar normals).
 *
 * Private to core/: servers and clients use planner.h only.
 * Not for: anything with a stable ABI. */
#ifndef MB_PLAN_WS_H
#define MB_PLAN_WS_H

#include <stdint.h>

#include "base/rng.h"
#include "base/rng_vec.h"
#include "plan/planner.h"

/* Ziggurat for the normal distribution, 128 layers (Doornik's ZIGNOR). */
#define PLAN_ZIG_C 128
#define PLAN_ZIG_R 3.442619855899
#define PLAN_ZIG_V 9.91256303526217e-3

/* Random streams of one call (each split from the call's seed). */
#define PLAN_STREAM_SAMPLE 1u          /* candidate sampling */
#define PLAN_STREAM_ROLL (1ull << 62)  /* | (eval << 40) | (step << 20) | task */

/* Rows per parallel task in the rollout loops (whole candidates). */
#define PLAN_TASK_ROWS 512

typedef struct plan_prior plan_prior; /* prior.c */

struct mb_plan_ws {
    plan_prior *prior;     /* terminal value / policy samples scratch, or NULL */
    /* What it was sized for (mb_plan_ws_fits). */
    mb_plan_method method;
    mb_prop prop;
    int horizon, population, max_kept, max_elites, elites_only;
    int obs_dim, act_dim;
    int is_ens;
    mb_ensemble_spec spec; /* when is_ens */
    int n_cand;            /* candidate capacity */
    int P;                 /* particles per candidate (1 for known dynamics) */
    size_t rows;           /* n_cand * P */
    int in_dim, out_dim;   /* ensemble */
    size_t x_rows;         /* rows of x, mu, sdv */
    size_t ens_rows;       /* rows per member the ensemble workspace takes */
    mb_ens_ws *ens_ws;
    size_t bytes;          /* what mb_plan_ws_new allocated (mb_plan_ws_bytes) */
    void *block;           /* everything below points into it */
    /* Candidates and the search distribution; seq = horizon * act_dim. */
    float *cand;           /* (n_cand, horizon, act_dim) */
    float *mean, *var, *sd;/* (seq) var is the std for iCEM; sd scratch */
    float *best;           /* (seq) the plan */
    float *keep;           /* (max_elites, seq) iCEM elites carried over */
    int n_keep;
    float *keep_score;     /* (3, max_kept) their score, ret_mean, ret_std (iCEM) */
    float *score, *ret_mean, *ret_std; /* (n_cand) */
    int *order;            /* (n_cand) candidates, best first */
    /* Rollouts: row r = candidate c * P + particle p. */
    float *S, *S2;         /* (rows, obs_dim) state per row (S2: known next) */
    float *act_rows;       /* (rows, act_dim) known dynamics input */
    float *learned;        /* (rows) model reward of this step */
    float *rew;            /* (rows) step reward */
    float *ret;            /* (rows) discounted return */
    uint8_t *alive;        /* (rows) */
    float *x;              /* (x_rows, in_dim) ensemble input, member-major */
    float *mu, *sdv;       /* (x_rows, out_dim) ensemble mean, std */
    int *slot_a, *slot_b;  /* (rows) row -> x row, this step and the next */
    int *perm;             /* (rows) TS-1 permutation */
    /* iCEM coloured noise. */
    int n_freq;            /* horizon / 2 + 1 */
    float cn_beta;         /* exponent the table was made for (-1: none) */
    float *cn_cos, *cn_sin;/* (n_freq, horizon) scaled basis */
    float *cn_g;           /* (2 n_freq) */
    float *cn_out;         /* (horizon) */
    /* Ziggurat tables. */
    double zig_x[PLAN_ZIG_C + 1], zig_r[PLAN_ZIG_C];
    float zig_xf[PLAN_ZIG_C], zig_rf[PLAN_ZIG_C];
    /* The issue-14 methods' own workspaces (plan_methods.h), NULL when the
     * method has none; ext_cfg is the config they were sized for. */
    struct plan_ilqr_ws *ilqr;
    struct plan_mcts_ws *mcts;
    struct plan_grad_ws *grad;
    struct plan_flm_ws *flm;
    mb_planner_cfg ext_cfg;
    int discrete;
};

/* One planning call. */
typedef struct {
    const mb_planner_cfg *cfg;
    const mb_dynamics *dyn;
    const mb_reward_spec *rw;
    const float *obs;        /* (obs_dim) */
    const mb_plan_state *state;
    mb_plan_ws *ws;
    mb_pool *pool;
    uint64_t seed;
    int k;                   /* members propagated through */
    const int *members;      /* (k) or NULL = all */
    const mb_plan_ctl *ctl;  /* or NULL */
    int stopped;             /* ctl->stop said so: the evaluation under way is void */
    int have_best;           /* ws->best holds a fully evaluated candidate */
    float best_score;        /* its score */
    /* out */
    float ret_mean, ret_std; /* of the plan */
    double model_rows;
    int n_evals;
    mb_precision precision;  /* of the last ensemble forward */
} plan_run;

/* 1 once ctl->stop has said so (then always): polled by the evaluation. */
int plan_should_stop(plan_run *run);

/* A task's scalar generator: an mb_rng stream's state stepped inline
 * (mb_rng_step; mb_rng_u64 is an out-of-line call and the rollouts draw
 * millions of numbers per call), plus the ziggurat's spare half. Seeded
 * through mb_rng_split, so streams are as independent as mb_rng's. */
typedef struct {
    uint64_t s[4];
    uint32_t spare;
    int has_spare;
} plan_gen;

void plan_gen_init(plan_gen *g, uint64_t seed, uint64_t stream);

static inline uint64_t plan_u64(plan_gen *g) { return mb_rng_step(g->s); }
/* Uniform in [0, 1) with 24 bits. */
static inline float plan_uniform(plan_gen *g) { return (float)(plan_u64(g) >> 40) * 0x1p-24f; }

float plan_normal_slow(plan_gen *g, const mb_plan_ws *ws, int i, float u);
/* N(0, 1) by the ziggurat: two draws per u64 (7 bits pick the layer, 25
 * bits the abscissa); 99% of draws take the first return. */
static inline float plan_normal(plan_gen *g, const mb_plan_ws *ws) {
    uint32_t h;
    if (g->has_spare) {
        h = g->spare;
        g->has_spare = 0;
    } else {
        uint64_t v = plan_u64(g);
        h = (uint32_t)v;
        g->spare = (uint32_t)(v >> 32);
        g->has_spare = 1;
    }
    int i = (int)(h & 127u);
    float u = (float)(int32_t)(h & ~127u) * 0x1p-31f; /* [-1, 1) */
    float au = u < 0 ? -u : u;
    if (au < ws->zig_rf[i]) return u * ws->zig_xf[i];
    return plan_normal_slow(g, ws, i, u);
}

/* Bulk normals for the rollouts: the 8-lane stream of base/rng_vec.h
 * (Box-Muller, AVX2) when the build has AVX2+FMA (the container's x86-64-v3
 * does), else the ziggurat above on `scalar`. The rollouts need ~19 normals
 * per row per step; this is 4-5x faster than one ziggurat draw at a time. */
typedef struct {
    mb_vrng v;        /* AVX2 path */
    plan_gen scalar;  /* fallback path */
} plan_vgen;
#define PLAN_NOISE_CHUNK 256 /* plan_fill_normal's n must be a multiple of 16 */
void plan_vgen_init(plan_vgen *g, uint64_t seed, uint64_t stream);
/* out (n): N(0, 1) draws; n a multiple of 16. ws supplies the ziggurat
 * tables for the fallback. */
void plan_fill_normal(plan_vgen *g, const mb_plan_ws *ws, float *out, size_t n);

/* iCEM coloured noise (planner.c): the basis for exponent beta (cached in
 * ws), and one unit-variance sequence out (horizon). ws made for iCEM. */
void plan_cn_table(mb_plan_ws *ws, float beta);
void plan_cn_sample(mb_plan_ws *ws, plan_gen *g, float *out);
/* iCEM's population in iteration it (planner.c; flops.c counts with it). */
int plan_icem_population(const mb_planner_cfg *cfg, int it);

/* Scores candidates 0..n_cand-1 of ws->cand from run->obs: fills
 * ws->score, ws->ret_mean, ws->ret_std (n_cand); adds to run->model_rows.
 * When run->ctl's stop fires before or during it, it returns early with
 * run->stopped set and the scores void. */
void plan_evaluate(plan_run *run, int n_cand);

/* The learned value and policy prior (prior.c). new: NULL when cfg asks for
 * neither (nothing to allocate) or on failure (*failed set); fits: 1 when
 * p (may be NULL) serves cfg and dyn. */
plan_prior *plan_prior_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn, int *failed);
void plan_prior_free(plan_prior *p);
/* Bytes plan_prior_new allocates for cfg and these networks (value: the
 * value network's MLP spec, dyn->value->mlp; policy: dyn->policy->spec;
 * NULL: none), spec the ensemble (NULL: known dynamics); 0: nothing. */
size_t plan_prior_bytes(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim, int act_dim,
                        const mb_mlp_spec *value, const mb_policy_spec *policy);
int plan_prior_fits(const plan_prior *p, const mb_planner_cfg *cfg, const mb_dynamics *dyn);
/* Once per call, before the method: K sequences rolled through the model
 * with the policy (the first deterministic, the rest sampled). */
void plan_prior_rollout(plan_run *run);
/* Overwrites the last K of candidates 0..n_cand-1 with the policy's. */
void plan_prior_seed(plan_run *run, int n_cand);
/* After the horizon: ret[r] += disc * V(S_r) for rows still alive. */
void plan_prior_terminal(plan_run *run, size_t rows, float disc);

#endif
