/* test_concurrency.c: black-box tests of the daemon under concurrency:
 * acting while a training job runs (answers keep coming, versions only go
 * up), 32 concurrent clients posting (with retries) and acting with no lost
 * or duplicated transitions, session warm start vs cold plans, and SIGTERM
 * with requests in flight. Mirrors server/job.c, server/model.c (versions,
 * idempotency), server/session.c and server/app.c (shutdown). */
#include <pthread.h>
#include <stdatomic.h>

#include "check_util.h"
#include "harness.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const char *job_state(const mbd *d, const char *loc) {
    static char st[32];
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "GET", loc, NULL), 200);
    snprintf(st, sizeof st, "%s", mbr_str(&r, "state"));
    mbr_free(&r);
    return st;
}

START_TEST(test_act_while_training) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models",
                              "{\"name\": \"busy\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
                              "\"ensemble\": {\"members\": 3, \"hidden\": [32, 32]}, "
                              "\"planner\": {\"horizon\": 5, \"population\": 32, \"elites\": 4, \"iterations\": 2, \"particles\": 3}}"), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&d, "busy", 1000, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/busy/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);

    /* (a) a long job: acts keep being answered while it runs */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/busy/train", "{\"max_epochs\": 100000, \"patience\": 0}"), 202);
    char loc[128];
    snprintf(loc, sizeof loc, "/v1/models/busy/jobs/%s", mbr_str(&r, "job"));
    mbr_free(&r);
    int during = 0;
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/busy/act", "{\"obs\": [0.1, 0.1, 0.5]}"), 200);
        ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
        mbr_free(&r);
        if (!strcmp(job_state(&d, loc), "running")) during++;
    }
    ck_assert_int_eq(during, 10);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "DELETE", loc, NULL), 200);
    mbr_free(&r);
    while (!strcmp(job_state(&d, loc), "running")) mbd_sleep_ms(5);

    /* (b) a job that finishes while we act: versions never go down */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/busy/train", "{\"max_epochs\": 8, \"patience\": 0}"), 202);
    snprintf(loc, sizeof loc, "/v1/models/busy/jobs/%s", mbr_str(&r, "job"));
    mbr_free(&r);
    int last = 0, acts = 0;
    for (;;) {
        int running = !strcmp(job_state(&d, loc), "running");
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/busy/act", "{\"obs\": [0.1, 0.1, 0.5], \"session\": \"s\"}"), 200);
        int v = (int)mbr_num(&r, "version");
        mbr_free(&r);
        ck_assert_msg(v >= last, "version went down: %d after %d", v, last);
        last = v;
        acts++;
        if (!running) break;
    }
    ck_assert_str_eq(job_state(&d, loc), "done");
    ck_assert_int_eq(last, 2);
    ck_assert_int_ge(acts, 1);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

#define N_CLIENTS 32

typedef struct {
    const mbd *d;
    int id, batches, rows, failures, replays;
    char why[256];
} client_arg;

static void *client_main(void *p) {
    client_arg *a = p;
    char client[32];
    snprintf(client, sizeof client, "robot-%d", a->id);
    for (int b = 1; b <= a->batches; b++) {
        mbr r, r2;
        long st = mbd_post_rows(a->d, "crowd", a->rows, a->id * 1000 + b, client, b, &r);
        if (st != 201) {
            a->failures++;
            snprintf(a->why, sizeof a->why, "post %d: %ld %s", b, st, r.body ? r.body : "");
        }
        if (b % 2) { /* a retry, as after a lost answer: nothing may be added twice */
            st = mbd_post_rows(a->d, "crowd", a->rows, a->id * 1000 + b, client, b, &r2);
            if (st != 201 || !r.body || !r2.body || strcmp(r.body, r2.body) != 0 ||
                !strstr(r2.headers, "X-Idempotent-Replay: true")) {
                a->failures++;
                snprintf(a->why, sizeof a->why, "retry %d: %ld %s vs %s", b, st, r.body, r2.body);
            } else {
                a->replays++;
            }
            mbr_free(&r2);
        }
        mbr_free(&r);
        st = mbr_call(&r, a->d, "POST", "/v1/models/crowd/act",
                      "{\"obs\": [0.2, -0.1, 0.5], \"session\": \"%s\"}", client);
        if (st != 200) {
            a->failures++;
            snprintf(a->why, sizeof a->why, "act %d: %ld %s", b, st, r.body ? r.body : "");
        }
        mbr_free(&r);
    }
    return NULL;
}

