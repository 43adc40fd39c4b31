/* http.c: libmicrohttpd glue and the common request work (see http.h and
 * routes.h). A request's life:
 *   first callback  -> context, route (404/405), auth (the route's scope:
 *                      401/403/429, see auth.h), body rules
 *                      (no body where none is allowed; Content-Length above
 *                      the cap -> 413 before reading anything)
 *   upload chunks   -> appended up to the cap (a chunked body that grows
 *                      past it -> 413, the rest is discarded); an import's
 *                      go to an unlinked temporary file (SRV_RAW_FILE)
 *   last callback   -> depth check, cJSON_ParseWithLength, finiteness,
 *                      handler, answer
 *   completed       -> metrics, log line, context freed.
 * Connections: --max-connections-per-ip (MHD's own count), the accept
 * policy (none while shutting down), --request-timeout (the reaper below),
 * TLS with --tls-priorities (1.2 at least). */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <pthread.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "alloc.h"
#include "app.h"
#include "follow.h"
#include "jsonv.h"
#include "log.h"
#include "routes.h"

/* One open connection, for --request-timeout: while `reading`, its next
 * request (headers and body) must be complete by `deadline` (monotonic s),
 * counted from the connection's start or its previous answer; the reaper
 * shuts the socket down past it. Entries live from MHD's STARTED to its
 * CLOSED notification, which comes before MHD closes the fd, and both that
 * removal and the reaper's shutdown() happen under http__conns.mu, so a
 * reused fd is never shut down by mistake. */
typedef struct http_conn {
    struct http_conn *prev, *next;
    int fd;
    int reading;
    double deadline;
} http_conn;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    http_conn *head;
    double timeout; /* s; 0 = off */
    int stop, running;
    pthread_t th;
    atomic_long reaped;
} http__conns = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0};

typedef struct {
    srv_app *app;
    double t0;
    int route;
    char method[8];
    char url[160];
    srv_req req;
    srv_err err;          /* set when the request failed before its handler */
    char allow[64];       /* for 405 */
    char *body;
    size_t len, cap;
    size_t limit;
    int fd;               /* SRV_RAW_FILE: the unlinked temporary file, or -1 */
    void *map;            /* ... mapped read-only for the handler (len bytes) */
    int http;             /* status answered, for metrics */
    struct MHD_Connection *conn;
    srv_later later;      /* parked until later.arm's wake (see routes.h) */
    int later_http;
    char location[256];
    atomic_int resumed;
    srv_auth_result auth; /* the token's label; WWW-Authenticate, Retry-After */
    http_conn *hc;        /* its connection's deadline entry (NULL: off) */
    int sock;             /* the connection's socket, for http__gone */
    char etag[64];        /* the handler's ETag, sent with its answer */
} http_ctx;

/* The request of hc is complete (or a new one may start: keep-alive). */
static void http__conn_reading(http_conn *hc, int reading) {
    if (!hc) return;
    pthread_mutex_lock(&http__conns.mu);
    hc->reading = reading;
    if (reading) hc->deadline = srv_now() + http__conns.timeout;
    pthread_mutex_unlock(&http__conns.mu);
}

static enum MHD_Result http__send_json(struct MHD_Connection *c, http_ctx *x, int status,
                                       cJSON *json, const char *location, int replay,
                                       const char *allow);
static enum MHD_Result http__send_err(struct MHD_Connection *c, http_ctx *x, const srv_err *e);

/* From any thread while parked: has the client closed or reset the
 * connection? (A client that only shuts down its sending side looks gone
 * too; HTTP clients do not.) */
