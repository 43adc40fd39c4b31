/* term_fit.h: fits the learned termination head (nn/term_head.h) of an
 * ensemble to a replay buffer's (next_obs, terminated) rows; mb_train calls
 * it after the dynamics members when spec.learn_termination is set.
 *
 * Class-balanced: each class weighs half the rows over its count, so a rare
 * termination counts as much as the many steps that did not end. Minibatches
 * of 64 rows drawn with replacement, Adam (lr 3e-3, its own state, fresh
 * each call; the weights are warm), clamp(20 epochs, 500, 3000) steps. With
 * no terminations in the data it still trains (towards "never"): the head
 * starts at p = 0.02 everywhere, so an untrained head ends no particle.
 * Not for: planning with the head (core/plan/propagate.c). */
#ifndef MB_TERM_FIT_H
#define MB_TERM_FIT_H

#include "learn/buffer.h"
#include "nn/ensemble.h"

typedef struct {
    int steps;          /* Adam steps taken */
    size_t n_pos;       /* terminated rows among the training rows */
    float loss;         /* class-balanced BCE on the score rows */
    float acc_pos;      /* fraction of terminated score rows with p > 0.5 (NAN: none) */
    float acc_neg;      /* fraction of the other score rows with p <= 0.5 (NAN: none) */
} mb_term_fit_result;

/* Fits e->term on buf's slots train[0..n_train) (inputs normalised by e's
 * input normaliser, obs part), scores it on score[0..n_score) (the holdout,
 * or the training rows). MB_EINVAL when e has no head, MB_ENOMEM. */
mb_status mb_term_fit(mb_ensemble *e, const mb_buffer *buf, const size_t *train, size_t n_train,
                      const size_t *score, size_t n_score, uint64_t seed, mb_term_fit_result *res,
                      char *err, size_t err_sz);

#endif
