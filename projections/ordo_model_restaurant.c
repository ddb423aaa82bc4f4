/* The `restaurant` read model: the live board of each restaurant
 * (RestaurantBoard): how many of its orders are in each status now, and
 * its orders in progress, oldest first.
 *
 * Tables: counts(restaurant_id PRIMARY KEY, s1..s7: orders now in status
 * 1 = Created .. 7 = Cancelled) and `active`, a summary table holding only
 * unfinished orders (a finished order's row is deleted). In memory: the
 * unfinished orders (ordo_psumtab) and, per restaurant touched since the
 * last flush, the change to its counts; flush() adds those changes to the
 * rows, so memory follows the restaurants and orders active now. */
#include "ordo_log.h"
#include "ordo_model.h"
#include "ordo_pmap.h"
#include "ordo_pstore.h"
#include "ordo_psummary.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "restaurant"

typedef struct {
    char key[8]; /* restaurant_id's bytes: the map key */
    int64_t restaurant_id;
    int64_t delta[ORDO_STATUS_COUNT_]; /* by ordo_status_t */
} s_delta_t;

typedef struct {
    sqlite3 *db;          /* borrowed */
    ordo_psumtab_t *tab;  /* owned */
    ordo_pmap_t *deltas;  /* owned, with its s_delta_t records */
    sqlite3_stmt *add;    /* owned: counts += delta */
    sqlite3_stmt *counts; /* owned */
    sqlite3_stmt *active; /* owned */
} s_state_t;

static const char *const s_indexes[] = {
    "CREATE INDEX IF NOT EXISTS active_by_restaurant ON active(restaurant_id, created_at_us,"
    " order_id)",
    NULL,
};

static void s_free_deltas(ordo_pmap_t *m)
{
    size_t cur = 0;
    s_delta_t *d;
    while ((d = ordo_pmap_next(m, &cur)) != NULL)
        free(d);
}

static void s_close(void **p)
{
    s_state_t *s = *p;
    if (!s)
        return;
    ordo_psumtab_close(&s->tab);
    if (s->deltas) {
        s_free_deltas(s->deltas);
        ordo_pmap_destroy(&s->deltas);
    }
    sqlite3_finalize(s->add);
    sqlite3_finalize(s->counts);
    sqlite3_finalize(s->active);
    free(s);
    *p = NULL;
}

static void *s_open(sqlite3 *db)
{
    s_state_t *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->db = db;
    if (!(s->deltas = ordo_pmap_new()) ||
        ordo_pstore_exec(db, "CREATE TABLE IF NOT EXISTS counts(restaurant_id INTEGER PRIMARY KEY,"
                             " s1 INTEGER NOT NULL, s2 INTEGER NOT NULL, s3 INTEGER NOT NULL,"
                             " s4 INTEGER NOT NULL, s5 INTEGER NOT NULL, s6 INTEGER NOT NULL,"
                             " s7 INTEGER NOT NULL)") != 0 ||
        !(s->tab = ordo_psumtab_open(db, "active", ORDO_PSUMTAB_ACTIVE, s_indexes)) ||
        ordo_pstore_prepare(db,
                            "INSERT INTO counts VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                            " ON CONFLICT(restaurant_id) DO UPDATE SET s1 = s1 + excluded.s1,"
                            " s2 = s2 + excluded.s2, s3 = s3 + excluded.s3,"
                            " s4 = s4 + excluded.s4, s5 = s5 + excluded.s5,"
                            " s6 = s6 + excluded.s6, s7 = s7 + excluded.s7",
                            &s->add) != 0 ||
        ordo_pstore_prepare(db, "SELECT s1, s2, s3, s4, s5, s6, s7 FROM counts"
                                " WHERE restaurant_id = ?1",
                            &s->counts) != 0 ||
        ordo_pstore_prepare(db,
                            "SELECT " ORDO_PSUMMARY_COLUMNS " FROM active WHERE restaurant_id = ?1"
                            " ORDER BY created_at_us, order_id LIMIT ?2",
                            &s->active) != 0) {
        void *p = s;
        s_close(&p);
        return NULL;
    }
    return s;
}

