/* libordo: the C client of the Ordo order engine (PROTOCOL.md, version 1).
 *
 *   ordo_client_t  one DEALER connection to the engine's request socket:
 *                  synchronous calls (ordo_client_call) and a pipelined API
 *                  (ordo_client_send / ordo_client_recv, completions matched
 *                  by request_id).
 *   ordo_sub_t     an event subscription from any checkpoint position: fills
 *                  from ReadAll, then follows PUB, fills gaps again from
 *                  ReadAll, so the caller sees every event once, in order.
 *   ordo_result_t  one reply: ok or the protocol error (code, message,
 *                  field, ...), the command's version / position /
 *                  duplicate flag, decoded event(s), order or stats, and the
 *                  raw MessagePack bytes.
 *
 * Functions return 0 or a negative ORDO_E_* value (ordo_client_strerror).
 * No call blocks for longer than its timeout. Objects are not thread-safe:
 * use one per thread. Strings handed to the library are NUL-terminated
 * UTF-8; strings it hands back are NUL-terminated and owned by the object
 * they come from. This is the only header libordo installs. */
#ifndef ORDO_H
#define ORDO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define ORDO_CLIENT_VERSION "0.1.0"
#define ORDO_DEFAULT_ENDPOINT "tcp://127.0.0.1:7700"
#define ORDO_DEFAULT_PUB_ENDPOINT "tcp://127.0.0.1:7701"
#define ORDO_DEFAULT_TIMEOUT_MS 5000
#define ORDO_ID_SIZE 129 /* a request id (1..128 bytes) and its NUL */

/* Return values. ORDO_E_PROTOCOL means the engine answered and said no: the
 * result holds its code and message. ORDO_E_TIMEOUT means no answer in
 * time: a command's outcome is then unknown; send it again with the same
 * request_id (commands are idempotent by request_id). */
enum {
    ORDO_E_PROTOCOL = -101,  /* the engine replied with an error (see the result) */
    ORDO_E_TIMEOUT = -102,   /* nothing within the timeout */
    ORDO_E_INVALID = -103,   /* invalid argument; nothing was sent */
    ORDO_E_NOMEM = -104,     /* out of memory */
    ORDO_E_TRANSPORT = -105, /* ZeroMQ failed (see errno) */
    ORDO_E_BAD_REPLY = -106, /* the engine's answer is not a protocol reply */
    ORDO_E_IDLE = -107,      /* ordo_client_recv with no request in flight */
};

/* A static sentence naming a return value. */
const char *ordo_client_strerror(int rc);

/* ---- values ------------------------------------------------------------ */

typedef struct {
    const char *sku;
    const char *name;
    int64_t qty;
    int64_t price_cents;
} ordo_client_item_t;

/* A `meta` entry: a string, or an integer when is_int. */
typedef struct {
    const char *key;
    bool is_int;
    int64_t ival;
    const char *sval;
} ordo_client_meta_t;

/* An event record. Data fields the event type does not carry are 0 / NULL
 * (OrderCreated: user_id, restaurant_id, items, total_cents,
 * delivery_address; OrderConfirmed: restaurant_id; OrderPreparing:
 * estimated_minutes; OrderOutForDelivery: courier_id; OrderCancelled:
 * reason, previous_status). */
typedef struct {
    uint64_t position;
    char event_id[37];  /* UUIDv7 text */
    const char *order_id;
    uint32_t version;
    const char *type;   /* "OrderCreated", ... */
    int64_t timestamp_us;
    uint32_t schema;
    int64_t user_id;
    int64_t restaurant_id;
    int64_t total_cents;
    const char *delivery_address;
    const ordo_client_item_t *items;
    size_t n_items;
    bool has_estimated_minutes;
    int64_t estimated_minutes;
    bool has_courier_id;
    int64_t courier_id;
    const char *reason;
    const char *previous_status;
    const ordo_client_meta_t *meta; /* includes `command` and `request_id` */
    size_t n_meta;
    const uint8_t *raw; /* the event's MessagePack map, as received */
    size_t raw_len;
    /* Since PROTOCOL.md 1.1 (at the end, so older initialisers still fit). */
    const char *currency; /* OrderCreated (schema 2; upcast from 1 as "USD"), else NULL */
    char hash[65]; /* 64 hex digits of the chain hash; "" if the event has none
                    * (written before 1.1) */
} ordo_client_event_t;