START_TEST(test_32_clients) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "crowd", "\"buffer\": {\"capacity\": 100000}"), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "crowd", 100, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/crowd/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    int batches = mb_test_sanitized() ? 4 : 10, rows = 5;
    pthread_t th[N_CLIENTS];
    client_arg args[N_CLIENTS];
    for (int i = 0; i < N_CLIENTS; i++) {
        args[i] = (client_arg){.d = &d, .id = i, .batches = batches, .rows = rows};
        ck_assert_int_eq(pthread_create(&th[i], NULL, client_main, &args[i]), 0);
    }
    int replays = 0;
    for (int i = 0; i < N_CLIENTS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].failures == 0, "client %d: %s", i, args[i].why);
        replays += args[i].replays;
    }
    ck_assert_int_eq(replays, N_CLIENTS * ((batches + 1) / 2));
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/crowd", NULL), 200);
    ck_assert_int_eq((long)mbr_num(&r, "buffer_size"), 100 + N_CLIENTS * batches * rows);
    ck_assert_int_eq((long)mbr_num(&r, "transitions_total"), 100 + N_CLIENTS * batches * rows);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/metrics", NULL), 200);
    char want[128];
    snprintf(want, sizeof want, "mbrld_idempotent_replays_total %d", replays);
    ck_assert_msg(strstr(r.body, want) != NULL, "metrics lack '%s'", want);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Reward +sum a^2 (action_l2 with a negative weight) and a narrow initial
 * search (init_std 0.05, one CEM iteration): a cold plan stays near the
 * middle of the bounds, while a session's warm start carries the previous
 * plan forward, so its predicted return grows over calls. */
START_TEST(test_session_warm_start) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models",
                              "{\"name\": \"warm\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
                              "\"ensemble\": {\"members\": 3, \"hidden\": [16, 16], \"learn_reward\": false}, "
                              "\"reward\": {\"terms\": [{\"type\": \"action_l2\", \"weight\": -1}]}, "
                              "\"planner\": {\"method\": \"cem\", \"horizon\": 10, \"population\": 20, \"elites\": 2, "
                              "\"iterations\": 1, \"alpha\": 0, \"init_std\": 0.05, \"particles\": 1}}"), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&d, "warm", 50, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/warm/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    double cold = 0, warm = 0;
    for (int i = 0; i < 8; i++) {
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/warm/act", "{\"obs\": [0, 0, 0]}"), 200);
        double v = mbr_num(&r, "predicted_return");
        if (v > cold) cold = v;
        mbr_free(&r);
    }
    for (int i = 0; i < 12; i++) {
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/warm/act", "{\"obs\": [0, 0, 0], \"session\": \"robot\"}"), 200);
        double v = mbr_num(&r, "predicted_return");
        if (i > 0 && v > warm) warm = v;
        mbr_free(&r);
    }
    /* cold: ~H * (2 * 0.05 * 2)^2 scale, ~0.1; warm climbs well above */
    ck_assert_msg(warm > 2 * cold, "warm start %g is not above twice the best cold plan %g", warm, cold);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

typedef struct {
    const mbd *d;
    const char *path, *body;
    atomic_int *started;
    long status;
    CURLcode curl;
    double done_at;
    atomic_int done;
    char state[32];
    int truncated;  /* an act's "truncated" */
    char code[32];  /* an error's code */
} inflight_arg;

static void *inflight_main(void *p) {
    inflight_arg *a = p;
    mbr r;
    atomic_fetch_add(a->started, 1);
    mbr_do(&r, a->d, "POST", a->path, a->body, 0, NULL);
    a->done_at = now_s();
    atomic_store(&a->done, 1);
    a->status = r.status;
    a->curl = r.curl;
    if (r.json && cJSON_IsString(cJSON_GetObjectItem(r.json, "state")))
        snprintf(a->state, sizeof a->state, "%s", cJSON_GetObjectItem(r.json, "state")->valuestring);
    a->truncated = r.json && cJSON_IsTrue(cJSON_GetObjectItem(r.json, "truncated"));
    const cJSON *err = r.json ? cJSON_GetObjectItem(r.json, "error") : NULL;
    if (err && cJSON_IsString(cJSON_GetObjectItem(err, "code")))
        snprintf(a->code, sizeof a->code, "%s", cJSON_GetObjectItem(err, "code")->valuestring);
    mbr_free(&r);
    return NULL;
}

