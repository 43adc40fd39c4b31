/* follow.c: the follower replica's pulling thread, its read-only rule, its
 * readiness and metrics (see follow.h). HTTP to the trainer is libcurl
 * (one easy handle, kept alive between pulls). */
#include "follow.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app.h"
#include "log.h"
#include "routes.h"
#include "store/snapshot.h"
#include "versions.h"

#define FOLLOW__TOKEN_MAX 512
#define FOLLOW__LIST_MAX (4u << 20) /* bytes of the trainer's model list */

/* What the follower knows of one of the trainer's models. */
typedef struct {
    char name[SRV_NAME_MAX + 1];
    char etag[64];            /* of the version pulled last ("" = none) */
    uint64_t trainer_version; /* from the trainer's list */
    uint64_t pulled;          /* the version pulled last */
    int seen;                 /* in the latest list */
} follow__model;

struct srv_follow {
    srv_app *app;
    char url[260];                      /* without a trailing slash */
    char auth[FOLLOW__TOKEN_MAX + 32];  /* "Authorization: Bearer ..." or "" */
    pthread_t th;
    int running;
    pthread_mutex_t mu; /* guards everything below, and the thread's sleep */
    pthread_cond_t cv;
    int stop;
    atomic_int abort; /* set by follow_stop: aborts a transfer */
    double last_ok;   /* monotonic s of the last answered list; 0 never */
    double last_ok_wall;
    int synced;       /* every model of one list pulled at least once */
    int up;           /* the last attempt reached the trainer */
    uint64_t pulls[3]; /* pulled, not_modified, error */
    follow__model *models; /* (n, cap = --max-models) */
    int n, cap;
};

/* ---- setup ---------------------------------------------------------------- */

int follow_init(srv_app *app, char *err, size_t err_sz) {
    const srv_config *cfg = &app->cfg;
    if (!cfg->follow[0]) {
        if (cfg->follow_token_file[0]) {
            snprintf(err, err_sz, "--follow-token-file needs --follow");
            return -1;
        }
        return 0;
    }
    if ((strncmp(cfg->follow, "http://", 7) != 0 && strncmp(cfg->follow, "https://", 8) != 0) ||
        strlen(cfg->follow) >= 256) {
        snprintf(err, err_sz, "--follow %.300s: expected http://host:port or https://host:port (under 256 characters)",
                 cfg->follow);
        return -1;
    }
    srv_follow *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, err_sz, "out of memory");
        return -1;
    }
    /* once, before the thread that uses it: curl's global init is not thread-safe */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        free(f);
        snprintf(err, err_sz, "cannot initialise libcurl");
        return -1;
    }
    app->follow = f;
    f->app = app;
    snprintf(f->url, sizeof f->url, "%.255s", cfg->follow);
    size_t n = strlen(f->url);
    while (n > 0 && f->url[n - 1] == '/') f->url[--n] = 0;
    f->cap = (int)cfg->max_models;
    f->models = calloc((size_t)f->cap, sizeof *f->models);
    pthread_mutex_init(&f->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (!f->models) {
        snprintf(err, err_sz, "out of memory");
        return -1;
    }
    if (cfg->follow_token_file[0]) {
        FILE *tf = fopen(cfg->follow_token_file, "r");
        if (!tf) {
            snprintf(err, err_sz, "--follow-token-file %s: %s", cfg->follow_token_file, strerror(errno));
            return -1;
        }
        char tok[FOLLOW__TOKEN_MAX + 2] = "";
        int got = fgets(tok, sizeof tok, tf) != NULL;
        fclose(tf);
        char *p = tok;
        while (*p == ' ' || *p == '\t') p++;
        size_t k = strlen(p);
        while (k > 0 && (p[k - 1] == '\n' || p[k - 1] == '\r' || p[k - 1] == ' ' || p[k - 1] == '\t')) p[--k] = 0;
        int ok = got && k > 0 && k <= FOLLOW__TOKEN_MAX && !strpbrk(p, " \t");
        if (ok) snprintf(f->auth, sizeof f->auth, "Authorization: Bearer %s", p);
        memset(tok, 0, sizeof tok);
        if (!ok) {
            snprintf(err, err_sz, "--follow-token-file %s: the first line must be one token of 1..%d characters",
                     cfg->follow_token_file, FOLLOW__TOKEN_MAX);
            return -1;
        }
    }
    return 0;
}

