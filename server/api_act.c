/* api_act.c: POST /v1/models/{m}/act: the next action for an observation.
 *
 * Body: {"obs": [obs_dim], "session": "robot-7" (optional warm start),
 *        "planner": {overrides for this call}, "goal": [{"term": i,
 *        "target": [..]}], "deadline_ms": N (optional), "seed": N (optional:
 *        the plan's random stream; otherwise the model's act counter),
 *        "version": N (a kept version instead of the current one,
 *        versions.h)}.
 * Answer: {"action", "source": "planner"|"random", "predicted_return",
 *          "return_std" (null for random), "version", "plan_ms",
 *          "truncated", "queue_ms", "batch", and for the planner
 *          "precision" ("fp32" or "bf16": what the forwards used)}; the
 *          action is an integer for a discrete model; "return_plan": true
 *          adds "plan", "gains": true (ilqr) adds "gains" and
 *          "nominal_obs" (act_answer.c).
 * Before the first training the action is uniform in the bounds (answered
 * on the HTTP thread: nothing to plan).
 *
 * Budgets, before anything is allocated: the request (the model's planner
 * with the call's overrides) is costed in bytes by mb_plan_cost_of and
 * refused with 422 over --max-plan-mb or --plan-memory-mb (plan_budget.h);
 * its deadline is deadline_ms (capped by and defaulting to --max-plan-ms)
 * from the moment the handler runs: the planner stops at it and answers
 * the best plan so far with "truncated": true, or 503 deadline_exceeded
 * when no evaluation finished.
 *
 * Planning leaves the HTTP thread: the handler submits an act_job to the
 * executor (executor.h) and parks the connection (srv_later); a planning
 * worker runs it (act__run) and wakes the connection. A job holds
 * references to its model and to the version it plans with, takes its
 * session out of the model while planning and uses a workspace no other
 * plan holds (model_ws_get). A client that goes away stops its plan
 * (queued: the executor's reaper; planning: act__stop polls it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "handlers.h"
#include "jsonv.h"
#include "act_answer.h"
#include "log.h"
#include "plan/batch.h"
#include "versions.h"

typedef struct {
    srv_task task;            /* first: the executor's view */
    pthread_mutex_t lock;     /* refs, done, wake, gone */
    int refs;                 /* the parked answer's + the executor's */
    int done;
    void (*wake)(void *);
    void *wake_ctx;
    int (*gone)(void *);      /* the HTTP layer's probe; NULL once released */
    void *gone_ctx;
    double next_gone_poll;    /* monotonic s: act__stop polls gone() at most every 10 ms */
    int client_gone;          /* act__stop saw it: the plan stopped for that */
    srv_app *app;
    srv_model *m;             /* referenced */
    srv_version *v;           /* referenced: the version it plans with */
    mb_planner_cfg cfg;
    mb_reward_spec rw;        /* with the call's goals */
    mb_plan_cost cost;
    float obs[MB_MAX_OBS_DIM];
    char session[SRV_NAME_MAX + 1];
    int has_session;
    mb_rng rng;
    long deadline_ms;
    double t_start;
    /* while planning */
    srv_session *s;
    mb_plan_ws *ws;
    mb_plan_ctl ctl;
    double t_plan;            /* monotonic s: planning started */
    /* the answer */
    srv_err err;
    int failed;
    float action[MB_MAX_ACT_DIM];
    mb_plan_info info;
    double plan_s, queue_s;
    int batch;
    /* issue 14's answer options: the plan's buffer (horizon, act_dim) and
     * the extras made while the workspace is held (act_answer_extras) */
    int want_plan, want_gains;
    float *plan;
    cJSON *extras;
    srv_policy *pol;          /* referenced: the value / policy prior (issue 13), or NULL */
} act_job;

static int api__goals(const cJSON *goal, mb_reward_spec *rw, srv_err *e) {
    if (!cJSON_IsArray(goal)) return srv_fail(e, MB_EINVAL, "goal", "must be an array");
    int i = 0;
    for (const cJSON *g = goal->child; g; g = g->next, i++) {
        static const char *const keys[] = {"term", "target", NULL};
        char p[32];
        jv_path_i(p, sizeof p, "goal", i);
        long term;
        float target[MB_MAX_TERM_IDX];
        int n;
        if (jv_object(g, p, keys, e) || jv_int(g, p, "term", 1, 0, rw->n_terms - 1, &term, e) ||
            jv_floats(g, p, "target", 1, -MB_MAX_TERM_IDX, -3e38, 3e38, target, &n, e))
            return -1;
        char err[200];
        mb_status s = mb_reward_set_target(rw, (int)term, target, n, err, sizeof err);
        if (s != MB_OK) {
            char f[48];
            jv_path(f, sizeof f, p, "target");
            return srv_fail(e, (int)s, f, "%s", err);
        }
    }
    return 0;
}

