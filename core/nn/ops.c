/* ops.c: dense helpers over cblas_sgemm (row-major), activations and their
 * derivatives, built on the one exp of nn/vmath.h.
 *
 * The elementwise loops use AVX2+FMA intrinsics when the build targets them
 * (-march=native or x86-64-v3), 8 floats at a time, and a scalar version of
 * the same formulas otherwise; a tail shorter than 8 goes through a padded
 * 8-float buffer so every element sees the same code (results do not depend
 * on an element's position in the array).
 * Not for: threads, allocation, or anything that knows about ensembles. */
#include "nn/ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nn/vmath.h"

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define MB_OPS_AVX2 1
#endif

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

#ifdef MB_OPS_AVX2
#if defined(__AVX512F__)
/* 16 lanes (vmath.h: each lane equals the 8-lane result bit for bit); used
 * by the softplus and exp loops, which dominate the ensemble head. */
static inline __attribute__((always_inline)) __m512 softplus16(__m512 x) {
    __m512 ax = _mm512_abs_ps(x);
    __m512 t = mb_vm_exp16(_mm512_sub_ps(_mm512_setzero_ps(), ax));
    return _mm512_add_ps(_mm512_max_ps(x, _mm512_setzero_ps()), mb_vm_log16(_mm512_add_ps(_mm512_set1_ps(1.0f), t)));
}
#endif
#endif

/* Elementwise kernels, each over 8 lanes (or one scalar). `mode`: */
enum { K_EXP, K_SILU, K_RELU, K_TANH, K_DSILU, K_DRELU, K_DTANH, K_SOFTPLUS, K_SIGMOID };

#ifdef MB_OPS_AVX2
/* x: pre-activation (or exp argument); g: upstream gradient (derivative
 * kernels only). */
