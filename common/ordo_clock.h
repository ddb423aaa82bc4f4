/* Wall-clock and monotonic time in microseconds. */
#ifndef ORDO_CLOCK_H
#define ORDO_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Microseconds since the Unix epoch, UTC. */
static inline int64_t ordo_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Monotonic nanoseconds, for measuring durations. */
static inline uint64_t ordo_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#endif
