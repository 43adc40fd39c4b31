/* batch.c: mb_plan_batch (contract in batch.h).
 *
 * Lanes are coroutines (ucontext), one stack each, run by carriers: the
 * calling thread and mb_pool_size(pool) - 1 helper threads of the batcher.
 * Lane i always runs on carrier i % carriers. A round:
 *   - the caller wakes the helpers; every carrier resumes its lanes one
 *     after another; a lane runs mb_plan_ex (serially: no pool) until its
 *     next ensemble forward (batch__forward, the plan's mb_plan_ctl.forward),
 *     where it deposits its arguments and switches back to its carrier, or
 *     until its plan ends;
 *   - when every carrier is through (one wait per helper per round, not
 *     one per lane), the caller runs the deposited forwards, merged per
 *     member list, on the pool; when no lane deposited, the batch is over.
 * So the lanes' own work (noise, rewards, gathers, refits) runs on all the
 * pool's cores without a pool hand-off per lane, the forwards run as one
 * big forward per step, and no more threads run at once than the pool has
 * (helpers sleep while the pool works, the pool's threads while the
 * carriers do). A switch is a swapcontext (about a microsecond). The
 * numbers are those of mb_plan_ex alone (the pool never changes them). The
 * sanitizers are told about the stack switches (ASan's and TSan's fiber
 * interfaces). The merge copies each lane's rows, member block by member
 * block, into one (k, sum of n, in_dim) input and the outputs back. */
#include "plan/batch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "plan/plan_ws.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define BATCH_ASAN 1
#else
#define BATCH_ASAN 0
#endif
#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#define BATCH_TSAN 1
#else
#define BATCH_TSAN 0
#endif

/* A lane's stack (plus a guard page below it): a plan's deepest frames are
 * a few KiB; the sanitizers' redzones make them larger. */
#define BATCH_STACK ((size_t)((BATCH_ASAN || BATCH_TSAN) ? 1u << 20 : 256u << 10))

enum { LANE_IDLE = 0, LANE_RUN, LANE_FWD, LANE_DONE };

/* A thread that runs lanes: its own context to come back to. */
typedef struct {
    struct mb_plan_batcher *b;
    int index;
    pthread_t th;                 /* helpers (index > 0) */
    ucontext_t main_uc;           /* the carrier's context while one of its lanes runs */
    const void *main_bottom;      /* ASan: the carrier's stack */
    size_t main_size;
    void *main_fiber;             /* TSan: the carrier's fiber */
    unsigned long start_round;    /* helpers: the round when it was made */
} batch_carrier;

#define BATCH_MAX_CARRIERS 16

typedef struct {
    struct mb_plan_batcher *b;
    batch_carrier *c;             /* the carrier it runs on (this batch) */
    ucontext_t uc;
    char *map;                    /* guard page + stack */
    size_t map_sz;
    void *fiber;                  /* TSan's */
    int state;                    /* LANE_* */
    mb_plan_req *req;
    const mb_dynamics *dyn;
    mb_plan_ctl ctl;              /* the request's stop + batch__forward */
    /* the deposited forward */
    const int *members;
    int k;
    const float *x;
    size_t n;
    float *mu, *sd;
} batch_lane;

struct mb_plan_batcher {
    int max_lanes, n_made;
    batch_lane *lane;             /* (max_lanes) */
    /* carriers: [0] the caller, [1..n_helpers] threads */
    batch_carrier carrier[BATCH_MAX_CARRIERS];
    int n_helpers, n_carriers;    /* started helpers; carriers of this batch */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long round;          /* bumped by the caller to start a round */
    int helpers_done, stop;
    int n_lanes;                  /* lanes of this batch */
    /* the merged forward */
    /* the step's forwards: items (lane, member) pulled by the pool's tasks,
     * each task with its own ensemble workspace */
    int *item_lane, *item_member; /* (max_lanes * MB_MAX_MEMBERS) */
    mb_ens_ws *ens_ws[BATCH_MAX_CARRIERS];
    int n_ens_ws;
    mb_ensemble_spec spec;
    size_t ens_rows;
    int ens_ws_in, ens_ws_out;
};

/* Carrier -> lane l, until it switches back. */
static void batch__enter(batch_carrier *c, batch_lane *l) {
#if BATCH_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, l->map + l->map_sz - BATCH_STACK, BATCH_STACK);
#endif
#if BATCH_TSAN
    c->main_fiber = __tsan_get_current_fiber();
    __tsan_switch_to_fiber(l->fiber, 0);
#endif
    swapcontext(&c->main_uc, &l->uc);
#if BATCH_ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
}

