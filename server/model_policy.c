/* model_policy.c: the registry's side of policies (see model.h): policy
 * versions, the policy job (what it is given: copies of the buffer and the
 * agent, a reference to the current ensemble version; what it runs: MBPO,
 * distillation or BPTT from core/learn; how its result is published and
 * snapshotted), acts from the policy, recovery and status.
 * A policy job shares the model's one-job-at-a-time slot (m->running) with
 * ensemble training: the agent's optimisers belong to the agent, so the job
 * trains its own copy and a new version is swapped in under the lock. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "job.h"
#include "log.h"
#include "model_persist.h"

static srv_policy *pol__new(void) {
    srv_policy *p = calloc(1, sizeof *p);
    if (p) atomic_init(&p->refs, 1);
    return p;
}

void model_policy_put(srv_policy *p) {
    if (p && atomic_fetch_sub(&p->refs, 1) == 1) {
        mb_sac_free(&p->agent);
        free(p);
    }
}

srv_policy *model_policy_get(srv_model *m) {
    pthread_mutex_lock(&m->lock);
    srv_policy *p = m->pol;
    if (p) atomic_fetch_add(&p->refs, 1);
    pthread_mutex_unlock(&m->lock);
    return p;
}

void model_policy_free_all(srv_model *m) {
    model_policy_put(m->pol);
    m->pol = NULL;
    for (int i = 0; i < m->n_pol_ws; i++) mb_policy_ws_free(m->pol_ws[i]);
    m->n_pol_ws = 0;
}

/* ---- publishing ---------------------------------------------------------- */

/* Takes p (one reference) as the current policy and snapshots the model. */
static int pol__publish(srv_app *app, srv_model *m, srv_policy *p, uint64_t *number, char *err, size_t err_sz) {
    pthread_mutex_lock(&m->lock);
    if (m->deleted) {
        pthread_mutex_unlock(&m->lock);
        model_policy_put(p);
        snprintf(err, err_sz, "model '%s' was deleted", m->spec.name);
        return -1;
    }
    if (m->pol_next == 0) m->pol_next = 1;
    p->number = m->pol_next++;
    srv_policy *old = m->pol;
    m->pol = p;
    /* act workspaces stay valid: a model's policy keeps its spec */
    m->gen++;
    pthread_mutex_unlock(&m->lock);
    model_policy_put(old);
    *number = p->number;
    srv_log(SRV_LOG_INFO, "policy published", "model=%s policy_version=%llu", m->spec.name,
            (unsigned long long)p->number);
    char e2[512];
    /* the running policy job leaves m->adam alone: it may be read (adam_owned) */
    if (store_durable(app->store) && model_snapshot(app, m, 1, NULL, e2, sizeof e2) != MB_OK)
        srv_log(SRV_LOG_WARN, "snapshot after policy training failed", "model=%s error=\"%s\"", m->spec.name, e2);
    return 0;
}

/* ---- the job ------------------------------------------------------------- */

typedef struct {
    srv_app *app;
    srv_model *m;           /* referenced */
    srv_policy_spec ps;     /* this job's settings */
    srv_version *ver;       /* the ensemble it learns through, referenced */
    mb_buffer data;         /* private copy of the buffer */
    srv_policy *work;       /* the agent being trained (unpublished) */
    long steps;             /* 0: time budget only */
} pol__job;

static void pol__stats(pol__job *o, srv_job *j, long step, int n, const char *const *names,
                       const float *values, size_t model_rows) {
    job_progress(j, step, n, names, values);
    srv_model *m = o->m;
    pthread_mutex_lock(&m->lock);
    srv_policy_stats *s = &m->pol_stats;
    s->has = 1;
    s->algorithm = o->ps.algorithm;
    s->n = n > 8 ? 8 : n;
    for (int i = 0; i < s->n; i++) {
        s->names[i] = names[i];
        s->values[i] = values[i];
    }
    s->model_rows = model_rows;
    pthread_mutex_unlock(&m->lock);
}

/* 1 when the job is over: steps done, budget spent */
static int pol__done(const pol__job *o, const srv_job *j, long step, double t0) {
    if (o->steps > 0 && step >= o->steps) return 1;
    if (j->budget_s > 0 && srv_now() - t0 >= j->budget_s) return 1;
    return 0;
}

static int pol__stop(void *ctx) { return job_stopping(ctx); }

