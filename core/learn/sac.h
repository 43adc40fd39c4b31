/* sac.h: soft actor-critic (Haarnoja et al. 2018, "SAC v2": twin critics
 * with Polyak target copies, automatic entropy tuning), plus a state-value
 * network fitted to the soft value for MPC's terminal value.
 *
 * One update on a batch (obs, act, rew, next_obs, done) of B rows:
 *   critics:  y = r + gamma (1 - done) (min_k Q'_k(s', a') - alpha log pi(a'|s')),
 *             a' ~ pi(s'); loss = mean_k mean_rows 0.5 (Q_k(s, a) - y)^2
 *   actor:    a ~ pi(s) (reparameterised), loss = mean(alpha log pi(a|s)
 *             - min_k Q_k(s, a)) with the just-updated critics
 *   alpha:    log alpha -= lr * d/d log alpha [ -log alpha mean(log pi + H*) ],
 *             H* = target entropy (default -act_dim)
 *   value:    V(s) -> min_k Q_k(s, a) - alpha log pi(a|s) (the actor's a),
 *             loss mean 0.5 (V - target)^2
 *   targets:  Q' = (1 - tau) Q' + tau Q.
 * Each network has its own Adam over its block (nn/adam.c).
 * Parallelism: with a pool of P workers the batch is cut into P pieces of
 * consecutive rows, each piece's gradient computed on its own workspace and
 * the pieces summed in a fixed order: the same (seed, P) gives the same
 * weights. The noise is drawn on the calling thread before the pieces run.
 * Description vs state: mb_sac_cfg is const; mb_sac (networks, optimisers,
 * alpha) is what a snapshot keeps; mb_sac_ws is per-caller scratch that
 * also holds the batch the caller fills.
 * Not for: where the batch comes from (mbpo.c), job bookkeeping (server/). */
#ifndef MB_SAC_H
#define MB_SAC_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/pool.h"
#include "base/rng.h"
#include "nn/ensemble.h"
#include "nn/policy.h"
#include "nn/qnet.h"
#include "nn/vnet.h"

typedef struct {
    float gamma;          /* discount, (0, 1]; 0.99 */
    float tau;            /* Polyak rate, [0, 1]; 0.005 */
    float lr_actor, lr_critic, lr_alpha, lr_value; /* Adam step sizes; 3e-4 */
    int batch_size;       /* rows per update, 1..MB_SAC_MAX_BATCH; 256 */
    int auto_alpha;       /* 1: tune alpha toward the target entropy; 1 */
    float init_alpha;     /* alpha at creation (and fixed when auto_alpha 0); 0.2 */
    float target_entropy; /* NAN: -act_dim */
    int train_value;      /* 1: fit V to the soft value; 1 */
} mb_sac_cfg;

#define MB_SAC_MAX_BATCH 65536

void mb_sac_cfg_default(mb_sac_cfg *c);
mb_status mb_sac_cfg_check(const mb_sac_cfg *c, char *err, size_t err_sz);

/* The networks' shapes: one hidden stack for policy, critics and value. */
typedef struct {
    int obs_dim, act_dim;
    int n_hidden;
    int hidden[MB_MAX_LAYERS];
    mb_activation activation;
    float act_low[MB_MAX_ACT_DIM], act_high[MB_MAX_ACT_DIM];
} mb_agent_spec;

/* 2 x 256 ReLU, bounds [-1, 1]; dims 0. */
void mb_agent_spec_default(mb_agent_spec *s);
mb_status mb_agent_spec_check(const mb_agent_spec *s, char *err, size_t err_sz);
void mb_agent_policy_spec(const mb_agent_spec *s, mb_policy_spec *out);
void mb_agent_qnet_spec(const mb_agent_spec *s, mb_qnet_spec *out);
void mb_agent_vnet_spec(const mb_agent_spec *s, mb_vnet_spec *out);

/* Losses of the last update (means over the batch). */
typedef struct {
    float critic, actor, alpha_loss, value;
    float alpha;     /* entropy coefficient after the update */
    float entropy;   /* -mean log pi of the actor's samples */
    float q_mean;    /* mean min_k Q_k(s, a ~ pi) */
} mb_sac_losses;

typedef struct {
    mb_agent_spec spec;
    mb_policy pi;
    mb_qnet q;
    mb_vnet v;
    float log_alpha;
    mb_adam opt_pi, opt_q, opt_v, opt_alpha;
    long updates;          /* updates made over the agent's life */
    mb_sac_losses last;
} mb_sac;

/* Allocates networks (seeded from seed) and optimisers (lr from cfg). */
mb_status mb_sac_init(mb_sac *s, const mb_agent_spec *spec, const mb_sac_cfg *cfg, uint64_t seed,
                      char *err, size_t err_sz);
void mb_sac_free(mb_sac *s);
/* dst = deep copy of src, optimiser state included. */
mb_status mb_sac_copy(mb_sac *dst, const mb_sac *src, char *err, size_t err_sz);
/* exp(log_alpha), the entropy coefficient. */
float mb_sac_alpha(const mb_sac *s);
/* Sets every optimiser's step size from cfg (a warm agent takes new rates). */
void mb_sac_set_lr(mb_sac *s, const mb_sac_cfg *cfg);

typedef struct mb_sac_ws mb_sac_ws;
/* Scratch for updates of cfg->batch_size rows split over `pieces` (>= 1,
 * normally the pool's size). NULL on allocation failure. */
mb_sac_ws *mb_sac_ws_new(const mb_sac *s, const mb_sac_cfg *cfg, int pieces);
void mb_sac_ws_free(mb_sac_ws *ws);

/* The batch the caller fills before mb_sac_update (batch_size rows):
 * obs, next_obs (B, obs_dim); act (B, act_dim); rew, done (B) (done 1.0
 * for a terminal transition: no bootstrap; 0.0 otherwise). */
typedef struct {
    float *obs, *act, *rew, *next_obs, *done;
    size_t n;
} mb_sac_batch;
mb_sac_batch *mb_sac_ws_batch(mb_sac_ws *ws);

/* One update on the ws's batch (see the top of this file). rng draws the
 * noise; pool may be NULL (pieces then run one after another on the
 * caller, same numbers). losses may be NULL (s->last is set either way).
 * MB_ERANGE when a loss is not finite (the update is not applied to the
 * remaining networks; the caller stops). */
mb_status mb_sac_update(mb_sac *s, const mb_sac_cfg *cfg, mb_sac_ws *ws, mb_rng *rng,
                        mb_pool *pool, mb_sac_losses *losses, char *err, size_t err_sz);
/* FLOPs of one update's matrix products (forward 2 per MAC, backward twice
 * the forward per network pass that computes weight gradients), for the
 * benchmark's GFLOP/s. */
double mb_sac_flops_per_update(const mb_sac *s, const mb_sac_cfg *cfg);

#endif
