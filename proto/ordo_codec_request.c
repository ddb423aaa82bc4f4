/* Request bodies: strict decoding with PROTOCOL.md's precise rules, and
 * encoding for clients. Decoding runs in three steps, in the rules' order:
 *   1. the whole body is validated as one MessagePack map (size, structure,
 *      UTF-8, nesting) before any field is looked at;
 *   2. `type` (and `request_id`, so errors can echo it);
 *   3. the fields the type uses, by type, then ordo_request_check() for
 *      limits. Unknown keys are skipped. */
#include "ordo_codec.h"
#include "ordo_codec_internal.h"

#include <stdio.h>
#include <string.h>

/* The longest prefix of s[0..len) of at most `max` bytes that does not cut
 * a UTF-8 character in two (s is valid UTF-8). */
static int s_utf8_prefix(const char *s, uint32_t len, uint32_t max)
{
    if (len <= max)
        return (int)len;
    uint32_t n = max;
    while (n > 0 && ((uint8_t)s[n] & 0xC0) == 0x80)
        n--;
    return (int)n;
}

/* Decoding context: the error to fill and whether it was filled. */
typedef struct {
    ordo_error_t *err;
    bool failed;
} s_ctx_t;

static void s_fail(s_ctx_t *c, const char *field, const char *what)
{
    if (c->failed)
        return;
    c->failed = true;
    ordo_error_bad_field(c->err, field, "%s %s", field, what);
}

/* Reads the next map key; a non-string key is a fault of the map holding
 * it (`map_path`). Returns false after recording the fault. */
static bool s_key(s_ctx_t *c, ordo_mp_t *r, const char *map_path, const char **key, uint32_t *len)
{
    if (ordo_mp_read_str(r, key, len))
        return true;
    if (c->failed)
        return false;
    c->failed = true;
    if (*map_path)
        ordo_error_bad_field(c->err, map_path, "%s has a key that is not a string", map_path);
    else
        ordo_error_set(c->err, ORDO_CODE_BAD_REQUEST,
                       "every key of the request map must be a string");
    return false;
}

/* Optional integer: nil or absent leaves *present false. */
static bool s_opt_int(s_ctx_t *c, ordo_mp_t *r, const char *path, int64_t *out, bool *present)
{
    if (ordo_mp_read_nil(r)) {
        *present = false;
        return true;
    }
    if (ordo_mp_read_int(r, out)) {
        *present = true;
        return true;
    }
    s_fail(c, path, "must be an integer");
    return false;
}

/* Optional integer of a query (a version, position or limit): values above
 * INT64_MAX are still integers, and read as INT64_MAX (a limit is then
 * clamped, a position or version lies past the end). */
static bool s_opt_query_int(s_ctx_t *c, ordo_mp_t *r, const char *path, int64_t *out, bool *present)
{
    uint64_t big;
    if (ordo_mp_read_uint(r, &big)) {
        *out = big > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)big;
        *present = true;
        return true;
    }
    return s_opt_int(c, r, path, out, present);
}

/* Optional string: nil leaves *present false. */
static bool s_opt_str(s_ctx_t *c, ordo_mp_t *r, const char *path, ordo_str_t *out, bool *present)
{
    if (ordo_mp_read_nil(r)) {
        *present = false;
        return true;
    }
    if (ordo_mp_read_str(r, &out->ptr, &out->len)) {
        *present = true;
        return true;
    }
    s_fail(c, path, "must be a string");
    return false;
}

/* "data.items.<index>" or "data.items.<index>.<name>": built only to name
 * a fault, as valid requests are the common case. */
static const char *s_item_path(char *out, size_t size, uint32_t index, const char *name)
{
    snprintf(out, size, name ? "data.items.%u.%s" : "data.items.%u", index, name);
    return out;
}

