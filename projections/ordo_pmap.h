/* A hash map from order id to a record the caller owns: the hot part of
 * a read model (orders not finished yet). Open addressing with linear
 * probing and backward-shift deletion, so finished orders leave without
 * tombstones. The key bytes live in the record (the caller passes a
 * pointer that stays valid while the entry is in the map). One thread. */
#ifndef ORDO_PMAP_H
#define ORDO_PMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ordo_pmap ordo_pmap_t;

/* A new empty map, or NULL. */
ordo_pmap_t *ordo_pmap_new(void);

/* Frees the map (not the records); nulls *map. */
void ordo_pmap_destroy(ordo_pmap_t **map);

/* The record stored under key, or NULL. */
void *ordo_pmap_get(const ordo_pmap_t *map, const char *key, size_t len);

/* Stores rec under key (key points into rec); replaces an entry with the
 * same key. 0, or -1 if out of memory (the map is unchanged). */
int ordo_pmap_put(ordo_pmap_t *map, const char *key, size_t len, void *rec);

/* Removes the entry; returns its record, or NULL if there was none. */
void *ordo_pmap_remove(ordo_pmap_t *map, const char *key, size_t len);

size_t ordo_pmap_count(const ordo_pmap_t *map);

/* Iteration: *cursor = 0 first; returns the next record or NULL. The map
 * must not change during a walk. */
void *ordo_pmap_next(const ordo_pmap_t *map, size_t *cursor);

#endif
