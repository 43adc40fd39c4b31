/* bench_plan.c: `mbrld-bench plan [--preset NAME] [--reps N] [--no-torch]`:
 * seconds per CEM planning call through a learned ensemble for DESIGN.md's
 * presets (pets-halfcheetah, pets-cartpole, small; all three by default),
 * GFLOP/s from mb_plan_flops (core/plan/flops.h: the products of the
 * forwards, derived from the shapes and the config; checked against what
 * mb_plan reports), the ratio to the same-run FMA peak of the widest
 * vector width (bench.h), the share of the call spent inside the ensemble
 * forward, and the PyTorch reference (bench/reference/cem_plan.py, same
 * call, run as a careful user runs it: 2 threads, inference mode, batched
 * matmuls, OMP_WAIT_POLICY=PASSIVE and glibc's malloc told not to trim or
 * mmap, torch_env below) with the speed-up when python3 can import torch.
 * Human table first, then one JSON line per preset. Before the presets,
 * issue 14's planners in closed loop over the known pendulum and cartpole,
 * each against CEM at equal time (bench_plan_methods.c; --no-methods skips
 * it, --methods-only runs only it); their JSON lines come last.
 *
 * Who uses the two cores is measured here, every run: (a) OpenBLAS pinned to
 * one thread and an mb_pool of 2 workers taking (member, row block) tiles
 * plus the planner's row tasks, versus (b) no pool and OpenBLAS on 2
 * threads. The faster one is reported (and named); mbrld plans with (a).
 * Measured while writing this (02:50-03:00 UTC, load average 5-8 on the 2
 * cores from other builds and tests, so absolute figures are low): small
 * 0.175 s (a) vs 0.191 s (b); pets-halfcheetah 6.82 s (a) vs 9.66 s (b).
 * (a) wins: tiles keep both cores busy without OpenBLAS's own thread
 * hand-offs per sgemm, and the planner's noise/reward tasks run on the
 * same workers. Since the forward moved to mbrld's own AVX-512 gemm
 * (core/nn/gemm.c), (b) leaves the forward on one core on such machines, so
 * it is now the "one worker" baseline there; it still measures OpenBLAS's
 * threads where the forward falls back to cblas_sgemm.
 * Not for: assertions (tests never assert on time). */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/cpu.h"
#include "bench.h"
#include "plan/flops.h"
#include "plan/planner.h"

typedef struct {
    const char *name;
    int obs, act, layers, width;
    int H, N, elites, iters, P;
    int reps;
} plan_preset;

