/* test_api.c: black-box tests of every endpoint's happy path and of every
 * bad-input class, against a real mbrld on an ephemeral loopback port.
 * Mirrors server/api_*.c, server/http.c and server/spec.c. */
#include <pthread.h>

#include "base/cpu.h"
#include "check_util.h"
#include "harness.h"

static mbd D; /* a fresh daemon per test (checked fixture, in the test's process) */

static void test_setup(void) { ck_assert_msg(mbd_start(&D, NULL) == 0, "mbrld did not start"); }

/* a clean exit: 0, so also no sanitizer report (ASan leaks, TSan races) */
static void test_teardown(void) { ck_assert_int_eq(mbd_stop(&D), 0); }

/* Trains `name` with a tiny job, waiting for it; returns the version. */
static double train_wait(const char *name) {
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", path, "{\"max_epochs\": 2, \"wait\": true}"), 200);
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    double v = mbr_num(&r, "version");
    mbr_free(&r);
    return v;
}

START_TEST(test_health_metrics_openapi) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/healthz", NULL), 200);
    ck_assert_str_eq(mbr_str(&r, "status"), "ok");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/readyz", NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "ready")));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/openapi.json", NULL), 200);
    ck_assert_str_eq(mbr_str(&r, "openapi"), "3.0.3");
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(r.json, "paths")));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/metrics", NULL), 200);
    ck_assert_ptr_nonnull(strstr(r.headers, "text/plain"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_http_requests_total{route=\"GET /healthz\",status=\"200\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_http_request_duration_seconds_bucket"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_plan_duration_seconds_count"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_training_jobs_total"));
    mbr_free(&r);
}
END_TEST

