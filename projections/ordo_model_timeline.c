/* The `timeline` read model: OrdersAsOf, the state of every order at a
 * past instant (a timestamp or a log position), answered from an index of
 * status intervals, never by replaying the log.
 *
 * Invariants: between flushes RAM holds the orders not yet finished plus
 * those finished since the last flush; after flush() every applied event
 * is in the table and RAM holds unfinished orders only. apply() makes no
 * SQLite call. A row is a pure function of its order's events (its id, of
 * the rank of its creation), so a model reopened from a committed state
 * and fed the later events ends in the very table of one that never
 * stopped.
 *
 * TABLE timeline (STRICT): one row per order
 *   column          type     meaning
 *   id              INTEGER  PRIMARY KEY (the rowid), > 0: max + 1 when the
 *                            order is first written; RAM keeps it to update by
 *   order_id        TEXT     NOT NULL UNIQUE, 1..64 bytes (compared bytewise)
 *   restaurant_id   INTEGER  NOT NULL: data.restaurant_id of OrderCreated
 *   created_us      INTEGER  NOT NULL: timestamp_us of OrderCreated
 *   created_pos     INTEGER  NOT NULL: its position, >= 1
 *   confirmed_us    INTEGER  timestamp_us and position of OrderConfirmed; both
 *   confirmed_pos   INTEGER    NULL while the order has not reached Confirmed
 *   preparing_us, preparing_pos   the same for OrderPreparing
 *   ready_us, ready_pos           the same for OrderReady
 *   ofd_us, ofd_pos               the same for OrderOutForDelivery
 *   end_status      INTEGER  the terminal status, ordo_status_t: 6 Delivered,
 *                            7 Cancelled; NULL while the order is open
 *   end_us, end_pos INTEGER  the terminal event; NULL exactly when end_status is
 *   lvl_t           INTEGER  NOT NULL: level of the lifetime in time, 63 while
 *                            open, else min(63, bit length of end_us - created_us)
 *   lvl_p           INTEGER  NOT NULL: the same in positions (end_pos - created_pos)
 *
 *   A row is whole or it is damage: the statuses reached are Created, then
 *   a prefix of Confirmed, Preparing, Ready, OutForDelivery, then possibly
 *   the end (Delivered only after OutForDelivery, Cancelled only after
 *   Created, Confirmed or Preparing); along them timestamps never decrease
 *   and positions increase; both levels are the ones the lifetime gives.
 *   Loading or querying a row that breaks any of this fails (logged).
 *
 * INDEXES (each entry also holds the row's id)
 *   (order_id)                                       UNIQUE, SQLite's autoindex
 *   timeline_lvl_t   (lvl_t, created_us, end_us, restaurant_id)
 *   timeline_lvl_p   (lvl_p, created_pos, end_pos, restaurant_id)
 *   timeline_end_t   (end_status, end_us, order_id)                 WHERE end_status IS NOT NULL
 *   timeline_end_p   (end_status, end_pos, order_id)                WHERE end_status IS NOT NULL
 *   timeline_rend_t  (restaurant_id, end_status, end_us, order_id)  WHERE end_status IS NOT NULL
 *   timeline_rend_p  (restaurant_id, end_status, end_pos, order_id) WHERE end_status IS NOT NULL
 *   timeline_fin63_t (created_us, end_us, restaurant_id)   WHERE lvl_t = 63 AND end_us IS NOT NULL
 *   timeline_fin63_p (created_pos, end_pos, restaurant_id) WHERE lvl_p = 63 AND end_pos IS NOT NULL
 *     finished orders of level 63 (a lifetime of 2^62 us or positions or
 *     more: in practice none). Level 63 of timeline_lvl_t/_p is mostly
 *     open orders, which the query reads from RAM; stepping their entries
 *     to find the finished ones among them cost 20 ms at 270,000 open
 *     orders, two thirds of an OrdersAsOf.
 *   The lvl entries change only when an order first appears or finishes
 *   (its end and levels change together), never on the steps in between.
 *   All but the first are query indexes (ordo_model.h): a generation
 *   building from position 1 has them only once it has caught up.
 *
 * QUERY at instant x (at_us; for at_position read _pos for _us below)
 *   An order exists at x when created <= x; its state there is its state
 *   after every event whose key is <= x (equal timestamps included).
 *   - Finished at x (end <= x), status end_status: SQLite counts them
 *     (count(*) over the end indexes, rend with a restaurant, one range
 *     per terminal status asked), so no row is stepped in C for `total`.
 *     Their page is then found one of two ways, same result either way:
 *     . stepped: every entry of those ranges is offered to the heap below
 *       (order_id and id are in the index; no row is read);
 *     . walked: the UNIQUE order_id index is read in order from the
 *       cursor (order_id > cursor AND end_status IN (..) AND end <= x
 *       [AND restaurant_id = ?] ORDER BY order_id LIMIT limit + 1: no
 *       sort, SQLite stops after limit + 1 matches), and those are offered.
 *     With F finished matches among R = max(id) rows, a walk reads about
 *     (limit + 1) * R / F rows if matches spread evenly over the ids, each
 *     (a table row read by id, in no order) costing about 40 stepped
 *     entries (S_WALK_COST: measured 2.6-5.4 us against 0.12 us at 1.5M
 *     orders), so it is chosen when 40 * (limit + 1) * R < F^2: at a recent
 *     instant with no status filter, or Delivered or Cancelled, over all
 *     restaurants; one restaurant's few thousand are stepped. Ids need not
 *     spread evenly (ids that grow with time, a last page): a progress
 *     handler gives the walk up past the cost of stepping (about F / 40
 *     rows, at about 7 VM instructions a row), the alive candidates kept aside are put back and the ranges
 *     are stepped instead, so a query costs at most about twice the
 *     stepping. The walk is a read: interrupting it undoes nothing.
 *     Rows walked are checked: text ids, integer ids, strictly increasing
 *     past the cursor, no more than asked.
 *   Every match counts in `total`; the `limit` + 1 smallest order ids
 *   past the cursor stay in a max-heap (the one past the page says a next
 *   page exists), so a query holds one page, whatever the data. The page's
 *   rows are read again by id and checked against what found them
 *   (status asked, finished or alive, restaurant) before anything is
 *   packed. */
#include "ordo_model.h"

#include "ordo_hash.h"
#include "ordo_log.h"
#include "ordo_pstore.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "timeline"

/* Stamps: [0..4] the events that entered Created .. OutForDelivery, [5]
 * the terminal one (Delivered or Cancelled). */
enum { S_END = 5, S_NSTAMP = 6 };
#define S_LEVEL_OPEN 63
#define S_MIN_CAP 1024u    /* orders the pool holds at least */
#define S_EMPTY UINT32_MAX /* a free hash slot */

/* Order flags. */
enum { S_DIRTY = 1u << 0 };

typedef struct {
    int64_t us[S_NSTAMP];  /* timestamp_us of each stamp reached */
    int64_t pos[S_NSTAMP]; /* position of each stamp reached */
    int64_t restaurant_id;
    int64_t rowid; /* its row's id, 0 until first written */
    uint64_t hash;
    uint8_t reached; /* bit k: stamp k is set */
    uint8_t status;  /* the status now (ordo_status_t) */
    uint8_t version; /* events applied */
    uint8_t flags;   /* S_DIRTY (RAM only) */
    uint8_t id_len;
    char id[ORDO_ORDER_ID_MAX + 1]; /* NUL-terminated */
} s_order_t;

typedef struct {
    uint32_t idx; /* into pool, S_EMPTY if free */
    uint32_t tag; /* low 32 bits of the order's hash */
} s_slot_t;

