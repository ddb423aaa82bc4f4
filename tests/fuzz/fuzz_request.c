/* libFuzzer target: the request decoder. Any bytes must give 0 or a
 * bad_request/unknown_type error, never a crash, leak or out-of-bounds
 * read; a decoded request must re-encode and decode to the same type, and
 * the error reply to a refused one must be valid MessagePack. */
#include "ordo_codec.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The error reply the engine would send must itself be valid MessagePack
 * (its strings valid UTF-8, PROTOCOL.md rule 1) and decode to the same
 * code and field. */
static void s_check_error_reply(const ordo_request_t *req, const ordo_error_t *err)
{
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (ordo_reply_pack_error(&pk, req->request_id, err) != 0)
        abort();
    if (ordo_mp_validate(buf.data, buf.size, ORDO_NESTING_MAX) != ORDO_MP_OK)
        abort();
    ordo_reply_t reply;
    if (ordo_reply_decode(buf.data, buf.size, &reply) != 0 || reply.ok ||
        reply.error.code != err->code || strcmp(reply.error.field, err->field) != 0)
        abort();
    msgpack_sbuffer_destroy(&buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static ordo_request_t req, again;
    ordo_error_t err;
    ordo_request_peek_t peek;
    bool peeked_map = ordo_request_peek(data, size, &peek);
    bool routed = peek.has_order_id;
    ordo_str_t peeked = peek.order_id;
    if (routed && (!peeked_map || peeked.ptr < (const char *)data ||
                   peeked.ptr + peeked.len > (const char *)data + size))
        abort();
    if (ordo_request_decode(data, size, &req, &err) != 0) {
        if (err.code != ORDO_CODE_BAD_REQUEST && err.code != ORDO_CODE_UNKNOWN_TYPE)
            abort();
        if (strlen(err.message) == 0)
            abort();
        s_check_error_reply(&req, &err);
        return 0;
    }
    /* A decoded request with an order_id is routed by that same id. */
    if (req.order_id.len > 0 && (!routed || peeked.ptr != req.order_id.ptr))
        abort();
    if (peek.type != req.type) /* the front end bounds large queries by it */
        abort();
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (ordo_request_pack(&pk, &req) != 0)
        abort();
    if (ordo_request_decode(buf.data, buf.size, &again, &err) != 0 || again.type != req.type)
        abort();
    msgpack_sbuffer_destroy(&buf);
    return 0;
}