START_TEST(test_models_crud) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "crud", NULL), 201);
    MBR_EXPECT_ERROR((mbr_call(&r, &D, "POST", "/v1/models",
                               "{\"name\": \"crud\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2]}"),
                      &r), 409, "already_exists", "name");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models", NULL), 200);
    const cJSON *ms = cJSON_GetObjectItem(r.json, "models");
    int found = 0;
    for (const cJSON *m = ms ? ms->child : NULL; m; m = m->next)
        if (!strcmp(cJSON_GetObjectItem(m, "name")->valuestring, "crud")) found = 1;
    ck_assert_msg(found, "crud missing from the list: %s", r.body);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/crud", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 0);
    ck_assert_int_eq((int)mbr_num(&r, "version"), 0);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "trained")));
    const cJSON *pl = cJSON_GetObjectItem(r.json, "planner");
    ck_assert_str_eq(cJSON_GetObjectItem(pl, "method")->valuestring, "cem");
    ck_assert_int_eq(cJSON_GetObjectItem(pl, "horizon")->valueint, 5);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "elites")), 3);
    const cJSON *spec = cJSON_GetObjectItem(r.json, "spec");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "ensemble"), "members")->valueint, 3);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "DELETE", "/v1/models/crud", NULL), 200);
    ck_assert_str_eq(mbr_str(&r, "deleted"), "crud");
    mbr_free(&r);
    mbr_call(&r, &D, "GET", "/v1/models/crud", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/crud/act", "{\"obs\": [0, 0, 0]}");
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    mbr_call(&r, &D, "DELETE", "/v1/models/crud", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
}
END_TEST

START_TEST(test_transitions_idempotent) {
    mbr r, r2;
    ck_assert_int_eq(mbd_create_small(&D, "idem", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 5, 0, "robot-1", 1, &r), 201);
    ck_assert_int_eq((int)mbr_num(&r, "accepted"), 5);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 5);
    ck_assert_ptr_null(strstr(r.headers, "X-Idempotent-Replay"));
    /* a retry: same client and seq -> nothing added, same answer */
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 5, 0, "robot-1", 1, &r2), 201);
    ck_assert_str_eq(r.body, r2.body);
    ck_assert_ptr_nonnull(strstr(r2.headers, "X-Idempotent-Replay: true"));
    mbr_free(&r), mbr_free(&r2);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 3, 5, "robot-1", 2, &r), 201);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 8);
    mbr_free(&r);
    /* an older seq of the same client: nothing added */
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 3, 5, "robot-1", 1, &r), 201);
    ck_assert_int_eq((int)mbr_num(&r, "accepted"), 0);
    mbr_free(&r);
    /* out of order (concurrent senders of one client): seq 4 before 3, both
     * added once; a replay of 3 adds nothing */
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 1, 8, "robot-9", 4, &r), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 1, 9, "robot-9", 3, &r), 201);
    ck_assert_int_eq((int)mbr_num(&r, "accepted"), 1);
    ck_assert_ptr_null(strstr(r.headers, "X-Idempotent-Replay"));
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 1, 9, "robot-9", 3, &r), 201);
    ck_assert_int_eq((int)mbr_num(&r, "accepted"), 0);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 10);
    mbr_free(&r);
    /* too far behind to tell: refused, never silently dropped */
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 1, 10, "robot-9", 100, NULL), 201);
    mbr_call(&r, &D, "GET", "/v1/models/idem", NULL);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 11);
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 1, 11, "robot-9", 30, &r), 409);
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "seq");
    mbr_free(&r);
    /* another client with the same seq is independent; no client: always added */
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 2, 0, "robot-2", 1, NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 2, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "idem", 2, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/idem", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 17);
    ck_assert_int_eq((int)mbr_num(&r, "transitions_total"), 17);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/metrics", NULL), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "\nmbrld_buffer_size{model=\"idem\"} 17\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nmbrld_model_version{model=\"idem\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nmbrld_transitions_total 17\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "\nmbrld_idempotent_replays_total 3\n"));
    mbr_free(&r);
    /* seq without client and client without seq */
    mbr_call(&r, &D, "POST", "/v1/models/idem/transitions",
             "{\"transitions\": [{\"obs\": [0,0,0], \"action\": [0], \"reward\": 0, \"next_obs\": [0,0,0]}], \"seq\": 3}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "client");
    mbr_free(&r);
}
END_TEST

START_TEST(test_train_jobs) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "tr", NULL), 201);
    /* too little data */
    mbr_call(&r, &D, "POST", "/v1/models/tr/train", "{}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "");
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "tr", 300, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/tr/train", "{\"max_epochs\": 3, \"patience\": 0}"), 202);
    char job[32], loc[128];
    snprintf(job, sizeof job, "%s", mbr_str(&r, "job"));
    snprintf(loc, sizeof loc, "/v1/models/tr/jobs/%s", job);
    ck_assert_ptr_nonnull(strstr(r.headers, loc));
    mbr_free(&r);
    for (int i = 0; i < 3000; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "GET", loc, NULL), 200);
        if (strcmp(mbr_str(&r, "state"), "running") != 0) break;
        mbr_free(&r);
        mbd_sleep_ms(10);
    }
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    ck_assert_int_eq((int)mbr_num(&r, "epoch"), 3);
    const cJSON *ep = cJSON_GetObjectItem(r.json, "epochs");
    ck_assert_int_eq(cJSON_GetArraySize(ep), 3);
    const cJSON *e0 = cJSON_GetArrayItem(ep, 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e0, "train_loss")), 3);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(e0, "holdout_loss")), 3);
    ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
    MB_ASSERT_CLOSE("progress", mbr_num(&r, "progress"), 1.0, 0);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/tr", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
    const cJSON *lt = cJSON_GetObjectItem(r.json, "last_training");
    ck_assert_str_eq(cJSON_GetObjectItem(lt, "job")->valuestring, job);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(lt, "holdout_loss")), 3);
    mbr_free(&r);

    /* a long job: a second one is refused, cancel stops it, no new version */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/tr/train",
                              "{\"max_epochs\": 100000, \"patience\": 0}"), 202);
    snprintf(loc, sizeof loc, "/v1/models/tr/jobs/%s", mbr_str(&r, "job"));
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/tr/train", "{\"max_epochs\": 1}");
    MBR_EXPECT_ERROR(&r, 409, "busy", "");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "DELETE", loc, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "cancel_requested")));
    mbr_free(&r);
    for (int i = 0; i < 3000; i++) {
        mbr_call(&r, &D, "GET", loc, NULL);
        if (strcmp(mbr_str(&r, "state"), "running") != 0) break;
        mbr_free(&r);
        mbd_sleep_ms(10);
    }
    ck_assert_str_eq(mbr_str(&r, "state"), "canceled");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "version")));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/tr", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
    mbr_free(&r);
    /* "wait": true answers 200 with the finished job */
    MB_ASSERT_CLOSE("version after wait", train_wait("tr"), 2, 0);
    mbr_call(&r, &D, "GET", "/v1/models/tr/jobs/j999", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
}
END_TEST

