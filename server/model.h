/* model.h: the model registry and every state change of a model.
 *
 * THE SEAM FOR PERSISTENCE: each state change goes through exactly one
 * function here, and each of them calls the store (store.h) before it makes
 * the change visible:
 *   model_create   (POST /v1/models)
 *   model_delete   (DELETE /v1/models/{m})
 *   model_append   (POST /v1/models/{m}/transitions; acknowledged only after
 *                   it returns MB_OK)
 *   model_publish  (a training job's new parameter version; a snapshot
 *                   follows, model_persist.h)
 * Data flows one way: handlers -> registry (here, model_persist.c) -> store
 * and job; neither calls back into the registry's internals. Every change
 * of persisted state bumps `gen`, so racing snapshots keep the newest.
 *
 * Versions: a trained ensemble is published as an immutable, reference-
 * counted srv_version; `cur` is swapped under the model lock, and readers
 * (act, predict) hold a reference (model_version_get / _put) for as long as
 * they use it, so a swap never frees an ensemble in use.
 *
 * Locking: model->lock guards every mutable field of the model (buffer,
 * cur, sessions, idempotency keys, jobs, workspaces). It is held only for
 * short bookkeeping and the buffer append, never while planning or training.
 * Registry lock, then model lock, never the other way round.
 * Not for: JSON (handlers) or numerics (core/). */
#ifndef SRV_MODEL_H
#define SRV_MODEL_H

#include <pthread.h>
#include <stdatomic.h>

#include "clock.h"
#include "metrics.h"
#include "plan_budget.h"
#include "spec.h"

typedef struct srv_job srv_job;
typedef struct store_log store_log;
typedef struct srv_app srv_app;

/* What published a version (versions.h): shown by GET .../versions,
 * persisted with it. */
typedef struct {
    double published;                 /* wall clock s; 0 for version 0 */
    char job[24];                     /* the training job's id, "" if none */
    int epochs;                       /* epochs the job ran */
    int has_train_loss;
    float train_loss[MB_MAX_MEMBERS]; /* its last epoch's, per member (holdout: ens) */
} srv_version_info;

typedef struct srv_version {
    atomic_int refs;
    uint64_t number; /* 0: the untrained initial parameters */
    mb_ensemble ens; /* const once published */
    srv_version_info info;
    char etag[48];   /* content tag (versions.h), set before it is shared */
} srv_version;

/* A published policy (model_policy.c): like srv_version, immutable and
 * reference-counted once published; acts hold a reference while they use
 * it, so a new version never frees one in use. */
typedef struct srv_policy {
    atomic_int refs;
    uint64_t number;        /* 1, 2, ... */
    srv_pol_algo algorithm; /* what trained it last */
    int value_trained;      /* the value network was fitted (MBPO) */
    long steps;             /* algorithm steps over its life (MBPO's schedule) */
    mb_sac agent;           /* policy, critics, value, optimisers; const once published */
} srv_policy;

/* The last policy job's figures (model lock). */
typedef struct {
    int has;
    srv_pol_algo algorithm;
    int n;
    const char *names[8];
    float values[8];
    size_t model_rows;      /* MBPO's model-data buffer */
} srv_policy_stats;

typedef struct {
    char name[SRV_NAME_MAX + 1];
    mb_plan_state st;
    mb_planner_cfg cfg; /* what st was sized for */
    double last_used;   /* monotonic s */
    srv_plan_budget *budget; /* st's bytes are held in it */
    size_t bytes;
} srv_session;

typedef struct {
    char client[SRV_NAME_MAX + 1];
    uint64_t seq;           /* highest seq applied for this client */
    uint64_t window;        /* bit i: seq - i was applied (i < SRV_SEQ_WINDOW) */
    size_t accepted;        /* the answer given to it */
    size_t buffer_size;
    uint64_t last_used;     /* model->clock at last use, for LRU */
    uint64_t ticket;        /* the log record of seq (store_wait); 0 if none */
} srv_client_seq;

/* How far behind a client's highest seq a post may arrive (out of order, from
 * concurrent senders) and still be checked for duplicates; older is a 409. */
#define SRV_SEQ_WINDOW 64
#define SRV_JOBS_KEPT 16 /* finished jobs remembered per model */
#define SRV_WS_KEPT 8    /* idle planning workspaces kept per model, at least (and --max-batch:
                          * a batch plans each act in its own workspace) */
#define SRV_KEEP_MAX 32  /* upper bound of --keep-versions */

