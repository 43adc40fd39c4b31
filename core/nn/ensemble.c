/* ensemble.c: the probabilistic ensemble: spec, parameter layout, init,
 * inference forward (tiled over members x row blocks, optionally on a pool),
 * the training loss with its backward pass, and the holdout MSE.
 *
 * Not for: the optimiser (adam.c), data handling and normaliser fitting
 * (trainer.c), sampling across members (planner.c).
 *
 * Numerics: one sgemm per layer per tile (mb_gemm_nn / mb_gemm_tn, see
 * gemm.h; the input gradient dy W^T as an NN product against a transposed
 * copy of W kept in the workspace), followed by one fused pass
 * (bias + activation, see ops.c); the Gaussian head's softplus bounds,
 * sigmoids and exps go through the vectorised approximations of ops.c so no
 * hot loop calls libm per element. Inference in bf16 (planner precision
 * bf16): the same tiles with the products of nn/bf16.h on a packed copy of
 * the weights made once per ensemble (mb_ensemble_bf16_prepare), the
 * activations carried as bf16 rows, the head in fp32.
 *
 * Workspace (mb_ens_ws): its size does not grow with max_rows. Inference
 * runs in tiles of at most ENS_TILE rows of one member; the workspace holds
 * `slots` tile buffers (2 activation buffers of ENS_TILE x widest layer
 * floats, or more when bf16 rows padded to 32 x 32 need it, then 6 x
 * ENS_TILE x out_dim for the head's temporaries), one per
 * concurrently running pool task. Training and the MSE run in chunks of at
 * most ENS_CHUNK rows whose activations are kept for the backward pass;
 * gradients accumulate over chunks, so any minibatch size works. */
#include "nn/ensemble.h"

#include <assert.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cpu.h"
#ifdef MB_X86
#include <immintrin.h>
#endif
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "base/rng.h"

/* Row-wise elementwise loops over a short row of n floats (the head's
 * out_dim, the input dim): GCC -O2 leaves them scalar, so they run 16
 * lanes at a time with AVX-512 and 8 with AVX2 (mb_cpu_isa), a masked last
 * vector each.
 * Plain mul/add/sub/div (no FMA), so results equal the scalar loops bit
 * for bit. */
#ifdef MB_X86
#define ENS_VEC 1
#define ENS_LD(m, ptr) _mm512_maskz_loadu_ps((m), (ptr))
#define ENS_ST(ptr, m, v) _mm512_mask_storeu_ps((ptr), (m), (v))
#define ENS_MASK(n, o) ((n) - (o) >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << ((n) - (o))) - 1))
/* the same at 8 lanes (AVX2): maskload/maskstore with an integer lane mask */
#define ENS_LD8(m, ptr) _mm256_maskload_ps((ptr), (m))
#define ENS_ST8(ptr, m, v) _mm256_maskstore_ps((ptr), (m), (v))
#define ENS_MASK8(n, o) _mm256_cmpgt_epi32(_mm256_set1_epi32((n) - (o)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#endif

/* Rows per inference tile: activations of a 256-row tile (2 x 200 KB for 200
 * units) stay in L2 next to the 160 KB weight matrix. */
#ifndef ENS_TILE
#define ENS_TILE 256
#endif
/* Rows per training chunk: the PETS minibatch (256) in one pass. */
#ifndef ENS_CHUNK
#define ENS_CHUNK 256
#endif
#define ENS_MAX_SLOTS 16

/* ---- spec and layout ---------------------------------------------------- */

typedef struct {
    int L;                          /* hidden layers; layer L is the head */
    int in, out;                    /* in_dim, out_dim */
    int dim[MB_MAX_LAYERS + 2];     /* dim[0] = in, dim[l+1] = width of layer l */
    size_t W[MB_MAX_LAYERS + 1];    /* offsets within a member's block */
    size_t b[MB_MAX_LAYERS + 1];
    size_t maxlv, minlv, size;
    int maxw;                       /* widest of in, hidden, 2*out */
} ens__layout;

static void ens__layout_of(const mb_ensemble_spec *s, ens__layout *lay) {
    lay->L = s->n_hidden;
    lay->in = mb_ensemble_in_dim(s);
    lay->out = mb_ensemble_out_dim(s);
    lay->dim[0] = lay->in;
    for (int l = 0; l < s->n_hidden; l++) lay->dim[l + 1] = s->hidden[l];
    lay->dim[s->n_hidden + 1] = 2 * lay->out;
    size_t off = 0;
    lay->maxw = 0;
    for (int l = 0; l <= s->n_hidden; l++) {
        lay->W[l] = off;
        off += (size_t)lay->dim[l] * (size_t)lay->dim[l + 1];
        lay->b[l] = off;
        off += (size_t)lay->dim[l + 1];
    }
    for (int l = 0; l <= s->n_hidden + 1; l++)
        if (lay->dim[l] > lay->maxw) lay->maxw = lay->dim[l];
    lay->maxlv = off;
    off += (size_t)lay->out;
    lay->minlv = off;
    off += (size_t)lay->out;
    lay->size = off;
}

void mb_ensemble_spec_default(mb_ensemble_spec *spec) {
    /* PETS (Chua et al. 2018) half-cheetah: 5 x 4 x 200 SiLU, decays per
     * layer 2.5e-5, 5e-5, 7.5e-5, 7.5e-5 and 1e-4 for the head. */
    static const float decay[4] = {2.5e-5f, 5e-5f, 7.5e-5f, 7.5e-5f};
    memset(spec, 0, sizeof *spec);
    spec->members = 5;
    spec->learn_reward = 1;
    spec->n_hidden = 4;
    for (int l = 0; l < MB_MAX_LAYERS; l++) spec->hidden[l] = 200;
    spec->activation = MB_ACT_SILU;
    for (int l = 0; l < MB_MAX_LAYERS; l++) spec->weight_decay[l] = decay[l < 3 ? l : 3];
    /* the head's decay sits at index n_hidden (4 for the default depth); a
     * caller who changes n_hidden sets weight_decay[n_hidden] itself */
    spec->weight_decay[spec->n_hidden] = 1e-4f;
}