static int s_count(s_state_t *s, int64_t restaurant_id, ordo_status_t st, int64_t by)
{
    s_delta_t *d = ordo_pmap_get(s->deltas, (const char *)&restaurant_id, 8);
    if (!d) {
        if (!(d = calloc(1, sizeof *d)))
            return -1;
        d->restaurant_id = restaurant_id;
        memcpy(d->key, &restaurant_id, 8);
        if (ordo_pmap_put(s->deltas, d->key, 8, d) != 0) {
            free(d);
            return -1;
        }
    }
    d->delta[st] += by;
    return 0;
}

static int s_apply(void *state, const ordo_client_event_t *ev)
{
    s_state_t *s = state;
    ordo_status_t before;
    const ordo_psummary_t *after;
    if (ordo_psumtab_apply(s->tab, ev, &before, &after) != 0)
        return -1;
    if (!after)
        return 0;
    if (before != ORDO_STATUS_NONE && s_count(s, after->restaurant_id, before, -1) != 0)
        return -1;
    return s_count(s, after->restaurant_id, (ordo_status_t)after->status, 1);
}

static int s_flush(void *state)
{
    s_state_t *s = state;
    if (ordo_psumtab_flush(s->tab) != 0)
        return -1;
    size_t cur = 0;
    s_delta_t *d;
    while ((d = ordo_pmap_next(s->deltas, &cur)) != NULL) {
        sqlite3_bind_int64(s->add, 1, d->restaurant_id);
        for (int st = ORDO_STATUS_CREATED; st <= ORDO_STATUS_CANCELLED; st++)
            sqlite3_bind_int64(s->add, 1 + st, d->delta[st]);
        if (ordo_pstore_step_done(s->db, s->add) != 0)
            return -1; /* the generation fails: what was added is rolled back with it */
    }
    s_free_deltas(s->deltas);
    ordo_pmap_destroy(&s->deltas);
    if (!(s->deltas = ordo_pmap_new()))
        return -1;
    return 0;
}

static int s_query(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    s_state_t *s = state;
    if (q->type != ORDO_PQ_RESTAURANT_BOARD) {
        ordo_perror_set(err, "unavailable", "the restaurant projection does not answer %s",
                        ordo_pq_type_name(q->type));
        return -1;
    }
    int64_t counts[ORDO_STATUS_COUNT_] = {0};
    sqlite3_bind_int64(s->counts, 1, q->restaurant_id);
    int step = sqlite3_step(s->counts);
    if (step == SQLITE_ROW)
        for (int st = ORDO_STATUS_CREATED; st <= ORDO_STATUS_CANCELLED; st++)
            counts[st] = sqlite3_column_int64(s->counts, st - 1);
    sqlite3_reset(s->counts);
    if (step != SQLITE_ROW && step != SQLITE_DONE) {
        ordo_log_error(S_MOD, "RestaurantBoard: %s", sqlite3_errmsg(s->db));
        ordo_perror_set(err, "unavailable", "the read model could not be read; see the log");
        return -1;
    }
    if (msgpack_pack_str_with_body(pk, "restaurant_id", 13) != 0 ||
        msgpack_pack_int64(pk, q->restaurant_id) != 0 ||
        msgpack_pack_str_with_body(pk, "counts", 6) != 0 ||
        msgpack_pack_map(pk, ORDO_STATUS_CANCELLED) != 0)
        goto nomem;
    for (int st = ORDO_STATUS_CREATED; st <= ORDO_STATUS_CANCELLED; st++) {
        const char *name = ordo_status_name((ordo_status_t)st);
        if (msgpack_pack_str_with_body(pk, name, strlen(name)) != 0 ||
            msgpack_pack_int64(pk, counts[st]) != 0)
            goto nomem;
    }
    if (msgpack_pack_str_with_body(pk, "active", 6) != 0)
        goto nomem;
    sqlite3_bind_int64(s->active, 1, q->restaurant_id);
    sqlite3_bind_int64(s->active, 2, ORDO_PQ_BOARD_ACTIVE_MAX);
    bool more;
    char cursor[ORDO_PCURSOR_MAX];
    int rc = ordo_psummary_pack_page(pk, s->active, ORDO_PQ_BOARD_ACTIVE_MAX, q->type, &more,
                                     cursor, err);
    sqlite3_reset(s->active);
    return rc != 0 ? -1 : 3;
nomem:
    ordo_perror_set(err, "unavailable", "out of memory");
    return -1;
}

const ordo_model_ops_t ordo_model_restaurant = {"restaurant", s_open, s_close, s_apply, s_flush,
                                                s_query, NULL};
