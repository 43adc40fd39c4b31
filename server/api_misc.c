/* api_misc.c: GET /healthz, /readyz, /metrics, /v1/openapi.json. */
#include <string.h>

#include "app.h"
#include "handlers.h"

/* docs/openapi.json, embedded at build time (server/server.mk). */
extern const char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

int api_healthz(srv_req *q, srv_resp *r, srv_err *e) {
    (void)e;
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "status", "ok");
    cJSON_AddNumberToObject(r->json, "uptime_s", srv_wall() - q->app->started);
    return 0;
}

int api_readyz(srv_req *q, srv_resp *r, srv_err *e) {
    srv_app *app = q->app;
    if (!atomic_load(&app->ready) || atomic_load(&app->shutting_down))
        return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "not ready (starting or shutting down)");
    if (!store_ready(app->store)) return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "the store is not ready");
    r->json = cJSON_CreateObject();
    cJSON_AddBoolToObject(r->json, "ready", 1);
    return 0;
}

int api_metrics(srv_req *q, srv_resp *r, srv_err *e) {
    r->text = metrics_render(q->app, &r->text_len);
    if (!r->text) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    r->content_type = "text/plain; version=0.0.4";
    return 0;
}

int api_openapi(srv_req *q, srv_resp *r, srv_err *e) {
    (void)q, (void)e;
    r->static_text = srv_openapi_json;
    r->text_len = srv_openapi_json_len;
    r->content_type = "application/json";
    return 0;
}
