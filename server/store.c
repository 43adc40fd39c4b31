/* store.c: the durability layer of the daemon (see store.h): one
 * write-ahead log per model (core/store/wal.c), snapshots (core/store/snapshot.c),
 * recovery through the model.c seam, disk-error resume, interval snapshots.
 * Not for: the log or snapshot formats (core/), HTTP (api_*.c). */
/* Paths and messages are truncated on purpose when they do not fit. */
#pragma GCC diagnostic ignored "-Wformat-truncation"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "app.h"
#include "base/fsutil.h"
#include "log.h"
#include "model.h"
#include "store/snapshot.h"
#include "spec.h"
#include "store/wal.h"

#define STORE__DIR (SRV_PATH_MAX + 96)
#define STORE__KEEP 2 /* snapshots kept per model */

typedef struct {
    char name[SRV_NAME_MAX + 1];
    char dir[STORE__DIR];  /* <root>/m-<name> */
    mb_wal *wal;           /* open until store_close (a deleted model's too) */
    int deleted;
    pthread_mutex_t snap_mu; /* one snapshot of this model at a time */
    /* guarded by the store's mu */
    uint64_t snap_seq;
    double snap_time;      /* monotonic, of the last snapshot (or of creation) */
    double snap_wall;
    uint64_t snap_bytes;
    int recovered;
    uint64_t rec_snapshot_seq, rec_records, rec_replayed, rec_torn, rec_repaired;
    char rec_warning[700];
    int resume_logged;
} store__ent;

struct srv_store {
    int durable;
    char root[STORE__DIR]; /* <data-dir>/models */
    mb_wal_opts wopts;
    long snapshot_interval;
    int replaying;          /* recovery: hooks do nothing */
    pthread_mutex_t mu;     /* the table and the entries' status fields */
    store__ent **ents;
    int n, cap;
    struct srv_app *app;
    pthread_t th;
    int th_on, stop;
    pthread_cond_t cv;
};

/* ---- table -------------------------------------------------------------- */

static store__ent *store__find(srv_store *s, const char *name, int include_deleted) {
    store__ent *hit = NULL;
    pthread_mutex_lock(&s->mu);
    for (int i = s->n - 1; i >= 0; i--)
        if (!strcmp(s->ents[i]->name, name) && (!s->ents[i]->deleted || (include_deleted && !hit))) {
            hit = s->ents[i];
            if (!hit->deleted) break;
        }
    pthread_mutex_unlock(&s->mu);
    return hit;
}

static store__ent *store__new_ent(srv_store *s, const char *name) {
    store__ent *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dir, sizeof e->dir, "%s/m-%s", s->root, name);
    pthread_mutex_init(&e->snap_mu, NULL);
    e->snap_time = srv_now();
    return e;
}

static mb_status store__add(srv_store *s, store__ent *e, char *err, size_t err_sz) {
    pthread_mutex_lock(&s->mu);
    if (s->n == s->cap) {
        int nc = s->cap ? 2 * s->cap : 16;
        store__ent **p = realloc(s->ents, (size_t)nc * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&s->mu);
            return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
        }
        s->ents = p;
        s->cap = nc;
    }
    s->ents[s->n++] = e;
    pthread_mutex_unlock(&s->mu);
    return MB_OK;
}

static void store__free_ent(store__ent *e) {
    if (!e) return;
    char err[256];
    if (e->wal && mb_wal_close(e->wal, err, sizeof err) != MB_OK)
        srv_log(SRV_LOG_WARN, "closing a model log failed", "model=%s error=\"%s\"", e->name, err);
    pthread_mutex_destroy(&e->snap_mu);
    free(e);
}

static void store__path(char *out, size_t sz, const store__ent *e, const char *sub) {
    snprintf(out, sz, "%s/%s", e->dir, sub);
}

/* ---- open / close ------------------------------------------------------- */

