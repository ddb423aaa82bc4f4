/* A batch of events into the PostgreSQL read models (see ordo_pgbatch.h):
 * the fold in memory, the COPY text of each table, the transaction. */
#include "ordo_pgbatch.h"

#include "ordo_hash.h"
#include "ordo_order.h"
#include "ordo_pgschema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_HOUR_US (3600ll * 1000000)
#define S_COPY_PIECE (1 << 20) /* bytes per PQputCopyData */
#define S_OUT_KEPT (128u << 20) /* COPY data kept between batches, at most */

/* A string of the batch's: in its arena (`strs`), so that adding an order
 * allocates nothing and clearing the batch frees nothing. */
typedef struct {
    uint32_t off, len; /* len S_NULL: SQL NULL */
} s_str_t;
#define S_NULL UINT32_MAX

/* An order the batch touches. */
typedef struct {
    s_str_t id;
    uint64_t hash;
    bool created; /* its OrderCreated is in the batch: the whole row is here */
    int64_t user_id, restaurant_id, total_cents, created_us;
    s_str_t items;   /* JSON (created) */
    s_str_t address; /* (created) */
    char currency[4];
    /* After its last event in the batch: */
    uint8_t status; /* ordo_status_t */
    uint32_t version;
    int64_t at_us;
    uint64_t position;
    int64_t first_us; /* its first event in the batch */
    uint64_t first_position;
    bool has_minutes, has_courier;
    int64_t minutes, courier;
    s_str_t reason; /* NULL unless cancelled in the batch */
    uint8_t cancelled_from;
    int64_t last_event; /* index into events of its last event here */
    int64_t hour_row;   /* index into hours of its row for its latest hour */
} s_order_t;

/* An event: the status interval it begins. */
typedef struct {
    uint32_t order;
    uint8_t status;
    int64_t at_us;
    uint64_t position;
    int64_t next; /* index of the order's next event in the batch, or -1 */
} s_event_t;

/* What events of one hour add to the hourly analytics: those of one
 * older order (its restaurant and total are in the table, not here), or,
 * summed, those of every order created in the batch with one restaurant
 * and currency (known here: the row is the analytics row's increment). */
#define S_NO_ORDER UINT32_MAX
typedef struct {
    uint32_t order; /* an older order's index, or S_NO_ORDER: a sum */
    int64_t hour_us;
    int64_t restaurant_id, revenue_cents; /* a sum's */
    char currency[4];                     /* a sum's */
    uint32_t by_type[ORDO_EVT_COUNT_]; /* [ORDO_EVT_ORDER_CREATED] ... */
    uint32_t cancelled_from[ORDO_STATUS_PREPARING + 1];
} s_hours_t;

/* A slot of the orders' hash table: which order, and 32 bits of its hash,
 * so that a probe reads the order only when those match. */
typedef struct {
    uint32_t order; /* index + 1; 0: empty */
    uint32_t tag;
} s_slot_t;

/* A growing buffer. */
typedef struct {
    char *data;
    size_t len, cap;
    bool failed;
} s_text_t;

struct ordo_pgbatch_state {
    s_order_t *orders;
    size_t n_orders, cap_orders;
    s_event_t *events;
    size_t cap_events;
    s_hours_t *hours;
    size_t n_hours, cap_hours;
    s_slot_t *slots; /* open addressing */
    size_t n_slots;  /* a power of two */
    s_text_t strs;   /* the strings' arena */
    s_text_t out;    /* the COPY data being sent, kept for the next batch */
    uint32_t *sum_slots; /* the same for the sums in hours: index + 1 */
    size_t n_sum_slots, n_sums;
};

/* ---- a growing buffer ---------------------------------------------------------- */

static void s_raw(s_text_t *t, const char *s, size_t n)
{
    if (t->failed || n == 0)
        return;
    if (t->len + n > t->cap) {
        size_t cap = t->cap ? t->cap : 1 << 16;
        while (cap < t->len + n)
            cap *= 2;
        char *p = realloc(t->data, cap);
        if (!p) {
            t->failed = true;
            return;
        }
        t->data = p;
        t->cap = cap;
    }
    memcpy(t->data + t->len, s, n);
    t->len += n;
}

/* ---- COPY binary (no text to format here or parse there) ---------------- */

#define S_PG_EPOCH_US 946684800000000ll /* 2000-01-01, PostgreSQL's epoch */

