/* pool.h: a fixed set of worker threads that run one parallel-for at a time.
 *
 * Who parallelises (DESIGN.md "Concurrency"): OpenBLAS is pinned to one
 * thread (mb_pool_blas_single_thread) and mbrld splits work (members, row
 * blocks) across its own workers, so that concurrent requests never fight
 * over OpenBLAS's global thread pool. Measured (bench ensemble, 2 cores):
 * the ensemble forward at 2,000 and 20,000 rows per member ran at 162
 * GFLOP/s on a pool of 2 with OpenBLAS on 1 thread against 114-116 with no
 * pool and OpenBLAS on 2 threads (OpenBLAS splits each 256-row tile's
 * small sgemm and synchronises per call). Training (mb_train, one epoch
 * over 100,000 transitions, pets-halfcheetah network) on a pool of 2 took
 * 3.10 s against 5.06 s with no pool and OpenBLAS on 2 threads (busy
 * machine; two noisier runs: 7.06 vs 7.15 s, 8.26 vs 8.49 s).
 * A pool is owned by its creator; one mb_pool_run at a time per pool
 * (callers serialise, e.g. one pool per planning worker or a mutex around a
 * shared pool).
 * Not for: long-running background jobs (training jobs use their own thread). */
#ifndef MB_POOL_H
#define MB_POOL_H

typedef struct mb_pool mb_pool;

/* fn(ctx, task, worker): runs task `task` in [0, n_tasks) on worker `worker`
 * in [0, mb_pool_size(pool)). */
typedef void (*mb_pool_fn)(void *ctx, int task, int worker);

/* threads >= 1 (1 = everything runs on the caller). NULL on failure. */
mb_pool *mb_pool_new(int threads);
/* Joins the workers. NULL is a no-op. */
void mb_pool_free(mb_pool *pool);
/* Worker count; 1 for a NULL pool. */
int mb_pool_size(const mb_pool *pool);
/* Runs all tasks and returns when every one has finished. The calling thread
 * works too (as worker 0). pool may be NULL: runs serially on the caller. */
void mb_pool_run(mb_pool *pool, mb_pool_fn fn, void *ctx, int n_tasks);
/* Sets OpenBLAS to one thread (process-wide) and stops the threads it
 * started before main (they would take signals the process blocked
 * elsewhere). Call once at start-up, after blocking signals. */
void mb_pool_blas_single_thread(void);

#endif
