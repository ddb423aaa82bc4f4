/* The order index in LMDB (see ordo_index.h). An entry is
 *   byte 0: format (1), byte 1: version v, then v positions, 8 bytes
 *   each, little-endian,
 * keyed by the order id's bytes. Each shard keeps one read transaction,
 * reset between lookups and renewed for the next (no allocation per read). */
#include "ordo_index.h"

#include "ordo_bloom.h"
#include "ordo_error.h"
#include "ordo_limits.h"
#include "ordo_log.h"
#include "ordo_registry.h"

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define S_FORMAT 1
#define S_MAP_BYTES (256ull << 30) /* address space only: the file grows as it fills */
#define S_FILTER_FIRST (1u << 20)  /* keys in a shard filter's first stage */
#define S_ENTRY_MAX (2 + 8 * ORDO_MAX_VERSION)

typedef struct {
    ordo_bloom_t filter;
    MDB_txn *read;    /* reset between lookups; NULL until the first */
    _Atomic uint64_t count; /* entries of this shard's orders: at open, and written since */
} s_shard_t;

struct ordo_index {
    MDB_env *env;
    MDB_dbi dbi;
    uint32_t nshards;
    _Atomic uint64_t count;
    char dir[4096];
    s_shard_t *shard; /* [nshards] */
    void *map;        /* where LMDB mapped data.mdb (NULL: not found) */
    size_t map_len;
};

/* Finds LMDB's mapping of `file` in /proc/self/maps (mdb_env_info names
 * the address only for a fixed map). */
static void s_find_map(ordo_index_t *ix, const char *file)
{
    char real[4096], line[4352];
    if (!realpath(file, real))
        return;
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f)
        return;
    size_t rl = strlen(real);
    while (fgets(line, sizeof line, f)) {
        size_t n = strlen(line);
        while (n && (line[n - 1] == '\n' || line[n - 1] == ' '))
            line[--n] = '\0';
        unsigned long lo, hi;
        if (n >= rl && strcmp(line + n - rl, real) == 0 && sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            ix->map = (void *)lo;
            ix->map_len = hi - lo;
            break;
        }
    }
    fclose(f);
}

