/* The PostgreSQL read models' schema and its migrations (see
 * ordo_pgschema.h). A migration is never edited once released: a change
 * is a new one at the end of s_migrations. */
#include "ordo_pgschema.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "Which orders were S at T" as a function. Its body names the schema, so
 * a rebuild made under another name makes it again once renamed. */
#define S_FUNCTION_SQL                                                                             \
    "CREATE OR REPLACE FUNCTION @S.orders_in_status_at(wanted text, at timestamptz)"              \
    "  RETURNS TABLE (order_id text, from_at timestamptz, to_at timestamptz,"                     \
    "                 from_position bigint, to_position bigint)"                                  \
    "  LANGUAGE sql STABLE AS"                                                                    \
    "  'SELECT h.order_id, h.from_at, h.to_at, h.from_position, h.to_position"                    \
    "   FROM @S.order_status_history h"                                                           \
    "   WHERE h.status = wanted AND coalesce(h.to_at, ''infinity'') > at AND h.from_at <= at'"

/* Numbered from 1; each runs once, in its own transaction. */
static const struct {
    const char *what;
    const char *sql;
} s_migrations[] = {
    {"orders, status history, hourly analytics, the restaurant board, the checkpoint",
     "CREATE TABLE @S.checkpoint ("
     "  id integer PRIMARY KEY CHECK (id = 1),"
     "  position bigint NOT NULL CHECK (position >= 0),"
     "  updated_at timestamptz NOT NULL);"
     "INSERT INTO @S.checkpoint VALUES (1, 0, now());"
     "CREATE TABLE @S.orders ("
     "  id text PRIMARY KEY,"
     "  user_id bigint NOT NULL,"
     "  restaurant_id bigint NOT NULL,"
     "  status text NOT NULL,"
     "  items jsonb NOT NULL,"
     "  total_cents bigint NOT NULL,"
     "  currency text NOT NULL,"
     "  delivery_address text NOT NULL,"
     "  created_at timestamptz NOT NULL,"
     "  updated_at timestamptz NOT NULL,"
     "  version integer NOT NULL,"
     "  estimated_minutes integer,"
     "  courier_id bigint,"
     "  cancel_reason text,"
     "  cancelled_from text,"
     "  position bigint NOT NULL);" /* of its last event */
     "CREATE TABLE @S.order_status_history ("
     "  order_id text NOT NULL,"
     "  status text NOT NULL,"
     "  from_at timestamptz NOT NULL,"
     "  to_at timestamptz,"            /* NULL: it still is */
     "  from_position bigint NOT NULL,"
     "  to_position bigint,"
     /* An interval begins with one event: its position is its key. The
      * interval an order is in began at its last event (orders.position). */
     "  PRIMARY KEY (from_position));"
     S_FUNCTION_SQL ";"
     "CREATE TABLE @S.analytics_hourly ("
     "  hour timestamptz NOT NULL,"
     "  restaurant_id bigint NOT NULL,"
     "  currency text NOT NULL,"
     "  created bigint NOT NULL DEFAULT 0,"
     "  confirmed bigint NOT NULL DEFAULT 0,"
     "  preparing bigint NOT NULL DEFAULT 0,"
     "  ready bigint NOT NULL DEFAULT 0,"
     "  out_for_delivery bigint NOT NULL DEFAULT 0,"
     "  delivered bigint NOT NULL DEFAULT 0,"
     "  cancelled bigint NOT NULL DEFAULT 0,"
     "  cancelled_from_created bigint NOT NULL DEFAULT 0,"
     "  cancelled_from_confirmed bigint NOT NULL DEFAULT 0,"
     "  cancelled_from_preparing bigint NOT NULL DEFAULT 0,"
     "  revenue_cents bigint NOT NULL DEFAULT 0," /* total_cents of the orders delivered */
     "  PRIMARY KEY (hour, restaurant_id, currency));"
     "CREATE VIEW @S.restaurant_board AS"
     "  SELECT restaurant_id, status, count(*) AS orders,"
     "         min(created_at) AS oldest_created_at, max(updated_at) AS last_change_at"
     "  FROM @S.orders WHERE status NOT IN ('Delivered', 'Cancelled')"
     "  GROUP BY restaurant_id, status;"},
    {"the checkpoint counts rebuilds (generation 1: the first build)",
     "ALTER TABLE @S.checkpoint ADD COLUMN generation integer NOT NULL DEFAULT 1"},
};
/* The query indexes: made when the writer first catches up (building
 * one over the whole table is faster than keeping it up row by row while
 * millions of events are copied in), and kept up from then on. A new one
 * is added at the end; each is made once (IF NOT EXISTS). */