/* One of an item's fields: a string (`str`) or an integer (`num`). */
static bool s_item_field(s_ctx_t *c, ordo_mp_t *r, uint32_t index, const char *name,
                         ordo_str_t *str, int64_t *num, bool *present)
{
    if (ordo_mp_read_nil(r)) {
        *present = false;
        return true;
    }
    if (str ? ordo_mp_read_str(r, &str->ptr, &str->len) : ordo_mp_read_int(r, num)) {
        *present = true;
        return true;
    }
    char field[64];
    s_item_path(field, sizeof field, index, name);
    return str ? s_opt_str(c, r, field, str, present) : s_opt_int(c, r, field, num, present);
}

static bool s_read_item(s_ctx_t *c, ordo_mp_t *r, uint32_t index, ordo_item_t *item)
{
    char path[64];
    uint32_t n;
    if (!ordo_mp_read_map(r, &n)) {
        s_fail(c, s_item_path(path, sizeof path, index, NULL),
               "must be a map {sku, name, qty, price_cents}");
        return false;
    }
    bool has_sku = false, has_name = false, has_qty = false, has_price = false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(r, &k, &kl) &&
            !s_key(c, r, s_item_path(path, sizeof path, index, NULL), &k, &kl))
            return false;
        bool ok = true;
        if (ORDO_MP_KEY_IS(k, kl, "sku"))
            ok = s_item_field(c, r, index, "sku", &item->sku, NULL, &has_sku);
        else if (ORDO_MP_KEY_IS(k, kl, "name"))
            ok = s_item_field(c, r, index, "name", &item->name, NULL, &has_name);
        else if (ORDO_MP_KEY_IS(k, kl, "qty"))
            ok = s_item_field(c, r, index, "qty", NULL, &item->qty, &has_qty);
        else if (ORDO_MP_KEY_IS(k, kl, "price_cents"))
            ok = s_item_field(c, r, index, "price_cents", NULL, &item->price_cents, &has_price);
        else
            ordo_mp_skip(r); /* unknown keys inside items are not stored */
        if (!ok)
            return false;
    }
    const char *missing = !has_sku     ? "sku"
                          : !has_name  ? "name"
                          : !has_qty   ? "qty"
                          : !has_price ? "price_cents"
                                       : NULL;
    if (missing) {
        s_fail(c, s_item_path(path, sizeof path, index, missing), "is required");
        return false;
    }
    return true;
}

static bool s_read_items(s_ctx_t *c, ordo_mp_t *r, ordo_data_t *d)
{
    uint32_t n;
    if (!ordo_mp_read_array(r, &n)) {
        s_fail(c, "data.items", "must be an array of 1 to 100 items");
        return false;
    }
    if (n > ORDO_ITEMS_MAX) {
        s_fail(c, "data.items", "must hold 1 to 100 items");
        return false;
    }
    d->n_items = n;
    for (uint32_t i = 0; i < n; i++)
        if (!s_read_item(c, r, i, &d->items[i]))
            return false;
    return true;
}

