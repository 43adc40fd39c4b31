/* mbrl_client.h: the C client of mbrld's HTTP API v1 (libcurl + cJSON).
 *
 * One mbrl_client holds one CURL easy handle, so every call reuses the same
 * keep-alive connection; a client is NOT thread-safe (make one per thread).
 * Every call that can fail returns an mbrl_status and, when `err` is not
 * NULL, fills it: for an error answer of the daemon with its HTTP status and
 * its {"error": {"code", "message", "field"}}; for a connection failure with
 * http_status 0 and code "transport".
 *
 * Transition posts are idempotent: each batch gets the next `seq` of this
 * client's id, and a retry (connection failure, 429, 5xx) reuses the same
 * client+seq after an exponential backoff, so the daemon never stores a
 * batch twice even when an answer was lost. MBRL_OK for a post means the
 * daemon acknowledged it with a 2xx, which it sends (first post or replay)
 * only once the rows are durable under its --fsync policy; while its disk
 * fails, every retry gets 503 and the call ends with MBRL_EHTTP after
 * max_retries.
 *
 * Not for: simulators or the learning loop (clients/c/sim, clients/c/mbrl-sim.c),
 * nor anything numerical: arrays go out and come back as the daemon sends them.
 *
 * Example (see clients/c/example_basic.c):
 *   mbrl_client *c; mbrl_error e;
 *   mbrl_client_new(&c, &(mbrl_client_opts){.url = "http://127.0.0.1:8080"}, &e);
 *   mbrl_act_result r;
 *   if (mbrl_act(c, "pendulum", obs, 3, NULL, &r, &e) != MBRL_OK)
 *       fprintf(stderr, "act: %s (%s)\n", e.message, e.code);
 */
#ifndef MBRL_CLIENT_H
#define MBRL_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

typedef enum {
    MBRL_OK = 0,
    MBRL_EHTTP,      /* the daemon answered an error (err->http_status, code, message) */
    MBRL_ETRANSPORT, /* no answer: connection refused, reset, timeout */
    MBRL_EPROTO,     /* an answer that is not the JSON the API promises */
    MBRL_EINVAL,     /* bad argument to this library (nothing was sent) */
    MBRL_ENOMEM,
    MBRL_EIO,        /* a local file could not be read or written */
    MBRL_ETIMEOUT    /* mbrl_train_wait gave up waiting */
} mbrl_status;

typedef struct {
    long http_status;  /* 0 when there was no HTTP answer */
    char code[64];     /* the daemon's code ("not_found", ...) or ours ("transport") */
    char message[512];
    char field[128];   /* the offending field ("obs[3]"), "" if none */
} mbrl_error;

/* "invalid_argument"-style name of a status. Never NULL. */
const char *mbrl_status_name(mbrl_status s);
/* One readable line: "HTTP 404 not_found: no model 'x' (field: name)". */
const char *mbrl_error_str(const mbrl_error *e, char *buf, size_t buf_sz);

typedef struct {
    const char *url;          /* base URL, default $MBRLD_URL or http://127.0.0.1:8080 */
    const char *token;        /* bearer token; NULL: token_file, else $MBRLD_TOKEN; "": none */
    const char *client_id;    /* idempotency id of transition posts; default "c-<host>-<pid>-<random>" */
    long connect_timeout_ms;  /* default 2000 */
    long timeout_ms;          /* whole request, default 60000 (training with wait uses its own) */
    int max_retries;          /* retries of idempotent calls: 0 = default 6, < 0 = none */
    long backoff_ms;          /* first backoff, doubled per retry, default 100 */
    long backoff_max_ms;      /* default 5000 */
    size_t batch_rows;        /* rows per transition post, default 512 */
    /* (new fields go last, so callers of older versions still compile) */
    const char *token_file;   /* when token is NULL: the token is this file's first line (blanks
                               * around it dropped); MBRL_EIO if unreadable, MBRL_EINVAL if empty.
                               * Files and the environment keep tokens out of argv (ps). */
} mbrl_client_opts;

typedef struct mbrl_client mbrl_client;

/* Makes a client (nothing is sent). opts may be NULL (all defaults). *out is
 * owned by the caller: free it with mbrl_client_free (NULL is fine). */
