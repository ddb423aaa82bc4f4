/* Order registry: open-addressing hash table (see ordo_registry.h).
 * Invariants: capacity is a power of two; the load stays at most 1/2 (short
 * probes, and a miss ends soon: every create starts with one); every
 * order sits in the probe run that starts at its hash slot, with no empty
 * slot between, which backward-shift deletion preserves. */
#include "ordo_registry.h"
#include "ordo_hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    ordo_order_t *order; /* owned; NULL = empty slot */
} s_slot_t;

struct ordo_registry {
    s_slot_t *slots; /* owned */
    size_t capacity;
    size_t count;
};

uint64_t ordo_order_id_hash(const char *id, size_t len)
{
    /* Seeded per process: order ids come from clients, who must not be
     * able to pick ids that pile up in one probe run. */
    return ordo_hash64(id, len, ordo_process_seed());
}

ordo_registry_t *ordo_registry_new(void)
{
    ordo_registry_t *reg = calloc(1, sizeof *reg);
    if (!reg)
        return NULL;
    reg->capacity = 1024;
    reg->slots = calloc(reg->capacity, sizeof *reg->slots);
    if (!reg->slots) {
        free(reg);
        return NULL;
    }
    return reg;
}

void ordo_registry_clear(ordo_registry_t *reg)
{
    for (size_t i = 0; i < reg->capacity; i++) {
        if (reg->slots[i].order) {
            ordo_order_clear(reg->slots[i].order);
            free(reg->slots[i].order);
            reg->slots[i] = (s_slot_t){0, NULL};
        }
    }
    reg->count = 0;
}

void ordo_registry_destroy(ordo_registry_t **reg)
{
    if (!reg || !*reg)
        return;
    ordo_registry_t *r = *reg;
    ordo_registry_clear(r);
    free(r->slots);
    free(r);
    *reg = NULL;
}

static bool s_same_id(const ordo_order_t *o, ordo_str_t id)
{
    return o->order_id_len == id.len && memcmp(o->order_id, id.ptr, id.len) == 0;
}

/* Slot holding `id`, or the empty slot where it would go. */
static size_t s_probe(const ordo_registry_t *reg, uint64_t hash, ordo_str_t id)
{
    size_t mask = reg->capacity - 1;
    size_t i = (size_t)hash & mask;
    while (reg->slots[i].order) {
        if (reg->slots[i].hash == hash && s_same_id(reg->slots[i].order, id))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static int s_grow(ordo_registry_t *reg)
{
    size_t cap = reg->capacity * 2;
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < reg->capacity; i++) {
        if (!reg->slots[i].order)
            continue;
        size_t j = (size_t)reg->slots[i].hash & (cap - 1);
        while (slots[j].order)
            j = (j + 1) & (cap - 1);
        slots[j] = reg->slots[i];
    }
    free(reg->slots);
    reg->slots = slots;
    reg->capacity = cap;
    return 0;
}

ordo_order_t *ordo_registry_find(const ordo_registry_t *reg, ordo_str_t order_id)
{
    return ordo_registry_find_hashed(reg, order_id, ordo_order_id_hash(order_id.ptr, order_id.len));
}

ordo_order_t *ordo_registry_find_hashed(const ordo_registry_t *reg, ordo_str_t order_id,
                                        uint64_t hash)
{
    return reg->slots[s_probe(reg, hash, order_id)].order;
}

ordo_order_t *ordo_registry_get_or_add(ordo_registry_t *reg, ordo_str_t order_id)
{
    return ordo_registry_get_or_add_hashed(reg, order_id,
                                           ordo_order_id_hash(order_id.ptr, order_id.len));
}

void ordo_registry_prefetch_slot(const ordo_registry_t *reg, uint64_t hash)
{
    __builtin_prefetch(&reg->slots[(size_t)hash & (reg->capacity - 1)]);
}

void ordo_registry_prefetch_order(const ordo_registry_t *reg, uint64_t hash)
{
    size_t mask = reg->capacity - 1;
    for (size_t i = (size_t)hash & mask; reg->slots[i].order; i = (i + 1) & mask) {
        if (reg->slots[i].hash == hash) {
            __builtin_prefetch(reg->slots[i].order);
            return;
        }
    }
}

ordo_order_t *ordo_registry_get_or_add_hashed(ordo_registry_t *reg, ordo_str_t order_id, uint64_t h)
{
    if (order_id.len > ORDO_ORDER_ID_MAX)
        return NULL;
    size_t i = s_probe(reg, h, order_id);
    if (reg->slots[i].order)
        return reg->slots[i].order;
    if ((reg->count + 1) * 2 > reg->capacity) {
        if (s_grow(reg) != 0)
            return NULL;
        i = s_probe(reg, h, order_id);
    }
    ordo_order_t *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    memcpy(o->order_id, order_id.ptr, order_id.len);
    o->order_id_len = (uint8_t)order_id.len;
    reg->slots[i] = (s_slot_t){h, o};
    reg->count++;
    return o;
}

void ordo_registry_remove(ordo_registry_t *reg, ordo_str_t order_id)
{
    uint64_t h = ordo_order_id_hash(order_id.ptr, order_id.len);
    size_t mask = reg->capacity - 1;
    size_t i = s_probe(reg, h, order_id);
    if (!reg->slots[i].order)
        return;
    ordo_order_clear(reg->slots[i].order);
    free(reg->slots[i].order);
    reg->slots[i] = (s_slot_t){0, NULL};
    reg->count--;
    /* Backward shift: pull later members of the run into the hole when
     * the hole lies between their home slot and where they sit. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!reg->slots[j].order)
            break;
        size_t home = (size_t)reg->slots[j].hash & mask;
        bool movable = hole <= j ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            reg->slots[hole] = reg->slots[j];
            reg->slots[j] = (s_slot_t){0, NULL};
            hole = j;
        }
    }
}

size_t ordo_registry_count(const ordo_registry_t *reg)
{
    return reg->count;
}

ordo_order_t *ordo_registry_next(const ordo_registry_t *reg, size_t *cursor)
{
    while (*cursor < reg->capacity) {
        ordo_order_t *o = reg->slots[(*cursor)++].order;
        if (o)
            return o;
    }
    return NULL;
}

int ordo_registry_split(ordo_registry_t *src, ordo_registry_t *const *dst, size_t n)
{
    for (size_t i = 0; i < src->capacity; i++) {
        s_slot_t slot = src->slots[i];
        if (!slot.order)
            continue;
        ordo_registry_t *to = dst[ordo_shard_of(slot.hash, n)];
        if ((to->count + 1) * 2 > to->capacity && s_grow(to) != 0)
            return -1;
        size_t j = (size_t)slot.hash & (to->capacity - 1);
        while (to->slots[j].order)
            j = (j + 1) & (to->capacity - 1);
        to->slots[j] = slot;
        to->count++;
        src->slots[i] = (s_slot_t){0, NULL};
        src->count--;
    }
    return 0;
}
