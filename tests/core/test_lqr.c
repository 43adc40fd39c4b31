/* test_lqr.c: the backward Riccati recursion (core/plan/lqr.c) against an
 * independent computation: the whole-horizon problem written as one dense
 * quadratic program in the stacked controls U (H m), solved by Cholesky.
 * Time-varying random A_t, B_t, c_t, cross terms N_t and linear terms; the
 * closed-loop rollout of u_t = K_t x_t + k_t must equal U* to 1e-9
 * (relative), and give the same cost. The box on k_t: one-step problems
 * against enumeration of every active set (3^m of them).
 * Not for: iLQR (test_ilqr). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "plan/lqr.h"
#include "base/rng.h"

typedef struct {
    int n, m, H;
    double *A, *B, *c, *Q, *R, *N, *q, *r;
} prob;

/* Random convex problem: [Q N'; N R] = M M' + 0.1 I per step. */
static void prob_make(prob *p, int n, int m, int H, uint64_t seed) {
    mb_rng g;
    mb_rng_seed(&g, seed);
    p->n = n; p->m = m; p->H = H;
    p->A = malloc(sizeof(double) * H * n * n);
    p->B = malloc(sizeof(double) * H * n * m);
    p->c = malloc(sizeof(double) * H * n);
    p->Q = calloc((size_t)(H + 1) * n * n, sizeof(double));
    p->R = malloc(sizeof(double) * H * m * m);
    p->N = malloc(sizeof(double) * H * m * n);
    p->q = malloc(sizeof(double) * (H + 1) * n);
    p->r = malloc(sizeof(double) * H * m);
    for (int i = 0; i < H * n * n; i++) p->A[i] = 0.5 * mb_rng_normal(&g);
    for (int t = 0; t < H; t++)
        for (int i = 0; i < n; i++) p->A[t * n * n + i * n + i] += 1.0;
    for (int i = 0; i < H * n * m; i++) p->B[i] = mb_rng_normal(&g);
    for (int i = 0; i < H * n; i++) p->c[i] = 0.3 * mb_rng_normal(&g);
    for (int i = 0; i < (H + 1) * n; i++) p->q[i] = mb_rng_normal(&g);
    for (int i = 0; i < H * m; i++) p->r[i] = mb_rng_normal(&g);
    int d = n + m;
    double M[16 * 16], S[16 * 16];
    for (int t = 0; t <= H; t++) {
        for (int i = 0; i < d * d; i++) M[i] = mb_rng_normal(&g);
        for (int i = 0; i < d; i++)
            for (int j = 0; j < d; j++) {
                double s = i == j ? 0.1 : 0.0;
                for (int l = 0; l < d; l++) s += M[i * d + l] * M[j * d + l];
                S[i * d + j] = s;
            }
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) p->Q[(size_t)t * n * n + i * n + j] = S[i * d + j];
        if (t == H) break;
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < m; j++) p->R[t * m * m + i * m + j] = S[(n + i) * d + n + j];
            for (int j = 0; j < n; j++) p->N[t * m * n + i * n + j] = S[(n + i) * d + j];
        }
    }
}

static void prob_free(prob *p) {
    free(p->A); free(p->B); free(p->c); free(p->Q); free(p->R); free(p->N); free(p->q); free(p->r);
}

/* Cost of controls u (H, m) from x0, rolled out. */
static double prob_cost(const prob *p, const double *x0, const double *u) {
    int n = p->n, m = p->m;
    double x[16], nx[16], J = 0;
    memcpy(x, x0, sizeof(double) * n);
    for (int t = 0; t <= p->H; t++) {
        const double *Q = p->Q + (size_t)t * n * n;
        for (int i = 0; i < n; i++) {
            J += p->q[t * n + i] * x[i];
            for (int j = 0; j < n; j++) J += 0.5 * x[i] * Q[i * n + j] * x[j];
        }
        if (t == p->H) break;
        const double *ut = u + t * m;
        for (int i = 0; i < m; i++) {
            J += p->r[t * m + i] * ut[i];
            for (int j = 0; j < m; j++) J += 0.5 * ut[i] * p->R[t * m * m + i * m + j] * ut[j];
            for (int j = 0; j < n; j++) J += ut[i] * p->N[t * m * n + i * n + j] * x[j];
        }
        for (int i = 0; i < n; i++) {
            double s = p->c[t * n + i];
            for (int j = 0; j < n; j++) s += p->A[t * n * n + i * n + j] * x[j];
            for (int j = 0; j < m; j++) s += p->B[t * n * m + i * m + j] * ut[j];
            nx[i] = s;
        }
        memcpy(x, nx, sizeof(double) * n);
    }
    return J;
}

/* The dense QP: J(U) is quadratic; Hessian and gradient at U = 0 by exact
 * second differences of prob_cost (a quadratic: exact up to rounding), then
 * U* = -Hess^-1 grad. */
