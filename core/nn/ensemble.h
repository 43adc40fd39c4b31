/* ensemble.h: the probabilistic ensemble of MLP dynamics models (PETS).
 *
 * E members, each an MLP from in_dim = obs_dim + act_dim inputs through the
 * hidden layers to a Gaussian head over out_dim = obs_dim (+1 when the reward
 * is learned) targets: the change s' - s (then the reward). The head outputs
 * mean and log-variance; the log-variance is bounded softly by learned
 * per-member vectors max_logvar / min_logvar:
 *     lv = max - softplus(max - raw);  lv = min + softplus(lv - min).
 * Inputs and targets are normalised by the statistics in the ensemble
 * (identity until the trainer sets them).
 *
 * Description vs state (STYLE.md): mb_ensemble_spec is small and immutable;
 * mb_ensemble holds the parameters (one contiguous float block, members one
 * after another) and the normaliser; mb_ens_ws is per-thread scratch owned by
 * the caller. A published ensemble is only read (const); training works on a
 * copy (mb_ensemble_copy).
 *
 * Per-member parameter layout (floats, in this order; h_0..h_{L-1} hidden):
 *   W_0 (in_dim, h_0), b_0 (h_0), W_1 (h_0, h_1), b_1 (h_1), ...,
 *   W_L (h_{L-1}, 2*out_dim), b_L (2*out_dim)   [columns: mean | raw logvar],
 *   max_logvar (out_dim), min_logvar (out_dim).
 * Gradients and Adam's moments use the same layout, so the optimiser is one
 * flat loop over the block.
 *
 * Not for: sampling/propagation policy (planner.c), data handling (trainer.c). */
#ifndef MB_ENSEMBLE_H
#define MB_ENSEMBLE_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "nn/ops.h"
#include "nn/term_head.h"
#include "base/pool.h"

typedef struct {
    int members;                 /* 1..MB_MAX_MEMBERS */
    int obs_dim, act_dim;        /* 1..MB_MAX_OBS_DIM, 1..MB_MAX_ACT_DIM */
    int learn_reward;            /* 0/1: one more target, the reward */
    int n_hidden;                /* 1..MB_MAX_LAYERS */
    int hidden[MB_MAX_LAYERS];   /* units per hidden layer, 1..MB_MAX_HIDDEN */
    mb_activation activation;
    /* L2 weight decay per weight matrix (n_hidden + 1 entries, head last);
     * the loss adds sum_l weight_decay[l] * 0.5 * ||W_l||^2 (biases excluded). */
    float weight_decay[MB_MAX_LAYERS + 1];
    /* 0/1: a Bernoulli head p(terminated | s') is fitted too (nn/term_head.h) */
    int learn_termination;
} mb_ensemble_spec;

/* Defaults: 5 members, 4 x 200 SiLU, learn_reward 1, PETS weight decays
 * (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4 ...). obs/act dims are left 0. */
void mb_ensemble_spec_default(mb_ensemble_spec *spec);
/* Checks every field against the limits in common.h. */
mb_status mb_ensemble_spec_check(const mb_ensemble_spec *spec, char *err, size_t err_sz);
static inline int mb_ensemble_in_dim(const mb_ensemble_spec *s) { return s->obs_dim + s->act_dim; }
static inline int mb_ensemble_out_dim(const mb_ensemble_spec *s) { return s->obs_dim + (s->learn_reward ? 1 : 0); }
/* Floats per member in the parameter block. */
size_t mb_ensemble_member_size(const mb_ensemble_spec *spec);
/* FLOPs (2 per multiply-add: 2 * sum_l in_l * out_l) of one forward row
 * through one member; activations and the head's bounds are not counted. */
double mb_ensemble_flops_per_row(const mb_ensemble_spec *spec);

/* Precision of the inference products (the planner's "precision"). */
typedef enum { MB_PREC_FP32 = 0, MB_PREC_BF16 = 1 } mb_precision;
/* "fp32" | "bf16" -> 0 and *out; -1 if unknown. */
int mb_precision_parse(const char *name, mb_precision *out);
const char *mb_precision_name(mb_precision p);

