/* A table of per-order values by order id, for the admin tools that walk
 * the whole log (audit, replay --all --check): open addressing, values of
 * a fixed size kept inline, zeroed when an id is first seen. */
#ifndef ORDO_ADMIN_TABLE_H
#define ORDO_ADMIN_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    size_t value_size, slot_size;
    size_t cap, used;
    uint8_t *slots;
} admin_table_t;

void admin_table_init(admin_table_t *t, size_t value_size);

/* The value of order `id` (1 to 64 bytes), made (zeroed) if new: *created
 * says so (may be NULL). NULL when out of memory. */
void *admin_table_get(admin_table_t *t, const char *id, size_t len, bool *created);

/* The value of `id` if present, else NULL. */
void *admin_table_find(const admin_table_t *t, const char *id, size_t len);

/* Iterates: start with *i = 0; returns each value (and its id) in turn,
 * NULL at the end. */
void *admin_table_next(const admin_table_t *t, size_t *i, const char **id, size_t *len);

void admin_table_free(admin_table_t *t);

#endif