static int http__gone(void *ctx) {
    const http_ctx *x = ctx;
    if (x->sock < 0) return 0;
    struct pollfd p = {.fd = x->sock, .events = POLLRDHUP};
    return poll(&p, 1, 0) == 1 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* From any thread, once: the parked answer is ready, wake the connection. */
static void http__wake(void *ctx) {
    http_ctx *x = ctx;
    atomic_store(&x->resumed, 1);
    MHD_resume_connection(x->conn);
}

/* The parked answer, once ready. */
static enum MHD_Result http__send_later(struct MHD_Connection *c, http_ctx *x) {
    srv_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.http = x->later_http;
    memcpy(resp.location, x->location, sizeof resp.location);
    enum MHD_Result r;
    unsigned long f0 = srv_alloc_failures();
    int arc = x->later.answer(x->later.obj, &resp, &x->err);
    if (arc == 0 && srv_alloc_failures() != f0) { /* a partial answer: 503, never a short 200 */
        cJSON_Delete(resp.json);
        resp.json = NULL;
        arc = srv_fail(&x->err, MB_ENOMEM, NULL, "out of memory while building the answer");
    }
    if (arc != 0) {
        if (x->err.status == MB_OK) srv_fail(&x->err, SRV_E_INTERNAL, NULL, "deferred answer failed");
        r = http__send_err(c, x, &x->err);
    } else {
        r = http__send_json(c, x, resp.http, resp.json, resp.location, resp.replay, NULL);
    }
    cJSON_Delete(resp.json);
    return r;
}

static enum MHD_Result http__queue(struct MHD_Connection *c, http_ctx *x, int status,
                                   struct MHD_Response *resp, const char *ctype) {
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (atomic_load(&x->app->shutting_down))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (x->etag[0] && (status == 200 || status == 304)) MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, x->etag);
    x->http = status;
    /* counted when answered, so a scrape right after an answer sees it */
    metrics_request(&x->app->metrics, x->route, status, srv_now() - x->t0);
    enum MHD_Result r = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return r;
}

static enum MHD_Result http__send_json(struct MHD_Connection *c, http_ctx *x, int status,
                                       cJSON *json, const char *location, int replay,
                                       const char *allow) {
    char *text = json ? cJSON_PrintUnformatted(json) : NULL;
    if (!text) {
        static const char oom[] =
            "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\",\"field\":null}}";
        status = 503;
        struct MHD_Response *r =
            MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
        return http__queue(c, x, status, r, "application/json");
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(text);
        return MHD_NO;
    }
    if (location && *location) MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    if (replay) MHD_add_response_header(r, "X-Idempotent-Replay", "true");
    if (allow && *allow) MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    if ((status == 401 || status == 403) && x->auth.www_authenticate[0])
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, x->auth.www_authenticate);
    /* 503s (disk errors, out of memory, not ready) are worth retrying soon;
     * a throttled address for the rest of its window */
    int after = x->auth.retry_after > 0 ? x->auth.retry_after : x->err.retry_after; /* throttle, queue */
    if (status == 503 || (status == 429 && after > 0)) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", after > 0 ? after : 1);
        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
    }
    return http__queue(c, x, status, r, "application/json");
}

static enum MHD_Result http__send_err(struct MHD_Connection *c, http_ctx *x, const srv_err *e) {
    cJSON *j = srv_err_json(e);
    int status = srv_err_http(e->status);
    if (status >= 500)
        srv_log(SRV_LOG_WARN, "request failed", "method=%s url=%s label=%s status=%d code=%s message=\"%s\"",
                x->method, x->url, x->auth.label ? x->auth.label : "-", status, srv_err_code(e->status),
                e->message);
    enum MHD_Result r = http__send_json(c, x, status, j, NULL, 0,
                                        e->status == SRV_E_METHOD ? x->allow : NULL);
    cJSON_Delete(j);
    return r;
}

/* An upload's file: unnamed (O_TMPFILE, or a name unlinked at once), in the
 * data directory (the disk meant for big files), else $TMPDIR or /tmp. */
