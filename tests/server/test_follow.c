/* test_follow.c: follower replicas (server/follow.c) with two daemons on
 * loopback. A trainer with --tokens; a follower with --follow and a
 * read-scoped token of the trainer's: it plans with the trainer's version
 * within seconds, picks up the next one (and a promote) without a restart,
 * refuses every write with 409 read_only naming the trainer, drops a model
 * the trainer deleted, keeps serving while the trainer is stopped and says
 * so on /readyz after --follow-grace; its metrics show the version lag and
 * the last successful pull. Bad --follow settings refuse to start. */
#include <sys/stat.h>

#include "check_util.h"
#include "harness.h"
#include "base/sha256.h"

#define TOK_OPS "tok-ops-8c1d55e0"    /* every scope: the test's own calls */
#define TOK_READ "tok-follow-47ab09f2" /* read only: the follower's */

static char dir[200], tokens[260], follow_tok[260], bad_tok[260];

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_ge(fputs(text, f), 0);
    ck_assert_int_eq(fclose(f), 0);
}

static void hash_hex(const char *tok, char hex[65]) {
    unsigned char d[MB_SHA256_LEN];
    mb_sha256(tok, strlen(tok), d);
    mb_sha256_hex(d, hex);
}

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/mbrld-follow-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char h1[65], h2[65], text[300];
    hash_hex(TOK_OPS, h1);
    hash_hex(TOK_READ, h2);
    snprintf(text, sizeof text, "%s read,act,write,admin ops\n%s read follower\n", h1, h2);
    snprintf(tokens, sizeof tokens, "%s/tokens", dir);
    write_text(tokens, text);
    snprintf(follow_tok, sizeof follow_tok, "%s/follow-token", dir);
    write_text(follow_tok, TOK_READ "\n");
    snprintf(bad_tok, sizeof bad_tok, "%s/bad-token", dir);
    write_text(bad_tok, "tok-nobody-knows\n");
}

static void teardown(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
}

/* A call to the trainer with the ops token. */
static long ops(mbr *r, const mbd *d, const char *method, const char *path, const char *body) {
    const char *h[] = {"Authorization: Bearer " TOK_OPS, NULL};
    mbr_do(r, d, method, path, body, 0, h);
    return r->status;
}

static void ops_ok(const mbd *d, const char *method, const char *path, const char *body, long want) {
    mbr r;
    ops(&r, d, method, path, body);
    ck_assert_msg(r.status == want, "%s %s: %ld %s", method, path, r.status, r.body ? r.body : "");
    mbr_free(&r);
}

#define SPEC "{\"name\": \"%s\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], " \
             "\"ensemble\": {\"members\": 3, \"hidden\": [16, 16]}, \"planner\": {\"method\": \"cem\", " \
             "\"horizon\": 5, \"population\": 32, \"elites\": 4, \"iterations\": 2, \"particles\": 3}, \"seed\": 7}"

static void create(const mbd *t, const char *name) {
    char body[600];
    snprintf(body, sizeof body, SPEC, name);
    ops_ok(t, "POST", "/v1/models", body, 201);
}

static void rows(const mbd *t, const char *name) {
    char b[16384], path[128];
    size_t len = (size_t)snprintf(b, sizeof b, "{\"transitions\": [");
    for (int i = 0; i < 40; i++) {
        double x = (i % 41) / 20.0 - 1.0, a = (i % 7) / 3.0 - 1.0;
        len += (size_t)snprintf(b + len, sizeof b - len,
                                "%s{\"obs\": [%g, 0.1, 0.5], \"action\": [%g], \"reward\": %g, \"next_obs\": [%g, 0.1, 0.5], "
                                "\"terminated\": false}", i ? ", " : "", x, a, -x * x, 0.9 * x + 0.1 * a);
    }
    snprintf(b + len, sizeof b - len, "]}");
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    ops_ok(t, "POST", path, b, 201);
}

static long train(const mbd *t, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/train", name);
    mbr r;
    ops(&r, t, "POST", path, "{\"max_epochs\": 2, \"wait\": true}");
    ck_assert_msg(r.status == 200, "train: %ld %s", r.status, r.body);
    long v = (long)mbr_num(&r, "version");
    mbr_free(&r);
    return v;
}

