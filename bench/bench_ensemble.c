/* bench_ensemble.c: `mbrld-bench ensemble`: the same-run FMA peak, sgemm on
 * the ensemble's shapes, the ensemble forward for 2,000 and 20,000 rows per
 * member, and training throughput (one epoch over 100,000 transitions,
 * batch 256, 5 members, 4 x 200 SiLU) through mb_train and through a bare
 * loss_grad + Adam loop, each as GFLOP/s and a ratio to the peak (the FMA
 * loop at the widest vector width, bench.h). Human table first, then one
 * JSON line per result.
 * Not for: planning latency (bench_plan) or assertions of any kind. */
#include <cblas.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/cpu.h"
#include "bench.h"
#include "learn/buffer.h"
#include "nn/ensemble.h"
#include "nn/gemm.h"
#include "base/pool.h"
#include "base/rng.h"
#include "learn/trainer.h"

#define MAX_RESULTS 32

/* Results are collected and printed at the end, so every ratio uses the
 * same peak: the widest vector width's FMA peak (bench.h), the higher of
 * the ones measured at the start and at the end of the run (on a shared
 * machine the lower one is the noisier). */
typedef struct {
    char what[64];    /* human label */
    char detail[128]; /* human extras (times) */
    char json[320];   /* JSON fields before gflops, without braces */
    double gflops;
    int bf16;         /* a bf16 result: its ratio is to the bf16 peak */
} result;

static result results[MAX_RESULTS];
static int n_results;
static int adding_bf16; /* add() marks results bf16 while set */

