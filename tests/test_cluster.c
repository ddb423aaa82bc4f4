/* Tests for cluster/: the partition function is stable (fixed values that
 * must never change: every engine, client and projector of a cluster must
 * agree on them, in every version), spreads orders evenly, and "K/P"
 * parses strictly. Replication itself is tested end to end against a real
 * NATS cluster (e2e_replication.py). */
#include "ordo_partition.h"
#include "ordo_partmap.h"
#include "ordo_test.h"

#include <stdio.h>
#include <string.h>

static uint32_t s_of(const char *id, uint32_t p)
{
    return ordo_partition_of(id, strlen(id), p);
}

static void test_stable(void)
{
    static const struct {
        const char *id;
        uint32_t p3, p100, p4096;
    } fixed[] = {{"o-1", 0, 78, 314},
                 {"ord-000123", 1, 8, 2640},
                 {"01HZX3K8Q2V7Y9T4M6N5P0R1SA", 0, 25, 1853},
                 {"", 2, 38, 1934}};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
        CU_ASSERT_EQUAL(s_of(fixed[i].id, 3), fixed[i].p3);
        CU_ASSERT_EQUAL(s_of(fixed[i].id, 100), fixed[i].p100);
        CU_ASSERT_EQUAL(s_of(fixed[i].id, 4096), fixed[i].p4096);
    }
    CU_ASSERT_EQUAL(s_of("anything", 1), 0);
    CU_ASSERT_EQUAL(s_of("anything", 0), 0);
}

static void test_even(void)
{
    enum { P = 16, N = 160000 };
    unsigned counts[P] = {0};
    char id[32];
    for (int i = 0; i < N; i++) {
        snprintf(id, sizeof id, "order-%d", i);
        uint32_t k = s_of(id, P);
        CU_ASSERT_FATAL(k < P);
        counts[k]++;
    }
    for (int k = 0; k < P; k++) /* 10,000 expected; 5% either way */
        CU_ASSERT(counts[k] > 9500 && counts[k] < 10500);
}

static void test_parse(void)
{
    uint32_t k = 99, p = 99;
    CU_ASSERT_EQUAL(ordo_partition_parse("0/1", &k, &p), 0);
    CU_ASSERT(k == 0 && p == 1);
    CU_ASSERT_EQUAL(ordo_partition_parse("7/100", &k, &p), 0);
    CU_ASSERT(k == 7 && p == 100);
    CU_ASSERT_EQUAL(ordo_partition_parse("4095/4096", &k, &p), 0);
    static const char *bad[] = {"", "1", "/", "1/", "/2", "2/2", "3/2", "0/0", "-1/3", "1/-3",
                                "a/3", "1/3x", " 1/3", "1/4097", "0/99999999999999999999",
                                "1//3", "+1/3", NULL};
    for (int i = 0; bad[i]; i++) {
        k = p = 77;
        CU_ASSERT_EQUAL(ordo_partition_parse(bad[i], &k, &p), -1);
        CU_ASSERT(k == 77 && p == 77); /* nothing changed */
    }
    CU_ASSERT_EQUAL(ordo_partition_parse(NULL, &k, &p), -1);
}

/* The lease value names the owner's endpoints for the map, and reads
 * back; a released lease (empty) or anything else names none. */
static void test_holder(void)
{
    char buf[600];
    ordo_partmap_owner_t o;
    CU_ASSERT_EQUAL_FATAL(ordo_partmap_holder(buf, sizeof buf, "tcp://h1:7700", "tcp://h1:7701",
                                              42),
                          0);
    CU_ASSERT_STRING_EQUAL(buf, "tcp://h1:7700 tcp://h1:7701 (pid 42)");
    CU_ASSERT_EQUAL_FATAL(ordo_partmap_parse_holder(buf, &o), 0);
    CU_ASSERT_STRING_EQUAL(o.endpoint, "tcp://h1:7700");
    CU_ASSERT_STRING_EQUAL(o.pub, "tcp://h1:7701");
    static const char *bad[] = {"", "tcp://h1:7700", "tcp://h1:7700 (pid 3)",
                                "tcp://h1:7700 tcp://h1:7701", "a b c"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CU_ASSERT_EQUAL(ordo_partmap_parse_holder(bad[i], &o), -1);
        CU_ASSERT_STRING_EQUAL(o.endpoint, "");
    }
    CU_ASSERT_EQUAL(ordo_partmap_parse_holder(NULL, &o), -1);
    CU_ASSERT_EQUAL(ordo_partmap_holder(buf, sizeof buf, "tcp://a b:1", "tcp://c:2", 1), -1);
    CU_ASSERT_EQUAL(ordo_partmap_holder(buf, sizeof buf, "", "tcp://c:2", 1), -1);
    CU_ASSERT_EQUAL(ordo_partmap_holder(buf, 20, "tcp://h1:7700", "tcp://h1:7701", 1), -1);
    char longest[ORDO_PARTMAP_ENDPOINT_MAX + 1];
    memset(longest, 'x', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    CU_ASSERT_EQUAL(ordo_partmap_holder(buf, sizeof buf, longest, "tcp://c:2", 1), -1);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("cluster", NULL, NULL);
    CU_add_test(s, "the partition function never changes", test_stable);
    CU_add_test(s, "orders spread evenly over partitions", test_even);
    CU_add_test(s, "K/P parses strictly", test_parse);
    CU_add_test(s, "the lease value names the owner's endpoints", test_holder);
    return ordo_test_run();
}
