/* mlp.c: the plain MLP of mlp.h: layout, init, inference and training
 * forward, backward with parameter and input gradients.
 * Not for: heads with meaning (policy.c, qnet.c, vnet.c). */
#include "nn/mlp.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nn/gemm.h"

typedef struct {
    int L;                        /* hidden layers; layer L is the output */
    int dim[MB_MAX_LAYERS + 2];   /* dim[0] = in, dim[l+1] = width of layer l */
    size_t W[MB_MAX_LAYERS + 1], b[MB_MAX_LAYERS + 1], size;
    int maxw;                     /* widest of all dims */
} mlp__layout;

static void mlp__layout_of(const mb_mlp_spec *s, mlp__layout *lay) {
    lay->L = s->n_hidden;
    lay->dim[0] = s->in_dim;
    for (int l = 0; l < s->n_hidden; l++) lay->dim[l + 1] = s->hidden[l];
    lay->dim[s->n_hidden + 1] = s->out_dim;
    size_t off = 0;
    lay->maxw = 0;
    for (int l = 0; l <= lay->L; l++) {
        lay->W[l] = off;
        off += (size_t)lay->dim[l] * (size_t)lay->dim[l + 1];
        lay->b[l] = off;
        off += (size_t)lay->dim[l + 1];
    }
    for (int l = 0; l <= lay->L + 1; l++)
        if (lay->dim[l] > lay->maxw) lay->maxw = lay->dim[l];
    lay->size = off;
}

mb_status mb_mlp_spec_check(const mb_mlp_spec *s, const char *what, char *err, size_t err_sz) {
    if (!what) what = "mlp";
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "%s: NULL spec", what);
    if (s->in_dim < 1 || s->in_dim > MB_MAX_HIDDEN || s->out_dim < 1 || s->out_dim > MB_MAX_HIDDEN)
        return mb_fail(err, err_sz, MB_ERANGE, "%s: input and output sizes must be in [1, %d]",
                       what, MB_MAX_HIDDEN);
    if (s->n_hidden < 1 || s->n_hidden > MB_MAX_LAYERS)
        return mb_fail(err, err_sz, MB_ERANGE, "%s.hidden must have 1..%d layers, got %d", what,
                       MB_MAX_LAYERS, s->n_hidden);
    for (int l = 0; l < s->n_hidden; l++)
        if (s->hidden[l] < 1 || s->hidden[l] > MB_MAX_HIDDEN)
            return mb_fail(err, err_sz, MB_ERANGE, "%s.hidden[%d] must be in [1, %d], got %d",
                           what, l, MB_MAX_HIDDEN, s->hidden[l]);
    if (s->activation != MB_ACT_SILU && s->activation != MB_ACT_RELU &&
        s->activation != MB_ACT_TANH)
        return mb_fail(err, err_sz, MB_EINVAL, "%s.activation: unknown value %d", what,
                       (int)s->activation);
    return MB_OK;
}

size_t mb_mlp_size(const mb_mlp_spec *s) {
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    return lay.size;
}

double mb_mlp_flops_per_row(const mb_mlp_spec *s) {
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    double macs = 0;
    for (int l = 0; l <= lay.L; l++) macs += (double)lay.dim[l] * lay.dim[l + 1];
    return 2.0 * macs;
}

size_t mb_mlp_W_offset(const mb_mlp_spec *s, int layer) {
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    return lay.W[layer];
}

size_t mb_mlp_b_offset(const mb_mlp_spec *s, int layer) {
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    return lay.b[layer];
}

void mb_mlp_init(const mb_mlp_spec *s, float *params, mb_rng *rng, float out_scale) {
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    for (int l = 0; l <= lay.L; l++) {
        float bound = 1.0f / sqrtf((float)lay.dim[l]);
        if (l == lay.L) bound *= out_scale;
        size_t cnt = (size_t)lay.dim[l] * (size_t)lay.dim[l + 1];
        mb_rng_fill_uniform(rng, params + lay.W[l], cnt, -bound, bound);
        memset(params + lay.b[l], 0, (size_t)lay.dim[l + 1] * sizeof(float));
    }
}

