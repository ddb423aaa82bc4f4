/* Event records: the wire form (a map, in replies and on PUB) and the log
 * form (a compact array; the log supplies the position). Both share the
 * `data` and `meta` maps, packed from ordo_data_t's present bits in the
 * order PROTOCOL.md lists them. */
#include "ordo_codec.h"
#include "ordo_codec_internal.h"
#include "ordo_hex.h"
#include "ordo_uuid.h"

#include <stddef.h>
#include <string.h>

int ordo_data_pack(msgpack_packer *pk, const ordo_data_t *d)
{
    /* Keys in bytewise order: the canonical form the hash chain is
     * computed over (PROTOCOL.md 1.1). */
    P(msgpack_pack_map(pk, (size_t)__builtin_popcount(d->present & ORDO_F_ALL_)));
    if (d->present & ORDO_F_COURIER_ID) {
        P(ORDO_PACK_KEY(pk, "courier_id"));
        P(msgpack_pack_int64(pk, d->courier_id));
    }
    if (d->present & ORDO_F_CURRENCY) {
        P(ORDO_PACK_KEY(pk, "currency"));
        P(ordo_pack_str(pk, d->currency));
    }
    if (d->present & ORDO_F_DELIVERY_ADDRESS) {
        P(ORDO_PACK_KEY(pk, "delivery_address"));
        P(ordo_pack_str(pk, d->delivery_address));
    }
    if (d->present & ORDO_F_ESTIMATED_MINUTES) {
        P(ORDO_PACK_KEY(pk, "estimated_minutes"));
        P(msgpack_pack_int64(pk, d->estimated_minutes));
    }
    if (d->present & ORDO_F_ITEMS) {
        P(ORDO_PACK_KEY(pk, "items"));
        P(ordo_items_pack(pk, d->items, d->n_items));
    }
    if (d->present & ORDO_F_PREVIOUS_STATUS) {
        P(ORDO_PACK_KEY(pk, "previous_status"));
        P(ordo_pack_cstr(pk, ordo_status_name(d->previous_status)));
    }
    if (d->present & ORDO_F_REASON) {
        P(ORDO_PACK_KEY(pk, "reason"));
        P(ordo_pack_str(pk, d->reason));
    }
    if (d->present & ORDO_F_RESTAURANT_ID) {
        P(ORDO_PACK_KEY(pk, "restaurant_id"));
        P(msgpack_pack_int64(pk, d->restaurant_id));
    }
    if (d->present & ORDO_F_TOTAL_CENTS) {
        P(ORDO_PACK_KEY(pk, "total_cents"));
        P(msgpack_pack_int64(pk, d->total_cents));
    }
    if (d->present & ORDO_F_USER_ID) {
        P(ORDO_PACK_KEY(pk, "user_id"));
        P(msgpack_pack_int64(pk, d->user_id));
    }
    return 0;
}

int ordo_items_pack(msgpack_packer *pk, const ordo_item_t *items, uint32_t n)
{
    P(msgpack_pack_array(pk, n));
    for (uint32_t i = 0; i < n; i++) {
        P(msgpack_pack_map(pk, 4)); /* keys in bytewise order, as data's */
        P(ORDO_PACK_KEY(pk, "name"));
        P(ordo_pack_str(pk, items[i].name));
        P(ORDO_PACK_KEY(pk, "price_cents"));
        P(msgpack_pack_int64(pk, items[i].price_cents));
        P(ORDO_PACK_KEY(pk, "qty"));
        P(msgpack_pack_int64(pk, items[i].qty));
        P(ORDO_PACK_KEY(pk, "sku"));
        P(ordo_pack_str(pk, items[i].sku));
    }
    return 0;
}

/* Bytewise order of two keys (a shorter prefix first). */
static int s_key_cmp(ordo_str_t a, ordo_str_t b)
{
    int c = memcmp(a.ptr, b.ptr, a.len < b.len ? a.len : b.len);
    return c ? c : (a.len > b.len) - (a.len < b.len);
}