static void s_be(s_text_t *t, uint64_t v, int bytes)
{
    char b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (char)(v >> (8 * (bytes - 1 - i)));
    s_raw(t, b, (size_t)bytes);
}

static void s_bin_header(s_text_t *t)
{
    s_raw(t, "PGCOPY\n\377\r\n\0", 11);
    s_be(t, 0, 4); /* flags */
    s_be(t, 0, 4); /* header extension */
}

static void s_bin_trailer(s_text_t *t)
{
    s_be(t, 0xFFFF, 2);
}

static void s_bin_row(s_text_t *t, int fields)
{
    s_be(t, (uint64_t)fields, 2);
}

static void s_bin_null(s_text_t *t)
{
    s_be(t, 0xFFFFFFFFu, 4);
}

static void s_bin_text(s_text_t *t, const char *s)
{
    if (!s) {
        s_bin_null(t);
        return;
    }
    size_t n = strlen(s);
    s_be(t, n, 4);
    s_raw(t, s, n);
}

/* A string of the arena. */
static void s_bin_str(s_text_t *t, const s_text_t *strs, s_str_t s)
{
    if (s.len == S_NULL) {
        s_bin_null(t);
        return;
    }
    s_be(t, s.len, 4);
    s_raw(t, strs->data + s.off, s.len);
}

static void s_bin_jsonb(s_text_t *t, const s_text_t *strs, s_str_t json)
{
    s_be(t, (uint64_t)json.len + 1, 4);
    s_raw(t, "\1", 1); /* jsonb's binary form: version 1, then the text */
    s_raw(t, strs->data + json.off, json.len);
}

static void s_bin_i64(s_text_t *t, bool present, int64_t v)
{
    if (!present) {
        s_bin_null(t);
        return;
    }
    s_be(t, 8, 4);
    s_be(t, (uint64_t)v, 8);
}

static void s_bin_i32(s_text_t *t, bool present, int64_t v)
{
    if (!present) {
        s_bin_null(t);
        return;
    }
    s_be(t, 4, 4);
    s_be(t, (uint64_t)(uint32_t)(int32_t)v, 4);
}

static void s_bin_time(s_text_t *t, int64_t us)
{
    s_bin_i64(t, true, us - S_PG_EPOCH_US);
}

/* ---- the fold ----------------------------------------------------------- */

void ordo_pgbatch_init(ordo_pgbatch_t *b)
{
    memset(b, 0, sizeof *b);
}

void ordo_pgbatch_clear(ordo_pgbatch_t *b)
{
    ordo_pgbatch_state_t *st = b->st;
    if (st) {
        st->n_orders = st->n_hours = st->n_sums = 0;
        st->strs.len = 0;
        st->strs.failed = false;
        if (st->strs.cap > S_OUT_KEPT) { /* a large batch's: not kept for long quiet times */
            free(st->strs.data);
            st->strs = (s_text_t){0};
        }
        if (st->slots)
            memset(st->slots, 0, st->n_slots * sizeof *st->slots);
        if (st->sum_slots)
            memset(st->sum_slots, 0, st->n_sum_slots * sizeof *st->sum_slots);
    }
    b->n = 0;
    b->first = b->last = 0;
    b->bytes = 0;
    b->failed = false;
}

void ordo_pgbatch_free(ordo_pgbatch_t *b)
{
    ordo_pgbatch_clear(b);
    if (b->st) {
        free(b->st->orders);
        free(b->st->events);
        free(b->st->hours);
        free(b->st->slots);
        free(b->st->sum_slots);
        free(b->st->strs.data);
        free(b->st->out.data);
        free(b->st);
    }
    memset(b, 0, sizeof *b);
}

/* Grows an array to hold one more element. */
static bool s_room(void **arr, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t cap2 = *cap ? *cap * 2 : 4096;
    void *p = realloc(*arr, cap2 * size);
    if (!p)
        return false;
    *arr = p;
    *cap = cap2;
    return true;
}

static bool s_rehash(ordo_pgbatch_state_t *st, size_t n_slots)
{
    s_slot_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < st->n_orders; i++) {
        uint64_t h = st->orders[i].hash;
        size_t k = h & (n_slots - 1);
        while (slots[k].order)
            k = (k + 1) & (n_slots - 1);
        slots[k] = (s_slot_t){(uint32_t)i + 1, (uint32_t)(h >> 32)};
    }
    free(st->slots);
    st->slots = slots;
    st->n_slots = n_slots;
    return true;
}