static int s_fail(const ordo_index_t *ix, const char *what, int rc)
{
    ordo_log_error("index", "%s in %s: %s", what, ix->dir, mdb_strerror(rc));
    if (rc == ENOSPC || rc == MDB_MAP_FULL)
        return ORDO_ERR_NOSPACE;
    if (rc == ENOMEM)
        return ORDO_ERR_NOMEM;
    if (rc == MDB_CORRUPTED || rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
        return ORDO_ERR_CORRUPT;
    return ORDO_ERR_IO;
}

void ordo_index_destroy(ordo_index_t **ixp)
{
    if (!ixp || !*ixp)
        return;
    ordo_index_t *ix = *ixp;
    for (uint32_t i = 0; ix->shard && i < ix->nshards; i++) {
        if (ix->shard[i].read)
            mdb_txn_abort(ix->shard[i].read);
        ordo_bloom_free(&ix->shard[i].filter);
    }
    free(ix->shard);
    if (ix->env)
        mdb_env_close(ix->env);
    free(ix);
    *ixp = NULL;
}

/* Decodes a stored entry into *e, checking its format and length. 0, or
 * -1 if it does not decode. */
static int s_entry_decode(const MDB_val *v, ordo_index_entry_t *e)
{
    const unsigned char *p = v->mv_data;
    if (v->mv_size < 2 || p[0] != S_FORMAT || p[1] < 1 || p[1] > ORDO_MAX_VERSION ||
        v->mv_size != 2 + 8u * p[1])
        return -1;
    memset(e, 0, sizeof *e);
    e->version = p[1];
    for (uint32_t i = 0; i < e->version; i++) {
        uint64_t x = 0;
        for (int b = 7; b >= 0; b--)
            x = x << 8 | p[2 + 8 * i + (unsigned)b];
        e->positions[i] = x;
    }
    return 0;
}

/* The highest position an entry names, or 0 if it does not decode. */
static uint64_t s_last_position(const MDB_val *v)
{
    ordo_index_entry_t e;
    return s_entry_decode(v, &e) == 0 ? e.positions[e.version - 1] : 0;
}

/* Fills the shards' filters from every key and counts them, deleting the
 * entries that name a position past the log's head. */
static int s_load_filters(ordo_index_t *ix, uint64_t log_head)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
    if (rc != 0)
        return s_fail(ix, "cannot read the index", rc);
    if ((rc = mdb_cursor_open(txn, ix->dbi, &cur)) != 0) {
        mdb_txn_abort(txn);
        return s_fail(ix, "cannot read the index", rc);
    }
    MDB_val k, v;
    uint64_t n = 0, cut = 0;
    MDB_cursor_op op = MDB_FIRST;
    while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
        op = MDB_NEXT;
        if (s_last_position(&v) > log_head) {
            if ((rc = mdb_cursor_del(cur, 0)) != 0)
                break;
            cut++;
            continue;
        }
        uint64_t h = ordo_order_id_hash(k.mv_data, k.mv_size);
        s_shard_t *sh = &ix->shard[ordo_shard_of(h, ix->nshards)];
        ordo_bloom_add(&sh->filter, h);
        atomic_fetch_add_explicit(&sh->count, 1, memory_order_relaxed);
        n++;
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return s_fail(ix, "cannot read the index", rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return s_fail(ix, "cannot commit to the index", rc);
    if (cut)
        ordo_log_warn("index",
                      "%s: %llu orders named events past the log's head (position %llu), which "
                      "a crash or a repair took back; their entries are deleted, and the orders "
                      "come back from the snapshot and the log",
                      ix->dir, (unsigned long long)cut, (unsigned long long)log_head);
    atomic_store(&ix->count, n);
    return 0;
}

int ordo_index_open(const char *dir, uint32_t nshards, bool sync, uint64_t log_head,
                    ordo_index_t **out)
{
    *out = NULL;
    ordo_index_t *ix = calloc(1, sizeof *ix);
    bool bad = nshards == 0 || nshards > ORDO_SHARDS_MAX;
    if (!ix || bad || !(ix->shard = calloc(nshards, sizeof *ix->shard))) {
        free(ix);
        ordo_log_error("index", "cannot open the order index in %s: %s", dir,
                       bad ? "a shard count out of range" : "out of memory");
        return bad ? ORDO_ERR_INVALID : ORDO_ERR_NOMEM;
    }
    ix->nshards = nshards;
    snprintf(ix->dir, sizeof ix->dir, "%s", dir);
    for (uint32_t i = 0; i < nshards; i++)
        ordo_bloom_init(&ix->shard[i].filter, S_FILTER_FIRST / nshards);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        ordo_log_error("index", "cannot create %s: %s", dir, strerror(errno));
        ordo_index_destroy(&ix);
        return ORDO_ERR_IO;
    }
    int rc;
    MDB_txn *txn = NULL;
    unsigned flags = MDB_NOTLS | MDB_NORDAHEAD | (sync ? 0 : MDB_NOSYNC);
    if ((rc = mdb_env_create(&ix->env)) != 0 ||
        (rc = mdb_env_set_mapsize(ix->env, S_MAP_BYTES)) != 0 ||
        (rc = mdb_env_set_maxreaders(ix->env, nshards + 8)) != 0 ||
        (rc = mdb_env_open(ix->env, dir, flags, 0644)) != 0 ||
        (rc = mdb_txn_begin(ix->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &ix->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        if (txn && rc != 0)
            mdb_txn_abort(txn);
        int err = s_fail(ix, "cannot open the order index", rc);
        ordo_index_destroy(&ix);
        return err;
    }
    char file[4200];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    s_find_map(ix, file);
    if ((rc = s_load_filters(ix, log_head)) != 0) {
        ordo_index_destroy(&ix);
        return rc;
    }
    *out = ix;
    return 0;
}

int ordo_index_get(ordo_index_t *ix, uint32_t shard, ordo_str_t id, uint64_t hash,
                   ordo_index_entry_t *e)
{
    s_shard_t *sh = &ix->shard[shard];
    if (!ordo_bloom_maybe(&sh->filter, hash))
        return 0;
    int rc =
        sh->read ? mdb_txn_renew(sh->read) : mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &sh->read);
    if (rc != 0) {
        if (sh->read) {
            mdb_txn_abort(sh->read);
            sh->read = NULL;
        }
        return s_fail(ix, "cannot read the index", rc);
    }
    MDB_val k = {id.len, (void *)id.ptr}, v;
    rc = mdb_get(sh->read, ix->dbi, &k, &v);
    int found = 0;
    if (rc == 0) {
        found = s_entry_decode(&v, e) == 0 ? 1 : ORDO_ERR_CORRUPT;
        if (found < 0)
            ordo_log_error("index", "the entry of order %.*s in %s does not decode", (int)id.len,
                           id.ptr, ix->dir);
    } else if (rc != MDB_NOTFOUND) {
        found = s_fail(ix, "cannot read the index", rc);
    }
    mdb_txn_reset(sh->read);
    return found;
}

int ordo_index_pack(msgpack_sbuffer *buf, const ordo_order_t *o)
{
    /* in the batch: u8 id length, the id, then the entry as stored */
    unsigned char head[1 + ORDO_ORDER_ID_MAX], entry[S_ENTRY_MAX];
    head[0] = o->order_id_len;
    memcpy(head + 1, o->order_id, o->order_id_len);
    entry[0] = S_FORMAT;
    entry[1] = o->version;
    for (uint32_t v = 0; v < o->version; v++)
        for (int b = 0; b < 8; b++)
            entry[2 + 8 * v + (unsigned)b] = (unsigned char)(o->positions[v] >> (8 * b));
    return msgpack_sbuffer_write(buf, (const char *)head, 1u + o->order_id_len) != 0 ||
                   msgpack_sbuffer_write(buf, (const char *)entry, 2u + 8u * o->version) != 0
               ? -1
               : 0;
}

int ordo_index_write(ordo_index_t *ix, const char *buf, size_t len, uint32_t count)
{
    if (count == 0)
        return 0;
    MDB_txn *txn;
    int rc = mdb_txn_begin(ix->env, NULL, 0, &txn);
    if (rc != 0)
        return s_fail(ix, "cannot write the index", rc);
    uint64_t added = 0, per_shard[ORDO_SHARDS_MAX] = {0};
    size_t off = 0;
    for (uint32_t i = 0; i < count; i++) {
        /* packed by ordo_index_pack in this process: checked all the same */
        size_t id_len = off < len ? (unsigned char)buf[off] : 0;
        size_t at = off + 1 + id_len;
        size_t entry_len = at + 1 < len ? 2 + 8 * (size_t)(unsigned char)buf[at + 1] : 0;
        if (id_len == 0 || entry_len == 0 || at + entry_len > len) {
            mdb_txn_abort(txn);
            ordo_log_error("index", "a batch of index entries does not decode");
            return ORDO_ERR_INVALID;
        }
        MDB_val k = {id_len, (void *)(buf + off + 1)}, v = {entry_len, (void *)(buf + at)};
        off = at + entry_len;
        /* An order already there (left memory before, then came back)
         * gets this entry: its positions as the log has them now. */
        MDB_val mine = v; /* MDB_KEYEXIST points v at the entry there */
        rc = mdb_put(txn, ix->dbi, &k, &v, MDB_NOOVERWRITE);
        bool is_new = rc == 0;
        if (rc == MDB_KEYEXIST)
            rc = mdb_put(txn, ix->dbi, &k, &mine, 0);
        if (rc != 0) {
            mdb_txn_abort(txn);
            return s_fail(ix, "cannot write the index", rc);
        }
        if (is_new) {
            added++;
            per_shard[ordo_shard_of(ordo_order_id_hash(k.mv_data, k.mv_size), ix->nshards)]++;
        }
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        return s_fail(ix, "cannot commit to the index", rc);
    atomic_fetch_add(&ix->count, added);
    for (uint32_t s = 0; added && s < ix->nshards; s++)
        if (per_shard[s])
            atomic_fetch_add_explicit(&ix->shard[s].count, per_shard[s], memory_order_relaxed);
    return 0;
}

void ordo_index_note(ordo_index_t *ix, uint32_t shard, uint64_t hash)
{
    ordo_bloom_add(&ix->shard[shard].filter, hash);
}

int ordo_index_put(ordo_index_t *ix, uint32_t shard, const ordo_order_t *const *orders,
                   const uint64_t *hashes, size_t n)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = ordo_index_pack(&buf, orders[i]) == 0 ? 0 : ORDO_ERR_NOMEM;
    if (rc == 0)
        rc = ordo_index_write(ix, buf.data, buf.size, (uint32_t)n);
    msgpack_sbuffer_destroy(&buf);
    for (size_t i = 0; i < n && rc == 0; i++)
        ordo_index_note(ix, shard, hashes[i]);
    return rc;
}

void ordo_index_unmap_pages(ordo_index_t *ix)
{
    MDB_envinfo info;
    MDB_stat st;
    if (!ix->map || mdb_env_info(ix->env, &info) != 0 || mdb_env_stat(ix->env, &st) != 0)
        return;
    size_t used = ((size_t)info.me_last_pgno + 1) * st.ms_psize;
    if (used > ix->map_len)
        used = ix->map_len;
    /* A shared read-only mapping of the file (LMDB writes with pwrite):
     * dropping its page table entries loses nothing. */
    madvise(ix->map, used, MADV_DONTNEED);
}

uint64_t ordo_index_shard_count(const ordo_index_t *ix, uint32_t shard)
{
    return atomic_load_explicit(&ix->shard[shard].count, memory_order_relaxed);
}

uint64_t ordo_index_count(const ordo_index_t *ix)
{
    return atomic_load(&((ordo_index_t *)ix)->count);
}

size_t ordo_index_filter_bytes(const ordo_index_t *ix, uint32_t shard)
{
    return ordo_bloom_bytes(&ix->shard[shard].filter);
}

int ordo_index_info(const char *dir, ordo_index_info_t *out, char *err, size_t errsize)
{
    *out = (ordo_index_info_t){0};
    char file[4200];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    struct stat st;
    if (stat(file, &st) != 0) {
        int e = errno;
        snprintf(err, errsize, "%s: %s", file, strerror(e));
        return e == ENOENT ? ORDO_ERR_NOT_FOUND : ORDO_ERR_IO;
    }
    out->file_bytes = (uint64_t)st.st_size;
    /* Beside a running engine, as one more reader in its lock file's
     * table. Without a lock file no process has the index open: read it
     * without one, so that nothing is created in the folder. */
    snprintf(file, sizeof file, "%s/lock.mdb", dir);
    unsigned flags = MDB_RDONLY | MDB_NOTLS | (stat(file, &st) != 0 ? MDB_NOLOCK : 0);
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_stat ms;
    MDB_envinfo info;
    int rc;
    if ((rc = mdb_env_create(&env)) != 0 || (rc = mdb_env_set_mapsize(env, S_MAP_BYTES)) != 0 ||
        (rc = mdb_env_open(env, dir, flags, 0644)) != 0 ||
        (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0 || (rc = mdb_stat(txn, dbi, &ms)) != 0 ||
        (rc = mdb_env_info(env, &info)) != 0) {
        snprintf(err, errsize, "cannot read the order index in %s: %s", dir, mdb_strerror(rc));
        if (txn)
            mdb_txn_abort(txn);
        mdb_env_close(env);
        return ORDO_ERR_IO;
    }
    out->orders = ms.ms_entries;
    out->used_bytes = ((uint64_t)info.me_last_pgno + 1) * ms.ms_psize;
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return 0;
}
