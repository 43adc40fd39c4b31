/* qnet.h: twin Q-functions with target copies (TD3 / SAC's clipped double
 * Q: Fujimoto et al. 2018, Haarnoja et al. 2018).
 *
 * Two MLPs (mlp.h) Q_k(obs, action) -> 1, k = 0, 1, their parameters one
 * block (Q_0 then Q_1, each in the MLP layout) so the critics share one
 * Adam; the target copies are a second block of the same layout, moved
 * toward the online one by Polyak averaging:
 *     target = (1 - tau) target + tau online.
 * Inputs are the concatenation (obs, action) in raw units.
 * Description vs state: mb_qnet_spec is const; mb_qnet owns both blocks;
 * mb_qnet_ws is per-caller scratch (one MLP workspace per twin, so both
 * can be trained from one forward each).
 * Not for: the TD loss (learn/sac.c). */
#ifndef MB_QNET_H
#define MB_QNET_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "nn/mlp.h"

typedef struct {
    int obs_dim, act_dim;
    int n_hidden;
    int hidden[MB_MAX_LAYERS];
    mb_activation activation;
} mb_qnet_spec;

/* The MLP of one twin: (obs_dim + act_dim) -> 1. */
void mb_qnet_mlp_spec(const mb_qnet_spec *s, mb_mlp_spec *out);
mb_status mb_qnet_spec_check(const mb_qnet_spec *s, char *err, size_t err_sz);

typedef struct {
    mb_qnet_spec spec;
    mb_mlp_spec mlp;
    size_t net_size;   /* floats of one twin */
    size_t n_params;   /* 2 * net_size */
    float *params;     /* (2, net_size) online twins, owned */
    float *target;     /* (2, net_size) target twins, owned */
} mb_qnet;

/* Allocates; twins initialised independently (mb_mlp_init), targets equal
 * to them. Same seed, same blocks. */
mb_status mb_qnet_init(mb_qnet *q, const mb_qnet_spec *s, uint64_t seed, char *err, size_t err_sz);
void mb_qnet_free(mb_qnet *q);
mb_status mb_qnet_copy(mb_qnet *dst, const mb_qnet *src, char *err, size_t err_sz);
/* target = (1 - tau) target + tau params over both twins; tau in [0, 1]. */
void mb_qnet_polyak(mb_qnet *q, float tau);

typedef struct mb_qnet_ws mb_qnet_ws;
mb_qnet_ws *mb_qnet_ws_new(const mb_qnet_spec *s, size_t max_rows);
void mb_qnet_ws_free(mb_qnet_ws *ws);

/* Inference of twin k (0 or 1) of the online (target 0) or target block:
 * q (n) for obs (n, obs_dim), act (n, act_dim); any n. */
void mb_qnet_forward(const mb_qnet *q, mb_qnet_ws *ws, int k, int target, const float *obs,
                     const float *act, size_t n, float *out);
/* Training forward of online twin k (n <= max_rows), kept per twin in ws. */
void mb_qnet_forward_train(const mb_qnet *q, mb_qnet_ws *ws, int k, const float *obs,
                           const float *act, size_t n, float *out);
/* Backward of twin k's last forward_train.
 *   g_q: (n) d loss / d Q_k
 *   grad: (n_params) the twins' gradient block: twin k's slice is
 *         overwritten (accumulate 0) or added to (1), the other untouched;
 *         NULL: input gradients only
 *   g_obs (n, obs_dim), g_act (n, act_dim): input gradients, overwritten;
 *         either may be NULL */
void mb_qnet_backward(const mb_qnet *q, mb_qnet_ws *ws, int k, size_t n, const float *g_q,
                      float *grad, int accumulate, float *g_obs, float *g_act);

#endif
