/* ordo-indexbench: the order index's two jobs measured on the two
 * embedded stores Debian offers, side by side in one run: writing
 * finished orders in batches (one synced transaction each, as the
 * engine's indexer does) and looking orders up (present ones, as a load
 * back does, and absent ones behind the Bloom filter, as every CreateOrder
 * of a new id does). LMDB is index/ordo_index.c itself; SQLite is a
 * WITHOUT ROWID table keyed by order id holding the same entry, in WAL
 * mode with synchronous=FULL (each commit synced, as LMDB's). */
#include "ordo_bloom.h"
#include "ordo_clock.h"
#include "ordo_hash.h"
#include "ordo_histogram.h"
#include "ordo_index.h"
#include "ordo_log.h"
#include "ordo_registry.h"

#include <getopt.h>
#include <inttypes.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    double put_per_s;
    uint64_t get_p50_ns, get_p99_ns, miss_p50_ns, miss_p99_ns;
    long long bytes;
} s_result_t;

static ordo_order_t s_order(uint64_t i, bool uuid_like)
{
    ordo_order_t o;
    memset(&o, 0, sizeof o);
    if (uuid_like) /* random ids, the worst case for any B-tree */
        o.order_id_len = (uint8_t)snprintf(o.order_id, sizeof o.order_id, "%016" PRIx64 "-%08" PRIx64,
                                           ordo_hash_mix(i), i);
    else /* ids that grow with time, e.g. UUIDv7 */
        o.order_id_len = (uint8_t)snprintf(o.order_id, sizeof o.order_id, "ord-%012" PRIu64, i);
    o.version = 6;
    for (uint32_t v = 0; v < 6; v++)
        o.positions[v] = i * 6 + v + 1;
    return o;
}

static long long s_dir_bytes(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "du -sb %s 2>/dev/null", dir);
    FILE *p = popen(cmd, "r");
    long long n = -1;
    if (p) {
        if (fscanf(p, "%lld", &n) != 1)
            n = -1;
        pclose(p);
    }
    return n;
}

/* The lookups' percentiles into r; frees both histograms. */
static void s_lookups_done(s_result_t *r, ordo_histogram_t **hit, ordo_histogram_t **miss)
{
    r->get_p50_ns = ordo_histogram_percentile(*hit, 50);
    r->get_p99_ns = ordo_histogram_percentile(*hit, 99);
    r->miss_p50_ns = ordo_histogram_percentile(*miss, 50);
    r->miss_p99_ns = ordo_histogram_percentile(*miss, 99);
    ordo_histogram_destroy(hit);
    ordo_histogram_destroy(miss);
}

static int s_lmdb(const char *dir, uint64_t n, uint64_t batch, uint64_t lookups, bool uuid,
                  s_result_t *r)
{
    ordo_index_t *ix;
    if (ordo_index_open(dir, 1, true, UINT64_MAX, &ix) != 0)
        return -1;
    const ordo_order_t **list = malloc(batch * sizeof *list);
    ordo_order_t *orders = malloc(batch * sizeof *orders);
    uint64_t *hashes = malloc(batch * sizeof *hashes);
    uint64_t t0 = ordo_mono_ns();
    for (uint64_t i = 0; i < n; i += batch) {
        uint64_t k = n - i < batch ? n - i : batch;
        for (uint64_t j = 0; j < k; j++) {
            orders[j] = s_order(i + j, uuid);
            list[j] = &orders[j];
            hashes[j] = ordo_order_id_hash(orders[j].order_id, orders[j].order_id_len);
        }
        if (ordo_index_put(ix, 0, list, hashes, k) != 0)
            return -1;
    }
    r->put_per_s = (double)n / ((ordo_mono_ns() - t0) / 1e9);
    ordo_histogram_t *hit = ordo_histogram_new(), *miss = ordo_histogram_new();
    for (uint64_t q = 0; q < lookups; q++) {
        ordo_order_t o = s_order(ordo_hash_mix(q ^ 0x55) % n, uuid);
        ordo_index_entry_t e;
        uint64_t h = ordo_order_id_hash(o.order_id, o.order_id_len), a = ordo_mono_ns();
        if (ordo_index_get(ix, 0, (ordo_str_t){o.order_id, o.order_id_len}, h, &e) != 1)
            return -1;
        ordo_histogram_record(hit, ordo_mono_ns() - a);
        o = s_order(n + q, uuid);
        h = ordo_order_id_hash(o.order_id, o.order_id_len);
        a = ordo_mono_ns();
        if (ordo_index_get(ix, 0, (ordo_str_t){o.order_id, o.order_id_len}, h, &e) != 0)
            return -1;
        ordo_histogram_record(miss, ordo_mono_ns() - a);
    }
    s_lookups_done(r, &hit, &miss);
    free(list);
    free(orders);
    free(hashes);
    ordo_index_destroy(&ix);
    r->bytes = s_dir_bytes(dir);
    return 0;
}

