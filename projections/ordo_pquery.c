/* Query decoding and reply packing for ordo-projector (see ordo_pquery.h).
 *
 * A body is checked in PROTOCOL.md's order: size, then one well-formed
 * MessagePack map (ordo_mp_validate: UTF-8, nesting, counts against the
 * bytes left), then `type` and `request_id`, then each field the type
 * reads, then the checks across fields. For a key given twice the last one
 * counts and nil means "not given", as in the engine's decoder.
 *
 * Cursor text: lower-case hex of [kind: 1 byte = the query type]
 * [key: int64, 8 bytes big-endian][order_id: 1..64 bytes]. It is opaque to
 * clients; decoding checks the kind against the query and every byte. */
#include "ordo_pquery.h"

#include "ordo_codec.h"
#include "ordo_mp.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const s_type_names[ORDO_PQ_COUNT_] = {
    [ORDO_PQ_GET_ORDER_SUMMARY] = "GetOrderSummary", [ORDO_PQ_LIST_ORDERS] = "ListOrders",
    [ORDO_PQ_RESTAURANT_BOARD] = "RestaurantBoard", [ORDO_PQ_USER_HISTORY] = "UserHistory",
    [ORDO_PQ_ANALYTICS] = "Analytics",             [ORDO_PQ_ORDERS_AS_OF] = "OrdersAsOf",
    [ORDO_PQ_PROJECTION_STATUS] = "ProjectionStatus", [ORDO_PQ_REBUILD] = "Rebuild",
    [ORDO_PQ_PING] = "Ping",
};

static const char *const s_proj_names[ORDO_PROJ_COUNT_] = {
    [ORDO_PROJ_SUMMARY] = "summary", [ORDO_PROJ_RESTAURANT] = "restaurant",
    [ORDO_PROJ_USER] = "user",       [ORDO_PROJ_ANALYTICS] = "analytics",
    [ORDO_PROJ_TIMELINE] = "timeline",
};

const char *ordo_pq_type_name(ordo_pq_type_t t)
{
    return t > ORDO_PQ_NONE && t < ORDO_PQ_COUNT_ ? s_type_names[t] : "?";
}

ordo_pq_type_t ordo_pq_type_from_name(const char *s, size_t len)
{
    for (int t = 1; t < ORDO_PQ_COUNT_; t++)
        if (strlen(s_type_names[t]) == len && memcmp(s_type_names[t], s, len) == 0)
            return (ordo_pq_type_t)t;
    return ORDO_PQ_NONE;
}

const char *ordo_proj_name(ordo_proj_t p)
{
    return p >= 0 && p < ORDO_PROJ_COUNT_ ? s_proj_names[p] : "?";
}

int ordo_proj_from_name(const char *s, size_t len)
{
    for (int p = 0; p < ORDO_PROJ_COUNT_; p++)
        if (strlen(s_proj_names[p]) == len && memcmp(s_proj_names[p], s, len) == 0)
            return p;
    return -1;
}

int ordo_pq_projection(ordo_pq_type_t t)
{
    switch (t) {
    case ORDO_PQ_GET_ORDER_SUMMARY:
    case ORDO_PQ_LIST_ORDERS: return ORDO_PROJ_SUMMARY;
    case ORDO_PQ_RESTAURANT_BOARD: return ORDO_PROJ_RESTAURANT;
    case ORDO_PQ_USER_HISTORY: return ORDO_PROJ_USER;
    case ORDO_PQ_ANALYTICS: return ORDO_PROJ_ANALYTICS;
    case ORDO_PQ_ORDERS_AS_OF: return ORDO_PROJ_TIMELINE;
    default: return -1;
    }
}

