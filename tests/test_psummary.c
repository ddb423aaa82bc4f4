/* Tests for projections/ordo_psummary's write-behind summary table, the
 * store of the summary, user and restaurant read models: a row is
 * inserted once and then updated only in the columns later events change
 * (so indexes keyed by user, restaurant or creation time keep their
 * entries), an order created again after a restart is rewritten whole,
 * unfinished orders come back into memory on reopen and finished ones
 * leave it, an ACTIVE table never holds a finished order (nor writes one
 * that finished between two flushes), and only a table that needs it has
 * the partial index on unfinished orders. Every check reads the database
 * back, with integrity_check over the indexes. */
#include "ordo_pstore.h"
#include "ordo_psummary.h"
#include "ordo_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const s_by_status[] = {
    "CREATE INDEX IF NOT EXISTS t_by_status ON t(status, created_at_us, order_id)",
    "CREATE INDEX IF NOT EXISTS t_by_user ON t(user_id, created_at_us, order_id)",
    NULL,
};
static const char *const s_by_user[] = {
    "CREATE INDEX IF NOT EXISTS t_by_user ON t(user_id, created_at_us, order_id)",
    NULL,
};

typedef struct {
    char dir[128];
    char path[256];
    sqlite3 *db;
    ordo_psumtab_t *tab;
    uint64_t position;
} env_t;

static const char *const *s_indexes_of(ordo_psumtab_kind_t kind)
{
    return kind == ORDO_PSUMTAB_ALL_BY_STATUS ? s_by_status : s_by_user;
}

static void env_open(env_t *e, ordo_psumtab_kind_t kind)
{
    e->db = ordo_pstore_open(e->path, 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->db);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(e->db), 0);
    e->tab = ordo_psumtab_open(e->db, "t", kind, s_indexes_of(kind));
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->tab);
}

static void env_init(env_t *e, ordo_psumtab_kind_t kind)
{
    memset(e, 0, sizeof *e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(e->dir, sizeof e->dir));
    snprintf(e->path, sizeof e->path, "%s/summary.1.db", e->dir);
    env_open(e, kind);
}

/* Flushes, commits and closes: what a projector that stops does. */
static void env_close(env_t *e)
{
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e->tab), 0);
    ordo_psumtab_close(&e->tab);
    CU_ASSERT_EQUAL(ordo_pstore_commit(e->db), 0);
    ordo_pstore_close(&e->db);
}

static void env_done(env_t *e)
{
    if (e->tab)
        ordo_psumtab_close(&e->tab);
    if (e->db) {
        ordo_pstore_rollback(e->db);
        ordo_pstore_close(&e->db);
    }
    ordo_test_rm_rf(e->dir);
}

/* Applies one event; returns the status the order had before it. */
static ordo_status_t ev(env_t *e, const char *id, uint32_t version, ordo_event_type_t t,
                        int64_t ts, int64_t user)
{
    ordo_client_item_t items[2] = {{.qty = 2}, {.qty = 3}};
    ordo_client_event_t x = {0};
    x.position = ++e->position;
    x.order_id = id;
    x.version = version;
    x.type = ordo_event_type_name(t);
    x.timestamp_us = ts;
    x.schema = 1;
    if (t == ORDO_EVT_ORDER_CREATED) {
        x.user_id = user;
        x.restaurant_id = 7;
        x.total_cents = 1250;
        x.items = items;
        x.n_items = 2;
    }
    if (t == ORDO_EVT_ORDER_OUT_FOR_DELIVERY) {
        x.has_courier_id = true;
        x.courier_id = 99;
    }
    if (t == ORDO_EVT_ORDER_CANCELLED) {
        x.reason = "out of stock";
        x.previous_status = "Confirmed";
    }
    ordo_status_t before = ORDO_STATUS_NONE;
    const ordo_psummary_t *after = NULL;
    CU_ASSERT_EQUAL(ordo_psumtab_apply(e->tab, &x, &before, &after), 0);
    CU_ASSERT_PTR_NOT_NULL(after);
    return before;
}

/* One integer from a query (-1 when it returns no row or not an integer). */
static int64_t sql_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    int64_t v = -1;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) == SQLITE_INTEGER)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static void assert_intact(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL),
                          SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_STRING_EQUAL((const char *)sqlite3_column_text(st, 0), "ok");
    sqlite3_finalize(st);
}

/* Row changes SQLite made since the counter was last read. */
static int64_t changes(sqlite3 *db)
{
    static int64_t last;
    int64_t now = sqlite3_total_changes64(db);
    int64_t d = now - last;
    last = now;
    return d;
}

static void test_insert_then_update(void)
{
    env_t e;
    env_init(&e, ORDO_PSUMTAB_ALL_BY_STATUS);
    CU_ASSERT_EQUAL(ev(&e, "o-1", 1, ORDO_EVT_ORDER_CREATED, 1000, 500), ORDO_STATUS_NONE);
    CU_ASSERT_EQUAL(ev(&e, "o-1", 2, ORDO_EVT_ORDER_CONFIRMED, 2000, 0), ORDO_STATUS_CREATED);
    changes(e.db);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(changes(e.db), 1); /* one row for two events */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT status FROM t WHERE order_id = 'o-1'"),
                    ORDO_STATUS_CONFIRMED);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT item_count FROM t WHERE order_id = 'o-1'"), 5);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(changes(e.db), 0); /* nothing dirty, nothing written */

    ev(&e, "o-1", 3, ORDO_EVT_ORDER_PREPARING, 3000, 0);
    ev(&e, "o-1", 4, ORDO_EVT_ORDER_READY, 4000, 0);
    ev(&e, "o-1", 5, ORDO_EVT_ORDER_OUT_FOR_DELIVERY, 5000, 0);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(changes(e.db), 1);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT version FROM t WHERE order_id = 'o-1'"), 5);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT courier_id FROM t WHERE order_id = 'o-1'"), 99);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT updated_at_us FROM t WHERE order_id = 'o-1'"), 5000);
    /* the columns an update leaves alone are still those of OrderCreated */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT user_id FROM t WHERE order_id = 'o-1'"), 500);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT total_cents FROM t WHERE order_id = 'o-1'"), 1250);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT created_at_us FROM t WHERE order_id = 'o-1'"), 1000);
    /* and the index led by status moved with it */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t INDEXED BY t_by_status"
                                  " WHERE status = 5"),
                    1);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t INDEXED BY t_by_status"
                                  " WHERE status = 2"),
                    0);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);

    ev(&e, "o-1", 6, ORDO_EVT_ORDER_DELIVERED, 6000, 0);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 0); /* finished: out of memory */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT status FROM t WHERE order_id = 'o-1'"),
                    ORDO_STATUS_DELIVERED);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t"), 1);
    assert_intact(e.db);
    env_done(&e);
}