/* An order's state (GetOrder). */
typedef struct {
    const char *order_id;
    uint32_t version;
    const char *status; /* "Created" ... "Cancelled" */
    int64_t user_id;
    int64_t restaurant_id;
    const ordo_client_item_t *items;
    size_t n_items;
    int64_t total_cents;
    const char *delivery_address;
    int64_t created_at_us;
    int64_t updated_at_us;
    bool has_estimated_minutes;
    int64_t estimated_minutes;
    bool has_courier_id;
    int64_t courier_id;
    const char *cancel_reason; /* NULL unless cancelled */
    const uint8_t *raw;
    size_t raw_len;
    /* Since PROTOCOL.md 1.1 (at the end, so older initialisers still fit). */
    char currency[4];   /* "USD", ... */
    char head_hash[65]; /* the hash of its last event, "" if it has none */
} ordo_client_order_t;

typedef struct {
    const char *name;
    int64_t value;
} ordo_client_stat_t;

/* A partition's owner in a partition map (docs/cluster.md). */
typedef struct {
    const char *endpoint; /* its request endpoint; NULL: no owner known now */
    const char *pub;      /* its PUB endpoint ("" if it did not say) */
    uint64_t revision;    /* its lease's: of two maps, the higher revision is newer */
} ordo_client_owner_t;

/* ---- requests ---------------------------------------------------------- */

/* Any command or query. Zero means "not given" for every field (so a
 * designated initialiser names only what it sends); NULL strings are left
 * out of the request.
 *   commands: CreateOrder ConfirmOrder StartPreparing MarkReady PickUp
 *             Deliver CancelOrder
 *   queries:  GetOrder GetHistory ReadAll Stats Ping Partitions */
typedef struct {
    const char *type;       /* wire name, required */
    const char *order_id;   /* commands, GetOrder, GetHistory */
    const char *request_id; /* NULL: the client assigns a unique one */
    bool has_expected_version;
    int64_t expected_version; /* when has_expected_version (0: must not exist) */
    /* CreateOrder */
    int64_t user_id;
    int64_t restaurant_id;
    const ordo_client_item_t *items;
    size_t n_items; /* at most 100 */
    const char *delivery_address;
    /* StartPreparing (0: not given), PickUp, CancelOrder */
    int64_t estimated_minutes;
    bool has_courier_id;
    int64_t courier_id;
    const char *reason;
    /* meta: the two usual keys, and any others (at most 16 in all) */
    const char *actor;
    const char *correlation_id;
    const ordo_client_meta_t *meta;
    size_t n_meta;
    /* GetOrder: as_of_version >= 1, or as_of_time_us when has_as_of_time */
    int64_t as_of_version;
    bool has_as_of_time;
    int64_t as_of_time_us;
    /* GetHistory: from_version; ReadAll: from_position; both: limit */
    int64_t from_version;
    int64_t from_position;
    int64_t limit;
    /* Since PROTOCOL.md 1.1 (at the end, so older initialisers still fit). */
    const char *currency; /* CreateOrder: 3 capital letters; NULL: the default, "USD" */
} ordo_client_request_t;

/* ---- results ----------------------------------------------------------- */

/* One reply. Initialise with ORDO_RESULT_INIT (or zero it) once; every call
 * that fills it frees what it held before; ordo_result_clear() frees it at
 * the end. Pointers inside stay valid until then. */
typedef struct {
    bool ok;
    char request_id[ORDO_ID_SIZE];
    /* when !ok */
    char code[24];          /* "bad_request", "not_found", "conflict", ... */
    char message[256];      /* a sentence for people */
    char field[96];         /* bad_request: dotted path of the field at fault, or "" */
    char status[24];        /* invalid_transition: the order's status */
    int64_t expected_version; /* conflict */
    int64_t current_version;  /* conflict; already_exists: the order's version */
    /* commands */
    char order_id[65];
    int64_t version;
    int64_t position;
    bool duplicate;
    const ordo_client_event_t *event; /* the appended event */
    /* GetOrder */
    const ordo_client_order_t *order;
    /* GetHistory, ReadAll */
    const ordo_client_event_t *events;
    size_t n_events;
    /* ReadAll, Ping */
    int64_t next_position;
    int64_t head_position;
    /* Stats */
    const ordo_client_stat_t *stats;
    size_t n_stats;
    /* the reply body, MessagePack, owned */
    const uint8_t *reply;
    size_t reply_len;
    void *priv_; /* library's own */
    /* Partitions, and a wrong_partition error's details (docs/cluster.md;
     * at the end, so older initialisers still fit) */
    uint32_t partition;  /* Partitions: the answering engine's; wrong_partition: the order's */
    uint32_t partitions; /* the map's size; 0: the reply has no map */
    const ordo_client_owner_t *owners; /* [partitions] */
} ordo_result_t;