/* Prepared statements (finalized in close). */
enum {
    S_ST_INSERT = 0,
    S_ST_UPDATE_STAMPS, /* an open order moved on */
    S_ST_UPDATE_END,    /* an order finished: stamps, end and levels */
    S_ST_BY_ID,
    S_ST_LOAD,
    S_ST_ALIVE_T, /* from here on: the queries', prepared at the first query */
    S_ST_ALIVE_P,
    S_ST_ALIVE_FIN_T, /* level 63, finished lives only (open ones are in RAM) */
    S_ST_ALIVE_FIN_P,
    S_ST_END_T,
    S_ST_END_P,
    S_ST_REND_T,
    S_ST_REND_P,
    S_ST_CNT_T,  /* finished matches, counted by SQLite on the end indexes */
    S_ST_CNT_P,
    S_ST_RCNT_T,
    S_ST_RCNT_P,
    S_ST_WALK_T, /* finished matches in order_id order from the cursor */
    S_ST_WALK_P,
    S_ST_ROWS,   /* max(id): how many rows the table has had */
    S_ST_COUNT_
};

#define S_COLS_WRITTEN                                                                             \
    "order_id, restaurant_id, created_us, created_pos, confirmed_us, confirmed_pos,"               \
    " preparing_us, preparing_pos, ready_us, ready_pos, ofd_us, ofd_pos, end_status, end_us,"      \
    " end_pos, lvl_t, lvl_p"
#define S_COLS S_COLS_WRITTEN ", id"

/* Parameter numbers follow the columns: ?1 order_id .. ?17 lvl_p, ?18 id. */
static const char *const s_sql[S_ST_COUNT_] = {
    [S_ST_INSERT] =
        "INSERT INTO timeline(" S_COLS_WRITTEN ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9,"
        " ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    [S_ST_UPDATE_STAMPS] = "UPDATE timeline SET confirmed_us = ?5, confirmed_pos = ?6,"
                           " preparing_us = ?7, preparing_pos = ?8, ready_us = ?9,"
                           " ready_pos = ?10, ofd_us = ?11, ofd_pos = ?12 WHERE id = ?18",
    [S_ST_UPDATE_END] = "UPDATE timeline SET confirmed_us = ?5, confirmed_pos = ?6,"
                        " preparing_us = ?7, preparing_pos = ?8, ready_us = ?9,"
                        " ready_pos = ?10, ofd_us = ?11, ofd_pos = ?12, end_status = ?13,"
                        " end_us = ?14, end_pos = ?15, lvl_t = ?16, lvl_p = ?17"
                        " WHERE id = ?18",
    [S_ST_BY_ID] = "SELECT " S_COLS " FROM timeline WHERE id = ?1",
    /* timeline_lvl_t when it is there, else a scan (see ordo_model.h) */
    [S_ST_LOAD] = "SELECT " S_COLS " FROM timeline WHERE lvl_t = 63 AND end_us IS NULL",
    [S_ST_ALIVE_T] = "SELECT " S_COLS " FROM timeline INDEXED BY timeline_lvl_t"
                     " WHERE lvl_t = ?1 AND created_us >= ?2 AND created_us <= ?3"
                     " AND (end_us IS NULL OR end_us > ?3)"
                     " AND (?4 IS NULL OR restaurant_id = ?4)",
    [S_ST_ALIVE_P] = "SELECT " S_COLS " FROM timeline INDEXED BY timeline_lvl_p"
                     " WHERE lvl_p = ?1 AND created_pos >= ?2 AND created_pos <= ?3"
                     " AND (end_pos IS NULL OR end_pos > ?3)"
                     " AND (?4 IS NULL OR restaurant_id = ?4)",
    /* ?1 (63) and ?2 (no lower bound) are bound as for the other levels */
    [S_ST_ALIVE_FIN_T] = "SELECT " S_COLS " FROM timeline INDEXED BY timeline_fin63_t"
                         " WHERE lvl_t = 63 AND end_us IS NOT NULL AND ?1 = 63"
                         " AND created_us >= ?2 AND created_us <= ?3 AND end_us > ?3"
                         " AND (?4 IS NULL OR restaurant_id = ?4)",
    [S_ST_ALIVE_FIN_P] = "SELECT " S_COLS " FROM timeline INDEXED BY timeline_fin63_p"
                         " WHERE lvl_p = 63 AND end_pos IS NOT NULL AND ?1 = 63"
                         " AND created_pos >= ?2 AND created_pos <= ?3 AND end_pos > ?3"
                         " AND (?4 IS NULL OR restaurant_id = ?4)",
    [S_ST_END_T] = "SELECT order_id, id FROM timeline INDEXED BY timeline_end_t"
                   " WHERE end_status = ?1 AND end_us <= ?2",
    [S_ST_END_P] = "SELECT order_id, id FROM timeline INDEXED BY timeline_end_p"
                   " WHERE end_status = ?1 AND end_pos <= ?2",
    [S_ST_REND_T] = "SELECT order_id, id FROM timeline INDEXED BY timeline_rend_t"
                    " WHERE restaurant_id = ?3 AND end_status = ?1 AND end_us <= ?2",
    [S_ST_REND_P] = "SELECT order_id, id FROM timeline INDEXED BY timeline_rend_p"
                    " WHERE restaurant_id = ?3 AND end_status = ?1 AND end_pos <= ?2",
    [S_ST_CNT_T] = "SELECT count(*) FROM timeline INDEXED BY timeline_end_t"
                   " WHERE end_status = ?1 AND end_us <= ?2",
    [S_ST_CNT_P] = "SELECT count(*) FROM timeline INDEXED BY timeline_end_p"
                   " WHERE end_status = ?1 AND end_pos <= ?2",
    [S_ST_RCNT_T] = "SELECT count(*) FROM timeline INDEXED BY timeline_rend_t"
                    " WHERE restaurant_id = ?3 AND end_status = ?1 AND end_us <= ?2",
    [S_ST_RCNT_P] = "SELECT count(*) FROM timeline INDEXED BY timeline_rend_p"
                    " WHERE restaurant_id = ?3 AND end_status = ?1 AND end_pos <= ?2",
    [S_ST_WALK_T] = "SELECT order_id, id FROM timeline INDEXED BY sqlite_autoindex_timeline_1"
                    " WHERE order_id > ?1 AND end_status IN (?2, ?3) AND end_us <= ?4"
                    " AND (?5 IS NULL OR restaurant_id = ?5) ORDER BY order_id LIMIT ?6",
    [S_ST_WALK_P] = "SELECT order_id, id FROM timeline INDEXED BY sqlite_autoindex_timeline_1"
                    " WHERE order_id > ?1 AND end_status IN (?2, ?3) AND end_pos <= ?4"
                    " AND (?5 IS NULL OR restaurant_id = ?5) ORDER BY order_id LIMIT ?6",
    [S_ST_ROWS] = "SELECT max(id) FROM timeline",
};

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS timeline(id INTEGER PRIMARY KEY,"
    " order_id TEXT NOT NULL UNIQUE, restaurant_id INTEGER NOT NULL,"
    " created_us INTEGER NOT NULL, created_pos INTEGER NOT NULL,"
    " confirmed_us INTEGER, confirmed_pos INTEGER, preparing_us INTEGER, preparing_pos INTEGER,"
    " ready_us INTEGER, ready_pos INTEGER, ofd_us INTEGER, ofd_pos INTEGER,"
    " end_status INTEGER, end_us INTEGER, end_pos INTEGER,"
    " lvl_t INTEGER NOT NULL, lvl_p INTEGER NOT NULL) STRICT;";

/* The query indexes (ordo_model.h): the queries' statements name them. */
static const char *const s_indexes[] = {
    "CREATE INDEX IF NOT EXISTS timeline_lvl_t ON timeline(lvl_t, created_us, end_us,"
    " restaurant_id)",
    "CREATE INDEX IF NOT EXISTS timeline_lvl_p ON timeline(lvl_p, created_pos, end_pos,"
    " restaurant_id)",
    "CREATE INDEX IF NOT EXISTS timeline_end_t ON timeline(end_status, end_us, order_id)"
    " WHERE end_status IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS timeline_end_p ON timeline(end_status, end_pos, order_id)"
    " WHERE end_status IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS timeline_rend_t ON timeline(restaurant_id, end_status, end_us,"
    " order_id) WHERE end_status IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS timeline_rend_p ON timeline(restaurant_id, end_status, end_pos,"
    " order_id) WHERE end_status IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS timeline_fin63_t ON timeline(created_us, end_us, restaurant_id)"
    " WHERE lvl_t = 63 AND end_us IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS timeline_fin63_p ON timeline(created_pos, end_pos, restaurant_id)"
    " WHERE lvl_p = 63 AND end_pos IS NOT NULL",
    NULL,
};

/* The model's state. Orders live in `pool` (indices stay valid while the
 * pool grows); `slots` is a linear-probing table of pool indices, twice the
 * pool's capacity (load at most 1/2), kept whole by backward-shift
 * deletion; `dirty` lists each order changed since the last flush once. */
typedef struct {
    sqlite3 *db; /* not owned: the actor's */
    sqlite3_stmt *st[S_ST_COUNT_];
    uint64_t seed;
    s_order_t *pool; /* owned, cap entries */
    uint32_t cap;    /* pool capacity, a power of two */
    uint32_t used;   /* pool[0 .. used) has been handed out; a free entry has id_len 0 */
    uint32_t count;  /* orders in RAM */
    uint32_t *free;  /* owned, cap entries: pool indices given back */
    uint32_t n_free;
    s_slot_t *slots; /* owned, 2 * cap entries */
    uint32_t *dirty; /* owned, cap entries */
    uint32_t n_dirty;
    bool failed; /* sticky: a failed apply or flush */
    int walk_mode;           /* S_WALK_AUTO, or what a test forces */
    int64_t walk_budget;     /* with S_WALK_ALWAYS: VM instructions, 0 none */
    uint64_t walks_given_up; /* walks that ran out of budget (for tests) */
} s_tl_t;

/* ---- orders ------------------------------------------------------------ */

static int s_bitlen(uint64_t d)
{
    return d ? 64 - __builtin_clzll(d) : 0;
}

/* The level of a lifetime [from, to] (to >= from; see the top). */
static int s_level(int64_t from, int64_t to)
{
    int l = s_bitlen((uint64_t)to - (uint64_t)from);
    return l > S_LEVEL_OPEN ? S_LEVEL_OPEN : l;
}

static int s_level_t(const s_order_t *o)
{
    return (o->reached & (1u << S_END)) ? s_level(o->us[0], o->us[S_END]) : S_LEVEL_OPEN;
}

static int s_level_p(const s_order_t *o)
{
    return (o->reached & (1u << S_END)) ? s_level(o->pos[0], o->pos[S_END]) : S_LEVEL_OPEN;
}

/* The order's state at x (a position if by_pos, else a timestamp): status
 * (NONE if created after x), version and since_us. */
static ordo_status_t s_state_at(const s_order_t *o, int64_t x, bool by_pos, uint32_t *version,
                                int64_t *since_us)
{
    ordo_status_t st = ORDO_STATUS_NONE;
    uint32_t v = 0;
    int64_t since = 0;
    for (int k = 0; k < S_NSTAMP; k++) {
        if (!(o->reached & (1u << k)))
            continue;
        if ((by_pos ? o->pos[k] : o->us[k]) > x)
            break; /* stamps are ordered: none later is <= x either */
        st = k < S_END ? (ordo_status_t)(k + 1) : (ordo_status_t)o->status;
        v++;
        since = o->us[k];
    }
    *version = v;
    *since_us = since;
    return st;
}

static int s_idcmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* ---- rows -------------------------------------------------------------- */

static bool s_col_int(sqlite3_stmt *st, int col, int64_t *out)
{
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER)
        return false;
    *out = sqlite3_column_int64(st, col);
    return true;
}