mb_status mb_ensemble_spec_check(const mb_ensemble_spec *s, char *err, size_t err_sz) {
    if (!s) return mb_fail(err, err_sz, MB_EINVAL, "ensemble: NULL spec");
    if (s->members < 1 || s->members > MB_MAX_MEMBERS)
        return mb_fail(err, err_sz, MB_ERANGE, "ensemble.members must be in [1, %d], got %d",
                       MB_MAX_MEMBERS, s->members);
    if (s->obs_dim < 1 || s->obs_dim > MB_MAX_OBS_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "obs_dim must be in [1, %d], got %d",
                       MB_MAX_OBS_DIM, s->obs_dim);
    if (s->act_dim < 1 || s->act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "act_dim must be in [1, %d], got %d",
                       MB_MAX_ACT_DIM, s->act_dim);
    if (s->learn_reward != 0 && s->learn_reward != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "ensemble.learn_reward must be 0 or 1");
    if (s->learn_termination != 0 && s->learn_termination != 1)
        return mb_fail(err, err_sz, MB_EINVAL, "ensemble.learn_termination must be 0 or 1");
    if (s->n_hidden < 1 || s->n_hidden > MB_MAX_LAYERS)
        return mb_fail(err, err_sz, MB_ERANGE, "ensemble.hidden must have 1..%d layers, got %d",
                       MB_MAX_LAYERS, s->n_hidden);
    for (int l = 0; l < s->n_hidden; l++)
        if (s->hidden[l] < 1 || s->hidden[l] > MB_MAX_HIDDEN)
            return mb_fail(err, err_sz, MB_ERANGE, "ensemble.hidden[%d] must be in [1, %d], got %d",
                           l, MB_MAX_HIDDEN, s->hidden[l]);
    if (s->activation != MB_ACT_SILU && s->activation != MB_ACT_RELU &&
        s->activation != MB_ACT_TANH)
        return mb_fail(err, err_sz, MB_EINVAL, "ensemble.activation: unknown value %d",
                       (int)s->activation);
    for (int l = 0; l <= s->n_hidden; l++)
        if (!(s->weight_decay[l] >= 0 && s->weight_decay[l] < 1e3f))
            return mb_fail(err, err_sz, MB_ERANGE,
                           "ensemble.weight_decay[%d] must be finite and in [0, 1000)", l);
    return MB_OK;
}

size_t mb_ensemble_member_size(const mb_ensemble_spec *spec) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    return lay.size;
}

double mb_ensemble_flops_per_row(const mb_ensemble_spec *spec) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    double macs = 0;
    for (int l = 0; l <= lay.L; l++) macs += (double)lay.dim[l] * lay.dim[l + 1];
    return 2.0 * macs;
}

float *mb_ensemble_layer_W(const mb_ensemble_spec *spec, float *block, int member, int layer) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    return block + (size_t)member * lay.size + lay.W[layer];
}

float *mb_ensemble_layer_b(const mb_ensemble_spec *spec, float *block, int member, int layer) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    return block + (size_t)member * lay.size + lay.b[layer];
}

float *mb_ensemble_max_logvar(const mb_ensemble_spec *spec, float *block, int member) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    return block + (size_t)member * lay.size + lay.maxlv;
}

float *mb_ensemble_min_logvar(const mb_ensemble_spec *spec, float *block, int member) {
    ens__layout lay;
    ens__layout_of(spec, &lay);
    return block + (size_t)member * lay.size + lay.minlv;
}

/* ---- init, copy, free ---------------------------------------------------- */

static mb_status ens__alloc(mb_ensemble *e, const mb_ensemble_spec *spec, char *err,
                            size_t err_sz) {
    memset(e, 0, sizeof *e);
    e->spec = *spec;
    e->member_size = mb_ensemble_member_size(spec);
    e->n_params = e->member_size * (size_t)spec->members;
    int in = mb_ensemble_in_dim(spec), out = mb_ensemble_out_dim(spec);
    e->params = malloc(e->n_params * sizeof(float));
    /* one block for the four normaliser vectors */
    e->in_mean = malloc((size_t)(2 * in + 2 * out) * sizeof(float));
    if (!e->params || !e->in_mean) {
        free(e->params);
        free(e->in_mean);
        memset(e, 0, sizeof *e);
        return mb_fail(err, err_sz, MB_ENOMEM, "ensemble: cannot allocate %zu parameters",
                       (size_t)spec->members * mb_ensemble_member_size(spec));
    }
    e->in_std = e->in_mean + in;
    e->out_mean = e->in_std + in;
    e->out_std = e->out_mean + out;
    return MB_OK;
}

mb_status mb_ensemble_init(mb_ensemble *e, const mb_ensemble_spec *spec, uint64_t seed,
                           char *err, size_t err_sz) {
    if (!e) return mb_fail(err, err_sz, MB_EINVAL, "ensemble: NULL");
    mb_status st = mb_ensemble_spec_check(spec, err, err_sz);
    if (st != MB_OK) return st;
    st = ens__alloc(e, spec, err, err_sz);
    if (st != MB_OK) return st;
    ens__layout lay;
    ens__layout_of(spec, &lay);
    mb_rng root, r;
    mb_rng_seed(&root, seed);
    for (int m = 0; m < spec->members; m++) {
        float *p = e->params + (size_t)m * lay.size;
        mb_rng_split(&root, (uint64_t)m, &r);
        for (int l = 0; l <= lay.L; l++) {
            /* truncated normal, std 1/(2 sqrt(fan_in)), cut at 2 std (PETS) */
            double sd = 1.0 / (2.0 * sqrt((double)lay.dim[l]));
            size_t cnt = (size_t)lay.dim[l] * (size_t)lay.dim[l + 1];
            float *W = p + lay.W[l];
            for (size_t i = 0; i < cnt; i++) {
                double z;
                do z = mb_rng_normal(&r);
                while (fabs(z) > 2.0);
                W[i] = (float)(z * sd);
            }
            memset(p + lay.b[l], 0, (size_t)lay.dim[l + 1] * sizeof(float));
        }
        for (int o = 0; o < lay.out; o++) {
            p[lay.maxlv + o] = 0.5f;
            p[lay.minlv + o] = -10.0f;
        }
    }
    for (int i = 0; i < lay.in; i++) {
        e->in_mean[i] = 0;
        e->in_std[i] = 1;
    }
    for (int o = 0; o < lay.out; o++) {
        e->out_mean[o] = 0;
        e->out_std[o] = 1;
    }
    e->n_elites = spec->members;
    for (int m = 0; m < spec->members; m++) e->elites[m] = m;
    if (spec->learn_termination) { /* nn/term_head.h: its own parameters */
        st = mb_term_head_init(&e->term, spec->obs_dim, seed, err, err_sz);
        if (st != MB_OK) mb_ensemble_free(e);
    }
    return st;
}

