/* ensemble_grad.c: input derivatives of the ensemble's mean (contract in
 * ensemble_grad.h).
 *
 * Per member: the weights are transposed once per call into the workspace
 * (W_l^T, so dz W_l^T runs as an NN product), then rows go through in
 * chunks of R rows: forward keeping each hidden layer's activation and its
 * saved state (mb_bias_act_forward_aux, as training does), then backward
 * from the mean columns of the head only. Members are averaged by
 * accumulating scale = 1/k of each member's result into the outputs.
 * Not for: parameter gradients (ensemble.c). */
#include "nn/ensemble_grad.h"

#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"

#define EG_CHUNK 256

struct mb_ens_grad_ws {
    mb_ensemble_spec spec;
    int L, in, out, maxw;
    int dim[MB_MAX_LAYERS + 2];
    int R;                                   /* rows per chunk, >= out */
    float *z[MB_MAX_LAYERS], *h[MB_MAX_LAYERS]; /* (R, dim[l+1]): saved state, activation */
    float *xn;                               /* (R, in) normalised input */
    float *head;                             /* (R, 2 out) */
    float *d0, *d1;                          /* (R, maxw) gradient ping-pong */
    float *wt;                               /* (member_size) W_l^T at W_l's offset */
    float *xrep, *grep;                      /* Jacobian: (R, in), (R, out) */
    float *mrep;                             /* (R, out) */
    float *mem;
};

/* ws's sizes from spec; returns the floats of its block (the layout below). */
static size_t eg__dims(mb_ens_grad_ws *ws, const mb_ensemble_spec *spec) {
    ws->spec = *spec;
    ws->L = spec->n_hidden;
    ws->in = mb_ensemble_in_dim(spec);
    ws->out = mb_ensemble_out_dim(spec);
    ws->dim[0] = ws->in;
    for (int l = 0; l < ws->L; l++) ws->dim[l + 1] = spec->hidden[l];
    ws->dim[ws->L + 1] = 2 * ws->out;
    ws->maxw = 0;
    for (int l = 0; l <= ws->L + 1; l++)
        if (ws->dim[l] > ws->maxw) ws->maxw = ws->dim[l];
    ws->R = ws->out > EG_CHUNK ? ws->out : EG_CHUNK;
    size_t R = (size_t)ws->R, total = 0;
    for (int l = 0; l < ws->L; l++) total += 2 * R * (size_t)ws->dim[l + 1];
    total += R * (size_t)ws->in + 2 * R * (size_t)ws->out + 2 * R * (size_t)ws->maxw;
    total += mb_ensemble_member_size(spec);
    total += R * (size_t)ws->in + 2 * R * (size_t)ws->out;
    return total;
}

size_t mb_ens_grad_ws_bytes(const mb_ensemble_spec *spec) {
    if (!spec || mb_ensemble_spec_check(spec, NULL, 0) != MB_OK) return 0;
    mb_ens_grad_ws ws;
    memset(&ws, 0, sizeof ws);
    return sizeof ws + eg__dims(&ws, spec) * sizeof(float);
}

mb_ens_grad_ws *mb_ens_grad_ws_new(const mb_ensemble_spec *spec) {
    if (!spec || mb_ensemble_spec_check(spec, NULL, 0) != MB_OK) return NULL;
    mb_ens_grad_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    size_t total = eg__dims(ws, spec);
    size_t R = (size_t)ws->R;
    ws->mem = malloc(total * sizeof(float));
    if (!ws->mem) {
        free(ws);
        return NULL;
    }
    float *p = ws->mem;
    for (int l = 0; l < ws->L; l++) {
        ws->z[l] = p;
        p += R * (size_t)ws->dim[l + 1];
        ws->h[l] = p;
        p += R * (size_t)ws->dim[l + 1];
    }
    ws->xn = p;
    p += R * (size_t)ws->in;
    ws->head = p;
    p += 2 * R * (size_t)ws->out;
    ws->d0 = p;
    p += R * (size_t)ws->maxw;
    ws->d1 = p;
    p += R * (size_t)ws->maxw;
    ws->wt = p;
    p += mb_ensemble_member_size(spec);
    ws->xrep = p;
    p += R * (size_t)ws->in;
    ws->grep = p;
    p += R * (size_t)ws->out;
    ws->mrep = p;
    return ws;
}

void mb_ens_grad_ws_free(mb_ens_grad_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    free(ws);
}

/* Offsets of W_l in a member's block (same layout as ensemble.h). */
static size_t eg__W_off(const mb_ens_grad_ws *ws, int layer) {
    size_t off = 0;
    for (int l = 0; l < layer; l++)
        off += (size_t)ws->dim[l] * ws->dim[l + 1] + (size_t)ws->dim[l + 1];
    return off;
}

/* ws->wt <- W_l^T (dim[l+1], dim[l]) for every layer of member m. */
static void eg__transpose_member(const mb_ensemble *e, mb_ens_grad_ws *ws, int m) {
    const float *p = e->params + (size_t)m * e->member_size;
    for (int l = 0; l <= ws->L; l++) {
        size_t off = eg__W_off(ws, l);
        int rows = ws->dim[l], cols = ws->dim[l + 1];
        const float *W = p + off;
        float *T = ws->wt + off;
        for (int i = 0; i < rows; i++)
            for (int j = 0; j < cols; j++) T[(size_t)j * rows + i] = W[(size_t)i * cols + j];
    }
}

/* nr <= R rows through member m (ws->wt holds its transposed weights):
 * mean_acc += scale * y_m (if mean_acc), gx_acc += scale * gy^T dy_m/dx. */
