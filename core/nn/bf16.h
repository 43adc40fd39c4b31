/* bf16.h: bfloat16 products with fp32 accumulation for the opt-in bf16
 * planning forward: AMX tiles (TDPBF16PS, 16x16 fp32 += 16x32 bf16 x
 * 32x16 bf16) where the CPU has them (base/cpu.h mb_cpu_has_amx), else
 * AVX512_BF16's vdpbf16ps (mb_cpu_has_bf16).
 *
 * Layouts, padded so AMX tiles never read past them:
 *   - weights W (k, n) packed once into pairs along k, rows padded to
 *     mb_bf16_stride(k) (a multiple of 32) and columns to mb_bf16_stride(n),
 *     zeros in the padding: P[(kk / 2) * 2 n32 + 2 j + kk % 2] = bf16(W[kk][j]);
 *     a 64-byte row of 16 column pairs is one vdpbf16ps operand and one row
 *     of an AMX B tile;
 *   - activations A: rows of mb_bf16_stride(k) bf16, the columns past k
 *     zero; the buffer must hold mb_bf16_rows_alloc(m) rows (AMX reads
 *     whole 32-row blocks; rows past m are read, their results dropped).
 * Conversions round to nearest even (vcvtneps2bf16; denormals to zero).
 * Each entry sums its products in a fixed order (k pairs in order for
 * vdpbf16ps; AMX's own order within 32-k blocks, blocks in order), so the
 * results do not depend on how a caller splits rows, but AMX and vdpbf16ps
 * differ in the last bits. Error against fp32: bf16 keeps 8 significant
 * bits (relative 2^-9 per rounded factor).
 * Only call these when mb_cpu_has_bf16(); elsewhere they do nothing.
 * Not for: training (fp32 only), threads (callers split rows). */
#ifndef MB_BF16_H
#define MB_BF16_H

#include <stddef.h>
#include <stdint.h>

#include "nn/ops.h"

/* Row stride (bf16 elements) of a k-wide matrix: k rounded up to 32. */
static inline int mb_bf16_stride(int k) { return (k + 31) & ~31; }
/* Rows to allocate for m rows of activations: m rounded up to 32. */
static inline size_t mb_bf16_rows_alloc(size_t m) { return (m + 31) & ~(size_t)31; }
/* uint16 elements of W (k, n) packed. */
static inline size_t mb_bf16_packed_size(int k, int n) {
    return (size_t)mb_bf16_stride(k) * (size_t)mb_bf16_stride(n);
}
/* P = W packed as above. */
void mb_bf16_pack(const float *W, int k, int n, uint16_t *P);
/* dst (m, stride(k)) = bf16(src (m, k)), the pad columns zero. */
void mb_bf16_rows(const float *src, size_t m, int k, uint16_t *dst);
/* Hidden layer: C (m, stride(n)) = bf16(act(A (m, stride(k)) W + bias)),
 * the pad columns act(0) = 0. */
void mb_gemm_bf16_act(size_t m, int n, int k, const uint16_t *A, const uint16_t *P,
                      const float *bias, mb_activation act, uint16_t *C);
/* Head: C (m, n) fp32 = A (m, stride(k)) W (no bias). */
void mb_gemm_bf16_f32(size_t m, int n, int k, const uint16_t *A, const uint16_t *P, float *C);

#endif
