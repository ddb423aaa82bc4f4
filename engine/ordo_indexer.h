/* The indexer: one thread that writes finished orders into the order
 * index, so that no shard waits for the disk to let orders leave memory.
 * A shard sends a batch of packed entries (ordo_index_pack) on its pipe;
 * this thread writes them in one transaction and sends the batch back
 * with the outcome in `error`; only then does the shard add them to its
 * filter and drop them from memory. */
#ifndef ORDO_INDEXER_H
#define ORDO_INDEXER_H

#include "ordo_index.h"

#include <stdint.h>

typedef struct {
    ordo_index_t *index; /* borrowed */
    uint32_t nshards;
    void **pipes; /* borrowed PAIR sockets, one per shard */
} ordo_indexer_config_t;

/* The thread body (argument: ordo_indexer_config_t *): runs until every
 * shard has sent STOP. */
void *ordo_indexer_run(void *cfg);

#endif
