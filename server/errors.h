/* errors.h: the one place where statuses become HTTP answers.
 *
 * A handler that fails fills an srv_err with a status (an mb_status from
 * core/base/common.h, or one of the server-only codes below), a message and the
 * JSON path of the offending field ("obs[3]", "planner.elites"); the HTTP
 * layer turns it into {"error": {"code", "message", "field"}} with the status
 * from the table in errors.c. Nothing else maps statuses to HTTP codes.
 * Not for: logging (http.c logs 5xx answers). */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H

#include <cjson/cJSON.h>

#include "base/common.h"

/* Server-only codes, after the mb_status values. */
enum {
    SRV_E_BAD_JSON = 100,  /* 400 malformed JSON (or nested too deep) */
    SRV_E_NOT_FOUND_ROUTE, /* 404 no such path */
    SRV_E_METHOD,          /* 405 path exists, method does not */
    SRV_E_TOO_LARGE,       /* 413 body over the route's cap */
    SRV_E_UNAUTH,          /* 401 no bearer token, or an unknown one */
    SRV_E_FORBIDDEN,       /* 403 insufficient_scope: a known token without the route's scope */
    SRV_E_UNAVAILABLE,     /* 503 shutting down / not ready */
    SRV_E_LIMIT,           /* 429 too many models, sessions, ... */
    SRV_E_INTERNAL,        /* 500 a bug */
    SRV_E_THROTTLED,       /* 429 too many failed authentications from one address */
    SRV_E_DEADLINE,        /* 503 deadline_exceeded: no plan within the act's deadline */
    SRV_E_READ_ONLY        /* 409 a follower (--follow) answers no write */
};

typedef struct {
    int status;        /* mb_status or SRV_E_*; MB_OK = no error */
    char message[256];
    char field[128];   /* JSON path or "" */
    int retry_after;   /* s for a Retry-After header on 429/503 (0: the default) */
} srv_err;

/* Fills e (field may be NULL) and returns -1, so handlers can
 * `return srv_fail(e, MB_EINVAL, "obs", "...")`. */
int srv_fail(srv_err *e, int status, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* HTTP status and error code string for a status. */
int srv_err_http(int status);
const char *srv_err_code(int status);
/* {"error": {...}}; NULL on allocation failure. */
cJSON *srv_err_json(const srv_err *e);

#endif
