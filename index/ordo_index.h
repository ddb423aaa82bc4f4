/* The order index: for every order that has left the engine's memory, the
 * log positions of its events, so the order is loaded back (its ≤ 6
 * events read from the log and applied) without a scan of the log. Keyed
 * by order id in LMDB (one file, `index/` in the data folder); in front of
 * it, one Bloom filter per shard, so a lookup of an id that was never
 * indexed (every CreateOrder of a new order) reads nothing from disk.
 *
 * Threads: each shard calls ordo_index_get and ordo_index_note with its
 * own number only (its filter is its own); ordo_index_write may run on
 * any one thread (the engine's indexer) beside them: LMDB lets readers run
 * beside its writer. The index is derived from the log:
 * an order is removed from memory only after its entry is committed (and
 * synced, unless the engine runs with --fsync never), so every snapshot
 * that no longer holds an order has it here. */
#ifndef ORDO_INDEX_H
#define ORDO_INDEX_H

#include "ordo_order.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ordo_index ordo_index_t;

/* What the index keeps of an order. */
typedef struct {
    uint32_t version;                      /* events: 1 .. ORDO_MAX_VERSION */
    uint64_t positions[ORDO_MAX_VERSION]; /* positions[v-1]: version v's event */
} ordo_index_entry_t;

/* Opens (creating) the index in folder `dir` for `nshards` shards (1 to
 * ORDO_SHARDS_MAX) and fills their filters from its keys (`hash` of each id picks its shard, as
 * ordo_shard_of does). An entry naming a position past `log_head` (the
 * log lost its tail in a crash, or was cut by --repair) is deleted: its
 * order is in the log up to its last surviving event and comes back from
 * the snapshot and the log's replay. `sync`: commits reach the disk
 * before they return. 0, or a negative ordo_err_t (logged, naming the
 * folder). */
int ordo_index_open(const char *dir, uint32_t nshards, bool sync, uint64_t log_head,
                    ordo_index_t **out);

void ordo_index_destroy(ordo_index_t **ix);

/* Looks up an order (its id and ordo_order_id_hash). 1 with *e filled,
 * 0 if absent, or a negative ordo_err_t (ORDO_ERR_CORRUPT for an entry
 * that does not decode). */
int ordo_index_get(ordo_index_t *ix, uint32_t shard, ordo_str_t id, uint64_t hash,
                   ordo_index_entry_t *e);

/* Appends an order's entry (id and event positions) to `buf`, for
 * ordo_index_write. 0, or -1 when out of memory. */
int ordo_index_pack(msgpack_sbuffer *buf, const ordo_order_t *order);

/* Writes the `count` entries packed in buf[0..len) in one transaction
 * (synced if the index was opened so); an order already there gets the
 * new entry (its events' positions as they are now in the log). Does not
 * touch the filters. 0, or a negative ordo_err_t: then
 * nothing was written. */
int ordo_index_write(ordo_index_t *ix, const char *buf, size_t len, uint32_t count);

/* Adds a written order to its shard's filter (its id's hash), before the
 * shard lets it go from memory. */
void ordo_index_note(ordo_index_t *ix, uint32_t shard, uint64_t hash);

/* Packs, writes and notes `n` orders (each with its hash in hashes[i]), on
 * the shard's own thread: ordo_index_pack + ordo_index_write + ordo_index_note. */
int ordo_index_put(ordo_index_t *ix, uint32_t shard, const ordo_order_t *const *orders,
                   const uint64_t *hashes, size_t n);

/* Lets go of the index file's pages this process has mapped (they stay
 * in the kernel's page cache, and the next read maps them again), so
 * the engine's resident memory does not grow with the index: every write
 * of random ids touches pages all over the file. Safe beside readers. */
void ordo_index_unmap_pages(ordo_index_t *ix);

/* What `ordo-admin index info` shows: read without changing anything,
 * beside a running engine (LMDB readers do not block its writer). */
typedef struct {
    uint64_t orders;     /* entries */
    uint64_t file_bytes; /* data.mdb's size */
    uint64_t used_bytes; /* pages in use */
} ordo_index_info_t;

/* Reads the index in folder `dir`. 0; ORDO_ERR_NOT_FOUND (no index
 * there: nothing has left memory yet); or another ordo_err_t with err
 * set. */
int ordo_index_info(const char *dir, ordo_index_info_t *out, char *err, size_t errsize);

/* Orders in the index. */
uint64_t ordo_index_count(const ordo_index_t *ix);

/* Orders of shard `shard` in the index: counted at open, and on every
 * write since (a standby's, before it hands the index to the engine).
 * A shard reads it once when it starts and keeps its own count from
 * there (Stats adds the shards' counts, each consistent with the orders
 * that shard holds in memory). */
uint64_t ordo_index_shard_count(const ordo_index_t *ix, uint32_t shard);

/* Bytes held by the filter of one shard (for Stats and the log). */
size_t ordo_index_filter_bytes(const ordo_index_t *ix, uint32_t shard);

#endif
