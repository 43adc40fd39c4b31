/* versions.c: kept versions, pinning, promotion, listing, content tags and
 * a follower's adoption (see versions.h). */
#include "versions.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "base/crc32c.h"
#include "log.h"
#include "model_persist.h"

uint64_t versions_hash(const mb_ensemble *ens, const char *spec_json) {
    const mb_ensemble_spec *sp = &ens->spec;
    size_t in = (size_t)mb_ensemble_in_dim(sp), out = (size_t)mb_ensemble_out_dim(sp);
    uint32_t c = mb_crc32c(0, ens->params, ens->n_params * sizeof(float));
    c = mb_crc32c(c, ens->in_mean, in * sizeof(float));
    c = mb_crc32c(c, ens->in_std, in * sizeof(float));
    c = mb_crc32c(c, ens->out_mean, out * sizeof(float));
    c = mb_crc32c(c, ens->out_std, out * sizeof(float));
    c = mb_crc32c(c, &ens->n_elites, sizeof ens->n_elites);
    c = mb_crc32c(c, ens->elites, sizeof ens->elites);
    c = mb_crc32c(c, ens->holdout_loss, sizeof ens->holdout_loss);
    uint32_t s = spec_json ? mb_crc32c(0, spec_json, strlen(spec_json)) : 0;
    return (uint64_t)s << 32 | c;
}

void versions_seal(srv_version *v, uint64_t hash) {
    snprintf(v->etag, sizeof v->etag, "\"%" PRIu64 "-%016" PRIx64 "\"", v->number, hash);
}

int versions_limit(const srv_app *app, const srv_model *m) {
    long k = app->cfg.keep_versions;
    size_t np = m->cur->ens.n_params;
    long fit = np ? (long)((size_t)app->cfg.max_params / np) : k;
    if (fit < k) k = fit;
    if (k > SRV_KEEP_MAX) k = SRV_KEEP_MAX;
    return k < 1 ? 1 : (int)k;
}

int versions_keep(srv_app *app, srv_model *m, srv_version *v, srv_version **dropped) {
    int n_dropped = 0;
    int i = 0;
    while (i < m->n_kept && m->kept[i]->number < v->number) i++;
    atomic_fetch_add(&v->refs, 1);
    if (i < m->n_kept && m->kept[i]->number == v->number) {
        dropped[n_dropped++] = m->kept[i];
        m->kept[i] = v;
    } else {
        if (m->n_kept == SRV_KEEP_MAX) { /* full: room by dropping the oldest that is not current */
            int j = m->kept[0] == m->cur ? 1 : 0;
            dropped[n_dropped++] = m->kept[j];
            memmove(m->kept + j, m->kept + j + 1, sizeof m->kept[0] * (size_t)(m->n_kept - j - 1));
            m->n_kept--;
            if (j < i) i--;
        }
        memmove(m->kept + i + 1, m->kept + i, sizeof m->kept[0] * (size_t)(m->n_kept - i));
        m->kept[i] = v;
        m->n_kept++;
    }
    int limit = versions_limit(app, m);
    while (m->n_kept > limit) {
        int j = m->kept[0] == m->cur ? 1 : 0;
        dropped[n_dropped++] = m->kept[j];
        memmove(m->kept + j, m->kept + j + 1, sizeof m->kept[0] * (size_t)(m->n_kept - j - 1));
        m->n_kept--;
    }
    return n_dropped;
}

int versions_others(srv_model *m, srv_version **out) {
    int n = 0;
    for (int i = 0; i < m->n_kept; i++) {
        if (m->kept[i] == m->cur) continue;
        out[n] = m->kept[i];
        atomic_fetch_add(&out[n++]->refs, 1);
    }
    return n;
}

/* Model lock held: the kept version `number`, or NULL with e filled. */
static srv_version *versions__find(srv_model *m, uint64_t number, srv_err *e) {
    if (number == 0 && m->cur->number == 0) return m->cur;
    for (int i = 0; i < m->n_kept; i++)
        if (m->kept[i]->number == number) return m->kept[i];
    if (number >= m->next_version)
        return srv_fail(e, MB_ENOTFOUND, "version", "model '%s' has no version %" PRIu64 " (the newest is %" PRIu64 ")",
                        m->spec.name, number, m->next_version - 1), NULL;
    char list[200] = "";
    size_t used = 0;
    for (int i = 0; i < m->n_kept && used < sizeof list - 24; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%" PRIu64, i ? ", " : "", m->kept[i]->number);
    srv_fail(e, MB_ESTATE, "version", "version %" PRIu64 " of model '%s' is no longer kept (kept: %s; see --keep-versions)",
             number, m->spec.name, m->n_kept ? list : "none");
    return NULL;
}

int model_version_pin(srv_model *m, uint64_t number, srv_version **out, srv_err *e) {
    pthread_mutex_lock(&m->lock);
    srv_version *v = versions__find(m, number, e);
    if (v) atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&m->lock);
    *out = v;
    return v ? 0 : -1;
}

