/* api_misc.c: GET /healthz, /readyz, /metrics, /v1/openapi.json. */
#include <string.h>

#include "app.h"
#include "follow.h"
#include "handlers.h"

/* docs/openapi.json, embedded at build time (server/server.mk). */
extern const char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

/* The probes are open to anyone (no token, routes.c), so they say nothing
 * but their status: no uptime, version or reason (the reason of a 503 is
 * in the log and /metrics). */
int api_healthz(srv_req *q, srv_resp *r, srv_err *e) {
    (void)q;
    r->json = cJSON_CreateObject();
    if (!r->json || !cJSON_AddStringToObject(r->json, "status", "ok"))
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    return 0;
}

int api_readyz(srv_req *q, srv_resp *r, srv_err *e) {
    srv_app *app = q->app;
    if (!atomic_load(&app->ready) || atomic_load(&app->shutting_down) || !store_ready(app->store))
        return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "not ready");
    if (follow_ready(app, e) != 0) return -1; /* a follower out of touch with its trainer */
    r->json = cJSON_CreateObject();
    if (!r->json || !cJSON_AddBoolToObject(r->json, "ready", 1))
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
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
