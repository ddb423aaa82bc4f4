/* ordo_result_t: a reply's public form. The reply bytes are decoded with
 * the project's codec (ordo_reply_decode, ordo_event_read,
 * ordo_order_read); the views it hands out (NUL-terminated strings, item
 * and meta arrays, events) are copied into an arena of chunks the result
 * owns, so they stay put until ordo_result_clear(). `raw` spans point
 * into the reply bytes, which the result also owns. */
#include "ordo_client_internal.h"
#include "ordo_hex.h"
#include "ordo_uuid.h"

#include <stdlib.h>
#include <string.h>

#define S_CHUNK_MIN 4096

typedef struct s_chunk {
    struct s_chunk *next;
    size_t size; /* bytes in data */
    size_t used;
    _Alignas(16) unsigned char data[];
} s_chunk_t;

static void *s_alloc(ordo_result_t *res, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    s_chunk_t *c = res->priv_;
    if (!c || c->size - c->used < size) {
        size_t cap = size > S_CHUNK_MIN ? size : S_CHUNK_MIN;
        s_chunk_t *n = malloc(sizeof *n + cap);
        if (!n)
            return NULL;
        n->size = cap;
        n->used = 0;
        /* A big block goes behind the head, so the head keeps its room. */
        if (c && size > S_CHUNK_MIN) {
            n->next = c->next;
            c->next = n;
        } else {
            n->next = c;
            res->priv_ = n;
        }
        c = n;
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

static const char *s_strdup(ordo_result_t *res, const char *s, size_t len)
{
    char *p = s_alloc(res, len + 1);
    if (!p)
        return NULL;
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

static void s_copy(char *dst, size_t size, const char *src, size_t len)
{
    size_t n = len < size - 1 ? len : size - 1;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

void ordo_result_clear(ordo_result_t *res)
{
    if (!res)
        return;
    s_chunk_t *c = res->priv_;
    while (c) {
        s_chunk_t *next = c->next;
        free(c);
        c = next;
    }
    free((void *)res->reply);
    memset(res, 0, sizeof *res);
}

int64_t ordo_result_stat(const ordo_result_t *res, const char *name, int64_t dflt)
{
    for (size_t i = 0; i < res->n_stats; i++)
        if (strcmp(res->stats[i].name, name) == 0)
            return res->stats[i].value;
    return dflt;
}

static const ordo_client_item_t *s_items(ordo_result_t *res, const ordo_item_t *items, uint32_t n)
{
    if (n == 0)
        return NULL;
    ordo_client_item_t *out = s_alloc(res, n * sizeof *out);
    if (!out)
        return NULL;
    for (uint32_t i = 0; i < n; i++) {
        out[i].sku = s_strdup(res, items[i].sku.ptr, items[i].sku.len);
        out[i].name = s_strdup(res, items[i].name.ptr, items[i].name.len);
        out[i].qty = items[i].qty;
        out[i].price_cents = items[i].price_cents;
        if (!out[i].sku || !out[i].name)
            return NULL;
    }
    return out;
}

/* Converts a decoded event into its public form. */
static int s_event(ordo_result_t *res, const ordo_event_t *ev, const uint8_t *raw, size_t raw_len,
                   ordo_client_event_t *out)
{
    const ordo_data_t *d = &ev->data;
    memset(out, 0, sizeof *out);
    out->position = ev->position;
    ordo_uuid_format(ev->event_id, out->event_id);
    out->event_id[ORDO_UUID_TEXT_LEN] = '\0';
    out->order_id = s_strdup(res, ev->order_id.ptr, ev->order_id.len);
    out->version = ev->version;
    out->type = ordo_event_type_name(ev->type);
    out->timestamp_us = ev->timestamp_us;
    out->schema = ev->schema;
    if (ev->has_hash)
        ordo_hex_encode(ev->hash, sizeof ev->hash, out->hash);
    out->user_id = d->user_id;
    out->restaurant_id = d->restaurant_id;
    out->total_cents = d->total_cents;
    if (d->present & ORDO_F_DELIVERY_ADDRESS)
        out->delivery_address = s_strdup(res, d->delivery_address.ptr, d->delivery_address.len);
    if (d->present & ORDO_F_ITEMS) {
        out->items = s_items(res, d->items, d->n_items);
        out->n_items = out->items ? d->n_items : 0;
        if (d->n_items && !out->items)
            return ORDO_E_NOMEM;
    }
    out->has_estimated_minutes = (d->present & ORDO_F_ESTIMATED_MINUTES) != 0;
    out->estimated_minutes = d->estimated_minutes;
    out->has_courier_id = (d->present & ORDO_F_COURIER_ID) != 0;
    out->courier_id = d->courier_id;
    if (d->present & ORDO_F_REASON)
        out->reason = s_strdup(res, d->reason.ptr, d->reason.len);
    if (d->present & ORDO_F_PREVIOUS_STATUS)
        out->previous_status = ordo_status_name(d->previous_status);
    if (d->present & ORDO_F_CURRENCY) {
        out->currency = s_strdup(res, d->currency.ptr, d->currency.len);
        if (!out->currency)
            return ORDO_E_NOMEM;
    }
    if (ev->meta.count) {
        ordo_client_meta_t *m = s_alloc(res, ev->meta.count * sizeof *m);
        if (!m)
            return ORDO_E_NOMEM;
        for (uint32_t i = 0; i < ev->meta.count; i++) {
            const ordo_meta_entry_t *e = &ev->meta.entries[i];
            m[i].key = s_strdup(res, e->key.ptr, e->key.len);
            m[i].is_int = e->is_int;
            m[i].ival = e->is_int ? e->ival : 0;
            m[i].sval = e->is_int ? NULL : s_strdup(res, e->sval.ptr, e->sval.len);
            if (!m[i].key || (!e->is_int && !m[i].sval))
                return ORDO_E_NOMEM;
        }
        out->meta = m;
        out->n_meta = ev->meta.count;
    }
    out->raw = raw;
    out->raw_len = raw_len;
    if (!out->order_id || ((d->present & ORDO_F_DELIVERY_ADDRESS) && !out->delivery_address) ||
        ((d->present & ORDO_F_REASON) && !out->reason))
        return ORDO_E_NOMEM;
    return 0;
}

/* Reads one event at the cursor into a public event. `scratch` is big
 * (items, meta, text): callers keep one on the heap. */
static int s_read_event(ordo_result_t *res, ordo_mp_t *r, ordo_event_t *scratch,
                        ordo_client_event_t *out)
{
    const uint8_t *start = r->p;
    if (ordo_event_read(r, scratch) != 0)
        return ORDO_E_BAD_REPLY;
    return s_event(res, scratch, start, (size_t)(r->p - start), out);
}

static int s_order(ordo_result_t *res, const uint8_t *raw, size_t len)
{
    ordo_mp_t r;
    ordo_mp_init(&r, raw, len);
    ordo_order_t o;
    memset(&o, 0, sizeof o);
    if (ordo_order_read(&r, &o) != 0)
        return ORDO_E_BAD_REPLY;
    int rc = ORDO_E_NOMEM;
    ordo_client_order_t *out = s_alloc(res, sizeof *out);
    if (!out)
        goto out;
    memset(out, 0, sizeof *out);
    out->order_id = s_strdup(res, o.order_id, o.order_id_len);
    out->version = o.version;
    out->status = ordo_status_name(o.status);
    out->user_id = o.user_id;
    out->restaurant_id = o.restaurant_id;
    out->items = s_items(res, o.items, o.n_items);
    out->n_items = out->items ? o.n_items : 0;
    out->total_cents = o.total_cents;
    memcpy(out->currency, o.currency[0] ? o.currency : "USD", sizeof out->currency);
    out->delivery_address = s_strdup(res, o.delivery_address.ptr, o.delivery_address.len);
    out->created_at_us = o.created_at_us;
    out->updated_at_us = o.updated_at_us;
    out->has_estimated_minutes = o.has_estimated_minutes;
    out->estimated_minutes = o.estimated_minutes;
    out->has_courier_id = o.has_courier_id;
    out->courier_id = o.courier_id;
    if (o.status == ORDO_STATUS_CANCELLED)
        out->cancel_reason = s_strdup(res, o.cancel_reason.ptr, o.cancel_reason.len);
    if (o.has_head_hash)
        ordo_hex_encode(o.head_hash, sizeof o.head_hash, out->head_hash);
    out->raw = raw;
    out->raw_len = len;
    if (!out->order_id || !out->delivery_address || (o.n_items && !out->items) ||
        (o.status == ORDO_STATUS_CANCELLED && !out->cancel_reason))
        goto out;
    res->order = out;
    rc = 0;
out:
    ordo_order_clear(&o);
    return rc;
}

static int s_events(ordo_result_t *res, const uint8_t *raw, size_t len)
{
    ordo_mp_t r;
    ordo_mp_init(&r, raw, len);
    uint32_t n;
    if (!ordo_mp_read_array(&r, &n))
        return ORDO_E_BAD_REPLY;
    if (n == 0)
        return 0;
    ordo_client_event_t *evs = s_alloc(res, n * sizeof *evs);
    ordo_event_t *scratch = malloc(sizeof *scratch);
    int rc = evs && scratch ? 0 : ORDO_E_NOMEM;
    for (uint32_t i = 0; rc == 0 && i < n; i++)
        rc = s_read_event(res, &r, scratch, &evs[i]);
    free(scratch);
    if (rc == 0) {
        res->events = evs;
        res->n_events = n;
    }
    return rc;
}

static int s_stats(ordo_result_t *res, const uint8_t *raw, size_t len)
{
    ordo_mp_t r;
    ordo_mp_init(&r, raw, len);
    uint32_t n;
    if (!ordo_mp_read_map(&r, &n))
        return ORDO_E_BAD_REPLY;
    if (n == 0)
        return 0;
    ordo_client_stat_t *st = s_alloc(res, n * sizeof *st);
    if (!st)
        return ORDO_E_NOMEM;
    size_t k = 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *key;
        uint32_t kl;
        if (!ordo_mp_read_str(&r, &key, &kl))
            return ORDO_E_BAD_REPLY;
        int64_t v;
        if (!ordo_mp_read_int(&r, &v)) { /* not an integer: not a counter we can show */
            if (!ordo_mp_skip(&r))
                return ORDO_E_BAD_REPLY;
            continue;
        }
        st[k].name = s_strdup(res, key, kl);
        st[k].value = v;
        if (!st[k].name)
            return ORDO_E_NOMEM;
        k++;
    }
    res->stats = st;
    res->n_stats = k;
    return 0;
}

/* The partition map of a Partitions reply or a wrong_partition error. */
static int s_map(ordo_result_t *res, const ordo_reply_t *reply)
{
    ordo_partition_owner_t *views = malloc(reply->partitions * sizeof *views);
    ordo_client_owner_t *owners = s_alloc(res, reply->partitions * sizeof *owners);
    int rc = views && owners ? 0 : ORDO_E_NOMEM;
    if (rc == 0 && ordo_partition_map_read(reply->map, reply->map_len, reply->partitions,
                                           views) != 0)
        rc = ORDO_E_BAD_REPLY;
    for (uint32_t k = 0; rc == 0 && k < reply->partitions; k++) {
        owners[k].revision = views[k].revision;
        owners[k].endpoint = NULL;
        owners[k].pub = "";
        if (views[k].endpoint.len == 0)
            continue;
        owners[k].endpoint = s_strdup(res, views[k].endpoint.ptr, views[k].endpoint.len);
        owners[k].pub = s_strdup(res, views[k].pub.ptr, views[k].pub.len);
        if (!owners[k].endpoint || !owners[k].pub)
            rc = ORDO_E_NOMEM;
    }
    free(views);
    if (rc == 0) {
        res->partition = reply->partition;
        res->partitions = reply->partitions;
        res->owners = owners;
    }
    return rc;
}

int ordo_result_take_reply(ordo_result_t *res, uint8_t **bytes, size_t len,
                           const ordo_reply_t *reply)
{
    ordo_result_clear(res);
    res->reply = *bytes;
    res->reply_len = len;
    *bytes = NULL;
    res->ok = reply->ok;
    s_copy(res->request_id, sizeof res->request_id, reply->request_id.ptr, reply->request_id.len);
    if (!reply->ok) {
        const ordo_error_t *e = &reply->error;
        const char *code = ordo_code_name(e->code);
        s_copy(res->code, sizeof res->code, code, strlen(code));
        s_copy(res->message, sizeof res->message, e->message, strlen(e->message));
        s_copy(res->field, sizeof res->field, e->field, strlen(e->field));
        const char *st = e->status != ORDO_STATUS_NONE ? ordo_status_name(e->status) : "";
        s_copy(res->status, sizeof res->status, st, strlen(st));
        res->expected_version = e->expected_version;
        res->current_version = e->current_version;
    }
    s_copy(res->order_id, sizeof res->order_id, reply->order_id.ptr, reply->order_id.len);
    res->version = reply->version;
    res->position = reply->position;
    res->duplicate = reply->duplicate;
    res->next_position = reply->next_position;
    res->head_position = reply->head_position;
    int rc = 0;
    if (reply->event_len) {
        ordo_client_event_t *ev = s_alloc(res, sizeof *ev);
        ordo_event_t *scratch = malloc(sizeof *scratch);
        if (!ev || !scratch) {
            rc = ORDO_E_NOMEM;
        } else {
            ordo_mp_t r;
            ordo_mp_init(&r, reply->event, reply->event_len);
            rc = s_read_event(res, &r, scratch, ev);
            if (rc == 0)
                res->event = ev;
        }
        free(scratch);
    }
    if (rc == 0 && reply->order_len)
        rc = s_order(res, reply->order, reply->order_len);
    if (rc == 0 && reply->events_len)
        rc = s_events(res, reply->events, reply->events_len);
    if (rc == 0 && reply->stats_len)
        rc = s_stats(res, reply->stats, reply->stats_len);
    if (rc == 0 && reply->partitions)
        rc = s_map(res, reply);
    return rc;
}

int ordo_result_take_event(ordo_result_t *res, uint8_t **bytes, size_t len)
{
    ordo_result_clear(res);
    res->reply = *bytes;
    res->reply_len = len;
    *bytes = NULL;
    ordo_event_t *scratch = malloc(sizeof *scratch);
    ordo_client_event_t *ev = s_alloc(res, sizeof *ev);
    int rc = ORDO_E_NOMEM;
    if (scratch && ev) {
        rc = ORDO_E_BAD_REPLY;
        if (ordo_mp_validate(res->reply, len, ORDO_NESTING_MAX + 2) == ORDO_MP_OK &&
            ordo_event_decode(res->reply, len, scratch) == 0)
            rc = s_event(res, scratch, res->reply, len, ev);
    }
    free(scratch);
    if (rc == 0) {
        res->ok = true;
        res->event = ev;
        res->position = (int64_t)ev->position;
        res->version = ev->version;
        s_copy(res->order_id, sizeof res->order_id, ev->order_id, strlen(ev->order_id));
    }
    return rc;
}
