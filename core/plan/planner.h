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

typedef enum {
    MB_PLAN_RANDOM = 0, MB_PLAN_CEM, MB_PLAN_MPPI, MB_PLAN_ICEM,
    /* issue 14, each in its own file behind plan_methods.h: */
    MB_PLAN_MCTS,     /* UCT tree search, discrete actions (mcts.c) */
    MB_PLAN_ILQR,     /* iterative LQR on the mean dynamics (ilqr.c) */
    MB_PLAN_LQR_FLM,  /* LQR with fitted local linear models (lqr_flm.c) */
    MB_PLAN_GRAD,     /* Adam on the return through the model (grad.c) */
    MB_PLAN_CEM_GRAD  /* CEM whose elites take gradient steps (grad.c) */
} mb_plan_method;
#define MB_PLAN_N_METHODS 9
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
    /* Products of the ensemble forwards: MB_PREC_BF16 plans with the
     * version's bf16 weights (made on the first such plan, once per
     * version: mb_ensemble_bf16_prepare) where the CPU has AVX512_BF16,
     * fp32 elsewhere (mb_plan_info.precision says which ran). State,
     * noise and returns stay fp32. */
    mb_precision precision;
    /* MCTS (discrete actions) */
    int simulations;      /* per call; 0: only max_ms bounds the search */
    float max_ms;         /* wall-clock budget per call in ms; 0: none */
    int rollout_depth;    /* random-rollout steps from each new leaf */
    int rollout_mean;     /* 1: rollouts through the mean over members; 0: one member drawn per rollout */
    float uct_c;          /* exploration constant (values are min-max normalised over the tree) */
    int leaf_batch;       /* leaves selected with virtual loss and evaluated in one batch */
    /* gradient shooting (grad, cem_grad) */
    float lr;             /* Adam step, as a fraction of (high - low) / 2 */
    int grad_steps;       /* grad: Adam steps; cem_grad: steps per refined elite per iteration */
    int grad_elites;      /* cem_grad: elites refined per iteration */
    /* LQR-FLM */
    float kl_step;        /* KL bound between successive controllers (nats per step) */
    float fit_reg;        /* ridge weight of the local linear fits */
    int tree_reuse;       /* mcts: 1 keeps the tree for the session's next call (re-rooted at the
                           * child the new observation matches); 0 rebuilds it every call */
    /* A learned value and policy prior (TD-MPC style; plan/prior.c), for
     * CEM, MPPI and iCEM: */
    int terminal_value;   /* 1: add discount^H V(s_H) (dyn->value) to every particle's return */
    int policy_samples;   /* K > 0: K candidates of every iteration are policy rollouts
                           * through the model (dyn->policy), K <= population */
} mb_planner_cfg;

/* Defaults for a method (PETS CEM: H 30, N 500, elites 50, 5 iters,
 * alpha 0.1, P 20, TS-inf). */
void mb_planner_cfg_default(mb_planner_cfg *cfg, mb_plan_method method);
/* Checks ranges, elites <= population (CEM/iCEM), the rows
 * (MB_MAX_PLAN_ROWS) and work (MB_MAX_PLAN_WORK) limits. members: ensemble
 * members, 0 for known dynamics (counted as one particle). particles need
 * not be a multiple of members (see mb_plan). */
mb_status mb_planner_cfg_check(const mb_planner_cfg *cfg, int members, char *err, size_t err_sz);
/* The checks that need the dynamics too (mb_plan and mb_plan_ws_new make
 * them): discrete actions only with random, cem and mcts, mcts only with
 * discrete actions (dyn->discrete == act_dim), mcts's tree and the
 * LQR-based methods' matrices within their limits. */
mb_status mb_planner_cfg_check_dyn(const mb_planner_cfg *cfg, const mb_dynamics *dyn, char *err,
                                   size_t err_sz);
/* Names: "random" "cem" "mppi" "icem" "mcts" "ilqr" "lqr_flm" "grad" "cem_grad";
 * "ts1" "ts_inf" "expectation" "mean". */
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
/* Bytes ws holds (what mb_plan_ws_new allocated: mb_plan_cost.ws + .ens_ws,
 * the method's own workspace and the prior's scratch included). */
size_t mb_plan_ws_bytes(const mb_plan_ws *ws);

