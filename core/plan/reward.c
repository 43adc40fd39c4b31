/* reward.c: declared reward terms, termination bounds and goal overrides
 * (the contract is in reward.h and DESIGN.md's table).
 *
 * Not for: the learned reward head (ensemble.c predicts it, planner.c passes
 * it in as `learned`), discounting (the planner applies discount^t), JSON. */
#include "plan/reward.h"

#include <math.h>

void mb_reward_spec_default(mb_reward_spec *r) {
    *r = (mb_reward_spec){0};
    r->use_learned = 1;
    r->discount = 1.0f;
}

static mb_status reward__check_idx(const int *idx, int n, int obs_dim, int term,
                                   const char *what, char *err, size_t err_sz) {
    for (int j = 0; j < n; j++)
        if (idx[j] < 0 || idx[j] >= obs_dim)
            return mb_fail(err, err_sz, MB_EINVAL, "terms[%d].%s[%d] = %d is outside [0, %d)",
                           term, what, j, idx[j], obs_dim);
    return MB_OK;
}

mb_status mb_reward_spec_check(const mb_reward_spec *r, int obs_dim, int act_dim,
                               char *err, size_t err_sz) {
    if (!r) return mb_fail(err, err_sz, MB_EINVAL, "reward spec is NULL");
    if (obs_dim < 1 || obs_dim > MB_MAX_OBS_DIM || act_dim < 1 || act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "obs_dim %d / act_dim %d outside the limits",
                       obs_dim, act_dim);
    if (!(r->discount > 0.0f && r->discount <= 1.0f))
        return mb_fail(err, err_sz, MB_ERANGE, "discount must be in (0, 1], got %g",
                       (double)r->discount);
    if (r->n_terms < 0 || r->n_terms > MB_MAX_TERMS)
        return mb_fail(err, err_sz, MB_ERANGE, "terms: %d terms, at most %d", r->n_terms,
                       MB_MAX_TERMS);
    if (r->n_bounds < 0 || r->n_bounds > MB_MAX_BOUNDS)
        return mb_fail(err, err_sz, MB_ERANGE, "bounds: %d bounds, at most %d", r->n_bounds,
                       MB_MAX_BOUNDS);
    for (int i = 0; i < r->n_terms; i++) {
        const mb_reward_term *t = &r->terms[i];
        if (!isfinite(t->weight))
            return mb_fail(err, err_sz, MB_EINVAL, "terms[%d].weight is not finite", i);
        mb_status st;
        switch (t->type) {
        case MB_TERM_LINEAR:
            if (t->n_idx != 1)
                return mb_fail(err, err_sz, MB_EINVAL, "terms[%d]: linear takes one index", i);
            if ((st = reward__check_idx(t->idx, 1, obs_dim, i, "index", err, err_sz))) return st;
            break;
        case MB_TERM_QUADRATIC:
        case MB_TERM_NORM:
            if (t->n_idx < 1 || t->n_idx > MB_MAX_TERM_IDX)
                return mb_fail(err, err_sz, MB_ERANGE, "terms[%d].indices: 1..%d entries, got %d",
                               i, MB_MAX_TERM_IDX, t->n_idx);
            if ((st = reward__check_idx(t->idx, t->n_idx, obs_dim, i, "indices", err, err_sz)))
                return st;
            if (t->type == MB_TERM_QUADRATIC && t->n_other != 0)
                return mb_fail(err, err_sz, MB_EINVAL,
                               "terms[%d]: other_indices only for norm terms", i);
            if (t->n_other != 0) {
                if (t->n_other != t->n_idx)
                    return mb_fail(err, err_sz, MB_EINVAL,
                                   "terms[%d].other_indices: %d entries, indices has %d", i,
                                   t->n_other, t->n_idx);
                if ((st = reward__check_idx(t->other, t->n_other, obs_dim, i, "other_indices",
                                            err, err_sz)))
                    return st;
            } else {
                for (int j = 0; j < t->n_idx; j++)
                    if (!isfinite(t->target[j]))
                        return mb_fail(err, err_sz, MB_EINVAL,
                                       "terms[%d].target[%d] is not finite", i, j);
            }
            break;
        case MB_TERM_ACTION_L2:
        case MB_TERM_CONSTANT:
            break;
        default:
            return mb_fail(err, err_sz, MB_EINVAL, "terms[%d]: unknown type %d", i, (int)t->type);
        }
    }
    for (int i = 0; i < r->n_bounds; i++) {
        const mb_bound *b = &r->bounds[i];
        if (b->index < 0 || b->index >= obs_dim)
            return mb_fail(err, err_sz, MB_EINVAL, "bounds[%d].index = %d is outside [0, %d)", i,
                           b->index, obs_dim);
        if (!b->has_min && !b->has_max)
            return mb_fail(err, err_sz, MB_EINVAL, "bounds[%d]: needs min or max", i);
        if ((b->has_min && !isfinite(b->min)) || (b->has_max && !isfinite(b->max)))
            return mb_fail(err, err_sz, MB_EINVAL, "bounds[%d]: limits must be finite", i);
        if (b->has_min && b->has_max && !(b->min < b->max))
            return mb_fail(err, err_sz, MB_EINVAL, "bounds[%d]: min must be below max", i);
    }
    return MB_OK;
}

