/* Tests for proto/: round trips of every message type, and every class of
 * bad input PROTOCOL.md names (not MessagePack, trailing bytes, bad UTF-8,
 * too deep, too large, wrong types, out-of-limit values), each giving
 * bad_request with the right field, never a crash. */
#include "ordo_codec.h"
#include "ordo_hex.h"
#include "ordo_test.h"
#include "ordo_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static msgpack_sbuffer s_buf;
static msgpack_packer s_pk;
static ordo_request_t s_req;
static ordo_error_t s_err;

static void s_reset(void)
{
    msgpack_sbuffer_clear(&s_buf);
}

static int s_setup(void)
{
    msgpack_sbuffer_init(&s_buf);
    msgpack_packer_init(&s_pk, &s_buf, msgpack_sbuffer_write);
    return 0;
}

static int s_teardown(void)
{
    msgpack_sbuffer_destroy(&s_buf);
    return 0;
}

static void s_key(const char *k)
{
    ordo_pack_cstr(&s_pk, k);
}

/* Decodes s_buf; returns the decode result. */
static int s_decode(void)
{
    return ordo_request_decode(s_buf.data, s_buf.size, &s_req, &s_err);
}

/* Asserts that s_buf decodes to bad_request naming `field`. */
#define ASSERT_BAD(field_)                                                                         \
    do {                                                                                           \
        CU_ASSERT_EQUAL(s_decode(), -1);                                                           \
        CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);                                        \
        CU_ASSERT_STRING_EQUAL(s_err.field, (field_));                                             \
        CU_ASSERT(strlen(s_err.message) > 0);                                                      \
    } while (0)

/* Packs a valid CreateOrder with `n_items` items; `extra` more top-level
 * pairs are to be packed by the caller (map size accounts for them). */
static void s_pack_create(int n_items, int extra)
{
    msgpack_pack_map(&s_pk, 5 + extra);
    s_key("type");
    s_key("CreateOrder");
    s_key("request_id");
    s_key("req-1");
    s_key("order_id");
    s_key("ord-1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 2);
    s_key("actor");
    s_key("user:42");
    s_key("correlation_id");
    s_key("c-9");
    s_key("data");
    msgpack_pack_map(&s_pk, 4);
    s_key("user_id");
    msgpack_pack_int64(&s_pk, 42);
    s_key("restaurant_id");
    msgpack_pack_int64(&s_pk, 7);
    s_key("delivery_address");
    s_key("1 Main St");
    s_key("items");
    msgpack_pack_array(&s_pk, n_items);
    for (int i = 0; i < n_items; i++) {
        msgpack_pack_map(&s_pk, 4);
        s_key("sku");
        s_key("sku-1");
        s_key("name");
        s_key("Pizza");
        s_key("qty");
        msgpack_pack_int64(&s_pk, 2);
        s_key("price_cents");
        msgpack_pack_int64(&s_pk, 1250);
    }
}

/* ---- requests ---------------------------------------------------------- */

static void test_request_create_decodes(void)
{
    s_reset();
    s_pack_create(3, 0);
    CU_ASSERT_EQUAL_FATAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.type, ORDO_REQ_CREATE_ORDER);
    CU_ASSERT_EQUAL(s_req.request_id.len, 5);
    CU_ASSERT_EQUAL(memcmp(s_req.order_id.ptr, "ord-1", 5), 0);
    CU_ASSERT_EQUAL(s_req.expected_version, -1);
    CU_ASSERT_EQUAL(s_req.data.user_id, 42);
    CU_ASSERT_EQUAL(s_req.data.restaurant_id, 7);
    CU_ASSERT_EQUAL(s_req.data.n_items, 3);
    CU_ASSERT_EQUAL(s_req.data.items[2].qty, 2);
    CU_ASSERT_EQUAL(s_req.data.items[2].price_cents, 1250);
    CU_ASSERT_EQUAL(s_req.meta.count, 2);
    CU_ASSERT_EQUAL(s_req.meta.entries[0].key.len, 5);
}

/* Every request type survives pack -> decode with its fields. */
static void test_request_round_trip_every_type(void)
{
    for (int t = ORDO_REQ_CREATE_ORDER; t < ORDO_REQ_COUNT_; t++) {
        ordo_request_t in;
        ordo_request_init(&in);
        memset(&in.data, 0, sizeof in.data);
        in.type = (ordo_request_type_t)t;
        in.request_id = ORDO_STR("r-42");
        in.order_id = ORDO_STR("order:7");
        if (ordo_request_is_command(in.type)) {
            in.expected_version = 3;
            in.meta.count = 2;
            in.meta.entries[0] =
                (ordo_meta_entry_t){.key = ORDO_STR("actor"), .sval = ORDO_STR("u:1")};
            in.meta.entries[1] =
                (ordo_meta_entry_t){.key = ORDO_STR("n"), .is_int = true, .ival = -5};
        }
        switch (in.type) {
        case ORDO_REQ_CREATE_ORDER:
            in.expected_version = 0;
            in.has_data = true;
            in.data.present =
                ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_DELIVERY_ADDRESS;
            in.data.user_id = 1;
            in.data.restaurant_id = INT64_MAX;
            in.data.n_items = 1;
            in.data.items[0] = (ordo_item_t){ORDO_STR("s"), ORDO_STR("n"), 1000, 100000000};
            in.data.delivery_address = ORDO_STR("Rue de la Paix 1, Paris");
            break;
        case ORDO_REQ_START_PREPARING:
            in.has_data = true;
            in.data.present = ORDO_F_ESTIMATED_MINUTES;
            in.data.estimated_minutes = 1440;
            break;
        case ORDO_REQ_PICK_UP:
            in.has_data = true;
            in.data.present = ORDO_F_COURIER_ID;
            in.data.courier_id = 0;
            break;
        case ORDO_REQ_CANCEL_ORDER:
            in.has_data = true;
            in.data.present = ORDO_F_REASON;
            in.data.reason = ORDO_STR("customer changed their mind");
            break;
        case ORDO_REQ_GET_ORDER: in.as_of_version = 2; break;
        case ORDO_REQ_GET_HISTORY:
            in.from_version = 2;
            in.limit = 10;
            break;
        case ORDO_REQ_READ_ALL:
            in.from_position = 99;
            in.limit = 500;
            break;
        default: break;
        }
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_request_pack(&s_pk, &in), 0);
        int rc = s_decode();
        CU_ASSERT_EQUAL(rc, 0);
        if (rc != 0) {
            fprintf(stderr, "type %d: %s (%s)\n", t, s_err.message, s_err.field);
            continue;
        }
        CU_ASSERT_EQUAL(s_req.type, in.type);
        CU_ASSERT_EQUAL(s_req.request_id.len, 4);
        if (ordo_request_is_command(in.type)) {
            CU_ASSERT_EQUAL(s_req.expected_version, in.expected_version);
            CU_ASSERT_EQUAL(s_req.meta.count, 2);
            CU_ASSERT_TRUE(s_req.meta.entries[1].is_int);
            CU_ASSERT_EQUAL(s_req.meta.entries[1].ival, -5);
            CU_ASSERT_EQUAL(s_req.data.present, in.data.present);
        }
        if (in.type == ORDO_REQ_CREATE_ORDER) {
            CU_ASSERT_EQUAL(s_req.data.restaurant_id, INT64_MAX);
            CU_ASSERT_EQUAL(s_req.data.items[0].price_cents, 100000000);
            CU_ASSERT_EQUAL(s_req.data.delivery_address.len, in.data.delivery_address.len);
        }
        if (in.type == ORDO_REQ_START_PREPARING)
            CU_ASSERT_EQUAL(s_req.data.estimated_minutes, 1440);
        if (in.type == ORDO_REQ_CANCEL_ORDER)
            CU_ASSERT_EQUAL(memcmp(s_req.data.reason.ptr, "customer", 8), 0);
        if (in.type == ORDO_REQ_GET_ORDER)
            CU_ASSERT_EQUAL(s_req.as_of_version, 2);
        if (in.type == ORDO_REQ_GET_HISTORY) {
            CU_ASSERT_EQUAL(s_req.from_version, 2);
            CU_ASSERT_EQUAL(s_req.limit, 10);
        }
        if (in.type == ORDO_REQ_READ_ALL) {
            CU_ASSERT_EQUAL(s_req.from_position, 99);
            CU_ASSERT_EQUAL(s_req.limit, 500);
        }
    }
}

