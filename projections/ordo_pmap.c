/* Open-addressing hash map from order id to record (see ordo_pmap.h).
 * Invariants: capacity is a power of two, at most half full; every entry
 * sits between its home slot and the first empty slot after it. */
#include "ordo_pmap.h"

#include "ordo_hash.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t hash;   /* 0: empty slot (real hashes are forced non-zero) */
    const char *key; /* into rec */
    size_t len;
    void *rec;
} s_slot_t;

struct ordo_pmap {
    s_slot_t *slots; /* owned */
    size_t cap;      /* power of two */
    size_t count;
};

static uint64_t s_hash(const char *key, size_t len)
{
    uint64_t h = ordo_hash64(key, len, 0x6f72646f706d6170ull);
    return h ? h : 1;
}

ordo_pmap_t *ordo_pmap_new(void)
{
    ordo_pmap_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof *m->slots);
    if (!m->slots) {
        free(m);
        return NULL;
    }
    return m;
}

void ordo_pmap_destroy(ordo_pmap_t **map)
{
    if (!map || !*map)
        return;
    free((*map)->slots);
    free(*map);
    *map = NULL;
}

static size_t s_find(const ordo_pmap_t *m, const char *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        const s_slot_t *s = &m->slots[i];
        if (s->hash == 0 || (s->hash == h && s->len == len && memcmp(s->key, key, len) == 0))
            return i;
    }
}

void *ordo_pmap_get(const ordo_pmap_t *m, const char *key, size_t len)
{
    return m->slots[s_find(m, key, len, s_hash(key, len))].rec;
}

static int s_grow(ordo_pmap_t *m)
{
    size_t cap = m->cap * 2;
    s_slot_t *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        s_slot_t *s = &m->slots[i];
        if (s->hash == 0)
            continue;
        size_t j = s->hash & (cap - 1);
        while (slots[j].hash != 0)
            j = (j + 1) & (cap - 1);
        slots[j] = *s;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    return 0;
}

int ordo_pmap_put(ordo_pmap_t *m, const char *key, size_t len, void *rec)
{
    if ((m->count + 1) * 2 > m->cap && s_grow(m) != 0)
        return -1;
    uint64_t h = s_hash(key, len);
    s_slot_t *s = &m->slots[s_find(m, key, len, h)];
    if (s->hash == 0)
        m->count++;
    *s = (s_slot_t){h, key, len, rec};
    return 0;
}

void *ordo_pmap_remove(ordo_pmap_t *m, const char *key, size_t len)
{
    size_t mask = m->cap - 1;
    size_t i = s_find(m, key, len, s_hash(key, len));
    if (m->slots[i].hash == 0)
        return NULL;
    void *rec = m->slots[i].rec;
    /* Backward shift: pull later entries of the run into the hole when
     * the hole lies between their home slot and where they sit. */
    for (size_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        s_slot_t *s = &m->slots[j];
        if (s->hash == 0)
            break;
        size_t home = s->hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            m->slots[i] = *s;
            i = j;
        }
    }
    m->slots[i] = (s_slot_t){0};
    m->count--;
    return rec;
}

size_t ordo_pmap_count(const ordo_pmap_t *m)
{
    return m->count;
}

void *ordo_pmap_next(const ordo_pmap_t *m, size_t *cursor)
{
    while (*cursor < m->cap) {
        const s_slot_t *s = &m->slots[(*cursor)++];
        if (s->hash != 0)
            return s->rec;
    }
    return NULL;
}
