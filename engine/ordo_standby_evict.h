/* A standby's finished orders leaving memory for its data folder's order
 * index, as an owner's do (docs/architecture.md, "Finished orders leave
 * memory"): a Delivered or Cancelled order goes `--retain-finished`
 * seconds after its last event, once every event it names is synced. So
 * a standby's memory follows the orders in progress, not the partition's
 * history, and the engine it becomes takes the index over open, its
 * filters filled, instead of reading every key again. On the standby's
 * one thread. */
#ifndef ORDO_STANDBY_EVICT_H
#define ORDO_STANDBY_EVICT_H

#include "ordo_config.h"
#include "ordo_index.h"
#include "ordo_registry.h"
#include "ordo_wal.h"

typedef struct ordo_standby_evict ordo_standby_evict_t;

/* Opens the order index of cfg's data folder, with the engine's shards
 * (its filters are the engine's), and queues the finished orders of
 * `orders` by when they are due. `wal` and `orders` must outlive it. 0, or
 * -1 (logged). */
int ordo_standby_evict_open(const ordo_config_t *cfg, ordo_wal_t *wal, ordo_registry_t *orders,
                            ordo_standby_evict_t **out);

/* An event was applied to `o`: queued if it finished the order (NULL
 * ev: nothing). 0, or
 * ORDO_ERR_NOMEM (the order then stays in memory, which is always
 * correct). */
int ordo_standby_evict_note(ordo_standby_evict_t *ev, ordo_order_t *o);

/* At most every ORDO_EVICT_EVERY_MS: the due orders (up to
 * ORDO_EVICT_MAX) are written to the index in one transaction and leave
 * memory. Should the index fail, eviction stops (logged) and the orders
 * stay. */
void ordo_standby_evict_run(ordo_standby_evict_t *ev);

/* Orders that left memory since the open. */
uint64_t ordo_standby_evict_count(const ordo_standby_evict_t *ev);

/* Frees it and returns the open index (for the engine the standby
 * becomes), or NULL on NULL. */
ordo_index_t *ordo_standby_evict_finish(ordo_standby_evict_t **ev);

/* Frees it and closes the index. Safe on NULL. */
void ordo_standby_evict_close(ordo_standby_evict_t **ev);

#endif
