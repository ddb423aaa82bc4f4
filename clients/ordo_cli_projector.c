/* ordo-cli's read side: the queries of ordo-projector (PROJECTIONS.md),
 * sent to its endpoint (--projector, ORDO_PROJECTOR) with libordo's raw
 * calls. Requests are packed with msgpack-c's packer; replies are read with
 * the project's reader (ordo_mp), never with msgpack-c's unpacker: they are
 * another program's bytes. libordo has validated each reply (one
 * well-formed map, bounded nesting, UTF-8) and every read below still
 * checks the type of what it reads, so a reply that is not what
 * PROJECTIONS.md says ends as "no answer" (exit 3), never as a wrong
 * table. Options, output and exit statuses follow ordo_cli.c's. */
#include "ordo.h"
#include "ordo_cli.h"
#include "ordo_json.h"
#include "ordo_mp.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATUSES_MAX 16 /* a --status list, as the projector takes */
#define WAIT_MS_MAX 10000
#define WAIT_MS_DEFAULT 1000 /* the projector's, when min_position has no wait_ms */

/* Options only some commands take, as bits (s_option_names in order). */
enum {
    P_MIN_POSITION = 1 << 0,
    P_WAIT_MS = 1 << 1,
    P_STATUS = 1 << 2,
    P_RESTAURANT = 1 << 3,
    P_USER = 1 << 4,
    P_CREATED_FROM = 1 << 5,
    P_CREATED_TO = 1 << 6,
    P_LIMIT = 1 << 7,
    P_CURSOR = 1 << 8,
    P_ALL = 1 << 9,
    P_FROM = 1 << 10,
    P_TO = 1 << 11,
    P_BUCKET = 1 << 12,
    P_POSITION = 1 << 13,
};
#define P_ANY (P_MIN_POSITION | P_WAIT_MS) /* every query takes these */
#define P_PAGE (P_LIMIT | P_CURSOR | P_ALL)

static const char *const s_option_names[] = {
    "min-position", "wait-ms", "status", "restaurant", "user", "created-from", "created-to",
    "limit",        "cursor",  "all",    "from",       "to",   "bucket",       "position",
};

typedef enum {
    K_SUMMARY,
    K_ORDERS,
    K_BOARD,
    K_USER,
    K_ANALYTICS,
    K_AS_OF,
    K_PROJECTIONS,
    K_REBUILD,
} s_kind_t;

typedef struct {
    const char *name; /* on the command line */
    const char *type; /* on the wire */
    s_kind_t kind;
    const char *arg;  /* its one argument, NULL: none */
    unsigned options; /* P_* it accepts */
} s_pcommand_t;

static const s_pcommand_t s_pcommands[] = {
    {"summary", "GetOrderSummary", K_SUMMARY, "ORDER", P_ANY},
    {"orders", "ListOrders", K_ORDERS, NULL,
     P_ANY | P_STATUS | P_RESTAURANT | P_USER | P_CREATED_FROM | P_CREATED_TO | P_PAGE},
    {"board", "RestaurantBoard", K_BOARD, "RESTAURANT", P_ANY},
    {"user", "UserHistory", K_USER, "USER", P_ANY | P_PAGE},
    {"analytics", "Analytics", K_ANALYTICS, NULL, P_ANY | P_FROM | P_TO | P_BUCKET | P_RESTAURANT},
    {"as-of", "OrdersAsOf", K_AS_OF, "TIME", P_ANY | P_POSITION | P_STATUS | P_RESTAURANT | P_PAGE},
    {"projections", "ProjectionStatus", K_PROJECTIONS, NULL, P_ANY},
    {"rebuild", "Rebuild", K_REBUILD, "NAME", P_ANY},
};

/* The seven statuses, in the order of an order's life. */
static const char *const s_statuses[] = {
    "Created", "Confirmed", "Preparing", "Ready", "OutForDelivery", "Delivered", "Cancelled",
};

/* Analytics stages, as PROJECTIONS.md names them. */
static const char *const s_stages[] = {"confirm", "start", "prepare", "pickup", "deliver", "total"};

typedef struct {
    const char *endpoint;
    bool json;
    int timeout_ms;
    unsigned given; /* P_* seen */
    const s_pcommand_t *cmd;
    const char *arg;   /* summary: ORDER; rebuild: NAME; as-of: TIME or NULL */
    int64_t id;        /* board: RESTAURANT; user: USER */
    int64_t at_us;     /* as-of TIME */
    int64_t min_position;
    int64_t wait_ms;
    char *status_copy; /* owned: --status, split at commas in place */
    const char *status[STATUSES_MAX];
    size_t n_status;
    int64_t restaurant_id;
    int64_t user_id;
    int64_t created_from_us;
    int64_t created_to_us;
    int64_t limit;
    const char *cursor;
    int64_t from_us;
    int64_t to_us;
    const char *bucket;
    int64_t position;
    ordo_cli_curve_t curve;
} s_popts_t;

bool ordo_cli_projector_command(const char *word)
{
    for (size_t i = 0; i < sizeof s_pcommands / sizeof s_pcommands[0]; i++)
        if (strcmp(word, s_pcommands[i].name) == 0)
            return true;
    return false;
}

void ordo_cli_projector_usage(FILE *out)
{
    fprintf(out,
            "Read-side queries, answered by ordo-projector:\n"
            "  summary ORDER                         an order's summary\n"
            "  orders [--status S[,S...]] [--restaurant N] [--user N]\n"
            "         [--created-from TIME] [--created-to TIME] [--limit N] [--cursor C] [--all]\n"
            "                                        orders, oldest first\n"
            "  board RESTAURANT                      its orders per status, then the active ones\n"
            "  user USER [--limit N] [--cursor C] [--all]\n"
            "                                        a user's orders, newest first\n"
            "  analytics --from TIME --to TIME [--bucket minute|hour|day] [--restaurant N]\n"
            "                                        counts, revenue and stage times per bucket\n"
            "  as-of TIME|--position P [--status S[,S...]] [--restaurant N] [--limit N]\n"
            "        [--cursor C] [--all]            every order's status at TIME or position P\n"
            "  projections                           the read models: state, position, lag\n"
            "  rebuild NAME                          rebuilds a read model from position 1\n"
            "  Every query also takes --min-position P (answer once the read model has\n"
            "  applied position P, else fail with lagging) and --wait-ms N (how long the\n"
            "  projector may wait for that; default 1000, at most 10000). --all follows\n"
            "  next_cursor to the end. TIME as for get --at.\n"
            "  --projector ENDPOINT   the projector (default tcp://127.0.0.1:7702;\n"
            "                         ORDO_PROJECTOR)\n");
}

