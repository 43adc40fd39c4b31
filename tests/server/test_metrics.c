/* test_metrics.c: GET /metrics against a real mbrld: well-formed Prometheus
 * text (every sample line "name{labels} value", a TYPE before each family),
 * the last training's per-member losses equal to GET /v1/models/{m}'s
 * last_training, the persistence state equal to its persistence object,
 * readiness, and the counters the Grafana dashboard (deploy/) plots.
 * Mirrors server/metrics.c. */
#include <math.h>
#include <regex.h>

#include "check_util.h"
#include "harness.h"

/* The value of the sample line that starts with `series ` (name and
 * labels, exactly); NAN when absent. */
static double sample(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (!strncmp(p, series, n) && p[n] == ' ') {
            if (!strncmp(p + n + 1, "NaN", 3)) return NAN;
            return strtod(p + n + 1, NULL);
        }
    }
    return NAN;
}

static int has_series(const char *text, const char *series) {
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ') return 1;
    return 0;
}

static void get_metrics(const mbd *d, mbr *r) { ck_assert_int_eq(mbr_call(r, d, "GET", "/metrics", NULL), 200); }

START_TEST(test_prometheus_text_well_formed) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "w", NULL), 201);
    ck_assert_int_eq(mbd_post_rows(&d, "w", 30, 0, NULL, 0, NULL), 201);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/w/train", "{\"max_epochs\": 2, \"wait\": true}"), 200);
    mbr_free(&r);
    get_metrics(&d, &r);
    regex_t line, type;
    ck_assert_int_eq(regcomp(&line,
                             "^[a-zA-Z_:][a-zA-Z0-9_:]*(\\{([a-zA-Z_][a-zA-Z0-9_]*=\"[^\"]*\",?)*\\})? "
                             "(NaN|[+-]Inf|[-+]?[0-9.]+([eE][-+]?[0-9]+)?)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    ck_assert_int_eq(regcomp(&type, "^# TYPE [a-zA-Z_:][a-zA-Z0-9_:]* (counter|gauge|histogram)$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    char *text = strdup(r.body), *save = NULL;
    char typed[64][96];
    int n_typed = 0, samples = 0;
    for (char *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(l, "# TYPE ", 7)) {
            ck_assert_msg(regexec(&type, l, 0, NULL, 0) == 0, "bad TYPE line: %s", l);
            ck_assert_int_lt(n_typed, 64);
            sscanf(l + 7, "%95s", typed[n_typed++]);
            continue;
        }
        if (l[0] == '#') continue;
        ck_assert_msg(regexec(&line, l, 0, NULL, 0) == 0, "bad sample line: %s", l);
        /* its family was typed before it (histograms: _bucket/_sum/_count) */
        int found = 0;
        for (int i = 0; i < n_typed && !found; i++) {
            size_t k = strlen(typed[i]);
            found = !strncmp(l, typed[i], k) && (l[k] == '{' || l[k] == ' ' || l[k] == '_');
        }
        ck_assert_msg(found, "sample before its TYPE: %s", l);
        samples++;
    }
    ck_assert_int_gt(samples, 20);
    free(text);
    regfree(&line);
    regfree(&type);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_training_losses_and_persistence) {
    mbd d;
    ck_assert_int_eq(mbd_start(&d, NULL), 0);
    ck_assert_int_eq(mbd_create_small(&d, "m", NULL), 201);
    ck_assert_int_eq(mbd_create_small(&d, "untrained", NULL), 201);
    mbr r;
    get_metrics(&d, &r);
    ck_assert(!has_series(r.body, "mbrld_training_loss{model=\"m\",member=\"0\",set=\"train\"}"));
    ck_assert_double_eq(sample(r.body, "mbrld_ready"), 1);
    ck_assert_double_eq(sample(r.body, "mbrld_store_ready"), 1);
    ck_assert_double_eq(sample(r.body, "mbrld_log_failed{model=\"m\"}"), 0);
    mbr_free(&r);

    ck_assert_int_eq(mbd_post_rows(&d, "m", 60, 0, "c", 1, NULL), 201);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/m/train", "{\"max_epochs\": 4, \"wait\": true}"), 200);
    mbr_free(&r);
    mbr st;
    ck_assert_int_eq(mbr_call(&st, &d, "GET", "/v1/models/m", NULL), 200);
    cJSON *lt = cJSON_GetObjectItem(st.json, "last_training");
    cJSON *tl = cJSON_GetObjectItem(lt, "train_loss"), *hl = cJSON_GetObjectItem(lt, "holdout_loss");
    ck_assert_int_eq(cJSON_GetArraySize(hl), 3);
    get_metrics(&d, &r);
    char series[160];
    for (int k = 0; k < 3; k++) {
        snprintf(series, sizeof series, "mbrld_training_loss{model=\"m\",member=\"%d\",set=\"train\"}", k);
        double want = cJSON_GetArrayItem(tl, k)->valuedouble, got = sample(r.body, series);
        ck_assert_msg(fabs(got - want) <= 1e-6 * fabs(want), "%s: %g, status %g", series, got, want);
        snprintf(series, sizeof series, "mbrld_training_loss{model=\"m\",member=\"%d\",set=\"holdout\"}", k);
        want = cJSON_GetArrayItem(hl, k)->valuedouble;
        got = sample(r.body, series);
        ck_assert_msg(fabs(got - want) <= 1e-6 * fabs(want), "%s: %g, status %g", series, got, want);
    }
    ck_assert(!has_series(r.body, "mbrld_training_loss{model=\"untrained\",member=\"0\",set=\"train\"}"));
    /* persistence: the same as the status's */
    cJSON *p = cJSON_GetObjectItem(st.json, "persistence");
    ck_assert_double_eq(sample(r.body, "mbrld_log_seq{model=\"m\"}"), cJSON_GetObjectItem(p, "log_seq")->valuedouble);
    cJSON *snap = cJSON_GetObjectItem(p, "last_snapshot");
    ck_assert(cJSON_IsObject(snap)); /* every training job ends with a snapshot */
    ck_assert_double_le(fabs(sample(r.body, "mbrld_last_snapshot_timestamp_seconds{model=\"m\"}") -
                             cJSON_GetObjectItem(snap, "time")->valuedouble),
                        0.001);
    ck_assert_double_eq(sample(r.body, "mbrld_log_failed{model=\"m\"}"), 0);
    /* the counters the dashboard plots */
    ck_assert_double_eq(sample(r.body, "mbrld_transitions_total"), 60);
    /* the job's waiter is woken as it publishes; the counter follows a moment later */
    for (int i = 0; i < 100 && sample(r.body, "mbrld_training_jobs_total{state=\"done\"}") != 1; i++) {
        mbr_free(&r);
        mbd_sleep_ms(20);
        get_metrics(&d, &r);
    }
    ck_assert_double_eq(sample(r.body, "mbrld_training_jobs_total{state=\"done\"}"), 1);
    ck_assert_double_eq(sample(r.body, "mbrld_model_version{model=\"m\"}"), 1);
    ck_assert_double_eq(sample(r.body, "mbrld_buffer_size{model=\"m\"}"), 60);
    mbr_free(&r);
    mbr_free(&st);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

START_TEST(test_in_memory_no_persistence_series) {
    const char *extra[] = {"--data-dir", "", NULL};
    mbd d;
    ck_assert_int_eq(mbd_start(&d, extra), 0);
    ck_assert_int_eq(mbd_create_small(&d, "mem", NULL), 201);
    mbr r;
    get_metrics(&d, &r);
    ck_assert(!has_series(r.body, "mbrld_log_seq{model=\"mem\"}"));
    ck_assert(!has_series(r.body, "mbrld_log_failed{model=\"mem\"}"));
    ck_assert_double_eq(sample(r.body, "mbrld_store_ready"), 1);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_prometheus_text_well_formed);
    tcase_add_test(tc, test_training_losses_and_persistence);
    tcase_add_test(tc, test_in_memory_no_persistence_series);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
