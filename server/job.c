/* job.c: training jobs on background threads (see job.h).
 * A job never touches the published version: it trains its own copy and
 * hands it to model_publish, which swaps it in under the model lock. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "log.h"

static const char *const job__state_names[] = {"running", "done", "failed", "canceled"};

void job_put(srv_job *j) {
    if (!j || atomic_fetch_sub(&j->refs, 1) != 1) return;
    mb_ensemble_free(&j->work);
    mb_buffer_free(&j->data);
    free(j->train_hist);
    free(j->hold_hist);
    pthread_mutex_destroy(&j->lock);
    pthread_cond_destroy(&j->cond);
    free(j);
}

void job_cancel(srv_job *j) { atomic_store(&j->cancel, 1); }

void job_wait(srv_job *j) {
    pthread_mutex_lock(&j->lock);
    while (j->state == JOB_RUNNING) pthread_cond_wait(&j->cond, &j->lock);
    pthread_mutex_unlock(&j->lock);
}

int job_on_done(srv_job *j, void (*fn)(void *), void *ctx) {
    int rc = 0;
    pthread_mutex_lock(&j->lock);
    if (j->state != JOB_RUNNING) rc = 1;
    else if (j->n_waiters == (int)(sizeof j->waiters / sizeof j->waiters[0])) rc = -1;
    else {
        j->waiters[j->n_waiters] = fn;
        j->waiter_ctx[j->n_waiters++] = ctx;
    }
    pthread_mutex_unlock(&j->lock);
    return rc;
}

srv_job *job_find(srv_model *m, const char *id) {
    srv_job *j = NULL;
    pthread_mutex_lock(&m->lock);
    for (int i = 0; i < m->n_jobs; i++)
        if (!strcmp(m->jobs[i]->id, id)) {
            j = m->jobs[i];
            atomic_fetch_add(&j->refs, 1);
        }
    pthread_mutex_unlock(&m->lock);
    return j;
}

static int job__epoch(void *ctx, int epoch, int members, const float *train_loss,
                      const float *holdout_loss) {
    srv_job *j = ctx;
    pthread_mutex_lock(&j->lock);
    if (epoch >= 1 && epoch <= j->cfg.max_epochs) {
        memcpy(j->train_hist + (size_t)(epoch - 1) * members, train_loss, sizeof(float) * members);
        memcpy(j->hold_hist + (size_t)(epoch - 1) * members, holdout_loss, sizeof(float) * members);
        j->epoch = epoch;
    }
    pthread_mutex_unlock(&j->lock);
    atomic_fetch_add_explicit(&j->app->metrics.train_epochs, 1, memory_order_relaxed);
    return atomic_load(&j->cancel) || atomic_load(&j->app->shutting_down);
}

static void *job__main(void *arg) {
    srv_job *j = arg;
    srv_app *app = j->app;
    srv_model *m = j->model;
    char err[256] = "";
    mb_status s = MB_OK;
    /* the optimiser state belongs to the one running job of the model */
    if (!m->adam_ready) {
        s = mb_adam_init(&m->adam, j->work.n_params, j->cfg.lr, err, sizeof err);
        if (s == MB_OK) m->adam_ready = 1;
    }
    mb_pool *pool = app->cfg.train_threads > 1 ? mb_pool_new((int)app->cfg.train_threads) : NULL;
    mb_train_result res;
    memset(&res, 0, sizeof res);
    if (s == MB_OK)
        s = mb_train(&j->work, &m->adam, &j->data, &j->cfg, pool, job__epoch, j, &res, err,
                     sizeof err);
    mb_pool_free(pool);
    mb_buffer_free(&j->data);
    uint64_t version = 0;
    srv_err e = {0};
    srv_job_state st;
    if (s == MB_OK) {
        st = model_publish(app, m, &j->work, &version, &e) == 0 ? JOB_DONE : JOB_FAILED;
        if (st == JOB_FAILED) snprintf(err, sizeof err, "%s", e.message);
    } else {
        st = s == MB_ECANCELED ? JOB_CANCELED : JOB_FAILED;
        if (st == JOB_CANCELED) snprintf(err, sizeof err, "canceled");
    }
    mb_ensemble_free(&j->work);

    pthread_mutex_lock(&m->lock);
    if (m->running == j) m->running = NULL;
    pthread_mutex_unlock(&m->lock);

    pthread_mutex_lock(&j->lock);
    j->res = res;
    j->has_res = s == MB_OK || s == MB_ECANCELED;
    j->version = version;
    j->finished = srv_wall();
    if (st != JOB_DONE) snprintf(j->error, sizeof j->error, "%s", err);
    j->state = st;
    j->model = NULL;
    pthread_cond_broadcast(&j->cond);
    int nw = j->n_waiters;
    j->n_waiters = 0;
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < nw; i++) j->waiters[i](j->waiter_ctx[i]);

    atomic_fetch_add_explicit(&app->metrics.jobs[st - 1], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&app->metrics.train_us, (uint64_t)(res.seconds * 1e6),
                              memory_order_relaxed);
    srv_log(st == JOB_FAILED ? SRV_LOG_WARN : SRV_LOG_INFO, "training job finished",
            "model=%s job=%s state=%s epochs=%d seconds=%.3f version=%llu error=\"%s\"",
            m->spec.name, j->id, job__state_names[st], res.epochs, res.seconds,
            (unsigned long long)version, st == JOB_DONE ? "" : err);
    model_put(m);
    job_put(j);
    pthread_mutex_lock(&app->jobs_lock);
    app->jobs_running--;
    pthread_cond_broadcast(&app->jobs_cond);
    pthread_mutex_unlock(&app->jobs_lock);
    return NULL;
}