/* ---- requests ---------------------------------------------------------- */

/* Packs a map's entries, or only counts them when pk is NULL: the same
 * code runs twice, so the map's header always matches its entries. */
typedef struct {
    msgpack_packer *pk;
    uint32_t n;
    bool failed; /* out of memory */
} s_body_t;

static void s_pack_str(s_body_t *b, const char *s)
{
    size_t len = strlen(s);
    b->failed |= msgpack_pack_str(b->pk, len) != 0 || msgpack_pack_str_body(b->pk, s, len) != 0;
}

/* A key, and whether to pack its value. */
static bool s_key(s_body_t *b, const char *key)
{
    b->n++;
    if (b->pk)
        s_pack_str(b, key);
    return b->pk != NULL;
}

static void s_put_int(s_body_t *b, const char *key, int64_t v)
{
    if (s_key(b, key))
        b->failed |= msgpack_pack_int64(b->pk, v) != 0;
}

static void s_put_str(s_body_t *b, const char *key, const char *s)
{
    if (s_key(b, key))
        s_pack_str(b, s);
}

/* `status`: one string, or an array of them. */
static void s_put_status(s_body_t *b, const s_popts_t *o)
{
    if (!(o->given & P_STATUS))
        return;
    if (o->n_status == 1) {
        s_put_str(b, "status", o->status[0]);
        return;
    }
    if (!s_key(b, "status"))
        return;
    b->failed |= msgpack_pack_array(b->pk, o->n_status) != 0;
    for (size_t i = 0; i < o->n_status; i++)
        s_pack_str(b, o->status[i]);
}

/* Every entry of the request, the cursor being `cursor` (NULL: none). */
static void s_entries(s_body_t *b, const s_popts_t *o, const char *request_id, const char *cursor)
{
    s_put_str(b, "type", o->cmd->type);
    s_put_str(b, "request_id", request_id);
    if (o->given & P_MIN_POSITION)
        s_put_int(b, "min_position", o->min_position);
    if (o->given & P_WAIT_MS)
        s_put_int(b, "wait_ms", o->wait_ms);
    switch (o->cmd->kind) {
    case K_SUMMARY: s_put_str(b, "order_id", o->arg); break;
    case K_BOARD: s_put_int(b, "restaurant_id", o->id); break;
    case K_USER: s_put_int(b, "user_id", o->id); break;
    case K_REBUILD: s_put_str(b, "projection", o->arg); break;
    case K_ANALYTICS:
        s_put_int(b, "from_us", o->from_us);
        s_put_int(b, "to_us", o->to_us);
        if (o->bucket)
            s_put_str(b, "bucket", o->bucket);
        break;
    case K_AS_OF:
        if (o->given & P_POSITION)
            s_put_int(b, "at_position", o->position);
        else
            s_put_int(b, "at_us", o->at_us);
        break;
    default: break;
    }
    if (o->cmd->kind == K_ORDERS || o->cmd->kind == K_AS_OF)
        s_put_status(b, o);
    if ((o->cmd->options & P_RESTAURANT) && (o->given & P_RESTAURANT))
        s_put_int(b, "restaurant_id", o->restaurant_id);
    if (o->given & P_USER)
        s_put_int(b, "user_id", o->user_id);
    if (o->given & P_CREATED_FROM)
        s_put_int(b, "created_from_us", o->created_from_us);
    if (o->given & P_CREATED_TO)
        s_put_int(b, "created_to_us", o->created_to_us);
    if (o->given & P_LIMIT)
        s_put_int(b, "limit", o->limit);
    if (cursor)
        s_put_str(b, "cursor", cursor);
}

/* How long to wait for an answer: the projector may hold it for up to
 * wait_ms when asked for min_position, and --timeout is on top of that. */
static int s_timeout(const s_popts_t *o)
{
    int64_t wait = 0;
    if (o->given & P_MIN_POSITION)
        wait = o->given & P_WAIT_MS ? o->wait_ms : WAIT_MS_DEFAULT;
    return o->timeout_ms + (int)wait;
}

/* Sends the command's query and waits for its reply (*reply: malloc'd).
 * Returns what ordo_client_call_raw returns. */
