/* Partitions of the order id space (docs/cluster.md): an order belongs to
 * partition ordo_partition_of(id, P), a stable hash of its id modulo the
 * cluster's partition count P, fixed when the cluster is made. The hash
 * must never change: every engine, client and projector of a cluster
 * computes the same partition for an order, on any machine, in any
 * version. */
#ifndef ORDO_PARTITION_H
#define ORDO_PARTITION_H

#include <stddef.h>
#include <stdint.h>

#define ORDO_PARTITIONS_MAX 4096

/* The partition (0 .. partitions - 1) of the order id's `len` bytes. */
uint32_t ordo_partition_of(const char *order_id, size_t len, uint32_t partitions);

/* Reads "K/P" (partition K of P, 0 <= K < P <= ORDO_PARTITIONS_MAX).
 * 0, or -1 if the text is not that. */
int ordo_partition_parse(const char *text, uint32_t *partition, uint32_t *partitions);

#endif
