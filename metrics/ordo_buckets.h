/* A Prometheus histogram with fixed buckets, observed by any thread and
 * read by any (relaxed atomics, like the engine's other counters): each
 * observation is one search of at most ORDO_BUCKETS_MAX bounds and two
 * atomic adds, cheap enough for the command path. Values are kept in the
 * unit observed (nanoseconds, bytes); the text writer scales them. */
#ifndef ORDO_BUCKETS_H
#define ORDO_BUCKETS_H

#include <stdatomic.h>
#include <stdint.h>

#define ORDO_BUCKETS_MAX 20

typedef struct {
    uint32_t n;                             /* finite bounds */
    uint64_t bound[ORDO_BUCKETS_MAX];   /* upper bounds (inclusive), ascending */
    _Atomic uint64_t count[ORDO_BUCKETS_MAX + 1]; /* per bucket; [n] = above the last */
    _Atomic uint64_t sum;                   /* of every value observed */
} ordo_buckets_t;

/* Sets the bounds (n <= ORDO_BUCKETS_MAX, ascending; more are cut)
 * and zeroes the counts. Before any thread observes it. */
void ordo_buckets_init(ordo_buckets_t *h, const uint64_t *bounds, uint32_t n);

static inline void ordo_buckets_observe(ordo_buckets_t *h, uint64_t value)
{
    uint32_t i = 0;
    while (i < h->n && value > h->bound[i])
        i++;
    atomic_fetch_add_explicit(&h->count[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum, value, memory_order_relaxed);
}

/* Bounds in use: latencies in nanoseconds (50 us .. 10 s) and sizes in
 * bytes (256 B .. 16 MiB). */
extern const uint64_t ordo_buckets_latency_ns[];
extern const uint32_t ordo_buckets_latency_n;
extern const uint64_t ordo_buckets_bytes[];
extern const uint32_t ordo_buckets_bytes_n;

#endif
