/* api_train.c: POST /v1/models/{m}/train, GET and DELETE (cancel)
 * /v1/models/{m}/jobs/{id}. Without "wait": 202 {"job", "state"} and a
 * Location; with "wait": true, 200 and the finished job's status. */
#include <stdio.h>

#include "app.h"
#include "handlers.h"
#include "job.h"
#include "jsonv.h"

/* The parked answer of "wait": true (routes.h srv_later) */
static int train__arm(void *obj, void (*wake)(void *), void *ctx) {
    srv_job *j = obj;
    int w = job_on_done(j, wake, ctx);
    if (w >= 0) return w;
    job_wait(j); /* too many waiters: this one blocks its worker */
    return 1;
}

static int train__answer(void *obj, srv_resp *r, srv_err *e) {
    r->json = job_render(obj);
    return r->json ? 0 : srv_fail(e, MB_ENOMEM, NULL, "out of memory");
}

static void train__release(void *obj) { job_put(obj); }

int api_train(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const extra[] = {"wait", NULL};
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    mb_train_cfg cfg = m->spec.train;
    int wait = 0;
    srv_job *j = NULL;
    int rc = spec_parse_train(q->body, "", extra, m->spec.ens.members, &cfg, e);
    if (rc == 0) rc = jv_bool(q->body, "", "wait", 0, &wait, e) < 0 ? -1 : 0;
    if (rc == 0) rc = model_train(q->app, m, &cfg, 0, &j, e);
    if (rc == 0) {
        snprintf(r->location, sizeof r->location, "/v1/models/%s/jobs/%s", m->spec.name, j->id);
        if (wait) {
            r->http = 200;
            /* answered when it has finished; no worker waits */
            r->later = (srv_later){j, train__arm, train__answer, train__release};
            j = NULL;
        } else {
            r->http = 202;
            r->json = cJSON_CreateObject();
            cJSON_AddStringToObject(r->json, "job", j->id);
            cJSON_AddStringToObject(r->json, "state", "running");
        }
        if (j) job_put(j);
    }
    model_put(m);
    return rc;
}

static srv_job *api__job(srv_req *q, srv_err *e) {
    srv_model *m = api_model_lookup(q, e);
    if (!m) return NULL;
    srv_job *j = model_job_find(m, q->args[1]);
    if (!j) srv_fail(e, MB_ENOTFOUND, NULL, "no job '%s' on model '%s'", q->args[1], q->args[0]);
    model_put(m);
    return j;
}

int api_job_get(srv_req *q, srv_resp *r, srv_err *e) {
    srv_job *j = api__job(q, e);
    if (!j) return -1;
    r->json = job_render(j);
    job_put(j);
    return 0;
}

int api_job_cancel(srv_req *q, srv_resp *r, srv_err *e) {
    srv_job *j = api__job(q, e);
    if (!j) return -1;
    job_cancel(j);
    r->json = job_render(j);
    job_put(j);
    return 0;
}
