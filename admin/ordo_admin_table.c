/* Per-order values by order id (see ordo_admin_table.h). A slot is the
 * id's length (0: empty), the id, then the value, 8-byte aligned. */
#include "ordo_admin_table.h"

#include "ordo_hash.h"
#include "ordo_limits.h"

#include <stdlib.h>
#include <string.h>

#define S_VALUE_AT ((1 + ORDO_ORDER_ID_MAX + 7) & ~(size_t)7)

void admin_table_init(admin_table_t *t, size_t value_size)
{
    memset(t, 0, sizeof *t);
    t->value_size = value_size;
    t->slot_size = S_VALUE_AT + ((value_size + 7) & ~(size_t)7);
}

static uint8_t *s_slot(const admin_table_t *t, size_t i)
{
    return t->slots + i * t->slot_size;
}

static size_t s_home(const admin_table_t *t, const char *id, size_t len)
{
    return ordo_hash64(id, len, 0) & (t->cap - 1);
}

static int s_grow(admin_table_t *t)
{
    size_t cap = t->cap ? t->cap * 2 : 1u << 14;
    uint8_t *slots = calloc(cap, t->slot_size);
    if (!slots)
        return -1;
    admin_table_t bigger = *t;
    bigger.cap = cap;
    bigger.slots = slots;
    for (size_t i = 0; i < t->cap; i++) {
        uint8_t *s = s_slot(t, i);
        if (!s[0])
            continue;
        size_t j = s_home(&bigger, (const char *)s + 1, s[0]);
        while (s_slot(&bigger, j)[0])
            j = (j + 1) & (cap - 1);
        memcpy(s_slot(&bigger, j), s, t->slot_size);
    }
    free(t->slots);
    *t = bigger;
    return 0;
}

void *admin_table_find(const admin_table_t *t, const char *id, size_t len)
{
    if (!t->cap || len == 0 || len > ORDO_ORDER_ID_MAX)
        return NULL;
    for (size_t j = s_home(t, id, len);; j = (j + 1) & (t->cap - 1)) {
        uint8_t *s = s_slot(t, j);
        if (!s[0])
            return NULL;
        if (s[0] == len && !memcmp(s + 1, id, len))
            return s + S_VALUE_AT;
    }
}

void *admin_table_get(admin_table_t *t, const char *id, size_t len, bool *created)
{
    if (created)
        *created = false;
    if (len == 0 || len > ORDO_ORDER_ID_MAX)
        return NULL;
    void *v = admin_table_find(t, id, len);
    if (v)
        return v;
    if ((t->used + 1) * 4 > t->cap * 3 && s_grow(t) != 0)
        return NULL;
    size_t j = s_home(t, id, len);
    while (s_slot(t, j)[0])
        j = (j + 1) & (t->cap - 1);
    uint8_t *s = s_slot(t, j);
    s[0] = (uint8_t)len;
    memcpy(s + 1, id, len);
    t->used++;
    if (created)
        *created = true;
    return s + S_VALUE_AT;
}

void *admin_table_next(const admin_table_t *t, size_t *i, const char **id, size_t *len)
{
    for (; *i < t->cap; (*i)++) {
        uint8_t *s = s_slot(t, *i);
        if (s[0]) {
            (*i)++;
            if (id)
                *id = (const char *)s + 1;
            if (len)
                *len = s[0];
            return s + S_VALUE_AT;
        }
    }
    return NULL;
}

void admin_table_free(admin_table_t *t)
{
    free(t->slots);
    memset(t, 0, sizeof *t);
}