#define ORDO_RESULT_INIT {0}

/* Frees what the result holds and zeroes it (safe twice). */
void ordo_result_clear(ordo_result_t *res);

/* The value of stat `name`, or `dflt` if the reply has none. */
int64_t ordo_result_stat(const ordo_result_t *res, const char *name, int64_t dflt);

/* ---- client ------------------------------------------------------------ */

typedef struct ordo_client_t ordo_client_t;

/* Connects to the engine's request endpoint (NULL: ORDO_DEFAULT_ENDPOINT).
 * Connecting does not wait for the engine; a missing engine shows as
 * timeouts. Returns NULL (errno set) on an invalid endpoint or no memory. */
ordo_client_t *ordo_client_new(const char *endpoint);

/* CURVE: the keys a client needs to reach a server started with
 * --curve-secret / --curve-clients (DESIGN.md). */
typedef struct {
    uint8_t server_key[32]; /* the server's public key */
    uint8_t public_key[32]; /* this client's key pair; its public key must be */
    uint8_t secret_key[32]; /* in the server's allow-list */
} ordo_curve_t;

/* Reads the keys from czmq certificate files, as ordo-keygen writes them:
 * server_cert is the server's public certificate, client_cert this
 * client's secret one (PATH_secret). Returns 0, or ORDO_E_INVALID with a
 * sentence naming the file in err (err_size bytes, may be 0). */
int ordo_curve_load(ordo_curve_t *curve, const char *server_cert, const char *client_cert,
                    char *err, size_t err_size);

typedef struct {
    const ordo_curve_t *curve; /* NULL: plain, for a server without CURVE */
} ordo_connect_options_t;

/* As ordo_client_new, with options (NULL: none). With CURVE, a server that
 * does not let this client in answers nothing: calls time out. */
ordo_client_t *ordo_client_new_with(const char *endpoint, const ordo_connect_options_t *opts);

/* Closes the connection without waiting; replies still in flight are lost.
 * Nulls *p; safe on NULL. */
void ordo_client_destroy(ordo_client_t **p);

/* How long ordo_client_send may wait for room to queue a request
 * (default ORDO_DEFAULT_TIMEOUT_MS). */
void ordo_client_set_send_timeout(ordo_client_t *c, int timeout_ms);

/* Flow control: at most `window` requests await replies (default 4,096;
 * 0: no limit); ordo_client_send beyond it first reads replies, keeping
 * them for ordo_client_recv. ordo-server drops replies a peer has not
 * taken past its high-water mark, so keep the default unless you know
 * better. */
void ordo_client_set_window(ordo_client_t *c, size_t window);

/* Sends a request and returns without waiting for the reply, unless the
 * window is full (see above). Copies the
 * request id used (the caller's, or one it assigned) into request_id_out
 * when not NULL (ORDO_ID_SIZE bytes). Returns 0, ORDO_E_INVALID (unknown
 * type, invalid request_id, more items or meta than the protocol allows,
 * body over 1 MiB), ORDO_E_TIMEOUT (no room in the window or the socket
 * within the send timeout) or ORDO_E_TRANSPORT. */
int ordo_client_send(ordo_client_t *c, const ordo_client_request_t *req, char *request_id_out);

/* Waits up to timeout_ms (>= 0) for the next completion of a request sent
 * with ordo_client_send and fills *res with it (res->request_id names it;
 * res->ok says whether the engine accepted it). Replies to different
 * orders may complete in any order; replies to one order complete in the
 * order they were sent. Returns 0 when *res holds a completion, else
 * ORDO_E_TIMEOUT, ORDO_E_IDLE (nothing in flight), ORDO_E_BAD_REPLY (a
 * reply that could not be decoded; its request stays in flight) or
 * ORDO_E_TRANSPORT. */
