/* flops.h: the work of one planning call through a learned ensemble,
 * derived from the network shapes and the planner config alone (no call
 * is run): what the benchmarks divide by to get GFLOP/s, and what a
 * caller can use to budget a plan before making it.
 *
 * What counts: the multiply-adds of the members' matrix products, 2 FLOPs
 * each. One row through one member costs
 *     2 * sum_{l=0..L} d_l * d_{l+1},
 *     d_0 = obs_dim + act_dim, d_1..d_L = hidden[0..L-1],
 *     d_{L+1} = 2 * out_dim (mean | raw log-variance columns),
 *     out_dim = obs_dim (+1 with the learned reward).
 * What is ignored: bias adds, the activations, input normalisation and
 * output de-normalisation, the head's soft log-variance bounds and exp,
 * the noise drawn per prediction, the state update and rewards, candidate
 * sampling, sorting and the refit of the search distribution. Each of
 * these is O(width) or less per row against the O(width^2) of the
 * products (on `small`, 64 wide, they are not free: the benchmarks show
 * them as the share of the call outside the forward).
 *
 * Rows: one evaluation of n candidates with P particles through k members
 * rolls H steps; per step
 *     TS-1, TS-inf:       k * ceil(n * P / k) rows (the rows are split
 *                         over the members; the padding of the last
 *                         member block is counted: it is computed);
 *     expectation, mean:  k * n * P rows (every row through every member).
 * Evaluations per call (mb_plan, planner.c):
 *     random:     one of N candidates;
 *     CEM, MPPI:  `iterations` of N, then one of the final mean (n = 1);
 *     iCEM:       iteration i evaluates N_i = clamp(floor(N / decay^i),
 *                 2 K, N) sampled candidates plus the elites kept from
 *                 the iteration before (iteration 0: those kept from the
 *                 previous call, `kept_in`), plus the mean in the last
 *                 iteration; after iteration i, min(max_kept, K, total_i)
 *                 are kept, max_kept = min(K, ceil(keep_elites * K)).
 * These are the rows mb_plan reports in mb_plan_info.model_rows (and
 * model_rows * flops per row in .flops); tests/core/test_flops.c checks
 * both against a hand count.
 * The methods of issue 14 (mcts, ilqr, lqr_flm, grad, cem_grad) spend
 * data-dependent work (line searches, time budgets): 0 here, and
 * mb_plan_info.model_rows reports what a call spent (a VJP row counted as 2).
 * Not for: known dynamics (no ensemble FLOPs), timing of any kind. */
#ifndef MB_PLAN_FLOPS_H
#define MB_PLAN_FLOPS_H

#include "nn/ensemble.h"
#include "plan/planner.h"

/* Rows through the ensemble (summed over members) in one mb_plan call
 * with k members in use (spec.members, or the ensemble's elite count with
 * cfg->elites_only) and kept_in iCEM elites carried over from the previous
 * call (0 for a cold start and for the other methods). */
double mb_plan_model_rows(const mb_planner_cfg *cfg, int k, int kept_in);

/* FLOPs of one row through one member (the products only, see above). */
double mb_plan_flops_per_row(const mb_ensemble_spec *spec);

/* FLOPs of one cold-start mb_plan call with every member of spec in use:
 * mb_plan_model_rows(cfg, spec->members, 0) * mb_plan_flops_per_row(spec).
 * With cfg->elites_only pass a spec whose members is the elite count. */
double mb_plan_flops(const mb_ensemble_spec *spec, const mb_planner_cfg *cfg);

#endif
