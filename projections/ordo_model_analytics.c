/* The `analytics` read model (PROJECTIONS.md "Analytics buckets"): per UTC
 * minute and per restaurant, and for all restaurants together, event
 * counts, revenue, cancellations by previous status and mergeable
 * histograms of stage durations; a minute, hour or day bucket of a query
 * is the merge of its minute cells.
 *
 * Memory: the live orders (created, not yet Delivered or Cancelled) with
 * the timestamps their next stage needs, and the cells of the last two
 * minutes plus any cell changed since the last flush; everything else is
 * in the database. apply() touches memory only (write-behind); flush()
 * writes the changed orders and cells in the actor's transaction.
 *
 * Invariants: after flush() every cell row holds the full aggregate of
 * every applied event of its minute (a cell in memory is either "full",
 * its whole value, or a delta over the row, merged into it by a read at
 * flush); every live order has its row and a finished order has none. So
 * a commit after flush() saves exactly the state of its checkpoint, and a
 * restart from it that applies the same events ends in the same rows.
 *
 * TABLES (in the projection's database, beside `meta`)
 *   analytics_cells(restaurant_id, minute, created, confirmed, delivered,
 *                   cancelled, revenue_cents, cf_created, cf_confirmed,
 *                   cf_preparing, stages)    primary key (restaurant_id, minute)
 *     minute        floor(timestamp_us / 60,000,000): negative before 1970
 *     restaurant_id the restaurant, or -1 for every restaurant together
 *                   (protocol ids are >= 0; an event with a negative id
 *                   counts in the -1 cell only)
 *     created .. cancelled, cf_*  integer counts >= 0; cf_* count
 *                   OrderCancelled by previous status; revenue_cents an
 *                   integer; stages: the STAGES BLOB below
 *   analytics_orders(order_id, restaurant_id, total_cents, created_us,
 *                    last_us, status)         primary key order_id
 *     an order created and not finished: order_id text of 1..64 bytes,
 *     created_us its OrderCreated's timestamp, last_us its latest event's,
 *     status the status that event left it in (ordo_status_t, 1 Created
 *     .. 5 OutForDelivery).
 *
 * STAGES BLOB: the stage histograms of one cell
 *   offset  size  field
 *        0     1  format version, 1
 *        1     1  stage mask: bit s set when stage s has samples; stages
 *                 0 confirm, 1 start, 2 prepare, 3 pickup, 4 deliver,
 *                 5 total; bits 6 and 7 are 0
 *        2     .  for each stage in the mask, lowest bit first:
 *                   varint n       samples, >= 1
 *                   varint max_ms  the largest sample
 *                   varint nbins   bins that follow, 1 <= nbins <= min(n, 7296)
 *                   nbins times:
 *                     varint gap    bin index - previous bin index - 1 (the
 *                                   first bin: its index), so indexes
 *                                   strictly increase; every index < 7296
 *                     varint count  samples in the bin, >= 1
 *                 the counts sum to n, and the last bin is max_ms's bin
 *    len-4     4  CRC32C (little-endian) of every byte before it
 *   Varints are unsigned LEB128 of at most 9 bytes (so values < 2^63).
 *   The last stage ends exactly where the CRC begins. A cell without any
 *   stage sample stores 01 00 and its CRC (6 bytes). The decoder checks
 *   every rule above before anything reads a bin; a blob that breaks one
 *   is refused as corrupt (flush and query fail, nothing is merged).
 *
 * BINS: a sample is a duration in whole ms (microseconds / 1000, rounded
 *   down; a negative duration, which a clock step could give, counts as 0).
 *   Bin b < 256 holds exactly the value b. Above, each power of two
 *   [2^e, 2^(e+1)), e = 8..62, is cut into 128 bins of width 2^(e-7):
 *   b = 256 + 128 (e - 8) + (v >> (e - 7)) - 128. A percentile is reported
 *   as the lower bound L of the bin holding the nearest-rank sample v:
 *   L <= v < L (1 + 1/128), so it is exact below 256 ms and otherwise at
 *   most 0.78% low. n and max_ms are exact.
 *
 * QUERY: reads the cells of one restaurant key in minute order, merging
 *   one bucket at a time into a dense accumulator (6 x 7296 counters,
 *   ~350 KiB, cleared through a bitmap of the bins used), keeping 256
 *   bytes of results per bucket (10,000 buckets: 2.5 MiB), and packs only
 *   once every row was read, so a failure packs nothing. */
#include "ordo_model.h"

#include "ordo_crc32c.h"
#include "ordo_hash.h"
#include "ordo_log.h"
#include "ordo_pstore.h"

#include <inttypes.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#define S_MOD "analytics"
#define S_MINUTE_US 60000000LL
#define S_ALL (-1) /* restaurant_id of the all-restaurant cells */
#define S_BLOB_VERSION 1
#define S_STAGES 6
#define S_EXACT 256                         /* bins below hold one ms value each */
#define S_SUB 128                           /* bins per power of two above */
#define S_BINS (S_EXACT + (63 - 8) * S_SUB) /* 7296: every value < 2^63 */
#define S_WORDS ((S_BINS + 63) / 64)
#define S_VARINT_MAX 9
#define S_RETAIN_MINUTES 2 /* cells of the newest minutes stay in memory */

_Static_assert(S_BINS == 7296, "the blob format documents 7296 bins");

enum { S_CONFIRM = 0, S_START, S_PREPARE, S_PICKUP, S_DELIVER, S_TOTAL };
static const char *const s_stage_names[S_STAGES] = {"confirm", "start",   "prepare",
                                                    "pickup",  "deliver", "total"};
enum { S_CREATED = 0, S_CONFIRMED, S_DELIVERED, S_CANCELLED, S_COUNTS };
static const char *const s_count_names[S_COUNTS] = {"created", "confirmed", "delivered",
                                                    "cancelled"};
/* cancelled_from keys, indexed by previous status - ORDO_STATUS_CREATED */
#define S_CFROM 3

/* ---- histograms ------------------------------------------------------- */

typedef struct {
    uint32_t bin;
    uint64_t count;
} s_bin_t;

/* One stage's samples in a cell: sorted sparse bins. */
typedef struct {
    uint64_t n;
    uint64_t max_ms;
    uint32_t len, cap;
    s_bin_t *bins; /* owned */
} s_hist_t;

/* The bin of a sample (values from 2^63 on, which no duration or
 * varint reaches, share the last bin). */
static uint32_t s_bin_of(uint64_t ms)
{
    if (ms < S_EXACT)
        return (uint32_t)ms;
    if (ms >> 63)
        ms = INT64_MAX;
    int e = 63 - __builtin_clzll(ms); /* 8..62 */
    return (uint32_t)(S_EXACT + (uint32_t)(e - 8) * S_SUB + (uint32_t)((ms >> (e - 7)) - S_SUB));
}

static uint64_t s_bin_low(uint32_t b)
{
    if (b < S_EXACT)
        return b;
    uint32_t g = (b - S_EXACT) / S_SUB, sub = (b - S_EXACT) % S_SUB;
    return (uint64_t)(S_SUB + sub) << (g + 1); /* e - 7 = g + 1 */
}

