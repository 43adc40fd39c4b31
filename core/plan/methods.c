/* methods.c: routes mb_plan's hook calls to the issue-14 planners
 * (plan_methods.h): their defaults and checks, their workspaces, the
 * dispatch, and the helpers they share.
 * Not for: any method's algorithm (each has its own file). */
#include "plan/plan_methods.h"

#include <math.h>
#include <string.h>

/* The work limits of the methods that keep per-step matrices. */
#define PLAN_MAX_LQR_WORK 2e9 /* horizon * (obs_dim + act_dim)^3 per iteration */
#define PLAN_MAX_TREE_BYTES (512.0 * 1048576.0)

static int meth__finite_in(float v, float lo, float hi) { return isfinite(v) && v >= lo && v <= hi; }

float plan_methods_clip(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

void plan_methods_cfg_default(mb_planner_cfg *cfg, mb_plan_method method) {
    cfg->simulations = 1000;
    cfg->max_ms = 0.0f;
    cfg->rollout_depth = 20;
    cfg->rollout_mean = 0;
    cfg->uct_c = 2.0f;
    cfg->leaf_batch = 16;
    cfg->lr = 0.1f;
    cfg->grad_steps = 5;
    cfg->grad_elites = 5;
    cfg->kl_step = 1.0f;
    cfg->fit_reg = 1e-3f;
    cfg->tree_reuse = 0;
    switch (method) {
    case MB_PLAN_MCTS:
        /* the tree's depth is bounded by the horizon; a final plan is
         * evaluated as one candidate */
        cfg->horizon = 30;
        cfg->population = 1;
        cfg->iterations = 1;
        cfg->particles = 1; /* rollouts per leaf */
        cfg->propagation = MB_PROP_MEAN;
        break;
    case MB_PLAN_ILQR:
        cfg->horizon = 30;
        cfg->population = 3; /* starts: warm/middle, constant low, constant high */
        cfg->iterations = 10;
        cfg->propagation = MB_PROP_MEAN;
        cfg->particles = 1;
        break;
    case MB_PLAN_LQR_FLM:
        cfg->horizon = 30;
        cfg->population = 32; /* samples per iteration */
        cfg->iterations = 5;
        cfg->init_std = 0.3f;
        cfg->propagation = MB_PROP_MEAN;
        cfg->particles = 1;
        break;
    case MB_PLAN_GRAD:
        cfg->horizon = 30;
        cfg->population = 8; /* sequences optimised side by side */
        cfg->iterations = 1;
        cfg->grad_steps = 50;
        cfg->propagation = MB_PROP_MEAN;
        cfg->particles = 1;
        break;
    case MB_PLAN_CEM_GRAD:
        /* measured on the double integrator and the pendulum at equal model
         * rows (test_grad): a deep refinement of few elites beats a shallow
         * one of many */
        cfg->grad_steps = 10;
        cfg->grad_elites = 2;
        break;
    default:
        break;
    }
    /* the server refuses elites above the population whatever the method */
    if (method >= MB_PLAN_MCTS && method != MB_PLAN_CEM_GRAD && cfg->elites > cfg->population)
        cfg->elites = cfg->population >= 10 ? cfg->population / 10 : 1;
}

mb_status plan_methods_cfg_check(const mb_planner_cfg *cfg, int members, char *err, size_t err_sz) {
    (void)members;
    switch (cfg->method) {
    case MB_PLAN_MCTS:
        if (cfg->simulations < 0 || cfg->simulations > 1000000)
            return mb_fail(err, err_sz, MB_ERANGE, "planner.simulations must be in [0, 1000000], got %d",
                           cfg->simulations);
        if (!meth__finite_in(cfg->max_ms, 0.0f, 600000.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.max_ms must be in [0, 600000], got %g",
                           (double)cfg->max_ms);
        if (cfg->simulations == 0 && cfg->max_ms == 0.0f)
            return mb_fail(err, err_sz, MB_EINVAL, "planner: mcts needs simulations or max_ms");
        if (cfg->rollout_depth < 0 || cfg->rollout_depth > MB_MAX_HORIZON)
            return mb_fail(err, err_sz, MB_ERANGE, "planner.rollout_depth must be in [0, %d], got %d",
                           MB_MAX_HORIZON, cfg->rollout_depth);
        if (cfg->rollout_mean != 0 && cfg->rollout_mean != 1)
            return mb_fail(err, err_sz, MB_EINVAL, "planner.rollout_mean must be 0 or 1");
        if (!meth__finite_in(cfg->uct_c, 0.0f, 100.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.uct_c must be in [0, 100], got %g",
                           (double)cfg->uct_c);
        if (cfg->tree_reuse != 0 && cfg->tree_reuse != 1)
            return mb_fail(err, err_sz, MB_EINVAL, "planner.tree_reuse must be 0 or 1");
        if (cfg->leaf_batch < 1 || cfg->leaf_batch > 1024)
            return mb_fail(err, err_sz, MB_ERANGE, "planner.leaf_batch must be in [1, 1024], got %d",
                           cfg->leaf_batch);
        /* simulations x batch x depth bounds one call's model rows */
        if ((double)(cfg->simulations ? cfg->simulations : 1000000) * (cfg->rollout_depth + 1) >
            MB_MAX_PLAN_WORK)
            return mb_fail(err, err_sz, MB_ERANGE,
                           "planner: simulations x (rollout_depth + 1) exceeds the limit %.0f",
                           MB_MAX_PLAN_WORK);
        break;
    case MB_PLAN_GRAD:
    case MB_PLAN_CEM_GRAD:
        if (!meth__finite_in(cfg->lr, 1e-6f, 10.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.lr must be in (0, 10], got %g", (double)cfg->lr);
        if (cfg->grad_steps < 1 || cfg->grad_steps > 10000)
            return mb_fail(err, err_sz, MB_ERANGE, "planner.grad_steps must be in [1, 10000], got %d",
                           cfg->grad_steps);
        if (cfg->method == MB_PLAN_CEM_GRAD &&
            (cfg->grad_elites < 1 || cfg->grad_elites > cfg->elites))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.grad_elites must be in [1, elites = %d], got %d",
                           cfg->elites, cfg->grad_elites);
        if ((double)cfg->population * cfg->horizon * cfg->grad_steps * cfg->iterations > MB_MAX_PLAN_WORK)
            return mb_fail(err, err_sz, MB_ERANGE,
                           "planner: population x horizon x grad_steps x iterations exceeds the limit %.0f",
                           MB_MAX_PLAN_WORK);
        break;
    case MB_PLAN_ILQR:
        /* population is the number of starts, each a whole iLQR */
        if (cfg->population > 32)
            return mb_fail(err, err_sz, MB_ERANGE,
                           "planner.population (ilqr: starts, each a full iLQR) must be in [1, 32], got %d",
                           cfg->population);
        break;
    case MB_PLAN_LQR_FLM:
        if (!meth__finite_in(cfg->kl_step, 1e-6f, 1e6f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.kl_step must be in (0, 1e6], got %g",
                           (double)cfg->kl_step);
        if (!meth__finite_in(cfg->fit_reg, 0.0f, 1e6f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.fit_reg must be in [0, 1e6], got %g",
                           (double)cfg->fit_reg);
        if (!meth__finite_in(cfg->init_std, 1e-6f, 10.0f))
            return mb_fail(err, err_sz, MB_ERANGE, "planner.init_std must be in (0, 10], got %g",
                           (double)cfg->init_std);
        if (cfg->population < 2)
            return mb_fail(err, err_sz, MB_ERANGE, "planner.population (samples) must be >= 2 for lqr_flm");
        break;
    default:
        break;
    }
    return MB_OK;
}

static int meth__is14(mb_plan_method m) { return m >= MB_PLAN_MCTS && m < MB_PLAN_N_METHODS; }

mb_status plan_methods_check_dyn(const mb_planner_cfg *cfg, const mb_dynamics *dyn, char *err,
                                 size_t err_sz) {
    if (dyn->discrete < 0 || (dyn->discrete > 0 && dyn->discrete != dyn->act_dim))
        return mb_fail(err, err_sz, MB_EINVAL, "plan: discrete = %d must equal act_dim = %d (one-hot)",
                       dyn->discrete, dyn->act_dim);
    int ok_discrete = cfg->method == MB_PLAN_RANDOM || cfg->method == MB_PLAN_CEM ||
                      cfg->method == MB_PLAN_MCTS;
    if (dyn->discrete && !ok_discrete)
        return mb_fail(err, err_sz, MB_EINVAL,
                       "planner.method %s needs continuous actions; with discrete actions use mcts, cem or random",
                       mb_plan_method_name(cfg->method));
    if (!dyn->discrete && cfg->method == MB_PLAN_MCTS)
        return mb_fail(err, err_sz, MB_EINVAL, "planner.method mcts needs discrete actions");
    if (cfg->method == MB_PLAN_MCTS) {
        /* the tree's nodes: 1 + (simulations + leaf_batch) K, each a state */
        double sims = cfg->simulations > 0 ? cfg->simulations : 100000;
        double bytes = (1.0 + (sims + cfg->leaf_batch) * dyn->act_dim) * (4.0 * dyn->obs_dim + 44.0) *
                       (cfg->tree_reuse ? 2.0 : 1.0);
        if (bytes > PLAN_MAX_TREE_BYTES)
            return mb_fail(err, err_sz, MB_ERANGE,
                           "planner: the mcts tree would take %.0f MB (simulations x actions x obs_dim), "
                           "the limit is %.0f MB", bytes / 1048576.0, PLAN_MAX_TREE_BYTES / 1048576.0);
    }
    if (cfg->method == MB_PLAN_ILQR || cfg->method == MB_PLAN_LQR_FLM) {
        double d = dyn->obs_dim + dyn->act_dim;
        if ((double)cfg->horizon * d * d * d > PLAN_MAX_LQR_WORK)
            return mb_fail(err, err_sz, MB_ERANGE,
                           "planner: horizon x (obs_dim + act_dim)^3 = %.0f exceeds the limit %.0f for %s",
                           (double)cfg->horizon * d * d * d, PLAN_MAX_LQR_WORK,
                           mb_plan_method_name(cfg->method));
    }
    return MB_OK;
}

mb_status mb_planner_cfg_check_dyn(const mb_planner_cfg *cfg, const mb_dynamics *dyn, char *err,
                                   size_t err_sz) {
    if (!cfg || !dyn) return mb_fail(err, err_sz, MB_EINVAL, "planner check: NULL argument");
    return plan_methods_check_dyn(cfg, dyn, err, err_sz);
}

int plan_methods_handles(const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    return meth__is14(cfg->method) || dyn->discrete > 0;
}

int plan_methods_ws_new(mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    ws->ext_cfg = *cfg;
    ws->discrete = dyn->discrete;
    int ok = 1;
    switch (cfg->method) {
    case MB_PLAN_ILQR: ok = (ws->ilqr = plan_ilqr_ws_new(cfg, dyn)) != NULL; break;
    case MB_PLAN_MCTS: ok = (ws->mcts = plan_mcts_ws_new(cfg, dyn)) != NULL; break;
    case MB_PLAN_GRAD:
    case MB_PLAN_CEM_GRAD: ok = (ws->grad = plan_grad_ws_new(cfg, dyn)) != NULL; break;
    case MB_PLAN_LQR_FLM: ok = (ws->flm = plan_flm_ws_new(cfg, dyn)) != NULL; break;
    default: break;
    }
    if (!ok) return -1;
    plan_shape sh = plan_shape_of(dyn);
    ws->bytes += plan_methods_ws_bytes(cfg, &sh);
    return 0;
}

size_t plan_methods_ws_bytes(const mb_planner_cfg *cfg, const plan_shape *sh) {
    switch (cfg->method) {
    case MB_PLAN_ILQR: return plan_ilqr_ws_bytes(cfg, sh);
    case MB_PLAN_MCTS: return plan_mcts_ws_bytes(cfg, sh);
    case MB_PLAN_GRAD:
    case MB_PLAN_CEM_GRAD: return plan_grad_ws_bytes(cfg, sh);
    case MB_PLAN_LQR_FLM: return plan_flm_ws_bytes(cfg, sh);
    default: return 0;
    }
}

void plan_methods_ws_free(mb_plan_ws *ws) {
    plan_ilqr_ws_free(ws->ilqr);
    plan_mcts_ws_free(ws->mcts);
    plan_grad_ws_free(ws->grad);
    plan_flm_ws_free(ws->flm);
    ws->ilqr = NULL;
    ws->mcts = NULL;
    ws->grad = NULL;
    ws->flm = NULL;
}

int plan_methods_ws_fits(const mb_plan_ws *ws, const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    const mb_planner_cfg *o = &ws->ext_cfg;
    if (ws->discrete != dyn->discrete) return 0;
    switch (cfg->method) {
    case MB_PLAN_MCTS:
        /* a tree made for more simulations serves fewer (its capacity) */
        return (cfg->simulations > 0 ? cfg->simulations : 100000) <=
                   (o->simulations > 0 ? o->simulations : 100000) &&
               o->leaf_batch == cfg->leaf_batch && o->tree_reuse == cfg->tree_reuse;
    case MB_PLAN_GRAD:
    case MB_PLAN_CEM_GRAD:
        return o->grad_elites == cfg->grad_elites && o->elites == cfg->elites;
    default:
        return 1;
    }
}

void plan_methods_run(plan_run *run, int warm) {
    mb_plan_ws *ws = run->ws;
    switch (run->cfg->method) {
    case MB_PLAN_RANDOM: plan_discrete_random(run); break;
    case MB_PLAN_CEM: plan_discrete_cem(run, warm); break;
    case MB_PLAN_MCTS: plan_mcts_run(run, ws->mcts, warm); break;
    case MB_PLAN_ILQR: plan_ilqr_run(run, ws->ilqr, warm); break;
    case MB_PLAN_LQR_FLM: plan_flm_run(run, ws->flm, warm); break;
    case MB_PLAN_GRAD: plan_grad_run(run, ws->grad, warm); break;
    case MB_PLAN_CEM_GRAD: plan_cem_grad_run(run, ws->grad, warm); break;
    default: break;
    }
}

void plan_methods_eval_best(plan_run *run) {
    mb_plan_ws *ws = run->ws;
    size_t seq = (size_t)ws->horizon * (size_t)ws->act_dim;
    memcpy(ws->cand, ws->best, seq * sizeof(float));
    plan_evaluate(run, 1);
    if (run->stopped) return; /* the scores are void: the method's own estimate stands */
    run->ret_mean = ws->ret_mean[0];
    run->ret_std = ws->ret_std[0];
}

int mb_plan_ws_gains(const mb_plan_ws *ws, float *K0, float *x0) {
    if (!ws || !ws->ilqr) return 0;
    return plan_ilqr_gains(ws->ilqr, K0, x0);
}