mb_status store_open(srv_store **out, const srv_config *cfg, char *err, size_t err_sz) {
    srv_store *s = calloc(1, sizeof *s);
    if (!s) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    mb_wal_opts_default(&s->wopts);
    s->wopts.repair = cfg->repair != 0;
    s->snapshot_interval = cfg->snapshot_interval;
    *out = s;
    mb_status st = mb_wal_fsync_parse(cfg->fsync, &s->wopts.fsync, err, err_sz);
    if (st != MB_OK) return st;
    if (!cfg->data_dir[0]) {
        srv_log(SRV_LOG_WARN, "no --data-dir: models live in memory only and are lost on restart", NULL);
        return MB_OK;
    }
    s->durable = 1;
    snprintf(s->root, sizeof s->root, "%s/models", cfg->data_dir);
    return mb_fs_mkdir_p(s->root, 0755, err, err_sz);
}

void store_close(srv_store *s) {
    if (!s) return;
    if (s->th_on) {
        pthread_mutex_lock(&s->mu);
        s->stop = 1;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
        s->th_on = 0;
    }
    for (int i = 0; i < s->n; i++) store__free_ent(s->ents[i]);
    free(s->ents);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

int store_durable(const srv_store *s) { return s && s->durable; }

int store_ready(const srv_store *s) {
    if (!s) return 0;
    srv_store *w = (srv_store *)s;
    int ok = 1;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n && ok; i++)
        if (!w->ents[i]->deleted && w->ents[i]->wal && mb_wal_failed(w->ents[i]->wal, NULL, 0)) ok = 0;
    pthread_mutex_unlock(&w->mu);
    return ok;
}

/* ---- the hooks ---------------------------------------------------------- */

mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, char *err,
                              size_t err_sz) {
    if (!s->durable || s->replaying) return MB_OK;
    store__ent *e = store__new_ent(s, name);
    if (!e) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    char wdir[STORE__DIR + 8];
    store__path(wdir, sizeof wdir, e, "wal");
    /* A leftover directory is a model whose deletion or creation never
     * completed (never acknowledged): start clean. */
    mb_status st = mb_fs_remove_tree(e->dir, err, err_sz);
    if (st == MB_OK) st = mb_wal_open(&e->wal, wdir, &s->wopts, 0, NULL, NULL, NULL, err, err_sz);
    if (st == MB_OK) st = mb_wal_append(e->wal, MB_WAL_REC_CREATE, spec_json, strlen(spec_json), NULL, err, err_sz);
    if (st == MB_OK) st = store__add(s, e, err, err_sz);
    if (st != MB_OK) {
        char e2[256];
        if (e->wal) mb_wal_close(e->wal, e2, sizeof e2);
        e->wal = NULL;
        mb_fs_remove_tree(e->dir, e2, sizeof e2);
        store__free_ent(e);
    }
    return st;
}

mb_status store_model_deleted(srv_store *s, const char *name, char *err, size_t err_sz) {
    if (!s->durable || s->replaying) return MB_OK;
    store__ent *e = store__find(s, name, 0);
    if (!e) return MB_OK;
    mb_status st = mb_wal_append(e->wal, MB_WAL_REC_DELETE, NULL, 0, NULL, err, err_sz);
    if (st != MB_OK) return st;
    pthread_mutex_lock(&s->mu);
    e->deleted = 1;
    pthread_mutex_unlock(&s->mu);
    /* The DELETE record is durable: if this fails, recovery finishes it. */
    char e2[512];
    pthread_mutex_lock(&e->snap_mu);
    if (mb_fs_remove_tree(e->dir, e2, sizeof e2) != MB_OK)
        srv_log(SRV_LOG_WARN, "removing a deleted model's files failed", "model=%s error=\"%s\"", name, e2);
    pthread_mutex_unlock(&e->snap_mu);
    return MB_OK;
}