static int s_hist_reserve(s_hist_t *h, uint32_t need)
{
    if (need <= h->cap)
        return 0;
    uint32_t cap = h->cap ? h->cap : 4;
    while (cap < need)
        cap *= 2;
    s_bin_t *b = realloc(h->bins, (size_t)cap * sizeof *b);
    if (!b)
        return -1;
    h->bins = b;
    h->cap = cap;
    return 0;
}

/* Adds one sample. 0 or -1 (no memory; h unchanged). */
static int s_hist_add(s_hist_t *h, uint64_t ms)
{
    uint32_t b = s_bin_of(ms);
    uint32_t lo = 0, hi = h->len;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (h->bins[mid].bin < b)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->len && h->bins[lo].bin == b) {
        h->bins[lo].count++;
    } else {
        if (s_hist_reserve(h, h->len + 1) != 0)
            return -1;
        memmove(h->bins + lo + 1, h->bins + lo, (h->len - lo) * sizeof *h->bins);
        h->bins[lo] = (s_bin_t){b, 1};
        h->len++;
    }
    if (h->n == 0 || ms > h->max_ms)
        h->max_ms = ms;
    h->n++;
    return 0;
}

static void s_hist_free(s_hist_t *h)
{
    free(h->bins);
    memset(h, 0, sizeof *h);
}

/* ---- the stages blob ---------------------------------------------------- */

static void s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static size_t s_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* Reads a varint from [*off, len): 0, or -1 when it runs past the end or
 * takes more than S_VARINT_MAX bytes. */