/* What one planning request costs in memory, from the config and the dims
 * alone, before anything is allocated (budgets: the server refuses a
 * request whose figure exceeds its limits, README "Limits"):
 *   ws:      mb_plan_ws_new's workspace struct and block: candidates and the
 *            search distribution (n_cand x horizon x act_dim, n_cand =
 *            population + iCEM's kept elites + 1), the rollout rows
 *            (population x particles: states twice, returns, rewards,
 *            slots), the ensemble's input and outputs (x_rows x (in_dim + 2
 *            out_dim), x_rows = rows + members, or members x rows for
 *            expectation / mean), iCEM's coloured-noise basis; and the
 *            issue-14 method's own workspace (plan_methods.h: mcts's tree,
 *            with tree_reuse room for two calls' nodes, and its rollout
 *            rows; ilqr's and lqr_flm's per-step matrices and LQR
 *            workspace; grad's and cem_grad's sequences, Adam moments
 *            and ensemble-gradient workspace; the deterministic model
 *            step's rows and ensemble workspace), and with
 *            mb_plan_cost_with_prior the prior's scratch (terminal_value,
 *            policy_samples: plan/prior.c);
 *   ens_ws:  its ensemble workspace (mb_ens_ws_bytes: tile buffers, the
 *            training chunk, a weight transpose);
 *   state:   mb_plan_state_init's warm start (horizon x act_dim, plus iCEM's
 *            kept elites: ceil(keep_elites x elites) x horizon x act_dim);
 *   total:   ws + ens_ws + state (a batched call needs the same: batch.h
 *            plans in the request's own workspace).
 * spec: the ensemble, NULL for known dynamics; act_dim: K for discrete
 * actions (the one-hot width, as the dynamics have it; nothing depends on
 * dyn->discrete otherwise). Checks cfg like mb_planner_cfg_check (not
 * mb_planner_cfg_check_dyn). mb_plan_ws_bytes and the allocation counts of
 * tests/core/test_plan_cost.c agree with these figures to the byte, for
 * every method, known dynamics and ensembles. */
typedef struct {
    size_t ws, ens_ws, state, total;
} mb_plan_cost;
mb_status mb_plan_cost_of(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim,
                          int act_dim, mb_plan_cost *out, char *err, size_t err_sz);
/* The same with the networks the call's dynamics will carry: value (the
 * spec of dyn->value) and policy (of dyn->policy), NULL for none. The
 * prior's scratch depends on their layers, so mb_plan_cost_of (this with
 * both NULL) counts it as mb_plan_ws_new makes it without them: nothing.
 * Checks the specs given (mb_vnet_spec_check, mb_policy_spec_check). */
mb_status mb_plan_cost_with_prior(const mb_planner_cfg *cfg, const mb_ensemble_spec *spec, int obs_dim,
                                  int act_dim, const mb_vnet_spec *value, const mb_policy_spec *policy,
                                  mb_plan_cost *out, char *err, size_t err_sz);
/* 1 if ws was made for a config/dynamics with the same sizes. */
int mb_plan_ws_fits(const mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn);
/* After a successful iLQR mb_plan with ws: K_0 (act_dim, obs_dim), the
 * feedback gain of the first step, and the nominal first state x_0
 * (obs_dim), so a controller can apply u = u_0 + K_0 (x - x_0) between
 * plans. Returns 1, or 0 (nothing written) if the last plan was not iLQR. */
int mb_plan_ws_gains(const mb_plan_ws *ws, float *K0, float *x0);

typedef struct {
    float predicted_return; /* mean over particles of the chosen plan */
    float return_std;       /* std over particles */
    double model_rows;      /* rows pushed through dynamics (per member sum) */
    double flops;           /* ensemble FLOPs spent (0 for known dynamics) */
    mb_precision precision; /* of the forwards that ran (fp32 for known dynamics) */
    int truncated;          /* 1: stopped early (mb_plan_ctl.stop), the best plan so far */
} mb_plan_info;

/* Control of one call (mb_plan_ex): when to stop, and who runs the
 * ensemble forwards. Every field may be NULL.
 *   stop(stop_ctx): polled before every evaluation of candidates and
 *     between the steps of every rollout (once per ensemble forward);
 *     nonzero stops the call (a deadline, a client gone). The call then
 *     answers the best fully evaluated plan so far (random: none; CEM,
 *     MPPI: the best candidate of the last finished iteration when the
 *     final mean was not evaluated; iCEM: the best seen) with
 *     info.truncated = 1, or MB_ECANCELED when no evaluation finished
 *     (the state is then left as it was). Issue 14's methods poll too at
 *     their own steps (an MCTS round and rollout step, an iLQR start,
 *     iteration, Hessian block and line search, a gradient step, an
 *     LQR-FLM iteration, sampling step and bisection step) and answer
 *     likewise: mcts the finished rounds' most visited action (none before
 *     a root action was visited), ilqr the best start so far, grad the best
 *     sequence seen, lqr_flm the last controller updated (none before its
 *     first samples or first step), cem_grad and discrete cem the best
 *     candidate scored, discrete random none; when the plan's own
 *     evaluation was cut, predicted_return is the method's estimate
 *     (plan_methods.h) and return_std 0.
 *   forward(forward_ctx, ...): runs one rollout step's ensemble forward in
 *     place of mb_ensemble_forward_prec (same arguments, same contract,
 *     returns the precision used); the cross-request batcher (batch.h)
 *     merges the forwards of its calls. */
typedef struct {
    int (*stop)(void *stop_ctx);
    void *stop_ctx;
    mb_precision (*forward)(void *forward_ctx, const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                            const int *members, int k, const float *x, size_t n, float *mean,
                            float *std, mb_precision want);
    void *forward_ctx;
} mb_plan_ctl;

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
/* mb_plan under control (ctl may be NULL: exactly mb_plan). */
mb_status mb_plan_ex(const mb_planner_cfg *cfg, const mb_dynamics *dyn, const mb_reward_spec *rw,
                     const float *obs, mb_plan_state *state, mb_rng *rng, mb_plan_ws *ws,
                     mb_pool *pool, const mb_plan_ctl *ctl, float *action, float *plan,
                     mb_plan_info *info, char *err, size_t err_sz);

#endif
