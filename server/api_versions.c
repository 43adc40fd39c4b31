/* api_versions.c: GET /v1/models/{m}/versions (the kept versions with their
 * training losses), GET /v1/models/{m}/versions/latest (the current version
 * as one snapshot-format file without buffer or optimiser, with an ETag:
 * what followers pull; If-None-Match answers 304), and POST
 * /v1/models/{m}/versions/{n}/promote (an older kept version becomes
 * current again). The logic is in versions.c. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "jsonv.h"
#include "model_persist.h"
#include "versions.h"

int api_versions_list(srv_req *q, srv_resp *r, srv_err *e) {
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    r->json = versions_render(q->app, m);
    model_put(m);
    return r->json ? 0 : srv_fail(e, MB_ENOMEM, NULL, "out of memory");
}

/* 1 if the If-None-Match list (comma-separated tags, or "*") names tag. */
static int api__etag_match(const char *list, const char *tag) {
    if (!list) return 0;
    size_t n = strlen(tag);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!strncmp(p, "W/", 2)) p += 2; /* weak comparison, as RFC 9110 has it for If-None-Match */
        if (*p == '*') return 1;
        if (!strncmp(p, tag, n) && (p[n] == '\0' || p[n] == ',' || p[n] == ' ' || p[n] == '\t')) return 1;
        while (*p && *p != ',') p++;
    }
    return 0;
}

int api_version_latest(srv_req *q, srv_resp *r, srv_err *e) {
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    srv_version *v = model_version_get(m);
    /* the tag names the version and the policy the file carries: a newly
     * trained policy is a new file for followers */
    pthread_mutex_lock(&m->lock);
    uint64_t pol = m->pol ? m->pol->number : 0;
    pthread_mutex_unlock(&m->lock);
    size_t k = strlen(v->etag);
    if (pol && k >= 2)
        snprintf(r->etag, sizeof r->etag, "%.*s-p%" PRIu64 "\"", (int)(k - 1), v->etag, pol);
    else
        snprintf(r->etag, sizeof r->etag, "%s", v->etag);
    int rc = 0;
    if (api__etag_match(q->if_none_match, r->etag)) {
        r->http = 304; /* unchanged: no body */
    } else {
        void *data = NULL;
        size_t n = 0;
        char err[512];
        mb_status st = model_export_version(m, v, 0, &data, &n, err, sizeof err);
        if (st != MB_OK) rc = srv_fail(e, (int)st, NULL, "%s", err);
        r->text = data;
        r->text_len = n;
        r->content_type = "application/octet-stream";
    }
    model_version_put(v);
    model_put(m);
    return rc;
}

int api_version_promote(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {NULL};
    if (jv_object(q->body, "", keys, e)) return -1;
    const char *s = q->args[1];
    char *end = NULL;
    uint64_t n = strtoull(s, &end, 10);
    if (!*s || *end || *s == '-' || *s == '+' || strlen(s) > 19)
        return srv_fail(e, MB_EINVAL, "version", "version '%s' is not a version number", s);
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    int rc = model_promote(q->app, m, n, e);
    if (rc == 0) r->json = versions_render(q->app, m);
    model_put(m);
    if (rc == 0 && !r->json) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    return rc;
}