static const char *const s_indexes[] = {
    "CREATE INDEX IF NOT EXISTS orders_open_by_restaurant ON @S.orders (restaurant_id, status)"
    "  WHERE status NOT IN ('Delivered', 'Cancelled')",
    "CREATE INDEX IF NOT EXISTS orders_by_user ON @S.orders (user_id, created_at)",
    "CREATE INDEX IF NOT EXISTS order_status_history_by_order"
    "  ON @S.order_status_history (order_id)",
    /* "Which orders were OutForDelivery at 19:00": status = $1 AND
     * coalesce(to_at, 'infinity') > $2 AND from_at <= $2 is one range scan
     * of this (orders_in_status_at). It reads the intervals of that status
     * that end after the instant: few for an instant of the last hours. A
     * GiST index on the range would bound the scan for any instant, but
     * costs 28 us a row to build and 37 to keep up, against 1.7 and 3 for
     * this one (docs/postgres.md). */
    "CREATE INDEX IF NOT EXISTS order_status_history_as_of ON @S.order_status_history"
    "  (status, (coalesce(to_at, 'infinity'))) INCLUDE (from_at)",
};
#define S_INDEXES ((int)(sizeof s_indexes / sizeof s_indexes[0]))

#define S_MIGRATIONS ((int)(sizeof s_migrations / sizeof s_migrations[0]))

int ordo_pg_schema_version(void)
{
    return S_MIGRATIONS;
}

bool ordo_pg_schema_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > ORDO_PG_SCHEMA_MAX || (name[0] >= '0' && name[0] <= '9') ||
        !strncmp(name, "pg_", 3))
        return false;
    /* A rebuild of "x" uses "x_rebuild" and "x_old" and drops them. */
    if ((n >= 4 && !strcmp(name + n - 4, "_old")) ||
        (n >= 8 && !strcmp(name + n - 8, "_rebuild")))
        return false;
    return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

char *ordo_pg_sql(const char *sql, const char *schema)
{
    size_t uses = 0, slen = strlen(schema);
    for (const char *p = strstr(sql, "@S"); p; p = strstr(p + 2, "@S"))
        uses++;
    char *out = malloc(strlen(sql) + uses * (slen + 2) + 1);
    if (!out)
        return NULL;
    char *w = out;
    for (const char *p = sql; *p;) {
        if (p[0] == '@' && p[1] == 'S') {
            *w++ = '"';
            memcpy(w, schema, slen);
            w += slen;
            *w++ = '"';
            p += 2;
        } else {
            *w++ = *p++;
        }
    }
    *w = '\0';
    return out;
}

int ordo_pg_fail(PGconn *c, PGresult *r, const char *what, char *err, size_t errsize)
{
    const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(c);
    snprintf(err, errsize, "%s: %s", what, msg && *msg ? msg : "no reply from PostgreSQL");
    size_t n = strlen(err);
    while (n && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    PQclear(r);
    return -1;
}

int ordo_pg_exec(PGconn *c, const char *sql, char *err, size_t errsize)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        return ordo_pg_fail(c, r, "SQL", err, errsize);
    PQclear(r);
    return 0;
}

/* Runs a template (@S = the schema) without results. */
static int s_exec_s(PGconn *c, const char *sql, const char *schema, char *err, size_t errsize)
{
    char *text = ordo_pg_sql(sql, schema);
    if (!text) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    int rc = ordo_pg_exec(c, text, err, errsize);
    free(text);
    return rc;
}

