/* The cluster settings' text (see ordo_cluster_flags.h). */
#include "ordo_cluster_flags.h"

#include "ordo_partition.h"

#include <stdio.h>
#include <string.h>

int ordo_flag_nats(const char *value, char *err, size_t err_size)
{
    if (strncmp(value, "nats://", 7) == 0)
        return 0;
    snprintf(err, err_size,
             "--nats must be NATS server URLs separated by commas (nats://HOST:PORT,...), not "
             "\"%s\"",
             value);
    return -1;
}

int ordo_flag_partition(const char *value, uint32_t *partition, uint32_t *partitions, char *err,
                        size_t err_size)
{
    if (ordo_partition_parse(value, partition, partitions) == 0)
        return 0;
    snprintf(err, err_size,
             "--partition must be K/P, partition K of P (0 <= K < P <= %d), not \"%s\"",
             ORDO_PARTITIONS_MAX, value);
    return -1;
}
