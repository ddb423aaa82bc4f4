/* Tests for the timeline read model (projections/ordo_model_timeline.c):
 * OrdersAsOf against a brute-force reference that replays the same events
 * up to the instant, over thousands of random orders (lives from 0 µs to
 * hours, many equal timestamps), every status filter, restaurants, paging;
 * restarts from committed states; memory; damaged rows and a failing
 * database; and the apply rate and query times on 100k orders. */
#include "ordo_clock.h"
#include "ordo_model.h"
#include "ordo_pstore.h"
#include "ordo_test.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Test-only accessor in ordo_model_timeline.c: orders held in RAM. */
size_t ordo_model_timeline_resident(const void *state);
/* ... how the finished part is paged: 0 by cost, 1 never walk the order_id
 * index, 2 always (with a budget in VM instructions, 0 none) */
void ordo_model_timeline_walk(void *state, int mode, int64_t budget_ops);
uint64_t ordo_model_timeline_walks_given_up(const void *state);
const char *ordo_model_timeline_walk_sql(bool by_pos);
enum { W_AUTO = 0, W_NEVER = 1, W_ALWAYS = 2 };

static const ordo_model_ops_t *const M = &ordo_model_timeline;

/* ---- random data ------------------------------------------------------- */

static uint64_t s_rng = 0x9e3779b97f4a7c15ull;

static uint64_t s_rand(void)
{
    s_rng ^= s_rng >> 12;
    s_rng ^= s_rng << 25;
    s_rng ^= s_rng >> 27;
    return s_rng * 0x2545f4914f6cdd1dull;
}

static int64_t s_range(int64_t lo, int64_t hi) /* [lo, hi] */
{
    return lo + (int64_t)(s_rand() % (uint64_t)(hi - lo + 1));
}

#define T0 INT64_C(1700000000000000) /* an epoch in µs */

typedef struct {
    char id[ORDO_ORDER_ID_MAX + 1];
    int64_t restaurant_id;
    int n; /* events */
    ordo_event_type_t type[ORDO_MAX_VERSION];
    int64_t us[ORDO_MAX_VERSION];
    int64_t pos[ORDO_MAX_VERSION];
} t_order_t;

typedef struct {
    int order;
    int k;
    uint32_t rank; /* the order's place among equal timestamps */
    int64_t us;
} t_ref_t;

typedef struct {
    t_order_t *orders;
    int n_orders;
    ordo_client_event_t *events; /* position order; events[i].position == i + 1 */
    t_ref_t *refs;               /* the same, which order and event each is */
    int n_events;
} t_log_t;

static const char s_alphabet[] = "ABCXYZabcxyz0189_-.:";

static int s_idcmp(const char *a, const char *b) /* bytewise, as the protocol orders */
{
    size_t la = strlen(a), lb = strlen(b);
    int c = memcmp(a, b, la < lb ? la : lb);
    return c ? c : (la < lb ? -1 : la > lb);
}

/* A random id, unique among ids[0..n): random bytes of the alphabet, or a
 * prefix / extension of an earlier one (orders "ab" < "ab-" < "abc"). */
static void s_make_id(char *out, char **ids, int n)
{
    for (;;) {
        int r = (int)s_range(0, 9);
        if (n > 0 && r < 2) {
            const char *base = ids[s_range(0, n - 1)];
            size_t bl = strlen(base);
            if (r == 0 && bl > 1) {
                memcpy(out, base, bl - 1);
                out[bl - 1] = '\0';
            } else if (bl < ORDO_ORDER_ID_MAX) {
                memcpy(out, base, bl);
                out[bl] = s_alphabet[s_range(0, sizeof s_alphabet - 2)];
                out[bl + 1] = '\0';
            } else {
                continue;
            }
        } else {
            int len = r == 9 ? ORDO_ORDER_ID_MAX : (int)s_range(1, 12);
            for (int i = 0; i < len; i++)
                out[i] = s_alphabet[s_range(0, sizeof s_alphabet - 2)];
            out[len] = '\0';
        }
        bool dup = false;
        for (int i = 0; i < n && !dup; i++)
            dup = strcmp(ids[i], out) == 0;
        if (!dup)
            return;
    }
}

/* A gap between two events of one order: 0, a few µs, or up to hours. */
static int64_t s_gap(void)
{
    int r = (int)s_range(0, 9);
    if (r < 2)
        return 0;
    if (r < 3)
        return s_range(1, 10);
    return (int64_t)(1ull << s_range(0, 33)) + s_range(0, 1000);
}

static int s_ref_cmp(const void *a, const void *b)
{
    const t_ref_t *x = a, *y = b;
    if (x->us != y->us)
        return x->us < y->us ? -1 : 1;
    if (x->rank != y->rank)
        return x->rank < y->rank ? -1 : 1;
    return x->k - y->k;
}

static void s_log_free(t_log_t *lg)
{
    free(lg->orders);
    free(lg->events);
    free(lg->refs);
    memset(lg, 0, sizeof *lg);
}

/* Shapes of a random log. */
enum {
    L_FINISH_ALL = 1 << 0, /* every order ends Delivered or Cancelled */
    L_MIXED_IDS = 1 << 1,  /* ids of random bytes, prefixes of one another */
    L_REALISTIC = 1 << 2,  /* steps of 30 s to 20 min, all orders finish */
};

/* n random orders created over `span_us`, events in timestamp order (ties
 * in a random but fixed order across orders, in version order within
 * one). Unless realistic, an order's steps take 0 µs to hours and one in
 * five orders never finishes. */
static void s_log_alloc(t_log_t *lg, int n)
{
    memset(lg, 0, sizeof *lg);
    lg->orders = calloc((size_t)n, sizeof *lg->orders);
    lg->refs = calloc((size_t)n * ORDO_MAX_VERSION, sizeof *lg->refs);
    lg->events = calloc((size_t)n * ORDO_MAX_VERSION, sizeof *lg->events);
    CU_ASSERT_FATAL(lg->orders && lg->refs && lg->events);
    lg->n_orders = n;
}

/* Orders filled in (ids, restaurants, types and timestamps): sorts their
 * events into the log and gives them positions. */
static void s_log_index(t_log_t *lg)
{
    int ne = 0;
    for (int i = 0; i < lg->n_orders; i++) {
        uint32_t rank = (uint32_t)s_rand();
        for (int k = 0; k < lg->orders[i].n; k++)
            lg->refs[ne++] = (t_ref_t){i, k, rank, lg->orders[i].us[k]};
    }
    qsort(lg->refs, (size_t)ne, sizeof *lg->refs, s_ref_cmp);
    for (int e = 0; e < ne; e++) {
        const t_ref_t *rf = &lg->refs[e];
        t_order_t *o = &lg->orders[rf->order];
        o->pos[rf->k] = e + 1;
        ordo_client_event_t *ev = &lg->events[e];
        ev->position = (uint64_t)e + 1;
        ev->order_id = o->id;
        ev->version = (uint32_t)rf->k + 1;
        ev->type = ordo_event_type_name(o->type[rf->k]);
        ev->timestamp_us = o->us[rf->k];
        ev->schema = 1;
        if (rf->k <= 1)
            ev->restaurant_id = o->restaurant_id;
        if (o->type[rf->k] == ORDO_EVT_ORDER_CANCELLED)
            ev->previous_status = ordo_status_name((ordo_status_t)rf->k);
    }
    lg->n_events = ne;
}

static void s_log_make(t_log_t *lg, int n, int64_t span_us, int shape)
{
    bool finish_all = shape & (L_FINISH_ALL | L_REALISTIC);
    s_log_alloc(lg, n);
    char **ids = calloc((size_t)n, sizeof *ids);
    CU_ASSERT_FATAL(ids != NULL);
    for (int i = 0; i < n; i++) {
        t_order_t *o = &lg->orders[i];
        if (shape & L_MIXED_IDS) {
            s_make_id(o->id, ids, i);
        } else {
            snprintf(o->id, sizeof o->id, "o%08" PRIx64 "-%d", s_rand() & 0xffffffffu, i);
        }
        ids[i] = o->id;
        o->restaurant_id = s_range(1, 12);
        int64_t t = T0 + s_range(0, span_us);
        int q = (int)s_range(0, 9);
        if (q < 3)
            t -= t % 1000000; /* whole seconds: many orders share timestamps */
        else if (q < 5)
            t -= t % 1000;
        /* the path: open after 1..5 events, cancelled after 1..3, or delivered */
        int r = (int)s_range(0, 99), n_ev;
        bool cancel = false;
        if (!finish_all && r < 20) {
            n_ev = (int)s_range(1, 5);
        } else if (r < 45) {
            n_ev = (int)s_range(1, 3) + 1;
            cancel = true;
        } else {
            n_ev = 6;
        }
        for (int k = 0; k < n_ev; k++) {
            if (k > 0)
                t += shape & L_REALISTIC ? s_range(30000000, 1200000000) : s_gap();
            o->type[k] = cancel && k == n_ev - 1 ? ORDO_EVT_ORDER_CANCELLED
                                                 : (ordo_event_type_t)(ORDO_EVT_ORDER_CREATED + k);
            o->us[k] = t;
        }
        o->n = n_ev;
    }
    free(ids);
    s_log_index(lg);
}

/* ---- the reference ----------------------------------------------------- */

typedef struct {
    const char *id;
    ordo_status_t status;
    int version;
    int64_t since_us;
} t_row_t;