static void test_request_not_msgpack(void)
{
    static const uint8_t c1[] = {0xc1};
    CU_ASSERT_EQUAL(ordo_request_decode(c1, 1, &s_req, &s_err), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    CU_ASSERT_EQUAL(ordo_request_decode("", 0, &s_req, &s_err), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    /* A map header claiming 2^32-1 pairs: refused without allocating. */
    static const uint8_t hostile[] = {0xdf, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(ordo_request_decode(hostile, sizeof hostile, &s_req, &s_err), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    static const uint8_t hostile_arr[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(ordo_request_decode(hostile_arr, sizeof hostile_arr, &s_req, &s_err), -1);
    /* A str claiming 4 GiB. */
    static const uint8_t hostile_str[] = {0x81, 0xa4, 't',  'y',  'p', 'e',
                                          0xdb, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(ordo_request_decode(hostile_str, sizeof hostile_str, &s_req, &s_err), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
}

static void test_request_not_a_map(void)
{
    s_reset();
    msgpack_pack_array(&s_pk, 1);
    s_key("Ping");
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    CU_ASSERT_STRING_EQUAL(s_err.field, "");
}

static void test_request_trailing_bytes(void)
{
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    s_key("Ping");
    CU_ASSERT_EQUAL(s_decode(), 0);
    msgpack_pack_nil(&s_pk);
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    /* Decoding errors come before unknown_type. */
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    s_key("NoSuchThing");
    msgpack_pack_nil(&s_pk);
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
}

static void test_request_bad_utf8(void)
{
    static const char *bad[] = {"\xff", "\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                "abc\xe2\x82"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_reset();
        msgpack_pack_map(&s_pk, 2);
        s_key("type");
        s_key("Ping");
        s_key("unknown");
        s_key(bad[i]);
        CU_ASSERT_EQUAL(s_decode(), -1);
        CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    }
    /* Valid multi-byte UTF-8 passes. */
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("note");
    s_key("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x8d\x95");
    CU_ASSERT_EQUAL(s_decode(), 0);
}

static void s_pack_nested(int levels)
{
    /* The body map is level 1; each "x" adds one more map. */
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("x");
    for (int i = 2; i < levels; i++) {
        msgpack_pack_map(&s_pk, 1);
        s_key("x");
    }
    msgpack_pack_map(&s_pk, 0);
}

static void test_request_nesting(void)
{
    s_pack_nested(16);
    CU_ASSERT_EQUAL(s_decode(), 0);
    s_pack_nested(17);
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    s_pack_nested(1000);
    CU_ASSERT_EQUAL(s_decode(), -1);
}

static void test_request_too_large(void)
{
    size_t big = ORDO_BODY_MAX + 1;
    char *pad = malloc(big);
    CU_ASSERT_PTR_NOT_NULL_FATAL(pad);
    memset(pad, 'a', big);
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("pad");
    msgpack_pack_str_with_body(&s_pk, pad, big - 64);
    CU_ASSERT_EQUAL(s_decode(), 0); /* just under 1 MiB */
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("pad");
    msgpack_pack_str_with_body(&s_pk, pad, big);
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_BAD_REQUEST);
    CU_ASSERT_PTR_NOT_NULL(strstr(s_err.message, "1048576"));
    free(pad);
}

static void test_request_type_rules(void)
{
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("order_id");
    s_key("a");
    ASSERT_BAD("type");
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    msgpack_pack_int64(&s_pk, 3);
    ASSERT_BAD("type");
    static const char *unknown[] = {"", "ping", "DeleteOrder"};
    for (int i = 0; i < 3; i++) {
        s_reset();
        msgpack_pack_map(&s_pk, 2);
        s_key("type");
        s_key(unknown[i]);
        s_key("order_id"); /* a field fault too: type decides first */
        msgpack_pack_int64(&s_pk, 1);
        CU_ASSERT_EQUAL(s_decode(), -1);
        CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_UNKNOWN_TYPE);
    }
}

static void test_request_id_echo(void)
{
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("request_id");
    s_key("abc");
    s_key("type");
    s_key("GetOrder");
    s_key("order_id");
    msgpack_pack_int64(&s_pk, 5);
    ASSERT_BAD("order_id");
    CU_ASSERT_EQUAL(s_req.request_id.len, 3); /* still there to echo */
    char longid[130];
    memset(longid, 'x', 129);
    longid[129] = '\0';
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("request_id");
    s_key(longid);
    ASSERT_BAD("request_id");
    CU_ASSERT_EQUAL(s_req.request_id.len, 0);
}

/* CreateOrder with one field of the data replaced by a bad value. */
static void s_pack_create_with(const char *field, int kind)
{
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("CreateOrder");
    s_key("order_id");
    s_key("o1");
    s_key("data");
    msgpack_pack_map(&s_pk, 4);
    s_key("user_id");
    if (!strcmp(field, "user_id"))
        s_key("42");
    else
        msgpack_pack_int64(&s_pk, 42);
    s_key("restaurant_id");
    msgpack_pack_int64(&s_pk, 7);
    s_key("delivery_address");
    s_key("here");
    s_key("items");
    if (!strcmp(field, "items")) {
        msgpack_pack_map(&s_pk, 0);
        return;
    }
    msgpack_pack_array(&s_pk, 4);
    for (int i = 0; i < 4; i++) {
        if (i == 3 && !strcmp(field, "item")) {
            msgpack_pack_int64(&s_pk, 1);
            continue;
        }
        bool bad_qty = i == 3 && !strcmp(field, "qty");
        bool no_name = i == 2 && !strcmp(field, "name");
        msgpack_pack_map(&s_pk, (no_name ? 3 : 4) + (i == 1 ? 1 : 0));
        s_key("sku");
        s_key("s");
        if (!no_name) {
            s_key("name");
            s_key("n");
        }
        s_key("qty");
        if (bad_qty && kind == 0)
            s_key("2");
        else if (bad_qty)
            msgpack_pack_int64(&s_pk, 1001);
        else
            msgpack_pack_int64(&s_pk, 1);
        s_key("price_cents");
        msgpack_pack_int64(&s_pk, 100);
        if (i == 1) { /* unknown keys inside items are ignored */
            s_key("colour");
            msgpack_pack_array(&s_pk, 0);
        }
    }
}

static void test_request_field_paths(void)
{
    s_pack_create_with("none", 0);
    CU_ASSERT_EQUAL(s_decode(), 0);
    s_pack_create_with("user_id", 0);
    ASSERT_BAD("data.user_id");
    s_pack_create_with("items", 0);
    ASSERT_BAD("data.items");
    s_pack_create_with("item", 0);
    ASSERT_BAD("data.items.3");
    s_pack_create_with("qty", 0);
    ASSERT_BAD("data.items.3.qty");
    s_pack_create_with("qty", 1);
    ASSERT_BAD("data.items.3.qty");
    s_pack_create_with("name", 0);
    ASSERT_BAD("data.items.2.name");
}

static void test_request_data_and_meta_shapes(void)
{
    /* data missing for CreateOrder, data not a map */
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("CreateOrder");
    s_key("order_id");
    s_key("o1");
    ASSERT_BAD("data");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("data");
    msgpack_pack_array(&s_pk, 0);
    ASSERT_BAD("data");
    /* CancelOrder without reason */
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("CancelOrder");
    s_key("order_id");
    s_key("o1");
    s_key("data");
    msgpack_pack_map(&s_pk, 0);
    ASSERT_BAD("data.reason");
    /* meta value nil, meta not a map, meta key not a string, 17 keys */
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 1);
    s_key("actor");
    msgpack_pack_nil(&s_pk);
    ASSERT_BAD("meta.actor");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    s_key("actor");
    ASSERT_BAD("meta");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 1);
    msgpack_pack_int64(&s_pk, 1);
    s_key("x");
    ASSERT_BAD("meta");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 17);
    for (int i = 0; i < 17; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        s_key(k);
        msgpack_pack_int64(&s_pk, i);
    }
    ASSERT_BAD("meta");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 2);
    s_key("actor");
    s_key("a");
    s_key("actor");
    s_key("b");
    ASSERT_BAD("meta");
    /* expected_version of the wrong type, and below -1 */
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("expected_version");
    s_key("1");
    ASSERT_BAD("expected_version");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("expected_version");
    msgpack_pack_int64(&s_pk, -2);
    ASSERT_BAD("expected_version");
    /* nil means absent */
    s_reset();
    msgpack_pack_map(&s_pk, 4);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("expected_version");
    msgpack_pack_nil(&s_pk);
    s_key("meta");
    msgpack_pack_nil(&s_pk);
    CU_ASSERT_EQUAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.expected_version, -1);
}

static void test_request_query_fields(void)
{
    s_reset();
    msgpack_pack_map(&s_pk, 4);
    s_key("type");
    s_key("GetOrder");
    s_key("order_id");
    s_key("o1");
    s_key("as_of_version");
    msgpack_pack_int64(&s_pk, 1);
    s_key("as_of_time_us");
    msgpack_pack_int64(&s_pk, 1);
    ASSERT_BAD("as_of_time_us");
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("GetOrder");
    s_key("order_id");
    s_key("o1");
    s_key("as_of_version");
    msgpack_pack_int64(&s_pk, 0);
    ASSERT_BAD("as_of_version");
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("ReadAll");
    s_key("limit");
    msgpack_pack_int64(&s_pk, 0);
    ASSERT_BAD("limit");
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("ReadAll");
    s_key("from_position");
    msgpack_pack_int64(&s_pk, 0);
    ASSERT_BAD("from_position");
    /* defaults and clamping */
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    s_key("ReadAll");
    CU_ASSERT_EQUAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.limit, 1000);
    CU_ASSERT_EQUAL(s_req.from_position, 1);
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("ReadAll");
    s_key("limit");
    msgpack_pack_int64(&s_pk, 1000000);
    CU_ASSERT_EQUAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.limit, 10000);
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("GetHistory");
    s_key("order_id");
    s_key("o1");
    s_key("limit");
    msgpack_pack_int64(&s_pk, 5000);
    CU_ASSERT_EQUAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.limit, 1000);
    CU_ASSERT_EQUAL(s_req.from_version, 1);
    /* GetOrder needs an order_id */
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    s_key("GetOrder");
    ASSERT_BAD("order_id");
}

