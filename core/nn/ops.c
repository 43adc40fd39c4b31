/* ops.c: dense helpers over cblas_sgemm (row-major), activations and their
 * derivatives, built on the one exp of nn/vmath.h.
 *
 * The elementwise loops run at the run-time level (base/cpu.h): 16 lanes
 * with AVX-512 (masked tails), 8 with AVX2 (a tail shorter than 8 goes
 * through a padded buffer), the same operations per lane at both, so the
 * bits agree; a scalar version of the same formulas (no fused multiply-
 * adds in exp) on CPUs without AVX2. Results do not depend on an
 * element's position in the array.
 * Not for: threads, allocation, or anything that knows about ensembles. */
#include "nn/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "base/cpu.h"
#include "nn/vmath.h"

int mb_activation_parse(const char *name, mb_activation *out) {
    if (!name) return -1;
    if (!strcmp(name, "silu")) *out = MB_ACT_SILU;
    else if (!strcmp(name, "relu")) *out = MB_ACT_RELU;
    else if (!strcmp(name, "tanh")) *out = MB_ACT_TANH;
    else return -1;
    return 0;
}

const char *mb_activation_name(mb_activation a) {
    switch (a) {
    case MB_ACT_SILU: return "silu";
    case MB_ACT_RELU: return "relu";
    case MB_ACT_TANH: return "tanh";
    }
    return "unknown";
}

float mb_softplus(float x) {
    /* log(1 + e^x) = max(x, 0) + log1p(e^-|x|): no overflow for large |x|. */
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

float mb_sigmoid(float x) {
    if (x >= 0) return 1.0f / (1.0f + expf(-x));
    float e = expf(x);
    return e / (1.0f + e);
}

/* Elementwise kernels, each over 8 or 16 lanes (or one scalar). `mode`: */
enum { K_EXP, K_SILU, K_RELU, K_TANH, K_DSILU, K_DRELU, K_DTANH, K_SOFTPLUS, K_SIGMOID };
#define MB_INLINE static inline __attribute__((always_inline))

#ifdef MB_X86
/* x: pre-activation (or exp argument); g: upstream gradient (derivative
 * kernels only). The 16-lane form does the same operations (vmath.h). */
MB_INLINE MB_TARGET_AVX2 __m256 kern8(int mode, __m256 x, __m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (mode) {
    case K_EXP: return mb_vm_exp8(x);
    case K_SOFTPLUS: return mb_vm_softplus8(x);
    case K_SIGMOID: return mb_vm_sigmoid8(x);
    case K_SILU: return mb_vm_silu8(x);
    case K_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case K_TANH: return mb_vm_tanh8(x);
    case K_DSILU: { /* s * (1 + x (1 - s)) */
        __m256 s = mb_vm_sigmoid8(x);
        return _mm256_mul_ps(g, _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one)));
    }
    case K_DRELU: return _mm256_and_ps(g, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
    case K_DTANH: {
        __m256 t = mb_vm_tanh8(x);
        return _mm256_mul_ps(g, _mm256_fnmadd_ps(t, t, one));
    }
    }
    return x;
}

MB_INLINE MB_TARGET_AVX512 __m512 kern16(int mode, __m512 x, __m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (mode) {
    case K_EXP: return mb_vm_exp16(x);
    case K_SOFTPLUS: return mb_vm_softplus16(x);
    case K_SIGMOID: return mb_vm_sigmoid16(x);
    case K_SILU: return mb_vm_silu16(x);
    case K_RELU: return _mm512_max_ps(x, _mm512_setzero_ps());
    case K_TANH: return mb_vm_tanh16(x);
    case K_DSILU: {
        __m512 s = mb_vm_sigmoid16(x);
        return _mm512_mul_ps(g, _mm512_mul_ps(s, _mm512_fmadd_ps(x, _mm512_sub_ps(one, s), one)));
    }
    case K_DRELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ), g);
    case K_DTANH: {
        __m512 t = mb_vm_tanh16(x);
        return _mm512_mul_ps(g, _mm512_fnmadd_ps(t, t, one));
    }
    }
    return x;
}
#endif