typedef struct {
    int64_t x;
    bool by_pos;
    uint32_t mask;
    bool has_restaurant;
    int64_t restaurant_id;
} t_ask_t;

static int s_row_cmp(const void *a, const void *b)
{
    return s_idcmp(((const t_row_t *)a)->id, ((const t_row_t *)b)->id);
}

/* Replays each order's events with key <= x among those at positions <=
 * head; fills rows (n_orders entries) sorted by id, returns how many. */
static int s_reference(const t_log_t *lg, int64_t head, const t_ask_t *a, t_row_t *rows)
{
    int n = 0;
    for (int i = 0; i < lg->n_orders; i++) {
        const t_order_t *o = &lg->orders[i];
        if (a->has_restaurant && o->restaurant_id != a->restaurant_id)
            continue;
        t_row_t r = {o->id, ORDO_STATUS_NONE, 0, 0};
        for (int k = 0; k < o->n && o->pos[k] <= head; k++) {
            if ((a->by_pos ? o->pos[k] : o->us[k]) > a->x)
                break;
            r.status = ordo_status_after(o->type[k]);
            r.version = k + 1;
            r.since_us = o->us[k];
        }
        if (r.status == ORDO_STATUS_NONE || (a->mask && !(a->mask & (1u << r.status))))
            continue;
        rows[n++] = r;
    }
    qsort(rows, (size_t)n, sizeof *rows, s_row_cmp);
    return n;
}

/* ---- the model's replies ------------------------------------------------ */

typedef struct {
    char id[ORDO_ORDER_ID_MAX + 1];
    char status[24];
    int64_t version;
    int64_t since_us;
} t_got_t;

typedef struct {
    int rc; /* what query() returned */
    ordo_perror_t err;
    t_got_t *orders;
    size_t n;
    int64_t total;
    bool has_next;
    char next[ORDO_PCURSOR_MAX];
    bool well_formed;
} t_reply_t;

static bool s_key_is(const msgpack_object *k, const char *name)
{
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen(name) &&
           memcmp(k->via.str.ptr, name, k->via.str.size) == 0;
}

static bool s_copy_str(const msgpack_object *v, char *out, size_t size)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size >= size)
        return false;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return true;
}

static bool s_get_int(const msgpack_object *v, int64_t *out)
{
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX)
        *out = (int64_t)v->via.u64;
    else if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = v->via.i64;
    else
        return false;
    return true;
}

static void s_reply_free(t_reply_t *r)
{
    free(r->orders);
    memset(r, 0, sizeof *r);
}

/* Runs q and decodes {orders, total, next_cursor}. */
static void s_query(void *model, const ordo_pquery_t *q, t_reply_t *r)
{
    memset(r, 0, sizeof *r);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    r->rc = M->query(model, q, &pk, &r->err);
    if (r->rc != 3) {
        msgpack_sbuffer_destroy(&sb);
        return;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    bool ok = msgpack_unpack_next(&up, sb.data, sb.size, &off) == MSGPACK_UNPACK_SUCCESS &&
              off == sb.size && up.data.type == MSGPACK_OBJECT_MAP && up.data.via.map.size == 3;
    int seen = 0;
    for (uint32_t i = 0; ok && i < up.data.via.map.size; i++) {
        const msgpack_object *k = &up.data.via.map.ptr[i].key, *v = &up.data.via.map.ptr[i].val;
        if (s_key_is(k, "orders") && v->type == MSGPACK_OBJECT_ARRAY) {
            seen |= 1;
            r->n = v->via.array.size;
            r->orders = calloc(r->n ? r->n : 1, sizeof *r->orders);
            for (size_t j = 0; ok && j < r->n; j++) {
                const msgpack_object *m = &v->via.array.ptr[j];
                ok = m->type == MSGPACK_OBJECT_MAP && m->via.map.size == 4;
                int fields = 0;
                for (uint32_t f = 0; ok && f < m->via.map.size; f++) {
                    const msgpack_object *fk = &m->via.map.ptr[f].key;
                    const msgpack_object *fv = &m->via.map.ptr[f].val;
                    t_got_t *g = &r->orders[j];
                    if (s_key_is(fk, "order_id"))
                        ok = s_copy_str(fv, g->id, sizeof g->id), fields |= 1;
                    else if (s_key_is(fk, "status"))
                        ok = s_copy_str(fv, g->status, sizeof g->status), fields |= 2;
                    else if (s_key_is(fk, "version"))
                        ok = s_get_int(fv, &g->version), fields |= 4;
                    else if (s_key_is(fk, "since_us"))
                        ok = s_get_int(fv, &g->since_us), fields |= 8;
                    else
                        ok = false;
                }
                ok = ok && fields == 15;
            }
        } else if (s_key_is(k, "total")) {
            seen |= 2;
            ok = s_get_int(v, &r->total);
        } else if (s_key_is(k, "next_cursor")) {
            seen |= 4;
            if (v->type == MSGPACK_OBJECT_NIL)
                r->has_next = false;
            else
                ok = r->has_next = s_copy_str(v, r->next, sizeof r->next);
        } else {
            ok = false;
        }
    }
    r->well_formed = ok && seen == 7;
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
}

static ordo_pquery_t s_ask_query(const t_ask_t *a, int64_t limit)
{
    ordo_pquery_t q;
    memset(&q, 0, sizeof q);
    q.type = ORDO_PQ_ORDERS_AS_OF;
    q.at_is_position = a->by_pos;
    q.at = a->x;
    q.status_mask = a->mask;
    q.has_restaurant_id = a->has_restaurant;
    q.restaurant_id = a->restaurant_id;
    q.limit = limit;
    return q;
}

static int s_mismatches;

/* Pages through the model's answer to `a` with `limit` and compares the
 * concatenation, `total` and every next_cursor with the reference. Returns
 * true when all agree (and counts a mismatch, printed once or twice,
 * otherwise). */
static bool s_check(void *model, const t_log_t *lg, int64_t head, const t_ask_t *a, int64_t limit,
                    t_row_t *ref)
{
    int n = s_reference(lg, head, a, ref);
    ordo_pquery_t q = s_ask_query(a, limit);
    int at = 0;
    bool good = true;
    const char *why = "";
    for (int page = 0; good; page++) {
        t_reply_t r;
        s_query(model, &q, &r);
        if (r.rc != 3 || !r.well_formed) {
            good = false;
            why = r.rc != 3 ? r.err.message : "malformed reply";
        } else if (r.total != n) {
            good = false;
            why = "total";
        } else {
            size_t want = (size_t)(n - at) < (size_t)limit ? (size_t)(n - at) : (size_t)limit;
            if (r.n != want) {
                good = false;
                why = "page size";
            }
            for (size_t i = 0; good && i < r.n; i++, at++) {
                const t_row_t *e = &ref[at];
                const t_got_t *g = &r.orders[i];
                if (strcmp(g->id, e->id) != 0 || strcmp(g->status, ordo_status_name(e->status)) ||
                    g->version != e->version || g->since_us != e->since_us) {
                    good = false;
                    why = "an order differs";
                    if (s_mismatches < 3)
                        printf("\n  got %s %s v%" PRId64 " %" PRId64 ", want %s %s v%d %" PRId64,
                               g->id, g->status, g->version, g->since_us, e->id,
                               ordo_status_name(e->status), e->version, e->since_us);
                }
            }
            if (good && at < n) {
                char cur[ORDO_PCURSOR_MAX];
                ordo_pcursor_encode(cur, ORDO_PQ_ORDERS_AS_OF, 0, r.orders[r.n - 1].id);
                if (!r.has_next || strcmp(r.next, cur) != 0) {
                    good = false;
                    why = "next_cursor";
                }
                q.has_cursor = true;
                snprintf(q.cursor_order_id, sizeof q.cursor_order_id, "%s", r.orders[r.n - 1].id);
            } else if (good) {
                if (r.has_next) {
                    good = false;
                    why = "next_cursor not nil at the end";
                }
                s_reply_free(&r);
                break;
            }
        }
        s_reply_free(&r);
        if (page > n + 2) {
            good = false;
            why = "pages never end";
        }
    }
    if (!good) {
        if (s_mismatches < 3)
            printf("\n  mismatch (%s): %s x=%" PRId64 " mask=%#x restaurant=%s%" PRId64
                   " limit=%" PRId64 " head=%" PRId64 " ref=%d",
                   why, a->by_pos ? "pos" : "us", a->x, a->mask, a->has_restaurant ? "" : "-",
                   a->restaurant_id, limit, head, n);
        s_mismatches++;
    }
    return good;
}

/* ---- fixtures ---------------------------------------------------------- */

typedef struct {
    char dir[128];
    char path[256];
    sqlite3 *db;
    void *model;
} t_db_t;

/* A model on a fresh database without its query indexes, as a generation
 * building from position 1 starts. */
static void s_db_open_unindexed(t_db_t *d, const char *name)
{
    if (!d->dir[0])
        CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(d->dir, sizeof d->dir));
    snprintf(d->path, sizeof d->path, "%s/%s.db", d->dir, name);
    d->db = ordo_pstore_open(d->path, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->db);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d->db), 0);
    d->model = M->open(d->db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d->model);
}

/* The same with the query indexes, as a generation that answers queries. */
static void s_db_open(t_db_t *d, const char *name)
{
    s_db_open_unindexed(d, name);
    CU_ASSERT_EQUAL_FATAL(ordo_model_build_indexes(M, d->db), 0);
}