static void ens__bf16_free(struct mb_ens_bf16 *c);

void mb_ensemble_free(mb_ensemble *e) {
    if (!e) return;
    ens__bf16_free(atomic_load(&e->bf16));
    free(e->params);
    free(e->in_mean);
    mb_term_head_free(&e->term);
    memset(e, 0, sizeof *e);
}

mb_status mb_ensemble_copy(mb_ensemble *dst, const mb_ensemble *src, char *err, size_t err_sz) {
    if (!dst || !src || !src->params) return mb_fail(err, err_sz, MB_EINVAL, "ensemble copy: NULL");
    mb_status st = ens__alloc(dst, &src->spec, err, err_sz);
    if (st != MB_OK) return st;
    int in = mb_ensemble_in_dim(&src->spec), out = mb_ensemble_out_dim(&src->spec);
    memcpy(dst->params, src->params, src->n_params * sizeof(float));
    memcpy(dst->in_mean, src->in_mean, (size_t)in * sizeof(float));
    memcpy(dst->in_std, src->in_std, (size_t)in * sizeof(float));
    memcpy(dst->out_mean, src->out_mean, (size_t)out * sizeof(float));
    memcpy(dst->out_std, src->out_std, (size_t)out * sizeof(float));
    dst->n_elites = src->n_elites;
    memcpy(dst->elites, src->elites, sizeof dst->elites);
    memcpy(dst->holdout_loss, src->holdout_loss, sizeof dst->holdout_loss);
    if (src->term.params && (st = mb_term_head_copy(&dst->term, &src->term, err, err_sz)) != MB_OK)
        mb_ensemble_free(dst);
    return st;
}

/* ---- workspace ----------------------------------------------------------- */

struct mb_ens_ws {
    ens__layout lay;
    mb_activation act;
    size_t max_rows;
    /* inference: slot s owns tile[s] = (2, tile, maxw) */
    int tile, slots;
    size_t act_floats; /* floats per activation buffer (two per slot) */
    size_t slot_floats;
    float *tiles;
    /* training chunk: z[l] (pre-activation, then the activation's saved
     * state), h[l] (chunk, dim[l+1]) for hidden layers; head
     * (chunk, 2*out); d0, d1 (chunk, maxw) gradient ping-pong; t (6, chunk,
     * out) head temporaries; wt (member_size) holds W_l^T (dim[l+1],
     * dim[l]) at offset W[l] for l >= 1, refreshed by each loss_grad call
     * so the input gradient dy W^T runs as an NN product (mb_gemm_nn) */
    int chunk;
    float *z[MB_MAX_LAYERS], *h[MB_MAX_LAYERS];
    float *head, *d0, *d1, *t, *wt;
    float *mem;
};

/* Sizes ws's tile, chunk and slots for max_rows; returns the floats of ws->mem
 * (mb_ens_ws_new allocates them, mb_ens_ws_bytes reports them). */
static size_t ens__ws_size(mb_ens_ws *ws, size_t max_rows) {
    const ens__layout *lay = &ws->lay;
    ws->tile = max_rows < ENS_TILE ? (int)max_rows : ENS_TILE;
    ws->chunk = max_rows < ENS_CHUNK ? (int)max_rows : ENS_CHUNK;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    ws->slots = ncpu < 1 ? 1 : ncpu > ENS_MAX_SLOTS ? ENS_MAX_SLOTS : (int)ncpu;
    /* an activation buffer holds a tile in fp32, or in bf16 rows padded
     * for AMX (nn/bf16.h: 32-row blocks, 32-column strides) */
    size_t f32 = (size_t)ws->tile * (size_t)lay->maxw;
    size_t b16 = (mb_bf16_rows_alloc((size_t)ws->tile) * (size_t)mb_bf16_stride(lay->maxw) + 1) / 2;
    ws->act_floats = f32 > b16 ? f32 : b16;
    ws->slot_floats = 2 * ws->act_floats + 6 * (size_t)ws->tile * (size_t)lay->out;
    size_t c = (size_t)ws->chunk;
    size_t total = ws->slot_floats * (size_t)ws->slots;
    for (int l = 0; l < lay->L; l++) total += 2 * c * (size_t)lay->dim[l + 1];
    total += c * 2 * (size_t)lay->out + 2 * c * (size_t)lay->maxw + 6 * c * (size_t)lay->out;
    total += lay->size;
    return total;
}

size_t mb_ens_ws_bytes(const mb_ensemble_spec *spec, size_t max_rows) {
    if (!spec || mb_ensemble_spec_check(spec, NULL, 0) != MB_OK || max_rows == 0) return 0;
    mb_ens_ws ws;
    memset(&ws, 0, sizeof ws);
    ens__layout_of(spec, &ws.lay);
    return sizeof ws + ens__ws_size(&ws, max_rows) * sizeof(float);
}