int ordo_meta_pack(msgpack_packer *pk, const ordo_meta_t *m)
{
    /* Keys in bytewise order (a stable insertion sort of at most
     * ORDO_META_MAX entries): the canonical form the hash is taken over. */
    uint8_t order[ORDO_META_MAX];
    uint32_t n = m->count < ORDO_META_MAX ? m->count : ORDO_META_MAX;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t j = i;
        while (j > 0 && s_key_cmp(m->entries[order[j - 1]].key, m->entries[i].key) > 0) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    P(msgpack_pack_map(pk, n));
    for (uint32_t i = 0; i < n; i++) {
        const ordo_meta_entry_t *e = &m->entries[order[i]];
        P(ordo_pack_str(pk, e->key));
        if (e->is_int)
            P(msgpack_pack_int64(pk, e->ival));
        else
            P(ordo_pack_str(pk, e->sval));
    }
    return 0;
}

int ordo_items_read(ordo_mp_t *r, ordo_item_t *items, uint32_t *n_items)
{
    uint32_t n;
    if (!ordo_mp_read_array(r, &n) || n > ORDO_ITEMS_MAX)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t fields;
        if (!ordo_mp_read_map(r, &fields))
            return -1;
        unsigned seen = 0;
        ordo_item_t *it = &items[i];
        for (uint32_t f = 0; f < fields; f++) {
            const char *k;
            uint32_t kl;
            if (!ordo_mp_read_str(r, &k, &kl))
                return -1;
            bool ok;
            if (ORDO_MP_KEY_IS(k, kl, "sku")) {
                ok = ordo_mp_read_str(r, &it->sku.ptr, &it->sku.len);
                seen |= 1;
            } else if (ORDO_MP_KEY_IS(k, kl, "name")) {
                ok = ordo_mp_read_str(r, &it->name.ptr, &it->name.len);
                seen |= 2;
            } else if (ORDO_MP_KEY_IS(k, kl, "qty")) {
                ok = ordo_mp_read_int(r, &it->qty);
                seen |= 4;
            } else if (ORDO_MP_KEY_IS(k, kl, "price_cents")) {
                ok = ordo_mp_read_int(r, &it->price_cents);
                seen |= 8;
            } else {
                ok = ordo_mp_skip(r);
            }
            if (!ok)
                return -1;
        }
        if (seen != 15)
            return -1;
    }
    *n_items = n;
    return 0;
}

int ordo_data_read(ordo_mp_t *r, ordo_data_t *d)
{
    uint32_t n;
    memset(d, 0, offsetof(ordo_data_t, items)); /* absent fields read as zero */
    if (!ordo_mp_read_map(r, &n))
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(r, &k, &kl))
            return -1;
        bool ok = true;
        uint32_t bit = 0;
        if (ORDO_MP_KEY_IS(k, kl, "user_id")) {
            ok = ordo_mp_read_int(r, &d->user_id);
            bit = ORDO_F_USER_ID;
        } else if (ORDO_MP_KEY_IS(k, kl, "restaurant_id")) {
            ok = ordo_mp_read_int(r, &d->restaurant_id);
            bit = ORDO_F_RESTAURANT_ID;
        } else if (ORDO_MP_KEY_IS(k, kl, "items")) {
            ok = ordo_items_read(r, d->items, &d->n_items) == 0;
            bit = ORDO_F_ITEMS;
        } else if (ORDO_MP_KEY_IS(k, kl, "total_cents")) {
            ok = ordo_mp_read_int(r, &d->total_cents);
            bit = ORDO_F_TOTAL_CENTS;
        } else if (ORDO_MP_KEY_IS(k, kl, "delivery_address")) {
            ok = ordo_mp_read_str(r, &d->delivery_address.ptr, &d->delivery_address.len);
            bit = ORDO_F_DELIVERY_ADDRESS;
        } else if (ORDO_MP_KEY_IS(k, kl, "estimated_minutes")) {
            ok = ordo_mp_read_int(r, &d->estimated_minutes);
            bit = ORDO_F_ESTIMATED_MINUTES;
        } else if (ORDO_MP_KEY_IS(k, kl, "courier_id")) {
            ok = ordo_mp_read_int(r, &d->courier_id);
            bit = ORDO_F_COURIER_ID;
        } else if (ORDO_MP_KEY_IS(k, kl, "reason")) {
            ok = ordo_mp_read_str(r, &d->reason.ptr, &d->reason.len);
            bit = ORDO_F_REASON;
        } else if (ORDO_MP_KEY_IS(k, kl, "currency")) {
            ok = ordo_mp_read_str(r, &d->currency.ptr, &d->currency.len);
            bit = ORDO_F_CURRENCY;
        } else if (ORDO_MP_KEY_IS(k, kl, "previous_status")) {
            ordo_str_t s;
            ok = ordo_mp_read_str(r, &s.ptr, &s.len);
            if (ok) {
                d->previous_status = ordo_status_from_name(s.ptr, s.len);
                ok = d->previous_status != ORDO_STATUS_NONE;
            }
            bit = ORDO_F_PREVIOUS_STATUS;
        } else {
            ok = ordo_mp_skip(r);
        }
        if (!ok)
            return -1;
        d->present |= bit;
    }
    return 0;
}

