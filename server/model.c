/* model.c: the registry and the four state changes of a model (see model.h).
 * Every change calls the store first (store.h): that is where the durability
 * layer plugs in; the store never calls back. */
#include "model.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "app.h"
#include "job.h"
#include "log.h"
#include "model_persist.h"
#include "versions.h"

int registry_init(srv_registry *r, int cap) {
    memset(r, 0, sizeof *r);
    r->models = calloc((size_t)cap, sizeof *r->models);
    if (!r->models) return -1;
    r->cap = cap;
    pthread_mutex_init(&r->lock, NULL);
    return 0;
}

void registry_free(srv_registry *r) {
    for (int i = 0; i < r->n; i++) model_put(r->models[i]);
    free(r->models);
    pthread_mutex_destroy(&r->lock);
    memset(r, 0, sizeof *r);
}

static int registry__find(srv_registry *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->models[i]->spec.name, name)) return i;
    return -1;
}

static int registry__index(srv_registry *r, const srv_model *m) {
    for (int i = 0; i < r->n; i++)
        if (r->models[i] == m) return i;
    return -1;
}

srv_model *registry_get(srv_registry *r, const char *name) {
    pthread_mutex_lock(&r->lock);
    int i = registry__find(r, name);
    srv_model *m = i >= 0 && !r->models[i]->creating ? r->models[i] : NULL;
    if (m) atomic_fetch_add(&m->refs, 1);
    pthread_mutex_unlock(&r->lock);
    return m;
}

int registry_snapshot(srv_registry *r, srv_model **out, int cap) {
    pthread_mutex_lock(&r->lock);
    int n = 0;
    for (int i = 0; i < r->n && n < cap; i++) {
        if (r->models[i]->creating) continue;
        out[n] = r->models[i];
        atomic_fetch_add(&out[n++]->refs, 1);
    }
    pthread_mutex_unlock(&r->lock);
    return n;
}

srv_version *model_version_new(void) {
    srv_version *v = calloc(1, sizeof *v);
    if (v) atomic_init(&v->refs, 1);
    return v;
}

void model_version_put(srv_version *v) {
    if (v && atomic_fetch_sub(&v->refs, 1) == 1) {
        mb_ensemble_free(&v->ens);
        free(v);
    }
}

srv_version *model_version_get(srv_model *m) {
    model_lock(m);
    srv_version *v = m->cur;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return v;
}

