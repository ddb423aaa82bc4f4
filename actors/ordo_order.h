/* The order aggregate: types for requests, events, order state and protocol
 * errors, and the pure functions decide() and apply() (no I/O, no clock, no
 * allocation in decide). Statuses move
 *   Created -> Confirmed -> Preparing -> Ready -> OutForDelivery -> Delivered
 * and Cancelled from Created, Confirmed or Preparing, so an order has at
 * most ORDO_MAX_VERSION events.
 *
 * Strings in requests and events are ordo_str_t views into a buffer owned by
 * the caller (usually the decoded message); ordo_order_t owns its copies. */
#ifndef ORDO_ORDER_H
#define ORDO_ORDER_H

#include "ordo_limits.h" /* the limits of PROTOCOL.md, with every other */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>


/* A string view: `len` bytes at `ptr`, not NUL-terminated. */
typedef struct {
    const char *ptr;
    uint32_t len;
} ordo_str_t;

#define ORDO_STR(lit) ((ordo_str_t){(lit), (uint32_t)(sizeof(lit) - 1)})

typedef enum {
    ORDO_STATUS_NONE = 0, /* the order does not exist */
    ORDO_STATUS_CREATED,
    ORDO_STATUS_CONFIRMED,
    ORDO_STATUS_PREPARING,
    ORDO_STATUS_READY,
    ORDO_STATUS_OUT_FOR_DELIVERY,
    ORDO_STATUS_DELIVERED,
    ORDO_STATUS_CANCELLED,
    ORDO_STATUS_COUNT_
} ordo_status_t;

/* Every request type on the wire; commands first. */
typedef enum {
    ORDO_REQ_NONE = 0,
    ORDO_REQ_CREATE_ORDER,
    ORDO_REQ_CONFIRM_ORDER,
    ORDO_REQ_START_PREPARING,
    ORDO_REQ_MARK_READY,
    ORDO_REQ_PICK_UP,
    ORDO_REQ_DELIVER,
    ORDO_REQ_CANCEL_ORDER,
    ORDO_REQ_GET_ORDER,
    ORDO_REQ_GET_HISTORY,
    ORDO_REQ_READ_ALL,
    ORDO_REQ_STATS,
    ORDO_REQ_PING,
    ORDO_REQ_PARTITIONS, /* docs/protocol.md's cluster extension */
    ORDO_REQ_COUNT_
} ordo_request_type_t;

typedef enum {
    ORDO_EVT_NONE = 0,
    ORDO_EVT_ORDER_CREATED,
    ORDO_EVT_ORDER_CONFIRMED,
    ORDO_EVT_ORDER_PREPARING,
    ORDO_EVT_ORDER_READY,
    ORDO_EVT_ORDER_OUT_FOR_DELIVERY,
    ORDO_EVT_ORDER_DELIVERED,
    ORDO_EVT_ORDER_CANCELLED,
    ORDO_EVT_COUNT_
} ordo_event_type_t;

/* Protocol error codes (the `code` of an error reply). */
typedef enum {
    ORDO_CODE_OK = 0,
    ORDO_CODE_BAD_REQUEST,
    ORDO_CODE_UNKNOWN_TYPE,
    ORDO_CODE_NOT_FOUND,
    ORDO_CODE_ALREADY_EXISTS,
    ORDO_CODE_INVALID_TRANSITION,
    ORDO_CODE_CONFLICT,
    ORDO_CODE_OVERLOADED,
    ORDO_CODE_UNAVAILABLE,
    ORDO_CODE_WRONG_PARTITION, /* docs/protocol.md's cluster extension */
    ORDO_CODE_COUNT_
} ordo_code_t;

/* Wire names, and lookups from wire names (ORDO_*_NONE / -1 if unknown). */
const char *ordo_status_name(ordo_status_t s);
ordo_status_t ordo_status_from_name(const char *s, size_t len);
const char *ordo_request_type_name(ordo_request_type_t t);
ordo_request_type_t ordo_request_type_from_name(const char *s, size_t len);
const char *ordo_event_type_name(ordo_event_type_t t);
ordo_event_type_t ordo_event_type_from_name(const char *s, size_t len);
const char *ordo_code_name(ordo_code_t c);
ordo_code_t ordo_code_from_name(const char *s, size_t len);