START_TEST(test_act_random_then_planner) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "act", NULL), 201);
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/act/act", "{\"obs\": [0.1, 0.2, 0.3]}"), 200);
        ck_assert_str_eq(mbr_str(&r, "source"), "random");
        ck_assert_int_eq((int)mbr_num(&r, "version"), 0);
        const cJSON *a = cJSON_GetObjectItem(r.json, "action");
        ck_assert_int_eq(cJSON_GetArraySize(a), 1);
        double x = cJSON_GetArrayItem(a, 0)->valuedouble;
        ck_assert_msg(x >= -2 && x <= 2, "random action %g outside [-2, 2]", x);
        mbr_free(&r);
    }
    ck_assert_int_eq(mbd_post_rows(&D, "act", 200, 0, NULL, 0, NULL), 201);
    train_wait("act");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/act/act", "{\"obs\": [0.1, 0.2, 0.3], \"session\": \"r1\"}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
    double x = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "action"), 0)->valuedouble;
    ck_assert_msg(x >= -2 && x <= 2, "planned action %g outside [-2, 2]", x);
    ck_assert(isfinite(mbr_num(&r, "predicted_return")));
    ck_assert(mbr_num(&r, "return_std") >= 0);
    ck_assert(mbr_num(&r, "plan_ms") >= 0);
    ck_assert_str_eq(mbr_str(&r, "precision"), "fp32");
    mbr_free(&r);
    /* bf16 planning: where this CPU (the daemon's, same environment) has
     * AVX512_BF16, else fp32, and the answer says which ran */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/act/act",
                              "{\"obs\": [0.1, 0.2, 0.3], \"planner\": {\"precision\": \"bf16\"}}"), 200);
    ck_assert_str_eq(mbr_str(&r, "precision"), mb_cpu_has_bf16() ? "bf16" : "fp32");
    x = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "action"), 0)->valuedouble;
    ck_assert_msg(x >= -2 && x <= 2, "bf16 planned action %g outside [-2, 2]", x);
    mbr_free(&r);
    /* per-call overrides (smaller plan), other methods */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/act/act",
                              "{\"obs\": [0, 0, 0], \"planner\": {\"horizon\": 3, \"population\": 16, \"elites\": 2}}"), 200);
    mbr_free(&r);
    const char *methods[] = {"random", "mppi", "icem"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/act/act",
                                  "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"%s\", \"horizon\": 4, "
                                  "\"population\": 20, \"particles\": 2}}", methods[i]), 200);
        ck_assert_str_eq(mbr_str(&r, "source"), "planner");
        mbr_free(&r);
    }
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/act", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "sessions"), 1);
    mbr_free(&r);
}
END_TEST

START_TEST(test_act_goal) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "goal", "\"reward\": {\"terms\": [{\"type\": \"quadratic\", "
                                                 "\"indices\": [0, 1], \"target\": [0, 0]}, "
                                                 "{\"type\": \"action_l2\", \"weight\": 0.01}]}"), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "goal", 200, 0, NULL, 0, NULL), 201);
    train_wait("goal");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/goal/act",
                              "{\"obs\": [0, 0, 0], \"goal\": [{\"term\": 0, \"target\": [0.5, -0.5]}]}"), 200);
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/goal/act", "{\"obs\": [0, 0, 0], \"goal\": [{\"term\": 5, \"target\": [1, 1]}]}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "goal[0].term");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/goal/act", "{\"obs\": [0, 0, 0], \"goal\": [{\"term\": 0, \"target\": [1]}]}");
    ck_assert_msg(r.status == 400 || r.status == 422, "%s", r.body);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "field")->valuestring, "goal[0].target");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/goal/act", "{\"obs\": [0, 0, 0], \"goal\": [{\"term\": 1, \"target\": [1]}]}");
    ck_assert_msg(r.status == 400 || r.status == 422, "action_l2 has no target: %s", r.body);
    mbr_free(&r);
}
END_TEST

