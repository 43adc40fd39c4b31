/* job.c: training jobs on background threads (see job.h).
 * A job never touches the published version: it trains its own copy and
 * hands it to its owner's publish, which swaps it in under the model lock. */
#include "job.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "json_floats.h"

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

int job_running(srv_job *j) {
    pthread_mutex_lock(&j->lock);
    int r = j->state == JOB_RUNNING;
    pthread_mutex_unlock(&j->lock);
    return r;
}

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

typedef struct {
    srv_jobs *jobs;
    srv_job *j;
} job__run;

static int job__epoch(void *ctx, int epoch, int members, const float *train_loss,
                      const float *holdout_loss) {
    job__run *r = ctx;
    srv_job *j = r->j;
    pthread_mutex_lock(&j->lock);
    if (epoch >= 1 && epoch <= j->cfg.max_epochs) {
        memcpy(j->train_hist + (size_t)(epoch - 1) * members, train_loss, sizeof(float) * members);
        memcpy(j->hold_hist + (size_t)(epoch - 1) * members, holdout_loss, sizeof(float) * members);
        j->epoch = epoch;
    }
    pthread_mutex_unlock(&j->lock);
    atomic_fetch_add_explicit(&r->jobs->metrics->train_epochs, 1, memory_order_relaxed);
    return atomic_load(&j->cancel) || atomic_load(r->jobs->stop);
}

/* The end of a job, on its thread (or on the launcher's when the thread
 * could not start): record the outcome, let the owner forget it, wake
 * the waiters. */
static void job__finish(srv_job *j, srv_job_state st, const mb_train_result *res, int has_res,
                        uint64_t version, const char *err) {
    j->owner.ended(j->owner.ctx, j);
    pthread_mutex_lock(&j->lock);
    if (res) j->res = *res;
    j->has_res = has_res;
    j->version = version;
    j->finished = srv_wall();
    if (st != JOB_DONE) snprintf(j->error, sizeof j->error, "%s", err);
    j->state = st;
    pthread_cond_broadcast(&j->cond);
    int nw = j->n_waiters;
    j->n_waiters = 0;
    pthread_mutex_unlock(&j->lock);
    for (int i = 0; i < nw; i++) j->waiters[i](j->waiter_ctx[i]);
}

int job_stopping(srv_job *j) { return atomic_load(&j->cancel) || (j->stop && atomic_load(j->stop)); }

void job_progress(srv_job *j, long step, int n, const char *const *names, const float *values) {
    if (n > SRV_JOB_MAX_LOSSES) n = SRV_JOB_MAX_LOSSES;
    pthread_mutex_lock(&j->lock);
    j->step = step;
    j->n_loss = n;
    for (int i = 0; i < n; i++) {
        j->loss_names[i] = names[i];
        j->loss[i] = values[i];
    }
    pthread_mutex_unlock(&j->lock);
}

/* A task job's thread body: the owner's run, then the bookkeeping. */
static void job__task(job__run *run) {
    srv_jobs *jobs = run->jobs;
    srv_job *j = run->j;
    char err[256] = "";
    mb_pool *pool = jobs->train_threads > 1 ? mb_pool_new(jobs->train_threads) : NULL;
    uint64_t version = 0;
    double t0 = srv_now();
    mb_status s = j->run(j->owner.ctx, j, pool, &version, err, sizeof err);
    mb_pool_free(pool);
    j->seconds = srv_now() - t0;
    srv_job_state st = s == MB_OK ? JOB_DONE : s == MB_ECANCELED ? JOB_CANCELED : JOB_FAILED;
    if (st == JOB_CANCELED) snprintf(err, sizeof err, "canceled");
    job__finish(j, st, NULL, 0, version, err);
    atomic_fetch_add_explicit(&jobs->metrics->jobs[st - 1], 1, memory_order_relaxed);
    srv_log(st == JOB_FAILED ? SRV_LOG_WARN : SRV_LOG_INFO, "policy job finished",
            "model=%s job=%s state=%s steps=%ld seconds=%.3f version=%llu error=\"%s\"", j->label, j->id,
            job__state_names[st], j->step, j->seconds, (unsigned long long)version, st == JOB_DONE ? "" : err);
}

