/* The log form of an event: what one record in a log frame holds. It is
 * compact because every event is written once and replayed many times:
 * fewer bytes to compress, decompress and parse, and fewer on disk.
 *
 *   [ type      uint 1..7 (ordo_event_type_t)
 *     order_id  S
 *     version   uint
 *     timestamp int 64 (microseconds since the Unix epoch; always the
 *               9-byte form, which ordo_event_record_stamp overwrites)
 *     schema    uint
 *     data      [present-bits uint, then each present field in bit order:
 *                user_id int, restaurant_id int,
 *                items [[sku S, name S, qty int, price_cents int], ...],
 *                delivery_address S, total_cents int, estimated_minutes int,
 *                courier_id int, reason S, previous_status uint,
 *                currency S (OrderCreated schema 2)]
 *     request   S | nil | false
 *     meta      { key str: S | int }
 *     hash      bin 32 (PROTOCOL.md 1.1; always the 34-byte bin 8 form at
 *               the record's end, which ordo_event_record_stamp_hash
 *               overwrites; records written before 1.1 end after meta) ]
 *
 * S is a str, or a fixext16 of type 1 holding the 16 bytes of a UUID whose
 * text was canonical lower-case (36 chars), which decodes back to the same
 * text; at most 20 per record are packed so (ordo_event_t.text holds 20). The position is the
 * record's place in the log and the event id is derived (ordo_event_id), so neither is stored.
 * `request` nil or a string means the meta had the shape decide() gives it: the client's keys, then
 * "command" (the command of this event type), then "request_id" (the
 * string, when not nil); only the client's keys are in `meta`. `request`
 * false means `meta` is the whole meta map, as is. */
#include "ordo_codec.h"
#include "ordo_codec_internal.h"
#include "ordo_uuid.h"

#include <string.h>

#define S_UUID_EXT 1

/* How many strings of one record may be packed as UUIDs: the decoder
 * rebuilds their text in ordo_event_t.text, which holds this many. */
#define S_UUIDS_MAX (ORDO_EVENT_TEXT_MAX / ORDO_UUID_TEXT_LEN)

/* Packs a string, as 16 bytes if it is a canonical lower-case UUID and
 * the record has room left for one more (*uuids counts them). */
static int s_pack_s(msgpack_packer *pk, ordo_str_t s, int *uuids)
{
    uint8_t uuid[16];
    if (s.len == ORDO_UUID_TEXT_LEN && *uuids < S_UUIDS_MAX &&
        ordo_uuid_parse(s.ptr, s.len, true, uuid)) {
        (*uuids)++;
        P(msgpack_pack_ext(pk, 16, S_UUID_EXT));
        return msgpack_pack_ext_body(pk, uuid, 16);
    }
    return ordo_pack_str(pk, s);
}

/* Reads an S into *out; UUIDs are rebuilt as text in ev->text. */
static bool s_read_s(ordo_mp_t *r, ordo_event_t *ev, size_t *text_used, ordo_str_t *out)
{
    if (ordo_mp_read_str(r, &out->ptr, &out->len))
        return true;
    int8_t type;
    const uint8_t *p;
    uint32_t n;
    if (!ordo_mp_read_ext(r, &type, &p, &n) || type != S_UUID_EXT || n != 16 ||
        *text_used + ORDO_UUID_TEXT_LEN > sizeof ev->text)
        return false;
    char *dst = ev->text + *text_used;
    ordo_uuid_format(p, dst);
    *text_used += ORDO_UUID_TEXT_LEN;
    *out = (ordo_str_t){dst, ORDO_UUID_TEXT_LEN};
    return true;
}

static bool s_is_key(ordo_str_t k, const char *lit, uint32_t n)
{
    return k.len == n && memcmp(k.ptr, lit, n) == 0;
}

/* How many trailing meta entries decide() added (command, request_id), or
 * -1 if the meta does not have that shape. */
static int s_meta_tail(const ordo_event_t *ev, ordo_str_t *request_id)
{
    const ordo_meta_t *m = &ev->meta;
    const char *command = ordo_request_type_name(ordo_request_type_for(ev->type));
    uint32_t n = m->count, tail = 0;
    *request_id = (ordo_str_t){0};
    if (n >= 1 && !m->entries[n - 1].is_int && s_is_key(m->entries[n - 1].key, "request_id", 10)) {
        *request_id = m->entries[n - 1].sval;
        if (request_id->len == 0)
            return -1;
        tail = 1;
    }
    if (n < tail + 1)
        return -1;
    const ordo_meta_entry_t *c = &m->entries[n - tail - 1];
    if (c->is_int || !s_is_key(c->key, "command", 7) || c->sval.len != strlen(command) ||
        memcmp(c->sval.ptr, command, c->sval.len) != 0)
        return -1;
    tail++;
    for (uint32_t i = 0; i + tail < n; i++)
        if (s_is_key(m->entries[i].key, "command", 7) ||
            s_is_key(m->entries[i].key, "request_id", 10))
            return -1;
    return (int)tail;
}