/* Error text that quotes the client stays valid UTF-8 when it is cut. */
static void test_request_error_text_is_utf8(void)
{
    char type[100] = "a";
    for (int i = 0; i < 40; i++)
        strcat(type, "\xc3\xa9"); /* é */
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("type");
    s_key(type);
    CU_ASSERT_EQUAL(s_decode(), -1);
    CU_ASSERT_EQUAL(s_err.code, ORDO_CODE_UNKNOWN_TYPE);
    CU_ASSERT_TRUE(ordo_utf8_valid((const uint8_t *)s_err.message, strlen(s_err.message)));
    char key[70] = "a";
    for (int i = 0; i < 32; i++)
        strcat(key, "\xc3\xa9"); /* 65 bytes */
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ConfirmOrder");
    s_key("order_id");
    s_key("o1");
    s_key("meta");
    msgpack_pack_map(&s_pk, 1);
    s_key(key);
    msgpack_pack_nil(&s_pk);
    ASSERT_BAD("meta");
    CU_ASSERT_TRUE(ordo_utf8_valid((const uint8_t *)s_err.message, strlen(s_err.message)));
}

/* Integers wider than int64 in queries: limits clamp, positions lie past
 * the end. Repeated keys replace earlier ones whole. */
static void test_request_wide_ints_and_repeats(void)
{
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ReadAll");
    s_key("limit");
    msgpack_pack_uint64(&s_pk, UINT64_MAX);
    s_key("from_position");
    msgpack_pack_uint64(&s_pk, UINT64_MAX);
    CU_ASSERT_EQUAL_FATAL(s_decode(), 0);
    CU_ASSERT_EQUAL(s_req.limit, 10000);
    CU_ASSERT_EQUAL(s_req.from_position, INT64_MAX);
    s_reset();
    msgpack_pack_map(&s_pk, 4);
    s_key("type");
    s_key("CancelOrder");
    s_key("order_id");
    s_key("o1");
    s_key("data");
    msgpack_pack_map(&s_pk, 1);
    s_key("reason");
    s_key("x");
    s_key("data");
    msgpack_pack_map(&s_pk, 0);
    ASSERT_BAD("data.reason");
}

/* ---- events ------------------------------------------------------------ */

static bool s_str_is(ordo_str_t s, const char *lit)
{
    return s.len == strlen(lit) && memcmp(s.ptr, lit, s.len) == 0;
}

static void s_make_event(ordo_event_t *ev, ordo_event_type_t type)
{
    memset(ev, 0, sizeof *ev);
    ev->position = 123456789;
    ev->order_id = ORDO_STR("ord-2026-11-26-000001");
    ev->version = (uint32_t)type;
    ev->type = type;
    ev->timestamp_us = 1764164400123456;
    ordo_event_id(ev->order_id.ptr, ev->order_id.len, ev->version, ev->timestamp_us, ev->event_id);
    ev->schema = ordo_event_schema_current(type);
    ev->meta.count = 3;
    ev->meta.entries[0] =
        (ordo_meta_entry_t){.key = ORDO_STR("actor"), .sval = ORDO_STR("user:42")};
    ev->meta.entries[1] = (ordo_meta_entry_t){.key = ORDO_STR("command"), .sval = ORDO_STR("X")};
    ev->meta.entries[2] =
        (ordo_meta_entry_t){.key = ORDO_STR("attempt"), .is_int = true, .ival = 2};
    ordo_data_t *d = &ev->data;
    switch (type) {
    case ORDO_EVT_ORDER_CREATED:
        d->present = ORDO_F_USER_ID | ORDO_F_RESTAURANT_ID | ORDO_F_ITEMS | ORDO_F_TOTAL_CENTS |
                     ORDO_F_DELIVERY_ADDRESS | ORDO_F_CURRENCY;
        d->currency = ORDO_STR("EUR");
        d->user_id = 42;
        d->restaurant_id = 7;
        d->n_items = 2;
        d->items[0] = (ordo_item_t){ORDO_STR("pz-1"), ORDO_STR("Margherita"), 2, 1250};
        d->items[1] = (ordo_item_t){ORDO_STR("dr-9"), ORDO_STR("Lemonade"), 1, 300};
        d->total_cents = 2800;
        d->delivery_address = ORDO_STR("12 Baker Street");
        break;
    case ORDO_EVT_ORDER_CONFIRMED:
        d->present = ORDO_F_RESTAURANT_ID;
        d->restaurant_id = 7;
        break;
    case ORDO_EVT_ORDER_PREPARING:
        d->present = ORDO_F_ESTIMATED_MINUTES;
        d->estimated_minutes = 25;
        break;
    case ORDO_EVT_ORDER_OUT_FOR_DELIVERY:
        d->present = ORDO_F_COURIER_ID;
        d->courier_id = 99;
        break;
    case ORDO_EVT_ORDER_CANCELLED:
        d->present = ORDO_F_REASON | ORDO_F_PREVIOUS_STATUS;
        d->reason = ORDO_STR("out of dough");
        d->previous_status = ORDO_STATUS_PREPARING;
        break;
    default: break;
    }
}

static void s_assert_same_event(const ordo_event_t *a, const ordo_event_t *b)
{
    CU_ASSERT_EQUAL(a->position, b->position);
    CU_ASSERT_EQUAL(memcmp(a->event_id, b->event_id, 16), 0);
    CU_ASSERT_EQUAL(a->order_id.len, b->order_id.len);
    CU_ASSERT_EQUAL(memcmp(a->order_id.ptr, b->order_id.ptr, a->order_id.len), 0);
    CU_ASSERT_EQUAL(a->version, b->version);
    CU_ASSERT_EQUAL(a->type, b->type);
    CU_ASSERT_EQUAL(a->timestamp_us, b->timestamp_us);
    CU_ASSERT_EQUAL(a->schema, b->schema);
    CU_ASSERT_EQUAL(a->data.present, b->data.present);
    CU_ASSERT_EQUAL(a->data.user_id, b->data.user_id);
    CU_ASSERT_EQUAL(a->data.restaurant_id, b->data.restaurant_id);
    CU_ASSERT_EQUAL(a->data.total_cents, b->data.total_cents);
    CU_ASSERT_EQUAL(a->data.n_items, b->data.n_items);
    for (uint32_t i = 0; i < a->data.n_items && i < b->data.n_items; i++) {
        CU_ASSERT_EQUAL(a->data.items[i].qty, b->data.items[i].qty);
        CU_ASSERT_EQUAL(a->data.items[i].price_cents, b->data.items[i].price_cents);
        CU_ASSERT_EQUAL(a->data.items[i].name.len, b->data.items[i].name.len);
    }
    CU_ASSERT_EQUAL(a->data.estimated_minutes, b->data.estimated_minutes);
    CU_ASSERT_EQUAL(a->data.courier_id, b->data.courier_id);
    CU_ASSERT_EQUAL(a->data.reason.len, b->data.reason.len);
    CU_ASSERT_EQUAL(a->data.previous_status, b->data.previous_status);
    /* The wire form sorts meta by key (PROTOCOL.md 1.1's canonical form):
     * the same entries, in any order. */
    CU_ASSERT_EQUAL(a->meta.count, b->meta.count);
    for (uint32_t i = 0; i < a->meta.count; i++) {
        const ordo_meta_entry_t *x = &a->meta.entries[i], *y = NULL;
        for (uint32_t j = 0; j < b->meta.count && !y; j++)
            if (b->meta.entries[j].key.len == x->key.len &&
                !memcmp(b->meta.entries[j].key.ptr, x->key.ptr, x->key.len))
                y = &b->meta.entries[j];
        CU_ASSERT_PTR_NOT_NULL_FATAL(y);
        CU_ASSERT_EQUAL(x->is_int, y->is_int);
        if (x->is_int) {
            CU_ASSERT_EQUAL(x->ival, y->ival);
        } else {
            CU_ASSERT(x->sval.len == y->sval.len && !memcmp(x->sval.ptr, y->sval.ptr, x->sval.len));
        }
    }
    CU_ASSERT_EQUAL(a->has_hash, b->has_hash);
    if (a->has_hash && b->has_hash) {
        CU_ASSERT_EQUAL(memcmp(a->hash, b->hash, 32), 0);
    }
}

/* Decodes a log record both ways, whole and for apply: they must agree on
 * whether it decodes and, if it does, on all that apply reads. Returns the
 * whole decode's result into *out. */