/* ---- the job's life ----------------------------------------------------- */

static void act__unref(act_job *j) {
    pthread_mutex_lock(&j->lock);
    int last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last) return;
    model_version_put(j->v);
    model_put(j->m);
    free(j->plan);
    cJSON_Delete(j->extras);
    model_policy_put(j->pol);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

/* The answer is ready: wake the parked connection, drop the executor's
 * reference. */
static void act__complete(act_job *j) {
    pthread_mutex_lock(&j->lock);
    j->done = 1;
    j->gone = NULL; /* the HTTP layer's context may end once woken */
    void (*wake)(void *) = j->wake;
    void *ctx = j->wake_ctx;
    pthread_mutex_unlock(&j->lock);
    if (wake) wake(ctx);
    act__unref(j);
}

static int act__arm(void *obj, void (*wake)(void *), void *ctx) {
    act_job *j = obj;
    pthread_mutex_lock(&j->lock);
    int ready = j->done;
    if (!ready) {
        j->wake = wake;
        j->wake_ctx = ctx;
    }
    pthread_mutex_unlock(&j->lock);
    return ready;
}

static int act__answer(void *obj, srv_resp *r, srv_err *e) {
    act_job *j = obj;
    if (j->failed) {
        *e = j->err;
        return -1;
    }
    const srv_model_spec *sp = &j->m->spec;
    cJSON *o = cJSON_CreateObject();
    if (o) jf_add(o, "action", act_action_json(sp, j->action));
    if (!o || !cJSON_GetObjectItemCaseSensitive(o, "action") ||
        !cJSON_AddStringToObject(o, "source", "planner") ||
        !cJSON_AddNumberToObject(o, "predicted_return", jf_num(j->info.predicted_return)) ||
        !cJSON_AddNumberToObject(o, "return_std", jf_num(j->info.return_std)) ||
        !cJSON_AddNumberToObject(o, "version", (double)j->v->number) ||
        !cJSON_AddNumberToObject(o, "plan_ms", jf_num((float)(j->plan_s * 1e3))) ||
        !cJSON_AddStringToObject(o, "precision", mb_precision_name(j->info.precision)) ||
        !cJSON_AddBoolToObject(o, "truncated", j->info.truncated) ||
        !cJSON_AddNumberToObject(o, "queue_ms", jf_num((float)(j->queue_s * 1e3))) ||
        !cJSON_AddNumberToObject(o, "batch", j->batch)) {
        cJSON_Delete(o);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    }
    while (j->extras && j->extras->child) { /* "plan", "gains", "nominal_obs" */
        cJSON *x = j->extras->child;
        const char *k = x->string;
        cJSON_DetachItemViaPointer(j->extras, x);
        if (!cJSON_AddItemToObject(o, k, x)) { /* cJSON copies the key */
            cJSON_Delete(x);
            cJSON_Delete(o);
            return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        }
    }
    r->json = o;
    return 0;
}

static void act__release(void *obj) {
    act_job *j = obj;
    pthread_mutex_lock(&j->lock);
    j->gone = NULL; /* the HTTP layer's context ends now */
    j->wake = NULL;
    pthread_mutex_unlock(&j->lock);
    act__unref(j);
}

/* The executor's liveness probe of a queued job. */
static int act__gone(void *ctx) {
    act_job *j = ctx;
    pthread_mutex_lock(&j->lock);
    int g = j->gone && j->gone(j->gone_ctx);
    pthread_mutex_unlock(&j->lock);
    return g;
}

/* The planner's stop (mb_plan_ctl), polled per evaluation and per step:
 * the deadline passed, the daemon stops, or the client went away (polled
 * every 10 ms). */
