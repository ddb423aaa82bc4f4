/* The `user` read model: every order's summary under its user, newest
 * first (UserHistory). Its own `orders` table, keyed for one listing: a
 * user's orders by (created_at_us, order_id) descending, paged by keyset. */
#include "ordo_log.h"
#include "ordo_model.h"
#include "ordo_pstore.h"
#include "ordo_psummary.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    sqlite3 *db;         /* borrowed */
    ordo_psumtab_t *tab; /* owned */
    sqlite3_stmt *first; /* owned: a user's first page */
    sqlite3_stmt *after; /* owned: a user's page after a cursor */
} s_state_t;

static const char *const s_indexes[] = {
    "CREATE INDEX IF NOT EXISTS orders_by_user ON orders(user_id, created_at_us, order_id)",
    NULL,
};

static void s_close(void **p)
{
    s_state_t *s = *p;
    if (!s)
        return;
    ordo_psumtab_close(&s->tab);
    sqlite3_finalize(s->first);
    sqlite3_finalize(s->after);
    free(s);
    *p = NULL;
}

static void *s_open(sqlite3 *db)
{
    s_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->db = db;
    if (!(s->tab = ordo_psumtab_open(db, "orders", ORDO_PSUMTAB_ALL, NULL)) ||
        ordo_pstore_prepare(db,
                            "SELECT " ORDO_PSUMMARY_COLUMNS " FROM orders WHERE user_id = ?1"
                            " ORDER BY created_at_us DESC, order_id DESC LIMIT ?2",
                            &s->first) != 0 ||
        ordo_pstore_prepare(db,
                            "SELECT " ORDO_PSUMMARY_COLUMNS " FROM orders WHERE user_id = ?1"
                            " AND (created_at_us, order_id) < (?3, ?4)"
                            " ORDER BY created_at_us DESC, order_id DESC LIMIT ?2",
                            &s->after) != 0) {
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

static int s_query(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    s_state_t *s = state;
    if (q->type != ORDO_PQ_USER_HISTORY) {
        ordo_perror_set(err, "unavailable", "the user projection does not answer %s",
                        ordo_pq_type_name(q->type));
        return -1;
    }
    sqlite3_stmt *st = q->has_cursor ? s->after : s->first;
    sqlite3_bind_int64(st, 1, q->user_id);
    sqlite3_bind_int64(st, 2, q->limit + 1);
    if (q->has_cursor) {
        sqlite3_bind_int64(st, 3, q->cursor_key);
        sqlite3_bind_text(st, 4, q->cursor_order_id, -1, SQLITE_STATIC);
    }
    bool more;
    char cursor[ORDO_PCURSOR_MAX];
    int rc = msgpack_pack_str_with_body(pk, "orders", 6) != 0 ? -1 : 0;
    if (rc == 0)
        rc = ordo_psummary_pack_page(pk, st, q->limit, q->type, &more, cursor, err);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
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

const ordo_model_ops_t ordo_model_user = {"user",  s_open,  s_close,  s_apply,
                                          s_flush, s_query, s_indexes};
