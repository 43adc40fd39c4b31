/* plan_methods.h: the narrow seam between mb_plan (planner.c) and the
 * planners of issue 14, each in its own file: discrete random shooting and
 * CEM (discrete.c), MCTS (mcts.c), iLQR (ilqr.c), LQR-FLM (lqr_flm.c),
 * gradient shooting and the CEM-gradient hybrid (grad.c). methods.c routes
 * these calls; planner.c only calls them at its few hook points (defaults,
 * checks, workspace, dispatch).
 *
 * Each method's scratch is sized in mb_plan_ws_new (plan_methods_ws_new)
 * and hangs off ws->ext; the run functions never allocate. Its bytes come
 * from the same layout code (carve.h) as plan_xxx_ws_bytes, which
 * mb_plan_cost_of adds to the plan's cost before anything is allocated.
 * Each run leaves, like the sampling methods: the plan in ws->best
 * (horizon, act_dim), its evaluation in run->ret_mean / ret_std (by
 * plan_evaluate of the plan, so the figures compare across methods), and
 * the warm start for the next call in ws->mean.
 * The deadline (mb_plan_ctl.stop): each run polls plan_should_stop at its
 * natural points (an MCTS round and its rollout steps, an iLQR start,
 * iteration and Hessian block, a gradient step, an LQR-FLM iteration,
 * sampling step and KL bisection step; the sampling evaluations poll
 * inside plan_evaluate) and, once stopped, does no more model work but
 * what its answer needs: the best plan so far in ws->best with
 * run->have_best = 1 and run->stopped set (mb_plan reports truncated), or
 * run->have_best = 0 when nothing was evaluated yet (MB_ECANCELED). A
 * stopped plan is not evaluated by plan_evaluate: its ret_mean is then the
 * method's own estimate (ilqr, grad: the return along the mean dynamics
 * that they optimise; lqr_flm: the same along the plan's rollout; mcts:
 * the chosen root action's value) with ret_std 0; cem_grad and the
 * discrete methods answer an evaluated candidate. Without a stop nothing
 * changes: the polls only read.
 * Private to core/plan. */
#ifndef MB_PLAN_METHODS_H
#define MB_PLAN_METHODS_H

#include "plan/carve.h"
#include "plan/plan_ws.h"

/* What the methods' workspaces are sized from: the dims and the ensemble's
 * spec (NULL: known dynamics). mb_plan_cost_of has these, not dynamics. */
typedef struct {
    const mb_ensemble_spec *spec;
    int obs_dim, act_dim;
} plan_shape;
static inline plan_shape plan_shape_of(const mb_dynamics *dyn) {
    return (plan_shape){dyn->ens ? &dyn->ens->spec : NULL, dyn->obs_dim, dyn->act_dim};
}

/* Defaults of the issue-14 fields for every method, then the overrides of
 * an issue-14 method (called at the end of mb_planner_cfg_default). */
void plan_methods_cfg_default(mb_planner_cfg *cfg, mb_plan_method method);
/* Checks the issue-14 fields that cfg->method uses. */
mb_status plan_methods_cfg_check(const mb_planner_cfg *cfg, int members, char *err, size_t err_sz);
/* Method vs dynamics: discrete actions only with random, cem, mcts;
 * mcts only with discrete actions. */
mb_status plan_methods_check_dyn(const mb_planner_cfg *cfg, const mb_dynamics *dyn, char *err,
                                 size_t err_sz);
/* 1 if mb_plan hands this call to plan_methods_run. */
int plan_methods_handles(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
/* Workspace of the method (ws->ext); 0 on success, -1 on allocation
 * failure. Adds its bytes to ws->bytes. */
int plan_methods_ws_new(mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn);
/* Bytes plan_methods_ws_new allocates for cfg and sh (0: none). */
size_t plan_methods_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh);
void plan_methods_ws_free(mb_plan_ws *ws);
int plan_methods_ws_fits(const mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn);
void plan_methods_run(plan_run *run, int warm);

/* Shared by the method files (methods.c). */
/* Copies ws->best to candidate 0 and evaluates it: run->ret_mean/ret_std
 * (left as they are, the method's own estimate, when the stop fires). */
void plan_methods_eval_best(plan_run *run);
/* The members the mean dynamics use: run->members/run->k. */
float plan_methods_clip(float v, float lo, float hi);

/* Per-method workspaces (opaque) and their entry points. */
typedef struct plan_ilqr_ws plan_ilqr_ws;
plan_ilqr_ws *plan_ilqr_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
size_t plan_ilqr_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh);
void plan_ilqr_ws_free(plan_ilqr_ws *w);
void plan_ilqr_run(plan_run *run, plan_ilqr_ws *w, int warm);
int plan_ilqr_gains(const plan_ilqr_ws *w, float *K0, float *x0);

typedef struct plan_mcts_ws plan_mcts_ws;
plan_mcts_ws *plan_mcts_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
size_t plan_mcts_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh);
void plan_mcts_ws_free(plan_mcts_ws *w);
void plan_mcts_run(plan_run *run, plan_mcts_ws *w, int warm);

typedef struct plan_grad_ws plan_grad_ws;
plan_grad_ws *plan_grad_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
size_t plan_grad_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh);
void plan_grad_ws_free(plan_grad_ws *w);
void plan_grad_run(plan_run *run, plan_grad_ws *w, int warm);
void plan_cem_grad_run(plan_run *run, plan_grad_ws *w, int warm);

typedef struct plan_flm_ws plan_flm_ws;
plan_flm_ws *plan_flm_ws_new(const mb_planner_cfg *cfg, const mb_dynamics *dyn);
size_t plan_flm_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh);
void plan_flm_ws_free(plan_flm_ws *w);
void plan_flm_run(plan_run *run, plan_flm_ws *w, int warm);

/* Discrete random shooting and CEM (categorical per step); no extra ws. */
void plan_discrete_random(plan_run *run);
void plan_discrete_cem(plan_run *run, int warm);

#endif