MB_INLINE float kern1(int mode, float x, float g) {
    switch (mode) {
    case K_EXP: return mb_vm_exp1(x);
    case K_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(mb_vm_exp1(-fabsf(x)));
    case K_SIGMOID: return mb_vm_sigmoid1(x);
    case K_SILU: return mb_vm_silu1(x);
    case K_RELU: return x > 0 ? x : 0.0f;
    case K_TANH: return mb_vm_tanh1(x);
    case K_DSILU: {
        float s = mb_vm_sigmoid1(x);
        return g * s * (1.0f + x * (1.0f - s));
    }
    case K_DRELU: return x > 0 ? g : 0.0f;
    case K_DTANH: {
        float t = mb_vm_tanh1(x);
        return g * (1.0f - t * t);
    }
    }
    return x;
}

/* y[i] = kern(x[i] (+ b[i % period] when b), g[i]); g may be NULL for the
 * forward kernels. When b is given and x_rw is not NULL, x_rw gets x + b
 * (the stored pre-activation). count is a multiple of period when b != NULL.
 * Tails are masked lanes (or a padded buffer at 8 lanes): every element
 * sees the same operations wherever it sits. */
#ifdef MB_X86
MB_INLINE MB_TARGET_AVX512 void kern_loop16(int mode, float *x_rw, const float *x, const float *b,
                                            size_t period, const float *g, float *y, size_t count) {
    const __m512 zero = _mm512_setzero_ps();
    size_t rows = b ? count / period : 1, w = b ? period : count;
    for (size_t r = 0; r < rows; r++) {
        size_t o = r * w;
        for (size_t j = 0; j < w; j += 16) {
            __mmask16 m = w - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (w - j)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, x + o + j);
            if (b) {
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + j));
                if (x_rw) _mm512_mask_storeu_ps(x_rw + o + j, m, v);
            }
            _mm512_mask_storeu_ps(y + o + j, m, kern16(mode, v, g ? _mm512_maskz_loadu_ps(m, g + o + j) : zero));
        }
    }
}

MB_INLINE MB_TARGET_AVX2 void kern_loop8(int mode, float *x_rw, const float *x, const float *b,
                                         size_t period, const float *g, float *y, size_t count) {
    const __m256 zero = _mm256_setzero_ps();
    size_t rows = b ? count / period : 1, w = b ? period : count;
    for (size_t r = 0; r < rows; r++) {
        size_t o = r * w, j = 0;
        for (; j + 8 <= w; j += 8) {
            __m256 v = _mm256_loadu_ps(x + o + j);
            if (b) {
                v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
                if (x_rw) _mm256_storeu_ps(x_rw + o + j, v);
            }
            _mm256_storeu_ps(y + o + j, kern8(mode, v, g ? _mm256_loadu_ps(g + o + j) : zero));
        }
        if (j < w) {
            float xb[8] = {0}, gb[8] = {0}, yb[8];
            size_t m = w - j;
            for (size_t t = 0; t < m; t++) {
                xb[t] = b ? x[o + j + t] + b[j + t] : x[o + j + t];
                if (b && x_rw) x_rw[o + j + t] = xb[t];
                if (g) gb[t] = g[o + j + t];
            }
            _mm256_storeu_ps(yb, kern8(mode, _mm256_loadu_ps(xb), _mm256_loadu_ps(gb)));
            memcpy(y + o + j, yb, m * sizeof(float));
        }
    }
}
#endif

MB_INLINE void kern_loop1(int mode, float *x_rw, const float *x, const float *b, size_t period,
                          const float *g, float *y, size_t count) {
    for (size_t i = 0; i < count; i++) {
        float v = b ? x[i] + b[i % period] : x[i];
        if (b && x_rw) x_rw[i] = v;
        y[i] = kern1(mode, v, g ? g[i] : 0.0f);
    }
}

/* One specialised copy of the loop per kernel and width: the switch on
 * `mode` runs once per call, not once per vector. */
