/* harness.h: black-box test harness for the server suites: starts a real
 * mbrld (MBRLD_BIN, default build/mbrld) on an ephemeral loopback port
 * (--listen 127.0.0.1:0 --port-file), talks to it with libcurl, stops it
 * with SIGTERM and reports its exit status.
 * The daemon gets PR_SET_PDEATHSIG so a test that dies never leaves one
 * behind. Header-only: each suite is one binary.
 * Not for: unit tests of server modules (they call libmbserver.a directly). */
#ifndef MB_TEST_HARNESS_H
#define MB_TEST_HARNESS_H

#include <check.h>
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    pid_t pid;
    int port;
    char url[64];
    char dir[128];
    char log[160];
} mbd;

static inline void mbd_sleep_ms(int ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Starts the daemon with extra arguments (NULL-terminated, may be NULL).
 * Returns 0 once /healthz answers. */
static inline int mbd_start(mbd *d, const char *const *extra) {
    memset(d, 0, sizeof *d);
    snprintf(d->dir, sizeof d->dir, "/tmp/mbrld-test-XXXXXX");
    if (!mkdtemp(d->dir)) return -1;
    char port_file[200], data_dir[200];
    snprintf(port_file, sizeof port_file, "%s/port", d->dir);
    snprintf(data_dir, sizeof data_dir, "%s/data", d->dir);
    snprintf(d->log, sizeof d->log, "%s/log", d->dir);
    const char *bin = getenv("MBRLD_BIN") ? getenv("MBRLD_BIN") : "build/mbrld";
    const char *argv[64] = {bin, "--listen", "127.0.0.1:0", "--port-file", port_file,
                            "--log-level", "warn", "--threads", "8", "--data-dir", data_dir};
    int argc = 11;
    for (int i = 0; extra && extra[i] && argc < 62; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    pid_t parent = getpid();
    d->pid = fork();
    if (d->pid < 0) return -1;
    if (d->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent) _exit(127);
        FILE *f = freopen(d->log, "w", stderr);
        (void)f;
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 2000; i++) { /* up to ~20 s (sanitizer builds start slowly) */
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &d->port) == 1;
            fclose(f);
            if (ok && d->port > 0) break;
        }
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) {
            d->pid = 0;
            return -1;
        }
        mbd_sleep_ms(10);
    }
    if (d->port <= 0) return -1;
    snprintf(d->url, sizeof d->url, "http://127.0.0.1:%d", d->port);
    return 0;
}

static inline void mbd_dump_log(const mbd *d) {
    FILE *f = fopen(d->log, "r");
    if (!f) return;
    char line[1024];
    fprintf(stderr, "---- mbrld log (%s)\n", d->log);
    while (fgets(line, sizeof line, f)) fputs(line, stderr);
    fclose(f);
}

/* SIGTERM, wait; returns the exit status (or 128+signal), dumping the log
 * when it is not 0. */
static inline int mbd_stop(mbd *d) {
    if (d->pid <= 0) return -1;
    kill(d->pid, SIGTERM);
    int st = 0;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    int rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (rc != 0) mbd_dump_log(d);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->dir);
    if (rc == 0 && system(cmd) != 0) rc = -1;
    return rc;
}

typedef struct {
    long status;
    char *body;
    size_t len;
    char headers[4096];
    size_t hlen;
    cJSON *json; /* parsed body when it is JSON */
    CURLcode curl;
} mbr;

static size_t mbr__write(char *p, size_t sz, size_t n, void *ud) {
    mbr *r = ud;
    char *b = realloc(r->body, r->len + sz * n + 1);
    if (!b) return 0;
    memcpy(b + r->len, p, sz * n);
    r->body = b;
    r->len += sz * n;
    r->body[r->len] = 0;
    return sz * n;
}

static size_t mbr__header(char *p, size_t sz, size_t n, void *ud) {
    mbr *r = ud;
    size_t k = sz * n;
    if (r->hlen + k < sizeof r->headers) {
        memcpy(r->headers + r->hlen, p, k);
        r->hlen += k;
        r->headers[r->hlen] = 0;
    }
    return k;
}

static inline void mbr_free(mbr *r) {
    free(r->body);
    cJSON_Delete(r->json);
    memset(r, 0, sizeof *r);
}

/* Chunked upload source: hands out at most `chunk` bytes per read. */
typedef struct {
    const char *data;
    size_t len, off, chunk;
} mbr_src;

static size_t mbr__read(char *buf, size_t sz, size_t n, void *ud) {
    mbr_src *s = ud;
    size_t k = sz * n;
    if (k > s->chunk) k = s->chunk;
    if (k > s->len - s->off) k = s->len - s->off;
    memcpy(buf, s->data + s->off, k);
    s->off += k;
    return k;
}

/* One request. body may be NULL; chunk > 0 sends it with chunked transfer
 * encoding, `chunk` bytes per chunk. headers: NULL-terminated extra lines. */
