/* Tests for projections/ordo_model_analytics: counts, revenue and
 * cancellations per bucket, stage percentiles (exact below 256 ms, within
 * 1% above, against a sorted reference), UTC alignment of minute / hour /
 * day buckets before and after 1970, empty buckets, the restaurant filter,
 * a restart (clean or after a crash with uncommitted flushes) ending in the
 * same rows as a run without one, corrupt blobs and rows refused without a
 * crash, and memory: finished orders leave RAM. Prints the apply rate. */
#include "ordo_crc32c.h"
#include "ordo_model.h"
#include "ordo_pstore.h"
#include "ordo_test.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* the model's test hook (ordo_model_analytics.c) */
extern void ordo_model_analytics_footprint(const void *state, size_t *orders, size_t *cells,
                                           size_t *pending);

#define MIN_US 60000000LL
#define HOUR_US (60 * MIN_US)
#define DAY_US (24 * HOUR_US)
#define BASE_US (19675 * DAY_US + 5 * HOUR_US) /* 2023-11-14 05:00 UTC */

static const ordo_model_ops_t *M = &ordo_model_analytics;

/* ---- a model on a fresh database ---------------------------------------- */

typedef struct {
    char dir[128];
    char path[256];
    sqlite3 *db;
    void *model;
    uint64_t position;
} env_t;

static void env_open_model(env_t *e)
{
    e->db = ordo_pstore_open(e->path, 4096);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->db);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(e->db), 0);
    e->model = M->open(e->db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(e->model);
}

static void env_init(env_t *e)
{
    memset(e, 0, sizeof *e);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(e->dir, sizeof e->dir));
    snprintf(e->path, sizeof e->path, "%s/analytics.1.db", e->dir);
    env_open_model(e);
}

/* Closes the model and the database; commit or roll back first. */
static void env_close(env_t *e, bool commit)
{
    M->close(&e->model);
    CU_ASSERT_PTR_NULL(e->model);
    if (commit) {
        CU_ASSERT_EQUAL(ordo_pstore_commit(e->db), 0);
    } else {
        ordo_pstore_rollback(e->db);
    }
    ordo_pstore_close(&e->db);
}

static void env_done(env_t *e)
{
    if (e->model)
        M->close(&e->model);
    if (e->db) {
        ordo_pstore_rollback(e->db);
        ordo_pstore_close(&e->db);
    }
    ordo_test_rm_rf(e->dir);
}

static int ev_apply(env_t *e, const char *id, uint32_t version, ordo_event_type_t t, int64_t ts,
                    int64_t restaurant, int64_t total, const char *prev)
{
    ordo_client_event_t ev = {0};
    ev.position = ++e->position;
    ev.order_id = id;
    ev.version = version;
    ev.type = ordo_event_type_name(t);
    ev.timestamp_us = ts;
    ev.schema = 1;
    if (t == ORDO_EVT_ORDER_CREATED || t == ORDO_EVT_ORDER_CONFIRMED)
        ev.restaurant_id = restaurant;
    if (t == ORDO_EVT_ORDER_CREATED)
        ev.total_cents = total;
    if (t == ORDO_EVT_ORDER_CANCELLED) {
        ev.previous_status = prev;
        ev.reason = "test";
    }
    return M->apply(e->model, &ev);
}

/* ---- queries and their replies -------------------------------------------- */

typedef struct {
    msgpack_sbuffer buf;
    msgpack_unpacked up;
    const msgpack_object *buckets; /* the array */
    ordo_perror_t err;
    int rc;
} reply_t;

static void reply_free(reply_t *r)
{
    msgpack_unpacked_destroy(&r->up);
    msgpack_sbuffer_destroy(&r->buf);
}

static const msgpack_object *obj_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen(key) &&
            memcmp(kv->key.via.str.ptr, key, strlen(key)) == 0)
            return &kv->val;
    }
    return NULL;
}

/* An integer value, or INT64_MIN when absent or not an integer. */
static int64_t obj_int(const msgpack_object *o)
{
    if (!o)
        return INT64_MIN;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return INT64_MIN;
}

static int64_t get_int(const msgpack_object *map, const char *key)
{
    return obj_int(obj_get(map, key));
}

/* Runs an Analytics query; with rc == 1, r->buckets is the array. The
 * model packs only its keys, so a one-entry map header goes first. */
static void query(env_t *e, int64_t from, int64_t to, int64_t bucket, bool has_r, int64_t rid,
                  reply_t *r)
{
    memset(r, 0, sizeof *r);
    msgpack_sbuffer_init(&r->buf);
    msgpack_unpacked_init(&r->up);
    CU_ASSERT_EQUAL_FATAL(M->flush(e->model), 0);
    ordo_pquery_t q = {0};
    q.type = ORDO_PQ_ANALYTICS;
    q.from_us = from;
    q.to_us = to;
    q.bucket_us = bucket;
    q.has_restaurant_id = has_r;
    q.restaurant_id = rid;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &r->buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    r->rc = M->query(e->model, &q, &pk, &r->err);
    if (r->rc != 1)
        return;
    size_t off = 0;
    CU_ASSERT_EQUAL_FATAL(msgpack_unpack_next(&r->up, r->buf.data, r->buf.size, &off),
                          MSGPACK_UNPACK_SUCCESS);
    CU_ASSERT_EQUAL(off, r->buf.size);
    r->buckets = obj_get(&r->up.data, "buckets");
    CU_ASSERT_PTR_NOT_NULL_FATAL(r->buckets);
    CU_ASSERT_EQUAL_FATAL(r->buckets->type, MSGPACK_OBJECT_ARRAY);
}

static const msgpack_object *bucket_at(const reply_t *r, uint32_t i)
{
    CU_ASSERT_FATAL(i < r->buckets->via.array.size);
    return &r->buckets->via.array.ptr[i];
}

static int64_t created_at(const reply_t *r, uint32_t i)
{
    return get_int(bucket_at(r, i), "created");
}

static const msgpack_object *stage(const msgpack_object *bk, const char *name)
{
    return obj_get(obj_get(bk, "stages"), name);
}

static bool near(int64_t got, int64_t exact)
{
    int64_t tol = exact / 100 > 1 ? exact / 100 : 1;
    return got >= exact - tol && got <= exact + tol;
}