/* Lane l -> its carrier; returns when resumed (never when `ending`). */
static void batch__leave(batch_lane *l, int ending) {
    batch_carrier *c = l->c;
#if BATCH_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(ending ? NULL : &fake, c->main_bottom, c->main_size);
#endif
#if BATCH_TSAN
    __tsan_switch_to_fiber(c->main_fiber, 0);
#endif
    (void)ending;
    swapcontext(&l->uc, &c->main_uc);
#if BATCH_ASAN
    __sanitizer_finish_switch_fiber(fake, &l->c->main_bottom, &l->c->main_size);
#endif
}

static void batch__forward(void *ctx, const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                           const int *members, int k, const float *x, size_t n, float *mean,
                           float *std) {
    (void)e, (void)ws, (void)pool; /* the batch's ensemble, workspace and pool run it */
    batch_lane *l = ctx;
    l->members = members;
    l->k = k;
    l->x = x;
    l->n = n;
    l->mu = mean;
    l->sd = std;
    l->state = LANE_FWD;
    batch__leave(l, 0);
}

/* A lane's coroutine: one plan (the pointer comes in two halves). */
static void batch__lane_main(unsigned hi, unsigned lo) {
    batch_lane *l = (batch_lane *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
#if BATCH_ASAN
    __sanitizer_finish_switch_fiber(NULL, &l->c->main_bottom, &l->c->main_size);
#endif
    mb_plan_req *q = l->req;
    q->status = mb_plan_ex(q->cfg, l->dyn, q->rw, q->obs, q->state, q->rng, q->ws, NULL, &l->ctl,
                           q->action, q->plan, q->info, q->err, sizeof q->err);
    if (q->done) q->done(q->done_ctx, q);
    l->state = LANE_DONE;
    batch__leave(l, 1);
}

/* Carrier c's share of a round: its lanes that run, each until it
 * deposits a forward or ends. */
static void batch__carry(mb_plan_batcher *b, batch_carrier *c) {
    for (int i = c->index; i < b->n_lanes; i += b->n_carriers) {
        batch_lane *l = &b->lane[i];
        if (l->state != LANE_RUN) continue;
        l->c = c;
        batch__enter(c, l);
    }
}

static void *batch__helper_main(void *p) {
    batch_carrier *c = p;
    mb_plan_batcher *b = c->b;
    pthread_mutex_lock(&b->mu);
    unsigned long seen = c->start_round;
    for (;;) {
        while (!b->stop && b->round == seen) pthread_cond_wait(&b->go, &b->mu);
        if (b->stop) break;
        seen = b->round;
        int mine = c->index < b->n_carriers;
        pthread_mutex_unlock(&b->mu);
        if (mine) batch__carry(b, c);
        pthread_mutex_lock(&b->mu);
        if (++b->helpers_done == b->n_helpers) pthread_cond_signal(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* One round on every carrier (the caller is carrier 0). */
static void batch__round(mb_plan_batcher *b) {
    pthread_mutex_lock(&b->mu);
    b->helpers_done = 0;
    b->round++;
    pthread_cond_broadcast(&b->go);
    pthread_mutex_unlock(&b->mu);
    batch__carry(b, &b->carrier[0]);
    pthread_mutex_lock(&b->mu);
    while (b->helpers_done < b->n_helpers) pthread_cond_wait(&b->done, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

/* Helpers up to n - 1 (mu not held). */
static void batch__helpers(mb_plan_batcher *b, int n) {
    while (b->n_helpers < n - 1 && b->n_helpers < BATCH_MAX_CARRIERS - 1) {
        batch_carrier *c = &b->carrier[b->n_helpers + 1];
        c->b = b;
        c->index = b->n_helpers + 1;
        c->start_round = b->round; /* made between rounds: it waits for the next */
        if (pthread_create(&c->th, NULL, batch__helper_main, c) != 0) break;
        pthread_mutex_lock(&b->mu);
        b->n_helpers++;
        pthread_mutex_unlock(&b->mu);
    }
}

mb_plan_batcher *mb_plan_batcher_new(int max_lanes) {
    if (max_lanes < 1) return NULL;
    mb_plan_batcher *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->lane = calloc((size_t)max_lanes, sizeof *b->lane);
    if (!b->lane) {
        free(b);
        return NULL;
    }
    b->max_lanes = max_lanes;
    b->carrier[0].b = b;
    b->carrier[0].index = 0;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->go, NULL);
    pthread_cond_init(&b->done, NULL);
    return b;
}

void mb_plan_batcher_free(mb_plan_batcher *b) {
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->stop = 1;
    pthread_cond_broadcast(&b->go);
    pthread_mutex_unlock(&b->mu);
    for (int i = 1; i <= b->n_helpers; i++) pthread_join(b->carrier[i].th, NULL);
    pthread_mutex_destroy(&b->mu);
    pthread_cond_destroy(&b->go);
    pthread_cond_destroy(&b->done);
    for (int i = 0; i < b->n_made; i++) {
        munmap(b->lane[i].map, b->lane[i].map_sz);
#if BATCH_TSAN
        __tsan_destroy_fiber(b->lane[i].fiber);
#endif
    }
    for (int i = 0; i < b->n_ens_ws; i++) mb_ens_ws_free(b->ens_ws[i]);
    free(b->item_lane);
    free(b->item_member);
    free(b->lane);
    free(b);
}

size_t mb_plan_batcher_bytes(const mb_plan_batcher *b) {
    if (!b) return 0;
    return sizeof *b + (size_t)b->max_lanes * sizeof *b->lane + (size_t)b->n_made * (BATCH_STACK + 4096) +
           (size_t)b->max_lanes * MB_MAX_MEMBERS * 2 * sizeof(int) +
           (size_t)b->n_ens_ws * mb_ens_ws_bytes(&b->spec, b->ens_rows);
}

/* Stacks for lanes up to n. 0, or -1 when one could not be mapped. */
static int batch__lanes(mb_plan_batcher *b, int n) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (b->n_made < n) {
        batch_lane *l = &b->lane[b->n_made];
        memset(l, 0, sizeof *l);
        l->b = b;
        l->map_sz = BATCH_STACK + page;
        l->map = mmap(NULL, l->map_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
        if (l->map == MAP_FAILED) {
            l->map = NULL;
            return -1;
        }
        mprotect(l->map, page, PROT_NONE); /* an overflow faults instead of corrupting */
#if BATCH_TSAN
        l->fiber = __tsan_create_fiber(0);
#endif
        b->n_made++;
    }
    return 0;
}

/* The item table and one ensemble workspace per pool task, fitting reqs. */
static int batch__buffers(mb_plan_batcher *b, const mb_dynamics *dyn, const mb_plan_req *reqs, int n,
                          int tasks) {
    if (!b->item_lane) {
        b->item_lane = malloc((size_t)b->max_lanes * MB_MAX_MEMBERS * sizeof(int));
        b->item_member = malloc((size_t)b->max_lanes * MB_MAX_MEMBERS * sizeof(int));
        if (!b->item_lane || !b->item_member) return -1;
    }
    size_t rows = 0;
    for (int i = 0; i < n; i++)
        if (reqs[i].ws->ens_rows > rows) rows = reqs[i].ws->ens_rows;
    const mb_ensemble_spec *s = &dyn->ens->spec;
    if (b->n_ens_ws && (b->ens_rows < rows || memcmp(&b->spec, s, sizeof *s))) {
        for (int i = 0; i < b->n_ens_ws; i++) mb_ens_ws_free(b->ens_ws[i]);
        b->n_ens_ws = 0;
    }
    if (!b->n_ens_ws) {
        b->spec = *s;
        b->ens_rows = rows;
    }
    while (b->n_ens_ws < tasks) {
        if (!(b->ens_ws[b->n_ens_ws] = mb_ens_ws_new(s, b->ens_rows))) return -1;
        b->n_ens_ws++;
    }
    return 0;
}

typedef struct {
    const mb_plan_batcher *b;
    const mb_ensemble *e;
    batch_lane *const *fw;
    int items;
    atomic_int next;
} batch__fwd_ctx;

/* Member indices 0..15, for a forward through one member of all. */
static const int batch__idx[MB_MAX_MEMBERS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* Pool task: pulls (lane, member) items and runs each as a forward of that
 * lane's rows through that member, on the task's own workspace. The rows
 * and their tiles are exactly those of the lane's own forward. */
static void batch__fwd_task(void *vctx, int task, int worker) {
    (void)worker;
    batch__fwd_ctx *c = vctx;
    const mb_plan_batcher *b = c->b;
    for (;;) {
        int t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= c->items) break;
        const batch_lane *l = c->fw[b->item_lane[t]];
        int j = b->item_member[t];
        size_t in = (size_t)b->ens_ws_in, out = (size_t)b->ens_ws_out;
        const int *m = l->members ? &l->members[j] : &batch__idx[j];
        size_t off = (size_t)j * l->n;
        mb_ensemble_forward(c->e, b->ens_ws[task], NULL, m, 1, l->x + off * in, l->n, l->mu + off * out,
                            l->sd ? l->sd + off * out : NULL);
    }
}

/* Runs the deposited forwards of lanes fw[0..n) (suspended) in one pool
 * run: every (lane, member) block is an item. */
static void batch__run_forwards(mb_plan_batcher *b, const mb_dynamics *dyn, batch_lane **fw, int n,
                                mb_pool *pool) {
    int items = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < fw[i]->k; j++) {
            b->item_lane[items] = i;
            b->item_member[items++] = j;
        }
    batch__fwd_ctx c = {.b = b, .e = dyn->ens, .fw = fw, .items = items};
    atomic_init(&c.next, 0);
    int tasks = mb_pool_size(pool) < b->n_ens_ws ? mb_pool_size(pool) : b->n_ens_ws;
    if (tasks > items) tasks = items;
    mb_pool_run(pool, batch__fwd_task, &c, tasks);
}

mb_status mb_plan_batch(mb_plan_batcher *b, const mb_dynamics *dyn, mb_plan_req *reqs, int n,
                        mb_pool *pool, char *err, size_t err_sz) {
    if (!b || !dyn || !reqs || n < 1 || n > b->max_lanes)
        return mb_fail(err, err_sz, MB_EINVAL, "plan batch: bad arguments (n %d)", n);
    for (int i = 0; i < n; i++)
        if (!reqs[i].cfg || !reqs[i].ws || (reqs[i].ctl && reqs[i].ctl->forward))
            return mb_fail(err, err_sz, MB_EINVAL, "plan batch: request %d has no config or "
                           "workspace, or its own forward hook", i);
    if (n == 1 || !dyn->ens) { /* nothing to merge: each on the pool, in turn */
        for (int i = 0; i < n; i++) {
            mb_plan_req *q = &reqs[i];
            q->status = mb_plan_ex(q->cfg, dyn, q->rw, q->obs, q->state, q->rng, q->ws, pool, q->ctl,
                                   q->action, q->plan, q->info, q->err, sizeof q->err);
            if (q->done) q->done(q->done_ctx, q);
        }
        return MB_OK;
    }
    int tasks = mb_pool_size(pool) < BATCH_MAX_CARRIERS ? mb_pool_size(pool) : BATCH_MAX_CARRIERS;
    b->ens_ws_in = mb_ensemble_in_dim(&dyn->ens->spec);
    b->ens_ws_out = mb_ensemble_out_dim(&dyn->ens->spec);
    if (batch__lanes(b, n) != 0 || batch__buffers(b, dyn, reqs, n, tasks) != 0)
        return mb_fail(err, err_sz, MB_ENOMEM, "plan batch: out of memory for %d lanes", n);
    for (int i = 0; i < n; i++) {
        batch_lane *l = &b->lane[i];
        l->req = &reqs[i];
        l->dyn = dyn;
        l->ctl = (mb_plan_ctl){.forward = batch__forward, .forward_ctx = l};
        if (reqs[i].ctl) {
            l->ctl.stop = reqs[i].ctl->stop;
            l->ctl.stop_ctx = reqs[i].ctl->stop_ctx;
        }
        getcontext(&l->uc);
        l->uc.uc_stack.ss_sp = l->map + (l->map_sz - BATCH_STACK);
        l->uc.uc_stack.ss_size = BATCH_STACK;
        l->uc.uc_link = NULL; /* a lane never returns: it switches back (batch__leave) */
        uintptr_t p = (uintptr_t)l;
        makecontext(&l->uc, (void (*)(void))batch__lane_main, 2, (unsigned)(p >> 32), (unsigned)(p & 0xffffffffu));
        l->state = LANE_RUN;
    }
    /* as many carriers as the pool has threads, helpers made on first use */
    int want = mb_pool_size(pool) < n ? mb_pool_size(pool) : n;
    batch__helpers(b, want);
    b->n_carriers = b->n_helpers + 1 < want ? b->n_helpers + 1 : want;
    b->n_lanes = n;
    batch_lane *fw[n];
    for (;;) {
        batch__round(b);
        int nf = 0;
        for (int i = 0; i < n; i++)
            if (b->lane[i].state == LANE_FWD) fw[nf++] = &b->lane[i];
        if (nf == 0) break; /* every lane is done */
        batch__run_forwards(b, dyn, fw, nf, pool);
        for (int i = 0; i < nf; i++) fw[i]->state = LANE_RUN;
    }
    for (int i = 0; i < n; i++) b->lane[i].state = LANE_IDLE;
    return MB_OK;
}