static mb_status pol__run(void *ctx, srv_job *j, mb_pool *pool, uint64_t *version, char *err, size_t err_sz) {
    pol__job *o = ctx;
    srv_model *m = o->m;
    const srv_model_spec *sp = &m->spec;
    mb_sac *ag = &o->work->agent;
    mb_dynamics dyn = {.ens = &o->ver->ens, .obs_dim = sp->obs_dim, .act_dim = sp->act_dim,
                       .act_low = sp->act_low, .act_high = sp->act_high};
    const mb_reward_spec *rw = &sp->reward;
    mb_status st = MB_OK;
    double t0 = srv_now();
    long step = 0;
    uint64_t seed = sp->seed * 0x9E3779B97F4A7C15ull + (uint64_t)ag->updates + 7;
    switch (o->ps.algorithm) {
    case SRV_POL_MBPO: {
        static const char *const names[] = {"critic", "actor", "value", "alpha", "entropy", "q_mean", "model_rows"};
        mb_mbpo_cfg cfg = o->ps.mbpo;
        mb_sac_set_lr(ag, &cfg.sac);
        mb_mbpo run;
        st = mb_mbpo_init(&run, &cfg, sp->obs_dim, sp->act_dim, seed, err, err_sz);
        if (st != MB_OK) break;
        run.steps = o->work->steps;
        mb_mbpo_ws *ws = mb_mbpo_ws_new(&cfg, ag, &dyn, mb_pool_size(pool));
        if (!ws) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory for MBPO's workspace");
        while (st == MB_OK && !pol__done(o, j, step, t0)) {
            if (job_stopping(j)) {
                st = mb_fail(err, err_sz, MB_ECANCELED, "canceled");
                break;
            }
            mb_mbpo_stats s;
            st = mb_mbpo_step(&run, ag, &cfg, &o->data, &dyn, rw, ws, pool, &s, err, err_sz);
            if (st != MB_OK) break;
            step++;
            float v[7] = {s.losses.critic, s.losses.actor, s.losses.value, s.losses.alpha, s.losses.entropy,
                          s.losses.q_mean, (float)s.model_rows};
            pol__stats(o, j, step, 7, names, v, s.model_rows);
        }
        o->work->steps = run.steps;
        if (st == MB_OK && step > 0) o->work->value_trained = cfg.sac.train_value;
        mb_mbpo_ws_free(ws);
        mb_mbpo_free(&run);
        break;
    }
    case SRV_POL_DISTILL: {
        static const char *const names[] = {"imitation", "gap", "dataset"};
        mb_distill_cfg cfg = o->ps.distill;
        mb_distill run;
        st = mb_distill_init(&run, &cfg, sp->obs_dim, sp->act_dim, seed, err, err_sz);
        if (st != MB_OK) break;
        mb_plan_ws *pws = mb_plan_ws_new(&o->ps.teacher, &dyn);
        mb_distill_ws *ws = mb_distill_ws_new(&cfg, &ag->pi, &dyn);
        if (!pws || !ws) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory for distillation");
        mb_distill_teacher t = {.cfg = &o->ps.teacher, .dyn = &dyn, .rw = rw, .ws = pws, .pool = pool,
                                .should_stop = pol__stop, .stop_ctx = j};
        while (st == MB_OK && !pol__done(o, j, step, t0)) {
            mb_distill_stats s;
            st = mb_distill_round(&run, &ag->pi, &ag->opt_pi, &cfg, &o->data, &t, ws, &s, err, err_sz);
            if (st == MB_ECANCELED) snprintf(err, err_sz, "canceled");
            if (st != MB_OK) break;
            step++;
            float v[3] = {s.loss, s.gap, (float)s.dataset};
            pol__stats(o, j, step, 3, names, v, 0);
        }
        o->work->steps += step;
        mb_distill_ws_free(ws);
        mb_plan_ws_free(pws);
        mb_distill_free(&run);
        break;
    }
    case SRV_POL_BPTT: {
        static const char *const names[] = {"model_return", "grad_norm", "obs_grad_norm"};
        mb_bptt_cfg cfg = o->ps.bptt;
        if (cfg.use_value && !o->work->value_trained) cfg.use_value = 0;
        mb_bptt_ws *ws = mb_bptt_ws_new(&cfg, &ag->pi, cfg.use_value ? &ag->v : NULL, &dyn);
        if (!ws) st = mb_fail(err, err_sz, MB_ENOMEM, "out of memory for BPTT's workspace");
        mb_rng rng;
        mb_rng_seed(&rng, seed);
        while (st == MB_OK && !pol__done(o, j, step, t0)) {
            if (job_stopping(j)) {
                st = mb_fail(err, err_sz, MB_ECANCELED, "canceled");
                break;
            }
            mb_bptt_stats s;
            st = mb_bptt_step(&ag->pi, &ag->opt_pi, cfg.use_value ? &ag->v : NULL, &cfg, &o->data, &dyn, rw, ws,
                              &rng, &s, err, err_sz);
            if (st != MB_OK) break;
            step++;
            float v[3] = {s.ret, s.grad_norm, s.obs_grad_norm};
            pol__stats(o, j, step, 3, names, v, 0);
        }
        o->work->steps += step;
        mb_bptt_ws_free(ws);
        break;
    }
    }
    mb_buffer_free(&o->data);
    if (st != MB_OK) return st;
    o->work->algorithm = o->ps.algorithm;
    srv_policy *p = o->work;
    o->work = NULL;
    if (pol__publish(o->app, m, p, version, err, err_sz) != 0) return MB_ESTATE;
    return MB_OK;
}

