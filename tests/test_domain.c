/* Tests for actors/: the order aggregate. Every (status x command) pair,
 * the event data and meta decide() builds, PROTOCOL.md's rule order
 * (idempotency, existence, version, status), every field limit at its
 * boundary and one past it, apply()'s refusals and ownership (run under
 * valgrind / ASan for leaks), and the name tables. */
#include "ordo_order.h"
#include "ordo_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes for long strings: views into these stay valid for the whole run. */
static char s_big[2048];

static ordo_str_t s_n(uint32_t n)
{
    return (ordo_str_t){s_big, n};
}

static ordo_str_t s_cstr(const char *s)
{
    return (ordo_str_t){s, (uint32_t)strlen(s)};
}

static bool s_eq(ordo_str_t a, const char *lit)
{
    return a.len == strlen(lit) && (a.len == 0 || memcmp(a.ptr, lit, a.len) == 0);
}

static const ordo_request_type_t s_commands[] = {
    ORDO_REQ_CREATE_ORDER, ORDO_REQ_CONFIRM_ORDER, ORDO_REQ_START_PREPARING, ORDO_REQ_MARK_READY,
    ORDO_REQ_PICK_UP,      ORDO_REQ_DELIVER,       ORDO_REQ_CANCEL_ORDER,
};
#define N_COMMANDS (sizeof s_commands / sizeof s_commands[0])

/* A valid command of `type` on order "o-1" with data, any version. */
static void s_cmd(ordo_request_t *req, ordo_request_type_t type)
{
    memset(req, 0, sizeof *req);
    req->type = type;
    req->order_id = ORDO_STR("o-1");
    req->expected_version = -1;
    req->from_version = 1;
    req->from_position = 1;
    req->limit = 1000;
    ordo_data_t *d = &req->data;
    switch (type) {
    case ORDO_REQ_CREATE_ORDER:
        req->has_data = true;
        d->present = ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS;
        d->user_id = 42;
        d->restaurant_id = 7;
        d->n_items = 2;
        d->items[0] = (ordo_item_t){ORDO_STR("pz-1"), ORDO_STR("Pizza"), 2, 1250};
        d->items[1] = (ordo_item_t){ORDO_STR("cola"), ORDO_STR("Cola"), 3, 199};
        d->delivery_address = ORDO_STR("1 Main St");
        break;
    case ORDO_REQ_START_PREPARING:
        req->has_data = true;
        d->present = ORDO_F_ESTIMATED_MINUTES;
        d->estimated_minutes = 25;
        break;
    case ORDO_REQ_PICK_UP:
        req->has_data = true;
        d->present = ORDO_F_COURIER_ID;
        d->courier_id = 99;
        break;
    case ORDO_REQ_CANCEL_ORDER:
        req->has_data = true;
        d->present = ORDO_F_REASON;
        d->reason = ORDO_STR("changed my mind");
        break;
    default:
        break;
    }
}