mbrl_status mbrl_client_new(mbrl_client **out, const mbrl_client_opts *opts, mbrl_error *err);
void mbrl_client_free(mbrl_client *c);
/* The idempotency id and the next seq this client will use. */
const char *mbrl_client_id(const mbrl_client *c);
uint64_t mbrl_client_next_seq(const mbrl_client *c);

/* ---- raw requests (every typed call below goes through this) ----------- */

/* method "GET" | "POST" | "DELETE"; path "/v1/models"; body JSON text or NULL.
 * On MBRL_OK, *out (may be NULL to ignore) gets the parsed answer (NULL for
 * an empty body), owned by the caller (cJSON_Delete); *http_status (may be
 * NULL) the status. Error answers return MBRL_EHTTP with err filled. */
mbrl_status mbrl_request(mbrl_client *c, const char *method, const char *path, const char *body,
                         cJSON **out, long *http_status, mbrl_error *err);

/* ---- models ------------------------------------------------------------ */

#define MBRL_MAX_DIM 256
#define MBRL_MAX_ACT 64
#define MBRL_MAX_TERMS 16
#define MBRL_MAX_IDX 32
#define MBRL_MAX_BOUNDS 32
#define MBRL_MAX_LAYERS 8

typedef enum {
    MBRL_TERM_LINEAR = 0,
    MBRL_TERM_QUADRATIC,
    MBRL_TERM_NORM,
    MBRL_TERM_ACTION_L2,
    MBRL_TERM_CONSTANT
} mbrl_term_type;

/* One declared reward term (DESIGN.md "Declared terms"). */
typedef struct {
    mbrl_term_type type;
    float weight;
    int n_idx;                   /* linear: 1 (idx[0]); quadratic/norm: entries */
    int idx[MBRL_MAX_IDX];
    int has_target;              /* quadratic, norm to a target */
    float target[MBRL_MAX_IDX];
    int n_other;                 /* norm between groups (then has_target = 0) */
    int other[MBRL_MAX_IDX];
} mbrl_term;

typedef struct {
    int index;
    int has_min, has_max;
    float min, max;
} mbrl_bound;

/* Planner settings. Zero / NULL fields are left out (the daemon's default). */
typedef struct {
    const char *method;       /* "random" "cem" "mppi" "icem" "mcts" "ilqr" "lqr_flm" "grad" "cem_grad" */
    int horizon, population, elites, iterations, particles;
    float alpha;              /* 0 = default */
    const char *propagation;  /* "ts1" "ts_inf" "expectation" "mean" */
    float init_std;           /* CEM/iCEM first sampling std, fraction of (high - low) / 2; 0 = default */
    int simulations;          /* mcts: leaf evaluations per call; 0 = default */
    int rollout_depth;        /* mcts; 0 = default */
    float max_ms;             /* mcts: time budget per call; 0 = default */
    int grad_steps;           /* grad, cem_grad; 0 = default */
    int tree_reuse;           /* mcts: 1 keeps the tree for the session's next act */
    /* added later (at the end: older callers still build; zero = as before) */
    const char *preset;       /* "realtime": a named configuration, the fields above on top */
    float noise_beta;         /* iCEM coloured-noise exponent; 0 = default (white noise: send 1e-9) */
} mbrl_planner;

/* What POST /v1/models creates. Zero / NULL fields are left out, so the
 * daemon's defaults apply. */
typedef struct {
    const char *name;
    int obs_dim, act_dim;
    const float *act_low, *act_high;  /* (act_dim) each */
    int members;                      /* ensemble size */
    int n_hidden;                     /* hidden layers (0 = default) */
    int hidden[MBRL_MAX_LAYERS];      /* units per hidden layer */
    const char *activation;           /* "silu", ... */
    int learn_reward;                 /* 1: the ensemble predicts the reward */
    int n_terms;
    mbrl_term terms[MBRL_MAX_TERMS];
    int n_bounds;
    mbrl_bound bounds[MBRL_MAX_BOUNDS];
    float discount;                   /* 0 = default */
    mbrl_planner planner;
    long buffer_capacity;             /* 0 = default */
    long seed;                        /* < 0 = default */
    long auto_train_every;            /* > 0: the daemon retrains every N transitions */
    int auto_train_epochs;
    const char *extra_json;           /* object text merged in last, e.g. "{\"train\": {...}}"; or NULL */
    int discrete;                     /* K > 0: "actions": {"discrete": K} (act_dim, act_low,
                                       * act_high are then not sent); actions are integers */
    /* added later (at the end: older callers still build; zero = as before) */
    int learn_termination;            /* 1: the ensemble learns p(terminated | s') and plans with it */
} mbrl_model_spec;