mb_status mb_reward_set_target(mb_reward_spec *r, int term, const float *target, int n,
                               char *err, size_t err_sz) {
    if (!r || term < 0 || term >= r->n_terms)
        return mb_fail(err, err_sz, MB_EINVAL, "goal: no term %d", term);
    mb_reward_term *t = &r->terms[term];
    if ((t->type != MB_TERM_QUADRATIC && t->type != MB_TERM_NORM) || t->n_other != 0)
        return mb_fail(err, err_sz, MB_EINVAL, "goal: term %d has no target", term);
    if (!target || n != t->n_idx)
        return mb_fail(err, err_sz, MB_EINVAL, "goal: term %d takes %d target entries, got %d",
                       term, t->n_idx, n);
    for (int j = 0; j < n; j++)
        if (!isfinite(target[j]))
            return mb_fail(err, err_sz, MB_EINVAL, "goal: target[%d] is not finite", j);
    for (int j = 0; j < n; j++) t->target[j] = target[j];
    return MB_OK;
}

/* One row's declared terms; `alive_bonus` is 0 on the terminating step. */
static float reward__terms(const mb_reward_spec *r, int act_dim, const float *s, const float *a,
                           int alive_bonus) {
    float sum = 0.0f;
    for (int i = 0; i < r->n_terms; i++) {
        const mb_reward_term *t = &r->terms[i];
        switch (t->type) {
        case MB_TERM_LINEAR:
            sum += t->weight * s[t->idx[0]];
            break;
        case MB_TERM_QUADRATIC: {
            float q = 0.0f;
            for (int j = 0; j < t->n_idx; j++) {
                float d = s[t->idx[j]] - t->target[j];
                q += d * d;
            }
            sum -= t->weight * q;
            break;
        }
        case MB_TERM_NORM: {
            float q = 0.0f;
            for (int j = 0; j < t->n_idx; j++) {
                float d = s[t->idx[j]] - (t->n_other ? s[t->other[j]] : t->target[j]);
                q += d * d;
            }
            sum -= t->weight * sqrtf(q);
            break;
        }
        case MB_TERM_ACTION_L2: {
            float q = 0.0f;
            for (int j = 0; j < act_dim; j++) q += a[j] * a[j];
            sum -= t->weight * q;
            break;
        }
        case MB_TERM_CONSTANT:
            if (alive_bonus) sum += t->weight;
            break;
        }
    }
    return sum;
}

static int reward__alive(const mb_reward_spec *r, const float *s) {
    for (int i = 0; i < r->n_bounds; i++) {
        const mb_bound *b = &r->bounds[i];
        float v = s[b->index];
        /* Written so that NaN terminates: a diverged particle earns nothing. */
        if (b->has_min && !(v > b->min)) return 0;
        if (b->has_max && !(v < b->max)) return 0;
    }
    return 1;
}

void mb_reward_step_strided(const mb_reward_spec *r, int obs_dim, int act_dim, size_t n,
                            const float *next_obs, size_t obs_stride, const float *act,
                            size_t act_stride, const float *learned, size_t learned_stride,
                            uint8_t *alive, float *reward) {
    (void)obs_dim;
    for (size_t i = 0; i < n; i++) {
        if (!alive[i]) {
            reward[i] = 0.0f;
            continue;
        }
        const float *s = next_obs + i * obs_stride;
        int still = reward__alive(r, s);
        float v = learned ? learned[i * learned_stride] : 0.0f;
        v += reward__terms(r, act_dim, s, act + i * act_stride, still);
        reward[i] = v;
        alive[i] = (uint8_t)still;
    }
}

void mb_reward_step(const mb_reward_spec *r, int obs_dim, int act_dim, size_t n,
                    const float *next_obs, const float *act, const float *learned,
                    uint8_t *alive, float *reward) {
    mb_reward_step_strided(r, obs_dim, act_dim, n, next_obs, (size_t)obs_dim, act,
                           (size_t)act_dim, learned, 1, alive, reward);
}
