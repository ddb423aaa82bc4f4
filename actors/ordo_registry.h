/* The actors a shard owns: a hash table from order_id to ordo_order_t.
 * Open addressing with linear probing and backward-shift deletion, so
 * finished orders can leave memory without tombstones piling up. Not
 * thread-safe: one shard thread owns one registry. */
#ifndef ORDO_REGISTRY_H
#define ORDO_REGISTRY_H

#include "ordo_order.h"

#include <stddef.h>

typedef struct ordo_registry ordo_registry_t;

/* A new empty registry, or NULL. */
ordo_registry_t *ordo_registry_new(void);

/* Clears every order, frees the registry and nulls *reg. */
void ordo_registry_destroy(ordo_registry_t **reg);

/* The order with this id, or NULL. The pointer stays valid until that
 * order is removed or the registry destroyed (orders never move). */
ordo_order_t *ordo_registry_find(const ordo_registry_t *reg, ordo_str_t order_id);

/* The same, with the id's ordo_order_id_hash() already computed. */
ordo_order_t *ordo_registry_find_hashed(const ordo_registry_t *reg, ordo_str_t order_id,
                                        uint64_t hash);

/* Finds the order, or adds an empty one (status NONE, order_id set).
 * NULL if out of memory or the id is longer than ORDO_ORDER_ID_MAX. */
ordo_order_t *ordo_registry_get_or_add(ordo_registry_t *reg, ordo_str_t order_id);

/* The same, with the id's ordo_order_id_hash() already computed. */
ordo_order_t *ordo_registry_get_or_add_hashed(ordo_registry_t *reg, ordo_str_t order_id,
                                              uint64_t hash);

/* Hints for batch work (replay): start loading the slot where `hash`
 * lives, and later the order found there, into the cache, so the lookup
 * that follows does not wait for memory. */
void ordo_registry_prefetch_slot(const ordo_registry_t *reg, uint64_t hash);
void ordo_registry_prefetch_order(const ordo_registry_t *reg, uint64_t hash);

/* Removes and clears every order (capacity is kept). */
void ordo_registry_clear(ordo_registry_t *reg);

/* Removes and clears the order if present. */
void ordo_registry_remove(ordo_registry_t *reg, ordo_str_t order_id);

size_t ordo_registry_count(const ordo_registry_t *reg);

/* Iteration: start with *cursor = 0; returns the next order or NULL at the
 * end. The registry must not change during a walk. */
ordo_order_t *ordo_registry_next(const ordo_registry_t *reg, size_t *cursor);

/* Moves every order of `src` into dst[ordo_shard_of(hash, n)] (the orders
 * themselves do not move in memory); `src` is left empty. 0, or -1 if out
 * of memory (then some orders have moved and some not). */
int ordo_registry_split(ordo_registry_t *src, ordo_registry_t *const *dst, size_t n);

/* The shard (0 .. n-1) that owns an order, from its ordo_order_id_hash():
 * the high bits, as the registry's slots use the low ones. */
static inline size_t ordo_shard_of(uint64_t hash, size_t n)
{
    return (size_t)(((hash >> 32) * (uint64_t)n) >> 32);
}

/* 64-bit hash of an order id, seeded randomly per process (also used to
 * pick a shard). */
uint64_t ordo_order_id_hash(const char *id, size_t len);

#endif
