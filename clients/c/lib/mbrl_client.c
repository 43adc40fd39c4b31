/* mbrl_client.c: the C client of mbrld's HTTP API v1 (see mbrl_client.h).
 *
 * One CURL easy handle per client keeps the connection alive between calls;
 * request and answer buffers live in the client and grow only, so a loop of
 * act calls allocates nothing but cJSON's parse of the small answer.
 * Not for: threads sharing a client, or anything numerical. */
#include "mbrl_client.h"

#include "json_floats.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/* ---- growing byte buffer ------------------------------------------------ */

typedef struct {
    char *p;
    size_t len, cap;
} mbrl__buf;

static int buf__reserve(mbrl__buf *b, size_t extra) {
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + extra + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf__put(mbrl__buf *b, const char *s, size_t n) {
    if (buf__reserve(b, n)) return -1;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static int buf__puts(mbrl__buf *b, const char *s) { return buf__put(b, s, strlen(s)); }

static int buf__printf(mbrl__buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static int buf__printf(mbrl__buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || buf__reserve(b, (size_t)n)) return -1;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

/* s as a JSON string literal: quotes, backslashes and control characters
 * escaped, so no caller-supplied text (client_id, session) can end the
 * string and add keys of its own. */
static int buf__json_str(mbrl__buf *b, const char *s) {
    int rc = buf__put(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; !rc && *p; p++) {
        if (*p == '"' || *p == '\\') rc = buf__printf(b, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f) rc = buf__printf(b, "\\u%04x", *p);
        else rc = buf__put(b, (const char *)p, 1);
    }
    return rc ? rc : buf__put(b, "\"", 1);
}

/* "[x0,x1,...]" with %.9g (enough digits to round-trip a float).
 * x: (n). Returns -2 on a non-finite value (the daemon would reject it). */
static int buf__floats(mbrl__buf *b, const float *x, size_t n) {
    if (buf__put(b, "[", 1)) return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) return -2;
        if (buf__printf(b, i ? ",%.9g" : "%.9g", (double)x[i])) return -1;
    }
    return buf__put(b, "]", 1);
}

static void buf__free(mbrl__buf *b) {
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- client ---------------------------------------------------------------- */

struct mbrl_client {
    CURL *curl;
    struct curl_slist *headers;
    char *url;        /* base, no trailing '/' */
    char id[96];
    uint64_t seq;
    mbrl_client_opts o;
    mbrl__buf req;    /* request body */
    mbrl__buf resp;   /* answer body */
    mbrl__buf path;   /* full URL of the current request */
    char err_buf[CURL_ERROR_SIZE];
    long retry_after_s; /* Retry-After of the last answer, 0 if none */
    const int *post_index; /* during mbrl_transitions_post_discrete: the integer actions */
};

const char *mbrl_status_name(mbrl_status s) {
    switch (s) {
    case MBRL_OK: return "ok";
    case MBRL_EHTTP: return "http_error";
    case MBRL_ETRANSPORT: return "transport";
    case MBRL_EPROTO: return "bad_answer";
    case MBRL_EINVAL: return "invalid_argument";
    case MBRL_ENOMEM: return "out_of_memory";
    case MBRL_EIO: return "io_error";
    case MBRL_ETIMEOUT: return "timeout";
    }
    return "unknown";
}

const char *mbrl_error_str(const mbrl_error *e, char *buf, size_t buf_sz) {
    if (!buf || !buf_sz) return "";
    if (!e) {
        snprintf(buf, buf_sz, "(no error)");
    } else if (e->http_status) {
        snprintf(buf, buf_sz, "HTTP %ld %s: %s%s%s%s", e->http_status, e->code, e->message,
                 e->field[0] ? " (field: " : "", e->field, e->field[0] ? ")" : "");
    } else {
        snprintf(buf, buf_sz, "%s: %s", e->code, e->message);
    }
    return buf;
}

static mbrl_status fail__(mbrl_error *err, mbrl_status s, long http, const char *code,
                          const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static mbrl_status fail__(mbrl_error *err, mbrl_status s, long http, const char *code,
                          const char *fmt, ...) {
    if (err) {
        memset(err, 0, sizeof *err);
        err->http_status = http;
        snprintf(err->code, sizeof err->code, "%s", code);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return s;
}

static void err__clear(mbrl_error *err) {
    if (err) memset(err, 0, sizeof *err);
}

static size_t curl__write(char *ptr, size_t size, size_t nmemb, void *ud) {
    mbrl__buf *b = ud;
    size_t n = size * nmemb;
    return buf__put(b, ptr, n) ? 0 : n;
}

/* Keeps Retry-After (delay-seconds form; an HTTP date is ignored). */
static size_t curl__header(char *ptr, size_t size, size_t nmemb, void *ud) {
    mbrl_client *c = ud;
    size_t n = size * nmemb;
    static const char name[] = "retry-after:";
    if (n > sizeof name - 1 && !strncasecmp(ptr, name, sizeof name - 1)) {
        const char *p = ptr + sizeof name - 1, *end = ptr + n;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        long v = 0;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && v < 100000) v = v * 10 + (*p++ - '0'), digits++;
        if (digits) c->retry_after_s = v;
    }
    return n;
}

/* Overwrites a copy of a token (a volatile store the compiler keeps). */
static void token__wipe(void *p, size_t n) {
    volatile unsigned char *v = p;
    while (n--) *v++ = 0;
}

/* The first line of path, blanks and CR around it dropped, into tok. */
static mbrl_status token__read_file(const char *path, char *tok, size_t cap, mbrl_error *err) {
    tok[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return fail__(err, MBRL_EIO, 0, "io_error", "token file %s: %s", path, strerror(errno));
    int got = fgets(tok, (int)cap, f) != NULL;
    fclose(f);
    size_t n = got ? strlen(tok) : 0;
    while (n && (tok[n - 1] == '\n' || tok[n - 1] == '\r' || tok[n - 1] == ' ' || tok[n - 1] == '\t')) tok[--n] = 0;
    size_t lead = strspn(tok, " \t");
    memmove(tok, tok + lead, n - lead + 1);
    if (!tok[0]) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "token file %s: no token on its first line", path);
    return MBRL_OK;
}

mbrl_status mbrl_client_new(mbrl_client **out, const mbrl_client_opts *opts, mbrl_error *err) {
    err__clear(err);
    if (!out) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "out is NULL");
    *out = NULL;
    /* curl_global_init is idempotent and reference-counted since 7.84. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return fail__(err, MBRL_ENOMEM, 0, "transport", "curl_global_init failed");
    mbrl_client *c = calloc(1, sizeof *c);
    if (!c) return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "client");
    if (opts) c->o = *opts;
    if (c->o.connect_timeout_ms <= 0) c->o.connect_timeout_ms = 2000;
    if (c->o.timeout_ms <= 0) c->o.timeout_ms = 60000;
    if (c->o.max_retries < 0) c->o.max_retries = 0;
    else if (c->o.max_retries == 0) c->o.max_retries = 6;
    if (c->o.backoff_ms <= 0) c->o.backoff_ms = 100;
    if (c->o.backoff_max_ms <= 0) c->o.backoff_max_ms = 5000;
    if (c->o.batch_rows == 0) c->o.batch_rows = 512;
    const char *url = c->o.url;
    if (!url || !*url) url = getenv("MBRLD_URL");
    if (!url || !*url) url = "http://127.0.0.1:8080";
    size_t ul = strlen(url);
    while (ul > 0 && url[ul - 1] == '/') ul--;
    c->url = malloc(ul + 1);
    if (!c->url) goto nomem;
    memcpy(c->url, url, ul);
    c->url[ul] = '\0';
    c->o.url = c->url;
    if (c->o.client_id && *c->o.client_id) {
        if (strlen(c->o.client_id) >= sizeof c->id) {
            mbrl_client_free(c);
            return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client_id longer than %zu",
                          sizeof c->id - 1);
        }
        snprintf(c->id, sizeof c->id, "%s", c->o.client_id);
    } else {
        char host[48] = "host";
        gethostname(host, sizeof host - 1);
        host[sizeof host - 1] = '\0';
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        unsigned long r = (unsigned long)ts.tv_nsec ^ ((unsigned long)ts.tv_sec << 20) ^
                          ((unsigned long)(uintptr_t)c >> 4);
        snprintf(c->id, sizeof c->id, "c-%.40s-%ld-%08lx", host, (long)getpid(), r & 0xffffffffUL);
    }
    c->o.client_id = c->id;
    c->seq = 1;
    c->curl = curl_easy_init();
    if (!c->curl) goto nomem;
    c->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!c->headers) goto nomem;
    c->headers = curl_slist_append(c->headers, "Accept: application/json");
    /* no "Expect: 100-continue" round trip on bigger posts */
    c->headers = curl_slist_append(c->headers, "Expect:");
    /* the token: opts.token, else opts.token_file, else $MBRLD_TOKEN */
    char file_tok[4096];
    const char *tok = c->o.token;
    if (!tok && c->o.token_file && *c->o.token_file) {
        mbrl_status ts = token__read_file(c->o.token_file, file_tok, sizeof file_tok, err);
        if (ts != MBRL_OK) {
            mbrl_client_free(c);
            return ts;
        }
        tok = file_tok;
    } else if (!tok) {
        tok = getenv("MBRLD_TOKEN");
    }
    if (tok && *tok) {
        mbrl__buf h = {0};
        int bad = buf__printf(&h, "Authorization: Bearer %s", tok);
        if (!bad) c->headers = curl_slist_append(c->headers, h.p);
        if (h.p) token__wipe(h.p, h.len);
        buf__free(&h);
        if (tok == file_tok) token__wipe(file_tok, sizeof file_tok);
        if (bad) goto nomem;
    }
    c->o.token = NULL; /* not kept: it lives in the header list */
    c->o.token_file = NULL;
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->o.connect_timeout_ms);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, curl__header);
    curl_easy_setopt(c->curl, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, curl__write);
    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &c->resp);
    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->err_buf);
    curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "mbrl-client/1");
    *out = c;
    return MBRL_OK;