/* The follower's act version for `name`, or -1 (no such model) / -2 (error). */
static long f_act(const mbd *f, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/act", name);
    mbr r;
    mbr_call(&r, f, "POST", path, "{\"obs\": [0.1, 0.1, 0.5]}");
    long v = r.status == 200 ? (long)mbr_num(&r, "version") : r.status == 404 ? -1 : -2;
    mbr_free(&r);
    return v;
}

/* Polls the follower until its act answers version `want` (up to ~15 s). */
static int wait_version(const mbd *f, const char *name, long want) {
    for (int i = 0; i < 300; i++) {
        if (f_act(f, name) == want) return 1;
        mbd_sleep_ms(50);
    }
    return 0;
}

static long readyz(const mbd *f, char *msg, size_t cap) {
    mbr r;
    mbr_call(&r, f, "GET", "/readyz", NULL);
    if (msg) {
        const cJSON *e = cJSON_GetObjectItem(cJSON_GetObjectItem(r.json, "error"), "message");
        snprintf(msg, cap, "%s", cJSON_IsString(e) ? e->valuestring : "");
    }
    long st = r.status;
    mbr_free(&r);
    return st;
}

/* A metric's value from the follower's /metrics (NAN if absent). */
static double metric(const mbd *f, const char *line_start) {
    mbr r;
    mbr_call(&r, f, "GET", "/metrics", NULL);
    double v = NAN;
    char key[200];
    snprintf(key, sizeof key, "\n%s", line_start); /* a sample line, not its # HELP */
    const char *p = r.body ? strstr(r.body, key) : NULL;
    if (p) v = strtod(p + strlen(key), NULL);
    mbr_free(&r);
    return v;
}