/* Reads `data` for command `type`: only the fields that command takes. */
static bool s_read_data(s_ctx_t *c, ordo_mp_t *r, ordo_request_type_t type, ordo_request_t *req)
{
    /* A repeated `data` key replaces the earlier one whole. */
    req->has_data = false;
    memset(&req->data, 0, offsetof(ordo_data_t, items));
    if (ordo_mp_read_nil(r))
        return true;
    uint32_t n;
    if (!ordo_mp_read_map(r, &n)) {
        s_fail(c, "data", "must be a map");
        return false;
    }
    req->has_data = true;
    ordo_data_t *d = &req->data;
    uint32_t fields = ordo_request_info(type)->data_fields;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!s_key(c, r, "data", &k, &kl))
            return false;
        bool ok = true, present = false;
        uint32_t bit = 0;
        if ((fields & ORDO_F_USER_ID) && ORDO_MP_KEY_IS(k, kl, "user_id")) {
            ok = s_opt_int(c, r, "data.user_id", &d->user_id, &present);
            bit = ORDO_F_USER_ID;
        } else if ((fields & ORDO_F_RESTAURANT_ID) && ORDO_MP_KEY_IS(k, kl, "restaurant_id")) {
            ok = s_opt_int(c, r, "data.restaurant_id", &d->restaurant_id, &present);
            bit = ORDO_F_RESTAURANT_ID;
        } else if ((fields & ORDO_F_ITEMS) && ORDO_MP_KEY_IS(k, kl, "items")) {
            if (ordo_mp_read_nil(r)) {
                present = false;
            } else {
                ok = s_read_items(c, r, d);
                present = true;
            }
            bit = ORDO_F_ITEMS;
        } else if ((fields & ORDO_F_DELIVERY_ADDRESS) &&
                   ORDO_MP_KEY_IS(k, kl, "delivery_address")) {
            ok = s_opt_str(c, r, "data.delivery_address", &d->delivery_address, &present);
            bit = ORDO_F_DELIVERY_ADDRESS;
        } else if ((fields & ORDO_F_ESTIMATED_MINUTES) &&
                   ORDO_MP_KEY_IS(k, kl, "estimated_minutes")) {
            ok = s_opt_int(c, r, "data.estimated_minutes", &d->estimated_minutes, &present);
            bit = ORDO_F_ESTIMATED_MINUTES;
        } else if ((fields & ORDO_F_COURIER_ID) && ORDO_MP_KEY_IS(k, kl, "courier_id")) {
            ok = s_opt_int(c, r, "data.courier_id", &d->courier_id, &present);
            bit = ORDO_F_COURIER_ID;
        } else if ((fields & ORDO_F_CURRENCY) && ORDO_MP_KEY_IS(k, kl, "currency")) {
            ok = s_opt_str(c, r, "data.currency", &d->currency, &present);
            bit = ORDO_F_CURRENCY;
        } else if ((fields & ORDO_F_REASON) && ORDO_MP_KEY_IS(k, kl, "reason")) {
            ok = s_opt_str(c, r, "data.reason", &d->reason, &present);
            bit = ORDO_F_REASON;
        } else {
            ordo_mp_skip(r);
        }
        if (!ok)
            return false;
        if (present)
            d->present |= bit;
        else
            d->present &= ~bit;
    }
    return true;
}

static bool s_read_meta(s_ctx_t *c, ordo_mp_t *r, ordo_meta_t *meta)
{
    meta->count = 0; /* a repeated `meta` key replaces the earlier one */
    if (ordo_mp_read_nil(r))
        return true;
    uint32_t n;
    if (!ordo_mp_read_map(r, &n)) {
        s_fail(c, "meta", "must be a map of at most 16 string keys");
        return false;
    }
    if (n > ORDO_META_CLIENT_MAX) {
        s_fail(c, "meta", "may hold at most 16 keys");
        return false;
    }
    for (uint32_t i = 0; i < n; i++) {
        ordo_meta_entry_t *e = &meta->entries[i];
        if (!s_key(c, r, "meta", &e->key.ptr, &e->key.len))
            return false;
        if (e->key.len < 1 || e->key.len > ORDO_META_KEY_MAX) {
            s_fail(c, "meta", "keys must be 1 to 64 bytes long");
            return false;
        }
        for (uint32_t j = 0; j < i; j++) {
            if (meta->entries[j].key.len == e->key.len &&
                memcmp(meta->entries[j].key.ptr, e->key.ptr, e->key.len) == 0) {
                s_fail(c, "meta", "has the same key twice");
                return false;
            }
        }
        if (ordo_mp_read_int(r, &e->ival)) {
            e->is_int = true;
        } else if (ordo_mp_read_str(r, &e->sval.ptr, &e->sval.len)) {
            e->is_int = false;
        } else {
            char field[96];
            snprintf(field, sizeof field, "meta.%.*s", (int)e->key.len, e->key.ptr);
            s_fail(c, field, "must be a string or an integer");
            return false;
        }
    }
    meta->count = n;
    return true;
}