/* Copies a string into the arena; with a NUL after it, not counted. */
static s_str_t s_keep(s_text_t *strs, const char *s, size_t n)
{
    s_str_t r = {(uint32_t)strs->len, (uint32_t)n};
    if (strs->len + n + 1 > UINT32_MAX)
        strs->failed = true; /* offsets are 32 bits; batches are far smaller */
    s_raw(strs, s, n);
    s_raw(strs, "", 1);
    return r;
}

static const char *s_chars(const ordo_pgbatch_state_t *st, s_str_t s)
{
    return s.len == S_NULL ? NULL : st->strs.data + s.off;
}

/* The batch's entry for this order, added if new. NULL if out of memory. */
static s_order_t *s_order(ordo_pgbatch_state_t *st, const char *id, size_t *index)
{
    size_t len = strlen(id);
    uint64_t h = ordo_hash64(id, len, 0);
    uint32_t tag = (uint32_t)(h >> 32);
    if ((st->n_orders + 1) * 2 > st->n_slots &&
        !s_rehash(st, st->n_slots ? st->n_slots * 2 : 8192))
        return NULL;
    size_t k = h & (st->n_slots - 1);
    for (; st->slots[k].order; k = (k + 1) & (st->n_slots - 1)) {
        if (st->slots[k].tag != tag)
            continue;
        s_order_t *o = &st->orders[st->slots[k].order - 1];
        if (o->hash == h && o->id.len == len && !memcmp(s_chars(st, o->id), id, len)) {
            *index = st->slots[k].order - 1;
            return o;
        }
    }
    if (!s_room((void **)&st->orders, &st->cap_orders, st->n_orders + 1, sizeof *st->orders))
        return NULL;
    s_order_t *o = &st->orders[st->n_orders];
    memset(o, 0, sizeof *o);
    o->id = s_keep(&st->strs, id, len);
    o->items = o->address = o->reason = (s_str_t){0, S_NULL};
    if (st->strs.failed)
        return NULL;
    o->hash = h;
    o->last_event = o->hour_row = -1;
    st->slots[k] = (s_slot_t){(uint32_t)st->n_orders + 1, tag};
    *index = st->n_orders++;
    return o;
}

/* A JSON string's contents (RFC 8259): quote, backslash and control
 * characters escaped. */
static void s_json_chars(s_text_t *t, const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        const unsigned char *run = p;
        while (*p && *p != '"' && *p != '\\' && *p >= 0x20)
            p++;
        s_raw(t, (const char *)run, (size_t)(p - run));
        if (!*p)
            break;
        char esc[8];
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            s_raw(t, esc, 2);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            s_raw(t, esc, 6);
        }
        p++;
    }
}

/* The items as JSON, into the arena (strs->failed if out of memory). */
static s_str_t s_items_json(s_text_t *strs, const ordo_client_event_t *ev)
{
    size_t start = strs->len;
    s_raw(strs, "[", 1);
    for (size_t i = 0; i < ev->n_items; i++) {
        const ordo_client_item_t *it = &ev->items[i];
        if (i)
            s_raw(strs, ",", 1);
        s_raw(strs, "{\"sku\":\"", 8);
        s_json_chars(strs, it->sku ? it->sku : "");
        s_raw(strs, "\",\"name\":\"", 10);
        s_json_chars(strs, it->name ? it->name : "");
        char tail[64];
        int n = snprintf(tail, sizeof tail, "\",\"qty\":%" PRId64 ",\"price_cents\":%" PRId64 "}",
                         it->qty, it->price_cents);
        s_raw(strs, tail, (size_t)n);
    }
    s_raw(strs, "]", 2); /* with a NUL after it, not counted */
    if (strs->len > UINT32_MAX)
        strs->failed = true;
    return (s_str_t){(uint32_t)start, (uint32_t)(strs->len - start - 1)};
}

static uint64_t s_sum_hash(int64_t hour_us, int64_t restaurant_id, const char *currency)
{
    int64_t key[3] = {hour_us, restaurant_id, 0};
    memcpy(&key[2], currency, 4);
    return ordo_hash64(key, sizeof key, 0);
}

