/* ReadAll pages (see ordo_readall.h). */
#include "ordo_readall.h"

#include "ordo_codec.h"
#include "ordo_error.h"
#include "ordo_log.h"

#include <stdlib.h>

int ordo_readall_init(ordo_readall_t *ra, ordo_wal_t *wal)
{
    ra->wal = wal;
    ra->reader = NULL;
    msgpack_sbuffer_init(&ra->events);
    msgpack_packer_init(&ra->events_pk, &ra->events, msgpack_sbuffer_write);
    return (ra->ev = malloc(sizeof *ra->ev)) ? 0 : -1;
}

void ordo_readall_free(ordo_readall_t *ra)
{
    ordo_wal_reader_destroy(&ra->reader);
    msgpack_sbuffer_destroy(&ra->events);
    free(ra->ev);
    ra->ev = NULL;
}

void ordo_readall_overloaded(ordo_error_t *err)
{
    ordo_error_set(err, ORDO_CODE_OVERLOADED,
                   "this connection has too many reply bytes it has not read yet, or ReadAll "
                   "pages in flight; read its replies, then retry");
}

int ordo_readall_page(ordo_readall_t *ra, const ordo_request_t *req, msgpack_packer *pk)
{
    uint64_t head = ordo_wal_head(ra->wal), from = (uint64_t)req->from_position, next = from;
    uint32_t n = 0;
    msgpack_sbuffer_clear(&ra->events);
    if (from <= head) {
        /* One reader, moved to each page's start: a tailer's next page
         * starts in the frame the last one ended in. */
        int rc = ra->reader ? ordo_wal_reader_seek(ra->reader, from)
                            : ordo_wal_reader_new(ra->wal, from, &ra->reader);
        uint64_t pos;
        const void *data;
        size_t len;
        while (rc == 0 && n < (uint64_t)req->limit &&
               (rc = ordo_wal_reader_next(ra->reader, &pos, &data, &len)) == 1) {
            if (pos > head)
                break;
            if (ordo_event_decode_record(data, len, pos, ra->ev) != 0) {
                rc = ORDO_ERR_CORRUPT;
                break;
            }
            if (ordo_event_pack(&ra->events_pk, ra->ev) != 0) { /* out of memory */
                rc = ORDO_ERR_NOMEM;
                break;
            }
            n++;
            next = pos + 1;
            rc = 0;
        }
        if (rc < 0) {
            ordo_wal_reader_destroy(&ra->reader); /* start afresh next time */
            ordo_log_error("readall", "reading position %llu from the log failed: %s",
                           (unsigned long long)next, ordo_strerror(rc));
            ordo_error_t err;
            ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "the log could not be read (%s)",
                           ordo_strerror(rc));
            ordo_reply_pack_error(pk, req->request_id, &err);
            return -1;
        }
    }
    ordo_reply_pack_read_all_head(pk, req->request_id, next, head, n);
    return pk->callback(pk->data, ra->events.data, ra->events.size) == 0 ? 0 : -1;
}