#ifdef MB_X86
static MB_TARGET_AVX512 void kern_run16(int mode, float *x_rw, const float *x, const float *b,
                                        size_t period, const float *g, float *y, size_t count) {
#define KERN_CASE(k) \
    case k: kern_loop16(k, x_rw, x, b, period, g, y, count); break;
    switch (mode) {
        KERN_CASE(K_EXP) KERN_CASE(K_SILU) KERN_CASE(K_RELU) KERN_CASE(K_TANH) KERN_CASE(K_DSILU)
        KERN_CASE(K_DRELU) KERN_CASE(K_DTANH) KERN_CASE(K_SOFTPLUS) KERN_CASE(K_SIGMOID)
    }
#undef KERN_CASE
}
static MB_TARGET_AVX2 void kern_run8(int mode, float *x_rw, const float *x, const float *b,
                                     size_t period, const float *g, float *y, size_t count) {
#define KERN_CASE(k) \
    case k: kern_loop8(k, x_rw, x, b, period, g, y, count); break;
    switch (mode) {
        KERN_CASE(K_EXP) KERN_CASE(K_SILU) KERN_CASE(K_RELU) KERN_CASE(K_TANH) KERN_CASE(K_DSILU)
        KERN_CASE(K_DRELU) KERN_CASE(K_DTANH) KERN_CASE(K_SOFTPLUS) KERN_CASE(K_SIGMOID)
    }
#undef KERN_CASE
}
#endif

static void kern_run(int mode, float *x_rw, const float *x, const float *b, size_t period,
                     const float *g, float *y, size_t count) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: kern_run16(mode, x_rw, x, b, period, g, y, count); return;
    case MB_ISA_AVX2: kern_run8(mode, x_rw, x, b, period, g, y, count); return;
#endif
    default: kern_loop1(mode, x_rw, x, b, period, g, y, count); return;
    }
}

void mb_exp_approx(const float *x, float *y, size_t count) {
    kern_run(K_EXP, NULL, x, NULL, 0, NULL, y, count);
}

void mb_softplus_approx(const float *x, float *y, size_t count) {
    kern_run(K_SOFTPLUS, NULL, x, NULL, 0, NULL, y, count);
}

void mb_sigmoid_approx(const float *x, float *y, size_t count) {
    kern_run(K_SIGMOID, NULL, x, NULL, 0, NULL, y, count);
}

static int fwd_mode(mb_activation a) {
    return a == MB_ACT_RELU ? K_RELU : a == MB_ACT_TANH ? K_TANH : K_SILU;
}
static int bwd_mode(mb_activation a) {
    return a == MB_ACT_RELU ? K_DRELU : a == MB_ACT_TANH ? K_DTANH : K_DSILU;
}

void mb_act_forward(mb_activation a, const float *x, float *y, size_t count) {
    kern_run(fwd_mode(a), NULL, x, NULL, 0, NULL, y, count);
}

void mb_act_backward(mb_activation a, const float *x, const float *dy, float *dx,
                     size_t count) {
    kern_run(bwd_mode(a), NULL, x, NULL, 0, dy, dx, count);
}

void mb_bias_act_forward(mb_activation a, float *z, const float *b, float *h, size_t n,
                         int out) {
    if (!b) {
        kern_run(fwd_mode(a), NULL, z, NULL, 0, NULL, h, n * (size_t)out);
        return;
    }
    /* When h aliases z the stored pre-activation is not wanted: skip the
     * write-back so the pass stays one read + one write. */
    kern_run(fwd_mode(a), h == z ? NULL : z, z, b, (size_t)out, NULL, h, n * (size_t)out);
}

void mb_act_backward_bias(mb_activation a, const float *z, const float *dh, float *dz,
                          float *db, size_t n, int out) {
    kern_run(bwd_mode(a), NULL, z, NULL, 0, dh, dz, n * (size_t)out);
    if (db)
        for (size_t r = 0; r < n; r++) {
            const float *row = dz + r * (size_t)out;
            for (int j = 0; j < out; j++) db[j] += row[j];
        }
}

void mb_linear_forward(const float *x, const float *W, const float *b, float *y, size_t n,
                       int in, int out) {
    if (n == 0) return;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, out, in, 1.0f, x, in, W,
                out, 0.0f, y, out);
    if (b)
        for (size_t r = 0; r < n; r++)
            for (int j = 0; j < out; j++) y[r * (size_t)out + j] += b[j];
}

void mb_linear_backward(const float *x, const float *W, const float *dy, float *dW, float *db,
                        float *dx, size_t n, int in, int out) {
    if (n == 0) return;
    /* dW (in, out) += x^T (in, n) dy (n, out) */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, in, out, (int)n, 1.0f, x, in, dy, out,
                1.0f, dW, out);
    if (db)
        for (size_t r = 0; r < n; r++)
            for (int j = 0; j < out; j++) db[j] += dy[r * (size_t)out + j];
    /* dx (n, in) = dy (n, out) W^T (out, in) */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, in, out, 1.0f, dy, out, W,
                    out, 0.0f, dx, in);
}

