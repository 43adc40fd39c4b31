/* bptt.h: policy learning by backpropagation through the model (the
 * lectures' "version 2.0"; PILCO / Dreamer-style analytic gradients).
 *
 * From n start states s_0 drawn from the replay buffer, the deterministic
 * policy a_t = pi(s_t) is rolled H steps through the ensemble's mean
 * (the mean over the elite members: a smooth, deterministic model):
 *     s_{t+1} = s_t + mean_dyn(s_t, a_t),
 *     r_t = mean_rew(s_t, a_t) [when rw->use_learned and the head exists]
 *           + declared terms (s_{t+1}, a_t) (plan/reward.h),
 *     J = mean over rows of sum_{t<H} gamma^t alive_t r_t
 *         [+ gamma^H V(s_H) with a value network],
 * alive_t the declared bounds' mask of the forward pass (held constant).
 * The gradient dJ/dtheta runs backward through time: the ensemble's
 * vector-Jacobian products w.r.t. its inputs (nn/ensemble_grad.h), the
 * declared terms' analytic derivatives, the identity path of s + delta,
 * and the policy's backward with its d/d obs (nn/policy.h). Adam then
 * ascends J (descends -J), the gradient clipped to max_grad_norm.
 * The stats report the gradient's norm, the quantity whose growth or
 * vanishing with H the lectures warn about (bench policy prints it per H).
 * Description vs state: mb_bptt_cfg const; the policy, its Adam and the
 * value network are the caller's; mb_bptt_ws is scratch (H policy
 * workspaces: activations are kept for every step).
 * Not for: known dynamics (no derivatives: MB_EINVAL). */
#ifndef MB_BPTT_H
#define MB_BPTT_H

#include "learn/buffer.h"
#include "nn/ensemble_grad.h"
#include "nn/policy.h"
#include "nn/vnet.h"
#include "plan/dynamics.h"
#include "plan/reward.h"

#define MB_BPTT_MAX_HORIZON 200

typedef struct {
    int horizon;         /* H, 1..MB_BPTT_MAX_HORIZON; 10 */
    int batch_size;      /* start states per step, 1..65536; 256 */
    float gamma;         /* (0, 1]; 0.99 */
    float lr;            /* Adam step size; 3e-4 */
    float max_grad_norm; /* clip (global L2 norm); 0 = off; 100 */
    int use_value;       /* 1: add gamma^H V(s_H) (needs a value net); 0 */
} mb_bptt_cfg;

void mb_bptt_cfg_default(mb_bptt_cfg *c);
mb_status mb_bptt_cfg_check(const mb_bptt_cfg *c, char *err, size_t err_sz);

typedef struct mb_bptt_ws mb_bptt_ws;
/* v may be NULL (then use_value must be 0). NULL on allocation failure or
 * dynamics without an ensemble. */
mb_bptt_ws *mb_bptt_ws_new(const mb_bptt_cfg *cfg, const mb_policy *pi, const mb_vnet *v,
                           const mb_dynamics *dyn);
void mb_bptt_ws_free(mb_bptt_ws *ws);

typedef struct {
    float ret;        /* J: mean discounted model return (+ terminal value) */
    float grad_norm;  /* ||dJ/dtheta|| before clipping */
    float obs_grad_norm; /* mean over rows of ||dJ/ds_0|| */
} mb_bptt_stats;

/* J and grad = dJ/dtheta (n_params, overwritten) from start states obs0
 * (n, obs_dim), n <= batch_size. rw may be NULL. */
mb_status mb_bptt_grad(const mb_policy *pi, const mb_vnet *v, const mb_bptt_cfg *cfg,
                       const mb_dynamics *dyn, const mb_reward_spec *rw, const float *obs0,
                       size_t n, mb_bptt_ws *ws, float *grad, mb_bptt_stats *stats, char *err,
                       size_t err_sz);
/* One step: batch_size start states from buf, mb_bptt_grad, clip, Adam
 * ascent on J. MB_ESTATE on an empty buffer, MB_ERANGE on a non-finite J
 * or gradient (nothing applied). */
mb_status mb_bptt_step(mb_policy *pi, mb_adam *opt, const mb_vnet *v, const mb_bptt_cfg *cfg,
                       const mb_buffer *buf, const mb_dynamics *dyn, const mb_reward_spec *rw,
                       mb_bptt_ws *ws, mb_rng *rng, mb_bptt_stats *stats, char *err, size_t err_sz);

#endif
