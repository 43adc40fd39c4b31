/* reward_quad.c: exact gradients and Hessians of the declared reward terms
 * (formulas in reward_quad.h). Not for: evaluating rewards (reward.c). */
#include "plan/reward_quad.h"

#include <math.h>

void mb_reward_state_quad(const mb_reward_spec *r, int obs_dim, const float *s, double scale,
                          double *g, double *H) {
    const int O = obs_dim;
    for (int i = 0; i < r->n_terms; i++) {
        const mb_reward_term *t = &r->terms[i];
        double w = scale * t->weight;
        switch (t->type) {
        case MB_TERM_LINEAR:
            g[t->idx[0]] += w;
            break;
        case MB_TERM_QUADRATIC:
            for (int j = 0; j < t->n_idx; j++) {
                int k = t->idx[j];
                g[k] += -2.0 * w * ((double)s[k] - t->target[j]);
                if (H) H[k * O + k] += -2.0 * w;
            }
            break;
        case MB_TERM_NORM: {
            double d[MB_MAX_TERM_IDX], q = 0.0;
            for (int j = 0; j < t->n_idx; j++) {
                d[j] = (double)s[t->idx[j]] - (t->n_other ? (double)s[t->other[j]] : t->target[j]);
                q += d[j] * d[j];
            }
            double nrm = sqrt(q);
            if (nrm >= 1e-6)
                for (int j = 0; j < t->n_idx; j++) {
                    double gj = -w * d[j] / nrm;
                    g[t->idx[j]] += gj;
                    if (t->n_other) g[t->other[j]] -= gj;
                }
            if (!H) break;
            double nh = nrm > 1e-3 ? nrm : 1e-3;
            for (int a = 0; a < t->n_idx; a++)
                for (int b = 0; b < t->n_idx; b++) {
                    double h = -w * ((a == b ? 1.0 : 0.0) - d[a] * d[b] / (nh * nh)) / nh;
                    /* d_a depends on s[idx_a] (+1) and s[other_a] (-1) */
                    H[t->idx[a] * O + t->idx[b]] += h;
                    if (t->n_other) {
                        H[t->other[a] * O + t->other[b]] += h;
                        H[t->idx[a] * O + t->other[b]] -= h;
                        H[t->other[a] * O + t->idx[b]] -= h;
                    }
                }
            break;
        }
        case MB_TERM_ACTION_L2:
        case MB_TERM_CONSTANT:
            break;
        }
    }
}

void mb_reward_action_quad(const mb_reward_spec *r, int act_dim, const float *a, double scale,
                           double *g, double *H) {
    for (int i = 0; i < r->n_terms; i++) {
        const mb_reward_term *t = &r->terms[i];
        if (t->type != MB_TERM_ACTION_L2) continue;
        double w = scale * t->weight;
        for (int j = 0; j < act_dim; j++) {
            g[j] += -2.0 * w * a[j];
            if (H) H[j * act_dim + j] += -2.0 * w;
        }
    }
}