START_TEST(test_predict) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "pred", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "pred", 200, 0, NULL, 0, NULL), 201);
    train_wait("pred");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pred/predict",
                              "{\"obs\": [0.5, -0.5, 0.5], \"actions\": [[0.1], [0.2], [-0.3], [0]]}"), 200);
    const cJSON *mean = cJSON_GetObjectItem(r.json, "mean"), *std = cJSON_GetObjectItem(r.json, "std");
    ck_assert_int_eq(cJSON_GetArraySize(mean), 4);
    ck_assert_int_eq(cJSON_GetArraySize(std), 4);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(mean, 3)), 3);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "reward_mean")), 4);
    for (int t = 0; t < 4; t++)
        for (int k = 0; k < 3; k++) {
            ck_assert(isfinite(cJSON_GetArrayItem(cJSON_GetArrayItem(mean, t), k)->valuedouble));
            ck_assert(cJSON_GetArrayItem(cJSON_GetArrayItem(std, t), k)->valuedouble >= 0);
        }
    ck_assert_int_eq((int)mbr_num(&r, "version"), 1);
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pred/predict", "{\"obs\": [0, 0, 0], \"actions\": [[0.1], [0.2, 0.3]]}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "actions[1]");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pred/predict", "{\"obs\": [0, 0, 0], \"actions\": []}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "actions");
    mbr_free(&r);
}
END_TEST

