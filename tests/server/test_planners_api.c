/* test_planners_api.c: issue 14 through a real mbrld: discrete action
 * spaces ("actions": {"discrete": K}: integer actions in transitions,
 * predict and act, their bad inputs with the field, the canonical form and
 * a restart), the new planner methods through act (a bare {"method":
 * "mcts"} plans), "return_plan" on any act and "gains" with ilqr.
 * Mirrors server/spec.c (actions, planner keys), server/api_data.c (the
 * transitions' and predict's actions) and server/act_answer.c. */
#include "check_util.h"
#include "harness.h"

static mbd D;
static void test_setup(void) { ck_assert_msg(mbd_start(&D, NULL) == 0, "mbrld did not start"); }
static void test_teardown(void) { ck_assert_int_eq(mbd_stop(&D), 0); }

static void train_wait(const char *name) {
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", path, "{\"max_epochs\": 2, \"wait\": true}"), 200);
    ck_assert_str_eq(mbr_str(&r, "state"), "done");
    mbr_free(&r);
}

/* A discrete model: obs 2, K = 3 (left, stay, right). */
static long create_discrete(const char *name, const char *planner) {
    mbr r;
    long st = mbr_call(&r, &D, "POST", "/v1/models",
                       "{\"name\": \"%s\", \"obs_dim\": 2, \"actions\": {\"discrete\": 3}, "
                       "\"ensemble\": {\"members\": 2, \"hidden\": [16, 16]}, "
                       "\"planner\": %s, \"seed\": 3}",
                       name, planner ? planner : "{\"horizon\": 5, \"population\": 24, \"elites\": 4, \"particles\": 2}");
    mbr_free(&r);
    return st;
}

/* Transitions x' = x + (a - 1) / 10 with integer actions. */
static long post_discrete(const char *name, int n) {
    size_t cap = (size_t)n * 160 + 64, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"transitions\": [");
    for (int i = 0; i < n; i++) {
        double x = (i % 21) / 10.0 - 1.0, y = (i % 5) / 5.0;
        int a = i % 3;
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"obs\": [%g, %g], \"action\": %d, \"reward\": %g, \"next_obs\": [%g, %g]}",
                                i ? ", " : "", x, y, a, -x * x, x + (a - 1) / 10.0, y);
    }
    len += (size_t)snprintf(b + len, cap - len, "]}");
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    mbr r;
    mbr_do(&r, &D, "POST", path, b, 0, NULL);
    free(b);
    long st = r.status;
    mbr_free(&r);
    return st;
}

