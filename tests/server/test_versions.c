/* test_versions.c: the versions a model keeps (server/versions.c) against a
 * real daemon: the listing with each version's training losses, an act
 * pinned to a version answers with it, promote makes an older version
 * current (acts follow it, the next training job publishes after it),
 * the errors (never published, no longer kept, busy, malformed), the
 * --max-params budget, GET .../versions/latest with its ETag and 304, and
 * that kept versions and a promote survive a restart. */
#include <pthread.h>

#include "check_util.h"
#include "harness.h"
#include "store/snapshot.h"

static char root[200];

static void setup(void) {
    snprintf(root, sizeof root, "/tmp/mbrld-ver-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(root));
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
}

/* Starts mbrld on `data` (the later --data-dir wins over the harness's). */
static int ver_start(mbd *d, const char *data, const char *x1, const char *x2) {
    const char *extra[8] = {"--data-dir", data, "--snapshot-interval", "0", x1, x2, NULL};
    return mbd_start(d, extra);
}

static void rows(const mbd *d, const char *name) {
    mbr r;
    ck_assert_int_eq(mbd_post_rows(d, name, 60, 0, NULL, 0, &r), 201);
    mbr_free(&r);
}

/* One training job of 2 epochs; returns the version it published. */
static long train(const mbd *d, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "POST", path, "{\"max_epochs\": 2, \"patience\": 100, \"wait\": true}"), 200);
    long v = (long)mbr_num(&r, "version");
    mbr_free(&r);
    return v;
}

/* The version an act answers with (pin < 0: none pinned). */
static long act_version(const mbd *d, const char *name, long pin) {
    char path[128], body[128];
    snprintf(path, sizeof path, "/v1/models/%s/act", name);
    if (pin < 0) snprintf(body, sizeof body, "{\"obs\": [0.1, -0.2, 0.5]}");
    else snprintf(body, sizeof body, "{\"obs\": [0.1, -0.2, 0.5], \"version\": %ld}", pin);
    mbr r;
    mbr_do(&r, d, "POST", path, body, 0, NULL);
    ck_assert_msg(r.status == 200, "act: %ld %s", r.status, r.body ? r.body : "");
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    long v = (long)mbr_num(&r, "version");
    mbr_free(&r);
    return v;
}

/* GET .../versions: the kept numbers, newest first, into out; returns the count. */
static int listing(const mbd *d, const char *name, long *current, long *out, int cap) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/versions", name);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, d, "GET", path, NULL), 200);
    *current = (long)mbr_num(&r, "current");
    const cJSON *a = cJSON_GetObjectItem(r.json, "versions");
    ck_assert(cJSON_IsArray(a));
    int n = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        ck_assert_int_lt(n, cap);
        out[n] = (long)cJSON_GetObjectItem(x, "version")->valuedouble;
        /* each with the losses of the job that published it */
        ck_assert_int_eq(cJSON_IsTrue(cJSON_GetObjectItem(x, "current")), out[n] == *current);
        const cJSON *tl = cJSON_GetObjectItem(x, "train_loss"), *hl = cJSON_GetObjectItem(x, "holdout_loss");
        ck_assert_msg(cJSON_IsArray(tl) && cJSON_GetArraySize(tl) == 3, "train_loss: %s", r.body);
        ck_assert(cJSON_IsArray(hl) && cJSON_GetArraySize(hl) == 3);
        ck_assert(cJSON_IsNumber(cJSON_GetArrayItem(tl, 0)) && cJSON_GetArrayItem(tl, 0)->valuedouble != 0);
        ck_assert_int_eq(cJSON_GetObjectItem(x, "epochs")->valueint, 2);
        ck_assert_msg(cJSON_IsString(cJSON_GetObjectItem(x, "job")) &&
                          cJSON_GetObjectItem(x, "job")->valuestring[0] == 'j', "job: %s", r.body);
        ck_assert(cJSON_GetObjectItem(x, "published")->valuedouble > 1e9);
        n++;
    }
    mbr_free(&r);
    return n;
}