int model_promote(srv_app *app, srv_model *m, uint64_t number, srv_err *e) {
    pthread_mutex_lock(&m->lock);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        return srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
    }
    srv_version *v = versions__find(m, number, e);
    if (v && number == 0) { /* nothing published yet: there is nothing to roll back to */
        pthread_mutex_unlock(&m->lock);
        return srv_fail(e, MB_ESTATE, "version", "model '%s' has no published version to promote", m->spec.name);
    }
    if (!v) {
        pthread_mutex_unlock(&m->lock);
        return -1;
    }
    if (m->running) {
        char id[24];
        snprintf(id, sizeof id, "%s", m->running->id);
        pthread_mutex_unlock(&m->lock);
        return srv_fail(e, MB_EBUSY, NULL, "training job %s is running on '%s' and would publish over the promoted "
                        "version: wait for it or cancel it first", id, m->spec.name);
    }
    srv_version *old = NULL;
    uint64_t from = m->cur->number;
    if (m->cur != v) {
        atomic_fetch_add(&v->refs, 1);
        old = m->cur;
        m->cur = v;
        /* Adam's moments belong to the weights left behind (no job runs) */
        if (m->adam_ready) mb_adam_free(&m->adam);
        m->adam_ready = 0;
        m->gen++;
    }
    pthread_mutex_unlock(&m->lock);
    model_version_put(old);
    if (old)
        srv_log(SRV_LOG_INFO, "version promoted", "model=%s version=%" PRIu64 " from=%" PRIu64, m->spec.name, number,
                from);
    char err[512];
    if (store_durable(app->store)) {
        mb_status st = model_snapshot(app, m, 0, NULL, err, sizeof err);
        if (st != MB_OK)
            return srv_fail(e, (int)st, NULL, "version %" PRIu64 " is current in memory but its snapshot failed "
                            "(retry the promote): %s", number, err);
    }
    return 0;
}

cJSON *versions_info_json(const srv_version *v) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "published", v->info.published);
    cJSON_AddStringToObject(o, "job", v->info.job);
    cJSON_AddNumberToObject(o, "epochs", v->info.epochs);
    if (v->info.has_train_loss)
        cJSON_AddItemToObject(o, "train_loss", jf_floats(v->info.train_loss, v->ens.spec.members));
    else cJSON_AddNullToObject(o, "train_loss");
    return o;
}

void versions_info_read(srv_version_info *info, const cJSON *j, int members) {
    memset(info, 0, sizeof *info);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(j, "published");
    const cJSON *job = cJSON_GetObjectItemCaseSensitive(j, "job");
    const cJSON *ep = cJSON_GetObjectItemCaseSensitive(j, "epochs");
    const cJSON *tl = cJSON_GetObjectItemCaseSensitive(j, "train_loss");
    if (cJSON_IsNumber(p) && p->valuedouble >= 0) info->published = p->valuedouble;
    if (cJSON_IsString(job)) snprintf(info->job, sizeof info->job, "%s", job->valuestring);
    if (cJSON_IsNumber(ep) && ep->valuedouble >= 0 && ep->valuedouble < 1e9) info->epochs = (int)ep->valuedouble;
    if (cJSON_IsArray(tl) && cJSON_GetArraySize(tl) == members && members <= MB_MAX_MEMBERS) {
        int i = 0;
        const cJSON *x;
        cJSON_ArrayForEach(x, tl) info->train_loss[i++] = cJSON_IsNumber(x) ? (float)x->valuedouble : 0.0f;
        info->has_train_loss = 1;
    }
}

/* One entry of the listing. */
static cJSON *versions__entry(const srv_version *v, int current) {
    cJSON *o = versions_info_json(v);
    if (!o) return NULL;
    cJSON_AddNumberToObject(o, "version", (double)v->number);
    cJSON_AddBoolToObject(o, "current", current);
    cJSON_AddItemToObject(o, "holdout_loss", jf_floats(v->ens.holdout_loss, v->ens.spec.members));
    cJSON_AddItemToObject(o, "elites", jf_ints(v->ens.elites, v->ens.n_elites));
    cJSON_AddStringToObject(o, "etag", v->etag);
    return o;
}

