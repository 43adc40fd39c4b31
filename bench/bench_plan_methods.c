/* bench_plan_methods.c: the methods part of `mbrld-bench plan` (issue 14):
 * every planner in closed loop over the known pendulum (Gymnasium's
 * Pendulum-v1, from hanging nearly still: th 3.0, thdot 0) and the known
 * cartpole swing-up (from hanging at rest), 200 steps, the models' own
 * rewards, each method at its defaults (MCTS over 5 evenly spaced torques or
 * forces, through a test-local one-hot wrapper of the known model), then
 * CEM again with its population scaled so that its time per action equals
 * the method's (calibrated by 20 steps of CEM at N 200): "return at equal
 * time". Reported per (task, method): seconds per action (median), the
 * episode's return, CEM's return at the same time and the method's model
 * rows per action. Human table to stdout as it runs, JSON lines handed back
 * for bench_plan to print last.
 * Not for: the learned ensemble's speed (bench_plan's presets) or
 * assertions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "plan/planner.h"

/* Five evenly spaced actions of the known models as one-hot inputs. */
static void pm__pend5(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (int j = 1; j < 5; j++)
            if (act[5 * i + j] > act[5 * i + k]) k = j;
        float u = (float)(k - 2);
        mb_known_pendulum.step(1, obs + 3 * i, &u, next + 3 * i, reward ? reward + i : NULL);
    }
}
static void pm__cart5(size_t n, const float *obs, const float *act, float *next, float *reward) {
    for (size_t i = 0; i < n; i++) {
        int k = 0;
        for (int j = 1; j < 5; j++)
            if (act[5 * i + j] > act[5 * i + k]) k = j;
        float u = 1.5f * (float)(k - 2);
        mb_known_cartpole_swingup.step(1, obs + 4 * i, &u, next + 4 * i, reward ? reward + i : NULL);
    }
}
static const mb_known_model pm__pend5_model = {.name = "pendulum5", .obs_dim = 3, .act_dim = 5, .step = pm__pend5};
static const mb_known_model pm__cart5_model = {.name = "cartpole5", .obs_dim = 4, .act_dim = 5, .step = pm__cart5};
static const float pm__lo5[5] = {0, 0, 0, 0, 0}, pm__hi5[5] = {1, 1, 1, 1, 1};

typedef struct {
    double ret, s_per_act, rows_per_act;
} pm__episode;

static int pm__cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* One closed-loop episode of `steps` (the median time per act over them). */
static int pm__run(const mb_planner_cfg *cfg, const mb_known_model *km, int discrete, const float *x0,
                   int steps, pm__episode *out) {
    const mb_known_model *plan_model = km;
    if (discrete) plan_model = km == &mb_known_pendulum ? &pm__pend5_model : &pm__cart5_model;
    mb_dynamics dyn = {.known = plan_model, .obs_dim = km->obs_dim, .act_dim = discrete ? 5 : 1,
                       .act_low = discrete ? pm__lo5 : km->act_low,
                       .act_high = discrete ? pm__hi5 : km->act_high, .discrete = discrete ? 5 : 0};
    mb_plan_ws *ws = mb_plan_ws_new(cfg, &dyn);
    if (!ws) {
        fprintf(stderr, "plan methods: no workspace for %s on %s\n", mb_plan_method_name(cfg->method), km->name);
        return -1;
    }
    mb_plan_state st;
    char err[256];
    if (mb_plan_state_init(&st, cfg, dyn.act_dim, err, sizeof err)) {
        mb_plan_ws_free(ws);
        return -1;
    }
    mb_rng rng;
    mb_rng_seed(&rng, 5);
    float obs[8], next[8], a[8], r;
    memcpy(obs, x0, sizeof(float) * (size_t)km->obs_dim);
    double *t = malloc(sizeof(double) * (size_t)steps), rows = 0;
    out->ret = 0;
    for (int s = 0; s < steps; s++) {
        mb_plan_state_shift(&st, dyn.act_low, dyn.act_high);
        mb_plan_info info;
        double t0 = bench_now();
        mb_status rc = mb_plan(cfg, &dyn, NULL, obs, &st, &rng, ws, NULL, a, NULL, &info, err, sizeof err);
        t[s] = bench_now() - t0;
        if (rc != MB_OK) {
            fprintf(stderr, "plan methods: %s on %s: %s\n", mb_plan_method_name(cfg->method), km->name, err);
            free(t);
            mb_plan_state_free(&st);
            mb_plan_ws_free(ws);
            return -1;
        }
        rows += info.model_rows;
        plan_model->step(1, obs, a, next, &r);
        out->ret += r;
        memcpy(obs, next, sizeof(float) * (size_t)km->obs_dim);
    }
    qsort(t, (size_t)steps, sizeof(double), pm__cmp);
    out->s_per_act = t[steps / 2];
    out->rows_per_act = rows / steps;
    free(t);
    mb_plan_state_free(&st);
    mb_plan_ws_free(ws);
    return 0;
}