START_TEST(test_pin_and_promote) {
    char data[300];
    snprintf(data, sizeof data, "%s/data", root);
    mbd d;
    ck_assert_int_eq(ver_start(&d, data, "--keep-versions", "3"), 0);
    ck_assert_int_eq(mbd_create_small(&d, "v", NULL), 201);
    mbr r;
    /* nothing published: the list is empty, version 0 pins the random act, promote has nothing */
    long cur, ks[8];
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 0);
    ck_assert_int_eq(cur, 0);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": 0}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "random");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/0/promote", NULL);
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "version");
    mbr_free(&r);
    rows(&d, "v");
    for (int i = 1; i <= 4; i++) ck_assert_int_eq(train(&d, "v"), i);
    /* the newest 3 are kept */
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 3);
    ck_assert_int_eq(cur, 4);
    ck_assert(ks[0] == 4 && ks[1] == 3 && ks[2] == 2);
    /* an act pinned to a kept version answers with it; unpinned with the current one */
    ck_assert_int_eq(act_version(&d, "v", 2), 2);
    ck_assert_int_eq(act_version(&d, "v", 3), 3);
    ck_assert_int_eq(act_version(&d, "v", -1), 4);
    /* pins that cannot be served */
    mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": 1}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "version");
    ck_assert_msg(strstr(r.body, "no longer kept") && strstr(r.body, "2, 3, 4"), "%s", r.body);
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": 0}");
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": 5}");
    MBR_EXPECT_ERROR(&r, 404, "not_found", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": -1}");
    MBR_EXPECT_ERROR(&r, 422, "out_of_range", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/act", "{\"obs\": [0, 0, 0], \"version\": \"2\"}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "version");
    mbr_free(&r);

    /* promote: version 2 is current again, acts answer with it */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/v/versions/2/promote", NULL), 200);
    ck_assert_int_eq(mbr_num(&r, "current"), 2);
    mbr_free(&r);
    ck_assert_int_eq(act_version(&d, "v", -1), 2);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/v", NULL), 200);
    ck_assert_int_eq(mbr_num(&r, "version"), 2);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/v/versions/2/promote", "{}"), 200); /* again: same */
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/1/promote", NULL);
    MBR_EXPECT_ERROR(&r, 409, "failed_precondition", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/77/promote", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/x2/promote", NULL);
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "version");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/2/promote", "{\"force\": true}");
    MBR_EXPECT_ERROR(&r, 400, "invalid_argument", "force");
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/none/versions/2/promote", NULL);
    MBR_EXPECT_ERROR(&r, 404, "not_found", "");
    mbr_free(&r);
    /* while a job runs, promote is refused (the job would publish over it) */
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/v/train", "{\"max_epochs\": 100000, \"patience\": 100000}"), 202);
    char job[32];
    snprintf(job, sizeof job, "%s", mbr_str(&r, "job"));
    mbr_free(&r);
    mbr_call(&r, &d, "POST", "/v1/models/v/versions/3/promote", NULL);
    MBR_EXPECT_ERROR(&r, 409, "busy", "");
    ck_assert_ptr_nonnull(strstr(r.body, job));
    mbr_free(&r);
    char path[128];
    snprintf(path, sizeof path, "/v1/models/v/jobs/%s", job);
    ck_assert_int_eq(mbr_call(&r, &d, "DELETE", path, NULL), 200);
    mbr_free(&r);
    for (int i = 0; i < 500; i++) { /* until the cancel has ended it */
        mbr_call(&r, &d, "GET", path, NULL);
        int running = !strcmp(mbr_str(&r, "state"), "running");
        mbr_free(&r);
        if (!running) break;
        mbd_sleep_ms(20);
    }
    ck_assert_int_eq(act_version(&d, "v", -1), 2);
    /* the next job starts from the promoted version and publishes after the newest */
    ck_assert_int_eq(train(&d, "v"), 5);
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 3);
    ck_assert(cur == 5 && ks[0] == 5 && ks[1] == 4 && ks[2] == 3);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/v/versions/3/promote", NULL), 200);
    mbr_free(&r);
    ck_assert_int_eq(act_version(&d, "v", -1), 3);

    /* a clean restart: the same versions, the promoted one current */
    ck_assert_int_eq(mbd_stop(&d), 0);
    ck_assert_int_eq(ver_start(&d, data, "--keep-versions", "3"), 0);
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 3);
    ck_assert(cur == 3 && ks[0] == 5 && ks[1] == 4 && ks[2] == 3);
    ck_assert_int_eq(act_version(&d, "v", -1), 3);
    ck_assert_int_eq(act_version(&d, "v", 5), 5);
    /* a smaller --keep-versions keeps the newest and the current one */
    ck_assert_int_eq(mbd_stop(&d), 0);
    ck_assert_int_eq(ver_start(&d, data, "--keep-versions", "1"), 0);
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 1);
    ck_assert(cur == 3 && ks[0] == 3);
    ck_assert_int_eq(train(&d, "v"), 6);
    ck_assert_int_eq(listing(&d, "v", &cur, ks, 8), 1);
    ck_assert(cur == 6 && ks[0] == 6);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Kept versions count against --max-params: a model whose ensemble needs
 * more than a third of it keeps at most 2. */
