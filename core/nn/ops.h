/* ops.h: activations (vectorised at the run-time level, base/cpu.h) and
 * dense helpers over cblas_sgemm (row-major; tests and tools only).
 *
 * Shapes are row-major; `n` rows. No allocation, no threads: callers split
 * work across mb_pool workers. Not for: anything that knows about ensembles. */
#ifndef MB_OPS_H
#define MB_OPS_H

#include <stddef.h>

typedef enum { MB_ACT_SILU = 0, MB_ACT_RELU, MB_ACT_TANH } mb_activation;

/* "silu" | "relu" | "tanh" -> 0 and *out set; -1 if unknown. */
int mb_activation_parse(const char *name, mb_activation *out);
const char *mb_activation_name(mb_activation a);

/* y = x W + b.  x: (n, in), W: (in, out), b: (out) or NULL, y: (n, out). */
void mb_linear_forward(const float *x, const float *W, const float *b, float *y,
                       size_t n, int in, int out);
/* Given dy: (n, out): dW += x^T dy (in, out); db += colsum(dy) (out) if db;
 * dx = dy W^T (n, in) if dx != NULL (overwritten, not accumulated). */
void mb_linear_backward(const float *x, const float *W, const float *dy,
                        float *dW, float *db, float *dx, size_t n, int in, int out);

/* y = act(x), elementwise over count entries; y may alias x. */
void mb_act_forward(mb_activation a, const float *x, float *y, size_t count);
/* dx = dy * act'(x) where x is the pre-activation; dx may alias dy. */
void mb_act_backward(mb_activation a, const float *x, const float *dy, float *dx,
                     size_t count);

/* Numerically stable softplus and its derivative (the logistic sigmoid). */
float mb_softplus(float x);
float mb_sigmoid(float x);

/* Vectorised exp: y[i] ~= expf(x[i]) for count entries (y may alias x).
 * Inputs are clamped to [-87, 88] (no inf, no denormal results); relative
 * error <= 1.5e-7 against exp inside that range (about one ulp) (checked in test_ops). The
 * activations use it so the hot loops make no libm call per element. */
void mb_exp_approx(const float *x, float *y, size_t count);
/* Vectorised softplus and sigmoid over arrays (y may alias x), built on
 * mb_exp_approx; absolute error <= 1e-6 against mb_softplus / mb_sigmoid
 * (checked in test_ops). */
void mb_softplus_approx(const float *x, float *y, size_t count);
void mb_sigmoid_approx(const float *x, float *y, size_t count);

/* Fused bias + activation after an sgemm, one pass over z:
 *   z: (n, out) pre-activation without bias; b: (out) or NULL
 *   z += b (row-wise); h = act(z). h: (n, out); h may alias z only when the
 *   pre-activation is not needed afterwards (inference). */
void mb_bias_act_forward(mb_activation a, float *z, const float *b, float *h,
                         size_t n, int out);
/* Fused activation backward + bias gradient, one pass:
 *   dz = dh * act'(z) (n, out), dz may alias dh; db += colsum(dz) if db. */
void mb_act_backward_bias(mb_activation a, const float *z, const float *dh, float *dz,
                          float *db, size_t n, int out);

/* Training variants that keep what the backward needs, so the backward
 * evaluates no exp or division:
 *   forward: h = act(z + b) (n, out); aux (n, out) = sigmoid(z + b) for SiLU
 *            (aux unused, may be NULL, for ReLU and tanh); b may be NULL;
 *            z is only read.
 *   backward: dz = dh * act'(.) from h and aux (n, out), dz may alias dh;
 *            db += colsum(dz) if db. */
void mb_bias_act_forward_aux(mb_activation a, const float *z, const float *b, float *h,
                             float *aux, size_t n, int out);
void mb_act_backward_aux(mb_activation a, const float *h, const float *aux, const float *dh,
                         float *dz, float *db, size_t n, int out);

/* y += a * x over n floats; returns sum of x^2 (weight decay of a matrix). */
double mb_axpy_sumsq(float a, const float *x, float *y, size_t n);

#endif
