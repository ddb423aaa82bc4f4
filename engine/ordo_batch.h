/* What the engine's threads send each other over inproc ZeroMQ: one
 * message is one pointer to a batch, and the batch's ownership passes with
 * the message (the sender never touches it again). Entries are packed back
 * to back in byte buffers:
 *   tagged entry  {u64 tag, u32 len} + len bytes: a request body (front ->
 *                 shard) or a reply body (shard -> front); the tag is the
 *                 front's handle for the client that is waiting.
 *   event entry   ordo_event_entry_t + order id + request id + log record +
 *                 the two wire-form parts (shard -> writer, and back as the
 *                 acknowledgement). */
#ifndef ORDO_BATCH_H
#define ORDO_BATCH_H

#include "ordo_order.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A request's tag names the front end's slot that waits for its reply:
 * the slot's index (bits 0-23) and the slot's generation (bits 24-55),
 * which changes each time the slot is freed, so a reply that comes late
 * can never reach the request that uses the slot next. In its top bits
 * (56-63) the front end adds a refusal the shard must give once the
 * order's earlier requests are answered (refusing at once could overtake
 * them). Only the front end looks inside; the others pass tags on. */
enum { ORDO_REFUSE_NONE = 0, ORDO_REFUSE_OVERLOADED = 1 };
#define ORDO_TAG_INDEX_BITS 24
#define ORDO_TAG_SLOT_BITS 56
_Static_assert(ORDO_TAG_SLOT_BITS - ORDO_TAG_INDEX_BITS == 32, "a generation is a uint32_t");

static inline uint64_t ordo_tag_for_slot(uint32_t index, uint32_t generation)
{
    return (uint64_t)index | ((uint64_t)generation << ORDO_TAG_INDEX_BITS);
}

static inline uint32_t ordo_tag_index(uint64_t tag)
{
    return (uint32_t)(tag & ((1ull << ORDO_TAG_INDEX_BITS) - 1));
}

static inline uint32_t ordo_tag_generation(uint64_t tag)
{
    return (uint32_t)((tag >> ORDO_TAG_INDEX_BITS) &
                      ((1ull << (ORDO_TAG_SLOT_BITS - ORDO_TAG_INDEX_BITS)) - 1));
}

static inline uint64_t ordo_tag_make(uint64_t slot, unsigned refuse)
{
    return slot | ((uint64_t)refuse << ORDO_TAG_SLOT_BITS);
}

static inline unsigned ordo_tag_refuse(uint64_t tag)
{
    return (unsigned)(tag >> ORDO_TAG_SLOT_BITS);
}

/* The tag without the refusal: index and generation. */
static inline uint64_t ordo_tag_slot(uint64_t tag)
{
    return tag & ((1ull << ORDO_TAG_SLOT_BITS) - 1);
}

typedef enum {
    ORDO_BATCH_REQUESTS = 1, /* front -> shard: tagged request bodies */
    ORDO_BATCH_REPLIES,      /* shard -> front: tagged reply bodies */
    ORDO_BATCH_EVENTS,       /* shard -> writer: decided events; back: their outcome */
    ORDO_BATCH_SNAPSHOT,     /* writer -> shard: snapshot due; shard -> snapshotter:
                              * tagged snapshot records of its orders */
    ORDO_BATCH_STOP,         /* stop: passed front -> shard -> writer and back;
                              * shard -> snapshotter and indexer: its last word */
    ORDO_BATCH_INDEX,        /* shard -> indexer: index entries of finished orders;
                              * back: the outcome in `error` */
} ordo_batch_kind_t;

