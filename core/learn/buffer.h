/* buffer.h: the replay buffer, a fixed-capacity ring of transitions.
 *
 * Row i holds (obs, action, reward, next_obs, terminated, truncated). Every
 * appended row gets a global index (0, 1, 2, ... over the buffer's life);
 * whether a row belongs to the holdout set is a pure function of its global
 * index and the buffer's holdout seed, so the split stays fixed while the
 * buffer grows and wraps.
 *
 * Concurrency: none inside. The server serialises appends with its own lock
 * and hands training and snapshots a consistent copy taken under it, in
 * slices (mb_buffer_init_like, mb_buffer_copy_slots) so the lock is free
 * between them (server/model.c, model_buffer_copy).
 * Not for: persistence (log.c) or normalisation (trainer.c). */
#ifndef MB_BUFFER_H
#define MB_BUFFER_H

#include <stddef.h>
#include <stdint.h>

#include "base/common.h"
#include "base/rng.h"

#define MB_MAX_BUFFER_CAPACITY 10000000

typedef struct {
    int obs_dim, act_dim;
    size_t capacity;
    size_t size;         /* rows held, <= capacity */
    size_t head;         /* slot the next row goes to */
    uint64_t total;      /* rows ever appended */
    float holdout_ratio; /* fraction of global indices in the holdout set */
    uint64_t holdout_seed;
    float *obs;          /* (capacity, obs_dim), owned */
    float *act;          /* (capacity, act_dim), owned */
    float *rew;          /* (capacity), owned */
    float *next_obs;     /* (capacity, obs_dim), owned */
    uint8_t *terminated; /* (capacity), owned */
    uint8_t *truncated;  /* (capacity), owned */
} mb_buffer;

/* Allocates the ring. holdout_ratio in [0, 0.9]. */
mb_status mb_buffer_init(mb_buffer *b, int obs_dim, int act_dim, size_t capacity,
                         float holdout_ratio, uint64_t holdout_seed, char *err, size_t err_sz);
void mb_buffer_free(mb_buffer *b);
/* Deep copy (dst uninitialised or freed). */
mb_status mb_buffer_copy(mb_buffer *dst, const mb_buffer *src, char *err, size_t err_sz);
/* An empty ring of src's shape (dims, capacity, holdout; dst uninitialised
 * or freed); its slots are zero. */
mb_status mb_buffer_init_like(mb_buffer *dst, const mb_buffer *src, char *err, size_t err_sz);
/* Copies slots [slot, slot + count) (no wrap; slot + count <= capacity) of
 * src into dst, of the same shape. size, head and total are the caller's. */
void mb_buffer_copy_slots(mb_buffer *dst, const mb_buffer *src, size_t slot, size_t count);
/* Appends n rows (oldest overwritten once full).
 *   obs, next_obs: (n, obs_dim); act: (n, act_dim); rew: (n);
 *   terminated, truncated: (n), may be NULL (all 0). */
void mb_buffer_append(mb_buffer *b, size_t n, const float *obs, const float *act,
                      const float *rew, const float *next_obs,
                      const uint8_t *terminated, const uint8_t *truncated);
/* Slot of the i-th oldest row, i < size. */
size_t mb_buffer_slot(const mb_buffer *b, size_t i);
/* Global index of the row in slot `slot`. */
uint64_t mb_buffer_global_index(const mb_buffer *b, size_t slot);
/* 1 if the row with global index g is in the holdout set. */
int mb_buffer_is_holdout(const mb_buffer *b, uint64_t g);
/* Fills train (size) and holdout (size) with slot numbers of the held rows,
 * oldest first; returns the counts. Arrays sized b->size by the caller. */
void mb_buffer_split(const mb_buffer *b, size_t *train, size_t *n_train,
                     size_t *holdout, size_t *n_holdout);
/* out[i] = src[uniform index in [0, n)] for i < m (with replacement). */
void mb_buffer_bootstrap(const size_t *src, size_t n, size_t *out, size_t m, mb_rng *rng);
/* out[i] = slot of a uniformly drawn held row, i < m (with replacement). */
void mb_buffer_sample(const mb_buffer *b, size_t *out, size_t m, mb_rng *rng);

#endif
