/* bf16.h: bfloat16 products with fp32 accumulation for the opt-in bf16
 * planning forward (AVX512_BF16's vdpbf16ps; base/cpu.h mb_cpu_has_bf16).
 *
 * Operands: activations A (m rows, k columns padded to an even stride
 * kpad, the padding 0) and weights W (k, n) packed once into pairs along
 * k: P[(kk / 2) * 2n + 2j + (kk % 2)] = bf16(W[kk][j]) (an odd k's last
 * pair ends in 0), so one 64-byte load holds 16 columns x 2 rows of W and
 * one vdpbf16ps adds a[2p] w[2p] + a[2p+1] w[2p+1] into each fp32 lane.
 * Conversions round to nearest even (vcvtneps2bf16; denormals to zero).
 * Register blocking as the fp32 kernel (gemm.h): 8 rows x 48 columns.
 * Results: each entry sums its pairs in k order, so they do not depend on
 * how a caller splits rows; relative error of a product against fp32
 * ~2^-8 per factor (bf16 keeps 8 significant bits).
 * Only call these when mb_cpu_has_bf16(); on other CPUs and builds they
 * do nothing. Not for: training (fp32 only), threads. */
#ifndef MB_BF16_H
#define MB_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"

/* uint16 elements of W (k, n) packed: ((k + 1) / 2) * 2 * n. */
static inline size_t mb_bf16_packed_size(int k, int n) { return (size_t)((k + 1) / 2) * 2 * (size_t)n; }
/* P = W packed as above. */
void mb_bf16_pack(const float *W, int k, int n, uint16_t *P);
/* dst (m, kpad) = bf16(src (m, k)), the columns k..kpad-1 zero; kpad even, >= k. */
void mb_bf16_rows(const float *src, size_t m, int k, uint16_t *dst, int kpad);
/* Hidden layer: C (m, npad) = bf16(act(A (m, kpad) W + bias)), npad = n
 * rounded up to even (the pad column is act(0) = 0). */
void mb_gemm_bf16_act(size_t m, int n, int kpad, const uint16_t *A, const uint16_t *P,
                      const float *bias, mb_activation act, uint16_t *C);
/* Head: C (m, n) fp32 = A (m, kpad) W (no bias). */
void mb_gemm_bf16_f32(size_t m, int n, int kpad, const uint16_t *A, const uint16_t *P, float *C);

#endif