/* The event a command appends (CreateOrder -> OrderCreated, ...). */
ordo_event_type_t ordo_event_type_for(ordo_request_type_t command);

/* The command that appends an event type (OrderCreated -> CreateOrder). */
ordo_request_type_t ordo_request_type_for(ordo_event_type_t event);

/* The state machine: whether an event of type `t` may follow an order in
 * status `from` (OrderCreated only on NONE), and the status it leaves. */
bool ordo_event_allowed(ordo_status_t from, ordo_event_type_t t);
ordo_status_t ordo_status_after(ordo_event_type_t t);

/* ---- payloads ---------------------------------------------------------- */

typedef struct {
    ordo_str_t sku;
    ordo_str_t name;
    int64_t qty;
    int64_t price_cents;
} ordo_item_t;

typedef struct {
    ordo_str_t key;
    bool is_int;
    int64_t ival;    /* when is_int */
    ordo_str_t sval; /* otherwise */
} ordo_meta_entry_t;

typedef struct {
    uint32_t count;
    ordo_meta_entry_t entries[ORDO_META_MAX];
} ordo_meta_t;

/* Bits of ordo_data_t.present: which fields a request or event carried. */
enum {
    ORDO_F_USER_ID = 1u << 0,
    ORDO_F_RESTAURANT_ID = 1u << 1,
    ORDO_F_ITEMS = 1u << 2,
    ORDO_F_DELIVERY_ADDRESS = 1u << 3,
    ORDO_F_TOTAL_CENTS = 1u << 4,
    ORDO_F_ESTIMATED_MINUTES = 1u << 5,
    ORDO_F_COURIER_ID = 1u << 6,
    ORDO_F_REASON = 1u << 7,
    ORDO_F_PREVIOUS_STATUS = 1u << 8,
    ORDO_F_CURRENCY = 1u << 9, /* PROTOCOL.md 1.1: OrderCreated schema 2 */
};

/* The `data` of a command or an event: one struct for every type, with
 * `present` saying which fields are set. */
typedef struct {
    uint32_t present;
    int64_t user_id;
    int64_t restaurant_id;
    int64_t total_cents;
    ordo_str_t delivery_address;
    int64_t estimated_minutes;
    int64_t courier_id;
    ordo_str_t reason;
    ordo_status_t previous_status;
    ordo_str_t currency; /* 3 capital letters (ISO 4217 form) */
    uint32_t n_items;
    ordo_item_t items[ORDO_ITEMS_MAX];
} ordo_data_t;

/* Bits of ordo_request_info_t.query_fields: what a query takes. */
enum {
    ORDO_Q_AS_OF_VERSION = 1u << 0,
    ORDO_Q_AS_OF_TIME = 1u << 1,
    ORDO_Q_FROM_VERSION = 1u << 2,
    ORDO_Q_FROM_POSITION = 1u << 3,
    ORDO_Q_LIMIT = 1u << 4,
};

/* The request-type table: one row per type, read by the decoder, the
 * checks, the front end's routing, the shards and the clients (like
 * Redis' command table). Adding a request type is a row here (its values
 * in actors/ordo_request_table.c), its decide/apply if it is a command,
 * its handler in the shard, and its tests: docs/architecture.md, "How to
 * add a request type". */
typedef struct {
    const char *name;          /* on the wire, as PROTOCOL.md spells it ("" for NONE) */
    bool command;              /* appends an event; else a query */
    bool on_order;             /* carries order_id: routed to the shard that owns it */
    bool paged;                /* answered in pages by the reader thread (ReadAll) */
    bool front;                /* answered by the front end itself (Partitions) */
    ordo_event_type_t event;   /* the event a command appends */
    uint32_t data_fields;      /* ORDO_F_*: what a command's data may carry */
    uint32_t query_fields;     /* ORDO_Q_*: what a query takes */
    int64_t limit_default, limit_max; /* `limit` when absent, and its bound (0: none) */
} ordo_request_info_t;

extern const ordo_request_info_t ordo_request_table[ORDO_REQ_COUNT_];

/* The row of `t` (NONE's for a value out of range). */
static inline const ordo_request_info_t *ordo_request_info(ordo_request_type_t t)
{
    return &ordo_request_table[(unsigned)t < ORDO_REQ_COUNT_ ? t : ORDO_REQ_NONE];
}

static inline bool ordo_request_is_command(ordo_request_type_t t)
{
    return ordo_request_info(t)->command;
}

