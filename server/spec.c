/* spec.c: POST /v1/models body <-> srv_model_spec (see spec.h). */
#include "spec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonv.h"
#include "plan/preset.h"

#define SPEC_BIG 3.0e38 /* float range */

int spec_name_ok(const char *name) {
    size_t n = strlen(name);
    if (n < 1 || n > SRV_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-'))
            return 0;
    }
    return 1;
}

static int spec__ensemble(const cJSON *o, srv_model_spec *s, const srv_config *cfg, srv_err *e) {
    static const char *const keys[] = {"members", "hidden", "activation", "learn_reward",
                                       "weight_decay", "learn_termination", NULL};
    mb_ensemble_spec *es = &s->ens;
    if (o) {
        if (jv_object(o, "ensemble", keys, e)) return -1;
        long v;
        int r = jv_int(o, "ensemble", "members", 0, 1, MB_MAX_MEMBERS, &v, e);
        if (r < 0) return -1;
        if (r == 0) es->members = (int)v;
        int n;
        r = jv_ints(o, "ensemble", "hidden", 0, -MB_MAX_LAYERS, 1, MB_MAX_HIDDEN, es->hidden, &n, e);
        if (r < 0) return -1;
        if (r == 0) {
            /* decays follow the default pattern for the new depth */
            if (n > es->n_hidden)
                for (int l = es->n_hidden + 1; l <= n; l++) es->weight_decay[l] = es->weight_decay[es->n_hidden];
            es->n_hidden = n;
        }
        char act[16];
        r = jv_str(o, "ensemble", "activation", 0, act, sizeof act, e);
        if (r < 0) return -1;
        if (r == 0 && mb_activation_parse(act, &es->activation) != 0)
            return srv_fail(e, MB_EINVAL, "ensemble.activation", "must be silu, relu or tanh");
        r = jv_bool(o, "ensemble", "learn_reward", 0, &es->learn_reward, e);
        if (r < 0) return -1;
        r = jv_bool(o, "ensemble", "learn_termination", 0, &es->learn_termination, e);
        if (r < 0) return -1;
        r = jv_floats(o, "ensemble", "weight_decay", 0, es->n_hidden + 1, 0, 1e3, es->weight_decay,
                      NULL, e);
        if (r < 0) return -1;
    }
    es->obs_dim = s->obs_dim;
    es->act_dim = s->act_dim;
    char err[200];
    if (mb_ensemble_spec_check(es, err, sizeof err) != MB_OK)
        return srv_fail(e, MB_ERANGE, "ensemble", "%s", err);
    double params = (double)mb_ensemble_member_size(es) * es->members;
    if (params > (double)cfg->max_params)
        return srv_fail(e, MB_ERANGE, "ensemble", "%.0f parameters exceed the limit %ld (--max-params)",
                        params, cfg->max_params);
    return 0;
}

static int spec__indices(const cJSON *t, const char *path, const char *key, int obs_dim, int *idx,
                         int *n, srv_err *e) {
    return jv_ints(t, path, key, 1, -MB_MAX_TERM_IDX, 0, obs_dim - 1, idx, n, e);
}