nomem:
    mbrl_client_free(c);
    return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "client");
}

void mbrl_client_free(mbrl_client *c) {
    if (!c) return;
    if (c->curl) curl_easy_cleanup(c->curl);
    curl_slist_free_all(c->headers);
    buf__free(&c->req);
    buf__free(&c->resp);
    buf__free(&c->path);
    free(c->url);
    free(c);
    curl_global_cleanup();
}

const char *mbrl_client_id(const mbrl_client *c) { return c ? c->id : ""; }
uint64_t mbrl_client_next_seq(const mbrl_client *c) { return c ? c->seq : 0; }

/* Copies the daemon's {"error": {...}} into err, or says what came back. */
static mbrl_status http__error(const mbrl_client *c, long status, mbrl_error *err) {
    if (!err) return MBRL_EHTTP;
    memset(err, 0, sizeof *err);
    err->http_status = status;
    cJSON *j = c->resp.len ? cJSON_ParseWithLength(c->resp.p, c->resp.len) : NULL;
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    const cJSON *field = cJSON_GetObjectItemCaseSensitive(e, "field");
    if (cJSON_IsString(code)) snprintf(err->code, sizeof err->code, "%s", code->valuestring);
    else snprintf(err->code, sizeof err->code, "http_%ld", status);
    if (cJSON_IsString(msg)) snprintf(err->message, sizeof err->message, "%s", msg->valuestring);
    else snprintf(err->message, sizeof err->message, "%.*s", (int)(c->resp.len > 200 ? 200 : c->resp.len),
                  c->resp.len ? c->resp.p : "(empty answer)");
    if (cJSON_IsString(field)) snprintf(err->field, sizeof err->field, "%s", field->valuestring);
    cJSON_Delete(j);
    return MBRL_EHTTP;
}

/* One exchange. body: (body_len) bytes or NULL. timeout_ms 0 = client's.
 * The answer is in c->resp; *status gets the HTTP status (0 on transport). */
static mbrl_status http__do(mbrl_client *c, const char *method, const char *path, const char *body,
                            size_t body_len, long timeout_ms, long *status, mbrl_error *err) {
    *status = 0;
    c->path.len = 0;
    c->resp.len = 0;
    if (c->resp.p) c->resp.p[0] = '\0';
    if (buf__puts(&c->path, c->url) || buf__puts(&c->path, path))
        return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "url");
    CURL *h = c->curl;
    curl_easy_setopt(h, CURLOPT_URL, c->path.p);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : c->o.timeout_ms);
    if (!strcmp(method, "GET")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, NULL);
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? body_len : 0));
    } else {
        /* DELETE (and anything else) without a body */
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    c->err_buf[0] = '\0';
    c->retry_after_s = 0;
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        return fail__(err, MBRL_ETRANSPORT, 0, "transport", "%s %s: %s", method, c->path.p,
                      c->err_buf[0] ? c->err_buf : curl_easy_strerror(rc));
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (*status >= 400) return http__error(c, *status, err);
    return MBRL_OK;
}

static int retryable__(mbrl_status s, long status) {
    return s == MBRL_ETRANSPORT || status == 429 || status == 500 || status == 502 ||
           status == 503 || status == 504;
}

static void sleep_ms__(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {}
}

/* http__do, retried with exponential backoff when retryable and idempotent;
 * a 429 or 503 with Retry-After waits at least that long (the daemon's
 * planning queue is full, or a throttle's window runs), up to a minute. */
static mbrl_status http__retry(mbrl_client *c, const char *method, const char *path,
                               const char *body, size_t body_len, long *status, mbrl_error *err) {
    long backoff = c->o.backoff_ms;
    for (int attempt = 0;; attempt++) {
        mbrl_status s = http__do(c, method, path, body, body_len, 0, status, err);
        if (s == MBRL_OK || attempt >= c->o.max_retries || !retryable__(s, *status)) return s;
        long wait = backoff;
        if ((*status == 429 || *status == 503) && c->retry_after_s > 0)
            wait = c->retry_after_s > 60 ? 60000 : (c->retry_after_s * 1000 > wait ? c->retry_after_s * 1000 : wait);
        sleep_ms__(wait);
        backoff = backoff * 2 > c->o.backoff_max_ms ? c->o.backoff_max_ms : backoff * 2;
    }
}

