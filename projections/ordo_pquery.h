/* The projector's queries (PROJECTIONS.md): their types and names, the
 * decoded form a query travels in from the front end to a projection
 * actor, the decoder that checks every field of a hostile body, opaque
 * cursors, and the packing of replies and errors.
 *
 * Invariants: a decoded ordo_pquery_t owns every byte it holds (no views
 * into the message), so it can cross threads; every field is within its
 * limits (limit 1..ORDO_PQ_LIMIT_MAX, wait_ms 0..ORDO_PQ_WAIT_MS_MAX, at
 * most ORDO_PQ_BUCKETS_MAX analytics buckets), so no query can make a
 * projection allocate more than a bounded page. */
#ifndef ORDO_PQUERY_H
#define ORDO_PQUERY_H

#include "ordo_order.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ORDO_PQ_BODY_MAX (1024 * 1024) /* PROTOCOL.md precise rule 1 */
#define ORDO_PQ_NESTING_MAX 16
#define ORDO_PQ_LIMIT_MAX 1000         /* every `limit` is clamped to it */
#define ORDO_PQ_LIST_LIMIT_DEFAULT 100 /* ListOrders, OrdersAsOf */
#define ORDO_PQ_USER_LIMIT_DEFAULT 50  /* UserHistory */
#define ORDO_PQ_WAIT_MS_DEFAULT 1000
#define ORDO_PQ_WAIT_MS_MAX 10000
#define ORDO_PQ_BUCKETS_MAX 10000
#define ORDO_PQ_BOARD_ACTIVE_MAX 500 /* RestaurantBoard `active` */
#define ORDO_PQ_STATUS_LIST_MAX 16   /* entries of a `status` array */
#define ORDO_PCURSOR_MAX 160         /* a cursor's text, NUL included */

/* Rebuild's `projection` naming the PostgreSQL tables (--postgres). */
#define ORDO_PQ_PROJECTION_POSTGRES 100

typedef enum {
    ORDO_PQ_NONE = 0,
    ORDO_PQ_GET_ORDER_SUMMARY,
    ORDO_PQ_LIST_ORDERS,
    ORDO_PQ_RESTAURANT_BOARD,
    ORDO_PQ_USER_HISTORY,
    ORDO_PQ_ANALYTICS,
    ORDO_PQ_ORDERS_AS_OF,
    ORDO_PQ_PROJECTION_STATUS,
    ORDO_PQ_REBUILD,
    ORDO_PQ_PING,
    ORDO_PQ_COUNT_
} ordo_pq_type_t;

/* The read models, in the order ProjectionStatus lists them. */
typedef enum {
    ORDO_PROJ_SUMMARY = 0,
    ORDO_PROJ_RESTAURANT,
    ORDO_PROJ_USER,
    ORDO_PROJ_ANALYTICS,
    ORDO_PROJ_TIMELINE,
    ORDO_PROJ_COUNT_
} ordo_proj_t;

/* Wire names; lookups return ORDO_PQ_NONE / -1 when nothing matches. */
const char *ordo_pq_type_name(ordo_pq_type_t t);
ordo_pq_type_t ordo_pq_type_from_name(const char *s, size_t len);
const char *ordo_proj_name(ordo_proj_t p);
int ordo_proj_from_name(const char *s, size_t len);

/* The projection that answers a query type (-1: all of them, for
 * ProjectionStatus and Ping; Rebuild: the one its `projection` names). */
int ordo_pq_projection(ordo_pq_type_t t);

/* A decoded, checked query. Absent optional fields have has_* false. */
typedef struct {
    ordo_pq_type_t type;
    uint8_t request_id_len; /* 0: none */
    char request_id[ORDO_REQUEST_ID_MAX + 1];
    bool has_min_position;
    int64_t min_position; /* >= 0 */
    int64_t wait_ms;      /* 0..ORDO_PQ_WAIT_MS_MAX, default 1000 */
    /* GetOrderSummary */
    char order_id[ORDO_ORDER_ID_MAX + 1];
    /* ListOrders, OrdersAsOf: bit (1u << ordo_status_t) per status asked;
     * 0 means any status */
    uint32_t status_mask;
    bool has_restaurant_id;
    int64_t restaurant_id;
    bool has_user_id;
    int64_t user_id;
    bool has_created_from;
    int64_t created_from_us;
    bool has_created_to;
    int64_t created_to_us;
    int64_t limit; /* defaulted for the type, clamped to 1..ORDO_PQ_LIMIT_MAX */
    /* a cursor given back: the sort key and order id of the last order of
     * the previous page (its kind was checked against the type) */
    bool has_cursor;
    int64_t cursor_key;
    char cursor_order_id[ORDO_ORDER_ID_MAX + 1];
    /* Analytics: [from_us, to_us), bucket_us 60e6 / 3600e6 / 86400e6 */
    int64_t from_us;
    int64_t to_us;
    int64_t bucket_us;
    /* OrdersAsOf: at_us, or at_position when at_is_position */
    bool at_is_position;
    int64_t at;
    /* Rebuild */
    int projection; /* ordo_proj_t, or ORDO_PQ_PROJECTION_POSTGRES */
} ordo_pquery_t;

/* A failure reply's content: code (a PROJECTIONS.md code), a sentence,
 * and the details the code carries. */
typedef struct {
    const char *code; /* "bad_request", "unknown_type", "not_found", "lagging", ... */
    char message[256];
    char field[64];       /* bad_request: the key at fault, "" if none */
    bool has_positions;   /* lagging: */
    int64_t position;     /*   the projection's checkpoint */
    int64_t min_position; /*   what was asked */
} ordo_perror_t;

void ordo_perror_set(ordo_perror_t *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ordo_perror_field(ordo_perror_t *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Decodes and checks a query body (PROTOCOL.md precise rules 1-3 and the
 * fields of PROJECTIONS.md). Returns 0, or -1 with *err set; q->request_id
 * is set whenever the body was a map with a valid one, so the error reply
 * can echo it. */
int ordo_pquery_decode(const void *buf, size_t len, ordo_pquery_t *q, ordo_perror_t *err);

/* Whether a query may answer with a large reply (more than 100 orders,
 * or more than 1,000 analytics buckets): the front end admits only a few
 * of those per connection at a time. */
bool ordo_pquery_is_large(const ordo_pquery_t *q);

/* Writes the opaque cursor that continues a listing of `type` after the
 * order (key, order_id): text of at most ORDO_PCURSOR_MAX bytes with its
 * NUL. */
void ordo_pcursor_encode(char out[ORDO_PCURSOR_MAX], ordo_pq_type_t type, int64_t key,
                         const char *order_id);

/* {ok: true, request_id?, position, <n_keys more>}: the header of a
 * success reply; the caller then packs its n_keys keys and values. */
int ordo_preply_pack_ok(msgpack_packer *pk, const ordo_pquery_t *q, uint64_t position,
                        uint32_t n_keys);

/* {ok: false, request_id?, error: {code, message, field? | position, min_position}};
 * q may be NULL (nothing decoded, nothing echoed). */
int ordo_preply_pack_error(msgpack_packer *pk, const ordo_pquery_t *q, const ordo_perror_t *err);

#endif