static void dense_solve(const prob *p, const double *x0, double *U) {
    int D = p->H * p->m;
    double *Hs = malloc(sizeof(double) * D * D), *g = malloc(sizeof(double) * D);
    double *u = calloc(D, sizeof(double));
    double J0 = prob_cost(p, x0, u);
    double Ji[64];
    for (int i = 0; i < D; i++) {
        u[i] = 1.0;
        Ji[i] = prob_cost(p, x0, u);
        u[i] = -1.0;
        double Jm = prob_cost(p, x0, u);
        u[i] = 0.0;
        g[i] = 0.5 * (Ji[i] - Jm);
        Hs[i * D + i] = Ji[i] + Jm - 2 * J0;
    }
    for (int i = 0; i < D; i++)
        for (int j = 0; j < i; j++) {
            u[i] = u[j] = 1.0;
            double Jij = prob_cost(p, x0, u);
            u[i] = u[j] = 0.0;
            /* J(e_i + e_j) = J0 + g_i + g_j + 1/2 (H_ii + H_jj) + H_ij */
            double h = Jij - J0 - g[i] - g[j] - 0.5 * (Hs[i * D + i] + Hs[j * D + j]);
            Hs[i * D + j] = Hs[j * D + i] = h;
        }
    ck_assert_int_eq(mb_chol(Hs, D), 0);
    for (int i = 0; i < D; i++) g[i] = -g[i];
    mb_chol_solve(Hs, D, g, U);
    free(Hs); free(g); free(u);
}

START_TEST(test_riccati_matches_dense_qp) {
    for (int trial = 0; trial < 4; trial++) {
        prob p;
        int n = 2 + trial % 3, m = 1 + trial % 2, H = 3 + 2 * trial;
        prob_make(&p, n, m, H, 100 + trial);
        mb_lqr_ws *ws = mb_lqr_ws_new(n, m);
        ck_assert_ptr_nonnull(ws);
        double K[16 * 16 * 4], k[64];
        mb_lqr_solution sol = {.K = K, .k = k};
        mb_lqr_problem pb = {.n = n, .m = m, .H = H, .A = p.A, .B = p.B, .c = p.c, .Q = p.Q,
                             .R = p.R, .N = p.N, .q = p.q, .r = p.r};
        char err[128];
        ck_assert_int_eq(mb_lqr_backward(&pb, 0.0, ws, &sol, err, sizeof err), MB_OK);
        double x0[8] = {0.7, -1.2, 0.4, 2.0}, U[64], Ul[64], x[8], nx[8];
        dense_solve(&p, x0, U);
        /* closed loop of the LQR policy */
        memcpy(x, x0, sizeof x);
        for (int t = 0; t < H; t++) {
            for (int i = 0; i < m; i++) {
                double s = k[t * m + i];
                for (int j = 0; j < n; j++) s += K[(t * m + i) * n + j] * x[j];
                Ul[t * m + i] = s;
            }
            for (int i = 0; i < n; i++) {
                double s = p.c[t * n + i];
                for (int j = 0; j < n; j++) s += p.A[t * n * n + i * n + j] * x[j];
                for (int j = 0; j < m; j++) s += p.B[t * n * m + i * m + j] * Ul[t * m + j];
                nx[i] = s;
            }
            memcpy(x, nx, sizeof(double) * n);
        }
        for (int i = 0; i < H * m; i++) {
            char lab[64];
            snprintf(lab, sizeof lab, "trial %d u[%d]", trial, i);
            MB_ASSERT_CLOSE(lab, Ul[i], U[i], 1e-8 * fmax(1.0, fabs(U[i])));
        }
        double Jl = prob_cost(&p, x0, Ul), Jd = prob_cost(&p, x0, U);
        MB_ASSERT_CLOSE("cost of the LQR controls vs the QP optimum", Jl, Jd, 1e-9 * fmax(1.0, fabs(Jd)));
        /* expected change at x0 = 0 offsets: dV[0] = sum k'qu is the
         * first-order term; a negative definite change overall */
        ck_assert(sol.dV[1] >= 0.0);
        mb_lqr_ws_free(ws);
        prob_free(&p);
    }
}
END_TEST

/* Quu + mu I not positive definite: MB_ESTATE, and a large enough mu fixes it. */
START_TEST(test_indefinite_needs_mu) {
    prob p;
    prob_make(&p, 2, 1, 3, 7);
    for (int t = 0; t < 3; t++) p.R[t] = -50.0;
    mb_lqr_ws *ws = mb_lqr_ws_new(2, 1);
    double K[6], k[3];
    mb_lqr_solution sol = {.K = K, .k = k};
    mb_lqr_problem pb = {.n = 2, .m = 1, .H = 3, .A = p.A, .B = p.B, .c = p.c, .Q = p.Q,
                         .R = p.R, .N = p.N, .q = p.q, .r = p.r};
    char err[128] = "";
    ck_assert_int_eq(mb_lqr_backward(&pb, 0.0, ws, &sol, err, sizeof err), MB_ESTATE);
    ck_assert(strstr(err, "positive definite") != NULL);
    ck_assert_int_eq(mb_lqr_backward(&pb, 1e4, ws, &sol, err, sizeof err), MB_OK);
    mb_lqr_ws_free(ws);
    prob_free(&p);
}
END_TEST