static int s_varint_get(const uint8_t *p, size_t len, size_t *off, uint64_t *out)
{
    uint64_t v = 0;
    for (int i = 0; i < S_VARINT_MAX; i++) {
        if (*off >= len)
            return -1;
        uint8_t b = p[(*off)++];
        v |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

/* A checked blob: where each present stage's bins start. */
typedef struct {
    uint8_t mask;
    struct {
        uint64_t n, max_ms;
        uint32_t nbins;
        size_t off; /* first bin's gap varint */
    } st[S_STAGES];
    const uint8_t *p;
    size_t len; /* without the CRC */
} s_blob_t;

/* Checks every rule of the STAGES BLOB format. Returns NULL and fills *b,
 * or a static sentence naming the rule broken. Nothing is read past len. */
static const char *s_blob_parse(const void *data, size_t len, s_blob_t *b)
{
    const uint8_t *p = data;
    memset(b, 0, sizeof *b);
    if (!p || len < 6)
        return "blob shorter than 6 bytes";
    if (ordo_crc32c(0, p, len - 4) != s_get32(p + len - 4))
        return "blob CRC mismatch";
    len -= 4;
    if (p[0] != S_BLOB_VERSION)
        return "unknown blob version";
    if (p[1] & ~((1u << S_STAGES) - 1))
        return "unknown stage bits";
    b->mask = p[1];
    b->p = p;
    b->len = len;
    size_t off = 2;
    for (int s = 0; s < S_STAGES; s++) {
        if (!(b->mask & (1u << s)))
            continue;
        uint64_t n, max_ms, nbins;
        if (s_varint_get(p, len, &off, &n) != 0 || s_varint_get(p, len, &off, &max_ms) != 0 ||
            s_varint_get(p, len, &off, &nbins) != 0)
            return "stage header runs past the blob";
        if (n == 0)
            return "stage with no sample";
        if (nbins == 0 || nbins > S_BINS || nbins > n)
            return "stage bin count out of range";
        b->st[s].n = n;
        b->st[s].max_ms = max_ms;
        b->st[s].nbins = (uint32_t)nbins;
        b->st[s].off = off;
        uint64_t sum = 0;
        uint64_t bin = 0;
        for (uint64_t i = 0; i < nbins; i++) {
            uint64_t gap, count;
            if (s_varint_get(p, len, &off, &gap) != 0 || s_varint_get(p, len, &off, &count) != 0)
                return "bins run past the blob";
            if (gap >= S_BINS)
                return "bin index out of range";
            bin = i == 0 ? gap : bin + 1 + gap;
            if (bin >= S_BINS)
                return "bin index out of range";
            if (count == 0)
                return "empty bin";
            if (__builtin_add_overflow(sum, count, &sum) || sum > n)
                return "bin counts exceed the sample count";
        }
        if (sum != n)
            return "bin counts do not add up to the sample count";
        if (bin != s_bin_of(max_ms))
            return "largest sample not in the last bin";
    }
    if (off != len)
        return "bytes after the last stage";
    return NULL;
}

/* Iterates the bins of stage s of a parsed blob. */
typedef struct {
    const s_blob_t *b;
    size_t off;
    uint32_t left;
    uint32_t bin;
    bool first;
} s_bins_it_t;

static void s_bins_begin(s_bins_it_t *it, const s_blob_t *b, int s)
{
    *it = (s_bins_it_t){b, b->st[s].off, b->st[s].nbins, 0, true};
}

/* The next bin (the blob was checked: the reads cannot fail). */
static bool s_bins_next(s_bins_it_t *it, uint32_t *bin, uint64_t *count)
{
    uint64_t gap = 0, c = 0;
    if (it->left == 0 || s_varint_get(it->b->p, it->b->len, &it->off, &gap) != 0 ||
        s_varint_get(it->b->p, it->b->len, &it->off, &c) != 0)
        return false;
    it->bin = it->first ? (uint32_t)gap : it->bin + 1 + (uint32_t)gap;
    it->first = false;
    it->left--;
    *bin = it->bin;
    *count = c;
    return true;
}

/* ---- state -------------------------------------------------------------- */

typedef struct s_cell {
    struct s_cell *next; /* hash chain */
    int64_t restaurant_id;
    int64_t minute;
    int64_t count[S_COUNTS];
    int64_t revenue_cents;
    int64_t cfrom[S_CFROM];
    s_hist_t stage[S_STAGES];
    bool dirty; /* changed since its last write */
    bool full;  /* holds the cell's whole value, not a delta over its row */
} s_cell_t;

enum { S_O_DIRTY = 1, S_O_IN_DB = 2, S_O_FINISHED = 4 };

typedef struct s_order {
    struct s_order *next; /* hash chain */
    uint64_t hash;
    int64_t restaurant_id;
    int64_t total_cents;
    int64_t created_us;
    int64_t last_us;
    uint8_t status; /* ordo_status_t */
    uint8_t flags;  /* S_O_* */
    uint8_t id_len;
    char id[ORDO_ORDER_ID_MAX];
} s_order_t;

typedef struct {
    sqlite3 *db;                                                       /* the actor's */
    sqlite3_stmt *cell_get, *cell_put, *order_put, *order_del, *range; /* owned */
    uint64_t seed;
    /* live orders; finished ones still to delete wait in `dirty` only */
    s_order_t **obuckets; /* owned, with the orders */
    size_t onb, ocount;
    s_order_t **dirty; /* owned array; its FINISHED orders are owned here */
    size_t ndirty, dirty_cap;
    /* cells in memory */
    s_cell_t **cbuckets; /* owned, with the cells */
    size_t cnb, ccount;
    s_cell_t *all_cache;   /* the last all-restaurant cell used (or NULL) */
    int64_t max_minute;    /* newest minute applied */
    int64_t db_max_minute; /* newest minute of any row (INT64_MIN: none) */
    uint8_t *blob;         /* owned: encoding buffer */
    size_t blob_cap;
    bool failed; /* sticky: a failed apply or flush leaves state unknown */
} s_state_t;

#define S_OPEN_BUCKETS 1024

/* Logs a failure and makes the state refuse further work. */
static int s_fail(s_state_t *st, const char *what)
{
    ordo_log_error(S_MOD, "%s", what);
    st->failed = true;
    return -1;
}

/* The same, for a failed SQLite call, with SQLite's message. */
static int s_fail_db(s_state_t *st, const char *what)
{
    ordo_log_error(S_MOD, "%s: %s", what, sqlite3_errmsg(st->db));
    st->failed = true;
    return -1;
}

static int64_t s_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static int64_t s_ceil_div(int64_t a, int64_t b) /* b > 0 */
{
    int64_t q = a / b;
    return a % b > 0 ? q + 1 : q;
}

/* ---- orders ------------------------------------------------------------- */

static int s_rehash_orders(s_state_t *st, size_t nb)
{
    s_order_t **nbk = calloc(nb, sizeof *nbk);
    if (!nbk)
        return -1;
    for (size_t i = 0; i < st->onb; i++) {
        s_order_t *o = st->obuckets[i];
        while (o) {
            s_order_t *next = o->next;
            size_t j = o->hash & (nb - 1);
            o->next = nbk[j];
            nbk[j] = o;
            o = next;
        }
    }
    free(st->obuckets);
    st->obuckets = nbk;
    st->onb = nb;
    return 0;
}

static s_order_t *s_order_find(s_state_t *st, uint64_t h, const char *id, size_t len)
{
    for (s_order_t *o = st->obuckets[h & (st->onb - 1)]; o; o = o->next)
        if (o->hash == h && o->id_len == len && memcmp(o->id, id, len) == 0)
            return o;
    return NULL;
}

/* Links a new order (zeroed but for id and hash). NULL: no memory. */
static s_order_t *s_order_add(s_state_t *st, uint64_t h, const char *id, size_t len)
{
    if (st->ocount >= st->onb && s_rehash_orders(st, st->onb * 2) != 0)
        return NULL;
    s_order_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->hash = h;
    o->id_len = (uint8_t)len;
    memcpy(o->id, id, len);
    size_t j = h & (st->onb - 1);
    o->next = st->obuckets[j];
    st->obuckets[j] = o;
    st->ocount++;
    return o;
}

static void s_order_unlink(s_state_t *st, s_order_t *o)
{
    s_order_t **pp = &st->obuckets[o->hash & (st->onb - 1)];
    while (*pp && *pp != o)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = o->next;
        st->ocount--;
    }
    o->next = NULL;
}

static int s_dirty_reserve(s_state_t *st)
{
    if (st->ndirty < st->dirty_cap)
        return 0;
    size_t cap = st->dirty_cap ? st->dirty_cap * 2 : 256;
    s_order_t **d = realloc(st->dirty, cap * sizeof *d);
    if (!d)
        return -1;
    st->dirty = d;
    st->dirty_cap = cap;
    return 0;
}

/* Puts o on the dirty list (room was reserved). */
static void s_order_touch(s_state_t *st, s_order_t *o)
{
    if (o->flags & S_O_DIRTY)
        return;
    o->flags |= S_O_DIRTY;
    st->dirty[st->ndirty++] = o;
}

/* The order reached Delivered or Cancelled: out of the table; its row, if
 * any, is deleted at the next flush. */
static void s_order_finish(s_state_t *st, s_order_t *o)
{
    s_order_unlink(st, o);
    if (!(o->flags & (S_O_DIRTY | S_O_IN_DB))) {
        free(o);
        return;
    }
    o->flags |= S_O_FINISHED;
    s_order_touch(st, o);
}

/* ---- cells -------------------------------------------------------------- */

static uint64_t s_cell_hash(int64_t r, int64_t minute)
{
    return ordo_hash_mix((uint64_t)r * 0x9e3779b97f4a7c15ull ^ (uint64_t)minute);
}

static int s_rehash_cells(s_state_t *st, size_t nb)
{
    s_cell_t **nbk = calloc(nb, sizeof *nbk);
    if (!nbk)
        return -1;
    for (size_t i = 0; i < st->cnb; i++) {
        s_cell_t *c = st->cbuckets[i];
        while (c) {
            s_cell_t *next = c->next;
            size_t j = s_cell_hash(c->restaurant_id, c->minute) & (nb - 1);
            c->next = nbk[j];
            nbk[j] = c;
            c = next;
        }
    }
    free(st->cbuckets);
    st->cbuckets = nbk;
    st->cnb = nb;
    return 0;
}

/* The cell (r, minute), made (empty, a delta) if absent. NULL: no memory. */
static s_cell_t *s_cell_get(s_state_t *st, int64_t r, int64_t minute)
{
    size_t j = s_cell_hash(r, minute) & (st->cnb - 1);
    for (s_cell_t *c = st->cbuckets[j]; c; c = c->next)
        if (c->restaurant_id == r && c->minute == minute)
            return c;
    if (st->ccount >= st->cnb) {
        if (s_rehash_cells(st, st->cnb * 2) != 0)
            return NULL;
        j = s_cell_hash(r, minute) & (st->cnb - 1);
    }
    s_cell_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->restaurant_id = r;
    c->minute = minute;
    c->next = st->cbuckets[j];
    st->cbuckets[j] = c;
    st->ccount++;
    return c;
}

static void s_cell_free(s_cell_t *c)
{
    for (int s = 0; s < S_STAGES; s++)
        s_hist_free(&c->stage[s]);
    free(c);
}

/* The restaurant's cell (NULL for a negative id) and the all-restaurant
 * cell of a minute. -1: no memory. */
static int s_cells(s_state_t *st, int64_t r, int64_t minute, s_cell_t **cr, s_cell_t **ca)
{
    if (!st->all_cache || st->all_cache->minute != minute) {
        st->all_cache = s_cell_get(st, S_ALL, minute);
        if (!st->all_cache)
            return -1;
    }
    *ca = st->all_cache;
    *cr = NULL;
    if (r >= 0 && !(*cr = s_cell_get(st, r, minute)))
        return -1;
    return 0;
}

static int s_add(int64_t *a, int64_t b)
{
    return __builtin_add_overflow(*a, b, a) ? -1 : 0;
}

/* ---- apply -------------------------------------------------------------- */

static int s_sample(s_cell_t *cr, s_cell_t *ca, int stage, int64_t from_us, int64_t to_us)
{
    int64_t d;
    if (__builtin_sub_overflow(to_us, from_us, &d) || d < 0)
        d = to_us > from_us ? INT64_MAX : 0;
    uint64_t ms = (uint64_t)(d / 1000);
    if ((cr && s_hist_add(&cr->stage[stage], ms) != 0) || s_hist_add(&ca->stage[stage], ms) != 0)
        return -1;
    return 0;
}

/* The event's type from its name: one character picks the candidate,
 * one compare confirms it (this runs once per event). */
static ordo_event_type_t s_event_type(const char *name)
{
    ordo_event_type_t t;
    if (strncmp(name, "Order", 5) != 0)
        return ORDO_EVT_NONE;
    switch (name[5]) {
    case 'C':
        t = name[6] == 'r'   ? ORDO_EVT_ORDER_CREATED
            : name[6] == 'o' ? ORDO_EVT_ORDER_CONFIRMED
                             : ORDO_EVT_ORDER_CANCELLED;
        break;
    case 'P': t = ORDO_EVT_ORDER_PREPARING; break;
    case 'R': t = ORDO_EVT_ORDER_READY; break;
    case 'O': t = ORDO_EVT_ORDER_OUT_FOR_DELIVERY; break;
    case 'D': t = ORDO_EVT_ORDER_DELIVERED; break;
    default: return ORDO_EVT_NONE;
    }
    return strcmp(name + 5, ordo_event_type_name(t) + 5) == 0 ? t : ORDO_EVT_NONE;
}

static int s_apply(void *state, const ordo_client_event_t *ev)
{
    s_state_t *st = state;
    if (st->failed)
        return -1;
    if (!ev->type)
        return 0;
    ordo_event_type_t t = s_event_type(ev->type);
    if (t == ORDO_EVT_NONE)
        return 0; /* a type this version does not count */
    size_t len = ev->order_id ? strlen(ev->order_id) : 0;
    if (len == 0 || len > ORDO_ORDER_ID_MAX) {
        ordo_log_error(S_MOD, "event at position %" PRIu64 ": order id of %zu bytes", ev->position,
                       len);
        st->failed = true;
        return -1;
    }
    if (s_dirty_reserve(st) != 0)
        return s_fail(st, "out of memory");
    uint64_t h = ordo_hash64(ev->order_id, len, st->seed);
    s_order_t *o = s_order_find(st, h, ev->order_id, len);
    int64_t minute = s_floor_div(ev->timestamp_us, S_MINUTE_US);
    s_cell_t *cr, *ca;

    if (t == ORDO_EVT_ORDER_CREATED) {
        if (o) {
            ordo_log_warn(S_MOD, "position %" PRIu64 ": order %s created twice; ignored",
                          ev->position, ev->order_id);
            return 0;
        }
        if (s_cells(st, ev->restaurant_id, minute, &cr, &ca) != 0 ||
            !(o = s_order_add(st, h, ev->order_id, len)))
            return s_fail(st, "out of memory");
        o->restaurant_id = ev->restaurant_id;
        o->total_cents = ev->total_cents;
        o->created_us = o->last_us = ev->timestamp_us;
        o->status = ORDO_STATUS_CREATED;
        s_order_touch(st, o);
        if (cr)
            cr->count[S_CREATED]++, cr->dirty = true;
        ca->count[S_CREATED]++, ca->dirty = true;
        if (minute > st->max_minute)
            st->max_minute = minute;
        return 0;
    }
    if (!o)
        return 0; /* an order this model did not see created */
    if (!ordo_event_allowed((ordo_status_t)o->status, t)) {
        ordo_log_warn(S_MOD, "position %" PRIu64 ": %s does not follow %s for order %s; ignored",
                      ev->position, ev->type, ordo_status_name((ordo_status_t)o->status),
                      ev->order_id);
        return 0;
    }
    if (s_cells(st, o->restaurant_id, minute, &cr, &ca) != 0)
        return s_fail(st, "out of memory");
    int rc = 0;
    switch (t) {
    case ORDO_EVT_ORDER_CONFIRMED:
        rc = s_sample(cr, ca, S_CONFIRM, o->last_us, ev->timestamp_us);
        if (cr)
            cr->count[S_CONFIRMED]++;
        ca->count[S_CONFIRMED]++;
        break;
    case ORDO_EVT_ORDER_PREPARING:
        rc = s_sample(cr, ca, S_START, o->last_us, ev->timestamp_us);
        break;
    case ORDO_EVT_ORDER_READY:
        rc = s_sample(cr, ca, S_PREPARE, o->last_us, ev->timestamp_us);
        break;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY:
        rc = s_sample(cr, ca, S_PICKUP, o->last_us, ev->timestamp_us);
        break;
    case ORDO_EVT_ORDER_DELIVERED:
        rc = s_sample(cr, ca, S_DELIVER, o->last_us, ev->timestamp_us);
        if (rc == 0)
            rc = s_sample(cr, ca, S_TOTAL, o->created_us, ev->timestamp_us);
        if (cr) {
            cr->count[S_DELIVERED]++;
            rc |= s_add(&cr->revenue_cents, o->total_cents);
        }
        ca->count[S_DELIVERED]++;
        rc |= s_add(&ca->revenue_cents, o->total_cents);
        break;
    case ORDO_EVT_ORDER_CANCELLED: {
        ordo_status_t from = ORDO_STATUS_NONE;
        if (ev->previous_status)
            from = ordo_status_from_name(ev->previous_status, strlen(ev->previous_status));
        if (from < ORDO_STATUS_CREATED || from > ORDO_STATUS_PREPARING)
            from = (ordo_status_t)o->status;
        if (cr)
            cr->count[S_CANCELLED]++, cr->cfrom[from - ORDO_STATUS_CREATED]++;
        ca->count[S_CANCELLED]++, ca->cfrom[from - ORDO_STATUS_CREATED]++;
        break;
    }
    default: break;
    }
    if (cr)
        cr->dirty = true;
    ca->dirty = true;
    if (rc != 0)
        return s_fail(st, "out of memory or revenue overflow");
    if (minute > st->max_minute)
        st->max_minute = minute;
    o->status = (uint8_t)ordo_status_after(t);
    o->last_us = ev->timestamp_us;
    if (ordo_status_is_final((ordo_status_t)o->status))
        s_order_finish(st, o);
    else
        s_order_touch(st, o);
    return 0;
}

/* ---- flush -------------------------------------------------------------- */

/* Merges a checked blob's stage s into a histogram. -1: no memory or a
 * count that would overflow. */
static int s_hist_merge(s_hist_t *h, const s_blob_t *b, int s)
{
    uint32_t nb = b->st[s].nbins;
    s_bin_t *out = malloc(((size_t)h->len + nb) * sizeof *out);
    if (!out)
        return -1;
    s_bins_it_t it;
    s_bins_begin(&it, b, s);
    uint32_t bin = 0, i = 0, k = 0;
    uint64_t count = 0;
    bool have = s_bins_next(&it, &bin, &count);
    while (i < h->len || have) {
        if (have && (i == h->len || bin < h->bins[i].bin)) {
            out[k++] = (s_bin_t){bin, count};
            have = s_bins_next(&it, &bin, &count);
        } else if (have && bin == h->bins[i].bin) {
            out[k] = h->bins[i++];
            if (__builtin_add_overflow(out[k].count, count, &out[k].count)) {
                free(out);
                return -1;
            }
            k++;
            have = s_bins_next(&it, &bin, &count);
        } else {
            out[k++] = h->bins[i++];
        }
    }
    uint64_t n;
    if (__builtin_add_overflow(h->n, b->st[s].n, &n)) {
        free(out);
        return -1;
    }
    if (h->n == 0 || b->st[s].max_ms > h->max_ms)
        h->max_ms = b->st[s].max_ms;
    h->n = n;
    free(h->bins);
    h->bins = out;
    h->len = h->cap = k;
    return 0;
}

/* Reads the integer columns first..first+n-1 of a cell row into out,
 * refusing non-integers and (for counts) negatives. */
static const char *s_row_ints(sqlite3_stmt *q, int first, int64_t *out, int n, bool counts)
{
    for (int i = 0; i < n; i++) {
        if (sqlite3_column_type(q, first + i) != SQLITE_INTEGER)
            return "a counter is not an integer";
        out[i] = sqlite3_column_int64(q, first + i);
        if (counts && out[i] < 0)
            return "a negative count";
    }
    return NULL;
}

/* A cell row read from a statement whose columns from `first` are
 * created, confirmed, delivered, cancelled, revenue_cents, cf_created,
 * cf_confirmed, cf_preparing, stages: checked, with its blob parsed. */
typedef struct {
    int64_t count[S_COUNTS];
    int64_t revenue_cents;
    int64_t cfrom[S_CFROM];
    s_blob_t blob;
} s_row_t;

static const char *s_row_read(sqlite3_stmt *q, int first, s_row_t *row)
{
    const char *bad = s_row_ints(q, first, row->count, S_COUNTS, true);
    if (!bad)
        bad = s_row_ints(q, first + 4, &row->revenue_cents, 1, false);
    if (!bad)
        bad = s_row_ints(q, first + 5, row->cfrom, S_CFROM, true);
    if (bad)
        return bad;
    if (sqlite3_column_type(q, first + 8) != SQLITE_BLOB)
        return "stages is not a blob";
    const void *p = sqlite3_column_blob(q, first + 8);
    int len = sqlite3_column_bytes(q, first + 8);
    return s_blob_parse(p, len > 0 ? (size_t)len : 0, &row->blob);
}

/* Adds the cell's row (if any) to its delta, making it full. */
static int s_cell_load(s_state_t *st, s_cell_t *c)
{
    sqlite3_stmt *q = st->cell_get;
    sqlite3_bind_int64(q, 1, c->restaurant_id);
    sqlite3_bind_int64(q, 2, c->minute);
    int rc = sqlite3_step(q);
    int ret = 0;
    if (rc == SQLITE_ROW) {
        s_row_t row;
        const char *bad = s_row_read(q, 0, &row);
        if (bad) {
            ordo_log_error(S_MOD,
                           "cell (restaurant %" PRId64 ", minute %" PRId64 ") is corrupt: %s",
                           c->restaurant_id, c->minute, bad);
            ret = -1;
        }
        for (int i = 0; ret == 0 && i < S_COUNTS; i++)
            ret = s_add(&c->count[i], row.count[i]);
        if (ret == 0)
            ret = s_add(&c->revenue_cents, row.revenue_cents);
        for (int i = 0; ret == 0 && i < S_CFROM; i++)
            ret = s_add(&c->cfrom[i], row.cfrom[i]);
        for (int s = 0; ret == 0 && s < S_STAGES; s++)
            if (row.blob.mask & (1u << s))
                ret = s_hist_merge(&c->stage[s], &row.blob, s);
        if (ret != 0 && !bad)
            ordo_log_error(S_MOD,
                           "cell (restaurant %" PRId64 ", minute %" PRId64
                           "): merge overflow or out of memory",
                           c->restaurant_id, c->minute);
    } else if (rc != SQLITE_DONE) {
        ordo_log_error(S_MOD, "reading a cell: %s", sqlite3_errmsg(st->db));
        ret = -1;
    }
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    if (ret == 0)
        c->full = true;
    return ret;
}

/* Encodes the cell's stages into st->blob; its length, or -1 (no memory). */
static int64_t s_cell_encode(s_state_t *st, const s_cell_t *c)
{
    size_t need = 2 + 4;
    for (int s = 0; s < S_STAGES; s++)
        need += 3 * S_VARINT_MAX + (size_t)c->stage[s].len * 2 * S_VARINT_MAX;
    if (need > st->blob_cap) {
        uint8_t *b = realloc(st->blob, need);
        if (!b)
            return -1;
        st->blob = b;
        st->blob_cap = need;
    }
    uint8_t *p = st->blob;
    size_t off = 2;
    uint8_t mask = 0;
    for (int s = 0; s < S_STAGES; s++) {
        const s_hist_t *h = &c->stage[s];
        if (h->n == 0)
            continue;
        mask |= (uint8_t)(1u << s);
        off += s_varint_put(p + off, h->n);
        off += s_varint_put(p + off, h->max_ms);
        off += s_varint_put(p + off, h->len);
        for (uint32_t i = 0; i < h->len; i++) {
            uint32_t gap = i == 0 ? h->bins[i].bin : h->bins[i].bin - h->bins[i - 1].bin - 1;
            off += s_varint_put(p + off, gap);
            off += s_varint_put(p + off, h->bins[i].count);
        }
    }
    p[0] = S_BLOB_VERSION;
    p[1] = mask;
    s_put32(p + off, ordo_crc32c(0, p, off));
    return (int64_t)(off + 4);
}

static int s_cell_write(s_state_t *st, s_cell_t *c)
{
    int64_t len = s_cell_encode(st, c);
    if (len < 0)
        return s_fail(st, "out of memory");
    sqlite3_stmt *q = st->cell_put;
    sqlite3_bind_int64(q, 1, c->restaurant_id);
    sqlite3_bind_int64(q, 2, c->minute);
    for (int i = 0; i < S_COUNTS; i++)
        sqlite3_bind_int64(q, 3 + i, c->count[i]);
    sqlite3_bind_int64(q, 7, c->revenue_cents);
    for (int i = 0; i < S_CFROM; i++)
        sqlite3_bind_int64(q, 8 + i, c->cfrom[i]);
    sqlite3_bind_blob(q, 11, st->blob, (int)len, SQLITE_STATIC);
    int rc = ordo_pstore_step_done(st->db, q);
    sqlite3_clear_bindings(q);
    return rc;
}

static int s_order_write(s_state_t *st, s_order_t *o)
{
    sqlite3_stmt *q;
    if (o->flags & S_O_FINISHED) {
        q = st->order_del;
        sqlite3_bind_text(q, 1, o->id, o->id_len, SQLITE_STATIC);
    } else {
        q = st->order_put;
        sqlite3_bind_text(q, 1, o->id, o->id_len, SQLITE_STATIC);
        sqlite3_bind_int64(q, 2, o->restaurant_id);
        sqlite3_bind_int64(q, 3, o->total_cents);
        sqlite3_bind_int64(q, 4, o->created_us);
        sqlite3_bind_int64(q, 5, o->last_us);
        sqlite3_bind_int64(q, 6, o->status);
    }
    int rc = ordo_pstore_step_done(st->db, q);
    sqlite3_clear_bindings(q);
    return rc;
}

static int s_flush(void *state)
{
    s_state_t *st = state;
    if (st->failed)
        return -1;
    /* orders: rows of the changed live ones, deletes of finished ones */
    size_t i;
    for (i = 0; i < st->ndirty; i++) {
        s_order_t *o = st->dirty[i];
        if ((o->flags & S_O_FINISHED) && !(o->flags & S_O_IN_DB)) {
            free(o);
            continue;
        }
        if (s_order_write(st, o) != 0)
            break;
        if (o->flags & S_O_FINISHED)
            free(o);
        else
            o->flags = (uint8_t)((o->flags | S_O_IN_DB) & ~S_O_DIRTY);
    }
    if (i < st->ndirty) {
        memmove(st->dirty, st->dirty + i, (st->ndirty - i) * sizeof *st->dirty);
        st->ndirty -= i;
        return s_fail(st, "writing the live orders");
    }
    st->ndirty = 0;
    if (st->dirty_cap > 65536) { /* give a burst's list back */
        free(st->dirty);
        st->dirty = NULL;
        st->dirty_cap = 0;
    }
    /* cells: a delta whose minute may have a row is merged with it first */
    int64_t wm = st->db_max_minute, newest = wm;
    for (size_t b = 0; b < st->cnb; b++) {
        for (s_cell_t *c = st->cbuckets[b]; c; c = c->next) {
            if (!c->dirty)
                continue;
            if (!c->full) {
                if (c->minute <= wm && s_cell_load(st, c) != 0)
                    return s_fail(st, "merging a cell with its row");
                c->full = true;
            }
            if (s_cell_write(st, c) != 0)
                return s_fail(st, "writing a cell");
            c->dirty = false;
            if (c->minute > newest)
                newest = c->minute;
        }
    }
    st->db_max_minute = newest;
    /* retire written cells of past minutes */
    for (size_t b = 0; b < st->cnb; b++) {
        s_cell_t **pp = &st->cbuckets[b];
        while (*pp) {
            s_cell_t *c = *pp;
            if (c->minute + S_RETAIN_MINUTES <= st->max_minute) {
                *pp = c->next;
                if (c == st->all_cache)
                    st->all_cache = NULL;
                s_cell_free(c);
                st->ccount--;
            } else {
                pp = &c->next;
            }
        }
    }
    /* give back tables a burst grew */
    size_t nb = st->cnb;
    while (nb > S_OPEN_BUCKETS && st->ccount < nb / 8)
        nb /= 2;
    if (nb != st->cnb && s_rehash_cells(st, nb) != 0) {
        /* keeping the bigger table is fine */
    }
    nb = st->onb;
    while (nb > S_OPEN_BUCKETS && st->ocount < nb / 8)
        nb /= 2;
    if (nb != st->onb && s_rehash_orders(st, nb) != 0) {
        /* likewise */
    }
    return 0;
}

/* ---- open / close --------------------------------------------------------- */

static void s_close(void **state)
{
    if (!state || !*state)
        return;
    s_state_t *st = *state;
    sqlite3_finalize(st->cell_get);
    sqlite3_finalize(st->cell_put);
    sqlite3_finalize(st->order_put);
    sqlite3_finalize(st->order_del);
    sqlite3_finalize(st->range);
    for (size_t i = 0; i < st->ndirty; i++)
        if (st->dirty[i]->flags & S_O_FINISHED)
            free(st->dirty[i]);
    free(st->dirty);
    for (size_t b = 0; b < st->onb; b++) {
        s_order_t *o = st->obuckets[b];
        while (o) {
            s_order_t *next = o->next;
            free(o);
            o = next;
        }
    }
    free(st->obuckets);
    for (size_t b = 0; b < st->cnb; b++) {
        s_cell_t *c = st->cbuckets[b];
        while (c) {
            s_cell_t *next = c->next;
            s_cell_free(c);
            c = next;
        }
    }
    free(st->cbuckets);
    free(st->blob);
    free(st);
    *state = NULL;
}

static const char s_schema[] =
    "CREATE TABLE IF NOT EXISTS analytics_cells("
    " restaurant_id INTEGER NOT NULL, minute INTEGER NOT NULL,"
    " created INTEGER NOT NULL, confirmed INTEGER NOT NULL, delivered INTEGER NOT NULL,"
    " cancelled INTEGER NOT NULL, revenue_cents INTEGER NOT NULL,"
    " cf_created INTEGER NOT NULL, cf_confirmed INTEGER NOT NULL,"
    " cf_preparing INTEGER NOT NULL, stages BLOB NOT NULL,"
    " PRIMARY KEY(restaurant_id, minute)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS analytics_orders("
    " order_id TEXT NOT NULL PRIMARY KEY, restaurant_id INTEGER NOT NULL,"
    " total_cents INTEGER NOT NULL, created_us INTEGER NOT NULL,"
    " last_us INTEGER NOT NULL, status INTEGER NOT NULL) WITHOUT ROWID;";

#define S_CELL_COLS                                                                                \
    "created, confirmed, delivered, cancelled, revenue_cents, cf_created, cf_confirmed, "          \
    "cf_preparing, stages"

/* Loads the live orders' rows. 0 or -1 (logged). */
static int s_load_orders(s_state_t *st)
{
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(st->db,
                           "SELECT order_id, restaurant_id, total_cents, created_us, last_us,"
                           " status FROM analytics_orders",
                           -1, &q, NULL) != SQLITE_OK)
        return s_fail_db(st, "reading the live orders");
    int rc, ret = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        const void *id = sqlite3_column_blob(q, 0);
        int len = sqlite3_column_bytes(q, 0);
        bool ints = true;
        for (int i = 1; i <= 5; i++)
            ints = ints && sqlite3_column_type(q, i) == SQLITE_INTEGER;
        int64_t status = sqlite3_column_int64(q, 5);
        if (!id || len < 1 || len > ORDO_ORDER_ID_MAX || !ints || status < ORDO_STATUS_CREATED ||
            status > ORDO_STATUS_OUT_FOR_DELIVERY) {
            ordo_log_error(S_MOD, "a live order row is corrupt");
            ret = -1;
            break;
        }
        uint64_t h = ordo_hash64(id, (size_t)len, st->seed);
        if (s_order_find(st, h, id, (size_t)len)) {
            ordo_log_error(S_MOD, "a live order row is there twice");
            ret = -1;
            break;
        }
        s_order_t *o = s_order_add(st, h, id, (size_t)len);
        if (!o) {
            ordo_log_error(S_MOD, "out of memory loading the live orders");
            ret = -1;
            break;
        }
        o->restaurant_id = sqlite3_column_int64(q, 1);
        o->total_cents = sqlite3_column_int64(q, 2);
        o->created_us = sqlite3_column_int64(q, 3);
        o->last_us = sqlite3_column_int64(q, 4);
        o->status = (uint8_t)status;
        o->flags = S_O_IN_DB;
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ordo_log_error(S_MOD, "reading the live orders: %s", sqlite3_errmsg(st->db));
        ret = -1;
    }
    sqlite3_finalize(q);
    return ret;
}