START_TEST(test_discrete_model) {
    mbr r;
    ck_assert_int_eq(create_discrete("d", NULL), 201);
    /* the canonical form: actions, and act_dim / bounds of the one-hot input */
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/d", NULL), 200);
    const cJSON *spec = cJSON_GetObjectItem(r.json, "spec");
    const cJSON *acts = cJSON_GetObjectItem(spec, "actions");
    ck_assert_ptr_nonnull(acts);
    ck_assert_int_eq(cJSON_GetObjectItem(acts, "discrete")->valueint, 3);
    ck_assert_int_eq(cJSON_GetObjectItem(spec, "act_dim")->valueint, 3);
    mbr_free(&r);
    /* before training: a random integer action */
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/act", "{\"obs\": [0.1, 0.2]}"), 200);
        const cJSON *a = cJSON_GetObjectItem(r.json, "action");
        ck_assert(cJSON_IsNumber(a));
        ck_assert(a->valueint >= 0 && a->valueint < 3 && a->valuedouble == a->valueint);
        mbr_free(&r);
    }
    ck_assert_int_eq(post_discrete("d", 150), 201);
    train_wait("d");
    const char *methods[] = {"cem", "random", "mcts"};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/act",
                                  "{\"obs\": [0.5, 0.2], \"planner\": {\"method\": \"%s\", \"horizon\": 4, "
                                  "\"simulations\": 64}, \"return_plan\": true}", methods[i]), 200);
        ck_assert_str_eq(mbr_str(&r, "source"), "planner");
        const cJSON *a = cJSON_GetObjectItem(r.json, "action");
        ck_assert_msg(cJSON_IsNumber(a) && a->valueint >= 0 && a->valueint < 3, "%s: action", methods[i]);
        const cJSON *pa = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "plan"), "actions");
        ck_assert_int_eq(cJSON_GetArraySize(pa), 4);
        ck_assert_int_eq(cJSON_GetArrayItem(pa, 0)->valueint, a->valueint);
        mbr_free(&r);
    }
    /* predict with integer actions */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/predict", "{\"obs\": [0, 0], \"actions\": [0, 2, 1]}"), 200);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(r.json, "mean")), 3);
    mbr_free(&r);
    /* bad actions: not an integer (400), out of range (422), a list (400) */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/transitions",
                              "{\"transitions\": [{\"obs\": [0, 0], \"action\": 1.5, \"reward\": 0, \"next_obs\": [0, 0]}]}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "transitions[0].action");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/transitions",
                              "{\"transitions\": [{\"obs\": [0, 0], \"action\": 3, \"reward\": 0, \"next_obs\": [0, 0]}]}"), 422);
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "transitions[0].action");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/transitions",
                              "{\"transitions\": [{\"obs\": [0, 0], \"action\": [1], \"reward\": 0, \"next_obs\": [0, 0]}]}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "transitions[0].action");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/predict", "{\"obs\": [0, 0], \"actions\": [0, -1]}"), 422);
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "actions[1]");
    mbr_free(&r);
    /* continuous-only methods refuse a discrete model */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/d/act",
                              "{\"obs\": [0, 0], \"planner\": {\"method\": \"ilqr\"}}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "planner.method");
    mbr_free(&r);
    /* bad specs */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"x\", \"obs_dim\": 2, \"actions\": {\"discrete\": 1}}"), 422);
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "actions.discrete");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"x\", \"obs_dim\": 2, \"actions\": {\"discrete\": 3}, \"act_dim\": 2}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "act_dim");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"x\", \"obs_dim\": 2, \"actions\": {\"discrete\": 3}, \"act_low\": [-1, 0, 0]}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "act_low");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models",
                              "{\"name\": \"x\", \"obs_dim\": 2, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], "
                              "\"planner\": {\"method\": \"mcts\"}}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "planner.method");
    mbr_free(&r);
}
END_TEST

/* A bare {"method": "mcts"} plans with the defaults. */
START_TEST(test_bare_mcts) {
    mbr r;
    ck_assert_int_eq(create_discrete("m", "{\"method\": \"mcts\"}"), 201);
    ck_assert_int_eq(post_discrete("m", 90), 201);
    train_wait("m");
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/m/act", "{\"obs\": [0.3, 0.1]}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    ck_assert(isfinite(mbr_num(&r, "predicted_return")));
    mbr_free(&r);
    /* tree reuse through a session, and its validation */
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/m/act",
                                  "{\"obs\": [0.3, 0.1], \"session\": \"s\", \"planner\": {\"tree_reuse\": true, "
                                  "\"simulations\": 100}}"), 200);
        ck_assert_str_eq(mbr_str(&r, "source"), "planner");
        mbr_free(&r);
    }
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/m/act",
                              "{\"obs\": [0.3, 0.1], \"planner\": {\"tree_reuse\": 2}}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "planner.tree_reuse");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/m", NULL), 200);
    ck_assert(cJSON_IsBool(cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "planner"), "tree_reuse")));
    mbr_free(&r);
}
END_TEST

/* Continuous: every new method through act, return_plan's shapes, and
 * ilqr's gains. */
