/* A shard: one worker thread owning the order actors whose hash falls in
 * its range (ordo_shard_of). It receives request batches from the front
 * end, runs each order's requests one at a time (an order whose event is
 * with the log writer keeps its next requests in its mailbox until the
 * event is durable), sends decided events to the log writer, applies them
 * when the writer reports them durable, and sends every reply back to the
 * front end in the order it made them. Queries read the shard's orders
 * (durable state only: events are applied once durable) and the log.
 * Talks to other threads only through its two inproc sockets. */
#ifndef ORDO_SHARD_H
#define ORDO_SHARD_H

#include "ordo_index.h"
#include "ordo_registry.h"
#include "ordo_stats.h"
#include "ordo_wal.h"

#include <stdint.h>

typedef struct ordo_shard ordo_shard_t;

/* Takes ownership of *reg (this shard's recovered orders). Borrows the
 * log (for reads only), the two sockets (PAIRs to the front end and the
 * writer, used only by the shard's thread once it runs) and `stats`.
 * NULL if out of memory. */
ordo_shard_t *ordo_shard_new(uint32_t index, ordo_registry_t **reg, ordo_wal_t *wal, void *front,
                             void *writer, void *snapshots, ordo_engine_stats_t *stats);

/* Lets finished orders leave memory `retain_us` after their last event
 * (0: once it is durable): the indexer thread, over the PAIR socket
 * `indexer`, writes each into `index` (borrowed; the shard reads and
 * fills only its own part of its filters), and a request for an order the
 * shard no longer holds loads it back from the log through the index.
 * Without this call every order stays in memory. Call before the thread
 * runs. 0, or -1 if the index could not be read (logged). */
int ordo_shard_retain(ordo_shard_t *shard, ordo_index_t *index, void *indexer, int64_t retain_us);

/* The thread body (pthread signature): runs until stopped (a STOP batch
 * from the front end, passed to the writer and back). */
void *ordo_shard_run(void *shard);

/* The shard's orders; for the final snapshot, once the thread has ended. */
const ordo_registry_t *ordo_shard_registry(const ordo_shard_t *shard);

void ordo_shard_destroy(ordo_shard_t **shard);

#endif