/* Every bucket has exactly the 8 keys, cancelled_from its 3. */
static void check_shape(const reply_t *r)
{
    for (uint32_t i = 0; i < r->buckets->via.array.size; i++) {
        const msgpack_object *bk = bucket_at(r, i);
        CU_ASSERT_EQUAL(bk->type, MSGPACK_OBJECT_MAP);
        CU_ASSERT_EQUAL(bk->via.map.size, 8);
        const msgpack_object *cf = obj_get(bk, "cancelled_from");
        CU_ASSERT_PTR_NOT_NULL_FATAL(cf);
        CU_ASSERT_EQUAL(cf->via.map.size, 3);
        CU_ASSERT(get_int(cf, "Created") >= 0 && get_int(cf, "Confirmed") >= 0 &&
                  get_int(cf, "Preparing") >= 0);
        const msgpack_object *st = obj_get(bk, "stages");
        CU_ASSERT_PTR_NOT_NULL_FATAL(st);
        CU_ASSERT_EQUAL(st->type, MSGPACK_OBJECT_MAP);
        for (uint32_t k = 0; k < st->via.map.size; k++)
            CU_ASSERT(get_int(&st->via.map.ptr[k].val, "n") > 0);
    }
}

/* ---- counts, revenue, cancellations, small exact percentiles ------------ */

static void test_counts(void)
{
    env_t e;
    env_init(&e);
    int64_t t = BASE_US;
    /* o1 at restaurant 7: the whole way, 100 ms to confirm */
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 1, ORDO_EVT_ORDER_CREATED, t, 7, 1000, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o2", 1, ORDO_EVT_ORDER_CREATED, t + 1000, 7, 500, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o3", 1, ORDO_EVT_ORDER_CREATED, t + 2000, 8, 700, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o4", 1, ORDO_EVT_ORDER_CREATED, t + 3000, 8, 900, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 2, ORDO_EVT_ORDER_CONFIRMED, t + 100000, 7, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o2", 2, ORDO_EVT_ORDER_CANCELLED, t + 101000, 0, 0, "Created"),
                    0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o4", 2, ORDO_EVT_ORDER_CONFIRMED, t + 3000 + 150999, 8, 0, NULL),
                    0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o3", 2, ORDO_EVT_ORDER_CONFIRMED, t + 202000, 8, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 3, ORDO_EVT_ORDER_PREPARING, t + 1100000, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o4", 3, ORDO_EVT_ORDER_PREPARING, t + 1156999, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o3", 3, ORDO_EVT_ORDER_CANCELLED, t + 2000000, 0, 0, "Confirmed"),
                    0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o4", 4, ORDO_EVT_ORDER_CANCELLED, t + 2100000, 0, 0, "Preparing"),
                    0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 4, ORDO_EVT_ORDER_READY, t + 11100000, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(
        ev_apply(&e, "o1", 5, ORDO_EVT_ORDER_OUT_FOR_DELIVERY, t + 16100000, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 6, ORDO_EVT_ORDER_DELIVERED, t + 36100000, 0, 0, NULL), 0);
    /* not counted: an order never seen created, an unknown type, an event
     * of a finished order, an event that does not follow */
    CU_ASSERT_EQUAL(ev_apply(&e, "ghost", 2, ORDO_EVT_ORDER_CONFIRMED, t + 5000, 7, 0, NULL), 0);
    ordo_client_event_t odd = {.position = ++e.position,
                               .order_id = "o1",
                               .version = 7,
                               .type = "OrderTeleported",
                               .timestamp_us = t + 40000000};
    CU_ASSERT_EQUAL(M->apply(e.model, &odd), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o1", 7, ORDO_EVT_ORDER_DELIVERED, t + 40000000, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o5", 1, ORDO_EVT_ORDER_CREATED, t + 41000000, 9, 1, NULL), 0);
    CU_ASSERT_EQUAL(ev_apply(&e, "o5", 2, ORDO_EVT_ORDER_READY, t + 42000000, 0, 0, NULL), 0);

    reply_t r;
    query(&e, t, t + MIN_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 1);
    check_shape(&r);
    const msgpack_object *bk = bucket_at(&r, 0);
    CU_ASSERT_EQUAL(get_int(bk, "start_us"), t);
    CU_ASSERT_EQUAL(get_int(bk, "created"), 5);
    CU_ASSERT_EQUAL(get_int(bk, "confirmed"), 3);
    CU_ASSERT_EQUAL(get_int(bk, "delivered"), 1);
    CU_ASSERT_EQUAL(get_int(bk, "cancelled"), 3);
    CU_ASSERT_EQUAL(get_int(bk, "revenue_cents"), 1000);
    const msgpack_object *cf = obj_get(bk, "cancelled_from");
    CU_ASSERT_EQUAL(get_int(cf, "Created"), 1);
    CU_ASSERT_EQUAL(get_int(cf, "Confirmed"), 1);
    CU_ASSERT_EQUAL(get_int(cf, "Preparing"), 1);
    /* confirm: 100, 150 (150.999 rounds down), 200 ms */
    const msgpack_object *c = stage(bk, "confirm");
    CU_ASSERT_EQUAL(get_int(c, "n"), 3);
    CU_ASSERT_EQUAL(get_int(c, "p50_ms"), 150);
    CU_ASSERT_EQUAL(get_int(c, "p95_ms"), 200);
    CU_ASSERT_EQUAL(get_int(c, "max_ms"), 200);
    CU_ASSERT_EQUAL(obj_get(bk, "stages")->via.map.size, 6);
    /* start: 1000 ms (o1) and 1003 ms (o4) */
    c = stage(bk, "start");
    CU_ASSERT_EQUAL(get_int(c, "n"), 2);
    CU_ASSERT(near(get_int(c, "p50_ms"), 1000));
    CU_ASSERT(near(get_int(c, "p95_ms"), 1003));
    CU_ASSERT_EQUAL(get_int(c, "max_ms"), 1003);
    CU_ASSERT_EQUAL(get_int(stage(bk, "prepare"), "max_ms"), 10000);
    CU_ASSERT_EQUAL(get_int(stage(bk, "pickup"), "max_ms"), 5000);
    CU_ASSERT_EQUAL(get_int(stage(bk, "deliver"), "max_ms"), 20000);
    CU_ASSERT_EQUAL(get_int(stage(bk, "total"), "n"), 1);
    CU_ASSERT_EQUAL(get_int(stage(bk, "total"), "max_ms"), 36100);
    CU_ASSERT(near(get_int(stage(bk, "total"), "p95_ms"), 36100));
    CU_ASSERT_EQUAL(get_int(stage(bk, "deliver"), "n"), 1);
    reply_free(&r);

    /* the restaurant filter */
    query(&e, t, t + MIN_US, MIN_US, true, 7, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    bk = bucket_at(&r, 0);
    CU_ASSERT_EQUAL(get_int(bk, "created"), 2);
    CU_ASSERT_EQUAL(get_int(bk, "confirmed"), 1);
    CU_ASSERT_EQUAL(get_int(bk, "delivered"), 1);
    CU_ASSERT_EQUAL(get_int(bk, "cancelled"), 1);
    CU_ASSERT_EQUAL(get_int(bk, "revenue_cents"), 1000);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Created"), 1);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Confirmed"), 0);
    CU_ASSERT_EQUAL(get_int(stage(bk, "confirm"), "n"), 1);
    CU_ASSERT_EQUAL(get_int(stage(bk, "confirm"), "p50_ms"), 100);
    reply_free(&r);
    query(&e, t, t + MIN_US, MIN_US, true, 8, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    bk = bucket_at(&r, 0);
    CU_ASSERT_EQUAL(get_int(bk, "created"), 2);
    CU_ASSERT_EQUAL(get_int(bk, "confirmed"), 2);
    CU_ASSERT_EQUAL(get_int(bk, "delivered"), 0);
    CU_ASSERT_EQUAL(get_int(bk, "cancelled"), 2);
    CU_ASSERT_EQUAL(get_int(bk, "revenue_cents"), 0);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Confirmed"), 1);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Preparing"), 1);
    CU_ASSERT_EQUAL(get_int(stage(bk, "confirm"), "p50_ms"), 150);
    CU_ASSERT_EQUAL(get_int(stage(bk, "confirm"), "p95_ms"), 200);
    CU_ASSERT_PTR_NULL(stage(bk, "total"));
    reply_free(&r);
    /* a restaurant with no orders, and an impossible id: all zeros */
    int64_t nobody[] = {42, -5};
    for (int i = 0; i < 2; i++) {
        query(&e, t, t + MIN_US, MIN_US, true, nobody[i], &r);
        CU_ASSERT_EQUAL_FATAL(r.rc, 1);
        check_shape(&r);
        bk = bucket_at(&r, 0);
        CU_ASSERT_EQUAL(get_int(bk, "created"), 0);
        CU_ASSERT_EQUAL(get_int(bk, "revenue_cents"), 0);
        CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Created"), 0);
        CU_ASSERT_EQUAL(obj_get(bk, "stages")->via.map.size, 0);
        reply_free(&r);
    }
    /* a query type this model does not serve */
    ordo_pquery_t q = {.type = ORDO_PQ_LIST_ORDERS};
    ordo_perror_t err = {0};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    CU_ASSERT_EQUAL(M->query(e.model, &q, &pk, &err), -1);
    CU_ASSERT_STRING_EQUAL(err.code, "bad_request");
    msgpack_sbuffer_destroy(&sb);
    env_done(&e);
}

