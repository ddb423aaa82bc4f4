/* Order summaries and the write-behind summary table (see ordo_psummary.h).
 * Invariant: every unfinished order of the table is in `hot`; a record
 * with dirty set differs from its row (or has none yet); a finished order
 * stays in `hot` only until the next flush writes it. */
#include "ordo_psummary.h"

#include "ordo_codec.h"
#include "ordo_log.h"
#include "ordo_model.h"
#include "ordo_pmap.h"
#include "ordo_pstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "projector"

struct ordo_psumtab {
    sqlite3 *db;           /* borrowed: the actor's */
    char table[32];
    bool keep_finished;
    ordo_pmap_t *hot;      /* owned, with every record in it */
    ordo_psummary_t **dirty; /* owned array of records in `hot` changed since the last flush */
    size_t n_dirty, cap_dirty;
    sqlite3_stmt *insert;  /* owned: a whole row */
    sqlite3_stmt *update;  /* owned: the columns an event after OrderCreated changes */
    sqlite3_stmt *del;     /* owned */
};

static void s_free_rec(ordo_psummary_t *s)
{
    if (s) {
        free(s->cancel_reason);
        free(s);
    }
}

static int s_mark(ordo_psumtab_t *t, ordo_psummary_t *s)
{
    if (s->dirty)
        return 0;
    if (t->n_dirty == t->cap_dirty) {
        size_t cap = t->cap_dirty ? t->cap_dirty * 2 : 1024;
        ordo_psummary_t **d = realloc(t->dirty, cap * sizeof *d);
        if (!d)
            return -1;
        t->dirty = d;
        t->cap_dirty = cap;
    }
    t->dirty[t->n_dirty++] = s;
    s->dirty = true;
    return 0;
}

/* Reads a summary row (ORDO_PSUMMARY_COLUMNS from col) into *s, checking
 * every value; cancel_reason is copied. 0 or -1. */
static int s_from_row(sqlite3_stmt *st, int col, ordo_psummary_t *s)
{
    memset(s, 0, sizeof *s);
    const unsigned char *id = sqlite3_column_text(st, col);
    int idlen = sqlite3_column_bytes(st, col);
    for (int i = 1; i <= 8; i++)
        if (sqlite3_column_type(st, col + i) != SQLITE_INTEGER)
            return -1;
    int64_t status = sqlite3_column_int64(st, col + 1);
    int64_t version = sqlite3_column_int64(st, col + 2);
    int64_t from = sqlite3_column_type(st, col + 11) == SQLITE_INTEGER
                       ? sqlite3_column_int64(st, col + 11)
                       : -1;
    if (!id || !ordo_order_id_valid((ordo_str_t){(const char *)id, (uint32_t)idlen}) ||
        status < ORDO_STATUS_CREATED || status > ORDO_STATUS_CANCELLED || version < 1 ||
        version > ORDO_MAX_VERSION || from < ORDO_STATUS_NONE || from > ORDO_STATUS_PREPARING)
        return -1;
    memcpy(s->order_id, id, (size_t)idlen);
    s->order_id[idlen] = '\0';
    s->order_id_len = (uint8_t)idlen;
    s->status = (uint8_t)status;
    s->version = (uint8_t)version;
    s->cancelled_from = (uint8_t)from;
    s->user_id = sqlite3_column_int64(st, col + 3);
    s->restaurant_id = sqlite3_column_int64(st, col + 4);
    s->total_cents = sqlite3_column_int64(st, col + 5);
    s->item_count = sqlite3_column_int64(st, col + 6);
    s->created_at_us = sqlite3_column_int64(st, col + 7);
    s->updated_at_us = sqlite3_column_int64(st, col + 8);
    if (sqlite3_column_type(st, col + 9) == SQLITE_INTEGER) {
        s->has_courier_id = true;
        s->courier_id = sqlite3_column_int64(st, col + 9);
    }
    if (sqlite3_column_type(st, col + 10) == SQLITE_TEXT) {
        const unsigned char *r = sqlite3_column_text(st, col + 10);
        if (!r || !(s->cancel_reason = strdup((const char *)r)))
            return -1;
    }
    return 0;
}

#define P(x)                                                                                       \
    do {                                                                                           \
        if ((x) != 0)                                                                              \
            return -1;                                                                             \
    } while (0)

