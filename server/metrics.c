/* metrics.c: counters, histograms and their Prometheus rendering. */
#include "metrics.h"

#include <math.h>

#include <stdlib.h>

#include "app.h"
#include "follow.h"
#include "job.h"
#include "routes.h"
#include "sbuf.h"

static const int metrics__http[SRV_N_HTTP] = {200, 201, 202, 204, 304, 400, 401, 403, 404,
                                              405, 409, 413, 422, 429, 500, 503, 0};
/* upper bounds in seconds; the last bucket is +Inf */
static const double metrics__le[SRV_N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};

static int metrics__http_index(int http) {
    for (int i = 0; i < SRV_N_HTTP - 1; i++)
        if (metrics__http[i] == http) return i;
    return SRV_N_HTTP - 1; /* "other" */
}

void metrics_hist(srv_hist *h, double seconds) {
    int b = 0;
    while (b < SRV_N_BUCKETS && seconds > metrics__le[b]) b++;
    if (b < SRV_N_BUCKETS) atomic_fetch_add_explicit(&h->bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, (uint64_t)(seconds * 1e6), memory_order_relaxed);
}

void metrics_request(srv_metrics *m, int route, int http, double seconds) {
    int r = route < 0 || route >= SRV_MAX_ROUTES ? SRV_MAX_ROUTES : route;
    atomic_fetch_add_explicit(&m->requests[r][metrics__http_index(http)], 1, memory_order_relaxed);
    metrics_hist(&m->latency[r], seconds);
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void metrics__hist(sbuf *b, const char *name, const char *labels, const srv_hist *h) {
    unsigned long long cum = 0;
    for (int i = 0; i < SRV_N_BUCKETS; i++) {
        cum += LOAD(h->bucket[i]);
        sbuf_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, *labels ? "," : "",
                    metrics__le[i], cum);
    }
    sbuf_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, *labels ? "," : "",
                LOAD(h->count));
    sbuf_printf(b, "%s_sum{%s} %.6f\n", name, labels, LOAD(h->sum_us) * 1e-6);
    sbuf_printf(b, "%s_count{%s} %llu\n", name, labels, LOAD(h->count));
}

static const char *metrics__route_name(int r, char *buf, size_t n) {
    if (r >= srv_n_routes) return "unmatched";
    snprintf(buf, n, "%s %s", srv_routes[r].method, srv_routes[r].pattern);
    return buf;
}

/* A sample's value as Prometheus text has it (NaN, +Inf, -Inf spelled so).
 * v != v: NaN; v - v != 0: an infinity (no <math.h> needed for either). */
static void metrics__value(sbuf *b, double v) {
    if (v != v) sbuf_printf(b, " NaN\n");
    else if (v - v != 0) sbuf_printf(b, v > 0 ? " +Inf\n" : " -Inf\n");
    else sbuf_printf(b, " %.9g\n", v);
}

/* The last finished training job's per-member losses, and each model's
 * persistence state: what deploy/grafana-mbrld.json plots beside the
 * counters (issue 15). Reads through the same accessors as GET
 * /v1/models/{m}; the caller holds a reference to each model. */
