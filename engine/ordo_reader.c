/* The reader's thread (see ordo_reader.h). Replies leave in the order the
 * requests came, a batch per batch received (large pages at once). */
#include "ordo_reader.h"

#include "ordo_batch.h"
#include "ordo_codec.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_readall.h"

#include <pthread.h>
#include <stdlib.h>
#include <zmq.h>

typedef struct {
    const ordo_reader_config_t *cfg;
    ordo_readall_t ra;
    ordo_request_t *req;
    msgpack_sbuffer buf;
    ordo_sink_t sink; /* buf, noting a failed write */
    msgpack_packer pk;
    uint64_t lost; /* replies that could not be made (out of memory) */
    ordo_batch_t *out;
} s_reader_t;

static void s_flush(s_reader_t *r)
{
    if (r->out && r->out->count > 0) {
        ordo_batch_send(r->cfg->pipe, r->out);
        r->out = NULL;
    }
}

static void s_clear(s_reader_t *r)
{
    msgpack_sbuffer_clear(&r->buf);
    r->sink.failed = false;
}

/* A reply that cannot be made (out of memory) goes as a lost tag, which
 * the front end answers `unavailable`. */
static void s_lost(s_reader_t *r, uint64_t tag)
{
    if (r->lost++ % 10000 == 0)
        ordo_log_error("reader", "out of memory making a reply; answered unavailable (%llu so far)",
                       (unsigned long long)r->lost);
    s_flush(r); /* every reply made before it goes first */
    ordo_batch_send_lost(r->cfg->pipe, tag);
}

static void s_reply(s_reader_t *r, uint64_t tag)
{
    bool ok = !r->sink.failed;
    r->sink.failed = false;
    if (ok && !r->out && !(r->out = ordo_batch_new(ORDO_BATCH_REPLIES, 0)))
        ok = false;
    if (ok && ordo_batch_add_tagged(&r->out->buf, tag, r->buf.data, r->buf.size) == 0)
        r->out->count++;
    else
        ok = false;
    if (!ok) {
        s_lost(r, tag);
        return;
    }
    if (r->out->buf.size >= ORDO_SHARD_REPLY_BYTES_MAX)
        s_flush(r); /* large pages leave at once */
}

static void s_error(s_reader_t *r, uint64_t tag, ordo_str_t rid, const ordo_error_t *err)
{
    ordo_stat_add(&r->cfg->stats->errors, 1);
    ordo_stat_add(&r->cfg->stats->by_code[(unsigned)err->code < ORDO_CODE_COUNT_ ? err->code : 0], 1);
    s_clear(r);
    ordo_reply_pack_error(&r->pk, rid, err);
    s_reply(r, tag);
}

static void s_request(s_reader_t *r, uint64_t full_tag, const void *body, size_t len)
{
    uint64_t tag = ordo_tag_slot(full_tag);
    ordo_error_t err;
    ordo_stat_add(&r->cfg->stats->requests, 1);
    int decoded = ordo_request_decode(body, len, r->req, &err);
    ordo_stat_add(&r->cfg->stats->by_type[decoded == 0 && (unsigned)r->req->type < ORDO_REQ_COUNT_
                                              ? r->req->type
                                              : ORDO_REQ_NONE],
                  1);
    if (decoded != 0) {
        s_error(r, tag, r->req->request_id, &err);
        return;
    }
    if (ordo_tag_refuse(full_tag)) {
        ordo_readall_overloaded(&err);
        s_error(r, tag, r->req->request_id, &err);
        return;
    }
    if (r->req->type != ORDO_REQ_READ_ALL) { /* the front end's peek and the decoder disagree */
        ordo_error_set(&err, ORDO_CODE_UNAVAILABLE, "internal routing error; please report it");
        s_error(r, tag, r->req->request_id, &err);
        return;
    }
    ordo_stat_add(&r->cfg->stats->queries, 1);
    s_clear(r);
    if (ordo_readall_page(&r->ra, r->req, &r->pk) != 0) { /* the log could not be read */
        ordo_stat_add(&r->cfg->stats->errors, 1);
        ordo_stat_add(&r->cfg->stats->by_code[ORDO_CODE_UNAVAILABLE], 1);
    }
    s_reply(r, tag);
}

void *ordo_reader_run(void *arg)
{
    const ordo_reader_config_t *cfg = arg;
    pthread_setname_np(pthread_self(), "ordo-reader");
    s_reader_t r = {.cfg = cfg};
    msgpack_sbuffer_init(&r.buf);
    r.sink = (ordo_sink_t){&r.buf, false};
    msgpack_packer_init(&r.pk, &r.sink, ordo_sink_write);
    bool ok = ordo_readall_init(&r.ra, cfg->wal) == 0 && (r.req = malloc(sizeof *r.req)) != NULL;
    if (!ok)
        ordo_log_error("reader", "out of memory at start; ReadAll gets unavailable");
    for (;;) {
        ordo_batch_t *b = ordo_batch_recv(cfg->pipe, 0);
        if (!b) {
            if (zmq_errno() == EINTR)
                continue;
            break; /* the context is gone */
        }
        if (b->kind == ORDO_BATCH_STOP) {
            s_flush(&r);
            ordo_batch_send(cfg->pipe, b); /* its last word */
            break;
        }
        size_t off = 0;
        uint64_t tag;
        const void *body;
        size_t len;
        while (ordo_batch_next_tagged(&b->buf, &off, &tag, &body, &len)) {
            if (ok)
                s_request(&r, tag, body, len);
            else
                s_lost(&r, ordo_tag_slot(tag));
        }
        ordo_batch_free(&b);
        s_flush(&r);
    }
    ordo_readall_free(&r.ra);
    free(r.req);
    msgpack_sbuffer_destroy(&r.buf);
    ordo_batch_free(&r.out);
    return NULL;
}
