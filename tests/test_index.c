/* Tests for index/: the Bloom filter (no false negatives, ~1% false
 * positives, growth through stages) and the order index in LMDB (entries
 * written and read back, kept across a reopen with the filters rebuilt,
 * an order written twice counted once, a damaged entry refused). */
#include "ordo_bloom.h"
#include "ordo_error.h"
#include "ordo_hash.h"
#include "ordo_index.h"
#include "ordo_registry.h"
#include "ordo_test.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_bloom(void)
{
    ordo_bloom_t b;
    ordo_bloom_init(&b, 1024);
    enum { N = 100000 };
    CU_ASSERT_FALSE(ordo_bloom_maybe(&b, 42)); /* empty: nothing is maybe */
    for (uint64_t i = 0; i < N; i++)
        CU_ASSERT_EQUAL_FATAL(ordo_bloom_add(&b, ordo_hash_mix(i)), 0);
    CU_ASSERT(b.stages >= 6); /* 1024, 2048, ... grew past 100,000 */
    for (uint64_t i = 0; i < N; i++)
        CU_ASSERT_TRUE_FATAL(ordo_bloom_maybe(&b, ordo_hash_mix(i)));
    size_t fp = 0;
    for (uint64_t i = N; i < 2 * N; i++)
        fp += ordo_bloom_maybe(&b, ordo_hash_mix(i));
    /* every stage is probed; their rates shrink so the sum stays ~1.5% */
    printf("  false positives: %zu of %d (%zu stages, %zu bytes)\n", fp, N, b.stages,
           ordo_bloom_bytes(&b));
    CU_ASSERT(fp < N * 3 / 100);
    ordo_bloom_free(&b);
    CU_ASSERT_EQUAL(b.stages, 0);
}

static ordo_order_t s_order(int i, uint32_t version)
{
    ordo_order_t o;
    memset(&o, 0, sizeof o);
    o.order_id_len = (uint8_t)snprintf(o.order_id, sizeof o.order_id, "ix-%06d", i);
    o.version = (uint8_t)version;
    for (uint32_t v = 0; v < version; v++)
        o.positions[v] = (uint64_t)i * 10 + v + (1ull << 40); /* needs more than 4 bytes */
    return o;
}

static uint32_t s_shard(const ordo_order_t *o, uint32_t n)
{
    return (uint32_t)ordo_shard_of(ordo_order_id_hash(o->order_id, o->order_id_len), n);
}

/* Writes orders 0..n-1 into the index, each through its shard. */
static void s_put_all(ordo_index_t *ix, int n, uint32_t shards)
{
    for (int i = 0; i < n; i++) {
        ordo_order_t o = s_order(i, 1 + (uint32_t)i % ORDO_MAX_VERSION);
        const ordo_order_t *list[] = {&o};
        uint64_t h = ordo_order_id_hash(o.order_id, o.order_id_len);
        CU_ASSERT_EQUAL_FATAL(ordo_index_put(ix, s_shard(&o, shards), list, &h, 1), 0);
    }
}

static void s_check_all(ordo_index_t *ix, int n, uint32_t shards)
{
    for (int i = 0; i < n; i++) {
        ordo_order_t o = s_order(i, 1 + (uint32_t)i % ORDO_MAX_VERSION);
        ordo_index_entry_t e;
        int rc = ordo_index_get(ix, s_shard(&o, shards), (ordo_str_t){o.order_id, o.order_id_len},
                                ordo_order_id_hash(o.order_id, o.order_id_len), &e);
        CU_ASSERT_EQUAL_FATAL(rc, 1);
        CU_ASSERT_EQUAL(e.version, o.version);
        CU_ASSERT_EQUAL(memcmp(e.positions, o.positions, sizeof e.positions), 0);
    }
}

static void test_index_put_get_reopen(void)
{
    char dir[128];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    char path[256];
    snprintf(path, sizeof path, "%s/index", dir);
    ordo_index_t *ix = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 2, true, UINT64_MAX, &ix), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 0);
    s_put_all(ix, 3000, 2);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 3000);
    s_check_all(ix, 3000, 2);
    /* a batch holding orders already there: written once, counted once */
    ordo_order_t a = s_order(5, 1 + 5 % ORDO_MAX_VERSION), b = s_order(5000, 2);
    const ordo_order_t *list[] = {&a, &b};
    uint64_t hashes[] = {ordo_order_id_hash(a.order_id, a.order_id_len),
                         ordo_order_id_hash(b.order_id, b.order_id_len)};
    CU_ASSERT_EQUAL(ordo_index_put(ix, 0, list, hashes, 2), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 3001);
    /* absent ids: 0 */
    ordo_index_entry_t e;
    int absent = 0;
    for (int i = 0; i < 1000; i++) {
        char id[32];
        int len = snprintf(id, sizeof id, "never-%d", i);
        uint64_t h = ordo_order_id_hash(id, (size_t)len);
        absent += ordo_index_get(ix, (uint32_t)ordo_shard_of(h, 2), (ordo_str_t){id, (uint32_t)len},
                                 h, &e) == 0;
    }
    CU_ASSERT_EQUAL(absent, 1000);
    CU_ASSERT(ordo_index_filter_bytes(ix, 0) > 0);
    ordo_index_destroy(&ix);
    CU_ASSERT_PTR_NULL(ix);

    /* reopened with another number of shards: the filters are rebuilt
     * from the keys, and every entry is found through its new shard */
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 3, true, UINT64_MAX, &ix), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 3001);
    s_check_all(ix, 3000, 3);
    ordo_index_destroy(&ix);
    ordo_test_rm_rf(dir);
}