int job_start(srv_app *app, srv_model *m, const mb_train_cfg *cfg, int automatic, srv_job **out,
              srv_err *e) {
    char err[256];
    if (atomic_load(&app->shutting_down))
        return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "shutting down");
    int members = m->spec.ens.members;
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, 0);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->app = app;
    j->cfg = *cfg;
    j->automatic = automatic;
    j->members = members;
    j->train_hist = calloc((size_t)cfg->max_epochs * members, sizeof(float));
    j->hold_hist = calloc((size_t)cfg->max_epochs * members, sizeof(float));
    if (!j->train_hist || !j->hold_hist) {
        job_put(j);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }

    pthread_mutex_lock(&m->lock);
    int rc = 0;
    if (m->deleted) rc = srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
    else if (m->running)
        rc = srv_fail(e, MB_EBUSY, NULL, "training job %s is running on '%s'", m->running->id,
                      m->spec.name);
    else if (m->buf.size < 2)
        rc = srv_fail(e, MB_ESTATE, NULL, "need at least 2 transitions, have %zu", m->buf.size);
    else {
        mb_status s = mb_buffer_copy(&j->data, &m->buf, err, sizeof err);
        if (s != MB_OK) rc = srv_fail(e, (int)s, NULL, "%s", err);
    }
    srv_version *v = NULL;
    if (rc == 0) {
        v = m->cur;
        atomic_fetch_add(&v->refs, 1);
        snprintf(j->id, sizeof j->id, "j%llu", (unsigned long long)m->next_job++);
        j->rows = j->data.size;
        j->state = JOB_RUNNING;
        j->started = srv_wall();
        j->model = m;
        atomic_fetch_add(&m->refs, 1);
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
        job_put(j);
        return rc;
    }
    /* the version is immutable: copy it outside the lock */
    mb_status s = mb_ensemble_copy(&j->work, &v->ens, err, sizeof err);
    model_version_put(v);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&app->jobs_lock);
    app->jobs_running++;
    pthread_mutex_unlock(&app->jobs_lock);
    atomic_fetch_add(&j->refs, 1); /* the thread's */
    if (s != MB_OK || pthread_create(&th, &at, job__main, j) != 0) {
        pthread_attr_destroy(&at);
        if (s == MB_OK) snprintf(err, sizeof err, "cannot start a thread");
        pthread_mutex_lock(&m->lock);
        m->running = NULL;
        pthread_mutex_unlock(&m->lock);
        pthread_mutex_lock(&j->lock);
        j->state = JOB_FAILED;
        snprintf(j->error, sizeof j->error, "%s", err);
        j->model = NULL;
        pthread_cond_broadcast(&j->cond);
        pthread_mutex_unlock(&j->lock);
        model_put(m);
        job_put(j); /* the thread's */
        job_put(j); /* ours */
        pthread_mutex_lock(&app->jobs_lock);
        app->jobs_running--;
        pthread_cond_broadcast(&app->jobs_cond);
        pthread_mutex_unlock(&app->jobs_lock);
        return srv_fail(e, s != MB_OK ? (int)s : MB_ENOMEM, NULL, "%s", err);
    }
    pthread_attr_destroy(&at);
    atomic_fetch_add_explicit(&app->metrics.jobs[3], 1, memory_order_relaxed);
    srv_log(SRV_LOG_INFO, "training job started", "model=%s job=%s rows=%zu max_epochs=%d auto=%d",
            m->spec.name, j->id, j->rows, cfg->max_epochs, automatic);
    if (out) *out = j;
    else job_put(j);
    return 0;
}