static bool s_sum_rehash(ordo_pgbatch_state_t *st, size_t n_slots)
{
    uint32_t *slots = calloc(n_slots, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < st->n_hours; i++) {
        const s_hours_t *h = &st->hours[i];
        if (h->order != S_NO_ORDER)
            continue;
        size_t k = s_sum_hash(h->hour_us, h->restaurant_id, h->currency) & (n_slots - 1);
        while (slots[k])
            k = (k + 1) & (n_slots - 1);
        slots[k] = (uint32_t)i + 1;
    }
    free(st->sum_slots);
    st->sum_slots = slots;
    st->n_sum_slots = n_slots;
    return true;
}

static s_hours_t *s_new_hours(ordo_pgbatch_state_t *st, uint32_t order, int64_t hour)
{
    if (!s_room((void **)&st->hours, &st->cap_hours, st->n_hours + 1, sizeof *st->hours))
        return NULL;
    s_hours_t *h = &st->hours[st->n_hours++];
    memset(h, 0, sizeof *h);
    h->order = order;
    h->hour_us = hour;
    return h;
}

/* The row an event of this order in this hour counts in: the order's own
 * (an older order) or its restaurant's sum (created in the batch). */
static s_hours_t *s_hours_row(ordo_pgbatch_state_t *st, size_t oi, int64_t hour)
{
    s_order_t *o = &st->orders[oi];
    if (o->hour_row >= 0 && st->hours[o->hour_row].hour_us == hour)
        return &st->hours[o->hour_row];
    if (!o->created) {
        if (!s_new_hours(st, (uint32_t)oi, hour))
            return NULL;
        o->hour_row = (int64_t)st->n_hours - 1;
        return &st->hours[o->hour_row];
    }
    if ((st->n_sums + 1) * 2 > st->n_sum_slots &&
        !s_sum_rehash(st, st->n_sum_slots ? st->n_sum_slots * 2 : 1024))
        return NULL;
    size_t mask = st->n_sum_slots - 1;
    size_t k = s_sum_hash(hour, o->restaurant_id, o->currency) & mask;
    for (; st->sum_slots[k]; k = (k + 1) & mask) {
        s_hours_t *h = &st->hours[st->sum_slots[k] - 1];
        if (h->hour_us == hour && h->restaurant_id == o->restaurant_id &&
            !memcmp(h->currency, o->currency, sizeof h->currency)) {
            o->hour_row = st->sum_slots[k] - 1;
            return h;
        }
    }
    s_hours_t *h = s_new_hours(st, S_NO_ORDER, hour);
    if (!h)
        return NULL;
    h->restaurant_id = o->restaurant_id;
    memcpy(h->currency, o->currency, sizeof h->currency);
    st->sum_slots[k] = (uint32_t)st->n_hours;
    st->n_sums++;
    o->hour_row = (int64_t)st->n_hours - 1;
    return h;
}

/* Adds the event to its row for its hour. */
static bool s_count_hour(ordo_pgbatch_state_t *st, size_t oi, ordo_event_type_t type,
                         int64_t at_us, uint8_t cancelled_from)
{
    int64_t hour = at_us - ((at_us % S_HOUR_US) + S_HOUR_US) % S_HOUR_US;
    s_hours_t *h = s_hours_row(st, oi, hour);
    if (!h)
        return false;
    h->by_type[type]++;
    if (type == ORDO_EVT_ORDER_DELIVERED && h->order == S_NO_ORDER)
        h->revenue_cents += st->orders[oi].total_cents;
    if (type == ORDO_EVT_ORDER_CANCELLED && cancelled_from >= ORDO_STATUS_CREATED &&
        cancelled_from <= ORDO_STATUS_PREPARING)
        h->cancelled_from[cancelled_from]++;
    return true;
}

static int s_fail(ordo_pgbatch_t *b)
{
    b->failed = true;
    return -1;
}

