/* Fixed-bucket histograms (see ordo_buckets.h) and the bucket sets. */
#include "ordo_buckets.h"

#include <string.h>

const uint64_t ordo_buckets_latency_ns[] = {
    50000,     100000,    250000,    500000,     1000000,    2500000,   5000000,
    10000000,  25000000,  50000000,  100000000,  250000000,  500000000, 1000000000,
    2500000000, 10000000000};
const uint32_t ordo_buckets_latency_n = sizeof ordo_buckets_latency_ns / sizeof *ordo_buckets_latency_ns;

const uint64_t ordo_buckets_bytes[] = {256,    1024,    4096,    16384,   65536,
                                    262144, 1048576, 4194304, 16777216};
const uint32_t ordo_buckets_bytes_n = sizeof ordo_buckets_bytes / sizeof *ordo_buckets_bytes;

void ordo_buckets_init(ordo_buckets_t *h, const uint64_t *bounds, uint32_t n)
{
    memset(h, 0, sizeof *h);
    if (n > ORDO_BUCKETS_MAX)
        n = ORDO_BUCKETS_MAX;
    for (uint32_t i = 0; i < n; i++)
        h->bound[i] = bounds[i];
    h->n = n;
}