/* A decoded request (command or query). Views point into the message. */
typedef struct {
    ordo_request_type_t type;
    ordo_str_t request_id;    /* len 0: none */
    ordo_str_t order_id;      /* len 0: none */
    int64_t expected_version; /* -1: any */
    bool has_data;            /* a `data` map was sent */
    ordo_data_t data;
    ordo_meta_t meta; /* client keys exactly as sent (decide() drops request_id and command) */
    /* queries */
    int64_t as_of_version; /* 0: not given */
    bool has_as_of_time;
    int64_t as_of_time_us;
    int64_t from_version;  /* default 1 */
    int64_t from_position; /* default 1 */
    int64_t limit;         /* defaulted and clamped for the query type */
} ordo_request_t;

#define ORDO_EVENT_TEXT_MAX (20 * 36) /* order id, request id, meta values */

/* An event record. `position`, `timestamp_us` and `event_id` are assigned
 * when the event is written; decide() leaves them zero. Decoders may
 * rebuild strings into `text` (ids the log keeps as 16 bytes), so views
 * can point into the struct itself: do not copy an event by assignment
 * and use the copy's views. */
typedef struct {
    uint64_t position;
    uint8_t event_id[16];
    ordo_str_t order_id;
    uint32_t version;
    ordo_event_type_t type;
    int64_t timestamp_us;
    uint32_t schema;
    ordo_data_t data;
    ordo_meta_t meta;
    /* PROTOCOL.md 1.1: the chain hash, which the writer computes when it
     * writes the event; events written before 1.1 have none. */
    bool has_hash;
    uint8_t hash[32];
    char text[ORDO_EVENT_TEXT_MAX];
} ordo_event_t;

/* A protocol error: code, a sentence for people, and the details the code
 * carries (field for bad_request, status for invalid_transition, versions
 * for conflict and already_exists). */
typedef struct {
    ordo_code_t code;
    char message[256];
    char field[96];           /* "" when no field is at fault */
    ordo_status_t status;     /* invalid_transition */
    int64_t expected_version; /* conflict */
    int64_t current_version;  /* conflict, already_exists (as `version`) */
} ordo_error_t;