int ordo_pgbatch_add(ordo_pgbatch_t *b, const ordo_client_event_t *ev)
{
    if (b->failed || (b->n > 0 && ev->position != b->last + 1) || !ev->order_id || !ev->type)
        return -1;
    ordo_event_type_t type = ordo_event_type_from_name(ev->type, strlen(ev->type));
    if (type <= ORDO_EVT_NONE || type >= ORDO_EVT_COUNT_)
        return -1;
    if (!b->st && !(b->st = calloc(1, sizeof *b->st)))
        return s_fail(b);
    ordo_pgbatch_state_t *st = b->st;
    size_t oi;
    s_order_t *o = s_order(st, ev->order_id, &oi);
    if (!o || !s_room((void **)&st->events, &st->cap_events, b->n + 1, sizeof *st->events))
        return s_fail(b);
    bool first_here = o->last_event < 0;
    if (type == ORDO_EVT_ORDER_CREATED) {
        o->created = true;
        o->user_id = ev->user_id;
        o->restaurant_id = ev->restaurant_id;
        o->total_cents = ev->total_cents;
        o->created_us = ev->timestamp_us;
        snprintf(o->currency, sizeof o->currency, "%s", ev->currency ? ev->currency : "USD");
        const char *address = ev->delivery_address ? ev->delivery_address : "";
        o->items = s_items_json(&st->strs, ev);
        o->address = s_keep(&st->strs, address, strlen(address));
    }
    uint8_t cancelled_from = 0;
    if (type == ORDO_EVT_ORDER_CANCELLED) {
        const char *reason = ev->reason ? ev->reason : "";
        o->reason = s_keep(&st->strs, reason, strlen(reason));
        if (ev->previous_status)
            cancelled_from = (uint8_t)ordo_status_from_name(ev->previous_status,
                                                            strlen(ev->previous_status));
        o->cancelled_from = cancelled_from;
    }
    if (ev->has_estimated_minutes) {
        o->has_minutes = true;
        o->minutes = ev->estimated_minutes;
    }
    if (ev->has_courier_id) {
        o->has_courier = true;
        o->courier = ev->courier_id;
    }
    if (first_here) {
        o->first_us = ev->timestamp_us;
        o->first_position = ev->position;
    } else {
        st->events[o->last_event].next = (int64_t)b->n;
    }
    o->status = (uint8_t)ordo_status_after(type);
    o->version = ev->version;
    o->at_us = ev->timestamp_us;
    o->position = ev->position;
    o->last_event = (int64_t)b->n;
    st->events[b->n] = (s_event_t){(uint32_t)oi, o->status, ev->timestamp_us, ev->position, -1};
    if (st->strs.failed || !s_count_hour(st, oi, type, ev->timestamp_us, cancelled_from))
        return s_fail(b);
    b->bytes = st->n_orders * (sizeof(s_order_t) + 2 * sizeof(s_slot_t)) +
               (b->n + 1) * sizeof(s_event_t) + st->n_hours * sizeof(s_hours_t) + st->strs.len;
    if (b->n++ == 0)
        b->first = ev->position;
    b->last = ev->position;
    return 0;
}

/* ---- the tables' rows ---------------------------------------------------- */

static const char *s_status(uint8_t s)
{
    return s ? ordo_status_name((ordo_status_t)s) : NULL;
}

/* New orders: @S.orders' columns (COPY binary), in the COPY's order. */
static void s_rows_new_orders(const ordo_pgbatch_state_t *st, s_text_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_orders; i++) {
        const s_order_t *o = &st->orders[i];
        if (!o->created)
            continue;
        if (n++ == 0)
            s_bin_header(t);
        s_bin_row(t, 16);
        s_bin_str(t, &st->strs, o->id);
        s_bin_i64(t, true, o->user_id);
        s_bin_i64(t, true, o->restaurant_id);
        s_bin_text(t, s_status(o->status));
        s_bin_jsonb(t, &st->strs, o->items);
        s_bin_i64(t, true, o->total_cents);
        s_bin_text(t, o->currency);
        s_bin_str(t, &st->strs, o->address);
        s_bin_time(t, o->created_us);
        s_bin_time(t, o->at_us);
        s_bin_i32(t, true, o->version);
        s_bin_i32(t, o->has_minutes, o->minutes);
        s_bin_i64(t, o->has_courier, o->courier);
        s_bin_str(t, &st->strs, o->reason);
        s_bin_text(t, s_status(o->cancelled_from));
        s_bin_i64(t, true, (int64_t)o->position);
    }
    if (n)
        s_bin_trailer(t);
}

/* Older orders: ordo_batch_order's columns (COPY binary). */
static void s_rows_old_orders(const ordo_pgbatch_state_t *st, s_text_t *t)
{
    size_t n = 0;
    for (size_t i = 0; i < st->n_orders; i++) {
        const s_order_t *o = &st->orders[i];
        if (o->created)
            continue;
        if (n++ == 0)
            s_bin_header(t);
        s_bin_row(t, 11);
        s_bin_str(t, &st->strs, o->id);
        s_bin_text(t, s_status(o->status));
        s_bin_i32(t, true, o->version);
        s_bin_time(t, o->at_us);
        s_bin_i64(t, true, (int64_t)o->position);
        s_bin_time(t, o->first_us);
        s_bin_i64(t, true, (int64_t)o->first_position);
        s_bin_i32(t, o->has_minutes, o->minutes);
        s_bin_i64(t, o->has_courier, o->courier);
        s_bin_str(t, &st->strs, o->reason);
        s_bin_text(t, s_status(o->cancelled_from));
    }
    if (n)
        s_bin_trailer(t);
}

