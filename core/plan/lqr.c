/* lqr.c: the backward Riccati recursion with an optional box on the
 * feedforward term (contract and formulas in lqr.h).
 *
 * Dense double loops: n <= 256 and m <= 64, and callers bound H n^3 (the
 * cost of one recursion) before calling. The box QP per step is a primal
 * active-set method: solve on the free controls, clamp those that leave the
 * box, release a clamped one whose gradient points inside; at most 4 m + 8
 * rounds (m is small; each round is one m x m Cholesky).
 * Not for: models or costs (the callers linearise and expand them). */
#include "plan/lqr.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mb_lqr_ws {
    int n, m;
    double *P, *p;          /* (n, n), (n) value of step t + 1 */
    double *PA, *PB;        /* (n, n), (n, m) */
    double *Qxx, *Quu, *Qux;/* (n, n), (m, m), (m, n) */
    double *Quu_reg;        /* (m, m) */
    double *qx, *qu, *pc;   /* (n), (m), (n) */
    double *L;              /* (m, m) Cholesky of the free block */
    double *tmp_m, *tmp_m2; /* (m) */
    double *tmp_n;          /* (n) */
    double *KQ;             /* (n, m) K' Quu */
    int *clamped, *free_idx;/* (m) */
    double *mem;
};

/* The doubles of the block (mb_lqr_ws_new's layout below). */
static size_t lqr__doubles(size_t N, size_t M) {
    return 3 * N * N + N + 3 * N * M + 4 * M * M + M * N + 2 * N + 3 * M + N;
}

size_t mb_lqr_ws_bytes(int n, int m) {
    if (n < 1 || n > MB_MAX_OBS_DIM || m < 1 || m > MB_MAX_ACT_DIM) return 0;
    return sizeof(mb_lqr_ws) + lqr__doubles((size_t)n, (size_t)m) * sizeof(double) +
           2 * (size_t)m * sizeof(int);
}

mb_lqr_ws *mb_lqr_ws_new(int n, int m) {
    if (n < 1 || n > MB_MAX_OBS_DIM || m < 1 || m > MB_MAX_ACT_DIM) return NULL;
    mb_lqr_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ws->n = n;
    ws->m = m;
    size_t N = (size_t)n, M = (size_t)m;
    ws->mem = calloc(lqr__doubles(N, M), sizeof(double));
    ws->clamped = calloc(2 * M, sizeof(int));
    if (!ws->mem || !ws->clamped) {
        mb_lqr_ws_free(ws);
        return NULL;
    }
    ws->free_idx = ws->clamped + M;
    double *q = ws->mem;
#define LQR_TAKE(f, cnt) ws->f = q; q += (cnt);
    LQR_TAKE(P, N * N) LQR_TAKE(p, N) LQR_TAKE(PA, N * N) LQR_TAKE(PB, N * M)
    LQR_TAKE(Qxx, N * N) LQR_TAKE(Quu, M * M) LQR_TAKE(Qux, M * N) LQR_TAKE(Quu_reg, M * M)
    LQR_TAKE(qx, N) LQR_TAKE(qu, M) LQR_TAKE(pc, N) LQR_TAKE(L, M * M) LQR_TAKE(tmp_m, M)
    LQR_TAKE(tmp_m2, M) LQR_TAKE(tmp_n, N) LQR_TAKE(KQ, N * M)
#undef LQR_TAKE
    return ws;
}

void mb_lqr_ws_free(mb_lqr_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    free(ws->clamped);
    free(ws);
}

int mb_chol(double *S, int m) {
    for (int j = 0; j < m; j++) {
        double d = S[j * m + j];
        for (int k = 0; k < j; k++) d -= S[j * m + k] * S[j * m + k];
        if (!(d > 0.0) || !isfinite(d)) return -1;
        d = sqrt(d);
        S[j * m + j] = d;
        for (int i = j + 1; i < m; i++) {
            double s = S[i * m + j];
            for (int k = 0; k < j; k++) s -= S[i * m + k] * S[j * m + k];
            S[i * m + j] = s / d;
        }
        for (int i = 0; i < j; i++) S[i * m + j] = 0.0;
    }
    return 0;
}

void mb_chol_solve(const double *L, int m, const double *b, double *x) {
    for (int i = 0; i < m; i++) {
        double s = b[i];
        for (int k = 0; k < i; k++) s -= L[i * m + k] * x[k];
        x[i] = s / L[i * m + i];
    }
    for (int i = m - 1; i >= 0; i--) {
        double s = x[i];
        for (int k = i + 1; k < m; k++) s -= L[k * m + i] * x[k];
        x[i] = s / L[i * m + i];
    }
}

/* Factors Quu_reg restricted to the free controls into ws->L (nf x nf).
 * Returns nf, or -1 if that block is not positive definite. */