static void metrics__models(srv_app *app, sbuf *b, srv_model *const *ms, int n) {
    sbuf_printf(b, "# HELP mbrld_training_loss Per-member loss (normalised MSE) of the last finished "
                   "training job: set=\"train\" its last epoch, set=\"holdout\" the weights kept.\n"
                   "# TYPE mbrld_training_loss gauge\n");
    for (int i = 0; i < n; i++) {
        srv_model *m = ms[i];
        srv_job *last = NULL;
        pthread_mutex_lock(&m->lock);
        for (int j = 0; j < m->n_jobs; j++) {
            pthread_mutex_lock(&m->jobs[j]->lock);
            if (m->jobs[j]->state == JOB_DONE && m->jobs[j]->has_res) last = m->jobs[j];
            pthread_mutex_unlock(&m->jobs[j]->lock);
        }
        if (last) atomic_fetch_add(&last->refs, 1);
        pthread_mutex_unlock(&m->lock);
        if (!last) continue;
        pthread_mutex_lock(&last->lock);
        for (int k = 0; k < last->members; k++) {
            sbuf_printf(b, "mbrld_training_loss{model=\"%s\",member=\"%d\",set=\"train\"}", m->spec.name, k);
            metrics__value(b, last->res.train_loss[k]);
            sbuf_printf(b, "mbrld_training_loss{model=\"%s\",member=\"%d\",set=\"holdout\"}", m->spec.name, k);
            metrics__value(b, last->res.holdout_loss[k]);
        }
        pthread_mutex_unlock(&last->lock);
        job_put(last);
    }
    sbuf_printf(b, "# HELP mbrld_ready 1 when /readyz answers 200.\n# TYPE mbrld_ready gauge\nmbrld_ready %d\n",
                atomic_load(&app->ready) && !atomic_load(&app->shutting_down) && store_ready(app->store));
    sbuf_printf(b, "# HELP mbrld_store_ready 0 while a model's log has failed (writes answer 503).\n"
                   "# TYPE mbrld_store_ready gauge\nmbrld_store_ready %d\n", store_ready(app->store));
    sbuf_printf(b, "# HELP mbrld_log_failed 1 while the model's log has failed (a disk error, retried).\n"
                   "# TYPE mbrld_log_failed gauge\n"
                   "# HELP mbrld_log_seq The model's last log record.\n# TYPE mbrld_log_seq gauge\n"
                   "# HELP mbrld_last_snapshot_timestamp_seconds When the model's last snapshot was written.\n"
                   "# TYPE mbrld_last_snapshot_timestamp_seconds gauge\n");
    for (int i = 0; i < n; i++) {
        if (!ms[i]->log) continue; /* in memory only */
        cJSON *st = store_model_status(app->store, ms[i]->log);
        if (!st) {
            b->failed = 1;
            return;
        }
        const char *name = ms[i]->spec.name;
        cJSON *failed = cJSON_GetObjectItem(st, "log_failed"), *seq = cJSON_GetObjectItem(st, "log_seq");
        cJSON *snap = cJSON_GetObjectItem(st, "last_snapshot");
        if (failed) sbuf_printf(b, "mbrld_log_failed{model=\"%s\"} %d\n", name, cJSON_IsTrue(failed));
        if (cJSON_IsNumber(seq)) sbuf_printf(b, "mbrld_log_seq{model=\"%s\"} %.0f\n", name, seq->valuedouble);
        cJSON *t = cJSON_IsObject(snap) ? cJSON_GetObjectItem(snap, "time") : NULL;
        if (cJSON_IsNumber(t))
            sbuf_printf(b, "mbrld_last_snapshot_timestamp_seconds{model=\"%s\"} %.3f\n", name, t->valuedouble);
        cJSON_Delete(st);
    }
}

