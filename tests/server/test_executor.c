/* test_executor.c: the planning executor against a real daemon
 * (server/executor.c, the act route's tasks):
 *   - /healthz, /readyz and /metrics answer while 16 heavy acts plan;
 *   - a full queue answers 429 with Retry-After;
 *   - a client that disconnects cancels its running plan and its queued one;
 *   - round robin across models: a lone robot of another model is served
 *     before a flood of one model's queued acts;
 *   - an act whose deadline the queue cannot meet answers 503 while the
 *     plan ahead of it still runs;
 *   - acts that arrive together plan as one batch, and each answers what
 *     it answers alone for the same seed.
 * Order of events, never durations, is asserted. */
#include <pthread.h>
#include <stdatomic.h>

#include "check_util.h"
#include "harness.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A metric's value (the first line starting with `name `), -1 if absent. */
static double metric(const mbd *d, const char *name) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "GET", "/metrics", NULL), 200);
    char key[160];
    snprintf(key, sizeof key, "\n%s ", name);
    const char *p = strstr(r.body, key);
    double v = p ? atof(p + strlen(key)) : -1;
    mbr_free(&r);
    return v;
}

static void train(const mbd *d, const char *name) {
    ck_assert_int_eq(mbd_create_small(d, name, NULL), 201);
    ck_assert_int_eq(mbd_post_rows(d, name, 200, 0, NULL, 0, NULL), 201);
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
}

/* 100 iterations of a big plan: longer than the deadlines used here, so
 * such an act mostly runs until its deadline_ms (truncated); one iteration
 * well within it (a tenth of the rows under the sanitizers, which run 3-15
 * times slower on a busy machine). Bodies live in a ring of static buffers
 * (the main thread makes them). */
static const char *heavy(int deadline_ms, int horizon) {
    static char ring[32][256];
    static int next;
    char *b = ring[next++ % 32];
    int san = mb_test_sanitized();
    snprintf(b, 256,
             "{\"obs\": [0.1, 0, 0], \"deadline_ms\": %d, \"planner\": {\"iterations\": 100, "
             "\"population\": %d, \"elites\": 20, \"particles\": %d, \"horizon\": %d}}",
             deadline_ms, san ? 500 : 2000, san ? 8 : 20, horizon);
    return b;
}

typedef struct {
    const mbd *d;
    char path[96];
    const char *body;
    long timeout_ms; /* 0: none */
    long status;
    CURLcode curl;
    int truncated;
    char code[40];
    double done_at;
    atomic_int done;
} act_arg;

static void *act_main(void *p) {
    act_arg *a = p;
    CURL *c = curl_easy_init();
    char url[256];
    snprintf(url, sizeof url, "%s%s", a->d->url, a->path);
    mbr r;
    memset(&r, 0, sizeof r);
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, a->timeout_ms > 0 ? a->timeout_ms : 120000L);
    a->curl = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &a->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    a->done_at = now_s();
    cJSON *j = r.body ? cJSON_Parse(r.body) : NULL;
    a->truncated = cJSON_IsTrue(cJSON_GetObjectItem(j, "truncated"));
    const cJSON *e = cJSON_GetObjectItem(j, "error");
    if (cJSON_IsString(cJSON_GetObjectItem(e, "code")))
        snprintf(a->code, sizeof a->code, "%s", cJSON_GetObjectItem(e, "code")->valuestring);
    cJSON_Delete(j);
    free(r.body);
    atomic_store(&a->done, 1);
    return NULL;
}

static void act_start(pthread_t *th, act_arg *a, const mbd *d, const char *model, const char *body,
                      long timeout_ms) {
    memset(a, 0, sizeof *a);
    a->d = d;
    snprintf(a->path, sizeof a->path, "/v1/models/%s/act", model);
    a->body = body;
    a->timeout_ms = timeout_ms;
    ck_assert_int_eq(pthread_create(th, NULL, act_main, a), 0);
}

