/* Order state: the wire form (GetOrder's `order` map) and the snapshot
 * form, a 15-element array that also keeps the request ids the order
 * accepted and the log position of each version, so idempotency, history
 * and past states survive a restart from a snapshot:
 *   [order_id str, version uint, status uint, user_id int, restaurant_id int,
 *    total_cents int, created_at_us int, updated_at_us int,
 *    estimated_minutes int|nil, courier_id int|nil, delivery_address str,
 *    items [ {sku, name, qty, price_cents} ... ], cancel_reason str|nil,
 *    request_ids [ str|nil  x version ], positions [ uint x version ],
 *    head_hash bin 32|nil, currency str ]
 * (17 elements; snapshots written before PROTOCOL.md 1.1 have the first 15
 * and read with no head hash, in "USD"). 
 * Decoding builds a view over the input, then ordo_order_copy() makes the
 * owned copy, so the order is either whole or untouched. */
#include "ordo_codec.h"
#include "ordo_codec_internal.h"
#include "ordo_hex.h"

#include <string.h>

/* The order's currency; "USD" for one that never had one set. */
static const char *s_currency(const ordo_order_t *o)
{
    return o->currency[0] ? o->currency : ORDO_CURRENCY_DEFAULT;
}

/* Reads a currency (3 capital letters) into out[4]. */
static bool s_read_currency(ordo_mp_t *r, char out[4])
{
    const char *s;
    uint32_t n;
    if (!ordo_mp_read_str(r, &s, &n) || n != 3)
        return false;
    for (int i = 0; i < 3; i++)
        if (s[i] < 'A' || s[i] > 'Z')
            return false;
    memcpy(out, s, 3);
    out[3] = '\0';
    return true;
}

int ordo_order_pack(msgpack_packer *pk, const ordo_order_t *o)
{
    size_t n = 12 + (o->has_estimated_minutes ? 1 : 0) + (o->has_courier_id ? 1 : 0) +
               (o->status == ORDO_STATUS_CANCELLED ? 1 : 0);
    P(msgpack_pack_map(pk, n));
    P(ORDO_PACK_KEY(pk, "order_id"));
    P(msgpack_pack_str_with_body(pk, o->order_id, o->order_id_len));
    P(ORDO_PACK_KEY(pk, "version"));
    P(msgpack_pack_uint32(pk, o->version));
    P(ORDO_PACK_KEY(pk, "status"));
    P(ordo_pack_cstr(pk, ordo_status_name(o->status)));
    P(ORDO_PACK_KEY(pk, "user_id"));
    P(msgpack_pack_int64(pk, o->user_id));
    P(ORDO_PACK_KEY(pk, "restaurant_id"));
    P(msgpack_pack_int64(pk, o->restaurant_id));
    P(ORDO_PACK_KEY(pk, "items"));
    P(ordo_items_pack(pk, o->items, o->n_items));
    P(ORDO_PACK_KEY(pk, "total_cents"));
    P(msgpack_pack_int64(pk, o->total_cents));
    P(ORDO_PACK_KEY(pk, "currency"));
    P(msgpack_pack_str_with_body(pk, s_currency(o), 3));
    P(ORDO_PACK_KEY(pk, "delivery_address"));
    P(ordo_pack_str(pk, o->delivery_address));
    P(ORDO_PACK_KEY(pk, "created_at_us"));
    P(msgpack_pack_int64(pk, o->created_at_us));
    P(ORDO_PACK_KEY(pk, "updated_at_us"));
    P(msgpack_pack_int64(pk, o->updated_at_us));
    if (o->has_estimated_minutes) {
        P(ORDO_PACK_KEY(pk, "estimated_minutes"));
        P(msgpack_pack_int64(pk, o->estimated_minutes));
    }
    if (o->has_courier_id) {
        P(ORDO_PACK_KEY(pk, "courier_id"));
        P(msgpack_pack_int64(pk, o->courier_id));
    }
    if (o->status == ORDO_STATUS_CANCELLED) {
        P(ORDO_PACK_KEY(pk, "cancel_reason"));
        P(ordo_pack_str(pk, o->cancel_reason));
    }
    P(ORDO_PACK_KEY(pk, "head_hash")); /* PROTOCOL.md 1.1: nil when the last event has none */
    if (!o->has_head_hash)
        return msgpack_pack_nil(pk);
    char hex[65];
    ordo_hex_encode(o->head_hash, sizeof o->head_hash, hex);
    return msgpack_pack_str_with_body(pk, hex, 64);
}

/* Reads an optional int: nil -> *has false. False if neither. */
static bool s_opt_int(ordo_mp_t *r, int64_t *v, bool *has)
{
    *has = false;
    if (ordo_mp_read_nil(r))
        return true;
    *has = ordo_mp_read_int(r, v);
    return *has;
}

