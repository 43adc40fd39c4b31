/* spec_policy.c: the "policy" object of a model spec and the overrides of
 * POST /v1/models/{m}/policy/train <-> srv_policy_spec (see spec.h).
 *
 * One set of keys serves the three algorithms; a key means what it means
 * for the chosen algorithm ("horizon": distillation's policy steps through
 * the model, or BPTT's H; "batch_size" and "lr": the algorithm's), and keys
 * of another algorithm are accepted and kept for when it is chosen. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "jsonv.h"
#include "spec.h"

static const char *const pol__algo_names[] = {"mbpo", "distill", "bptt"};

const char *spec_policy_algorithm_name(srv_pol_algo a) {
    return a <= SRV_POL_BPTT ? pol__algo_names[a] : "unknown";
}

/* Defaults for a model: the paper's MBPO, 2 x 256 ReLU, bounds from the
 * model, distillation's teacher the model's planner. */
static void pol__defaults(const srv_model_spec *s, srv_policy_spec *p) {
    memset(p, 0, sizeof *p);
    p->algorithm = SRV_POL_MBPO;
    mb_agent_spec_default(&p->agent);
    p->agent.obs_dim = s->obs_dim;
    p->agent.act_dim = s->act_dim;
    memcpy(p->agent.act_low, s->act_low, sizeof p->agent.act_low);
    memcpy(p->agent.act_high, s->act_high, sizeof p->agent.act_high);
    mb_mbpo_cfg_default(&p->mbpo);
    mb_distill_cfg_default(&p->distill);
    mb_bptt_cfg_default(&p->bptt);
    p->teacher = s->planner;
}