static int spec__term(const cJSON *t, const char *path, const srv_model_spec *s, mb_reward_term *out,
                      srv_err *e) {
    static const char *const keys[] = {"type", "weight", "index", "indices", "target",
                                       "other_indices", NULL};
    if (jv_object(t, path, keys, e)) return -1;
    char type[16];
    if (jv_str(t, path, "type", 1, type, sizeof type, e)) return -1;
    memset(out, 0, sizeof *out);
    double w = 1.0;
    if (jv_num(t, path, "weight", 0, -1e6, 1e6, &w, e) < 0) return -1;
    out->weight = (float)w;
    char p[128];
    int allow_index = 0, allow_indices = 0, allow_target = 0, allow_other = 0;
    if (!strcmp(type, "linear")) {
        out->type = MB_TERM_LINEAR;
        long i;
        if (jv_int(t, path, "index", 1, 0, s->obs_dim - 1, &i, e)) return -1;
        out->n_idx = 1;
        out->idx[0] = (int)i;
        allow_index = 1;
    } else if (!strcmp(type, "quadratic") || !strcmp(type, "norm")) {
        out->type = type[0] == 'q' ? MB_TERM_QUADRATIC : MB_TERM_NORM;
        if (spec__indices(t, path, "indices", s->obs_dim, out->idx, &out->n_idx, e)) return -1;
        allow_indices = 1;
        const cJSON *other = cJSON_GetObjectItemCaseSensitive(t, "other_indices");
        if (out->type == MB_TERM_NORM && other) {
            if (spec__indices(t, path, "other_indices", s->obs_dim, out->other, &out->n_other, e))
                return -1;
            jv_path(p, sizeof p, path, "other_indices");
            if (out->n_other != out->n_idx)
                return srv_fail(e, MB_EINVAL, p, "must have as many entries as indices");
            allow_other = 1;
        } else {
            int r = jv_floats(t, path, "target", 0, out->n_idx, -SPEC_BIG, SPEC_BIG, out->target,
                              NULL, e);
            if (r < 0) return -1;
            allow_target = 1; /* absent: target 0 */
        }
    } else if (!strcmp(type, "action_l2")) {
        out->type = MB_TERM_ACTION_L2;
    } else if (!strcmp(type, "constant")) {
        out->type = MB_TERM_CONSTANT;
    } else {
        jv_path(p, sizeof p, path, "type");
        return srv_fail(e, MB_EINVAL, p, "must be linear, quadratic, norm, action_l2 or constant");
    }
    const char *bad = NULL;
    if (!allow_index && cJSON_GetObjectItemCaseSensitive(t, "index")) bad = "index";
    if (!allow_indices && cJSON_GetObjectItemCaseSensitive(t, "indices")) bad = "indices";
    if (!allow_target && cJSON_GetObjectItemCaseSensitive(t, "target")) bad = "target";
    if (!allow_other && cJSON_GetObjectItemCaseSensitive(t, "other_indices")) bad = "other_indices";
    if (bad) {
        jv_path(p, sizeof p, path, bad);
        return srv_fail(e, MB_EINVAL, p, "not used by a %s term", type);
    }
    return 0;
}

static int spec__reward(const cJSON *rw, const cJSON *term, srv_model_spec *s, srv_err *e) {
    mb_reward_spec *r = &s->reward;
    memset(r, 0, sizeof *r);
    r->use_learned = s->ens.learn_reward;
    r->discount = 1.0f;
    if (rw) {
        static const char *const keys[] = {"terms", "use_learned", "discount", NULL};
        if (jv_object(rw, "reward", keys, e)) return -1;
        if (jv_bool(rw, "reward", "use_learned", 0, &r->use_learned, e) < 0) return -1;
        if (r->use_learned && !s->ens.learn_reward)
            return srv_fail(e, MB_EINVAL, "reward.use_learned",
                            "needs ensemble.learn_reward: true");
        double d = 1.0;
        if (jv_num(rw, "reward", "discount", 0, 1e-6, 1.0, &d, e) < 0) return -1;
        r->discount = (float)d;
        const cJSON *terms = cJSON_GetObjectItemCaseSensitive(rw, "terms");
        if (terms) {
            if (!cJSON_IsArray(terms)) return srv_fail(e, MB_EINVAL, "reward.terms", "must be an array");
            if (cJSON_GetArraySize(terms) > MB_MAX_TERMS)
                return srv_fail(e, MB_ERANGE, "reward.terms", "at most %d terms", MB_MAX_TERMS);
            int i = 0;
            for (const cJSON *t = terms->child; t; t = t->next, i++) {
                char p[64];
                snprintf(p, sizeof p, "reward.terms[%d]", i);
                if (spec__term(t, p, s, &r->terms[i], e)) return -1;
            }
            r->n_terms = i;
        }
    }
    if (term) {
        static const char *const keys[] = {"bounds", NULL};
        if (jv_object(term, "termination", keys, e)) return -1;
        const cJSON *b = cJSON_GetObjectItemCaseSensitive(term, "bounds");
        if (b) {
            if (!cJSON_IsArray(b)) return srv_fail(e, MB_EINVAL, "termination.bounds", "must be an array");
            if (cJSON_GetArraySize(b) > MB_MAX_BOUNDS)
                return srv_fail(e, MB_ERANGE, "termination.bounds", "at most %d bounds", MB_MAX_BOUNDS);
            int i = 0;
            for (const cJSON *t = b->child; t; t = t->next, i++) {
                static const char *const bk[] = {"index", "min", "max", NULL};
                char p[64];
                snprintf(p, sizeof p, "termination.bounds[%d]", i);
                if (jv_object(t, p, bk, e)) return -1;
                mb_bound *bd = &r->bounds[i];
                long idx;
                double v;
                if (jv_int(t, p, "index", 1, 0, s->obs_dim - 1, &idx, e)) return -1;
                bd->index = (int)idx;
                int q = jv_num(t, p, "min", 0, -SPEC_BIG, SPEC_BIG, &v, e);
                if (q < 0) return -1;
                if (q == 0) bd->has_min = 1, bd->min = (float)v;
                q = jv_num(t, p, "max", 0, -SPEC_BIG, SPEC_BIG, &v, e);
                if (q < 0) return -1;
                if (q == 0) bd->has_max = 1, bd->max = (float)v;
                if (!bd->has_min && !bd->has_max)
                    return srv_fail(e, MB_EINVAL, p, "needs min, max or both");
                if (bd->has_min && bd->has_max && !(bd->min < bd->max))
                    return srv_fail(e, MB_EINVAL, p, "min must be below max");
            }
            r->n_bounds = i;
        }
    }
    char err[200];
    if (mb_reward_spec_check(r, s->obs_dim, s->act_dim, err, sizeof err) != MB_OK)
        return srv_fail(e, MB_EINVAL, "reward", "%s", err);
    return 0;
}