static void add(double gflops, const char *what, const char *detail, const char *json_fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(double gflops, const char *what, const char *detail, const char *json_fmt, ...) {
    if (n_results >= MAX_RESULTS) return;
    result *r = &results[n_results++];
    snprintf(r->what, sizeof r->what, "%s", what);
    snprintf(r->detail, sizeof r->detail, "%s", detail ? detail : "");
    va_list ap;
    va_start(ap, json_fmt);
    vsnprintf(r->json, sizeof r->json, json_fmt, ap);
    va_end(ap);
    r->gflops = gflops;
    r->bf16 = adding_bf16;
    fprintf(stderr, "  %-44s %8.1f GFLOP/s %s\n", r->what, gflops, r->detail);
}

static void print_results(const bench_peak *start, const bench_peak *end) {
    const bench_peak *pk = start->gflops >= end->gflops ? start : end;
    bench_peak_print(stdout, start, "at the start");
    bench_peak_print(stdout, end, "at the end");
    printf("peak for the ratios: %.1f GFLOP/s (FMA loop, %s, all cores; %.1f at the start, %.1f at the end)\n",
           pk->gflops, pk->isa, start->gflops, end->gflops);
    /* bf16 results divide by the highest bf16 peak (AMX or vdpbf16ps) */
    bench_peak pkb = *pk;
    const bench_peak *other = pk == start ? end : start;
    if (other->bf16_gflops > pkb.bf16_gflops) pkb.bf16_gflops = other->bf16_gflops, pkb.bf16_isa = other->bf16_isa;
    double ratio[MAX_RESULTS];
    for (int i = 0; i < n_results; i++)
        ratio[i] = results[i].bf16 ? bench_ratio_bf16(results[i].gflops, &pkb, results[i].what)
                                   : bench_ratio(results[i].gflops, pk, results[i].what);
    printf("kernels: %s (this CPU: up to %s; MBRLD_ISA=avx2 forces the AVX2 ones)\n",
           mb_isa_name(mb_cpu_isa()), mb_isa_name(mb_cpu_isa_max()));
    printf("%-44s %10s %8s\n", "what", "GFLOP/s", "of peak");
    for (int i = 0; i < n_results; i++)
        printf("%-44s %10.1f %8.2f   %s\n", results[i].what, results[i].gflops, ratio[i],
               results[i].detail);
    for (int i = 0; i < n_results; i++)
        printf("{%s, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f, \"peak_isa\": \"%s\", "
               "\"kernel_isa\": \"%s\"}\n",
               results[i].json, results[i].gflops, results[i].bf16 ? pkb.bf16_gflops : pk->gflops, ratio[i],
               results[i].bf16 ? pkb.bf16_isa : pk->isa,
               results[i].bf16 ? (mb_cpu_has_amx() ? "amx" : "avx512bf16") : mb_isa_name(mb_cpu_isa()));
}

/* The FMA peak lines: the widest width (the peak) and each width. */
static void add_peak(const bench_peak *p, const char *when) {
    char what[64];
    if (p->threads == 1) snprintf(what, sizeof what, "FMA peak %s, 1 core", p->isa);
    else snprintf(what, sizeof what, "FMA peak %s, all cores (%s)", p->isa, when);
    add(p->gflops, what, NULL, "\"bench\": \"fma_peak\", \"threads\": %d, \"when\": \"%s\", \"isa\": \"%s\"",
        p->threads == 1 ? 1 : 0, when, p->isa);
    for (int i = 0; i + 1 < p->n_widths; i++) {
        snprintf(what, sizeof what, "  FMA loop %s, %d thread%s (%s)", p->width[i].isa, p->threads,
                 p->threads == 1 ? "" : "s", when);
        add(p->width[i].gflops, what, NULL,
            "\"bench\": \"fma_width\", \"threads\": %d, \"when\": \"%s\", \"isa\": \"%s\", \"lanes\": %d",
            p->threads, when, p->width[i].isa, p->width[i].lanes);
    }
}

static void halfcheetah_spec(mb_ensemble_spec *spec) {
    mb_ensemble_spec_default(spec); /* 5 x 4 x 200 SiLU, learns the reward */
    spec->obs_dim = 18;
    spec->act_dim = 6;
}

/* mb_gemm_nn GFLOP/s (one thread) for C(m,n) = A(m,k) B(k,n): best of 5
 * timed batches after a warm-up, as bench_sgemm_gflops does for OpenBLAS. */
static double gemm_nn_gflops(int m, int n, int k) {
    float *A = malloc((size_t)m * k * sizeof(float)), *B = malloc((size_t)k * n * sizeof(float));
    float *C = malloc((size_t)m * n * sizeof(float));
    if (!A || !B || !C) {
        free(A);
        free(B);
        free(C);
        return 0;
    }
    for (size_t i = 0; i < (size_t)m * k; i++) A[i] = (float)((i * 7919) % 1000) * 1e-3f - 0.5f;
    for (size_t i = 0; i < (size_t)k * n; i++) B[i] = (float)((i * 104729) % 1000) * 1e-3f - 0.5f;
    double flops = 2.0 * m * n * k, best = 0;
    int reps = (int)(5e9 / flops) + 1;
    for (int trial = 0; trial < 6; trial++) {
        double t0 = bench_now();
        for (int r = 0; r < reps; r++) mb_gemm_nn((size_t)m, n, k, A, B, C, 0);
        double rate = flops * reps / (bench_now() - t0);
        if (trial > 0 && rate > best) best = rate;
    }
    free(A);
    free(B);
    free(C);
    return best * 1e-9;
}

/* Seconds per forward of n rows per member, median of `reps` calls. */
static double time_forward(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool, const float *x,
                           size_t n, float *mean, float *std, int reps, mb_precision prec) {
    double t[32];
    if (reps > 32) reps = 32;
    mb_ensemble_forward_prec(e, ws, pool, NULL, e->spec.members, x, n, mean, std, prec); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        mb_ensemble_forward_prec(e, ws, pool, NULL, e->spec.members, x, n, mean, std, prec);
        t[r] = bench_now() - t0;
    }
    return bench_median(t, reps);
}

typedef struct {
    const mb_ensemble *e;
    mb_ens_ws **ws;     /* (members) */
    const float *xn;    /* (n_data, in) */
    const float *yn;    /* (n_data, out) */
    const size_t *idx;  /* (members, n_data) per-member epoch order */
    size_t n_data, pos, batch;
    float *gather_x;    /* (members, batch, in) */
    float *gather_y;    /* (members, batch, out) */
    float *grad;        /* (members, member_size) */
    float loss[MB_MAX_MEMBERS];
} train_ctx;