mb_ens_ws *mb_ens_ws_new(const mb_ensemble_spec *spec, size_t max_rows) {
    if (!spec || mb_ensemble_spec_check(spec, NULL, 0) != MB_OK || max_rows == 0) return NULL;
    mb_ens_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return NULL;
    ens__layout_of(spec, &ws->lay);
    ens__layout *lay = &ws->lay;
    ws->act = spec->activation;
    ws->max_rows = max_rows;
    size_t total = ens__ws_size(ws, max_rows);
    size_t c = (size_t)ws->chunk;
    ws->mem = malloc(total * sizeof(float));
    if (!ws->mem) {
        free(ws);
        return NULL;
    }
    float *p = ws->mem;
    ws->tiles = p;
    p += ws->slot_floats * (size_t)ws->slots;
    for (int l = 0; l < lay->L; l++) {
        ws->z[l] = p;
        p += c * (size_t)lay->dim[l + 1];
        ws->h[l] = p;
        p += c * (size_t)lay->dim[l + 1];
    }
    ws->head = p;
    p += c * 2 * (size_t)lay->out;
    ws->d0 = p;
    p += c * (size_t)lay->maxw;
    ws->d1 = p;
    p += c * (size_t)lay->maxw;
    ws->t = p;
    p += 6 * c * (size_t)lay->out;
    ws->wt = p;
    return ws;
}

void mb_ens_ws_free(mb_ens_ws *ws) {
    if (!ws) return;
    free(ws->mem);
    free(ws);
}

size_t mb_ens_ws_rows(const mb_ens_ws *ws) { return ws ? ws->max_rows : 0; }

/* ---- inference ----------------------------------------------------------- */

#ifdef ENS_VEC
static MB_TARGET_AVX512 void ens__normalize16(const mb_ensemble *e, const float *x, float *xn, size_t n) {
    int in = mb_ensemble_in_dim(&e->spec);
    for (size_t r = 0; r < n; r++)
        for (int i = 0; i < in; i += 16) {
            __mmask16 m = ENS_MASK(in, i);
            __m512 v = _mm512_sub_ps(ENS_LD(m, x + r * in + i), ENS_LD(m, e->in_mean + i));
            ENS_ST(xn + r * in + i, m, _mm512_div_ps(v, _mm512_mask_loadu_ps(_mm512_set1_ps(1.0f), m, e->in_std + i)));
        }
}
static MB_TARGET_AVX2 void ens__normalize8(const mb_ensemble *e, const float *x, float *xn, size_t n) {
    int in = mb_ensemble_in_dim(&e->spec);
    for (size_t r = 0; r < n; r++)
        for (int i = 0; i < in; i += 8) {
            __m256i m = ENS_MASK8(in, i);
            __m256 v = _mm256_sub_ps(ENS_LD8(m, x + r * in + i), ENS_LD8(m, e->in_mean + i));
            ENS_ST8(xn + r * in + i, m, _mm256_div_ps(v, _mm256_blendv_ps(_mm256_set1_ps(1.0f), _mm256_maskload_ps(e->in_std + i, m), _mm256_castsi256_ps(m))));
        }
}
#endif

void mb_ensemble_normalize_inputs(const mb_ensemble *e, const float *x, float *xn, size_t n) {
    int in = mb_ensemble_in_dim(&e->spec);
#ifdef ENS_VEC
    if (mb_cpu_isa() == MB_ISA_AVX512) {
        ens__normalize16(e, x, xn, n);
        return;
    }
    if (mb_cpu_isa() == MB_ISA_AVX2) {
        ens__normalize8(e, x, xn, n);
        return;
    }
#endif
    for (size_t r = 0; r < n; r++)
        for (int i = 0; i < in; i++)
            xn[r * in + i] = (x[r * in + i] - e->in_mean[i]) / e->in_std[i];
}

/* Head post-processing shared by inference and training: given the head's
 * raw outputs (rows, 2*out) with bias added, writes into t (6, rows, out):
 *   t0 = sigmoid(max - raw), t1 = lv1 = max - softplus(max - raw),
 *   t2 = sigmoid(lv1 - min), t3 = lv = min + softplus(lv1 - min),
 *   t4 = exp(-lv). t5 is scratch. */
static void ens__head_logvar(const ens__layout *lay, const float *head, const float *maxlv,
                             const float *minlv, float *t, size_t rows) {
    const int out = lay->out;
    const size_t cnt = rows * (size_t)out;
    float *t0 = t, *t1 = t + cnt, *t2 = t + 2 * cnt, *t3 = t + 3 * cnt, *t4 = t + 4 * cnt,
          *t5 = t + 5 * cnt;
    for (size_t r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) t5[r * out + o] = maxlv[o] - head[r * 2 * out + out + o];
    mb_sigmoid_approx(t5, t0, cnt);
    mb_softplus_approx(t5, t1, cnt);
    for (size_t r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            float lv1 = maxlv[o] - t1[r * out + o];
            t1[r * out + o] = lv1;
            t5[r * out + o] = lv1 - minlv[o];
        }
    mb_sigmoid_approx(t5, t2, cnt);
    mb_softplus_approx(t5, t3, cnt);
    for (size_t r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            float lv = minlv[o] + t3[r * out + o];
            t3[r * out + o] = lv;
            t5[r * out + o] = -lv;
        }
    mb_exp_approx(t5, t4, cnt);
}

/* The inference head of one tile: b (nr, 2 out) raw head outputs without
 * bias -> mean and std (NULL: not wanted) in raw units; u, sp: (nr, out)
 * temporaries. Inference needs only lv (the same softplus bounds, same
 * operation order as ens__head_logvar, so the values are identical) and
 * std = exp(lv / 2): the sigmoids and exp(-lv) that training keeps are
 * skipped. */
#define ENS_HEAD_ARGS                                                                           \
    (const mb_ensemble *e, const float *p, const ens__layout *lay, float *b, size_t nr,         \
     float *u, float *sp, float *mean, float *std)
#define ENS_HEAD_PRELUDE                                                                        \
    const int out = lay->out, L = lay->L;                                                       \
    const float *bh = p + lay->b[L];                                                            \
    const size_t cnt = nr * (size_t)out;                                                        \
    const float *maxlv = p + lay->maxlv, *minlv = p + lay->minlv;                               \
    const float *os = e->out_std, *om = e->out_mean;