int spec_parse_planner(const cJSON *o, const char *path, const srv_model_spec *s,
                       const srv_config *cfg, mb_planner_cfg *p, srv_err *e) {
    static const char *const keys[] = {"method", "horizon", "population", "elites", "iterations",
                                       "alpha", "particles", "propagation", "risk", "init_std",
                                       "kappa", "sigma", "beta", "noise_beta", "pop_decay",
                                       "keep_elites", "elites_only", "precision",
                                       /* issue 14 */
                                       "simulations", "max_ms", "rollout_depth", "rollout_mean",
                                       "uct_c", "leaf_batch", "lr", "grad_steps", "grad_elites",
                                       "kl_step", "fit_reg", "tree_reuse",
                                       /* issue 13 */
                                       "terminal_value", "policy_samples",
                                       /* issue 12 */
                                       "preset", NULL};
    char q[128];
    if (o) {
        if (jv_object(o, path, keys, e)) return -1;
        char name[16];
        /* a named configuration first (core/plan/preset.h); the fields sent
         * with it apply on top */
        int r = jv_str(o, path, "preset", 0, name, sizeof name, e);
        if (r < 0) return -1;
        if (r == 0 && mb_planner_preset(name, p) != 0) {
            jv_path(q, sizeof q, path, "preset");
            return srv_fail(e, MB_EINVAL, q, "unknown preset '%s' (presets: %s)", name,
                            mb_planner_preset_names());
        }
        r = jv_str(o, path, "method", 0, name, sizeof name, e);
        if (r < 0) return -1;
        if (r == 0) {
            mb_plan_method m;
            jv_path(q, sizeof q, path, "method");
            if (mb_plan_method_parse(name, &m) != 0)
                return srv_fail(e, MB_EINVAL, q,
                                "must be random, cem, mppi, icem, mcts, ilqr, lqr_flm, grad or cem_grad");
            if (m != p->method) {
                /* the prior settings are the model's, whatever the method */
                int tv = p->terminal_value, ps = p->policy_samples;
                mb_planner_cfg_default(p, m);
                p->terminal_value = tv;
                p->policy_samples = ps;
            }
        }
        struct {
            const char *key;
            int *dst;
            long lo, hi;
        } ints[] = {{"horizon", &p->horizon, 1, MB_MAX_HORIZON},
                    {"population", &p->population, 1, MB_MAX_POPULATION},
                    {"elites", &p->elites, 1, MB_MAX_POPULATION},
                    {"iterations", &p->iterations, 1, 100},
                    {"particles", &p->particles, 1, MB_MAX_PARTICLES},
                    {"elites_only", &p->elites_only, 0, 1},
                    {"simulations", &p->simulations, 0, 1000000},
                    {"rollout_depth", &p->rollout_depth, 0, MB_MAX_HORIZON},
                    {"leaf_batch", &p->leaf_batch, 1, 1024},
                    {"grad_steps", &p->grad_steps, 1, 10000},
                    {"grad_elites", &p->grad_elites, 1, MB_MAX_POPULATION},
                    {"terminal_value", &p->terminal_value, 0, 1},
                    {"policy_samples", &p->policy_samples, 0, MB_MAX_POPULATION}};
        for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
            long v;
            if (!strcmp(ints[i].key, "elites_only")) {
                int b;
                r = jv_bool(o, path, "elites_only", 0, &b, e);
                if (r < 0) return -1;
                if (r == 0) p->elites_only = b;
                continue;
            }
            if (!strcmp(ints[i].key, "terminal_value")) {
                int b;
                r = jv_bool(o, path, "terminal_value", 0, &b, e);
                if (r < 0) return -1;
                if (r == 0) p->terminal_value = b;
                continue;
            }
            r = jv_int(o, path, ints[i].key, 0, ints[i].lo, ints[i].hi, &v, e);
            if (r < 0) return -1;
            if (r == 0) *ints[i].dst = (int)v;
        }
        struct {
            const char *key;
            float *dst;
            double lo, hi;
        } nums[] = {{"alpha", &p->alpha, 0, 1},          {"risk", &p->risk, -1e3, 1e3},
                    {"init_std", &p->init_std, 0, 10},   {"kappa", &p->kappa, 1e-6, 1e6},
                    {"sigma", &p->sigma, 0, 10},         {"beta", &p->beta, 0, 1},
                    {"noise_beta", &p->noise_beta, 0, 5}, {"pop_decay", &p->pop_decay, 1, 100},
                    {"keep_elites", &p->keep_elites, 0, 1},
                    {"max_ms", &p->max_ms, 0, 600000},      {"uct_c", &p->uct_c, 0, 100},
                    {"lr", &p->lr, 1e-6, 10},                {"kl_step", &p->kl_step, 1e-6, 1e6},
                    {"fit_reg", &p->fit_reg, 0, 1e6}};
        for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
            double v;
            r = jv_num(o, path, nums[i].key, 0, nums[i].lo, nums[i].hi, &v, e);
            if (r < 0) return -1;
            if (r == 0) *nums[i].dst = (float)v;
        }
        int rm;
        r = jv_bool(o, path, "rollout_mean", 0, &rm, e);
        if (r < 0) return -1;
        if (r == 0) p->rollout_mean = rm;
        r = jv_bool(o, path, "tree_reuse", 0, &rm, e);
        if (r < 0) return -1;
        if (r == 0) p->tree_reuse = rm;
        r = jv_str(o, path, "propagation", 0, name, sizeof name, e);
        if (r < 0) return -1;
        jv_path(q, sizeof q, path, "propagation");
        if (r == 0 && mb_prop_parse(name, &p->propagation) != 0)
            return srv_fail(e, MB_EINVAL, q, "must be ts1, ts_inf, expectation or mean");
        /* bf16 products where the CPU has AVX512_BF16, fp32 elsewhere (the
         * act answer's "precision" says which ran) */
        r = jv_str(o, path, "precision", 0, name, sizeof name, e);
        if (r < 0) return -1;
        jv_path(q, sizeof q, path, "precision");
        if (r == 0 && mb_precision_parse(name, &p->precision) != 0)
            return srv_fail(e, MB_EINVAL, q, "must be fp32 or bf16");
    }
    /* a method's default elites may not fit a smaller population given here */
    if (o && !cJSON_GetObjectItemCaseSensitive(o, "elites") && p->elites > p->population)
        p->elites = p->population >= 10 ? p->population / 10 : 1;
    /* the obvious mistakes get a precise field; core's check does the rest */
    if (p->elites > p->population) {
        jv_path(q, sizeof q, path, "elites");
        return srv_fail(e, MB_EINVAL, q, "elites (%d) exceed population (%d)", p->elites, p->population);
    }
    double rows = (double)p->population * p->particles;
    if (rows > (double)cfg->max_plan_rows) {
        jv_path(q, sizeof q, path, "population");
        return srv_fail(e, MB_ERANGE, q, "population x particles = %.0f exceeds %ld (--max-plan-rows)",
                        rows, cfg->max_plan_rows);
    }
    char err[200];
    if (mb_planner_cfg_check(p, s->ens.members, err, sizeof err) != MB_OK)
        return srv_fail(e, MB_EINVAL, path, "%s", err);
    /* method vs the action space (and mcts's tree, the LQR methods' sizes) */
    mb_dynamics dyn = {.obs_dim = s->obs_dim, .act_dim = s->act_dim, .act_low = s->act_low,
                       .act_high = s->act_high, .discrete = s->discrete};
    mb_status st = mb_planner_cfg_check_dyn(p, &dyn, err, sizeof err);
    if (st != MB_OK) {
        jv_path(q, sizeof q, path, "method");
        return srv_fail(e, (int)st, q, "%s", err);
    }
    return 0;
}