/* decide + apply one command with request id `rid` (NULL: none) at time `ts`. */
static void s_run(ordo_order_t *o, ordo_request_type_t type, const char *rid, int64_t ts)
{
    ordo_request_t req;
    ordo_event_t ev;
    ordo_error_t err;
    uint32_t dup = 0;
    s_cmd(&req, type);
    if (rid)
        req.request_id = s_cstr(rid);
    CU_ASSERT_TRUE_FATAL(ordo_request_check(&req, &err));
    CU_ASSERT_EQUAL_FATAL(ordo_decide(o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    ev.timestamp_us = ts;
    CU_ASSERT_EQUAL_FATAL(ordo_apply(o, &ev), 0);
}

/* Brings a zeroed order "o-1" to `status` (Cancelled via Created). */
static void s_order_at(ordo_order_t *o, ordo_status_t status)
{
    static const ordo_request_type_t path[] = {
        ORDO_REQ_CREATE_ORDER, ORDO_REQ_CONFIRM_ORDER, ORDO_REQ_START_PREPARING,
        ORDO_REQ_MARK_READY,   ORDO_REQ_PICK_UP,       ORDO_REQ_DELIVER,
    };
    if (status == ORDO_STATUS_NONE)
        return;
    if (status == ORDO_STATUS_CANCELLED) {
        s_run(o, ORDO_REQ_CREATE_ORDER, "b-1", 1000);
        s_run(o, ORDO_REQ_CANCEL_ORDER, "b-2", 2000);
        return;
    }
    for (int i = 0; i < (int)status; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "b-%d", i + 1);
        s_run(o, path[i], rid, 1000 * (i + 1));
    }
    CU_ASSERT_EQUAL_FATAL(o->status, status);
}

static bool s_allowed(ordo_status_t s, ordo_request_type_t c)
{
    switch (c) {
    case ORDO_REQ_CREATE_ORDER: return s == ORDO_STATUS_NONE;
    case ORDO_REQ_CONFIRM_ORDER: return s == ORDO_STATUS_CREATED;
    case ORDO_REQ_START_PREPARING: return s == ORDO_STATUS_CONFIRMED;
    case ORDO_REQ_MARK_READY: return s == ORDO_STATUS_PREPARING;
    case ORDO_REQ_PICK_UP: return s == ORDO_STATUS_READY;
    case ORDO_REQ_DELIVER: return s == ORDO_STATUS_OUT_FOR_DELIVERY;
    case ORDO_REQ_CANCEL_ORDER:
        return s == ORDO_STATUS_CREATED || s == ORDO_STATUS_CONFIRMED || s == ORDO_STATUS_PREPARING;
    default: return false;
    }
}

/* The meta entry named `key`, or NULL. */
static const ordo_meta_entry_t *s_meta(const ordo_meta_t *m, const char *key)
{
    for (uint32_t i = 0; i < m->count; i++)
        if (s_eq(m->entries[i].key, key))
            return &m->entries[i];
    return NULL;
}

/* ---- name tables ------------------------------------------------------- */

static void test_names_round_trip(void)
{
    for (int s = 1; s < ORDO_STATUS_COUNT_; s++) {
        const char *n = ordo_status_name((ordo_status_t)s);
        CU_ASSERT_EQUAL(ordo_status_from_name(n, strlen(n)), (ordo_status_t)s);
    }
    for (int t = 1; t < ORDO_REQ_COUNT_; t++) {
        const char *n = ordo_request_type_name((ordo_request_type_t)t);
        CU_ASSERT_EQUAL(ordo_request_type_from_name(n, strlen(n)), (ordo_request_type_t)t);
    }
    for (int t = 1; t < ORDO_EVT_COUNT_; t++) {
        const char *n = ordo_event_type_name((ordo_event_type_t)t);
        CU_ASSERT_EQUAL(ordo_event_type_from_name(n, strlen(n)), (ordo_event_type_t)t);
    }
    for (int c = 0; c < ORDO_CODE_COUNT_; c++) {
        const char *n = ordo_code_name((ordo_code_t)c);
        CU_ASSERT_EQUAL(ordo_code_from_name(n, strlen(n)), (ordo_code_t)c);
    }
    /* Spelling exactly as PROTOCOL.md. */
    CU_ASSERT_STRING_EQUAL(ordo_status_name(ORDO_STATUS_OUT_FOR_DELIVERY), "OutForDelivery");
    CU_ASSERT_STRING_EQUAL(ordo_status_name(ORDO_STATUS_CANCELLED), "Cancelled");
    CU_ASSERT_STRING_EQUAL(ordo_request_type_name(ORDO_REQ_START_PREPARING), "StartPreparing");
    CU_ASSERT_STRING_EQUAL(ordo_request_type_name(ORDO_REQ_PICK_UP), "PickUp");
    CU_ASSERT_STRING_EQUAL(ordo_request_type_name(ORDO_REQ_READ_ALL), "ReadAll");
    CU_ASSERT_STRING_EQUAL(ordo_event_type_name(ORDO_EVT_ORDER_OUT_FOR_DELIVERY),
                           "OrderOutForDelivery");
    CU_ASSERT_STRING_EQUAL(ordo_code_name(ORDO_CODE_BAD_REQUEST), "bad_request");
    CU_ASSERT_STRING_EQUAL(ordo_code_name(ORDO_CODE_INVALID_TRANSITION), "invalid_transition");
    CU_ASSERT_STRING_EQUAL(ordo_code_name(ORDO_CODE_ALREADY_EXISTS), "already_exists");
    /* Unknown names, prefixes, wrong case, "" and out-of-range values. */
    CU_ASSERT_EQUAL(ordo_request_type_from_name("", 0), ORDO_REQ_NONE);
    CU_ASSERT_EQUAL(ordo_request_type_from_name("Create", 6), ORDO_REQ_NONE);
    CU_ASSERT_EQUAL(ordo_request_type_from_name("createorder", 11), ORDO_REQ_NONE);
    CU_ASSERT_EQUAL(ordo_request_type_from_name("CreateOrderX", 12), ORDO_REQ_NONE);
    CU_ASSERT_EQUAL(ordo_request_type_from_name("CreateOrderX", 11), ORDO_REQ_CREATE_ORDER);
    CU_ASSERT_EQUAL(ordo_status_from_name("Nope", 4), ORDO_STATUS_NONE);
    CU_ASSERT_EQUAL(ordo_event_type_from_name("Order", 5), ORDO_EVT_NONE);
    CU_ASSERT_EQUAL(ordo_code_from_name("nope", 4), (ordo_code_t)-1);
    CU_ASSERT_STRING_EQUAL(ordo_status_name((ordo_status_t)99), "");
    CU_ASSERT_STRING_EQUAL(ordo_event_type_name((ordo_event_type_t)-1), "");
    /* Commands and their events. */
    CU_ASSERT_EQUAL(ordo_event_type_for(ORDO_REQ_CREATE_ORDER), ORDO_EVT_ORDER_CREATED);
    CU_ASSERT_EQUAL(ordo_event_type_for(ORDO_REQ_PICK_UP), ORDO_EVT_ORDER_OUT_FOR_DELIVERY);
    CU_ASSERT_EQUAL(ordo_event_type_for(ORDO_REQ_CANCEL_ORDER), ORDO_EVT_ORDER_CANCELLED);
    CU_ASSERT_EQUAL(ordo_event_type_for(ORDO_REQ_GET_ORDER), ORDO_EVT_NONE);
    for (size_t i = 0; i < N_COMMANDS; i++)
        CU_ASSERT_EQUAL(ordo_status_after(ordo_event_type_for(s_commands[i])),
                        i + 1 == N_COMMANDS ? ORDO_STATUS_CANCELLED : (ordo_status_t)(i + 1));
}

/* ---- decide: the state machine ------------------------------------------ */

static void s_check_event(const ordo_order_t *o, const ordo_request_t *req, const ordo_event_t *ev)
{
    CU_ASSERT_EQUAL(ev->type, ordo_event_type_for(req->type));
    CU_ASSERT_EQUAL(ev->version, (uint32_t)o->version + 1);
    CU_ASSERT_EQUAL(ev->schema, ordo_event_schema_current(ev->type));
    CU_ASSERT_EQUAL(ev->position, 0);
    CU_ASSERT_EQUAL(ev->timestamp_us, 0);
    CU_ASSERT_TRUE(s_eq(ev->order_id, "o-1"));
    const ordo_meta_entry_t *cmd = s_meta(&ev->meta, "command");
    CU_ASSERT_PTR_NOT_NULL_FATAL(cmd);
    CU_ASSERT_FALSE(cmd->is_int);
    CU_ASSERT_TRUE(s_eq(cmd->sval, ordo_request_type_name(req->type)));
    const ordo_meta_entry_t *rid = s_meta(&ev->meta, "request_id");
    CU_ASSERT_PTR_NOT_NULL_FATAL(rid);
    CU_ASSERT_TRUE(s_eq(rid->sval, "new-req"));
    const ordo_data_t *d = &ev->data;
    switch (ev->type) {
    case ORDO_EVT_ORDER_CREATED:
        CU_ASSERT_EQUAL(d->present, ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS |
                                        ORDO_F_TOTAL_CENTS | ORDO_F_DELIVERY_ADDRESS |
                                        ORDO_F_CURRENCY);
        CU_ASSERT_TRUE(s_eq(d->currency, "USD")); /* the default */
        CU_ASSERT_EQUAL(ev->schema, 2);
        CU_ASSERT_EQUAL(d->user_id, 42);
        CU_ASSERT_EQUAL(d->restaurant_id, 7);
        CU_ASSERT_EQUAL(d->n_items, 2);
        CU_ASSERT_EQUAL(d->total_cents, 2 * 1250 + 3 * 199);
        CU_ASSERT_TRUE(s_eq(d->delivery_address, "1 Main St"));
        break;
    case ORDO_EVT_ORDER_CONFIRMED:
        CU_ASSERT_EQUAL(d->present, ORDO_F_RESTAURANT_ID);
        CU_ASSERT_EQUAL(d->restaurant_id, 7);
        break;
    case ORDO_EVT_ORDER_PREPARING:
        CU_ASSERT_EQUAL(d->present, ORDO_F_ESTIMATED_MINUTES);
        CU_ASSERT_EQUAL(d->estimated_minutes, 25);
        break;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY:
        CU_ASSERT_EQUAL(d->present, ORDO_F_COURIER_ID);
        CU_ASSERT_EQUAL(d->courier_id, 99);
        break;
    case ORDO_EVT_ORDER_CANCELLED:
        CU_ASSERT_EQUAL(d->present, ORDO_F_REASON | ORDO_F_PREVIOUS_STATUS);
        CU_ASSERT_TRUE(s_eq(d->reason, "changed my mind"));
        CU_ASSERT_EQUAL(d->previous_status, o->status);
        break;
    default:
        CU_ASSERT_EQUAL(d->present, 0);
        break;
    }
}

/* The request-type table is whole and consistent: every type named and
 * found by its name; a command appends an event of its own, names an
 * order and takes no query fields; a query appends nothing and takes no
 * data; a type that takes `limit` has a default within its bound. */
static void test_request_table(void)
{
    CU_ASSERT_STRING_EQUAL(ordo_request_info(ORDO_REQ_NONE)->name, "");
    CU_ASSERT_PTR_EQUAL(ordo_request_info((ordo_request_type_t)999), ordo_request_info(ORDO_REQ_NONE));
    int commands = 0, paged = 0;
    for (int t = 1; t < ORDO_REQ_COUNT_; t++) {
        const ordo_request_info_t *i = ordo_request_info((ordo_request_type_t)t);
        CU_ASSERT_FATAL(i->name && i->name[0]);
        CU_ASSERT_EQUAL(ordo_request_type_from_name(i->name, strlen(i->name)), t);
        if (i->command) {
            commands++;
            CU_ASSERT(i->on_order);
            CU_ASSERT(i->event != ORDO_EVT_NONE);
            CU_ASSERT_EQUAL(ordo_request_type_for(i->event), t);
            CU_ASSERT_EQUAL(i->query_fields, 0);
        } else {
            CU_ASSERT_EQUAL(i->event, ORDO_EVT_NONE);
            CU_ASSERT_EQUAL(i->data_fields, 0);
        }
        if (i->query_fields & ORDO_Q_LIMIT)
            CU_ASSERT(i->limit_default >= 1 && i->limit_default <= i->limit_max);
        paged += i->paged;
        CU_ASSERT(!i->paged || !i->on_order);
    }
    CU_ASSERT_EQUAL(commands, 7);
    CU_ASSERT_EQUAL(paged, 1);
    CU_ASSERT_TRUE(ordo_request_is_command(ORDO_REQ_DELIVER));
    CU_ASSERT_FALSE(ordo_request_is_command(ORDO_REQ_GET_ORDER));
    CU_ASSERT_EQUAL(ordo_event_type_for(ORDO_REQ_PICK_UP), ORDO_EVT_ORDER_OUT_FOR_DELIVERY);
    CU_ASSERT_EQUAL(ordo_request_info(ORDO_REQ_CREATE_ORDER)->data_fields & ORDO_F_ITEMS, ORDO_F_ITEMS);
}

static void test_transition_matrix(void)
{
    int allowed = 0, refused = 0;
    for (int s = ORDO_STATUS_NONE; s < ORDO_STATUS_COUNT_; s++) {
        for (size_t c = 0; c < N_COMMANDS; c++) {
            ordo_order_t o = {0};
            s_order_at(&o, (ordo_status_t)s);
            ordo_request_t req;
            ordo_event_t ev;
            ordo_error_t err;
            uint32_t dup = 0;
            s_cmd(&req, s_commands[c]);
            req.request_id = ORDO_STR("new-req");
            CU_ASSERT_TRUE(ordo_request_check(&req, &err));
            ordo_decision_t r = ordo_decide(&o, &req, &ev, &dup, &err);
            if (s_allowed((ordo_status_t)s, s_commands[c])) {
                allowed++;
                CU_ASSERT_EQUAL_FATAL(r, ORDO_DECIDE_EVENT);
                s_check_event(&o, &req, &ev);
                /* and apply accepts what decide made */
                CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
                CU_ASSERT_EQUAL(o.status, ordo_status_after(ev.type));
            } else {
                refused++;
                CU_ASSERT_EQUAL_FATAL(r, ORDO_DECIDE_ERROR);
                if (s == ORDO_STATUS_NONE) {
                    CU_ASSERT_EQUAL(err.code, ORDO_CODE_NOT_FOUND);
                    CU_ASSERT_STRING_EQUAL(err.message, "order o-1 does not exist");
                } else if (s_commands[c] == ORDO_REQ_CREATE_ORDER) {
                    CU_ASSERT_EQUAL(err.code, ORDO_CODE_ALREADY_EXISTS);
                    CU_ASSERT_EQUAL(err.current_version, o.version);
                } else {
                    CU_ASSERT_EQUAL(err.code, ORDO_CODE_INVALID_TRANSITION);
                    CU_ASSERT_EQUAL(err.status, (ordo_status_t)s);
                    char want[128];
                    snprintf(want, sizeof want, "%s is not allowed when the order is %s",
                             ordo_request_type_name(s_commands[c]),
                             ordo_status_name((ordo_status_t)s));
                    CU_ASSERT_STRING_EQUAL(err.message, want);
                }
                CU_ASSERT_STRING_EQUAL(err.field, "");
            }
            ordo_order_clear(&o);
        }
    }
    CU_ASSERT_EQUAL(allowed, 9); /* 1 create + 5 forward steps + 3 cancels */
    CU_ASSERT_EQUAL(refused, 8 * 7 - 9);
}

static void test_event_data(void)
{
    ordo_order_t o = {0};
    ordo_request_t req;
    ordo_event_t ev;
    ordo_error_t err;
    uint32_t dup = 0;

    /* total_cents with the largest items allowed still fits. */
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.data.n_items = ORDO_ITEMS_MAX;
    for (int i = 0; i < ORDO_ITEMS_MAX; i++)
        req.data.items[i] = (ordo_item_t){ORDO_STR("s"), ORDO_STR("n"), ORDO_ITEM_QTY_MAX,
                                          ORDO_PRICE_CENTS_MAX};
    CU_ASSERT_TRUE(ordo_request_check(&req, &err));
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.data.total_cents, 10000000000000LL);
    CU_ASSERT_EQUAL(ev.data.n_items, ORDO_ITEMS_MAX);
    CU_ASSERT_EQUAL(ev.version, 1);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(o.total_cents, 10000000000000LL);
    CU_ASSERT_EQUAL(o.n_items, ORDO_ITEMS_MAX);

    /* restaurant_id comes from the order, not from the command's data. */
    s_cmd(&req, ORDO_REQ_CONFIRM_ORDER);
    req.has_data = true;
    req.data.present = ORDO_F_RESTAURANT_ID;
    req.data.restaurant_id = 555;
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.data.restaurant_id, 7);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);

    /* Optional estimated_minutes absent: empty data. */
    s_cmd(&req, ORDO_REQ_START_PREPARING);
    req.has_data = false;
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.data.present, 0);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_FALSE(o.has_estimated_minutes);

    /* previous_status records where the cancel came from. */
    s_cmd(&req, ORDO_REQ_CANCEL_ORDER);
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.data.previous_status, ORDO_STATUS_PREPARING);
    CU_ASSERT_EQUAL(ev.version, 4);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_CANCELLED);
    CU_ASSERT_TRUE(s_eq(o.cancel_reason, "changed my mind"));
    ordo_order_clear(&o);

    /* PickUp without courier: empty data, order has no courier. */
    s_order_at(&o, ORDO_STATUS_READY);
    s_cmd(&req, ORDO_REQ_PICK_UP);
    req.has_data = false;
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.data.present, 0);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_FALSE(o.has_courier_id);
    ordo_order_clear(&o);
}