/* Closes model and database; commit or roll back what is pending. */
static void s_db_close(t_db_t *d, bool commit)
{
    M->close(&d->model);
    CU_ASSERT_PTR_NULL(d->model);
    int rc = commit ? ordo_pstore_commit(d->db) : ordo_pstore_rollback(d->db);
    CU_ASSERT_EQUAL(rc, 0);
    ordo_pstore_close(&d->db);
}

static void s_db_drop(t_db_t *d)
{
    if (d->model || d->db)
        s_db_close(d, false);
    ordo_test_rm_rf(d->dir);
    d->dir[0] = '\0';
}

static int s_apply_range(void *model, const t_log_t *lg, int from, int to) /* events [from, to) */
{
    int bad = 0;
    for (int e = from; e < to; e++)
        bad += M->apply(model, &lg->events[e]) != 0;
    return bad;
}

/* Orders open once the first `head` events are applied. */
static size_t s_open_orders(const t_log_t *lg, int64_t head)
{
    size_t n = 0;
    for (int i = 0; i < lg->n_orders; i++) {
        const t_order_t *o = &lg->orders[i];
        int k = 0;
        while (k < o->n && o->pos[k] <= head)
            k++;
        n += k > 0 && !ordo_status_is_final(ordo_status_after(o->type[k - 1]));
    }
    return n;
}

/* An instant: an event's timestamp exactly, one µs either side, or any
 * time within the log's span. */
static int64_t s_pick_us(const t_log_t *lg)
{
    int64_t first = lg->events[0].timestamp_us, last = lg->events[lg->n_events - 1].timestamp_us;
    int r = (int)s_range(0, 9);
    if (r < 5)
        return lg->events[s_range(0, lg->n_events - 1)].timestamp_us + (r < 4 ? 0 : s_range(-1, 1));
    return s_range(first - 10, last + 10);
}

static const uint32_t s_masks[] = {
    0,
    1u << ORDO_STATUS_CREATED,
    1u << ORDO_STATUS_CONFIRMED,
    1u << ORDO_STATUS_PREPARING,
    1u << ORDO_STATUS_READY,
    1u << ORDO_STATUS_OUT_FOR_DELIVERY,
    1u << ORDO_STATUS_DELIVERED,
    1u << ORDO_STATUS_CANCELLED,
    1u << ORDO_STATUS_DELIVERED | 1u << ORDO_STATUS_CANCELLED,
    1u << ORDO_STATUS_CREATED | 1u << ORDO_STATUS_OUT_FOR_DELIVERY | 1u << ORDO_STATUS_CANCELLED,
    0xfe & ~(1u << ORDO_STATUS_DELIVERED),
};
#define N_MASKS (sizeof s_masks / sizeof s_masks[0])

/* Checks a batch of instants (time and positions), every mask, with and
 * without a restaurant, against the reference at `head`. */
static void s_check_many(void *model, const t_log_t *lg, int64_t head, int n_instants,
                         int64_t limit)
{
    t_row_t *ref = malloc((size_t)lg->n_orders * sizeof *ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    int bad = 0;
    for (int i = 0; i < n_instants; i++) {
        t_ask_t a = {0};
        a.by_pos = i % 3 == 2;
        a.x = a.by_pos ? s_range(0, head + 2) : s_pick_us(lg);
        for (size_t m = 0; m < N_MASKS; m++) {
            a.mask = s_masks[m];
            a.has_restaurant = (i + (int)m) % 4 == 0;
            a.restaurant_id = s_range(1, 13); /* 13: a restaurant with no orders */
            bad += !s_check(model, lg, head, &a, limit, ref);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(ref);
}

/* ---- tests ------------------------------------------------------------- */

/* Thousands of random orders, checked at many instants after applying the
 * log in chunks (so open orders sit in the table mid-life), then whole. */
static void test_random_against_reference(void)
{
    t_log_t lg;
    s_log_make(&lg, 4000, INT64_C(6) * 3600 * 1000000, L_MIXED_IDS);
    t_db_t d = {0};
    s_db_open(&d, "random");
    int chunks[] = {lg.n_events / 7, lg.n_events / 3, lg.n_events / 2 + 1, lg.n_events};
    int done = 0;
    for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
        CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, done, chunks[c]), 0);
        done = chunks[c];
        CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
        CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), s_open_orders(&lg, done));
        s_check_many(d.model, &lg, done, c + 1 < sizeof chunks / sizeof chunks[0] ? 12 : 60,
                     ORDO_PQ_LIMIT_MAX);
    }
    /* the edges: before everything, the very first and last instants, after
     * everything, the extremes of int64 */
    t_row_t *ref = malloc((size_t)lg.n_orders * sizeof *ref);
    int64_t first = lg.events[0].timestamp_us, last = lg.events[lg.n_events - 1].timestamp_us;
    const int64_t xs_us[] = {INT64_MIN, first - 1, first, last - 1, last, last + 1, INT64_MAX};
    const int64_t xs_pos[] = {INT64_MIN,       -1,       0, 1, 2, lg.n_events - 1, lg.n_events,
                              lg.n_events + 1, INT64_MAX};
    int bad = 0;
    for (size_t m = 0; m < N_MASKS; m++) {
        for (size_t i = 0; i < sizeof xs_us / sizeof xs_us[0]; i++) {
            t_ask_t a = {.x = xs_us[i], .mask = s_masks[m]};
            bad += !s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref);
        }
        for (size_t i = 0; i < sizeof xs_pos / sizeof xs_pos[0]; i++) {
            t_ask_t a = {.x = xs_pos[i], .by_pos = true, .mask = s_masks[m]};
            bad += !s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* before everything: empty, total 0, no cursor */
    t_ask_t a = {.x = first - 1};
    ordo_pquery_t q = s_ask_query(&a, 10);
    t_reply_t r;
    s_query(d.model, &q, &r);
    CU_ASSERT(r.rc == 3 && r.well_formed && r.n == 0 && r.total == 0 && !r.has_next);
    s_reply_free(&r);
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
}

/* Small pages: every page is the next slice of the reference, total stays
 * right, next_cursor is nil exactly at the end; a cursor that names no
 * order, or one past the last, works too. */
static void test_paging(void)
{
    t_log_t lg;
    s_log_make(&lg, 1500, INT64_C(2) * 3600 * 1000000, L_MIXED_IDS);
    t_db_t d = {0};
    s_db_open(&d, "paging");
    CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, 0, lg.n_events), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
    t_row_t *ref = malloc((size_t)lg.n_orders * sizeof *ref);
    int bad = 0;
    const int64_t limits[] = {1, 2, 7, 50, 333};
    for (int i = 0; i < 40; i++) {
        t_ask_t a = {0};
        a.by_pos = i % 2;
        a.x = a.by_pos ? s_range(1, lg.n_events) : s_pick_us(&lg);
        a.mask = s_masks[s_range(0, N_MASKS - 1)];
        a.has_restaurant = i % 5 == 0;
        a.restaurant_id = s_range(1, 12);
        int64_t limit = limits[i % 5];
        if (limit == 1 && !a.has_restaurant)
            limit = 3; /* keep the run short */
        bad += !s_check(d.model, &lg, lg.n_events, &a, limit, ref);
    }
    CU_ASSERT_EQUAL(bad, 0);

    /* a cursor between ids, and after the last id */
    t_ask_t a = {.x = INT64_MAX};
    int n = s_reference(&lg, lg.n_events, &a, ref);
    CU_ASSERT_FATAL(n > 10);
    ordo_pquery_t q = s_ask_query(&a, 5);
    q.has_cursor = true;
    snprintf(q.cursor_order_id, sizeof q.cursor_order_id, "%s", ref[4].id);
    size_t l = strlen(q.cursor_order_id);
    if (l < ORDO_ORDER_ID_MAX) { /* ref[4] + "\x01": after ref[4], before ref[5] */
        q.cursor_order_id[l] = '\x01';
        q.cursor_order_id[l + 1] = '\0';
    }
    t_reply_t r;
    s_query(d.model, &q, &r);
    CU_ASSERT(r.rc == 3 && r.well_formed && r.total == n && r.n == 5 && r.has_next);
    if (r.n == 5)
        CU_ASSERT_STRING_EQUAL(r.orders[0].id, ref[5].id);
    s_reply_free(&r);
    memset(q.cursor_order_id, 0, sizeof q.cursor_order_id);
    memset(q.cursor_order_id, '~', ORDO_ORDER_ID_MAX); /* '~' sorts after the alphabet */
    s_query(d.model, &q, &r);
    CU_ASSERT(r.rc == 3 && r.well_formed && r.total == n && r.n == 0 && !r.has_next);
    s_reply_free(&r);
    /* exactly one page's worth left: nil */
    q.limit = 5;
    snprintf(q.cursor_order_id, sizeof q.cursor_order_id, "%s", ref[n - 6].id);
    s_query(d.model, &q, &r);
    CU_ASSERT(r.rc == 3 && r.n == 5 && !r.has_next);
    s_reply_free(&r);
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
}

/* The finished part paged both ways (stepping the end indexes, walking the
 * order_id index from the cursor) and by cost: every page, total and
 * next_cursor equal the reference, whatever the limit, filter, restaurant
 * or cursor; a walk cut short by its budget falls back to stepping,
 * right, and leaves the pending writes alone. */