void ordo_perror_set(ordo_perror_t *e, const char *code, const char *fmt, ...)
{
    memset(e, 0, sizeof *e);
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

void ordo_perror_field(ordo_perror_t *e, const char *field, const char *fmt, ...)
{
    memset(e, 0, sizeof *e);
    e->code = "bad_request";
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
}

/* ---- cursors ------------------------------------------------------------ */

void ordo_pcursor_encode(char out[ORDO_PCURSOR_MAX], ordo_pq_type_t type, int64_t key,
                         const char *order_id)
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[1 + 8 + ORDO_ORDER_ID_MAX];
    size_t idlen = strnlen(order_id, ORDO_ORDER_ID_MAX);
    raw[0] = (uint8_t)type;
    for (int i = 0; i < 8; i++)
        raw[1 + i] = (uint8_t)((uint64_t)key >> (56 - 8 * i));
    memcpy(raw + 9, order_id, idlen);
    size_t n = 9 + idlen;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[2 * n] = '\0';
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Decodes a cursor for query `type` into q. False if it is malformed. */
static bool s_cursor_decode(const char *s, uint32_t len, ordo_pq_type_t type, ordo_pquery_t *q)
{
    uint8_t raw[1 + 8 + ORDO_ORDER_ID_MAX];
    if (len % 2 != 0 || len / 2 < 10 || len / 2 > sizeof raw)
        return false;
    size_t n = len / 2;
    for (size_t i = 0; i < n; i++) {
        int hi = s_hex(s[2 * i]), lo = s_hex(s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    if (raw[0] != (uint8_t)type)
        return false;
    if (type == ORDO_PQ_ORDERS_AS_OF && memcmp(raw + 1, "\0\0\0\0\0\0\0\0", 8) != 0)
        return false; /* its listing is by order_id alone: the key is always 0 */
    ordo_str_t id = {(const char *)raw + 9, (uint32_t)(n - 9)};
    if (!ordo_order_id_valid(id))
        return false;
    uint64_t key = 0;
    for (int i = 0; i < 8; i++)
        key = key << 8 | raw[1 + i];
    q->cursor_key = (int64_t)key;
    memcpy(q->cursor_order_id, id.ptr, id.len);
    q->cursor_order_id[id.len] = '\0';
    q->has_cursor = true;
    return true;
}

/* ---- decoding ----------------------------------------------------------- */

/* Reads an optional integer in [min, max]: true and *present set (false
 * for nil), or false with err naming `field`. */
static bool s_int(ordo_mp_t *r, const char *field, int64_t min, int64_t max, int64_t *out,
                  bool *present, ordo_perror_t *err)
{
    if (ordo_mp_read_nil(r)) {
        *present = false;
        return true;
    }
    int64_t v;
    uint64_t u;
    bool is_int = ordo_mp_read_int(r, &v);
    if (!is_int && max == INT64_MAX && ordo_mp_read_uint(r, &u)) {
        is_int = true; /* above INT64_MAX: as large as it gets (a limit is then clamped) */
        v = INT64_MAX;
    }
    if (!is_int || v < min || v > max) {
        ordo_mp_skip(r);
        if (min == INT64_MIN)
            ordo_perror_field(err, field, "%s must be an integer", field);
        else if (max == INT64_MAX)
            ordo_perror_field(err, field, "%s must be an integer of at least %lld", field,
                              (long long)min);
        else
            ordo_perror_field(err, field, "%s must be an integer from %lld to %lld", field,
                              (long long)min, (long long)max);
        return false;
    }
    *out = v;
    *present = true;
    return true;
}

static bool s_status_name(const char *s, uint32_t len, uint32_t *mask)
{
    ordo_status_t st = ordo_status_from_name(s, len);
    if (st == ORDO_STATUS_NONE)
        return false;
    *mask |= 1u << st;
    return true;
}

/* `status`: one status name, or an array of 1..16 of them. */
static bool s_statuses(ordo_mp_t *r, ordo_pquery_t *q, ordo_perror_t *err)
{
    const char *s;
    uint32_t len, n;
    q->status_mask = 0;
    if (ordo_mp_read_nil(r))
        return true;
    if (ordo_mp_read_str(r, &s, &len)) {
        if (s_status_name(s, len, &q->status_mask))
            return true;
    } else if (ordo_mp_read_array(r, &n)) {
        bool ok = n >= 1 && n <= ORDO_PQ_STATUS_LIST_MAX;
        for (uint32_t i = 0; i < n; i++) {
            if (ok && ordo_mp_read_str(r, &s, &len))
                ok = s_status_name(s, len, &q->status_mask);
            else {
                ok = false;
                ordo_mp_skip(r);
            }
        }
        if (ok)
            return true;
        ordo_perror_field(err, "status",
                          "status must be a status name or an array of 1 to %d status names "
                          "(Created, Confirmed, Preparing, Ready, OutForDelivery, Delivered, "
                          "Cancelled)",
                          ORDO_PQ_STATUS_LIST_MAX);
        return false;
    } else {
        ordo_mp_skip(r);
    }
    ordo_perror_field(err, "status",
                      "status must be one of Created, Confirmed, Preparing, Ready, "
                      "OutForDelivery, Delivered, Cancelled (or an array of them)");
    return false;
}

/* Step 2: `type` and `request_id`. */
static bool s_read_type(ordo_mp_t r, uint32_t n, ordo_pquery_t *q, ordo_perror_t *err)
{
    bool has_type = false, bad_key = false, bad_request_id = false;
    const char *type = NULL;
    uint32_t type_len = 0;
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
            has_type = ordo_mp_read_str(&r, &type, &type_len);
            if (!has_type)
                ordo_mp_skip(&r);
        } else if (ORDO_MP_KEY_IS(k, kl, "request_id")) {
            const char *id;
            uint32_t il;
            q->request_id_len = 0;
            bad_request_id = false;
            if (ordo_mp_read_nil(&r))
                continue;
            if (ordo_mp_read_str(&r, &id, &il) && il >= 1 && il <= ORDO_REQUEST_ID_MAX) {
                memcpy(q->request_id, id, il);
                q->request_id[il] = '\0';
                q->request_id_len = (uint8_t)il;
            } else {
                bad_request_id = true;
                ordo_mp_skip(&r);
            }
        } else {
            ordo_mp_skip(&r);
        }
    }
    if (!has_type) {
        ordo_perror_field(err, "type", "type is required and must be a string naming a query");
        return false;
    }
    q->type = ordo_pq_type_from_name(type, type_len);
    if (q->type == ORDO_PQ_NONE) {
        const char *nul = memchr(type, '\0', type_len);
        int shown = type_len > 64 ? 64 : (int)type_len;
        if (nul && nul - type < shown)
            shown = (int)(nul - type); /* %.*s would stop there anyway */
        while (shown > 0 && shown < (int)type_len && ((uint8_t)type[shown] & 0xc0) == 0x80)
            shown--; /* do not cut a UTF-8 sequence */
        ordo_perror_set(err, "unknown_type",
                        "unknown query type \"%.*s\"%s; the projector answers GetOrderSummary, "
                        "ListOrders, RestaurantBoard, UserHistory, Analytics, OrdersAsOf, "
                        "ProjectionStatus, Rebuild and Ping",
                        shown, type, type_len > (uint32_t)shown ? "..." : "");
        return false;
    }
    if (bad_key) {
        ordo_perror_set(err, "bad_request", "every key of the query map must be a string");
        return false;
    }
    if (bad_request_id) {
        ordo_perror_field(err, "request_id", "request_id must be a string of 1 to 128 bytes");
        return false;
    }
    return true;
}

/* What step 3 saw, for the checks across fields. */
typedef struct {
    bool has_order_id, has_limit, has_from, has_to, has_at_us, has_at_position, has_projection;
    bool bad_cursor;
    const char *cursor;
    uint32_t cursor_len;
    bool has_cursor_text;
} s_seen_t;

#define S_IS(lit) ORDO_MP_KEY_IS(k, kl, lit)

/* Step 3: each field the type reads. */
static bool s_read_fields(ordo_mp_t r, uint32_t n, ordo_pquery_t *q, s_seen_t *seen,
                          ordo_perror_t *err)
{
    const ordo_pq_type_t t = q->type;
    const bool list = t == ORDO_PQ_LIST_ORDERS, asof = t == ORDO_PQ_ORDERS_AS_OF;
    const bool paged = list || asof || t == ORDO_PQ_USER_HISTORY;
    for (uint32_t i = 0; i < n; i++) {
        const char *k, *s;
        uint32_t kl, sl;
        bool present = false;
        int64_t v = 0;
        ordo_mp_read_str(&r, &k, &kl); /* step 2 checked every key */
        if (S_IS("min_position")) {
            if (!s_int(&r, "min_position", 0, INT64_MAX, &q->min_position, &q->has_min_position,
                       err))
                return false;
        } else if (S_IS("wait_ms")) {
            if (!s_int(&r, "wait_ms", 0, ORDO_PQ_WAIT_MS_MAX, &v, &present, err))
                return false;
            q->wait_ms = present ? v : ORDO_PQ_WAIT_MS_DEFAULT;
        } else if (S_IS("order_id") && t == ORDO_PQ_GET_ORDER_SUMMARY) {
            seen->has_order_id = false;
            if (ordo_mp_read_nil(&r))
                continue;
            if (!ordo_mp_read_str(&r, &s, &sl) || !ordo_order_id_valid((ordo_str_t){s, sl})) {
                ordo_perror_field(err, "order_id",
                                  "order_id must be 1 to %d bytes of A-Z a-z 0-9 _ - . :",
                                  ORDO_ORDER_ID_MAX);
                return false;
            }
            memcpy(q->order_id, s, sl);
            q->order_id[sl] = '\0';
            seen->has_order_id = true;
        } else if (S_IS("status") && (list || asof)) {
            if (!s_statuses(&r, q, err))
                return false;
        } else if (S_IS("restaurant_id") &&
                   (list || asof || t == ORDO_PQ_RESTAURANT_BOARD || t == ORDO_PQ_ANALYTICS)) {
            if (!s_int(&r, "restaurant_id", 0, INT64_MAX, &q->restaurant_id,
                       &q->has_restaurant_id, err))
                return false;
        } else if (S_IS("user_id") && (list || t == ORDO_PQ_USER_HISTORY)) {
            if (!s_int(&r, "user_id", 0, INT64_MAX, &q->user_id, &q->has_user_id, err))
                return false;
        } else if (S_IS("created_from_us") && list) {
            if (!s_int(&r, "created_from_us", INT64_MIN, INT64_MAX, &q->created_from_us,
                       &q->has_created_from, err))
                return false;
        } else if (S_IS("created_to_us") && list) {
            if (!s_int(&r, "created_to_us", INT64_MIN, INT64_MAX, &q->created_to_us,
                       &q->has_created_to, err))
                return false;
        } else if (S_IS("limit") && paged) {
            if (!s_int(&r, "limit", 1, INT64_MAX, &v, &seen->has_limit, err))
                return false;
            if (seen->has_limit)
                q->limit = v > ORDO_PQ_LIMIT_MAX ? ORDO_PQ_LIMIT_MAX : v;
        } else if (S_IS("cursor") && paged) {
            seen->has_cursor_text = false;
            seen->bad_cursor = false;
            if (ordo_mp_read_nil(&r))
                continue;
            if (!ordo_mp_read_str(&r, &seen->cursor, &seen->cursor_len)) {
                ordo_mp_skip(&r);
                seen->bad_cursor = true;
            }
            seen->has_cursor_text = true;
        } else if (S_IS("from_us") && t == ORDO_PQ_ANALYTICS) {
            if (!s_int(&r, "from_us", INT64_MIN, INT64_MAX, &q->from_us, &seen->has_from, err))
                return false;
        } else if (S_IS("to_us") && t == ORDO_PQ_ANALYTICS) {
            if (!s_int(&r, "to_us", INT64_MIN, INT64_MAX, &q->to_us, &seen->has_to, err))
                return false;
        } else if (S_IS("bucket") && t == ORDO_PQ_ANALYTICS) {
            q->bucket_us = 3600LL * 1000000;
            if (ordo_mp_read_nil(&r))
                continue;
            bool is_str = ordo_mp_read_str(&r, &s, &sl);
            if (!is_str)
                ordo_mp_skip(&r);
            if (is_str && ORDO_MP_KEY_IS(s, sl, "minute"))
                q->bucket_us = 60LL * 1000000;
            else if (is_str && ORDO_MP_KEY_IS(s, sl, "hour"))
                q->bucket_us = 3600LL * 1000000;
            else if (is_str && ORDO_MP_KEY_IS(s, sl, "day"))
                q->bucket_us = 86400LL * 1000000;
            else {
                ordo_perror_field(err, "bucket", "bucket must be \"minute\", \"hour\" or \"day\"");
                return false;
            }
        } else if (S_IS("at_us") && asof) {
            if (!s_int(&r, "at_us", INT64_MIN, INT64_MAX, &v, &seen->has_at_us, err))
                return false;
            if (seen->has_at_us)
                q->at = v;
        } else if (S_IS("at_position") && asof) {
            int64_t p;
            if (!s_int(&r, "at_position", 0, INT64_MAX, &p, &seen->has_at_position, err))
                return false;
            if (seen->has_at_position)
                q->at = p; /* both given is refused below, so `at` is never ambiguous */
        } else if (S_IS("projection") && t == ORDO_PQ_REBUILD) {
            seen->has_projection = false;
            if (ordo_mp_read_nil(&r))
                continue;
            int p = -1;
            if (ordo_mp_read_str(&r, &s, &sl))
                p = sl == 8 && !memcmp(s, "postgres", 8) ? ORDO_PQ_PROJECTION_POSTGRES
                                                         : ordo_proj_from_name(s, sl);
            else
                ordo_mp_skip(&r);
            if (p < 0) {
                ordo_perror_field(err, "projection",
                                  "projection must name one of summary, restaurant, user, "
                                  "analytics, timeline, postgres");
                return false;
            }
            q->projection = p;
            seen->has_projection = true;
        } else {
            ordo_mp_skip(&r);
        }
    }
    return true;
}

/* How many buckets of bucket_us start in [from, to). */
static int64_t s_bucket_count(int64_t from, int64_t to, int64_t b)
{
    __int128 first = (__int128)from / b * b;
    if (first < from)
        first += b; /* ceil, for negative times too */
    if (first >= to)
        return 0;
    return (int64_t)(((__int128)to - 1 - first) / b + 1);
}

bool ordo_pquery_is_large(const ordo_pquery_t *q)
{
    switch (q->type) {
    case ORDO_PQ_LIST_ORDERS:
    case ORDO_PQ_USER_HISTORY:
    case ORDO_PQ_ORDERS_AS_OF: return q->limit > 100;
    case ORDO_PQ_RESTAURANT_BOARD: return true; /* up to 500 active orders */
    case ORDO_PQ_ANALYTICS: return s_bucket_count(q->from_us, q->to_us, q->bucket_us) > 1000;
    default: return false;
    }
}

/* Step 4: what is required, and the checks across fields. */
static bool s_check(ordo_pquery_t *q, const s_seen_t *seen, ordo_perror_t *err)
{
    switch (q->type) {
    case ORDO_PQ_GET_ORDER_SUMMARY:
        if (!seen->has_order_id) {
            ordo_perror_field(err, "order_id", "order_id is required");
            return false;
        }
        break;
    case ORDO_PQ_RESTAURANT_BOARD:
        if (!q->has_restaurant_id) {
            ordo_perror_field(err, "restaurant_id", "restaurant_id is required");
            return false;
        }
        break;
    case ORDO_PQ_USER_HISTORY:
        if (!q->has_user_id) {
            ordo_perror_field(err, "user_id", "user_id is required");
            return false;
        }
        break;
    case ORDO_PQ_ANALYTICS:
        if (!seen->has_from) {
            ordo_perror_field(err, "from_us", "from_us is required");
            return false;
        }
        if (!seen->has_to) {
            ordo_perror_field(err, "to_us", "to_us is required");
            return false;
        }
        if (q->from_us >= q->to_us) {
            ordo_perror_field(err, "to_us", "to_us must be greater than from_us");
            return false;
        }
        if (s_bucket_count(q->from_us, q->to_us, q->bucket_us) > ORDO_PQ_BUCKETS_MAX) {
            ordo_perror_field(err, "to_us",
                              "[from_us, to_us) spans more than %d buckets; use a larger bucket "
                              "or a shorter range",
                              ORDO_PQ_BUCKETS_MAX);
            return false;
        }
        break;
    case ORDO_PQ_ORDERS_AS_OF:
        if (seen->has_at_us == seen->has_at_position) {
            ordo_perror_field(err, "at_position", "give exactly one of at_us and at_position");
            return false;
        }
        q->at_is_position = seen->has_at_position;
        break;
    case ORDO_PQ_REBUILD:
        if (!seen->has_projection) {
            ordo_perror_field(err, "projection", "projection is required");
            return false;
        }
        break;
    default: break;
    }
    if (seen->has_cursor_text &&
        (seen->bad_cursor || !s_cursor_decode(seen->cursor, seen->cursor_len, q->type, q))) {
        ordo_perror_field(err, "cursor",
                          "cursor must be a next_cursor this query returned, given back as is");
        return false;
    }
    return true;
}

int ordo_pquery_decode(const void *buf, size_t len, ordo_pquery_t *q, ordo_perror_t *err)
{
    memset(q, 0, sizeof *q);
    memset(err, 0, sizeof *err);
    q->wait_ms = ORDO_PQ_WAIT_MS_DEFAULT;
    q->bucket_us = 3600LL * 1000000;
    q->projection = -1;
    if (len > ORDO_PQ_BODY_MAX) {
        ordo_perror_set(err, "bad_request", "the query body is %zu bytes; the limit is %d bytes",
                        len, ORDO_PQ_BODY_MAX);
        return -1;
    }
    ordo_mp_status_t st = ordo_mp_validate(buf, len, ORDO_PQ_NESTING_MAX);
    if (st != ORDO_MP_OK) {
        ordo_perror_set(err, "bad_request", "%s", ordo_mp_status_text(st));
        return -1;
    }
    ordo_mp_t r;
    ordo_mp_init(&r, buf, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n)) {
        ordo_perror_set(err, "bad_request", "the query body must be a MessagePack map");
        return -1;
    }
    if (!s_read_type(r, n, q, err))
        return -1;
    q->limit = q->type == ORDO_PQ_USER_HISTORY ? ORDO_PQ_USER_LIMIT_DEFAULT
                                               : ORDO_PQ_LIST_LIMIT_DEFAULT;
    s_seen_t seen = {0};
    if (!s_read_fields(r, n, q, &seen, err) || !s_check(q, &seen, err))
        return -1;
    return 0;
}