static mbrl_status parse__(const mbrl_client *c, cJSON **out, mbrl_error *err) {
    if (!out) return MBRL_OK;
    *out = NULL;
    if (!c->resp.len) return MBRL_OK;
    *out = cJSON_ParseWithLength(c->resp.p, c->resp.len);
    if (!*out)
        return fail__(err, MBRL_EPROTO, 0, "bad_answer", "answer of %s is not JSON: %.120s",
                      c->path.p, c->resp.p);
    return MBRL_OK;
}

mbrl_status mbrl_request(mbrl_client *c, const char *method, const char *path, const char *body,
                         cJSON **out, long *http_status, mbrl_error *err) {
    err__clear(err);
    if (out) *out = NULL;
    if (!c || !method || !path || path[0] != '/')
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client, method and a path starting with '/' are required");
    long status = 0;
    mbrl_status s = http__do(c, method, path, body, body ? strlen(body) : 0, 0, &status, err);
    if (http_status) *http_status = status;
    if (s != MBRL_OK) return s;
    return parse__(c, out, err);
}

/* ---- paths ----------------------------------------------------------------- */

/* Model names are [A-Za-z0-9_.-]{1,64}; we check before building a path so
 * no name can smuggle '/' or '?' into it. */
static int name__ok(const char *s) {
    if (!s) return 0;
    size_t n = strlen(s);
    if (n < 1 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '.' || ch == '-'))
            return 0;
    }
    return 1;
}

static mbrl_status path__(char *out, size_t out_sz, const char *model, const char *suffix,
                          mbrl_error *err) {
    if (!name__ok(model))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument",
                      "model name '%.70s' is not [A-Za-z0-9_.-]{1,64}", model ? model : "(null)");
    snprintf(out, out_sz, "/v1/models/%s%s", model, suffix ? suffix : "");
    return MBRL_OK;
}

/* ---- JSON helpers ------------------------------------------------------- */

/* Number at obj.key, or mean of an array of numbers there; NAN if absent. */
static double jnum__(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v)) return v->valuedouble;
    if (cJSON_IsArray(v)) {
        double s = 0;
        int n = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, v) {
            if (cJSON_IsNumber(x)) { s += x->valuedouble; n++; }
        }
        return n ? s / n : NAN;
    }
    return NAN;
}

static long jlong__(const cJSON *obj, const char *key, long dflt) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? (long)v->valuedouble : dflt;
}

static const char *jstr__(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* ---- models ------------------------------------------------------------ */

void mbrl_model_spec_init(mbrl_model_spec *s) {
    memset(s, 0, sizeof *s);
    s->seed = -1;
}

static const char *term__name(mbrl_term_type t) {
    switch (t) {
    case MBRL_TERM_LINEAR: return "linear";
    case MBRL_TERM_QUADRATIC: return "quadratic";
    case MBRL_TERM_NORM: return "norm";
    case MBRL_TERM_ACTION_L2: return "action_l2";
    case MBRL_TERM_CONSTANT: return "constant";
    }
    return "?";
}

/* The planner object with the fields set, or NULL if none is. */
static cJSON *planner__json(const mbrl_planner *p) {
    if (!(p->method || p->horizon || p->population || p->elites || p->iterations || p->particles ||
          p->alpha > 0 || p->propagation || p->init_std > 0 || p->simulations || p->rollout_depth ||
          p->max_ms > 0 || p->grad_steps || p->tree_reuse || p->preset || p->noise_beta > 0))
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (p->preset) cJSON_AddStringToObject(o, "preset", p->preset);
    if (p->method) cJSON_AddStringToObject(o, "method", p->method);
    if (p->horizon) cJSON_AddNumberToObject(o, "horizon", p->horizon);
    if (p->population) cJSON_AddNumberToObject(o, "population", p->population);
    if (p->elites) cJSON_AddNumberToObject(o, "elites", p->elites);
    if (p->iterations) cJSON_AddNumberToObject(o, "iterations", p->iterations);
    if (p->alpha > 0) cJSON_AddNumberToObject(o, "alpha", jf_num(p->alpha));
    if (p->particles) cJSON_AddNumberToObject(o, "particles", p->particles);
    if (p->propagation) cJSON_AddStringToObject(o, "propagation", p->propagation);
    if (p->init_std > 0) cJSON_AddNumberToObject(o, "init_std", jf_num(p->init_std));
    if (p->simulations) cJSON_AddNumberToObject(o, "simulations", p->simulations);
    if (p->rollout_depth) cJSON_AddNumberToObject(o, "rollout_depth", p->rollout_depth);
    if (p->max_ms > 0) cJSON_AddNumberToObject(o, "max_ms", jf_num(p->max_ms));
    if (p->grad_steps) cJSON_AddNumberToObject(o, "grad_steps", p->grad_steps);
    if (p->tree_reuse) cJSON_AddBoolToObject(o, "tree_reuse", 1);
    if (p->noise_beta > 0) cJSON_AddNumberToObject(o, "noise_beta", jf_num(p->noise_beta));
    return o;
}

cJSON *mbrl_model_spec_json(const mbrl_model_spec *s) {
    if (!s) return NULL;
    cJSON *r = cJSON_CreateObject();
    if (!r) return NULL;
    if (s->name) cJSON_AddStringToObject(r, "name", s->name);
    cJSON_AddNumberToObject(r, "obs_dim", s->obs_dim);
    if (s->discrete > 0) {
        cJSON_AddNumberToObject(cJSON_AddObjectToObject(r, "actions"), "discrete", s->discrete);
    } else {
        cJSON_AddNumberToObject(r, "act_dim", s->act_dim);
        if (s->act_low) cJSON_AddItemToObject(r, "act_low", jf_floats(s->act_low, s->act_dim));
        if (s->act_high) cJSON_AddItemToObject(r, "act_high", jf_floats(s->act_high, s->act_dim));
    }
    if (s->members || s->n_hidden || s->activation || s->learn_reward || s->learn_termination) {
        cJSON *e = cJSON_AddObjectToObject(r, "ensemble");
        if (s->members) cJSON_AddNumberToObject(e, "members", s->members);
        if (s->n_hidden) cJSON_AddItemToObject(e, "hidden", jf_ints(s->hidden, s->n_hidden));
        if (s->activation) cJSON_AddStringToObject(e, "activation", s->activation);
        cJSON_AddBoolToObject(e, "learn_reward", s->learn_reward != 0);
        if (s->learn_termination) cJSON_AddBoolToObject(e, "learn_termination", 1);
    }
    if (s->n_terms || s->discount > 0) {
        cJSON *rw = cJSON_AddObjectToObject(r, "reward");
        cJSON *ts = cJSON_AddArrayToObject(rw, "terms");
        for (int i = 0; i < s->n_terms; i++) {
            const mbrl_term *t = &s->terms[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "type", term__name(t->type));
            if (t->type == MBRL_TERM_LINEAR) {
                cJSON_AddNumberToObject(o, "index", t->idx[0]);
            } else if (t->type == MBRL_TERM_QUADRATIC || t->type == MBRL_TERM_NORM) {
                cJSON_AddItemToObject(o, "indices", jf_ints(t->idx, t->n_idx));
                if (t->n_other) cJSON_AddItemToObject(o, "other_indices", jf_ints(t->other, t->n_other));
                else cJSON_AddItemToObject(o, "target", jf_floats(t->target, t->n_idx));
            }
            cJSON_AddNumberToObject(o, "weight", jf_num(t->weight));
            cJSON_AddItemToArray(ts, o);
        }
        if (s->discount > 0) cJSON_AddNumberToObject(rw, "discount", jf_num(s->discount));
    }
    if (s->n_bounds) {
        cJSON *tm = cJSON_AddObjectToObject(r, "termination");
        cJSON *bs = cJSON_AddArrayToObject(tm, "bounds");
        for (int i = 0; i < s->n_bounds; i++) {
            const mbrl_bound *b = &s->bounds[i];
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "index", b->index);
            if (b->has_min) cJSON_AddNumberToObject(o, "min", jf_num(b->min));
            if (b->has_max) cJSON_AddNumberToObject(o, "max", jf_num(b->max));
            cJSON_AddItemToArray(bs, o);
        }
    }
    cJSON *po = planner__json(&s->planner);
    if (po) cJSON_AddItemToObject(r, "planner", po);
    if (s->buffer_capacity > 0) {
        cJSON *b = cJSON_AddObjectToObject(r, "buffer");
        cJSON_AddNumberToObject(b, "capacity", (double)s->buffer_capacity);
    }
    if (s->seed >= 0) cJSON_AddNumberToObject(r, "seed", (double)s->seed);
    if (s->auto_train_every > 0) {
        cJSON *a = cJSON_AddObjectToObject(r, "auto_train");
        cJSON_AddNumberToObject(a, "every", (double)s->auto_train_every);
        if (s->auto_train_epochs > 0) cJSON_AddNumberToObject(a, "max_epochs", s->auto_train_epochs);
    }
    if (s->extra_json) {
        cJSON *x = cJSON_Parse(s->extra_json);
        if (!cJSON_IsObject(x)) {
            cJSON_Delete(x);
            cJSON_Delete(r);
            return NULL;
        }
        while (x->child) {
            cJSON *item = cJSON_DetachItemViaPointer(x, x->child);
            cJSON_DeleteItemFromObjectCaseSensitive(r, item->string);
            cJSON_AddItemToObject(r, item->string, item);
        }
        cJSON_Delete(x);
    }
    return r;
}

