/* api_models.c: POST/GET /v1/models, GET/DELETE /v1/models/{m}. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "job.h"

srv_model *api_model_lookup(srv_req *q, srv_err *e) {
    srv_model *m = registry_get(&q->app->reg, q->args[0]);
    if (!m) srv_fail(e, MB_ENOTFOUND, NULL, "no model '%s'", q->args[0]);
    return m;
}

/* GET /v1/models/{m} and the 201 of a create. */
static cJSON *api__status(srv_app *app, srv_model *m) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", m->spec.name);
    srv_version *v = model_version_get(m);
    const mb_ensemble *en = &v->ens;
    pthread_mutex_lock(&m->lock);
    double now = srv_now();
    int sessions = session_expire(m, now, (double)app->cfg.session_timeout);
    cJSON_AddNumberToObject(o, "buffer_size", (double)m->buf.size);
    cJSON_AddNumberToObject(o, "buffer_capacity", (double)m->buf.capacity);
    cJSON_AddNumberToObject(o, "transitions_total", (double)m->buf.total);
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddBoolToObject(o, "trained", v->number > 0);
    if (m->running) cJSON_AddStringToObject(o, "job", m->running->id);
    else cJSON_AddNullToObject(o, "job");
    cJSON *jobs = cJSON_AddArrayToObject(o, "jobs");
    srv_job *last = NULL;
    for (int i = 0; i < m->n_jobs; i++) {
        jf_add(jobs, NULL, cJSON_CreateString(m->jobs[i]->id));
        pthread_mutex_lock(&m->jobs[i]->lock);
        if (m->jobs[i]->state == JOB_DONE && !m->jobs[i]->run) last = m->jobs[i]; /* a model job */
        pthread_mutex_unlock(&m->jobs[i]->lock);
    }
    if (last) atomic_fetch_add(&last->refs, 1);
    cJSON_AddNumberToObject(o, "sessions", sessions);
    pthread_mutex_unlock(&m->lock);

    cJSON *el = cJSON_AddArrayToObject(o, "elites");
    for (int i = 0; i < en->n_elites; i++) jf_add(el, NULL, cJSON_CreateNumber(en->elites[i]));
    jf_add(o, "holdout_loss", jf_floats(en->holdout_loss, en->spec.members));
    model_version_put(v);
    if (last) {
        cJSON *lt = cJSON_AddObjectToObject(o, "last_training");
        pthread_mutex_lock(&last->lock);
        cJSON_AddStringToObject(lt, "job", last->id);
        cJSON_AddNumberToObject(lt, "epochs", last->res.epochs);
        cJSON_AddNumberToObject(lt, "version", (double)last->version);
        cJSON_AddNumberToObject(lt, "seconds", last->res.seconds);
        jf_add(lt, "train_loss", jf_floats(last->res.train_loss, last->members));
        jf_add(lt, "holdout_loss", jf_floats(last->res.holdout_loss, last->members));
        cJSON_AddNumberToObject(lt, "finished", last->finished);
        pthread_mutex_unlock(&last->lock);
        job_put(last);
    } else {
        cJSON_AddNullToObject(o, "last_training");
    }
    jf_add(o, "planner", spec_render_planner(&m->spec.planner));
    jf_add(o, "policy", model_policy_render(m));
    cJSON_AddNumberToObject(o, "created", m->created);
    jf_add(o, "spec", cJSON_Parse(m->spec_json));
    jf_add(o, "persistence", store_model_status(app->store, m->log));
    return o;
}

int api_models_create(srv_req *q, srv_resp *r, srv_err *e) {
    srv_model_spec *spec = malloc(sizeof *spec); /* ~40 KiB: not on a worker's stack */
    if (!spec) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    srv_model *m = NULL;
    int rc = spec_parse(q->body, &q->app->cfg, spec, e);
    mb_plan_cost cost; /* the default planner must fit the planning limits */
    char err[200];
    if (rc == 0 && mb_plan_cost_of(&spec->planner, &spec->ens, spec->obs_dim, spec->act_dim, &cost, err,
                                   sizeof err) != MB_OK)
        rc = srv_fail(e, MB_ERANGE, "planner", "%s", err);
    if (rc == 0) rc = plan_budget_check(&q->app->budget, &cost, e);
    if (rc == 0) rc = model_create(q->app, spec, &m, e);
    free(spec);
    if (rc) return -1;
    r->http = 201;
    r->json = api__status(q->app, m);
    snprintf(r->location, sizeof r->location, "/v1/models/%s", m->spec.name);
    model_put(m);
    return 0;
}

int api_models_list(srv_req *q, srv_resp *r, srv_err *e) {
    (void)e;
    srv_model *ms[SRV_MAX_MODELS];
    int n = registry_snapshot(&q->app->reg, ms, SRV_MAX_MODELS);
    cJSON *o = cJSON_CreateObject();
    cJSON *a = cJSON_AddArrayToObject(o, "models");
    for (int i = 0; i < n; i++) {
        cJSON *x = cJSON_CreateObject();
        srv_version *v = model_version_get(ms[i]);
        pthread_mutex_lock(&ms[i]->lock);
        cJSON_AddStringToObject(x, "name", ms[i]->spec.name);
        cJSON_AddNumberToObject(x, "obs_dim", ms[i]->spec.obs_dim);
        cJSON_AddNumberToObject(x, "act_dim", ms[i]->spec.act_dim);
        cJSON_AddNumberToObject(x, "buffer_size", (double)ms[i]->buf.size);
        cJSON_AddNumberToObject(x, "version", (double)v->number);
        cJSON_AddBoolToObject(x, "training", ms[i]->running != NULL);
        pthread_mutex_unlock(&ms[i]->lock);
        model_version_put(v);
        jf_add(a, NULL, x);
        model_put(ms[i]);
    }
    r->json = o;
    return 0;
}

int api_model_get(srv_req *q, srv_resp *r, srv_err *e) {
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    r->json = api__status(q->app, m);
    model_put(m);
    return 0;
}

int api_model_delete(srv_req *q, srv_resp *r, srv_err *e) {
    if (model_delete(q->app, q->args[0], e)) return -1;
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "deleted", q->args[0]);
    return 0;
}
