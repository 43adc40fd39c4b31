/* test_plan_budget.c: planning budgets in bytes and time against a real
 * daemon (server/plan_budget.c, the act route's deadline):
 *   - issue 10's request (obs 256, act 64, population 100,000, particles
 *     10, horizon 199) is refused with 422 naming its figure and the limit,
 *     and the daemon's resident memory does not grow;
 *   - a model whose default planner is over --max-plan-mb cannot be made;
 *   - --plan-memory-mb refuses a plan larger than the whole budget, and
 *     /metrics shows what is held (cached workspaces, sessions);
 *   - a deadline that truncates: the best plan so far, "truncated": true;
 *     a deadline no evaluation meets: 503 deadline_exceeded;
 *   - issue 14's methods alike: an mcts tree (and tree_reuse's room for
 *     two calls) is in the figure before it is allocated and counted as
 *     held while its workspace is cached; a deadline cuts an mcts search
 *     and an ilqr (truncated, a valid action).
 * Nothing here asserts on time. */
#include <pthread.h>

#include "check_util.h"
#include "harness.h"

/* Resident set of pid in KiB (VmRSS), -1 if unreadable. */
static long rss_kib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kib = atol(line + 6);
    fclose(f);
    return kib;
}

/* mbrld_plan_memory_bytes{kind="held"} from /metrics. */
static long long plan_memory_held(const mbd *d) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "GET", "/metrics", NULL), 200);
    const char *p = strstr(r.body, "mbrld_plan_memory_bytes{kind=\"held\"} ");
    ck_assert_ptr_nonnull(p);
    long long v = atoll(p + strlen("mbrld_plan_memory_bytes{kind=\"held\"} "));
    mbr_free(&r);
    return v;
}

static void train_small(const mbd *d, const char *name) {
    ck_assert_int_eq(mbd_create_small(d, name, NULL), 201);
    ck_assert_int_eq(mbd_post_rows(d, name, 200, 0, NULL, 0, NULL), 201);
    mbr r;
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
}