struct mb_ens_bf16; /* the packed bf16 copy of the weights (ensemble.c) */

typedef struct {
    mb_ensemble_spec spec;
    size_t member_size;        /* floats per member */
    size_t n_params;           /* members * member_size */
    float *params;             /* (members, member_size), owned */
    float *in_mean, *in_std;   /* (in_dim) input normaliser, owned */
    float *out_mean, *out_std; /* (out_dim) target normaliser, owned */
    int n_elites;              /* members used for planning, best first */
    int elites[MB_MAX_MEMBERS];
    float holdout_loss[MB_MAX_MEMBERS]; /* last holdout loss per member (0 untrained) */
    /* The bf16 copy of the weights (mb_ensemble_bf16_prepare), made at most
     * once per ensemble (a published version), freed with it; NULL until
     * then. Never copied by mb_ensemble_copy. */
    _Atomic(struct mb_ens_bf16 *) bf16;
    mb_term_head term;         /* spec.learn_termination: the termination head (params
                                  NULL otherwise); made, copied and freed with e */
} mb_ensemble;

/* Allocates and initialises: weights ~ truncated normal with std
 * 1/(2 sqrt(fan_in)), biases 0, max_logvar 0.5, min_logvar -10, identity
 * normaliser, all members elite. Same seed, same parameters. */
mb_status mb_ensemble_init(mb_ensemble *e, const mb_ensemble_spec *spec, uint64_t seed,
                           char *err, size_t err_sz);
/* Frees what init/copy allocated; e may be zeroed or NULL. */
void mb_ensemble_free(mb_ensemble *e);
/* dst = deep copy of src (dst uninitialised or freed before). */
mb_status mb_ensemble_copy(mb_ensemble *dst, const mb_ensemble *src, char *err, size_t err_sz);
/* Pointers into member m's block (or into any block with the same layout,
 * e.g. gradients): W_l and b_l for l in [0, n_hidden] (l = n_hidden is the
 * head), and the logvar bounds. */
float *mb_ensemble_layer_W(const mb_ensemble_spec *spec, float *block, int member, int layer);
float *mb_ensemble_layer_b(const mb_ensemble_spec *spec, float *block, int member, int layer);
float *mb_ensemble_max_logvar(const mb_ensemble_spec *spec, float *block, int member);
float *mb_ensemble_min_logvar(const mb_ensemble_spec *spec, float *block, int member);

/* Scratch owned by the caller: one per concurrent caller (planner worker,
 * training piece), never shared between two calls running at once.
 * Its size does not grow with max_rows: inference runs in tiles of at most
 * 256 rows of one member, and the workspace holds one tile buffer per CPU
 * (up to 16), each used by exactly one pool task of a forward call;
 * training and the MSE run in chunks of at most 256 rows (gradients
 * accumulate over chunks). For the PETS network that is ~3 MB on 2 CPUs.
 * max_rows is kept as the caller's contract (mb_ens_ws_rows); NULL on
 * allocation failure or an invalid spec. */
typedef struct mb_ens_ws mb_ens_ws;
mb_ens_ws *mb_ens_ws_new(const mb_ensemble_spec *spec, size_t max_rows);
void mb_ens_ws_free(mb_ens_ws *ws);
/* Bytes mb_ens_ws_new(spec, max_rows) allocates (its two blocks), for
 * budgets checked before anything is allocated; 0 for an invalid spec. */
size_t mb_ens_ws_bytes(const mb_ensemble_spec *spec, size_t max_rows);
size_t mb_ens_ws_rows(const mb_ens_ws *ws);