int spec_discrete_action(const cJSON *node, const char *path, int K, float *onehot, srv_err *e) {
    if (!cJSON_IsNumber(node) || !isfinite(node->valuedouble) ||
        node->valuedouble != floor(node->valuedouble))
        return srv_fail(e, MB_EINVAL, path, "must be an integer action in [0, %d)", K);
    double v = node->valuedouble;
    if (v < 0 || v >= K) return srv_fail(e, MB_ERANGE, path, "must be in [0, %d)", K);
    for (int i = 0; i < K; i++) onehot[i] = (float)(i == (int)v);
    return 0;
}

int spec_discrete_index(const float *onehot, int K) {
    int k = 0;
    for (int i = 1; i < K; i++)
        if (onehot[i] > onehot[k]) k = i;
    return k;
}

int spec_parse_train(const cJSON *o, const char *path, const char *const *extra, int members,
                     mb_train_cfg *c, srv_err *e) {
    if (o) {
        const char *keys[32] = {"max_epochs", "patience", "min_improvement", "batch_size", "lr",
                                "max_holdout", "n_elites", "bootstrap", "seed", "min_steps",
                                "min_epochs"};
        int nk = 11;
        for (int i = 0; extra && extra[i] && nk < 31; i++) keys[nk++] = extra[i];
        keys[nk] = NULL;
        if (jv_object(o, path, keys, e)) return -1;
        long v;
        double d;
        int b, r;
        if ((r = jv_int(o, path, "max_epochs", 0, 1, 100000, &v, e)) < 0) return -1;
        if (r == 0) c->max_epochs = (int)v;
        if ((r = jv_int(o, path, "patience", 0, 0, 100000, &v, e)) < 0) return -1;
        if (r == 0) c->patience = (int)v;
        if ((r = jv_num(o, path, "min_improvement", 0, 0, 1, &d, e)) < 0) return -1;
        if (r == 0) c->min_improvement = (float)d;
        if ((r = jv_int(o, path, "batch_size", 0, 0, 65536, &v, e)) < 0) return -1;
        if (r == 0) c->batch_size = (int)v; /* 0: adapts to the rows */
        if ((r = jv_int(o, path, "min_steps", 0, 0, 100000000, &v, e)) < 0) return -1;
        if (r == 0) c->min_steps = (int)v;
        if ((r = jv_int(o, path, "min_epochs", 0, 0, 100000, &v, e)) < 0) return -1;
        if (r == 0) c->min_epochs = (int)v;
        if ((r = jv_num(o, path, "lr", 0, 1e-8, 1, &d, e)) < 0) return -1;
        if (r == 0) c->lr = (float)d;
        if ((r = jv_int(o, path, "max_holdout", 0, 0, MB_MAX_BUFFER_CAPACITY, &v, e)) < 0) return -1;
        if (r == 0) c->max_holdout = (size_t)v;
        if ((r = jv_int(o, path, "n_elites", 0, 1, members, &v, e)) < 0) return -1;
        if (r == 0) c->n_elites = (int)v;
        if ((r = jv_bool(o, path, "bootstrap", 0, &b, e)) < 0) return -1;
        if (r == 0) c->bootstrap = b;
        if ((r = jv_int(o, path, "seed", 0, 0, 9007199254740991L, &v, e)) < 0) return -1;
        if (r == 0) c->seed = (uint64_t)v;
    }
    char err[200];
    if (mb_train_cfg_check(c, members, err, sizeof err) != MB_OK)
        return srv_fail(e, MB_EINVAL, path, "%s", err);
    return 0;
}

