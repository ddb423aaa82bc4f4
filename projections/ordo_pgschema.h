/* The PostgreSQL read models' schema: their tables, made and upgraded by
 * numbered migrations, and the checkpoint row that says which events the
 * tables hold.
 *
 * Everything lives in one PostgreSQL schema (default "ordo"):
 *   orders                one row per order, as its events left it
 *   order_status_history  one row per status an order was in, from/to
 *                         time and position (NULL `to`: it still is), with
 *                         an index on (status, to_at) that answers "which
 *                         orders were S at T" in one range scan
 *                         (orders_in_status_at(S, T) is that query)
 * The query indexes are made when the writer first catches up, not while
 * it copies in the log from position 1 (ordo_pg_build_indexes).
 *   analytics_hourly      counts and revenue per hour, restaurant, currency
 *   restaurant_board      a view: each restaurant's open orders by status
 *   checkpoint            one row: the last position the tables reflect,
 *                         written in the transaction of the rows it covers
 *   migrations            the migrations applied, by number
 * A rebuild builds a second schema beside it and swaps the names in one
 * transaction, so a reader sees the old tables or the new, never half.
 *
 * Every function logs nothing itself; it returns 0 or -1 with `err`
 * holding PostgreSQL's message. */
#ifndef ORDO_PGSCHEMA_H
#define ORDO_PGSCHEMA_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_PG_SCHEMA_MAX 48 /* bytes of a schema name */

/* Whether `name` may name our schema: 1-48 of [a-z0-9_], not starting with
 * a digit, not "pg_..." (PostgreSQL's own), not ending in "_old" or
 * "_rebuild" (a rebuild's own names, which it drops). */
bool ordo_pg_schema_name_ok(const char *name);

/* Expands `sql`, replacing each "@S" with the schema name (double-quoted),
 * into a new string (malloc; NULL if out of memory). */
char *ordo_pg_sql(const char *sql, const char *schema);

/* Puts "what: PostgreSQL's message" (of `r`, or of the connection) into
 * err, frees r, returns -1. */
int ordo_pg_fail(PGconn *c, PGresult *r, const char *what, char *err, size_t errsize);

/* Runs SQL without results (one or more statements). */
int ordo_pg_exec(PGconn *c, const char *sql, char *err, size_t errsize);

/* Creates the schema if missing and applies every migration it has not
 * had, each in its own transaction, under an advisory lock (so two
 * projectors starting at once do not race). *applied: how many ran.
 * A schema whose migrations are newer than this program knows is refused. */
int ordo_pg_migrate(PGconn *c, const char *schema, int *applied, char *err, size_t errsize);

/* The checkpoint: the last position the tables hold (0: none yet). */
int ordo_pg_checkpoint(PGconn *c, const char *schema, uint64_t *position, char *err,
                       size_t errsize);

/* How many of the query indexes (orders by restaurant and by user, the
 * history by order and as of an instant) do not exist yet. */
int ordo_pg_indexes_missing(PGconn *c, const char *schema, int *missing, char *err,
                            size_t errsize);

/* Makes the query indexes that are missing (each its own statement, so
 * readers are held up by one at a time). */
int ordo_pg_build_indexes(PGconn *c, const char *schema, char *err, size_t errsize);

/* The generation of the tables in `schema` (1: the first build; each
 * rebuild swapped in adds 1). */
int ordo_pg_generation(PGconn *c, const char *schema, uint32_t *generation, char *err,
                       size_t errsize);

/* Swaps in a rebuild: in one transaction, holding every table of both
 * schemas in ACCESS EXCLUSIVE mode (waiting at most 5 s for them), with
 * both checkpoints at `position`, `rebuilt` takes the name `schema` and
 * generation + 1, and the old one is renamed "<schema>_old" (which must
 * not exist: ordo_pg_drop_old). A reader or writer sees the old tables or
 * the new ones, never a mix. 0, or -1 with nothing changed (err). */
int ordo_pg_swap(PGconn *c, const char *schema, const char *rebuilt, uint64_t position,
                 char *err, size_t errsize);

/* Drops "<schema>_old" if it exists, waiting at most 200 ms for readers
 * still on it. 0, or -1 (try again later). */
int ordo_pg_drop_old(PGconn *c, const char *schema, char *err, size_t errsize);

/* The newest migration this program knows. */
int ordo_pg_schema_version(void);

#endif