static int s_query(ordo_client_t *c, const s_popts_t *o, const char *cursor, uint8_t **reply,
                   size_t *len)
{
    char id[ORDO_ID_SIZE];
    ordo_client_new_request_id(c, id);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    s_body_t count = {0}, body = {.pk = &pk};
    s_entries(&count, o, id, cursor);
    body.failed = msgpack_pack_map(&pk, count.n) != 0;
    s_entries(&body, o, id, cursor);
    int rc = ORDO_E_NOMEM;
    if (!body.failed)
        rc = ordo_client_call_raw(c, sb.data, sb.size, s_timeout(o), reply, len);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

/* ---- reading replies --------------------------------------------------- */

/* A string of the reply: a view into its bytes, not NUL-terminated. */
typedef struct {
    const char *p; /* NULL: absent or nil */
    uint32_t n;
} s_text_t;

/* The first value that was not what PROJECTIONS.md says, if any: reads
 * after a fault still return zeros, and the caller reports it once. */
typedef struct {
    const char *bad; /* the key at fault, NULL while all is well */
} s_check_t;

static void s_fault(s_check_t *ck, const char *key)
{
    if (!ck->bad)
        ck->bad = key;
}

/* Points *val at the value of `key` in the map `map` is at; false if the
 * map has no such key (or `map` is not at a map). */
static bool s_find(ordo_mp_t map, const char *key, ordo_mp_t *val)
{
    uint32_t n, len = (uint32_t)strlen(key);
    if (!ordo_mp_read_map(&map, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        const char *k;
        uint32_t kl;
        if (ordo_mp_read_str(&map, &k, &kl)) {
            if (kl == len && memcmp(k, key, len) == 0) {
                *val = map;
                return true;
            }
        } else if (!ordo_mp_skip(&map)) {
            return false;
        }
        if (!ordo_mp_skip(&map))
            return false;
    }
    return false;
}

/* Finds `key`: false when it is absent or nil. */
static bool s_present(ordo_mp_t map, const char *key, ordo_mp_t *val)
{
    return s_find(map, key, val) && ordo_mp_peek(val) != ORDO_MP_NIL;
}

/* An integer; 0 when absent or nil. */
static int64_t s_int_at(ordo_mp_t map, const char *key, s_check_t *ck)
{
    ordo_mp_t v;
    int64_t i = 0;
    if (s_present(map, key, &v) && !ordo_mp_read_int(&v, &i))
        s_fault(ck, key);
    return i;
}

/* A string; {NULL, 0} when absent or nil. */
static s_text_t s_text_at(ordo_mp_t map, const char *key, s_check_t *ck)
{
    ordo_mp_t v;
    s_text_t t = {NULL, 0};
    if (s_present(map, key, &v) && !ordo_mp_read_str(&v, &t.p, &t.n)) {
        s_fault(ck, key);
        t.p = NULL;
    }
    return t;
}

/* An array: *items at its first element, its length returned (0 when
 * absent or nil). */
static uint32_t s_array_at(ordo_mp_t map, const char *key, ordo_mp_t *items, s_check_t *ck)
{
    uint32_t n = 0;
    if (s_present(map, key, items) && !ordo_mp_read_array(items, &n))
        s_fault(ck, key);
    return n;
}

/* A map: false when absent or nil (*val at it otherwise). */
static bool s_map_at(ordo_mp_t map, const char *key, ordo_mp_t *val, s_check_t *ck)
{
    if (!s_present(map, key, val))
        return false;
    if (ordo_mp_peek(val) != ORDO_MP_MAP) {
        s_fault(ck, key);
        return false;
    }
    return true;
}

/* Copies a string for printing: NUL-terminated, control characters shown
 * as '?' (a reply must not steer the terminal). */
static const char *s_c(s_text_t t, char *buf, size_t size)
{
    size_t n = t.p ? (t.n < size - 1 ? t.n : size - 1) : 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)t.p[i];
        buf[i] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
    }
    buf[n] = '\0';
    return buf;
}

/* A summary record (PROJECTIONS.md): its strings are views. */
typedef struct {
    s_text_t order_id, status, cancel_reason, cancelled_from;
    int64_t version, user_id, restaurant_id, total_cents, item_count;
    int64_t created_at_us, updated_at_us;
    bool has_courier;
    int64_t courier_id;
} s_summary_t;

static void s_read_summary(ordo_mp_t at, s_summary_t *s, s_check_t *ck)
{
    ordo_mp_t v;
    memset(s, 0, sizeof *s);
    if (ordo_mp_peek(&at) != ORDO_MP_MAP) {
        s_fault(ck, "order");
        return;
    }
    s->order_id = s_text_at(at, "order_id", ck);
    s->status = s_text_at(at, "status", ck);
    if (!s->order_id.p || !s->status.p)
        s_fault(ck, "order_id");
    s->version = s_int_at(at, "version", ck);
    s->user_id = s_int_at(at, "user_id", ck);
    s->restaurant_id = s_int_at(at, "restaurant_id", ck);
    s->total_cents = s_int_at(at, "total_cents", ck);
    s->item_count = s_int_at(at, "item_count", ck);
    s->created_at_us = s_int_at(at, "created_at_us", ck);
    s->updated_at_us = s_int_at(at, "updated_at_us", ck);
    s->has_courier = s_present(at, "courier_id", &v);
    s->courier_id = s_int_at(at, "courier_id", ck);
    s->cancel_reason = s_text_at(at, "cancel_reason", ck);
    s->cancelled_from = s_text_at(at, "cancelled_from", ck);
}

/* ---- tables ------------------------------------------------------------ */

#define COLS_MAX 12
#define TABLE_ROWS_KEPT 10000 /* --all: rows kept before printing */

/* Rows kept as text until printed, so each column is as wide as its
 * widest cell. Pages of one listing print into one table: widths only
 * grow, and the heading comes once. */
typedef struct {
    int n_cols;
    const char *const *head;
    const char *align; /* 'l' or 'r' per column */
    size_t width[COLS_MAX];
    char **cells;      /* owned: n_rows * n_cols strings, each owned */
    size_t n_rows, cap;
    bool headed;
    size_t printed;    /* rows printed so far */
} s_table_t;