int spec_parse(const cJSON *b, const srv_config *cfg, srv_model_spec *s, srv_err *e) {
    static const char *const keys[] = {"name", "obs_dim", "act_dim", "act_low", "act_high",
                                       "ensemble", "reward", "termination", "planner", "buffer",
                                       "train", "auto_train", "seed", "actions", "policy", NULL};
    memset(s, 0, sizeof *s);
    if (jv_object(b, "", keys, e)) return -1;
    if (jv_str(b, "", "name", 1, s->name, sizeof s->name, e)) return -1;
    if (!spec_name_ok(s->name))
        return srv_fail(e, MB_EINVAL, "name", "must match [A-Za-z0-9_.-]{1,64}");
    long v;
    if (jv_int(b, "", "obs_dim", 1, 1, MB_MAX_OBS_DIM, &v, e)) return -1;
    s->obs_dim = (int)v;
    const cJSON *acts = cJSON_GetObjectItemCaseSensitive(b, "actions");
    if (acts) {
        /* discrete: K actions, one-hot for the ensemble. act_dim / act_low /
         * act_high may be left out; given (as the canonical form renders
         * them) they must say the same thing. */
        static const char *const ak[] = {"discrete", NULL};
        if (jv_object(acts, "actions", ak, e)) return -1;
        if (jv_int(acts, "actions", "discrete", 1, 2, MB_MAX_ACT_DIM, &v, e)) return -1;
        s->discrete = s->act_dim = (int)v;
        int r = jv_int(b, "", "act_dim", 0, 1, MB_MAX_ACT_DIM, &v, e);
        if (r < 0) return -1;
        if (r == 0 && v != s->discrete)
            return srv_fail(e, MB_EINVAL, "act_dim", "must equal actions.discrete (%d) or be left out",
                            s->discrete);
        for (int i = 0; i < s->act_dim; i++) {
            s->act_low[i] = 0.0f;
            s->act_high[i] = 1.0f;
        }
        float lh[MB_MAX_ACT_DIM];
        for (int side = 0; side < 2; side++) {
            const char *key = side ? "act_high" : "act_low";
            r = jv_floats(b, "", key, 0, s->act_dim, -SPEC_BIG, SPEC_BIG, lh, NULL, e);
            if (r < 0) return -1;
            for (int i = 0; r == 0 && i < s->act_dim; i++)
                if (lh[i] != (float)side)
                    return srv_fail(e, MB_EINVAL, key,
                                    "must be all %d with discrete actions (one-hot) or be left out", side);
        }
    } else {
        if (jv_int(b, "", "act_dim", 1, 1, MB_MAX_ACT_DIM, &v, e)) return -1;
        s->act_dim = (int)v;
        if (jv_floats(b, "", "act_low", 1, s->act_dim, -SPEC_BIG, SPEC_BIG, s->act_low, NULL, e)) return -1;
        if (jv_floats(b, "", "act_high", 1, s->act_dim, -SPEC_BIG, SPEC_BIG, s->act_high, NULL, e)) return -1;
    }
    for (int i = 0; i < s->act_dim; i++)
        if (!(s->act_low[i] < s->act_high[i])) {
            char p[32];
            snprintf(p, sizeof p, "act_high[%d]", i);
            return srv_fail(e, MB_EINVAL, p, "must be above act_low[%d]", i);
        }
    long seed = 1;
    if (jv_int(b, "", "seed", 0, 0, 9007199254740991L, &seed, e) < 0) return -1;
    s->seed = (uint64_t)seed;

    mb_ensemble_spec_default(&s->ens);
    if (spec__ensemble(cJSON_GetObjectItemCaseSensitive(b, "ensemble"), s, cfg, e)) return -1;
    if (spec__reward(cJSON_GetObjectItemCaseSensitive(b, "reward"),
                     cJSON_GetObjectItemCaseSensitive(b, "termination"), s, e))
        return -1;

    const cJSON *pl = cJSON_GetObjectItemCaseSensitive(b, "planner");
    mb_plan_method m = MB_PLAN_CEM;
    const cJSON *mn = pl ? cJSON_GetObjectItemCaseSensitive(pl, "method") : NULL;
    if (cJSON_IsString(mn)) (void)mb_plan_method_parse(mn->valuestring, &m);
    mb_planner_cfg_default(&s->planner, m);
    if (spec_parse_planner(pl, "planner", s, cfg, &s->planner, e)) return -1;

    s->buffer_capacity = 100000;
    s->holdout_ratio = 0.1f;
    const cJSON *bu = cJSON_GetObjectItemCaseSensitive(b, "buffer");
    if (bu) {
        static const char *const bk[] = {"capacity", "holdout_ratio", NULL};
        if (jv_object(bu, "buffer", bk, e)) return -1;
        double h;
        int r = jv_int(bu, "buffer", "capacity", 0, 2, MB_MAX_BUFFER_CAPACITY, &v, e);
        if (r < 0) return -1;
        if (r == 0) s->buffer_capacity = (size_t)v;
        r = jv_num(bu, "buffer", "holdout_ratio", 0, 0, 0.9, &h, e);
        if (r < 0) return -1;
        if (r == 0) s->holdout_ratio = (float)h;
    }
    double bytes = (double)s->buffer_capacity * ((2.0 * s->obs_dim + s->act_dim + 1) * 4 + 2);
    if (bytes > (double)cfg->max_buffer_mb * 1048576.0)
        return srv_fail(e, MB_ERANGE, "buffer.capacity",
                        "%.0f MiB of buffer exceed the limit %ld MiB (--max-buffer-mb)",
                        bytes / 1048576.0, cfg->max_buffer_mb);

    mb_train_cfg_default(&s->train);
    s->train.seed = s->seed;
    if (s->train.n_elites < 1 || s->train.n_elites > s->ens.members) s->train.n_elites = s->ens.members;
    if (spec_parse_train(cJSON_GetObjectItemCaseSensitive(b, "train"), "train", NULL, s->ens.members,
                         &s->train, e))
        return -1;

    s->auto_train.max_epochs = s->train.max_epochs;
    s->auto_train.patience = s->train.patience;
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(b, "auto_train");
    if (at) {
        static const char *const ak[] = {"every", "max_epochs", "patience", NULL};
        if (jv_object(at, "auto_train", ak, e)) return -1;
        int r;
        if (jv_int(at, "auto_train", "every", 1, 1, MB_MAX_BUFFER_CAPACITY, &v, e)) return -1;
        s->auto_train.every = (int)v;
        if ((r = jv_int(at, "auto_train", "max_epochs", 0, 1, 100000, &v, e)) < 0) return -1;
        if (r == 0) s->auto_train.max_epochs = (int)v;
        if ((r = jv_int(at, "auto_train", "patience", 0, 0, 100000, &v, e)) < 0) return -1;
        if (r == 0) s->auto_train.patience = (int)v;
    }
    /* the policy is a tanh-squashed Gaussian over a box: no discrete actions */
    if (s->discrete && cJSON_GetObjectItemCaseSensitive(b, "policy"))
        return srv_fail(e, MB_EINVAL, "policy",
                        "needs continuous actions (a tanh-squashed Gaussian over act_low..act_high); "
                        "a model with \"actions\": {\"discrete\": K} plans with mcts or the discrete "
                        "random/cem");
    /* after the planner: distillation's teacher defaults to it */
    if (spec_parse_policy(cJSON_GetObjectItemCaseSensitive(b, "policy"), "policy", NULL, s, cfg, &s->policy, e))
        return -1;
    if (!s->policy.enabled && s->planner.terminal_value)
        return srv_fail(e, MB_EINVAL, "planner.terminal_value", "needs a \"policy\" (its value network) in the spec");
    if (!s->policy.enabled && s->planner.policy_samples > 0)
        return srv_fail(e, MB_EINVAL, "planner.policy_samples", "needs a \"policy\" in the spec");
    return 0;
}