static void http__tmpfile(http_ctx *x) {
    const char *dir = x->app->cfg.data_dir[0] ? x->app->cfg.data_dir : getenv("TMPDIR");
    if (!dir || !*dir) dir = "/tmp";
    x->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (x->fd < 0) {
        char path[SRV_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/.mbrld-upload-XXXXXX", dir);
        x->fd = mkostemp(path, O_CLOEXEC);
        if (x->fd >= 0) unlink(path);
    }
    if (x->fd < 0) srv_fail(&x->err, MB_EIO, NULL, "cannot store the upload in %s: %s", dir, strerror(errno));
}

/* The first callback of a request: everything decided from the headers. */
static void http__begin(struct MHD_Connection *c, http_ctx *x, const char *url, const char *method) {
    srv_app *app = x->app;
    int st;
    x->route = routes_match(method, url, x->req.args, &st, x->allow, sizeof x->allow);
    if (x->route < 0) {
        if (st == SRV_E_METHOD)
            srv_fail(&x->err, st, NULL, "%s is not allowed on %s (allowed: %s)", method, url, x->allow);
        else srv_fail(&x->err, st, NULL, "no such path: %s", url);
        return;
    }
    const srv_route *rt = &srv_routes[x->route];
    if (rt->scope != SRV_SCOPE_PUBLIC && auth_enabled(&app->auth)) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (auth_check(&app->auth, MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                       ci ? ci->client_addr : NULL, rt->scope, &x->auth, &x->err) != 0)
            return;
    }
    if (follow_refuses(app, x->route, &x->err)) return; /* a follower answers no write (follow.h) */
    x->req.if_none_match = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    long cap = rt->max_body == SRV_BODY_DEFAULT ? app->cfg.max_body
                                                : (rt->max_body < app->cfg.max_body ? rt->max_body : app->cfg.max_body);
    if (rt->raw_body == SRV_RAW_FILE) cap = app->cfg.max_import_mb * 1048576L;
    x->limit = (size_t)cap;
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long n = 0;
    if (cl) {
        char *end;
        n = strtoull(cl, &end, 10);
        if (end == cl || *end) {
            srv_fail(&x->err, MB_EINVAL, NULL, "bad Content-Length");
            return;
        }
    }
    if (cap == 0 && (n > 0 || te)) {
        srv_fail(&x->err, MB_EINVAL, NULL, "%s %s takes no body", rt->method, rt->pattern);
        return;
    }
    if (n > (unsigned long long)cap) {
        srv_fail(&x->err, SRV_E_TOO_LARGE, NULL, "body of %llu bytes exceeds the limit of %ld", n, cap);
        return;
    }
    if (rt->raw_body == SRV_RAW_FILE) {
        if (n > 0 || te) http__tmpfile(x);
        return;
    }
    if (n > 0) {
        x->body = malloc((size_t)n + 1);
        if (!x->body) srv_fail(&x->err, MB_ENOMEM, NULL, "out of memory");
        else x->cap = (size_t)n + 1;
    }
}

static void http__append(http_ctx *x, const char *data, size_t n) {
    if (x->len + n > x->limit) {
        srv_fail(&x->err, SRV_E_TOO_LARGE, NULL, "body exceeds the limit of %zu bytes", x->limit);
        free(x->body);
        x->body = NULL;
        x->len = x->cap = 0;
        if (x->fd >= 0) close(x->fd);
        x->fd = -1;
        return;
    }
    if (x->fd >= 0) { /* streamed to its file */
        for (size_t off = 0; off < n;) {
            ssize_t w = write(x->fd, data + off, n - off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                srv_fail(&x->err, MB_EIO, NULL, "cannot store the upload: %s", w < 0 ? strerror(errno) : "short write");
                close(x->fd);
                x->fd = -1;
                return;
            }
            off += (size_t)w;
        }
        x->len += n;
        return;
    }
    if (x->len + n + 1 > x->cap) {
        size_t cap = x->cap ? x->cap : 4096;
        while (cap < x->len + n + 1) cap *= 2;
        if (cap > x->limit + 1) cap = x->limit + 1;
        char *p = realloc(x->body, cap);
        if (!p) {
            srv_fail(&x->err, MB_ENOMEM, NULL, "out of memory");
            return;
        }
        x->body = p;
        x->cap = cap;
    }
    memcpy(x->body + x->len, data, n);
    x->len += n;
}

static void http__unmap(http_ctx *x) {
    if (x->map) munmap(x->map, x->len);
    x->map = NULL;
    if (x->fd >= 0) close(x->fd); /* unlinked: its blocks go with it */
    x->fd = -1;
}

