/* job.h: training jobs. One background thread per job trains `work` (a
 * private copy of a version) on `data` (a private copy of a buffer) with
 * the optimiser state its owner lends it, reports per-epoch losses, honours
 * cancel, and hands the trained ensemble to its owner (the registry,
 * model_train.c) through srv_job_owner. A job knows nothing of models: data
 * flows registry -> job, and back only through the callbacks it was given.
 * Not for: the training itself (core/learn/trainer.c), which job runs on
 * which model (model_train.c). */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "learn/buffer.h"
#include "learn/trainer.h"
#include "metrics.h"
#include "nn/ensemble.h"

typedef enum { JOB_RUNNING = 0, JOB_DONE, JOB_FAILED, JOB_CANCELED } srv_job_state;

typedef struct srv_job srv_job;

/* The job threads of the process (shutdown waits for running == 0). */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int running;
    srv_metrics *metrics;
    const atomic_int *stop; /* nonzero: every job cancels (shutdown) */
    int train_threads;      /* --train-threads */
} srv_jobs;

/* What the owner does, called on the job's thread. */
typedef struct {
    void *ctx;
    /* Training succeeded: take *ens (leaving it zeroed) as the new version;
     * 0 with *version, or -1 with err (ens is freed either way). */
    int (*publish)(void *ctx, mb_ensemble *ens, uint64_t *version, char *err, size_t err_sz);
    /* The job has ended, before its state leaves RUNNING: the owner stops
     * treating it as running (the optimiser is the owner's again). */
    void (*ended)(void *ctx, srv_job *j);
    /* Last call: drop whatever ctx holds. */
    void (*release)(void *ctx);
} srv_job_owner;

#define SRV_JOB_MAX_LOSSES 8

struct srv_job {
    atomic_int refs;
    char id[24];
    const char *kind;       /* "model" (mb_train) or "policy" (a task: run) */
    const char *label;      /* for log lines (the model's name), owner's storage */
    mb_train_cfg cfg;
    int automatic;          /* started by the auto-train rule */
    atomic_int cancel;
    pthread_mutex_t lock;   /* guards the fields below */
    pthread_cond_t cond;    /* broadcast when state leaves RUNNING */
    srv_job_state state;
    int epoch, members;
    float *train_hist, *hold_hist; /* (max_epochs, members) per-epoch losses */
    mb_train_result res;
    int has_res;
    char error[256];
    double started, finished;      /* wall clock */
    uint64_t version;              /* published version, 0 if none */
    size_t rows;
    void (*waiters[16])(void *);   /* called once when the job finishes */
    void *waiter_ctx[16];
    int n_waiters;
    /* inputs, filled by the owner between job_new and job_launch */
    mb_ensemble work;              /* private copy being trained */
    mb_buffer data;                /* private copy of the buffer */
    mb_adam *adam;                 /* the owner's optimiser, lent while running */
    int *adam_ready;               /* set once *adam is initialised */
    srv_job_owner owner;
    /* A task job (job_new_task): run does the owner's work on the job's
     * thread instead of mb_train (work, data and adam are unused), reports
     * with job_progress, polls job_stopping, and publishes itself (0 with
     * *version, or an mb_status with err). */
    mb_status (*run)(void *ctx, srv_job *j, mb_pool *pool, uint64_t *version, char *err, size_t err_sz);
    long step, steps;              /* task progress (lock); steps 0 = time budget only */
    double budget_s;               /* task time budget in s (0 = none) */
    int n_loss;                    /* last losses reported (lock) */
    const char *loss_names[SRV_JOB_MAX_LOSSES];
    float loss[SRV_JOB_MAX_LOSSES];
    double seconds;                /* task run time */
    const atomic_int *stop;        /* the process's shutdown flag, set at launch */
};

/* A job in state RUNNING that has not started (one reference). NULL when
 * out of memory. */
srv_job *job_new(const mb_train_cfg *cfg, int members, int automatic);
/* A task job of `kind` ("policy") for `steps` steps and/or a time
 * budget (s, 0 = none), RUNNING and not started; the owner sets run and
 * owner before job_launch. NULL when out of memory. */
srv_job *job_new_task(const char *kind, long steps, double budget_s, int automatic);
/* From run: progress (step of steps) and the latest losses (names are
 * static strings). */
void job_progress(srv_job *j, long step, int n, const char *const *names, const float *values);
/* From run: 1 when the job should stop (cancel requested or shutdown). */
int job_stopping(srv_job *j);
/* Starts its thread. On failure the job is FAILED, owner.ended and
 * owner.release have been called, and -1 is returned with err. */
int job_launch(srv_jobs *jobs, srv_job *j, char *err, size_t err_sz);
/* Ends a job that was never launched as FAILED with err (owner.ended and
 * owner.release are called). */
void job_abort(srv_job *j, const char *err);
void job_cancel(srv_job *j);
/* Blocks until the job has finished. */
void job_wait(srv_job *j);
/* Calls fn(ctx) once from the job's thread when it has finished. Returns 0
 * if registered, 1 if the job had already finished (nothing called), -1 if
 * the waiter list is full. */
int job_on_done(srv_job *j, void (*fn)(void *), void *ctx);
/* 1 while running. */
int job_running(srv_job *j);
void job_put(srv_job *j);
/* Status JSON (caller owns). */
cJSON *job_render(srv_job *j);

int jobs_init(srv_jobs *jobs, srv_metrics *metrics, const atomic_int *stop, int train_threads);
/* Blocks until no job thread runs. */
void jobs_wait(srv_jobs *jobs);
/* Job threads running now (metrics). */
int jobs_running(srv_jobs *jobs);
void jobs_free(srv_jobs *jobs);

#endif