static void *s_open(sqlite3 *db)
{
    s_state_t *st = calloc(1, sizeof *st);
    if (!st) {
        ordo_log_error(S_MOD, "out of memory");
        return NULL;
    }
    st->db = db;
    st->seed = ordo_process_seed();
    st->onb = st->cnb = S_OPEN_BUCKETS;
    st->obuckets = calloc(st->onb, sizeof *st->obuckets);
    st->cbuckets = calloc(st->cnb, sizeof *st->cbuckets);
    st->max_minute = st->db_max_minute = INT64_MIN;
    void *ret = st;
    if (!st->obuckets || !st->cbuckets) {
        ordo_log_error(S_MOD, "out of memory");
        goto fail;
    }
    if (ordo_pstore_exec(db, s_schema) != 0 ||
        ordo_pstore_prepare(db,
                            "SELECT " S_CELL_COLS " FROM analytics_cells"
                            " WHERE restaurant_id = ?1 AND minute = ?2",
                            &st->cell_get) != 0 ||
        ordo_pstore_prepare(
            db,
            "INSERT OR REPLACE INTO analytics_cells(restaurant_id, minute, " S_CELL_COLS
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            &st->cell_put) != 0 ||
        ordo_pstore_prepare(db,
                            "INSERT OR REPLACE INTO analytics_orders(order_id, restaurant_id,"
                            " total_cents, created_us, last_us, status)"
                            " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                            &st->order_put) != 0 ||
        ordo_pstore_prepare(db, "DELETE FROM analytics_orders WHERE order_id = ?1",
                            &st->order_del) != 0 ||
        ordo_pstore_prepare(db,
                            "SELECT minute, " S_CELL_COLS " FROM analytics_cells"
                            " WHERE restaurant_id = ?1 AND minute >= ?2 AND minute < ?3"
                            " ORDER BY minute",
                            &st->range) != 0)
        goto fail;
    sqlite3_stmt *q;
    if (sqlite3_prepare_v2(db, "SELECT MAX(minute) FROM analytics_cells", -1, &q, NULL) !=
        SQLITE_OK) {
        s_fail_db(st, "reading the newest minute");
        goto fail;
    }
    int rc = sqlite3_step(q);
    if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) == SQLITE_INTEGER)
        st->max_minute = st->db_max_minute = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    if (rc != SQLITE_ROW) {
        s_fail_db(st, "reading the newest minute");
        goto fail;
    }
    if (s_load_orders(st) != 0)
        goto fail;
    return ret;
