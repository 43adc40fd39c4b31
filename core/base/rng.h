/* rng.h: seeded pseudo-random numbers (xoshiro256** seeded via splitmix64),
 * the one generator of the project. Its 8-lane vector form for bulk normals
 * is rng_vec.h (each lane an mb_rng stream).
 *
 * The same seed gives the same sequence on every run and platform. An mb_rng
 * is plain state owned by its user: one per thread, never shared.
 * Not for: cryptography. */
#ifndef MB_RNG_H
#define MB_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
    double spare;    /* cached second normal of the polar method */
    int has_spare;
} mb_rng;

/* One xoshiro256** step on a raw state (s not all zero): the next output.
 * Inline for hot loops that keep their own copy of the state (the
 * planner's per-task generators); mb_rng_u64 is this on r->s. */
static inline uint64_t mb_rng_step(uint64_t s[4]) {
    uint64_t r = s[1] * 5, t = s[1] << 17;
    r = ((r << 7) | (r >> 57)) * 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = (s[3] << 45) | (s[3] >> 19);
    return r;
}

void mb_rng_seed(mb_rng *r, uint64_t seed);
/* A new independent stream: seeds `child` from `parent` and a stream id
 * (e.g. member or thread index), leaving `parent` unchanged. */
void mb_rng_split(const mb_rng *parent, uint64_t stream, mb_rng *child);
uint64_t mb_rng_u64(mb_rng *r);
/* Uniform in [0, 1). */
double mb_rng_uniform(mb_rng *r);
/* Uniform integer in [0, n); n > 0. Unbiased (Lemire's method). */
uint64_t mb_rng_below(mb_rng *r, uint64_t n);
/* Standard normal N(0, 1) (polar method; caches the second draw). */
double mb_rng_normal(mb_rng *r);
/* Standard normal by Box-Muller from two fresh uniforms u, v:
 * sqrt(-2 ln(1 - u)) cos(2 pi v), one draw per call and no cache (the
 * simulators' resets, whose streams must stay easy to reproduce). */
double mb_rng_normal_bm(mb_rng *r);
/* x[i] ~ N(mean, std^2) for i < n. */
void mb_rng_fill_normal(mb_rng *r, float *x, size_t n, float mean, float std);
/* x[i] ~ U[lo, hi) for i < n. */
void mb_rng_fill_uniform(mb_rng *r, float *x, size_t n, float lo, float hi);

#endif