/* ---- decide: version and rule order ------------------------------------- */

static ordo_decision_t s_decide(const ordo_order_t *o, ordo_request_type_t type, int64_t expected,
                                const char *rid, ordo_error_t *err, uint32_t *dup)
{
    ordo_request_t req;
    ordo_event_t ev;
    s_cmd(&req, type);
    req.expected_version = expected;
    if (rid)
        req.request_id = s_cstr(rid);
    *dup = 0;
    memset(err, 0, sizeof *err);
    return ordo_decide(o, &req, &ev, dup, err);
}

static void test_expected_version(void)
{
    ordo_order_t o = {0};
    ordo_error_t err;
    uint32_t dup;
    /* Create: 0 and -1 pass, anything else conflicts against 0. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CREATE_ORDER, 0, NULL, &err, &dup), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CREATE_ORDER, -1, NULL, &err, &dup), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CREATE_ORDER, 1, NULL, &err, &dup), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_CONFLICT);
    CU_ASSERT_EQUAL(err.expected_version, 1);
    CU_ASSERT_EQUAL(err.current_version, 0);

    s_order_at(&o, ORDO_STATUS_CONFIRMED); /* version 2 */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_START_PREPARING, 2, NULL, &err, &dup), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_START_PREPARING, -1, NULL, &err, &dup), ORDO_DECIDE_EVENT);
    for (int64_t e = 0; e <= 7; e++) {
        if (e == 2)
            continue;
        CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_START_PREPARING, e, NULL, &err, &dup),
                        ORDO_DECIDE_ERROR);
        CU_ASSERT_EQUAL(err.code, ORDO_CODE_CONFLICT);
        CU_ASSERT_EQUAL(err.expected_version, e);
        CU_ASSERT_EQUAL(err.current_version, 2);
    }
    CU_ASSERT_STRING_EQUAL(err.message, "expected version 7 but order o-1 is at version 2");
    /* already_exists also when expected_version is 0. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CREATE_ORDER, 0, NULL, &err, &dup), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_ALREADY_EXISTS);
    CU_ASSERT_EQUAL(err.current_version, 2);
    ordo_order_clear(&o);
}

static void test_rule_order(void)
{
    ordo_order_t o = {0};
    ordo_error_t err;
    uint32_t dup;
    /* not_found wins over conflict. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CONFIRM_ORDER, 5, "x", &err, &dup), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_NOT_FOUND);

    s_order_at(&o, ORDO_STATUS_DELIVERED); /* request ids b-1 .. b-6 */
    /* A duplicate wins over conflict and over invalid_transition ... */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CONFIRM_ORDER, 1, "b-2", &err, &dup),
                    ORDO_DECIDE_DUPLICATE);
    CU_ASSERT_EQUAL(dup, 2);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CANCEL_ORDER, -1, "b-4", &err, &dup),
                    ORDO_DECIDE_DUPLICATE);
    CU_ASSERT_EQUAL(dup, 4);
    /* ... and over already_exists, whatever the command now is. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CREATE_ORDER, 0, "b-1", &err, &dup),
                    ORDO_DECIDE_DUPLICATE);
    CU_ASSERT_EQUAL(dup, 1);
    /* Conflict wins over invalid_transition. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CANCEL_ORDER, 3, "new", &err, &dup), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_CONFLICT);
    CU_ASSERT_EQUAL(err.current_version, 6);
    /* With the right version, the status decides. */
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_CANCEL_ORDER, 6, "new", &err, &dup), ORDO_DECIDE_ERROR);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_INVALID_TRANSITION);
    CU_ASSERT_EQUAL(err.status, ORDO_STATUS_DELIVERED);
    CU_ASSERT_STRING_EQUAL(err.message, "CancelOrder is not allowed when the order is Delivered");
    ordo_order_clear(&o);
}

