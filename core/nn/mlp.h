/* mlp.h: a plain multilayer perceptron on the ensemble's kernels, the body
 * of the policy, Q and value networks (policy.h, qnet.h, vnet.h).
 *
 * in_dim inputs through n_hidden hidden layers (fused bias + activation) to
 * out_dim linear outputs. Parameters are one float block (layout below);
 * gradients and Adam's moments share it, so the optimiser is one flat loop.
 *   W_0 (in_dim, h_0), b_0 (h_0), W_1 (h_0, h_1), b_1 (h_1), ...,
 *   W_L (h_{L-1}, out_dim), b_L (out_dim)
 * Description vs state: mb_mlp_spec is small and const; the block belongs
 * to whoever holds the network; mb_mlp_ws is per-caller scratch (one per
 * concurrent call), sized once from the spec and a row count.
 * Numerics: inference is one mb_gemm_nn_bias_act per hidden layer (the
 * activation in the kernel's epilogue) and one mb_gemm_nn + bias for the
 * output; training keeps each layer's activation and the activation's
 * saved state (mb_bias_act_forward_aux) so the backward evaluates no exp;
 * the weight gradient is mb_gemm_tn (x^T dy) and the input gradient
 * dy W^T runs as mb_gemm_nn against W^T transposed into the workspace.
 * Not for: what the outputs mean (policy.c, qnet.c, vnet.c), threads (the
 * callers split rows over the pool, one workspace per piece). */
#ifndef MB_MLP_H
#define MB_MLP_H

#include <stddef.h>

#include "base/common.h"
#include "base/rng.h"
#include "nn/ops.h"

typedef struct {
    int in_dim, out_dim;          /* 1..MB_MAX_HIDDEN each */
    int n_hidden;                 /* 1..MB_MAX_LAYERS */
    int hidden[MB_MAX_LAYERS];    /* 1..MB_MAX_HIDDEN */
    mb_activation activation;
} mb_mlp_spec;

/* Checks dims and activation; `what` names the network in the message
 * (e.g. "policy"). */
mb_status mb_mlp_spec_check(const mb_mlp_spec *s, const char *what, char *err, size_t err_sz);
/* Floats in the parameter block. */
size_t mb_mlp_size(const mb_mlp_spec *s);
/* FLOPs of one forward row (2 per multiply-add over every layer). */
double mb_mlp_flops_per_row(const mb_mlp_spec *s);
/* Offsets of W_l and b_l (l in [0, n_hidden], n_hidden = the output layer)
 * within the block. */
size_t mb_mlp_W_offset(const mb_mlp_spec *s, int layer);
size_t mb_mlp_b_offset(const mb_mlp_spec *s, int layer);

/* Fills params (mb_mlp_size floats): every W_l ~ U(-1/sqrt(fan_in),
 * 1/sqrt(fan_in)) (PyTorch's nn.Linear), biases 0, then the output layer's
 * weights scaled by out_scale (e.g. 0.1 for a policy head that starts near
 * its mean). Same rng state, same block. */
void mb_mlp_init(const mb_mlp_spec *s, float *params, mb_rng *rng, float out_scale);

typedef struct mb_mlp_ws mb_mlp_ws;
/* Scratch for calls of at most max_rows rows (training) or any number of
 * rows (inference, in chunks of max_rows). NULL on a bad spec, max_rows 0
 * or allocation failure. */
mb_mlp_ws *mb_mlp_ws_new(const mb_mlp_spec *s, size_t max_rows);
void mb_mlp_ws_free(mb_mlp_ws *ws);
/* Bytes mb_mlp_ws_new(s, max_rows) allocates (0 where it refuses). */
size_t mb_mlp_ws_bytes(const mb_mlp_spec *s, size_t max_rows);
size_t mb_mlp_ws_rows(const mb_mlp_ws *ws);

/* Inference: y (n, out_dim) = f(x (n, in_dim)), any n (chunks of the
 * workspace's rows). x and y may not alias. */
void mb_mlp_forward(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws, const float *x,
                    size_t n, float *y);
/* Training forward: same y, keeping what mb_mlp_backward needs in ws.
 * n <= mb_mlp_ws_rows(ws); x must stay unchanged until the backward. */
void mb_mlp_forward_train(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws,
                          const float *x, size_t n, float *y);
/* Backward of the last mb_mlp_forward_train on ws (same params, x, n).
 *   dy: (n, out_dim) d loss / d y (read only)
 *   grad: (mb_mlp_size) d loss / d params, overwritten (accumulate 0) or
 *         added to (accumulate 1); NULL: only the input gradient (no
 *         weight-gradient products are run)
 *   dx: (n, in_dim) d loss / d x, overwritten; NULL when not wanted */
void mb_mlp_backward(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws, const float *x,
                     size_t n, const float *dy, float *grad, int accumulate, float *dx);

#endif
