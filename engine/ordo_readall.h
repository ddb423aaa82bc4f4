/* ReadAll pages: the events from a position, up to the request's limit
 * and the log's durable head, packed as PROTOCOL.md's reply. One
 * ordo_readall_t per thread that answers ReadAll (the engine's reader
 * thread; a shard, should one be asked): it keeps a log reader, moved from
 * page to page, and its scratch buffers between requests. */
#ifndef ORDO_READALL_H
#define ORDO_READALL_H

#include "ordo_order.h"
#include "ordo_wal.h"

#include <msgpack.h>

typedef struct {
    ordo_wal_t *wal;           /* borrowed */
    ordo_wal_reader_t *reader; /* owned; NULL until the first page */
    ordo_event_t *ev;          /* owned scratch */
    msgpack_sbuffer events;    /* owned scratch: the page's events */
    msgpack_packer events_pk;
} ordo_readall_t;

/* 0, or -1 if out of memory. */
int ordo_readall_init(ordo_readall_t *ra, ordo_wal_t *wal);
void ordo_readall_free(ordo_readall_t *ra);

/* Packs the whole reply to `req` (a ReadAll) into pk: the page, or the
 * `unavailable` error when the log cannot be read (logged, naming the
 * position). 0, or -1 if the log failed (the error reply is packed). */
int ordo_readall_page(ordo_readall_t *ra, const ordo_request_t *req, msgpack_packer *pk);

/* The `overloaded` error for a request the front end refused (too many
 * large pages in flight, or too many reply bytes not yet read). */
void ordo_readall_overloaded(ordo_error_t *err);

#endif