/* ---- HTTP to the trainer -------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap, limit;
    int too_big;
} follow__buf;

static size_t follow__write(char *data, size_t size, size_t nmemb, void *ud) {
    follow__buf *b = ud;
    size_t n = size * nmemb;
    if (b->len + n > b->limit) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return 0;
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = 0;
    return n;
}

typedef struct {
    char etag[64];
} follow__hdrs;

static size_t follow__header(char *data, size_t size, size_t nmemb, void *ud) {
    follow__hdrs *h = ud;
    size_t n = size * nmemb;
    if (n > 5 && !strncasecmp(data, "ETag:", 5)) {
        const char *v = data + 5;
        size_t k = n - 5;
        while (k && (*v == ' ' || *v == '\t')) v++, k--;
        while (k && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' ')) k--;
        if (k < sizeof h->etag) {
            memcpy(h->etag, v, k);
            h->etag[k] = 0;
        }
    }
    return n;
}

static int follow__progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un) {
    (void)dt, (void)dn, (void)ut, (void)un;
    return atomic_load(&((srv_follow *)ud)->abort) ? 1 : 0;
}

/* GET url+path into b (up to b->limit bytes). inm: If-None-Match or NULL.
 * Returns the HTTP status (304 included), or 0 with err on transport
 * failure. */
static long follow__get(srv_follow *f, CURL *h, const char *path, const char *inm, follow__buf *b,
                        follow__hdrs *hd, char *err, size_t err_sz) {
    char url[sizeof f->url + 200];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    b->len = 0;
    b->too_big = 0;
    if (b->p) b->p[0] = 0;
    memset(hd, 0, sizeof *hd);
    struct curl_slist *hl = NULL;
    if (f->auth[0]) hl = curl_slist_append(hl, f->auth);
    char inm_h[100];
    if (inm && inm[0]) {
        snprintf(inm_h, sizeof inm_h, "If-None-Match: %s", inm);
        hl = curl_slist_append(hl, inm_h);
    }
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, follow__write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, follow__header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, hd);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    CURLcode rc = curl_easy_perform(h);
    curl_slist_free_all(hl);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    if (rc != CURLE_OK) {
        snprintf(err, err_sz, "GET %.400s: %.150s", url,
                 b->too_big ? "answer larger than this follower accepts" : cerr[0] ? cerr : curl_easy_strerror(rc));
        return 0;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    return status;
}

/* ---- one pull --------------------------------------------------------------- */