/* ---- replies ------------------------------------------------------------ */

#define P(x)                                                                                       \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            return -1;                                                                             \
    } while (0)

static int s_pack_request_id(msgpack_packer *pk, const ordo_pquery_t *q)
{
    P(ORDO_PACK_KEY(pk, "request_id"));
    return ordo_pack_strn(pk, q->request_id, q->request_id_len);
}

int ordo_preply_pack_ok(msgpack_packer *pk, const ordo_pquery_t *q, uint64_t position,
                        uint32_t n_keys)
{
    bool rid = q && q->request_id_len > 0;
    P(msgpack_pack_map(pk, 2 + rid + n_keys));
    P(ORDO_PACK_KEY(pk, "ok"));
    P(msgpack_pack_true(pk));
    if (rid)
        P(s_pack_request_id(pk, q));
    P(ORDO_PACK_KEY(pk, "position"));
    return msgpack_pack_uint64(pk, position);
}

int ordo_preply_pack_error(msgpack_packer *pk, const ordo_pquery_t *q, const ordo_perror_t *err)
{
    bool rid = q && q->request_id_len > 0;
    P(msgpack_pack_map(pk, 2 + rid));
    P(ORDO_PACK_KEY(pk, "ok"));
    P(msgpack_pack_false(pk));
    if (rid)
        P(s_pack_request_id(pk, q));
    P(ORDO_PACK_KEY(pk, "error"));
    bool field = err->field[0] != '\0';
    P(msgpack_pack_map(pk, 2 + field + 2 * err->has_positions));
    P(ORDO_PACK_KEY(pk, "code"));
    P(ordo_pack_cstr(pk, err->code ? err->code : "unavailable"));
    P(ORDO_PACK_KEY(pk, "message"));
    P(ordo_pack_cstr(pk, err->message));
    if (field) {
        P(ORDO_PACK_KEY(pk, "field"));
        P(ordo_pack_cstr(pk, err->field));
    }
    if (err->has_positions) {
        P(ORDO_PACK_KEY(pk, "position"));
        P(msgpack_pack_int64(pk, err->position));
        P(ORDO_PACK_KEY(pk, "min_position"));
        P(msgpack_pack_int64(pk, err->min_position));
    }
    return 0;
}