static int s_pack(msgpack_packer *pk, const ordo_psummary_t *s)
{
    uint32_t n = 9 + s->has_courier_id + (s->cancel_reason != NULL) +
                 (s->status == ORDO_STATUS_CANCELLED && s->cancelled_from != ORDO_STATUS_NONE);
    P(msgpack_pack_map(pk, n));
    P(ORDO_PACK_KEY(pk, "order_id"));
    P(ordo_pack_strn(pk, s->order_id, s->order_id_len));
    P(ORDO_PACK_KEY(pk, "status"));
    P(ordo_pack_cstr(pk, ordo_status_name((ordo_status_t)s->status)));
    P(ORDO_PACK_KEY(pk, "version"));
    P(msgpack_pack_uint32(pk, s->version));
    P(ORDO_PACK_KEY(pk, "user_id"));
    P(msgpack_pack_int64(pk, s->user_id));
    P(ORDO_PACK_KEY(pk, "restaurant_id"));
    P(msgpack_pack_int64(pk, s->restaurant_id));
    P(ORDO_PACK_KEY(pk, "total_cents"));
    P(msgpack_pack_int64(pk, s->total_cents));
    P(ORDO_PACK_KEY(pk, "item_count"));
    P(msgpack_pack_int64(pk, s->item_count));
    P(ORDO_PACK_KEY(pk, "created_at_us"));
    P(msgpack_pack_int64(pk, s->created_at_us));
    P(ORDO_PACK_KEY(pk, "updated_at_us"));
    P(msgpack_pack_int64(pk, s->updated_at_us));
    if (s->has_courier_id) {
        P(ORDO_PACK_KEY(pk, "courier_id"));
        P(msgpack_pack_int64(pk, s->courier_id));
    }
    if (s->cancel_reason) {
        P(ORDO_PACK_KEY(pk, "cancel_reason"));
        P(ordo_pack_cstr(pk, s->cancel_reason));
    }
    if (s->status == ORDO_STATUS_CANCELLED && s->cancelled_from != ORDO_STATUS_NONE) {
        P(ORDO_PACK_KEY(pk, "cancelled_from"));
        P(ordo_pack_cstr(pk, ordo_status_name((ordo_status_t)s->cancelled_from)));
    }
    return 0;
}

int ordo_psummary_pack_row(msgpack_packer *pk, sqlite3_stmt *st, int col)
{
    ordo_psummary_t s;
    if (s_from_row(st, col, &s) != 0) {
        ordo_log_error(S_MOD, "a summary row in %s holds an invalid value",
                       sqlite3_db_filename(sqlite3_db_handle(st), "main"));
        free(s.cancel_reason);
        return -1;
    }
    int rc = s_pack(pk, &s);
    free(s.cancel_reason);
    return rc;
}

int ordo_psummary_pack_page(msgpack_packer *pk, sqlite3_stmt *st, int64_t limit,
                            ordo_pq_type_t type, bool *has_next, char cursor[ORDO_PCURSOR_MAX],
                            ordo_perror_t *err)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer rows;
    msgpack_packer_init(&rows, &sb, msgpack_sbuffer_write);
    int64_t n = 0, last_key = 0;
    char last_id[ORDO_ORDER_ID_MAX + 1] = "";
    int rc = 0, step;
    *has_next = false;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == limit) {
            *has_next = true;
            break;
        }
        if ((rc = ordo_psummary_pack_row(&rows, st, 0)) != 0)
            break;
        last_key = sqlite3_column_int64(st, 7);
        snprintf(last_id, sizeof last_id, "%s", (const char *)sqlite3_column_text(st, 0));
        n++;
    }
    if (rc == 0 && step != SQLITE_ROW && step != SQLITE_DONE) {
        ordo_log_error(S_MOD, "query failed: %s", sqlite3_errmsg(sqlite3_db_handle(st)));
        rc = -1;
    }
    if (rc == 0 && (msgpack_pack_array(pk, (uint32_t)n) != 0 ||
                    (sb.size && pk->callback(pk->data, sb.data, sb.size) != 0)))
        rc = -1;
    msgpack_sbuffer_destroy(&sb);
    if (rc != 0) {
        ordo_perror_set(err, "unavailable", "the read model could not be read; see the log");
        return -1;
    }
    if (*has_next)
        ordo_pcursor_encode(cursor, type, last_key, last_id);
    return 0;
}

/* ---- the table ---------------------------------------------------------- */

void ordo_psumtab_close(ordo_psumtab_t **tp)
{
    if (!tp || !*tp)
        return;
    ordo_psumtab_t *t = *tp;
    if (t->hot) {
        size_t cur = 0;
        ordo_psummary_t *s;
        while ((s = ordo_pmap_next(t->hot, &cur)) != NULL)
            s_free_rec(s);
        ordo_pmap_destroy(&t->hot);
    }
    free(t->dirty);
    sqlite3_finalize(t->insert);
    sqlite3_finalize(t->update);
    sqlite3_finalize(t->del);
    free(t);
    *tp = NULL;
}