/* Characters, not bytes: UTF-8 continuation bytes take no column. */
static size_t s_columns(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

static void s_table_init(s_table_t *t, const char *const *head, const char *align)
{
    memset(t, 0, sizeof *t);
    t->n_cols = (int)strlen(align);
    t->head = head;
    t->align = align;
    for (int i = 0; i < t->n_cols; i++)
        t->width[i] = s_columns(head[i]);
}

/* Copies one row of n_cols cells. False: out of memory. */
static bool s_table_add(s_table_t *t, const char *const *row)
{
    if (t->n_rows == t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        char **cells = realloc(t->cells, cap * (size_t)t->n_cols * sizeof *cells);
        if (!cells)
            return false;
        t->cells = cells;
        t->cap = cap;
    }
    char **cell = t->cells + t->n_rows * (size_t)t->n_cols;
    for (int i = 0; i < t->n_cols; i++) {
        if (!(cell[i] = strdup(row[i]))) {
            while (i--)
                free(cell[i]);
            return false;
        }
        size_t w = s_columns(row[i]);
        if (w > t->width[i])
            t->width[i] = w;
    }
    t->n_rows++;
    return true;
}

static void s_table_line(const s_table_t *t, const char *const *cells)
{
    for (int i = 0; i < t->n_cols; i++) {
        size_t pad = t->width[i] - s_columns(cells[i]);
        bool last = i == t->n_cols - 1;
        if (i)
            fputs("  ", stdout);
        if (t->align[i] == 'r')
            printf("%*s", (int)pad, "");
        fputs(cells[i], stdout);
        if (t->align[i] == 'l' && !last)
            printf("%*s", (int)pad, "");
    }
    putchar('\n');
}

/* Prints the rows kept (the heading first, once) and forgets them. */
static void s_table_print(s_table_t *t)
{
    if (t->n_rows && !t->headed) {
        s_table_line(t, t->head);
        t->headed = true;
    }
    for (size_t r = 0; r < t->n_rows; r++) {
        char **cell = t->cells + r * (size_t)t->n_cols;
        s_table_line(t, (const char *const *)cell);
        for (int i = 0; i < t->n_cols; i++)
            free(cell[i]);
    }
    t->printed += t->n_rows;
    t->n_rows = 0;
}

/* Forgets the rows kept after the first n. */
static void s_table_truncate(s_table_t *t, size_t n)
{
    for (size_t i = n * (size_t)t->n_cols; i < t->n_rows * (size_t)t->n_cols; i++)
        free(t->cells[i]);
    if (n < t->n_rows)
        t->n_rows = n;
}

static void s_table_free(s_table_t *t)
{
    s_table_truncate(t, 0);
    free(t->cells);
    t->cells = NULL;
    t->n_rows = t->cap = 0;
}

/* ---- readable output --------------------------------------------------- */

static const char *const s_order_head[] = {"ORDER", "STATUS", "VERSION", "USER", "RESTAURANT",
                                           "ITEMS", "TOTAL",  "CREATED", "UPDATED"};
#define ORDER_ALIGN "llrrrrrll"
static const char *const s_board_head[] = {"ORDER", "STATUS", "VERSION", "USER",
                                           "ITEMS", "TOTAL",  "CREATED", "UPDATED"};
#define BOARD_ALIGN "llrrrrll"

/* One summary as a row of s_order_head (with_restaurant) or s_board_head. */
static bool s_add_summary(s_table_t *t, const s_summary_t *s, bool with_restaurant)
{
    char id[128], status[32], ver[24], user[24], rest[24], items[24], total[32], created[40],
        updated[40];
    snprintf(ver, sizeof ver, "%" PRId64, s->version);
    snprintf(user, sizeof user, "%" PRId64, s->user_id);
    snprintf(rest, sizeof rest, "%" PRId64, s->restaurant_id);
    snprintf(items, sizeof items, "%" PRId64, s->item_count);
    const char *c_id = s_c(s->order_id, id, sizeof id);
    const char *c_status = s_c(s->status, status, sizeof status);
    const char *c_total = ordo_cli_money(s->total_cents, total);
    const char *c_created = ordo_cli_time(s->created_at_us, created);
    const char *c_updated = ordo_cli_time(s->updated_at_us, updated);
    if (with_restaurant) {
        const char *row[] = {c_id, c_status, ver, user, rest, items, c_total, c_created, c_updated};
        return s_table_add(t, row);
    }
    const char *row[] = {c_id, c_status, ver, user, items, c_total, c_created, c_updated};
    return s_table_add(t, row);
}

static void s_print_summary(const s_summary_t *s, int64_t position)
{
    char buf[512], money[32], when[40];
    printf("order        %s\n", s_c(s->order_id, buf, sizeof buf));
    printf("status       %s\n", s_c(s->status, buf, sizeof buf));
    printf("version      %" PRId64 "\n", s->version);
    printf("user         %" PRId64 "\n", s->user_id);
    printf("restaurant   %" PRId64 "\n", s->restaurant_id);
    printf("items        %" PRId64 "\n", s->item_count);
    printf("total        %s\n", ordo_cli_money(s->total_cents, money));
    if (s->has_courier)
        printf("courier      %" PRId64 "\n", s->courier_id);
    if (s->cancel_reason.p || s->cancelled_from.p) {
        printf("cancelled    %s", s_c(s->cancel_reason, buf, sizeof buf));
        if (s->cancelled_from.p)
            printf(" (was %s)", s_c(s->cancelled_from, buf, sizeof buf));
        putchar('\n');
    }
    printf("created      %s\n", ordo_cli_time(s->created_at_us, when));
    printf("updated      %s\n", ordo_cli_time(s->updated_at_us, when));
    printf("position     %" PRId64 "\n", position);
}

/* A cursor as a shell word: quoted unless it is plain. */
static void s_print_cursor(const char *cursor)
{
    bool plain = *cursor != '\0';
    for (const char *p = cursor; *p; p++)
        plain &= strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:=+/,@",
                        *p) != NULL;
    if (plain) {
        fputs(cursor, stdout);
        return;
    }
    putchar('\'');
    for (const char *p = cursor; *p; p++)
        if (*p == '\'')
            fputs("'\\''", stdout);
        else
            putchar((unsigned char)*p < 0x20 ? '?' : *p);
    putchar('\'');
}

/* "2026-12-04T19:00Z", or "2026-12-04" for days. */
static const char *s_bucket_label(int64_t start_us, bool days, char buf[40])
{
    ordo_cli_time(start_us, buf); /* 2026-12-04T19:00:00.000000Z */
    if (days)
        buf[10] = '\0';
    else if (strlen(buf) >= 16)
        strcpy(buf + 16, "Z");
    return buf;
}

static const char *const s_as_of_head[] = {"ORDER", "STATUS", "VERSION", "SINCE"};

/* ---- running a query --------------------------------------------------- */

/* What a listing has shown so far, across its pages. */
typedef struct {
    s_table_t table;
    int64_t rows;
    int64_t total;          /* as-of: `total` of the first page */
    int64_t pos_lo, pos_hi; /* the `position` of the pages */
    int pages;
} s_listing_t;

static int s_no_answer(const s_popts_t *o, int rc, int timeout_ms)
{
    if (rc == ORDO_E_TIMEOUT)
        fprintf(stderr, "ordo-cli: no answer from %s within %d ms\n", o->endpoint, timeout_ms);
    else
        fprintf(stderr, "ordo-cli: %s (%s)\n", ordo_client_strerror(rc), o->endpoint);
    return rc == ORDO_E_INVALID ? EXIT_USAGE : EXIT_NO_ANSWER;
}

