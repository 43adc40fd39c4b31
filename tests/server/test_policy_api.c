/* test_policy_api.c: policies through a real daemon (issue 13).
 *   - the spec's "policy": defaults rendered, bad fields refused with the
 *     field named, a model without one answers 409 to policy/train and to
 *     "method": "policy";
 *   - before the model's first training policy/train is 409, before the
 *     first policy act with "method": "policy" is 409 failed_precondition;
 *   - policy/train with "wait": true answers 200 with the finished job
 *     (kind policy, losses, policy_version), 202 + Location without; every
 *     algorithm (mbpo, distill, bptt) publishes a new version; the status
 *     shows version, losses, entropy coefficient and model-data rows;
 *   - act with "method": "policy" answers source "policy", the same action
 *     for the same obs (deterministic), a sample with "explore": true;
 *   - cancel ends a long job as canceled, publishing nothing; a second job
 *     while one runs is 409;
 *   - the policy survives kill -9 (snapshotted when published) and exports;
 *   - metrics count policy acts and report versions;
 *   - auto_train starts policy jobs after every N new transitions.
 * Learning quality through the daemon is test_policy_pendulum's. */
#include <math.h>

#include "check_util.h"
#include "harness.h"

static mbd D;

static void setup(void) { ck_assert_int_eq(mbd_start(&D, NULL), 0); }
static void teardown(void) { ck_assert_int_eq(mbd_stop(&D), 0); }

#define POLICY_SMALL "\"policy\": {\"hidden\": [16, 16], \"rollouts\": 50, \"retain_steps\": 10, \"batch_size\": 32}"

static void train_model(const char *name) {
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", path, "{\"wait\": true, \"max_epochs\": 3}"), 200);
    mbr_free(&r);
}

static const cJSON *obj(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

START_TEST(test_spec_and_preconditions) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "nopol", NULL), 201);
    ck_assert_int_eq(mbd_create_small(&D, "pol", POLICY_SMALL), 201);
    /* defaults rendered in the canonical spec */
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol", NULL), 200);
    const cJSON *ps = obj(obj(r.json, "spec"), "policy");
    ck_assert_str_eq(obj(ps, "algorithm")->valuestring, "mbpo");
    ck_assert_int_eq(obj(ps, "updates_per_step")->valueint, 20);
    MB_ASSERT_CLOSE("real_ratio", obj(ps, "real_ratio")->valuedouble, 0.05, 1e-7);
    ck_assert(cJSON_IsNull(obj(obj(r.json, "policy"), "version")));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/nopol", NULL), 200);
    ck_assert(cJSON_IsNull(obj(r.json, "policy")));
    ck_assert_ptr_null(obj(obj(r.json, "spec"), "policy"));
    mbr_free(&r);
    /* bad policy specs name the field */
    mbr_call(&r, &D, "POST", "/v1/models", "{\"name\": \"b1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], \"policy\": {\"algorithm\": \"ppo\"}}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "policy.algorithm");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models", "{\"name\": \"b2\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], \"policy\": {\"real_ratio\": 2}}");
    ck_assert_int_eq(r.status, 422);
    ck_assert_str_eq(obj(obj(r.json, "error"), "field")->valuestring, "policy.real_ratio");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models", "{\"name\": \"b3\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], \"policy\": {\"bogus\": 1}}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "policy.bogus");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models", "{\"name\": \"b5\", \"obs_dim\": 3, \"actions\": {\"discrete\": 3}, \"policy\": {}}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "policy");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models", "{\"name\": \"b4\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], \"policy\": {\"rollout_length\": [3, 2]}}");
    ck_assert_int_eq(r.status, 400);
    mbr_free(&r);
    /* no policy in the spec */
    ck_assert_int_eq(mbd_post_rows(&D, "nopol", 50, 0, NULL, 0, NULL), 201);
    mbr_call(&r, &D, "POST", "/v1/models/nopol/policy/train", "{}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "policy");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/nopol/act", "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"policy\"}}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "planner.method");
    mbr_free(&r);
    /* untrained model, then no policy yet */
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 60, 0, NULL, 0, NULL), 201);
    mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"wait\": true}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/act", "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"policy\"}}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "planner.method");
    mbr_free(&r);
    /* the policy act path validates its own keys */
    mbr_call(&r, &D, "POST", "/v1/models/pol/act", "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"policy\", \"horizon\": 3}}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "planner.horizon");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/act", "{\"obs\": [0, 0], \"planner\": {\"method\": \"policy\"}}");
    ck_assert_int_eq(r.status, 400);
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/act", "{\"obs\": [0, 0, 0], \"explore\": true}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "explore");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"steps\": 0}");
    ck_assert_int_eq(r.status, 422);
    mbr_free(&r);
}
END_TEST

