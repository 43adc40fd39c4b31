/* test_train_defaults.c: the defaults that learn, through a real daemon
 * (core/learn/trainer.h mb_train_plan; server/spec.c, job.c): a model's
 * train settings show the adaptive minibatch (0) and the floor under early
 * stopping; a plain train request gets the minibatch the rule gives for its
 * rows and runs at least min_epochs; explicit fields apply as sent; bad
 * values are refused with the field named; auto_train adapts the same way;
 * the planner preset "realtime" (core/plan/preset.h), with fields on top.
 * Whether the defaults learn is tests/clients/test_learning.sh. */
#include <math.h>

#include "check_util.h"
#include "harness.h"

static mbd D;

static void test_setup(void) { ck_assert_msg(mbd_start(&D, NULL) == 0, "mbrld did not start"); }
static void test_teardown(void) { ck_assert_int_eq(mbd_stop(&D), 0); }

static const cJSON *obj(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    ck_assert_msg(v != NULL, "no '%s'", k);
    return v;
}
static double num(const cJSON *o, const char *k) {
    const cJSON *v = obj(o, k);
    ck_assert_msg(cJSON_IsNumber(v), "'%s' is not a number", k);
    return v->valuedouble;
}

/* The rule of trainer.h for n rows and max_epochs E (min_steps 1000). */
static int rule_batch(double n, double E) {
    double b = fmin(n / 32.0, n * E / 1000.0);
    b = b < 8 ? 8 : b > 256 ? 256 : floor(b);
    return (int)(b > n ? n : b);
}

START_TEST(test_plain_request_adapts) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "m", NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/m", NULL), 200);
    const cJSON *tr = obj(obj(r.json, "spec"), "train");
    ck_assert_int_eq((int)num(tr, "batch_size"), 0);
    ck_assert_int_eq((int)num(tr, "min_steps"), 1000);
    ck_assert_int_eq((int)num(tr, "min_epochs"), 5);
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "m", 400, 0, NULL, 0, NULL), 201);
    /* what a plain client sends between episodes */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/m/train",
                              "{\"max_epochs\": 50, \"patience\": 1, \"wait\": true}"), 200);
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    const cJSON *res = obj(r.json, "result");
    double n = num(res, "n_train");
    int B = rule_batch(n, 50), spe = (int)ceil(n / B);
    ck_assert_msg((int)num(res, "batch_size") == B, "batch %g, rule %d (%g rows)", num(res, "batch_size"), B, n);
    int min_epochs = (int)ceil(1000.0 / spe);
    if (min_epochs > 50) min_epochs = 50;
    ck_assert_int_eq((int)num(res, "min_epochs"), min_epochs);
    ck_assert_int_ge((int)num(res, "epochs"), min_epochs);
    ck_assert_int_eq((long)num(res, "steps"), (long)num(res, "epochs") * spe);
    ck_assert_int_ge((long)num(res, "steps"), 1000);
    mbr_free(&r);
    /* explicit fields apply as sent: batch 32, no floor, 3 epochs */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/m/train",
                              "{\"max_epochs\": 3, \"batch_size\": 32, \"min_steps\": 0, "
                              "\"min_epochs\": 0, \"wait\": true}"), 200);
    res = obj(r.json, "result");
    ck_assert_int_eq((int)num(res, "batch_size"), 32);
    ck_assert_int_eq((int)num(res, "epochs"), 3);
    ck_assert_int_eq((long)num(res, "steps"), 3 * (long)ceil(num(res, "n_train") / 32.0));
    mbr_free(&r);
    /* bad values name their field */
    mbr_call(&r, &D, "POST", "/v1/models/m/train", "{\"min_steps\": -1}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "min_steps");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/m/train", "{\"batch_size\": -1}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "batch_size");
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models/m/train", "{\"min_epochs\": \"many\"}");
    ck_assert_int_eq(r.status, 400);
    mbr_free(&r);
    /* a model created with explicit settings keeps them */
    ck_assert_int_eq(mbd_create_small(&D, "fixed", "\"train\": {\"batch_size\": 64, \"min_steps\": 0}"), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/fixed", NULL), 200);
    tr = obj(obj(r.json, "spec"), "train");
    ck_assert_int_eq((int)num(tr, "batch_size"), 64);
    ck_assert_int_eq((int)num(tr, "min_steps"), 0);
    mbr_free(&r);
}
END_TEST

/* auto_train starts from the model's train settings: the same rule. */
START_TEST(test_auto_train_adapts) {
    mbr r = {0};
    ck_assert_int_eq(mbd_create_small(&D, "a", "\"auto_train\": {\"every\": 300, \"max_epochs\": 20}"), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "a", 300, 0, NULL, 0, NULL), 201);
    const cJSON *res = NULL;
    for (int i = 0; i < 600; i++) {
        mbr_free(&r);
        ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/a/jobs/j1", NULL), 200);
        if (!strcmp(mbr_str(&r, "state"), "done")) {
            res = obj(r.json, "result");
            break;
        }
        mbd_sleep_ms(50);
    }
    ck_assert_msg(res != NULL, "auto-train job did not finish: %s", r.body);
    ck_assert(cJSON_IsTrue(obj(r.json, "auto")));
    double n = num(res, "n_train");
    ck_assert_int_eq((int)num(res, "batch_size"), rule_batch(n, 20));
    ck_assert_int_eq((int)num(res, "epochs"), 20); /* the floor reaches max_epochs: 20 x ~34 < 1000 */
    mbr_free(&r);
}
END_TEST