static cJSON *job__floats(const float *x, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(spec_num(x[i])));
    return a;
}

cJSON *job_render(srv_job *j) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&j->lock);
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "state", job__state_names[j->state]);
    cJSON_AddBoolToObject(o, "auto", j->automatic);
    cJSON_AddNumberToObject(o, "rows", (double)j->rows);
    cJSON_AddNumberToObject(o, "epoch", j->epoch);
    cJSON_AddNumberToObject(o, "max_epochs", j->cfg.max_epochs);
    cJSON_AddNumberToObject(o, "progress",
                            j->state == JOB_DONE ? 1.0 : (double)j->epoch / j->cfg.max_epochs);
    cJSON_AddBoolToObject(o, "cancel_requested", atomic_load(&j->cancel));
    cJSON *ep = cJSON_AddArrayToObject(o, "epochs");
    for (int i = 0; i < j->epoch; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "epoch", i + 1);
        cJSON_AddItemToObject(x, "train_loss", job__floats(j->train_hist + (size_t)i * j->members, j->members));
        cJSON_AddItemToObject(x, "holdout_loss", job__floats(j->hold_hist + (size_t)i * j->members, j->members));
        cJSON_AddItemToArray(ep, x);
    }
    if (j->has_res) {
        cJSON *r = cJSON_AddObjectToObject(o, "result");
        cJSON_AddNumberToObject(r, "epochs", j->res.epochs);
        cJSON_AddNumberToObject(r, "best_epoch", j->res.best_epoch);
        cJSON_AddBoolToObject(r, "stopped_early", j->res.stopped_early);
        cJSON_AddNumberToObject(r, "n_train", (double)j->res.n_train);
        cJSON_AddNumberToObject(r, "n_holdout", (double)j->res.n_holdout);
        cJSON_AddNumberToObject(r, "seconds", j->res.seconds);
        cJSON_AddItemToObject(r, "train_loss", job__floats(j->res.train_loss, j->members));
        cJSON_AddItemToObject(r, "holdout_loss", job__floats(j->res.holdout_loss, j->members));
    } else {
        cJSON_AddNullToObject(o, "result");
    }
    if (j->version) cJSON_AddNumberToObject(o, "version", (double)j->version);
    else cJSON_AddNullToObject(o, "version");
    if (j->error[0]) cJSON_AddStringToObject(o, "error", j->error);
    else cJSON_AddNullToObject(o, "error");
    cJSON_AddNumberToObject(o, "started", j->started);
    if (j->state != JOB_RUNNING) cJSON_AddNumberToObject(o, "finished", j->finished);
    pthread_mutex_unlock(&j->lock);
    return o;
}

void jobs_wait_all(srv_app *app) {
    srv_model *ms[SRV_MAX_MODELS];
    int n = registry_snapshot(&app->reg, ms, SRV_MAX_MODELS);
    for (int i = 0; i < n; i++) {
        pthread_mutex_lock(&ms[i]->lock);
        if (ms[i]->running) job_cancel(ms[i]->running);
        pthread_mutex_unlock(&ms[i]->lock);
        model_put(ms[i]);
    }
    pthread_mutex_lock(&app->jobs_lock);
    while (app->jobs_running > 0) pthread_cond_wait(&app->jobs_cond, &app->jobs_lock);
    pthread_mutex_unlock(&app->jobs_lock);
}