static void pol__ended(void *ctx, srv_job *j) {
    srv_model *m = ((pol__job *)ctx)->m;
    pthread_mutex_lock(&m->lock);
    if (m->running == j) m->running = NULL;
    pthread_mutex_unlock(&m->lock);
}

static void pol__release(void *ctx) {
    pol__job *o = ctx;
    model_policy_put(o->work);
    model_version_put(o->ver);
    mb_buffer_free(&o->data);
    model_put(o->m);
    free(o);
}

/* Steps of a job given neither steps nor a time budget: sized to the data
 * (rows) and the algorithm's cost per step. */
static long pol__default_steps(const srv_policy_spec *ps, size_t rows) {
    double r = (double)rows;
    switch (ps->algorithm) {
    case SRV_POL_MBPO: { /* about 10 SAC updates per real transition, 1,000..50,000 updates */
        double u = fmin(fmax(10.0 * r, 1000.0), 50000.0);
        int per = ps->mbpo.updates_per_step > 0 ? ps->mbpo.updates_per_step : 1;
        return (long)ceil(u / per);
    }
    case SRV_POL_DISTILL: /* every state labelled about once, 2..10 rounds */
        return (long)fmin(fmax(ceil(r / ps->distill.states), 2.0), 10.0);
    case SRV_POL_BPTT: /* about 10 passes over the starts, 100..5,000 steps */
        return (long)fmin(fmax(ceil(10.0 * r / ps->bptt.batch_size), 100.0), 5000.0);
    }
    return 100;
}

