/* Wire names of statuses, request types (from the request-type table),
 * event types and error codes, spelled exactly as PROTOCOL.md spells them,
 * and the lookups back from them. Each table is indexed by its enum; the
 * NONE entry is "" (never sent on the wire), so a lookup of "" or of an
 * unknown name gives NONE. */
#include "ordo_order.h"

#include <string.h>

static const char *const s_status_names[ORDO_STATUS_COUNT_] = {
    [ORDO_STATUS_NONE] = "",
    [ORDO_STATUS_CREATED] = "Created",
    [ORDO_STATUS_CONFIRMED] = "Confirmed",
    [ORDO_STATUS_PREPARING] = "Preparing",
    [ORDO_STATUS_READY] = "Ready",
    [ORDO_STATUS_OUT_FOR_DELIVERY] = "OutForDelivery",
    [ORDO_STATUS_DELIVERED] = "Delivered",
    [ORDO_STATUS_CANCELLED] = "Cancelled",
};

static const char *const s_event_names[ORDO_EVT_COUNT_] = {
    [ORDO_EVT_NONE] = "",
    [ORDO_EVT_ORDER_CREATED] = "OrderCreated",
    [ORDO_EVT_ORDER_CONFIRMED] = "OrderConfirmed",
    [ORDO_EVT_ORDER_PREPARING] = "OrderPreparing",
    [ORDO_EVT_ORDER_READY] = "OrderReady",
    [ORDO_EVT_ORDER_OUT_FOR_DELIVERY] = "OrderOutForDelivery",
    [ORDO_EVT_ORDER_DELIVERED] = "OrderDelivered",
    [ORDO_EVT_ORDER_CANCELLED] = "OrderCancelled",
};

static const char *const s_code_names[ORDO_CODE_COUNT_] = {
    [ORDO_CODE_OK] = "ok",
    [ORDO_CODE_BAD_REQUEST] = "bad_request",
    [ORDO_CODE_UNKNOWN_TYPE] = "unknown_type",
    [ORDO_CODE_NOT_FOUND] = "not_found",
    [ORDO_CODE_ALREADY_EXISTS] = "already_exists",
    [ORDO_CODE_INVALID_TRANSITION] = "invalid_transition",
    [ORDO_CODE_CONFLICT] = "conflict",
    [ORDO_CODE_OVERLOADED] = "overloaded",
    [ORDO_CODE_UNAVAILABLE] = "unavailable",
    [ORDO_CODE_WRONG_PARTITION] = "wrong_partition",
};

/* Index of `s` (len bytes) in names[first..count), or -1. */
static int s_lookup(const char *const *names, int first, int count, const char *s, size_t len)
{
    if (!s || len == 0)
        return -1;
    for (int i = first; i < count; i++)
        if (strlen(names[i]) == len && memcmp(names[i], s, len) == 0)
            return i;
    return -1;
}

const char *ordo_status_name(ordo_status_t s)
{
    return (unsigned)s < ORDO_STATUS_COUNT_ ? s_status_names[s] : "";
}

ordo_status_t ordo_status_from_name(const char *s, size_t len)
{
    int i = s_lookup(s_status_names, 1, ORDO_STATUS_COUNT_, s, len);
    return i < 0 ? ORDO_STATUS_NONE : (ordo_status_t)i;
}

const char *ordo_request_type_name(ordo_request_type_t t)
{
    return ordo_request_info(t)->name;
}

ordo_request_type_t ordo_request_type_from_name(const char *s, size_t len)
{
    if (!s || len == 0)
        return ORDO_REQ_NONE;
    for (int t = 1; t < ORDO_REQ_COUNT_; t++) {
        const char *name = ordo_request_table[t].name;
        if (strlen(name) == len && memcmp(name, s, len) == 0)
            return (ordo_request_type_t)t;
    }
    return ORDO_REQ_NONE;
}

const char *ordo_event_type_name(ordo_event_type_t t)
{
    return (unsigned)t < ORDO_EVT_COUNT_ ? s_event_names[t] : "";
}

ordo_event_type_t ordo_event_type_from_name(const char *s, size_t len)
{
    int i = s_lookup(s_event_names, 1, ORDO_EVT_COUNT_, s, len);
    return i < 0 ? ORDO_EVT_NONE : (ordo_event_type_t)i;
}

/* "ok" names ORDO_CODE_OK (it never goes on the wire as a code). */
const char *ordo_code_name(ordo_code_t c)
{
    return (unsigned)c < ORDO_CODE_COUNT_ ? s_code_names[c] : "";
}

ordo_code_t ordo_code_from_name(const char *s, size_t len)
{
    int i = s_lookup(s_code_names, 0, ORDO_CODE_COUNT_, s, len);
    return i < 0 ? (ordo_code_t)-1 : (ordo_code_t)i;
}

ordo_event_type_t ordo_event_type_for(ordo_request_type_t command)
{
    return ordo_request_info(command)->event;
}

ordo_request_type_t ordo_request_type_for(ordo_event_type_t event)
{
    for (int t = 1; t < ORDO_REQ_COUNT_ && event != ORDO_EVT_NONE; t++)
        if (ordo_request_table[t].event == event)
            return (ordo_request_type_t)t;
    return ORDO_REQ_NONE;
}

/* The state machine, by event: the status it leaves the order in. */
ordo_status_t ordo_status_after(ordo_event_type_t t)
{
    switch (t) {
    case ORDO_EVT_ORDER_CREATED: return ORDO_STATUS_CREATED;
    case ORDO_EVT_ORDER_CONFIRMED: return ORDO_STATUS_CONFIRMED;
    case ORDO_EVT_ORDER_PREPARING: return ORDO_STATUS_PREPARING;
    case ORDO_EVT_ORDER_READY: return ORDO_STATUS_READY;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY: return ORDO_STATUS_OUT_FOR_DELIVERY;
    case ORDO_EVT_ORDER_DELIVERED: return ORDO_STATUS_DELIVERED;
    case ORDO_EVT_ORDER_CANCELLED: return ORDO_STATUS_CANCELLED;
    default: return ORDO_STATUS_NONE;
    }
}

bool ordo_event_allowed(ordo_status_t from, ordo_event_type_t t)
{
    switch (t) {
    case ORDO_EVT_ORDER_CREATED: return from == ORDO_STATUS_NONE;
    case ORDO_EVT_ORDER_CONFIRMED: return from == ORDO_STATUS_CREATED;
    case ORDO_EVT_ORDER_PREPARING: return from == ORDO_STATUS_CONFIRMED;
    case ORDO_EVT_ORDER_READY: return from == ORDO_STATUS_PREPARING;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY: return from == ORDO_STATUS_READY;
    case ORDO_EVT_ORDER_DELIVERED: return from == ORDO_STATUS_OUT_FOR_DELIVERY;
    case ORDO_EVT_ORDER_CANCELLED:
        return from == ORDO_STATUS_CREATED || from == ORDO_STATUS_CONFIRMED ||
               from == ORDO_STATUS_PREPARING;
    default: return false;
    }
}
