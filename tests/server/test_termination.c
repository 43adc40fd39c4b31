/* test_termination.c: ensemble.learn_termination through a real daemon
 * (server/spec.c, server/job.c, the snapshot's TERM section): the spec
 * says it, a training job fits the head and reports it (steps, terminated
 * rows, class accuracies), the planner answers with it, and the model
 * exports with its head and imports into a new model that plans the same.
 * The head's numerics: tests/core/test_term_head.c, test_planner_term.c. */
#include <math.h>

#include "check_util.h"
#include "harness.h"
#include "store/snapshot.h"

static mbd D;

static void test_setup(void) { ck_assert_msg(mbd_start(&D, NULL) == 0, "mbrld did not start"); }
static void test_teardown(void) { ck_assert_int_eq(mbd_stop(&D), 0); }

/* n rows of x' = 0.9 x + 0.1 a on obs 3; terminated when x'0 < -0.6. */
static long post_rows(const char *name, int n) {
    size_t cap = (size_t)n * 220 + 64, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"transitions\": [");
    for (int i = 0; i < n; i++) {
        double x = (i % 41) / 20.0 - 1.0, y = (i % 13) / 6.0 - 1.0, a = (i % 7) / 3.0 - 1.0;
        double nx = 0.9 * x + 0.1 * a;
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"obs\": [%g, %g, 0.5], \"action\": [%g], \"reward\": 1, "
                                "\"next_obs\": [%g, %g, 0.5], \"terminated\": %s}",
                                i ? ", " : "", x, y, a, nx, 0.9 * y, nx < -0.6 ? "true" : "false");
    }
    snprintf(b + len, cap - len, "]}");
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    mbr r;
    mbr_do(&r, &D, "POST", path, b, 0, NULL);
    free(b);
    long st = r.status;
    mbr_free(&r);
    return st;
}

START_TEST(test_head_fitted_reported_exported) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                                    "{\"name\": \"t\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], "
                                    "\"act_high\": [2], \"ensemble\": {\"members\": 3, \"hidden\": [16, 16], "
                                    "\"learn_reward\": false, \"learn_termination\": true}, "
                                    "\"reward\": {\"terms\": [{\"type\": \"constant\", \"weight\": 1}]}, "
                                    "\"planner\": {\"method\": \"cem\", \"horizon\": 5, \"population\": 32, "
                                    "\"elites\": 4, \"iterations\": 2, \"particles\": 3}}"), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/t", NULL), 200);
    const cJSON *en = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "spec"), "ensemble");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(en, "learn_termination")));
    mbr_free(&r);
    ck_assert_int_eq(post_rows("t", 400), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/t/train", "{\"max_epochs\": 5, \"wait\": true}"), 200);
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    const cJSON *t = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "result"), "termination");
    ck_assert_msg(cJSON_IsObject(t), "no termination in the result: %s", r.body);
    ck_assert_int_ge(cJSON_GetObjectItem(t, "steps")->valueint, 500);
    ck_assert_int_gt(cJSON_GetObjectItem(t, "terminated_rows")->valueint, 10);
    ck_assert(cJSON_GetObjectItem(t, "accuracy_terminated")->valuedouble > 0.8);
    ck_assert(cJSON_GetObjectItem(t, "accuracy_other")->valuedouble > 0.8);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/t/act", "{\"obs\": [0, 0, 0.5]}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    mbr_free(&r);
    /* the export carries the head (a TERM section) */
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/t/export", NULL), 200);
    mb_snapshot s;
    char err[300];
    ck_assert_msg(mb_snapshot_decode_mem(r.body, r.len, NULL, &s, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_int_eq(s.ens.spec.learn_termination, 1);
    ck_assert_ptr_nonnull(s.ens.term.params);
    /* ... and imports as a new model that predicts and plans the same */
    mbr imp;
    memset(&imp, 0, sizeof imp);
    {
        const char *hdr[] = {"Content-Type: application/octet-stream", NULL};
        char *raw = malloc(r.len);
        memcpy(raw, r.body, r.len);
        size_t n = r.len;
        mbr_free(&r);
        CURL *c = curl_easy_init();
        char url[256];
        snprintf(url, sizeof url, "%s/v1/models/t2/import", D.url);
        struct curl_slist *hl = curl_slist_append(NULL, hdr[0]);
        hl = curl_slist_append(hl, "Expect:");
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, raw);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)n);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &imp);
        curl_easy_perform(c);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &imp.status);
        curl_slist_free_all(hl);
        curl_easy_cleanup(c);
        free(raw);
    }
    ck_assert_msg(imp.status == 201, "import: %ld %s", imp.status, imp.body ? imp.body : "");
    mbr_free(&imp);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/t2/export", NULL), 200);
    mb_snapshot s2;
    ck_assert_msg(mb_snapshot_decode_mem(r.body, r.len, NULL, &s2, err, sizeof err) == MB_OK, "%s", err);
    ck_assert_ptr_nonnull(s2.ens.term.params);
    ck_assert_int_eq(memcmp(s2.ens.term.params, s.ens.term.params, s.ens.term.n_params * sizeof(float)), 0);
    mb_snapshot_free(&s2);
    mb_snapshot_free(&s);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/t2/act", "{\"obs\": [-0.5, 0.2, 0.5]}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/t2", NULL), 200);
    en = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "spec"), "ensemble");
    ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(en, "learn_termination")));
    mbr_free(&r);
    /* not a boolean: the field is named */
    mbr_call(&r, &D, "POST", "/v1/models",
             "{\"name\": \"bad\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
             "\"ensemble\": {\"learn_termination\": 1}}");
    ck_assert_int_eq(r.status, 400);
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "field")->valuestring,
                     "ensemble.learn_termination");
    mbr_free(&r);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("termination");
    TCase *tc = tcase_create("termination");
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, mb_test_sanitized() ? 300 : 60);
    tcase_add_test(tc, test_head_fitted_reported_exported);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
