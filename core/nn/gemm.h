/* gemm.h: single-threaded sgemm for the ensemble's small, cache-resident
 * shapes (a tile of <= 256 rows times a <= 2048-wide layer), row-major.
 *
 * With AVX-512 (-march=native on this machine) a register-blocked kernel
 * (8 rows x 48 columns of C, no packing: the operands of one tile already
 * sit in L1/L2) runs these shapes 8-30% faster than single-threaded
 * OpenBLAS 0.3.21 in isolation (256x200x200: 110 vs 100 GFLOP/s per core;
 * OpenBLAS spends ~12% packing at 256 rows). Inside the ensemble the gain
 * is smaller, best-of-trials on a busy machine: forward +7% (2,000 rows x 5
 * members, one core), loss_grad +1% (the input gradient stays with
 * OpenBLAS: an NT product would need W transposed). Fusing the bias and
 * activation into the store (mb_gemm_nn_bias_act) took the forward from 79
 * to 90 GFLOP/s on one core. Without AVX-512 (the
 * container's x86-64-v3 build) both calls are cblas_sgemm. Results are the same
 * whichever worker or pool computes a tile (fixed summation order).
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
