/* flops.c: the rows and FLOPs of one planning call from the shapes and the
 * config (flops.h documents what counts). Mirrors the loops of planner.c
 * (how many candidates each evaluation has) and propagate.c (how the rows
 * of one evaluation are split over the members); a change to either must
 * change this file, which tests/core/test_flops.c catches by comparing
 * with what mb_plan reports.
 * Not for: known dynamics. */
#include <math.h>

#include "plan/flops.h"
#include "plan/plan_ws.h"

/* Rows of one evaluation of n candidates, summed over the H steps. */
static double flops__eval_rows(const mb_planner_cfg *cfg, int k, int n) {
    double rows = (double)n * (double)cfg->particles;
    double per_step;
    if (cfg->propagation == MB_PROP_TS1 || cfg->propagation == MB_PROP_TS_INF)
        per_step = (double)k * ceil(rows / (double)k); /* split, last block padded */
    else
        per_step = (double)k * rows; /* expectation, mean: every member sees every row */
    return per_step * (double)cfg->horizon;
}

double mb_plan_model_rows(const mb_planner_cfg *cfg, int k, int kept_in) {
    if (!cfg || k < 1) return 0.0;
    const int N = cfg->population;
    switch (cfg->method) {
    case MB_PLAN_RANDOM:
        return flops__eval_rows(cfg, k, N);
    case MB_PLAN_CEM:
    case MB_PLAN_MPPI:
        return (double)cfg->iterations * flops__eval_rows(cfg, k, N) + flops__eval_rows(cfg, k, 1);
    case MB_PLAN_ICEM: {
        /* the same expressions as planner.c (plan__max_kept, plan__icem):
         * iteration 0 evaluates its samples and the shifted kept elites,
         * later ones their samples only (the kept elites keep their scores;
         * the mean replaces a sample) */
        const int K = cfg->elites;
        int max_kept = (int)floor((double)cfg->keep_elites * (double)K + 1e-6);
        max_kept = max_kept < 0 ? 0 : max_kept > K ? K : max_kept;
        int kept = kept_in < 0 ? 0 : kept_in > max_kept ? max_kept : kept_in;
        double rows = 0.0;
        for (int it = 0; it < cfg->iterations; it++)
            rows += flops__eval_rows(cfg, k, plan_icem_population(cfg, it) + (it == 0 ? kept : 0));
        return rows;
    }
    default:
        /* issue 14's methods: data-dependent work (iLQR's line search,
         * MCTS's time budget); mb_plan_info.model_rows reports it */
        return 0.0;
    }
}

double mb_plan_flops_per_row(const mb_ensemble_spec *spec) {
    if (!spec) return 0.0;
    double macs = 0.0;
    int d = mb_ensemble_in_dim(spec);
    for (int l = 0; l < spec->n_hidden; l++) {
        macs += (double)d * (double)spec->hidden[l];
        d = spec->hidden[l];
    }
    macs += (double)d * 2.0 * (double)mb_ensemble_out_dim(spec); /* mean | raw logvar */
    return 2.0 * macs;
}

double mb_plan_flops(const mb_ensemble_spec *spec, const mb_planner_cfg *cfg) {
    if (!spec || !cfg) return 0.0;
    return mb_plan_model_rows(cfg, spec->members, 0) * mb_plan_flops_per_row(spec);
}