cJSON *versions_render(srv_app *app, srv_model *m) {
    srv_version *vs[SRV_KEEP_MAX + 1];
    pthread_mutex_lock(&m->lock);
    int n = 0;
    for (int i = m->n_kept - 1; i >= 0; i--) { /* newest first */
        vs[n] = m->kept[i];
        atomic_fetch_add(&vs[n++]->refs, 1);
    }
    srv_version *cur = m->cur;
    atomic_fetch_add(&cur->refs, 1);
    uint64_t newest = m->next_version - 1;
    int limit = versions_limit(app, m);
    pthread_mutex_unlock(&m->lock);
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddStringToObject(o, "model", m->spec.name);
        cJSON_AddNumberToObject(o, "current", (double)cur->number);
        cJSON_AddNumberToObject(o, "newest", (double)newest);
        cJSON_AddNumberToObject(o, "keep", limit);
        cJSON *a = cJSON_AddArrayToObject(o, "versions");
        for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, versions__entry(vs[i], vs[i] == cur));
    }
    for (int i = 0; i < n; i++) model_version_put(vs[i]);
    model_version_put(cur);
    return o;
}

mb_status versions_install(srv_app *app, srv_model *m, mb_snapshot *sn, const cJSON *meta, char *err,
                           size_t err_sz) {
    srv_version *made[MB_SNAPSHOT_MAX_KEPT];
    int n_made = 0;
    mb_status st = MB_OK;
    for (int i = 0; i < sn->n_kept && st == MB_OK; i++) {
        mb_snapshot_kept *k = &sn->kept[i];
        if (memcmp(&k->ens.spec, &m->spec.ens, sizeof k->ens.spec) != 0) {
            st = mb_fail(err, err_sz, MB_ECORRUPT, "snapshot of '%s': kept version %" PRIu64 " differs from its spec",
                         m->spec.name, k->number);
            break;
        }
        srv_version *v = model_version_new();
        if (!v) {
            st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
            break;
        }
        v->number = k->number;
        v->ens = k->ens;
        memset(&k->ens, 0, sizeof k->ens);
        cJSON *info = cJSON_ParseWithLength(k->info, k->info_len);
        versions_info_read(&v->info, info, m->spec.ens.members);
        cJSON_Delete(info);
        versions_seal(v, versions_hash(&v->ens, m->spec_json));
        made[n_made++] = v;
    }
    srv_version *dropped[(MB_SNAPSHOT_MAX_KEPT + 1) * (SRV_KEEP_MAX + 1)];
    int n_dropped = 0;
    pthread_mutex_lock(&m->lock);
    srv_version *cur = m->cur;
    if (st == MB_OK) {
        versions_info_read(&cur->info, cJSON_GetObjectItemCaseSensitive(meta, "version_info"), m->spec.ens.members);
        versions_seal(cur, versions_hash(&cur->ens, m->spec_json));
        for (int i = 0; i < n_made; i++) {
            if (made[i]->number == cur->number) continue; /* the current one is ENSM's */
            if (made[i]->number >= m->next_version) m->next_version = made[i]->number + 1;
            n_dropped += versions_keep(app, m, made[i], dropped + n_dropped);
        }
        if (cur->number > 0) n_dropped += versions_keep(app, m, cur, dropped + n_dropped);
    }
    pthread_mutex_unlock(&m->lock);
    for (int i = 0; i < n_made; i++) model_version_put(made[i]);
    for (int i = 0; i < n_dropped; i++) model_version_put(dropped[i]);
    return st;
}

int model_adopt(srv_app *app, srv_model *m, mb_ensemble *ens, uint64_t number, const cJSON *info, srv_err *e) {
    if (memcmp(&ens->spec, &m->spec.ens, sizeof ens->spec) != 0) {
        mb_ensemble_free(ens);
        return srv_fail(e, MB_ECORRUPT, NULL, "version %" PRIu64 " of '%s' does not fit its spec", number,
                        m->spec.name);
    }
    srv_version *v = model_version_new();
    if (!v) {
        mb_ensemble_free(ens);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    v->ens = *ens;
    memset(ens, 0, sizeof *ens);
    v->number = number;
    versions_info_read(&v->info, info, m->spec.ens.members);
    uint64_t hash = versions_hash(&v->ens, m->spec_json);
    versions_seal(v, hash);
    srv_version *dropped[SRV_KEEP_MAX + 1];
    int n_dropped = 0;
    pthread_mutex_lock(&m->lock);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        model_version_put(v);
        return srv_fail(e, MB_ESTATE, NULL, "model '%s' was deleted", m->spec.name);
    }
    srv_version *old = m->cur;
    m->cur = v; /* the list's reference is taken by versions_keep; this one is cur's */
    if (number >= m->next_version) m->next_version = number + 1;
    if (number > 0) n_dropped = versions_keep(app, m, v, dropped);
    m->gen++;
    pthread_mutex_unlock(&m->lock);
    model_version_put(old);
    for (int i = 0; i < n_dropped; i++) model_version_put(dropped[i]);
    return 0;
}
