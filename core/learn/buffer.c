/* buffer.c: the replay buffer (see buffer.h): a fixed-capacity ring of
 * transitions with global row indices, a hash-based holdout split, uniform
 * sampling and bootstrap resampling of slot lists.
 *
 * Invariant: the row with global index g lives in slot g % capacity while it
 * is held (head == total % capacity), so the newest row is in slot head - 1
 * and global indices follow from head and total alone.
 * Not for: persistence (log.c), normalisation or training (trainer.c), locking
 * (the server serialises access). */
#include "learn/buffer.h"

#include <stdlib.h>
#include <string.h>

/* splitmix64 finaliser: a bijective 64-bit mix, so neighbouring global
 * indices get unrelated holdout decisions. */
static uint64_t buffer__mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void buffer__zero(mb_buffer *b) { memset(b, 0, sizeof *b); }

/* Allocates the six arrays (zero-filled) for b's dims and capacity. */
static mb_status buffer__alloc(mb_buffer *b, char *err, size_t err_sz) {
    size_t cap = b->capacity;
    b->obs = calloc(cap * (size_t)b->obs_dim, sizeof(float));
    b->act = calloc(cap * (size_t)b->act_dim, sizeof(float));
    b->rew = calloc(cap, sizeof(float));
    b->next_obs = calloc(cap * (size_t)b->obs_dim, sizeof(float));
    b->terminated = calloc(cap, 1);
    b->truncated = calloc(cap, 1);
    if (!b->obs || !b->act || !b->rew || !b->next_obs || !b->terminated || !b->truncated) {
        mb_buffer_free(b);
        return mb_fail(err, err_sz, MB_ENOMEM, "replay buffer: cannot allocate %zu rows", cap);
    }
    return MB_OK;
}

mb_status mb_buffer_init(mb_buffer *b, int obs_dim, int act_dim, size_t capacity,
                         float holdout_ratio, uint64_t holdout_seed, char *err, size_t err_sz) {
    buffer__zero(b);
    if (obs_dim < 1 || obs_dim > MB_MAX_OBS_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "obs_dim %d outside [1, %d]", obs_dim, MB_MAX_OBS_DIM);
    if (act_dim < 1 || act_dim > MB_MAX_ACT_DIM)
        return mb_fail(err, err_sz, MB_ERANGE, "act_dim %d outside [1, %d]", act_dim, MB_MAX_ACT_DIM);
    if (capacity < 1 || capacity > MB_MAX_BUFFER_CAPACITY)
        return mb_fail(err, err_sz, MB_ERANGE, "buffer capacity %zu outside [1, %d]", capacity,
                       MB_MAX_BUFFER_CAPACITY);
    /* !(x >= 0) also rejects NaN */
    if (!(holdout_ratio >= 0.0f && holdout_ratio <= 0.9f))
        return mb_fail(err, err_sz, MB_ERANGE, "holdout ratio %g outside [0, 0.9]",
                       (double)holdout_ratio);
    b->obs_dim = obs_dim;
    b->act_dim = act_dim;
    b->capacity = capacity;
    b->holdout_ratio = holdout_ratio;
    b->holdout_seed = holdout_seed;
    return buffer__alloc(b, err, err_sz);
}

void mb_buffer_free(mb_buffer *b) {
    if (!b) return;
    free(b->obs);
    free(b->act);
    free(b->rew);
    free(b->next_obs);
    free(b->terminated);
    free(b->truncated);
    b->obs = b->act = b->rew = b->next_obs = NULL;
    b->terminated = b->truncated = NULL;
    b->size = b->head = 0;
    b->total = 0;
}

void mb_buffer_copy_slots(mb_buffer *dst, const mb_buffer *src, size_t slot, size_t count) {
    size_t od = (size_t)src->obs_dim, ad = (size_t)src->act_dim;
    memcpy(dst->obs + slot * od, src->obs + slot * od, count * od * sizeof(float));
    memcpy(dst->act + slot * ad, src->act + slot * ad, count * ad * sizeof(float));
    memcpy(dst->rew + slot, src->rew + slot, count * sizeof(float));
    memcpy(dst->next_obs + slot * od, src->next_obs + slot * od, count * od * sizeof(float));
    memcpy(dst->terminated + slot, src->terminated + slot, count);
    memcpy(dst->truncated + slot, src->truncated + slot, count);
}

mb_status mb_buffer_init_like(mb_buffer *dst, const mb_buffer *src, char *err, size_t err_sz) {
    buffer__zero(dst);
    if (!src || src->capacity < 1) return mb_fail(err, err_sz, MB_EINVAL, "buffer copy: source not initialised");
    dst->obs_dim = src->obs_dim;
    dst->act_dim = src->act_dim;
    dst->capacity = src->capacity;
    dst->holdout_ratio = src->holdout_ratio;
    dst->holdout_seed = src->holdout_seed;
    return buffer__alloc(dst, err, err_sz);
}