/* ---- percentiles through the histogram ---------------------------------- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static int64_t nearest_rank(const int64_t *sorted, size_t n, int p)
{
    size_t rank = (size_t)((p * (uint64_t)n + 99) / 100);
    return sorted[rank - 1];
}

/* 1000 confirm durations 1000 + 37 k ms (k = 0..999, shuffled), each plus
 * 123 µs, created over one hour: p50 19463, p95 36113, max 37963. */
static void test_histogram_1000(void)
{
    env_t e;
    env_init(&e);
    char id[32];
    int64_t created[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(id, sizeof id, "h%04d", i);
        created[i] = BASE_US + (int64_t)i * 3500000;
        CU_ASSERT_EQUAL(ev_apply(&e, id, 1, ORDO_EVT_ORDER_CREATED, created[i], 3, 100, NULL), 0);
    }
    for (int i = 0; i < 1000; i++) {
        int k = (i * 389) % 1000;
        snprintf(id, sizeof id, "h%04d", i);
        int64_t d = (1000 + 37LL * k) * 1000 + 123;
        CU_ASSERT_EQUAL(ev_apply(&e, id, 2, ORDO_EVT_ORDER_CONFIRMED, created[i] + d, 3, 0, NULL),
                        0);
    }
    reply_t r;
    const int64_t buckets[] = {HOUR_US, DAY_US};
    for (int b = 0; b < 2; b++) {
        for (int filt = 0; filt < 2; filt++) {
            int64_t from = BASE_US - BASE_US % buckets[b];
            query(&e, from, from + 2 * buckets[b], buckets[b], filt, 3, &r);
            CU_ASSERT_EQUAL_FATAL(r.rc, 1);
            check_shape(&r);
            int64_t n = 0;
            for (uint32_t i = 0; i < r.buckets->via.array.size; i++) {
                const msgpack_object *c = stage(bucket_at(&r, i), "confirm");
                if (!c)
                    continue;
                n += get_int(c, "n");
                CU_ASSERT_EQUAL(get_int(c, "n"), 1000);
                CU_ASSERT(near(get_int(c, "p50_ms"), 19463));
                CU_ASSERT(near(get_int(c, "p95_ms"), 36113));
                /* bin lower bounds: never above the truth */
                CU_ASSERT(get_int(c, "p50_ms") <= 19463 && get_int(c, "p95_ms") <= 36113);
                CU_ASSERT_EQUAL(get_int(c, "max_ms"), 37963);
            }
            CU_ASSERT_EQUAL(n, 1000);
            reply_free(&r);
        }
    }
    /* minute buckets: the samples add up to 1000 */
    query(&e, BASE_US, BASE_US + 2 * HOUR_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL(r.buckets->via.array.size, 120);
    int64_t n = 0, created_n = 0;
    for (uint32_t i = 0; i < r.buckets->via.array.size; i++) {
        const msgpack_object *c = stage(bucket_at(&r, i), "confirm");
        n += c ? get_int(c, "n") : 0;
        created_n += get_int(bucket_at(&r, i), "created");
    }
    CU_ASSERT_EQUAL(n, 1000);
    CU_ASSERT_EQUAL(created_n, 1000);
    reply_free(&r);
    env_done(&e);
}

/* Random durations from 0 ms to ~3 hours (log-uniform), in one minute:
 * every stage's p50 / p95 within 1% (at least 1 ms) of the sorted truth,
 * n and max exact. */
static void test_histogram_random(void)
{
    env_t e;
    env_init(&e);
    enum { N = 4000 };
    static int64_t d[ORDO_STATUS_COUNT_][N];
    uint64_t x = 88172645463325252ull;
    char id[32];
    const ordo_event_type_t path[] = {ORDO_EVT_ORDER_CREATED,          ORDO_EVT_ORDER_CONFIRMED,
                                      ORDO_EVT_ORDER_PREPARING,        ORDO_EVT_ORDER_READY,
                                      ORDO_EVT_ORDER_OUT_FOR_DELIVERY, ORDO_EVT_ORDER_DELIVERED};
    /* every order starts at BASE_US and steps on by random durations */
    int64_t total[N];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "r%05d", i);
        int64_t ts = BASE_US;
        CU_ASSERT_EQUAL(ev_apply(&e, id, 1, path[0], ts, 11, 5, NULL), 0);
        for (int s = 1; s < 6; s++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int bits = (int)(x % 34); /* up to 2^33 µs: ~2.4 hours */
            int64_t us = (int64_t)((x >> 8) & ((1ull << bits) - 1));
            d[s][i] = us / 1000;
            ts += us;
            CU_ASSERT_EQUAL(ev_apply(&e, id, (uint32_t)s + 1, path[s], ts, 11, 0, NULL), 0);
        }
        total[i] = (ts - BASE_US) / 1000;
    }
    static const char *const names[] = {"",       "confirm", "start", "prepare",
                                        "pickup", "deliver", "total"};
    reply_t r;
    /* everything ends the day it started: 05:00 + at most 5 x 2.4 hours */
    int64_t day0 = BASE_US - BASE_US % DAY_US;
    query(&e, day0, day0 + DAY_US, DAY_US, true, 11, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 1);
    CU_ASSERT_EQUAL(created_at(&r, 0), N);
    for (int s = 1; s <= 6; s++) {
        int64_t *v = s == 6 ? total : d[s];
        qsort(v, N, sizeof *v, cmp_i64);
        const msgpack_object *c = stage(bucket_at(&r, 0), names[s]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(c);
        CU_ASSERT_EQUAL(get_int(c, "n"), N);
        CU_ASSERT_EQUAL(get_int(c, "max_ms"), v[N - 1]);
        CU_ASSERT(near(get_int(c, "p50_ms"), nearest_rank(v, N, 50)));
        CU_ASSERT(near(get_int(c, "p95_ms"), nearest_rank(v, N, 95)));
        CU_ASSERT(get_int(c, "p95_ms") <= nearest_rank(v, N, 95));
    }
    reply_free(&r);
    env_done(&e);
}

