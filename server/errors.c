/* errors.c: status -> (HTTP status, error code), the only such mapping. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status, http;
    const char *code;
} err__table[] = {
    {MB_EINVAL, 400, "invalid_argument"},   {MB_ERANGE, 422, "out_of_range"},
    {MB_ENOMEM, 503, "out_of_memory"},      {MB_ENOTFOUND, 404, "not_found"},
    {MB_EEXIST, 409, "already_exists"},     {MB_EBUSY, 409, "busy"},
    {MB_ECANCELED, 409, "canceled"},        {MB_EIO, 503, "io_error"},
    {MB_ECORRUPT, 422, "corrupt"},          {MB_ESTATE, 409, "failed_precondition"},
    {SRV_E_BAD_JSON, 400, "invalid_json"},  {SRV_E_NOT_FOUND_ROUTE, 404, "not_found"},
    {SRV_E_METHOD, 405, "method_not_allowed"}, {SRV_E_TOO_LARGE, 413, "payload_too_large"},
    {SRV_E_UNAUTH, 401, "unauthenticated"}, {SRV_E_FORBIDDEN, 403, "insufficient_scope"},
    {SRV_E_UNAVAILABLE, 503, "unavailable"}, {SRV_E_LIMIT, 429, "resource_exhausted"},
    {SRV_E_INTERNAL, 500, "internal"},      {SRV_E_THROTTLED, 429, "too_many_failures"},
    {SRV_E_DEADLINE, 503, "deadline_exceeded"},
    {SRV_E_READ_ONLY, 409, "read_only"},
};
#define ERR__N (int)(sizeof err__table / sizeof err__table[0])

int srv_fail(srv_err *e, int status, const char *field, const char *fmt, ...) {
    e->status = status;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

int srv_err_http(int status) {
    for (int i = 0; i < ERR__N; i++)
        if (err__table[i].status == status) return err__table[i].http;
    return 500;
}

const char *srv_err_code(int status) {
    for (int i = 0; i < ERR__N; i++)
        if (err__table[i].status == status) return err__table[i].code;
    return "internal";
}

cJSON *srv_err_json(const srv_err *e) {
    cJSON *root = cJSON_CreateObject();
    cJSON *o = cJSON_AddObjectToObject(root, "error");
    if (!o || !cJSON_AddStringToObject(o, "code", srv_err_code(e->status)) ||
        !cJSON_AddStringToObject(o, "message", e->message) ||
        !(e->field[0] ? cJSON_AddStringToObject(o, "field", e->field)
                      : cJSON_AddNullToObject(o, "field"))) {
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}
