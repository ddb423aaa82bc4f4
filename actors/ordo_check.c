/* Field checks of a decoded request against PROTOCOL.md's limits (Precise
 * rule 3), and the ordo_error_t setters. The decoder has already checked
 * types, UTF-8, nesting and counts that do not fit the fixed arrays; this
 * file checks presence, ranges, lengths and order_id characters, and names
 * the faulty field by its dotted path from the body's root. */
#include "ordo_order.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void s_clear_details(ordo_error_t *err, ordo_code_t code)
{
    err->code = code;
    err->field[0] = '\0';
    err->status = ORDO_STATUS_NONE;
    err->expected_version = 0;
    err->current_version = 0;
}

void ordo_error_set(ordo_error_t *err, ordo_code_t code, const char *fmt, ...)
{
    s_clear_details(err, code);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void ordo_error_bad_field(ordo_error_t *err, const char *field, const char *fmt, ...)
{
    s_clear_details(err, ORDO_CODE_BAD_REQUEST);
    snprintf(err->field, sizeof err->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

/* The bytes an order id may hold: A-Z a-z 0-9 _ - . : */
// clang-format off
static const bool s_id_byte[256] = {
    ['-'] = 1, ['.'] = 1, [':'] = 1, ['_'] = 1,
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};
// clang-format on

bool ordo_order_id_valid(ordo_str_t id)
{
    if (id.len < 1 || id.len > ORDO_ORDER_ID_MAX)
        return false;
    bool ok = true;
    for (uint32_t i = 0; i < id.len; i++)
        ok &= s_id_byte[(unsigned char)id.ptr[i]];
    return ok;
}

static bool s_check_order_id(const ordo_request_t *req, ordo_error_t *err)
{
    if (req->order_id.len == 0) {
        ordo_error_bad_field(err, "order_id", "order_id is required");
        return false;
    }
    if (!ordo_order_id_valid(req->order_id)) {
        ordo_error_bad_field(
            err, "order_id",
            "order_id must be 1 to %d bytes of A-Z a-z 0-9 _ - . :", ORDO_ORDER_ID_MAX);
        return false;
    }
    return true;
}

/* A string of min..max bytes at `path`. */
static bool s_check_len(ordo_str_t s, uint32_t min, uint32_t max, const char *path,
                        ordo_error_t *err)
{
    if (s.len < min || s.len > max) {
        ordo_error_bad_field(err, path, "%s must be %u to %u bytes long", path, (unsigned)min,
                             (unsigned)max);
        return false;
    }
    return true;
}

static bool s_check_range(int64_t v, int64_t min, int64_t max, const char *path, ordo_error_t *err)
{
    if (v >= min && v <= max)
        return true;
    if (max == INT64_MAX)
        ordo_error_bad_field(err, path, "%s must be at least %lld", path, (long long)min);
    else
        ordo_error_bad_field(err, path, "%s must be between %lld and %lld", path, (long long)min,
                             (long long)max);
    return false;
}

static bool s_require(const ordo_data_t *d, uint32_t bit, const char *path, ordo_error_t *err)
{
    if (!(d->present & bit)) {
        ordo_error_bad_field(err, path, "%s is required", path);
        return false;
    }
    return true;
}

static bool s_check_meta(const ordo_meta_t *meta, ordo_error_t *err)
{
    if (meta->count > ORDO_META_CLIENT_MAX) {
        ordo_error_bad_field(err, "meta", "meta may hold at most %d keys", ORDO_META_CLIENT_MAX);
        return false;
    }
    for (uint32_t i = 0; i < meta->count; i++) {
        const ordo_meta_entry_t *e = &meta->entries[i];
        if (e->key.len < 1 || e->key.len > ORDO_META_KEY_MAX) {
            ordo_error_bad_field(err, "meta", "meta keys must be 1 to %d bytes long",
                                 ORDO_META_KEY_MAX);
            return false;
        }
        if (!e->is_int && e->sval.len > ORDO_META_VALUE_MAX) {
            char path[sizeof err->field];
            snprintf(path, sizeof path, "meta.%.*s", (int)e->key.len, e->key.ptr);
            ordo_error_bad_field(err, path, "%s must be at most %d bytes long", path,
                                 ORDO_META_VALUE_MAX);
            return false;
        }
    }
    return true;
}

static bool s_check_items(const ordo_data_t *d, ordo_error_t *err)
{
    if (d->n_items < 1 || d->n_items > ORDO_ITEMS_MAX) {
        ordo_error_bad_field(err, "data.items", "data.items must hold 1 to %d items",
                             ORDO_ITEMS_MAX);
        return false;
    }
    char path[sizeof err->field];
    for (uint32_t i = 0; i < d->n_items; i++) {
        const ordo_item_t *it = &d->items[i];
        /* The common case, cheaply; paths are built only to report a fault. */
        if (it->sku.len >= 1 && it->sku.len <= ORDO_SKU_MAX && it->name.len >= 1 &&
            it->name.len <= ORDO_NAME_MAX && it->qty >= 1 && it->qty <= ORDO_ITEM_QTY_MAX &&
            it->price_cents >= 0 && it->price_cents <= ORDO_PRICE_CENTS_MAX)
            continue;
        snprintf(path, sizeof path, "data.items.%u.sku", (unsigned)i);
        if (!s_check_len(it->sku, 1, ORDO_SKU_MAX, path, err))
            return false;
        snprintf(path, sizeof path, "data.items.%u.name", (unsigned)i);
        if (!s_check_len(it->name, 1, ORDO_NAME_MAX, path, err))
            return false;
        snprintf(path, sizeof path, "data.items.%u.qty", (unsigned)i);
        if (!s_check_range(it->qty, 1, ORDO_ITEM_QTY_MAX, path, err))
            return false;
        snprintf(path, sizeof path, "data.items.%u.price_cents", (unsigned)i);
        if (!s_check_range(it->price_cents, 0, ORDO_PRICE_CENTS_MAX, path, err))
            return false;
    }
    return true;
}

/* PROTOCOL.md 1.1: optional, 3 capital letters A-Z. */
static bool s_check_currency(const ordo_data_t *d, ordo_error_t *err)
{
    if (!(d->present & ORDO_F_CURRENCY))
        return true;
    bool ok = d->currency.len == 3;
    for (uint32_t i = 0; ok && i < 3; i++)
        ok = d->currency.ptr[i] >= 'A' && d->currency.ptr[i] <= 'Z';
    if (!ok)
        ordo_error_bad_field(err, "data.currency",
                             "data.currency must be 3 capital letters A-Z (ISO 4217), such as "
                             "\"EUR\"");
    return ok;
}

static bool s_check_create(const ordo_request_t *req, ordo_error_t *err)
{
    const ordo_data_t *d = &req->data;
    if (!req->has_data) {
        ordo_error_bad_field(err, "data", "data is required for CreateOrder");
        return false;
    }
    return s_require(d, ORDO_F_USER_ID, "data.user_id", err) &&
           s_check_range(d->user_id, 0, INT64_MAX, "data.user_id", err) &&
           s_require(d, ORDO_F_RESTAURANT_ID, "data.restaurant_id", err) &&
           s_check_range(d->restaurant_id, 0, INT64_MAX, "data.restaurant_id", err) &&
           s_require(d, ORDO_F_ITEMS, "data.items", err) && s_check_items(d, err) &&
           s_require(d, ORDO_F_DELIVERY_ADDRESS, "data.delivery_address", err) &&
           s_check_len(d->delivery_address, 1, ORDO_ADDRESS_MAX, "data.delivery_address", err) &&
           s_check_currency(d, err);
}

/* The command-specific part of `data`; fields other commands carry are
 * ignored like unknown keys. */
static bool s_check_data(const ordo_request_t *req, ordo_error_t *err)
{
    const ordo_data_t *d = &req->data;
    bool has = req->has_data;
    switch (req->type) {
    case ORDO_REQ_CREATE_ORDER: return s_check_create(req, err);
    case ORDO_REQ_START_PREPARING:
        if (has && (d->present & ORDO_F_ESTIMATED_MINUTES))
            return s_check_range(d->estimated_minutes, 1, ORDO_ESTIMATED_MINUTES_MAX,
                                 "data.estimated_minutes", err);
        return true;
    case ORDO_REQ_PICK_UP:
        if (has && (d->present & ORDO_F_COURIER_ID))
            return s_check_range(d->courier_id, 0, INT64_MAX, "data.courier_id", err);
        return true;
    case ORDO_REQ_CANCEL_ORDER:
        if (!has) {
            ordo_error_bad_field(err, "data", "data with a reason is required for CancelOrder");
            return false;
        }
        return s_require(d, ORDO_F_REASON, "data.reason", err) &&
               s_check_len(d->reason, 1, ORDO_REASON_MAX, "data.reason", err);
    default: return true;
    }
}

static bool s_check_query(const ordo_request_t *req, ordo_error_t *err)
{
    switch (req->type) {
    case ORDO_REQ_GET_ORDER:
        if (!s_check_order_id(req, err))
            return false;
        if (req->as_of_version < 0) {
            ordo_error_bad_field(err, "as_of_version", "as_of_version must be at least 1");
            return false;
        }
        if (req->as_of_version != 0 && req->has_as_of_time) {
            ordo_error_bad_field(err, "as_of_time_us",
                                 "give as_of_version or as_of_time_us, not both");
            return false;
        }
        return true;
    case ORDO_REQ_GET_HISTORY:
        return s_check_order_id(req, err) &&
               s_check_range(req->from_version, 1, INT64_MAX, "from_version", err) &&
               s_check_range(req->limit, 1, INT64_MAX, "limit", err);
    case ORDO_REQ_READ_ALL:
        return s_check_range(req->from_position, 1, INT64_MAX, "from_position", err) &&
               s_check_range(req->limit, 1, INT64_MAX, "limit", err);
    default: return true;
    }
}

bool ordo_request_check(const ordo_request_t *req, ordo_error_t *err)
{
    if (req->type <= ORDO_REQ_NONE || req->type >= ORDO_REQ_COUNT_) {
        ordo_error_set(err, ORDO_CODE_UNKNOWN_TYPE, "the request type is not known");
        return false;
    }
    if (req->request_id.len > ORDO_REQUEST_ID_MAX) {
        ordo_error_bad_field(err, "request_id", "request_id must be 1 to %d bytes long",
                             ORDO_REQUEST_ID_MAX);
        return false;
    }
    if (!ordo_request_is_command(req->type))
        return s_check_query(req, err);
    if (!s_check_order_id(req, err))
        return false;
    if (req->expected_version < -1) {
        ordo_error_bad_field(err, "expected_version",
                             "expected_version must be -1 (any) or a version >= 0");
        return false;
    }
    return s_check_meta(&req->meta, err) && s_check_data(req, err);
}
