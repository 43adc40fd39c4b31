/* term_head.c: the learned termination head (see term_head.h). Row at a
 * time with the hidden layers on the stack: the head is small next to the
 * dynamics members (2 x 64 units), and a row-wise forward lets the planner
 * call it from any pool task without scratch of its own. */
#include "nn/term_head.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

enum { TH = MB_TERM_HIDDEN };

size_t mb_term_head_size(int obs_dim) {
    return (size_t)obs_dim * TH + TH + (size_t)TH * TH + TH + TH + 1;
}

/* Pointers into a block with the head's layout. */
typedef struct {
    float *W1, *b1, *W2, *b2, *w3, *b3;
} th__parts;

static th__parts th__split(float *p, int in) {
    th__parts q;
    q.W1 = p;
    q.b1 = q.W1 + (size_t)in * TH;
    q.W2 = q.b1 + TH;
    q.b2 = q.W2 + (size_t)TH * TH;
    q.w3 = q.b2 + TH;
    q.b3 = q.w3 + TH;
    return q;
}

mb_status mb_term_head_init(mb_term_head *h, int obs_dim, uint64_t seed, char *err, size_t err_sz) {
    memset(h, 0, sizeof *h);
    if (obs_dim < 1 || obs_dim > MB_MAX_OBS_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "termination head: obs_dim %d out of range", obs_dim);
    h->in_dim = obs_dim;
    h->n_params = mb_term_head_size(obs_dim);
    h->params = calloc(h->n_params, sizeof(float));
    if (!h->params) return mb_fail(err, err_sz, MB_ENOMEM, "termination head: out of memory");
    mb_rng r;
    mb_rng_seed(&r, seed ^ 0x7e53ull);
    th__parts q = th__split(h->params, obs_dim);
    double a1 = 1.0 / sqrt((double)obs_dim), a2 = 1.0 / sqrt((double)TH);
    for (size_t i = 0; i < (size_t)obs_dim * TH; i++) q.W1[i] = (float)(a1 * (2.0 * mb_rng_uniform(&r) - 1.0));
    for (size_t i = 0; i < (size_t)TH * TH; i++) q.W2[i] = (float)(a2 * (2.0 * mb_rng_uniform(&r) - 1.0));
    for (int i = 0; i < TH; i++) q.w3[i] = (float)(a2 * (2.0 * mb_rng_uniform(&r) - 1.0));
    q.b3[0] = -3.9f; /* p = 0.02: an untrained head ends no particle */
    return MB_OK;
}

void mb_term_head_free(mb_term_head *h) {
    if (!h) return;
    free(h->params);
    memset(h, 0, sizeof *h);
}

mb_status mb_term_head_copy(mb_term_head *dst, const mb_term_head *src, char *err, size_t err_sz) {
    memset(dst, 0, sizeof *dst);
    dst->params = malloc(src->n_params * sizeof(float));
    if (!dst->params) return mb_fail(err, err_sz, MB_ENOMEM, "termination head: out of memory");
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    dst->in_dim = src->in_dim;
    dst->n_params = src->n_params;
    return MB_OK;
}

/* Forward of one row: h1, h2 (TH each) kept for the backward; the logit. */
static float th__forward(const mb_term_head *h, const float *xn, float *h1, float *h2) {
    th__parts q = th__split(h->params, h->in_dim);
    int in = h->in_dim;
    for (int j = 0; j < TH; j++) h1[j] = q.b1[j];
    for (int i = 0; i < in; i++) {
        float x = xn[i];
        const float *w = q.W1 + (size_t)i * TH;
        for (int j = 0; j < TH; j++) h1[j] += x * w[j];
    }
    for (int j = 0; j < TH; j++) h1[j] = tanhf(h1[j]);
    for (int j = 0; j < TH; j++) h2[j] = q.b2[j];
    for (int i = 0; i < TH; i++) {
        float x = h1[i];
        const float *w = q.W2 + (size_t)i * TH;
        for (int j = 0; j < TH; j++) h2[j] += x * w[j];
    }
    float z = q.b3[0];
    for (int j = 0; j < TH; j++) {
        h2[j] = tanhf(h2[j]);
        z += h2[j] * q.w3[j];
    }
    return z;
}

float mb_term_head_logit(const mb_term_head *h, const float *xn) {
    float h1[TH], h2[TH];
    return th__forward(h, xn, h1, h2);
}

float mb_term_head_prob(const mb_term_head *h, const float *mean, const float *std, const float *s) {
    float xn[MB_MAX_OBS_DIM];
    for (int i = 0; i < h->in_dim; i++) xn[i] = (s[i] - mean[i]) / std[i];
    float z = mb_term_head_logit(h, xn);
    return 1.0f / (1.0f + expf(-z));
}

/* softplus(z) - y z, stable for either sign of z. */
static double th__bce(double z, double y) {
    double sp = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
    return sp - y * z;
}

double mb_term_head_loss_grad(const mb_term_head *h, const float *xn, const float *y,
                              const float *w, size_t n, float *grad) {
    int in = h->in_dim;
    memset(grad, 0, h->n_params * sizeof(float));
    th__parts q = th__split(h->params, in), g = th__split(grad, in);
    double loss = 0.0, inv_n = n ? 1.0 / (double)n : 0.0;
    float h1[TH], h2[TH], d2[TH], d1[TH];
    for (size_t r = 0; r < n; r++) {
        const float *x = xn + r * (size_t)in;
        float z = th__forward(h, x, h1, h2);
        loss += (double)w[r] * th__bce((double)z, (double)y[r]);
        /* d loss / d z = w (sigmoid(z) - y) / n */
        float dz = (float)((double)w[r] * (1.0 / (1.0 + exp(-(double)z)) - (double)y[r]) * inv_n);
        g.b3[0] += dz;
        for (int j = 0; j < TH; j++) {
            g.w3[j] += dz * h2[j];
            d2[j] = dz * q.w3[j] * (1.0f - h2[j] * h2[j]);
            g.b2[j] += d2[j];
        }
        for (int i = 0; i < TH; i++) {
            float *gw = g.W2 + (size_t)i * TH;
            const float *ww = q.W2 + (size_t)i * TH;
            float acc = 0.0f;
            for (int j = 0; j < TH; j++) {
                gw[j] += h1[i] * d2[j];
                acc += ww[j] * d2[j];
            }
            d1[i] = acc * (1.0f - h1[i] * h1[i]);
            g.b1[i] += d1[i];
        }
        for (int i = 0; i < in; i++) {
            float *gw = g.W1 + (size_t)i * TH;
            for (int j = 0; j < TH; j++) gw[j] += x[i] * d1[j];
        }
    }
    return loss * inv_n;
}