/* A crash took back the log's tail: at open, entries naming a position
 * past the log's head are deleted (their orders come back from the log),
 * the rest stay. An order written again gets its new positions. */
static void test_index_cut_and_rewrite(void)
{
    char dir[128], path[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/index", dir);
    ordo_index_t *ix = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 2, false, UINT64_MAX, &ix), 0);
    s_put_all(ix, 3000, 2);
    ordo_index_destroy(&ix);
    /* order i's last event is at 2^40 + 10 i + version - 1 */
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 2, false, (1ull << 40) + 10000, &ix), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 1000);
    s_check_all(ix, 1000, 2);
    ordo_order_t o = s_order(1500, 2);
    ordo_index_entry_t e;
    uint64_t h = ordo_order_id_hash(o.order_id, o.order_id_len);
    CU_ASSERT_EQUAL(ordo_index_get(ix, s_shard(&o, 2), (ordo_str_t){o.order_id, o.order_id_len}, h,
                                   &e), 0);
    /* written again with other positions: the new ones count, once */
    o = s_order(7, 3);
    o.positions[2] = 42;
    const ordo_order_t *list[] = {&o};
    h = ordo_order_id_hash(o.order_id, o.order_id_len);
    CU_ASSERT_EQUAL(ordo_index_put(ix, s_shard(&o, 2), list, &h, 1), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 1000);
    CU_ASSERT_EQUAL(ordo_index_get(ix, s_shard(&o, 2), (ordo_str_t){o.order_id, o.order_id_len}, h,
                                   &e), 1);
    CU_ASSERT_EQUAL(e.version, 3);
    CU_ASSERT_EQUAL(e.positions[2], 42);
    ordo_index_destroy(&ix);
    ordo_test_rm_rf(dir);
}

static long s_rss_file_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "RssFile: %ld", &kib) == 1)
            break;
    if (f)
        fclose(f);
    return kib;
}

/* The index's pages leave the process's resident memory and come back on
 * the next read, with the same entries. */
static void test_index_unmap_pages(void)
{
    char dir[128], path[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/index", dir);
    ordo_index_t *ix = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 1, false, UINT64_MAX, &ix), 0);
    s_put_all(ix, 100000, 1);
    s_check_all(ix, 100000, 1); /* every page read once: mapped */
    long before = s_rss_file_kib();
    ordo_index_unmap_pages(ix);
    long after = s_rss_file_kib();
    printf("  RssFile %ld KiB -> %ld KiB\n", before, after);
    CU_ASSERT(before > 0 && after >= 0 && after + 2048 < before); /* 100,000 entries: MBs */
    s_check_all(ix, 100000, 1);
    ordo_index_destroy(&ix);
    ordo_test_rm_rf(dir);
}

static void test_index_damaged_entry(void)
{
    char dir[128], path[256];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    snprintf(path, sizeof path, "%s/index", dir);
    /* an entry as another program (or a bad disk) might leave it */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    ordo_index_t *ix = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 1, true, UINT64_MAX, &ix), 0);
    ordo_index_destroy(&ix);
    CU_ASSERT_EQUAL_FATAL(mdb_env_create(&env), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_env_open(env, path, 0, 0644), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_txn_begin(env, NULL, 0, &txn), 0);
    CU_ASSERT_EQUAL_FATAL(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    const char *bad[] = {"", "\x01", "\x02\x01xxxxxxxx", "\x01\x07", "\x01\x02short"};
    size_t lens[] = {0, 1, 10, 2, 7};
    for (int i = 0; i < 5; i++) {
        char id[16];
        snprintf(id, sizeof id, "bad-%d", i);
        MDB_val k = {strlen(id), id}, v = {lens[i], (void *)bad[i]};
        CU_ASSERT_EQUAL_FATAL(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    CU_ASSERT_EQUAL_FATAL(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    CU_ASSERT_EQUAL_FATAL(ordo_index_open(path, 1, true, UINT64_MAX, &ix), 0);
    CU_ASSERT_EQUAL(ordo_index_count(ix), 5);
    for (int i = 0; i < 5; i++) {
        char id[16];
        int len = snprintf(id, sizeof id, "bad-%d", i);
        ordo_index_entry_t e;
        CU_ASSERT_EQUAL(ordo_index_get(ix, 0, (ordo_str_t){id, (uint32_t)len},
                                       ordo_order_id_hash(id, (size_t)len), &e),
                        ORDO_ERR_CORRUPT);
    }
    ordo_index_destroy(&ix);
    ordo_test_rm_rf(dir);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("index", NULL, NULL);
    CU_add_test(s, "Bloom filter: no false negatives, few false positives, growth", test_bloom);
    CU_add_test(s, "index: put, get, count once, reopen with other shards",
                test_index_put_get_reopen);
    CU_add_test(s, "index: damaged entries refused", test_index_damaged_entry);
    CU_add_test(s, "index: entries past the log's head cut at open; rewrites",
                test_index_cut_and_rewrite);
    CU_add_test(s, "index: its pages leave resident memory", test_index_unmap_pages);
    return ordo_test_run();
}
