/* bench_http.h: what the benchmarks that measure mbrld over HTTP share
 * (serve, load, policy, planners): a daemon started in this process on a
 * free loopback port, and libcurl calls to it: JSON POSTs on reused
 * keep-alive handles, closed-loop client threads.
 * Not for: a benchmark's tables or JSON lines (bench_NAME.c); tests (they
 * start their own daemons: tests/server/harness.h). */
#ifndef MB_BENCH_HTTP_H
#define MB_BENCH_HTTP_H

#include <curl/curl.h>
#include <stddef.h>

#include "app.h"

/* An answer's body, NUL-terminated once anything arrived (p NULL before).
 * Owned by the caller: free(p). */
typedef struct {
    char *p;
    size_t len, cap;
} bench_http_buf;

/* CURLOPT_WRITEFUNCTION for a bench_http_buf (ud): appends, keeps it
 * NUL-terminated. Returns 0 (libcurl then fails the transfer) when out of
 * memory. */
size_t bench_http_write(char *p, size_t sz, size_t n, void *ud);

/* A handle for JSON POSTs: headers hdr (not copied: it must outlive the
 * handle), no signals, at most timeout_s seconds per request, TCP_NODELAY.
 * NULL when out of memory. */
CURL *bench_http_handle(struct curl_slist *hdr, long timeout_s);
/* Sets c up to POST body to url with the answer into out (emptied). body
 * is not copied: it must live until the transfer ends. For handles a
 * curl_multi runs; bench_http_post runs one at once. */
void bench_http_prepare(CURL *c, const char *url, const char *body, bench_http_buf *out);
/* One blocking POST on c (its keep-alive connection is reused). Returns the
 * HTTP status, or 0 when the transfer failed. */
long bench_http_post(CURL *c, const char *url, const char *body, bench_http_buf *out);

/* A daemon in this process. Large (srv_app): give it static storage. */
typedef struct {
    srv_app app;
    char base[64];          /* "http://127.0.0.1:PORT" */
    struct curl_slist *hdr; /* Content-Type: application/json; no Expect: 100-continue */
} bench_http_daemon;

/* srv_config_default, then what every benchmark's daemon has: 127.0.0.1 on
 * a free port, memory only (no --data-dir: the benchmarks measure HTTP and
 * planning, not the disk), log level log_level ("warn", "error"). The
 * caller then sets what its benchmark varies. */
void bench_http_config(srv_config *cfg, const char *log_level);
/* Ignores SIGPIPE, initialises libcurl and starts the daemon of cfg in d
 * (app_init + app_start). Returns 0, or -1 with "WHO: cannot start the
 * daemon: ..." on stderr and nothing left to stop. */
int bench_http_start(bench_http_daemon *d, const srv_config *cfg, const char *who);
/* Shuts the daemon down (app_shutdown) and frees it, the header list and
 * libcurl's global state. Handles must be cleaned up before. */
void bench_http_stop(bench_http_daemon *d);

/* Closed loop: `clients` threads, each on its own keep-alive handle (hdr,
 * timeout_s), POST body to url back to back for `seconds`. Returns the
 * answers 200 per second of wall time, with the other answers and the
 * failed transfers in *errors; -1 when not every thread could be started
 * (or out of memory). */
double bench_http_closed_loop(const char *url, const char *body, struct curl_slist *hdr, long timeout_s,
                              int clients, double seconds, long *errors);

#endif