/* Reads an order id from column col into id (NUL-terminated). NULL if
 * fine, else what is wrong. */
static const char *s_col_id(sqlite3_stmt *st, int col, char *id, uint8_t *len)
{
    if (sqlite3_column_type(st, col) != SQLITE_TEXT)
        return "order_id is not text";
    const unsigned char *p = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (!p || n < 1 || n > ORDO_ORDER_ID_MAX)
        return "order_id has a bad length";
    memcpy(id, p, (size_t)n);
    id[n] = '\0';
    *len = (uint8_t)n;
    return NULL;
}

/* Decodes a row of S_COLS into *o (flags 0), checking everything the top
 * comment promises. NULL if whole, else what is wrong. */
static const char *s_row_decode(sqlite3_stmt *st, s_order_t *o)
{
    memset(o, 0, sizeof *o);
    const char *why = s_col_id(st, 0, o->id, &o->id_len);
    if (why)
        return why;
    if (!s_col_int(st, 1, &o->restaurant_id))
        return "restaurant_id is not an integer";
    /* stamps 0..4 in columns 2.. as (us, pos) pairs; the end after end_status */
    for (int k = 0; k < S_NSTAMP; k++) {
        int cu = k < S_END ? 2 + 2 * k : 13, cp = cu + 1;
        int tu = sqlite3_column_type(st, cu), tp = sqlite3_column_type(st, cp);
        if (tu == SQLITE_NULL && tp == SQLITE_NULL) {
            if (k == 0)
                return "created is NULL";
            continue;
        }
        if (!s_col_int(st, cu, &o->us[k]) || !s_col_int(st, cp, &o->pos[k]))
            return "a status's timestamp or position is not an integer";
        if (k > 0 && k < S_END && !(o->reached & (1u << (k - 1))))
            return "a status is reached without the one before it";
        o->reached |= (uint8_t)(1u << k);
    }
    int64_t end_status = 0;
    bool has_end = o->reached & (1u << S_END);
    if (sqlite3_column_type(st, 12) == SQLITE_NULL) {
        if (has_end)
            return "end_us / end_pos set without end_status";
    } else {
        if (!s_col_int(st, 12, &end_status) || !has_end)
            return "end_status without end_us / end_pos";
        if (end_status == ORDO_STATUS_DELIVERED) {
            if (!(o->reached & (1u << (ORDO_STATUS_OUT_FOR_DELIVERY - 1))))
                return "Delivered without OutForDelivery";
        } else if (end_status == ORDO_STATUS_CANCELLED) {
            if (o->reached & (1u << (ORDO_STATUS_READY - 1)))
                return "Cancelled after Ready";
        } else {
            return "end_status out of range";
        }
    }
    if (o->pos[0] < 1)
        return "created_pos below 1";
    int last = 0;
    for (int k = 1; k < S_NSTAMP; k++) {
        if (!(o->reached & (1u << k)))
            continue;
        if (o->us[k] < o->us[last] || o->pos[k] <= o->pos[last])
            return "timestamps decrease or positions do not increase";
        last = k;
    }
    int64_t lt, lp;
    if (!s_col_int(st, 15, &lt) || !s_col_int(st, 16, &lp))
        return "a level is not an integer";
    if (lt != s_level_t(o) || lp != s_level_p(o))
        return "a level does not match the lifetime";
    if (!s_col_int(st, 17, &o->rowid) || o->rowid < 1)
        return "id is not a positive integer";
    o->version = (uint8_t)__builtin_popcount(o->reached);
    o->status = has_end ? (uint8_t)end_status : (uint8_t)(last + 1);
    return NULL;
}

