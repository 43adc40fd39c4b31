/* vnet.h: a state-value network V(obs) -> 1 (an MLP, mlp.h): the learned
 * terminal value of MPC ("terminal_value": gamma^H V(s_H)) and the soft
 * value SAC fits alongside its critics.
 * Description vs state: mb_vnet_spec is const; mb_vnet owns its block;
 * scratch is an mb_mlp_ws made from mb_vnet's mlp spec.
 * Not for: the regression target (learn/sac.c). */
#ifndef MB_VNET_H
#define MB_VNET_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "nn/mlp.h"

typedef struct {
    int obs_dim;
    int n_hidden;
    int hidden[MB_MAX_LAYERS];
    mb_activation activation;
} mb_vnet_spec;

void mb_vnet_mlp_spec(const mb_vnet_spec *s, mb_mlp_spec *out);
mb_status mb_vnet_spec_check(const mb_vnet_spec *s, char *err, size_t err_sz);

typedef struct {
    mb_vnet_spec spec;
    mb_mlp_spec mlp;
    size_t n_params;
    float *params; /* (n_params), owned; layout of mlp.h */
} mb_vnet;

mb_status mb_vnet_init(mb_vnet *v, const mb_vnet_spec *s, uint64_t seed, char *err, size_t err_sz);
void mb_vnet_free(mb_vnet *v);
mb_status mb_vnet_copy(mb_vnet *dst, const mb_vnet *src, char *err, size_t err_sz);
/* Inference: out (n) = V(obs (n, obs_dim)); ws from mb_vnet_ws_new. */
void mb_vnet_forward(const mb_vnet *v, mb_mlp_ws *ws, const float *obs, size_t n, float *out);
mb_mlp_ws *mb_vnet_ws_new(const mb_vnet_spec *s, size_t max_rows);

#endif