static int s_pack_meta_entries(msgpack_packer *pk, const ordo_meta_t *m, uint32_t count, int *uuids)
{
    P(msgpack_pack_map(pk, count));
    for (uint32_t i = 0; i < count; i++) {
        const ordo_meta_entry_t *e = &m->entries[i];
        P(ordo_pack_str(pk, e->key));
        P(e->is_int ? msgpack_pack_int64(pk, e->ival) : s_pack_s(pk, e->sval, uuids));
    }
    return 0;
}

static int s_pack_data(msgpack_packer *pk, const ordo_data_t *d, int *uuids)
{
    uint32_t present = d->present & ORDO_F_ALL_;
    P(msgpack_pack_array(pk, 1 + (size_t)__builtin_popcount(present)));
    P(msgpack_pack_uint32(pk, present));
    if (present & ORDO_F_USER_ID)
        P(msgpack_pack_int64(pk, d->user_id));
    if (present & ORDO_F_RESTAURANT_ID)
        P(msgpack_pack_int64(pk, d->restaurant_id));
    if (present & ORDO_F_ITEMS) {
        P(msgpack_pack_array(pk, d->n_items));
        for (uint32_t i = 0; i < d->n_items; i++) {
            P(msgpack_pack_array(pk, 4));
            P(s_pack_s(pk, d->items[i].sku, uuids));
            P(s_pack_s(pk, d->items[i].name, uuids));
            P(msgpack_pack_int64(pk, d->items[i].qty));
            P(msgpack_pack_int64(pk, d->items[i].price_cents));
        }
    }
    if (present & ORDO_F_DELIVERY_ADDRESS)
        P(s_pack_s(pk, d->delivery_address, uuids));
    if (present & ORDO_F_TOTAL_CENTS)
        P(msgpack_pack_int64(pk, d->total_cents));
    if (present & ORDO_F_ESTIMATED_MINUTES)
        P(msgpack_pack_int64(pk, d->estimated_minutes));
    if (present & ORDO_F_COURIER_ID)
        P(msgpack_pack_int64(pk, d->courier_id));
    if (present & ORDO_F_REASON)
        P(s_pack_s(pk, d->reason, uuids));
    if (present & ORDO_F_PREVIOUS_STATUS)
        P(msgpack_pack_uint32(pk, (uint32_t)d->previous_status));
    if (present & ORDO_F_CURRENCY)
        P(s_pack_s(pk, d->currency, uuids));
    return 0;
}

int ordo_event_pack_record(msgpack_packer *pk, const ordo_event_t *ev)
{
    ordo_str_t request_id;
    int tail = s_meta_tail(ev, &request_id), uuids = 0;
    P(msgpack_pack_array(pk, ev->has_hash ? 9 : 8));
    P(msgpack_pack_uint32(pk, (uint32_t)ev->type));
    P(s_pack_s(pk, ev->order_id, &uuids));
    P(msgpack_pack_uint32(pk, ev->version));
    /* Always 9 bytes (int 64), so the log writer can stamp it in place. */
    P(msgpack_pack_fix_int64(pk, ev->timestamp_us));
    P(msgpack_pack_uint32(pk, ev->schema));
    P(s_pack_data(pk, &ev->data, &uuids));
    if (tail < 0) {
        P(msgpack_pack_false(pk));
        P(s_pack_meta_entries(pk, &ev->meta, ev->meta.count, &uuids));
    } else {
        P(request_id.len ? s_pack_s(pk, request_id, &uuids) : msgpack_pack_nil(pk));
        P(s_pack_meta_entries(pk, &ev->meta, ev->meta.count - (uint32_t)tail, &uuids));
    }
    if (!ev->has_hash)
        return 0;
    P(msgpack_pack_bin(pk, 32)); /* bin 8: 0xc4 0x20, then the 32 bytes */
    return msgpack_pack_bin_body(pk, ev->hash, 32);
}

