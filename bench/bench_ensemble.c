/* bench_ensemble.c: `mbrld-bench ensemble`: the same-run FMA peak, sgemm on
 * the ensemble's shapes, the ensemble forward for 2,000 and 20,000 rows per
 * member, and training throughput (one epoch over 100,000 transitions,
 * batch 256, 5 members, 4 x 200 SiLU), each as GFLOP/s and a ratio to the
 * peak. Human table first, then one JSON line per result.
 * Not for: planning latency (bench_plan) or assertions of any kind. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "ensemble.h"
#include "pool.h"
#include "rng.h"

#define MAX_RESULTS 32

typedef struct {
    char json[512];
} result;

static result results[MAX_RESULTS];
static int n_results;

static void add_json(const char *s) {
    if (n_results < MAX_RESULTS) snprintf(results[n_results++].json, sizeof results[0].json, "%s", s);
}

static void halfcheetah_spec(mb_ensemble_spec *spec) {
    mb_ensemble_spec_default(spec); /* 5 x 4 x 200 SiLU, learns the reward */
    spec->obs_dim = 18;
    spec->act_dim = 6;
}

/* Seconds per forward of n rows per member, median of `reps` calls. */
static double time_forward(const mb_ensemble *e, mb_ens_ws *ws, mb_pool *pool, const float *x,
                           size_t n, float *mean, float *std, int reps) {
    double t[32];
    if (reps > 32) reps = 32;
    mb_ensemble_forward(e, ws, pool, NULL, e->spec.members, x, n, mean, std); /* warm-up */
    for (int r = 0; r < reps; r++) {
        double t0 = bench_now();
        mb_ensemble_forward(e, ws, pool, NULL, e->spec.members, x, n, mean, std);
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

    double peak = bench_fma_peak_gflops(0);
    double peak1 = bench_fma_peak_gflops(1);
    printf("ensemble benchmark: pets-halfcheetah network, %d members x %d x %d %s, in %d, out 2x%d\n",
           members, spec.n_hidden, spec.hidden[0], mb_activation_name(spec.activation), in, out);
    printf("%-44s %10s %8s\n", "what", "GFLOP/s", "of peak");
    printf("%-44s %10.1f %8.2f\n", "FMA peak, all cores", peak, 1.0);
    printf("%-44s %10.1f %8.2f\n", "FMA peak, 1 core", peak1, peak1 / peak);
    char js[512];
    snprintf(js, sizeof js, "{\"bench\": \"fma_peak\", \"threads\": 0, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": 1.00}", peak, peak);
    add_json(js);
    snprintf(js, sizeof js, "{\"bench\": \"fma_peak\", \"threads\": 1, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}", peak1, peak, peak1 / peak);
    add_json(js);

    static const int shapes[][3] = {{256, 200, 200}, {2000, 200, 200}, {20000, 200, 200}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int th = 1; th <= 2; th++) {
            double g = bench_sgemm_gflops(shapes[s][0], shapes[s][1], shapes[s][2], th);
            char what[64];
            snprintf(what, sizeof what, "sgemm %dx%dx%d, %d BLAS thread%s", shapes[s][0],
                     shapes[s][1], shapes[s][2], th, th > 1 ? "s" : "");
            printf("%-44s %10.1f %8.2f\n", what, g, g / peak);
            snprintf(js, sizeof js, "{\"bench\": \"sgemm\", \"m\": %d, \"n\": %d, \"k\": %d, \"blas_threads\": %d, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}",
                     shapes[s][0], shapes[s][1], shapes[s][2], th, g, peak, g / peak);
            add_json(js);
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
         * (b) no pool, OpenBLAS on 2 threads. */
        double ta = time_forward(&e, ws, pool, x, n, mean, std, reps);
        openblas_set_num_threads(2);
        double tb = time_forward(&e, ws, NULL, x, n, mean, std, reps);
        openblas_set_num_threads(1);
        double ga = fpr * n * members / ta * 1e-9, gb = fpr * n * members / tb * 1e-9;
        char what[64];
        snprintf(what, sizeof what, "forward %zu rows/member, pool 2 x BLAS 1", n);
        printf("%-44s %10.1f %8.2f   (%.2f ms)\n", what, ga, ga / peak, ta * 1e3);
        snprintf(what, sizeof what, "forward %zu rows/member, BLAS 2 threads", n);
        printf("%-44s %10.1f %8.2f   (%.2f ms)\n", what, gb, gb / peak, tb * 1e3);
        snprintf(js, sizeof js, "{\"bench\": \"ensemble_forward\", \"rows\": %zu, \"threads\": \"pool2_blas1\", \"seconds\": %.6f, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}",
                 n, ta, ga, peak, ga / peak);
        add_json(js);
        snprintf(js, sizeof js, "{\"bench\": \"ensemble_forward\", \"rows\": %zu, \"threads\": \"blas2\", \"seconds\": %.6f, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}",
                 n, tb, gb, peak, gb / peak);
        add_json(js);
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
    const double train_flops = 3.0 * fpr * (double)((n_data / batch) * batch) * members;
    double secs = train_epoch(&e, &opt, &c, pool);
    double g = train_flops / secs * 1e-9;
    double tps = (double)n_data / secs;
    printf("%-44s %10.1f %8.2f   (%.2f s/epoch, %.0f transitions/s)\n",
           "train epoch 100k x 5 members, batch 256", g, g / peak, secs, tps);
    snprintf(js, sizeof js, "{\"bench\": \"ensemble_train\", \"transitions\": %zu, \"batch\": %zu, \"members\": %d, \"loop\": \"loss_grad+adam\", \"seconds_per_epoch\": %.3f, \"transitions_per_s\": %.0f, \"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}",
             n_data, batch, members, secs, tps, g, peak, g / peak);
    add_json(js);

    for (int i = 0; i < n_results; i++) printf("%s\n", results[i].json);
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