/* ---- UTC alignment ------------------------------------------------------ */

static void test_alignment(void)
{
    env_t e;
    env_init(&e);
    const int64_t ts[] = {-DAY_US, -1, 0, MIN_US - 1, MIN_US, DAY_US - 1};
    char id[32];
    for (int i = 0; i < 6; i++) {
        snprintf(id, sizeof id, "a%d", i);
        CU_ASSERT_EQUAL(ev_apply(&e, id, 1, ORDO_EVT_ORDER_CREATED, ts[i], 1, 10, NULL), 0);
    }
    reply_t r;
    /* minutes around the epoch */
    query(&e, -2 * MIN_US, 2 * MIN_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 4);
    check_shape(&r);
    const int64_t want_min[] = {0, 1, 2, 1};
    for (uint32_t i = 0; i < 4; i++) {
        CU_ASSERT_EQUAL(get_int(bucket_at(&r, i), "start_us"), ((int64_t)i - 2) * MIN_US);
        CU_ASSERT_EQUAL(created_at(&r, i), want_min[i]);
    }
    /* an empty bucket: zeros, the three cancelled_from keys, stages {} */
    const msgpack_object *bk = bucket_at(&r, 0);
    CU_ASSERT_EQUAL(get_int(bk, "confirmed"), 0);
    CU_ASSERT_EQUAL(get_int(bk, "delivered"), 0);
    CU_ASSERT_EQUAL(get_int(bk, "cancelled"), 0);
    CU_ASSERT_EQUAL(get_int(bk, "revenue_cents"), 0);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Created"), 0);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Confirmed"), 0);
    CU_ASSERT_EQUAL(get_int(obj_get(bk, "cancelled_from"), "Preparing"), 0);
    CU_ASSERT_EQUAL(obj_get(bk, "stages")->via.map.size, 0);
    reply_free(&r);
    /* an unaligned from: the first bucket is the next aligned start */
    query(&e, -2 * MIN_US + 1, 2 * MIN_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 3);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 0), "start_us"), -MIN_US);
    CU_ASSERT_EQUAL(created_at(&r, 0), 1);
    reply_free(&r);
    /* to is exclusive; an unaligned to still includes a bucket starting before it */
    query(&e, -MIN_US, MIN_US + 1, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL(r.buckets->via.array.size, 3);
    reply_free(&r);
    query(&e, -MIN_US, MIN_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL(r.buckets->via.array.size, 2);
    reply_free(&r);
    /* no bucket starts in [1, 60 s - 1) */
    query(&e, 1, MIN_US - 1, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL(r.buckets->via.array.size, 0);
    reply_free(&r);
    /* hours */
    query(&e, -HOUR_US, HOUR_US, HOUR_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 2);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 0), "start_us"), -HOUR_US);
    CU_ASSERT_EQUAL(created_at(&r, 0), 1);
    CU_ASSERT_EQUAL(created_at(&r, 1), 3);
    reply_free(&r);
    query(&e, -HOUR_US - 1, 1, HOUR_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 2);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 0), "start_us"), -HOUR_US);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 1), "start_us"), 0);
    reply_free(&r);
    /* days */
    query(&e, -DAY_US, DAY_US, DAY_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 2);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 0), "start_us"), -DAY_US);
    CU_ASSERT_EQUAL(created_at(&r, 0), 2);
    CU_ASSERT_EQUAL(created_at(&r, 1), 4);
    reply_free(&r);
    query(&e, -DAY_US + 1, 3 * DAY_US, DAY_US, true, 1, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 3);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 0), "start_us"), 0);
    CU_ASSERT_EQUAL(created_at(&r, 0), 4);
    CU_ASSERT_EQUAL(created_at(&r, 1), 0);
    CU_ASSERT_EQUAL(created_at(&r, 2), 0);
    reply_free(&r);
    /* 10,000 minute buckets, the most a query may ask */
    query(&e, -5000 * MIN_US, 5000 * MIN_US, MIN_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT_EQUAL_FATAL(r.buckets->via.array.size, 10000);
    int64_t sum = 0;
    for (uint32_t i = 0; i < 10000; i++)
        sum += created_at(&r, i);
    CU_ASSERT_EQUAL(sum, 6);
    CU_ASSERT_EQUAL(get_int(bucket_at(&r, 9999), "start_us"), 4999 * MIN_US);
    reply_free(&r);
    /* extremes of the time range do not overflow */
    query(&e, INT64_MAX - DAY_US, INT64_MAX, DAY_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT(r.buckets->via.array.size <= 1);
    reply_free(&r);
    query(&e, INT64_MIN, INT64_MIN + DAY_US, DAY_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    CU_ASSERT(r.buckets->via.array.size <= 1);
    reply_free(&r);
    env_done(&e);
}

/* ---- a workload: many orders, interleaved, some cancelled ------------------ */

typedef struct {
    int64_t ts;
    uint32_t order;
    uint8_t version;
    uint8_t type; /* ordo_event_type_t */
    uint8_t prev; /* OrderCancelled: ordo_status_t */
} wev_t;

typedef struct {
    wev_t *ev;
    size_t n;
    char (*ids)[16];
    int64_t *restaurant;
    int64_t *total;
    uint32_t orders;
} workload_t;

static int cmp_wev(const void *a, const void *b)
{
    const wev_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return (int)x->version - (int)y->version;
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* `orders` orders, one every spacing_us from start, across `restaurants`
 * restaurants; about 15% are cancelled from Created, Confirmed or
 * Preparing; events sorted by timestamp (the engine's timestamps never
 * decrease along the log). */
static void workload_make(workload_t *w, uint32_t orders, int restaurants, int64_t start,
                          int64_t spacing_us, uint64_t seed)
{
    memset(w, 0, sizeof *w);
    w->orders = orders;
    w->ev = malloc((size_t)orders * 6 * sizeof *w->ev);
    w->ids = malloc((size_t)orders * sizeof *w->ids);
    w->restaurant = malloc((size_t)orders * sizeof *w->restaurant);
    w->total = malloc((size_t)orders * sizeof *w->total);
    CU_ASSERT_FATAL(w->ev && w->ids && w->restaurant && w->total);
    const int64_t max_us[] = {0, 120000000, 60000000, 900000000, 300000000, 2400000000LL};
    for (uint32_t i = 0; i < orders; i++) {
        snprintf(w->ids[i], sizeof w->ids[i], "ord-%08" PRIu32, i);
        w->restaurant[i] = 1 + (int64_t)(rnd(&seed) % (uint64_t)restaurants);
        w->total[i] = (int64_t)(rnd(&seed) % 20000);
        int64_t ts = start + (int64_t)i * spacing_us;
        w->ev[w->n++] = (wev_t){ts, i, 1, ORDO_EVT_ORDER_CREATED, 0};
        int cancel_at = rnd(&seed) % 100 < 15 ? 1 + (int)(rnd(&seed) % 3) : 0; /* status */
        for (int s = 1; s <= 5; s++) {
            ts += 1 + (int64_t)(rnd(&seed) % (uint64_t)max_us[s]);
            if (cancel_at == s) {
                w->ev[w->n++] =
                    (wev_t){ts, i, (uint8_t)(s + 1), ORDO_EVT_ORDER_CANCELLED, (uint8_t)s};
                break;
            }
            w->ev[w->n++] =
                (wev_t){ts, i, (uint8_t)(s + 1), (uint8_t)(ORDO_EVT_ORDER_CREATED + s), 0};
        }
    }
    qsort(w->ev, w->n, sizeof *w->ev, cmp_wev);
}

static void workload_free(workload_t *w)
{
    free(w->ev);
    free(w->ids);
    free(w->restaurant);
    free(w->total);
}

/* Applies events [from, to) at positions from+1.., flushing every
 * flush_every events (0: never). */
static void workload_apply(env_t *e, const workload_t *w, size_t from, size_t to,
                           size_t flush_every)
{
    for (size_t i = from; i < to; i++) {
        const wev_t *x = &w->ev[i];
        ordo_client_event_t ev = {0};
        ev.position = i + 1;
        ev.order_id = w->ids[x->order];
        ev.version = x->version;
        ev.type = ordo_event_type_name((ordo_event_type_t)x->type);
        ev.timestamp_us = x->ts;
        if (x->type == ORDO_EVT_ORDER_CREATED || x->type == ORDO_EVT_ORDER_CONFIRMED)
            ev.restaurant_id = w->restaurant[x->order];
        if (x->type == ORDO_EVT_ORDER_CREATED)
            ev.total_cents = w->total[x->order];
        if (x->type == ORDO_EVT_ORDER_CANCELLED)
            ev.previous_status = ordo_status_name((ordo_status_t)x->prev);
        if (M->apply(e->model, &ev) != 0) {
            CU_FAIL("apply failed");
            return;
        }
        if (flush_every && (i + 1) % flush_every == 0 && M->flush(e->model) != 0) {
            CU_FAIL("flush failed");
            return;
        }
    }
    e->position = to;
}

/* A table's rows, in key order, as one string of their values. */
static char *dump_table(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) != SQLITE_OK)
        return NULL;
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    if (!out) {
        sqlite3_finalize(q);
        return NULL;
    }
    while (sqlite3_step(q) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(q); c++) {
            int n = sqlite3_column_bytes(q, c);
            const unsigned char *p = sqlite3_column_blob(q, c);
            if (len + 2 * (size_t)n + 64 > cap) {
                while (len + 2 * (size_t)n + 64 > cap)
                    cap *= 2;
                out = realloc(out, cap);
            }
            if (sqlite3_column_type(q, c) == SQLITE_INTEGER) {
                len += (size_t)sprintf(out + len, "%lld,", (long long)sqlite3_column_int64(q, c));
            } else {
                for (int k = 0; k < n; k++)
                    len += (size_t)sprintf(out + len, "%02x", p[k]);
                out[len++] = ',';
            }
        }
        out[len++] = '\n';
    }
    out[len] = 0;
    sqlite3_finalize(q);
    return out;
}

