/* An HDR-style latency histogram: log-linear buckets over nanoseconds,
 * exact below 2,048 ns and within 1/1,024 (0.1%) above, up to 2^40 ns
 * (18 minutes; larger values are clamped). So a latency is known to the
 * microsecond up to about 1 ms and to 0.1% beyond. Fixed memory (31,744
 * counters, 248 KiB), recording is a few instructions, no allocation. */
#ifndef ORDO_HISTOGRAM_H
#define ORDO_HISTOGRAM_H

#include <stdint.h>

typedef struct ordo_histogram ordo_histogram_t;

/* A new empty histogram, or NULL if out of memory. */
ordo_histogram_t *ordo_histogram_new(void);

void ordo_histogram_destroy(ordo_histogram_t **h);

/* Forgets every value recorded. */
void ordo_histogram_reset(ordo_histogram_t *h);

/* Records one value, in nanoseconds. */
void ordo_histogram_record(ordo_histogram_t *h, uint64_t ns);

/* Adds every value of `src` to `dst`. */
void ordo_histogram_add(ordo_histogram_t *dst, const ordo_histogram_t *src);

uint64_t ordo_histogram_count(const ordo_histogram_t *h);

/* The largest value recorded (exact), 0 if none. */
uint64_t ordo_histogram_max(const ordo_histogram_t *h);

/* Mean of the values recorded (exact), 0 if none. */
double ordo_histogram_mean(const ordo_histogram_t *h);

/* The value at percentile `p` (0..100): the highest value equivalent to
 * the bucket holding it, never above the maximum; 0 if empty. */
uint64_t ordo_histogram_percentile(const ordo_histogram_t *h, double p);

#endif