static bool s_opt_str(ordo_mp_t *r, ordo_str_t *s)
{
    if (ordo_mp_read_nil(r)) {
        *s = (ordo_str_t){0};
        return true;
    }
    return ordo_mp_read_str(r, &s->ptr, &s->len);
}

/* Common checks on a decoded view before copying it. */
static bool s_view_ok(const ordo_order_t *v, ordo_str_t order_id)
{
    if (order_id.len < 1 || order_id.len > ORDO_ORDER_ID_MAX)
        return false;
    if (v->status <= ORDO_STATUS_NONE || v->status >= ORDO_STATUS_COUNT_)
        return false;
    return v->version >= 1 && v->version <= ORDO_MAX_VERSION;
}

int ordo_order_read(ordo_mp_t *r, ordo_order_t *order)
{
    ordo_order_t view;
    ordo_item_t items[ORDO_ITEMS_MAX];
    memset(&view, 0, sizeof view);
    view.items = items;
    ordo_str_t order_id = {0};
    uint32_t n;
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
        if (ORDO_MP_KEY_IS(k, kl, "order_id")) {
            ok = ordo_mp_read_str(r, &order_id.ptr, &order_id.len);
            seen |= 1;
        } else if (ORDO_MP_KEY_IS(k, kl, "version")) {
            ok = ordo_mp_read_int(r, &v) && v >= 1 && v <= ORDO_MAX_VERSION;
            view.version = (uint8_t)v;
            seen |= 2;
        } else if (ORDO_MP_KEY_IS(k, kl, "status")) {
            const char *s;
            uint32_t sl;
            ok = ordo_mp_read_str(r, &s, &sl);
            view.status = ok ? ordo_status_from_name(s, sl) : ORDO_STATUS_NONE;
            seen |= 4;
        } else if (ORDO_MP_KEY_IS(k, kl, "user_id")) {
            ok = ordo_mp_read_int(r, &view.user_id);
        } else if (ORDO_MP_KEY_IS(k, kl, "restaurant_id")) {
            ok = ordo_mp_read_int(r, &view.restaurant_id);
        } else if (ORDO_MP_KEY_IS(k, kl, "items")) {
            ok = ordo_items_read(r, items, &view.n_items) == 0;
        } else if (ORDO_MP_KEY_IS(k, kl, "total_cents")) {
            ok = ordo_mp_read_int(r, &view.total_cents);
        } else if (ORDO_MP_KEY_IS(k, kl, "delivery_address")) {
            ok = ordo_mp_read_str(r, &view.delivery_address.ptr, &view.delivery_address.len);
        } else if (ORDO_MP_KEY_IS(k, kl, "created_at_us")) {
            ok = ordo_mp_read_int(r, &view.created_at_us);
        } else if (ORDO_MP_KEY_IS(k, kl, "updated_at_us")) {
            ok = ordo_mp_read_int(r, &view.updated_at_us);
        } else if (ORDO_MP_KEY_IS(k, kl, "estimated_minutes")) {
            ok = s_opt_int(r, &view.estimated_minutes, &view.has_estimated_minutes);
        } else if (ORDO_MP_KEY_IS(k, kl, "courier_id")) {
            ok = s_opt_int(r, &view.courier_id, &view.has_courier_id);
        } else if (ORDO_MP_KEY_IS(k, kl, "cancel_reason")) {
            ok = s_opt_str(r, &view.cancel_reason);
        } else if (ORDO_MP_KEY_IS(k, kl, "currency")) {
            ok = s_read_currency(r, view.currency);
        } else if (ORDO_MP_KEY_IS(k, kl, "head_hash")) {
            ordo_str_t h;
            ok = s_opt_str(r, &h) &&
                 (h.ptr == NULL || ordo_hex_decode(h.ptr, h.len, view.head_hash, 32));
            view.has_head_hash = ok && h.ptr != NULL;
        } else {
            ok = ordo_mp_skip(r);
        }
        if (!ok)
            return -1;
    }
    if (seen != 7 || !s_view_ok(&view, order_id))
        return -1;
    memcpy(view.order_id, order_id.ptr, order_id.len);
    view.order_id_len = (uint8_t)order_id.len;
    return ordo_order_copy(order, &view) == 0 ? 0 : -1;
}

