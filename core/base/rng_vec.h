/* rng_vec.h: the vector form of rng.h: 8 interleaved xoshiro256** streams
 * stepped together (AVX-512 or AVX2 when the CPU has it, chosen at run
 * time: base/cpu.h), for bulk draws such as
 * the planner's rollout noise (~19 normals per row per step; 4-5x faster
 * than one scalar normal at a time).
 *
 * Lane l of mb_vrng_init(g, seed, stream) is the mb_rng stream
 *   mb_rng_seed(&b, seed); mb_rng_split(&b, stream, &c); mb_rng_split(&c, l, &lane)
 * and every draw is made from that lane's mb_rng_step outputs, so the
 * sequences are fixed by the seed, not by the instruction set: AVX-512,
 * AVX2 and CPUs without either (the *_ref functions, one lane at a time,
 * always available) give the same bits.
 * Normals: Box-Muller on two 24-bit uniforms of one 64-bit output, with
 * polynomial log and sin/cos (|error| < 1e-6 against libm).
 * Not for: single draws (rng.h), or sharing one mb_vrng across threads. */
#ifndef MB_RNG_VEC_H
#define MB_RNG_VEC_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4][8]; /* s[word][lane] */
} mb_vrng;

void mb_vrng_init(mb_vrng *g, uint64_t seed, uint64_t stream);

/* out (n): N(0, 1), n a multiple of 16. Each block of 16 takes one output
 * of every lane: with hi = bits 40..63 and mid = bits 16..39 of lane L's
 * output, u1 = (hi + 1) 2^-24 in (0, 1], u2 = mid 2^-24 in [0, 1),
 *   out[j] = sqrt(-2 ln u1) cos(2 pi u2), out[j + 8] = the same with sin,
 * for j = 0..7 and L = MB_VRNG_LANE(j) (the AVX2 unpacking order). */
#define MB_VRNG_LANE(j) ((int)((((j) & 2) << 1) | (((j) & 4) >> 1) | ((j) & 1)))
void mb_vrng_fill_normal(mb_vrng *g, float *out, size_t n);

/* out (n): uniform in [0, 1) with 24 bits, n a multiple of 8: out[i + l] is
 * (lane l's next output >> 40) 2^-24 for l = 0..7. */
void mb_vrng_fill_uniform(mb_vrng *g, float *out, size_t n);

/* The same draws computed lane by lane in scalar code (what CPUs without
 * AVX2 use; the tests compare every level with them). */
void mb_vrng_fill_normal_ref(mb_vrng *g, float *out, size_t n);
void mb_vrng_fill_uniform_ref(mb_vrng *g, float *out, size_t n);

#endif