static void act_policy(const char *name, int explore, double *a, long *pv) {
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/act", name);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", path, "{\"obs\": [0.3, -0.2, 0.5], \"planner\": {\"method\": \"policy\"}%s}",
                              explore ? ", \"explore\": true" : ""), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "policy");
    ck_assert(cJSON_IsNull(obj(r.json, "predicted_return")));
    const cJSON *ac = obj(r.json, "action");
    ck_assert_int_eq(cJSON_GetArraySize(ac), 1);
    *a = cJSON_GetArrayItem(ac, 0)->valuedouble;
    ck_assert(*a >= -2 && *a <= 2);
    *pv = (long)mbr_num(&r, "policy_version");
    ck_assert(mbr_num(&r, "plan_ms") >= 0);
    mbr_free(&r);
}

START_TEST(test_train_act_algorithms_and_status) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "pol", POLICY_SMALL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 200, 0, NULL, 0, NULL), 201);
    train_model("pol");
    /* MBPO, waited */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"wait\": true, \"steps\": 10}"), 200);
    ck_assert_str_eq(mbr_str(&r, "kind"), "policy");
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    ck_assert_int_eq((int)mbr_num(&r, "step"), 10);
    ck_assert_int_eq((int)mbr_num(&r, "policy_version"), 1);
    const cJSON *l = obj(r.json, "losses");
    ck_assert(cJSON_IsNumber(obj(l, "critic")) && cJSON_IsNumber(obj(l, "alpha")));
    ck_assert_int_eq((int)obj(l, "model_rows")->valuedouble, 10 * 50);
    mbr_free(&r);
    double a1, a2, a3;
    long pv;
    act_policy("pol", 0, &a1, &pv);
    ck_assert_int_eq(pv, 1);
    act_policy("pol", 0, &a2, &pv);
    ck_assert(a1 == a2); /* deterministic */
    int differs = 0;
    for (int i = 0; i < 5; i++) {
        act_policy("pol", 1, &a3, &pv);
        differs |= a3 != a1;
    }
    ck_assert(differs);
    /* distillation and BPTT, started then polled */
    const char *bodies[2] = {"{\"algorithm\": \"distill\", \"steps\": 2, \"states\": 16, \"updates\": 5, "
                             "\"teacher\": {\"population\": 16, \"elites\": 2, \"iterations\": 1, \"horizon\": 3, \"particles\": 1}}",
                             "{\"algorithm\": \"bptt\", \"steps\": 3, \"horizon\": 4}"};
    const char *loss_key[2] = {"imitation", "grad_norm"};
    for (int k = 0; k < 2; k++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "%s", bodies[k]), 202);
        ck_assert_ptr_nonnull(strstr(r.headers, "Location: /v1/models/pol/jobs/"));
        char path[128];
        snprintf(path, sizeof path, "/v1/models/pol/jobs/%s", mbr_str(&r, "job"));
        mbr_free(&r);
        for (int i = 0; i < 3000; i++) {
            ck_assert_int_eq(mbr_call(&r, &D, "GET", path, NULL), 200);
            if (strcmp(mbr_str(&r, "state"), "running")) break;
            mbr_free(&r);
            mbd_sleep_ms(10);
        }
        ck_assert_str_eq(mbr_str(&r, "state"), "done");
        ck_assert(cJSON_IsNumber(obj(obj(r.json, "losses"), loss_key[k])));
        ck_assert_int_eq((int)mbr_num(&r, "policy_version"), 2 + k);
        mbr_free(&r);
    }
    act_policy("pol", 0, &a1, &pv);
    ck_assert_int_eq(pv, 3);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol", NULL), 200);
    const cJSON *p = obj(r.json, "policy");
    ck_assert_int_eq(obj(p, "version")->valueint, 3);
    ck_assert_str_eq(obj(p, "trained_by")->valuestring, "bptt");
    ck_assert(obj(p, "entropy_coefficient")->valuedouble > 0);
    ck_assert(cJSON_IsTrue(obj(p, "value_trained")));
    ck_assert(cJSON_IsNumber(obj(obj(p, "last_losses"), "model_return")));
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/metrics", NULL), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_policy_version{model=\"pol\"} 3"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_acts_total{source=\"policy\"}"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_policy_act_duration_seconds_count"));
    mbr_free(&r);
}
END_TEST