static follow__model *follow__slot(srv_follow *f, const char *name) {
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->models[i].name, name)) return &f->models[i];
    if (f->n >= f->cap) return NULL;
    follow__model *s = &f->models[f->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

static void follow__count(srv_follow *f, int what) {
    pthread_mutex_lock(&f->mu);
    f->pulls[what]++;
    pthread_mutex_unlock(&f->mu);
}

/* Installs a pulled version file of model `name`: the model is created (or
 * re-created when its spec changed), then the version becomes current. */
static int follow__install(srv_follow *f, const char *name, const follow__buf *b, char *err, size_t err_sz) {
    srv_app *app = f->app;
    mb_snapshot_opts o = {1, (size_t)app->cfg.max_params * 16u + (16u << 20)};
    mb_snapshot sn;
    char e2[512];
    mb_status st = mb_snapshot_decode_mem(b->p, b->len, &o, &sn, e2, sizeof e2);
    if (st != MB_OK) {
        snprintf(err, err_sz, "version file of '%s': %s", name, e2);
        return -1;
    }
    int rc = -1;
    srv_err e;
    memset(&e, 0, sizeof e);
    cJSON *meta = cJSON_ParseWithLength(sn.meta, sn.meta_len);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(meta, "spec");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(meta, "version");
    srv_model_spec *sp = malloc(sizeof *sp);
    cJSON *canon = NULL;
    char *canon_text = NULL;
    srv_model *m = NULL;
    if (!sp) {
        snprintf(err, err_sz, "out of memory");
        goto out;
    }
    if (!cJSON_IsObject(spec) || !cJSON_IsNumber(ver) || ver->valuedouble < 0 || !sn.has_ensemble) {
        snprintf(err, err_sz, "version file of '%s': no spec, version or ensemble", name);
        goto out;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(spec, "name", cJSON_CreateString(name));
    if (spec_parse(spec, &app->cfg, sp, &e) != 0) {
        snprintf(err, err_sz, "the spec of '%s' is refused here: %s%s%s", name, e.message, e.field[0] ? " at " : "",
                 e.field);
        goto out;
    }
    canon = spec_render(sp);
    canon_text = canon ? cJSON_PrintUnformatted(canon) : NULL;
    if (!canon_text) {
        snprintf(err, err_sz, "out of memory");
        goto out;
    }
    m = registry_get(&app->reg, name);
    if (m && strcmp(m->spec_json, canon_text) != 0) { /* deleted and re-created on the trainer */
        srv_log(SRV_LOG_INFO, "follower: the trainer's model changed its spec", "model=%s", name);
        model_put(m);
        m = NULL;
        if (model_delete(app, name, &e) != 0 && e.status != MB_ENOTFOUND) {
            snprintf(err, err_sz, "cannot replace '%s': %s", name, e.message);
            goto out;
        }
    }
    if (!m && model_create(app, sp, &m, &e) != 0) {
        snprintf(err, err_sz, "cannot create '%s': %s", name, e.message);
        goto out;
    }
    uint64_t number = (uint64_t)ver->valuedouble;
    /* A version number names the same weights for good: a file of the
     * current number is a new policy (the tag counts it), not new weights. */
    srv_version *cur = model_version_get(m);
    int same = number > 0 && cur->number == number;
    model_version_put(cur);
    if (!same) {
        if (model_adopt(app, m, &sn.ens, number, cJSON_GetObjectItemCaseSensitive(meta, "version_info"), &e) != 0) {
            sn.has_ensemble = 0; /* model_adopt freed it */
            snprintf(err, err_sz, "cannot install version %" PRIu64 " of '%s': %s", number, name, e.message);
            goto out;
        }
        sn.has_ensemble = 0; /* moved */
    }
    if (sn.has_agent) { /* the trainer's policy, critics and value network (issue 13) */
        char e3[256];
        mb_status ps = model_policy_install(m, &sn.agent, cJSON_GetObjectItemCaseSensitive(meta, "policy"), e3, sizeof e3);
        if (ps == MB_OK) sn.has_agent = 0; /* moved; else mb_snapshot_free frees it */
        if (ps != MB_OK) {
            snprintf(err, err_sz, "cannot install the policy of '%s': %s", name, e3);
            goto out;
        }
    }
    srv_log(SRV_LOG_INFO, "follower: version pulled", "model=%s version=%" PRIu64 " bytes=%zu", name, number, b->len);
    rc = 0;
out:
    if (m) model_put(m);
    free(canon_text);
    cJSON_Delete(canon);
    free(sp);
    cJSON_Delete(meta);
    mb_snapshot_free(&sn);
    return rc;
}

/* One round: the list, then each model's version. 0 when the trainer
 * answered the list (per-model failures are logged and counted). */
static int follow__round(srv_follow *f, CURL *h, follow__buf *b, char *err, size_t err_sz) {
    srv_app *app = f->app;
    follow__hdrs hd;
    b->limit = FOLLOW__LIST_MAX;
    long st = follow__get(f, h, "/v1/models", NULL, b, &hd, err, err_sz);
    if (st != 200) {
        if (st) snprintf(err, err_sz, "GET %s/v1/models: HTTP %ld %.200s", f->url, st, b->p ? b->p : "");
        return -1;
    }
    cJSON *list = cJSON_ParseWithLength(b->p, b->len);
    const cJSON *ms = cJSON_GetObjectItemCaseSensitive(list, "models");
    if (!cJSON_IsArray(ms)) {
        cJSON_Delete(list);
        snprintf(err, err_sz, "GET %s/v1/models: not a model list", f->url);
        return -1;
    }
    for (int i = 0; i < f->n; i++) f->models[i].seen = 0;
    int complete = 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, ms) {
        if (atomic_load(&f->abort)) break;
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(x, "name");
        const cJSON *vv = cJSON_GetObjectItemCaseSensitive(x, "version");
        if (!cJSON_IsString(nm) || !spec_name_ok(nm->valuestring)) continue;
        pthread_mutex_lock(&f->mu);
        follow__model *s = follow__slot(f, nm->valuestring);
        if (s) {
            s->seen = 1;
            if (cJSON_IsNumber(vv) && vv->valuedouble >= 0) s->trainer_version = (uint64_t)vv->valuedouble;
        }
        char etag[64] = "";
        if (s) snprintf(etag, sizeof etag, "%s", s->etag);
        pthread_mutex_unlock(&f->mu);
        if (!s) {
            complete = 0;
            continue; /* more models than --max-models: logged when created fails */
        }
        /* a model deleted here by hand (it cannot be: read-only) or never
         * created: no tag, a full pull */
        srv_model *m = registry_get(&app->reg, s->name);
        if (!m) etag[0] = 0;
        model_put(m);
        char path[200], e2[600];
        snprintf(path, sizeof path, "/v1/models/%s/versions/latest", s->name);
        b->limit = (size_t)app->cfg.max_params * 16u + (16u << 20);
        long vs = follow__get(f, h, path, etag, b, &hd, e2, sizeof e2);
        if (vs == 304) {
            follow__count(f, 1);
            continue;
        }
        if (vs == 200 && follow__install(f, s->name, b, e2, sizeof e2) == 0) {
            pthread_mutex_lock(&f->mu);
            snprintf(s->etag, sizeof s->etag, "%s", hd.etag);
            s->pulled = s->trainer_version;
            pthread_mutex_unlock(&f->mu);
            follow__count(f, 0);
            continue;
        }
        if (vs == 404) continue; /* deleted on the trainer meanwhile: the next list says so */
        if (vs && vs != 200) snprintf(e2, sizeof e2, "GET %s%s: HTTP %ld", f->url, path, vs);
        follow__count(f, 2);
        complete = 0;
        srv_log(SRV_LOG_WARN, "follower: pull failed", "model=%s error=\"%s\"", s->name, e2);
    }
    cJSON_Delete(list);
    /* the trainer no longer has them: neither do we */
    pthread_mutex_lock(&f->mu);
    char gone[64][SRV_NAME_MAX + 1];
    int n_gone = 0;
    for (int i = 0; i < f->n && !atomic_load(&f->abort);) {
        if (f->models[i].seen) {
            i++;
            continue;
        }
        if (n_gone < 64) snprintf(gone[n_gone++], sizeof gone[0], "%s", f->models[i].name);
        f->models[i] = f->models[--f->n];
    }
    if (complete && !atomic_load(&f->abort)) f->synced = 1;
    pthread_mutex_unlock(&f->mu);
    for (int i = 0; i < n_gone; i++) {
        srv_err e;
        if (model_delete(app, gone[i], &e) == 0)
            srv_log(SRV_LOG_INFO, "follower: model deleted on the trainer", "model=%s", gone[i]);
    }
    return 0;
}

static void *follow__main(void *arg) {
    srv_follow *f = arg;
    srv_app *app = f->app;
    CURL *h = curl_easy_init();
    follow__buf b = {0};
    if (h) {
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT, 120L);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, follow__progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, f);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    } else {
        srv_log(SRV_LOG_ERROR, "follower: cannot make an HTTP client; not pulling", NULL);
    }
    pthread_mutex_lock(&f->mu);
    while (h && !f->stop) {
        pthread_mutex_unlock(&f->mu);
        char err[600] = "";
        int rc = follow__round(f, h, &b, err, sizeof err);
        pthread_mutex_lock(&f->mu);
        int was_up = f->up;
        if (rc == 0) {
            f->last_ok = srv_now();
            f->last_ok_wall = srv_wall();
            f->up = 1;
        } else if (!atomic_load(&f->abort)) {
            f->up = 0;
        }
        pthread_mutex_unlock(&f->mu);
        if (rc != 0 && was_up && !atomic_load(&f->abort))
            srv_log(SRV_LOG_WARN, "follower: trainer unreachable; serving the versions pulled so far", "trainer=%s error=\"%s\"",
                    f->url, err);
        else if (rc == 0 && !was_up)
            srv_log(SRV_LOG_INFO, "follower: trainer reached", "trainer=%s", f->url);
        pthread_mutex_lock(&f->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += app->cfg.follow_interval;
        while (!f->stop && pthread_cond_timedwait(&f->cv, &f->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&f->mu);
    free(b.p);
    if (h) curl_easy_cleanup(h);
    return NULL;
}

int follow_start(srv_app *app, char *err, size_t err_sz) {
    srv_follow *f = app->follow;
    if (!f) return 0;
    if (pthread_create(&f->th, NULL, follow__main, f) != 0) {
        snprintf(err, err_sz, "cannot start the follower thread");
        return -1;
    }
    f->running = 1;
    srv_log(SRV_LOG_INFO, "following", "trainer=%s interval=%ld grace=%ld token=%d", f->url, app->cfg.follow_interval,
            app->cfg.follow_grace, f->auth[0] != 0);
    return 0;
}

void follow_stop(srv_app *app) {
    srv_follow *f = app->follow;
    if (!f || !f->running) return;
    atomic_store(&f->abort, 1);
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->th, NULL);
    f->running = 0;
}

void follow_free(srv_app *app) {
    srv_follow *f = app->follow;
    if (!f) return;
    follow_stop(app);
    memset(f->auth, 0, sizeof f->auth);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f->models);
    free(f);
    app->follow = NULL;
    curl_global_cleanup();
}