static enum MHD_Result http__finish(struct MHD_Connection *c, http_ctx *x) {
    srv_err *e = &x->err;
    cJSON *root = NULL;
    if (srv_routes[x->route].raw_body == SRV_RAW_FILE && x->fd >= 0 && x->len > 0) {
        x->map = mmap(NULL, x->len, PROT_READ, MAP_PRIVATE, x->fd, 0);
        if (x->map == MAP_FAILED) {
            x->map = NULL;
            srv_fail(e, MB_ENOMEM, NULL, "cannot map the upload: %s", strerror(errno));
            return http__send_err(c, x, e);
        }
    }
    if (srv_routes[x->route].raw_body) { /* an upload, or a decoder of its own: the handler reads the bytes */
        root = cJSON_CreateObject();
        x->req.raw = x->map ? x->map : x->body ? x->body : "";
        x->req.raw_len = x->len;
    } else if (x->len == 0) {
        root = cJSON_CreateObject();
    } else if (!jv_depth_ok(x->body, x->len, JV_MAX_DEPTH)) {
        srv_fail(e, SRV_E_BAD_JSON, NULL, "JSON nested deeper than %d levels", JV_MAX_DEPTH);
        return http__send_err(c, x, e);
    } else {
        const char *end = NULL;
        unsigned long f0 = srv_alloc_failures();
        root = cJSON_ParseWithLengthOpts(x->body, x->len, &end, 0);
        if (!root && srv_alloc_failures() != f0) {
            srv_fail(e, MB_ENOMEM, NULL, "out of memory");
            return http__send_err(c, x, e);
        }
        if (!root) {
            srv_fail(e, SRV_E_BAD_JSON, NULL, "malformed JSON near byte %ld",
                     end ? (long)(end - x->body) : 0L);
            return http__send_err(c, x, e);
        }
        /* trailing garbage after the value */
        while (end && end < x->body + x->len && (*end == ' ' || *end == '\n' || *end == '\r' || *end == '\t'))
            end++;
        if (end && end < x->body + x->len) {
            cJSON_Delete(root);
            srv_fail(e, SRV_E_BAD_JSON, NULL, "unexpected text after the JSON value at byte %ld",
                     (long)(end - x->body));
            return http__send_err(c, x, e);
        }
    }
    if (!srv_routes[x->route].raw_body) {
        free(x->body);
        x->body = NULL;
    }
    if (!root) {
        srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        return http__send_err(c, x, e);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        srv_fail(e, MB_EINVAL, NULL, "the body must be a JSON object");
        return http__send_err(c, x, e);
    }
    if (jv_all_finite(root, e) != 0) {
        cJSON_Delete(root);
        return http__send_err(c, x, e);
    }
    srv_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.http = 200;
    x->req.body = root;
    int rc = routes_call(x->route, &x->req, &resp, e);
    cJSON_Delete(root);
    x->req.body = NULL;
    x->req.raw = NULL;
    free(x->body); /* raw bodies live until here */
    x->body = NULL;
    http__unmap(x);
    memcpy(x->etag, resp.etag, sizeof x->etag);
    enum MHD_Result r;
    if (rc == 0 && resp.later.obj) {
        /* answer later: suspended first, so a wake from another thread
         * always finds the connection suspended; no worker blocks */
        x->later = resp.later;
        x->later_http = resp.http;
        x->conn = c;
        memcpy(x->location, resp.location, sizeof x->location);
        cJSON_Delete(resp.json);
        free(resp.text);
        MHD_suspend_connection(c);
        if (x->later.arm(x->later.obj, http__wake, x) != 0) http__wake(x); /* ready already */
        return MHD_YES;
    } else if (rc != 0) {
        if (e->status == MB_OK) srv_fail(e, SRV_E_INTERNAL, NULL, "handler failed without a reason");
        r = http__send_err(c, x, e);
    } else if (resp.json) {
        r = http__send_json(c, x, resp.http, resp.json, resp.location, resp.replay, NULL);
    } else {
        struct MHD_Response *mr =
            resp.text ? MHD_create_response_from_buffer(resp.text_len, resp.text, MHD_RESPMEM_MUST_FREE)
                      : MHD_create_response_from_buffer(resp.text_len, (void *)resp.static_text,
                                                        MHD_RESPMEM_PERSISTENT);
        if (!mr) free(resp.text);
        resp.text = NULL;
        r = http__queue(c, x, resp.http, mr, resp.content_type ? resp.content_type : "text/plain");
    }
    cJSON_Delete(resp.json);
    free(resp.text);
    return r;
}

static enum MHD_Result http__access(void *cls, struct MHD_Connection *c, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **con_cls) {
    (void)version;
    srv_app *app = cls;
    http_ctx *x = *con_cls;
    if (!x) {
        x = calloc(1, sizeof *x);
        if (!x) return MHD_NO;
        x->app = app;
        x->t0 = srv_now();
        x->route = -1;
        x->fd = -1;
        x->req.app = app;
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        x->sock = ci ? ci->connect_fd : -1;
        x->req.gone = http__gone;
        x->req.gone_ctx = x;
        snprintf(x->method, sizeof x->method, "%s", method);
        snprintf(x->url, sizeof x->url, "%s", url);
        *con_cls = x;
        if (http__conns.timeout > 0) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
            x->hc = ci ? ci->socket_context : NULL;
        }
        atomic_fetch_add(&app->in_flight, 1);
        http__begin(c, x, url, method);
        if (x->err.status) return http__send_err(c, x, &x->err); /* before reading any body */
        x->req.route = x->route;
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!x->err.status) http__append(x, upload_data, *upload_data_size);
        *upload_data_size = 0; /* after an error the rest is read and dropped */
        return MHD_YES;
    }
    if (x->hc) { /* the whole request is in: its deadline no longer applies */
        http__conn_reading(x->hc, 0);
        x->hc = NULL;
    }
    if (x->http) return MHD_YES; /* answered already */
    if (x->later.obj) { /* parked: answer once woken */
        if (!atomic_load(&x->resumed)) return MHD_YES;
        return http__send_later(c, x);
    }
    if (x->err.status) return http__send_err(c, x, &x->err);
    return http__finish(c, x);
}