static mb_planner_cfg pm__cfg(mb_plan_method m, int horizon) {
    mb_planner_cfg c;
    mb_planner_cfg_default(&c, m);
    c.horizon = horizon;
    c.particles = 1; /* known dynamics are deterministic */
    if (m == MB_PLAN_RANDOM) c.population = 1000;
    if (m == MB_PLAN_ICEM || m == MB_PLAN_CEM || m == MB_PLAN_CEM_GRAD || m == MB_PLAN_MPPI)
        c.population = 300;
    if (m == MB_PLAN_CEM || m == MB_PLAN_CEM_GRAD) {
        c.elites = 30;
        c.iterations = 4;
    }
    if (m == MB_PLAN_MCTS) c.rollout_depth = horizon;
    return c;
}

int bench_plan_methods_run(char json[][512], int max_json) {
    const struct {
        const char *task;
        const mb_known_model *km;
        float x0[4];
        int horizon;
    } tasks[] = {
        {"pendulum", &mb_known_pendulum, {-0.98999250f, 0.14112f, 0.0f, 0.0f}, 30},
        {"cartpole_swingup", &mb_known_cartpole_swingup, {0, 0, 0, 0}, 30},
    };
    const mb_plan_method methods[] = {MB_PLAN_CEM,  MB_PLAN_RANDOM,  MB_PLAN_MPPI, MB_PLAN_ICEM,
                                      MB_PLAN_MCTS, MB_PLAN_ILQR,    MB_PLAN_LQR_FLM,
                                      MB_PLAN_GRAD, MB_PLAN_CEM_GRAD};
    const int n_methods = (int)(sizeof methods / sizeof methods[0]);
    int nj = 0;
    printf("planners in closed loop over known dynamics, 200 steps (pendulum from th 3.0, cartpole "
           "hanging); CEM at equal time: its population scaled to the method's s/act\n");
    printf("%-17s %-9s %10s %10s %12s %12s %8s\n", "task", "method", "s/act", "return", "cem same t",
           "rows/act", "cem N");
    for (int ti = 0; ti < 2; ti++) {
        /* CEM's time per candidate: 20 steps at N 200 */
        mb_planner_cfg cal = pm__cfg(MB_PLAN_CEM, tasks[ti].horizon);
        cal.population = 200;
        cal.elites = 20;
        pm__episode ce;
        if (pm__run(&cal, tasks[ti].km, 0, tasks[ti].x0, 20, &ce)) return nj;
        double s_per_cand = ce.s_per_act / 200.0;
        for (int mi = 0; mi < n_methods; mi++) {
            mb_plan_method m = methods[mi];
            mb_planner_cfg cfg = pm__cfg(m, tasks[ti].horizon);
            pm__episode ep, eq = {0};
            if (pm__run(&cfg, tasks[ti].km, m == MB_PLAN_MCTS, tasks[ti].x0, 200, &ep)) continue;
            int n_eq = (int)(ep.s_per_act / s_per_cand);
            if (n_eq < 10) n_eq = 10;
            if (n_eq > 20000) n_eq = 20000;
            mb_planner_cfg c = pm__cfg(MB_PLAN_CEM, tasks[ti].horizon);
            c.population = n_eq;
            c.elites = n_eq / 10 > 1 ? n_eq / 10 : 1;
            if (pm__run(&c, tasks[ti].km, 0, tasks[ti].x0, 200, &eq)) continue;
            printf("%-17s %-9s %10.5f %10.1f %12.1f %12.0f %8d\n", tasks[ti].task, mb_plan_method_name(m),
                   ep.s_per_act, ep.ret, eq.ret, ep.rows_per_act, n_eq);
            fflush(stdout);
            if (nj < max_json)
                snprintf(json[nj++], 512,
                         "{\"bench\": \"plan\", \"part\": \"methods\", \"task\": \"%s\", \"method\": \"%s\", "
                         "\"s_per_act\": %.6f, \"return\": %.1f, \"cem_equal_time_return\": %.1f, "
                         "\"cem_equal_time_population\": %d, \"model_rows_per_act\": %.0f, \"steps\": 200}",
                         tasks[ti].task, mb_plan_method_name(m), ep.s_per_act, ep.ret, eq.ret, n_eq,
                         ep.rows_per_act);
        }
    }
    return nj;
}