/* Inference through k members (members[j] for j < k; members == NULL means
 * all, k = spec.members), n rows each, raw (unnormalised) units.
 *   x:    (k, n, in_dim)  obs then action per row
 *   mean: (k, n, out_dim) mean of (s' - s [, r])
 *   std:  (k, n, out_dim) standard deviation, or NULL if not wanted
 * n <= mb_ens_ws_rows(ws). pool may be NULL; with a pool, min(pool size,
 * CPUs, tiles) tasks pull (member, 256-row block) tiles from a shared
 * counter, each task with its own tile buffer in ws. One sgemm per layer per
 * tile, then one fused bias + activation pass. The numbers do not depend on
 * the pool (a tile is computed the same way whichever worker takes it).
 * OpenBLAS should be on one thread (mb_pool_blas_single_thread): measured on
 * this 2-core machine with cblas_sgemm in both, pool 2 x BLAS 1 gave 162
 * GFLOP/s at 2,000 and 20,000 rows per member against 114-116 for BLAS 2
 * threads without a pool. With AVX-512 the forward now uses mb_gemm_nn (no
 * BLAS call), so the pool is its only parallelism. */
void mb_ensemble_forward(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                         const int *members, int k, const float *x, size_t n,
                         float *mean, float *std);

/* bf16 inference (nn/bf16.h). mb_ensemble_bf16_prepare packs every
 * member's weight matrices into bf16 pairs once (allocates ~half the
 * parameter bytes; about a millisecond for the PETS network); later calls
 * return at once, and concurrent first calls are safe (one copy wins, the
 * others are freed). The copy is of the parameters at that moment: only
 * for ensembles that no longer change (published versions). MB_EINVAL
 * when the CPU lacks AVX512_BF16 (or MBRLD_ISA is below avx512).
 * mb_ensemble_forward_prec is mb_ensemble_forward with the hidden layers'
 * and the head's products in bf16 (fp32 accumulation, bias, activations,
 * the head's bounds, mean and std in fp32) when want is MB_PREC_BF16, the
 * copy exists and the CPU has bf16; otherwise fp32. Returns the precision
 * used. Agreement with fp32: one-step means within ~1e-2 of the output
 * scale (test_bf16 states the tolerance). */
mb_status mb_ensemble_bf16_prepare(const mb_ensemble *e, char *err, size_t err_sz);
mb_precision mb_ensemble_forward_prec(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                                      const int *members, int k, const float *x, size_t n,
                                      float *mean, float *std, mb_precision want);

/* Normalises inputs: xn = (x - in_mean) / in_std, x and xn (n, in_dim). */
void mb_ensemble_normalize_inputs(const mb_ensemble *e, const float *x, float *xn, size_t n);

/* Training step for member m on a minibatch, in normalised units.
 *   xn: (n, in_dim) normalised inputs; yn: (n, out_dim) normalised targets
 *   grad: (member_size) member m's slice of a gradient block, i.e.
 *         grad_block + m * member_size; overwritten with d loss / d params
 *         of member m
 * Re-entrant: calls for different members (or the same member with
 * different ws and grad) may run concurrently; n is not bounded by the
 * workspace (rows go through in chunks).
 * Returns the loss: mean over rows of sum over outputs of
 *   0.5 * ((mu - y)^2 * exp(-lv) + lv)
 * + 0.01 * (sum max_logvar - sum min_logvar) + weight decay (see spec). */
float mb_ensemble_loss_grad(const mb_ensemble *e, mb_ens_ws *ws, int member,
                            const float *xn, const float *yn, size_t n, float *grad);
/* Mean squared error of the mean head of member m in normalised target
 * units, averaged over rows and outputs (the holdout score). */
float mb_ensemble_mse(const mb_ensemble *e, mb_ens_ws *ws, int member,
                      const float *xn, const float *yn, size_t n);

/* Adam with bias correction over the whole block (one flat loop). */
typedef struct {
    float lr, beta1, beta2, eps;
    long t;        /* steps taken */
    size_t n;      /* floats */
    float *m, *v;  /* (n) first and second moments, owned, layout = params */
} mb_adam;
mb_status mb_adam_init(mb_adam *a, size_t n, float lr, char *err, size_t err_sz);
void mb_adam_free(mb_adam *a);
/* params -= Adam(grad); both (n). */
void mb_adam_step(mb_adam *a, float *params, const float *grad);

#endif