static void *job__main(void *arg) {
    job__run *run = arg;
    srv_jobs *jobs = run->jobs;
    srv_job *j = run->j;
    if (j->run) {
        job__task(run);
        j->owner.release(j->owner.ctx);
        job_put(j);
        free(run);
        pthread_mutex_lock(&jobs->lock);
        jobs->running--;
        pthread_cond_broadcast(&jobs->cond);
        pthread_mutex_unlock(&jobs->lock);
        return NULL;
    }
    char err[256] = "";
    mb_status s = MB_OK;
    /* the optimiser state is lent to the one running job of the model */
    if (!*j->adam_ready) {
        s = mb_adam_init(j->adam, j->work.n_params, j->cfg.lr, err, sizeof err);
        if (s == MB_OK) *j->adam_ready = 1;
    }
    mb_pool *pool = jobs->train_threads > 1 ? mb_pool_new(jobs->train_threads) : NULL;
    mb_train_result res;
    memset(&res, 0, sizeof res);
    if (s == MB_OK) s = mb_train(&j->work, j->adam, &j->data, &j->cfg, pool, job__epoch, run, &res, err, sizeof err);
    mb_pool_free(pool);
    mb_buffer_free(&j->data);
    uint64_t version = 0;
    srv_job_state st;
    if (s == MB_OK) {
        st = j->owner.publish(j->owner.ctx, &j->work, &version, err, sizeof err) == 0 ? JOB_DONE : JOB_FAILED;
    } else {
        st = s == MB_ECANCELED ? JOB_CANCELED : JOB_FAILED;
        if (st == JOB_CANCELED) snprintf(err, sizeof err, "canceled");
    }
    mb_ensemble_free(&j->work);
    job__finish(j, st, &res, s == MB_OK || s == MB_ECANCELED, version, err);

    atomic_fetch_add_explicit(&jobs->metrics->jobs[st - 1], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&jobs->metrics->train_us, (uint64_t)(res.seconds * 1e6), memory_order_relaxed);
    srv_log(st == JOB_FAILED ? SRV_LOG_WARN : SRV_LOG_INFO, "training job finished",
            "model=%s job=%s state=%s epochs=%d seconds=%.3f version=%llu error=\"%s\"", j->label, j->id,
            job__state_names[st], res.epochs, res.seconds, (unsigned long long)version,
            st == JOB_DONE ? "" : err);
    j->owner.release(j->owner.ctx);
    job_put(j);
    free(run);
    pthread_mutex_lock(&jobs->lock);
    jobs->running--;
    pthread_cond_broadcast(&jobs->cond);
    pthread_mutex_unlock(&jobs->lock);
    return NULL;
}

srv_job *job_new(const mb_train_cfg *cfg, int members, int automatic) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, 0);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->cfg = *cfg;
    j->kind = "model";
    j->automatic = automatic;
    j->members = members;
    j->state = JOB_RUNNING;
    j->label = "";
    j->train_hist = calloc((size_t)cfg->max_epochs * members, sizeof(float));
    j->hold_hist = calloc((size_t)cfg->max_epochs * members, sizeof(float));
    if (!j->train_hist || !j->hold_hist) {
        job_put(j);
        return NULL;
    }
    return j;
}

srv_job *job_new_task(const char *kind, long steps, double budget_s, int automatic) {
    srv_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    atomic_init(&j->refs, 1);
    atomic_init(&j->cancel, 0);
    pthread_mutex_init(&j->lock, NULL);
    pthread_cond_init(&j->cond, NULL);
    j->kind = kind;
    j->automatic = automatic;
    j->steps = steps;
    j->budget_s = budget_s;
    j->state = JOB_RUNNING;
    j->label = "";
    return j;
}

