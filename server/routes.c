/* routes.c: the route table and the path matcher (see routes.h). Adding an
 * endpoint = one line here + its handler + its path in docs/openapi.json
 * (tests/server/test_routes.c fails if the document misses a route). */
#include "routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "handlers.h"
#include "metrics.h"

/* The scope each route needs (auth.h; README "Access control"). */
#define R_PUBLIC SRV_SCOPE_PUBLIC
#define R_READ SRV_SCOPE_READ
#define R_ACT SRV_SCOPE_ACT
#define R_WRITE SRV_SCOPE_WRITE
#define R_ADMIN SRV_SCOPE_ADMIN

const srv_route srv_routes[] = {
    {"POST", "/v1/models", 1L << 20, api_models_create, R_ADMIN, 0},
    {"GET", "/v1/models", SRV_BODY_NONE, api_models_list, R_READ, 0},
    {"GET", "/v1/models/{m}", SRV_BODY_NONE, api_model_get, R_READ, 0},
    {"DELETE", "/v1/models/{m}", SRV_BODY_NONE, api_model_delete, R_ADMIN, 0},
    {"POST", "/v1/models/{m}/transitions", SRV_BODY_DEFAULT, api_transitions, R_WRITE, SRV_RAW_MEM}, /* transitions_json.h */
    {"POST", "/v1/models/{m}/train", 64L << 10, api_train, R_WRITE, 0},
    {"POST", "/v1/models/{m}/policy/train", 64L << 10, api_policy_train, R_WRITE, 0},
    {"GET", "/v1/models/{m}/jobs/{id}", SRV_BODY_NONE, api_job_get, R_READ, 0},
    {"DELETE", "/v1/models/{m}/jobs/{id}", SRV_BODY_NONE, api_job_cancel, R_WRITE, 0},
    /* act and predict name one observation or a few: small caps, so a
     * flood of large bodies costs nothing before it is refused */
    {"POST", "/v1/models/{m}/act", 256L << 10, api_act, R_ACT, 0},
    {"POST", "/v1/models/{m}/predict", 256L << 10, api_predict, R_ACT, 0},
    {"POST", "/v1/models/{m}/snapshot", 64L << 10, api_model_snapshot, R_WRITE, 0},
    {"GET", "/v1/models/{m}/export", SRV_BODY_NONE, api_model_export, R_READ, 0},
    {"POST", "/v1/models/{m}/import", SRV_BODY_DEFAULT, api_model_import, R_ADMIN, SRV_RAW_FILE},
    {"GET", "/v1/models/{m}/versions", SRV_BODY_NONE, api_versions_list, R_READ, 0},
    {"GET", "/v1/models/{m}/versions/latest", SRV_BODY_NONE, api_version_latest, R_READ, 0},
    {"POST", "/v1/models/{m}/versions/{n}/promote", 64L << 10, api_version_promote, R_ADMIN, 0},
    {"GET", "/healthz", SRV_BODY_NONE, api_healthz, R_PUBLIC, 0},
    {"GET", "/readyz", SRV_BODY_NONE, api_readyz, R_PUBLIC, 0},
    {"GET", "/metrics", SRV_BODY_NONE, api_metrics, R_READ, 0},
    {"GET", "/v1/openapi.json", SRV_BODY_NONE, api_openapi, R_READ, 0},
    {"GET", "/ui", SRV_BODY_NONE, api_ui, R_READ, 0},
};
const int srv_n_routes = (int)(sizeof srv_routes / sizeof srv_routes[0]);
_Static_assert(sizeof srv_routes / sizeof srv_routes[0] <= SRV_MAX_ROUTES, "raise SRV_MAX_ROUTES");

/* Matches path against pattern; fills args. 1 on match. */
static int routes__path(const char *pattern, const char *path, char args[][SRV_ARG_MAX]) {
    const char *p = pattern, *s = path;
    int a = 0;
    while (*p && *s) {
        if (*p == '{') {
            const char *pe = strchr(p, '}');
            const char *se = strchr(s, '/');
            size_t n = se ? (size_t)(se - s) : strlen(s);
            if (n == 0 || n >= SRV_ARG_MAX || a >= SRV_MAX_ARGS) return 0;
            memcpy(args[a], s, n);
            args[a++][n] = '\0';
            p = pe + 1;
            s += n;
        } else {
            if (*p != *s) return 0;
            p++, s++;
        }
    }
    return *p == '\0' && *s == '\0';
}

int routes_call(int route, srv_req *req, srv_resp *resp, srv_err *e) {
    unsigned long f0 = srv_alloc_failures();
    int rc = srv_routes[route].handler(req, resp, e);
    if (rc == 0 && srv_alloc_failures() != f0) {
        cJSON_Delete(resp->json);
        resp->json = NULL;
        free(resp->text);
        resp->text = NULL;
        if (resp->later.obj) resp->later.release(resp->later.obj);
        memset(&resp->later, 0, sizeof resp->later);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory while building the answer");
    }
    return rc;
}

int routes_match(const char *method, const char *path, char args[][SRV_ARG_MAX], int *status,
                 char *allow, size_t allow_sz) {
    char tmp[SRV_MAX_ARGS][SRV_ARG_MAX];
    int path_seen = 0;
    size_t used = 0;
    if (allow_sz) allow[0] = '\0';
    for (int i = 0; i < srv_n_routes; i++) {
        if (!routes__path(srv_routes[i].pattern, path, tmp)) continue;
        if (!strcmp(srv_routes[i].method, method)) {
            memcpy(args, tmp, sizeof tmp);
            return i;
        }
        path_seen = 1;
        if (used < allow_sz) {
            int k = snprintf(allow + used, allow_sz - used, "%s%s", used ? ", " : "",
                             srv_routes[i].method);
            if (k > 0) used += (size_t)k;
        }
    }
    *status = path_seen ? SRV_E_METHOD : SRV_E_NOT_FOUND_ROUTE;
    return -1;
}
