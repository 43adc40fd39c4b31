/* test_model_copy.c: model_buffer_copy (server/model.c), in process: the
 * copy a snapshot, an export or a training job takes of a 1M-row replay
 * buffer lets the model lock go between ~1 MiB slices, so an act (or an
 * append) waiting for the lock gets it during the copy rather than after
 * it; and the copy is exact: equal to the buffer as it is when the copy
 * returns, although rows were appended (and the ring wrapped) meanwhile.
 * Mirrors server/model.c (model_buffer_copy, model_lock). */
#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "app.h"
#include "check_util.h"
#include "spec.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#define OD 8
#define ROWS (1u << 20) /* capacity 1,048,576 rows, 78 bytes each: 82 MB */

static srv_app app;
static srv_model *model;

static void setup(void) {
    srv_config cfg;
    srv_config_default(&cfg);
    char err[512];
    ck_assert_int_eq(srv_config_set(&cfg, "data-dir", "", err, sizeof err), 0);
    ck_assert_int_eq(srv_config_set(&cfg, "log-level", "error", err, sizeof err), 0);
    ck_assert_msg(app_init(&app, &cfg, err, sizeof err) == 0, "%s", err);
    char spec[512];
    snprintf(spec, sizeof spec,
             "{\"name\": \"big\", \"obs_dim\": %d, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], "
             "\"ensemble\": {\"members\": 2, \"hidden\": [8]}, \"buffer\": {\"capacity\": %u}}",
             OD, ROWS);
    cJSON *j = cJSON_Parse(spec);
    srv_model_spec *sp = calloc(1, sizeof *sp);
    srv_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(spec_parse(j, &app.cfg, sp, &e) == 0, "%s", e.message);
    ck_assert_msg(model_create(&app, sp, &model, &e) == 0, "%s", e.message);
    cJSON_Delete(j);
    free(sp);
}

static void teardown(void) {
    model_put(model);
    app_free(&app);
}

/* n rows whose values encode their global index g0.. */
static void append_rows(uint64_t g0, size_t n) {
    float *obs = malloc(sizeof(float) * n * OD), *next = malloc(sizeof(float) * n * OD);
    float *act = malloc(sizeof(float) * n), *rew = malloc(sizeof(float) * n);
    uint8_t *term = calloc(n, 1);
    for (size_t i = 0; i < n; i++) {
        for (int k = 0; k < OD; k++) obs[i * OD + k] = (float)((g0 + i) % 1000003) + 0.25f * (float)k;
        for (int k = 0; k < OD; k++) next[i * OD + k] = -obs[i * OD + k];
        act[i] = (float)((g0 + i) % 7) / 7.0f;
        rew[i] = (float)(g0 + i);
        term[i] = (uint8_t)((g0 + i) % 5 == 0);
    }
    size_t acc, size;
    int replay;
    srv_err e;
    memset(&e, 0, sizeof e);
    ck_assert_msg(model_append(&app, model, NULL, 0, n, obs, act, rew, next, term, NULL, &acc, &size, &replay, &e) == 0,
                  "%s", e.message);
    free(obs), free(next), free(act), free(rew), free(term);
}

static int same_buffer(const mb_buffer *a, const mb_buffer *b) {
    if (a->size != b->size || a->head != b->head || a->total != b->total || a->capacity != b->capacity) return 0;
    size_t c = a->capacity;
    return !memcmp(a->obs, b->obs, c * OD * sizeof(float)) && !memcmp(a->next_obs, b->next_obs, c * OD * sizeof(float)) &&
           !memcmp(a->act, b->act, c * sizeof(float)) && !memcmp(a->rew, b->rew, c * sizeof(float)) &&
           !memcmp(a->terminated, b->terminated, c) && !memcmp(a->truncated, b->truncated, c);
}

typedef struct {
    atomic_int copying, stop;
    atomic_long during;  /* lock acquisitions while a copy was running */
    atomic_long worst_us; /* longest wait for the lock during a copy */
} lock_user;

/* What an act does to the model lock (session_take/_put, workspaces), in a
 * loop: take it, count, let it go. */
static void *lock_user_main(void *arg) {
    lock_user *u = arg;
    while (!atomic_load(&u->stop)) {
        double t0 = now_s();
        int c0 = atomic_load(&u->copying); /* the wait began during a copy */
        model_lock(model);
        double w = now_s() - t0;
        int c = atomic_load(&u->copying);
        pthread_mutex_unlock(&model->lock);
        if (c) atomic_fetch_add(&u->during, 1);
        if ((c0 || c) && (long)(w * 1e6) > atomic_load(&u->worst_us)) atomic_store(&u->worst_us, (long)(w * 1e6));
    }
    return NULL;
}