void ordo_request_init(ordo_request_t *req)
{
    /* Zero only the head: the items array is filled up to n_items. */
    memset(req, 0, offsetof(ordo_request_t, data));
    memset(&req->data, 0, offsetof(ordo_data_t, items));
    req->meta.count = 0;
    req->type = ORDO_REQ_NONE;
    req->as_of_version = 0;
    req->has_as_of_time = false;
    req->as_of_time_us = 0;
    req->limit = 0;
    req->expected_version = -1;
    req->from_version = 1;
    req->from_position = 1;
}

/* Step 2: finds `type` and `request_id`. Returns false with *err set. */
static bool s_read_type(s_ctx_t *c, ordo_mp_t r, uint32_t n, ordo_request_t *req)
{
    bool has_type = false, bad_key = false, bad_request_id = false;
    ordo_str_t type = {0};
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &k, &kl)) {
            bad_key = true;
            ordo_mp_skip(&r);
            ordo_mp_skip(&r);
            continue;
        }
        if (ORDO_MP_KEY_IS(k, kl, "type")) {
            has_type = ordo_mp_read_str(&r, &type.ptr, &type.len);
            if (!has_type)
                ordo_mp_skip(&r);
        } else if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            ordo_str_t id;
            if (ordo_mp_read_nil(&r)) {
                req->request_id = (ordo_str_t){0};
                bad_request_id = false;
            } else if (ordo_mp_read_str(&r, &id.ptr, &id.len) && id.len >= 1 &&
                       id.len <= ORDO_REQUEST_ID_MAX) {
                req->request_id = id;
                bad_request_id = false;
            } else {
                req->request_id = (ordo_str_t){0};
                bad_request_id = true;
                ordo_mp_skip(&r);
            }
        } else {
            ordo_mp_skip(&r);
        }
    }
    if (!has_type) {
        s_fail(c, "type", "is required and must be a string naming a command or query");
        return false;
    }
    req->type = ordo_request_type_from_name(type.ptr, type.len);
    if (req->type == ORDO_REQ_NONE) {
        c->failed = true;
        int shown = s_utf8_prefix(type.ptr, type.len, 64);
        ordo_error_set(
            c->err, ORDO_CODE_UNKNOWN_TYPE,
            "unknown request type \"%.*s\"%s; see the protocol for the commands and queries", shown,
            type.ptr, type.len > 64 ? "..." : "");
        return false;
    }
    if (bad_key) {
        c->failed = true;
        ordo_error_set(c->err, ORDO_CODE_BAD_REQUEST,
                       "every key of the request map must be a string");
        return false;
    }
    if (bad_request_id) {
        s_fail(c, "request_id", "must be a string of 1 to 128 bytes");
        return false;
    }
    return true;
}

/* Step 3: the fields `req->type` uses. */
static bool s_read_fields(s_ctx_t *c, ordo_mp_t r, uint32_t n, ordo_request_t *req)
{
    ordo_request_type_t t = req->type;
    const ordo_request_info_t *info = ordo_request_info(t);
    bool is_command = info->command, on_order = info->on_order;
    uint32_t q = info->query_fields;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (!s_key(c, &r, "", &k, &kl))
            return false;
        bool ok = true, present = false;
        int64_t v = 0;
        if (on_order && ORDO_MP_KEY_IS(k, kl, "order_id")) {
            ok = s_opt_str(c, &r, "order_id", &req->order_id, &present);
            if (ok && !present)
                req->order_id = (ordo_str_t){0};
        } else if (is_command && ORDO_MP_KEY_IS(k, kl, "expected_version")) {
            ok = s_opt_int(c, &r, "expected_version", &v, &present);
            req->expected_version = present ? v : -1;
        } else if (is_command && ORDO_MP_KEY_IS(k, kl, "data")) {
            ok = s_read_data(c, &r, t, req);
        } else if (is_command && ORDO_MP_KEY_IS(k, kl, "meta")) {
            ok = s_read_meta(c, &r, &req->meta);
        } else if ((q & ORDO_Q_AS_OF_VERSION) && ORDO_MP_KEY_IS(k, kl, "as_of_version")) {
            ok = s_opt_query_int(c, &r, "as_of_version", &v, &present);
            if (ok && present && v < 1) {
                s_fail(c, "as_of_version", "must be an integer >= 1");
                return false;
            }
            req->as_of_version = present ? v : 0;
        } else if ((q & ORDO_Q_AS_OF_TIME) && ORDO_MP_KEY_IS(k, kl, "as_of_time_us")) {
            ok = s_opt_query_int(c, &r, "as_of_time_us", &req->as_of_time_us, &req->has_as_of_time);
        } else if ((q & ORDO_Q_FROM_VERSION) && ORDO_MP_KEY_IS(k, kl, "from_version")) {
            ok = s_opt_query_int(c, &r, "from_version", &v, &present);
            req->from_version = present ? v : 1;
        } else if ((q & ORDO_Q_FROM_POSITION) && ORDO_MP_KEY_IS(k, kl, "from_position")) {
            ok = s_opt_query_int(c, &r, "from_position", &v, &present);
            req->from_position = present ? v : 1;
        } else if ((q & ORDO_Q_LIMIT) && ORDO_MP_KEY_IS(k, kl, "limit")) {
            ok = s_opt_query_int(c, &r, "limit", &v, &present);
            if (ok && present && v < 1) {
                s_fail(c, "limit", "must be an integer >= 1");
                return false;
            }
            req->limit = present ? v : 0;
        } else {
            ordo_mp_skip(&r);
        }
        if (!ok)
            return false;
    }
    return true;
}

