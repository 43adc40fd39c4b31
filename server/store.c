/* store.c: the durability layer of the daemon (see store.h): one
 * write-ahead log per model (core/store/wal.c), snapshots
 * (core/store/snapshot.c), recovery handed to the caller's sink, disk-error
 * resume.
 * Not for: the log or snapshot formats (core/), what a model holds
 * (model_persist.c), HTTP (api_*.c). */
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

#include "base/fsutil.h"
#include "clock.h"
#include "log.h"
#include "spec.h"

/* Sized so that no path is ever cut: <data-dir>/models/m-<name>/<sub>/<file> */
#define STORE__ROOT (SRV_PATH_MAX + 8)                  /* + "/models" */
#define STORE__DIR (STORE__ROOT + 3 + SRV_NAME_MAX)     /* + "/m-" name */
#define STORE__WARN 1200 /* a snapshot load's warning */
#define STORE__KEEP 2 /* snapshots kept per model */

struct store_log {
    srv_store *store;
    char name[SRV_NAME_MAX + 1];
    char dir[STORE__DIR];  /* <root>/m-<name> */
    mb_wal *wal;           /* open until store_log_release (deleted) or store_close */
    int deleted;
    int busy;              /* the background thread works on it (store's mu) */
    pthread_mutex_t snap_mu; /* one snapshot of this model at a time */
    /* guarded by the store's mu */
    uint64_t snap_seq, snap_gen;
    int snap_written;
    double snap_time;      /* monotonic, of the last snapshot (or of creation) */
    double snap_wall;
    uint64_t snap_bytes;
    int recovered;
    uint64_t rec_snapshot_seq, rec_records, rec_replayed, rec_torn, rec_repaired;
    char rec_warning[STORE__WARN + 2 + sizeof(((mb_wal_report *)0)->warning)]; /* snapshot's; log's */
    int resume_logged;
};
typedef struct store_log store__ent;

struct srv_store {
    int durable;
    char root[STORE__ROOT]; /* <data-dir>/models */
    mb_wal_opts wopts;
    long snapshot_interval;
    int replaying;          /* recovery: hooks do nothing */
    pthread_mutex_t mu;     /* the table and the entries' status fields */
    store__ent **ents;
    int n, cap;
    pthread_t th;
    int th_on, stop;
    pthread_cond_t cv;
    pthread_cond_t idle;    /* an entry stopped being busy */
};

/* ---- table -------------------------------------------------------------- */

static store__ent *store__new_ent(srv_store *s, const char *name) {
    store__ent *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->store = s;
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->dir, sizeof e->dir, "%s/m-%s", s->root, e->name);
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
    pthread_cond_init(&s->idle, NULL);
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
    pthread_cond_destroy(&s->idle);
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

mb_status store_model_created(srv_store *s, const char *name, const char *spec_json, store_log **log,
                              char *err, size_t err_sz) {
    *log = NULL;
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
        return st;
    }
    *log = e;
    return MB_OK;
}

mb_status store_model_deleted(srv_store *s, store_log *e, char *err, size_t err_sz) {
    if (!s->durable || s->replaying || !e) return MB_OK;
    mb_status st = mb_wal_append(e->wal, MB_WAL_REC_DELETE, NULL, 0, NULL, err, err_sz);
    if (st != MB_OK) return st;
    pthread_mutex_lock(&s->mu);
    e->deleted = 1;
    pthread_mutex_unlock(&s->mu);
    /* The DELETE record is durable: if this fails, recovery finishes it. */
    char e2[512];
    pthread_mutex_lock(&e->snap_mu);
    if (mb_fs_remove_tree(e->dir, e2, sizeof e2) != MB_OK)
        srv_log(SRV_LOG_WARN, "removing a deleted model's files failed", "model=%s error=\"%s\"", e->name, e2);
    pthread_mutex_unlock(&e->snap_mu);
    return MB_OK;
}

