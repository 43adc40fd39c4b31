/* model_train.c: the registry's side of training (see model.h): which job
 * runs on which model, what it is given (copies of the buffer and of the
 * current version, the model's optimiser on loan), and what happens to its
 * result (model_publish). The job itself (job.c) knows nothing of models. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "job.h"

/* ---- the job's owner callbacks (on the job's thread) -------------------- */

typedef struct {
    srv_app *app;
    srv_model *m; /* referenced */
    srv_job *j;   /* the job that owns this (outlives it) */
} train__owner;

static int train__publish(void *ctx, mb_ensemble *ens, uint64_t *version, char *err, size_t err_sz) {
    train__owner *o = ctx;
    srv_err e = {0};
    /* what the versions listing shows: the job, its epochs, its last epoch's train losses */
    srv_version_info info;
    memset(&info, 0, sizeof info);
    srv_job *j = o->j;
    snprintf(info.job, sizeof info.job, "%s", j->id);
    pthread_mutex_lock(&j->lock);
    info.epochs = j->epoch;
    if (j->epoch > 0 && j->train_hist) {
        memcpy(info.train_loss, j->train_hist + (size_t)(j->epoch - 1) * (size_t)j->members,
               sizeof(float) * (size_t)j->members);
        info.has_train_loss = 1;
    }
    pthread_mutex_unlock(&j->lock);
    int rc = model_publish_info(o->app, o->m, ens, &info, version, &e);
    if (rc) snprintf(err, err_sz, "%s", e.message);
    return rc;
}

static void train__ended(void *ctx, srv_job *j) {
    srv_model *m = ((train__owner *)ctx)->m;
    model_lock(m);
    if (m->running == j) m->running = NULL;
    pthread_mutex_unlock(&m->lock);
}

static void train__release(void *ctx) {
    train__owner *o = ctx;
    model_put(o->m);
    free(o);
}

int model_train(srv_app *app, srv_model *m, const mb_train_cfg *cfg, int automatic, srv_job **out,
                srv_err *e) {
    char err[256];
    if (atomic_load(&app->shutting_down)) return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "shutting down");
    train__owner *own = malloc(sizeof *own);
    srv_job *j = own ? job_new(cfg, m->spec.ens.members, automatic) : NULL;
    if (!j) {
        free(own);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    j->label = m->spec.name;
    model_lock(m);
    int rc = 0;
    if (m->deleted) rc = srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
    else if (m->running)
        rc = srv_fail(e, MB_EBUSY, NULL, "training job %s is running on '%s'", m->running->id, m->spec.name);
    else if (m->buf.size < 2)
        rc = srv_fail(e, MB_ESTATE, NULL, "need at least 2 transitions, have %zu", m->buf.size);
    else {
        /* the lock is let go between slices of the copy: check again after */
        mb_status s = model_buffer_copy(m, &j->data, NULL, err, sizeof err);
        if (s != MB_OK) rc = srv_fail(e, (int)s, NULL, "%s", err);
        else if (m->deleted) rc = srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
        else if (m->running)
            rc = srv_fail(e, MB_EBUSY, NULL, "training job %s is running on '%s'", m->running->id, m->spec.name);
    }
    srv_version *v = NULL;
    if (rc == 0) {
        v = m->cur;
        atomic_fetch_add(&v->refs, 1);
        snprintf(j->id, sizeof j->id, "j%llu", (unsigned long long)m->next_job++);
        j->rows = j->data.size;
        j->adam = &m->adam;
        j->adam_ready = &m->adam_ready;
        atomic_fetch_add(&m->refs, 1); /* the job's, dropped by train__release */
        *own = (train__owner){app, m, j};
        j->owner = (srv_job_owner){own, train__publish, train__ended, train__release};
        own = NULL;
        m->running = j;
        if (automatic) m->auto_base = m->buf.total;
        if (m->n_jobs == SRV_JOBS_KEPT) { /* forget the oldest */
            job_put(m->jobs[0]);
            memmove(m->jobs, m->jobs + 1, sizeof m->jobs[0] * (SRV_JOBS_KEPT - 1));
            m->n_jobs--;
        }
        m->jobs[m->n_jobs++] = j;
        atomic_fetch_add(&j->refs, 1); /* the model's list */
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        free(own);
        job_put(j);
        return rc;
    }
    /* the version is immutable: copy it outside the lock */
    mb_status s = mb_ensemble_copy(&j->work, &v->ens, err, sizeof err);
    model_version_put(v);
    if (s != MB_OK) {
        job_abort(j, err);
        job_put(j);
        return srv_fail(e, (int)s, NULL, "%s", err);
    }
    if (job_launch(&app->jobs, j, err, sizeof err) != 0) {
        job_put(j);
        return srv_fail(e, MB_ENOMEM, NULL, "%s", err);
    }
    if (out) *out = j;
    else job_put(j);
    return 0;
}

srv_job *model_job_find(srv_model *m, const char *id) {
    srv_job *j = NULL;
    model_lock(m);
    for (int i = 0; i < m->n_jobs; i++)
        if (!strcmp(m->jobs[i]->id, id)) {
            j = m->jobs[i];
            atomic_fetch_add(&j->refs, 1);
        }
    pthread_mutex_unlock(&m->lock);
    return j;
}

void registry_stop_jobs(srv_app *app) {
    srv_model *ms[SRV_MAX_MODELS];
    int n = registry_snapshot(&app->reg, ms, SRV_MAX_MODELS);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i]->lock);
        if (ms[i]->running) job_cancel(ms[i]->running);
        pthread_mutex_unlock(&ms[i]->lock);
        model_put(ms[i]);
    }
    jobs_wait(&app->jobs);
}
