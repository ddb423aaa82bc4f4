/* The one MessagePack codec of Ordo, used by the engine, the client library,
 * the log and the snapshots. It writes with msgpack-c's packer and reads with
 * ordo_mp (a validating pull reader: msgpack-c's unpacker trusts element
 * counts and allocates from them, and builds a tree we would only walk once).
 *
 * Shapes (PROTOCOL.md is the contract for everything that crosses a socket):
 *   request        map  {type, request_id?, order_id, expected_version?, data?, meta?, ...}
 *   event (wire)   map  {position, event_id, order_id, version, type, timestamp_us, schema, data,
 * meta} event (log)    array [event_id bin16, order_id, version, type code, timestamp_us, schema,
 * data, meta] (position is implied by the record's place in the log) order (wire)   map  {order_id,
 * version, status, ..., cancel_reason?} order (snapshot) array, see ordo_codec_order.c reply map
 * {ok, request_id?, ...} Decoded views (ordo_str_t) point into the input buffer, which must outlive
 * them. */
#ifndef ORDO_CODEC_H
#define ORDO_CODEC_H

#include "ordo_mp.h"
#include "ordo_order.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ordo_limits.h" /* ORDO_BODY_MAX, ORDO_NESTING_MAX */

/* ---- requests ---------------------------------------------------------- */

/* Decodes and validates a request body (PROTOCOL.md "Precise rules" 1-3).
 * Returns 0, or -1 with *err set (bad_request with `field`, unknown_type).
 * req->request_id is set whenever the body was a map with a valid one, so
 * error replies can echo it. Defaults are filled in: expected_version -1,
 * from_version 1, from_position 1, limit (per type, clamped to its max). */
int ordo_request_decode(const void *buf, size_t len, ordo_request_t *req, ordo_error_t *err);

/* What the engine's front end needs of a request before a shard decodes
 * it: the order it concerns (to route it) and its type (to bound large
 * queries). */
typedef struct {
    bool has_order_id;
    ordo_str_t order_id;      /* when has_order_id */
    ordo_request_type_t type; /* ORDO_REQ_NONE if unknown */
    int64_t limit;            /* the `limit` given, -1 if none or not an integer */
    ordo_str_t request_id;    /* a string of 1 to 128 bytes of valid UTF-8, else len 0 */
} ordo_request_peek_t;

/* Reads the top-level `order_id`, `type`, `limit` and `request_id` (for
 * a reply the front end must make itself) of a request body
 * without decoding the rest, as ordo_request_decode reads them: the last
 * key counts, and nil or a value of another type means none. False
 * (and *peek empty) if the body is not a map or is malformed before its
 * end; the full decode then reports what is wrong. Safe on any bytes. */
bool ordo_request_peek(const void *buf, size_t len, ordo_request_peek_t *peek);

/* Encodes a request (what a client sends). Fields at their defaults are left
 * out. Returns 0 or -1 (out of memory). */
int ordo_request_pack(msgpack_packer *pk, const ordo_request_t *req);

/* Resets a request to "nothing given": type NONE, expected_version -1, ... */
void ordo_request_init(ordo_request_t *req);

/* ---- events ------------------------------------------------------------ */

/* Wire form (map), as in replies and on PUB: the 9 keys position,
 * event_id, order_id, version, type, timestamp_us, schema, data, meta in
 * that order, data and meta (and the maps inside) with their keys in
 * bytewise order: PROTOCOL.md 1.1's canonical form, over which the hash
 * chain is computed; then `hash` when the event has one. */
int ordo_event_pack(msgpack_packer *pk, const ordo_event_t *ev);

/* The `hash` key and its 64 hex digits, as ordo_event_pack ends an event
 * that has one (the writer adds it after the 9 keys it hashed). */
int ordo_event_pack_hash(msgpack_packer *pk, const uint8_t hash[32]);

/* The wire form in three parts, for the log writer, which alone knows an
 * event's position and timestamp: a shard packs the parts that do not
 * depend on them ("mid": order_id, version, type; "rest": schema, data,
 * meta), and the writer joins them. The bytes are those of
 * ordo_event_pack for an event without a hash: the 9 keys the writer
 * hashes before it adds `hash` (ordo_event_pack_hash) and counts it in the
 * map's header. */
int ordo_event_pack_mid(msgpack_packer *pk, const ordo_event_t *ev);
int ordo_event_pack_rest(msgpack_packer *pk, const ordo_event_t *ev);
int ordo_event_pack_joined(msgpack_packer *pk, uint64_t position, const uint8_t event_id[16],
                           int64_t timestamp_us, const void *mid, size_t mid_len, const void *rest,
                           size_t rest_len);