static bool s_read_data(ordo_mp_t *r, ordo_event_t *ev, size_t *used)
{
    ordo_data_t *d = &ev->data;
    uint32_t n;
    uint64_t present, status;
    memset(d, 0, offsetof(ordo_data_t, items));
    if (!ordo_mp_read_array(r, &n) || !ordo_mp_read_uint(r, &present) ||
        (present & ~(uint64_t)ORDO_F_ALL_) || n != 1 + (uint32_t)__builtin_popcountll(present))
        return false;
    d->present = (uint32_t)present;
    if ((present & ORDO_F_USER_ID) && !ordo_mp_read_int(r, &d->user_id))
        return false;
    if ((present & ORDO_F_RESTAURANT_ID) && !ordo_mp_read_int(r, &d->restaurant_id))
        return false;
    if (present & ORDO_F_ITEMS) {
        uint32_t items, fields;
        if (!ordo_mp_read_array(r, &items) || items > ORDO_ITEMS_MAX)
            return false;
        for (uint32_t i = 0; i < items; i++) {
            ordo_item_t *it = &d->items[i];
            if (!ordo_mp_read_array(r, &fields) || fields != 4 ||
                !s_read_s(r, ev, used, &it->sku) || !s_read_s(r, ev, used, &it->name) ||
                !ordo_mp_read_int(r, &it->qty) || !ordo_mp_read_int(r, &it->price_cents))
                return false;
        }
        d->n_items = items;
    }
    if ((present & ORDO_F_DELIVERY_ADDRESS) && !s_read_s(r, ev, used, &d->delivery_address))
        return false;
    if ((present & ORDO_F_TOTAL_CENTS) && !ordo_mp_read_int(r, &d->total_cents))
        return false;
    if ((present & ORDO_F_ESTIMATED_MINUTES) && !ordo_mp_read_int(r, &d->estimated_minutes))
        return false;
    if ((present & ORDO_F_COURIER_ID) && !ordo_mp_read_int(r, &d->courier_id))
        return false;
    if ((present & ORDO_F_REASON) && !s_read_s(r, ev, used, &d->reason))
        return false;
    if (present & ORDO_F_PREVIOUS_STATUS) {
        if (!ordo_mp_read_uint(r, &status) || status == ORDO_STATUS_NONE ||
            status >= ORDO_STATUS_COUNT_)
            return false;
        d->previous_status = (ordo_status_t)status;
    }
    if ((present & ORDO_F_CURRENCY) && !s_read_s(r, ev, used, &d->currency))
        return false;
    return true;
}

static bool s_read_meta(ordo_mp_t *r, ordo_event_t *ev, size_t *used, uint32_t room)
{
    ordo_meta_t *m = &ev->meta;
    uint32_t n;
    if (!ordo_mp_read_map(r, &n) || n > room)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        ordo_meta_entry_t *e = &m->entries[i];
        if (!ordo_mp_read_str(r, &e->key.ptr, &e->key.len))
            return false;
        e->is_int = ordo_mp_read_int(r, &e->ival);
        if (!e->is_int && !s_read_s(r, ev, used, &e->sval))
            return false;
    }
    m->count = n;
    return true;
}

/* Walks a meta map as s_read_meta reads it (the same checks, the room
 * its ids would take in ev->text included), keeping nothing. */
static bool s_skip_meta(ordo_mp_t *r, const ordo_event_t *ev, size_t *used, uint32_t room)
{
    uint32_t n;
    if (!ordo_mp_read_map(r, &n) || n > room)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *sv;
        uint32_t kl, sl, en;
        int64_t iv;
        int8_t type;
        const uint8_t *p;
        if (!ordo_mp_read_str(r, &k, &kl))
            return false;
        if (ordo_mp_read_int(r, &iv) || ordo_mp_read_str(r, &sv, &sl))
            continue;
        if (!ordo_mp_read_ext(r, &type, &p, &en) || type != S_UUID_EXT || en != 16 ||
            *used + ORDO_UUID_TEXT_LEN > sizeof ev->text)
            return false;
        *used += ORDO_UUID_TEXT_LEN;
    }
    return true;
}

/* Log records are covered by the frame's CRC32C and were written by us, but
 * are still read with bounds-checked readers only: a damaged or hostile
 * file gives -1, never a read out of bounds. */
