/* Reply bodies: packing for the engine, decoding for clients. Payloads in
 * a decoded reply stay encoded (spans into the input), so a client reads
 * only what it needs. */
#include "ordo_codec.h"
#include "ordo_codec_internal.h"
#include "ordo_partition.h"

#include <stdio.h>
#include <string.h>

/* Map header plus `ok` and the optional request_id. */
static int s_head(msgpack_packer *pk, bool ok, ordo_str_t request_id, size_t extra)
{
    P(msgpack_pack_map(pk, 1 + (request_id.len ? 1 : 0) + extra));
    P(ORDO_PACK_KEY(pk, "ok"));
    P(ok ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    if (request_id.len) {
        P(ORDO_PACK_KEY(pk, "request_id"));
        P(ordo_pack_str(pk, request_id));
    }
    return 0;
}

int ordo_reply_pack_error(msgpack_packer *pk, ordo_str_t request_id, const ordo_error_t *err)
{
    size_t details = 0;
    switch (err->code) {
    case ORDO_CODE_BAD_REQUEST: details = err->field[0] ? 1 : 0; break;
    case ORDO_CODE_INVALID_TRANSITION: details = 1; break;
    case ORDO_CODE_CONFLICT: details = 2; break;
    case ORDO_CODE_ALREADY_EXISTS: details = 1; break;
    default: break;
    }
    P(s_head(pk, false, request_id, 1));
    P(ORDO_PACK_KEY(pk, "error"));
    P(msgpack_pack_map(pk, 2 + details));
    P(ORDO_PACK_KEY(pk, "code"));
    P(ordo_pack_cstr(pk, ordo_code_name(err->code)));
    P(ORDO_PACK_KEY(pk, "message"));
    P(ordo_pack_cstr(pk, err->message));
    switch (err->code) {
    case ORDO_CODE_BAD_REQUEST:
        if (err->field[0]) {
            P(ORDO_PACK_KEY(pk, "field"));
            P(ordo_pack_cstr(pk, err->field));
        }
        break;
    case ORDO_CODE_INVALID_TRANSITION:
        P(ORDO_PACK_KEY(pk, "status"));
        P(ordo_pack_cstr(pk, ordo_status_name(err->status)));
        break;
    case ORDO_CODE_CONFLICT:
        P(ORDO_PACK_KEY(pk, "expected_version"));
        P(msgpack_pack_int64(pk, err->expected_version));
        P(ORDO_PACK_KEY(pk, "current_version"));
        P(msgpack_pack_int64(pk, err->current_version));
        break;
    case ORDO_CODE_ALREADY_EXISTS:
        P(ORDO_PACK_KEY(pk, "version"));
        P(msgpack_pack_int64(pk, err->current_version));
        break;
    default:
        break;
    }
    return 0;
}

int ordo_reply_pack_command(msgpack_packer *pk, ordo_str_t request_id, const ordo_event_t *ev,
                            bool duplicate)
{
    P(ordo_reply_pack_command_head(pk, request_id, ev, duplicate));
    return ordo_event_pack(pk, ev);
}

int ordo_reply_pack_command_head_of(msgpack_packer *pk, ordo_str_t request_id,
                                    ordo_str_t order_id, uint32_t version, uint64_t position,
                                    bool duplicate)
{
    P(s_head(pk, true, request_id, 5));
    P(ORDO_PACK_KEY(pk, "order_id"));
    P(ordo_pack_str(pk, order_id));
    P(ORDO_PACK_KEY(pk, "version"));
    P(msgpack_pack_uint32(pk, version));
    P(ORDO_PACK_KEY(pk, "position"));
    P(msgpack_pack_uint64(pk, position));
    P(ORDO_PACK_KEY(pk, "duplicate"));
    P(duplicate ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    return ORDO_PACK_KEY(pk, "event");
}

int ordo_reply_pack_command_head(msgpack_packer *pk, ordo_str_t request_id,
                                 const ordo_event_t *ev, bool duplicate)
{
    return ordo_reply_pack_command_head_of(pk, request_id, ev->order_id, ev->version,
                                           ev->position, duplicate);
}

int ordo_reply_pack_order(msgpack_packer *pk, ordo_str_t request_id, const ordo_order_t *order)
{
    P(s_head(pk, true, request_id, 1));
    P(ORDO_PACK_KEY(pk, "order"));
    return ordo_order_pack(pk, order);
}

int ordo_reply_pack_history_head(msgpack_packer *pk, ordo_str_t request_id, ordo_str_t order_id,
                                 uint32_t n_events)
{
    P(s_head(pk, true, request_id, 2));
    P(ORDO_PACK_KEY(pk, "order_id"));
    P(ordo_pack_str(pk, order_id));
    P(ORDO_PACK_KEY(pk, "events"));
    return msgpack_pack_array(pk, n_events);
}

int ordo_reply_pack_read_all_head(msgpack_packer *pk, ordo_str_t request_id,
                                  uint64_t next_position, uint64_t head_position,
                                  uint32_t n_events)
{
    P(s_head(pk, true, request_id, 3));
    P(ORDO_PACK_KEY(pk, "next_position"));
    P(msgpack_pack_uint64(pk, next_position));
    P(ORDO_PACK_KEY(pk, "head_position"));
    P(msgpack_pack_uint64(pk, head_position));
    P(ORDO_PACK_KEY(pk, "events"));
    return msgpack_pack_array(pk, n_events);
}

int ordo_reply_pack_stats(msgpack_packer *pk, ordo_str_t request_id, const char *const *names,
                          const int64_t *values, uint32_t count)
{
    P(s_head(pk, true, request_id, 1));
    P(ORDO_PACK_KEY(pk, "stats"));
    P(msgpack_pack_map(pk, count));
    for (uint32_t i = 0; i < count; i++) {
        P(ordo_pack_cstr(pk, names[i]));
        P(msgpack_pack_int64(pk, values[i]));
    }
    return 0;
}

int ordo_reply_pack_ping(msgpack_packer *pk, ordo_str_t request_id, uint64_t head_position)
{
    P(s_head(pk, true, request_id, 1));
    P(ORDO_PACK_KEY(pk, "head_position"));
    return msgpack_pack_uint64(pk, head_position);
}

static int s_pack_map(msgpack_packer *pk, uint32_t partition, uint32_t partitions,
                      const ordo_partition_owner_t *owners)
{
    P(ORDO_PACK_KEY(pk, "partition"));
    P(msgpack_pack_uint32(pk, partition));
    P(ORDO_PACK_KEY(pk, "partitions"));
    P(msgpack_pack_uint32(pk, partitions));
    P(ORDO_PACK_KEY(pk, "map"));
    P(msgpack_pack_array(pk, partitions));
    for (uint32_t k = 0; k < partitions; k++) {
        const ordo_partition_owner_t *o = &owners[k];
        if (o->endpoint.len == 0) {
            P(msgpack_pack_nil(pk));
            continue;
        }
        P(msgpack_pack_map(pk, 3));
        P(ORDO_PACK_KEY(pk, "endpoint"));
        P(ordo_pack_str(pk, o->endpoint));
        P(ORDO_PACK_KEY(pk, "pub"));
        P(ordo_pack_str(pk, o->pub));
        P(ORDO_PACK_KEY(pk, "revision"));
        P(msgpack_pack_uint64(pk, o->revision));
    }
    return 0;
}

int ordo_reply_pack_partitions(msgpack_packer *pk, ordo_str_t request_id, uint32_t partition,
                               uint32_t partitions, const ordo_partition_owner_t *owners)
{
    P(s_head(pk, true, request_id, 3));
    return s_pack_map(pk, partition, partitions, owners);
}

int ordo_reply_pack_wrong_partition(msgpack_packer *pk, ordo_str_t request_id, const char *message,
                                    uint32_t partition, uint32_t partitions,
                                    const ordo_partition_owner_t *owners)
{
    P(s_head(pk, false, request_id, 1));
    P(ORDO_PACK_KEY(pk, "error"));
    P(msgpack_pack_map(pk, 5));
    P(ORDO_PACK_KEY(pk, "code"));
    P(ordo_pack_cstr(pk, ordo_code_name(ORDO_CODE_WRONG_PARTITION)));
    P(ORDO_PACK_KEY(pk, "message"));
    P(ordo_pack_cstr(pk, message));
    return s_pack_map(pk, partition, partitions, owners);
}

/* An endpoint as a ZeroMQ address: printable ASCII, no space (a NUL would
 * cut it short as a C string). */
static bool s_endpoint_ok(ordo_str_t e)
{
    for (uint32_t i = 0; i < e.len; i++)
        if ((unsigned char)e.ptr[i] <= 0x20 || (unsigned char)e.ptr[i] >= 0x7f)
            return false;
    return true;
}

/* One entry of a map: nil, or {endpoint, pub, revision}. */
static bool s_read_owner(ordo_mp_t *r, ordo_partition_owner_t *o)
{
    memset(o, 0, sizeof *o);
    if (ordo_mp_peek(r) == ORDO_MP_NIL)
        return ordo_mp_skip(r);
    uint32_t n;
    if (!ordo_mp_read_map(r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        int64_t rev;
        if (!ordo_mp_read_str(r, &k, &kl))
            return false;
        bool ok = true;
        if (ORDO_MP_KEY_IS(k, kl, "endpoint"))
            ok = ordo_mp_read_str(r, &o->endpoint.ptr, &o->endpoint.len) &&
                 o->endpoint.len >= 1 && o->endpoint.len <= ORDO_ENDPOINT_MAX &&
                 s_endpoint_ok(o->endpoint);
        else if (ORDO_MP_KEY_IS(k, kl, "pub"))
            ok = ordo_mp_read_str(r, &o->pub.ptr, &o->pub.len) &&
                 o->pub.len <= ORDO_ENDPOINT_MAX && s_endpoint_ok(o->pub);
        else if (ORDO_MP_KEY_IS(k, kl, "revision"))
            ok = ordo_mp_read_int(r, &rev) && rev >= 0 && (o->revision = (uint64_t)rev, true);
        else
            ok = ordo_mp_skip(r);
        if (!ok)
            return false;
    }
    return o->endpoint.len > 0;
}

int ordo_partition_map_read(const uint8_t *map, size_t map_len, uint32_t partitions,
                            ordo_partition_owner_t *owners)
{
    ordo_mp_t r;
    ordo_mp_init(&r, map, map_len);
    uint32_t n;
    if (!map || !ordo_mp_read_array(&r, &n) || n != partitions)
        return -1;
    for (uint32_t k = 0; k < n; k++)
        if (!s_read_owner(&r, &owners[k]))
            return -1;
    return 0;
}

/* The partition, the count and the map's span, from either a Partitions
 * reply or a wrong_partition error. */
static bool s_read_map_part(ordo_mp_t *r, const char *k, uint32_t kl, ordo_reply_t *reply,
                            bool *handled)
{
    int64_t v;
    *handled = true;
    if (ORDO_MP_KEY_IS(k, kl, "partition") || ORDO_MP_KEY_IS(k, kl, "partitions")) {
        if (!ordo_mp_read_int(r, &v) || v < 0 || v > ORDO_PARTITIONS_MAX)
            return false;
        if (k[kl - 1] == 's')
            reply->partitions = (uint32_t)v;
        else
            reply->partition = (uint32_t)v;
        return true;
    }
    if (ORDO_MP_KEY_IS(k, kl, "map")) {
        const uint8_t *start = r->p;
        if (ordo_mp_peek(r) != ORDO_MP_ARRAY || !ordo_mp_skip(r))
            return false;
        reply->map = start;
        reply->map_len = (size_t)(r->p - start);
        return true;
    }
    *handled = false;
    return true;
}

/* A map is whole when it has a count, an array and a partition in range. */
static bool s_map_whole(const ordo_reply_t *reply)
{
    bool any = reply->partitions || reply->map;
    return !any || (reply->partitions >= 1 && reply->map && reply->partition < reply->partitions);
}

/* Copies a string view into a fixed buffer, truncating. */
static void s_copy(char *dst, size_t size, const char *src, uint32_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static int s_read_error(ordo_mp_t *r, ordo_reply_t *reply)
{
    ordo_error_t *e = &reply->error;
    uint32_t n;
    if (!ordo_mp_read_map(r, &n))
        return -1;
    bool has_code = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *s;
        uint32_t kl, sl;
        if (!ordo_mp_read_str(r, &k, &kl))
            return -1;
        bool ok = true, handled;
        if (!s_read_map_part(r, k, kl, reply, &handled))
            return -1;
        if (handled)
            continue;
        if (ORDO_MP_KEY_IS(k, kl, "code") && ordo_mp_read_str(r, &s, &sl)) {
            e->code = ordo_code_from_name(s, sl);
            has_code = e->code != ORDO_CODE_OK;
        } else if (ORDO_MP_KEY_IS(k, kl, "message") && ordo_mp_read_str(r, &s, &sl)) {
            s_copy(e->message, sizeof e->message, s, sl);
        } else if (ORDO_MP_KEY_IS(k, kl, "field") && ordo_mp_read_str(r, &s, &sl)) {
            s_copy(e->field, sizeof e->field, s, sl);
        } else if (ORDO_MP_KEY_IS(k, kl, "status") && ordo_mp_read_str(r, &s, &sl)) {
            e->status = ordo_status_from_name(s, sl);
        } else if (ORDO_MP_KEY_IS(k, kl, "expected_version")) {
            ok = ordo_mp_read_int(r, &e->expected_version);
        } else if (ORDO_MP_KEY_IS(k, kl, "current_version") ||
                   ORDO_MP_KEY_IS(k, kl, "version")) {
            ok = ordo_mp_read_int(r, &e->current_version);
        } else {
            ok = ordo_mp_skip(r);
        }
        if (!ok)
            return -1;
    }
    return has_code ? 0 : -1;
}

/* Skips one value and returns its span. */
static bool s_span(ordo_mp_t *r, const uint8_t **ptr, size_t *len)
{
    const uint8_t *start = r->p;
    if (!ordo_mp_skip(r))
        return false;
    *ptr = start;
    *len = (size_t)(r->p - start);
    return true;
}

int ordo_reply_decode(const void *buf, size_t len, ordo_reply_t *reply)
{
    memset(reply, 0, sizeof *reply);
    if (ordo_mp_validate(buf, len, ORDO_NESTING_MAX + 2) != ORDO_MP_OK)
        return -1;
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return -1;
    bool has_ok = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return -1;
        bool ok = true, handled;
        if (!s_read_map_part(&r, k, kl, reply, &handled))
            return -1;
        if (handled)
            continue;
        if (ORDO_MP_KEY_IS(k, kl, "ok")) {
            ok = has_ok = ordo_mp_read_bool(&r, &reply->ok);
        } else if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            ok = ordo_mp_read_str(&r, &reply->request_id.ptr, &reply->request_id.len);
        } else if (ORDO_MP_KEY_IS(k, kl, "error")) {
            ok = s_read_error(&r, reply) == 0;
        } else if (ORDO_MP_KEY_IS(k, kl, "order_id")) {
            ok = ordo_mp_read_str(&r, &reply->order_id.ptr, &reply->order_id.len);
        } else if (ORDO_MP_KEY_IS(k, kl, "version")) {
            ok = ordo_mp_read_int(&r, &reply->version);
        } else if (ORDO_MP_KEY_IS(k, kl, "position")) {
            ok = ordo_mp_read_int(&r, &reply->position);
        } else if (ORDO_MP_KEY_IS(k, kl, "duplicate")) {
            ok = ordo_mp_read_bool(&r, &reply->duplicate);
        } else if (ORDO_MP_KEY_IS(k, kl, "event")) {
            ok = ordo_mp_peek(&r) == ORDO_MP_MAP && s_span(&r, &reply->event, &reply->event_len);
        } else if (ORDO_MP_KEY_IS(k, kl, "order")) {
            ok = ordo_mp_peek(&r) == ORDO_MP_MAP && s_span(&r, &reply->order, &reply->order_len);
        } else if (ORDO_MP_KEY_IS(k, kl, "events")) {
            ok = ordo_mp_peek(&r) == ORDO_MP_ARRAY &&
                 s_span(&r, &reply->events, &reply->events_len);
        } else if (ORDO_MP_KEY_IS(k, kl, "stats")) {
            ok = ordo_mp_peek(&r) == ORDO_MP_MAP && s_span(&r, &reply->stats, &reply->stats_len);
        } else if (ORDO_MP_KEY_IS(k, kl, "next_position")) {
            ok = ordo_mp_read_int(&r, &reply->next_position);
        } else if (ORDO_MP_KEY_IS(k, kl, "head_position")) {
            ok = ordo_mp_read_int(&r, &reply->head_position);
        } else {
            ok = ordo_mp_skip(&r);
        }
        if (!ok)
            return -1;
    }
    if (!has_ok || (!reply->ok && reply->error.code == ORDO_CODE_OK) || !s_map_whole(reply))
        return -1;
    return 0;
}