static int s_bad_reply(const s_popts_t *o, const char *key)
{
    fprintf(stderr,
            "ordo-cli: the answer from %s is not a %s reply as PROJECTIONS.md has it (at `%s`)\n",
            o->endpoint, o->cmd->type, key);
    return EXIT_NO_ANSWER;
}

/* The projector's error: "ordo-cli: CODE: message (field F)", and for
 * lagging the positions it carries. */
static int s_refused(const s_popts_t *o, const uint8_t *reply, size_t len)
{
    ordo_mp_t top, err;
    ordo_mp_init(&top, reply, len);
    s_check_t ck = {0};
    if (!s_map_at(top, "error", &err, &ck))
        return s_bad_reply(o, "error");
    char code[64], message[512], field[128];
    s_c(s_text_at(err, "code", &ck), code, sizeof code);
    s_c(s_text_at(err, "message", &ck), message, sizeof message);
    s_c(s_text_at(err, "field", &ck), field, sizeof field);
    if (ck.bad || !code[0])
        return s_bad_reply(o, ck.bad ? ck.bad : "code");
    fprintf(stderr, "ordo-cli: %s: %s", code, message);
    if (field[0] && !strstr(message, field))
        fprintf(stderr, " (field %s)", field);
    ordo_mp_t v;
    if (s_present(err, "position", &v) && s_present(err, "min_position", &v)) {
        int64_t at = s_int_at(err, "position", &ck), want = s_int_at(err, "min_position", &ck);
        if (!ck.bad && !strstr(message, "position"))
            fprintf(stderr, " (the read model is at position %" PRId64 ", asked for %" PRId64 ")",
                    at, want);
    }
    fputc('\n', stderr);
    return EXIT_REFUSED;
}

/* Adds a page's `orders` (summaries) to the listing's table. */
static const char *s_page_orders(ordo_mp_t top, s_listing_t *l, s_check_t *ck)
{
    ordo_mp_t it;
    uint32_t n = s_array_at(top, "orders", &it, ck);
    for (uint32_t i = 0; i < n && !ck->bad; i++) {
        s_summary_t s;
        s_read_summary(it, &s, ck);
        if (ck->bad)
            break;
        if (!s_add_summary(&l->table, &s, true))
            return "out of memory";
        l->rows++;
        if (!ordo_mp_skip(&it))
            s_fault(ck, "orders");
    }
    return NULL;
}

/* OrdersAsOf's rows: {order_id, status, version, since_us}. */
static const char *s_page_as_of(ordo_mp_t top, s_listing_t *l, s_check_t *ck)
{
    ordo_mp_t it;
    uint32_t n = s_array_at(top, "orders", &it, ck);
    for (uint32_t i = 0; i < n && !ck->bad; i++) {
        if (ordo_mp_peek(&it) != ORDO_MP_MAP) {
            s_fault(ck, "orders");
            break;
        }
        char id[128], status[32], ver[24], since[40];
        s_text_t oid = s_text_at(it, "order_id", ck), st = s_text_at(it, "status", ck);
        snprintf(ver, sizeof ver, "%" PRId64, s_int_at(it, "version", ck));
        ordo_cli_time(s_int_at(it, "since_us", ck), since);
        if (!oid.p || !st.p)
            s_fault(ck, "order_id");
        if (ck->bad)
            break;
        const char *row[] = {s_c(oid, id, sizeof id), s_c(st, status, sizeof status), ver, since};
        if (!s_table_add(&l->table, row))
            return "out of memory";
        l->rows++;
        if (!ordo_mp_skip(&it))
            s_fault(ck, "orders");
    }
    return NULL;
}

static const char *s_print_board(const s_popts_t *o, ordo_mp_t top, int64_t position,
                                  s_check_t *ck)
{
    ordo_mp_t counts;
    int64_t n[7] = {0};
    if (s_map_at(top, "counts", &counts, ck))
        for (int i = 0; i < 7; i++)
            n[i] = s_int_at(counts, s_statuses[i], ck);
    else
        s_fault(ck, "counts");
    s_table_t t;
    s_table_init(&t, s_board_head, BOARD_ALIGN);
    ordo_mp_t it;
    uint32_t n_active = s_array_at(top, "active", &it, ck);
    const char *fail = NULL;
    for (uint32_t i = 0; i < n_active && !ck->bad && !fail; i++) {
        s_summary_t s;
        s_read_summary(it, &s, ck);
        if (!ck->bad && !s_add_summary(&t, &s, false))
            fail = "out of memory";
        if (!ordo_mp_skip(&it))
            s_fault(ck, "active");
    }
    if (!ck->bad && !fail) {
        printf("restaurant %" PRId64 " (position %" PRId64 ")\n", o->id, position);
        for (int i = 0; i < 7; i++)
            printf("  %-16s %" PRId64 "\n", s_statuses[i], n[i]);
        printf("\n%" PRIu32 " active order%s%s\n", n_active, n_active == 1 ? "" : "s",
               n_active ? ":" : "");
        s_table_print(&t);
    }
    s_table_free(&t);
    return fail;
}

static const char *const s_analytics_head[] = {
    "BUCKET", "CREATED", "CONFIRMED", "DELIVERED", "CANCELLED", "REVENUE",
    "CONFIRM", "START",  "PREPARE",   "PICKUP",    "DELIVER",   "TOTAL"};