START_TEST(test_follower_serves_the_trainers_versions) {
    mbd t, f;
    const char *targs[] = {"--tokens", tokens, NULL};
    ck_assert_int_eq(mbd_start(&t, targs), 0);
    create(&t, "arm");
    rows(&t, "arm");
    ck_assert_int_eq(train(&t, "arm"), 1);
    const char *fargs[] = {"--follow", t.url, "--follow-token-file", follow_tok, "--follow-interval", "1",
                           "--follow-grace", "2", NULL};
    ck_assert_int_eq(mbd_start(&f, fargs), 0);
    pid_t follower = f.pid;
    /* the trainer's version within seconds */
    ck_assert_msg(wait_version(&f, "arm", 1), "the follower never planned with version 1");
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &f, "POST", "/v1/models/arm/act", "{\"obs\": [0.1, 0.1, 0.5]}"), 200);
    ck_assert_str_eq(mbr_str(&r, "source"), "planner");
    mbr_free(&r);
    ck_assert_int_eq(readyz(&f, NULL, 0), 200);
    /* status and predict from the pulled version; no buffer came over */
    ck_assert_int_eq(mbr_call(&r, &f, "GET", "/v1/models/arm", NULL), 200);
    ck_assert_int_eq(mbr_num(&r, "version"), 1);
    ck_assert_int_eq(mbr_num(&r, "buffer_size"), 0);
    mbr_free(&r);
    ck_assert_int_eq(mbr_call(&r, &f, "POST", "/v1/models/arm/predict", "{\"obs\": [0.1, 0.1, 0.5], \"actions\": [[1]]}"), 200);
    mbr_free(&r);
    /* the same plan as the trainer's for the same request stream? Not
     * asserted: seeds follow each daemon's own act counter. The weights are
     * the trainer's: the same predictions, bit for bit. */
    char *pt, *pf;
    ops(&r, &t, "POST", "/v1/models/arm/predict", "{\"obs\": [0.1, 0.1, 0.5], \"actions\": [[1], [-1]]}");
    pt = r.body, r.body = NULL;
    mbr_free(&r);
    mbr_call(&r, &f, "POST", "/v1/models/arm/predict", "{\"obs\": [0.1, 0.1, 0.5], \"actions\": [[1], [-1]]}");
    pf = r.body, r.body = NULL;
    mbr_free(&r);
    ck_assert_str_eq(pt, pf);
    free(pt), free(pf);

    /* the next version without a restart */
    ck_assert_int_eq(train(&t, "arm"), 2);
    ck_assert_msg(wait_version(&f, "arm", 2), "the follower never picked up version 2");
    ck_assert_int_eq(f.pid, follower);
    ck_assert_int_eq(kill(f.pid, 0), 0);
    /* a promote on the trainer is followed too */
    ops_ok(&t, "POST", "/v1/models/arm/versions/1/promote", NULL, 200);
    ck_assert_msg(wait_version(&f, "arm", 1), "the follower never followed the promote");
    /* a second model appears, a deleted one goes */
    create(&t, "leg");
    ck_assert_msg(wait_version(&f, "leg", 0), "the follower never created 'leg'");
    ops_ok(&t, "DELETE", "/v1/models/leg", NULL, 200);
    ck_assert_msg(wait_version(&f, "leg", -1), "the follower kept a model the trainer deleted");
    /* metrics: in sync, with the last pull's time */
    ck_assert_msg(metric(&f, "mbrld_follow_version_lag{model=\"arm\"} ") == 0, "lag");
    ck_assert_msg(metric(&f, "mbrld_follow_trainer_version{model=\"arm\"} ") == 1, "trainer version");
    ck_assert_msg(metric(&f, "mbrld_follow_up ") == 1, "up");
    ck_assert_msg(metric(&f, "mbrld_follow_last_success_timestamp_seconds ") > 1e9, "last success");
    ck_assert_msg(metric(&f, "mbrld_follow_pulls_total{result=\"not_modified\"} ") >= 1, "304s");
    ck_assert_msg(metric(&f, "mbrld_follow_pulls_total{result=\"pulled\"} ") >= 3, "pulls");

    /* every write: 409 read_only, naming the trainer; the model is untouched */
    static const struct {
        const char *method, *path, *body;
    } writes[] = {
        {"POST", "/v1/models/arm/transitions", "{\"transitions\": []}"},
        {"POST", "/v1/models/arm/train", "{}"},
        {"DELETE", "/v1/models/arm/jobs/j1", NULL},
        {"POST", "/v1/models/arm/snapshot", "{}"},
        {"POST", "/v1/models", "{\"name\": \"x\"}"},
        {"DELETE", "/v1/models/arm", NULL},
        {"POST", "/v1/models/arm2/import", "MBRLSNAP"},
        {"POST", "/v1/models/arm/versions/2/promote", NULL},
    };
    for (size_t i = 0; i < sizeof writes / sizeof writes[0]; i++) {
        mbr_call(&r, &f, writes[i].method, writes[i].path, "%s", writes[i].body ? writes[i].body : "");
        MBR_EXPECT_ERROR(&r, 409, "read_only", "");
        ck_assert_msg(strstr(r.body, t.url) != NULL, "%s %s: the trainer is not named: %s", writes[i].method,
                      writes[i].path, r.body);
        mbr_free(&r);
    }
    ck_assert_int_eq(f_act(&f, "arm"), 1);

    /* the trainer stops: the follower keeps serving, and says so after the grace */
    ck_assert_int_eq(mbd_stop(&t), 0);
    ck_assert_int_eq(f_act(&f, "arm"), 1);
    char msg[300] = "";
    int said = 0;
    for (int i = 0; i < 200 && !said; i++) {
        said = readyz(&f, msg, sizeof msg) == 503;
        if (!said) mbd_sleep_ms(50);
    }
    ck_assert_msg(said, "/readyz never said the trainer is gone");
    ck_assert_msg(strstr(msg, "trainer") != NULL, "readyz: %s", msg);
    ck_assert_int_eq(f_act(&f, "arm"), 1);
    ck_assert_msg(metric(&f, "mbrld_follow_up ") == 0, "up after the trainer stopped");
    ck_assert_int_eq(mbd_stop(&f), 0);
}
END_TEST

/* The follower's policy act for `name`: its policy_version, or -status. */
static long f_policy(const mbd *f, const char *name) {
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/act", name);
    mbr r;
    mbr_call(&r, f, "POST", path, "{\"obs\": [0.1, 0.1, 0.5], \"planner\": {\"method\": \"policy\"}}");
    long v = r.status == 200 && !strcmp(mbr_str(&r, "source"), "policy") ? (long)mbr_num(&r, "policy_version")
                                                                        : -r.status;
    mbr_free(&r);
    return v;
}

/* A model with a policy (issue 13): the follower pulls the policy with the
 * version, answers "method": "policy" from it, and picks up a newly trained
 * policy under the same model version (the tag names both). */
