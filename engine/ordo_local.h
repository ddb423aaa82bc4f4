/* A single-threaded engine core: commands in, durable events out. It runs
 * the same steps as the engine's shards and log writer, in one thread:
 * decide against the order's state, stamp the event (timestamp, event id),
 * encode it as a log record, group events into one frame, append (the log
 * syncs per its policy). Each decided event is applied at once, so the
 * next command sees it even before the frame is written (as a group
 * commit must); nothing reads the state in between. If an append fails,
 * the registry holds events the log lacks: the core then refuses all work
 * (sticky, like the log) and the state must be rebuilt from the log.
 * Used by ordo-demo and the benchmarks; not thread-safe. */
#ifndef ORDO_LOCAL_H
#define ORDO_LOCAL_H

#include "ordo_order.h"
#include "ordo_registry.h"
#include "ordo_wal.h"

typedef struct ordo_local ordo_local_t;

/* Borrows reg and wal (they must outlive it). A batch holds at most
 * `batch_max` events. NULL if out of memory. */
ordo_local_t *ordo_local_new(ordo_registry_t *reg, ordo_wal_t *wal, uint32_t batch_max);

void ordo_local_destroy(ordo_local_t **local);

/* Decides a checked command. On ORDO_DECIDE_EVENT the event is applied
 * and queued (the batch is flushed first if it holds `batch_max` events or
 * half a frame's worth of bytes). Returns the
 * decision; on ORDO_DECIDE_ERROR *err says why; after a log failure every
 * command gets ORDO_DECIDE_ERROR with code unavailable. */
ordo_decision_t ordo_local_submit(ordo_local_t *local, const ordo_request_t *cmd,
                                  ordo_error_t *err);

/* Event timestamps will not go below `timestamp_us` (the latest in the
 * log, from recovery), even if the wall clock is behind it. */
void ordo_local_set_clock_floor(ordo_local_t *local, int64_t timestamp_us);

/* Appends the queued events as one frame. 0, or a negative ordo_err_t
 * from the log (then the core has failed for good). */
int ordo_local_flush(ordo_local_t *local);

/* Events appended so far. */
uint64_t ordo_local_events(const ordo_local_t *local);

/* The event the last ORDO_DECIDE_EVENT queued, stamped with its position,
 * timestamp and id (valid until the next submit). */
const ordo_event_t *ordo_local_last_event(const ordo_local_t *local);

/* The log error that stopped the core for good, or 0. */
int ordo_local_failed(const ordo_local_t *local);

/* Events queued and not yet appended. */
uint32_t ordo_local_queued(const ordo_local_t *local);

#endif