static void http__completed(void *cls, struct MHD_Connection *c, void **con_cls,
                            enum MHD_RequestTerminationCode toe) {
    srv_app *app = cls;
    http_ctx *x = *con_cls;
    if (!x) return;
    double dt = srv_now() - x->t0;
    if (!x->http) metrics_request(&app->metrics, x->route, 0, dt); /* never answered */
    srv_log(SRV_LOG_DEBUG, "request", "method=%s url=%s label=%s status=%d ms=%.3f toe=%d", x->method,
            x->url, x->auth.label ? x->auth.label : "-", x->http, dt * 1e3, (int)toe);
    if (x->later.obj) x->later.release(x->later.obj);
    http__unmap(x);
    if (http__conns.timeout > 0) { /* keep-alive: the next request's clock starts */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
        if (ci && ci->socket_context) http__conn_reading(ci->socket_context, 1);
    }
    free(x->body);
    free(x);
    *con_cls = NULL;
    atomic_fetch_sub(&app->in_flight, 1);
}

/* libmicrohttpd's messages, at most 5 a second: a flood of connections over
 * --max-connections-per-ip would otherwise write one line each (1,372 lines
 * in 10 s from one slowhttptest run); what was left out is counted in the
 * next line that gets through. */
static void http__mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    static double window;
    static int in_window;
    static long dropped;
    pthread_mutex_lock(&mu);
    double now = srv_now();
    if (now - window >= 1.0) window = now, in_window = 0;
    int pass = in_window < 5;
    long was_dropped = 0;
    if (pass) {
        in_window++;
        was_dropped = dropped;
        dropped = 0;
    } else {
        dropped++;
    }
    pthread_mutex_unlock(&mu);
    if (!pass) return;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r')) msg[--n] = 0;
    srv_log(SRV_LOG_WARN, msg, "source=libmicrohttpd suppressed_before=%ld", was_dropped);
}

/* MHD_OPTION_NOTIFY_CONNECTION: the deadline entries (--request-timeout). */
static void http__notify_conn(void *cls, struct MHD_Connection *c, void **socket_context,
                              enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        http_conn *hc = calloc(1, sizeof *hc);
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!hc || !ci) { /* no deadline for this one; MHD's idle timeout still holds */
            free(hc);
            *socket_context = NULL;
            return;
        }
        hc->fd = ci->connect_fd;
        hc->reading = 1;
        pthread_mutex_lock(&http__conns.mu);
        hc->deadline = srv_now() + http__conns.timeout;
        hc->next = http__conns.head;
        if (hc->next) hc->next->prev = hc;
        http__conns.head = hc;
        pthread_mutex_unlock(&http__conns.mu);
        *socket_context = hc;
    } else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
        http_conn *hc = *socket_context;
        pthread_mutex_lock(&http__conns.mu);
        if (hc->prev) hc->prev->next = hc->next;
        else http__conns.head = hc->next;
        if (hc->next) hc->next->prev = hc->prev;
        pthread_mutex_unlock(&http__conns.mu);
        free(hc);
        *socket_context = NULL;
    }
}

/* Several times a second: a connection still reading its request past the
 * deadline is shut down (both ways); its worker then sees the end of the
 * stream and closes it. Slow headers and slow bodies alike, however often
 * they send a byte (MHD's --conn-timeout only counts idle time). */
static void *http__reaper(void *arg) {
    (void)arg;
    pthread_mutex_lock(&http__conns.mu);
    while (!http__conns.stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 200 * 1000 * 1000;
        if (ts.tv_nsec >= 1000000000L) ts.tv_sec++, ts.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&http__conns.cv, &http__conns.mu, &ts);
        double now = srv_now();
        for (http_conn *hc = http__conns.head; hc; hc = hc->next)
            if (hc->reading && now > hc->deadline) {
                shutdown(hc->fd, SHUT_RDWR);
                hc->reading = 0; /* once */
                atomic_fetch_add(&http__conns.reaped, 1);
            }
    }
    pthread_mutex_unlock(&http__conns.mu);
    return NULL;
}