static void test_walk_and_step_agree(void)
{
    t_log_t lg;
    s_log_make(&lg, 3000, INT64_C(3) * 3600 * 1000000, L_MIXED_IDS);
    t_db_t d = {0};
    s_db_open(&d, "walk");
    /* the first two thirds committed, the rest pending in the transaction */
    int split = lg.n_events * 2 / 3;
    CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, 0, split), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_commit(d.db), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d.db), 0);
    CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, split, lg.n_events), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
    t_row_t *ref = malloc((size_t)lg.n_orders * sizeof *ref);
    CU_ASSERT_PTR_NOT_NULL_FATAL(ref);
    const int64_t limits[] = {1, 3, 8, 64, 1000};
    const struct {
        int mode;
        int64_t budget;
    } modes[] = {{W_NEVER, 0}, {W_ALWAYS, 0}, {W_AUTO, 0}, {W_ALWAYS, 1}, {W_ALWAYS, 30000}};
    int bad = 0;
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
        ordo_model_timeline_walk(d.model, modes[m].mode, modes[m].budget);
        for (int i = 0; i < 24; i++) {
            t_ask_t a = {0};
            a.by_pos = i % 3 == 1;
            /* mostly late instants: many finished orders */
            a.x = a.by_pos ? s_range(lg.n_events / 2, lg.n_events + 1)
                           : (i % 4 ? lg.events[lg.n_events - 1].timestamp_us - s_range(0, 3600000000)
                                    : s_pick_us(&lg));
            a.mask = i % 5 == 0 ? 0 : s_masks[s_range(0, N_MASKS - 1)];
            a.has_restaurant = i % 3 == 2;
            a.restaurant_id = s_range(1, 13);
            int64_t limit = limits[i % 5];
            if (limit < 8 && !a.has_restaurant && a.mask == 0)
                limit = 8; /* keep the run short */
            bad += !s_check(d.model, &lg, lg.n_events, &a, limit, ref);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    /* a budget of one instruction: every walk gives up, answers stay right */
    ordo_model_timeline_walk(d.model, W_ALWAYS, 1);
    uint64_t before = ordo_model_timeline_walks_given_up(d.model);
    t_ask_t a = {.x = INT64_MAX, .mask = 1u << ORDO_STATUS_DELIVERED};
    CU_ASSERT(s_check(d.model, &lg, lg.n_events, &a, 1000, ref));
    CU_ASSERT(ordo_model_timeline_walks_given_up(d.model) > before);
    /* ... and the interrupted reads undid nothing: the pending rows commit */
    ordo_model_timeline_walk(d.model, W_AUTO, 0);
    CU_ASSERT_EQUAL(ordo_pstore_commit(d.db), 0);
    CU_ASSERT_EQUAL(ordo_pstore_begin(d.db), 0);
    sqlite3_stmt *st = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_prepare(d.db, "SELECT count(*) FROM timeline", &st), 0);
    CU_ASSERT_EQUAL(sqlite3_step(st), SQLITE_ROW);
    CU_ASSERT_EQUAL(sqlite3_column_int64(st, 0), lg.n_orders);
    sqlite3_finalize(st);
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
}

/* The walk reads the order_id index in order and stops at LIMIT: no sort
 * (temp b-tree) in its plan. */
static void test_walk_plan(void)
{
    t_db_t d = {0};
    s_db_open(&d, "plan");
    for (int p = 0; p < 2; p++) {
        char sql[1024];
        snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", ordo_model_timeline_walk_sql(p));
        sqlite3_stmt *st = NULL;
        CU_ASSERT_EQUAL_FATAL(ordo_pstore_prepare(d.db, sql, &st), 0);
        bool uses_index = false, sorts = false;
        int rows = 0;
        while (sqlite3_step(st) == SQLITE_ROW) {
            const char *detail = (const char *)sqlite3_column_text(st, 3);
            rows++;
            if (detail && strstr(detail, "USING INDEX sqlite_autoindex_timeline_1 (order_id>?)"))
                uses_index = true;
            if (detail && strstr(detail, "TEMP B-TREE"))
                sorts = true;
            if (rows == 1 && detail)
                printf(" [%s]", detail);
        }
        sqlite3_finalize(st);
        CU_ASSERT(uses_index);
        CU_ASSERT(!sorts);
        CU_ASSERT_EQUAL(rows, 1);
    }
    s_db_drop(&d);
}

static int64_t s_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_add_overflow(a, b, &r) ? (b > 0 ? INT64_MAX : INT64_MIN) : r;
}

/* Lives of every length the levels tell apart: 2^L - 1, 2^L and 2^L + 1
 * µs for L = 0..62, lives over 2^63 across the whole int64 range,
 * negative timestamps, an order open since INT64_MIN + 1 and one living
 * at INT64_MAX; checked one µs around every creation and end, and at
 * every position. */
static void test_extreme_lives(void)
{
    const int n = 63 * 3 + 4;
    t_log_t lg;
    s_log_alloc(&lg, n);
    int i = 0;
    for (int l = 0; l <= 62; l++) {
        for (int j = -1; j <= 1; j++) {
            t_order_t *o = &lg.orders[i];
            snprintf(o->id, sizeof o->id, "L%02d%+d", l, j);
            o->restaurant_id = l % 3;
            int64_t d = (int64_t)(UINT64_C(1) << l) + j;
            if (d < 0)
                d = 0;
            /* created within [-2^62, 0): the end stays below 2^62 + 2 */
            int64_t c = -(INT64_C(1) << 62) + (int64_t)(s_rand() % (UINT64_C(1) << 62));
            bool cancel = (l + j) % 2 != 0;
            o->n = cancel ? (int)s_range(2, 4) : 6;
            for (int k = 0; k < o->n; k++) {
                o->type[k] = cancel && k == o->n - 1
                                 ? ORDO_EVT_ORDER_CANCELLED
                                 : (ordo_event_type_t)(ORDO_EVT_ORDER_CREATED + k);
                /* steps in between at random, the last exactly at c + d */
                o->us[k] = k == 0 ? c : k == o->n - 1 ? c + d : c + d / (o->n - 1) * k;
            }
            i++;
        }
    }
    struct {
        const char *id;
        int n;
        int64_t c, end;
    } edge[] = {
        {"all-of-time", 2, INT64_MIN + 3, INT64_MAX - 3}, /* a life over 2^63 */
        {"open-forever", 5, INT64_MIN + 1, 0},            /* never finishes */
        {"at-the-end", 6, INT64_MAX, INT64_MAX},          /* everything at INT64_MAX */
        {"half-of-time", 6, -(INT64_C(1) << 62) - 7, (INT64_C(1) << 62) + 9},
    };
    for (size_t e = 0; e < sizeof edge / sizeof edge[0]; e++, i++) {
        t_order_t *o = &lg.orders[i];
        snprintf(o->id, sizeof o->id, "%s", edge[e].id);
        o->restaurant_id = 1;
        o->n = edge[e].n;
        for (int k = 0; k < o->n; k++) {
            o->type[k] = o->n == 2 && k == 1 ? ORDO_EVT_ORDER_CANCELLED
                                             : (ordo_event_type_t)(ORDO_EVT_ORDER_CREATED + k);
            o->us[k] = k == 0                ? edge[e].c
                       : k == 5 || o->n == 2 ? edge[e].end
                                             : s_sat_add(edge[e].c, k);
        }
    }
    CU_ASSERT_EQUAL_FATAL(i, n);
    s_log_index(&lg);
    t_db_t d = {0};
    s_db_open(&d, "extreme");
    CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, 0, lg.n_events), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), 1); /* open-forever */
    t_row_t *ref = malloc((size_t)n * sizeof *ref);
    int bad = 0;
    for (int o = 0; o < n; o++) {
        const t_order_t *od = &lg.orders[o];
        const int64_t keys[] = {od->us[0], od->us[od->n - 1]};
        for (int k = 0; k < 2; k++) {
            for (int64_t delta = -1; delta <= 1; delta++) {
                t_ask_t a = {.x = s_sat_add(keys[k], delta), .mask = (o % 4 == 0) ? 0x7e : 0};
                bad += !s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref);
            }
        }
    }
    for (int64_t p = 0; p <= lg.n_events + 1; p++) {
        t_ask_t a = {.x = p, .by_pos = true};
        bad += !s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref);
    }
    for (int64_t x = INT64_MIN; x != INT64_MAX; x = x == INT64_MIN ? 0 : INT64_MAX) {
        t_ask_t a = {.x = x, .has_restaurant = true, .restaurant_id = 1};
        bad += !s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref);
    }
    CU_ASSERT_EQUAL(bad, 0);
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
}

static void s_pack_cstr(msgpack_packer *pk, const char *str)
{
    msgpack_pack_str(pk, strlen(str));
    msgpack_pack_str_body(pk, str, strlen(str));
}

/* The same listing, asked as clients ask: bodies decoded by the projector's
 * own decoder, each page with the next_cursor the last one gave back. */