int ordo_meta_read(ordo_mp_t *r, ordo_meta_t *m)
{
    uint32_t n;
    if (!ordo_mp_read_map(r, &n) || n > ORDO_META_MAX)
        return -1;
    for (uint32_t i = 0; i < n; i++) {
        ordo_meta_entry_t *e = &m->entries[i];
        if (!ordo_mp_read_str(r, &e->key.ptr, &e->key.len))
            return -1;
        if (ordo_mp_read_int(r, &e->ival))
            e->is_int = true;
        else if (ordo_mp_read_str(r, &e->sval.ptr, &e->sval.len))
            e->is_int = false;
        else
            return -1;
    }
    m->count = n;
    return 0;
}

int ordo_event_pack_mid(msgpack_packer *pk, const ordo_event_t *ev)
{
    P(ORDO_PACK_KEY(pk, "order_id"));
    P(ordo_pack_str(pk, ev->order_id));
    P(ORDO_PACK_KEY(pk, "version"));
    P(msgpack_pack_uint32(pk, ev->version));
    P(ORDO_PACK_KEY(pk, "type"));
    return ordo_pack_cstr(pk, ordo_event_type_name(ev->type));
}

int ordo_event_pack_rest(msgpack_packer *pk, const ordo_event_t *ev)
{
    P(ORDO_PACK_KEY(pk, "schema"));
    P(msgpack_pack_uint32(pk, ev->schema));
    P(ORDO_PACK_KEY(pk, "data"));
    P(ordo_data_pack(pk, &ev->data));
    P(ORDO_PACK_KEY(pk, "meta"));
    return ordo_meta_pack(pk, &ev->meta);
}

/* map header, position, event_id: what precedes "mid". */
static int s_pack_event_head(msgpack_packer *pk, uint64_t position, const uint8_t event_id[16],
                             size_t keys)
{
    char id[ORDO_UUID_TEXT_LEN];
    ordo_uuid_format(event_id, id);
    P(msgpack_pack_map(pk, keys));
    P(ORDO_PACK_KEY(pk, "position"));
    P(msgpack_pack_uint64(pk, position));
    P(ORDO_PACK_KEY(pk, "event_id"));
    return msgpack_pack_str_with_body(pk, id, sizeof id);
}

static int s_pack_timestamp(msgpack_packer *pk, int64_t timestamp_us)
{
    P(ORDO_PACK_KEY(pk, "timestamp_us"));
    return msgpack_pack_int64(pk, timestamp_us);
}

int ordo_event_pack_hash(msgpack_packer *pk, const uint8_t hash[32])
{
    char hex[65];
    ordo_hex_encode(hash, 32, hex);
    P(ORDO_PACK_KEY(pk, "hash"));
    return msgpack_pack_str_with_body(pk, hex, 64);
}

int ordo_event_pack(msgpack_packer *pk, const ordo_event_t *ev)
{
    P(s_pack_event_head(pk, ev->position, ev->event_id, ev->has_hash ? 10 : 9));
    P(ordo_event_pack_mid(pk, ev));
    P(s_pack_timestamp(pk, ev->timestamp_us));
    P(ordo_event_pack_rest(pk, ev));
    return ev->has_hash ? ordo_event_pack_hash(pk, ev->hash) : 0;
}