typedef struct srv_model {
    atomic_int refs;        /* the registry's + one per user */
    int creating, deleting; /* registry lock: its CREATE / DELETE record is being
                             * written (creating: not visible yet) */
    srv_model_spec spec;    /* immutable */
    char *spec_json;        /* canonical spec JSON, owned, immutable */
    double created;         /* wall clock s */
    store_log *log;         /* its log and snapshots (store.h); NULL in memory */
    pthread_mutex_t lock;   /* guards everything below; take it with model_lock */
    atomic_int lock_waiters; /* threads in model_lock (model_buffer_copy lets them in) */
    int deleted;
    uint64_t gen;           /* bumped by every change of persisted state */
    mb_buffer buf;
    srv_version *cur;       /* never NULL */
    uint64_t next_version;
    srv_version *kept[SRV_KEEP_MAX]; /* published versions kept (cur among them
                                      * unless it is 0), by number, each
                                      * referenced (versions.h) */
    int n_kept;
    srv_client_seq *clients; /* (max_clients) */
    int n_clients;
    uint64_t clock;
    srv_session **sessions; /* (max_sessions) */
    int n_sessions;
    srv_job *jobs[SRV_JOBS_KEPT]; /* newest last, each holds a reference */
    int n_jobs;
    srv_job *running;       /* the one job allowed at a time, or NULL */
    uint64_t next_job;
    uint64_t auto_base;     /* buf.total when the last auto job started */
    mb_plan_ws **ws_free;   /* (ws_cap) idle workspaces; their bytes held in budget */
    int n_ws_free, ws_cap;  /* ws_cap = max(SRV_WS_KEPT, --max-batch) */
    srv_plan_budget *budget; /* the daemon's planning memory (plan_budget.h) */
    mb_adam adam;           /* optimiser state; touched only by `running` */
    int adam_ready;
    srv_policy *pol;        /* the current policy, or NULL before the first */
    uint64_t pol_next;      /* next policy version number */
    uint64_t pol_auto_base; /* buf.total when the last automatic policy job started */
    srv_policy_stats pol_stats;
    mb_policy_ws *pol_ws[SRV_WS_KEPT]; /* idle act workspaces of the policy */
    int n_pol_ws;
    atomic_uint_fast64_t act_counter; /* seeds per-request random streams */
    uint64_t serial;        /* creation order: the executor's fairness key */
    srv_hist plan_hist;     /* planning time of its acts (mbrld_model_plan_duration_seconds) */
    atomic_uint_fast64_t plan_est_us; /* its batches' duration, EWMA (executor admission) */
} srv_model;

typedef struct {
    pthread_mutex_t lock;
    srv_model **models; /* (max_models) */
    int n, cap;
} srv_registry;

/* m->lock, counted in m->lock_waiters while waiting: a long holder that
 * works in slices (model_buffer_copy) hands the lock to waiters between
 * slices instead of taking it straight back (a plain mutex would let it). */
static inline void model_lock(srv_model *m) {
    atomic_fetch_add(&m->lock_waiters, 1);
    pthread_mutex_lock(&m->lock);
    atomic_fetch_sub(&m->lock_waiters, 1);
}

/* A consistent copy of m's replay buffer for a snapshot, an export or a
 * training job, without holding the model lock for the whole copy (a
 * 1M-row buffer is hundreds of MB): called with m->lock held (model_lock),
 * returns with it held, having released it between slices of about 1 MiB
 * and let waiting acts and appends in. Appends meanwhile are allowed: the
 * rows they wrote are copied again at the end, under the lock, so dst is
 * exactly the buffer as it is on return (and agrees with the log's last
 * seq read then). dst uninitialised; *slices (may be NULL): how many. */
mb_status model_buffer_copy(srv_model *m, mb_buffer *dst, size_t *slices, char *err, size_t err_sz);

int registry_init(srv_registry *r, int cap);
/* Drops every model (call after jobs are joined). */
void registry_free(srv_registry *r);
/* A referenced model by name (model_put when done) or NULL. */
srv_model *registry_get(srv_registry *r, const char *name);
/* Referenced models, for listing and metrics: fills out (cap) and returns
 * the count; model_put each. */
int registry_snapshot(srv_registry *r, srv_model **out, int cap);

void model_put(srv_model *m);

/* Creates, initialises (allocations checked) and registers a model; *out is
 * referenced. MB_EEXIST for a taken name, SRV_E_LIMIT when full. */
int model_create(srv_app *app, const srv_model_spec *spec, srv_model **out, srv_err *e);
/* Unregisters; cancels its running job; the memory goes with the last
 * reference. MB_ENOTFOUND if absent. */
int model_delete(srv_app *app, const char *name, srv_err *e);

/* A batch of transitions (n rows):
 *   obs, next_obs: (n, obs_dim); act: (n, act_dim); rew, term, trunc: (n)
 * client may be NULL (no idempotency). If client+seq was already applied
 * (seq <= the highest seen for the client), nothing is added and *replay = 1;
 * for seq equal to the last one, the answer is the same as the first time.
 * Fills the answer (*accepted, *buffer_size). */
int model_append(srv_app *app, srv_model *m, const char *client, uint64_t seq, size_t n,
                 const float *obs, const float *act, const float *rew, const float *next_obs,
                 const uint8_t *term, const uint8_t *trunc, size_t *accepted, size_t *buffer_size,
                 int *replay, srv_err *e);

/* Publishes a trained ensemble (takes ownership of *ens, leaving it zeroed)
 * as the next version and snapshots the model (with a data directory); the
 * caller is the job that owns m->adam. Returns its number in *number.
 * MB_ESTATE if the model was deleted meanwhile (ens is freed). */