mb_status mb_buffer_copy(mb_buffer *dst, const mb_buffer *src, char *err, size_t err_sz) {
    buffer__zero(dst);
    if (!src || !src->obs || src->capacity < 1)
        return mb_fail(err, err_sz, MB_EINVAL, "buffer copy: source not initialised");
    dst->obs_dim = src->obs_dim;
    dst->act_dim = src->act_dim;
    dst->capacity = src->capacity;
    dst->holdout_ratio = src->holdout_ratio;
    dst->holdout_seed = src->holdout_seed;
    mb_status st = buffer__alloc(dst, err, err_sz);
    if (st != MB_OK) return st;
    dst->size = src->size;
    dst->head = src->head;
    dst->total = src->total;
    /* Only the held rows are copied (the rest stays zero): a large, mostly
     * empty ring copies in time proportional to its contents. */
    if (src->size > 0) {
        size_t first = mb_buffer_slot(src, 0);
        size_t run = src->capacity - first < src->size ? src->capacity - first : src->size;
        mb_buffer_copy_slots(dst, src, first, run);
        if (run < src->size) mb_buffer_copy_slots(dst, src, 0, src->size - run);
    }
    return MB_OK;
}

void mb_buffer_append(mb_buffer *b, size_t n, const float *obs, const float *act,
                      const float *rew, const float *next_obs,
                      const uint8_t *terminated, const uint8_t *truncated) {
    size_t od = (size_t)b->obs_dim, ad = (size_t)b->act_dim, cap = b->capacity;
    size_t skip = 0;
    /* Rows that would be overwritten within this very call are skipped, but
     * still count towards `total` (their global indices are consumed). */
    if (n > cap) {
        skip = n - cap;
        b->head = (b->head + skip) % cap;
        b->total += skip;
    }
    size_t i = skip;
    while (i < n) {
        size_t run = cap - b->head;
        if (run > n - i) run = n - i;
        size_t s = b->head;
        memcpy(b->obs + s * od, obs + i * od, run * od * sizeof(float));
        memcpy(b->act + s * ad, act + i * ad, run * ad * sizeof(float));
        memcpy(b->rew + s, rew + i, run * sizeof(float));
        memcpy(b->next_obs + s * od, next_obs + i * od, run * od * sizeof(float));
        if (terminated) memcpy(b->terminated + s, terminated + i, run);
        else memset(b->terminated + s, 0, run);
        if (truncated) memcpy(b->truncated + s, truncated + i, run);
        else memset(b->truncated + s, 0, run);
        b->head = (b->head + run) % cap;
        b->total += run;
        i += run;
    }
    size_t added = n - skip;
    b->size = b->size + added > cap ? cap : b->size + added;
}

size_t mb_buffer_slot(const mb_buffer *b, size_t i) {
    /* oldest slot = head - size (mod capacity) */
    size_t cap = b->capacity;
    return (b->head + cap - b->size + i) % cap;
}

uint64_t mb_buffer_global_index(const mb_buffer *b, size_t slot) {
    size_t cap = b->capacity;
    size_t age = (b->head + cap - 1 - slot) % cap; /* 0 = newest row */
    return b->total - 1 - (uint64_t)age;
}

int mb_buffer_is_holdout(const mb_buffer *b, uint64_t g) {
    if (b->holdout_ratio <= 0.0f) return 0;
    uint64_t h = buffer__mix(g ^ buffer__mix(b->holdout_seed));
    double u = (double)(h >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
    return u < (double)b->holdout_ratio;
}

void mb_buffer_split(const mb_buffer *b, size_t *train, size_t *n_train,
                     size_t *holdout, size_t *n_holdout) {
    size_t nt = 0, nh = 0;
    uint64_t g = b->total - b->size; /* global index of the oldest row */
    for (size_t i = 0; i < b->size; i++, g++) {
        size_t slot = mb_buffer_slot(b, i);
        if (mb_buffer_is_holdout(b, g)) holdout[nh++] = slot;
        else train[nt++] = slot;
    }
    *n_train = nt;
    *n_holdout = nh;
}

void mb_buffer_bootstrap(const size_t *src, size_t n, size_t *out, size_t m, mb_rng *rng) {
    if (n == 0) return;
    for (size_t i = 0; i < m; i++) out[i] = src[mb_rng_below(rng, n)];
}

void mb_buffer_sample(const mb_buffer *b, size_t *out, size_t m, mb_rng *rng) {
    if (b->size == 0) return;
    for (size_t i = 0; i < m; i++) out[i] = mb_buffer_slot(b, (size_t)mb_rng_below(rng, b->size));
}
