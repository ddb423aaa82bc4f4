/* Log-linear latency histogram (see ordo_histogram.h). Index layout:
 * values below 2,048 have a counter each; above, each power of two
 * [2^m, 2^(m+1)) is split into 1,024 equal sub-buckets, 2^(m-10) wide. */
#include "ordo_histogram.h"

#include <stdlib.h>
#include <string.h>

#define SUB_BITS 10             /* 1,024 sub-buckets per power of two */
#define LINEAR (2u << SUB_BITS) /* 2,048 exact counters */
#define MAX_BITS 40             /* values clamp below 2^40 ns */
#define COUNTERS (LINEAR + (MAX_BITS - SUB_BITS - 1) * (1u << SUB_BITS))

struct ordo_histogram {
    uint64_t count;
    uint64_t max;
    long double sum;
    uint64_t counts[COUNTERS];
};

static uint32_t s_index(uint64_t v)
{
    if (v < LINEAR)
        return (uint32_t)v;
    if (v >> MAX_BITS)
        v = (1ull << MAX_BITS) - 1;
    int m = 63 - __builtin_clzll(v); /* 11 .. 39 */
    int shift = m - SUB_BITS;
    return LINEAR + (uint32_t)(shift - 1) * (1u << SUB_BITS) +
           (uint32_t)((v >> shift) - (1u << SUB_BITS));
}

/* The highest value that lands on counter `i`. */
static uint64_t s_highest(uint32_t i)
{
    if (i < LINEAR)
        return i;
    uint32_t k = i - LINEAR;
    int shift = (int)(k >> SUB_BITS) + 1;
    uint64_t sub = (k & ((1u << SUB_BITS) - 1)) + (1u << SUB_BITS);
    return (sub << shift) + (1ull << shift) - 1;
}

ordo_histogram_t *ordo_histogram_new(void)
{
    return calloc(1, sizeof(ordo_histogram_t));
}

void ordo_histogram_destroy(ordo_histogram_t **h)
{
    if (!h || !*h)
        return;
    free(*h);
    *h = NULL;
}

void ordo_histogram_reset(ordo_histogram_t *h)
{
    memset(h, 0, sizeof *h);
}

void ordo_histogram_record(ordo_histogram_t *h, uint64_t ns)
{
    h->counts[s_index(ns)]++;
    h->count++;
    h->sum += ns;
    if (ns > h->max)
        h->max = ns;
}

void ordo_histogram_add(ordo_histogram_t *dst, const ordo_histogram_t *src)
{
    for (uint32_t i = 0; i < COUNTERS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t ordo_histogram_count(const ordo_histogram_t *h)
{
    return h->count;
}

uint64_t ordo_histogram_max(const ordo_histogram_t *h)
{
    return h->max;
}

double ordo_histogram_mean(const ordo_histogram_t *h)
{
    return h->count ? (double)(h->sum / h->count) : 0;
}

uint64_t ordo_histogram_percentile(const ordo_histogram_t *h, double p)
{
    if (h->count == 0)
        return 0;
    if (p < 0)
        p = 0;
    if (p > 100)
        p = 100;
    /* the rank of the value: ceil(p% of count), at least the first */
    uint64_t rank = (uint64_t)((long double)p / 100 * h->count);
    if ((long double)rank < (long double)p / 100 * h->count)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < COUNTERS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = s_highest(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
