/* Logging: one line per event on stderr, "TIME LEVEL module: message".
 * Thread-safe (one write(2) per line). Tests can install a sink to capture
 * lines and assert on them. */
#ifndef ORDO_LOG_H
#define ORDO_LOG_H

typedef enum { ORDO_LOG_DEBUG = 0, ORDO_LOG_INFO, ORDO_LOG_WARN, ORDO_LOG_ERROR } ordo_log_level_t;

typedef void(ordo_log_sink_fn)(void *ctx, ordo_log_level_t level, const char *line);

/* Lines below `level` are dropped. Default: ORDO_LOG_INFO. */
void ordo_log_set_level(ordo_log_level_t level);

/* Sends every line to `sink` instead of stderr; NULL restores stderr. */
void ordo_log_set_sink(ordo_log_sink_fn *sink, void *ctx);

void ordo_log(ordo_log_level_t level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define ordo_log_debug(mod, ...) ordo_log(ORDO_LOG_DEBUG, mod, __VA_ARGS__)
#define ordo_log_info(mod, ...) ordo_log(ORDO_LOG_INFO, mod, __VA_ARGS__)
#define ordo_log_warn(mod, ...) ordo_log(ORDO_LOG_WARN, mod, __VA_ARGS__)
#define ordo_log_error(mod, ...) ordo_log(ORDO_LOG_ERROR, mod, __VA_ARGS__)

#endif
