/* The /metrics endpoint: a small HTTP server (libmicrohttpd, its own
 * thread) that answers GET /metrics with what a render function writes,
 * in the Prometheus text format. Anything else gets 404 (another path) or
 * 405 (another method), with no body read. Connections are bounded (in
 * all, per address, in memory and in time), so a scraper that misbehaves
 * costs a few kilobytes, never the engine's threads: rendering only reads
 * atomic counters. */
#ifndef ORDO_METRICS_HTTP_H
#define ORDO_METRICS_HTTP_H

#include "ordo_metrics_text.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_metrics_http ordo_metrics_http_t;

/* Writes every metric into `out`; called on the server's thread, once per
 * scrape. */
typedef void (*ordo_metrics_render_fn)(void *ctx, ordo_mtext_t *out);

/* Starts serving on `addr`. The thread it starts inherits the caller's
 * signal mask. NULL with `err` filled if the address is invalid or cannot
 * be bound. `render`'s ctx must outlive the server. */
ordo_metrics_http_t *ordo_metrics_http_start(const char *addr, ordo_metrics_render_fn render,
                                             void *ctx, char *err, size_t errsize);

/* The port it listens on (the one chosen, for port 0). */
uint16_t ordo_metrics_http_port(const ordo_metrics_http_t *server);

/* Stops the thread, closes every connection and frees it; nulls *server.
 * Safe on NULL. */
void ordo_metrics_http_stop(ordo_metrics_http_t **server);

#endif
