/* A partition's log replicated through NATS JetStream (docs/cluster.md).
 *
 * Every frame the engine appends to its local log is also published, byte
 * for byte, as one message to the partition's stream ("ORDO_P<k>",
 * subject "ordo.p<k>.frames", file storage, 3 replicas by default), with
 * headers naming its positions (Ordo-First, Ordo-Count). A frame is
 * acknowledged to clients (`--fsync replicated`) only when it is on the
 * local disk and JetStream has acknowledged it, that is, when a majority
 * of the stream's replicas hold it.
 *
 * Each publish names the stream sequence it expects to follow
 * (Nats-Expected-Last-Sequence): the stream is the log's frames in order
 * (with a lease marker, a message of no events, where an owner took
 * over), and a writer whose idea of the stream is out of date (another
 * engine wrote to it) is refused instead of appending out of place.
 *
 * Not thread-safe: one thread (the engine's log writer) uses it. */
#ifndef ORDO_REPLICATOR_H
#define ORDO_REPLICATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_replicator ordo_replicator_t;

typedef struct {
    const char *servers;   /* "nats://127.0.0.1:4222,nats://..." */
    uint32_t partition;    /* names the stream: ORDO_P<partition> */
    int replicas;          /* the stream's, when this makes it (1..5) */
    int timeout_ms;        /* for an acknowledgement (and connecting) */
    uint64_t lease;        /* the lease revision this engine owns the stream under
                            * (an Ordo-Lease header on what it writes); 0 = none */
} ordo_replicator_options_t;

/* The stream's end. */
typedef struct {
    uint64_t seq;           /* its last message's sequence; 0 = empty */
    uint64_t last_position; /* its last frame's last position; 0 = no frame */
} ordo_replicator_end_t;

/* Connects, makes the stream if it does not exist, and reads its end.
 * 0, or -1 with err set (no server answered, the stream cannot be made,
 * its last message is not a frame of ours). */
int ordo_replicator_open(const ordo_replicator_options_t *opts, ordo_replicator_t **out,
                         ordo_replicator_end_t *end, char *err, size_t errsize);

/* Publishes one frame holding positions first .. first + count - 1, which
 * must follow the stream's last, and waits for JetStream's
 * acknowledgement. 0, or -1 with err set: not acknowledged in time, the
 * stream moved on without us (fenced), or no connection. After -1 the
 * frame may or may not be in the stream; the replicator refuses further
 * frames (the engine must start again and reconcile). */
int ordo_replicator_publish(ordo_replicator_t *r, const void *frame, size_t len, uint64_t first,
                            uint32_t count, char *err, size_t errsize);

/* Claims the stream for this engine's lease: publishes a lease marker (a
 * message of no events, Ordo-Count 0, with Ordo-Lease) right after the
 * stream's end. Any engine that wrote before it, and still thinks the
 * stream ends where it left it, is refused from then on: it is fenced.
 * 0; 1 if the stream moved on since it was read (catch up, then claim
 * again); -1 with err. */
int ordo_replicator_claim(ordo_replicator_t *r, char *err, size_t errsize);

/* True if these are the bytes of the stream's last frame as read at open
 * (false for an empty stream). */
bool ordo_replicator_end_is(const ordo_replicator_t *r, const void *frame, size_t len);

/* The stream's data frame whose last position is `position`, copied into
 * *frame (malloc'd; the caller frees it; NULL: not wanted) with its length
 * and its stream sequence (seq may be NULL): found by bisection over the
 * stream's messages on their Ordo-First headers. 1 found; 0 no frame ends
 * there (none holds it, or one holds it but ends later); -1 with err. */
int ordo_replicator_frame_ending_at(ordo_replicator_t *r, uint64_t position, uint8_t **frame,
                                    size_t *len, uint64_t *seq, char *err, size_t errsize);

/* The largest frame the servers take (their max_payload, less room for
 * the headers). */
size_t ordo_replicator_max_frame(const ordo_replicator_t *r);

/* The stream's end as this replicator last knew it. */
ordo_replicator_end_t ordo_replicator_end(const ordo_replicator_t *r);

/* Closes the connection; sets *r to NULL. Safe on NULL. */
void ordo_replicator_close(ordo_replicator_t **r);

#endif