mbrl_status mbrl_model_create(mbrl_client *c, const mbrl_model_spec *spec, mbrl_error *err) {
    err__clear(err);
    if (!c || !spec) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and spec are required");
    if (!name__ok(spec->name))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument",
                      "model name '%.70s' is not [A-Za-z0-9_.-]{1,64}", spec->name ? spec->name : "(null)");
    cJSON *j = mbrl_model_spec_json(spec);
    if (!j) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "extra_json is not a JSON object");
    char *body = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (!body) return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "spec");
    long status;
    mbrl_status s = http__do(c, "POST", "/v1/models", body, strlen(body), 0, &status, err);
    cJSON_free(body);
    return s;
}

void mbrl_model_info_free(mbrl_model_info *info) {
    if (!info) return;
    cJSON_Delete(info->json);
    info->json = NULL;
}

/* The daemon's status answer: take the fields from the top level or from a
 * nested object named like them (buffer.size, training.holdout_loss ...). */
static void info__fill(mbrl_model_info *info, cJSON *j) {
    memset(info, 0, sizeof *info);
    info->json = j;
    const char *name = jstr__(j, "name");
    snprintf(info->name, sizeof info->name, "%s", name ? name : "");
    /* mbrld keeps the creation request under "spec" */
    const cJSON *spec = cJSON_GetObjectItemCaseSensitive(j, "spec");
    info->obs_dim = (int)jlong__(j, "obs_dim", jlong__(spec, "obs_dim", 0));
    info->act_dim = (int)jlong__(j, "act_dim", jlong__(spec, "act_dim", 0));
    info->buffer_size = jlong__(j, "buffer_size", -1);
    const cJSON *buf = cJSON_GetObjectItemCaseSensitive(j, "buffer");
    if (info->buffer_size < 0) info->buffer_size = jlong__(buf, "size", 0);
    info->version = jlong__(j, "version", 0);
    /* "last_training": {.. "holdout_loss": [per member]} once trained;
     * the top-level per-member "holdout_loss" means nothing before that */
    info->holdout_loss = NAN;
    const cJSON *last = cJSON_GetObjectItemCaseSensitive(j, "last_training");
    if (cJSON_IsObject(last)) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(last, "result");
        info->holdout_loss = jnum__(res ? res : last, "holdout_loss");
    }
    if (isnan(info->holdout_loss) && info->version > 0) info->holdout_loss = jnum__(j, "holdout_loss");
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(j, "training");
    if (cJSON_IsBool(tr)) info->training = cJSON_IsTrue(tr);
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(j, "job");
    const char *st = jstr__(job, "state");
    if (st && (!strcmp(st, "running") || !strcmp(st, "queued"))) info->training = 1;
}

mbrl_status mbrl_model_get(mbrl_client *c, const char *model, mbrl_model_info *info,
                           mbrl_error *err) {
    err__clear(err);
    if (info) memset(info, 0, sizeof *info);
    if (!c) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client is NULL");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, NULL, err);
    long status;
    if (s == MBRL_OK) s = http__retry(c, "GET", path, NULL, 0, &status, err);
    if (s != MBRL_OK || !info) return s;
    cJSON *j = NULL;
    if ((s = parse__(c, &j, err)) != MBRL_OK) return s;
    if (!cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return fail__(err, MBRL_EPROTO, 0, "bad_answer", "model status is not an object");
    }
    info__fill(info, j);
    return MBRL_OK;
}

void mbrl_names_free(char **names, size_t n) {
    if (!names) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

mbrl_status mbrl_model_list(mbrl_client *c, char ***names, size_t *n, mbrl_error *err) {
    err__clear(err);
    if (!c || !names || !n) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client, names and n are required");
    *names = NULL;
    *n = 0;
    long status;
    mbrl_status s = http__retry(c, "GET", "/v1/models", NULL, 0, &status, err);
    cJSON *j = NULL;
    if (s == MBRL_OK) s = parse__(c, &j, err);
    if (s != MBRL_OK) return s;
    /* {"models": [{"name": ..}, ..]} or {"models": ["a", ..]} or a bare array */
    const cJSON *arr = cJSON_IsArray(j) ? j : cJSON_GetObjectItemCaseSensitive(j, "models");
    if (!cJSON_IsArray(arr)) {
        cJSON_Delete(j);
        return fail__(err, MBRL_EPROTO, 0, "bad_answer", "model list has no \"models\" array");
    }
    size_t cnt = (size_t)cJSON_GetArraySize(arr);
    char **out = calloc(cnt ? cnt : 1, sizeof *out);
    if (!out) {
        cJSON_Delete(j);
        return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "names");
    }
    size_t k = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) {
        const char *nm = cJSON_IsString(x) ? x->valuestring : jstr__(x, "name");
        if (!nm) continue;
        out[k] = strdup(nm);
        if (!out[k]) {
            mbrl_names_free(out, k);
            cJSON_Delete(j);
            return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "names");
        }
        k++;
    }
    cJSON_Delete(j);
    *names = out;
    *n = k;
    return MBRL_OK;
}

mbrl_status mbrl_model_delete(mbrl_client *c, const char *model, mbrl_error *err) {
    err__clear(err);
    if (!c) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client is NULL");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, NULL, err);
    long status;
    if (s == MBRL_OK) s = http__do(c, "DELETE", path, NULL, 0, 0, &status, err);
    return s;
}