/* Everything the model answers about the workload's time span, packed. */
static char *answers(env_t *e, int64_t from, int64_t to, int restaurants, size_t *len)
{
    msgpack_sbuffer all;
    msgpack_sbuffer_init(&all);
    for (int rid = 0; rid <= restaurants; rid++) {
        const int64_t buckets[] = {MIN_US, HOUR_US};
        for (int b = 0; b < 2; b++) {
            reply_t r;
            query(e, from, to, buckets[b], rid > 0, rid, &r);
            CU_ASSERT_EQUAL(r.rc, 1);
            msgpack_sbuffer_write(&all, r.buf.data, r.buf.size);
            reply_free(&r);
        }
    }
    *len = all.size;
    return msgpack_sbuffer_release(&all);
}

static void compare_models(env_t *a, env_t *b, int64_t from, int64_t to, int restaurants)
{
    CU_ASSERT_EQUAL_FATAL(M->flush(a->model), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(b->model), 0);
    size_t la, lb;
    char *qa = answers(a, from, to, restaurants, &la);
    char *qb = answers(b, from, to, restaurants, &lb);
    CU_ASSERT_EQUAL(la, lb);
    CU_ASSERT(la == lb && memcmp(qa, qb, la) == 0);
    free(qa);
    free(qb);
    const char *tables[] = {"SELECT * FROM analytics_cells ORDER BY restaurant_id, minute",
                            "SELECT * FROM analytics_orders ORDER BY order_id"};
    for (int t = 0; t < 2; t++) {
        char *da = dump_table(a->db, tables[t]);
        char *db = dump_table(b->db, tables[t]);
        CU_ASSERT_PTR_NOT_NULL_FATAL(da);
        CU_ASSERT_PTR_NOT_NULL_FATAL(db);
        CU_ASSERT_STRING_EQUAL(da, db);
        free(da);
        free(db);
    }
}