cJSON *spec_render_planner(const mb_planner_cfg *p) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "method", mb_plan_method_name(p->method));
    cJSON_AddNumberToObject(o, "horizon", p->horizon);
    cJSON_AddNumberToObject(o, "population", p->population);
    cJSON_AddNumberToObject(o, "elites", p->elites);
    cJSON_AddNumberToObject(o, "iterations", p->iterations);
    cJSON_AddNumberToObject(o, "alpha", jf_num(p->alpha));
    cJSON_AddNumberToObject(o, "particles", p->particles);
    cJSON_AddStringToObject(o, "propagation", mb_prop_name(p->propagation));
    cJSON_AddNumberToObject(o, "risk", jf_num(p->risk));
    cJSON_AddNumberToObject(o, "init_std", jf_num(p->init_std));
    cJSON_AddNumberToObject(o, "kappa", jf_num(p->kappa));
    cJSON_AddNumberToObject(o, "sigma", jf_num(p->sigma));
    cJSON_AddNumberToObject(o, "beta", jf_num(p->beta));
    cJSON_AddNumberToObject(o, "noise_beta", jf_num(p->noise_beta));
    cJSON_AddNumberToObject(o, "pop_decay", jf_num(p->pop_decay));
    cJSON_AddNumberToObject(o, "keep_elites", jf_num(p->keep_elites));
    cJSON_AddBoolToObject(o, "elites_only", p->elites_only);
    cJSON_AddStringToObject(o, "precision", mb_precision_name(p->precision));
    /* issue 14's methods' settings */
    cJSON_AddNumberToObject(o, "simulations", p->simulations);
    cJSON_AddNumberToObject(o, "max_ms", jf_num(p->max_ms));
    cJSON_AddNumberToObject(o, "rollout_depth", p->rollout_depth);
    cJSON_AddBoolToObject(o, "rollout_mean", p->rollout_mean);
    cJSON_AddNumberToObject(o, "uct_c", jf_num(p->uct_c));
    cJSON_AddNumberToObject(o, "leaf_batch", p->leaf_batch);
    cJSON_AddNumberToObject(o, "lr", jf_num(p->lr));
    cJSON_AddNumberToObject(o, "grad_steps", p->grad_steps);
    cJSON_AddNumberToObject(o, "grad_elites", p->grad_elites);
    cJSON_AddNumberToObject(o, "kl_step", jf_num(p->kl_step));
    cJSON_AddNumberToObject(o, "fit_reg", jf_num(p->fit_reg));
    cJSON_AddBoolToObject(o, "tree_reuse", p->tree_reuse);
    if (p->terminal_value) cJSON_AddBoolToObject(o, "terminal_value", 1);
    if (p->policy_samples > 0) cJSON_AddNumberToObject(o, "policy_samples", p->policy_samples);
    return o;
}