static void test_reopen_and_created_again(void)
{
    env_t e;
    env_init(&e, ORDO_PSUMTAB_ALL);
    ev(&e, "o-1", 1, ORDO_EVT_ORDER_CREATED, 1000, 500);
    ev(&e, "o-2", 1, ORDO_EVT_ORDER_CREATED, 1100, 501);
    ev(&e, "o-2", 2, ORDO_EVT_ORDER_CONFIRMED, 1200, 0);
    ev(&e, "o-3", 1, ORDO_EVT_ORDER_CREATED, 1300, 502);
    ev(&e, "o-3", 2, ORDO_EVT_ORDER_CANCELLED, 1400, 0);
    env_close(&e);

    env_open(&e, ORDO_PSUMTAB_ALL);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 2); /* o-1 and o-2; o-3 is finished */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT cancelled_from FROM t WHERE order_id = 'o-3'"),
                    ORDO_STATUS_CONFIRMED);
    /* a loaded order goes on by update */
    CU_ASSERT_EQUAL(ev(&e, "o-2", 3, ORDO_EVT_ORDER_CANCELLED, 1500, 0), ORDO_STATUS_CONFIRMED);
    /* an order created again (its events replayed after a crash) is
     * rewritten whole: here its creation says another user */
    CU_ASSERT_EQUAL(ev(&e, "o-1", 1, ORDO_EVT_ORDER_CREATED, 1000, 777), ORDO_STATUS_CREATED);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT user_id FROM t WHERE order_id = 'o-1'"), 777);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t INDEXED BY t_by_user"
                                  " WHERE user_id = 777"),
                    1);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t INDEXED BY t_by_user"
                                  " WHERE user_id = 500"),
                    0);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT status FROM t WHERE order_id = 'o-2'"),
                    ORDO_STATUS_CANCELLED);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);
    /* its next event is an update again */
    ev(&e, "o-1", 2, ORDO_EVT_ORDER_CONFIRMED, 2000, 0);
    changes(e.db);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(changes(e.db), 1);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT user_id FROM t WHERE order_id = 'o-1'"), 777);
    assert_intact(e.db);
    env_close(&e);

    env_open(&e, ORDO_PSUMTAB_ALL);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t"), 3);
    env_done(&e);
}

static void test_active_table(void)
{
    env_t e;
    env_init(&e, ORDO_PSUMTAB_ACTIVE);
    /* created and finished between two flushes: never written */
    ev(&e, "o-1", 1, ORDO_EVT_ORDER_CREATED, 1000, 500);
    ev(&e, "o-1", 2, ORDO_EVT_ORDER_CANCELLED, 1100, 0);
    ev(&e, "o-2", 1, ORDO_EVT_ORDER_CREATED, 1200, 500);
    changes(e.db);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(changes(e.db), 1); /* o-2's insert only */
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t"), 1);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);
    /* written, then finished: deleted */
    ev(&e, "o-2", 2, ORDO_EVT_ORDER_CANCELLED, 1300, 0);
    CU_ASSERT_EQUAL(ordo_psumtab_flush(e.tab), 0);
    CU_ASSERT_EQUAL(sql_int(e.db, "SELECT count(*) FROM t"), 0);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 0);
    assert_intact(e.db);
    env_done(&e);
}

static int64_t has_unfinished_index(sqlite3 *db)
{
    return sql_int(db, "SELECT count(*) FROM sqlite_master WHERE name = 't_unfinished'");
}

static void test_unfinished_index(void)
{
    env_t e;
    env_init(&e, ORDO_PSUMTAB_ALL);
    CU_ASSERT_EQUAL(has_unfinished_index(e.db), 1);
    ev(&e, "o-1", 1, ORDO_EVT_ORDER_CREATED, 1000, 500);
    env_close(&e);
    /* a table that gained an index led by status drops it, and still
     * finds its unfinished orders */
    env_open(&e, ORDO_PSUMTAB_ALL_BY_STATUS);
    CU_ASSERT_EQUAL(has_unfinished_index(e.db), 0);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);
    env_close(&e);
    env_open(&e, ORDO_PSUMTAB_ACTIVE);
    CU_ASSERT_EQUAL(has_unfinished_index(e.db), 0);
    CU_ASSERT_EQUAL(ordo_psumtab_hot(e.tab), 1);
    env_done(&e);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("psummary", NULL, NULL);
    CU_add_test(s, "a row is inserted once, then updated", test_insert_then_update);
    CU_add_test(s, "reopen, and an order created again", test_reopen_and_created_again);
    CU_add_test(s, "an ACTIVE table holds unfinished orders only", test_active_table);
    CU_add_test(s, "the partial index where it is needed", test_unfinished_index);
    return ordo_test_run();
}
