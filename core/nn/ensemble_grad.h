/* ensemble_grad.h: derivatives of the ensemble's predicted mean with respect
 * to its raw input (obs then action), for planners that differentiate
 * through the model (iLQR, gradient shooting) and for backpropagation
 * through time (BPTT: policy learning through the model).
 *
 * The function differentiated is, for one raw input row x (in_dim),
 *     y(x) = (1/k) sum_{j<k} mean_{members[j]}(x)        (out_dim, raw units)
 * i.e. one member's mean (k = 1) or the mean over several members (the
 * elites: members = e->elites, k = e->n_elites). Both normalisers are part
 * of it: mean = (W-chain of (x - in_mean) / in_std) * out_std + out_mean, so
 * the derivatives are in raw units on both sides. The log-variance head is
 * not differentiated.
 *
 *   VJP (reverse mode, batched): gx = gy^T dy/dx per row, one forward with
 *     kept activations and one backward per member, chunked over rows.
 *   Jacobian: J = dy/dx (out_dim x in_dim) per row, built from the VJP with
 *     the out_dim unit cotangents (out_dim VJP rows per input row).
 *
 * Description vs state: the ensemble is only read (const); mb_ens_grad_ws is
 * scratch owned by the caller, one per concurrent caller. Its size does not
 * depend on n (rows go through in chunks). No allocation in the calls.
 * Numerics: float, same kernels as training (mb_gemm_nn, the activation's
 * saved state); checked against central finite differences of a double
 * reference in tests/core/test_ensemble_grad.c.
 * Not for: parameter gradients (ensemble.c's mb_ensemble_loss_grad). */
#ifndef MB_ENSEMBLE_GRAD_H
#define MB_ENSEMBLE_GRAD_H

#include <stddef.h>

#include "nn/ensemble.h"

typedef struct mb_ens_grad_ws mb_ens_grad_ws;

/* Scratch for ensembles of this spec (any n). NULL on an invalid spec or
 * allocation failure. */
mb_ens_grad_ws *mb_ens_grad_ws_new(const mb_ensemble_spec *spec);
void mb_ens_grad_ws_free(mb_ens_grad_ws *ws);
/* Bytes mb_ens_grad_ws_new(spec) allocates (0 for an invalid spec). */
size_t mb_ens_grad_ws_bytes(const mb_ensemble_spec *spec);

/* Vector-Jacobian product through k members (members[j], j < k; members ==
 * NULL means all, k ignored), n rows.
 *   x:    (n, in_dim)  raw inputs, obs then action
 *   gy:   (n, out_dim) cotangent on y (raw output units)
 *   mean: (n, out_dim) y itself (the members' averaged mean), or NULL
 *   gx:   (n, in_dim)  out: gy^T dy/dx (raw input units), overwritten
 * gx may not alias x or gy. */
void mb_ensemble_vjp(const mb_ensemble *e, mb_ens_grad_ws *ws, const int *members, int k,
                     const float *x, const float *gy, size_t n, float *mean, float *gx);

/* Full Jacobian per row, from the VJP with unit cotangents.
 *   x:    (n, in_dim) raw inputs
 *   mean: (n, out_dim) y, or NULL
 *   J:    (n, out_dim, in_dim) out: J[r][o][i] = d y_o / d x_i at row r
 * Cost: out_dim VJP rows per input row. */
void mb_ensemble_jacobian(const mb_ensemble *e, mb_ens_grad_ws *ws, const int *members, int k,
                          const float *x, size_t n, float *mean, float *J);

#endif
