/* alloc.h: allocation failures that would otherwise go unseen. cJSON's
 * Create and Add functions return NULL when malloc fails and the caller's
 * tree silently lacks the item: an answer built that way would be a
 * partial (or empty) 200, a META blob a snapshot without its spec. cJSON's
 * allocations go through a hook that counts failures per thread; code that
 * builds a tree compares the count before and after (routes_call answers
 * 503 out_of_memory, snapshots and model creation fail with MB_ENOMEM).
 * Not for: allocations outside cJSON (each is checked where it is made). */
#ifndef SRV_ALLOC_H
#define SRV_ALLOC_H

#include <stddef.h>

/* Installs the counting hooks (cJSON_InitHooks); app_init calls it. */
void srv_alloc_init(void);
/* Failed cJSON allocations on this thread so far. */
unsigned long srv_alloc_failures(void);
/* Tests only: the allocator behind the hooks (NULL: malloc again). */
void srv_alloc_set_malloc(void *(*fn)(size_t));

#endif