static void test_wire_paging(void)
{
    t_log_t lg;
    s_log_make(&lg, 800, INT64_C(3600) * 1000000, L_MIXED_IDS);
    t_db_t d = {0};
    s_db_open(&d, "wire");
    CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, 0, lg.n_events), 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d.model), 0);
    t_row_t *ref = malloc((size_t)lg.n_orders * sizeof *ref);
    for (int round = 0; round < 4; round++) {
        t_ask_t a = {.x = round == 3 ? INT64_MAX : s_pick_us(&lg),
                     .by_pos = round == 2,
                     .mask = round == 1 ? 0
                                        : 1u << ORDO_STATUS_CREATED | 1u << ORDO_STATUS_READY |
                                              1u << ORDO_STATUS_DELIVERED};
        if (a.by_pos)
            a.x = lg.n_events / 2;
        int n = s_reference(&lg, lg.n_events, &a, ref);
        char cursor[ORDO_PCURSOR_MAX] = "";
        int at = 0, pages = 0;
        bool more = true;
        while (more && pages <= n / 9 + 2) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 3 + (a.mask != 0) + (cursor[0] != '\0'));
            s_pack_cstr(&pk, "type");
            s_pack_cstr(&pk, "OrdersAsOf");
            s_pack_cstr(&pk, a.by_pos ? "at_position" : "at_us");
            msgpack_pack_int64(&pk, a.x);
            s_pack_cstr(&pk, "limit");
            msgpack_pack_int64(&pk, 9);
            if (a.mask) {
                s_pack_cstr(&pk, "status");
                msgpack_pack_array(&pk, 3);
                s_pack_cstr(&pk, "Created");
                s_pack_cstr(&pk, "Ready");
                s_pack_cstr(&pk, "Delivered");
            }
            if (cursor[0]) {
                s_pack_cstr(&pk, "cursor");
                s_pack_cstr(&pk, cursor);
            }
            ordo_pquery_t q;
            ordo_perror_t err;
            memset(&err, 0, sizeof err);
            int rc = ordo_pquery_decode(sb.data, sb.size, &q, &err);
            msgpack_sbuffer_destroy(&sb);
            CU_ASSERT_EQUAL_FATAL(rc, 0);
            CU_ASSERT_EQUAL(q.status_mask, a.mask);
            t_reply_t r;
            s_query(d.model, &q, &r);
            CU_ASSERT_FATAL(r.rc == 3 && r.well_formed);
            CU_ASSERT_EQUAL(r.total, n);
            for (size_t i = 0; i < r.n && at < n; i++, at++) {
                CU_ASSERT_STRING_EQUAL(r.orders[i].id, ref[at].id);
                CU_ASSERT_STRING_EQUAL(r.orders[i].status, ordo_status_name(ref[at].status));
            }
            more = r.has_next;
            snprintf(cursor, sizeof cursor, "%s", r.next);
            s_reply_free(&r);
            pages++;
        }
        CU_ASSERT_FALSE(more);
        CU_ASSERT_EQUAL(at, n);
        CU_ASSERT_EQUAL(pages, n ? (n + 8) / 9 : 1);
    }
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
}

static ordo_client_event_t s_ev(uint64_t pos, const char *id, uint32_t version, ordo_event_type_t t,
                                int64_t us, int64_t restaurant)
{
    ordo_client_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.position = pos;
    ev.order_id = id;
    ev.version = version;
    ev.type = ordo_event_type_name(t);
    ev.timestamp_us = us;
    ev.restaurant_id = restaurant;
    return ev;
}

/* One query's orders, as "id:Status:version:since" joined by spaces. */
static void s_listing(void *model, const t_ask_t *a, char *out, size_t size)
{
    ordo_pquery_t q = s_ask_query(a, ORDO_PQ_LIMIT_MAX);
    t_reply_t r;
    s_query(model, &q, &r);
    out[0] = '\0';
    size_t at = 0;
    if (r.rc != 3 || !r.well_formed) {
        snprintf(out, size, "error");
    } else {
        for (size_t i = 0; i < r.n; i++)
            at += (size_t)snprintf(out + at, size - at, "%s%s:%s:%" PRId64 ":%" PRId64,
                                   i ? " " : "", r.orders[i].id, r.orders[i].status,
                                   r.orders[i].version, r.orders[i].since_us);
        CU_ASSERT_EQUAL(r.total, (int64_t)r.n);
    }
    s_reply_free(&r);
}

/* Hand-built: events sharing one timestamp, within one order and across
 * orders; "timestamp_us <= at_us" takes all of them, positions split them. */
static void test_equal_timestamps(void)
{
    t_db_t d = {0};
    s_db_open(&d, "equal");
    const int64_t t = T0;
    ordo_client_event_t evs[] = {
        s_ev(1, "b", 1, ORDO_EVT_ORDER_CREATED, t, 1),
        s_ev(2, "a", 1, ORDO_EVT_ORDER_CREATED, t, 2),
        s_ev(3, "b", 2, ORDO_EVT_ORDER_CONFIRMED, t, 1),
        s_ev(4, "b", 3, ORDO_EVT_ORDER_CANCELLED, t, 0),
        s_ev(5, "a", 2, ORDO_EVT_ORDER_CONFIRMED, t, 2),
        s_ev(6, "c", 1, ORDO_EVT_ORDER_CREATED, t + 1, 1),
        s_ev(7, "a", 3, ORDO_EVT_ORDER_PREPARING, t + 1, 0),
        s_ev(8, "a", 4, ORDO_EVT_ORDER_READY, t + 1, 0),
        s_ev(9, "a", 5, ORDO_EVT_ORDER_OUT_FOR_DELIVERY, t + 1, 0),
        s_ev(10, "a", 6, ORDO_EVT_ORDER_DELIVERED, t + 1, 0),
    };
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        CU_ASSERT_EQUAL(M->apply(d.model, &evs[i]), 0);
    CU_ASSERT_EQUAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), 1); /* c */
    char buf[512];
    struct {
        t_ask_t a;
        const char *want;
    } cases[] = {
        {{.x = t - 1}, ""},
        {{.x = t}, "a:Confirmed:2:1700000000000000 b:Cancelled:3:1700000000000000"},
        {{.x = t + 1},
         "a:Delivered:6:1700000000000001 b:Cancelled:3:1700000000000000"
         " c:Created:1:1700000000000001"},
        {{.x = INT64_MAX, .mask = 1u << ORDO_STATUS_CREATED}, "c:Created:1:1700000000000001"},
        {{.x = t, .mask = 1u << ORDO_STATUS_CANCELLED}, "b:Cancelled:3:1700000000000000"},
        {{.x = t, .mask = 1u << ORDO_STATUS_DELIVERED}, ""},
        {{.x = t, .has_restaurant = true, .restaurant_id = 2}, "a:Confirmed:2:1700000000000000"},
        {{.x = 0, .by_pos = true}, ""},
        {{.x = 1, .by_pos = true}, "b:Created:1:1700000000000000"},
        {{.x = 2, .by_pos = true}, "a:Created:1:1700000000000000 b:Created:1:1700000000000000"},
        {{.x = 3, .by_pos = true}, "a:Created:1:1700000000000000 b:Confirmed:2:1700000000000000"},
        {{.x = 4, .by_pos = true}, "a:Created:1:1700000000000000 b:Cancelled:3:1700000000000000"},
        {{.x = 8, .by_pos = true},
         "a:Ready:4:1700000000000001 b:Cancelled:3:1700000000000000"
         " c:Created:1:1700000000000001"},
        {{.x = 9, .by_pos = true, .mask = 1u << ORDO_STATUS_OUT_FOR_DELIVERY},
         "a:OutForDelivery:5:1700000000000001"},
        {{.x = 10, .by_pos = true, .mask = 1u << ORDO_STATUS_DELIVERED},
         "a:Delivered:6:1700000000000001"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_listing(d.model, &cases[i].a, buf, sizeof buf);
        if (strcmp(buf, cases[i].want) != 0)
            printf("\n  case %zu: got \"%s\", want \"%s\"", i, buf, cases[i].want);
        CU_ASSERT_STRING_EQUAL(buf, cases[i].want);
    }
    s_db_drop(&d);
}

/* Every row of the table, in key order, as text: two models agree when
 * their dumps do. */
static char *s_dump(sqlite3 *db)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT * FROM timeline ORDER BY order_id", -1, &st, NULL))
        return NULL;
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    while (out && sqlite3_step(st) == SQLITE_ROW) {
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            if (cap - len < 256) {
                char *bigger = realloc(out, cap * 2);
                if (!bigger) {
                    free(out);
                    out = NULL;
                    break;
                }
                out = bigger;
                cap *= 2;
            }
            const unsigned char *v = sqlite3_column_text(st, c);
            len += (size_t)snprintf(out + len, cap - len, "%d:%s%c", sqlite3_column_type(st, c),
                                    v ? (const char *)v : "NULL", c ? ',' : '|');
        }
        if (out)
            out[len++] = '\n';
    }
    if (out)
        out[len] = '\0';
    sqlite3_finalize(st);
    return out;
}

/* Restarts from committed states (some with an uncommitted tail lost, as
 * after kill -9) end in the very table of a run that never stopped. */
