/* auth.c: scoped bearer tokens and the failure throttle (see auth.h). */
#include "auth.h"

#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/sha256.h"
#include "clock.h"
#include "log.h"

static const char *const auth__scope_names[] = {"read", "act", "write", "admin"};

const char *auth_scope_name(unsigned scope) {
    switch (scope) {
    case SRV_SCOPE_PUBLIC: return "";
    case SRV_SCOPE_READ: return "read";
    case SRV_SCOPE_ACT: return "act";
    case SRV_SCOPE_WRITE: return "write";
    case SRV_SCOPE_ADMIN: return "admin";
    default: return "?";
    }
}

static int auth__hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "read,act" -> bits; -1 with err naming the bad scope. */
static int auth__scopes(const char *s, unsigned *out, char *bad, size_t bad_sz) {
    unsigned bits = 0;
    for (const char *p = s;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        int found = 0;
        for (int i = 0; i < 4; i++)
            if (strlen(auth__scope_names[i]) == n && !strncmp(p, auth__scope_names[i], n)) {
                bits |= 1u << i;
                found = 1;
            }
        if (!found) {
            snprintf(bad, bad_sz, "%.*s", (int)(n < 40 ? n : 40), p);
            return -1;
        }
        if (!comma) break;
        p = comma + 1;
    }
    *out = bits;
    return 0;
}

static int auth__label_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= SRV_AUTH_LABEL_MAX) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-:@", *s)))
            return 0;
    return 1;
}

/* One line (trimmed, not blank, not a comment) into t. 0, or -1 with err. */
static int auth__line(srv_token *t, char *line, int lineno, const char *source, char *err, size_t err_sz) {
    char *f[4] = {0};
    int nf = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
        if (nf == 4) break;
        f[nf++] = w;
    }
    memset(t, 0, sizeof *t);
    if (nf == 1) { /* an old plain token: every scope, as before */
        mb_sha256(f[0], strlen(f[0]), t->hash);
        t->scopes = SRV_SCOPE_ALL;
        snprintf(t->label, sizeof t->label, "legacy-%d", lineno);
        srv_log(SRV_LOG_WARN, "plain token in the tokens file: it has every scope; store its hash instead",
                "file=\"%s\" line=%d how=\"replace the line with the output of: printf %%s TOKEN | "
                "sha256sum | cut -d' ' -f1, then a blank, the scopes (read,act,write,admin) and a "
                "label\"",
                source, lineno);
        return 0;
    }
    if (nf == 4) {
        snprintf(err, err_sz, "--tokens %s:%d: expected `<sha256 hex> <scopes> [label]`, found more fields",
                 source, lineno);
        return -1;
    }
    if (strlen(f[0]) != 64) {
        snprintf(err, err_sz,
                 "--tokens %s:%d: the first field must be the token's SHA-256 in 64 hex digits "
                 "(printf %%s TOKEN | sha256sum)", source, lineno);
        return -1;
    }
    for (int i = 0; i < 32; i++) {
        int hi = auth__hexval(f[0][2 * i]), lo = auth__hexval(f[0][2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf(err, err_sz, "--tokens %s:%d: the SHA-256 is not 64 hex digits", source, lineno);
            return -1;
        }
        t->hash[i] = (unsigned char)(hi << 4 | lo);
    }
    char bad[48];
    if (auth__scopes(f[1], &t->scopes, bad, sizeof bad) != 0) {
        snprintf(err, err_sz, "--tokens %s:%d: unknown scope '%s' (scopes: read, act, write, admin, "
                 "comma-separated)", source, lineno, bad);
        return -1;
    }
    if (nf == 3) {
        if (!auth__label_ok(f[2])) {
            snprintf(err, err_sz, "--tokens %s:%d: a label is 1 to %d of A-Z a-z 0-9 . _ - : @", source,
                     lineno, SRV_AUTH_LABEL_MAX - 1);
            return -1;
        }
        snprintf(t->label, sizeof t->label, "%s", f[2]);
    } else {
        snprintf(t->label, sizeof t->label, "line-%d", lineno);
    }
    return 0;
}