static void model__free(srv_model *m) {
    store_log_release(m->log); /* closes a deleted model's log; a live one stays */
    for (int i = 0; i < m->n_sessions; i++) session_free(m->sessions[i]);
    for (int i = 0; i < m->n_jobs; i++) job_put(m->jobs[i]);
    for (int i = 0; i < m->n_ws_free; i++) {
        plan_budget_release(m->budget, mb_plan_ws_bytes(m->ws_free[i]));
        mb_plan_ws_free(m->ws_free[i]);
    }
    model_version_put(m->cur);
    for (int i = 0; i < m->n_kept; i++) model_version_put(m->kept[i]);
    model_policy_free_all(m);
    mb_buffer_free(&m->buf);
    if (m->adam_ready) mb_adam_free(&m->adam);
    free(m->sessions);
    free(m->ws_free);
    free(m->clients);
    free(m->spec_json);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

void model_put(srv_model *m) {
    if (m && atomic_fetch_sub(&m->refs, 1) == 1) model__free(m);
}

int model_create(srv_app *app, const srv_model_spec *spec, srv_model **out, srv_err *e) {
    srv_registry *r = &app->reg;
    pthread_mutex_lock(&r->lock);
    int taken = registry__find(r, spec->name) >= 0, full = r->n >= r->cap;
    pthread_mutex_unlock(&r->lock);
    if (taken) return srv_fail(e, MB_EEXIST, "name", "model '%s' already exists", spec->name);
    if (full) return srv_fail(e, SRV_E_LIMIT, NULL, "at most %d models (--max-models)", r->cap);

    char err[256];
    srv_model *m = calloc(1, sizeof *m);
    if (!m) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    atomic_init(&m->refs, 1);
    atomic_init(&m->act_counter, 0);
    atomic_init(&m->lock_waiters, 0);
    pthread_mutex_init(&m->lock, NULL);
    m->spec = *spec;
    m->budget = &app->budget;
    m->serial = atomic_fetch_add(&app->model_serial, 1) + 1;
    m->created = srv_wall();
    m->next_version = 1;
    m->next_job = 1;
    unsigned long f0 = srv_alloc_failures(); /* the stored spec must be whole */
    cJSON *js = spec_render(spec);
    m->spec_json = js && srv_alloc_failures() == f0 ? cJSON_PrintUnformatted(js) : NULL;
    cJSON_Delete(js);
    m->ws_cap = app->cfg.max_batch > SRV_WS_KEPT ? (int)app->cfg.max_batch : SRV_WS_KEPT;
    m->ws_free = calloc((size_t)m->ws_cap, sizeof *m->ws_free);
    m->clients = calloc((size_t)app->cfg.max_clients, sizeof *m->clients);
    m->sessions = calloc((size_t)app->cfg.max_sessions, sizeof *m->sessions);
    m->cur = model_version_new();
    if (!m->spec_json || !m->clients || !m->sessions || !m->cur || !m->ws_free) {
        model__free(m);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    mb_status s = mb_buffer_init(&m->buf, spec->obs_dim, spec->act_dim, spec->buffer_capacity,
                                 spec->holdout_ratio, spec->seed ^ 0x5eedb0ffu, err, sizeof err);
    if (s == MB_OK) s = mb_ensemble_init(&m->cur->ens, &spec->ens, spec->seed, err, sizeof err);
    if (s != MB_OK) {
        model__free(m);
        return srv_fail(e, (int)s, NULL, "%s", err);
    }
    versions_seal(m->cur, versions_hash(&m->cur->ens, m->spec_json));

    /* The name is reserved under the registry lock (the model is not yet
     * visible: creating); the store's CREATE record, a file system round
     * trip with an fsync, is written outside it. */
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    if (registry__find(r, spec->name) >= 0) {
        rc = srv_fail(e, MB_EEXIST, "name", "model '%s' already exists", spec->name);
    } else if (r->n >= r->cap) {
        rc = srv_fail(e, SRV_E_LIMIT, NULL, "at most %d models (--max-models)", r->cap);
    } else {
        m->creating = 1;
        r->models[r->n++] = m;
    }
    pthread_mutex_unlock(&r->lock);
    if (rc) {
        model__free(m);
        return rc;
    }
    s = store_model_created(app->store, spec->name, m->spec_json, &m->log, err, sizeof err);
    pthread_mutex_lock(&r->lock);
    int i = registry__index(r, m);
    if (s != MB_OK) {
        r->models[i] = r->models[--r->n];
    } else {
        m->creating = 0;
        atomic_fetch_add(&m->refs, 1); /* the registry's */
    }
    pthread_mutex_unlock(&r->lock);
    if (s != MB_OK) {
        model__free(m);
        return srv_fail(e, (int)s, NULL, "store: %s", err);
    }
    srv_log(SRV_LOG_INFO, "model created", "model=%s obs_dim=%d act_dim=%d members=%d",
            spec->name, spec->obs_dim, spec->act_dim, spec->ens.members);
    *out = m;
    return 0;
}

int model_delete(srv_app *app, const char *name, srv_err *e) {
    srv_registry *r = &app->reg;
    char err[256];
    pthread_mutex_lock(&r->lock);
    int i = registry__find(r, name);
    if (i < 0) {
        pthread_mutex_unlock(&r->lock);
        return srv_fail(e, MB_ENOTFOUND, NULL, "no model '%s'", name);
    }
    srv_model *m = r->models[i];
    if (m->creating || m->deleting) {
        pthread_mutex_unlock(&r->lock);
        return m->creating ? srv_fail(e, MB_ENOTFOUND, NULL, "no model '%s'", name)
                           : srv_fail(e, MB_EBUSY, NULL, "model '%s' is being deleted", name);
    }
    m->deleting = 1;
    pthread_mutex_unlock(&r->lock);
    /* The DELETE record and the removal of the files, outside the registry
     * lock: other models' requests do not wait for this disk work. */
    mb_status s = store_model_deleted(app->store, m->log, err, sizeof err);
    pthread_mutex_lock(&r->lock);
    if (s != MB_OK) {
        m->deleting = 0;
        pthread_mutex_unlock(&r->lock);
        return srv_fail(e, (int)s, NULL, "store: %s", err);
    }
    i = registry__index(r, m);
    r->models[i] = r->models[--r->n];
    pthread_mutex_unlock(&r->lock);

    model_lock(m);
    m->deleted = 1;
    if (m->running) job_cancel(m->running);
    pthread_mutex_unlock(&m->lock);
    srv_log(SRV_LOG_INFO, "model deleted", "model=%s", name);
    model_put(m); /* the registry's reference */
    return 0;
}

int model_append(srv_app *app, srv_model *m, const char *client, uint64_t seq, size_t n,
                 const float *obs, const float *act, const float *rew, const float *next_obs,
                 const uint8_t *term, const uint8_t *trunc, size_t *accepted, size_t *buffer_size,
                 int *replay, srv_err *e) {
    char err[256];
    *replay = 0;
    model_lock(m);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        return srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
    }
    srv_client_seq *c = NULL;
    m->clock++;
    if (client) {
        for (int i = 0; i < m->n_clients; i++)
            if (!strcmp(m->clients[i].client, client)) c = &m->clients[i];
        /* A seq at or below the client's highest is a replay if its bit in
         * the window is set, new if not (concurrent senders may arrive out
         * of order), and refused when too old to tell: never silently
         * dropped. */
        if (c && seq <= c->seq) {
            uint64_t behind = c->seq - seq;
            if (behind >= SRV_SEQ_WINDOW) {
                pthread_mutex_unlock(&m->lock);
                return srv_fail(e, MB_ESTATE, "seq",
                                "seq %llu of client '%s' is more than %d behind its newest (%llu): "
                                "cannot tell whether it is a duplicate; use increasing seqs",
                                (unsigned long long)seq, client, SRV_SEQ_WINDOW,
                                (unsigned long long)c->seq);
            }
            if (c->window & (1ULL << behind)) {
                c->last_used = m->clock;
                *accepted = behind == 0 ? c->accepted : 0; /* no new rows */
                *buffer_size = behind == 0 ? c->buffer_size : m->buf.size;
                /* A replay is acknowledged like a first post: only once the
                 * rows it names are durable (the first answer may have been
                 * a 503, or its fsync may still be running). Older seqs of
                 * the window wait for everything logged so far. */
                uint64_t ticket = behind == 0 && c->ticket ? c->ticket : store_log_seq(m->log);
                pthread_mutex_unlock(&m->lock);
                mb_status s = store_wait(app->store, m->log, ticket, err, sizeof err);
                if (s != MB_OK) return srv_fail(e, (int)s, NULL, "store: %s", err);
                *replay = 1;
                atomic_fetch_add_explicit(&app->metrics.replays, 1, memory_order_relaxed);
                return 0;
            }
        }
    }
    /* The record is written under the lock (log order = buffer order); the
     * fsync is waited for after it (store_wait), so concurrent posts share
     * one fsync (group commit). */
    uint64_t ticket = 0;
    mb_status s = store_transitions(app->store, m->log, client, seq, n, m->spec.obs_dim,
                                    m->spec.act_dim, obs, act, rew, next_obs, term, trunc, &ticket,
                                    err, sizeof err);
    if (s != MB_OK) {
        pthread_mutex_unlock(&m->lock);
        return srv_fail(e, (int)s, NULL, "store: %s", err);
    }
    mb_buffer_append(&m->buf, n, obs, act, rew, next_obs, term, trunc);
    m->gen++;
    *accepted = n;
    *buffer_size = m->buf.size;
    if (client) {
        if (!c) {
            if (m->n_clients < (int)app->cfg.max_clients) {
                c = &m->clients[m->n_clients++];
            } else { /* forget the least recently used client */
                c = &m->clients[0];
                for (int i = 1; i < m->n_clients; i++)
                    if (m->clients[i].last_used < c->last_used) c = &m->clients[i];
            }
            snprintf(c->client, sizeof c->client, "%s", client);
            c->seq = seq;
            c->window = 0;
        }
        if (seq > c->seq) {
            uint64_t ahead = seq - c->seq;
            c->window = ahead >= SRV_SEQ_WINDOW ? 0 : c->window << ahead;
            c->seq = seq;
        }
        c->window |= 1ULL << (c->seq - seq);
        if (seq == c->seq) {
            c->accepted = n;
            c->buffer_size = m->buf.size;
            c->ticket = ticket;
        }
        c->last_used = m->clock;
    }
    pthread_mutex_unlock(&m->lock);
    /* Not acknowledged until durable. On failure the rows stay in memory
     * (the log resumes with them, core/store/wal.h) but the answer is 503. */
    s = store_wait(app->store, m->log, ticket, err, sizeof err);
    if (s != MB_OK) return srv_fail(e, (int)s, NULL, "store: %s", err);
    atomic_fetch_add_explicit(&app->metrics.transitions, n, memory_order_relaxed);
    return 0;
}

int model_publish(srv_app *app, srv_model *m, mb_ensemble *ens, uint64_t *number, srv_err *e) {
    return model_publish_info(app, m, ens, NULL, number, e);
}

int model_publish_info(srv_app *app, srv_model *m, mb_ensemble *ens, const srv_version_info *info,
                       uint64_t *number, srv_err *e) {
    char err[256];
    srv_version *v = model_version_new();
    if (!v) {
        mb_ensemble_free(ens);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    v->ens = *ens;
    memset(ens, 0, sizeof *ens);
    if (info) v->info = *info;
    v->info.published = srv_wall();
    uint64_t hash = versions_hash(&v->ens, m->spec_json); /* a pass over the weights: unlocked */
    model_lock(m);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        model_version_put(v);
        return srv_fail(e, MB_ESTATE, NULL, "model '%s' was deleted", m->spec.name);
    }
    v->number = m->next_version++;
    versions_seal(v, hash);
    srv_version *old = m->cur;
    m->cur = v;
    srv_version *dropped[SRV_KEEP_MAX + 1];
    int n_dropped = versions_keep(app, m, v, dropped);
    m->gen++;
    pthread_mutex_unlock(&m->lock);
    model_version_put(old);
    for (int i = 0; i < n_dropped; i++) model_version_put(dropped[i]);
    *number = v->number;
    srv_log(SRV_LOG_INFO, "version published", "model=%s version=%llu", m->spec.name,
            (unsigned long long)v->number);
    /* A version is state derived from logged rows; the snapshot makes it
     * durable (the caller, the job, owns m->adam and hands it over). */
    if (store_durable(app->store) && model_snapshot(app, m, 1, NULL, err, sizeof err) != MB_OK)
        srv_log(SRV_LOG_WARN, "snapshot after training failed", "model=%s error=\"%s\"", m->spec.name, err);
    return 0;
}

/* Between two slices of model_buffer_copy: waiters get the lock first. */
static void model__yield(srv_model *m) {
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < 10000 && atomic_load(&m->lock_waiters) > 0; i++) sched_yield();
    pthread_mutex_lock(&m->lock); /* not model_lock: another copier must not wait for us */
}