/* ---- what requests see ---------------------------------------------------- */

int follow_refuses(srv_app *app, int route, srv_err *e) {
    srv_follow *f = app->follow;
    if (!f || route < 0) return 0;
    unsigned scope = srv_routes[route].scope;
    if (scope != SRV_SCOPE_WRITE && scope != SRV_SCOPE_ADMIN) return 0;
    srv_fail(e, SRV_E_READ_ONLY, NULL, "this mbrld follows the trainer %s and is read-only: send %s %s there",
             f->url, srv_routes[route].method, srv_routes[route].pattern);
    return 1;
}

int follow_ready(srv_app *app, srv_err *e) {
    srv_follow *f = app->follow;
    if (!f) return 0;
    pthread_mutex_lock(&f->mu);
    int synced = f->synced;
    double since = f->last_ok > 0 ? srv_now() - f->last_ok : -1;
    pthread_mutex_unlock(&f->mu);
    if (!synced) return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "not ready: no complete pull from the trainer yet");
    if (since > (double)app->cfg.follow_grace)
        return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "not ready: the trainer has not answered for %.0f s (--follow-grace %ld); "
                        "serving the versions pulled before", since, app->cfg.follow_grace);
    return 0;
}

void follow_metrics(srv_app *app, sbuf *b) {
    srv_follow *f = app->follow;
    if (!f) return;
    pthread_mutex_lock(&f->mu);
    sbuf_printf(b, "# HELP mbrld_follow_up 1 when the follower's last pull reached its trainer.\n"
                   "# TYPE mbrld_follow_up gauge\nmbrld_follow_up %d\n", f->up);
    sbuf_printf(b, "# HELP mbrld_follow_last_success_timestamp_seconds When the trainer last answered (Unix s; 0 never).\n"
                   "# TYPE mbrld_follow_last_success_timestamp_seconds gauge\n"
                   "mbrld_follow_last_success_timestamp_seconds %.3f\n", f->last_ok_wall);
    sbuf_printf(b, "# HELP mbrld_follow_pulls_total Version pulls by result.\n# TYPE mbrld_follow_pulls_total counter\n"
                   "mbrld_follow_pulls_total{result=\"pulled\"} %" PRIu64 "\n"
                   "mbrld_follow_pulls_total{result=\"not_modified\"} %" PRIu64 "\n"
                   "mbrld_follow_pulls_total{result=\"error\"} %" PRIu64 "\n", f->pulls[0], f->pulls[1], f->pulls[2]);
    sbuf_printf(b, "# HELP mbrld_follow_trainer_version The trainer's current version per model, as last listed.\n"
                   "# TYPE mbrld_follow_trainer_version gauge\n");
    for (int i = 0; i < f->n; i++)
        sbuf_printf(b, "mbrld_follow_trainer_version{model=\"%s\"} %" PRIu64 "\n", f->models[i].name,
                    f->models[i].trainer_version);
    sbuf_printf(b, "# HELP mbrld_follow_version_lag The trainer's current version minus the one served here "
                   "(negative for a moment after a promote).\n# TYPE mbrld_follow_version_lag gauge\n");
    for (int i = 0; i < f->n; i++) {
        srv_model *m = registry_get(&app->reg, f->models[i].name);
        uint64_t local = 0;
        if (m) {
            srv_version *v = model_version_get(m);
            local = v->number;
            model_version_put(v);
            model_put(m);
        }
        sbuf_printf(b, "mbrld_follow_version_lag{model=\"%s\"} %lld\n", f->models[i].name,
                    (long long)f->models[i].trainer_version - (long long)local);
    }
    pthread_mutex_unlock(&f->mu);
}