static const char *s_print_analytics(const s_popts_t *o, ordo_mp_t top, int64_t position,
                                     s_check_t *ck)
{
    s_table_t t;
    s_table_init(&t, s_analytics_head, "lrrrrrrrrrrr");
    bool days = o->bucket && strcmp(o->bucket, "day") == 0;
    ordo_mp_t it;
    uint32_t n = s_array_at(top, "buckets", &it, ck);
    const char *fail = NULL;
    for (uint32_t i = 0; i < n && !ck->bad && !fail; i++) {
        if (ordo_mp_peek(&it) != ORDO_MP_MAP) {
            s_fault(ck, "buckets");
            break;
        }
        char label[40], num[5][32], stage[6][72];
        s_bucket_label(s_int_at(it, "start_us", ck), days, label);
        snprintf(num[0], sizeof num[0], "%" PRId64, s_int_at(it, "created", ck));
        snprintf(num[1], sizeof num[1], "%" PRId64, s_int_at(it, "confirmed", ck));
        snprintf(num[2], sizeof num[2], "%" PRId64, s_int_at(it, "delivered", ck));
        snprintf(num[3], sizeof num[3], "%" PRId64, s_int_at(it, "cancelled", ck));
        ordo_cli_money(s_int_at(it, "revenue_cents", ck), num[4]);
        ordo_mp_t stages, one;
        bool has_stages = s_map_at(it, "stages", &stages, ck);
        for (int k = 0; k < 6; k++) {
            if (has_stages && s_map_at(stages, s_stages[k], &one, ck))
                snprintf(stage[k], sizeof stage[k], "%" PRId64 "/%" PRId64 "/%" PRId64,
                         s_int_at(one, "p50_ms", ck), s_int_at(one, "p95_ms", ck),
                         s_int_at(one, "max_ms", ck));
            else
                strcpy(stage[k], "-");
        }
        const char *row[] = {label,    num[0],   num[1],   num[2],   num[3],   num[4],
                             stage[0], stage[1], stage[2], stage[3], stage[4], stage[5]};
        if (!ck->bad && !s_table_add(&t, row))
            fail = "out of memory";
        if (!ordo_mp_skip(&it))
            s_fault(ck, "buckets");
    }
    if (!ck->bad && !fail) {
        s_table_print(&t);
        printf("%" PRIu32 " bucket%s; stage times in ms, p50/p95/max (-: none ended in the "
               "bucket); position %" PRId64 "\n",
               n, n == 1 ? "" : "s", position);
    }
    s_table_free(&t);
    return fail;
}

static const char *const s_status_head[] = {"NAME",     "STATE",    "POSITION",
                                            "LAG",      "EVENTS/S", "GENERATION"};

static const char *s_print_projections(ordo_mp_t top, s_check_t *ck)
{
    s_table_t t;
    s_table_init(&t, s_status_head, "llrrrr");
    ordo_mp_t it;
    uint32_t n = s_array_at(top, "projections", &it, ck);
    const char *fail = NULL;
    for (uint32_t i = 0; i < n && !ck->bad && !fail; i++) {
        if (ordo_mp_peek(&it) != ORDO_MP_MAP) {
            s_fault(ck, "projections");
            break;
        }
        char name[64], state[32], num[4][24];
        s_c(s_text_at(it, "name", ck), name, sizeof name);
        s_c(s_text_at(it, "state", ck), state, sizeof state);
        snprintf(num[0], sizeof num[0], "%" PRId64, s_int_at(it, "position", ck));
        snprintf(num[1], sizeof num[1], "%" PRId64, s_int_at(it, "lag_events", ck));
        snprintf(num[2], sizeof num[2], "%" PRId64, s_int_at(it, "events_per_s", ck));
        snprintf(num[3], sizeof num[3], "%" PRId64, s_int_at(it, "generation", ck));
        const char *row[] = {name, state, num[0], num[1], num[2], num[3]};
        if (!ck->bad && !s_table_add(&t, row))
            fail = "out of memory";
        if (!ordo_mp_skip(&it))
            s_fault(ck, "projections");
    }
    int64_t head = s_int_at(top, "engine_head", ck);
    if (!ck->bad && !fail) {
        s_table_print(&t);
        printf("engine head %" PRId64 "\n", head);
    }
    s_table_free(&t);
    return fail;
}

/* Prints one reply (a page of a listing goes into l). */
static int s_show(const s_popts_t *o, const uint8_t *reply, size_t len, s_listing_t *l)
{
    ordo_mp_t top;
    ordo_mp_init(&top, reply, len);
    s_check_t ck = {0};
    ordo_mp_t v;
    if (!s_present(top, "position", &v))
        s_fault(&ck, "position");
    int64_t position = s_int_at(top, "position", &ck);
    if (l->pages++ == 0 || position < l->pos_lo)
        l->pos_lo = position;
    if (position > l->pos_hi)
        l->pos_hi = position;
    const char *fail = NULL;
    char buf[128];
    switch (o->cmd->kind) {
    case K_SUMMARY: {
        s_summary_t s;
        if (!s_present(top, "order", &v))
            s_fault(&ck, "order");
        else
            s_read_summary(v, &s, &ck);
        if (!ck.bad)
            s_print_summary(&s, position);
        break;
    }
    case K_ORDERS:
    case K_USER:
        fail = s_page_orders(top, l, &ck);
        break;
    case K_AS_OF:
        if (l->pages == 1)
            l->total = s_int_at(top, "total", &ck);
        fail = s_page_as_of(top, l, &ck);
        break;
    case K_BOARD: fail = s_print_board(o, top, position, &ck); break;
    case K_ANALYTICS: fail = s_print_analytics(o, top, position, &ck); break;
    case K_PROJECTIONS: fail = s_print_projections(top, &ck); break;
    case K_REBUILD: {
        s_text_t name = s_text_at(top, "projection", &ck);
        int64_t gen = s_int_at(top, "generation", &ck);
        if (!ck.bad)
            printf("%s: rebuilding from position 1 as generation %" PRId64
                   "; the current one answers until it has caught up (position %" PRId64 ")\n",
                   name.p ? s_c(name, buf, sizeof buf) : o->arg, gen, position);
        break;
    }
    }
    if (fail) {
        fprintf(stderr, "ordo-cli: %s\n", fail);
        return EXIT_NO_ANSWER;
    }
    if (ck.bad)
        return s_bad_reply(o, ck.bad);
    return 0;
}

