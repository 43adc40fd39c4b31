/* job.h: training jobs. One background thread per job trains a private copy
 * of the model's current version on a copy of its buffer (taken under the
 * model lock), reports per-epoch losses, honours cancel, and publishes the
 * result through model_publish. At most one job per model runs at a time.
 * Not for: the training itself (core/learn/trainer.c). */
#ifndef SRV_JOB_H
#define SRV_JOB_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>

#include "model.h"

typedef enum { JOB_RUNNING = 0, JOB_DONE, JOB_FAILED, JOB_CANCELED } srv_job_state;

struct srv_job {
    atomic_int refs;
    char id[24];
    srv_app *app;
    srv_model *model;       /* referenced */
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
    mb_ensemble work;              /* private copy being trained */
    mb_buffer data;                /* private copy of the buffer */
};

/* Starts a job on m (copies taken now). MB_EBUSY if one runs, MB_ESTATE if
 * the buffer holds fewer than 2 rows. *out (may be NULL) gets a reference. */
int job_start(srv_app *app, srv_model *m, const mb_train_cfg *cfg, int automatic, srv_job **out,
              srv_err *e);
/* A referenced job of m by id, or NULL. */
srv_job *job_find(srv_model *m, const char *id);
void job_cancel(srv_job *j);
/* Blocks until the job has finished. */
void job_wait(srv_job *j);
/* Calls fn(ctx) once from the job's thread when it has finished. Returns 0
 * if registered, 1 if the job had already finished (nothing called), -1 if
 * the waiter list is full. */
int job_on_done(srv_job *j, void (*fn)(void *), void *ctx);
void job_put(srv_job *j);
/* Status JSON (caller owns). */
cJSON *job_render(srv_job *j);
/* Shutdown: cancel every job (model list given) and wait for all threads. */
void jobs_wait_all(srv_app *app);

#endif