/* ---- workspace ----------------------------------------------------------- */

struct mb_mlp_ws {
    mlp__layout lay;
    mb_activation act;
    size_t rows;
    /* z[l]: the activation's saved state (sigmoid for SiLU), h[l]: the
     * activation, both (rows, dim[l+1]) per hidden layer; d0, d1 (rows,
     * maxw) gradient ping-pong (and inference ping-pong); wt (size) W_l^T
     * (dim[l+1], dim[l]) at offset W[l], refreshed by each backward */
    float *z[MB_MAX_LAYERS], *h[MB_MAX_LAYERS];
    float *d0, *d1, *wt;
    float *mem;
};

/* The floats of a workspace's block (mb_mlp_ws_new's layout below). */
static size_t mlp__ws_floats(const mlp__layout *lay, size_t max_rows) {
    size_t total = 0;
    for (int l = 0; l < lay->L; l++) total += 2 * max_rows * (size_t)lay->dim[l + 1];
    return total + 2 * max_rows * (size_t)lay->maxw + lay->size;
}

size_t mb_mlp_ws_bytes(const mb_mlp_spec *s, size_t max_rows) {
    if (!s || mb_mlp_spec_check(s, NULL, NULL, 0) != MB_OK || max_rows == 0) return 0;
    mlp__layout lay;
    mlp__layout_of(s, &lay);
    return sizeof(mb_mlp_ws) + mlp__ws_floats(&lay, max_rows) * sizeof(float);
}

mb_mlp_ws *mb_mlp_ws_new(const mb_mlp_spec *s, size_t max_rows) {
    if (!s || mb_mlp_spec_check(s, NULL, NULL, 0) != MB_OK || max_rows == 0) return NULL;
    mb_mlp_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    mlp__layout_of(s, &ws->lay);
    const mlp__layout *lay = &ws->lay;
    ws->act = s->activation;
    ws->rows = max_rows;
    size_t total = mlp__ws_floats(lay, max_rows);
    ws->mem = malloc(total * sizeof(float));
    if (!ws->mem) {
        free(ws);
        return NULL;
    }
    float *p = ws->mem;
    for (int l = 0; l < lay->L; l++) {
        ws->z[l] = p;
        p += max_rows * (size_t)lay->dim[l + 1];
        ws->h[l] = p;
        p += max_rows * (size_t)lay->dim[l + 1];
    }
    ws->d0 = p;
    p += max_rows * (size_t)lay->maxw;
    ws->d1 = p;
    p += max_rows * (size_t)lay->maxw;
    ws->wt = p;
    return ws;
}

void mb_mlp_ws_free(mb_mlp_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    free(ws);
}

size_t mb_mlp_ws_rows(const mb_mlp_ws *ws) { return ws ? ws->rows : 0; }

/* ---- forward ------------------------------------------------------------- */

/* y (nr, out) += b row-wise */
static void mlp__add_bias(float *y, const float *b, size_t nr, int out) {
    for (size_t r = 0; r < nr; r++)
        for (int j = 0; j < out; j++) y[r * (size_t)out + j] += b[j];
}

void mb_mlp_forward(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws, const float *x,
                    size_t n, float *y) {
    const mlp__layout *lay = &ws->lay;
    assert(lay->size == mb_mlp_size(s) && lay->dim[0] == s->in_dim);
    const int L = lay->L;
    for (size_t r0 = 0; r0 < n; r0 += ws->rows) {
        size_t nr = n - r0 < ws->rows ? n - r0 : ws->rows;
        const float *a = x + r0 * (size_t)lay->dim[0];
        float *bufs[2] = {ws->d0, ws->d1};
        for (int l = 0; l < L; l++) {
            float *o = bufs[l & 1];
            mb_gemm_nn_bias_act(nr, lay->dim[l + 1], lay->dim[l], a, params + lay->W[l],
                                params + lay->b[l], s->activation, o);
            a = o;
        }
        float *yo = y + r0 * (size_t)lay->dim[L + 1];
        mb_gemm_nn(nr, lay->dim[L + 1], lay->dim[L], a, params + lay->W[L], yo, 0);
        mlp__add_bias(yo, params + lay->b[L], nr, lay->dim[L + 1]);
    }
}

