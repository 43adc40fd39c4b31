/* batch.c: mb_plan_batch (contract in batch.h).
 *
 * Lanes are coroutines (ucontext), one stack each, run by carriers: the
 * calling thread and mb_pool_size(pool) - 1 helper threads of the batcher
 * (the pool's own threads rest during a batch). A round, on every carrier:
 *   - first the forwards the lanes deposited in the round before, as
 *     (lane, member) items taken from a shared counter, each computed
 *     serially on the carrier's own ensemble workspace: the same rows and
 *     tiles as that member's part of the lane's own forward;
 *   - then the lanes, also from a shared counter: each, once its items are
 *     done (a carrier may still be finishing one: it yields until then),
 *     runs mb_plan_ex (serially: no pool) until its next ensemble forward
 *     (batch__forward, the plan's mb_plan_ctl.forward), where it deposits
 *     its arguments and switches back to the carrier, or until its plan
 *     ends.
 * The caller closes the round once both counters are spent and waits only
 * for the helpers that joined it: a helper the system was slow to run
 * stays out instead of holding everyone up. When no lane deposited, the
 * batch is over. A lane may resume on another carrier than the one it
 * left: nothing of a plan keeps a thread-local address across a forward
 * (the stack protector's canary is the same in every thread). No more
 * threads run at once than the pool has. A switch is a swapcontext (about
 * a microsecond). The numbers are those of mb_plan_ex alone (the pool size
 * never changes them). The sanitizers are told about the stack switches
 * (ASan's and TSan's fiber interfaces). */
#include "plan/batch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
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
    mb_precision want, used;      /* asked of the forward; used (by its item of member 0) */
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
    int closed, active, stop;     /* round closed to late helpers; helpers in it */
    int n_lanes;                  /* lanes of this batch */
    atomic_int next_item, next_lane; /* what a carrier takes next this round */
    int n_items;
    /* the deposited forwards: items (lane, member), each carrier with its
     * own ensemble workspace; pending[lane] counts its items not done */
    int *item_lane, *item_member; /* (max_lanes * MB_MAX_MEMBERS) */
    atomic_int *pending;          /* (max_lanes) */
    mb_ens_ws *ens_ws[BATCH_MAX_CARRIERS];
    int n_ens_ws;
    mb_ensemble_spec spec;
    size_t ens_rows;
    int ens_ws_in, ens_ws_out;
    const mb_ensemble *ens;       /* this batch's */
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

