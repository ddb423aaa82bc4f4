/* The live page's event feed (ordo-projector --http): a thread that
 * follows the engine's events from its head at start (ordo_sub: in
 * order, none skipped) and keeps the last ORDO_PHUB_RING of them as short
 * JSON lines ({position, order_id, type, timestamp_us, restaurant_id?}),
 * which each open /api/events stream reads at its own pace. A stream that
 * falls further behind than the ring is told to reload. */
#ifndef ORDO_PHUB_H
#define ORDO_PHUB_H

#include "ordo.h"

#include <stddef.h>
#include <stdint.h>

#define ORDO_PHUB_RING 4096
#define ORDO_PHUB_LINE_MAX 512

typedef struct ordo_phub ordo_phub_t;

/* Starts following the engine (its request and PUB endpoints, CURVE
 * options or NULL); the strings must outlive the hub. NULL on failure. */
ordo_phub_t *ordo_phub_start(const char *engine, const char *engine_pub,
                             const ordo_connect_options_t *opts);

/* Wakes every waiting stream (ordo_phub_wait returns -1 from now on) and
 * stops the thread; the hub stays readable until ordo_phub_destroy, so
 * streams still running may end cleanly. Safe on NULL. */
void ordo_phub_stop(ordo_phub_t *hub);

/* Frees it, once no stream uses it. Safe on NULL; nulls *hub. */
void ordo_phub_destroy(ordo_phub_t **hub);

/* The last position the hub has. */
uint64_t ordo_phub_position(ordo_phub_t *hub);

/* Waits up to timeout_ms for the first event after `after`. 1: its line
 * is in out (cap bytes) and its position in *position; 0: none came;
 * 2: `after` is older than the ring (reload); -1: the hub is stopping. */
int ordo_phub_wait(ordo_phub_t *hub, uint64_t after, int timeout_ms, char *out, size_t cap,
                   uint64_t *position);

#endif