/* Every bad-input class: status, code and field; and nothing changes. */
START_TEST(test_bad_input) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "bad", NULL), 201);
    const char *M = "\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1]";
    struct {
        const char *method, *path, *body;
        long status;
        const char *code, *field;
    } cases[] = {
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 2, 3]", 400, "invalid_json", ""},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 2, 3]} x", 400, "invalid_json", ""},
        {"POST", "/v1/models/bad/act", "[1, 2, 3]", 400, "invalid_argument", ""},
        {"POST", "/v1/models/bad/act", "{\"obs\": \"x\"}", 400, "invalid_argument", "obs"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, \"2\", 3]}", 400, "invalid_argument", "obs[1]"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 2, 3], \"bogus\": 1}", 400, "invalid_argument", "bogus"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 2, 3], \"obs\": [1, 2, 3]}", 400, "invalid_argument", "obs"},
        {"POST", "/v1/models/bad/act", "{}", 400, "invalid_argument", "obs"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 2]}", 400, "invalid_argument", "obs"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, 1e999, 3]}", 400, "invalid_argument", "obs[1]"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, NaN, 3]}", 400, "invalid_json", ""},
        {"POST", "/v1/models/bad/act", "{\"obs\": [1, Infinity, 3]}", 400, "invalid_json", ""},
        {"POST", "/v1/models/bad/act", "{\"obs\": [[[[[[[[[[1]]]]]]]]]]}", 400, "invalid_json", ""},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"session\": 5}", 400, "invalid_argument", "session"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"horizon\": 0}}", 422, "out_of_range", "planner.horizon"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"elites\": 50, \"population\": 10}}", 400, "invalid_argument", "planner.elites"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"horizon\": 2.5}}", 400, "invalid_argument", "planner.horizon"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"magic\"}}", 400, "invalid_argument", "planner.method"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"precision\": \"fp16\"}}", 400, "invalid_argument", "planner.precision"},
        {"POST", "/v1/models/bad/act", "{\"obs\": [0, 0, 0], \"planner\": {\"population\": 100000, \"particles\": 1000}}", 422, "out_of_range", "planner.population"},
        {"POST", "/v1/models/nope/act", "{\"obs\": [0, 0, 0]}", 404, "not_found", ""},
        {"POST", "/v1/models/bad/transitions", "{\"transitions\": [{\"obs\": [0, 0, 0], \"action\": [0], \"reward\": 0}]}", 400, "invalid_argument", "transitions[0].next_obs"},
        {"POST", "/v1/models/bad/transitions", "{\"transitions\": [{\"obs\": [0, 0, 0], \"action\": [0, 1], \"reward\": 0, \"next_obs\": [0, 0, 0]}]}", 400, "invalid_argument", "transitions[0].action"},
        {"POST", "/v1/models/bad/transitions", "{\"transitions\": [{\"obs\": [0, 0, 0], \"action\": [0], \"reward\": \"high\", \"next_obs\": [0, 0, 0]}]}", 400, "invalid_argument", "transitions[0].reward"},
        {"POST", "/v1/models/bad/transitions", "{\"transitions\": [{\"obs\": [0, 0, 0], \"action\": [0], \"reward\": 0, \"next_obs\": [0, 0, 0], \"terminated\": 1}]}", 400, "invalid_argument", "transitions[0].terminated"},
        {"POST", "/v1/models/bad/transitions", "{\"transitions\": []}", 400, "invalid_argument", "transitions"},
        {"GET", "/v1/models/bad", "{\"x\": 1}", 400, "invalid_argument", ""},
        {"DELETE", "/v1/models/bad", "{}", 400, "invalid_argument", ""},
        {"POST", "/v1/models/bad/train", "{\"max_epochs\": 0}", 422, "out_of_range", "max_epochs"},
        {"POST", "/v1/models/bad/train", "{\"wait\": \"yes\"}", 400, "invalid_argument", "wait"},
        {"POST", "/v1/models", "{\"name\": \"a b\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1]}", 400, "invalid_argument", "name"},
        {"POST", "/v1/models", "{\"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1]}", 400, "invalid_argument", "name"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 100000, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1]}", 422, "out_of_range", "obs_dim"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [1], \"act_high\": [-1]}", 400, "invalid_argument", "act_high[0]"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 2, \"act_low\": [-1], \"act_high\": [1, 1]}", 400, "invalid_argument", "act_low"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"extra\": true}", 400, "invalid_argument", "extra"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"ensemble\": {\"members\": 16, \"hidden\": [2048, 2048, 2048, 2048, 2048, 2048, 2048, 2048]}}", 422, "out_of_range", "ensemble"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"ensemble\": {\"members\": 17}}", 422, "out_of_range", "ensemble.members"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"ensemble\": {\"activation\": \"gelu\"}}", 400, "invalid_argument", "ensemble.activation"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 64, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"buffer\": {\"capacity\": 10000000}}", 422, "out_of_range", "buffer.capacity"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"planner\": {\"elites\": 600, \"population\": 500}}", 400, "invalid_argument", "planner.elites"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"planner\": {\"horizon\": 0}}", 422, "out_of_range", "planner.horizon"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"reward\": {\"terms\": [{\"type\": \"linear\", \"index\": 3}]}}", 422, "out_of_range", "reward.terms[0].index"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"reward\": {\"terms\": [{\"type\": \"cubic\"}]}}", 400, "invalid_argument", "reward.terms[0].type"},
        {"POST", "/v1/models", "{\"name\": \"x1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], \"termination\": {\"bounds\": [{\"index\": 1}]}}", 400, "invalid_argument", "termination.bounds[0]"},
        {"PUT", "/v1/models", "{}", 405, "method_not_allowed", ""},
        {"GET", "/v2/everything", NULL, 404, "not_found", ""},
    };
    (void)M;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        mbr_do(&r, &D, cases[i].method, cases[i].path, cases[i].body, 0, NULL);
        ck_assert_msg(r.status == cases[i].status, "case %zu (%s %s %s): status %ld, want %ld: %s", i,
                      cases[i].method, cases[i].path, cases[i].body ? cases[i].body : "", r.status,
                      cases[i].status, r.body ? r.body : "");
        mbr_expect_error(&r, cases[i].status, cases[i].code, cases[i].field, (int)(1000 + i));
        mbr_free(&r);
    }
    /* nothing changed: the model has no rows, no jobs; x1 was never created */
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/bad", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")), 0);
    mbr_free(&r);
    mbr_call(&r, &D, "GET", "/v1/models/x1", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    /* 405 carries Allow */
    mbr_call(&r, &D, "PATCH", "/v1/models/bad", "{}");
    MBR_EXPECT_ERROR(&r, 405, "method_not_allowed", "");
    ck_assert_ptr_nonnull(strstr(r.headers, "Allow: GET, DELETE"));
    mbr_free(&r);
}
END_TEST

/* Body caps: Content-Length above the cap -> 413 before reading; a chunked
 * body that grows past it -> 413; a body split into many small chunks is
 * reassembled. */