/* Waits until the daemon has `n` acts planning or queued beyond the
 * running ones: queue length >= queued and in-flight acts >= inflight. */
static void wait_for(const mbd *d, double queued, int tries_ms) {
    for (int i = 0; i < tries_ms; i++) {
        if (metric(d, "mbrld_plan_queue_length") >= queued) return;
        mbd_sleep_ms(1);
    }
    ck_abort_msg("the queue never reached %g", queued);
}

/* Waits until one act plans: in flight (besides the scrape) and out of
 * the queue. */
static void wait_planning(const mbd *d) {
    for (int i = 0; i < 5000; i++) {
        if (metric(d, "mbrld_http_in_flight") >= 2 && metric(d, "mbrld_plan_queue_length") == 0) return;
        mbd_sleep_ms(1);
    }
    ck_abort_msg("no act started planning");
}

START_TEST(test_probes_answer_under_heavy_acts) {
    mbd d;
    const char *args[] = {"--threads", "24", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train(&d, "h");
    enum { N = 16 };
    pthread_t th[N];
    act_arg a[N];
    for (int i = 0; i < N; i++) act_start(&th[i], &a[i], &d, "h", heavy(3000, 30), 0);
    /* some are planning, the rest queued (one worker; batches or not) */
    for (int i = 0; i < 5000 && metric(&d, "mbrld_http_in_flight") < N + 1; i++) mbd_sleep_ms(1);
    int answered = 0;
    for (int k = 0; k < 20; k++) {
        mbr r;
        ck_assert_int_eq(mbr_call(&r, &d, "GET", "/healthz", NULL), 200);
        mbr_free(&r);
        ck_assert_int_eq(mbr_call(&r, &d, "GET", "/readyz", NULL), 200);
        mbr_free(&r);
        ck_assert_int_eq(mbr_call(&r, &d, "GET", "/metrics", NULL), 200);
        mbr_free(&r);
        answered++;
    }
    /* every probe above was answered while acts were still planning */
    int unfinished = 0;
    for (int i = 0; i < N; i++) unfinished += !atomic_load(&a[i].done);
    ck_assert_msg(unfinished > 0, "the acts finished before the probes: make them heavier");
    ck_assert_int_eq(answered, 20);
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(a[i].curl == CURLE_OK, "act %d: curl %d", i, (int)a[i].curl);
        ck_assert_msg(a[i].status == 200 || (a[i].status == 503 && !strcmp(a[i].code, "deadline_exceeded")),
                      "act %d: %ld %s", i, a[i].status, a[i].code);
    }
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_full_queue_429) {
    mbd d;
    const char *args[] = {"--plan-queue", "2", "--max-batch", "1", "--threads", "16", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train(&d, "q");
    pthread_t th[3];
    act_arg a[3];
    act_start(&th[0], &a[0], &d, "q", heavy(3000, 30), 0);
    wait_planning(&d);
    act_start(&th[1], &a[1], &d, "q", heavy(3000, 30), 0);
    wait_for(&d, 1, 5000);
    act_start(&th[2], &a[2], &d, "q", heavy(3000, 30), 0);
    wait_for(&d, 2, 5000);
    mbr r;
    double before = metric(&d, "mbrld_plan_queue_full_total");
    mbr_call(&r, &d, "POST", "/v1/models/q/act", "%s", heavy(3000, 30));
    MBR_EXPECT_ERROR(&r, 429, "resource_exhausted", "");
    ck_assert_msg(strstr(r.headers, "Retry-After: ") != NULL, "no Retry-After: %s", r.headers);
    ck_assert_int_ge(atoi(strstr(r.headers, "Retry-After: ") + 13), 1);
    mbr_free(&r);
    ck_assert_int_eq(metric(&d, "mbrld_plan_queue_full_total"), before + 1);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_disconnect_cancels) {
    mbd d;
    const char *args[] = {"--max-batch", "1", "--threads", "16", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train(&d, "c");
    /* a running plan whose client gives up after 300 ms: canceled, long
     * before its 9 s deadline would have ended it */
    pthread_t th[3];
    act_arg a[3];
    act_start(&th[0], &a[0], &d, "c", heavy(9000, 30), 300);
    pthread_join(th[0], NULL);
    ck_assert_int_eq(a[0].curl, CURLE_OPERATION_TIMEDOUT);
    for (int i = 0; i < 8000 && metric(&d, "mbrld_plan_canceled_total") < 1; i++) mbd_sleep_ms(1);
    ck_assert_int_eq(metric(&d, "mbrld_plan_canceled_total"), 1);
    /* the worker is free again: an act is planned */
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/c/act", "{\"obs\": [0, 0, 0]}"), 200);
    mbr_free(&r);
    /* a queued act whose client gives up: dropped from the queue */
    act_start(&th[1], &a[1], &d, "c", heavy(3000, 30), 0);
    wait_planning(&d);
    act_start(&th[2], &a[2], &d, "c", heavy(3000, 31), 400);
    wait_for(&d, 1, 5000);
    pthread_join(th[2], NULL);
    for (int i = 0; i < 5000 && metric(&d, "mbrld_plan_canceled_total") < 2; i++) mbd_sleep_ms(1);
    ck_assert_int_eq(metric(&d, "mbrld_plan_canceled_total"), 2);
    ck_assert_int_eq(metric(&d, "mbrld_plan_queue_length"), 0);
    ck_assert_msg(!atomic_load(&a[1].done), "the queued act was dropped while the first still ran");
    pthread_join(th[1], NULL);
    ck_assert_int_eq(a[1].status, 200);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_round_robin_across_models) {
    mbd d;
    const char *args[] = {"--max-batch", "1", "--threads", "16", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train(&d, "a");
    train(&d, "b");
    enum { NA = 5 };
    pthread_t th[NA + 1];
    act_arg a[NA + 1];
    /* model a: one planning, then four queued; then b's one robot */
    int x = mb_test_sanitized() ? 3 : 1; /* sanitizers: slower iterations, longer deadlines */
    act_start(&th[0], &a[0], &d, "a", heavy(1500 * x, 30), 0);
    wait_planning(&d);
    for (int k = 1; k < NA; k++) {
        act_start(&th[k], &a[k], &d, "a", heavy(5000 * x, 30), 0);
        wait_for(&d, k, 5000);
    }
    /* b's deadline ends its plan before a's queued ones expire */
    act_start(&th[NA], &a[NA], &d, "b", heavy(2500 * x, 30), 0);
    wait_for(&d, NA, 5000);
    for (int k = 0; k <= NA; k++) pthread_join(th[k], NULL);
    for (int k = 0; k <= NA; k++)
        ck_assert_msg(a[k].status == 200 || (a[k].status == 503 && !strcmp(a[k].code, "deadline_exceeded")),
                      "act %d: %ld %s", k, a[k].status, a[k].code);
    /* b's act went right after the one planning when it came: before
     * every queued act of a but the first */
    ck_assert_msg(a[NA].status == 200, "b's act: %ld %s", a[NA].status, a[NA].code);
    for (int k = 2; k < NA; k++)
        ck_assert_msg(a[NA].done_at < a[k].done_at, "b's act finished after a's queued act %d", k);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_deadline_not_met_answers_early) {
    mbd d;
    const char *args[] = {"--max-batch", "1", "--threads", "16", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train(&d, "e");
    /* one act measures the model's plan duration (to its 1.5 s deadline) */
    mbr r;
    int x = mb_test_sanitized() ? 3 : 1; /* sanitizers: slower iterations, longer deadlines */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/e/act", "%s", heavy(1500 * x, 30)), 200);
    mbr_free(&r);
    pthread_t th;
    act_arg a;
    act_start(&th, &a, &d, "e", heavy(3000, 30), 0);
    wait_planning(&d);
    /* one queued ahead (expected 1.5 s), then an act that has 200 ms */
    pthread_t th2;
    act_arg a2;
    act_start(&th2, &a2, &d, "e", heavy(3000, 30), 0);
    wait_for(&d, 1, 5000);
    mbr_call(&r, &d, "POST", "/v1/models/e/act", "%s", heavy(200, 30));
    MBR_EXPECT_ERROR(&r, 503, "deadline_exceeded", "deadline_ms");
    ck_assert_ptr_nonnull(strstr(r.headers, "Retry-After"));
    mbr_free(&r);
    ck_assert_msg(!atomic_load(&a.done), "answered only after the plan ahead finished");
    pthread_join(th, NULL);
    pthread_join(th2, NULL);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Acts that arrive together for one model version and planner plan as one
 * batch (held up to --batch-delay-us to gather), and each answers what it
 * answers alone: the same seed and observation give the same action and
 * predicted return, batched or not. */
typedef struct {
    const mbd *d;
    int i;
    long status;
    double action, ret;
    int batch;
} seeded_arg;

static void seeded_act(const mbd *d, int i, seeded_arg *out) {
    mbr r;
    out->status = mbr_call(&r, d, "POST", "/v1/models/bt/act",
                           "{\"obs\": [%g, %g, 0.5], \"seed\": %d, \"planner\": {\"population\": 64, "
                           "\"elites\": 8, \"iterations\": 2, \"horizon\": 6, \"particles\": 4}}",
                           0.1 * i - 0.3, 0.05 * i, 100 + i);
    if (out->status == 200) {
        out->action = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "action"), 0)->valuedouble;
        out->ret = mbr_num(&r, "predicted_return");
        out->batch = (int)mbr_num(&r, "batch");
    }
    mbr_free(&r);
}

static void *seeded_main(void *p) {
    seeded_arg *a = p;
    seeded_act(a->d, a->i, a);
    return NULL;
}

START_TEST(test_batched_equals_unbatched) {
    mbd d;
    const char *args[] = {"--max-batch", "64", "--batch-delay-us", "300000", "--threads", "16", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    ck_assert_int_eq(mbd_create_small(&d, "bt", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "bt", 200, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/bt/train", "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
    enum { N = 6 };
    seeded_arg together[N], alone[N];
    pthread_t th[N];
    int max_batch = 0;
    for (int tries = 0; tries < 3 && max_batch < 2; tries++) {
        for (int i = 0; i < N; i++) {
            together[i] = (seeded_arg){.d = &d, .i = i};
            ck_assert_int_eq(pthread_create(&th[i], NULL, seeded_main, &together[i]), 0);
        }
        for (int i = 0; i < N; i++) {
            pthread_join(th[i], NULL);
            ck_assert_int_eq(together[i].status, 200);
            if (together[i].batch > max_batch) max_batch = together[i].batch;
        }
    }
    ck_assert_msg(max_batch >= 2, "6 acts held 300 ms never shared a batch");
    for (int i = 0; i < N; i++) {
        seeded_act(&d, i, &alone[i]);
        ck_assert_int_eq(alone[i].status, 200);
        ck_assert_int_eq(alone[i].batch, 1);
        ck_assert_msg(alone[i].action == together[i].action && alone[i].ret == together[i].ret,
                      "act %d: batched (of %d) %.9g / %.9g, alone %.9g / %.9g", i, together[i].batch,
                      together[i].action, together[i].ret, alone[i].action, alone[i].ret);
    }
    /* the batch size histogram saw it */
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/metrics", NULL), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_plan_batch_size_bucket{le=\"1\"}"));
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("executor");
    TCase *tc = tcase_create("executor");
    tcase_set_timeout(tc, mb_test_sanitized() ? 400 : 120);
    tcase_add_test(tc, test_probes_answer_under_heavy_acts);
    tcase_add_test(tc, test_full_queue_429);
    tcase_add_test(tc, test_disconnect_cancels);
    tcase_add_test(tc, test_round_robin_across_models);
    tcase_add_test(tc, test_deadline_not_met_answers_early);
    tcase_add_test(tc, test_batched_equals_unbatched);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
