/* executor.c: the planning executor's queue, workers and reaper (see
 * executor.h for the policy). One mutex guards the queue; workers wait on
 * `work`, the reaper on `tick` (timed: the earliest queued deadline, and a
 * poll of queued clients every SRV_EXEC_POLL_S). */
#include "executor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "metrics.h"

#define SRV_EXEC_POLL_S 0.02 /* queued clients' liveness, s */

struct srv_exec {
    srv_exec_cfg cfg;
    srv_metrics *metrics;
    pthread_mutex_t mu;
    pthread_cond_t work, tick;
    srv_task *head, *tail;   /* FIFO */
    int n;
    int stop;
    uint64_t last_key;       /* round robin: the key served last */
    int have_last;
    srv_worker *workers;     /* (cfg.workers) */
    pthread_t *threads;
    int n_started;
    pthread_t reaper;
    int reaper_started;
};

static void exec__unlink(srv_exec *x, srv_task *t) {
    if (t->prev) t->prev->next = t->next;
    else x->head = t->next;
    if (t->next) t->next->prev = t->prev;
    else x->tail = t->prev;
    t->prev = t->next = NULL;
    x->n--;
}

void exec_note_duration(atomic_uint_fast64_t *est, double seconds) {
    if (!est) return;
    uint64_t us = (uint64_t)(seconds * 1e6), old = atomic_load_explicit(est, memory_order_relaxed);
    /* EWMA, weight 1/4 to the newest; the first measurement is taken whole */
    uint64_t v = old ? (3 * old + us) / 4 : us;
    atomic_store_explicit(est, v ? v : 1, memory_order_relaxed);
}

static double exec__est(const srv_task *t) {
    return t->est_us ? (double)atomic_load_explicit(t->est_us, memory_order_relaxed) * 1e-6 : 0.0;
}

/* Expected wait for a task submitted now (lock held): every queued kind's
 * batches (ceil(count / max_batch) per fairness key, at its measured
 * duration), spread over the workers. Unmeasured kinds count 0: the
 * estimate errs towards admitting. */
static double exec__expected_wait(srv_exec *x) {
    double total = 0.0;
    for (srv_task *t = x->head; t; t = t->next) {
        int seen = 0;
        for (srv_task *u = x->head; u != t && !seen; u = u->next) seen = u->fair_key == t->fair_key;
        if (seen) continue; /* each key once */
        int count = 0;
        for (srv_task *u = t; u; u = u->next) count += u->fair_key == t->fair_key;
        int batches = (count + x->cfg.max_batch - 1) / x->cfg.max_batch;
        total += batches * exec__est(t);
    }
    return total / x->cfg.workers;
}

int exec_submit(srv_exec *x, srv_task *t, srv_err *e) {
    double now = srv_now();
    t->submitted = now;
    t->prev = t->next = NULL;
    pthread_mutex_lock(&x->mu);
    if (x->stop) {
        pthread_mutex_unlock(&x->mu);
        e->retry_after = 1;
        return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "shutting down");
    }
    if (x->n >= x->cfg.queue_cap) {
        double wait = exec__expected_wait(x);
        pthread_mutex_unlock(&x->mu);
        atomic_fetch_add_explicit(&x->metrics->queue_full, 1, memory_order_relaxed);
        e->retry_after = wait < 1.0 ? 1 : wait > 3600.0 ? 3600 : (int)ceil(wait);
        return srv_fail(e, SRV_E_LIMIT, NULL,
                        "the planning queue is full (%d acts wait, --plan-queue): retry after %d s",
                        x->cfg.queue_cap, e->retry_after);
    }
    double wait = exec__expected_wait(x);
    if (now + wait >= t->deadline) {
        pthread_mutex_unlock(&x->mu);
        atomic_fetch_add_explicit(&x->metrics->deadline[2], 1, memory_order_relaxed);
        e->retry_after = 1;
        return srv_fail(e, SRV_E_DEADLINE, "deadline_ms",
                        "the planning queue is expected to take %.0f ms, past this act's deadline "
                        "(%.0f ms left): raise deadline_ms or retry later",
                        wait * 1e3, (t->deadline - now) * 1e3);
    }
    t->prev = x->tail;
    if (x->tail) x->tail->next = t;
    else x->head = t;
    x->tail = t;
    x->n++;
    pthread_cond_signal(&x->work);
    pthread_cond_signal(&x->tick);
    pthread_mutex_unlock(&x->mu);
    return 0;
}

int exec_queued(srv_exec *x) {
    if (!x) return 0;
    pthread_mutex_lock(&x->mu);
    int n = x->n;
    pthread_mutex_unlock(&x->mu);
    return n;
}

