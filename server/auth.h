/* auth.h: bearer tokens with scopes (--tokens FILE), the throttle of failed
 * attempts, and the per-label counters behind /metrics.
 *
 * The file: one token per line,
 *     <64 hex digits: SHA-256 of the token> <scopes, comma-separated> [label]
 * scopes from read, act, write, admin; the label (letters, digits, . _ - : @,
 * up to 63) names the token in logs and metrics (default "line-N"). Blank
 * lines and lines starting with '#' are ignored. A line of one field is an
 * old plain token: accepted with every scope (label "legacy-N"), with a
 * warning at start-up saying how to store its hash instead.
 *
 * A request names its token as "Authorization: Bearer <token>" (the scheme
 * in any case). The token is hashed and compared with every entry in time
 * independent of where, and whether, it matches. Answers (RFC 6750):
 *   no bearer token            401, WWW-Authenticate: Bearer
 *   an unknown token           401, WWW-Authenticate: Bearer error="invalid_token"
 *   a token without the scope  403 insufficient_scope,
 *                              WWW-Authenticate: Bearer error="insufficient_scope", scope="<s>"
 *   too many 401s from one address within the window (--auth-max-failures
 *   in --auth-fail-window s)   429 with Retry-After, until the window ends,
 *                              whatever token is sent
 * The throttle is a fixed table (SRV_AUTH_SLOTS addresses; IPv6 by /64), so
 * no request allocates; when full, the oldest window is dropped.
 * Not for: TLS (app.c), routing or which scope a route needs (routes.c). */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "errors.h"
#include "sbuf.h"

/* Scopes, as bits. A route needs one scope (routes.h), or none: public. */
enum {
    SRV_SCOPE_PUBLIC = 0,
    SRV_SCOPE_READ = 1,  /* GET routes, /metrics, export, openapi */
    SRV_SCOPE_ACT = 2,   /* act, predict */
    SRV_SCOPE_WRITE = 4, /* transitions, train, snapshot, job cancel */
    SRV_SCOPE_ADMIN = 8, /* create, delete, import */
    SRV_SCOPE_ALL = 15
};

#define SRV_AUTH_LABEL_MAX 64
#define SRV_AUTH_SLOTS 1024 /* addresses the throttle remembers */

typedef struct {
    unsigned char hash[32];
    unsigned scopes;
    char label[SRV_AUTH_LABEL_MAX];
    atomic_uint_fast64_t requests; /* accepted requests */
} srv_token;

typedef struct {
    unsigned char key[17]; /* family byte + address (IPv6: its /64) */
    double since;          /* window start, srv_now(); 0 = free */
    int failures;
} srv_auth_slot;

enum { SRV_AUTH_F_MISSING, SRV_AUTH_F_INVALID, SRV_AUTH_F_SCOPE, SRV_AUTH_F_THROTTLED, SRV_AUTH_F_N };

typedef struct {
    srv_token *tokens; /* (n) */
    int n;
    int max_failures;  /* per address and window; 0 = no throttle */
    double window;     /* s */
    pthread_mutex_t lock; /* the throttle table */
    int lock_init;
    srv_auth_slot slots[SRV_AUTH_SLOTS];
    atomic_uint_fast64_t failures[SRV_AUTH_F_N];
} srv_auth;

/* What auth_check decided, for the HTTP layer's headers and the log. */
typedef struct {
    const char *label;        /* the token's label once known, else NULL */
    char www_authenticate[128]; /* "" or the header's value (401, 403) */
    int retry_after;          /* s, for 429 */
} srv_auth_result;

/* Parses the text of a tokens file (source names it in errors); legacy
 * lines are logged as warnings. 0, or -1 with err (a malformed line, an
 * unknown scope, a repeated token, or no token at all). */
int auth_parse(srv_auth *a, const char *text, const char *source, char *err, size_t err_sz);
/* The throttle: more than max_failures 401s within window s -> 429. */
void auth_set_throttle(srv_auth *a, int max_failures, double window);
void auth_free(srv_auth *a);
/* 1 when tokens are required. */
int auth_enabled(const srv_auth *a);
/* "read", "act", "write", "admin" ("" for public, "?" for anything else). */
const char *auth_scope_name(unsigned scope);
/* header: the Authorization header's value, or NULL; addr: the client's
 * address (may be NULL: not throttled); scope: what the route needs. 0 when
 * allowed (res->label set when a token was checked); else -1 with e set
 * (SRV_E_UNAUTH, SRV_E_FORBIDDEN or SRV_E_THROTTLED) and res's headers. */
int auth_check(srv_auth *a, const char *header, const struct sockaddr *addr, unsigned scope,
               srv_auth_result *res, srv_err *e);
/* Prometheus lines: requests per label, failures by reason. */
void auth_metrics(srv_auth *a, sbuf *b);

#endif
