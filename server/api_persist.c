/* api_persist.c: POST /v1/models/{m}/snapshot (write a snapshot now),
 * GET /v1/models/{m}/export (the model as one versioned, checksummed file:
 * spec, weights, normaliser, version, replay buffer; core/store/snapshot.h), and
 * POST /v1/models/{m}/import (creates model {m} from such a file, sent as
 * the raw body, on this daemon or another).
 * Not for: the file format (core/store/snapshot.c) or the disk (store.c). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "jsonv.h"
#include "model_persist.h"
#include "store/snapshot.h"

int api_model_snapshot(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {NULL};
    if (jv_object(q->body, "", keys, e)) return -1;
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    cJSON *info = NULL;
    char err[512];
    mb_status st = model_snapshot(q->app, m, 0, &info, err, sizeof err);
    model_put(m);
    if (st != MB_OK) return srv_fail(e, (int)st, NULL, "%s", err);
    cJSON_AddStringToObject(info, "model", q->args[0]);
    r->http = 201;
    r->json = info;
    return 0;
}

int api_model_export(srv_req *q, srv_resp *r, srv_err *e) {
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    void *data = NULL;
    size_t n = 0;
    char err[512];
    mb_status st = model_export(m, 1, &data, &n, err, sizeof err);
    model_put(m);
    if (st != MB_OK) return srv_fail(e, (int)st, NULL, "%s", err);
    r->text = data;
    r->text_len = n;
    r->content_type = "application/octet-stream";
    return 0;
}

int api_model_import(srv_req *q, srv_resp *r, srv_err *e) {
    srv_app *app = q->app;
    const char *name = q->args[0];
    char err[512];
    if (!spec_name_ok(name)) return srv_fail(e, MB_EINVAL, "name", "model names match [A-Za-z0-9_.-]{1,64}");
    srv_model *old = registry_get(&app->reg, name);
    if (old) {
        model_put(old);
        return srv_fail(e, MB_EEXIST, "name", "model '%s' already exists", name);
    }
    /* Cap what a file may make us allocate by what a created model may use. */
    mb_snapshot_opts o = {0, (size_t)app->cfg.max_buffer_mb * 1048576u + (size_t)app->cfg.max_params * 16u};
    mb_snapshot sn;
    mb_status st = mb_snapshot_decode_mem(q->raw, q->raw_len, &o, &sn, err, sizeof err);
    if (st != MB_OK) return srv_fail(e, st == MB_ENOMEM ? MB_ENOMEM : st == MB_ERANGE ? MB_ERANGE : MB_ECORRUPT,
                                     NULL, "import: %s", err);
    cJSON *meta = cJSON_ParseWithLength(sn.meta, sn.meta_len);
    cJSON *spec = cJSON_GetObjectItemCaseSensitive(meta, "spec");
    int rc = -1;
    srv_model *m = NULL;
    srv_model_spec *sp = malloc(sizeof *sp);
    if (!sp) {
        srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        goto out;
    }
    if (!cJSON_IsObject(spec) || !sn.has_ensemble) {
        srv_fail(e, MB_ECORRUPT, NULL, "import: not an mbrld model export (no spec or no ensemble)");
        goto out;
    }
    cJSON_ReplaceItemInObjectCaseSensitive(spec, "name", cJSON_CreateString(name));
    if (spec_parse(spec, &app->cfg, sp, e) != 0) goto out;
    if (model_create(app, sp, &m, e) != 0) goto out;
    st = model_install(app, m, &sn, meta, err, sizeof err);
    /* Imported rows never went through the log: a snapshot makes them durable
     * before the answer. */
    if (st == MB_OK && store_durable(app->store)) st = model_snapshot(app, m, 0, NULL, err, sizeof err);
    if (st != MB_OK) {
        srv_err e2;
        model_delete(app, name, &e2);
        srv_fail(e, (int)st, NULL, "import: %s", err);
        goto out;
    }
    srv_version *v = model_version_get(m);
    r->json = cJSON_CreateObject();
    cJSON_AddStringToObject(r->json, "name", name);
    cJSON_AddNumberToObject(r->json, "version", (double)v->number);
    pthread_mutex_lock(&m->lock);
    cJSON_AddNumberToObject(r->json, "buffer_size", (double)m->buf.size);
    pthread_mutex_unlock(&m->lock);
    cJSON_AddNumberToObject(r->json, "bytes", (double)q->raw_len);
    model_version_put(v);
    r->http = 201;
    snprintf(r->location, sizeof r->location, "/v1/models/%s", name);
    rc = 0;
out:
    if (m) model_put(m);
    free(sp);
    cJSON_Delete(meta);
    mb_snapshot_free(&sn);
    return rc;
}
