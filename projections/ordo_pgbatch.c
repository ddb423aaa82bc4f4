/* A batch of events into the PostgreSQL read models (see ordo_pgbatch.h). */
#include "ordo_pgbatch.h"

#include "ordo_order.h"
#include "ordo_pgschema.h"
#include "ordo_time.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The temporary table COPY fills: one row per event, in COPY's column
 * order (s_row below writes them in this order). */
static const char s_batch_table[] =
    "CREATE TEMP TABLE IF NOT EXISTS ordo_batch ("
    "  position bigint NOT NULL, order_id text NOT NULL, version integer NOT NULL,"
    "  type text NOT NULL, status text NOT NULL, at timestamptz NOT NULL,"
    "  user_id bigint, restaurant_id bigint, items jsonb, total_cents bigint, currency text,"
    "  delivery_address text, estimated_minutes integer, courier_id bigint, reason text,"
    "  previous_status text)"
    "  ON COMMIT DELETE ROWS";

/* The fold, then COMMIT, in one round trip. */
static const char s_fold[] =
    /* New orders, as created. */
    "INSERT INTO @S.orders (id, user_id, restaurant_id, status, items, total_cents, currency,"
    "    delivery_address, created_at, updated_at, version, position)"
    "  SELECT order_id, user_id, restaurant_id, status, items, total_cents, currency,"
    "         delivery_address, at, at, version, position"
    "  FROM ordo_batch WHERE type = 'OrderCreated';"
    /* Every order an event changed, to its last event in the batch. */
    "UPDATE @S.orders o SET status = l.status, version = l.version, updated_at = l.at,"
    "    position = l.position,"
    "    estimated_minutes = coalesce(l.estimated_minutes, o.estimated_minutes),"
    "    courier_id = coalesce(l.courier_id, o.courier_id),"
    "    cancel_reason = coalesce(l.reason, o.cancel_reason),"
    "    cancelled_from = coalesce(l.previous_status, o.cancelled_from)"
    "  FROM (SELECT DISTINCT ON (order_id) order_id, status, version, at, position,"
    "               max(estimated_minutes) OVER (PARTITION BY order_id) AS estimated_minutes,"
    "               max(courier_id) OVER (PARTITION BY order_id) AS courier_id,"
    "               max(reason) OVER (PARTITION BY order_id) AS reason,"
    "               max(previous_status) OVER (PARTITION BY order_id) AS previous_status"
    "        FROM ordo_batch WHERE type <> 'OrderCreated'"
    "        ORDER BY order_id, position DESC) l"
    "  WHERE o.id = l.order_id;"
    /* The status an order was in before the batch ends where its first
     * event in the batch begins... */
    "UPDATE @S.order_status_history h SET to_at = f.at, to_position = f.position"
    "  FROM (SELECT DISTINCT ON (order_id) order_id, at, position FROM ordo_batch"
    "        WHERE type <> 'OrderCreated' ORDER BY order_id, position) f"
    "  WHERE h.order_id = f.order_id AND h.to_position IS NULL;"
    /* ... and each event begins one, which ends at the order's next event
     * in the batch, if any. */
    "INSERT INTO @S.order_status_history (order_id, status, from_at, to_at, from_position,"
    "    to_position)"
    "  SELECT order_id, status, at, lead(at) OVER w, position, lead(position) OVER w"
    "  FROM ordo_batch WINDOW w AS (PARTITION BY order_id ORDER BY position);"
    /* Each event counts in the UTC hour of its timestamp. */
    "INSERT INTO @S.analytics_hourly AS a (hour, restaurant_id, currency, created, confirmed,"
    "    preparing, ready, out_for_delivery, delivered, cancelled, cancelled_from_created,"
    "    cancelled_from_confirmed, cancelled_from_preparing, revenue_cents)"
    "  SELECT date_trunc('hour', b.at, 'UTC'), o.restaurant_id, o.currency,"
    "    count(*) FILTER (WHERE b.type = 'OrderCreated'),"
    "    count(*) FILTER (WHERE b.type = 'OrderConfirmed'),"
    "    count(*) FILTER (WHERE b.type = 'OrderPreparing'),"
    "    count(*) FILTER (WHERE b.type = 'OrderReady'),"
    "    count(*) FILTER (WHERE b.type = 'OrderOutForDelivery'),"
    "    count(*) FILTER (WHERE b.type = 'OrderDelivered'),"
    "    count(*) FILTER (WHERE b.type = 'OrderCancelled'),"
    "    count(*) FILTER (WHERE b.type = 'OrderCancelled' AND b.previous_status = 'Created'),"
    "    count(*) FILTER (WHERE b.type = 'OrderCancelled' AND b.previous_status = 'Confirmed'),"
    "    count(*) FILTER (WHERE b.type = 'OrderCancelled' AND b.previous_status = 'Preparing'),"
    "    coalesce(sum(o.total_cents) FILTER (WHERE b.type = 'OrderDelivered'), 0)"
    "  FROM ordo_batch b JOIN @S.orders o ON o.id = b.order_id"
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
    "    revenue_cents = a.revenue_cents + EXCLUDED.revenue_cents;"
    "COMMIT";