static void test_idempotency(void)
{
    ordo_order_t o = {0};
    s_run(&o, ORDO_REQ_CREATE_ORDER, "req-A", 10);
    s_run(&o, ORDO_REQ_CONFIRM_ORDER, NULL, 20);
    s_run(&o, ORDO_REQ_START_PREPARING, "req-C", 30);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("req-A")), 1);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("req-C")), 3);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("req-B")), 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("req-")), 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("req-AA")), 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("")), 0);
    CU_ASSERT_EQUAL(o.request_ids[1].len, 0);

    /* decide: the same id is a duplicate; another id is a new command. */
    ordo_error_t err;
    uint32_t dup;
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_MARK_READY, -1, "req-C", &err, &dup),
                    ORDO_DECIDE_DUPLICATE);
    CU_ASSERT_EQUAL(dup, 3);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_MARK_READY, -1, "req-D", &err, &dup), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(s_decide(&o, ORDO_REQ_MARK_READY, -1, NULL, &err, &dup), ORDO_DECIDE_EVENT);

    /* A client meta key "request_id" is not the request's id. */
    ordo_request_t req;
    ordo_event_t ev;
    s_cmd(&req, ORDO_REQ_MARK_READY);
    req.meta.count = 1;
    req.meta.entries[0] = (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = ORDO_STR("fake")};
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("fake")), 0);
    ordo_order_clear(&o);
}

/* ---- field limits ------------------------------------------------------- */

static void s_ok(const ordo_request_t *req)
{
    ordo_error_t err;
    memset(&err, 0, sizeof err);
    bool ok = ordo_request_check(req, &err);
    CU_ASSERT_TRUE(ok);
    if (!ok)
        fprintf(stderr, "\n  unexpected bad_request: %s: %s\n", err.field, err.message);
}

static void s_bad(const ordo_request_t *req, const char *field)
{
    ordo_error_t err;
    memset(&err, 0, sizeof err);
    CU_ASSERT_FALSE(ordo_request_check(req, &err));
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_BAD_REQUEST);
    CU_ASSERT_STRING_EQUAL(err.field, field);
    CU_ASSERT(strlen(err.message) > 0);
}

static void test_limits_ids(void)
{
    ordo_request_t req;
    s_cmd(&req, ORDO_REQ_CONFIRM_ORDER);
    req.order_id = ORDO_STR("AZaz09_-.:");
    s_ok(&req);
    req.order_id = s_n(ORDO_ORDER_ID_MAX);
    s_ok(&req);
    req.order_id = s_n(1);
    s_ok(&req);
    req.order_id = s_n(ORDO_ORDER_ID_MAX + 1);
    s_bad(&req, "order_id");
    req.order_id = s_n(0);
    s_bad(&req, "order_id");
    const char *bad_ids[] = {"a b", "a/b", "é", "a\n", "a,b", "a@b", "a+b"};
    for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
        req.order_id = s_cstr(bad_ids[i]);
        s_bad(&req, "order_id");
    }
    ordo_error_t err;
    ordo_request_check(&req, &err);
    CU_ASSERT_STRING_EQUAL(err.message, "order_id must be 1 to 64 bytes of A-Z a-z 0-9 _ - . :");

    s_cmd(&req, ORDO_REQ_CONFIRM_ORDER);
    req.request_id = s_n(ORDO_REQUEST_ID_MAX);
    s_ok(&req);
    req.request_id = s_n(ORDO_REQUEST_ID_MAX + 1);
    s_bad(&req, "request_id");

    s_cmd(&req, ORDO_REQ_CONFIRM_ORDER);
    req.expected_version = -1;
    s_ok(&req);
    req.expected_version = 0;
    s_ok(&req);
    req.expected_version = -2;
    s_bad(&req, "expected_version");
    req.expected_version = INT64_MIN;
    s_bad(&req, "expected_version");

    /* Unknown request type. */
    req.type = ORDO_REQ_NONE;
    ordo_request_check(&req, &err);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_UNKNOWN_TYPE);
}

static void test_limits_create(void)
{
    ordo_request_t req;
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    s_ok(&req);

    /* Missing data and missing required fields. */
    req.has_data = false;
    s_bad(&req, "data");
    static const struct {
        uint32_t bit;
        const char *field;
    } required[] = {
        {ORDO_F_USER_ID, "data.user_id"},
        {ORDO_F_RESTAURANT_ID, "data.restaurant_id"},
        {ORDO_F_ITEMS, "data.items"},
        {ORDO_F_DELIVERY_ADDRESS, "data.delivery_address"},
    };
    for (size_t i = 0; i < 4; i++) {
        s_cmd(&req, ORDO_REQ_CREATE_ORDER);
        req.data.present &= ~required[i].bit;
        s_bad(&req, required[i].field);
    }

    /* ids 0..2^63-1 */
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.data.user_id = 0;
    req.data.restaurant_id = INT64_MAX;
    s_ok(&req);
    req.data.user_id = -1;
    s_bad(&req, "data.user_id");
    req.data.user_id = 0;
    req.data.restaurant_id = -1;
    s_bad(&req, "data.restaurant_id");

    /* items count 1..100 */
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.data.n_items = 1;
    s_ok(&req);
    req.data.n_items = 0;
    s_bad(&req, "data.items");
    for (int i = 0; i < ORDO_ITEMS_MAX; i++)
        req.data.items[i] = (ordo_item_t){ORDO_STR("s"), ORDO_STR("n"), 1, 0};
    req.data.n_items = ORDO_ITEMS_MAX;
    s_ok(&req);
    req.data.n_items = ORDO_ITEMS_MAX + 1; /* must not read past the array */
    s_bad(&req, "data.items");

    /* Each item field at its boundaries, reported with the item's index. */
    req.data.n_items = 5;
    ordo_item_t *it = &req.data.items[3];
    it->qty = ORDO_ITEM_QTY_MAX;
    it->price_cents = ORDO_PRICE_CENTS_MAX;
    it->sku = s_n(ORDO_SKU_MAX);
    it->name = s_n(ORDO_NAME_MAX);
    s_ok(&req);
    it->qty = 0;
    s_bad(&req, "data.items.3.qty");
    ordo_error_t err;
    ordo_request_check(&req, &err);
    CU_ASSERT_STRING_EQUAL(err.message, "data.items.3.qty must be between 1 and 1000");
    it->qty = ORDO_ITEM_QTY_MAX + 1;
    s_bad(&req, "data.items.3.qty");
    it->qty = 1;
    it->price_cents = ORDO_PRICE_CENTS_MAX + 1;
    s_bad(&req, "data.items.3.price_cents");
    it->price_cents = -1;
    s_bad(&req, "data.items.3.price_cents");
    it->price_cents = 0;
    s_ok(&req);
    it->sku = s_n(ORDO_SKU_MAX + 1);
    s_bad(&req, "data.items.3.sku");
    it->sku = s_n(0);
    s_bad(&req, "data.items.3.sku");
    it->sku = s_n(1);
    it->name = s_n(ORDO_NAME_MAX + 1);
    s_bad(&req, "data.items.3.name");
    it->name = s_n(0);
    s_bad(&req, "data.items.3.name");
    it->name = s_n(1);
    req.data.items[0].sku = s_n(0);
    s_bad(&req, "data.items.0.sku");
    req.data.items[0].sku = s_n(1);
    req.data.items[99].qty = 0;
    req.data.n_items = ORDO_ITEMS_MAX;
    s_bad(&req, "data.items.99.qty");

    /* delivery_address 1..512 */
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.data.delivery_address = s_n(ORDO_ADDRESS_MAX);
    s_ok(&req);
    req.data.delivery_address = s_n(1);
    s_ok(&req);
    req.data.delivery_address = s_n(ORDO_ADDRESS_MAX + 1);
    s_bad(&req, "data.delivery_address");
    req.data.delivery_address = s_n(0);
    s_bad(&req, "data.delivery_address");
}