/* One step from x0 = 0: u_0 = k_0 solves the box QP; check against the best
 * of all 3^m active sets (each coordinate free, at lo or at hi). */
START_TEST(test_box_qp_matches_enumeration) {
    for (int trial = 0; trial < 20; trial++) {
        int n = 2, m = 2 + trial % 3;
        prob p;
        prob_make(&p, n, m, 1, 300 + trial);
        mb_lqr_ws *ws = mb_lqr_ws_new(n, m);
        double lo[4], hi[4], K[16], k[4];
        mb_rng g;
        mb_rng_seed(&g, 900 + trial);
        for (int i = 0; i < m; i++) {
            lo[i] = -0.2 - 0.5 * mb_rng_uniform(&g);
            hi[i] = 0.2 + 0.5 * mb_rng_uniform(&g);
        }
        mb_lqr_solution sol = {.K = K, .k = k};
        mb_lqr_problem pb = {.n = n, .m = m, .H = 1, .A = p.A, .B = p.B, .c = p.c, .Q = p.Q,
                             .R = p.R, .N = p.N, .q = p.q, .r = p.r, .lo = lo, .hi = hi};
        ck_assert_int_eq(mb_lqr_backward(&pb, 0.0, ws, &sol, NULL, 0), MB_OK);
        double x0[2] = {0, 0};
        for (int i = 0; i < m; i++) ck_assert(k[i] >= lo[i] - 1e-12 && k[i] <= hi[i] + 1e-12);
        double Jk = prob_cost(&p, x0, k);
        /* enumeration: for each pattern, minimise over the free coordinates
         * with the others fixed (a small unconstrained QP by second
         * differences), keep feasible points */
        int combos = 1;
        for (int i = 0; i < m; i++) combos *= 3;
        double best = INFINITY;
        for (int cidx = 0; cidx < combos; cidx++) {
            int pat[4], c = cidx, fr[4], nf = 0;
            double u[4];
            for (int i = 0; i < m; i++) {
                pat[i] = c % 3;
                c /= 3;
                u[i] = pat[i] == 1 ? lo[i] : pat[i] == 2 ? hi[i] : 0.0;
                if (!pat[i]) fr[nf++] = i;
            }
            if (nf) {
                double Hs[16], gr[4], J0 = prob_cost(&p, x0, u), sol_f[4];
                for (int a = 0; a < nf; a++) {
                    u[fr[a]] += 1;
                    double Jp = prob_cost(&p, x0, u);
                    u[fr[a]] -= 2;
                    double Jm = prob_cost(&p, x0, u);
                    u[fr[a]] += 1;
                    gr[a] = 0.5 * (Jp - Jm);
                    Hs[a * nf + a] = Jp + Jm - 2 * J0;
                }
                for (int a = 0; a < nf; a++)
                    for (int b = 0; b < a; b++) {
                        u[fr[a]] += 1; u[fr[b]] += 1;
                        double Jab = prob_cost(&p, x0, u);
                        u[fr[a]] -= 1; u[fr[b]] -= 1;
                        double h = Jab - J0 - gr[a] - gr[b] - 0.5 * (Hs[a * nf + a] + Hs[b * nf + b]);
                        Hs[a * nf + b] = Hs[b * nf + a] = h;
                    }
                ck_assert_int_eq(mb_chol(Hs, nf), 0);
                for (int a = 0; a < nf; a++) gr[a] = -gr[a];
                mb_chol_solve(Hs, nf, gr, sol_f);
                int feas = 1;
                for (int a = 0; a < nf; a++) {
                    u[fr[a]] += sol_f[a];
                    if (u[fr[a]] < lo[fr[a]] || u[fr[a]] > hi[fr[a]]) feas = 0;
                }
                if (!feas) continue;
            }
            double J = prob_cost(&p, x0, u);
            if (J < best) best = J;
        }
        char lab[64];
        snprintf(lab, sizeof lab, "trial %d box optimum", trial);
        MB_ASSERT_CLOSE(lab, Jk, best, 1e-9 * fmax(1.0, fabs(best)));
        mb_lqr_ws_free(ws);
        prob_free(&p);
    }
}
END_TEST

int main(void) {
    Suite *s = suite_create("lqr");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_riccati_matches_dense_qp);
    tcase_add_test(tc, test_indefinite_needs_mu);
    tcase_add_test(tc, test_box_qp_matches_enumeration);
    suite_add_tcase(s, tc);
    return mb_test_main(s);
}