char *metrics_render(srv_app *app, size_t *len) {
    srv_metrics *m = &app->metrics;
    sbuf b = {0};
    char rn[128], labels[192];
    sbuf_printf(&b, "# HELP mbrld_http_requests_total HTTP requests by route and status.\n"
                    "# TYPE mbrld_http_requests_total counter\n");
    for (int r = 0; r <= srv_n_routes; r++) {
        int ri = r == srv_n_routes ? SRV_MAX_ROUTES : r;
        for (int s = 0; s < SRV_N_HTTP; s++) {
            unsigned long long v = LOAD(m->requests[ri][s]);
            if (!v) continue;
            sbuf_printf(&b, "mbrld_http_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                        metrics__route_name(r, rn, sizeof rn), metrics__http[s], v);
        }
    }
    sbuf_printf(&b, "# HELP mbrld_http_request_duration_seconds Time from first byte to answer.\n"
                    "# TYPE mbrld_http_request_duration_seconds histogram\n");
    for (int r = 0; r <= srv_n_routes; r++) {
        int ri = r == srv_n_routes ? SRV_MAX_ROUTES : r;
        if (!LOAD(m->latency[ri].count)) continue;
        snprintf(labels, sizeof labels, "route=\"%s\"", metrics__route_name(r, rn, sizeof rn));
        metrics__hist(&b, "mbrld_http_request_duration_seconds", labels, &m->latency[ri]);
    }
    sbuf_printf(&b, "# HELP mbrld_plan_duration_seconds Planner time per act.\n"
                    "# TYPE mbrld_plan_duration_seconds histogram\n");
    metrics__hist(&b, "mbrld_plan_duration_seconds", "", &m->plan);
    sbuf_printf(&b, "# TYPE mbrld_acts_total counter\n"
                    "mbrld_acts_total{source=\"planner\"} %llu\n"
                    "mbrld_acts_total{source=\"random\"} %llu\n"
                    "mbrld_acts_total{source=\"policy\"} %llu\n",
                LOAD(m->acts[0]), LOAD(m->acts[1]), LOAD(m->acts_policy));
    sbuf_printf(&b, "# HELP mbrld_policy_act_duration_seconds Acts answered by a policy: time in the handler.\n"
                    "# TYPE mbrld_policy_act_duration_seconds histogram\n");
    metrics__hist(&b, "mbrld_policy_act_duration_seconds", "", &m->policy_act);
    sbuf_printf(&b, "# HELP mbrld_plan_deadline_misses_total Acts that reached their deadline: answered "
                    "with the best plan so far (truncated), 503 without a plan (no_plan), 503 at submit "
                    "because the queue would outlast it (refused), 503 while still queued (expired).\n"
                    "# TYPE mbrld_plan_deadline_misses_total counter\n"
                    "mbrld_plan_deadline_misses_total{outcome=\"truncated\"} %llu\n"
                    "mbrld_plan_deadline_misses_total{outcome=\"no_plan\"} %llu\n"
                    "mbrld_plan_deadline_misses_total{outcome=\"refused\"} %llu\n"
                    "mbrld_plan_deadline_misses_total{outcome=\"expired\"} %llu\n",
                LOAD(m->deadline[0]), LOAD(m->deadline[1]), LOAD(m->deadline[2]), LOAD(m->deadline[3]));
    sbuf_printf(&b, "# HELP mbrld_plan_queue_length Acts waiting for a planning worker.\n"
                    "# TYPE mbrld_plan_queue_length gauge\nmbrld_plan_queue_length %d\n",
                exec_queued(app->exec));
    sbuf_printf(&b, "# HELP mbrld_plan_queue_full_total Acts refused with 429: the planning queue was full.\n"
                    "# TYPE mbrld_plan_queue_full_total counter\nmbrld_plan_queue_full_total %llu\n",
                LOAD(m->queue_full));
    sbuf_printf(&b, "# HELP mbrld_plan_canceled_total Acts whose client went away while queued or planning.\n"
                    "# TYPE mbrld_plan_canceled_total counter\nmbrld_plan_canceled_total %llu\n",
                LOAD(m->plan_canceled));
    sbuf_printf(&b, "# HELP mbrld_plan_batch_size Acts per planning batch.\n"
                    "# TYPE mbrld_plan_batch_size histogram\n");
    unsigned long long cum = 0;
    for (int i = 0; i < SRV_N_BATCH_BUCKETS; i++) {
        cum += LOAD(m->batch_size[i]);
        if (i < SRV_N_BATCH_BUCKETS - 1)
            sbuf_printf(&b, "mbrld_plan_batch_size_bucket{le=\"%d\"} %llu\n", 1 << i, cum);
    }
    sbuf_printf(&b, "mbrld_plan_batch_size_bucket{le=\"+Inf\"} %llu\nmbrld_plan_batch_size_sum %llu\n"
                    "mbrld_plan_batch_size_count %llu\n",
                cum, LOAD(m->batch_tasks), cum);
    sbuf_printf(&b, "# HELP mbrld_plan_memory_bytes Planning memory held (workspaces in use and kept, "
                    "sessions, batches) and its limit (--plan-memory-mb).\n"
                    "# TYPE mbrld_plan_memory_bytes gauge\n"
                    "mbrld_plan_memory_bytes{kind=\"held\"} %lld\n"
                    "mbrld_plan_memory_bytes{kind=\"peak\"} %lld\n"
                    "mbrld_plan_memory_bytes{kind=\"limit\"} %lld\n",
                plan_budget_used(&app->budget), (long long)atomic_load(&app->budget.peak),
                app->budget.limit);
    sbuf_printf(&b, "# TYPE mbrld_transitions_total counter\nmbrld_transitions_total %llu\n",
                LOAD(m->transitions));
    sbuf_printf(&b, "# TYPE mbrld_idempotent_replays_total counter\nmbrld_idempotent_replays_total %llu\n",
                LOAD(m->replays));
    sbuf_printf(&b, "# TYPE mbrld_training_jobs_total counter\n"
                    "mbrld_training_jobs_total{state=\"started\"} %llu\n"
                    "mbrld_training_jobs_total{state=\"done\"} %llu\n"
                    "mbrld_training_jobs_total{state=\"failed\"} %llu\n"
                    "mbrld_training_jobs_total{state=\"canceled\"} %llu\n",
                LOAD(m->jobs[3]), LOAD(m->jobs[0]), LOAD(m->jobs[1]), LOAD(m->jobs[2]));
    sbuf_printf(&b, "# TYPE mbrld_training_seconds_total counter\nmbrld_training_seconds_total %.6f\n",
                LOAD(m->train_us) * 1e-6);
    sbuf_printf(&b, "# TYPE mbrld_training_epochs_total counter\nmbrld_training_epochs_total %llu\n",
                LOAD(m->train_epochs));
    int running = jobs_running(&app->jobs);
    sbuf_printf(&b, "# TYPE mbrld_training_jobs_running gauge\nmbrld_training_jobs_running %d\n", running);

    srv_model *ms[SRV_MAX_MODELS];
    int n = registry_snapshot(&app->reg, ms, SRV_MAX_MODELS);
    sbuf_printf(&b, "# TYPE mbrld_models gauge\nmbrld_models %d\n", n);
    metrics__models(app, &b, ms, n); /* training losses, persistence state */
    sbuf_printf(&b, "# HELP mbrld_buffer_size Transitions held per model.\n# TYPE mbrld_buffer_size gauge\n");
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i]->lock);
        size_t size = ms[i]->buf.size;
        pthread_mutex_unlock(&ms[i]->lock);
        sbuf_printf(&b, "mbrld_buffer_size{model=\"%s\"} %zu\n", ms[i]->spec.name, size);
    }
    sbuf_printf(&b, "# HELP mbrld_model_version Published parameter version per model.\n"
                    "# TYPE mbrld_model_version gauge\n");
    for (int i = 0; i < n; i++) {
        srv_version *v = model_version_get(ms[i]);
        sbuf_printf(&b, "mbrld_model_version{model=\"%s\"} %llu\n", ms[i]->spec.name,
                    (unsigned long long)v->number);
        model_version_put(v);
    }
    sbuf_printf(&b, "# HELP mbrld_model_plan_duration_seconds Planner time per act, per model.\n"
                    "# TYPE mbrld_model_plan_duration_seconds histogram\n");
    for (int i = 0; i < n; i++) {
        snprintf(labels, sizeof labels, "model=\"%s\"", ms[i]->spec.name);
        metrics__hist(&b, "mbrld_model_plan_duration_seconds", labels, &ms[i]->plan_hist);
    }
    /* policies: version, entropy coefficient, MBPO's model-data rows (models with a policy spec) */
    sbuf_printf(&b, "# HELP mbrld_policy_version Published policy version per model (0: none yet).\n"
                    "# TYPE mbrld_policy_version gauge\n");
    for (int i = 0; i < n; i++) {
        if (!ms[i]->spec.policy.enabled) continue;
        pthread_mutex_lock(&ms[i]->lock);
        unsigned long long pv = ms[i]->pol ? (unsigned long long)ms[i]->pol->number : 0;
        pthread_mutex_unlock(&ms[i]->lock);
        sbuf_printf(&b, "mbrld_policy_version{model=\"%s\"} %llu\n", ms[i]->spec.name, pv);
    }
    sbuf_printf(&b, "# TYPE mbrld_policy_entropy_coefficient gauge\n");
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i]->lock);
        int has = ms[i]->pol != NULL;
        double a = has ? exp((double)ms[i]->pol->agent.log_alpha) : 0;
        pthread_mutex_unlock(&ms[i]->lock);
        if (has) sbuf_printf(&b, "mbrld_policy_entropy_coefficient{model=\"%s\"} %.6g\n", ms[i]->spec.name, a);
    }
    sbuf_printf(&b, "# TYPE mbrld_policy_model_buffer_rows gauge\n");
    for (int i = 0; i < n; i++) {
        if (!ms[i]->spec.policy.enabled) continue;
        pthread_mutex_lock(&ms[i]->lock);
        size_t rows = ms[i]->pol_stats.model_rows;
        pthread_mutex_unlock(&ms[i]->lock);
        sbuf_printf(&b, "mbrld_policy_model_buffer_rows{model=\"%s\"} %zu\n", ms[i]->spec.name, rows);
    }
    sbuf_printf(&b, "# TYPE mbrld_sessions gauge\n");
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i]->lock);
        int s = ms[i]->n_sessions;
        pthread_mutex_unlock(&ms[i]->lock);
        sbuf_printf(&b, "mbrld_sessions{model=\"%s\"} %d\n", ms[i]->spec.name, s);
        model_put(ms[i]);
    }
    auth_metrics(&app->auth, &b); /* requests per token label, refusals by reason */
    follow_metrics(app, &b);      /* a follower's pulls and version lag */
    sbuf_printf(&b, "# TYPE mbrld_http_in_flight gauge\nmbrld_http_in_flight %d\n",
                atomic_load(&app->in_flight));
    if (b.failed) {
        sbuf_free(&b);
        return NULL;
    }
    return sbuf_take(&b, len);
}
