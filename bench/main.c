/* main.c: build/mbrld-bench NAME [options] runs one benchmark; `all` runs
 * every one. Each benchmark lives in bench/bench_NAME.c and adds one line to
 * the table below. A ratio to the peak above 1.0 anywhere (bench_ratio) is
 * a bug of the bench: the exit status is then 3, whatever the benchmarks
 * returned. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

int bench_ensemble(int argc, char **argv);
int bench_durability(int argc, char **argv);
int bench_plan(int argc, char **argv);
int bench_serve(int argc, char **argv);
int bench_load(int argc, char **argv);
int bench_peak_cmd(int argc, char **argv);
int bench_planners(int argc, char **argv);
int bench_policy(int argc, char **argv);

static const struct {
    const char *name;
    bench_fn fn;
    const char *help;
} benches[] = {
    {"ensemble", bench_ensemble, "FMA peak, sgemm, ensemble forward and training throughput"},
    {"plan", bench_plan, "CEM planning latency per preset (--preset NAME), GFLOP/s, vs PyTorch"},
    {"durability", bench_durability, "write-ahead log: acknowledged transitions/s per fsync policy, recovery of 1M"},
    {"serve", bench_serve, "act latency over HTTP vs in-process (small), act throughput with 1/8/16/64 clients"},
    {"load", bench_load, "open-loop acts from 1/8/64 robots (small) while training runs: latency, errors, GFLOP/s"},
    {"policy", bench_policy, "act with a learned policy over HTTP (latency, throughput), SAC updates/s, BPTT gradient norm vs H"},
    {"peak", bench_peak_cmd, "FMA peak at every vector width the CPU has, all cores and one (what the ratios use)"},
    {"planners", bench_planners, "Pendulum-v1 learned through the daemon with MCTS (5 torques) and iLQR (issue 14)"},
};
#define N_BENCHES (int)(sizeof benches / sizeof benches[0])

static void usage(FILE *f) {
    fprintf(f, "usage: mbrld-bench NAME [options]   (NAME --help for its options)\n\n");
    fprintf(f, "  %-12s %s\n", "all", "run every benchmark with its defaults");
    for (int i = 0; i < N_BENCHES; i++) fprintf(f, "  %-12s %s\n", benches[i].name, benches[i].help);
}

/* The run's exit status: rc, or 3 after a ratio above 1.0. */
static int finish(int rc) {
    int bugs = bench_bugs();
    if (bugs) {
        fprintf(stderr, "\n*** BUG: ratio above 1.0: %d ratio%s to the FMA peak above 1.0 in this run "
                        "(see above); exit status 3 ***\n", bugs, bugs == 1 ? "" : "s");
        return 3;
    }
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "all")) {
        int rc = 0;
        for (int i = 0; i < N_BENCHES; i++) {
            char *args[] = {(char *)benches[i].name, NULL};
            printf("\n### %s\n", benches[i].name);
            fflush(stdout);
            if (benches[i].fn(1, args) != 0) rc = 1;
        }
        return finish(rc);
    }
    for (int i = 0; i < N_BENCHES; i++)
        if (!strcmp(argv[1], benches[i].name)) return finish(benches[i].fn(argc - 1, argv + 1) ? 1 : 0);
    fprintf(stderr, "mbrld-bench: unknown benchmark '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
