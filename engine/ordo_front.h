/* The engine's front end, one thread: it owns the ROUTER
 * socket. It reads requests, keeps each one's envelope under a tag, and
 * sends the body to the shard that owns its order (by the hash of its
 * `order_id`; ReadAll to the reader thread; the others without an order,
 * such as Stats, round the shards), one batch per shard per round. Replies come back from the
 * shards as tagged batches and leave with their envelopes. It bounds the
 * work in flight (requests and bytes): when full it stops reading, and
 * clients wait (ZeroMQ's own queues then push back on them). */
#ifndef ORDO_FRONT_H
#define ORDO_FRONT_H

#include <stdint.h>

#include "ordo_partmap.h"
#include "ordo_stats.h"

typedef struct ordo_front ordo_front_t;

/* Borrows the ROUTER, the shards' PAIR sockets, the reader's (NULL:
 * none; ReadAll then goes round the shards), `control`, a PAIR on which
 * any message means stop, and `stats`, where it counts the errors it
 * answers itself and each request's latency. NULL if out of memory. */
ordo_front_t *ordo_front_new(void *router, void **shards, uint32_t nshards, void *reader,
                             void *control, ordo_front_stats_t *stats);

/* The partition this engine serves (docs/cluster.md), for the two
 * requests the front end answers itself: one on an order of another
 * partition gets `wrong_partition` with the map, and Partitions gets the
 * map. */
typedef struct {
    uint32_t partition, partitions; /* 0 of 1: not partitioned */
    const char *endpoint, *pub;     /* this engine's, as clients reach it */
    uint64_t revision;              /* the lease it owns the partition under; 0 = none */
    ordo_partmap_t *map;            /* the others' owners (borrowed); NULL = none known */
} ordo_front_partitions_t;

/* Before ordo_front_run. The strings are copied. 0, or -1 (no memory). */
int ordo_front_set_partitions(ordo_front_t *front, const ordo_front_partitions_t *p);

/* Serves until told to stop on `control` (or the ROUTER fails); then answers what it reads with
 * `unavailable`, waits (bounded) for the requests in flight, and stops
 * the shards (a STOP through each shard and the writer and back) and the
 * reader. 0, or
 * -1 if the ROUTER failed. */
int ordo_front_run(ordo_front_t *front);

void ordo_front_destroy(ordo_front_t **front);

#endif
