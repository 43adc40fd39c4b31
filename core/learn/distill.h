/* distill.h: planner distillation with DAgger relabelling (Ross et al.
 * 2011): a policy trained to imitate the planner on the states the policy
 * itself visits, so it does not drift off the data.
 *
 * One round:
 *   1. visited states: round 0 takes `states` states the robots visited
 *      (drawn from the replay buffer); later rounds start from buffer
 *      states and roll the current policy (deterministic actions) through
 *      the model (mb_rollout_step) for a number of steps drawn per row in
 *      [1, horizon], keeping the state each row reached (rows that end
 *      early keep their last live state);
 *   2. the planner labels every visited state (mb_plan from a cold start);
 *   3. the (state, label) pairs join an aggregated dataset (a ring of
 *      max_dataset pairs: DAgger keeps every round's labels);
 *   4. `updates` minibatch steps of Adam on
 *        0.5 mean_rows sum_j ((a_j - label_j) / scale_j)^2,
 *      a the policy's deterministic action, scale_j half the action range.
 * Description vs state: mb_distill_cfg is const; mb_distill (the dataset,
 * round counter, generator) is the run's state; the policy and its Adam are
 * the caller's (an mb_sac's pi and opt_pi in the server).
 * Not for: the planners (plan/), job bookkeeping (server/). */
#ifndef MB_DISTILL_H
#define MB_DISTILL_H

#include "learn/buffer.h"
#include "learn/rollout.h"
#include "nn/ensemble.h"
#include "nn/policy.h"
#include "plan/planner.h"

typedef struct {
    int states;          /* labelled per round, 1..100000; 256 */
    int horizon;         /* policy steps through the model, 1..1000; 10 */
    int updates;         /* minibatch steps per round, 0..100000; 200 */
    int batch_size;      /* 1..65536; 128 */
    float lr;            /* Adam step size; 1e-3 */
    int max_dataset;     /* pairs kept, >= states; 50000 */
} mb_distill_cfg;

void mb_distill_cfg_default(mb_distill_cfg *c);
mb_status mb_distill_cfg_check(const mb_distill_cfg *c, char *err, size_t err_sz);

typedef struct {
    int obs_dim, act_dim;
    size_t cap, n, head;  /* ring of labelled pairs */
    float *obs, *act;     /* (cap, obs_dim), (cap, act_dim), owned */
    long rounds;
    mb_rng rng;
} mb_distill;

mb_status mb_distill_init(mb_distill *d, const mb_distill_cfg *cfg, int obs_dim, int act_dim,
                          uint64_t seed, char *err, size_t err_sz);
void mb_distill_free(mb_distill *d);

/* The teacher: a planner over the model. should_stop (may be NULL) is
 * asked between labels; non-zero ends the round with MB_ECANCELED. */
typedef struct {
    const mb_planner_cfg *cfg;
    const mb_dynamics *dyn;
    const mb_reward_spec *rw;  /* may be NULL */
    mb_plan_ws *ws;            /* from mb_plan_ws_new(cfg, dyn) */
    mb_pool *pool;             /* may be NULL */
    int (*should_stop)(void *ctx);
    void *stop_ctx;
} mb_distill_teacher;

typedef struct mb_distill_ws mb_distill_ws;
mb_distill_ws *mb_distill_ws_new(const mb_distill_cfg *cfg, const mb_policy *pi,
                                 const mb_dynamics *dyn);
void mb_distill_ws_free(mb_distill_ws *ws);

typedef struct {
    float loss;          /* mean minibatch loss of the round's updates */
    float gap;           /* mean |policy - planner| / scale over the round's new
                            states before training (DAgger's on-policy error) */
    size_t dataset;      /* pairs held */
    size_t labelled;     /* labels made this round */
} mb_distill_stats;

/* One round (see above). MB_ESTATE on an empty buffer; MB_ECANCELED when
 * should_stop said so (the pairs labelled so far are kept, no update);
 * planner errors pass through. */
mb_status mb_distill_round(mb_distill *d, mb_policy *pi, mb_adam *opt, const mb_distill_cfg *cfg,
                           const mb_buffer *real, const mb_distill_teacher *teacher,
                           mb_distill_ws *ws, mb_distill_stats *stats, char *err, size_t err_sz);

/* The loss and its gradient step on given pairs (obs (n, obs_dim), label
 * (n, act_dim)), n <= the ws's batch; returns the loss. Used by
 * mb_distill_round and the tests. */
float mb_distill_update(mb_policy *pi, mb_adam *opt, mb_distill_ws *ws, const float *obs,
                        const float *label, size_t n);

#endif
