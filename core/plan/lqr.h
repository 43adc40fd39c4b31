/* lqr.h: the finite-horizon linear-quadratic regulator by the backward
 * Riccati recursion, for a time-varying linear model with a quadratic cost
 * (the lectures' LQR, and the backward pass of iLQR and LQR-FLM).
 *
 * Problem (minimise; n states, m controls, H steps):
 *   x_{t+1} = A_t x_t + B_t u_t + c_t                         t = 0..H-1
 *   J = sum_t [ 1/2 x'Q_t x + 1/2 u'R_t u + u'N_t x + q_t'x + r_t'u ]
 *       + 1/2 x_H'Q_H x_H + q_H'x_H
 * Solution: u_t = K_t x_t + k_t, and the value V_t(x) = 1/2 x'P_t x + p_t'x
 * + const. With
 *   Qxx = Q + A'PA, Quu = R + B'PB + mu I, Qux = N + B'PA,
 *   qx = q + A'(p + P c), qu = r + B'(p + P c):
 *   K = -Quu^-1 Qux, k = -Quu^-1 qu,
 *   P = Qxx + K'Quu K + K'Qux + Qux'K, p = qx + K'Quu k + K'qu + Qux'k.
 * mu >= 0 is iLQR's Levenberg-Marquardt term. With a box lo_t <= u_t <= hi_t
 * on the *feedforward* k_t (iLQR's control deviations), k_t solves the box
 * QP min 1/2 k'Quu k + qu'k by a primal active-set method, and the clamped
 * rows of K_t are zero (Tassa, Mansard and Todorov 2014).
 * All in double. No allocation in mb_lqr_backward (mb_lqr_ws holds the
 * scratch for n, m).
 * Not for: linearising a model (ilqr.c, lqr_flm.c do). */
#ifndef MB_LQR_H
#define MB_LQR_H

#include <stddef.h>

#include "base/common.h"

typedef struct {
    int n, m, H;
    const double *A;  /* (H, n, n) */
    const double *B;  /* (H, n, m) */
    const double *c;  /* (H, n) or NULL (zero) */
    const double *Q;  /* (H + 1, n, n): Q_0..Q_H (Q_0 only shifts the value) */
    const double *R;  /* (H, m, m) */
    const double *N;  /* (H, m, n) or NULL */
    const double *q;  /* (H + 1, n) or NULL */
    const double *r;  /* (H, m) or NULL */
    const double *lo, *hi; /* (H, m) box on k_t, or both NULL */
} mb_lqr_problem;

typedef struct {
    double *K;   /* (H, m, n) */
    double *k;   /* (H, m) */
    double *P;   /* (n, n) P_0 on return, or NULL if not wanted */
    double *p;   /* (n) p_0 on return, or NULL */
    /* Expected change of J along (alpha k): alpha dV[0] + alpha^2 dV[1]
     * (iLQR's line search). */
    double dV[2];
    double *Quu; /* (H, m, m) Quu + mu I per step (LQR-FLM's covariance), or NULL */
} mb_lqr_solution;

typedef struct mb_lqr_ws mb_lqr_ws;
/* Scratch for n states and m controls (1..MB_MAX_OBS_DIM, 1..MB_MAX_ACT_DIM);
 * NULL on bad sizes or allocation failure. */
mb_lqr_ws *mb_lqr_ws_new(int n, int m);
void mb_lqr_ws_free(mb_lqr_ws *ws);
/* Bytes mb_lqr_ws_new(n, m) allocates (0 for sizes it refuses). */
size_t mb_lqr_ws_bytes(int n, int m);

/* The backward recursion. Returns MB_OK; MB_ESTATE when some Quu + mu I is
 * not positive definite (iLQR raises mu and retries; K, k are then partial);
 * MB_EINVAL on sizes that do not match ws. */
mb_status mb_lqr_backward(const mb_lqr_problem *pb, double mu, mb_lqr_ws *ws,
                          mb_lqr_solution *sol, char *err, size_t err_sz);

/* Cholesky solve helpers shared with LQR-FLM: L (m, m) lower factor of the
 * symmetric S (m, m) in place; 0 on success, -1 if S is not positive
 * definite. x = S^-1 b for one right-hand side b (m), x may alias b. */
int mb_chol(double *S, int m);
void mb_chol_solve(const double *L, int m, const double *b, double *x);

#endif