int model_policy_train(srv_app *app, srv_model *m, const srv_policy_spec *ps, long steps, double budget,
                       int automatic, srv_job **out, srv_err *e) {
    char err[256];
    if (atomic_load(&app->shutting_down)) return srv_fail(e, SRV_E_UNAVAILABLE, NULL, "shutting down");
    if (!ps->enabled)
        return srv_fail(e, MB_ESTATE, NULL, "model '%s' has no policy (add \"policy\" to its spec)", m->spec.name);
    pol__job *own = calloc(1, sizeof *own);
    if (!own) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    own->ps = *ps;
    int rc = 0;
    srv_policy *cur = NULL;
    pthread_mutex_lock(&m->lock);
    size_t rows = m->buf.size;
    if (steps == 0 && budget <= 0) steps = pol__default_steps(ps, rows);
    srv_job *j = job_new_task("policy", steps, budget, automatic);
    if (!j) rc = srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    else if (m->deleted) rc = srv_fail(e, MB_ENOTFOUND, NULL, "model '%s' was deleted", m->spec.name);
    else if (m->running)
        rc = srv_fail(e, MB_EBUSY, NULL, "job %s is running on '%s'", m->running->id, m->spec.name);
    else if (m->cur->number == 0)
        rc = srv_fail(e, MB_ESTATE, NULL, "the model has not been trained yet: train it before its policy");
    else if (rows == 0) rc = srv_fail(e, MB_ESTATE, NULL, "the buffer is empty");
    else {
        mb_status s = mb_buffer_copy(&own->data, &m->buf, err, sizeof err);
        if (s != MB_OK) rc = srv_fail(e, (int)s, NULL, "%s", err);
    }
    if (rc == 0) {
        own->ver = m->cur;
        atomic_fetch_add(&own->ver->refs, 1);
        cur = m->pol;
        if (cur) atomic_fetch_add(&cur->refs, 1);
        snprintf(j->id, sizeof j->id, "j%llu", (unsigned long long)m->next_job++);
        j->label = m->spec.name;
        j->rows = own->data.size;
        atomic_fetch_add(&m->refs, 1); /* the job's, dropped by pol__release */
        own->app = app;
        own->m = m;
        own->steps = steps;
        j->run = pol__run;
        j->owner = (srv_job_owner){own, NULL, pol__ended, pol__release};
        m->running = j;
        if (automatic) m->pol_auto_base = m->buf.total;
        if (m->n_jobs == SRV_JOBS_KEPT) {
            job_put(m->jobs[0]);
            memmove(m->jobs, m->jobs + 1, sizeof m->jobs[0] * (SRV_JOBS_KEPT - 1));
            m->n_jobs--;
        }
        m->jobs[m->n_jobs++] = j;
        atomic_fetch_add(&j->refs, 1); /* the model's list */
    }
    pthread_mutex_unlock(&m->lock);
    if (rc) {
        mb_buffer_free(&own->data);
        free(own);
        job_put(j);
        return rc;
    }
    /* the agent: a copy of the current policy (warm: its optimisers go on),
     * or a new one; a spec whose networks changed starts afresh */
    own->work = pol__new();
    mb_status s = own->work ? MB_OK : mb_fail(err, sizeof err, MB_ENOMEM, "out of memory");
    int warm = cur && !memcmp(&cur->agent.spec, &ps->agent, sizeof ps->agent);
    if (s == MB_OK && warm) {
        s = mb_sac_copy(&own->work->agent, &cur->agent, err, sizeof err);
        own->work->steps = cur->steps;
        own->work->value_trained = cur->value_trained;
    } else if (s == MB_OK) {
        s = mb_sac_init(&own->work->agent, &ps->agent, &ps->mbpo.sac, m->spec.seed + 101, err, sizeof err);
    }
    model_policy_put(cur);
    if (s != MB_OK) {
        job_abort(j, err);
        job_put(j);
        return srv_fail(e, (int)s, NULL, "%s", err);
    }
    if (job_launch(&app->jobs, j, err, sizeof err) != 0) {
        job_put(j);
        return srv_fail(e, MB_ENOMEM, NULL, "%s", err);
    }
    if (out) *out = j;
    else job_put(j);
    return 0;
}

void model_policy_auto(srv_app *app, srv_model *m) {
    const srv_policy_spec *ps = &m->spec.policy;
    if (!ps->enabled || ps->auto_every <= 0) return;
    pthread_mutex_lock(&m->lock);
    int due = !m->running && !m->deleted && m->cur->number > 0 &&
              m->buf.total - m->pol_auto_base >= (uint64_t)ps->auto_every;
    pthread_mutex_unlock(&m->lock);
    if (!due) return;
    srv_err e = {0};
    (void)model_policy_train(app, m, ps, ps->auto_steps, ps->auto_steps ? 0 : ps->time_budget, 1, NULL, &e);
}

/* ---- acting -------------------------------------------------------------- */

static mb_policy_ws *pol__ws_get(srv_model *m, const mb_policy_spec *s) {
    pthread_mutex_lock(&m->lock);
    if (m->n_pol_ws > 0) {
        mb_policy_ws *ws = m->pol_ws[--m->n_pol_ws];
        pthread_mutex_unlock(&m->lock);
        return ws;
    }
    pthread_mutex_unlock(&m->lock);
    return mb_policy_ws_new(s, 1);
}

