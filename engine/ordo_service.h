/* The engine's request handling: every command and query of PROTOCOL.md
 * against the order registry and the log, with group commit. A request
 * goes in as its body bytes; its reply comes out in an outbox, in the
 * order the requests came in. Command replies (and the events to publish)
 * leave the outbox only once ordo_service_flush() has made their events
 * durable: acknowledged means on disk, and nothing unacknowledged is
 * visible (a query first flushes what is pending, so it sees only durable
 * state and reads its own writes). Single-threaded: one loop owns it. */
#ifndef ORDO_SERVICE_H
#define ORDO_SERVICE_H

#include "ordo_registry.h"
#include "ordo_wal.h"

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_service ordo_service_t;

/* Takes ownership of `reg` (recovered state); borrows `wal`. NULL if out of
 * memory. `snapshot_dir` and `snapshot_every` (events; 0 = only at
 * shutdown) drive periodic snapshots. New events are stamped no earlier
 * than `clock_floor_us` (the latest timestamp recovery saw). */
ordo_service_t *ordo_service_new(ordo_registry_t **reg, ordo_wal_t *wal, const char *snapshot_dir,
                                 uint64_t snapshot_every, uint32_t batch_max,
                                 int64_t clock_floor_us);

void ordo_service_destroy(ordo_service_t **svc);

/* Handles one request body; its reply is queued in the outbox under `tag`
 * (the caller's handle for where it goes). */
void ordo_service_request(ordo_service_t *svc, const void *body, size_t len, uint64_t tag);

/* Appends the queued events as one frame (one fsync), then releases every
 * queued reply. If the log fails, their commands get `unavailable`, the
 * state is rebuilt from the log, and commands are refused from then on.
 * Takes a periodic snapshot when one is due. Returns 0 or the log error. */
int ordo_service_flush(ordo_service_t *svc);

/* Takes the next released reply: true with *tag and its bytes (valid until
 * the next call), false when there is none. */
bool ordo_service_next_reply(ordo_service_t *svc, uint64_t *tag, const void **bytes, size_t *len);

/* Takes the next durable event to publish, in position order: its topic
 * (the event type) and wire-form bytes (valid until the next call). */
bool ordo_service_next_event(ordo_service_t *svc, const char **topic, const void **bytes,
                             size_t *len);

/* From now on every request gets `unavailable` (shutting down). */
void ordo_service_stop(ordo_service_t *svc);

/* Flushes, syncs and writes a snapshot of the durable state. 0 or an error. */
int ordo_service_snapshot(ordo_service_t *svc);

#endif
