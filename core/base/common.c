/* common.c: status names and the mb_fail message helper. */
#include "base/common.h"

#include <stdarg.h>
#include <stdio.h>

const char *mb_status_name(mb_status s) {
    switch (s) {
    case MB_OK: return "ok";
    case MB_EINVAL: return "invalid_argument";
    case MB_ERANGE: return "out_of_range";
    case MB_ENOMEM: return "out_of_memory";
    case MB_ENOTFOUND: return "not_found";
    case MB_EEXIST: return "already_exists";
    case MB_EBUSY: return "busy";
    case MB_ECANCELED: return "canceled";
    case MB_EIO: return "io_error";
    case MB_ECORRUPT: return "corrupt";
    case MB_ESTATE: return "failed_precondition";
    }
    return "unknown";
}

mb_status mb_fail(char *err, size_t err_sz, mb_status s, const char *fmt, ...) {
    if (err && err_sz > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_sz, fmt, ap);
        va_end(ap);
    }
    return s;
}
