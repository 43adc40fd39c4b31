/* model_persist.c: what a model's snapshot and export hold, rebuilding
 * models from what the store recovered, the interval-snapshot timer (see
 * model_persist.h). */
#include "model_persist.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "app.h"
#include "log.h"
#include "versions.h"

/* ---- what a snapshot holds ---------------------------------------------- */

/* The META blob: {"format", "spec", "version", "next_version",
 * "version_info" (versions.h), "clients"}. Model lock held. */
static char *persist__meta(const srv_model *m, const srv_version *v, int with_clients) {
    unsigned long f0 = srv_alloc_failures(); /* a META without its spec would be a broken snapshot */
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "format", "mbrld-model/1");
    jf_add(o, "spec", cJSON_Parse(m->spec_json));
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddNumberToObject(o, "next_version", (double)m->next_version);
    cJSON_AddItemToObject(o, "version_info", versions_info_json(v));
    cJSON *pm = model_policy_meta(m);
    if (pm) cJSON_AddItemToObject(o, "policy", pm);
    if (with_clients) {
        cJSON *a = cJSON_AddArrayToObject(o, "clients");
        for (int i = 0; a && i < m->n_clients; i++) {
            cJSON *c = cJSON_CreateObject();
            cJSON_AddStringToObject(c, "client", m->clients[i].client);
            cJSON_AddNumberToObject(c, "seq", (double)m->clients[i].seq);
            char win[24];
            snprintf(win, sizeof win, "%016llx", (unsigned long long)m->clients[i].window);
            cJSON_AddStringToObject(c, "window", win);
            cJSON_AddNumberToObject(c, "accepted", (double)m->clients[i].accepted);
            cJSON_AddNumberToObject(c, "buffer_size", (double)m->clients[i].buffer_size);
            jf_add(a, NULL, c);
        }
    }
    char *text = srv_alloc_failures() == f0 ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

static mb_status persist__adam_copy(mb_adam *dst, const mb_adam *src, char *err, size_t err_sz) {
    mb_status st = mb_adam_init(dst, src->n, src->lr, err, err_sz);
    if (st != MB_OK) return st;
    dst->beta1 = src->beta1;
    dst->beta2 = src->beta2;
    dst->eps = src->eps;
    dst->t = src->t;
    memcpy(dst->m, src->m, src->n * sizeof(float));
    memcpy(dst->v, src->v, src->n * sizeof(float));
    return MB_OK;
}

mb_status model_snapshot(srv_app *app, srv_model *m, int adam_owned, cJSON **info, char *err,
                         size_t err_sz) {
    if (info) *info = NULL;
    srv_store *s = app->store;
    if (!store_durable(s)) return mb_fail(err, err_sz, MB_ESTATE, "no --data-dir: nothing is persisted");
    mb_buffer buf;
    mb_adam adam;
    int have_adam = 0;
    char *meta = NULL;
    mb_status st;
    memset(&buf, 0, sizeof buf);
    store_snap sn;
    memset(&sn, 0, sizeof sn);
    model_lock(m);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        return mb_fail(err, err_sz, MB_ENOTFOUND, "model '%s' was deleted", m->spec.name);
    }
    /* The copy lets the lock go between slices and returns with it held and
     * the buffer as it is then; under the lock the log's last seq and the
     * buffer agree (every append writes its record and its rows under it). */
    st = model_buffer_copy(m, &buf, NULL, err, err_sz);
    if (st == MB_OK && m->deleted) st = mb_fail(err, err_sz, MB_ENOTFOUND, "model '%s' was deleted", m->spec.name);
    sn.src.log_seq = store_log_seq(m->log);
    sn.gen = m->gen;
    /* running first: a running job owns adam (and sets adam_ready) unlocked */
    if (st == MB_OK && (adam_owned || !m->running) && m->adam_ready) {
        st = persist__adam_copy(&adam, &m->adam, err, err_sz);
        have_adam = st == MB_OK;
    }
    srv_version *v = m->cur;
    atomic_fetch_add(&v->refs, 1);
    srv_version *others[SRV_KEEP_MAX]; /* kept older versions (versions.h), immutable */
    int n_others = versions_others(m, others);
    srv_policy *pol = m->pol; /* immutable once published: read outside the lock */
    if (pol) atomic_fetch_add(&pol->refs, 1);
    if (st == MB_OK && !(meta = persist__meta(m, v, 1))) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    pthread_mutex_unlock(&m->lock);
    mb_snapshot_kept_src kept[SRV_KEEP_MAX];
    char *infos[SRV_KEEP_MAX] = {0};
    for (int i = 0; i < n_others && st == MB_OK; i++) {
        cJSON *ij = versions_info_json(others[i]);
        infos[i] = ij ? cJSON_PrintUnformatted(ij) : NULL;
        cJSON_Delete(ij);
        if (!infos[i]) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
        kept[i] = (mb_snapshot_kept_src){others[i]->number, infos[i], infos[i] ? strlen(infos[i]) : 0, &others[i]->ens};
    }
    if (st == MB_OK) {
        sn.src.meta = meta;
        sn.src.meta_len = strlen(meta);
        sn.src.ens = &v->ens;
        sn.src.adam = have_adam ? &adam : NULL;
        sn.src.buf = &buf;
        sn.src.kept = kept;
        sn.src.n_kept = n_others < MB_SNAPSHOT_MAX_KEPT ? n_others : MB_SNAPSHOT_MAX_KEPT;
        sn.src.agent = pol ? &pol->agent : NULL;
        sn.version = v->number;
        st = store_snapshot(s, m->log, &sn, info, err, err_sz);
    }
    for (int i = 0; i < n_others; i++) {
        free(infos[i]);
        model_version_put(others[i]);
    }
    free(meta);
    if (have_adam) mb_adam_free(&adam);
    mb_buffer_free(&buf);
    model_version_put(v);
    model_policy_put(pol);
    return st;
}