/* Fills `err` with code and printf-style message; clears the details. */
void ordo_error_set(ordo_error_t *err, ordo_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* bad_request naming `field` (a dotted path), with a message. */
void ordo_error_bad_field(ordo_error_t *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- order state ------------------------------------------------------- */

/* An order as its events add up. Owns its strings (in `arena` and the
 * request id copies); zero-initialise, then apply events; free with
 * ordo_order_clear(). status == ORDO_STATUS_NONE means "does not exist". */
typedef struct {
    char order_id[ORDO_ORDER_ID_MAX];
    uint8_t order_id_len;
    uint8_t version;
    ordo_status_t status;
    int64_t user_id;
    int64_t restaurant_id;
    int64_t total_cents;
    char currency[4]; /* "USD", ...: 3 capital letters and a NUL */
    int64_t created_at_us;
    int64_t updated_at_us;
    bool has_estimated_minutes;
    int64_t estimated_minutes;
    bool has_courier_id;
    int64_t courier_id;
    ordo_str_t delivery_address; /* into arena */
    ordo_str_t cancel_reason;    /* into arena2, len 0 unless cancelled */
    uint32_t n_items;
    ordo_item_t *items; /* into arena */
    /* The hash of the last event (PROTOCOL.md 1.1 `head_hash`); none when
     * that event has none. */
    bool has_head_hash;
    uint8_t head_hash[32];
    char *arena;        /* owned: items, their strings, the address */
    char *arena2;       /* owned: cancel reason */
    /* request_ids[v-1]: the request id that appended version v (len 0: none);
     * each ptr is owned (malloc'd) by the order. */
    ordo_str_t request_ids[ORDO_MAX_VERSION];
    /* positions[v-1]: the log position of version v's event, so history,
     * past states and duplicate replies read it back from the log. */
    uint64_t positions[ORDO_MAX_VERSION];
    /* request_hashes[v-1]: ordo_request_id_hash of request_ids[v-1], so an
     * idempotency check touches the id's bytes only when the hash matches. */
    uint32_t request_hashes[ORDO_MAX_VERSION];
    /* Engine only, never stored: an event of this order is with the log
     * writer, so the order's next requests wait in its mailbox. */
    bool busy;
    /* Engine only, never stored: the order index holds it (it was loaded
     * back from there, or found there at start-up). */
    bool indexed;
} ordo_order_t;

/* ---- schema evolution (PROTOCOL.md 1.1) -------------------------------- */

/* The schema each event type is written in now (OrderCreated 2, the
 * others 1). */
uint32_t ordo_event_schema_current(ordo_event_type_t type);

/* Brings an event decoded as it was stored up to its type's current
 * schema, one step at a time, one function per event type and step
 * (ordo_upcast.c): an OrderCreated of schema 1 gets `currency` "USD".
 * Stored events are never rewritten; every read path decodes through
 * this. 0, or -1 for a schema this engine does not know (0, or newer
 * than its own). */
int ordo_event_upcast(ordo_event_t *event);

/* The default `currency` of CreateOrder, and of orders created before it. */
#define ORDO_CURRENCY_DEFAULT "USD"

/* Frees what the order owns and zeroes it (safe on a zeroed order). */
void ordo_order_clear(ordo_order_t *order);

/* Copies `src` into `dst` (dst must be zeroed or cleared). 0 or -1 (ENOMEM). */
int ordo_order_copy(ordo_order_t *dst, const ordo_order_t *src);

/* ---- the aggregate ----------------------------------------------------- */

typedef enum {
    ORDO_DECIDE_EVENT = 0, /* *event holds the new event to append */
    ORDO_DECIDE_DUPLICATE, /* *dup_version: the version the request id appended */
    ORDO_DECIDE_ERROR,     /* *err holds the protocol error */
} ordo_decision_t;

/* Checks a command's fields against PROTOCOL.md's limits (presence, ranges,
 * lengths, order_id characters, meta). Returns true, or false with a
 * bad_request in *err naming the field path. */
bool ordo_request_check(const ordo_request_t *req, ordo_error_t *err);

/* True if `id` is a valid order id: 1 to 64 bytes of A-Z a-z 0-9 _ - . : */
bool ordo_order_id_valid(ordo_str_t id);

/* Decides what a checked command does to `order` (status NONE if absent),
 * in PROTOCOL.md's order: idempotency, existence, version, status. Pure:
 * on ORDO_DECIDE_EVENT, *event's views point into `cmd` (and `order`'s
 * order_id); position, timestamp and event_id are left for the writer. */
ordo_decision_t ordo_decide(const ordo_order_t *order, const ordo_request_t *cmd,
                            ordo_event_t *event, uint32_t *dup_version, ordo_error_t *err);

/* Applies an event to the order (copying what it keeps). Returns 0, or
 * -1 if the event does not follow (wrong order id or version, a
 * transition the state machine forbids) or memory ran out; the order is
 * unchanged then. */
int ordo_apply(ordo_order_t *order, const ordo_event_t *event);

/* Apply in two steps, so that applying an event once it is durable cannot
 * fail: prepare checks that the event follows the order and allocates
 * every copy the order will keep (0, or -1 if it does not follow or
 * memory ran out; nothing is held then); commit then changes the order
 * and cannot fail. Between the two, the order must not change, and commit
 * must get the same event (its position and timestamp may have been set
 * since). ordo_apply_prep_free releases a preparation never committed. */
typedef struct {
    char *arena, *reason, *rid;
    ordo_item_t *items;    /* into arena */
    ordo_str_t address;    /* into arena */
    uint32_t rid_len;
} ordo_apply_prep_t;

int ordo_apply_prepare(const ordo_order_t *order, const ordo_event_t *event, ordo_apply_prep_t *p);
void ordo_apply_commit(ordo_order_t *order, const ordo_event_t *event, ordo_apply_prep_t *p);
void ordo_apply_prep_free(ordo_apply_prep_t *p);

/* The hash kept beside each accepted request id (see request_hashes). */
uint32_t ordo_request_id_hash(ordo_str_t request_id);

/* The version whose event was appended by `request_id`, or 0 if none. */
uint32_t ordo_order_find_request(const ordo_order_t *order, ordo_str_t request_id);

/* True for Delivered and Cancelled: nothing more can happen to the order. */
static inline bool ordo_status_is_final(ordo_status_t s)
{
    return s == ORDO_STATUS_DELIVERED || s == ORDO_STATUS_CANCELLED;
}

#endif