static void test_restart(void)
{
    t_log_t lg;
    s_log_make(&lg, 2500, INT64_C(3) * 3600 * 1000000, L_MIXED_IDS);
    t_db_t ref = {0}, d = {0};
    s_db_open(&ref, "straight");
    CU_ASSERT_EQUAL(s_apply_range(ref.model, &lg, 0, lg.n_events), 0);
    CU_ASSERT_EQUAL(M->flush(ref.model), 0);

    /* the restarted one goes without query indexes until the end, as a
     * generation catching up does, restarts included */
    memcpy(d.dir, ref.dir, sizeof d.dir);
    s_db_open_unindexed(&d, "restarted");
    int at = 0;
    for (int round = 0; at < lg.n_events; round++) {
        int cut = at + (int)s_range(1, lg.n_events / 4);
        if (cut > lg.n_events)
            cut = lg.n_events;
        CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, at, cut), 0);
        /* flushes in between change nothing in what is saved */
        if (round % 2)
            CU_ASSERT_EQUAL(M->flush(d.model), 0);
        int lost = round % 3 == 1 && cut < lg.n_events ? (int)s_range(1, 500) : 0;
        if (cut + lost > lg.n_events)
            lost = lg.n_events - cut;
        CU_ASSERT_EQUAL(M->flush(d.model), 0);
        CU_ASSERT_EQUAL(ordo_pstore_commit(d.db), 0);
        CU_ASSERT_EQUAL(ordo_pstore_begin(d.db), 0);
        if (lost) { /* applied and flushed, never committed: gone at restart */
            CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, cut, cut + lost), 0);
            CU_ASSERT_EQUAL(M->flush(d.model), 0);
        }
        s_db_close(&d, false);
        d.db = ordo_pstore_open(d.path, 0);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d.db);
        CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d.db), 0);
        d.model = M->open(d.db);
        CU_ASSERT_PTR_NOT_NULL_FATAL(d.model);
        CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), s_open_orders(&lg, cut));
        at = cut;
    }
    CU_ASSERT_EQUAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), ordo_model_timeline_resident(ref.model));
    char *a = s_dump(ref.db), *b = s_dump(d.db);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    if (a && b) {
        CU_ASSERT(strlen(a) > 1000);
        CU_ASSERT_STRING_EQUAL(a, b);
    }
    free(a);
    free(b);
    CU_ASSERT_EQUAL(ordo_model_build_indexes(M, d.db), 0);
    s_check_many(d.model, &lg, lg.n_events, 10, ORDO_PQ_LIMIT_MAX);
    s_db_close(&d, false);
    s_db_drop(&ref); /* the folder they share */
    s_log_free(&lg);
}

/* Memory: RAM holds the open orders only; once every order has finished,
 * nothing (and a big peak shrinks back). */
static void test_memory(void)
{
    t_log_t lg;
    s_log_make(&lg, 60000, INT64_C(3600) * 1000000, L_FINISH_ALL);
    t_db_t d = {0};
    s_db_open(&d, "memory");
    size_t peak = 0;
    for (int at = 0; at < lg.n_events;) {
        int next = at + 20000 < lg.n_events ? at + 20000 : lg.n_events;
        CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, at, next), 0);
        at = next;
        CU_ASSERT_EQUAL(M->flush(d.model), 0);
        size_t open = s_open_orders(&lg, at);
        CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), open);
        if (open > peak)
            peak = open;
    }
    CU_ASSERT(peak > 1000);
    CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), 0);
    /* and it all reads back: every order finished, at the end */
    t_row_t *ref = malloc((size_t)lg.n_orders * sizeof *ref);
    t_ask_t a = {.x = INT64_MAX};
    CU_ASSERT(s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref));
    free(ref);
    /* reopening loads nothing */
    M->close(&d.model);
    d.model = M->open(d.db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.model);
    CU_ASSERT_EQUAL(ordo_model_timeline_resident(d.model), 0);
    s_db_drop(&d);
    s_log_free(&lg);
}

/* Events the log could never hold fail apply (the generation then fails,
 * and stays failed); a type this version does not know is skipped. */
static void test_bad_events(void)
{
    const int64_t t = T0;
    ordo_client_event_t created = s_ev(1, "x", 1, ORDO_EVT_ORDER_CREATED, t, 1);
    struct {
        ordo_client_event_t ev;
        const char *what;
    } bad[] = {
        {s_ev(2, "nobody", 2, ORDO_EVT_ORDER_CONFIRMED, t, 1), "unknown order"},
        {s_ev(2, "x", 1, ORDO_EVT_ORDER_CREATED, t, 1), "created twice"},
        {s_ev(2, "x", 3, ORDO_EVT_ORDER_CONFIRMED, t, 1), "version skips"},
        {s_ev(2, "x", 2, ORDO_EVT_ORDER_READY, t, 1), "transition not allowed"},
        {s_ev(2, "x", 2, ORDO_EVT_ORDER_CONFIRMED, t - 1, 1), "time goes back"},
        {s_ev(1, "x", 2, ORDO_EVT_ORDER_CONFIRMED, t, 1), "position repeats"},
        {s_ev(2, "", 1, ORDO_EVT_ORDER_CREATED, t, 1), "empty id"},
        {s_ev(0, "y", 1, ORDO_EVT_ORDER_CREATED, t, 1), "position 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t_db_t d = {0};
        s_db_open(&d, "bad");
        CU_ASSERT_EQUAL(M->apply(d.model, &created), 0);
        if (M->apply(d.model, &bad[i].ev) != -1)
            printf("\n  accepted: %s", bad[i].what);
        CU_ASSERT_EQUAL(M->apply(d.model, &bad[i].ev), -1);
        /* sticky */
        ordo_client_event_t fine = s_ev(3, "x", 2, ORDO_EVT_ORDER_CONFIRMED, t, 1);
        CU_ASSERT_EQUAL(M->apply(d.model, &fine), -1);
        CU_ASSERT_EQUAL(M->flush(d.model), -1);
        t_ask_t a = {.x = INT64_MAX};
        ordo_pquery_t q = s_ask_query(&a, 10);
        t_reply_t r;
        s_query(d.model, &q, &r);
        CU_ASSERT_EQUAL(r.rc, -1);
        CU_ASSERT_STRING_EQUAL(r.err.code ? r.err.code : "", "unavailable");
        s_reply_free(&r);
        s_db_drop(&d);
    }
    /* an unknown type, and a query type the model does not serve */
    t_db_t d = {0};
    s_db_open(&d, "unknown");
    CU_ASSERT_EQUAL(M->apply(d.model, &created), 0);
    ordo_client_event_t future = created;
    future.position = 2;
    future.type = "OrderTeleported";
    CU_ASSERT_EQUAL(M->apply(d.model, &future), 0);
    CU_ASSERT_EQUAL(M->flush(d.model), 0);
    char buf[128];
    t_ask_t a = {.x = INT64_MAX};
    s_listing(d.model, &a, buf, sizeof buf);
    CU_ASSERT_STRING_EQUAL(buf, "x:Created:1:1700000000000000");
    ordo_pquery_t q = s_ask_query(&a, 10);
    q.type = ORDO_PQ_LIST_ORDERS;
    t_reply_t r;
    s_query(d.model, &q, &r);
    CU_ASSERT_EQUAL(r.rc, -1);
    s_reply_free(&r);
    s_db_drop(&d);
}

/* Rows damaged in the file make the query (or open) fail, never crash. */
static void test_damaged_rows(void)
{
    static const char *const damage[] = {
        "UPDATE timeline SET end_status = 9 WHERE order_id = 'd'",
        "UPDATE timeline SET confirmed_us = NULL WHERE order_id = 'd'",
        "UPDATE timeline SET preparing_us = NULL, preparing_pos = NULL WHERE order_id = 'd'",
        "UPDATE timeline SET lvl_t = 5 WHERE order_id = 'd'",
        "UPDATE timeline SET ready_pos = 2 WHERE order_id = 'd'",
        "UPDATE timeline SET end_status = NULL WHERE order_id = 'd'",
        "UPDATE timeline SET order_id = '' WHERE order_id = 'd'",
        "UPDATE timeline SET ofd_us = 1 WHERE order_id = 'd'",
    };
    const int64_t t = T0;
    for (size_t i = 0; i < 2 * (sizeof damage / sizeof damage[0]); i++) {
        t_db_t d = {0};
        s_db_open(&d, "damaged");
        /* each damage with the finished part stepped (small), then walked */
        bool walked = i >= sizeof damage / sizeof damage[0];
        ordo_model_timeline_walk(d.model, walked ? W_ALWAYS : W_AUTO, 0);
        for (uint32_t v = 1; v <= 6; v++) {
            ordo_client_event_t ev = s_ev(v, "d", v, (ordo_event_type_t)v, t + 1000 * v, 3);
            CU_ASSERT_EQUAL(M->apply(d.model, &ev), 0);
        }
        ordo_client_event_t o = s_ev(7, "open", 1, ORDO_EVT_ORDER_CREATED, t + 7000, 3);
        CU_ASSERT_EQUAL(M->apply(d.model, &o), 0);
        CU_ASSERT_EQUAL(M->flush(d.model), 0);
        CU_ASSERT_EQUAL(ordo_pstore_exec(d.db, damage[i % (sizeof damage / sizeof damage[0])]), 0);
        /* at a time when "d" was alive (level scan), then when it was
         * finished (terminal scan: a row on the page is read again) */
        t_ask_t alive = {.x = t + 3500};
        ordo_pquery_t q = s_ask_query(&alive, 10);
        t_reply_t r;
        s_query(d.model, &q, &r);
        t_ask_t later = {.x = INT64_MAX, .mask = 1u << ORDO_STATUS_DELIVERED};
        ordo_pquery_t q2 = s_ask_query(&later, 10);
        t_reply_t r2;
        s_query(d.model, &q2, &r2);
        /* the damage shows in at least one of them; an answer is never wrong */
        bool failed = r.rc == -1 || r2.rc == -1;
        if (!failed)
            printf("\n  damage not seen (%s): %s", walked ? "walked" : "stepped",
                   damage[i % (sizeof damage / sizeof damage[0])]);
        CU_ASSERT(failed);
        if (r.rc == -1)
            CU_ASSERT_STRING_EQUAL(r.err.code, "unavailable");
        if (r2.rc == -1)
            CU_ASSERT_STRING_EQUAL(r2.err.code, "unavailable");
        s_reply_free(&r);
        s_reply_free(&r2);
        s_db_drop(&d);
    }
    /* a damaged open order: open() refuses the table */
    t_db_t d = {0};
    s_db_open(&d, "damaged_open");
    ordo_client_event_t c = s_ev(1, "o", 1, ORDO_EVT_ORDER_CREATED, t, 3);
    ordo_client_event_t f = s_ev(2, "o", 2, ORDO_EVT_ORDER_CONFIRMED, t + 5, 3);
    CU_ASSERT_EQUAL(M->apply(d.model, &c), 0);
    CU_ASSERT_EQUAL(M->apply(d.model, &f), 0);
    CU_ASSERT_EQUAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL(ordo_pstore_exec(d.db, "UPDATE timeline SET confirmed_pos = NULL"), 0);
    M->close(&d.model);
    d.model = M->open(d.db);
    CU_ASSERT_PTR_NULL(d.model);
    s_db_drop(&d);
}

/* A database that fails under a query: unavailable. */
static void test_database_failure(void)
{
    t_db_t d = {0};
    s_db_open(&d, "failing");
    ordo_client_event_t c = s_ev(1, "o", 1, ORDO_EVT_ORDER_CREATED, T0, 3);
    CU_ASSERT_EQUAL(M->apply(d.model, &c), 0);
    CU_ASSERT_EQUAL(M->flush(d.model), 0);
    CU_ASSERT_EQUAL(ordo_pstore_exec(d.db, "DROP TABLE timeline"), 0);
    const t_ask_t asks[] = {{.x = INT64_MAX},
                            {.x = 5, .by_pos = true, .mask = 1u << ORDO_STATUS_CANCELLED},
                            {.x = 5, .has_restaurant = true, .restaurant_id = 3}};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        ordo_pquery_t q = s_ask_query(&asks[i], 10);
        t_reply_t r;
        s_query(d.model, &q, &r);
        CU_ASSERT_EQUAL(r.rc, -1);
        if (r.rc == -1)
            CU_ASSERT_STRING_EQUAL(r.err.code, "unavailable");
        s_reply_free(&r);
    }
    /* a write into the missing table fails the flush */
    ordo_client_event_t f = s_ev(2, "o", 2, ORDO_EVT_ORDER_CONFIRMED, T0 + 1, 3);
    CU_ASSERT_EQUAL(M->apply(d.model, &f), 0);
    CU_ASSERT_EQUAL(M->flush(d.model), -1);
    s_db_drop(&d);
}