/* ---- transitions ------------------------------------------------------- */

/* Rows [r0, r0 + n) of b as one post body with this seq, into c->req. */
static int batch__body(mbrl_client *c, const mbrl_batch *b, size_t r0, size_t n, uint64_t seq) {
    mbrl__buf *q = &c->req;
    q->len = 0;
    int rc = buf__puts(q, "{\"transitions\":[");
    for (size_t i = r0; rc == 0 && i < r0 + n; i++) {
        rc |= buf__puts(q, i > r0 ? ",{\"obs\":" : "{\"obs\":");
        if (!rc) rc = buf__floats(q, b->obs + i * (size_t)b->obs_dim, (size_t)b->obs_dim);
        if (!rc) rc = buf__puts(q, ",\"action\":");
        if (!rc && c->post_index) rc = buf__printf(q, "%d", c->post_index[i]);
        else if (!rc) rc = buf__floats(q, b->action + i * (size_t)b->act_dim, (size_t)b->act_dim);
        if (!rc) {
            if (!isfinite(b->reward[i])) return -2;
            rc = buf__printf(q, ",\"reward\":%.9g,\"next_obs\":", (double)b->reward[i]);
        }
        if (!rc) rc = buf__floats(q, b->next_obs + i * (size_t)b->obs_dim, (size_t)b->obs_dim);
        if (!rc)
            rc = buf__printf(q, ",\"terminated\":%s,\"truncated\":%s}",
                             b->terminated && b->terminated[i] ? "true" : "false",
                             b->truncated && b->truncated[i] ? "true" : "false");
    }
    if (!rc) rc = buf__puts(q, "],\"client\":");
    if (!rc) rc = buf__json_str(q, c->id);
    if (!rc) rc = buf__printf(q, ",\"seq\":%llu}", (unsigned long long)seq);
    return rc;
}

static mbrl_status batch__check(const mbrl_client *c, const char *model, const mbrl_batch *b,
                                mbrl_error *err) {
    if (!c || !b) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and batch are required");
    if (!name__ok(model)) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "bad model name");
    if (b->obs_dim < 1 || b->obs_dim > MBRL_MAX_DIM || b->act_dim < 1 || b->act_dim > MBRL_MAX_ACT)
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "batch dims %d, %d out of range",
                      b->obs_dim, b->act_dim);
    if (b->n && (!b->obs || (!b->action && !c->post_index) || !b->reward || !b->next_obs))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "batch arrays are NULL");
    return MBRL_OK;
}

static mbrl_status post__rows(mbrl_client *c, const char *model, const mbrl_batch *b, size_t r0,
                              size_t n, uint64_t seq, long *accepted, long *buffer_size,
                              mbrl_error *err) {
    int rc = batch__body(c, b, r0, n, seq);
    if (rc == -2) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "non-finite value in rows %zu..%zu", r0, r0 + n - 1);
    if (rc) return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "transition body");
    char path[128];
    path__(path, sizeof path, model, "/transitions", NULL);
    long status;
    /* c->req is not touched by http__do, so every retry sends the same
     * bytes: same client, same seq. */
    mbrl_status s = http__retry(c, "POST", path, c->req.p, c->req.len, &status, err);
    if (s != MBRL_OK) return s;
    cJSON *j = NULL;
    if ((s = parse__(c, &j, err)) != MBRL_OK) return s;
    if (accepted) *accepted += jlong__(j, "accepted", 0);
    if (buffer_size) *buffer_size = jlong__(j, "buffer_size", *buffer_size);
    cJSON_Delete(j);
    return MBRL_OK;
}

mbrl_status mbrl_transitions_post(mbrl_client *c, const char *model, const mbrl_batch *b,
                                  long *accepted, long *buffer_size, mbrl_error *err) {
    err__clear(err);
    if (accepted) *accepted = 0;
    mbrl_status s = batch__check(c, model, b, err);
    if (s != MBRL_OK) return s;
    for (size_t r0 = 0; r0 < b->n; r0 += c->o.batch_rows) {
        size_t n = b->n - r0 < c->o.batch_rows ? b->n - r0 : c->o.batch_rows;
        /* the seq is spent even if the post fails: a caller that retries
         * later with mbrl_transitions_post_seq can still dedupe. */
        uint64_t seq = c->seq++;
        s = post__rows(c, model, b, r0, n, seq, accepted, buffer_size, err);
        if (s != MBRL_OK) return s;
    }
    return MBRL_OK;
}

mbrl_status mbrl_transitions_post_seq(mbrl_client *c, const char *model, const mbrl_batch *b,
                                      uint64_t seq, long *accepted, long *buffer_size,
                                      mbrl_error *err) {
    err__clear(err);
    if (accepted) *accepted = 0;
    mbrl_status s = batch__check(c, model, b, err);
    if (s != MBRL_OK) return s;
    if (seq >= c->seq) c->seq = seq + 1;
    return post__rows(c, model, b, 0, b->n, seq, accepted, buffer_size, err);
}

mbrl_status mbrl_transitions_post_discrete(mbrl_client *c, const char *model, const mbrl_batch *b,
                                           const int *actions, long *accepted, long *buffer_size,
                                           mbrl_error *err) {
    if (!c || !actions) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and actions are required");
    c->post_index = actions;
    mbrl_status s = mbrl_transitions_post(c, model, b, accepted, buffer_size, err);
    c->post_index = NULL;
    return s;
}

/* ---- training ---------------------------------------------------------- */

void mbrl_job_free(mbrl_job *job) {
    if (!job) return;
    cJSON_Delete(job->json);
    job->json = NULL;
}

int mbrl_job_finished(const mbrl_job *job) {
    return job && (!strcmp(job->state, "done") || !strcmp(job->state, "failed") ||
                   !strcmp(job->state, "canceled") || !strcmp(job->state, "cancelled") ||
                   !strcmp(job->state, "succeeded") || !strcmp(job->state, "finished"));
}

/* Last element of an array of numbers (or of objects with `key`), NAN if none. */
static double jlast__(const cJSON *arr, const char *key) {
    if (!cJSON_IsArray(arr)) return NAN;
    const cJSON *x = cJSON_GetArrayItem(arr, cJSON_GetArraySize(arr) - 1);
    if (cJSON_IsNumber(x)) return x->valuedouble;
    return x ? jnum__(x, key) : NAN;
}