int model_publish(srv_app *app, srv_model *m, mb_ensemble *ens, uint64_t *number, srv_err *e);
/* The same with what published it (info may be NULL; its published time is
 * set here). The new version joins the kept ones (versions.h). */
int model_publish_info(srv_app *app, srv_model *m, mb_ensemble *ens, const srv_version_info *info,
                       uint64_t *number, srv_err *e);

/* Training (model_train.c). Starts a job on m (copies of the buffer and the
 * current version taken now; the optimiser is lent to it). MB_EBUSY if one
 * runs, MB_ESTATE if the buffer holds fewer than 2 rows. *out (may be
 * NULL) gets a reference. */
int model_train(srv_app *app, srv_model *m, const mb_train_cfg *cfg, int automatic, srv_job **out,
                srv_err *e);
/* A referenced job of m by id, or NULL. */
srv_job *model_job_find(srv_model *m, const char *id);
/* Shutdown: cancels every model's running job and waits for all job threads. */
void registry_stop_jobs(srv_app *app);

/* A new version (one reference, zeroed), NULL when out of memory. */
srv_version *model_version_new(void);
/* The current version, referenced. */
srv_version *model_version_get(srv_model *m);
void model_version_put(srv_version *v);

/* Planning workspace for (cfg, dyn) from the model's idle list, or a new one
 * of `bytes` (mb_plan_cost: ws + ens_ws) taken from the planning budget
 * first. NULL with *busy = 1 when the budget has no room even after idle
 * workspaces of every model were dropped (app_plan_room), *busy = 0 on
 * allocation failure. Give it back with model_ws_put (kept idle, at most
 * max(SRV_WS_KEPT, --max-batch) per model, the oldest freed and its bytes
 * released). */
mb_plan_ws *model_ws_get(srv_app *app, srv_model *m, const mb_planner_cfg *cfg, const mb_dynamics *dyn,
                         size_t bytes, int *busy);
void model_ws_put(srv_model *m, mb_plan_ws *ws);
/* Frees every idle workspace of m (their bytes go back to the budget). */
void model_ws_trim(srv_model *m);
/* Takes bytes from app's planning budget, dropping idle workspaces of every
 * model when they do not fit: 1 taken, 0 no room. */
int app_plan_room(srv_app *app, size_t bytes);

/* Policies (model_policy.c). */
/* The current policy, referenced, or NULL. */
srv_policy *model_policy_get(srv_model *m);
void model_policy_put(srv_policy *p);
/* Starts a policy job (ps: the spec's policy with this call's overrides;
 * steps 0 and budget 0: sized to the data and the model). MB_EBUSY if a
 * job runs, MB_ESTATE without a policy in the spec, an untrained model or
 * an empty buffer. *out (may be NULL) gets a reference. */
int model_policy_train(srv_app *app, srv_model *m, const srv_policy_spec *ps, long steps, double budget,
                       int automatic, srv_job **out, srv_err *e);
/* The next action from the current policy: deterministic, or sampled with
 * explore. MB_ESTATE (409) before a policy exists. *version gets the
 * policy's number. */
int model_policy_act(srv_model *m, const float *obs, int explore, mb_rng *rng, float *action,
                     uint64_t *version, srv_err *e);
/* Installs a recovered or imported agent as the current policy (model lock
 * not held); meta is the snapshot's "policy" object or NULL. Takes *agent
 * (left zeroed). */
mb_status model_policy_install(srv_model *m, mb_sac *agent, const cJSON *meta, char *err, size_t err_sz);
/* The snapshot META's "policy" object (model lock held); NULL without one. */
cJSON *model_policy_meta(const srv_model *m);
/* The status object of GET /v1/models/{m} ("policy"); null without a policy spec. */
cJSON *model_policy_render(srv_model *m);
/* Automatic policy jobs: starts one when auto_train.every new rows have
 * come since the last (after a post of transitions). */
void model_policy_auto(srv_app *app, srv_model *m);
/* Frees the policy state of a model being freed. */
void model_policy_free_all(srv_model *m);

/* Sessions (session.c). take: removes the named session from the model (so
 * no two requests plan with one warm start at once) or returns NULL; also
 * drops sessions idle for more than `timeout` s. put: gives it back (LRU-
 * bounded to max); a session of the same name put meanwhile is replaced. */
srv_session *session_take(srv_model *m, const char *name, double now, double timeout);
void session_put(srv_model *m, srv_session *s, double now, int max);
/* A session sized for cfg (new, or s re-initialised), its state's bytes
 * taken from the planning budget (app_plan_room); NULL on failure, with
 * *busy = 1 when the budget had no room. s is consumed either way. */
srv_session *session_fit(srv_app *app, srv_model *m, srv_session *s, const char *name,
                         const mb_planner_cfg *cfg, int act_dim, int *busy);
void session_free(srv_session *s);
/* Drops idle sessions (model lock held); returns how many remain. */
int session_expire(srv_model *m, double now, double timeout);

#endif