static void test_limits_other_commands(void)
{
    ordo_request_t req;
    /* CancelOrder: data and reason 1..256 required. */
    s_cmd(&req, ORDO_REQ_CANCEL_ORDER);
    req.data.reason = s_n(ORDO_REASON_MAX);
    s_ok(&req);
    req.data.reason = s_n(1);
    s_ok(&req);
    req.data.reason = s_n(ORDO_REASON_MAX + 1);
    s_bad(&req, "data.reason");
    req.data.reason = s_n(0);
    s_bad(&req, "data.reason");
    req.data.present = 0;
    s_bad(&req, "data.reason");
    req.has_data = false;
    s_bad(&req, "data");

    /* StartPreparing: estimated_minutes 1..1440 when given. */
    s_cmd(&req, ORDO_REQ_START_PREPARING);
    req.data.estimated_minutes = 1;
    s_ok(&req);
    req.data.estimated_minutes = ORDO_ESTIMATED_MINUTES_MAX;
    s_ok(&req);
    req.data.estimated_minutes = 0;
    s_bad(&req, "data.estimated_minutes");
    req.data.estimated_minutes = ORDO_ESTIMATED_MINUTES_MAX + 1;
    s_bad(&req, "data.estimated_minutes");
    req.data.present = 0;
    s_ok(&req);
    req.has_data = false;
    s_ok(&req);

    /* PickUp: courier_id 0..2^63-1 when given. */
    s_cmd(&req, ORDO_REQ_PICK_UP);
    req.data.courier_id = 0;
    s_ok(&req);
    req.data.courier_id = -1;
    s_bad(&req, "data.courier_id");
    req.has_data = false;
    s_ok(&req);

    /* Commands without data need none. */
    ordo_request_type_t plain[] = {ORDO_REQ_CONFIRM_ORDER, ORDO_REQ_MARK_READY, ORDO_REQ_DELIVER};
    for (int i = 0; i < 3; i++) {
        s_cmd(&req, plain[i]);
        s_ok(&req);
    }
}

static void test_limits_meta(void)
{
    ordo_request_t req;
    s_cmd(&req, ORDO_REQ_CONFIRM_ORDER);
    static char keys[ORDO_META_CLIENT_MAX + 1][8];
    for (int i = 0; i <= ORDO_META_CLIENT_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        req.meta.entries[i] = (ordo_meta_entry_t){.key = s_cstr(keys[i]), .is_int = true, .ival = i};
    }
    req.meta.count = ORDO_META_CLIENT_MAX;
    s_ok(&req);
    req.meta.count = ORDO_META_CLIENT_MAX + 1;
    s_bad(&req, "meta");

    req.meta.count = 2;
    req.meta.entries[1].key = s_n(ORDO_META_KEY_MAX);
    s_ok(&req);
    req.meta.entries[1].key = s_n(ORDO_META_KEY_MAX + 1);
    s_bad(&req, "meta");
    req.meta.entries[1].key = s_n(0);
    s_bad(&req, "meta");

    req.meta.entries[1] = (ordo_meta_entry_t){.key = ORDO_STR("actor"), .sval = s_n(ORDO_META_VALUE_MAX)};
    s_ok(&req);
    req.meta.entries[1].sval = s_n(0);
    s_ok(&req);
    req.meta.entries[1].sval = s_n(ORDO_META_VALUE_MAX + 1);
    s_bad(&req, "meta.actor");
    /* An integer value has no length limit; the path holds the longest key. */
    req.meta.entries[1].is_int = true;
    s_ok(&req);
    req.meta.entries[1] = (ordo_meta_entry_t){.key = s_n(ORDO_META_KEY_MAX), .sval = s_n(ORDO_META_VALUE_MAX + 1)};
    char want[96];
    snprintf(want, sizeof want, "meta.%.*s", ORDO_META_KEY_MAX, s_big);
    s_bad(&req, want);
}

static void test_limits_queries(void)
{
    ordo_request_t req;
    s_cmd(&req, ORDO_REQ_GET_ORDER);
    s_ok(&req);
    req.as_of_version = 1;
    s_ok(&req);
    req.as_of_version = -1;
    s_bad(&req, "as_of_version");
    req.as_of_version = 3;
    req.has_as_of_time = true;
    s_bad(&req, "as_of_time_us");
    req.as_of_version = 0;
    s_ok(&req);
    req.order_id = s_n(0);
    s_bad(&req, "order_id");
    req.order_id = ORDO_STR("bad id");
    s_bad(&req, "order_id");

    s_cmd(&req, ORDO_REQ_GET_HISTORY);
    s_ok(&req);
    req.from_version = 0;
    s_bad(&req, "from_version");
    req.from_version = 1;
    req.limit = 0;
    s_bad(&req, "limit");

    s_cmd(&req, ORDO_REQ_READ_ALL);
    req.order_id = s_n(0); /* no order id needed */
    s_ok(&req);
    req.from_position = 0;
    s_bad(&req, "from_position");
    req.from_position = 1;
    req.limit = 0;
    s_bad(&req, "limit");
    req.limit = 1;
    req.request_id = s_n(ORDO_REQUEST_ID_MAX + 1);
    s_bad(&req, "request_id");

    s_cmd(&req, ORDO_REQ_PING);
    req.order_id = s_n(0);
    s_ok(&req);
    s_cmd(&req, ORDO_REQ_STATS);
    req.order_id = s_n(0);
    s_ok(&req);
}

/* ---- meta building ------------------------------------------------------ */

static void test_meta_building(void)
{
    ordo_order_t o = {0};
    ordo_request_t req;
    ordo_event_t ev;
    ordo_error_t err;
    uint32_t dup;
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.request_id = ORDO_STR("rq-9");
    req.meta.count = 4;
    req.meta.entries[0] = (ordo_meta_entry_t){.key = ORDO_STR("actor"), .sval = ORDO_STR("alice")};
    req.meta.entries[1] = (ordo_meta_entry_t){.key = ORDO_STR("command"), .sval = ORDO_STR("Evil")};
    req.meta.entries[2] = (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .is_int = true, .ival = 5};
    req.meta.entries[3] = (ordo_meta_entry_t){.key = ORDO_STR("correlation_id"), .is_int = true, .ival = -77};
    CU_ASSERT_TRUE(ordo_request_check(&req, &err));
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL_FATAL(ev.meta.count, 4);
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[0].key, "actor"));
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[0].sval, "alice"));
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[1].key, "correlation_id"));
    CU_ASSERT_TRUE(ev.meta.entries[1].is_int);
    CU_ASSERT_EQUAL(ev.meta.entries[1].ival, -77);
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[2].key, "command"));
    CU_ASSERT_FALSE(ev.meta.entries[2].is_int);
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[2].sval, "CreateOrder"));
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[3].key, "request_id"));
    CU_ASSERT_FALSE(ev.meta.entries[3].is_int);
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[3].sval, "rq-9"));

    /* Without a request id: only command is added. */
    req.request_id = s_n(0);
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.meta.count, 3);
    CU_ASSERT_PTR_NULL(s_meta(&ev.meta, "request_id"));

    /* 16 client keys (all kept) + command + request_id fill the array. */
    static char keys[ORDO_META_CLIENT_MAX][8];
    for (int i = 0; i < ORDO_META_CLIENT_MAX; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        req.meta.entries[i] = (ordo_meta_entry_t){.key = s_cstr(keys[i]), .sval = ORDO_STR("v")};
    }
    req.meta.count = ORDO_META_CLIENT_MAX;
    req.request_id = ORDO_STR("r");
    CU_ASSERT_TRUE(ordo_request_check(&req, &err));
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL(ev.meta.count, ORDO_META_MAX);
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[15].key, "k15"));
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[16].key, "command"));
    CU_ASSERT_TRUE(s_eq(ev.meta.entries[17].key, "request_id"));
    /* Apply keeps the request id from meta. */
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("r")), 1);
    ordo_order_clear(&o);
}