int ordo_client_recv(ordo_client_t *c, int timeout_ms, ordo_result_t *res);

/* Sends a request and waits up to timeout_ms for its reply, keeping other
 * completions for ordo_client_recv. Returns 0 (res->ok), ORDO_E_PROTOCOL
 * (the engine's error is in *res), or a send / receive error as above. A
 * late reply to a call that timed out is dropped. */
int ordo_client_call(ordo_client_t *c, const ordo_client_request_t *req, int timeout_ms,
                     ordo_result_t *res);

/* Requests sent with ordo_client_send and not yet returned by recv. */
size_t ordo_client_in_flight(const ordo_client_t *c);

const char *ordo_client_endpoint(const ordo_client_t *c);

/* ---- any request ------------------------------------------------------- */

/* For a server that speaks PROTOCOL.md's transport with requests libordo
 * does not pack, such as ordo-projector (PROJECTIONS.md): the caller packs
 * the MessagePack body, libordo sends it and matches the reply by the
 * request_id it echoes, beside the client's other calls. Connect a client
 * to that server's endpoint with ordo_client_new. */

#define ORDO_DEFAULT_PROJECTOR_ENDPOINT "tcp://127.0.0.1:7702"

/* Writes a fresh request id (unique across clients and restarts, as the
 * ones the client assigns itself) into out, ORDO_ID_SIZE bytes with the
 * NUL, for the caller to put in a body it packs. */
void ordo_client_new_request_id(ordo_client_t *c, char out[ORDO_ID_SIZE]);

/* Sends `body` (len bytes, borrowed: one well-formed MessagePack map,
 * nesting at most 16, holding exactly one `request_id`, a string of
 * 1..128 bytes, which the reply must echo) and waits up to timeout_ms for
 * its reply, keeping other completions for ordo_client_recv. On 0 and
 * ORDO_E_PROTOCOL, *reply is the reply body
 * (malloc'd: the caller frees it) and *reply_len its size; it has been
 * checked to be one well-formed MessagePack map (no count beyond its
 * bytes, nesting at most 18, every string valid UTF-8) with a boolean
 * `ok`; the rest is the caller's to read. Returns 0 (`ok` is true),
 * ORDO_E_PROTOCOL (`ok` is false: the server's error is in the reply),
 * ORDO_E_INVALID (no such body, or over 1 MiB; nothing was sent),
 * ORDO_E_TIMEOUT, ORDO_E_BAD_REPLY (the only request in flight got an
 * answer that is not a reply), ORDO_E_TRANSPORT or ORDO_E_NOMEM; on those
 * *reply is NULL. A late reply to a call that timed out is dropped. */
int ordo_client_call_raw(ordo_client_t *c, const void *body, size_t len, int timeout_ms,
                         uint8_t **reply, size_t *reply_len);

/* ---- routing by partition (docs/cluster.md) ---------------------------- */

/* A cluster splits its orders into partitions, each owned by one engine at
 * a time. An ordo_router_t keeps the cluster's partition map (asked of any
 * engine with Partitions; every wrong_partition error carries it too) and
 * sends each request to the owner of its order's partition, with one
 * client per engine. When an owner is gone (no answer in time,
 * `unavailable`) or another took the partition (`wrong_partition`), it
 * learns the map again and sends the same request, with the same
 * request_id, to the new owner, until the call's timeout (a first try on
 * an owner waits a second, each later one twice as long, up to 4 s, while
 * asking another engine for the map every 250 ms): commands are
 * idempotent by request_id, so a retry never applies one twice. With one
 * engine and no partitions it is a client that finds that engine again
 * after a failover. */

typedef struct ordo_router_t ordo_router_t;

/* `endpoints`: request endpoints of any engines of the cluster, separated
 * by commas (at most 64), to ask for the map (NULL:
 * ORDO_DEFAULT_ENDPOINT); opts for every connection (NULL: none). Asks
 * for nothing yet; its connections, one per engine it talks to, share one
 * ZeroMQ context (two threads in all). NULL (errno set) on an invalid
 * list or no memory. */
ordo_router_t *ordo_router_new(const char *endpoints, const ordo_connect_options_t *opts);