void model_snapshot_all(srv_app *app) {
    if (!store_durable(app->store)) return;
    int cap = (int)app->cfg.max_models;
    srv_model **ms = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *ms);
    if (!ms) {
        srv_log(SRV_LOG_WARN, "no memory to snapshot the models", NULL);
        return;
    }
    int n = registry_snapshot(&app->reg, ms, cap);
    for (int i = 0; i < n; i++) {
        char err[512];
        if (model_snapshot(app, ms[i], 0, NULL, err, sizeof err) != MB_OK)
            srv_log(SRV_LOG_WARN, "snapshot failed", "model=%s error=\"%s\"", ms[i]->spec.name, err);
        model_put(ms[i]);
    }
    free(ms);
}

mb_status model_export(srv_model *m, int with_buffer, void **data, size_t *n, char *err, size_t err_sz) {
    return model_export_version(m, NULL, with_buffer, data, n, err, err_sz);
}

mb_status model_export_version(srv_model *m, srv_version *pin, int with_buffer, void **data, size_t *n,
                               char *err, size_t err_sz) {
    mb_buffer buf;
    memset(&buf, 0, sizeof buf);
    mb_status st = MB_OK;
    model_lock(m);
    if (with_buffer) st = model_buffer_copy(m, &buf, NULL, err, err_sz);
    srv_version *v = pin ? pin : m->cur; /* the version and the buffer as of the copy's end */
    atomic_fetch_add(&v->refs, 1);
    char *meta = st == MB_OK ? persist__meta(m, v, 0) : NULL;
    srv_policy *pol = m->pol;
    if (pol) atomic_fetch_add(&pol->refs, 1);
    pthread_mutex_unlock(&m->lock);
    if (st == MB_OK && !meta) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    if (st == MB_OK) {
        mb_snapshot_src src = {.meta = meta, .meta_len = strlen(meta), .ens = &v->ens,
                               .buf = with_buffer ? &buf : NULL, .agent = pol ? &pol->agent : NULL};
        st = mb_snapshot_encode_mem(&src, data, n, err, err_sz);
    }
    free(meta);
    if (with_buffer) mb_buffer_free(&buf);
    model_version_put(v);
    model_policy_put(pol);
    return st;
}