void ordo_pgbatch_init(ordo_pgbatch_t *b)
{
    memset(b, 0, sizeof *b);
}

void ordo_pgbatch_free(ordo_pgbatch_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void ordo_pgbatch_clear(ordo_pgbatch_t *b)
{
    b->len = b->n = 0;
    b->first = b->last = 0;
    b->failed = false;
}

static bool s_reserve(ordo_pgbatch_t *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 1 << 20;
    while (cap < b->len + more)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

static void s_raw(ordo_pgbatch_t *b, const char *s, size_t n)
{
    if (s_reserve(b, n)) {
        memcpy(b->data + b->len, s, n);
        b->len += n;
    }
}

/* One character of a COPY text field: backslash, tab, newline and
 * carriage return escaped. */
static void s_copy_char(ordo_pgbatch_t *b, char c)
{
    switch (c) {
    case '\\': s_raw(b, "\\\\", 2); break;
    case '\t': s_raw(b, "\\t", 2); break;
    case '\n': s_raw(b, "\\n", 2); break;
    case '\r': s_raw(b, "\\r", 2); break;
    default: s_raw(b, &c, 1); break;
    }
}

static void s_text(ordo_pgbatch_t *b, const char *s)
{
    if (!s) {
        s_raw(b, "\\N", 2);
        return;
    }
    for (; *s; s++)
        s_copy_char(b, *s);
}

static void s_int(ordo_pgbatch_t *b, bool present, int64_t v)
{
    if (!present) {
        s_raw(b, "\\N", 2);
        return;
    }
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    s_raw(b, num, (size_t)n);
}

/* A JSON string (RFC 8259 escapes), itself escaped for COPY. */
static void s_json_string(ordo_pgbatch_t *b, const char *s)
{
    s_copy_char(b, '"');
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            s_copy_char(b, '\\');
            s_copy_char(b, (char)*p);
        } else if (*p < 0x20) {
            char esc[8];
            snprintf(esc, sizeof esc, "\\u%04x", *p);
            for (char *e = esc; *e; e++)
                s_copy_char(b, *e);
        } else {
            s_copy_char(b, (char)*p);
        }
    }
    s_copy_char(b, '"');
}

static void s_items(ordo_pgbatch_t *b, const ordo_client_event_t *ev)
{
    s_raw(b, "[", 1);
    for (size_t i = 0; i < ev->n_items; i++) {
        const ordo_client_item_t *it = &ev->items[i];
        if (i)
            s_raw(b, ",", 1);
        s_raw(b, "{\"sku\":", 7);
        s_json_string(b, it->sku);
        s_raw(b, ",\"name\":", 8);
        s_json_string(b, it->name);
        s_raw(b, ",\"qty\":", 7);
        s_int(b, true, it->qty);
        s_raw(b, ",\"price_cents\":", 15);
        s_int(b, true, it->price_cents);
        s_raw(b, "}", 1);
    }
    s_raw(b, "]", 1);
}