/* Zeroes *s and sets seed = -1 (daemon default). */
void mbrl_model_spec_init(mbrl_model_spec *s);
/* The JSON object POST /v1/models receives (caller frees with cJSON_Delete). */
cJSON *mbrl_model_spec_json(const mbrl_model_spec *s);

/* The parts of GET /v1/models/{m} most callers need; `json` is the whole
 * answer, owned by the info (mbrl_model_info_free). */
typedef struct {
    char name[72];
    int obs_dim, act_dim;
    long buffer_size;
    long version;             /* 0 before the first training */
    double holdout_loss;      /* mean over members of the last training, NAN if none */
    int training;             /* 1 while a job runs */
    cJSON *json;
} mbrl_model_info;
void mbrl_model_info_free(mbrl_model_info *info);

mbrl_status mbrl_model_create(mbrl_client *c, const mbrl_model_spec *spec, mbrl_error *err);
/* info may be NULL (just checks it exists). */
mbrl_status mbrl_model_get(mbrl_client *c, const char *model, mbrl_model_info *info, mbrl_error *err);
/* *names: malloc'd array of *n malloc'd names; free with mbrl_names_free. */
mbrl_status mbrl_model_list(mbrl_client *c, char ***names, size_t *n, mbrl_error *err);
void mbrl_names_free(char **names, size_t n);
mbrl_status mbrl_model_delete(mbrl_client *c, const char *model, mbrl_error *err);

/* ---- transitions ------------------------------------------------------- */

/* n transitions, row-major. terminated/truncated may be NULL (all false). */
typedef struct {
    int obs_dim, act_dim;
    size_t n;
    const float *obs;                /* (n, obs_dim) */
    const float *action;             /* (n, act_dim) */
    const float *reward;             /* (n) */
    const float *next_obs;           /* (n, obs_dim) */
    const unsigned char *terminated; /* (n) or NULL */
    const unsigned char *truncated;  /* (n) or NULL */
} mbrl_batch;

/* Posts the batch in posts of at most opts.batch_rows rows; each post takes
 * the client's next seq and is retried with the same seq on connection
 * failures, 429 and 5xx. accepted (may be NULL) sums the daemon's
 * "accepted"; buffer_size (may be NULL) is its last "buffer_size". On an
 * error the rows of the posts before the failing one are in the daemon. */
mbrl_status mbrl_transitions_post(mbrl_client *c, const char *model, const mbrl_batch *b,
                                  long *accepted, long *buffer_size, mbrl_error *err);
/* One post with an explicit seq (what a retry after a crash of the caller
 * does), retried like above. b->n must be at most the daemon's limits. */
mbrl_status mbrl_transitions_post_seq(mbrl_client *c, const char *model, const mbrl_batch *b,
                                      uint64_t seq, long *accepted, long *buffer_size,
                                      mbrl_error *err);

/* mbrl_transitions_post for a discrete model: actions (n) are integers in
 * [0, K) (b->action is ignored and may be NULL; b->act_dim is K). */
mbrl_status mbrl_transitions_post_discrete(mbrl_client *c, const char *model, const mbrl_batch *b,
                                           const int *actions, long *accepted, long *buffer_size,
                                           mbrl_error *err);

/* ---- training ---------------------------------------------------------- */

typedef struct {
    int max_epochs;  /* 0 = default */
    int patience;    /* 0 = default, < 0 = off (sent as 0) */
    int batch_size;  /* rows per minibatch per member, 0 = default (adapts to the rows) */
    float lr;        /* Adam step size, 0 = default */
    /* added later (at the end: older callers still build; zero = as before) */
    int min_steps;   /* floor under early stopping in gradient steps: 0 = default, < 0 = none */
    int min_epochs;  /* and in passes over the data: 0 = default, < 0 = none */
} mbrl_train_opts;

