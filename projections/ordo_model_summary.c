/* The `summary` read model: one summary per order (PROJECTIONS.md), for
 * GetOrderSummary and ListOrders. Every order ever seen has a row in
 * `orders`; unfinished ones are also kept in memory (ordo_psumtab).
 * ListOrders is a keyset listing by (created_at_us, order_id), with one
 * index per filter a client can give, so a page costs an index range
 * scan, not a sort of the whole table. */
#include "ordo_log.h"
#include "ordo_model.h"
#include "ordo_pstore.h"
#include "ordo_psummary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    sqlite3 *db;          /* borrowed */
    ordo_psumtab_t *tab;  /* owned */
    sqlite3_stmt *get;    /* owned */
} s_state_t;

/* One per filter ListOrders takes; the one led by status also finds the
 * unfinished orders at open. */
static const char *const s_indexes[] = {
    "CREATE INDEX IF NOT EXISTS orders_by_created ON orders(created_at_us, order_id)",
    "CREATE INDEX IF NOT EXISTS orders_by_status ON orders(status, created_at_us, order_id)",
    "CREATE INDEX IF NOT EXISTS orders_by_restaurant ON orders(restaurant_id, created_at_us,"
    " order_id)",
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders(user_id, created_at_us, order_id)",
    NULL,
};

static void s_close(void **p)
{
    s_state_t *s = *p;
    if (!s)
        return;
    ordo_psumtab_close(&s->tab);
    sqlite3_finalize(s->get);
    free(s);
    *p = NULL;
}

static void *s_open(sqlite3 *db)
{
    s_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->db = db;
    if (!(s->tab = ordo_psumtab_open(db, "orders", ORDO_PSUMTAB_ALL_BY_STATUS, NULL)) ||
        ordo_pstore_prepare(db, "SELECT " ORDO_PSUMMARY_COLUMNS " FROM orders WHERE order_id = ?1",
                            &s->get) != 0) {
        void *p = s;
        s_close(&p);
        return NULL;
    }
    return s;
}

static int s_apply(void *state, const ordo_client_event_t *ev)
{
    s_state_t *s = state;
    ordo_status_t before;
    const ordo_psummary_t *after;
    return ordo_psumtab_apply(s->tab, ev, &before, &after);
}

static int s_flush(void *state)
{
    return ordo_psumtab_flush(((s_state_t *)state)->tab);
}

static int s_get(s_state_t *s, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    sqlite3_bind_text(s->get, 1, q->order_id, -1, SQLITE_STATIC);
    int step = sqlite3_step(s->get), rc = 1;
    if (step == SQLITE_ROW) {
        if (msgpack_pack_str_with_body(pk, "order", 5) != 0 ||
            ordo_psummary_pack_row(pk, s->get, 0) != 0) {
            ordo_perror_set(err, "unavailable", "the read model could not be read; see the log");
            rc = -1;
        }
    } else if (step == SQLITE_DONE) {
        ordo_perror_set(err, "not_found", "order %s is not in the summary read model", q->order_id);
        rc = -1;
    } else {
        ordo_log_error("summary", "GetOrderSummary: %s", sqlite3_errmsg(s->db));
        ordo_perror_set(err, "unavailable", "the read model could not be read; see the log");
        rc = -1;
    }
    sqlite3_reset(s->get);
    return rc;
}

/* Appends " AND status IN (...)" for the statuses in mask. */
static void s_status_in(char *sql, size_t size, uint32_t mask)
{
    size_t n = strlen(sql);
    n += (size_t)snprintf(sql + n, size - n, " AND status IN (");
    const char *sep = "";
    for (int st = ORDO_STATUS_CREATED; st <= ORDO_STATUS_CANCELLED; st++)
        if (mask & (1u << st)) {
            n += (size_t)snprintf(sql + n, size - n, "%s%d", sep, st);
            sep = ",";
        }
    snprintf(sql + n, size - n, ")");
}

static int s_list(s_state_t *s, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    char sql[768] = "SELECT " ORDO_PSUMMARY_COLUMNS " FROM orders WHERE 1";
    if (q->status_mask)
        s_status_in(sql, sizeof sql, q->status_mask);
    size_t n = strlen(sql);
    if (q->has_restaurant_id)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND restaurant_id = ?1");
    if (q->has_user_id)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND user_id = ?2");
    if (q->has_created_from)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND created_at_us >= ?3");
    if (q->has_created_to)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND created_at_us < ?4");
    if (q->has_cursor)
        n += (size_t)snprintf(sql + n, sizeof sql - n, " AND (created_at_us, order_id) > (?5, ?6)");
    snprintf(sql + n, sizeof sql - n, " ORDER BY created_at_us, order_id LIMIT ?7");
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ordo_log_error("summary", "%s: %s", sql, sqlite3_errmsg(s->db));
        ordo_perror_set(err, "unavailable", "the read model could not be read; see the log");
        return -1;
    }
    sqlite3_bind_int64(st, 1, q->restaurant_id);
    sqlite3_bind_int64(st, 2, q->user_id);
    sqlite3_bind_int64(st, 3, q->created_from_us);
    sqlite3_bind_int64(st, 4, q->created_to_us);
    sqlite3_bind_int64(st, 5, q->cursor_key);
    sqlite3_bind_text(st, 6, q->cursor_order_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 7, q->limit + 1);
    bool more;
    char cursor[ORDO_PCURSOR_MAX];
    int rc = msgpack_pack_str_with_body(pk, "orders", 6) != 0 ? -1 : 0;
    if (rc == 0)
        rc = ordo_psummary_pack_page(pk, st, q->limit, q->type, &more, cursor, err);
    sqlite3_finalize(st);
    if (rc != 0)
        return -1;
    if (msgpack_pack_str_with_body(pk, "next_cursor", 11) != 0 ||
        (more ? msgpack_pack_str_with_body(pk, cursor, strlen(cursor))
              : msgpack_pack_nil(pk)) != 0) {
        ordo_perror_set(err, "unavailable", "out of memory");
        return -1;
    }
    return 2;
}

static int s_query(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    if (q->type == ORDO_PQ_GET_ORDER_SUMMARY)
        return s_get(state, q, pk, err);
    if (q->type == ORDO_PQ_LIST_ORDERS)
        return s_list(state, q, pk, err);
    ordo_perror_set(err, "unavailable", "the summary projection does not answer %s",
                    ordo_pq_type_name(q->type));
    return -1;
}

const ordo_model_ops_t ordo_model_summary = {"summary", s_open,  s_close,  s_apply,
                                             s_flush,   s_query, s_indexes};
