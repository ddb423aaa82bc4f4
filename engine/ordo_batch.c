/* Batches passed between the engine's threads (see ordo_batch.h). */
#include "ordo_batch.h"

#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct {
    uint64_t tag;
    uint32_t len;
} s_tagged_t;

ordo_batch_t *ordo_batch_new(ordo_batch_kind_t kind, uint32_t shard)
{
    ordo_batch_t *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->kind = kind;
    b->shard = shard;
    msgpack_sbuffer_init(&b->buf);
    msgpack_sbuffer_init(&b->replies);
    return b;
}

void ordo_batch_free(ordo_batch_t **b)
{
    if (!b || !*b)
        return;
    if ((*b)->kind == ORDO_BATCH_EVENTS) {
        /* Events never applied (a batch dropped at shutdown or with its
         * socket gone): their preparations go with them. Applied ones
         * left the batch first (it became REPLIES). */
        size_t off = 0;
        ordo_event_view_t v;
        while (ordo_batch_next_event(*b, &off, &v))
            ordo_apply_prep_free(&v.head.prep);
    }
    msgpack_sbuffer_destroy(&(*b)->buf);
    msgpack_sbuffer_destroy(&(*b)->replies);
    free(*b);
    *b = NULL;
}

int ordo_batch_add_tagged(msgpack_sbuffer *buf, uint64_t tag, const void *bytes, size_t len)
{
    s_tagged_t h = {tag, (uint32_t)len};
    size_t at = buf->size;
    if (len > UINT32_MAX || msgpack_sbuffer_write(buf, (const char *)&h, sizeof h) != 0)
        return -1;
    if (len && msgpack_sbuffer_write(buf, bytes, len) != 0) {
        buf->size = at; /* no half entry */
        return -1;
    }
    return 0;
}

long ordo_batch_begin_tagged(msgpack_sbuffer *buf, uint64_t tag)
{
    s_tagged_t h = {tag, 0};
    long start = (long)buf->size;
    return msgpack_sbuffer_write(buf, (const char *)&h, sizeof h) == 0 ? start : -1;
}

void ordo_batch_end_tagged(msgpack_sbuffer *buf, long start)
{
    s_tagged_t h;
    memcpy(&h, buf->data + start, sizeof h);
    h.len = (uint32_t)(buf->size - (size_t)start - sizeof h);
    memcpy(buf->data + start, &h, sizeof h);
}

bool ordo_batch_next_tagged(const msgpack_sbuffer *buf, size_t *offset, uint64_t *tag,
                            const void **bytes, size_t *len)
{
    s_tagged_t h;
    if (*offset + sizeof h > buf->size)
        return false;
    memcpy(&h, buf->data + *offset, sizeof h);
    if (h.len > buf->size - *offset - sizeof h)
        return false;
    *tag = h.tag;
    *bytes = buf->data + *offset + sizeof h;
    *len = h.len;
    *offset += sizeof h + h.len;
    return true;
}

bool ordo_batch_next_event(ordo_batch_t *b, size_t *offset, ordo_event_view_t *v)
{
    if (*offset + sizeof v->head > b->buf.size)
        return false;
    memcpy(&v->head, b->buf.data + *offset, sizeof v->head);
    const ordo_event_entry_t *h = &v->head;
    size_t body =
        (size_t)h->order_id_len + h->request_id_len + h->rec_len + h->mid_len + h->rest_len;
    if (body > b->buf.size - *offset - sizeof v->head)
        return false;
    char *p = b->buf.data + *offset + sizeof v->head;
    v->order_id = p;
    p += h->order_id_len;
    v->request_id = p;
    p += h->request_id_len;
    v->rec = p;
    p += h->rec_len;
    v->mid = p;
    p += h->mid_len;
    v->rest = p;
    *offset += sizeof v->head + body;
    return true;
}

int ordo_batch_send(void *socket, ordo_batch_t *b)
{
    if (zmq_send(socket, &b, sizeof b, 0) != (int)sizeof b) {
        ordo_batch_free(&b);
        return -1;
    }
    return 0;
}

ordo_batch_t *ordo_batch_recv(void *socket, int flags)
{
    ordo_batch_t *b = NULL;
    if (zmq_recv(socket, &b, sizeof b, flags) != (int)sizeof b)
        return NULL;
    return b;
}

#define LOST_MAGIC 0x54534f4c4f44524full /* "ORDOLOST" */
_Static_assert(sizeof(ordo_batch_t *) != 2 * sizeof(uint64_t),
               "a lost tag must not look like a batch");

int ordo_batch_send_lost(void *socket, uint64_t tag)
{
    uint64_t m[2] = {LOST_MAGIC, tag};
    return zmq_send(socket, m, sizeof m, 0) == (int)sizeof m ? 0 : -1;
}

int ordo_batch_recv_any(void *socket, int flags, ordo_batch_t **b, uint64_t *tag)
{
    uint64_t m[2];
    int n = zmq_recv(socket, m, sizeof m, flags);
    if (n == (int)sizeof *b) {
        memcpy(b, m, sizeof *b);
        return 1;
    }
    if (n == (int)sizeof m && m[0] == LOST_MAGIC) {
        *tag = m[1];
        return 2;
    }
    return 0;
}

int ordo_sink_write(void *sink, const char *bytes, size_t len)
{
    ordo_sink_t *k = sink;
    if (msgpack_sbuffer_write(k->buf, bytes, len) != 0) {
        k->failed = true;
        return -1;
    }
    return 0;
}
