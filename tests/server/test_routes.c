/* test_routes.c: unit tests of server/routes.c (the matcher: arguments,
 * 404 vs 405 with Allow) and of the route table against docs/openapi.json
 * as embedded in libmbserver.a: every route must be documented, with the
 * scope the table gives it (x-scope, the description, 401/403/429), so a
 * new endpoint cannot ship without its description. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>

#include "check_util.h"
#include "errors.h"
#include "routes.h"

extern const char srv_openapi_json[];
extern const size_t srv_openapi_json_len;

START_TEST(test_every_route_documented) {
    cJSON *doc = cJSON_ParseWithLength(srv_openapi_json, srv_openapi_json_len);
    ck_assert_msg(doc != NULL, "docs/openapi.json does not parse");
    ck_assert_str_eq(cJSON_GetObjectItem(doc, "openapi")->valuestring, "3.0.3");
    const cJSON *paths = cJSON_GetObjectItem(doc, "paths");
    ck_assert(cJSON_IsObject(paths));
    for (int i = 0; i < srv_n_routes; i++) {
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(paths, srv_routes[i].pattern);
        ck_assert_msg(p != NULL, "route %s %s is missing from docs/openapi.json", srv_routes[i].method,
                      srv_routes[i].pattern);
        char m[16];
        size_t k = 0;
        for (; srv_routes[i].method[k] && k < sizeof m - 1; k++) m[k] = (char)tolower(srv_routes[i].method[k]);
        m[k] = 0;
        const cJSON *op = cJSON_GetObjectItemCaseSensitive(p, m);
        ck_assert_msg(cJSON_IsObject(op), "%s %s: no '%s' operation in docs/openapi.json",
                      srv_routes[i].method, srv_routes[i].pattern, m);
        ck_assert_msg(cJSON_IsObject(cJSON_GetObjectItem(op, "responses")), "%s %s: no responses",
                      srv_routes[i].method, srv_routes[i].pattern);
        /* the scope of the route table is the documented one (access control) */
        const cJSON *resp = cJSON_GetObjectItem(op, "responses");
        const cJSON *xs = cJSON_GetObjectItemCaseSensitive(op, "x-scope");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(op, "description");
        if (srv_routes[i].scope == SRV_SCOPE_PUBLIC) {
            const cJSON *sec = cJSON_GetObjectItemCaseSensitive(op, "security");
            ck_assert_msg(cJSON_IsArray(sec) && cJSON_GetArraySize(sec) == 0 && !xs,
                          "%s %s is open: \"security\": [] and no x-scope", srv_routes[i].method,
                          srv_routes[i].pattern);
        } else {
            const char *want = auth_scope_name(srv_routes[i].scope);
            ck_assert_msg(cJSON_IsString(xs) && !strcmp(xs->valuestring, want), "%s %s: x-scope should be %s",
                          srv_routes[i].method, srv_routes[i].pattern, want);
            char note[64];
            snprintf(note, sizeof note, "Scope: `%s`", want);
            ck_assert_msg(cJSON_IsString(desc) && strstr(desc->valuestring, note),
                          "%s %s: the description should say %s", srv_routes[i].method, srv_routes[i].pattern, note);
            const char *codes[] = {"401", "403", "429"};
            for (int k = 0; k < 3; k++)
                ck_assert_msg(cJSON_GetObjectItem(resp, codes[k]) != NULL, "%s %s: no %s response",
                              srv_routes[i].method, srv_routes[i].pattern, codes[k]);
        }
    }
    const cJSON *bearer = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "components"),
                                                                  "securitySchemes"), "bearer");
    ck_assert(cJSON_IsObject(bearer));
    ck_assert_str_eq(cJSON_GetObjectItem(bearer, "scheme")->valuestring, "bearer");
    /* and nothing documented that the server does not serve */
    for (const cJSON *p = paths->child; p; p = p->next)
        for (const cJSON *op = p->child; op; op = op->next) {
            if (!strcmp(op->string, "parameters")) continue;
            int found = 0;
            for (int i = 0; i < srv_n_routes; i++) {
                if (strcmp(srv_routes[i].pattern, p->string) != 0) continue;
                char m[16];
                size_t k = 0;
                for (; srv_routes[i].method[k] && k < sizeof m - 1; k++) m[k] = (char)tolower(srv_routes[i].method[k]);
                m[k] = 0;
                if (!strcmp(m, op->string)) found = 1;
            }
            ck_assert_msg(found, "docs/openapi.json documents %s %s, which no route serves", op->string, p->string);
        }
    cJSON_Delete(doc);
}
END_TEST

