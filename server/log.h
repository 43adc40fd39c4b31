/* log.h: structured log lines on stderr, one per event, logfmt style:
 *   ts=2026-01-01T12:00:00.123Z level=info msg="listening" addr=127.0.0.1:8080
 * Each line is written with one write() so lines from threads never mix.
 * Not for: request bodies or anything user-sized (values are truncated at
 * ~1 KiB per line). */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

typedef enum { SRV_LOG_DEBUG = 0, SRV_LOG_INFO, SRV_LOG_WARN, SRV_LOG_ERROR } srv_log_level;

/* Sets the lowest level printed (default info). */
void srv_log_set_level(srv_log_level level);
/* "debug" "info" "warn" "error" -> 0 on success. */
int srv_log_level_parse(const char *name, srv_log_level *out);
/* msg is quoted; kv_fmt (may be NULL) is printf'd after it and should be
 * `key=value` pairs separated by spaces. Every %s value is escaped, so a
 * value from a client (a URL, a model name, an error message quoting the
 * body) cannot forge a field or a line: inside quotes in kv_fmt (`k="%s"`)
 * quotes and backslashes get a backslash and control characters become
 * \n, \r, \t or \xHH; bare (`k=%s`) a value with anything but letters,
 * digits and ._-:/@+,[]() is written in quotes, escaped the same way, and
 * "" when empty. Other conversions are printf's. */
void srv_log(srv_log_level level, const char *msg, const char *kv_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* The kv part as srv_log writes it (tests): at most cap - 1 bytes and a NUL. */
void srv_log_format(char *out, size_t cap, const char *kv_fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif
