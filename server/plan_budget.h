/* plan_budget.h: planning memory, in bytes, checked before it is allocated.
 *
 * Every planning request (the model's planner with the call's overrides) is
 * costed by core (mb_plan_cost_of: workspace, its ensemble workspace,
 * warm-start state, the batch share) and refused with 422 when its figure
 * exceeds --max-plan-mb (per plan) or the whole daemon budget
 * --plan-memory-mb. What is held counts against the daemon budget while it
 * is held: workspaces in use and those kept idle per model (SRV_WS_KEPT or --max-batch,
 * model.c), sessions' warm-start states, the executor's batch buffers. A
 * request whose figure fits the limits but not what is free now is answered
 * 503 (Retry-After) after idle workspaces were dropped to make room.
 * Thread-safe (one atomic counter); no locks.
 * Not for: training memory (--max-buffer-mb, --max-params bound it). */
#ifndef SRV_PLAN_BUDGET_H
#define SRV_PLAN_BUDGET_H

#include <stdatomic.h>
#include <stddef.h>

#include "errors.h"
#include "plan/planner.h"

typedef struct {
    atomic_llong used;    /* bytes held now */
    atomic_llong peak;    /* the most ever held */
    long long per_plan;   /* --max-plan-mb in bytes */
    long long limit;      /* --plan-memory-mb in bytes */
} srv_plan_budget;

void plan_budget_init(srv_plan_budget *b, long per_plan_mb, long limit_mb);
/* A request's cost against both limits: 0, or -1 with e (422 out_of_range
 * naming the figure, its parts and the limit; field "planner"). */
int plan_budget_check(const srv_plan_budget *b, const mb_plan_cost *c, srv_err *e);
/* Takes bytes from the daemon budget: 1 if they fit (held until release),
 * 0 if not (nothing taken). b may be NULL (no budget: always 1). */
int plan_budget_take(srv_plan_budget *b, size_t bytes);
void plan_budget_release(srv_plan_budget *b, size_t bytes);
/* What was taken (`taken`) turned out to be `held` (0: the allocation
 * failed): the difference is given back or added without a check. */
void plan_budget_adjust(srv_plan_budget *b, size_t taken, size_t held);
long long plan_budget_used(const srv_plan_budget *b);

#endif
