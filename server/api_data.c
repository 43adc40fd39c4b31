/* api_data.c: POST /v1/models/{m}/transitions (batch append with client+seq
 * idempotency, and the auto-train rule) and POST /v1/models/{m}/predict.
 *
 * Transitions answer 201 {"accepted": n, "buffer_size": size} once the rows
 * are in (model_append returned). A retry with the same client and seq adds
 * nothing and answers exactly the same (status and body), marked with the
 * header X-Idempotent-Replay: true; an older seq of that client answers 201
 * {"accepted": 0, ...}. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "job.h"
#include "jsonv.h"
#include "transitions_json.h"

#define API_MAX_BATCH 100000 /* rows per post (the body cap bounds it too) */

static void api__auto_train(srv_app *app, srv_model *m) {
    const srv_auto_train *at = &m->spec.auto_train;
    if (at->every <= 0) return;
    pthread_mutex_lock(&m->lock);
    int due = !m->running && !m->deleted && m->buf.total - m->auto_base >= (uint64_t)at->every;
    pthread_mutex_unlock(&m->lock);
    if (!due) return;
    mb_train_cfg cfg = m->spec.train;
    cfg.max_epochs = at->max_epochs;
    cfg.patience = at->patience;
    srv_err e = {0};
    (void)model_train(app, m, &cfg, 1, NULL, &e); /* busy: the next post retries */
}

int api_transitions(srv_req *q, srv_resp *r, srv_err *e) {
    /* The body is read from its text (transitions_json.h), never as a cJSON
     * tree: memory stays within ~3x the body. */
    tj_head h;
    if (tj_head_parse(q->raw, q->raw_len, API_MAX_BATCH, &h, e) != 0) return -1;
    int n = h.n;
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    int od = m->spec.obs_dim, ad = m->spec.act_dim;
    float *obs = malloc(sizeof(float) * (size_t)n * od);
    float *next = malloc(sizeof(float) * (size_t)n * od);
    float *act = malloc(sizeof(float) * (size_t)n * ad);
    float *rew = malloc(sizeof(float) * (size_t)n);
    uint8_t *term = malloc((size_t)n), *trunc = malloc((size_t)n);
    int rc = 0;
    if (!obs || !next || !act || !rew || !term || !trunc) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    if (rc == 0)
        rc = tj_rows(q->raw, q->raw_len, &h, od, ad, m->spec.discrete, obs, act, rew, next, term, trunc, e);
    size_t accepted = 0, size = 0;
    int replay = 0;
    if (rc == 0)
        rc = model_append(q->app, m, h.has_client ? h.client : NULL, (uint64_t)h.seq, (size_t)n, obs, act,
                          rew, next, term, trunc, &accepted, &size, &replay, e);
    free(obs), free(next), free(act), free(rew), free(term), free(trunc);
    if (rc == 0) {
        r->http = 201;
        r->replay = replay;
        /* stored and durable whatever happens here: a NULL answer is a 503
         * (http.c), and the client's retry with the same seq is a replay */
        r->json = cJSON_CreateObject();
        cJSON_AddNumberToObject(r->json, "accepted", (double)accepted);
        cJSON_AddNumberToObject(r->json, "buffer_size", (double)size);
        if (!replay) api__auto_train(q->app, m);
        if (!replay) model_policy_auto(q->app, m);
    }
    model_put(m);
    return rc;
}

int api_predict(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {"obs", "actions", NULL};
    const cJSON *b = q->body;
    if (jv_object(b, "", keys, e)) return -1;
    srv_model *m = api_model_lookup(q, e);
    if (!m) return -1;
    int od = m->spec.obs_dim, ad = m->spec.act_dim;
    float obs[MB_MAX_OBS_DIM];
    float *actions = NULL, *mean = NULL, *std = NULL, *rm = NULL, *rs = NULL;
    int rc = jv_floats(b, "", "obs", 1, od, -3e38, 3e38, obs, NULL, e);
    const cJSON *as = cJSON_GetObjectItemCaseSensitive(b, "actions");
    int steps = 0;
    if (rc == 0) {
        if (!as) rc = srv_fail(e, MB_EINVAL, "actions", "missing required field");
        else if (!cJSON_IsArray(as)) rc = srv_fail(e, MB_EINVAL, "actions", "must be an array of actions");
        else if ((steps = cJSON_GetArraySize(as)) < 1 || steps > MB_MAX_HORIZON)
            rc = srv_fail(e, MB_EINVAL, "actions", "must hold 1..%d actions", MB_MAX_HORIZON);
    }
    if (rc == 0) {
        actions = malloc(sizeof(float) * (size_t)steps * ad);
        mean = malloc(sizeof(float) * (size_t)steps * od);
        std = malloc(sizeof(float) * (size_t)steps * od);
        rm = malloc(sizeof(float) * (size_t)steps);
        rs = malloc(sizeof(float) * (size_t)steps);
        if (!actions || !mean || !std || !rm || !rs) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    int i = 0;
    for (const cJSON *a = as ? as->child : NULL; rc == 0 && a; a = a->next, i++) {
        char p[32];
        jv_path_i(p, sizeof p, "actions", i);
        rc = m->spec.discrete ? spec_discrete_action(a, p, ad, actions + (size_t)i * ad, e)
                              : jv_floats_node(a, p, ad, -3e38, 3e38, actions + (size_t)i * ad, NULL, e);
    }
    if (rc == 0) {
        srv_version *v = model_version_get(m);
        mb_dynamics dyn = {.ens = &v->ens, .known = NULL, .obs_dim = od, .act_dim = ad,
                           .act_low = m->spec.act_low, .act_high = m->spec.act_high,
                           .discrete = m->spec.discrete};
        char err[256];
        mb_status s = mb_predict(&dyn, &m->spec.reward, obs, actions, steps, mean, std, rm, rs, err,
                                 sizeof err);
        if (s != MB_OK) rc = srv_fail(e, (int)s, NULL, "%s", err);
        else {
            cJSON *o = r->json = cJSON_CreateObject();
            cJSON *jm = cJSON_AddArrayToObject(o, "mean"), *js = cJSON_AddArrayToObject(o, "std");
            for (int t = 0; t < steps; t++) {
                jf_add(jm, NULL, jf_floats(mean + (size_t)t * od, od));
                jf_add(js, NULL, jf_floats(std + (size_t)t * od, od));
            }
            jf_add(o, "reward_mean", jf_floats(rm, steps));
            jf_add(o, "reward_std", jf_floats(rs, steps));
            cJSON_AddNumberToObject(o, "version", (double)v->number);
        }
        model_version_put(v);
    }
    free(actions), free(mean), free(std), free(rm), free(rs);
    model_put(m);
    return rc;
}
