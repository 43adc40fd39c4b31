/* api_policy.c: POST /v1/models/{m}/policy/train (a policy job, answered
 * like train: 202 and a Location, or with "wait": true 200 and the
 * finished job) and the act path's "planner": {"method": "policy"}
 * (api_act_policy, called from api_act.c).
 * Train body: {"steps": n | "time_budget": s, "wait": bool, and any key of
 * the spec's "policy" object for this job only}; {} or {"wait": true}
 * trains with defaults sized to the data and the model. */
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "job.h"
#include "jsonv.h"

/* The parked answer of "wait": true (routes.h srv_later), as train's */
static int pol__arm(void *obj, void (*wake)(void *), void *ctx) {
    srv_job *j = obj;
    int w = job_on_done(j, wake, ctx);
    if (w >= 0) return w;
    job_wait(j);
    return 1;
}

static int pol__answer(void *obj, srv_resp *r, srv_err *e) {
    r->json = job_render(obj);
    return r->json ? 0 : srv_fail(e, MB_ENOMEM, NULL, "out of memory");
}

static void pol__release(void *obj) { job_put(obj); }

int api_policy_train(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const extra[] = {"wait", NULL};
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    int rc = 0, wait = 0;
    srv_job *j = NULL;
    srv_policy_spec ps = m->spec.policy;
    if (!ps.enabled)
        rc = srv_fail(e, MB_ESTATE, "policy", "model '%s' has no policy (add \"policy\" to its spec)", m->spec.name);
    if (rc == 0 && spec_parse_policy(q->body, "", extra, &m->spec, &q->app->cfg, &ps, e)) rc = -1;
    if (rc == 0 && jv_bool(q->body, "", "wait", 0, &wait, e) < 0) rc = -1;
    if (rc == 0) {
        long steps = ps.steps;
        /* a time budget alone replaces the spec's steps */
        if (cJSON_GetObjectItemCaseSensitive(q->body, "time_budget") &&
            !cJSON_GetObjectItemCaseSensitive(q->body, "steps"))
            steps = 0;
        rc = model_policy_train(q->app, m, &ps, steps, ps.time_budget, 0, &j, e);
    }
    if (rc == 0) {
        snprintf(r->location, sizeof r->location, "/v1/models/%s/jobs/%s", m->spec.name, j->id);
        if (wait) {
            r->http = 200;
            r->later = (srv_later){j, pol__arm, pol__answer, pol__release};
            j = NULL;
        } else {
            r->http = 202;
            r->json = cJSON_CreateObject();
            cJSON_AddStringToObject(r->json, "job", j->id);
            cJSON_AddStringToObject(r->json, "kind", "policy");
            cJSON_AddStringToObject(r->json, "state", "running");
        }
        if (j) job_put(j);
    }
    model_put(m);
    return rc ? -1 : 0;
}

int api_act_policy(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {"obs", "session", "planner", "explore", NULL};
    static const char *const pkeys[] = {"method", NULL};
    srv_app *app = q->app;
    const cJSON *b = q->body;
    if (jv_object(b, "", keys, e)) return -1;
    if (jv_object(cJSON_GetObjectItemCaseSensitive(b, "planner"), "planner", pkeys, e)) return -1;
    char sname[SRV_NAME_MAX + 1];
    if (jv_str(b, "", "session", 0, sname, sizeof sname, e) < 0) return -1; /* accepted, not needed */
    int explore = 0;
    if (jv_bool(b, "", "explore", 0, &explore, e) < 0) return -1;
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    float obs[MB_MAX_OBS_DIM], action[MB_MAX_ACT_DIM];
    int rc = jv_floats(b, "", "obs", 1, m->spec.obs_dim, -3e38, 3e38, obs, NULL, e);
    uint64_t pv = 0;
    double t0 = srv_now();
    if (rc == 0) {
        mb_rng rng;
        uint64_t k = atomic_fetch_add(&m->act_counter, 1);
        mb_rng_seed(&rng, m->spec.seed * 0x9E3779B97F4A7C15ull + k + 1);
        rc = model_policy_act(m, obs, explore, &rng, action, &pv, e);
    }
    double dt = srv_now() - t0;
    if (rc == 0) {
        srv_version *v = model_version_get(m);
        uint64_t ver = v->number;
        model_version_put(v);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddItemToObject(o, "action", jf_floats(action, m->spec.act_dim));
        cJSON_AddStringToObject(o, "source", "policy");
        cJSON_AddNullToObject(o, "predicted_return");
        cJSON_AddNullToObject(o, "return_std");
        cJSON_AddNumberToObject(o, "version", (double)ver);
        cJSON_AddNumberToObject(o, "policy_version", (double)pv);
        cJSON_AddBoolToObject(o, "explore", explore);
        cJSON_AddNumberToObject(o, "plan_ms", dt * 1e3);
        r->json = o;
        metrics_hist(&app->metrics.policy_act, dt);
        atomic_fetch_add_explicit(&app->metrics.acts_policy, 1, memory_order_relaxed);
    }
    model_put(m);
    return rc ? -1 : 0;
}
