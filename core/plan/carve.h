/* carve.h: one allocation carved into a workspace's arrays, its layout
 * written once and run twice: with no block to size it (what the
 * workspace will cost, before anything is allocated: mb_plan_cost_of),
 * then over the allocated block to point the arrays into it. The figure
 * and the allocation come from the same code, so they agree to the byte.
 *
 *   plan_carver c = {block, 0};            block NULL: sizing only
 *   PLAN_CARVE(&c, w, state, n * obs_dim); w NULL: sizing only
 *   ...
 *   c.off                                  the block's bytes
 *
 * Every array starts on a PLAN_CARVE_ALIGN boundary of the block (the
 * padding is counted). Private to core/plan.
 * Not for: the sampling planners' block (planner.c's plan__carve). */
#ifndef MB_PLAN_CARVE_H
#define MB_PLAN_CARVE_H

#include <stddef.h>

#define PLAN_CARVE_ALIGN 64

typedef struct {
    char *base; /* the block, or NULL: sizing only */
    size_t off; /* bytes laid out so far */
} plan_carver;

/* The next `bytes` of the block (NULL when sizing). */
static inline void *plan_carve_take(plan_carver *c, size_t bytes) {
    size_t at = (c->off + (PLAN_CARVE_ALIGN - 1)) & ~(size_t)(PLAN_CARVE_ALIGN - 1);
    c->off = at + bytes;
    return c->base ? c->base + at : NULL;
}

/* w->field = n elements of the block; w may be NULL (sizing). */
#define PLAN_CARVE(c, w, field, n)                                                  \
    do {                                                                            \
        void *carved_ = plan_carve_take((c), (size_t)(n) * sizeof *(w)->field);     \
        if (w) (w)->field = carved_;                                                \
    } while (0)

#endif