/* 100k orders over a day: the apply rate, flush and query times (printed),
 * once with the wild lives above (about 20k orders never finish, others
 * live for hours: tens of thousands alive at any instant) and once with
 * steps of 30 s to 20 min (a few thousand alive). */
static void s_performance(int shape, const char *label)
{
    const int n = 100000;
    t_log_t lg;
    s_log_make(&lg, n, INT64_C(24) * 3600 * 1000000, shape);
    t_db_t d = {0};
    s_db_open(&d, "perf");
    uint64_t apply_ns = 0, flush_ns = 0;
    for (int at = 0; at < lg.n_events;) {
        int next = at + 10000 < lg.n_events ? at + 10000 : lg.n_events;
        uint64_t t0 = ordo_mono_ns();
        CU_ASSERT_EQUAL(s_apply_range(d.model, &lg, at, next), 0);
        uint64_t t1 = ordo_mono_ns();
        CU_ASSERT_EQUAL(M->flush(d.model), 0);
        uint64_t t2 = ordo_mono_ns();
        apply_ns += t1 - t0;
        flush_ns += t2 - t1;
        at = next;
    }
    CU_ASSERT_EQUAL(ordo_pstore_commit(d.db), 0);
    CU_ASSERT_EQUAL(ordo_pstore_begin(d.db), 0);
    printf("\n  %s: %d orders, %d events: apply %.0f ns/event (%.1f M events/s),"
           " flush every 10k events %.2f us/event, %zu open at the end",
           label, n, lg.n_events, (double)apply_ns / lg.n_events,
           lg.n_events * 1e3 / (double)apply_ns, (double)flush_ns / lg.n_events / 1e3,
           ordo_model_timeline_resident(d.model));
    struct {
        const char *what;
        uint32_t mask;
        bool restaurant;
        bool by_pos;
    } kinds[] = {
        {"any status", 0, false, false},
        {"OutForDelivery", 1u << ORDO_STATUS_OUT_FOR_DELIVERY, false, false},
        {"OutForDelivery, one restaurant", 1u << ORDO_STATUS_OUT_FOR_DELIVERY, true, false},
        {"Delivered", 1u << ORDO_STATUS_DELIVERED, false, false},
        {"Delivered, one restaurant", 1u << ORDO_STATUS_DELIVERED, true, false},
        {"any status, at_position", 0, false, true},
    };
    t_row_t *ref = malloc((size_t)n * sizeof *ref);
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        uint64_t ns = 0;
        int64_t total = 0;
        const int reps = 40;
        for (int i = 0; i < reps; i++) {
            t_ask_t a = {.mask = kinds[k].mask,
                         .has_restaurant = kinds[k].restaurant,
                         .restaurant_id = s_range(1, 12),
                         .by_pos = kinds[k].by_pos};
            a.x = a.by_pos ? s_range(1, lg.n_events) : s_pick_us(&lg);
            ordo_pquery_t q = s_ask_query(&a, 100);
            t_reply_t r;
            uint64_t t0 = ordo_mono_ns();
            s_query(d.model, &q, &r);
            ns += ordo_mono_ns() - t0;
            CU_ASSERT(r.rc == 3);
            total += r.total;
            s_reply_free(&r);
            if (i == 0) /* and the answers are right */
                CU_ASSERT(s_check(d.model, &lg, lg.n_events, &a, ORDO_PQ_LIMIT_MAX, ref));
        }
        printf("\n    OrdersAsOf %-32s limit 100: %7.2f ms (mean total %" PRId64 ")", kinds[k].what,
               (double)ns / reps / 1e6, total / reps);
    }
    free(ref);
    s_db_drop(&d);
    s_log_free(&lg);
    printf("\n");
}

static void test_performance(void)
{
    s_performance(0, "wild lives");
    s_performance(L_REALISTIC, "steps of 30 s to 20 min");
}

/* ---- a realistic size (opt-in) ------------------------------------------ */

/* One order of the big log while it lives: its next event. */
typedef struct {
    int64_t next_us;
    uint32_t seq; /* ties: creation order */
    uint8_t k, n; /* next event, events in all */
    bool cancel;
    int64_t restaurant_id;
    char id[24];
} t_big_t;

static bool s_big_less(const t_big_t *a, const t_big_t *b)
{
    return a->next_us != b->next_us ? a->next_us < b->next_us : a->seq < b->seq;
}