int ordo_pgbatch_add(ordo_pgbatch_t *b, const ordo_client_event_t *ev)
{
    if (b->n > 0 && ev->position != b->last + 1)
        return -1;
    ordo_event_type_t type = ordo_event_type_from_name(ev->type, strlen(ev->type));
    const char *status = ordo_status_name(ordo_status_after(type));
    bool created = type == ORDO_EVT_ORDER_CREATED;
    char at[40];
    ordo_time_format(ev->timestamp_us, at);
    size_t mark = b->len;
    s_int(b, true, (int64_t)ev->position);
    s_raw(b, "\t", 1);
    s_text(b, ev->order_id);
    s_raw(b, "\t", 1);
    s_int(b, true, ev->version);
    s_raw(b, "\t", 1);
    s_text(b, ev->type);
    s_raw(b, "\t", 1);
    s_text(b, status);
    s_raw(b, "\t", 1);
    s_text(b, at);
    s_raw(b, "\t", 1);
    s_int(b, created, ev->user_id);
    s_raw(b, "\t", 1);
    s_int(b, created, ev->restaurant_id);
    s_raw(b, "\t", 1);
    if (created)
        s_items(b, ev);
    else
        s_text(b, NULL);
    s_raw(b, "\t", 1);
    s_int(b, created, ev->total_cents);
    s_raw(b, "\t", 1);
    s_text(b, created ? (ev->currency ? ev->currency : "USD") : NULL);
    s_raw(b, "\t", 1);
    s_text(b, created ? ev->delivery_address : NULL);
    s_raw(b, "\t", 1);
    s_int(b, ev->has_estimated_minutes, ev->estimated_minutes);
    s_raw(b, "\t", 1);
    s_int(b, ev->has_courier_id, ev->courier_id);
    s_raw(b, "\t", 1);
    s_text(b, ev->reason);
    s_raw(b, "\t", 1);
    s_text(b, ev->previous_status);
    s_raw(b, "\n", 1);
    if (b->failed) {
        b->len = mark;
        return -1;
    }
    if (b->n++ == 0)
        b->first = ev->position;
    b->last = ev->position;
    return 0;
}

int ordo_pgbatch_prepare(PGconn *c, char *err, size_t errsize)
{
    return ordo_pg_exec(c, s_batch_table, err, errsize);
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
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    snprintf(err, errsize, "%s: %s", what, msg && *msg ? msg : "no reply from PostgreSQL");
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    PQclear(r);
    s_rollback(c);
    return -1;
}

static int s_no_memory(PGconn *c, char *err, size_t errsize)
{
    snprintf(err, errsize, "out of memory");
    s_rollback(c);
    return -1;
}

/* The batch's rows, in pieces libpq takes (its length is an int). */
static int s_copy_rows(PGconn *c, const ordo_pgbatch_t *b)
{
    const size_t piece = 1 << 20;
    for (size_t off = 0; off < b->len; off += piece) {
        size_t n = b->len - off < piece ? b->len - off : piece;
        if (PQputCopyData(c, b->data + off, (int)n) != 1)
            return -1;
    }
    return PQputCopyEnd(c, NULL) == 1 ? 0 : -1;
}

int ordo_pgbatch_apply(PGconn *c, const char *schema, const ordo_pgbatch_t *b, char *err,
                       size_t errsize)
{
    if (b->n == 0 || b->failed)
        return 0;
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
    r = PQexec(c, "COPY ordo_batch FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return s_error(c, r, "COPY", err, errsize);
    PQclear(r);
    if (s_copy_rows(c, b) != 0)
        return s_error(c, NULL, "COPY", err, errsize);
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, "COPY", err, errsize);
    PQclear(r);
    while ((r = PQgetResult(c)) != NULL)
        PQclear(r);
    if (!(sql = ordo_pg_sql(s_fold, schema)))
        return s_no_memory(c, err, errsize);
    r = PQexec(c, sql);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return s_error(c, r, "applying the batch", err, errsize);
    PQclear(r);
    return 0;
}