/* ---- training variants: the backward reads what the forward kept ---------
 * SiLU keeps s = sigmoid(z): silu'(z) = s + h (1 - s) with h = z s, so the
 * backward needs no exp and no division; tanh' = 1 - h^2 and relu' = [h > 0]
 * need only h. */

#ifdef MB_X86
MB_INLINE MB_TARGET_AVX2 void fwd_aux8(mb_activation a, __m256 v, __m256 *h, __m256 *s) {
    switch (a) {
    case MB_ACT_SILU:
        *s = mb_vm_sigmoid8(v);
        *h = _mm256_mul_ps(v, *s);
        return;
    case MB_ACT_RELU: *h = _mm256_max_ps(v, _mm256_setzero_ps()); return;
    case MB_ACT_TANH: *h = mb_vm_tanh8(v); return;
    }
}

MB_INLINE MB_TARGET_AVX2 __m256 bwd_aux8(mb_activation a, __m256 h, __m256 s, __m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (a) {
    case MB_ACT_SILU: return _mm256_mul_ps(g, _mm256_fmadd_ps(h, _mm256_sub_ps(one, s), s));
    case MB_ACT_RELU: return _mm256_and_ps(g, _mm256_cmp_ps(h, _mm256_setzero_ps(), _CMP_GT_OQ));
    case MB_ACT_TANH: return _mm256_mul_ps(g, _mm256_fnmadd_ps(h, h, one));
    }
    return g;
}

MB_INLINE MB_TARGET_AVX512 void fwd_aux16(mb_activation a, __m512 v, __m512 *h, __m512 *s) {
    switch (a) {
    case MB_ACT_SILU:
        *s = mb_vm_sigmoid16(v);
        *h = _mm512_mul_ps(v, *s);
        return;
    case MB_ACT_RELU: *h = _mm512_max_ps(v, _mm512_setzero_ps()); return;
    case MB_ACT_TANH: *h = mb_vm_tanh16(v); return;
    }
}

MB_INLINE MB_TARGET_AVX512 __m512 bwd_aux16(mb_activation a, __m512 h, __m512 s, __m512 g) {
    const __m512 one = _mm512_set1_ps(1.0f);
    switch (a) {
    case MB_ACT_SILU: return _mm512_mul_ps(g, _mm512_fmadd_ps(h, _mm512_sub_ps(one, s), s));
    case MB_ACT_RELU:
        return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(h, _mm512_setzero_ps(), _CMP_GT_OQ), g);
    case MB_ACT_TANH: return _mm512_mul_ps(g, _mm512_fnmadd_ps(h, h, one));
    }
    return g;
}

MB_INLINE MB_TARGET_AVX512 void fwd_aux_rows16(mb_activation a, const float *z, const float *b,
                                               float *h, float *aux, size_t n, int out) {
    const int keep = a == MB_ACT_SILU && aux;
    for (size_t r = 0; r < n; r++) {
        size_t o = r * (size_t)out;
        for (int j = 0; j < out; j += 16) {
            __mmask16 m = out - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (out - j)) - 1);
            __m512 v = _mm512_maskz_loadu_ps(m, z + o + j), hv, sv = _mm512_setzero_ps();
            if (b) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, b + j));
            fwd_aux16(a, v, &hv, &sv);
            _mm512_mask_storeu_ps(h + o + j, m, hv);
            if (keep) _mm512_mask_storeu_ps(aux + o + j, m, sv);
        }
    }
}

MB_INLINE MB_TARGET_AVX512 void bwd_aux_rows16(mb_activation a, const float *h, const float *aux,
                                               const float *dh, float *dz, float *db, size_t n,
                                               int out) {
    for (size_t r = 0; r < n; r++) {
        size_t o = r * (size_t)out;
        for (int j = 0; j < out; j += 16) {
            __mmask16 m = out - j >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (out - j)) - 1);
            __m512 s = a == MB_ACT_SILU ? _mm512_maskz_loadu_ps(m, aux + o + j) : _mm512_setzero_ps();
            __m512 d = bwd_aux16(a, _mm512_maskz_loadu_ps(m, h + o + j), s,
                                 _mm512_maskz_loadu_ps(m, dh + o + j));
            _mm512_mask_storeu_ps(dz + o + j, m, d);
            if (db) _mm512_mask_storeu_ps(db + j, m, _mm512_add_ps(_mm512_maskz_loadu_ps(m, db + j), d));
        }
    }
}

