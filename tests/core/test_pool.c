/* test_pool.c: the worker pool (core/base/pool.c): every task runs exactly once,
 * on a valid worker, with 1, 2 and 4 threads, over many consecutive runs
 * (the pool is reused), and NULL pools run serially on the caller.
 * Not for: speed (bench/). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "base/pool.h"

typedef struct {
    int n_workers;
    atomic_int *count;   /* (n_tasks) runs per task */
    atomic_int bad_worker;
    atomic_long sum;
    pthread_t caller;
    atomic_int on_caller_as_nonzero;
} ctx_t;

static void task(void *vc, int t, int worker) {
    ctx_t *c = vc;
    atomic_fetch_add(&c->count[t], 1);
    if (worker < 0 || worker >= c->n_workers) atomic_fetch_add(&c->bad_worker, 1);
    /* worker 0 is the caller */
    if (pthread_equal(pthread_self(), c->caller) != (worker == 0))
        atomic_fetch_add(&c->on_caller_as_nonzero, 1);
    /* a little work so tasks overlap */
    long s = 0;
    for (int i = 0; i < 200 + (t % 7) * 50; i++) s += i ^ t;
    atomic_fetch_add(&c->sum, s);
}

static void run_case(int threads) {
    mb_pool *p = threads ? mb_pool_new(threads) : NULL;
    if (threads) ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(mb_pool_size(p), threads ? threads : 1);
    const int n_tasks = 1000, runs = mb_test_sanitized() ? 50 : 300;
    ctx_t c;
    c.n_workers = mb_pool_size(p);
    c.count = malloc(sizeof(atomic_int) * n_tasks);
    c.caller = pthread_self();
    for (int run = 0; run < runs; run++) {
        int nt = run % 3 == 0 ? n_tasks : run % 3 == 1 ? 1 : 17 + run % 5;
        for (int t = 0; t < n_tasks; t++) atomic_init(&c.count[t], 0);
        atomic_init(&c.bad_worker, 0);
        atomic_init(&c.sum, 0);
        atomic_init(&c.on_caller_as_nonzero, 0);
        mb_pool_run(p, task, &c, nt);
        int wrong = -1; /* first task that ran other than once (asserted once: ck_assert is slow) */
        for (int t = 0; t < n_tasks && wrong < 0; t++)
            if (atomic_load(&c.count[t]) != (t < nt ? 1 : 0)) wrong = t;
        ck_assert_msg(wrong < 0, "threads %d run %d: task %d ran %d times", threads, run, wrong,
                      wrong < 0 ? 0 : atomic_load(&c.count[wrong]));
        ck_assert_int_eq(atomic_load(&c.bad_worker), 0);
        ck_assert_int_eq(atomic_load(&c.on_caller_as_nonzero), 0);
    }
    mb_pool_run(p, task, &c, 0); /* no tasks: returns at once */
    free(c.count);
    mb_pool_free(p);
}

START_TEST(test_null_pool) { run_case(0); }
END_TEST
START_TEST(test_one_thread) { run_case(1); }
END_TEST
START_TEST(test_two_threads) { run_case(2); }
END_TEST
START_TEST(test_four_threads) { run_case(4); }
END_TEST

START_TEST(test_bad_args) {
    ck_assert_ptr_null(mb_pool_new(0));
    ck_assert_ptr_null(mb_pool_new(-3));
    mb_pool_free(NULL);
    ck_assert_int_eq(mb_pool_size(NULL), 1);
    /* create and free without running */
    mb_pool *p = mb_pool_new(3);
    ck_assert_ptr_nonnull(p);
    mb_pool_free(p);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_null_pool);
    tcase_add_test(tc, test_one_thread);
    tcase_add_test(tc, test_two_threads);
    tcase_add_test(tc, test_four_threads);
    tcase_add_test(tc, test_bad_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return mb_test_main(suite()); }