mb_status store_transitions(srv_store *s, const char *name, const char *client, uint64_t seq,
                            size_t n, int obs_dim, int act_dim, const float *obs, const float *act,
                            const float *rew, const float *next_obs, const uint8_t *term,
                            const uint8_t *trunc, uint64_t *ticket, char *err, size_t err_sz) {
    *ticket = 0;
    if (!s->durable || s->replaying) return MB_OK;
    store__ent *e = store__find(s, name, 0);
    if (!e) return mb_fail(err, err_sz, MB_ESTATE, "model '%s' has no log", name);
    if (n > UINT32_MAX) return mb_fail(err, err_sz, MB_ERANGE, "batch too large");
    mb_wal_batch b = {.client = client, .client_seq = seq, .n = (uint32_t)n, .obs_dim = obs_dim,
                      .act_dim = act_dim, .obs = obs, .act = act, .rew = rew, .next_obs = next_obs,
                      .terminated = term, .truncated = trunc};
    return mb_wal_append_batch_nowait(e->wal, &b, ticket, err, err_sz);
}

mb_status store_wait(srv_store *s, const char *name, uint64_t ticket, char *err, size_t err_sz) {
    if (!s->durable || s->replaying || ticket == 0) return MB_OK;
    store__ent *e = store__find(s, name, 1);
    if (!e) return mb_fail(err, err_sz, MB_ESTATE, "model '%s' has no log", name);
    return mb_wal_wait(e->wal, ticket, err, err_sz);
}

mb_status store_version(srv_store *s, const char *name, uint64_t number, const mb_ensemble *ens,
                        char *err, size_t err_sz) {
    /* Nothing to log: a version is state derived from the logged data; the
     * snapshot taken after the job (store_snapshot) makes it durable. */
    (void)s, (void)name, (void)number, (void)ens, (void)err, (void)err_sz;
    return MB_OK;
}

/* ---- snapshots ---------------------------------------------------------- */

/* The META blob: {"format", "spec", "version", "next_version", "clients"}.
 * Model lock held. */
