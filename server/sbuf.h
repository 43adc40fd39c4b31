/* sbuf.h: a growable text buffer for responses built piece by piece
 * (Prometheus metrics, logs).
 * Not for: JSON (cJSON renders JSON) or anything on the planning hot path. */
#ifndef SRV_SBUF_H
#define SRV_SBUF_H

#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated, owned; NULL until the first append */
    size_t len, cap;
    int failed; /* an allocation failed: the content is truncated */
} sbuf;

/* printf-append; on allocation failure sets `failed` and keeps what it has. */
void sbuf_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Returns the malloc'd text (caller frees) and resets b. Never NULL unless
 * allocation failed. */
char *sbuf_take(sbuf *b, size_t *len);
void sbuf_free(sbuf *b);

#endif
