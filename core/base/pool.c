/* pool.c: a fixed set of worker threads running one parallel-for at a time.
 *
 * mb_pool_run publishes (fn, ctx, n_tasks) under a mutex, wakes the workers
 * with a condition variable and works too; tasks are claimed from an atomic
 * counter, so every task runs exactly once and fast workers take more. It
 * returns once every worker has left the run, so ctx may live on the
 * caller's stack. Wake-up costs tens of microseconds: callers hand it work
 * of at least a few hundred microseconds (a batched forward, a minibatch).
 * Not for: long-running jobs, nested runs on the same pool. */
#include "base/pool.h"

#include <cblas.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

struct mb_pool {
    int n;               /* workers including the caller */
    pthread_t *threads;  /* (n - 1) */
    int n_started;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    unsigned long gen;   /* bumped per run */
    int stop;
    int busy;            /* helper threads still inside the current run */
    mb_pool_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next;
};

typedef struct {
    mb_pool *pool;
    int worker;
} pool__arg;

static void pool__drain(mb_pool *p, int worker) {
    for (;;) {
        int t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= p->n_tasks) break;
        p->fn(p->ctx, t, worker);
    }
}

static void *pool__main(void *arg) {
    mb_pool *p = ((pool__arg *)arg)->pool;
    int worker = ((pool__arg *)arg)->worker;
    free(arg);
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen) pthread_cond_wait(&p->start, &p->mu);
        if (p->stop) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        pool__drain(p, worker);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

mb_pool *mb_pool_new(int threads) {
    if (threads < 1) return NULL;
    mb_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = threads;
    atomic_init(&p->next, 0);
    if (pthread_mutex_init(&p->mu, NULL)) goto err_mu;
    if (pthread_cond_init(&p->start, NULL)) goto err_start;
    if (pthread_cond_init(&p->done, NULL)) goto err_done;
    if (threads > 1) {
        p->threads = calloc((size_t)threads - 1, sizeof *p->threads);
        if (!p->threads) goto err_threads;
        for (int i = 1; i < threads; i++) {
            pool__arg *a = malloc(sizeof *a);
            if (!a) goto err_threads;
            a->pool = p;
            a->worker = i;
            if (pthread_create(&p->threads[i - 1], NULL, pool__main, a)) {
                free(a);
                goto err_threads;
            }
            p->n_started++;
        }
    }
    return p;
err_threads:
    mb_pool_free(p);
    return NULL;
err_done:
    pthread_cond_destroy(&p->start);
err_start:
    pthread_mutex_destroy(&p->mu);
err_mu:
    free(p);
    return NULL;
}

void mb_pool_free(mb_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_started; i++) pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->start);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int mb_pool_size(const mb_pool *p) { return p ? p->n : 1; }

void mb_pool_run(mb_pool *p, mb_pool_fn fn, void *ctx, int n_tasks) {
    if (n_tasks <= 0) return;
    if (!p || p->n_started == 0 || n_tasks == 1) {
        for (int t = 0; t < n_tasks; t++) fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->n_tasks = n_tasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->busy = p->n_started;
    p->gen++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    pool__drain(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

/* OpenBLAS's own shutdown of its thread server (exported by libopenblas;
 * weak, so another BLAS without it links too). */
extern void blas_thread_shutdown_(void) __attribute__((weak));

void mb_pool_blas_single_thread(void) {
    openblas_set_num_threads(1);
    /* OpenBLAS starts its threads in a library constructor, before main,
     * with every signal deliverable: stop them, so the only threads are the
     * ones this process starts (with the signal mask their creator chose).
     * With one thread OpenBLAS runs every call inline and starts none. */
    if (blas_thread_shutdown_) blas_thread_shutdown_();
}