typedef struct {
    atomic_int stop;
    uint64_t next;
} appender;

static void *appender_main(void *arg) {
    appender *a = arg;
    while (!atomic_load(&a->stop)) {
        append_rows(a->next, 1000);
        a->next += 1000;
        struct timespec ts = {0, 2 * 1000 * 1000}; /* fewer rows than the ring holds per copy */
        nanosleep(&ts, NULL);
    }
    return NULL;
}

START_TEST(test_copy_lets_waiters_in) {
    append_rows(0, ROWS); /* full */
    lock_user u = {0};
    pthread_t th;
    pthread_create(&th, NULL, lock_user_main, &u);
    char err[256];
    /* before: the whole copy under the lock (mb_buffer_copy), for the figure */
    mb_buffer whole;
    atomic_store(&u.copying, 1);
    double t0 = now_s();
    model_lock(model);
    ck_assert_int_eq(mb_buffer_copy(&whole, &model->buf, err, sizeof err), MB_OK);
    pthread_mutex_unlock(&model->lock);
    double whole_s = now_s() - t0;
    atomic_store(&u.copying, 0);
    mb_buffer_free(&whole);
    long before = atomic_load(&u.during);
    double before_worst = atomic_load(&u.worst_us) * 1e-6;
    atomic_store(&u.during, 0);
    atomic_store(&u.worst_us, 0);
    /* now: in slices */
    mb_buffer copy;
    size_t slices = 0;
    atomic_store(&u.copying, 1);
    t0 = now_s();
    model_lock(model);
    ck_assert_int_eq(model_buffer_copy(model, &copy, &slices, err, sizeof err), MB_OK);
    pthread_mutex_unlock(&model->lock);
    double sliced_s = now_s() - t0;
    atomic_store(&u.copying, 0);
    atomic_store(&u.stop, 1);
    pthread_join(th, NULL);
    long during = atomic_load(&u.during);
    (void)before;
    printf("copy of %u rows (%zu MB): whole under the lock %.1f ms, a lock user waited up to %.1f ms; "
           "in %zu slices %.1f ms, it got in %ld times and waited up to %.2f ms\n",
           ROWS, (size_t)ROWS * (OD * 8 + 10) / 1000000, whole_s * 1e3, before_worst * 1e3, slices, sliced_s * 1e3,
           during, atomic_load(&u.worst_us) * 1e-3);
    ck_assert_uint_ge(slices, 50);
    /* Handing over at every slice boundary where it waits: at least a
     * quarter of the boundaries (timing cannot starve it of all of them) */
    ck_assert_msg(during >= (long)slices / 4, "the lock user got in %ld times over %zu slices", during, slices);
    model_lock(model);
    mb_buffer ref;
    ck_assert_int_eq(mb_buffer_copy(&ref, &model->buf, err, sizeof err), MB_OK);
    pthread_mutex_unlock(&model->lock);
    ck_assert(same_buffer(&copy, &ref));
    mb_buffer_free(&copy);
    mb_buffer_free(&ref);
}
END_TEST

/* Rows appended during the copy (wrapping the full ring) are in it: it
 * equals the buffer at the moment it returns, every time. */
START_TEST(test_copy_exact_under_appends) {
    append_rows(0, ROWS - 12345); /* not full yet: the appender fills and wraps it */
    appender a = {.next = ROWS - 12345};
    pthread_t th;
    pthread_create(&th, NULL, appender_main, &a);
    char err[256];
    int rounds = mb_test_sanitized() ? 3 : 6;
    for (int r = 0; r < rounds; r++) {
        mb_buffer copy, ref;
        size_t slices;
        model_lock(model);
        uint64_t t0 = model->buf.total;
        ck_assert_int_eq(model_buffer_copy(model, &copy, &slices, err, sizeof err), MB_OK);
        ck_assert_int_eq(mb_buffer_copy(&ref, &model->buf, err, sizeof err), MB_OK);
        uint64_t t1 = model->buf.total;
        pthread_mutex_unlock(&model->lock);
        printf("round %d: %zu slices, %llu rows appended during the copy\n", r, slices,
               (unsigned long long)(t1 - t0));
        ck_assert_msg(same_buffer(&copy, &ref), "round %d: the copy differs from the buffer", r);
        mb_buffer_free(&copy);
        mb_buffer_free(&ref);
    }
    atomic_store(&a.stop, 1);
    pthread_join(th, NULL);
    ck_assert_uint_gt(a.next, ROWS); /* it did wrap */
}
END_TEST

int main(void) {
    Suite *s = suite_create("model_copy");
    TCase *tc = tcase_create("copy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_copy_lets_waiters_in);
    tcase_add_test(tc, test_copy_exact_under_appends);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