/* Binds the order's columns to the parameters st has (?1 .. ?18). */
static int s_row_bind(sqlite3_stmt *st, const s_order_t *o)
{
    int n = sqlite3_bind_parameter_count(st), rc = SQLITE_OK;
    for (int i = 1; i <= n && rc == SQLITE_OK; i++) {
        int col = i - 1;
        if (col == 0) {
            rc = sqlite3_bind_text(st, i, o->id, o->id_len, SQLITE_STATIC);
        } else if (col == 1) {
            rc = sqlite3_bind_int64(st, i, o->restaurant_id);
        } else if (col == 12) {
            rc = (o->reached & (1u << S_END)) ? sqlite3_bind_int64(st, i, o->status)
                                              : sqlite3_bind_null(st, i);
        } else if (col == 15) {
            rc = sqlite3_bind_int64(st, i, s_level_t(o));
        } else if (col == 16) {
            rc = sqlite3_bind_int64(st, i, s_level_p(o));
        } else if (col == 17) {
            rc = sqlite3_bind_int64(st, i, o->rowid);
        } else {
            int k = col < 12 ? (col - 2) / 2 : S_END;
            bool is_pos = col < 12 ? (col - 2) % 2 : col == 14;
            if (!(o->reached & (1u << k)))
                rc = sqlite3_bind_null(st, i);
            else
                rc = sqlite3_bind_int64(st, i, is_pos ? o->pos[k] : o->us[k]);
        }
    }
    return rc == SQLITE_OK ? 0 : -1;
}

/* ---- the table of orders in RAM ---------------------------------------- */

static uint64_t s_hash(const s_tl_t *tl, const char *id, size_t len)
{
    return ordo_hash64(id, len, tl->seed);
}

/* The pool index of the order, or S_EMPTY; *slot: where it is, or the
 * free slot that ends its probe run. */
static uint32_t s_find(const s_tl_t *tl, uint64_t h, const char *id, size_t len, size_t *slot)
{
    size_t mask = (size_t)tl->cap * 2 - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        const s_slot_t *s = &tl->slots[i];
        if (s->idx == S_EMPTY)
            break;
        if (s->tag == (uint32_t)h) {
            const s_order_t *o = &tl->pool[s->idx];
            if (o->id_len == len && memcmp(o->id, id, len) == 0) {
                *slot = i;
                return s->idx;
            }
        }
    }
    *slot = i;
    return S_EMPTY;
}

/* Fills a fresh slot table of 2 * cap entries from the orders in `from`
 * (a table of from_n slots), or from nothing. */
static void s_slots_fill(s_tl_t *tl, s_slot_t *to, const s_slot_t *from, size_t from_n)
{
    size_t mask = (size_t)tl->cap * 2 - 1;
    for (size_t i = 0; i <= mask; i++)
        to[i] = (s_slot_t){S_EMPTY, 0};
    for (size_t j = 0; j < from_n; j++) {
        if (from[j].idx == S_EMPTY)
            continue;
        size_t i = tl->pool[from[j].idx].hash & mask;
        while (to[i].idx != S_EMPTY)
            i = (i + 1) & mask;
        to[i] = from[j];
    }
}

/* Doubles the pool (indices kept). 0 or -1 (no memory; nothing lost). */
static int s_grow(s_tl_t *tl)
{
    if (tl->cap >= (1u << 30)) {
        ordo_log_error(S_MOD, "more than %u open orders", tl->cap);
        return -1;
    }
    uint32_t cap = tl->cap * 2;
    s_order_t *pool = realloc(tl->pool, (size_t)cap * sizeof *pool);
    if (pool)
        tl->pool = pool;
    uint32_t *fr = pool ? realloc(tl->free, (size_t)cap * sizeof *fr) : NULL;
    if (fr)
        tl->free = fr;
    uint32_t *dirty = fr ? realloc(tl->dirty, (size_t)cap * sizeof *dirty) : NULL;
    if (dirty)
        tl->dirty = dirty;
    s_slot_t *slots = dirty ? malloc((size_t)cap * 2 * sizeof *slots) : NULL;
    if (!slots) {
        ordo_log_error(S_MOD, "out of memory for %u open orders", cap);
        return -1;
    }
    s_slot_t *old = tl->slots;
    size_t old_n = (size_t)tl->cap * 2;
    tl->cap = cap;
    s_slots_fill(tl, slots, old, old_n);
    free(old);
    tl->slots = slots;
    return 0;
}

/* With few orders left in a large pool (a peak has passed), moves them
 * into a smaller one. Only when nothing is dirty: it renumbers orders. */
static void s_maybe_shrink(s_tl_t *tl)
{
    if (tl->n_dirty != 0 || tl->cap <= S_MIN_CAP || tl->count >= tl->cap / 8)
        return;
    uint32_t cap = tl->cap / 2;
    while (cap > S_MIN_CAP && tl->count < cap / 8)
        cap /= 2;
    s_order_t *pool = malloc((size_t)cap * sizeof *pool);
    uint32_t *fr = malloc((size_t)cap * sizeof *fr);
    uint32_t *dirty = malloc((size_t)cap * sizeof *dirty);
    s_slot_t *slots = malloc((size_t)cap * 2 * sizeof *slots);
    if (!pool || !fr || !dirty || !slots) { /* keep the large one */
        free(pool);
        free(fr);
        free(dirty);
        free(slots);
        return;
    }
    uint32_t n = 0;
    size_t old_n = (size_t)tl->cap * 2;
    for (size_t j = 0; j < old_n; j++) {
        if (tl->slots[j].idx != S_EMPTY) {
            pool[n] = tl->pool[tl->slots[j].idx];
            tl->slots[j].idx = n++;
        }
    }
    free(tl->pool);
    free(tl->free);
    free(tl->dirty);
    tl->pool = pool;
    tl->free = fr;
    tl->dirty = dirty;
    tl->n_free = 0;
    tl->used = n;
    tl->cap = cap;
    s_slots_fill(tl, slots, tl->slots, old_n);
    free(tl->slots);
    tl->slots = slots;
}

/* Adds an order (all but its hash and id zeroed) and returns its pool
 * index, or S_EMPTY (no memory). */
static uint32_t s_add(s_tl_t *tl, uint64_t h, const char *id, size_t len)
{
    if (tl->count == tl->cap && s_grow(tl) != 0)
        return S_EMPTY;
    uint32_t idx = tl->n_free ? tl->free[--tl->n_free] : tl->used++;
    s_order_t *o = &tl->pool[idx];
    memset(o, 0, sizeof *o);
    o->hash = h;
    o->id_len = (uint8_t)len;
    memcpy(o->id, id, len);
    size_t slot;
    s_find(tl, h, id, len, &slot);
    tl->slots[slot] = (s_slot_t){idx, (uint32_t)h};
    tl->count++;
    return idx;
}

/* Removes the order at pool index idx. */
static void s_remove(s_tl_t *tl, uint32_t idx)
{
    const s_order_t *o = &tl->pool[idx];
    size_t mask = (size_t)tl->cap * 2 - 1, i;
    if (s_find(tl, o->hash, o->id, o->id_len, &i) != idx)
        return; /* not there: cannot happen */
    /* backward shift: pull later members of the run into the hole when
     * their home slot is not in (hole, their slot] */
    for (size_t j = (i + 1) & mask; tl->slots[j].idx != S_EMPTY; j = (j + 1) & mask) {
        size_t home = tl->slots[j].tag & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            tl->slots[i] = tl->slots[j];
            i = j;
        }
    }
    tl->slots[i] = (s_slot_t){S_EMPTY, 0};
    tl->pool[idx].id_len = 0; /* free (an order's id has 1 byte at least) */
    tl->free[tl->n_free++] = idx;
    tl->count--;
}