static int s_sqlite(const char *dir, uint64_t n, uint64_t batch, uint64_t lookups, bool uuid,
                    s_result_t *r)
{
    char path[600];
    snprintf(path, sizeof path, "mkdir -p %s", dir);
    if (system(path) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/index.db", dir);
    sqlite3 *db;
    sqlite3_stmt *put, *get;
    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
                     " CREATE TABLE IF NOT EXISTS ix(id BLOB PRIMARY KEY, e BLOB) WITHOUT ROWID",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "INSERT OR IGNORE INTO ix VALUES (?1, ?2)", -1, &put, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT e FROM ix WHERE id = ?1", -1, &get, NULL) != SQLITE_OK)
        return -1;
    ordo_bloom_t filter; /* the same filter in front, for a fair miss */
    ordo_bloom_init(&filter, 1u << 20);
    uint64_t t0 = ordo_mono_ns();
    for (uint64_t i = 0; i < n; i += batch) {
        uint64_t k = n - i < batch ? n - i : batch;
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (uint64_t j = 0; j < k; j++) {
            ordo_order_t o = s_order(i + j, uuid);
            unsigned char e[50] = {1, 6};
            for (int v = 0; v < 6; v++)
                for (int b = 0; b < 8; b++)
                    e[2 + 8 * v + b] = (unsigned char)(o.positions[v] >> (8 * b));
            sqlite3_bind_blob(put, 1, o.order_id, o.order_id_len, SQLITE_STATIC);
            sqlite3_bind_blob(put, 2, e, 50, SQLITE_STATIC);
            if (sqlite3_step(put) != SQLITE_DONE)
                return -1;
            sqlite3_reset(put);
            ordo_bloom_add(&filter, ordo_order_id_hash(o.order_id, o.order_id_len));
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            return -1;
    }
    r->put_per_s = (double)n / ((ordo_mono_ns() - t0) / 1e9);
    ordo_histogram_t *hit = ordo_histogram_new(), *miss = ordo_histogram_new();
    for (uint64_t q = 0; q < lookups; q++) {
        for (int pass = 0; pass < 2; pass++) {
            ordo_order_t o = pass == 0 ? s_order(ordo_hash_mix(q ^ 0x55) % n, uuid)
                                       : s_order(n + q, uuid);
            uint64_t a = ordo_mono_ns();
            if (ordo_bloom_maybe(&filter, ordo_order_id_hash(o.order_id, o.order_id_len))) {
                sqlite3_bind_blob(get, 1, o.order_id, o.order_id_len, SQLITE_STATIC);
                int rc = sqlite3_step(get);
                if ((pass == 0) != (rc == SQLITE_ROW))
                    return -1;
                sqlite3_reset(get);
            } else if (pass == 0) {
                return -1;
            }
            ordo_histogram_record(pass == 0 ? hit : miss, ordo_mono_ns() - a);
        }
    }
    s_lookups_done(r, &hit, &miss);
    ordo_bloom_free(&filter);
    sqlite3_finalize(put);
    sqlite3_finalize(get);
    sqlite3_close(db);
    r->bytes = s_dir_bytes(dir);
    return 0;
}

static void s_usage(FILE *out)
{
    fprintf(out,
            "Usage: ordo-indexbench [OPTIONS]\n"
            "The engine's order index on LMDB (ours) and on SQLite, side by side: finished\n"
            "orders written in batches (one synced transaction each), then lookups of\n"
            "present ids and of absent ones (behind the same Bloom filter).\n"
            "  --orders N     orders written (default 1000000)\n"
            "  --batch N      orders per transaction (default 2000)\n"
            "  --lookups N    lookups of each kind (default 200000)\n"
            "  --ordered-ids  ids that grow with time (UUIDv7-like) instead of random ones\n"
            "  --dir DIR      where the stores go (default /tmp)\n"
            "  --json         one JSON object on stdout\n"
            "  --help\n");
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"orders", required_argument, NULL, 'n'}, {"batch", required_argument, NULL, 'b'},
        {"lookups", required_argument, NULL, 'l'}, {"ordered-ids", no_argument, NULL, 'o'},
        {"dir", required_argument, NULL, 'd'},    {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    uint64_t n = 1000000, batch = 2000, lookups = 200000;
    bool uuid = true, json = false;
    const char *dir = "/tmp";
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'n': n = strtoull(optarg, NULL, 10); break;
        case 'b': batch = strtoull(optarg, NULL, 10); break;
        case 'l': lookups = strtoull(optarg, NULL, 10); break;
        case 'o': uuid = false; break;
        case 'd': dir = optarg; break;
        case 'j': json = true; break;
        case 'h': s_usage(stdout); return 0;
        default: s_usage(stderr); return 2;
        }
    }
    if (n < 1 || batch < 1 || batch > 1000000 || lookups < 1) {
        fprintf(stderr, "ordo-indexbench: --orders, --batch (up to 1000000) and --lookups must "
                        "be >= 1\n");
        return 2;
    }
    char lm[512], sq[512], cmd[1100];
    snprintf(lm, sizeof lm, "%s/ordo-indexbench-lmdb-%d", dir, (int)getpid());
    snprintf(sq, sizeof sq, "%s/ordo-indexbench-sqlite-%d", dir, (int)getpid());
    s_result_t r[2];
    const char *names[2] = {"LMDB", "SQLite"};
    for (int i = 0; i < 2; i++) {
        fprintf(stderr, "ordo-indexbench: %s, %" PRIu64 " orders...\n", names[i], n);
        int rc = i == 0 ? s_lmdb(lm, n, batch, lookups, uuid, &r[i])
                        : s_sqlite(sq, n, batch, lookups, uuid, &r[i]);
        snprintf(cmd, sizeof cmd, "rm -rf %s %s", lm, sq);
        if (rc != 0) {
            fprintf(stderr, "ordo-indexbench: %s failed\n", names[i]);
            if (system(cmd) != 0)
                return 1;
            return 1;
        }
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", lm, sq);
    if (system(cmd) != 0)
        fprintf(stderr, "ordo-indexbench: could not remove %s, %s\n", lm, sq);
    if (json) {
        printf("{\"orders\":%" PRIu64 ",\"batch\":%" PRIu64 ",\"ids\":\"%s\"", n, batch,
               uuid ? "random" : "ordered");
        for (int i = 0; i < 2; i++)
            printf(",\"%s\":{\"writes_per_s\":%.0f,\"get_p50_ns\":%" PRIu64
                   ",\"get_p99_ns\":%" PRIu64 ",\"absent_p50_ns\":%" PRIu64
                   ",\"absent_p99_ns\":%" PRIu64 ",\"bytes\":%lld}",
                   i == 0 ? "lmdb" : "sqlite", r[i].put_per_s, r[i].get_p50_ns, r[i].get_p99_ns,
                   r[i].miss_p50_ns, r[i].miss_p99_ns, r[i].bytes);
        printf("}\n");
        return 0;
    }
    printf("%" PRIu64 " orders, %s ids, %" PRIu64 " per transaction\n", n,
           uuid ? "random" : "ordered", batch);
    printf("%-8s %14s %12s %12s %14s %14s %12s\n", "store", "writes/s", "get p50 us",
           "get p99 us", "absent p50 us", "absent p99 us", "bytes/order");
    for (int i = 0; i < 2; i++)
        printf("%-8s %14.0f %12.2f %12.2f %14.2f %14.2f %12.1f\n", names[i], r[i].put_per_s,
               r[i].get_p50_ns / 1e3, r[i].get_p99_ns / 1e3, r[i].miss_p50_ns / 1e3,
               r[i].miss_p99_ns / 1e3, (double)r[i].bytes / (double)n);
    return 0;
}