static int s_decode_record_both(const void *buf, size_t len, uint64_t pos, ordo_event_t *out)
{
    static ordo_event_t lean;
    int rc = ordo_event_decode_record(buf, len, pos, out);
    int rc2 = ordo_event_decode_record_for_apply(buf, len, pos, &lean);
    CU_ASSERT_EQUAL(rc, rc2);
    if (rc == 0 && rc2 == 0) {
        CU_ASSERT_EQUAL(lean.type, out->type);
        CU_ASSERT_EQUAL(lean.version, out->version);
        CU_ASSERT_EQUAL(lean.position, out->position);
        CU_ASSERT_EQUAL(lean.timestamp_us, out->timestamp_us);
        CU_ASSERT_EQUAL(lean.schema, out->schema);
        CU_ASSERT_TRUE(lean.order_id.len == out->order_id.len &&
                       memcmp(lean.order_id.ptr, out->order_id.ptr, out->order_id.len) == 0);
        CU_ASSERT_EQUAL(lean.data.present, out->data.present);
        CU_ASSERT_EQUAL(lean.data.n_items, out->data.n_items);
        CU_ASSERT_EQUAL(lean.data.total_cents, out->data.total_cents);
        /* the request id, the one meta entry apply reads */
        ordo_str_t a = {0}, b = {0};
        for (uint32_t i = 0; i < out->meta.count; i++)
            if (out->meta.entries[i].key.len == 10 &&
                memcmp(out->meta.entries[i].key.ptr, "request_id", 10) == 0)
                a = out->meta.entries[i].sval;
        for (uint32_t i = 0; i < lean.meta.count; i++)
            if (lean.meta.entries[i].key.len == 10 &&
                memcmp(lean.meta.entries[i].key.ptr, "request_id", 10) == 0)
                b = lean.meta.entries[i].sval;
        CU_ASSERT_TRUE(a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0));
    }
    return rc;
}

static void test_event_round_trips(void)
{
    static ordo_event_t in, out;
    for (int t = ORDO_EVT_ORDER_CREATED; t < ORDO_EVT_COUNT_; t++) {
        s_make_event(&in, (ordo_event_type_t)t);
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack(&s_pk, &in), 0);
        CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, s_buf.size, &out), 0);
        s_assert_same_event(&in, &out);
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
        CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), 0);
        s_assert_same_event(&in, &out);
    }
}

/* The engine's split path: a shard packs the record (timestamp unknown)
 * and the wire form's two parts; the writer stamps the record and joins
 * the parts. Both must give exactly what the one-piece functions give. */
static void test_event_stamped_and_joined(void)
{
    static ordo_event_t in, out;
    for (int t = ORDO_EVT_ORDER_CREATED; t < ORDO_EVT_COUNT_; t++) {
        s_make_event(&in, (ordo_event_type_t)t);
        int64_t ts = in.timestamp_us;
        msgpack_sbuffer whole, rec, mid, rest, joined;
        msgpack_packer pk;
        msgpack_sbuffer *bufs[] = {&whole, &rec, &mid, &rest, &joined};
        for (int i = 0; i < 5; i++)
            msgpack_sbuffer_init(bufs[i]);
        msgpack_packer_init(&pk, &whole, msgpack_sbuffer_write);
        ordo_event_pack(&pk, &in);
        in.timestamp_us = 0;
        msgpack_packer_init(&pk, &rec, msgpack_sbuffer_write);
        ordo_event_pack_record(&pk, &in);
        msgpack_packer_init(&pk, &mid, msgpack_sbuffer_write);
        ordo_event_pack_mid(&pk, &in);
        msgpack_packer_init(&pk, &rest, msgpack_sbuffer_write);
        ordo_event_pack_rest(&pk, &in);
        CU_ASSERT_EQUAL(ordo_event_record_stamp(rec.data, rec.size, ts), 0);
        CU_ASSERT_EQUAL(s_decode_record_both(rec.data, rec.size, in.position, &out), 0);
        in.timestamp_us = ts;
        s_assert_same_event(&in, &out);
        msgpack_packer_init(&pk, &joined, msgpack_sbuffer_write);
        ordo_event_pack_joined(&pk, in.position, in.event_id, ts, mid.data, mid.size, rest.data,
                               rest.size);
        CU_ASSERT_EQUAL(joined.size, whole.size);
        CU_ASSERT(joined.size == whole.size && memcmp(joined.data, whole.data, whole.size) == 0);
        /* Not a record: refused, nothing written. */
        CU_ASSERT_EQUAL(ordo_event_record_stamp(whole.data, whole.size, ts), -1);
        CU_ASSERT_EQUAL(ordo_event_record_stamp(rec.data, 5, ts), -1);
        for (int i = 0; i < 5; i++)
            msgpack_sbuffer_destroy(bufs[i]);
    }
}

/* Keys of the map at the cursor are in strictly ascending bytewise order;
 * the values are skipped. */
static bool s_keys_sorted(ordo_mp_t *r)
{
    uint32_t n;
    const char *prev = NULL, *k;
    uint32_t prev_len = 0, kl;
    if (!ordo_mp_read_map(r, &n))
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!ordo_mp_read_str(r, &k, &kl))
            return false;
        if (prev) {
            int c = memcmp(prev, k, prev_len < kl ? prev_len : kl);
            if (c > 0 || (c == 0 && prev_len >= kl))
                return false;
        }
        prev = k;
        prev_len = kl;
        if (!ordo_mp_skip(r))
            return false;
    }
    return true;
}

/* PROTOCOL.md 1.1: the wire form is canonical (data and meta keys in
 * bytewise order), an event with a hash carries it as the 10th key and
 * its log record as a 9th element; the writer's way (9 keys joined, then
 * the header patched and `hash` added) gives exactly ordo_event_pack's
 * bytes; a record and an event without a hash stay as 1.0 had them. */
static void test_event_hash_fields(void)
{
    static ordo_event_t in, out;
    for (int t = ORDO_EVT_ORDER_CREATED; t < ORDO_EVT_COUNT_; t++) {
        s_make_event(&in, (ordo_event_type_t)t);
        /* canonical: data's and meta's keys sorted */
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack(&s_pk, &in), 0);
        ordo_mp_t r;
        ordo_mp_init(&r, s_buf.data, s_buf.size);
        uint32_t n;
        CU_ASSERT_FATAL(ordo_mp_read_map(&r, &n) && n == 9);
        for (uint32_t i = 0; i < n; i++) {
            const char *k;
            uint32_t kl;
            CU_ASSERT_FATAL(ordo_mp_read_str(&r, &k, &kl));
            if ((kl == 4 && !memcmp(k, "data", 4)) || (kl == 4 && !memcmp(k, "meta", 4))) {
                CU_ASSERT_TRUE(s_keys_sorted(&r));
            } else {
                CU_ASSERT_FATAL(ordo_mp_skip(&r));
            }
        }
        /* with a hash */
        in.has_hash = true;
        for (int i = 0; i < 32; i++)
            in.hash[i] = (uint8_t)(i * 9 + t);
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack(&s_pk, &in), 0);
        CU_ASSERT_EQUAL((uint8_t)s_buf.data[0], 0x8a); /* map of 10 */
        char hex[65];
        ordo_hex_encode(in.hash, 32, hex);
        CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, hex, 64));
        CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, s_buf.size, &out), 0);
        s_assert_same_event(&in, &out);
        /* the writer's way */
        msgpack_sbuffer mid, rest, joined;
        msgpack_packer pk;
        msgpack_sbuffer_init(&mid);
        msgpack_sbuffer_init(&rest);
        msgpack_sbuffer_init(&joined);
        msgpack_packer_init(&pk, &mid, msgpack_sbuffer_write);
        ordo_event_pack_mid(&pk, &in);
        msgpack_packer_init(&pk, &rest, msgpack_sbuffer_write);
        ordo_event_pack_rest(&pk, &in);
        msgpack_packer_init(&pk, &joined, msgpack_sbuffer_write);
        ordo_event_pack_joined(&pk, in.position, in.event_id, in.timestamp_us, mid.data, mid.size,
                               rest.data, rest.size);
        joined.data[0] = (char)0x8a;
        ordo_event_pack_hash(&pk, in.hash);
        CU_ASSERT(joined.size == s_buf.size && !memcmp(joined.data, s_buf.data, s_buf.size));
        msgpack_sbuffer_destroy(&mid);
        msgpack_sbuffer_destroy(&rest);
        msgpack_sbuffer_destroy(&joined);
        /* the record: 9 elements, the hash stamped in place */
        uint8_t zero[32] = {0};
        uint8_t want[32];
        memcpy(want, in.hash, 32);
        memcpy(in.hash, zero, 32);
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
        CU_ASSERT_EQUAL((uint8_t)s_buf.data[0], 0x99);
        CU_ASSERT_EQUAL(ordo_event_record_stamp_hash(s_buf.data, s_buf.size, want), 0);
        memcpy(in.hash, want, 32);
        CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), 0);
        s_assert_same_event(&in, &out);
        static ordo_event_t lean;
        CU_ASSERT_EQUAL(ordo_event_decode_record_for_apply(s_buf.data, s_buf.size, 1, &lean), 0);
        CU_ASSERT_TRUE(lean.has_hash && !memcmp(lean.hash, want, 32));
        /* a 1.0 record has no hash, and refuses a hash stamp */
        in.has_hash = false;
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
        CU_ASSERT_EQUAL((uint8_t)s_buf.data[0], 0x98);
        CU_ASSERT_EQUAL(ordo_event_record_stamp_hash(s_buf.data, s_buf.size, want), -1);
        CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), 0);
        CU_ASSERT_FALSE(out.has_hash);
    }
    /* A wire hash that is not 64 lower-case hex digits is refused. */
    s_make_event(&in, ORDO_EVT_ORDER_READY);
    in.has_hash = true;
    memset(in.hash, 0xab, 32);
    s_reset();
    ordo_event_pack(&s_pk, &in);
    char *h = memmem(s_buf.data, s_buf.size, "abababab", 8);
    CU_ASSERT_PTR_NOT_NULL_FATAL(h);
    h[3] = 'B';
    CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, s_buf.size, &out), -1);
}

