/* Tests for projections/ordo_pquery: every query type decodes with its
 * defaults; every malformed query gets its code and field (PROJECTIONS.md
 * and PROTOCOL.md precise rules 1-3); limits are clamped; cursors round
 * trip and are refused when forged or from another query; error replies
 * are valid MessagePack. Bodies are written as JSON in the tests and
 * packed to MessagePack by a small converter below. */
#include "ordo_mp.h"
#include "ordo_pquery.h"
#include "ordo_test.h"

#include <ctype.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/* ---- JSON (objects, arrays, "strings" without escapes, integers, null,
 * true, false) to MessagePack -------------------------------------------- */

static const char *s_ws(const char *p)
{
    while (*p && isspace((unsigned char)*p))
        p++;
    return p;
}

static const char *s_value(msgpack_packer *pk, const char *p);

static const char *s_container(msgpack_packer *pk, const char *p, char close, bool map)
{
    /* count the elements first: a copy of the packer writes nowhere */
    uint32_t n = 0;
    const char *q = s_ws(p + 1);
    int depth = 0;
    bool in_str = false, any = *q != close;
    for (const char *c = p + 1; *c; c++) {
        if (*c == '"')
            in_str = !in_str;
        else if (!in_str && (*c == '{' || *c == '['))
            depth++;
        else if (!in_str && (*c == '}' || *c == ']')) {
            if (depth-- == 0)
                break;
        } else if (!in_str && depth == 0 && *c == ',')
            n++;
    }
    n += any;
    if (map)
        msgpack_pack_map(pk, n);
    else
        msgpack_pack_array(pk, n);
    p = s_ws(p + 1);
    while (*p != close) {
        p = s_value(pk, p);
        if (map) {
            p = s_ws(p);
            CU_ASSERT_FATAL(*p == ':');
            p = s_value(pk, s_ws(p + 1));
        }
        p = s_ws(p);
        if (*p == ',')
            p = s_ws(p + 1);
    }
    return p + 1;
}

static const char *s_value(msgpack_packer *pk, const char *p)
{
    p = s_ws(p);
    if (*p == '{')
        return s_container(pk, p, '}', true);
    if (*p == '[')
        return s_container(pk, p, ']', false);
    if (*p == '"') {
        const char *e = strchr(p + 1, '"');
        msgpack_pack_str_with_body(pk, p + 1, (size_t)(e - p - 1));
        return e + 1;
    }
    if (!strncmp(p, "null", 4)) {
        msgpack_pack_nil(pk);
        return p + 4;
    }
    if (!strncmp(p, "true", 4)) {
        msgpack_pack_true(pk);
        return p + 4;
    }
    if (!strncmp(p, "false", 5)) {
        msgpack_pack_false(pk);
        return p + 5;
    }
    char *end;
    long long v = strtoll(p, &end, 10);
    msgpack_pack_int64(pk, v);
    return end;
}

static msgpack_sbuffer s_buf;

/* Packs `json`; the bytes stay in s_buf until the next call. */
static const char *s_pack(const char *json, size_t *len)
{
    msgpack_sbuffer_clear(&s_buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &s_buf, msgpack_sbuffer_write);
    s_value(&pk, json);
    *len = s_buf.size;
    return s_buf.data;
}

static int s_decode(const char *json, ordo_pquery_t *q, ordo_perror_t *err)
{
    size_t len;
    const char *b = s_pack(json, &len);
    return ordo_pquery_decode(b, len, q, err);
}

/* Asserts that `json` is refused with `code` and `field` ("" for none). */
#define BAD(json, code_, field_)                                                                   \
    do {                                                                                           \
        ordo_pquery_t q_;                                                                          \
        ordo_perror_t e_;                                                                          \
        CU_ASSERT_EQUAL(s_decode(json, &q_, &e_), -1);                                             \
        CU_ASSERT_STRING_EQUAL(e_.code ? e_.code : "", code_);                                     \
        CU_ASSERT_STRING_EQUAL(e_.field, field_);                                                  \
        CU_ASSERT(strlen(e_.message) > 10);                                                        \
    } while (0)