static void job__fill(mbrl_job *job, cJSON *j) {
    char id[64];
    snprintf(id, sizeof id, "%s", job->id);
    memset(job, 0, sizeof *job);
    job->json = j;
    const char *s = jstr__(j, "id");
    if (!s) s = jstr__(j, "job");
    snprintf(job->id, sizeof job->id, "%s", s ? s : id);
    s = jstr__(j, "state");
    if (!s) s = jstr__(j, "status");
    snprintf(job->state, sizeof job->state, "%s", s ? s : "");
    /* mbrld: "epoch" (epochs run), "epochs": [{"epoch", "train_loss": [per
     * member], "holdout_loss": [per member]}, ..], and when finished
     * "result": {"epochs", "train_loss", "holdout_loss" (best per member)}. */
    const cJSON *hist = cJSON_GetObjectItemCaseSensitive(j, "epochs");
    if (!cJSON_IsArray(hist)) hist = cJSON_GetObjectItemCaseSensitive(j, "losses");
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result");
    job->epochs = (int)jlong__(j, "epoch", jlong__(res, "epochs", jlong__(j, "epochs", 0)));
    if (!job->epochs && cJSON_IsArray(hist)) job->epochs = cJSON_GetArraySize(hist);
    job->train_loss = jnum__(res, "train_loss");
    job->holdout_loss = jnum__(res, "holdout_loss");
    if (isnan(job->train_loss)) job->train_loss = jnum__(j, "train_loss");
    if (isnan(job->holdout_loss)) job->holdout_loss = jnum__(j, "holdout_loss");
    if (isnan(job->train_loss)) job->train_loss = jlast__(hist, "train_loss");
    if (isnan(job->holdout_loss)) job->holdout_loss = jlast__(hist, "holdout_loss");
    job->version = jlong__(j, "version", jlong__(res, "version", 0));
    if (!job->version) job->version = jlong__(j, "policy_version", 0); /* a policy job */
    s = jstr__(j, "message");
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    if (!s && cJSON_IsString(e)) s = e->valuestring;
    if (!s) s = jstr__(e, "message");
    snprintf(job->message, sizeof job->message, "%s", s ? s : "");
}

static mbrl_status train__impl(mbrl_client *c, const char *model, const mbrl_train_opts *o, int wait,
                               mbrl_job *job, mbrl_error *err) {
    err__clear(err);
    if (!c || !job) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and job are required");
    memset(job, 0, sizeof *job);
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/train", err);
    if (s != MBRL_OK) return s;
    char body[240];
    int k = snprintf(body, sizeof body, "{\"wait\":%s", wait ? "true" : "false");
    if (o && o->max_epochs > 0) k += snprintf(body + k, sizeof body - (size_t)k, ",\"max_epochs\":%d", o->max_epochs);
    if (o && o->patience) k += snprintf(body + k, sizeof body - (size_t)k, ",\"patience\":%d", o->patience > 0 ? o->patience : 0);
    if (o && o->batch_size > 0) k += snprintf(body + k, sizeof body - (size_t)k, ",\"batch_size\":%d", o->batch_size);
    if (o && o->lr > 0) k += snprintf(body + k, sizeof body - (size_t)k, ",\"lr\":%.9g", (double)o->lr);
    if (o && o->min_steps) k += snprintf(body + k, sizeof body - (size_t)k, ",\"min_steps\":%d", o->min_steps > 0 ? o->min_steps : 0);
    if (o && o->min_epochs) k += snprintf(body + k, sizeof body - (size_t)k, ",\"min_epochs\":%d", o->min_epochs > 0 ? o->min_epochs : 0);
    snprintf(body + k, sizeof body - (size_t)k, "}");
    long status;
    /* training with wait can take minutes: no request timeout for it */
    s = http__do(c, "POST", path, body, strlen(body), wait ? 24L * 3600 * 1000 : 0, &status, err);
    if (s != MBRL_OK) return s;
    cJSON *j = NULL;
    if ((s = parse__(c, &j, err)) != MBRL_OK) return s;
    job__fill(job, j);
    if (!job->id[0]) return fail__(err, MBRL_EPROTO, status, "bad_answer", "train answer has no job id");
    return MBRL_OK;
}

mbrl_status mbrl_train_start(mbrl_client *c, const char *model, const mbrl_train_opts *o,
                             mbrl_job *job, mbrl_error *err) {
    return train__impl(c, model, o, 0, job, err);
}

mbrl_status mbrl_train(mbrl_client *c, const char *model, const mbrl_train_opts *o, mbrl_job *job,
                       mbrl_error *err) {
    return train__impl(c, model, o, 1, job, err);
}

static mbrl_status policy__impl(mbrl_client *c, const char *model, const mbrl_policy_opts *o, int wait,
                                mbrl_job *job, mbrl_error *err) {
    err__clear(err);
    if (!c || !job) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and job are required");
    memset(job, 0, sizeof *job);
    if (o && o->algorithm && strcmp(o->algorithm, "mbpo") && strcmp(o->algorithm, "distill") &&
        strcmp(o->algorithm, "bptt"))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "algorithm must be mbpo, distill or bptt");
    if (o && (o->steps < 0 || !(o->time_budget >= 0) || !isfinite(o->time_budget)))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "steps and time_budget must be >= 0");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/policy/train", err);
    if (s != MBRL_OK) return s;
    char body[200];
    int k = snprintf(body, sizeof body, "{\"wait\":%s", wait ? "true" : "false");
    if (o && o->steps > 0) k += snprintf(body + k, sizeof body - (size_t)k, ",\"steps\":%ld", o->steps);
    if (o && o->time_budget > 0)
        k += snprintf(body + k, sizeof body - (size_t)k, ",\"time_budget\":%.9g", o->time_budget);
    if (o && o->algorithm) k += snprintf(body + k, sizeof body - (size_t)k, ",\"algorithm\":\"%s\"", o->algorithm);
    snprintf(body + k, sizeof body - (size_t)k, "}");
    long status;
    s = http__do(c, "POST", path, body, strlen(body), wait ? 24L * 3600 * 1000 : 0, &status, err);
    if (s != MBRL_OK) return s;
    cJSON *j = NULL;
    if ((s = parse__(c, &j, err)) != MBRL_OK) return s;
    job__fill(job, j);
    if (!job->id[0]) return fail__(err, MBRL_EPROTO, status, "bad_answer", "policy/train answer has no job id");
    return MBRL_OK;
}

mbrl_status mbrl_policy_train_start(mbrl_client *c, const char *model, const mbrl_policy_opts *o,
                                    mbrl_job *job, mbrl_error *err) {
    return policy__impl(c, model, o, 0, job, err);
}

mbrl_status mbrl_policy_train(mbrl_client *c, const char *model, const mbrl_policy_opts *o, mbrl_job *job,
                              mbrl_error *err) {
    return policy__impl(c, model, o, 1, job, err);
}

mbrl_status mbrl_job_get(mbrl_client *c, const char *model, const char *job_id, mbrl_job *job,
                         mbrl_error *err) {
    err__clear(err);
    if (!c || !job) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and job are required");
    if (!name__ok(job_id)) {
        memset(job, 0, sizeof *job);
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "bad job id");
    }
    char id[64];
    snprintf(id, sizeof id, "%s", job_id);
    mbrl_job_free(job);
    memset(job, 0, sizeof *job);
    snprintf(job->id, sizeof job->id, "%s", id);
    char suffix[96], path[192];
    snprintf(suffix, sizeof suffix, "/jobs/%s", id);
    mbrl_status s = path__(path, sizeof path, model, suffix, err);
    long status;
    if (s == MBRL_OK) s = http__retry(c, "GET", path, NULL, 0, &status, err);
    cJSON *j = NULL;
    if (s == MBRL_OK) s = parse__(c, &j, err);
    if (s != MBRL_OK) return s;
    job__fill(job, j);
    return MBRL_OK;
}

