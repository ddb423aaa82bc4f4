/* A realistic stream of order commands for benchmarks and demos: many
 * orders in flight at once, each driven through its whole life (85%
 * delivered in 6 events, 15% cancelled at a random early stage), with
 * realistic ids and metadata: ULID-style order ids ("ord_" + 26 chars), a
 * new request id per command and a correlation id per order (UUIDv7, as
 * RFC 9562 recommends for new ids, or UUIDv4: fully random), an actor per
 * step ("user:123456"), 1-4 menu items, street addresses. */
#ifndef ORDO_WORKLOAD_H
#define ORDO_WORKLOAD_H

#include "ordo_order.h"

#include <stdint.h>

typedef struct ordo_workload ordo_workload_t;

/* `in_flight` orders are interleaved (so one order's events are spread
 * out, as in life). Deterministic for a given seed. NULL if out of memory. */
ordo_workload_t *ordo_workload_new(uint64_t seed, uint32_t in_flight);

void ordo_workload_destroy(ordo_workload_t **w);

/* Makes request and correlation ids UUIDv4 (122 random bits) instead of
 * UUIDv7 (48 bits of time, 74 random). */
void ordo_workload_use_uuid4(ordo_workload_t *w);

/* After `orders` orders have been created, start no new ones: the stream
 * ends once the orders in flight have finished their lives. */
void ordo_workload_limit(ordo_workload_t *w, uint64_t orders);

/* Fills *req with the next command and returns true, or returns false when
 * a limit was set and every order has finished. Its views point into the
 * workload and stay valid until the next call. */
bool ordo_workload_next(ordo_workload_t *w, ordo_request_t *req);

/* Orders created so far. */
uint64_t ordo_workload_orders(const ordo_workload_t *w);

#endif
