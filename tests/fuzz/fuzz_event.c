/* libFuzzer target: the event decoders (wire form, log record form, whole
 * and for apply, which must agree) and
 * the reply and snapshot-order decoders, which read bytes from sockets and
 * files. Whatever decodes must re-encode and decode again, in the log
 * form (unless its schema is one the engine refuses there) and in the
 * wire form. */
#include "ordo_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void s_reencode_event(const ordo_event_t *ev)
{
    static ordo_event_t back;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (ordo_event_pack_record(&pk, ev) != 0)
        abort();
    /* A schema the engine does not know (0, or beyond its type's current
     * one) is refused in the log form (ordo_event_upcast): a log from a
     * later version is not misread. Any other decodes back. */
    bool known = ev->schema >= 1 && ev->schema <= ordo_event_schema_current(ev->type);
    int rc = ordo_event_decode_record(buf.data, buf.size, ev->position, &back);
    if (!known) {
        if (rc == 0)
            abort();
        msgpack_sbuffer_destroy(&buf);
        return;
    }
    if (rc != 0)
        abort();
    if (back.version != ev->version || back.type != ev->type ||
        back.order_id.len != ev->order_id.len || back.meta.count != ev->meta.count)
        abort();
    msgpack_sbuffer_destroy(&buf);
}

/* A wire-form event packs to valid MessagePack that decodes the same. */
static void s_rewire_event(const ordo_event_t *ev)
{
    static ordo_event_t back;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (ordo_event_pack(&pk, ev) != 0 || ordo_event_decode(buf.data, buf.size, &back) != 0)
        abort();
    if (back.position != ev->position || back.version != ev->version || back.type != ev->type ||
        back.timestamp_us != ev->timestamp_us || back.schema != ev->schema ||
        memcmp(back.event_id, ev->event_id, sizeof ev->event_id) != 0 ||
        back.order_id.len != ev->order_id.len ||
        memcmp(back.order_id.ptr, ev->order_id.ptr, ev->order_id.len) != 0 ||
        back.data.present != ev->data.present || back.meta.count != ev->meta.count)
        abort();
    msgpack_sbuffer_destroy(&buf);
}

/* A snapshot-form order packs (snapshot and wire form) and reads back. */
static void s_repack_order(const ordo_order_t *order)
{
    ordo_order_t back;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    memset(&back, 0, sizeof back);
    if (ordo_order_pack_snapshot(&pk, order) != 0 ||
        ordo_order_decode_snapshot(buf.data, buf.size, &back) != 0)
        abort();
    if (back.version != order->version || back.status != order->status ||
        back.order_id_len != order->order_id_len || back.n_items != order->n_items ||
        memcmp(back.order_id, order->order_id, order->order_id_len) != 0)
        abort();
    for (uint32_t v = 0; v < order->version; v++)
        if (back.request_ids[v].len != order->request_ids[v].len)
            abort();
    ordo_order_clear(&back);
    msgpack_sbuffer_clear(&buf);
    if (ordo_order_pack(&pk, order) != 0)
        abort();
    ordo_mp_t r;
    ordo_mp_init(&r, buf.data, buf.size);
    if (ordo_order_read(&r, &back) != 0 || r.p != r.end || back.version != order->version ||
        back.status != order->status || back.n_items != order->n_items)
        abort();
    ordo_order_clear(&back);
    msgpack_sbuffer_destroy(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ordo_event_t ev;
    if (ordo_event_decode(data, size, &ev) == 0) {
        s_rewire_event(&ev);
        s_reencode_event(&ev);
    }
    static ordo_event_t lean;
    int whole = ordo_event_decode_record(data, size, 1, &ev);
    int for_apply = ordo_event_decode_record_for_apply(data, size, 1, &lean);
    if (whole != for_apply) /* both readers of a record agree on what it is */
        abort();
    if (whole == 0 && (lean.version != ev.version || lean.type != ev.type ||
                       lean.timestamp_us != ev.timestamp_us ||
                       lean.data.present != ev.data.present))
        abort();
    if (whole == 0)
        s_reencode_event(&ev);
    ordo_reply_t reply;
    if (ordo_reply_decode(data, size, &reply) == 0 && reply.events_len > 0) {
        ordo_mp_t r;
        uint32_t n;
        ordo_mp_init(&r, reply.events, reply.events_len);
        if (ordo_mp_read_array(&r, &n))
            for (uint32_t i = 0; i < n && ordo_event_read(&r, &ev) == 0; i++)
                ;
    }
    ordo_order_t order;
    memset(&order, 0, sizeof order);
    if (ordo_order_decode_snapshot(data, size, &order) == 0) {
        s_repack_order(&order);
        ordo_order_clear(&order);
    }
    return 0;
}