typedef struct {
    char id[64];
    char state[24];           /* "queued" "running" "done" "failed" "canceled" */
    int epochs;               /* epochs run so far */
    double train_loss;        /* last epoch, mean over members; NAN if unknown */
    double holdout_loss;      /* best mean holdout loss so far; NAN if unknown */
    long version;             /* published version when done, else 0 */
    char message[256];        /* failure reason, if any */
    cJSON *json;              /* the whole answer, owned (mbrl_job_free) */
} mbrl_job;
void mbrl_job_free(mbrl_job *job);
/* 1 if the job will not change any more (done, failed, canceled). */
int mbrl_job_finished(const mbrl_job *job);

/* Starts a job (202); job->id gets its id (job may not be NULL). */
mbrl_status mbrl_train_start(mbrl_client *c, const char *model, const mbrl_train_opts *o,
                             mbrl_job *job, mbrl_error *err);
mbrl_status mbrl_job_get(mbrl_client *c, const char *model, const char *job_id, mbrl_job *job,
                         mbrl_error *err);
/* Polls every poll_ms until the job finishes or timeout_ms passes
 * (MBRL_ETIMEOUT). A job that ended badly still returns MBRL_OK, with
 * job->state "failed" or "canceled" and job->message: check the state. */
mbrl_status mbrl_train_wait(mbrl_client *c, const char *model, const char *job_id, long poll_ms,
                            long timeout_ms, mbrl_job *job, mbrl_error *err);
/* Start + wait in one request ("wait": true), answer 200 with the job. */
mbrl_status mbrl_train(mbrl_client *c, const char *model, const mbrl_train_opts *o, mbrl_job *job,
                       mbrl_error *err);

/* ---- policies ----------------------------------------------------------- */

/* A policy job (the model's spec must have "policy"); NULL opts = the
 * spec's settings, sized to the data. The job's figures are in job->json
 * ("losses"); job->version gets the policy version it published. */
typedef struct {
    long steps;              /* 0 = the spec's, or sized to the data */
    double time_budget;      /* s; 0 = none (with steps 0: the budget alone) */
    const char *algorithm;   /* "mbpo", "distill", "bptt", or NULL = the spec's */
} mbrl_policy_opts;
/* Starts a policy job (202); job->id gets its id. */
mbrl_status mbrl_policy_train_start(mbrl_client *c, const char *model, const mbrl_policy_opts *o,
                                    mbrl_job *job, mbrl_error *err);
/* Start + wait in one request ("wait": true). Poll a started one with
 * mbrl_train_wait (jobs share one namespace). */
mbrl_status mbrl_policy_train(mbrl_client *c, const char *model, const mbrl_policy_opts *o, mbrl_job *job,
                              mbrl_error *err);

/* ---- acting and predicting -------------------------------------------- */

typedef struct {
    float action[MBRL_MAX_ACT];
    int act_dim;
    char source[16];          /* "planner", "random" or "policy" */
    double predicted_return, return_std;
    long version;
    double plan_ms;
    char precision[8];        /* "fp32" or "bf16" (planner answers), else "" */
    int truncated;            /* 1: the daemon's deadline cut the plan short (best so far) */
    int action_index;         /* discrete models: the action (act_dim is 0); -1 otherwise */
    cJSON *extras;            /* with return_plan / gains: {"plan", "gains", "nominal_obs"} as
                               * answered, owned (mbrl_act_result_free); NULL otherwise */
    long policy_version;      /* with source "policy", else 0 */
} mbrl_act_result;
/* Frees out->extras (safe on a zeroed result). */
void mbrl_act_result_free(mbrl_act_result *out);