/* ---- apply ---------------------------------------------------------------- */

static bool s_same_str(ordo_str_t a, ordo_str_t b)
{
    return a.ptr == b.ptr && a.len == b.len;
}

/* Field by field (padding is not compared), pointers by identity. */
static bool s_same_order(const ordo_order_t *a, const ordo_order_t *b)
{
    bool same = a->order_id_len == b->order_id_len &&
                memcmp(a->order_id, b->order_id, a->order_id_len) == 0 &&
                a->version == b->version && a->status == b->status &&
                a->user_id == b->user_id && a->restaurant_id == b->restaurant_id &&
                a->total_cents == b->total_cents && a->created_at_us == b->created_at_us &&
                a->updated_at_us == b->updated_at_us &&
                a->has_estimated_minutes == b->has_estimated_minutes &&
                a->estimated_minutes == b->estimated_minutes &&
                a->has_courier_id == b->has_courier_id && a->courier_id == b->courier_id &&
                s_same_str(a->delivery_address, b->delivery_address) &&
                s_same_str(a->cancel_reason, b->cancel_reason) && a->n_items == b->n_items &&
                a->items == b->items && a->arena == b->arena && a->arena2 == b->arena2;
    for (int i = 0; i < ORDO_MAX_VERSION; i++)
        same = same && s_same_str(a->request_ids[i], b->request_ids[i]);
    return same;
}

static void test_apply_rejects(void)
{
    ordo_order_t o = {0}, before;
    ordo_event_t ev;
    memset(&ev, 0, sizeof ev);
    /* On an absent order: only OrderCreated with version 1 and an order id. */
    ev.order_id = ORDO_STR("o-1");
    ev.type = ORDO_EVT_ORDER_CONFIRMED;
    ev.version = 1;
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.type = ORDO_EVT_ORDER_CREATED;
    ev.version = 2;
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.version = 1;
    ev.order_id = s_n(0);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.order_id = s_n(ORDO_ORDER_ID_MAX + 1);
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.order_id = ORDO_STR("o-1");
    ev.type = ORDO_EVT_NONE;
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_NONE);
    CU_ASSERT_EQUAL(o.version, 0);

    s_order_at(&o, ORDO_STATUS_CONFIRMED);
    memcpy(&before, &o, sizeof o); /* shallow: pointers must not change either */
    memset(&ev, 0, sizeof ev);
    ev.order_id = ORDO_STR("o-1");
    ev.type = ORDO_EVT_ORDER_PREPARING;
    ev.timestamp_us = 999999;
    ev.meta.count = 1;
    ev.meta.entries[0] = (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = ORDO_STR("zz")};
    uint32_t bad_versions[] = {0, 1, 2, 4, 7, 255, 258};
    for (size_t i = 0; i < sizeof bad_versions / sizeof bad_versions[0]; i++) {
        ev.version = bad_versions[i];
        CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    }
    ev.version = 3;
    ev.order_id = ORDO_STR("o-2");
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.order_id = ORDO_STR("o-");
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    ev.order_id = ORDO_STR("o-1");
    ordo_event_type_t illegal[] = {ORDO_EVT_ORDER_CREATED, ORDO_EVT_ORDER_CONFIRMED,
                                   ORDO_EVT_ORDER_READY, ORDO_EVT_ORDER_DELIVERED,
                                   ORDO_EVT_ORDER_OUT_FOR_DELIVERY, (ordo_event_type_t)42};
    for (size_t i = 0; i < sizeof illegal / sizeof illegal[0]; i++) {
        ev.type = illegal[i];
        CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    }
    CU_ASSERT_TRUE(s_same_order(&before, &o));
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("zz")), 0);
    /* The right event is accepted. */
    ev.type = ORDO_EVT_ORDER_PREPARING;
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(o.version, 3);
    CU_ASSERT_EQUAL(o.updated_at_us, 999999);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("zz")), 3);
    ordo_order_clear(&o);

    /* An OrderCreated without total_cents (hand-made): apply sums the items. */
    memset(&ev, 0, sizeof ev);
    ev.order_id = ORDO_STR("o-9");
    ev.type = ORDO_EVT_ORDER_CREATED;
    ev.version = 1;
    ev.data.present = ORDO_F_ITEMS;
    ev.data.n_items = 2;
    ev.data.items[0] = (ordo_item_t){ORDO_STR("a"), ORDO_STR("A"), 3, 100};
    ev.data.items[1] = (ordo_item_t){ORDO_STR("b"), ORDO_STR("B"), 1, 5};
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), 0);
    CU_ASSERT_EQUAL(o.total_cents, 305);
    CU_ASSERT_EQUAL(o.delivery_address.len, 0);
    ordo_order_clear(&o);
    ev.data.n_items = ORDO_ITEMS_MAX + 1; /* garbage count: refused, not read */
    CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_NONE);

    /* Terminal states accept nothing. */
    s_order_at(&o, ORDO_STATUS_CANCELLED);
    ev.version = o.version + 1;
    for (int t = 1; t < ORDO_EVT_COUNT_; t++) {
        ev.type = (ordo_event_type_t)t;
        CU_ASSERT_EQUAL(ordo_apply(&o, &ev), -1);
    }
    ordo_order_clear(&o);
}

/* Prepare, then commit with the event's position and timestamp set since
 * (as the engine does around the write): the same order as apply() gives;
 * a preparation for an event that does not follow holds nothing, and one
 * dropped (the write failed) leaves the order as it was. */