static inline int mbr_do(mbr *r, const mbd *d, const char *method, const char *path,
                         const char *body, size_t chunk, const char *const *headers) {
    memset(r, 0, sizeof *r);
    CURL *c = curl_easy_init();
    if (!c) return -1;
    char url[512];
    snprintf(url, sizeof url, "%s%s", d->url, path);
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/json");
    hl = curl_slist_append(hl, "Expect:");
    for (int i = 0; headers && headers[i]; i++) hl = curl_slist_append(hl, headers[i]);
    mbr_src src = {body, body ? strlen(body) : 0, 0, chunk};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, mbr__write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, mbr__header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    if (body && chunk > 0) {
        hl = curl_slist_append(hl, "Transfer-Encoding: chunked");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, mbr__read);
        curl_easy_setopt(c, CURLOPT_READDATA, &src);
    } else if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
    }
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    r->curl = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    if (r->body && strstr(r->headers, "application/json")) r->json = cJSON_Parse(r->body);
    return r->curl == CURLE_OK ? 0 : -1;
}

/* printf-formatted body; returns the status (0 on transport failure). */
static inline long mbr_call(mbr *r, const mbd *d, const char *method, const char *path,
                            const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static inline long mbr_call(mbr *r, const mbd *d, const char *method, const char *path,
                            const char *fmt, ...) {
    char *body = NULL;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        if (vasprintf(&body, fmt, ap) < 0) body = NULL;
        va_end(ap);
    }
    mbr_do(r, d, method, path, body, 0, NULL);
    free(body);
    return r->status;
}

/* Number at a dotted path ("error.code" style lookups use mbr_str). */
static inline double mbr_num(const mbr *r, const char *key) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(r->json, key);
    ck_assert_msg(cJSON_IsNumber(n), "answer has no number '%s': %s", key, r->body ? r->body : "");
    return n->valuedouble;
}

static inline const char *mbr_str(const mbr *r, const char *key) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(r->json, key);
    ck_assert_msg(cJSON_IsString(n), "answer has no string '%s': %s", key, r->body ? r->body : "");
    return n->valuestring;
}

/* Asserts the error shape: status, code and field ("" = field null). */
static inline void mbr_expect_error(const mbr *r, long st, const char *code, const char *field,
                                    int line) {
    ck_assert_msg(r->status == st, "line %d: status %ld, want %ld: %s", line, r->status, st,
                  r->body ? r->body : "");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(r->json, "error");
    ck_assert_msg(cJSON_IsObject(e), "line %d: no error object: %s", line, r->body ? r->body : "");
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(e, "field");
    ck_assert_msg(cJSON_IsString(c) && !strcmp(c->valuestring, code), "line %d: code, want %s: %s",
                  line, code, r->body);
    ck_assert_msg(cJSON_IsString(m) && m->valuestring[0], "line %d: empty message", line);
    if (!field[0])
        ck_assert_msg(cJSON_IsNull(f), "line %d: field should be null: %s", line, r->body);
    else
        ck_assert_msg(cJSON_IsString(f) && !strcmp(f->valuestring, field),
                      "line %d: field, want %s: %s", line, field, r->body);
}
#define MBR_EXPECT_ERROR(r, st, code, field) mbr_expect_error((r), (st), (code), (field), __LINE__)

/* A small model: obs 3, act 1 in [-2, 2], tiny ensemble and planner. */
static inline long mbd_create_small(const mbd *d, const char *name, const char *extra) {
    mbr r;
    long st = mbr_call(&r, d, "POST", "/v1/models",
                       "{\"name\": \"%s\", \"obs_dim\": 3, \"act_dim\": 1, \"act_low\": [-2], "
                       "\"act_high\": [2], \"ensemble\": {\"members\": 3, \"hidden\": [16, 16]}, "
                       "\"planner\": {\"method\": \"cem\", \"horizon\": 5, \"population\": 32, "
                       "\"elites\": 4, \"iterations\": 2, \"particles\": 3}, \"seed\": 7%s%s}",
                       name, extra ? ", " : "", extra ? extra : "");
    mbr_free(&r);
    return st;
}

/* Posts n synthetic transitions (x' = 0.9 x + 0.1 a), optionally with
 * client+seq; returns the status. */
static inline long mbd_post_rows(const mbd *d, const char *name, int n, int offset,
                                 const char *client, long seq, mbr *out) {
    size_t cap = (size_t)n * 200 + 128, len = 0;
    char *b = malloc(cap);
    len += (size_t)snprintf(b + len, cap - len, "{\"transitions\": [");
    for (int i = 0; i < n; i++) {
        double x = ((i + offset) % 41) / 20.0 - 1.0, y = ((i + offset) % 13) / 6.0 - 1.0;
        double a = ((i + offset) % 7) / 3.0 - 1.0;
        len += (size_t)snprintf(b + len, cap - len,
                                "%s{\"obs\": [%g, %g, 0.5], \"action\": [%g], \"reward\": %g, "
                                "\"next_obs\": [%g, %g, 0.5], \"terminated\": false}",
                                i ? ", " : "", x, y, a, -x * x, 0.9 * x + 0.1 * a, 0.9 * y);
    }
    if (client) len += (size_t)snprintf(b + len, cap - len, "], \"client\": \"%s\", \"seq\": %ld}", client, seq);
    else len += (size_t)snprintf(b + len, cap - len, "]}");
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/transitions", name);
    mbr r;
    mbr_do(&r, d, "POST", path, b, 0, NULL);
    free(b);
    long st = r.status;
    if (out) *out = r;
    else mbr_free(&r);
    return st;
}

#endif