/* The hours' rows: ordo_batch_hours' columns (COPY binary). */
static void s_rows_hours(const ordo_pgbatch_state_t *st, s_text_t *t)
{
    if (st->n_hours == 0)
        return;
    s_bin_header(t);
    for (size_t i = 0; i < st->n_hours; i++) {
        const s_hours_t *h = &st->hours[i];
        bool sum = h->order == S_NO_ORDER;
        s_bin_row(t, 15);
        if (sum)
            s_bin_null(t);
        else
            s_bin_str(t, &st->strs, st->orders[h->order].id);
        s_bin_time(t, h->hour_us);
        s_bin_i64(t, sum, h->restaurant_id);
        s_bin_text(t, sum ? h->currency : NULL);
        s_bin_i64(t, sum, h->revenue_cents);
        for (int e = ORDO_EVT_ORDER_CREATED; e < ORDO_EVT_COUNT_; e++)
            s_bin_i32(t, true, h->by_type[e]);
        for (int s = ORDO_STATUS_CREATED; s <= ORDO_STATUS_PREPARING; s++)
            s_bin_i32(t, true, h->cancelled_from[s]);
    }
    s_bin_trailer(t);
}

/* Every event's interval: @S.order_status_history's columns (COPY binary). */
static void s_rows_history(const ordo_pgbatch_state_t *st, size_t n, s_text_t *t)
{
    s_bin_header(t);
    for (size_t i = 0; i < n; i++) {
        const s_event_t *e = &st->events[i];
        const s_event_t *next = e->next >= 0 ? &st->events[e->next] : NULL;
        s_bin_row(t, 6);
        s_bin_str(t, &st->strs, st->orders[e->order].id);
        s_bin_text(t, s_status(e->status));
        s_bin_time(t, e->at_us);
        if (next)
            s_bin_time(t, next->at_us);
        else
            s_bin_null(t);
        s_bin_i64(t, true, (int64_t)e->position);
        s_bin_i64(t, next != NULL, next ? (int64_t)next->position : 0);
    }
    s_bin_trailer(t);
}

/* ---- the transaction ---------------------------------------------------- */

_Static_assert(ORDO_EVT_ORDER_CREATED == 1 && ORDO_EVT_ORDER_CANCELLED == 7 &&
                   ORDO_STATUS_CREATED == 1 && ORDO_STATUS_PREPARING == 3,
               "ordo_batch_hours' columns follow these enums");

/* The session: work memory for sorting and hashing a batch, and the
 * temporary tables (temp_buffers must be set before the first). */
static const char s_prepare[] =
    "SET temp_buffers = '128MB'; SET work_mem = '64MB'; SET jit = off;"
    "CREATE TEMP TABLE IF NOT EXISTS ordo_batch_order ("
    "  order_id text PRIMARY KEY, status text NOT NULL, version integer NOT NULL,"
    "  at timestamptz NOT NULL, position bigint NOT NULL,"
    "  first_at timestamptz NOT NULL, first_position bigint NOT NULL,"
    "  estimated_minutes integer, courier_id bigint, reason text, cancelled_from text)"
    "  ON COMMIT DELETE ROWS;"
    /* order_id NULL: a sum over the orders created in the batch; else an
     * older order's, whose restaurant, currency and total are read */
    "CREATE TEMP TABLE IF NOT EXISTS ordo_batch_hours ("
    "  order_id text, hour timestamptz NOT NULL,"
    "  restaurant_id bigint, currency text, revenue_cents bigint,"
    "  created integer NOT NULL, confirmed integer NOT NULL, preparing integer NOT NULL,"
    "  ready integer NOT NULL, out_for_delivery integer NOT NULL, delivered integer NOT NULL,"
    "  cancelled integer NOT NULL, cancelled_from_created integer NOT NULL,"
    "  cancelled_from_confirmed integer NOT NULL, cancelled_from_preparing integer NOT NULL)"
    "  ON COMMIT DELETE ROWS";