int spec_parse_policy(const cJSON *o, const char *path, const char *const *extra,
                      const srv_model_spec *s, const srv_config *cfg, srv_policy_spec *p, srv_err *e) {
    char q[128];
    if (!p->enabled) {
        if (!o) return 0;
        pol__defaults(s, p);
        p->enabled = 1;
    }
    if (!o) return 0;
    const char *keys[48] = {"algorithm", "hidden", "activation", "steps", "time_budget", "auto_train",
                            "gamma", "tau", "lr", "batch_size", "init_alpha", "auto_alpha",
                            "target_entropy", "rollouts", "rollout_length", "rollout_epochs",
                            "epoch_steps", "retain_steps", "updates_per_step", "real_ratio", "states",
                            "horizon", "updates", "max_dataset", "teacher", "max_grad_norm",
                            "use_value"};
    int nk = 27;
    for (int i = 0; extra && extra[i] && nk < 47; i++) keys[nk++] = extra[i];
    keys[nk] = NULL;
    if (jv_object(o, path, keys, e)) return -1;
    char name[16];
    int r = jv_str(o, path, "algorithm", 0, name, sizeof name, e);
    if (r < 0) return -1;
    if (r == 0) {
        int k = 0;
        while (k < 3 && strcmp(name, pol__algo_names[k])) k++;
        jv_path(q, sizeof q, path, "algorithm");
        if (k == 3) return srv_fail(e, MB_EINVAL, q, "must be mbpo, distill or bptt");
        p->algorithm = (srv_pol_algo)k;
    }
    int n;
    r = jv_ints(o, path, "hidden", 0, -MB_MAX_LAYERS, 1, MB_MAX_HIDDEN, p->agent.hidden, &n, e);
    if (r < 0) return -1;
    if (r == 0) p->agent.n_hidden = n;
    r = jv_str(o, path, "activation", 0, name, sizeof name, e);
    if (r < 0) return -1;
    jv_path(q, sizeof q, path, "activation");
    if (r == 0 && mb_activation_parse(name, &p->agent.activation) != 0)
        return srv_fail(e, MB_EINVAL, q, "must be silu, relu or tanh");
    long v;
    double d;
    int b;
    if ((r = jv_int(o, path, "steps", 0, 1, 100000000L, &v, e)) < 0) return -1;
    if (r == 0) p->steps = v;
    if ((r = jv_num(o, path, "time_budget", 0, 0.001, 86400.0 * 7, &d, e)) < 0) return -1;
    if (r == 0) p->time_budget = d;
    /* SAC (MBPO) and BPTT */
    if ((r = jv_num(o, path, "gamma", 0, 1e-6, 1, &d, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.gamma = p->bptt.gamma = (float)d;
    if ((r = jv_num(o, path, "tau", 0, 0, 1, &d, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.tau = (float)d;
    if ((r = jv_num(o, path, "lr", 0, 1e-8, 1, &d, e)) < 0) return -1;
    if (r == 0) {
        mb_sac_cfg *c = &p->mbpo.sac;
        c->lr_actor = c->lr_critic = c->lr_alpha = c->lr_value = (float)d;
        p->distill.lr = p->bptt.lr = (float)d;
    }
    if ((r = jv_int(o, path, "batch_size", 0, 1, 65536, &v, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.batch_size = p->distill.batch_size = p->bptt.batch_size = (int)v;
    if ((r = jv_num(o, path, "init_alpha", 0, 1e-8, 1000, &d, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.init_alpha = (float)d;
    if ((r = jv_bool(o, path, "auto_alpha", 0, &b, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.auto_alpha = b;
    if ((r = jv_num(o, path, "target_entropy", 0, -1e4, 1e4, &d, e)) < 0) return -1;
    if (r == 0) p->mbpo.sac.target_entropy = (float)d;
    /* MBPO */
    if ((r = jv_int(o, path, "rollouts", 0, 1, MB_MBPO_MAX_ROLLOUTS, &v, e)) < 0) return -1;
    if (r == 0) p->mbpo.rollouts = (int)v;
    const cJSON *rl = cJSON_GetObjectItemCaseSensitive(o, "rollout_length");
    if (cJSON_IsNumber(rl)) {
        if ((r = jv_int(o, path, "rollout_length", 1, 1, MB_MBPO_MAX_LENGTH, &v, e)) < 0) return -1;
        p->mbpo.min_length = p->mbpo.max_length = (int)v;
    } else if (rl) {
        int lens[2];
        if (jv_ints(o, path, "rollout_length", 1, 2, 1, MB_MBPO_MAX_LENGTH, lens, NULL, e)) return -1;
        p->mbpo.min_length = lens[0];
        p->mbpo.max_length = lens[1];
    }
    int ep[2];
    if ((r = jv_ints(o, path, "rollout_epochs", 0, 2, 0, 1000000, ep, NULL, e)) < 0) return -1;
    if (r == 0) {
        p->mbpo.min_epoch = ep[0];
        p->mbpo.max_epoch = ep[1];
    }
    if ((r = jv_int(o, path, "epoch_steps", 0, 1, 1000000, &v, e)) < 0) return -1;
    if (r == 0) p->mbpo.epoch_steps = (int)v;
    if ((r = jv_int(o, path, "retain_steps", 0, 1, 1000000, &v, e)) < 0) return -1;
    if (r == 0) p->mbpo.retain_steps = (int)v;
    if ((r = jv_int(o, path, "updates_per_step", 0, 0, 10000, &v, e)) < 0) return -1;
    if (r == 0) p->mbpo.updates_per_step = (int)v;
    if ((r = jv_num(o, path, "real_ratio", 0, 0, 1, &d, e)) < 0) return -1;
    if (r == 0) p->mbpo.real_ratio = (float)d;
    /* distillation */
    if ((r = jv_int(o, path, "states", 0, 1, 100000, &v, e)) < 0) return -1;
    if (r == 0) p->distill.states = (int)v;
    if ((r = jv_int(o, path, "horizon", 0, 1, 1000, &v, e)) < 0) return -1;
    if (r == 0) {
        p->distill.horizon = (int)v;
        p->bptt.horizon = v > MB_BPTT_MAX_HORIZON ? MB_BPTT_MAX_HORIZON : (int)v;
    }
    if ((r = jv_int(o, path, "updates", 0, 0, 100000, &v, e)) < 0) return -1;
    if (r == 0) p->distill.updates = (int)v;
    if ((r = jv_int(o, path, "max_dataset", 0, 1, 10000000, &v, e)) < 0) return -1;
    if (r == 0) p->distill.max_dataset = (int)v;
    const cJSON *te = cJSON_GetObjectItemCaseSensitive(o, "teacher");
    if (te) {
        jv_path(q, sizeof q, path, "teacher");
        if (spec_parse_planner(te, q, s, cfg, &p->teacher, e)) return -1;
    }
    /* BPTT */
    if ((r = jv_num(o, path, "max_grad_norm", 0, 0, 1e12, &d, e)) < 0) return -1;
    if (r == 0) p->bptt.max_grad_norm = (float)d;
    if ((r = jv_bool(o, path, "use_value", 0, &b, e)) < 0) return -1;
    if (r == 0) p->bptt.use_value = b;
    /* automatic policy jobs */
    const cJSON *at = cJSON_GetObjectItemCaseSensitive(o, "auto_train");
    if (at) {
        static const char *const ak[] = {"every", "steps", NULL};
        jv_path(q, sizeof q, path, "auto_train");
        if (jv_object(at, q, ak, e)) return -1;
        if (jv_int(at, q, "every", 1, 1, MB_MAX_BUFFER_CAPACITY, &v, e)) return -1;
        p->auto_every = (int)v;
        if ((r = jv_int(at, q, "steps", 0, 1, 100000000L, &v, e)) < 0) return -1;
        if (r == 0) p->auto_steps = v;
    }
    /* core's checks on the result */
    char err[200];
    mb_status st = mb_agent_spec_check(&p->agent, err, sizeof err);
    if (st == MB_OK) st = mb_mbpo_cfg_check(&p->mbpo, err, sizeof err);
    if (st == MB_OK) st = mb_distill_cfg_check(&p->distill, err, sizeof err);
    if (st == MB_OK) st = mb_bptt_cfg_check(&p->bptt, err, sizeof err);
    if (st != MB_OK) return srv_fail(e, MB_EINVAL, path, "%s", err);
    if (p->algorithm == SRV_POL_BPTT && !s->ens.learn_reward && s->reward.use_learned)
        return srv_fail(e, MB_EINVAL, path, "bptt needs a differentiable reward");
    /* memory: the networks and MBPO's model buffer */
    mb_policy_spec ps;
    mb_mlp_spec m;
    mb_agent_policy_spec(&p->agent, &ps);
    mb_policy_mlp_spec(&ps, &m);
    double params = 8.0 * (double)mb_mlp_size(&m); /* policy, critics x2 + targets, value, optimisers */
    if (params > (double)cfg->max_params)
        return srv_fail(e, MB_ERANGE, path, "the policy's networks (about %.0f parameters) exceed the limit %ld (--max-params)",
                        params, cfg->max_params);
    double rows = (double)mb_mbpo_model_capacity(&p->mbpo);
    double bytes = rows * ((2.0 * s->obs_dim + s->act_dim + 1) * 4 + 2);
    if (p->algorithm == SRV_POL_MBPO && bytes > (double)cfg->max_buffer_mb * 1048576.0) {
        jv_path(q, sizeof q, path, "retain_steps");
        return srv_fail(e, MB_ERANGE, q, "the model-data buffer (%.0f MiB) exceeds the limit %ld MiB (--max-buffer-mb)",
                        bytes / 1048576.0, cfg->max_buffer_mb);
    }
    return 0;
}

cJSON *spec_render_policy(const srv_policy_spec *p) {
    if (!p->enabled) return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "algorithm", spec_policy_algorithm_name(p->algorithm));
    cJSON_AddItemToObject(o, "hidden", jf_ints(p->agent.hidden, p->agent.n_hidden));
    cJSON_AddStringToObject(o, "activation", mb_activation_name(p->agent.activation));
    if (p->steps > 0) cJSON_AddNumberToObject(o, "steps", (double)p->steps);
    if (p->time_budget > 0) cJSON_AddNumberToObject(o, "time_budget", p->time_budget);
    const mb_sac_cfg *c = &p->mbpo.sac;
    switch (p->algorithm) {
    case SRV_POL_MBPO:
        cJSON_AddNumberToObject(o, "gamma", jf_num(c->gamma));
        cJSON_AddNumberToObject(o, "tau", jf_num(c->tau));
        cJSON_AddNumberToObject(o, "lr", jf_num(c->lr_actor));
        cJSON_AddNumberToObject(o, "batch_size", c->batch_size);
        cJSON_AddNumberToObject(o, "init_alpha", jf_num(c->init_alpha));
        cJSON_AddBoolToObject(o, "auto_alpha", c->auto_alpha);
        if (!isnan(c->target_entropy)) cJSON_AddNumberToObject(o, "target_entropy", jf_num(c->target_entropy));
        cJSON_AddNumberToObject(o, "rollouts", p->mbpo.rollouts);
        {
            int lens[2] = {p->mbpo.min_length, p->mbpo.max_length}, ep[2] = {p->mbpo.min_epoch, p->mbpo.max_epoch};
            cJSON_AddItemToObject(o, "rollout_length", jf_ints(lens, 2));
            cJSON_AddItemToObject(o, "rollout_epochs", jf_ints(ep, 2));
        }
        cJSON_AddNumberToObject(o, "epoch_steps", p->mbpo.epoch_steps);
        cJSON_AddNumberToObject(o, "retain_steps", p->mbpo.retain_steps);
        cJSON_AddNumberToObject(o, "updates_per_step", p->mbpo.updates_per_step);
        cJSON_AddNumberToObject(o, "real_ratio", jf_num(p->mbpo.real_ratio));
        break;
    case SRV_POL_DISTILL:
        cJSON_AddNumberToObject(o, "states", p->distill.states);
        cJSON_AddNumberToObject(o, "horizon", p->distill.horizon);
        cJSON_AddNumberToObject(o, "updates", p->distill.updates);
        cJSON_AddNumberToObject(o, "batch_size", p->distill.batch_size);
        cJSON_AddNumberToObject(o, "lr", jf_num(p->distill.lr));
        cJSON_AddNumberToObject(o, "max_dataset", p->distill.max_dataset);
        cJSON_AddItemToObject(o, "teacher", spec_render_planner(&p->teacher));
        break;
    case SRV_POL_BPTT:
        cJSON_AddNumberToObject(o, "horizon", p->bptt.horizon);
        cJSON_AddNumberToObject(o, "batch_size", p->bptt.batch_size);
        cJSON_AddNumberToObject(o, "lr", jf_num(p->bptt.lr));
        cJSON_AddNumberToObject(o, "gamma", jf_num(p->bptt.gamma));
        cJSON_AddNumberToObject(o, "max_grad_norm", jf_num(p->bptt.max_grad_norm));
        cJSON_AddBoolToObject(o, "use_value", p->bptt.use_value);
        break;
    }
    if (p->auto_every > 0) {
        cJSON *at = cJSON_AddObjectToObject(o, "auto_train");
        cJSON_AddNumberToObject(at, "every", p->auto_every);
        if (p->auto_steps > 0) cJSON_AddNumberToObject(at, "steps", (double)p->auto_steps);
    }
    return o;
}