START_TEST(test_sigterm_in_flight) {
    mbd d;
    const char *args[] = {"--threads", "16", "--shutdown-timeout", "30", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    ck_assert_int_eq(mbd_create_small(&d, "term", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "term", 500, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/term/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    enum { N = 5 };
    atomic_int started = 0;
    inflight_arg a[N + 1];
    pthread_t th[N + 1];
    /* acts bounded by their deadline, not by a slow config: 100 iterations
     * would take far longer than 2 s, each finishes well within it, so
     * every act ends at its deadline (the best plan so far, truncated; or
     * 503 deadline_exceeded if not one iteration finished), well within
     * --shutdown-timeout; and a training request that waits for its job */
    const char *slow = "{\"obs\": [0, 0, 0], \"deadline_ms\": 2000, \"planner\": {\"population\": 2000, "
                       "\"elites\": 20, \"particles\": 20, \"horizon\": 30, \"iterations\": 100}}";
    for (int i = 0; i < N; i++)
        a[i] = (inflight_arg){.d = &d, .path = "/v1/models/term/act", .body = slow, .started = &started};
    a[N] = (inflight_arg){.d = &d, .path = "/v1/models/term/train",
                          .body = "{\"max_epochs\": 100000, \"patience\": 0, \"wait\": true}", .started = &started};
    /* the training request first, until its job runs; then the acts */
    ck_assert_int_eq(pthread_create(&th[N], NULL, inflight_main, &a[N]), 0);
    for (int running = 0, i = 0; !running && i < 5000; i++) {
        ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/term", NULL), 200);
        running = cJSON_IsString(cJSON_GetObjectItem(r.json, "job"));
        mbr_free(&r);
        if (!running) mbd_sleep_ms(2);
    }
    /* the acts one by one, each in flight on the daemon before the next:
     * in flight = this scrape + the waiting train + every unfinished act */
    for (int k = 0; k < N; k++) {
        ck_assert_int_eq(pthread_create(&th[k], NULL, inflight_main, &a[k]), 0);
        int seen = 0;
        for (int i = 0; i < 5000 && !seen; i++) {
            int unfinished = 0;
            for (int j = 0; j <= k; j++) unfinished += !atomic_load(&a[j].done);
            ck_assert_int_eq(mbr_call(&r, &d, "GET", "/metrics", NULL), 200);
            const char *p = strstr(r.body, "\nmbrld_http_in_flight ");
            seen = !unfinished || (p && atoi(p + strlen("\nmbrld_http_in_flight ")) >= 2 + unfinished);
            mbr_free(&r);
            if (!seen) mbd_sleep_ms(1);
        }
        ck_assert_msg(seen, "act %d never was in flight", k);
    }
    double sig_at = now_s();
    kill(d.pid, SIGTERM);
    int st = 0;
    waitpid(d.pid, &st, 0);
    d.pid = 0;
    for (int i = 0; i <= N; i++) pthread_join(th[i], NULL);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) mbd_dump_log(&d);
    ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) == 0, "mbrld did not exit 0 (status %d)", st);
    int after = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_msg(a[i].curl == CURLE_OK && ((a[i].status == 200 && a[i].truncated) ||
                                                (a[i].status == 503 && !strcmp(a[i].code, "deadline_exceeded"))),
                      "act %d: curl %d status %ld truncated %d code %s", i, (int)a[i].curl, a[i].status,
                      a[i].truncated, a[i].code);
        if (a[i].done_at > sig_at) after++;
    }
    ck_assert_msg(after >= 1, "no act was still in flight at SIGTERM (make the plan slower)");
    ck_assert_int_eq(a[N].status, 200);
    ck_assert_str_eq(a[N].state, "canceled");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d.dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("concurrency");
    TCase *tc = tcase_create("concurrency");
    tcase_set_timeout(tc, mb_test_sanitized() ? 400 : 120);
    tcase_add_test(tc, test_act_while_training);
    tcase_add_test(tc, test_32_clients);
    tcase_add_test(tc, test_session_warm_start);
    tcase_add_test(tc, test_sigterm_in_flight);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
