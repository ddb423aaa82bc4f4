/* The projector's embedded store: one SQLite database file per projection
 * generation (`<data-dir>/<name>.<generation>.db`), holding the read model
 * and, in its `meta` table, the checkpoint that model reflects.
 *
 * Why SQLite: finished orders must leave the projector's RAM, queries need
 * ordered range scans over several keys (B-tree indexes), and a commit is
 * atomic, so a model and its checkpoint are saved together by one COMMIT
 * (write-ahead log mode: a commit either is in the file whole or not at
 * all, after kill -9 or a power cut). The projection actor keeps one write
 * transaction open between saves; queries run on the same connection and so
 * see every change applied so far, committed or not.
 *
 * Every function logs what failed (with SQLite's message) and returns 0 or
 * -1; nothing here asserts on data from the file. */
#ifndef ORDO_PSTORE_H
#define ORDO_PSTORE_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_PSTORE_FORMAT 1 /* meta `format`: the layout of every model's tables */

/* Opens (creating) a database file with the projector's settings: WAL
 * journal, synchronous=NORMAL (commits are atomic and survive kill -9; a
 * power cut may roll back to an earlier commit, which holds its own
 * checkpoint) checkpointed every 10,000 pages, a bounded page cache
 * (cache_kib), foreign keys off. Creates
 * the `meta` table. NULL on failure. */
sqlite3 *ordo_pstore_open(const char *path, int cache_kib);

/* Closes the database (finalizing nothing: the caller finalizes its
 * statements first). Nulls *db; safe on NULL. */
void ordo_pstore_close(sqlite3 **db);

/* Runs SQL without results (one or more statements). */
int ordo_pstore_exec(sqlite3 *db, const char *sql);

/* Prepares a statement to be kept (SQLITE_PREPARE_PERSISTENT). */
int ordo_pstore_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);

/* Steps a statement that returns no row (INSERT, UPDATE, DELETE) and
 * resets it. */
int ordo_pstore_step_done(sqlite3 *db, sqlite3_stmt *st);

/* meta(key TEXT PRIMARY KEY, value INTEGER): 1 and *out when the key is
 * there, 0 when it is not, -1 on error. */
int ordo_pstore_meta_get(sqlite3 *db, const char *key, int64_t *out);
int ordo_pstore_meta_set(sqlite3 *db, const char *key, int64_t value);

int ordo_pstore_begin(sqlite3 *db);
int ordo_pstore_commit(sqlite3 *db);
int ordo_pstore_rollback(sqlite3 *db);

/* `<dir>/<name>.<generation>.db`. */
void ordo_pstore_path(char *buf, size_t size, const char *dir, const char *name,
                      uint32_t generation);

/* Deletes a database file with its -wal and -shm files. */
int ordo_pstore_remove(const char *path);

/* The generations of `name` that have a file in dir, ascending, at most
 * `max`. Returns how many (>= 0), or -1 if the folder cannot be read. */
int ordo_pstore_generations(const char *dir, const char *name, uint32_t *gens, int max);

#endif