/* The next batch's head (lock held, queue not empty): the first task whose
 * key follows the last served key in key order (wrapping), so keys take
 * turns whatever their arrival pattern. */
static srv_task *exec__pick(srv_exec *x) {
    if (!x->have_last) return x->head;
    srv_task *best_after = NULL, *best_any = NULL;
    for (srv_task *t = x->head; t; t = t->next) {
        if (!best_any || t->fair_key < best_any->fair_key) best_any = t;
        if (t->fair_key > x->last_key && (!best_after || t->fair_key < best_after->fair_key)) best_after = t;
    }
    /* the first task (FIFO) of the chosen key */
    uint64_t key = best_after ? best_after->fair_key : best_any->fair_key;
    for (srv_task *t = x->head; t; t = t->next)
        if (t->fair_key == key) return t;
    return x->head;
}

/* Tasks that may join head, in arrival order, up to max (lock held). */
static int exec__collect(srv_task *head, srv_task **out, int max) {
    int n = 0;
    out[n++] = head;
    if (!head->ops->same_batch) return n;
    for (srv_task *t = head->next; t && n < max; t = t->next)
        if (t->ops == head->ops && head->ops->same_batch(head, t)) out[n++] = t;
    return n;
}

/* Waits on cv for up to `seconds` (mu held). */
static void exec__timedwait(pthread_cond_t *cv, pthread_mutex_t *mu, double seconds) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (seconds < 0) seconds = 0;
    long long ns = (long long)ts.tv_nsec + (long long)(seconds * 1e9);
    ts.tv_sec += (time_t)(ns / 1000000000LL);
    ts.tv_nsec = (long)(ns % 1000000000LL);
    pthread_cond_timedwait(cv, mu, &ts);
}

static int exec__queued_has(const srv_exec *x, const srv_task *t) {
    for (const srv_task *u = x->head; u; u = u->next)
        if (u == t) return 1;
    return 0;
}