static const plan_preset presets[] = {
    {"pets-halfcheetah", 18, 6, 4, 200, 30, 500, 50, 5, 20, 5},
    {"pets-cartpole", 4, 1, 3, 200, 30, 500, 50, 5, 20, 5},
    {"small", 18, 6, 2, 64, 15, 200, 20, 3, 20, 15},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

typedef struct {
    double s_per_call, gflops, forward_s;
    double flops, reported_flops; /* mb_plan_flops; what mb_plan_info said */
    mb_precision precision;       /* what the plan's forwards ran in */
} plan_timing;

/* Median seconds per mb_plan call after one warm-up. */
static int time_plan(const plan_preset *p, const mb_ensemble *e, mb_pool *pool, int reps,
                     mb_precision prec, plan_timing *out) {
    mb_planner_cfg cfg;
    mb_planner_cfg_default(&cfg, MB_PLAN_CEM);
    cfg.precision = prec;
    cfg.horizon = p->H;
    cfg.population = p->N;
    cfg.elites = p->elites;
    cfg.iterations = p->iters;
    cfg.particles = p->P;
    cfg.propagation = MB_PROP_TS_INF;
    float low[MB_MAX_ACT_DIM], high[MB_MAX_ACT_DIM], obs[MB_MAX_OBS_DIM], action[MB_MAX_ACT_DIM];
    for (int a = 0; a < p->act; a++) low[a] = -1.0f, high[a] = 1.0f;
    mb_rng rng;
    mb_rng_seed(&rng, 3);
    for (int i = 0; i < p->obs; i++) obs[i] = (float)mb_rng_normal(&rng);
    mb_dynamics dyn = {.ens = e, .obs_dim = p->obs, .act_dim = p->act, .act_low = low, .act_high = high};
    mb_plan_ws *ws = mb_plan_ws_new(&cfg, &dyn);
    if (!ws) {
        fprintf(stderr, "plan: workspace allocation failed\n");
        return 1;
    }
    char err[200];
    double t[64];
    if (reps > 64) reps = 64;
    mb_plan_info info = {0};
    for (int r = -1; r < reps; r++) {
        double t0 = bench_now();
        if (mb_plan(&cfg, &dyn, NULL, obs, NULL, &rng, ws, pool, action, NULL, &info, err, sizeof err)) {
            fprintf(stderr, "plan: %s\n", err);
            mb_plan_ws_free(ws);
            return 1;
        }
        if (r >= 0) t[r] = bench_now() - t0;
    }
    out->s_per_call = bench_median(t, reps);
    mb_ensemble_spec used = e->spec; /* every member: elites_only is off */
    out->flops = mb_plan_flops(&used, &cfg);
    out->reported_flops = info.flops;
    out->precision = info.precision;
    out->gflops = out->flops / out->s_per_call * 1e-9;

    /* The forwards alone: iterations x horizon calls of N*P/E rows per
     * member (the final mean's evaluation is too small to matter). */
    int E = e->spec.members;
    size_t n = ((size_t)p->N * p->P + E - 1) / E;
    int in = mb_ensemble_in_dim(&e->spec), D = mb_ensemble_out_dim(&e->spec);
    mb_ens_ws *ews = mb_ens_ws_new(&e->spec, n);
    float *x = malloc((size_t)E * n * in * sizeof(float));
    float *mu = malloc((size_t)E * n * D * sizeof(float)), *sd = malloc((size_t)E * n * D * sizeof(float));
    out->forward_s = 0.0;
    if (ews && x && mu && sd) {
        for (size_t i = 0; i < (size_t)E * n * in; i++) x[i] = (float)mb_rng_uniform(&rng) - 0.5f;
        double ft[16];
        int freps = reps < 16 ? reps : 16;
        for (int r = 0; r < freps; r++) {
            double t0 = bench_now();
            for (int k = 0; k < p->iters * p->H; k++)
                mb_ensemble_forward_prec(e, ews, pool, NULL, E, x, n, mu, sd, prec);
            ft[r] = bench_now() - t0;
        }
        out->forward_s = bench_median(ft, freps);
    }
    free(x);
    free(mu);
    free(sd);
    mb_ens_ws_free(ews);
    mb_plan_ws_free(ws);
    return 0;
}

/* The environment the reference runs in, as a careful PyTorch user sets
 * it: OpenMP threads sleep when idle instead of spinning (they would
 * steal the cores from the next op's threads), and glibc neither returns
 * freed memory to the system after every op (trim) nor maps each large
 * tensor freshly (mmap, page faults per allocation). Without them the
 * reference was 20x slower on a busy 2-core machine (issue 11). Set on the
 * command line so this process's own environment is untouched. */
static const char torch_env[] =
    "OMP_WAIT_POLICY=PASSIVE "
    "GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296";

/* The PyTorch reference's seconds per call, or 0 if python3 + torch or the
 * script is missing. */
static double torch_s_per_call(const char *preset, int reps) {
    const char *script = "bench/reference/cem_plan.py";
    if (access(script, R_OK) != 0) return 0.0;
    /* Debian's python3-torch lives in the system python, which a pyenv
     * shim earlier in PATH may hide. */
    const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "env %s %s %s --preset %s --reps %d --threads 2 2>/dev/null", torch_env,
             py, script, preset, reps);
    FILE *f = popen(cmd, "r");
    if (!f) return 0.0;
    char line[1024];
    double s = 0.0;
    while (fgets(line, sizeof line, f)) {
        const char *k = strstr(line, "\"s_per_call\":");
        if (k) s = atof(k + strlen("\"s_per_call\":"));
    }
    pclose(f);
    return s;
}