fail:
    s_close(&ret);
    return NULL;
}

/* ---- query -------------------------------------------------------------- */

typedef struct {
    int64_t count[S_COUNTS];
    int64_t revenue_cents;
    int64_t cfrom[S_CFROM];
    struct {
        uint64_t n, p50, p95, max;
    } stage[S_STAGES];
} s_bucket_t;
_Static_assert(sizeof(s_bucket_t) == 256, "the query's memory bound counts 256 bytes a bucket");

/* One bucket's histograms being merged: dense, with a bitmap of the bins
 * in use so finishing a bucket walks and clears only those. */
typedef struct {
    uint64_t counts[S_STAGES][S_BINS];
    uint64_t used[S_STAGES][S_WORDS];
    uint64_t n[S_STAGES];
    uint64_t max_ms[S_STAGES];
} s_acc_t;

/* Adds a checked row to a bucket and the accumulator. -1 on overflow. */
static int s_acc_add(s_acc_t *acc, s_bucket_t *bk, const s_row_t *row)
{
    for (int i = 0; i < S_COUNTS; i++)
        if (s_add(&bk->count[i], row->count[i]) != 0)
            return -1;
    if (s_add(&bk->revenue_cents, row->revenue_cents) != 0)
        return -1;
    for (int i = 0; i < S_CFROM; i++)
        if (s_add(&bk->cfrom[i], row->cfrom[i]) != 0)
            return -1;
    for (int s = 0; s < S_STAGES; s++) {
        if (!(row->blob.mask & (1u << s)))
            continue;
        if (__builtin_add_overflow(acc->n[s], row->blob.st[s].n, &acc->n[s]))
            return -1;
        if (row->blob.st[s].max_ms > acc->max_ms[s])
            acc->max_ms[s] = row->blob.st[s].max_ms;
        s_bins_it_t it;
        s_bins_begin(&it, &row->blob, s);
        uint32_t bin;
        uint64_t count;
        while (s_bins_next(&it, &bin, &count)) {
            if (__builtin_add_overflow(acc->counts[s][bin], count, &acc->counts[s][bin]))
                return -1;
            acc->used[s][bin / 64] |= 1ull << (bin % 64);
        }
    }
    return 0;
}

