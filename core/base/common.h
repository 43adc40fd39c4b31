/* common.h: status codes and small helpers shared by every core/ module.
 *
 * Not for: anything HTTP or JSON (server/ maps these statuses to HTTP codes in
 * exactly one place, server/errors.c).
 *
 * Convention: a function that can fail returns an mb_status and, when `err`
 * is non-NULL, writes a one-line, NUL-terminated reason of at most `err_sz`
 * bytes. core/ never exits or aborts on input; assert() is for invariants that
 * only a bug can break. */
#ifndef MB_COMMON_H
#define MB_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    MB_OK = 0,
    MB_EINVAL,    /* bad argument or configuration (HTTP 400/422) */
    MB_ERANGE,    /* a size or value outside the allowed limits (HTTP 422) */
    MB_ENOMEM,    /* allocation failed (HTTP 503) */
    MB_ENOTFOUND, /* no such thing (HTTP 404) */
    MB_EEXIST,    /* already exists (HTTP 409) */
    MB_EBUSY,     /* conflicting operation in progress (HTTP 409) */
    MB_ECANCELED, /* stopped on request */
    MB_EIO,       /* read, write or fsync failed (HTTP 503) */
    MB_ECORRUPT,  /* data on disk or in a file fails its checks (HTTP 422 for uploads) */
    MB_ESTATE     /* operation not valid in the current state (HTTP 409) */
} mb_status;

/* Human name of a status, e.g. "invalid_argument". Never NULL. */
const char *mb_status_name(mb_status s);

/* printf into err (if err != NULL && err_sz > 0) and return `s`. */
mb_status mb_fail(char *err, size_t err_sz, mb_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* Hard limits that keep any request from allocating without bound. The
 * server checks user input against these before calling core/. */
#define MB_MAX_OBS_DIM 256
#define MB_MAX_ACT_DIM 64
#define MB_MAX_MEMBERS 16
#define MB_MAX_LAYERS 8      /* hidden layers */
#define MB_MAX_HIDDEN 2048   /* units per hidden layer */

#endif