START_TEST(test_cancel_busy_and_budget) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "pol", POLICY_SMALL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 100, 0, NULL, 0, NULL), 201);
    train_model("pol");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"steps\": 100000000}"), 202);
    char path[128];
    snprintf(path, sizeof path, "/v1/models/pol/jobs/%s", mbr_str(&r, "job"));
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{}");
    MBR_EXPECT_ERROR(&r, 409, "busy", "");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/train", "{}");
    ck_assert_int_eq(r.status, 409);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "DELETE", path, NULL), 200);
    mbr_free(&r);
    for (int i = 0; i < 3000; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "GET", path, NULL), 200);
        if (strcmp(mbr_str(&r, "state"), "running")) break;
        mbr_free(&r);
        mbd_sleep_ms(10);
    }
    ck_assert_str_eq(mbr_str(&r, "state"), "canceled");
    ck_assert(cJSON_IsNull(obj(r.json, "policy_version")));
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/pol/act", "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"policy\"}}");
    ck_assert_int_eq(r.status, 409); /* nothing was published */
    mbr_free(&r);
    /* a time budget alone */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"wait\": true, \"time_budget\": 0.3}"), 200);
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    ck_assert(cJSON_IsNull(obj(r.json, "steps")));
    ck_assert(mbr_num(&r, "step") >= 1);
    ck_assert_int_eq((int)mbr_num(&r, "policy_version"), 1);
    mbr_free(&r);
}
END_TEST

START_TEST(test_kill9_and_export) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "pol", POLICY_SMALL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 100, 0, NULL, 0, NULL), 201);
    train_model("pol");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"wait\": true, \"steps\": 5}"), 200);
    mbr_free(&r);
    double a_before, a_after;
    long pv;
    act_policy("pol", 0, &a_before, &pv);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol/export", NULL), 200);
    ck_assert_ptr_nonnull(memmem(r.body, r.len, "AGNT", 4));
    mbr_free(&r);
    /* kill -9, restart on the same data directory */
    char data[200];
    snprintf(data, sizeof data, "%s/data", D.dir);
    char keep[200];
    snprintf(keep, sizeof keep, "/tmp/mbrld-test-pol-%d", (int)getpid());
    char cmd[1024];
    kill(D.pid, SIGKILL);
    int st;
    waitpid(D.pid, &st, 0);
    D.pid = 0;
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s' '%s' && rm -rf '%s'", keep, data, keep, D.dir);
    ck_assert_int_eq(system(cmd), 0);
    const char *extra[] = {"--data-dir", keep, NULL};
    ck_assert_int_eq(mbd_start(&D, extra), 0);
    act_policy("pol", 0, &a_after, &pv);
    ck_assert(a_before == a_after);
    ck_assert_int_eq(pv, 1);
    /* the optimisers came back too: a warm job continues the version count */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/pol/policy/train", "{\"wait\": true, \"steps\": 2}"), 200);
    ck_assert_int_eq((int)mbr_num(&r, "policy_version"), 2);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol", NULL), 200);
    ck_assert_int_eq(obj(obj(r.json, "policy"), "updates")->valueint, (5 + 2) * 20);
    mbr_free(&r);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", keep);
    (void)mbd_stop(&D);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_eq(mbd_start(&D, NULL), 0); /* for teardown */
}
END_TEST

/* auto_train in the policy spec: after the model's first training, every
 * `every` new transitions start a policy job (auto: true) when none runs. */
START_TEST(test_auto_train) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "pol", "\"policy\": {\"hidden\": [16, 16], \"rollouts\": 20, "
                                                 "\"retain_steps\": 5, \"batch_size\": 16, "
                                                 "\"auto_train\": {\"every\": 40, \"steps\": 3}}"), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 60, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol", NULL), 200);
    ck_assert(cJSON_IsNull(obj(r.json, "job"))); /* untrained model: no policy job */
    ck_assert_int_eq(obj(obj(obj(r.json, "spec"), "policy"), "auto_train")->child->valueint, 40);
    mbr_free(&r);
    train_model("pol");
    ck_assert_int_eq(mbd_post_rows(&D, "pol", 40, 60, NULL, 0, NULL), 201);
    int version = 0;
    for (int i = 0; i < 3000 && version == 0; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol", NULL), 200);
        const cJSON *v = obj(obj(r.json, "policy"), "version");
        if (cJSON_IsNumber(v)) version = v->valueint;
        mbr_free(&r);
        if (!version) mbd_sleep_ms(10);
    }
    ck_assert_int_eq(version, 1);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/pol/jobs/j2", NULL), 200);
    ck_assert_str_eq(mbr_str(&r, "kind"), "policy");
    ck_assert(cJSON_IsTrue(obj(r.json, "auto")));
    ck_assert_int_eq((int)mbr_num(&r, "step"), 3);
    mbr_free(&r);
}
END_TEST

int main(void) {
    Suite *s = suite_create("policy");
    TCase *tc = tcase_create("policy");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_spec_and_preconditions);
    tcase_add_test(tc, test_train_act_algorithms_and_status);
    tcase_add_test(tc, test_cancel_busy_and_budget);
    tcase_add_test(tc, test_kill9_and_export);
    tcase_add_test(tc, test_auto_train);
    suite_add_tcase(s, tc);
    curl_global_init(CURL_GLOBAL_ALL);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