/* After the COPYs: the intervals older orders were in closed, the orders
 * updated (what the hourly counts need of them comes back), the counts
 * added. */
static const char s_fold[] =
    /* Without statistics for the temporary tables, the planner would read
     * the whole of orders to find the batch's older ones (a hash join);
     * an index probe for each is far cheaper. */
    "SET LOCAL enable_seqscan = off;"
    /* The interval an older order is in began at its last event before
     * the batch (orders.position, not yet updated): it ends where the
     * order's first event here begins. */
    "UPDATE @S.order_status_history h SET to_at = l.first_at, to_position = l.first_position"
    "  FROM ordo_batch_order l JOIN @S.orders o ON o.id = l.order_id"
    "  WHERE h.from_position = o.position;"
    "WITH changed AS ("
    "  UPDATE @S.orders o SET status = l.status, version = l.version, updated_at = l.at,"
    "      position = l.position,"
    "      estimated_minutes = coalesce(l.estimated_minutes, o.estimated_minutes),"
    "      courier_id = coalesce(l.courier_id, o.courier_id),"
    "      cancel_reason = coalesce(l.reason, o.cancel_reason),"
    "      cancelled_from = coalesce(l.cancelled_from, o.cancelled_from)"
    "    FROM ordo_batch_order l WHERE o.id = l.order_id"
    "    RETURNING o.id, o.restaurant_id, o.currency, o.total_cents)"
    "INSERT INTO @S.analytics_hourly AS a (hour, restaurant_id, currency, created, confirmed,"
    "    preparing, ready, out_for_delivery, delivered, cancelled, cancelled_from_created,"
    "    cancelled_from_confirmed, cancelled_from_preparing, revenue_cents)"
    "  SELECT h.hour, coalesce(h.restaurant_id, c.restaurant_id),"
    "    coalesce(h.currency, c.currency), sum(h.created), sum(h.confirmed), sum(h.preparing),"
    "    sum(h.ready), sum(h.out_for_delivery), sum(h.delivered), sum(h.cancelled),"
    "    sum(h.cancelled_from_created), sum(h.cancelled_from_confirmed),"
    "    sum(h.cancelled_from_preparing),"
    "    sum(coalesce(h.revenue_cents, h.delivered * c.total_cents))"
    "  FROM ordo_batch_hours h LEFT JOIN changed c ON c.id = h.order_id"
    "  GROUP BY 1, 2, 3"
    "  ON CONFLICT (hour, restaurant_id, currency) DO UPDATE SET"
    "    created = a.created + EXCLUDED.created,"
    "    confirmed = a.confirmed + EXCLUDED.confirmed,"
    "    preparing = a.preparing + EXCLUDED.preparing,"
    "    ready = a.ready + EXCLUDED.ready,"
    "    out_for_delivery = a.out_for_delivery + EXCLUDED.out_for_delivery,"
    "    delivered = a.delivered + EXCLUDED.delivered,"
    "    cancelled = a.cancelled + EXCLUDED.cancelled,"
    "    cancelled_from_created = a.cancelled_from_created + EXCLUDED.cancelled_from_created,"
    "    cancelled_from_confirmed = a.cancelled_from_confirmed + EXCLUDED.cancelled_from_confirmed,"
    "    cancelled_from_preparing = a.cancelled_from_preparing + EXCLUDED.cancelled_from_preparing,"
    "    revenue_cents = a.revenue_cents + EXCLUDED.revenue_cents";

int ordo_pgbatch_prepare(PGconn *c, char *err, size_t errsize)
{
    return ordo_pg_exec(c, s_prepare, err, errsize);
}

static void s_rollback(PGconn *c)
{
    if (PQstatus(c) == CONNECTION_OK)
        PQclear(PQexec(c, "ROLLBACK"));
}

/* Says what failed with PostgreSQL's message (of `r`, or the
 * connection's), rolls back, returns -1. */
static int s_error(PGconn *c, PGresult *r, const char *what, char *err, size_t errsize)
{
    ordo_pg_fail(c, r, what, err, errsize);
    s_rollback(c);
    return -1;
}

static int s_no_memory(PGconn *c, char *err, size_t errsize)
{
    snprintf(err, errsize, "out of memory");
    s_rollback(c);
    return -1;
}