void store_log_release(store_log *e) {
    if (!e) return;
    srv_store *s = e->store;
    pthread_mutex_lock(&s->mu);
    if (!e->deleted) { /* a live model's log stays open until store_close */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    while (e->busy) pthread_cond_wait(&s->idle, &s->mu);
    for (int i = 0; i < s->n; i++)
        if (s->ents[i] == e) {
            memmove(s->ents + i, s->ents + i + 1, sizeof *s->ents * (size_t)(s->n - i - 1));
            s->n--;
            break;
        }
    pthread_mutex_unlock(&s->mu);
    pthread_mutex_lock(&e->snap_mu); /* a snapshot that raced with the delete has ended */
    pthread_mutex_unlock(&e->snap_mu);
    store__free_ent(e); /* closes the log: its fd, its flusher thread */
}

mb_status store_transitions(srv_store *s, store_log *e, const char *client, uint64_t seq, size_t n,
                            int obs_dim, int act_dim, const float *obs, const float *act, const float *rew,
                            const float *next_obs, const uint8_t *term, const uint8_t *trunc,
                            uint64_t *ticket, char *err, size_t err_sz) {
    *ticket = 0;
    if (!s->durable || s->replaying) return MB_OK;
    if (!e) return mb_fail(err, err_sz, MB_ESTATE, "the model has no log");
    if (n > UINT32_MAX) return mb_fail(err, err_sz, MB_ERANGE, "batch too large");
    mb_wal_batch b = {.client = client, .client_seq = seq, .n = (uint32_t)n, .obs_dim = obs_dim,
                      .act_dim = act_dim, .obs = obs, .act = act, .rew = rew, .next_obs = next_obs,
                      .terminated = term, .truncated = trunc};
    return mb_wal_append_batch_nowait(e->wal, &b, ticket, err, err_sz);
}

mb_status store_wait(srv_store *s, store_log *e, uint64_t ticket, char *err, size_t err_sz) {
    if (!s->durable || s->replaying || ticket == 0) return MB_OK;
    if (!e) return mb_fail(err, err_sz, MB_ESTATE, "the model has no log");
    return mb_wal_wait(e->wal, ticket, err, err_sz);
}

/* ---- snapshots ---------------------------------------------------------- */

uint64_t store_log_seq(const store_log *e) { return e && e->wal ? mb_wal_last_seq(e->wal) : 0; }

/* The object describing e's newest snapshot. s->mu held. */
static cJSON *store__snap_info(const store__ent *e, const store_snap *sn, int written, double dt,
                               int removed) {
    const mb_snapshot_src *src = &sn->src;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "log_seq", (double)e->snap_seq);
    cJSON_AddNumberToObject(o, "version", (double)sn->version);
    cJSON_AddNumberToObject(o, "rows", (double)(src->buf ? src->buf->size : 0));
    cJSON_AddBoolToObject(o, "optimizer", src->adam != NULL);
    cJSON_AddNumberToObject(o, "bytes", (double)e->snap_bytes);
    cJSON_AddNumberToObject(o, "seconds", dt);
    cJSON_AddNumberToObject(o, "log_segments_removed", removed);
    if (!written) cJSON_AddBoolToObject(o, "superseded", 1);
    return o;
}