/* ceil(p / 100 * n), without overflow. */
static uint64_t s_rank(uint64_t n, uint64_t p)
{
    return n / 100 * p + ((n % 100) * p + 99) / 100;
}

/* Moves the accumulated stages into the bucket and clears the accumulator. */
static void s_acc_finish(s_acc_t *acc, s_bucket_t *bk)
{
    for (int s = 0; s < S_STAGES; s++) {
        uint64_t n = acc->n[s];
        if (n == 0)
            continue;
        uint64_t r50 = s_rank(n, 50), r95 = s_rank(n, 95), cum = 0;
        bool got50 = false, got95 = false;
        for (int w = 0; w < S_WORDS; w++) {
            uint64_t bits = acc->used[s][w];
            while (bits) {
                uint32_t bin = (uint32_t)(w * 64 + __builtin_ctzll(bits));
                bits &= bits - 1;
                cum += acc->counts[s][bin];
                acc->counts[s][bin] = 0;
                if (!got50 && cum >= r50)
                    bk->stage[s].p50 = s_bin_low(bin), got50 = true;
                if (!got95 && cum >= r95)
                    bk->stage[s].p95 = s_bin_low(bin), got95 = true;
            }
            acc->used[s][w] = 0;
        }
        /* The sample of rank n is the largest: exact, however few samples. */
        if (r50 == n)
            bk->stage[s].p50 = acc->max_ms[s];
        if (r95 == n)
            bk->stage[s].p95 = acc->max_ms[s];
        bk->stage[s].n = n;
        bk->stage[s].max = acc->max_ms[s];
        acc->n[s] = 0;
        acc->max_ms[s] = 0;
    }
}

