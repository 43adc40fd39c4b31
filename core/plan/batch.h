/* batch.h: cross-request batching of planning calls through one ensemble.
 *
 * mb_plan_batch plans n requests (each its own config, observation, reward
 * spec, warm-start state, random generator, workspace and stop) at once:
 * every request runs mb_plan_ex as a lane (a coroutine), and the lanes'
 * ensemble forwards of a step go out together as (lane, member) blocks
 * taken by the same threads that run the lanes' own work between forwards
 * (batch.c): one hand-off between threads per step for the whole batch
 * instead of two pool runs per plan and step. What that can buy is the
 * fixed cost per step (waking threads, tiles too small to share) paid once
 * per batch: for small plans (tens of rows per member per step); plans
 * that fill the cores on their own gain nothing (README, Benchmarks).
 *
 * Same result as alone: a request planned in a batch answers exactly what
 * mb_plan_ex answers for it alone with the same rng state (the plan, the
 * returns, the state): its forwards are the same rows through the same
 * members in the same tiles, and a plan's own work does not depend on the
 * pool (planner.h); tests/core/test_plan_batch.c checks it bit for bit.
 *
 * Threads: the caller and mb_pool_size(pool) - 1 helper threads of the
 * batcher (made on first use) carry the lanes and the forwards; the pool's
 * threads rest meanwhile, so no more threads run at once than it has.
 * Memory: every request plans in its own workspace (mb_plan_cost); the
 * batcher adds a coroutine stack per lane, a small table and one ensemble
 * workspace per pool thread (mb_plan_batcher_bytes), made on first use and
 * kept; nothing is allocated while a batch of a size seen before plans.
 * Not for: different ensembles in one batch (one dyn per call). */
#ifndef MB_PLAN_BATCH_H
#define MB_PLAN_BATCH_H

#include "plan/planner.h"

typedef struct mb_plan_batcher mb_plan_batcher;

/* One request of a batch: what mb_plan_ex takes, and its outcome. */
typedef struct mb_plan_req_s {
    const mb_planner_cfg *cfg;
    const mb_reward_spec *rw;   /* may be NULL */
    const float *obs;           /* (obs_dim) */
    mb_plan_state *state;       /* may be NULL */
    mb_rng *rng;
    mb_plan_ws *ws;             /* its own, fitting cfg */
    const mb_plan_ctl *ctl;     /* may be NULL; its forward must be NULL */
    float *action;              /* (act_dim) */
    float *plan;                /* (horizon, act_dim) or NULL */
    mb_plan_info *info;         /* may be NULL */
    /* called once this request's plan is over (status, outputs and state
     * final), on the thread that planned it, while the batch goes on: its
     * answer need not wait for the batch's slowest plan. May be NULL. */
    void (*done)(void *done_ctx, struct mb_plan_req_s *q);
    void *done_ctx;
    /* out */
    mb_status status;
    char err[256];
} mb_plan_req;

/* A batcher for up to max_lanes requests per batch; NULL on failure. */
mb_plan_batcher *mb_plan_batcher_new(int max_lanes);
/* Joins the lanes. NULL is a no-op. Not while a batch runs. */
void mb_plan_batcher_free(mb_plan_batcher *b);
/* Bytes held: lanes' bookkeeping and the merged forward buffers. */
size_t mb_plan_batcher_bytes(const mb_plan_batcher *b);

/* Plans reqs[0..n) through dyn (1 <= n <= max_lanes); each request's
 * outcome in its status / err / outputs, as mb_plan_ex would give. pool:
 * the merged forwards' threads (and how many lanes run at once); may be
 * NULL. Returns MB_OK when the batch ran, MB_EINVAL for bad arguments,
 * MB_ENOMEM when the merged buffers or a lane could not be had (nothing
 * planned). One call at a time per batcher. */
mb_status mb_plan_batch(mb_plan_batcher *b, const mb_dynamics *dyn, mb_plan_req *reqs, int n,
                        mb_pool *pool, char *err, size_t err_sz);

#endif