void mb_mlp_forward_train(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws,
                          const float *x, size_t n, float *y) {
    const mlp__layout *lay = &ws->lay;
    assert(lay->size == mb_mlp_size(s) && n <= ws->rows);
    (void)s;
    const int L = lay->L;
    const float *prev = x;
    for (int l = 0; l < L; l++) {
        mb_gemm_nn(n, lay->dim[l + 1], lay->dim[l], prev, params + lay->W[l], ws->z[l], 0);
        mb_bias_act_forward_aux(ws->act, ws->z[l], params + lay->b[l], ws->h[l], ws->z[l], n,
                                lay->dim[l + 1]);
        prev = ws->h[l];
    }
    mb_gemm_nn(n, lay->dim[L + 1], lay->dim[L], prev, params + lay->W[L], y, 0);
    mlp__add_bias(y, params + lay->b[L], n, lay->dim[L + 1]);
}

/* dst (cols, rows) = src (rows, cols)^T */
static void mlp__transpose(const float *src, float *dst, int rows, int cols) {
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

void mb_mlp_backward(const mb_mlp_spec *s, const float *params, mb_mlp_ws *ws, const float *x,
                     size_t n, const float *dy, float *grad, int accumulate, float *dx) {
    const mlp__layout *lay = &ws->lay;
    assert(lay->size == mb_mlp_size(s) && n <= ws->rows);
    (void)s;
    const int L = lay->L;
    if (n == 0) {
        if (grad && !accumulate) memset(grad, 0, lay->size * sizeof(float));
        return;
    }
    if (grad && !accumulate)
        for (int l = 0; l <= L; l++) memset(grad + lay->b[l], 0, (size_t)lay->dim[l + 1] * sizeof(float));
    const int lo = dx ? 0 : 1; /* W_0^T only for the input gradient */
    for (int l = lo; l <= L; l++)
        mlp__transpose(params + lay->W[l], ws->wt + lay->W[l], lay->dim[l], lay->dim[l + 1]);
    /* output layer: dW_L (+)= h_{L-1}^T dy; db_L += colsum dy */
    const int out = lay->dim[L + 1];
    if (grad) {
        mb_gemm_tn(lay->dim[L], out, n, ws->h[L - 1], dy, grad + lay->W[L], accumulate);
        float *gb = grad + lay->b[L];
        for (size_t r = 0; r < n; r++)
            for (int j = 0; j < out; j++) gb[j] += dy[r * (size_t)out + j];
    }
    float *cur = ws->d0, *other = ws->d1;
    mb_gemm_nn(n, lay->dim[L], out, dy, ws->wt + lay->W[L], cur, 0);
    for (int l = L - 1; l >= 0; l--) {
        int w = lay->dim[l + 1], win = lay->dim[l];
        mb_act_backward_aux(ws->act, ws->h[l], ws->z[l], cur, cur, grad ? grad + lay->b[l] : NULL,
                            n, w);
        const float *in = l > 0 ? ws->h[l - 1] : x;
        if (grad) mb_gemm_tn(win, w, n, in, cur, grad + lay->W[l], accumulate);
        if (l > 0) {
            mb_gemm_nn(n, win, w, cur, ws->wt + lay->W[l], other, 0);
            float *t = cur;
            cur = other;
            other = t;
        } else if (dx) {
            mb_gemm_nn(n, win, w, cur, ws->wt + lay->W[0], dx, 0);
        }
    }
}
