/* model.c: the registry and the four state changes of a model (see model.h).
 * Every change calls the store first (store.h): that is where the durability
 * layer plugs in; the store never calls back. */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "job.h"
#include "log.h"
#include "model_persist.h"

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

static srv_version *version__new(void) {
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
    pthread_mutex_lock(&m->lock);
    srv_version *v = m->cur;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return v;
}

static void model__free(srv_model *m) {
    store_log_release(m->log); /* closes a deleted model's log; a live one stays */
    for (int i = 0; i < m->n_sessions; i++) session_free(m->sessions[i]);
    for (int i = 0; i < m->n_jobs; i++) job_put(m->jobs[i]);
    for (int i = 0; i < m->n_ws_free; i++) mb_plan_ws_free(m->ws_free[i]);
    model_version_put(m->cur);
    model_policy_free_all(m);
    mb_buffer_free(&m->buf);
    if (m->adam_ready) mb_adam_free(&m->adam);
    free(m->sessions);
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
    pthread_mutex_init(&m->lock, NULL);
    m->spec = *spec;
    m->created = srv_wall();
    m->next_version = 1;
    m->next_job = 1;
    cJSON *js = spec_render(spec);
    m->spec_json = js ? cJSON_PrintUnformatted(js) : NULL;
    cJSON_Delete(js);
    m->clients = calloc((size_t)app->cfg.max_clients, sizeof *m->clients);
    m->sessions = calloc((size_t)app->cfg.max_sessions, sizeof *m->sessions);
    m->cur = version__new();
    if (!m->spec_json || !m->clients || !m->sessions || !m->cur) {
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

    pthread_mutex_lock(&m->lock);
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
    pthread_mutex_lock(&m->lock);
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
    char err[256];
    srv_version *v = version__new();
    if (!v) {
        mb_ensemble_free(ens);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    v->ens = *ens;
    memset(ens, 0, sizeof *ens);
    pthread_mutex_lock(&m->lock);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        model_version_put(v);
        return srv_fail(e, MB_ESTATE, NULL, "model '%s' was deleted", m->spec.name);
    }
    v->number = m->next_version++;
    srv_version *old = m->cur;
    m->cur = v;
    m->gen++;
    pthread_mutex_unlock(&m->lock);
    model_version_put(old);
    *number = v->number;
    srv_log(SRV_LOG_INFO, "version published", "model=%s version=%llu", m->spec.name,
            (unsigned long long)v->number);
    /* A version is state derived from logged rows; the snapshot makes it
     * durable (the caller, the job, owns m->adam and hands it over). */
    if (store_durable(app->store) && model_snapshot(app, m, 1, NULL, err, sizeof err) != MB_OK)
        srv_log(SRV_LOG_WARN, "snapshot after training failed", "model=%s error=\"%s\"", m->spec.name, err);
    return 0;
}

mb_plan_ws *model_ws_get(srv_model *m, const mb_planner_cfg *cfg, const mb_dynamics *dyn) {
    pthread_mutex_lock(&m->lock);
    for (int i = m->n_ws_free - 1; i >= 0; i--)
        if (mb_plan_ws_fits(m->ws_free[i], cfg, dyn)) {
            mb_plan_ws *ws = m->ws_free[i];
            m->ws_free[i] = m->ws_free[--m->n_ws_free];
            pthread_mutex_unlock(&m->lock);
            return ws;
        }
    pthread_mutex_unlock(&m->lock);
    return mb_plan_ws_new(cfg, dyn);
}

void model_ws_put(srv_model *m, mb_plan_ws *ws) {
    if (!ws) return;
    mb_plan_ws *drop = NULL;
    pthread_mutex_lock(&m->lock);
    if (m->n_ws_free < SRV_WS_KEPT) {
        m->ws_free[m->n_ws_free++] = ws;
    } else { /* keep the newest: an override's odd size should not pin memory */
        drop = m->ws_free[0];
        m->ws_free[0] = ws;
    }
    pthread_mutex_unlock(&m->lock);
    mb_plan_ws_free(drop);
}
