/* The order summary of PROJECTIONS.md ("Summary record") and a table of
 * them with a write-behind cache, shared by the summary, user and
 * restaurant read models (each keeps its own table in its own database).
 *
 * A summary table keeps every unfinished order in memory (apply() touches
 * no database) and marks what changed; flush() writes the changed rows
 * into the database and drops finished orders from memory, so memory
 * follows the orders in progress, not history. In a table of kind
 * ORDO_PSUMTAB_ACTIVE (the restaurant board's) a finished order's row is
 * deleted instead of written.
 *
 * Table layout (one row per order; status and cancelled_from are
 * ordo_status_t numbers, 1 = Created .. 7 = Cancelled, 0 = none):
 *   order_id TEXT PRIMARY KEY, status, version, user_id, restaurant_id,
 *   total_cents, item_count, created_at_us, updated_at_us,
 *   courier_id (NULL: none), cancel_reason (NULL: none), cancelled_from
 * plus, for a table of every order without a caller's index led by status,
 * a partial index on status over unfinished rows, which open() reads to
 * load the cache.
 *
 * A row is inserted once, when its order is first written, and then only
 * UPDATEd in the columns a later event can change (status, version,
 * updated_at_us, courier_id, cancel_reason, cancelled_from): SQLite leaves
 * every index without one of those columns alone, so an order's entries
 * keyed by user, restaurant or creation time are written once, not at each
 * save it was dirty for. */
#ifndef ORDO_PSUMMARY_H
#define ORDO_PSUMMARY_H

#include "ordo.h"
#include "ordo_order.h"
#include "ordo_pquery.h"

#include <msgpack.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char order_id[ORDO_ORDER_ID_MAX + 1]; /* NUL-terminated */
    uint8_t order_id_len;
    uint8_t status;         /* ordo_status_t */
    uint8_t version;
    uint8_t cancelled_from; /* ordo_status_t; NONE unless cancelled */
    bool has_courier_id;
    bool dirty;             /* changed since the last flush */
    bool stored;            /* the table has a row for it */
    bool rewrite;           /* its next write sets every column (created again) */
    int64_t user_id;
    int64_t restaurant_id;
    int64_t total_cents;
    int64_t item_count;
    int64_t created_at_us;
    int64_t updated_at_us;
    int64_t courier_id;
    char *cancel_reason; /* owned; NULL unless cancelled */
} ordo_psummary_t;

/* The columns a query selects, in the order ordo_psummary_pack_row reads. */
#define ORDO_PSUMMARY_COLUMNS                                                                      \
    "order_id, status, version, user_id, restaurant_id, total_cents, item_count, created_at_us,"   \
    " updated_at_us, courier_id, cancel_reason, cancelled_from"

/* Packs the summary map of PROJECTIONS.md from a row whose columns from
 * `col` on are ORDO_PSUMMARY_COLUMNS. The row comes from a file: 0, or -1
 * if a value is missing or out of range (nothing sensible was packed). */
int ordo_psummary_pack_row(msgpack_packer *pk, sqlite3_stmt *st, int col);

/* Steps `st` (rows of ORDO_PSUMMARY_COLUMNS from column 0) and packs up
 * to `limit` summaries as an array. When a row beyond them exists,
 * *has_next is set and `cursor` continues after the last one packed
 * (kind `type`, key created_at_us). 0, or -1 with *err (a database
 * error or an invalid row: unavailable). */
int ordo_psummary_pack_page(msgpack_packer *pk, sqlite3_stmt *st, int64_t limit,
                            ordo_pq_type_t type, bool *has_next, char cursor[ORDO_PCURSOR_MAX],
                            ordo_perror_t *err);

typedef struct ordo_psumtab ordo_psumtab_t;

typedef enum {
    ORDO_PSUMTAB_ACTIVE,       /* unfinished orders only: a finished one's row is deleted */
    ORDO_PSUMTAB_ALL,          /* every order ever seen */
    ORDO_PSUMTAB_ALL_BY_STATUS /* every order, and the model has an index led by status */
} ordo_psumtab_kind_t;

/* Opens the summary table `table` in db (creating it and the given extra
 * indexes, each a full CREATE INDEX statement, NULL-terminated list) and
 * loads its unfinished orders. NULL on failure (logged). */
ordo_psumtab_t *ordo_psumtab_open(sqlite3 *db, const char *table, ordo_psumtab_kind_t kind,
                                  const char *const *indexes);

/* Frees the cache and the statements; nulls *t. */
void ordo_psumtab_close(ordo_psumtab_t **t);

/* Folds one event into its order's summary. *before is the status the
 * order had (NONE for OrderCreated) and *after the summary now (NULL if the
 * event was ignored: an event of an order this table never saw created,
 * or an event type it does not know). 0, or -1 if out of memory. */
int ordo_psumtab_apply(ordo_psumtab_t *t, const ordo_client_event_t *ev, ordo_status_t *before,
                       const ordo_psummary_t **after);

/* Writes the changed summaries (deletes finished ones in a table of kind
 * ORDO_PSUMTAB_ACTIVE), and drops finished orders from memory. 0 or -1. */
int ordo_psumtab_flush(ordo_psumtab_t *t);

/* Orders held in memory. */
size_t ordo_psumtab_hot(const ordo_psumtab_t *t);

#endif