START_TEST(test_issue10_request_refused) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    mbr r;
    char body[4096];
    int n = snprintf(body, sizeof body, "{\"name\": \"big\", \"obs_dim\": 256, \"act_dim\": 64, \"act_low\": [");
    for (int i = 0; i < 64; i++) n += snprintf(body + n, sizeof body - (size_t)n, "%s-1", i ? "," : "");
    n += snprintf(body + n, sizeof body - (size_t)n, "], \"act_high\": [");
    for (int i = 0; i < 64; i++) n += snprintf(body + n, sizeof body - (size_t)n, "%s1", i ? "," : "");
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models", "%s", body), 201);
    mbr_free(&r);
    char *obs = malloc(4096);
    n = snprintf(obs, 4096, "{\"obs\": [");
    for (int i = 0; i < 256; i++) n += snprintf(obs + n, 4096 - (size_t)n, "%s0", i ? "," : "");
    snprintf(obs + n, 4096 - (size_t)n, "], \"planner\": {\"population\": 100000, \"particles\": 10, "
                                          "\"horizon\": 199, \"iterations\": 1}}");
    long before = rss_kib(d.pid);
    for (int k = 0; k < 3; k++) {
        mbr_call(&r, &d, "POST", "/v1/models/big/act", "%s", obs);
        MBR_EXPECT_ERROR(&r, 422, "out_of_range", "planner");
        const char *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "message")->valuestring;
        ck_assert_msg(strstr(msg, "MiB") && strstr(msg, "--max-plan-mb") && strstr(msg, "1024"),
                      "the message names the figure and the limit: %s", msg);
        mbr_free(&r);
    }
    long after = rss_kib(d.pid);
    ck_assert_msg(before > 0 && after - before < 16 * 1024, "RSS grew from %ld to %ld KiB", before, after);
    /* within the limit it is served (a random act: the model is untrained) */
    snprintf(strstr(obs, "\"planner\""), 64, "\"planner\": {\"population\": 100}}");
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/big/act", "%s", obs), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "random");
    mbr_free(&r);
    free(obs);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_limits_at_create_and_daemon_budget) {
    mbd d;
    const char *args[] = {"--max-plan-mb", "64", "--plan-memory-mb", "48", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    /* a default planner over --max-plan-mb: no such model */
    mbr_call(&r, &d, "POST", "/v1/models",
             "{\"name\": \"m\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-1], \"act_high\": [1], "
             "\"planner\": {\"method\": \"cem\", \"population\": 20000, \"particles\": 50, \"horizon\": 10}}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "planner");
    ck_assert_ptr_nonnull(strstr(r.body, "--max-plan-mb"));
    mbr_free(&r);
    train_small(&d, "s");
    /* between the two limits (about 55 MiB): over the daemon's budget */
    mbr_call(&r, &d, "POST", "/v1/models/s/act",
             "{\"obs\": [0, 0, 0], \"planner\": {\"population\": 28000, \"particles\": 20, \"horizon\": 10}}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "planner");
    ck_assert_ptr_nonnull(strstr(r.body, "--plan-memory-mb"));
    mbr_free(&r);
    /* a plan that fits: its workspace stays cached and counted, with the session */
    ck_assert_int_eq(plan_memory_held(&d), 0);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/s/act", "{\"obs\": [0, 0, 0], \"session\": \"a\"}"), 200);
    ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(r.json, "truncated")));
    mbr_free(&r);
    long long held = plan_memory_held(&d);
    ck_assert_msg(held > 0 && held < 48ll << 20, "held %lld", held);
    /* deleting the model gives it back */
    ck_assert_int_eq(mbr_call(&r, &d, "DELETE", "/v1/models/s", NULL), 200);
    mbr_free(&r);
    for (int i = 0; i < 200 && plan_memory_held(&d) != 0; i++) mbd_sleep_ms(5);
    ck_assert_int_eq(plan_memory_held(&d), 0);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_deadline_truncates) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    train_small(&d, "t");
    mbr r;
    /* 100 short iterations, far more than 100 ms of work on any machine
     * here, each finishing in well under that: the plan is cut at its
     * deadline after at least one (retried a few times in case the
     * machine stalls the daemon for the whole deadline) */
    int truncated = 0, san = mb_test_sanitized(); /* sanitizers: 10x the time, a tenth of the rows */
    for (int k = 0; k < 5 && !truncated; k++) {
        long st = mbr_call(&r, &d, "POST", "/v1/models/t/act",
                           "{\"obs\": [0.1, 0, 0], \"deadline_ms\": %d, \"planner\": {\"iterations\": 100, "
                           "\"population\": %d, \"horizon\": 30, \"particles\": 10}}",
                           san ? 400 : 100, san ? 200 : 500);
        if (st == 200) {
            truncated = cJSON_IsTrue(cJSON_GetObjectItem(r.json, "truncated"));
            ck_assert_msg(truncated, "100 iterations within the deadline? %s", r.body);
            ck_assert_str_eq(mbr_str(&r, "source"), "planner");
            ck_assert(fabs(cJSON_GetArrayItem(cJSON_GetObjectItem(r.json, "action"), 0)->valuedouble) <= 2.0);
        } else {
            MBR_EXPECT_ERROR(&r, 503, "deadline_exceeded", "deadline_ms");
        }
        mbr_free(&r);
    }
    ck_assert_msg(truncated, "no truncated answer in 5 tries");
    /* one millisecond for a plan whose first evaluation takes far longer */
    long st = mbr_call(&r, &d, "POST", "/v1/models/t/act",
                       "{\"obs\": [0.1, 0, 0], \"deadline_ms\": 1, \"planner\": {\"population\": 20000, "
                       "\"horizon\": 200, \"particles\": 20, \"iterations\": 1}}");
    if (st == 503) {
        MBR_EXPECT_ERROR(&r, 503, "deadline_exceeded", "deadline_ms");
        ck_assert_ptr_nonnull(strstr(r.headers, "Retry-After"));
    } else {
        ck_assert_int_eq(st, 200);
        ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(r.json, "truncated")));
    }
    mbr_free(&r);
    /* deadline_ms out of range */
    mbr_call(&r, &d, "POST", "/v1/models/t/act", "{\"obs\": [0, 0, 0], \"deadline_ms\": 0}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "deadline_ms");
    mbr_free(&r);
    /* metrics count the misses */
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/metrics", NULL), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_plan_deadline_misses_total{outcome=\"truncated\"} "));
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* A discrete model (obs 2, K = 3) with transitions x' = x + (a - 1) / 10. */
static void train_discrete(const mbd *d, const char *name) {
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "POST", "/v1/models",
                              "{\"name\": \"%s\", \"obs_dim\": 2, \"actions\": {\"discrete\": 3}, "
                              "\"ensemble\": {\"members\": 2, \"hidden\": [16, 16]}, "
                              "\"planner\": {\"method\": \"mcts\", \"simulations\": 64}, \"seed\": 3}", name),
                     201);
    mbr_free(&r);
    char body[16384], path[128];
    int n = snprintf(body, sizeof body, "{\"transitions\": [");
    for (int i = 0; i < 60; i++) {
        double x = (i % 21) / 10.0 - 1.0;
        int a = i % 3;
        n += snprintf(body + n, sizeof body - (size_t)n,
                      "%s{\"obs\": [%g, 0.5], \"action\": %d, \"reward\": %g, \"next_obs\": [%g, 0.5]}",
                      i ? ", " : "", x, a, -x * x, x + (a - 1) / 10.0);
    }
    snprintf(body + n, sizeof body - (size_t)n, "]}");
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "%s", body), 201);
    mbr_free(&r);
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
}