/* A model restarted from a committed checkpoint, clean or after a crash
 * that lost flushed but uncommitted changes, then fed the events after the
 * checkpoint, ends in the same rows and answers as one never restarted. */
static void test_restart(void)
{
    workload_t w;
    workload_make(&w, 6000, 12, BASE_US + 17 * 1000000, 300000, 12345);
    env_t ref, clean, crash;
    env_init(&ref);
    env_init(&clean);
    env_init(&crash);
    workload_apply(&ref, &w, 0, w.n, 1000);

    size_t k1 = w.n / 3 + 7, k2 = w.n / 2 + 11;
    /* clean restart at k1, then another at k2 */
    workload_apply(&clean, &w, 0, k1, 333);
    CU_ASSERT_EQUAL(M->flush(clean.model), 0);
    env_close(&clean, true);
    env_open_model(&clean);
    workload_apply(&clean, &w, k1, k2, 0);
    CU_ASSERT_EQUAL(M->flush(clean.model), 0);
    env_close(&clean, true);
    env_open_model(&clean);
    workload_apply(&clean, &w, k2, w.n, 4096);

    /* crash: commit at k1, flush up to k2 without committing, kill */
    workload_apply(&crash, &w, 0, k1, 0);
    CU_ASSERT_EQUAL(M->flush(crash.model), 0);
    CU_ASSERT_EQUAL(ordo_pstore_commit(crash.db), 0);
    CU_ASSERT_EQUAL(ordo_pstore_begin(crash.db), 0);
    workload_apply(&crash, &w, k1, k2, 97);
    CU_ASSERT_EQUAL(M->flush(crash.model), 0);
    env_close(&crash, false);
    env_open_model(&crash);
    workload_apply(&crash, &w, k1, w.n, 1);

    int64_t from = BASE_US - BASE_US % HOUR_US, to = from + 8 * HOUR_US;
    compare_models(&ref, &clean, from, to, 12);
    compare_models(&ref, &crash, from, to, 12);

    /* the all-restaurant cells add up the restaurants' */
    reply_t all, one;
    query(&ref, from, to, HOUR_US, false, 0, &all);
    CU_ASSERT_EQUAL_FATAL(all.rc, 1);
    static const char *const keys[] = {"created", "confirmed", "delivered", "cancelled",
                                       "revenue_cents"};
    int64_t sum_all[5] = {0}, sum_r[5] = {0};
    for (uint32_t i = 0; i < all.buckets->via.array.size; i++)
        for (int k = 0; k < 5; k++)
            sum_all[k] += get_int(bucket_at(&all, i), keys[k]);
    for (int rid = 1; rid <= 12; rid++) {
        query(&ref, from, to, HOUR_US, true, rid, &one);
        CU_ASSERT_EQUAL_FATAL(one.rc, 1);
        for (uint32_t i = 0; i < one.buckets->via.array.size; i++)
            for (int k = 0; k < 5; k++)
                sum_r[k] += get_int(bucket_at(&one, i), keys[k]);
        reply_free(&one);
    }
    for (int k = 0; k < 5; k++)
        CU_ASSERT_EQUAL(sum_all[k], sum_r[k]);
    CU_ASSERT_EQUAL(sum_all[0], 6000);
    CU_ASSERT_EQUAL(sum_all[2] + sum_all[3], 6000);
    reply_free(&all);

    env_done(&ref);
    env_done(&clean);
    env_done(&crash);
    workload_free(&w);
}

/* ---- corrupt data --------------------------------------------------------- */

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Appends the CRC32C to a blob of len bytes; returns the new length. */
static size_t seal(uint8_t *p, size_t len)
{
    uint32_t c = ordo_crc32c(0, p, len);
    for (int i = 0; i < 4; i++)
        p[len + (size_t)i] = (uint8_t)(c >> (8 * i));
    return len + 4;
}

static int set_blob(sqlite3 *db, int64_t rid, int64_t minute, const void *p, size_t len)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "UPDATE analytics_cells SET stages = ?1"
                           " WHERE restaurant_id = ?2 AND minute = ?3",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    if (p)
        sqlite3_bind_blob(q, 1, p, (int)len, SQLITE_TRANSIENT);
    else
        sqlite3_bind_text(q, 1, "text!", -1, SQLITE_STATIC);
    sqlite3_bind_int64(q, 2, rid);
    sqlite3_bind_int64(q, 3, minute);
    int rc = sqlite3_step(q);
    int changed = sqlite3_changes(db);
    sqlite3_finalize(q);
    return rc == SQLITE_DONE && changed == 1 ? 0 : -1;
}

static int get_blob(sqlite3 *db, int64_t rid, int64_t minute, uint8_t *out, size_t cap)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db,
                           "SELECT stages FROM analytics_cells WHERE restaurant_id = ?1"
                           " AND minute = ?2",
                           -1, &q, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(q, 1, rid);
    sqlite3_bind_int64(q, 2, minute);
    int len = -1;
    if (sqlite3_step(q) == SQLITE_ROW && (size_t)sqlite3_column_bytes(q, 0) <= cap) {
        len = sqlite3_column_bytes(q, 0);
        memcpy(out, sqlite3_column_blob(q, 0), (size_t)len);
    }
    sqlite3_finalize(q);
    return len;
}

/* The query on the corrupt cell's minute fails with unavailable. */
static void expect_unavailable(env_t *e, int64_t rid)
{
    reply_t r;
    query(e, BASE_US, BASE_US + MIN_US, MIN_US, rid >= 0, rid, &r);
    CU_ASSERT_EQUAL(r.rc, -1);
    CU_ASSERT(r.err.code && strcmp(r.err.code, "unavailable") == 0);
    reply_free(&r);
}

static void expect_ok(env_t *e, int64_t rid)
{
    reply_t r;
    query(e, BASE_US, BASE_US + MIN_US, MIN_US, rid >= 0, rid, &r);
    CU_ASSERT_EQUAL(r.rc, 1);
    reply_free(&r);
}