/* bench_plan_methods.c: issue 14's planners in closed loop (JSON lines
 * handed back, printed after the presets'). */
int bench_plan_methods_run(char json[][512], int max_json);

int bench_plan(int argc, char **argv) {
    const char *only = NULL;
    int reps = 0, torch = 1, flop_mismatch = 0, bf16 = 1, methods = 1, presets_too = 1;
    static char mjson[32][512];
    int n_mjson = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--no-methods")) methods = 0;
        else if (!strcmp(argv[i], "--methods-only")) presets_too = 0;
        else if (!strcmp(argv[i], "--preset") && i + 1 < argc) only = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-torch")) torch = 0;
        else if (!strcmp(argv[i], "--no-bf16")) bf16 = 0;
        else {
            printf("usage: mbrld-bench plan [--preset pets-halfcheetah|pets-cartpole|small] "
                   "[--reps N] [--no-torch] [--no-bf16] [--no-methods | --methods-only]\n");
            return !strcmp(argv[i], "--help") ? 0 : 1;
        }
    }
    if (methods) n_mjson = bench_plan_methods_run(mjson, 32);
    if (!presets_too) {
        for (int i = 0; i < n_mjson; i++) printf("%s\n", mjson[i]);
        return 0;
    }
    int found = 0;
    for (int i = 0; i < N_PRESETS; i++) found |= !only || !strcmp(only, presets[i].name);
    if (!found) {
        fprintf(stderr, "plan: unknown preset '%s'\n", only);
        return 1;
    }
    /* The peak is measured before the first preset, after each one and
     * after the last; the ratios use the highest (noise only lowers a
     * peak; on a shared machine one measurement is easily caught with a
     * core busy), so they are printed at the end; each preset's times go
     * to stderr as it finishes. */
    bench_peak pk_start, pk_end = {0};
    bench_peak_measure(&pk_start, 0);
    bench_peak_print(stderr, &pk_start, "at the start");
    mb_pool *pool = mb_pool_new(2);
    struct {
        const char *name, *mode;
        plan_timing a, b, best, bf;
        double torch_s, fwd_share;
        int has_bf16;
    } res[N_PRESETS];
    int n_res = 0;
    for (int i = 0; i < N_PRESETS; i++) {
        const plan_preset *p = &presets[i];
        if (only && strcmp(only, p->name)) continue;
        mb_ensemble_spec spec;
        mb_ensemble_spec_default(&spec); /* 5 members, SiLU, learns the reward */
        spec.obs_dim = p->obs;
        spec.act_dim = p->act;
        spec.n_hidden = p->layers;
        for (int l = 0; l < p->layers; l++) spec.hidden[l] = p->width;
        mb_ensemble e;
        char err[200];
        if (mb_ensemble_init(&e, &spec, 1, err, sizeof err)) {
            fprintf(stderr, "plan: %s\n", err);
            return 1;
        }
        int r = reps > 0 ? reps : p->reps;
        plan_timing a, b;
        mb_pool_blas_single_thread();
        if (time_plan(p, &e, pool, r, MB_PREC_FP32, &a)) return 1;
        openblas_set_num_threads(2);
        if (time_plan(p, &e, NULL, r, MB_PREC_FP32, &b)) return 1;
        mb_pool_blas_single_thread();
        /* bf16 (planner "precision"), on the pool, where the CPU has it */
        res[n_res].has_bf16 = 0;
        if (bf16 && mb_cpu_has_bf16()) {
            if (time_plan(p, &e, pool, r, MB_PREC_BF16, &res[n_res].bf)) return 1;
            res[n_res].has_bf16 = res[n_res].bf.precision == MB_PREC_BF16;
            fprintf(stderr, "  %-17s %.4f s/call bf16 (%.1f GFLOP/s)\n", p->name, res[n_res].bf.s_per_call,
                    res[n_res].bf.gflops);
        }
        mb_ensemble_free(&e);
        const plan_timing *best = b.s_per_call < a.s_per_call ? &b : &a;
        /* The derived count must be the work the planner did. */
        if (!(fabs(best->flops - best->reported_flops) <= 1e-9 * best->flops)) {
            fprintf(stderr, "plan: %s: mb_plan_flops %.6g but mb_plan reported %.6g FLOPs\n",
                    p->name, best->flops, best->reported_flops);
            flop_mismatch = 1;
        }
        res[n_res].name = p->name;
        res[n_res].mode = best == &a ? "pool2+blas1" : "blas2";
        res[n_res].a = a;
        res[n_res].b = b;
        res[n_res].best = *best;
        res[n_res].torch_s = torch ? torch_s_per_call(p->name, r < 5 ? r : 5) : 0.0;
        res[n_res].fwd_share = best->forward_s > 0 ? best->forward_s / best->s_per_call : 0.0;
        fprintf(stderr, "  %-17s %.4f s/call (%.3f GFLOP, %.1f GFLOP/s, %s), torch %.4f s\n", p->name,
                best->s_per_call, best->flops * 1e-9, best->gflops, res[n_res].mode, res[n_res].torch_s);
        n_res++;
        bench_peak mid;
        bench_peak_measure(&mid, 0);
        bench_peak_print(stderr, &mid, "after it");
        double bf_best = pk_end.bf16_gflops > mid.bf16_gflops ? pk_end.bf16_gflops : mid.bf16_gflops;
        if (mid.gflops > pk_end.gflops) pk_end = mid;
        if (bf_best > pk_end.bf16_gflops) pk_end.bf16_gflops = bf_best, pk_end.bf16_isa = mid.bf16_isa;
    }
    const bench_peak *pk = pk_start.gflops >= pk_end.gflops ? &pk_start : &pk_end;
    const double peak = pk->gflops;
    /* the bf16 results divide by the highest bf16 peak measured */
    bench_peak pkb = *pk;
    if (pk_start.bf16_gflops > pkb.bf16_gflops) pkb.bf16_gflops = pk_start.bf16_gflops, pkb.bf16_isa = pk_start.bf16_isa;
    if (pk_end.bf16_gflops > pkb.bf16_gflops) pkb.bf16_gflops = pk_end.bf16_gflops, pkb.bf16_isa = pk_end.bf16_isa;
    bench_peak_print(stdout, &pk_start, "at the start");
    bench_peak_print(stdout, &pk_end, "after the presets (best)");
    printf("peak for the ratios: %.1f GFLOP/s (FMA loop, %s, all cores; the highest measured)\n",
           peak, pk->isa);
    printf("kernels: %s (this CPU: up to %s; MBRLD_ISA=avx2 forces the AVX2 ones)\n",
           mb_isa_name(mb_cpu_isa()), mb_isa_name(mb_cpu_isa_max()));
    printf("%-17s %10s %10s %8s %8s %10s %10s %8s  %s\n", "preset", "s/call", "GFLOP/s", "of peak",
           "fwd%", "blas2 s", "torch s", "speedup", "threads");
    char json[N_PRESETS][768];
    for (int i = 0; i < n_res; i++) {
        const plan_timing *best = &res[i].best;
        double ts = res[i].torch_s, fwd_share = res[i].fwd_share;
        double ratio = bench_ratio(best->gflops, pk, res[i].name);
        printf("%-17s %10.4f %10.1f %8.2f %7.0f%% %10.4f %10.4f %8.2f  %s (pool2 %.4f s)\n",
               res[i].name, best->s_per_call, best->gflops, ratio, 100.0 * fwd_share,
               res[i].b.s_per_call, ts, ts > 0 ? ts / best->s_per_call : 0.0, res[i].mode,
               res[i].a.s_per_call);
        int len = snprintf(json[i], sizeof json[0],
                           "{\"bench\": \"plan\", \"preset\": \"%s\", \"s_per_call\": %.5f, "
                           "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f, "
                           "\"forward_share\": %.3f, \"threads\": \"%s\", \"s_pool2_blas1\": %.5f, "
                           "\"s_blas2\": %.5f, \"peak_isa\": \"%s\", \"gflop_per_call\": %.3f, "
                           "\"kernel_isa\": \"%s\", \"precision\": \"fp32\"",
                           res[i].name, best->s_per_call, best->gflops, peak, ratio, fwd_share,
                           res[i].mode, res[i].a.s_per_call, res[i].b.s_per_call, pk->isa,
                           best->flops * 1e-9, mb_isa_name(mb_cpu_isa()));
        if (ts > 0)
            len += snprintf(json[i] + len, sizeof json[0] - (size_t)len,
                            ", \"torch_s_per_call\": %.5f, \"speedup_vs_torch\": %.2f, "
                            "\"torch_env\": \"%s\"",
                            ts, ts / best->s_per_call, torch_env);
        snprintf(json[i] + len, sizeof json[0] - (size_t)len, "}");
    }
    /* bf16 rows: their ratio is to the bf16 products' peak (AMX or
     * vdpbf16ps, the path the kernels take), also given against fp32's */
    char jb[N_PRESETS][640];
    int n_jb = 0;
    for (int i = 0; i < n_res; i++) {
        if (!res[i].has_bf16) continue;
        const plan_timing *bt = &res[i].bf;
        char what[64];
        snprintf(what, sizeof what, "%s (bf16)", res[i].name);
        double rb = bench_ratio_bf16(bt->gflops, &pkb, what);
        double fwd = bt->forward_s > 0 ? bt->forward_s / bt->s_per_call : 0.0;
        printf("%-17s %10.4f %10.1f %8.2f %7.0f%%  bf16 (%s peak %.1f; %.2f of the fp32 peak; %.2fx faster than fp32)\n",
               res[i].name, bt->s_per_call, bt->gflops, rb, 100.0 * fwd, pkb.bf16_isa, pkb.bf16_gflops,
               bt->gflops / peak, res[i].best.s_per_call / bt->s_per_call);
        snprintf(jb[n_jb++], sizeof jb[0],
                 "{\"bench\": \"plan\", \"preset\": \"%s\", \"precision\": \"bf16\", \"s_per_call\": %.5f, "
                 "\"gflops\": %.1f, \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f, \"peak_isa\": \"%s\", "
                 "\"fp32_peak_gflops\": %.1f, \"ratio_to_fp32_peak\": %.3f, \"forward_share\": %.3f, "
                 "\"speedup_vs_fp32\": %.2f, \"gflop_per_call\": %.3f, \"kernel_isa\": \"%s\"}",
                 res[i].name, bt->s_per_call, bt->gflops, pkb.bf16_gflops, rb, pkb.bf16_isa, peak,
                 bt->gflops / peak, fwd, res[i].best.s_per_call / bt->s_per_call, bt->flops * 1e-9,
                 mb_cpu_has_amx() ? "amx" : "avx512bf16");
    }
    if (torch)
        printf("(torch: bench/reference/cem_plan.py, 2 threads, inference mode, baddbmm over members, "
               "env %s; 0 = python3/torch unavailable)\n", torch_env);
    for (int i = 0; i < n_res; i++) printf("%s\n", json[i]);
    for (int i = 0; i < n_jb; i++) printf("%s\n", jb[i]);
    for (int i = 0; i < n_mjson; i++) printf("%s\n", mjson[i]);
    mb_pool_free(pool);
    return flop_mismatch;
}