static void pol__ws_put(srv_model *m, mb_policy_ws *ws) {
    if (!ws) return;
    pthread_mutex_lock(&m->lock);
    if (m->n_pol_ws < SRV_WS_KEPT) {
        m->pol_ws[m->n_pol_ws++] = ws;
        ws = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    mb_policy_ws_free(ws);
}

int model_policy_act(srv_model *m, const float *obs, int explore, mb_rng *rng, float *action,
                     uint64_t *version, srv_err *e) {
    srv_policy *p = model_policy_get(m);
    if (!p) {
        if (!m->spec.policy.enabled)
            return srv_fail(e, MB_ESTATE, "planner.method", "model '%s' has no policy (add \"policy\" to its spec)",
                            m->spec.name);
        return srv_fail(e, MB_ESTATE, "planner.method",
                        "no policy trained yet: POST /v1/models/%s/policy/train first", m->spec.name);
    }
    mb_policy_ws *ws = pol__ws_get(m, &p->agent.pi.spec);
    if (!ws) {
        model_policy_put(p);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    float eps[MB_MAX_ACT_DIM];
    if (explore) mb_rng_fill_normal(rng, eps, (size_t)p->agent.spec.act_dim, 0, 1);
    mb_policy_act(&p->agent.pi, ws, obs, 1, explore ? eps : NULL, action, NULL);
    *version = p->number;
    pol__ws_put(m, ws);
    model_policy_put(p);
    for (int i = 0; i < m->spec.act_dim; i++)
        if (!isfinite(action[i])) return srv_fail(e, MB_ESTATE, NULL, "the policy's action is not finite");
    return 0;
}

/* ---- persistence and status --------------------------------------------- */

cJSON *model_policy_meta(const srv_model *m) {
    if (!m->pol) return NULL;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "version", (double)m->pol->number);
    cJSON_AddNumberToObject(o, "next_version", (double)m->pol_next);
    cJSON_AddStringToObject(o, "algorithm", spec_policy_algorithm_name(m->pol->algorithm));
    cJSON_AddNumberToObject(o, "steps", (double)m->pol->steps);
    cJSON_AddBoolToObject(o, "value_trained", m->pol->value_trained);
    return o;
}

mb_status model_policy_install(srv_model *m, mb_sac *agent, const cJSON *meta, char *err, size_t err_sz) {
    if (agent->spec.obs_dim != m->spec.obs_dim || agent->spec.act_dim != m->spec.act_dim)
        return mb_fail(err, err_sz, MB_ECORRUPT, "policy of '%s': dims differ from the model's", m->spec.name);
    srv_policy *p = pol__new();
    if (!p) return mb_fail(err, err_sz, MB_ENOMEM, "out of memory");
    p->agent = *agent;
    memset(agent, 0, sizeof *agent);
    p->number = 1;
    p->algorithm = m->spec.policy.algorithm;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, "version");
    const cJSON *nx = cJSON_GetObjectItemCaseSensitive(meta, "next_version");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(meta, "steps");
    const cJSON *vt = cJSON_GetObjectItemCaseSensitive(meta, "value_trained");
    const cJSON *al = cJSON_GetObjectItemCaseSensitive(meta, "algorithm");
    if (cJSON_IsNumber(v) && v->valuedouble >= 1) p->number = (uint64_t)v->valuedouble;
    if (cJSON_IsNumber(st) && st->valuedouble >= 0) p->steps = (long)st->valuedouble;
    p->value_trained = cJSON_IsTrue(vt);
    for (int k = 0; cJSON_IsString(al) && k <= SRV_POL_BPTT; k++)
        if (!strcmp(al->valuestring, spec_policy_algorithm_name((srv_pol_algo)k))) p->algorithm = (srv_pol_algo)k;
    pthread_mutex_lock(&m->lock);
    srv_policy *old = m->pol;
    m->pol = p;
    m->pol_next = cJSON_IsNumber(nx) && nx->valuedouble > (double)p->number ? (uint64_t)nx->valuedouble : p->number + 1;
    pthread_mutex_unlock(&m->lock);
    model_policy_put(old);
    return MB_OK;
}

cJSON *model_policy_render(srv_model *m) {
    if (!m->spec.policy.enabled) return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    pthread_mutex_lock(&m->lock);
    const srv_policy *p = m->pol;
    cJSON_AddStringToObject(o, "algorithm", spec_policy_algorithm_name(m->spec.policy.algorithm));
    if (p) {
        cJSON_AddNumberToObject(o, "version", (double)p->number);
        cJSON_AddStringToObject(o, "trained_by", spec_policy_algorithm_name(p->algorithm));
        cJSON_AddNumberToObject(o, "steps", (double)p->steps);
        cJSON_AddNumberToObject(o, "updates", (double)p->agent.updates);
        cJSON_AddNumberToObject(o, "entropy_coefficient", jf_num(expf(p->agent.log_alpha)));
        cJSON_AddBoolToObject(o, "value_trained", p->value_trained);
    } else {
        cJSON_AddNullToObject(o, "version");
    }
    const srv_policy_stats *s = &m->pol_stats;
    if (s->has) {
        cJSON *l = cJSON_AddObjectToObject(o, "last_losses");
        for (int i = 0; i < s->n; i++) cJSON_AddNumberToObject(l, s->names[i], jf_num(s->values[i]));
        cJSON_AddNumberToObject(o, "model_buffer_rows", (double)s->model_rows);
    } else {
        cJSON_AddNullToObject(o, "last_losses");
        cJSON_AddNumberToObject(o, "model_buffer_rows", 0);
    }
    pthread_mutex_unlock(&m->lock);
    return o;
}