typedef struct {
    ordo_batch_kind_t kind;
    uint32_t shard;          /* the shard that sent it */
    uint32_t count;          /* entries in buf */
    int error;               /* EVENTS, INDEX on return: 0 = durable, else the error */
    bool for_good;           /* EVENTS on return: the log has failed for good */
    uint64_t first_position; /* EVENTS on return: position of the first event;
                              * SNAPSHOT: the position the snapshot starts from */
    bool last;               /* SNAPSHOT (shard -> snapshotter): the shard's last part */
    msgpack_sbuffer buf;     /* the entries */
    msgpack_sbuffer replies; /* EVENTS on return: tagged replies built by the writer */
} ordo_batch_t;

/* An event entry's fixed part. */
typedef struct {
    uint64_t tag;
    void *order; /* the shard's own handle on the order (the writer leaves it alone) */
    ordo_apply_prep_t prep; /* the shard's: what applying it needs, allocated before the write */
    uint32_t version;
    uint32_t type; /* ordo_event_type_t */
    uint32_t rec_len, mid_len, rest_len;
    uint8_t order_id_len, request_id_len;
    uint8_t prev_hash[32]; /* the order's head hash (zeros if none): the writer chains to it */
} ordo_event_entry_t;

/* An event entry read back: views into the batch. */
typedef struct {
    ordo_event_entry_t head;
    const char *order_id, *request_id;
    char *rec; /* writable: the writer stamps the timestamp and the hash in place */
    const char *mid, *rest;
} ordo_event_view_t;

ordo_batch_t *ordo_batch_new(ordo_batch_kind_t kind, uint32_t shard);
void ordo_batch_free(ordo_batch_t **b);

/* Appends a tagged entry to `buf`. 0, or -1 when out of memory (`buf`
 * then holds what it held before). */
int ordo_batch_add_tagged(msgpack_sbuffer *buf, uint64_t tag, const void *bytes, size_t len);

/* Starts a tagged entry whose bytes the caller then writes to `buf`
 * (e.g. with a packer); ordo_batch_end_tagged() with the returned offset
 * sets its length. -1 when out of memory. */
long ordo_batch_begin_tagged(msgpack_sbuffer *buf, uint64_t tag);
void ordo_batch_end_tagged(msgpack_sbuffer *buf, long start);

/* Reads the tagged entry at *offset and moves past it; false at the end. */
bool ordo_batch_next_tagged(const msgpack_sbuffer *buf, size_t *offset, uint64_t *tag,
                            const void **bytes, size_t *len);

/* Reads the event entry at *offset and moves past it; false at the end. */
bool ordo_batch_next_event(ordo_batch_t *b, size_t *offset, ordo_event_view_t *view);

/* Sends the batch (ownership passes) over an inproc socket. The engine's
 * inproc pipes have no high-water mark, so this does not block; the front
 * bounds how much work is in flight. -1 only if the socket is gone (the
 * batch is then freed). */
int ordo_batch_send(void *socket, ordo_batch_t *b);

/* Receives a batch; NULL if none waits (ZMQ_DONTWAIT) or on error. */
ordo_batch_t *ordo_batch_recv(void *socket, int flags);

/* A reply a shard or the reader could not make or queue (out of memory)
 * must still free the front end's slot, or its client would wait forever
 * and the slot would be lost. The tag alone goes in a message of 16 bytes,
 * which ZeroMQ keeps inside the message itself (no allocation); the front
 * end answers `unavailable` in its place. 0 or -1. */
int ordo_batch_send_lost(void *socket, uint64_t tag);

/* The front end's receive: 1 with a batch in *b, 2 with a lost reply's
 * tag in *tag (ordo_batch_send_lost), 0 if nothing waits or on error. */
int ordo_batch_recv_any(void *socket, int flags, ordo_batch_t **b, uint64_t *tag);

/* A packer's sink that notes a failed write (out of memory), so that a
 * reply packed in parts is known to be whole before it is sent. Pass it
 * to msgpack_packer_init with ordo_sink_write; clear `failed` with the
 * buffer. */
typedef struct {
    msgpack_sbuffer *buf;
    bool failed;
} ordo_sink_t;
int ordo_sink_write(void *sink, const char *bytes, size_t len);

#endif
