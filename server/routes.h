/* routes.h: the static route table {method, pattern, max_body, handler,
 * scope} and
 * what a handler sees. The HTTP layer (http.c) does the common work before a
 * handler runs: 404 vs 405 (with Allow), auth, the body cap (413), reading
 * the body, rejecting a body where none is allowed, parsing the JSON once
 * (depth, finiteness). A handler gets a parsed tree and path arguments and
 * fills a response or an error; it never sees chunks.
 * Not for: the handlers' own logic (api_*.c). */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "auth.h"
#include "errors.h"

typedef struct srv_app srv_app;

#define SRV_MAX_ARGS 2
#define SRV_ARG_MAX 80

typedef struct {
    srv_app *app;
    int route;                             /* index into srv_routes */
    char args[SRV_MAX_ARGS][SRV_ARG_MAX];  /* path arguments in pattern order */
    const cJSON *body;                     /* parsed body; an empty object when none was sent */
    const char *raw;                       /* raw_body routes: the bytes as sent (raw_len), */
    size_t raw_len;                        /* body is then an empty object */
    /* 1 once the client has gone away (closed or reset its connection):
     * for a parked answer's owner to drop work nobody waits for. Valid
     * until the parked answer is ready (srv_later's wake) or released;
     * callable from any thread. */
    int (*gone)(void *gone_ctx);
    void *gone_ctx;
    const char *if_none_match;             /* the If-None-Match header, or NULL */
} srv_req;

/* An answer that is not ready yet (a training job's "wait": true, later a
 * queued plan). The HTTP layer suspends the connection, so no worker thread
 * waits, and calls:
 *   arm(obj, wake, wake_ctx): register wake(wake_ctx), to be called once
 *       from any thread when the answer is ready. Returns 0 when registered,
 *       1 when it is ready already (wake is then never called).
 *   answer(obj, resp, e): fill the answer once ready (the handler's http
 *       status and location stay unless it sets them); 0, or -1 with e.
 *   release(obj): drop obj, called exactly once when the request ends.
 * The handler hands over one reference to obj. */
typedef struct srv_resp srv_resp;
typedef struct {
    void *obj;
    int (*arm)(void *obj, void (*wake)(void *), void *wake_ctx);
    int (*answer)(void *obj, srv_resp *resp, srv_err *e);
    void (*release)(void *obj);
} srv_later;

struct srv_resp {
    int http;            /* 200 unless set */
    cJSON *json;         /* answer, owned (freed by the HTTP layer) */
    char *text;          /* or a text answer (malloc'd, owned) ... */
    const char *static_text; /* ... or static text, not freed */
    size_t text_len;
    const char *content_type;
    char location[256];  /* Location header if set */
    int replay;          /* idempotent replay: adds X-Idempotent-Replay */
    char etag[64];       /* ETag header if set (a 304 carries no body) */
    srv_later later;     /* set (later.obj non-NULL) to answer later */
};

/* 0 with resp filled, or -1 with e filled. */
typedef int (*srv_handler)(srv_req *req, srv_resp *resp, srv_err *e);

#define SRV_RAW_MEM 1
#define SRV_RAW_FILE 2

#define SRV_BODY_NONE 0L     /* no body allowed (GET, DELETE) */
#define SRV_BODY_DEFAULT -1L /* up to --max-body */

typedef struct {
    const char *method;
    const char *pattern; /* "/v1/models/{m}/jobs/{id}": {x} matches one segment */
    long max_body;
    srv_handler handler;
    unsigned scope;      /* SRV_SCOPE_*: what the bearer token must grant (with
                          * --tokens); SRV_SCOPE_PUBLIC: none (health probes) */
    int raw_body;        /* SRV_RAW_MEM: the handler gets req.raw (bytes in memory, up to
                          * max_body); SRV_RAW_FILE: the body is streamed to an unlinked
                          * temporary file (in --data-dir, else $TMPDIR or /tmp) up to
                          * --max-import-mb and req.raw maps it read-only (uploads) */
} srv_route;

extern const srv_route srv_routes[];
extern const int srv_n_routes;

/* Finds the route for (method, path). Returns the index, or -1 with *status
 * SRV_E_NOT_FOUND_ROUTE, or SRV_E_METHOD with the allowed methods in allow
 * ("GET, DELETE"). args: (SRV_MAX_ARGS, SRV_ARG_MAX). */
/* Runs route's handler. An answer during whose making a cJSON allocation
 * failed (alloc.h) is dropped for 503 out_of_memory: never a partial 200.
 * The handler's own contract otherwise. */
int routes_call(int route, srv_req *req, srv_resp *resp, srv_err *e);

int routes_match(const char *method, const char *path, char args[][SRV_ARG_MAX], int *status,
                 char *allow, size_t allow_sz);

#endif
