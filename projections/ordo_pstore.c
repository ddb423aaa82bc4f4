/* SQLite helpers for the projector's store (see ordo_pstore.h). */
#include "ordo_pstore.h"

#include "ordo_log.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MOD "store"

/* Pages the write-ahead log may hold before SQLite copies them back into
 * the database (and syncs it). SQLite's default, 1000, made a model that
 * commits every 10,000 events copy and sync the same hot pages again and
 * again: 10,000 pages (40 MiB of log per model) wrote the summary model
 * 13% faster in ordo-projbench (2M events, a save every 10,000). */
#define S_WAL_CHECKPOINT_PAGES 10000

static int s_fail(sqlite3 *db, const char *what)
{
    ordo_log_error(S_MOD, "%s: %s (%s)", what, db ? sqlite3_errmsg(db) : "no database",
                   db ? sqlite3_db_filename(db, "main") : "");
    return -1;
}

sqlite3 *ordo_pstore_open(const char *path, int cache_kib)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        ordo_log_error(S_MOD, "cannot open %s: %s", path,
                       db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_extended_result_codes(db, 1);
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-%d;"
             " PRAGMA temp_store=FILE; PRAGMA foreign_keys=OFF; PRAGMA wal_autocheckpoint=%d;",
             cache_kib > 0 ? cache_kib : 16384, S_WAL_CHECKPOINT_PAGES);
    if (ordo_pstore_exec(db, pragmas) != 0 ||
        ordo_pstore_exec(db, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY,"
                             " value INTEGER NOT NULL) WITHOUT ROWID") != 0) {
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

void ordo_pstore_close(sqlite3 **db)
{
    if (!db || !*db)
        return;
    if (sqlite3_close(*db) != SQLITE_OK)
        s_fail(*db, "close");
    *db = NULL;
}

int ordo_pstore_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        ordo_log_error(S_MOD, "%s: %s (%s)", sql, msg ? msg : sqlite3_errmsg(db),
                       sqlite3_db_filename(db, "main"));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int ordo_pstore_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        ordo_log_error(S_MOD, "prepare %s: %s", sql, sqlite3_errmsg(db));
        *st = NULL;
        return -1;
    }
    return 0;
}

int ordo_pstore_step_done(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return s_fail(db, sqlite3_sql(st));
    return 0;
}

int ordo_pstore_meta_get(sqlite3 *db, const char *key, int64_t *out)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK)
        return s_fail(db, "meta read");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int found = 0;
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_int64(st, 0);
        found = 1;
    } else if (rc != SQLITE_DONE) {
        found = s_fail(db, "meta read");
    }
    sqlite3_finalize(st);
    return found;
}

int ordo_pstore_meta_set(sqlite3 *db, const char *key, int64_t value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO meta(key, value) VALUES (?1, ?2)", -1, &st,
                           NULL) != SQLITE_OK)
        return s_fail(db, "meta write");
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, value);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : s_fail(db, "meta write");
}

int ordo_pstore_begin(sqlite3 *db)
{
    return ordo_pstore_exec(db, "BEGIN IMMEDIATE");
}

int ordo_pstore_commit(sqlite3 *db)
{
    return ordo_pstore_exec(db, "COMMIT");
}

int ordo_pstore_rollback(sqlite3 *db)
{
    if (sqlite3_get_autocommit(db))
        return 0;
    return ordo_pstore_exec(db, "ROLLBACK");
}

void ordo_pstore_path(char *buf, size_t size, const char *dir, const char *name,
                      uint32_t generation)
{
    snprintf(buf, size, "%s/%s.%" PRIu32 ".db", dir, name, generation);
}

int ordo_pstore_remove(const char *path)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    int rc = 0;
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        if (unlink(p) != 0 && errno != ENOENT) {
            ordo_log_error(S_MOD, "cannot remove %s: %s", p, strerror(errno));
            rc = -1;
        }
    }
    return rc;
}

static int s_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int ordo_pstore_generations(const char *dir, const char *name, uint32_t *gens, int max)
{
    DIR *d = opendir(dir);
    if (!d) {
        ordo_log_error(S_MOD, "cannot read folder %s: %s", dir, strerror(errno));
        return -1;
    }
    size_t nlen = strlen(name);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < max) {
        const char *f = de->d_name;
        if (strncmp(f, name, nlen) != 0 || f[nlen] != '.')
            continue;
        const char *p = f + nlen + 1;
        char *end;
        errno = 0;
        unsigned long g = strtoul(p, &end, 10);
        if (errno || end == p || *p < '0' || *p > '9' || strcmp(end, ".db") != 0 || g == 0 ||
            g > UINT32_MAX)
            continue;
        gens[n++] = (uint32_t)g;
    }
    closedir(d);
    qsort(gens, (size_t)n, sizeof *gens, s_cmp_u32);
    return n;
}
