/* spec.h: a model's description (what POST /v1/models declares) as core
 * structs, its JSON reader and writer.
 *
 * spec_parse validates everything against core's checks and the server's
 * limits (options.h) BEFORE anything is allocated, and names the field at
 * fault. spec_render writes the canonical form (every default filled in):
 * that JSON is what GET /v1/models/{m} shows and what the store persists.
 * Not for: model state (model.h). */
#ifndef SRV_SPEC_H
#define SRV_SPEC_H

#include <cjson/cJSON.h>

#include "json_floats.h"

#include "learn/buffer.h"
#include "nn/ensemble.h"
#include "errors.h"
#include "options.h"
#include "plan/planner.h"
#include "plan/reward.h"
#include "learn/trainer.h"
#include "learn/bptt.h"
#include "learn/distill.h"
#include "learn/mbpo.h"

#define SRV_NAME_MAX 64

typedef struct {
    int every;      /* retrain after this many new transitions; 0 = off */
    int max_epochs; /* per automatic job */
    int patience;
} srv_auto_train;

/* A model's policy (spec_policy.c): "policy": {"algorithm", "hidden", ...}
 * in the model spec; absent: enabled 0 (no policy). */
typedef enum { SRV_POL_MBPO = 0, SRV_POL_DISTILL, SRV_POL_BPTT } srv_pol_algo;
typedef struct {
    int enabled;
    srv_pol_algo algorithm;
    mb_agent_spec agent;     /* hidden, activation; dims and bounds from the model */
    mb_mbpo_cfg mbpo;        /* with its SAC settings */
    mb_distill_cfg distill;
    mb_bptt_cfg bptt;
    mb_planner_cfg teacher;  /* distillation's planner (default: the model's) */
    long steps;              /* per job; 0: sized to the data and the model */
    double time_budget;      /* s per job; 0: none */
    int auto_every;          /* policy job after this many new transitions; 0 = off */
    long auto_steps;         /* steps of an automatic job (0: sized) */
} srv_policy_spec;

typedef struct {
    char name[SRV_NAME_MAX + 1];
    int obs_dim, act_dim;
    float act_low[MB_MAX_ACT_DIM], act_high[MB_MAX_ACT_DIM]; /* (act_dim) */
    mb_ensemble_spec ens;
    mb_reward_spec reward;
    mb_planner_cfg planner;
    mb_train_cfg train;   /* defaults for training jobs */
    size_t buffer_capacity;
    float holdout_ratio;
    uint64_t seed;
    srv_auto_train auto_train;
    /* K > 0: "actions": {"discrete": K}; act_dim == K, bounds 0 and 1: the
     * ensemble takes the action one-hot, clients send and get integers */
    int discrete;
    srv_policy_spec policy;
} srv_model_spec;


/* 1 if name matches [A-Za-z0-9_.-]{1,64}. */
int spec_name_ok(const char *name);
/* Reads a POST /v1/models body. Returns 0 or -1 (e filled). */
int spec_parse(const cJSON *body, const srv_config *cfg, srv_model_spec *out, srv_err *e);
/* Reads planner overrides from obj (path for errors) on top of *inout and
 * checks the result (core check + server work limit). */
int spec_parse_planner(const cJSON *obj, const char *path, const srv_model_spec *s,
                       const srv_config *cfg, mb_planner_cfg *inout, srv_err *e);
/* Reads training settings (POST .../train body keys max_epochs, patience,
 * min_improvement, batch_size, lr, seed) on top of *inout. `extra` lists
 * more keys the caller allows (NULL-terminated, may be NULL). */
int spec_parse_train(const cJSON *obj, const char *path, const char *const *extra, int members,
                     mb_train_cfg *inout, srv_err *e);
/* A discrete action: node must be an integer in [0, K) (400 if not an
 * integer, 422 if out of range, naming path); writes it one-hot into
 * onehot (K). */
int spec_discrete_action(const cJSON *node, const char *path, int K, float *onehot, srv_err *e);
/* The integer action of a one-hot row (the largest entry). */
int spec_discrete_index(const float *onehot, int K);
/* The "policy" object (spec_policy.c) of a model spec, or the overrides
 * of one policy/train call (on top of *inout; `extra` more keys allowed,
 * NULL-terminated, may be NULL). o NULL: no policy (model spec) or no
 * overrides. */
int spec_parse_policy(const cJSON *o, const char *path, const char *const *extra,
                      const srv_model_spec *s, const srv_config *cfg, srv_policy_spec *inout,
                      srv_err *e);
/* Its canonical JSON (caller owns); NULL when not enabled. */
cJSON *spec_render_policy(const srv_policy_spec *p);
const char *spec_policy_algorithm_name(srv_pol_algo a);

/* Canonical JSON of the spec (caller owns). NULL on allocation failure. */
cJSON *spec_render(const srv_model_spec *s);
cJSON *spec_render_planner(const mb_planner_cfg *p);

#endif