static char *store__meta(const srv_model *m, const srv_version *v, int with_clients) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "format", "mbrld-model/1");
    cJSON_AddItemToObject(o, "spec", cJSON_Parse(m->spec_json));
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddNumberToObject(o, "next_version", (double)m->next_version);
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
            cJSON_AddItemToArray(a, c);
        }
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static mb_status store__adam_copy(mb_adam *dst, const mb_adam *src, char *err, size_t err_sz) {
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

mb_status store_snapshot(srv_store *s, srv_model *m, int adam_owned, cJSON **info, char *err,
                         size_t err_sz) {
    if (info) *info = NULL;
    if (!s->durable) return mb_fail(err, err_sz, MB_ESTATE, "no --data-dir: nothing is persisted");
    store__ent *e = store__find(s, m->spec.name, 0);
    if (!e) return mb_fail(err, err_sz, MB_ENOTFOUND, "model '%s' has no log", m->spec.name);
    mb_buffer buf;
    mb_adam adam;
    int have_adam = 0;
    char *meta = NULL;
    srv_version *v = NULL;
    mb_status st;
    memset(&buf, 0, sizeof buf);
    pthread_mutex_lock(&e->snap_mu);
    pthread_mutex_lock(&s->mu);
    int gone = e->deleted; /* deleted while we waited: writing now would bring it back */
    pthread_mutex_unlock(&s->mu);
    double t0 = srv_now();
    pthread_mutex_lock(&m->lock);
    if (m->deleted || gone) {
        pthread_mutex_unlock(&m->lock);
        pthread_mutex_unlock(&e->snap_mu);
        return mb_fail(err, err_sz, MB_ENOTFOUND, "model '%s' was deleted", m->spec.name);
    }
    /* Under the model lock the log's last seq and the buffer agree: every
     * append writes its record and its rows under this lock. */
    uint64_t seq = mb_wal_last_seq(e->wal);
    st = mb_buffer_copy(&buf, &m->buf, err, err_sz);
    /* running first: a running job owns adam (and sets adam_ready) unlocked */
    if (st == MB_OK && (adam_owned || !m->running) && m->adam_ready) {
        st = store__adam_copy(&adam, &m->adam, err, err_sz);
        have_adam = st == MB_OK;
    }
    v = m->cur;
    atomic_fetch_add(&v->refs, 1);
    if (st == MB_OK && !(meta = store__meta(m, v, 1))) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    pthread_mutex_unlock(&m->lock);
    char path[STORE__DIR + 64], sdir[STORE__DIR + 8];
    uint64_t oldest = 0;
    if (st == MB_OK) {
        mb_snapshot_src src = {meta, strlen(meta), &v->ens, have_adam ? &adam : NULL, &buf, seq};
        store__path(sdir, sizeof sdir, e, "snap");
        st = mb_snapshot_save(sdir, &src, STORE__KEEP, path, sizeof path, &oldest, err, err_sz);
    }
    if (st == MB_OK) {
        char e2[256];
        int removed = 0;
        uint64_t covered = seq;
        /* The marker tells a reader of the log where snapshots were taken. */
        if (mb_wal_append(e->wal, MB_WAL_REC_SNAPSHOT, &covered, sizeof covered, NULL, e2, sizeof e2) != MB_OK ||
            mb_wal_remove_through(e->wal, oldest, &removed, e2, sizeof e2) != MB_OK)
            srv_log(SRV_LOG_WARN, "after a snapshot", "model=%s error=\"%s\"", m->spec.name, e2);
        struct stat sb;
        double dt = srv_now() - t0;
        pthread_mutex_lock(&s->mu);
        e->snap_seq = seq;
        e->snap_time = srv_now();
        e->snap_wall = srv_wall();
        e->snap_bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        pthread_mutex_unlock(&s->mu);
        srv_log(SRV_LOG_INFO, "snapshot written", "model=%s log_seq=%" PRIu64 " version=%" PRIu64
                " rows=%zu adam=%d bytes=%" PRIu64 " seconds=%.3f segments_removed=%d", m->spec.name, seq,
                v->number, buf.size, have_adam, e->snap_bytes, dt, removed);
        if (info) {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddNumberToObject(o, "log_seq", (double)seq);
            cJSON_AddNumberToObject(o, "version", (double)v->number);
            cJSON_AddNumberToObject(o, "rows", (double)buf.size);
            cJSON_AddBoolToObject(o, "optimizer", have_adam);
            cJSON_AddNumberToObject(o, "bytes", (double)e->snap_bytes);
            cJSON_AddNumberToObject(o, "seconds", dt);
            cJSON_AddNumberToObject(o, "log_segments_removed", removed);
            *info = o;
        }
    }
    pthread_mutex_unlock(&e->snap_mu);
    free(meta);
    if (have_adam) mb_adam_free(&adam);
    mb_buffer_free(&buf);
    model_version_put(v);
    return st;
}

void store_snapshot_all(srv_store *s, struct srv_app *app) {
    if (!s->durable) return;
    int cap = (int)app->cfg.max_models;
    srv_model **ms = malloc((size_t)(cap > 0 ? cap : 1) * sizeof *ms);
    if (!ms) {
        srv_log(SRV_LOG_WARN, "no memory to snapshot the models", NULL);
        return;
    }
    int n = registry_snapshot(&app->reg, ms, cap);
    for (int i = 0; i < n; i++) {
        char err[512];
        if (store_snapshot(s, ms[i], 0, NULL, err, sizeof err) != MB_OK)
            srv_log(SRV_LOG_WARN, "snapshot failed", "model=%s error=\"%s\"", ms[i]->spec.name, err);
        model_put(ms[i]);
    }
    free(ms);
}

cJSON *store_model_status(srv_store *s, const char *name) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddBoolToObject(o, "durable", s->durable);
    if (!s->durable) return o;
    store__ent *e = store__find(s, name, 0);
    if (!e) return o;
    char msg[400];
    int failed = mb_wal_failed(e->wal, msg, sizeof msg);
    cJSON_AddStringToObject(o, "fsync", mb_wal_fsync_name(s->wopts.fsync));
    cJSON_AddNumberToObject(o, "log_seq", (double)mb_wal_last_seq(e->wal));
    cJSON_AddBoolToObject(o, "log_failed", failed);
    if (failed) cJSON_AddStringToObject(o, "log_error", msg);
    pthread_mutex_lock(&s->mu);
    if (e->snap_wall > 0) {
        cJSON *sn = cJSON_AddObjectToObject(o, "last_snapshot");
        cJSON_AddNumberToObject(sn, "log_seq", (double)e->snap_seq);
        cJSON_AddNumberToObject(sn, "time", e->snap_wall);
        cJSON_AddNumberToObject(sn, "bytes", (double)e->snap_bytes);
    } else {
        cJSON_AddNullToObject(o, "last_snapshot");
    }
    if (e->recovered) {
        cJSON *r = cJSON_AddObjectToObject(o, "recovered");
        cJSON_AddNumberToObject(r, "snapshot_log_seq", (double)e->rec_snapshot_seq);
        cJSON_AddNumberToObject(r, "log_records", (double)e->rec_records);
        cJSON_AddNumberToObject(r, "replayed_records", (double)e->rec_replayed);
        cJSON_AddNumberToObject(r, "torn_bytes_cut", (double)e->rec_torn);
        cJSON_AddNumberToObject(r, "repaired_bytes", (double)e->rec_repaired);
        cJSON_AddStringToObject(r, "warning", e->rec_warning);
    } else {
        cJSON_AddNullToObject(o, "recovered");
    }
    pthread_mutex_unlock(&s->mu);
    return o;
}