static void exec__batch_metric(srv_metrics *m, int n) {
    int b = 0;
    while (b < SRV_N_BATCH_BUCKETS - 1 && n > (1 << b)) b++;
    atomic_fetch_add_explicit(&m->batch_size[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->batch_tasks, (uint64_t)n, memory_order_relaxed);
}

typedef struct {
    srv_exec *x;
    srv_worker *w;
} exec__arg;

static void *exec__worker(void *p) {
    exec__arg *a = p;
    srv_exec *x = a->x;
    srv_worker *w = a->w;
    free(a);
    int max = x->cfg.max_batch;
    srv_task **batch = calloc((size_t)max, sizeof *batch);
    if (!batch) max = 1; /* a batch of one lives on the stack below */
    srv_task *one[1];
    if (!batch) batch = one;
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->stop && !x->head) pthread_cond_wait(&x->work, &x->mu);
        if (!x->head) break; /* stopping, nothing left */
        srv_task *head = exec__pick(x);
        int n = exec__collect(head, batch, max);
        /* hold a batch that is not full for up to --batch-delay-us after
         * its head arrived, unless stopping */
        if (n < max && x->cfg.batch_delay_us > 0 && head->ops->same_batch) {
            double until = head->submitted + (double)x->cfg.batch_delay_us * 1e-6, left;
            while (!x->stop && n < max && (left = until - srv_now()) > 0) {
                exec__timedwait(&x->work, &x->mu, left);
                if (!exec__queued_has(x, head)) break; /* reaped meanwhile */
                n = exec__collect(head, batch, max);
            }
            if (!exec__queued_has(x, head)) continue; /* pick again */
            n = exec__collect(head, batch, max);
        }
        for (int i = 0; i < n; i++) exec__unlink(x, batch[i]);
        x->last_key = head->fair_key;
        x->have_last = 1;
        pthread_mutex_unlock(&x->mu);
        exec__batch_metric(x->metrics, n);
        head->ops->run(batch, n, w);
        pthread_mutex_lock(&x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    if (batch != one) free(batch);
    return NULL;
}

/* Drops queued tasks past their deadline or whose client went away; sleeps
 * until the earliest deadline or the next poll. */
static void *exec__reaper(void *p) {
    srv_exec *x = p;
    pthread_mutex_lock(&x->mu);
    while (!x->stop) {
        double now = srv_now(), next = now + 0.25;
        int any_gone_probe = 0;
        for (srv_task *t = x->head; t;) {
            srv_task *nx = t->next;
            srv_err e;
            memset(&e, 0, sizeof e);
            if (now >= t->deadline) {
                srv_fail(&e, SRV_E_DEADLINE, "deadline_ms",
                         "the act waited %.0f ms in the planning queue and its deadline passed "
                         "before its turn: raise deadline_ms or retry later",
                         (now - t->submitted) * 1e3);
                e.retry_after = 1;
                atomic_fetch_add_explicit(&x->metrics->deadline[3], 1, memory_order_relaxed);
            } else if (t->gone && t->gone(t->gone_ctx)) {
                srv_fail(&e, MB_ECANCELED, NULL, "the client went away");
                atomic_fetch_add_explicit(&x->metrics->plan_canceled, 1, memory_order_relaxed);
            }
            if (e.status) {
                exec__unlink(x, t);
                /* answered outside the lock: drop wakes a connection */
                pthread_mutex_unlock(&x->mu);
                t->ops->drop(t, &e);
                pthread_mutex_lock(&x->mu);
                nx = x->head; /* the queue may have changed: rescan (dropped ones are gone) */
                now = srv_now();
            } else {
                if (t->deadline < next) next = t->deadline;
                any_gone_probe |= t->gone != NULL;
            }
            t = nx;
        }
        if (any_gone_probe && now + SRV_EXEC_POLL_S < next) next = now + SRV_EXEC_POLL_S;
        if (x->stop) break;
        exec__timedwait(&x->tick, &x->mu, next - srv_now());
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

srv_exec *exec_new(const srv_exec_cfg *cfg, srv_metrics *m, char *err, size_t err_sz) {
    srv_exec *x = calloc(1, sizeof *x);
    if (!x) {
        snprintf(err, err_sz, "out of memory");
        return NULL;
    }
    x->cfg = *cfg;
    if (x->cfg.workers < 1) x->cfg.workers = 1;
    if (x->cfg.max_batch < 1) x->cfg.max_batch = 1;
    if (x->cfg.queue_cap < 1) x->cfg.queue_cap = 1;
    x->metrics = m;
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->work, NULL);
    pthread_cond_init(&x->tick, NULL);
    x->workers = calloc((size_t)x->cfg.workers, sizeof *x->workers);
    x->threads = calloc((size_t)x->cfg.workers, sizeof *x->threads);
    if (!x->workers || !x->threads) {
        snprintf(err, err_sz, "out of memory");
        exec_free(x);
        return NULL;
    }
    for (int i = 0; i < x->cfg.workers; i++) {
        x->workers[i].index = i;
        if (cfg->threads > 1 && !(x->workers[i].pool = mb_pool_new(cfg->threads))) {
            snprintf(err, err_sz, "cannot start %d planning threads", cfg->threads);
            exec_free(x);
            return NULL;
        }
    }
    for (int i = 0; i < x->cfg.workers; i++) {
        exec__arg *a = malloc(sizeof *a);
        if (a) *a = (exec__arg){x, &x->workers[i]};
        if (!a || pthread_create(&x->threads[i], NULL, exec__worker, a) != 0) {
            free(a);
            snprintf(err, err_sz, "cannot start planning worker %d", i);
            exec_free(x);
            return NULL;
        }
        x->n_started++;
    }
    if (pthread_create(&x->reaper, NULL, exec__reaper, x) != 0) {
        snprintf(err, err_sz, "cannot start the planning reaper");
        exec_free(x);
        return NULL;
    }
    x->reaper_started = 1;
    return x;
}

void exec_stop(srv_exec *x) {
    if (!x) return;
    pthread_mutex_lock(&x->mu);
    if (x->stop) {
        pthread_mutex_unlock(&x->mu);
        return;
    }
    x->stop = 1;
    while (x->head) {
        srv_task *t = x->head;
        exec__unlink(x, t);
        pthread_mutex_unlock(&x->mu);
        srv_err e;
        memset(&e, 0, sizeof e);
        srv_fail(&e, SRV_E_UNAVAILABLE, NULL, "shutting down");
        e.retry_after = 1;
        t->ops->drop(t, &e);
        pthread_mutex_lock(&x->mu);
    }
    pthread_cond_broadcast(&x->work);
    pthread_cond_broadcast(&x->tick);
    pthread_mutex_unlock(&x->mu);
    for (int i = 0; i < x->n_started; i++) pthread_join(x->threads[i], NULL);
    x->n_started = 0;
    if (x->reaper_started) pthread_join(x->reaper, NULL);
    x->reaper_started = 0;
}

void exec_free(srv_exec *x) {
    if (!x) return;
    exec_stop(x);
    for (int i = 0; x->workers && i < x->cfg.workers; i++) {
        if (x->workers[i].scratch_free) x->workers[i].scratch_free(x->workers[i].scratch);
        mb_pool_free(x->workers[i].pool);
    }
    free(x->workers);
    free(x->threads);
    pthread_mutex_destroy(&x->mu);
    pthread_cond_destroy(&x->work);
    pthread_cond_destroy(&x->tick);
    free(x);
}
