/* sim_mujoco.c: Gymnasium MuJoCo v5 tasks on Debian's libmujoco 2.2.2,
 * implemented exactly as clients/c/sim/models/TASKS.md states:
 *
 *   task               xml                     skip  obs                          act
 *   halfcheetah        half_cheetah.xml        5     qpos[1:9], qvel[0:9]   (17)  6
 *   hopper             hopper.xml              4     qpos[1:6], clip(qvel,10) (11) 3
 *   swimmer            swimmer.xml             4     qpos[2:5], qvel[0:5]   (8)   2
 *   inverted_pendulum  inverted_pendulum.xml   2     qpos[0:2], qvel[0:2]   (4)   1
 *
 * step(a): ctrl = a (MuJoCo clamps to ctrlrange; costs use a unclipped),
 * mj_step x skip, mj_rnePostConstraint; dx/dt = (qpos[0] after - before)/dt.
 * reset: mj_resetData, qpos = qpos0 + noise, qvel = noise, mj_forward.
 * Declared to mbrld: the forward term as `linear` on the observed forward
 * velocity qvel[0] (the daemon cannot see qpos[0]; at the end of a step
 * qvel[0] is what dx/dt averages), the control cost as `action_l2`, the
 * alive bonus as `constant`, and the termination rules as bounds.
 * Not for: known-dynamics tasks (sim_known.c); rendering. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mujoco/mujoco.h>

#include "sim.h"

typedef enum { T_CHEETAH, T_HOPPER, T_SWIMMER, T_INVPEND } task_id;

typedef struct {
    const char *name, *xml;
    task_id id;
    int skip, obs_dim, act_dim, max_steps;
} task_info;

static const task_info tasks[] = {
    {"halfcheetah", "half_cheetah.xml", T_CHEETAH, 5, 17, 6, 1000},
    {"hopper", "hopper.xml", T_HOPPER, 4, 11, 3, 1000},
    {"swimmer", "swimmer.xml", T_SWIMMER, 4, 8, 2, 1000},
    {"inverted_pendulum", "inverted_pendulum.xml", T_INVPEND, 2, 4, 1, 1000},
};

typedef struct {
    const task_info *t;
    mjModel *m;
    mjData *d;
} mj_env;

static void mj__obs(const sim_env *e, float *obs) {
    const mj_env *k = e->impl;
    const mjData *d = k->d;
    int j = 0;
    switch (k->t->id) {
    case T_CHEETAH:
        for (int i = 1; i < 9; i++) obs[j++] = (float)d->qpos[i];
        for (int i = 0; i < 9; i++) obs[j++] = (float)d->qvel[i];
        break;
    case T_HOPPER:
        for (int i = 1; i < 6; i++) obs[j++] = (float)d->qpos[i];
        for (int i = 0; i < 6; i++) obs[j++] = (float)fmin(fmax(d->qvel[i], -10.0), 10.0);
        break;
    case T_SWIMMER:
        for (int i = 2; i < 5; i++) obs[j++] = (float)d->qpos[i];
        for (int i = 0; i < 5; i++) obs[j++] = (float)d->qvel[i];
        break;
    case T_INVPEND:
        for (int i = 0; i < 2; i++) obs[j++] = (float)d->qpos[i];
        for (int i = 0; i < 2; i++) obs[j++] = (float)d->qvel[i];
        break;
    }
}

static void mj__reset(sim_env *e, sim_rng *rng, float *obs) {
    mj_env *k = e->impl;
    const mjModel *m = k->m;
    mjData *d = k->d;
    mj_resetData(m, d);
    double s = e->noise;
    for (int i = 0; i < m->nq; i++) {
        double u = s * (2.0 * sim_rng_uniform(rng) - 1.0);
        d->qpos[i] = m->qpos0[i] + (k->t->id == T_CHEETAH ? 0.1 : k->t->id == T_SWIMMER ? 0.1
                                    : k->t->id == T_HOPPER ? 0.005 : 0.01) * u;
    }
    for (int i = 0; i < m->nv; i++) {
        if (k->t->id == T_CHEETAH) d->qvel[i] = s * 0.1 * sim_rng_normal(rng);
        else {
            double a = k->t->id == T_SWIMMER ? 0.1 : k->t->id == T_HOPPER ? 0.005 : 0.01;
            d->qvel[i] = s * a * (2.0 * sim_rng_uniform(rng) - 1.0);
        }
    }
    mj_forward(m, d);
    mj__obs(e, obs);
}

static int hopper__healthy(const mjData *d) {
    if (!(d->qpos[1] > 0.7)) return 0;
    if (!(d->qpos[2] > -0.2 && d->qpos[2] < 0.2)) return 0;
    for (int i = 2; i < 6; i++)
        if (!(d->qpos[i] > -100.0 && d->qpos[i] < 100.0)) return 0;
    for (int i = 0; i < 6; i++)
        if (!(d->qvel[i] > -100.0 && d->qvel[i] < 100.0)) return 0;
    return 1;
}

static void mj__step(sim_env *e, const float *act, float *next_obs, float *reward, int *terminated) {
    mj_env *k = e->impl;
    const mjModel *m = k->m;
    mjData *d = k->d;
    double ctrl_cost = 0;
    for (int i = 0; i < m->nu; i++) {
        d->ctrl[i] = act[i];
        ctrl_cost += (double)act[i] * act[i];
    }
    double x0 = d->qpos[0];
    for (int s = 0; s < k->t->skip; s++) mj_step(m, d);
    mj_rnePostConstraint(m, d);
    double vx = (d->qpos[0] - x0) / e->dt;
    mj__obs(e, next_obs);
    double r = 0;
    int term = 0;
    switch (k->t->id) {
    case T_CHEETAH:
        r = 1.0 * vx - 0.1 * ctrl_cost;
        break;
    case T_HOPPER: {
        int healthy = hopper__healthy(d);
        r = 1.0 * vx + 1.0 * healthy - 0.001 * ctrl_cost;
        term = !healthy;
        break;
    }
    case T_SWIMMER:
        r = 1.0 * vx - 1e-4 * ctrl_cost;
        break;
    case T_INVPEND: {
        int finite = 1;
        for (int i = 0; i < e->obs_dim; i++) finite &= isfinite(next_obs[i]) != 0;
        term = !finite || fabs(next_obs[1]) > 0.2;
        r = term ? 0.0 : 1.0;
        break;
    }
    }
    *reward = (float)r;
    *terminated = term;
}

static mbrl_term term__(mbrl_term_type type, float w, int index) {
    mbrl_term t;
    memset(&t, 0, sizeof t);
    t.type = type;
    t.weight = w;
    t.n_idx = type == MBRL_TERM_LINEAR ? 1 : 0;
    t.idx[0] = index;
    return t;
}

static void mj__declare(const sim_env *e, const char *reward_mode, mbrl_model_spec *spec) {
    const mj_env *k = e->impl;
    spec->obs_dim = e->obs_dim;
    spec->act_dim = e->act_dim;
    spec->act_low = e->act_low;
    spec->act_high = e->act_high;
    spec->n_terms = 0;
    spec->n_bounds = 0;
    int learned = reward_mode && !strcmp(reward_mode, "learned");
    spec->learn_reward = learned;
    mbrl_bound *b = spec->bounds;
    switch (k->t->id) {
    case T_CHEETAH:
        if (!learned) {
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_LINEAR, 1.0f, 8);   /* qvel[0] */
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_ACTION_L2, 0.1f, 0);
        }
        break;
    case T_HOPPER:
        if (!learned) {
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_LINEAR, 1.0f, 5);   /* qvel[0] */
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_CONSTANT, 1.0f, 0);
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_ACTION_L2, 0.001f, 0);
        }
        /* obs[0] = qpos[1] (height) > 0.7; obs[1] = qpos[2] in (-0.2, 0.2);
         * obs[2..4] = qpos[3:6] in (-100, 100). The velocity bounds (100) are
         * beyond the observed clip at 10, so they cannot be declared. */
        b[spec->n_bounds++] = (mbrl_bound){0, 1, 0, 0.7f, 0};
        b[spec->n_bounds++] = (mbrl_bound){1, 1, 1, -0.2f, 0.2f};
        for (int i = 2; i < 5; i++) b[spec->n_bounds++] = (mbrl_bound){i, 1, 1, -100.f, 100.f};
        break;
    case T_SWIMMER:
        if (!learned) {
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_LINEAR, 1.0f, 3);   /* qvel[0] */
            spec->terms[spec->n_terms++] = term__(MBRL_TERM_ACTION_L2, 1e-4f, 0);
        }
        break;
    case T_INVPEND:
        if (!learned) spec->terms[spec->n_terms++] = term__(MBRL_TERM_CONSTANT, 1.0f, 0);
        /* Shaping for the planner, not the task's reward: the slider ends at
         * |x| = 1 and the motor's gear is 100, so with a 0.6 s horizon a
         * noisy plan lets the cart random-walk into the end stop. Costs on
         * the cart's position (1 x^2, below the alive bonus anywhere on the
         * rail) and speed (0.05 xdot^2) keep it centred. The returns
         * reported are the task's own reward. */
        if (!learned) {
            mbrl_term c = term__(MBRL_TERM_QUADRATIC, 1.0f, 0);
            c.n_idx = 1;
            c.idx[0] = 0;
            c.has_target = 1;
            spec->terms[spec->n_terms++] = c;
            c.weight = 0.05f;
            c.idx[0] = 2;
            spec->terms[spec->n_terms++] = c;
        }
        b[spec->n_bounds++] = (mbrl_bound){1, 1, 1, -0.2f, 0.2f};  /* pole angle */
        break;
    }
}