static void s_big_push(t_big_t *h, size_t *n, const t_big_t *o)
{
    size_t i = (*n)++;
    h[i] = *o;
    while (i > 0 && s_big_less(&h[i], &h[(i - 1) / 2])) {
        t_big_t t = h[i];
        h[i] = h[(i - 1) / 2];
        h[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static void s_big_pop(t_big_t *h, size_t *n)
{
    h[0] = h[--*n];
    for (size_t i = 0;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < *n && s_big_less(&h[l], &h[m]))
            m = l;
        if (r < *n && s_big_less(&h[r], &h[m]))
            m = r;
        if (m == i)
            break;
        t_big_t t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

#define BIG_ORDERS 1500000
#define BIG_RESTAURANTS 300
#define BIG_DAY (INT64_C(24) * 3600 * 1000000)

/* Builds the big log into the model: BIG_ORDERS orders created evenly over
 * a day, 85% delivered in 6 events, 15% cancelled after 1..3, steps of
 * 30 s to 20 min; flushed every 10k events, committed every 200k. */
static int64_t s_big_build(t_db_t *d)
{
    t_big_t *h = malloc(sizeof *h * 400000);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    size_t n = 0;
    uint32_t created = 0;
    uint64_t pos = 0;
    int bad = 0;
    for (;;) {
        int64_t next_new = created < BIG_ORDERS
                               ? T0 + (int64_t)created * (BIG_DAY / BIG_ORDERS) +
                                     s_range(0, BIG_DAY / BIG_ORDERS - 1)
                               : INT64_MAX;
        if (n == 0 && created == BIG_ORDERS)
            break;
        if (created < BIG_ORDERS && (n == 0 || next_new <= h[0].next_us)) {
            t_big_t o = {.next_us = next_new, .seq = created, .k = 0};
            snprintf(o.id, sizeof o.id, "o%08" PRIx64 "-%" PRIu32, s_rand() & 0xffffffffu,
                     created);
            o.restaurant_id = s_range(1, BIG_RESTAURANTS);
            if (s_range(0, 99) < 15) {
                o.cancel = true;
                o.n = (uint8_t)(s_range(1, 3) + 1);
            } else {
                o.n = 6;
            }
            created++;
            CU_ASSERT_FATAL(n < 400000);
            s_big_push(h, &n, &o);
            continue;
        }
        t_big_t *o = &h[0];
        ordo_event_type_t t = o->cancel && o->k == o->n - 1
                                  ? ORDO_EVT_ORDER_CANCELLED
                                  : (ordo_event_type_t)(ORDO_EVT_ORDER_CREATED + o->k);
        ordo_client_event_t ev = s_ev(++pos, o->id, o->k + 1u, t, o->next_us,
                                      o->k <= 1 ? o->restaurant_id : 0);
        ev.schema = 1;
        if (t == ORDO_EVT_ORDER_CANCELLED)
            ev.previous_status = ordo_status_name((ordo_status_t)o->k);
        bad += M->apply(d->model, &ev) != 0;
        if (pos % 10000 == 0)
            CU_ASSERT_EQUAL_FATAL(M->flush(d->model), 0);
        if (pos % 200000 == 0) {
            CU_ASSERT_EQUAL_FATAL(ordo_pstore_commit(d->db), 0);
            CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d->db), 0);
        }
        if (++o->k == o->n) {
            s_big_pop(h, &n);
        } else {
            t_big_t moved = *o;
            moved.next_us += s_range(30000000, 1200000000);
            s_big_pop(h, &n);
            s_big_push(h, &n, &moved);
        }
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_EQUAL_FATAL(M->flush(d->model), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_commit(d->db), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d->db), 0);
    free(h);
    return (int64_t)pos;
}

/* Set ORDO_TL_BIG to a file: the first run builds BIG_ORDERS orders into
 * it (a few minutes), later runs reuse it. Prints OrdersAsOf times at a
 * recent instant, first and middle page. */
static void test_big(void)
{
    const char *path = getenv("ORDO_TL_BIG");
    if (!path || !*path) {
        printf(" skipped (set ORDO_TL_BIG=/some/file.db)");
        return;
    }
    t_db_t d = {0};
    FILE *f = fopen(path, "rb");
    bool exists = f != NULL;
    if (f)
        fclose(f);
    d.db = ordo_pstore_open(path, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.db);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_begin(d.db), 0);
    d.model = M->open(d.db);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d.model);
    if (!exists) {
        uint64_t t0 = ordo_mono_ns();
        int64_t events = s_big_build(&d);
        printf("\n  built %d orders, %" PRId64 " events in %.1f s", BIG_ORDERS, events,
               (double)(ordo_mono_ns() - t0) / 1e9);
    }
    CU_ASSERT_EQUAL_FATAL(ordo_model_build_indexes(M, d.db), 0);
    const int64_t x = T0 + BIG_DAY - INT64_C(1800) * 1000000; /* 23:30 */
    struct {
        const char *what;
        uint32_t mask;
    } kinds[] = {
        {"any status", 0},
        {"Delivered", 1u << ORDO_STATUS_DELIVERED},
        {"Cancelled", 1u << ORDO_STATUS_CANCELLED},
        {"OutForDelivery", 1u << ORDO_STATUS_OUT_FOR_DELIVERY},
        {"OutForDelivery|Delivered", 1u << ORDO_STATUS_OUT_FOR_DELIVERY | 1u << ORDO_STATUS_DELIVERED},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        for (int rest = 0; rest < 2; rest++) {
            for (int page = 0; page < 2; page++) {
                t_ask_t a = {.x = x, .mask = kinds[k].mask, .has_restaurant = rest,
                             .restaurant_id = 77};
                ordo_pquery_t q = s_ask_query(&a, 100);
                if (page) {
                    q.has_cursor = true;
                    snprintf(q.cursor_order_id, sizeof q.cursor_order_id, "o80000000");
                }
                const int reps = 3;
                uint64_t best = UINT64_MAX, sum = 0;
                t_reply_t r = {0};
                for (int i = 0; i < reps; i++) {
                    s_reply_free(&r);
                    uint64_t t0 = ordo_mono_ns();
                    s_query(d.model, &q, &r);
                    uint64_t ns = ordo_mono_ns() - t0;
                    sum += ns;
                    best = ns < best ? ns : best;
                    CU_ASSERT(r.rc == 3 && r.well_formed);
                }
                /* the same page, total and cursor when stepped instead */
                ordo_model_timeline_walk(d.model, W_NEVER, 0);
                t_reply_t r2;
                uint64_t t1 = ordo_mono_ns();
                s_query(d.model, &q, &r2);
                double step_ms = (double)(ordo_mono_ns() - t1) / 1e6;
                ordo_model_timeline_walk(d.model, W_AUTO, 0);
                bool same = r2.rc == 3 && r2.total == r.total && r2.n == r.n &&
                            r2.has_next == r.has_next && strcmp(r2.next, r.next) == 0;
                for (size_t i = 0; same && i < r.n; i++)
                    same = strcmp(r.orders[i].id, r2.orders[i].id) == 0 &&
                           strcmp(r.orders[i].status, r2.orders[i].status) == 0 &&
                           r.orders[i].version == r2.orders[i].version &&
                           r.orders[i].since_us == r2.orders[i].since_us;
                CU_ASSERT(same);
                s_reply_free(&r2);
                printf("\n    %-26s %-14s %-6s: %8.2f ms (best %8.2f; stepped %8.2f) total %7" PRId64
                       " n %zu first %s next %s",
                       kinds[k].what, rest ? "restaurant 77" : "all", page ? "middle" : "first",
                       (double)sum / reps / 1e6, (double)best / 1e6, step_ms, r.total, r.n,
                       r.n ? r.orders[0].id : "-", r.has_next ? "yes" : "nil");
                s_reply_free(&r);
            }
        }
    }
    /* calibration: a walked row (matching none: the whole index) against
     * a stepped end-index entry, in time and VM instructions */
    sqlite3_stmt *w = NULL, *e = NULL;
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_prepare(d.db, ordo_model_timeline_walk_sql(false), &w), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_pstore_prepare(d.db,
                                              "SELECT order_id, id FROM timeline INDEXED BY"
                                              " timeline_end_t WHERE end_status = 6",
                                              &e),
                          0);
    sqlite3_bind_text(w, 1, "", 0, SQLITE_STATIC);
    sqlite3_bind_int(w, 2, 6);
    sqlite3_bind_int(w, 3, 7);
    sqlite3_bind_int64(w, 4, INT64_MIN);
    sqlite3_bind_null(w, 5);
    sqlite3_bind_int(w, 6, 10);
    uint64_t t0 = ordo_mono_ns();
    CU_ASSERT_EQUAL(sqlite3_step(w), SQLITE_DONE);
    double walk_ns = (double)(ordo_mono_ns() - t0);
    double walk_ops = sqlite3_stmt_status(w, SQLITE_STMTSTATUS_VM_STEP, 0);
    t0 = ordo_mono_ns();
    int64_t stepped = 0;
    while (sqlite3_step(e) == SQLITE_ROW)
        stepped += sqlite3_column_bytes(e, 0) > 0;
    double step_ns = (double)(ordo_mono_ns() - t0);
    sqlite3_finalize(w);
    sqlite3_finalize(e);
    printf("\n    calibration: walked row %.0f ns, %.1f VM instructions (%d rows); stepped entry"
           " %.0f ns (%" PRId64 "): ratio %.1f",
           walk_ns / BIG_ORDERS, walk_ops / BIG_ORDERS, BIG_ORDERS, step_ns / (double)stepped,
           stepped, (walk_ns / BIG_ORDERS) / (step_ns / (double)stepped));
    M->close(&d.model);
    CU_ASSERT_EQUAL(ordo_pstore_rollback(d.db), 0);
    ordo_pstore_close(&d.db);
    printf("\n");
}

int main(void)
{
    const char *seed = getenv("ORDO_TEST_SEED");
    if (seed && *seed)
        s_rng = strtoull(seed, NULL, 0) | 1;
    printf("seed %#" PRIx64 "\n", s_rng);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("model_timeline", NULL, NULL);
    if (!s)
        return 1;
    const char *only_big = getenv("ORDO_TL_BIG_ONLY");
    if (only_big && *only_big) { /* just the big measurement */
        CU_add_test(s, "performance, 1.5M orders (ORDO_TL_BIG)", test_big);
        return ordo_test_run();
    }
    CU_add_test(s, "equal timestamps, hand-built", test_equal_timestamps);
    CU_add_test(s, "random orders against a replay", test_random_against_reference);
    CU_add_test(s, "lives of every length, the whole int64 range", test_extreme_lives);
    CU_add_test(s, "paging", test_paging);
    CU_add_test(s, "paging through the wire decoder", test_wire_paging);
    CU_add_test(s, "finished part: walked and stepped pages agree", test_walk_and_step_agree);
    CU_add_test(s, "the walk's query plan", test_walk_plan);
    CU_add_test(s, "restart from committed states", test_restart);
    CU_add_test(s, "memory holds open orders only", test_memory);
    CU_add_test(s, "events the log cannot hold", test_bad_events);
    CU_add_test(s, "damaged rows", test_damaged_rows);
    CU_add_test(s, "database failure", test_database_failure);
    CU_add_test(s, "performance, 100k orders", test_performance);
    CU_add_test(s, "performance, 1.5M orders (ORDO_TL_BIG)", test_big);
    return ordo_test_run();
}
