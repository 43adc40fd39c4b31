/* metrics.h: counters and histograms behind GET /metrics (Prometheus text
 * format 0.0.4). Updated with relaxed atomics from any thread; rendering
 * reads them without stopping anyone (a scrape may be off by in-flight
 * increments, as Prometheus allows).
 * Not for: logging, or anything a request's answer depends on. */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_ROUTES 40  /* routes in the table (+1 for "unmatched") */
#define SRV_N_HTTP 17      /* distinct statuses counted (see metrics.c) */
#define SRV_N_BUCKETS 14   /* latency histogram buckets (+Inf implied) */
#define SRV_N_BATCH_BUCKETS 8 /* batch sizes <= 1, 2, 4, ..., 64, then more */

typedef struct {
    atomic_uint_fast64_t count, sum_us;
    atomic_uint_fast64_t bucket[SRV_N_BUCKETS]; /* non-cumulative */
} srv_hist;

typedef struct {
    atomic_uint_fast64_t requests[SRV_MAX_ROUTES + 1][SRV_N_HTTP];
    srv_hist latency[SRV_MAX_ROUTES + 1];
    srv_hist plan;                        /* mb_plan time */
    atomic_uint_fast64_t acts[2];         /* by source: planner, random */
    atomic_uint_fast64_t deadline[4];     /* acts past their deadline: truncated, no plan (503),
                                           * refused at submit, expired in the queue */
    atomic_uint_fast64_t queue_full;      /* acts refused 429: the planning queue was full */
    atomic_uint_fast64_t plan_canceled;   /* acts whose client went away (queued or planning) */
    atomic_uint_fast64_t batch_size[SRV_N_BATCH_BUCKETS]; /* batches of <= 1, 2, 4, ... tasks */
    atomic_uint_fast64_t batch_tasks;     /* tasks over all batches */
    srv_hist policy_act;                  /* acts answered by a policy: time in the handler */
    atomic_uint_fast64_t acts_policy;     /* acts answered by a policy */
    atomic_uint_fast64_t transitions;     /* rows accepted */
    atomic_uint_fast64_t replays;         /* idempotent retries answered */
    atomic_uint_fast64_t jobs[4];         /* finished by state: done failed canceled, started */
    atomic_uint_fast64_t train_us;        /* training wall time */
    atomic_uint_fast64_t train_epochs;
} srv_metrics;

typedef struct srv_app srv_app;

/* route: index into srv_routes, or -1 for unmatched requests. */
void metrics_request(srv_metrics *m, int route, int http, double seconds);
void metrics_hist(srv_hist *h, double seconds);
/* Prometheus text (malloc'd, caller frees); NULL on allocation failure. */
char *metrics_render(srv_app *app, size_t *len);

#endif
