/* test_auth.c: access control against a real daemon (server/auth.h):
 *   - each scope reaches exactly its routes: every route of the table gets a
 *     representative request with a token of each scope (403
 *     insufficient_scope naming the scope, or past auth), and the scope the
 *     table gives each route is the one the README documents;
 *   - 401 (no token, another scheme, an unknown token) vs 403, with the
 *     RFC 6750 WWW-Authenticate headers; the scheme in any case;
 *   - hashed lines and old plain-token lines (every scope, a warning);
 *     malformed files refuse to start;
 *   - the throttle: 429 with Retry-After after the failures, per address,
 *     until the window ends;
 *   - labels, never tokens, in the log and /metrics; open probes that say
 *     nothing but their status;
 *   - protected mode: a non-loopback --listen without --tokens refuses to
 *     start, with --insecure or --tokens it starts. */
#include <sys/stat.h>

#include "check_util.h"
#include "harness.h"
#include "auth.h"
#include "base/sha256.h"
#include "routes.h"

/* One token per scope, one with two, and an old plain line (every scope). */
#define TOK_READ "tok-read-5f0c2a"
#define TOK_ACT "tok-act-91b7e4"
#define TOK_WRITE "tok-write-3d88aa"
#define TOK_ADMIN "tok-admin-c4417f"
#define TOK_RA "tok-read-act-0042"
#define TOK_LEGACY "old-plain-secret-77"

static void hash_hex(const char *tok, char hex[65]) {
    unsigned char d[MB_SHA256_LEN];
    mb_sha256(tok, strlen(tok), d);
    mb_sha256_hex(d, hex);
}

static char paths[8][64];

static void remove_files(void) {
    for (int i = 0; i < 8; i++)
        if (paths[i][0]) unlink(paths[i]);
}

/* Writes text to a fresh temp file; returns its path (one per slot, removed
 * at exit: each test runs in its own process). */