int ordo_request_decode(const void *buf, size_t len, ordo_request_t *req, ordo_error_t *err)
{
    s_ctx_t c = {.err = err, .failed = false};
    ordo_request_init(req);
    memset(err, 0, sizeof *err);
    if (len > ORDO_BODY_MAX) {
        ordo_error_set(err, ORDO_CODE_BAD_REQUEST,
                       "the request body is %zu bytes; the limit is %d bytes", len, ORDO_BODY_MAX);
        return -1;
    }
    ordo_mp_status_t st = ordo_mp_validate(buf, len, ORDO_NESTING_MAX);
    if (st != ORDO_MP_OK) {
        ordo_error_set(err, ORDO_CODE_BAD_REQUEST, "%s", ordo_mp_status_text(st));
        return -1;
    }
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n)) {
        ordo_error_set(err, ORDO_CODE_BAD_REQUEST, "the request body must be a MessagePack map");
        return -1;
    }
    if (!s_read_type(&c, r, n, req) || !s_read_fields(&c, r, n, req))
        return -1;
    const ordo_request_info_t *info = ordo_request_info(req->type);
    if (req->limit == 0)
        req->limit = info->limit_default;
    if (!ordo_request_check(req, err))
        return -1;
    if (info->limit_max && req->limit > info->limit_max)
        req->limit = info->limit_max; /* larger is clamped, as PROTOCOL.md says */
    return 0;
}

