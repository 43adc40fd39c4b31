/* executor.h: the daemon-wide planning executor. Acts leave the HTTP
 * threads: a handler validates and costs its request, submits a task and
 * parks the connection (routes.h srv_later: no thread waits); planning
 * workers take tasks from one bounded queue, in batches of tasks that may
 * be planned together, and answer them.
 *
 * THE SEAM FOR OTHER PLANNING METHODS. The executor knows nothing about
 * planners: a task carries an ops table (srv_task_ops) saying how to run a
 * batch of tasks, how to answer one that is dropped, and which tasks may
 * share a batch. The act route (api_act.c) is one owner; a method that
 * answers in microseconds (a policy network) may skip the executor, one
 * that plans (MCTS, iLQR) submits tasks like the act route does: run()
 * gets the worker's pool and may plan its tasks one by one (same_batch
 * NULL: batches of one) or together.
 *
 * Policy:
 *   - Queue: at most --plan-queue tasks wait; a submit beyond answers 429
 *     (resource_exhausted, Retry-After: the expected wait, at least 1 s).
 *   - Deadlines: a task whose deadline cannot be met is refused at submit
 *     (503 deadline_exceeded) when the expected wait (the queued batches'
 *     expected durations, per fairness key from measured runs) already
 *     passes it; a queued task is dropped at its deadline by the reaper
 *     thread (503 at once, not when its turn comes).
 *   - Disconnects: the reaper polls queued tasks' clients (gone()) every
 *     few ms, and a running task's owner polls it between planning steps;
 *     a client that went away has its task dropped or stopped.
 *   - Fairness: round robin over fairness keys (models), first in first
 *     out within a key: whatever one model's robots send, every other
 *     model's head task is next after at most one batch per model.
 *   - Batching (as Triton's dynamic batcher): the head task is run with the
 *     queued tasks same_batch() says may join it, up to --max-batch, in
 *     arrival order; with --batch-delay-us > 0 a worker holds a batch that
 *     is not full for up to that long after its head arrived.
 *   - Threads: --plan-workers workers, each with its own mb_pool of
 *     --plan-threads (the worker and its pool's threads); the product
 *     should not exceed the cores (OpenBLAS is pinned to one thread, so
 *     nothing else multiplies it). One reaper thread (timers, polls).
 * Thread-safe; tasks are owned by their submitter, the executor only links
 * them. Not for: training jobs (job.c). */
#ifndef SRV_EXECUTOR_H
#define SRV_EXECUTOR_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/pool.h"
#include "errors.h"
#include "metrics.h"

typedef struct srv_exec srv_exec;
typedef struct srv_task srv_task;


/* One planning worker: what run() may use. */
typedef struct {
    int index;
    mb_pool *pool;          /* its threads (the worker works as pool worker 0) */
    void *scratch;          /* owned by the task owners' code, per worker (e.g. a batcher) */
    void (*scratch_free)(void *scratch);
} srv_worker;

typedef struct {
    /* Runs tasks[0..n) (n >= 1; n > 1 only if same_batch said so) on w;
     * answers every one of them. */
    void (*run)(srv_task **tasks, int n, srv_worker *w);
    /* Answers t without running it: e->status says why (SRV_E_DEADLINE:
     * expired in the queue; SRV_E_UNAVAILABLE: shutting down; MB_ECANCELED:
     * its client went away). */
    void (*drop)(srv_task *t, const srv_err *e);
    /* 1 if a and b may be run in one batch; NULL: never. */
    int (*same_batch)(const srv_task *a, const srv_task *b);
} srv_task_ops;

struct srv_task {
    const srv_task_ops *ops;
    uint64_t fair_key;       /* round robin over these (a model's serial) */
    double deadline;         /* monotonic s (srv_now) */
    double submitted;        /* set by exec_submit */
    atomic_uint_fast64_t *est_us; /* measured batch duration of its kind (EWMA, us), or NULL */
    /* the client's liveness, polled while queued (may be NULL): 1 = gone */
    int (*gone)(void *gone_ctx);
    void *gone_ctx;
    /* executor's */
    srv_task *prev, *next;
};

typedef struct {
    int workers, threads, queue_cap, max_batch;
    long batch_delay_us;
} srv_exec_cfg;

/* Starts workers and the reaper. NULL with err on failure. m: counters. */
srv_exec *exec_new(const srv_exec_cfg *cfg, srv_metrics *m, char *err, size_t err_sz);
/* Queues t: 0, or -1 with e (429 queue full with e->retry_after, 503
 * deadline_exceeded when the expected wait passes the deadline, 503 when
 * stopping). On 0 the task will be run or dropped exactly once. */
int exec_submit(srv_exec *x, srv_task *t, srv_err *e);
/* Tasks waiting now. */
int exec_queued(srv_exec *x);
/* Stops: drops every queued task (503 shutting down), lets running batches
 * finish (their deadlines bound them), joins the threads. */
void exec_stop(srv_exec *x);
void exec_free(srv_exec *x);
/* Records a batch's duration into *est (EWMA), for admission estimates. */
void exec_note_duration(atomic_uint_fast64_t *est, double seconds);

#endif