static void s_mark_dirty(s_tl_t *tl, uint32_t idx)
{
    s_order_t *o = &tl->pool[idx];
    if (!(o->flags & S_DIRTY)) {
        o->flags |= S_DIRTY;
        tl->dirty[tl->n_dirty++] = idx;
    }
}

/* ---- the model --------------------------------------------------------- */

static void s_close(void **state)
{
    if (!state || !*state)
        return;
    s_tl_t *tl = *state;
    for (int i = 0; i < S_ST_COUNT_; i++)
        sqlite3_finalize(tl->st[i]);
    free(tl->pool);
    free(tl->free);
    free(tl->dirty);
    free(tl->slots);
    free(tl);
    *state = NULL;
}

/* Loads the open orders. 0 or -1 (logged). */
static int s_load(s_tl_t *tl)
{
    sqlite3_stmt *st = tl->st[S_ST_LOAD];
    int rc, ret = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        s_order_t row;
        const char *why = s_row_decode(st, &row);
        if (!why && (row.reached & (1u << S_END)))
            why = "a finished order among the open ones";
        if (why) {
            ordo_log_error(S_MOD, "damaged row (order %s): %s", row.id[0] ? row.id : "?", why);
            ret = -1;
            break;
        }
        uint64_t h = s_hash(tl, row.id, row.id_len);
        size_t slot;
        if (s_find(tl, h, row.id, row.id_len, &slot) != S_EMPTY) {
            ordo_log_error(S_MOD, "order %s loaded twice", row.id);
            ret = -1;
            break;
        }
        uint32_t idx = s_add(tl, h, row.id, row.id_len);
        if (idx == S_EMPTY) {
            ret = -1;
            break;
        }
        row.hash = h;
        row.flags = 0;
        tl->pool[idx] = row;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ordo_log_error(S_MOD, "loading open orders: %s", sqlite3_errmsg(tl->db));
        ret = -1;
    }
    sqlite3_reset(st);
    return ret;
}

static void *s_open(sqlite3 *db)
{
    s_tl_t *tl = calloc(1, sizeof *tl);
    if (!tl) {
        ordo_log_error(S_MOD, "out of memory");
        return NULL;
    }
    tl->db = db;
    tl->seed = ordo_process_seed();
    tl->cap = S_MIN_CAP;
    tl->pool = malloc(tl->cap * sizeof *tl->pool);
    tl->free = malloc(tl->cap * sizeof *tl->free);
    tl->dirty = malloc(tl->cap * sizeof *tl->dirty);
    tl->slots = malloc(tl->cap * 2 * sizeof *tl->slots);
    void *state = tl;
    if (!tl->pool || !tl->free || !tl->dirty || !tl->slots) {
        ordo_log_error(S_MOD, "out of memory");
        s_close(&state);
        return NULL;
    }
    s_slots_fill(tl, tl->slots, NULL, 0);
    if (ordo_pstore_exec(db, s_schema) != 0)
        goto fail;
    for (int i = 0; i < S_ST_ALIVE_T; i++)
        if (ordo_pstore_prepare(db, s_sql[i], &tl->st[i]) != 0)
            goto fail;
    if (s_load(tl) != 0)
        goto fail;
    return tl;
fail:
    ordo_log_error(S_MOD, "cannot open the timeline model");
    s_close(&state);
    return NULL;
}

static int s_apply_fail(s_tl_t *tl, const ordo_client_event_t *ev, const char *why)
{
    ordo_log_error(S_MOD, "event at position %" PRIu64 " (%s, order %s, version %" PRIu32 "): %s",
                   ev->position, ev->type ? ev->type : "?", ev->order_id ? ev->order_id : "?",
                   ev->version, why);
    tl->failed = true;
    return -1;
}

/* Stamps the event on its order in RAM. An event the log could not hold
 * (unknown order, a transition or version out of turn, time or position
 * going back) fails the model: -1, logged, and it stays failed. An
 * OrderCreated for an order already finished (no longer in RAM) fails at
 * flush, on the UNIQUE order_id. */
static int s_apply(void *state, const ordo_client_event_t *ev)
{
    s_tl_t *tl = state;
    if (tl->failed)
        return -1;
    if (!ev->type)
        return s_apply_fail(tl, ev, "no type");
    ordo_event_type_t t = ordo_model_event_type(ev);
    if (t == ORDO_EVT_NONE)
        return 0; /* a type this version does not know changes no status */
    size_t len = ev->order_id ? strnlen(ev->order_id, ORDO_ORDER_ID_MAX + 1) : 0;
    if (len < 1 || len > ORDO_ORDER_ID_MAX)
        return s_apply_fail(tl, ev, "order_id missing or too long");
    if (ev->position < 1 || ev->position > INT64_MAX)
        return s_apply_fail(tl, ev, "position out of range");
    int64_t pos = (int64_t)ev->position;
    uint64_t h = s_hash(tl, ev->order_id, len);
    size_t slot;
    uint32_t idx = s_find(tl, h, ev->order_id, len, &slot);
    if (t == ORDO_EVT_ORDER_CREATED) {
        if (idx != S_EMPTY)
            return s_apply_fail(tl, ev, "the order already exists");
        if (ev->version != 1)
            return s_apply_fail(tl, ev, "OrderCreated is not version 1");
        idx = s_add(tl, h, ev->order_id, len);
        if (idx == S_EMPTY)
            return s_apply_fail(tl, ev, "out of memory");
        s_order_t *o = &tl->pool[idx];
        o->restaurant_id = ev->restaurant_id;
        o->us[0] = ev->timestamp_us;
        o->pos[0] = pos;
        o->reached = 1;
        o->status = ORDO_STATUS_CREATED;
        o->version = 1;
        s_mark_dirty(tl, idx);
        return 0;
    }
    if (idx == S_EMPTY)
        return s_apply_fail(tl, ev, "no open order has that id");
    s_order_t *o = &tl->pool[idx];
    if (!ordo_event_allowed((ordo_status_t)o->status, t))
        return s_apply_fail(tl, ev, "the state machine does not allow it");
    if (ev->version != (uint32_t)o->version + 1)
        return s_apply_fail(tl, ev, "version does not follow");
    int last = o->status <= ORDO_STATUS_OUT_FOR_DELIVERY ? o->status - 1 : S_END;
    if (ev->timestamp_us < o->us[last] || pos <= o->pos[last])
        return s_apply_fail(tl, ev, "timestamp or position goes back");
    ordo_status_t to = ordo_status_after(t);
    int k = ordo_status_is_final(to) ? S_END : (int)to - 1;
    o->us[k] = ev->timestamp_us;
    o->pos[k] = pos;
    o->reached |= (uint8_t)(1u << k);
    o->status = (uint8_t)to;
    o->version++;
    s_mark_dirty(tl, idx);
    return 0;
}

/* Writes each changed order (a new row, its new stamps, or its end and
 * levels) and drops the finished ones from RAM. 0, or -1 (logged; sticky). */
static int s_flush(void *state)
{
    s_tl_t *tl = state;
    if (tl->failed)
        return -1;
    for (uint32_t i = 0; i < tl->n_dirty; i++) {
        uint32_t idx = tl->dirty[i];
        s_order_t *o = &tl->pool[idx];
        bool final = o->reached & (1u << S_END);
        sqlite3_stmt *st = !o->rowid ? tl->st[S_ST_INSERT]
                           : final   ? tl->st[S_ST_UPDATE_END]
                                     : tl->st[S_ST_UPDATE_STAMPS];
        int rc = s_row_bind(st, o);
        if (rc == 0)
            rc = ordo_pstore_step_done(tl->db, st);
        sqlite3_clear_bindings(st);
        if (rc == 0 && sqlite3_changes(tl->db) != 1) {
            ordo_log_error(S_MOD, "order %s has no row to update", o->id);
            rc = -1;
        }
        if (rc != 0) {
            ordo_log_error(S_MOD, "flush failed writing order %s", o->id);
            tl->failed = true;
            return -1;
        }
        if (!o->rowid)
            o->rowid = sqlite3_last_insert_rowid(tl->db);
        o->flags = 0;
        if (final)
            s_remove(tl, idx);
    }
    tl->n_dirty = 0;
    s_maybe_shrink(tl);
    return 0;
}