static void test_valid_defaults(void)
{
    ordo_pquery_t q;
    ordo_perror_t e;
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"ListOrders\"}", &q, &e), 0);
    CU_ASSERT_EQUAL(q.type, ORDO_PQ_LIST_ORDERS);
    CU_ASSERT_EQUAL(q.limit, ORDO_PQ_LIST_LIMIT_DEFAULT);
    CU_ASSERT_EQUAL(q.wait_ms, ORDO_PQ_WAIT_MS_DEFAULT);
    CU_ASSERT(!q.has_min_position && !q.has_cursor && q.status_mask == 0);
    CU_ASSERT_EQUAL(ordo_pq_projection(q.type), ORDO_PROJ_SUMMARY);

    CU_ASSERT_EQUAL(s_decode("{\"type\":\"UserHistory\",\"user_id\":42,\"request_id\":\"r-1\"}",
                             &q, &e), 0);
    CU_ASSERT_EQUAL(q.limit, ORDO_PQ_USER_LIMIT_DEFAULT);
    CU_ASSERT_EQUAL(q.user_id, 42);
    CU_ASSERT_EQUAL(q.request_id_len, 3);
    CU_ASSERT_STRING_EQUAL(q.request_id, "r-1");

    CU_ASSERT_EQUAL(s_decode("{\"type\":\"ListOrders\",\"status\":[\"Created\",\"Ready\"],"
                             "\"restaurant_id\":7,\"user_id\":3,\"created_from_us\":-5,"
                             "\"created_to_us\":99,\"limit\":5000,\"min_position\":12,"
                             "\"wait_ms\":0,\"unknown\":[1,2]}",
                             &q, &e), 0);
    CU_ASSERT_EQUAL(q.status_mask, (1u << ORDO_STATUS_CREATED) | (1u << ORDO_STATUS_READY));
    CU_ASSERT_EQUAL(q.limit, ORDO_PQ_LIMIT_MAX); /* clamped */
    CU_ASSERT(q.has_restaurant_id && q.restaurant_id == 7 && q.has_user_id && q.user_id == 3);
    CU_ASSERT(q.has_created_from && q.created_from_us == -5 && q.created_to_us == 99);
    CU_ASSERT(q.has_min_position && q.min_position == 12 && q.wait_ms == 0);

    CU_ASSERT_EQUAL(s_decode("{\"type\":\"Analytics\",\"from_us\":0,\"to_us\":3600000000}",
                             &q, &e), 0);
    CU_ASSERT_EQUAL(q.bucket_us, 3600LL * 1000000); /* hour by default */
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"Analytics\",\"from_us\":0,\"to_us\":600000000000,"
                             "\"bucket\":\"minute\"}",
                             &q, &e), 0); /* exactly 10,000 minutes */
    CU_ASSERT_EQUAL(q.bucket_us, 60LL * 1000000);

    CU_ASSERT_EQUAL(s_decode("{\"type\":\"OrdersAsOf\",\"at_position\":17}", &q, &e), 0);
    CU_ASSERT(q.at_is_position && q.at == 17);
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"OrdersAsOf\",\"at_us\":-1,\"at_position\":null}", &q,
                             &e), 0);
    CU_ASSERT(!q.at_is_position && q.at == -1);

    CU_ASSERT_EQUAL(s_decode("{\"type\":\"Rebuild\",\"projection\":\"timeline\"}", &q, &e), 0);
    CU_ASSERT_EQUAL(q.projection, ORDO_PROJ_TIMELINE);
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"ProjectionStatus\"}", &q, &e), 0);
    CU_ASSERT_EQUAL(ordo_pq_projection(q.type), -1);
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"Ping\",\"request_id\":null}", &q, &e), 0);
    CU_ASSERT_EQUAL(q.request_id_len, 0);
    /* the last key counts, nil means not given */
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"GetOrderSummary\",\"order_id\":\"bad id\","
                             "\"order_id\":\"o-1\"}", &q, &e), -1); /* checked as it is read */
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"RestaurantBoard\",\"restaurant_id\":3,"
                             "\"restaurant_id\":null}", &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.field, "restaurant_id");
}