START_TEST(test_budget_of_max_params) {
    mbd d;
    /* the small model: 3 members of 4 -> 16 -> 16 -> 2 * 4 (+ bounds) = 3 * 496 floats */
    const char *extra[] = {"--data-dir", "", "--keep-versions", "8", "--max-params", "4000", NULL};
    ck_assert_int_eq(mbd_start(&d, extra), 0);
    ck_assert_int_eq(mbd_create_small(&d, "b", NULL), 201);
    rows(&d, "b");
    for (int i = 1; i <= 4; i++) ck_assert_int_eq(train(&d, "b"), i);
    long cur, ks[8];
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/b/versions", NULL), 200);
    ck_assert_int_eq(mbr_num(&r, "keep"), 2);
    mbr_free(&r);
    ck_assert_int_eq(listing(&d, "b", &cur, ks, 8), 2);
    ck_assert(cur == 4 && ks[0] == 4 && ks[1] == 3);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

static void header_value(const mbr *r, const char *name, char *out, size_t cap) {
    out[0] = 0;
    const char *h = strcasestr(r->headers, name);
    if (!h) return;
    h += strlen(name);
    while (*h == ':' || *h == ' ') h++;
    size_t n = strcspn(h, "\r\n");
    if (n >= cap) n = cap - 1;
    memcpy(out, h, n);
    out[n] = 0;
}

/* GET .../versions/latest: the current version as a snapshot-format body
 * (META + ENSM, no buffer, no optimiser) with an ETag; If-None-Match with it
 * is a 304 without a body; a new version or a promote changes the tag. */
START_TEST(test_latest_etag) {
    mbd d;
    const char *extra[] = {"--data-dir", "", NULL};
    ck_assert_int_eq(mbd_start(&d, extra), 0);
    ck_assert_int_eq(mbd_create_small(&d, "l", NULL), 201);
    mbr r;
    char tag0[80], tag1[80], tag2[80], hdr[120];
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/l/versions/latest", NULL), 200);
    header_value(&r, "\nETag", tag0, sizeof tag0);
    ck_assert_msg(tag0[0] == '"' && strncmp(tag0, "\"0-", 3) == 0, "ETag %s", tag0);
    mbr_free(&r);
    rows(&d, "l");
    ck_assert_int_eq(train(&d, "l"), 1);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/l/versions/latest", NULL), 200);
    header_value(&r, "\nETag", tag1, sizeof tag1);
    ck_assert_msg(strncmp(tag1, "\"1-", 3) == 0, "ETag %s", tag1);
    header_value(&r, "\nContent-Type", hdr, sizeof hdr);
    ck_assert_str_eq(hdr, "application/octet-stream");
    mb_snapshot sn;
    char err[512];
    ck_assert_msg(mb_snapshot_decode_mem(r.body, r.len, NULL, &sn, err, sizeof err) == MB_OK, "%s", err);
    ck_assert(sn.has_ensemble && !sn.has_buffer && !sn.has_adam && sn.n_kept == 0);
    cJSON *meta = cJSON_Parse(sn.meta);
    ck_assert_int_eq(cJSON_GetObjectItem(meta, "version")->valueint, 1);
    ck_assert(cJSON_IsObject(cJSON_GetObjectItem(meta, "spec")));
    ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "version_info"), "job")->valuestring, "j1");
    ck_assert_ptr_null(cJSON_GetObjectItem(meta, "clients"));
    cJSON_Delete(meta);
    mb_snapshot_free(&sn);
    mbr_free(&r);
    /* unchanged: 304, no body, the same tag */
    char inm[120];
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag1);
    const char *h1[] = {inm, NULL};
    mbr_do(&r, &d, "GET", "/v1/models/l/versions/latest", NULL, 0, h1);
    ck_assert_int_eq(r.status, 304);
    ck_assert_uint_eq(r.len, 0);
    header_value(&r, "\nETag", hdr, sizeof hdr);
    ck_assert_str_eq(hdr, tag1);
    mbr_free(&r);
    /* a list of tags, one of them current; W/ and * as RFC 9110 has them */
    snprintf(inm, sizeof inm, "If-None-Match: \"9-0\", W/%s", tag1);
    mbr_do(&r, &d, "GET", "/v1/models/l/versions/latest", NULL, 0, h1);
    ck_assert_int_eq(r.status, 304);
    mbr_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag0);
    mbr_do(&r, &d, "GET", "/v1/models/l/versions/latest", NULL, 0, h1);
    ck_assert_int_eq(r.status, 200);
    mbr_free(&r);
    /* a promote back to 1 after 2 is the tag of 1 again */
    ck_assert_int_eq(train(&d, "l"), 2);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/l/versions/latest", NULL), 200);
    header_value(&r, "\nETag", tag2, sizeof tag2);
    ck_assert_str_ne(tag2, tag1);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "POST", "/v1/models/l/versions/1/promote", NULL), 200);
    mbr_free(&r);
    snprintf(inm, sizeof inm, "If-None-Match: %s", tag1);
    mbr_do(&r, &d, "GET", "/v1/models/l/versions/latest", NULL, 0, h1);
    ck_assert_int_eq(r.status, 304);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models/nope/versions/latest", NULL), 404);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("versions");
    TCase *tc = tcase_create("versions");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_pin_and_promote);
    tcase_add_test(tc, test_budget_of_max_params);
    tcase_add_test(tc, test_latest_etag);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