static mb_precision batch__forward(void *ctx, const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                                   const int *members, int k, const float *x, size_t n,
                                   float *mean, float *std, mb_precision want) {
    (void)e, (void)ws, (void)pool; /* the batch's ensemble, workspace and pool run it */
    batch_lane *l = ctx;
    l->members = members;
    l->k = k;
    l->x = x;
    l->n = n;
    l->mu = mean;
    l->sd = std;
    l->want = want;
    l->used = MB_PREC_FP32;
    l->state = LANE_FWD;
    batch__leave(l, 0);
    return l->used; /* set by the items of its forward (all of one precision) */
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
static void batch__item(mb_plan_batcher *b, batch_carrier *c, int t);

static void batch__carry(mb_plan_batcher *b, batch_carrier *c) {
    for (;;) { /* the forwards deposited last round, (lane, member) blocks */
        int t = atomic_fetch_add_explicit(&b->next_item, 1, memory_order_relaxed);
        if (t >= b->n_items) break;
        batch__item(b, c, t);
        atomic_fetch_sub_explicit(&b->pending[b->item_lane[t]], 1, memory_order_release);
    }
    for (;;) { /* then the lanes, each once its forward is complete */
        int i = atomic_fetch_add_explicit(&b->next_lane, 1, memory_order_relaxed);
        if (i >= b->n_lanes) return;
        batch_lane *l = &b->lane[i];
        if (l->state != LANE_RUN) continue;
        /* its last blocks are being computed by carriers that took them
         * before this lane was taken: short */
        while (atomic_load_explicit(&b->pending[i], memory_order_acquire) > 0) sched_yield();
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
        /* a helper woken after the caller closed the round stays out: the
         * caller never waits for a thread the system was slow to run */
        if (b->closed || c->index >= b->n_carriers) continue;
        b->active++;
        pthread_mutex_unlock(&b->mu);
        batch__carry(b, c);
        pthread_mutex_lock(&b->mu);
        if (--b->active == 0) pthread_cond_signal(&b->done);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

/* One round: the caller (carrier 0) and the helpers that join in time
 * take items and lanes until none is left; then the caller closes the
 * round and waits for the helpers inside it. */
static void batch__round(mb_plan_batcher *b) {
    pthread_mutex_lock(&b->mu);
    b->closed = 0;
    atomic_store(&b->next_item, 0);
    atomic_store(&b->next_lane, 0);
    b->round++;
    if (b->n_carriers > 1) pthread_cond_broadcast(&b->go);
    pthread_mutex_unlock(&b->mu);
    batch__carry(b, &b->carrier[0]);
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    while (b->active > 0) pthread_cond_wait(&b->done, &b->mu);
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
    free(b->pending);
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
        b->pending = calloc((size_t)b->max_lanes, sizeof *b->pending);
        if (!b->item_lane || !b->item_member || !b->pending) return -1;
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

/* Member indices 0..15, for a forward through one member of all. */
static const int batch__idx[MB_MAX_MEMBERS] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

/* Item t on carrier c: lane item_lane[t]'s rows through its member
 * item_member[t], on the carrier's own workspace, serially: exactly the
 * rows and tiles of that member's part of the lane's own forward. */
static void batch__item(mb_plan_batcher *b, batch_carrier *c, int t) {
    const batch_lane *l = &b->lane[b->item_lane[t]];
    int j = b->item_member[t];
    size_t in = (size_t)b->ens_ws_in, out = (size_t)b->ens_ws_out, off = (size_t)j * l->n;
    const int *m = l->members ? &l->members[j] : &batch__idx[j];
    mb_precision used = mb_ensemble_forward_prec(b->ens, b->ens_ws[c->index], NULL, m, 1, l->x + off * in,
                                                 l->n, l->mu + off * out, l->sd ? l->sd + off * out : NULL,
                                                 l->want);
    if (j == 0) b->lane[b->item_lane[t]].used = used; /* one writer; read after the round */
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
    /* as many carriers as the pool has threads (its threads rest meanwhile) */
    int want = mb_pool_size(pool) < n ? mb_pool_size(pool) : n;
    if (want > BATCH_MAX_CARRIERS) want = BATCH_MAX_CARRIERS;
    b->ens = dyn->ens;
    b->ens_ws_in = mb_ensemble_in_dim(&dyn->ens->spec);
    b->ens_ws_out = mb_ensemble_out_dim(&dyn->ens->spec);
    if (batch__lanes(b, n) != 0 || batch__buffers(b, dyn, reqs, n, want) != 0)
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
    batch__helpers(b, want);
    b->n_carriers = b->n_helpers + 1 < want ? b->n_helpers + 1 : want;
    b->n_lanes = n;
    b->n_items = 0;
    for (;;) {
        batch__round(b);
        /* the forwards deposited this round are the next round's items */
        int items = 0, nf = 0;
        for (int i = 0; i < n; i++) {
            batch_lane *l = &b->lane[i];
            if (l->state != LANE_FWD) continue;
            nf++;
            for (int j = 0; j < l->k; j++) {
                b->item_lane[items] = i;
                b->item_member[items++] = j;
            }
            atomic_store_explicit(&b->pending[i], l->k, memory_order_relaxed);
            l->state = LANE_RUN;
        }
        if (nf == 0) break; /* every lane is done */
        b->n_items = items;
    }
    for (int i = 0; i < n; i++) b->lane[i].state = LANE_IDLE;
    return MB_OK;
}