int auth_parse(srv_auth *a, const char *text, const char *source, char *err, size_t err_sz) {
    memset(a, 0, sizeof *a);
    char *copy = strdup(text);
    int cap = 16;
    a->tokens = calloc((size_t)cap, sizeof *a->tokens);
    if (!copy || !a->tokens) {
        free(copy);
        auth_free(a);
        snprintf(err, err_sz, "--tokens %s: out of memory", source);
        return -1;
    }
    pthread_mutex_init(&a->lock, NULL);
    a->lock_init = 1;
    int rc = 0, lineno = 0;
    for (char *p = copy; p && rc == 0;) {
        char *line = p;
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        p = nl ? nl + 1 : NULL;
        lineno++;
        size_t n = strlen(line);
        while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r')) line[--n] = 0;
        while (*line == ' ' || *line == '\t') line++;
        if (!*line || line[0] == '#') continue;
        if (a->n == cap) {
            srv_token *q = realloc(a->tokens, sizeof *q * (size_t)(cap * 2));
            if (!q) {
                snprintf(err, err_sz, "--tokens %s: out of memory", source);
                rc = -1;
                break;
            }
            a->tokens = q;
            cap *= 2;
        }
        srv_token *t = &a->tokens[a->n];
        if (auth__line(t, line, lineno, source, err, err_sz) != 0) {
            rc = -1;
            break;
        }
        for (int i = 0; i < a->n; i++)
            if (!memcmp(a->tokens[i].hash, t->hash, sizeof t->hash)) {
                snprintf(err, err_sz, "--tokens %s:%d: the same token as %s (one line per token)", source,
                         lineno, a->tokens[i].label);
                rc = -1;
            }
        if (rc == 0) a->n++;
    }
    free(copy);
    if (rc == 0 && a->n == 0) {
        snprintf(err, err_sz, "--tokens %s: no tokens in the file", source);
        rc = -1;
    }
    if (rc != 0) auth_free(a);
    else auth_set_throttle(a, 20, 60);
    return rc;
}

void auth_set_throttle(srv_auth *a, int max_failures, double window) {
    a->max_failures = max_failures;
    a->window = window;
}

void auth_free(srv_auth *a) {
    free(a->tokens);
    if (a->lock_init) pthread_mutex_destroy(&a->lock);
    memset(a, 0, sizeof *a);
}

int auth_enabled(const srv_auth *a) { return a->n > 0; }

/* ---- the throttle ---- */

/* The key of an address: IPv4 (or v4-mapped) whole, IPv6 by its /64. 0 when
 * the family is not one of those. */
static int auth__key(const struct sockaddr *sa, unsigned char key[17]) {
    memset(key, 0, 17);
    if (!sa) return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        key[0] = 4;
        memcpy(key + 1, &s4->sin_addr, 4);
        return 1;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        const unsigned char *b = s6->sin6_addr.s6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (!memcmp(b, mapped, 12)) {
            key[0] = 4;
            memcpy(key + 1, b + 12, 4);
        } else {
            key[0] = 6;
            memcpy(key + 1, b, 8);
        }
        return 1;
    }
    return 0;
}

static unsigned auth__slot_hash(const unsigned char key[17]) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++) h = (h ^ key[i]) * 16777619u;
    return h;
}

#define AUTH__PROBE 16

/* The slot of key, or NULL. Locked. Expired windows are freed on the way. */
static srv_auth_slot *auth__find(srv_auth *a, const unsigned char key[17], double now, int create) {
    unsigned h = auth__slot_hash(key);
    srv_auth_slot *free_slot = NULL, *oldest = NULL;
    for (int i = 0; i < AUTH__PROBE; i++) {
        srv_auth_slot *s = &a->slots[(h + (unsigned)i) % SRV_AUTH_SLOTS];
        if (s->since != 0 && now - s->since >= a->window) s->since = 0; /* window over */
        if (s->since == 0) {
            if (!free_slot) free_slot = s;
            continue;
        }
        if (!memcmp(s->key, key, 17)) return s;
        if (!oldest || s->since < oldest->since) oldest = s;
    }
    if (!create) return NULL;
    srv_auth_slot *s = free_slot ? free_slot : oldest;
    memcpy(s->key, key, 17);
    s->since = now;
    s->failures = 0;
    return s;
}

/* Seconds left while the address is blocked, else 0. */
static int auth__blocked(srv_auth *a, const struct sockaddr *addr) {
    unsigned char key[17];
    if (a->max_failures <= 0 || !auth__key(addr, key)) return 0;
    double now = srv_now();
    int left = 0;
    pthread_mutex_lock(&a->lock);
    srv_auth_slot *s = auth__find(a, key, now, 0);
    if (s && s->failures >= a->max_failures) {
        left = (int)ceil(s->since + a->window - now);
        if (left < 1) left = 1;
    }
    pthread_mutex_unlock(&a->lock);
    return left;
}

static void auth__failed(srv_auth *a, const struct sockaddr *addr) {
    unsigned char key[17];
    if (a->max_failures <= 0 || !auth__key(addr, key)) return;
    pthread_mutex_lock(&a->lock);
    srv_auth_slot *s = auth__find(a, key, srv_now(), 1);
    int now_blocked = ++s->failures == a->max_failures;
    pthread_mutex_unlock(&a->lock);
    if (now_blocked) {
        char host[INET6_ADDRSTRLEN] = "?";
        if (addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)addr)->sin_addr, host, sizeof host);
        else
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)addr)->sin6_addr, host, sizeof host);
        srv_log(SRV_LOG_WARN, "too many failed authentications: address throttled",
                "addr=%s failures=%d window_s=%g", host, a->max_failures, a->window);
    }
}