/* The one integer a query returns; *found false when no row. */
static int s_query_int(PGconn *c, const char *sql, const char *schema, int64_t *out, bool *found,
                       char *err, size_t errsize)
{
    char *text = ordo_pg_sql(sql, schema);
    if (!text) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    PGresult *r = PQexec(c, text);
    free(text);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        return ordo_pg_fail(c, r, "SQL", err, errsize);
    *found = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0);
    *out = *found ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
    PQclear(r);
    return 0;
}

/* Records migration `version` as applied, in the open transaction. */
static int s_record(PGconn *c, const char *schema, int version, char *err, size_t errsize)
{
    char *sql = ordo_pg_sql("INSERT INTO @S.migrations (version, what) VALUES ($1, $2)", schema);
    if (!sql) {
        snprintf(err, errsize, "out of memory");
        return -1;
    }
    char number[16];
    snprintf(number, sizeof number, "%d", version);
    const char *values[] = {number, s_migrations[version - 1].what};
    PGresult *r = PQexecParams(c, sql, 2, NULL, values, NULL, NULL, 0);
    free(sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return ordo_pg_fail(c, r, "recording the migration", err, errsize);
    PQclear(r);
    return 0;
}

int ordo_pg_migrate(PGconn *c, const char *schema, int *applied, char *err, size_t errsize)
{
    *applied = 0;
    /* One projector migrates at a time: each step holds this lock until
     * its transaction ends. */
    static const char lock[] = "SELECT pg_advisory_xact_lock(hashtext('ordo-migrate'))";
    if (ordo_pg_exec(c, "BEGIN", err, errsize) != 0 || ordo_pg_exec(c, lock, err, errsize) != 0 ||
        s_exec_s(c,
                 "CREATE SCHEMA IF NOT EXISTS @S;"
                 "CREATE TABLE IF NOT EXISTS @S.migrations ("
                 "  version integer PRIMARY KEY, what text NOT NULL,"
                 "  applied_at timestamptz NOT NULL DEFAULT now())",
                 schema, err, errsize) != 0 ||
        ordo_pg_exec(c, "COMMIT", err, errsize) != 0)
        goto fail;
    for (;;) {
        if (ordo_pg_exec(c, "BEGIN", err, errsize) != 0 ||
            ordo_pg_exec(c, lock, err, errsize) != 0)
            goto fail;
        int64_t have;
        bool found;
        if (s_query_int(c, "SELECT max(version) FROM @S.migrations", schema, &have, &found, err,
                        errsize) != 0)
            goto fail;
        if (have > S_MIGRATIONS) {
            snprintf(err, errsize,
                     "schema \"%s\" has had migration %lld; this ordo-projector knows up to %d "
                     "(an older program on newer tables)",
                     schema, (long long)have, S_MIGRATIONS);
            goto fail;
        }
        if (have == S_MIGRATIONS)
            return ordo_pg_exec(c, "COMMIT", err, errsize);
        int next = (int)have + 1;
        if (s_exec_s(c, s_migrations[next - 1].sql, schema, err, errsize) != 0 ||
            s_record(c, schema, next, err, errsize) != 0 ||
            ordo_pg_exec(c, "COMMIT", err, errsize) != 0)
            goto fail;
        (*applied)++;
    }
fail:;
    char ignored[256];
    ordo_pg_exec(c, "ROLLBACK", ignored, sizeof ignored);
    return -1;
}

int ordo_pg_indexes_missing(PGconn *c, const char *schema, int *missing, char *err,
                            size_t errsize)
{
    static const char sql[] =
        "SELECT count(*) FROM pg_indexes WHERE schemaname = '@N' AND indexname IN"
        " ('orders_open_by_restaurant', 'orders_by_user', 'order_status_history_by_order',"
        "  'order_status_history_as_of')";
    /* @N: the bare name (checked: [a-z0-9_] only) inside a literal. */
    char text[sizeof sql + ORDO_PG_SCHEMA_MAX];
    const char *at = strstr(sql, "@N");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - sql), sql, schema, at + 2);
    int64_t have;
    bool found;
    if (s_query_int(c, text, schema, &have, &found, err, errsize) != 0)
        return -1;
    *missing = S_INDEXES - (int)have;
    return 0;
}