static void test_apply_prepare_commit(void)
{
    static const ordo_request_type_t path[] = {ORDO_REQ_CREATE_ORDER, ORDO_REQ_CONFIRM_ORDER,
                                               ORDO_REQ_START_PREPARING, ORDO_REQ_CANCEL_ORDER};
    ordo_order_t a = {0}, b = {0};
    for (size_t i = 0; i < sizeof path / sizeof *path; i++) {
        ordo_request_t req;
        ordo_event_t ev;
        ordo_error_t err;
        uint32_t dup;
        s_cmd(&req, path[i]);
        static const char *const rids[] = {"r0", "rid-1", "rid-22-longer", "rid-333"};
        req.request_id = s_cstr(rids[i]);
        CU_ASSERT_TRUE_FATAL(ordo_request_check(&req, &err));
        CU_ASSERT_EQUAL_FATAL(ordo_decide(&b, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
        ordo_apply_prep_t prep, dropped;
        CU_ASSERT_EQUAL_FATAL(ordo_apply_prepare(&b, &ev, &prep), 0);
        CU_ASSERT_EQUAL_FATAL(ordo_apply_prepare(&b, &ev, &dropped), 0);
        ordo_apply_prep_free(&dropped); /* a write that failed: nothing changes */
        CU_ASSERT_PTR_NULL(dropped.rid);
        ev.position = 100 + i; /* then the writer stamps it */
        ev.timestamp_us = 1000 + (int64_t)i;
        ordo_apply_commit(&b, &ev, &prep);
        CU_ASSERT_PTR_NULL(prep.arena); /* the order owns it all now */
        CU_ASSERT_PTR_NULL(prep.rid);
        CU_ASSERT_EQUAL_FATAL(ordo_apply(&a, &ev), 0);
        /* the same order, its own copies apart */
        CU_ASSERT_EQUAL(a.version, b.version);
        CU_ASSERT_EQUAL(a.status, b.status);
        CU_ASSERT_EQUAL(a.positions[i], b.positions[i]);
        CU_ASSERT_EQUAL(a.updated_at_us, b.updated_at_us);
        CU_ASSERT_EQUAL(a.n_items, b.n_items);
        CU_ASSERT_EQUAL(a.total_cents, b.total_cents);
        CU_ASSERT_EQUAL(a.estimated_minutes, b.estimated_minutes);
        CU_ASSERT_EQUAL(a.cancel_reason.len, b.cancel_reason.len);
        CU_ASSERT_EQUAL(a.delivery_address.len, b.delivery_address.len);
        CU_ASSERT_EQUAL(ordo_order_find_request(&b, req.request_id), i + 1);
        /* an event that does not follow any more: nothing held */
        ordo_apply_prep_t late;
        CU_ASSERT_EQUAL(ordo_apply_prepare(&b, &ev, &late), -1);
        CU_ASSERT_PTR_NULL(late.arena);
        CU_ASSERT_PTR_NULL(late.rid);
    }
    CU_ASSERT_EQUAL(b.status, ORDO_STATUS_CANCELLED);
    CU_ASSERT_EQUAL(memcmp(b.items[1].name.ptr, "Cola", 4), 0);
    CU_ASSERT_EQUAL(memcmp(b.cancel_reason.ptr, "changed my mind", 15), 0);
    ordo_order_clear(&a);
    ordo_order_clear(&b);
}

static void test_lifecycle_and_clear(void)
{
    /* Strings live in a buffer we overwrite after applying: the order must
     * hold its own copies. */
    char buf[256];
    ordo_order_t o = {0};
    ordo_request_t req;
    ordo_event_t ev;
    ordo_error_t err;
    uint32_t dup;

    strcpy(buf, "ord:7|skuA|Name A|skuB|Name B|42 Road|rid-1");
    s_cmd(&req, ORDO_REQ_CREATE_ORDER);
    req.order_id = (ordo_str_t){buf, 5};
    req.data.items[0].sku = (ordo_str_t){buf + 6, 4};
    req.data.items[0].name = (ordo_str_t){buf + 11, 6};
    req.data.items[1].sku = (ordo_str_t){buf + 18, 4};
    req.data.items[1].name = (ordo_str_t){buf + 23, 6};
    req.data.delivery_address = (ordo_str_t){buf + 30, 7};
    req.request_id = (ordo_str_t){buf + 38, 5};
    CU_ASSERT_TRUE_FATAL(ordo_request_check(&req, &err));
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    ev.timestamp_us = 111;
    CU_ASSERT_EQUAL_FATAL(ordo_apply(&o, &ev), 0);
    memset(buf, 'X', sizeof buf);

    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_CREATED);
    CU_ASSERT_EQUAL(o.version, 1);
    CU_ASSERT_EQUAL(o.order_id_len, 5);
    CU_ASSERT_EQUAL(memcmp(o.order_id, "ord:7", 5), 0);
    CU_ASSERT_EQUAL(o.user_id, 42);
    CU_ASSERT_EQUAL(o.restaurant_id, 7);
    CU_ASSERT_EQUAL(o.total_cents, 2 * 1250 + 3 * 199);
    CU_ASSERT_EQUAL(o.created_at_us, 111);
    CU_ASSERT_EQUAL(o.updated_at_us, 111);
    CU_ASSERT_EQUAL_FATAL(o.n_items, 2);
    CU_ASSERT_TRUE(s_eq(o.items[0].sku, "skuA"));
    CU_ASSERT_TRUE(s_eq(o.items[0].name, "Name A"));
    CU_ASSERT_TRUE(s_eq(o.items[1].sku, "skuB"));
    CU_ASSERT_TRUE(s_eq(o.items[1].name, "Name B"));
    CU_ASSERT_EQUAL(o.items[1].qty, 3);
    CU_ASSERT_EQUAL(o.items[1].price_cents, 199);
    CU_ASSERT_TRUE(s_eq(o.delivery_address, "42 Road"));
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("rid-1")), 1);

    /* The rest of the happy path, with ids that decide() must match. */
    static const ordo_request_type_t rest[] = {ORDO_REQ_CONFIRM_ORDER, ORDO_REQ_START_PREPARING,
                                               ORDO_REQ_MARK_READY, ORDO_REQ_PICK_UP,
                                               ORDO_REQ_DELIVER};
    for (int i = 0; i < 5; i++) {
        char rid[16];
        snprintf(rid, sizeof rid, "rid-%d", i + 2);
        s_cmd(&req, rest[i]);
        req.order_id = ORDO_STR("ord:7");
        req.request_id = s_cstr(rid);
        CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
        ev.timestamp_us = 200 + i;
        CU_ASSERT_EQUAL_FATAL(ordo_apply(&o, &ev), 0);
    }
    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_DELIVERED);
    CU_ASSERT_EQUAL(o.version, ORDO_MAX_VERSION);
    CU_ASSERT_EQUAL(o.created_at_us, 111);
    CU_ASSERT_EQUAL(o.updated_at_us, 204);
    CU_ASSERT_TRUE(o.has_estimated_minutes);
    CU_ASSERT_EQUAL(o.estimated_minutes, 25);
    CU_ASSERT_TRUE(o.has_courier_id);
    CU_ASSERT_EQUAL(o.courier_id, 99);
    CU_ASSERT_EQUAL(o.cancel_reason.len, 0);
    CU_ASSERT_EQUAL(ordo_order_find_request(&o, ORDO_STR("rid-6")), 6);
    CU_ASSERT_TRUE(ordo_status_is_final(o.status));

    ordo_order_clear(&o);
    ordo_order_t zero;
    memset(&zero, 0, sizeof zero);
    CU_ASSERT_EQUAL(memcmp(&o, &zero, sizeof o), 0);
    ordo_order_clear(&o); /* safe twice */

    /* Cancel path: the reason is copied too. */
    strcpy(buf, "too slow");
    s_order_at(&o, ORDO_STATUS_CONFIRMED);
    s_cmd(&req, ORDO_REQ_CANCEL_ORDER);
    req.data.reason = (ordo_str_t){buf, 8};
    CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
    CU_ASSERT_EQUAL_FATAL(ordo_apply(&o, &ev), 0);
    memset(buf, 'X', sizeof buf);
    CU_ASSERT_TRUE(s_eq(o.cancel_reason, "too slow"));
    CU_ASSERT_EQUAL(o.status, ORDO_STATUS_CANCELLED);
    ordo_order_clear(&o);
}