static int s_pack_str(msgpack_packer *pk, const char *s)
{
    return msgpack_pack_str_with_body(pk, s, strlen(s));
}

static int s_pack_buckets(msgpack_packer *pk, const s_bucket_t *bks, int64_t n, int64_t first_us,
                          int64_t bucket_us)
{
    int rc = s_pack_str(pk, "buckets");
    rc |= msgpack_pack_array(pk, (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        const s_bucket_t *bk = &bks[i];
        rc |= msgpack_pack_map(pk, 8);
        rc |= s_pack_str(pk, "start_us");
        rc |= msgpack_pack_int64(pk, first_us + i * bucket_us);
        for (int k = 0; k < S_COUNTS; k++) {
            rc |= s_pack_str(pk, s_count_names[k]);
            rc |= msgpack_pack_int64(pk, bk->count[k]);
        }
        rc |= s_pack_str(pk, "revenue_cents");
        rc |= msgpack_pack_int64(pk, bk->revenue_cents);
        rc |= s_pack_str(pk, "cancelled_from");
        rc |= msgpack_pack_map(pk, S_CFROM);
        for (int k = 0; k < S_CFROM; k++) {
            rc |= s_pack_str(pk, ordo_status_name((ordo_status_t)(ORDO_STATUS_CREATED + k)));
            rc |= msgpack_pack_int64(pk, bk->cfrom[k]);
        }
        int nst = 0;
        for (int s = 0; s < S_STAGES; s++)
            nst += bk->stage[s].n > 0;
        rc |= s_pack_str(pk, "stages");
        rc |= msgpack_pack_map(pk, (size_t)nst);
        for (int s = 0; s < S_STAGES; s++) {
            if (bk->stage[s].n == 0)
                continue;
            rc |= s_pack_str(pk, s_stage_names[s]);
            rc |= msgpack_pack_map(pk, 4);
            rc |= s_pack_str(pk, "n");
            rc |= msgpack_pack_uint64(pk, bk->stage[s].n);
            rc |= s_pack_str(pk, "p50_ms");
            rc |= msgpack_pack_uint64(pk, bk->stage[s].p50);
            rc |= s_pack_str(pk, "p95_ms");
            rc |= msgpack_pack_uint64(pk, bk->stage[s].p95);
            rc |= s_pack_str(pk, "max_ms");
            rc |= msgpack_pack_uint64(pk, bk->stage[s].max);
        }
    }
    return rc;
}

/* Reads every row of the range into the buckets, one bucket at a time
 * (rows come in minute order). 0, or -1 (logged). */
static int s_read_range(s_state_t *st, int64_t r, int64_t first_minute, int64_t end_minute,
                        int64_t minutes_per_bucket, s_bucket_t *bks, s_acc_t *acc)
{
    sqlite3_stmt *q = st->range;
    sqlite3_bind_int64(q, 1, r);
    sqlite3_bind_int64(q, 2, first_minute);
    sqlite3_bind_int64(q, 3, end_minute);
    int rc, ret = 0;
    int64_t cur = -1;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        int64_t minute = sqlite3_column_int64(q, 0);
        if (sqlite3_column_type(q, 0) != SQLITE_INTEGER || minute < first_minute ||
            minute >= end_minute) {
            ordo_log_error(S_MOD, "a cell row has a bad minute");
            ret = -1;
            break;
        }
        int64_t idx = (minute - first_minute) / minutes_per_bucket;
        if (idx < cur) {
            ordo_log_error(S_MOD, "cell rows out of minute order");
            ret = -1;
            break;
        }
        if (idx != cur) {
            if (cur >= 0)
                s_acc_finish(acc, &bks[cur]);
            cur = idx;
        }
        s_row_t row;
        const char *bad = s_row_read(q, 1, &row);
        if (bad || s_acc_add(acc, &bks[idx], &row) != 0) {
            ordo_log_error(S_MOD,
                           "cell (restaurant %" PRId64 ", minute %" PRId64 ") is corrupt: %s", r,
                           minute, bad ? bad : "sums overflow");
            ret = -1;
            break;
        }
    }
    if (ret == 0 && rc != SQLITE_DONE) {
        ordo_log_error(S_MOD, "reading cells: %s", sqlite3_errmsg(st->db));
        ret = -1;
    }
    if (ret == 0 && cur >= 0)
        s_acc_finish(acc, &bks[cur]);
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    return ret;
}