/* The accept policy: while shutting down, a new connection is closed
 * at once. This is the drain's "stop accepting", not MHD_quiesce_daemon:
 * with epoll and a thread pool that races a worker adding or removing the
 * listen socket from its epoll set at its share of the connection limit,
 * and libmicrohttpd 0.9.75 then aborts the process ("Failed to remove listen
 * FD from epoll set"). The listen socket stays with MHD, which closes it in
 * MHD_stop_daemon. */
static enum MHD_Result http__accept(void *cls, const struct sockaddr *addr, socklen_t addrlen) {
    (void)addr, (void)addrlen;
    srv_app *app = cls;
    return atomic_load(&app->shutting_down) ? MHD_NO : MHD_YES;
}

long http_reaped(void) { return atomic_load(&http__conns.reaped); }

int http_start(srv_app *app, char *err, size_t err_sz) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_ALLOW_SUSPEND_RESUME;
    flags |= MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES ? MHD_USE_EPOLL : MHD_USE_AUTO;
    int tls = app->tls_cert != NULL;
    /* TLS 1.2 at least, whatever --tls-priorities says: GnuTLS applies the
     * items in order, so the removals appended last win. */
    char prio[sizeof app->cfg.tls_priorities + 64];
    snprintf(prio, sizeof prio, "%s:-VERS-SSL3.0:-VERS-TLS1.0:-VERS-TLS1.1", app->cfg.tls_priorities);
    if (tls) {
        if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
            snprintf(err, err_sz, "this libmicrohttpd was built without TLS support");
            return -1;
        }
        flags |= MHD_USE_TLS;
    }
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)http__mhd_log, NULL}, /* first, or MHD warns */
        {MHD_OPTION_LISTEN_SOCKET, app->listen_fd, NULL},
        {MHD_OPTION_THREAD_POOL_SIZE, app->cfg.threads > 1 ? app->cfg.threads : 0, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, app->cfg.max_connections, NULL},
        {MHD_OPTION_CONNECTION_TIMEOUT, app->cfg.conn_timeout, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, app->cfg.max_connections_per_ip, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)http__completed, app},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)http__notify_conn, NULL},
        {tls ? MHD_OPTION_HTTPS_MEM_KEY : MHD_OPTION_END, 0, app->tls_key},
        {MHD_OPTION_HTTPS_MEM_CERT, 0, app->tls_cert},
        {MHD_OPTION_HTTPS_PRIORITIES, 0, prio},
        {MHD_OPTION_END, 0, NULL},
    };
    http__conns.timeout = (double)app->cfg.request_timeout;
    app->daemon = MHD_start_daemon(flags, 0, http__accept, app, http__access, app, MHD_OPTION_ARRAY, opts,
                                   MHD_OPTION_END);
    if (app->daemon && http__conns.timeout > 0) {
        http__conns.stop = 0;
        if (pthread_create(&http__conns.th, NULL, http__reaper, NULL) != 0) {
            MHD_stop_daemon(app->daemon);
            app->daemon = NULL;
            app->listen_fd = -1; /* MHD closed it */
            snprintf(err, err_sz, "cannot start the request-deadline thread");
            return -1;
        }
        http__conns.running = 1;
    }
    if (!app->daemon) {
        snprintf(err, err_sz, "libmicrohttpd failed to start (see the log above)%s",
                 tls ? "; check --tls-cert, --tls-key and --tls-priorities" : "");
        return -1;
    }
    return 0;
}


unsigned http_connections(srv_app *app) {
    if (!app->daemon) return 0;
    const union MHD_DaemonInfo *i = MHD_get_daemon_info(app->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
    return i ? i->num_connections : 0;
}

void http_stop(srv_app *app) {
    if (app->daemon) {
        MHD_stop_daemon(app->daemon); /* closes the listen socket too */
        app->listen_fd = -1;
    }
    app->daemon = NULL;
    if (http__conns.running) {
        pthread_mutex_lock(&http__conns.mu);
        http__conns.stop = 1;
        pthread_cond_broadcast(&http__conns.cv);
        pthread_mutex_unlock(&http__conns.mu);
        pthread_join(http__conns.th, NULL);
        http__conns.running = 0;
    }
}