static int act__stop(void *ctx) {
    act_job *j = ctx;
    double now = srv_now();
    if (now >= j->task.deadline || atomic_load(&j->app->plans_stop)) return 1;
    if (now >= j->next_gone_poll) {
        j->next_gone_poll = now + 0.01;
        if (act__gone(j)) {
            j->client_gone = 1; /* tells act__finish why */
            return 1;
        }
    }
    return 0;
}

static void act__drop(srv_task *t, const srv_err *e) {
    act_job *j = (act_job *)t;
    j->err = *e;
    j->failed = 1;
    act__complete(j);
}

/* ---- planning ------------------------------------------------------------ */

/* Session and workspace for j: 0, or -1 with j->err. */
static int act__acquire(act_job *j, srv_session **s, mb_plan_ws **ws, const mb_dynamics *dyn) {
    srv_app *app = j->app;
    const srv_model_spec *sp = &j->m->spec;
    int busy = 0;
    *s = NULL;
    *ws = NULL;
    if (j->has_session) {
        *s = session_take(j->m, j->session, srv_now(), (double)app->cfg.session_timeout);
        *s = session_fit(app, j->m, *s, j->session, &j->cfg, sp->act_dim, &busy);
        if (!*s) goto fail;
        if ((*s)->st.valid) mb_plan_state_shift(&(*s)->st, sp->act_low, sp->act_high);
    }
    *ws = model_ws_get(app, j->m, &j->cfg, dyn, j->cost.ws + j->cost.ens_ws, &busy);
    if (*ws) return 0;
fail:
    srv_fail(&j->err, busy ? SRV_E_UNAVAILABLE : MB_ENOMEM, NULL,
             busy ? "planning memory is in use (--plan-memory-mb): retry" : "out of memory for the planner");
    j->err.retry_after = 1;
    return -1;
}

static void act__release_ws(act_job *j, srv_session *s, mb_plan_ws *ws, int keep_session) {
    model_ws_put(j->m, ws);
    if (s) {
        if (keep_session) session_put(j->m, s, srv_now(), (int)j->app->cfg.max_sessions);
        else session_free(s);
    }
}

/* Turns a plan's status into j's answer and records metrics. */
static void act__finish(act_job *j, mb_status st, const char *err) {
    srv_metrics *mt = &j->app->metrics;
    int gone = j->client_gone;
    if (gone) /* whatever it answers, nobody reads it */
        atomic_fetch_add_explicit(&mt->plan_canceled, 1, memory_order_relaxed);
    if (st == MB_OK) {
        if (j->info.truncated)
            atomic_fetch_add_explicit(&mt->deadline[0], 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&mt->acts[0], 1, memory_order_relaxed);
        return;
    }
    j->failed = 1;
    if (gone) {
        srv_fail(&j->err, MB_ECANCELED, NULL, "the client went away");
    } else if (st == MB_ECANCELED) {
        atomic_fetch_add_explicit(&mt->deadline[1], 1, memory_order_relaxed);
        srv_fail(&j->err, SRV_E_DEADLINE, "deadline_ms",
                 "no plan within the deadline of %ld ms (not one evaluation of the candidates "
                 "finished): raise deadline_ms or plan less",
                 j->deadline_ms);
        j->err.retry_after = 1;
    } else {
        srv_fail(&j->err, (int)st, NULL, "%s", err);
    }
}

static mb_dynamics act__dyn(const act_job *j) {
    const srv_model_spec *sp = &j->m->spec;
    return (mb_dynamics){.ens = &j->v->ens, .known = NULL, .obs_dim = sp->obs_dim,
                         .act_dim = sp->act_dim, .act_low = sp->act_low, .act_high = sp->act_high,
                         .discrete = sp->discrete,
                         .value = j->pol && j->cfg.terminal_value ? &j->pol->agent.v : NULL,
                         .policy = j->pol && j->cfg.policy_samples > 0 ? &j->pol->agent.pi : NULL};
}

/* Before planning j (batch: the batch's size): its session and workspace.
 * 0, or -1 with j answered (failed). */
static int act__begin(act_job *j, int batch) {
    mb_dynamics dyn = act__dyn(j);
    j->t_plan = srv_now();
    j->queue_s = j->t_plan - j->t_start;
    j->batch = batch;
    memset(&j->info, 0, sizeof j->info);
    j->ctl = (mb_plan_ctl){.stop = act__stop, .stop_ctx = j};
    if (act__acquire(j, &j->s, &j->ws, &dyn) != 0) {
        j->failed = 1;
        act__release_ws(j, j->s, j->ws, 0);
        act__complete(j);
        return -1;
    }
    return 0;
}

