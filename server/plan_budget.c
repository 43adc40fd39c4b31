/* plan_budget.c: planning memory accounting (see plan_budget.h). */
#include "plan_budget.h"

#define MIB (1024.0 * 1024.0)

void plan_budget_init(srv_plan_budget *b, long per_plan_mb, long limit_mb) {
    atomic_init(&b->used, 0);
    atomic_init(&b->peak, 0);
    b->per_plan = (long long)per_plan_mb << 20;
    b->limit = (long long)limit_mb << 20;
}

int plan_budget_check(const srv_plan_budget *b, const mb_plan_cost *c, srv_err *e) {
    double need = (double)c->total;
    const char *which = NULL;
    double limit = 0;
    if (need > (double)b->per_plan) which = "--max-plan-mb", limit = (double)b->per_plan;
    else if (need > (double)b->limit) which = "--plan-memory-mb", limit = (double)b->limit;
    if (!which) return 0;
    return srv_fail(e, MB_ERANGE, "planner",
                    "this plan needs %.1f MiB (workspace %.1f, ensemble workspace %.1f, session "
                    "state %.1f), over the limit of %.0f MiB (%s): lower population, particles or "
                    "horizon (mcts: simulations)",
                    need / MIB, (double)c->ws / MIB, (double)c->ens_ws / MIB, (double)c->state / MIB,
                    limit / MIB, which);
}

int plan_budget_take(srv_plan_budget *b, size_t bytes) {
    if (!b) return 1;
    long long n = (long long)bytes, cur = atomic_load(&b->used);
    do {
        if (cur + n > b->limit) return 0;
    } while (!atomic_compare_exchange_weak(&b->used, &cur, cur + n));
    long long p = atomic_load(&b->peak);
    while (cur + n > p && !atomic_compare_exchange_weak(&b->peak, &p, cur + n)) {
    }
    return 1;
}

void plan_budget_release(srv_plan_budget *b, size_t bytes) {
    if (b) atomic_fetch_sub(&b->used, (long long)bytes);
}

void plan_budget_adjust(srv_plan_budget *b, size_t taken, size_t held) {
    if (b) atomic_fetch_add(&b->used, (long long)held - (long long)taken);
}

long long plan_budget_used(const srv_plan_budget *b) { return atomic_load(&((srv_plan_budget *)b)->used); }