int ordo_event_pack_joined(msgpack_packer *pk, uint64_t position, const uint8_t event_id[16],
                           int64_t timestamp_us, const void *mid, size_t mid_len,
                           const void *rest, size_t rest_len)
{
    P(s_pack_event_head(pk, position, event_id, 9));
    P(msgpack_pack_str_body(pk, mid, mid_len)); /* raw bytes: str_body just appends */
    P(s_pack_timestamp(pk, timestamp_us));
    return msgpack_pack_str_body(pk, rest, rest_len);
}

int ordo_event_read(ordo_mp_t *r, ordo_event_t *ev)
{
    uint32_t n;
    ev->has_hash = false;
    if (!ordo_mp_read_map(r, &n))
        return -1;
    unsigned seen = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(r, &k, &kl))
            return -1;
        bool ok;
        int64_t v = 0;
        if (ORDO_MP_KEY_IS(k, kl, "position")) {
            ok = ordo_mp_read_int(r, &v) && v >= 1;
            ev->position = (uint64_t)v;
            seen |= 1u << 0;
        } else if (ORDO_MP_KEY_IS(k, kl, "event_id")) {
            const char *s;
            uint32_t sl;
            ok = ordo_mp_read_str(r, &s, &sl) && ordo_uuid_parse(s, sl, false, ev->event_id);
            seen |= 1u << 1;
        } else if (ORDO_MP_KEY_IS(k, kl, "order_id")) {
            ok = ordo_mp_read_str(r, &ev->order_id.ptr, &ev->order_id.len);
            seen |= 1u << 2;
        } else if (ORDO_MP_KEY_IS(k, kl, "version")) {
            ok = ordo_mp_read_int(r, &v) && v >= 1 && v <= UINT32_MAX;
            ev->version = (uint32_t)v;
            seen |= 1u << 3;
        } else if (ORDO_MP_KEY_IS(k, kl, "type")) {
            const char *s;
            uint32_t sl;
            ok = ordo_mp_read_str(r, &s, &sl);
            ev->type = ok ? ordo_event_type_from_name(s, sl) : ORDO_EVT_NONE;
            ok = ok && ev->type != ORDO_EVT_NONE;
            seen |= 1u << 4;
        } else if (ORDO_MP_KEY_IS(k, kl, "timestamp_us")) {
            ok = ordo_mp_read_int(r, &ev->timestamp_us);
            seen |= 1u << 5;
        } else if (ORDO_MP_KEY_IS(k, kl, "schema")) {
            ok = ordo_mp_read_int(r, &v) && v >= 0 && v <= UINT32_MAX;
            ev->schema = (uint32_t)v;
            seen |= 1u << 6;
        } else if (ORDO_MP_KEY_IS(k, kl, "data")) {
            ok = ordo_data_read(r, &ev->data) == 0;
            seen |= 1u << 7;
        } else if (ORDO_MP_KEY_IS(k, kl, "meta")) {
            ok = ordo_meta_read(r, &ev->meta) == 0;
            seen |= 1u << 8;
        } else if (ORDO_MP_KEY_IS(k, kl, "hash")) {
            const char *s;
            uint32_t sl;
            ok = ordo_mp_read_str(r, &s, &sl) && ordo_hex_decode(s, sl, ev->hash, 32);
            ev->has_hash = ok;
        } else {
            ok = ordo_mp_skip(r);
        }
        if (!ok)
            return -1;
    }
    return seen == 0x1FF ? 0 : -1;
}

/* One pass: every read is bounds-checked, unknown values are skipped
 * iteratively (no recursion, so no depth to bound), nothing is allocated,
 * and the event must be all of the buffer. Strings are not checked for
 * UTF-8 here: they are handed on as bytes, never interpreted. */
int ordo_event_decode(const void *buf, size_t len, ordo_event_t *ev)
{
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    return ordo_event_read(&r, ev) == 0 && r.p == r.end ? 0 : -1;
}