#ifdef ENS_VEC
static MB_TARGET_AVX512 void ens__infer_head16 ENS_HEAD_ARGS {
    ENS_HEAD_PRELUDE
    for (size_t r = 0; r < nr; r++) {
        float *br = b + r * 2 * (size_t)out;
        for (int o = 0; o < out; o += 16) {
            __mmask16 m = ENS_MASK(out, o);
            __m512 mu = _mm512_add_ps(ENS_LD(m, br + o), ENS_LD(m, bh + o));
            ENS_ST(mean + r * out + o, m, _mm512_add_ps(_mm512_mul_ps(mu, ENS_LD(m, os + o)), ENS_LD(m, om + o)));
            if (std) {
                __m512 raw = _mm512_add_ps(ENS_LD(m, br + out + o), ENS_LD(m, bh + out + o));
                ENS_ST(u + r * out + o, m, _mm512_sub_ps(ENS_LD(m, maxlv + o), raw));
            }
        }
    }
    if (!std) return;
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 16) {
            __mmask16 m = ENS_MASK(out, o);
            __m512 lv1 = _mm512_sub_ps(ENS_LD(m, maxlv + o), ENS_LD(m, sp + r * out + o));
            ENS_ST(u + r * out + o, m, _mm512_sub_ps(lv1, ENS_LD(m, minlv + o)));
        }
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 16) {
            __mmask16 m = ENS_MASK(out, o);
            __m512 lv = _mm512_add_ps(ENS_LD(m, minlv + o), ENS_LD(m, sp + r * out + o));
            ENS_ST(u + r * out + o, m, _mm512_mul_ps(_mm512_set1_ps(0.5f), lv));
        }
    mb_exp_approx(u, u, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 16) {
            __mmask16 m = ENS_MASK(out, o);
            ENS_ST(std + r * out + o, m, _mm512_mul_ps(ENS_LD(m, u + r * out + o), ENS_LD(m, os + o)));
        }
}
static MB_TARGET_AVX2 void ens__infer_head8 ENS_HEAD_ARGS {
    ENS_HEAD_PRELUDE
    for (size_t r = 0; r < nr; r++) {
        float *br = b + r * 2 * (size_t)out;
        for (int o = 0; o < out; o += 8) {
            __m256i m = ENS_MASK8(out, o);
            __m256 mu = _mm256_add_ps(ENS_LD8(m, br + o), ENS_LD8(m, bh + o));
            ENS_ST8(mean + r * out + o, m, _mm256_add_ps(_mm256_mul_ps(mu, ENS_LD8(m, os + o)), ENS_LD8(m, om + o)));
            if (std) {
                __m256 raw = _mm256_add_ps(ENS_LD8(m, br + out + o), ENS_LD8(m, bh + out + o));
                ENS_ST8(u + r * out + o, m, _mm256_sub_ps(ENS_LD8(m, maxlv + o), raw));
            }
        }
    }
    if (!std) return;
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 8) {
            __m256i m = ENS_MASK8(out, o);
            __m256 lv1 = _mm256_sub_ps(ENS_LD8(m, maxlv + o), ENS_LD8(m, sp + r * out + o));
            ENS_ST8(u + r * out + o, m, _mm256_sub_ps(lv1, ENS_LD8(m, minlv + o)));
        }
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 8) {
            __m256i m = ENS_MASK8(out, o);
            __m256 lv = _mm256_add_ps(ENS_LD8(m, minlv + o), ENS_LD8(m, sp + r * out + o));
            ENS_ST8(u + r * out + o, m, _mm256_mul_ps(_mm256_set1_ps(0.5f), lv));
        }
    mb_exp_approx(u, u, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o += 8) {
            __m256i m = ENS_MASK8(out, o);
            ENS_ST8(std + r * out + o, m, _mm256_mul_ps(ENS_LD8(m, u + r * out + o), ENS_LD8(m, os + o)));
        }
}
#endif

static void ens__infer_head1 ENS_HEAD_ARGS {
    ENS_HEAD_PRELUDE
    for (size_t r = 0; r < nr; r++) {
        float *br = b + r * 2 * (size_t)out;
        for (int j = 0; j < 2 * out; j++) br[j] += bh[j];
        for (int o = 0; o < out; o++) mean[r * out + o] = br[o] * os[o] + om[o];
    }
    if (!std) return;
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o++) u[r * out + o] = maxlv[o] - b[r * 2 * out + out + o];
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o++) {
            float lv1 = maxlv[o] - sp[r * out + o];
            u[r * out + o] = lv1 - minlv[o];
        }
    mb_softplus_approx(u, sp, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o++) {
            float lv = minlv[o] + sp[r * out + o];
            u[r * out + o] = 0.5f * lv;
        }
    mb_exp_approx(u, u, cnt);
    for (size_t r = 0; r < nr; r++)
        for (int o = 0; o < out; o++) std[r * out + o] = u[r * out + o] * os[o];
}

/* One tile: nr rows of member m. x: (nr, in) raw; mean, std: (nr, out) raw,
 * std may be NULL. buf: slot_floats floats (2 * tile * maxw + 6 * tile * out). */
static void ens__forward_tile(const mb_ensemble *e, const mb_ens_ws *ws, float *buf, int m,
                              const float *x, size_t nr, float *mean, float *std) {
    const ens__layout *lay = &ws->lay;
    const float *p = e->params + (size_t)m * lay->size;
    float *a = buf, *b = buf + ws->act_floats;
    mb_ensemble_normalize_inputs(e, x, a, nr);
    for (int l = 0; l < lay->L; l++) {
        /* bias and activation applied in the kernel's epilogue: no pass over b */
        mb_gemm_nn_bias_act(nr, lay->dim[l + 1], lay->dim[l], a, p + lay->W[l], p + lay->b[l],
                            ws->act, b);
        float *s = a;
        a = b;
        b = s;
    }
    const int out = lay->out, L = lay->L;
    mb_gemm_nn(nr, 2 * out, lay->dim[L], a, p + lay->W[L], b, 0);
    float *t = buf + 2 * ws->act_floats;
    float *u = t, *sp = t + nr * (size_t)lay->out;
#ifdef ENS_VEC
    if (mb_cpu_isa() == MB_ISA_AVX512) {
        ens__infer_head16(e, p, lay, b, nr, u, sp, mean, std);
        return;
    }
    if (mb_cpu_isa() == MB_ISA_AVX2) {
        ens__infer_head8(e, p, lay, b, nr, u, sp, mean, std);
        return;
    }
#endif
    ens__infer_head1(e, p, lay, b, nr, u, sp, mean, std);
}

