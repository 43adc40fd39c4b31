/* planner.h: model-predictive control over known or learned dynamics.
 *
 * One interface for random shooting, CEM, MPPI and iCEM. A call plans an
 * action sequence of `horizon` steps from one start state, scores candidates
 * by the mean return over P particles (minus risk * std), and returns the
 * first action, the planned sequence and its predicted return.
 * All candidates x particles of one iteration pass through each ensemble
 * member as one batched forward (see mb_ensemble_forward).
 * No allocation inside mb_plan: the workspace is sized from the config and
 * dimensions once (mb_plan_ws_new) and owned by the caller (one per thread).
 * mb_predict (one sequence, for diagnostics) is in predict.h, included here.
 * Not for: sessions or HTTP (the server keeps an mb_plan_state per session). */
#ifndef MB_PLANNER_H
#define MB_PLANNER_H

#include "nn/ensemble.h"
#include "plan/dynamics.h"
#include "plan/known.h"
#include "plan/predict.h"
#include "plan/reward.h"
#include "base/rng.h"

typedef enum { MB_PLAN_RANDOM = 0, MB_PLAN_CEM, MB_PLAN_MPPI, MB_PLAN_ICEM } mb_plan_method;
typedef enum {
    MB_PROP_TS1 = 0,     /* member redrawn every step */
    MB_PROP_TS_INF,      /* member fixed per particle */
    MB_PROP_EXPECTATION, /* mean over members, sampled noise */
    MB_PROP_MEAN         /* deterministic: mean over members, no noise */
} mb_prop;

#define MB_MAX_HORIZON 1000
#define MB_MAX_POPULATION 100000
#define MB_MAX_PARTICLES 1000
/* population * particles * horizon (per iteration) may not exceed this. */
#define MB_MAX_PLAN_WORK 200000000.0
/* population * particles (rows in flight) may not exceed this (memory). */
#define MB_MAX_PLAN_ROWS 1000000
#define MB_MAX_ITERATIONS 100

typedef struct {
    mb_plan_method method;
    int horizon;      /* steps planned */
    int population;   /* candidate sequences per iteration */
    int elites;       /* CEM/iCEM */
    int iterations;   /* CEM/MPPI/iCEM refinement iterations; random: 1 */
    float alpha;      /* CEM/iCEM smoothing: new = alpha*old + (1-alpha)*elite stats */
    int particles;    /* P per candidate (ensemble); 1 for known dynamics */
    mb_prop propagation;
    float risk;       /* score = mean - risk * std over particles */
    float init_std;   /* initial std as a fraction of (high - low)/2 (CEM/iCEM) */
    /* MPPI (PDDM) */
    float kappa;      /* temperature */
    float sigma;      /* noise std as a fraction of (high - low)/2 */
    float beta;       /* noise filter: u_t = beta*n_t + (1-beta)*u_{t-1} */
    /* iCEM */
    float noise_beta;     /* coloured-noise exponent (0 white, 2 red) */
    float pop_decay;      /* population divided by this each iteration */
    float keep_elites;    /* fraction of elites kept between iterations/steps */
    int elites_only;      /* propagate through elite members only */
} mb_planner_cfg;

/* Defaults for a method (PETS CEM: H 30, N 500, elites 50, 5 iters,
 * alpha 0.1, P 20, TS-inf). */
void mb_planner_cfg_default(mb_planner_cfg *cfg, mb_plan_method method);
/* Checks ranges, elites <= population (CEM/iCEM), the rows
 * (MB_MAX_PLAN_ROWS) and work (MB_MAX_PLAN_WORK) limits. members: ensemble
 * members, 0 for known dynamics (counted as one particle). particles need
 * not be a multiple of members (see mb_plan). */
mb_status mb_planner_cfg_check(const mb_planner_cfg *cfg, int members, char *err, size_t err_sz);
/* Names: "random" "cem" "mppi" "icem"; "ts1" "ts_inf" "expectation" "mean". */
int mb_plan_method_parse(const char *name, mb_plan_method *out);
const char *mb_plan_method_name(mb_plan_method m);
int mb_prop_parse(const char *name, mb_prop *out);
const char *mb_prop_name(mb_prop p);

/* Warm-start state kept between calls (per session), owned by the caller. */
typedef struct {
    int valid;       /* 0: cold start */
    int horizon, act_dim;
    float *mean;     /* (horizon, act_dim) */
    int n_kept;      /* iCEM elites kept */
    float *kept;     /* (max_kept, horizon, act_dim) */
    int max_kept;
} mb_plan_state;
mb_status mb_plan_state_init(mb_plan_state *s, const mb_planner_cfg *cfg, int act_dim,
                             char *err, size_t err_sz);
void mb_plan_state_free(mb_plan_state *s);
/* Shifts the kept plan one step left and refills the last step with the
 * middle of the bounds (what the next call's warm start uses). */
void mb_plan_state_shift(mb_plan_state *s, const float *act_low, const float *act_high);

typedef struct mb_plan_ws mb_plan_ws;
/* Scratch for plans with this config and these dims (members for ensembles,
 * 0 for known dynamics). Owned by the caller; one per concurrent planner. */
mb_plan_ws *mb_plan_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
void mb_plan_ws_free(mb_plan_ws *ws);
/* 1 if ws was made for a config/dynamics with the same sizes. */
int mb_plan_ws_fits(const mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn);

typedef struct {
    float predicted_return; /* mean over particles of the chosen plan */
    float return_std;       /* std over particles */
    double model_rows;      /* rows pushed through dynamics (per member sum) */
    double flops;           /* ensemble FLOPs spent (0 for known dynamics) */
} mb_plan_info;

/* Plans from obs (obs_dim). state may be NULL (cold start); if given and
 * valid it warm-starts the search (shift it first with mb_plan_state_shift),
 * and it is overwritten with the new plan. action (act_dim) gets the first
 * action; plan (horizon, act_dim) may be NULL. pool may be NULL.
 *   rw may be NULL: the model's own reward only (mb_reward_spec_default);
 *     with known dynamics, use_learned adds the known model's reward.
 *   The plan: random -> the best candidate; CEM and MPPI -> the final
 *     distribution mean (PETS), evaluated once more for predicted_return;
 *     iCEM -> the best candidate of the last iteration (ranked with the
 *     kept elites and their scores).
 *   Known dynamics use one particle per candidate (they are deterministic).
 *   Ensemble: rows are split over the k members (all, or e->elites with
 *     elites_only); when k does not divide population * particles the last
 *     member block is padded (counted in model_rows and flops).
 *   A state made for another horizon or act_dim is ignored (cold start) and
 *     left untouched; a ws that does not fit gives MB_ESTATE.
 *   Same seed (rng state), same plan, whatever the pool size.
 *   No plan from non-finite scores: when the predicted return (or the plan)
 *     is NaN or inf (a diverged model, an overflowing reward) it returns
 *     MB_ESTATE ("not finite") and marks the state not valid. */
mb_status mb_plan(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                  const float *obs, mb_plan_state *state, mb_rng *rng, mb_plan_ws *ws,
                  mb_pool *pool, float *action, float *plan, mb_plan_info *info,
                  char *err, size_t err_sz);

#endif