static void train_task(void *vc, int m, int worker) {
    (void)worker;
    train_ctx *c = vc;
    int in = mb_ensemble_in_dim(&c->e->spec), out = mb_ensemble_out_dim(&c->e->spec);
    float *gx = c->gather_x + (size_t)m * c->batch * in, *gy = c->gather_y + (size_t)m * c->batch * out;
    const size_t *idx = c->idx + (size_t)m * c->n_data + c->pos;
    for (size_t r = 0; r < c->batch; r++) {
        memcpy(gx + r * in, c->xn + idx[r] * in, (size_t)in * sizeof(float));
        memcpy(gy + r * out, c->yn + idx[r] * out, (size_t)out * sizeof(float));
    }
    c->loss[m] = mb_ensemble_loss_grad(c->e, c->ws[m], m, gx, gy, c->batch,
                                       c->grad + (size_t)m * c->e->member_size);
}

/* One epoch of the minimal training loop (loss_grad per member on the pool,
 * one Adam step over the block per minibatch). Returns seconds. */
static double train_epoch(mb_ensemble *e, mb_adam *opt, train_ctx *c, mb_pool *pool) {
    double t0 = bench_now();
    for (c->pos = 0; c->pos + c->batch <= c->n_data; c->pos += c->batch) {
        mb_pool_run(pool, train_task, c, e->spec.members);
        mb_adam_step(opt, e->params, c->grad);
    }
    return bench_now() - t0;
}

/* Per-epoch wall times through mb_train's epoch callback. */
typedef struct {
    double t0, at[16];
    int n;
} epoch_clock;

static int on_epoch(void *ctx, int epoch, int members, const float *train_loss,
                    const float *holdout_loss) {
    (void)epoch;
    (void)members;
    (void)train_loss;
    (void)holdout_loss;
    epoch_clock *c = ctx;
    if (c->n < 16) c->at[c->n++] = bench_now();
    return 0;
}

/* Synthetic half-cheetah-shaped transitions: s' = s + 0.05 (A s + B a) + noise,
 * reward = -|a|^2 + s_8 (the shapes and the work are what matter here). */
static int fill_buffer(mb_buffer *b, size_t n, mb_rng *r) {
    const int od = b->obs_dim, ad = b->act_dim;
    float *obs = malloc(n * od * sizeof(float)), *act = malloc(n * ad * sizeof(float));
    float *next = malloc(n * od * sizeof(float)), *rew = malloc(n * sizeof(float));
    if (!obs || !act || !next || !rew) {
        free(obs);
        free(act);
        free(next);
        free(rew);
        return -1;
    }
    mb_rng_fill_normal(r, obs, n * od, 0, 1);
    mb_rng_fill_uniform(r, act, n * ad, -1, 1);
    for (size_t i = 0; i < n; i++) {
        float a2 = 0;
        for (int j = 0; j < ad; j++) a2 += act[i * ad + j] * act[i * ad + j];
        for (int j = 0; j < od; j++) {
            float d = -0.1f * obs[i * od + j] + 0.3f * act[i * ad + j % ad] +
                      0.2f * obs[i * od + (j + 1) % od] * act[i * ad + (j + 2) % ad];
            next[i * od + j] = obs[i * od + j] + 0.05f * d + 0.01f * (float)mb_rng_normal(r);
        }
        rew[i] = obs[i * od + 8 % od] - a2;
    }
    mb_buffer_append(b, n, obs, act, rew, next, NULL, NULL);
    free(obs);
    free(act);
    free(next);
    free(rew);
    return 0;
}

/* Epochs through mb_train (the trainer the server runs): returns the
 * median seconds of epochs 2..n (steady state); *first gets epoch 1 with
 * the call's setup (normaliser fit, allocation). */