static void test_order_copy_deep(void)
{
    ordo_order_t src = {0}, dst = {0};
    s_order_at(&src, ORDO_STATUS_CANCELLED);
    CU_ASSERT_EQUAL_FATAL(ordo_order_copy(&dst, &src), 0);
    /* Nothing shared. */
    CU_ASSERT_PTR_NOT_EQUAL(dst.arena, src.arena);
    CU_ASSERT_PTR_NOT_EQUAL(dst.arena2, src.arena2);
    CU_ASSERT_PTR_NOT_EQUAL(dst.items, src.items);
    CU_ASSERT_PTR_NOT_EQUAL(dst.request_ids[0].ptr, src.request_ids[0].ptr);
    CU_ASSERT_PTR_NOT_EQUAL(dst.delivery_address.ptr, src.delivery_address.ptr);
    /* Scribble over the source's blocks, then free them: dst is intact. */
    memset(src.arena, 'Z', src.n_items * sizeof(ordo_item_t));
    ordo_order_clear(&src);
    CU_ASSERT_EQUAL(dst.status, ORDO_STATUS_CANCELLED);
    CU_ASSERT_EQUAL(dst.version, 2);
    CU_ASSERT_EQUAL(dst.order_id_len, 3);
    CU_ASSERT_EQUAL(memcmp(dst.order_id, "o-1", 3), 0);
    CU_ASSERT_EQUAL(dst.total_cents, 2 * 1250 + 3 * 199);
    CU_ASSERT_EQUAL_FATAL(dst.n_items, 2);
    CU_ASSERT_TRUE(s_eq(dst.items[0].sku, "pz-1"));
    CU_ASSERT_TRUE(s_eq(dst.items[1].name, "Cola"));
    CU_ASSERT_EQUAL(dst.items[0].qty, 2);
    CU_ASSERT_TRUE(s_eq(dst.delivery_address, "1 Main St"));
    CU_ASSERT_TRUE(s_eq(dst.cancel_reason, "changed my mind"));
    CU_ASSERT_EQUAL(ordo_order_find_request(&dst, ORDO_STR("b-1")), 1);
    CU_ASSERT_EQUAL(ordo_order_find_request(&dst, ORDO_STR("b-2")), 2);
    /* A copy of the copy, then of an empty order. */
    ordo_order_t again = {0}, empty = {0}, empty_copy = {0};
    CU_ASSERT_EQUAL(ordo_order_copy(&again, &dst), 0);
    CU_ASSERT_TRUE(s_eq(again.items[1].sku, "cola"));
    CU_ASSERT_EQUAL(ordo_order_copy(&empty_copy, &empty), 0);
    CU_ASSERT_EQUAL(empty_copy.status, ORDO_STATUS_NONE);
    CU_ASSERT_PTR_NULL(empty_copy.arena);
    CU_ASSERT_PTR_NULL(empty_copy.items);
    CU_ASSERT_PTR_NULL(empty_copy.request_ids[0].ptr);
    ordo_order_clear(&again);
    ordo_order_clear(&dst);
}

/* Request ids of every shape are kept: none at create then some later,
 * longer than the first (no room left), shorter, and copies keep them. */
static void test_request_ids_mixed_lengths(void)
{
    static const char *const ids[][ORDO_MAX_VERSION] = {
        {"a", "bb", "cccccccccccccccccccccccccccccccccccccccc", "d", "", "eeeeee"},
        {"", "x", "yy", "", "zzzzzzzzzzzzzzzzzzzz", "w"},
        {"0f8e7d6c-5b4a-4392-8170-aabbccddeeff", "1f8e7d6c-5b4a-4392-8170-aabbccddeeff",
         "2f8e7d6c-5b4a-4392-8170-aabbccddeeff", "3f8e7d6c-5b4a-4392-8170-aabbccddeeff",
         "4f8e7d6c-5b4a-4392-8170-aabbccddeeff", "5f8e7d6c-5b4a-4392-8170-aabbccddeeff"}};
    static const ordo_request_type_t life[] = {ORDO_REQ_CREATE_ORDER,  ORDO_REQ_CONFIRM_ORDER,
                                               ORDO_REQ_START_PREPARING, ORDO_REQ_MARK_READY,
                                               ORDO_REQ_PICK_UP,       ORDO_REQ_DELIVER};
    for (size_t k = 0; k < sizeof ids / sizeof ids[0]; k++) {
        ordo_order_t o = {0}, copy = {0};
        ordo_request_t req;
        ordo_event_t ev;
        ordo_error_t err;
        uint32_t dup;
        char buf[64];
        for (int v = 0; v < ORDO_MAX_VERSION; v++) {
            s_cmd(&req, life[v]);
            req.order_id = ORDO_STR("ord:7");
            snprintf(buf, sizeof buf, "%s", ids[k][v]);
            req.request_id = s_cstr(buf);
            CU_ASSERT_EQUAL_FATAL(ordo_decide(&o, &req, &ev, &dup, &err), ORDO_DECIDE_EVENT);
            CU_ASSERT_EQUAL_FATAL(ordo_apply(&o, &ev), 0);
            memset(buf, 'X', sizeof buf); /* the order must hold its own copy */
        }
        CU_ASSERT_EQUAL(ordo_order_copy(&copy, &o), 0);
        for (int v = 0; v < ORDO_MAX_VERSION; v++) {
            ordo_str_t id = s_cstr(ids[k][v]);
            uint32_t want = id.len ? (uint32_t)v + 1 : 0;
            CU_ASSERT_EQUAL(ordo_order_find_request(&o, id), want);
            CU_ASSERT_EQUAL(ordo_order_find_request(&copy, id), want);
            CU_ASSERT_TRUE(s_eq(o.request_ids[v], ids[k][v]));
        }
        ordo_order_clear(&o);
        CU_ASSERT_TRUE(s_eq(copy.request_ids[5], ids[k][5])); /* copy outlives the original */
        ordo_order_clear(&copy);
    }
}

static void test_error_setters(void)
{
    ordo_error_t err;
    memset(&err, 0x5a, sizeof err);
    ordo_error_set(&err, ORDO_CODE_OVERLOADED, "queue %d is full", 3);
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_OVERLOADED);
    CU_ASSERT_STRING_EQUAL(err.message, "queue 3 is full");
    CU_ASSERT_STRING_EQUAL(err.field, "");
    CU_ASSERT_EQUAL(err.status, ORDO_STATUS_NONE);
    CU_ASSERT_EQUAL(err.expected_version, 0);
    CU_ASSERT_EQUAL(err.current_version, 0);
    ordo_error_bad_field(&err, "data.items.2.sku", "too %s", "long");
    CU_ASSERT_EQUAL(err.code, ORDO_CODE_BAD_REQUEST);
    CU_ASSERT_STRING_EQUAL(err.field, "data.items.2.sku");
    CU_ASSERT_STRING_EQUAL(err.message, "too long");
    /* Long texts are cut, still terminated. */
    ordo_error_bad_field(&err, s_big, "%.*s", 1000, s_big);
    CU_ASSERT_EQUAL(strlen(err.field), sizeof err.field - 1);
    CU_ASSERT_EQUAL(strlen(err.message), sizeof err.message - 1);
}

int main(void)
{
    memset(s_big, 'a', sizeof s_big - 1);
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("domain", NULL, NULL);
    CU_add_test(s, "names round trip", test_names_round_trip);
    CU_add_test(s, "request-type table", test_request_table);
    CU_add_test(s, "transition matrix", test_transition_matrix);
    CU_add_test(s, "event data", test_event_data);
    CU_add_test(s, "expected version", test_expected_version);
    CU_add_test(s, "rule order", test_rule_order);
    CU_add_test(s, "idempotency", test_idempotency);
    CU_add_test(s, "apply in two steps: prepare, then commit", test_apply_prepare_commit);
    CU_add_test(s, "limits: ids and versions", test_limits_ids);
    CU_add_test(s, "limits: CreateOrder", test_limits_create);
    CU_add_test(s, "limits: other commands", test_limits_other_commands);
    CU_add_test(s, "limits: meta", test_limits_meta);
    CU_add_test(s, "limits: queries", test_limits_queries);
    CU_add_test(s, "meta building", test_meta_building);
    CU_add_test(s, "apply rejects", test_apply_rejects);
    CU_add_test(s, "lifecycle and clear", test_lifecycle_and_clear);
    CU_add_test(s, "order copy is deep", test_order_copy_deep);
    CU_add_test(s, "request ids of mixed lengths", test_request_ids_mixed_lengths);
    CU_add_test(s, "error setters", test_error_setters);
    return ordo_test_run();
}