static const char *const spec__term_names[] = {"linear", "quadratic", "norm", "action_l2", "constant"};

cJSON *spec_render(const srv_model_spec *s) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", s->name);
    cJSON_AddNumberToObject(o, "obs_dim", s->obs_dim);
    cJSON_AddNumberToObject(o, "act_dim", s->act_dim);
    jf_add(o, "act_low", jf_floats(s->act_low, s->act_dim));
    jf_add(o, "act_high", jf_floats(s->act_high, s->act_dim));
    if (s->discrete > 0) cJSON_AddNumberToObject(cJSON_AddObjectToObject(o, "actions"), "discrete", s->discrete);
    cJSON *en = cJSON_AddObjectToObject(o, "ensemble");
    cJSON_AddNumberToObject(en, "members", s->ens.members);
    jf_add(en, "hidden", jf_ints(s->ens.hidden, s->ens.n_hidden));
    cJSON_AddStringToObject(en, "activation", mb_activation_name(s->ens.activation));
    cJSON_AddBoolToObject(en, "learn_reward", s->ens.learn_reward);
    cJSON_AddBoolToObject(en, "learn_termination", s->ens.learn_termination);
    jf_add(en, "weight_decay", jf_floats(s->ens.weight_decay, s->ens.n_hidden + 1));
    cJSON *rw = cJSON_AddObjectToObject(o, "reward");
    cJSON *terms = cJSON_AddArrayToObject(rw, "terms");
    for (int i = 0; i < s->reward.n_terms; i++) {
        const mb_reward_term *t = &s->reward.terms[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "type", spec__term_names[t->type]);
        cJSON_AddNumberToObject(j, "weight", jf_num(t->weight));
        if (t->type == MB_TERM_LINEAR) cJSON_AddNumberToObject(j, "index", t->idx[0]);
        if (t->type == MB_TERM_QUADRATIC || t->type == MB_TERM_NORM) {
            jf_add(j, "indices", jf_ints(t->idx, t->n_idx));
            if (t->n_other) jf_add(j, "other_indices", jf_ints(t->other, t->n_other));
            else jf_add(j, "target", jf_floats(t->target, t->n_idx));
        }
        jf_add(terms, NULL, j);
    }
    cJSON_AddBoolToObject(rw, "use_learned", s->reward.use_learned);
    cJSON_AddNumberToObject(rw, "discount", jf_num(s->reward.discount));
    cJSON *te = cJSON_AddObjectToObject(o, "termination");
    cJSON *bounds = cJSON_AddArrayToObject(te, "bounds");
    for (int i = 0; i < s->reward.n_bounds; i++) {
        const mb_bound *bd = &s->reward.bounds[i];
        cJSON *j = cJSON_CreateObject();
        cJSON_AddNumberToObject(j, "index", bd->index);
        if (bd->has_min) cJSON_AddNumberToObject(j, "min", jf_num(bd->min));
        if (bd->has_max) cJSON_AddNumberToObject(j, "max", jf_num(bd->max));
        jf_add(bounds, NULL, j);
    }
    jf_add(o, "planner", spec_render_planner(&s->planner));
    cJSON *bu = cJSON_AddObjectToObject(o, "buffer");
    cJSON_AddNumberToObject(bu, "capacity", (double)s->buffer_capacity);
    cJSON_AddNumberToObject(bu, "holdout_ratio", jf_num(s->holdout_ratio));
    cJSON *tr = cJSON_AddObjectToObject(o, "train");
    cJSON_AddNumberToObject(tr, "max_epochs", s->train.max_epochs);
    cJSON_AddNumberToObject(tr, "patience", s->train.patience);
    cJSON_AddNumberToObject(tr, "min_improvement", jf_num(s->train.min_improvement));
    cJSON_AddNumberToObject(tr, "batch_size", s->train.batch_size);
    cJSON_AddNumberToObject(tr, "lr", jf_num(s->train.lr));
    cJSON_AddNumberToObject(tr, "max_holdout", (double)s->train.max_holdout);
    cJSON_AddNumberToObject(tr, "n_elites", s->train.n_elites);
    cJSON_AddBoolToObject(tr, "bootstrap", s->train.bootstrap);
    cJSON_AddNumberToObject(tr, "min_steps", s->train.min_steps);
    cJSON_AddNumberToObject(tr, "min_epochs", s->train.min_epochs);
    if (s->auto_train.every > 0) {
        cJSON *at = cJSON_AddObjectToObject(o, "auto_train");
        cJSON_AddNumberToObject(at, "every", s->auto_train.every);
        cJSON_AddNumberToObject(at, "max_epochs", s->auto_train.max_epochs);
        cJSON_AddNumberToObject(at, "patience", s->auto_train.patience);
    }
    cJSON_AddNumberToObject(o, "seed", (double)s->seed);
    cJSON *po = spec_render_policy(&s->policy);
    if (po) cJSON_AddItemToObject(o, "policy", po);
    return o;
}
