/* policy.h: the tanh-squashed Gaussian policy of SAC (Haarnoja et al. 2018).
 *
 * An MLP (mlp.h) maps obs (obs_dim) to a head of 2 * act_dim: the mean mu
 * and a raw log-std, bounded smoothly into [log_std_min, log_std_max]:
 *     log_std = min + (max - min) * (tanh(raw) + 1) / 2.
 * With standard normal noise eps: u = mu + exp(log_std) * eps,
 *     action = center + scale * tanh(u),
 * center = (high + low) / 2, scale = (high - low) / 2 per dimension, and
 *     log pi(action) = sum_j [ -eps_j^2 / 2 - log_std_j - log(2 pi) / 2
 *                              - log scale_j - log(1 - tanh(u_j)^2) ],
 * the last term (the squash correction) computed stably as
 * 2 (log 2 - u - softplus(-2 u)). Without noise (eps NULL) u = mu: the
 * deterministic action, and the density at it.
 * The backward takes d loss / d action and d loss / d log pi (the
 * reparameterisation trick: eps held fixed) and gives the parameters'
 * gradient and, if asked, d loss / d obs (backprop through a model).
 * Description vs state: mb_policy_spec is const; mb_policy owns one float
 * block (the MLP's layout, mlp.h); mb_policy_ws is per-caller scratch.
 * Not for: training loops (learn/sac.c, learn/distill.c, learn/bptt.c). */
#ifndef MB_POLICY_H
#define MB_POLICY_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "nn/mlp.h"

typedef struct {
    int obs_dim, act_dim;          /* 1..MB_MAX_OBS_DIM, 1..MB_MAX_ACT_DIM */
    int n_hidden;                  /* 1..MB_MAX_LAYERS */
    int hidden[MB_MAX_LAYERS];     /* 1..MB_MAX_HIDDEN */
    mb_activation activation;
    float log_std_min, log_std_max; /* min < max, both in [-20, 5] */
    float act_low[MB_MAX_ACT_DIM], act_high[MB_MAX_ACT_DIM]; /* low < high, finite */
} mb_policy_spec;

/* 2 x 256 ReLU (SAC), log-std in [-5, 2], bounds [-1, 1]; dims left 0. */
void mb_policy_spec_default(mb_policy_spec *s);
mb_status mb_policy_spec_check(const mb_policy_spec *s, char *err, size_t err_sz);
/* The body's MLP spec (obs_dim -> 2 * act_dim). */
void mb_policy_mlp_spec(const mb_policy_spec *s, mb_mlp_spec *out);

typedef struct {
    mb_policy_spec spec;
    mb_mlp_spec mlp;
    size_t n_params;
    float *params; /* (n_params), owned; layout of mlp.h */
} mb_policy;

/* Allocates and initialises (mb_mlp_init, head scaled by 0.1 so the first
 * actions sit near the bounds' centre). Same seed, same parameters. */
mb_status mb_policy_init(mb_policy *p, const mb_policy_spec *s, uint64_t seed, char *err,
                         size_t err_sz);
void mb_policy_free(mb_policy *p);
/* dst = deep copy of src (dst uninitialised or freed). */
mb_status mb_policy_copy(mb_policy *dst, const mb_policy *src, char *err, size_t err_sz);

typedef struct mb_policy_ws mb_policy_ws;
/* Scratch for at most max_rows rows per training call (any number for
 * mb_policy_act). NULL on a bad spec or allocation failure. */
mb_policy_ws *mb_policy_ws_new(const mb_policy_spec *s, size_t max_rows);
void mb_policy_ws_free(mb_policy_ws *ws);
/* Bytes mb_policy_ws_new(s, max_rows) allocates (0 where it refuses). */
size_t mb_policy_ws_bytes(const mb_policy_spec *s, size_t max_rows);

/* Inference: action (n, act_dim) for obs (n, obs_dim); eps (n, act_dim)
 * standard normal noise for a sample, or NULL for the deterministic action
 * center + scale * tanh(mu). logp (n) may be NULL. Any n. */
void mb_policy_act(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                   const float *eps, float *action, float *logp);
/* Training forward: the same outputs, keeping what the backward needs.
 * n <= the workspace's max_rows; obs and eps stay unchanged until then. */
void mb_policy_forward_train(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                             const float *eps, float *action, float *logp);
/* Backward of the last forward_train on ws.
 *   g_action: (n, act_dim) d loss / d action, or NULL (zero)
 *   g_logp:   (n) d loss / d log pi, or NULL (zero)
 *   grad:     (n_params) overwritten (accumulate 0) or added to (1)
 *   g_obs:    (n, obs_dim) d loss / d obs, overwritten; NULL if not wanted */
void mb_policy_backward(const mb_policy *p, mb_policy_ws *ws, const float *obs, size_t n,
                        const float *g_action, const float *g_logp, float *grad, int accumulate,
                        float *g_obs);

#endif
