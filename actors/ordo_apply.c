/* apply(): an order's state as its events add up, plus clear/copy/lookup.
 * The order owns every string it keeps: one `arena` block holds the items
 * array, their sku/name bytes and the delivery address; `arena2` the cancel
 * reason; each request id has its own block. apply() is two steps:
 * prepare checks the event and allocates everything, commit changes the
 * order and cannot fail; so a refused or failed apply leaves the order
 * exactly as it was, and the engine prepares before it writes an event. */
#include "ordo_order.h"

#include "ordo_hash.h"

#include <stdlib.h>
#include <string.h>

/* A malloc'd copy of `len` bytes (NULL when len is 0 or memory ran out). */
static char *s_dup(const char *p, size_t len)
{
    if (len == 0)
        return NULL;
    char *c = malloc(len);
    if (c)
        memcpy(c, p, len);
    return c;
}

/* Builds one block holding `items` (n of them), their strings and
 * `address`; the copies' views point into it. Nothing to copy gives a NULL
 * block. Returns 0, or -1 when memory ran out. */
static int s_arena_build(const ordo_item_t *items, uint32_t n, ordo_str_t address, char **arena,
                         ordo_item_t **items_out, ordo_str_t *address_out)
{
    size_t size = (size_t)n * sizeof(ordo_item_t) + address.len;
    for (uint32_t i = 0; i < n; i++)
        size += (size_t)items[i].sku.len + items[i].name.len;
    *arena = NULL;
    *items_out = NULL;
    *address_out = (ordo_str_t){NULL, 0};
    if (size == 0)
        return 0;
    char *block = malloc(size);
    if (!block)
        return -1;
    ordo_item_t *copy = n ? (ordo_item_t *)block : NULL;
    char *p = block + (size_t)n * sizeof(ordo_item_t);
    for (uint32_t i = 0; i < n; i++) {
        copy[i] = items[i];
        if (items[i].sku.len)
            memcpy(p, items[i].sku.ptr, items[i].sku.len);
        copy[i].sku.ptr = p;
        p += items[i].sku.len;
        if (items[i].name.len)
            memcpy(p, items[i].name.ptr, items[i].name.len);
        copy[i].name.ptr = p;
        p += items[i].name.len;
    }
    if (address.len) {
        memcpy(p, address.ptr, address.len);
        *address_out = (ordo_str_t){p, address.len};
    }
    *arena = block;
    *items_out = copy;
    return 0;
}

/* The event's meta "request_id" string (the last one), or len 0. */
static ordo_str_t s_event_request_id(const ordo_event_t *event)
{
    ordo_str_t id = {NULL, 0};
    uint32_t count = event->meta.count <= ORDO_META_MAX ? event->meta.count : ORDO_META_MAX;
    for (uint32_t i = 0; i < count; i++) {
        const ordo_meta_entry_t *e = &event->meta.entries[i];
        if (!e->is_int && e->key.len == 10 && memcmp(e->key.ptr, "request_id", 10) == 0)
            id = e->sval;
    }
    return id;
}

void ordo_order_clear(ordo_order_t *order)
{
    free(order->arena);
    free(order->arena2);
    for (int i = 0; i < ORDO_MAX_VERSION; i++)
        free((void *)order->request_ids[i].ptr);
    memset(order, 0, sizeof *order);
}

int ordo_order_copy(ordo_order_t *dst, const ordo_order_t *src)
{
    ordo_order_t tmp = *src;
    tmp.arena = NULL;
    tmp.arena2 = NULL;
    memset(tmp.request_ids, 0, sizeof tmp.request_ids);
    if (s_arena_build(src->items, src->n_items, src->delivery_address, &tmp.arena, &tmp.items,
                      &tmp.delivery_address) != 0)
        goto fail;
    if (src->cancel_reason.len) {
        tmp.arena2 = s_dup(src->cancel_reason.ptr, src->cancel_reason.len);
        if (!tmp.arena2)
            goto fail;
        tmp.cancel_reason.ptr = tmp.arena2;
    }
    for (int i = 0; i < ORDO_MAX_VERSION; i++) {
        ordo_str_t id = src->request_ids[i];
        if (id.len == 0)
            continue;
        char *c = s_dup(id.ptr, id.len);
        if (!c)
            goto fail;
        tmp.request_ids[i] = (ordo_str_t){c, id.len};
    }
    *dst = tmp;
    return 0;
fail:
    ordo_order_clear(&tmp);
    return -1;
}

uint32_t ordo_request_id_hash(ordo_str_t request_id)
{
    if (request_id.len == 0)
        return 0;
    return (uint32_t)ordo_hash64(request_id.ptr, request_id.len, 0x6f72646f72696473ull);
}

uint32_t ordo_order_find_request(const ordo_order_t *order, ordo_str_t request_id)
{
    if (request_id.len == 0)
        return 0;
    uint32_t h = ordo_request_id_hash(request_id);
    for (uint32_t v = 1; v <= order->version && v <= ORDO_MAX_VERSION; v++) {
        ordo_str_t id = order->request_ids[v - 1];
        if (order->request_hashes[v - 1] == h && id.len == request_id.len &&
            memcmp(id.ptr, request_id.ptr, id.len) == 0)
            return v;
    }
    return 0;
}