/* ---- bf16 inference ------------------------------------------------------ */

int mb_precision_parse(const char *name, mb_precision *out) {
    if (!name) return -1;
    if (!strcmp(name, "fp32")) *out = MB_PREC_FP32;
    else if (!strcmp(name, "bf16")) *out = MB_PREC_BF16;
    else return -1;
    return 0;
}

const char *mb_precision_name(mb_precision p) { return p == MB_PREC_BF16 ? "bf16" : "fp32"; }

/* Every member's matrices packed (nn/bf16.h): layer l of member m at
 * w + m * member + off[l]. */
struct mb_ens_bf16 {
    size_t member, off[MB_MAX_LAYERS + 1];
    uint16_t *w;
};

static void ens__bf16_free(struct mb_ens_bf16 *c) {
    if (!c) return;
    free(c->w);
    free(c);
}

mb_status mb_ensemble_bf16_prepare(const mb_ensemble *e, char *err, size_t err_sz) {
    if (!e || !e->params) return mb_fail(err, err_sz, MB_EINVAL, "bf16: no ensemble");
    if (!mb_cpu_has_bf16())
        return mb_fail(err, err_sz, MB_EINVAL, "bf16: this CPU (or MBRLD_ISA) has no AVX512_BF16");
    mb_ensemble *me = (mb_ensemble *)e; /* only the atomic cache pointer is written */
    if (atomic_load_explicit(&me->bf16, memory_order_acquire)) return MB_OK;
    ens__layout lay;
    ens__layout_of(&e->spec, &lay);
    struct mb_ens_bf16 *c = calloc(1, sizeof *c);
    if (!c) return mb_fail(err, err_sz, MB_ENOMEM, "bf16: out of memory");
    for (int l = 0; l <= lay.L; l++) {
        c->off[l] = c->member;
        c->member += mb_bf16_packed_size(lay.dim[l], lay.dim[l + 1]);
    }
    c->w = malloc(c->member * (size_t)e->spec.members * sizeof(uint16_t));
    if (!c->w) {
        free(c);
        return mb_fail(err, err_sz, MB_ENOMEM, "bf16: out of memory");
    }
    for (int m = 0; m < e->spec.members; m++)
        for (int l = 0; l <= lay.L; l++)
            mb_bf16_pack(e->params + (size_t)m * lay.size + lay.W[l], lay.dim[l], lay.dim[l + 1],
                         c->w + (size_t)m * c->member + c->off[l]);
    struct mb_ens_bf16 *expected = NULL;
    if (!atomic_compare_exchange_strong_explicit(&me->bf16, &expected, c, memory_order_acq_rel,
                                                 memory_order_acquire))
        ens__bf16_free(c); /* another caller's copy won: the same bits */
    return MB_OK;
}

/* ens__forward_tile with bf16 products: activations as bf16 rows (nn/bf16.h
 * strides) in the tile's two buffers, the head's raw outputs in fp32. */
static void ens__forward_tile_bf16(const mb_ensemble *e, const struct mb_ens_bf16 *c,
                                   const mb_ens_ws *ws, float *buf, int m, const float *x, size_t nr,
                                   float *mean, float *std) {
    const ens__layout *lay = &ws->lay;
    const float *p = e->params + (size_t)m * lay->size;
    const uint16_t *w = c->w + (size_t)m * c->member;
    float *fa = buf, *fb = buf + ws->act_floats;
    uint16_t *cur = (uint16_t *)fa, *nxt = (uint16_t *)fb;
    mb_ensemble_normalize_inputs(e, x, fb, nr);
    mb_bf16_rows(fb, nr, lay->in, cur);
    for (int l = 0; l < lay->L; l++) {
        mb_gemm_bf16_act(nr, lay->dim[l + 1], lay->dim[l], cur, w + c->off[l], p + lay->b[l],
                         ws->act, nxt);
        uint16_t *s = cur;
        cur = nxt;
        nxt = s;
    }
    const int L = lay->L;
    float *head = cur == (uint16_t *)fa ? fb : fa;
    mb_gemm_bf16_f32(nr, 2 * lay->out, lay->dim[L], cur, w + c->off[L], head);
    float *t = buf + 2 * ws->act_floats;
    float *u = t, *sp = t + nr * (size_t)lay->out;
#ifdef ENS_VEC
    if (mb_cpu_isa() == MB_ISA_AVX512) {
        ens__infer_head16(e, p, lay, head, nr, u, sp, mean, std);
        return;
    }
#endif
    ens__infer_head1(e, p, lay, head, nr, u, sp, mean, std);
}

typedef struct {
    const mb_ensemble *e;
    mb_ens_ws *ws;
    const int *members;
    const float *x;
    size_t n;
    float *mean, *std;
    int row_blocks, n_tiles;
    const struct mb_ens_bf16 *bf16; /* bf16 products when not NULL */
    atomic_int next;
} ens__fwd_ctx;

/* Pool task `task` owns tile buffer `task` (task < slots) and pulls
 * (member, row block) tiles until none are left. */
static void ens__fwd_task(void *vctx, int task, int worker) {
    (void)worker;
    ens__fwd_ctx *c = vctx;
    const ens__layout *lay = &c->ws->lay;
    float *buf = c->ws->tiles + (size_t)task * c->ws->slot_floats;
    for (;;) {
        int t = atomic_fetch_add_explicit(&c->next, 1, memory_order_relaxed);
        if (t >= c->n_tiles) break;
        int j = t / c->row_blocks;
        size_t r0 = (size_t)(t % c->row_blocks) * (size_t)c->ws->tile;
        size_t nr = c->n - r0 < (size_t)c->ws->tile ? c->n - r0 : (size_t)c->ws->tile;
        int m = c->members ? c->members[j] : j;
        size_t row = (size_t)j * c->n + r0;
        if (c->bf16)
            ens__forward_tile_bf16(c->e, c->bf16, c->ws, buf, m, c->x + row * lay->in, nr,
                                   c->mean + row * lay->out, c->std ? c->std + row * lay->out : NULL);
        else
            ens__forward_tile(c->e, c->ws, buf, m, c->x + row * lay->in, nr,
                              c->mean + row * lay->out, c->std ? c->std + row * lay->out : NULL);
    }
}