START_TEST(test_realtime_preset) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"rt\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], "
                              "\"act_high\": [2], \"ensemble\": {\"members\": 5, \"hidden\": [16, 16]}, "
                              "\"planner\": {\"preset\": \"realtime\"}}"), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/rt", NULL), 200);
    const cJSON *p = obj(r.json, "planner");
    ck_assert_str_eq(obj(p, "method")->valuestring, "icem");
    ck_assert_int_eq((int)num(p, "horizon"), 15);
    ck_assert_int_eq((int)num(p, "population"), 100);
    ck_assert_int_eq((int)num(p, "elites"), 10);
    ck_assert_int_eq((int)num(p, "iterations"), 3);
    ck_assert_int_eq((int)num(p, "particles"), 5);
    MB_ASSERT_CLOSE("noise_beta", num(p, "noise_beta"), 2.0, 0.0);
    MB_ASSERT_CLOSE("keep_elites", num(p, "keep_elites"), 0.3, 1e-6);
    MB_ASSERT_CLOSE("pop_decay", num(p, "pop_decay"), 1.25, 0.0);
    mbr_free(&r);
    /* fields sent with it apply on top */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"rt2\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], "
                              "\"act_high\": [2], \"planner\": {\"preset\": \"realtime\", \"horizon\": 8, "
                              "\"noise_beta\": 0.25}}"), 201);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/rt2", NULL), 200);
    p = obj(r.json, "planner");
    ck_assert_str_eq(obj(p, "method")->valuestring, "icem");
    ck_assert_int_eq((int)num(p, "horizon"), 8);
    ck_assert_int_eq((int)num(p, "population"), 100);
    MB_ASSERT_CLOSE("noise_beta", num(p, "noise_beta"), 0.25, 0.0);
    mbr_free(&r);
    mbr_call(&r, &D, "POST", "/v1/models",
             "{\"name\": \"rt3\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], "
             "\"act_high\": [2], \"planner\": {\"preset\": \"fast\"}}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "planner.preset");
    mbr_free(&r);
    /* per act call, on a CEM model */
    ck_assert_int_eq(mbd_create_small(&D, "c", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&D, "c", 100, 0, NULL, 0, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/train", "{\"max_epochs\": 1, \"wait\": true}"), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act",
                              "{\"obs\": [0, 0, 0], \"planner\": {\"preset\": \"realtime\"}}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    mbr_free(&r);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("train_defaults");
    TCase *tc = tcase_create("train_defaults");
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, mb_test_sanitized() ? 300 : 60);
    tcase_add_test(tc, test_plain_request_adapts);
    tcase_add_test(tc, test_auto_train_adapts);
    tcase_add_test(tc, test_realtime_preset);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