int ordo_request_pack(msgpack_packer *pk, const ordo_request_t *req)
{
    ordo_request_type_t t = req->type;
    const ordo_request_info_t *info = ordo_request_info(t);
    bool is_command = info->command, on_order = info->on_order;
    uint32_t q = info->query_fields;
    bool has_limit = (q & ORDO_Q_LIMIT) && req->limit > 0;
    bool as_of_version = (q & ORDO_Q_AS_OF_VERSION) && req->as_of_version > 0;
    bool as_of_time = (q & ORDO_Q_AS_OF_TIME) && req->has_as_of_time;
    bool from_version = (q & ORDO_Q_FROM_VERSION) && req->from_version != 1;
    bool from_position = (q & ORDO_Q_FROM_POSITION) && req->from_position != 1;
    size_t n = 1 + (req->request_id.len > 0) + (on_order && req->order_id.len > 0) +
               (is_command && req->expected_version != -1) + (is_command && req->has_data) +
               (is_command && req->meta.count > 0) + as_of_version + as_of_time + from_version +
               from_position + has_limit;
    P(msgpack_pack_map(pk, n));
    P(ORDO_PACK_KEY(pk, "type"));
    P(ordo_pack_cstr(pk, ordo_request_type_name(t)));
    if (req->request_id.len > 0) {
        P(ORDO_PACK_KEY(pk, "request_id"));
        P(ordo_pack_str(pk, req->request_id));
    }
    if (on_order && req->order_id.len > 0) {
        P(ORDO_PACK_KEY(pk, "order_id"));
        P(ordo_pack_str(pk, req->order_id));
    }
    if (is_command && req->expected_version != -1) {
        P(ORDO_PACK_KEY(pk, "expected_version"));
        P(msgpack_pack_int64(pk, req->expected_version));
    }
    if (is_command && req->has_data) {
        P(ORDO_PACK_KEY(pk, "data"));
        P(ordo_data_pack(pk, &req->data));
    }
    if (is_command && req->meta.count > 0) {
        P(ORDO_PACK_KEY(pk, "meta"));
        P(ordo_meta_pack(pk, &req->meta));
    }
    if (as_of_version) {
        P(ORDO_PACK_KEY(pk, "as_of_version"));
        P(msgpack_pack_int64(pk, req->as_of_version));
    }
    if (as_of_time) {
        P(ORDO_PACK_KEY(pk, "as_of_time_us"));
        P(msgpack_pack_int64(pk, req->as_of_time_us));
    }
    if (from_version) {
        P(ORDO_PACK_KEY(pk, "from_version"));
        P(msgpack_pack_int64(pk, req->from_version));
    }
    if (from_position) {
        P(ORDO_PACK_KEY(pk, "from_position"));
        P(msgpack_pack_int64(pk, req->from_position));
    }
    if (has_limit) {
        P(ORDO_PACK_KEY(pk, "limit"));
        P(msgpack_pack_int64(pk, req->limit));
    }
    return 0;
}

bool ordo_request_peek(const void *buf, size_t len, ordo_request_peek_t *peek)
{
    ordo_mp_t r;
    uint32_t n;
    ordo_request_peek_t got = {.type = ORDO_REQ_NONE, .limit = -1};
    *peek = got;
    ordo_mp_init(&r, buf, len);
    if (!ordo_mp_read_map(&r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *v;
        uint32_t kl, vl;
        if (!ordo_mp_read_str(&r, &k, &kl))
            return false;
        if (ORDO_MP_KEY_IS(k, kl, "order_id")) {
            /* As the decoder reads it: the last one counts; nil clears it,
             * and so does any other type (queries without an order ignore
             * it; where an order is needed the decoder refuses it). */
            if (ordo_mp_read_str(&r, &got.order_id.ptr, &got.order_id.len))
                got.has_order_id = true;
            else if (ordo_mp_read_nil(&r) || ordo_mp_skip(&r))
                got.has_order_id = false;
            else
                return false;
        } else if (ORDO_MP_KEY_IS(k, kl, "limit")) {
            int64_t lim;
            if (ordo_mp_read_int(&r, &lim))
                got.limit = lim;
            else if (ordo_mp_skip(&r))
                got.limit = -1;
            else
                return false;
        } else if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            ordo_str_t id;
            if (ordo_mp_read_str(&r, &id.ptr, &id.len))
                got.request_id = id.len >= 1 && id.len <= ORDO_REQUEST_ID_MAX &&
                                         ordo_utf8_valid((const uint8_t *)id.ptr, id.len)
                                     ? id
                                     : (ordo_str_t){0};
            else if (ordo_mp_read_nil(&r) || ordo_mp_skip(&r))
                got.request_id = (ordo_str_t){0};
            else
                return false;
        } else if (ORDO_MP_KEY_IS(k, kl, "type") && ordo_mp_read_str(&r, &v, &vl)) {
            got.type = ordo_request_type_from_name(v, vl);
        } else if (ORDO_MP_KEY_IS(k, kl, "type")) {
            got.type = ORDO_REQ_NONE;
            if (!ordo_mp_skip(&r))
                return false;
        } else if (!ordo_mp_skip(&r)) {
            return false;
        }
    }
    if (!got.has_order_id)
        got.order_id = (ordo_str_t){0};
    *peek = got;
    return true;
}