/* PROTOCOL.md 1.1: an OrderCreated stored in schema 1 (before currency)
 * reads as schema 2 in "USD", on the log's decoders, whole and for apply;
 * a schema this engine does not know (0, or newer) is refused. */
static void test_record_upcast(void)
{
    static ordo_event_t in, out;
    s_make_event(&in, ORDO_EVT_ORDER_CREATED);
    in.schema = 1;
    in.data.present &= ~(uint32_t)ORDO_F_CURRENCY; /* as 0.2 wrote it */
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
    CU_ASSERT_PTR_NULL(memmem(s_buf.data, s_buf.size, "USD", 3));
    CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), 0);
    CU_ASSERT_EQUAL(out.schema, 2);
    CU_ASSERT_TRUE((out.data.present & ORDO_F_CURRENCY) && s_str_is(out.data.currency, "USD"));
    /* and its wire form is schema 2 with the currency */
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack(&s_pk, &out), 0);
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, "currency", 8));
    for (uint32_t schema = 0; schema < 5; schema += 3) { /* 0 and 3 */
        in.schema = schema;
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
        CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), -1);
    }
    /* Other types are still at schema 1; 2 is from the future for them. */
    s_make_event(&in, ORDO_EVT_ORDER_READY);
    CU_ASSERT_EQUAL(in.schema, 1);
    in.schema = 2;
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
    CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), -1);
}

/* The peek's request_id is the one an error reply may echo: a string of
 * 1 to 128 bytes of valid UTF-8, the last one counting; else none. */
static void test_request_peek_request_id(void)
{
    ordo_request_peek_t peek;
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("request_id");
    s_key("first");
    s_key("type");
    s_key("Ping");
    s_key("request_id");
    s_key("r-9");
    CU_ASSERT_TRUE_FATAL(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT(peek.request_id.len == 3 && memcmp(peek.request_id.ptr, "r-9", 3) == 0);
    static const char *bad[] = {"", "\xff\xfe", NULL};
    char long_id[130];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    bad[2] = long_id;
    for (size_t i = 0; i < 3; i++) {
        s_reset();
        msgpack_pack_map(&s_pk, 1);
        s_key("request_id");
        s_key(bad[i]);
        CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
        CU_ASSERT_EQUAL(peek.request_id.len, 0);
    }
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("request_id");
    msgpack_pack_int64(&s_pk, 5);
    CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT_EQUAL(peek.request_id.len, 0);
}

static bool s_peek_id(const void *buf, size_t len, ordo_str_t *id)
{
    ordo_request_peek_t p;
    bool ok = ordo_request_peek(buf, len, &p);
    *id = p.order_id;
    return ok && p.has_order_id;
}

/* The front end's peek finds order_id and type only where the decoder
 * would, and never reads past the input. */
static void test_request_peek_order_id(void)
{
    ordo_str_t id;
    ordo_request_peek_t peek;
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("GetOrder");
    s_key("meta");
    msgpack_pack_map(&s_pk, 1);
    s_key("order_id");
    s_key("not this one");
    s_key("order_id");
    s_key("o-7");
    CU_ASSERT_TRUE(s_peek_id(s_buf.data, s_buf.size, &id));
    CU_ASSERT(id.len == 3 && memcmp(id.ptr, "o-7", 3) == 0);
    CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT_EQUAL(peek.type, ORDO_REQ_GET_ORDER);
    for (size_t cut = 0; cut < s_buf.size; cut++)
        CU_ASSERT_FALSE(s_peek_id(s_buf.data, cut, &id));
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("order_id");
    msgpack_pack_int64(&s_pk, 7); /* not a string: no route, the decoder says why */
    CU_ASSERT_FALSE(s_peek_id(s_buf.data, s_buf.size, &id));
    s_reset();
    msgpack_pack_array(&s_pk, 0);
    CU_ASSERT_FALSE(s_peek_id(s_buf.data, s_buf.size, &id));
    /* type: the last one counts; a non-string clears it */
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("Ping");
    s_key("type");
    s_key("ReadAll");
    CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT_EQUAL(peek.type, ORDO_REQ_READ_ALL);
    CU_ASSERT_FALSE(peek.has_order_id);
    s_reset();
    msgpack_pack_map(&s_pk, 2);
    s_key("type");
    s_key("ReadAll");
    s_key("type");
    msgpack_pack_int64(&s_pk, 1);
    CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT_EQUAL(peek.type, ORDO_REQ_NONE);
    /* A query without an order ignores a non-string order_id, so the peek
     * must still see its type and limit (ReadAll pages are bounded by them). */
    s_reset();
    msgpack_pack_map(&s_pk, 3);
    s_key("type");
    s_key("ReadAll");
    s_key("order_id");
    msgpack_pack_int64(&s_pk, 0);
    s_key("limit");
    msgpack_pack_int64(&s_pk, 10000);
    CU_ASSERT_TRUE(ordo_request_peek(s_buf.data, s_buf.size, &peek));
    CU_ASSERT_EQUAL(peek.type, ORDO_REQ_READ_ALL);
    CU_ASSERT_FALSE(peek.has_order_id);
    CU_ASSERT_EQUAL(peek.limit, 10000);
    /* Repeated keys: the last counts and nil clears, as in the decoder, so
     * a request never reaches a shard that does not own its order. */
    static ordo_request_t req;
    ordo_error_t err;
    const char *second[] = {"b", NULL};
    for (int k = 0; k < 2; k++) {
        s_reset();
        msgpack_pack_map(&s_pk, 3);
        s_key("type");
        s_key("GetOrder");
        s_key("order_id");
        s_key("a");
        s_key("order_id");
        if (second[k])
            s_key(second[k]);
        else
            msgpack_pack_nil(&s_pk);
        bool routed = s_peek_id(s_buf.data, s_buf.size, &id);
        int decoded = ordo_request_decode(s_buf.data, s_buf.size, &req, &err);
        if (second[k]) {
            CU_ASSERT_TRUE(routed);
            CU_ASSERT(id.len == 1 && id.ptr[0] == 'b');
            CU_ASSERT(decoded != 0 || (req.order_id.len == 1 && req.order_id.ptr[0] == 'b'));
        } else {
            CU_ASSERT_FALSE(routed);
            CU_ASSERT(decoded != 0 || req.order_id.len == 0);
        }
    }
}

/* Every truncation of an encoded event fails cleanly. */
static void test_event_truncated_everywhere(void)
{
    static ordo_event_t in, out;
    s_make_event(&in, ORDO_EVT_ORDER_CREATED);
    s_reset();
    ordo_event_pack(&s_pk, &in);
    for (size_t cut = 0; cut < s_buf.size; cut++)
        CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, cut, &out), -1);
    s_reset();
    ordo_event_pack_record(&s_pk, &in);
    for (size_t cut = 0; cut < s_buf.size; cut++)
        CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, cut, 1, &out), -1);
}

static void test_event_rejects_missing_and_bad_fields(void)
{
    static ordo_event_t out;
    s_reset();
    msgpack_pack_map(&s_pk, 1);
    s_key("position");
    msgpack_pack_int64(&s_pk, 1);
    CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, s_buf.size, &out), -1);
    /* Bad event_id text */
    ordo_event_t in;
    s_make_event(&in, ORDO_EVT_ORDER_READY);
    s_reset();
    ordo_event_pack(&s_pk, &in);
    char *p = memmem(s_buf.data, s_buf.size, "-", 1);
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    *p = 'x';
    CU_ASSERT_EQUAL(ordo_event_decode(s_buf.data, s_buf.size, &out), -1);
}

/* The wire event text is what PROTOCOL.md shows: check a few exact bytes. */
static void test_event_wire_shape(void)
{
    static ordo_event_t in;
    s_make_event(&in, ORDO_EVT_ORDER_CANCELLED);
    s_reset();
    ordo_event_pack(&s_pk, &in);
    CU_ASSERT_EQUAL((uint8_t)s_buf.data[0], 0x89); /* map of 9 */
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, "OrderCancelled", 14));
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, "previous_status", 15));
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, "Preparing", 9));
    char id[ORDO_UUID_TEXT_LEN];
    ordo_uuid_format(in.event_id, id);
    CU_ASSERT_EQUAL(id[14], '7');
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, id, sizeof id));
}


/* The log form keeps strings exactly, whether or not they look like UUIDs,
 * and rebuilds the meta decide() makes (client keys, command, request_id). */