static int s_decode_record(const void *buf, size_t len, uint64_t position, ordo_event_t *ev,
                           bool whole)
{
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    uint32_t n;
    uint64_t type, version, schema;
    size_t used = 0;
    if (!ordo_mp_read_array(&r, &n) || (n != 8 && n != 9) || !ordo_mp_read_uint(&r, &type) ||
        type == ORDO_EVT_NONE || type >= ORDO_EVT_COUNT_ ||
        !s_read_s(&r, ev, &used, &ev->order_id) || !ordo_mp_read_uint(&r, &version) ||
        version < 1 || version > UINT32_MAX || !ordo_mp_read_int(&r, &ev->timestamp_us) ||
        !ordo_mp_read_uint(&r, &schema) || schema > UINT32_MAX || !s_read_data(&r, ev, &used))
        return -1;
    ev->type = (ordo_event_type_t)type;
    ordo_str_t request_id = {0};
    bool verbatim = false, has_request = false;
    if (ordo_mp_read_bool(&r, &verbatim)) {
        if (verbatim)
            return -1; /* true is not a valid marker */
        verbatim = true;
    } else if (!ordo_mp_read_nil(&r)) {
        if (!s_read_s(&r, ev, &used, &request_id) || request_id.len == 0)
            return -1;
        has_request = true;
    }
    uint32_t tail = verbatim ? 0 : 1 + (has_request ? 1 : 0);
    /* Apply keeps the request id only: the meta map is walked, not kept
     * (the verbatim form, with the id inside it, is read whole). */
    bool ok = whole || verbatim ? s_read_meta(&r, ev, &used, ORDO_META_MAX - tail)
                                : s_skip_meta(&r, ev, &used, ORDO_META_MAX - tail);
    ev->has_hash = n == 9;
    if (ok && n == 9) {
        const uint8_t *h;
        uint32_t hl;
        ok = ordo_mp_read_bin(&r, &h, &hl) && hl == 32;
        if (ok)
            memcpy(ev->hash, h, 32);
    }
    if (!ok || r.p != r.end)
        return -1;
    if (!whole && !verbatim)
        ev->meta.count = 0;
    if (!verbatim) {
        if (whole) {
            const char *command = ordo_request_type_name(ordo_request_type_for(ev->type));
            ev->meta.entries[ev->meta.count++] = (ordo_meta_entry_t){
                .key = ORDO_STR("command"), .sval = {command, (uint32_t)strlen(command)}};
        }
        if (has_request)
            ev->meta.entries[ev->meta.count++] =
                (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = request_id};
    }
    ev->position = position;
    ev->version = (uint32_t)version;
    ev->schema = (uint32_t)schema;
    if (ordo_event_upcast(ev) != 0) /* stored as it was written; read as of now */
        return -1;
    if (whole)
        ordo_event_id(ev->order_id.ptr, ev->order_id.len, ev->version, ev->timestamp_us,
                      ev->event_id);
    return 0;
}

int ordo_event_decode_record(const void *buf, size_t len, uint64_t position, ordo_event_t *ev)
{
    return s_decode_record(buf, len, position, ev, true);
}

int ordo_event_decode_record_for_apply(const void *buf, size_t len, uint64_t position,
                                       ordo_event_t *ev)
{
    return s_decode_record(buf, len, position, ev, false);
}

int ordo_event_record_stamp(void *rec, size_t len, int64_t timestamp_us)
{
    ordo_mp_t r;
    ordo_mp_init(&r, rec, len);
    uint32_t n;
    uint64_t u;
    const char *s;
    uint32_t sl;
    int8_t et;
    const uint8_t *ep;
    if (!ordo_mp_read_array(&r, &n) || (n != 8 && n != 9) || !ordo_mp_read_uint(&r, &u) ||
        !(ordo_mp_read_str(&r, &s, &sl) || ordo_mp_read_ext(&r, &et, &ep, &sl)) ||
        !ordo_mp_read_uint(&r, &u) || r.end - r.p < 9 || r.p[0] != 0xd3)
        return -1;
    uint8_t *at = (uint8_t *)r.p + 1;
    uint64_t v = (uint64_t)timestamp_us;
    for (int i = 7; i >= 0; i--, v >>= 8)
        at[i] = (uint8_t)v;
    return 0;
}

int ordo_event_record_stamp_hash(void *rec, size_t len, const uint8_t hash[32])
{
    uint8_t *p = rec;
    /* A record with a hash is a 9-element array (fixarray 0x99) ending in
     * the 34-byte bin 8 that ordo_event_pack_record wrote. */
    if (len < 1 + 34 || p[0] != 0x99 || p[len - 34] != 0xc4 || p[len - 33] != 32)
        return -1;
    memcpy(p + len - 32, hash, 32);
    return 0;
}