/* Per-call options of act; NULL = none. */
typedef struct {
    const char *session;      /* warm-started plan per robot, or NULL */
    int goal_term;            /* with goal: index into the model's terms */
    const float *goal;        /* (n_goal) new target of that term, or NULL */
    int n_goal;
    long deadline_ms;         /* the daemon plans at most this long (its --max-plan-ms caps
                               * it); 0 = the daemon's default. A plan cut short answers
                               * truncated = 1; none in time: 503 deadline_exceeded */
    int use_seed;             /* 1: plan with this seed (reproducible plans), 0: the daemon draws */
    unsigned long long seed;  /* with use_seed, at most 2^63 - 1 */
    /* (new fields go last, so callers of older versions still compile) */
    int pin;                  /* 1: plan with kept version `version` instead of the current one */
    long version;             /* with pin: 404 never published, 409 no longer kept */
    const mbrl_planner *planner; /* per-call planner overrides, or NULL */
    int return_plan;          /* 1: the answer's "plan" into out->extras */
    int gains;                /* 1 (method ilqr): "gains" and "nominal_obs" into out->extras */
    const char *method;       /* planner method for this call, e.g. "policy" (the model's policy
                               * answers), or NULL = the model's planner */
    int explore;              /* with "policy": 1 = a sample instead of the deterministic action */
} mbrl_act_opts;

/* obs: (obs_dim). Reuses the client's connection and buffers. */
mbrl_status mbrl_act(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                     const mbrl_act_opts *o, mbrl_act_result *out, mbrl_error *err);

/* Rolls actions (steps, act_dim) from obs (obs_dim) through the ensemble.
 * mean, std: (steps, obs_dim) out (either may be NULL); reward_mean (steps)
 * may be NULL. */
mbrl_status mbrl_predict(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                         const float *actions, int steps, int act_dim, float *mean, float *std,
                         float *reward_mean, mbrl_error *err);

/* mbrl_predict for a discrete model: actions (steps) are integers in [0, K). */
mbrl_status mbrl_predict_discrete(mbrl_client *c, const char *model, const float *obs, int obs_dim,
                                  const int *actions, int steps, float *mean, float *std,
                                  float *reward_mean, mbrl_error *err);

/* ---- persistence ------------------------------------------------------- */

/* POST /v1/models/{m}/snapshot. */
mbrl_status mbrl_model_snapshot(mbrl_client *c, const char *model, mbrl_error *err);
/* GET /v1/models/{m}/export into the file `path` (written whole, then renamed). */
mbrl_status mbrl_model_export(mbrl_client *c, const char *model, const char *path, mbrl_error *err);
/* POST /v1/models/{m}/import with the bytes of `path` (name: the new model). */
mbrl_status mbrl_model_import(mbrl_client *c, const char *model, const char *path, mbrl_error *err);

/* ---- versions ---------------------------------------------------------- */

#define MBRL_MAX_VERSIONS 32

/* GET /v1/models/{m}/versions: the published versions the model keeps. */
typedef struct {
    long current;                  /* the version acts use (0: nothing published) */
    long newest;                   /* the newest number published */
    int n;                         /* kept versions, newest first */
    long version[MBRL_MAX_VERSIONS];
    double holdout_loss[MBRL_MAX_VERSIONS]; /* mean over members; NAN if unknown */
    double train_loss[MBRL_MAX_VERSIONS];   /* the publishing job's last epoch, mean; NAN if unknown */
    cJSON *json;                   /* the whole answer, owned (mbrl_versions_free) */
} mbrl_versions;
void mbrl_versions_free(mbrl_versions *v);
mbrl_status mbrl_versions_get(mbrl_client *c, const char *model, mbrl_versions *out, mbrl_error *err);
/* POST /v1/models/{m}/versions/{version}/promote: the kept version becomes
 * current again (needs the admin scope). */
mbrl_status mbrl_version_promote(mbrl_client *c, const char *model, long version, mbrl_error *err);
/* GET /v1/models/{m}/versions/latest into the file `path` (the current
 * version in the snapshot format, no buffer; written whole, then renamed). */
mbrl_status mbrl_version_latest(mbrl_client *c, const char *model, const char *path, mbrl_error *err);

/* ---- health ------------------------------------------------------------ */

/* GET /healthz; MBRL_OK when it answers 200. */
mbrl_status mbrl_health(mbrl_client *c, mbrl_error *err);
/* Polls /healthz every 50 ms until it answers or timeout_ms passes. */
mbrl_status mbrl_wait_ready(mbrl_client *c, long timeout_ms, mbrl_error *err);

#endif