/* The listing's last line: how many, at which position, and how to go on. */
static void s_print_listing_end(const s_popts_t *o, const s_listing_t *l, const char *next)
{
    char when[40];
    int64_t n = l->rows;
    if (o->cmd->kind == K_AS_OF) {
        printf("%" PRId64 " of %" PRId64 " order%s as of ", n, l->total, l->total == 1 ? "" : "s");
        if (o->given & P_POSITION)
            printf("position %" PRId64, o->position);
        else
            printf("%s", ordo_cli_time(o->at_us, when));
    } else {
        printf("%" PRId64 " order%s", n, n == 1 ? "" : "s");
    }
    if (l->pos_lo == l->pos_hi)
        printf(" (position %" PRId64 ")", l->pos_hi);
    else
        printf(" (positions %" PRId64 " to %" PRId64 ")", l->pos_lo, l->pos_hi);
    if (next) {
        printf("; more with --cursor ");
        s_print_cursor(next);
    }
    putchar('\n');
}

/* The page's next_cursor, copied (NULL: none, or nil); *bad on a wrong type. */
static char *s_next_cursor(const uint8_t *reply, size_t len, bool *bad)
{
    ordo_mp_t top;
    ordo_mp_init(&top, reply, len);
    s_check_t ck = {0};
    s_text_t t = s_text_at(top, "next_cursor", &ck);
    *bad = ck.bad != NULL;
    if (!t.p)
        return NULL;
    char *s = malloc((size_t)t.n + 1);
    if (s) {
        memcpy(s, t.p, t.n);
        s[t.n] = '\0';
    }
    return s;
}

static int s_run(const s_popts_t *o)
{
    ordo_client_t *c = ordo_client_new_with(o->endpoint, &o->curve.opts);
    if (!c) {
        fprintf(stderr, "ordo-cli: cannot use endpoint \"%s\": %s\n", o->endpoint,
                strerror(errno));
        return EXIT_USAGE;
    }
    ordo_client_set_send_timeout(c, o->timeout_ms);
    bool listing = (o->cmd->options & P_PAGE) != 0;
    s_listing_t l;
    memset(&l, 0, sizeof l);
    if (o->cmd->kind == K_AS_OF)
        s_table_init(&l.table, s_as_of_head, "llrl");
    else
        s_table_init(&l.table, s_order_head, ORDER_ALIGN);
    char *cursor = o->cursor ? strdup(o->cursor) : NULL;
    int status = 0;
    if (o->cursor && !cursor)
        status = EXIT_NO_ANSWER;
    while (status == 0) {
        uint8_t *reply = NULL;
        size_t len = 0;
        int rc = s_query(c, o, cursor, &reply, &len);
        if (rc == ORDO_E_PROTOCOL) {
            status = s_refused(o, reply, len);
        } else if (rc != 0) {
            status = s_no_answer(o, rc, s_timeout(o));
        } else if (o->json) {
            if (ordo_json_write(stdout, reply, len) != 0)
                status = s_bad_reply(o, "(top)");
            putchar('\n');
        } else {
            size_t kept = l.table.n_rows;
            if ((status = s_show(o, reply, len, &l)) != 0)
                s_table_truncate(&l.table, kept); /* none of a page that is not right */
        }
        char *next = NULL;
        bool bad = false;
        if (status == 0 && listing) {
            next = s_next_cursor(reply, len, &bad);
            if (bad)
                status = s_bad_reply(o, "next_cursor");
        }
        free(reply);
        if (status == 0 && next && cursor && strcmp(next, cursor) == 0) {
            fprintf(stderr, "ordo-cli: %s gave back the cursor it was given; stopping\n",
                    o->endpoint);
            status = EXIT_NO_ANSWER;
        }
        bool more = status == 0 && next && (o->given & P_ALL);
        /* Pages print together, up to TABLE_ROWS_KEPT rows at a time, so
         * their columns line up; when a later page fails, the earlier ones
         * still print (as they do with --json), then the error's status. */
        if (!more || l.table.n_rows >= TABLE_ROWS_KEPT)
            s_table_print(&l.table);
        if (status == 0 && listing && !more && !o->json)
            s_print_listing_end(o, &l, next);
        free(cursor);
        cursor = next;
        if (!more)
            break;
        if (ferror(stdout))
            status = EXIT_NO_ANSWER;
    }
    free(cursor);
    s_table_free(&l.table);
    ordo_client_destroy(&c);
    if (fflush(stdout) != 0 && status == 0) {
        fprintf(stderr, "ordo-cli: cannot write the output: %s\n", strerror(errno));
        status = EXIT_NO_ANSWER;
    }
    return status;
}

/* ---- the command line -------------------------------------------------- */

/* --status S[,S...]: a copy split in place. */
static bool s_parse_status(s_popts_t *o, const char *arg)
{
    free(o->status_copy);
    o->n_status = 0;
    if (!(o->status_copy = strdup(arg)))
        return false;
    for (char *s = o->status_copy, *next; s; s = next) {
        next = strchr(s, ',');
        if (next)
            *next++ = '\0';
        if (!*s || o->n_status == STATUSES_MAX)
            return false;
        o->status[o->n_status++] = s;
    }
    return true;
}