static void mj__free(sim_env *e) {
    mj_env *k = e->impl;
    if (k) {
        if (k->d) mj_deleteData(k->d);
        if (k->m) mj_deleteModel(k->m);
        free(k);
    }
    free(e);
}

/* Where the task XMLs are: --model-dir, else $MBRL_MUJOCO_DIR, else beside
 * the binary (build/../clients/c/sim/models, or ../share/mbrld/mujoco when
 * installed), else the source tree this was built from. */
static void sim_mujoco_path(char *path, size_t n, const char *dir, const char *xml) {
    if (!dir || !*dir) dir = getenv("MBRL_MUJOCO_DIR");
    if (dir && *dir) {
        snprintf(path, n, "%s/%s", dir, xml);
        return;
    }
    char exe[768];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (k > 0) {
        exe[k] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        static const char *const rel[] = {"../clients/c/sim/models", "../share/mbrld/mujoco"};
        for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
            int w = snprintf(path, n, "%s/%s/%s", exe, rel[i], xml);
            if (w > 0 && (size_t)w < n && access(path, R_OK) == 0) return;
        }
    }
    snprintf(path, n, "%s/%s", SIM_MODELS_DIR, xml);
}

int sim_mujoco_open(sim_env **out, const char *task, const sim_opts *o, char *err, size_t err_sz) {
    *out = NULL;
    const task_info *t = NULL;
    for (size_t i = 0; i < sizeof tasks / sizeof tasks[0]; i++)
        if (!strcmp(tasks[i].name, task)) t = &tasks[i];
    if (!t) {
        snprintf(err, err_sz, "unknown MuJoCo task '%s'", task);
        return -1;
    }
    char path[1024];
    sim_mujoco_path(path, sizeof path, o->model_dir, t->xml);
    char mjerr[512] = "";
    mjModel *m = mj_loadXML(path, NULL, mjerr, sizeof mjerr);
    if (!m) {
        snprintf(err, err_sz, "cannot load %s: %s (set --model-dir or MBRL_MUJOCO_DIR)", path, mjerr);
        return -1;
    }
    if (m->nu != t->act_dim || m->nu > SIM_MAX_ACT || (t->id == T_CHEETAH && m->nq != 9)) {
        snprintf(err, err_sz, "%s: nq %d nu %d do not match task %s", path, m->nq, m->nu, task);
        mj_deleteModel(m);
        return -1;
    }
    sim_env *e = calloc(1, sizeof *e);
    mj_env *k = calloc(1, sizeof *k);
    mjData *d = mj_makeData(m);
    if (!e || !k || !d) {
        free(e);
        free(k);
        if (d) mj_deleteData(d);
        mj_deleteModel(m);
        snprintf(err, err_sz, "out of memory");
        return -1;
    }
    k->t = t;
    k->m = m;
    k->d = d;
    e->name = t->name;
    e->obs_dim = t->obs_dim;
    e->act_dim = t->act_dim;
    e->max_steps = o->max_steps > 0 ? o->max_steps : t->max_steps;
    for (int i = 0; i < m->nu; i++) {
        e->act_low[i] = (float)m->actuator_ctrlrange[2 * i];
        e->act_high[i] = (float)m->actuator_ctrlrange[2 * i + 1];
    }
    e->dt = t->skip * m->opt.timestep;
    e->noise = o->reset_noise;
    e->reset = mj__reset;
    e->step = mj__step;
    e->declare = mj__declare;
    e->free = mj__free;
    e->impl = k;
    *out = e;
    return 0;
}
