/* Order registry: open-addressing hash table (see ordo_registry.h).
 * Invariants: capacity is a power of two; the load stays at most 1/2 (short
 * probes, and a miss ends soon: every create starts with one); every
 * order sits in the probe run that starts at its hash slot, with no empty
 * slot between, which backward-shift deletion preserves.
 *
 * Growing is incremental, so no insert stops the shard to rehash the whole
 * table: the full table becomes `old`, a table twice its size takes new
 * orders, and each insert moves the next MIGRATE_STEP slots of `old`
 * across; lookups search both until `old` is empty (long before the next
 * growth: it takes capacity/2/MIGRATE_STEP inserts, of the capacity/4
 * before the table fills again). A removal, or anything that walks or
 * clears the table, first moves what is left (backward shift inside `old`
 * could otherwise carry an order behind the migration point). */
#include "ordo_registry.h"
#include "ordo_hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;
    ordo_order_t *order; /* owned; NULL = empty slot */
} s_slot_t;

#define MIGRATE_STEP 16

struct ordo_registry {
    s_slot_t *slots; /* owned */
    size_t capacity;
    size_t count;  /* orders in both tables */
    s_slot_t *old; /* owned: the table being emptied into `slots`, or NULL */
    size_t old_capacity;
    size_t old_next; /* old[0 .. old_next) has moved */
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

static void s_finish_growth(ordo_registry_t *reg);

void ordo_registry_clear(ordo_registry_t *reg)
{
    s_finish_growth(reg);
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

/* Slot of `slots` (capacity a power of two) holding `id`, or the empty
 * slot where it would go. */
static size_t s_probe_in(const s_slot_t *slots, size_t capacity, uint64_t hash, ordo_str_t id)
{
    size_t mask = capacity - 1;
    size_t i = (size_t)hash & mask;
    while (slots[i].order) {
        if (slots[i].hash == hash && s_same_id(slots[i].order, id))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

static size_t s_probe(const ordo_registry_t *reg, uint64_t hash, ordo_str_t id)
{
    return s_probe_in(reg->slots, reg->capacity, hash, id);
}

/* Puts a slot into the current table (the order is known to be absent). */
static void s_place(ordo_registry_t *reg, s_slot_t slot)
{
    size_t mask = reg->capacity - 1;
    size_t j = (size_t)slot.hash & mask;
    while (reg->slots[j].order)
        j = (j + 1) & mask;
    reg->slots[j] = slot;
}

/* Moves up to `n` slots of the old table across (copies: old keeps its
 * slots until it is freed, so lookups in it still work); frees it once
 * every slot has moved. */
static void s_migrate(ordo_registry_t *reg, size_t n)
{
    if (!reg->old)
        return;
    size_t left = reg->old_capacity - reg->old_next;
    size_t end = reg->old_next + (n < left ? n : left);
    for (; reg->old_next < end; reg->old_next++)
        if (reg->old[reg->old_next].order)
            s_place(reg, reg->old[reg->old_next]);
    if (reg->old_next == reg->old_capacity) {
        free(reg->old);
        reg->old = NULL;
        reg->old_capacity = reg->old_next = 0;
    }
}

static void s_finish_growth(ordo_registry_t *reg)
{
    s_migrate(reg, SIZE_MAX);
}

/* Starts growing: a table twice the size takes over; the old one empties
 * into it step by step. -1 if out of memory (nothing changed). */
static int s_start_growth(ordo_registry_t *reg)
{
    s_finish_growth(reg); /* never two at once */
    s_slot_t *bigger = calloc(reg->capacity * 2, sizeof *bigger);
    if (!bigger)
        return -1;
    reg->old = reg->slots;
    reg->old_capacity = reg->capacity;
    reg->old_next = 0;
    reg->slots = bigger;
    reg->capacity *= 2;
    return 0;
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
    ordo_order_t *o = reg->slots[s_probe(reg, hash, order_id)].order;
    if (!o && reg->old) /* not moved yet (old keeps every slot, so its probe runs stay whole) */
        o = reg->old[s_probe_in(reg->old, reg->old_capacity, hash, order_id)].order;
    return o;
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
            /* every line of it: apply writes the version's entries near its end */
            const char *o = (const char *)reg->slots[i].order;
            for (size_t at = 0; at < sizeof(ordo_order_t); at += 64)
                __builtin_prefetch(o + at, 1);
            return;
        }
    }
}

ordo_order_t *ordo_registry_get_or_add_hashed(ordo_registry_t *reg, ordo_str_t order_id, uint64_t h)
{
    if (order_id.len > ORDO_ORDER_ID_MAX)
        return NULL;
    s_migrate(reg, MIGRATE_STEP);
    ordo_order_t *found = ordo_registry_find_hashed(reg, order_id, h);
    if (found)
        return found;
    if ((reg->count + 1) * 2 > reg->capacity && s_start_growth(reg) != 0)
        return NULL;
    size_t i = s_probe(reg, h, order_id);
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
    s_finish_growth(reg);
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
    /* The current table, then the old one's slots not moved yet. */
    size_t unmoved = reg->old ? reg->old_capacity - reg->old_next : 0;
    while (*cursor < reg->capacity + unmoved) {
        size_t i = (*cursor)++;
        ordo_order_t *o = i < reg->capacity ? reg->slots[i].order
                                            : reg->old[reg->old_next + i - reg->capacity].order;
        if (o)
            return o;
    }
    return NULL;
}

int ordo_registry_split(ordo_registry_t *src, ordo_registry_t *const *dst, size_t n)
{
    s_finish_growth(src);
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
