/* rng.h: seeded pseudo-random numbers (xoshiro256** seeded via splitmix64).
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

void mb_rng_seed(mb_rng *r, uint64_t seed);
/* A new independent stream: seeds `child` from `parent` and a stream id
 * (e.g. member or thread index), leaving `parent` unchanged. */
void mb_rng_split(const mb_rng *parent, uint64_t stream, mb_rng *child);
uint64_t mb_rng_u64(mb_rng *r);
/* Uniform in [0, 1). */
double mb_rng_uniform(mb_rng *r);
/* Uniform integer in [0, n); n > 0. Unbiased (Lemire's method). */
uint64_t mb_rng_below(mb_rng *r, uint64_t n);
/* Standard normal N(0, 1). */
double mb_rng_normal(mb_rng *r);
/* x[i] ~ N(mean, std^2) for i < n. */
void mb_rng_fill_normal(mb_rng *r, float *x, size_t n, float mean, float std);
/* x[i] ~ U[lo, hi) for i < n. */
void mb_rng_fill_uniform(mb_rng *r, float *x, size_t n, float lo, float hi);

#endif