static int s_query(void *state, const ordo_pquery_t *q, msgpack_packer *pk, ordo_perror_t *err)
{
    s_state_t *st = state;
    if (q->type != ORDO_PQ_ANALYTICS) {
        ordo_perror_set(err, "bad_request", "the analytics projection does not answer %s",
                        ordo_pq_type_name(q->type));
        return -1;
    }
    int64_t b = q->bucket_us;
    if (b != S_MINUTE_US && b != 60 * S_MINUTE_US && b != 1440 * S_MINUTE_US) {
        ordo_perror_field(err, "bucket", "bucket must be minute, hour or day");
        return -1;
    }
    /* buckets k * b for k in [k0, kend): exactly those starting in [from, to) */
    int64_t k0 = s_ceil_div(q->from_us, b), kend = s_ceil_div(q->to_us, b);
    int64_t n = kend > k0 ? kend - k0 : 0;
    if (q->from_us >= q->to_us || n > ORDO_PQ_BUCKETS_MAX) {
        ordo_perror_field(err, "to_us", "from_us must be below to_us, with at most %d buckets",
                          ORDO_PQ_BUCKETS_MAX);
        return -1;
    }
    int64_t mpb = b / S_MINUTE_US;
    s_bucket_t *bks = n ? calloc((size_t)n, sizeof *bks) : NULL;
    s_acc_t *acc = n ? calloc(1, sizeof *acc) : NULL;
    int ret = -1;
    if (n && (!bks || !acc)) {
        ordo_log_error(S_MOD, "out of memory for %" PRId64 " buckets", n);
        ordo_perror_set(err, "unavailable", "out of memory");
        goto out;
    }
    bool no_cells = q->has_restaurant_id && q->restaurant_id < 0; /* ids are >= 0 */
    if (n && !no_cells &&
        s_read_range(st, q->has_restaurant_id ? q->restaurant_id : S_ALL, k0 * mpb, kend * mpb, mpb,
                     bks, acc) != 0) {
        ordo_perror_set(err, "unavailable", "the analytics store could not be read");
        goto out;
    }
    if (s_pack_buckets(pk, bks, n, n ? k0 * b : 0, b) != 0) {
        ordo_perror_set(err, "unavailable", "out of memory packing the reply");
        goto out;
    }
    ret = 1;
out:
    free(acc);
    free(bks);
    return ret;
}

/* Test hook (declared by the tests, not in a header): the live orders and
 * cells this model holds in memory, and finished orders awaiting their
 * row's delete. */
void ordo_model_analytics_footprint(const void *state, size_t *orders, size_t *cells,
                                    size_t *pending);
void ordo_model_analytics_footprint(const void *state, size_t *orders, size_t *cells,
                                    size_t *pending)
{
    const s_state_t *st = state;
    *orders = st->ocount;
    *cells = st->ccount;
    *pending = st->ndirty;
}

const ordo_model_ops_t ordo_model_analytics = {"analytics", s_open,  s_close,
                                               s_apply,     s_flush, s_query,
                                               NULL};