/* ---- checking ---- */

/* The token of "Bearer <token>" (scheme in any case, then blanks), or NULL
 * when the header names no bearer token. */
static const char *auth__bearer(const char *h, size_t *len) {
    if (!h) return NULL;
    while (*h == ' ' || *h == '\t') h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t' && h[6] != '\0')) return NULL;
    h += 6;
    while (*h == ' ' || *h == '\t') h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t')) n--;
    *len = n;
    return h;
}

int auth_check(srv_auth *a, const char *header, const struct sockaddr *addr, unsigned scope,
               srv_auth_result *res, srv_err *e) {
    memset(res, 0, sizeof *res);
    if (!auth_enabled(a) || scope == SRV_SCOPE_PUBLIC) return 0;
    int left = auth__blocked(a, addr);
    if (left > 0) {
        atomic_fetch_add_explicit(&a->failures[SRV_AUTH_F_THROTTLED], 1, memory_order_relaxed);
        res->retry_after = left;
        return srv_fail(e, SRV_E_THROTTLED, NULL,
                        "too many failed authentications from this address; retry in %d s", left);
    }
    size_t n = 0;
    const char *tok = auth__bearer(header, &n);
    if (!tok) {
        atomic_fetch_add_explicit(&a->failures[SRV_AUTH_F_MISSING], 1, memory_order_relaxed);
        auth__failed(a, addr);
        snprintf(res->www_authenticate, sizeof res->www_authenticate, "Bearer");
        return srv_fail(e, SRV_E_UNAUTH, NULL, "a bearer token is required (Authorization: Bearer <token>)");
    }
    unsigned char h[32];
    mb_sha256(tok, n, h);
    /* every entry, every byte: no early exit, no branch on the data; at
     * most one entry matches (auth_parse refuses repeats) */
    int found = 0;
    for (int i = 0; i < a->n; i++) {
        unsigned d = 0;
        for (int k = 0; k < 32; k++) d |= (unsigned)(h[k] ^ a->tokens[i].hash[k]);
        unsigned eq = ((d - 1u) >> 8) & 1u; /* 1 iff d == 0 (d < 256) */
        found |= (int)(eq * (unsigned)(i + 1));
    }
    if (!found) {
        atomic_fetch_add_explicit(&a->failures[SRV_AUTH_F_INVALID], 1, memory_order_relaxed);
        auth__failed(a, addr);
        snprintf(res->www_authenticate, sizeof res->www_authenticate, "Bearer error=\"invalid_token\"");
        return srv_fail(e, SRV_E_UNAUTH, NULL, "the bearer token is not known");
    }
    srv_token *t = &a->tokens[found - 1];
    res->label = t->label;
    if (!(t->scopes & scope)) {
        atomic_fetch_add_explicit(&a->failures[SRV_AUTH_F_SCOPE], 1, memory_order_relaxed);
        snprintf(res->www_authenticate, sizeof res->www_authenticate,
                 "Bearer error=\"insufficient_scope\", scope=\"%s\"", auth_scope_name(scope));
        return srv_fail(e, SRV_E_FORBIDDEN, NULL, "this route needs the '%s' scope, which the token lacks",
                        auth_scope_name(scope));
    }
    atomic_fetch_add_explicit(&t->requests, 1, memory_order_relaxed);
    return 0;
}

void auth_metrics(srv_auth *a, sbuf *b) {
    if (!auth_enabled(a)) return;
    sbuf_printf(b, "# HELP mbrld_auth_requests_total Requests accepted per token label.\n"
                   "# TYPE mbrld_auth_requests_total counter\n");
    for (int i = 0; i < a->n; i++)
        sbuf_printf(b, "mbrld_auth_requests_total{label=\"%s\"} %llu\n", a->tokens[i].label,
                    (unsigned long long)atomic_load_explicit(&a->tokens[i].requests, memory_order_relaxed));
    static const char *const reasons[SRV_AUTH_F_N] = {"missing", "invalid_token", "insufficient_scope",
                                                      "throttled"};
    sbuf_printf(b, "# HELP mbrld_auth_failures_total Requests refused by authentication, by reason.\n"
                   "# TYPE mbrld_auth_failures_total counter\n");
    for (int i = 0; i < SRV_AUTH_F_N; i++)
        sbuf_printf(b, "mbrld_auth_failures_total{reason=\"%s\"} %llu\n", reasons[i],
                    (unsigned long long)atomic_load_explicit(&a->failures[i], memory_order_relaxed));
}