/* Reads one wire-form event at the cursor. Returns 0, or -1 if it is not a
 * well-formed event record (unknown keys are ignored). Input must have been
 * validated by ordo_mp_validate() or come from ordo_reply_decode(). */
int ordo_event_read(ordo_mp_t *r, ordo_event_t *ev);

/* Validates and decodes a whole buffer holding one wire-form event. */
int ordo_event_decode(const void *buf, size_t len, ordo_event_t *ev);

/* Log form (compact array, no position). */
int ordo_event_pack_record(msgpack_packer *pk, const ordo_event_t *ev);

/* Overwrites the timestamp of a record packed by ordo_event_pack_record
 * (the log writer stamps events as it orders them). 0, or -1 if `rec` is
 * not such a record. */
int ordo_event_record_stamp(void *rec, size_t len, int64_t timestamp_us);

/* Overwrites the hash of a record packed by ordo_event_pack_record from an
 * event with has_hash set (the writer computes it). 0, or -1 if `rec` is
 * not such a record. */
int ordo_event_record_stamp_hash(void *rec, size_t len, const uint8_t hash[32]);

/* Validates and decodes one log record; `position` comes from the log. */
int ordo_event_decode_record(const void *buf, size_t len, uint64_t position, ordo_event_t *ev);

/* The same for applying it (ordo_apply): what an order keeps only. The
 * record is still checked whole (the meta map is walked, bounds-checked,
 * not decoded), but `meta` holds only the request_id (if any), and
 * `event_id` is left unset. For replay and the engine's own apply. */
int ordo_event_decode_record_for_apply(const void *buf, size_t len, uint64_t position,
                                       ordo_event_t *ev);

/* ---- order state ------------------------------------------------------- */

/* Wire form (the `order` of a GetOrder reply). */
int ordo_order_pack(msgpack_packer *pk, const ordo_order_t *order);

/* Reads a wire-form order into *order (zeroed or cleared first; it gets
 * owned copies). Returns 0 or -1. */
int ordo_order_read(ordo_mp_t *r, ordo_order_t *order);

/* Snapshot form: everything needed to rebuild the actor, including the
 * request ids it accepted. */
int ordo_order_pack_snapshot(msgpack_packer *pk, const ordo_order_t *order);

/* Validates and decodes a snapshot record into *order (zeroed or cleared;
 * gets owned copies). Returns 0 or -1. */
int ordo_order_decode_snapshot(const void *buf, size_t len, ordo_order_t *order);

/* ---- replies ----------------------------------------------------------- */

/* {ok:false, request_id?, error:{code, message, details}} */
int ordo_reply_pack_error(msgpack_packer *pk, ordo_str_t request_id, const ordo_error_t *err);

/* {ok:true, request_id?, order_id, version, position, duplicate, event} */
int ordo_reply_pack_command(msgpack_packer *pk, ordo_str_t request_id, const ordo_event_t *ev,
                            bool duplicate);

/* The same reply up to the `event` key: the caller then appends the event,
 * already packed once (e.g. the bytes it publishes). */
int ordo_reply_pack_command_head(msgpack_packer *pk, ordo_str_t request_id, const ordo_event_t *ev,
                                 bool duplicate);

/* The same from its parts (the log writer has no ordo_event_t). */
int ordo_reply_pack_command_head_of(msgpack_packer *pk, ordo_str_t request_id, ordo_str_t order_id,
                                    uint32_t version, uint64_t position, bool duplicate);

/* {ok:true, request_id?, order} */
int ordo_reply_pack_order(msgpack_packer *pk, ordo_str_t request_id, const ordo_order_t *order);

/* {ok:true, request_id?, order_id, events:[...]}: packs up to the events
 * array header; the caller then packs `n_events` events. */
int ordo_reply_pack_history_head(msgpack_packer *pk, ordo_str_t request_id, ordo_str_t order_id,
                                 uint32_t n_events);

/* {ok:true, request_id?, next_position, head_position, events:[...]}: packs
 * up to the events array header; the caller then packs `n_events` events. */
int ordo_reply_pack_read_all_head(msgpack_packer *pk, ordo_str_t request_id, uint64_t next_position,
                                  uint64_t head_position, uint32_t n_events);

/* {ok:true, request_id?, stats:{name: value, ...}} */
int ordo_reply_pack_stats(msgpack_packer *pk, ordo_str_t request_id, const char *const *names,
                          const int64_t *values, uint32_t count);

