/* term_head.h: the learned termination head (ensemble.learn_termination).
 *
 * A Bernoulli classifier p(terminated | s') on the next observation s', the
 * state Gymnasium's `terminated` is a function of: an MLP obs_dim -> 64 ->
 * 64 -> 1 with tanh hidden units and a logistic output, on s' normalised by
 * the ensemble's input normaliser (its observation part). It shares no
 * weights with the dynamics members: it is fitted after them on the same
 * rows (core/learn/term_fit.c), so the ensemble's forward kernels and this
 * head stay independent. One head per ensemble (not per member): the
 * members' disagreement already spreads the particles; the head only says
 * where a state ends an episode.
 *
 * Parameter layout (floats, in this order): W1 (obs_dim, 64), b1 (64),
 * W2 (64, 64), b2 (64), w3 (64), b3 (1). Gradients use the same layout.
 *
 * The loss is class-weighted binary cross-entropy: mean over rows of
 * w_i * (softplus(z_i) - y_i z_i), z the logit; the fitter weighs each class
 * by half the rows over its count (terminations are rare: balanced classes
 * put the boundary where either mistake costs the same).
 * Not for: fitting (core/learn/term_fit.c) or planning (core/plan/propagate.c
 * ends particles with it). */
#ifndef MB_TERM_HEAD_H
#define MB_TERM_HEAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"

#define MB_TERM_HIDDEN 64
/* The planner ends a particle at a predicted next state with p(terminated)
 * above this. A threshold, not a coin flip per step: sampling would end
 * every particle somewhere along a long horizon whenever p is small but
 * not zero (p = 0.02 per step ends 45% of 30-step rollouts), adding variance
 * to every candidate's return for no information; the particles already
 * carry the model's uncertainty, and the class-balanced fit puts p = 0.5
 * where either mistake costs the same. */
#define MB_TERM_THRESHOLD 0.5f

typedef struct {
    int in_dim;        /* obs_dim */
    size_t n_params;
    float *params;     /* owned */
} mb_term_head;

/* Floats of a head on obs_dim inputs. */
size_t mb_term_head_size(int obs_dim);
/* Weights ~ uniform(+-1/sqrt(fan_in)), biases 0 but the output's, -3.9
 * (p = 0.02: an untrained head ends no particle). Same seed, same head. */
mb_status mb_term_head_init(mb_term_head *h, int obs_dim, uint64_t seed, char *err, size_t err_sz);
void mb_term_head_free(mb_term_head *h);
mb_status mb_term_head_copy(mb_term_head *dst, const mb_term_head *src, char *err, size_t err_sz);

/* The logit of one row of normalised inputs xn (in_dim). No allocation. */
float mb_term_head_logit(const mb_term_head *h, const float *xn);
/* p(terminated) of one raw next observation s (in_dim), normalised here by
 * (s - mean) / std (the ensemble's input mean and std, obs part). */
float mb_term_head_prob(const mb_term_head *h, const float *mean, const float *std, const float *s);

/* Loss (see above) over n rows of normalised inputs xn (n, in_dim), labels
 * y (n, 0 or 1) and row weights w (n); grad (n_params) is overwritten with
 * its gradient. No allocation. */
double mb_term_head_loss_grad(const mb_term_head *h, const float *xn, const float *y,
                              const float *w, size_t n, float *grad);

#endif