static double now_ms__(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

mbrl_status mbrl_train_wait(mbrl_client *c, const char *model, const char *job_id, long poll_ms,
                            long timeout_ms, mbrl_job *job, mbrl_error *err) {
    if (!job) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "job is NULL");
    if (poll_ms <= 0) poll_ms = 100;
    double t0 = now_ms__();
    char id[64];
    snprintf(id, sizeof id, "%s", job_id ? job_id : "");
    memset(job, 0, sizeof *job);
    for (;;) {
        mbrl_status s = mbrl_job_get(c, model, id, job, err);
        if (s != MBRL_OK || mbrl_job_finished(job)) return s;
        if (timeout_ms > 0 && now_ms__() - t0 > timeout_ms)
            return fail__(err, MBRL_ETIMEOUT, 0, "timeout", "job %s still %s after %ld ms", id,
                          job->state, timeout_ms);
        sleep_ms__(poll_ms);
    }
}

/* ---- acting and predicting -------------------------------------------- */

mbrl_status mbrl_act(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                     const mbrl_act_opts *o, mbrl_act_result *out, mbrl_error *err) {
    err__clear(err);
    if (!c || !obs || !out || obs_dim < 1 || obs_dim > MBRL_MAX_DIM)
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client, obs (obs_dim in 1..%d) and out are required", MBRL_MAX_DIM);
    memset(out, 0, sizeof *out);
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/act", err);
    if (s != MBRL_OK) return s;
    mbrl__buf *q = &c->req;
    q->len = 0;
    int rc = buf__puts(q, "{\"obs\":");
    if (!rc) rc = buf__floats(q, obs, (size_t)obs_dim);
    if (!rc && o && o->session) {
        if (!name__ok(o->session)) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "bad session name");
        rc = buf__puts(q, ",\"session\":");
        if (!rc) rc = buf__json_str(q, o->session);
    }
    if (!rc && o && o->deadline_ms > 0) rc = buf__printf(q, ",\"deadline_ms\":%ld", o->deadline_ms);
    if (!rc && o && o->use_seed) {
        if (o->seed > 0x7fffffffffffffffULL) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "seed above 2^63 - 1");
        rc = buf__printf(q, ",\"seed\":%llu", o->seed);
    }
    if (!rc && o && o->pin) {
        if (o->version < 0) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "version %ld < 0", o->version);
        rc = buf__printf(q, ",\"version\":%ld", o->version);
    }
    if (!rc && o && o->method) {
        if (!name__ok(o->method)) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "bad planner method");
        rc = buf__printf(q, ",\"planner\":{\"method\":\"%s\"}", o->method);
        if (!rc && o->explore) rc = buf__puts(q, ",\"explore\":true");
    }
    if (!rc && o && o->goal && o->n_goal > 0) {
        rc = buf__printf(q, ",\"goal\":[{\"term\":%d,\"target\":", o->goal_term);
        if (!rc) rc = buf__floats(q, o->goal, (size_t)o->n_goal);
        if (!rc) rc = buf__puts(q, "}]");
    }
    if (!rc && o && o->planner) {
        cJSON *po = planner__json(o->planner);
        char *txt = po ? cJSON_PrintUnformatted(po) : NULL;
        if (po && !txt) rc = -1;
        if (txt) rc = buf__printf(q, ",\"planner\":%s", txt);
        free(txt);
        cJSON_Delete(po);
    }
    if (!rc && o && o->return_plan) rc = buf__puts(q, ",\"return_plan\":true");
    if (!rc && o && o->gains) rc = buf__puts(q, ",\"gains\":true");
    if (!rc) rc = buf__puts(q, "}");
    if (rc == -2) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "non-finite obs or goal");
    if (rc) return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "act body");
    long status;
    /* act has no side effect on the daemon's data: retrying is safe */
    s = http__retry(c, "POST", path, q->p, q->len, &status, err);
    cJSON *j = NULL;
    if (s == MBRL_OK) s = parse__(c, &j, err);
    if (s != MBRL_OK) return s;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "action");
    out->action_index = -1;
    if (cJSON_IsNumber(a)) { /* a discrete model */
        out->action_index = (int)a->valuedouble;
        out->act_dim = 0;
    } else {
        int n = cJSON_GetArraySize(a);
        if (!cJSON_IsArray(a) || n < 1 || n > MBRL_MAX_ACT) {
            cJSON_Delete(j);
            return fail__(err, MBRL_EPROTO, status, "bad_answer", "act answer has no action array");
        }
        const cJSON *x;
        int i = 0;
        cJSON_ArrayForEach(x, a) out->action[i++] = cJSON_IsNumber(x) ? (float)x->valuedouble : NAN;
        out->act_dim = n;
    }
    if (o && (o->return_plan || o->gains)) {
        out->extras = cJSON_CreateObject();
        static const char *const keys[] = {"plan", "gains", "nominal_obs"};
        for (int k = 0; out->extras && k < 3; k++) {
            cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(j, keys[k]);
            if (v) cJSON_AddItemToObject(out->extras, keys[k], v);
        }
    }
    const char *src = jstr__(j, "source");
    snprintf(out->source, sizeof out->source, "%s", src ? src : "");
    out->predicted_return = jnum__(j, "predicted_return");
    out->return_std = jnum__(j, "return_std");
    out->version = jlong__(j, "version", 0);
    out->plan_ms = jnum__(j, "plan_ms");
    const char *prec = jstr__(j, "precision");
    snprintf(out->precision, sizeof out->precision, "%s", prec ? prec : "");
    out->truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "truncated"));
    out->policy_version = jlong__(j, "policy_version", 0);
    cJSON_Delete(j);
    return MBRL_OK;
}

void mbrl_act_result_free(mbrl_act_result *out) {
    if (!out) return;
    cJSON_Delete(out->extras);
    out->extras = NULL;
}

/* Copies an array of `steps` rows of `dim` numbers (nested or flat) into out. */
static int rows__(const cJSON *v, int steps, int dim, float *out) {
    if (!out) return 0;
    if (!cJSON_IsArray(v)) return -1;
    int k = 0;
    const cJSON *r;
    cJSON_ArrayForEach(r, v) {
        if (cJSON_IsArray(r)) {
            const cJSON *x;
            cJSON_ArrayForEach(x, r) {
                if (k >= steps * dim || !cJSON_IsNumber(x)) return -1;
                out[k++] = (float)x->valuedouble;
            }
        } else if (cJSON_IsNumber(r)) {
            if (k >= steps * dim) return -1;
            out[k++] = (float)r->valuedouble;
        } else {
            return -1;
        }
    }
    return k == steps * dim ? 0 : -1;
}

static mbrl_status predict__impl(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                                 const float *actions, const int *indices, int steps, int act_dim,
                                 float *mean, float *std, float *reward_mean, mbrl_error *err) {
    err__clear(err);
    if (!c || !obs || (!actions && !indices) || obs_dim < 1 || obs_dim > MBRL_MAX_DIM || steps < 1 ||
        (!indices && (act_dim < 1 || act_dim > MBRL_MAX_ACT)))
        return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "bad predict arguments");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/predict", err);
    if (s != MBRL_OK) return s;
    mbrl__buf *q = &c->req;
    q->len = 0;
    int rc = buf__puts(q, "{\"obs\":");
    if (!rc) rc = buf__floats(q, obs, (size_t)obs_dim);
    if (!rc) rc = buf__puts(q, ",\"actions\":[");
    for (int t = 0; !rc && t < steps; t++) {
        if (t) rc = buf__puts(q, ",");
        if (!rc && indices) rc = buf__printf(q, "%d", indices[t]);
        else if (!rc) rc = buf__floats(q, actions + (size_t)t * act_dim, (size_t)act_dim);
    }
    if (!rc) rc = buf__puts(q, "]}");
    if (rc == -2) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "non-finite obs or action");
    if (rc) return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "predict body");
    long status;
    s = http__retry(c, "POST", path, q->p, q->len, &status, err);
    cJSON *j = NULL;
    if (s == MBRL_OK) s = parse__(c, &j, err);
    if (s != MBRL_OK) return s;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(j, "mean");
    const cJSON *sd = cJSON_GetObjectItemCaseSensitive(j, "std");
    const cJSON *rm = cJSON_GetObjectItemCaseSensitive(j, "reward_mean");
    if (rows__(m, steps, obs_dim, mean) || rows__(sd, steps, obs_dim, std) ||
        rows__(rm, steps, 1, reward_mean)) {
        cJSON_Delete(j);
        return fail__(err, MBRL_EPROTO, status, "bad_answer",
                      "predict answer lacks mean/std/reward_mean of %d x %d", steps, obs_dim);
    }
    cJSON_Delete(j);
    return MBRL_OK;
}

