/* decide(): what a checked command does to an order, following PROTOCOL.md's
 * Precise rules 4-7 in order (idempotency, existence, version, status), and
 * the event it appends. Pure and allocation-free: the event's views point
 * into the command, the order and static strings, so the command must
 * outlive the event. */
#include "ordo_order.h"

#include <assert.h>
#include <string.h>

static bool s_str_eq(ordo_str_t a, const char *lit)
{
    size_t n = strlen(lit);
    return a.len == n && (n == 0 || memcmp(a.ptr, lit, n) == 0);
}

/* meta = the client's entries in the order sent, minus "request_id" and
 * "command", then command = <type name>, then request_id when given. */
static void s_build_meta(const ordo_request_t *cmd, ordo_meta_t *meta)
{
    uint32_t n = 0;
    uint32_t count = cmd->meta.count;
    if (count > ORDO_META_CLIENT_MAX) /* unchecked command: never overflow */
        count = ORDO_META_CLIENT_MAX;
    for (uint32_t i = 0; i < count; i++) {
        const ordo_meta_entry_t *e = &cmd->meta.entries[i];
        if (s_str_eq(e->key, "request_id") || s_str_eq(e->key, "command"))
            continue;
        meta->entries[n++] = *e;
    }
    const char *name = ordo_request_type_name(cmd->type);
    meta->entries[n++] = (ordo_meta_entry_t){
        .key = ORDO_STR("command"),
        .sval = {name, (uint32_t)strlen(name)},
    };
    if (cmd->request_id.len)
        meta->entries[n++] = (ordo_meta_entry_t){
            .key = ORDO_STR("request_id"),
            .sval = cmd->request_id,
        };
    meta->count = n;
}

static void s_build_data(const ordo_order_t *order, const ordo_request_t *cmd,
                         ordo_event_type_t type, ordo_data_t *out)
{
    const ordo_data_t *in = &cmd->data;
    bool has = cmd->has_data;
    switch (type) {
    case ORDO_EVT_ORDER_CREATED: {
        uint32_t n = in->n_items <= ORDO_ITEMS_MAX ? in->n_items : ORDO_ITEMS_MAX;
        int64_t total = 0;
        for (uint32_t i = 0; i < n; i++) {
            out->items[i] = (ordo_item_t){
                .sku = in->items[i].sku,
                .name = in->items[i].name,
                .qty = in->items[i].qty,
                .price_cents = in->items[i].price_cents,
            };
            total += in->items[i].qty * in->items[i].price_cents; /* bounded by the limits */
        }
        out->present = ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS |
                       ORDO_F_TOTAL_CENTS | ORDO_F_DELIVERY_ADDRESS | ORDO_F_CURRENCY;
        out->currency = (in->present & ORDO_F_CURRENCY) ? in->currency
                                                         : ORDO_STR(ORDO_CURRENCY_DEFAULT);
        out->user_id = in->user_id;
        out->restaurant_id = in->restaurant_id;
        out->n_items = n;
        out->total_cents = total;
        out->delivery_address = in->delivery_address;
        break;
    }
    case ORDO_EVT_ORDER_CONFIRMED:
        out->present = ORDO_F_RESTAURANT_ID;
        out->restaurant_id = order->restaurant_id;
        break;
    case ORDO_EVT_ORDER_PREPARING:
        if (has && (in->present & ORDO_F_ESTIMATED_MINUTES)) {
            out->present = ORDO_F_ESTIMATED_MINUTES;
            out->estimated_minutes = in->estimated_minutes;
        }
        break;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY:
        if (has && (in->present & ORDO_F_COURIER_ID)) {
            out->present = ORDO_F_COURIER_ID;
            out->courier_id = in->courier_id;
        }
        break;
    case ORDO_EVT_ORDER_CANCELLED:
        out->present = ORDO_F_REASON | ORDO_F_PREVIOUS_STATUS;
        out->reason = in->reason;
        out->previous_status = order->status;
        break;
    default:
        break;
    }
}

ordo_decision_t ordo_decide(const ordo_order_t *order, const ordo_request_t *cmd,
                            ordo_event_t *event, uint32_t *dup_version, ordo_error_t *err)
{
    assert(ordo_request_is_command(cmd->type));
    assert(order->status == ORDO_STATUS_NONE ||
           (cmd->order_id.len == order->order_id_len &&
            memcmp(cmd->order_id.ptr, order->order_id, order->order_id_len) == 0));
    const int oid_len = (int)cmd->order_id.len;
    const char *oid = cmd->order_id.ptr;

    /* 4. Idempotency, whatever the rest of the request says. */
    if (cmd->request_id.len) {
        uint32_t v = ordo_order_find_request(order, cmd->request_id);
        if (v) {
            *dup_version = v;
            return ORDO_DECIDE_DUPLICATE;
        }
    }

    /* 5. Existence. */
    bool exists = order->status != ORDO_STATUS_NONE;
    if (cmd->type == ORDO_REQ_CREATE_ORDER && exists) {
        ordo_error_set(err, ORDO_CODE_ALREADY_EXISTS, "order %.*s already exists (version %u)",
                       oid_len, oid, (unsigned)order->version);
        err->current_version = order->version;
        return ORDO_DECIDE_ERROR;
    }
    if (cmd->type != ORDO_REQ_CREATE_ORDER && !exists) {
        ordo_error_set(err, ORDO_CODE_NOT_FOUND, "order %.*s does not exist", oid_len, oid);
        return ORDO_DECIDE_ERROR;
    }

    /* 6. Version. */
    int64_t current = exists ? order->version : 0;
    if (cmd->expected_version != -1 && cmd->expected_version != current) {
        ordo_error_set(err, ORDO_CODE_CONFLICT,
                       "expected version %lld but order %.*s is at version %lld",
                       (long long)cmd->expected_version, oid_len, oid, (long long)current);
        err->expected_version = cmd->expected_version;
        err->current_version = current;
        return ORDO_DECIDE_ERROR;
    }

    /* 7. Status. */
    ordo_event_type_t type = ordo_event_type_for(cmd->type);
    if (!ordo_event_allowed(order->status, type)) {
        ordo_error_set(err, ORDO_CODE_INVALID_TRANSITION, "%s is not allowed when the order is %s",
                       ordo_request_type_name(cmd->type), ordo_status_name(order->status));
        err->status = order->status;
        return ORDO_DECIDE_ERROR;
    }

    memset(event, 0, sizeof *event);
    event->order_id = cmd->order_id;
    event->version = (uint32_t)current + 1;
    event->type = type;
    event->schema = ordo_event_schema_current(type);
    s_build_data(order, cmd, type, &event->data);
    s_build_meta(cmd, &event->meta);
    return ORDO_DECIDE_EVENT;
}