/* Whether `event` may follow `order`: type, order id, version. */
static bool s_follows(const ordo_order_t *order, const ordo_event_t *event)
{
    if (!ordo_event_allowed(order->status, event->type))
        return false;
    if (event->version != (uint32_t)order->version + 1 || event->version > ORDO_MAX_VERSION)
        return false;
    if (order->status == ORDO_STATUS_NONE)
        return event->order_id.len >= 1 && event->order_id.len <= ORDO_ORDER_ID_MAX &&
               event->data.n_items <= ORDO_ITEMS_MAX;
    return event->order_id.len == order->order_id_len &&
           memcmp(event->order_id.ptr, order->order_id, order->order_id_len) == 0;
}

int ordo_apply_prepare(const ordo_order_t *order, const ordo_event_t *event, ordo_apply_prep_t *p)
{
    memset(p, 0, sizeof *p);
    if (!s_follows(order, event))
        return -1;
    const ordo_data_t *d = &event->data;
    if (event->type == ORDO_EVT_ORDER_CREATED &&
        s_arena_build(d->items, d->n_items, d->delivery_address, &p->arena, &p->items,
                      &p->address) != 0)
        goto fail;
    if (event->type == ORDO_EVT_ORDER_CANCELLED && d->reason.len) {
        if (!(p->reason = s_dup(d->reason.ptr, d->reason.len)))
            goto fail;
    }
    ordo_str_t id = s_event_request_id(event);
    if (id.len && !(p->rid = s_dup(id.ptr, id.len)))
        goto fail;
    p->rid_len = p->rid ? id.len : 0;
    return 0;
fail:
    ordo_apply_prep_free(p);
    return -1;
}

void ordo_apply_prep_free(ordo_apply_prep_t *p)
{
    free(p->arena);
    free(p->reason);
    free(p->rid);
    memset(p, 0, sizeof *p);
}

void ordo_apply_commit(ordo_order_t *order, const ordo_event_t *event, ordo_apply_prep_t *p)
{
    const ordo_data_t *d = &event->data;
    switch (event->type) {
    case ORDO_EVT_ORDER_CREATED: {
        memcpy(order->order_id, event->order_id.ptr, event->order_id.len);
        order->order_id_len = (uint8_t)event->order_id.len;
        order->user_id = d->user_id;
        order->restaurant_id = d->restaurant_id;
        int64_t total = 0;
        for (uint32_t i = 0; i < d->n_items; i++)
            total += d->items[i].qty * d->items[i].price_cents;
        order->total_cents = (d->present & ORDO_F_TOTAL_CENTS) ? d->total_cents : total;
        order->n_items = d->n_items;
        order->items = p->items;
        order->delivery_address = p->address;
        order->arena = p->arena;
        if ((d->present & ORDO_F_CURRENCY) && d->currency.len == 3)
            memcpy(order->currency, d->currency.ptr, 3);
        else
            memcpy(order->currency, ORDO_CURRENCY_DEFAULT, 3);
        order->currency[3] = '\0';
        order->created_at_us = event->timestamp_us;
        break;
    }
    case ORDO_EVT_ORDER_PREPARING:
        if (d->present & ORDO_F_ESTIMATED_MINUTES) {
            order->has_estimated_minutes = true;
            order->estimated_minutes = d->estimated_minutes;
        }
        break;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY:
        if (d->present & ORDO_F_COURIER_ID) {
            order->has_courier_id = true;
            order->courier_id = d->courier_id;
        }
        break;
    case ORDO_EVT_ORDER_CANCELLED:
        order->arena2 = p->reason;
        order->cancel_reason = (ordo_str_t){p->reason, p->reason ? d->reason.len : 0};
        break;
    default: break;
    }
    order->request_ids[event->version - 1] = (ordo_str_t){p->rid, p->rid_len};
    order->request_hashes[event->version - 1] =
        ordo_request_id_hash(order->request_ids[event->version - 1]);
    order->positions[event->version - 1] = event->position;
    order->has_head_hash = event->has_hash;
    if (event->has_hash)
        memcpy(order->head_hash, event->hash, sizeof order->head_hash);
    else
        memset(order->head_hash, 0, sizeof order->head_hash);
    order->status = ordo_status_after(event->type);
    order->version = (uint8_t)event->version;
    order->updated_at_us = event->timestamp_us;
    if (event->type != ORDO_EVT_ORDER_CREATED)
        free(p->arena); /* (none was made) */
    if (event->type != ORDO_EVT_ORDER_CANCELLED)
        free(p->reason);
    memset(p, 0, sizeof *p); /* the order owns what it took */
}

int ordo_apply(ordo_order_t *order, const ordo_event_t *event)
{
    ordo_apply_prep_t p;
    if (ordo_apply_prepare(order, event, &p) != 0)
        return -1;
    ordo_apply_commit(order, event, &p);
    return 0;
}