void ordo_router_destroy(ordo_router_t **p);

/* As ordo_client_call, to the owner of req->order_id's partition
 * (requests without an order go to partition 0's owner), following the
 * owner through the map until timeout_ms. A request_id is assigned if
 * req has none, and kept across the retries. Returns as
 * ordo_client_call; ORDO_E_TIMEOUT when no owner answered in time, and
 * ORDO_E_PROTOCOL with the last `unavailable` or `wrong_partition` if the
 * time ran out on one. */
int ordo_router_call(ordo_router_t *r, const ordo_client_request_t *req, int timeout_ms,
                     ordo_result_t *res);

/* As ordo_router_call, to the owner of `partition` (a query without an
 * order, such as ReadAll, Stats or Ping, on that partition's log). */
int ordo_router_call_on(ordo_router_t *r, uint32_t partition, const ordo_client_request_t *req,
                        int timeout_ms, ordo_result_t *res);

/* Asks the engines it knows for the map now (it also does when a call
 * needs it). 0 once an engine answered, or ORDO_E_TIMEOUT. */
int ordo_router_refresh(ordo_router_t *r, int timeout_ms);

/* The map as known now: the partition count (0 before any answer) and
 * the request endpoint of a partition's owner (NULL: none known; the
 * string is the router's, valid until its next call). */
uint32_t ordo_router_partitions(const ordo_router_t *r);
const char *ordo_router_owner(const ordo_router_t *r, uint32_t partition);

/* The partition of an order id among `partitions`: a fixed hash, the
 * same in every engine, client and version. */
uint32_t ordo_partition_of_id(const char *order_id, uint32_t partitions);

/* ---- subscription ------------------------------------------------------ */

typedef struct ordo_sub_t ordo_sub_t;

/* Subscribes to every event with position >= from_position (>= 1) whose
 * type starts with type_prefix (NULL or "": all), through the engine's
 * request endpoint (for ReadAll) and PUB endpoint (NULLs: the defaults).
 * Returns NULL (errno set) on invalid arguments or no memory. */
ordo_sub_t *ordo_sub_new(const char *endpoint, const char *pub_endpoint, const char *type_prefix,
                         uint64_t from_position);

/* As ordo_sub_new, with options (NULL: none) for both connections. */
ordo_sub_t *ordo_sub_new_with(const char *endpoint, const char *pub_endpoint,
                              const char *type_prefix, uint64_t from_position,
                              const ordo_connect_options_t *opts);

void ordo_sub_destroy(ordo_sub_t **p);

/* Waits up to timeout_ms (>= 0) for the next event and points *event at it;
 * the event stays valid until the next call or destroy. Events come
 * exactly once, in position order, with no position skipped (other than
 * ones the type filter excludes). Returns 0, ORDO_E_TIMEOUT (nothing new
 * yet: call again), or ORDO_E_TRANSPORT / ORDO_E_NOMEM. */
int ordo_sub_next(ordo_sub_t *s, int timeout_ms, const ordo_client_event_t **event);

/* The position the subscription has reached: every event up to it has
 * been handed out (or filtered out). Resume from it + 1. */
uint64_t ordo_sub_position(const ordo_sub_t *s);

/* The highest head position the subscription has learned from the engine
 * (ReadAll and Ping replies, positions seen on PUB); 0 before any. Events
 * up to it exist; ordo_sub_position() == ordo_sub_head() means caught up. */
uint64_t ordo_sub_head(const ordo_sub_t *s);

/* The two ZeroMQ sockets the subscription reads (the request DEALER and
 * the SUB), for a caller that polls them beside its own sockets and then
 * calls ordo_sub_next(s, 0, ...). Call ordo_sub_next at least every
 * 100 ms even when neither is readable: it times its Pings and retries. */
void ordo_sub_sockets(ordo_sub_t *s, void **request_socket, void **sub_socket);

/* Where handed-out events came from and what was dropped, for monitoring:
 * from ReadAll (catch-up and gap fills), from PUB, PUB duplicates dropped,
 * gaps seen on PUB. Any pointer may be NULL. */
void ordo_sub_counters(const ordo_sub_t *s, uint64_t *from_read_all, uint64_t *from_pub,
                       uint64_t *duplicates, uint64_t *gaps);

#ifdef __cplusplus
}
#endif

#endif