START_TEST(test_follower_gets_the_policy) {
    mbd t, f;
    const char *targs[] = {"--tokens", tokens, NULL};
    ck_assert_int_eq(mbd_start(&t, targs), 0);
    char body[800];
    int k = snprintf(body, sizeof body, SPEC, "pol");
    snprintf(body + k - 1, sizeof body - (size_t)(k - 1),
             ", \"policy\": {\"hidden\": [16, 16], \"rollouts\": 20, \"retain_steps\": 5, \"batch_size\": 16}}");
    ops_ok(&t, "POST", "/v1/models", body, 201);
    rows(&t, "pol");
    ck_assert_int_eq(train(&t, "pol"), 1);
    ops_ok(&t, "POST", "/v1/models/pol/policy/train", "{\"steps\": 2, \"wait\": true}", 200);
    const char *fargs[] = {"--follow", t.url, "--follow-token-file", follow_tok, "--follow-interval", "1", NULL};
    ck_assert_int_eq(mbd_start(&f, fargs), 0);
    long pv = 0;
    for (int i = 0; i < 300 && (pv = f_policy(&f, "pol")) != 1; i++) mbd_sleep_ms(50);
    ck_assert_msg(pv == 1, "the follower never answered from policy 1 (%ld)", pv);
    ops_ok(&t, "POST", "/v1/models/pol/policy/train", "{\"steps\": 2, \"wait\": true}", 200);
    for (int i = 0; i < 300 && (pv = f_policy(&f, "pol")) != 2; i++) mbd_sleep_ms(50);
    ck_assert_msg(pv == 2, "the follower never picked up policy 2 (%ld)", pv);
    ck_assert_int_eq(f_act(&f, "pol"), 1); /* the same model version */
    /* a write of the policy is the trainer's */
    mbr r;
    mbr_call(&r, &f, "POST", "/v1/models/pol/policy/train", "{\"steps\": 2}");
    MBR_EXPECT_ERROR(&r, 409, "read_only", "");
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&f), 0);
    ck_assert_int_eq(mbd_stop(&t), 0);
}
END_TEST

/* A follower that cannot authenticate never becomes ready; bad settings
 * refuse to start. */
START_TEST(test_follower_auth_and_settings) {
    mbd t, f;
    const char *targs[] = {"--tokens", tokens, NULL};
    ck_assert_int_eq(mbd_start(&t, targs), 0);
    create(&t, "arm");
    const char *fargs[] = {"--follow", t.url, "--follow-token-file", bad_tok, "--follow-interval", "1", NULL};
    ck_assert_int_eq(mbd_start(&f, fargs), 0);
    mbd_sleep_ms(1500);
    char msg[300];
    ck_assert_int_eq(readyz(&f, msg, sizeof msg), 503);
    ck_assert_msg(strstr(msg, "no complete pull") != NULL, "readyz: %s", msg);
    ck_assert_int_eq(f_act(&f, "arm"), -1);
    ck_assert_int_eq(mbd_stop(&f), 0);
    /* without a token at all: the same */
    const char *fargs2[] = {"--follow", t.url, "--follow-interval", "1", NULL};
    ck_assert_int_eq(mbd_start(&f, fargs2), 0);
    mbd_sleep_ms(1200);
    ck_assert_int_eq(readyz(&f, NULL, 0), 503);
    ck_assert_int_eq(mbd_stop(&f), 0);
    ck_assert_int_eq(mbd_stop(&t), 0);
    /* refused at start: not a URL, a missing token file, a token file without --follow */
    char missing[300];
    snprintf(missing, sizeof missing, "%s/nope", dir);
    const char *bad1[] = {"--follow", "127.0.0.1:1", NULL};
    const char *bad2[] = {"--follow", "http://127.0.0.1:1", "--follow-token-file", missing, NULL};
    const char *bad3[] = {"--follow-token-file", follow_tok, NULL};
    const char *const *bad[] = {bad1, bad2, bad3};
    for (int i = 0; i < 3; i++) {
        ck_assert_int_ne(mbd_start(&f, bad[i]), 0);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", f.dir);
        ck_assert_int_eq(system(cmd), 0);
    }
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_ALL);
    Suite *s = suite_create("follow");
    TCase *tc = tcase_create("follow");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_follower_serves_the_trainers_versions);
    tcase_add_test(tc, test_follower_auth_and_settings);
    tcase_add_test(tc, test_follower_gets_the_policy);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