static const char *write_file(int slot, const char *text) {
    static int registered;
    if (!registered++) atexit(remove_files);
    if (paths[slot][0]) unlink(paths[slot]); /* the previous file of this slot */
    snprintf(paths[slot], sizeof paths[slot], "/tmp/mbrld-auth-XXXXXX");
    int fd = mkstemp(paths[slot]);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq((int)write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    return paths[slot];
}

static const char *tokens_file(void) {
    char h[6][65], text[2048];
    const char *toks[] = {TOK_READ, TOK_ACT, TOK_WRITE, TOK_ADMIN, TOK_RA};
    for (int i = 0; i < 5; i++) hash_hex(toks[i], h[i]);
    snprintf(text, sizeof text,
             "# mbrld tokens\n"
             "%s read reader\n"
             "\n"
             "  %s act actor  \n"
             "%s write writer\n"
             "%s admin admin-1\n"
             "%s read,act\n" /* no label: line-7 */
             "%s\n",         /* old plain token: every scope, legacy-8 */
             h[0], h[1], h[2], h[3], h[4], TOK_LEGACY);
    return write_file(0, text);
}

static long call_tok(mbr *r, const mbd *d, const char *method, const char *path, const char *body,
                     const char *auth_header) {
    const char *hdr[] = {auth_header, NULL};
    mbr_do(r, d, method, path, body, 0, auth_header ? hdr : NULL);
    return r->status;
}

static long call_bearer(mbr *r, const mbd *d, const char *method, const char *path, const char *body,
                        const char *token) {
    if (!token) return call_tok(r, d, method, path, body, NULL);
    char h[256];
    snprintf(h, sizeof h, "Authorization: Bearer %s", token);
    return call_tok(r, d, method, path, body, h);
}

/* A representative request per route and the scope it must need (README,
 * "Access control"). Model "nosuch" does not exist: past auth the answer
 * is 404 (or 400), never 401/403, so the table needs no state. */
static const struct {
    const char *method, *pattern;
    unsigned scope;
    const char *path, *body;
} reps[] = {
    {"POST", "/v1/models", SRV_SCOPE_ADMIN, "/v1/models", "{\"name\": \"x y\"}"},
    {"GET", "/v1/models", SRV_SCOPE_READ, "/v1/models", NULL},
    {"GET", "/v1/models/{m}", SRV_SCOPE_READ, "/v1/models/nosuch", NULL},
    {"DELETE", "/v1/models/{m}", SRV_SCOPE_ADMIN, "/v1/models/nosuch", NULL},
    {"POST", "/v1/models/{m}/transitions", SRV_SCOPE_WRITE, "/v1/models/nosuch/transitions",
     "{\"transitions\": []}"},
    {"POST", "/v1/models/{m}/train", SRV_SCOPE_WRITE, "/v1/models/nosuch/train", "{}"},
    {"POST", "/v1/models/{m}/policy/train", SRV_SCOPE_WRITE, "/v1/models/nosuch/policy/train", "{}"},
    {"GET", "/v1/models/{m}/jobs/{id}", SRV_SCOPE_READ, "/v1/models/nosuch/jobs/j1", NULL},
    {"DELETE", "/v1/models/{m}/jobs/{id}", SRV_SCOPE_WRITE, "/v1/models/nosuch/jobs/j1", NULL},
    {"POST", "/v1/models/{m}/act", SRV_SCOPE_ACT, "/v1/models/nosuch/act", "{\"obs\": [0, 0, 0]}"},
    {"POST", "/v1/models/{m}/predict", SRV_SCOPE_ACT, "/v1/models/nosuch/predict",
     "{\"obs\": [[0, 0, 0]], \"action\": [[0]]}"},
    {"POST", "/v1/models/{m}/snapshot", SRV_SCOPE_WRITE, "/v1/models/nosuch/snapshot", "{}"},
    {"GET", "/v1/models/{m}/export", SRV_SCOPE_READ, "/v1/models/nosuch/export", NULL},
    {"POST", "/v1/models/{m}/import", SRV_SCOPE_ADMIN, "/v1/models/nosuch/import", "not an export"},
    {"GET", "/v1/models/{m}/versions", SRV_SCOPE_READ, "/v1/models/nosuch/versions", NULL},
    {"GET", "/v1/models/{m}/versions/latest", SRV_SCOPE_READ, "/v1/models/nosuch/versions/latest", NULL},
    {"POST", "/v1/models/{m}/versions/{n}/promote", SRV_SCOPE_ADMIN, "/v1/models/nosuch/versions/1/promote", "{}"},
    {"GET", "/healthz", SRV_SCOPE_PUBLIC, "/healthz", NULL},
    {"GET", "/readyz", SRV_SCOPE_PUBLIC, "/readyz", NULL},
    {"GET", "/metrics", SRV_SCOPE_READ, "/metrics", NULL},
    {"GET", "/v1/openapi.json", SRV_SCOPE_READ, "/v1/openapi.json", NULL},
    {"GET", "/ui", SRV_SCOPE_READ, "/ui", NULL},
};
#define N_REPS (int)(sizeof reps / sizeof reps[0])

static int rep_of(int route) {
    for (int k = 0; k < N_REPS; k++)
        if (!strcmp(reps[k].method, srv_routes[route].method) && !strcmp(reps[k].pattern, srv_routes[route].pattern))
            return k;
    return -1;
}

static void expect_scope_403(const mbr *r, unsigned scope, const char *what) {
    MBR_EXPECT_ERROR(r, 403, "insufficient_scope", "");
    const char *name = auth_scope_name(scope);
    const char *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(r->json, "error"), "message")->valuestring;
    char quoted[32];
    snprintf(quoted, sizeof quoted, "'%s'", name);
    ck_assert_msg(strstr(msg, quoted) != NULL, "%s: the message '%s' does not name %s", what, msg, quoted);
    char hdr[160];
    snprintf(hdr, sizeof hdr, "WWW-Authenticate: Bearer error=\"insufficient_scope\", scope=\"%s\"\r\n", name);
    ck_assert_msg(strstr(r->headers, hdr) != NULL, "%s: no '%s' in\n%s", what, hdr, r->headers);
}

