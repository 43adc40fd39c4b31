/* term_fit.c: fits the termination head (see term_fit.h). */
#include "learn/term_fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/rng.h"

#define TF__BATCH 64
#define TF__EPOCHS 20
#define TF__MIN_STEPS 500
#define TF__MAX_STEPS 3000
#define TF__LR 3e-3f

/* Normalised next observation of slot into x (obs_dim). */
static void tf__row(const mb_ensemble *e, const mb_buffer *b, size_t slot, float *x) {
    int O = b->obs_dim;
    const float *s = b->next_obs + slot * (size_t)O;
    for (int i = 0; i < O; i++) x[i] = (s[i] - e->in_mean[i]) / e->in_std[i];
}

mb_status mb_term_fit(mb_ensemble *e, const mb_buffer *buf, const size_t *train, size_t n_train,
                      const size_t *score, size_t n_score, uint64_t seed, mb_term_fit_result *res,
                      char *err, size_t err_sz) {
    memset(res, 0, sizeof *res);
    res->acc_pos = res->acc_neg = NAN;
    mb_term_head *h = &e->term;
    if (!h->params || h->in_dim != buf->obs_dim)
        return mb_fail(err, err_sz, MB_EINVAL, "termination head: none, or made for other dims");
    if (n_train == 0) return MB_OK;
    size_t n_pos = 0;
    for (size_t i = 0; i < n_train; i++) n_pos += buf->terminated[train[i]] != 0;
    res->n_pos = n_pos;
    /* each class weighs half the rows over its count */
    double w_pos = n_pos ? 0.5 * (double)n_train / (double)n_pos : 0.0;
    double w_neg = n_pos < n_train ? 0.5 * (double)n_train / (double)(n_train - n_pos) : 0.0;
    if (!n_pos) w_neg = 1.0;
    if (n_pos == n_train) w_pos = 1.0;
    int O = buf->obs_dim;
    mb_adam opt;
    memset(&opt, 0, sizeof opt);
    float *x = malloc((size_t)TF__BATCH * (size_t)O * sizeof(float));
    float *grad = malloc(h->n_params * sizeof(float));
    mb_status st = mb_adam_init(&opt, h->n_params, TF__LR, err, err_sz);
    if (st == MB_OK && (!x || !grad)) st = mb_fail(err, err_sz, MB_ENOMEM, "termination head: out of memory");
    if (st == MB_OK) {
        float y[TF__BATCH], w[TF__BATCH];
        long steps = (long)TF__EPOCHS * (long)((n_train + TF__BATCH - 1) / TF__BATCH);
        steps = steps < TF__MIN_STEPS ? TF__MIN_STEPS : steps > TF__MAX_STEPS ? TF__MAX_STEPS : steps;
        mb_rng r;
        mb_rng_seed(&r, seed ^ 0x7e57f17ull);
        for (long s = 0; s < steps; s++) {
            for (int i = 0; i < TF__BATCH; i++) {
                size_t slot = train[mb_rng_below(&r, n_train)];
                tf__row(e, buf, slot, x + (size_t)i * O);
                y[i] = buf->terminated[slot] ? 1.0f : 0.0f;
                w[i] = (float)(y[i] > 0 ? w_pos : w_neg);
            }
            mb_term_head_loss_grad(h, x, y, w, TF__BATCH, grad);
            mb_adam_step(&opt, h->params, grad);
        }
        res->steps = (int)steps;
        /* score: class-balanced BCE and per-class accuracy */
        double lp = 0.0, ln = 0.0;
        size_t sp = 0, sn = 0, okp = 0, okn = 0;
        for (size_t i = 0; i < n_score; i++) {
            size_t slot = score[i];
            tf__row(e, buf, slot, x);
            double z = (double)mb_term_head_logit(h, x);
            double sp_z = z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
            if (buf->terminated[slot]) {
                lp += sp_z - z;
                sp++;
                okp += z > 0;
            } else {
                ln += sp_z;
                sn++;
                okn += z <= 0;
            }
        }
        double loss = 0.0;
        int classes = 0;
        if (sp) { loss += lp / (double)sp; classes++; res->acc_pos = (float)okp / (float)sp; }
        if (sn) { loss += ln / (double)sn; classes++; res->acc_neg = (float)okn / (float)sn; }
        res->loss = classes ? (float)(loss / classes) : 0.0f;
    }
    mb_adam_free(&opt);
    free(x);
    free(grad);
    return st;
}