static int lqr__factor_free(mb_lqr_ws *ws) {
    int m = ws->m, nf = 0;
    for (int i = 0; i < m; i++)
        if (!ws->clamped[i]) ws->free_idx[nf++] = i;
    for (int a = 0; a < nf; a++)
        for (int b = 0; b < nf; b++)
            ws->L[a * nf + b] = ws->Quu_reg[ws->free_idx[a] * m + ws->free_idx[b]];
    if (nf > 0 && mb_chol(ws->L, nf)) return -1;
    return nf;
}

/* k (m): argmin 1/2 k'Quu_reg k + qu'k over lo <= k <= hi (lo, hi may be
 * NULL: unconstrained). Leaves ws->clamped and the free factor in ws->L.
 * Returns nf (free controls) or -1 if not positive definite. */
static int lqr__box_qp(mb_lqr_ws *ws, const double *lo, const double *hi, double *k) {
    int m = ws->m;
    memset(ws->clamped, 0, (size_t)m * sizeof(int));
    for (int i = 0; i < m; i++) k[i] = 0.0;
    int nf = -1;
    for (int round = 0; round < 4 * m + 8; round++) {
        nf = lqr__factor_free(ws);
        if (nf < 0) return -1;
        /* free: Quu_ff k_f = -(qu_f + Quu_fc k_c) */
        for (int a = 0; a < nf; a++) {
            int i = ws->free_idx[a];
            double s = -ws->qu[i];
            for (int j = 0; j < m; j++)
                if (ws->clamped[j]) s -= ws->Quu_reg[i * m + j] * k[j];
            ws->tmp_m[a] = s;
        }
        if (nf > 0) mb_chol_solve(ws->L, nf, ws->tmp_m, ws->tmp_m);
        for (int a = 0; a < nf; a++) k[ws->free_idx[a]] = ws->tmp_m[a];
        if (!lo) return nf;
        int changed = 0;
        for (int a = 0; a < nf; a++) {
            int i = ws->free_idx[a];
            if (k[i] < lo[i]) { k[i] = lo[i]; ws->clamped[i] = 1; changed = 1; }
            else if (k[i] > hi[i]) { k[i] = hi[i]; ws->clamped[i] = 1; changed = 1; }
        }
        if (changed) continue;
        /* KKT for the clamped: at lo the gradient must be >= 0, at hi <= 0;
         * release the worst violator */
        int worst = -1;
        double wv = 1e-12;
        for (int i = 0; i < m; i++) {
            if (!ws->clamped[i]) continue;
            double g = ws->qu[i];
            for (int j = 0; j < m; j++) g += ws->Quu_reg[i * m + j] * k[j];
            double v = k[i] <= lo[i] ? -g : g;
            if (v > wv) { wv = v; worst = i; }
        }
        if (worst < 0) return nf;
        ws->clamped[worst] = 0;
    }
    return lqr__factor_free(ws) < 0 ? -1 : nf;
}