mb_status model_install(srv_app *app, srv_model *m, mb_snapshot *sn, const cJSON *meta, char *err,
                        size_t err_sz) {
    const char *name = m->spec.name;
    if (sn->has_buffer && (sn->buf.obs_dim != m->spec.obs_dim || sn->buf.act_dim != m->spec.act_dim))
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': buffer dims differ from its spec", name);
    if (sn->has_ensemble && memcmp(&sn->ens.spec, &m->cur->ens.spec, sizeof sn->ens.spec) != 0)
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': ensemble differs from its spec", name);
    if (sn->has_adam && sn->has_ensemble && sn->adam.n != sn->ens.n_params)
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': optimiser size", name);
    model_lock(m);
    if (sn->has_buffer) {
        if (sn->buf.capacity != m->buf.capacity) {
            /* The spec fixes the capacity; a different one means a foreign file. */
            pthread_mutex_unlock(&m->lock);
            return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': buffer capacity differs", name);
        }
        mb_buffer_free(&m->buf);
        m->buf = sn->buf;
        sn->has_buffer = 0;
    }
    if (sn->has_ensemble) {
        mb_ensemble_free(&m->cur->ens);
        m->cur->ens = sn->ens;
        sn->has_ensemble = 0;
        const cJSON *ver = cJSON_GetObjectItemCaseSensitive(meta, "version");
        const cJSON *nxt = cJSON_GetObjectItemCaseSensitive(meta, "next_version");
        if (cJSON_IsNumber(ver) && ver->valuedouble >= 0) m->cur->number = (uint64_t)ver->valuedouble;
        if (cJSON_IsNumber(nxt) && nxt->valuedouble > (double)m->cur->number)
            m->next_version = (uint64_t)nxt->valuedouble;
        else m->next_version = m->cur->number + 1;
    }
    if (sn->has_adam) {
        if (m->adam_ready) mb_adam_free(&m->adam);
        m->adam = sn->adam;
        m->adam_ready = 1;
        sn->has_adam = 0;
    }
    if (sn->has_agent) {
        /* outside the model lock (it takes it) */
        pthread_mutex_unlock(&m->lock);
        mb_status ps = model_policy_install(m, &sn->agent, cJSON_GetObjectItemCaseSensitive(meta, "policy"), err,
                                            err_sz);
        sn->has_agent = 0;
        if (ps != MB_OK) return ps;
        pthread_mutex_lock(&m->lock);
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(meta, "clients"); /* absent in exports */
    const cJSON *c;
    cJSON_ArrayForEach(c, cl) {
        if (m->n_clients >= (int)app->cfg.max_clients) break;
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(c, "client");
        const cJSON *sq = cJSON_GetObjectItemCaseSensitive(c, "seq");
        const cJSON *ac = cJSON_GetObjectItemCaseSensitive(c, "accepted");
        const cJSON *bs = cJSON_GetObjectItemCaseSensitive(c, "buffer_size");
        if (!cJSON_IsString(id) || !cJSON_IsNumber(sq)) continue;
        srv_client_seq *x = &m->clients[m->n_clients++];
        snprintf(x->client, sizeof x->client, "%s", id->valuestring);
        x->seq = (uint64_t)sq->valuedouble;
        x->accepted = cJSON_IsNumber(ac) ? (size_t)ac->valuedouble : 0;
        x->buffer_size = cJSON_IsNumber(bs) ? (size_t)bs->valuedouble : 0;
        /* Older snapshots have no window: only the newest seq is known. */
        const cJSON *wn = cJSON_GetObjectItemCaseSensitive(c, "window");
        x->window = cJSON_IsString(wn) ? strtoull(wn->valuestring, NULL, 16) : 1;
        x->last_used = 0;
    }
    m->gen++;
    pthread_mutex_unlock(&m->lock);
    return versions_install(app, m, sn, meta, err, err_sz);
}

/* ---- recovery: the store's sink ------------------------------------------ */

typedef struct {
    srv_app *app;
    srv_model *m; /* the model being recovered, referenced */
} persist__rec;

static mb_status persist__create(void *ctx, const char *name, const cJSON *spec_js, store_log *log, char *err,
                                 size_t err_sz) {
    persist__rec *r = ctx;
    srv_err e;
    memset(&e, 0, sizeof e);
    srv_model_spec *sp = malloc(sizeof *sp);
    if (!sp) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    mb_status st = MB_OK;
    if (!spec_js || spec_parse(spec_js, &r->app->cfg, sp, &e) != 0)
        st = mb_fail(err, err_sz, MB_ECORRUPT, "model '%s': stored spec not accepted: %s%s%s", name,
                     spec_js ? e.message : "missing", e.field[0] ? " at " : "", e.field);
    else if (strcmp(sp->name, name) != 0)
        st = mb_fail(err, err_sz, MB_ECORRUPT, "directory of '%s' holds model '%s'", name, sp->name);
    else if (model_create(r->app, sp, &r->m, &e) != 0)
        st = mb_fail(err, err_sz, e.status == MB_ENOMEM ? MB_ENOMEM : MB_ECORRUPT, "model '%s': %s", name,
                     e.message);
    else r->m->log = log; /* not visible to requests before the HTTP server starts */
    free(sp);
    return st;
}

static mb_status persist__install(void *ctx, mb_snapshot *sn, const cJSON *meta, char *err, size_t err_sz) {
    persist__rec *r = ctx;
    return model_install(r->app, r->m, sn, meta, err, err_sz);
}

static mb_status persist__rows(void *ctx, const mb_wal_batch *b, char *err, size_t err_sz) {
    persist__rec *r = ctx;
    srv_model *m = r->m;
    if (b->obs_dim != m->spec.obs_dim || b->act_dim != m->spec.act_dim)
        return mb_fail(err, err_sz, MB_ECORRUPT, "transition dims %d/%d, model %d/%d", b->obs_dim, b->act_dim,
                       m->spec.obs_dim, m->spec.act_dim);
    char client[MB_WAL_MAX_CLIENT + 1];
    memcpy(client, b->client ? b->client : "", b->client_len);
    client[b->client_len] = '\0';
    size_t accepted, size;
    int replay;
    srv_err e;
    memset(&e, 0, sizeof e);
    if (model_append(r->app, m, b->client_len ? client : NULL, b->client_seq, b->n, b->obs, b->act, b->rew,
                     b->next_obs, b->terminated, b->truncated, &accepted, &size, &replay, &e) != 0)
        return mb_fail(err, err_sz, MB_ECORRUPT, "%s", e.message);
    return MB_OK;
}

static void persist__done(void *ctx, const store_recovered *info) {
    persist__rec *r = ctx;
    srv_log(SRV_LOG_INFO, "model recovered", "model=%s snapshot=%s snapshot_log_seq=%" PRIu64 " log_records=%" PRIu64
            " replayed=%" PRIu64 " last_seq=%" PRIu64 " buffer_size=%zu version=%" PRIu64 " torn_bytes_cut=%" PRIu64,
            r->m->spec.name, info->snapshot_path, info->snapshot_log_seq, info->records, info->replayed,
            info->last_seq, r->m->buf.size, r->m->cur->number, info->torn_bytes);
    model_put(r->m);
    r->m = NULL;
}

static void persist__drop(void *ctx) {
    persist__rec *r = ctx;
    if (!r->m) return;
    srv_err e;
    model_delete(r->app, r->m->spec.name, &e);
    model_put(r->m);
    r->m = NULL;
}

static void *persist__timer(void *arg);

mb_status model_recover(srv_app *app, char *err, size_t err_sz) {
    persist__rec r = {app, NULL};
    store_sink sink = {&r, persist__create, persist__install, persist__rows, persist__done, persist__drop};
    mb_status st = store_recover(app->store, &sink, err, err_sz);
    if (r.m) persist__drop(&r); /* a failed recovery leaves none half-built */
    if (st != MB_OK) return st;
    srv_persist_timer *t = &app->persist;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    t->stop = 0;
    if (pthread_create(&t->th, NULL, persist__timer, app) != 0) {
        pthread_cond_destroy(&t->cv);
        pthread_mutex_destroy(&t->mu);
        return mb_fail(err, err_sz, MB_ENOMEM, "cannot start the snapshot timer");
    }
    t->on = 1;
    return MB_OK;
}

void model_persist_stop(srv_app *app) {
    srv_persist_timer *t = &app->persist;
    if (!t->on) return;
    pthread_mutex_lock(&t->mu);
    t->stop = 1;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
    pthread_join(t->th, NULL);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    t->on = 0;
}

/* ---- interval snapshots ---------------------------------------------------- */

/* Once a second: every model whose --snapshot-interval has passed with new
 * rows in its log gets a snapshot. */
static void *persist__timer(void *arg) {
    srv_app *app = arg;
    srv_persist_timer *t = &app->persist;
    srv_model *ms[SRV_MAX_MODELS];
    pthread_mutex_lock(&t->mu);
    while (!t->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (!t->stop && pthread_cond_timedwait(&t->cv, &t->mu, &ts) != ETIMEDOUT) {
        }
        if (t->stop || !store_durable(app->store) || app->cfg.snapshot_interval <= 0) continue;
        pthread_mutex_unlock(&t->mu);
        int n = registry_snapshot(&app->reg, ms, SRV_MAX_MODELS);
        for (int i = 0; i < n; i++) {
            char err[512];
            if (store_snapshot_due(app->store, ms[i]->log) &&
                model_snapshot(app, ms[i], 0, NULL, err, sizeof err) != MB_OK)
                srv_log(SRV_LOG_WARN, "interval snapshot failed", "model=%s error=\"%s\"", ms[i]->spec.name, err);
            model_put(ms[i]);
        }
        pthread_mutex_lock(&t->mu);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}
