/* fuzz_transitions.c: libFuzzer target for the transitions body decoder
 * (server/transitions_json.c). The first byte picks the model's dims
 * (obs 1..8, action 1..4); the rest is the body. Invariants checked on top
 * of the sanitizers: an accepted head has 1..64 rows and a NUL-terminated
 * client of 1..64 bytes; every decoded float is finite and within range.
 * Run: build/fuzz/fuzz_transitions [-max_total_time=S] DIR... (tests/fuzz/README.md) */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "transitions_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    int od = 1 + data[0] % 8, ad = 1 + (data[0] >> 4) % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    tj_head h;
    srv_err e;
    memset(&e, 0, sizeof e);
    if (tj_head_parse(text, len, 64, &h, &e) != 0) {
        if (!e.status || !e.message[0]) abort(); /* an error always says what */
        return 0;
    }
    if (h.n < 1 || h.n > 64) abort();
    if (h.has_client && (strlen(h.client) < 1 || strlen(h.client) > SRV_NAME_MAX)) abort();
    float *obs = malloc(sizeof(float) * (size_t)h.n * od), *next = malloc(sizeof(float) * (size_t)h.n * od);
    float *act = malloc(sizeof(float) * (size_t)h.n * ad), *rew = malloc(sizeof(float) * (size_t)h.n);
    uint8_t *term = malloc((size_t)h.n), *trunc = malloc((size_t)h.n);
    if (tj_rows(text, len, &h, od, ad, (len & 1) ? ad : 0, obs, act, rew, next, term, trunc, &e) == 0) {
        for (int i = 0; i < h.n * od; i++)
            if (!isfinite(obs[i]) || !isfinite(next[i])) abort();
        for (int i = 0; i < h.n * ad; i++)
            if (!isfinite(act[i])) abort();
        for (int i = 0; i < h.n; i++)
            if (!isfinite(rew[i]) || term[i] > 1 || trunc[i] > 1) abort();
    } else if (!e.status || !e.message[0]) {
        abort();
    }
    free(obs), free(next), free(act), free(rew), free(term), free(trunc);
    return 0;
}