mb_status mb_lqr_backward(const mb_lqr_problem *pb, double mu, mb_lqr_ws *ws,
                          mb_lqr_solution *sol, char *err, size_t err_sz) {
    if (!pb || !ws || !sol || pb->n != ws->n || pb->m != ws->m || pb->H < 1)
        return mb_fail(err, err_sz, MB_EINVAL, "lqr: sizes do not match the workspace");
    const int n = pb->n, m = pb->m, H = pb->H;
    const size_t nn = (size_t)n * n;
    double *P = ws->P, *p = ws->p;
    memcpy(P, pb->Q + (size_t)H * nn, nn * sizeof(double));
    for (int i = 0; i < n; i++) p[i] = pb->q ? pb->q[(size_t)H * n + i] : 0.0;
    sol->dV[0] = sol->dV[1] = 0.0;
    for (int t = H - 1; t >= 0; t--) {
        const double *A = pb->A + (size_t)t * nn, *B = pb->B + (size_t)t * n * m;
        /* PA (n, n) = P A; PB (n, m) = P B */
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int l = 0; l < n; l++) s += P[i * n + l] * A[l * n + j];
                ws->PA[i * n + j] = s;
            }
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int l = 0; l < n; l++) s += P[i * n + l] * B[l * m + j];
                ws->PB[i * m + j] = s;
            }
        }
        /* pc = p + P c */
        for (int i = 0; i < n; i++) {
            double s = p[i];
            if (pb->c)
                for (int l = 0; l < n; l++) s += P[i * n + l] * pb->c[(size_t)t * n + l];
            ws->pc[i] = s;
        }
        const double *Q = pb->Q + (size_t)t * nn;
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < n; j++) {
                double s = Q[i * n + j];
                for (int l = 0; l < n; l++) s += A[l * n + i] * ws->PA[l * n + j];
                ws->Qxx[i * n + j] = s;
            }
            double s = pb->q ? pb->q[(size_t)t * n + i] : 0.0;
            for (int l = 0; l < n; l++) s += A[l * n + i] * ws->pc[l];
            ws->qx[i] = s;
        }
        const double *R = pb->R + (size_t)t * m * m;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) {
                double s = R[i * m + j];
                for (int l = 0; l < n; l++) s += B[l * m + i] * ws->PB[l * m + j];
                ws->Quu[i * m + j] = s;
            }
            for (int j = 0; j < n; j++) {
                double s = pb->N ? pb->N[(size_t)t * m * n + (size_t)i * n + j] : 0.0;
                for (int l = 0; l < n; l++) s += B[l * m + i] * ws->PA[l * n + j];
                ws->Qux[i * n + j] = s;
            }
            double s = pb->r ? pb->r[(size_t)t * m + i] : 0.0;
            for (int l = 0; l < n; l++) s += B[l * m + i] * ws->pc[l];
            ws->qu[i] = s;
        }
        /* symmetrise Quu (rounding), regularise */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < i; j++) {
                double s = 0.5 * (ws->Quu[i * m + j] + ws->Quu[j * m + i]);
                ws->Quu[i * m + j] = ws->Quu[j * m + i] = s;
            }
        memcpy(ws->Quu_reg, ws->Quu, (size_t)m * m * sizeof(double));
        for (int i = 0; i < m; i++) ws->Quu_reg[i * m + i] += mu;
        if (sol->Quu) memcpy(sol->Quu + (size_t)t * m * m, ws->Quu_reg, (size_t)m * m * sizeof(double));
        double *K = sol->K + (size_t)t * m * n, *k = sol->k + (size_t)t * m;
        const double *lo = pb->lo ? pb->lo + (size_t)t * m : NULL;
        const double *hi = pb->hi ? pb->hi + (size_t)t * m : NULL;
        int nf = lqr__box_qp(ws, lo && hi ? lo : NULL, hi, k);
        if (nf < 0)
            return mb_fail(err, err_sz, MB_ESTATE, "lqr: Quu + %g I is not positive definite at step %d",
                           mu, t);
        /* K: free rows -Quu_ff^-1 Qux_f, clamped rows 0 */
        for (int j = 0; j < n; j++) {
            for (int a = 0; a < nf; a++) ws->tmp_m[a] = -ws->Qux[ws->free_idx[a] * n + j];
            if (nf > 0) mb_chol_solve(ws->L, nf, ws->tmp_m, ws->tmp_m);
            for (int i = 0; i < m; i++) K[i * n + j] = 0.0;
            for (int a = 0; a < nf; a++) K[ws->free_idx[a] * n + j] = ws->tmp_m[a];
        }
        /* expected change (unregularised Quu) */
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int j = 0; j < m; j++) s += ws->Quu[i * m + j] * k[j];
            ws->tmp_m2[i] = s; /* Quu k */
            sol->dV[0] += k[i] * ws->qu[i];
            sol->dV[1] += 0.5 * k[i] * s;
        }
        /* KQ (n, m) = K' Quu */
        for (int i = 0; i < n; i++)
            for (int j = 0; j < m; j++) {
                double s = 0;
                for (int l = 0; l < m; l++) s += K[l * n + i] * ws->Quu[l * m + j];
                ws->KQ[i * m + j] = s;
            }
        /* P = Qxx + K'Quu K + K'Qux + Qux'K; p = qx + K'Quu k + K'qu + Qux'k */
        for (int i = 0; i < n; i++) {
            for (int j = 0; j <= i; j++) {
                double s = ws->Qxx[i * n + j];
                for (int l = 0; l < m; l++)
                    s += ws->KQ[i * m + l] * K[l * n + j] + K[l * n + i] * ws->Qux[l * n + j] +
                         ws->Qux[l * n + i] * K[l * n + j];
                P[i * n + j] = s;
            }
            double s = ws->qx[i];
            for (int l = 0; l < m; l++)
                s += K[l * n + i] * (ws->tmp_m2[l] + ws->qu[l]) + ws->Qux[l * n + i] * k[l];
            p[i] = s;
        }
        /* P's upper triangle from the symmetric formula's lower triangle
         * (Qxx is symmetric up to rounding; the formula is symmetric) */
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) P[i * n + j] = P[j * n + i];
        for (int i = 0; i < n * n; i++)
            if (!isfinite(P[i]))
                return mb_fail(err, err_sz, MB_ESTATE, "lqr: the value diverged at step %d", t);
    }
    if (sol->P) memcpy(sol->P, P, nn * sizeof(double));
    if (sol->p) memcpy(sol->p, p, (size_t)n * sizeof(double));
    return MB_OK;
}