MB_INLINE MB_TARGET_AVX2 void fwd_aux_rows8(mb_activation a, const float *z, const float *b,
                                            float *h, float *aux, size_t n, int out) {
    const int keep = a == MB_ACT_SILU && aux;
    for (size_t r = 0; r < n; r++) {
        const float *zr = z + r * (size_t)out;
        float *hr = h + r * (size_t)out, *sr = keep ? aux + r * (size_t)out : NULL;
        int j = 0;
        __m256 hv, sv = _mm256_setzero_ps();
        for (; j + 8 <= out; j += 8) {
            __m256 v = _mm256_loadu_ps(zr + j);
            if (b) v = _mm256_add_ps(v, _mm256_loadu_ps(b + j));
            fwd_aux8(a, v, &hv, &sv);
            _mm256_storeu_ps(hr + j, hv);
            if (keep) _mm256_storeu_ps(sr + j, sv);
        }
        if (j < out) {
            float vb[8] = {0}, hb[8], sb[8];
            int m = out - j;
            for (int t = 0; t < m; t++) vb[t] = zr[j + t] + (b ? b[j + t] : 0.0f);
            fwd_aux8(a, _mm256_loadu_ps(vb), &hv, &sv);
            _mm256_storeu_ps(hb, hv);
            _mm256_storeu_ps(sb, sv);
            memcpy(hr + j, hb, (size_t)m * sizeof(float));
            if (keep) memcpy(sr + j, sb, (size_t)m * sizeof(float));
        }
    }
}

MB_INLINE MB_TARGET_AVX2 void bwd_aux_rows8(mb_activation a, const float *h, const float *aux,
                                            const float *dh, float *dz, float *db, size_t n,
                                            int out) {
    for (size_t r = 0; r < n; r++) {
        size_t o = r * (size_t)out;
        int j = 0;
        for (; j + 8 <= out; j += 8) {
            __m256 s = a == MB_ACT_SILU ? _mm256_loadu_ps(aux + o + j) : _mm256_setzero_ps();
            __m256 d = bwd_aux8(a, _mm256_loadu_ps(h + o + j), s, _mm256_loadu_ps(dh + o + j));
            _mm256_storeu_ps(dz + o + j, d);
            if (db) _mm256_storeu_ps(db + j, _mm256_add_ps(_mm256_loadu_ps(db + j), d));
        }
        if (j < out) {
            float hb[8] = {0}, sb[8] = {0}, gb[8] = {0}, yb[8];
            int m = out - j;
            memcpy(hb, h + o + j, (size_t)m * sizeof(float));
            if (a == MB_ACT_SILU) memcpy(sb, aux + o + j, (size_t)m * sizeof(float));
            memcpy(gb, dh + o + j, (size_t)m * sizeof(float));
            _mm256_storeu_ps(yb, bwd_aux8(a, _mm256_loadu_ps(hb), _mm256_loadu_ps(sb),
                                          _mm256_loadu_ps(gb)));
            memcpy(dz + o + j, yb, (size_t)m * sizeof(float));
            if (db)
                for (int t = 0; t < m; t++) db[j + t] += yb[t];
        }
    }
}
#endif

MB_INLINE void fwd_aux_rows1(mb_activation a, const float *z, const float *b, float *h, float *aux,
                             size_t n, int out) {
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < out; j++) {
            size_t i = r * (size_t)out + j;
            float v = z[i] + (b ? b[j] : 0.0f);
            if (a == MB_ACT_SILU) {
                float s = mb_vm_sigmoid1(v);
                h[i] = v * s;
                if (aux) aux[i] = s;
            } else if (a == MB_ACT_RELU) {
                h[i] = v > 0 ? v : 0.0f;
            } else {
                h[i] = mb_vm_tanh1(v);
            }
        }
}

MB_INLINE void bwd_aux_rows1(mb_activation a, const float *h, const float *aux, const float *dh,
                             float *dz, float *db, size_t n, int out) {
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < out; j++) {
            size_t i = r * (size_t)out + j;
            float d;
            if (a == MB_ACT_SILU) d = dh[i] * (aux[i] + h[i] * (1.0f - aux[i]));
            else if (a == MB_ACT_RELU) d = h[i] > 0 ? dh[i] : 0.0f;
            else d = dh[i] * (1.0f - h[i] * h[i]);
            dz[i] = d;
            if (db) db[j] += d;
        }
}

