/* ref_mlp.h: a naive double-precision MLP written from the layout of
 * core/nn/mlp.h, the reference the policy, Q and value gradient checks
 * difference (test_mlp.c, test_policy.c, test_qnet.c, test_vnet.c).
 * Also the shared checker: analytic float gradient vs central differences
 * of a double loss, per tensor, with a label per entry. */
#ifndef MB_REF_MLP_H
#define MB_REF_MLP_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_util.h"
#include "nn/mlp.h"

static double ref_mlp_act(mb_activation a, double x) {
    switch (a) {
    case MB_ACT_SILU: return x / (1.0 + exp(-x));
    case MB_ACT_RELU: return x > 0 ? x : 0.0;
    case MB_ACT_TANH: return tanh(x);
    }
    return x;
}

/* One row: x (in_dim) -> y (out_dim); p in the layout of mlp.h. */
static void ref_mlp_row(const mb_mlp_spec *s, const double *p, const double *x, double *y) {
    int dim[MB_MAX_LAYERS + 2];
    dim[0] = s->in_dim;
    for (int l = 0; l < s->n_hidden; l++) dim[l + 1] = s->hidden[l];
    dim[s->n_hidden + 1] = s->out_dim;
    double a[MB_MAX_HIDDEN + 64], b[MB_MAX_HIDDEN + 64];
    for (int i = 0; i < dim[0]; i++) a[i] = x[i];
    size_t off = 0;
    for (int l = 0; l <= s->n_hidden; l++) {
        const double *W = p + off;
        off += (size_t)dim[l] * dim[l + 1];
        const double *bb = p + off;
        off += (size_t)dim[l + 1];
        for (int j = 0; j < dim[l + 1]; j++) {
            double z = bb[j];
            for (int i = 0; i < dim[l]; i++) z += a[i] * W[(size_t)i * dim[l + 1] + j];
            b[j] = l < s->n_hidden ? ref_mlp_act(s->activation, z) : z;
        }
        memcpy(a, b, sizeof(double) * (size_t)dim[l + 1]);
    }
    for (int o = 0; o < dim[s->n_hidden + 1]; o++) y[o] = a[o];
}

static void ref_to_double(const float *src, double *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* A scalar loss of the double vector v (parameters or inputs). */
typedef double (*ref_loss_fn)(void *ctx, const double *v);

/* Compares g[i] (float, analytic) with central differences of loss at
 * v[off + i] for i < cnt, step h; per entry
 *   |g - fd| <= rel * max(|fd|, rms of the tensor's fd) + abs_tol. */
static void ref_check_tensor(const char *label, ref_loss_fn loss, void *ctx, double *v,
                             size_t off, size_t cnt, const float *g, double h, double rel,
                             double abs_tol) {
    double *fd = malloc(cnt * sizeof(double));
    ck_assert_ptr_nonnull(fd);
    double rms = 0;
    for (size_t i = 0; i < cnt; i++) {
        double keep = v[off + i];
        v[off + i] = keep + h;
        double lp = loss(ctx, v);
        v[off + i] = keep - h;
        double lm = loss(ctx, v);
        v[off + i] = keep;
        fd[i] = (lp - lm) / (2 * h);
        rms += fd[i] * fd[i];
    }
    rms = sqrt(rms / (double)(cnt ? cnt : 1));
    for (size_t i = 0; i < cnt; i++) {
        char lab[96];
        snprintf(lab, sizeof lab, "%s[%zu]", label, i);
        MB_ASSERT_CLOSE(lab, g[i], fd[i], rel * fmax(fabs(fd[i]), rms) + abs_tol);
    }
    free(fd);
}

#endif
