/* alloc_count.h: counts malloc/calloc/realloc calls in a test binary, to
 * prove a hot path allocates nothing. Include it in exactly one file of a
 * test program; it interposes the three functions (forwarding to glibc's
 * __libc_* entry points) and exposes n_allocs. Sanitizer builds keep their
 * own allocator: there ALLOC_COUNTING is 0 and nothing is interposed.
 * n_alloc_bytes sums the bytes asked for (budget figures are checked
 * against it). */
#ifndef MB_ALLOC_COUNT_H
#define MB_ALLOC_COUNT_H

#include <stdatomic.h>
#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ALLOC_COUNTING 0
#else
#define ALLOC_COUNTING 1
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
static atomic_long n_allocs;
static atomic_long n_alloc_bytes; /* bytes asked for (realloc: the new size) */
void *malloc(size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&n_alloc_bytes, (long)n);
    return __libc_malloc(n);
}
void *calloc(size_t a, size_t b) {
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&n_alloc_bytes, (long)(a * b));
    return __libc_calloc(a, b);
}
void *realloc(void *p, size_t n) {
    atomic_fetch_add(&n_allocs, 1);
    atomic_fetch_add(&n_alloc_bytes, (long)n);
    return __libc_realloc(p, n);
}
#endif

#endif
