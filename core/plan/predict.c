/* predict.c: mb_predict (predict.h): each ensemble member follows its own
 * mean trajectory (no sampling), or the known dynamics step once per action;
 * mean and spread over members per step, rewards through the declared terms.
 * Allocates its scratch per call.
 * Not for: the planners' rollouts (propagate.c). */
#include "plan/predict.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan/planner.h"

mb_status mb_predict(const mb_dynamics *dyn, const mb_reward_spec *rw, const float *obs,
                     const float *actions, int steps, float *mean, float *std,
                     float *reward_mean, float *reward_std, char *err, size_t err_sz) {
    if (!dyn || !obs || !actions || !mean || !std || !reward_mean || !reward_std)
        return mb_fail(err, err_sz, MB_EINVAL, "predict: NULL argument");
    if (!dyn->ens == !dyn->known)
        return mb_fail(err, err_sz, MB_EINVAL, "predict: set exactly one of dynamics.ens / .known");
    if (steps < 1 || steps > MB_MAX_HORIZON)
        return mb_fail(err, err_sz, MB_ERANGE, "predict: steps must be in [1, %d], got %d",
                       MB_MAX_HORIZON, steps);
    int O = dyn->obs_dim, A = dyn->act_dim;
    if (dyn->ens ? (dyn->ens->spec.obs_dim != O || dyn->ens->spec.act_dim != A)
                 : (dyn->known->obs_dim != O || dyn->known->act_dim != A))
        return mb_fail(err, err_sz, MB_EINVAL, "predict: dynamics dims do not match the model");
    mb_reward_spec rw_default;
    if (!rw) {
        mb_reward_spec_default(&rw_default);
        rw = &rw_default;
    }
    mb_status st = mb_reward_spec_check(rw, O, A, err, err_sz);
    if (st) return st;
    if (rw->use_learned && dyn->ens && !dyn->ens->spec.learn_reward)
        return mb_fail(err, err_sz, MB_EINVAL,
                       "predict: the reward uses the learned head but the ensemble has none");
    for (int i = 0; i < O; i++)
        if (!isfinite(obs[i])) return mb_fail(err, err_sz, MB_EINVAL, "obs[%d] is not finite", i);
    for (int i = 0; i < steps * A; i++)
        if (!isfinite(actions[i]))
            return mb_fail(err, err_sz, MB_EINVAL, "actions[%d][%d] is not finite", i / A, i % A);

    int E = dyn->ens ? dyn->ens->spec.members : 1;
    int in = O + A, D = dyn->ens ? mb_ensemble_out_dim(&dyn->ens->spec) : O;
    /* x (E, in), mu and sd (E, D), s and s2 (E, O), learned and rew (E). */
    float *buf = calloc((size_t)E * (size_t)(in + 2 * D + 2 * O + 2), sizeof(float));
    uint8_t *alive = calloc((size_t)E, 1);
    mb_ens_ws *ews = dyn->ens ? mb_ens_ws_new(&dyn->ens->spec, 1) : NULL;
    if (!buf || !alive || (dyn->ens && !ews)) {
        free(buf);
        free(alive);
        mb_ens_ws_free(ews);
        return mb_fail(err, err_sz, MB_ENOMEM, "predict: out of memory");
    }
    float *x = buf, *mu = x + (size_t)E * in, *sd = mu + (size_t)E * D, *s = sd + (size_t)E * D;
    float *s2 = s + (size_t)E * O, *learned = s2 + (size_t)E * O, *rew = learned + E;
    for (int j = 0; j < E; j++) {
        memcpy(s + (size_t)j * O, obs, (size_t)O * sizeof(float));
        alive[j] = 1;
    }
    for (int t = 0; t < steps; t++) {
        const float *a = actions + (size_t)t * A;
        if (dyn->ens) {
            /* Each member follows its own mean trajectory. */
            for (int j = 0; j < E; j++) {
                memcpy(x + (size_t)j * in, s + (size_t)j * O, (size_t)O * sizeof(float));
                memcpy(x + (size_t)j * in + O, a, (size_t)A * sizeof(float));
            }
            mb_ensemble_forward(dyn->ens, ews, NULL, NULL, E, x, 1, mu, sd);
            for (int j = 0; j < E; j++) {
                for (int o = 0; o < O; o++) s[(size_t)j * O + o] += mu[(size_t)j * D + o];
                learned[j] = D > O ? mu[(size_t)j * D + O] : 0.0f;
            }
        } else {
            dyn->known->step(1, s, a, s2, learned);
            memcpy(s, s2, (size_t)O * sizeof(float));
            for (int o = 0; o < O; o++) sd[o] = 0.0f;
        }
        mb_reward_step_strided(rw, O, A, (size_t)E, s, (size_t)O, a, 0,
                               rw->use_learned ? learned : NULL, 1, alive, rew);
        for (int o = 0; o < O; o++) {
            double m = 0.0, v = 0.0, alea = 0.0;
            for (int j = 0; j < E; j++) m += s[(size_t)j * O + o];
            m /= E;
            for (int j = 0; j < E; j++) {
                double d = s[(size_t)j * O + o] - m;
                v += d * d;
                alea += (double)sd[(size_t)j * (dyn->ens ? D : O) + o] * sd[(size_t)j * (dyn->ens ? D : O) + o];
            }
            mean[(size_t)t * O + o] = (float)m;
            std[(size_t)t * O + o] = (float)sqrt(v / E + alea / E);
        }
        double rm = 0.0, rv = 0.0;
        for (int j = 0; j < E; j++) rm += rew[j];
        rm /= E;
        for (int j = 0; j < E; j++) rv += (rew[j] - rm) * (rew[j] - rm);
        reward_mean[t] = (float)rm;
        reward_std[t] = (float)sqrt(rv / E);
    }
    free(buf);
    free(alive);
    mb_ens_ws_free(ews);
    return MB_OK;
}