START_TEST(test_body_limits_and_chunks) {
    mbd d;
    const char *args[] = {"--max-body", "4096", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    ck_assert_int_eq(mbd_create_small(&d, "lim", NULL), 201);
    char *big = malloc(8192);
    size_t n = (size_t)snprintf(big, 8192, "{\"obs\": [0, 0, 0], \"session\": \"");
    while (n < 6000) big[n++] = 'a';
    snprintf(big + n, 8192 - n, "\"}");
    mbr r;
    mbr_do(&r, &d, "POST", "/v1/models/lim/act", big, 0, NULL);
    MBR_EXPECT_ERROR(&r, 413, "payload_too_large", "");
    mbr_free(&r);
    mbr_do(&r, &d, "POST", "/v1/models/lim/act", big, 1000, NULL);
    MBR_EXPECT_ERROR(&r, 413, "payload_too_large", "");
    mbr_free(&r);
    free(big);
    const char *rows = "{\"transitions\": [{\"obs\": [1, 2, 3], \"action\": [0.5], \"reward\": -1, "
                       "\"next_obs\": [1.5, 2.5, 3.5], \"terminated\": true}, {\"obs\": [4, 5, 6], "
                       "\"action\": [-0.5], \"reward\": 2, \"next_obs\": [4.5, 5.5, 6.5]}], "
                       "\"client\": \"chunky\", \"seq\": 1}";
    ck_assert_int_eq(mbr_do(&r, &d, "POST", "/v1/models/lim/transitions", rows, 7, NULL), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_int_eq((int)mbr_num(&r, "accepted"), 2);
    mbr_free(&r);
    ck_assert_int_eq(mbr_do(&r, &d, "POST", "/v1/models/lim/transitions", rows, 1, NULL), 0);
    ck_assert_int_eq(r.status, 201);
    ck_assert_ptr_nonnull(strstr(r.headers, "X-Idempotent-Replay: true"));
    mbr_free(&r);
    /* a model spec under its own route cap but over --max-body is refused too */
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/lim", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 2);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Peak resident memory of the daemon (VmHWM), bytes. */
static long long daemon_hwm(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    long long kb = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6)) kb = atoll(line + 6);
    fclose(f);
    return kb * 1024;
}

typedef struct {
    const char *body, *path;
    long status;
    CURLcode curl;
} big_act;

static void *big_act_main(void *p) {
    big_act *a = p;
    mbr r;
    mbr_do(&r, &D, "POST", a->path, a->body, 0, NULL);
    a->status = r.status;
    a->curl = r.curl;
    mbr_free(&r);
    return NULL;
}

/* act and predict have small body caps (256 KiB): four concurrent 6 MiB
 * bodies of zeros (under --max-body) to each are refused (413) before
 * anything is read or parsed, and the daemon's peak memory grows by far less
 * than the bodies would parse to (3 M cJSON nodes, 200 MB each). */
START_TEST(test_large_act_bodies_cost_nothing) {
    ck_assert_int_eq(mbd_create_small(&D, "big", NULL), 201);
    size_t cap = 6u << 20;
    char *body = malloc(cap + 64);
    size_t n = (size_t)snprintf(body, 64, "{\"obs\": [0");
    while (n < cap) {
        body[n++] = ',';
        body[n++] = '0';
    }
    memcpy(body + n, "]}", 3);
    long long hwm0 = daemon_hwm(D.pid);
    big_act a[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        a[i] = (big_act){body, i < 4 ? "/v1/models/big/act" : "/v1/models/big/predict", 0, CURLE_OK};
        ck_assert_int_eq(pthread_create(&th[i], NULL, big_act_main, &a[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        /* refused from the headers: the answer is 413, unless the daemon
         * closed the connection while curl was still sending the body */
        ck_assert_msg(a[i].status == 413 || (a[i].status == 0 && a[i].curl != CURLE_OK),
                      "body %d: status %ld", i, a[i].status);
    }
    long long grew = daemon_hwm(D.pid) - hwm0;
    ck_assert_msg(grew < 160LL << 20, "peak memory grew by %lld MB for eight refused bodies", grew >> 20);
    body[300 << 10] = 0; /* just over the cap, sent whole: exactly a 413 */
    memcpy(body + (300 << 10) - 2, "]}", 2);
    mbr r;
    for (int i = 0; i < 2; i++) {
        mbr_do(&r, &D, "POST", i ? "/v1/models/big/predict" : "/v1/models/big/act", body, 0, NULL);
        MBR_EXPECT_ERROR(&r, 413, "payload_too_large", "");
        mbr_free(&r);
    }
    free(body);
}
END_TEST

START_TEST(test_auth_tokens) {
    char path[] = "/tmp/mbrld-tokens-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char text[] = "# tokens\nsecret-one\n  secret-two  \n";
    ck_assert_int_eq((int)write(fd, text, sizeof text - 1), (int)sizeof text - 1);
    close(fd);
    mbd d;
    const char *args[] = {"--tokens", path, NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    mbr_do(&r, &d, "GET", "/v1/models", NULL, 0, NULL);
    MBR_EXPECT_ERROR(&r, 401, "unauthenticated", "");
    ck_assert_ptr_nonnull(strstr(r.headers, "WWW-Authenticate: Bearer"));
    mbr_free(&r);
    /* an unknown token is unauthenticated too (401, RFC 6750), not 403:
     * 403 is for a known token without the route's scope (test_auth) */
    const char *wrong[] = {"Authorization: Bearer nope", NULL};
    mbr_do(&r, &d, "GET", "/v1/models", NULL, 0, wrong);
    MBR_EXPECT_ERROR(&r, 401, "unauthenticated", "");
    ck_assert_ptr_nonnull(strstr(r.headers, "WWW-Authenticate: Bearer error=\"invalid_token\""));
    mbr_free(&r);
    const char *right[] = {"Authorization: Bearer secret-two", NULL};
    mbr_do(&r, &d, "GET", "/v1/models", NULL, 0, right);
    ck_assert_int_eq(r.status, 200);
    mbr_free(&r);
    mbr_do(&r, &d, "GET", "/healthz", NULL, 0, NULL); /* probes need no token */
    ck_assert_int_eq(r.status, 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
    unlink(path);
}
END_TEST

START_TEST(test_limits) {
    mbd d;
    const char *args[] = {"--max-models", "2", "--max-sessions", "2", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    ck_assert_int_eq(mbd_create_small(&d, "l1", NULL), 201);
    ck_assert_int_eq(mbd_create_small(&d, "l2", NULL), 201);
    mbr r;
    mbr_call(&r, &d, "POST", "/v1/models", "{\"name\": \"l3\", \"obs_dim\": 1, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1]}");
    MBR_EXPECT_ERROR(&r, 429, "resource_exhausted", "");
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&d, "l1", 100, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/l1/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/l1/act", "{\"obs\": [0, 0, 0], \"session\": \"s%d\"}", i), 200);
        mbr_free(&r);
    }
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/l1", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "sessions"), 2); /* LRU-bounded */
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST


/* auto_train: every N new transitions a job starts by itself (MBRL 1.5) */
START_TEST(test_auto_train) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "auto", "\"auto_train\": {\"every\": 50, \"max_epochs\": 2}"), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "auto", 30, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/auto", NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "jobs")), 0); /* not yet */
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "auto", 30, 30, NULL, 0, NULL), 201);
    int version = 0;
    for (int i = 0; i < 3000 && version < 1; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/auto", NULL), 200);
        version = (int)mbr_num(&r, "version");
        if (version < 1) mbr_free(&r), mbd_sleep_ms(10);
    }
    ck_assert_int_eq(version, 1);
    const cJSON *jobs = cJSON_GetObjectItem(r.json, "jobs");
    ck_assert_int_eq(cJSON_GetArraySize(jobs), 1);
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/models/auto/jobs/%s", cJSON_GetArrayItem(jobs, 0)->valuestring);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", loc, NULL), 200);
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "auto")));
    ck_assert_int_eq((int)mbr_num(&r, "max_epochs"), 2);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/auto/act", "{\"obs\": [0, 0, 0]}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    mbr_free(&r);
}
END_TEST

