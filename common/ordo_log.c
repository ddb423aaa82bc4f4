/* Log line formatting and the pluggable sink (see ordo_log.h). */
#include "ordo_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static ordo_log_level_t s_level = ORDO_LOG_INFO;
static ordo_log_sink_fn *s_sink;
static void *s_sink_ctx;

void ordo_log_set_level(ordo_log_level_t level)
{
    s_level = level;
}

void ordo_log_set_sink(ordo_log_sink_fn *sink, void *ctx)
{
    s_sink = sink;
    s_sink_ctx = ctx;
}

void ordo_log(ordo_log_level_t level, const char *module, const char *fmt, ...)
{
    static const char *names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < s_level)
        return;
    char line[1024];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s %s: ",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                     tm.tm_sec, ts.tv_nsec / 1000000, names[level], module);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    if (s_sink) {
        line[len] = '\0';
        s_sink(s_sink_ctx, level, line);
        return;
    }
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
