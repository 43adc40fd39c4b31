/* act_answer.h: the parts of POST /v1/models/{m}/act's answer that depend
 * on the action space and on what the caller asked for (issue 14): the
 * action as an integer (discrete models) or a list, the random action
 * before the first training, "plan" ("return_plan": true) and "gains" /
 * "nominal_obs" ("gains": true, iLQR).
 * Not for: the planning itself (api_act.c). */
#ifndef SRV_ACT_ANSWER_H
#define SRV_ACT_ANSWER_H

#include <cjson/cJSON.h>

#include "base/rng.h"
#include "errors.h"
#include "plan/planner.h"
#include "spec.h"

/* The action's JSON: an integer for a discrete model (the one-hot row's
 * index), else a list of act_dim numbers. NULL when out of memory. */
cJSON *act_action_json(const srv_model_spec *sp, const float *action);
/* A uniform action: one-hot of a uniform index, or uniform in the bounds. */
void act_random_action(const srv_model_spec *sp, mb_rng *rng, float *action);
/* Checks the answer options against the planner: gains needs ilqr (400,
 * field "gains"). */
int act_options_check(const mb_planner_cfg *cfg, int want_gains, srv_err *e);
/* Adds "plan": {"actions", "obs_mean", "obs_std"} for plan (horizon,
 * act_dim) predicted from obs through dyn (mb_predict: the spread over the
 * members), and/or "gains" (act_dim x obs_dim) with "nominal_obs" from ws.
 * Returns 0, or -1 with e filled. */
int act_answer_extras(cJSON *o, const srv_model_spec *sp, const mb_dynamics *dyn,
                      const mb_reward_spec *rw, const mb_planner_cfg *cfg, const float *obs,
                      const float *plan, const mb_plan_ws *ws, int want_gains, srv_err *e);

#endif