/* ---- OrdersAsOf -------------------------------------------------------- */

/* The walk along order_id (see the top): a walked row costs about
 * S_WALK_COST stepped entries of an end index (measured, 1.5M orders:
 * 2.6-5.4 us against 0.12 us; about 6.2 VM instructions a walked row). The
 * walk is tried when its expected length, need * rows / finished, costs
 * less than stepping every finished entry; it is given up (progress
 * handler) past the cost of that stepping: S_WALK_OPS VM instructions a
 * walked row, checked every S_WALK_TICK instructions. */
#define S_WALK_COST 40.0
#define S_WALK_OPS 7.0
#define S_WALK_TICK 1000

/* Ways to page the finished part (tests pick one). */
enum { S_WALK_AUTO = 0, S_WALK_NEVER = 1, S_WALK_ALWAYS = 2 };

typedef struct {
    int64_t rowid;
    int64_t since_us;
    uint8_t len;
    uint8_t status;
    uint8_t version;
    uint8_t ended; /* found among the orders finished at the instant */
    char id[ORDO_ORDER_ID_MAX + 1];
} s_hit_t;

typedef struct {
    int64_t x; /* the instant */
    bool by_pos;
    uint32_t mask; /* status bits asked, 0 = any */
    bool has_restaurant;
    int64_t restaurant_id;
    const char *cursor; /* NULL: from the start */
    size_t cursor_len;
    s_hit_t *heap; /* max-heap by order id, at most cap */
    size_t n, limit;
    size_t cap;    /* limit + 1: the one past the page says a next page exists */
    int64_t total; /* every match */
} s_scan_t;

static bool s_wanted(const s_scan_t *sc, ordo_status_t s)
{
    return sc->mask == 0 || (sc->mask & (1u << s));
}

static int s_hitcmp(const s_hit_t *a, const s_hit_t *b)
{
    return s_idcmp(a->id, a->len, b->id, b->len);
}

static int s_hitcmp_q(const void *a, const void *b)
{
    return s_hitcmp(a, b);
}

static void s_heap_down(s_hit_t *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && s_hitcmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && s_hitcmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        s_hit_t tmp = h[i];
        h[i] = h[m];
        h[m] = tmp;
        i = m;
    }
}

static void s_hit_set(s_hit_t *h, const char *id, size_t len, int64_t rowid, bool ended)
{
    memcpy(h->id, id, len);
    h->id[len] = '\0';
    h->len = (uint8_t)len;
    h->rowid = rowid;
    h->ended = ended;
}

/* Keeps a match when it is among the `cap` smallest past the cursor (the
 * caller counts it). */
static void s_offer(s_scan_t *sc, const char *id, size_t len, int64_t rowid, bool ended)
{
    if (sc->cursor && s_idcmp(id, len, sc->cursor, sc->cursor_len) <= 0)
        return;
    s_hit_t *h = sc->heap;
    if (sc->n == sc->cap) {
        if (s_idcmp(id, len, h[0].id, h[0].len) >= 0)
            return;
        s_hit_set(&h[0], id, len, rowid, ended);
        s_heap_down(h, sc->n, 0);
        return;
    }
    size_t i = sc->n++;
    s_hit_set(&h[i], id, len, rowid, ended);
    while (i > 0) { /* sift up */
        size_t p = (i - 1) / 2;
        if (s_hitcmp(&h[i], &h[p]) <= 0)
            break;
        s_hit_t tmp = h[i];
        h[i] = h[p];
        h[p] = tmp;
        i = p;
    }
}

/* Query failures: -1 with *err; `why` is a database message or damage. */
static int s_query_fail(ordo_perror_t *err, const char *what, const char *why)
{
    ordo_log_error(S_MOD, "OrdersAsOf: %s: %s", what, why);
    ordo_perror_set(err, "unavailable", "the timeline could not be read: %s", why);
    return -1;
}

/* An alive candidate: counted and offered when it is in a status asked. */
static void s_alive_offer(s_scan_t *sc, const s_order_t *o)
{
    if (sc->has_restaurant && o->restaurant_id != sc->restaurant_id)
        return;
    uint32_t v;
    int64_t since;
    ordo_status_t s = s_state_at(o, sc->x, sc->by_pos, &v, &since);
    /* finished at x: the terminal scans count it */
    if (s == ORDO_STATUS_NONE || ordo_status_is_final(s) || !s_wanted(sc, s))
        return;
    sc->total++;
    s_offer(sc, o->id, o->id_len, o->rowid, false);
}

/* Orders alive at x (see the top). Open orders are read from RAM, which
 * after flush() holds exactly them, each with its row's id: at a busy
 * hour that is tens of thousands of orders, which a walk of the pool
 * reads in a millisecond where stepping their index entries and rows took
 * tens. 0 or -1 with *err. */
static int s_scan_alive(s_tl_t *tl, s_scan_t *sc, ordo_perror_t *err)
{
    /* The pool front to back, not through the hash's slots: the CPU reads
     * ahead, where each slot sent it to a random entry. At 300,000 open
     * orders an OrdersAsOf took 24 ms that way, 5 ms this way. */
    for (uint32_t idx = 0; idx < tl->used; idx++) {
        const s_order_t *o = &tl->pool[idx];
        if (o->id_len == 0)
            continue; /* free */
        if (o->rowid <= 0 || (o->reached & (1u << S_END)))
            return s_query_fail(err, o->id, "an order in memory is not written (no flush?)");
        s_alive_offer(sc, o);
    }
    for (int l = 1; l <= S_LEVEL_OPEN; l++) {
        sqlite3_stmt *st = tl->st[l == S_LEVEL_OPEN ? (sc->by_pos ? S_ST_ALIVE_FIN_P : S_ST_ALIVE_FIN_T)
                                                    : (sc->by_pos ? S_ST_ALIVE_P : S_ST_ALIVE_T)];
        int64_t lo = INT64_MIN;
        if (l < S_LEVEL_OPEN && sc->x > INT64_MIN + (INT64_C(1) << l))
            lo = sc->x - (INT64_C(1) << l) + 1;
        sqlite3_bind_int(st, 1, l);
        sqlite3_bind_int64(st, 2, lo);
        sqlite3_bind_int64(st, 3, sc->x);
        if (sc->has_restaurant)
            sqlite3_bind_int64(st, 4, sc->restaurant_id);
        else
            sqlite3_bind_null(st, 4);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            s_order_t o;
            const char *why = s_row_decode(st, &o);
            if (why) {
                sqlite3_reset(st);
                return s_query_fail(err, o.id[0] ? o.id : "a row", why);
            }
            if (l == S_LEVEL_OPEN && !(o.reached & (1u << S_END)))
                continue; /* open: offered from RAM above */
            s_alive_offer(sc, &o);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return s_query_fail(err, "alive scan", sqlite3_errmsg(tl->db));
    }
    return 0;
}

/* One integer from a one-row statement already bound: *out, >= 0 (NULL
 * reads as 0). 0 or -1 with *err. */