static void test_malformed(void)
{
    ordo_pquery_t q;
    ordo_perror_t e;
    /* bytes that are not one MessagePack map */
    static const uint8_t never[] = {0xc1};
    CU_ASSERT_EQUAL(ordo_pquery_decode(never, 1, &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.code, "bad_request");
    size_t len;
    const char *b = s_pack("{\"type\":\"Ping\"}", &len);
    char trailing[64];
    memcpy(trailing, b, len);
    trailing[len] = 0;
    CU_ASSERT_EQUAL(ordo_pquery_decode(trailing, len + 1, &q, &e), -1);
    CU_ASSERT_EQUAL(ordo_pquery_decode(b, len - 1, &q, &e), -1); /* truncated */
    static const uint8_t bad_utf8[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa2, 0xc3, 0x28};
    CU_ASSERT_EQUAL(ordo_pquery_decode(bad_utf8, sizeof bad_utf8, &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.code, "bad_request");
    static const uint8_t huge_map[] = {0xdf, 0xff, 0xff, 0xff, 0xff}; /* claims 4 G pairs */
    CU_ASSERT_EQUAL(ordo_pquery_decode(huge_map, sizeof huge_map, &q, &e), -1);
    char *big = malloc(ORDO_PQ_BODY_MAX + 1);
    CU_ASSERT_FATAL(big != NULL);
    memset(big, 0xc0, ORDO_PQ_BODY_MAX + 1);
    CU_ASSERT_EQUAL(ordo_pquery_decode(big, ORDO_PQ_BODY_MAX + 1, &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.code, "bad_request");
    free(big);

    BAD("[1,2]", "bad_request", "");
    BAD("\"Ping\"", "bad_request", "");
    BAD("{\"limit\":3}", "bad_request", "type");
    BAD("{\"type\":7}", "bad_request", "type");
    BAD("{\"type\":\"\"}", "unknown_type", "");
    BAD("{\"type\":\"GetOrder\"}", "unknown_type", ""); /* the engine's, not ours */
    BAD("{\"type\":\"Ping\",\"request_id\":\"\"}", "bad_request", "request_id");
    BAD("{\"type\":\"Ping\",\"request_id\":5}", "bad_request", "request_id");
    BAD("{\"type\":\"GetOrderSummary\"}", "bad_request", "order_id");
    BAD("{\"type\":\"GetOrderSummary\",\"order_id\":\"a b\"}", "bad_request", "order_id");
    BAD("{\"type\":\"GetOrderSummary\",\"order_id\":12}", "bad_request", "order_id");
    BAD("{\"type\":\"ListOrders\",\"limit\":0}", "bad_request", "limit");
    BAD("{\"type\":\"ListOrders\",\"limit\":\"10\"}", "bad_request", "limit");
    BAD("{\"type\":\"ListOrders\",\"status\":\"Nope\"}", "bad_request", "status");
    BAD("{\"type\":\"ListOrders\",\"status\":[]}", "bad_request", "status");
    BAD("{\"type\":\"ListOrders\",\"status\":[1]}", "bad_request", "status");
    BAD("{\"type\":\"ListOrders\",\"status\":[\"Created\",\"created\"]}", "bad_request",
        "status");
    BAD("{\"type\":\"ListOrders\",\"restaurant_id\":\"x\"}", "bad_request", "restaurant_id");
    BAD("{\"type\":\"ListOrders\",\"restaurant_id\":-1}", "bad_request", "restaurant_id");
    BAD("{\"type\":\"ListOrders\",\"user_id\":true}", "bad_request", "user_id");
    BAD("{\"type\":\"ListOrders\",\"created_from_us\":\"today\"}", "bad_request",
        "created_from_us");
    BAD("{\"type\":\"ListOrders\",\"cursor\":\"garbage\"}", "bad_request", "cursor");
    BAD("{\"type\":\"ListOrders\",\"cursor\":42}", "bad_request", "cursor");
    BAD("{\"type\":\"ListOrders\",\"min_position\":-1}", "bad_request", "min_position");
    BAD("{\"type\":\"ListOrders\",\"wait_ms\":20000}", "bad_request", "wait_ms");
    BAD("{\"type\":\"ListOrders\",\"wait_ms\":-1}", "bad_request", "wait_ms");
    BAD("{\"type\":\"RestaurantBoard\"}", "bad_request", "restaurant_id");
    BAD("{\"type\":\"UserHistory\"}", "bad_request", "user_id");
    BAD("{\"type\":\"UserHistory\",\"user_id\":1,\"limit\":-3}", "bad_request", "limit");
    BAD("{\"type\":\"Analytics\",\"to_us\":10}", "bad_request", "from_us");
    BAD("{\"type\":\"Analytics\",\"from_us\":10}", "bad_request", "to_us");
    BAD("{\"type\":\"Analytics\",\"from_us\":10,\"to_us\":10}", "bad_request", "to_us");
    BAD("{\"type\":\"Analytics\",\"from_us\":0,\"to_us\":600000000001,\"bucket\":\"minute\"}",
        "bad_request", "to_us"); /* 10,001 buckets */
    BAD("{\"type\":\"Analytics\",\"from_us\":0,\"to_us\":10,\"bucket\":\"week\"}", "bad_request",
        "bucket");
    BAD("{\"type\":\"Analytics\",\"from_us\":0,\"to_us\":10,\"bucket\":3}", "bad_request",
        "bucket");
    BAD("{\"type\":\"OrdersAsOf\"}", "bad_request", "at_position");
    BAD("{\"type\":\"OrdersAsOf\",\"at_us\":1,\"at_position\":2}", "bad_request", "at_position");
    BAD("{\"type\":\"OrdersAsOf\",\"at_position\":-2}", "bad_request", "at_position");
    BAD("{\"type\":\"Rebuild\"}", "bad_request", "projection");
    BAD("{\"type\":\"Rebuild\",\"projection\":\"nope\"}", "bad_request", "projection");
    /* integers above INT64_MAX: a limit is clamped, positions are as far as can be */
    static const uint8_t big_limit[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xaa, 'L', 'i', 's', 't',
                                        'O', 'r', 'd', 'e', 'r', 's', 0xa5, 'l', 'i', 'm', 'i',
                                        't', 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0};
    CU_ASSERT_EQUAL(ordo_pquery_decode(big_limit, sizeof big_limit, &q, &e), 0);
    CU_ASSERT_EQUAL(q.limit, ORDO_PQ_LIMIT_MAX);
    static const uint8_t big_min[] = {0x82, 0xa4, 't', 'y', 'p', 'e', 0xa4, 'P', 'i', 'n', 'g',
                                      0xac, 'm', 'i', 'n', '_', 'p', 'o', 's', 'i', 't', 'i', 'o',
                                      'n', 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    CU_ASSERT_EQUAL(ordo_pquery_decode(big_min, sizeof big_min, &q, &e), 0);
    CU_ASSERT_EQUAL(q.min_position, INT64_MAX);
    /* a type holding NUL is named up to it */
    static const uint8_t nul_type[] = {0x81, 0xa4, 't', 'y', 'p', 'e', 0xa4, 0, 'a', 'b', 'c'};
    CU_ASSERT_EQUAL(ordo_pquery_decode(nul_type, sizeof nul_type, &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.code, "unknown_type");
    CU_ASSERT(strstr(e.message, "\"...") != NULL);
    /* the request id is kept for the error reply */
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"ListOrders\",\"request_id\":\"echo\",\"limit\":0}", &q,
                             &e), -1);
    CU_ASSERT_STRING_EQUAL(q.request_id, "echo");
}

static void test_cursor(void)
{
    char c[ORDO_PCURSOR_MAX];
    char id[65];
    memset(id, 'z', 64);
    id[64] = '\0';
    ordo_pcursor_encode(c, ORDO_PQ_LIST_ORDERS, -123456789, id);
    CU_ASSERT(strlen(c) < ORDO_PCURSOR_MAX);
    char json[512];
    snprintf(json, sizeof json, "{\"type\":\"ListOrders\",\"cursor\":\"%s\"}", c);
    ordo_pquery_t q;
    ordo_perror_t e;
    CU_ASSERT_EQUAL(s_decode(json, &q, &e), 0);
    CU_ASSERT(q.has_cursor && q.cursor_key == -123456789);
    CU_ASSERT_STRING_EQUAL(q.cursor_order_id, id);
    /* from another query type */
    snprintf(json, sizeof json, "{\"type\":\"UserHistory\",\"user_id\":1,\"cursor\":\"%s\"}", c);
    BAD(json, "bad_request", "cursor");
    /* one hex digit changed into a bad order id byte: 'z' (7a) -> 0x20 */
    char forged[ORDO_PCURSOR_MAX];
    snprintf(forged, sizeof forged, "%s", c);
    forged[strlen(forged) - 2] = '2';
    forged[strlen(forged) - 1] = '0';
    snprintf(json, sizeof json, "{\"type\":\"ListOrders\",\"cursor\":\"%s\"}", forged);
    BAD(json, "bad_request", "cursor");
    /* upper-case hex, odd length, too long */
    snprintf(json, sizeof json, "{\"type\":\"ListOrders\",\"cursor\":\"%sA\"}", c);
    BAD(json, "bad_request", "cursor");
    snprintf(json, sizeof json, "{\"type\":\"ListOrders\",\"cursor\":\"%s7a7a\"}", c);
    BAD(json, "bad_request", "cursor");
    /* an OrdersAsOf cursor always has key 0 */
    ordo_pcursor_encode(c, ORDO_PQ_ORDERS_AS_OF, 5, "o-1");
    snprintf(json, sizeof json, "{\"type\":\"OrdersAsOf\",\"at_us\":1,\"cursor\":\"%s\"}", c);
    BAD(json, "bad_request", "cursor");
    ordo_pcursor_encode(c, ORDO_PQ_ORDERS_AS_OF, 0, "o-1");
    snprintf(json, sizeof json, "{\"type\":\"OrdersAsOf\",\"at_us\":1,\"cursor\":\"%s\"}", c);
    CU_ASSERT_EQUAL(s_decode(json, &q, &e), 0);
    /* nil cursor: the first page */
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"OrdersAsOf\",\"at_us\":1,\"cursor\":null}", &q, &e), 0);
    CU_ASSERT(!q.has_cursor);
}

static void test_replies(void)
{
    ordo_pquery_t q;
    ordo_perror_t e;
    CU_ASSERT_EQUAL(s_decode("{\"type\":\"Ping\",\"request_id\":\"r\xc3\xa9\"}", &q, &e), 0);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    CU_ASSERT_EQUAL(ordo_preply_pack_ok(&pk, &q, 77, 1), 0);
    msgpack_pack_str_with_body(&pk, "engine_head", 11);
    msgpack_pack_uint64(&pk, 80);
    CU_ASSERT_EQUAL(ordo_mp_validate(sb.data, sb.size, 16), ORDO_MP_OK);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    CU_ASSERT_EQUAL(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    CU_ASSERT_EQUAL(u.data.type, MSGPACK_OBJECT_MAP);
    CU_ASSERT_EQUAL(u.data.via.map.size, 4); /* ok, request_id, position, engine_head */
    msgpack_unpacked_destroy(&u);

    /* an unknown type's name is cut at 64 bytes without splitting UTF-8 */
    char json[256] = "{\"type\":\"";
    for (int i = 0; i < 40; i++)
        strcat(json, "\xc3\xa9");
    strcat(json, "\"}");
    CU_ASSERT_EQUAL(s_decode(json, &q, &e), -1);
    CU_ASSERT_STRING_EQUAL(e.code, "unknown_type");
    msgpack_sbuffer_clear(&sb);
    CU_ASSERT_EQUAL(ordo_preply_pack_error(&pk, &q, &e), 0);
    CU_ASSERT_EQUAL(ordo_mp_validate(sb.data, sb.size, 16), ORDO_MP_OK);

    ordo_perror_set(&e, "lagging", "behind");
    e.has_positions = true;
    e.position = 5;
    e.min_position = 9;
    msgpack_sbuffer_clear(&sb);
    CU_ASSERT_EQUAL(ordo_preply_pack_error(&pk, NULL, &e), 0);
    msgpack_unpacked_init(&u);
    CU_ASSERT_EQUAL(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    msgpack_object err = u.data.via.map.ptr[1].val;
    CU_ASSERT_EQUAL(err.type, MSGPACK_OBJECT_MAP);
    CU_ASSERT_EQUAL(err.via.map.size, 4); /* code, message, position, min_position */
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

int main(void)
{
    msgpack_sbuffer_init(&s_buf);
    CU_initialize_registry();
    CU_pSuite s = CU_add_suite("pquery", NULL, NULL);
    CU_add_test(s, "every type decodes with its defaults", test_valid_defaults);
    CU_add_test(s, "malformed queries get their code and field", test_malformed);
    CU_add_test(s, "cursors round trip; forged ones are refused", test_cursor);
    CU_add_test(s, "replies are valid MessagePack", test_replies);
    int rc = ordo_test_run();
    msgpack_sbuffer_destroy(&s_buf);
    return rc;
}
