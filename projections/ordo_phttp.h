/* ordo-projector's live page (--http HOST:PORT): a small HTTP server
 * (libmicrohttpd, a thread per connection, bounded) that serves
 *   /, /app.js, /style.css     the page, compiled into the program
 *   /api/status                ProjectionStatus, as JSON
 *   /api/board?restaurant=N    RestaurantBoard (min_position=P waits for P)
 *   /api/analytics?from_us=&to_us=[&bucket=&restaurant=]   Analytics
 *   /api/events                the engine's events as Server-Sent Events
 * The /api queries go to the projector's own ROUTER over inproc, as any
 * client's would: the same checks, the same answers. Only GET; unknown
 * paths 404, other methods 405, bad arguments 400, event streams beyond
 * ORDO_PHTTP_STREAMS_MAX 503. */
#ifndef ORDO_PHTTP_H
#define ORDO_PHTTP_H

#include "ordo_phub.h"

#include <stddef.h>
#include <stdint.h>

#define ORDO_PHTTP_STREAMS_MAX 32

typedef struct ordo_phttp ordo_phttp_t;

typedef struct {
    const char *addr;    /* HOST:PORT (ordo_metrics_addr.h) */
    const char *queries; /* the projector's ROUTER, inproc:// in zmq_ctx */
    void *zmq_ctx;       /* czmq's context */
    ordo_phub_t *hub;    /* the event feed */
} ordo_phttp_config_t;

/* Starts serving. NULL with err filled if the address is bad or taken. The
 * config (and what it points to) must outlive the server. */
ordo_phttp_t *ordo_phttp_start(const ordo_phttp_config_t *cfg, char *err, size_t errsize);

/* The port it listens on. */
uint16_t ordo_phttp_port(const ordo_phttp_t *server);

/* Stops: open event streams end (stop the hub first, which wakes them),
 * every connection closes. Safe on NULL; nulls *server. */
void ordo_phttp_stop(ordo_phttp_t **server);

#endif