/* Deleting a model cancels its job; the model and its jobs are gone */
START_TEST(test_delete_while_training) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "gone", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "gone", 300, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/gone/train", "{\"max_epochs\": 100000, \"patience\": 0}"), 202);
    char loc[96];
    snprintf(loc, sizeof loc, "/v1/models/gone/jobs/%s", mbr_str(&r, "job"));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "DELETE", "/v1/models/gone", NULL), 200);
    mbr_free(&r);
    mbr_call(&r, &D, "GET", loc, NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/gone/transitions",
             "{\"transitions\": [{\"obs\": [0,0,0], \"action\": [0], \"reward\": 0, \"next_obs\": [0,0,0]}]}");
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    /* the name is free again */
    ck_assert_int_eq(mbd_create_small(&D, "gone", NULL), 201);
}
END_TEST

/* Sessions expire after --session-timeout idle seconds */
START_TEST(test_session_expiry) {
    mbd d;
    const char *args[] = {"--session-timeout", "1", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    ck_assert_int_eq(mbd_create_small(&d, "exp", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "exp", 100, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/exp/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/exp/act", "{\"obs\": [0, 0, 0], \"session\": \"a\"}"), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/exp", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "sessions"), 1);
    mbr_free(&r);
    mbd_sleep_ms(2200);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/exp", NULL), 200);
    ck_assert_int_eq((int)mbr_num(&r, "sessions"), 0);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Start-up refuses what it cannot honour, with a message and exit status */
START_TEST(test_startup_errors) {
    const char *bin = getenv("MBRLD_BIN") ? getenv("MBRLD_BIN") : "build/mbrld";
    struct {
        const char *args, *needle;
    } cases[] = {
        {"--threads 0", "outside"},
        {"--listen nonsense", "host:port"},
        {"--tls-cert /nonexistent.pem --tls-key /nonexistent.key", "nonexistent"},
        {"--tokens /nonexistent-tokens", "nonexistent"},
        {"--bogus 1", "unknown option"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "%s --listen 127.0.0.1:0 --data-dir '' %s 2>&1", bin, cases[i].args);
        FILE *p = popen(cmd, "r");
        ck_assert_ptr_nonnull(p);
        char out[2048] = "";
        size_t n = fread(out, 1, sizeof out - 1, p);
        out[n] = 0;
        int st = pclose(p);
        ck_assert_msg(WIFEXITED(st) && WEXITSTATUS(st) != 0, "case %zu: exit status %d", i, st);
        ck_assert_msg(strstr(out, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i, out, cases[i].needle);
    }
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s --help", bin);
    FILE *p = popen(cmd, "r");
    char out[8192] = "";
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    ck_assert_int_eq(pclose(p), 0);
    ck_assert_ptr_nonnull(strstr(out, "--session-timeout"));
}
END_TEST

/* --tls-cert/--tls-key: HTTPS with a self-signed certificate (made here with
 * the openssl command), verified against that certificate. */
START_TEST(test_tls) {
    char dir[] = "/tmp/mbrld-tls-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cert[128], key[128], cmd[768];
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1", key, cert);
    int have_openssl = system(cmd) == 0;
    if (!have_openssl) { /* still check that a bad key file stops the start */
        FILE *f = fopen(cert, "w");
        fputs("not a certificate\n", f);
        fclose(f);
        f = fopen(key, "w");
        fputs("not a key\n", f);
        fclose(f);
    }
    mbd d;
    const char *args[] = {"--tls-cert", cert, "--tls-key", key, NULL};
    int started = mbd_start(&d, args) == 0;
    ck_assert_int_eq(started, have_openssl);
    if (started) {
        CURL *c = curl_easy_init();
        char url[128];
        snprintf(url, sizeof url, "https://127.0.0.1:%d/healthz", d.port);
        mbr r;
        memset(&r, 0, sizeof r);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_CAINFO, cert);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
        CURLcode cc = curl_easy_perform(c);
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        curl_easy_cleanup(c);
        ck_assert_msg(cc == CURLE_OK, "https: %s", curl_easy_strerror(cc));
        ck_assert_int_eq(st, 200);
        ck_assert_ptr_nonnull(strstr(r.body, "\"ok\""));
        mbr_free(&r);
        /* plain HTTP on the TLS port gets no answer */
        mbr_do(&r, &d, "GET", "/healthz", NULL, 0, NULL);
        ck_assert_int_ne(r.status, 200);
        mbr_free(&r);
        ck_assert_int_eq(mbd_stop(&d), 0);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, mb_test_sanitized() ? 300 : 60);
    tcase_add_test(tc, test_health_metrics_openapi);
    tcase_add_test(tc, test_models_crud);
    tcase_add_test(tc, test_transitions_idempotent);
    tcase_add_test(tc, test_train_jobs);
    tcase_add_test(tc, test_act_random_then_planner);
    tcase_add_test(tc, test_act_goal);
    tcase_add_test(tc, test_predict);
    tcase_add_test(tc, test_bad_input);
    tcase_add_test(tc, test_body_limits_and_chunks);
    tcase_add_test(tc, test_large_act_bodies_cost_nothing);
    tcase_add_test(tc, test_auth_tokens);
    tcase_add_test(tc, test_limits);
    tcase_add_test(tc, test_auto_train);
    tcase_add_test(tc, test_delete_while_training);
    tcase_add_test(tc, test_session_expiry);
    tcase_add_test(tc, test_startup_errors);
    tcase_add_test(tc, test_tls);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
