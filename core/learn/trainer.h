/* trainer.h: fits an ensemble to a replay buffer (PETS/mbrl-lib style).
 *
 * At the start of a run the normaliser is recomputed (in double) from the
 * training rows; each member trains on its own bootstrap resample of the
 * training rows, in minibatches, with Adam; after every epoch the holdout MSE
 * of every member is measured; training stops after max_epochs or when no
 * member improved by more than min_improvement (relative) for `patience`
 * epochs; each member keeps its best weights; members are ranked by holdout
 * loss and the best n_elites are marked elite. With spec.learn_termination the
 * termination head is fitted afterwards (learn/term_fit.h).
 * Not for: threads or job bookkeeping (the server runs mb_train on a job
 * thread, on a private copy of the ensemble). */
#ifndef MB_TRAINER_H
#define MB_TRAINER_H

#include "learn/buffer.h"
#include "nn/ensemble.h"

typedef struct {
    int max_epochs;        /* >= 1 */
    int patience;          /* epochs without improvement before stopping; 0 = off */
    float min_improvement; /* relative improvement that counts, e.g. 0.01 */
    int batch_size;        /* rows per minibatch per member; 0 = adapts to the rows
                              (mb_train_plan) */
    float lr;              /* Adam step size of this call (a warm optimiser takes it too) */
    size_t max_holdout;    /* holdout rows scored per epoch (0 = all) */
    int n_elites;          /* 1..members; 0 = all members */
    int bootstrap;         /* 1: per-member bootstrap resamples; 0: same rows, own order */
    uint64_t seed;
    /* 0 (default): end with each member's best-scoring weights. 1: end with
     * the last epoch's weights. The score is the MSE of the mean only, so
     * once it plateaus the best-scoring weights may predate a converged
     * variance head; keep_last serves fixed-epoch runs that want the latter. */
    int keep_last;
    /* Early stopping may not end a run before both of these are reached
     * (each capped by max_epochs): min_steps gradient steps per member and
     * min_epochs passes over the data. 0 = no floor. With batch_size 0 the
     * minibatch is also chosen so that max_epochs epochs can give min_steps
     * steps (mb_train_plan). */
    int min_steps;
    int min_epochs;
} mb_train_cfg;

/* The defaults that learn (docs/RESULTS.md, "Defaults that learn"):
 * 100 epochs, patience 5, 0.01, batch 0 (adapts), lr 1e-3, all holdout rows,
 * all members elite, bootstrap on, seed 0, keep the best weights, at least
 * 1000 steps and 5 epochs before early stopping. */
void mb_train_cfg_default(mb_train_cfg *cfg);
mb_status mb_train_cfg_check(const mb_train_cfg *cfg, int members, char *err, size_t err_sz);

/* What a run on n_train training rows will do with cfg. */
typedef struct {
    int batch_size;   /* rows per minibatch per member (cfg's, or the adaptive choice) */
    int steps_per_epoch;
    int min_epochs;   /* first epoch at which early stopping may stop (<= max_epochs) */
} mb_train_sizes;

/* The adaptive rule, for cfg->batch_size 0 (else cfg's batch, capped at
 * n_train):
 *   B = clamp(min(n / 32, n * max_epochs / min_steps), 8, 256), at most n:
 * at least 32 minibatches per epoch (a few hundred rows get Adam steps, not a
 * handful), small enough that max_epochs epochs reach min_steps steps, 256
 * once the data are large (mbrl-lib's size; nothing gains from smaller).
 * min_epochs = max(cfg->min_epochs, ceil(min_steps / steps_per_epoch)),
 * capped at max_epochs. */
void mb_train_plan(const mb_train_cfg *cfg, size_t n_train, mb_train_sizes *out);

typedef struct {
    int epochs;          /* epochs run */
    int best_epoch;      /* epoch (1-based; 0 = the entry weights) of the best mean holdout loss */
    int stopped_early;
    int canceled;
    size_t n_train, n_holdout;
    int batch_size;      /* minibatch rows used (the adaptive choice with batch_size 0) */
    long steps;          /* gradient steps per member run */
    int min_epochs;      /* early stopping was not allowed before this epoch */
    /* spec.learn_termination: the head's fit (learn/term_fit.h; steps 0 if none) */
    int term_steps;
    size_t term_pos;     /* terminated training rows */
    float term_loss, term_acc_pos, term_acc_neg;
    float train_loss[MB_MAX_MEMBERS];   /* last epoch's mean minibatch loss per member
                                           (Gaussian NLL + bound and decay terms) */
    float holdout_loss[MB_MAX_MEMBERS]; /* holdout MSE per member of the weights kept
                                           (the best; the last with keep_last) */
    double seconds;
} mb_train_result;

/* Called after each epoch with per-member losses (members entries each).
 * Return non-zero to cancel (mb_train then returns MB_ECANCELED, and the
 * ensemble keeps the best weights seen so far). */
typedef int (*mb_train_epoch_fn)(void *ctx, int epoch, int members,
                                 const float *train_loss, const float *holdout_loss);

/* Trains `e` in place on `buf` (read only). `opt` holds Adam's state for e's
 * block and survives across calls (warm restarts continue it; a zeroed opt
 * is initialised here; cfg->lr applies either way). When the weights kept
 * are not the last epoch's (best weights rolled back), the optimiser's
 * moments and step count are reset, so a later run does not apply moments
 * that belong to weights thrown away. pool may be NULL; with P workers every
 * minibatch step is split into P equal pieces, so the same (seed, P) gives
 * bit-identical weights, while another P differs by float rounding. All
 * scratch is allocated before the first epoch. cb may be NULL (it runs on the
 * calling thread). Needs at least 2 training (non-holdout) rows. With no
 * holdout rows (ratio 0, or a buffer too small to have any yet) the score is
 * the MSE on training rows (at most max_holdout, or 10,000 when that is 0).
 * The weights at entry are scored first (epoch 0), so a warm restart never
 * ends worse than it began. res may be NULL.
 * Errors: MB_EINVAL (bad arguments, non-finite training rows; e unchanged),
 * MB_ESTATE (too few rows), MB_ENOMEM, MB_ECANCELED (by cb), MB_ERANGE
 * (diverged: a non-finite loss; e keeps its best weights and the optimiser
 * is reset so later runs start clean). */
mb_status mb_train(mb_ensemble *e, mb_adam *opt, const mb_buffer *buf,
                   const mb_train_cfg *cfg, mb_pool *pool, mb_train_epoch_fn cb,
                   void *cb_ctx, mb_train_result *res, char *err, size_t err_sz);

/* Recomputes the normaliser of e from the given slots of buf (double sums).
 * Inputs: (obs, act); targets: (next_obs - obs [, rew]). A std below 1e-6 is
 * set to 1. */
void mb_trainer_fit_normalizer(mb_ensemble *e, const mb_buffer *buf,
                               const size_t *slots, size_t n);

#endif