/* Runs SQL (a template: @S = the schema) expecting no rows. */
static int s_exec(PGconn *c, const char *sql, const char *schema, const char *what, char *err,
                  size_t errsize)
{
    char *text = ordo_pg_sql(sql, schema);
    if (!text)
        return s_no_memory(c, err, errsize);
    PGresult *r = PQexec(c, text);
    free(text);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, what, err, errsize);
    PQclear(r);
    return 0;
}

/* COPY table FROM STDIN with the rows `fill` writes (nothing if none). */
static int s_copy(PGconn *c, const char *schema, const char *copy_sql, s_text_t *t,
                  const char *what, char *err, size_t errsize)
{
    if (t->failed)
        return s_no_memory(c, err, errsize);
    if (t->len == 0)
        return 0;
    char *sql = ordo_pg_sql(copy_sql, schema);
    if (!sql)
        return s_no_memory(c, err, errsize);
    PGresult *r = PQexec(c, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return s_error(c, r, what, err, errsize);
    PQclear(r);
    for (size_t off = 0; off < t->len; off += S_COPY_PIECE) {
        size_t n = t->len - off < S_COPY_PIECE ? t->len - off : S_COPY_PIECE;
        if (PQputCopyData(c, t->data + off, (int)n) != 1)
            return s_error(c, NULL, what, err, errsize);
    }
    if (PQputCopyEnd(c, NULL) != 1)
        return s_error(c, NULL, what, err, errsize);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, what, err, errsize);
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    return 0;
}

int ordo_pgbatch_apply(PGconn *c, const char *schema, const ordo_pgbatch_t *b, char *err,
                       size_t errsize)
{
    if (b->n == 0)
        return 0;
    if (b->failed || !b->st) {
        snprintf(err, errsize, "the batch ran out of memory");
        return -1;
    }
    PGresult *r = PQexec(c, "BEGIN");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, "BEGIN", err, errsize);
    PQclear(r);
    /* First the checkpoint: the row lock orders writers, and a checkpoint
     * that is not where the batch begins means another writer moved it. */
    char move[160];
    snprintf(move, sizeof move,
             "UPDATE @S.checkpoint SET position = %" PRIu64 ", updated_at = now()"
             " WHERE id = 1 AND position = %" PRIu64,
             b->last, b->first - 1);
    char *sql = ordo_pg_sql(move, schema);
    if (!sql)
        return s_no_memory(c, err, errsize);
    r = PQexec(c, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, "checkpoint", err, errsize);
    bool moved = strcmp(PQcmdTuples(r), "1") == 0;
    PQclear(r);
    if (!moved) {
        s_rollback(c);
        snprintf(err, errsize, "the checkpoint is not at position %" PRIu64, b->first - 1);
        return 1;
    }
    const ordo_pgbatch_state_t *st = b->st;
    s_text_t *out = &b->st->out; /* kept: no fresh pages to fault in each batch */
    out->len = 0;
    out->failed = false;
    int rc;
    s_rows_new_orders(st, out);
    rc = s_copy(c, schema,
                "COPY @S.orders (id, user_id, restaurant_id, status, items, total_cents, currency,"
                " delivery_address, created_at, updated_at, version, estimated_minutes,"
                " courier_id, cancel_reason, cancelled_from, position) FROM STDIN (FORMAT binary)",
                out, "new orders", err, errsize);
    out->len = 0;
    if (rc == 0) {
        s_rows_old_orders(st, out);
        rc = s_copy(c, schema, "COPY ordo_batch_order FROM STDIN (FORMAT binary)", out,
                    "older orders", err, errsize);
        out->len = 0;
    }
    if (rc == 0) {
        s_rows_hours(st, out);
        rc = s_copy(c, schema, "COPY ordo_batch_hours FROM STDIN (FORMAT binary)", out,
                    "hourly counts", err, errsize);
        out->len = 0;
    }
    /* The older intervals close before the new ones are copied in. */
    if (rc == 0)
        rc = s_exec(c, s_fold, schema, "applying the batch", err, errsize);
    if (rc == 0) {
        s_rows_history(st, b->n, out);
        rc = s_copy(c, schema,
                    "COPY @S.order_status_history (order_id, status, from_at, to_at,"
                    " from_position, to_position) FROM STDIN (FORMAT binary)",
                    out, "status history", err, errsize);
    }
    if (out->cap > S_OUT_KEPT) { /* a large batch's: not kept for long quiet times */
        free(out->data);
        *out = (s_text_t){0};
    }
    if (rc == 0)
        rc = s_exec(c, "COMMIT", schema, "COMMIT", err, errsize);
    return rc;
}