static void test_record_strings_and_meta(void)
{
    static ordo_event_t in, out;
    static const char *lower = "0f8e7d6c-5b4a-4392-8170-aabbccddeeff";
    static const char *upper = "0F8E7D6C-5B4A-4392-8170-AABBCCDDEEFF";
    s_make_event(&in, ORDO_EVT_ORDER_CANCELLED);
    in.order_id = (ordo_str_t){lower, 36};
    in.position = 5;
    in.data.reason = (ordo_str_t){upper, 36};
    in.meta.count = 4;
    in.meta.entries[0] =
        (ordo_meta_entry_t){.key = ORDO_STR("correlation_id"), .sval = {lower, 36}};
    in.meta.entries[1] =
        (ordo_meta_entry_t){.key = ORDO_STR("n"), .is_int = true, .ival = INT64_MIN};
    in.meta.entries[2] =
        (ordo_meta_entry_t){.key = ORDO_STR("command"), .sval = ORDO_STR("CancelOrder")};
    in.meta.entries[3] = (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = {lower, 36}};
    ordo_event_id(in.order_id.ptr, in.order_id.len, in.version, in.timestamp_us, in.event_id);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
    /* Three UUIDs stored as 16 bytes each: far smaller than their text. */
    CU_ASSERT_PTR_NULL(memmem(s_buf.data, s_buf.size, lower, 36));
    CU_ASSERT_PTR_NULL(memmem(s_buf.data, s_buf.size, "CancelOrder", 11));
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, upper, 36));
    CU_ASSERT_EQUAL_FATAL(s_decode_record_both(s_buf.data, s_buf.size, 5, &out), 0);
    s_assert_same_event(&in, &out);
    CU_ASSERT_TRUE(s_str_is(out.order_id, lower));
    CU_ASSERT_TRUE(s_str_is(out.data.reason, upper));
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[0].sval, lower));
    CU_ASSERT_EQUAL(out.meta.entries[1].ival, INT64_MIN);
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[2].key, "command"));
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[2].sval, "CancelOrder"));
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[3].key, "request_id"));
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[3].sval, lower));
    CU_ASSERT_EQUAL(out.position, 5);

    /* Without a request id. */
    in.meta.count = 3;
    s_reset();
    ordo_event_pack_record(&s_pk, &in);
    CU_ASSERT_EQUAL_FATAL(s_decode_record_both(s_buf.data, s_buf.size, 5, &out), 0);
    CU_ASSERT_EQUAL(out.meta.count, 3);
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[2].sval, "CancelOrder"));

    /* A meta of another shape (command of another type) is kept as is. */
    in.meta.entries[2].sval = ORDO_STR("Deliver");
    s_reset();
    ordo_event_pack_record(&s_pk, &in);
    CU_ASSERT_EQUAL_FATAL(s_decode_record_both(s_buf.data, s_buf.size, 5, &out), 0);
    CU_ASSERT_EQUAL(out.meta.count, 3);
    CU_ASSERT_TRUE(s_str_is(out.meta.entries[2].sval, "Deliver"));
    in.meta.count = 0;
    s_reset();
    ordo_event_pack_record(&s_pk, &in);
    CU_ASSERT_EQUAL_FATAL(s_decode_record_both(s_buf.data, s_buf.size, 5, &out), 0);
    CU_ASSERT_EQUAL(out.meta.count, 0);
}

/* A record with a meta map too big for the struct, or a bad UUID ext. */
static void test_record_rejects_hostile(void)
{
    static ordo_event_t out;
    s_reset();
    msgpack_pack_array(&s_pk, 8);
    msgpack_pack_uint32(&s_pk, ORDO_EVT_ORDER_READY);
    msgpack_pack_ext(&s_pk, 15, 1); /* UUID ext of the wrong size */
    msgpack_pack_ext_body(&s_pk, "0123456789abcde", 15);
    msgpack_pack_uint32(&s_pk, 4);
    msgpack_pack_int64(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 1);
    msgpack_pack_array(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 0);
    msgpack_pack_nil(&s_pk);
    msgpack_pack_map(&s_pk, 0);
    CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, 1, &out), -1);
    s_reset();
    msgpack_pack_array(&s_pk, 8);
    msgpack_pack_uint32(&s_pk, ORDO_EVT_ORDER_READY);
    s_key("o");
    msgpack_pack_uint32(&s_pk, 4);
    msgpack_pack_int64(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 1);
    msgpack_pack_array(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 0);
    msgpack_pack_nil(&s_pk);
    msgpack_pack_map(&s_pk, 17); /* 17 + command = 18 would fit; 17 + 1 > 18 - 1 */
    for (int i = 0; i < 17; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        s_key(k);
        msgpack_pack_int64(&s_pk, i);
    }
    CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, 1, &out), 0);
    s_reset();
    msgpack_pack_array(&s_pk, 8);
    msgpack_pack_uint32(&s_pk, ORDO_EVT_ORDER_READY);
    s_key("o");
    msgpack_pack_uint32(&s_pk, 4);
    msgpack_pack_int64(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 1);
    msgpack_pack_array(&s_pk, 1);
    msgpack_pack_uint32(&s_pk, 0);
    msgpack_pack_nil(&s_pk);
    msgpack_pack_map(&s_pk, 18);
    for (int i = 0; i < 18; i++) {
        char k[8];
        snprintf(k, sizeof k, "k%d", i);
        s_key(k);
        msgpack_pack_int64(&s_pk, i);
    }
    CU_ASSERT_EQUAL(s_decode_record_both(s_buf.data, s_buf.size, 1, &out), -1);
}

/* More UUID strings than ordo_event_t.text can rebuild: the rest stay
 * text, and the record still round-trips exactly. */
static void test_record_many_uuids(void)
{
    static ordo_event_t in, out;
    static char ids[40][37];
    s_make_event(&in, ORDO_EVT_ORDER_CREATED);
    for (int i = 0; i < 40; i++)
        snprintf(ids[i], sizeof ids[i], "%08x-0000-4000-8000-%012x", i, i * 7);
    in.order_id = (ordo_str_t){ids[0], 36};
    in.data.n_items = 15;
    for (int i = 0; i < 15; i++)
        in.data.items[i] = (ordo_item_t){{ids[1 + 2 * i], 36}, {ids[2 + 2 * i], 36}, 1, 100};
    in.data.delivery_address = (ordo_str_t){ids[31], 36};
    in.meta.count = 6;
    for (int i = 0; i < 6; i++)
        in.meta.entries[i] =
            (ordo_meta_entry_t){.key = {ids[32 + i], 8}, .sval = {ids[32 + i], 36}};
    ordo_event_id(in.order_id.ptr, in.order_id.len, in.version, in.timestamp_us, in.event_id);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_event_pack_record(&s_pk, &in), 0);
    CU_ASSERT_EQUAL_FATAL(s_decode_record_both(s_buf.data, s_buf.size, in.position, &out), 0);
    s_assert_same_event(&in, &out);
    CU_ASSERT_TRUE(s_str_is(out.order_id, ids[0]));
    for (int i = 0; i < 15; i++) {
        CU_ASSERT_TRUE(s_str_is(out.data.items[i].sku, ids[1 + 2 * i]));
        CU_ASSERT_TRUE(s_str_is(out.data.items[i].name, ids[2 + 2 * i]));
    }
    CU_ASSERT_TRUE(s_str_is(out.data.delivery_address, ids[31]));
    for (int i = 0; i < 6; i++)
        CU_ASSERT_TRUE(s_str_is(out.meta.entries[i].sval, ids[32 + i]));
}

/* ---- order state ------------------------------------------------------- */

static void s_make_order(ordo_order_t *o)
{
    static ordo_event_t ev;
    memset(o, 0, sizeof *o);
    s_make_event(&ev, ORDO_EVT_ORDER_CREATED);
    ev.version = 1;
    ev.meta.count = 1;
    ev.meta.entries[0] =
        (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = ORDO_STR("req-a")};
    CU_ASSERT_EQUAL_FATAL(ordo_apply(o, &ev), 0);
    s_make_event(&ev, ORDO_EVT_ORDER_CONFIRMED);
    ev.position += 10;
    ev.version = 2;
    ev.meta.count = 0;
    CU_ASSERT_EQUAL_FATAL(ordo_apply(o, &ev), 0);
    s_make_event(&ev, ORDO_EVT_ORDER_PREPARING);
    ev.position += 20;
    ev.version = 3;
    ev.meta.count = 1;
    ev.meta.entries[0] =
        (ordo_meta_entry_t){.key = ORDO_STR("request_id"), .sval = ORDO_STR("req-c")};
    CU_ASSERT_EQUAL_FATAL(ordo_apply(o, &ev), 0);
    s_make_event(&ev, ORDO_EVT_ORDER_CANCELLED);
    ev.position += 30;
    ev.version = 4;
    ev.meta.count = 0;
    ev.timestamp_us += 1000;
    CU_ASSERT_EQUAL_FATAL(ordo_apply(o, &ev), 0);
}

