/* act_answer.c: the action-space and option-dependent parts of the act
 * answer (contract in act_answer.h). */
#include "act_answer.h"

#include <stdlib.h>

cJSON *act_action_json(const srv_model_spec *sp, const float *action) {
    if (sp->discrete > 0) return cJSON_CreateNumber(spec_discrete_index(action, sp->discrete));
    return jf_floats(action, sp->act_dim);
}

void act_random_action(const srv_model_spec *sp, mb_rng *rng, float *action) {
    if (sp->discrete > 0) {
        int k = (int)(mb_rng_uniform(rng) * sp->discrete);
        if (k >= sp->discrete) k = sp->discrete - 1;
        for (int i = 0; i < sp->discrete; i++) action[i] = (float)(i == k);
        return;
    }
    for (int i = 0; i < sp->act_dim; i++)
        action[i] = sp->act_low[i] + (float)mb_rng_uniform(rng) * (sp->act_high[i] - sp->act_low[i]);
}

int act_options_check(const mb_planner_cfg *cfg, int want_gains, srv_err *e) {
    if (want_gains && cfg->method != MB_PLAN_ILQR)
        return srv_fail(e, MB_EINVAL, "gains", "feedback gains come from planner.method ilqr, not %s",
                        mb_plan_method_name(cfg->method));
    return 0;
}

int act_answer_extras(cJSON *o, const srv_model_spec *sp, const mb_dynamics *dyn,
                      const mb_reward_spec *rw, const mb_planner_cfg *cfg, const float *obs,
                      const float *plan, const mb_plan_ws *ws, int want_gains, srv_err *e) {
    const int H = cfg->horizon, O = sp->obs_dim, A = sp->act_dim;
    if (plan) {
        float *mean = malloc(sizeof(float) * (size_t)H * O), *std = malloc(sizeof(float) * (size_t)H * O);
        float *rm = malloc(sizeof(float) * (size_t)H), *rs = malloc(sizeof(float) * (size_t)H);
        int rc = 0;
        char err[256];
        if (!mean || !std || !rm || !rs) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory for the plan");
        else if (mb_predict(dyn, rw, obs, plan, H, mean, std, rm, rs, err, sizeof err) != MB_OK)
            rc = srv_fail(e, MB_ESTATE, NULL, "plan: %s", err);
        if (rc == 0) {
            cJSON *p = cJSON_AddObjectToObject(o, "plan");
            cJSON *ja = cJSON_AddArrayToObject(p, "actions");
            cJSON *jm = cJSON_AddArrayToObject(p, "obs_mean"), *js = cJSON_AddArrayToObject(p, "obs_std");
            for (int t = 0; t < H; t++) {
                cJSON_AddItemToArray(ja, act_action_json(sp, plan + (size_t)t * A));
                cJSON_AddItemToArray(jm, jf_floats(mean + (size_t)t * O, O));
                cJSON_AddItemToArray(js, jf_floats(std + (size_t)t * O, O));
            }
        }
        free(mean), free(std), free(rm), free(rs);
        if (rc) return -1;
    }
    if (want_gains) {
        float K[MB_MAX_ACT_DIM * 16], x0[MB_MAX_OBS_DIM];
        float *Kp = (size_t)A * O <= sizeof K / sizeof K[0] ? K : malloc(sizeof(float) * (size_t)A * O);
        if (!Kp) return srv_fail(e, MB_ENOMEM, NULL, "out of memory for the gains");
        if (mb_plan_ws_gains(ws, Kp, x0)) {
            cJSON *g = cJSON_AddArrayToObject(o, "gains");
            for (int i = 0; i < A; i++) cJSON_AddItemToArray(g, jf_floats(Kp + (size_t)i * O, O));
            cJSON_AddItemToObject(o, "nominal_obs", jf_floats(x0, O));
        } else {
            cJSON_AddNullToObject(o, "gains");
            cJSON_AddNullToObject(o, "nominal_obs");
        }
        if (Kp != K) free(Kp);
    }
    return 0;
}