/* One specialised loop per activation and width. */
#define AUX_SWITCH(ROWS, ...)                                      \
    switch (a) {                                                   \
    case MB_ACT_SILU: ROWS(MB_ACT_SILU, __VA_ARGS__); break;       \
    case MB_ACT_RELU: ROWS(MB_ACT_RELU, __VA_ARGS__); break;       \
    case MB_ACT_TANH: ROWS(MB_ACT_TANH, __VA_ARGS__); break;       \
    }
#ifdef MB_X86
static MB_TARGET_AVX512 void fwd_aux16_run(mb_activation a, const float *z, const float *b, float *h,
                                           float *aux, size_t n, int out) {
    AUX_SWITCH(fwd_aux_rows16, z, b, h, aux, n, out)
}
static MB_TARGET_AVX2 void fwd_aux8_run(mb_activation a, const float *z, const float *b, float *h,
                                        float *aux, size_t n, int out) {
    AUX_SWITCH(fwd_aux_rows8, z, b, h, aux, n, out)
}
static MB_TARGET_AVX512 void bwd_aux16_run(mb_activation a, const float *h, const float *aux,
                                           const float *dh, float *dz, float *db, size_t n, int out) {
    AUX_SWITCH(bwd_aux_rows16, h, aux, dh, dz, db, n, out)
}
static MB_TARGET_AVX2 void bwd_aux8_run(mb_activation a, const float *h, const float *aux,
                                        const float *dh, float *dz, float *db, size_t n, int out) {
    AUX_SWITCH(bwd_aux_rows8, h, aux, dh, dz, db, n, out)
}
#endif
static void fwd_aux1_run(mb_activation a, const float *z, const float *b, float *h, float *aux,
                         size_t n, int out) {
    AUX_SWITCH(fwd_aux_rows1, z, b, h, aux, n, out)
}
static void bwd_aux1_run(mb_activation a, const float *h, const float *aux, const float *dh,
                         float *dz, float *db, size_t n, int out) {
    AUX_SWITCH(bwd_aux_rows1, h, aux, dh, dz, db, n, out)
}

void mb_bias_act_forward_aux(mb_activation a, const float *z, const float *b, float *h, float *aux,
                             size_t n, int out) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: fwd_aux16_run(a, z, b, h, aux, n, out); return;
    case MB_ISA_AVX2: fwd_aux8_run(a, z, b, h, aux, n, out); return;
#endif
    default: fwd_aux1_run(a, z, b, h, aux, n, out); return;
    }
}

void mb_act_backward_aux(mb_activation a, const float *h, const float *aux, const float *dh,
                         float *dz, float *db, size_t n, int out) {
    switch (mb_cpu_isa()) {
#ifdef MB_X86
    case MB_ISA_AVX512: bwd_aux16_run(a, h, aux, dh, dz, db, n, out); return;
    case MB_ISA_AVX2: bwd_aux8_run(a, h, aux, dh, dz, db, n, out); return;
#endif
    default: bwd_aux1_run(a, h, aux, dh, dz, db, n, out); return;
    }
}

/* y += a x over n floats; returns sum x^2 (in double across 8-lane float
 * partial sums: the weight-decay term over one matrix). 8 lanes at both
 * vector levels: the sum's grouping, hence its bits, stays the same. */
#ifdef MB_X86
static MB_TARGET_AVX2 size_t axpy_sumsq8(float a, const float *x, float *y, size_t n, double *out) {
    size_t i = 0;
    double total = 0;
    const __m256 va = _mm256_set1_ps(a);
    __m256 acc = _mm256_setzero_ps();
    for (; i + 8 <= n; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
        acc = _mm256_fmadd_ps(xv, xv, acc);
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, xv, _mm256_loadu_ps(y + i)));
    }
    float part[8];
    _mm256_storeu_ps(part, acc);
    for (int k = 0; k < 8; k++) total += part[k];
    *out = total;
    return i;
}
#endif

double mb_axpy_sumsq(float a, const float *x, float *y, size_t n) {
    size_t i = 0;
    double total = 0;
#ifdef MB_X86
    if (mb_cpu_isa() >= MB_ISA_AVX2) i = axpy_sumsq8(a, x, y, n, &total);
#endif
    for (; i < n; i++) {
        total += (double)x[i] * x[i];
        y[i] += a * x[i];
    }
    return total;
}
