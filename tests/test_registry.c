/* Tests for actors/ordo_registry: insert, find, remove with backward
 * shift (every survivor still found), growth, iteration. */
#include "ordo_registry.h"
#include "ordo_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 50000

static ordo_str_t s_id(char *buf, int i)
{
    int n = snprintf(buf, 32, "ord-%07d", i);
    return (ordo_str_t){buf, (uint32_t)n};
}

static void test_add_find_remove(void)
{
    ordo_registry_t *reg = ordo_registry_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    char buf[32];
    for (int i = 0; i < N; i++) {
        ordo_order_t *o = ordo_registry_get_or_add(reg, s_id(buf, i));
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        CU_ASSERT_EQUAL(o->status, ORDO_STATUS_NONE);
        CU_ASSERT_EQUAL(o->order_id_len, strlen(buf));
        o->user_id = i;
    }
    CU_ASSERT_EQUAL(ordo_registry_count(reg), N);
    /* get_or_add on an existing id returns the same order */
    CU_ASSERT_EQUAL(ordo_registry_get_or_add(reg, s_id(buf, 7))->user_id, 7);
    CU_ASSERT_EQUAL(ordo_registry_count(reg), N);
    CU_ASSERT_PTR_NULL(ordo_registry_find(reg, ORDO_STR("nope")));
    /* remove every third in a scrambled order */
    int removed = 0;
    for (int k = 0; k < N; k++) {
        int i = (int)(((long long)k * 7919) % N);
        if (i % 3 == 0) {
            ordo_registry_remove(reg, s_id(buf, i));
            removed++;
        }
    }
    CU_ASSERT_EQUAL(ordo_registry_count(reg), (size_t)(N - removed));
    int bad = 0;
    for (int i = 0; i < N; i++) {
        ordo_order_t *o = ordo_registry_find(reg, s_id(buf, i));
        if (i % 3 == 0 ? o != NULL : (o == NULL || o->user_id != i))
            bad++;
    }
    CU_ASSERT_EQUAL(bad, 0);
    size_t cursor = 0, seen = 0;
    while (ordo_registry_next(reg, &cursor))
        seen++;
    CU_ASSERT_EQUAL(seen, (size_t)(N - removed));
    ordo_registry_remove(reg, ORDO_STR("nope")); /* absent: no-op */
    CU_ASSERT_EQUAL(ordo_registry_count(reg), (size_t)(N - removed));
    ordo_registry_clear(reg);
    CU_ASSERT_EQUAL(ordo_registry_count(reg), 0);
    CU_ASSERT_PTR_NULL(ordo_registry_find(reg, s_id(buf, 1)));
    cursor = 0;
    CU_ASSERT_PTR_NULL(ordo_registry_next(reg, &cursor));
    ordo_registry_destroy(&reg);
    CU_ASSERT_PTR_NULL(reg);
    ordo_registry_destroy(&reg); /* safe twice */
}

/* Growth moves orders a few slots per insert: at every step in between,
 * every order is found (in whichever table holds it), a walk sees each
 * once, and a removal mid-growth loses nothing. */
static void test_incremental_growth(void)
{
    ordo_registry_t *reg = ordo_registry_new();
    CU_ASSERT_PTR_NOT_NULL_FATAL(reg);
    char buf[32];
    int bad = 0;
    for (int i = 0; i < 20000; i++) {
        ordo_order_t *o = ordo_registry_get_or_add(reg, s_id(buf, i));
        CU_ASSERT_PTR_NOT_NULL_FATAL(o);
        o->user_id = i;
        if (i % 97 == 0) {        /* check everything so far, mid-growth or not */
            bool gone = i > 1100; /* order 3 is removed at 1,100 */
            for (int j = 0; j <= i; j++) {
                o = ordo_registry_find(reg, s_id(buf, j));
                bad += j == 3 && gone ? o != NULL : !o || o->user_id != j;
            }
            size_t cursor = 0, seen = 0;
            while (ordo_registry_next(reg, &cursor))
                seen++;
            bad += seen != (size_t)i + 1 - gone;
            /* an existing id found through get_or_add, even if not moved yet */
            bad += ordo_registry_get_or_add(reg, s_id(buf, i / 2))->user_id != i / 2;
        }
        if (i == 1100) /* just after a growth started (1,024 slots full at 512+) */
            ordo_registry_remove(reg, s_id(buf, 3));
    }
    CU_ASSERT_EQUAL(bad, 0);
    CU_ASSERT_PTR_NULL(ordo_registry_find(reg, s_id(buf, 3)));
    CU_ASSERT_EQUAL(ordo_registry_count(reg), 19999);
    ordo_registry_destroy(&reg);
}

static void test_too_long_id(void)
{
    ordo_registry_t *reg = ordo_registry_new();
    char id[ORDO_ORDER_ID_MAX + 1];
    memset(id, 'a', sizeof id);
    CU_ASSERT_PTR_NULL(ordo_registry_get_or_add(reg, (ordo_str_t){id, sizeof id}));
    CU_ASSERT_PTR_NOT_NULL(ordo_registry_get_or_add(reg, (ordo_str_t){id, ORDO_ORDER_ID_MAX}));
    ordo_registry_destroy(&reg);
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 1;
    CU_pSuite s = CU_add_suite("registry", NULL, NULL);
    CU_add_test(s, "add, find, remove", test_add_find_remove);
    CU_add_test(s, "ids longer than 64 bytes", test_too_long_id);
    CU_add_test(s, "incremental growth", test_incremental_growth);
    return ordo_test_run();
}