void mb_ensemble_forward(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                         const int *members, int k, const float *x, size_t n,
                         float *mean, float *std) {
    mb_ensemble_forward_prec(e, ws, pool, members, k, x, n, mean, std, MB_PREC_FP32);
}

mb_precision mb_ensemble_forward_prec(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool,
                                      const int *members, int k, const float *x, size_t n,
                                      float *mean, float *std, mb_precision want) {
    /* a workspace made for another spec would be overrun: only a bug does that */
    assert(ws->lay.size == e->member_size && ws->lay.in == mb_ensemble_in_dim(&e->spec));
    const struct mb_ens_bf16 *bf16 =
        want == MB_PREC_BF16 && mb_cpu_has_bf16() ? atomic_load_explicit(&e->bf16, memory_order_acquire) : NULL;
    mb_precision used = bf16 ? MB_PREC_BF16 : MB_PREC_FP32;
    if (!members) k = e->spec.members;
    if (n == 0 || k <= 0) return used;
    ens__fwd_ctx c = {.e = e, .ws = ws, .members = members, .x = x, .n = n, .mean = mean,
                      .std = std, .bf16 = bf16};
    c.row_blocks = (int)((n + (size_t)ws->tile - 1) / (size_t)ws->tile);
    c.n_tiles = c.row_blocks * k;
    atomic_init(&c.next, 0);
    int tasks = mb_pool_size(pool);
    if (tasks > ws->slots) tasks = ws->slots;
    if (tasks > c.n_tiles) tasks = c.n_tiles;
    mb_pool_run(pool, ens__fwd_task, &c, tasks);
    return used;
}

/* ---- training ------------------------------------------------------------ */

/* Forward of one chunk keeping activations: xn (nr, in) normalised. Leaves
 * ws->h[l] = activations, ws->z[l] = the activation's saved state (sigmoid
 * for SiLU, see mb_bias_act_forward_aux) and ws->head = raw head outputs
 * with bias. */
static void ens__forward_chunk(const ens__layout *lay, mb_activation act, const float *p,
                               mb_ens_ws *ws, const float *xn, size_t nr) {
    const float *prev = xn;
    for (int l = 0; l < lay->L; l++) {
        mb_gemm_nn(nr, lay->dim[l + 1], lay->dim[l], prev, p + lay->W[l], ws->z[l], 0);
        /* z[l] is overwritten with what the backward needs (sigmoid for
         * SiLU), read and written element by element in one pass */
        mb_bias_act_forward_aux(act, ws->z[l], p + lay->b[l], ws->h[l], ws->z[l], nr,
                                lay->dim[l + 1]);
        prev = ws->h[l];
    }
    const int L = lay->L, o2 = 2 * lay->out;
    mb_gemm_nn(nr, o2, lay->dim[L], prev, p + lay->W[L], ws->head, 0);
    const float *bh = p + lay->b[L];
    for (size_t r = 0; r < nr; r++)
        for (int j = 0; j < o2; j++) ws->head[r * o2 + j] += bh[j];
}

/* dst (cols, rows) = src (rows, cols)^T: 8 x 8 blocks through AVX
 * registers (unpack / shuffle / lane permute), scalar edges. */