/* Each scope reaches exactly its routes. */
START_TEST(test_scopes_reach_exactly_their_routes) {
    mbd d;
    /* every route is asked without a token once: more failures than the
     * default throttle allows from one address (test_throttle checks it) */
    const char *args[] = {"--tokens", tokens_file(), "--auth-max-failures", "0", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    static const struct {
        const char *token;
        unsigned scopes;
    } who[] = {
        {TOK_READ, SRV_SCOPE_READ},   {TOK_ACT, SRV_SCOPE_ACT},     {TOK_WRITE, SRV_SCOPE_WRITE},
        {TOK_ADMIN, SRV_SCOPE_ADMIN}, {TOK_RA, SRV_SCOPE_READ | SRV_SCOPE_ACT}, {TOK_LEGACY, SRV_SCOPE_ALL},
    };
    for (int i = 0; i < srv_n_routes; i++) {
        int k = rep_of(i);
        ck_assert_msg(k >= 0, "route %s %s has no representative request in test_auth.c", srv_routes[i].method,
                      srv_routes[i].pattern);
        ck_assert_msg(reps[k].scope == srv_routes[i].scope, "route %s %s needs scope '%s', the README says '%s'",
                      srv_routes[i].method, srv_routes[i].pattern, auth_scope_name(srv_routes[i].scope),
                      auth_scope_name(reps[k].scope));
        char what[160];
        mbr r;
        /* no token */
        call_bearer(&r, &d, reps[k].method, reps[k].path, reps[k].body, NULL);
        snprintf(what, sizeof what, "%s %s without a token", reps[k].method, reps[k].path);
        if (reps[k].scope == SRV_SCOPE_PUBLIC)
            ck_assert_msg(r.status == 200, "%s: %ld", what, r.status);
        else
            MBR_EXPECT_ERROR(&r, 401, "unauthenticated", "");
        mbr_free(&r);
        for (size_t t = 0; t < sizeof who / sizeof who[0]; t++) {
            call_bearer(&r, &d, reps[k].method, reps[k].path, reps[k].body, who[t].token);
            snprintf(what, sizeof what, "%s %s with %s", reps[k].method, reps[k].path, who[t].token);
            ck_assert_msg(r.status > 0, "%s: no answer", what);
            if (reps[k].scope == SRV_SCOPE_PUBLIC || (who[t].scopes & reps[k].scope))
                ck_assert_msg(r.status != 401 && r.status != 403 && r.status != 429,
                              "%s: %ld, want past auth: %s", what, r.status, r.body ? r.body : "");
            else
                expect_scope_403(&r, reps[k].scope, what);
            mbr_free(&r);
        }
    }
    /* and with state: each scope does its work end to end */
    mbr r;
    char create[512];
    snprintf(create, sizeof create,
             "{\"name\": \"m1\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], \"act_high\": [2], "
             "\"ensemble\": {\"members\": 3, \"hidden\": [8]}, \"planner\": {\"method\": \"cem\", \"horizon\": 3, "
             "\"population\": 16, \"elites\": 4, \"iterations\": 1, \"particles\": 3}}");
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models", create, TOK_WRITE), 403);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models", create, TOK_ADMIN), 201);
    mbr_free(&r);
    const char *rows = "{\"transitions\": [{\"obs\": [0, 0, 0], \"action\": [0], \"reward\": 0, "
                       "\"next_obs\": [0, 0, 0], \"terminated\": false}]}";
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models/m1/transitions", rows, TOK_ACT), 403);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models/m1/transitions", rows, TOK_WRITE), 201);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models/m1/act", "{\"obs\": [0, 0, 0]}", TOK_ACT), 200);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models/m1", NULL, TOK_READ), 200);
    ck_assert_int_eq((int)mbr_num(&r, "buffer_size"), 1);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models/m1/export", NULL, TOK_READ), 200);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "DELETE", "/v1/models/m1", NULL, TOK_READ), 403);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "DELETE", "/v1/models/m1", NULL, TOK_LEGACY), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* 401 vs 403 and their headers; the scheme in any case. */
