/* gemm.h: single-threaded sgemm for the ensemble's small, cache-resident
 * shapes (a tile of <= 256 rows times a <= 2048-wide layer), row-major.
 *
 * Register-blocked kernels, no packing (the operands of one tile already
 * sit in L1/L2), chosen per call by the run-time level (base/cpu.h):
 * AVX-512 8 rows x 48 columns, AVX2 6 rows x 16 columns, and a scalar loop.
 * No BLAS call and no allocation at any level (OpenBLAS 0.3.21's small-
 * matrix kernels allocate, which the trainer's zero-allocation check
 * catches). With AVX-512, single-threaded OpenBLAS was 8-30% slower on
 * these shapes in isolation (256x200x200: 100 vs 110 GFLOP/s per core;
 * it spends ~12% packing at 256 rows); fusing the bias and activation into
 * the store (mb_gemm_nn_bias_act) took the forward from 79 to 90 GFLOP/s
 * on one core.
 * Results: each entry is an fmaf chain over k in order, then + C or + bias
 * and the activation, so the bits are the same at every level (the scalar
 * activations excepted, vmath.h), whichever worker or pool computes a tile
 * and however rows are split.
 * Not for: large matrices (no cache blocking over k), threads. */
#ifndef MB_GEMM_H
#define MB_GEMM_H

#include <stddef.h>

#include "nn/ops.h"

/* C (m, n) = A (m, k) B (k, n), or C += A B when accumulate != 0.
 * Leading dimensions are the row lengths (k, n, n). */
void mb_gemm_nn(size_t m, int n, int k, const float *A, const float *B, float *C, int accumulate);
/* C (m, n) = act(A (m, k) B (k, n) + bias) with bias (n) (not NULL): the
 * bias and activation are applied to the accumulators before the store
 * (inference: no separate pass over C; equals mb_gemm_nn followed by
 * mb_bias_act_forward up to the last bits of the activation). */
void mb_gemm_nn_bias_act(size_t m, int n, int k, const float *A, const float *B,
                         const float *bias, mb_activation act, float *C);
/* C (m, n) = A^T B with A (k, m) and B (k, n), or C += A^T B.
 * Leading dimensions m, n, n. (The weight gradient x^T dy.) */
void mb_gemm_tn(int m, int n, size_t k, const float *A, const float *B, float *C, int accumulate);

#endif