static void s_assert_same_order(const ordo_order_t *a, const ordo_order_t *b)
{
    CU_ASSERT_STRING_EQUAL(a->currency, b->currency);
    CU_ASSERT_EQUAL(a->order_id_len, b->order_id_len);
    CU_ASSERT_EQUAL(memcmp(a->order_id, b->order_id, a->order_id_len), 0);
    CU_ASSERT_EQUAL(a->version, b->version);
    CU_ASSERT_EQUAL(a->status, b->status);
    CU_ASSERT_EQUAL(a->user_id, b->user_id);
    CU_ASSERT_EQUAL(a->restaurant_id, b->restaurant_id);
    CU_ASSERT_EQUAL(a->total_cents, b->total_cents);
    CU_ASSERT_EQUAL(a->created_at_us, b->created_at_us);
    CU_ASSERT_EQUAL(a->updated_at_us, b->updated_at_us);
    CU_ASSERT_EQUAL(a->has_estimated_minutes, b->has_estimated_minutes);
    CU_ASSERT_EQUAL(a->estimated_minutes, b->estimated_minutes);
    CU_ASSERT_EQUAL(a->has_courier_id, b->has_courier_id);
    CU_ASSERT_EQUAL(a->n_items, b->n_items);
    for (uint32_t i = 0; i < a->n_items && i < b->n_items; i++) {
        CU_ASSERT_EQUAL(a->items[i].sku.len, b->items[i].sku.len);
        CU_ASSERT_EQUAL(memcmp(a->items[i].name.ptr, b->items[i].name.ptr, a->items[i].name.len),
                        0);
        CU_ASSERT_EQUAL(a->items[i].qty, b->items[i].qty);
    }
    CU_ASSERT_EQUAL(a->delivery_address.len, b->delivery_address.len);
    CU_ASSERT_EQUAL(a->cancel_reason.len, b->cancel_reason.len);
    CU_ASSERT_EQUAL(memcmp(a->cancel_reason.ptr, b->cancel_reason.ptr, a->cancel_reason.len), 0);
}

static void test_order_round_trips(void)
{
    ordo_order_t in, out;
    s_make_order(&in);
    CU_ASSERT_EQUAL(in.status, ORDO_STATUS_CANCELLED);

    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack(&s_pk, &in), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_mp_validate(s_buf.data, s_buf.size, 16), ORDO_MP_OK);
    ordo_mp_t r;
    ordo_mp_init(&r, s_buf.data, s_buf.size);
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(ordo_order_read(&r, &out), 0);
    s_assert_same_order(&in, &out);
    ordo_order_clear(&out);

    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack_snapshot(&s_pk, &in), 0);
    CU_ASSERT_EQUAL(ordo_order_decode_snapshot(s_buf.data, s_buf.size, &out), 0);
    s_assert_same_order(&in, &out);
    /* Request ids come back, so idempotency survives a snapshot. */
    CU_ASSERT_EQUAL(ordo_order_find_request(&out, ORDO_STR("req-a")), 1);
    CU_ASSERT_EQUAL(ordo_order_find_request(&out, ORDO_STR("req-c")), 3);
    CU_ASSERT_EQUAL(ordo_order_find_request(&out, ORDO_STR("req-b")), 0);
    for (int v = 0; v < in.version; v++)
        CU_ASSERT_EQUAL(out.positions[v], in.positions[v]);
    CU_ASSERT_EQUAL(out.positions[3], 123456789 + 30);
    ordo_order_clear(&out);

    /* The head hash (PROTOCOL.md 1.1) on the wire and in snapshots; a
     * snapshot record of before (15 elements) reads with none. */
    CU_ASSERT_FALSE(out.has_head_hash);
    ordo_order_clear(&out);
    in.has_head_hash = true;
    memset(in.head_hash, 0x5c, 32);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack(&s_pk, &in), 0);
    CU_ASSERT_PTR_NOT_NULL(memmem(s_buf.data, s_buf.size, "5c5c5c5c5c5c5c5c", 16));
    ordo_mp_init(&r, s_buf.data, s_buf.size);
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(ordo_order_read(&r, &out), 0);
    CU_ASSERT_TRUE(out.has_head_hash && !memcmp(out.head_hash, in.head_hash, 32));
    ordo_order_clear(&out);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack_snapshot(&s_pk, &in), 0);
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(ordo_order_decode_snapshot(s_buf.data, s_buf.size, &out), 0);
    CU_ASSERT_TRUE(out.has_head_hash && !memcmp(out.head_hash, in.head_hash, 32));
    ordo_order_clear(&out);
    in.has_head_hash = false;
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack_snapshot(&s_pk, &in), 0);
    CU_ASSERT_EQUAL_FATAL((uint8_t)s_buf.data[0], 0xdc); /* array 16 */
    CU_ASSERT_EQUAL_FATAL((uint8_t)s_buf.data[2], 17);
    CU_ASSERT_EQUAL_FATAL((uint8_t)s_buf.data[s_buf.size - 5], 0xc0); /* nil head hash */
    CU_ASSERT_EQUAL_FATAL(memcmp(s_buf.data + s_buf.size - 3, "EUR", 3), 0);
    char legacy[4096];
    CU_ASSERT_FATAL(s_buf.size - 3 < sizeof legacy);
    legacy[0] = (char)0x9f; /* array of 15: no head hash, no currency */
    memcpy(legacy + 1, s_buf.data + 3, s_buf.size - 8);
    memset(&out, 0, sizeof out);
    CU_ASSERT_EQUAL(ordo_order_decode_snapshot(legacy, s_buf.size - 7, &out), 0);
    CU_ASSERT_FALSE(out.has_head_hash);
    CU_ASSERT_STRING_EQUAL(out.currency, "USD"); /* orders of before are in dollars */
    memcpy(out.currency, in.currency, sizeof out.currency);
    s_assert_same_order(&in, &out);
    ordo_order_clear(&out);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_order_pack_snapshot(&s_pk, &in), 0);

    /* Every truncation of a snapshot record fails and leaves out empty. */
    for (size_t cut = 0; cut < s_buf.size; cut++) {
        memset(&out, 0, sizeof out);
        CU_ASSERT_EQUAL(ordo_order_decode_snapshot(s_buf.data, cut, &out), -1);
        CU_ASSERT_EQUAL(out.status, ORDO_STATUS_NONE);
    }
    ordo_order_clear(&in);
}

/* ---- replies ----------------------------------------------------------- */

static void test_reply_error_round_trips(void)
{
    for (int code = ORDO_CODE_BAD_REQUEST; code < ORDO_CODE_COUNT_; code++) {
        ordo_error_t e;
        ordo_error_set(&e, (ordo_code_t)code, "something about %d", code);
        if (code == ORDO_CODE_BAD_REQUEST)
            snprintf(e.field, sizeof e.field, "data.items.3.qty");
        e.status = ORDO_STATUS_DELIVERED;
        e.expected_version = 2;
        e.current_version = 4;
        s_reset();
        CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_error(&s_pk, ORDO_STR("rq"), &e), 0);
        ordo_reply_t rep;
        CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
        CU_ASSERT_FALSE(rep.ok);
        CU_ASSERT_EQUAL(rep.request_id.len, 2);
        CU_ASSERT_EQUAL(rep.error.code, (ordo_code_t)code);
        CU_ASSERT_STRING_EQUAL(rep.error.message, e.message);
        if (code == ORDO_CODE_BAD_REQUEST)
            CU_ASSERT_STRING_EQUAL(rep.error.field, "data.items.3.qty");
        if (code == ORDO_CODE_INVALID_TRANSITION)
            CU_ASSERT_EQUAL(rep.error.status, ORDO_STATUS_DELIVERED);
        if (code == ORDO_CODE_CONFLICT) {
            CU_ASSERT_EQUAL(rep.error.expected_version, 2);
            CU_ASSERT_EQUAL(rep.error.current_version, 4);
        }
        if (code == ORDO_CODE_ALREADY_EXISTS)
            CU_ASSERT_EQUAL(rep.error.current_version, 4);
    }
    /* no request id: the key is absent */
    ordo_error_t e;
    ordo_error_set(&e, ORDO_CODE_OVERLOADED, "retry later");
    s_reset();
    ordo_reply_pack_error(&s_pk, (ordo_str_t){0}, &e);
    CU_ASSERT_PTR_NULL(memmem(s_buf.data, s_buf.size, "request_id", 10));
}

/* Partitions and wrong_partition: the map round-trips; a map of the
 * wrong size, with a bad entry or half missing is not a reply. */
