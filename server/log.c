/* log.c: structured stderr logging (see log.h). */
#include "log.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static atomic_int log__level = SRV_LOG_INFO;
static const char *const log__names[] = {"debug", "info", "warn", "error"};

void srv_log_set_level(srv_log_level level) { atomic_store(&log__level, (int)level); }

int srv_log_level_parse(const char *name, srv_log_level *out) {
    for (int i = 0; i < 4; i++)
        if (!strcmp(name, log__names[i])) {
            *out = (srv_log_level)i;
            return 0;
        }
    return -1;
}

/* Appends c to out (cap) at *n, keeping room for a NUL. */
static void log__put(char *out, size_t cap, size_t *n, char c) {
    if (*n + 1 < cap) out[(*n)++] = c;
}

static int log__bare_ok(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("._-:/@+,[]()", c));
}

/* v escaped into out; quoted: the format put quotes around it already. */
static void log__value(char *out, size_t cap, size_t *n, const char *v, size_t max, int quoted) {
    if (!v) v = "(null)";
    size_t len = strnlen(v, max);
    int bare = quoted ? 0 : len > 0;
    for (size_t i = 0; bare && i < len; i++)
        if (!log__bare_ok((unsigned char)v[i])) bare = 0;
    if (bare) {
        for (size_t i = 0; i < len; i++) log__put(out, cap, n, v[i]);
        return;
    }
    if (!quoted) log__put(out, cap, n, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c == '"' || c == '\\') {
            log__put(out, cap, n, '\\');
            log__put(out, cap, n, (char)c);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            log__put(out, cap, n, '\\');
            log__put(out, cap, n, c == '\n' ? 'n' : c == '\r' ? 'r' : 't');
        } else if (c < 0x20 || c == 0x7f) {
            char hex[8];
            snprintf(hex, sizeof hex, "\\x%02x", c);
            for (char *h = hex; *h; h++) log__put(out, cap, n, *h);
        } else {
            log__put(out, cap, n, (char)c);
        }
    }
    if (!quoted) log__put(out, cap, n, '"');
}

/* printf over kv_fmt, one conversion at a time, %s values escaped. */
static void log__vformat(char *out, size_t cap, const char *fmt, va_list ap) {
    size_t n = 0;
    for (const char *p = fmt; *p;) {
        if (*p != '%') {
            log__put(out, cap, &n, *p++);
            continue;
        }
        if (p[1] == '%') {
            log__put(out, cap, &n, '%');
            p += 2;
            continue;
        }
        const char *start = p++;
        while (*p && strchr("-+ #0", *p)) p++;
        int star_w = 0, star_p = 0, w = 0, prec = -1;
        if (*p == '*') star_w = 1, p++;
        else while (*p >= '0' && *p <= '9') p++;
        if (*p == '.') {
            p++;
            prec = 0;
            if (*p == '*') star_p = 1, p++;
            else while (*p >= '0' && *p <= '9') prec = prec * 10 + (*p++ - '0');
        }
        char len[3] = "";
        if ((p[0] == 'h' && p[1] == 'h') || (p[0] == 'l' && p[1] == 'l')) len[0] = p[0], len[1] = p[1], p += 2;
        else if (*p && strchr("hlzjtL", *p)) len[0] = *p++;
        char conv = *p ? *p++ : '\0';
        if (star_w) w = va_arg(ap, int);
        if (star_p) prec = va_arg(ap, int);
        char spec[32];
        size_t sl = (size_t)(p - start) < sizeof spec - 1 ? (size_t)(p - start) : sizeof spec - 1;
        memcpy(spec, start, sl);
        spec[sl] = '\0';
        char tmp[128];
        int k = 0;
        switch (conv) {
        case 's': {
            const char *v = va_arg(ap, const char *);
            int quoted = start > fmt && start[-1] == '"';
            log__value(out, cap, &n, v, prec >= 0 ? (size_t)prec : (size_t)-1, quoted);
            continue;
        }
        case 'd': case 'i':
            if (!strcmp(len, "ll")) k = snprintf(tmp, sizeof tmp, "%lld", va_arg(ap, long long));
            else if (!strcmp(len, "l")) k = snprintf(tmp, sizeof tmp, "%ld", va_arg(ap, long));
            else if (!strcmp(len, "z") || !strcmp(len, "t")) k = snprintf(tmp, sizeof tmp, "%td", va_arg(ap, ptrdiff_t));
            else if (!strcmp(len, "j")) k = snprintf(tmp, sizeof tmp, "%jd", va_arg(ap, intmax_t));
            else k = snprintf(tmp, sizeof tmp, "%d", va_arg(ap, int));
            break;
        case 'u': case 'x': case 'X': case 'o': {
            char f[8] = {'%', 'l', 'l', conv, 0};
            unsigned long long v;
            if (!strcmp(len, "ll")) v = va_arg(ap, unsigned long long);
            else if (!strcmp(len, "l")) v = va_arg(ap, unsigned long);
            else if (!strcmp(len, "z")) v = va_arg(ap, size_t);
            else if (!strcmp(len, "t")) v = (unsigned long long)va_arg(ap, ptrdiff_t);
            else if (!strcmp(len, "j")) v = va_arg(ap, uintmax_t);
            else v = va_arg(ap, unsigned);
            k = snprintf(tmp, sizeof tmp, f, v);
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': case 'a': case 'A': {
            /* the spec as written (precision), width dropped */
            char f[16];
            if (prec >= 0) snprintf(f, sizeof f, "%%.%d%c", prec, conv);
            else snprintf(f, sizeof f, "%%%c", conv);
            if (!strcmp(len, "L")) k = snprintf(tmp, sizeof tmp, "%Lg", va_arg(ap, long double));
            else k = snprintf(tmp, sizeof tmp, f, va_arg(ap, double));
            break;
        }
        case 'c':
            tmp[0] = (char)va_arg(ap, int);
            tmp[1] = '\0';
            log__value(out, cap, &n, tmp, 1, start > fmt && start[-1] == '"');
            continue;
        case 'p':
            k = snprintf(tmp, sizeof tmp, "%p", va_arg(ap, void *));
            break;
        default: /* an unknown conversion: written as it stands */
            for (const char *q = spec; *q; q++) log__put(out, cap, &n, *q);
            continue;
        }
        (void)w;
        for (int i = 0; i < k && i < (int)sizeof tmp - 1; i++) log__put(out, cap, &n, tmp[i]);
    }
    if (cap) out[n] = '\0';
}

void srv_log_format(char *out, size_t cap, const char *kv_fmt, ...) {
    va_list ap;
    va_start(ap, kv_fmt);
    log__vformat(out, cap, kv_fmt, ap);
    va_end(ap);
}

void srv_log(srv_log_level level, const char *msg, const char *kv_fmt, ...) {
    if ((int)level < atomic_load(&log__level)) return;
    char line[1200];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log__names[level]);
    size_t k = (size_t)n;
    log__put(line, sizeof line - 2, &k, '"');
    log__value(line, sizeof line - 2, &k, msg, (size_t)-1, 1);
    log__put(line, sizeof line - 2, &k, '"');
    if (kv_fmt && *kv_fmt) {
        log__put(line, sizeof line - 2, &k, ' ');
        va_list ap;
        va_start(ap, kv_fmt);
        log__vformat(line + k, sizeof line - 2 - k, kv_fmt, ap);
        va_end(ap);
        k += strlen(line + k);
    }
    line[k++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, k);
    (void)w;
}
