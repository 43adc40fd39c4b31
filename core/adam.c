/* adam.c: Adam with bias correction over one flat parameter block
 * (Kingma & Ba 2015; the update PyTorch's torch.optim.Adam makes without
 * weight decay: decay is part of the ensemble's loss).
 * Not for: knowing what the parameters mean (layout lives in ensemble.c). */
#include "ensemble.h"

#include <math.h>
#include <stdlib.h>

mb_status mb_adam_init(mb_adam *a, size_t n, float lr, char *err, size_t err_sz) {
    if (!a) return mb_fail(err, err_sz, MB_EINVAL, "adam: NULL state");
    a->m = a->v = NULL;
    if (n == 0) return mb_fail(err, err_sz, MB_EINVAL, "adam: empty parameter block");
    if (!(lr > 0 && isfinite(lr)))
        return mb_fail(err, err_sz, MB_EINVAL, "adam: learning rate must be > 0 and finite");
    a->lr = lr;
    a->beta1 = 0.9f;
    a->beta2 = 0.999f;
    a->eps = 1e-8f;
    a->t = 0;
    a->n = n;
    a->m = calloc(n, sizeof(float));
    a->v = calloc(n, sizeof(float));
    if (!a->m || !a->v) {
        mb_adam_free(a);
        return mb_fail(err, err_sz, MB_ENOMEM, "adam: cannot allocate %zu floats", 2 * n);
    }
    return MB_OK;
}

void mb_adam_free(mb_adam *a) {
    if (!a) return;
    free(a->m);
    free(a->v);
    a->m = a->v = NULL;
    a->n = 0;
}

void mb_adam_step(mb_adam *a, float *params, const float *grad) {
    a->t++;
    /* Bias corrections in double: 1 - beta^t loses digits in float for
     * large t. p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps), as PyTorch. */
    double bc1 = 1.0 - pow((double)a->beta1, (double)a->t);
    double bc2 = 1.0 - pow((double)a->beta2, (double)a->t);
    const float step = (float)(a->lr / bc1);
    const float inv_sqrt_bc2 = (float)(1.0 / sqrt(bc2));
    const float b1 = a->beta1, b2 = a->beta2, eps = a->eps;
    float *restrict m = a->m, *restrict v = a->v;
    for (size_t i = 0; i < a->n; i++) {
        float g = grad[i];
        float mi = b1 * m[i] + (1.0f - b1) * g;
        float vi = b2 * v[i] + (1.0f - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        params[i] -= step * mi / (sqrtf(vi) * inv_sqrt_bc2 + eps);
    }
}