mb_status store_export(srv_model *m, int with_buffer, void **data, size_t *n, char *err, size_t err_sz) {
    mb_buffer buf;
    memset(&buf, 0, sizeof buf);
    mb_status st = MB_OK;
    pthread_mutex_lock(&m->lock);
    srv_version *v = m->cur;
    atomic_fetch_add(&v->refs, 1);
    if (with_buffer) st = mb_buffer_copy(&buf, &m->buf, err, err_sz);
    char *meta = st == MB_OK ? store__meta(m, v, 0) : NULL;
    pthread_mutex_unlock(&m->lock);
    if (st == MB_OK && !meta) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    if (st == MB_OK) {
        mb_snapshot_src src = {meta, strlen(meta), &v->ens, NULL, with_buffer ? &buf : NULL, 0};
        st = mb_snapshot_encode_mem(&src, data, n, err, err_sz);
    }
    free(meta);
    if (with_buffer) mb_buffer_free(&buf);
    model_version_put(v);
    return st;
}

/* ---- recovery ----------------------------------------------------------- */

typedef struct {
    srv_store *s;
    srv_app *app;
    const char *name;
    srv_model *m;   /* referenced once created */
    int deleted;
    char *why;      /* err buffer of the replay */
} store__replay;

static int store__spec_from_json(srv_app *app, const cJSON *spec_js, const char *name, srv_model_spec *sp,
                                 char *err, size_t err_sz) {
    srv_err e;
    memset(&e, 0, sizeof e);
    if (!spec_js || spec_parse(spec_js, &app->cfg, sp, &e) != 0) {
        mb_fail(err, err_sz, MB_ECORRUPT, "model '%s': stored spec not accepted: %s%s%s", name,
                spec_js ? e.message : "missing", e.field[0] ? " at " : "", e.field);
        return -1;
    }
    if (strcmp(sp->name, name) != 0) {
        mb_fail(err, err_sz, MB_ECORRUPT, "directory of '%s' holds model '%s'", name, sp->name);
        return -1;
    }
    return 0;
}