START_TEST(test_continuous_methods_plan_and_gains) {
    mbr r;
    ck_assert_int_eq(mbd_create_small(&D, "c", NULL), 201);
    /* before training: the plan and gains are null */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act",
                              "{\"obs\": [0.1, 0.2, 0.3], \"return_plan\": true}"), 200);
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r.json, "plan")));
    mbr_free(&r);
    ck_assert_int_eq(mbd_post_rows(&D, "c", 200, 0, NULL, 0, NULL), 201);
    train_wait("c");
    const char *methods[] = {"ilqr", "lqr_flm", "grad", "cem_grad", "cem"};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act",
                                  "{\"obs\": [0.1, 0.2, 0.5], \"planner\": {\"method\": \"%s\", \"horizon\": 6, "
                                  "\"grad_steps\": 3, \"iterations\": 2}, \"return_plan\": true}", methods[i]), 200);
        ck_assert_str_eq(mbr_str(&r, "source"), "planner");
        double a = cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "action"), 0)->valuedouble;
        ck_assert_msg(a >= -2 && a <= 2, "%s: action %g", methods[i], a);
        const cJSON *p = cJSON_GetObjectItem(r.json, "plan");
        ck_assert_ptr_nonnull(p);
        const cJSON *pa = cJSON_GetObjectItem(p, "actions"), *pm = cJSON_GetObjectItem(p, "obs_mean"),
                    *ps = cJSON_GetObjectItem(p, "obs_std");
        ck_assert_int_eq(cJSON_GetArraySize(pa), 6);
        ck_assert_int_eq(cJSON_GetArraySize(pm), 6);
        ck_assert_int_eq(cJSON_GetArraySize(ps), 6);
        ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(pm, 0)), 3);
        MB_ASSERT_CLOSE("plan's first action is the action",
                        cJSON_GetArrayItem(cJSON_GetArrayItem(pa, 0), 0)->valuedouble, a, 1e-6);
        ck_assert(cJSON_GetArrayItem(cJSON_GetArrayItem(ps, 0), 0)->valuedouble >= 0);
        mbr_free(&r);
    }
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act",
                              "{\"obs\": [0.1, 0.2, 0.5], \"planner\": {\"method\": \"ilqr\"}, \"gains\": true, "
                              "\"session\": \"s\"}"), 200);
    const cJSON *g = cJSON_GetObjectItem(r.json, "gains"), *x0 = cJSON_GetObjectItem(r.json, "nominal_obs");
    ck_assert_int_eq(cJSON_GetArraySize(g), 1);
    ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetArrayItem(g, 0)), 3);
    ck_assert_int_eq(cJSON_GetArraySize(x0), 3);
    MB_ASSERT_CLOSE("nominal x_0 is the observation", cJSON_GetArrayItem(x0, 2)->valuedouble, 0.5, 1e-6);
    mbr_free(&r);
    /* gains without ilqr, a bad flag */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act", "{\"obs\": [0, 0, 0], \"gains\": true}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "gains");
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act", "{\"obs\": [0, 0, 0], \"return_plan\": 1}"), 400);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "return_plan");
    mbr_free(&r);
    /* a bad method name lists the new ones */
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/c/act",
                              "{\"obs\": [0, 0, 0], \"planner\": {\"method\": \"dp\"}}"), 400);
    const cJSON *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "message");
    ck_assert(cJSON_IsString(msg) && strstr(msg->valuestring, "mcts") != NULL);
    mbr_free(&r);
}
END_TEST

/* The discrete spec survives a restart (the store re-reads the canonical
 * form from its --data-dir). */
START_TEST(test_discrete_survives_restart) {
    char data[] = "/tmp/mbrld-i14-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(data));
    const char *extra[] = {"--data-dir", data, NULL};
    mbr r;
    ck_assert_int_eq(mbd_start(&D, extra), 0);
    ck_assert_int_eq(create_discrete("p", NULL), 201);
    ck_assert_int_eq(post_discrete("p", 30), 201);
    ck_assert_int_eq(mbd_stop(&D), 0);
    ck_assert_int_eq(mbd_start(&D, extra), 0);
    ck_assert_int_eq(mbr_call(&r, &D, "GET", "/v1/models/p", NULL), 200);
    const cJSON *spec = cJSON_GetObjectItem(r.json, "spec");
    ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(spec, "actions"), "discrete")->valueint, 3);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &D, "POST", "/v1/models/p/act", "{\"obs\": [0, 0]}"), 200);
    ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(r.json, "action")));
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&D), 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", data);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("planners_api");
    TCase *tc = tcase_create("api");
    tcase_add_checked_fixture(tc, test_setup, test_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_discrete_model);
    tcase_add_test(tc, test_bare_mcts);
    tcase_add_test(tc, test_continuous_methods_plan_and_gains);
    suite_add_tcase(s, tc);
    TCase *tr = tcase_create("restart");
    tcase_set_timeout(tr, 120);
    tcase_add_test(tr, test_discrete_survives_restart);
    suite_add_tcase(s, tr);
    return mb_test_main(s);
}