/* {ok:true, request_id?, head_position} */
int ordo_reply_pack_ping(msgpack_packer *pk, ordo_str_t request_id, uint64_t head_position);

/* ---- the partition map (docs/protocol.md's cluster extension) ---------- */

/* Who owns a partition: the engine's request and PUB endpoints and the
 * lease revision it owns it under (a later owner has a higher one).
 * endpoint.len 0: no owner known (nil on the wire). */
typedef struct {
    ordo_str_t endpoint;
    ordo_str_t pub;
    uint64_t revision;
} ordo_partition_owner_t;

#define ORDO_ENDPOINT_MAX 255 /* bytes of an endpoint in the map */

/* {ok:true, request_id?, partition, partitions, map:[owner|nil, ...]}: the
 * answer to Partitions; `partition` is the answering engine's. */
int ordo_reply_pack_partitions(msgpack_packer *pk, ordo_str_t request_id, uint32_t partition,
                               uint32_t partitions, const ordo_partition_owner_t *owners);

/* {ok:false, request_id?, error:{code: "wrong_partition", message,
 * partition, partitions, map}}: the order's partition is another
 * engine's; `partition` is the order's. */
int ordo_reply_pack_wrong_partition(msgpack_packer *pk, ordo_str_t request_id, const char *message,
                                    uint32_t partition, uint32_t partitions,
                                    const ordo_partition_owner_t *owners);

/* Reads a map (`map`, `map_len`: the array as in a decoded reply) of
 * exactly `partitions` entries into owners[partitions] (views into the
 * bytes). Each entry is nil or {endpoint: str of 1..255 bytes, pub: str of
 * 0..255, revision: int >= 0}, the endpoints printable ASCII without
 * spaces; other keys are skipped. 0, or -1 if the
 * map is not that. */
int ordo_partition_map_read(const uint8_t *map, size_t map_len, uint32_t partitions,
                            ordo_partition_owner_t *owners);

/* A decoded reply. Payloads stay encoded: `event`, `order`, `events` and
 * `stats` point at their MessagePack bytes, to be read with the functions
 * above (ordo_event_read over `events`, after ordo_mp_read_array). */
typedef struct {
    bool ok;
    ordo_str_t request_id;
    ordo_error_t error; /* when !ok */
    /* command replies */
    ordo_str_t order_id;
    int64_t version;
    int64_t position;
    bool duplicate;
    /* encoded payloads (len 0: absent) */
    const uint8_t *event;
    size_t event_len;
    const uint8_t *order;
    size_t order_len;
    const uint8_t *events; /* the whole array, header included */
    size_t events_len;
    const uint8_t *stats;
    size_t stats_len;
    /* ReadAll / Ping */
    int64_t next_position;
    int64_t head_position;
    /* Partitions, or a wrong_partition error's details: the partition
     * (the engine's, or the order's), the count (0: no map) and the map's
     * array, to read with ordo_partition_map_read */
    uint32_t partition;
    uint32_t partitions;
    const uint8_t *map;
    size_t map_len;
} ordo_reply_t;

/* Validates and decodes a reply. Returns 0, or -1 if it is not a reply. */
int ordo_reply_decode(const void *buf, size_t len, ordo_reply_t *reply);

/* ---- small packing helpers shared by the codec files ------------------- */

/* A str of up to 63 bytes goes out in one write (header and body), as
 * msgpack-c would encode it; longer ones in two. */
static inline int ordo_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    char b[66];
    if (n < 32) {
        b[0] = (char)(0xa0 | n);
        __builtin_memcpy(b + 1, s, n);
        return pk->callback(pk->data, b, n + 1);
    }
    if (n < 64) {
        b[0] = (char)0xd9;
        b[1] = (char)n;
        __builtin_memcpy(b + 2, s, n);
        return pk->callback(pk->data, b, n + 2);
    }
    return msgpack_pack_str_with_body(pk, s, n);
}

static inline int ordo_pack_cstr(msgpack_packer *pk, const char *s)
{
    return ordo_pack_strn(pk, s, __builtin_strlen(s));
}

static inline int ordo_pack_str(msgpack_packer *pk, ordo_str_t s)
{
    return ordo_pack_strn(pk, s.ptr, s.len);
}

/* A constant key (a string literal of under 32 bytes) in one write. */
#define ORDO_PACK_KEY(pk, lit)                                                                     \
    ((void)sizeof(char[sizeof(lit) - 1 < 32 ? 1 : -1]),                                            \
     ordo_pack_strn((pk), (lit), sizeof(lit) - 1))

#endif