static int s_load(ordo_psumtab_t *t)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT " ORDO_PSUMMARY_COLUMNS " FROM %s WHERE status < %d",
             t->table, ORDO_STATUS_DELIVERED);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(t->db, sql, -1, &st, NULL) != SQLITE_OK) {
        ordo_log_error(S_MOD, "%s: %s", sql, sqlite3_errmsg(t->db));
        return -1;
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        ordo_psummary_t *s = malloc(sizeof *s);
        bool ok = s && s_from_row(st, 0, s) == 0;
        if (ok) {
            s->stored = true;
            ok = ordo_pmap_put(t->hot, s->order_id, s->order_id_len, s) == 0;
        }
        if (!ok) {
            ordo_log_error(S_MOD, "cannot load the %s table: %s", t->table,
                           s ? "a row holds an invalid value, or out of memory" : "out of memory");
            s_free_rec(s);
            sqlite3_finalize(st);
            return -1;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        ordo_log_error(S_MOD, "cannot load the %s table: %s", t->table, sqlite3_errmsg(t->db));
        return -1;
    }
    return 0;
}

ordo_psumtab_t *ordo_psumtab_open(sqlite3 *db, const char *table, ordo_psumtab_kind_t kind,
                                  const char *const *indexes)
{
    ordo_psumtab_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->db = db;
    snprintf(t->table, sizeof t->table, "%s", table);
    t->keep_finished = kind != ORDO_PSUMTAB_ACTIVE;
    char sql[1024], unfinished[256];
    /* Only a table of every order without its own status index needs one
     * to find its unfinished orders at open (one less index to keep). */
    if (kind == ORDO_PSUMTAB_ALL)
        snprintf(unfinished, sizeof unfinished,
                 "CREATE INDEX IF NOT EXISTS %s_unfinished ON %s(status) WHERE status < %d;",
                 table, table, ORDO_STATUS_DELIVERED);
    else
        snprintf(unfinished, sizeof unfinished, "DROP INDEX IF EXISTS %s_unfinished;", table);
    snprintf(sql, sizeof sql,
             "CREATE TABLE IF NOT EXISTS %s(order_id TEXT PRIMARY KEY, status INTEGER NOT NULL,"
             " version INTEGER NOT NULL, user_id INTEGER NOT NULL, restaurant_id INTEGER NOT NULL,"
             " total_cents INTEGER NOT NULL, item_count INTEGER NOT NULL,"
             " created_at_us INTEGER NOT NULL, updated_at_us INTEGER NOT NULL,"
             " courier_id INTEGER, cancel_reason TEXT, cancelled_from INTEGER NOT NULL)"
             " WITHOUT ROWID; %s",
             table, unfinished);
    if (!(t->hot = ordo_pmap_new()) || ordo_pstore_exec(db, sql) != 0)
        goto fail;
    for (size_t i = 0; indexes && indexes[i]; i++)
        if (ordo_pstore_exec(db, indexes[i]) != 0)
            goto fail;
    snprintf(sql, sizeof sql,
             "INSERT OR REPLACE INTO %s(" ORDO_PSUMMARY_COLUMNS
             ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
             table);
    if (ordo_pstore_prepare(db, sql, &t->insert) != 0)
        goto fail;
    snprintf(sql, sizeof sql,
             "UPDATE %s SET status = ?2, version = ?3, updated_at_us = ?9, courier_id = ?10,"
             " cancel_reason = ?11, cancelled_from = ?12 WHERE order_id = ?1",
             table);
    if (ordo_pstore_prepare(db, sql, &t->update) != 0)
        goto fail;
    snprintf(sql, sizeof sql, "DELETE FROM %s WHERE order_id = ?1", table);
    if (ordo_pstore_prepare(db, sql, &t->del) != 0 || s_load(t) != 0)
        goto fail;
    return t;
fail:
    ordo_psumtab_close(&t);
    return NULL;
}

