/* The text of the cluster settings that ordo-server and ordo-projector
 * both take (docs/cluster.md): --nats URLS and --partition K/P, checked
 * alike, with the same sentence when they are wrong. */
#ifndef ORDO_CLUSTER_FLAGS_H
#define ORDO_CLUSTER_FLAGS_H

#include <stddef.h>
#include <stdint.h>

/* NATS server URLs separated by commas (nats://HOST:PORT,...). 0, or -1
 * with a sentence in err. */
int ordo_flag_nats(const char *value, char *err, size_t err_size);

/* "K/P": partition K of P (ordo_partition_parse). 0, or -1 with a
 * sentence in err (nothing set). */
int ordo_flag_partition(const char *value, uint32_t *partition, uint32_t *partitions, char *err,
                        size_t err_size);

#endif
