/* handlers.h: the API's handlers, one per route (see routes.c for the table).
 * Each follows srv_handler's contract (routes.h). */
#ifndef SRV_HANDLERS_H
#define SRV_HANDLERS_H

#include "routes.h"

int api_models_create(srv_req *q, srv_resp *r, srv_err *e);
int api_models_list(srv_req *q, srv_resp *r, srv_err *e);
int api_model_get(srv_req *q, srv_resp *r, srv_err *e);
int api_model_delete(srv_req *q, srv_resp *r, srv_err *e);
int api_transitions(srv_req *q, srv_resp *r, srv_err *e);
int api_train(srv_req *q, srv_resp *r, srv_err *e);
int api_job_get(srv_req *q, srv_resp *r, srv_err *e);
int api_job_cancel(srv_req *q, srv_resp *r, srv_err *e);
int api_act(srv_req *q, srv_resp *r, srv_err *e);
/* "planner": {"method": "policy"} (api_policy.c) */
int api_act_policy(srv_req *q, srv_resp *r, srv_err *e);
int api_policy_train(srv_req *q, srv_resp *r, srv_err *e);
int api_predict(srv_req *q, srv_resp *r, srv_err *e);
int api_healthz(srv_req *q, srv_resp *r, srv_err *e);
int api_readyz(srv_req *q, srv_resp *r, srv_err *e);
int api_metrics(srv_req *q, srv_resp *r, srv_err *e);
int api_openapi(srv_req *q, srv_resp *r, srv_err *e);
/* api_persist.c: snapshot on request, export, import. */
int api_model_snapshot(srv_req *q, srv_resp *r, srv_err *e);
int api_model_export(srv_req *q, srv_resp *r, srv_err *e);
int api_model_import(srv_req *q, srv_resp *r, srv_err *e);
/* api_versions.c: kept versions, the newest for followers, promote. */
int api_versions_list(srv_req *q, srv_resp *r, srv_err *e);
int api_version_latest(srv_req *q, srv_resp *r, srv_err *e);
int api_version_promote(srv_req *q, srv_resp *r, srv_err *e);
/* api_ui.c: the status page. */
int api_ui(srv_req *q, srv_resp *r, srv_err *e);


/* Shared by the api_*.c files. */
#include "model.h"
/* The model named by the first path argument, referenced, or NULL with 404. */
srv_model *api_model_lookup(srv_req *q, srv_err *e);
/* JSON array of n floats. x: (n) */

#endif
