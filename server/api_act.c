/* api_act.c: POST /v1/models/{m}/act: the next action for an observation.
 *
 * Body: {"obs": [obs_dim], "session": "robot-7" (optional warm start),
 *        "planner": {overrides for this call}, "goal": [{"term": i,
 *        "target": [..]}]}.
 * Answer: {"action", "source": "planner"|"random", "predicted_return",
 *          "return_std" (null for random), "version", "plan_ms"}.
 * Before the first training the action is uniform in the bounds.
 * Concurrency: the request holds a reference to the version it plans with,
 * takes its session out of the model while planning, and uses a workspace
 * no other request holds (model_ws_get). The shared planning pool is used
 * only when no other act holds it (trylock), so concurrent acts never wait
 * on each other. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "jsonv.h"

static int api__goals(const cJSON *goal, mb_reward_spec *rw, srv_err *e) {
    if (!cJSON_IsArray(goal)) return srv_fail(e, MB_EINVAL, "goal", "must be an array");
    int i = 0;
    for (const cJSON *g = goal->child; g; g = g->next, i++) {
        static const char *const keys[] = {"term", "target", NULL};
        char p[32];
        jv_path_i(p, sizeof p, "goal", i);
        long term;
        float target[MB_MAX_TERM_IDX];
        int n;
        if (jv_object(g, p, keys, e) || jv_int(g, p, "term", 1, 0, rw->n_terms - 1, &term, e) ||
            jv_floats(g, p, "target", 1, -MB_MAX_TERM_IDX, -3e38, 3e38, target, &n, e))
            return -1;
        char err[200];
        mb_status s = mb_reward_set_target(rw, (int)term, target, n, err, sizeof err);
        if (s != MB_OK) {
            char f[48];
            jv_path(f, sizeof f, p, "target");
            return srv_fail(e, (int)s, f, "%s", err);
        }
    }
    return 0;
}

int api_act(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {"obs", "session", "planner", "goal", NULL};
    srv_app *app = q->app;
    const cJSON *b = q->body;
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "planner"), "method");
    if (cJSON_IsString(pm) && !strcmp(pm->valuestring, "policy")) return api_act_policy(q, r, e);
    if (jv_object(b, "", keys, e)) return -1;
    char sname[SRV_NAME_MAX + 1];
    int has_session = jv_str(b, "", "session", 0, sname, sizeof sname, e);
    if (has_session < 0) return -1;
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    const srv_model_spec *sp = &m->spec;
    float obs[MB_MAX_OBS_DIM], action[MB_MAX_ACT_DIM];
    mb_planner_cfg cfg = sp->planner;
    mb_reward_spec rw = sp->reward; /* a copy: goals apply to this call only */
    int rc = jv_floats(b, "", "obs", 1, sp->obs_dim, -3e38, 3e38, obs, NULL, e);
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(b, "planner");
    if (rc == 0 && po) rc = spec_parse_planner(po, "planner", sp, &app->cfg, &cfg, e);
    const cJSON *goal = cJSON_GetObjectItemCaseSensitive(b, "goal");
    if (rc == 0 && goal) rc = api__goals(goal, &rw, e);
    if (rc) {
        model_put(m);
        return -1;
    }

    mb_rng rng;
    uint64_t k = atomic_fetch_add(&m->act_counter, 1);
    mb_rng_seed(&rng, sp->seed * 0x9E3779B97F4A7C15ull + k + 1);
    srv_version *v = model_version_get(m);
    cJSON *o = cJSON_CreateObject();
    if (v->number == 0) {
        for (int i = 0; i < sp->act_dim; i++)
            action[i] = sp->act_low[i] + (float)mb_rng_uniform(&rng) * (sp->act_high[i] - sp->act_low[i]);
        cJSON_AddItemToObject(o, "action", jf_floats(action, sp->act_dim));
        cJSON_AddStringToObject(o, "source", "random");
        cJSON_AddNullToObject(o, "predicted_return");
        cJSON_AddNullToObject(o, "return_std");
        cJSON_AddNumberToObject(o, "version", 0);
        cJSON_AddNumberToObject(o, "plan_ms", 0);
        atomic_fetch_add_explicit(&app->metrics.acts[1], 1, memory_order_relaxed);
    } else {
        mb_dynamics dyn = {.ens = &v->ens, .known = NULL, .obs_dim = sp->obs_dim,
                           .act_dim = sp->act_dim, .act_low = sp->act_low, .act_high = sp->act_high};
        /* a learned value and policy prior (terminal_value, policy_samples) */
        srv_policy *pol = NULL;
        if (cfg.terminal_value || cfg.policy_samples > 0) {
            pol = model_policy_get(m);
            const char *f = cfg.terminal_value ? "planner.terminal_value" : "planner.policy_samples";
            if (!pol)
                rc = srv_fail(e, MB_ESTATE, f, "no policy trained yet: POST /v1/models/%s/policy/train first", sp->name);
            else if (cfg.terminal_value && !pol->value_trained)
                rc = srv_fail(e, MB_ESTATE, f, "the policy has no trained value network (algorithm mbpo trains one)");
            else {
                if (cfg.terminal_value) dyn.value = &pol->agent.v;
                if (cfg.policy_samples > 0) dyn.policy = &pol->agent.pi;
            }
        }
        double now = srv_now();
        srv_session *s = NULL;
        if (rc == 0 && has_session == 0) {
            s = session_take(m, sname, now, (double)app->cfg.session_timeout);
            s = session_fit(s, sname, &cfg, sp->act_dim);
            if (!s) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory for the session");
            else if (s->st.valid) mb_plan_state_shift(&s->st, sp->act_low, sp->act_high);
        }
        mb_plan_ws *ws = rc == 0 ? model_ws_get(m, &cfg, &dyn) : NULL;
        if (rc == 0 && !ws) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory for the planner");
        if (rc == 0) {
            mb_pool *pool = NULL;
            if (app->plan_pool && pthread_mutex_trylock(&app->plan_pool_lock) == 0) pool = app->plan_pool;
            mb_plan_info info;
            memset(&info, 0, sizeof info);
            char err[256];
            double t0 = srv_now();
            mb_status st = mb_plan(&cfg, &dyn, &rw, obs, s ? &s->st : NULL, &rng, ws, pool, action,
                                   NULL, &info, err, sizeof err);
            double dt = srv_now() - t0;
            if (pool) pthread_mutex_unlock(&app->plan_pool_lock);
            metrics_hist(&app->metrics.plan, dt);
            if (st != MB_OK) {
                rc = srv_fail(e, (int)st, NULL, "%s", err);
            } else {
                cJSON_AddItemToObject(o, "action", jf_floats(action, sp->act_dim));
                cJSON_AddStringToObject(o, "source", "planner");
                cJSON_AddNumberToObject(o, "predicted_return", jf_num(info.predicted_return));
                cJSON_AddNumberToObject(o, "return_std", jf_num(info.return_std));
                cJSON_AddNumberToObject(o, "version", (double)v->number);
                cJSON_AddNumberToObject(o, "plan_ms", jf_num((float)(dt * 1e3)));
                atomic_fetch_add_explicit(&app->metrics.acts[0], 1, memory_order_relaxed);
            }
        }
        model_ws_put(m, ws);
        if (s) {
            if (rc == 0) session_put(m, s, srv_now(), (int)app->cfg.max_sessions);
            else session_free(s);
        }
        model_policy_put(pol);
    }
    model_version_put(v);
    model_put(m);
    if (rc) {
        cJSON_Delete(o);
        return -1;
    }
    r->json = o;
    return 0;
}