#define MB_INLINE static inline __attribute__((always_inline))
MB_INLINE __m256 kern8(int mode, __m256 x, __m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (mode) {
    case K_EXP: return mb_vm_exp8(x);
    case K_SOFTPLUS: { /* max(x, 0) + log(1 + e^-|x|) */
        __m256 ax = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
        __m256 t = mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), ax));
        return _mm256_add_ps(_mm256_max_ps(x, _mm256_setzero_ps()), mb_vm_log8(_mm256_add_ps(one, t)));
    }
    case K_SIGMOID:
        return _mm256_div_ps(one, _mm256_add_ps(one, mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    case K_SILU: return _mm256_div_ps(x, _mm256_add_ps(one, mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
    case K_RELU: return _mm256_max_ps(x, _mm256_setzero_ps());
    case K_TANH: {
        __m256 e = mb_vm_exp8(_mm256_add_ps(x, x));
        return _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
    }
    case K_DSILU: {
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        /* s * (1 + x (1 - s)) */
        __m256 d = _mm256_mul_ps(s, _mm256_fmadd_ps(x, _mm256_sub_ps(one, s), one));
        return _mm256_mul_ps(g, d);
    }
    case K_DRELU:
        return _mm256_and_ps(g, _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ));
    case K_DTANH: {
        __m256 e = mb_vm_exp8(_mm256_add_ps(x, x));
        __m256 t = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
        return _mm256_mul_ps(g, _mm256_fnmadd_ps(t, t, one));
    }
    }
    return x;
}
#else
#define MB_INLINE static inline __attribute__((always_inline))
MB_INLINE float kern1(int mode, float x, float g) {
    switch (mode) {
    case K_EXP: return mb_vm_exp1(x);
    case K_SOFTPLUS: return fmaxf(x, 0.0f) + log1pf(mb_vm_exp1(-fabsf(x)));
    case K_SIGMOID: return 1.0f / (1.0f + mb_vm_exp1(-x));
    case K_SILU: return x / (1.0f + mb_vm_exp1(-x));
    case K_RELU: return x > 0 ? x : 0.0f;
    case K_TANH: return 1.0f - 2.0f / (mb_vm_exp1(2 * x) + 1.0f);
    case K_DSILU: {
        float s = 1.0f / (1.0f + mb_vm_exp1(-x));
        return g * s * (1.0f + x * (1.0f - s));
    }
    case K_DRELU: return x > 0 ? g : 0.0f;
    case K_DTANH: {
        float t = 1.0f - 2.0f / (mb_vm_exp1(2 * x) + 1.0f);
        return g * (1.0f - t * t);
    }
    }
    return x;
}
#endif

/* y[i] = kern(x[i] (+ b[i % period] when b), g[i]); g may be NULL for the
 * forward kernels. When b is given, x is updated in place to x + b first
 * (the stored pre-activation). count is a multiple of period when b != NULL. */
MB_INLINE void kern_loop(int mode, float *x_rw, const float *x, const float *b, size_t period,
                         const float *g, float *y, size_t count) {
    size_t i = 0;
#ifdef MB_OPS_AVX2
    const __m256 zero = _mm256_setzero_ps();
    if (b) {
        for (size_t r = 0; r < count; r += period) {
            size_t j = 0;
            for (; j + 8 <= period; j += 8) {
                __m256 v = _mm256_add_ps(_mm256_loadu_ps(x + r + j), _mm256_loadu_ps(b + j));
                if (x_rw) _mm256_storeu_ps(x_rw + r + j, v);
                _mm256_storeu_ps(y + r + j, kern8(mode, v, g ? _mm256_loadu_ps(g + r + j) : zero));
            }
            if (j < period) {
                float xb[8] = {0}, gb[8] = {0}, yb[8];
                size_t m = period - j;
                for (size_t t = 0; t < m; t++) {
                    xb[t] = x[r + j + t] + b[j + t];
                    if (x_rw) x_rw[r + j + t] = xb[t];
                    if (g) gb[t] = g[r + j + t];
                }
                _mm256_storeu_ps(yb, kern8(mode, _mm256_loadu_ps(xb), _mm256_loadu_ps(gb)));
                memcpy(y + r + j, yb, m * sizeof(float));
            }
        }
        return;
    }
#if defined(__AVX512F__)
    if (mode == K_SOFTPLUS && !g)
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(y + i, softplus16(_mm512_loadu_ps(x + i)));
    if (mode == K_EXP && !g)
        for (; i + 16 <= count; i += 16) _mm512_storeu_ps(y + i, mb_vm_exp16(_mm512_loadu_ps(x + i)));
#endif
    for (; i + 8 <= count; i += 8)
        _mm256_storeu_ps(y + i, kern8(mode, _mm256_loadu_ps(x + i), g ? _mm256_loadu_ps(g + i) : zero));
    if (i < count) {
        float xb[8] = {0}, gb[8] = {0}, yb[8];
        size_t m = count - i;
        memcpy(xb, x + i, m * sizeof(float));
        if (g) memcpy(gb, g + i, m * sizeof(float));
        _mm256_storeu_ps(yb, kern8(mode, _mm256_loadu_ps(xb), _mm256_loadu_ps(gb)));
        memcpy(y + i, yb, m * sizeof(float));
    }
#else
    if (b) {
        for (size_t r = 0; r < count; r += period)
            for (size_t j = 0; j < period; j++) {
                float v = x[r + j] + b[j];
                if (x_rw) x_rw[r + j] = v;
                y[r + j] = kern1(mode, v, g ? g[r + j] : 0.0f);
            }
        return;
    }
    for (; i < count; i++) y[i] = kern1(mode, x[i], g ? g[i] : 0.0f);
#endif
}

/* One specialised copy of the loop per kernel: the switch on `mode` runs
 * once per call, not once per 8 elements. */
static void kern_run(int mode, float *x_rw, const float *x, const float *b, size_t period,
                     const float *g, float *y, size_t count) {
#define KERN_CASE(k) \
    case k: kern_loop(k, x_rw, x, b, period, g, y, count); break;
    switch (mode) {
        KERN_CASE(K_EXP)
        KERN_CASE(K_SILU)
        KERN_CASE(K_RELU)
        KERN_CASE(K_TANH)
        KERN_CASE(K_DSILU)
        KERN_CASE(K_DRELU)
        KERN_CASE(K_DTANH)
        KERN_CASE(K_SOFTPLUS)
        KERN_CASE(K_SIGMOID)
    }
#undef KERN_CASE
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

#ifdef MB_OPS_AVX2
MB_INLINE void fwd_aux8(mb_activation a, __m256 v, __m256 *h, __m256 *s) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (a) {
    case MB_ACT_SILU:
        *s = _mm256_div_ps(one, _mm256_add_ps(one, mb_vm_exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
        *h = _mm256_mul_ps(v, *s);
        return;
    case MB_ACT_RELU:
        *h = _mm256_max_ps(v, _mm256_setzero_ps());
        return;
    case MB_ACT_TANH: {
        __m256 e = mb_vm_exp8(_mm256_add_ps(v, v));
        *h = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
        return;
    }
    }
}

MB_INLINE __m256 bwd_aux8(mb_activation a, __m256 h, __m256 s, __m256 g) {
    const __m256 one = _mm256_set1_ps(1.0f);
    switch (a) {
    case MB_ACT_SILU: return _mm256_mul_ps(g, _mm256_fmadd_ps(h, _mm256_sub_ps(one, s), s));
    case MB_ACT_RELU: return _mm256_and_ps(g, _mm256_cmp_ps(h, _mm256_setzero_ps(), _CMP_GT_OQ));
    case MB_ACT_TANH: return _mm256_mul_ps(g, _mm256_fnmadd_ps(h, h, one));
    }
    return g;
}

MB_INLINE void fwd_aux_rows(mb_activation a, const float *z, const float *b, float *h, float *aux,
                            size_t n, int out) {
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

MB_INLINE void bwd_aux_rows(mb_activation a, const float *h, const float *aux, const float *dh,
                            float *dz, float *db, size_t n, int out) {
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
#else
MB_INLINE void fwd_aux_rows(mb_activation a, const float *z, const float *b, float *h, float *aux,
                            size_t n, int out) {
    for (size_t r = 0; r < n; r++)
        for (int j = 0; j < out; j++) {
            size_t i = r * (size_t)out + j;
            float v = z[i] + (b ? b[j] : 0.0f);
            if (a == MB_ACT_SILU) {
                float s = 1.0f / (1.0f + mb_vm_exp1(-v));
                h[i] = v * s;
                if (aux) aux[i] = s;
            } else if (a == MB_ACT_RELU) {
                h[i] = v > 0 ? v : 0.0f;
            } else {
                h[i] = 1.0f - 2.0f / (mb_vm_exp1(2 * v) + 1.0f);
            }
        }
}

MB_INLINE void bwd_aux_rows(mb_activation a, const float *h, const float *aux, const float *dh,
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
#endif

void mb_bias_act_forward_aux(mb_activation a, const float *z, const float *b, float *h, float *aux,
                             size_t n, int out) {
    switch (a) { /* one specialised loop per activation */
    case MB_ACT_SILU: fwd_aux_rows(MB_ACT_SILU, z, b, h, aux, n, out); break;
    case MB_ACT_RELU: fwd_aux_rows(MB_ACT_RELU, z, b, h, aux, n, out); break;
    case MB_ACT_TANH: fwd_aux_rows(MB_ACT_TANH, z, b, h, aux, n, out); break;
    }
}

void mb_act_backward_aux(mb_activation a, const float *h, const float *aux, const float *dh,
                         float *dz, float *db, size_t n, int out) {
    switch (a) {
    case MB_ACT_SILU: bwd_aux_rows(MB_ACT_SILU, h, aux, dh, dz, db, n, out); break;
    case MB_ACT_RELU: bwd_aux_rows(MB_ACT_RELU, h, aux, dh, dz, db, n, out); break;
    case MB_ACT_TANH: bwd_aux_rows(MB_ACT_TANH, h, aux, dh, dz, db, n, out); break;
    }
}

/* y += a x over n floats; returns sum x^2 (in double across 8-lane float
 * partial sums: the weight-decay term over one matrix). */
double mb_axpy_sumsq(float a, const float *x, float *y, size_t n) {
    size_t i = 0;
    double total = 0;
#ifdef MB_OPS_AVX2
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
#endif
    for (; i < n; i++) {
        total += (double)x[i] * x[i];
        y[i] += a * x[i];
    }
    return total;
}