static void test_corrupt(void)
{
    env_t e;
    env_init(&e);
    const int64_t minute = BASE_US / MIN_US;
    char id[32];
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "c%d", i);
        CU_ASSERT_EQUAL(ev_apply(&e, id, 1, ORDO_EVT_ORDER_CREATED, BASE_US + i, 4, 10, NULL), 0);
        CU_ASSERT_EQUAL(ev_apply(&e, id, 2, ORDO_EVT_ORDER_CONFIRMED,
                                 BASE_US + 1000 + (int64_t)i * i * 10007, 4, 0, NULL),
                        0);
        if (i % 2)
            CU_ASSERT_EQUAL(
                ev_apply(&e, id, 3, ORDO_EVT_ORDER_PREPARING, BASE_US + 59000000 + i, 0, 0, NULL),
                0);
    }
    CU_ASSERT_EQUAL_FATAL(M->flush(e.model), 0);
    expect_ok(&e, 4);
    static uint8_t good[65536], bad[65536];
    int glen = get_blob(e.db, 4, minute, good, sizeof good);
    CU_ASSERT_FATAL(glen > 10);

    /* every truncation and every single bit flip */
    int refused = 0, tried = 0;
    for (int len = 0; len < glen; len++) {
        CU_ASSERT_EQUAL_FATAL(set_blob(e.db, 4, minute, good, (size_t)len), 0);
        reply_t r;
        query(&e, BASE_US, BASE_US + MIN_US, MIN_US, true, 4, &r);
        refused += r.rc == -1, tried++;
        reply_free(&r);
    }
    for (int bit = 0; bit < glen * 8; bit++) {
        memcpy(bad, good, (size_t)glen);
        bad[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        CU_ASSERT_EQUAL_FATAL(set_blob(e.db, 4, minute, bad, (size_t)glen), 0);
        reply_t r;
        query(&e, BASE_US, BASE_US + MIN_US, MIN_US, true, 4, &r);
        refused += r.rc == -1, tried++;
        reply_free(&r);
    }
    CU_ASSERT_EQUAL(refused, tried);

    /* a valid one-stage blob: n 2, max 300, bins 10 (count 1) and 278,
     * 300's bin (gap 278 - 10 - 1 = 267) */
    uint8_t valid[64];
    size_t vlen = 0;
    valid[vlen++] = 1, valid[vlen++] = 1;
    const uint64_t vv[] = {2, 300, 2, 10, 1, 267, 1};
    for (int i = 0; i < 7; i++)
        vlen += put_varint(valid + vlen, vv[i]);
    vlen = seal(valid, vlen);
    CU_ASSERT_EQUAL_FATAL(set_blob(e.db, 4, minute, valid, vlen), 0);
    reply_t r;
    query(&e, BASE_US, BASE_US + MIN_US, MIN_US, true, 4, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    const msgpack_object *c = stage(bucket_at(&r, 0), "confirm");
    CU_ASSERT_EQUAL(get_int(c, "n"), 2);
    CU_ASSERT_EQUAL(get_int(c, "p50_ms"), 10);
    CU_ASSERT_EQUAL(get_int(c, "p95_ms"), 300);
    CU_ASSERT_EQUAL(get_int(c, "max_ms"), 300);
    reply_free(&r);

    /* well sealed, but each breaking one rule: version, mask, varints */
    static const struct {
        const char *what;
        uint8_t version, mask;
        int nv;
        uint64_t v[9];
    } cases[] = {
        {"version 2", 2, 1, 7, {2, 300, 2, 10, 1, 267, 1}},
        {"stage bit 6", 1, 0x41, 7, {2, 300, 2, 10, 1, 267, 1}},
        {"n 0", 1, 1, 5, {0, 300, 1, 278, 1}},
        {"no bins", 1, 1, 3, {2, 300, 0}},
        {"more bins than n", 1, 1, 7, {1, 300, 2, 10, 1, 267, 1}},
        {"bin past the end", 1, 1, 7, {2, 300, 2, 10, 1, 7296, 1}},
        {"bin index wraps", 1, 1, 7, {2, 300, 2, 7000, 1, 7000, 1}},
        {"counts short of n", 1, 1, 7, {3, 300, 2, 10, 1, 267, 1}},
        {"counts past n", 1, 1, 7, {2, 300, 2, 10, 2, 267, 1}},
        {"empty bin", 1, 1, 7, {2, 300, 2, 10, 0, 267, 2}},
        {"max not in last bin", 1, 1, 7, {2, 900, 2, 10, 1, 267, 1}},
        {"trailing byte", 1, 1, 8, {2, 300, 2, 10, 1, 267, 1, 0}},
        {"huge bin count", 1, 1, 5, {2, 300, 1ull << 40, 10, 1}},
        {"missing stage", 1, 3, 7, {2, 300, 2, 10, 1, 267, 1}},
        {"bins cut short", 1, 1, 5, {2, 300, 2, 10, 1}},
        {"header cut short", 1, 1, 1, {2}},
        {"no stage but bytes", 1, 0, 1, {0}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = 0;
        bad[n++] = cases[i].version;
        bad[n++] = cases[i].mask;
        for (int k = 0; k < cases[i].nv; k++)
            n += put_varint(bad + n, cases[i].v[k]);
        n = seal(bad, n);
        CU_ASSERT_EQUAL_FATAL(set_blob(e.db, 4, minute, bad, n), 0);
        query(&e, BASE_US, BASE_US + MIN_US, MIN_US, true, 4, &r);
        if (r.rc != -1)
            fprintf(stderr, "not refused: %s\n", cases[i].what);
        CU_ASSERT_EQUAL(r.rc, -1);
        CU_ASSERT(r.rc != -1 || strcmp(r.err.code, "unavailable") == 0);
        reply_free(&r);
    }
    /* a varint of ten bytes */
    size_t n = 0;
    bad[n++] = 1, bad[n++] = 1;
    for (int i = 0; i < 10; i++)
        bad[n++] = 0x80;
    bad[n++] = 0;
    n = seal(bad, n);
    CU_ASSERT_EQUAL_FATAL(set_blob(e.db, 4, minute, bad, n), 0);
    expect_unavailable(&e, 4);
    /* not a blob; a counter that is not a number; a negative count */
    CU_ASSERT_EQUAL(set_blob(e.db, 4, minute, NULL, 0), 0);
    expect_unavailable(&e, 4);
    CU_ASSERT_EQUAL(set_blob(e.db, 4, minute, good, (size_t)glen), 0);
    expect_ok(&e, 4);
    CU_ASSERT_EQUAL(ordo_pstore_exec(e.db, "UPDATE analytics_cells SET created = 'x'"
                                           " WHERE restaurant_id = -1"),
                    0);
    expect_unavailable(&e, -1);
    expect_ok(&e, 4);
    CU_ASSERT_EQUAL(ordo_pstore_exec(e.db, "UPDATE analytics_cells SET created = -3"
                                           " WHERE restaurant_id = -1"),
                    0);
    expect_unavailable(&e, -1);

    /* flush: a late event merges into a corrupt row: refused, and the
     * model stays failed */
    CU_ASSERT_EQUAL(set_blob(e.db, 4, minute, bad, 3), 0);
    CU_ASSERT_EQUAL(
        ev_apply(&e, "late", 1, ORDO_EVT_ORDER_CREATED, BASE_US + 10 * MIN_US, 4, 1, NULL), 0);
    CU_ASSERT_EQUAL(M->flush(e.model), 0); /* minute 10 is new; minute 0 leaves RAM */
    CU_ASSERT_EQUAL(ev_apply(&e, "c0", 3, ORDO_EVT_ORDER_PREPARING, BASE_US + 5, 0, 0, NULL), 0);
    CU_ASSERT_EQUAL(M->flush(e.model), -1);
    CU_ASSERT_EQUAL(ev_apply(&e, "c3", 4, ORDO_EVT_ORDER_READY, BASE_US + 11 * MIN_US, 0, 0, NULL),
                    -1);
    env_close(&e, false);

    /* a corrupt live-order row: open refuses */
    env_open_model(&e);
    CU_ASSERT_EQUAL(ev_apply(&e, "x1", 1, ORDO_EVT_ORDER_CREATED, BASE_US, 4, 1, NULL), 0);
    CU_ASSERT_EQUAL(M->flush(e.model), 0);
    M->close(&e.model);
    CU_ASSERT_EQUAL(ordo_pstore_exec(e.db, "UPDATE analytics_orders SET status = 9"), 0);
    CU_ASSERT_PTR_NULL(M->open(e.db));
    CU_ASSERT_EQUAL(ordo_pstore_exec(e.db, "UPDATE analytics_orders SET status = 1,"
                                           " created_us = 'soon'"),
                    0);
    CU_ASSERT_PTR_NULL(M->open(e.db));
    CU_ASSERT_EQUAL(ordo_pstore_exec(e.db, "UPDATE analytics_orders SET created_us = 5"), 0);
    e.model = M->open(e.db);
    CU_ASSERT_PTR_NOT_NULL(e.model);
    env_done(&e);
}

/* ---- memory ------------------------------------------------------------- */

/* CPU time of this (single-threaded) test: the rate it gives does not
 * depend on what else the machine runs. */
static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100,000 orders over ~11 hours: live orders stay bounded by those in
 * flight, and once all are finished and flushed nothing of them is left in
 * RAM or in the live-order table; cells in RAM are only the last minutes'. */
static void test_memory(void)
{
    workload_t w;
    workload_make(&w, 100000, 50, BASE_US, 400000, 777);
    env_t e;
    env_init(&e);
    size_t orders, cells, pending, max_orders = 0, max_cells = 0;
    double apply_s = 0;
    const size_t step = 10000;
    for (size_t i = 0; i < w.n; i += step) {
        size_t end = i + step < w.n ? i + step : w.n;
        double t0 = now_s();
        workload_apply(&e, &w, i, end, 0);
        apply_s += now_s() - t0;
        CU_ASSERT_EQUAL_FATAL(M->flush(e.model), 0);
        ordo_model_analytics_footprint(e.model, &orders, &cells, &pending);
        CU_ASSERT_EQUAL(pending, 0);
        max_orders = orders > max_orders ? orders : max_orders;
        max_cells = cells > max_cells ? cells : max_cells;
        CU_ASSERT_EQUAL(ordo_pstore_commit(e.db), 0);
        CU_ASSERT_EQUAL(ordo_pstore_begin(e.db), 0);
    }
    ordo_model_analytics_footprint(e.model, &orders, &cells, &pending);
    CU_ASSERT_EQUAL(orders, 0);
    CU_ASSERT_EQUAL(pending, 0);
    CU_ASSERT(cells <= 2 * 51);
    /* in flight at once: at most ~ an order's lifetime (< 1 h) / 0.4 s */
    CU_ASSERT(max_orders < 10000);
    CU_ASSERT(max_cells <= 2 * 51); /* after each flush: the last two minutes' */
    sqlite3_stmt *q;
    CU_ASSERT_EQUAL_FATAL(
        sqlite3_prepare_v2(e.db, "SELECT COUNT(*) FROM analytics_orders", -1, &q, NULL), SQLITE_OK);
    CU_ASSERT_EQUAL(sqlite3_step(q), SQLITE_ROW);
    CU_ASSERT_EQUAL(sqlite3_column_int64(q, 0), 0);
    sqlite3_finalize(q);
    reply_t r;
    int64_t day0 = BASE_US - BASE_US % DAY_US;
    query(&e, day0, day0 + 2 * DAY_US, DAY_US, false, 0, &r);
    CU_ASSERT_EQUAL_FATAL(r.rc, 1);
    int64_t created = 0, finished = 0;
    for (uint32_t i = 0; i < r.buckets->via.array.size; i++) {
        created += created_at(&r, i);
        finished += get_int(bucket_at(&r, i), "delivered") + get_int(bucket_at(&r, i), "cancelled");
    }
    CU_ASSERT_EQUAL(created, 100000);
    CU_ASSERT_EQUAL(finished, 100000);
    reply_free(&r);
    /* a 10,000-bucket query over it all */
    double t0 = now_s();
    query(&e, BASE_US - BASE_US % MIN_US, BASE_US - BASE_US % MIN_US + 10000 * MIN_US, MIN_US,
          false, 0, &r);
    double qs = now_s() - t0;
    CU_ASSERT_EQUAL(r.rc, 1);
    reply_free(&r);
    printf("\n    analytics: %zu events applied in %.3f s (%.0f events/s, %.0f ns/event); "
           "peak live orders %zu, peak cells in RAM %zu; 10,000-minute query %.1f ms\n",
           w.n, apply_s, (double)w.n / apply_s, apply_s * 1e9 / (double)w.n, max_orders, max_cells,
           qs * 1e3);
    env_done(&e);
    workload_free(&w);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("model_analytics", NULL, NULL);
    CU_add_test(s, "counts, revenue, cancelled_from, filter", test_counts);
    CU_add_test(s, "1000 durations through the histogram", test_histogram_1000);
    CU_add_test(s, "random durations against sorted truth", test_histogram_random);
    CU_add_test(s, "UTC alignment of minute, hour, day", test_alignment);
    CU_add_test(s, "restart equals no restart", test_restart);
    CU_add_test(s, "corrupt blobs and rows", test_corrupt);
    CU_add_test(s, "memory after 100,000 orders", test_memory);
    return ordo_test_run();
}