static int s_step_count(s_tl_t *tl, sqlite3_stmt *st, const char *what, int64_t *out,
                        ordo_perror_t *err)
{
    int rc = sqlite3_step(st);
    const char *why = NULL;
    if (rc != SQLITE_ROW)
        why = rc == SQLITE_DONE ? "no row" : sqlite3_errmsg(tl->db);
    else if (sqlite3_column_type(st, 0) == SQLITE_NULL)
        *out = 0;
    else if (!s_col_int(st, 0, out) || *out < 0)
        why = "not a non-negative integer";
    if (why) {
        int ret = s_query_fail(err, what, why);
        sqlite3_reset(st);
        return ret;
    }
    sqlite3_reset(st);
    return 0;
}

/* How many orders ended in status s at or before x, counted by SQLite on
 * the end index (no row stepped here). 0 or -1 with *err. */
static int s_count_ended(s_tl_t *tl, const s_scan_t *sc, ordo_status_t s, int64_t *count,
                         ordo_perror_t *err)
{
    int which = sc->has_restaurant ? (sc->by_pos ? S_ST_RCNT_P : S_ST_RCNT_T)
                                   : (sc->by_pos ? S_ST_CNT_P : S_ST_CNT_T);
    sqlite3_stmt *st = tl->st[which];
    sqlite3_bind_int(st, 1, (int)s);
    sqlite3_bind_int64(st, 2, sc->x);
    if (sc->has_restaurant)
        sqlite3_bind_int64(st, 3, sc->restaurant_id);
    return s_step_count(tl, st, "terminal count", count, err);
}

/* Offers every order that ended in status s at or before x (the heap
 * path; counted already). 0 or -1 with *err. */
static int s_scan_ended(s_tl_t *tl, s_scan_t *sc, ordo_status_t s, ordo_perror_t *err)
{
    int which = sc->has_restaurant ? (sc->by_pos ? S_ST_REND_P : S_ST_REND_T)
                                   : (sc->by_pos ? S_ST_END_P : S_ST_END_T);
    sqlite3_stmt *st = tl->st[which];
    sqlite3_bind_int(st, 1, (int)s);
    sqlite3_bind_int64(st, 2, sc->x);
    if (sc->has_restaurant)
        sqlite3_bind_int64(st, 3, sc->restaurant_id);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char id[ORDO_ORDER_ID_MAX + 1];
        uint8_t len;
        int64_t rowid;
        const char *why = s_col_id(st, 0, id, &len);
        if (!why && !s_col_int(st, 1, &rowid))
            why = "id is not an integer";
        if (why) {
            sqlite3_reset(st);
            return s_query_fail(err, "terminal scan", why);
        }
        s_offer(sc, id, len, rowid, true);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return s_query_fail(err, "terminal scan", sqlite3_errmsg(tl->db));
    return 0;
}

/* The walk's budget: the progress handler's ticks left. */
typedef struct {
    int64_t ticks;
} s_budget_t;

static int s_walk_tick(void *arg)
{
    s_budget_t *b = arg;
    return --b->ticks < 0; /* nonzero interrupts the walk (a read: nothing is undone) */
}

/* Offers the `cap` smallest order ids past the cursor among the orders
 * finished at x in a wanted status, walking the order_id index from the
 * cursor (the walk path). *gave_up: the budget ran out first (nothing
 * offered is wrong, but the walk is incomplete). 0 or -1 with *err. */
static int s_walk_ended(s_tl_t *tl, s_scan_t *sc, int64_t budget_ops, bool *gave_up,
                        ordo_perror_t *err)
{
    sqlite3_stmt *st = tl->st[sc->by_pos ? S_ST_WALK_P : S_ST_WALK_T];
    *gave_up = false;
    if (sc->cursor)
        sqlite3_bind_text(st, 1, sc->cursor, (int)sc->cursor_len, SQLITE_STATIC);
    else
        sqlite3_bind_text(st, 1, "", 0, SQLITE_STATIC); /* every id has a byte */
    bool d = s_wanted(sc, ORDO_STATUS_DELIVERED), c = s_wanted(sc, ORDO_STATUS_CANCELLED);
    sqlite3_bind_int(st, 2, d ? ORDO_STATUS_DELIVERED : ORDO_STATUS_CANCELLED);
    sqlite3_bind_int(st, 3, c ? ORDO_STATUS_CANCELLED : ORDO_STATUS_DELIVERED);
    sqlite3_bind_int64(st, 4, sc->x);
    if (sc->has_restaurant)
        sqlite3_bind_int64(st, 5, sc->restaurant_id);
    else
        sqlite3_bind_null(st, 5);
    sqlite3_bind_int64(st, 6, (int64_t)sc->cap);
    s_budget_t b = {budget_ops / S_WALK_TICK + 1};
    if (budget_ops < INT64_MAX)
        sqlite3_progress_handler(tl->db, S_WALK_TICK, s_walk_tick, &b);
    char prev[ORDO_ORDER_ID_MAX + 1];
    uint8_t prev_len = 0;
    bool first = true;
    size_t rows = 0;
    const char *why = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char id[ORDO_ORDER_ID_MAX + 1];
        uint8_t len;
        int64_t rowid;
        why = s_col_id(st, 0, id, &len);
        if (!why && !s_col_int(st, 1, &rowid))
            why = "id is not an integer";
        /* strictly increasing from the cursor, at most cap of them */
        if (!why && first && sc->cursor && s_idcmp(id, len, sc->cursor, sc->cursor_len) <= 0)
            why = "the order_id index goes back past the cursor";
        if (!why && !first && s_idcmp(id, len, prev, prev_len) <= 0)
            why = "the order_id index is out of order";
        if (!why && ++rows > sc->cap)
            why = "the walk returned more rows than asked";
        if (why)
            break;
        memcpy(prev, id, len);
        prev_len = len;
        first = false;
        s_offer(sc, id, len, rowid, true);
    }
    sqlite3_progress_handler(tl->db, 0, NULL, NULL);
    if (!why && rc == SQLITE_INTERRUPT && b.ticks < 0) {
        *gave_up = true;
        sqlite3_reset(st);
        return 0;
    }
    if (!why && rc != SQLITE_DONE)
        why = sqlite3_errmsg(tl->db);
    sqlite3_reset(st);
    return why ? s_query_fail(err, "terminal walk", why) : 0;
}

/* The finished part: counts it into total (SQLite counts) and offers its
 * page, by the walk when the matches are many next to the page, else by
 * stepping them. 0 or -1 with *err. */
static int s_finished(s_tl_t *tl, s_scan_t *sc, ordo_perror_t *err)
{
    static const ordo_status_t ends[2] = {ORDO_STATUS_DELIVERED, ORDO_STATUS_CANCELLED};
    int64_t count[2] = {0, 0}, fin = 0;
    for (int i = 0; i < 2; i++) {
        if (!s_wanted(sc, ends[i]))
            continue;
        if (s_count_ended(tl, sc, ends[i], &count[i], err) != 0)
            return -1;
        if (count[i] > INT64_MAX - fin)
            return s_query_fail(err, "terminal count", "too many rows");
        fin += count[i];
    }
    sc->total += fin;
    if (fin == 0)
        return 0;
    /* the walk's expected rows: about cap * rows / fin from the cursor */
    bool walk = tl->walk_mode == S_WALK_ALWAYS;
    int64_t budget = INT64_MAX;
    if (tl->walk_mode == S_WALK_AUTO) {
        int64_t rows;
        if (s_step_count(tl, tl->st[S_ST_ROWS], "row count", &rows, err) != 0)
            return -1;
        double f = (double)fin;
        walk = S_WALK_COST * (double)sc->cap * (double)rows < f * f;
        budget = (int64_t)(f / S_WALK_COST * S_WALK_OPS) + S_WALK_TICK;
    } else if (tl->walk_mode == S_WALK_ALWAYS && tl->walk_budget > 0) {
        budget = tl->walk_budget;
    }
    if (walk) {
        /* keep the alive candidates aside: a walk given up starts over */
        size_t n0 = sc->n;
        s_hit_t *keep = n0 ? malloc(n0 * sizeof *keep) : NULL;
        if (n0 && !keep)
            return s_query_fail(err, "terminal walk", "out of memory");
        if (n0)
            memcpy(keep, sc->heap, n0 * sizeof *keep);
        bool gave_up;
        int rc = s_walk_ended(tl, sc, budget, &gave_up, err);
        if (rc == 0 && gave_up) {
            if (n0)
                memcpy(sc->heap, keep, n0 * sizeof *keep);
            sc->n = n0;
            tl->walks_given_up++;
        }
        free(keep);
        if (rc != 0 || !gave_up)
            return rc;
    }
    for (int i = 0; i < 2; i++)
        if (count[i] > 0 && s_scan_ended(tl, sc, ends[i], err) != 0)
            return -1;
    return 0;
}

