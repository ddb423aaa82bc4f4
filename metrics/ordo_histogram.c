/* Fixed-bucket histograms (see ordo_histogram.h) and the bucket sets. */
#include "ordo_histogram.h"

#include <string.h>

const uint64_t ordo_hist_latency_ns[] = {
    50000,     100000,    250000,    500000,     1000000,    2500000,   5000000,
    10000000,  25000000,  50000000,  100000000,  250000000,  500000000, 1000000000,
    2500000000, 10000000000};
const uint32_t ordo_hist_latency_n = sizeof ordo_hist_latency_ns / sizeof *ordo_hist_latency_ns;

const uint64_t ordo_hist_bytes[] = {256,    1024,    4096,    16384,   65536,
                                    262144, 1048576, 4194304, 16777216};
const uint32_t ordo_hist_bytes_n = sizeof ordo_hist_bytes / sizeof *ordo_hist_bytes;

void ordo_histogram_init(ordo_histogram_t *h, const uint64_t *bounds, uint32_t n)
{
    memset(h, 0, sizeof *h);
    if (n > ORDO_HIST_BOUNDS_MAX)
        n = ORDO_HIST_BOUNDS_MAX;
    for (uint32_t i = 0; i < n; i++)
        h->bound[i] = bounds[i];
    h->n = n;
}
