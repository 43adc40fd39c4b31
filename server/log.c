/* log.c: structured stderr logging (see log.h). */
#include "log.h"

#include <stdarg.h>
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

void srv_log(srv_log_level level, const char *msg, const char *kv_fmt, ...) {
    if ((int)level < atomic_load(&log__level)) return;
    char line[1200];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s msg=\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, log__names[level]);
    /* msg: escape quotes and newlines so one event stays one line */
    for (const char *p = msg; *p && n < (int)sizeof line - 8; p++) {
        if (*p == '"' || *p == '\\') line[n++] = '\\';
        line[n++] = (*p == '\n') ? ' ' : *p;
    }
    line[n++] = '"';
    if (kv_fmt && *kv_fmt && n < (int)sizeof line - 4) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kv_fmt);
        int k = vsnprintf(line + n, sizeof line - (size_t)n - 2, kv_fmt, ap);
        va_end(ap);
        if (k > 0) n += k < (int)(sizeof line - (size_t)n - 2) ? k : (int)(sizeof line - (size_t)n - 3);
    }
    for (int i = 0; i < n; i++)
        if (line[i] == '\n') line[i] = ' ';
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