void job_abort(srv_job *j, const char *err) {
    mb_buffer_free(&j->data);
    mb_ensemble_free(&j->work);
    job__finish(j, JOB_FAILED, NULL, 0, 0, err);
    j->owner.release(j->owner.ctx);
}

int job_launch(srv_jobs *jobs, srv_job *j, char *err, size_t err_sz) {
    job__run *run = malloc(sizeof *run);
    pthread_t th;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&jobs->lock);
    jobs->running++;
    pthread_mutex_unlock(&jobs->lock);
    j->started = srv_wall();
    j->stop = jobs->stop;
    atomic_fetch_add(&j->refs, 1); /* the thread's */
    if (run) *run = (job__run){jobs, j};
    if (!run || pthread_create(&th, &at, job__main, run) != 0) {
        pthread_attr_destroy(&at);
        free(run);
        snprintf(err, err_sz, "cannot start a thread");
        job_put(j); /* the thread's */
        job_abort(j, err);
        pthread_mutex_lock(&jobs->lock);
        jobs->running--;
        pthread_cond_broadcast(&jobs->cond);
        pthread_mutex_unlock(&jobs->lock);
        return -1;
    }
    pthread_attr_destroy(&at);
    atomic_fetch_add_explicit(&jobs->metrics->jobs[3], 1, memory_order_relaxed);
    if (j->run)
        srv_log(SRV_LOG_INFO, "policy job started", "model=%s job=%s rows=%zu steps=%ld budget_s=%.1f auto=%d",
                j->label, j->id, j->rows, j->steps, j->budget_s, j->automatic);
    else
        srv_log(SRV_LOG_INFO, "training job started", "model=%s job=%s rows=%zu max_epochs=%d auto=%d", j->label,
                j->id, j->rows, j->cfg.max_epochs, j->automatic);
    return 0;
}

cJSON *job_render(srv_job *j) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    pthread_mutex_lock(&j->lock);
    cJSON_AddStringToObject(o, "id", j->id);
    cJSON_AddStringToObject(o, "kind", j->kind);
    cJSON_AddStringToObject(o, "state", job__state_names[j->state]);
    cJSON_AddBoolToObject(o, "auto", j->automatic);
    cJSON_AddNumberToObject(o, "rows", (double)j->rows);
    if (j->run) {
        cJSON_AddNumberToObject(o, "step", (double)j->step);
        if (j->steps > 0) cJSON_AddNumberToObject(o, "steps", (double)j->steps);
        else cJSON_AddNullToObject(o, "steps");
        if (j->budget_s > 0) cJSON_AddNumberToObject(o, "time_budget", j->budget_s);
        else cJSON_AddNullToObject(o, "time_budget");
        double prog = j->state == JOB_DONE ? 1.0
                      : j->steps > 0       ? (double)j->step / (double)j->steps
                      : j->budget_s > 0    ? (srv_wall() - j->started) / j->budget_s
                                           : 0.0;
        cJSON_AddNumberToObject(o, "progress", prog > 1 ? 1.0 : prog);
        cJSON_AddBoolToObject(o, "cancel_requested", atomic_load(&j->cancel));
        cJSON *ls = cJSON_AddObjectToObject(o, "losses");
        for (int i = 0; i < j->n_loss; i++) cJSON_AddNumberToObject(ls, j->loss_names[i], jf_num(j->loss[i]));
        if (j->state != JOB_RUNNING) {
            cJSON *r = cJSON_AddObjectToObject(o, "result");
            cJSON_AddNumberToObject(r, "steps", (double)j->step);
            cJSON_AddNumberToObject(r, "seconds", j->seconds);
        } else {
            cJSON_AddNullToObject(o, "result");
        }
        if (j->version) cJSON_AddNumberToObject(o, "policy_version", (double)j->version);
        else cJSON_AddNullToObject(o, "policy_version");
        if (j->error[0]) cJSON_AddStringToObject(o, "error", j->error);
        else cJSON_AddNullToObject(o, "error");
        cJSON_AddNumberToObject(o, "started", j->started);
        if (j->state != JOB_RUNNING) cJSON_AddNumberToObject(o, "finished", j->finished);
        pthread_mutex_unlock(&j->lock);
        return o;
    }
    cJSON_AddNumberToObject(o, "epoch", j->epoch);
    cJSON_AddNumberToObject(o, "max_epochs", j->cfg.max_epochs);
    cJSON_AddNumberToObject(o, "progress",
                            j->state == JOB_DONE ? 1.0 : (double)j->epoch / j->cfg.max_epochs);
    cJSON_AddBoolToObject(o, "cancel_requested", atomic_load(&j->cancel));
    cJSON *ep = cJSON_AddArrayToObject(o, "epochs");
    for (int i = 0; i < j->epoch; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddNumberToObject(x, "epoch", i + 1);
        jf_add(x, "train_loss", jf_floats(j->train_hist + (size_t)i * j->members, j->members));
        jf_add(x, "holdout_loss", jf_floats(j->hold_hist + (size_t)i * j->members, j->members));
        jf_add(ep, NULL, x);
    }
    if (j->has_res) {
        cJSON *r = cJSON_AddObjectToObject(o, "result");
        cJSON_AddNumberToObject(r, "epochs", j->res.epochs);
        cJSON_AddNumberToObject(r, "best_epoch", j->res.best_epoch);
        cJSON_AddBoolToObject(r, "stopped_early", j->res.stopped_early);
        cJSON_AddNumberToObject(r, "n_train", (double)j->res.n_train);
        cJSON_AddNumberToObject(r, "n_holdout", (double)j->res.n_holdout);
        cJSON_AddNumberToObject(r, "batch_size", j->res.batch_size);
        cJSON_AddNumberToObject(r, "steps", (double)j->res.steps);
        cJSON_AddNumberToObject(r, "min_epochs", j->res.min_epochs);
        if (j->res.term_steps) { /* ensemble.learn_termination: the head's fit */
            cJSON *t = cJSON_AddObjectToObject(r, "termination");
            cJSON_AddNumberToObject(t, "steps", j->res.term_steps);
            cJSON_AddNumberToObject(t, "terminated_rows", (double)j->res.term_pos);
            cJSON_AddNumberToObject(t, "loss", jf_num(j->res.term_loss));
            cJSON_AddNumberToObject(t, "accuracy_terminated", jf_num(j->res.term_acc_pos));
            cJSON_AddNumberToObject(t, "accuracy_other", jf_num(j->res.term_acc_neg));
        }
        cJSON_AddNumberToObject(r, "seconds", j->res.seconds);
        jf_add(r, "train_loss", jf_floats(j->res.train_loss, j->members));
        jf_add(r, "holdout_loss", jf_floats(j->res.holdout_loss, j->members));
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

int jobs_init(srv_jobs *jobs, srv_metrics *metrics, const atomic_int *stop, int train_threads) {
    memset(jobs, 0, sizeof *jobs);
    jobs->metrics = metrics;
    jobs->stop = stop;
    jobs->train_threads = train_threads;
    pthread_mutex_init(&jobs->lock, NULL);
    pthread_cond_init(&jobs->cond, NULL);
    return 0;
}

void jobs_wait(srv_jobs *jobs) {
    pthread_mutex_lock(&jobs->lock);
    while (jobs->running > 0) pthread_cond_wait(&jobs->cond, &jobs->lock);
    pthread_mutex_unlock(&jobs->lock);
}

int jobs_running(srv_jobs *jobs) {
    pthread_mutex_lock(&jobs->lock);
    int n = jobs->running;
    pthread_mutex_unlock(&jobs->lock);
    return n;
}

void jobs_free(srv_jobs *jobs) {
    pthread_mutex_destroy(&jobs->lock);
    pthread_cond_destroy(&jobs->cond);
}