START_TEST(test_401_403_headers_and_scheme) {
    mbd d;
    const char *args[] = {"--tokens", tokens_file(), NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    /* no Authorization, or another scheme: 401, "Bearer" without an error */
    const char *none[] = {NULL, "Authorization: Basic dXNlcjpwYXNz", "Authorization: Bearertok-read-5f0c2a",
                          "Authorization: " TOK_READ};
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        call_tok(&r, &d, "GET", "/v1/models", NULL, none[i]);
        MBR_EXPECT_ERROR(&r, 401, "unauthenticated", "");
        ck_assert_msg(strstr(r.headers, "WWW-Authenticate: Bearer\r\n") != NULL, "case %zu:\n%s", i, r.headers);
        mbr_free(&r);
    }
    /* an unknown token (or an empty one, or a hash from the file): invalid_token */
    char h[65];
    hash_hex(TOK_READ, h);
    char as_hash[128];
    snprintf(as_hash, sizeof as_hash, "Authorization: Bearer %s", h);
    const char *bad[] = {"Authorization: Bearer nope", "Authorization: Bearer tok-read-5f0c2", "Authorization: Bearer ",
                         as_hash};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        call_tok(&r, &d, "GET", "/v1/models", NULL, bad[i]);
        MBR_EXPECT_ERROR(&r, 401, "unauthenticated", "");
        ck_assert_msg(strstr(r.headers, "WWW-Authenticate: Bearer error=\"invalid_token\"\r\n") != NULL,
                      "case %zu:\n%s", i, r.headers);
        mbr_free(&r);
    }
    /* the scheme is case-insensitive (RFC 7235), blanks around the token are not part of it */
    const char *schemes[] = {"Authorization: Bearer " TOK_READ, "Authorization: bearer " TOK_READ,
                             "Authorization: BEARER " TOK_READ, "Authorization: BeArEr   " TOK_READ "  "};
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        ck_assert_msg(call_tok(&r, &d, "GET", "/v1/models", NULL, schemes[i]) == 200, "'%s': %ld", schemes[i],
                      r.status);
        mbr_free(&r);
    }
    /* a known token without the scope: 403 (and never 401) */
    call_bearer(&r, &d, "POST", "/v1/models/x/import", "x", TOK_READ);
    expect_scope_403(&r, SRV_SCOPE_ADMIN, "import with read");
    ck_assert_ptr_null(strstr(r.body, TOK_READ));
    mbr_free(&r);
    /* the probes stay open, even with a bad token, and say only their status */
    ck_assert_int_eq(call_tok(&r, &d, "GET", "/healthz", NULL, "Authorization: Bearer nope"), 200);
    ck_assert_ptr_nonnull(r.json);
    ck_assert_str_eq(mbr_str(&r, "status"), "ok");
    ck_assert_int_eq(cJSON_GetArraySize(r.json), 1); /* no uptime, no version */
    mbr_free(&r);
    ck_assert_int_eq(call_tok(&r, &d, "GET", "/readyz", NULL, NULL), 200);
    ck_assert_int_eq(cJSON_GetArraySize(r.json), 1);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