int ordo_order_pack_snapshot(msgpack_packer *pk, const ordo_order_t *o)
{
    P(msgpack_pack_array(pk, 17));
    P(msgpack_pack_str_with_body(pk, o->order_id, o->order_id_len));
    P(msgpack_pack_uint32(pk, o->version));
    P(msgpack_pack_uint32(pk, (uint32_t)o->status));
    P(msgpack_pack_int64(pk, o->user_id));
    P(msgpack_pack_int64(pk, o->restaurant_id));
    P(msgpack_pack_int64(pk, o->total_cents));
    P(msgpack_pack_int64(pk, o->created_at_us));
    P(msgpack_pack_int64(pk, o->updated_at_us));
    P(o->has_estimated_minutes ? msgpack_pack_int64(pk, o->estimated_minutes)
                               : msgpack_pack_nil(pk));
    P(o->has_courier_id ? msgpack_pack_int64(pk, o->courier_id) : msgpack_pack_nil(pk));
    P(ordo_pack_str(pk, o->delivery_address));
    P(ordo_items_pack(pk, o->items, o->n_items));
    P(o->status == ORDO_STATUS_CANCELLED ? ordo_pack_str(pk, o->cancel_reason)
                                         : msgpack_pack_nil(pk));
    P(msgpack_pack_array(pk, o->version));
    for (uint32_t v = 0; v < o->version; v++)
        P(o->request_ids[v].len ? ordo_pack_str(pk, o->request_ids[v]) : msgpack_pack_nil(pk));
    P(msgpack_pack_array(pk, o->version));
    for (uint32_t v = 0; v < o->version; v++)
        P(msgpack_pack_uint64(pk, o->positions[v]));
    if (!o->has_head_hash) {
        P(msgpack_pack_nil(pk));
    } else {
        P(msgpack_pack_bin(pk, sizeof o->head_hash));
        P(msgpack_pack_bin_body(pk, o->head_hash, sizeof o->head_hash));
    }
    return msgpack_pack_str_with_body(pk, s_currency(o), 3);
}

int ordo_order_decode_snapshot(const void *buf, size_t len, ordo_order_t *order)
{
    ordo_order_t view;
    ordo_item_t items[ORDO_ITEMS_MAX];
    memset(&view, 0, sizeof view);
    view.items = items;
    ordo_str_t order_id;
    uint64_t version, status;
    uint32_t n, n_ids;
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    if (!ordo_mp_read_array(&r, &n) || n < 15 || n > 17 ||
        !ordo_mp_read_str(&r, &order_id.ptr, &order_id.len) || !ordo_mp_read_uint(&r, &version) ||
        version < 1 || version > ORDO_MAX_VERSION || !ordo_mp_read_uint(&r, &status) ||
        status >= ORDO_STATUS_COUNT_ || !ordo_mp_read_int(&r, &view.user_id) ||
        !ordo_mp_read_int(&r, &view.restaurant_id) || !ordo_mp_read_int(&r, &view.total_cents) ||
        !ordo_mp_read_int(&r, &view.created_at_us) || !ordo_mp_read_int(&r, &view.updated_at_us))
        return -1;
    if (!s_opt_int(&r, &view.estimated_minutes, &view.has_estimated_minutes) ||
        !s_opt_int(&r, &view.courier_id, &view.has_courier_id) ||
        !ordo_mp_read_str(&r, &view.delivery_address.ptr, &view.delivery_address.len) ||
        ordo_items_read(&r, items, &view.n_items) != 0 || !s_opt_str(&r, &view.cancel_reason) ||
        !ordo_mp_read_array(&r, &n_ids) || n_ids != version)
        return -1;
    view.version = (uint8_t)version;
    view.status = (ordo_status_t)status;
    for (uint32_t v = 0; v < n_ids; v++) {
        if (!s_opt_str(&r, &view.request_ids[v]) || view.request_ids[v].len > ORDO_REQUEST_ID_MAX)
            return -1;
        view.request_hashes[v] = ordo_request_id_hash(view.request_ids[v]);
    }
    uint32_t n_pos;
    if (!ordo_mp_read_array(&r, &n_pos) || n_pos != version)
        return -1;
    for (uint32_t v = 0; v < n_pos; v++)
        if (!ordo_mp_read_uint(&r, &view.positions[v]) || view.positions[v] == 0 ||
            (v > 0 && view.positions[v] <= view.positions[v - 1]))
            return -1;
    if (n >= 16 && !ordo_mp_read_nil(&r)) {
        const uint8_t *h;
        uint32_t hl;
        if (!ordo_mp_read_bin(&r, &h, &hl) || hl != sizeof view.head_hash)
            return -1;
        memcpy(view.head_hash, h, hl);
        view.has_head_hash = true;
    }
    if (n == 17 ? !s_read_currency(&r, view.currency) : false)
        return -1;
    if (n < 17) /* an order of before currencies: US dollars */
        memcpy(view.currency, ORDO_CURRENCY_DEFAULT, sizeof view.currency);
    if (r.p != r.end || !s_view_ok(&view, order_id))
        return -1;
    memcpy(view.order_id, order_id.ptr, order_id.len);
    view.order_id_len = (uint8_t)order_id.len;
    return ordo_order_copy(order, &view) == 0 ? 0 : -1;
}