static mb_status store__create_replayed(store__replay *r, const srv_model_spec *sp, char *err, size_t err_sz) {
    srv_err e;
    memset(&e, 0, sizeof e);
    if (model_create(r->app, sp, &r->m, &e) != 0)
        return mb_fail(err, err_sz, e.status == MB_ENOMEM ? MB_ENOMEM : MB_ECORRUPT, "model '%s': %s", r->name,
                       e.message);
    return MB_OK;
}

static mb_status store__replay_fn(void *ctx, const mb_wal_record *rec, char *err, size_t err_sz) {
    store__replay *r = ctx;
    if (r->deleted) return MB_OK; /* appends that raced with the delete */
    switch (rec->type) {
    case MB_WAL_REC_CREATE: {
        if (r->m) return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": second create record",
                                 rec->file, rec->offset);
        cJSON *js = cJSON_ParseWithLength(rec->body, rec->len);
        srv_model_spec sp;
        int bad = store__spec_from_json(r->app, js, r->name, &sp, err, err_sz);
        cJSON_Delete(js);
        if (bad) return MB_ECORRUPT;
        return store__create_replayed(r, &sp, err, err_sz);
    }
    case MB_WAL_REC_TRANSITIONS: {
        if (!r->m) return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": transitions before the model "
                                  "was created", rec->file, rec->offset);
        mb_wal_batch b;
        mb_status st = mb_wal_batch_decode(rec, &b, err, err_sz);
        if (st != MB_OK) return st;
        if (b.obs_dim != r->m->spec.obs_dim || b.act_dim != r->m->spec.act_dim)
            return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": transition dims %d/%d, model %d/%d",
                           rec->file, rec->offset, b.obs_dim, b.act_dim, r->m->spec.obs_dim, r->m->spec.act_dim);
        char client[MB_WAL_MAX_CLIENT + 1];
        memcpy(client, b.client ? b.client : "", b.client_len);
        client[b.client_len] = '\0';
        size_t accepted, size;
        int replay;
        srv_err e;
        memset(&e, 0, sizeof e);
        if (model_append(r->app, r->m, b.client_len ? client : NULL, b.client_seq, b.n, b.obs, b.act, b.rew,
                         b.next_obs, b.terminated, b.truncated, &accepted, &size, &replay, &e) != 0)
            return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": %s", rec->file, rec->offset, e.message);
        return MB_OK;
    }
    case MB_WAL_REC_DELETE:
        r->deleted = 1;
        return MB_OK;
    default: /* snapshot markers and unknown future types carry no state */
        return MB_OK;
    }
}