/* Reads a page's order again and fills its state at x. 0 or -1 with *err. */
static int s_page_fill(s_tl_t *tl, const s_scan_t *sc, s_hit_t *hit, ordo_perror_t *err)
{
    sqlite3_stmt *st = tl->st[S_ST_BY_ID];
    sqlite3_bind_int64(st, 1, hit->rowid);
    int rc = sqlite3_step(st);
    const char *why = NULL;
    if (rc == SQLITE_ROW) {
        s_order_t o;
        why = s_row_decode(st, &o);
        uint32_t v = 0;
        int64_t since = 0;
        ordo_status_t s = why ? ORDO_STATUS_NONE : s_state_at(&o, sc->x, sc->by_pos, &v, &since);
        if (!why && (o.id_len != hit->len || memcmp(o.id, hit->id, hit->len) != 0))
            why = "an index names another order than its row";
        if (!why && (s == ORDO_STATUS_NONE || !s_wanted(sc, s) ||
                     ordo_status_is_final(s) != (bool)hit->ended ||
                     (sc->has_restaurant && o.restaurant_id != sc->restaurant_id)))
            why = "an index disagrees with its row";
        hit->status = (uint8_t)s;
        hit->version = (uint8_t)v;
        hit->since_us = since;
    } else {
        why = rc == SQLITE_DONE ? "an index names a missing row" : sqlite3_errmsg(tl->db);
    }
    if (why) {
        int ret = s_query_fail(err, hit->id, why);
        sqlite3_reset(st);
        return ret;
    }
    sqlite3_reset(st);
    return 0;
}

static void s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    msgpack_pack_str(pk, len);
    msgpack_pack_str_body(pk, s, len);
}

static int s_query(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    s_tl_t *tl = state;
    if (q->type != ORDO_PQ_ORDERS_AS_OF) {
        ordo_perror_set(err, "bad_request", "the timeline answers OrdersAsOf only");
        return -1;
    }
    if (tl->failed) {
        ordo_perror_set(err, "unavailable", "the timeline failed to apply events");
        return -1;
    }
    for (int i = S_ST_ALIVE_T; i < S_ST_COUNT_; i++) /* their indexes exist by now */
        if (!tl->st[i] && ordo_pstore_prepare(tl->db, s_sql[i], &tl->st[i]) != 0) {
            ordo_perror_set(err, "unavailable", "the timeline could not be read; see the log");
            return -1;
        }
    s_scan_t sc = {
        .x = q->at,
        .by_pos = q->at_is_position,
        .mask = q->status_mask,
        .has_restaurant = q->has_restaurant_id,
        .restaurant_id = q->restaurant_id,
        .limit = q->limit < 1                   ? 1
                 : q->limit > ORDO_PQ_LIMIT_MAX ? ORDO_PQ_LIMIT_MAX
                                                : (size_t)q->limit,
    };
    sc.cap = sc.limit + 1;
    if (q->has_cursor) {
        sc.cursor = q->cursor_order_id;
        sc.cursor_len = strnlen(q->cursor_order_id, sizeof q->cursor_order_id);
    }
    sc.heap = malloc(sc.cap * sizeof *sc.heap);
    if (!sc.heap) {
        ordo_perror_set(err, "unavailable", "out of memory");
        return -1;
    }
    int ret = -1;
    bool any_open = false;
    for (ordo_status_t s = ORDO_STATUS_CREATED; s <= ORDO_STATUS_OUT_FOR_DELIVERY; s++)
        any_open |= s_wanted(&sc, s);
    if (any_open && s_scan_alive(tl, &sc, err) != 0)
        goto out;
    if ((s_wanted(&sc, ORDO_STATUS_DELIVERED) || s_wanted(&sc, ORDO_STATUS_CANCELLED)) &&
        s_finished(tl, &sc, err) != 0)
        goto out;
    qsort(sc.heap, sc.n, sizeof *sc.heap, s_hitcmp_q);
    /* the one past the page only says that a next page exists */
    bool more = sc.n > sc.limit;
    size_t n = more ? sc.limit : sc.n;
    for (size_t i = 0; i < n; i++)
        if (s_page_fill(tl, &sc, &sc.heap[i], err) != 0)
            goto out;
    /* every read succeeded: only now pack */
    s_pack_str(pk, "orders", 6);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++) {
        const s_hit_t *h = &sc.heap[i];
        const char *name = ordo_status_name((ordo_status_t)h->status);
        msgpack_pack_map(pk, 4);
        s_pack_str(pk, "order_id", 8);
        s_pack_str(pk, h->id, h->len);
        s_pack_str(pk, "status", 6);
        s_pack_str(pk, name, strlen(name));
        s_pack_str(pk, "version", 7);
        msgpack_pack_uint32(pk, h->version);
        s_pack_str(pk, "since_us", 8);
        msgpack_pack_int64(pk, h->since_us);
    }
    s_pack_str(pk, "total", 5);
    msgpack_pack_int64(pk, sc.total);
    s_pack_str(pk, "next_cursor", 11);
    if (more) {
        char cur[ORDO_PCURSOR_MAX];
        ordo_pcursor_encode(cur, ORDO_PQ_ORDERS_AS_OF, 0, sc.heap[n - 1].id);
        s_pack_str(pk, cur, strlen(cur));
    } else {
        msgpack_pack_nil(pk);
    }
    ret = 3;
out:
    free(sc.heap);
    return ret;
}

/* For tests: how many orders the model holds in RAM. */
size_t ordo_model_timeline_resident(const void *state);
size_t ordo_model_timeline_resident(const void *state)
{
    return ((const s_tl_t *)state)->count;
}

/* For tests: how the finished part is paged (0 by cost, 1 never walk, 2
 * always walk), and with 2 a walk budget in VM instructions (0: none). */
void ordo_model_timeline_walk(void *state, int mode, int64_t budget_ops);
void ordo_model_timeline_walk(void *state, int mode, int64_t budget_ops)
{
    s_tl_t *tl = state;
    tl->walk_mode = mode;
    tl->walk_budget = budget_ops;
}

/* For tests: the walk's SQL (to EXPLAIN it). */
const char *ordo_model_timeline_walk_sql(bool by_pos);
const char *ordo_model_timeline_walk_sql(bool by_pos)
{
    return s_sql[by_pos ? S_ST_WALK_P : S_ST_WALK_T];
}

/* For tests: how many walks ran out of budget (and were stepped instead). */
uint64_t ordo_model_timeline_walks_given_up(const void *state);
uint64_t ordo_model_timeline_walks_given_up(const void *state)
{
    return ((const s_tl_t *)state)->walks_given_up;
}

const ordo_model_ops_t ordo_model_timeline = {"timeline", s_open,  s_close,  s_apply,
                                              s_flush,    s_query, s_indexes};