mb_status model_buffer_copy(srv_model *m, mb_buffer *dst, size_t *slices, char *err, size_t err_sz) {
    size_t n_slices = 0;
    if (slices) *slices = 0;
    for (int attempt = 0; attempt < 3; attempt++) {
        mb_buffer shape = m->buf; /* dims, capacity, holdout: allocated unlocked */
        const float *id = m->buf.obs;
        pthread_mutex_unlock(&m->lock);
        mb_status st = mb_buffer_init_like(dst, &shape, err, err_sz);
        pthread_mutex_lock(&m->lock);
        if (st != MB_OK) return st;
        const mb_buffer *src = &m->buf;
        if (src->obs != id) { /* replaced meanwhile (an import): start again */
            mb_buffer_free(dst);
            continue;
        }
        uint64_t total0 = src->total;
        size_t head0 = src->head, size0 = src->size;
        size_t row = sizeof(float) * (2 * (size_t)src->obs_dim + (size_t)src->act_dim + 1) + 2;
        size_t step = (1u << 20) / row > 0 ? (1u << 20) / row : 1;
        int swapped = 0;
        /* The held rows are slots [0, size): a ring fills from slot 0. */
        for (size_t k = 0; k < size0;) {
            size_t cnt = size0 - k < step ? size0 - k : step;
            mb_buffer_copy_slots(dst, src, k, cnt);
            k += cnt;
            n_slices++;
            if (k >= size0) break;
            model__yield(m);
            if (m->buf.obs != id) {
                swapped = 1;
                break;
            }
        }
        if (swapped) {
            mb_buffer_free(dst);
            continue;
        }
        /* Rows appended since the start went to slots head0, head0 + 1, ...
         * (mod capacity): copy those again; the rest did not change. */
        uint64_t appended = src->total - total0;
        if (appended >= src->capacity) {
            mb_buffer_copy_slots(dst, src, 0, src->size);
            n_slices++;
        } else if (appended > 0) {
            size_t a = (size_t)appended, run = src->capacity - head0 < a ? src->capacity - head0 : a;
            mb_buffer_copy_slots(dst, src, head0, run);
            if (run < a) mb_buffer_copy_slots(dst, src, 0, a - run);
            n_slices++;
        }
        dst->size = src->size;
        dst->head = src->head;
        dst->total = src->total;
        if (slices) *slices = n_slices;
        return MB_OK;
    }
    /* replaced three times in a row: one copy under the lock */
    if (slices) *slices = n_slices + 1;
    return mb_buffer_copy(dst, &m->buf, err, err_sz);
}