static void eg__rows(const mb_ensemble *e, mb_ens_grad_ws *ws, int m, const float *x,
                     const float *gy, size_t nr, float scale, float *mean_acc, float *gx_acc) {
    const float *p = e->params + (size_t)m * e->member_size;
    const int L = ws->L, in = ws->in, out = ws->out, o2 = 2 * out;
    mb_activation act = e->spec.activation;
    mb_ensemble_normalize_inputs(e, x, ws->xn, nr);
    const float *prev = ws->xn;
    for (int l = 0; l < L; l++) {
        size_t off = eg__W_off(ws, l);
        int w = ws->dim[l + 1];
        mb_gemm_nn(nr, w, ws->dim[l], prev, p + off, ws->z[l], 0);
        mb_bias_act_forward_aux(act, ws->z[l], p + off + (size_t)ws->dim[l] * w, ws->h[l], ws->z[l],
                                nr, w);
        prev = ws->h[l];
    }
    size_t offL = eg__W_off(ws, L);
    if (mean_acc) {
        mb_gemm_nn(nr, o2, ws->dim[L], prev, p + offL, ws->head, 0);
        const float *bh = p + offL + (size_t)ws->dim[L] * o2;
        for (size_t r = 0; r < nr; r++)
            for (int o = 0; o < out; o++)
                mean_acc[r * out + o] +=
                    scale * ((ws->head[r * o2 + o] + bh[o]) * e->out_std[o] + e->out_mean[o]);
    }
    /* d (normalised mean) = gy * out_std; then through the mean columns of
     * the head: W_L^T's first out rows are (out, dim[L]). */
    float *dh = ws->d0;
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o++) dh[r * out + o] = gy[r * out + o] * e->out_std[o];
    float *cur = ws->d1, *other = ws->d0;
    mb_gemm_nn(nr, ws->dim[L], out, dh, ws->wt + offL, cur, 0);
    for (int l = L - 1; l >= 0; l--) {
        int w = ws->dim[l + 1], win = ws->dim[l];
        mb_act_backward_aux(act, ws->h[l], ws->z[l], cur, cur, NULL, nr, w);
        mb_gemm_nn(nr, win, w, cur, ws->wt + eg__W_off(ws, l), other, 0);
        float *s = cur;
        cur = other;
        other = s;
    }
    /* cur: d / d xn (nr, in); xn = (x - in_mean) / in_std */
    for (size_t r = 0; r < nr; r++)
        for (int i = 0; i < in; i++) gx_acc[r * in + i] += scale * cur[r * in + i] / e->in_std[i];
}

void mb_ensemble_vjp(const mb_ensemble *e, mb_ens_grad_ws *ws, const int *members, int k,
                     const float *x, const float *gy, size_t n, float *mean, float *gx) {
    if (!members) k = e->spec.members;
    const int in = ws->in, out = ws->out;
    memset(gx, 0, n * (size_t)in * sizeof(float));
    if (mean) memset(mean, 0, n * (size_t)out * sizeof(float));
    if (k <= 0 || n == 0) return;
    float scale = 1.0f / (float)k;
    for (int j = 0; j < k; j++) {
        int m = members ? members[j] : j;
        eg__transpose_member(e, ws, m);
        for (size_t r0 = 0; r0 < n; r0 += (size_t)ws->R) {
            size_t nr = n - r0 < (size_t)ws->R ? n - r0 : (size_t)ws->R;
            eg__rows(e, ws, m, x + r0 * in, gy + r0 * out, nr, scale,
                     mean ? mean + r0 * out : NULL, gx + r0 * in);
        }
    }
}

void mb_ensemble_jacobian(const mb_ensemble *e, mb_ens_grad_ws *ws, const int *members, int k,
                          const float *x, size_t n, float *mean, float *J) {
    if (!members) k = e->spec.members;
    const int in = ws->in, out = ws->out;
    memset(J, 0, n * (size_t)out * (size_t)in * sizeof(float));
    if (mean) memset(mean, 0, n * (size_t)out * sizeof(float));
    if (k <= 0 || n == 0) return;
    float scale = 1.0f / (float)k;
    /* g input rows at a time, each repeated out times with the unit
     * cotangents: VJP row (r, o) is J's row o of input row r. */
    size_t g = (size_t)(ws->R / out);
    for (size_t r = 0; r < g; r++)
        for (int o = 0; o < out; o++)
            for (int q = 0; q < out; q++) ws->grep[(r * out + o) * out + q] = (float)(q == o);
    for (int j = 0; j < k; j++) {
        int m = members ? members[j] : j;
        eg__transpose_member(e, ws, m);
        for (size_t r0 = 0; r0 < n; r0 += g) {
            size_t nr = n - r0 < g ? n - r0 : g, rows = nr * (size_t)out;
            for (size_t r = 0; r < nr; r++)
                for (int o = 0; o < out; o++)
                    memcpy(ws->xrep + (r * out + o) * in, x + (r0 + r) * in, (size_t)in * sizeof(float));
            /* J rows are laid out (r, o, i): exactly the VJP's (rows, in) */
            if (mean) memset(ws->mrep, 0, rows * (size_t)out * sizeof(float));
            eg__rows(e, ws, m, ws->xrep, ws->grep, rows, scale, mean ? ws->mrep : NULL,
                     J + r0 * (size_t)out * in);
            if (mean)
                for (size_t r = 0; r < nr; r++)
                    for (int o = 0; o < out; o++)
                        mean[(r0 + r) * out + o] += ws->mrep[(r * out) * out + o];
        }
    }
}