int ordo_pg_build_indexes(PGconn *c, const char *schema, char *err, size_t errsize)
{
    if (ordo_pg_exec(c, "SET maintenance_work_mem = '256MB'", err, errsize) != 0)
        return -1;
    for (int i = 0; i < S_INDEXES; i++)
        if (s_exec_s(c, s_indexes[i], schema, err, errsize) != 0)
            return -1;
    return 0;
}

int ordo_pg_checkpoint(PGconn *c, const char *schema, uint64_t *position, char *err,
                       size_t errsize)
{
    int64_t v;
    bool found;
    if (s_query_int(c, "SELECT position FROM @S.checkpoint WHERE id = 1", schema, &v, &found, err,
                    errsize) != 0)
        return -1;
    if (!found || v < 0) {
        snprintf(err, errsize, "schema \"%s\" has no checkpoint row", schema);
        return -1;
    }
    *position = (uint64_t)v;
    return 0;
}

int ordo_pg_generation(PGconn *c, const char *schema, uint32_t *generation, char *err,
                       size_t errsize)
{
    int64_t v;
    bool found;
    if (s_query_int(c, "SELECT generation FROM @S.checkpoint WHERE id = 1", schema, &v, &found,
                    err, errsize) != 0)
        return -1;
    *generation = found && v > 0 ? (uint32_t)v : 1;
    return 0;
}

int ordo_pg_swap(PGconn *c, const char *schema, const char *rebuilt, uint64_t position,
                 char *err, size_t errsize)
{
    char old[ORDO_PG_SCHEMA_MAX + 8];
    snprintf(old, sizeof old, "%s_old", schema);
    /* Every table of both, ACCESS EXCLUSIVE, checkpoints first (the order
     * writers take them in): a writer or a reader waiting on them finds
     * the names again once the swap commits, so it works wholly on the
     * old tables before or wholly on the new ones after. */
    static const char *const tables[] = {"checkpoint", "orders", "order_status_history",
                                         "analytics_hourly"};
    char locks[1200] = "";
    for (size_t t = 0; t < sizeof tables / sizeof *tables; t++)
        for (int which = 0; which < 2; which++) {
            size_t at = strlen(locks);
            snprintf(locks + at, sizeof locks - at, "%s\"%s\".%s", at ? ", " : "",
                     which ? rebuilt : schema, tables[t]);
        }
    char sql[3000];
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL lock_timeout = '5s';"
             "LOCK TABLE %s IN ACCESS EXCLUSIVE MODE;"
             "DO $$ BEGIN IF (SELECT position FROM \"%s\".checkpoint) <> %" PRIu64
             " OR (SELECT position FROM \"%s\".checkpoint) <> %" PRIu64
             " THEN RAISE EXCEPTION 'not both at position %" PRIu64 "'; END IF; END $$;"
             "UPDATE \"%s\".checkpoint SET generation ="
             " (SELECT generation + 1 FROM \"%s\".checkpoint);"
             "ALTER SCHEMA \"%s\" RENAME TO \"%s\";"
             "ALTER SCHEMA \"%s\" RENAME TO \"%s\";",
             locks, schema, position, rebuilt, position, position, rebuilt, schema, schema, old,
             rebuilt, schema);
    if (ordo_pg_exec(c, sql, err, errsize) != 0 ||
        s_exec_s(c, S_FUNCTION_SQL "; COMMIT", schema, err, errsize) != 0) {
        char ignored[256];
        ordo_pg_exec(c, "ROLLBACK", ignored, sizeof ignored);
        return -1;
    }
    return 0;
}

int ordo_pg_drop_old(PGconn *c, const char *schema, char *err, size_t errsize)
{
    /* Readers still on the old tables hold them: a short wait, then the
     * caller tries again later, rather than hold up the writer. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "BEGIN; SET LOCAL lock_timeout = '200ms'; DROP SCHEMA IF EXISTS \"%s_old\" CASCADE;"
             " COMMIT",
             schema);
    if (ordo_pg_exec(c, sql, err, errsize) != 0) {
        char ignored[256];
        ordo_pg_exec(c, "ROLLBACK", ignored, sizeof ignored);
        return -1;
    }
    return 0;
}