static void test_reply_partition_map(void)
{
    ordo_partition_owner_t owners[3] = {
        {ORDO_STR("tcp://10.0.0.1:7700"), ORDO_STR("tcp://10.0.0.1:7701"), 17},
        {{0}, {0}, 0},
        {ORDO_STR("tcp://10.0.0.3:7700"), ORDO_STR(""), 29},
    };
    ordo_partition_owner_t back[3];
    ordo_reply_t rep;
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_partitions(&s_pk, ORDO_STR("m"), 2, 3, owners), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_TRUE(rep.ok);
    CU_ASSERT_EQUAL(rep.partition, 2);
    CU_ASSERT_EQUAL(rep.partitions, 3);
    CU_ASSERT_EQUAL_FATAL(ordo_partition_map_read(rep.map, rep.map_len, 3, back), 0);
    CU_ASSERT_EQUAL(back[0].revision, 17);
    CU_ASSERT_EQUAL(back[0].endpoint.len, strlen("tcp://10.0.0.1:7700"));
    CU_ASSERT_EQUAL(memcmp(back[0].pub.ptr, "tcp://10.0.0.1:7701", back[0].pub.len), 0);
    CU_ASSERT_EQUAL(back[1].endpoint.len, 0); /* nil: no owner */
    CU_ASSERT_EQUAL(back[2].revision, 29);
    CU_ASSERT_EQUAL(back[2].pub.len, 0);
    CU_ASSERT_EQUAL(ordo_partition_map_read(rep.map, rep.map_len, 2, back), -1); /* size */

    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_wrong_partition(&s_pk, ORDO_STR("w"), "go to 0", 0, 3,
                                                          owners),
                          0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_FALSE(rep.ok);
    CU_ASSERT_EQUAL(rep.error.code, ORDO_CODE_WRONG_PARTITION);
    CU_ASSERT_STRING_EQUAL(rep.error.message, "go to 0");
    CU_ASSERT_EQUAL(rep.partition, 0);
    CU_ASSERT_EQUAL(rep.partitions, 3);
    CU_ASSERT_EQUAL(ordo_partition_map_read(rep.map, rep.map_len, 3, back), 0);
    CU_ASSERT_STRING_EQUAL(ordo_code_name(ORDO_CODE_WRONG_PARTITION), "wrong_partition");

    /* Hostile maps. */
#define B(lit) lit, sizeof(lit) - 1
    static const struct {
        const char *why;
        const char *bytes; /* a Partitions reply */
        size_t len;
        int decodes;  /* ordo_reply_decode */
        int map_ok;   /* ordo_partition_map_read, when it decodes */
    } cases[] = {
        /* {ok:true, partition:0, partitions:1, map:[{endpoint:""}]}: empty endpoint */
        {"empty endpoint", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\x91\x81\xa8" "endpoint\xa0"), 0, -1},
        /* endpoint not a string */
        {"endpoint an int", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\x91\x81\xa8" "endpoint\x05"), 0, -1},
        /* negative revision */
        {"negative revision", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\x91\x82\xa8" "endpoint\xa1x"
         "\xa8revision\xff"), 0, -1},
        /* an endpoint with a NUL in it (cut short as a C string) */
        {"NUL in endpoint", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\x91\x81\xa8" "endpoint\xa3" "a\x00" "b"), 0, -1},
        /* a space in pub */
        {"space in pub", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\x91\x82\xa8" "endpoint\xa1x\xa3pub\xa3" "a b"), 0, -1},
        /* partition out of the count */
        {"partition >= partitions", B("\x84\xa2ok\xc3\xa9partition\x01\xaapartitions\x01\xa3map\x91\xc0"), -1, 0},
        /* a count without a map */
        {"no map", B("\x83\xa2ok\xc3\xa9partition\x00\xaapartitions\x01"), -1, 0},
        /* a count past the bound */
        {"huge count", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\xce\x7f\xff\xff\xff\xa3map\x90"), -1, 0},
        /* the map not an array */
        {"map a string", B("\x84\xa2ok\xc3\xa9partition\x00\xaapartitions\x01\xa3map\xa1x"), -1, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = cases[i].len;
        int rc = ordo_reply_decode(cases[i].bytes, len, &rep);
        CU_ASSERT_EQUAL(rc, cases[i].decodes);
        if (rc != cases[i].decodes)
            fprintf(stderr, "case %s: decode %d\n", cases[i].why, rc);
        if (rc == 0)
            CU_ASSERT_EQUAL(ordo_partition_map_read(rep.map, rep.map_len, rep.partitions, back),
                            cases[i].map_ok);
    }
#undef B
}

static void test_reply_success_round_trips(void)
{
    static ordo_event_t ev, back;
    ordo_reply_t rep;
    s_make_event(&ev, ORDO_EVT_ORDER_CREATED);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_command(&s_pk, ORDO_STR("r1"), &ev, true), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_TRUE(rep.ok);
    CU_ASSERT_TRUE(rep.duplicate);
    CU_ASSERT_EQUAL(rep.version, (int64_t)ev.version);
    CU_ASSERT_EQUAL(rep.position, (int64_t)ev.position);
    CU_ASSERT_EQUAL(rep.order_id.len, ev.order_id.len);
    CU_ASSERT_EQUAL(ordo_event_decode(rep.event, rep.event_len, &back), 0);
    s_assert_same_event(&ev, &back);

    /* ReadAll with three events */
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_read_all_head(&s_pk, (ordo_str_t){0}, 12, 20, 3), 0);
    for (int i = 0; i < 3; i++) {
        ev.position = 9 + (uint64_t)i;
        ordo_event_pack(&s_pk, &ev);
    }
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_EQUAL(rep.next_position, 12);
    CU_ASSERT_EQUAL(rep.head_position, 20);
    ordo_mp_t r;
    ordo_mp_init(&r, rep.events, rep.events_len);
    uint32_t n;
    CU_ASSERT_TRUE_FATAL(ordo_mp_read_array(&r, &n));
    CU_ASSERT_EQUAL_FATAL(n, 3);
    for (uint32_t i = 0; i < n; i++) {
        CU_ASSERT_EQUAL(ordo_event_read(&r, &back), 0);
        CU_ASSERT_EQUAL(back.position, 9 + i);
    }

    /* GetHistory */
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_history_head(&s_pk, ORDO_STR("h"), ev.order_id, 1), 0);
    ordo_event_pack(&s_pk, &ev);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_EQUAL(rep.order_id.len, ev.order_id.len);
    CU_ASSERT(rep.events_len > 0);

    /* Stats and Ping */
    const char *names[] = {"head_position", "orders", "events_appended", "commands", "errors"};
    int64_t values[] = {10, 2, 10, 12, 2};
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_stats(&s_pk, (ordo_str_t){0}, names, values, 5), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT(rep.stats_len > 0);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_ping(&s_pk, (ordo_str_t){0}, 77), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    CU_ASSERT_EQUAL(rep.head_position, 77);

    /* GetOrder */
    ordo_order_t o, o2;
    s_make_order(&o);
    s_reset();
    CU_ASSERT_EQUAL_FATAL(ordo_reply_pack_order(&s_pk, ORDO_STR("g"), &o), 0);
    CU_ASSERT_EQUAL_FATAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), 0);
    ordo_mp_init(&r, rep.order, rep.order_len);
    memset(&o2, 0, sizeof o2);
    CU_ASSERT_EQUAL(ordo_order_read(&r, &o2), 0);
    s_assert_same_order(&o, &o2);
    ordo_order_clear(&o);
    ordo_order_clear(&o2);

    /* Not a reply */
    s_reset();
    msgpack_pack_map(&s_pk, 0);
    CU_ASSERT_EQUAL(ordo_reply_decode(s_buf.data, s_buf.size, &rep), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("codec", s_setup, s_teardown);
    CU_add_test(s, "request peek: request_id as an error may echo it", test_request_peek_request_id);
    CU_add_test(s, "request: CreateOrder decodes", test_request_create_decodes);
    CU_add_test(s, "request: round trip of every type", test_request_round_trip_every_type);
    CU_add_test(s, "request: not MessagePack / hostile counts", test_request_not_msgpack);
    CU_add_test(s, "request: not a map", test_request_not_a_map);
    CU_add_test(s, "request: trailing bytes", test_request_trailing_bytes);
    CU_add_test(s, "request: bad UTF-8", test_request_bad_utf8);
    CU_add_test(s, "request: nesting limit", test_request_nesting);
    CU_add_test(s, "request: 1 MiB limit", test_request_too_large);
    CU_add_test(s, "request: type rules", test_request_type_rules);
    CU_add_test(s, "request: request_id echo", test_request_id_echo);
    CU_add_test(s, "request: field paths", test_request_field_paths);
    CU_add_test(s, "request: data and meta shapes", test_request_data_and_meta_shapes);
    CU_add_test(s, "request: query fields", test_request_query_fields);
    CU_add_test(s, "request: error text stays UTF-8", test_request_error_text_is_utf8);
    CU_add_test(s, "request: wide integers, repeated keys", test_request_wide_ints_and_repeats);
    CU_add_test(s, "event: round trips (wire and log)", test_event_round_trips);
    CU_add_test(s, "event: truncated everywhere", test_event_truncated_everywhere);
    CU_add_test(s, "event: stamped record and joined wire form", test_event_stamped_and_joined);
    CU_add_test(s, "request: routing peek at order_id", test_request_peek_order_id);
    CU_add_test(s, "event: missing and bad fields", test_event_rejects_missing_and_bad_fields);
    CU_add_test(s, "event: wire shape", test_event_wire_shape);
    CU_add_test(s, "event: hash, canonical form, records with and without", test_event_hash_fields);
    CU_add_test(s, "record: strings and meta", test_record_strings_and_meta);
    CU_add_test(s, "record: hostile input", test_record_rejects_hostile);
    CU_add_test(s, "record: schema 1 upcast to 2, unknown schemas refused", test_record_upcast);
    CU_add_test(s, "record: more UUIDs than the text buffer", test_record_many_uuids);
    CU_add_test(s, "order: wire and snapshot round trips", test_order_round_trips);
    CU_add_test(s, "reply: errors", test_reply_error_round_trips);
    CU_add_test(s, "reply: successes", test_reply_success_round_trips);
    CU_add_test(s, "reply: the partition map, wrong_partition, hostile maps",
                test_reply_partition_map);
    return ordo_test_run();
}