mb_status store_install(struct srv_app *app, srv_model *m, mb_snapshot *sn, const cJSON *meta, char *err,
                        size_t err_sz) {
    store__replay rr = {NULL, app, m->spec.name, m, 0, NULL}, *r = &rr;
    if (sn->has_buffer && (sn->buf.obs_dim != m->spec.obs_dim || sn->buf.act_dim != m->spec.act_dim))
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': buffer dims differ from its spec", r->name);
    if (sn->has_ensemble && memcmp(&sn->ens.spec, &m->cur->ens.spec, sizeof sn->ens.spec) != 0)
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': ensemble differs from its spec", r->name);
    if (sn->has_adam && sn->has_ensemble && sn->adam.n != sn->ens.n_params)
        return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': optimiser size", r->name);
    pthread_mutex_lock(&m->lock);
    if (sn->has_buffer) {
        if (sn->buf.capacity != m->buf.capacity) {
            /* The spec fixes the capacity; a different one means a foreign file. */
            pthread_mutex_unlock(&m->lock);
            return mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': buffer capacity differs", r->name);
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
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(meta, "clients"); /* absent in exports */
    const cJSON *c;
    cJSON_ArrayForEach(c, cl) {
        if (m->n_clients >= (int)r->app->cfg.max_clients) break;
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
    pthread_mutex_unlock(&m->lock);
    return MB_OK;
}

static mb_status store__recover_model(srv_store *s, srv_app *app, const char *name, char *err, size_t err_sz) {
    store__ent *e = store__new_ent(s, name);
    if (!e) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    char sdir[STORE__DIR + 8], wdir[STORE__DIR + 8], spath[STORE__DIR + 64], warn[1200] = "";
    store__path(sdir, sizeof sdir, e, "snap");
    store__path(wdir, sizeof wdir, e, "wal");
    store__replay r = {s, app, name, NULL, 0, err};
    mb_snapshot sn;
    mb_status st = mb_snapshot_load_latest(sdir, NULL, &sn, spath, sizeof spath, warn, sizeof warn, err, err_sz);
    uint64_t after = 0;
    int have_snap = st == MB_OK;
    if (st != MB_OK && st != MB_ENOTFOUND) goto out;
    st = MB_OK;
    if (have_snap) {
        cJSON *meta = cJSON_ParseWithLength(sn.meta, sn.meta_len);
        srv_model_spec sp;
        if (store__spec_from_json(app, cJSON_GetObjectItemCaseSensitive(meta, "spec"), name, &sp, err, err_sz) != 0)
            st = MB_ECORRUPT;
        if (st == MB_OK) st = store__create_replayed(&r, &sp, err, err_sz);
        if (st == MB_OK) st = store_install(app, r.m, &sn, meta, err, err_sz);
        cJSON_Delete(meta);
        after = sn.log_seq;
        mb_snapshot_free(&sn);
        if (st != MB_OK) goto out;
    }
    mb_wal_opts o = s->wopts;
    o.min_next_seq = after + 1;
    mb_wal_report rep;
    st = mb_wal_open(&e->wal, wdir, &o, after, store__replay_fn, &r, &rep, err, err_sz);
    if (st != MB_OK) goto out;
    if (!r.m || r.deleted) {
        /* Deleted, or created but never acknowledged: finish the removal. */
        char e2[512];
        mb_wal_close(e->wal, e2, sizeof e2);
        e->wal = NULL;
        if (r.m) {
            srv_err se;
            model_delete(app, name, &se);
        }
        srv_log(SRV_LOG_INFO, r.m ? "removed a deleted model's files" : "removed an unfinished model directory",
                "model=%s dir=%s", name, e->dir);
        if (mb_fs_remove_tree(e->dir, e2, sizeof e2) != MB_OK)
            srv_log(SRV_LOG_WARN, "removing model files failed", "model=%s error=\"%s\"", name, e2);
        store__free_ent(e);
        e = NULL;
        goto out;
    }
    e->recovered = 1;
    e->rec_snapshot_seq = after;
    e->rec_records = rep.records;
    e->rec_replayed = rep.replayed;
    e->rec_torn = rep.torn_bytes;
    e->rec_repaired = rep.repaired_bytes;
    snprintf(e->rec_warning, sizeof e->rec_warning, "%s%s%s", warn, warn[0] && rep.warning[0] ? "; " : "",
             rep.warning);
    e->snap_seq = after;
    if (e->rec_warning[0])
        srv_log(SRV_LOG_WARN, "recovery warning", "model=%s warning=\"%s\"", name, e->rec_warning);
    srv_log(SRV_LOG_INFO, "model recovered", "model=%s snapshot=%s snapshot_log_seq=%" PRIu64 " log_records=%" PRIu64
            " replayed=%" PRIu64 " last_seq=%" PRIu64 " buffer_size=%zu version=%" PRIu64 " torn_bytes_cut=%" PRIu64,
            name, have_snap ? spath : "none", after, rep.records, rep.replayed, mb_wal_last_seq(e->wal),
            r.m->buf.size, r.m->cur->number, rep.torn_bytes);
    st = store__add(s, e, err, err_sz);
    if (st == MB_OK) e = NULL;
out:
    if (r.m) model_put(r.m);
    if (e) store__free_ent(e);
    if (st != MB_OK && err_sz && !strstr(err, name)) {
        char tmp[512];
        snprintf(tmp, sizeof tmp, "%s", err);
        mb_fail(err, err_sz, st, "model '%s': %s", name, tmp);
    }
    return st;
}

static void *store__main(void *arg);

static int store__cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

mb_status store_recover(srv_store *s, srv_app *app, char *err, size_t err_sz) {
    s->app = app;
    mb_status st = MB_OK;
    if (s->durable) {
        DIR *d = opendir(s->root);
        if (!d) return mb_fail(err, err_sz, MB_EIO, "open %s: %s", s->root, strerror(errno));
        char *names[4096];
        int n = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL && n < 4096) {
            if (strncmp(de->d_name, "m-", 2) != 0) continue;
            if (!spec_name_ok(de->d_name + 2)) {
                srv_log(SRV_LOG_WARN, "ignoring a directory that is not a model", "dir=%s/%s", s->root, de->d_name);
                continue;
            }
            names[n++] = strdup(de->d_name + 2);
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, store__cmp_str);
        double t0 = srv_now();
        s->replaying = 1;
        int ok = 0;
        for (int i = 0; i < n; i++) {
            if (st == MB_OK && names[i]) {
                st = store__recover_model(s, app, names[i], err, err_sz);
                ok += st == MB_OK;
            }
            free(names[i]);
        }
        s->replaying = 0;
        if (st != MB_OK) return st;
        srv_log(SRV_LOG_INFO, "recovery done", "data_dir=%s models=%d seconds=%.3f fsync=%s", s->root, ok,
                srv_now() - t0, mb_wal_fsync_name(s->wopts.fsync));
    }
    if (pthread_create(&s->th, NULL, store__main, s) != 0)
        return mb_fail(err, err_sz, MB_ENOMEM, "cannot start the store thread");
    s->th_on = 1;
    return MB_OK;
}

/* ---- background: resume after disk errors, interval snapshots ----------- */

static void *store__main(void *arg) {
    srv_store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += 1;
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &ts) != ETIMEDOUT) {
        }
        if (s->stop || !s->durable) continue;
        for (int i = 0; i < s->n && !s->stop; i++) {
            store__ent *e = s->ents[i];
            if (e->deleted) continue;
            char msg[400], err[512];
            double now = srv_now();
            int want_snap = s->snapshot_interval > 0 && now - e->snap_time >= (double)s->snapshot_interval &&
                            mb_wal_last_seq(e->wal) > e->snap_seq;
            int failed = mb_wal_failed(e->wal, msg, sizeof msg);
            char name[SRV_NAME_MAX + 1];
            snprintf(name, sizeof name, "%s", e->name);
            /* Entries are never freed before store_close, so e stays valid
             * while the table lock is dropped for the slow work. */
            pthread_mutex_unlock(&s->mu);
            if (failed) {
                mb_status st = mb_wal_resume(e->wal, err, sizeof err);
                if (st == MB_OK) {
                    srv_log(SRV_LOG_INFO, "model log resumed after a disk error", "model=%s", name);
                    e->resume_logged = 0;
                } else if (!e->resume_logged) {
                    srv_log(SRV_LOG_WARN, "model log still failing; writes answer 503", "model=%s error=\"%s\"",
                            name, err);
                    e->resume_logged = 1;
                }
            } else if (want_snap && s->app) {
                srv_model *m = registry_get(&s->app->reg, name);
                if (m) {
                    if (store_snapshot(s, m, 0, NULL, err, sizeof err) != MB_OK)
                        srv_log(SRV_LOG_WARN, "interval snapshot failed", "model=%s error=\"%s\"", name, err);
                    model_put(m);
                }
            }
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