static void ens__transpose(const float *src, float *dst, int rows, int cols) {
    int i0 = 0;
#if defined(__AVX__)
    for (; i0 + 8 <= rows; i0 += 8) {
        int j0 = 0;
        for (; j0 + 8 <= cols; j0 += 8) {
            const float *s0 = src + (size_t)i0 * cols + j0;
            __m256 r0 = _mm256_loadu_ps(s0), r1 = _mm256_loadu_ps(s0 + cols),
                   r2 = _mm256_loadu_ps(s0 + 2 * (size_t)cols), r3 = _mm256_loadu_ps(s0 + 3 * (size_t)cols),
                   r4 = _mm256_loadu_ps(s0 + 4 * (size_t)cols), r5 = _mm256_loadu_ps(s0 + 5 * (size_t)cols),
                   r6 = _mm256_loadu_ps(s0 + 6 * (size_t)cols), r7 = _mm256_loadu_ps(s0 + 7 * (size_t)cols);
            __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
            __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
            __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
            __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
            __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d0 = dst + (size_t)j0 * rows + i0;
            _mm256_storeu_ps(d0, _mm256_permute2f128_ps(u0, u4, 0x20));
            _mm256_storeu_ps(d0 + rows, _mm256_permute2f128_ps(u1, u5, 0x20));
            _mm256_storeu_ps(d0 + 2 * (size_t)rows, _mm256_permute2f128_ps(u2, u6, 0x20));
            _mm256_storeu_ps(d0 + 3 * (size_t)rows, _mm256_permute2f128_ps(u3, u7, 0x20));
            _mm256_storeu_ps(d0 + 4 * (size_t)rows, _mm256_permute2f128_ps(u0, u4, 0x31));
            _mm256_storeu_ps(d0 + 5 * (size_t)rows, _mm256_permute2f128_ps(u1, u5, 0x31));
            _mm256_storeu_ps(d0 + 6 * (size_t)rows, _mm256_permute2f128_ps(u2, u6, 0x31));
            _mm256_storeu_ps(d0 + 7 * (size_t)rows, _mm256_permute2f128_ps(u3, u7, 0x31));
        }
        for (int j = j0; j < cols; j++)
            for (int i = i0; i < i0 + 8; i++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
    }
#endif
    for (int i = i0; i < rows; i++)
        for (int j = 0; j < cols; j++) dst[(size_t)j * rows + i] = src[(size_t)i * cols + j];
}

float mb_ensemble_loss_grad(const mb_ensemble *e, mb_ens_ws *ws, int member, const float *xn,
                            const float *yn, size_t n, float *grad) {
    const ens__layout *lay = &ws->lay;
    assert(lay->size == e->member_size && member >= 0 && member < e->spec.members);
    const float *p = e->params + (size_t)member * lay->size;
    float *g = grad;
    const int out = lay->out, o2 = 2 * out, L = lay->L;
    if (n == 0) {
        memset(g, 0, lay->size * sizeof(float));
        return 0.0f;
    }
    /* Weight gradients are overwritten by the first chunk's sgemm,
     * so only the small vectors need zeroing: no pass over the block. */
    for (int l = 0; l <= L; l++) memset(g + lay->b[l], 0, (size_t)lay->dim[l + 1] * sizeof(float));
    memset(g + lay->maxlv, 0, 2 * (size_t)out * sizeof(float));
    const float *maxlv = p + lay->maxlv, *minlv = p + lay->minlv;
    float *gmax = g + lay->maxlv, *gmin = g + lay->minlv;
    const float inv_n = 1.0f / (float)n;
    /* W_l^T for the input gradients (layer 0's is never needed) */
    for (int l = 1; l <= L; l++)
        ens__transpose(p + lay->W[l], ws->wt + lay->W[l], lay->dim[l], lay->dim[l + 1]);
    double nll = 0;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)ws->chunk) {
        size_t nr = n - r0 < (size_t)ws->chunk ? n - r0 : (size_t)ws->chunk;
        const float *x = xn + r0 * lay->in, *y = yn + r0 * out;
        ens__forward_chunk(lay, ws->act, p, ws, x, nr);
        const size_t cnt = nr * (size_t)out;
        float *t = ws->t;
        ens__head_logvar(lay, ws->head, maxlv, minlv, t, nr);
        const float *sg1 = t, *sg2 = t + 2 * cnt, *lv = t + 3 * cnt, *ilv = t + 4 * cnt;
        /* dhead (nr, 2*out) = [d mean | d raw logvar] into d0 */
        float *dh = ws->d0;
        float chunk_nll = 0;
        for (size_t r = 0; r < nr; r++)
            for (int o = 0; o < out; o++) {
                size_t i = r * out + o;
                float d = ws->head[r * o2 + o] - y[i];
                float dd = d * d * ilv[i];
                chunk_nll += 0.5f * (dd + lv[i]);
                dh[r * o2 + o] = d * ilv[i] * inv_n;
                /* lv = min + sp(lv1 - min); lv1 = max - sp(max - raw) */
                float dlv = 0.5f * (1.0f - dd) * inv_n;
                float dlv1 = dlv * sg2[i];
                gmin[o] += dlv - dlv1;
                dh[r * o2 + out + o] = dlv1 * sg1[i];
                gmax[o] += dlv1 - dlv1 * sg1[i];
            }
        nll += chunk_nll;
        /* head: dW_L += h_{L-1}^T dh; db_L += colsum dh; dprev = dh W_L^T */
        const float *prev = L > 0 ? ws->h[L - 1] : x;
        mb_gemm_tn(lay->dim[L], o2, nr, prev, dh, g + lay->W[L], r0 > 0);
        float *gb = g + lay->b[L];
        for (size_t r = 0; r < nr; r++)
            for (int j = 0; j < o2; j++) gb[j] += dh[r * o2 + j];
        float *cur = ws->d1, *other = ws->d0;
        mb_gemm_nn(nr, lay->dim[L], o2, dh, ws->wt + lay->W[L], cur, 0);
        for (int l = L - 1; l >= 0; l--) {
            int w = lay->dim[l + 1], win = lay->dim[l];
            mb_act_backward_aux(ws->act, ws->h[l], ws->z[l], cur, cur, g + lay->b[l], nr, w);
            const float *in = l > 0 ? ws->h[l - 1] : x;
            mb_gemm_tn(win, w, nr, in, cur, g + lay->W[l], r0 > 0);
            if (l > 0) {
                mb_gemm_nn(nr, win, w, cur, ws->wt + lay->W[l], other, 0);
                float *s = cur;
                cur = other;
                other = s;
            }
        }
    }
    double loss = nll / (double)n;
    /* bound regulariser: 0.01 * (sum max - sum min) */
    double reg = 0;
    for (int o = 0; o < out; o++) {
        reg += (double)maxlv[o] - (double)minlv[o];
        gmax[o] += 0.01f;
        gmin[o] -= 0.01f;
    }
    loss += 0.01 * reg;
    /* weight decay: wd_l * 0.5 * ||W_l||^2 */
    for (int l = 0; l <= L; l++) {
        float wd = e->spec.weight_decay[l];
        if (wd == 0) continue;
        size_t cnt = (size_t)lay->dim[l] * (size_t)lay->dim[l + 1];
        loss += 0.5 * wd * mb_axpy_sumsq(wd, p + lay->W[l], g + lay->W[l], cnt);
    }
    return (float)loss;
}

float mb_ensemble_mse(const mb_ensemble *e, mb_ens_ws *ws, int member, const float *xn,
                      const float *yn, size_t n) {
    const ens__layout *lay = &ws->lay;
    assert(lay->size == e->member_size && member >= 0 && member < e->spec.members);
    const float *p = e->params + (size_t)member * lay->size;
    const int out = lay->out, o2 = 2 * out;
    if (n == 0) return 0.0f;
    double se = 0;
    for (size_t r0 = 0; r0 < n; r0 += (size_t)ws->chunk) {
        size_t nr = n - r0 < (size_t)ws->chunk ? n - r0 : (size_t)ws->chunk;
        ens__forward_chunk(lay, ws->act, p, ws, xn + r0 * lay->in, nr);
        const float *y = yn + r0 * out;
        float s = 0;
        for (size_t r = 0; r < nr; r++)
            for (int o = 0; o < out; o++) {
                float d = ws->head[r * o2 + o] - y[r * out + o];
                s += d * d;
            }
        se += s;
    }
    return (float)(se / ((double)n * out));
}
