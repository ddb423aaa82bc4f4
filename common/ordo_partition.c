/* Partitions of the order id space (see ordo_partition.h). */
#include "ordo_partition.h"

#include "ordo_hash.h"
#include "ordo_number.h"

#include <string.h>

/* "ORDOPART": the seed that makes this hash the partition function; it
 * and ordo_hash64 are fixed forever (docs/cluster.md). */
#define S_SEED 0x4f52444f50415254ull

uint32_t ordo_partition_of(const char *order_id, size_t len, uint32_t partitions)
{
    if (partitions <= 1)
        return 0;
    return (uint32_t)(ordo_hash64(order_id, len, S_SEED) % partitions);
}

int ordo_partition_parse(const char *text, uint32_t *partition, uint32_t *partitions)
{
    const char *slash = text ? strchr(text, '/') : NULL;
    if (!slash || slash == text || !slash[1])
        return -1;
    char k_text[16];
    size_t k_len = (size_t)(slash - text);
    if (k_len >= sizeof k_text)
        return -1;
    memcpy(k_text, text, k_len);
    k_text[k_len] = '\0';
    int64_t k, p;
    if (!ordo_number_all_digits(k_text) || !ordo_number_all_digits(slash + 1) ||
        !ordo_number_parse(k_text, 0, ORDO_PARTITIONS_MAX - 1, &k) ||
        !ordo_number_parse(slash + 1, 1, ORDO_PARTITIONS_MAX, &p) || k >= p)
        return -1;
    *partition = (uint32_t)k;
    *partitions = (uint32_t)p;
    return 0;
}
