/* bench_peak.c: `mbrld-bench peak [--threads N]`: the FMA peak at every
 * vector width this CPU has (bench.h), on all cores and on one, as every
 * other benchmark measures it for its ratios, and the bf16 products' peak
 * (AMX or vdpbf16ps) where the CPU has one. A second or so.
 * Human lines first, then one JSON line per width and thread count.
 * Not for: anything but the peak. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

int bench_peak_cmd(int argc, char **argv) {
    int threads = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = atoi(argv[++i]);
        else {
            printf("usage: mbrld-bench peak [--threads N (0 = all cores)]\n");
            return strcmp(argv[i], "--help") ? 1 : 0;
        }
    }
    bench_peak all, one;
    if (bench_peak_measure(&all, threads) || bench_peak_measure(&one, 1)) {
        fprintf(stderr, "peak: nothing could be measured\n");
        return 1;
    }
    bench_peak_print(stdout, &all, "(all cores)");
    bench_peak_print(stdout, &one, "(one core)");
    const bench_peak *ps[2] = {&all, &one};
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < ps[k]->n_widths; i++)
            printf("{\"bench\": \"fma_peak\", \"threads\": %d, \"isa\": \"%s\", \"lanes\": %d, "
                   "\"gflops\": %.1f, \"peak_isa\": \"%s\", \"peak_gflops\": %.1f, \"ratio_to_peak\": %.3f}\n",
                   ps[k]->threads, ps[k]->width[i].isa, ps[k]->width[i].lanes, ps[k]->width[i].gflops,
                   ps[k]->isa, ps[k]->gflops, ps[k]->width[i].gflops / ps[k]->gflops);
    for (int k = 0; k < 2; k++)
        if (ps[k]->bf16_gflops > 0)
            printf("{\"bench\": \"bf16_peak\", \"threads\": %d, \"isa\": \"%s\", \"gflops\": %.1f, "
                   "\"fp32_peak_gflops\": %.1f, \"ratio_to_fp32_peak\": %.3f}\n",
                   ps[k]->threads, ps[k]->bf16_isa, ps[k]->bf16_gflops, ps[k]->gflops,
                   ps[k]->bf16_gflops / ps[k]->gflops);
    return 0;
}