static int s_parse(int argc, char **argv, s_popts_t *o)
{
    o->endpoint = getenv("ORDO_PROJECTOR");
    if (!o->endpoint || !*o->endpoint)
        o->endpoint = ORDO_DEFAULT_PROJECTOR_ENDPOINT;
    o->timeout_ms = ORDO_DEFAULT_TIMEOUT_MS;
    ordo_cli_curve_init(&o->curve);

    enum { OPT_BASE = 256 }; /* option codes: OPT_BASE + bit index */
    static const struct option opts[] = {
        {"projector", required_argument, 0, 'p'},
        {"json", no_argument, 0, 'j'},
        {"timeout", required_argument, 0, 'T'},
        {"curve-server", required_argument, 0, 'k'},
        {"curve-cert", required_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},
        {"min-position", required_argument, 0, OPT_BASE + 0},
        {"wait-ms", required_argument, 0, OPT_BASE + 1},
        {"status", required_argument, 0, OPT_BASE + 2},
        {"restaurant", required_argument, 0, OPT_BASE + 3},
        {"user", required_argument, 0, OPT_BASE + 4},
        {"created-from", required_argument, 0, OPT_BASE + 5},
        {"created-to", required_argument, 0, OPT_BASE + 6},
        {"limit", required_argument, 0, OPT_BASE + 7},
        {"cursor", required_argument, 0, OPT_BASE + 8},
        {"all", no_argument, 0, OPT_BASE + 9},
        {"from", required_argument, 0, OPT_BASE + 10},
        {"to", required_argument, 0, OPT_BASE + 11},
        {"bucket", required_argument, 0, OPT_BASE + 12},
        {"position", required_argument, 0, OPT_BASE + 13},
        {0, 0, 0, 0}};
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":hj", opts, NULL)) != -1) {
        int64_t v;
        const char *arg = optarg;
        switch (c) {
        case 'p': o->endpoint = arg; continue;
        case 'k': o->curve.server = arg; continue;
        case 'c': o->curve.cert = arg; continue;
        case 'j': o->json = true; continue;
        case 'T':
            if (!ordo_cli_int(arg, 0, 3600 * 1000, &v))
                return ordo_cli_usage_error("--timeout wants milliseconds, not \"%s\"", arg);
            o->timeout_ms = (int)v;
            continue;
        case 'h': ordo_cli_usage(stdout); return -1;
        case 'V':
            printf("ordo-cli %s (libordo %s)\n", ORDO_CLIENT_VERSION, ORDO_CLIENT_VERSION);
            return -1;
        case ':': return ordo_cli_usage_error("%s needs a value", argv[optind - 1]);
        case '?': return ordo_cli_usage_error("unknown option \"%s\"", argv[optind - 1]);
        default: break;
        }
        if (c < OPT_BASE)
            return ordo_cli_usage_error("unknown option \"%s\"", argv[optind - 1]);
        int bit = c - OPT_BASE;
        o->given |= 1u << bit;
        bool ok = true;
        switch (1u << bit) {
        case P_MIN_POSITION: ok = ordo_cli_int(arg, 0, INT64_MAX, &o->min_position); break;
        case P_WAIT_MS: ok = ordo_cli_int(arg, 0, WAIT_MS_MAX, &o->wait_ms); break;
        case P_STATUS:
            if (!s_parse_status(o, arg))
                return ordo_cli_usage_error("--status wants STATUS[,STATUS...] (at most %d), not \"%s\"",
                                     STATUSES_MAX, arg);
            break;
        case P_RESTAURANT: ok = ordo_cli_int(arg, INT64_MIN, INT64_MAX, &o->restaurant_id); break;
        case P_USER: ok = ordo_cli_int(arg, INT64_MIN, INT64_MAX, &o->user_id); break;
        case P_CREATED_FROM: ok = ordo_cli_parse_time(arg, &o->created_from_us); break;
        case P_CREATED_TO: ok = ordo_cli_parse_time(arg, &o->created_to_us); break;
        case P_LIMIT: ok = ordo_cli_int(arg, 1, INT64_MAX, &o->limit); break;
        case P_CURSOR: o->cursor = arg; ok = *arg != '\0'; break;
        case P_ALL: break;
        case P_FROM: ok = ordo_cli_parse_time(arg, &o->from_us); break;
        case P_TO: ok = ordo_cli_parse_time(arg, &o->to_us); break;
        case P_BUCKET:
            o->bucket = arg;
            ok = strcmp(arg, "minute") == 0 || strcmp(arg, "hour") == 0 || strcmp(arg, "day") == 0;
            break;
        case P_POSITION: ok = ordo_cli_int(arg, 0, INT64_MAX, &o->position); break;
        default: break;
        }
        if (!ok) {
            fprintf(stderr, "ordo-cli: --%s: \"%s\" is not a valid value; try --help\n",
                    s_option_names[bit], arg);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc)
        return ordo_cli_usage_error("missing command");
    const char *word = argv[optind++];
    for (size_t i = 0; i < sizeof s_pcommands / sizeof s_pcommands[0]; i++)
        if (strcmp(word, s_pcommands[i].name) == 0)
            o->cmd = &s_pcommands[i];
    if (!o->cmd)
        return ordo_cli_usage_error("unknown command \"%s\"", word);
    const s_pcommand_t *cmd = o->cmd;
    bool optional = cmd->kind == K_AS_OF && (o->given & P_POSITION);
    if (cmd->arg && optind < argc)
        o->arg = argv[optind++];
    else if (cmd->arg && !optional)
        return ordo_cli_usage_error("%s needs %s", cmd->name,
                             cmd->kind == K_AS_OF ? "a TIME or --position P" : cmd->arg);
    if (optind < argc)
        return ordo_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
    for (int bit = 0; bit < (int)(sizeof s_option_names / sizeof s_option_names[0]); bit++)
        if ((o->given & (1u << bit)) && !(cmd->options & (1u << bit))) {
            fprintf(stderr, "ordo-cli: %s does not take --%s; try --help\n", cmd->name,
                    s_option_names[bit]);
            return EXIT_USAGE;
        }
    switch (cmd->kind) {
    case K_BOARD:
    case K_USER:
        if (!ordo_cli_int(o->arg, INT64_MIN, INT64_MAX, &o->id))
            return ordo_cli_usage_error("%s wants %s as an integer, not \"%s\"", cmd->name, cmd->arg,
                                 o->arg);
        break;
    case K_AS_OF:
        if (o->arg && (o->given & P_POSITION))
            return ordo_cli_usage_error("as-of takes a TIME or --position, not both");
        if (o->arg && !ordo_cli_parse_time(o->arg, &o->at_us))
            return ordo_cli_usage_error("as-of wants a TIME (ISO-8601, HH:MM[:SS] today in UTC, or "
                                 "microseconds), not \"%s\"",
                                 o->arg);
        break;
    case K_ANALYTICS:
        if (!(o->given & P_FROM) || !(o->given & P_TO))
            return ordo_cli_usage_error("analytics needs --from TIME and --to TIME");
        break;
    default: break;
    }
    return ordo_cli_curve_load(&o->curve);
}

int ordo_cli_projector_main(int argc, char **argv)
{
    s_popts_t o;
    memset(&o, 0, sizeof o);
    int status = s_parse(argc, argv, &o);
    if (status == 0)
        status = s_run(&o);
    else if (status < 0) /* --help, --version */
        status = fflush(stdout) == 0 ? 0 : EXIT_NO_ANSWER;
    free(o.status_copy);
    return status;
}