mb_status store_snapshot(srv_store *s, store_log *e, const store_snap *sn, cJSON **info, char *err,
                         size_t err_sz) {
    const mb_snapshot_src *src = &sn->src;
    uint64_t gen = sn->gen;
    if (info) *info = NULL;
    if (!s->durable) return mb_fail(err, err_sz, MB_ESTATE, "no --data-dir: nothing is persisted");
    if (!e) return mb_fail(err, err_sz, MB_ENOTFOUND, "the model has no log");
    double t0 = srv_now();
    pthread_mutex_lock(&e->snap_mu);
    pthread_mutex_lock(&s->mu);
    int gone = e->deleted; /* deleted meanwhile: writing now would bring it back */
    int stale = e->snap_written && gen < e->snap_gen;
    pthread_mutex_unlock(&s->mu);
    if (gone) {
        pthread_mutex_unlock(&e->snap_mu);
        return mb_fail(err, err_sz, MB_ENOTFOUND, "model '%s' was deleted", e->name);
    }
    if (stale) { /* a newer state is on disk already: that one covers this request */
        pthread_mutex_lock(&s->mu);
        if (info) *info = store__snap_info(e, sn, 0, srv_now() - t0, 0);
        pthread_mutex_unlock(&s->mu);
        pthread_mutex_unlock(&e->snap_mu);
        return MB_OK;
    }
    char path[STORE__DIR + 64], sdir[STORE__DIR + 8];
    uint64_t oldest = 0;
    store__path(sdir, sizeof sdir, e, "snap");
    mb_status st = mb_snapshot_save(sdir, src, STORE__KEEP, path, sizeof path, &oldest, err, err_sz);
    if (st == MB_OK) {
        char e2[256];
        int removed = 0;
        uint64_t covered = src->log_seq;
        /* The marker tells a reader of the log where snapshots were taken. */
        if (mb_wal_append(e->wal, MB_WAL_REC_SNAPSHOT, &covered, sizeof covered, NULL, e2, sizeof e2) != MB_OK ||
            mb_wal_remove_through(e->wal, oldest, &removed, e2, sizeof e2) != MB_OK)
            srv_log(SRV_LOG_WARN, "after a snapshot", "model=%s error=\"%s\"", e->name, e2);
        struct stat sb;
        double dt = srv_now() - t0;
        pthread_mutex_lock(&s->mu);
        e->snap_seq = src->log_seq;
        e->snap_gen = gen;
        e->snap_written = 1;
        e->snap_time = srv_now();
        e->snap_wall = srv_wall();
        e->snap_bytes = stat(path, &sb) == 0 ? (uint64_t)sb.st_size : 0;
        if (info) *info = store__snap_info(e, sn, 1, dt, removed);
        pthread_mutex_unlock(&s->mu);
        srv_log(SRV_LOG_INFO, "snapshot written", "model=%s log_seq=%" PRIu64 " version=%" PRIu64
                " rows=%zu adam=%d bytes=%" PRIu64 " seconds=%.3f segments_removed=%d", e->name, src->log_seq,
                sn->version, src->buf ? src->buf->size : 0, src->adam != NULL, e->snap_bytes, dt, removed);
    }
    pthread_mutex_unlock(&e->snap_mu);
    return st;
}

int store_snapshot_due(srv_store *s, store_log *e) {
    if (!s->durable || !e || s->snapshot_interval <= 0) return 0;
    pthread_mutex_lock(&s->mu);
    int due = !e->deleted && srv_now() - e->snap_time >= (double)s->snapshot_interval &&
              mb_wal_last_seq(e->wal) > e->snap_seq && !mb_wal_failed(e->wal, NULL, 0);
    pthread_mutex_unlock(&s->mu);
    return due;
}

cJSON *store_model_status(srv_store *s, store_log *e) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddBoolToObject(o, "durable", s->durable);
    if (!s->durable || !e) return o;
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

/* ---- recovery ----------------------------------------------------------- */

typedef struct {
    const store_sink *sink;
    store__ent *e;
    const char *name;
    int created, deleted;
} store__replay;

static mb_status store__create(store__replay *r, const cJSON *spec, char *err, size_t err_sz) {
    mb_status st = r->sink->create(r->sink->ctx, r->name, spec, r->e, err, err_sz);
    r->created = st == MB_OK;
    return st;
}

static mb_status store__replay_fn(void *ctx, const mb_wal_record *rec, char *err, size_t err_sz) {
    store__replay *r = ctx;
    if (r->deleted) return MB_OK; /* appends that raced with the delete */
    switch (rec->type) {
    case MB_WAL_REC_CREATE: {
        if (r->created) return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": second create record",
                                       rec->file, rec->offset);
        cJSON *js = cJSON_ParseWithLength(rec->body, rec->len);
        mb_status st = store__create(r, js, err, err_sz);
        cJSON_Delete(js);
        return st;
    }
    case MB_WAL_REC_TRANSITIONS: {
        if (!r->created) return mb_fail(err, err_sz, MB_ECORRUPT, "%s offset %" PRIu64 ": transitions before the "
                                        "model was created", rec->file, rec->offset);
        mb_wal_batch b;
        mb_status st = mb_wal_batch_decode(rec, &b, err, err_sz);
        if (st == MB_OK) st = r->sink->rows(r->sink->ctx, &b, err, err_sz);
        if (st != MB_OK && !strstr(err, rec->file)) {
            char tmp[512];
            snprintf(tmp, sizeof tmp, "%s", err);
            mb_fail(err, err_sz, st, "%s offset %" PRIu64 ": %s", rec->file, rec->offset, tmp);
        }
        return st;
    }
    case MB_WAL_REC_DELETE:
        r->deleted = 1;
        return MB_OK;
    default: /* snapshot markers and unknown future types carry no state */
        return MB_OK;
    }
}