static int log_has(const mbd *d, const char *needle) {
    FILE *f = fopen(d->log, "r");
    if (!f) return 0;
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

/* Hashed and old lines; labels (never tokens) in the log and /metrics. */
START_TEST(test_hashed_legacy_labels) {
    mbd d;
    const char *args[] = {"--tokens", tokens_file(), "--log-level", "debug", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, TOK_READ), 200); /* hashed */
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, TOK_RA), 200); /* hashed, no label */
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, TOK_LEGACY), 200); /* plain */
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, "wrong-one"), 401);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "POST", "/v1/models", "{}", TOK_ACT), 403);
    mbr_free(&r);
    /* a plain line is a warning at start-up that says how to convert it */
    ck_assert(log_has(&d, "plain token"));
    ck_assert(log_has(&d, "line=8"));
    ck_assert(log_has(&d, "sha256sum"));
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/metrics", NULL, TOK_READ), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_requests_total{label=\"reader\"} 2\n")); /* this one too */
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_requests_total{label=\"line-7\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_requests_total{label=\"legacy-8\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_requests_total{label=\"actor\"} 0\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_failures_total{reason=\"invalid_token\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_failures_total{reason=\"insufficient_scope\"} 1\n"));
    const char *toks[] = {TOK_READ, TOK_ACT, TOK_RA, TOK_LEGACY, "wrong-one"};
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        ck_assert_msg(strstr(r.body, toks[i]) == NULL, "/metrics shows %s", toks[i]);
    mbr_free(&r);
    mbd_sleep_ms(100); /* request lines are logged when the request completes */
    ck_assert(log_has(&d, "label=reader"));
    ck_assert(log_has(&d, "label=legacy-8"));
    ck_assert(log_has(&d, "label=actor"));
    for (size_t i = 0; i < sizeof toks / sizeof toks[0]; i++)
        ck_assert_msg(!log_has(&d, toks[i]), "the log shows the token %s", toks[i]);
    char h[65];
    hash_hex(TOK_READ, h);
    ck_assert(!log_has(&d, h));
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Runs mbrld with args; returns its exit status, output into out. */
static int run_mbrld(const char *args, char *out, size_t out_sz) {
    const char *bin = getenv("MBRLD_BIN") ? getenv("MBRLD_BIN") : "build/mbrld";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "timeout 20 %s --data-dir '' %s 2>&1", bin, args);
    FILE *p = popen(cmd, "r");
    ck_assert_ptr_nonnull(p);
    size_t n = fread(out, 1, out_sz - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A malformed tokens file refuses to start, naming the line. */
START_TEST(test_bad_files_refuse_to_start) {
    char h[65];
    hash_hex(TOK_READ, h);
    char text[8][256];
    snprintf(text[0], sizeof text[0], "%s read,delete ci\n", h);
    snprintf(text[1], sizeof text[1], "# c\n%s READ\n", h);
    snprintf(text[2], sizeof text[2], "%.63sg read\n", h);
    snprintf(text[3], sizeof text[3], "%.60s read\n", h);
    snprintf(text[4], sizeof text[4], "%s read a\n%s write b\n", h, h);
    snprintf(text[5], sizeof text[5], "%s read bad\"label\n", h);
    snprintf(text[6], sizeof text[6], "%s read,,act\n", h);
    snprintf(text[7], sizeof text[7], "# only comments\n\n");
    const char *needles[] = {"unknown scope 'delete'", ":2: unknown scope 'READ'", "hex", "64 hex",
                             ":2: the same token", "label", "unknown scope ''", "no tokens"};
    for (int i = 0; i < 8; i++) {
        const char *path = write_file(1, text[i]);
        char args[256], out[4096];
        snprintf(args, sizeof args, "--listen 127.0.0.1:0 --tokens %s", path);
        int rc = run_mbrld(args, out, sizeof out);
        ck_assert_msg(rc == 1, "case %d: exit %d: %s", i, rc, out);
        ck_assert_msg(strstr(out, needles[i]) != NULL, "case %d: '%s' lacks '%s'", i, out, needles[i]);
        unlink(path);
    }
}
END_TEST

/* One GET /v1/models from a chosen loopback source address. */
static long get_from(const mbd *d, const char *source, const char *token, char *retry_after, size_t ra_sz) {
    mbr r;
    memset(&r, 0, sizeof r);
    CURL *c = curl_easy_init();
    char url[128], auth[160];
    snprintf(url, sizeof url, "%s/v1/models", d->url);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
    struct curl_slist *hl = curl_slist_append(NULL, auth);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c, CURLOPT_INTERFACE, source);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mbr__header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    CURLcode cc = curl_easy_perform(c);
    ck_assert_msg(cc == CURLE_OK, "from %s: %s", source, curl_easy_strerror(cc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (retry_after) {
        retry_after[0] = 0;
        const char *ra = strstr(r.headers, "Retry-After: ");
        if (ra) snprintf(retry_after, ra_sz, "%.*s", (int)strcspn(ra + 13, "\r\n"), ra + 13);
    }
    long st = r.status;
    mbr_free(&r);
    return st;
}

/* The defaults: 20 failures within 60 s, then 429 for the rest of the
 * window whatever the token; another address is not affected. */
START_TEST(test_throttle) {
    mbd d;
    const char *args[] = {"--tokens", tokens_file(), NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    char ra[32];
    for (int i = 0; i < 20; i++) ck_assert_int_eq(get_from(&d, "127.0.0.1", "guess", NULL, 0), 401);
    ck_assert_int_eq(get_from(&d, "127.0.0.1", "guess", ra, sizeof ra), 429);
    int secs = atoi(ra);
    ck_assert_msg(secs >= 50 && secs <= 60, "Retry-After '%s'", ra);
    ck_assert_int_eq(get_from(&d, "127.0.0.1", TOK_READ, ra, sizeof ra), 429); /* the right token waits too */
    ck_assert_int_ge(atoi(ra), 1);
    /* another address is served, and its own failures are its own */
    ck_assert_int_eq(get_from(&d, "127.0.0.2", TOK_READ, NULL, 0), 200);
    ck_assert_int_eq(get_from(&d, "127.0.0.2", "guess", NULL, 0), 401);
    ck_assert_int_eq(get_from(&d, "127.0.0.2", TOK_READ, NULL, 0), 200);
    /* probes stay open from the throttled address */
    mbr r;
    ck_assert_int_eq(call_tok(&r, &d, "GET", "/healthz", NULL, NULL), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* A short window ends: the address is served again; 403s are not failures. */
START_TEST(test_throttle_window_ends) {
    mbd d;
    const char *args[] = {"--tokens", tokens_file(), "--auth-max-failures", "3", "--auth-fail-window", "2", NULL};
    ck_assert_int_eq(mbd_start(&d, args), 0);
    mbr r;
    for (int i = 0; i < 10; i++) { /* a known token without the scope is no guess */
        ck_assert_int_eq(call_bearer(&r, &d, "DELETE", "/v1/models/x", NULL, TOK_READ), 403);
        mbr_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, i == 1 ? NULL : "guess"), 401);
        mbr_free(&r);
    }
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, TOK_READ), 429);
    MBR_EXPECT_ERROR(&r, 429, "too_many_failures", "");
    ck_assert_ptr_nonnull(strstr(r.headers, "Retry-After: "));
    mbr_free(&r);
    mbd_sleep_ms(2200);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/metrics", NULL, TOK_READ), 200);
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_failures_total{reason=\"throttled\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(r.body, "mbrld_auth_failures_total{reason=\"missing\"} 1\n"));
    mbr_free(&r);
    ck_assert(log_has(&d, "address throttled"));
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

/* Protected mode: a non-loopback --listen needs --tokens or --insecure. */
START_TEST(test_protected_mode) {
    char out[4096];
    const char *refused[] = {"--listen 0.0.0.0:0", "--listen :0", "--listen [::]:0"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        int rc = run_mbrld(refused[i], out, sizeof out);
        ck_assert_msg(rc == 1, "%s: exit %d: %s", refused[i], rc, out); /* as other start-up errors */
        ck_assert_msg(strstr(out, "protected mode") && strstr(out, "--tokens") && strstr(out, "sha256sum") &&
                          strstr(out, "--insecure"),
                      "%s: %s", refused[i], out);
    }
    /* --insecure: starts (with a warning) and serves without a token */
    mbd d;
    const char *insecure[] = {"--listen", "0.0.0.0:0", "--insecure", NULL};
    ck_assert_int_eq(mbd_start(&d, insecure), 0);
    mbr r;
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models", NULL), 200);
    mbr_free(&r);
    ck_assert(log_has(&d, "--insecure"));
    ck_assert_int_eq(mbd_stop(&d), 0);
    /* --tokens: starts, and tokens are required */
    const char *tokens[] = {"--listen", "0.0.0.0:0", "--tokens", tokens_file(), NULL};
    ck_assert_int_eq(mbd_start(&d, tokens), 0);
    ck_assert_int_eq(mbr_call(&r, &d, "GET", "/v1/models", NULL), 401);
    mbr_free(&r);
    ck_assert_int_eq(call_bearer(&r, &d, "GET", "/v1/models", NULL, TOK_READ), 200);
    mbr_free(&r);
    ck_assert_int_eq(mbd_stop(&d), 0);
    /* loopback needs neither */
    const char *loop[] = {"--listen", "127.0.0.2:0", NULL};
    ck_assert_int_eq(mbd_start(&d, loop), 0);
    ck_assert_int_eq(mbd_stop(&d), 0);
    const char *lh[] = {"--listen", "localhost:0", NULL};
    ck_assert_int_eq(mbd_start(&d, lh), 0);
    ck_assert_int_eq(mbd_stop(&d), 0);
}
END_TEST

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    Suite *s = suite_create("auth");
    TCase *tc = tcase_create("auth");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_scopes_reach_exactly_their_routes);
    tcase_add_test(tc, test_401_403_headers_and_scheme);
    tcase_add_test(tc, test_hashed_legacy_labels);
    tcase_add_test(tc, test_bad_files_refuse_to_start);
    tcase_add_test(tc, test_throttle);
    tcase_add_test(tc, test_throttle_window_ends);
    tcase_add_test(tc, test_protected_mode);
    suite_add_tcase(s, tc);
    int rc = mb_test_main(s);
    curl_global_cleanup();
    return rc;
}
