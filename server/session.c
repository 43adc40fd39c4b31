/* session.c: per-model act sessions: a warm-start plan per robot, LRU-
 * bounded and expiring when idle (see model.h). */
#include <stdlib.h>
#include <string.h>

#include "model.h"

void session_free(srv_session *s) {
    if (!s) return;
    mb_plan_state_free(&s->st);
    plan_budget_release(s->budget, s->bytes);
    free(s);
}

/* Removes entry i (model lock held). */
static srv_session *session__remove(srv_model *m, int i) {
    srv_session *s = m->sessions[i];
    m->sessions[i] = m->sessions[--m->n_sessions];
    return s;
}

int session_expire(srv_model *m, double now, double timeout) {
    for (int i = m->n_sessions - 1; i >= 0; i--)
        if (now - m->sessions[i]->last_used > timeout) session_free(session__remove(m, i));
    return m->n_sessions;
}

srv_session *session_take(srv_model *m, const char *name, double now, double timeout) {
    srv_session *s = NULL;
    model_lock(m);
    session_expire(m, now, timeout);
    for (int i = 0; i < m->n_sessions; i++)
        if (!strcmp(m->sessions[i]->name, name)) {
            s = session__remove(m, i);
            break;
        }
    pthread_mutex_unlock(&m->lock);
    return s;
}

void session_put(srv_model *m, srv_session *s, double now, int max) {
    srv_session *drop = NULL, *dup = NULL;
    s->last_used = now;
    model_lock(m);
    if (m->deleted) {
        drop = s;
    } else {
        for (int i = 0; i < m->n_sessions; i++)
            if (!strcmp(m->sessions[i]->name, s->name)) {
                dup = session__remove(m, i);
                break;
            }
        if (m->n_sessions >= max) { /* drop the least recently used */
            int lru = 0;
            for (int i = 1; i < m->n_sessions; i++)
                if (m->sessions[i]->last_used < m->sessions[lru]->last_used) lru = i;
            drop = session__remove(m, lru);
        }
        m->sessions[m->n_sessions++] = s;
    }
    pthread_mutex_unlock(&m->lock);
    session_free(dup);
    session_free(drop);
}

static int session__same_shape(const mb_planner_cfg *a, const mb_planner_cfg *b) {
    return a->method == b->method && a->horizon == b->horizon && a->population == b->population &&
           a->elites == b->elites && a->keep_elites == b->keep_elites;
}

srv_session *session_fit(srv_app *app, srv_model *m, srv_session *s, const char *name,
                         const mb_planner_cfg *cfg, int act_dim, int *busy) {
    *busy = 0;
    if (s && session__same_shape(&s->cfg, cfg) && s->st.act_dim == act_dim) return s;
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return NULL;
        snprintf(s->name, sizeof s->name, "%s", name);
    } else {
        mb_plan_state_free(&s->st);
        memset(&s->st, 0, sizeof s->st);
        plan_budget_release(s->budget, s->bytes);
        s->bytes = 0;
    }
    mb_plan_cost c;
    size_t bytes = mb_plan_cost_of(cfg, NULL, 1, act_dim, &c, NULL, 0) == MB_OK ? c.state : 0;
    if (!bytes || !app_plan_room(app, bytes)) {
        *busy = bytes != 0;
        free(s);
        return NULL;
    }
    s->budget = m->budget;
    s->bytes = bytes;
    if (mb_plan_state_init(&s->st, cfg, act_dim, NULL, 0) != MB_OK) {
        session_free(s);
        return NULL;
    }
    s->cfg = *cfg;
    return s;
}