START_TEST(test_match_args_404_405) {
    char args[SRV_MAX_ARGS][SRV_ARG_MAX], allow[64];
    int st = 0;
    int r = routes_match("GET", "/v1/models/robot.arm-2/jobs/j7", args, &st, allow, sizeof allow);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(srv_routes[r].pattern, "/v1/models/{m}/jobs/{id}");
    ck_assert_str_eq(args[0], "robot.arm-2");
    ck_assert_str_eq(args[1], "j7");
    r = routes_match("POST", "/v1/models", args, &st, allow, sizeof allow);
    ck_assert_int_ge(r, 0);
    ck_assert_str_eq(srv_routes[r].method, "POST");
    r = routes_match("PUT", "/v1/models/x", args, &st, allow, sizeof allow);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(st, SRV_E_METHOD);
    ck_assert_str_eq(allow, "GET, DELETE");
    r = routes_match("GET", "/v1/models/x/unknown", args, &st, allow, sizeof allow);
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(st, SRV_E_NOT_FOUND_ROUTE);
    /* an empty segment or a trailing slash is not a model name */
    ck_assert_int_eq(routes_match("GET", "/v1/models//jobs/j1", args, &st, allow, sizeof allow), -1);
    ck_assert_int_eq(routes_match("GET", "/v1/models/x/", args, &st, allow, sizeof allow), -1);
    ck_assert_int_eq(routes_match("GET", "/healthz/", args, &st, allow, sizeof allow), -1);
    /* a segment longer than an argument may hold */
    char longp[256] = "/v1/models/";
    memset(longp + strlen(longp), 'a', 120);
    ck_assert_int_eq(routes_match("GET", longp, args, &st, allow, sizeof allow), -1);
}
END_TEST

START_TEST(test_error_mapping) {
    /* the one mapping from statuses to HTTP (server/errors.c) */
    struct { int status, http; const char *code; } want[] = {
        {MB_EINVAL, 400, "invalid_argument"}, {MB_ERANGE, 422, "out_of_range"},
        {MB_ENOTFOUND, 404, "not_found"},     {MB_EEXIST, 409, "already_exists"},
        {MB_EBUSY, 409, "busy"},              {MB_ESTATE, 409, "failed_precondition"},
        {MB_ENOMEM, 503, "out_of_memory"},    {MB_EIO, 503, "io_error"},
        {SRV_E_METHOD, 405, "method_not_allowed"}, {SRV_E_TOO_LARGE, 413, "payload_too_large"},
        {SRV_E_UNAUTH, 401, "unauthenticated"}, {SRV_E_FORBIDDEN, 403, "insufficient_scope"},
        {SRV_E_THROTTLED, 429, "too_many_failures"},
        {SRV_E_LIMIT, 429, "resource_exhausted"}, {SRV_E_BAD_JSON, 400, "invalid_json"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ck_assert_int_eq(srv_err_http(want[i].status), want[i].http);
        ck_assert_str_eq(srv_err_code(want[i].status), want[i].code);
    }
    srv_err e = {0};
    ck_assert_int_eq(srv_fail(&e, MB_EINVAL, "obs[3]", "bad %d", 3), -1);
    cJSON *j = srv_err_json(&e);
    const cJSON *o = cJSON_GetObjectItem(j, "error");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "code")->valuestring, "invalid_argument");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "message")->valuestring, "bad 3");
    ck_assert_str_eq(cJSON_GetObjectItem(o, "field")->valuestring, "obs[3]");
    cJSON_Delete(j);
}
END_TEST

int main(void) {
    Suite *s = suite_create("routes");
    TCase *tc = tcase_create("routes");
    tcase_add_test(tc, test_every_route_documented);
    tcase_add_test(tc, test_match_args_404_405);
    tcase_add_test(tc, test_error_mapping);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