static mb_status store__recover_model(srv_store *s, const store_sink *sink, const char *name, char *err,
                                      size_t err_sz) {
    store__ent *e = store__new_ent(s, name);
    if (!e) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    char sdir[STORE__DIR + 8], wdir[STORE__DIR + 8], spath[STORE__DIR + 64], warn[STORE__WARN] = "";
    store__path(sdir, sizeof sdir, e, "snap");
    store__path(wdir, sizeof wdir, e, "wal");
    store__replay r = {sink, e, name, 0, 0};
    mb_snapshot sn;
    mb_status st = mb_snapshot_load_latest(sdir, NULL, &sn, spath, sizeof spath, warn, sizeof warn, err, err_sz);
    uint64_t after = 0;
    int have_snap = st == MB_OK;
    if (st != MB_OK && st != MB_ENOTFOUND) goto out;
    st = MB_OK;
    if (have_snap) {
        cJSON *meta = cJSON_ParseWithLength(sn.meta, sn.meta_len);
        st = store__create(&r, cJSON_GetObjectItemCaseSensitive(meta, "spec"), err, err_sz);
        if (st == MB_OK) st = sink->install(sink->ctx, &sn, meta, err, err_sz);
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
    if (!r.created || r.deleted) {
        /* Deleted, or created but never acknowledged: finish the removal. */
        char e2[512];
        mb_wal_close(e->wal, e2, sizeof e2);
        e->wal = NULL;
        srv_log(SRV_LOG_INFO, r.created ? "removed a deleted model's files" : "removed an unfinished model directory",
                "model=%s dir=%s", name, e->dir);
        if (mb_fs_remove_tree(e->dir, e2, sizeof e2) != MB_OK)
            srv_log(SRV_LOG_WARN, "removing model files failed", "model=%s error=\"%s\"", name, e2);
        goto out; /* drops the model the sink holds */
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
    st = store__add(s, e, err, err_sz);
    if (st == MB_OK) {
        store_recovered info = {after, rep.records, rep.replayed, rep.torn_bytes, mb_wal_last_seq(e->wal),
                                have_snap ? spath : "none", e->rec_warning};
        sink->done(sink->ctx, &info);
        r.created = 0; /* the sink keeps it */
        e = NULL;
    }
out:
    if (r.created) sink->drop(sink->ctx);
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

mb_status store_recover(srv_store *s, const store_sink *sink, char *err, size_t err_sz) {
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
            char *nm = strdup(de->d_name + 2);
            if (!nm) { /* never skip a model's directory: recovery fails instead */
                st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory listing %s", s->root);
                break;
            }
            names[n++] = nm;
        }
        closedir(d);
        qsort(names, (size_t)n, sizeof *names, store__cmp_str);
        double t0 = srv_now();
        s->replaying = 1;
        int ok = 0;
        for (int i = 0; i < n; i++) {
            if (st == MB_OK) {
                st = store__recover_model(s, sink, names[i], err, err_sz);
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

/* ---- background: resume after disk errors -------------------------------- */

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
            if (!mb_wal_failed(e->wal, msg, sizeof msg)) continue;
            /* busy: store_log_release waits, so e stays valid while the
             * table lock is dropped for the slow work */
            e->busy = 1;
            pthread_mutex_unlock(&s->mu);
            mb_status st = mb_wal_resume(e->wal, err, sizeof err);
            if (st == MB_OK) {
                srv_log(SRV_LOG_INFO, "model log resumed after a disk error", "model=%s", e->name);
                e->resume_logged = 0;
            } else if (!e->resume_logged) {
                srv_log(SRV_LOG_WARN, "model log still failing; writes answer 503", "model=%s error=\"%s\"",
                        e->name, err);
                e->resume_logged = 1;
            }
            pthread_mutex_lock(&s->mu);
            e->busy = 0;
            pthread_cond_broadcast(&s->idle);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}