/* After planning j: its session and workspace back, its answer, woken. */
static void act__end(act_job *j, mb_status st, const char *err) {
    j->plan_s = srv_now() - j->t_plan;
    metrics_hist(&j->app->metrics.plan, j->plan_s);
    metrics_hist(&j->m->plan_hist, j->plan_s);
    if (st == MB_OK && (j->want_plan || j->want_gains)) { /* needs the workspace: before it goes back */
        mb_dynamics dyn = act__dyn(j);
        j->extras = cJSON_CreateObject();
        if (!j->extras || act_answer_extras(j->extras, &j->m->spec, &dyn, &j->rw, &j->cfg, j->obs, j->plan,
                                            j->ws, j->want_gains, &j->err) != 0) {
            if (!j->extras) srv_fail(&j->err, MB_ENOMEM, NULL, "out of memory");
            act__release_ws(j, j->s, j->ws, 1);
            j->failed = 1;
            act__complete(j);
            return;
        }
    }
    act__release_ws(j, j->s, j->ws, st == MB_OK);
    act__finish(j, st, err);
    act__complete(j);
}

/* mb_plan_req.done: a batched plan is over, answer it now. */
static void act__batch_done(void *ctx, mb_plan_req *q) { act__end(ctx, q->status, q->err); }

static void act__batcher_free(void *p) { mb_plan_batcher_free(p); }

/* The executor's run: tasks of one model version and planner (same_batch);
 * alone through mb_plan_ex on the worker's pool, together through
 * mb_plan_batch (each answered as soon as its own plan ends). */
static void act__run(srv_task **tasks, int n, srv_worker *w) {
    act_job *j0 = (act_job *)tasks[0];
    srv_app *app = j0->app;
    mb_dynamics dyn = act__dyn(j0);
    /* the jobs may be gone once answered: the model's reference is ours */
    srv_model *m = j0->m;
    atomic_fetch_add(&m->refs, 1);
    double t0 = srv_now();
    if (n > 1 && !w->scratch) { /* the worker's batcher, on its first batch */
        w->scratch = mb_plan_batcher_new((int)app->cfg.max_batch);
        w->scratch_free = act__batcher_free;
    }
    if (n == 1 || !w->scratch) {
        for (int i = 0; i < n; i++) {
            act_job *j = (act_job *)tasks[i];
            if (act__begin(j, 1) != 0) continue;
            char err[256];
            mb_status st = mb_plan_ex(&j->cfg, &dyn, &j->rw, j->obs, j->s ? &j->s->st : NULL, &j->rng,
                                      j->ws, w->pool, &j->ctl, j->action, j->plan, &j->info, err, sizeof err);
            act__end(j, st, err);
        }
    } else {
        mb_plan_req *reqs = calloc((size_t)(n > 0 ? n : 1), sizeof *reqs);
        int m = 0;
        act_job *jobs[n];
        for (int i = 0; i < n && reqs; i++) {
            act_job *j = (act_job *)tasks[i];
            if (act__begin(j, n) != 0) continue;
            jobs[m] = j;
            reqs[m++] = (mb_plan_req){.cfg = &j->cfg, .rw = &j->rw, .obs = j->obs,
                                      .state = j->s ? &j->s->st : NULL, .rng = &j->rng, .ws = j->ws,
                                      .ctl = &j->ctl, .action = j->action, .plan = j->plan, .info = &j->info,
                                      .done = act__batch_done, .done_ctx = j};
        }
        mb_plan_batcher *b = w->scratch;
        size_t before = mb_plan_batcher_bytes(b);
        char err[256];
        if (!reqs || (m > 0 && mb_plan_batch(b, &dyn, reqs, m, w->pool, err, sizeof err) != MB_OK)) {
            for (int i = 0; i < m; i++) act__end(jobs[i], MB_ENOMEM, "out of memory for the batch");
            for (int i = 0; !reqs && i < n; i++) { /* none began */
                act_job *j = (act_job *)tasks[i];
                srv_fail(&j->err, MB_ENOMEM, NULL, "out of memory for the batch");
                j->failed = 1;
                act__complete(j);
            }
        }
        /* the batcher's merged buffers are planning memory too */
        plan_budget_adjust(&app->budget, before, mb_plan_batcher_bytes(b));
        free(reqs);
    }
    exec_note_duration(&m->plan_est_us, srv_now() - t0);
    model_put(m);
}

