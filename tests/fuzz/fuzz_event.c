/* libFuzzer target: the event decoders (wire form, log record form) and
 * the reply and snapshot-order decoders, which read bytes from sockets and
 * files. Whatever decodes must re-encode and decode again. */
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
    if (ordo_event_decode_record(buf.data, buf.size, ev->position, &back) != 0)
        abort();
    if (back.version != ev->version || back.type != ev->type ||
        back.order_id.len != ev->order_id.len || back.meta.count != ev->meta.count)
        abort();
    msgpack_sbuffer_destroy(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ordo_event_t ev;
    if (ordo_event_decode(data, size, &ev) == 0)
        s_reencode_event(&ev);
    if (ordo_event_decode_record(data, size, 1, &ev) == 0)
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
    if (ordo_order_decode_snapshot(data, size, &order) == 0)
        ordo_order_clear(&order);
    return 0;
}
