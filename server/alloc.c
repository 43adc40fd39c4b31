/* alloc.c: counted cJSON allocation failures (see alloc.h). */
#include "alloc.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdlib.h>

static _Thread_local unsigned long alloc__fails;
static _Atomic(void *(*)(size_t)) alloc__malloc = malloc;

static void *alloc__hook(size_t n) {
    void *p = atomic_load(&alloc__malloc)(n);
    if (!p) alloc__fails++;
    return p;
}

void srv_alloc_init(void) {
    cJSON_Hooks h = {alloc__hook, free};
    cJSON_InitHooks(&h);
}

unsigned long srv_alloc_failures(void) { return alloc__fails; }

void srv_alloc_set_malloc(void *(*fn)(size_t)) { atomic_store(&alloc__malloc, fn ? fn : malloc); }