mb_plan_ws *model_ws_get(srv_app *app, srv_model *m, const mb_planner_cfg *cfg, const mb_dynamics *dyn,
                         size_t bytes, int *busy) {
    *busy = 0;
    model_lock(m);
    for (int i = m->n_ws_free - 1; i >= 0; i--)
        if (mb_plan_ws_fits(m->ws_free[i], cfg, dyn)) {
            mb_plan_ws *ws = m->ws_free[i];
            m->ws_free[i] = m->ws_free[--m->n_ws_free];
            pthread_mutex_unlock(&m->lock);
            return ws;
        }
    pthread_mutex_unlock(&m->lock);
    if (!app_plan_room(app, bytes)) {
        *busy = 1;
        return NULL;
    }
    mb_plan_ws *ws = mb_plan_ws_new(cfg, dyn);
    /* what was taken is what is held: the figure, computed by the same
     * code, is the workspace's own */
    plan_budget_adjust(&app->budget, bytes, ws ? mb_plan_ws_bytes(ws) : 0);
    return ws;
}

void model_ws_put(srv_model *m, mb_plan_ws *ws) {
    if (!ws) return;
    mb_plan_ws *drop = NULL;
    model_lock(m);
    if (m->deleted) {
        drop = ws;
    } else if (m->n_ws_free < m->ws_cap) {
        m->ws_free[m->n_ws_free++] = ws;
    } else { /* keep the newest: an override's odd size should not pin memory */
        drop = m->ws_free[0];
        m->ws_free[0] = ws;
    }
    pthread_mutex_unlock(&m->lock);
    if (drop) plan_budget_release(m->budget, mb_plan_ws_bytes(drop));
    mb_plan_ws_free(drop);
}

void model_ws_trim(srv_model *m) {
    for (;;) { /* one at a time: no copy of the list, nothing freed under the lock */
        model_lock(m);
        mb_plan_ws *drop = m->n_ws_free > 0 ? m->ws_free[--m->n_ws_free] : NULL;
        pthread_mutex_unlock(&m->lock);
        if (!drop) return;
        plan_budget_release(m->budget, mb_plan_ws_bytes(drop));
        mb_plan_ws_free(drop);
    }
}

int app_plan_room(srv_app *app, size_t bytes) {
    if (plan_budget_take(&app->budget, bytes)) return 1;
    srv_model *ms[SRV_MAX_MODELS];
    int n = registry_snapshot(&app->reg, ms, SRV_MAX_MODELS);
    for (int i = 0; i < n; i++) {
        model_ws_trim(ms[i]);
        model_put(ms[i]);
    }
    return plan_budget_take(&app->budget, bytes);
}