/* One act that a deadline should cut: 1 if truncated, 0 if 503 (retry). */
static int act_cut(const mbd *d, const char *path, const char *body, int discrete) {
    mbr r;
    long st = mbr_call(&r, d, "POST", path, "%s", body);
    int truncated = 0;
    if (st == 200) {
        truncated = cJSON_IsTrue(cJSON_GetObjectItem(r.json, "truncated"));
        ck_assert_msg(truncated, "the whole search within the deadline? %s", r.body);
        ck_assert_str_eq(mbr_str(&r, "source"), "planner");
        ck_assert(isfinite(mbr_num(&r, "predicted_return")));
        const cJSON *a = cJSON_GetObjectItem(r.json, "action");
        if (discrete) ck_assert(cJSON_IsNumber(a) && a->valueint >= 0 && a->valueint < 3);
        else ck_assert(fabs(cJSON_GetArrayItem(a, 0)->valuedouble) <= 2.0);
    } else {
        MBR_EXPECT_ERROR(&r, 503, "deadline_exceeded", "deadline_ms");
    }
    mbr_free(&r);
    return truncated;
}

START_TEST(test_methods_costed_and_cut) {
    mbd d;
    const char *args[] = {"--max-plan-mb", "64", "--plan-memory-mb", "48", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    train_discrete(&d, "d");
    mbr r;
    /* 420,000 simulations of 3 actions: ~55 MiB of tree, twice that with
     * tree_reuse: over --max-plan-mb (the planner's own rows are tiny) */
    mbr_call(&r, &d, "POST", "/v1/models/d/act",
             "{\"obs\": [0, 0.5], \"planner\": {\"simulations\": 420000, \"tree_reuse\": true}}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "planner");
    ck_assert_ptr_nonnull(strstr(r.body, "--max-plan-mb"));
    mbr_free(&r);
    /* without the reuse room: under it, over the daemon's --plan-memory-mb */
    mbr_call(&r, &d, "POST", "/v1/models/d/act", "{\"obs\": [0, 0.5], \"planner\": {\"simulations\": 420000}}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "planner");
    ck_assert_ptr_nonnull(strstr(r.body, "--plan-memory-mb"));
    mbr_free(&r);
    /* 200,000 simulations (~26 MiB of tree) fit, but take far longer than
     * the deadline: the search is cut, and its tree is held while cached */
    ck_assert_int_eq(plan_memory_held(&d), 0);
    int san = mb_test_sanitized(), truncated = 0;
    char body[256];
    snprintf(body, sizeof body, "{\"obs\": [0.3, 0.5], \"deadline_ms\": %d, \"planner\": {\"simulations\": 200000}}",
             san ? 400 : 100);
    for (int k = 0; k < 5 && !truncated; k++) truncated = act_cut(&d, "/v1/models/d/act", body, 1);
    ck_assert_msg(truncated, "no truncated mcts answer in 5 tries");
    long long held = plan_memory_held(&d);
    ck_assert_msg(held > 20ll << 20 && held < 48ll << 20, "held %lld: the tree is not counted", held);
    /* ilqr: 32 starts of 100 iterations over 200 steps, cut */
    train_small(&d, "c");
    snprintf(body, sizeof body,
             "{\"obs\": [0.1, 0, 0], \"deadline_ms\": %d, \"planner\": {\"method\": \"ilqr\", \"horizon\": 200, "
             "\"iterations\": 100, \"population\": 32}}", san ? 400 : 100);
    truncated = 0;
    for (int k = 0; k < 5 && !truncated; k++) truncated = act_cut(&d, "/v1/models/c/act", body, 0);
    ck_assert_msg(truncated, "no truncated ilqr answer in 5 tries");
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("plan_budget");
    TCase *tc = tcase_create("plan_budget");
    tcase_set_timeout(tc, mb_test_sanitized() ? 300 : 60);
    tcase_add_test(tc, test_issue10_request_refused);
    tcase_add_test(tc, test_limits_at_create_and_daemon_budget);
    tcase_add_test(tc, test_deadline_truncates);
    tcase_add_test(tc, test_methods_costed_and_cut);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