/* Tasks of one model version with one planner config plan together. */
static int act__same_batch(const srv_task *a, const srv_task *b) {
    const act_job *x = (const act_job *)a, *y = (const act_job *)b;
    return x->m == y->m && x->v == y->v && x->pol == y->pol && !memcmp(&x->cfg, &y->cfg, sizeof x->cfg);
}

static const srv_task_ops act__ops = {.run = act__run, .drop = act__drop, .same_batch = act__same_batch};

/* ---- the handler ------------------------------------------------------------ */

int api_act(srv_req *q, srv_resp *r, srv_err *e) {
    static const char *const keys[] = {"obs", "session", "planner", "goal", "deadline_ms", "seed", "version",
                                       "return_plan", "gains", NULL};
    srv_app *app = q->app;
    const cJSON *b = q->body;
    double t_start = srv_now();
    /* "method": "policy": the learned policy answers, here (microseconds) */
    const cJSON *pm = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "planner"), "method");
    if (cJSON_IsString(pm) && !strcmp(pm->valuestring, "policy")) return api_act_policy(q, r, e);
    if (jv_object(b, "", keys, e)) return -1;
    act_job *j = calloc(1, sizeof *j); /* ~2 KiB + the reward spec: not on the stack */
    if (!j) return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
    pthread_mutex_init(&j->lock, NULL);
    j->refs = 1;
    j->app = app;
    j->t_start = t_start;
    int rc = 0, has = jv_str(b, "", "session", 0, j->session, sizeof j->session, e);
    if (has < 0) rc = -1;
    j->has_session = has == 0;
    j->deadline_ms = app->cfg.max_plan_ms;
    if (rc == 0 && jv_int(b, "", "deadline_ms", 0, 1, 86400L * 1000, &j->deadline_ms, e) < 0) rc = -1;
    if (j->deadline_ms > app->cfg.max_plan_ms) j->deadline_ms = app->cfg.max_plan_ms; /* capped */
    long seed = -1;
    int has_seed = rc == 0 ? jv_int(b, "", "seed", 0, 0, 0x7fffffffffffffffL, &seed, e) : 1;
    if (has_seed < 0) rc = -1;
    long pin = -1;
    if (rc == 0 && jv_int(b, "", "version", 0, 0, 1L << 53, &pin, e) < 0) rc = -1;
    if (rc == 0 && !(j->m = api_model_lookup(q, e))) rc = -1;
    const srv_model_spec *sp = j->m ? &j->m->spec : NULL;
    if (rc == 0) {
        j->cfg = sp->planner;
        j->rw = sp->reward; /* a copy: goals apply to this call only */
        rc = jv_floats(b, "", "obs", 1, sp->obs_dim, -3e38, 3e38, j->obs, NULL, e);
    }
    const cJSON *po = cJSON_GetObjectItemCaseSensitive(b, "planner");
    if (rc == 0 && po) rc = spec_parse_planner(po, "planner", sp, &app->cfg, &j->cfg, e);
    const cJSON *goal = cJSON_GetObjectItemCaseSensitive(b, "goal");
    if (rc == 0 && goal) rc = api__goals(goal, &j->rw, e);
    if (rc == 0 && (jv_bool(b, "", "return_plan", 0, &j->want_plan, e) < 0 ||
                    jv_bool(b, "", "gains", 0, &j->want_gains, e) < 0 ||
                    act_options_check(&j->cfg, j->want_gains, e)))
        rc = -1;
    /* the bytes, before anything is allocated (a random act plans nothing,
     * but the request would plan once the model is trained) */
    char err[256];
    if (rc == 0 && mb_plan_cost_of(&j->cfg, &sp->ens, sp->obs_dim, sp->act_dim, &j->cost, err, sizeof err) != MB_OK)
        rc = srv_fail(e, MB_ERANGE, "planner", "%s", err);
    if (rc == 0) rc = plan_budget_check(&app->budget, &j->cost, e);
    if (rc) {
        act__unref(j);
        return -1;
    }
    /* the plan's random stream: from the request's seed (reproducible: the
     * same seed, observation and state plan the same, batched or not), or
     * from the model's act counter */
    uint64_t k = atomic_fetch_add(&j->m->act_counter, 1);
    if (has_seed == 0) mb_rng_seed(&j->rng, sp->seed * 0xD1B54A32D192ED03ull ^ ((uint64_t)seed + 0x632BE59BD9B4E019ull));
    else mb_rng_seed(&j->rng, sp->seed * 0x9E3779B97F4A7C15ull + k + 1);
    if (pin < 0) j->v = model_version_get(j->m);
    else if (model_version_pin(j->m, (uint64_t)pin, &j->v, e) != 0) {
        act__unref(j);
        return -1;
    }
    if (j->v->number == 0) { /* nothing to plan with: uniform in the bounds, here */
        float action[MB_MAX_ACT_DIM];
        act_random_action(sp, &j->rng, action);
        cJSON *o = cJSON_CreateObject();
        if (o) jf_add(o, "action", act_action_json(sp, action));
        if (!o || !cJSON_GetObjectItemCaseSensitive(o, "action") ||
            !cJSON_AddStringToObject(o, "source", "random") || !cJSON_AddNullToObject(o, "predicted_return") ||
            !cJSON_AddNullToObject(o, "return_std") || !cJSON_AddNumberToObject(o, "version", 0) ||
            !cJSON_AddNumberToObject(o, "plan_ms", 0) || !cJSON_AddBoolToObject(o, "truncated", 0) ||
            (j->want_plan && !cJSON_AddNullToObject(o, "plan")) ||
            (j->want_gains && (!cJSON_AddNullToObject(o, "gains") || !cJSON_AddNullToObject(o, "nominal_obs")))) {
            cJSON_Delete(o);
            act__unref(j);
            return srv_fail(e, MB_ENOMEM, NULL, "out of memory");
        }
        atomic_fetch_add_explicit(&app->metrics.acts[1], 1, memory_order_relaxed);
        act__unref(j);
        r->json = o;
        return 0;
    }
    /* a learned value and policy prior (terminal_value, policy_samples) */
    if (j->cfg.terminal_value || j->cfg.policy_samples > 0) {
        j->pol = model_policy_get(j->m);
        const char *f = j->cfg.terminal_value ? "planner.terminal_value" : "planner.policy_samples";
        if (!j->pol)
            rc = srv_fail(e, MB_ESTATE, f, "no policy trained yet: POST /v1/models/%s/policy/train first", sp->name);
        else if (j->cfg.terminal_value && !j->pol->value_trained)
            rc = srv_fail(e, MB_ESTATE, f, "the policy has no trained value network (algorithm mbpo trains one)");
        /* costed again with the networks: the prior's scratch (their layers,
         * the policy's rollouts) is part of the workspace */
        if (rc == 0 && mb_plan_cost_with_prior(&j->cfg, &sp->ens, sp->obs_dim, sp->act_dim,
                                               j->cfg.terminal_value ? &j->pol->agent.v.spec : NULL,
                                               j->cfg.policy_samples > 0 ? &j->pol->agent.pi.spec : NULL,
                                               &j->cost, err, sizeof err) != MB_OK)
            rc = srv_fail(e, MB_ERANGE, "planner", "%s", err);
        if (rc == 0) rc = plan_budget_check(&app->budget, &j->cost, e);
        if (rc) {
            act__unref(j);
            return -1;
        }
    }
    if (j->want_plan && !(j->plan = malloc(sizeof(float) * (size_t)j->cfg.horizon * (size_t)sp->act_dim))) {
        act__unref(j);
        return srv_fail(e, MB_ENOMEM, NULL, "out of memory for the plan");
    }
    j->task.ops = &act__ops;
    j->task.fair_key = j->m->serial;
    j->task.deadline = t_start + (double)j->deadline_ms * 1e-3;
    j->task.est_us = &j->m->plan_est_us;
    j->task.gone = act__gone;
    j->task.gone_ctx = j;
    j->gone = q->gone;
    j->gone_ctx = q->gone_ctx;
    j->refs = 2; /* the parked answer's and the executor's */
    if (exec_submit(app->exec, &j->task, e) != 0) {
        j->refs = 1;
        act__unref(j);
        return -1;
    }
    r->later = (srv_later){j, act__arm, act__answer, act__release};
    return 0;
}
