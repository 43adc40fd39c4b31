/* rng.c: xoshiro256** seeded through splitmix64, uniform and normal draws.
 *
 * Deterministic across runs and platforms for the integer and uniform draws;
 * normals use the polar method (or Box-Muller, mb_rng_normal_bm) with
 * libm's log/sqrt/cos (the same on one platform). The 8-lane form is
 * rng_vec.c. Not for: cryptography, or sharing one mb_rng across threads. */
#include "base/rng.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void mb_rng_seed(mb_rng *r, uint64_t seed) {
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
    /* xoshiro's only bad state is all zeros; splitmix64 cannot give four
     * zero outputs in a row, but keep the invariant explicit. */
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3])) r->s[0] = 1;
    r->spare = 0;
    r->has_spare = 0;
}

void mb_rng_split(const mb_rng *parent, uint64_t stream, mb_rng *child) {
    /* Hash the parent's state together with the stream id; each step goes
     * through splitmix64 so nearby stream ids give unrelated seeds. */
    uint64_t x = stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL;
    uint64_t h = splitmix64(&x);
    for (int i = 0; i < 4; i++) {
        x ^= parent->s[i] + h;
        h = splitmix64(&x);
    }
    mb_rng_seed(child, h ^ stream);
}

uint64_t mb_rng_u64(mb_rng *r) { return mb_rng_step(r->s); }

double mb_rng_uniform(mb_rng *r) {
    return (double)(mb_rng_u64(r) >> 11) * 0x1.0p-53;
}

uint64_t mb_rng_below(mb_rng *r, uint64_t n) {
    /* Lemire, "Fast random integer generation in an interval" (2019):
     * reject the low products that would over-represent some values. */
    if (n == 0) return 0;
    unsigned __int128 m = (unsigned __int128)mb_rng_u64(r) * n;
    uint64_t lo = (uint64_t)m;
    if (lo < n) {
        uint64_t thresh = (0 - n) % n;
        while (lo < thresh) {
            m = (unsigned __int128)mb_rng_u64(r) * n;
            lo = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

double mb_rng_normal(mb_rng *r) {
    if (r->has_spare) {
        r->has_spare = 0;
        return r->spare;
    }
    double u, v, s;
    do {
        u = 2.0 * mb_rng_uniform(r) - 1.0;
        v = 2.0 * mb_rng_uniform(r) - 1.0;
        s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    double f = sqrt(-2.0 * log(s) / s);
    r->spare = v * f;
    r->has_spare = 1;
    return u * f;
}

double mb_rng_normal_bm(mb_rng *r) {
    double u = mb_rng_uniform(r), v = mb_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u)) * cos(2.0 * M_PI * v);
}

void mb_rng_fill_normal(mb_rng *r, float *x, size_t n, float mean, float std) {
    for (size_t i = 0; i < n; i++) x[i] = mean + std * (float)mb_rng_normal(r);
}

void mb_rng_fill_uniform(mb_rng *r, float *x, size_t n, float lo, float hi) {
    float w = hi - lo;
    for (size_t i = 0; i < n; i++) {
        float v = lo + w * (float)mb_rng_uniform(r);
        /* float rounding can land exactly on hi; keep the interval half-open */
        x[i] = v < hi ? v : lo;
    }
}
