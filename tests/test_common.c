/* Tests for common/: CRC32C vectors, UUIDv7 layout and ordering, mkdir -p,
 * error names. */
#include "ordo_crc32c.h"
#include "ordo_error.h"
#include "ordo_io.h"
#include "ordo_test.h"
#include "ordo_uuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int s_cmp16(const void *a, const void *b)
{
    return memcmp(a, b, 16);
}

static void test_crc32c_vectors(void)
{
    CU_ASSERT_EQUAL(ordo_crc32c(0, "123456789", 9), 0xE3069283u);
    CU_ASSERT_EQUAL(ordo_crc32c(0, "", 0), 0u);
    unsigned char zeros[32] = {0};
    CU_ASSERT_EQUAL(ordo_crc32c(0, zeros, 32), 0x8A9136AAu);
    /* Incremental equals one-shot, at every split point. */
    const char *text = "The quick brown fox jumps over the lazy dog";
    size_t n = strlen(text);
    uint32_t whole = ordo_crc32c(0, text, n);
    for (size_t cut = 0; cut <= n; cut++)
        CU_ASSERT_EQUAL(ordo_crc32c(ordo_crc32c(0, text, cut), text + cut, n - cut), whole);
}

static void test_event_id_layout(void)
{
    uint8_t id[16], again[16], other[16];
    int64_t t = 1764164400123456; /* 2025-11-26T13:40:00.123456Z */
    ordo_event_id("ord-1", 5, 3, t, id);
    CU_ASSERT_EQUAL(id[6] >> 4, 7);      /* version */
    CU_ASSERT_EQUAL(id[8] & 0xC0, 0x80); /* variant 10 */
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++)
        ms = ms << 8 | id[i];
    CU_ASSERT_EQUAL(ms, (uint64_t)(t / 1000));
    CU_ASSERT_EQUAL(((id[6] & 0x0F) << 8) | id[7], 456); /* microseconds within the ms */
    /* Deterministic: the log can rebuild it. */
    ordo_event_id("ord-1", 5, 3, t, again);
    CU_ASSERT_EQUAL(memcmp(id, again, 16), 0);
    /* Different order, version or time: a different id. */
    ordo_event_id("ord-2", 5, 3, t, other);
    CU_ASSERT_NOT_EQUAL(memcmp(id, other, 16), 0);
    ordo_event_id("ord-1", 5, 4, t, other);
    CU_ASSERT_NOT_EQUAL(memcmp(id, other, 16), 0);
    ordo_event_id("ord-1", 5, 3, t + 1, other);
    CU_ASSERT_NOT_EQUAL(memcmp(id + 8, other + 8, 8), 0);
}

static void test_event_id_unique(void)
{
    /* 200k events of 40k orders in the same millisecond: no two ids equal. */
    enum { N = 200000 };
    static uint8_t ids[N][16];
    char oid[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(oid, sizeof oid, "order-%d", i / 5);
        ordo_event_id(oid, (size_t)n, (uint32_t)(i % 5 + 1), 1764164400123000, ids[i]);
    }
    qsort(ids, N, 16, s_cmp16);
    int dups = 0;
    for (int i = 1; i < N; i++)
        dups += memcmp(ids[i - 1], ids[i], 16) == 0;
    CU_ASSERT_EQUAL(dups, 0);
}

static void test_uuid_text_round_trip(void)
{
    uint8_t id[16], back[16];
    char text[ORDO_UUID_TEXT_LEN + 1] = {0};
    ordo_event_id("x", 1, 1, 1764164400123456, id);
    ordo_uuid_format(id, text);
    CU_ASSERT_EQUAL(text[8], '-');
    CU_ASSERT_EQUAL(text[14], '7');
    for (int i = 0; i < ORDO_UUID_TEXT_LEN; i++)
        CU_ASSERT(text[i] == '-' || (text[i] >= '0' && text[i] <= '9') ||
                  (text[i] >= 'a' && text[i] <= 'f'));
    CU_ASSERT_TRUE(ordo_uuid_parse(text, ORDO_UUID_TEXT_LEN, true, back));
    CU_ASSERT_EQUAL(memcmp(id, back, 16), 0);
    CU_ASSERT_FALSE(ordo_uuid_parse(text, ORDO_UUID_TEXT_LEN - 1, false, back));
    char upper[ORDO_UUID_TEXT_LEN];
    memcpy(upper, text, sizeof upper);
    upper[0] = 'A';
    upper[1] = 'B';
    CU_ASSERT_TRUE(ordo_uuid_parse(upper, ORDO_UUID_TEXT_LEN, false, back));
    CU_ASSERT_FALSE(ordo_uuid_parse(upper, ORDO_UUID_TEXT_LEN, true, back));
    text[8] = 'x';
    CU_ASSERT_FALSE(ordo_uuid_parse(text, ORDO_UUID_TEXT_LEN, false, back));
}

static void test_mkdir_p(void)
{
    char dir[256], deep[512];
    CU_ASSERT_PTR_NOT_NULL_FATAL(ordo_test_tmpdir(dir, sizeof dir));
    snprintf(deep, sizeof deep, "%s/a/b/c", dir);
    CU_ASSERT_EQUAL(ordo_mkdir_p(deep), 0);
    struct stat st;
    CU_ASSERT_EQUAL(stat(deep, &st), 0);
    CU_ASSERT_TRUE(S_ISDIR(st.st_mode));
    CU_ASSERT_EQUAL(ordo_mkdir_p(deep), 0); /* exists: fine */
    CU_ASSERT_EQUAL(ordo_io_fsync_dir(ordo_io_posix(), deep), 0);
    ordo_test_rm_rf(dir);
}

static void test_error_names(void)
{
    CU_ASSERT_STRING_EQUAL(ordo_strerror(ORDO_ERR_CORRUPT), "data is corrupt");
    CU_ASSERT_STRING_EQUAL(ordo_strerror(12345), "unknown error");
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("common", NULL, NULL);
    CU_add_test(s, "crc32c vectors", test_crc32c_vectors);
    CU_add_test(s, "event id layout", test_event_id_layout);
    CU_add_test(s, "event ids unique", test_event_id_unique);
    CU_add_test(s, "uuid text round trip", test_uuid_text_round_trip);
    CU_add_test(s, "mkdir -p", test_mkdir_p);
    CU_add_test(s, "error names", test_error_names);
    return ordo_test_run();
}