static double time_train(const mb_ensemble *init, const mb_buffer *buf, mb_pool *pool,
                         int epochs, double *first) {
    char err[256];
    mb_ensemble e;
    if (mb_ensemble_copy(&e, init, err, sizeof err) != MB_OK) return -1;
    mb_adam opt = {0};
    mb_train_cfg cfg;
    mb_train_cfg_default(&cfg);
    cfg.max_epochs = epochs;
    cfg.patience = 0;
    cfg.seed = 3;
    epoch_clock clk = {.n = 0};
    mb_train_result res;
    clk.t0 = bench_now();
    mb_status st = mb_train(&e, &opt, buf, &cfg, pool, on_epoch, &clk, &res, err, sizeof err);
    mb_adam_free(&opt);
    mb_ensemble_free(&e);
    if (st != MB_OK || clk.n < 2) {
        fprintf(stderr, "ensemble: mb_train: %s\n", st != MB_OK ? err : "too few epochs");
        return -1;
    }
    *first = clk.at[0] - clk.t0;
    double d[16];
    for (int i = 1; i < clk.n; i++) d[i - 1] = clk.at[i] - clk.at[i - 1];
    return bench_median(d, clk.n - 1);
}

int bench_ensemble(int argc, char **argv) {
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help")) {
            printf("usage: mbrld-bench ensemble\n  FMA peak, sgemm on the ensemble's shapes, "
                   "forward (2,000 and 20,000 rows per member), one training epoch over "
                   "100,000 transitions (pets-halfcheetah network)\n");
            return 0;
        }
    char err[256];
    mb_ensemble_spec spec;
    halfcheetah_spec(&spec);
    mb_ensemble e;
    if (mb_ensemble_init(&e, &spec, 1, err, sizeof err) != MB_OK) {
        fprintf(stderr, "ensemble: %s\n", err);
        return 1;
    }
    const int members = spec.members, in = mb_ensemble_in_dim(&spec), out = mb_ensemble_out_dim(&spec);
    const double fpr = mb_ensemble_flops_per_row(&spec);
    mb_pool_blas_single_thread();

    fprintf(stderr, "ensemble benchmark: pets-halfcheetah network, %d members x %d x %d %s, in %d, out 2x%d\n",
            members, spec.n_hidden, spec.hidden[0], mb_activation_name(spec.activation), in, out);
    bench_peak peak, peak1, peak_end;
    bench_peak_measure(&peak, 0);
    bench_peak_measure(&peak1, 1);
    add_peak(&peak, "start");
    add_peak(&peak1, "start");
    char detail[128];

    static const int shapes[][3] = {{256, 200, 200}, {2000, 200, 200}, {20000, 200, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int th = 1; th <= 2; th++) {
            double g = bench_sgemm_gflops(shapes[s][0], shapes[s][1], shapes[s][2], th);
            char what[64];
            snprintf(what, sizeof what, "sgemm %dx%dx%d, %d BLAS thread%s", shapes[s][0],
                     shapes[s][1], shapes[s][2], th, th > 1 ? "s" : "");
            add(g, what, NULL, "\"bench\": \"sgemm\", \"m\": %d, \"n\": %d, \"k\": %d, \"blas_threads\": %d",
                shapes[s][0], shapes[s][1], shapes[s][2], th);
        }

    for (size_t s = 0; s < 2; s++) {
        double g = gemm_nn_gflops(shapes[s][0], shapes[s][1], shapes[s][2]);
        char what[64];
        snprintf(what, sizeof what, "mb_gemm_nn %dx%dx%d, 1 thread", shapes[s][0], shapes[s][1],
                 shapes[s][2]);
        add(g, what, NULL, "\"bench\": \"mb_gemm_nn\", \"m\": %d, \"n\": %d, \"k\": %d, \"threads\": 1",
            shapes[s][0], shapes[s][1], shapes[s][2]);
    }

    /* forward */
    const size_t rows_list[2] = {2000, 20000};
    mb_pool *pool = mb_pool_new(2);
    mb_ens_ws *ws = mb_ens_ws_new(&spec, 20000);
    float *x = malloc((size_t)members * 20000 * in * sizeof(float));
    float *mean = malloc((size_t)members * 20000 * out * sizeof(float));
    float *std = malloc((size_t)members * 20000 * out * sizeof(float));
    if (!pool || !ws || !x || !mean || !std) {
        fprintf(stderr, "ensemble: out of memory\n");
        return 1;
    }
    mb_rng rng;
    mb_rng_seed(&rng, 7);
    mb_rng_fill_normal(&rng, x, (size_t)members * 20000 * in, 0, 1);
    for (int r = 0; r < 2; r++) {
        size_t n = rows_list[r];
        int reps = n > 5000 ? 5 : 15;
        /* (a) mbrld's pool of 2 workers, OpenBLAS on 1 thread (the design);
         * (b) no pool, OpenBLAS on 2 threads. With AVX-512 the forward makes
         * no BLAS call (mb_gemm_nn), so (b) runs on one core: it shows what
         * the pool buys. Before mb_gemm, with cblas_sgemm in both, (a) gave
         * 162 and (b) 114-116 GFLOP/s at 2,000 and 20,000 rows. */
        double ta = time_forward(&e, ws, pool, x, n, mean, std, reps, MB_PREC_FP32);
        openblas_set_num_threads(2);
        double tb = time_forward(&e, ws, NULL, x, n, mean, std, reps, MB_PREC_FP32);
        openblas_set_num_threads(1);
        double ga = fpr * n * members / ta * 1e-9, gb = fpr * n * members / tb * 1e-9;
        char what[64];
        snprintf(what, sizeof what, "forward %zu rows/member, pool 2 x BLAS 1", n);
        snprintf(detail, sizeof detail, "(%.2f ms)", ta * 1e3);
        add(ga, what, detail, "\"bench\": \"ensemble_forward\", \"rows\": %zu, \"threads\": \"pool2_blas1\", \"seconds\": %.6f", n, ta);
        snprintf(what, sizeof what, "forward %zu rows/member, no pool, BLAS 2", n);
        snprintf(detail, sizeof detail, "(%.2f ms)", tb * 1e3);
        add(gb, what, detail, "\"bench\": \"ensemble_forward\", \"rows\": %zu, \"threads\": \"nopool_blas2\", \"seconds\": %.6f", n, tb);
        /* the planner's bf16 products (precision bf16), on the pool */
        if (mb_ensemble_bf16_prepare(&e, NULL, 0) == MB_OK) {
            double tc = time_forward(&e, ws, pool, x, n, mean, std, reps, MB_PREC_BF16);
            snprintf(what, sizeof what, "forward %zu rows/member, bf16 (%s), pool 2", n,
                     mb_cpu_has_amx() ? "AMX" : "vdpbf16ps");
            snprintf(detail, sizeof detail, "(%.2f ms; %.2fx fp32's rate)", tc * 1e3, ta / tc);
            adding_bf16 = 1;
            add(fpr * n * members / tc * 1e-9, what, detail,
                "\"bench\": \"ensemble_forward\", \"rows\": %zu, \"threads\": \"pool2_blas1\", \"precision\": \"bf16\", "
                "\"seconds\": %.6f", n, tc);
            adding_bf16 = 0;
        }
    }
    free(x);
    free(mean);
    free(std);
    mb_ens_ws_free(ws);

    /* training: one epoch over 100,000 transitions, batch 256 */
    const size_t n_data = 100000, batch = 256;
    train_ctx c = {.e = &e, .n_data = n_data, .batch = batch};
    float *xn = malloc(n_data * in * sizeof(float)), *yn = malloc(n_data * out * sizeof(float));
    size_t *idx = malloc((size_t)members * n_data * sizeof(size_t));
    c.gather_x = malloc((size_t)members * batch * in * sizeof(float));
    c.gather_y = malloc((size_t)members * batch * out * sizeof(float));
    c.grad = malloc(e.n_params * sizeof(float));
    mb_ens_ws *tws[MB_MAX_MEMBERS];
    for (int m = 0; m < members; m++) tws[m] = mb_ens_ws_new(&spec, batch);
    mb_adam opt;
    if (!xn || !yn || !idx || !c.gather_x || !c.gather_y || !c.grad ||
        mb_adam_init(&opt, e.n_params, 1e-3f, err, sizeof err) != MB_OK) {
        fprintf(stderr, "ensemble: out of memory\n");
        return 1;
    }
    mb_rng_fill_normal(&rng, xn, n_data * in, 0, 1);
    mb_rng_fill_normal(&rng, yn, n_data * out, 0, 1);
    for (int m = 0; m < members; m++)
        for (size_t i = 0; i < n_data; i++) idx[(size_t)m * n_data + i] = mb_rng_below(&rng, n_data);
    c.xn = xn;
    c.yn = yn;
    c.idx = idx;
    c.ws = tws;
    /* forward + backward (weight and input gradients) = 3x the forward's
     * FLOPs per row (the first layer's input gradient is skipped; ignored) */
    const double train_flops = 3.0 * fpr * (double)n_data * members;

    /* (1) mb_train, the trainer the server runs: pool of 2 with OpenBLAS on
     * 1 thread (the design), and no pool with OpenBLAS on 2 threads */
    mb_buffer buf;
    if (mb_buffer_init(&buf, spec.obs_dim, spec.act_dim, n_data, 0.0f, 1, err, sizeof err) != MB_OK ||
        fill_buffer(&buf, n_data, &rng) != 0) {
        fprintf(stderr, "ensemble: buffer: %s\n", err);
        return 1;
    }
    for (int variant = 0; variant < 2; variant++) {
        double first = 0, secs;
        if (variant == 0) {
            secs = time_train(&e, &buf, pool, 3, &first);
        } else {
            openblas_set_num_threads(2);
            secs = time_train(&e, &buf, NULL, 3, &first);
            openblas_set_num_threads(1);
        }
        if (secs <= 0) return 1;
        double g = train_flops / secs * 1e-9, tps = (double)n_data / secs;
        const char *thr = variant == 0 ? "pool2_blas1" : "blas2";
        char what[80];
        snprintf(what, sizeof what, "mb_train epoch 100k, %s", variant == 0 ? "pool 2 x BLAS 1" : "BLAS 2 threads");
        snprintf(detail, sizeof detail, "(%.2f s/epoch, %.0f transitions/s; first epoch with setup %.2f s)",
                 secs, tps, first);
        add(g, what, detail, "\"bench\": \"ensemble_train\", \"transitions\": %zu, \"batch\": %zu, \"members\": %d, \"threads\": \"%s\", \"seconds_per_epoch\": %.3f, \"first_epoch_seconds\": %.3f, \"transitions_per_s\": %.0f",
            n_data, batch, members, thr, secs, first, tps);
    }
    mb_buffer_free(&buf);

    /* (2) the bare loop (gather + loss_grad per member on the pool + one
     * Adam step): what the trainer costs on top of the numerics */
    double secs = train_epoch(&e, &opt, &c, pool);
    double g = train_flops / secs * 1e-9;
    double tps = (double)n_data / secs;
    snprintf(detail, sizeof detail, "(%.2f s/epoch, %.0f transitions/s)", secs, tps);
    add(g, "bare loss_grad+adam loop, pool 2 x BLAS 1", detail,
        "\"bench\": \"ensemble_train_loop\", \"transitions\": %zu, \"batch\": %zu, \"members\": %d, \"threads\": \"pool2_blas1\", \"seconds_per_epoch\": %.3f, \"transitions_per_s\": %.0f",
        n_data, batch, members, secs, tps);

    bench_peak_measure(&peak_end, 0);
    add_peak(&peak_end, "end");
    print_results(&peak, &peak_end);
    for (int m = 0; m < members; m++) mb_ens_ws_free(tws[m]);
    mb_adam_free(&opt);
    free(xn);
    free(yn);
    free(idx);
    free(c.gather_x);
    free(c.gather_y);
    free(c.grad);
    mb_pool_free(pool);
    mb_ensemble_free(&e);
    return 0;
}