int ordo_psumtab_apply(ordo_psumtab_t *t, const ordo_client_event_t *ev, ordo_status_t *before,
                       const ordo_psummary_t **after)
{
    *before = ORDO_STATUS_NONE;
    *after = NULL;
    ordo_event_type_t type = ordo_model_event_type(ev);
    size_t idlen = strlen(ev->order_id);
    if (type == ORDO_EVT_NONE || idlen > ORDO_ORDER_ID_MAX)
        return 0;
    ordo_psummary_t *s = ordo_pmap_get(t->hot, ev->order_id, idlen);
    if (type == ORDO_EVT_ORDER_CREATED) {
        if (s) { /* replayed after a restart before its row was written: start over */
            *before = (ordo_status_t)s->status;
            s->rewrite = s->stored;
        } else {
            if (!(s = calloc(1, sizeof *s)))
                return -1;
            memcpy(s->order_id, ev->order_id, idlen + 1);
            s->order_id_len = (uint8_t)idlen;
            if (ordo_pmap_put(t->hot, s->order_id, idlen, s) != 0) {
                free(s);
                return -1;
            }
        }
        s->status = ORDO_STATUS_CREATED;
        s->user_id = ev->user_id;
        s->restaurant_id = ev->restaurant_id;
        s->total_cents = ev->total_cents;
        s->item_count = 0;
        for (size_t i = 0; i < ev->n_items; i++)
            s->item_count += ev->items[i].qty;
        s->created_at_us = ev->timestamp_us;
    } else {
        if (!s)
            return 0; /* an order never seen created: nothing to fold into */
        *before = (ordo_status_t)s->status;
        s->status = (uint8_t)ordo_status_after(type);
        if (type == ORDO_EVT_ORDER_OUT_FOR_DELIVERY && ev->has_courier_id) {
            s->has_courier_id = true;
            s->courier_id = ev->courier_id;
        }
        if (type == ORDO_EVT_ORDER_CANCELLED) {
            free(s->cancel_reason);
            s->cancel_reason = ev->reason ? strdup(ev->reason) : NULL;
            if (ev->reason && !s->cancel_reason)
                return -1;
            s->cancelled_from = ev->previous_status
                                    ? (uint8_t)ordo_status_from_name(ev->previous_status,
                                                                     strlen(ev->previous_status))
                                    : (uint8_t)*before;
        }
    }
    s->version = (uint8_t)(ev->version <= ORDO_MAX_VERSION ? ev->version : ORDO_MAX_VERSION);
    s->updated_at_us = ev->timestamp_us;
    if (s_mark(t, s) != 0)
        return -1;
    *after = s;
    return 0;
}

/* Writes the order's row: the whole row (INSERT OR REPLACE) when the
 * table has none or it was created again, else the columns an event after
 * OrderCreated changes. */
static int s_write(ordo_psumtab_t *t, const ordo_psummary_t *s)
{
    bool whole = !s->stored || s->rewrite;
    sqlite3_stmt *st = whole ? t->insert : t->update;
    sqlite3_bind_text(st, 1, s->order_id, s->order_id_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, s->status);
    sqlite3_bind_int(st, 3, s->version);
    if (whole) {
        sqlite3_bind_int64(st, 4, s->user_id);
        sqlite3_bind_int64(st, 5, s->restaurant_id);
        sqlite3_bind_int64(st, 6, s->total_cents);
        sqlite3_bind_int64(st, 7, s->item_count);
        sqlite3_bind_int64(st, 8, s->created_at_us);
    }
    sqlite3_bind_int64(st, 9, s->updated_at_us);
    if (s->has_courier_id)
        sqlite3_bind_int64(st, 10, s->courier_id);
    else
        sqlite3_bind_null(st, 10);
    if (s->cancel_reason)
        sqlite3_bind_text(st, 11, s->cancel_reason, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 11);
    sqlite3_bind_int(st, 12, s->cancelled_from);
    return ordo_pstore_step_done(t->db, st);
}

int ordo_psumtab_flush(ordo_psumtab_t *t)
{
    size_t done = 0;
    int rc = 0;
    for (; done < t->n_dirty; done++) {
        ordo_psummary_t *s = t->dirty[done];
        bool finished = ordo_status_is_final((ordo_status_t)s->status);
        if (finished && !t->keep_finished) {
            if (s->stored) {
                sqlite3_bind_text(t->del, 1, s->order_id, s->order_id_len, SQLITE_STATIC);
                rc = ordo_pstore_step_done(t->db, t->del);
            }
        } else {
            rc = s_write(t, s);
        }
        if (rc != 0)
            break;
        s->dirty = false;
        s->stored = !(finished && !t->keep_finished);
        s->rewrite = false;
        if (finished) {
            ordo_pmap_remove(t->hot, s->order_id, s->order_id_len);
            s_free_rec(s);
        }
    }
    /* What failed stays dirty for the next try (the generation fails anyway). */
    if (done > 0 && done < t->n_dirty)
        memmove(t->dirty, t->dirty + done, (t->n_dirty - done) * sizeof *t->dirty);
    t->n_dirty -= done;
    return rc;
}

size_t ordo_psumtab_hot(const ordo_psumtab_t *t)
{
    return ordo_pmap_count(t->hot);
}