mbrl_status mbrl_predict(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                         const float *actions, int steps, int act_dim, float *mean, float *std,
                         float *reward_mean, mbrl_error *err) {
    return predict__impl(c, model, obs, obs_dim, actions, NULL, steps, act_dim, mean, std,
                         reward_mean, err);
}

mbrl_status mbrl_predict_discrete(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                                  const int *actions, int steps, float *mean, float *std,
                                  float *reward_mean, mbrl_error *err) {
    return predict__impl(c, model, obs, obs_dim, NULL, actions, steps, 0, mean, std, reward_mean, err);
}

/* ---- persistence ------------------------------------------------------- */

mbrl_status mbrl_model_snapshot(mbrl_client *c, const char *model, mbrl_error *err) {
    err__clear(err);
    if (!c) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client is NULL");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/snapshot", err);
    long status;
    if (s == MBRL_OK) s = http__do(c, "POST", path, "{}", 2, 0, &status, err);
    return s;
}

/* GET model + suffix (a binary answer) into `file`, written whole, then renamed. */
static mbrl_status file__get(mbrl_client *c, const char *model, const char *suffix, const char *file,
                             mbrl_error *err) {
    err__clear(err);
    if (!c || !file) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and file are required");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, suffix, err);
    long status;
    if (s == MBRL_OK) s = http__retry(c, "GET", path, NULL, 0, &status, err);
    if (s != MBRL_OK) return s;
    mbrl__buf tmp = {0};
    if (buf__printf(&tmp, "%s.tmp.%ld", file, (long)getpid()))
        return fail__(err, MBRL_ENOMEM, 0, "out_of_memory", "path");
    FILE *f = fopen(tmp.p, "wb");
    int ok = f && fwrite(c->resp.p ? c->resp.p : "", 1, c->resp.len, f) == c->resp.len;
    if (f && fclose(f) != 0) ok = 0;
    if (ok && rename(tmp.p, file) != 0) ok = 0;
    if (!ok) {
        int e = errno;
        remove(tmp.p);
        buf__free(&tmp);
        return fail__(err, MBRL_EIO, 0, "io_error", "cannot write %s: %s", file, strerror(e));
    }
    buf__free(&tmp);
    return MBRL_OK;
}

mbrl_status mbrl_model_export(mbrl_client *c, const char *model, const char *file, mbrl_error *err) {
    return file__get(c, model, "/export", file, err);
}

mbrl_status mbrl_model_import(mbrl_client *c, const char *model, const char *file, mbrl_error *err) {
    err__clear(err);
    if (!c || !file) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and file are required");
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/import", err);
    if (s != MBRL_OK) return s;
    /* mapped, not read into memory: an export can be as large as a model's
     * buffer (the daemon takes up to --max-import-mb, streamed to disk) */
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fail__(err, MBRL_EIO, 0, "io_error", "cannot read %s: %s", file, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail__(err, MBRL_EIO, 0, "io_error", "%s is not a regular file", file);
    }
    size_t n = (size_t)st.st_size;
    void *map = n ? mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (n && map == MAP_FAILED) return fail__(err, MBRL_EIO, 0, "io_error", "cannot map %s: %s", file, strerror(errno));
    long status;
    mbrl_status rs = http__do(c, "POST", path, n ? (const char *)map : "", n, 0, &status, err);
    if (n) munmap(map, n);
    return rs;
}

/* ---- versions ---------------------------------------------------------- */

void mbrl_versions_free(mbrl_versions *v) {
    if (!v) return;
    cJSON_Delete(v->json);
    memset(v, 0, sizeof *v);
}

mbrl_status mbrl_versions_get(mbrl_client *c, const char *model, mbrl_versions *out, mbrl_error *err) {
    err__clear(err);
    if (!c || !out) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and out are required");
    memset(out, 0, sizeof *out);
    char path[128];
    mbrl_status s = path__(path, sizeof path, model, "/versions", err);
    long status;
    if (s == MBRL_OK) s = http__retry(c, "GET", path, NULL, 0, &status, err);
    cJSON *j = NULL;
    if (s == MBRL_OK) s = parse__(c, &j, err);
    if (s != MBRL_OK) return s;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "versions");
    if (!cJSON_IsArray(a)) {
        cJSON_Delete(j);
        return fail__(err, MBRL_EPROTO, status, "bad_answer", "versions answer has no versions array");
    }
    out->current = jlong__(j, "current", 0);
    out->newest = jlong__(j, "newest", 0);
    const cJSON *x;
    cJSON_ArrayForEach(x, a) {
        if (out->n >= MBRL_MAX_VERSIONS) break;
        out->version[out->n] = jlong__(x, "version", 0);
        out->holdout_loss[out->n] = jnum__(x, "holdout_loss");
        out->train_loss[out->n] = jnum__(x, "train_loss");
        out->n++;
    }
    out->json = j;
    return MBRL_OK;
}

mbrl_status mbrl_version_promote(mbrl_client *c, const char *model, long version, mbrl_error *err) {
    err__clear(err);
    if (!c || version < 0) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client and a version >= 0 are required");
    char suffix[64], path[160];
    snprintf(suffix, sizeof suffix, "/versions/%ld/promote", version);
    mbrl_status s = path__(path, sizeof path, model, suffix, err);
    long status;
    /* promoting the current version again succeeds: safe to retry */
    if (s == MBRL_OK) s = http__retry(c, "POST", path, "{}", 2, &status, err);
    return s;
}

mbrl_status mbrl_version_latest(mbrl_client *c, const char *model, const char *file, mbrl_error *err) {
    return file__get(c, model, "/versions/latest", file, err);
}

/* ---- health ------------------------------------------------------------ */

mbrl_status mbrl_health(mbrl_client *c, mbrl_error *err) {
    err__clear(err);
    if (!c) return fail__(err, MBRL_EINVAL, 0, "invalid_argument", "client is NULL");
    long status;
    return http__do(c, "GET", "/healthz", NULL, 0, 0, &status, err);
}

mbrl_status mbrl_wait_ready(mbrl_client *c, long timeout_ms, mbrl_error *err) {
    double t0 = now_ms__();
    for (;;) {
        mbrl_status s = mbrl_health(c, err);
        if (s == MBRL_OK || now_ms__() - t0 > timeout_ms) return s;
        sleep_ms__(50);
    }
}
